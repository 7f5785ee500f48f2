//! A row of `trust_bundles`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trust_bundles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub source_kind: String,
    pub source: String,
    pub signer: Option<Vec<u8>>,
    pub refresh_seconds: i64,
    pub origin: String,
    pub created_at: DateTimeUtc,
    pub last_code: Option<String>,
    pub last_detail: Option<String>,
    pub last_attempt_at: Option<DateTimeUtc>,
    pub last_success_at: Option<DateTimeUtc>,
    pub anchor_count: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
