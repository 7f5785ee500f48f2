//! Request handling: one message in, one response (or a transfer) out. The
//! transport calls [`Handler::handle`] for every UDP datagram and TCP frame;
//! this file decides what kind of request it is and hands it to the file
//! that answers it (`lookup`, `negative`, `axfr`).
//!
//! | request | answer |
//! |---|---|
//! | shorter than a header, or a response | dropped |
//! | unreadable (bad name, bad counts, two OPTs, …) | FORMERR |
//! | opcode other than QUERY (NOTIFY, UPDATE, …) | NOTIMP |
//! | EDNS version above 0 | BADVERS |
//! | class other than IN / ANY, or a name in no hosted zone | REFUSED |
//! | UDP over the rate limit | truncated (TC), so the client retries over TCP |
//! | AXFR over UDP | FORMERR (transfers run over TCP, RFC 5936 §4.2) |
//! | AXFR / IXFR over TCP | the whole zone to allowed sources (IXFR answered as AXFR, RFC 1995 §4), else REFUSED; NOTAUTH if the name is not a zone apex |
//! | IXFR over UDP | the current SOA alone (RFC 1995 §2: "use TCP") |
//! | anything else | `lookup`: answer, NODATA or NXDOMAIN |

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use super::axfr::Transfer;
use super::rrl::RateLimiter;
use super::tsig::TsigKey;
use super::wire::{
    self, Builder, CLASS_ANY, CLASS_IN, OPCODE_QUERY, Owner, Parsed, Rcode, Request, ResponseFlags,
    TYPE_AXFR, TYPE_IXFR, TYPE_SOA,
};
use super::zones::ZoneSet;
use super::{lookup, negative, policy};
use crate::config::DnsConfig;
use crate::core::{Directory, NameKey, Publication, PublishedCerts};

/// How a message arrived; decides size limits, rate limiting and transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What the transport should do after [`Handler::handle`].
pub enum Action {
    /// Send the message now in the output buffer.
    Reply,
    /// Send nothing (not a request, or nothing worth answering).
    Drop,
    /// Stream a zone transfer, message by message (TCP only), once
    /// [`Transfer::resolve`] has read its certificates.
    Transfer(Box<Transfer>),
    /// Certificates published at this name are not in memory: read them
    /// ([`Publication::resolve`]) and answer again with
    /// [`Handler::handle_resolved`].
    Resolve(NameKey),
}

/// The second pass of a message after [`Action::Resolve`].
#[derive(Clone, Copy)]
enum Resolved<'a> {
    Certificates(&'a PublishedCerts),
    Failed,
}

/// Answers DNS messages from the hosted zones and the core's publication view.
pub struct Handler {
    zones: RwLock<Arc<ZoneSet>>,
    publication: Publication,
    serial: AtomicU32,
    edns_udp_size: u16,
    rrl: Option<RateLimiter>,
    /// When set, transfers must be signed with this key.
    tsig: Option<Arc<TsigKey>>,
    /// Answers names below the policy zone.
    policies: Option<Directory>,
}

impl Handler {
    pub fn new(zones: ZoneSet, publication: Publication, config: &DnsConfig) -> Handler {
        Handler {
            zones: RwLock::new(Arc::new(zones)),
            publication,
            serial: AtomicU32::new(unix_now()),
            edns_udp_size: config.edns_udp_size,
            rrl: (config.rrl_responses_per_second > 0)
                .then(|| RateLimiter::new(config.rrl_responses_per_second, config.rrl_burst)),
            // An invalid key is refused at start (`dns::start`); here it
            // would only ever lock transfers out.
            tsig: config.tsig.as_ref().map(|t| {
                Arc::new(TsigKey::new(&t.name, &t.secret).unwrap_or_else(TsigKey::unusable))
            }),
            policies: None,
        }
    }

    /// Answers the policy zone from `directory`'s policy view.
    pub fn with_policies(mut self, directory: Directory) -> Handler {
        self.policies = Some(directory);
        self
    }

    pub(super) fn policies(&self) -> Option<&Directory> {
        self.policies.as_ref()
    }

    /// The current SOA serial of every zone.
    pub fn serial(&self) -> u32 {
        self.serial.load(Ordering::Relaxed)
    }

    /// Moves the serial on after a change: to the current Unix time, or one
    /// more than before if that is not later (RFC 1982 order), so it always
    /// increases, also across restarts unless changes outpace the clock.
    pub fn bump_serial(&self) -> u32 {
        let now = unix_now();
        let mut current = self.serial();
        loop {
            let next = next_serial(current, now);
            match self
                .serial
                .compare_exchange(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(actual) => current = actual,
            }
        }
    }

    /// Replaces the hosted zones (organisations changed).
    pub fn set_zones(&self, zones: ZoneSet) {
        *self.zones.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(zones);
    }

    /// The hosted zones now.
    pub fn zones(&self) -> Arc<ZoneSet> {
        self.zones.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn publication(&self) -> &Publication {
        &self.publication
    }

    /// Answers one message from `src`. The response (if any) is written to
    /// `out`, which is cleared first. Never panics, whatever the bytes.
    pub fn handle(
        &self,
        msg: &[u8],
        src: IpAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Action {
        self.handle_with(msg, src, transport, out, None)
    }

    /// Answers a message again after [`Action::Resolve`], with the
    /// certificates read for its name (`None` when reading them failed:
    /// SERVFAIL). The rate limiter counted the message the first time.
    pub fn handle_resolved(
        &self,
        msg: &[u8],
        src: IpAddr,
        transport: Transport,
        out: &mut Vec<u8>,
        certs: Option<&PublishedCerts>,
    ) -> Action {
        let resolved = certs.map_or(Resolved::Failed, Resolved::Certificates);
        self.handle_with(msg, src, transport, out, Some(resolved))
    }

    fn handle_with(
        &self,
        msg: &[u8],
        src: IpAddr,
        transport: Transport,
        out: &mut Vec<u8>,
        resolved: Option<Resolved<'_>>,
    ) -> Action {
        let request = match wire::parse(msg) {
            Parsed::Drop => return Action::Drop,
            Parsed::FormErr(header) => {
                negative::error(out, header, None, None, Rcode::FormErr, self.edns_udp_size);
                return Action::Reply;
            }
            Parsed::Request(r) => r,
        };
        let header = request.header;
        let question = request.question.as_ref();
        let raw_q = question.map(|q| q.raw);
        if header.opcode() != OPCODE_QUERY {
            negative::error(
                out,
                header,
                raw_q,
                request.edns,
                Rcode::NotImp,
                self.edns_udp_size,
            );
            return Action::Reply;
        }
        if request.edns.is_some_and(|e| e.version != 0) {
            negative::error(
                out,
                header,
                raw_q,
                request.edns,
                Rcode::BadVers,
                self.edns_udp_size,
            );
            return Action::Reply;
        }
        let Some(q) = question else {
            negative::error(
                out,
                header,
                None,
                request.edns,
                Rcode::FormErr,
                self.edns_udp_size,
            );
            return Action::Reply;
        };
        if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
            negative::error(
                out,
                header,
                raw_q,
                request.edns,
                Rcode::Refused,
                self.edns_udp_size,
            );
            return Action::Reply;
        }
        let limit = self.size_limit(&request, transport);
        if transport == Transport::Udp
            && resolved.is_none()
            && let Some(rrl) = &self.rrl
            && !rrl.allow(src, Instant::now())
        {
            negative::truncated(out, header, q.raw, request.edns, self.edns_udp_size, true);
            return Action::Reply;
        }
        let zones = self.zones.read().unwrap_or_else(|p| p.into_inner());
        match q.qtype {
            TYPE_AXFR | TYPE_IXFR if transport == Transport::Tcp => {
                self.transfer(&zones, &request, src, out)
            }
            TYPE_AXFR => {
                negative::error(
                    out,
                    header,
                    raw_q,
                    request.edns,
                    Rcode::FormErr,
                    self.edns_udp_size,
                );
                Action::Reply
            }
            TYPE_IXFR => {
                match zones.get(q.name.key()) {
                    Some(zone) => {
                        let mut b = Builder::new(out, header, authoritative(Rcode::NoError), raw_q);
                        let (names, numbers) = zone.soa_rdata(self.serial());
                        b.answer(
                            Owner::Pointer(wire::QUESTION_AT),
                            TYPE_SOA,
                            zone.soa_ttl,
                            &[names, &numbers],
                        );
                        if let Some(e) = request.edns {
                            b.opt(self.edns_udp_size, e.dnssec_ok);
                        }
                        b.finish();
                    }
                    None => negative::error(
                        out,
                        header,
                        raw_q,
                        request.edns,
                        Rcode::NotAuth,
                        self.edns_udp_size,
                    ),
                }
                Action::Reply
            }
            _ => {
                match zones.find(&q.name) {
                    Some((zone, apex_at)) if zone.policy && apex_at > 0 => {
                        policy::answer(self, zone, apex_at, &request, q, limit, out)
                    }
                    Some((zone, apex_at)) => {
                        let certs = match resolved {
                            None => None,
                            Some(Resolved::Certificates(c)) => Some(c),
                            Some(Resolved::Failed) => {
                                negative::error(
                                    out,
                                    header,
                                    raw_q,
                                    request.edns,
                                    Rcode::ServFail,
                                    self.edns_udp_size,
                                );
                                return Action::Reply;
                            }
                        };
                        if !lookup::answer(self, zone, apex_at, &request, q, limit, certs, out) {
                            return match NameKey::from_key_bytes(q.name.key()) {
                                Some(name) => Action::Resolve(name),
                                None => Action::Drop,
                            };
                        }
                    }
                    None => negative::error(
                        out,
                        header,
                        raw_q,
                        request.edns,
                        Rcode::Refused,
                        self.edns_udp_size,
                    ),
                }
                Action::Reply
            }
        }
    }

    /// The largest response the requester takes over this transport.
    fn size_limit(&self, request: &Request<'_>, transport: Transport) -> usize {
        match (transport, request.edns) {
            (Transport::Tcp, _) => usize::from(u16::MAX),
            (Transport::Udp, None) => 512,
            (Transport::Udp, Some(e)) => usize::from(e.udp_size.min(self.edns_udp_size).max(512)),
        }
    }

    pub(super) fn edns_udp_size(&self) -> u16 {
        self.edns_udp_size
    }

    fn transfer(
        &self,
        zones: &ZoneSet,
        request: &Request<'_>,
        src: IpAddr,
        out: &mut Vec<u8>,
    ) -> Action {
        let header = request.header;
        let Some(q) = request.question.as_ref() else {
            return Action::Drop;
        };
        let Some(zone) = zones.get(q.name.key()) else {
            negative::error(
                out,
                header,
                Some(q.raw),
                request.edns,
                Rcode::NotAuth,
                self.edns_udp_size,
            );
            return Action::Reply;
        };
        if !zone.may_transfer(src) {
            tracing::info!(%src, zone = %zone.apex, "zone transfer refused");
            negative::error(
                out,
                header,
                Some(q.raw),
                request.edns,
                Rcode::Refused,
                self.edns_udp_size,
            );
            return Action::Reply;
        }
        let signer = match &self.tsig {
            None => None,
            Some(key) => {
                let now = u64::from(unix_now());
                match key.verify(request.raw, request.tsig_at, now) {
                    Ok(signed) => Some(key.signer(&signed, now)),
                    Err(why) => {
                        tracing::info!(%src, zone = %zone.apex, ?why, "zone transfer not signed with the TSIG key");
                        negative::error(
                            out,
                            header,
                            Some(q.raw),
                            request.edns,
                            Rcode::NotAuth,
                            self.edns_udp_size,
                        );
                        return Action::Reply;
                    }
                }
            }
        };
        let (_, names) = self.publication.names_within(zone.apex.as_bytes());
        let names = names
            .into_iter()
            .filter(|(name, _)| {
                zones
                    .most_specific(name)
                    .is_some_and(|z| Arc::ptr_eq(z, zone))
            })
            .collect();
        tracing::info!(%src, zone = %zone.apex, serial = self.serial(), "zone transfer");
        Action::Transfer(Box::new(Transfer::new(
            zone.clone(),
            self.serial(),
            header,
            q.raw.to_vec(),
            names,
            signer,
        )))
    }
}

/// Flags of an authoritative answer with `rcode`.
pub(super) fn authoritative(rcode: Rcode) -> ResponseFlags {
    ResponseFlags {
        authoritative: true,
        truncated: false,
        rcode,
    }
}

fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1)
}

/// The serial after `current` at Unix time `now` (RFC 1982 comparison).
pub(super) fn next_serial(current: u32, now: u32) -> u32 {
    let later = now != current && now.wrapping_sub(current) < (1 << 31);
    if later { now } else { current.wrapping_add(1) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::sample_handler;

    fn corpus() -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/dns_message");
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("the fuzz corpus is committed")
            .map(|e| {
                let path = e.unwrap().path();
                (
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&path).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Runs one message through both transports; checks what the fuzz target checks.
    fn exercise(h: &Handler, msg: &[u8]) -> Vec<Vec<u8>> {
        let mut replies = Vec::new();
        for transport in [Transport::Udp, Transport::Tcp] {
            let mut out = Vec::new();
            match h.handle(msg, "127.0.0.1".parse().unwrap(), transport, &mut out) {
                Action::Reply => {
                    assert!(out.len() >= 12 && out[0..2] == msg[0..2] && out[2] & 0x80 != 0);
                    replies.push(out);
                }
                Action::Drop => {}
                Action::Resolve(name) => panic!("a fixed view holds every certificate: {name}"),
                Action::Transfer(mut t) => {
                    assert_eq!(transport, Transport::Tcp);
                    while t.next_message(&mut out) {
                        assert!(out.len() <= 65_535);
                        replies.push(out.clone());
                    }
                }
            }
        }
        replies
    }

    #[test]
    fn the_fuzz_corpus_gets_the_answers_it_should() {
        let h = sample_handler();
        let rcode = |r: &[u8]| r[3] & 0x0f;
        for (name, msg) in corpus() {
            let replies = exercise(&h, &msg);
            match name.as_str() {
                "short" | "response" => assert!(replies.is_empty(), "{name}"),
                "pointer_loop" | "label_past_end" | "two_opt" | "no_question" | "tsig_not_last" => {
                    assert!(replies.iter().all(|r| rcode(r) == 1), "{name}: FORMERR")
                }
                "notify_opcode" | "update_opcode" => {
                    assert!(replies.iter().all(|r| rcode(r) == 4), "{name}: NOTIMP")
                }
                "refused_other_zone" | "chaos_class" => {
                    assert!(replies.iter().all(|r| rcode(r) == 5), "{name}: REFUSED")
                }
                "nxdomain" => assert!(replies.iter().all(|r| rcode(r) == 3), "{name}"),
                "axfr" => assert!(replies.len() >= 2, "FORMERR over UDP, the zone over TCP"),
                "cert_john_small_edns" => {
                    assert_eq!(replies[0][2] & 0x02, 0x02, "TC over UDP");
                    assert!(replies[0].len() <= 512);
                    assert_eq!(replies[1][2] & 0x02, 0, "whole over TCP");
                }
                "cert_alice_edns" => {
                    assert_eq!(&replies[0][6..8], &[0, 2], "two CERT records");
                    assert_eq!(replies[0][2] & 0x04, 0x04, "AA");
                }
                _ => assert!(replies.iter().all(|r| rcode(r) == 0), "{name}"),
            }
        }
    }

    /// A deterministic stand-in for the fuzzer in every `cargo test`: each
    /// corpus message truncated at every length and with bytes flipped.
    #[test]
    fn mutated_messages_never_panic() {
        let h = sample_handler();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (_, msg) in corpus() {
            for len in 0..msg.len() {
                let _ = exercise_any(&h, &msg[..len]);
            }
            for _ in 0..500 {
                let mut m = msg.clone();
                for _ in 0..1 + next() % 4 {
                    if m.is_empty() {
                        break;
                    }
                    let at = (next() as usize) % m.len();
                    m[at] = next() as u8;
                }
                let _ = exercise_any(&h, &m);
            }
        }
    }

    fn exercise_any(h: &Handler, msg: &[u8]) -> usize {
        if msg.len() < 2 {
            let mut out = Vec::new();
            let _ = h.handle(msg, "::1".parse().unwrap(), Transport::Udp, &mut out);
            return 0;
        }
        exercise(h, msg).len()
    }

    #[test]
    fn serials_always_increase() {
        assert_eq!(next_serial(100, 200), 200);
        assert_eq!(next_serial(200, 200), 201);
        assert_eq!(next_serial(300, 200), 301);
        assert_eq!(next_serial(u32::MAX, 5), 5, "wraps forward in serial order");
    }
}
