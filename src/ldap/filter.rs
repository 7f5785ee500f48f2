//! Search filters: LDAP filters become the core's protocol-neutral
//! [`Criteria`] for directory entries, and are evaluated directly against
//! the few synthetic nodes of the tree (the base entry, organisations).
//!
//! Matching follows RFC 4511 §4.5.1.7 with three-valued logic: a test on an
//! attribute the server does not know, or with an extensible matching rule,
//! is Undefined (and `!` of Undefined stays Undefined). Equality, substrings
//! and ordering ignore case (`caseIgnoreMatch`); approximate match (`~=`)
//! is taken as equality. Attribute options (`;binary`) are ignored when matching.

use ldap3_proto::proto::{LdapFilter, LdapSubstringFilter};

use crate::domain::{Criteria, Field, Substrings};

/// Object classes every directory entry belongs to.
pub const ENTRY_CLASSES: [&str; 5] = [
    "top",
    "person",
    "organizationalPerson",
    "inetOrgPerson",
    "pkiUser",
];

/// The attribute type of a description, lower-cased, options removed, and
/// well-known OIDs and long names replaced by the short name.
pub fn attribute_type(description: &str) -> String {
    let base = description
        .split(';')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let short = match base.as_str() {
        "0.9.2342.19200300.100.1.3" | "rfc822mailbox" => "mail",
        "2.5.4.3" | "commonname" => "cn",
        "2.5.4.4" | "surname" => "sn",
        "2.5.4.42" | "gn" => "givenname",
        "2.16.840.1.113730.3.1.241" => "displayname",
        "2.5.4.10" | "organizationname" => "o",
        "2.5.4.11" | "organizationalunitname" => "ou",
        "2.5.4.12" => "title",
        "2.5.4.7" | "localityname" => "l",
        "2.5.4.8" | "stateorprovincename" => "st",
        "2.5.4.6" | "countryname" => "c",
        "2.5.4.17" => "postalcode",
        "2.5.4.20" => "telephonenumber",
        "2.5.4.36" => "usercertificate",
        "2.16.840.1.113730.3.1.40" => "usersmimecertificate",
        "2.5.4.0" => "objectclass",
        other => return other.to_owned(),
    };
    short.to_owned()
}

/// The entry field an attribute type stands for.
fn field_of(attr: &str) -> Option<Field> {
    Some(match attr {
        "mail" => Field::Address,
        "cn" | "displayname" => Field::DisplayName,
        "sn" => Field::Surname,
        "givenname" => Field::GivenName,
        "o" => Field::Organisation,
        "ou" => Field::Unit,
        "title" => Field::Title,
        "employeetype" => Field::Profession,
        "businesscategory" => Field::Specialty,
        "l" => Field::Locality,
        "st" => Field::Region,
        "c" => Field::Country,
        "postalcode" => Field::PostalCode,
        "telephonenumber" => Field::Phone,
        "ccdiridentifier" => Field::Identifier,
        "ccdirkind" => Field::Kind,
        "usercertificate" | "usersmimecertificate" => Field::Certificate,
        _ => return None,
    })
}

fn substrings(s: &LdapSubstringFilter) -> Substrings {
    Substrings {
        initial: s.initial.clone(),
        any: s.any.clone(),
        last: s.final_.clone(),
    }
}

/// The criteria a directory entry must meet to match `filter`.
pub fn to_criteria(filter: &LdapFilter) -> Criteria {
    let truth = |b: bool| if b { Criteria::True } else { Criteria::False };
    match filter {
        LdapFilter::And(children) => Criteria::And(children.iter().map(to_criteria).collect()),
        LdapFilter::Or(children) => Criteria::Or(children.iter().map(to_criteria).collect()),
        LdapFilter::Not(child) => Criteria::Not(Box::new(to_criteria(child))),
        LdapFilter::Present(attr) => {
            let attr = attribute_type(attr);
            if attr == "objectclass" {
                return Criteria::True;
            }
            match field_of(&attr) {
                Some(field) => Criteria::Present(field),
                None => Criteria::False,
            }
        }
        LdapFilter::Equality(attr, value) | LdapFilter::Approx(attr, value) => {
            let attr = attribute_type(attr);
            if attr == "objectclass" {
                return truth(ENTRY_CLASSES.iter().any(|c| c.eq_ignore_ascii_case(value)));
            }
            match field_of(&attr) {
                Some(field) => Criteria::Equals(field, value.clone()),
                None => Criteria::Undefined,
            }
        }
        LdapFilter::Substring(attr, parts) => {
            let attr = attribute_type(attr);
            let parts = substrings(parts);
            if attr == "objectclass" {
                return truth(ENTRY_CLASSES.iter().any(|c| parts.matches(c)));
            }
            match field_of(&attr) {
                Some(field) => Criteria::Substring(field, parts),
                None => Criteria::Undefined,
            }
        }
        LdapFilter::GreaterOrEqual(attr, value) | LdapFilter::LessOrEqual(attr, value) => {
            let at_least = matches!(filter, LdapFilter::GreaterOrEqual(..));
            let attr = attribute_type(attr);
            if attr == "objectclass" {
                let v = value.to_lowercase();
                return truth(ENTRY_CLASSES.iter().any(|c| {
                    let c = c.to_lowercase();
                    if at_least { c >= v } else { c <= v }
                }));
            }
            match (field_of(&attr), at_least) {
                (Some(field), true) => Criteria::AtLeast(field, value.clone()),
                (Some(field), false) => Criteria::AtMost(field, value.clone()),
                (None, _) => Criteria::Undefined,
            }
        }
        LdapFilter::Extensible(_) => Criteria::Undefined,
    }
}

/// Evaluates `filter` against a synthetic node's attributes (type, values),
/// with the same three-valued rules.
pub fn matches_attributes(filter: &LdapFilter, attrs: &[(&str, Vec<String>)]) -> Option<bool> {
    NodeFilter::new(filter).matches(attrs)
}

/// A filter made ready to test synthetic nodes: attribute types resolved
/// and values folded once per search, not once per node (a subtree search
/// from the base tests every organisation's node).
pub struct NodeFilter(NodeTest);

/// An attribute type a node test reads; `known` when the directory's
/// schema has it (an absent known attribute has no values, an unknown one
/// makes the test undefined).
struct NodeAttr {
    name: String,
    known: bool,
}

enum NodeTest {
    And(Vec<NodeTest>),
    Or(Vec<NodeTest>),
    Not(Box<NodeTest>),
    Present(NodeAttr),
    /// Folded value.
    Equality(NodeAttr, String),
    Substring(NodeAttr, Substrings),
    /// Folded bound; `true` for `>=`.
    Ordering(NodeAttr, String, bool),
    Undefined,
}

impl NodeAttr {
    fn new(description: &str) -> NodeAttr {
        let name = attribute_type(description);
        let known = field_of(&name).is_some()
            || matches!(
                name.as_str(),
                "objectclass" | "dc" | "description" | "associateddomain"
            );
        NodeAttr { name, known }
    }
}

impl NodeFilter {
    pub fn new(filter: &LdapFilter) -> NodeFilter {
        fn compile(filter: &LdapFilter) -> NodeTest {
            match filter {
                LdapFilter::And(children) => NodeTest::And(children.iter().map(compile).collect()),
                LdapFilter::Or(children) => NodeTest::Or(children.iter().map(compile).collect()),
                LdapFilter::Not(child) => NodeTest::Not(Box::new(compile(child))),
                LdapFilter::Present(attr) => NodeTest::Present(NodeAttr::new(attr)),
                LdapFilter::Equality(attr, value) | LdapFilter::Approx(attr, value) => {
                    NodeTest::Equality(NodeAttr::new(attr), value.to_lowercase())
                }
                LdapFilter::Substring(attr, parts) => {
                    NodeTest::Substring(NodeAttr::new(attr), substrings(parts))
                }
                LdapFilter::GreaterOrEqual(attr, value) => {
                    NodeTest::Ordering(NodeAttr::new(attr), value.to_lowercase(), true)
                }
                LdapFilter::LessOrEqual(attr, value) => {
                    NodeTest::Ordering(NodeAttr::new(attr), value.to_lowercase(), false)
                }
                LdapFilter::Extensible(_) => NodeTest::Undefined,
            }
        }
        NodeFilter(compile(filter))
    }

    /// Whether a node with these attributes (type, values) matches.
    pub fn matches(&self, attrs: &[(&str, Vec<String>)]) -> Option<bool> {
        test(&self.0, attrs)
    }
}

fn test(t: &NodeTest, attrs: &[(&str, Vec<String>)]) -> Option<bool> {
    const NONE: &Vec<String> = &Vec::new();
    let values = |attr: &NodeAttr| -> Option<&Vec<String>> {
        let found = attrs
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&attr.name))
            .map(|(_, v)| v);
        found.or(attr.known.then_some(NONE))
    };
    match t {
        NodeTest::And(children) => {
            let mut result = Some(true);
            for c in children {
                match test(c, attrs) {
                    Some(false) => return Some(false),
                    None => result = None,
                    Some(true) => {}
                }
            }
            result
        }
        NodeTest::Or(children) => {
            let mut result = Some(false);
            for c in children {
                match test(c, attrs) {
                    Some(true) => return Some(true),
                    None => result = None,
                    Some(false) => {}
                }
            }
            result
        }
        NodeTest::Not(child) => test(child, attrs).map(|b| !b),
        NodeTest::Present(attr) => Some(values(attr).is_some_and(|v| !v.is_empty())),
        NodeTest::Equality(attr, value) => {
            values(attr).map(|vs| vs.iter().any(|v| v.to_lowercase() == *value))
        }
        NodeTest::Substring(attr, parts) => {
            values(attr).map(|vs| vs.iter().any(|v| parts.matches(v)))
        }
        NodeTest::Ordering(attr, bound, at_least) => values(attr).map(|vs| {
            vs.iter().any(|v| {
                let v = v.to_lowercase();
                if *at_least { v >= *bound } else { v <= *bound }
            })
        }),
        NodeTest::Undefined => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3_proto::parse_ldap_filter_str;

    fn parse(s: &str) -> LdapFilter {
        parse_ldap_filter_str(s).expect("filter")
    }

    #[test]
    fn thunderbird_shape_translates_to_indexable_criteria() {
        let c = to_criteria(&parse("(|(cn=smi*)(mail=smi*)(sn=smi*))"));
        let Criteria::Or(children) = c else {
            panic!("or expected")
        };
        assert!(matches!(
            children[0],
            Criteria::Substring(Field::DisplayName, _)
        ));
        assert!(matches!(
            children[1],
            Criteria::Substring(Field::Address, _)
        ));
    }

    #[test]
    fn object_class_and_unknown_attributes() {
        assert_eq!(to_criteria(&parse("(objectClass=*)")), Criteria::True);
        assert_eq!(
            to_criteria(&parse("(objectclass=InetOrgPerson)")),
            Criteria::True
        );
        assert_eq!(
            to_criteria(&parse("(objectClass=organization)")),
            Criteria::False
        );
        assert_eq!(to_criteria(&parse("(foo=bar)")), Criteria::Undefined);
        assert_eq!(to_criteria(&parse("(foo=*)")), Criteria::False);
        assert_eq!(
            to_criteria(&LdapFilter::Present("userCertificate;binary".into())),
            Criteria::Present(Field::Certificate)
        );
    }

    #[test]
    fn synthetic_nodes_use_three_valued_logic() {
        let attrs = [
            (
                "objectClass",
                vec!["top".to_owned(), "organization".to_owned()],
            ),
            ("o", vec!["acme".to_owned(), "Acme Health".to_owned()]),
        ];
        assert_eq!(matches_attributes(&parse("(o=acme*)"), &attrs), Some(true));
        assert_eq!(matches_attributes(&parse("(mail=x)"), &attrs), Some(false));
        assert_eq!(matches_attributes(&parse("(foo=x)"), &attrs), None);
        assert_eq!(matches_attributes(&parse("(!(foo=x))"), &attrs), None);
        assert_eq!(matches_attributes(&parse("(mail=*)"), &attrs), Some(false));
        assert_eq!(
            matches_attributes(&parse("(|(foo=x)(objectClass=organization))"), &attrs),
            Some(true)
        );
    }
}
