//! Battery tests for trust bundles: definitions, refresh status, and the
//! anchors a bundle brings (replaced in one transaction, apart from the
//! hand-made anchors and from other bundles holding the same CA).

use std::time::Duration;

use ccdir::domain::{
    BundleDefinition, BundleName, BundleOrigin, BundleSource, ChangeKind, ChangeSeq, RefreshCode,
    RefreshStatus,
};
use ccdir::storage::Store;

use super::fixtures::{anchor, at};
use super::{changes_after, kinds_and_keys};

fn name(s: &str) -> BundleName {
    s.parse().unwrap()
}

fn definition(n: &str) -> BundleDefinition {
    BundleDefinition {
        name: name(n),
        source: BundleSource::url("https://bundles.example.org/dt.p7m").unwrap(),
        signer: Some(vec![0x30, 0x03, 0x02, 0x01, 0x07]),
        refresh: Duration::from_secs(3600),
        origin: BundleOrigin::Runtime,
    }
}

fn ok(secs: i64) -> RefreshStatus {
    RefreshStatus {
        code: RefreshCode::Ok,
        detail: "2 anchors".into(),
        at: at(secs, 5),
    }
}

pub async fn bundles_round_trip_with_status(store: Store) {
    let n = name("directtrust");
    assert_eq!(store.get_bundle(&n).await.unwrap(), None);
    assert!(store.put_bundle(&definition("directtrust")).await.unwrap());
    let b = store.get_bundle(&n).await.unwrap().unwrap();
    assert_eq!(b.definition, definition("directtrust"));
    assert_eq!(
        (b.last_refresh.clone(), b.last_success_at, b.anchor_count),
        (None, None, 0)
    );

    // A new definition keeps the status; a file source and no signer round-trip.
    let mut changed = definition("directtrust");
    changed.source = BundleSource::file("/etc/ccdir/dt.p7b").unwrap();
    changed.signer = None;
    changed.origin = BundleOrigin::Config;
    assert!(!store.put_bundle(&changed).await.unwrap());

    let failure = RefreshStatus {
        code: RefreshCode::SignatureMismatch,
        detail: "the message digest does not match the content".into(),
        at: at(1_780_000_000, 9),
    };
    assert!(store.record_bundle_failure(&n, &failure).await.unwrap());
    assert!(
        !store
            .record_bundle_failure(&name("nope"), &failure)
            .await
            .unwrap()
    );
    let b = store.get_bundle(&n).await.unwrap().unwrap();
    assert_eq!(b.definition, changed);
    assert_eq!(b.last_refresh, Some(failure));
    assert_eq!(b.last_success_at, None);

    store.put_bundle(&definition("another")).await.unwrap();
    let names: Vec<String> = store
        .list_bundles()
        .await
        .unwrap()
        .iter()
        .map(|b| b.name().to_string())
        .collect();
    assert_eq!(names, ["another", "directtrust"]);
    // Nothing readers see changed: no change was announced.
    assert!(changes_after(&store, ChangeSeq(0), 100).await.is_empty());
}

pub async fn bundle_anchors_are_replaced_atomically(store: Store) {
    let (a1, a2, a3) = (anchor(101), anchor(102), anchor(103));
    let fp = |a: &ccdir::domain::TrustAnchor| a.certificate.fingerprint.to_hex();
    let n = name("dt");
    store.put_bundle(&definition("dt")).await.unwrap();
    store.put_bundle(&definition("other")).await.unwrap();
    // A hand-made anchor that the bundle also holds.
    store.put_anchor(&a1).await.unwrap();
    let after_manual = store.head_seq().await.unwrap();

    let certs = [
        a1.certificate.clone(),
        a2.certificate.clone(),
        a2.certificate.clone(),
    ];
    let applied = store
        .replace_bundle_anchors(&n, &certs, &ok(1_780_000_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((applied.added, applied.removed, applied.count), (2, 0, 2));
    let b = store.get_bundle(&n).await.unwrap().unwrap();
    assert_eq!(b.anchor_count, 2);
    assert_eq!(b.last_refresh, Some(ok(1_780_000_000)));
    assert_eq!(b.last_success_at, Some(at(1_780_000_000, 5)));
    store
        .replace_bundle_anchors(
            &name("other"),
            std::slice::from_ref(&a2.certificate),
            &ok(1_780_000_001),
        )
        .await
        .unwrap();

    let listed = store.list_bundle_anchors().await.unwrap();
    let mut expect = vec![
        (fp(&a1), "dt".to_owned()),
        (fp(&a2), "dt".to_owned()),
        (fp(&a2), "other".to_owned()),
    ];
    expect.sort();
    let got: Vec<(String, String)> = listed.iter().map(|(b, a)| (fp(a), b.to_string())).collect();
    assert_eq!(got, expect);
    assert!(
        listed
            .iter()
            .all(|(b, a)| a.source == format!("bundle:{b}"))
    );
    let first = listed.iter().find(|(_, a)| fp(a) == fp(&a1)).unwrap();
    assert_eq!(first.1.certificate, a1.certificate);

    // The next refresh drops a2 and brings a3; a1 keeps its added_at.
    let applied = store
        .replace_bundle_anchors(
            &n,
            &[a3.certificate.clone(), a1.certificate.clone()],
            &ok(1_790_000_000),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((applied.added, applied.removed, applied.count), (1, 1, 2));
    let mine: Vec<_> = store
        .list_bundle_anchors()
        .await
        .unwrap()
        .into_iter()
        .filter(|(b, _)| *b == n)
        .map(|(_, a)| (fp(&a), a.added_at))
        .collect();
    let mut expect = vec![
        (fp(&a1), at(1_780_000_000, 5)),
        (fp(&a3), at(1_790_000_000, 5)),
    ];
    expect.sort();
    assert_eq!(mine, expect);
    // The same content again changes nothing and announces nothing.
    let head = store.head_seq().await.unwrap();
    let same = store
        .replace_bundle_anchors(
            &n,
            &[a1.certificate.clone(), a3.certificate.clone()],
            &ok(1_790_000_100),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((same.added, same.removed, same.seq), (0, 0, head));

    // Hand-made anchors are untouched by all of it.
    assert_eq!(store.list_anchors().await.unwrap(), vec![a1.clone()]);
    let changes = kinds_and_keys(&changes_after(&store, after_manual, 100).await);
    assert!(
        changes
            .iter()
            .all(|(k, _)| *k == ChangeKind::AnchorsChanged)
    );
    assert_eq!(changes.len(), 2 + 1 + 2);

    // Removing a bundle takes its anchors only.
    let (seq, removed) = store.delete_bundle(&n).await.unwrap().unwrap();
    assert_eq!(removed, 2);
    assert_eq!(store.head_seq().await.unwrap(), seq);
    let left: Vec<String> = store
        .list_bundle_anchors()
        .await
        .unwrap()
        .iter()
        .map(|(b, a)| format!("{b}:{}", fp(a)))
        .collect();
    assert_eq!(left, [format!("other:{}", fp(&a2))]);
    assert_eq!(store.delete_bundle(&n).await.unwrap(), None);
    assert_eq!(
        store
            .replace_bundle_anchors(
                &n,
                std::slice::from_ref(&a1.certificate),
                &ok(1_800_000_000)
            )
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.list_anchors().await.unwrap(), vec![a1]);
}
