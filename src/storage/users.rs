//! Users of organisations and their password hashes.
//!
//! Users change nothing a reader of the directory sees, so their writes do
//! not enter the change sequence.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::convert::ts;
use super::entity::user;
use super::{StorageError, Store};
use crate::domain::{OrgId, User, UserName};

type Result<T> = std::result::Result<T, StorageError>;

fn user_from_row(m: user::Model) -> Result<User> {
    Ok(User {
        organisation: m
            .organisation_id
            .parse()
            .map_err(|e| StorageError::corrupt("user organisation", e))?,
        name: m
            .name
            .parse()
            .map_err(|e| StorageError::corrupt("user name", e))?,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

impl Store {
    /// Creates a user or replaces its password hash. Returns whether the
    /// user is new. The organisation must exist ([`StorageError::Constraint`]
    /// otherwise).
    pub async fn put_user(
        &self,
        org: &OrgId,
        name: &UserName,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let existed = self.user_password_hash(org, name).await?.is_some();
        let now = ts(now);
        let insert = Query::insert()
            .into_table(user::Entity)
            .columns([
                user::Column::OrganisationId,
                user::Column::Name,
                user::Column::PasswordHash,
                user::Column::CreatedAt,
                user::Column::UpdatedAt,
            ])
            .values_panic([
                org.as_str().into(),
                name.as_str().into(),
                password_hash.into(),
                now.into(),
                now.into(),
            ])
            .on_conflict(
                OnConflict::columns([user::Column::OrganisationId, user::Column::Name])
                    .update_columns([user::Column::PasswordHash, user::Column::UpdatedAt])
                    .to_owned(),
            )
            .to_owned();
        self.db.execute(&insert).await?;
        Ok(!existed)
    }

    /// Removes a user; false when there was none.
    pub async fn delete_user(&self, org: &OrgId, name: &UserName) -> Result<bool> {
        let deleted =
            user::Entity::delete_by_id((org.as_str().to_owned(), name.as_str().to_owned()))
                .exec(&self.db)
                .await?;
        Ok(deleted.rows_affected > 0)
    }

    /// The users of an organisation, by name.
    pub async fn list_users(&self, org: &OrgId) -> Result<Vec<User>> {
        user::Entity::find()
            .filter(user::Column::OrganisationId.eq(org.as_str()))
            .order_by_asc(user::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(user_from_row)
            .collect()
    }

    /// The stored password hash of a user, if the user exists.
    pub async fn user_password_hash(&self, org: &OrgId, name: &UserName) -> Result<Option<String>> {
        Ok(
            user::Entity::find_by_id((org.as_str().to_owned(), name.as_str().to_owned()))
                .one(&self.db)
                .await?
                .map(|m| m.password_hash),
        )
    }
}
