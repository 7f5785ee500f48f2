//! Federation across real processes (STYLE principle 9): every node is the
//! `ccdir` binary on port 0 with its own SQLite file (one scenario puts
//! the root on PostgreSQL), and misbehaving children are small HTTP
//! servers in this process serving logs signed here.
//!
//! * the whole hierarchy: root, two intermediates, three organisations;
//!   a provider is found at the root within two seconds with provenance;
//!   internal entries never leave; status and `verify`;
//! * page faults (forged signature, reordering, replay, truncated and
//!   oversized pages, a child that hangs): refused with their reason,
//!   nothing applied, the good child keeps syncing;
//! * record faults (outside the delegation, expired delegation, unbound
//!   certificate) quarantined; forks and rollbacks stop the child;
//! * a root killed with SIGKILL while applying converges, nothing lost or
//!   applied twice;
//! * a key rotation; a root on PostgreSQL.

mod fake;
pub(crate) mod node;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as STANDARD_B64;
use serde_json::{Value, json};

use ccdir::domain::pem_certificate;
use ccdir::federation::Key;
use ccdir::pki::NodeKey;

use crate::support::{TestPki, metric_value, metrics_text};
use fake::{Behaviour, FakeChild, FakeLog, grant};
use node::{
    Node, delete_entry, fed_config, get, http, index_caught_up, put_entry, search, wait_for,
};

const LONG: Duration = Duration::from_secs(60);

fn names(results: &[Value]) -> Vec<String> {
    results
        .iter()
        .map(|r| r["address"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn has_entry(client: &reqwest::Client, node: &Node, token: &str, address: &str) -> bool {
    !get(
        client,
        &format!("{}/api/v1/entries/{address}", node.url),
        Some(token),
    )
    .await
    .is_null()
}

fn rejections_of<'a>(status: &'a Value, child: &str) -> Vec<&'a Value> {
    status["rejections"]
        .as_array()
        .expect("rejections")
        .iter()
        .filter(|r| r["child"] == child)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_added_at_an_organisation_is_found_at_the_root_with_provenance() {
    let client = http();
    let mut root = Node::init("root");
    let mut inter_a = Node::init("inter-a");
    let mut inter_b = Node::init("inter-b");
    let mut cardio = Node::init("cardio");
    let mut neuro = Node::init("neuro");
    let mut clinic = Node::init("clinic");

    root.configure(&fed_config(None, None, ""));
    root.start();
    for n in [&mut inter_a, &mut inter_b] {
        n.configure(&fed_config(Some(&root.key), Some(&root.url), ""));
        n.start();
    }
    for (n, parent) in [
        (&mut cardio, inter_a.url.clone()),
        (&mut neuro, inter_a.url.clone()),
        (&mut clinic, inter_b.url.clone()),
    ] {
        n.configure(&fed_config(Some(&root.key), Some(&parent), ""));
        n.start();
    }

    // The root delegates example.org and example.net; the intermediates
    // sub-delegate parts of them.
    inter_a.install(&root.delegate(&inter_a, &["example.org"], "30d"));
    inter_b.install(&root.delegate(&inter_b, &["example.net"], "30d"));
    cardio.install(&inter_a.delegate(&cardio, &["cardio.example.org"], "7d"));
    neuro.install(&inter_a.delegate(&neuro, &["neuro.example.org"], "7d"));
    clinic.install(&inter_b.delegate(&clinic, &["clinic.example.net"], "7d"));
    // Nobody can hand out what it does not hold.
    let out = inter_a.cli(&[
        "delegate",
        "--child",
        &clinic.key,
        "--domain",
        "example.net",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("may not delegate example.net"), "{err}");
    // A delegation for someone else is not installed.
    let out = clinic.cli(&[
        "federation",
        "install",
        inter_a
            .delegate(&neuro, &["neuro.example.org"], "1d")
            .to_str()
            .unwrap(),
    ]);
    assert!(!out.status.success());

    root.add_child(&inter_a);
    root.add_child(&inter_b);
    inter_a.add_child(&cardio);
    inter_a.add_child(&neuro);
    inter_b.add_child(&clinic);

    // The root trusts the CA that issued the provider's certificate.
    let pki = TestPki::new("Federation");
    let root_admin = root.token();
    let res = client
        .post(format!("{}/api/v1/anchors", root.url))
        .bearer_auth(&root_admin)
        .header("content-type", "application/x-pem-file")
        .body(pki.root_pem())
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());

    // An organisation, a public provider and an internal one at cardio.
    let token = cardio.token();
    let res = client
        .post(format!("{}/api/v1/organisations", cardio.url))
        .bearer_auth(&token)
        .json(
            &json!({"id": "heart-center", "name": "Heart Center of Example",
                       "domains": ["cardio.example.org"], "locality": "Boston"}),
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let alice = "alice.quimby@cardio.example.org";
    let started = Instant::now();
    put_entry(
        &client,
        &cardio,
        &token,
        alice,
        json!({"given_name": "Alice", "surname": "Quimby", "organisation": "heart-center",
               "specialty": "Cardiology", "locality": "Boston",
               "certificates": [pem_certificate(&pki.valid_leaf(alice)),
                                pem_certificate(&pki.issuing_der())]}),
    )
    .await;
    put_entry(
        &client,
        &cardio,
        &token,
        "bob.quimby@cardio.example.org",
        json!({"given_name": "Bob", "surname": "Quimby", "organisation": "heart-center",
               "visibility": "internal"}),
    )
    .await;

    // Found by name at the root within two seconds.
    wait_for("alice at the root", Duration::from_secs(2), || async {
        !search(&client, &root, "quimby", None).await.is_empty()
    })
    .await;
    let elapsed = started.elapsed();
    eprintln!("org -> intermediate -> root search: {elapsed:?}");
    let hits = search(&client, &root, "quimby", Some(&root_admin)).await;
    assert_eq!(
        names(&hits),
        vec![alice],
        "the internal entry never leaves cardio"
    );
    let hit = &hits[0];
    assert_eq!(hit["organisation"], "Heart Center of Example");
    assert_eq!(hit["certificates"][0]["trust"], "trusted", "{hit:#}");
    let p = &hit["provenance"];
    assert_eq!(p["publisher"], cardio.key.as_str(), "{hit:#}");
    assert_eq!(p["via"], inter_a.key.as_str());
    let chain = p["delegation"].as_array().unwrap();
    assert_eq!(chain.len(), 2, "{p:#}");
    assert_eq!(chain[0]["issuer"], root.key.as_str());
    assert_eq!(chain[0]["subject"], inter_a.key.as_str());
    assert_eq!(chain[0]["domains"], json!(["example.org"]));
    assert_eq!(chain[1]["issuer"], inter_a.key.as_str());
    assert_eq!(chain[1]["subject"], cardio.key.as_str());
    assert_eq!(chain[1]["domains"], json!(["cardio.example.org"]));
    // The entry itself carries the same provenance; the intermediate got it directly.
    let entry = get(
        &client,
        &format!("{}/api/v1/entries/{alice}", root.url),
        None,
    )
    .await;
    assert_eq!(entry["provenance"]["publisher"], cardio.key.as_str());
    assert_eq!(entry["origin"], cardio.key.as_str());
    let at_inter = search(&client, &inter_a, "quimby", Some(&inter_a.token())).await;
    assert_eq!(names(&at_inter), vec![alice]);
    assert_eq!(at_inter[0]["provenance"]["via"], cardio.key.as_str());
    for n in [&root, &inter_a] {
        let v = get(
            &client,
            &format!("{}/api/v1/entries/bob.quimby@cardio.example.org", n.url),
            Some(&n.token()),
        )
        .await;
        assert!(v.is_null(), "{} must not hold the internal entry", n.name);
    }
    // Local entries at cardio carry no provenance.
    let local = get(
        &client,
        &format!("{}/api/v1/entries/{alice}", cardio.url),
        None,
    )
    .await;
    assert!(local.get("provenance").is_none(), "{local:#}");
    // The pulls show in the root's metrics.
    let metrics = metrics_text(&client, &root.url).await;
    assert!(
        metric_value(
            &metrics,
            "ccdir_federation_records_total{outcome=\"applied\"}"
        ) >= 1.0
    );
    assert!(
        metric_value(
            &metrics,
            "ccdir_federation_pull_seconds_total{stage=\"apply\"}"
        ) > 0.0
    );

    // The other organisations reach the root too, through either intermediate.
    put_entry(
        &client,
        &neuro,
        &neuro.token(),
        "nina.rasmol@neuro.example.org",
        json!({"given_name": "Nina", "surname": "Rasmol", "specialty": "Neurology"}),
    )
    .await;
    put_entry(
        &client,
        &clinic,
        &clinic.token(),
        "carl.tovey@clinic.example.net",
        json!({"given_name": "Carl", "surname": "Tovey"}),
    )
    .await;
    wait_for("neuro and clinic at the root", LONG, || async {
        !search(&client, &root, "rasmol", None).await.is_empty()
            && !search(&client, &root, "tovey", None).await.is_empty()
    })
    .await;
    let carl = search(&client, &root, "tovey", None).await;
    assert_eq!(carl[0]["provenance"]["via"], inter_b.key.as_str());

    // Removal and withdrawal propagate: alice deleted, nina made internal.
    delete_entry(&client, &cardio, &token, alice).await;
    put_entry(
        &client,
        &neuro,
        &neuro.token(),
        "nina.rasmol@neuro.example.org",
        json!({"given_name": "Nina", "surname": "Rasmol", "visibility": "internal"}),
    )
    .await;
    wait_for("removals at the root", LONG, || async {
        search(&client, &root, "quimby", Some(&root_admin))
            .await
            .is_empty()
            && search(&client, &root, "rasmol", Some(&root_admin))
                .await
                .is_empty()
    })
    .await;

    // Status: every child caught up, nothing refused.
    wait_for("the root caught up", LONG, || async {
        let s = root.status();
        s["children"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["lag"] == 0 && c["status"] == "active" && c["cursor"].as_u64() > Some(0))
    })
    .await;
    let s = root.status();
    assert!(s["is_root"].as_bool().unwrap());
    assert_eq!(s["children"].as_array().unwrap().len(), 2);
    assert!(s["rejections"].as_array().unwrap().is_empty(), "{s:#}");
    let text = root.cli_ok(&["federation", "status"]);
    for needle in [
        inter_a.key.as_str(),
        inter_b.key.as_str(),
        "state active",
        "lag 0",
        "last pull",
        "rejections 0",
    ] {
        assert!(text.contains(needle), "status lacks {needle:?}:\n{text}");
    }
    let text = cardio.cli_ok(&["federation", "status"]);
    assert!(
        text.contains("-> ") && text.contains("cardio.example.org"),
        "{text}"
    );
    let inter_status = inter_a.status();
    assert_eq!(inter_status["children"].as_array().unwrap().len(), 2);

    // The root's log verifies from scratch, and so do the mirrors.
    let out = root.cli_ok(&[
        "verify", "--url", &root.url, "--key", &root.key, "--proofs", "8",
    ]);
    assert!(out.contains("verified log"), "{out}");
    assert!(out.contains(", 0 not"), "every record is covered: {out}");
    for n in [&root, &inter_a, &inter_b] {
        let out = n.cli_ok(&["verify", "--mirrors"]);
        assert!(out.lines().all(|l| l.ends_with(": ok")), "{out}");
    }
}

/// A child for each page fault, beside a good one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_reordered_replayed_truncated_oversized_and_hanging_pages_are_refused() {
    let client = http();
    let mut root = Node::init("root");
    let root_key = NodeKey::load_pem(&root.data_dir().join("node.key")).unwrap();
    let mut good = Node::init("good");
    good.configure(&fed_config(Some(&root.key), None, ""));
    good.install(&root.delegate(&good, &["good.example.com"], "1d"));
    good.start();

    let cases = [
        ("forged", Behaviour::ForgeSignature(2), "bad-signature"),
        ("reorder", Behaviour::Reorder, "out-of-order"),
        ("replay", Behaviour::Replay, "replayed"),
        ("truncated", Behaviour::Truncate, "truncated-page"),
        ("oversized", Behaviour::Oversize(100_000), "oversized-page"),
        ("hanging", Behaviour::Hang, "timeout"),
    ];
    let mut fakes = Vec::new();
    let mut children = String::new();
    for (i, (name, behaviour, _)) in cases.iter().enumerate() {
        let key = NodeKey::generate(&mut rand::rng());
        let mut log = FakeLog::new(key);
        let domain = format!("{name}.example.com");
        log.delegation(vec![grant(&root_key, log.id(), &[&domain], -1, 24)]);
        log.person(&format!("x{i}@{domain}"), &format!("Faultx{i}"), vec![]);
        log.person(&format!("y{i}@{domain}"), &format!("Faulty{i}"), vec![]);
        let fake = FakeChild::start(log, *behaviour).await;
        children.push_str(&format!(
            "[[federation.children]]\nkey = \"{}\"\nurl = \"{}\"\nname = \"{name}\"\n",
            fake.key, fake.url
        ));
        fakes.push(fake);
    }
    children.push_str(&format!(
        "[[federation.children]]\nkey = \"{}\"\nurl = \"{}\"\nname = \"good\"\n",
        good.key, good.url
    ));
    root.configure(&fed_config(
        None,
        None,
        &format!("max_page_bytes = 65536\nrequest_timeout_ms = 1500\n{children}"),
    ));
    root.start();

    // Every faulty child is refused with its own reason.
    wait_for("every fault recorded", LONG, || async {
        let s = root.status();
        cases.iter().zip(&fakes).all(|((_, _, code), f)| {
            rejections_of(&s, &f.key.to_hex())
                .iter()
                .any(|r| r["code"] == *code)
        })
    })
    .await;
    let s = root.status();
    for ((name, _, code), fake) in cases.iter().zip(&fakes) {
        let key = fake.key.to_hex();
        let child = s["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == key)
            .unwrap();
        // Refused, not stopped: it may be fine next time.
        assert_eq!(child["status"], "active", "{name}: {child:#}");
        assert_eq!(child["last_error_code"], *code, "{name}: {child:#}");
        // Nothing of it applied.
        assert_eq!(child["cursor"], 0, "{name}: {child:#}");
        assert_eq!(child["applied"], 0, "{name}");
        assert!(child["failures"].as_u64().unwrap() >= 1);
        let reasons = rejections_of(&s, &key);
        assert!(
            reasons.iter().all(|r| r["code"] == *code),
            "{name}: {reasons:#?}"
        );
        assert!(
            reasons.iter().all(|r| r["seq"].is_null()),
            "page faults name no record"
        );
    }
    let detail = |name: &str| {
        let i = cases.iter().position(|c| c.0 == name).unwrap();
        rejections_of(&s, &fakes[i].key.to_hex())[0]["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        detail("forged").contains("record 2 of"),
        "{}",
        detail("forged")
    );
    assert!(detail("forged").contains("does not verify"));
    assert_eq!(detail("reorder"), "expected record 1, got record 2");
    assert_eq!(detail("replay"), "expected record 3, got record 2");
    assert!(
        detail("truncated").starts_with("the page ends after"),
        "{}",
        detail("truncated")
    );
    assert_eq!(detail("oversized"), "the page is larger than 65536 bytes");
    assert_eq!(detail("hanging"), "no complete answer within 1500 ms");
    index_caught_up(&client, &root).await;
    for i in 0..cases.len() {
        assert!(
            search(&client, &root, &format!("faultx{i}"), None)
                .await
                .is_empty()
        );
    }
    // A repeated fault is recorded once, not once per retry.
    assert_eq!(rejections_of(&s, &fakes[1].key.to_hex()).len(), 1);

    // The good child keeps syncing throughout.
    put_entry(
        &client,
        &good,
        &good.token(),
        "gina.wellby@good.example.com",
        json!({"given_name": "Gina", "surname": "Wellby"}),
    )
    .await;
    wait_for("the good child's entry", LONG, || async {
        !search(&client, &root, "wellby", None).await.is_empty()
    })
    .await;
    let gc = root.child(&good.key);
    assert!(gc["last_error_code"].is_null(), "{gc:#}");
}

/// Authentic records that may not take effect, and children whose log
/// contradicts what the root holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_delegation_expired_unbound_fork_and_rollback_are_caught() {
    let client = http();
    let mut root = Node::init("root");
    let root_key = NodeKey::load_pem(&root.data_dir().join("node.key")).unwrap();
    let pki = TestPki::new("Unbound");
    let new_key = || NodeKey::generate(&mut rand::rng());
    let key_bytes = |k: &NodeKey| NodeKey::from_pkcs8_pem(&k.to_pkcs8_pem().unwrap()).unwrap();

    let mut ood = FakeLog::new(new_key());
    ood.delegation(vec![grant(
        &root_key,
        ood.id(),
        &["ood.example.com"],
        -1,
        24,
    )]);
    ood.person("in@ood.example.com", "Oodinside", vec![]);
    ood.person("out@evil.example.com", "Oodoutside", vec![]);

    let mut expired = FakeLog::new(new_key());
    expired.delegation(vec![grant(
        &root_key,
        expired.id(),
        &["exp.example.com"],
        -48,
        -24,
    )]);
    expired.person("x@exp.example.com", "Expiredx", vec![]);

    let mut unbound = FakeLog::new(new_key());
    unbound.delegation(vec![grant(
        &root_key,
        unbound.id(),
        &["unbound.example.com"],
        -1,
        24,
    )]);
    unbound.person(
        "carol@unbound.example.com",
        "Unboundcarol",
        vec![pki.valid_leaf("dave@unbound.example.com")],
    );

    let fork_key = new_key();
    let fork_grant = grant(
        &root_key,
        Key(fork_key.public_key_bytes()),
        &["fork.example.com"],
        -1,
        24,
    );
    let mut fork = FakeLog::new(key_bytes(&fork_key));
    fork.delegation(vec![fork_grant.clone()]);
    fork.person("a@fork.example.com", "Forka", vec![]);

    let rb_key = new_key();
    let mut rollback = FakeLog::new(key_bytes(&rb_key));
    rollback.delegation(vec![grant(
        &root_key,
        rollback.id(),
        &["rb.example.com"],
        -1,
        24,
    )]);
    rollback.person("a@rb.example.com", "Rollbacka", vec![]);
    rollback.person("b@rb.example.com", "Rollbackb", vec![]);

    let mut fakes = Vec::new();
    let mut children = String::new();
    for (name, log) in [
        ("ood", ood),
        ("expired", expired),
        ("unbound", unbound),
        ("fork", fork),
        ("rollback", rollback),
    ] {
        let f = FakeChild::start(log, Behaviour::Honest).await;
        children.push_str(&format!(
            "[[federation.children]]\nkey = \"{}\"\nurl = \"{}\"\nname = \"{name}\"\n",
            f.key, f.url
        ));
        fakes.push(f);
    }
    let [ood, expired, unbound, fork, rollback] = &fakes[..] else {
        unreachable!()
    };
    root.configure(&fed_config(None, None, &children));
    root.start();
    let want = [
        (ood, 3),
        (expired, 2),
        (unbound, 2),
        (fork, 2),
        (rollback, 3),
    ];
    wait_for("all logs pulled", LONG, || async {
        let s = root.status();
        want.iter().all(|(f, n)| {
            s["children"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["key"] == f.key.to_hex() && c["cursor"] == *n)
        })
    })
    .await;
    index_caught_up(&client, &root).await;
    let s = root.status();
    let quarantined = |f: &FakeChild| {
        let r = rejections_of(&s, &f.key.to_hex());
        assert_eq!(r.len(), 1, "{r:#?}");
        (
            r[0]["code"].as_str().unwrap().to_owned(),
            r[0]["detail"].as_str().unwrap().to_owned(),
            r[0]["seq"].as_u64().unwrap(),
        )
    };
    let (code, detail, seq) = quarantined(ood);
    assert_eq!((code.as_str(), seq), ("out-of-delegation", 3));
    assert!(detail.contains("covers evil.example.com"), "{detail}");
    let (code, detail, seq) = quarantined(expired);
    assert_eq!((code.as_str(), seq), ("delegation-expired", 2));
    assert!(
        detail.contains("exp.example.com") && detail.contains("expired at"),
        "{detail}"
    );
    let (code, detail, seq) = quarantined(unbound);
    assert_eq!((code.as_str(), seq), ("certificate-not-bound", 2));
    assert!(detail.contains("dave@unbound.example.com"), "{detail}");
    // Only what was allowed took effect.
    let token = root.token();
    for (address, present) in [
        ("in@ood.example.com", true),
        ("out@evil.example.com", false),
        ("x@exp.example.com", false),
        ("carol@unbound.example.com", false),
        ("a@fork.example.com", true),
        ("b@rb.example.com", true),
    ] {
        assert_eq!(
            has_entry(&client, &root, &token, address).await,
            present,
            "{address}"
        );
    }
    assert_eq!(
        names(&search(&client, &root, "oodinside", None).await),
        vec!["in@ood.example.com"]
    );
    let c = root.child(&ood.key.to_hex());
    assert_eq!(
        (c["applied"].as_u64(), c["quarantined"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(c["status"], "active");

    // The fork: the child now shows a different record 2.
    let mut other = FakeLog::new(key_bytes(&fork_key));
    other.delegation(vec![fork_grant]);
    other.person("b@fork.example.com", "Forkb", vec![]);
    other.person("c@fork.example.com", "Forkc", vec![]);
    fork.replace_log(other);
    // The rollback: the child now shows one record where we hold three.
    let mut shorter = FakeLog::new(key_bytes(&rb_key));
    shorter.delegation(vec![grant(
        &root_key,
        shorter.id(),
        &["rb.example.com"],
        -1,
        24,
    )]);
    rollback.replace_log(shorter);
    wait_for("fork and rollback stop their children", LONG, || async {
        let s = root.status();
        [fork, rollback].iter().all(|f| {
            s["children"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["key"] == f.key.to_hex() && c["status"] == "stopped")
        })
    })
    .await;
    let fc = root.child(&fork.key.to_hex());
    assert_eq!(fc["stopped_code"], "fork", "{fc:#}");
    assert_eq!(
        fc["stopped_detail"],
        "the child served a different record 2 than the one we hold"
    );
    assert_eq!(fc["cursor"], 2, "nothing of the fork applied");
    let rc = root.child(&rollback.key.to_hex());
    assert_eq!(rc["stopped_code"], "rollback", "{rc:#}");
    assert_eq!(
        rc["stopped_detail"],
        "the child's head went back to 1 records; we hold 3"
    );
    assert_eq!(rc["cursor"], 3);
    index_caught_up(&client, &root).await;
    for (address, present) in [
        ("a@fork.example.com", true),
        ("b@fork.example.com", false),
        ("c@fork.example.com", false),
        ("a@rb.example.com", true),
    ] {
        assert_eq!(
            has_entry(&client, &root, &token, address).await,
            present,
            "{address}"
        );
    }
    // Stopped children stay stopped; the others stay active.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let s = root.status();
    for f in [ood, expired, unbound] {
        let c = s["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == f.key.to_hex())
            .unwrap();
        assert_eq!(c["status"], "active");
    }
    let text = root.cli_ok(&["federation", "status"]);
    for needle in [
        "STOPPED fork: the child served a different record 2",
        "STOPPED rollback",
        "out-of-delegation: no delegation from the root",
        "delegation-expired",
        "certificate-not-bound",
    ] {
        assert!(text.contains(needle), "status lacks {needle:?}:\n{text}");
    }
    // What was mirrored still verifies.
    let out = root.cli_ok(&["verify", "--mirrors"]);
    assert_eq!(
        out.lines().filter(|l| l.ends_with(": ok")).count(),
        5,
        "{out}"
    );
    // An operator may resume a stopped child; it stops again at once.
    root.cli_ok(&["federation", "resume", "--child", &fork.key.to_hex()]);
    wait_for("the fork is stopped again", LONG, || async {
        root.child(&fork.key.to_hex())["status"] == "stopped"
    })
    .await;
}

/// Kills the root with SIGKILL several times while it applies pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_killed_mid_apply_restarts_and_converges() {
    const N: usize = 1500;
    let client = http();
    let mut root = Node::init("root");
    let mut org = Node::init("org");
    org.configure(&fed_config(Some(&root.key), None, ""));
    org.install(&root.delegate(&org, &["crash.example.org"], "1d"));
    let rows: String = (0..N)
        .map(|i| {
            json!({"address": format!("p{i}@crash.example.org"), "given_name": "Pat",
                   "surname": format!("Crashley{i}"), "specialty": "Cardiology"})
            .to_string()
                + "\n"
        })
        .collect();
    let file = org.data_dir().join("people.jsonl");
    std::fs::write(&file, rows).unwrap();
    org.cli_ok(&["import", file.to_str().unwrap()]);
    org.start();
    let total = N as u64 + 1; // the delegation record, then one per entry
    wait_for("the org published everything", LONG, || async {
        get(&client, &format!("{}/federation/v1/head", org.url), None).await["size"] == total
    })
    .await;

    root.configure(&fed_config(None, None, "page_size = 150\n"));
    root.cli_ok(&[
        "federation",
        "add-child",
        "--key",
        &org.key,
        "--url",
        &org.url,
    ]);
    let mut kills = 0;
    let mut last = 0;
    root.start();
    while kills < 5 {
        // Wait for a page to commit, then kill during the next one.
        let head = loop {
            let h = get(&client, &format!("{}/federation/v1/head", root.url), None).await["size"]
                .as_u64()
                .unwrap_or(0);
            if h > last || h == total {
                break h;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        if head == total {
            break;
        }
        last = head;
        tokio::time::sleep(Duration::from_millis(15 + 20 * kills)).await;
        root.kill();
        kills += 1;
        root.start();
    }
    assert!(
        kills >= 3,
        "the root caught up before it could be killed enough"
    );
    wait_for("the root converged", Duration::from_secs(120), || async {
        get(&client, &format!("{}/federation/v1/head", root.url), None).await["size"] == total
    })
    .await;
    let c = root.child(&org.key);
    assert_eq!(c["cursor"], total);
    assert_eq!(c["applied"], total, "every record applied once: {c:#}");
    assert_eq!(c["quarantined"], 0, "{c:#}");
    assert!(root.status()["rejections"].as_array().unwrap().is_empty());
    // One relay per org record: a duplicate would fail as a replay here.
    let out = root.cli_ok(&["verify", "--url", &root.url, "--key", &root.key]);
    assert!(out.contains(&format!("{total} records")), "{out}");
    assert!(out.contains(&format!("{total} relayed records")), "{out}");
    let out = root.cli_ok(&["verify", "--mirrors"]);
    assert!(out.trim_end().ends_with(": ok"), "{out}");
    wait_for("everything searchable", LONG, || async {
        let v = get(
            &client,
            &format!("{}/api/v1/search?q=pat&limit=1", root.url),
            None,
        )
        .await;
        v["total"].as_u64() == Some(N as u64)
    })
    .await;
    root.stop();
    let exported = root.cli_ok(&["export"]);
    assert_eq!(exported.lines().count(), N, "each entry exactly once");
    eprintln!("killed the root {kills} times while applying");
}

/// The org rotates its key; its records keep flowing under the delegation
/// granted to its first key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_keeps_publishing_under_its_delegation() {
    let client = http();
    let mut root = Node::init("root");
    let mut org = Node::init("org");
    root.configure(&fed_config(None, None, ""));
    org.configure(&fed_config(Some(&root.key), None, ""));
    org.install(&root.delegate(&org, &["rot.example.org"], "1d"));
    org.start();
    root.start();
    root.add_child(&org);
    put_entry(
        &client,
        &org,
        &org.token(),
        "a@rot.example.org",
        json!({"given_name": "Ann", "surname": "Rotherby"}),
    )
    .await;
    wait_for("before the rotation", LONG, || async {
        !search(&client, &root, "rotherby", None).await.is_empty()
    })
    .await;
    org.stop();
    let out = org.cli_ok(&["federation", "rotate-key"]);
    assert!(out.starts_with("rotated"), "{out}");
    org.start();
    // It listens elsewhere now; the root is told (the key stays).
    root.add_child(&org);
    put_entry(
        &client,
        &org,
        &org.token(),
        "b@rot.example.org",
        json!({"given_name": "Ben", "surname": "Rotherby"}),
    )
    .await;
    wait_for("after the rotation", LONG, || async {
        search(&client, &root, "rotherby", None).await.len() == 2
    })
    .await;
    let hits = search(&client, &root, "ben", None).await;
    assert_eq!(
        hits[0]["provenance"]["publisher"],
        org.key.as_str(),
        "the log keeps its identity"
    );
    let status = org.status();
    assert_eq!(status["log"], org.key.as_str());
    assert_ne!(
        status["node"],
        org.key.as_str(),
        "signed with the new key now"
    );
    let out = root.cli_ok(&["verify", "--mirrors"]);
    assert!(out.trim_end().ends_with(": ok"), "{out}");
}

/// The root on PostgreSQL (when `CCDIR_TEST_PG_URL` names a server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_root_aggregates() {
    let Some(db) = crate::support::PgDatabase::create("fed_root").await else {
        return;
    };
    let client = http();
    let mut root = Node::init_on("root", Some(db.url.clone()));
    let mut org = Node::init("org");
    root.configure(&fed_config(None, None, ""));
    org.configure(&fed_config(Some(&root.key), None, ""));
    org.install(&root.delegate(&org, &["pg.example.org"], "1d"));
    org.start();
    root.start();
    assert!(
        root.log_text().contains("postgres"),
        "the root runs on PostgreSQL: {}",
        root.log_text()
    );
    root.add_child(&org);
    put_entry(
        &client,
        &org,
        &org.token(),
        "pia@pg.example.org",
        json!({"given_name": "Pia", "surname": "Postgrave"}),
    )
    .await;
    wait_for("the entry at the PostgreSQL root", LONG, || async {
        !search(&client, &root, "postgrave", None).await.is_empty()
    })
    .await;
    let hits = search(&client, &root, "postgrave", None).await;
    assert_eq!(hits[0]["provenance"]["publisher"], org.key.as_str());
    let out = root.cli_ok(&["verify", "--url", &root.url, "--key", &root.key]);
    assert!(out.contains("verified log"), "{out}");
    root.stop();
    org.stop();
    db.drop_now().await;
}

/// Issue 6 across real processes: an owner signs with the CLI, submits at
/// an organisation node; the event climbs through an intermediate to the
/// root with the owner's signature intact, where an SSE client and a
/// webhook receiver (checking the root's signature) get it, and the root's
/// DNS answers for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_event_submitted_at_an_organisation_reaches_the_root_and_its_subscribers() {
    use crate::policies::{Sse, owner_ok, receiver, verified, wait_until};
    use hickory_resolver::proto::rr::{RData, RecordType};

    let client = http();
    let mut root = Node::init("root");
    let mut inter = Node::init("inter");
    let mut org = Node::init("cardio");
    root.configure(&fed_config(
        None,
        None,
        "\n[dns]\npolicy_zone = \"bl.ccdir.test\"\nrrl_responses_per_second = 0\n",
    ));
    root.start();
    inter.configure(&fed_config(Some(&root.key), Some(&root.url), ""));
    inter.start();
    org.configure(&fed_config(Some(&root.key), Some(&inter.url), ""));
    org.start();
    inter.install(&root.delegate(&inter, &["example.org"], "30d"));
    org.install(&inter.delegate(&org, &["cardio.example.org"], "7d"));
    root.add_child(&inter);
    inter.add_child(&org);

    // Subscribers at the root, before anything happened.
    let mut stream = Sse::open(&client, &format!("{}/api/v1/policy-events", root.url), None).await;
    let (hook_url, hooks) = receiver(200, Duration::ZERO).await;
    let res = client
        .post(format!("{}/api/v1/webhooks", root.url))
        .bearer_auth(root.token())
        .json(&json!({"url": hook_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // The owner, offline.
    let owner_dir = tempfile::tempdir().unwrap();
    let owner = |args: &[&str]| owner_ok(owner_dir.path(), args);
    owner(&["policy", "create", "direct-p1"]);
    owner(&[
        "policy",
        "list",
        "direct-p1",
        "--subject",
        "domain:spam.example",
        "--reason",
        "open relay",
    ]);
    let sent = Instant::now();
    owner(&["policy", "submit", "direct-p1", "--url", &org.url]);

    // The SSE client at the root sees both events, in order.
    let (_, _, first) = stream.next(LONG).await;
    let (_, _, second) = stream.next(LONG).await;
    let latency = sent.elapsed();
    assert_eq!(
        (first["version"].clone(), second["version"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(second["subject"], "domain:spam.example");
    assert!(
        second["via"].is_string(),
        "it came through the intermediate"
    );
    eprintln!("organisation -> root SSE: {latency:?}");
    // The evidence is the owner's own signed bytes.
    let bytes = STANDARD_B64
        .decode(second["event"].as_str().unwrap())
        .unwrap();
    let event = ccdir::policy::SignedEvent::decode(&bytes).unwrap();
    assert_eq!(event.event.version, 2);

    // The webhook receiver, signed by the root.
    wait_until("the webhook", LONG, || hooks.lock().unwrap().len() >= 2).await;
    let root_key: [u8; 32] = hex::decode(&root.key).unwrap().try_into().unwrap();
    let (headers, body) = hooks.lock().unwrap()[1].clone();
    let v = verified(&root_key, &headers, &body);
    assert_eq!(v["version"], 2);

    // Checks and DNS at the root.
    let c = get(
        &client,
        &format!(
            "{}/api/v1/policies/direct-p1/check?subject=domain:spam.example",
            root.url
        ),
        None,
    )
    .await;
    assert_eq!(c["listed"], true);
    let r = crate::dns::resolver(root.dns.expect("the root's DNS address"), false);
    let a = r
        .lookup("spam.example.direct-p1.bl.ccdir.test.", RecordType::A)
        .await
        .unwrap();
    assert!(a.answers().iter().any(
        |rec| matches!(&rec.data, RData::A(ip) if ip.0 == std::net::Ipv4Addr::new(127, 0, 0, 2))
    ));

    // A de-listing at the organisation follows the same way.
    owner(&[
        "policy",
        "delist",
        "direct-p1",
        "--subject",
        "domain:spam.example",
        "--reason",
        "fixed",
    ]);
    owner(&["policy", "submit", "direct-p1", "--url", &org.url]);
    let (_, _, third) = stream.next(LONG).await;
    assert_eq!(third["op"], "delist");
    let start = Instant::now();
    loop {
        let gone = r
            .lookup("spam.example.direct-p1.bl.ccdir.test.", RecordType::A)
            .await
            .is_err();
        if gone {
            break;
        }
        assert!(
            start.elapsed() < LONG,
            "the de-listing reaches the root's DNS"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing was quarantined on the way.
    assert!(rejections_of(&root.status(), &inter.key).is_empty());
}

/// A node killed while a webhook delivery is in flight sends that event
/// again after the restart, with the same Idempotency-Key, and nothing
/// else twice; nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_delivery_redelivers_once_with_the_same_key() {
    use crate::policies::{owner_ok, receiver_with, wait_until};

    let client = http();
    let mut node = Node::init("hooks");
    node.configure("[policy]\nwebhook_timeout_seconds = 30\nwebhook_backoff_ms = 100\n");
    node.start();
    // The first request is held for a long time: the node dies meanwhile.
    let (url, got) = receiver_with(|n| {
        if n == 0 {
            (200, Duration::from_secs(20))
        } else {
            (200, Duration::ZERO)
        }
    })
    .await;
    let res = client
        .post(format!("{}/api/v1/webhooks", node.url))
        .bearer_auth(node.token())
        .json(&json!({"url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let owner_dir = tempfile::tempdir().unwrap();
    let owner = |args: &[&str]| owner_ok(owner_dir.path(), args);
    owner(&["policy", "create", "p"]);
    owner(&["policy", "submit", "p", "--url", &node.url]);
    wait_until("the first delivery is in flight", LONG, || {
        !got.lock().unwrap().is_empty()
    })
    .await;
    node.kill();
    node.start();
    wait_until("the redelivery", LONG, || got.lock().unwrap().len() >= 2).await;
    owner(&[
        "policy",
        "list",
        "p",
        "--subject",
        "domain:x.example",
        "--reason",
        "r",
    ]);
    owner(&["policy", "submit", "p", "--url", &node.url]);
    wait_until("the next event", LONG, || got.lock().unwrap().len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "nothing else is sent twice");
    let key = |i: usize| got[i].0["idempotency-key"].clone();
    assert_eq!(
        key(0),
        key(1),
        "the event in flight is sent again, same key"
    );
    assert_ne!(key(1), key(2));
    let version = |i: usize| serde_json::from_slice::<Value>(&got[i].1).unwrap()["version"].clone();
    assert_eq!((version(1), version(2)), (json!(1), json!(2)));
}

/// An owner who signs two different version-2 events and submits one at
/// each of two organisations: the root, pulling both, keeps the first as
/// the head, the second as evidence, and flags the policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocation_across_organisations_is_flagged_at_the_root() {
    use crate::policies::{Owner, submit};

    let client = http();
    let mut root = Node::init("root");
    let mut a = Node::init("org-a");
    let mut b = Node::init("org-b");
    root.configure(&fed_config(None, None, ""));
    root.start();
    for n in [&mut a, &mut b] {
        n.configure(&fed_config(Some(&root.key), Some(&root.url), ""));
        n.start();
    }
    a.install(&root.delegate(&a, &["a.example.org"], "7d"));
    b.install(&root.delegate(&b, &["b.example.org"], "7d"));
    root.add_child(&a);
    root.add_child(&b);

    let mut owner = Owner::new("direct-p1");
    let create = owner.create();
    let mut fork = Owner {
        key: NodeKey::from_pkcs8_pem(&owner.key.to_pkcs8_pem().unwrap()).unwrap(),
        policy: "direct-p1".into(),
        version: owner.version,
        head: owner.head,
    };
    let one = owner.list("domain:x.example", "story one");
    let two = fork.list("domain:y.example", "story two");
    assert_eq!(submit(&client, &a.url, &[&create, &one]).await.0, 200);
    assert_eq!(submit(&client, &b.url, &[&create, &two]).await.0, 200);

    let url = format!("{}/api/v1/policies/direct-p1", root.url);
    wait_for("the root flags the policy", LONG, || async {
        get(&client, &url, None).await["flagged"] == true
    })
    .await;
    let p = get(&client, &url, None).await;
    assert_eq!(p["version"], 2);
    let evidence = p["evidence"].as_array().unwrap();
    assert_eq!(evidence.len(), 2);
    let hashes: Vec<&str> = evidence
        .iter()
        .map(|e| e["hash"].as_str().unwrap())
        .collect();
    let (h1, h2) = (one.hash().to_hex(), two.hash().to_hex());
    assert!(hashes.contains(&h1.as_str()) && hashes.contains(&h2.as_str()));
    // Both organisations' records were applied, none quarantined.
    let status = root.status();
    assert!(rejections_of(&status, &a.key).is_empty());
    assert!(rejections_of(&status, &b.key).is_empty());
}
