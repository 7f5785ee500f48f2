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
//! published at the moment of loading is judged again then.

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

/// Decodes a saved view into its header and rows (as the database would
/// give them: public entries, trusted certificates). Any fault, a wrong
/// checksum included, is an error saying what is wrong.
pub(super) fn decode(bytes: &[u8]) -> Result<(Header, Vec<PublishedRow>), String> {
    let body_len = bytes
        .len()
        .checked_sub(DIGEST)
        .ok_or("shorter than its checksum")?;
    let (body, digest) = bytes.split_at(body_len);
    if !bytes.starts_with(MAGIC) {
        return Err("not a saved publication view".into());
    }
    if Sha256::digest(body).as_slice() != digest {
        return Err("the checksum does not match (a torn or damaged file)".into());
    }
    let mut r = Reader {
        bytes: body,
        at: MAGIC.len(),
    };
    let format = u32::from_le_bytes(r.array()?);
    if format != FORMAT {
        return Err(format!("format {format}, this version reads {FORMAT}"));
    }
    let header = Header {
        applied: ChangeSeq(u64::from_le_bytes(r.array()?)),
        change_key: r.string()?.to_owned(),
        schema: r.string()?.to_owned(),
    };
    let count = u64::from_le_bytes(r.array()?);
    // Each row takes at least 29 octets: no count beyond what the file holds.
    let capacity = usize::try_from(count)
        .ok()
        .filter(|c| c.saturating_mul(29) <= body.len())
        .ok_or("more rows announced than the file holds")?;
    let mut rows = Vec::with_capacity(capacity);
    for _ in 0..count {
        let binding = match r.array::<1>()? {
            [0] => Binding::Address,
            [1] => Binding::Domain,
            [b] => return Err(format!("unknown binding {b}")),
        };
        let key = r.string()?.to_owned();
        let id = i64::from_le_bytes(r.array()?);
        let digest = u64::from_le_bytes(r.array()?);
        let not_after = i64::from_le_bytes(r.array()?);
        let not_after = DateTime::<Utc>::from_timestamp(not_after, 0)
            .ok_or_else(|| format!("not_after {not_after} is out of range"))?;
        rows.push(PublishedRow {
            key,
            visibility: Visibility::Public,
            binding,
            trust: TrustStatus::Trusted,
            not_before: DateTime::<Utc>::MIN_UTC,
            not_after,
            id,
            fingerprint_prefix: digest,
        });
    }
    if r.at != body.len() {
        return Err(format!("{} octets after the last row", body.len() - r.at));
    }
    Ok((header, rows))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| format!("truncated at octet {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn string(&mut self) -> Result<&'a str, String> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        std::str::from_utf8(self.take(len)?)
            .map_err(|_| format!("bad UTF-8 before octet {}", self.at))
    }
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
        assert!(err.contains("checksum"), "{err}");
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
