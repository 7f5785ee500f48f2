//! Federation: this node's publication log and its Merkle tree, what the
//! publisher has sent, the children it pulls (cursor, status), their logs
//! as mirrored, the authors and delegations it has learnt, rejections with
//! their reasons, and the provenance of every entry that came from
//! elsewhere.
//!
//! Keys are lower-case hex text (64 characters) so that the tables read
//! well in a SQL client; hashes, records and grants are raw bytes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn key_col<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).string_len(64).not_null().to_owned()
}

fn time_col<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // This node's log: seq from 1 without gaps, each record signed by
        // this node (its own bodies, or relays of its children's records).
        manager
            .create_table(
                Table::create()
                    .table(FedLog::Table)
                    .col(
                        ColumnDef::new(FedLog::Seq)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(FedLog::Hash).blob().not_null())
                    .col(ColumnDef::new(FedLog::Record).blob().not_null())
                    .col(ColumnDef::new(FedLog::BodyType).integer().not_null())
                    // The author of what the record says (this node, or the
                    // author of a relayed record), and its sequence number.
                    .col(key_col(FedLog::Author))
                    .col(ColumnDef::new(FedLog::AuthorSeq).big_integer().not_null())
                    // Entry key or organisation id, for people reading the table.
                    .col(ColumnDef::new(FedLog::Subject).text().null())
                    .col(time_col(FedLog::At))
                    .to_owned(),
            )
            .await?;

        // Perfect subtrees of the Merkle tree over fed_log (level 0 = leaves).
        manager
            .create_table(
                Table::create()
                    .table(FedMerkle::Table)
                    .col(ColumnDef::new(FedMerkle::Level).small_integer().not_null())
                    .col(ColumnDef::new(FedMerkle::Idx).big_integer().not_null())
                    .col(ColumnDef::new(FedMerkle::Hash).blob().not_null())
                    .primary_key(Index::create().col(FedMerkle::Level).col(FedMerkle::Idx))
                    .to_owned(),
            )
            .await?;

        // Small named values: the log's identity and signing key, the
        // publisher's position in the change sequence.
        manager
            .create_table(
                Table::create()
                    .table(FedState::Table)
                    .col(
                        ColumnDef::new(FedState::Name)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(FedState::Value).text().not_null())
                    .to_owned(),
            )
            .await?;

        // What the publisher last published for each local entry
        // (`e:<key>`) and organisation (`o:<id>`): a digest of the body, to
        // skip repeats and to know what to withdraw.
        manager
            .create_table(
                Table::create()
                    .table(FedPublished::Table)
                    .col(
                        ColumnDef::new(FedPublished::Key)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(FedPublished::Digest).blob().not_null())
                    .to_owned(),
            )
            .await?;

        // Children this node pulls.
        manager
            .create_table(
                Table::create()
                    .table(FedPeers::Table)
                    .col(
                        ColumnDef::new(FedPeers::Peer)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(FedPeers::Url).text().not_null())
                    .col(ColumnDef::new(FedPeers::Name).text().null())
                    // The last record applied, its hash, and the key the
                    // child signs with after it.
                    .col(ColumnDef::new(FedPeers::Cursor).big_integer().not_null())
                    .col(ColumnDef::new(FedPeers::CursorHash).blob().not_null())
                    .col(key_col(FedPeers::Signer))
                    .col(ColumnDef::new(FedPeers::HeadSeen).big_integer().not_null())
                    // active or stopped.
                    .col(ColumnDef::new(FedPeers::Status).string_len(16).not_null())
                    .col(ColumnDef::new(FedPeers::StopCode).string_len(32).null())
                    .col(ColumnDef::new(FedPeers::StopDetail).text().null())
                    .col(
                        ColumnDef::new(FedPeers::LastPullAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(FedPeers::LastOkAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(FedPeers::LastErrorCode)
                            .string_len(32)
                            .null(),
                    )
                    .col(ColumnDef::new(FedPeers::LastError).text().null())
                    .col(ColumnDef::new(FedPeers::Failures).integer().not_null())
                    .col(time_col(FedPeers::AddedAt))
                    .to_owned(),
            )
            .await?;

        // Each child's log as received: whole, in order, verifiable again.
        manager
            .create_table(
                Table::create()
                    .table(FedMirror::Table)
                    .col(key_col(FedMirror::Peer))
                    .col(ColumnDef::new(FedMirror::Seq).big_integer().not_null())
                    .col(ColumnDef::new(FedMirror::Hash).blob().not_null())
                    .col(ColumnDef::new(FedMirror::Record).blob().not_null())
                    // applied, quarantined or skipped.
                    .col(ColumnDef::new(FedMirror::Status).string_len(16).not_null())
                    .col(key_col(FedMirror::Author))
                    .col(
                        ColumnDef::new(FedMirror::AuthorSeq)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(Index::create().col(FedMirror::Peer).col(FedMirror::Seq))
                    .to_owned(),
            )
            .await?;

        // Authors whose records were applied: their current key, every key
        // they used, and their last sequence number (replay protection).
        manager
            .create_table(
                Table::create()
                    .table(FedAuthors::Table)
                    .col(
                        ColumnDef::new(FedAuthors::Author)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(key_col(FedAuthors::Signer))
                    .col(ColumnDef::new(FedAuthors::Lineage).text().not_null())
                    .col(ColumnDef::new(FedAuthors::LastSeq).big_integer().not_null())
                    .col(key_col(FedAuthors::Via))
                    .col(time_col(FedAuthors::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        // Every delegation grant seen (signature verified), and this
        // node's own chain (`own`).
        manager
            .create_table(
                Table::create()
                    .table(FedGrants::Table)
                    .col(
                        ColumnDef::new(FedGrants::Hash)
                            .blob()
                            .not_null()
                            .primary_key(),
                    )
                    .col(key_col(FedGrants::Issuer))
                    .col(key_col(FedGrants::Subject))
                    .col(ColumnDef::new(FedGrants::Domains).text().not_null())
                    .col(time_col(FedGrants::IssuedAt))
                    .col(time_col(FedGrants::ExpiresAt))
                    .col(ColumnDef::new(FedGrants::Grant).blob().not_null())
                    .col(ColumnDef::new(FedGrants::Own).boolean().not_null())
                    .col(time_col(FedGrants::AddedAt))
                    .to_owned(),
            )
            .await?;

        // Why records or pages were refused.
        manager
            .create_table(
                Table::create()
                    .table(FedRejections::Table)
                    .col(
                        ColumnDef::new(FedRejections::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(key_col(FedRejections::Peer))
                    .col(ColumnDef::new(FedRejections::Seq).big_integer().null())
                    .col(ColumnDef::new(FedRejections::Author).string_len(64).null())
                    .col(
                        ColumnDef::new(FedRejections::AuthorSeq)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(FedRejections::Code)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(FedRejections::Detail).text().not_null())
                    .col(time_col(FedRejections::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_fed_rejections_peer")
                    .table(FedRejections::Table)
                    .col(FedRejections::Peer)
                    .col(FedRejections::Id)
                    .to_owned(),
            )
            .await?;

        // Where each entry that came from another node came from.
        manager
            .create_table(
                Table::create()
                    .table(FedProvenance::Table)
                    .col(
                        ColumnDef::new(FedProvenance::Key)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(key_col(FedProvenance::Author))
                    .col(
                        ColumnDef::new(FedProvenance::AuthorSeq)
                            .big_integer()
                            .not_null(),
                    )
                    .col(key_col(FedProvenance::Via))
                    .col(ColumnDef::new(FedProvenance::RecordHash).blob().not_null())
                    // JSON list of grant hashes (hex), root first.
                    .col(ColumnDef::new(FedProvenance::Chain).text().not_null())
                    .col(time_col(FedProvenance::At))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum FedLog {
    Table,
    Seq,
    Hash,
    Record,
    BodyType,
    Author,
    AuthorSeq,
    Subject,
    At,
}

#[derive(DeriveIden)]
enum FedMerkle {
    Table,
    Level,
    Idx,
    Hash,
}

#[derive(DeriveIden)]
enum FedState {
    Table,
    Name,
    Value,
}

#[derive(DeriveIden)]
enum FedPublished {
    Table,
    Key,
    Digest,
}

#[derive(DeriveIden)]
enum FedPeers {
    Table,
    Peer,
    Url,
    Name,
    Cursor,
    CursorHash,
    Signer,
    HeadSeen,
    Status,
    StopCode,
    StopDetail,
    LastPullAt,
    LastOkAt,
    LastErrorCode,
    LastError,
    Failures,
    AddedAt,
}

#[derive(DeriveIden)]
enum FedMirror {
    Table,
    Peer,
    Seq,
    Hash,
    Record,
    Status,
    Author,
    AuthorSeq,
}

#[derive(DeriveIden)]
enum FedAuthors {
    Table,
    Author,
    Signer,
    Lineage,
    LastSeq,
    Via,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FedGrants {
    Table,
    Hash,
    Issuer,
    Subject,
    Domains,
    IssuedAt,
    ExpiresAt,
    Grant,
    Own,
    AddedAt,
}

#[derive(DeriveIden)]
enum FedRejections {
    Table,
    Id,
    Peer,
    Seq,
    Author,
    AuthorSeq,
    Code,
    Detail,
    At,
}

#[derive(DeriveIden)]
enum FedProvenance {
    Table,
    Key,
    Author,
    AuthorSeq,
    Via,
    RecordHash,
    Chain,
    At,
}
