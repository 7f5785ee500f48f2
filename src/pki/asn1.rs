//! A small BER/DER tag-length-value reader and writer.
//!
//! Why not only the `der` crate: we need the *original bytes* of parts of a
//! structure (the `tbsCertificate` a signature covers, each certificate inside
//! a PKCS#7 bundle) exactly as they arrived, and we must walk indefinite-length
//! BER (`openssl cms -stream`, some mail clients) without re-encoding anything.
//! Decoding into typed values and re-encoding can change bytes (der 0.8 re-sorts
//! `SET OF`), which breaks fingerprints and signatures. This reader never
//! copies or re-encodes; it only slices.
//!
//! Every access is bounds-checked; malformed input yields [`Asn1Error`], never
//! a panic. Nesting of indefinite lengths is limited to [`MAX_DEPTH`].

use std::fmt;

/// Deepest nesting of indefinite-length values we follow (guards the stack).
pub(crate) const MAX_DEPTH: u8 = 32;

/// Universal and context tags as the first identifier octet.
pub(crate) mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    /// `[0]` constructed (EXPLICIT or constructed IMPLICIT).
    pub const CTX0: u8 = 0xa0;
    /// `[1]` constructed.
    pub const CTX1: u8 = 0xa1;
    /// `[2]` constructed.
    pub const CTX2: u8 = 0xa2;
    /// `[3]` constructed.
    pub const CTX3: u8 = 0xa3;
    /// `[0]` primitive (IMPLICIT OCTET STRING, e.g. AKI keyIdentifier).
    pub const CTX0_PRIM: u8 = 0x80;
}

/// Why bytes could not be walked as BER/DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Asn1Error(pub &'static str);

impl fmt::Display for Asn1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// One tag-length-value element, borrowed from the input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    /// First identifier octet (class, constructed bit, low tag number).
    pub tag: u8,
    /// The contents octets (for indefinite length: without the end-of-contents).
    pub value: &'a [u8],
    /// The whole element: identifier, length, contents (and end-of-contents).
    pub raw: &'a [u8],
    ber: bool,
    depth: u8,
}

impl<'a> Tlv<'a> {
    /// A reader over the children of a constructed element.
    pub fn children(&self) -> Reader<'a> {
        Reader {
            data: self.value,
            pos: 0,
            ber: self.ber,
            depth: self.depth.saturating_add(1),
        }
    }

    /// Contents of a BIT STRING with no unused bits (keys, signatures).
    pub fn bit_string_bytes(&self) -> Result<&'a [u8], Asn1Error> {
        if self.tag != tag::BIT_STRING {
            return Err(Asn1Error("expected a BIT STRING"));
        }
        match self.value.split_first() {
            Some((0, rest)) => Ok(rest),
            Some(_) => Err(Asn1Error("BIT STRING with unused bits")),
            None => Err(Asn1Error("empty BIT STRING")),
        }
    }
}

/// A cursor over a sequence of sibling elements.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    ber: bool,
    depth: u8,
}

impl<'a> Reader<'a> {
    /// A strict DER reader: definite lengths only, minimal length encodings.
    pub fn der(data: &'a [u8]) -> Self {
        Reader {
            data,
            pos: 0,
            ber: false,
            depth: 0,
        }
    }

    /// A BER reader: also accepts indefinite lengths and non-minimal lengths.
    pub fn ber(data: &'a [u8]) -> Self {
        Reader {
            data,
            pos: 0,
            ber: true,
            depth: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The identifier octet of the next element, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Reads the next element.
    pub fn read(&mut self) -> Result<Tlv<'a>, Asn1Error> {
        let start = self.pos;
        let data = self.data;
        let byte = |i: usize| data.get(i).copied().ok_or(Asn1Error("truncated"));

        let tag = byte(start)?;
        let mut p = start + 1;
        if tag & 0x1f == 0x1f {
            // High tag number form: base-128 digits, last one without bit 8.
            let mut n = 0;
            loop {
                let b = byte(p)?;
                p += 1;
                n += 1;
                if n > 4 {
                    return Err(Asn1Error("tag number too large"));
                }
                if b & 0x80 == 0 {
                    break;
                }
            }
        }
        let constructed = tag & 0x20 != 0;

        let first = byte(p)?;
        p += 1;
        let (value, end) = if first < 0x80 {
            let len = first as usize;
            let end = p.checked_add(len).ok_or(Asn1Error("length overflow"))?;
            let value = data.get(p..end).ok_or(Asn1Error("truncated value"))?;
            (value, end)
        } else if first == 0x80 {
            if !self.ber {
                return Err(Asn1Error("indefinite length is not allowed in DER"));
            }
            if !constructed {
                return Err(Asn1Error("indefinite length on a primitive value"));
            }
            if self.depth >= MAX_DEPTH {
                return Err(Asn1Error("nesting too deep"));
            }
            // Walk the children until the end-of-contents octets 00 00.
            let mut inner = Reader {
                data,
                pos: p,
                ber: true,
                depth: self.depth + 1,
            };
            loop {
                match (data.get(inner.pos), data.get(inner.pos + 1)) {
                    (Some(0), Some(0)) => break,
                    (None, _) | (_, None) => return Err(Asn1Error("missing end-of-contents")),
                    _ => {
                        inner.read()?;
                    }
                }
            }
            let value = data.get(p..inner.pos).ok_or(Asn1Error("truncated"))?;
            (value, inner.pos + 2)
        } else {
            let count = (first & 0x7f) as usize;
            if count > 4 {
                return Err(Asn1Error("length too large"));
            }
            let bytes = data
                .get(p..p + count)
                .ok_or(Asn1Error("truncated length"))?;
            let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
            if !self.ber && (bytes.first() == Some(&0) || len < 0x80) {
                return Err(Asn1Error("non-minimal length in DER"));
            }
            p += count;
            let end = p.checked_add(len).ok_or(Asn1Error("length overflow"))?;
            let value = data.get(p..end).ok_or(Asn1Error("truncated value"))?;
            (value, end)
        };
        let raw = data.get(start..end).ok_or(Asn1Error("truncated"))?;
        self.pos = end;
        Ok(Tlv {
            tag,
            value,
            raw,
            ber: self.ber,
            depth: self.depth,
        })
    }

    /// Reads the next element and checks its tag.
    pub fn expect(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, Asn1Error> {
        match self.peek_tag() {
            Some(t) if t == tag => self.read(),
            Some(_) => Err(Asn1Error(what)),
            None => Err(Asn1Error("truncated")),
        }
    }

    /// Reads the next element if it has this tag.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, Asn1Error> {
        if self.peek_tag() == Some(tag) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless every element has been read.
    pub fn finish(&self, what: &'static str) -> Result<(), Asn1Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Asn1Error(what))
        }
    }
}

/// Appends a definite-length DER element.
pub(crate) fn write_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    write_len(out, value.len());
    out.extend_from_slice(value);
}

/// Appends a DER length.
pub(crate) fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A DER element as a new vector.
pub(crate) fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    write_tlv(&mut out, tag, value);
    out
}

/// Number of significant bits in a big-endian unsigned integer.
pub(crate) fn bit_length(be: &[u8]) -> usize {
    let mut bytes = be;
    while let Some((0, rest)) = bytes.split_first() {
        bytes = rest;
    }
    match bytes.first() {
        Some(b) => (bytes.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_definite_and_rejects_truncation() {
        let data = [0x30, 0x03, 0x02, 0x01, 0x05];
        let mut r = Reader::der(&data);
        let seq = r.read().unwrap();
        assert_eq!(seq.tag, tag::SEQUENCE);
        assert!(r.is_empty());
        let int = seq.children().expect(tag::INTEGER, "int").unwrap();
        assert_eq!(int.value, &[5]);
        for cut in 0..data.len() {
            assert!(Reader::der(&data[..cut]).read().is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn indefinite_only_in_ber() {
        // SEQUENCE (indefinite) { INTEGER 5 } EOC, then NULL
        let data = [0x30, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00, 0x05, 0x00];
        assert!(Reader::der(&data).read().is_err());
        let mut r = Reader::ber(&data);
        let seq = r.read().unwrap();
        assert_eq!(seq.value, &[0x02, 0x01, 0x05]);
        assert_eq!(seq.raw.len(), 7);
        assert_eq!(r.read().unwrap().tag, tag::NULL);
    }

    #[test]
    fn missing_eoc_and_deep_nesting_are_errors() {
        assert!(Reader::ber(&[0x30, 0x80, 0x02, 0x01, 0x05]).read().is_err());
        let mut deep = Vec::new();
        for _ in 0..200 {
            deep.extend_from_slice(&[0x30, 0x80]);
        }
        for _ in 0..200 {
            deep.extend_from_slice(&[0, 0]);
        }
        assert!(Reader::ber(&deep).read().is_err());
    }

    #[test]
    fn non_minimal_length_is_der_error() {
        let data = [0x04, 0x81, 0x01, 0xaa];
        assert!(Reader::der(&data).read().is_err());
        assert_eq!(Reader::ber(&data).read().unwrap().value, &[0xaa]);
    }

    #[test]
    fn writer_round_trips_long_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let v = vec![7u8; len];
            let enc = tlv(tag::OCTET_STRING, &v);
            let got = Reader::der(&enc).read().unwrap();
            assert_eq!(got.value.len(), len);
        }
    }

    #[test]
    fn bit_length_counts_significant_bits() {
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[0, 0]), 0);
    }
}
