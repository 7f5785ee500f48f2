//! The root DSE (RFC 4512 §5.1): the empty-named entry that tells clients
//! what this server is. Direct certificate discovery reads
//! `namingContexts` from it to find the base DN.

use ldap3_proto::proto::{LdapFilter, LdapPartialAttribute, LdapSearchResultEntry};

use super::entry::Selection;
use super::filter::matches_attributes;

/// Simple Paged Results (RFC 2696).
pub const CONTROL_PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
/// ManageDsaIT (RFC 3296): accepted; the tree has no referrals to manage.
pub const CONTROL_MANAGE_DSA_IT: &str = "2.16.840.1.113730.3.4.2";
/// StartTLS (RFC 4511 §4.14).
pub const EXTENSION_START_TLS: &str = "1.3.6.1.4.1.1466.20037";
/// "Who am I?" (RFC 4532).
pub const EXTENSION_WHO_AM_I: &str = "1.3.6.1.4.1.4203.1.11.3";
/// All operational attributes with `+` (RFC 3673).
const FEATURE_ALL_OPERATIONAL: &str = "1.3.6.1.4.1.4203.1.5.1";

/// The root DSE entry, if it matches `filter`.
pub fn root_dse(
    base_dn: &str,
    tls: bool,
    filter: &LdapFilter,
    selection: &Selection,
    types_only: bool,
) -> Option<LdapSearchResultEntry> {
    let mut extensions = vec![EXTENSION_WHO_AM_I.to_owned()];
    if tls {
        extensions.insert(0, EXTENSION_START_TLS.to_owned());
    }
    let user = [(
        "objectClass",
        vec!["top".to_owned(), "extensibleObject".to_owned()],
    )];
    let operational = [
        ("namingContexts", vec![base_dn.to_owned()]),
        ("supportedLDAPVersion", vec!["3".to_owned()]),
        (
            "supportedControl",
            vec![
                CONTROL_PAGED_RESULTS.to_owned(),
                CONTROL_MANAGE_DSA_IT.to_owned(),
            ],
        ),
        ("supportedExtension", extensions),
        (
            "supportedFeatures",
            vec![FEATURE_ALL_OPERATIONAL.to_owned()],
        ),
        ("vendorName", vec!["ccdir".to_owned()]),
        (
            "vendorVersion",
            vec![format!("ccdir {}", env!("CARGO_PKG_VERSION"))],
        ),
    ];
    let all: Vec<(&str, Vec<String>)> = user.iter().chain(&operational).cloned().collect();
    if matches_attributes(filter, &all) != Some(true) {
        return None;
    }
    let mut attributes = Vec::new();
    let mut emit = |name: &str, values: &[String], wanted: bool| {
        if wanted {
            attributes.push(LdapPartialAttribute {
                atype: name.to_owned(),
                vals: if types_only {
                    Vec::new()
                } else {
                    values.iter().map(|v| v.as_bytes().to_vec()).collect()
                },
            });
        }
    };
    for (name, values) in &user {
        emit(name, values, selection.wants_user_attribute(name));
    }
    for (name, values) in &operational {
        emit(name, values, selection.wants_operational_attribute(name));
    }
    Some(LdapSearchResultEntry {
        dn: String::new(),
        attributes,
    })
}
