//! The change sequence: the `changes` log that derived views catch up from,
//! and the `counters` row that hands out sequence numbers.
//!
//! Sequence numbers do not come from a database sequence or autoincrement:
//! on PostgreSQL those are handed out in *start* order, not *commit* order
//! (transaction A takes 5, B takes 6 and commits first; a reader that saw 6
//! would later miss 5). Writers instead bump the `change` counter row inside
//! their transaction; its row lock orders them by commit. See
//! `src/storage/seq.rs`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Changes::Table)
                    .col(
                        ColumnDef::new(Changes::Seq)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Changes::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(Changes::Key).text().not_null())
                    .col(
                        ColumnDef::new(Changes::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Counters::Table)
                    .col(
                        ColumnDef::new(Counters::Name)
                            .string_len(32)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Counters::Value).big_integer().not_null())
                    .to_owned(),
            )
            .await?;

        // The counter row must exist before the first write: writers update
        // it, and an UPDATE of a missing row would silently allocate nothing.
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(Counters::Table)
                    .columns([Counters::Name, Counters::Value])
                    .values_panic(["change".into(), 0i64.into()])
                    .to_owned(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Changes {
    Table,
    Seq,
    Kind,
    Key,
    At,
}

#[derive(DeriveIden)]
enum Counters {
    Table,
    Name,
    Value,
}
