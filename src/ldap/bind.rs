//! The bind operation (RFC 4511 §4.2, RFC 4513): anonymous, or a simple
//! bind of an organisation's user as `uid=<user>,o=<org>,<base>`, checked by
//! the core. Failed binds are limited per client address: past the budget
//! (`ldap.failed_binds_*`) binds from that address answer busy until it
//! refills, without checking the password.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ldap3_proto::proto::{LdapBindCred, LdapBindRequest};

use super::Ldap;
use super::error::LdapError;
use crate::core::CoreError;
use crate::domain::{Caller, TreeNode};

/// Counts failed binds per client address.
pub struct FailedBinds {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses over budget, until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// How long one failure takes to be forgiven.
    refill: Duration,
}

impl FailedBinds {
    /// `per_minute` failures sustained, `burst` at once.
    pub fn new(per_minute: u32, burst: u32) -> FailedBinds {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        FailedBinds {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            blocked: Mutex::new(HashMap::new()),
            refill: Duration::from_secs(60) / per_minute.get(),
        }
    }

    fn is_blocked(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(&ip) {
            Some(until) if *until > now => true,
            Some(_) => {
                blocked.remove(&ip);
                false
            }
            None => false,
        }
    }

    fn failed(&self, ip: IpAddr) {
        if self.limiter.check_key(&ip).is_err() {
            let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            if blocked.len() > 100_000 {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
            }
            blocked.insert(ip, Instant::now() + self.refill);
        }
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
    }
}

/// Who the bind makes the connection's caller, and the DN it bound as.
pub async fn bind(
    ldap: &Ldap,
    peer: IpAddr,
    request: &LdapBindRequest,
) -> Result<(Caller, String), LdapError> {
    if request.version != 3 {
        return Err(LdapError::Protocol(
            "only LDAP version 3 is supported".into(),
        ));
    }
    let password = match &request.cred {
        LdapBindCred::Simple(password) => password,
        LdapBindCred::SASL(_) | LdapBindCred::Unsupported => {
            return Err(LdapError::Unsupported(
                "only anonymous and simple binds are supported",
            ));
        }
    };
    if request.dn.is_empty() {
        if password.is_empty() {
            return Ok((Caller::Anonymous, String::new()));
        }
        return Err(LdapError::InvalidCredentials);
    }
    if password.is_empty() {
        // RFC 4513 §5.1.2: an unauthenticated bind is refused by default.
        return Err(LdapError::Unsupported(
            "unauthenticated binds are not allowed",
        ));
    }
    let node = ldap
        .tree
        .locate(&request.dn)
        .map_err(|e| LdapError::InvalidDn(e.to_string()))?;
    if ldap.failed_binds.is_blocked(peer) {
        return Err(LdapError::TooManyFailures);
    }
    let outcome = match &node {
        TreeNode::User { organisation, name } => {
            ldap.directory
                .verify_user(organisation, name, password)
                .await
        }
        _ => Err(CoreError::Unauthenticated("invalid credentials".into())),
    };
    match outcome {
        Ok(caller) => {
            let TreeNode::User { organisation, name } = node else {
                return Err(LdapError::InvalidCredentials);
            };
            Ok((
                caller,
                ldap.tree.user_dn(&organisation, &name.to_ascii_lowercase()),
            ))
        }
        Err(CoreError::Unauthenticated(_)) => {
            ldap.failed_binds.failed(peer);
            Err(LdapError::InvalidCredentials)
        }
        Err(e) => Err(e.into()),
    }
}
