//! Reading certificates: format detection (PEM, DER certificate, DER/BER
//! PKCS#7) and turning one DER certificate into a [`domain::Certificate`].
//!
//! [`domain::Certificate`]: crate::domain::Certificate

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};
use der::Decode;
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    BasicConstraints, CertificatePolicies, ExtendedKeyUsage, KeyUsage as X509KeyUsage,
    SubjectAltName,
};

use super::asn1::{Reader, tag};
use super::assurance::assurance_of_policies;
use super::names::rfc4514;
use super::pem::pem_blocks;
use super::pkcs7::{looks_like_content_info, pkcs7_certificates};
use super::verify::key_algorithm_name;
use super::view::CertView;
use super::{MAX_CERTIFICATES, MAX_INPUT_BYTES, PkiError};
use crate::domain::{Certificate, Fingerprint, KeyUsage};

/// PEM labels that hold one certificate.
const CERT_LABELS: &[&str] = &["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"];
/// PEM labels that hold a PKCS#7 / CMS structure.
const PKCS7_LABELS: &[&str] = &["PKCS7", "PKCS #7 SIGNED DATA", "CMS"];

fn check_size(len: usize) -> Result<(), PkiError> {
    if len > MAX_INPUT_BYTES {
        return Err(PkiError::TooLarge {
            size: len,
            limit: MAX_INPUT_BYTES,
        });
    }
    Ok(())
}

/// Reads every certificate in `bytes`, whatever the wrapping:
/// * PEM with one or more `CERTIFICATE` and/or `PKCS7` blocks (text around and
///   between the blocks, CRLF line ends and other block types are tolerated);
/// * a DER X.509 certificate;
/// * a DER or BER (indefinite-length) PKCS#7 SignedData, certs-only or signed.
///
/// Refuses inputs over [`MAX_INPUT_BYTES`], bundles over [`MAX_CERTIFICATES`],
/// and input holding no certificate at all.
pub fn parse_certificates(bytes: &[u8]) -> Result<Vec<Certificate>, PkiError> {
    check_size(bytes.len())?;
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or_else(|| PkiError::invalid("empty input"))?;
    let body = &body[start..];

    // Text may start with '0' (0x30) too, so binary means "one whole BER element".
    let starts_binary = body.first() == Some(&tag::SEQUENCE);
    let whole_element = starts_binary && {
        let mut r = Reader::ber(body);
        r.read().is_ok() && r.is_empty()
    };
    let has_pem = body.windows(11).any(|w| w == b"-----BEGIN ");
    let ders: Vec<Cow<'_, [u8]>> = if whole_element || (starts_binary && !has_pem) {
        der_items(body)?.into_iter().map(Cow::Borrowed).collect()
    } else if has_pem {
        pem_items(body)?
    } else {
        return Err(PkiError::invalid(
            "neither PEM (-----BEGIN ...) nor DER (an ASN.1 SEQUENCE)",
        ));
    };
    if ders.is_empty() {
        return Err(PkiError::invalid("no certificate found"));
    }
    if ders.len() > MAX_CERTIFICATES {
        return Err(PkiError::TooManyCertificates {
            count: ders.len(),
            limit: MAX_CERTIFICATES,
        });
    }
    ders.iter()
        .enumerate()
        .map(|(i, der)| {
            parse_certificate_der(der).map_err(|e| match e {
                PkiError::InvalidCertificate { reason } if ders.len() > 1 => {
                    PkiError::invalid(format!("certificate #{}: {reason}", i + 1))
                }
                other => other,
            })
        })
        .collect()
}

/// A binary input: one certificate or one PKCS#7 structure.
fn der_items(body: &[u8]) -> Result<Vec<&[u8]>, PkiError> {
    if looks_like_content_info(body) {
        pkcs7_certificates(body)
    } else {
        Ok(vec![body])
    }
}

fn pem_items(body: &[u8]) -> Result<Vec<Cow<'_, [u8]>>, PkiError> {
    let mut out: Vec<Cow<'_, [u8]>> = Vec::new();
    let mut ignored = Vec::new();
    for block in pem_blocks(body)? {
        let label = block.label.as_str();
        if CERT_LABELS.contains(&label) {
            let der = if label == "TRUSTED CERTIFICATE" {
                // OpenSSL's trusted form: the certificate, then its auxiliary trust data.
                let first = Reader::der(&block.der)
                    .read()
                    .map_err(|e| PkiError::invalid(format!("TRUSTED CERTIFICATE block: {e}")))?;
                first.raw.to_vec()
            } else {
                block.der
            };
            out.push(Cow::Owned(der));
        } else if PKCS7_LABELS.contains(&label) {
            let certs = pkcs7_certificates(&block.der)?;
            out.extend(certs.into_iter().map(|c| Cow::Owned(c.to_vec())));
        } else {
            ignored.push(block.label);
        }
        if out.len() > MAX_CERTIFICATES {
            return Err(PkiError::TooManyCertificates {
                count: out.len(),
                limit: MAX_CERTIFICATES,
            });
        }
    }
    if out.is_empty() && !ignored.is_empty() {
        return Err(PkiError::invalid(format!(
            "PEM holds no CERTIFICATE or PKCS7 block (found {})",
            ignored.join(", ")
        )));
    }
    Ok(out)
}

fn name(der: &[u8]) -> Result<String, PkiError> {
    rfc4514(der).map_err(|e| PkiError::invalid(format!("malformed name: {e}")))
}

fn to_utc(d: Duration) -> Result<DateTime<Utc>, PkiError> {
    i64::try_from(d.as_secs())
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| PkiError::invalid("validity date out of range"))
}

/// Serial number as lower-case hex of its value (the sign octet OpenSSL
/// also hides is dropped; at least one octet stays).
fn serial_hex(bytes: &[u8]) -> String {
    let mut b = bytes;
    while b.len() > 1 && b[0] == 0 {
        b = &b[1..];
    }
    hex::encode(b)
}

/// Reads one DER X.509 certificate into the directory's view of it.
///
/// The certificate must be DER (definite lengths); a few BER leniencies inside
/// (constructed strings, unsorted SETs) are accepted as issuers get these wrong.
/// Unknown extensions are ignored; a malformed known one is an error.
pub fn parse_certificate_der(der: &[u8]) -> Result<Certificate, PkiError> {
    check_size(der.len())?;
    let view = CertView::parse(der)
        .map_err(|e| PkiError::invalid(format!("malformed certificate: {e}")))?;
    let cert = x509_cert::Certificate::from_der(der)
        .or_else(|e| x509_cert::Certificate::from_ber(der).map_err(|_| e))
        .map_err(|e| PkiError::invalid(format!("malformed certificate: {e}")))?;
    let tbs = cert.tbs_certificate();
    let ext_err =
        |what: &str, e: der::Error| PkiError::invalid(format!("malformed {what} extension: {e}"));

    let mut email_addresses = Vec::new();
    let mut dns_names = Vec::new();
    if let Some((_, san)) = tbs
        .get_extension::<SubjectAltName>()
        .map_err(|e| ext_err("subjectAltName", e))?
    {
        for name in san.0 {
            match name {
                GeneralName::Rfc822Name(s) => email_addresses.push(s.as_str().to_owned()),
                GeneralName::DnsName(s) => dns_names.push(s.as_str().to_ascii_lowercase()),
                _ => {}
            }
        }
    }

    let mut key_usage = Vec::new();
    if let Some((_, ku)) = tbs
        .get_extension::<X509KeyUsage>()
        .map_err(|e| ext_err("keyUsage", e))?
    {
        let bits = [
            (ku.digital_signature(), KeyUsage::DigitalSignature),
            (ku.non_repudiation(), KeyUsage::ContentCommitment),
            (ku.key_encipherment(), KeyUsage::KeyEncipherment),
            (ku.data_encipherment(), KeyUsage::DataEncipherment),
            (ku.key_agreement(), KeyUsage::KeyAgreement),
            (ku.key_cert_sign(), KeyUsage::KeyCertSign),
            (ku.crl_sign(), KeyUsage::CrlSign),
            (ku.encipher_only(), KeyUsage::EncipherOnly),
            (ku.decipher_only(), KeyUsage::DecipherOnly),
        ];
        key_usage = bits
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, k)| k)
            .collect();
    }

    let extended_key_usage = tbs
        .get_extension::<ExtendedKeyUsage>()
        .map_err(|e| ext_err("extKeyUsage", e))?
        .map(|(_, eku)| eku.0.iter().map(|o| o.to_string()).collect())
        .unwrap_or_default();

    let policies: Vec<String> = tbs
        .get_extension::<CertificatePolicies>()
        .map_err(|e| ext_err("certificatePolicies", e))?
        .map(|(_, p)| {
            p.0.iter()
                .map(|pi| pi.policy_identifier.to_string())
                .collect()
        })
        .unwrap_or_default();

    let is_ca = tbs
        .get_extension::<BasicConstraints>()
        .map_err(|e| ext_err("basicConstraints", e))?
        .is_some_and(|(_, bc)| bc.ca);

    Ok(Certificate {
        fingerprint: Fingerprint(Sha256::digest(der).into()),
        der: der.to_vec(),
        subject: name(view.subject)?,
        issuer: name(view.issuer)?,
        serial: serial_hex(tbs.serial_number().as_bytes()),
        not_before: to_utc(tbs.validity().not_before.to_unix_duration())?,
        not_after: to_utc(tbs.validity().not_after.to_unix_duration())?,
        email_addresses,
        dns_names,
        key_usage,
        extended_key_usage,
        assurance: assurance_of_policies(&policies),
        policies,
        key_algorithm: key_algorithm_name(view.spki),
        is_ca,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::pki::asn1::{Reader, Tlv};
    use crate::pki::ca::KeyType;
    use crate::pki::testkit::{Pki, pki};
    use crate::pki::{certs_only_pkcs7, to_pem};
    use rand::{Rng, SeedableRng};

    fn three() -> (Pki, Vec<Vec<u8>>) {
        let p = pki(KeyType::EcdsaP256, 40);
        let ders = vec![
            p.leaf.der.clone(),
            p.inter_cert.der.clone(),
            p.root_cert.der.clone(),
        ];
        (p, ders)
    }

    fn fingerprints(certs: &[Certificate]) -> Vec<Fingerprint> {
        certs.iter().map(|c| c.fingerprint).collect()
    }

    /// Re-encodes the outer `levels` of constructed elements with indefinite
    /// lengths, as `openssl cms -stream` does.
    fn indefinite(t: Tlv<'_>, levels: usize, out: &mut Vec<u8>) {
        if levels == 0 || t.tag & 0x20 == 0 {
            out.extend_from_slice(t.raw);
            return;
        }
        out.extend_from_slice(&[t.tag, 0x80]);
        let mut r = t.children();
        while !r.is_empty() {
            indefinite(r.read().unwrap(), levels - 1, out);
        }
        out.extend_from_slice(&[0, 0]);
    }

    #[test]
    fn der_certificate() {
        let (p, _) = three();
        let c = parse_certificates(&p.leaf.der).unwrap();
        assert_eq!(c, vec![p.leaf.clone()]);
        assert_eq!(
            c[0].fingerprint.0,
            <[u8; 32]>::from(Sha256::digest(&p.leaf.der))
        );
    }

    #[test]
    fn pem_bundle_with_noise_crlf_and_other_blocks() {
        let (p, ders) = three();
        let pem = to_pem("CERTIFICATE", &ders);
        let key = to_pem("PRIVATE KEY", &[b"not really".to_vec()]);
        let text = format!(
            "\u{feff}  Bag Attributes\r\n{key}{}\r\n-- end --\r\n",
            pem.replace('\n', "\r\n")
        );
        let c = parse_certificates(text.as_bytes()).unwrap();
        assert_eq!(c.len(), 3);
        // Text that happens to start with '0' (0x30, a SEQUENCE tag) is still text.
        let zero = format!("0 problems, 3 certificates:\n{pem}");
        assert_eq!(parse_certificates(zero.as_bytes()).unwrap(), c);
        assert_eq!(
            fingerprints(&c),
            vec![
                p.leaf.fingerprint,
                p.inter_cert.fingerprint,
                p.root_cert.fingerprint
            ]
        );
    }

    #[test]
    fn pkcs7_der_ber_and_pem() {
        let (p, ders) = three();
        let want = vec![
            p.leaf.fingerprint,
            p.inter_cert.fingerprint,
            p.root_cert.fingerprint,
        ];
        let p7 = certs_only_pkcs7(&ders);
        assert_eq!(fingerprints(&parse_certificates(&p7).unwrap()), want);

        let mut ber = Vec::new();
        indefinite(Reader::der(&p7).read().unwrap(), 4, &mut ber);
        assert_ne!(ber, p7);
        assert!(Reader::der(&ber).read().is_err(), "must really be BER");
        assert_eq!(fingerprints(&parse_certificates(&ber).unwrap()), want);

        let pem = format!(
            "{}{}",
            to_pem("PKCS7", &[&p7]),
            to_pem("CERTIFICATE", &[&p.leaf.der])
        );
        let got = parse_certificates(pem.as_bytes()).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[3].fingerprint, p.leaf.fingerprint);
    }

    #[test]
    fn limits_are_enforced() {
        let (p, _) = three();
        let big = vec![b' '; MAX_INPUT_BYTES + 1];
        let e = parse_certificates(&big).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PayloadTooLarge);
        assert!(matches!(e, PkiError::TooLarge { .. }));

        let many: Vec<&[u8]> = vec![&p.leaf.der; MAX_CERTIFICATES + 1];
        let e = parse_certificates(to_pem("CERTIFICATE", &many).as_bytes()).unwrap_err();
        assert!(
            matches!(
                e,
                PkiError::TooManyCertificates {
                    count: 501,
                    limit: 500
                }
            ),
            "{e}"
        );
        let e = parse_certificates(&certs_only_pkcs7(&many)).unwrap_err();
        assert!(matches!(e, PkiError::TooManyCertificates { .. }), "{e}");
        let exactly: Vec<&[u8]> = vec![&p.leaf.der; MAX_CERTIFICATES];
        assert_eq!(
            parse_certificates(&certs_only_pkcs7(&exactly))
                .unwrap()
                .len(),
            500
        );
    }

    #[test]
    fn inputs_without_certificates_are_refused() {
        for input in [
            &b""[..],
            b"   \r\n",
            b"hello world",
            b"\x30\x00",
            b"\x02\x01\x00",
        ] {
            let e = parse_certificates(input).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidCertificate, "{input:?}: {e}");
        }
        let e = parse_certificates(to_pem("PRIVATE KEY", &[b"k"]).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("found PRIVATE KEY"), "{e}");
        let e = parse_certificates(&certs_only_pkcs7::<&[u8]>(&[])).unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
    }

    #[test]
    fn trailing_data_and_truncation_are_errors() {
        let (p, _) = three();
        let mut der = p.leaf.der.clone();
        der.push(0);
        assert!(parse_certificates(&der).is_err());
        for cut in 0..p.leaf.der.len() {
            assert!(
                parse_certificate_der(&p.leaf.der[..cut]).is_err(),
                "cut {cut}"
            );
            assert!(parse_certificates(&p.leaf.der[..cut]).is_err(), "cut {cut}");
        }
        let bad = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert!(parse_certificates(bad).is_err());
    }

    #[test]
    fn second_bad_certificate_is_named() {
        let (p, _) = three();
        let pem = to_pem(
            "CERTIFICATE",
            &[&p.leaf.der[..], &[0x30, 0x03, 0x02, 0x01, 0x01]],
        );
        let e = parse_certificates(pem.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("certificate #2"), "{e}");
    }

    /// Random corruption must give errors or certificates, never a panic; and
    /// whatever parses must also survive evaluation.
    #[test]
    fn corrupted_inputs_never_panic() {
        let (p, ders) = three();
        let store = crate::pki::TrustStore::new(std::slice::from_ref(&p.root_cert));
        let p7 = certs_only_pkcs7(&ders);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(41);
        let mut parsed = 0;
        for round in 0..3000 {
            let base = if round % 2 == 0 { &p.leaf.der } else { &p7 };
            let mut d = base.clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..d.len());
                match rng.random_range(0..3) {
                    0 => d[i] ^= 1 << rng.random_range(0..8),
                    1 => d[i] = rng.random(),
                    _ => {
                        d.remove(i);
                    }
                }
            }
            if let Ok(certs) = parse_certificates(&d) {
                parsed += 1;
                for c in &certs {
                    let _ = store.evaluate(
                        c,
                        std::slice::from_ref(&p.inter_cert),
                        crate::pki::testkit::now(),
                    );
                }
            }
        }
        assert!(
            parsed > 0,
            "some mutations (e.g. inside signatures) still parse"
        );
    }
}
