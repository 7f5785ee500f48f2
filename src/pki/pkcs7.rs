//! Certs-only PKCS#7 / CMS SignedData (RFC 5652 §5): the `.p7b`/`.p7c`
//! bundle format of trust bundles and of `application/pkcs7-mime;
//! smime-type=certs-only`.
//!
//! Reading walks BER (indefinite lengths included, as `openssl cms -stream`
//! writes them) and returns each certificate's bytes exactly as they appear,
//! so fingerprints and signatures stay intact. Writing emits DER and copies the
//! certificates verbatim, in the order given (OpenSSL declares the field a
//! SEQUENCE OF for the same reason: clients like the leaf first).

use super::asn1::{Reader, tag, tlv, write_tlv};
use super::{MAX_CERTIFICATES, PkiError};

/// 1.2.840.113549.1.7.2 signedData, contents octets.
const ID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
/// 1.2.840.113549.1.7.1 data, contents octets.
const ID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];

/// True when a DER/BER SEQUENCE looks like a ContentInfo (starts with an OID)
/// rather than a certificate (starts with the tbsCertificate SEQUENCE).
pub(crate) fn looks_like_content_info(data: &[u8]) -> bool {
    Reader::ber(data)
        .read()
        .map(|t| t.children().peek_tag() == Some(tag::OID))
        .unwrap_or(false)
}

/// The certificates inside a PKCS#7 SignedData (with or without signers),
/// as the raw bytes of each `Certificate`. Other certificate choices
/// (attribute certificates, `other`) are skipped.
pub(crate) fn pkcs7_certificates(data: &[u8]) -> Result<Vec<&[u8]>, PkiError> {
    let bad = |e: super::asn1::Asn1Error| PkiError::invalid(format!("malformed PKCS#7: {e}"));
    let mut top = Reader::ber(data);
    let ci = top
        .expect(tag::SEQUENCE, "ContentInfo is not a SEQUENCE")
        .map_err(bad)?;
    top.finish("trailing data after the PKCS#7 structure")
        .map_err(bad)?;
    let mut c = ci.children();
    let oid = c
        .expect(tag::OID, "ContentInfo without a content type")
        .map_err(bad)?;
    if oid.value != ID_SIGNED_DATA {
        let name = const_oid::ObjectIdentifier::from_bytes(oid.value)
            .map(|o| o.to_string())
            .unwrap_or_else(|_| "a malformed OID".into());
        return Err(PkiError::invalid(format!(
            "PKCS#7 content type is {name}, not signedData (1.2.840.113549.1.7.2)"
        )));
    }
    let explicit = c
        .expect(tag::CTX0, "signedData without content")
        .map_err(bad)?;
    let sd = explicit
        .children()
        .expect(tag::SEQUENCE, "SignedData is not a SEQUENCE")
        .map_err(bad)?;
    let mut s = sd.children();
    s.expect(tag::INTEGER, "SignedData without a version")
        .map_err(bad)?;
    s.expect(tag::SET, "SignedData without digestAlgorithms")
        .map_err(bad)?;
    s.expect(tag::SEQUENCE, "SignedData without encapContentInfo")
        .map_err(bad)?;
    let mut out = Vec::new();
    if let Some(certs) = s.optional(tag::CTX0).map_err(bad)? {
        let mut r = certs.children();
        while !r.is_empty() {
            let item = r.read().map_err(bad)?;
            if item.tag == tag::SEQUENCE {
                out.push(item.raw);
                if out.len() > MAX_CERTIFICATES {
                    return Err(PkiError::TooManyCertificates {
                        count: out.len(),
                        limit: MAX_CERTIFICATES,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A DER certs-only SignedData holding `certs` (each a DER certificate,
/// copied verbatim and in order): version 1, no digest algorithms, id-data
/// content absent, no CRLs, no signers. `openssl pkcs7 -inform DER
/// -print_certs` reads it.
pub fn certs_only_pkcs7<D: AsRef<[u8]>>(certs: &[D]) -> Vec<u8> {
    let total: usize = certs.iter().map(|c| c.as_ref().len()).sum();
    let mut cert_set = Vec::with_capacity(total);
    for c in certs {
        cert_set.extend_from_slice(c.as_ref());
    }
    let mut sd = Vec::with_capacity(total + 32);
    write_tlv(&mut sd, tag::INTEGER, &[1]);
    write_tlv(&mut sd, tag::SET, &[]);
    write_tlv(&mut sd, tag::SEQUENCE, &tlv(tag::OID, ID_DATA));
    write_tlv(&mut sd, tag::CTX0, &cert_set);
    write_tlv(&mut sd, tag::SET, &[]);
    let mut ci = tlv(tag::OID, ID_SIGNED_DATA);
    write_tlv(&mut ci, tag::CTX0, &tlv(tag::SEQUENCE, &sd));
    tlv(tag::SEQUENCE, &ci)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_bundle_round_trips() {
        let p7 = certs_only_pkcs7::<&[u8]>(&[]);
        assert!(looks_like_content_info(&p7));
        assert!(pkcs7_certificates(&p7).unwrap().is_empty());
    }

    #[test]
    fn writer_output_decodes_with_the_cms_crate() {
        use der::Decode;
        // Two opaque "certificates" (any SEQUENCE is carried verbatim).
        let a = tlv(tag::SEQUENCE, &tlv(tag::SEQUENCE, &[]));
        let b = tlv(tag::SEQUENCE, &tlv(tag::SEQUENCE, &[0x05, 0x00]));
        let p7 = certs_only_pkcs7(&[&a[..], &b[..]]);
        let ci = cms::content_info::ContentInfo::from_der(&p7).unwrap();
        assert_eq!(ci.content_type, const_oid::db::rfc5911::ID_SIGNED_DATA);
        let got = pkcs7_certificates(&p7).unwrap();
        assert_eq!(got, vec![&a[..], &b[..]]);
    }

    #[test]
    fn other_content_types_and_garbage_are_refused() {
        let mut ci = tlv(tag::OID, ID_DATA);
        write_tlv(&mut ci, tag::CTX0, &tlv(tag::OCTET_STRING, b"x"));
        let data = tlv(tag::SEQUENCE, &ci);
        let err = pkcs7_certificates(&data).unwrap_err().to_string();
        assert!(err.contains("not signedData"), "{err}");
        let p7 = certs_only_pkcs7(&[tlv(tag::SEQUENCE, &[])]);
        for cut in 0..p7.len() {
            assert!(pkcs7_certificates(&p7[..cut]).is_err(), "cut {cut}");
        }
    }
}
