//! The index schema: which fields exist, how each is analysed, and the
//! version number that forces a rebuild when any of this changes.
//!
//! | field | analysis | for |
//! |---|---|---|
//! | `key` | raw, fast | primary key: replace/delete, browse order, keyset cursor, result keys |
//! | `org_id`, `kind`, `visibility` | raw | exact filters |
//! | `locality` | whole value, lower-cased | case-insensitive exact filter |
//! | `name`, `org`, `addr`, `role`, `place`, `ident` | words, folded | scored full-text match |
//! | `*_pfx` of each of those | edge n-grams of the words | prefix (type-ahead) match |
//! | `mail`, `cn`, `sn`, `given` | whole value, lower-cased | LDAP equality and substring filters |

use tantivy::schema::{
    FAST, Field, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};

use super::analysis;

/// Bump whenever a field, its options or an analyser changes. An index on
/// disk with another version is discarded at open and must be rebuilt.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The scored text fields, each with its prefix twin and its boost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextField {
    pub words: Field,
    pub prefixes: Field,
    /// Weight of a match in this field relative to the others.
    pub boost: f32,
    /// Whether typo-tolerant matching runs on this field. Addresses and
    /// identifiers are left out: a typo there finds someone else.
    pub fuzzy: bool,
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
    pub mail: Field,
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

fn prefixes() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analysis::PREFIX)
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

/// Builds the schema and the handles into it.
pub(crate) fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let key = b.add_text_field("key", STRING | FAST);
    let org_id = b.add_text_field("org_id", STRING);
    let kind = b.add_text_field("kind", STRING);
    let visibility = b.add_text_field("visibility", STRING);
    let locality = b.add_text_field("locality", lowered());
    let mut text = |name: &str, boost: f32, fuzzy: bool| TextField {
        words: b.add_text_field(name, words()),
        prefixes: b.add_text_field(&format!("{name}_pfx"), prefixes()),
        boost,
        fuzzy,
    };
    // Boosts: who someone is outranks where they work, which outranks what
    // they do, which outranks where they are. Identifiers are exact by nature.
    let name = text("name", 3.0, true);
    let org = text("org", 2.0, true);
    let addr = text("addr", 1.5, false);
    let role = text("role", 1.5, true);
    let place = text("place", 1.0, true);
    let ident = text("ident", 3.0, false);
    let mail = b.add_text_field("mail", lowered());
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
        mail,
        cn,
        sn,
        given,
    };
    (b.build(), fields)
}
