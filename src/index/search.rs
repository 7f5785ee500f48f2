//! Full-text search and browsing: [`SearchQuery`] in, ranked keys out.
//!
//! How a text query is built (every word must match, in any field):
//!
//! ```text
//! AND over words w:
//!   OR over text fields f (boost b_f):
//!     exact   term(f, w)                      BM25 × b_f × EXACT
//!     prefix  term(f_pfx, w[..20])            BM25 × b_f × PREFIX   last word, or w ≥ 3 chars
//!     typo    fuzzy(f, w, d)                  const  b_f × TYPO     letters only, d = 1 (4–7), 2 (≥ 8)
//! AND filters (organisation, locality, kind, visibility)   score 0
//! OR  key = whole text                                      KEY (someone pasted an address)
//! ```
//!
//! A document that matches a word exactly also matches it as a prefix and
//! within the typo distance, so it always collects a superset of the score a
//! typo-only match gets in the same field: "smith" ranks Smith above Smyth.
//! Fuzzy matches score a constant (tantivy gives every fuzzy hit 1.0), kept
//! small so that a typo match never outranks an exact match in a field of
//! the same or lower weight.

use std::collections::BTreeMap;
use std::ops::Bound;

use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, FuzzyTermQuery, Occur, Query, RangeQuery,
    TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocAddress, Order, Searcher, Term};

use super::analysis::{self, MAX_TOKEN_BYTES};
use super::cursor::{self, Position};
use super::schema::Fields;
use super::{IndexError, SearchIndex};
use crate::domain::{EntryKind, OrgId, VisibilityScope};

/// Most keys one page returns.
pub const MAX_LIMIT: usize = 100;
/// Page size when the caller asks for 0.
pub const DEFAULT_LIMIT: usize = 20;
/// Deepest position a ranked search pages to (like Elasticsearch's
/// `max_result_window`). Browsing has no such limit.
pub const MAX_RANKED_WINDOW: usize = 10_000;
/// Longest query text accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 1024;
/// Most distinct words in one query.
pub const MAX_QUERY_WORDS: usize = 12;

/// Non-last words shorter than this (in chars) match only exactly or by typo.
const MIN_PREFIX_CHARS: usize = 3;
const EXACT: f32 = 1.0;
const PREFIX: f32 = 0.6;
const TYPO: f32 = 0.2;
const KEY: f32 = 20.0;

/// A search or browse request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Free text; empty (or without any letter or digit) means browse.
    pub text: String,
    /// Only entries of this organisation.
    pub organisation: Option<OrgId>,
    /// Only entries in this locality (case-insensitive, whole value).
    pub locality: Option<String>,
    /// Only entries of this kind.
    pub kind: Option<EntryKind>,
    /// What the caller may see.
    pub scope: VisibilityScope,
    /// Page size: 0 means [`DEFAULT_LIMIT`], anything above [`MAX_LIMIT`] is capped.
    pub limit: usize,
    /// The `next` of the previous page of this same query.
    pub cursor: Option<String>,
}

impl SearchQuery {
    /// A first-page text query with no filters.
    pub fn text(text: impl Into<String>, scope: VisibilityScope) -> SearchQuery {
        SearchQuery {
            text: text.into(),
            organisation: None,
            locality: None,
            kind: None,
            scope,
            limit: DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchPage {
    /// Entry keys, best match first (text) or in key order (browse).
    pub keys: Vec<String>,
    /// Cursor for the next page; `None` on the last one.
    pub next: Option<String>,
    /// How many entries match in all (exact at the time of the search).
    pub total: usize,
}

impl SearchIndex {
    /// Runs a search or, with no words in `text`, a browse in key order.
    pub fn search(&self, q: &SearchQuery) -> Result<SearchPage, IndexError> {
        if q.text.len() > MAX_QUERY_BYTES {
            return Err(IndexError::InvalidQuery("text longer than 1024 bytes"));
        }
        let words = analysis::query_words(&q.text);
        if words.len() > MAX_QUERY_WORDS {
            return Err(IndexError::InvalidQuery("more than 12 words"));
        }
        let limit = match q.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let check = cursor::check(&canonical(q, &words));
        let position = q
            .cursor
            .as_deref()
            .map(|c| cursor::decode(c, check))
            .transpose()?;
        let searcher = self.reader.searcher();
        let filters = filters(&self.fields, q);
        if words.is_empty() {
            let after = match position {
                None => None,
                Some(Position::After(key)) => Some(key),
                Some(Position::Offset(_)) => return Err(IndexError::InvalidCursor("wrong kind")),
            };
            self.browse(&searcher, filters, after, limit, check)
        } else {
            let offset = match position {
                None => 0,
                Some(Position::Offset(n)) if n < MAX_RANKED_WINDOW => n,
                Some(Position::Offset(_)) => return Err(IndexError::InvalidCursor("too deep")),
                Some(Position::After(_)) => return Err(IndexError::InvalidCursor("wrong kind")),
            };
            if words.iter().any(|w| w.len() > MAX_TOKEN_BYTES) {
                // No indexed term is that long, so the AND cannot match.
                return Ok(SearchPage::default());
            }
            let query = text_query(&self.fields, &q.text, &words, filters);
            self.ranked(&searcher, &query, offset, limit, check)
        }
    }

    fn ranked(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        offset: usize,
        limit: usize,
        check: [u8; 8],
    ) -> Result<SearchPage, IndexError> {
        let limit = limit.min(MAX_RANKED_WINDOW - offset);
        let collector = (
            TopDocs::with_limit(limit)
                .and_offset(offset)
                .order_by_score(),
            Count,
        );
        let (hits, total) = searcher
            .search(query, &collector)
            .map_err(IndexError::engine("searching"))?;
        let keys = keys_of(searcher, self.fields.key, hits.iter().map(|(_, a)| *a))?;
        let end = offset + keys.len();
        let next = (end < total.min(MAX_RANKED_WINDOW) && !keys.is_empty())
            .then(|| cursor::encode(check, &Position::Offset(end)));
        Ok(SearchPage { keys, next, total })
    }

    fn browse(
        &self,
        searcher: &Searcher,
        filters: Vec<Box<dyn Query>>,
        after: Option<String>,
        limit: usize,
        check: [u8; 8],
    ) -> Result<SearchPage, IndexError> {
        let base: Box<dyn Query> = if filters.is_empty() {
            Box::new(AllQuery)
        } else {
            Box::new(BooleanQuery::intersection(filters))
        };
        let total = base
            .count(searcher)
            .map_err(IndexError::engine("counting"))?;
        let query: Box<dyn Query> = match &after {
            None => base,
            Some(key) => Box::new(BooleanQuery::intersection(vec![
                base,
                Box::new(RangeQuery::new(
                    Bound::Excluded(Term::from_field_text(self.fields.key, key)),
                    Bound::Unbounded,
                )),
            ])),
        };
        let collector =
            TopDocs::with_limit(limit + 1).order_by_string_fast_field("key", Order::Asc);
        let hits = searcher
            .search(&query, &collector)
            .map_err(IndexError::engine("browsing"))?;
        let mut keys: Vec<String> = hits.into_iter().filter_map(|(key, _)| key).collect();
        let next = if keys.len() > limit {
            keys.truncate(limit);
            keys.last()
                .map(|k| cursor::encode(check, &Position::After(k.clone())))
        } else {
            None
        };
        Ok(SearchPage { keys, next, total })
    }
}

/// What a cursor must agree with: everything but the page size and the cursor.
fn canonical(q: &SearchQuery, words: &[String]) -> String {
    let scope = match &q.scope {
        VisibilityScope::PublicOnly => "public".to_owned(),
        VisibilityScope::PublicAnd(org) => format!("public+{org}"),
        VisibilityScope::All => "all".to_owned(),
    };
    format!(
        "v1\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{scope}",
        words.join(" "),
        q.organisation.as_ref().map_or("", OrgId::as_str),
        q.locality
            .as_deref()
            .map(analysis::lower)
            .unwrap_or_default(),
        q.kind.map_or("", EntryKind::as_str),
    )
}

fn term(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::Basic,
    ))
}

/// The exact, unscored restrictions: the query's filters and the caller's scope.
pub(crate) fn filters(f: &Fields, q: &SearchQuery) -> Vec<Box<dyn Query>> {
    let mut out = scope_filter(f, &q.scope).into_iter().collect::<Vec<_>>();
    if let Some(org) = &q.organisation {
        out.push(term(f.org_id, org.as_str()));
    }
    if let Some(locality) = &q.locality {
        let locality = analysis::lower(locality);
        if !locality.is_empty() {
            out.push(term(f.locality, &locality));
        }
    }
    if let Some(kind) = q.kind {
        out.push(term(f.kind, kind.as_str()));
    }
    out
}

/// What `scope` lets a caller see, as a query; `None` when it sees everything.
pub(crate) fn scope_filter(f: &Fields, scope: &VisibilityScope) -> Option<Box<dyn Query>> {
    let public = || term(f.visibility, crate::domain::Visibility::Public.as_str());
    match scope {
        VisibilityScope::All => None,
        VisibilityScope::PublicOnly => Some(public()),
        VisibilityScope::PublicAnd(org) => Some(Box::new(BooleanQuery::union(vec![
            public(),
            term(f.org_id, org.as_str()),
        ]))),
    }
}

fn text_query(
    f: &Fields,
    text: &str,
    words: &[String],
    filters: Vec<Box<dyn Query>>,
) -> BooleanQuery {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for (i, word) in words.iter().enumerate() {
        clauses.push((Occur::Must, word_query(f, word, i + 1 == words.len())));
    }
    for filter in filters {
        clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(filter, 0.0))));
    }
    // Someone pasted a whole address or domain: put that entry first.
    let whole = analysis::lower(text);
    if whole.contains(['@', '.']) {
        let exact = TermQuery::new(
            Term::from_field_text(f.key, &whole),
            IndexRecordOption::Basic,
        );
        clauses.push((
            Occur::Should,
            Box::new(ConstScoreQuery::new(Box::new(exact), KEY)),
        ));
    }
    BooleanQuery::new(clauses)
}

/// Matches `word` in any text field, scored by where and how well it matched.
fn word_query(f: &Fields, word: &str, last: bool) -> Box<dyn Query> {
    let chars = word.chars().count();
    let prefix = last || chars >= MIN_PREFIX_CHARS;
    // Typos in numbers (postal codes, identifiers) find somebody else.
    let distance = if word.chars().any(|c| c.is_numeric()) {
        0
    } else {
        match chars {
            0..=3 => 0,
            4..=7 => 1,
            _ => 2,
        }
    };
    let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let mut push = |q: Box<dyn Query>, boost: f32| {
        should.push((Occur::Should, Box::new(BoostQuery::new(q, boost))));
    };
    for field in f.text() {
        let exact = TermQuery::new(
            Term::from_field_text(field.words, word),
            IndexRecordOption::WithFreqs,
        );
        push(Box::new(exact), field.boost * EXACT);
        if prefix {
            let gram = TermQuery::new(
                Term::from_field_text(field.prefixes, analysis::gram(word)),
                IndexRecordOption::WithFreqs,
            );
            push(Box::new(gram), field.boost * PREFIX);
        }
        if distance > 0 && field.fuzzy {
            let typo =
                FuzzyTermQuery::new(Term::from_field_text(field.words, word), distance, true);
            push(Box::new(typo), field.boost * TYPO);
        }
    }
    Box::new(BooleanQuery::new(should))
}

/// Reads the keys of hits from the `key` fast field, keeping their order.
pub(crate) fn keys_of(
    searcher: &Searcher,
    key: Field,
    hits: impl Iterator<Item = DocAddress>,
) -> Result<Vec<String>, IndexError> {
    let hits: Vec<DocAddress> = hits.collect();
    let mut by_segment: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, hit) in hits.iter().enumerate() {
        by_segment.entry(hit.segment_ord).or_default().push(i);
    }
    let name = searcher.schema().get_field_name(key).to_owned();
    let mut keys = vec![String::new(); hits.len()];
    for (segment, positions) in by_segment {
        let column = searcher
            .segment_reader(segment)
            .fast_fields()
            .str(&name)
            .map_err(IndexError::engine("reading keys"))?;
        let Some(column) = column else { continue };
        for i in positions {
            if let Some(ord) = column.ords().first(hits[i].doc_id) {
                column
                    .ord_to_str(ord, &mut keys[i])
                    .map_err(IndexError::io("reading keys"))?;
            }
        }
    }
    keys.retain(|k| !k.is_empty());
    Ok(keys)
}
