//! Full-text search and browsing: [`SearchQuery`] in, ranked keys out.
//!
//! How a text query is built (every word must match, in any field):
//!
//! ```text
//! AND over words w:
//!   OR over text fields f (boost b_f):
//!     exact   term(f, w)                      BM25 × b_f × EXACT
//!     prefix  term(f_pfx, w[..12])            const  b_f × PREFIX   last word, or w ≥ 3 chars;
//!                                                                   names only if w < 3 chars
//!     typo    term(f, t) for t near w         const  b_f × TYPO     letters only, d = 1 (4–7), 2 (≥ 8)
//!   OR key = whole text                                     KEY (someone pasted an address)
//! AND filters (organisation, locality, kind, visibility)   score 0
//! ```
//!
//! Typo clauses are added only when the query without them matches fewer
//! than [`TYPO_FALLBACK`] entries (see there).
//!
//! For two words or more without typos, what matches is found apart from
//! how it scores ([`SparseScoreQuery`]): a word of three characters or more
//! matches exactly where `all_pfx = w[..12]` or `ident = w` does — two
//! posting lists where the clauses above are up to ten — and only the
//! documents every word matches are then scored, by the clauses above.
//! Shorter words are found through their clauses themselves. At 1 M
//! entries that took the p99 of "specialty + city" queries from 8.4-8.8 to
//! 4.5-4.8 ms (BENCHMARKS.md §1).
//!
//! A document that matches a word exactly also matches it as a prefix, and
//! the constants are ordered EXACT > PREFIX > TYPO, so in any one field an
//! exact match outranks a prefix match, which outranks a typo: "smith"
//! ranks Smith above Smithson above Smyth. Typo matches score a small
//! constant (tantivy's own fuzzy query also scores every hit 1.0), so a
//! typo match never outranks an exact match in a field of the same or lower
//! weight. The near terms are found once per query by walking each term
//! dictionary with a Levenshtein automaton (transpositions count as one).

use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, DfaWrapper, FuzzyTermQuery, Occur, Query,
    QueryClone, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use super::analysis::{self, MAX_TOKEN_BYTES};
use super::cursor::{self, Position};
use super::schema::Fields;
use super::sparse::SparseScoreQuery;
use super::{IndexError, SearchIndex};
use crate::domain::{EntryKind, OrgId, Visibility, VisibilityScope};

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

/// Non-last words shorter than this (in chars) match only exactly or by
/// typo; a last word this short matches as a prefix in names only.
const MIN_PREFIX_CHARS: usize = analysis::MIN_LONG_PREFIX;
const EXACT: f32 = 1.0;
const PREFIX: f32 = 0.6;
const TYPO: f32 = 0.2;
const KEY: f32 = 20.0;
/// Below this many exact and prefix matches (a default page), a text search
/// runs again with typo tolerance. Typo matches rank after all exact and
/// prefix matches, so above it they would only trail a full page; leaving
/// them out keeps common words from fanning out into every near term, which
/// is most of the cost of a query at a million entries.
pub const TYPO_FALLBACK: usize = DEFAULT_LIMIT;
/// Most near terms one word expands to per field by typo tolerance.
const MAX_TYPO_TERMS: usize = 32;

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
    pub fn new(text: impl Into<String>, scope: VisibilityScope) -> SearchQuery {
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
    /// How many entries match in all, counted exactly at the time of the
    /// search (typo matches count only when the search fell back to them).
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
            let f = &self.fields;
            let exact = text_query(f, &searcher, &q.text, &words, filters, false)?;
            let page = self.ranked(&searcher, &exact, offset, limit, check)?;
            if page.total >= TYPO_FALLBACK || !words.iter().any(|w| typo_distance(w) > 0) {
                return Ok(page);
            }
            let filters = self::filters(f, q);
            let tolerant = text_query(f, &searcher, &q.text, &words, filters, true)?;
            self.ranked(&searcher, &tolerant, offset, limit, check)
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

/// Boolean clauses, as tantivy's `BooleanQuery` takes them.
pub(crate) type Clauses = Vec<(Occur, Box<dyn Query>)>;

/// The exact, unscored restrictions: the query's filters and the caller's scope.
pub(crate) fn filters(f: &Fields, q: &SearchQuery) -> Clauses {
    let mut out: Clauses = scope_clause(f, &q.scope).into_iter().collect();
    if let Some(org) = &q.organisation {
        out.push((Occur::Must, term(f.org_id, org.as_str())));
    }
    if let Some(locality) = &q.locality {
        let locality = analysis::lower(locality);
        if !locality.is_empty() {
            out.push((Occur::Must, term(f.locality, &locality)));
        }
    }
    if let Some(kind) = q.kind {
        out.push((Occur::Must, term(f.kind, kind.as_str())));
    }
    out
}

/// What `scope` hides from a caller, as a clause; `None` when it sees everything.
///
/// "Public, or internal of my organisation" is written as "not (internal
/// and not mine)": the union it replaces would visit every public document
/// in every search, while the exclusion only looks up the internal ones.
pub(crate) fn scope_clause(f: &Fields, scope: &VisibilityScope) -> Option<(Occur, Box<dyn Query>)> {
    let visibility = |v: Visibility| term(f.visibility, v.as_str());
    match scope {
        VisibilityScope::All => None,
        VisibilityScope::PublicOnly => Some((Occur::Must, visibility(Visibility::Public))),
        VisibilityScope::PublicAnd(org) => {
            let others_internal = BooleanQuery::new(vec![
                (Occur::Must, visibility(Visibility::Internal)),
                (Occur::MustNot, term(f.org_id, org.as_str())),
            ]);
            Some((Occur::MustNot, Box::new(others_internal)))
        }
    }
}

/// The query for `words`: every word must match (or the whole text is a
/// key), within `filters`.
///
/// With two words or more and no typos, what matches is found through
/// each word's cheap required clause and only that is scored, clause by
/// clause (see `sparse.rs`). One word has no intersection to narrow the
/// candidates: every match is scored either way, and walking the clauses is
/// cheaper than seeking them for every match. With typos (a fallback for
/// queries that found few), a word may expand to dozens of near terms per
/// field, each of which would be sought for every candidate. Those two are
/// the plain query: every word a scored disjunction of its clauses.
fn text_query(
    f: &Fields,
    searcher: &Searcher,
    text: &str,
    words: &[String],
    filters: Clauses,
    typos: bool,
) -> Result<Box<dyn Query>, IndexError> {
    let scored = scored_clauses(f, searcher, text, words, typos)?;
    if typos || words.len() < 2 {
        return Ok(Box::new(plain_query(scored, filters)));
    }
    let Scored {
        words: scoring,
        key,
    } = scored;
    let mut required: Clauses = words
        .iter()
        .zip(&scoring)
        .map(|(word, clauses)| (Occur::Must, required_clause(f, word, clauses)))
        .collect();
    if let Some(key) = &key {
        required = or_key(required, key.box_clone());
    }
    required.extend(filters);
    let mut scoring: Vec<Box<dyn Query>> = scoring.into_iter().flatten().collect();
    scoring.extend(key.map(|k| constant(k, KEY)));
    Ok(Box::new(SparseScoreQuery::new(
        Box::new(BooleanQuery::new(required)),
        scoring,
    )))
}

/// What a text query scores by.
struct Scored {
    /// Each word's clauses ([`word_query`]).
    words: Vec<WordClauses>,
    /// The key clause, when the text is a whole address or domain.
    key: Option<Box<dyn Query>>,
}

/// Each word's scored clauses, and the key clause when `text` is a whole
/// address or domain.
fn scored_clauses(
    f: &Fields,
    searcher: &Searcher,
    text: &str,
    words: &[String],
    typos: bool,
) -> Result<Scored, IndexError> {
    let scoring = words
        .iter()
        .enumerate()
        .map(|(i, word)| word_query(f, searcher, word, i + 1 == words.len(), typos))
        .collect::<Result<_, _>>()?;
    // Someone pasted a whole address or domain: that entry matches even if
    // some of its words would not (a short word like "jo" in "jo.li@mx.org"
    // is not looked up as a prefix), and comes first.
    let whole = analysis::lower(text);
    let key = whole.contains(['@', '.']).then(|| term(f.key, &whole));
    Ok(Scored {
        words: scoring,
        key,
    })
}

/// One word's scored clauses, any of which matches it.
type WordClauses = Vec<Box<dyn Query>>;

/// Every word (its scored clauses) must match, or the key; within `filters`.
fn plain_query(Scored { words, key }: Scored, filters: Clauses) -> BooleanQuery {
    let mut clauses: Clauses = words
        .into_iter()
        .map(|scoring| {
            let any = scoring.into_iter().map(|c| (Occur::Should, c)).collect();
            (
                Occur::Must,
                Box::new(BooleanQuery::new(any)) as Box<dyn Query>,
            )
        })
        .collect();
    if let Some(key) = key {
        clauses = or_key(clauses, constant(key, KEY));
    }
    for (occur, filter) in filters {
        let filter = match occur {
            Occur::Must => constant(filter, 0.0),
            _ => filter,
        };
        clauses.push((occur, filter));
    }
    BooleanQuery::new(clauses)
}

/// `words` (all of them) or `key`, as one required clause.
fn or_key(words: Clauses, key: Box<dyn Query>) -> Clauses {
    let by_words = BooleanQuery::new(words);
    vec![(
        Occur::Must,
        Box::new(BooleanQuery::new(vec![
            (Occur::Should, Box::new(by_words) as Box<dyn Query>),
            (Occur::Should, key),
        ])),
    )]
}

fn constant(query: Box<dyn Query>, score: f32) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(query, score))
}

/// Matches exactly the documents some clause of `scoring` (the clauses
/// [`word_query`] gave for `word`, without typos) matches, from as few
/// posting lists as the index allows.
fn required_clause(f: &Fields, word: &str, scoring: &[Box<dyn Query>]) -> Box<dyn Query> {
    let any: Clauses = if word.chars().count() < MIN_PREFIX_CHARS {
        // Rare and cheap: the scored clauses themselves.
        scoring
            .iter()
            .map(|q| (Occur::Should, q.box_clone()))
            .collect()
    } else {
        // A word of MIN_PREFIX_CHARS or more matches as a prefix in every
        // field with prefixes, and `all_pfx` holds the same grams of the
        // same values (the same analyser, from MIN_PREFIX_CHARS). An exact
        // match is also a prefix match there (same tokens, and the gram of
        // a word is a prefix of it); `ident` has words only.
        let mut any = vec![(Occur::Should, term(f.all_pfx, analysis::gram(word)))];
        if let Some(ident) = f.ident.words {
            any.push((Occur::Should, term(ident, word)));
        }
        any
    };
    Box::new(BooleanQuery::new(any))
}

/// Matches `word` in any text field, scored by where and how well it matched.
///
/// Only exact matches are scored with BM25; prefix and typo matches score a
/// constant per field. Scoring is most of the cost of a query (every
/// posting of every clause is scored), and BM25 adds little to a prefix
/// match, whose length and rarity say nothing about the word that was meant.
fn word_query(
    f: &Fields,
    searcher: &Searcher,
    word: &str,
    last: bool,
    typos: bool,
) -> Result<Vec<Box<dyn Query>>, IndexError> {
    let chars = word.chars().count();
    let short = chars < MIN_PREFIX_CHARS;
    let prefix = last || !short;
    let distance = if typos { typo_distance(word) } else { 0 };
    let dfa = if distance > 0 {
        let query = FuzzyTermQuery::new(Term::from_field_text(f.key, word), distance, true);
        Some(
            query
                .automaton()
                .map_err(IndexError::engine("building a typo automaton"))?,
        )
    } else {
        None
    };
    let mut should: Vec<Box<dyn Query>> = Vec::new();
    for field in f.text() {
        if let Some(words) = field.words {
            let exact = TermQuery::new(
                Term::from_field_text(words, word),
                IndexRecordOption::WithFreqs,
            );
            let exact = BoostQuery::new(Box::new(exact), field.boost * EXACT);
            should.push(Box::new(exact));
            if let Some(dfa) = dfa.as_ref().filter(|_| field.fuzzy) {
                for near in typo_terms(searcher, words, dfa, word)? {
                    should.push(constant(term(words, &near), field.boost * TYPO));
                }
            }
        }
        if let Some(prefixes) = field
            .prefixes
            .filter(|_| prefix && (field.short_prefix || !short))
        {
            let gram = constant(term(prefixes, analysis::gram(word)), field.boost * PREFIX);
            should.push(gram);
        }
    }
    Ok(should)
}

/// How many edits a typo match of `word` may have: 0 for short words and
/// numbers (a typo in a postal code or an identifier finds somebody else).
fn typo_distance(word: &str) -> u8 {
    if word.chars().any(char::is_numeric) {
        return 0;
    }
    match word.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// The terms of `field` within the typo automaton's distance of `word`,
/// other than `word` itself, over all segments (at most [`MAX_TYPO_TERMS`]).
///
/// Expanding here, instead of running tantivy's `FuzzyTermQuery`, lets one
/// automaton serve every field and turns each near term into an ordinary
/// posting list; the fuzzy query materialises a bitset of the whole segment
/// per field, which at a million documents costs more than the search.
fn typo_terms(
    searcher: &Searcher,
    field: Field,
    dfa: &DfaWrapper,
    word: &str,
) -> Result<Vec<String>, IndexError> {
    let mut near: Vec<String> = Vec::new();
    for segment in searcher.segment_readers() {
        let inverted = segment
            .inverted_index(field)
            .map_err(IndexError::engine("reading a term dictionary"))?;
        let mut stream = inverted
            .terms()
            .search(dfa)
            .into_stream()
            .map_err(IndexError::io("reading a term dictionary"))?;
        while stream.advance() {
            let Ok(term) = std::str::from_utf8(stream.key()) else {
                continue;
            };
            if term != word && !near.iter().any(|n| n == term) {
                if near.len() == MAX_TYPO_TERMS {
                    return Ok(near);
                }
                near.push(term.to_owned());
            }
        }
    }
    Ok(near)
}

/// Reads the keys of hits from the document store, keeping their order.
///
/// The store (LZ4 blocks, cached per searcher) is cheaper here than the
/// `key` fast field, whose dictionary blocks are zstd-compressed and cost a
/// fresh decompression context per lookup.
pub(crate) fn keys_of(
    searcher: &Searcher,
    key: Field,
    hits: impl Iterator<Item = DocAddress>,
) -> Result<Vec<String>, IndexError> {
    let mut keys = Vec::new();
    for hit in hits {
        let doc: TantivyDocument = searcher
            .doc(hit)
            .map_err(IndexError::engine("reading keys"))?;
        if let Some(k) = doc.get_first(key).and_then(|v| v.as_str()) {
            keys.push(k.to_owned());
        }
    }
    Ok(keys)
}

/// A text query without typos run two ways, for the equivalence test: as
/// the plain query and as the sparse one [`text_query`] builds. Each gives
/// the total and every hit's key and score.
#[cfg(test)]
pub(super) type Hits = (usize, std::collections::BTreeMap<String, f32>);

#[cfg(test)]
pub(super) fn both_ways(index: &SearchIndex, q: &SearchQuery) -> [Hits; 2] {
    let searcher = index.reader.searcher();
    let f = &index.fields;
    let words = analysis::query_words(&q.text);
    let sparse = text_query(f, &searcher, &q.text, &words, filters(f, q), false).unwrap();
    let scored = scored_clauses(f, &searcher, &q.text, &words, false).unwrap();
    let reference = plain_query(scored, filters(f, q));
    let run = |query: &dyn Query| {
        let collector = (TopDocs::with_limit(10_000).order_by_score(), Count);
        let (hits, total) = searcher.search(query, &collector).unwrap();
        let keys = keys_of(&searcher, f.key, hits.iter().map(|(_, a)| *a)).unwrap();
        let scored = keys.into_iter().zip(hits.iter().map(|(s, _)| *s)).collect();
        (total, scored)
    };
    [run(&reference), run(sparse.as_ref())]
}
