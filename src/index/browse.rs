//! Browsing: every entry that passes the filters, in key order, paged by
//! key (keyset paging: cheap at any depth, and stable while entries are
//! added or removed between pages).
//!
//! One pass over the matching documents both counts them and keeps the
//! smallest keys after the cursor. Keys are compared as term ordinals of the
//! `key` fast field within each segment, and only the few that make a page
//! are turned back into text, block by block.

use std::collections::BinaryHeap;
use std::ops::Bound;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::query::{AllQuery, BooleanQuery, Occur};
use tantivy::schema::Field;
use tantivy::{DocId, Score, Searcher, SegmentOrdinal, SegmentReader};

use super::cursor::{self, Position};
use super::search::Clauses;
use super::{IndexError, SearchIndex, SearchPage};

impl SearchIndex {
    /// One page of the entries matching `filters`, in key order, after `after`.
    pub(crate) fn browse(
        &self,
        searcher: &Searcher,
        mut filters: Clauses,
        after: Option<String>,
        limit: usize,
        check: [u8; 8],
    ) -> Result<SearchPage, IndexError> {
        if !filters.iter().any(|(occur, _)| *occur == Occur::Must) {
            filters.push((Occur::Must, Box::new(AllQuery)));
        }
        // One more than a page tells whether there is a next page.
        let collector = KeyOrder::new(searcher, self.fields.key, after, limit + 1);
        let (total, mut keys) = searcher
            .search(&BooleanQuery::new(filters), &collector)
            .map_err(IndexError::engine("browsing"))?;
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

/// Counts matches and keeps the `keep` smallest keys greater than `after`.
pub(crate) struct KeyOrder {
    field: String,
    after: Option<String>,
    keep: usize,
}

impl KeyOrder {
    pub fn new(searcher: &Searcher, key: Field, after: Option<String>, keep: usize) -> KeyOrder {
        KeyOrder {
            field: searcher.schema().get_field_name(key).to_owned(),
            after,
            keep,
        }
    }
}

impl Collector for KeyOrder {
    type Fruit = (usize, Vec<String>);
    type Child = SegmentKeyOrder;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentKeyOrder> {
        let column = reader.fast_fields().str(&self.field)?;
        let min_ord = match (&column, &self.after) {
            (Some(column), Some(after)) => {
                let (lower, _) = column
                    .dictionary()
                    .term_bounds_to_ord(Bound::Excluded(after.as_bytes()), Bound::Unbounded)?;
                match lower {
                    Bound::Included(ord) => ord,
                    Bound::Excluded(ord) => ord + 1,
                    Bound::Unbounded => 0,
                }
            }
            _ => 0,
        };
        Ok(SegmentKeyOrder {
            column,
            min_ord,
            keep: self.keep,
            smallest: BinaryHeap::with_capacity(self.keep + 1),
            count: 0,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<(usize, Vec<String>)>) -> tantivy::Result<Self::Fruit> {
        let total = fruits.iter().map(|(count, _)| count).sum();
        let mut keys: Vec<String> = fruits.into_iter().flat_map(|(_, keys)| keys).collect();
        keys.sort_unstable();
        keys.truncate(self.keep);
        Ok((total, keys))
    }
}

pub(crate) struct SegmentKeyOrder {
    column: Option<StrColumn>,
    min_ord: u64,
    keep: usize,
    /// Max-heap of the smallest ordinals seen so far.
    smallest: BinaryHeap<u64>,
    count: usize,
}

impl SegmentCollector for SegmentKeyOrder {
    type Fruit = (usize, Vec<String>);

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.count += 1;
        let Some(ord) = self.column.as_ref().and_then(|c| c.ords().first(doc)) else {
            return;
        };
        if ord < self.min_ord {
            return;
        }
        if self.smallest.len() < self.keep {
            self.smallest.push(ord);
        } else if self.smallest.peek().is_some_and(|&max| ord < max) {
            self.smallest.pop();
            self.smallest.push(ord);
        }
    }

    fn harvest(self) -> (usize, Vec<String>) {
        let mut keys = Vec::with_capacity(self.smallest.len());
        if let Some(column) = &self.column {
            let ords = self.smallest.into_sorted_vec();
            // Ordinals in order share dictionary blocks: each is decoded once.
            let decoded = column.dictionary().sorted_ords_to_term_cb(&ords, |bytes| {
                keys.push(String::from_utf8_lossy(bytes).into_owned());
            });
            if let Err(err) = decoded {
                tracing::error!(error = %err, "search index: reading keys failed");
                keys.clear();
            }
        }
        (self.count, keys)
    }
}
