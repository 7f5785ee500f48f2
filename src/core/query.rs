//! Queries by [`Criteria`]: what directory protocols with filter languages
//! (LDAP) need. The plan takes its candidates from the cheapest source
//! that is complete — an exact address is a key lookup, names and address
//! parts come from the search index's attribute terms, and only criteria
//! the index cannot narrow enumerate entries in key order — and then every
//! candidate is checked against the criteria and the caller's visibility
//! on the current record from the database.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::time::Instant;

use super::{Directory, EntryView, Result};
use crate::domain::{Caller, Criteria, Field, OrgId, Substrings, VisibilityScope};
use crate::index::{IndexError, MAX_ATTR_RESULTS, RawAttr, SearchIndex};

/// Candidates fetched from the database per round.
const BATCH: usize = 256;

/// Where in the organisation structure matching entries must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Any entry.
    Anywhere,
    /// Only entries that belong to no organisation.
    WithoutOrganisation,
    /// Only entries of this organisation.
    InOrganisation(OrgId),
}

/// A query by criteria, answered in key order.
#[derive(Debug, Clone)]
pub struct EntryQuery {
    pub criteria: Criteria,
    pub placement: Placement,
    /// Resume after this key (the last key of the previous page).
    pub after: Option<String>,
    /// Most entries to return.
    pub limit: usize,
    /// Stop looking at this moment and return what was found.
    pub deadline: Option<Instant>,
}

/// One page of a query's answer.
#[derive(Debug, Clone, Default)]
pub struct EntryPage {
    /// Matching entries the caller may see, in key order.
    pub entries: Vec<EntryView>,
    /// More matches follow the last one returned.
    pub more: bool,
    /// The deadline passed before the answer was complete.
    pub timed_out: bool,
}

/// Where candidates come from.
enum Plan {
    /// Exactly these keys can match (sorted).
    Keys(BTreeSet<String>),
    /// Any entry can match: enumerate in key order.
    Everything,
}

/// The values of `field` in an entry as the caller sees it.
pub fn field_values(view: &EntryView, field: Field) -> Vec<Cow<'_, str>> {
    fn one(v: &Option<String>) -> Vec<Cow<'_, str>> {
        v.iter().map(|s| Cow::Borrowed(s.as_str())).collect()
    }
    let e = &view.record.entry;
    match field {
        Field::Address => vec![Cow::Owned(e.address.to_string())],
        Field::DisplayName => vec![Cow::Borrowed(e.display_name.as_str())],
        Field::Surname => one(&e.surname),
        Field::GivenName => one(&e.given_name),
        Field::Organisation => e
            .organisation
            .iter()
            .map(|o| Cow::Borrowed(o.as_str()))
            .chain(
                view.organisation_name
                    .iter()
                    .map(|n| Cow::Borrowed(n.as_str())),
            )
            .collect(),
        Field::Unit => one(&e.unit),
        Field::Title => one(&e.title),
        Field::Profession => one(&e.profession),
        Field::Specialty => one(&e.specialty),
        Field::Locality => one(&e.locality),
        Field::Region => one(&e.region),
        Field::Country => one(&e.country),
        Field::PostalCode => one(&e.postal_code),
        Field::Phone => one(&e.phone),
        Field::Identifier => e
            .identifiers
            .iter()
            .map(|i| Cow::Owned(i.to_string()))
            .collect(),
        Field::Kind => vec![Cow::Borrowed(e.kind.as_str())],
        Field::Certificate => view
            .record
            .certificates
            .iter()
            .map(|c| Cow::Owned(c.certificate.fingerprint.to_hex()))
            .collect(),
    }
}

fn index_attr(field: Field) -> Option<RawAttr> {
    match field {
        Field::Address => Some(RawAttr::Mail),
        Field::DisplayName => Some(RawAttr::Cn),
        Field::Surname => Some(RawAttr::Sn),
        Field::GivenName => Some(RawAttr::GivenName),
        _ => None,
    }
}

impl Directory {
    /// Entries matching `query` that `caller` may see, in key order.
    pub async fn query_entries(&self, caller: &Caller, query: &EntryQuery) -> Result<EntryPage> {
        let scope = caller.scope();
        let plan = self.plan(&query.criteria, &scope)?;
        let want = query.limit.max(1);
        let mut page = EntryPage::default();
        let mut cursor = query.after.clone();
        loop {
            if query.deadline.is_some_and(|d| Instant::now() >= d) {
                page.timed_out = true;
                return Ok(page);
            }
            let batch: Vec<String> = match &plan {
                Plan::Keys(keys) => {
                    let from = match &cursor {
                        Some(after) => Bound::Excluded(after.clone()),
                        None => Bound::Unbounded,
                    };
                    keys.range((from, Bound::Unbounded))
                        .take(BATCH)
                        .cloned()
                        .collect()
                }
                Plan::Everything => {
                    let org = match &query.placement {
                        Placement::InOrganisation(org) => Some(org),
                        _ => None,
                    };
                    self.index()?
                        .keys_in_order(org, &scope, cursor.as_deref(), BATCH)?
                }
            };
            let Some(last) = batch.last().cloned() else {
                return Ok(page);
            };
            let exhausted = batch.len() < BATCH;
            for record in self.inner.store.get_entries(&batch).await? {
                if !caller.can_see(&record.entry) {
                    continue;
                }
                let placed = match &query.placement {
                    Placement::Anywhere => true,
                    Placement::WithoutOrganisation => record.entry.organisation.is_none(),
                    Placement::InOrganisation(org) => {
                        record.entry.organisation.as_ref() == Some(org)
                    }
                };
                if !placed {
                    continue;
                }
                let view = self.view(record);
                if query.criteria.evaluate(&|f| field_values(&view, f)) != Some(true) {
                    continue;
                }
                if page.entries.len() == want {
                    page.more = true;
                    return Ok(page);
                }
                page.entries.push(view);
            }
            if exhausted {
                return Ok(page);
            }
            cursor = Some(last);
        }
    }

    /// The entry with this exact key (lower-cased address or domain), if the
    /// caller may see it. Never an error for a key that is not an address.
    pub async fn lookup_entry(&self, caller: &Caller, key: &str) -> Result<Option<EntryView>> {
        let found = self.inner.store.get_entries(&[key.to_lowercase()]).await?;
        Ok(found
            .into_iter()
            .find(|r| caller.can_see(&r.entry))
            .map(|r| self.view(r)))
    }

    /// The candidate keys for `criteria`, or `Everything` when the index
    /// cannot narrow them completely.
    fn plan(&self, criteria: &Criteria, scope: &VisibilityScope) -> Result<Plan> {
        let complete = |keys: Vec<String>| {
            if keys.len() >= MAX_ATTR_RESULTS {
                Plan::Everything
            } else {
                Plan::Keys(keys.into_iter().collect())
            }
        };
        Ok(match criteria {
            Criteria::Equals(Field::Address, value) => {
                Plan::Keys(BTreeSet::from([value.to_lowercase()]))
            }
            Criteria::Equals(field, value) => match index_attr(*field) {
                Some(attr) => {
                    complete(
                        self.index()?
                            .keys_with_value(attr, value, scope, MAX_ATTR_RESULTS)?,
                    )
                }
                None => Plan::Everything,
            },
            Criteria::Substring(field, parts) => match index_attr(*field) {
                Some(attr) => match substring_keys(self.index()?, attr, parts, scope) {
                    Ok(keys) => complete(keys),
                    Err(IndexError::TooBroad { .. }) => Plan::Everything,
                    Err(e) => return Err(e.into()),
                },
                None => Plan::Everything,
            },
            Criteria::And(children) => {
                let mut narrowest: Option<BTreeSet<String>> = None;
                for child in children {
                    if let Plan::Keys(keys) = self.plan(child, scope)? {
                        narrowest = Some(match narrowest {
                            None => keys,
                            Some(so_far) => so_far.intersection(&keys).cloned().collect(),
                        });
                    }
                }
                narrowest.map_or(Plan::Everything, Plan::Keys)
            }
            Criteria::Or(children) => {
                let mut all = BTreeSet::new();
                for child in children {
                    match self.plan(child, scope)? {
                        Plan::Keys(keys) => all.extend(keys),
                        Plan::Everything => return Ok(Plan::Everything),
                    }
                }
                Plan::Keys(all)
            }
            Criteria::False | Criteria::Undefined => Plan::Keys(BTreeSet::new()),
            _ => Plan::Everything,
        })
    }
}

fn substring_keys(
    index: &SearchIndex,
    attr: RawAttr,
    parts: &Substrings,
    scope: &VisibilityScope,
) -> std::result::Result<Vec<String>, IndexError> {
    let any: Vec<&str> = parts.any.iter().map(String::as_str).collect();
    let parts = crate::index::Substrings {
        initial: parts.initial.as_deref(),
        any: &any,
        last: parts.last.as_deref(),
    };
    index.keys_with_substring(attr, parts, scope, MAX_ATTR_RESULTS)
}
