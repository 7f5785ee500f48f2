//! The node's identity: an Ed25519 key. Its public key, in lower-case hex, is
//! the node's [`NodeId`]; it signs federation records and API tokens.
//!
//! On disk the key is PKCS#8 PEM in a file created with mode 0600 (the mode is
//! given at creation, so the key is never readable by others even briefly).
//! An existing file is never overwritten: replacing a node's identity must be
//! a deliberate act (delete the file first).

use std::fs;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::PkiError;
use crate::domain::NodeId;

/// The node's Ed25519 signing key.
pub struct NodeKey {
    signing: SigningKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeKey({})", self.node_id())
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

impl NodeKey {
    /// A fresh key from `rng`.
    pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        NodeKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Reads a PKCS#8 PEM (`PRIVATE KEY`) Ed25519 key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, PkiError> {
        SigningKey::from_pkcs8_pem(pem)
            .map(|signing| NodeKey { signing })
            .map_err(|e| PkiError::InvalidKey {
                reason: format!("not a PKCS#8 Ed25519 private key ({e})"),
            })
    }

    /// The key as PKCS#8 PEM (RFC 8410 form, as OpenSSL writes it).
    pub fn to_pkcs8_pem(&self) -> Result<String, PkiError> {
        Ok(ed25519_pkcs8_pem(&self.signing))
    }

    /// The key as PKCS#8 DER (what JWT signing wants).
    pub(crate) fn pkcs8_der(&self) -> Result<Vec<u8>, PkiError> {
        Ok(ed25519_pkcs8_der(&self.signing))
    }

    /// Writes the key to a new file at `path` with mode 0600. Refuses to
    /// overwrite an existing file.
    pub fn save_pem(&self, path: &Path) -> Result<(), PkiError> {
        let pem = self.to_pkcs8_pem()?;
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io_err(path))?;
        file.write_all(pem.as_bytes()).map_err(io_err(path))?;
        file.sync_all().map_err(io_err(path))?;
        Ok(())
    }

    /// Reads the key written by [`NodeKey::save_pem`]. Does not refuse a file
    /// others can read; callers should check [`permissions_too_open`] and warn.
    pub fn load_pem(path: &Path) -> Result<Self, PkiError> {
        let pem = fs::read_to_string(path).map_err(io_err(path))?;
        Self::from_pkcs8_pem(&pem)
    }

    /// The node's identity: lower-case hex of the public key.
    pub fn node_id(&self) -> NodeId {
        NodeId(hex::encode(self.public_key_bytes()))
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key_bytes(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Signs `msg` (pure Ed25519, RFC 8032).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }
}

/// PKCS#8 v1 (RFC 8410 §7) of an Ed25519 key: version 0, no public key.
///
/// ed25519-dalek writes v2 (OneAsymmetricKey with the public key), which
/// OpenSSL 3.0 cannot read; v1 is what `openssl genpkey` writes and every
/// reader (dalek included) accepts.
pub(crate) fn ed25519_pkcs8_der(key: &SigningKey) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = Vec::with_capacity(48);
    der.extend_from_slice(&PREFIX);
    der.extend_from_slice(key.as_bytes());
    der
}

/// [`ed25519_pkcs8_der`] as PEM.
pub(crate) fn ed25519_pkcs8_pem(key: &SigningKey) -> String {
    super::to_pem("PRIVATE KEY", &[ed25519_pkcs8_der(key)])
}

/// True when a key file may be read or written by its group or others
/// (any of the 0o077 bits). Always false where Unix modes do not exist, and
/// false when the file cannot be inspected (loading it will fail anyway).
pub fn permissions_too_open(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o077 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

thread_local! {
    /// The public key this thread verified with last, decoded. Records come
    /// in runs from one signer (a child's page), and decoding a key — a
    /// point decompression, a square root in the field — is a fifth of what
    /// a verification costs.
    static LAST_KEY: std::cell::RefCell<Option<VerifyingKey>> =
        const { std::cell::RefCell::new(None) };
}

/// `public` decoded, from [`LAST_KEY`] when it is the same key. Only keys
/// that decoded are remembered, so a malformed key is refused every time.
fn verifying_key(public: &[u8; 32]) -> Option<VerifyingKey> {
    LAST_KEY.with_borrow_mut(|last| {
        if let Some(k) = last.as_ref().filter(|k| k.as_bytes() == public) {
            return Some(*k);
        }
        let k = VerifyingKey::from_bytes(public).ok()?;
        *last = Some(k);
        Some(k)
    })
}

/// Verifies an Ed25519 signature strictly (RFC 8032 with the malleability and
/// small-order checks of `verify_strict`). `sig` must be 64 bytes.
pub fn verify_ed25519(public: &[u8; 32], msg: &[u8], sig: &[u8]) -> Result<(), PkiError> {
    let bad = |reason: &str| PkiError::BadSignature {
        reason: reason.to_owned(),
    };
    let key = verifying_key(public).ok_or_else(|| bad("malformed Ed25519 public key"))?;
    let sig = Signature::from_slice(sig).map_err(|_| bad("an Ed25519 signature is 64 bytes"))?;
    key.verify_strict(msg, &sig)
        .map_err(|_| bad("Ed25519 signature does not verify"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn key() -> NodeKey {
        NodeKey::generate(&mut ChaCha20Rng::seed_from_u64(7))
    }

    #[test]
    fn generation_is_deterministic_and_id_is_hex_of_public_key() {
        let a = key();
        let b = key();
        assert_eq!(a.public_key_bytes(), b.public_key_bytes());
        let id = a.node_id().0;
        assert_eq!(id.len(), 64);
        assert_eq!(id, hex::encode(a.public_key_bytes()));
        assert!(
            id.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
    }

    #[test]
    fn sign_verify_and_tamper() {
        let k = key();
        let sig = k.sign(b"record");
        verify_ed25519(&k.public_key_bytes(), b"record", &sig).unwrap();
        let err = verify_ed25519(&k.public_key_bytes(), b"recorD", &sig).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::BadSignature);
        let mut bad = sig;
        bad[10] ^= 1;
        assert!(verify_ed25519(&k.public_key_bytes(), b"record", &bad).is_err());
        assert!(verify_ed25519(&k.public_key_bytes(), b"record", &sig[..63]).is_err());
        let other = NodeKey::generate(&mut ChaCha20Rng::seed_from_u64(8));
        assert!(verify_ed25519(&other.public_key_bytes(), b"record", &sig).is_err());
    }

    #[test]
    fn the_remembered_key_never_answers_for_another() {
        let a = key();
        let b = NodeKey::generate(&mut ChaCha20Rng::seed_from_u64(8));
        let (sa, sb) = (a.sign(b"m"), b.sign(b"m"));
        // Alternate keys so each check follows one made with the other.
        for _ in 0..3 {
            verify_ed25519(&a.public_key_bytes(), b"m", &sa).unwrap();
            assert!(verify_ed25519(&a.public_key_bytes(), b"m", &sb).is_err());
            verify_ed25519(&b.public_key_bytes(), b"m", &sb).unwrap();
            assert!(verify_ed25519(&b.public_key_bytes(), b"m", &sa).is_err());
        }
        // A key that is no point is refused, also right after a good one
        // and again after that.
        let junk = (2u8..)
            .map(|y| {
                let mut b = [0u8; 32];
                b[0] = y;
                b
            })
            .find(|b| VerifyingKey::from_bytes(b).is_err())
            .expect("about half of all y have no x on the curve");
        for _ in 0..2 {
            verify_ed25519(&a.public_key_bytes(), b"m", &sa).unwrap();
            let err = verify_ed25519(&junk, b"m", &sa).unwrap_err();
            assert!(err.to_string().contains("malformed"), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn saved_file_is_0600_round_trips_and_is_not_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let k = key();
        k.save_pem(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!permissions_too_open(&path));
        let back = NodeKey::load_pem(&path).unwrap();
        assert_eq!(back.node_id(), k.node_id());
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));

        let err = key().save_pem(&path).unwrap_err();
        assert!(matches!(err, PkiError::Io { .. }), "{err}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(permissions_too_open(&path));
        assert!(NodeKey::load_pem(&path).is_ok());
    }

    #[test]
    fn pkcs8_is_the_rfc8410_v1_form_and_round_trips() {
        let k = key();
        let der = k.pkcs8_der().unwrap();
        assert_eq!(der.len(), 48);
        assert_eq!(&der[..5], &[0x30, 0x2e, 0x02, 0x01, 0x00], "version 0");
        assert_eq!(&der[16..], k.signing.as_bytes());
        let back = NodeKey::from_pkcs8_pem(&k.to_pkcs8_pem().unwrap()).unwrap();
        assert_eq!(back.public_key_bytes(), k.public_key_bytes());
    }

    #[test]
    fn garbage_key_files_are_errors() {
        assert!(NodeKey::from_pkcs8_pem("").is_err());
        assert!(
            NodeKey::from_pkcs8_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            )
            .is_err()
        );
        let dir = tempfile::tempdir().unwrap();
        assert!(NodeKey::load_pem(&dir.path().join("missing")).is_err());
    }
}
