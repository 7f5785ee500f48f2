//! API tokens: JWTs signed by the node's Ed25519 key (JWS `alg` EdDSA).
//!
//! Only EdDSA is accepted: the algorithm is pinned, so an `HS256` token (the
//! classic "public key used as HMAC secret" attack) or an unsigned `none`
//! token is refused before any claim is read. Time checks use the `now` the
//! caller passes, not the system clock, with [`LEEWAY_SECS`] of slack for
//! clock skew between nodes.

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{NodeKey, PkiError};

/// Slack allowed on `exp` and `iat`, in seconds.
pub const LEEWAY_SECS: i64 = 30;

/// Longest token we look at.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// What a token lets its bearer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Administers the whole node.
    NodeAdmin,
    /// Administers the entries of one organisation (named in `org`).
    OrgAdmin,
}

/// The claims of an API token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token was issued to.
    pub sub: String,
    /// What the bearer may do.
    pub role: Role,
    /// The organisation an org-admin administers; required for [`Role::OrgAdmin`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The issuing node's id (hex of its public key).
    pub iss: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Unique token id, for revocation lists.
    pub jti: String,
}

fn bad(reason: impl Into<String>) -> PkiError {
    PkiError::BadToken {
        reason: reason.into(),
    }
}

fn check_shape(claims: &Claims) -> Result<(), String> {
    if claims.role == Role::OrgAdmin && claims.org.as_deref().is_none_or(str::is_empty) {
        return Err("an org-admin token must name its organisation (org)".into());
    }
    if claims.exp <= claims.iat {
        return Err("token expires before it is issued".into());
    }
    Ok(())
}

/// Signs `claims` with the node key. Refuses claims that [`verify`] would
/// refuse for their shape (org-admin without org, exp not after iat).
pub fn issue(key: &NodeKey, claims: &Claims) -> Result<String, PkiError> {
    check_shape(claims).map_err(|reason| PkiError::InvalidRequest { reason })?;
    let encoding = EncodingKey::from_ed_der(&key.pkcs8_der()?);
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &encoding)
        .map_err(PkiError::internal)
}

/// Checks a token's signature against the issuing node's public key, then
/// its claims as of `now`: not expired (with leeway), not issued in the
/// future (beyond leeway), issued by `expected_issuer`, and well-formed.
pub fn verify(
    token: &str,
    issuer_public: &[u8; 32],
    expected_issuer: &str,
    now: DateTime<Utc>,
) -> Result<Claims, PkiError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(bad("token is too long"));
    }
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| bad(format!("malformed token: {e}")))?;
    if header.alg != Algorithm::EdDSA {
        return Err(bad(format!(
            "algorithm {:?} is not accepted; tokens are EdDSA",
            header.alg
        )));
    }
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.algorithms = vec![Algorithm::EdDSA];
    validation.validate_exp = false; // checked below against `now`
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_ed_der(issuer_public),
        &validation,
    )
    .map_err(|e| match e.kind() {
        JwtErrorKind::InvalidSignature => bad("signature does not verify"),
        JwtErrorKind::InvalidAlgorithm => bad("algorithm is not accepted"),
        _ => bad(format!("malformed token: {e}")),
    })?;
    let claims = data.claims;
    let now = now.timestamp();
    if now > claims.exp.saturating_add(LEEWAY_SECS) {
        return Err(bad(format!("token expired at {}", claims.exp)));
    }
    if claims.iat > now.saturating_add(LEEWAY_SECS) {
        return Err(bad(format!(
            "token is issued in the future ({})",
            claims.iat
        )));
    }
    if claims.iss != expected_issuer {
        return Err(bad(format!(
            "token is issued by {}, not {expected_issuer}",
            claims.iss
        )));
    }
    check_shape(&claims).map_err(bad)?;
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const T0: i64 = 1_800_000_000;

    fn node(seed: u64) -> NodeKey {
        NodeKey::generate(&mut ChaCha20Rng::seed_from_u64(seed))
    }

    fn claims(key: &NodeKey) -> Claims {
        Claims {
            sub: "alice".into(),
            role: Role::OrgAdmin,
            org: Some("acme".into()),
            iss: key.node_id().0,
            iat: T0,
            exp: T0 + 3600,
            jti: "t-1".into(),
        }
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    fn reason(e: PkiError) -> String {
        assert_eq!(e.kind(), crate::error::ErrorKind::Unauthenticated, "{e}");
        e.to_string()
    }

    #[test]
    fn round_trip() {
        let k = node(1);
        let c = claims(&k);
        let t = issue(&k, &c).unwrap();
        let got = verify(&t, &k.public_key_bytes(), &k.node_id().0, at(T0 + 10)).unwrap();
        assert_eq!(got, c);
    }

    #[test]
    fn expiry_and_future_iat_use_the_given_clock_with_leeway() {
        let k = node(1);
        let c = claims(&k);
        let t = issue(&k, &c).unwrap();
        let id = k.node_id().0;
        let pk = k.public_key_bytes();
        assert!(verify(&t, &pk, &id, at(c.exp + LEEWAY_SECS - 1)).is_ok());
        assert!(
            reason(verify(&t, &pk, &id, at(c.exp + LEEWAY_SECS + 1)).unwrap_err())
                .contains("expired")
        );
        assert!(verify(&t, &pk, &id, at(T0 - LEEWAY_SECS + 1)).is_ok());
        assert!(
            reason(verify(&t, &pk, &id, at(T0 - LEEWAY_SECS - 1)).unwrap_err()).contains("future")
        );
    }

    #[test]
    fn wrong_key_wrong_issuer_and_tampering_are_refused() {
        let k = node(1);
        let t = issue(&k, &claims(&k)).unwrap();
        let id = k.node_id().0;
        let other = node(2);
        assert!(
            reason(verify(&t, &other.public_key_bytes(), &id, at(T0)).unwrap_err())
                .contains("signature")
        );
        assert!(
            reason(verify(&t, &k.public_key_bytes(), &other.node_id().0, at(T0)).unwrap_err())
                .contains("issued by")
        );

        // Change the payload but keep the signature.
        let parts: Vec<&str> = t.split('.').collect();
        let mut c = claims(&k);
        c.role = Role::NodeAdmin;
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert!(
            reason(verify(&forged, &k.public_key_bytes(), &id, at(T0)).unwrap_err())
                .contains("signature")
        );
        for junk in ["", "a.b", "a.b.c", "....", &"x".repeat(10_000)] {
            assert!(
                verify(junk, &k.public_key_bytes(), &id, at(T0)).is_err(),
                "{junk:.20}"
            );
        }
    }

    #[test]
    fn hs256_and_none_are_refused() {
        let k = node(1);
        let pk = k.public_key_bytes();
        let id = k.node_id().0;
        // HS256 keyed with the public key: the algorithm-confusion attack.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(&k),
            &EncodingKey::from_secret(&pk),
        )
        .unwrap();
        assert!(reason(verify(&hs, &pk, &id, at(T0)).unwrap_err()).contains("not accepted"));

        let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&k)).unwrap());
        for none in [format!("{head}.{body}."), format!("{head}.{body}")] {
            assert!(verify(&none, &pk, &id, at(T0)).is_err());
        }
    }

    #[test]
    fn org_admin_without_org_is_refused_both_ways() {
        let k = node(1);
        let mut c = claims(&k);
        c.org = None;
        assert!(matches!(
            issue(&k, &c),
            Err(PkiError::InvalidRequest { .. })
        ));
        // Signed anyway (e.g. by a buggy issuer): verification still refuses it.
        let enc = EncodingKey::from_ed_der(&k.pkcs8_der().unwrap());
        let t = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &c, &enc).unwrap();
        assert!(
            reason(verify(&t, &k.public_key_bytes(), &k.node_id().0, at(T0)).unwrap_err())
                .contains("org")
        );
        c.role = Role::NodeAdmin;
        assert!(issue(&k, &c).is_ok());
    }
}
