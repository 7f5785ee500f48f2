//! A small certificate authority for demo data, tests and benchmarks.
//!
//! It makes a self-signed root (RSA-2048, ECDSA P-256/P-384 or Ed25519),
//! intermediates below it, and end-entity S/MIME certificates from a
//! [`LeafSpec`]. Time and randomness are inputs: nothing here reads the clock
//! or the operating system's RNG, so a seeded ChaCha gives the same keys and
//! serials every run.
//!
//! Speed matters (benchmarks issue a million leaves): a leaf can certify an
//! existing public key ([`LeafKey::Existing`], no key generation), and an ECDSA
//! P-256 CA signs deterministically (RFC 6979) in tens of microseconds.
//!
//! Profile of what is issued:
//! * root: basicConstraints cA (critical), keyUsage keyCertSign+cRLSign
//!   (critical), subjectKeyIdentifier;
//! * intermediate: the same plus authorityKeyIdentifier (pathLenConstraint
//!   as the [`CaSpec`] says, for both);
//! * leaf: basicConstraints cA=false, keyUsage digitalSignature plus
//!   keyEncipherment (RSA) or keyAgreement (EC) (critical), extKeyUsage
//!   emailProtection, subjectAltName rfc822Name and/or dNSName, certificate
//!   policies, SKI, AKI; a random positive 16-byte serial.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::asn1::{Ia5String, OctetString};
use der::{Decode, Encode};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use signature::Keypair;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, ExtendedKeyUsage, KeyUsage,
    KeyUsages, SubjectAltName, SubjectKeyIdentifier, certpolicy::PolicyInformation,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use super::asn1::{Reader, tag, tlv, write_tlv};
use super::rng::Bridge;
use super::view::CertView;
use super::{PkiError, parse_certificate_der};
use crate::domain::{Address, Certificate, DomainName};

/// The kinds of key the CA makes and signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// RSA with a 2048-bit modulus, signing with PKCS#1 v1.5 and SHA-256.
    /// The most widely deployed S/MIME key; slow to generate (reuse one).
    Rsa2048,
    /// ECDSA on P-256 with SHA-256: the fast path for bulk issuance.
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384, as some federal PKIs use.
    EcdsaP384,
    /// Ed25519 (RFC 8410): signing only, not usable for S/MIME encryption.
    Ed25519,
}

enum KeyInner {
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// A private key of one of the [`KeyType`]s.
pub struct KeyPair(KeyInner);

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({:?})", self.key_type())
    }
}

fn key_err(e: impl std::fmt::Display) -> PkiError {
    PkiError::InvalidKey {
        reason: e.to_string(),
    }
}

impl KeyPair {
    /// A fresh key from `rng`. RSA-2048 takes a noticeable fraction of a second.
    pub fn generate<R: rand::CryptoRng + ?Sized>(
        key_type: KeyType,
        rng: &mut R,
    ) -> Result<Self, PkiError> {
        use p256::elliptic_curve::Generate;
        let mut rng = Bridge(rng);
        Ok(KeyPair(match key_type {
            KeyType::Rsa2048 => {
                let key = rsa::PrivateKey::new(&mut rng, 2048).map_err(PkiError::internal)?;
                KeyInner::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(key)))
            }
            KeyType::EcdsaP256 => {
                KeyInner::P256(p256::ecdsa::SigningKey::generate_from_rng(&mut rng))
            }
            KeyType::EcdsaP384 => {
                KeyInner::P384(p384::ecdsa::SigningKey::generate_from_rng(&mut rng))
            }
            KeyType::Ed25519 => KeyInner::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng)),
        }))
    }

    /// What kind of key this is.
    pub fn key_type(&self) -> KeyType {
        match &self.0 {
            KeyInner::Rsa(_) => KeyType::Rsa2048,
            KeyInner::P256(_) => KeyType::EcdsaP256,
            KeyInner::P384(_) => KeyType::EcdsaP384,
            KeyInner::Ed25519(_) => KeyType::Ed25519,
        }
    }

    /// Reads a PKCS#8 PEM (`PRIVATE KEY`) private key of any supported type.
    /// RSA keys of other sizes are accepted too (and sign with SHA-256).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, PkiError> {
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(KeyPair(KeyInner::P256(k)));
        }
        if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(KeyPair(KeyInner::P384(k)));
        }
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(KeyPair(KeyInner::Ed25519(k)));
        }
        match rsa::PrivateKey::from_pkcs8_pem(pem) {
            Ok(k) => Ok(KeyPair(KeyInner::Rsa(Box::new(
                rsa::pkcs1v15::SigningKey::new(k),
            )))),
            Err(e) => Err(PkiError::InvalidKey {
                reason: format!("not a PKCS#8 RSA, P-256, P-384 or Ed25519 private key ({e})"),
            }),
        }
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pkcs8_pem(&self) -> Result<String, PkiError> {
        let pem = match &self.0 {
            KeyInner::Rsa(k) => k.to_pkcs8_pem(LineEnding::LF),
            KeyInner::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            KeyInner::P384(k) => k.to_pkcs8_pem(LineEnding::LF),
            KeyInner::Ed25519(k) => return Ok(super::node_key::ed25519_pkcs8_pem(k)),
        }
        .map_err(PkiError::internal)?;
        Ok(pem.as_str().to_owned())
    }

    /// The public half, to certify (possibly many times).
    pub fn public_key(&self) -> Result<PublicKey, PkiError> {
        let doc = match &self.0 {
            KeyInner::Rsa(k) => k.verifying_key().to_public_key_der(),
            KeyInner::P256(k) => k.verifying_key().to_public_key_der(),
            KeyInner::P384(k) => k.verifying_key().to_public_key_der(),
            KeyInner::Ed25519(k) => k.verifying_key().to_public_key_der(),
        }
        .map_err(PkiError::internal)?;
        PublicKey::from_spki_der(doc.as_bytes())
    }

    /// Signs a TBS structure and assembles the certificate DER.
    fn sign<R: rand::CryptoRng + ?Sized>(
        &self,
        builder: CertificateBuilder<Plan>,
        rng: &mut R,
    ) -> Result<Vec<u8>, PkiError> {
        let cert = match &self.0 {
            KeyInner::Rsa(k) => builder
                .build_with_rng::<_, rsa::pkcs1v15::Signature, _>(k.as_ref(), &mut Bridge(rng)),
            KeyInner::P256(k) => builder.build::<_, p256::ecdsa::DerSignature>(k),
            KeyInner::P384(k) => builder.build::<_, p384::ecdsa::DerSignature>(k),
            KeyInner::Ed25519(k) => builder.build::<_, ed25519_dalek::Signature>(k),
        }
        .map_err(PkiError::internal)?;
        cert.to_der().map_err(PkiError::internal)
    }
}

/// Which family a public key belongs to; decides the leaf's keyUsage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyFamily {
    Rsa,
    Ec,
    Ed25519,
}

/// A public key (SubjectPublicKeyInfo DER) that leaves may certify; cheap to
/// clone, so one key can back any number of certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    spki: Arc<[u8]>,
    family: KeyFamily,
}

impl PublicKey {
    /// Accepts an RSA, EC (P-256/P-384) or Ed25519 SubjectPublicKeyInfo.
    pub fn from_spki_der(spki: &[u8]) -> Result<Self, PkiError> {
        super::verify::decode_spki(spki).map_err(key_err)?;
        let name = super::verify::key_algorithm_name(spki);
        let family = if name.starts_with("rsa-") && !name.starts_with("rsa-pss") {
            KeyFamily::Rsa
        } else if name.starts_with("ecdsa-") {
            KeyFamily::Ec
        } else if name == "ed25519" {
            KeyFamily::Ed25519
        } else {
            return Err(key_err(format!("cannot certify a {name} key")));
        };
        Ok(PublicKey {
            spki: spki.into(),
            family,
        })
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }
}

/// Whose key a new leaf certifies.
#[derive(Debug, Clone)]
pub enum LeafKey {
    /// Certify this existing public key; no private key is returned. Reuse one
    /// key for thousands of certificates when only certificates matter.
    Existing(PublicKey),
    /// Generate a fresh key of this type; its PKCS#8 PEM comes back with the certificate.
    Generate(KeyType),
}

/// What an end-entity S/MIME certificate should say.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// Subject commonName.
    pub subject_cn: String,
    /// rfc822Name SAN (address-bound certificate), checked as an address.
    pub email: Option<String>,
    /// dNSName SAN (Direct domain-bound certificate), checked as a host name.
    pub dns: Option<String>,
    /// Start of validity (whole seconds are kept).
    pub not_before: DateTime<Utc>,
    /// End of validity; must be after `not_before`.
    pub not_after: DateTime<Utc>,
    /// Certificate policy OIDs, dotted.
    pub policies: Vec<String>,
    /// Whose key the certificate certifies.
    pub key: LeafKey,
}

/// What a CA certificate (root or intermediate) should say.
#[derive(Debug, Clone)]
pub struct CaSpec {
    /// Subject commonName.
    pub common_name: String,
    /// Subject organizationName, if any.
    pub organization: Option<String>,
    /// The CA's own key type.
    pub key_type: KeyType,
    /// basicConstraints pathLenConstraint: how many intermediate CAs may sit
    /// below this one (`None`: no limit).
    pub path_len: Option<u8>,
    /// Start of validity (whole seconds are kept).
    pub not_before: DateTime<Utc>,
    /// End of validity; must be after `not_before`.
    pub not_after: DateTime<Utc>,
}

/// A newly issued end-entity certificate.
#[derive(Debug, Clone)]
pub struct IssuedLeaf {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key as PKCS#8 PEM, when the CA generated it.
    pub key_pem: Option<String>,
}

/// A CA: its certificate and private key.
pub struct CertAuthority {
    cert_der: Vec<u8>,
    subject: Name,
    ski: Vec<u8>,
    key: KeyPair,
}

impl std::fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAuthority")
            .field("subject", &self.subject.to_string())
            .field("key", &self.key)
            .finish()
    }
}

/// The builder profile: exactly the names and extensions we decided on.
struct Plan {
    issuer: Name,
    subject: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for Plan {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &x509_cert::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

fn request_err(reason: impl Into<String>) -> PkiError {
    PkiError::InvalidRequest {
        reason: reason.into(),
    }
}

/// A Name of CN (and O) as UTF8Strings, built as DER so no RFC 4514 escaping
/// is involved.
fn make_name(cn: &str, org: Option<&str>) -> Result<Name, PkiError> {
    fn rdn(out: &mut Vec<u8>, oid: &[u8], value: &str) {
        let mut atv = tlv(tag::OID, oid);
        write_tlv(&mut atv, tag::UTF8_STRING, value.as_bytes());
        write_tlv(out, tag::SET, &tlv(tag::SEQUENCE, &atv));
    }
    for (what, v) in [("common name", Some(cn)), ("organization", org)] {
        let Some(v) = v else { continue };
        if v.trim().is_empty() || v.chars().count() > 64 || v.chars().any(char::is_control) {
            return Err(request_err(format!(
                "{what} must be 1 to 64 printable characters"
            )));
        }
    }
    let mut seq = Vec::new();
    if let Some(o) = org {
        rdn(&mut seq, &[0x55, 0x04, 0x0a], o);
    }
    rdn(&mut seq, &[0x55, 0x04, 0x03], cn);
    Name::from_der(&tlv(tag::SEQUENCE, &seq)).map_err(PkiError::internal)
}

fn to_time(t: DateTime<Utc>) -> Result<Time, PkiError> {
    let secs = u64::try_from(t.timestamp()).map_err(|_| request_err("dates before 1970"))?;
    der::DateTime::from_unix_duration(Duration::from_secs(secs))
        .map(Time::from)
        .map_err(|_| request_err("date out of range"))
}

fn validity(not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> Result<Validity, PkiError> {
    if not_after <= not_before {
        return Err(request_err("notAfter must be later than notBefore"));
    }
    Ok(Validity::new(to_time(not_before)?, to_time(not_after)?))
}

/// A random positive serial of exactly 16 octets.
fn serial<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Result<SerialNumber, PkiError> {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[0] = (b[0] & 0x7f) | 0x01;
    SerialNumber::new(&b).map_err(PkiError::internal)
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
fn key_id(spki: &[u8]) -> Result<Vec<u8>, PkiError> {
    let mut r = Reader::der(spki);
    let seq = r.read().map_err(|e| key_err(e.0))?;
    let mut s = seq.children();
    s.read().map_err(|e| key_err(e.0))?;
    let bits = s
        .read()
        .and_then(|t| t.bit_string_bytes())
        .map_err(|e| key_err(e.0))?;
    Ok(Sha1::digest(bits).to_vec())
}

fn ext<T: Encode + const_oid::AssociatedOid>(
    value: &T,
    critical: bool,
) -> Result<Extension, PkiError> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(PkiError::internal)?)
            .map_err(PkiError::internal)?,
    })
}

fn spki_owned(spki: &[u8]) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
    SubjectPublicKeyInfoOwned::from_der(spki).map_err(key_err)
}

fn ca_extensions(
    subject_ski: &[u8],
    issuer_ski: Option<&[u8]>,
    path_len: Option<u8>,
) -> Result<Vec<Extension>, PkiError> {
    let mut exts = vec![
        ext(
            &BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            },
            true,
        )?,
        ext(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true)?,
        ext(
            &SubjectKeyIdentifier(
                OctetString::new(subject_ski.to_vec()).map_err(PkiError::internal)?,
            ),
            false,
        )?,
    ];
    if let Some(aki) = issuer_ski {
        exts.push(authority_key_id(aki)?);
    }
    Ok(exts)
}

fn authority_key_id(issuer_ski: &[u8]) -> Result<Extension, PkiError> {
    ext(
        &AuthorityKeyIdentifier {
            key_identifier: Some(
                OctetString::new(issuer_ski.to_vec()).map_err(PkiError::internal)?,
            ),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
        false,
    )
}

impl CertAuthority {
    /// A self-signed root CA with a fresh key.
    pub fn new_root<R: rand::CryptoRng + ?Sized>(
        spec: &CaSpec,
        rng: &mut R,
    ) -> Result<Self, PkiError> {
        let key = KeyPair::generate(spec.key_type, rng)?;
        let subject = make_name(&spec.common_name, spec.organization.as_deref())?;
        let public = key.public_key()?;
        let ski = key_id(public.spki_der())?;
        let plan = Plan {
            issuer: subject.clone(),
            subject: subject.clone(),
            extensions: ca_extensions(&ski, None, spec.path_len)?,
        };
        let builder = CertificateBuilder::new(
            plan,
            serial(rng)?,
            validity(spec.not_before, spec.not_after)?,
            spki_owned(public.spki_der())?,
        )
        .map_err(PkiError::internal)?;
        let cert_der = key.sign(builder, rng)?;
        Ok(CertAuthority {
            cert_der,
            subject,
            ski,
            key,
        })
    }

    /// An intermediate CA with a fresh key, signed by `self`.
    pub fn issue_intermediate<R: rand::CryptoRng + ?Sized>(
        &self,
        spec: &CaSpec,
        rng: &mut R,
    ) -> Result<CertAuthority, PkiError> {
        let key = KeyPair::generate(spec.key_type, rng)?;
        let subject = make_name(&spec.common_name, spec.organization.as_deref())?;
        let public = key.public_key()?;
        let ski = key_id(public.spki_der())?;
        let plan = Plan {
            issuer: self.subject.clone(),
            subject: subject.clone(),
            extensions: ca_extensions(&ski, Some(&self.ski), spec.path_len)?,
        };
        let builder = CertificateBuilder::new(
            plan,
            serial(rng)?,
            validity(spec.not_before, spec.not_after)?,
            spki_owned(public.spki_der())?,
        )
        .map_err(PkiError::internal)?;
        let cert_der = self.key.sign(builder, rng)?;
        Ok(CertAuthority {
            cert_der,
            subject,
            ski,
            key,
        })
    }

    /// An end-entity S/MIME certificate signed by `self`.
    pub fn issue_leaf<R: rand::CryptoRng + ?Sized>(
        &self,
        spec: &LeafSpec,
        rng: &mut R,
    ) -> Result<IssuedLeaf, PkiError> {
        let (public, key_pem) = match &spec.key {
            LeafKey::Existing(p) => (p.clone(), None),
            LeafKey::Generate(kind) => {
                let k = KeyPair::generate(*kind, rng)?;
                (k.public_key()?, Some(k.to_pkcs8_pem()?))
            }
        };
        let mut sans = Vec::new();
        if let Some(email) = &spec.email {
            email
                .parse::<Address>()
                .map_err(|e| request_err(e.to_string()))?;
            let v = Ia5String::new(email).map_err(|_| request_err("email must be ASCII"))?;
            sans.push(GeneralName::Rfc822Name(v));
        }
        if let Some(dns) = &spec.dns {
            let d = dns
                .parse::<DomainName>()
                .map_err(|e| request_err(e.to_string()))?;
            let v =
                Ia5String::new(d.as_str()).map_err(|_| request_err("DNS name must be ASCII"))?;
            sans.push(GeneralName::DnsName(v));
        }
        let usages = match public.family {
            KeyFamily::Rsa => KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment,
            KeyFamily::Ec => KeyUsages::DigitalSignature | KeyUsages::KeyAgreement,
            KeyFamily::Ed25519 => KeyUsages::DigitalSignature.into(),
        };
        let mut extensions = vec![
            ext(
                &BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                },
                true,
            )?,
            ext(&KeyUsage(usages), true)?,
            ext(
                &ExtendedKeyUsage(vec![rfc5912::ID_KP_EMAIL_PROTECTION]),
                false,
            )?,
        ];
        if !sans.is_empty() {
            extensions.push(ext(&SubjectAltName(sans), false)?);
        }
        if !spec.policies.is_empty() {
            let infos = spec
                .policies
                .iter()
                .map(|p| {
                    ObjectIdentifier::new(p)
                        .map(|oid| PolicyInformation {
                            policy_identifier: oid,
                            policy_qualifiers: None,
                        })
                        .map_err(|_| request_err(format!("policy {p:?} is not a dotted OID")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            extensions.push(ext(&CertificatePolicies(infos), false)?);
        }
        extensions.push(ext(
            &SubjectKeyIdentifier(
                OctetString::new(key_id(public.spki_der())?).map_err(PkiError::internal)?,
            ),
            false,
        )?);
        extensions.push(authority_key_id(&self.ski)?);

        let plan = Plan {
            issuer: self.subject.clone(),
            subject: make_name(&spec.subject_cn, None)?,
            extensions,
        };
        let builder = CertificateBuilder::new(
            plan,
            serial(rng)?,
            validity(spec.not_before, spec.not_after)?,
            spki_owned(public.spki_der())?,
        )
        .map_err(PkiError::internal)?;
        Ok(IssuedLeaf {
            cert_der: self.key.sign(builder, rng)?,
            key_pem,
        })
    }

    /// A CA from its certificate (DER) and PKCS#8 PEM private key. Fails when
    /// the key is not the certificate's, or the certificate is not a CA.
    pub fn load(cert_der: &[u8], key_pem: &str) -> Result<Self, PkiError> {
        let parsed = parse_certificate_der(cert_der)?;
        if !parsed.is_ca {
            return Err(request_err(format!(
                "{} is not a CA certificate",
                parsed.subject
            )));
        }
        let key = KeyPair::from_pkcs8_pem(key_pem)?;
        let view = CertView::parse(cert_der).map_err(|e| PkiError::invalid(e.0))?;
        let cert_spki = spki_owned(view.spki)?;
        let key_spki = spki_owned(key.public_key()?.spki_der())?;
        if cert_spki != key_spki {
            return Err(key_err(
                "the private key does not belong to the certificate",
            ));
        }
        let cert = x509_cert::Certificate::from_der(cert_der).map_err(PkiError::internal)?;
        let ski = match view.ski {
            Some(s) => s.to_vec(),
            None => key_id(view.spki)?,
        };
        Ok(CertAuthority {
            cert_der: cert_der.to_vec(),
            subject: cert.tbs_certificate().subject().clone(),
            ski,
            key,
        })
    }

    /// A CA from a certificate and key without checking that the certificate
    /// is a CA: lets tests make a leaf pretend to be an issuer.
    #[cfg(test)]
    pub(crate) fn from_parts_unchecked(cert_der: &[u8], key: KeyPair) -> Result<Self, PkiError> {
        let view = CertView::parse(cert_der).map_err(|e| PkiError::invalid(e.0))?;
        let cert = x509_cert::Certificate::from_der(cert_der).map_err(PkiError::internal)?;
        Ok(CertAuthority {
            cert_der: cert_der.to_vec(),
            subject: cert.tbs_certificate().subject().clone(),
            ski: key_id(view.spki)?,
            key,
        })
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate as the directory sees it.
    pub fn certificate(&self) -> Result<Certificate, PkiError> {
        parse_certificate_der(&self.cert_der)
    }

    /// The CA's private key as PKCS#8 PEM.
    pub fn key_pem(&self) -> Result<String, PkiError> {
        self.key.to_pkcs8_pem()
    }

    /// The CA's key type.
    pub fn key_type(&self) -> KeyType {
        self.key.key_type()
    }

    /// Signs `content` as an opaque CMS SignedData (`.p7m`, DER): eContent
    /// id-data holding `content`, this CA's certificate in `certificates`,
    /// one SignerInfo (issuer and serial, contentType and messageDigest
    /// attributes, SHA-256; SHA-384 for P-384 and SHA-512 for Ed25519
    /// keys). How a publisher signs a trust bundle; made with the `cms`
    /// crate's builder.
    pub fn sign_cms<R: rand::CryptoRng + ?Sized>(
        &self,
        content: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, PkiError> {
        use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
        use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
        use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};

        let cert = x509_cert::Certificate::from_der(&self.cert_der).map_err(PkiError::internal)?;
        let econtent = der::Any::new(der::Tag::OctetString, content).map_err(PkiError::internal)?;
        let eci = EncapsulatedContentInfo {
            econtent_type: const_oid::db::rfc5911::ID_DATA,
            econtent: Some(econtent),
        };
        let digest = x509_cert::spki::AlgorithmIdentifierOwned {
            oid: match self.key.key_type() {
                KeyType::EcdsaP384 => rfc5912::ID_SHA_384,
                KeyType::Ed25519 => rfc5912::ID_SHA_512,
                _ => rfc5912::ID_SHA_256,
            },
            parameters: None,
        };
        let tbs = cert.tbs_certificate();
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        });
        let signer =
            SignerInfoBuilder::new(sid, digest.clone(), &eci, None).map_err(PkiError::internal)?;
        let mut builder = SignedDataBuilder::new(&eci);
        builder
            .add_digest_algorithm(digest)
            .map_err(PkiError::internal)?
            .add_certificate(CertificateChoices::Certificate(cert.clone()))
            .map_err(PkiError::internal)?;
        match &self.key.0 {
            KeyInner::Rsa(k) => builder.add_signer_info_with_rng::<_, rsa::pkcs1v15::Signature, _>(
                signer,
                k.as_ref(),
                &mut Bridge(rng),
            ),
            KeyInner::P256(k) => builder.add_signer_info::<_, p256::ecdsa::DerSignature>(signer, k),
            KeyInner::P384(k) => builder.add_signer_info::<_, p384::ecdsa::DerSignature>(signer, k),
            KeyInner::Ed25519(k) => {
                builder.add_signer_info::<_, ed25519_dalek::Signature>(signer, k)
            }
        }
        .map_err(PkiError::internal)?;
        builder
            .build()
            .map_err(PkiError::internal)?
            .to_der()
            .map_err(PkiError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Assurance, Binding, KeyUsage as Ku, TrustStatus};
    use crate::pki::testkit::{ca_spec, leaf_spec, now, pki, rng};
    use crate::pki::{TrustStore, bind};

    const EMAIL_PROTECTION: &str = "1.3.6.1.5.5.7.3.4";

    #[test]
    fn issued_certificates_carry_the_profile() {
        let p = pki(KeyType::EcdsaP256, 20);
        assert!(p.root_cert.is_ca && p.inter_cert.is_ca && !p.leaf.is_ca);
        assert_eq!(p.root_cert.subject, "CN=Test Root CA,O=Example Health");
        assert_eq!(p.root_cert.issuer, p.root_cert.subject);
        assert_eq!(p.inter_cert.issuer, p.root_cert.subject);
        assert_eq!(p.leaf.issuer, p.inter_cert.subject);
        assert_eq!(p.root_cert.key_usage, vec![Ku::KeyCertSign, Ku::CrlSign]);
        let l = &p.leaf;
        assert_eq!(l.subject, "CN=Alice Example");
        assert_eq!(l.email_addresses, vec!["Alice@Example.org".to_string()]);
        assert!(l.dns_names.is_empty());
        assert_eq!(l.key_usage, vec![Ku::DigitalSignature, Ku::KeyAgreement]);
        assert_eq!(l.extended_key_usage, vec![EMAIL_PROTECTION.to_string()]);
        assert_eq!(
            l.policies,
            vec!["2.16.840.1.101.3.2.1.3.3", "1.3.6.1.4.1.41179.1.2"]
        );
        assert_eq!(l.assurance, Some(Assurance::Medium));
        assert_eq!(l.key_algorithm, "ecdsa-p256");
        assert_eq!(l.serial.len(), 32, "{}", l.serial);
        assert_eq!(l.not_before.to_rfc3339(), "2030-01-01T00:00:00+00:00");
        // AKI of each certificate is the SKI of its issuer.
        let root_v = CertView::parse(&p.root_cert.der).unwrap();
        let inter_v = CertView::parse(&p.inter_cert.der).unwrap();
        let leaf_v = CertView::parse(&p.leaf.der).unwrap();
        assert_eq!(inter_v.aki, root_v.ski);
        assert_eq!(leaf_v.aki, inter_v.ski);
        assert!(root_v.ski.is_some_and(|s| s.len() == 20));
        assert_eq!(
            bind(l, &"alice@example.org".parse().unwrap()).unwrap(),
            Binding::Address
        );
    }

    #[test]
    fn key_algorithms_and_key_usage_follow_the_key() {
        let mut r = rng(21);
        let ca = CertAuthority::new_root(&ca_spec("Root", KeyType::EcdsaP384), &mut r).unwrap();
        let want = [
            (
                KeyType::Rsa2048,
                "rsa-2048",
                vec![Ku::DigitalSignature, Ku::KeyEncipherment],
            ),
            (
                KeyType::EcdsaP256,
                "ecdsa-p256",
                vec![Ku::DigitalSignature, Ku::KeyAgreement],
            ),
            (
                KeyType::EcdsaP384,
                "ecdsa-p384",
                vec![Ku::DigitalSignature, Ku::KeyAgreement],
            ),
            (KeyType::Ed25519, "ed25519", vec![Ku::DigitalSignature]),
        ];
        for (kt, name, ku) in want {
            let leaf = ca
                .issue_leaf(&leaf_spec("a@example.org", LeafKey::Generate(kt)), &mut r)
                .unwrap();
            let c = parse_certificate_der(&leaf.cert_der).unwrap();
            assert_eq!(c.key_algorithm, name);
            assert_eq!(c.key_usage, ku);
            // The returned private key belongs to the certificate.
            let key = KeyPair::from_pkcs8_pem(leaf.key_pem.as_deref().unwrap()).unwrap();
            assert_eq!(key.key_type(), kt);
            let view = CertView::parse(&c.der).unwrap();
            assert_eq!(key.public_key().unwrap().spki_der(), view.spki);
        }
        assert_eq!(ca.certificate().unwrap().key_algorithm, "ecdsa-p384");
    }

    #[test]
    fn shared_key_domain_bound_leaf() {
        let p = pki(KeyType::EcdsaP256, 22);
        let mut r = rng(23);
        let shared = KeyPair::generate(KeyType::EcdsaP256, &mut r)
            .unwrap()
            .public_key()
            .unwrap();
        let spec = LeafSpec {
            email: None,
            dns: Some("Direct.Example.org".into()),
            ..leaf_spec("x@example.org", LeafKey::Existing(shared.clone()))
        };
        let a = p.inter.issue_leaf(&spec, &mut r).unwrap();
        let b = p.inter.issue_leaf(&spec, &mut r).unwrap();
        assert!(a.key_pem.is_none());
        let (a, b) = (
            parse_certificate_der(&a.cert_der).unwrap(),
            parse_certificate_der(&b.cert_der).unwrap(),
        );
        assert_ne!(a.serial, b.serial);
        assert_eq!(a.dns_names, vec!["direct.example.org".to_string()]);
        assert_eq!(
            bind(&a, &"direct.example.org".parse().unwrap()).unwrap(),
            Binding::Domain
        );
        let store = TrustStore::new(std::slice::from_ref(&p.root_cert));
        let v = store.evaluate(&b, std::slice::from_ref(&p.inter_cert), now());
        assert_eq!(v.status, TrustStatus::Trusted, "{v:?}");
    }

    #[test]
    fn same_seed_same_bytes() {
        let a = pki(KeyType::EcdsaP256, 24);
        let b = pki(KeyType::EcdsaP256, 24);
        assert_eq!(a.leaf.der, b.leaf.der);
        assert_eq!(a.root_cert.der, b.root_cert.der);
        assert_ne!(pki(KeyType::EcdsaP256, 25).leaf.der, a.leaf.der);
    }

    #[test]
    fn export_and_load_round_trip() {
        for (kt, seed) in [
            (KeyType::EcdsaP256, 26),
            (KeyType::Rsa2048, 27),
            (KeyType::Ed25519, 28),
        ] {
            let p = pki(kt, seed);
            let pem = p.inter.key_pem().unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
            let loaded = CertAuthority::load(p.inter.cert_der(), &pem).unwrap();
            assert_eq!(loaded.key_type(), kt);
            let mut r = rng(seed + 100);
            let leaf = loaded
                .issue_leaf(
                    &leaf_spec("b@example.org", LeafKey::Generate(KeyType::EcdsaP256)),
                    &mut r,
                )
                .unwrap();
            let leaf = parse_certificate_der(&leaf.cert_der).unwrap();
            let store = TrustStore::new(std::slice::from_ref(&p.root_cert));
            let v = store.evaluate(&leaf, std::slice::from_ref(&p.inter_cert), now());
            assert_eq!(v.status, TrustStatus::Trusted, "{kt:?}: {v:?}");
        }
    }

    #[test]
    fn load_refuses_mismatched_key_and_non_ca() {
        let p = pki(KeyType::EcdsaP256, 29);
        let err = CertAuthority::load(p.inter.cert_der(), &p.root.key_pem().unwrap()).unwrap_err();
        assert!(matches!(err, PkiError::InvalidKey { .. }), "{err}");
        let err = CertAuthority::load(&p.leaf.der, &p.inter.key_pem().unwrap()).unwrap_err();
        assert!(matches!(err, PkiError::InvalidRequest { .. }), "{err}");
        assert!(CertAuthority::load(p.inter.cert_der(), "not a key").is_err());
        assert!(CertAuthority::load(b"junk", &p.inter.key_pem().unwrap()).is_err());
    }

    #[test]
    fn bad_requests_are_refused() {
        let p = pki(KeyType::EcdsaP256, 30);
        let mut r = rng(31);
        let key = || LeafKey::Generate(KeyType::EcdsaP256);
        let base = leaf_spec("a@example.org", key());
        let cases = [
            LeafSpec {
                email: Some("not an address".into()),
                ..base.clone()
            },
            LeafSpec {
                email: Some("ü@example.org".into()),
                ..base.clone()
            },
            LeafSpec {
                dns: Some("bad_name.org".into()),
                ..base.clone()
            },
            LeafSpec {
                not_after: base.not_before,
                ..base.clone()
            },
            LeafSpec {
                policies: vec!["medium".into()],
                ..base.clone()
            },
            LeafSpec {
                subject_cn: " ".into(),
                ..base.clone()
            },
            LeafSpec {
                subject_cn: "x".repeat(65),
                ..base.clone()
            },
            LeafSpec {
                not_before: crate::pki::testkit::ymd(1960, 1, 1),
                ..base.clone()
            },
        ];
        for spec in cases {
            let err = p.inter.issue_leaf(&spec, &mut r).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::error::ErrorKind::InvalidInput,
                "{spec:?}: {err}"
            );
        }
        // Names that need RFC 4514 escaping are fine: they are built as DER.
        let spec = LeafSpec {
            subject_cn: "Smith, John + \"Jr\"".into(),
            ..base
        };
        let c =
            parse_certificate_der(&p.inter.issue_leaf(&spec, &mut r).unwrap().cert_der).unwrap();
        assert_eq!(c.subject, "CN=Smith\\, John \\+ \\\"Jr\\\"");
    }

    #[test]
    fn public_key_refuses_what_it_cannot_certify() {
        assert!(PublicKey::from_spki_der(b"\x30\x00").is_err());
        assert!(PublicKey::from_spki_der(&[]).is_err());
    }
}

/// A self-signed TLS server certificate with a fresh ECDSA P-256 key, for
/// development (`ccdir init --tls`): CN the first name, subjectAltName
/// dNSName for each name (an IPv4 literal becomes an iPAddress),
/// keyUsage digitalSignature, extKeyUsage serverAuth.
pub fn self_signed_server<R: rand::CryptoRng + ?Sized>(
    names: &[String],
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    rng: &mut R,
) -> Result<IssuedLeaf, PkiError> {
    let first = names
        .first()
        .ok_or_else(|| request_err("a server certificate needs a name"))?;
    let key = KeyPair::generate(KeyType::EcdsaP256, rng)?;
    let public = key.public_key()?;
    let mut sans = Vec::new();
    for name in names {
        if let Ok(ip) = name.parse::<std::net::Ipv4Addr>() {
            sans.push(GeneralName::IpAddress(
                OctetString::new(ip.octets().to_vec()).map_err(PkiError::internal)?,
            ));
        } else {
            let d = name
                .parse::<DomainName>()
                .map_err(|e| request_err(e.to_string()))?;
            sans.push(GeneralName::DnsName(
                Ia5String::new(d.as_str()).map_err(|_| request_err("DNS name must be ASCII"))?,
            ));
        }
    }
    let subject = make_name(first, None)?;
    let extensions = vec![
        ext(
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
            true,
        )?,
        ext(&KeyUsage(KeyUsages::DigitalSignature.into()), true)?,
        ext(&ExtendedKeyUsage(vec![rfc5912::ID_KP_SERVER_AUTH]), false)?,
        ext(&SubjectAltName(sans), false)?,
        ext(
            &SubjectKeyIdentifier(
                OctetString::new(key_id(public.spki_der())?).map_err(PkiError::internal)?,
            ),
            false,
        )?,
    ];
    let plan = Plan {
        issuer: subject.clone(),
        subject,
        extensions,
    };
    let builder = CertificateBuilder::new(
        plan,
        serial(rng)?,
        validity(not_before, not_after)?,
        spki_owned(public.spki_der())?,
    )
    .map_err(PkiError::internal)?;
    Ok(IssuedLeaf {
        cert_der: key.sign(builder, rng)?,
        key_pem: Some(key.to_pkcs8_pem()?),
    })
}

#[cfg(test)]
mod server_cert_tests {
    use super::*;

    #[test]
    fn self_signed_server_certificate_parses() {
        let now = Utc::now();
        let issued = self_signed_server(
            &["localhost".into(), "127.0.0.1".into()],
            now,
            now + chrono::Duration::days(30),
            &mut rand::rng(),
        )
        .unwrap();
        let cert = parse_certificate_der(&issued.cert_der).unwrap();
        assert_eq!(cert.dns_names, ["localhost"]);
        assert!(issued.key_pem.unwrap().contains("PRIVATE KEY"));
    }
}
