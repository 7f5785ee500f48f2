//! The storage battery (STYLE principle 10): every test is written once as
//! an `async fn(Store)` and run on SQLite (a temporary file) always, and on
//! PostgreSQL when `CCDIR_TEST_PG_URL` names a server (each test gets a
//! fresh database, dropped afterwards). With `CCDIR_REQUIRE_PG=1` and no
//! URL the PostgreSQL tests fail instead of skipping, so that a CI run in
//! which PostgreSQL did not run cannot pass. `CCDIR_TEST_KEEP_DB=1` keeps
//! the PostgreSQL databases for inspection.
//!
//! After each test the store checks its own invariants
//! ([`Store::check_consistency`]).
//!
//! `import_rate` is a benchmark, ignored by default:
//! `cargo test --release --test integration import_rate -- --ignored --nocapture`.

mod bundles;
mod federation;
mod fixtures;
mod policies;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{TimeZone, Utc};
use futures::FutureExt;
use sea_orm::ConnectionTrait;

use ccdir::domain::{
    Binding, Change, ChangeKind, ChangeSeq, EntryRecord, TrustStatus, TrustVerdict, Visibility,
};
use ccdir::error::ErrorKind;
use ccdir::storage::{CertUpdate, StorageError, Store};

use crate::support::{pg_url, with_database};
use bundles::*;
use federation::*;
use fixtures::*;
use policies::*;

// ------------------------------------------------------------------ harness

macro_rules! battery {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::on_sqlite(super::$test).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::on_postgres(stringify!($test), super::$test).await;
                }
            )*
        }
    };
}

battery!(
    migrations_are_idempotent,
    organisation_round_trip,
    organisation_delete_conflicts_while_entries_remain,
    entry_round_trip_keeps_every_field,
    times_are_kept_to_the_microsecond,
    versions_are_bumped_by_the_store,
    lookup_ignores_case,
    certificates_add_remove_replace,
    delete_cascades_to_certificates,
    change_sequence_is_complete_and_ordered,
    concurrent_writers_never_reorder_what_readers_saw,
    failed_write_leaves_nothing_behind,
    write_time_counts_every_write_transaction,
    import_batch_upserts,
    scans_visit_everything_exactly_once,
    update_trust_announces_only_status_changes,
    anchors_round_trip,
    federation_apply_is_guarded_by_the_cursor,
    federation_publish_is_guarded_by_its_position,
    policy_events_follow_the_chain_all_or_nothing,
    racing_submissions_never_share_a_version,
    webhook_cursors_and_dead_letters_round_trip,
    bundles_round_trip_with_status,
    bundle_anchors_are_replaced_atomically,
);

async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("ccdir.db").display()
    );
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    store.migrate().await.unwrap();
    test(store.clone()).await;
    assert_consistent(&store).await;
    store.close().await.unwrap();
}

async fn on_postgres<F, Fut>(test_name: &str, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let Some(admin_url) = pg_url() else {
        return;
    };
    let mut db_name = format!(
        "ccdir_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        test_name
    );
    db_name.truncate(63);
    let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{db_name}\""))
        .await
        .unwrap();
    let store = Store::connect(&with_database(&admin_url, &db_name))
        .await
        .unwrap();
    assert_eq!(store.backend(), "postgres");
    let outcome = AssertUnwindSafe(async {
        store.migrate().await.unwrap();
        test(store.clone()).await;
        assert_consistent(&store).await;
    })
    .catch_unwind()
    .await;
    store.close().await.unwrap();
    if std::env::var_os("CCDIR_TEST_KEEP_DB").is_some() {
        eprintln!("kept database {db_name}");
    } else {
        admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
            ))
            .await
            .unwrap();
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn assert_consistent(store: &Store) {
    let problems = store.check_consistency().await.unwrap();
    assert!(problems.is_empty(), "inconsistent store: {problems:?}");
}

/// Every change after `after`, paging with `page`.
async fn changes_after(store: &Store, after: ChangeSeq, page: u64) -> Vec<Change> {
    let mut all = Vec::new();
    let mut at = after;
    loop {
        let batch = store.changes_since(at, page).await.unwrap();
        let Some(last) = batch.last() else {
            return all;
        };
        at = last.seq;
        all.extend(batch);
    }
}

fn kinds_and_keys(changes: &[Change]) -> Vec<(ChangeKind, String)> {
    changes.iter().map(|c| (c.kind, c.key.clone())).collect()
}

fn assert_kind(err: StorageError, kind: ErrorKind) {
    assert_eq!(err.kind(), kind, "{err}");
}

fn with_version(mut e: ccdir::domain::Entry, version: u64) -> ccdir::domain::Entry {
    e.version = version;
    e
}

// ---------------------------------------------------------------- the tests

async fn migrations_are_idempotent(store: Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    assert_eq!(store.head_seq().await.unwrap(), ChangeSeq(0));
    assert_eq!(store.count_entries().await.unwrap(), 0);
    assert!(
        store
            .changes_since(ChangeSeq(0), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let org = organisation("acme");
    store.put_organisation(&org).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.get_organisation(&org.id).await.unwrap(), Some(org));
    assert_eq!(store.head_seq().await.unwrap(), ChangeSeq(1));
}

async fn organisation_round_trip(store: Store) {
    let org = organisation("acme");
    let s1 = store.put_organisation(&org).await.unwrap();
    assert_eq!(
        store.get_organisation(&org.id).await.unwrap(),
        Some(org.clone())
    );

    let mut changed = org.clone();
    changed.name = "Acme Health".into();
    changed.domains = vec![];
    changed.description = None;
    changed.locality = None;
    changed.region = None;
    changed.country = None;
    changed.updated_at = at(1_770_000_000, 999_999);
    let s2 = store.put_organisation(&changed).await.unwrap();
    assert!(s2 > s1);
    assert_eq!(
        store.get_organisation(&org.id).await.unwrap(),
        Some(changed.clone())
    );

    let beta = organisation("beta");
    let s3 = store.put_organisation(&beta).await.unwrap();
    assert_eq!(
        store.list_organisations().await.unwrap(),
        vec![changed, beta]
    );
    assert_eq!(store.get_organisation(&org_id("nope")).await.unwrap(), None);

    let changes = changes_after(&store, ChangeSeq(0), 100).await;
    assert_eq!(
        changes.iter().map(|c| c.seq).collect::<Vec<_>>(),
        vec![s1, s2, s3]
    );
    assert!(
        changes
            .iter()
            .all(|c| c.kind == ChangeKind::OrganisationChanged)
    );
    assert_eq!(
        changes.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
        ["acme", "acme", "beta"]
    );
}

async fn organisation_delete_conflicts_while_entries_remain(store: Store) {
    let acme = organisation("acme");
    store.put_organisation(&acme).await.unwrap();
    let e = person("a@example.org", Some("acme"));
    store.put_entry(&e, CertUpdate::Keep).await.unwrap();
    assert_eq!(
        store.entries_of_organisation(&acme.id).await.unwrap(),
        vec!["a@example.org".to_owned()]
    );
    let head = store.head_seq().await.unwrap();

    let err = store.delete_organisation(&acme.id).await.unwrap_err();
    assert!(matches!(
        err,
        StorageError::OrganisationInUse { entries: 1, .. }
    ));
    assert_kind(err, ErrorKind::Conflict);
    assert_eq!(store.head_seq().await.unwrap(), head);
    assert!(store.get_organisation(&acme.id).await.unwrap().is_some());

    // An entry cannot name an organisation that does not exist.
    let ghost = person("g@example.org", Some("ghost"));
    let err = store.put_entry(&ghost, CertUpdate::Keep).await.unwrap_err();
    assert_kind(err, ErrorKind::Conflict);
    assert_eq!(store.head_seq().await.unwrap(), head);
    assert_eq!(store.count_entries().await.unwrap(), 1);

    store.delete_entry(&e.address).await.unwrap().unwrap();
    let seq = store.delete_organisation(&acme.id).await.unwrap().unwrap();
    assert_eq!(store.head_seq().await.unwrap(), seq);
    assert_eq!(store.get_organisation(&acme.id).await.unwrap(), None);
    assert_eq!(store.delete_organisation(&acme.id).await.unwrap(), None);
    assert_eq!(store.head_seq().await.unwrap(), seq);
    let last = store.changes_since(ChangeSeq(seq.0 - 1), 10).await.unwrap();
    assert_eq!(
        kinds_and_keys(&last),
        vec![(ChangeKind::OrganisationChanged, "acme".into())]
    );
}

async fn entry_round_trip_keeps_every_field(store: Store) {
    store.put_organisation(&organisation("acme")).await.unwrap();
    let e = person("Alice.Smith@Cardio.Example.net", Some("acme"));
    let mut second = entry_certificate(2, "alice.smith@cardio.example.net");
    second.binding = Binding::Domain;
    second.chain = vec![];
    second.trust = TrustVerdict {
        status: TrustStatus::NotYetValid,
        reason: "not before 2030".into(),
        evaluated_at: at(1_750_000_001, 1),
    };
    second.certificate.assurance = None;
    second.certificate.key_usage = vec![];
    second.certificate.policies = vec![];
    second.certificate.extended_key_usage = vec![];
    second.certificate.dns_names = vec!["cardio.example.net".into()];
    second.certificate.email_addresses = vec![];
    second.certificate.is_ca = true;
    second.certificate.not_after = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
    let certs = vec![
        entry_certificate(1, "Alice.Smith@cardio.example.net"),
        second,
    ];

    let stored = store
        .put_entry(&e, CertUpdate::Replace(certs.clone()))
        .await
        .unwrap();
    assert!(stored.created);
    assert_eq!(stored.version, 1);
    assert_eq!(store.head_seq().await.unwrap(), stored.seq);

    let got = store.get_entry(&e.address).await.unwrap().unwrap();
    assert_eq!(got.entry, with_version(e.clone(), 1));
    assert_eq!(got.certificates, certs);
    assert_eq!(
        got.entry.address.to_string(),
        "Alice.Smith@cardio.example.net"
    );

    let d = bare_domain("direct.example.org");
    let stored = store.put_entry(&d, CertUpdate::Keep).await.unwrap();
    assert!(stored.created);
    let got = store.get_entry(&d.address).await.unwrap().unwrap();
    assert_eq!(got.entry, d);
    assert!(got.certificates.is_empty());
    assert_eq!(store.count_entries().await.unwrap(), 2);
}

async fn times_are_kept_to_the_microsecond(store: Store) {
    let mut e = bare_domain("time.example.org");
    e.updated_at = Utc.timestamp_opt(1_760_000_000, 123_456_789).unwrap();
    let mut c = entry_certificate(9, "x@time.example.org");
    c.trust.evaluated_at = Utc.timestamp_opt(1_760_000_000, 999_999_999).unwrap();
    store
        .put_entry(&e, CertUpdate::Replace(vec![c]))
        .await
        .unwrap();
    let got = store.get_entry(&e.address).await.unwrap().unwrap();
    assert_eq!(got.entry.updated_at, at(1_760_000_000, 123_456));
    assert_eq!(
        got.certificates[0].trust.evaluated_at,
        at(1_760_000_000, 999_999)
    );
}

async fn versions_are_bumped_by_the_store(store: Store) {
    let mut e = person("bob@example.org", None);
    e.version = 77; // ignored by put_entry
    let s1 = store.put_entry(&e, CertUpdate::Keep).await.unwrap();
    assert_eq!((s1.version, s1.created), (1, true));

    e.display_name = "Bob the Second".into();
    let s2 = store.put_entry(&e, CertUpdate::Keep).await.unwrap();
    assert_eq!((s2.version, s2.created), (2, false));
    assert!(s2.seq > s1.seq);
    let got = store.get_entry(&e.address).await.unwrap().unwrap();
    assert_eq!(got.entry.version, 2);
    assert_eq!(got.entry.display_name, "Bob the Second");

    let c1 = entry_certificate(1, "bob@example.org");
    let s3 = store
        .put_entry(&e, CertUpdate::Replace(vec![c1.clone()]))
        .await
        .unwrap();
    assert_eq!(s3.version, 3);

    e.title = None;
    let s4 = store.put_entry(&e, CertUpdate::Keep).await.unwrap();
    assert_eq!(s4.version, 4);
    let got = store.get_entry(&e.address).await.unwrap().unwrap();
    assert_eq!(got.certificates, vec![c1]);
    assert_eq!(got.entry.title, None);

    // Certificates changing on their own are a new version too.
    store
        .add_certificate(&e.address, &entry_certificate(2, "bob@example.org"))
        .await
        .unwrap();
    let got = store.get_entry(&e.address).await.unwrap().unwrap();
    assert_eq!(got.entry.version, 5);

    // An origin's version is kept as given.
    e.version = 42;
    let s = store
        .put_entry_versioned(&e, CertUpdate::Keep)
        .await
        .unwrap();
    assert_eq!((s.version, s.created), (42, false));
    assert_eq!(
        store
            .get_entry(&e.address)
            .await
            .unwrap()
            .unwrap()
            .entry
            .version,
        42
    );
    let s = store.put_entry(&e, CertUpdate::Keep).await.unwrap();
    assert_eq!(s.version, 43);

    e.version = u64::MAX;
    let err = store
        .put_entry_versioned(&e, CertUpdate::Keep)
        .await
        .unwrap_err();
    assert_kind(err, ErrorKind::InvalidInput);
}

async fn lookup_ignores_case(store: Store) {
    let alice = person("Alice.Smith@Cardio.Example.org", None);
    let bob = person("bob@example.org", None);
    let direct = bare_domain("direct.example.org");
    for e in [&alice, &bob, &direct] {
        store.put_entry(e, CertUpdate::Keep).await.unwrap();
    }

    let got = store
        .get_entry(&addr("ALICE.SMITH@cardio.EXAMPLE.org"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.entry.address.to_string(),
        "Alice.Smith@cardio.example.org"
    );

    let keys: Vec<String> = [
        "BOB@example.org",
        "nobody@example.org",
        "alice.smith@cardio.example.org",
        "Direct.Example.org",
        "bob@example.org",
    ]
    .map(String::from)
    .to_vec();
    let found = store.get_entries(&keys).await.unwrap();
    assert_eq!(
        found
            .iter()
            .map(|r| r.entry.address.key())
            .collect::<Vec<_>>(),
        [
            "bob@example.org",
            "alice.smith@cardio.example.org",
            "direct.example.org"
        ]
    );
    assert!(store.get_entries(&[]).await.unwrap().is_empty());

    // The same key in another case is the same entry, stored as last written.
    let relowered = person("alice.smith@cardio.example.org", None);
    let s = store.put_entry(&relowered, CertUpdate::Keep).await.unwrap();
    assert_eq!((s.version, s.created), (2, false));
    let got = store.get_entry(&alice.address).await.unwrap().unwrap();
    assert_eq!(
        got.entry.address.to_string(),
        "alice.smith@cardio.example.org"
    );
    assert_eq!(store.count_entries().await.unwrap(), 3);
}

async fn certificates_add_remove_replace(store: Store) {
    let a = addr("carol@example.org");
    let [c1, c2, c3, c4] = [1, 2, 3, 4].map(|i| entry_certificate(i, "carol@example.org"));
    store
        .put_entry(
            &person("carol@example.org", None),
            CertUpdate::Replace(vec![c1.clone()]),
        )
        .await
        .unwrap();

    let s = store.add_certificate(&a, &c2).await.unwrap();
    assert_eq!(store.head_seq().await.unwrap(), s);
    let certs = |r: Option<EntryRecord>| r.unwrap().certificates;
    assert_eq!(
        certs(store.get_entry(&a).await.unwrap()),
        vec![c1.clone(), c2.clone()]
    );

    // Idempotent: already attached, nothing happens.
    assert_eq!(store.add_certificate(&a, &c2).await.unwrap(), s);
    assert_eq!(store.head_seq().await.unwrap(), s);

    let err = store
        .add_certificate(&addr("nobody@example.org"), &c3)
        .await
        .unwrap_err();
    assert_kind(err, ErrorKind::NotFound);

    let r = store
        .remove_certificate(&a, &c1.certificate.fingerprint)
        .await
        .unwrap()
        .unwrap();
    assert!(r > s);
    assert_eq!(certs(store.get_entry(&a).await.unwrap()), vec![c2.clone()]);
    assert_eq!(
        store
            .remove_certificate(&a, &c1.certificate.fingerprint)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .remove_certificate(&addr("nobody@example.org"), &c2.certificate.fingerprint)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.head_seq().await.unwrap(), r);

    // Replace: exactly the new set, in order, a repeated one kept once.
    let e = person("carol@example.org", None);
    store
        .put_entry(
            &e,
            CertUpdate::Replace(vec![c4.clone(), c3.clone(), c4.clone()]),
        )
        .await
        .unwrap();
    assert_eq!(certs(store.get_entry(&a).await.unwrap()), vec![c4, c3]);
    store
        .put_entry(&e, CertUpdate::Replace(vec![]))
        .await
        .unwrap();
    assert!(certs(store.get_entry(&a).await.unwrap()).is_empty());

    // The same certificate may be attached to two entries.
    store
        .put_entry(
            &person("dave@example.org", None),
            CertUpdate::Replace(vec![c1.clone()]),
        )
        .await
        .unwrap();
    store.add_certificate(&a, &c1).await.unwrap();
    let (page, _) = store.scan_certificates(0, 100).await.unwrap();
    assert_eq!(page.len(), 2);
}

async fn delete_cascades_to_certificates(store: Store) {
    let a = person("erin@example.org", None);
    let b = person("frank@example.org", None);
    let ca = vec![
        entry_certificate(1, "erin@example.org"),
        entry_certificate(2, "erin@example.org"),
    ];
    let cb = vec![
        entry_certificate(3, "frank@example.org"),
        entry_certificate(4, "frank@example.org"),
    ];
    store.put_entry(&a, CertUpdate::Replace(ca)).await.unwrap();
    store
        .put_entry(&b, CertUpdate::Replace(cb.clone()))
        .await
        .unwrap();

    let seq = store.delete_entry(&a.address).await.unwrap().unwrap();
    assert_eq!(store.get_entry(&a.address).await.unwrap(), None);
    let (page, next) = store.scan_certificates(0, 100).await.unwrap();
    assert_eq!(next, None);
    assert_eq!(
        page,
        cb.iter()
            .map(|c| ("frank@example.org".to_owned(), c.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(store.delete_entry(&a.address).await.unwrap(), None);
    assert_eq!(store.head_seq().await.unwrap(), seq);
    assert_eq!(store.count_entries().await.unwrap(), 1);
    let last = store.changes_since(ChangeSeq(seq.0 - 1), 10).await.unwrap();
    assert_eq!(
        kinds_and_keys(&last),
        vec![(ChangeKind::EntryRemoved, "erin@example.org".into())]
    );

    // The key is free again: a new entry, not a resurrection.
    let s = store.put_entry(&a, CertUpdate::Keep).await.unwrap();
    assert_eq!((s.version, s.created), (1, true));
    assert!(
        store
            .get_entry(&a.address)
            .await
            .unwrap()
            .unwrap()
            .certificates
            .is_empty()
    );
}

async fn change_sequence_is_complete_and_ordered(store: Store) {
    use ChangeKind::*;
    let mut expect: Vec<(ChangeSeq, ChangeKind, String)> = Vec::new();
    let e1 = person("one@example.org", None);
    let e2 = person("two@example.org", None);
    let c1 = entry_certificate(1, "one@example.org");
    let anchor = anchor(50);
    let anchor_key = anchor.certificate.fingerprint.to_hex();

    let s = store.put_organisation(&organisation("acme")).await.unwrap();
    expect.push((s, OrganisationChanged, "acme".into()));
    let s = store.put_entry(&e1, CertUpdate::Keep).await.unwrap().seq;
    expect.push((s, EntryUpserted, "one@example.org".into()));
    let s = store.put_entry(&e2, CertUpdate::Keep).await.unwrap().seq;
    expect.push((s, EntryUpserted, "two@example.org".into()));
    let s = store.add_certificate(&e1.address, &c1).await.unwrap();
    expect.push((s, EntryUpserted, "one@example.org".into()));
    let s = store.put_anchor(&anchor).await.unwrap();
    expect.push((s, AnchorsChanged, anchor_key.clone()));

    let batch = records("batch.example.org", 3, 100);
    let s = store.import_batch(&batch).await.unwrap();
    for (i, r) in batch.iter().enumerate() {
        let seq = ChangeSeq(s.0 - 2 + i as u64);
        expect.push((seq, EntryUpserted, r.entry.address.key()));
    }

    let untrusted = TrustVerdict {
        status: TrustStatus::Untrusted,
        reason: "anchor removed".into(),
        evaluated_at: at(1_770_000_000, 0),
    };
    let s = store
        .update_trust(&[(
            "one@example.org".into(),
            c1.certificate.fingerprint,
            untrusted,
        )])
        .await
        .unwrap();
    expect.push((s, EntryUpserted, "one@example.org".into()));
    let s = store
        .remove_certificate(&e1.address, &c1.certificate.fingerprint)
        .await
        .unwrap()
        .unwrap();
    expect.push((s, EntryUpserted, "one@example.org".into()));
    let s = store.delete_entry(&e2.address).await.unwrap().unwrap();
    expect.push((s, EntryRemoved, "two@example.org".into()));
    let s = store
        .delete_anchor(&anchor.certificate.fingerprint)
        .await
        .unwrap()
        .unwrap();
    expect.push((s, AnchorsChanged, anchor_key));
    let s = store
        .delete_organisation(&org_id("acme"))
        .await
        .unwrap()
        .unwrap();
    expect.push((s, OrganisationChanged, "acme".into()));

    let all = changes_after(&store, ChangeSeq(0), 1_000).await;
    let got: Vec<_> = all.iter().map(|c| (c.seq, c.kind, c.key.clone())).collect();
    assert_eq!(got, expect);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.head_seq().await.unwrap(), all.last().unwrap().seq);
    // Paging in small steps sees the same.
    assert_eq!(changes_after(&store, ChangeSeq(0), 2).await, all);
    assert_eq!(
        changes_after(&store, all[4].seq, 3).await,
        all[5..].to_vec()
    );
    let head = store.head_seq().await.unwrap();
    assert!(store.changes_since(head, 10).await.unwrap().is_empty());
}

async fn concurrent_writers_never_reorder_what_readers_saw(store: Store) {
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 50;
    let done = Arc::new(AtomicBool::new(false));

    // The reader applies changes as a derived view would: it remembers the
    // last number it applied and asks for what comes after.
    let reader = {
        let store = store.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen: Vec<Change> = Vec::new();
            let mut last = ChangeSeq(0);
            let mut polls = 0u64;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = store.changes_since(last, 37).await.unwrap();
                polls += 1;
                for c in &page {
                    assert!(c.seq > last, "{:?} after {last:?}", c.seq);
                    last = c.seq;
                }
                let empty = page.is_empty();
                seen.extend(page);
                if finished && empty {
                    return (seen, polls);
                }
                tokio::task::yield_now().await;
            }
        })
    };

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..PER_WRITER {
                    let address = format!("w{w}-{i}@example.org");
                    let cert = entry_certificate((w * 1_000 + i) as u64, &address);
                    let s = store
                        .put_entry(&person(&address, None), CertUpdate::Replace(vec![cert]))
                        .await
                        .unwrap();
                    seqs.push((s.seq, address));
                }
                seqs
            })
        })
        .collect();
    let mut written = Vec::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    let (seen, polls) = reader.await.unwrap();

    // Whatever committed later than the reader's position got a larger
    // number: what the reader collected is the whole log, in order.
    let all = changes_after(&store, ChangeSeq(0), 1_000).await;
    let seen_seqs: HashSet<ChangeSeq> = seen.iter().map(|c| c.seq).collect();
    let behind: Vec<ChangeSeq> = all
        .iter()
        .map(|c| c.seq)
        .filter(|s| !seen_seqs.contains(s))
        .collect();
    assert!(
        behind.is_empty(),
        "{} changes appeared behind the reader ({polls} polls), first {:?}",
        behind.len(),
        &behind[..behind.len().min(5)]
    );
    assert_eq!(seen, all);
    assert_eq!(all.len(), WRITERS * PER_WRITER);
    let numbers: BTreeSet<ChangeSeq> = written.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        numbers.len(),
        written.len(),
        "a number was handed out twice"
    );
    let by_seq: HashMap<ChangeSeq, &str> = all.iter().map(|c| (c.seq, c.key.as_str())).collect();
    for (seq, address) in &written {
        assert_eq!(by_seq.get(seq), Some(&address.as_str()));
    }
    assert_eq!(
        store.count_entries().await.unwrap(),
        (WRITERS * PER_WRITER) as u64
    );
}

async fn write_time_counts_every_write_transaction(store: Store) {
    let before = store.write_time();
    store
        .import_batch(&records("timed.example.org", 50, 0))
        .await
        .unwrap();
    let after_commit = store.write_time();
    assert!(after_commit > before, "{before:?} then {after_commit:?}");
    // A transaction that fails and rolls back was open too.
    let mut bad = records("timed.example.org", 5, 100);
    bad[2].entry.organisation = Some(org_id("ghost"));
    store.import_batch(&bad).await.unwrap_err();
    let after_rollback = store.write_time();
    assert!(
        after_rollback > after_commit,
        "{after_commit:?} then {after_rollback:?}"
    );
    // Reads are not writes.
    store.count_entries().await.unwrap();
    store.changes_since(ChangeSeq(0), 10).await.unwrap();
    assert_eq!(store.write_time(), after_rollback);
}

async fn failed_write_leaves_nothing_behind(store: Store) {
    let old = records("old.example.org", 10, 0);
    store.import_batch(&old).await.unwrap();
    let head = store.head_seq().await.unwrap();

    // One record in the batch names an organisation that does not exist.
    let mut batch = records("new.example.org", 100, 1_000);
    batch[57].entry.organisation = Some(org_id("ghost"));
    for r in &old {
        let mut r = r.clone();
        r.entry.display_name = "changed".into();
        r.certificates = vec![entry_certificate(9_999, "x@old.example.org")];
        batch.push(r);
    }
    let err = store.import_batch(&batch).await.unwrap_err();
    assert_kind(err, ErrorKind::Conflict);

    assert_eq!(store.head_seq().await.unwrap(), head);
    assert!(store.changes_since(head, 10).await.unwrap().is_empty());
    assert_eq!(store.count_entries().await.unwrap(), 10);
    let new_keys: Vec<String> = batch[..100].iter().map(|r| r.entry.address.key()).collect();
    assert!(store.get_entries(&new_keys).await.unwrap().is_empty());
    let old_keys: Vec<String> = old.iter().map(|r| r.entry.address.key()).collect();
    let still: Vec<EntryRecord> = store.get_entries(&old_keys).await.unwrap();
    let expect: Vec<EntryRecord> = old
        .iter()
        .map(|r| EntryRecord {
            entry: with_version(r.entry.clone(), 1),
            certificates: r.certificates.clone(),
        })
        .collect();
    assert_eq!(still, expect);

    // The failed transaction left no lock and no gap behind.
    let s = store
        .put_entry(&person("after@example.org", None), CertUpdate::Keep)
        .await
        .unwrap();
    assert_eq!(s.seq, ChangeSeq(head.0 + 1));
}

async fn import_batch_upserts(store: Store) {
    assert_eq!(store.import_batch(&[]).await.unwrap(), ChangeSeq(0));

    let first = records("imp.example.org", 300, 1_000);
    let s1 = store.import_batch(&first).await.unwrap();
    assert_eq!(store.head_seq().await.unwrap(), s1);
    assert_eq!(changes_after(&store, ChangeSeq(0), 1_000).await.len(), 300);
    let keys: Vec<String> = first.iter().map(|r| r.entry.address.key()).collect();
    let got = store.get_entries(&keys).await.unwrap();
    assert_eq!(got.len(), 300);
    for (g, r) in got.iter().zip(&first) {
        assert_eq!(g.entry, with_version(r.entry.clone(), 1));
        assert_eq!(g.certificates, r.certificates);
    }

    // Half of them again, changed, with new certificates; and 100 new ones.
    let mut second: Vec<EntryRecord> = first[..150]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            r.entry.display_name = format!("renamed {i}");
            r.certificates = vec![entry_certificate(
                5_000 + i as u64,
                &r.entry.address.to_string(),
            )];
            r
        })
        .collect();
    second.extend(records("imp2.example.org", 100, 9_000));
    let s2 = store.import_batch(&second).await.unwrap();
    store.analyze().await.unwrap();
    assert_eq!(s2, ChangeSeq(s1.0 + 250));
    let news = changes_after(&store, s1, 1_000).await;
    assert_eq!(news.len(), 250);
    assert!(news.iter().all(|c| c.kind == ChangeKind::EntryUpserted));
    assert_eq!(store.count_entries().await.unwrap(), 400);

    let got = store.get_entries(&keys).await.unwrap();
    for (i, g) in got.iter().enumerate() {
        if i < 150 {
            assert_eq!(g.entry.version, 2);
            assert_eq!(g.entry.display_name, format!("renamed {i}"));
            assert_eq!(g.certificates, second[i].certificates);
        } else {
            assert_eq!(g.entry.version, 1);
            assert_eq!(g.certificates, first[i].certificates);
        }
    }

    // A key twice in one batch: written once, the last occurrence wins.
    let mut a = first[0].clone();
    a.entry.display_name = "first".into();
    let mut b = first[0].clone();
    b.entry.display_name = "last".into();
    let before = store.head_seq().await.unwrap();
    let s3 = store.import_batch(&[a, b]).await.unwrap();
    assert_eq!(s3, ChangeSeq(before.0 + 1));
    let got = store
        .get_entry(&first[0].entry.address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.entry.display_name, "last");
    assert_eq!(got.entry.version, 3);
}

async fn scans_visit_everything_exactly_once(store: Store) {
    let mut all = records("scan.example.org", 257, 0);
    for (i, r) in all.iter_mut().enumerate() {
        let address = r.entry.address.to_string();
        r.entry.visibility = if i % 4 == 1 {
            Visibility::Internal
        } else {
            Visibility::Public
        };
        r.certificates = (0..i % 3)
            .map(|j| entry_certificate((i * 10 + j) as u64, &address))
            .collect();
    }
    for chunk in all.chunks(100) {
        store.import_batch(chunk).await.unwrap();
    }
    // Holes in the id space.
    for r in all.iter().step_by(50) {
        store.delete_entry(&r.entry.address).await.unwrap().unwrap();
    }
    let live: Vec<&EntryRecord> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 50 != 0)
        .map(|(_, r)| r)
        .collect();

    let (seen, pages) = all_pages(10, |after| store.scan_entries(after, 10)).await;
    assert!(pages >= live.len() / 10);
    let keys: HashSet<String> = seen.iter().map(|r| r.entry.address.key()).collect();
    assert_eq!(keys.len(), seen.len(), "an entry was scanned twice");
    assert_eq!(seen.len(), live.len());
    let expect: HashMap<String, &EntryRecord> =
        live.iter().map(|r| (r.entry.address.key(), *r)).collect();
    for r in &seen {
        let e = expect[&r.entry.address.key()];
        assert_eq!(r.entry, with_version(e.entry.clone(), 1));
        assert_eq!(r.certificates, e.certificates);
    }

    // The narrow scan behind the LDAP attribute view: the same entries, the same names.
    let (names, _) = all_pages(9, |after| store.scan_entry_names(after, 9)).await;
    assert_eq!(names.len(), live.len());
    for n in &names {
        assert_eq!(*n, ccdir::domain::EntryNames::of(&expect[&n.key].entry));
    }

    let (certs, _) = all_pages(7, |after| store.scan_certificates(after, 7)).await;
    let pairs: HashSet<(String, String)> = certs
        .iter()
        .map(|(k, c)| (k.clone(), c.certificate.fingerprint.to_hex()))
        .collect();
    assert_eq!(pairs.len(), certs.len(), "a certificate was scanned twice");
    assert_eq!(
        certs.len(),
        live.iter().map(|r| r.certificates.len()).sum::<usize>()
    );
    for (key, c) in &certs {
        assert!(expect[key].certificates.contains(c));
    }

    // The narrow scan behind the DNS publication view: the same certificates
    // in the same order, with their entries' key and visibility.
    let (published, _) = all_pages(7, |after| store.scan_published(after, 7)).await;
    assert_eq!(published.len(), certs.len());
    for (row, (key, c)) in published.iter().zip(&certs) {
        let e = &expect[key].entry;
        assert_eq!(&row.key, key);
        assert_eq!(row.key, e.address.key());
        assert_eq!(row.visibility, e.visibility);
        assert_eq!(row.binding, c.binding);
        assert_eq!(row.trust, c.trust.status);
        assert_eq!(
            (row.not_before, row.not_after),
            (c.certificate.not_before, c.certificate.not_after)
        );
        let prefix: [u8; 8] = c.certificate.fingerprint.0[..8].try_into().unwrap();
        assert_eq!(row.fingerprint_prefix, u64::from_be_bytes(prefix));
    }

    // The DER behind each row id, for DNS answers; ids no longer stored
    // are left out.
    let mut ids: Vec<i64> = published.iter().map(|r| r.id).collect();
    ids.push(i64::MAX);
    let ders: std::collections::HashMap<i64, Vec<u8>> = store
        .certificate_ders(&ids)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(ders.len(), published.len());
    for (row, (_, c)) in published.iter().zip(&certs) {
        assert_eq!(ders[&row.id], c.certificate.der);
    }

    // The one-pass reads the views are built from at start (on an SQLite
    // file they step SQLite outside the pool): the same rows as the paged
    // scans; the names in the same order, the certificates in any.
    assert_eq!(store.all_entry_names().await.unwrap(), names);
    let mut folded = store
        .fold_published(Vec::new(), |all, row| all.push(row))
        .await
        .unwrap();
    folded.sort_by_key(|r| r.id);
    assert_eq!(folded, published);

    // The keyed read behind the publication view's catch-up: the public
    // entries' rows of the scan, whatever the keys' case; internal, deleted
    // and unknown entries give none.
    let mut asked: Vec<String> = all.iter().map(|r| r.entry.address.key()).collect();
    asked[3] = asked[3].to_uppercase();
    asked.push("nobody@scan.example.org".into());
    let mut keyed = store.published_of(&asked).await.unwrap();
    let mut public: Vec<_> = published
        .iter()
        .filter(|r| r.visibility == Visibility::Public)
        .cloned()
        .collect();
    assert!(
        public.len() < published.len(),
        "the data has internal entries"
    );
    assert!(!public.is_empty());
    let order = |r: &ccdir::storage::PublishedRow| (r.key.clone(), r.id);
    keyed.sort_by_key(order);
    public.sort_by_key(order);
    assert_eq!(keyed, public);
    assert!(store.published_of(&[]).await.unwrap().is_empty());

    // Entries without their certificates, for the index's catch-up: the
    // same entries as the whole records, in the order asked.
    let whole = store.get_entries(&asked).await.unwrap();
    let only = store.get_entries_only(&asked).await.unwrap();
    assert_eq!(only.len(), live.len());
    assert_eq!(only, whole.into_iter().map(|r| r.entry).collect::<Vec<_>>());
    assert!(store.get_entries_only(&[]).await.unwrap().is_empty());
    // A longer list than one statement takes (the catch-up reads pages of
    // thousands): the entries come from its later pieces too.
    let mut long: Vec<String> = (0..300)
        .map(|i| format!("nobody{i}@scan.example.org"))
        .collect();
    long.extend(asked.iter().cloned());
    assert_eq!(store.get_entries_only(&long).await.unwrap(), only);
}

/// Every page of a keyset scan from the start (`scan(after)` answers a page
/// and the next cursor), each at most `limit` long: the items and the
/// number of pages.
async fn all_pages<T, F, Fut>(limit: usize, mut scan: F) -> (Vec<T>, usize)
where
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<i64>), StorageError>>,
{
    let (mut items, mut pages, mut cursor) = (Vec::new(), 0, 0);
    loop {
        let (page, next) = scan(cursor).await.unwrap();
        assert!(page.len() <= limit);
        pages += 1;
        items.extend(page);
        match next {
            Some(n) => cursor = n,
            None => return (items, pages),
        }
    }
}

async fn update_trust_announces_only_status_changes(store: Store) {
    let e1 = person("gina@example.org", None);
    let e2 = person("hank@example.org", None);
    let [c1, c2] = [1, 2].map(|i| entry_certificate(i, "gina@example.org"));
    let c3 = entry_certificate(3, "hank@example.org");
    store
        .put_entry(&e1, CertUpdate::Replace(vec![c1.clone(), c2.clone()]))
        .await
        .unwrap();
    store
        .put_entry(&e2, CertUpdate::Replace(vec![c3.clone()]))
        .await
        .unwrap();
    let head = store.head_seq().await.unwrap();
    let fp = |c: &ccdir::domain::EntryCertificate| c.certificate.fingerprint;

    // Same status, new reason and time: stored, not announced.
    let rechecked = TrustVerdict {
        status: TrustStatus::Trusted,
        reason: "re-checked".into(),
        evaluated_at: at(1_770_000_000, 5),
    };
    let s = store
        .update_trust(&[("gina@example.org".into(), fp(&c1), rechecked.clone())])
        .await
        .unwrap();
    assert_eq!(s, head);
    assert_eq!(store.head_seq().await.unwrap(), head);
    let got = store.get_entry(&e1.address).await.unwrap().unwrap();
    assert_eq!(got.certificates[0].trust, rechecked);

    // Two status changes on one entry, none on the other: one change.
    let untrusted = TrustVerdict {
        status: TrustStatus::Untrusted,
        reason: "no path".into(),
        evaluated_at: at(1_770_000_001, 0),
    };
    let expired = TrustVerdict {
        status: TrustStatus::Expired,
        reason: "expired".into(),
        evaluated_at: at(1_770_000_001, 0),
    };
    let s = store
        .update_trust(&[
            ("GINA@example.org".into(), fp(&c1), untrusted.clone()),
            ("gina@example.org".into(), fp(&c2), expired.clone()),
            ("hank@example.org".into(), fp(&c3), c3.trust.clone()),
            // Not attached there, or no such entry: skipped.
            ("hank@example.org".into(), fp(&c1), expired.clone()),
            ("nobody@example.org".into(), fp(&c1), expired.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(s, ChangeSeq(head.0 + 1));
    assert_eq!(
        kinds_and_keys(&store.changes_since(head, 10).await.unwrap()),
        vec![(ChangeKind::EntryUpserted, "gina@example.org".into())]
    );
    let got = store.get_entry(&e1.address).await.unwrap().unwrap();
    assert_eq!(got.certificates[0].trust, untrusted);
    assert_eq!(got.certificates[1].trust, expired);
    assert_eq!(got.entry.version, 1, "trust is not the origin's data");
    let got = store.get_entry(&e2.address).await.unwrap().unwrap();
    assert_eq!(got.certificates, vec![c3]);

    // Nothing to do: nothing announced.
    assert_eq!(store.update_trust(&[]).await.unwrap(), s);
    assert_eq!(
        store
            .update_trust(&[("gina@example.org".into(), fp(&c1), untrusted)])
            .await
            .unwrap(),
        s
    );
}

async fn anchors_round_trip(store: Store) {
    let a1 = anchor(1);
    let a2 = anchor(2);
    assert_eq!(
        store
            .delete_anchor(&a2.certificate.fingerprint)
            .await
            .unwrap(),
        None
    );
    let s1 = store.put_anchor(&a1).await.unwrap();
    assert_eq!(
        store.get_anchor(&a1.certificate.fingerprint).await.unwrap(),
        Some(a1.clone())
    );

    let mut a1b = a1.clone();
    a1b.source = "bundle-directtrust".into();
    a1b.added_at = at(1_770_000_000, 7);
    let s2 = store.put_anchor(&a1b).await.unwrap();
    assert!(s2 > s1);
    assert_eq!(
        store.get_anchor(&a1.certificate.fingerprint).await.unwrap(),
        Some(a1b.clone())
    );

    store.put_anchor(&a2).await.unwrap();
    let mut expect = vec![a1b.clone(), a2.clone()];
    expect.sort_by_key(|a| a.certificate.fingerprint.to_hex());
    assert_eq!(store.list_anchors().await.unwrap(), expect);

    let s = store
        .delete_anchor(&a1.certificate.fingerprint)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.head_seq().await.unwrap(), s);
    assert_eq!(
        store.get_anchor(&a1.certificate.fingerprint).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .delete_anchor(&a1.certificate.fingerprint)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.list_anchors().await.unwrap(), vec![a2.clone()]);

    let k1 = a1.certificate.fingerprint.to_hex();
    let k2 = a2.certificate.fingerprint.to_hex();
    assert_eq!(
        kinds_and_keys(&changes_after(&store, ChangeSeq(0), 100).await),
        vec![
            (ChangeKind::AnchorsChanged, k1.clone()),
            (ChangeKind::AnchorsChanged, k1.clone()),
            (ChangeKind::AnchorsChanged, k2),
            (ChangeKind::AnchorsChanged, k1),
        ]
    );
}

// ------------------------------------------------------------- not battery

#[tokio::test]
async fn unknown_url_schemes_are_refused_without_echoing_the_url() {
    let err = Store::connect("mysql://root:secret@localhost/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::UnsupportedUrl(_)));
    assert!(!err.to_string().contains("secret"));
    assert_eq!(err.kind(), ErrorKind::Internal);
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Port 1 on the loopback interface: refused at once.
    let err = Store::connect("postgres://ccdir@127.0.0.1:1/ccdir")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

/// `sqlite::memory:` runs on one connection: nothing may need a second one
/// while a transaction holds it.
#[tokio::test]
async fn in_memory_sqlite_works_on_one_connection() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let e = person("mem@example.org", None);
    let c = entry_certificate(1, "mem@example.org");
    store
        .put_entry(&e, CertUpdate::Replace(vec![c.clone()]))
        .await
        .unwrap();
    store
        .import_batch(&records("mem.example.org", 5, 10))
        .await
        .unwrap();
    store.import_batch(&[]).await.unwrap();
    let got = store.get_entry(&e.address).await.unwrap().unwrap();
    assert_eq!(got.certificates, vec![c]);
    assert_eq!(store.head_seq().await.unwrap(), ChangeSeq(6));
    assert_consistent(&store).await;
}

#[test]
fn database_name_is_replaced_in_urls() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h/postgres?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
}

// ---------------------------------------------------------------- benchmark

/// Bulk import throughput: `CCDIR_BENCH_ENTRIES` entries (default 200 000)
/// with one 1.2 KB certificate each, in batches of `CCDIR_BENCH_BATCH`
/// (default 2 000); then the same again as updates; then
/// `CCDIR_BENCH_ROUNDS` (default 200) calls of `get_entries` for 50 keys.
async fn import_rate(store: Store) {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let total = env("CCDIR_BENCH_ENTRIES", 200_000);
    let batch = env("CCDIR_BENCH_BATCH", 2_000);
    let mut all = records("bench.example.org", total, 0);
    for r in &mut all {
        r.certificates[0].chain.clear();
    }
    for pass in ["insert", "update"] {
        let cpu = process_cpu_seconds();
        let started = Instant::now();
        for chunk in all.chunks(batch) {
            store.import_batch(chunk).await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds() - cpu;
        println!(
            "import_batch on {} ({pass}): {total} entries in {secs:.2} s = {:.0} entries/s \
             (batches of {batch}); this process used {cpu:.2} s CPU = {:.1} µs/entry",
            store.backend(),
            total as f64 / secs,
            cpu * 1e6 / total as f64
        );
    }
    assert_eq!(store.count_entries().await.unwrap(), total as u64);

    // The read hot path, for reference, with planner statistics as an
    // importer leaves them.
    store.analyze().await.unwrap();
    let keys: Vec<String> = all.iter().take(50).map(|r| r.entry.address.key()).collect();
    let started = Instant::now();
    let rounds = env("CCDIR_BENCH_ROUNDS", 200);
    for _ in 0..rounds {
        assert_eq!(store.get_entries(&keys).await.unwrap().len(), 50);
    }
    println!(
        "get_entries on {} (50 keys): {:.2} ms per call",
        store.backend(),
        started.elapsed().as_secs_f64() * 1_000.0 / rounds as f64
    );
}

/// User + system CPU time of this process so far (Linux `/proc`), so that
/// the benchmark can be read on a machine busy with other work.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 12th and 13th of those, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run in release with --ignored --nocapture"]
async fn import_rate_sqlite() {
    on_sqlite(import_rate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run in release with --ignored --nocapture"]
async fn import_rate_postgres() {
    on_postgres("import_rate", import_rate).await;
}
