//! Response rate limiting for UDP (large CERT answers make a DNS server an
//! amplifier for spoofed sources). Each source network (IPv4 /24, IPv6 /56)
//! has a token bucket; a response over its limit is sent truncated instead,
//! a few dozen octets that tell a real client to come back over TCP, where
//! a spoofed source cannot follow.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Locks the table is split over, so UDP threads rarely wait on each other.
const SHARDS: usize = 16;
/// Past this many networks per shard, idle ones are forgotten.
const MAX_PER_SHARD: usize = 8192;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets per source network.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    shards: Vec<Mutex<HashMap<u64, Bucket>>>,
}

impl RateLimiter {
    /// `rate` responses per second sustained, `burst` above it.
    pub fn new(rate: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Whether a full response to `ip` is allowed at `now` (takes a token).
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let key = network_of(ip);
        let shard = &self.shards[(key as usize ^ (key >> 32) as usize) % SHARDS];
        let mut table = shard.lock().unwrap_or_else(|p| p.into_inner());
        if table.len() >= MAX_PER_SHARD && !table.contains_key(&key) {
            let horizon = Duration::from_secs_f64(self.burst / self.rate + 1.0);
            table.retain(|_, b| now.duration_since(b.at) < horizon);
            if table.len() >= MAX_PER_SHARD {
                table.clear();
            }
        }
        let bucket = table.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The source network an address counts against.
fn network_of(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4) >> 8),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u64::from(u32::from(v4) >> 8),
            None => (1 << 63) | (u128::from(v6) >> 72) as u64,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_network_and_refills() {
        let rrl = RateLimiter::new(10, 3);
        let t = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let same_net: IpAddr = "192.0.2.200".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(rrl.allow(a, t) && rrl.allow(same_net, t) && rrl.allow(a, t));
        assert!(!rrl.allow(a, t), "the burst is spent");
        assert!(rrl.allow(other, t), "another network has its own bucket");
        assert!(rrl.allow(a, t + Duration::from_millis(150)), "refilled");
    }
}
