//! `[policy]`: how this node delivers fair-play policy feeds. The DNS
//! lookup zone is `dns.policy_zone`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Tries of one event before a webhook gives up on it (dead letter,
    /// shown in the subscription's status) and goes on with the next.
    pub webhook_max_attempts: u32,
    /// Wait after the first failed delivery, in milliseconds; doubled after
    /// each further failure.
    pub webhook_backoff_ms: u64,
    /// Longest wait between tries, in seconds.
    pub webhook_backoff_max_seconds: u64,
    /// How long a receiver may take to answer one delivery, in seconds.
    pub webhook_timeout_seconds: u64,
    /// Recent events kept in memory, so feeds with many subscribers cost
    /// one database read per event.
    pub feed_buffer: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            webhook_max_attempts: 8,
            webhook_backoff_ms: 1000,
            webhook_backoff_max_seconds: 300,
            webhook_timeout_seconds: 10,
            feed_buffer: 4096,
        }
    }
}
