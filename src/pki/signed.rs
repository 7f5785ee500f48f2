//! CMS SignedData (RFC 5652 §5) as signed trust bundles (`.p7m`) carry it:
//! a zero-copy view of the structure, and the check of one SignerInfo's
//! message digest and signature.
//!
//! Like [`super::view`], this walks the original bytes with the TLV reader
//! instead of decoding with the `cms` crate: the signature covers the
//! signedAttrs exactly as the signer encoded them, and the digest covers
//! the eContent octets exactly as sent, BER chunks reassembled
//! (DEPENDENCIES.md pitfalls 7 and 8 are what decoding and re-encoding get
//! wrong). The `cms` crate's builder makes the test material, so an
//! independent encoder keeps this reader honest.

use std::borrow::Cow;

use super::asn1::{Asn1Error, Reader, Tlv, tag};
use super::verify::{decode_spki, digest_by_oid, verify_cms_signature};
use super::view::{AlgId, CertView};

/// 1.2.840.113549.1.7.2 signedData.
pub(crate) const ID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
/// 1.2.840.113549.1.9.3 contentType attribute.
const ID_CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
/// 1.2.840.113549.1.9.4 messageDigest attribute.
const ID_MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
/// `[0]` primitive: SignerIdentifier subjectKeyIdentifier.
const CTX0_PRIM: u8 = tag::CTX0_PRIM;
/// OCTET STRING, constructed (BER chunked).
const OCTET_STRING_CONSTRUCTED: u8 = 0x24;

/// How a SignerInfo names its certificate.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SignerId<'a> {
    /// Raw issuer Name element and the serial INTEGER's contents.
    IssuerSerial { issuer: &'a [u8], serial: &'a [u8] },
    /// The subjectKeyIdentifier octets.
    KeyId(&'a [u8]),
}

/// One SignerInfo, borrowed.
#[derive(Debug, Clone)]
pub(crate) struct SignerView<'a> {
    pub sid: SignerId<'a>,
    pub digest_alg: AlgId<'a>,
    /// The `[0] IMPLICIT` signedAttrs element as sent, if present.
    pub signed_attrs: Option<Tlv<'a>>,
    pub sig_alg: AlgId<'a>,
    pub signature: Cow<'a, [u8]>,
}

/// A SignedData, borrowed from the ContentInfo bytes.
#[derive(Debug, Clone)]
pub(crate) struct SignedDataView<'a> {
    /// eContentType OID contents.
    pub econtent_type: &'a [u8],
    /// The eContent octets (chunks joined), when the content is attached.
    pub econtent: Option<Cow<'a, [u8]>>,
    /// Each certificate of the `certificates` field, raw.
    pub certificates: Vec<&'a [u8]>,
    pub signers: Vec<SignerView<'a>>,
}

/// The contents of an OCTET STRING, primitive or BER-constructed.
fn octets<'a>(t: Tlv<'a>) -> Result<Cow<'a, [u8]>, Asn1Error> {
    match t.tag {
        tag::OCTET_STRING => Ok(Cow::Borrowed(t.value)),
        OCTET_STRING_CONSTRUCTED => {
            let mut out = Vec::new();
            let mut r = t.children();
            while !r.is_empty() {
                out.extend_from_slice(&octets(r.read()?)?);
            }
            Ok(Cow::Owned(out))
        }
        _ => Err(Asn1Error("expected an OCTET STRING")),
    }
}

impl<'a> SignedDataView<'a> {
    /// Reads a ContentInfo holding SignedData (DER or BER).
    pub fn parse(data: &'a [u8]) -> Result<Self, Asn1Error> {
        let mut top = Reader::ber(data);
        let ci = top.expect(tag::SEQUENCE, "ContentInfo is not a SEQUENCE")?;
        top.finish("trailing data after the ContentInfo")?;
        let mut c = ci.children();
        let oid = c.expect(tag::OID, "ContentInfo without a content type")?;
        if oid.value != ID_SIGNED_DATA {
            return Err(Asn1Error("content type is not signedData"));
        }
        let explicit = c.expect(tag::CTX0, "signedData without content")?;
        let sd = explicit
            .children()
            .expect(tag::SEQUENCE, "SignedData is not a SEQUENCE")?;
        let mut s = sd.children();
        s.expect(tag::INTEGER, "SignedData without a version")?;
        s.expect(tag::SET, "SignedData without digestAlgorithms")?;
        let eci = s.expect(tag::SEQUENCE, "SignedData without encapContentInfo")?;
        let mut e = eci.children();
        let econtent_type = e.expect(tag::OID, "encapContentInfo without a type")?.value;
        let econtent = match e.optional(tag::CTX0)? {
            Some(x) => {
                let mut r = x.children();
                let o = octets(r.read()?)?;
                r.finish("trailing data in eContent")?;
                Some(o)
            }
            None => None,
        };
        e.finish("trailing data in encapContentInfo")?;

        let mut certificates = Vec::new();
        if let Some(certs) = s.optional(tag::CTX0)? {
            let mut r = certs.children();
            while !r.is_empty() {
                let item = r.read()?;
                if item.tag == tag::SEQUENCE {
                    certificates.push(item.raw);
                }
            }
        }
        s.optional(tag::CTX1)?; // crls
        let infos = s.expect(tag::SET, "SignedData without signerInfos")?;
        s.finish("trailing data in SignedData")?;
        let mut signers = Vec::new();
        let mut r = infos.children();
        while !r.is_empty() {
            signers.push(SignerView::parse(
                r.expect(tag::SEQUENCE, "SignerInfo is not a SEQUENCE")?,
            )?);
        }
        Ok(SignedDataView {
            econtent_type,
            econtent,
            certificates,
            signers,
        })
    }
}

impl<'a> SignerView<'a> {
    fn parse(t: Tlv<'a>) -> Result<Self, Asn1Error> {
        let mut r = t.children();
        r.expect(tag::INTEGER, "SignerInfo without a version")?;
        let sid = match r.peek_tag() {
            Some(tag::SEQUENCE) => {
                let ias = r.read()?;
                let mut i = ias.children();
                let issuer = i.expect(tag::SEQUENCE, "issuer is not a Name")?.raw;
                let serial = i
                    .expect(tag::INTEGER, "serialNumber is not an INTEGER")?
                    .value;
                i.finish("trailing data in IssuerAndSerialNumber")?;
                SignerId::IssuerSerial { issuer, serial }
            }
            Some(CTX0_PRIM) => SignerId::KeyId(r.read()?.value),
            _ => return Err(Asn1Error("SignerInfo without a signer identifier")),
        };
        let digest_alg = AlgId::parse(r.read()?)?;
        let signed_attrs = r.optional(tag::CTX0)?;
        let sig_alg = AlgId::parse(r.read()?)?;
        let signature = octets(r.read()?)?;
        r.optional(tag::CTX1)?; // unsignedAttrs
        r.finish("trailing data in SignerInfo")?;
        Ok(SignerView {
            sid,
            digest_alg,
            signed_attrs,
            sig_alg,
            signature,
        })
    }

    /// Whether `cert_der` is the certificate this SignerInfo names.
    pub fn names(&self, cert_der: &[u8]) -> bool {
        let Ok(view) = CertView::parse(cert_der) else {
            return false;
        };
        match self.sid {
            SignerId::KeyId(id) => view.ski == Some(id),
            SignerId::IssuerSerial { issuer, serial } => {
                view.issuer == issuer && serial_of(cert_der) == Some(serial)
            }
        }
    }

    /// Checks the signed attributes against the content and the signature
    /// against the signer's certificate. The error says what did not match.
    pub fn verify(
        &self,
        econtent_type: &[u8],
        econtent: &[u8],
        cert_der: &[u8],
    ) -> Result<(), String> {
        let view = CertView::parse(cert_der).map_err(|e| format!("signer certificate: {e}"))?;
        let key = decode_spki(view.spki)?;
        let digest = digest_by_oid(self.digest_alg.oid, econtent)?;
        let signed: Cow<'_, [u8]> = match &self.signed_attrs {
            None => Cow::Borrowed(econtent),
            Some(attrs) => {
                let (content_type, message_digest) =
                    read_attrs(*attrs).map_err(|e| format!("signed attributes: {e}"))?;
                if content_type != Some(econtent_type) {
                    return Err("the contentType attribute does not match the content".into());
                }
                match message_digest {
                    Some(d) if d == digest.as_slice() => {}
                    Some(_) => return Err("the message digest does not match the content".into()),
                    None => return Err("signed attributes without a messageDigest".into()),
                }
                // The signature covers the attributes as a SET (tag 0x31), in
                // the signer's own encoding.
                let mut raw = attrs.raw.to_vec();
                raw[0] = tag::SET;
                Cow::Owned(raw)
            }
        };
        verify_cms_signature(
            &key,
            &self.sig_alg,
            self.digest_alg.oid,
            &signed,
            &self.signature,
        )
    }
}

/// The contentType (OID contents) and messageDigest values of a signedAttrs element.
type ContentTypeAndDigest<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

fn read_attrs(attrs: Tlv<'_>) -> Result<ContentTypeAndDigest<'_>, Asn1Error> {
    let mut content_type = None;
    let mut digest = None;
    let mut r = attrs.children();
    while !r.is_empty() {
        let attr = r.expect(tag::SEQUENCE, "attribute is not a SEQUENCE")?;
        let mut a = attr.children();
        let oid = a.expect(tag::OID, "attribute without a type")?.value;
        let values = a.expect(tag::SET, "attribute without values")?;
        a.finish("trailing data in an attribute")?;
        let mut v = values.children();
        let first = v.read()?;
        let single = v.is_empty();
        if oid == ID_CONTENT_TYPE {
            if !single || content_type.is_some() || first.tag != tag::OID {
                return Err(Asn1Error("malformed contentType attribute"));
            }
            content_type = Some(first.value);
        } else if oid == ID_MESSAGE_DIGEST {
            if !single || digest.is_some() || first.tag != tag::OCTET_STRING {
                return Err(Asn1Error("malformed messageDigest attribute"));
            }
            digest = Some(first.value);
        }
    }
    Ok((content_type, digest))
}

/// The serialNumber INTEGER contents of a certificate.
fn serial_of(cert_der: &[u8]) -> Option<&[u8]> {
    let cert = Reader::der(cert_der).read().ok()?;
    let tbs = cert.children().read().ok()?;
    let mut t = tbs.children();
    t.optional(tag::CTX0).ok()?;
    Some(t.expect(tag::INTEGER, "").ok()?.value)
}
