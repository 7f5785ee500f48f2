//! LDIF (RFC 2849) content records, the format LDAP servers and address
//! books exchange. Entries are `inetOrgPerson` records, organisations
//! `organization` records, laid out the way ccdir's LDAP tree is:
//!
//! ```text
//! dn: o=<organisation id>,<base>
//! dn: mail=<address>,o=<organisation id>,<base>     (entries of an organisation)
//! dn: mail=<address>,<base>                         (entries without one)
//! ```
//!
//! Attribute mapping: `mail` address, `cn`/`displayName` display name,
//! `givenName`, `sn`, `ou` unit, `title`, `employeeType` profession,
//! `businessCategory` specialty, `l`, `st`, `c`, `postalCode`,
//! `telephoneNumber`, `userCertificate;binary` DER certificates, and three
//! ccdir attributes: `ccdirIdentifier` (`SCHEME:value`), `ccdirKind`,
//! `ccdirVisibility`. On import the organisation comes from the `o=` RDN of
//! the DN (turned into an id if it is a name).

use std::io::{self, BufRead, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::{ImportRecord, ImportRow};
use crate::domain::{DirectoryTree, EntryInput, OrgId, OrganisationInput, parse_identifier};

/// Where records sit in the tree: the DN scheme the LDAP front end serves
/// (see [`DirectoryTree`]).
pub type LdifTree = DirectoryTree;

/// One parsed LDIF record: its DN and attribute values in file order.
struct RawRecord {
    line: usize,
    dn: String,
    attrs: Vec<(String, Vec<u8>)>,
}

impl RawRecord {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.attrs
            .iter()
            .filter(move |(n, _)| {
                let base = n.split(';').next().unwrap_or(n);
                base.eq_ignore_ascii_case(name)
            })
            .map(|(_, v)| v.as_slice())
    }

    fn text(&self, name: &str) -> Result<Option<String>, String> {
        self.values(name)
            .next()
            .map(|v| String::from_utf8(v.to_vec()).map_err(|_| format!("{name} is not UTF-8 text")))
            .transpose()
    }

    fn texts(&self, name: &str) -> Result<Vec<String>, String> {
        self.values(name)
            .map(|v| String::from_utf8(v.to_vec()).map_err(|_| format!("{name} is not UTF-8 text")))
            .collect()
    }
}

/// Splits input into unfolded logical lines, keeping the physical line number
/// each starts on. Comments are dropped; blank lines are kept as separators.
fn logical_lines(input: impl BufRead) -> impl Iterator<Item = (usize, io::Result<String>)> {
    let mut physical = input.lines().enumerate().peekable();
    std::iter::from_fn(move || {
        let (i, first) = physical.next()?;
        let mut line = match first {
            Ok(l) => l,
            Err(e) => return Some((i + 1, Err(e))),
        };
        while let Some((_, Ok(next))) = physical.peek() {
            if let Some(rest) = next.strip_prefix(' ') {
                line.push_str(rest);
                physical.next();
            } else {
                break;
            }
        }
        Some((i + 1, Ok(line.trim_end_matches('\r').to_owned())))
    })
    .filter(|(_, l)| !matches!(l, Ok(s) if s.starts_with('#')))
}

fn parse_attr_line(line: &str) -> Result<(String, Vec<u8>), String> {
    let (name, rest) = line
        .split_once(':')
        .ok_or_else(|| format!("expected \"attribute: value\", got {line:?}"))?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';' || c == '.')
    {
        return Err(format!("invalid attribute description {name:?}"));
    }
    let value = if let Some(b64) = rest.strip_prefix(':') {
        B64.decode(b64.trim())
            .map_err(|e| format!("{name}: invalid base64: {e}"))?
    } else if rest.starts_with('<') {
        return Err(format!("{name}: URL values (\":<\") are not supported"));
    } else {
        rest.strip_prefix(' ').unwrap_or(rest).as_bytes().to_vec()
    };
    Ok((name.to_owned(), value))
}

fn raw_records(input: impl BufRead) -> impl Iterator<Item = Result<RawRecord, (usize, String)>> {
    let mut lines = logical_lines(input).peekable();
    std::iter::from_fn(move || {
        // skip separators
        while let Some((_, Ok(l))) = lines.peek() {
            if l.trim().is_empty() {
                lines.next();
            } else {
                break;
            }
        }
        let (start, first) = lines.next()?;
        let first = match first {
            Ok(l) => l,
            Err(e) => return Some(Err((start, format!("unreadable line: {e}")))),
        };
        let mut attrs = Vec::new();
        let mut error = None;
        match parse_attr_line(&first) {
            Ok(a) => attrs.push(a),
            Err(e) => error = Some(e),
        }
        while let Some((_, Ok(l))) = lines.peek() {
            if l.trim().is_empty() {
                break;
            }
            let (_, l) = lines.next().expect("peeked");
            match l
                .map_err(|e| e.to_string())
                .and_then(|l| parse_attr_line(&l))
            {
                Ok(a) => attrs.push(a),
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = error {
            return Some(Err((start, e)));
        }
        let (name, value) = attrs.remove(0);
        if name.eq_ignore_ascii_case("version") {
            // `version: 1` heads the file and may share the first record
            if value != b"1" {
                return Some(Err((start, "only LDIF version 1 is supported".into())));
            }
            if attrs.is_empty() {
                return Some(Ok(RawRecord {
                    line: start,
                    dn: String::new(),
                    attrs,
                }));
            }
            let (n, v) = attrs.remove(0);
            return Some(finish(start, n, v, attrs));
        }
        Some(finish(start, name, value, attrs))
    })
    .filter(|r| !matches!(r, Ok(rec) if rec.dn.is_empty() && rec.attrs.is_empty()))
}

fn finish(
    line: usize,
    name: String,
    value: Vec<u8>,
    attrs: Vec<(String, Vec<u8>)>,
) -> Result<RawRecord, (usize, String)> {
    if !name.eq_ignore_ascii_case("dn") {
        return Err((line, format!("a record must start with dn:, not {name}:")));
    }
    let dn = String::from_utf8(value).map_err(|_| (line, "dn is not UTF-8".to_owned()))?;
    if let Some((_, ct)) = attrs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("changetype"))
        && ct.as_slice() != b"add"
    {
        return Err((
            line,
            "only content records (or changetype: add) are supported".into(),
        ));
    }
    let attrs = attrs
        .into_iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("changetype"))
        .collect();
    Ok(RawRecord { line, dn, attrs })
}

/// The RDNs of a DN as (attribute, value) pairs, leftmost first. Handles
/// backslash escapes; multi-valued RDNs are split on `+`.
fn rdns(dn: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = dn.chars();
    let mut parts = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            ',' | '+' => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    for p in parts {
        if let Some((a, v)) = p.split_once('=') {
            out.push((a.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    out
}

/// An organisation id from an `o=` RDN value: taken as is when it is one,
/// otherwise made from the name (lower case, runs of other characters → `-`).
fn org_id_from(value: &str) -> Result<OrgId, String> {
    if let Ok(id) = value.parse() {
        return Ok(id);
    }
    let mut slug = String::new();
    for c in value.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = &slug[..slug.len().min(63)];
    slug.trim_end_matches('-')
        .parse()
        .map_err(|_| format!("cannot make an organisation id from {value:?}"))
}

fn to_record(raw: &RawRecord) -> Result<ImportRecord, String> {
    let classes: Vec<String> = raw
        .texts("objectClass")?
        .into_iter()
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let dn = rdns(&raw.dn);
    if classes.iter().any(|c| c == "organization") {
        let (attr, value) = dn.first().ok_or("empty dn")?;
        if attr != "o" {
            return Err(format!(
                "an organization's dn must start with o=, not {attr}="
            ));
        }
        let id = org_id_from(value)?;
        let names = raw.texts("o")?;
        let name = names
            .iter()
            .find(|n| n.as_str() != id.as_str())
            .or(names.first())
            .cloned()
            .unwrap_or_else(|| value.clone());
        return Ok(ImportRecord::Organisation(OrganisationInput {
            id: Some(id),
            name,
            domains: raw
                .texts("associatedDomain")?
                .iter()
                .map(|d| {
                    d.parse()
                        .map_err(|e: crate::domain::DomainError| e.to_string())
                })
                .collect::<Result<_, _>>()?,
            description: raw.text("description")?,
            locality: raw.text("l")?,
            region: raw.text("st")?,
            country: raw.text("c")?,
        }));
    }
    if !classes
        .iter()
        .any(|c| c == "inetorgperson" || c == "person")
    {
        return Err("neither an inetOrgPerson nor an organization record".into());
    }
    let address = raw
        .text("mail")?
        .ok_or("an inetOrgPerson record needs a mail attribute")?;
    let organisation = dn
        .iter()
        .skip(1)
        .find(|(a, _)| a == "o")
        .map(|(_, v)| org_id_from(v))
        .transpose()?;
    let mut map = serde_json::Map::new();
    map.insert("address".into(), serde_json::Value::String(address));
    for (attr, field) in [
        ("ccdirKind", "kind"),
        ("displayName", "display_name"),
        ("givenName", "given_name"),
        ("sn", "surname"),
        ("ou", "unit"),
        ("title", "title"),
        ("employeeType", "profession"),
        ("businessCategory", "specialty"),
        ("l", "locality"),
        ("st", "region"),
        ("c", "country"),
        ("postalCode", "postal_code"),
        ("telephoneNumber", "phone"),
        ("ccdirVisibility", "visibility"),
    ] {
        if let Some(v) = raw.text(attr)? {
            map.insert(field.into(), serde_json::Value::String(v));
        }
    }
    if !map.contains_key("display_name")
        && let Some(cn) = raw.text("cn")?
    {
        map.insert("display_name".into(), serde_json::Value::String(cn));
    }
    let mut entry: EntryInput =
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())?;
    entry.organisation = organisation;
    entry.identifiers = raw
        .texts("ccdirIdentifier")?
        .iter()
        .map(|t| parse_identifier(t).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    entry.certificates = raw
        .values("userCertificate")
        .map(|der| B64.encode(der))
        .collect();
    Ok(ImportRecord::Entry(Box::new(entry)))
}

pub fn read_ldif(input: impl BufRead) -> impl Iterator<Item = ImportRow> {
    raw_records(input).filter_map(|raw| match raw {
        Err((line, e)) => Some(ImportRow {
            line,
            record: Err(e),
        }),
        Ok(rec) => {
            let classes = rec.texts("objectClass").unwrap_or_default();
            // container records of the tree (dc=..., ou=...) carry no data
            let is_container = !classes.is_empty()
                && classes.iter().all(|c| {
                    matches!(
                        c.to_ascii_lowercase().as_str(),
                        "top" | "dcobject" | "domain" | "organizationalunit"
                    )
                });
            (!is_container).then(|| ImportRow {
                line: rec.line,
                record: to_record(&rec),
            })
        }
    })
}

/// Whether a value may be written as-is (RFC 2849 SAFE-STRING).
fn is_safe(v: &[u8]) -> bool {
    match v.first() {
        None => true,
        Some(b' ' | b':' | b'<') => false,
        Some(_) => {
            v.last() != Some(&b' ')
                && v.iter()
                    .all(|&b| b.is_ascii() && b != 0 && b != b'\n' && b != b'\r')
        }
    }
}

fn write_attr(out: &mut impl Write, name: &str, value: &[u8]) -> io::Result<()> {
    let line = if is_safe(value) {
        format!("{name}: {}", String::from_utf8_lossy(value))
    } else {
        format!("{name}:: {}", B64.encode(value))
    };
    // fold at 76 columns: continuation lines start with one space
    let bytes = line.as_bytes();
    out.write_all(&bytes[..bytes.len().min(76)])?;
    for chunk in bytes.get(76..).unwrap_or_default().chunks(75) {
        out.write_all(b"\n ")?;
        out.write_all(chunk)?;
    }
    out.write_all(b"\n")
}

pub fn write_ldif_organisation(
    out: &mut impl Write,
    tree: &LdifTree,
    org: &OrganisationInput,
) -> io::Result<()> {
    let id = org
        .id
        .as_ref()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "organisation without id"))?;
    write_attr(out, "dn", tree.organisation_dn(id).as_bytes())?;
    write_attr(out, "objectClass", b"top")?;
    write_attr(out, "objectClass", b"organization")?;
    write_attr(out, "o", id.as_str().as_bytes())?;
    if org.name != id.as_str() {
        write_attr(out, "o", org.name.as_bytes())?;
    }
    for (attr, v) in [
        ("description", &org.description),
        ("l", &org.locality),
        ("st", &org.region),
        ("c", &org.country),
    ] {
        if let Some(v) = v {
            write_attr(out, attr, v.as_bytes())?;
        }
    }
    for d in &org.domains {
        write_attr(out, "associatedDomain", d.as_str().as_bytes())?;
    }
    out.write_all(b"\n")
}

/// Writes one entry. `organisation_name` fills the `o` attribute address
/// books show. Certificates must be given as PEM or base64 DER (as
/// [`EntryInput::from_record`] produces).
pub fn write_ldif_entry(
    out: &mut impl Write,
    tree: &LdifTree,
    entry: &EntryInput,
    organisation_name: Option<&str>,
) -> io::Result<()> {
    let address = entry
        .address
        .as_ref()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "entry without address"))?
        .to_string();
    write_attr(
        out,
        "dn",
        tree.entry_dn(&address, entry.organisation.as_ref())
            .as_bytes(),
    )?;
    for class in ["top", "person", "organizationalPerson", "inetOrgPerson"] {
        write_attr(out, "objectClass", class.as_bytes())?;
    }
    write_attr(out, "mail", address.as_bytes())?;
    let display = entry
        .display_name
        .clone()
        .unwrap_or_else(|| address.clone());
    write_attr(out, "cn", display.as_bytes())?;
    write_attr(out, "displayName", display.as_bytes())?;
    write_attr(
        out,
        "sn",
        entry.surname.as_deref().unwrap_or(&display).as_bytes(),
    )?;
    if let Some(name) = organisation_name {
        write_attr(out, "o", name.as_bytes())?;
    }
    let kind = entry.kind.map(|k| k.as_str().to_owned());
    let visibility = entry.visibility.map(|v| v.as_str().to_owned());
    for (attr, v) in [
        ("givenName", &entry.given_name),
        ("ou", &entry.unit),
        ("title", &entry.title),
        ("employeeType", &entry.profession),
        ("businessCategory", &entry.specialty),
        ("l", &entry.locality),
        ("st", &entry.region),
        ("c", &entry.country),
        ("postalCode", &entry.postal_code),
        ("telephoneNumber", &entry.phone),
        ("ccdirKind", &kind),
        ("ccdirVisibility", &visibility),
    ] {
        if let Some(v) = v {
            write_attr(out, attr, v.as_bytes())?;
        }
    }
    for id in &entry.identifiers {
        write_attr(out, "ccdirIdentifier", id.to_string().as_bytes())?;
    }
    for cert in &entry.certificates {
        let b64: String = cert
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let der = B64
            .decode(b64.trim())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        write_attr(out, "userCertificate;binary", &der)?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "version: 1

# the tree root carries no data
dn: dc=example,dc=org
objectClass: top
objectClass: dcObject

dn: o=Acme Clinic,dc=example,dc=org
objectClass: organization
o: Acme Clinic
associatedDomain: acme.example.org

dn: mail=ann@acme.example.org,o=Acme Clinic,dc=example,dc=org
objectClass: inetOrgPerson
mail: ann@acme.example.org
cn: Ann
  Lee
sn: Lee
businessCategory: Cardiology
ccdirIdentifier: NPI:1234567893
userCertificate;binary:: QUJD

dn: mail=broken,dc=example,dc=org
objectClass: inetOrgPerson
mail: broken

dn: cn=x,dc=example,dc=org
objectClass: inetOrgPerson
mail:: ###
";

    #[test]
    fn reads_records_with_folding_and_base64() {
        let rows: Vec<_> = read_ldif(SAMPLE.as_bytes()).collect();
        assert_eq!(rows.len(), 4, "{rows:#?}");
        let Ok(ImportRecord::Organisation(org)) = &rows[0].record else {
            panic!("{:?}", rows[0])
        };
        assert_eq!(org.id.as_ref().unwrap().as_str(), "acme-clinic");
        assert_eq!(org.domains.len(), 1);
        let Ok(ImportRecord::Entry(e)) = &rows[1].record else {
            panic!("{:?}", rows[1])
        };
        assert_eq!(e.display_name.as_deref(), Some("Ann Lee"));
        assert_eq!(e.organisation.as_ref().unwrap().as_str(), "acme-clinic");
        assert_eq!(e.certificates, vec!["QUJD".to_owned()]);
        assert_eq!(e.identifiers[0].value, "1234567893");
        assert_eq!(rows[1].line, 13);
        assert!(rows[2].record.is_err());
        assert_eq!(rows[3].line, 27);
        assert!(rows[3].record.as_ref().unwrap_err().contains("base64"));
    }

    #[test]
    fn writes_what_it_reads() {
        let tree = LdifTree {
            base_dn: "dc=ccdir".into(),
        };
        let org = OrganisationInput {
            id: Some("acme".parse().unwrap()),
            name: "Acme, Inc.".into(),
            ..Default::default()
        };
        let entry = EntryInput {
            address: Some("ann@acme.example.org".parse().unwrap()),
            display_name: Some("Ann Lee".into()),
            surname: Some("Lee".into()),
            organisation: Some("acme".parse().unwrap()),
            title: Some(" leading space".into()),
            kind: Some(crate::domain::EntryKind::Person),
            certificates: vec![crate::domain::pem_certificate(&[7u8; 100])],
            ..Default::default()
        };
        let mut buf = Vec::new();
        write_ldif_organisation(&mut buf, &tree, &org).unwrap();
        write_ldif_entry(&mut buf, &tree, &entry, Some("Acme, Inc.")).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(text.lines().all(|l| l.len() <= 76), "{text}");
        let rows: Vec<_> = read_ldif(buf.as_slice()).collect();
        assert_eq!(rows[0].record, Ok(ImportRecord::Organisation(org)));
        let Ok(ImportRecord::Entry(back)) = &rows[1].record else {
            panic!("{:?}", rows[1])
        };
        assert_eq!(back.title.as_deref(), Some(" leading space"));
        assert_eq!(back.organisation, entry.organisation);
        assert_eq!(back.certificates.len(), 1);
    }
}
