//! A row of `entries`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "entries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Lower-cased address.
    pub key: String,
    /// The address as written.
    pub address: String,
    pub kind: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub organisation_id: Option<String>,
    pub unit: Option<String>,
    pub title: Option<String>,
    pub profession: Option<String>,
    pub specialty: Option<String>,
    /// JSON list of `{scheme, value}`.
    pub identifiers: String,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub country: Option<String>,
    pub postal_code: Option<String>,
    pub phone: Option<String>,
    pub visibility: String,
    pub origin: String,
    pub version: i64,
    pub updated_at: DateTimeUtc,
    pub change_seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Its certificates (read with it in one statement by searches).
    #[sea_orm(has_many = "super::certificate::Entity")]
    Certificates,
}

impl Related<super::certificate::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Certificates.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
