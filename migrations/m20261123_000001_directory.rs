//! The directory proper: organisations, entries and the certificates
//! attached to entries.
//!
//! Conventions used here and in later migrations:
//! - list-valued fields (identifiers, domains, SANs, policy OIDs, chains) are
//!   JSON text, so both backends store them the same way;
//! - times are `timestamp with time zone` (text in SQLite);
//! - enumerations are short strings (`person`, `trusted`), not integers, so
//!   the database reads well with a plain SQL client.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organisations::Table)
                    .col(
                        ColumnDef::new(Organisations::Id)
                            .string_len(63)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Organisations::Name).text().not_null())
                    .col(ColumnDef::new(Organisations::Domains).text().not_null())
                    .col(ColumnDef::new(Organisations::Description).text().null())
                    .col(ColumnDef::new(Organisations::Locality).text().null())
                    .col(ColumnDef::new(Organisations::Region).text().null())
                    .col(ColumnDef::new(Organisations::Country).string_len(2).null())
                    .col(ColumnDef::new(Organisations::Origin).text().not_null())
                    .col(
                        ColumnDef::new(Organisations::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Entries::Table)
                    // A surrogate key: certificates point at it, and scans
                    // paginate over it.
                    .col(
                        ColumnDef::new(Entries::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    // The lower-cased address: what lookups match on.
                    .col(ColumnDef::new(Entries::Key).text().not_null())
                    // The address as its owner wrote it.
                    .col(ColumnDef::new(Entries::Address).text().not_null())
                    .col(ColumnDef::new(Entries::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(Entries::DisplayName).text().not_null())
                    .col(ColumnDef::new(Entries::GivenName).text().null())
                    .col(ColumnDef::new(Entries::Surname).text().null())
                    .col(
                        ColumnDef::new(Entries::OrganisationId)
                            .string_len(63)
                            .null(),
                    )
                    .col(ColumnDef::new(Entries::Unit).text().null())
                    .col(ColumnDef::new(Entries::Title).text().null())
                    .col(ColumnDef::new(Entries::Profession).text().null())
                    .col(ColumnDef::new(Entries::Specialty).text().null())
                    .col(ColumnDef::new(Entries::Identifiers).text().not_null())
                    .col(ColumnDef::new(Entries::Locality).text().null())
                    .col(ColumnDef::new(Entries::Region).text().null())
                    .col(ColumnDef::new(Entries::Country).string_len(2).null())
                    .col(ColumnDef::new(Entries::PostalCode).text().null())
                    .col(ColumnDef::new(Entries::Phone).text().null())
                    .col(
                        ColumnDef::new(Entries::Visibility)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Entries::Origin).text().not_null())
                    .col(ColumnDef::new(Entries::Version).big_integer().not_null())
                    .col(
                        ColumnDef::new(Entries::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    // The change that last touched the entry.
                    .col(ColumnDef::new(Entries::ChangeSeq).big_integer().not_null())
                    // An organisation with entries cannot vanish underneath them.
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_entries_organisation")
                            .from(Entries::Table, Entries::OrganisationId)
                            .to(Organisations::Table, Organisations::Id)
                            .on_delete(ForeignKeyAction::Restrict)
                            .on_update(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_entries_key")
                    .table(Entries::Table)
                    .col(Entries::Key)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // "Entries of this organisation", and the foreign-key check when an
        // organisation is deleted. Partial: most entries name no
        // organisation, and bulk imports need not index them.
        manager
            .create_index(
                Index::create()
                    .name("ix_entries_organisation")
                    .table(Entries::Table)
                    .col(Entries::OrganisationId)
                    .and_where(Expr::col(Entries::OrganisationId).is_not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Certificates::Table)
                    // Surrogate key, for keyset scans during trust re-evaluation.
                    .col(
                        ColumnDef::new(Certificates::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Certificates::EntryId)
                            .big_integer()
                            .not_null(),
                    )
                    // SHA-256 of the DER, lower-case hex.
                    .col(
                        ColumnDef::new(Certificates::Fingerprint)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Certificates::Der).blob().not_null())
                    .col(ColumnDef::new(Certificates::Subject).text().not_null())
                    .col(ColumnDef::new(Certificates::Issuer).text().not_null())
                    .col(ColumnDef::new(Certificates::Serial).text().not_null())
                    .col(
                        ColumnDef::new(Certificates::NotBefore)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Certificates::NotAfter)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Certificates::EmailAddresses)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Certificates::DnsNames).text().not_null())
                    .col(ColumnDef::new(Certificates::KeyUsage).text().not_null())
                    .col(
                        ColumnDef::new(Certificates::ExtendedKeyUsage)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Certificates::Policies).text().not_null())
                    .col(
                        ColumnDef::new(Certificates::Assurance)
                            .string_len(32)
                            .null(),
                    )
                    .col(ColumnDef::new(Certificates::KeyAlgorithm).text().not_null())
                    .col(ColumnDef::new(Certificates::IsCa).boolean().not_null())
                    .col(
                        ColumnDef::new(Certificates::Binding)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Certificates::TrustStatus)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Certificates::TrustReason).text().not_null())
                    .col(
                        ColumnDef::new(Certificates::TrustEvaluatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    // Intermediates supplied with the certificate: JSON list of base64 DER.
                    .col(ColumnDef::new(Certificates::Chain).text().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_certificates_entry")
                            .from(Certificates::Table, Certificates::EntryId)
                            .to(Entries::Table, Entries::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One certificate at most once per entry; also serves "certificates of entry".
        manager
            .create_index(
                Index::create()
                    .name("ux_certificates_entry_fingerprint")
                    .table(Certificates::Table)
                    .col(Certificates::EntryId)
                    .col(Certificates::Fingerprint)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // "Which entries publish this certificate?"
        manager
            .create_index(
                Index::create()
                    .name("ix_certificates_fingerprint")
                    .table(Certificates::Table)
                    .col(Certificates::Fingerprint)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    /// All tables or none: a half-built schema must not survive a failure,
    /// on SQLite too (where sea-orm-migration uses no transaction by default).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Organisations {
    Table,
    Id,
    Name,
    Domains,
    Description,
    Locality,
    Region,
    Country,
    Origin,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Entries {
    Table,
    Id,
    Key,
    Address,
    Kind,
    DisplayName,
    GivenName,
    Surname,
    OrganisationId,
    Unit,
    Title,
    Profession,
    Specialty,
    Identifiers,
    Locality,
    Region,
    Country,
    PostalCode,
    Phone,
    Visibility,
    Origin,
    Version,
    UpdatedAt,
    ChangeSeq,
}

#[derive(DeriveIden)]
enum Certificates {
    Table,
    Id,
    EntryId,
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
    Binding,
    TrustStatus,
    TrustReason,
    TrustEvaluatedAt,
    Chain,
}
