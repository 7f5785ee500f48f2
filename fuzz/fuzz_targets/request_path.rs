//! Fuzzes the LDAP request path: arbitrary bytes as they would arrive on a
//! connection, framed, decoded and answered by a session over a small
//! in-memory directory. Any panic is a finding.
#![no_main]

use std::sync::{Arc, OnceLock};

use ccdir::config::LdapConfig;
use ccdir::core::{Directory, DirectoryOptions, IndexMode, SearchLimits};
use ccdir::domain::{Caller, EntryInput, OrganisationInput, SystemClock};
use ccdir::ldap::{Ldap, answer_bytes};
use ccdir::pki::NodeKey;
use libfuzzer_sys::fuzz_target;

struct Harness {
    runtime: tokio::runtime::Runtime,
    ldap: Arc<Ldap>,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let ldap = runtime.block_on(async {
            let directory = Directory::open(DirectoryOptions {
                database_url: "sqlite::memory:".into(),
                index: IndexMode::InMemory,
                node_key: NodeKey::generate(&mut rand::rng()),
                clock: Arc::new(SystemClock),
                search: SearchLimits {
                    default_limit: 20,
                    max_limit: 100,
                },
                metrics: ccdir::telemetry::Metrics::new(),
            })
            .await
            .expect("directory");
            let admin = Caller::NodeAdmin {
                subject: "fuzz".into(),
            };
            let org = "acme".parse().expect("org id");
            let org_input: OrganisationInput =
                serde_json::from_value(serde_json::json!({"name": "Acme", "domains": ["acme.example.org"]}))
                    .expect("org");
            directory
                .put_organisation(&admin, &org, org_input)
                .await
                .expect("organisation");
            for (local, given, surname) in [("alice.smith", "Alice", "Smith"), ("bob.jones", "Bob", "Jones")] {
                let input: EntryInput = serde_json::from_value(serde_json::json!({
                    "given_name": given, "surname": surname, "organisation": "acme"
                }))
                .expect("entry");
                let address = format!("{local}@acme.example.org").parse().expect("address");
                let put = directory.put_entry(&admin, &address, input).await.expect("entry");
                directory.wait_indexed(put.seq).await;
            }
            let mut config = LdapConfig::default();
            config.size_limit = 10;
            config.time_limit_seconds = 2;
            Ldap::new(directory, &config, None).expect("ldap")
        });
        Harness { runtime, ldap }
    })
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let _ = h.runtime.block_on(answer_bytes(&h.ldap, data));
});
