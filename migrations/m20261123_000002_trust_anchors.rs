//! The node's trust anchors: the roots that certificate paths must end in.
//! The parsed columns repeat those of `certificates`, so an anchor can be
//! listed without parsing DER.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TrustAnchors::Table)
                    .col(
                        ColumnDef::new(TrustAnchors::Fingerprint)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(TrustAnchors::Der).blob().not_null())
                    .col(ColumnDef::new(TrustAnchors::Subject).text().not_null())
                    .col(ColumnDef::new(TrustAnchors::Issuer).text().not_null())
                    .col(ColumnDef::new(TrustAnchors::Serial).text().not_null())
                    .col(
                        ColumnDef::new(TrustAnchors::NotBefore)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TrustAnchors::NotAfter)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TrustAnchors::EmailAddresses)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(TrustAnchors::DnsNames).text().not_null())
                    .col(ColumnDef::new(TrustAnchors::KeyUsage).text().not_null())
                    .col(
                        ColumnDef::new(TrustAnchors::ExtendedKeyUsage)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(TrustAnchors::Policies).text().not_null())
                    .col(
                        ColumnDef::new(TrustAnchors::Assurance)
                            .string_len(32)
                            .null(),
                    )
                    .col(ColumnDef::new(TrustAnchors::KeyAlgorithm).text().not_null())
                    .col(ColumnDef::new(TrustAnchors::IsCa).boolean().not_null())
                    // `manual`, or the name of the bundle it came from.
                    .col(ColumnDef::new(TrustAnchors::Source).text().not_null())
                    .col(
                        ColumnDef::new(TrustAnchors::AddedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum TrustAnchors {
    Table,
    Fingerprint,
    Der,
    Subject,
    Issuer,
    Serial,
    NotBefore,
    NotAfter,
    EmailAddresses,
    DnsNames,
    KeyUsage,
    ExtendedKeyUsage,
    Policies,
    Assurance,
    KeyAlgorithm,
    IsCa,
    Source,
    AddedAt,
}
