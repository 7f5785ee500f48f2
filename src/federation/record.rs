//! Log records: the signed, hash-chained unit of a node's publication log,
//! and the bodies they carry.
//!
//! Encoding (see `docs/federation.md`):
//!
//! ```text
//! record := "ccdir/record/v1" log:key signer:key seq:u64 prev:hash
//!           time:time body_type:u16 body:bytes sig:sig
//! ```
//!
//! * `log` is the author's log identity: the node's first key. It never
//!   changes, even when the node rotates its signing key.
//! * `signer` is the key that made `sig`: the log key, or the key named by
//!   the last key-rotation record of the log.
//! * `seq` counts from 1 without gaps; `prev` is the SHA-256 of the whole
//!   previous record (signature included), all zeros for seq 1.
//! * `sig` is Ed25519 by `signer` over every preceding octet.
//! * A record's hash is SHA-256 of all of its octets, signature included.
//!
//! The body is a `u16` type and a length-prefixed payload, so that a node
//! can carry (mirror, hash, verify the signature of) a record whose body
//! type it does not know. Types: see [`body_type`].

use std::ops::Range;

use chrono::{DateTime, SubsecRound, Utc};

use super::encoding::{Reader, Writer};
use super::error::{FederationError, RejectCode, Rejection};
use super::grant::SignedGrant;
use super::types::{Hash, Key, sha256};
use crate::domain::{
    DirectoryAddress, DomainName, Entry, EntryKind, EntryRecord, Identifier, OrgId, Organisation,
    Visibility,
};
use crate::pki::{NodeKey, verify_ed25519};

/// The magic that starts a record.
pub const RECORD_MAGIC: &[u8] = b"ccdir/record/v1";
/// The largest record accepted or written (256 KiB: an entry with a few
/// certificates and their chains needs a few KiB).
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// Body type numbers. New types are appended; a number is never reused.
pub mod body_type {
    /// An entry with its certificates, as its author publishes it.
    pub const ENTRY_UPSERT: u16 = 1;
    /// An entry is gone.
    pub const ENTRY_REMOVAL: u16 = 2;
    /// An organisation, as its author publishes it.
    pub const ORGANISATION_UPSERT: u16 = 3;
    /// An organisation is gone.
    pub const ORGANISATION_REMOVAL: u16 = 4;
    /// The grants that authorise the author, root first.
    pub const DELEGATION: u16 = 5;
    /// The author signs with a new key from the next record on.
    pub const KEY_ROTATION: u16 = 6;
    /// Another node's record, verbatim, republished upward.
    pub const RELAY: u16 = 7;
    /// A fair-play policy event, its owner's signed bytes carried verbatim
    /// (the receiver verifies the owner's signature itself).
    pub const POLICY_EVENT: u16 = 8;
}

/// The header every record has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// The author's log identity (its first key).
    pub log: Key,
    /// The key that signs this record.
    pub signer: Key,
    /// Position in the log, from 1.
    pub seq: u64,
    /// Hash of the previous record; zeros for the first.
    pub prev: Hash,
    /// When the author wrote it (microseconds).
    pub time: DateTime<Utc>,
}

/// A decoded record whose signature verified under the key it names.
/// Whether that key may sign for the log is the reader's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Log, signer, position, chain link, time.
    pub header: RecordHeader,
    /// The body type (see [`body_type`]).
    pub body_type: u16,
    payload: Range<usize>,
    bytes: Vec<u8>,
    hash: Hash,
}

impl Record {
    /// Encodes and signs a record. `key` must be `header.signer`.
    pub fn sign(
        mut header: RecordHeader,
        body_type: u16,
        payload: &[u8],
        key: &NodeKey,
    ) -> Result<Record, FederationError> {
        if Key(key.public_key_bytes()) != header.signer {
            return Err(FederationError::Invalid(
                "a record is signed by the key it names".into(),
            ));
        }
        header.time = header.time.trunc_subsecs(6);
        let mut w = Writer::new(RECORD_MAGIC);
        w.key(&header.log)
            .key(&header.signer)
            .u64(header.seq)
            .hash(&header.prev)
            .time(header.time)
            .u16(body_type);
        let start = w.as_bytes().len() + 4;
        w.bytes(payload);
        let payload_range = start..start + payload.len();
        let signature = key.sign(w.as_bytes());
        w.raw(&signature);
        let bytes = w.into_bytes();
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(FederationError::Invalid(format!(
                "a record may take at most {MAX_RECORD_BYTES} bytes"
            )));
        }
        Ok(Record {
            hash: sha256(&bytes),
            header,
            body_type,
            payload: payload_range,
            bytes,
        })
    }

    /// Decodes a record and verifies its signature under `signer`.
    pub fn decode(bytes: &[u8]) -> Result<Record, FederationError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(FederationError::Invalid(format!(
                "a record of {} bytes is larger than {MAX_RECORD_BYTES}",
                bytes.len()
            )));
        }
        let d = FederationError::decode("record");
        let mut r = Reader::new(bytes, RECORD_MAGIC).map_err(d)?;
        let header = RecordHeader {
            log: r.key("log").map_err(d)?,
            signer: r.key("signer").map_err(d)?,
            seq: r.u64("seq").map_err(d)?,
            prev: r.hash("prev").map_err(d)?,
            time: r.time("time").map_err(d)?,
        };
        let body_type = r.u16("body_type").map_err(d)?;
        let payload_len = r.u32("body").map_err(d)? as usize;
        let start = r.position();
        r.take(payload_len, "body").map_err(d)?;
        let signed_len = r.position();
        let signature = r.sig("signature").map_err(d)?;
        r.finish("record").map_err(d)?;
        if header.seq == 0 {
            return Err(FederationError::Invalid(
                "record sequence numbers start at 1".into(),
            ));
        }
        verify_ed25519(&header.signer.0, &bytes[..signed_len], &signature).map_err(|_| {
            FederationError::BadSignature {
                what: format!("record {} of {}", header.seq, header.log.short()),
            }
        })?;
        Ok(Record {
            header,
            body_type,
            payload: start..start + payload_len,
            bytes: bytes.to_vec(),
            hash: sha256(bytes),
        })
    }

    /// The canonical bytes, signature included.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The record without its bytes: what a caller keeps when it needs
    /// the bytes elsewhere.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// SHA-256 of [`Record::bytes`]; the next record's `prev`.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// The body payload.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[self.payload.clone()]
    }

    /// A digest of what the record says, independent of where it sits in
    /// the log: SHA-256 of the body type and payload. Publishers compare it
    /// to skip records that would repeat the last one for the same thing.
    pub fn body_digest(body_type: u16, payload: &[u8]) -> Hash {
        super::types::sha256_parts(&[&body_type.to_be_bytes(), payload])
    }

    /// The log of the record a relay carries, read without verifying
    /// anything: only to know which author's state to load before the
    /// relay is decoded and checked for real.
    pub fn peek_relayed_log(&self) -> Option<Key> {
        if self.body_type != body_type::RELAY {
            return None;
        }
        let p = self.payload();
        let start = 4 + RECORD_MAGIC.len();
        if p.get(4..start)? != RECORD_MAGIC {
            return None;
        }
        Some(Key(p.get(start..start + 32)?.try_into().ok()?))
    }

    /// Decodes the body.
    pub fn body(&self) -> Result<Body, Rejection> {
        Body::decode(self.body_type, self.payload(), &self.header.log)
    }
}

/// A certificate as an entry upsert carries it: the DER, and the
/// intermediates that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateMaterial {
    /// The end-entity certificate.
    pub der: Vec<u8>,
    /// Intermediates, leaf-most first.
    pub chain: Vec<Vec<u8>>,
}

/// An entry as its author publishes it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryPublication {
    /// The entry; `origin` is the author's log, `visibility` is public.
    pub entry: Entry,
    /// Its certificates, so that every receiver can check binding and trust.
    pub certificates: Vec<CertificateMaterial>,
}

impl EntryPublication {
    /// What publishing `record` carries. Trust verdicts stay home: each
    /// receiver judges the certificates against its own anchors.
    pub fn from_record(record: &EntryRecord) -> EntryPublication {
        EntryPublication {
            entry: record.entry.clone(),
            certificates: record
                .certificates
                .iter()
                .map(|c| CertificateMaterial {
                    der: c.certificate.der.clone(),
                    chain: c.chain.clone(),
                })
                .collect(),
        }
    }
}

/// What a record says.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Create or replace an entry.
    EntryUpsert(Box<EntryPublication>),
    /// Remove the entry at this address.
    EntryRemoval(DirectoryAddress),
    /// Create or replace an organisation.
    OrganisationUpsert(Box<Organisation>),
    /// Remove an organisation.
    OrganisationRemoval(OrgId),
    /// The grants that authorise the author, root first.
    Delegation(Vec<SignedGrant>),
    /// From the next record on, the log is signed by this key.
    KeyRotation(Key),
    /// Another node's record, verbatim (never itself a relay).
    Relay(Box<Record>),
    /// A signed policy event, verbatim: `policy::SignedEvent` decodes it.
    PolicyEvent(Vec<u8>),
}

fn invalid(detail: impl Into<String>) -> Rejection {
    Rejection::new(RejectCode::InvalidRecord, detail)
}

fn field<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, Rejection>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| invalid(format!("{name}: {e}")))
}

fn opt(v: Option<&str>) -> Option<String> {
    v.map(str::to_owned)
}

impl Body {
    /// The payload of a [`Body::Relay`] of the record whose encoding is
    /// `raw`: what [`Body::encode`] gives for it, straight from the bytes
    /// a parent keeps (no record to decode again).
    pub fn relay_payload(raw: &[u8]) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(raw);
        w.into_bytes()
    }

    /// The body type and canonical payload.
    pub fn encode(&self) -> (u16, Vec<u8>) {
        let mut w = Writer::default();
        let t = match self {
            Body::EntryUpsert(p) => {
                encode_entry(&mut w, p);
                body_type::ENTRY_UPSERT
            }
            Body::EntryRemoval(a) => {
                w.str(&a.to_string());
                body_type::ENTRY_REMOVAL
            }
            Body::OrganisationUpsert(o) => {
                w.str(o.id.as_str()).str(&o.name);
                w.list(&o.domains, |w, d| {
                    w.str(d.as_str());
                });
                w.opt_str(o.description.as_deref())
                    .opt_str(o.locality.as_deref())
                    .opt_str(o.region.as_deref())
                    .opt_str(o.country.as_deref())
                    .time(o.updated_at);
                body_type::ORGANISATION_UPSERT
            }
            Body::OrganisationRemoval(id) => {
                w.str(id.as_str());
                body_type::ORGANISATION_REMOVAL
            }
            Body::Delegation(grants) => {
                w.list(grants, |w, g| {
                    w.bytes(g.bytes());
                });
                body_type::DELEGATION
            }
            Body::KeyRotation(k) => {
                w.key(k);
                body_type::KEY_ROTATION
            }
            Body::Relay(r) => {
                w.bytes(r.bytes());
                body_type::RELAY
            }
            Body::PolicyEvent(event) => {
                w.bytes(event);
                body_type::POLICY_EVENT
            }
        };
        (t, w.into_bytes())
    }

    /// Decodes a payload of `body_type` written by `author`. An unknown
    /// type is [`RejectCode::UnknownBody`]; a payload that does not decode,
    /// or decodes to something the directory does not allow, is
    /// [`RejectCode::InvalidRecord`] (or the signature code of a relayed
    /// record).
    pub fn decode(body_type: u16, payload: &[u8], author: &Key) -> Result<Body, Rejection> {
        let mut r = Reader::plain(payload);
        let d = |e: super::error::DecodeError| invalid(format!("body: {e}"));
        let body = match body_type {
            body_type::ENTRY_UPSERT => Body::EntryUpsert(Box::new(decode_entry(&mut r, author)?)),
            body_type::ENTRY_REMOVAL => {
                let text = r.str("address").map_err(d)?;
                let address: DirectoryAddress = field("address", text)?;
                if address.to_string() != text {
                    return Err(invalid("address is not in canonical form"));
                }
                Body::EntryRemoval(address)
            }
            body_type::ORGANISATION_UPSERT => {
                let id: OrgId = field("organisation id", r.str("id").map_err(d)?)?;
                let name = r.str("name").map_err(d)?.to_owned();
                let n = r.count("domains", 5).map_err(d)?;
                let mut domains = Vec::with_capacity(n);
                for _ in 0..n {
                    let text = r.str("domain").map_err(d)?;
                    let domain: DomainName = field("domain", text)?;
                    domains.push(domain);
                }
                let org = Organisation {
                    id,
                    name,
                    domains,
                    description: opt(r.opt_str("description").map_err(d)?),
                    locality: opt(r.opt_str("locality").map_err(d)?),
                    region: opt(r.opt_str("region").map_err(d)?),
                    country: opt(r.opt_str("country").map_err(d)?),
                    origin: author.node_id(),
                    updated_at: r.time("updated_at").map_err(d)?,
                };
                org.validate()
                    .map_err(|e| invalid(format!("organisation: {e}")))?;
                Body::OrganisationUpsert(Box::new(org))
            }
            body_type::ORGANISATION_REMOVAL => {
                Body::OrganisationRemoval(field("organisation id", r.str("id").map_err(d)?)?)
            }
            body_type::DELEGATION => {
                let n = r.count("grants", 4).map_err(d)?;
                let mut grants = Vec::with_capacity(n);
                for _ in 0..n {
                    let bytes = r.bytes("grant").map_err(d)?;
                    grants.push(
                        SignedGrant::decode(bytes)
                            .map_err(|e| invalid(format!("delegation: {e}")))?,
                    );
                }
                if grants.is_empty() {
                    return Err(invalid("a delegation record carries at least one grant"));
                }
                Body::Delegation(grants)
            }
            body_type::KEY_ROTATION => Body::KeyRotation(r.key("new_key").map_err(d)?),
            body_type::RELAY => {
                let bytes = r.bytes("record").map_err(d)?;
                let inner = Record::decode(bytes).map_err(|e| match e {
                    FederationError::BadSignature { what } => Rejection::new(
                        RejectCode::BadSignature,
                        format!("relayed {what} does not verify"),
                    ),
                    other => invalid(format!("relayed record: {other}")),
                })?;
                if inner.body_type == body_type::RELAY {
                    return Err(invalid("a relay may not carry a relay"));
                }
                Body::Relay(Box::new(inner))
            }
            body_type::POLICY_EVENT => Body::PolicyEvent(r.bytes("event").map_err(d)?.to_vec()),
            other => {
                return Err(Rejection::new(
                    RejectCode::UnknownBody,
                    format!("body type {other} is not known to this node"),
                ));
            }
        };
        r.finish("body").map_err(d)?;
        Ok(body)
    }

    /// A short name for status and logs.
    pub fn name(body_type: u16) -> &'static str {
        match body_type {
            body_type::ENTRY_UPSERT => "entry-upsert",
            body_type::ENTRY_REMOVAL => "entry-removal",
            body_type::ORGANISATION_UPSERT => "organisation-upsert",
            body_type::ORGANISATION_REMOVAL => "organisation-removal",
            body_type::DELEGATION => "delegation",
            body_type::KEY_ROTATION => "key-rotation",
            body_type::RELAY => "relay",
            body_type::POLICY_EVENT => "policy-event",
            _ => "unknown",
        }
    }
}

fn encode_entry(w: &mut Writer, p: &EntryPublication) {
    let e = &p.entry;
    w.str(&e.address.to_string())
        .str(e.kind.as_str())
        .str(&e.display_name)
        .opt_str(e.given_name.as_deref())
        .opt_str(e.surname.as_deref())
        .opt_str(e.organisation.as_ref().map(OrgId::as_str))
        .opt_str(e.unit.as_deref())
        .opt_str(e.title.as_deref())
        .opt_str(e.profession.as_deref())
        .opt_str(e.specialty.as_deref());
    w.list(&e.identifiers, |w, i| {
        w.str(&i.scheme).str(&i.value);
    });
    w.opt_str(e.locality.as_deref())
        .opt_str(e.region.as_deref())
        .opt_str(e.country.as_deref())
        .opt_str(e.postal_code.as_deref())
        .opt_str(e.phone.as_deref())
        .u64(e.version)
        .time(e.updated_at);
    w.list(&p.certificates, |w, c| {
        w.bytes(&c.der);
        w.list(&c.chain, |w, der| {
            w.bytes(der);
        });
    });
}

fn decode_entry(r: &mut Reader<'_>, author: &Key) -> Result<EntryPublication, Rejection> {
    let d = |e: super::error::DecodeError| invalid(format!("entry: {e}"));
    let address_text = r.str("address").map_err(d)?;
    let address: DirectoryAddress = field("address", address_text)?;
    if address.to_string() != address_text {
        return Err(invalid("address is not in canonical form"));
    }
    let kind_text = r.str("kind").map_err(d)?;
    let kind: EntryKind = field("kind", kind_text)?;
    if kind.as_str() != kind_text {
        return Err(invalid("kind is not in canonical form"));
    }
    let display_name = r.str("display_name").map_err(d)?.to_owned();
    let given_name = opt(r.opt_str("given_name").map_err(d)?);
    let surname = opt(r.opt_str("surname").map_err(d)?);
    let organisation = r
        .opt_str("organisation")
        .map_err(d)?
        .map(|s| field::<OrgId>("organisation", s))
        .transpose()?;
    let unit = opt(r.opt_str("unit").map_err(d)?);
    let title = opt(r.opt_str("title").map_err(d)?);
    let profession = opt(r.opt_str("profession").map_err(d)?);
    let specialty = opt(r.opt_str("specialty").map_err(d)?);
    let n = r.count("identifiers", 8).map_err(d)?;
    let mut identifiers = Vec::with_capacity(n);
    for _ in 0..n {
        identifiers.push(Identifier {
            scheme: r.str("scheme").map_err(d)?.to_owned(),
            value: r.str("value").map_err(d)?.to_owned(),
        });
    }
    let entry = Entry {
        address,
        kind,
        display_name,
        given_name,
        surname,
        organisation,
        unit,
        title,
        profession,
        specialty,
        identifiers,
        locality: opt(r.opt_str("locality").map_err(d)?),
        region: opt(r.opt_str("region").map_err(d)?),
        country: opt(r.opt_str("country").map_err(d)?),
        postal_code: opt(r.opt_str("postal_code").map_err(d)?),
        phone: opt(r.opt_str("phone").map_err(d)?),
        visibility: Visibility::Public,
        origin: author.node_id(),
        version: r.u64("version").map_err(d)?,
        updated_at: r.time("updated_at").map_err(d)?,
    };
    entry
        .validate()
        .map_err(|e| invalid(format!("entry: {e}")))?;
    let n = r.count("certificates", 8).map_err(d)?;
    let mut certificates = Vec::with_capacity(n);
    for _ in 0..n {
        let der = r.bytes("certificate").map_err(d)?.to_vec();
        let m = r.count("chain", 4).map_err(d)?;
        let mut chain = Vec::with_capacity(m);
        for _ in 0..m {
            chain.push(r.bytes("chain certificate").map_err(d)?.to_vec());
        }
        certificates.push(CertificateMaterial { der, chain });
    }
    Ok(EntryPublication {
        entry,
        certificates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::testkit::{key, sample_entry, t};

    fn header(k: &NodeKey, seq: u64, prev: Hash) -> RecordHeader {
        RecordHeader {
            log: Key(k.public_key_bytes()),
            signer: Key(k.public_key_bytes()),
            seq,
            prev,
            time: t(seq as i64),
        }
    }

    #[test]
    fn record_layout_is_the_documented_one() {
        let k = key(1);
        let r = Record::sign(header(&k, 1, Hash::ZERO), 2, b"xyz", &k).unwrap();
        let b = r.bytes();
        let mut expect = RECORD_MAGIC.to_vec();
        expect.extend_from_slice(&k.public_key_bytes());
        expect.extend_from_slice(&k.public_key_bytes());
        expect.extend_from_slice(&1u64.to_be_bytes());
        expect.extend_from_slice(&[0; 32]);
        expect.extend_from_slice(&t(1).timestamp_micros().to_be_bytes());
        expect.extend_from_slice(&[0, 2, 0, 0, 0, 3]);
        expect.extend_from_slice(b"xyz");
        assert_eq!(&b[..expect.len()], expect.as_slice());
        assert_eq!(b.len(), expect.len() + 64);
        crate::pki::verify_ed25519(&k.public_key_bytes(), &expect, &b[expect.len()..]).unwrap();
        assert_eq!(r.hash(), sha256(b));
        assert_eq!(r.payload(), b"xyz");
        assert_eq!(Record::decode(b).unwrap(), r);
    }

    #[test]
    fn every_body_round_trips_canonically() {
        let k = key(1);
        let author = Key(k.public_key_bytes());
        let entry = sample_entry(&author, "alice@cardio.example.org");
        let org = Organisation {
            id: "cardio".parse().unwrap(),
            name: "Cardio".into(),
            domains: vec!["cardio.example.org".parse().unwrap()],
            description: Some("heart".into()),
            locality: None,
            region: Some("MA".into()),
            country: Some("US".into()),
            origin: author.node_id(),
            updated_at: t(5),
        };
        let grant = crate::federation::grant::Grant::new(
            Key(key(9).public_key_bytes()),
            author,
            vec!["example.org".parse().unwrap()],
            t(0),
            t(100),
        )
        .unwrap()
        .sign(&key(9))
        .unwrap();
        let inner = Record::sign(
            header(&key(3), 4, Hash([7; 32])),
            2,
            b"\0\0\0\x0bx@cardio.io",
            &key(3),
        )
        .unwrap();
        let bodies = vec![
            Body::EntryUpsert(Box::new(EntryPublication {
                entry,
                certificates: vec![CertificateMaterial {
                    der: vec![1, 2, 3],
                    chain: vec![vec![4], vec![5, 6]],
                }],
            })),
            Body::EntryRemoval("bob@cardio.example.org".parse().unwrap()),
            Body::OrganisationUpsert(Box::new(org)),
            Body::OrganisationRemoval("cardio".parse().unwrap()),
            Body::Delegation(vec![grant]),
            Body::KeyRotation(Key([5; 32])),
            Body::Relay(Box::new(inner)),
            Body::PolicyEvent(b"ccdir/policy-event/v1 and the rest".to_vec()),
        ];
        for body in bodies {
            let (t, payload) = body.encode();
            let back = Body::decode(t, &payload, &author).unwrap();
            assert_eq!(back, body, "type {t}");
            assert_eq!(
                back.encode().1,
                payload,
                "type {t} re-encodes to the same bytes"
            );
            // Any truncation is refused, never a panic.
            for cut in 0..payload.len() {
                assert!(Body::decode(t, &payload[..cut], &author).is_err());
            }
            let mut long = payload.clone();
            long.push(0);
            assert!(Body::decode(t, &long, &author).is_err());
        }
    }

    #[test]
    fn tampering_and_bad_bodies_are_refused() {
        let k = key(1);
        let r = Record::sign(header(&k, 1, Hash::ZERO), 2, b"xyz", &k).unwrap();
        for i in [RECORD_MAGIC.len() + 70, r.bytes().len() - 1] {
            let mut b = r.bytes().to_vec();
            b[i] ^= 1;
            assert!(matches!(
                Record::decode(&b),
                Err(FederationError::BadSignature { .. })
            ));
        }
        for cut in 0..r.bytes().len() {
            assert!(Record::decode(&r.bytes()[..cut]).is_err());
        }
        // Signed by one key, claiming another.
        let mut h = header(&k, 1, Hash::ZERO);
        h.signer = Key(key(2).public_key_bytes());
        assert!(Record::sign(h, 2, b"", &k).is_err());
        let author = Key(k.public_key_bytes());
        let e = Body::decode(99, b"", &author).unwrap_err();
        assert_eq!(e.code, RejectCode::UnknownBody);
        let e = Body::decode(body_type::ENTRY_REMOVAL, b"\0\0\0\x03a@b", &author).unwrap_err();
        assert_eq!(e.code, RejectCode::InvalidRecord);
        // A relay's payload from the raw bytes is the relay body's encoding.
        assert_eq!(
            Body::relay_payload(r.bytes()),
            Body::Relay(Box::new(r.clone())).encode().1
        );
        // A relay of a relay.
        let relay = Record::sign(
            header(&k, 2, r.hash()),
            body_type::RELAY,
            &Body::relay_payload(r.bytes()),
            &k,
        )
        .unwrap();
        let payload = Body::relay_payload(relay.bytes());
        let e = Body::decode(body_type::RELAY, &payload, &author).unwrap_err();
        assert_eq!(e.code, RejectCode::InvalidRecord);
        // A relayed record with a forged signature.
        let mut forged = r.bytes().to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let payload = Body::relay_payload(&forged);
        let e = Body::decode(body_type::RELAY, &payload, &author).unwrap_err();
        assert_eq!(e.code, RejectCode::BadSignature);
    }
}
