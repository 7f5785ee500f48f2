//! Path validation against the node's trust anchors.
//!
//! A [`TrustStore`] holds anchor certificates with their public keys decoded
//! once. [`TrustStore::evaluate`] builds a path from a leaf through supplied
//! intermediates to an anchor by issuer/subject name (AKI/SKI order the
//! candidates when several share a name), backtracking over candidates, and
//! checks on every hop: the issuer is a CA (basicConstraints cA), it may sign
//! certificates (keyCertSign when keyUsage is present), its pathLenConstraint
//! allows the intermediates below it, and its signature over
//! the child's *original* tbsCertificate bytes verifies. Depth is limited to
//! [`MAX_PATH_LEN`] certificates and no certificate appears twice.
//!
//! Anchors are trusted as configured: an anchor without any basicConstraints
//! (a v1 root) may sign, as OpenSSL allows; one that says cA=false may not.
//!
//! Dates come after the path: a leaf outside its window is `NotYetValid` or
//! `Expired`, an issuer on the path past its notAfter makes the verdict
//! `Expired`. A leaf that is itself an anchor is trusted (within its dates).
//!
//! Not checked here: revocation, name constraints, policy constraints, EKU.
//!
//! Speed: bulk import evaluates the same few intermediates over and over, so
//! decoded intermediate keys and verified intermediate→issuer edges are cached
//! (bounded; found by fingerprint, used only when the certificate and key
//! bytes are the very ones verified). Leaf signatures are always verified.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use super::verify::{VerifyKey, decode_spki, verify_signature};
use super::view::CertView;
use crate::domain::{Certificate, Fingerprint, KeyUsage, TrustStatus, TrustVerdict};

/// Longest path we build, leaf and anchor included.
pub const MAX_PATH_LEN: usize = 8;

/// Entries each cache may hold before it is emptied and refilled.
const CACHE_LIMIT: usize = 4096;

/// What path building needs of an anchor beyond its certificate.
struct AnchorMeta {
    key: Result<Arc<VerifyKey>, String>,
    /// SubjectPublicKeyInfo DER (empty when the certificate cannot be decoded).
    spki: Vec<u8>,
    ski: Option<Vec<u8>>,
    path_len: Option<u64>,
    /// No basicConstraints at all (a v1 root): trusted to sign, as OpenSSL
    /// does, because an anchor is trusted as configured, not by its extensions.
    legacy: bool,
}

/// Work remembered between evaluations. Entries are found by fingerprint but
/// only used when the bytes match too: a `Certificate` is plain data a caller
/// could assemble with a fingerprint that is not its DER's.
#[derive(Default)]
struct Caches {
    /// Decoded public keys of intermediates: fingerprint → (SPKI DER, key).
    keys: HashMap<Fingerprint, (Vec<u8>, Arc<VerifyKey>)>,
    /// CA certificates whose issuer's signature verified:
    /// (child, issuer) fingerprints → (child DER, issuer SPKI DER).
    edges: HashMap<(Fingerprint, Fingerprint), (Vec<u8>, Vec<u8>)>,
}

/// The node's trust anchors, ready to evaluate certificates against.
pub struct TrustStore {
    anchors: Vec<Certificate>,
    /// Parallel to `anchors`.
    meta: Vec<AnchorMeta>,
    /// Lower-cased RFC 4514 subject → anchor indices.
    by_subject: HashMap<String, Vec<usize>>,
    by_fingerprint: HashMap<Fingerprint, usize>,
    caches: RwLock<Caches>,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field(
                "anchors",
                &self.anchors.iter().map(|a| &a.subject).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// One certificate taking part in path building.
struct Node<'a> {
    cert: &'a Certificate,
    view: CertView<'a>,
}

/// Where a path ended.
enum Hop {
    Intermediate(usize),
    Anchor(usize),
}

/// Why a path could not be built, with how far it got (deeper is more telling).
struct Failure {
    depth: usize,
    reason: String,
}

fn name_key(name: &str) -> String {
    name.to_lowercase()
}

fn can_sign_certs(cert: &Certificate) -> Result<(), String> {
    if !cert.is_ca {
        return Err(format!("{} is not a CA", cert.subject));
    }
    // Our KeyUsage list is empty exactly when the extension is absent or
    // asserts nothing; an extension asserting nothing cannot sign either way.
    if !cert.key_usage.is_empty() && !cert.key_usage.contains(&KeyUsage::KeyCertSign) {
        return Err(format!(
            "{} is a CA but its keyUsage lacks keyCertSign",
            cert.subject
        ));
    }
    Ok(())
}

/// RFC 5280 §4.2.1.9: a CA with pathLenConstraint n may have at most n
/// intermediate CAs below it. Below an issuer of the certificate at `depth`
/// (the leaf is 1) there are `depth - 1` intermediates.
fn path_len_ok(issuer: &Certificate, path_len: Option<u64>, depth: usize) -> Result<(), String> {
    let below = depth.saturating_sub(1) as u64;
    match path_len {
        Some(n) if below > n => Err(format!(
            "{} allows at most {n} intermediate CA(s) below it, the path has {below}",
            issuer.subject
        )),
        _ => Ok(()),
    }
}

/// Order candidates: AKI = SKI first, unknown next, mismatching last.
fn aki_rank(child_aki: Option<&[u8]>, parent_ski: Option<&[u8]>) -> u8 {
    match (child_aki, parent_ski) {
        (Some(a), Some(s)) if a == s => 0,
        (Some(_), Some(_)) => 2,
        _ => 1,
    }
}

impl TrustStore {
    /// A store trusting `anchors`. Their public keys are decoded here, once;
    /// an anchor whose key cannot be used stays listed and is reported when a
    /// path reaches it.
    pub fn new(anchors: &[Certificate]) -> Self {
        let mut list = Vec::with_capacity(anchors.len());
        let mut meta = Vec::with_capacity(anchors.len());
        let mut by_subject: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_fingerprint = HashMap::new();
        for cert in anchors {
            if by_fingerprint.contains_key(&cert.fingerprint) {
                continue;
            }
            let m = match CertView::parse(&cert.der) {
                Ok(v) => AnchorMeta {
                    key: decode_spki(v.spki).map(Arc::new),
                    spki: v.spki.to_vec(),
                    ski: v.ski.map(<[u8]>::to_vec),
                    path_len: v.path_len,
                    legacy: !v.has_basic_constraints,
                },
                Err(e) => AnchorMeta {
                    key: Err(format!("certificate cannot be decoded: {e}")),
                    spki: Vec::new(),
                    ski: None,
                    path_len: None,
                    legacy: false,
                },
            };
            let i = list.len();
            by_subject
                .entry(name_key(&cert.subject))
                .or_default()
                .push(i);
            by_fingerprint.insert(cert.fingerprint, i);
            list.push(cert.clone());
            meta.push(m);
        }
        TrustStore {
            anchors: list,
            meta,
            by_subject,
            by_fingerprint,
            caches: RwLock::new(Caches::default()),
        }
    }

    /// The anchor certificates, in the order given (duplicates dropped).
    pub fn anchors(&self) -> &[Certificate] {
        &self.anchors
    }

    /// Judges `leaf` as of `now`, using `intermediates` (any order, extra
    /// ones are ignored) to reach an anchor.
    pub fn evaluate(
        &self,
        leaf: &Certificate,
        intermediates: &[Certificate],
        now: DateTime<Utc>,
    ) -> TrustVerdict {
        let verdict = |status, reason: String| TrustVerdict {
            status,
            reason,
            evaluated_at: now,
        };

        if let Some(&i) = self.by_fingerprint.get(&leaf.fingerprint)
            && self.anchors[i].der == leaf.der
        {
            return match date_problem(leaf, now) {
                Some((status, why)) => verdict(status, why),
                None => verdict(
                    TrustStatus::Trusted,
                    format!(
                        "certificate is itself the trust anchor {}",
                        self.anchors[i].subject
                    ),
                ),
            };
        }

        let view = match CertView::parse(&leaf.der) {
            Ok(v) => v,
            Err(e) => {
                return verdict(
                    TrustStatus::Untrusted,
                    format!("certificate cannot be decoded: {e}"),
                );
            }
        };
        let leaf_node = Node { cert: leaf, view };
        let mut nodes: Vec<Node<'_>> = Vec::with_capacity(intermediates.len());
        for c in intermediates {
            if c.fingerprint == leaf.fingerprint
                || nodes.iter().any(|n| n.cert.fingerprint == c.fingerprint)
            {
                continue;
            }
            if let Ok(view) = CertView::parse(&c.der) {
                nodes.push(Node { cert: c, view });
            }
        }

        let mut used = Vec::with_capacity(MAX_PATH_LEN);
        let path = match self.build(&leaf_node, &nodes, 1, &mut used) {
            Ok(path) => path,
            Err(f) => return verdict(TrustStatus::Untrusted, f.reason),
        };

        if let Some((status, why)) = date_problem(leaf, now) {
            return verdict(status, why);
        }
        let mut via = Vec::new();
        for hop in &path {
            let issuer = match hop {
                Hop::Intermediate(i) => nodes[*i].cert,
                Hop::Anchor(a) => &self.anchors[*a],
            };
            if now > issuer.not_after {
                return verdict(
                    TrustStatus::Expired,
                    format!(
                        "issuer {} expired at {}",
                        issuer.subject,
                        issuer.not_after.to_rfc3339()
                    ),
                );
            }
            if now < issuer.not_before {
                return verdict(
                    TrustStatus::Untrusted,
                    format!(
                        "issuer {} is not valid before {}",
                        issuer.subject,
                        issuer.not_before.to_rfc3339()
                    ),
                );
            }
            if let Hop::Intermediate(_) = hop {
                via.push(issuer.subject.as_str());
            }
        }
        let anchor = match path.last() {
            Some(Hop::Anchor(a)) => &self.anchors[*a].subject,
            _ => {
                return verdict(
                    TrustStatus::Untrusted,
                    "path does not end at an anchor".into(),
                );
            }
        };
        let reason = if via.is_empty() {
            format!("issued by trust anchor {anchor}")
        } else {
            format!("chains to trust anchor {anchor} via {}", via.join(" / "))
        };
        verdict(TrustStatus::Trusted, reason)
    }

    /// Depth-first search for issuers of `child`. `depth` counts the
    /// certificates already on the path (the leaf is 1).
    fn build(
        &self,
        child: &Node<'_>,
        nodes: &[Node<'_>],
        depth: usize,
        used: &mut Vec<usize>,
    ) -> Result<Vec<Hop>, Failure> {
        let issuer_key = name_key(&child.cert.issuer);
        let mut best: Option<Failure> = None;
        let keep = |f: Failure, best: &mut Option<Failure>| {
            if best.as_ref().is_none_or(|b| f.depth > b.depth) {
                *best = Some(f);
            }
        };
        let fail = |reason: String| Failure { depth, reason };

        // Anchors first: the shortest path wins.
        let mut anchor_idx: Vec<usize> = self
            .by_subject
            .get(&issuer_key)
            .cloned()
            .unwrap_or_default();
        anchor_idx.sort_by_key(|&i| aki_rank(child.view.aki, self.meta[i].ski.as_deref()));
        for i in anchor_idx {
            let (anchor, meta) = (&self.anchors[i], &self.meta[i]);
            if !meta.legacy
                && let Err(why) = can_sign_certs(anchor)
            {
                keep(fail(format!("trust anchor {why}")), &mut best);
                continue;
            }
            if let Err(why) = path_len_ok(anchor, meta.path_len, depth) {
                keep(fail(why), &mut best);
                continue;
            }
            let key = match &meta.key {
                Ok(k) => k.clone(),
                Err(e) => {
                    keep(
                        fail(format!(
                            "trust anchor {} has an unusable key: {e}",
                            anchor.subject
                        )),
                        &mut best,
                    );
                    continue;
                }
            };
            match self.check_edge(child, anchor, &meta.spki, &key) {
                Ok(()) => return Ok(vec![Hop::Anchor(i)]),
                Err(e) => keep(fail(e), &mut best),
            }
        }

        let mut cand: Vec<usize> = (0..nodes.len())
            .filter(|i| !used.contains(i))
            .filter(|&i| {
                // Same bytes is the common case; else RFC 4514 text without case.
                nodes[i].view.subject == child.view.issuer
                    || name_key(&nodes[i].cert.subject) == issuer_key
            })
            .filter(|&i| nodes[i].cert.fingerprint != child.cert.fingerprint)
            .collect();
        if !cand.is_empty() && depth + 1 >= MAX_PATH_LEN {
            keep(
                fail(format!(
                    "no path to a trust anchor within {MAX_PATH_LEN} certificates"
                )),
                &mut best,
            );
        } else {
            cand.sort_by_key(|&i| aki_rank(child.view.aki, nodes[i].view.ski));
            for i in cand {
                let parent = &nodes[i];
                if let Err(why) = can_sign_certs(parent.cert)
                    .and_then(|()| path_len_ok(parent.cert, parent.view.path_len, depth))
                {
                    keep(fail(why), &mut best);
                    continue;
                }
                let key = match self.key_of(parent) {
                    Ok(k) => k,
                    Err(e) => {
                        keep(
                            fail(format!("{} has an unusable key: {e}", parent.cert.subject)),
                            &mut best,
                        );
                        continue;
                    }
                };
                if let Err(e) = self.check_edge(child, parent.cert, parent.view.spki, &key) {
                    keep(fail(e), &mut best);
                    continue;
                }
                used.push(i);
                match self.build(parent, nodes, depth + 1, used) {
                    Ok(mut rest) => {
                        rest.insert(0, Hop::Intermediate(i));
                        return Ok(rest);
                    }
                    Err(f) => keep(f, &mut best),
                }
                used.pop();
            }
        }

        Err(best.unwrap_or_else(|| {
            fail(format!(
                "issuer {} not found among trust anchors or supplied intermediates",
                child.cert.issuer
            ))
        }))
    }

    /// The decoded key of an intermediate, from the cache when seen before.
    fn key_of(&self, node: &Node<'_>) -> Result<Arc<VerifyKey>, String> {
        let fp = node.cert.fingerprint;
        if let Ok(c) = self.caches.read()
            && let Some((spki, k)) = c.keys.get(&fp)
            && spki.as_slice() == node.view.spki
        {
            return Ok(k.clone());
        }
        let key = Arc::new(decode_spki(node.view.spki)?);
        if let Ok(mut c) = self.caches.write() {
            if c.keys.len() >= CACHE_LIMIT {
                c.keys.clear();
            }
            c.keys.insert(fp, (node.view.spki.to_vec(), key.clone()));
        }
        Ok(key)
    }

    /// Verifies the issuer's signature on `child`; remembers successes between
    /// CA certificates (leaves are too many and too varied to be worth it).
    fn check_edge(
        &self,
        child: &Node<'_>,
        issuer: &Certificate,
        issuer_spki: &[u8],
        key: &VerifyKey,
    ) -> Result<(), String> {
        let edge = (child.cert.fingerprint, issuer.fingerprint);
        let cacheable = child.cert.is_ca;
        if cacheable
            && let Ok(c) = self.caches.read()
            && let Some((der, spki)) = c.edges.get(&edge)
            && der.as_slice() == child.cert.der.as_slice()
            && spki.as_slice() == issuer_spki
        {
            return Ok(());
        }
        verify_signature(
            key,
            &child.view.sig_alg,
            child.view.tbs,
            child.view.signature,
        )
        .map_err(|e| format!("signature by {} does not verify ({e})", issuer.subject))?;
        if cacheable && let Ok(mut c) = self.caches.write() {
            if c.edges.len() >= CACHE_LIMIT {
                c.edges.clear();
            }
            c.edges
                .insert(edge, (child.cert.der.clone(), issuer_spki.to_vec()));
        }
        Ok(())
    }
}

/// The leaf's own date verdict, if it is outside its validity window.
fn date_problem(cert: &Certificate, now: DateTime<Utc>) -> Option<(TrustStatus, String)> {
    if now < cert.not_before {
        Some((
            TrustStatus::NotYetValid,
            format!("not valid before {}", cert.not_before.to_rfc3339()),
        ))
    } else if now > cert.not_after {
        Some((
            TrustStatus::Expired,
            format!("expired at {}", cert.not_after.to_rfc3339()),
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::{CaSpec, CertAuthority, KeyPair, KeyType, LeafKey};
    use crate::pki::parse_certificate_der;
    use crate::pki::testkit::{ca_spec, leaf_spec, now, pki, rng, ymd};

    fn untrusted(v: &TrustVerdict) -> &str {
        assert_eq!(v.status, TrustStatus::Untrusted, "{v:?}");
        &v.reason
    }

    #[test]
    fn every_key_type_chains_through_its_intermediate() {
        for (i, kt) in [
            KeyType::EcdsaP256,
            KeyType::EcdsaP384,
            KeyType::Ed25519,
            KeyType::Rsa2048,
        ]
        .into_iter()
        .enumerate()
        {
            let p = pki(kt, 100 + i as u64);
            let store = TrustStore::new(std::slice::from_ref(&p.root_cert));
            let v = store.evaluate(&p.leaf, std::slice::from_ref(&p.inter_cert), now());
            assert_eq!(v.status, TrustStatus::Trusted, "{kt:?}: {v:?}");
            assert_eq!(
                v.reason,
                "chains to trust anchor CN=Test Root CA,O=Example Health via CN=Test Issuing CA,O=Example Health"
            );
            assert_eq!(v.evaluated_at, now());
            // The intermediate alone is issued by the anchor.
            let v = store.evaluate(&p.inter_cert, &[], now());
            assert_eq!(v.status, TrustStatus::Trusted, "{v:?}");
            assert!(v.reason.starts_with("issued by trust anchor"), "{v:?}");
        }
    }

    #[test]
    fn missing_intermediate_or_other_root_is_untrusted() {
        let p = pki(KeyType::EcdsaP256, 1);
        let other = pki(KeyType::EcdsaP256, 2);
        let store = TrustStore::new(std::slice::from_ref(&p.root_cert));
        let v = store.evaluate(&p.leaf, &[], now());
        assert_eq!(
            untrusted(&v),
            "issuer CN=Test Issuing CA,O=Example Health not found among trust anchors or supplied intermediates"
        );
        // Same names, different keys: the other PKI's leaf and intermediate
        // are found by name but their signatures do not verify.
        let v = store.evaluate(&other.leaf, std::slice::from_ref(&other.inter_cert), now());
        assert!(
            untrusted(&v)
                .starts_with("signature by CN=Test Root CA,O=Example Health does not verify"),
            "{v:?}"
        );
        let v = store.evaluate(&other.leaf, std::slice::from_ref(&p.inter_cert), now());
        assert!(
            untrusted(&v)
                .starts_with("signature by CN=Test Issuing CA,O=Example Health does not verify"),
            "{v:?}"
        );
    }

    #[test]
    fn a_differently_named_root_is_not_found() {
        let p = pki(KeyType::EcdsaP256, 3);
        let mut r = rng(4);
        let stranger = CertAuthority::new_root(&ca_spec("Stranger CA", KeyType::EcdsaP256), &mut r)
            .unwrap()
            .certificate()
            .unwrap();
        let store = TrustStore::new(&[stranger]);
        let v = store.evaluate(&p.leaf, std::slice::from_ref(&p.inter_cert), now());
        assert!(
            untrusted(&v).contains("CN=Test Root CA,O=Example Health not found"),
            "{v:?}"
        );
        assert_eq!(store.anchors().len(), 1);
    }

    #[test]
    fn tampered_signature_or_tbs_breaks_the_chain() {
        let p = pki(KeyType::EcdsaP256, 5);
        let store = TrustStore::new(std::slice::from_ref(&p.root_cert));
        let inters = std::slice::from_ref(&p.inter_cert);

        // Last byte of the DER is inside the signature BIT STRING.
        let mut der = p.leaf.der.clone();
        let n = der.len();
        der[n - 1] ^= 0x01;
        let bad_sig = parse_certificate_der(&der).unwrap();
        let v = store.evaluate(&bad_sig, inters, now());
        assert!(
            untrusted(&v).starts_with("signature by CN=Test Issuing CA"),
            "{v:?}"
        );

        // A byte of the subject CN inside the TBS: "Alice" -> "Blice".
        let mut der = p.leaf.der.clone();
        let at = der.windows(5).position(|w| w == b"Alice").unwrap();
        der[at] = b'B';
        let bad_tbs = parse_certificate_der(&der).unwrap();
        assert_eq!(bad_tbs.subject, "CN=Blice Example");
        let v = store.evaluate(&bad_tbs, inters, now());
        assert!(
            untrusted(&v).starts_with("signature by CN=Test Issuing CA"),
            "{v:?}"
        );

        // Tampering with the intermediate is caught at the next hop.
        let mut der = p.inter_cert.der.clone();
        let at = der.windows(7).position(|w| w == b"Issuing").unwrap();
        der[at] = b'i';
        let bad_inter = parse_certificate_der(&der).unwrap();
        let v = store.evaluate(&p.leaf, &[bad_inter], now());
        assert!(untrusted(&v).contains("does not verify"), "{v:?}");
    }

    #[test]
    fn rsa_tampering_is_caught_too() {
        let p = pki(KeyType::Rsa2048, 6);
        let store = TrustStore::new(std::slice::from_ref(&p.root_cert));
        let mut der = p.leaf.der.clone();
        let n = der.len();
        der[n - 5] ^= 0x80;
        let bad = parse_certificate_der(&der).unwrap();
        let v = store.evaluate(&bad, std::slice::from_ref(&p.inter_cert), now());
        assert!(
            untrusted(&v).contains("RSA PKCS#1 v1.5 SHA-256 signature is invalid"),
            "{v:?}"
        );
    }

    #[test]
    fn leaf_dates_give_expired_and_not_yet_valid() {
        let p = pki(KeyType::EcdsaP256, 7);
        let store = TrustStore::new(std::slice::from_ref(&p.root_cert));
        let inters = std::slice::from_ref(&p.inter_cert);
        let v = store.evaluate(&p.leaf, inters, ymd(2029, 12, 31));
        assert_eq!(v.status, TrustStatus::NotYetValid, "{v:?}");
        assert_eq!(v.reason, "not valid before 2030-01-01T00:00:00+00:00");
        let v = store.evaluate(&p.leaf, inters, ymd(2031, 1, 2));
        assert_eq!(v.status, TrustStatus::Expired, "{v:?}");
        assert_eq!(v.reason, "expired at 2031-01-01T00:00:00+00:00");
        // Boundaries are inclusive.
        assert_eq!(
            store.evaluate(&p.leaf, inters, ymd(2030, 1, 1)).status,
            TrustStatus::Trusted
        );
        assert_eq!(
            store.evaluate(&p.leaf, inters, ymd(2031, 1, 1)).status,
            TrustStatus::Trusted
        );
    }

    #[test]
    fn expired_intermediate_makes_the_verdict_expired() {
        let mut r = rng(8);
        let root = CertAuthority::new_root(&ca_spec("Root", KeyType::EcdsaP256), &mut r).unwrap();
        let short = CaSpec {
            not_after: ymd(2030, 3, 1),
            ..ca_spec("Short CA", KeyType::EcdsaP256)
        };
        let inter = root.issue_intermediate(&short, &mut r).unwrap();
        let leaf = inter
            .issue_leaf(
                &leaf_spec("bob@example.org", LeafKey::Generate(KeyType::EcdsaP256)),
                &mut r,
            )
            .unwrap();
        let leaf = parse_certificate_der(&leaf.cert_der).unwrap();
        let store = TrustStore::new(&[root.certificate().unwrap()]);
        let v = store.evaluate(&leaf, &[inter.certificate().unwrap()], now());
        assert_eq!(v.status, TrustStatus::Expired, "{v:?}");
        assert_eq!(
            v.reason,
            "issuer CN=Short CA,O=Example Health expired at 2030-03-01T00:00:00+00:00"
        );
    }

    #[test]
    fn an_anchor_is_trusted_as_itself_within_its_dates() {
        let p = pki(KeyType::EcdsaP256, 9);
        let store = TrustStore::new(&[p.root_cert.clone(), p.leaf.clone()]);
        let v = store.evaluate(&p.leaf, &[], now());
        assert_eq!(v.status, TrustStatus::Trusted);
        assert_eq!(
            v.reason,
            "certificate is itself the trust anchor CN=Alice Example"
        );
        assert_eq!(
            store.evaluate(&p.leaf, &[], ymd(2032, 1, 1)).status,
            TrustStatus::Expired
        );
    }

    #[test]
    fn a_non_ca_issuer_is_refused() {
        // A leaf whose key then signs another "leaf": the issuer lacks cA.
        let mut r = rng(10);
        let root = CertAuthority::new_root(&ca_spec("Root", KeyType::EcdsaP256), &mut r).unwrap();
        let key = KeyPair::generate(KeyType::EcdsaP256, &mut r).unwrap();
        let mut spec = leaf_spec(
            "mallory@example.org",
            LeafKey::Existing(key.public_key().unwrap()),
        );
        spec.subject_cn = "Mallory".into();
        let mallory = root.issue_leaf(&spec, &mut r).unwrap();
        let fake_ca = CertAuthority::from_parts_unchecked(&mallory.cert_der, key).unwrap();
        let victim = fake_ca
            .issue_leaf(
                &leaf_spec("victim@example.org", LeafKey::Generate(KeyType::EcdsaP256)),
                &mut r,
            )
            .unwrap();
        let victim = parse_certificate_der(&victim.cert_der).unwrap();
        let store = TrustStore::new(&[root.certificate().unwrap()]);
        let v = store.evaluate(
            &victim,
            &[parse_certificate_der(&mallory.cert_der).unwrap()],
            now(),
        );
        assert_eq!(untrusted(&v), "CN=Mallory is not a CA");
    }

    #[test]
    fn same_named_intermediates_are_told_apart() {
        let mut r = rng(11);
        let root = CertAuthority::new_root(&ca_spec("Root", KeyType::EcdsaP256), &mut r).unwrap();
        let old = root
            .issue_intermediate(&ca_spec("Issuing", KeyType::EcdsaP256), &mut r)
            .unwrap();
        let new = root
            .issue_intermediate(&ca_spec("Issuing", KeyType::EcdsaP256), &mut r)
            .unwrap();
        let leaf = new
            .issue_leaf(
                &leaf_spec("a@example.org", LeafKey::Generate(KeyType::EcdsaP256)),
                &mut r,
            )
            .unwrap();
        let leaf = parse_certificate_der(&leaf.cert_der).unwrap();
        let store = TrustStore::new(&[root.certificate().unwrap()]);
        let (o, n) = (old.certificate().unwrap(), new.certificate().unwrap());
        for inters in [vec![o.clone(), n.clone()], vec![n.clone(), o.clone()]] {
            let v = store.evaluate(&leaf, &inters, now());
            assert_eq!(v.status, TrustStatus::Trusted, "{v:?}");
        }
        let v = store.evaluate(&leaf, &[o], now());
        assert!(
            untrusted(&v).starts_with("signature by CN=Issuing"),
            "{v:?}"
        );
    }

    #[test]
    fn paths_longer_than_the_limit_are_refused() {
        let mut r = rng(12);
        let root = CertAuthority::new_root(&ca_spec("Root", KeyType::EcdsaP256), &mut r).unwrap();
        let mut cas = vec![];
        let mut inters = vec![];
        for i in 0..MAX_PATH_LEN - 1 {
            let spec = ca_spec(&format!("CA {i}"), KeyType::EcdsaP256);
            let next = cas
                .last()
                .unwrap_or(&root)
                .issue_intermediate(&spec, &mut r)
                .unwrap();
            inters.push(next.certificate().unwrap());
            cas.push(next);
        }
        let store = TrustStore::new(&[root.certificate().unwrap()]);
        let issue = |ca: &CertAuthority, r: &mut _| {
            let l = ca
                .issue_leaf(
                    &leaf_spec("a@example.org", LeafKey::Generate(KeyType::EcdsaP256)),
                    r,
                )
                .unwrap();
            parse_certificate_der(&l.cert_der).unwrap()
        };
        // Leaf + 6 intermediates + root = 8: allowed.
        let ok = issue(&cas[MAX_PATH_LEN - 3], &mut r);
        assert_eq!(
            store.evaluate(&ok, &inters, now()).status,
            TrustStatus::Trusted
        );
        // Leaf + 7 intermediates + root = 9: refused.
        let long = issue(&cas[MAX_PATH_LEN - 2], &mut r);
        let v = store.evaluate(&long, &inters, now());
        assert!(untrusted(&v).contains("within 8 certificates"), "{v:?}");
    }

    #[test]
    fn junk_in_the_intermediates_and_the_leaf_does_no_harm() {
        let p = pki(KeyType::EcdsaP256, 13);
        let store = TrustStore::new(std::slice::from_ref(&p.root_cert));
        let mut junk = p.inter_cert.clone();
        junk.der = vec![0x30, 0x00];
        junk.fingerprint = crate::domain::Fingerprint([9; 32]);
        let inters = vec![
            junk,
            p.leaf.clone(),
            p.inter_cert.clone(),
            p.inter_cert.clone(),
        ];
        assert_eq!(
            store.evaluate(&p.leaf, &inters, now()).status,
            TrustStatus::Trusted
        );
        let mut broken = p.leaf.clone();
        broken.der.truncate(10);
        broken.fingerprint = crate::domain::Fingerprint([7; 32]);
        assert!(
            untrusted(&store.evaluate(&broken, &inters, now()))
                .starts_with("certificate cannot be decoded")
        );
    }

    #[test]
    fn cached_edges_do_not_hide_a_bad_signature() {
        let p = pki(KeyType::EcdsaP256, 14);
        let store = TrustStore::new(std::slice::from_ref(&p.root_cert));
        let inters = std::slice::from_ref(&p.inter_cert);
        assert_eq!(
            store.evaluate(&p.leaf, inters, now()).status,
            TrustStatus::Trusted
        );
        // A different intermediate with the same name but other bytes has its own cache key.
        let mut der = p.inter_cert.der.clone();
        let n = der.len();
        der[n - 2] ^= 0x01;
        let tampered = parse_certificate_der(&der).unwrap();
        let v = store.evaluate(&p.leaf, &[tampered], now());
        assert!(untrusted(&v).contains("does not verify"), "{v:?}");
        assert_eq!(
            store.evaluate(&p.leaf, inters, now()).status,
            TrustStatus::Trusted
        );
    }

    /// A caller-assembled Certificate whose fingerprint is not its DER's
    /// must not ride on what was verified for the real one.
    #[test]
    fn forged_fingerprints_do_not_hit_the_caches() {
        let p = pki(KeyType::EcdsaP256, 16);
        let store = TrustStore::new(std::slice::from_ref(&p.root_cert));
        assert_eq!(
            store
                .evaluate(&p.leaf, std::slice::from_ref(&p.inter_cert), now())
                .status,
            TrustStatus::Trusted
        );
        // Same fingerprint as the verified intermediate, other bytes.
        let mut der = p.inter_cert.der.clone();
        let n = der.len();
        der[n - 2] ^= 0x01;
        let mut forged = parse_certificate_der(&der).unwrap();
        forged.fingerprint = p.inter_cert.fingerprint;
        let v = store.evaluate(&p.leaf, &[forged], now());
        assert!(untrusted(&v).contains("does not verify"), "{v:?}");
        // A leaf claiming the anchor's fingerprint is not the anchor.
        let mut fake = p.leaf.clone();
        fake.fingerprint = p.root_cert.fingerprint;
        let v = store.evaluate(&fake, &[], now());
        assert_eq!(v.status, TrustStatus::Untrusted, "{v:?}");
    }

    #[test]
    fn store_is_shareable_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<TrustStore>();
    }

    #[test]
    fn path_len_constraint_is_enforced() {
        let mut r = rng(15);
        let root = CertAuthority::new_root(&ca_spec("Root", KeyType::EcdsaP256), &mut r).unwrap();
        let tight = CaSpec {
            path_len: Some(0),
            ..ca_spec("Tight CA", KeyType::EcdsaP256)
        };
        let inter = root.issue_intermediate(&tight, &mut r).unwrap();
        let sub = inter
            .issue_intermediate(&ca_spec("Sub CA", KeyType::EcdsaP256), &mut r)
            .unwrap();
        let leaf = sub
            .issue_leaf(
                &leaf_spec("a@example.org", LeafKey::Generate(KeyType::EcdsaP256)),
                &mut r,
            )
            .unwrap();
        let leaf = parse_certificate_der(&leaf.cert_der).unwrap();
        let store = TrustStore::new(&[root.certificate().unwrap()]);
        let inters = [inter.certificate().unwrap(), sub.certificate().unwrap()];
        let v = store.evaluate(&leaf, &inters, now());
        assert_eq!(
            untrusted(&v),
            "CN=Tight CA,O=Example Health allows at most 0 intermediate CA(s) below it, the path has 1"
        );
        // Directly below it is fine.
        let ok = inter
            .issue_leaf(
                &leaf_spec("b@example.org", LeafKey::Generate(KeyType::EcdsaP256)),
                &mut r,
            )
            .unwrap();
        let ok = parse_certificate_der(&ok.cert_der).unwrap();
        assert_eq!(
            store.evaluate(&ok, &inters, now()).status,
            TrustStatus::Trusted
        );
    }
}
