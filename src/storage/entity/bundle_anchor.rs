//! A row of `bundle_anchors`: an anchor a trust bundle brings.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bundle_anchors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub bundle: String,
    #[sea_orm(primary_key, auto_increment = false)]
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
    pub added_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
