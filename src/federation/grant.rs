//! Delegation: a parent's signed grant letting a child speak for domains,
//! chains of grants from the pinned root, and the coverage check every
//! record must pass.
//!
//! Encoding (see `docs/federation.md`):
//!
//! ```text
//! grant := "ccdir/grant/v1" issuer:key subject:key domains:list<str>
//!          issued_at:time expires_at:time sig:sig
//! ```
//!
//! `domains` are lower-case host names without a trailing dot, sorted by
//! their octets, without repeats, at least one. `sig` is the issuer's
//! Ed25519 signature over every preceding octet, magic included.

use std::collections::{HashMap, HashSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::encoding::{Reader, Writer};
use super::error::{FederationError, RejectCode, Rejection};
use super::types::{Hash, Key, sha256};
use crate::domain::DomainName;
use crate::pki::{NodeKey, verify_ed25519};

/// The magic that starts a grant.
pub const GRANT_MAGIC: &[u8] = b"ccdir/grant/v1";
/// Most domains one grant may name.
pub const MAX_GRANT_DOMAINS: usize = 256;
/// Longest chain of grants from the root that is followed.
pub const MAX_CHAIN_LEN: usize = 8;

/// What a parent grants a child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The parent's key; the root's for the first link of a chain.
    pub issuer: Key,
    /// The child's key.
    pub subject: Key,
    /// Domains the child may publish for (and everything below them).
    pub domains: Vec<DomainName>,
    /// When it was made.
    pub issued_at: DateTime<Utc>,
    /// When it stops counting.
    pub expires_at: DateTime<Utc>,
}

impl Grant {
    /// A grant, its domains put in canonical order and its times truncated
    /// to microseconds (what the encoding keeps).
    pub fn new(
        issuer: Key,
        subject: Key,
        mut domains: Vec<DomainName>,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Grant, FederationError> {
        domains.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        domains.dedup();
        let grant = Grant {
            issuer,
            subject,
            domains,
            issued_at: issued_at.trunc_subsecs(6),
            expires_at: expires_at.trunc_subsecs(6),
        };
        grant.check()?;
        Ok(grant)
    }

    fn check(&self) -> Result<(), FederationError> {
        if self.domains.is_empty() || self.domains.len() > MAX_GRANT_DOMAINS {
            return Err(FederationError::Invalid(format!(
                "a grant names 1 to {MAX_GRANT_DOMAINS} domains"
            )));
        }
        if self.expires_at <= self.issued_at {
            return Err(FederationError::Invalid(
                "a grant must expire after it is issued".into(),
            ));
        }
        if self.issuer == self.subject {
            return Err(FederationError::Invalid(
                "a node cannot delegate to itself".into(),
            ));
        }
        Ok(())
    }

    fn signed_part(&self) -> Writer {
        let mut w = Writer::new(GRANT_MAGIC);
        w.key(&self.issuer).key(&self.subject);
        w.list(&self.domains, |w, d| {
            w.str(d.as_str());
        });
        w.time(self.issued_at).time(self.expires_at);
        w
    }

    /// Signs the grant with the issuer's key.
    pub fn sign(self, key: &NodeKey) -> Result<SignedGrant, FederationError> {
        if Key(key.public_key_bytes()) != self.issuer {
            return Err(FederationError::Invalid(
                "a grant is signed by its issuer".into(),
            ));
        }
        let mut w = self.signed_part();
        let signature = key.sign(w.as_bytes());
        w.raw(&signature);
        let bytes = w.into_bytes();
        Ok(SignedGrant {
            hash: sha256(&bytes),
            grant: self,
            signature,
            bytes,
        })
    }

    /// Does the grant cover `domain` (equal to, or below, one of its domains)?
    pub fn covers(&self, domain: &DomainName) -> bool {
        self.domains.iter().any(|d| domain.is_within(d))
    }

    /// Is it in force at `now`?
    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }

    /// The domains, comma-separated, for messages.
    pub fn domain_list(&self) -> String {
        self.domains
            .iter()
            .map(DomainName::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A grant with a signature that verified. Only [`Grant::sign`] and
/// [`SignedGrant::decode`] make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedGrant {
    /// What it grants.
    pub grant: Grant,
    signature: [u8; 64],
    bytes: Vec<u8>,
    hash: Hash,
}

impl SignedGrant {
    /// Decodes and verifies a grant.
    pub fn decode(bytes: &[u8]) -> Result<SignedGrant, FederationError> {
        let d = FederationError::decode("grant");
        let mut r = Reader::new(bytes, GRANT_MAGIC).map_err(d)?;
        let issuer = r.key("issuer").map_err(d)?;
        let subject = r.key("subject").map_err(d)?;
        let n = r.count("domains", 5).map_err(d)?;
        let mut domains = Vec::with_capacity(n);
        for _ in 0..n {
            let at = r.position();
            let text = r.str("domain").map_err(d)?;
            let domain: DomainName = text.parse().map_err(|_| FederationError::Decode {
                object: "grant",
                source: super::error::DecodeError::new(at, "domain", "not a host name"),
            })?;
            if domain.as_str() != text {
                return Err(FederationError::Invalid(format!(
                    "grant domain {text:?} is not in canonical (lower-case, no dot) form"
                )));
            }
            if let Some(prev) = domains.last()
                && DomainName::as_str(prev) >= domain.as_str()
            {
                return Err(FederationError::Invalid(
                    "grant domains must be sorted and distinct".into(),
                ));
            }
            domains.push(domain);
        }
        let issued_at = r.time("issued_at").map_err(d)?;
        let expires_at = r.time("expires_at").map_err(d)?;
        let signed_len = r.position();
        let signature = r.sig("signature").map_err(d)?;
        r.finish("grant").map_err(d)?;
        let grant = Grant {
            issuer,
            subject,
            domains,
            issued_at,
            expires_at,
        };
        grant.check()?;
        verify_ed25519(&issuer.0, &bytes[..signed_len], &signature).map_err(|_| {
            FederationError::BadSignature {
                what: format!("grant {}→{}", issuer.short(), subject.short()),
            }
        })?;
        Ok(SignedGrant {
            grant,
            signature,
            bytes: bytes.to_vec(),
            hash: sha256(bytes),
        })
    }

    /// The canonical bytes, signature included.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// SHA-256 of [`SignedGrant::bytes`]: the grant's identity.
    pub fn hash(&self) -> Hash {
        self.hash
    }
}

/// Checks that `chain` leads from `root` to `subject`: each link issued by
/// the previous link's subject, each naming only domains its issuer holds,
/// none expired at `now`.
pub fn validate_chain(
    root: &Key,
    chain: &[SignedGrant],
    subject: &Key,
    now: DateTime<Utc>,
) -> Result<(), FederationError> {
    let bad = |s: String| Err(FederationError::Invalid(s));
    if chain.is_empty() {
        return bad("an empty delegation chain".into());
    }
    if chain.len() > MAX_CHAIN_LEN {
        return bad(format!(
            "a delegation chain has at most {MAX_CHAIN_LEN} links"
        ));
    }
    let mut holder = *root;
    let mut held: Option<&Grant> = None;
    for link in chain {
        let g = &link.grant;
        if g.issuer != holder {
            return bad(format!(
                "link {}→{} is not issued by {}",
                g.issuer.short(),
                g.subject.short(),
                holder.short()
            ));
        }
        if let Some(parent) = held
            && let Some(d) = g.domains.iter().find(|d| !parent.covers(d))
        {
            return bad(format!(
                "{} delegates {d}, which it does not hold",
                g.issuer.short()
            ));
        }
        if !g.valid_at(now) {
            return bad(format!(
                "the delegation {}→{} expired at {}",
                g.issuer.short(),
                g.subject.short(),
                g.expires_at.to_rfc3339()
            ));
        }
        holder = g.subject;
        held = Some(g);
    }
    if holder != *subject {
        return bad(format!(
            "the chain ends at {}, not at {}",
            holder.short(),
            subject.short()
        ));
    }
    Ok(())
}

/// Every grant a node knows, indexed for the coverage check.
#[derive(Debug, Clone)]
pub struct GrantBook {
    root: Key,
    by_subject: HashMap<Key, Vec<SignedGrant>>,
    known: HashSet<Hash>,
}

impl GrantBook {
    /// An empty book trusting `root`.
    pub fn new(root: Key) -> GrantBook {
        GrantBook {
            root,
            by_subject: HashMap::new(),
            known: HashSet::new(),
        }
    }

    /// The pinned root.
    pub fn root(&self) -> &Key {
        &self.root
    }

    /// Adds a grant; false if it was already known.
    pub fn add(&mut self, grant: SignedGrant) -> bool {
        if !self.known.insert(grant.hash()) {
            return false;
        }
        self.by_subject
            .entry(grant.grant.subject)
            .or_default()
            .push(grant);
        true
    }

    /// Has this grant been added?
    pub fn contains(&self, hash: &Hash) -> bool {
        self.known.contains(hash)
    }

    fn search(
        &self,
        target: &Key,
        domain: &DomainName,
        now: Option<DateTime<Utc>>,
        visited: &mut Vec<Key>,
    ) -> Option<Vec<&SignedGrant>> {
        if *target == self.root {
            return Some(Vec::new());
        }
        if visited.len() >= MAX_CHAIN_LEN || visited.contains(target) {
            return None;
        }
        visited.push(*target);
        let found = self.by_subject.get(target).and_then(|grants| {
            grants
                .iter()
                .filter(|g| g.grant.covers(domain))
                .filter(|g| now.is_none_or(|t| g.grant.valid_at(t)))
                .find_map(|g| {
                    let mut chain = self.search(&g.grant.issuer, domain, now, visited)?;
                    chain.push(g);
                    Some(chain)
                })
        });
        visited.pop();
        found
    }

    /// The chain (root first) that lets one of `keys` — an author's key
    /// and the keys it rotated from — publish for `domain` at `now`; empty
    /// when a key is the root itself. Otherwise why not:
    /// [`RejectCode::DelegationExpired`] when only expired chains cover
    /// it, [`RejectCode::OutOfDelegation`] when none do.
    pub fn authorise(
        &self,
        keys: &[Key],
        domain: &DomainName,
        now: DateTime<Utc>,
    ) -> Result<Vec<&SignedGrant>, Rejection> {
        for key in keys {
            if let Some(chain) = self.search(key, domain, Some(now), &mut Vec::new()) {
                return Ok(chain);
            }
        }
        for key in keys {
            if let Some(chain) = self.search(key, domain, None, &mut Vec::new())
                && let Some(expired) = chain.iter().find(|g| !g.grant.valid_at(now))
            {
                let g = &expired.grant;
                return Err(Rejection::new(
                    RejectCode::DelegationExpired,
                    format!(
                        "the delegation {}→{} for {} expired at {}",
                        g.issuer.short(),
                        g.subject.short(),
                        g.domain_list(),
                        g.expires_at.to_rfc3339()
                    ),
                ));
            }
        }
        let author = keys.first().map_or_else(String::new, Key::short);
        Err(Rejection::new(
            RejectCode::OutOfDelegation,
            format!(
                "no delegation from the root {} covers {domain} for {author}",
                self.root.short()
            ),
        ))
    }
}

/// The file `ccdir delegate` writes and `ccdir federation install` reads:
/// a chain of grants from the root to the child. Only `grant` (base64 of
/// the canonical bytes) counts; the other fields are there for people.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DelegationFile {
    /// `ccdir-delegation/v1`.
    pub format: String,
    /// The grants, root first.
    pub chain: Vec<DelegationLink>,
}

/// One grant of a [`DelegationFile`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DelegationLink {
    /// Issuer key (hex), for people.
    #[serde(default)]
    pub issuer: String,
    /// Subject key (hex), for people.
    #[serde(default)]
    pub subject: String,
    /// Domains, for people.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Expiry, for people.
    #[serde(default)]
    pub expires_at: String,
    /// Base64 of the canonical grant: the only field that counts.
    pub grant: String,
}

/// The format name of a [`DelegationFile`].
pub const DELEGATION_FORMAT: &str = "ccdir-delegation/v1";

impl DelegationFile {
    /// The file for `chain`.
    pub fn new(chain: &[SignedGrant]) -> DelegationFile {
        DelegationFile {
            format: DELEGATION_FORMAT.into(),
            chain: chain
                .iter()
                .map(|g| DelegationLink {
                    issuer: g.grant.issuer.to_hex(),
                    subject: g.grant.subject.to_hex(),
                    domains: g.grant.domains.iter().map(|d| d.to_string()).collect(),
                    expires_at: g.grant.expires_at.to_rfc3339(),
                    grant: STANDARD.encode(g.bytes()),
                })
                .collect(),
        }
    }

    /// The verified grants it holds.
    pub fn grants(&self) -> Result<Vec<SignedGrant>, FederationError> {
        if self.format != DELEGATION_FORMAT {
            return Err(FederationError::Invalid(format!(
                "not a delegation file (format {:?}, expected {DELEGATION_FORMAT})",
                self.format
            )));
        }
        self.chain
            .iter()
            .map(|l| {
                let bytes = STANDARD
                    .decode(l.grant.trim())
                    .map_err(|_| FederationError::Invalid("a grant is not base64".into()))?;
                SignedGrant::decode(&bytes)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::testkit::{key, t};

    fn d(s: &str) -> DomainName {
        s.parse().unwrap()
    }

    fn grant(issuer: &NodeKey, subject: &NodeKey, domains: &[&str], days: i64) -> SignedGrant {
        Grant::new(
            Key(issuer.public_key_bytes()),
            Key(subject.public_key_bytes()),
            domains.iter().map(|s| d(s)).collect(),
            t(0),
            t(days * 86_400),
        )
        .unwrap()
        .sign(issuer)
        .unwrap()
    }

    #[test]
    fn encoding_is_canonical_and_documented() {
        let root = key(1);
        let child = key(2);
        let g = Grant::new(
            Key(root.public_key_bytes()),
            Key(child.public_key_bytes()),
            vec![d("b.org"), d("A.org"), d("b.org")],
            t(0),
            t(60),
        )
        .unwrap();
        assert_eq!(g.domains, vec![d("a.org"), d("b.org")]);
        let s = g.sign(&root).unwrap();
        let b = s.bytes();
        assert!(b.starts_with(GRANT_MAGIC));
        let mut expect = GRANT_MAGIC.to_vec();
        expect.extend_from_slice(&root.public_key_bytes());
        expect.extend_from_slice(&child.public_key_bytes());
        expect.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 5]);
        expect.extend_from_slice(b"a.org");
        expect.extend_from_slice(&[0, 0, 0, 5]);
        expect.extend_from_slice(b"b.org");
        expect.extend_from_slice(&t(0).timestamp_micros().to_be_bytes());
        expect.extend_from_slice(&t(60).timestamp_micros().to_be_bytes());
        assert_eq!(&b[..expect.len()], expect.as_slice());
        assert_eq!(b.len(), expect.len() + 64);
        let back = SignedGrant::decode(b).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn forged_or_malformed_grants_are_refused() {
        let s = grant(&key(1), &key(2), &["example.org"], 30);
        let mut bytes = s.bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(
            SignedGrant::decode(&bytes),
            Err(FederationError::BadSignature { .. })
        ));
        // A domain byte changed: the signature no longer covers it.
        let mut bytes = s.bytes().to_vec();
        let at = GRANT_MAGIC.len() + 64 + 8;
        bytes[at] = b'f';
        assert!(SignedGrant::decode(&bytes).is_err());
        for cut in 0..s.bytes().len() {
            assert!(SignedGrant::decode(&s.bytes()[..cut]).is_err());
        }
        assert!(Grant::new(Key([1; 32]), Key([2; 32]), vec![], t(0), t(1)).is_err());
        assert!(Grant::new(Key([1; 32]), Key([2; 32]), vec![d("a.org")], t(1), t(1)).is_err());
        // Signing with another key than the issuer's.
        let g = Grant::new(
            Key(key(1).public_key_bytes()),
            Key([2; 32]),
            vec![d("a.org")],
            t(0),
            t(9),
        )
        .unwrap();
        assert!(g.sign(&key(3)).is_err());
    }

    #[test]
    fn chains_cover_subdomains_and_stop_at_expiry() {
        let (root, inter, org) = (key(1), key(2), key(3));
        let rk = Key(root.public_key_bytes());
        let ok = Key(org.public_key_bytes());
        let g1 = grant(&root, &inter, &["example.org"], 30);
        let g2 = grant(&inter, &org, &["cardio.example.org"], 10);
        let mut book = GrantBook::new(rk);
        assert!(book.add(g1.clone()));
        assert!(!book.add(g1.clone()));
        book.add(g2.clone());

        let chain = book
            .authorise(&[ok], &d("cardio.example.org"), t(86_400))
            .unwrap();
        assert_eq!(chain, vec![&g1, &g2]);
        book.authorise(&[ok], &d("ward.cardio.example.org"), t(86_400))
            .unwrap();
        let e = book
            .authorise(&[ok], &d("neuro.example.org"), t(86_400))
            .unwrap_err();
        assert_eq!(e.code, RejectCode::OutOfDelegation);
        let e = book
            .authorise(&[ok], &d("badexample.org"), t(86_400))
            .unwrap_err();
        assert_eq!(e.code, RejectCode::OutOfDelegation);
        let e = book
            .authorise(&[ok], &d("cardio.example.org"), t(11 * 86_400))
            .unwrap_err();
        assert_eq!(e.code, RejectCode::DelegationExpired);
        assert!(e.detail.contains("cardio.example.org"), "{e}");
        // The root needs no chain.
        assert!(
            book.authorise(&[rk], &d("any.org"), t(0))
                .unwrap()
                .is_empty()
        );
        // A grant from someone the root never delegated to does not count.
        let rogue = grant(&key(9), &org, &["evil.org"], 30);
        book.add(rogue);
        let e = book.authorise(&[ok], &d("evil.org"), t(0)).unwrap_err();
        assert_eq!(e.code, RejectCode::OutOfDelegation);
        // The inter may not widen what it holds: its grant for other.org
        // to org exists, but the chain does not cover it at the root link.
        book.add(grant(&inter, &org, &["other.org"], 30));
        let e = book.authorise(&[ok], &d("other.org"), t(0)).unwrap_err();
        assert_eq!(e.code, RejectCode::OutOfDelegation);
    }

    #[test]
    fn chain_validation_for_install() {
        let (root, inter, org) = (key(1), key(2), key(3));
        let rk = Key(root.public_key_bytes());
        let ok = Key(org.public_key_bytes());
        let g1 = grant(&root, &inter, &["example.org"], 30);
        let g2 = grant(&inter, &org, &["cardio.example.org"], 10);
        validate_chain(&rk, &[g1.clone(), g2.clone()], &ok, t(0)).unwrap();
        assert!(validate_chain(&rk, std::slice::from_ref(&g2), &ok, t(0)).is_err());
        assert!(validate_chain(&rk, &[g1.clone(), g2.clone()], &ok, t(20 * 86_400)).is_err());
        assert!(validate_chain(&rk, std::slice::from_ref(&g1), &ok, t(0)).is_err());
        let wide = grant(&inter, &org, &["other.org"], 10);
        assert!(validate_chain(&rk, &[g1.clone(), wide], &ok, t(0)).is_err());

        let file = DelegationFile::new(&[g1.clone(), g2.clone()]);
        let text = serde_json::to_string(&file).unwrap();
        let back: DelegationFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back.grants().unwrap(), vec![g1, g2]);
    }
}
