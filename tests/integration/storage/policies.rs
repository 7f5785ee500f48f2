//! The policy tables in the storage battery: events are judged against
//! the head that commits (inside the write transaction), so racing
//! submissions never put two events at one version; rejected batches
//! leave nothing; listings, feeds and webhook cursors round-trip.

use std::sync::Arc;

use ccdir::domain::{EventFacts, PolicyKind, PolicyOp, Subject};
use ccdir::storage::{PolicyOutcome, PolicyWrite, Store};

fn write(version: u64, prev: u8, hash: u8, owner: &str, op: PolicyOp) -> PolicyWrite {
    let dns_key = op.subject().map(Subject::dns_key);
    PolicyWrite {
        facts: EventFacts {
            policy: "direct-p1".parse().unwrap(),
            owner: owner.into(),
            version,
            prev: [prev; 32],
            hash: [hash; 32],
            create: matches!(op, PolicyOp::Create { .. }),
        },
        op,
        dns_key,
        bytes: vec![hash; 10],
        via: None,
    }
}

fn create(hash: u8) -> PolicyWrite {
    write(
        1,
        0,
        hash,
        "aa",
        PolicyOp::Create {
            kind: PolicyKind::DenyList,
            title: "P1".into(),
            description: "test".into(),
        },
    )
}

fn list(version: u64, prev: u8, hash: u8, subject: &str) -> PolicyWrite {
    write(
        version,
        prev,
        hash,
        "aa",
        PolicyOp::List {
            subject: subject.parse().unwrap(),
            reason: format!("reason {hash}"),
            expires: None,
        },
    )
}

fn delist(version: u64, prev: u8, hash: u8, subject: &str) -> PolicyWrite {
    write(
        version,
        prev,
        hash,
        "aa",
        PolicyOp::Delist {
            subject: subject.parse().unwrap(),
            reason: "gone".into(),
        },
    )
}

pub async fn policy_events_follow_the_chain_all_or_nothing(store: Store) {
    let id = "direct-p1".parse().unwrap();
    let (outcomes, _) = store
        .policy_submit(&[create(1), list(2, 1, 2, "domain:spam.example")])
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(outcomes[..], [PolicyOutcome::Applied(a), PolicyOutcome::Applied(b)] if b > a)
    );
    // A batch with a gap is refused whole: its good first event too.
    let refused = store
        .policy_submit(&[
            list(3, 2, 3, "domain:a.example"),
            list(5, 4, 5, "domain:b.example"),
        ])
        .await
        .unwrap();
    let (i, r) = refused.unwrap_err();
    assert_eq!((i, r.code), (1, "version-gap"));
    let p = store.policy(&id).await.unwrap().unwrap();
    assert_eq!((p.version, p.head), (2, [2; 32]));
    assert!(
        store
            .policy_listing(&id, "domain:a.example")
            .await
            .unwrap()
            .is_none()
    );
    // Wrong owner, wrong prev.
    let mut thief = list(3, 2, 9, "domain:c.example");
    thief.facts.owner = "bb".into();
    assert_eq!(
        store
            .policy_submit(&[thief])
            .await
            .unwrap()
            .unwrap_err()
            .1
            .code,
        "wrong-owner"
    );
    assert_eq!(
        store
            .policy_submit(&[list(3, 7, 9, "domain:c.example")])
            .await
            .unwrap()
            .unwrap_err()
            .1
            .code,
        "prev-mismatch"
    );
    // Repeats are harmless; a second version 2 is evidence.
    let (outcomes, _) = store
        .policy_submit(&[create(1), list(2, 1, 2, "domain:spam.example")])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        outcomes,
        vec![PolicyOutcome::Duplicate, PolicyOutcome::Duplicate]
    );
    let (outcomes, _) = store
        .policy_submit(&[list(2, 1, 8, "domain:other.example")])
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcomes[0], PolicyOutcome::Equivocation(_)));
    let p = store.policy(&id).await.unwrap().unwrap();
    assert!(p.flagged);
    assert_eq!(p.version, 2, "evidence does not move the head");
    let evidence = store.policy_evidence(&id).await.unwrap();
    assert_eq!(evidence.len(), 2);
    assert!(evidence[0].applied && !evidence[1].applied);
    assert!(
        store
            .policy_listing(&id, "domain:other.example")
            .await
            .unwrap()
            .is_none()
    );

    // Listing and de-listing; the feed in commit order.
    store
        .policy_submit(&[
            delist(3, 2, 3, "domain:spam.example"),
            list(4, 3, 4, "addr:eve@x.example"),
        ])
        .await
        .unwrap()
        .unwrap();
    let l = store
        .policy_listing(&id, "domain:spam.example")
        .await
        .unwrap()
        .unwrap();
    assert!(!l.listed);
    assert_eq!(l.version, 3);
    let listed = store.policy_listed(None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].2.subject, "addr:eve@x.example");
    let feed = store.policy_feed(0, 100, None).await.unwrap();
    let versions: Vec<(u64, bool)> = feed.iter().map(|e| (e.version, e.applied)).collect();
    assert_eq!(
        versions,
        vec![(1, true), (2, true), (2, false), (3, true), (4, true)]
    );
    assert!(feed.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.policy_feed_head().await.unwrap(), feed[4].seq);
    let after = store.policy_events(&id, 2, 10).await.unwrap();
    assert_eq!(
        after.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert_eq!(
        store
            .policy_event_by_hash(&[4; 32])
            .await
            .unwrap()
            .unwrap()
            .version,
        4
    );
}

pub async fn racing_submissions_never_share_a_version(store: Store) {
    store.policy_submit(&[create(1)]).await.unwrap().unwrap();
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for hash in 10..18u8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.policy_submit(&[list(2, 1, hash, &format!("domain:d{hash}.example"))])
                .await
                .unwrap()
                .unwrap()
                .0
        }));
    }
    let mut applied = 0;
    let mut evidence = 0;
    for t in tasks {
        match t.await.unwrap()[0] {
            PolicyOutcome::Applied(_) => applied += 1,
            PolicyOutcome::Equivocation(_) => evidence += 1,
            ref other => panic!("{other:?}"),
        }
    }
    assert_eq!((applied, evidence), (1, 7));
    let p = store
        .policy(&"direct-p1".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.version, 2);
    assert!(p.flagged);
}

pub async fn webhook_cursors_and_dead_letters_round_trip(store: Store) {
    store.policy_submit(&[create(1)]).await.unwrap().unwrap();
    let id = store
        .webhook_add(
            Some(&"direct-p1".parse().unwrap()),
            "http://127.0.0.1:9/x",
            0,
        )
        .await
        .unwrap();
    let all = store
        .webhook_add(None, "http://127.0.0.1:9/y", 5)
        .await
        .unwrap();
    assert_ne!(id, all);
    let at = chrono::Utc::now();
    store
        .webhook_failed(id, 2, at, "answered 500")
        .await
        .unwrap();
    let w = store.webhook(id).await.unwrap().unwrap();
    assert_eq!(
        (w.attempts, w.last_error.as_deref()),
        (2, Some("answered 500"))
    );
    assert_eq!(w.policy.unwrap().as_str(), "direct-p1");
    store
        .webhook_advance(id, 7, Some((3, "answered 500")))
        .await
        .unwrap();
    store.webhook_advance(id, 9, None).await.unwrap();
    let w = store.webhook(id).await.unwrap().unwrap();
    assert_eq!(
        (w.cursor, w.attempts, w.delivered, w.dead_letters),
        (9, 0, 1, 1)
    );
    let dead = store.webhook_dead_letters(id).await.unwrap();
    assert_eq!((dead[0].event_seq, dead[0].attempts), (7, 3));
    assert_eq!(store.webhooks().await.unwrap().len(), 2);
    assert!(store.webhook_delete(id).await.unwrap());
    assert!(!store.webhook_delete(id).await.unwrap());
    assert!(store.webhook(id).await.unwrap().is_none());
    let w = store.webhook(all).await.unwrap().unwrap();
    assert_eq!((w.cursor, w.dead_letters), (5, 0));
}
