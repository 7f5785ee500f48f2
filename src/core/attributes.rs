//! The attribute view: every entry's LDAP-matchable names (`mail`, `cn`,
//! `sn`, `givenName`) in memory, sorted by value, for the equality and
//! substring filters of address-book searches. It answers the same
//! questions as the search index's attribute fields
//! ([`crate::index::SearchIndex::keys_with_substring_after`]) with the same
//! folding and the same answers, but from memory: a prefix filter is a range
//! of a sorted array, not a walk of a term dictionary and a term-set query.
//!
//! A derived view like the index, and kept by the same catch-up
//! ([`super::sync`]): built from a narrow scan of the entries table the
//! first time the catch-up runs (the catch-up holds the index lock while
//! it does, so no change slips between the scan and the next round), then
//! changed with every record the catch-up applies. Until it is built the
//! plan asks the index instead.
//!
//! Layout: a compact [`Base`] built in bulk, where entries are numbered in
//! key order (so an entry's number is its place in key order, and a scan
//! compares integers) and strings sit in a few arenas, plus a small
//! [`Overlay`] of the entries changed since, in ordinary maps. Removing a
//! base entry marks it dead; when the overlay and the dead together pass a
//! share of the base, both are merged into a new base in one linear pass,
//! so dead bytes never stay above that share.
//!
//! Memory: 67 MB at 1 M synthetic entries (`attr_mem` below: 47-byte
//! keys, 5,000 organisations), against 825 MB for the previous layout of
//! a map node, an `Arc` and boxed strings per entry and value (both counted
//! as glibc's heap in use, chunk headers included). Per entry: the key's
//! bytes (a `mail` that is its key is not stored again), 4 bytes of offset,
//! 4 of organisation, 1 of flags, and 4 per value held; each distinct value's
//! text once. The overlay costs a few hundred bytes per change until the
//! next merge, which at 1 M entries takes ~150 ms under the write lock and
//! briefly holds the old base and the new.

use std::collections::{BTreeMap, BinaryHeap};

use foldhash::HashMap;
use smallvec::SmallVec;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use crate::domain::{EntryKind, EntryNames, OrgId, Visibility, VisibilityScope};
use crate::index::{
    MAX_ATTR_RESULTS, RawAttr, Substrings, fold_assertion, fold_attribute_value,
    substring_rest_matches,
};

const ATTRS: usize = 4;
const MAIL: usize = 0;

fn slot(attr: RawAttr) -> usize {
    match attr {
        RawAttr::Mail => MAIL,
        RawAttr::Cn => 1,
        RawAttr::Sn => 2,
        RawAttr::GivenName => 3,
    }
}

/// The least string above every string that starts with `prefix`; `None`
/// when there is none (the empty prefix).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Merge when the overlay and the dead base entries pass this many...
const MERGE_MIN: usize = 4096;
/// ...or this share of the base (1/32): the merge is linear in the base,
/// so this bounds its cost per change, and the dead bytes it leaves.
const MERGE_SHARE: usize = 32;

/// Bits of [`Base::flags`], one byte per entry: only internal entries need
/// their organisation read to see who may see them.
const INTERNAL: u8 = 1;
/// The folded `mail` is the key itself, so the key order is its index (and
/// it is not stored again). Every mailbox but those with non-ASCII capitals
/// in the local part, which the key keeps and folding lowers.
const PLAIN_MAIL: u8 = 2;
/// Removed or replaced since the base was built: every scan skips it.
const DEAD: u8 = 4;

/// No organisation, in [`Base::orgs`].
const NO_ORG: u32 = u32::MAX;

/// The rank of base entry `id`: every scan compares ranks, one integer
/// each. Base ranks are 2^32 apart so that overlay keys fit between them;
/// a key the overlay holds again after its base entry died takes that
/// entry's rank, as nothing else can sit between it and its neighbours.
fn base_rank(id: u32) -> u64 {
    (u64::from(id) + 1) << 32
}

/// The base ids that rank above `rank`: from this one on.
fn first_id_above(rank: u64) -> u32 {
    u32::try_from(rank >> 32).unwrap_or(u32::MAX)
}

/// The first of `0..n` for which `below` is false (`below` holds for a
/// prefix of them): a binary search over positions rather than a slice.
fn lower_bound(n: usize, below: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if below(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// An id, offset or count as the view stores it: 4 bytes, not 8.
fn narrow(n: usize) -> u32 {
    u32::try_from(n).expect("the attribute view holds under 4 G entries and 4 GiB of text")
}

/// One attribute's distinct values in byte order, each with the base
/// entries holding it in id (so key) order: a prefix is a contiguous range
/// of values, and its entries' runs are contiguous too.
#[derive(Default)]
struct Runs {
    text: String,
    /// Value `i` is `text[bounds[i]..bounds[i + 1]]`.
    bounds: Vec<u32>,
    /// Value `i`'s entries are `ids[firsts[i]..firsts[i + 1]]`.
    firsts: Vec<u32>,
    ids: Vec<u32>,
}

impl Runs {
    fn len(&self) -> usize {
        self.bounds.len().saturating_sub(1)
    }

    fn value(&self, i: usize) -> &str {
        &self.text[self.bounds[i] as usize..self.bounds[i + 1] as usize]
    }

    fn run(&self, i: usize) -> &[u32] {
        &self.ids[self.firsts[i] as usize..self.firsts[i + 1] as usize]
    }

    /// The values that start with `prefix`, as indexes.
    fn starting_with<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = usize> + 'a {
        let from = lower_bound(self.len(), |i| self.value(i) < prefix);
        (from..self.len()).take_while(move |&i| self.value(i).starts_with(prefix))
    }
}

/// Gathers one attribute's (value, id) pairs, ids ascending, into [`Runs`]:
/// each distinct value is kept once and sorted once, and the ids are then
/// placed by counting, so a million entries with a few thousand surnames
/// sort a few thousand strings, not a million.
#[derive(Default)]
struct RunsBuilder {
    distinct: HashMap<Box<str>, u32>,
    /// (distinct value, id), in the order given.
    pairs: Vec<(u32, u32)>,
}

impl RunsBuilder {
    fn push(&mut self, value: &str, id: u32) {
        let next = narrow(self.distinct.len());
        let d = match self.distinct.get(value) {
            Some(d) => *d,
            None => *self.distinct.entry(value.into()).or_insert(next),
        };
        self.pairs.push((d, id));
    }

    fn finish(self) -> Runs {
        let mut values: Vec<(Box<str>, u32)> = self.distinct.into_iter().collect();
        values.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // place[d]: where distinct value d lands in byte order.
        let mut place = vec![0u32; values.len()];
        let mut text = String::with_capacity(values.iter().map(|v| v.0.len()).sum());
        let mut bounds = Vec::with_capacity(values.len() + 1);
        bounds.push(0);
        for (i, (value, d)) in values.into_iter().enumerate() {
            place[d as usize] = narrow(i);
            text.push_str(&value);
            bounds.push(narrow(text.len()));
        }
        let mut firsts = vec![0u32; place.len() + 1];
        for &(d, _) in &self.pairs {
            firsts[place[d as usize] as usize + 1] += 1;
        }
        for i in 1..firsts.len() {
            firsts[i] += firsts[i - 1];
        }
        // Stable: ids were given ascending, so each run comes out ascending.
        let mut next = firsts.clone();
        let mut ids = vec![0u32; self.pairs.len()];
        for (d, id) in self.pairs {
            let at = &mut next[place[d as usize] as usize];
            ids[*at as usize] = id;
            *at += 1;
        }
        Runs {
            text,
            bounds,
            firsts,
            ids,
        }
    }
}

/// The bulk part of the view: entries numbered in key order.
#[derive(Default)]
struct Base {
    keys: String,
    /// Key `id` is `keys[key_bounds[id]..key_bounds[id + 1]]`.
    key_bounds: Vec<u32>,
    /// [`INTERNAL`], [`PLAIN_MAIL`], [`DEAD`].
    flags: Vec<u8>,
    /// Index into [`Orgs`], or [`NO_ORG`].
    orgs: Vec<u32>,
    /// By [`slot`]; for `mail`, only the values that are not their key.
    runs: [Runs; ATTRS],
    dead: usize,
}

impl Base {
    fn len(&self) -> usize {
        self.flags.len()
    }

    fn key(&self, id: usize) -> &str {
        &self.keys[self.key_bounds[id] as usize..self.key_bounds[id + 1] as usize]
    }

    fn search(&self, key: &str) -> Result<usize, usize> {
        let at = lower_bound(self.len(), |id| self.key(id) < key);
        if at < self.len() && self.key(at) == key {
            Ok(at)
        } else {
            Err(at)
        }
    }

    /// Whether live entry `id` is in `scope`.
    fn allows(&self, id: u32, scope: &VisibilityScope, orgs: &Orgs) -> bool {
        let flags = self.flags[id as usize];
        if flags & DEAD != 0 {
            return false;
        }
        flags & INTERNAL == 0
            || scope.allows(Visibility::Internal, orgs.get(self.orgs[id as usize]))
    }

    /// Each entry's value index in each [`Runs`] (`u32::MAX` for none): the
    /// runs turned around, for a merge to read entries whole again.
    fn values_by_id(&self) -> [Vec<u32>; ATTRS] {
        std::array::from_fn(|attr| {
            let runs = &self.runs[attr];
            let mut by_id = vec![u32::MAX; self.len()];
            for i in 0..runs.len() {
                for &id in runs.run(i) {
                    by_id[id as usize] = narrow(i);
                }
            }
            by_id
        })
    }

    /// Live entry `id` as the builder takes it.
    fn entry<'a>(&'a self, id: usize, by_id: &[Vec<u32>; ATTRS]) -> EntryRef<'a> {
        let key = self.key(id);
        let flags = self.flags[id];
        let values = std::array::from_fn(|attr| {
            if attr == MAIL && flags & PLAIN_MAIL != 0 {
                return Some(key);
            }
            let i = by_id[attr][id];
            (i != u32::MAX).then(|| self.runs[attr].value(i as usize))
        });
        EntryRef {
            key,
            internal: flags & INTERNAL != 0,
            org: (self.orgs[id] != NO_ORG).then_some(self.orgs[id]),
            values,
        }
    }
}

/// An entry on its way into a [`Base`], with folded values by [`slot`].
struct EntryRef<'a> {
    key: &'a str,
    internal: bool,
    org: Option<u32>,
    values: [Option<&'a str>; ATTRS],
}

/// Takes entries in key order, one at a time (so a bulk build can fold each
/// entry's names and drop them before the next).
struct BaseBuilder {
    base: Base,
    runs: [RunsBuilder; ATTRS],
}

impl BaseBuilder {
    fn new(entries: usize, key_bytes: usize) -> BaseBuilder {
        let mut key_bounds = Vec::with_capacity(entries + 1);
        key_bounds.push(0);
        BaseBuilder {
            base: Base {
                keys: String::with_capacity(key_bytes),
                key_bounds,
                flags: Vec::with_capacity(entries),
                orgs: Vec::with_capacity(entries),
                ..Base::default()
            },
            runs: Default::default(),
        }
    }

    fn push(&mut self, entry: EntryRef<'_>) {
        let base = &mut self.base;
        let id = narrow(base.len());
        base.keys.push_str(entry.key);
        base.key_bounds.push(narrow(base.keys.len()));
        let mut flags = if entry.internal { INTERNAL } else { 0 };
        for (attr, value) in entry.values.into_iter().enumerate() {
            match value {
                Some(mail) if attr == MAIL && mail == entry.key => flags |= PLAIN_MAIL,
                Some(value) => self.runs[attr].push(value, id),
                None => {}
            }
        }
        base.flags.push(flags);
        base.orgs.push(entry.org.unwrap_or(NO_ORG));
    }

    fn finish(self) -> Base {
        let mut base = self.base;
        base.runs = self.runs.map(RunsBuilder::finish);
        base
    }
}

/// The organisations entries belong to, each stored once: there are
/// thousands of them, not millions.
#[derive(Default)]
struct Orgs {
    ids: Vec<OrgId>,
    index: HashMap<OrgId, u32>,
}

impl Orgs {
    fn intern(&mut self, org: OrgId) -> u32 {
        if let Some(i) = self.index.get(&org) {
            return *i;
        }
        let i = narrow(self.ids.len());
        self.ids.push(org.clone());
        self.index.insert(org, i);
        i
    }

    fn get(&self, i: u32) -> Option<&OrgId> {
        self.ids.get(i as usize)
    }
}

/// An entry upserted since the last merge.
struct Added {
    key: Box<str>,
    rank: u64,
    internal: bool,
    org: Option<u32>,
    /// Folded values by [`slot`]; `mail` too, even when it is the key.
    values: [Option<Box<str>>; ATTRS],
}

/// The entries upserted since the last merge, in ordinary maps: few enough
/// that their per-node overhead does not matter, and cheap to change.
#[derive(Default)]
struct Overlay {
    /// By number; `None` once removed (its number then waits on `free`).
    entries: Vec<Option<Added>>,
    free: Vec<u32>,
    keys: BTreeMap<Box<str>, u32>,
    /// Folded value → the entries holding it, in no order; by [`slot`].
    sorted: [BTreeMap<Box<str>, SmallVec<[u32; 1]>>; ATTRS],
}

impl Overlay {
    fn len(&self) -> usize {
        self.keys.len()
    }

    fn get(&self, n: u32) -> &Added {
        self.entries[n as usize]
            .as_ref()
            .expect("a live overlay entry")
    }

    fn add(&mut self, added: Added) {
        let n = match self.free.pop() {
            Some(n) => n,
            None => {
                self.entries.push(None);
                narrow(self.entries.len() - 1)
            }
        };
        for (attr, value) in added.values.iter().enumerate() {
            let Some(value) = value else { continue };
            self.sorted[attr].entry(value.clone()).or_default().push(n);
        }
        self.keys.insert(added.key.clone(), n);
        self.entries[n as usize] = Some(added);
    }

    fn remove(&mut self, key: &str) -> bool {
        let Some(n) = self.keys.remove(key) else {
            return false;
        };
        let added = self.entries[n as usize]
            .take()
            .expect("a live overlay entry");
        self.free.push(n);
        for (attr, value) in added.values.iter().enumerate() {
            let Some(value) = value else { continue };
            if let Some(holders) = self.sorted[attr].get_mut(value) {
                holders.retain(|h| *h != n);
                if holders.is_empty() {
                    self.sorted[attr].remove(value);
                }
            }
        }
        true
    }

    /// The rank of the last key before (or at, with `Included`) `bound`.
    fn rank_before(&self, bound: Bound<&str>) -> Option<u64> {
        self.keys
            .range::<str, _>((Bound::Unbounded, bound))
            .next_back()
            .map(|(_, n)| self.get(*n).rank)
    }
}

/// Where one result came from.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Found {
    Base(u32),
    Added(u32),
}

/// The smallest `limit` ranks offered so far: a max-heap (ranks are unique,
/// so their sources are never compared).
struct Best {
    limit: usize,
    heap: BinaryHeap<(u64, Found)>,
}

impl Best {
    /// Whether `rank` could not get in, nor could any above it.
    fn is_beaten(&self, rank: u64) -> bool {
        self.heap.len() == self.limit && self.heap.peek().is_some_and(|top| rank >= top.0)
    }

    fn offer(&mut self, rank: u64, found: Found) {
        self.heap.push((rank, found));
        if self.heap.len() > self.limit {
            self.heap.pop();
        }
    }
}

struct State {
    base: Base,
    overlay: Overlay,
    orgs: Orgs,
    /// Merge when the overlay and the dead pass this, or the base's share.
    merge_min: usize,
}

impl Default for State {
    fn default() -> State {
        State {
            base: Base::default(),
            overlay: Overlay::default(),
            orgs: Orgs::default(),
            merge_min: MERGE_MIN,
        }
    }
}

/// The view; empty and unbuilt until the first catch-up builds it.
#[derive(Default)]
pub(super) struct AttributeView {
    state: RwLock<Option<State>>,
}

impl AttributeView {
    /// Whether it has been built (and so can answer).
    pub(super) fn is_built(&self) -> bool {
        self.state.read().expect("attribute lock").is_some()
    }

    /// Replaces the whole view with `entries`.
    pub(super) fn build(&self, entries: impl IntoIterator<Item = EntryNames>) {
        let state = State::bulk(entries.into_iter().collect());
        *self.state.write().expect("attribute lock") = Some(state);
    }

    /// Applies the catch-up's round: `current` holds the present names of
    /// `changed` keys; a changed key without them was removed. Nothing
    /// happens before the view is built.
    pub(super) fn apply(&self, changed: &[String], current: Vec<EntryNames>) {
        let mut guard = self.state.write().expect("attribute lock");
        let Some(state) = guard.as_mut() else { return };
        for key in changed {
            state.remove(key);
        }
        for names in current {
            state.upsert(names);
        }
        state.merge_if_due();
    }

    /// Keys of entries in `scope` whose `attr` equals `value`, in key order,
    /// the first `limit` after `after`. `None` until the view is built.
    pub(super) fn keys_with_value_after(
        &self,
        attr: RawAttr,
        value: &str,
        scope: &VisibilityScope,
        after: Option<&str>,
        limit: usize,
    ) -> Option<Vec<Arc<str>>> {
        let value = fold_assertion(value);
        self.collect(
            attr,
            &value,
            scope,
            after,
            limit,
            Some(&|v: &str| v == value),
        )
    }

    /// Keys of entries in `scope` whose `attr` matches the substring
    /// assertion, in key order, the first `limit` after `after`. `None`
    /// until the view is built.
    pub(super) fn keys_with_substring_after(
        &self,
        attr: RawAttr,
        parts: Substrings<'_>,
        scope: &VisibilityScope,
        after: Option<&str>,
        limit: usize,
    ) -> Option<Vec<Arc<str>>> {
        let initial = parts.initial.map(fold_assertion).unwrap_or_default();
        let any: Vec<String> = parts.any.iter().map(|s| fold_assertion(s)).collect();
        let last = parts.last.map(fold_assertion).unwrap_or_default();
        let rest = |v: &str| substring_rest_matches(&v[initial.len()..], &any, &last);
        let keep: Option<&dyn Fn(&str) -> bool> = if any.is_empty() && last.is_empty() {
            None
        } else {
            Some(&rest)
        };
        self.collect(attr, &initial, scope, after, limit, keep)
    }

    /// The smallest `limit` keys after `after` among the values that start
    /// with `start` and satisfy `keep` (all of them without), visible in `scope`.
    fn collect(
        &self,
        attr: RawAttr,
        start: &str,
        scope: &VisibilityScope,
        after: Option<&str>,
        limit: usize,
        keep: Option<&dyn Fn(&str) -> bool>,
    ) -> Option<Vec<Arc<str>>> {
        let guard = self.state.read().expect("attribute lock");
        let state = guard.as_ref()?;
        let (base, overlay) = (&state.base, &state.overlay);
        let kept = |value: &str| keep.is_none_or(|keep| keep(value));
        // Keys up to `after` rank at most this; ranks start above 0.
        let after = after.map_or(0, |a| state.rank_at_or_before(a));
        let first = first_id_above(after);
        let limit = limit.clamp(1, MAX_ATTR_RESULTS);
        let mut best = Best {
            limit,
            heap: BinaryHeap::with_capacity(limit + 1),
        };
        // Within a value the ids ascend, so a value's run ends at the first
        // rank the heap has beaten.
        let runs = &base.runs[slot(attr)];
        for i in runs.starting_with(start) {
            if !kept(runs.value(i)) {
                continue;
            }
            let run = runs.run(i);
            for &id in &run[run.partition_point(|id| *id < first)..] {
                let rank = base_rank(id);
                if best.is_beaten(rank) {
                    break;
                }
                if base.allows(id, scope, &state.orgs) {
                    best.offer(rank, Found::Base(id));
                }
            }
        }
        if attr == RawAttr::Mail {
            // The mails that are their keys: in key order, so the scan ends
            // at the first rank the heap has beaten.
            let from = lower_bound(base.len(), |id| base.key(id) < start).max(first as usize);
            for id in from..base.len() {
                let key = base.key(id);
                let rank = base_rank(narrow(id));
                if !key.starts_with(start) || best.is_beaten(rank) {
                    break;
                }
                if base.flags[id] & PLAIN_MAIL != 0
                    && kept(key)
                    && base.allows(narrow(id), scope, &state.orgs)
                {
                    best.offer(rank, Found::Base(narrow(id)));
                }
            }
        }
        let end = prefix_end(start);
        let upper = match &end {
            Some(end) => Bound::Excluded(end.as_str()),
            None => Bound::Unbounded,
        };
        for (value, holders) in
            overlay.sorted[slot(attr)].range::<str, _>((Bound::Included(start), upper))
        {
            if !kept(value) {
                continue;
            }
            for &n in holders {
                let added = overlay.get(n);
                if added.rank <= after || best.is_beaten(added.rank) {
                    continue;
                }
                let visibility = if added.internal {
                    Visibility::Internal
                } else {
                    Visibility::Public
                };
                if scope.allows(visibility, added.org.and_then(|o| state.orgs.get(o))) {
                    best.offer(added.rank, Found::Added(n));
                }
            }
        }
        Some(
            best.heap
                .into_sorted_vec()
                .into_iter()
                .map(|(_, found)| match found {
                    Found::Base(id) => Arc::from(base.key(id as usize)),
                    Found::Added(n) => Arc::from(&*overlay.get(n).key),
                })
                .collect(),
        )
    }
}

impl State {
    /// A rank that every live key up to `key` is at or below and every
    /// live key after it above.
    fn rank_at_or_before(&self, key: &str) -> u64 {
        // Base ids below `p` rank at most `p << 32`.
        let p = lower_bound(self.base.len(), |id| self.base.key(id) <= key);
        let added = self.overlay.rank_before(Bound::Included(key));
        ((p as u64) << 32).max(added.unwrap_or(0))
    }

    fn remove(&mut self, key: &str) {
        if self.overlay.remove(key) {
            // Its base entry, if any, died when it was added.
            return;
        }
        if let Ok(id) = self.base.search(key) {
            let flags = &mut self.base.flags[id];
            if *flags & DEAD == 0 {
                *flags |= DEAD;
                self.base.dead += 1;
            }
        }
    }

    /// A rank for a key in neither part (or dead in the base): its dead
    /// entry's, or one between its neighbours'.
    fn new_rank(&mut self, key: &str) -> u64 {
        let p = match self.base.search(key) {
            Ok(id) => return base_rank(narrow(id)),
            Err(p) => p as u64,
        };
        // Between base keys p - 1 and p: the overlay keys there rank
        // strictly between theirs.
        loop {
            let below = (p << 32).max(self.overlay.rank_before(Bound::Excluded(key)).unwrap_or(0));
            let above = self
                .overlay
                .keys
                .range::<str, _>((Bound::Excluded(key), Bound::Unbounded))
                .next()
                .map_or(u64::MAX, |(_, n)| self.overlay.get(*n).rank)
                .min((p + 1) << 32);
            if above - below >= 2 {
                return below + (above - below) / 2;
            }
            self.renumber_gap(p as usize);
        }
    }

    /// Spreads out the ranks of the overlay keys between base keys `p - 1`
    /// and `p`, keeping their order: a key inserted between two others
    /// takes the middle, so 32 inserts into one place use a gap up.
    fn renumber_gap(&mut self, p: usize) {
        let base = &self.base;
        let low = match p {
            0 => Bound::Unbounded,
            _ => Bound::Excluded(base.key(p - 1)),
        };
        let high = if p == base.len() {
            Bound::Unbounded
        } else {
            Bound::Excluded(base.key(p))
        };
        let inside: Vec<u32> = self
            .overlay
            .keys
            .range::<str, _>((low, high))
            .map(|(_, n)| *n)
            .collect();
        let step = (1u64 << 32) / (inside.len() as u64 + 1);
        for (j, n) in inside.into_iter().enumerate() {
            let added = self.overlay.entries[n as usize].as_mut().expect("live");
            added.rank = ((p as u64) << 32) + (j as u64 + 1) * step;
        }
    }

    fn upsert(&mut self, names: EntryNames) {
        self.remove(&names.key);
        let rank = self.new_rank(&names.key);
        let values = folded_values(&names);
        let added = Added {
            rank,
            internal: names.visibility != Visibility::Public,
            org: names.organisation.map(|o| self.orgs.intern(o)),
            values,
            key: names.key.into_boxed_str(),
        };
        // The dead base entry of a key added again stays dead.
        self.overlay.add(added);
    }

    /// Merges the overlay into the base when it and the dead entries have
    /// grown past their share.
    fn merge_if_due(&mut self) {
        let pending = self.overlay.len() + self.base.dead;
        if pending > self.merge_min.max(self.base.len() / MERGE_SHARE) {
            self.merge();
        }
    }

    /// A new base of the live base entries and the overlay's, in one pass
    /// over both in key order; the overlay is then empty and nothing dead.
    fn merge(&mut self) {
        let (base, overlay) = (&self.base, &self.overlay);
        let by_id = base.values_by_id();
        let live = base.len() - base.dead;
        // Reserved in full: a string that outgrows its reserve doubles.
        let key_bytes = base.keys.len() + overlay.keys.keys().map(|k| k.len()).sum::<usize>();
        let mut builder = BaseBuilder::new(live + overlay.len(), key_bytes);
        let mut olds = (0..base.len())
            .filter(|id| base.flags[*id] & DEAD == 0)
            .peekable();
        let mut news = overlay.keys.iter().peekable();
        loop {
            // Never equal: the base entry of a key in the overlay is dead.
            let take_old = match (olds.peek(), news.peek()) {
                (Some(&id), Some((key, _))) => base.key(id) < &***key,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_old {
                let id = olds.next().expect("peeked");
                builder.push(base.entry(id, &by_id));
            } else {
                let (_, n) = news.next().expect("peeked");
                let added = overlay.get(*n);
                builder.push(EntryRef {
                    key: &added.key,
                    internal: added.internal,
                    org: added.org,
                    values: added.values.each_ref().map(Option::as_deref),
                });
            }
        }
        let base = builder.finish();
        self.base = base;
        self.overlay = Overlay::default();
    }

    /// The state holding `entries` (a key given twice: the last one wins),
    /// all in the base: the same answers as upserting them one by one.
    fn bulk(mut entries: Vec<EntryNames>) -> State {
        // Stable: of equal keys the last given stays last, and is kept.
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        entries.reverse();
        entries.dedup_by(|later, earlier| later.key == earlier.key);
        entries.reverse();
        let key_bytes = entries.iter().map(|e| e.key.len()).sum();
        let mut builder = BaseBuilder::new(entries.len(), key_bytes);
        let mut orgs = Orgs::default();
        for names in entries {
            let values = folded_values(&names);
            builder.push(EntryRef {
                key: &names.key,
                internal: names.visibility != Visibility::Public,
                org: names.organisation.map(|o| orgs.intern(o)),
                values: values.each_ref().map(Option::as_deref),
            });
        }
        State {
            base: builder.finish(),
            orgs,
            ..State::default()
        }
    }
}

/// An entry's folded values by [`slot`]; `mail` is the key, none for domains.
fn folded_values(names: &EntryNames) -> [Option<Box<str>>; ATTRS] {
    let mail = (names.kind != EntryKind::Domain).then(|| fold_attribute_value(&names.key));
    [
        mail,
        Some(fold_attribute_value(&names.display_name)),
        names.surname.as_deref().map(fold_attribute_value),
        names.given_name.as_deref().map(fold_attribute_value),
    ]
    .map(|v| v.map(String::into_boxed_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(
        key: &str,
        cn: &str,
        sn: &str,
        visibility: Visibility,
        org: Option<&str>,
    ) -> EntryNames {
        EntryNames {
            key: key.into(),
            kind: EntryKind::Person,
            visibility,
            organisation: org.map(|o| o.parse().unwrap()),
            display_name: cn.into(),
            given_name: None,
            surname: Some(sn.into()),
        }
    }

    fn view() -> AttributeView {
        let view = AttributeView::default();
        view.build([
            names("c@x.org", "Carol Smith", "Smith", Visibility::Public, None),
            names(
                "a@x.org",
                "Anna Smithers",
                "Smithers",
                Visibility::Public,
                None,
            ),
            names(
                "b@x.org",
                "Bob Smit",
                "Smit",
                Visibility::Internal,
                Some("org-b"),
            ),
            names("d@x.org", "Dan Jones", "Jones", Visibility::Public, None),
        ]);
        view
    }

    fn prefix(
        view: &AttributeView,
        attr: RawAttr,
        p: &str,
        scope: &VisibilityScope,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<String> {
        let parts = Substrings {
            initial: Some(p),
            ..Substrings::default()
        };
        strings(
            view.keys_with_substring_after(attr, parts, scope, after, limit)
                .unwrap(),
        )
    }

    fn strings(keys: Vec<Arc<str>>) -> Vec<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn prefixes_come_in_key_order_within_scope_and_window() {
        let v = view();
        let public = VisibilityScope::PublicOnly;
        assert_eq!(
            prefix(&v, RawAttr::Sn, "SMI", &public, None, 10),
            ["a@x.org", "c@x.org"]
        );
        let org_b = VisibilityScope::PublicAnd("org-b".parse().unwrap());
        assert_eq!(
            prefix(&v, RawAttr::Sn, "smi", &org_b, None, 10),
            ["a@x.org", "b@x.org", "c@x.org"]
        );
        assert_eq!(
            prefix(&v, RawAttr::Sn, "smi", &org_b, None, 2),
            ["a@x.org", "b@x.org"]
        );
        assert_eq!(
            prefix(&v, RawAttr::Sn, "smi", &org_b, Some("a@x.org"), 1),
            ["b@x.org"]
        );
        assert_eq!(
            prefix(&v, RawAttr::Mail, "d@", &public, None, 10),
            ["d@x.org"]
        );
        assert!(prefix(&v, RawAttr::GivenName, "", &public, None, 10).is_empty());
    }

    #[test]
    fn substrings_and_equality_fold_case() {
        let v = view();
        let all = VisibilityScope::All;
        let parts = Substrings {
            initial: None,
            any: &["MITH"],
            last: Some("s"),
        };
        assert_eq!(
            strings(
                v.keys_with_substring_after(RawAttr::Cn, parts, &all, None, 10)
                    .unwrap()
            ),
            ["a@x.org"]
        );
        assert_eq!(
            strings(
                v.keys_with_value_after(RawAttr::Cn, "carol SMITH", &all, None, 10)
                    .unwrap()
            ),
            ["c@x.org"]
        );
    }

    #[test]
    fn changes_replace_and_remove_rows() {
        let v = view();
        let all = VisibilityScope::All;
        v.apply(
            &["c@x.org".into(), "d@x.org".into()],
            vec![names(
                "c@x.org",
                "Carol Baker",
                "Baker",
                Visibility::Public,
                None,
            )],
        );
        assert_eq!(
            prefix(&v, RawAttr::Sn, "smi", &all, None, 10),
            ["a@x.org", "b@x.org"]
        );
        assert_eq!(
            prefix(&v, RawAttr::Cn, "carol", &all, None, 10),
            ["c@x.org"]
        );
        assert!(prefix(&v, RawAttr::Sn, "jones", &all, None, 10).is_empty());
    }

    #[test]
    fn prefix_ends_bound_exactly_the_strings_with_the_prefix() {
        assert_eq!(prefix_end("smi").as_deref(), Some("smj"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{d7ff}").as_deref(), Some("\u{e000}"));
        assert_eq!(prefix_end(""), None);
    }

    #[test]
    fn ranks_keep_key_order_through_inserts_into_one_gap() {
        let v = AttributeView::default();
        v.build([
            names("a@x.org", "Ann Lee", "Lee", Visibility::Public, None),
            names("z@x.org", "Zoe Lee", "Lee", Visibility::Public, None),
        ]);
        // Each key lands just above "a@x.org": the gap halves every time,
        // and the ranks are renumbered when it is used up.
        let mut keys: Vec<String> = (0..80).rev().map(|i| format!("a{i:03}@x.org")).collect();
        for key in &keys {
            v.apply(
                std::slice::from_ref(key),
                vec![names(key, "Ann Lee", "Lee", Visibility::Public, None)],
            );
        }
        keys.push("a@x.org".into());
        keys.push("z@x.org".into());
        keys.sort();
        let all = VisibilityScope::All;
        assert_eq!(prefix(&v, RawAttr::Sn, "lee", &all, None, 1000), keys);
        assert_eq!(
            prefix(&v, RawAttr::Sn, "lee", &all, Some("a040@x.org"), 3),
            ["a041@x.org", "a042@x.org", "a043@x.org"]
        );
        // A key between two others that is not in the view.
        assert_eq!(
            prefix(&v, RawAttr::Sn, "lee", &all, Some("a0405"), 1),
            ["a040@x.org"]
        );
    }

    /// Everything a state answers from, in a comparable form: its keys,
    /// its entries, and each attribute's values with their holders, read
    /// from the value indexes themselves. Ranks depend on where entries sit
    /// (base or overlay), so each key's place in key order stands for them.
    type Snapshot = (
        Vec<(String, u64)>,
        Vec<(String, u64, Visibility, Option<String>, Vec<Option<String>>)>,
        Vec<Holders>,
    );

    /// One attribute's values, each with (place, key, internal) of its holders.
    type Holders = Vec<(String, Vec<(u64, String, bool)>)>;

    fn snapshot(state: &State) -> Snapshot {
        let (base, overlay) = (&state.base, &state.overlay);
        let org = |o: Option<u32>| o.and_then(|o| state.orgs.get(o)).map(|o| o.to_string());
        let visibility = |internal| {
            if internal {
                Visibility::Internal
            } else {
                Visibility::Public
            }
        };
        let by_id = base.values_by_id();
        let live = |id: usize| base.flags[id] & DEAD == 0;
        // (rank, key, internal, org, values)
        let mut rows = Vec::new();
        for id in (0..base.len()).filter(|id| live(*id)) {
            let e = base.entry(id, &by_id);
            let values: Vec<Option<String>> =
                e.values.iter().map(|v| v.map(str::to_owned)).collect();
            rows.push((
                base_rank(narrow(id)),
                e.key.to_owned(),
                e.internal,
                e.org,
                values,
            ));
        }
        for n in overlay.keys.values() {
            let a = overlay.get(*n);
            let values = a
                .values
                .iter()
                .map(|v| v.as_deref().map(str::to_owned))
                .collect();
            rows.push((a.rank, a.key.to_string(), a.internal, a.org, values));
        }
        rows.sort_by_key(|r| r.0);
        assert!(
            rows.windows(2).all(|w| w[0].1 < w[1].1),
            "ranks follow the keys"
        );
        let place: BTreeMap<u64, u64> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.0, i as u64 + 1))
            .collect();
        let sorted = (0..ATTRS)
            .map(|attr| {
                // (value, rank, key, internal)
                let mut held: Vec<(String, u64, String, bool)> = Vec::new();
                let runs = &base.runs[attr];
                for i in 0..runs.len() {
                    assert!(runs.run(i).windows(2).all(|w| w[0] < w[1]), "runs ascend");
                    for &id in runs.run(i) {
                        let id = id as usize;
                        if live(id) {
                            let internal = base.flags[id] & INTERNAL != 0;
                            let key = base.key(id).to_owned();
                            held.push((runs.value(i).into(), base_rank(narrow(id)), key, internal));
                        }
                    }
                }
                if attr == MAIL {
                    for id in (0..base.len()).filter(|id| live(*id)) {
                        if base.flags[id] & PLAIN_MAIL != 0 {
                            let key = base.key(id).to_owned();
                            let internal = base.flags[id] & INTERNAL != 0;
                            held.push((key.clone(), base_rank(narrow(id)), key, internal));
                        }
                    }
                }
                for (value, holders) in &overlay.sorted[attr] {
                    for n in holders {
                        let a = overlay.get(*n);
                        held.push((value.to_string(), a.rank, a.key.to_string(), a.internal));
                    }
                }
                held.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
                let mut grouped: Holders = Vec::new();
                for (value, rank, key, internal) in held {
                    let slot = (place[&rank], key, internal);
                    match grouped.last_mut() {
                        Some((last, slots)) if *last == value => slots.push(slot),
                        _ => grouped.push((value, vec![slot])),
                    }
                }
                grouped
            })
            .collect();
        let keys = rows.iter().map(|r| (r.1.clone(), place[&r.0])).collect();
        let mut rows: Vec<_> = rows
            .into_iter()
            .map(|(rank, key, internal, o, values)| {
                (key, place[&rank], visibility(internal), org(o), values)
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        (keys, rows, sorted)
    }

    #[test]
    fn the_bulk_build_equals_upserts_in_key_order() {
        let surnames = ["Smith", "smith", "Jones", "Müller", "SMITH"];
        let mut all = Vec::new();
        for i in 0..300usize {
            let sn = surnames[i % surnames.len()];
            let mut n = names(
                &format!("p{:03}@org{}.example", (i * 7919) % 300, i % 4),
                &format!("Person {} {sn}", i % 17),
                sn,
                if i % 3 == 0 {
                    Visibility::Internal
                } else {
                    Visibility::Public
                },
                (i % 2 == 0).then_some("org-a"),
            );
            n.given_name = (i % 5 != 0).then(|| format!("Given{}", i % 11));
            if i % 13 == 0 {
                n.kind = EntryKind::Domain;
            }
            all.push(n);
        }
        // A key given twice: the later names win.
        let mut again = all[5].clone();
        again.display_name = "Changed Name".into();
        all.push(again);

        // Upserted one by one: the last names given for each key, in key order.
        let mut one_by_one = State::default();
        let mut survivors: Vec<EntryNames> = Vec::new();
        for names in &all {
            survivors.retain(|s| s.key != names.key);
            survivors.push(names.clone());
        }
        survivors.sort_by(|a, b| a.key.cmp(&b.key));
        for names in survivors {
            one_by_one.upsert(names);
        }
        let bulk = State::bulk(all);
        assert_eq!(snapshot(&bulk), snapshot(&one_by_one));
        assert!(
            snapshot(&bulk)
                .1
                .iter()
                .any(|r| r.4[1].as_deref() == Some("changed name")),
            "the later names of a key given twice win"
        );
    }

    #[test]
    fn an_unbuilt_view_does_not_answer() {
        let v = AttributeView::default();
        v.apply(&["a@x.org".into()], Vec::new());
        assert!(!v.is_built());
        assert!(
            v.keys_with_value_after(RawAttr::Cn, "x", &VisibilityScope::All, None, 1)
                .is_none()
        );
    }

    /// A view over `entries` that merges once `merge_min` changes wait.
    fn view_merging_at(merge_min: usize, entries: Vec<EntryNames>) -> AttributeView {
        let mut state = State::bulk(entries);
        state.merge_min = merge_min;
        AttributeView {
            state: RwLock::new(Some(state)),
        }
    }

    fn state_of(v: &AttributeView) -> std::sync::RwLockReadGuard<'_, Option<State>> {
        v.state.read().unwrap()
    }

    #[test]
    fn a_key_removed_and_added_again_takes_its_place_back() {
        let v = view();
        let all = VisibilityScope::All;
        let b = || vec!["b@x.org".to_string()];
        v.apply(&b(), Vec::new());
        assert_eq!(
            prefix(&v, RawAttr::Sn, "smi", &all, None, 10),
            ["a@x.org", "c@x.org"]
        );
        let smithy = names("b@x.org", "Bob Smithy", "Smithy", Visibility::Public, None);
        v.apply(&b(), vec![smithy.clone()]);
        assert_eq!(
            prefix(&v, RawAttr::Sn, "smi", &all, None, 10),
            ["a@x.org", "b@x.org", "c@x.org"]
        );
        assert_eq!(
            prefix(&v, RawAttr::Sn, "smi", &all, Some("a@x.org"), 1),
            ["b@x.org"]
        );
        assert!(
            v.keys_with_value_after(RawAttr::Cn, "bob smit", &all, None, 10)
                .unwrap()
                .is_empty()
        );
        // Changed again while in the overlay, then removed from it: the
        // base's entry stays dead.
        let jones = names("b@x.org", "Bob Jones", "Jones", Visibility::Public, None);
        v.apply(&b(), vec![jones]);
        assert_eq!(
            prefix(&v, RawAttr::Sn, "jones", &all, None, 10),
            ["b@x.org", "d@x.org"]
        );
        v.apply(&b(), Vec::new());
        assert_eq!(
            prefix(&v, RawAttr::Sn, "jones", &all, None, 10),
            ["d@x.org"]
        );
        assert!(prefix(&v, RawAttr::Mail, "b", &all, None, 10).is_empty());
        // And after a merge, the same again from a base without it.
        v.state.write().unwrap().as_mut().unwrap().merge();
        assert_eq!(state_of(&v).as_ref().unwrap().base.len(), 3);
        v.apply(&b(), vec![smithy]);
        assert_eq!(
            prefix(&v, RawAttr::Mail, "", &all, Some("a@x.org"), 2),
            ["b@x.org", "c@x.org"]
        );
    }

    #[test]
    fn merges_fold_the_overlay_and_the_dead_into_the_base() {
        let lee = |key: &str, cn: &str| names(key, cn, "Lee", Visibility::Public, None);
        let mut model: BTreeMap<String, EntryNames> = (0..10)
            .map(|i| format!("p{i}@x.org"))
            .map(|key| (key.clone(), lee(&key, "Ann Lee")))
            .collect();
        let v = view_merging_at(3, model.values().cloned().collect());
        let all = VisibilityScope::All;
        let keys = |r: std::ops::Range<usize>| -> Vec<String> {
            r.map(|i| format!("p{i}@x.org")).collect()
        };
        let pending = |v: &AttributeView| {
            let guard = state_of(v);
            let state = guard.as_ref().unwrap();
            (state.base.len(), state.base.dead, state.overlay.len())
        };
        // Three waiting changes are not yet past three...
        v.apply(&keys(0..2), vec![lee("p1@x.org", "Bo Lee")]);
        assert_eq!(pending(&v), (10, 2, 1));
        // ...four are.
        v.apply(&keys(2..3), Vec::new());
        assert_eq!(pending(&v), (8, 0, 0));
        model.remove("p0@x.org");
        model.remove("p2@x.org");
        model.insert("p1@x.org".into(), lee("p1@x.org", "Bo Lee"));
        assert_eq!(
            prefix(&v, RawAttr::Sn, "lee", &all, None, 3),
            ["p1@x.org", "p3@x.org", "p4@x.org"]
        );
        assert_eq!(prefix(&v, RawAttr::Cn, "bo", &all, None, 3), ["p1@x.org"]);
        // Renaming the same entries over and over leaves no more behind
        // than a merge's worth: old names go at every merge.
        for round in 0..200 {
            let renamed: Vec<EntryNames> = keys(3..6)
                .iter()
                .map(|key| lee(key, &format!("Name {round} of {key}")))
                .collect();
            for names in &renamed {
                model.insert(names.key.clone(), names.clone());
            }
            v.apply(&keys(3..6), renamed);
            let (len, dead, added) = pending(&v);
            assert!(len <= 8 + 3 && dead + added <= 3 + 3);
            let guard = state_of(&v);
            let state = guard.as_ref().unwrap();
            assert!(state.base.runs[1].len() <= state.base.len());
        }
        assert_eq!(
            prefix(&v, RawAttr::Cn, "name 199", &all, None, 10),
            keys(3..6)
        );
        let guard = state_of(&v);
        assert_eq!(
            snapshot(guard.as_ref().unwrap()),
            snapshot(&State::bulk(model.into_values().collect()))
        );
    }

    #[test]
    fn mails_that_are_not_their_keys_are_found_by_their_folded_value() {
        // The key keeps non-ASCII capitals of the local part; mail folds them.
        let odd = names(
            "Élise@x.org",
            "Élise Durand",
            "Durand",
            Visibility::Public,
            None,
        );
        let v = view_merging_at(0, vec![odd.clone()]);
        let all = VisibilityScope::All;
        assert_eq!(
            prefix(&v, RawAttr::Mail, "éli", &all, None, 10),
            ["Élise@x.org"]
        );
        assert!(prefix(&v, RawAttr::Mail, "Éli", &all, None, 10).len() == 1);
        let guard = state_of(&v);
        assert_eq!(guard.as_ref().unwrap().base.runs[MAIL].len(), 1);
    }

    /// Entry names drawn from small pools, so that values collide.
    fn random_names(rng: &mut rand_chacha::ChaCha8Rng, key: &str) -> EntryNames {
        use rand::Rng;
        const CN: &[&str] = &[
            "Ann Lee",
            "ann lee",
            "Anna Smithers",
            "Bob Smith",
            "Élise Durand",
            "  Zoe Smith ",
            "",
        ];
        const SN: &[Option<&str>] = &[
            None,
            Some("Lee"),
            Some("Smith"),
            Some("SMITHERS"),
            Some("Durand"),
        ];
        const GIVEN: &[Option<&str>] =
            &[None, Some("Ann"), Some("Anna"), Some("Bob"), Some("Élise")];
        const ORGS: &[Option<&str>] = &[None, Some("org-a"), Some("org-b")];
        let pick = |rng: &mut rand_chacha::ChaCha8Rng, n: usize| rng.random_range(0..n);
        EntryNames {
            key: key.into(),
            kind: if key.contains('@') {
                EntryKind::Person
            } else {
                EntryKind::Domain
            },
            visibility: if rng.random_bool(0.4) {
                Visibility::Internal
            } else {
                Visibility::Public
            },
            organisation: ORGS[pick(rng, ORGS.len())].map(|o| o.parse().unwrap()),
            display_name: CN[pick(rng, CN.len())].into(),
            surname: SN[pick(rng, SN.len())].map(str::to_owned),
            given_name: GIVEN[pick(rng, GIVEN.len())].map(str::to_owned),
        }
    }

    /// What the view must answer, from the entries themselves.
    fn naive(
        model: &BTreeMap<String, EntryNames>,
        attr: RawAttr,
        matches: &dyn Fn(&str) -> bool,
        scope: &VisibilityScope,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<String> {
        model
            .values()
            .filter(|n| after.is_none_or(|a| n.key.as_str() > a))
            .filter(|n| scope.allows(n.visibility, n.organisation.as_ref()))
            .filter(|n| folded_values(n)[slot(attr)].as_deref().is_some_and(matches))
            .take(limit.clamp(1, MAX_ATTR_RESULTS))
            .map(|n| n.key.clone())
            .collect()
    }

    #[test]
    fn answers_match_a_naive_model_through_random_changes() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20);
        let mut universe: Vec<String> = Vec::new();
        for local in ["a", "ab", "abc", "ann", "Ann", "b", "bob", "Élise", "z"] {
            for domain in ["x.org", "y.org", "z.example"] {
                universe.push(format!("{local}@{domain}"));
            }
        }
        universe.extend(["x.org", "y.org"].map(String::from));
        let scopes = [
            VisibilityScope::All,
            VisibilityScope::PublicOnly,
            VisibilityScope::PublicAnd("org-a".parse().unwrap()),
            VisibilityScope::PublicAnd("org-b".parse().unwrap()),
        ];
        let attrs = [RawAttr::Mail, RawAttr::Cn, RawAttr::Sn, RawAttr::GivenName];
        let mut model: BTreeMap<String, EntryNames> = BTreeMap::new();
        let mut v = view_merging_at(0, Vec::new());
        let mut queries = 0;
        for round in 0..400 {
            if round % 50 == 0 {
                // Built afresh from the model, merging at another threshold.
                v = view_merging_at(rng.random_range(0..12), model.values().cloned().collect());
            }
            let mut changed: Vec<String> = Vec::new();
            for _ in 0..rng.random_range(1..6) {
                let key = &universe[rng.random_range(0..universe.len())];
                if !changed.contains(key) {
                    changed.push(key.clone());
                }
            }
            let mut current = Vec::new();
            for key in &changed {
                model.remove(key);
                if rng.random_bool(0.7) {
                    let names = random_names(&mut rng, key);
                    model.insert(key.clone(), names.clone());
                    current.push(names);
                }
            }
            v.apply(&changed, current);
            {
                let guard = state_of(&v);
                let bulk = State::bulk(model.values().cloned().collect());
                assert_eq!(
                    snapshot(guard.as_ref().unwrap()),
                    snapshot(&bulk),
                    "round {round}"
                );
            }
            for _ in 0..20 {
                queries += 1;
                let attr = attrs[rng.random_range(0..attrs.len())];
                let scope = &scopes[rng.random_range(0..scopes.len())];
                let limit = rng.random_range(0..8);
                let after = match rng.random_range(0..3) {
                    0 => None,
                    1 => Some(universe[rng.random_range(0..universe.len())].clone()),
                    _ => Some(format!(
                        "{}0",
                        &universe[rng.random_range(0..universe.len())]
                    )),
                };
                let after = after.as_deref();
                // A value some entry may hold, cut and cased at random.
                let source = match model.values().nth(rng.random_range(0..model.len().max(1))) {
                    Some(n) => folded_values(n)[slot(attr)]
                        .as_deref()
                        .unwrap_or("smi")
                        .to_owned(),
                    None => "ann".to_owned(),
                };
                let chars: Vec<char> = source.chars().collect();
                let cut = rng.random_range(0..=chars.len());
                let (head, tail): (String, String) =
                    (chars[..cut].iter().collect(), chars[cut..].iter().collect());
                let head = if rng.random_bool(0.3) {
                    head.to_uppercase()
                } else {
                    head
                };
                let (answer, expected) = match rng.random_range(0..3) {
                    0 => {
                        let folded = fold_assertion(&source);
                        let got = v.keys_with_value_after(attr, &source, scope, after, limit);
                        let want = naive(&model, attr, &|x| x == folded, scope, after, limit);
                        (got, want)
                    }
                    1 => {
                        let parts = Substrings {
                            initial: Some(&head),
                            ..Substrings::default()
                        };
                        let folded = fold_assertion(&head);
                        let got = v.keys_with_substring_after(attr, parts, scope, after, limit);
                        let want = naive(
                            &model,
                            attr,
                            &|x| x.starts_with(&folded),
                            scope,
                            after,
                            limit,
                        );
                        (got, want)
                    }
                    _ => {
                        // `*tail` or `head*mid*`: with parts after the initial.
                        let mid: String = tail.chars().take(2).collect();
                        let any = [mid.as_str()];
                        let parts = match rng.random_bool(0.5) {
                            true => Substrings {
                                initial: None,
                                any: &[],
                                last: Some(&tail),
                            },
                            false => Substrings {
                                initial: Some(&head),
                                any: &any,
                                last: None,
                            },
                        };
                        let initial = parts.initial.map(fold_assertion).unwrap_or_default();
                        let any: Vec<String> =
                            parts.any.iter().map(|s| fold_assertion(s)).collect();
                        let last = parts.last.map(fold_assertion).unwrap_or_default();
                        let matches = |x: &str| {
                            x.starts_with(&initial)
                                && substring_rest_matches(&x[initial.len()..], &any, &last)
                        };
                        let got = v.keys_with_substring_after(attr, parts, scope, after, limit);
                        let want = naive(&model, attr, &matches, scope, after, limit);
                        (got, want)
                    }
                };
                assert_eq!(
                    strings(answer.unwrap()),
                    expected,
                    "round {round}, {attr:?}"
                );
            }
        }
        assert_eq!(queries, 8000);
    }

    /// Memory and speed at 1 M synthetic entries, for the figures in the
    /// module docs (printed, not asserted), and one check at that size: a
    /// merge of the overlay into the base changes no answer. Run with
    /// `cargo test --release --lib -- --ignored attr_mem --nocapture`.
    #[test]
    #[ignore]
    fn attr_mem() {
        use rand::{Rng, SeedableRng};
        use std::time::Instant;

        const ENTRIES: usize = 1_000_000;
        const ORGS: usize = 5_000;
        const QUERIES: usize = 10_000;
        let words = |text: &'static str| -> Vec<&'static str> {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect()
        };
        let given = words(include_str!("../../seeds/given-names.txt"));
        let surnames = words(include_str!("../../seeds/surnames.txt"));
        let local = |s: &str| -> String {
            s.to_lowercase()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let person = |rng: &mut rand_chacha::ChaCha8Rng, n: usize| {
            let g = given[rng.random_range(0..given.len())];
            let s = surnames[rng.random_range(0..surnames.len())];
            let org = rng.random_range(0..ORGS);
            EntryNames {
                key: format!("{}.{}.{n}@org{org}.bench.example.org", local(g), local(s)),
                kind: EntryKind::Person,
                visibility: if rng.random_range(0..10) == 0 {
                    Visibility::Internal
                } else {
                    Visibility::Public
                },
                organisation: Some(format!("org{org}").parse().unwrap()),
                display_name: format!("{g} {s}"),
                given_name: Some(g.to_owned()),
                surname: Some(s.to_owned()),
            }
        };

        let (heap0, rss0) = (heap_in_use(), rss_after_trim());
        let entries: Vec<EntryNames> = (0..ENTRIES).map(|n| person(&mut rng, n)).collect();
        let view = AttributeView::default();
        let started = Instant::now();
        view.build(entries);
        let build = started.elapsed();
        let (heap1, rss1) = (heap_in_use(), rss_after_trim());
        println!(
            "attr_mem: {ENTRIES} entries built in {build:.2?}; view heap {} MB, RSS +{} MB",
            (heap1 - heap0) / 1_000_000,
            (rss1 - rss0) / 1_000_000,
        );

        let scope = VisibilityScope::PublicAnd("org7".parse().unwrap());
        let starts: Vec<String> = given
            .iter()
            .chain(&surnames)
            .map(|w| fold_assertion(w).chars().take(3).collect())
            .collect();
        for (name, attr) in [
            ("cn", RawAttr::Cn),
            ("sn", RawAttr::Sn),
            ("mail", RawAttr::Mail),
        ] {
            for kind in ["random letters", "name starts"] {
                let prefixes: Vec<String> = (0..QUERIES)
                    .map(|_| match kind {
                        "random letters" => (0..3)
                            .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
                            .collect(),
                        _ => starts[rng.random_range(0..starts.len())].clone(),
                    })
                    .collect();
                let started = Instant::now();
                let mut found = 0;
                for p in &prefixes {
                    let parts = Substrings {
                        initial: Some(p),
                        ..Substrings::default()
                    };
                    found += view
                        .keys_with_substring_after(attr, parts, &scope, None, 100)
                        .unwrap()
                        .len();
                }
                println!(
                    "attr_mem: {QUERIES} {name} prefixes ({kind}, limit 100) in {:.2?}, {found} keys",
                    started.elapsed()
                );
            }
        }

        // Catch-up rounds of 100 keys: half renamed entries, half new ones.
        let started = Instant::now();
        for round in 0..100 {
            let mut keys = Vec::new();
            let mut current = Vec::new();
            for i in 0..100 {
                let n = if i % 2 == 0 {
                    rng.random_range(0..ENTRIES)
                } else {
                    ENTRIES + round * 100 + i
                };
                let names = person(&mut rng, n);
                keys.push(names.key.clone());
                current.push(names);
            }
            view.apply(&keys, current);
        }
        println!(
            "attr_mem: 100 catch-up rounds of 100 keys in {:.2?}; view heap {} MB",
            started.elapsed(),
            (heap_in_use() - heap0) / 1_000_000,
        );
        // What the catch-up pays when the overlay passes its share; the
        // answers must be the same after it.
        let probes: Vec<(RawAttr, String)> = (0..300)
            .map(|i| {
                let attr = [RawAttr::Cn, RawAttr::Sn, RawAttr::Mail][i % 3];
                (attr, starts[rng.random_range(0..starts.len())].clone())
            })
            .collect();
        let answers = |view: &AttributeView| -> Vec<Vec<String>> {
            probes
                .iter()
                .map(|(attr, p)| {
                    let parts = Substrings {
                        initial: Some(p),
                        ..Substrings::default()
                    };
                    view.keys_with_substring_after(*attr, parts, &scope, None, 100)
                        .unwrap()
                        .iter()
                        .map(|k| k.to_string())
                        .collect()
                })
                .collect()
        };
        let before = answers(&view);
        let started = Instant::now();
        view.state.write().unwrap().as_mut().unwrap().merge();
        println!(
            "attr_mem: the overlay merged into the base in {:.2?}; view heap {} MB",
            started.elapsed(),
            (heap_in_use() - heap0) / 1_000_000,
        );
        assert_eq!(answers(&view), before, "a merge changed answers");
    }

    /// Bytes the C allocator has handed out and not had back (the test
    /// binary uses it, not the service's mimalloc).
    fn heap_in_use() -> usize {
        #[repr(C)]
        struct MallInfo2 {
            arena: usize,
            ordblks: usize,
            smblks: usize,
            hblks: usize,
            hblkhd: usize,
            usmblks: usize,
            fsmblks: usize,
            uordblks: usize,
            fordblks: usize,
            keepcost: usize,
        }
        unsafe extern "C" {
            fn mallinfo2() -> MallInfo2;
        }
        // SAFETY: glibc's mallinfo2 takes nothing and returns a plain struct.
        let info = unsafe { mallinfo2() };
        info.uordblks + info.hblkhd
    }

    /// The resident set after the C allocator gave back what it could.
    fn rss_after_trim() -> usize {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only releases free memory to the system.
        unsafe { malloc_trim(0) };
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kb: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kb * 1024
    }
}
