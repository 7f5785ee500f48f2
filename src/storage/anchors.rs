//! Trust anchors: the roots the node trusts.
//!
//! Every write emits [`ChangeKind::AnchorsChanged`] with the anchor's
//! fingerprint as key. Re-evaluating the certificates that an anchor change
//! affects is the caller's job, page by page, with
//! [`Store::scan_certificates`] and [`Store::update_trust`].

use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};

use super::convert::{ANCHOR_COLUMNS, anchor_from_row, anchor_values};
use super::entity::anchor;
use super::seq::WriteTx;
use super::{StorageError, Store};
use crate::domain::{ChangeKind, ChangeSeq, Fingerprint, TrustAnchor};

type Result<T> = std::result::Result<T, StorageError>;

impl Store {
    /// Adds a trust anchor, or replaces the one with the same fingerprint.
    pub async fn put_anchor(&self, anchor: &TrustAnchor) -> Result<ChangeSeq> {
        let mut w = WriteTx::begin(self).await?;
        let insert = Query::insert()
            .into_table(anchor::Entity)
            .columns(ANCHOR_COLUMNS)
            .values_panic(anchor_values(anchor))
            .on_conflict(
                OnConflict::column(anchor::Column::Fingerprint)
                    .update_columns(ANCHOR_COLUMNS.into_iter().skip(1))
                    .to_owned(),
            )
            .to_owned();
        w.conn().execute(&insert).await?;
        w.change(
            ChangeKind::AnchorsChanged,
            anchor.certificate.fingerprint.to_hex(),
        );
        w.commit().await
    }

    /// All trust anchors, by fingerprint.
    pub async fn list_anchors(&self) -> Result<Vec<TrustAnchor>> {
        anchor::Entity::find()
            .order_by_asc(anchor::Column::Fingerprint)
            .all(&self.db)
            .await?
            .into_iter()
            .map(anchor_from_row)
            .collect()
    }

    /// The trust anchor with this fingerprint, if there is one.
    pub async fn get_anchor(&self, fingerprint: &Fingerprint) -> Result<Option<TrustAnchor>> {
        anchor::Entity::find_by_id(fingerprint.to_hex())
            .one(&self.db)
            .await?
            .map(anchor_from_row)
            .transpose()
    }

    /// Removes a trust anchor. `None` when there was none.
    pub async fn delete_anchor(&self, fingerprint: &Fingerprint) -> Result<Option<ChangeSeq>> {
        let mut w = WriteTx::begin(self).await?;
        let deleted = anchor::Entity::delete_by_id(fingerprint.to_hex())
            .exec(w.conn())
            .await?;
        if deleted.rows_affected == 0 {
            w.rollback().await?;
            return Ok(None);
        }
        w.change(ChangeKind::AnchorsChanged, fingerprint.to_hex());
        w.commit().await.map(Some)
    }
}
