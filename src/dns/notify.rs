//! Keeping up with changes: after the publication view changes, move the
//! SOA serial on at once, re-derive the zones when they come from the
//! organisations, and a moment later (changes in a burst are told once)
//! send a NOTIFY (RFC 1996) for every zone to its `also_notify` secondaries,
//! which then transfer the zone. A NOTIFY is retried a few times until the
//! secondary acknowledges it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::handler::Handler;
use super::wire::{self, CLASS_IN, OPCODE_NOTIFY, TYPE_SOA};
use super::zones::{Zone, ZoneSet};
use crate::config::DnsConfig;
use crate::core::Directory;

/// How long changes are gathered before secondaries are told.
const SETTLE: Duration = Duration::from_millis(500);
/// How long to wait for a secondary's acknowledgement, and how often to try.
const ACK_WAIT: Duration = Duration::from_secs(2);
const TRIES: usize = 3;

/// Follows the publication view until `shutdown` turns true.
pub async fn maintain(
    handler: Arc<Handler>,
    directory: Directory,
    config: DnsConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut versions = handler.publication().subscribe();
    versions.borrow_and_update();
    // Secondaries may hold an older copy from before a restart.
    notify_all(&handler.zones(), handler.serial());
    loop {
        tokio::select! {
            changed = versions.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
        versions.borrow_and_update();
        let serial = handler.bump_serial();
        debug!(serial, "published data changed");
        if config.zones.is_empty() && config.zones_from_organisations {
            match directory.list_organisations().await {
                Ok(orgs) => match ZoneSet::build(&config, &orgs) {
                    Ok(zones) => handler.set_zones(zones),
                    Err(e) => warn!(error = %e, "re-deriving DNS zones from organisations"),
                },
                Err(e) => warn!(error = %e, "listing organisations for DNS zones"),
            }
        }
        tokio::time::sleep(SETTLE).await;
        if versions.has_changed().unwrap_or(false) {
            // More came in meanwhile: the next round moves the serial and notifies.
            continue;
        }
        notify_all(&handler.zones(), handler.serial());
    }
}

fn notify_all(zones: &ZoneSet, serial: u32) {
    for zone in zones.iter() {
        for target in &zone.also_notify {
            tokio::spawn(send_notify(zone.clone(), serial, *target));
        }
    }
}

/// A NOTIFY for `zone`: opcode NOTIFY, AA, the apex SOA as question and
/// the current SOA as a hint in the answer section (RFC 1996 §3.7).
pub fn notify_message(zone: &Zone, serial: u32, id: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&id.to_be_bytes());
    let flags: u16 = (u16::from(OPCODE_NOTIFY) << 11) | 0x0400;
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0]);
    out.extend_from_slice(&wire::name_wire(zone.apex.as_bytes()));
    out.extend_from_slice(&TYPE_SOA.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    let (names, numbers) = zone.soa_rdata(serial);
    out.extend_from_slice(&0xc00cu16.to_be_bytes());
    out.extend_from_slice(&TYPE_SOA.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&zone.soa_ttl.to_be_bytes());
    out.extend_from_slice(&((names.len() + numbers.len()) as u16).to_be_bytes());
    out.extend_from_slice(names);
    out.extend_from_slice(&numbers);
    out
}

async fn send_notify(zone: Arc<Zone>, serial: u32, target: SocketAddr) {
    let bind: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "binding a socket for NOTIFY");
            return;
        }
    };
    let id: u16 = rand::random();
    let message = notify_message(&zone, serial, id);
    let mut buf = [0u8; 512];
    for _ in 0..TRIES {
        if let Err(e) = socket.send_to(&message, target).await {
            debug!(error = %e, %target, "sending NOTIFY");
        }
        let wait = async {
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    return false;
                };
                let reply = &buf[..n];
                if from == target
                    && n >= 12
                    && reply[0..2] == id.to_be_bytes()
                    && reply[2] & 0x80 != 0
                {
                    return true;
                }
            }
        };
        if let Ok(true) = tokio::time::timeout(ACK_WAIT, wait).await {
            info!(zone = %zone.apex, serial, %target, "secondary notified");
            return;
        }
    }
    warn!(zone = %zone.apex, serial, %target, "secondary did not acknowledge NOTIFY");
}
