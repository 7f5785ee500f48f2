//! Who is calling: bearer tokens signed by this node's key.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{CoreError, Directory, Result};
use crate::domain::{Caller, OrgId};
use crate::pki::NodeKey;
use crate::pki::token::{self, Claims, Role};

impl Directory {
    /// Turns an `Authorization: Bearer` token (or its absence) into a caller.
    /// No token is the anonymous caller; a bad token is an error, never
    /// silently anonymous, so a client learns its token was refused.
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Caller> {
        let Some(token) = bearer else {
            return Ok(Caller::Anonymous);
        };
        let claims = token::verify(
            token,
            &self.inner.node_key.public_key_bytes(),
            &self.inner.node_id.0,
            self.now(),
        )?;
        match claims.role {
            Role::NodeAdmin => Ok(Caller::NodeAdmin {
                subject: claims.sub,
            }),
            Role::OrgAdmin => {
                let org: OrgId = claims
                    .org
                    .as_deref()
                    .ok_or_else(|| {
                        CoreError::Unauthenticated("org-admin token without org".into())
                    })?
                    .parse()
                    .map_err(|_| {
                        CoreError::Unauthenticated("token names an invalid organisation".into())
                    })?;
                Ok(Caller::OrgAdmin {
                    subject: claims.sub,
                    org,
                })
            }
        }
    }

    /// Issues a token for `role`, valid for `ttl`.
    pub fn issue_token(
        &self,
        role: Role,
        org: Option<&OrgId>,
        subject: &str,
        ttl: Duration,
    ) -> Result<String> {
        issue_token(&self.inner.node_key, role, org, subject, ttl, self.now())
    }
}

/// Issues a bearer token signed by `key`: what `ccdir token issue` prints.
pub fn issue_token(
    key: &NodeKey,
    role: Role,
    org: Option<&OrgId>,
    subject: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<String> {
    if role == Role::OrgAdmin && org.is_none() {
        return Err(CoreError::InvalidInput(
            "an org-admin token needs an organisation".into(),
        ));
    }
    let claims = Claims {
        sub: subject.to_owned(),
        role,
        org: org.map(|o| o.to_string()),
        iss: key.node_id().0,
        iat: now.timestamp(),
        exp: now.timestamp() + ttl.as_secs() as i64,
        jti: uuid_like(),
    };
    Ok(token::issue(key, &claims)?)
}

/// 128 random bits as hex, to tell tokens apart in logs.
fn uuid_like() -> String {
    let mut bytes = [0u8; 16];
    // An OS RNG failure is not recoverable here; the id is not security-relevant.
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}
