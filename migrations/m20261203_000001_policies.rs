//! Fair-play policies: each policy's head, every accepted event (applied,
//! or kept as evidence of equivocation) with its signed bytes, the derived
//! listing of each subject, and webhook subscriptions with their cursors
//! and dead letters.
//!
//! An event's `seq` is the change-sequence number of the write that
//! accepted it: its position in the all-policies feed, in commit order.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn time_col<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Policies::Table)
                    .col(
                        ColumnDef::new(Policies::Id)
                            .string_len(63)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Policies::Owner).string_len(64).not_null())
                    .col(ColumnDef::new(Policies::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Policies::Title).text().not_null())
                    .col(ColumnDef::new(Policies::Description).text().not_null())
                    .col(ColumnDef::new(Policies::Version).big_integer().not_null())
                    .col(ColumnDef::new(Policies::Head).blob().not_null())
                    // Set when the owner signed two different events for one version.
                    .col(ColumnDef::new(Policies::Flagged).boolean().not_null())
                    .col(time_col(Policies::CreatedAt))
                    .col(time_col(Policies::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PolicyEvents::Table)
                    .col(
                        ColumnDef::new(PolicyEvents::Seq)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(PolicyEvents::Hash).blob().not_null())
                    .col(
                        ColumnDef::new(PolicyEvents::PolicyId)
                            .string_len(63)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyEvents::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PolicyEvents::Op).string_len(16).not_null())
                    .col(ColumnDef::new(PolicyEvents::Subject).text().null())
                    .col(ColumnDef::new(PolicyEvents::Event).blob().not_null())
                    // False: evidence of equivocation, not part of the chain.
                    .col(ColumnDef::new(PolicyEvents::Applied).boolean().not_null())
                    // The child it was pulled from; NULL when submitted here.
                    .col(ColumnDef::new(PolicyEvents::Via).string_len(64).null())
                    .col(time_col(PolicyEvents::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_policy_events_hash")
                    .table(PolicyEvents::Table)
                    .col(PolicyEvents::Hash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_policy_events_version")
                    .table(PolicyEvents::Table)
                    .col(PolicyEvents::PolicyId)
                    .col(PolicyEvents::Version)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PolicyListings::Table)
                    .col(
                        ColumnDef::new(PolicyListings::PolicyId)
                            .string_len(63)
                            .not_null(),
                    )
                    .col(ColumnDef::new(PolicyListings::Subject).text().not_null())
                    .col(ColumnDef::new(PolicyListings::DnsKey).text().not_null())
                    .col(ColumnDef::new(PolicyListings::Listed).boolean().not_null())
                    .col(
                        ColumnDef::new(PolicyListings::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PolicyListings::Reason).text().not_null())
                    .col(
                        ColumnDef::new(PolicyListings::Expires)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(PolicyListings::PolicyId)
                            .col(PolicyListings::Subject),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PolicyWebhooks::Table)
                    .col(
                        ColumnDef::new(PolicyWebhooks::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    // NULL: every policy.
                    .col(
                        ColumnDef::new(PolicyWebhooks::PolicyId)
                            .string_len(63)
                            .null(),
                    )
                    .col(ColumnDef::new(PolicyWebhooks::Url).text().not_null())
                    // The feed position delivered (2xx) up to.
                    .col(
                        ColumnDef::new(PolicyWebhooks::Cursor)
                            .big_integer()
                            .not_null(),
                    )
                    // Tries of the next event so far, and when to try again.
                    .col(
                        ColumnDef::new(PolicyWebhooks::Attempts)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyWebhooks::NextAttemptAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(PolicyWebhooks::LastError).text().null())
                    .col(
                        ColumnDef::new(PolicyWebhooks::Delivered)
                            .big_integer()
                            .not_null(),
                    )
                    .col(time_col(PolicyWebhooks::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PolicyDeadLetters::Table)
                    .col(
                        ColumnDef::new(PolicyDeadLetters::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PolicyDeadLetters::WebhookId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyDeadLetters::EventSeq)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyDeadLetters::Attempts)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyDeadLetters::LastError)
                            .text()
                            .not_null(),
                    )
                    .col(time_col(PolicyDeadLetters::At))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_dead_letters_webhook")
                            .from(PolicyDeadLetters::Table, PolicyDeadLetters::WebhookId)
                            .to(PolicyWebhooks::Table, PolicyWebhooks::Id)
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
enum Policies {
    Table,
    Id,
    Owner,
    Kind,
    Title,
    Description,
    Version,
    Head,
    Flagged,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PolicyEvents {
    Table,
    Seq,
    Hash,
    PolicyId,
    Version,
    Op,
    Subject,
    Event,
    Applied,
    Via,
    At,
}

#[derive(DeriveIden)]
enum PolicyListings {
    Table,
    PolicyId,
    Subject,
    DnsKey,
    Listed,
    Version,
    Reason,
    Expires,
}

#[derive(DeriveIden)]
enum PolicyWebhooks {
    Table,
    Id,
    PolicyId,
    Url,
    Cursor,
    Attempts,
    NextAttemptAt,
    LastError,
    Delivered,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PolicyDeadLetters {
    Table,
    Id,
    WebhookId,
    EventSeq,
    Attempts,
    LastError,
    At,
}
