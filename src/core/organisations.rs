//! Organisations: listed by anyone, changed by node admins.

use super::{CoreError, Directory, Result};
use crate::domain::{Caller, ChangeSeq, OrgId, Organisation, OrganisationInput};

impl Directory {
    pub async fn list_organisations(&self) -> Result<Vec<Organisation>> {
        let mut all: Vec<Organisation> = self
            .inner
            .organisations
            .read()
            .expect("org lock")
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    pub async fn get_organisation(&self, id: &OrgId) -> Result<Organisation> {
        self.organisation(id)
            .ok_or_else(|| CoreError::NotFound(format!("organisation {id}")))
    }

    pub(crate) fn require_node_admin(&self, caller: &Caller, what: &str) -> Result<()> {
        match caller {
            Caller::NodeAdmin { .. } => Ok(()),
            Caller::Anonymous => Err(CoreError::Unauthenticated(format!(
                "{what} needs a bearer token"
            ))),
            _ => Err(CoreError::Forbidden(format!(
                "{what} needs a node-admin token"
            ))),
        }
    }

    /// Creates or replaces an organisation. Returns whether it was new.
    pub async fn put_organisation(
        &self,
        caller: &Caller,
        id: &OrgId,
        input: OrganisationInput,
    ) -> Result<(Organisation, bool)> {
        self.require_node_admin(caller, "changing organisations")?;
        let org = input.into_organisation(id.clone(), self.inner.node_id.clone(), self.now())?;
        let created = self.organisation(id).is_none();
        let seq = self.inner.store.put_organisation(&org).await?;
        self.inner
            .organisations
            .write()
            .expect("org lock")
            .insert(id.clone(), org.clone());
        self.written(seq);
        Ok((org, created))
    }

    /// Removes an organisation that no longer has entries.
    pub async fn delete_organisation(&self, caller: &Caller, id: &OrgId) -> Result<ChangeSeq> {
        self.require_node_admin(caller, "removing organisations")?;
        let seq = self
            .inner
            .store
            .delete_organisation(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("organisation {id}")))?;
        self.inner
            .organisations
            .write()
            .expect("org lock")
            .remove(id);
        self.written(seq);
        Ok(seq)
    }
}
