//! Where things sit in the directory tree, the naming scheme shared by the
//! LDAP front end and the LDIF format:
//!
//! ```text
//! <base>                                            the tree's root entry
//! o=<organisation id>,<base>                        an organisation
//! mail=<address>,o=<organisation id>,<base>         an entry of an organisation
//! mail=<address>,<base>                             an entry without one
//! uid=<user>,o=<organisation id>,<base>             an organisation's user (bind only)
//! ```
//!
//! Distinguished names are written and read as RFC 4514 strings. Parsing
//! here is syntax only (attribute types, escapes, hex pairs); what a name
//! points at is decided by [`DirectoryTree::locate`].

use std::fmt;

use super::{DomainError, OrgId};

/// One attribute type and value of a relative distinguished name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ava {
    /// The attribute type, lower-cased (`mail`, `o`, `dc`, or a dotted OID).
    pub attr: String,
    /// The value with escapes resolved.
    pub value: String,
}

/// A parsed distinguished name: its RDNs, leftmost (most specific) first.
/// Multi-valued RDNs keep their parts together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dn(pub Vec<Vec<Ava>>);

impl Dn {
    /// Parses an RFC 4514 string. The empty string is the root DSE's name.
    pub fn parse(text: &str) -> Result<Dn, DomainError> {
        let bad = |reason: &str| DomainError::InvalidField {
            field: "distinguished name",
            reason: reason.to_owned(),
        };
        if text.len() > 4096 {
            return Err(bad("longer than 4096 octets"));
        }
        if text.trim().is_empty() {
            return Ok(Dn(Vec::new()));
        }
        let mut rdns = Vec::new();
        let mut rdn = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            // attribute type
            let mut attr = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' {
                    break;
                }
                attr.push(c);
                chars.next();
            }
            if chars.next() != Some('=') {
                return Err(bad("an RDN needs attribute=value"));
            }
            let attr = attr.trim().to_ascii_lowercase();
            let descr = attr.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            let oid = !attr.is_empty()
                && attr
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if !descr && !oid {
                return Err(bad("invalid attribute type"));
            }
            // value
            let mut value: Vec<u8> = Vec::new();
            let mut trailing_unescaped_spaces = 0usize;
            let mut started = false;
            let mut end = None;
            while let Some(c) = chars.next() {
                match c {
                    ',' | ';' | '+' => {
                        end = Some(c);
                        break;
                    }
                    '\\' => {
                        started = true;
                        trailing_unescaped_spaces = 0;
                        let Some(n) = chars.next() else {
                            return Err(bad("a trailing backslash"));
                        };
                        if n.is_ascii_hexdigit() {
                            let Some(m) = chars.next().filter(char::is_ascii_hexdigit) else {
                                return Err(bad(
                                    "a backslash needs a special character or two hex digits",
                                ));
                            };
                            let byte = u8::from_str_radix(&format!("{n}{m}"), 16)
                                .map_err(|_| bad("invalid hex escape"))?;
                            value.push(byte);
                        } else if " \"#+,;<=>\\".contains(n) {
                            let mut buf = [0u8; 4];
                            value.extend_from_slice(n.encode_utf8(&mut buf).as_bytes());
                        } else {
                            return Err(bad(
                                "a backslash needs a special character or two hex digits",
                            ));
                        }
                    }
                    ' ' if !started => {}
                    '"' | '<' | '>' => {
                        return Err(bad("an unescaped special character in a value"));
                    }
                    _ => {
                        started = true;
                        if c == ' ' {
                            trailing_unescaped_spaces += 1;
                        } else {
                            trailing_unescaped_spaces = 0;
                        }
                        let mut buf = [0u8; 4];
                        value.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
            value.truncate(value.len() - trailing_unescaped_spaces);
            let value = String::from_utf8(value).map_err(|_| bad("a value is not UTF-8"))?;
            rdn.push(Ava { attr, value });
            match end {
                Some('+') => continue,
                Some(_) => {
                    rdns.push(std::mem::take(&mut rdn));
                    if chars.peek().is_none() {
                        return Err(bad("a trailing separator"));
                    }
                }
                None => {
                    rdns.push(rdn);
                    return Ok(Dn(rdns));
                }
            }
        }
    }

    /// True for the empty name (the root DSE).
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `self` is `ancestor` or lies below it (types and values compared without case).
    pub fn is_within(&self, ancestor: &Dn) -> bool {
        self.0.len() >= ancestor.0.len()
            && self.0[self.0.len() - ancestor.0.len()..]
                .iter()
                .zip(&ancestor.0)
                .all(|(a, b)| same_rdn(a, b))
    }

    /// The RDNs above `ancestor`, leftmost first, when `self` lies below it.
    fn relative_to(&self, ancestor: &Dn) -> Option<&[Vec<Ava>]> {
        self.is_within(ancestor)
            .then(|| &self.0[..self.0.len() - ancestor.0.len()])
    }
}

fn same_rdn(a: &[Ava], b: &[Ava]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter()
                .any(|y| x.attr == y.attr && x.value.to_lowercase() == y.value.to_lowercase())
        })
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            for (j, ava) in rdn.iter().enumerate() {
                if j > 0 {
                    f.write_str("+")?;
                }
                write!(f, "{}={}", ava.attr, escape_dn_value(&ava.value))?;
            }
        }
        Ok(())
    }
}

/// RFC 4514 escaping of an attribute value inside a DN.
pub fn escape_dn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 4);
    push_escaped(&mut out, v);
    out
}

/// Appends `v` escaped as [`escape_dn_value`] does.
fn push_escaped(out: &mut String, v: &str) {
    let plain = |c: u8| {
        !matches!(
            c,
            b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';' | b'=' | b' ' | b'#' | 0
        )
    };
    if v.bytes().all(plain) {
        out.push_str(v);
        return;
    }
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        if c == '\0' {
            out.push_str("\\00");
            continue;
        }
        out.push(c);
    }
}

/// What a distinguished name points at in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeNode {
    /// The empty name: the root DSE, which describes the server.
    RootDse,
    /// The base DN itself.
    Base,
    /// `o=<id>,<base>`.
    Organisation(OrgId),
    /// `mail=<address>,[o=<id>,]<base>`: the entry with this lower-cased key,
    /// placed under that organisation (or none).
    Entry {
        key: String,
        organisation: Option<OrgId>,
    },
    /// `uid=<name>,o=<id>,<base>`: a user of an organisation.
    User { organisation: OrgId, name: String },
    /// A well-formed name that is not in this tree (or below a leaf).
    Outside,
}

/// The tree's shape under a base DN.
#[derive(Debug, Clone)]
pub struct DirectoryTree {
    /// The base DN as configured, e.g. `dc=ccdir`.
    pub base_dn: String,
}

impl DirectoryTree {
    /// The DN of an organisation.
    pub fn organisation_dn(&self, org: &OrgId) -> String {
        let mut dn = String::with_capacity(org.as_str().len() + self.base_dn.len() + 4);
        self.push_organisation_dn(&mut dn, org);
        dn
    }

    fn push_organisation_dn(&self, dn: &mut String, org: &OrgId) {
        dn.push_str("o=");
        push_escaped(dn, org.as_str());
        dn.push(',');
        dn.push_str(&self.base_dn);
    }

    /// The DN of an entry published under `address` (a mailbox or a domain).
    pub fn entry_dn(&self, address: &str, org: Option<&OrgId>) -> String {
        let mut dn = String::with_capacity(address.len() + self.base_dn.len() + 40);
        dn.push_str("mail=");
        push_escaped(&mut dn, address);
        dn.push(',');
        match org {
            Some(o) => self.push_organisation_dn(&mut dn, o),
            None => dn.push_str(&self.base_dn),
        }
        dn
    }

    /// The DN a user binds with.
    pub fn user_dn(&self, org: &OrgId, name: &str) -> String {
        format!(
            "uid={},{}",
            escape_dn_value(name),
            self.organisation_dn(org)
        )
    }

    /// What `dn` names. Fails only when the text is not a DN at all (or the
    /// configured base is not one).
    pub fn locate(&self, dn: &str) -> Result<TreeNode, DomainError> {
        let dn = Dn::parse(dn)?;
        if dn.is_root() {
            return Ok(TreeNode::RootDse);
        }
        let base = Dn::parse(&self.base_dn)?;
        let Some(rel) = dn.relative_to(&base) else {
            return Ok(TreeNode::Outside);
        };
        let single = |rdn: &[Ava], attr: &str| -> Option<String> {
            match rdn {
                [ava] if ava.attr == attr => Some(ava.value.clone()),
                _ => None,
            }
        };
        let org = |rdn: &[Ava]| single(rdn, "o").and_then(|v| v.parse::<OrgId>().ok());
        Ok(match rel {
            [] => TreeNode::Base,
            [o] => match (org(o), single(o, "mail")) {
                (Some(id), _) => TreeNode::Organisation(id),
                (None, Some(mail)) => TreeNode::Entry {
                    key: mail.to_lowercase(),
                    organisation: None,
                },
                _ => TreeNode::Outside,
            },
            [leaf, o] => match (org(o), single(leaf, "mail"), single(leaf, "uid")) {
                (Some(id), Some(mail), _) => TreeNode::Entry {
                    key: mail.to_lowercase(),
                    organisation: Some(id),
                },
                (Some(id), None, Some(name)) => TreeNode::User {
                    organisation: id,
                    name,
                },
                _ => TreeNode::Outside,
            },
            _ => TreeNode::Outside,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> DirectoryTree {
        DirectoryTree {
            base_dn: "dc=ccdir".into(),
        }
    }

    #[test]
    fn parses_escapes_and_spaces() {
        let dn = Dn::parse(r"mail=a\2Cb@x.org , o = acme,DC=ccdir").unwrap();
        assert_eq!(dn.0.len(), 3);
        assert_eq!(dn.0[0][0].value, "a,b@x.org");
        assert_eq!(dn.0[1][0].attr, "o");
        assert_eq!(dn.0[2][0].attr, "dc");
        let multi = Dn::parse("cn=a+sn=b,dc=x").unwrap();
        assert_eq!(multi.0[0].len(), 2);
        assert_eq!(
            Dn::parse(r"cn=trailing\ ").unwrap().0[0][0].value,
            "trailing "
        );
    }

    #[test]
    fn rejects_what_is_not_a_dn() {
        for bad in [
            "nonsense", "=x", "1a=x", "cn=a,", r"cn=a\", r"cn=a\zz", "cn=a<b", "c n=x",
        ] {
            assert!(Dn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn locates_nodes() {
        let t = tree();
        assert_eq!(t.locate("").unwrap(), TreeNode::RootDse);
        assert_eq!(t.locate("DC=CCDIR").unwrap(), TreeNode::Base);
        assert_eq!(
            t.locate("o=acme,dc=ccdir").unwrap(),
            TreeNode::Organisation("acme".parse().unwrap())
        );
        assert_eq!(
            t.locate("mail=Alice@X.org,o=acme,dc=ccdir").unwrap(),
            TreeNode::Entry {
                key: "alice@x.org".into(),
                organisation: Some("acme".parse().unwrap())
            }
        );
        assert_eq!(
            t.locate("mail=x.org,dc=ccdir").unwrap(),
            TreeNode::Entry {
                key: "x.org".into(),
                organisation: None
            }
        );
        assert_eq!(
            t.locate("uid=bob,o=acme,dc=ccdir").unwrap(),
            TreeNode::User {
                organisation: "acme".parse().unwrap(),
                name: "bob".into()
            }
        );
        assert_eq!(t.locate("dc=other").unwrap(), TreeNode::Outside);
        assert_eq!(t.locate("cn=x,o=acme,dc=ccdir").unwrap(), TreeNode::Outside);
        assert!(t.locate("garbage").is_err());
    }

    #[test]
    fn built_names_locate_back() {
        let t = tree();
        let org: OrgId = "acme".parse().unwrap();
        let dn = t.entry_dn("o'neil+x@acme.org", Some(&org));
        assert_eq!(
            t.locate(&dn).unwrap(),
            TreeNode::Entry {
                key: "o'neil+x@acme.org".into(),
                organisation: Some(org.clone())
            }
        );
        assert_eq!(
            t.locate(&t.user_dn(&org, "bob")).unwrap(),
            TreeNode::User {
                organisation: org,
                name: "bob".into()
            }
        );
    }
}
