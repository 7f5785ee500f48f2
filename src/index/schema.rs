//! The index schema: which fields exist, how each is analysed, and the
//! version number that forces a rebuild when any of this changes.
//!
//! | field | analysis | for |
//! |---|---|---|
//! | `key` | raw, fast, stored | primary key: replace/delete, browse order and keyset cursor (fast), result keys (stored) |
//! | `org_id`, `kind`, `visibility` | raw | exact filters |
//! | `locality` | whole value, lower-cased | case-insensitive exact filter |
//! | `name`, `org`, `role`, `place`, `ident` | words, folded | exact and typo match (BM25) |
//! | `name_pfx`, `org_pfx`, `addr_pfx`, `role_pfx`, `place_pfx` | edge n-grams of the words | prefix (type-ahead) match |
//! | `cn`, `sn`, `given` | whole value, lower-cased | LDAP equality and substring filters (`mail` uses `key`) |

use tantivy::schema::{
    FAST, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};

use super::analysis;

/// Bump whenever a field, its options or an analyser changes. An index on
/// disk with another version is discarded at open and must be rebuilt.
pub(crate) const SCHEMA_VERSION: u32 = 2;

/// A scored text field: its word and prefix (edge n-gram) variants and its boost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextField {
    /// Whole words, for exact and typo matches.
    pub words: Option<Field>,
    /// Edge n-grams of the words, for prefix matches.
    pub prefixes: Option<Field>,
    /// Weight of a match in this field relative to the others.
    pub boost: f32,
    /// Whether typo-tolerant matching runs on this field. Addresses and
    /// identifiers are left out: a typo there finds someone else.
    pub fuzzy: bool,
    /// Whether a one- or two-letter prefix (the start of the last word) is
    /// looked up (and indexed) here. Only in names: "james s" means a
    /// surname, and such a prefix matches most documents in other fields.
    pub short_prefix: bool,
}

/// Handles to every field, resolved once.
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    pub key: Field,
    pub org_id: Field,
    pub kind: Field,
    pub visibility: Field,
    pub locality: Field,
    pub name: TextField,
    pub org: TextField,
    pub addr: TextField,
    pub role: TextField,
    pub place: TextField,
    pub ident: TextField,
    /// Every prefix field's values again, as grams of 3 characters and
    /// more: one posting list finds who has a word anywhere as a prefix
    /// (`search.rs` matches through it and scores with the fields).
    pub all_pfx: Field,
    pub cn: Field,
    pub sn: Field,
    pub given: Field,
}

impl Fields {
    /// The scored fields in the order queries visit them.
    pub fn text(&self) -> [TextField; 6] {
        [
            self.name, self.org, self.addr, self.role, self.place, self.ident,
        ]
    }
}

fn words() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analysis::TEXT)
            .set_index_option(IndexRecordOption::WithFreqs),
    )
}

fn prefixes(analyser: &str) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analyser)
            .set_index_option(IndexRecordOption::Basic),
    )
}

fn lowered() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analysis::LOWER)
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    )
}

/// How one scored text field is set up (see [`TextField`]).
#[derive(Clone, Copy)]
struct Spec {
    name: &'static str,
    words: bool,
    prefixes: bool,
    boost: f32,
    fuzzy: bool,
    short_prefix: bool,
}

/// Builds the schema and the handles into it.
pub(crate) fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let key = b.add_text_field("key", STRING | FAST | STORED);
    let org_id = b.add_text_field("org_id", STRING);
    let kind = b.add_text_field("kind", STRING);
    let visibility = b.add_text_field("visibility", STRING);
    let locality = b.add_text_field("locality", lowered());
    let mut text = |spec: Spec| TextField {
        words: spec.words.then(|| b.add_text_field(spec.name, words())),
        prefixes: spec.prefixes.then(|| {
            let analyser = if spec.short_prefix {
                analysis::PREFIX
            } else {
                analysis::PREFIX3
            };
            b.add_text_field(&format!("{}_pfx", spec.name), prefixes(analyser))
        }),
        boost: spec.boost,
        fuzzy: spec.fuzzy,
        short_prefix: spec.short_prefix,
    };
    // Boosts: who someone is outranks where they work, which outranks what
    // they do, which outranks where they are. Address words are nearly
    // always the person's or the organisation's name again, so they only
    // serve prefix matches (which include whole words); identifiers are
    // pasted whole, so they only serve exact matches.
    let all = Spec {
        name: "",
        words: true,
        prefixes: true,
        boost: 1.0,
        fuzzy: true,
        short_prefix: false,
    };
    let name = text(Spec {
        name: "name",
        boost: 3.0,
        short_prefix: true,
        ..all
    });
    let org = text(Spec {
        name: "org",
        boost: 2.0,
        ..all
    });
    let addr = text(Spec {
        name: "addr",
        words: false,
        boost: 1.5,
        fuzzy: false,
        ..all
    });
    let role = text(Spec {
        name: "role",
        boost: 1.5,
        ..all
    });
    let place = text(Spec {
        name: "place",
        ..all
    });
    let ident = text(Spec {
        name: "ident",
        prefixes: false,
        boost: 3.0,
        fuzzy: false,
        ..all
    });
    let all_pfx = b.add_text_field(
        "all_pfx",
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(analysis::PREFIX3)
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        ),
    );
    let cn = b.add_text_field("cn", lowered());
    let sn = b.add_text_field("sn", lowered());
    let given = b.add_text_field("given", lowered());
    let fields = Fields {
        key,
        org_id,
        kind,
        visibility,
        locality,
        name,
        org,
        addr,
        role,
        place,
        ident,
        all_pfx,
        cn,
        sn,
        given,
    };
    (b.build(), fields)
}
