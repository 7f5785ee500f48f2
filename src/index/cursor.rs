//! Opaque page cursors.
//!
//! A cursor is base64url of: a version byte, a mode byte, eight bytes of a
//! SHA-256 over the canonical form of the query it belongs to, and the
//! position: an offset into the ranking for text searches, or the last key
//! returned for browsing (keyset paging, so a browse stays cheap and exact
//! however deep it goes and however the index changes between pages).
//!
//! The check is not a signature: a client can forge a position, which only
//! lets it ask for a page it could have reached anyway. It exists so that a
//! cursor pasted into a different query is refused instead of silently
//! paging through the wrong results.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::IndexError;

const VERSION: u8 = 1;
const MODE_OFFSET: u8 = 0;
const MODE_AFTER: u8 = 1;
/// Longer than any cursor we hand out (keys are at most a few hundred bytes).
const MAX_ENCODED: usize = 1024;

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Position {
    /// Skip this many ranked hits.
    Offset(usize),
    /// Start after this key (browse order).
    After(String),
}

/// The fingerprint of a query: what must stay the same for a cursor to be valid.
pub(crate) fn check(canonical_query: &str) -> [u8; 8] {
    let digest = Sha256::digest(canonical_query.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

pub(crate) fn encode(check: [u8; 8], position: &Position) -> String {
    let mut bytes = vec![VERSION];
    match position {
        Position::Offset(n) => {
            bytes.push(MODE_OFFSET);
            bytes.extend_from_slice(&check);
            bytes.extend_from_slice(&(*n as u64).to_be_bytes());
        }
        Position::After(key) => {
            bytes.push(MODE_AFTER);
            bytes.extend_from_slice(&check);
            bytes.extend_from_slice(key.as_bytes());
        }
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn decode(cursor: &str, expected: [u8; 8]) -> Result<Position, IndexError> {
    let bad = IndexError::InvalidCursor;
    if cursor.len() > MAX_ENCODED {
        return Err(bad("too long"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad("not a cursor"))?;
    if bytes.len() < 10 || bytes[0] != VERSION {
        return Err(bad("not a cursor"));
    }
    if bytes[2..10] != expected {
        return Err(bad("belongs to a different query"));
    }
    let rest = &bytes[10..];
    match bytes[1] {
        MODE_OFFSET => {
            let n: [u8; 8] = rest.try_into().map_err(|_| bad("not a cursor"))?;
            let n = usize::try_from(u64::from_be_bytes(n)).map_err(|_| bad("out of range"))?;
            Ok(Position::Offset(n))
        }
        MODE_AFTER => {
            let key = std::str::from_utf8(rest).map_err(|_| bad("not a cursor"))?;
            Ok(Position::After(key.to_owned()))
        }
        _ => Err(bad("not a cursor")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_queries() {
        let a = check("text:smith");
        let b = check("text:smyth");
        for pos in [
            Position::Offset(40),
            Position::After("bob@example.org".into()),
        ] {
            let c = encode(a, &pos);
            assert_eq!(decode(&c, a).unwrap(), pos);
            assert!(matches!(
                decode(&c, b),
                Err(IndexError::InvalidCursor("belongs to a different query"))
            ));
        }
    }

    #[test]
    fn rejects_garbage() {
        let a = check("q");
        for junk in ["", "!!", "AAAA", &"A".repeat(5000), "AQA"] {
            assert!(decode(junk, a).is_err(), "{junk}");
        }
    }
}
