//! Criteria over directory entries: a protocol-neutral query language of
//! field equality, prefix/substring, ordering and presence combined with
//! and / or / not, evaluated with three-valued logic (true, false,
//! undefined) as directory protocols define it. Front ends translate their
//! own filter syntax into this; the core plans it against the index and
//! checks every candidate with [`Criteria::evaluate`].

use std::borrow::Cow;

/// A field of an entry that criteria can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The address (or domain, for domain entries).
    Address,
    /// The display name.
    DisplayName,
    /// The surname.
    Surname,
    /// The given name.
    GivenName,
    /// The organisation's id and its name.
    Organisation,
    /// Department or unit.
    Unit,
    /// Title.
    Title,
    /// Profession.
    Profession,
    /// Specialty.
    Specialty,
    /// City or town.
    Locality,
    /// Region or state.
    Region,
    /// Country code.
    Country,
    /// Postal code.
    PostalCode,
    /// Telephone number.
    Phone,
    /// Identifiers as `SCHEME:value`.
    Identifier,
    /// The entry's kind (`person`, `service`, ...).
    Kind,
    /// The fingerprints of the bound certificates (presence tests only).
    Certificate,
}

/// A substring assertion: starts with `initial`, contains each of `any` in
/// order, ends with `last`. Matching ignores case.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Substrings {
    /// What the value starts with.
    pub initial: Option<String>,
    /// What it contains after that, in order and without overlap.
    pub any: Vec<String>,
    /// What it ends with.
    pub last: Option<String>,
}

impl Substrings {
    /// Whether `value` matches, ignoring case.
    pub fn matches(&self, value: &str) -> bool {
        if value.is_ascii() && self.is_ascii() {
            self.matches_ascii(value.as_bytes())
        } else {
            self.matches_folded(value)
        }
    }

    /// [`Substrings::matches`] for any text: both sides lower-cased.
    fn matches_folded(&self, value: &str) -> bool {
        let value = value.to_lowercase();
        let mut rest = value.as_str();
        if let Some(initial) = &self.initial {
            let initial = initial.to_lowercase();
            match rest.strip_prefix(initial.as_str()) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        for part in &self.any {
            let part = part.to_lowercase();
            match rest.find(part.as_str()) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        match &self.last {
            Some(last) => rest.ends_with(last.to_lowercase().as_str()),
            None => true,
        }
    }

    fn is_ascii(&self) -> bool {
        self.initial.as_deref().is_none_or(str::is_ascii)
            && self.any.iter().all(|p| p.is_ascii())
            && self.last.as_deref().is_none_or(str::is_ascii)
    }

    /// [`Substrings::matches`] when the value and every part are ASCII,
    /// where folding case keeps lengths: no lower-cased copies.
    fn matches_ascii(&self, value: &[u8]) -> bool {
        let mut rest = value;
        if let Some(initial) = &self.initial {
            let initial = initial.as_bytes();
            match rest.get(..initial.len()) {
                Some(head) if head.eq_ignore_ascii_case(initial) => rest = &rest[initial.len()..],
                _ => return false,
            }
        }
        for part in &self.any {
            let part = part.as_bytes();
            let found = (part.len() <= rest.len())
                .then(|| {
                    (0..=rest.len() - part.len())
                        .find(|&at| rest[at..at + part.len()].eq_ignore_ascii_case(part))
                })
                .flatten();
            match found {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        match &self.last {
            Some(last) => {
                let last = last.as_bytes();
                rest.len() >= last.len()
                    && rest[rest.len() - last.len()..].eq_ignore_ascii_case(last)
            }
            None => true,
        }
    }
}

/// Whether `a` and `b` are equal ignoring case (full Unicode lower-casing;
/// no copies when both are ASCII).
fn equal_folded(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

/// A query over entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criteria {
    /// Every child holds.
    And(Vec<Criteria>),
    /// At least one child holds.
    Or(Vec<Criteria>),
    /// The child does not hold (undefined stays undefined).
    Not(Box<Criteria>),
    /// A value of the field equals this one, ignoring case.
    Equals(Field, String),
    /// A value of the field matches the substring assertion.
    Substring(Field, Substrings),
    /// A value of the field sorts at or after this one (ignoring case).
    AtLeast(Field, String),
    /// A value of the field sorts at or before this one (ignoring case).
    AtMost(Field, String),
    /// The field has a value.
    Present(Field),
    /// Always true (e.g. a test every entry passes by its type).
    True,
    /// Always false.
    False,
    /// Neither true nor false: a test the directory cannot decide (an
    /// unknown attribute, an unsupported matching rule).
    Undefined,
}

impl Criteria {
    /// Evaluates against an entry whose field values `values` gives.
    /// `Some(true)` matches, `Some(false)` does not, `None` is undefined
    /// (which excludes the entry, and stays undefined under `Not`).
    pub fn evaluate<'v>(&self, values: &dyn Fn(Field) -> Vec<Cow<'v, str>>) -> Option<bool> {
        match self {
            Criteria::And(children) => {
                let mut result = Some(true);
                for c in children {
                    match c.evaluate(values) {
                        Some(false) => return Some(false),
                        None => result = None,
                        Some(true) => {}
                    }
                }
                result
            }
            Criteria::Or(children) => {
                let mut result = Some(false);
                for c in children {
                    match c.evaluate(values) {
                        Some(true) => return Some(true),
                        None => result = None,
                        Some(false) => {}
                    }
                }
                result
            }
            Criteria::Not(child) => child.evaluate(values).map(|b| !b),
            Criteria::Equals(Field::Certificate, _) => None,
            Criteria::Equals(field, wanted) => {
                Some(values(*field).iter().any(|v| equal_folded(v, wanted)))
            }
            Criteria::Substring(Field::Certificate, _) => None,
            Criteria::Substring(field, parts) => {
                Some(values(*field).iter().any(|v| parts.matches(v)))
            }
            Criteria::AtLeast(Field::Certificate, _) | Criteria::AtMost(Field::Certificate, _) => {
                None
            }
            Criteria::AtLeast(field, bound) => {
                let bound = bound.to_lowercase();
                Some(values(*field).iter().any(|v| v.to_lowercase() >= bound))
            }
            Criteria::AtMost(field, bound) => {
                let bound = bound.to_lowercase();
                Some(values(*field).iter().any(|v| v.to_lowercase() <= bound))
            }
            Criteria::Present(field) => Some(!values(*field).is_empty()),
            Criteria::True => Some(true),
            Criteria::False => Some(false),
            Criteria::Undefined => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice(field: Field) -> Vec<Cow<'static, str>> {
        match field {
            Field::DisplayName => vec!["Alice Smith".into()],
            Field::Surname => vec!["Smith".into()],
            Field::Address => vec!["alice@x.org".into()],
            _ => vec![],
        }
    }

    fn sub(initial: &str) -> Substrings {
        Substrings {
            initial: Some(initial.into()),
            ..Default::default()
        }
    }

    #[test]
    fn substring_assertions() {
        let s = Substrings {
            initial: Some("Al".into()),
            any: vec!["e s".into()],
            last: Some("TH".into()),
        };
        assert!(s.matches("alice smith"));
        assert!(!s.matches("bob smith"));
        let overlap = Substrings {
            initial: Some("ab".into()),
            any: vec![],
            last: Some("bc".into()),
        };
        assert!(!overlap.matches("abc"));
    }

    /// The ASCII path answers as lower-casing both sides would.
    #[test]
    fn ascii_and_unicode_paths_agree() {
        let values = [
            "Alice Smith",
            "SMITH",
            "smi",
            "",
            "Jürgen Müller",
            "ÅSA STRÖM",
            "a-b-a-b",
        ];
        let parts = ["", "smi", "SMI", "th", "ü", "MÜL", "ström", "a-b", "b"];
        for value in values {
            for initial in parts {
                for any in parts {
                    for last in parts {
                        let s = Substrings {
                            initial: (!initial.is_empty()).then(|| initial.into()),
                            any: if any.is_empty() {
                                vec![]
                            } else {
                                vec![any.into()]
                            },
                            last: (!last.is_empty()).then(|| last.into()),
                        };
                        assert_eq!(
                            s.matches(value),
                            s.matches_folded(value),
                            "{s:?} on {value}"
                        );
                    }
                }
            }
            for other in values {
                assert_eq!(
                    equal_folded(value, other),
                    value.to_lowercase() == other.to_lowercase()
                );
            }
        }
    }

    #[test]
    fn three_valued_logic() {
        let t = Criteria::Substring(Field::Surname, sub("smi"));
        let f = Criteria::Equals(Field::Title, "x".into());
        let u = Criteria::Undefined;
        assert_eq!(t.evaluate(&alice), Some(true));
        assert_eq!(f.evaluate(&alice), Some(false));
        assert_eq!(Criteria::Not(Box::new(u.clone())).evaluate(&alice), None);
        assert_eq!(
            Criteria::Or(vec![u.clone(), t.clone()]).evaluate(&alice),
            Some(true)
        );
        assert_eq!(
            Criteria::Or(vec![u.clone(), f.clone()]).evaluate(&alice),
            None
        );
        assert_eq!(
            Criteria::And(vec![u.clone(), f.clone()]).evaluate(&alice),
            Some(false)
        );
        assert_eq!(Criteria::And(vec![u, t]).evaluate(&alice), None);
        assert_eq!(
            Criteria::Equals(Field::Certificate, "x".into()).evaluate(&alice),
            None
        );
        assert_eq!(
            Criteria::Present(Field::Address).evaluate(&alice),
            Some(true)
        );
    }
}
