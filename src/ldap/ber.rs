//! A direct BER encoder for the one message a search sends many of:
//! SearchResultEntry (RFC 4511 §4.5.2). ldap3_proto encodes every message
//! through a tree of tagged values built first, from owned strings and
//! vectors; for a page of a hundred entries building and encoding those was
//! a third of the search's CPU. This writes the same bytes (definite,
//! minimal lengths, as ldap3_lber writes them) straight from the entry's
//! fields into the buffer that is sent. Every other message still goes
//! through ldap3_proto.

use bytes::{Buf, BufMut, BytesMut};
use ldap3_proto::proto::{LdapMsg, LdapSearchResultEntry};

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

/// The SearchResultEntry messages of one search, encoded as they are
/// found, from borrowed parts: an entry's attributes go into a scratch
/// buffer as they come (each one's length is known when it is added), then
/// [`EncodedEntries::finish_entry`] appends the whole message. Both buffers
/// are reused for every entry of the search.
#[derive(Debug)]
pub struct EncodedEntries {
    msgid: i32,
    /// Whole messages, ready to send.
    pub bytes: BytesMut,
    /// How many messages `bytes` holds.
    pub count: usize,
    attributes: BytesMut,
}

impl EncodedEntries {
    /// No entries yet, for the search `msgid`.
    pub fn new(msgid: i32) -> EncodedEntries {
        EncodedEntries {
            msgid,
            bytes: BytesMut::new(),
            count: 0,
            attributes: BytesMut::new(),
        }
    }

    /// Adds one attribute to the entry being written (a PartialAttribute:
    /// its description and a set of values; an empty set when only types
    /// are returned).
    pub fn attribute(&mut self, name: &str, values: &[&[u8]]) {
        let vals: usize = values.iter().map(|v| element(v.len())).sum();
        let len = element(name.len()) + element(vals);
        let out = &mut self.attributes;
        out.reserve(element(len));
        put_header(out, SEQUENCE, len);
        put_octets(out, name.as_bytes());
        put_header(out, SET, vals);
        for v in values {
            put_octets(out, v);
        }
    }

    /// Ends the entry being written: appends the LDAPMessage carrying `dn`
    /// and the attributes added since the last entry (no controls).
    pub fn finish_entry(&mut self, dn: &str) {
        let attributes = self.attributes.len();
        let op = element(dn.len()) + element(attributes);
        let (id, skip) = integer_octets(self.msgid);
        let message = element(4 - skip) + element(op);
        let out = &mut self.bytes;
        out.reserve(element(message));
        put_header(out, SEQUENCE, message);
        put_header(out, INTEGER, 4 - skip);
        out.put_slice(&id[skip..]);
        put_header(out, SEARCH_RESULT_ENTRY, op);
        put_octets(out, dn.as_bytes());
        put_header(out, SEQUENCE, attributes);
        out.put_slice(&self.attributes);
        self.attributes.clear();
        self.count += 1;
    }

    /// Appends a whole entry built as ldap3_proto's type.
    pub fn push(&mut self, entry: &LdapSearchResultEntry) {
        for a in &entry.attributes {
            let values: Vec<&[u8]> = a.vals.iter().map(Vec::as_slice).collect();
            self.attribute(&a.atype, &values);
        }
        self.finish_entry(&entry.dn);
    }
}

/// The messages in `bytes` (whole BER LDAPMessages back to back), decoded
/// by ldap3_proto: what the in-memory request path hands its callers.
pub fn decode_all(mut bytes: BytesMut) -> Vec<LdapMsg> {
    let mut parser = ldap3_lber::parse::Parser::new(16);
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Ok((rest, tag)) = parser.parse(&bytes) else {
            break;
        };
        let used = bytes.len() - rest.len();
        match LdapMsg::try_from(tag) {
            Ok(msg) => out.push(msg),
            Err(_) => break,
        }
        bytes.advance(used);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3_lber::structure::StructureTag;
    use ldap3_proto::proto::{LdapOp, LdapPartialAttribute};

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
                let mut mine = EncodedEntries::new(msgid);
                mine.push(&e);
                mine.push(&e);
                let mut theirs = by_ldap3(msgid, &e);
                theirs.extend_from_slice(&by_ldap3(msgid, &e));
                assert_eq!(mine.count, 2);
                assert_eq!(mine.bytes, theirs, "msgid {msgid}, {values}×{len}");
            }
        }
    }

    #[test]
    fn decodes_back_to_the_same_message() {
        let e = entry(2, 1500);
        let mut mine = EncodedEntries::new(42);
        mine.push(&e);
        let mut parser = ldap3_lber::parse::Parser::new(16);
        let (rest, tag) = parser.parse(&mine.bytes).unwrap();
        assert!(rest.is_empty());
        let msg = LdapMsg::try_from(tag).unwrap();
        assert_eq!(msg.msgid, 42);
        assert_eq!(msg.op, LdapOp::SearchResultEntry(e));
    }
}
