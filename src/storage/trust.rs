//! Recording trust re-evaluations.
//!
//! After the anchors change, the caller walks all certificates with
//! [`Store::scan_certificates`], judges each, and hands the verdicts back
//! page by page. Only a change of *status* is news to readers (a new reason
//! or evaluation time alone is stored but not announced).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use super::convert::ts;
use super::entity::{certificate, entry};
use super::seq::{WriteTx, rows_per_insert};
use super::{StorageError, Store};
use crate::domain::{ChangeKind, ChangeSeq, Fingerprint, TrustVerdict};

type Result<T> = std::result::Result<T, StorageError>;

/// A certificate's stored verdict, as read before the update.
struct Stored {
    id: i64,
    status: String,
    reason: String,
    evaluated_at: DateTime<Utc>,
}

impl Store {
    /// Stores new verdicts for certificates, given as (entry key,
    /// fingerprint, verdict), in one transaction. Emits
    /// [`ChangeKind::EntryUpserted`] once for each entry where the status
    /// of at least one certificate changed, and sets that entry's
    /// `change_seq`; the entry's version stays (trust is this node's view,
    /// not the origin's data). Certificates no longer attached are skipped.
    /// Returns the last change, or the current head if nothing changed.
    pub async fn update_trust(
        &self,
        verdicts: &[(String, Fingerprint, TrustVerdict)],
    ) -> Result<ChangeSeq> {
        let mut w = WriteTx::begin(self).await?;

        let mut keys: Vec<String> = verdicts
            .iter()
            .map(|(k, _, _)| k.to_ascii_lowercase())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut entry_ids: HashMap<String, i64> = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(rows_per_insert(1)) {
            let rows: Vec<(i64, String)> = entry::Entity::find()
                .select_only()
                .columns([entry::Column::Id, entry::Column::Key])
                .filter(entry::Column::Key.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(w.conn())
                .await?;
            entry_ids.extend(rows.into_iter().map(|(id, key)| (key, id)));
        }

        let ids: Vec<i64> = entry_ids.values().copied().collect();
        let mut stored: HashMap<(i64, String), Stored> = HashMap::new();
        for chunk in ids.chunks(rows_per_insert(1)) {
            let rows: Vec<(i64, i64, String, String, String, DateTime<Utc>)> =
                certificate::Entity::find()
                    .select_only()
                    .columns([
                        certificate::Column::Id,
                        certificate::Column::EntryId,
                        certificate::Column::Fingerprint,
                        certificate::Column::TrustStatus,
                        certificate::Column::TrustReason,
                        certificate::Column::TrustEvaluatedAt,
                    ])
                    .filter(certificate::Column::EntryId.is_in(chunk.iter().copied()))
                    .into_tuple()
                    .all(w.conn())
                    .await?;
            for (id, entry_id, fp, status, reason, evaluated_at) in rows {
                stored.insert(
                    (entry_id, fp),
                    Stored {
                        id,
                        status,
                        reason,
                        evaluated_at,
                    },
                );
            }
        }

        let mut changed: Vec<(i64, String)> = Vec::new();
        let mut seen: HashSet<i64> = HashSet::new();
        for (key, fp, verdict) in verdicts {
            let key = key.to_ascii_lowercase();
            let Some(&entry_id) = entry_ids.get(&key) else {
                continue;
            };
            let Some(s) = stored.get_mut(&(entry_id, fp.to_hex())) else {
                continue;
            };
            let status = verdict.status.as_str();
            let evaluated_at = ts(verdict.evaluated_at);
            if s.status == status && s.reason == verdict.reason && s.evaluated_at == evaluated_at {
                continue;
            }
            let update = Query::update()
                .table(certificate::Entity)
                .value(certificate::Column::TrustStatus, status)
                .value(certificate::Column::TrustReason, verdict.reason.clone())
                .value(certificate::Column::TrustEvaluatedAt, evaluated_at)
                .and_where(Expr::col(certificate::Column::Id).eq(s.id))
                .to_owned();
            w.conn().execute(&update).await?;
            if s.status != status && seen.insert(entry_id) {
                changed.push((entry_id, key));
            }
            s.status = status.to_owned();
            s.reason.clone_from(&verdict.reason);
            s.evaluated_at = evaluated_at;
        }

        for (entry_id, key) in changed {
            let seq = w.change(ChangeKind::EntryUpserted, key);
            let update = Query::update()
                .table(entry::Entity)
                .value(entry::Column::ChangeSeq, seq)
                .and_where(Expr::col(entry::Column::Id).eq(entry_id))
                .to_owned();
            w.conn().execute(&update).await?;
        }
        w.commit().await
    }
}
