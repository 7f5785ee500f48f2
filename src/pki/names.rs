//! RFC 4514 string form of a distinguished name, straight from its DER.
//!
//! Why not `x509_cert::name::Name`'s `Display`: it looks every attribute type
//! up by a linear scan of const-oid's whole name database, which made it the
//! largest cost of parsing a certificate (about 5 µs per name). The common
//! attribute types are looked up in a small table here; anything else, and any
//! value that is not a plain string, is handed to x509-cert so the output stays
//! exactly what its `Display` prints (tests compare the two).

use der::Decode;
use x509_cert::attr::AttributeTypeAndValue;

use super::asn1::{Asn1Error, Reader, tag};

/// OID contents octets → RFC 4514 short name, for the types seen in practice.
const SHORT_NAMES: &[(&[u8], &str)] = &[
    (&[0x55, 0x04, 0x03], "CN"),
    (&[0x55, 0x04, 0x06], "C"),
    (&[0x55, 0x04, 0x07], "L"),
    (&[0x55, 0x04, 0x08], "ST"),
    (&[0x55, 0x04, 0x09], "STREET"),
    (&[0x55, 0x04, 0x0a], "O"),
    (&[0x55, 0x04, 0x0b], "OU"),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
        "DC",
    ),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01],
        "UID",
    ),
];

/// String types whose contents are the text (PrintableString, UTF8String, IA5String).
const TEXT_TAGS: &[u8] = &[0x13, tag::UTF8_STRING, 0x16];

fn escape_into(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\x00'..='\x1f' | '\x7f' => {
                out.push_str(&format!("\\{:02x}", c as u8));
            }
            _ => out.push(c),
        }
    }
}

/// One AttributeTypeAndValue appended in RFC 4514 form.
fn atv_into(
    out: &mut String,
    atv_raw: &[u8],
    oid: &[u8],
    value_tag: u8,
    value: &[u8],
) -> Result<(), Asn1Error> {
    let short = SHORT_NAMES.iter().find(|(o, _)| *o == oid).map(|(_, n)| *n);
    let text = if TEXT_TAGS.contains(&value_tag) {
        std::str::from_utf8(value).ok().filter(|s| {
            // PrintableString / IA5String must be ASCII; anything else goes the slow way.
            value_tag == tag::UTF8_STRING || s.is_ascii()
        })
    } else {
        None
    };
    match (short, text) {
        (Some(name), Some(text)) => {
            out.push_str(name);
            out.push('=');
            escape_into(out, text);
        }
        _ => {
            let atv = AttributeTypeAndValue::from_der(atv_raw)
                .map_err(|_| Asn1Error("malformed attribute in a name"))?;
            out.push_str(&atv.to_string());
        }
    }
    Ok(())
}

/// The RFC 4514 string of a DER Name (RDNs in reverse order, `+` between the
/// values of a multi-valued RDN).
pub(crate) fn rfc4514(name_der: &[u8]) -> Result<String, Asn1Error> {
    let mut r = Reader::der(name_der);
    let seq = r.expect(tag::SEQUENCE, "name is not a SEQUENCE")?;
    r.finish("trailing data after a name")?;
    let mut rdns = Vec::new();
    let mut rr = seq.children();
    while !rr.is_empty() {
        rdns.push(rr.expect(tag::SET, "RDN is not a SET")?);
    }
    let mut out = String::with_capacity(name_der.len());
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut ar = rdn.children();
        let mut first = true;
        while !ar.is_empty() {
            let atv = ar.expect(tag::SEQUENCE, "attribute is not a SEQUENCE")?;
            let mut a = atv.children();
            let oid = a.expect(tag::OID, "attribute without a type")?;
            let value = a.read()?;
            a.finish("trailing data in an attribute")?;
            if !first {
                out.push('+');
            }
            first = false;
            atv_into(&mut out, atv.raw, oid.value, value.tag, value.value)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::asn1::{tlv, write_tlv};
    use x509_cert::name::Name;

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const OU: &[u8] = &[0x55, 0x04, 0x0b];
    const C: &[u8] = &[0x55, 0x04, 0x06];
    const DC: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19];
    const UID: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
    const SERIAL: &[u8] = &[0x55, 0x04, 0x05];
    const UTF8: u8 = 0x0c;
    const PRINTABLE: u8 = 0x13;
    const IA5: u8 = 0x16;
    const BMP: u8 = 0x1e;

    /// One attribute: type OID contents, string tag, value.
    type Atv<'a> = (&'a [u8], u8, &'a [u8]);

    /// A Name from RDNs of attributes, in DER order.
    fn name(rdns: &[&[Atv<'_>]]) -> Vec<u8> {
        let mut seq = Vec::new();
        for rdn in rdns {
            let mut set = Vec::new();
            for (oid, t, v) in *rdn {
                let mut atv = tlv(tag::OID, oid);
                write_tlv(&mut atv, *t, v);
                write_tlv(&mut set, tag::SEQUENCE, &atv);
            }
            write_tlv(&mut seq, tag::SET, &set);
        }
        tlv(tag::SEQUENCE, &seq)
    }

    /// Our output must be exactly x509-cert's Display.
    #[test]
    fn agrees_with_x509_cert_display() {
        let cases: Vec<Vec<u8>> = vec![
            name(&[
                &[(C, PRINTABLE, b"US")],
                &[(O, UTF8, b"Example Health")],
                &[(CN, UTF8, b"Alice Example")],
            ]),
            name(&[
                &[(OU, UTF8, b"Cardiology")],
                &[(CN, UTF8, b"Smith, John + \"Jr\" <x>;\\")],
            ]),
            name(&[&[(O, UTF8, b" lead")], &[(CN, UTF8, b"#hash ")]]),
            name(&[
                &[(CN, UTF8, "Ünïcödé".as_bytes())],
                &[(CN, UTF8, b"tab\there\x7f")],
            ]),
            name(&[
                &[(DC, IA5, b"org")],
                &[(DC, IA5, b"example")],
                &[(UID, UTF8, b"jdoe")],
            ]),
            name(&[
                &[(O, UTF8, b"multi")],
                &[(CN, UTF8, b"a"), (OU, UTF8, b"b")],
            ]),
            name(&[
                &[(CN, UTF8, b"Alice")],
                &[(EMAIL, IA5, b"alice@example.org")],
            ]),
            name(&[&[(SERIAL, PRINTABLE, b"12345")], &[(CN, BMP, &[0, b'x'])]]),
            name(&[]),
        ];
        for der in cases {
            let want = Name::from_der(&der).unwrap().to_string();
            assert_eq!(rfc4514(&der).unwrap(), want);
        }
    }

    /// Where x509-cert falls back to hex for a PrintableString holding
    /// characters outside its set ('@' is common in the wild), we keep the text.
    #[test]
    fn lenient_printable_string() {
        let der = name(&[&[(CN, PRINTABLE, b"alice@example.org")]]);
        assert_eq!(rfc4514(&der).unwrap(), "CN=alice@example.org");
    }

    #[test]
    fn malformed_names_are_errors() {
        for bad in [
            &[][..],
            &[0x30, 0x02, 0x31, 0x05],
            &[0x30, 0x02, 0x30, 0x00],
            &[0x31, 0x00],
        ] {
            assert!(rfc4514(bad).is_err(), "{bad:?}");
        }
        // An attribute with a type but no value.
        let atv = tlv(tag::SEQUENCE, &tlv(tag::OID, CN));
        let der = tlv(tag::SEQUENCE, &tlv(tag::SET, &atv));
        assert!(rfc4514(&der).is_err());
    }
}
