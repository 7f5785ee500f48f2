//! Searching the directory: the index ranks, the database answers.

use std::time::Instant;

use super::{Directory, Result};
use crate::domain::{Caller, EntryKind, OrgId};
use crate::index::SearchQuery;

/// A search as a front end asks for it.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// Free text: names, organisation, specialty, place, address, identifiers.
    pub text: String,
    pub organisation: Option<OrgId>,
    pub locality: Option<String>,
    pub kind: Option<EntryKind>,
    /// Page size; the configured default when absent, capped at the maximum.
    pub limit: Option<usize>,
    /// The `next` value of the previous page.
    pub cursor: Option<String>,
}

pub type SearchHit = super::EntryView;

#[derive(Debug, Clone)]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    /// Cursor for the next page; `None` on the last one.
    pub next: Option<String>,
    /// Estimated number of matches.
    pub total: usize,
}

impl Directory {
    pub async fn search(&self, caller: &Caller, request: SearchRequest) -> Result<SearchResults> {
        let started = Instant::now();
        let limits = self.inner.limits;
        let limit = request
            .limit
            .unwrap_or(limits.default_limit)
            .clamp(1, limits.max_limit);
        let query = SearchQuery {
            text: request.text,
            organisation: request.organisation,
            locality: request.locality,
            kind: request.kind,
            scope: caller.scope(),
            limit,
            cursor: request.cursor,
        };
        let page = self.index()?.search(&query)?;
        let records = self.inner.store.get_entries(&page.keys).await?;
        // The index may lag a write by a moment; the database has the last
        // word on what exists and who may see it.
        let mut hits: Vec<SearchHit> = records
            .into_iter()
            .filter(|r| caller.can_see(&r.entry))
            .map(|r| self.view(r))
            .collect();
        self.attach_provenance(&mut hits).await?;
        self.inner
            .metrics
            .search_duration
            .observe(started.elapsed().as_secs_f64());
        Ok(SearchResults {
            hits,
            next: page.next,
            total: page.total,
        })
    }
}
