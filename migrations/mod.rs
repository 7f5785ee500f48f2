//! The database schema, as a sequence of sea-orm migrations.
//!
//! One set of migrations serves SQLite and PostgreSQL alike: tables are
//! described with sea-query's backend-neutral builders, never as SQL text.
//! Migrations are history: once released, a file is never edited; a change
//! to the schema is a new file appended to [`Migrator::migrations`].
//!
//! The files live outside `src/` so that the schema is easy to find; the
//! storage module pulls this file in with `#[path]`.

use sea_orm_migration::prelude::*;

mod m20261123_000001_directory;
mod m20261123_000002_trust_anchors;
mod m20261123_000003_changes;
mod m20261201_000001_users;
mod m20261202_000001_federation;
mod m20261203_000001_policies;
mod m20261203_000002_trust_bundles;
mod m20261206_000001_published_index;

/// Applies the migrations in order and records them in `seaql_migrations`.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_directory::Migration),
            Box::new(m20261123_000002_trust_anchors::Migration),
            Box::new(m20261123_000003_changes::Migration),
            Box::new(m20261201_000001_users::Migration),
            Box::new(m20261202_000001_federation::Migration),
            Box::new(m20261203_000001_policies::Migration),
            Box::new(m20261203_000002_trust_bundles::Migration),
            Box::new(m20261206_000001_published_index::Migration),
        ]
    }
}
