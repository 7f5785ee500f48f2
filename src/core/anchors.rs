//! Trust anchors, and keeping every certificate's trust status in step
//! with them.

use std::sync::Arc;

use tracing::{info, warn};

use super::{CoreError, Directory, Result};
use crate::domain::{Caller, ChangeSeq, Fingerprint, TrustAnchor};
use crate::pki::{self, TrustStore};

/// Certificates re-judged per transaction.
const REEVALUATE_PAGE: u64 = 1000;

impl Directory {
    /// Every anchor in force: those added by hand, then those of trust
    /// bundles (`source` `bundle:<name>`; one CA in several bundles is
    /// listed once per bundle).
    pub async fn list_anchors(&self) -> Result<Vec<TrustAnchor>> {
        let mut all = self.inner.store.list_anchors().await?;
        all.extend(
            self.inner
                .store
                .list_bundle_anchors()
                .await?
                .into_iter()
                .map(|(_, a)| a),
        );
        Ok(all)
    }

    /// The anchor with this fingerprint: the one added by hand, else the
    /// first bundle's.
    pub async fn get_anchor(&self, fingerprint: &Fingerprint) -> Result<TrustAnchor> {
        if let Some(a) = self.inner.store.get_anchor(fingerprint).await? {
            return Ok(a);
        }
        self.bundle_anchor(fingerprint)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("trust anchor {fingerprint}")))
    }

    async fn bundle_anchor(&self, fingerprint: &Fingerprint) -> Result<Option<TrustAnchor>> {
        Ok(self
            .inner
            .store
            .list_bundle_anchors()
            .await?
            .into_iter()
            .map(|(_, a)| a)
            .find(|a| a.certificate.fingerprint == *fingerprint))
    }

    /// Adds the certificates in `material` (PEM, DER or .p7b bundle) as
    /// trust anchors, then re-judges every certificate in the background.
    pub async fn add_anchors(
        &self,
        caller: &Caller,
        material: &[u8],
        source: &str,
    ) -> Result<Vec<TrustAnchor>> {
        self.require_node_admin(caller, "changing trust anchors")?;
        let certs = pki::parse_certificates(material)?;
        let now = self.now();
        let mut added = Vec::new();
        let mut seq = ChangeSeq(0);
        for certificate in certs {
            let anchor = TrustAnchor {
                certificate,
                source: source.to_owned(),
                added_at: now,
            };
            seq = self.inner.store.put_anchor(&anchor).await?;
            added.push(anchor);
        }
        self.written(seq);
        self.anchors_changed().await?;
        Ok(added)
    }

    pub async fn delete_anchor(
        &self,
        caller: &Caller,
        fingerprint: &Fingerprint,
    ) -> Result<ChangeSeq> {
        self.require_node_admin(caller, "changing trust anchors")?;
        let Some(seq) = self.inner.store.delete_anchor(fingerprint).await? else {
            return Err(match self.bundle_anchor(fingerprint).await? {
                Some(a) => CoreError::Conflict(format!(
                    "trust anchor {fingerprint} comes from {}; remove or change the bundle instead",
                    a.source
                )),
                None => CoreError::NotFound(format!("trust anchor {fingerprint}")),
            });
        };
        self.written(seq);
        self.anchors_changed().await?;
        Ok(seq)
    }

    pub(crate) async fn reload_trust_store(&self) -> Result<Arc<TrustStore>> {
        // Hand-made and bundle anchors alike; the store drops duplicates.
        let certs: Vec<_> = self
            .list_anchors()
            .await?
            .into_iter()
            .map(|a| a.certificate)
            .collect();
        let store = Arc::new(TrustStore::new(&certs));
        *self.inner.trust.write().expect("trust lock") = store.clone();
        Ok(store)
    }

    /// Rebuilds the trust store and re-judges all certificates in the background.
    pub(super) async fn anchors_changed(&self) -> Result<()> {
        self.reload_trust_store().await?;
        let this = self.clone();
        tokio::spawn(async move {
            match this.reevaluate_all().await {
                Ok(changed) => info!(
                    changed,
                    "certificate trust re-evaluated after an anchor change"
                ),
                Err(e) => warn!(error = %e, "certificate trust re-evaluation failed"),
            }
            this.inner.trust_generation.send_modify(|g| *g += 1);
        });
        Ok(())
    }

    /// Re-judges every stored certificate against the current anchors and
    /// stores the verdicts that changed. Returns how many changed.
    pub async fn reevaluate_all(&self) -> Result<usize> {
        let trust = self.trust_store();
        let now = self.now();
        let mut cursor = 0;
        let mut changed = 0;
        loop {
            let (page, next) = self
                .inner
                .store
                .scan_certificates(cursor, REEVALUATE_PAGE)
                .await?;
            let mut updates = Vec::new();
            for (key, cert) in page {
                let chain: Vec<_> = cert
                    .chain
                    .iter()
                    .filter_map(|der| pki::parse_certificate_der(der).ok())
                    .collect();
                let verdict = trust.evaluate(&cert.certificate, &chain, now);
                if verdict.status != cert.trust.status || verdict.reason != cert.trust.reason {
                    updates.push((key, cert.certificate.fingerprint, verdict));
                }
            }
            if !updates.is_empty() {
                changed += updates.len();
                let seq = self.inner.store.update_trust(&updates).await?;
                self.written(seq);
            }
            match next {
                Some(n) => cursor = n,
                None => return Ok(changed),
            }
        }
    }

    /// Waits for the next background trust re-evaluation to finish, if one
    /// was started after `since` (a value of [`Directory::trust_generation`]).
    pub async fn wait_trust_generation(&self, since: u64) {
        let mut rx = self.inner.trust_generation.subscribe();
        let _ = rx.wait_for(|g| *g > since).await;
    }

    pub fn trust_generation(&self) -> u64 {
        *self.inner.trust_generation.borrow()
    }
}
