//! Organisations: upsert, read, list, delete.
//!
//! Every write emits [`ChangeKind::OrganisationChanged`] with the
//! organisation id as key, so that views showing organisation names refresh.

use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};

use super::convert::{ORGANISATION_COLUMNS, organisation_from_row, organisation_values};
use super::entity::{entry, organisation};
use super::seq::WriteTx;
use super::{StorageError, Store};
use crate::domain::{ChangeKind, ChangeSeq, OrgId, Organisation};

type Result<T> = std::result::Result<T, StorageError>;

impl Store {
    /// Creates or replaces an organisation.
    pub async fn put_organisation(&self, org: &Organisation) -> Result<ChangeSeq> {
        let mut w = WriteTx::begin(self).await?;
        let insert = Query::insert()
            .into_table(organisation::Entity)
            .columns(ORGANISATION_COLUMNS)
            .values_panic(organisation_values(org))
            .on_conflict(
                OnConflict::column(organisation::Column::Id)
                    .update_columns(ORGANISATION_COLUMNS.into_iter().skip(1))
                    .to_owned(),
            )
            .to_owned();
        w.conn().execute(&insert).await?;
        w.change(ChangeKind::OrganisationChanged, org.id.to_string());
        w.commit().await
    }

    /// The organisation with this id, if there is one.
    pub async fn get_organisation(&self, id: &OrgId) -> Result<Option<Organisation>> {
        organisation::Entity::find_by_id(id.as_str().to_owned())
            .one(&self.db)
            .await?
            .map(organisation_from_row)
            .transpose()
    }

    /// All organisations, by id.
    pub async fn list_organisations(&self) -> Result<Vec<Organisation>> {
        organisation::Entity::find()
            .order_by_asc(organisation::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(organisation_from_row)
            .collect()
    }

    /// Deletes an organisation. `None` when there was none;
    /// [`StorageError::OrganisationInUse`] while entries still belong to it.
    pub async fn delete_organisation(&self, id: &OrgId) -> Result<Option<ChangeSeq>> {
        let mut w = WriteTx::begin(self).await?;
        // Checked here rather than left to the foreign key, so that the
        // caller learns how many entries are in the way.
        let entries = entry::Entity::find()
            .filter(entry::Column::OrganisationId.eq(id.as_str()))
            .count(w.conn())
            .await?;
        if entries > 0 {
            w.rollback().await?;
            return Err(StorageError::OrganisationInUse {
                id: id.to_string(),
                entries,
            });
        }
        let deleted = organisation::Entity::delete_by_id(id.as_str().to_owned())
            .exec(w.conn())
            .await?;
        if deleted.rows_affected == 0 {
            w.rollback().await?;
            return Ok(None);
        }
        w.change(ChangeKind::OrganisationChanged, id.to_string());
        w.commit().await.map(Some)
    }
}
