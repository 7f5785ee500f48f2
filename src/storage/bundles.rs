//! Trust bundles and the anchors they bring.
//!
//! A bundle's anchors change only through [`Store::replace_bundle_anchors`]
//! (a successful refresh, one transaction) and [`Store::delete_bundle`].
//! Both emit [`ChangeKind::AnchorsChanged`] for each fingerprint that came
//! or went, so other processes rebuild their trust store; re-judging the
//! certificates is the caller's job, as for hand-made anchors. A failed
//! refresh only writes the status columns ([`Store::record_bundle_failure`]).

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::convert::{
    BUNDLE_ANCHOR_COLUMNS, bundle_anchor_from_row, bundle_anchor_values, bundle_from_row, to_i64,
    ts,
};
use super::entity::{bundle, bundle_anchor};
use super::seq::{WriteTx, rows_per_insert};
use super::{StorageError, Store};
use crate::domain::{
    BundleDefinition, BundleName, Certificate, ChangeKind, ChangeSeq, RefreshCode, RefreshStatus,
    TrustAnchor, TrustBundle,
};

type Result<T> = std::result::Result<T, StorageError>;

/// What a successful refresh changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleApplied {
    /// The last change written (the head when nothing changed).
    pub seq: ChangeSeq,
    /// Anchors new to this bundle.
    pub added: usize,
    /// Anchors this bundle no longer has.
    pub removed: usize,
    /// Anchors in force from this bundle now.
    pub count: usize,
}

impl Store {
    /// Adds a bundle, or updates the definition of the one with this name
    /// (its refresh status and anchors stay until the next refresh).
    /// Returns whether it was created.
    pub async fn put_bundle(&self, def: &BundleDefinition) -> Result<bool> {
        let w = WriteTx::begin(self).await?;
        let exists = bundle::Entity::find_by_id(def.name.as_str())
            .select_only()
            .column(bundle::Column::Name)
            .into_tuple::<String>()
            .one(w.conn())
            .await?
            .is_some();
        let refresh = to_i64("bundle refresh seconds", def.refresh.as_secs())?;
        if exists {
            let update = Query::update()
                .table(bundle::Entity)
                .value(bundle::Column::SourceKind, def.source.kind())
                .value(bundle::Column::Source, def.source.location())
                .value(bundle::Column::Signer, def.signer.clone())
                .value(bundle::Column::RefreshSeconds, refresh)
                .value(bundle::Column::Origin, def.origin.as_str())
                .and_where(Expr::col(bundle::Column::Name).eq(def.name.as_str()))
                .to_owned();
            w.conn().execute(&update).await?;
        } else {
            let insert = Query::insert()
                .into_table(bundle::Entity)
                .columns([
                    bundle::Column::Name,
                    bundle::Column::SourceKind,
                    bundle::Column::Source,
                    bundle::Column::Signer,
                    bundle::Column::RefreshSeconds,
                    bundle::Column::Origin,
                    bundle::Column::CreatedAt,
                    bundle::Column::AnchorCount,
                ])
                .values_panic([
                    def.name.as_str().into(),
                    def.source.kind().into(),
                    def.source.location().into(),
                    def.signer.clone().into(),
                    refresh.into(),
                    def.origin.as_str().into(),
                    w.now().into(),
                    0i64.into(),
                ])
                .to_owned();
            w.conn().execute(&insert).await?;
        }
        w.commit().await?;
        Ok(!exists)
    }

    /// All bundles, by name.
    pub async fn list_bundles(&self) -> Result<Vec<TrustBundle>> {
        bundle::Entity::find()
            .order_by_asc(bundle::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(bundle_from_row)
            .collect()
    }

    /// The bundle with this name, if there is one.
    pub async fn get_bundle(&self, name: &BundleName) -> Result<Option<TrustBundle>> {
        bundle::Entity::find_by_id(name.as_str())
            .one(&self.db)
            .await?
            .map(bundle_from_row)
            .transpose()
    }

    /// Every anchor of every bundle, by fingerprint, then bundle.
    pub async fn list_bundle_anchors(&self) -> Result<Vec<(BundleName, TrustAnchor)>> {
        bundle_anchor::Entity::find()
            .order_by_asc(bundle_anchor::Column::Fingerprint)
            .order_by_asc(bundle_anchor::Column::Bundle)
            .all(&self.db)
            .await?
            .into_iter()
            .map(bundle_anchor_from_row)
            .collect()
    }

    /// Removes a bundle and its anchors in one transaction; returns the
    /// last change and how many anchors went. `None` when there was no such
    /// bundle.
    pub async fn delete_bundle(&self, name: &BundleName) -> Result<Option<(ChangeSeq, usize)>> {
        let mut w = WriteTx::begin(self).await?;
        let fingerprints = bundle_fingerprints(&w, name).await?;
        bundle_anchor::Entity::delete_many()
            .filter(bundle_anchor::Column::Bundle.eq(name.as_str()))
            .exec(w.conn())
            .await?;
        let deleted = bundle::Entity::delete_by_id(name.as_str())
            .exec(w.conn())
            .await?;
        if deleted.rows_affected == 0 {
            w.rollback().await?;
            return Ok(None);
        }
        let removed = fingerprints.len();
        for fp in fingerprints {
            w.change(ChangeKind::AnchorsChanged, fp);
        }
        Ok(Some((w.commit().await?, removed)))
    }

    /// Records a failed refresh attempt: the anchors and the time of the
    /// last success stay. `false` when there is no such bundle.
    pub async fn record_bundle_failure(
        &self,
        name: &BundleName,
        status: &RefreshStatus,
    ) -> Result<bool> {
        debug_assert_ne!(status.code, RefreshCode::Ok);
        let w = WriteTx::begin(self).await?;
        let update = Query::update()
            .table(bundle::Entity)
            .value(bundle::Column::LastCode, status.code.as_str())
            .value(bundle::Column::LastDetail, status.detail.clone())
            .value(bundle::Column::LastAttemptAt, ts(status.at))
            .and_where(Expr::col(bundle::Column::Name).eq(name.as_str()))
            .to_owned();
        let done = w.conn().execute(&update).await?.rows_affected() > 0;
        w.commit().await?;
        Ok(done)
    }

    /// A successful refresh: the bundle's anchors become exactly
    /// `certificates` (duplicates counted once; anchors it already had keep
    /// their `added_at`) and the status records the success, in one
    /// transaction. `None` when there is no such bundle (nothing written).
    pub async fn replace_bundle_anchors(
        &self,
        name: &BundleName,
        certificates: &[Certificate],
        status: &RefreshStatus,
    ) -> Result<Option<BundleApplied>> {
        let mut w = WriteTx::begin(self).await?;
        let found = bundle::Entity::find_by_id(name.as_str())
            .select_only()
            .column(bundle::Column::Name)
            .into_tuple::<String>()
            .one(w.conn())
            .await?
            .is_some();
        if !found {
            w.rollback().await?;
            return Ok(None);
        }
        let old = bundle_fingerprints(&w, name).await?;
        let mut new: BTreeMap<String, &Certificate> = BTreeMap::new();
        for c in certificates {
            new.entry(c.fingerprint.to_hex()).or_insert(c);
        }
        let removed: Vec<String> = old
            .difference(&new.keys().cloned().collect())
            .cloned()
            .collect();
        let added: Vec<&Certificate> = new
            .iter()
            .filter(|(fp, _)| !old.contains(*fp))
            .map(|(_, c)| *c)
            .collect();

        for chunk in removed.chunks(rows_per_insert(1)) {
            bundle_anchor::Entity::delete_many()
                .filter(bundle_anchor::Column::Bundle.eq(name.as_str()))
                .filter(bundle_anchor::Column::Fingerprint.is_in(chunk.iter().cloned()))
                .exec(w.conn())
                .await?;
        }
        for chunk in added.chunks(rows_per_insert(BUNDLE_ANCHOR_COLUMNS.len())) {
            let mut insert = Query::insert();
            insert
                .into_table(bundle_anchor::Entity)
                .columns(BUNDLE_ANCHOR_COLUMNS);
            for c in chunk {
                insert.values_panic(bundle_anchor_values(name, c, status.at));
            }
            w.conn().execute(&insert).await?;
        }
        let count = new.len();
        let update = Query::update()
            .table(bundle::Entity)
            .value(bundle::Column::LastCode, RefreshCode::Ok.as_str())
            .value(bundle::Column::LastDetail, status.detail.clone())
            .value(bundle::Column::LastAttemptAt, ts(status.at))
            .value(bundle::Column::LastSuccessAt, ts(status.at))
            .value(bundle::Column::AnchorCount, count as i64)
            .and_where(Expr::col(bundle::Column::Name).eq(name.as_str()))
            .to_owned();
        w.conn().execute(&update).await?;
        for fp in removed
            .iter()
            .cloned()
            .chain(added.iter().map(|c| c.fingerprint.to_hex()))
        {
            w.change(ChangeKind::AnchorsChanged, fp);
        }
        let seq = w.commit().await?;
        Ok(Some(BundleApplied {
            seq,
            added: added.len(),
            removed: removed.len(),
            count,
        }))
    }
}

/// The fingerprints of a bundle's anchors, inside a write.
async fn bundle_fingerprints(w: &WriteTx<'_>, name: &BundleName) -> Result<BTreeSet<String>> {
    let rows: Vec<String> = bundle_anchor::Entity::find()
        .select_only()
        .column(bundle_anchor::Column::Fingerprint)
        .filter(bundle_anchor::Column::Bundle.eq(name.as_str()))
        .into_tuple()
        .all(w.conn())
        .await?;
    Ok(rows.into_iter().collect())
}
