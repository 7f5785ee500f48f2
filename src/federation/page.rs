//! Checking a page of a child's log against what we already hold of it:
//! the hash chain, sequence numbers, signatures and the child's signed
//! head. This is where forks, rollbacks, broken chains, replays and
//! reordering are told apart; nothing here reads or writes storage.

use super::error::{FederationError, RejectCode, Rejection};
use super::head::SignedHead;
use super::record::{Body, Record, body_type};
use super::types::{Hash, Key};

/// What a parent holds of one child's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The child's log identity.
    pub log: Key,
    /// The last sequence number applied (0: nothing yet).
    pub seq: u64,
    /// The hash of that record (zeros for 0).
    pub hash: Hash,
    /// The key the child signs with after that record.
    pub signer: Key,
}

impl Cursor {
    /// A cursor before the first record of `log`.
    pub fn start(log: Key) -> Cursor {
        Cursor {
            log,
            seq: 0,
            hash: Hash::ZERO,
            signer: log,
        }
    }
}

/// The new records of a page, in order, with the chain checked.
#[derive(Debug, Clone)]
pub struct VerifiedPage {
    /// Records after the cursor, in order.
    pub records: Vec<Record>,
    /// The cursor after them.
    pub cursor: Cursor,
    /// The size the child's head claims (at least `cursor.seq`).
    pub head_size: u64,
}

/// Decodes one record of a page, its signature checked; the reason a page
/// is refused when it does not. Separate so that callers can decode a
/// page's records in parallel and hand them to [`verify_decoded`].
pub fn decode_record(bytes: &[u8]) -> Result<Record, Rejection> {
    Record::decode(bytes).map_err(|e| match e {
        FederationError::BadSignature { what } => Rejection::new(
            RejectCode::BadSignature,
            format!("{what}: the signature does not verify"),
        ),
        other => Rejection::new(RejectCode::MalformedPage, other.to_string()),
    })
}

/// Verifies `records` (raw record bytes, in the order served) and the
/// child's `head` against `cursor`. `held` answers the hash we hold at a
/// sequence number at or below the cursor (the page is asked for from
/// `cursor.seq - 1`, so its first record should be the one we hold).
pub fn verify_page(
    cursor: &Cursor,
    records: &[Vec<u8>],
    head: &SignedHead,
    held: &dyn Fn(u64) -> Option<Hash>,
) -> Result<VerifiedPage, Rejection> {
    let decoded = records.iter().map(|b| decode_record(b)).collect();
    verify_decoded(cursor, decoded, head, held)
}

/// [`verify_page`] over records already decoded with [`decode_record`]
/// (in page order; the first failure is the page's).
pub fn verify_decoded(
    cursor: &Cursor,
    records: Vec<Result<Record, Rejection>>,
    head: &SignedHead,
    held: &dyn Fn(u64) -> Option<Hash>,
) -> Result<VerifiedPage, Rejection> {
    let h = &head.head;
    if h.log != cursor.log {
        return Err(Rejection::new(
            RejectCode::WrongLog,
            format!(
                "the head is of log {}, not {}",
                h.log.short(),
                cursor.log.short()
            ),
        ));
    }
    if h.size < cursor.seq {
        return Err(Rejection::new(
            RejectCode::Rollback,
            format!(
                "the child's head went back to {} records; we hold {}",
                h.size, cursor.seq
            ),
        ));
    }
    if h.size == cursor.seq && h.head_hash != cursor.hash {
        return Err(Rejection::new(
            RejectCode::Fork,
            format!(
                "the child's head names a different record {} than the one we hold",
                h.size
            ),
        ));
    }

    let mut next = cursor.clone();
    let mut out = Vec::new();
    let mut overlap_matched = false;
    let mut signers = vec![cursor.signer];
    for (i, decoded) in records.into_iter().enumerate() {
        let r = decoded?;
        let hd = &r.header;
        if hd.log != cursor.log {
            return Err(Rejection::new(
                RejectCode::WrongLog,
                format!(
                    "record {} is of log {}, not {}",
                    hd.seq,
                    hd.log.short(),
                    cursor.log.short()
                ),
            ));
        }
        if hd.seq <= cursor.seq {
            match held(hd.seq) {
                Some(ours) if ours != r.hash() => {
                    return Err(Rejection::new(
                        RejectCode::Fork,
                        format!(
                            "the child served a different record {} than the one we hold",
                            hd.seq
                        ),
                    ));
                }
                Some(_) if i == 0 && hd.seq == cursor.seq => {
                    overlap_matched = true;
                    continue;
                }
                _ => {
                    return Err(Rejection::new(
                        RejectCode::Replayed,
                        format!(
                            "record {} was applied before (we hold {})",
                            hd.seq, cursor.seq
                        ),
                    ));
                }
            }
        }
        let expected = next.seq + 1;
        if hd.seq != expected {
            let code = if hd.seq < expected {
                RejectCode::Replayed
            } else {
                RejectCode::OutOfOrder
            };
            return Err(Rejection::new(
                code,
                format!("expected record {expected}, got record {}", hd.seq),
            ));
        }
        if hd.prev != next.hash {
            let first_new = out.is_empty();
            let code = if first_new && !overlap_matched && cursor.seq > 0 {
                RejectCode::Fork
            } else {
                RejectCode::BrokenChain
            };
            return Err(Rejection::new(
                code,
                format!(
                    "record {} does not link to record {} (prev {} is not {})",
                    hd.seq,
                    next.seq,
                    hd.prev.to_hex(),
                    next.hash.to_hex()
                ),
            ));
        }
        if hd.signer != next.signer {
            return Err(Rejection::new(
                RejectCode::WrongSigner,
                format!(
                    "record {} is signed by {}; the log's key is {}",
                    hd.seq,
                    hd.signer.short(),
                    next.signer.short()
                ),
            ));
        }
        if r.body_type == body_type::KEY_ROTATION
            && let Ok(Body::KeyRotation(new_key)) = r.body()
        {
            next.signer = new_key;
            signers.push(new_key);
        }
        next.seq = hd.seq;
        next.hash = r.hash();
        out.push(r);
    }

    if h.size < next.seq {
        return Err(Rejection::new(
            RejectCode::Rollback,
            format!(
                "the head claims {} records but the page holds record {}",
                h.size, next.seq
            ),
        ));
    }
    if h.size == next.seq && h.head_hash != next.hash {
        return Err(Rejection::new(
            RejectCode::Fork,
            format!(
                "the signed head names another record {} than the page holds",
                h.size
            ),
        ));
    }
    if !signers.contains(&h.signer) {
        return Err(Rejection::new(
            RejectCode::WrongSigner,
            format!(
                "the head is signed by {}, not by the log's key",
                h.signer.short()
            ),
        ));
    }
    Ok(VerifiedPage {
        records: out,
        cursor: next,
        head_size: h.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::testkit::{Log, key};

    fn raw(records: &[Record]) -> Vec<Vec<u8>> {
        records.iter().map(|r| r.bytes().to_vec()).collect()
    }

    fn none(_: u64) -> Option<Hash> {
        None
    }

    #[test]
    fn a_clean_log_verifies_page_by_page() {
        let mut log = Log::new(key(1));
        let recs: Vec<Record> = (0..5).map(|_| log.removal("a@x.org")).collect();
        let head = log.head();
        let c0 = Cursor::start(log.id());
        let p = verify_page(&c0, &raw(&recs[..3]), &head, &none).unwrap();
        assert_eq!(p.records.len(), 3);
        assert_eq!(p.cursor.seq, 3);
        assert_eq!(p.cursor.hash, recs[2].hash());
        // Next page, asked from seq 2: starts with the record we hold.
        let held = |s: u64| (s == 3).then(|| recs[2].hash());
        let p2 = verify_page(&p.cursor, &raw(&recs[2..]), &head, &held).unwrap();
        assert_eq!(p2.records.len(), 2);
        assert_eq!(p2.cursor.seq, 5);
    }

    #[test]
    fn each_fault_has_its_code() {
        let mut log = Log::new(key(1));
        let recs: Vec<Record> = (0..4).map(|_| log.removal("a@x.org")).collect();
        let head = log.head();
        let c0 = Cursor::start(log.id());
        let code = |c: &Cursor, rs: Vec<Vec<u8>>, held: &dyn Fn(u64) -> Option<Hash>| {
            verify_page(c, &rs, &head, held).unwrap_err().code
        };
        // Forged signature.
        let mut forged = raw(&recs);
        let n = forged[1].len();
        forged[1][n - 1] ^= 1;
        assert_eq!(code(&c0, forged, &none), RejectCode::BadSignature);
        // Reordered.
        let mut swapped = raw(&recs);
        swapped.swap(1, 2);
        assert_eq!(code(&c0, swapped, &none), RejectCode::OutOfOrder);
        // Replayed within the page.
        let mut dup = raw(&recs[..2]);
        dup.push(recs[1].bytes().to_vec());
        assert_eq!(code(&c0, dup, &none), RejectCode::Replayed);
        // Garbage.
        assert_eq!(
            code(&c0, vec![b"junk".to_vec()], &none),
            RejectCode::MalformedPage
        );
        // Another log.
        let mut other = Log::new(key(2));
        let foreign = other.removal("a@x.org");
        assert_eq!(code(&c0, raw(&[foreign]), &none), RejectCode::WrongLog);

        // We hold 2 records; the child now has a different record 2.
        let c2 = Cursor {
            log: log.id(),
            seq: 2,
            hash: recs[1].hash(),
            signer: log.id(),
        };
        let mut fork = Log::new(key(1));
        let f1 = fork.removal("a@x.org");
        assert_eq!(f1, recs[0]);
        let f2 = fork.removal("b@x.org");
        let f3 = fork.removal("b@x.org");
        let fhead = fork.head();
        let held = |s: u64| match s {
            1 => Some(recs[0].hash()),
            2 => Some(recs[1].hash()),
            _ => None,
        };
        let e = verify_page(&c2, &raw(&[f2.clone(), f3.clone()]), &fhead, &held).unwrap_err();
        assert_eq!(e.code, RejectCode::Fork, "{e}");
        // Without the overlap record, the new record does not link: a fork too.
        let e = verify_page(&c2, &raw(&[f3]), &fhead, &held).unwrap_err();
        assert_eq!(e.code, RejectCode::Fork, "{e}");
        // Same size, different head hash.
        let mut short = Log::new(key(1));
        short.removal("a@x.org");
        short.removal("b@x.org");
        let e = verify_page(&c2, &[], &short.head(), &held).unwrap_err();
        assert_eq!(e.code, RejectCode::Fork);
        // The head went backwards.
        let mut one = Log::new(key(1));
        one.removal("a@x.org");
        let e = verify_page(&c2, &[], &one.head(), &held).unwrap_err();
        assert_eq!(e.code, RejectCode::Rollback);
        // Broken chain inside a page.
        let mut broken = Log::new(key(1));
        let b1 = broken.removal("a@x.org");
        broken.set_prev(Hash([9; 32]));
        let b2 = broken.removal("a@x.org");
        let e = verify_page(&c0, &raw(&[b1, b2]), &broken.head(), &none).unwrap_err();
        assert_eq!(e.code, RejectCode::BrokenChain);
    }

    #[test]
    fn rotation_changes_the_expected_signer() {
        let mut log = Log::new(key(1));
        let r1 = log.removal("a@x.org");
        let r2 = log.rotate(key(5));
        let r3 = log.removal("a@x.org");
        let head = log.head();
        let p = verify_page(&Cursor::start(log.id()), &raw(&[r1, r2, r3]), &head, &none).unwrap();
        assert_eq!(
            p.cursor.signer,
            crate::federation::Key(key(5).public_key_bytes())
        );
        // A record signed by the old key after the rotation is refused.
        let mut bad = Log::new(key(1));
        let a = bad.removal("a@x.org");
        let b = bad.rotate(key(5));
        bad.sign_with(key(1));
        let c = bad.removal("a@x.org");
        let e = verify_page(
            &Cursor::start(bad.id()),
            &raw(&[a, b, c]),
            &bad.head(),
            &none,
        )
        .unwrap_err();
        assert_eq!(e.code, RejectCode::WrongSigner);
    }
}
