//! The DNS front end: ccdir answers authoritatively for the zones it hosts,
//! so that Direct certificate discovery and ordinary resolvers find a
//! certificate from an address alone (PROTOCOLS §1–2).
//!
//! * CERT records (type PKIX, key tag 0, algorithm 0, bare DER) at the
//!   Direct owner name of every published address-bound certificate and at
//!   the domain of every domain-bound one — what is published, and at which
//!   names, is the core's [`Publication`] view (see its documentation for
//!   local parts with dots: every candidate name is served).
//! * SOA, NS, A/AAAA of configured hosts, and `_ldap._tcp` / `_ldaps._tcp`
//!   SRV records pointing at this node's LDAP listener.
//! * NODATA vs NXDOMAIN exact, REFUSED outside the hosted zones, EDNS(0)
//!   echoed (UDP answers never exceed the requester's size nor
//!   `dns.edns_udp_size`; larger ones are truncated so the client retries
//!   over TCP), UDP response rate limiting per source network.
//! * AXFR to allowed secondaries over TCP (TSIG HMAC-SHA256 when
//!   `dns.tsig` is set), NOTIFY when the zone changes,
//!   RFC 1035 zone files (`ccdir export zone`).
//!
//! The layout: `listener` is the transport (UDP threads, TCP tasks,
//! framing, timeouts); `handler` reads a message and dispatches; `lookup`,
//! `negative` and `axfr` answer; `wire` reads and writes the format;
//! `zones` holds the configured zones; `rrl`, `notify`, `tsig`, `zonefile` do one
//! job each.
//!
//! Why not hickory-server's `Server` and `Catalog`: its transport spawns a
//! task and crosses a channel per UDP query, parses every message into an
//! owned `MessageRequest`, logs two lines at info level per query, and only
//! sends responses it encodes itself from `Record`s — so a CERT answer would
//! cost several allocations and a re-encoding of the certificate. CPU per
//! answer is this front end's benchmark (BENCHMARKS.md, against NSD and
//! Knot), so the wire path is ours: a bounded, allocation-free reader of
//! the request and answers written straight from the published DER. The
//! integration tests check it with hickory-resolver and `dig`, and a real
//! secondary (NSD) transfers the zone.

mod axfr;
mod handler;
mod listener;
mod lookup;
mod negative;
mod notify;
mod policy;
mod rrl;
mod tsig;
pub mod wire;
mod zonefile;
mod zones;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use axfr::Transfer;
pub use handler::{Action, Handler, Transport};
pub use notify::notify_message;
pub use zonefile::write_zone;
pub use zones::{Zone, ZoneSet};

use crate::config::DnsConfig;
use crate::core::{CoreError, Directory, NameKey, Publication, SavePlan};
use crate::error::ErrorKind;

/// What can go wrong starting the DNS front end or exporting a zone.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// A listener could not be bound.
    #[error("binding the DNS listeners on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The zone configuration breaks a rule.
    #[error("{0}")]
    Zone(String),
    /// No hosted zone has that name.
    #[error("no hosted zone {0:?}")]
    NoSuchZone(String),
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("writing the zone file: {0}")]
    Write(#[from] std::io::Error),
}

impl DnsError {
    /// Where the error sits in the error table.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DnsError::Bind { .. } | DnsError::Write(_) => ErrorKind::Internal,
            DnsError::Zone(_) => ErrorKind::InvalidInput,
            DnsError::NoSuchZone(_) => ErrorKind::NotFound,
            DnsError::Core(e) => e.kind(),
        }
    }
}

/// A running DNS front end.
pub struct DnsServer {
    /// Where UDP is answered.
    pub udp_addr: SocketAddr,
    /// Where TCP is answered.
    pub tcp_addr: SocketAddr,
    handler: Arc<Handler>,
    listeners: listener::Listeners,
    shutdown: watch::Sender<bool>,
}

impl DnsServer {
    /// The request handler (for tests: serial, zones).
    pub fn handler(&self) -> &Arc<Handler> {
        &self.handler
    }

    /// Stops the listeners and the NOTIFY task.
    /// Stops answering and saves the publication view for the next start.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.listeners.stop().await;
        self.handler.publication().save_logged().await;
    }
}

/// Where a node's DNS front end saves its publication view between runs.
pub fn saved_view_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("publication.view")
}

/// Builds the zones and the publication view and starts answering. The
/// view is saved in `data_dir` when the server stops, and loaded from there
/// at the next start when it still fits the database.
pub async fn start(
    directory: Directory,
    config: &DnsConfig,
    data_dir: &std::path::Path,
) -> Result<DnsServer, DnsError> {
    if let Some(t) = &config.tsig
        && tsig::TsigKey::new(&t.name, &t.secret).is_none()
    {
        return Err(DnsError::Zone(
            "dns.tsig: the name must be a domain name and the secret base64".into(),
        ));
    }
    let organisations = directory.list_organisations().await?;
    let zones = ZoneSet::build(config, &organisations)?;
    let save = SavePlan {
        path: saved_view_path(data_dir),
        after_changes: config.save_view_after_changes.max(1),
        interval: Duration::from_secs(config.save_view_interval_seconds),
    };
    let publication =
        Publication::start(&directory, config.certificate_cache_mb << 20, Some(save)).await?;
    let handler =
        Arc::new(Handler::new(zones, publication, config).with_policies(directory.clone()));
    let limits = listener::TransportLimits {
        udp_threads: config.udp_threads,
        tcp_idle_timeout: Duration::from_secs(config.tcp_idle_timeout_seconds.max(1)),
        tcp_max_connections: config.tcp_max_connections,
    };
    let listeners =
        listener::Listeners::bind(config.listen, handler.clone(), limits).map_err(|source| {
            DnsError::Bind {
                addr: config.listen,
                source,
            }
        })?;
    let (shutdown, rx) = watch::channel(false);
    tokio::spawn(notify::maintain(
        handler.clone(),
        directory,
        config.clone(),
        rx,
    ));
    tracing::debug!(zones = handler.zones().len(), "DNS front end started");
    Ok(DnsServer {
        udp_addr: listeners.udp_addr,
        tcp_addr: listeners.tcp_addr,
        handler,
        listeners,
        shutdown,
    })
}

/// A handler over one fixed zone (`example.org`: SOA, NS, hosts, SRV, and
/// CERT records at `alice.example.org`, `john.doe.example.org` and the
/// apex) with no database behind it: for fuzzing and tests of message
/// handling. Transfers are allowed from anywhere; no rate limit.
pub fn sample_handler() -> Handler {
    let config = DnsConfig {
        rrl_responses_per_second: 0,
        zones: vec![crate::config::ZoneConfig {
            name: "example.org".into(),
            hosts: vec![crate::config::HostConfig {
                name: "ns".into(),
                a: vec![std::net::Ipv4Addr::LOCALHOST],
                aaaa: vec![std::net::Ipv6Addr::LOCALHOST],
            }],
            allow_transfer: vec!["0.0.0.0/0".into(), "::/0".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    let zones = ZoneSet::build(&config, &[]).unwrap_or_default();
    let name = |s: &str| NameKey::parse_dotted(s).unwrap_or_else(NameKey::root);
    let publication = Publication::fixed([
        (name("alice.example.org"), vec![0x30; 700]),
        (name("alice.example.org"), vec![0x31; 300]),
        (name("john.doe.example.org"), vec![0x30; 1300]),
        (name("example.org"), vec![0x30; 200]),
    ]);
    Handler::new(zones, publication, &config)
}

/// Writes hosted zone `name` as an RFC 1035 zone file, from the database as
/// it is now. Returns the number of records.
pub async fn export_zone(
    directory: &Directory,
    config: &DnsConfig,
    name: &str,
    out: &mut dyn std::io::Write,
) -> Result<usize, DnsError> {
    let organisations = directory.list_organisations().await?;
    let zones = ZoneSet::build(config, &organisations)?;
    let apex = NameKey::parse_dotted(name).ok_or_else(|| DnsError::NoSuchZone(name.into()))?;
    let zone = zones
        .get(apex.as_bytes())
        .ok_or_else(|| DnsError::NoSuchZone(name.into()))?;
    // Nothing is cached: the export reads every certificate once anyway.
    let publication = Publication::load(directory, 0).await?;
    let (_, names) = publication.names_within(zone.apex.as_bytes());
    let names: Vec<_> = names
        .into_iter()
        .filter(|(n, _)| zones.most_specific(n).is_some_and(|z| Arc::ptr_eq(z, zone)))
        .collect();
    let names = publication.resolve_all(names).await?;
    let serial = Handler::new(ZoneSet::default(), publication, config).serial();
    Ok(write_zone(zone, serial, &names, out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_save_plan_is_the_configurations_default() {
        let config = DnsConfig::default();
        assert_eq!(config.save_view_after_changes, SavePlan::AFTER_CHANGES);
        assert_eq!(
            Duration::from_secs(config.save_view_interval_seconds),
            SavePlan::INTERVAL
        );
    }
}
