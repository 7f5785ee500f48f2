//! A zero-copy view of a certificate's DER: the raw `tbsCertificate` a
//! signature covers, the signature, the raw names, key and key identifiers.
//!
//! Chain validation works on this view rather than on a decoded
//! `x509_cert::Certificate`: verifying the original TBS bytes avoids the
//! re-encoding trap (DEPENDENCIES.md pitfall 7), and walking a few TLVs costs
//! well under a microsecond, so nothing needs caching per certificate.

use super::asn1::{Asn1Error, Reader, Tlv, tag};

/// An AlgorithmIdentifier as it appears on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AlgId<'a> {
    /// OID contents octets.
    pub oid: &'a [u8],
    /// The parameters element, if present (NULL counts as present).
    pub params: Option<Tlv<'a>>,
    /// The whole AlgorithmIdentifier element.
    pub raw: &'a [u8],
}

impl<'a> AlgId<'a> {
    pub fn parse(t: Tlv<'a>) -> Result<Self, Asn1Error> {
        if t.tag != tag::SEQUENCE {
            return Err(Asn1Error("AlgorithmIdentifier is not a SEQUENCE"));
        }
        let mut r = t.children();
        let oid = r.expect(tag::OID, "AlgorithmIdentifier without an OID")?;
        let params = if r.is_empty() { None } else { Some(r.read()?) };
        r.finish("trailing data in AlgorithmIdentifier")?;
        Ok(AlgId {
            oid: oid.value,
            params,
            raw: t.raw,
        })
    }

    /// True when the parameters are absent or NULL.
    pub fn params_absent_or_null(&self) -> bool {
        match self.params {
            None => true,
            Some(p) => p.tag == tag::NULL && p.value.is_empty(),
        }
    }
}

/// The parts of a certificate that path validation needs, borrowed from its DER.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CertView<'a> {
    /// The raw `tbsCertificate` element: exactly the bytes the issuer signed.
    pub tbs: &'a [u8],
    /// The outer `signatureAlgorithm`.
    pub sig_alg: AlgId<'a>,
    /// The signature value (BIT STRING contents without the unused-bits octet).
    pub signature: &'a [u8],
    /// Raw issuer Name element.
    pub issuer: &'a [u8],
    /// Raw subject Name element.
    pub subject: &'a [u8],
    /// Raw SubjectPublicKeyInfo element.
    pub spki: &'a [u8],
    /// subjectKeyIdentifier, if present.
    pub ski: Option<&'a [u8]>,
    /// authorityKeyIdentifier keyIdentifier, if present.
    pub aki: Option<&'a [u8]>,
    /// basicConstraints pathLenConstraint, if present.
    pub path_len: Option<u64>,
    /// Whether a basicConstraints extension is present at all.
    pub has_basic_constraints: bool,
}

impl<'a> CertView<'a> {
    /// Walks a DER certificate. Strict: definite lengths, no trailing data, and the
    /// signature algorithm inside the TBS must equal the outer one (RFC 5280 §4.1.1.2).
    pub fn parse(der: &'a [u8]) -> Result<Self, Asn1Error> {
        let mut top = Reader::der(der);
        let cert = top.expect(tag::SEQUENCE, "certificate is not a SEQUENCE")?;
        top.finish("trailing data after the certificate")?;

        let mut c = cert.children();
        let tbs = c.expect(tag::SEQUENCE, "tbsCertificate is not a SEQUENCE")?;
        let sig_alg = AlgId::parse(c.read()?)?;
        let signature = c.read()?.bit_string_bytes()?;
        c.finish("trailing data in the certificate")?;

        let mut t = tbs.children();
        t.optional(tag::CTX0)?; // version
        t.expect(tag::INTEGER, "serialNumber is not an INTEGER")?;
        let inner_alg = AlgId::parse(t.read()?)?;
        let issuer = t.expect(tag::SEQUENCE, "issuer is not a Name")?;
        t.expect(tag::SEQUENCE, "validity is not a SEQUENCE")?;
        let subject = t.expect(tag::SEQUENCE, "subject is not a Name")?;
        let spki = t.expect(tag::SEQUENCE, "subjectPublicKeyInfo is not a SEQUENCE")?;
        t.optional(0x81)?; // issuerUniqueID
        t.optional(0x82)?; // subjectUniqueID
        let mut ski = None;
        let mut aki = None;
        let mut path_len = None;
        let mut has_basic_constraints = false;
        if let Some(exts) = t.optional(tag::CTX3)? {
            let mut list = exts.children();
            let seq = list.expect(tag::SEQUENCE, "extensions are not a SEQUENCE")?;
            list.finish("trailing data after extensions")?;
            let mut exts = seq.children();
            while !exts.is_empty() {
                let ext = exts.expect(tag::SEQUENCE, "extension is not a SEQUENCE")?;
                let mut e = ext.children();
                let oid = e.expect(tag::OID, "extension without an OID")?;
                e.optional(tag::BOOLEAN)?;
                let value =
                    e.expect(tag::OCTET_STRING, "extension value is not an OCTET STRING")?;
                e.finish("trailing data in an extension")?;
                match oid.value {
                    // 2.5.29.14 subjectKeyIdentifier
                    [0x55, 0x1d, 0x0e] => {
                        let mut v = Reader::der(value.value);
                        ski = Some(
                            v.expect(tag::OCTET_STRING, "bad subjectKeyIdentifier")?
                                .value,
                        );
                    }
                    // 2.5.29.35 authorityKeyIdentifier
                    [0x55, 0x1d, 0x23] => {
                        let mut v = Reader::der(value.value);
                        let seq = v.expect(tag::SEQUENCE, "bad authorityKeyIdentifier")?;
                        aki = seq.children().optional(tag::CTX0_PRIM)?.map(|k| k.value);
                    }
                    // 2.5.29.19 basicConstraints
                    [0x55, 0x1d, 0x13] => {
                        has_basic_constraints = true;
                        let mut v = Reader::der(value.value);
                        let seq = v.expect(tag::SEQUENCE, "bad basicConstraints")?;
                        let mut b = seq.children();
                        b.optional(tag::BOOLEAN)?;
                        if let Some(n) = b.optional(tag::INTEGER)? {
                            if n.value.len() > 8 || n.value.first().is_some_and(|x| x & 0x80 != 0) {
                                return Err(Asn1Error("pathLenConstraint out of range"));
                            }
                            path_len =
                                Some(n.value.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x)));
                        }
                    }
                    _ => {}
                }
            }
        }
        t.finish("trailing data in tbsCertificate")?;

        if inner_alg.raw != sig_alg.raw {
            return Err(Asn1Error(
                "signature algorithm inside the certificate differs from the outer one",
            ));
        }
        Ok(CertView {
            tbs: tbs.raw,
            sig_alg,
            signature,
            issuer: issuer.raw,
            subject: subject.raw,
            spki: spki.raw,
            ski,
            aki,
            path_len,
            has_basic_constraints,
        })
    }
}
