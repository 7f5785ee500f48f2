//! The federation tables in the storage battery: applying a page and
//! publishing are guarded by their cursors inside the transaction, so a
//! page or a round is never applied twice, and ownership is decided there.

use ccdir::domain::{EntryRecord, NodeId};
use ccdir::storage::{
    ApplyItem, ApplyPage, Effect, LogAppend, LogEntry, MerkleNode, ProvenanceRow, PublishItem,
    Store,
};

use super::fixtures::*;

fn peer() -> NodeId {
    NodeId("ef".repeat(32))
}

fn item(seq: u64, effect: Effect) -> ApplyItem {
    ApplyItem {
        seq,
        hash: [seq as u8; 32],
        bytes: vec![seq as u8; 40],
        author: peer(),
        author_seq: seq,
        authored: Some((vec![seq as u8; 40], [seq as u8; 32], 1)),
        effect,
    }
}

fn upsert(address: &str) -> Effect {
    let mut entry = person(address, None);
    entry.origin = peer();
    Effect::Upsert {
        record: Box::new(EntryRecord {
            entry,
            certificates: vec![],
        }),
        chain: vec!["00".repeat(32)],
    }
}

fn page(expected: u64, items: Vec<ApplyItem>) -> ApplyPage {
    let last = items.last().map_or(expected, |i| i.seq);
    ApplyPage {
        peer: peer(),
        expected_cursor: expected,
        cursor: last,
        cursor_hash: [last as u8; 32],
        signer: peer(),
        head_seen: last,
        at: at(1_700_000_000, 5),
        items,
        authors: vec![],
        grants: vec![],
    }
}

/// Relays each record as one log record, with the Merkle nodes it completes.
fn relay_all(tip: &ccdir::storage::LogTip, r: &[ccdir::storage::Relayable]) -> LogAppend {
    use ccdir::federation::Hash;
    use ccdir::federation::merkle::Frontier;
    let mut frontier = Frontier::from_nodes(tip.size, |n| {
        tip.frontier
            .iter()
            .find(|f| f.level == n.level && f.index == n.index)
            .map(|f| Hash(f.hash))
    })
    .expect("frontier");
    let mut out = LogAppend::default();
    for (i, x) in r.iter().enumerate() {
        let seq = tip.size + 1 + i as u64;
        for (n, h) in frontier.push(Hash(x.hash)) {
            out.nodes.push(MerkleNode {
                level: n.level,
                index: n.index,
                hash: h.0,
            });
        }
        out.records.push(LogEntry {
            seq,
            hash: x.hash,
            bytes: x.bytes.clone(),
            body_type: 7,
            author: x.author.clone(),
            author_seq: x.author_seq,
            subject: x.subject.clone(),
        });
    }
    out
}

pub async fn federation_apply_is_guarded_by_the_cursor(store: Store) {
    store
        .fed_add_peer(&peer(), "http://child", Some("child"), at(1_700_000_000, 0))
        .await
        .unwrap();
    // A local entry the child may not take over.
    store
        .put_entry(
            &person("local@x.example.org", None),
            ccdir::storage::CertUpdate::Keep,
        )
        .await
        .unwrap();
    let p = page(
        0,
        vec![
            item(1, Effect::Accept),
            item(2, upsert("alice@x.example.org")),
            item(3, upsert("local@x.example.org")),
        ],
    );
    let done = store
        .fed_apply(p.clone(), |tip, r| Ok(relay_all(tip, r)))
        .await
        .unwrap()
        .expect("applied");
    assert_eq!((done.applied, done.quarantined, done.relayed), (2, 1, 2));
    // The same page again (a restart that lost track): nothing happens.
    assert!(
        store
            .fed_apply(p, |tip, r| Ok(relay_all(tip, r)))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.count_entries().await.unwrap(), 2);
    assert_eq!(store.fed_log_tip().await.unwrap().size, 2);
    let peer_row = store.fed_peer(&peer()).await.unwrap().unwrap();
    assert_eq!(peer_row.cursor, 3);
    assert_eq!(store.fed_mirror_counts(&peer()).await.unwrap(), (2, 1));
    let rej = store.fed_rejections(Some(&peer()), 10).await.unwrap();
    assert_eq!(rej.len(), 1);
    assert_eq!(rej[0].code, "owned-elsewhere");
    assert_eq!(rej[0].seq, Some(3));
    let local = store
        .get_entry(&addr("local@x.example.org"))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(local.entry.origin, peer(), "the local entry is untouched");
    let prov = store
        .fed_provenance(&["alice@x.example.org".into(), "local@x.example.org".into()])
        .await
        .unwrap();
    assert_eq!(prov.len(), 1);
    assert_eq!(
        prov["alice@x.example.org"],
        ProvenanceRow {
            key: "alice@x.example.org".into(),
            author: peer(),
            author_seq: 2,
            via: peer(),
            record_hash: [2; 32],
            chain: vec!["00".repeat(32)],
            at: at(1_700_000_000, 5),
        },
        "every field as written"
    );

    // A failing relay rolls the whole page back.
    let next = page(3, vec![item(4, upsert("bob@x.example.org"))]);
    assert!(
        store
            .fed_apply(next.clone(), |_, _| Err("signing failed".into()))
            .await
            .is_err()
    );
    assert_eq!(store.fed_peer(&peer()).await.unwrap().unwrap().cursor, 3);
    assert!(
        store
            .get_entry(&addr("bob@x.example.org"))
            .await
            .unwrap()
            .is_none()
    );
    // Removal by its owner.
    let rm = page(
        3,
        vec![item(4, Effect::Remove(addr("alice@x.example.org")))],
    );
    store
        .fed_apply(rm, |tip, r| Ok(relay_all(tip, r)))
        .await
        .unwrap()
        .expect("applied");
    assert!(
        store
            .get_entry(&addr("alice@x.example.org"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .fed_provenance(&["alice@x.example.org".into()])
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn federation_publish_is_guarded_by_its_position(store: Store) {
    use ccdir::domain::ChangeSeq;
    let build = |tip: &ccdir::storage::LogTip| {
        Ok(LogAppend {
            records: vec![LogEntry {
                seq: tip.size + 1,
                hash: [9; 32],
                bytes: vec![1, 2, 3],
                body_type: 1,
                author: NodeId("cd".repeat(32)),
                author_seq: tip.size + 1,
                subject: Some("a@b.org".into()),
            }],
            nodes: vec![MerkleNode {
                level: 0,
                index: tip.size,
                hash: [9; 32],
            }],
        })
    };
    let items = [PublishItem {
        key: "e:a@b.org".into(),
        digest: Some([7; 32]),
    }];
    let first = store
        .fed_publish(ChangeSeq(0), ChangeSeq(5), &items, build)
        .await
        .unwrap();
    assert!(first.is_some());
    // A second publisher that read the same position finds it moved.
    let again = store
        .fed_publish(ChangeSeq(0), ChangeSeq(5), &items, build)
        .await
        .unwrap();
    assert!(again.is_none());
    assert_eq!(store.fed_log_tip().await.unwrap().size, 1);
    assert_eq!(store.fed_publish_cursor().await.unwrap(), ChangeSeq(5));
    let published = store.fed_published(&["e:a@b.org".into()]).await.unwrap();
    assert_eq!(published["e:a@b.org"], [7; 32]);
    // A record that does not continue the log is refused, and nothing moves.
    let bad = store
        .fed_publish(ChangeSeq(5), ChangeSeq(6), &[], |_| {
            Ok(LogAppend {
                records: vec![LogEntry {
                    seq: 7,
                    hash: [1; 32],
                    bytes: vec![],
                    body_type: 1,
                    author: NodeId("cd".repeat(32)),
                    author_seq: 7,
                    subject: None,
                }],
                nodes: vec![],
            })
        })
        .await;
    assert!(bad.is_err());
    assert_eq!(store.fed_publish_cursor().await.unwrap(), ChangeSeq(5));
}
