//! A bounded in-memory copy of recently read entries, for the protocol
//! lookups that read the same entries over and over (LDAP `mail=` lookups
//! and the pages of substring searches). A derived view like the search
//! index: the index catch-up ([`super::sync`]) refreshes what it holds
//! from the change log, so it lags the database as much as the index does
//! (milliseconds for this process's writes, one poll for other processes').
//!
//! Reads race with that refresh: a reader may fetch a record just before a
//! write commits and offer it to the cache just after the catch-up stored
//! the new one. Every refresh bumps an epoch, and a reader's offer is taken
//! only when the epoch did not move since before its database read, so a
//! stale record never replaces a fresher one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::domain::{EntryCertificate, EntryRecord};

/// What the allocator adds to each heap block, on average (header and
/// rounding up to its size class).
const PER_ALLOCATION: usize = 16;

/// The heap bytes of one allocation of `capacity` bytes (none when empty).
fn block(capacity: usize) -> usize {
    if capacity == 0 {
        0
    } else {
        capacity + PER_ALLOCATION
    }
}

fn string(s: &str) -> usize {
    block(s.len())
}

fn strings<'a>(list: impl IntoIterator<Item = &'a String>, capacity: usize) -> usize {
    block(capacity * std::mem::size_of::<String>())
        + list.into_iter().map(|s| string(s)).sum::<usize>()
}

/// What a record occupies in memory: the structs themselves, every string
/// and byte buffer they own, and the allocator's share of each block.
/// Measured on a 1 M-entry node filled by the warm-up scan, the process
/// grows by about 1.35 times the weight the cache is charged (allocator
/// pages part empty), so `entry_cache_mb` bounds the records, not quite
/// the memory they pin.
fn record_bytes(key: &str, record: &EntryRecord) -> usize {
    use std::mem::size_of;
    let e = &record.entry;
    let optional = [
        &e.given_name,
        &e.surname,
        &e.unit,
        &e.title,
        &e.profession,
        &e.specialty,
        &e.locality,
        &e.region,
        &e.country,
        &e.postal_code,
        &e.phone,
    ]
    .iter()
    .map(|s| s.as_deref().map_or(0, string))
    .sum::<usize>();
    let address = e.address.to_string().len() + 2 * PER_ALLOCATION;
    let identifiers = block(e.identifiers.len() * size_of::<crate::domain::Identifier>())
        + e.identifiers
            .iter()
            .map(|i| string(&i.scheme) + string(&i.value))
            .sum::<usize>();
    let entry = optional
        + address
        + identifiers
        + string(&e.display_name)
        + e.organisation.as_ref().map_or(0, |o| string(o.as_str()))
        + string(&e.origin.0);
    let certificates = block(record.certificates.len() * size_of::<EntryCertificate>())
        + record
            .certificates
            .iter()
            .map(|c| {
                let cert = &c.certificate;
                block(cert.der.len())
                    + string(&cert.subject)
                    + string(&cert.issuer)
                    + string(&cert.serial)
                    + string(&cert.key_algorithm)
                    + strings(&cert.email_addresses, cert.email_addresses.len())
                    + strings(&cert.dns_names, cert.dns_names.len())
                    + strings(&cert.extended_key_usage, cert.extended_key_usage.len())
                    + strings(&cert.policies, cert.policies.len())
                    + block(cert.key_usage.len() * size_of::<crate::domain::KeyUsage>())
                    + string(&c.trust.reason)
                    + block(c.chain.len() * size_of::<Vec<u8>>())
                    + c.chain.iter().map(|d| block(d.len())).sum::<usize>()
            })
            .sum::<usize>();
    // The Arc'd record, the boxed key, and the cache's own slot for them.
    block(size_of::<EntryRecord>() + 16) + string(key) + 64 + entry + certificates
}

#[derive(Clone)]
struct RecordWeight;

impl Weighter<Box<str>, Arc<EntryRecord>> for RecordWeight {
    fn weight(&self, key: &Box<str>, record: &Arc<EntryRecord>) -> u64 {
        record_bytes(key, record) as u64
    }
}

/// The cache and its epoch. A capacity of 0 turns it off.
pub(super) struct EntryCache {
    cache: Option<Cache<Box<str>, Arc<EntryRecord>, RecordWeight>>,
    epoch: AtomicU64,
}

/// Taken before a database read, handed back with what it read.
#[derive(Clone, Copy)]
pub(super) struct Ticket(u64);

impl EntryCache {
    /// A cache holding about `bytes` of records; off when 0.
    pub(super) fn new(bytes: u64) -> EntryCache {
        let cache = (bytes > 0).then(|| {
            let items = usize::try_from(bytes / 2048).unwrap_or(usize::MAX).max(16);
            Cache::with_weighter(items, bytes, RecordWeight)
        });
        EntryCache {
            cache,
            epoch: AtomicU64::new(0),
        }
    }

    /// The cached record of `key` (lower-cased), if any.
    pub(super) fn get(&self, key: &str) -> Option<Arc<EntryRecord>> {
        self.cache.as_ref()?.get(key)
    }

    /// Call before reading records from the database to offer them.
    pub(super) fn ticket(&self) -> Ticket {
        Ticket(self.epoch.load(Ordering::Acquire))
    }

    /// Offers records read from the database after `ticket` was taken;
    /// ignored when a refresh happened in between.
    pub(super) fn offer(&self, ticket: Ticket, records: &[Arc<EntryRecord>]) {
        let Some(cache) = &self.cache else { return };
        if self.epoch.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        for record in records {
            cache.insert(record.entry.address.key().into_boxed_str(), record.clone());
        }
    }

    /// Whether the cache is on and has room for more without evicting.
    pub(super) fn has_room(&self) -> bool {
        self.cache
            .as_ref()
            .is_some_and(|c| c.weight() < c.capacity() / 10 * 9)
    }

    /// Offers records read by the warm-up scan: like [`EntryCache::offer`],
    /// but only while there is room, so it never pushes out what readers
    /// asked for. Returns whether there is room left.
    pub(super) fn fill(&self, ticket: Ticket, records: Vec<EntryRecord>) -> bool {
        let Some(cache) = &self.cache else {
            return false;
        };
        if self.epoch.load(Ordering::Acquire) != ticket.0 {
            return self.has_room();
        }
        for record in records {
            if !self.has_room() {
                return false;
            }
            let key = record.entry.address.key().into_boxed_str();
            if !cache.contains_key(key.as_ref()) {
                // A copy, not the scanned record: those were allocated
                // among the row scan's temporaries, and keeping them pins
                // the pages those leave part empty (at 1 M entries a full
                // cache cost 490 MiB of RSS for 256 MiB of records; its
                // copies cost 350).
                cache.insert(key, Arc::new(record.clone()));
            }
        }
        self.has_room()
    }

    /// The catch-up's first step for `changed` keys: drops them and
    /// answers those that were cached, which the catch-up reads again and
    /// hands to [`EntryCache::put_back`]. Only what readers asked for stays
    /// warm; the rest of a bulk import would only push it out. Readers that
    /// missed meanwhile read the database, which already holds the change.
    pub(super) fn take_warm(&self, changed: &[String]) -> Vec<String> {
        let Some(cache) = &self.cache else {
            return Vec::new();
        };
        self.epoch.fetch_add(1, Ordering::AcqRel);
        changed
            .iter()
            .filter(|key| cache.remove(key.as_str()).is_some())
            .cloned()
            .collect()
    }

    /// The records of the keys [`EntryCache::take_warm`] answered, as they
    /// are now (a removed entry has none).
    pub(super) fn put_back(&self, current: Vec<EntryRecord>) {
        let Some(cache) = &self.cache else { return };
        for record in current {
            let key = record.entry.address.key();
            cache.insert(key.into_boxed_str(), Arc::new(record));
        }
    }

    /// Forgets everything (the catch-up cannot say what changed).
    pub(super) fn clear(&self) {
        if let Some(cache) = &self.cache {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            cache.clear();
        }
    }
}
