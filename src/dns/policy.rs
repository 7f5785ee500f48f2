//! Answers below the policy zone (`dns.policy_zone`), DNSBL style
//! (RFC 5782, adapted in PROTOCOLS §7): `<key>.<policy>.<zone>` where
//! `<key>` is the unpadded lower-case base32 (RFC 4648 alphabet) of the
//! SHA-256 of a DER certificate or of a lower-cased address, or a domain
//! name itself.
//!
//! | name | A | TXT |
//! |---|---|---|
//! | listed | 127.0.0.2 | the reason |
//! | listed, the policy flagged for equivocation | 127.0.0.3 | the reason |
//! | `test.<policy>` | 127.0.0.2 | "test entry" |
//! | not listed, `invalid.<policy>` | NXDOMAIN | |
//! | `<policy>` itself | NODATA | |
//! | error: the key is not base32 of a SHA-256 nor a domain | 127.255.255.252 | why |
//! | error: no such policy | 127.255.255.254 | why |
//!
//! Other types at an answering name get NODATA. Answers never depend on
//! the database: the core keeps the listings in memory.

use super::handler::{Handler, authoritative};
use super::negative;
use super::wire::{Builder, Owner, QUESTION_AT, Question, Rcode, Request, TYPE_A, TYPE_ANY};
use super::zones::Zone;
use crate::core::PolicyAnswer;

/// TXT.
pub const TYPE_TXT: u16 = 16;

/// The fixed answer codes (documented in docs/policies.md).
pub const LISTED: [u8; 4] = [127, 0, 0, 2];
pub const LISTED_FLAGGED: [u8; 4] = [127, 0, 0, 3];
pub const ERROR_MALFORMED: [u8; 4] = [127, 255, 255, 252];
pub const ERROR_UNKNOWN_POLICY: [u8; 4] = [127, 255, 255, 254];

/// TXT RDATA: the text as character-strings of at most 255 octets.
fn txt(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 255 + 1);
    if bytes.is_empty() {
        out.push(0);
    }
    for chunk in bytes.chunks(255) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    out
}

/// Splits the labels before the apex into (key, policy label).
fn split(name: &[u8], apex_at: usize) -> Option<(String, String)> {
    let mut labels = Vec::new();
    let mut at = 0;
    while at < apex_at {
        let len = *name.get(at)? as usize;
        labels.push(std::str::from_utf8(name.get(at + 1..at + 1 + len)?).ok()?);
        at += 1 + len;
    }
    let policy = labels.pop()?.to_owned();
    Some((labels.join("."), policy))
}

pub fn answer(
    handler: &Handler,
    zone: &Zone,
    apex_at: usize,
    request: &Request<'_>,
    q: &Question<'_>,
    limit: usize,
    out: &mut Vec<u8>,
) {
    let serial = handler.serial();
    let nx = |out: &mut Vec<u8>, exists: bool| {
        negative::negative(
            out,
            request,
            zone,
            apex_at,
            serial,
            exists,
            handler.edns_udp_size(),
        )
    };
    let Some((key, policy)) = split(q.name.key(), apex_at) else {
        // Labels that are not UTF-8 cannot name a policy or a key.
        return nx(out, false);
    };
    let answer = match handler.policies() {
        Some(directory) => directory.policy_dns(&policy, &key),
        None => PolicyAnswer::UnknownPolicy,
    };
    let (a, text) = match answer {
        PolicyAnswer::NotListed => return nx(out, false),
        PolicyAnswer::PolicyApex => return nx(out, true),
        PolicyAnswer::Test => (LISTED, "test entry (RFC 5782)".to_owned()),
        PolicyAnswer::UnknownPolicy => (
            ERROR_UNKNOWN_POLICY,
            format!("error: no policy {policy:?} here"),
        ),
        PolicyAnswer::Malformed => (
            ERROR_MALFORMED,
            "error: not a key of this zone (base32 of a SHA-256, or a domain)".to_owned(),
        ),
        PolicyAnswer::Listed {
            flagged,
            kind,
            reason,
            expires,
        } => {
            let mut text = format!("{}: {reason}", kind.as_str());
            if let Some(e) = expires {
                text.push_str(&format!(" (until {})", e.to_rfc3339()));
            }
            if flagged {
                text.push_str(" [policy flagged: its owner signed conflicting events]");
            }
            (if flagged { LISTED_FLAGGED } else { LISTED }, text)
        }
    };
    let any = q.qtype == TYPE_ANY;
    if !(any || q.qtype == TYPE_A || q.qtype == TYPE_TXT) {
        return nx(out, true);
    }
    let mut b = Builder::new(
        out,
        request.header,
        authoritative(Rcode::NoError),
        Some(q.raw),
    );
    let owner = Owner::Pointer(QUESTION_AT);
    if any || q.qtype == TYPE_A {
        b.answer(owner, TYPE_A, zone.ttl, &[&a]);
    }
    if any || q.qtype == TYPE_TXT {
        b.answer(owner, TYPE_TXT, zone.ttl, &[&txt(&text)]);
    }
    if let Some(e) = request.edns {
        b.opt(handler.edns_udp_size(), e.dnssec_ok);
    }
    if b.finish() > limit {
        negative::truncated(
            out,
            request.header,
            q.raw,
            request.edns,
            handler.edns_udp_size(),
            true,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_splits_long_text_into_character_strings() {
        assert_eq!(txt(""), vec![0]);
        assert_eq!(txt("ab"), vec![2, b'a', b'b']);
        let long = "x".repeat(300);
        let t = txt(&long);
        assert_eq!(t[0], 255);
        assert_eq!(t[256], 45);
        assert_eq!(t.len(), 302);
    }

    #[test]
    fn names_split_into_key_and_policy() {
        // key "abc", policy "p1", apex at offset 7.
        let name = b"\x03abc\x02p1\x02bl\x07example";
        assert_eq!(split(name, 7), Some(("abc".into(), "p1".into())));
        let name = b"\x05cardi\x07example\x03org\x02p1\x02bl";
        assert_eq!(
            split(name, 21),
            Some(("cardi.example.org".into(), "p1".into()))
        );
        assert_eq!(
            split(b"\x02p1\x02bl", 3),
            Some((String::new(), "p1".into()))
        );
    }
}
