//! Answers that carry no data: errors (FORMERR, NOTIMP, REFUSED, NOTAUTH,
//! BADVERS), truncated answers, and the two negative answers of a hosted
//! zone (RFC 2308): NODATA (NOERROR, empty answer, SOA in authority) for a
//! name that exists without the type asked for, NXDOMAIN (with the SOA) for
//! a name that does not exist at all — not even as an empty non-terminal.

use super::handler::authoritative;
use super::wire::{Builder, Edns, Header, Owner, Rcode, Request, ResponseFlags, TYPE_SOA};
use super::zones::Zone;

/// An error response: the question echoed when there is one, our OPT when
/// the request had EDNS (always for BADVERS, whose code needs it). Not
/// authoritative: the error is about the request, not about zone data.
pub fn error(
    out: &mut Vec<u8>,
    header: Header,
    question: Option<&[u8]>,
    edns: Option<Edns>,
    rcode: Rcode,
    udp_size: u16,
) {
    let flags = ResponseFlags {
        authoritative: false,
        truncated: false,
        rcode,
    };
    let mut b = Builder::new(out, header, flags, question);
    if edns.is_some() || rcode == Rcode::BadVers {
        b.opt(udp_size, edns.is_some_and(|e| e.dnssec_ok));
    }
    b.finish();
}

/// A truncated answer: header, question and OPT only (RFC 2181 §9: never
/// part of an RRset), so the client asks again over TCP.
pub fn truncated(
    out: &mut Vec<u8>,
    header: Header,
    question: &[u8],
    edns: Option<Edns>,
    udp_size: u16,
    authoritative: bool,
) {
    let flags = ResponseFlags {
        authoritative,
        truncated: true,
        rcode: Rcode::NoError,
    };
    let mut b = Builder::new(out, header, flags, Some(question));
    if let Some(e) = edns {
        b.opt(udp_size, e.dnssec_ok);
    }
    b.finish();
}

/// Completes a negative answer already started with an empty answer
/// section: the zone's SOA in authority, its owner a pointer to the apex
/// inside the question name. `exists` picks NODATA over NXDOMAIN.
pub fn negative(
    out: &mut Vec<u8>,
    request: &Request<'_>,
    zone: &Zone,
    apex_at: usize,
    serial: u32,
    exists: bool,
    udp_size: u16,
) {
    let (header, edns) = (request.header, request.edns);
    let question = request.question.as_ref().map(|q| q.raw);
    let rcode = if exists {
        Rcode::NoError
    } else {
        Rcode::NxDomain
    };
    let mut b = Builder::new(out, header, authoritative(rcode), question);
    let (names, numbers) = zone.soa_rdata(serial);
    b.authority(
        Owner::Pointer(super::wire::QUESTION_AT + apex_at),
        TYPE_SOA,
        zone.negative_ttl(),
        &[names, &numbers],
    );
    if let Some(e) = edns {
        b.opt(udp_size, e.dnssec_ok);
    }
    b.finish();
}
