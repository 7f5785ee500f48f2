//! sea-orm entities: the rows exactly as the migrations define them.
//! Private to `storage`; the rest of the crate sees domain types only.
//! Conversions to and from domain types live in `super::convert`.

pub mod anchor;
pub mod bundle;
pub mod bundle_anchor;
pub mod certificate;
pub mod change;
pub mod counter;
pub mod entry;
pub mod organisation;
pub mod user;
