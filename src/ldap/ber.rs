//! A direct BER encoder for the one message a search sends many of:
//! SearchResultEntry (RFC 4511 §4.5.2). ldap3_proto encodes every message
//! through a tree of tagged values built first; for a page of a hundred
//! entries that tree was a quarter of the search's CPU. This writes the
//! same bytes (definite, minimal lengths, as ldap3_lber writes them) straight
//! into the output buffer. Every other message still goes through ldap3_proto.

use bytes::{BufMut, BytesMut};
use ldap3_proto::proto::LdapSearchResultEntry;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
/// [APPLICATION 4], constructed.
const SEARCH_RESULT_ENTRY: u8 = 0x64;

/// Octets the length header of `len` takes.
fn length_size(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
    }
}

/// Octets a whole element with `len` octets of content takes.
fn element(len: usize) -> usize {
    1 + length_size(len) + len
}

fn put_header(out: &mut BytesMut, tag: u8, len: usize) {
    out.put_u8(tag);
    if len < 0x80 {
        out.put_u8(len as u8);
    } else {
        let n = length_size(len) - 1;
        out.put_u8(0x80 | n as u8);
        for i in (0..n).rev() {
            out.put_u8((len >> (8 * i)) as u8);
        }
    }
}

fn put_octets(out: &mut BytesMut, bytes: &[u8]) {
    put_header(out, OCTET_STRING, bytes.len());
    out.put_slice(bytes);
}

/// The minimal two's-complement content octets of `v`.
fn integer_octets(v: i32) -> ([u8; 4], usize) {
    let bytes = v.to_be_bytes();
    let mut skip = 0;
    while skip < 3 {
        let (b, next) = (bytes[skip], bytes[skip + 1]);
        let redundant = (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        skip += 1;
    }
    (bytes, skip)
}

/// Appends the LDAPMessage carrying `entry` with `msgid` (no controls).
pub fn encode_search_entry(out: &mut BytesMut, msgid: i32, entry: &LdapSearchResultEntry) {
    let attribute_lens: Vec<(usize, usize)> = entry
        .attributes
        .iter()
        .map(|a| {
            let vals: usize = a.vals.iter().map(|v| element(v.len())).sum();
            (vals, element(a.atype.len()) + element(vals))
        })
        .collect();
    let attributes: usize = attribute_lens.iter().map(|(_, len)| element(*len)).sum();
    let op = element(entry.dn.len()) + element(attributes);
    let (id, skip) = integer_octets(msgid);
    let message = element(4 - skip) + element(op);
    out.reserve(element(message));

    put_header(out, SEQUENCE, message);
    put_header(out, INTEGER, 4 - skip);
    out.put_slice(&id[skip..]);
    put_header(out, SEARCH_RESULT_ENTRY, op);
    put_octets(out, entry.dn.as_bytes());
    put_header(out, SEQUENCE, attributes);
    for (a, (vals, len)) in entry.attributes.iter().zip(attribute_lens) {
        put_header(out, SEQUENCE, len);
        put_octets(out, a.atype.as_bytes());
        put_header(out, SET, vals);
        for v in &a.vals {
            put_octets(out, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3_lber::structure::StructureTag;
    use ldap3_proto::proto::{LdapMsg, LdapOp, LdapPartialAttribute};

    fn by_ldap3(msgid: i32, entry: &LdapSearchResultEntry) -> BytesMut {
        let tag: StructureTag = LdapMsg {
            msgid,
            op: LdapOp::SearchResultEntry(entry.clone()),
            ctrl: Vec::new(),
        }
        .into();
        let mut out = BytesMut::new();
        ldap3_lber::write::encode_into(&mut out, tag).unwrap();
        out
    }

    fn entry(values: usize, value_len: usize) -> LdapSearchResultEntry {
        LdapSearchResultEntry {
            dn: "mail=alice@x.org,o=org-1,dc=ccdir".into(),
            attributes: vec![
                LdapPartialAttribute {
                    atype: "cn".into(),
                    vals: vec![b"Alice Smith".to_vec()],
                },
                LdapPartialAttribute {
                    atype: "userCertificate;binary".into(),
                    vals: (0..values).map(|i| vec![i as u8; value_len]).collect(),
                },
                LdapPartialAttribute {
                    atype: "typesOnly".into(),
                    vals: Vec::new(),
                },
            ],
        }
    }

    #[test]
    fn writes_the_bytes_ldap3_writes() {
        // MessageID is 0..maxInt (RFC 4511 §4.1.1); requests with others do not decode.
        let ids = [0, 1, 127, 128, 255, 256, 65_535, 8_388_608, i32::MAX];
        let shapes = [(0, 0), (1, 10), (2, 127), (3, 128), (1, 300), (2, 70_000)];
        for msgid in ids {
            for (values, len) in shapes {
                let e = entry(values, len);
                let mut mine = BytesMut::new();
                encode_search_entry(&mut mine, msgid, &e);
                assert_eq!(mine, by_ldap3(msgid, &e), "msgid {msgid}, {values}×{len}");
            }
        }
    }

    #[test]
    fn decodes_back_to_the_same_message() {
        let e = entry(2, 1500);
        let mut mine = BytesMut::new();
        encode_search_entry(&mut mine, 42, &e);
        let mut parser = ldap3_lber::parse::Parser::new(16);
        let (rest, tag) = parser.parse(&mine).unwrap();
        assert!(rest.is_empty());
        let msg = LdapMsg::try_from(tag).unwrap();
        assert_eq!(msg.msgid, 42);
        assert_eq!(msg.op, LdapOp::SearchResultEntry(e));
    }
}
