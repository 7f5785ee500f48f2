//! Queries by [`Criteria`]: what directory protocols with filter languages
//! (LDAP) need. The plan takes its candidates from the cheapest source
//! that is complete — an exact address is a key lookup, names and address
//! parts come from the in-memory attribute view (the search index's
//! attribute terms until that is built), and only criteria neither can
//! narrow enumerate entries in key order — and then every candidate is
//! checked against the criteria and the caller's visibility on its current
//! record: from the entry cache when it holds it, else from the database.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use super::{CoreError, Directory, EntryView, Result};
use crate::domain::{Caller, Criteria, EntryRecord, Field, OrgId, Substrings, VisibilityScope};
use crate::index::{IndexError, MAX_ATTR_RESULTS, RawAttr};

/// Candidates fetched from the database per round.
const BATCH: usize = 256;

/// Keys read from the index beyond what a page needs, for entries the full
/// filter then rejects (a plan is a superset of the matches).
const WINDOW_SLACK: usize = 16;

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
    /// Matching entries the caller may see, in key order. Their
    /// certificates carry the trust verdicts last stored, not re-judged at
    /// this moment: the directory protocols asking serve every bound
    /// certificate whatever its trust and leave path checks to the client.
    pub entries: Vec<EntryView>,
    /// More matches follow the last one returned.
    pub more: bool,
    /// The deadline passed before the answer was complete.
    pub timed_out: bool,
}

/// Where candidates come from.
enum Plan {
    /// The keys that can match. When `partial`, only the first ones in key
    /// order after the window's start: the set is exact up to its largest
    /// key, and what lies beyond needs another plan from there.
    Keys {
        keys: BTreeSet<Arc<str>>,
        partial: bool,
    },
    /// Any entry can match: enumerate in key order.
    Everything,
}

/// Where a plan starts and how many keys it needs: a search that stops at
/// a size limit reads only that many keys from the index, not every match.
#[derive(Clone, Copy)]
struct Window<'a> {
    after: Option<&'a str>,
    need: usize,
}

impl Plan {
    fn complete(keys: BTreeSet<Arc<str>>) -> Plan {
        Plan::Keys {
            keys,
            partial: false,
        }
    }

    /// Keys read through a window: partial when the window was filled.
    fn windowed(keys: Vec<Arc<str>>, window: Option<Window<'_>>) -> Plan {
        match window {
            Some(w) => Plan::Keys {
                partial: keys.len() >= w.need,
                keys: keys.into_iter().collect(),
            },
            None if keys.len() >= MAX_ATTR_RESULTS => Plan::Everything,
            None => Plan::complete(keys.into_iter().collect()),
        }
    }
}

/// The values of `field` in an entry as the caller sees it.
pub fn field_values(view: &EntryView, field: Field) -> Vec<Cow<'_, str>> {
    fn one(v: &Option<String>) -> Vec<Cow<'_, str>> {
        v.iter().map(|s| Cow::Borrowed(s.as_str())).collect()
    }
    let e = &view.record.entry;
    match field {
        Field::Address => vec![Cow::Owned(e.address.text())],
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

/// Reads the first byte of every text field of the candidates before any
/// of them is checked or encoded. A record's fields are separate heap
/// strings, spread over the allocator's size classes, so a cold record
/// costs a dozen cache misses; touched one record after another while
/// checking and encoding, those misses come one at a time, while these
/// independent loads let the processor have many in flight at once.
fn warm(records: &[Arc<EntryRecord>]) {
    fn first(s: &str) -> u8 {
        s.as_bytes().first().copied().unwrap_or(0)
    }
    fn opt(s: &Option<String>) -> u8 {
        s.as_deref().map_or(0, first)
    }
    let mut seen = 0u8;
    for r in records {
        let e = &r.entry;
        if let Some(a) = e.address.as_mailbox() {
            seen ^= first(a.local()) ^ first(a.domain().as_str());
        }
        seen ^= first(&e.display_name)
            ^ opt(&e.given_name)
            ^ opt(&e.surname)
            ^ e.organisation.as_ref().map_or(0, |o| first(o.as_str()))
            ^ opt(&e.unit)
            ^ opt(&e.title)
            ^ opt(&e.locality)
            ^ opt(&e.region)
            ^ opt(&e.phone);
    }
    std::hint::black_box(seen);
}

impl Directory {
    /// Entries matching `query` that `caller` may see, in key order.
    pub async fn query_entries(&self, caller: &Caller, query: &EntryQuery) -> Result<EntryPage> {
        let scope = caller.scope();
        let want = query.limit.max(1);
        // One more than the page tells whether there is more; a little
        // slack covers keys the full filter then rejects.
        fn window(after: Option<&str>, want: usize, have: usize) -> Window<'_> {
            Window {
                after,
                need: want + 1 - have.min(want) + WINDOW_SLACK,
            }
        }
        let mut plan = self.plan(
            &query.criteria,
            &scope,
            Some(window(query.after.as_deref(), want, 0)),
        )?;
        let mut page = EntryPage::default();
        let mut cursor: Option<Arc<str>> = query.after.as_deref().map(Arc::from);
        loop {
            if query.deadline.is_some_and(|d| Instant::now() >= d) {
                page.timed_out = true;
                return Ok(page);
            }
            let batch: Vec<Arc<str>> = match &plan {
                Plan::Keys { keys, partial } => {
                    let from = match &cursor {
                        Some(after) => Bound::Excluded(after.as_ref()),
                        None => Bound::Unbounded,
                    };
                    let take = (want + 1 - page.entries.len().min(want)).clamp(1, BATCH);
                    let batch: Vec<Arc<str>> = keys
                        .range::<str, _>((from, Bound::Unbounded))
                        .take(take)
                        .cloned()
                        .collect();
                    if batch.is_empty() && *partial {
                        // This plan is used up but the index holds more:
                        // plan again from where it ended.
                        plan = self.plan(
                            &query.criteria,
                            &scope,
                            Some(window(cursor.as_deref(), want, page.entries.len())),
                        )?;
                        if matches!(&plan, Plan::Keys { keys, .. } if keys.is_empty()) {
                            return Ok(page);
                        }
                        continue;
                    }
                    batch
                }
                Plan::Everything => {
                    let org = match &query.placement {
                        Placement::InOrganisation(org) => Some(org),
                        _ => None,
                    };
                    self.index()?
                        .keys_in_order(org, &scope, cursor.as_deref(), BATCH)?
                        .into_iter()
                        .map(Arc::from)
                        .collect()
                }
            };
            let Some(last) = batch.last().cloned() else {
                return Ok(page);
            };
            let exhausted = matches!(plan, Plan::Everything) && batch.len() < BATCH;
            let records = self.entries_cached(&batch).await?;
            warm(&records);
            for record in records {
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
                let view = self.stored_view(record);
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

    pub async fn lookup_entry(&self, caller: &Caller, key: &str) -> Result<Option<EntryView>> {
        let found = self.entries_cached(&[key.to_lowercase()]).await?;
        Ok(found
            .into_iter()
            .find(|r| caller.can_see(&r.entry))
            .map(|r| self.shared_view(r)))
    }

    /// The current records of `keys` (lower-cased, in that order; missing
    /// ones left out), from the entry cache where it holds them.
    async fn entries_cached<K: AsRef<str>>(&self, keys: &[K]) -> Result<Vec<Arc<EntryRecord>>> {
        let cache = &self.inner.cache;
        let mut found: Vec<Option<Arc<EntryRecord>>> =
            keys.iter().map(|k| cache.get(k.as_ref())).collect();
        let missing: Vec<String> = keys
            .iter()
            .zip(&found)
            .filter(|(_, hit)| hit.is_none())
            .map(|(k, _)| k.as_ref().to_owned())
            .collect();
        if !missing.is_empty() {
            let ticket = cache.ticket();
            let read: Vec<Arc<EntryRecord>> = self
                .inner
                .store
                .get_entries(&missing)
                .await?
                .into_iter()
                .map(Arc::new)
                .collect();
            cache.offer(ticket, &read);
            let mut read: HashMap<String, Arc<EntryRecord>> = read
                .into_iter()
                .map(|r| (r.entry.address.key(), r))
                .collect();
            for (key, slot) in keys.iter().zip(found.iter_mut()) {
                if slot.is_none() {
                    *slot = read.remove(key.as_ref());
                }
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// Keys whose `attr` equals `value`: from the attribute view once it is
    /// built, from the index before.
    fn keys_with_value(
        &self,
        attr: RawAttr,
        value: &str,
        scope: &VisibilityScope,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Arc<str>>> {
        if let Some(keys) = self
            .inner
            .attributes
            .keys_with_value_after(attr, value, scope, after, limit)
        {
            return Ok(keys);
        }
        Ok(self
            .index()?
            .keys_with_value_after(attr, value, scope, after, limit)?
            .into_iter()
            .map(Arc::from)
            .collect())
    }

    /// Keys whose `attr` matches a substring assertion, like [`Self::keys_with_value`].
    fn keys_with_substring(
        &self,
        attr: RawAttr,
        parts: &Substrings,
        scope: &VisibilityScope,
        after: Option<&str>,
        limit: usize,
    ) -> std::result::Result<Vec<Arc<str>>, CoreError> {
        let any: Vec<&str> = parts.any.iter().map(String::as_str).collect();
        let parts = crate::index::Substrings {
            initial: parts.initial.as_deref(),
            any: &any,
            last: parts.last.as_deref(),
        };
        if let Some(keys) = self
            .inner
            .attributes
            .keys_with_substring_after(attr, parts, scope, after, limit)
        {
            return Ok(keys);
        }
        Ok(self
            .index()?
            .keys_with_substring_after(attr, parts, scope, after, limit)?
            .into_iter()
            .map(Arc::from)
            .collect())
    }

    /// The candidate keys for `criteria`, or `Everything` when the index
    /// cannot narrow them completely.
    fn plan(
        &self,
        criteria: &Criteria,
        scope: &VisibilityScope,
        window: Option<Window<'_>>,
    ) -> Result<Plan> {
        let after = window.and_then(|w| w.after);
        let limit = window.map_or(MAX_ATTR_RESULTS, |w| w.need);
        Ok(match criteria {
            Criteria::Equals(Field::Address, value) => {
                Plan::complete(BTreeSet::from([Arc::from(value.to_lowercase())]))
            }
            Criteria::Equals(field, value) => match index_attr(*field) {
                Some(attr) => Plan::windowed(
                    self.keys_with_value(attr, value, scope, after, limit)?,
                    window,
                ),
                None => Plan::Everything,
            },
            Criteria::Substring(field, parts) => match index_attr(*field) {
                Some(attr) => match self.keys_with_substring(attr, parts, scope, after, limit) {
                    Ok(keys) => Plan::windowed(keys, window),
                    Err(CoreError::Index(IndexError::TooBroad { .. })) => Plan::Everything,
                    Err(e) => return Err(e),
                },
                None => Plan::Everything,
            },
            Criteria::And(children) => {
                let mut keyed = Vec::new();
                for child in children {
                    if let plan @ Plan::Keys { .. } = self.plan(child, scope, window)? {
                        keyed.push(plan);
                    }
                }
                match keyed.len() {
                    0 => Plan::Everything,
                    // The other children match everything: this one decides.
                    1 => keyed.pop().expect("one plan"),
                    // Partial sets do not intersect correctly: whole sets.
                    _ => {
                        let mut narrowest: Option<BTreeSet<Arc<str>>> = None;
                        for child in children {
                            if let Plan::Keys { keys, .. } = self.plan(child, scope, None)? {
                                narrowest = Some(match narrowest {
                                    None => keys,
                                    Some(so_far) => so_far.intersection(&keys).cloned().collect(),
                                });
                            }
                        }
                        narrowest.map_or(Plan::Everything, Plan::complete)
                    }
                }
            }
            Criteria::Or(children) => {
                let mut all = BTreeSet::new();
                // The union is exact only up to the smallest last key of
                // the partial children.
                let mut bound: Option<Arc<str>> = None;
                for child in children {
                    match self.plan(child, scope, window)? {
                        Plan::Keys { keys, partial } => {
                            if partial && let Some(last) = keys.last() {
                                bound = Some(match bound {
                                    Some(b) if b <= *last => b,
                                    _ => last.clone(),
                                });
                            }
                            all.extend(keys);
                        }
                        Plan::Everything => return Ok(Plan::Everything),
                    }
                }
                match bound {
                    Some(bound) => {
                        all.retain(|k| **k <= *bound);
                        Plan::Keys {
                            keys: all,
                            partial: true,
                        }
                    }
                    None => Plan::complete(all),
                }
            }
            Criteria::False | Criteria::Undefined => Plan::complete(BTreeSet::new()),
            _ => Plan::Everything,
        })
    }
}
