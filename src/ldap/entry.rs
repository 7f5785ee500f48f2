//! How the tree's nodes look over LDAP: directory entries as
//! `inetOrgPerson` (the same attributes the LDIF export writes),
//! organisations as `organization`, the base entry; and which of their
//! attributes a search asked for (`*`, `+`, `1.1`, names).
//!
//! Certificates: `userCertificate` holds each bound certificate's DER and
//! is returned under exactly the description the client asked for
//! (`userCertificate;binary` or plain `userCertificate`; `*` gives
//! `;binary`), because clients look values up by the name they requested.
//! `userSMIMECertificate` holds, per certificate, a certs-only PKCS#7 with
//! the certificate and the chain supplied with it. Every certificate bound
//! to a visible entry is served, whatever its trust status: clients pick the
//! usable ones by validity and path (as Direct's DCDT expects them to).

use super::ber::EncodedEntries;
use super::filter::{ENTRY_CLASSES, attribute_type};
use crate::core::{EntryView, certs_only_pkcs7};
use crate::domain::{DirectoryTree, Organisation};

/// The user attributes of directory entries, in the order entries list
/// them; [`Selection`] answers for these by position, once per search.
const ENTRY_USER_ATTRS: [&str; 18] = [
    "objectClass",
    "mail",
    "cn",
    "displayName",
    "sn",
    "givenName",
    "o",
    "ou",
    "title",
    "employeeType",
    "businessCategory",
    "l",
    "st",
    "c",
    "postalCode",
    "telephoneNumber",
    "ccdirIdentifier",
    "ccdirKind",
];

/// Positions in [`ENTRY_USER_ATTRS`].
mod at {
    pub const OBJECT_CLASS: usize = 0;
    pub const MAIL: usize = 1;
    pub const CN: usize = 2;
    pub const DISPLAY_NAME: usize = 3;
    pub const SN: usize = 4;
    pub const GIVEN_NAME: usize = 5;
    pub const O: usize = 6;
    pub const OU: usize = 7;
    pub const TITLE: usize = 8;
    pub const EMPLOYEE_TYPE: usize = 9;
    pub const BUSINESS_CATEGORY: usize = 10;
    pub const L: usize = 11;
    pub const ST: usize = 12;
    pub const C: usize = 13;
    pub const POSTAL_CODE: usize = 14;
    pub const TELEPHONE_NUMBER: usize = 15;
    pub const CCDIR_IDENTIFIER: usize = 16;
    pub const CCDIR_KIND: usize = 17;
}

/// The attributes a search asked for (RFC 4511 §4.5.1.8).
#[derive(Debug, Clone)]
pub struct Selection {
    /// All user attributes (`*`, or no list at all).
    all_user: bool,
    /// All operational attributes (`+`).
    operational: bool,
    /// Requested descriptions as sent, and their attribute types.
    named: Vec<(String, String)>,
    /// Bit `i`: [`ENTRY_USER_ATTRS`]`[i]` is to be returned.
    entry_user: u32,
}

impl Selection {
    /// Reads the requested attribute list.
    pub fn new(requested: &[String]) -> Selection {
        let named: Vec<(String, String)> = requested
            .iter()
            .filter(|a| !matches!(a.as_str(), "*" | "+" | "1.1"))
            .map(|a| (a.clone(), attribute_type(a)))
            .collect();
        let mut selection = Selection {
            all_user: requested.is_empty() || requested.iter().any(|a| a == "*"),
            operational: requested.iter().any(|a| a == "+"),
            named,
            entry_user: 0,
        };
        for (i, name) in ENTRY_USER_ATTRS.iter().enumerate() {
            if selection.wants_user(name) {
                selection.entry_user |= 1 << i;
            }
        }
        selection
    }

    /// Whether a user attribute (any case) is to be returned.
    pub fn wants_user_attribute(&self, name: &str) -> bool {
        self.wants_user(&attribute_type(name))
    }

    /// Whether an operational attribute (any case) is to be returned.
    pub fn wants_operational_attribute(&self, name: &str) -> bool {
        self.wants_operational(&attribute_type(name))
    }

    /// `attr` is an attribute type in any case (types are ASCII).
    fn wants_user(&self, attr: &str) -> bool {
        self.all_user || self.named.iter().any(|(_, t)| t.eq_ignore_ascii_case(attr))
    }

    fn wants_operational(&self, attr: &str) -> bool {
        self.operational || self.named.iter().any(|(_, t)| t.eq_ignore_ascii_case(attr))
    }

    /// The descriptions to return a binary attribute under: each one asked
    /// for, as written; `<name>;binary` when only `*` asked.
    fn binary_names(&self, attr: &str, canonical: &str) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (sent, t) in &self.named {
            if t == attr && !names.iter().any(|n| n.eq_ignore_ascii_case(sent)) {
                names.push(sent.clone());
            }
        }
        if names.is_empty() && self.all_user {
            names.push(format!("{canonical};binary"));
        }
        names
    }
}

/// Writes the attributes of one result entry, as selected, into the
/// search's encoder.
struct Builder<'a> {
    selection: &'a Selection,
    types_only: bool,
    out: &'a mut EncodedEntries,
}

impl Builder<'_> {
    fn push(&mut self, name: &str, vals: &[&[u8]]) {
        if vals.is_empty() {
            return;
        }
        self.out
            .attribute(name, if self.types_only { &[] } else { vals });
    }

    fn user(&mut self, name: &str, vals: &[&[u8]]) {
        if self.selection.wants_user(name) {
            self.push(name, vals);
        }
    }

    /// Whether [`ENTRY_USER_ATTRS`]`[i]` is to be returned.
    fn wants_entry(&self, i: usize) -> bool {
        self.selection.entry_user & (1 << i) != 0
    }

    /// [`Builder::user`] for [`ENTRY_USER_ATTRS`]`[i]`.
    fn entry_user(&mut self, i: usize, vals: &[&[u8]]) {
        if self.wants_entry(i) {
            self.push(ENTRY_USER_ATTRS[i], vals);
        }
    }

    /// One text value (when there is one) of [`ENTRY_USER_ATTRS`]`[i]`.
    fn entry_text(&mut self, i: usize, value: Option<&str>) {
        if let Some(v) = value {
            self.entry_user(i, &[v.as_bytes()]);
        }
    }

    fn operational(&mut self, name: &str, vals: &[&[u8]]) {
        if self.selection.wants_operational(name) {
            self.push(name, vals);
        }
    }
}

fn bytes_of<'a>(values: &'a [&str]) -> Vec<&'a [u8]> {
    values.iter().map(|v| v.as_bytes()).collect()
}

/// GeneralizedTime (RFC 4517 §3.3.13) in UTC.
fn generalized_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y%m%d%H%M%SZ").to_string()
}

/// Appends the search result entry for a directory entry to `out`.
pub fn entry(
    out: &mut EncodedEntries,
    tree: &DirectoryTree,
    view: &EntryView,
    selection: &Selection,
    types_only: bool,
) {
    let e = &view.record.entry;
    let address = e.address.text();
    let dn = tree.entry_dn(&address, e.organisation.as_ref());
    let mut b = Builder {
        selection,
        types_only,
        out,
    };
    b.entry_user(at::OBJECT_CLASS, &bytes_of(&ENTRY_CLASSES));
    b.entry_text(at::MAIL, Some(&address));
    b.entry_text(at::CN, Some(&e.display_name));
    b.entry_text(at::DISPLAY_NAME, Some(&e.display_name));
    // inetOrgPerson (through person) must have a surname.
    b.entry_text(
        at::SN,
        Some(e.surname.as_deref().unwrap_or(&e.display_name)),
    );
    b.entry_text(at::GIVEN_NAME, e.given_name.as_deref());
    b.entry_text(at::O, view.organisation_name.as_deref());
    b.entry_text(at::OU, e.unit.as_deref());
    b.entry_text(at::TITLE, e.title.as_deref());
    b.entry_text(at::EMPLOYEE_TYPE, e.profession.as_deref());
    b.entry_text(at::BUSINESS_CATEGORY, e.specialty.as_deref());
    b.entry_text(at::L, e.locality.as_deref());
    b.entry_text(at::ST, e.region.as_deref());
    b.entry_text(at::C, e.country.as_deref());
    b.entry_text(at::POSTAL_CODE, e.postal_code.as_deref());
    b.entry_text(at::TELEPHONE_NUMBER, e.phone.as_deref());
    if b.wants_entry(at::CCDIR_IDENTIFIER) {
        let ids: Vec<String> = e.identifiers.iter().map(|i| i.to_string()).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        b.entry_user(at::CCDIR_IDENTIFIER, &bytes_of(&ids));
    }
    b.entry_text(at::CCDIR_KIND, Some(e.kind.as_str()));
    let certs = &view.record.certificates;
    for name in selection.binary_names("usercertificate", "userCertificate") {
        let ders: Vec<&[u8]> = certs.iter().map(|c| c.certificate.der.as_slice()).collect();
        b.push(&name, &ders);
    }
    for name in selection.binary_names("usersmimecertificate", "userSMIMECertificate") {
        if types_only {
            b.push(&name, &vec![&[][..]; certs.len().min(1)]);
            continue;
        }
        let bundles: Vec<Vec<u8>> = certs
            .iter()
            .map(|c| {
                let mut ders: Vec<&[u8]> = vec![&c.certificate.der];
                ders.extend(c.chain.iter().map(Vec::as_slice));
                certs_only_pkcs7(&ders)
            })
            .collect();
        let bundles: Vec<&[u8]> = bundles.iter().map(Vec::as_slice).collect();
        b.push(&name, &bundles);
    }
    b.operational("entryDN", &[dn.as_bytes()]);
    b.operational("structuralObjectClass", &[b"inetOrgPerson"]);
    b.operational("hasSubordinates", &[b"FALSE"]);
    if selection.wants_operational("modifytimestamp") {
        b.operational(
            "modifyTimestamp",
            &[generalized_time(e.updated_at).as_bytes()],
        );
    }
    b.out.finish_entry(&dn);
}

/// An organisation node's attributes (type, values), for filters and results.
pub fn organisation_attributes(org: &Organisation) -> Vec<(&'static str, Vec<String>)> {
    let mut o = vec![org.id.to_string()];
    if org.name != org.id.as_str() {
        o.push(org.name.clone());
    }
    let opt = |v: &Option<String>| v.iter().cloned().collect::<Vec<_>>();
    vec![
        ("objectClass", vec!["top".into(), "organization".into()]),
        ("o", o),
        ("description", opt(&org.description)),
        ("l", opt(&org.locality)),
        ("st", opt(&org.region)),
        ("c", opt(&org.country)),
        (
            "associatedDomain",
            org.domains.iter().map(|d| d.to_string()).collect(),
        ),
    ]
}

/// The base entry's attributes: named after its first RDN.
pub fn base_attributes(tree: &DirectoryTree) -> Vec<(&'static str, Vec<String>)> {
    let first = crate::domain::Dn::parse(&tree.base_dn)
        .ok()
        .and_then(|dn| dn.0.first().and_then(|rdn| rdn.first().cloned()));
    match first {
        Some(ava) if ava.attr == "dc" => vec![
            (
                "objectClass",
                vec!["top".into(), "dcObject".into(), "organization".into()],
            ),
            ("dc", vec![ava.value.clone()]),
            ("o", vec![ava.value]),
        ],
        Some(ava) if ava.attr == "o" => vec![
            ("objectClass", vec!["top".into(), "organization".into()]),
            ("o", vec![ava.value]),
        ],
        _ => vec![("objectClass", vec!["top".into(), "extensibleObject".into()])],
    }
}

/// Appends the search result entry for a synthetic node with these
/// attributes to `out`.
pub fn synthetic(
    out: &mut EncodedEntries,
    dn: &str,
    attributes: &[(&'static str, Vec<String>)],
    structural: &str,
    selection: &Selection,
    types_only: bool,
) {
    let mut b = Builder {
        selection,
        types_only,
        out,
    };
    for (name, values) in attributes {
        let values: Vec<&[u8]> = values.iter().map(String::as_bytes).collect();
        b.user(name, &values);
    }
    b.operational("entryDN", &[dn.as_bytes()]);
    b.operational("structuralObjectClass", &[structural.as_bytes()]);
    b.operational("hasSubordinates", &[b"TRUE"]);
    b.out.finish_entry(dn);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sel: &Selection, attr: &str, canonical: &str) -> Vec<String> {
        sel.binary_names(attr, canonical)
    }

    #[test]
    fn selection_rules() {
        let all = Selection::new(&[]);
        assert!(all.wants_user("mail") && !all.wants_operational("entrydn"));
        let none = Selection::new(&["1.1".into()]);
        assert!(!none.wants_user("mail") && !none.wants_operational("entrydn"));
        let plus = Selection::new(&["+".into()]);
        assert!(!plus.wants_user("mail") && plus.wants_operational("entrydn"));
        let some = Selection::new(&["MAIL".into(), "entryDN".into()]);
        assert!(some.wants_user("mail") && !some.wants_user("cn"));
        assert!(some.wants_operational("entrydn"));
    }

    #[test]
    fn certificates_echo_the_requested_description() {
        let sel = Selection::new(&["userCertificate;binary".into()]);
        assert_eq!(
            names(&sel, "usercertificate", "userCertificate"),
            ["userCertificate;binary"]
        );
        let sel = Selection::new(&["usercertificate".into(), "userCertificate;binary".into()]);
        assert_eq!(
            names(&sel, "usercertificate", "userCertificate"),
            ["usercertificate", "userCertificate;binary"]
        );
        let sel = Selection::new(&["*".into()]);
        assert_eq!(
            names(&sel, "usercertificate", "userCertificate"),
            ["userCertificate;binary"]
        );
        let sel = Selection::new(&["mail".into()]);
        assert!(names(&sel, "usercertificate", "userCertificate").is_empty());
    }
}
