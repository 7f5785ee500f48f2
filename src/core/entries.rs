//! Reading and writing directory entries.

use std::sync::Arc;

use super::certificates::{decode_material, prepare};
use super::{CoreError, Directory, Result};
use crate::domain::{Caller, ChangeSeq, DirectoryAddress, Entry, EntryInput, EntryRecord, OrgId};
use crate::storage::CertUpdate;

/// An entry as a caller sees it: trust statuses as of now, and the name of
/// its organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryView {
    pub record: std::sync::Arc<EntryRecord>,
    pub organisation_name: Option<String>,
    /// Where the entry came from, when another node published it.
    pub provenance: Option<super::Provenance>,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub struct PutOutcome {
    pub view: EntryView,
    pub created: bool,
    pub seq: ChangeSeq,
}

impl Directory {
    pub(crate) fn view(&self, record: EntryRecord) -> EntryView {
        self.shared_view(Arc::new(record))
    }

    /// [`Directory::view`] of a shared record: copied only when a
    /// certificate's trust changed with time since it was judged.
    pub(crate) fn shared_view(&self, mut record: Arc<EntryRecord>) -> EntryView {
        let now = self.now();
        let stale = record
            .certificates
            .iter()
            .any(|c| c.trust.changes_at(&c.certificate, now));
        if stale {
            for c in &mut Arc::make_mut(&mut record).certificates {
                c.trust = c.trust.at(&c.certificate, now);
            }
        }
        self.stored_view(record)
    }

    /// A view of a shared record whose certificates keep the trust verdicts
    /// they were last judged with, for answers that serve every certificate
    /// whatever its trust ([`Directory::query_entries`]): re-judging reads
    /// every certificate of every candidate, most of a search's memory
    /// traffic when the records are not in the CPU's caches.
    pub(crate) fn stored_view(&self, record: Arc<EntryRecord>) -> EntryView {
        let organisation_name = self.organisation_name(record.entry.organisation.as_ref());
        EntryView {
            record,
            organisation_name,
            provenance: None,
        }
    }

    /// One entry. Entries the caller may not see are "not found", so their
    /// existence does not leak.
    pub async fn get_entry(
        &self,
        caller: &Caller,
        address: &DirectoryAddress,
    ) -> Result<EntryView> {
        match self.inner.store.get_entry(address).await? {
            Some(record) if caller.can_see(&record.entry) => {
                let mut views = [self.view(record)];
                self.attach_provenance(&mut views).await?;
                let [view] = views;
                Ok(view)
            }
            _ => Err(CoreError::NotFound(format!("entry {address}"))),
        }
    }

    /// The entry at `address` if the caller may change it.
    pub(crate) async fn writable_entry(
        &self,
        caller: &Caller,
        address: &DirectoryAddress,
    ) -> Result<EntryRecord> {
        let record = self
            .inner
            .store
            .get_entry(address)
            .await?
            .filter(|r| caller.can_see(&r.entry))
            .ok_or_else(|| CoreError::NotFound(format!("entry {address}")))?;
        self.check_write(caller, record.entry.organisation.as_ref())?;
        Ok(record)
    }

    pub(crate) fn check_write(&self, caller: &Caller, org: Option<&OrgId>) -> Result<()> {
        if caller.can_write_entries_of(org) {
            return Ok(());
        }
        Err(match caller {
            Caller::Anonymous => CoreError::Unauthenticated("writing needs a bearer token".into()),
            _ => CoreError::Forbidden(match org {
                Some(o) => format!("this token may not write entries of organisation {o}"),
                None => "only a node admin may write entries without an organisation".into(),
            }),
        })
    }

    /// Checks the rules an entry must meet on this node beyond its own
    /// validity: its organisation exists and speaks for its domain.
    pub(crate) fn check_entry(&self, entry: &Entry) -> Result<()> {
        if let Some(org_id) = &entry.organisation {
            let org = self
                .organisation(org_id)
                .ok_or_else(|| CoreError::InvalidInput(format!("unknown organisation {org_id}")))?;
            if !org.covers(entry.address.domain()) {
                return Err(CoreError::InvalidInput(format!(
                    "{} is outside the domains of organisation {org_id} ({})",
                    entry.address.domain(),
                    org.domains
                        .iter()
                        .map(|d| d.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Creates or replaces the entry at `address`. Certificates given in the
    /// input replace the entry's certificates; none given keeps them.
    pub async fn put_entry(
        &self,
        caller: &Caller,
        address: &DirectoryAddress,
        input: EntryInput,
    ) -> Result<PutOutcome> {
        let existing = self.inner.store.get_entry(address).await?;
        if let Some(old) = &existing {
            // Moving an entry out of an organisation needs the right to write there too.
            if !caller.can_see(&old.entry) {
                return Err(CoreError::Forbidden(format!(
                    "{address} belongs to another organisation"
                )));
            }
            self.check_write(caller, old.entry.organisation.as_ref())?;
        }
        let blobs = input
            .certificates
            .iter()
            .map(|t| decode_material(t))
            .collect::<Result<Vec<_>>>()?;
        let entry = input.into_entry(address.clone(), self.inner.node_id.clone(), self.now())?;
        self.check_write(caller, entry.organisation.as_ref())?;
        self.check_entry(&entry)?;
        let certs = if blobs.is_empty() {
            CertUpdate::Keep
        } else {
            CertUpdate::Replace(prepare(&self.trust_store(), address, &blobs, self.now())?)
        };
        let stored = self.inner.store.put_entry(&entry, certs).await?;
        self.inner.metrics.entries_written.inc();
        self.written(stored.seq);
        let record =
            self.inner.store.get_entry(address).await?.ok_or_else(|| {
                CoreError::Internal(format!("{address} vanished after writing it"))
            })?;
        Ok(PutOutcome {
            view: self.view(record),
            created: stored.created,
            seq: stored.seq,
        })
    }

    /// Removes an entry and its certificates.
    pub async fn delete_entry(
        &self,
        caller: &Caller,
        address: &DirectoryAddress,
    ) -> Result<ChangeSeq> {
        self.writable_entry(caller, address).await?;
        let seq = self
            .inner
            .store
            .delete_entry(address)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("entry {address}")))?;
        self.written(seq);
        Ok(seq)
    }
}
