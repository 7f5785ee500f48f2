//! The canonical binary encoding every signed federation object uses.
//!
//! Signed bytes must be reproducible by an independent implementation, so
//! the rules are few and exact (see `docs/federation.md`, which is the
//! specification; this file is one implementation of it):
//!
//! | type | bytes |
//! |---|---|
//! | `u8`, `u16`, `u32`, `u64` | fixed width, big-endian |
//! | `time` | `i64` big-endian: microseconds since 1970-01-01T00:00:00Z |
//! | `bool` | `0x00` or `0x01`; any other octet is an error |
//! | `bytes` | `u32` length, then the octets |
//! | `str` | `bytes` holding UTF-8 |
//! | `opt<T>` | `0x00` (absent), or `0x01` followed by `T` |
//! | `list<T>` | `u32` count, then each item |
//! | `key` | 32 octets: a raw Ed25519 public key |
//! | `hash` | 32 octets: a SHA-256 digest |
//! | `sig` | 64 octets: an Ed25519 signature (RFC 8032) |
//!
//! Every object starts with a magic string naming what it is and its
//! version (`ccdir/record/v1`, ...), written as raw ASCII without a length,
//! so that a signature over one kind of object can never be taken for a
//! signature over another.
//!
//! The [`Reader`] never panics and never allocates more than its input
//! justifies: lengths and counts are checked against the bytes left.

use chrono::{DateTime, SubsecRound, Utc};

use super::error::DecodeError;
use super::types::{Hash, Key};

/// Builds a canonical encoding.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A writer whose output starts with `magic`.
    pub fn new(magic: &[u8]) -> Writer {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(magic);
        Writer { buf }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The finished encoding.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Appends raw octets (fixed-size fields: keys, hashes, signatures).
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// A `u8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    /// A time, as microseconds since the epoch (finer digits are dropped:
    /// storage keeps microseconds, so a value read back signs the same).
    pub fn time(&mut self, t: DateTime<Utc>) -> &mut Self {
        self.raw(&t.timestamp_micros().to_be_bytes())
    }

    /// A `bool`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// Length-prefixed octets. Lengths beyond `u32` cannot be encoded;
    /// nothing that large is ever signed (records are capped far below).
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.raw(&b[..len as usize])
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// An optional string.
    pub fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            None => self.u8(0),
            Some(s) => self.u8(1).str(s),
        }
    }

    /// A list: its count, then each item written by `item`.
    pub fn list<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) -> &mut Self {
        let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
        self.u32(count);
        for i in items.iter().take(count as usize) {
            item(self, i);
        }
        self
    }

    /// A 32-octet key.
    pub fn key(&mut self, k: &Key) -> &mut Self {
        self.raw(&k.0)
    }

    /// A 32-octet hash.
    pub fn hash(&mut self, h: &Hash) -> &mut Self {
        self.raw(&h.0)
    }
}

/// Reads a canonical encoding, refusing anything that is not exactly one.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, which must start with `magic`.
    pub fn new(buf: &'a [u8], magic: &'static [u8]) -> Result<Reader<'a>, DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        if r.take(magic.len(), "magic")? != magic {
            return Err(DecodeError::new(0, "magic", "wrong object type or version"));
        }
        Ok(r)
    }

    /// A reader over a nested value with no magic (a body payload).
    pub fn plain(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Where the next read starts.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Octets not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn err(&self, what: &'static str, reason: &'static str) -> DecodeError {
        DecodeError::new(self.pos, what, reason)
    }

    /// The next `n` octets.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.err(what, "truncated"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    /// A `u8`.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A time in microseconds since the epoch.
    pub fn time(&mut self, what: &'static str) -> Result<DateTime<Utc>, DecodeError> {
        let at = self.pos;
        let micros = i64::from_be_bytes(self.array(what)?);
        DateTime::from_timestamp_micros(micros)
            .map(|t| t.trunc_subsecs(6))
            .ok_or_else(|| DecodeError::new(at, what, "time out of range"))
    }

    /// A `bool`: exactly `0x00` or `0x01`.
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::new(self.pos - 1, what, "a bool is 0 or 1")),
        }
    }

    /// Length-prefixed octets.
    pub fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        std::str::from_utf8(self.bytes(what)?).map_err(|_| DecodeError::new(at, what, "not UTF-8"))
    }

    /// An optional string.
    pub fn opt_str(&mut self, what: &'static str) -> Result<Option<&'a str>, DecodeError> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => self.str(what).map(Some),
            _ => Err(DecodeError::new(
                self.pos - 1,
                what,
                "an option tag is 0 or 1",
            )),
        }
    }

    /// A list count, checked against the bytes left: every item takes at
    /// least `min_item` octets, so a forged count cannot make us allocate.
    pub fn count(&mut self, what: &'static str, min_item: usize) -> Result<usize, DecodeError> {
        let n = self.u32(what)? as usize;
        if n.saturating_mul(min_item.max(1)) > self.remaining() {
            return Err(self.err(what, "count larger than the bytes left"));
        }
        Ok(n)
    }

    /// A 32-octet key.
    pub fn key(&mut self, what: &'static str) -> Result<Key, DecodeError> {
        Ok(Key(self.array(what)?))
    }

    /// A 32-octet hash.
    pub fn hash(&mut self, what: &'static str) -> Result<Hash, DecodeError> {
        Ok(Hash(self.array(what)?))
    }

    /// A 64-octet signature.
    pub fn sig(&mut self, what: &'static str) -> Result<[u8; 64], DecodeError> {
        self.array(what)
    }

    /// Fails unless every octet has been read.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(self.err(what, "trailing bytes"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_have_the_documented_bytes() {
        let t = DateTime::from_timestamp(1, 500).unwrap(); // 1 s + 500 ns: ns are dropped
        let mut w = Writer::new(b"M");
        w.u8(7)
            .u16(0x0102)
            .u32(3)
            .u64(1)
            .time(t)
            .bool(true)
            .str("hé")
            .opt_str(None)
            .opt_str(Some(""));
        w.list(&["a", "b"], |w, s| {
            w.str(s);
        });
        let expected: Vec<u8> = [
            &b"M"[..],
            &[7],
            &[1, 2],
            &[0, 0, 0, 3],
            &[0, 0, 0, 0, 0, 0, 0, 1],
            &1_000_000i64.to_be_bytes(),
            &[1],
            &[0, 0, 0, 3, b'h', 0xc3, 0xa9],
            &[0],
            &[1, 0, 0, 0, 0],
            &[0, 0, 0, 2, 0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b'],
        ]
        .concat();
        assert_eq!(w.as_bytes(), expected.as_slice());

        let mut r = Reader::new(&expected, b"M").unwrap();
        assert_eq!(r.u8("a").unwrap(), 7);
        assert_eq!(r.u16("b").unwrap(), 0x0102);
        assert_eq!(r.u32("c").unwrap(), 3);
        assert_eq!(r.u64("d").unwrap(), 1);
        assert_eq!(
            r.time("e").unwrap(),
            DateTime::from_timestamp(1, 0).unwrap()
        );
        assert!(r.bool("f").unwrap());
        assert_eq!(r.str("g").unwrap(), "hé");
        assert_eq!(r.opt_str("h").unwrap(), None);
        assert_eq!(r.opt_str("i").unwrap(), Some(""));
        let n = r.count("j", 4).unwrap();
        let items: Vec<&str> = (0..n).map(|_| r.str("k").unwrap()).collect();
        assert_eq!(items, ["a", "b"]);
        r.finish("end").unwrap();
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        assert!(Reader::new(b"X", b"M").is_err());
        assert!(Reader::new(b"", b"M").is_err());
        let mut r = Reader::plain(&[0, 0, 0, 9, 1]);
        assert!(r.bytes("b").is_err());
        let mut r = Reader::plain(&[2]);
        assert!(r.bool("b").is_err());
        let mut r = Reader::plain(&[2]);
        assert!(r.opt_str("o").is_err());
        let mut r = Reader::plain(&[0xff, 0xff, 0xff, 0xff, 0]);
        assert!(r.count("n", 1).is_err());
        let mut r = Reader::plain(&[0, 0, 0, 1, 0xff]);
        assert!(r.str("s").is_err());
        let max = i64::MAX.to_be_bytes();
        let mut r = Reader::plain(&max);
        assert!(r.time("t").is_err());
        let r = Reader::plain(&[1]);
        assert!(r.finish("end").is_err());
        // Every prefix of a valid encoding fails cleanly.
        let mut w = Writer::new(b"M");
        w.str("abc").u64(5).opt_str(Some("x"));
        let full = w.into_bytes();
        for cut in 0..full.len() {
            let mut r = match Reader::new(&full[..cut], b"M") {
                Ok(r) => r,
                Err(_) => continue,
            };
            let ok = r
                .str("s")
                .and_then(|_| r.u64("n"))
                .and_then(|_| r.opt_str("o"));
            assert!(ok.is_err(), "prefix of {cut} bytes decoded");
        }
    }
}
