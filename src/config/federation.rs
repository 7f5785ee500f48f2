//! The `[federation]` section: the pinned root, this node's parent, the
//! children it pulls, and how it pulls them.

use serde::{Deserialize, Serialize};

/// How this node takes part in a federation. With nothing set the node is
/// a root of its own (or a standalone directory): it keeps a signed log of
/// what it publishes and pulls no one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// The root's public key (64 hex digits), pinned like a DNSSEC trust
    /// anchor: records are accepted only under delegations that start
    /// there. Unset: this node is the root.
    pub root_key: Option<String>,
    /// Base URL of this node's parent; it is pinged when this node's log
    /// grows, so that it pulls at once instead of at its next interval.
    pub parent_url: Option<String>,
    /// How often each child is pulled when it does not ping, in milliseconds.
    pub pull_interval_ms: u64,
    /// How often the publisher looks for local changes it was not told
    /// about (writes by another process), in milliseconds.
    pub publish_interval_ms: u64,
    /// Records asked for per page (at most 5000).
    pub page_size: u64,
    /// Largest page accepted from a child, in bytes.
    pub max_page_bytes: usize,
    /// Time allowed to connect to a child, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Time allowed for a whole answer, body included, in milliseconds; a
    /// child that stalls mid-answer is cut off after it.
    pub request_timeout_ms: u64,
    /// First wait after a failed pull, in milliseconds; doubled per failure.
    pub backoff_initial_ms: u64,
    /// Longest wait after failed pulls, in milliseconds.
    pub backoff_max_ms: u64,
    /// Children to pull. More can be added at run time with
    /// `ccdir federation add-child`.
    pub children: Vec<ChildConfig>,
}

/// A child to pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildConfig {
    /// The child's node key (64 hex digits), as `ccdir init` printed it.
    pub key: String,
    /// Its base URL, e.g. `https://cardio.example.org:8443`.
    pub url: String,
    /// A name for people (status, logs).
    #[serde(default)]
    pub name: Option<String>,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            root_key: None,
            parent_url: None,
            pull_interval_ms: 5_000,
            publish_interval_ms: 1_000,
            page_size: 500,
            max_page_bytes: 16 * 1024 * 1024,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            backoff_initial_ms: 500,
            backoff_max_ms: 60_000,
            children: Vec::new(),
        }
    }
}

fn is_key(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

impl FederationConfig {
    /// The rules a federation section must meet.
    pub fn check(&self) -> Result<(), String> {
        if let Some(k) = &self.root_key
            && !is_key(k)
        {
            return Err("federation.root_key must be 64 hex digits".into());
        }
        if let Some(u) = &self.parent_url
            && !is_url(u)
        {
            return Err("federation.parent_url must be an http:// or https:// URL".into());
        }
        for c in &self.children {
            if !is_key(&c.key) {
                return Err(format!(
                    "federation.children: key {:?} is not 64 hex digits",
                    c.key
                ));
            }
            if !is_url(&c.url) {
                return Err(format!(
                    "federation.children: {:?} is not an http(s) URL",
                    c.url
                ));
            }
        }
        if !(1..=5000).contains(&self.page_size) {
            return Err("federation.page_size must be between 1 and 5000".into());
        }
        if self.max_page_bytes < 64 * 1024 {
            return Err("federation.max_page_bytes must be at least 65536".into());
        }
        let times = [
            self.pull_interval_ms,
            self.publish_interval_ms,
            self.connect_timeout_ms,
            self.request_timeout_ms,
            self.backoff_initial_ms,
            self.backoff_max_ms,
        ];
        if times.contains(&0) {
            return Err("federation intervals and timeouts must be positive".into());
        }
        if self.backoff_max_ms < self.backoff_initial_ms {
            return Err("federation.backoff_max_ms must not be below backoff_initial_ms".into());
        }
        Ok(())
    }
}
