//! Certificates attached to entries: turning uploaded bytes into bound,
//! judged certificates, and the per-entry certificate operations.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};

use super::{CoreError, Directory, Result};
use crate::domain::{
    Caller, ChangeSeq, DirectoryAddress, EntryCertificate, Fingerprint, TrustVerdict,
};
use crate::pki::{self, TrustStore};

/// Bytes of certificate material from text: PEM stays as it is, anything
/// else is taken for base64 of DER or of a certs-only PKCS#7.
pub(crate) fn decode_material(text: &str) -> Result<Vec<u8>> {
    if text.contains("-----BEGIN") {
        return Ok(text.as_bytes().to_vec());
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(compact).map_err(|_| {
        CoreError::InvalidInput("a certificate must be PEM or base64 of DER / PKCS#7".into())
    })
}

/// Prepares the certificates carried by `blobs` (each PEM, DER or PKCS#7)
/// for `address`: every end-entity certificate must bind the address and is
/// judged against `trust`; CA certificates that come along become the chain.
pub(crate) fn prepare(
    trust: &TrustStore,
    address: &DirectoryAddress,
    blobs: &[Vec<u8>],
    now: DateTime<Utc>,
) -> Result<Vec<EntryCertificate>> {
    let mut leaves = Vec::new();
    let mut cas = Vec::new();
    for blob in blobs {
        for cert in pki::parse_certificates(blob)? {
            if cert.is_ca {
                cas.push(cert);
            } else {
                leaves.push(cert);
            }
        }
    }
    if leaves.is_empty() {
        return Err(CoreError::InvalidInput(
            "no end-entity certificate found (only CA certificates, which belong under trust anchors)".into(),
        ));
    }
    leaves.sort_by_key(|c| c.fingerprint);
    leaves.dedup_by_key(|c| c.fingerprint);
    let chain: Vec<Vec<u8>> = cas.iter().map(|c| c.der.clone()).collect();
    leaves
        .into_iter()
        .map(|leaf| {
            let binding = pki::bind(&leaf, address)?;
            let trust: TrustVerdict = trust.evaluate(&leaf, &cas, now);
            Ok(EntryCertificate {
                certificate: leaf,
                binding,
                trust,
                chain: chain.clone(),
            })
        })
        .collect()
}

impl Directory {
    /// The certificates of an entry the caller can see, with trust as of now.
    pub async fn certificates(
        &self,
        caller: &Caller,
        address: &DirectoryAddress,
    ) -> Result<Vec<EntryCertificate>> {
        Ok(self
            .get_entry(caller, address)
            .await?
            .record
            .certificates
            .clone())
    }

    /// Attaches the certificates in `material` (PEM, DER or .p7b) to an entry.
    pub async fn add_certificates(
        &self,
        caller: &Caller,
        address: &DirectoryAddress,
        material: &[u8],
    ) -> Result<(Vec<EntryCertificate>, ChangeSeq)> {
        let existing = self.writable_entry(caller, address).await?;
        let prepared = prepare(
            &self.trust_store(),
            &existing.entry.address,
            &[material.to_vec()],
            self.now(),
        )?;
        let mut seq = ChangeSeq(0);
        for cert in &prepared {
            seq = self.inner.store.add_certificate(address, cert).await?;
        }
        self.written(seq);
        Ok((prepared, seq))
    }

    /// Detaches one certificate from an entry.
    pub async fn remove_certificate(
        &self,
        caller: &Caller,
        address: &DirectoryAddress,
        fingerprint: &Fingerprint,
    ) -> Result<ChangeSeq> {
        self.writable_entry(caller, address).await?;
        let seq = self
            .inner
            .store
            .remove_certificate(address, fingerprint)
            .await?
            .ok_or_else(|| {
                CoreError::NotFound(format!("certificate {fingerprint} on {address}"))
            })?;
        self.written(seq);
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_forms() {
        assert_eq!(decode_material("QUJD").unwrap(), b"ABC");
        assert_eq!(decode_material("QU\nJD ").unwrap(), b"ABC");
        assert!(
            decode_material("-----BEGIN CERTIFICATE-----\nx")
                .unwrap()
                .starts_with(b"-----")
        );
        assert!(decode_material("not base64!").is_err());
    }
}
