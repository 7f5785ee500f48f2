//! Simple Paged Results (RFC 2696). The server keeps no state between
//! pages: the cookie says where the next page starts (a synthetic node's
//! position, or the last entry key sent), when it was issued and which
//! search it belongs to, sealed with a per-process secret so that a client
//! cannot forge or reuse it for another search. Cookies expire after
//! `ldap.page_cookie_seconds`.

use std::hash::{Hash, Hasher};

use ldap3_proto::proto::LdapSearchRequest;
use sha2::{Digest, Sha256};

use super::error::LdapError;

/// Where the next page of a search starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// At this synthetic node (base entry, organisations), counted from 0.
    Synthetic(u32),
    /// At the directory entries, after this key (from the first when `None`).
    EntriesAfter(Option<String>),
}

const VERSION: u8 = 1;
const MAC_LEN: usize = 12;

/// Issues and reads cookies.
pub struct Cookies {
    secret: [u8; 32],
    ttl_seconds: u64,
}

impl Cookies {
    /// Cookies sealed with a fresh random secret, valid for `ttl_seconds`.
    pub fn new(ttl_seconds: u64) -> Cookies {
        let mut secret = [0u8; 32];
        // Without OS randomness a predictable secret only lets a client
        // forge a position in its own search; visibility is checked anyway.
        let _ = getrandom::fill(&mut secret);
        Cookies {
            secret,
            ttl_seconds,
        }
    }

    fn mac(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let digest = Sha256::new()
            .chain_update(self.secret)
            .chain_update(payload)
            .finalize();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&digest[..MAC_LEN]);
        out
    }

    /// A cookie for resuming `search` at `position`.
    pub fn issue(&self, search: u64, position: &Position, now: u64) -> Vec<u8> {
        let mut out = vec![VERSION];
        out.extend_from_slice(&now.to_be_bytes());
        out.extend_from_slice(&search.to_be_bytes());
        match position {
            Position::Synthetic(i) => {
                out.push(0);
                out.extend_from_slice(&i.to_be_bytes());
            }
            Position::EntriesAfter(None) => out.push(1),
            Position::EntriesAfter(Some(key)) => {
                out.push(2);
                out.extend_from_slice(key.as_bytes());
            }
        }
        let mac = self.mac(&out);
        out.extend_from_slice(&mac);
        out
    }

    /// The position a cookie names, if it is ours, fresh, and for `search`.
    pub fn read(&self, cookie: &[u8], search: u64, now: u64) -> Result<Position, LdapError> {
        let bad = || LdapError::BadCookie;
        if cookie.len() < 1 + 8 + 8 + 1 + MAC_LEN {
            return Err(bad());
        }
        let (payload, mac) = cookie.split_at(cookie.len() - MAC_LEN);
        // Not constant time: the MAC protects positions, not secrets.
        if self.mac(payload) != mac || payload[0] != VERSION {
            return Err(bad());
        }
        let issued = u64::from_be_bytes(payload[1..9].try_into().map_err(|_| bad())?);
        let for_search = u64::from_be_bytes(payload[9..17].try_into().map_err(|_| bad())?);
        if for_search != search || now.saturating_sub(issued) > self.ttl_seconds {
            return Err(bad());
        }
        let rest = &payload[18..];
        match payload[17] {
            0 => Ok(Position::Synthetic(u32::from_be_bytes(
                rest.try_into().map_err(|_| bad())?,
            ))),
            1 if rest.is_empty() => Ok(Position::EntriesAfter(None)),
            2 => Ok(Position::EntriesAfter(Some(
                String::from_utf8(rest.to_vec()).map_err(|_| bad())?,
            ))),
            _ => Err(bad()),
        }
    }
}

/// Identifies a search for its cookies: base, scope, filter and what it returns.
pub fn search_id(request: &LdapSearchRequest) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    request.base.to_lowercase().hash(&mut h);
    request.scope.hash(&mut h);
    request.filter.hash(&mut h);
    request.attrs.hash(&mut h);
    request.typesonly.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_round_trip_and_refuse_tampering() {
        let c = Cookies::new(60);
        for pos in [
            Position::Synthetic(3),
            Position::EntriesAfter(None),
            Position::EntriesAfter(Some("a@b.org".into())),
        ] {
            let cookie = c.issue(7, &pos, 1000);
            assert_eq!(c.read(&cookie, 7, 1030).unwrap(), pos);
            assert!(c.read(&cookie, 8, 1030).is_err(), "other search");
            assert!(c.read(&cookie, 7, 1061).is_err(), "expired");
            let mut forged = cookie.clone();
            let at = 18.min(forged.len() - 13);
            forged[at] ^= 1;
            assert!(c.read(&forged, 7, 1030).is_err(), "tampered");
        }
        assert!(c.read(b"short", 7, 0).is_err());
        assert!(
            Cookies::new(60)
                .read(&c.issue(7, &Position::Synthetic(0), 0), 7, 0)
                .is_err()
        );
    }
}
