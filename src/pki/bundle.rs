//! Reading a trust bundle: the certificates it brings, and, when a signer
//! is configured, proof that the signer (or a certificate the signer issued)
//! signed exactly these bytes. Pure: the caller fetches the bytes and says
//! what time it is.
//!
//! What is accepted:
//! * **signer configured**: only a CMS SignedData with attached content
//!   (`.p7m`, DER/BER or PEM `PKCS7`/`CMS`), with a SignerInfo whose
//!   certificate is the configured one or chains to it (through the other
//!   certificates in the message), valid now, and whose message digest and
//!   signature verify. The bundle is the signed content: a `.p7b`, PEM or DER.
//! * **no signer**: a certs-only `.p7b`, PEM, DER, or a `.p7m` whose content
//!   is one of those; the certificates of the content are taken and the
//!   signature is not looked at (the signer's own certificates, in the
//!   outer message, are not anchors).

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::chain::TrustStore;
use super::pem::pem_blocks;
use super::signed::{ID_SIGNED_DATA, SignedDataView, SignerView};
use super::{MAX_INPUT_BYTES, PkiError, parse_certificate_der, parse_certificates};
use crate::domain::{Certificate, TrustStatus};
use crate::error::ErrorKind;

/// Largest bundle read: the signed wrapping around a maximal certificate list.
pub const MAX_BUNDLE_BYTES: usize = 2 * MAX_INPUT_BYTES;

/// Why a bundle was refused. Each variant is one refresh status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not a bundle we can read (`bad-format`).
    #[error("{0}")]
    BadFormat(String),
    /// Not signed by the configured signer, or not signed at all (`bad-signer`).
    #[error("{0}")]
    BadSigner(String),
    /// Signed by the configured signer, but the content or the signature
    /// was altered (`signature-mismatch`).
    #[error("{0}")]
    SignatureMismatch(String),
}

impl BundleError {
    /// Where this error sits in the crate's error table.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BundleError::BadFormat(_) => ErrorKind::InvalidCertificate,
            BundleError::BadSigner(_) | BundleError::SignatureMismatch(_) => {
                ErrorKind::BadSignature
            }
        }
    }
}

/// What a bundle holds.
#[derive(Debug, Clone)]
pub struct BundleContents {
    /// The certificates, in the bundle's order.
    pub certificates: Vec<Certificate>,
    /// The subject of the certificate whose signature was verified, when a
    /// signer is configured.
    pub signed_by: Option<String>,
}

fn bad_format(e: impl std::fmt::Display) -> BundleError {
    BundleError::BadFormat(e.to_string())
}

/// The ContentInfo bytes, when `bytes` is one (DER/BER, or a PEM `PKCS7` /
/// `CMS` block) holding SignedData; `None` for anything else.
fn content_info(bytes: &[u8]) -> Option<Cow<'_, [u8]>> {
    let body = bytes.trim_ascii_start();
    if body.first() == Some(&0x30) {
        let is_signed_data = super::asn1::Reader::ber(body)
            .read()
            .ok()
            .and_then(|t| t.children().read().ok())
            .is_some_and(|oid| oid.value == ID_SIGNED_DATA);
        return is_signed_data.then_some(Cow::Borrowed(body));
    }
    let blocks = pem_blocks(body).ok()?;
    let mut p7 = blocks
        .into_iter()
        .filter(|b| ["PKCS7", "CMS", "PKCS #7 SIGNED DATA"].contains(&b.label.as_str()));
    let first = p7.next()?;
    // Several PKCS7 blocks can only be a list of certs-only bundles.
    p7.next().is_none().then_some(Cow::Owned(first.der))
}

/// Reads a bundle; see the module documentation for what is accepted.
/// `signer` is the configured signer certificate; `now` judges its validity.
pub fn read_bundle(
    bytes: &[u8],
    signer: Option<&Certificate>,
    now: DateTime<Utc>,
) -> Result<BundleContents, BundleError> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(bad_format(format!(
            "bundle is {} bytes; the limit is {MAX_BUNDLE_BYTES}",
            bytes.len()
        )));
    }
    let Some(ci) = content_info(bytes) else {
        // PEM or DER certificates: never signed.
        let certificates = parse_certificates(bytes).map_err(bad_format)?;
        if signer.is_some() {
            return Err(BundleError::BadSigner(
                "the bundle is not a signed CMS message (.p7m), but a signer is configured".into(),
            ));
        }
        return Ok(BundleContents {
            certificates,
            signed_by: None,
        });
    };
    let sd = SignedDataView::parse(&ci)
        .map_err(|e| bad_format(format!("malformed CMS SignedData: {e}")))?;
    let Some(content) = sd.econtent.as_deref() else {
        if !sd.signers.is_empty() {
            return Err(bad_format(
                "the CMS signature is detached: the bundle's content is not in it",
            ));
        }
        if signer.is_some() {
            return Err(BundleError::BadSigner(
                "the bundle is a certs-only .p7b without a signature, but a signer is configured"
                    .into(),
            ));
        }
        let certificates = parse_certificates(&ci).map_err(bad_format)?;
        return Ok(BundleContents {
            certificates,
            signed_by: None,
        });
    };
    let signed_by = match signer {
        Some(signer) => Some(check_signature(&sd, content, signer, now)?),
        None => None,
    };
    let certificates = parse_certificates(content).map_err(|e| {
        bad_format(format!(
            "the signed content is not a certificate bundle: {e}"
        ))
    })?;
    Ok(BundleContents {
        certificates,
        signed_by,
    })
}

/// Finds a SignerInfo by the configured signer (or a certificate it issued)
/// whose signature verifies; returns that certificate's subject.
fn check_signature(
    sd: &SignedDataView<'_>,
    content: &[u8],
    signer: &Certificate,
    now: DateTime<Utc>,
) -> Result<String, BundleError> {
    if sd.signers.is_empty() {
        return Err(BundleError::BadSigner(
            "the CMS message has no signature, but a signer is configured".into(),
        ));
    }
    let included: Vec<Certificate> = sd
        .certificates
        .iter()
        .filter_map(|der| parse_certificate_der(der).ok())
        .collect();
    let mut mismatch = None;
    let mut wrong_signer = None;
    for info in &sd.signers {
        let cert = match signer_certificate(info, &included, signer) {
            Some(c) => c,
            None => {
                wrong_signer.get_or_insert_with(|| {
                    "the signer's certificate is not in the message and is not the configured signer"
                        .to_owned()
                });
                continue;
            }
        };
        if let Err(why) = acceptable(cert, &included, signer, now) {
            wrong_signer.get_or_insert(why);
            continue;
        }
        match info.verify(sd.econtent_type, content, &cert.der) {
            Ok(()) => return Ok(cert.subject.clone()),
            Err(why) => {
                mismatch.get_or_insert(format!("signature by {}: {why}", cert.subject));
            }
        }
    }
    Err(match (mismatch, wrong_signer) {
        (Some(m), _) => BundleError::SignatureMismatch(m),
        (None, Some(w)) => BundleError::BadSigner(w),
        (None, None) => BundleError::BadSigner("no usable signature".into()),
    })
}

/// The certificate a SignerInfo names: one in the message, or the
/// configured signer itself (a publisher may leave its certificate out).
fn signer_certificate<'c>(
    info: &SignerView<'_>,
    included: &'c [Certificate],
    signer: &'c Certificate,
) -> Option<&'c Certificate> {
    included
        .iter()
        .find(|c| info.names(&c.der))
        .or_else(|| info.names(&signer.der).then_some(signer))
}

/// Whether `cert` may sign the bundle: it is the configured signer, or a
/// path leads from it to the configured signer; either way valid at `now`.
fn acceptable(
    cert: &Certificate,
    included: &[Certificate],
    signer: &Certificate,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let store = TrustStore::new(std::slice::from_ref(signer));
    let verdict = store.evaluate(cert, included, now);
    if verdict.status == TrustStatus::Trusted {
        return Ok(());
    }
    Err(if cert.der == signer.der {
        format!(
            "the configured signer {} is not valid now: {}",
            signer.subject, verdict.reason
        )
    } else {
        format!(
            "signed by {}, which is neither the configured signer {} nor issued by it ({})",
            cert.subject, signer.subject, verdict.reason
        )
    })
}

/// Reads a configured signer certificate (PEM or DER, exactly one).
pub fn read_signer_certificate(bytes: &[u8]) -> Result<Certificate, PkiError> {
    let mut certs = parse_certificates(bytes)?;
    if certs.len() != 1 {
        return Err(PkiError::invalid(format!(
            "a bundle signer must be one certificate; found {}",
            certs.len()
        )));
    }
    Ok(certs.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::{CertAuthority, KeyType};
    use crate::pki::certs_only_pkcs7;
    use crate::pki::testkit::{ca_spec, now, pki, rng};

    /// A bundle publisher: a root, a signing certificate it issued, and the
    /// anchors the bundle carries (another PKI's root and intermediate).
    struct Publisher {
        root: CertAuthority,
        signing: CertAuthority,
        p7b: Vec<u8>,
        anchors: Vec<Certificate>,
    }

    fn publisher(kt: KeyType, seed: u64) -> Publisher {
        let mut r = rng(seed);
        let root = CertAuthority::new_root(&ca_spec("Bundle Root", kt), &mut r).unwrap();
        let signing = root
            .issue_intermediate(&ca_spec("Bundle Signing", kt), &mut r)
            .unwrap();
        let carried = pki(KeyType::EcdsaP256, seed + 1000);
        let anchors = vec![carried.root_cert.clone(), carried.inter_cert.clone()];
        let p7b = certs_only_pkcs7(&[&anchors[0].der[..], &anchors[1].der[..]]);
        Publisher {
            root,
            signing,
            p7b,
            anchors,
        }
    }

    fn fingerprints(c: &[Certificate]) -> Vec<String> {
        c.iter().map(|c| c.fingerprint.to_hex()).collect()
    }

    #[test]
    fn a_plain_p7b_pem_or_der_gives_its_certificates() {
        let p = publisher(KeyType::EcdsaP256, 1);
        let got = read_bundle(&p.p7b, None, now()).unwrap();
        assert_eq!(fingerprints(&got.certificates), fingerprints(&p.anchors));
        assert_eq!(got.signed_by, None);
        let pem = crate::pki::to_pem("CERTIFICATE", &[&p.anchors[0].der, &p.anchors[1].der]);
        let got = read_bundle(pem.as_bytes(), None, now()).unwrap();
        assert_eq!(fingerprints(&got.certificates), fingerprints(&p.anchors));
        let got = read_bundle(&p.anchors[0].der, None, now()).unwrap();
        assert_eq!(got.certificates.len(), 1);
    }

    #[test]
    fn a_signed_p7m_verifies_for_every_key_type() {
        for (i, kt) in [
            KeyType::EcdsaP256,
            KeyType::EcdsaP384,
            KeyType::Rsa2048,
            KeyType::Ed25519,
        ]
        .into_iter()
        .enumerate()
        {
            let p = publisher(kt, 10 + i as u64);
            let p7m = p.signing.sign_cms(&p.p7b, &mut rng(1)).unwrap();
            // Configured as the signing certificate itself, or as its issuer.
            for configured in [
                p.signing.certificate().unwrap(),
                p.root.certificate().unwrap(),
            ] {
                let got = read_bundle(&p7m, Some(&configured), now()).unwrap();
                assert_eq!(
                    fingerprints(&got.certificates),
                    fingerprints(&p.anchors),
                    "{kt:?}"
                );
                assert_eq!(
                    got.signed_by.as_deref(),
                    Some(p.signing.certificate().unwrap().subject.as_str())
                );
            }
            // Without a signer the content is taken, not the signer's certificate.
            let got = read_bundle(&p7m, None, now()).unwrap();
            assert_eq!(
                fingerprints(&got.certificates),
                fingerprints(&p.anchors),
                "{kt:?}"
            );
            // PEM-wrapped works the same.
            let pem = crate::pki::to_pem("PKCS7", &[&p7m]);
            let signer = p.root.certificate().unwrap();
            assert!(
                read_bundle(pem.as_bytes(), Some(&signer), now()).is_ok(),
                "{kt:?}"
            );
        }
    }

    #[test]
    fn a_tampered_p7m_is_a_signature_mismatch() {
        let p = publisher(KeyType::EcdsaP256, 20);
        let p7m = p.signing.sign_cms(&p.p7b, &mut rng(2)).unwrap();
        let signer = p.signing.certificate().unwrap();
        // A byte of the content (inside the first carried certificate).
        let at = p7m
            .windows(p.anchors[0].der.len())
            .position(|w| w == p.anchors[0].der.as_slice())
            .unwrap()
            + 40;
        let mut content = p7m.clone();
        content[at] ^= 0x01;
        match read_bundle(&content, Some(&signer), now()) {
            Err(BundleError::SignatureMismatch(why)) => assert!(why.contains("digest"), "{why}"),
            other => panic!("{other:?}"),
        }
        // The last byte of the signature.
        let mut sig = p7m.clone();
        let n = sig.len();
        sig[n - 3] ^= 0x01;
        assert!(
            matches!(
                read_bundle(&sig, Some(&signer), now()),
                Err(BundleError::SignatureMismatch(_))
            ),
            "{:?}",
            read_bundle(&sig, Some(&signer), now())
        );
    }

    #[test]
    fn another_signer_or_no_signature_is_a_bad_signer() {
        let p = publisher(KeyType::EcdsaP256, 30);
        let other = publisher(KeyType::EcdsaP256, 31);
        let p7m = other.signing.sign_cms(&p.p7b, &mut rng(3)).unwrap();
        let signer = p.root.certificate().unwrap();
        match read_bundle(&p7m, Some(&signer), now()) {
            Err(BundleError::BadSigner(why)) => assert!(why.contains("neither"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Unsigned material while a signer is configured.
        for unsigned in [p.p7b.clone(), p.anchors[0].der.clone()] {
            assert!(matches!(
                read_bundle(&unsigned, Some(&signer), now()),
                Err(BundleError::BadSigner(_))
            ));
        }
        // A signer certificate past its validity is refused too.
        let late = now() + chrono::Duration::days(365 * 20);
        assert!(matches!(
            read_bundle(
                &p.signing.sign_cms(&p.p7b, &mut rng(4)).unwrap(),
                Some(&signer),
                late
            ),
            Err(BundleError::BadSigner(_))
        ));
    }

    #[test]
    fn garbage_is_a_bad_format() {
        let p = publisher(KeyType::EcdsaP256, 40);
        let signer = p.root.certificate().unwrap();
        let p7m = p.signing.sign_cms(&p.p7b, &mut rng(5)).unwrap();
        let not_a_bundle = p.signing.sign_cms(b"hello", &mut rng(6)).unwrap();
        let mut cut = p7m.clone();
        cut.truncate(p7m.len() / 2);
        for (what, bytes) in [
            ("html", b"<html>404</html>".to_vec()),
            ("empty", Vec::new()),
            ("junk der", vec![0x30, 0x03, 0x02, 0x01, 0x01]),
            ("truncated", cut),
            ("signed text", not_a_bundle),
            ("huge", vec![b' '; MAX_BUNDLE_BYTES + 1]),
        ] {
            for s in [None, Some(&signer)] {
                assert!(
                    matches!(
                        read_bundle(&bytes, s, now()),
                        Err(BundleError::BadFormat(_))
                    ),
                    "{what} {:?}",
                    read_bundle(&bytes, s, now())
                );
            }
        }
    }

    #[test]
    fn signer_files_hold_one_certificate() {
        let p = publisher(KeyType::EcdsaP256, 50);
        let pem = crate::pki::to_pem("CERTIFICATE", &[p.root.cert_der()]);
        assert!(read_signer_certificate(pem.as_bytes()).is_ok());
        assert!(read_signer_certificate(&p.p7b).is_err());
        assert!(read_signer_certificate(b"nope").is_err());
    }
}
