//! A self-check of the invariants the rest of the module maintains; run by
//! the test battery after every test, and useful to an operator after
//! restoring a backup or writing to the database by hand.

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use super::entity::{bundle, bundle_anchor, certificate, change, entry, organisation};
use super::{StorageError, Store};
use crate::domain::ChangeKind;

impl Store {
    /// Checks the invariants and returns what is wrong, one line per kind
    /// of problem; empty when all is well.
    ///
    /// * every certificate belongs to an existing entry;
    /// * every entry's organisation exists;
    /// * every bundle anchor's bundle exists, and each bundle's anchor count
    ///   is the number of its anchors;
    /// * no entry's `change_seq` and no change is beyond the head;
    /// * every entry's `change_seq` is an `entry-upserted` change of its key
    ///   (changes are never pruned, so this holds).
    pub async fn check_consistency(&self) -> Result<Vec<String>, StorageError> {
        let mut problems = Vec::new();
        let head = self.head_seq().await?.0 as i64;
        let tx = self.begin_read().await?;

        let orphans = certificate::Entity::find()
            .filter(
                certificate::Column::EntryId.not_in_subquery(
                    Query::select()
                        .column(entry::Column::Id)
                        .from(entry::Entity)
                        .to_owned(),
                ),
            )
            .count(&tx)
            .await?;
        if orphans > 0 {
            problems.push(format!("{orphans} certificates without an entry"));
        }

        let homeless = entry::Entity::find()
            .filter(entry::Column::OrganisationId.is_not_null())
            .filter(
                entry::Column::OrganisationId.not_in_subquery(
                    Query::select()
                        .column(organisation::Column::Id)
                        .from(organisation::Entity)
                        .to_owned(),
                ),
            )
            .count(&tx)
            .await?;
        if homeless > 0 {
            problems.push(format!("{homeless} entries of a missing organisation"));
        }

        let stray = bundle_anchor::Entity::find()
            .filter(
                bundle_anchor::Column::Bundle.not_in_subquery(
                    Query::select()
                        .column(bundle::Column::Name)
                        .from(bundle::Entity)
                        .to_owned(),
                ),
            )
            .count(&tx)
            .await?;
        if stray > 0 {
            problems.push(format!("{stray} bundle anchors without a bundle"));
        }
        for b in bundle::Entity::find().all(&tx).await? {
            let n = bundle_anchor::Entity::find()
                .filter(bundle_anchor::Column::Bundle.eq(b.name.as_str()))
                .count(&tx)
                .await?;
            if n as i64 != b.anchor_count {
                problems.push(format!(
                    "bundle {} counts {} anchors but has {n}",
                    b.name, b.anchor_count
                ));
            }
        }

        let ahead = entry::Entity::find()
            .filter(entry::Column::ChangeSeq.gt(head))
            .count(&tx)
            .await?;
        if ahead > 0 {
            problems.push(format!(
                "{ahead} entries with change_seq beyond head {head}"
            ));
        }

        let future = change::Entity::find()
            .filter(change::Column::Seq.gt(head))
            .count(&tx)
            .await?;
        if future > 0 {
            problems.push(format!("{future} changes beyond head {head}"));
        }

        let unrecorded = entry::Entity::find()
            .filter(
                Expr::exists(
                    Query::select()
                        .expr(Expr::val(1))
                        .from(change::Entity)
                        .and_where(
                            Expr::col((change::Entity, change::Column::Seq))
                                .equals((entry::Entity, entry::Column::ChangeSeq)),
                        )
                        .and_where(
                            Expr::col((change::Entity, change::Column::Key))
                                .equals((entry::Entity, entry::Column::Key)),
                        )
                        .and_where(
                            Expr::col((change::Entity, change::Column::Kind))
                                .eq(ChangeKind::EntryUpserted.as_str()),
                        )
                        .to_owned(),
                )
                .not(),
            )
            .count(&tx)
            .await?;
        if unrecorded > 0 {
            problems.push(format!(
                "{unrecorded} entries whose change_seq is not an entry-upserted change of theirs"
            ));
        }

        tx.commit().await?;
        Ok(problems)
    }
}
