//! A query that finds its matches and scores them in two separate steps.
//!
//! Tantivy scores a disjunction (a `BooleanQuery` of `Should` clauses) by
//! walking every posting of every clause in windows of 4 096 documents,
//! and it walks them all even when the disjunction only has to confirm the
//! few documents another clause proposes: a window is filled whole on
//! every seek past it. A search word is such a disjunction (exact and
//! prefix matches in six fields), so "cardiology boston" at a million
//! entries scored ~100 k postings to rank a thousand matches.
//!
//! [`SparseScoreQuery`] matches what its `required` query matches (built
//! without scoring, from cheap posting lists: see `search.rs`) and scores
//! each match as the sum of the `scoring` clauses that match it, moving each
//! clause straight to that document with its skip list. The score is the
//! sum the `BooleanQuery` of the same clauses would give (clauses that do
//! not match add nothing, as there).

use tantivy::query::{EnableScoring, Explanation, Query, QueryClone, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader};

/// Matches `required`; scores by `scoring` (see the module documentation).
#[derive(Debug)]
pub(crate) struct SparseScoreQuery {
    required: Box<dyn Query>,
    scoring: Vec<Box<dyn Query>>,
}

impl SparseScoreQuery {
    /// `required` decides what matches; `scoring` only what a match scores,
    /// so every document `required` matches should match one of them.
    pub(crate) fn new(required: Box<dyn Query>, scoring: Vec<Box<dyn Query>>) -> Self {
        SparseScoreQuery { required, scoring }
    }
}

impl Clone for SparseScoreQuery {
    fn clone(&self) -> Self {
        SparseScoreQuery {
            required: self.required.box_clone(),
            scoring: self.scoring.iter().map(|q| q.box_clone()).collect(),
        }
    }
}

impl Query for SparseScoreQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let unscored = match enable_scoring.searcher() {
            Some(searcher) => EnableScoring::disabled_from_searcher(searcher),
            None => EnableScoring::disabled_from_schema(enable_scoring.schema()),
        };
        let required = self.required.weight(unscored)?;
        if !enable_scoring.is_scoring_enabled() {
            return Ok(required);
        }
        let scoring = self
            .scoring
            .iter()
            .map(|q| q.weight(enable_scoring))
            .collect::<tantivy::Result<_>>()?;
        Ok(Box::new(SparseWeight { required, scoring }))
    }
}

struct SparseWeight {
    required: Box<dyn Weight>,
    scoring: Vec<Box<dyn Weight>>,
}

impl Weight for SparseWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let required = self.required.scorer(reader, 1.0)?;
        let scoring = self
            .scoring
            .iter()
            .map(|w| w.scorer(reader, boost))
            .collect::<tantivy::Result<Vec<_>>>()?;
        Ok(Box::new(SparseScorer { required, scoring }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        Ok(Explanation::new(
            "sum of the matching clauses",
            scorer.score(),
        ))
    }
}

struct SparseScorer {
    required: Box<dyn Scorer>,
    scoring: Vec<Box<dyn Scorer>>,
}

impl DocSet for SparseScorer {
    fn advance(&mut self) -> DocId {
        self.required.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.required.doc() >= target {
            return self.required.doc();
        }
        self.required.seek(target)
    }

    fn doc(&self) -> DocId {
        self.required.doc()
    }

    fn size_hint(&self) -> u32 {
        self.required.size_hint()
    }
}

impl Scorer for SparseScorer {
    fn score(&mut self) -> Score {
        let doc = self.required.doc();
        let mut sum = 0.0;
        for clause in &mut self.scoring {
            if clause.doc() < doc {
                clause.seek(doc);
            }
            if clause.doc() == doc {
                sum += clause.score();
            }
        }
        sum
    }
}
