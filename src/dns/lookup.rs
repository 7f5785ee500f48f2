//! Positive answers from a hosted zone: the records at the question's name
//! of the type asked for — CERT from the core's publication view, SOA at
//! the apex, NS / A / AAAA / SRV from the zone's static records.
//!
//! This is the hot path of the front end: one hash lookup in the
//! publication view, one in the zone's static records, and the certificate
//! bytes copied once into the response. Owners are compression pointers to
//! the question name, so nothing is encoded per answer but the RDATA.
//!
//! ANY is answered with every RRset at the name ("return what exists"): the
//! zone holds no large RRsets other than the CERT ones a CERT query returns
//! anyway, so RFC 8482's minimal answer would gain nothing; over UDP a large
//! answer is truncated like any other, and rate limiting applies.

use super::handler::{Handler, authoritative};
use super::negative;
use super::wire::{
    Builder, CERT_PKIX, Owner, QUESTION_AT, Question, Request, TYPE_ANY, TYPE_CERT, TYPE_SOA,
};
use super::zones::Zone;
use crate::core::{NameState, PublishedCerts};

/// CERT RDATA header: type PKIX, key tag 0, algorithm 0 (PROTOCOLS §1.2).
const CERT_HEADER: [u8; 5] = [(CERT_PKIX >> 8) as u8, CERT_PKIX as u8, 0, 0, 0];

/// Answers a query for a name in `zone`, whose apex starts at `apex_at` in
/// the question name; truncates when the answer exceeds `limit` octets.
/// `resolved` holds the name's certificates when they were read for this
/// message. False, with nothing written, when the answer needs
/// certificates that are not in memory.
#[allow(clippy::too_many_arguments)]
pub fn answer(
    handler: &Handler,
    zone: &Zone,
    apex_at: usize,
    request: &Request<'_>,
    q: &Question<'_>,
    limit: usize,
    resolved: Option<&PublishedCerts>,
    out: &mut Vec<u8>,
) -> bool {
    let name = q.name.key();
    // The apex suffix starts at the first label: the name is the apex.
    let at_apex = apex_at == 0;
    let any = q.qtype == TYPE_ANY;
    let published = match (handler.publication().lookup(name), resolved) {
        (NameState::Unresolved(_), Some(certs)) => NameState::Certificates(certs.clone()),
        // Only CERT answers need the certificates themselves.
        (NameState::Unresolved(_), None) if any || q.qtype == TYPE_CERT => return false,
        (other, _) => other,
    };
    let statics = zone.static_sets(name);
    let serial = handler.serial();

    let mut b = Builder::new(
        out,
        request.header,
        authoritative(super::wire::Rcode::NoError),
        Some(q.raw),
    );
    let start = b.written();
    let owner = Owner::Pointer(QUESTION_AT);
    if at_apex && (any || q.qtype == TYPE_SOA) {
        let (names, numbers) = zone.soa_rdata(serial);
        b.answer(owner, TYPE_SOA, zone.soa_ttl, &[names, &numbers]);
    }
    for set in statics.iter().filter(|s| any || s.rtype == q.qtype) {
        for rdata in &set.rdata {
            b.answer(owner, set.rtype, set.ttl, &[rdata]);
        }
    }
    if (any || q.qtype == TYPE_CERT)
        && let NameState::Certificates(certs) = &published
    {
        for der in certs.iter() {
            b.answer(owner, TYPE_CERT, zone.ttl, &[&CERT_HEADER, der]);
        }
    }
    let answered = b.written() > start;
    if !answered {
        let exists =
            at_apex || zone.static_name_exists(name) || !matches!(published, NameState::Absent);
        negative::negative(
            out,
            request,
            zone,
            apex_at,
            serial,
            exists,
            handler.edns_udp_size(),
        );
        return true;
    }
    if let Some(e) = request.edns {
        b.opt(handler.edns_udp_size(), e.dnssec_ok);
    }
    let len = b.finish();
    if len > limit {
        negative::truncated(
            out,
            request.header,
            q.raw,
            request.edns,
            handler.edns_udp_size(),
            true,
        );
    }
    true
}
