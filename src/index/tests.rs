//! Behaviour of the index as its callers see it: ranking, analysis,
//! filters, visibility, paging, durability and rebuilds.

use std::collections::HashSet;

use super::*;
use crate::domain::{EntryKind, OrgId, Visibility, VisibilityScope};
use crate::error::ErrorKind;

fn doc(local: &str, given: &str, surname: &str) -> IndexDoc {
    let key = format!("{}@example.org", local.to_lowercase());
    IndexDoc {
        key: key.clone(),
        address: key,
        display_name: format!("{given} {surname}"),
        given_name: Some(given.into()),
        surname: Some(surname.into()),
        organisation_id: None,
        organisation_name: None,
        unit: None,
        title: None,
        profession: None,
        specialty: None,
        locality: None,
        region: None,
        postal_code: None,
        identifiers: Vec::new(),
        kind: EntryKind::Person,
        visibility: Visibility::Public,
    }
}

fn with(mut d: IndexDoc, edit: impl FnOnce(&mut IndexDoc)) -> IndexDoc {
    edit(&mut d);
    d
}

fn index_of(docs: Vec<IndexDoc>) -> SearchIndex {
    let index = SearchIndex::in_memory().unwrap();
    let ops = docs.into_iter().map(IndexOp::Upsert).collect();
    index.apply(ops, ChangeSeq(1)).unwrap();
    index
}

fn org(s: &str) -> OrgId {
    s.parse().unwrap()
}

fn find(index: &SearchIndex, text: &str) -> Vec<String> {
    search_all(index, text, VisibilityScope::All)
}

fn search_all(index: &SearchIndex, text: &str, scope: VisibilityScope) -> Vec<String> {
    index.search(&SearchQuery::new(text, scope)).unwrap().keys
}

fn key(local: &str) -> String {
    format!("{local}@example.org")
}

/// A small directory with the cases the ranking tests need.
fn clinic() -> SearchIndex {
    index_of(vec![
        with(doc("jsmith", "John", "Smith"), |d| {
            d.specialty = Some("Cardiology".into());
            d.locality = Some("Boston".into());
            d.organisation_id = Some("bmc".into());
            d.organisation_name = Some("Boston Medical Center".into());
        }),
        with(doc("asmyth", "Anna", "Smyth"), |d| {
            d.specialty = Some("Pediatrics".into());
            d.locality = Some("Boston".into());
        }),
        with(doc("kmueller", "Karl", "Müller"), |d| {
            d.specialty = Some("Cardiology".into());
            d.locality = Some("Chicago".into());
        }),
        with(doc("pboston", "Paul", "Boston"), |d| {
            d.specialty = Some("Dermatology".into());
            d.locality = Some("Springfield".into());
        }),
        with(doc("mjones", "Mary", "Jones"), |d| {
            d.specialty = Some("Cardiology".into());
            d.locality = Some("Boston".into());
            d.identifiers = vec!["1234567893".into(), "NPI:1234567893".into()];
        }),
    ])
}

#[test]
fn search_index_is_send_and_sync() {
    fn assert<T: Send + Sync>() {}
    assert::<SearchIndex>();
    assert::<BulkWriter<'static>>();
}

#[test]
fn exact_ranks_before_prefix_before_typo() {
    let index = clinic();
    assert_eq!(find(&index, "smith"), [key("jsmith"), key("asmyth")]);
    assert_eq!(find(&index, "Smyth"), [key("asmyth"), key("jsmith")]);

    let index = index_of(vec![
        doc("a", "Ann", "Smyth"),
        doc("b", "Bob", "Smithson"),
        doc("c", "Cat", "Smith"),
        doc("d", "Dan", "Smit"),
    ]);
    let hits = find(&index, "smith");
    // Exact, then prefix, then the two typos (which tie).
    assert_eq!(hits[..2], [key("c"), key("b")]);
    let mut typos = hits[2..].to_vec();
    typos.sort();
    assert_eq!(typos, [key("a"), key("d")]);
}

#[test]
fn typo_matches_are_a_fallback_for_few_exact_matches() {
    let mut docs: Vec<IndexDoc> = (0..TYPO_FALLBACK)
        .map(|i| doc(&format!("s{i:03}"), "Sam", "Smith"))
        .collect();
    docs.push(doc("jon", "Jon", "Smith"));
    docs.push(doc("smyth", "Sam", "Smyth"));
    let index = index_of(docs);
    // Plenty of exact matches: no typo matches, and the total says so.
    let page = index
        .search(&SearchQuery::new("smith", VisibilityScope::All))
        .unwrap();
    assert_eq!(page.total, TYPO_FALLBACK + 1);
    // Few exact matches: typo matches follow them.
    let page = index
        .search(&SearchQuery::new("smyth", VisibilityScope::All))
        .unwrap();
    assert_eq!(page.keys[0], key("smyth"));
    assert_eq!(page.total, TYPO_FALLBACK + 2);
    // The fallback looks at the whole query, not word by word.
    assert_eq!(find(&index, "jon smyth"), [key("jon")]);
}

#[test]
fn folding_finds_accented_names_both_ways() {
    let index = clinic();
    assert_eq!(find(&index, "muller"), [key("kmueller")]);
    assert_eq!(find(&index, "MÜLLER"), [key("kmueller")]);
}

#[test]
fn last_word_is_a_prefix_and_every_word_must_match() {
    let index = clinic();
    let mut hits = find(&index, "card bost");
    hits.sort();
    assert_eq!(hits, [key("jsmith"), key("mjones")]);
    // One letter is enough for the last word…
    assert_eq!(find(&index, "mary j"), [key("mjones")]);
    // …but every word must match somewhere.
    assert!(find(&index, "smith chicago").is_empty());
}

#[test]
fn name_match_outranks_locality_match() {
    let index = clinic();
    let hits = find(&index, "boston");
    assert_eq!(hits[0], key("pboston"), "{hits:?}");
    assert_eq!(hits.len(), 4, "{hits:?}");
}

#[test]
fn typo_distance_depends_on_word_length() {
    let index = clinic();
    // 4–7 letters: one edit, a transposition counts as one.
    assert_eq!(find(&index, "jonse"), [key("mjones")]);
    // ≥ 8 letters: two edits.
    let mut hits = find(&index, "kardiolgy");
    hits.sort();
    assert_eq!(hits, [key("jsmith"), key("kmueller"), key("mjones")]);
    // ≤ 3 letters: exact or prefix only ("jon" is not "joh…").
    assert!(find(&index, "jhn").is_empty());
    // Digits never match by typo.
    assert!(find(&index, "1234567894").is_empty());
}

#[test]
fn identifiers_match_bare_and_qualified_but_whole() {
    let index = clinic();
    for q in ["1234567893", "NPI:1234567893", "npi 1234567893"] {
        assert_eq!(find(&index, q), [key("mjones")], "{q}");
    }
    // Identifiers are pasted, not typed: no prefix matches, no typos.
    assert!(find(&index, "123456").is_empty());
}

#[test]
fn addresses_match_by_words_and_whole() {
    let index = index_of(vec![
        doc("alice.smith", "Alice", "Smith"),
        with(doc("bob", "Alice", "Smith"), |d| {
            d.organisation_name = Some("Alice Smith Clinic".into());
        }),
    ]);
    assert_eq!(
        find(&index, "alice.smith@example.org")[0],
        key("alice.smith")
    );
    assert_eq!(
        find(&index, "Alice.Smith@Example.org")[0],
        key("alice.smith")
    );
    assert_eq!(find(&index, "bob@exam").len(), 1);

    // Short words are not prefixes, but a pasted address still finds its entry…
    let index = index_of(vec![with(doc("jo.li", "Joanna", "Liang"), |d| {
        d.key = "jo.li@mx.org".into();
        d.address = "Jo.Li@mx.org".into();
        d.visibility = Visibility::Internal;
    })]);
    assert_eq!(find(&index, "Jo.Li@MX.org"), ["jo.li@mx.org"]);
    // …within the caller's scope.
    assert!(search_all(&index, "jo.li@mx.org", VisibilityScope::PublicOnly).is_empty());
}

#[test]
fn filters_are_exact() {
    let index = clinic();
    let q = |f: &dyn Fn(&mut SearchQuery)| {
        let mut q = SearchQuery::new("cardiology", VisibilityScope::All);
        f(&mut q);
        let mut keys = index.search(&q).unwrap().keys;
        keys.sort();
        keys
    };
    assert_eq!(
        q(&|q| q.locality = Some(" boSTON ".into())),
        [key("jsmith"), key("mjones")]
    );
    assert_eq!(q(&|q| q.organisation = Some(org("bmc"))), [key("jsmith")]);
    assert!(q(&|q| q.kind = Some(EntryKind::Service)).is_empty());
    assert_eq!(q(&|q| q.kind = Some(EntryKind::Person)).len(), 3);
    // A locality filter is not a prefix and not a word match.
    assert!(q(&|q| q.locality = Some("bost".into())).is_empty());
}

#[test]
fn internal_entries_never_leak_to_the_public() {
    let mut docs = Vec::new();
    for i in 0..30 {
        let visibility = if i % 3 == 0 {
            Visibility::Internal
        } else {
            Visibility::Public
        };
        let owner = if i % 2 == 0 { "alpha" } else { "beta" };
        docs.push(with(doc(&format!("smith{i:02}"), "Pat", "Smith"), |d| {
            d.visibility = visibility;
            d.organisation_id = Some(owner.into());
        }));
    }
    let index = index_of(docs.clone());
    let visible = |scope: &VisibilityScope| -> HashSet<String> {
        docs.iter()
            .filter(|d| match scope {
                VisibilityScope::All => true,
                VisibilityScope::PublicOnly => d.visibility == Visibility::Public,
                VisibilityScope::PublicAnd(o) => {
                    d.visibility == Visibility::Public
                        || d.organisation_id.as_deref() == Some(o.as_str())
                }
            })
            .map(|d| d.key.clone())
            .collect()
    };
    for scope in [
        VisibilityScope::PublicOnly,
        VisibilityScope::PublicAnd(org("alpha")),
        VisibilityScope::All,
    ] {
        for text in ["smith", "", "pat smi", "smyth", "example"] {
            let mut q = SearchQuery::new(text, scope.clone());
            q.limit = 100;
            let page = index.search(&q).unwrap();
            let got: HashSet<String> = page.keys.iter().cloned().collect();
            let want = visible(&scope);
            assert_eq!(got, want, "{scope:?} {text:?}");
            assert_eq!(page.total, want.len(), "total for {scope:?} {text:?}");
        }
        let ldap = index
            .keys_with_prefix(RawAttr::Sn, "smi", &scope, 100)
            .unwrap();
        assert_eq!(ldap.into_iter().collect::<HashSet<_>>(), visible(&scope));
    }
}

fn page_through(index: &SearchIndex, mut q: SearchQuery) -> (Vec<String>, usize) {
    let mut keys = Vec::new();
    let mut pages = 0;
    loop {
        let page = index.search(&q).unwrap();
        assert!(page.keys.len() <= q.limit);
        keys.extend(page.keys);
        pages += 1;
        match page.next {
            Some(next) => q.cursor = Some(next),
            None => return (keys, pages),
        }
    }
}

#[test]
fn paging_returns_every_key_exactly_once() {
    // 11 Smiths (too few to skip typo matches) and 42 Smyths.
    let docs: Vec<IndexDoc> = (0..53)
        .map(|i| {
            let surname = if i % 5 == 0 { "Smith" } else { "Smyth" };
            doc(&format!("p{i:03}"), "Lee", surname)
        })
        .collect();
    let index = index_of(docs);
    for text in ["smith", "lee", ""] {
        let mut q = SearchQuery::new(text, VisibilityScope::All);
        q.limit = 10;
        let (keys, pages) = page_through(&index, q);
        let unique: HashSet<&String> = keys.iter().collect();
        assert_eq!(keys.len(), 53, "{text:?}");
        assert_eq!(unique.len(), 53, "{text:?}");
        assert_eq!(pages, 6, "{text:?}");
        if text == "smith" {
            // Exact matches on the first pages, typo matches after them.
            let smiths: Vec<String> = (0..53)
                .step_by(5)
                .map(|i| key(&format!("p{i:03}")))
                .collect();
            let mut first = keys[..11].to_vec();
            first.sort();
            assert_eq!(first, smiths);
        }
    }
    // Browsing is in key order.
    let mut q = SearchQuery::new("", VisibilityScope::All);
    q.limit = 7;
    let (keys, _) = page_through(&index, q);
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn cursors_belong_to_their_query() {
    let index = index_of(
        (0..30)
            .map(|i| doc(&format!("s{i}"), "Sam", "Smith"))
            .collect(),
    );
    for text in ["smith", ""] {
        let mut q = SearchQuery::new(text, VisibilityScope::All);
        q.limit = 5;
        let next = index.search(&q).unwrap().next.expect("more pages");
        // Page size may change between pages.
        q.cursor = Some(next.clone());
        q.limit = 3;
        assert_eq!(index.search(&q).unwrap().keys.len(), 3);
        let others = [
            SearchQuery::new("sam", VisibilityScope::All),
            SearchQuery::new(text, VisibilityScope::PublicOnly),
            SearchQuery {
                kind: Some(EntryKind::Person),
                ..SearchQuery::new(text, VisibilityScope::All)
            },
        ];
        for mut other in others {
            other.cursor = Some(next.clone());
            let err = index.search(&other).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{other:?}");
        }
    }
    let mut q = SearchQuery::new("smith", VisibilityScope::All);
    q.cursor = Some("not a cursor".into());
    assert_eq!(
        index.search(&q).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn browse_with_filters_and_totals() {
    let index = clinic();
    let mut q = SearchQuery::new("  ", VisibilityScope::All);
    let page = index.search(&q).unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(page.keys.len(), 5);
    assert!(page.next.is_none());
    q.locality = Some("boston".into());
    let page = index.search(&q).unwrap();
    assert_eq!(page.keys, [key("asmyth"), key("jsmith"), key("mjones")]);
    assert_eq!(page.total, 3);
}

#[test]
fn upsert_replaces_and_remove_removes() {
    let index = clinic();
    let moved = with(doc("jsmith", "John", "Smith"), |d| {
        d.locality = Some("Denver".into());
    });
    index
        .apply(
            vec![IndexOp::Upsert(moved.clone()), IndexOp::Upsert(moved)],
            ChangeSeq(2),
        )
        .unwrap();
    assert_eq!(find(&index, "john smith"), [key("jsmith")]);
    assert_eq!(find(&index, "john denver"), [key("jsmith")]);
    assert!(find(&index, "john boston").is_empty());
    assert_eq!(index.num_docs(), 5);
    index
        .apply(vec![IndexOp::Remove(key("jsmith"))], ChangeSeq(3))
        .unwrap();
    assert!(find(&index, "john").is_empty());
    assert_eq!(index.num_docs(), 4);
    assert_eq!(index.applied_seq(), ChangeSeq(3));
}

#[test]
fn stale_apply_is_refused() {
    let index = clinic();
    index.apply(Vec::new(), ChangeSeq(10)).unwrap();
    let err = index
        .apply(vec![IndexOp::Remove(key("jsmith"))], ChangeSeq(9))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(find(&index, "john smith"), [key("jsmith")]);
}

#[test]
fn applied_seq_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = SearchIndex::open(dir.path()).unwrap();
        assert!(index.needs_rebuild());
        assert_eq!(index.applied_seq(), ChangeSeq(0));
        index
            .apply(
                vec![IndexOp::Upsert(doc("a", "Ada", "Lovelace"))],
                ChangeSeq(7),
            )
            .unwrap();
        assert!(!index.needs_rebuild());
    }
    let index = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(index.applied_seq(), ChangeSeq(7));
    assert!(!index.needs_rebuild());
    assert_eq!(find(&index, "lovelace"), [key("a")]);
}

#[test]
fn another_schema_version_is_wiped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = SearchIndex::open(dir.path()).unwrap();
        index
            .apply(
                vec![IndexOp::Upsert(doc("a", "Ada", "Lovelace"))],
                ChangeSeq(7),
            )
            .unwrap();
    }
    let meta = dir.path().join("meta.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    let old = format!("\\\"schema\\\":{}", schema::SCHEMA_VERSION);
    assert!(text.contains(&old), "{text}");
    std::fs::write(&meta, text.replace(&old, "\\\"schema\\\":0")).unwrap();

    let index = SearchIndex::open(dir.path()).unwrap();
    assert!(index.needs_rebuild());
    assert_eq!(index.applied_seq(), ChangeSeq(0));
    assert_eq!(index.num_docs(), 0);
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = SearchIndex::open(dir.path()).unwrap();
    let err = SearchIndex::open(dir.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

#[test]
fn clear_empties_and_resets() {
    let index = clinic();
    index.clear().unwrap();
    assert_eq!(index.num_docs(), 0);
    assert_eq!(index.applied_seq(), ChangeSeq(0));
    assert!(index.needs_rebuild());
}

#[test]
fn bulk_rebuild_replaces_atomically() {
    let index = clinic();
    {
        let mut bulk = index.bulk_writer().unwrap();
        bulk.add(&doc("new", "Nina", "Newcomer")).unwrap();
        // Not visible until finished; apply is refused meanwhile.
        assert_eq!(find(&index, "john"), [key("jsmith")]);
        let err = index.apply(Vec::new(), ChangeSeq(5)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        // Dropped unfinished: nothing changes.
    }
    assert_eq!(find(&index, "john"), [key("jsmith")]);
    assert!(find(&index, "nina").is_empty());

    let mut bulk = index.bulk_writer().unwrap();
    for i in 0..100 {
        bulk.add(&doc(&format!("n{i}"), "Nina", "Newcomer"))
            .unwrap();
    }
    assert_eq!(bulk.added(), 100);
    bulk.finish(ChangeSeq(42)).unwrap();
    assert!(find(&index, "john").is_empty());
    assert_eq!(index.num_docs(), 100);
    assert_eq!(index.applied_seq(), ChangeSeq(42));
    index.apply(Vec::new(), ChangeSeq(43)).unwrap();
}

#[test]
fn ldap_attribute_matching() {
    let index = index_of(vec![
        doc("js", "John", "Smith"),
        doc("jsm", "Jane", "Smithers"),
        doc("ks", "Kim", "Goldsmith"),
        with(doc("dom", "Direct", "Domain"), |d| {
            d.key = "direct.example.org".into();
            d.address = "direct.example.org".into();
            d.kind = EntryKind::Domain;
        }),
    ]);
    let all = VisibilityScope::All;
    let sub = |attr, initial, any: &[&str], last| {
        index
            .keys_with_substring(attr, Substrings { initial, any, last }, &all, 100)
            .unwrap()
    };
    assert_eq!(
        index.keys_with_prefix(RawAttr::Cn, "J", &all, 100).unwrap(),
        [key("js"), key("jsm")]
    );
    assert_eq!(
        sub(RawAttr::Sn, None, &["smith"], None),
        [key("js"), key("jsm"), key("ks")]
    );
    assert_eq!(
        sub(RawAttr::Sn, None, &[], Some("SMITH")),
        [key("js"), key("ks")]
    );
    assert_eq!(
        sub(RawAttr::Cn, Some("j"), &["s"], Some("ers")),
        [key("jsm")]
    );
    assert_eq!(sub(RawAttr::GivenName, Some("ki"), &[], None), [key("ks")]);
    // Domain entries have no mail attribute.
    assert_eq!(sub(RawAttr::Mail, None, &[], Some("@example.org")).len(), 3);
    assert_eq!(
        index
            .keys_with_value(RawAttr::Mail, "JS@example.org", &all, 10)
            .unwrap(),
        [key("js")]
    );
    assert!(sub(RawAttr::Cn, Some("zz"), &[], None).is_empty());
}

#[test]
fn odd_query_strings_never_panic() {
    let index = clinic();
    let big = "smith ".repeat(2000);
    let many = (0..40)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let long_word = "x".repeat(200);
    let odd: Vec<String> = [
        "",
        " ",
        "\"",
        "\"smith",
        "smith\"",
        "title:smith",
        "a:b:c",
        "[1 TO 2]",
        "{}",
        "(",
        ")",
        "*",
        "?",
        "smi*",
        "~2",
        "smith~",
        "+smith -jones",
        "AND",
        "OR NOT",
        "\\",
        "'",
        "😀",
        "山田 太郎",
        "Ünïcödé",
        "\u{0}",
        "\u{202e}abc",
        "@",
        "..",
        "a@b",
        "-",
        "--x",
        "NPI:",
        ":123",
        "ß",
        "İstanbul",
        "ﬁ",
        "\t\n",
        "%",
        "%%20",
        "null",
        "💥💥💥💥💥",
        "é́́́́",
        "ǅ",
        "𝔰𝔪𝔦𝔱𝔥",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([big, many, long_word, "a".repeat(10_240), "é".repeat(5_000)])
    .collect();
    let scopes = [
        VisibilityScope::PublicOnly,
        VisibilityScope::PublicAnd(org("bmc")),
        VisibilityScope::All,
    ];
    for text in &odd {
        for scope in &scopes {
            for (limit, locality) in [
                (0, None),
                (1, Some(text.clone())),
                (1000, Some(String::new())),
            ] {
                let q = SearchQuery {
                    text: text.clone(),
                    locality,
                    limit,
                    cursor: Some(text.clone()).filter(|t| t.len() < 20),
                    ..SearchQuery::new("", scope.clone())
                };
                match index.search(&q) {
                    Ok(page) => assert!(page.keys.len() <= MAX_LIMIT),
                    Err(err) => assert_eq!(err.kind(), ErrorKind::InvalidInput, "{text:?}: {err}"),
                }
            }
            let parts = [text.as_str()];
            let subs = Substrings {
                initial: Some(text),
                any: &parts,
                last: Some(text),
            };
            for attr in [RawAttr::Mail, RawAttr::Cn, RawAttr::Sn, RawAttr::GivenName] {
                index.keys_with_substring(attr, subs, scope, 0).unwrap();
                index.keys_with_value(attr, text, scope, 5).unwrap();
            }
        }
    }
    // The limits themselves are errors of the right kind.
    let q = SearchQuery::new("a".repeat(10_240), VisibilityScope::All);
    assert_eq!(
        index.search(&q).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn error_kinds() {
    assert_eq!(IndexError::Busy.kind(), ErrorKind::Unavailable);
    assert_eq!(
        IndexError::InvalidCursor("x").kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        IndexError::Stale {
            applied: ChangeSeq(2),
            up_to: ChangeSeq(1)
        }
        .kind(),
        ErrorKind::Conflict
    );
}

#[test]
fn given_name_inside_a_longer_display_word_is_still_indexed() {
    let index = index_of(vec![with(doc("jo", "Ann", "Smith"), |d| {
        d.display_name = "Dr. Joanne Smith".into();
    })]);
    assert_eq!(find(&index, "ann smith"), [key("jo")]);
    assert_eq!(find(&index, "joanne"), [key("jo")]);
}

#[test]
fn browse_pages_by_key_while_entries_change() {
    let index = index_of(
        (0..10)
            .map(|i| doc(&format!("k{i}"), "Kim", "Lee"))
            .collect(),
    );
    let mut q = SearchQuery::new("", VisibilityScope::All);
    q.limit = 4;
    let first = index.search(&q).unwrap();
    assert_eq!(first.keys, [key("k0"), key("k1"), key("k2"), key("k3")]);
    // One entry before the cursor and one after it appear; one after it goes.
    index
        .apply(
            vec![
                IndexOp::Upsert(doc("k00", "Kim", "Lee")),
                IndexOp::Upsert(doc("k55", "Kim", "Lee")),
                IndexOp::Remove(key("k4")),
            ],
            ChangeSeq(2),
        )
        .unwrap();
    q.cursor = first.next;
    let second = index.search(&q).unwrap();
    // Byte order: "k55@…" sorts before "k5@…".
    assert_eq!(second.keys, [key("k55"), key("k5"), key("k6"), key("k7")]);
    assert_eq!(
        second.total, 11,
        "the total counts every match, not only those ahead"
    );
}

#[test]
fn overlong_words_match_nothing() {
    let index = clinic();
    let page = index
        .search(&SearchQuery::new(
            format!("john {}", "x".repeat(80)),
            VisibilityScope::All,
        ))
        .unwrap();
    assert_eq!(page, SearchPage::default());
}

#[test]
fn an_index_in_use_is_never_wiped() {
    let dir = tempfile::tempdir().unwrap();
    let first = SearchIndex::open(dir.path()).unwrap();
    first
        .apply(
            vec![IndexOp::Upsert(doc("a", "Ada", "Lovelace"))],
            ChangeSeq(7),
        )
        .unwrap();
    // Another process with another schema version comes along…
    let meta = dir.path().join("meta.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    let old = format!("\\\"schema\\\":{}", schema::SCHEMA_VERSION);
    std::fs::write(&meta, text.replace(&old, "\\\"schema\\\":0")).unwrap();
    let files = || {
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = files();
    let err = SearchIndex::open(dir.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    // …and the first one's files are all still there.
    assert_eq!(files(), before);
    assert_eq!(find(&first, "lovelace"), [key("a")]);
}

/// The sparse query (required through `all_pfx`, scored clause by clause)
/// matches exactly what the plain disjunction of the scored clauses
/// matches, and scores every hit the same, for every kind of word.
#[test]
fn sparse_query_matches_and_scores_as_the_plain_disjunction() {
    let cities = ["Boston", "Bosworth", "Chicago", "Cambridge", "Springfield"];
    let specialties = ["Cardiology", "Cardiac Surgery", "Pediatrics", "Dermatology"];
    let orgs = ["Boston Medical Center", "Cardio Partners", "Chicago Kids"];
    let mut docs: Vec<IndexDoc> = (0..300)
        .map(|i| {
            with(
                doc(&format!("p{i}"), ["Ann", "Bob", "Jo", "Karl"][i % 4], {
                    ["Smith", "Smyth", "Smithson", "Müller", "Boston", "Li"][i % 6]
                }),
                |d| {
                    d.locality = Some(cities[i % 5].into());
                    d.specialty = Some(specialties[i % 4].into());
                    if i % 3 == 0 {
                        d.organisation_id = Some(format!("o{}", i % 9));
                        d.organisation_name = Some(orgs[i % 9 / 3].into());
                    }
                    if i % 7 == 0 {
                        d.identifiers = vec![format!("12345{i:05}"), format!("NPI:12345{i:05}")];
                    }
                    if i % 11 == 0 {
                        d.visibility = Visibility::Internal;
                    }
                },
            )
        })
        .collect();
    docs.push(doc("verylongsurname", "Maximilian", "Abcdefghijklmnopqrst"));
    let index = index_of(docs);
    let queries = [
        "smith",
        "smi",
        "sm",
        "s",
        "jo",
        "jo smi",
        "ann smith",
        "cardio bos",
        "cardiology boston",
        "cardiac",
        "card bost",
        "smyth",
        "smtih",
        "mueller",
        "müller",
        "boston",
        "bos",
        "li",
        "li boston",
        "1234500007",
        "npi",
        "chicago kids",
        "abcdefghijklmnopq",
        "maximilian abcd",
        "partners cardio",
        "spring",
        "ma",
        "cambrige",
    ];
    let mut compared_hits = 0;
    for text in queries {
        for scope in [VisibilityScope::All, VisibilityScope::PublicOnly] {
            let q = SearchQuery::new(text, scope.clone());
            let [reference, sparse] = search::both_ways(&index, &q);
            assert_eq!(reference.0, sparse.0, "total for {text:?}");
            assert_eq!(
                reference.1.keys().collect::<Vec<_>>(),
                sparse.1.keys().collect::<Vec<_>>(),
                "hits for {text:?}"
            );
            compared_hits += reference.1.len();
            for (k, s) in &reference.1 {
                let t = sparse.1[k];
                assert!(
                    (s - t).abs() <= 1e-5 * s.abs().max(1.0),
                    "score of {k} for {text:?}: {s} vs {t}"
                );
            }
        }
    }
    assert!(compared_hits > 2_500, "only {compared_hits} hits compared");
}
