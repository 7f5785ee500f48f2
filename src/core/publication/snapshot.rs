//! The publication view saved to a file, so that a restart does not have
//! to rescan every certificate of the database.
//!
//! At a million entries that scan reads a few hundred megabytes of b-tree
//! pages scattered through the database file. With the file in the page
//! cache it takes a second; after a reboot it is random reads from disk,
//! and took 52 s on the build machine. The saved view is one sequential
//! file of about 60 bytes per published certificate.
//!
//! # Layout (all integers little-endian)
//!
//! ```text
//! magic      8 octets  "ccdirpv" 0x01
//! format     u32       FORMAT
//! applied    u64       the last change the view had applied
//! change key str       the key of that change ("" when applied is 0)
//! schema     str       the newest migration of the database it was taken over
//! rows       u64       how many rows follow
//! row        binding u8 (0 address, 1 domain), entry key str,
//!            certificate row id i64, fingerprint prefix u64,
//!            not_after i64 (seconds since the epoch)
//! sha256     32 octets of everything before it
//! str        u32 length, then that many octets of UTF-8
//! ```
//!
//! A row is a certificate the view published when it was saved: its entry
//! public, its stored verdict trusted, within its validity. Loading one
//! back is loading that row from the database; whether it is still
//! published at the moment of loading is judged again then. An entry's
//! rows lie together: a reader relies on it, and refuses a file where
//! they do not.

use std::io::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use crate::domain::{Binding, ChangeSeq, TrustStatus, Visibility};
use crate::storage::PublishedRow;

const MAGIC: &[u8; 8] = b"ccdirpv\x01";
/// Changes whenever this layout, or what a row means, does.
const FORMAT: u32 = 1;
const DIGEST: usize = 32;
/// The octets of a row with an empty key.
const MIN_ROW: u64 = 1 + 4 + 8 + 8 + 8;

/// When and over what a view was saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    /// The last change the view had applied when it was saved.
    pub applied: ChangeSeq,
    /// The key of that change: a database whose change at `applied` has
    /// another key (restored from a backup, another database) is not the
    /// one the view was taken from.
    pub change_key: String,
    /// The newest migration of the schema the view was taken over.
    pub schema: String,
}

/// One saved certificate.
#[derive(Debug, Clone, Copy)]
pub(super) struct SavedRow<'a> {
    pub key: &'a str,
    pub binding: Binding,
    pub id: i64,
    pub digest: u64,
    pub not_after: i64,
}

/// Encodes a saved view.
pub(super) fn encode<'a>(header: &Header, rows: impl Iterator<Item = SavedRow<'a>>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&header.applied.0.to_le_bytes());
    put_str(&mut out, &header.change_key);
    put_str(&mut out, &header.schema);
    let count_at = out.len();
    out.extend_from_slice(&0u64.to_le_bytes());
    let mut count = 0u64;
    for row in rows {
        out.push(match row.binding {
            Binding::Address => 0,
            Binding::Domain => 1,
        });
        put_str(&mut out, row.key);
        out.extend_from_slice(&row.id.to_le_bytes());
        out.extend_from_slice(&row.digest.to_le_bytes());
        out.extend_from_slice(&row.not_after.to_le_bytes());
        count += 1;
    }
    out[count_at..count_at + 8].copy_from_slice(&count.to_le_bytes());
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Keys and migration names are far below 4 GiB.
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A saved view being read: its header, checked, and its rows still to
/// come. Rows are read as they are used, so that reading the file overlaps
/// with loading them; only [`SavedView::rows`] returning `Ok` says the
/// file was whole (its checksum matched), and until then what was loaded
/// from it must be held back.
pub(super) struct SavedView<R> {
    reader: Fields<R>,
    header: Header,
    count: u64,
    /// Where the checksum starts: the octets it covers.
    hashed: u64,
}

impl SavedView<std::fs::File> {
    /// Opens the saved view at `path`; `None` when there is none.
    pub fn open_file(path: &Path) -> Option<Result<SavedView<std::fs::File>, String>> {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(e.to_string())),
        };
        Some(
            file.metadata()
                .map_err(|e| e.to_string())
                .and_then(|m| SavedView::open(file, m.len())),
        )
    }
}

impl<R: std::io::Read> SavedView<R> {
    /// Reads and checks the header of a saved view `len` octets long.
    /// Errors say what is wrong.
    pub fn open(reader: R, len: u64) -> Result<SavedView<R>, String> {
        let Some(hashed) = len.checked_sub(DIGEST as u64) else {
            return Err(format!("truncated: {len} octets"));
        };
        let hashing = Hashing {
            inner: reader,
            digest: Sha256::new(),
            left: hashed,
        };
        let mut reader = Fields {
            inner: std::io::BufReader::with_capacity(1 << 20, hashing),
            at: 0,
        };
        if reader.array::<8>()? != *MAGIC {
            return Err("not a saved publication view".into());
        }
        let format = u32::from_le_bytes(reader.array()?);
        if format != FORMAT {
            return Err(format!("format {format}, this version reads {FORMAT}"));
        }
        let mut change_key = String::new();
        let mut schema = String::new();
        let applied = ChangeSeq(u64::from_le_bytes(reader.array()?));
        reader.string(&mut change_key)?;
        reader.string(&mut schema)?;
        let count = u64::from_le_bytes(reader.array()?);
        // Bounds what a reader may reserve for the rows.
        let room = hashed.saturating_sub(reader.at);
        if count > room / MIN_ROW {
            return Err(format!("{count} rows cannot fit in {room} octets"));
        }
        Ok(SavedView {
            reader,
            header: Header {
                applied,
                change_key,
                schema,
            },
            count,
            hashed,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// How many rows the file says follow.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Hands each row to `visit` (as the database would give it: a public
    /// entry, a trusted certificate), then checks the checksum and that
    /// nothing follows it. Stops at the first error `visit` returns.
    pub fn rows(
        mut self,
        mut visit: impl FnMut(&PublishedRow) -> Result<(), String>,
    ) -> Result<(), String> {
        let r = &mut self.reader;
        let mut row = PublishedRow {
            key: String::new(),
            visibility: Visibility::Public,
            binding: Binding::Address,
            trust: TrustStatus::Trusted,
            not_before: DateTime::<Utc>::MIN_UTC,
            not_after: DateTime::<Utc>::MIN_UTC,
            id: 0,
            fingerprint_prefix: 0,
        };
        for _ in 0..self.count {
            row.binding = match r.array::<1>()? {
                [0] => Binding::Address,
                [1] => Binding::Domain,
                [b] => return Err(format!("unknown binding {b}")),
            };
            r.string(&mut row.key)?;
            row.id = i64::from_le_bytes(r.array()?);
            row.fingerprint_prefix = u64::from_le_bytes(r.array()?);
            let not_after = i64::from_le_bytes(r.array()?);
            row.not_after = DateTime::<Utc>::from_timestamp(not_after, 0)
                .ok_or_else(|| format!("not_after {not_after} is out of range"))?;
            visit(&row)?;
        }
        if r.at > self.hashed {
            return Err(format!(
                "truncated: the rows run {} octets into the checksum",
                r.at - self.hashed
            ));
        }
        if r.at < self.hashed {
            return Err(format!(
                "{} octets more than the rows and their checksum",
                self.hashed - r.at
            ));
        }
        // Reading the checksum pulled everything before it through the digest.
        let stored = r.array::<DIGEST>()?;
        let computed = std::mem::take(&mut r.inner.get_mut().digest).finalize();
        if computed.as_slice() != stored {
            return Err("the checksum does not match (a torn or damaged file)".into());
        }
        let mut more = [0u8; 1];
        match std::io::Read::read(&mut r.inner, &mut more) {
            Ok(0) => Ok(()),
            Ok(_) => Err("octets after the checksum".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Reads through its buffer in large blocks, hashing the first `left`
/// octets (all but the stored checksum) a block at a time.
struct Hashing<R> {
    inner: R,
    digest: Sha256,
    left: u64,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let hashed = n.min(usize::try_from(self.left).unwrap_or(usize::MAX));
        self.digest.update(&buf[..hashed]);
        self.left -= hashed as u64;
        Ok(n)
    }
}

/// The fields of a saved view, with the octet count for errors.
struct Fields<R> {
    inner: std::io::BufReader<Hashing<R>>,
    at: u64,
}

impl<R: std::io::Read> Fields<R> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        self.fill(&mut out)?;
        Ok(out)
    }

    fn fill(&mut self, out: &mut [u8]) -> Result<(), String> {
        std::io::Read::read_exact(&mut self.inner, out)
            .map_err(|_| format!("truncated at octet {}", self.at))?;
        self.at += out.len() as u64;
        Ok(())
    }

    /// Reads a string into `out`, replacing what it held.
    fn string(&mut self, out: &mut String) -> Result<(), String> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        // No saved string is longer than a key; a larger length is damage.
        if len > 4096 {
            return Err(format!("a string of {len} octets at octet {}", self.at));
        }
        let mut bytes = [0u8; 4096];
        let bytes = &mut bytes[..len];
        self.fill(bytes)?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| format!("bad UTF-8 before octet {}", self.at))?;
        out.clear();
        out.push_str(text);
        Ok(())
    }
}

/// The header and every row of a saved view in memory (tests).
#[cfg(test)]
pub(super) fn decode(bytes: &[u8]) -> Result<(Header, Vec<PublishedRow>), String> {
    let view = SavedView::open(bytes, bytes.len() as u64)?;
    let header = view.header().clone();
    let mut rows = Vec::new();
    view.rows(|r| {
        rows.push(r.clone());
        Ok(())
    })?;
    Ok((header, rows))
}

/// Writes `bytes` to `path` so that a reader finds the old file or the new
/// one whole: a temporary file beside it, synced, then renamed over it.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            applied: ChangeSeq(42),
            change_key: "ann@x.org".into(),
            schema: "m20261206_000001_published_index".into(),
        }
    }

    fn rows() -> Vec<SavedRow<'static>> {
        vec![
            SavedRow {
                key: "ann@x.org",
                binding: Binding::Address,
                id: 7,
                digest: 0xdead_beef,
                not_after: 1_900_000_000,
            },
            SavedRow {
                key: "x.org",
                binding: Binding::Domain,
                id: -3,
                digest: u64::MAX,
                not_after: 0,
            },
        ]
    }

    #[test]
    fn round_trips() {
        let bytes = encode(&header(), rows().into_iter());
        let (h, decoded) = decode(&bytes).unwrap();
        assert_eq!(h, header());
        assert_eq!(decoded.len(), 2);
        for (saved, row) in rows().iter().zip(&decoded) {
            assert_eq!(row.key, saved.key);
            assert_eq!(row.binding, saved.binding);
            assert_eq!(row.id, saved.id);
            assert_eq!(row.fingerprint_prefix, saved.digest);
            assert_eq!(row.not_after.timestamp(), saved.not_after);
            assert_eq!(row.visibility, Visibility::Public);
            assert_eq!(row.trust, TrustStatus::Trusted);
        }
        let (_, none) = decode(&encode(&header(), std::iter::empty())).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn damage_is_refused_with_a_reason() {
        let good = encode(&header(), rows().into_iter());
        // Any flipped octet: the checksum (or the magic) catches it.
        for at in [0, 9, 20, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            assert!(decode(&bad).is_err(), "flipped octet {at} was accepted");
        }
        for len in [0, 5, 31, good.len() - 1] {
            assert!(
                decode(&good[..len]).is_err(),
                "a file cut at {len} was accepted"
            );
        }
        let err = decode(&good[..good.len() - 1]).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        let mut flipped = good.clone();
        flipped[good.len() - 40] ^= 1;
        let err = decode(&flipped).unwrap_err();
        assert!(err.contains("checksum"), "{err}");
        let mut longer = good.clone();
        longer.push(0);
        assert!(decode(&longer).unwrap_err().contains("octets more than"));
        assert!(decode(b"not a view at all, just some text here ...").is_err());
    }

    #[test]
    fn a_consistent_file_that_lies_about_its_rows_is_refused() {
        // Rewrite the row count and fix the checksum: still refused.
        let mut body = encode(&header(), rows().into_iter());
        body.truncate(body.len() - DIGEST);
        let count_at = body.len() - 2 * (1 + 4 + 8 + 8 + 8) - "ann@x.org".len() - "x.org".len() - 8;
        for count in [3u64, 1, u64::MAX] {
            let mut lying = body.clone();
            lying[count_at..count_at + 8].copy_from_slice(&count.to_le_bytes());
            let digest = Sha256::digest(&lying);
            lying.extend_from_slice(&digest);
            assert!(decode(&lying).is_err(), "count {count} was accepted");
        }
        let mut format = body.clone();
        format[8] = 9;
        let digest = Sha256::digest(&format);
        format.extend_from_slice(&digest);
        assert!(decode(&format).unwrap_err().contains("format 9"));
    }

    /// Gives at most a few octets per read, as a pipe or a slow disk may.
    struct Trickle<'a>(&'a [u8]);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(7);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_view_larger_than_the_read_buffer_is_checked_whole() {
        let keys: Vec<String> = (0..60_000)
            .map(|i| format!("p{i}@org{}.example", i % 97))
            .collect();
        let many = keys.iter().enumerate().map(|(i, key)| SavedRow {
            key,
            binding: Binding::Address,
            id: i as i64,
            digest: i as u64 * 31,
            not_after: 1_900_000_000,
        });
        let bytes = encode(&header(), many);
        assert!(bytes.len() > 2 << 20, "spans several reads of the buffer");
        let (_, rows) = decode(&bytes).unwrap();
        assert_eq!(rows.len(), keys.len());
        assert_eq!(rows[59_999].key, keys[59_999]);
        assert_eq!(rows[12_345].id, 12_345);
        // Short reads give the same rows.
        let view = SavedView::open(Trickle(&bytes), bytes.len() as u64).unwrap();
        let mut n = 0;
        view.rows(|_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, keys.len());
        // Damage anywhere in it is caught, in the first block or a later one.
        for at in [100, (1 << 20) + 3, bytes.len() - 100] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            let err = decode(&bad).unwrap_err();
            assert!(
                err.contains("checksum") || err.contains("UTF-8"),
                "{at}: {err}"
            );
        }
    }

    #[test]
    fn writing_replaces_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("view");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }
}
