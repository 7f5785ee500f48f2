//! Trust bundles: named sources of trust anchors (a URL or a file, plain
//! `.p7b` or signed `.p7m`), how their refreshes went, and the anchors
//! each one brings.
//!
//! Bundle anchors live apart from `trust_anchors` (the anchors added by
//! hand): the same CA often sits in several bundles, and in the hand-made
//! list too, and each source must be able to drop it without taking it away
//! from the others. The key is (bundle, fingerprint); the parsed columns
//! repeat those of `trust_anchors`, so listing needs no DER parsing.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TrustBundles::Table)
                    .col(
                        ColumnDef::new(TrustBundles::Name)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    // `url` or `file`.
                    .col(
                        ColumnDef::new(TrustBundles::SourceKind)
                            .string_len(8)
                            .not_null(),
                    )
                    .col(ColumnDef::new(TrustBundles::Source).text().not_null())
                    // DER of the certificate that must sign the bundle; NULL: unsigned accepted.
                    .col(ColumnDef::new(TrustBundles::Signer).blob().null())
                    .col(
                        ColumnDef::new(TrustBundles::RefreshSeconds)
                            .big_integer()
                            .not_null(),
                    )
                    // `config` or `runtime`.
                    .col(
                        ColumnDef::new(TrustBundles::Origin)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TrustBundles::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    // The last attempt: a refresh code (`ok`, `not-found`, ...), its detail and time.
                    .col(ColumnDef::new(TrustBundles::LastCode).string_len(32).null())
                    .col(ColumnDef::new(TrustBundles::LastDetail).text().null())
                    .col(
                        ColumnDef::new(TrustBundles::LastAttemptAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(TrustBundles::LastSuccessAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(TrustBundles::AnchorCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(BundleAnchors::Table)
                    .col(
                        ColumnDef::new(BundleAnchors::Bundle)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BundleAnchors::Fingerprint)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(BundleAnchors::Der).blob().not_null())
                    .col(ColumnDef::new(BundleAnchors::Subject).text().not_null())
                    .col(ColumnDef::new(BundleAnchors::Issuer).text().not_null())
                    .col(ColumnDef::new(BundleAnchors::Serial).text().not_null())
                    .col(
                        ColumnDef::new(BundleAnchors::NotBefore)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BundleAnchors::NotAfter)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BundleAnchors::EmailAddresses)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(BundleAnchors::DnsNames).text().not_null())
                    .col(ColumnDef::new(BundleAnchors::KeyUsage).text().not_null())
                    .col(
                        ColumnDef::new(BundleAnchors::ExtendedKeyUsage)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(BundleAnchors::Policies).text().not_null())
                    .col(
                        ColumnDef::new(BundleAnchors::Assurance)
                            .string_len(32)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(BundleAnchors::KeyAlgorithm)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(BundleAnchors::IsCa).boolean().not_null())
                    .col(
                        ColumnDef::new(BundleAnchors::AddedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(BundleAnchors::Bundle)
                            .col(BundleAnchors::Fingerprint),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(BundleAnchors::Table, BundleAnchors::Bundle)
                            .to(TrustBundles::Table, TrustBundles::Name)
                            .on_delete(ForeignKeyAction::Cascade),
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
enum TrustBundles {
    Table,
    Name,
    SourceKind,
    Source,
    Signer,
    RefreshSeconds,
    Origin,
    CreatedAt,
    LastCode,
    LastDetail,
    LastAttemptAt,
    LastSuccessAt,
    AnchorCount,
}

#[derive(DeriveIden)]
enum BundleAnchors {
    Table,
    Bundle,
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
    AddedAt,
}
