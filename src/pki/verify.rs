//! Public keys from SubjectPublicKeyInfo and signature verification for the
//! algorithms certificates use: RSA PKCS#1 v1.5 (SHA-1/224/256/384/512),
//! RSASSA-PSS (SHA-1/256/384/512 with MGF1 of the same hash, any salt length),
//! ECDSA on P-256 and P-384 with any of SHA-1/224/256/384/512, and Ed25519.

use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc8410};
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use super::asn1::{Reader, bit_length, tag};
use super::view::AlgId;

/// ecdsa-with-SHA1 (not in const-oid's tables).
const ECDSA_WITH_SHA_1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");
/// DSA public key.
const ID_DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");

/// A public key decoded once and ready to verify signatures.
///
/// RSA and EC keys also keep their encoded form for `ring`, which verifies the
/// common algorithms 3-4 times faster than RustCrypto (bulk import verifies
/// one signature per certificate). RustCrypto remains the reference: anything
/// ring does not cover, or refuses, is decided by it.
pub(crate) enum VerifyKey {
    /// With the PKCS#1 RSAPublicKey DER.
    Rsa(rsa::PublicKey, Vec<u8>),
    /// With the SEC1 point.
    P256(p256::ecdsa::VerifyingKey, Vec<u8>),
    /// With the SEC1 point.
    P384(p384::ecdsa::VerifyingKey, Vec<u8>),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl VerifyKey {
    fn name(&self) -> &'static str {
        match self {
            VerifyKey::Rsa(..) => "an RSA key",
            VerifyKey::P256(..) => "an ECDSA P-256 key",
            VerifyKey::P384(..) => "an ECDSA P-384 key",
            VerifyKey::Ed25519(_) => "an Ed25519 key",
        }
    }
}

/// The parts of a SubjectPublicKeyInfo.
struct Spki<'a> {
    alg: ObjectIdentifier,
    params: Option<super::asn1::Tlv<'a>>,
    key: &'a [u8],
}

fn split_spki(spki: &[u8]) -> Result<Spki<'_>, String> {
    let mut r = Reader::der(spki);
    let seq = r
        .expect(tag::SEQUENCE, "SubjectPublicKeyInfo is not a SEQUENCE")
        .map_err(|e| e.to_string())?;
    let mut s = seq.children();
    let alg = AlgId::parse(s.read().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let key = s
        .read()
        .and_then(|t| t.bit_string_bytes())
        .map_err(|e| format!("public key: {e}"))?;
    let oid = ObjectIdentifier::from_bytes(alg.oid).map_err(|_| "malformed key algorithm OID")?;
    Ok(Spki {
        alg: oid,
        params: alg.params,
        key,
    })
}

fn named_curve(params: Option<super::asn1::Tlv<'_>>) -> Option<ObjectIdentifier> {
    let p = params?;
    if p.tag != tag::OID {
        return None;
    }
    ObjectIdentifier::from_bytes(p.value).ok()
}

/// The modulus of a PKCS#1 RSAPublicKey.
fn rsa_modulus(key: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::der(key);
    let seq = r.expect(tag::SEQUENCE, "").ok()?;
    let n = seq.children().expect(tag::INTEGER, "").ok()?;
    Some(n.value)
}

/// A short name for a certificate's key: `rsa-2048`, `ecdsa-p256`, `ed25519`,
/// `rsa-pss-3072`, or `unknown-<oid>`.
pub(crate) fn key_algorithm_name(spki: &[u8]) -> String {
    let Ok(s) = split_spki(spki) else {
        return "unknown".into();
    };
    if s.alg == rfc5912::RSA_ENCRYPTION || s.alg == rfc5912::ID_RSASSA_PSS {
        let bits = rsa_modulus(s.key).map(bit_length).unwrap_or(0);
        let prefix = if s.alg == rfc5912::RSA_ENCRYPTION {
            "rsa"
        } else {
            "rsa-pss"
        };
        return format!("{prefix}-{bits}");
    }
    if s.alg == rfc5912::ID_EC_PUBLIC_KEY {
        return match named_curve(s.params) {
            Some(c) if c == rfc5912::SECP_256_R_1 => "ecdsa-p256".into(),
            Some(c) if c == rfc5912::SECP_384_R_1 => "ecdsa-p384".into(),
            Some(c) if c == rfc5912::SECP_521_R_1 => "ecdsa-p521".into(),
            Some(c) if c == rfc5912::SECP_224_R_1 => "ecdsa-p224".into(),
            Some(c) => format!("ec-{c}"),
            None => "ec-explicit".into(),
        };
    }
    if s.alg == rfc8410::ID_ED_25519 {
        return "ed25519".into();
    }
    if s.alg == rfc8410::ID_ED_448 {
        return "ed448".into();
    }
    if s.alg == ID_DSA {
        return "dsa".into();
    }
    format!("unknown-{}", s.alg)
}

/// Decodes a SubjectPublicKeyInfo into a key we can verify with.
pub(crate) fn decode_spki(spki: &[u8]) -> Result<VerifyKey, String> {
    let s = split_spki(spki)?;
    if s.alg == rfc5912::RSA_ENCRYPTION || s.alg == rfc5912::ID_RSASSA_PSS {
        let pk = rsa::pkcs1::RsaPublicKeyRef::try_from(s.key)
            .map_err(|e| format!("malformed RSA public key: {e}"))?;
        let key =
            rsa::PublicKey::try_from(pk).map_err(|e| format!("unusable RSA public key: {e}"))?;
        return Ok(VerifyKey::Rsa(key, s.key.to_vec()));
    }
    if s.alg == rfc5912::ID_EC_PUBLIC_KEY {
        return match named_curve(s.params) {
            Some(c) if c == rfc5912::SECP_256_R_1 => {
                p256::ecdsa::VerifyingKey::from_sec1_bytes(s.key)
                    .map(|k| VerifyKey::P256(k, s.key.to_vec()))
                    .map_err(|_| "malformed P-256 public key".to_string())
            }
            Some(c) if c == rfc5912::SECP_384_R_1 => {
                p384::ecdsa::VerifyingKey::from_sec1_bytes(s.key)
                    .map(|k| VerifyKey::P384(k, s.key.to_vec()))
                    .map_err(|_| "malformed P-384 public key".to_string())
            }
            Some(c) => Err(format!("unsupported elliptic curve {c}")),
            None => Err("EC key without a named curve".into()),
        };
    }
    if s.alg == rfc8410::ID_ED_25519 {
        let bytes: [u8; 32] = s
            .key
            .try_into()
            .map_err(|_| "Ed25519 public key is not 32 bytes")?;
        return ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(VerifyKey::Ed25519)
            .map_err(|_| "malformed Ed25519 public key".into());
    }
    Err(format!("unsupported public key algorithm {}", s.alg))
}

/// Hash functions a certificate signature may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(oid: ObjectIdentifier) -> Option<Hash> {
        Some(match oid {
            o if o == rfc5912::ID_SHA_1 => Hash::Sha1,
            o if o == rfc5912::ID_SHA_224 => Hash::Sha224,
            o if o == rfc5912::ID_SHA_256 => Hash::Sha256,
            o if o == rfc5912::ID_SHA_384 => Hash::Sha384,
            o if o == rfc5912::ID_SHA_512 => Hash::Sha512,
            _ => return None,
        })
    }

    fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(msg).to_vec(),
            Hash::Sha224 => Sha224::digest(msg).to_vec(),
            Hash::Sha256 => Sha256::digest(msg).to_vec(),
            Hash::Sha384 => Sha384::digest(msg).to_vec(),
            Hash::Sha512 => Sha512::digest(msg).to_vec(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Hash::Sha1 => "SHA-1",
            Hash::Sha224 => "SHA-224",
            Hash::Sha256 => "SHA-256",
            Hash::Sha384 => "SHA-384",
            Hash::Sha512 => "SHA-512",
        }
    }
}

/// A signature algorithm we know how to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    RsaPkcs1(Hash),
    RsaPss { hash: Hash, salt: usize },
    Ecdsa(Hash),
    Ed25519,
}

fn scheme_of(alg: &AlgId<'_>) -> Result<Scheme, String> {
    let oid = ObjectIdentifier::from_bytes(alg.oid).map_err(|_| "malformed signature OID")?;
    let pkcs1 = [
        (rfc5912::SHA_1_WITH_RSA_ENCRYPTION, Hash::Sha1),
        (rfc5912::SHA_224_WITH_RSA_ENCRYPTION, Hash::Sha224),
        (rfc5912::SHA_256_WITH_RSA_ENCRYPTION, Hash::Sha256),
        (rfc5912::SHA_384_WITH_RSA_ENCRYPTION, Hash::Sha384),
        (rfc5912::SHA_512_WITH_RSA_ENCRYPTION, Hash::Sha512),
    ];
    if let Some((_, h)) = pkcs1.iter().find(|(o, _)| *o == oid) {
        if !alg.params_absent_or_null() {
            return Err("RSA PKCS#1 v1.5 algorithm with unexpected parameters".into());
        }
        return Ok(Scheme::RsaPkcs1(*h));
    }
    let ecdsa = [
        (ECDSA_WITH_SHA_1, Hash::Sha1),
        (rfc5912::ECDSA_WITH_SHA_224, Hash::Sha224),
        (rfc5912::ECDSA_WITH_SHA_256, Hash::Sha256),
        (rfc5912::ECDSA_WITH_SHA_384, Hash::Sha384),
        (rfc5912::ECDSA_WITH_SHA_512, Hash::Sha512),
    ];
    if let Some((_, h)) = ecdsa.iter().find(|(o, _)| *o == oid) {
        if alg.params.is_some() {
            return Err("ECDSA algorithm with parameters".into());
        }
        return Ok(Scheme::Ecdsa(*h));
    }
    if oid == rfc8410::ID_ED_25519 {
        if alg.params.is_some() {
            return Err("Ed25519 algorithm with parameters".into());
        }
        return Ok(Scheme::Ed25519);
    }
    if oid == rfc5912::ID_RSASSA_PSS {
        return pss_params(alg);
    }
    Err(format!("unsupported signature algorithm {oid}"))
}

/// Reads RSASSA-PSS-params (RFC 4055 §3.1); every field has a default.
fn pss_params(alg: &AlgId<'_>) -> Result<Scheme, String> {
    let bad = |what: &str| format!("malformed RSASSA-PSS parameters: {what}");
    let params = alg.params.ok_or_else(|| bad("absent"))?;
    if params.tag != tag::SEQUENCE {
        return Err(bad("not a SEQUENCE"));
    }
    let mut hash = Hash::Sha1;
    let mut mgf_hash = Hash::Sha1;
    let mut salt = 20usize;
    let mut r = params.children();
    if let Some(h) = r.optional(tag::CTX0).map_err(|e| bad(e.0))? {
        let a = AlgId::parse(h.children().read().map_err(|e| bad(e.0))?).map_err(|e| bad(e.0))?;
        let oid = ObjectIdentifier::from_bytes(a.oid).map_err(|_| bad("hash OID"))?;
        hash = Hash::from_oid(oid).ok_or_else(|| format!("unsupported PSS hash {oid}"))?;
    }
    if let Some(m) = r.optional(tag::CTX1).map_err(|e| bad(e.0))? {
        let a = AlgId::parse(m.children().read().map_err(|e| bad(e.0))?).map_err(|e| bad(e.0))?;
        let oid = ObjectIdentifier::from_bytes(a.oid).map_err(|_| bad("MGF OID"))?;
        if oid != rfc5912::ID_MGF_1 {
            return Err(format!("unsupported PSS mask generation {oid}"));
        }
        let inner = a.params.ok_or_else(|| bad("MGF1 without a hash"))?;
        let h = AlgId::parse(inner).map_err(|e| bad(e.0))?;
        let oid = ObjectIdentifier::from_bytes(h.oid).map_err(|_| bad("MGF1 hash OID"))?;
        mgf_hash = Hash::from_oid(oid).ok_or_else(|| format!("unsupported MGF1 hash {oid}"))?;
    }
    if let Some(s) = r.optional(tag::CTX2).map_err(|e| bad(e.0))? {
        let int = s
            .children()
            .expect(tag::INTEGER, "salt length")
            .map_err(|e| bad(e.0))?;
        if int.value.len() > 2 || int.value.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(bad("salt length out of range"));
        }
        salt = int.value.iter().fold(0usize, |a, b| (a << 8) | *b as usize);
    }
    if let Some(t) = r.optional(tag::CTX3).map_err(|e| bad(e.0))? {
        let int = t
            .children()
            .expect(tag::INTEGER, "trailer field")
            .map_err(|e| bad(e.0))?;
        if int.value != [1] {
            return Err(bad("trailer field other than 1"));
        }
    }
    r.finish("trailing data").map_err(|e| bad(e.0))?;
    if hash != mgf_hash {
        return Err("PSS with an MGF1 hash that differs from the message hash".into());
    }
    if hash == Hash::Sha224 {
        return Err("unsupported PSS hash SHA-224".into());
    }
    Ok(Scheme::RsaPss { hash, salt })
}

fn rsa_pkcs1(key: &rsa::PublicKey, hash: Hash, msg: &[u8], sig: &[u8]) -> rsa::Result<()> {
    match hash {
        Hash::Sha1 => key.pkcs1v15_verify::<Sha1>(msg, sig),
        Hash::Sha224 => key.pkcs1v15_verify::<Sha224>(msg, sig),
        Hash::Sha256 => key.pkcs1v15_verify::<Sha256>(msg, sig),
        Hash::Sha384 => key.pkcs1v15_verify::<Sha384>(msg, sig),
        Hash::Sha512 => key.pkcs1v15_verify::<Sha512>(msg, sig),
    }
}

fn rsa_pss(
    key: &rsa::PublicKey,
    hash: Hash,
    salt: usize,
    msg: &[u8],
    sig: &[u8],
) -> rsa::Result<()> {
    let hashed = hash.digest(msg);
    match hash {
        Hash::Sha1 => key.verify(rsa::Pss::<Sha1>::new_with_salt(salt), &hashed, sig),
        Hash::Sha256 => key.verify(rsa::Pss::<Sha256>::new_with_salt(salt), &hashed, sig),
        Hash::Sha384 => key.verify(rsa::Pss::<Sha384>::new_with_salt(salt), &hashed, sig),
        Hash::Sha512 => key.verify(rsa::Pss::<Sha512>::new_with_salt(salt), &hashed, sig),
        Hash::Sha224 => Err(rsa::Error::InvalidArguments),
    }
}

/// The ring algorithm and key encoding for the combinations ring implements.
fn ring_fast_path(
    scheme: Scheme,
    key: &VerifyKey,
) -> Option<(&'static dyn ring::signature::VerificationAlgorithm, &[u8])> {
    use ring::signature as rs;
    let alg: &'static dyn rs::VerificationAlgorithm = match (scheme, key) {
        (Scheme::RsaPkcs1(Hash::Sha1), VerifyKey::Rsa(..)) => {
            &rs::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY
        }
        (Scheme::RsaPkcs1(Hash::Sha256), VerifyKey::Rsa(..)) => {
            &rs::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
        }
        (Scheme::RsaPkcs1(Hash::Sha384), VerifyKey::Rsa(..)) => &rs::RSA_PKCS1_2048_8192_SHA384,
        (Scheme::RsaPkcs1(Hash::Sha512), VerifyKey::Rsa(..)) => {
            &rs::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
        }
        // ring's PSS expects a salt as long as the hash.
        (
            Scheme::RsaPss {
                hash: Hash::Sha256,
                salt: 32,
            },
            VerifyKey::Rsa(..),
        ) => &rs::RSA_PSS_2048_8192_SHA256,
        (
            Scheme::RsaPss {
                hash: Hash::Sha384,
                salt: 48,
            },
            VerifyKey::Rsa(..),
        ) => &rs::RSA_PSS_2048_8192_SHA384,
        (
            Scheme::RsaPss {
                hash: Hash::Sha512,
                salt: 64,
            },
            VerifyKey::Rsa(..),
        ) => &rs::RSA_PSS_2048_8192_SHA512,
        (Scheme::Ecdsa(Hash::Sha256), VerifyKey::P256(..)) => &rs::ECDSA_P256_SHA256_ASN1,
        (Scheme::Ecdsa(Hash::Sha384), VerifyKey::P256(..)) => &rs::ECDSA_P256_SHA384_ASN1,
        (Scheme::Ecdsa(Hash::Sha256), VerifyKey::P384(..)) => &rs::ECDSA_P384_SHA256_ASN1,
        (Scheme::Ecdsa(Hash::Sha384), VerifyKey::P384(..)) => &rs::ECDSA_P384_SHA384_ASN1,
        _ => return None,
    };
    let bytes = match key {
        VerifyKey::Rsa(_, der) => der.as_slice(),
        VerifyKey::P256(_, point) | VerifyKey::P384(_, point) => point.as_slice(),
        VerifyKey::Ed25519(_) => return None,
    };
    Some((alg, bytes))
}

/// Verifies `sig` over `msg` with `key` under the signature algorithm `alg`.
/// The error says what failed, for the verdict's reason.
pub(crate) fn verify_signature(
    key: &VerifyKey,
    alg: &AlgId<'_>,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    let scheme = scheme_of(alg)?;
    if ring_verify(scheme, key, msg, sig) == Some(true) {
        return Ok(());
    }
    rustcrypto_verify(scheme, key, msg, sig)
}

/// The digest a CMS `digestAlgorithm` (OID contents octets) names, over `msg`.
pub(crate) fn digest_by_oid(oid: &[u8], msg: &[u8]) -> Result<Vec<u8>, String> {
    let oid = ObjectIdentifier::from_bytes(oid).map_err(|_| "malformed digest algorithm OID")?;
    let hash = Hash::from_oid(oid).ok_or_else(|| format!("unsupported digest algorithm {oid}"))?;
    Ok(hash.digest(msg))
}

/// Verifies a CMS SignerInfo signature (RFC 5652 §5.4). Besides the
/// signature algorithms certificates use, `sig_alg` may name only the key
/// (`rsaEncryption`, `id-ecPublicKey`), as OpenSSL writes it; the hash is then
/// the SignerInfo's `digestAlgorithm` (`digest_oid`).
pub(crate) fn verify_cms_signature(
    key: &VerifyKey,
    sig_alg: &AlgId<'_>,
    digest_oid: &[u8],
    msg: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    let oid = ObjectIdentifier::from_bytes(sig_alg.oid).map_err(|_| "malformed signature OID")?;
    let scheme = if oid == rfc5912::RSA_ENCRYPTION || oid == rfc5912::ID_EC_PUBLIC_KEY {
        let d = ObjectIdentifier::from_bytes(digest_oid).map_err(|_| "malformed digest OID")?;
        let hash = Hash::from_oid(d).ok_or_else(|| format!("unsupported digest algorithm {d}"))?;
        if oid == rfc5912::RSA_ENCRYPTION {
            Scheme::RsaPkcs1(hash)
        } else {
            Scheme::Ecdsa(hash)
        }
    } else {
        scheme_of(sig_alg)?
    };
    if ring_verify(scheme, key, msg, sig) == Some(true) {
        return Ok(());
    }
    rustcrypto_verify(scheme, key, msg, sig)
}

/// `Some(valid)` when ring implements this combination, else `None`.
fn ring_verify(scheme: Scheme, key: &VerifyKey, msg: &[u8], sig: &[u8]) -> Option<bool> {
    let (alg, bytes) = ring_fast_path(scheme, key)?;
    Some(
        ring::signature::UnparsedPublicKey::new(alg, bytes)
            .verify(msg, sig)
            .is_ok(),
    )
}

/// The reference verification; its error is the verdict's reason.
fn rustcrypto_verify(
    scheme: Scheme,
    key: &VerifyKey,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    use signature::hazmat::PrehashVerifier;

    let mismatch = || format!("{scheme:?} signature cannot be made by {}", key.name());
    match (scheme, key) {
        (Scheme::RsaPkcs1(h), VerifyKey::Rsa(k, _)) => rsa_pkcs1(k, h, msg, sig)
            .map_err(|_| format!("RSA PKCS#1 v1.5 {} signature is invalid", h.name())),
        (Scheme::RsaPss { hash, salt }, VerifyKey::Rsa(k, _)) => rsa_pss(k, hash, salt, msg, sig)
            .map_err(|_| format!("RSA-PSS {} signature is invalid", hash.name())),
        (Scheme::Ecdsa(h), VerifyKey::P256(k, _)) => {
            let s = p256::ecdsa::Signature::from_der(sig)
                .map_err(|_| "malformed ECDSA signature".to_string())?;
            k.verify_prehash(&h.digest(msg), &s)
                .map_err(|_| format!("ECDSA P-256 {} signature is invalid", h.name()))
        }
        (Scheme::Ecdsa(h), VerifyKey::P384(k, _)) => {
            let s = p384::ecdsa::Signature::from_der(sig)
                .map_err(|_| "malformed ECDSA signature".to_string())?;
            k.verify_prehash(&h.digest(msg), &s)
                .map_err(|_| format!("ECDSA P-384 {} signature is invalid", h.name()))
        }
        (Scheme::Ed25519, VerifyKey::Ed25519(k)) => {
            let s = ed25519_dalek::Signature::from_slice(sig)
                .map_err(|_| "malformed Ed25519 signature".to_string())?;
            k.verify_strict(msg, &s)
                .map_err(|_| "Ed25519 signature is invalid".to_string())
        }
        _ => Err(mismatch()),
    }
}

/// Both verifiers separately, so tests can hold each to account.
#[cfg(test)]
pub(crate) fn verify_each_way(
    key: &VerifyKey,
    alg: &AlgId<'_>,
    msg: &[u8],
    sig: &[u8],
) -> (Option<bool>, Result<(), String>) {
    match scheme_of(alg) {
        Ok(scheme) => (
            ring_verify(scheme, key, msg, sig),
            rustcrypto_verify(scheme, key, msg, sig),
        ),
        Err(e) => (None, Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::KeyType;
    use crate::pki::testkit::pki;
    use crate::pki::view::CertView;

    /// For every key type our CA makes: the issuer's signature on the leaf
    /// verifies with ring (where ring applies) and with RustCrypto, and
    /// neither accepts it after one bit of the TBS or signature changes.
    #[test]
    fn both_verifiers_accept_real_and_refuse_tampered_signatures() {
        for (i, (kt, ring_applies)) in [
            (KeyType::EcdsaP256, true),
            (KeyType::EcdsaP384, true),
            (KeyType::Rsa2048, true),
            (KeyType::Ed25519, false),
        ]
        .into_iter()
        .enumerate()
        {
            let p = pki(kt, 80 + i as u64);
            let issuer = CertView::parse(&p.inter_cert.der).unwrap();
            let key = decode_spki(issuer.spki).unwrap();
            let leaf = CertView::parse(&p.leaf.der).unwrap();
            let (ring, rc) = verify_each_way(&key, &leaf.sig_alg, leaf.tbs, leaf.signature);
            assert_eq!(ring, ring_applies.then_some(true), "{kt:?}");
            assert_eq!(rc, Ok(()), "{kt:?}");

            let mut tbs = leaf.tbs.to_vec();
            let n = tbs.len();
            tbs[n - 1] ^= 1;
            let (ring, rc) = verify_each_way(&key, &leaf.sig_alg, &tbs, leaf.signature);
            assert_eq!(ring, ring_applies.then_some(false), "{kt:?}");
            assert!(rc.is_err(), "{kt:?}");

            let mut sig = leaf.signature.to_vec();
            let mid = sig.len() / 2;
            sig[mid] ^= 0x20;
            let (ring, rc) = verify_each_way(&key, &leaf.sig_alg, leaf.tbs, &sig);
            assert_eq!(ring, ring_applies.then_some(false), "{kt:?}");
            assert!(rc.is_err(), "{kt:?}");

            // The wrong key (the root's) is refused by both.
            let root = CertView::parse(&p.root_cert.der).unwrap();
            let wrong = decode_spki(root.spki).unwrap();
            let (ring, rc) = verify_each_way(&wrong, &leaf.sig_alg, leaf.tbs, leaf.signature);
            assert_ne!(ring, Some(true), "{kt:?}");
            assert!(rc.is_err(), "{kt:?}");
        }
    }

    #[test]
    fn key_algorithm_names() {
        for (i, (kt, name)) in [
            (KeyType::EcdsaP256, "ecdsa-p256"),
            (KeyType::EcdsaP384, "ecdsa-p384"),
            (KeyType::Rsa2048, "rsa-2048"),
            (KeyType::Ed25519, "ed25519"),
        ]
        .into_iter()
        .enumerate()
        {
            let p = pki(kt, 90 + i as u64);
            let v = CertView::parse(&p.root_cert.der).unwrap();
            assert_eq!(key_algorithm_name(v.spki), name);
        }
        assert_eq!(key_algorithm_name(b"junk"), "unknown");
    }
}
