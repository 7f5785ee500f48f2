//! A row of `certificates`: one certificate attached to one entry.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "certificates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub entry_id: i64,
    pub fingerprint: String,
    pub der: Vec<u8>,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: DateTimeUtc,
    pub not_after: DateTimeUtc,
    pub email_addresses: String,
    pub dns_names: String,
    pub key_usage: String,
    pub extended_key_usage: String,
    pub policies: String,
    pub assurance: Option<String>,
    pub key_algorithm: String,
    pub is_ca: bool,
    pub binding: String,
    pub trust_status: String,
    pub trust_reason: String,
    pub trust_evaluated_at: DateTimeUtc,
    /// JSON list of base64 DER.
    pub chain: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::entry::Entity",
        from = "Column::EntryId",
        to = "super::entry::Column::Id"
    )]
    Entry,
}

impl Related<super::entry::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Entry.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
