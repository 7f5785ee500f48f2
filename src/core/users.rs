//! Users of organisations: managed by node admins and by the organisation's
//! own admins; verified when they bind (over LDAP) with their password.
//! Passwords are kept only as argon2id PHC strings.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use super::{CoreError, Directory, Result};
use crate::domain::{Caller, OrgId, User, UserName, check_password};

/// Hashes `password` with argon2id and a random salt (runs for tens of
/// milliseconds: call it off the async threads).
fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| CoreError::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC string `hash`.
fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash no password is checked against in earnest: verifying against it
/// when the user does not exist makes that answer take as long as a wrong
/// password, so timing does not tell which users exist.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").unwrap_or_default())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CoreError::Internal(format!("password task: {e}")))
}

impl Directory {
    /// Node admins manage every organisation's users; an org admin its own.
    fn check_user_admin(&self, caller: &Caller, org: &OrgId) -> Result<()> {
        match caller {
            Caller::NodeAdmin { .. } => Ok(()),
            Caller::OrgAdmin { org: own, .. } if own == org => Ok(()),
            Caller::Anonymous => Err(CoreError::Unauthenticated(
                "managing users needs a bearer token".into(),
            )),
            _ => Err(CoreError::Forbidden(format!(
                "this token may not manage the users of organisation {org}"
            ))),
        }
    }

    fn require_organisation(&self, org: &OrgId) -> Result<()> {
        self.organisation(org)
            .map(|_| ())
            .ok_or_else(|| CoreError::NotFound(format!("organisation {org}")))
    }

    /// Creates a user or sets a new password. Returns the user and whether it is new.
    pub async fn put_user(
        &self,
        caller: &Caller,
        org: &OrgId,
        name: &UserName,
        password: &str,
    ) -> Result<(User, bool)> {
        self.check_user_admin(caller, org)?;
        self.require_organisation(org)?;
        check_password(password)?;
        let password = password.to_owned();
        let hash = blocking(move || hash_password(&password)).await??;
        let created = self
            .inner
            .store
            .put_user(org, name, &hash, self.now())
            .await?;
        let user = self
            .inner
            .store
            .list_users(org)
            .await?
            .into_iter()
            .find(|u| &u.name == name)
            .ok_or_else(|| CoreError::Internal(format!("user {name} vanished after writing it")))?;
        Ok((user, created))
    }

    /// Removes a user.
    pub async fn remove_user(&self, caller: &Caller, org: &OrgId, name: &UserName) -> Result<()> {
        self.check_user_admin(caller, org)?;
        if self.inner.store.delete_user(org, name).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound(format!("user {name} of {org}")))
        }
    }

    /// The users of an organisation.
    pub async fn list_users(&self, caller: &Caller, org: &OrgId) -> Result<Vec<User>> {
        self.check_user_admin(caller, org)?;
        self.require_organisation(org)?;
        Ok(self.inner.store.list_users(org).await?)
    }

    /// Checks a user's password: the caller they become
    /// ([`Caller::OrgMember`]) or [`CoreError::Unauthenticated`], the same
    /// answer (and about the same time) for an unknown user as for a wrong
    /// password.
    pub async fn verify_user(&self, org: &OrgId, name: &str, password: &str) -> Result<Caller> {
        let refused = || CoreError::Unauthenticated("invalid credentials".into());
        let stored = match name.parse::<UserName>() {
            Ok(user) => self.inner.store.user_password_hash(org, &user).await?,
            Err(_) => None,
        };
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| decoy_hash().to_owned());
        let password = password.to_owned();
        let matches = blocking(move || password_matches(&password, &hash)).await?;
        if known && matches {
            Ok(Caller::OrgMember {
                subject: format!("{}@{org}", name.to_ascii_lowercase()),
                org: org.clone(),
            })
        } else {
            Err(refused())
        }
    }
}
