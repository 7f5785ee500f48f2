//! Attribute matching for the LDAP front end: equality and substring
//! filters (`(cn=smi*)`, `(mail=*@example.org)`) on whole lower-cased
//! attribute values.
//!
//! Each attribute has a field holding the whole value as one term (`mail`
//! is the key field itself, less the domain entries, which have no mailbox).
//! A substring filter walks that field's term dictionary (distinct values,
//! sorted; with an initial part, only the range that starts with it),
//! keeps the values that match, and then looks those values up like any
//! other terms, restricted to what the caller may see. No document is
//! scanned. Matching is case-insensitive (LDAP `caseIgnoreMatch`, without
//! its whitespace folding).

use std::collections::BTreeSet;

use tantivy::Term;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{Field, IndexRecordOption};

use super::browse::KeyOrder;
use super::search::scope_clause;
use super::{IndexError, SearchIndex};
use crate::domain::{EntryKind, OrgId, VisibilityScope};

/// Most distinct values one substring filter may expand to.
pub const MAX_EXPANSION: usize = 100_000;
/// Most keys one attribute lookup returns.
pub const MAX_ATTR_RESULTS: usize = 10_000;

/// The LDAP attributes the index can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RawAttr {
    /// `mail`: the mailbox address (domain entries have none).
    Mail,
    /// `cn`: the display name.
    Cn,
    /// `sn`: the surname.
    Sn,
    /// `givenName`.
    GivenName,
}

/// An LDAP substring assertion (RFC 4511 §4.5.1.7.2): the value starts with
/// `initial`, then contains each of `any` in order, then ends with `last`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Substrings<'a> {
    /// What the value starts with (`smi` in `smi*`).
    pub initial: Option<&'a str>,
    /// What it contains after that, in order (`mit` in `*mit*`).
    pub any: &'a [&'a str],
    /// What it ends with (`son` in `*son`).
    pub last: Option<&'a str>,
}

impl SearchIndex {
    fn attr_field(&self, attr: RawAttr) -> Field {
        match attr {
            RawAttr::Mail => self.fields.key,
            RawAttr::Cn => self.fields.cn,
            RawAttr::Sn => self.fields.sn,
            RawAttr::GivenName => self.fields.given,
        }
    }

    /// Keys of entries whose `attr` equals `value` (case-insensitively), in key order.
    pub fn keys_with_value(
        &self,
        attr: RawAttr,
        value: &str,
        scope: &VisibilityScope,
        limit: usize,
    ) -> Result<Vec<String>, IndexError> {
        self.keys_with_value_after(attr, value, scope, None, limit)
    }

    /// [`SearchIndex::keys_with_value`] from the key after `after` on: the
    /// first `limit` keys past it, for reading a large match a page at a time.
    pub fn keys_with_value_after(
        &self,
        attr: RawAttr,
        value: &str,
        scope: &VisibilityScope,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, IndexError> {
        let term = Term::from_field_text(self.attr_field(attr), &fold(value));
        self.attr_keys(
            attr,
            Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            scope,
            after,
            limit,
        )
    }

    /// Keys of entries whose `attr` starts with `prefix`, in key order.
    pub fn keys_with_prefix(
        &self,
        attr: RawAttr,
        prefix: &str,
        scope: &VisibilityScope,
        limit: usize,
    ) -> Result<Vec<String>, IndexError> {
        let parts = Substrings {
            initial: Some(prefix),
            ..Substrings::default()
        };
        self.keys_with_substring(attr, parts, scope, limit)
    }

    /// Keys of entries whose `attr` matches the substring assertion, in key
    /// order. Fails with [`IndexError::TooBroad`] when more than
    /// [`MAX_EXPANSION`] distinct values match.
    pub fn keys_with_substring(
        &self,
        attr: RawAttr,
        parts: Substrings<'_>,
        scope: &VisibilityScope,
        limit: usize,
    ) -> Result<Vec<String>, IndexError> {
        self.keys_with_substring_after(attr, parts, scope, None, limit)
    }

    /// [`SearchIndex::keys_with_substring`] from the key after `after` on.
    pub fn keys_with_substring_after(
        &self,
        attr: RawAttr,
        parts: Substrings<'_>,
        scope: &VisibilityScope,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, IndexError> {
        let field = self.attr_field(attr);
        let initial = parts.initial.map(fold).unwrap_or_default();
        let any: Vec<String> = parts.any.iter().map(|s| fold(s)).collect();
        let last = parts.last.map(fold).unwrap_or_default();
        let searcher = self.reader.searcher();
        let mut values = BTreeSet::new();
        for segment in searcher.segment_readers() {
            let inverted = segment
                .inverted_index(field)
                .map_err(IndexError::engine("reading a term dictionary"))?;
            let mut stream = inverted
                .terms()
                .range()
                .ge(initial.as_bytes())
                .into_stream()
                .map_err(IndexError::io("reading a term dictionary"))?;
            while stream.advance() {
                let Ok(value) = std::str::from_utf8(stream.key()) else {
                    continue;
                };
                if !value.starts_with(&initial) {
                    break;
                }
                if matches(&value[initial.len()..], &any, &last) {
                    values.insert(value.to_owned());
                    if values.len() > MAX_EXPANSION {
                        return Err(IndexError::TooBroad {
                            limit: MAX_EXPANSION,
                        });
                    }
                }
            }
        }
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let terms = values.iter().map(|v| Term::from_field_text(field, v));
        self.attr_keys(
            attr,
            Box::new(TermSetQuery::new(terms)),
            scope,
            after,
            limit,
        )
    }

    /// Keys of every entry `scope` lets the caller see (only those of
    /// `organisation`, when given), in key order, starting after `after`:
    /// the enumeration behind presence filters and whole-subtree searches.
    /// Reads the key column, never the documents.
    pub fn keys_in_order(
        &self,
        organisation: Option<&OrgId>,
        scope: &VisibilityScope,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, IndexError> {
        let base: Box<dyn Query> = match organisation {
            Some(org) => Box::new(TermQuery::new(
                Term::from_field_text(self.fields.org_id, org.as_str()),
                IndexRecordOption::Basic,
            )),
            None => Box::new(AllQuery),
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, base)];
        clauses.extend(scope_clause(&self.fields, scope));
        let searcher = self.reader.searcher();
        let collector = KeyOrder::new(
            &searcher,
            self.fields.key,
            after.map(str::to_owned),
            limit.clamp(1, MAX_ATTR_RESULTS),
        );
        let (_, keys) = searcher
            .search(&BooleanQuery::new(clauses), &collector)
            .map_err(IndexError::engine("enumerating entries"))?;
        Ok(keys)
    }

    fn attr_keys(
        &self,
        attr: RawAttr,
        query: Box<dyn Query>,
        scope: &VisibilityScope,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, IndexError> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, query)];
        clauses.extend(scope_clause(&self.fields, scope));
        if attr == RawAttr::Mail {
            let domain = Term::from_field_text(self.fields.kind, EntryKind::Domain.as_str());
            let domain = TermQuery::new(domain, IndexRecordOption::Basic);
            clauses.push((Occur::MustNot, Box::new(domain)));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let collector = KeyOrder::new(
            &searcher,
            self.fields.key,
            after.map(str::to_owned),
            limit.clamp(1, MAX_ATTR_RESULTS),
        );
        let (_, keys) = searcher
            .search(&query, &collector)
            .map_err(IndexError::engine("matching an attribute"))?;
        Ok(keys)
    }
}

/// A whole attribute value as the attribute fields hold it: trimmed and
/// lower-cased.
pub fn fold_value(value: &str) -> String {
    super::analysis::lower(value)
}

/// Lower-cases an assertion value like the attribute fields' analyser (no
/// trimming: spaces in substring parts are significant).
pub fn fold(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Whether `rest` (the value after the initial part) contains each of `any`
/// in order, without overlap, and then ends with `last`.
pub fn matches(rest: &str, any: &[String], last: &str) -> bool {
    let mut rest = rest;
    for part in any {
        match rest.find(part.as_str()) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn substring_parts_match_in_order_without_overlap() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(matches("ohn smith", &s(&["smi"]), "th"));
        assert!(!matches("ohn smith", &s(&["smi", "ohn"]), ""));
        assert!(!matches("abc", &s(&["bc"]), "c"));
        assert!(matches("abcc", &s(&["bc"]), "c"));
        assert!(matches("", &[], ""));
    }
}
