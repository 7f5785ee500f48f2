//! The attribute view: every entry's LDAP-matchable names (`mail`, `cn`,
//! `sn`, `givenName`) in memory, sorted by value, for the equality and
//! substring filters of address-book searches. It answers the same
//! questions as the search index's attribute fields
//! ([`crate::index::SearchIndex::keys_with_substring_after`]) with the same
//! folding and the same answers, but from memory: a prefix filter is a range
//! of a sorted set, not a walk of a term dictionary and a term-set query.
//!
//! A derived view like the index, and kept by the same catch-up
//! ([`super::sync`]): built from a narrow scan of the entries table the
//! first time the catch-up runs (the catch-up holds the index lock while
//! it does, so no change slips between the scan and the next round), then
//! changed with every record the catch-up applies. Until it is built the
//! plan asks the index instead.
//!
//! Memory: a few short strings per entry (about 200 bytes with the sets'
//! overhead), ~200 MB at 1 M entries.

use std::collections::{BTreeMap, BinaryHeap};

use foldhash::HashMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use crate::domain::{EntryKind, EntryNames, OrgId, Visibility, VisibilityScope};
use crate::index::{
    MAX_ATTR_RESULTS, RawAttr, Substrings, fold_assertion, fold_attribute_value,
    substring_rest_matches,
};

const ATTRS: usize = 4;

fn slot(attr: RawAttr) -> usize {
    match attr {
        RawAttr::Mail => 0,
        RawAttr::Cn => 1,
        RawAttr::Sn => 2,
        RawAttr::GivenName => 3,
    }
}

/// What the view keeps of one entry.
struct Row {
    rank: u64,
    visibility: Visibility,
    organisation: Option<OrgId>,
    /// Folded values by [`slot`]; `mail` is the key (none for domains).
    values: [Option<Box<str>>; ATTRS],
}

/// One entry under one value: its rank (its place in key order, so that
/// every comparison of the scan is one integer comparison), its key, and
/// whether it is internal (only those need their row looked up to see who
/// may see them).
struct Slot {
    rank: u64,
    key: Arc<str>,
    internal: bool,
}

/// The entries under one value, in rank order.
type Slots = smallvec::SmallVec<[Slot; 1]>;

/// The distance between neighbouring ranks when they are (re)numbered: a
/// key inserted between two others takes the middle, so 32 inserts into the
/// same gap fit before the ranks are numbered afresh.
const GAP: u64 = 1 << 32;

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

#[derive(Default)]
struct State {
    rows: HashMap<Arc<str>, Row>,
    /// Every key with its rank, in key order; ranks grow with the keys.
    ranks: BTreeMap<Arc<str>, u64>,
    /// Folded value → the entries holding it, in rank order; by [`slot`].
    /// Most values (full names, addresses) belong to one entry, whose slot
    /// then sits in the map's node itself: a scan over a prefix's values
    /// reads no other allocation for them.
    sorted: [BTreeMap<Box<str>, Slots>; ATTRS],
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
        let limit = limit.clamp(1, MAX_ATTR_RESULTS);
        // Keys up to `after` rank at most this; ranks start above 0.
        let after = after.map_or(0, |a| {
            state
                .ranks
                .range::<str, _>((Bound::Unbounded, Bound::Included(a)))
                .next_back()
                .map_or(0, |(_, rank)| *rank)
        });
        let end = prefix_end(start);
        let upper = match &end {
            Some(end) => Bound::Excluded(end.as_str()),
            None => Bound::Unbounded,
        };
        // A max-heap of the smallest ranks so far (ranks are unique, so the
        // keys are never compared); within one value the slots are in rank
        // order, so a value's run ends at the first rank above the top.
        let mut best: BinaryHeap<(u64, &Arc<str>)> = BinaryHeap::with_capacity(limit + 1);
        for (value, slots) in
            state.sorted[slot(attr)].range::<str, _>((Bound::Included(start), upper))
        {
            if keep.is_some_and(|keep| !keep(value)) {
                continue;
            }
            let from = slots.partition_point(|s| s.rank <= after);
            for s in &slots[from..] {
                if best.len() == limit && best.peek().is_some_and(|top| s.rank >= top.0) {
                    break;
                }
                if s.internal {
                    let row = &state.rows[&s.key];
                    if !scope.allows(row.visibility, row.organisation.as_ref()) {
                        continue;
                    }
                }
                best.push((s.rank, &s.key));
                if best.len() > limit {
                    best.pop();
                }
            }
        }
        Some(
            best.into_sorted_vec()
                .into_iter()
                .map(|(_, key)| key.clone())
                .collect(),
        )
    }
}

impl State {
    fn remove(&mut self, key: &str) {
        let Some((key, row)) = self.rows.remove_entry(key) else {
            return;
        };
        self.ranks.remove(&key);
        for (i, value) in row.values.into_iter().enumerate() {
            let Some(value) = value else { continue };
            if let Some(slots) = self.sorted[i].get_mut(&value) {
                if let Ok(at) = slots.binary_search_by(|s| s.rank.cmp(&row.rank)) {
                    slots.remove(at);
                }
                if slots.is_empty() {
                    self.sorted[i].remove(&value);
                }
            }
        }
    }

    /// A rank for a key not in the view: between its neighbours'.
    fn new_rank(&mut self, key: &str) -> u64 {
        loop {
            let below = self
                .ranks
                .range::<str, _>((Bound::Unbounded, Bound::Excluded(key)))
                .next_back()
                .map_or(0, |(_, r)| *r);
            let above = self
                .ranks
                .range::<str, _>((Bound::Excluded(key), Bound::Unbounded))
                .next()
                .map(|(_, r)| *r);
            let rank = match above {
                None => below.checked_add(GAP),
                Some(above) if above - below >= 2 => Some(below + (above - below) / 2),
                Some(_) => None,
            };
            match rank {
                Some(rank) => return rank,
                None => self.renumber(),
            }
        }
    }

    /// Spreads the ranks out again, `GAP` apart, keeping their order.
    fn renumber(&mut self) {
        for (i, rank) in self.ranks.values_mut().enumerate() {
            *rank = (i as u64 + 1) * GAP;
        }
        for (key, row) in &mut self.rows {
            row.rank = self.ranks[key];
        }
        for sorted in &mut self.sorted {
            for slots in sorted.values_mut() {
                for s in slots.iter_mut() {
                    s.rank = self.ranks[&s.key];
                }
            }
        }
    }

    /// The state holding `entries` (a key given twice: the last one wins),
    /// built in one pass: keys ranked `GAP` apart in key order, each map
    /// made from sorted pairs rather than by one insert per value. The same
    /// state as upserting them one by one in key order.
    fn bulk(mut entries: Vec<EntryNames>) -> State {
        // Stable: of equal keys the last given stays last, and is kept.
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        entries.reverse();
        entries.dedup_by(|later, earlier| later.key == earlier.key);
        entries.reverse();
        let mut rows = HashMap::with_capacity_and_hasher(entries.len(), Default::default());
        let mut ranks = Vec::with_capacity(entries.len());
        let mut by_value: [Vec<(Box<str>, Slot)>; ATTRS] = Default::default();
        for (i, names) in entries.into_iter().enumerate() {
            let rank = (i as u64 + 1) * GAP;
            let key: Arc<str> = Arc::from(names.key.as_str());
            let internal = names.visibility != Visibility::Public;
            let values = folded_values(&names);
            for (slot, value) in values.iter().enumerate() {
                let Some(value) = value else { continue };
                by_value[slot].push((
                    value.clone(),
                    Slot {
                        rank,
                        key: key.clone(),
                        internal,
                    },
                ));
            }
            ranks.push((key.clone(), rank));
            rows.insert(key, Row::new(rank, names, values));
        }
        let sorted = by_value.map(|mut pairs| {
            // By value, then rank: each value's slots come out in rank order.
            pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.rank.cmp(&b.1.rank)));
            let mut grouped: Vec<(Box<str>, Slots)> = Vec::new();
            for (value, slot) in pairs {
                match grouped.last_mut() {
                    Some((last, slots)) if *last == value => slots.push(slot),
                    _ => grouped.push((value, smallvec::smallvec![slot])),
                }
            }
            grouped.into_iter().collect()
        });
        State {
            rows,
            ranks: ranks.into_iter().collect(),
            sorted,
        }
    }

    fn upsert(&mut self, names: EntryNames) {
        self.remove(&names.key);
        let key: Arc<str> = Arc::from(names.key.as_str());
        let rank = self.new_rank(&key);
        self.ranks.insert(key.clone(), rank);
        let internal = names.visibility != Visibility::Public;
        let values = folded_values(&names);
        for (i, value) in values.iter().enumerate() {
            let Some(value) = value else { continue };
            let slots = self.sorted[i].entry(value.clone()).or_default();
            let at = slots.partition_point(|s| s.rank < rank);
            slots.insert(
                at,
                Slot {
                    rank,
                    key: key.clone(),
                    internal,
                },
            );
        }
        self.rows.insert(key, Row::new(rank, names, values));
    }
}

impl Row {
    fn new(rank: u64, names: EntryNames, values: [Option<Box<str>>; ATTRS]) -> Row {
        Row {
            rank,
            visibility: names.visibility,
            organisation: names.organisation,
            values,
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

    /// Everything a state holds, in a comparable form.
    type Snapshot = (
        Vec<(String, u64)>,
        Vec<(String, u64, Visibility, Option<String>, Vec<Option<String>>)>,
        Vec<Vec<(String, Vec<(u64, String, bool)>)>>,
    );

    fn snapshot(state: &State) -> Snapshot {
        let ranks = state
            .ranks
            .iter()
            .map(|(k, r)| (k.to_string(), *r))
            .collect();
        let mut rows: Vec<_> = state
            .rows
            .iter()
            .map(|(k, row)| {
                (
                    k.to_string(),
                    row.rank,
                    row.visibility,
                    row.organisation.as_ref().map(|o| o.to_string()),
                    row.values
                        .iter()
                        .map(|v| v.as_deref().map(str::to_owned))
                        .collect(),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let sorted = state
            .sorted
            .iter()
            .map(|map| {
                map.iter()
                    .map(|(value, slots)| {
                        let slots = slots
                            .iter()
                            .map(|s| (s.rank, s.key.to_string(), s.internal))
                            .collect();
                        (value.to_string(), slots)
                    })
                    .collect()
            })
            .collect();
        (ranks, rows, sorted)
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

    /// Memory and speed at 1 M synthetic entries, for the figures in the
    /// module docs (not a check: it asserts nothing about them). Run with
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
