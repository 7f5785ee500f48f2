//! The request path: one framed message in, the answers out. Decodes the
//! BER (keeping what is needed to answer a request that does not decode:
//! its message id, its operation, its controls' criticality), checks
//! critical controls, and hands each operation to its file. Knows nothing
//! of sockets, so the grammar is tested (and fuzzed) in memory.

use std::net::IpAddr;
use std::sync::Arc;

use ldap3_lber::common::TagClass;
use ldap3_lber::parse::Parser;
use ldap3_lber::structure::{PL, StructureTag};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindResponse, LdapExtendedResponse, LdapMsg, LdapOp, LdapResult, LdapResultCode,
};

use super::Ldap;
use super::ber::EncodedEntries;
use super::bind::bind;
use super::error::LdapError;
use super::extended::{After, extended};
use super::rootdse::{CONTROL_MANAGE_DSA_IT, CONTROL_PAGED_RESULTS};
use super::search::{PagedRequest, error_code, search};
use crate::domain::Caller;

/// Nesting depth of BER the decoder follows (filters nest; nothing sane nests deeper).
const MAX_BER_DEPTH: usize = 64;
/// The notice of disconnection (RFC 4511 §4.4.1).
const NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";

/// What the connection does after sending a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Read the next request.
    Continue,
    /// Run the TLS handshake (StartTLS was accepted), then read on.
    StartTls,
    /// Close the connection (unbind, or a request that cannot be answered).
    Close,
}

/// The answers to one request.
#[derive(Debug)]
pub struct Reply {
    /// A search's result entries, encoded; sent before `messages`.
    pub entries: Option<EncodedEntries>,
    pub messages: Vec<LdapMsg>,
    pub then: Then,
}

/// One connection's protocol state.
pub struct Session {
    ldap: Arc<Ldap>,
    peer: IpAddr,
    caller: Caller,
    bound_dn: String,
    secure: bool,
}

/// A decoded frame.
enum Decoded {
    /// A request, and whether it carries a critical control we do not support.
    Message {
        msg: Box<LdapMsg>,
        unsupported_critical: Option<String>,
    },
    /// Valid BER with an LDAPMessage envelope whose operation does not decode.
    BadRequest { msgid: i32, op: u64 },
    /// Not an LDAPMessage at all.
    Garbage,
}

fn ldap_result(code: LdapResultCode, message: String) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message,
        referral: Vec::new(),
    }
}

/// The response a request operation (by application tag) gets for a failure,
/// or `None` for operations that have no response (unbind, abandon) and
/// tags that are no request at all.
fn failure_response(msgid: i32, op: u64, code: LdapResultCode, message: String) -> Option<LdapMsg> {
    let res = ldap_result(code, message);
    let op = match op {
        0 => LdapOp::BindResponse(LdapBindResponse {
            res,
            saslcreds: None,
        }),
        3 => LdapOp::SearchResultDone(res),
        6 => LdapOp::ModifyResponse(res),
        8 => LdapOp::AddResponse(res),
        10 => LdapOp::DelResponse(res),
        12 => LdapOp::ModifyDNResponse(res),
        14 => LdapOp::CompareResult(res),
        23 => LdapOp::ExtendedResponse(LdapExtendedResponse {
            res,
            name: None,
            value: None,
        }),
        _ => return None,
    };
    Some(LdapMsg {
        msgid,
        op,
        ctrl: Vec::new(),
    })
}

/// The application tag of a decoded operation.
fn op_tag(op: &LdapOp) -> u64 {
    match op {
        LdapOp::BindRequest(_) => 0,
        LdapOp::UnbindRequest => 2,
        LdapOp::SearchRequest(_) => 3,
        LdapOp::ModifyRequest(_) => 6,
        LdapOp::AddRequest(_) => 8,
        LdapOp::DelRequest(_) => 10,
        LdapOp::ModifyDNRequest(_) => 12,
        LdapOp::CompareRequest(_) => 14,
        LdapOp::AbandonRequest(_) => 16,
        LdapOp::ExtendedRequest(_) => 23,
        // Responses are not requests: no answer exists for them.
        _ => u64::MAX,
    }
}

/// A notice of disconnection with `code`.
pub fn notice_of_disconnection(code: LdapResultCode, message: &str) -> LdapMsg {
    LdapMsg {
        msgid: 0,
        op: LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: ldap_result(code, message.to_owned()),
            name: Some(NOTICE_OF_DISCONNECTION.to_owned()),
            value: None,
        }),
        ctrl: Vec::new(),
    }
}

fn ber_integer(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    let mut v: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for b in bytes {
        v = (v << 8) | i64::from(*b);
    }
    Some(v)
}

/// The OID and criticality of each control in a raw `[0] Controls`.
fn raw_controls(tag: &StructureTag) -> Vec<(String, bool)> {
    let PL::C(controls) = &tag.payload else {
        return Vec::new();
    };
    controls
        .iter()
        .filter_map(|control| {
            let PL::C(parts) = &control.payload else {
                return None;
            };
            let oid = match parts.first().map(|p| &p.payload) {
                Some(PL::P(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
                _ => return None,
            };
            let critical = parts.get(1).is_some_and(|p| {
                p.class == TagClass::Universal
                    && p.id == 1
                    && matches!(&p.payload, PL::P(b) if b.first().is_some_and(|x| *x != 0))
            });
            Some((oid, critical))
        })
        .collect()
}

/// Decodes one complete BER element.
fn decode(frame: &[u8]) -> Decoded {
    let mut parser = Parser::new(MAX_BER_DEPTH);
    let tag = match parser.parse(frame) {
        Ok(([], tag)) => tag,
        _ => return Decoded::Garbage,
    };
    let PL::C(parts) = &tag.payload else {
        return Decoded::Garbage;
    };
    if tag.class != TagClass::Universal || tag.id != 16 || !(2..=3).contains(&parts.len()) {
        return Decoded::Garbage;
    }
    let msgid = match &parts[0] {
        StructureTag {
            class: TagClass::Universal,
            id: 2,
            payload: PL::P(bytes),
        } => match ber_integer(bytes).and_then(|v| i32::try_from(v).ok()) {
            Some(id) if id >= 0 => id,
            _ => return Decoded::Garbage,
        },
        _ => return Decoded::Garbage,
    };
    if parts[1].class != TagClass::Application {
        return Decoded::Garbage;
    }
    let op = parts[1].id;
    let unsupported_critical = parts
        .get(2)
        .map(raw_controls)
        .unwrap_or_default()
        .into_iter()
        .find(|(oid, critical)| {
            *critical && oid != CONTROL_PAGED_RESULTS && oid != CONTROL_MANAGE_DSA_IT
        })
        .map(|(oid, _)| oid);
    match LdapMsg::try_from(tag) {
        Ok(msg) => Decoded::Message {
            msg: Box::new(msg),
            unsupported_critical,
        },
        Err(_) => Decoded::BadRequest { msgid, op },
    }
}

impl Session {
    /// A fresh, anonymous session for a client at `peer`; `secure` when the
    /// connection runs TLS already (LDAPS).
    pub fn new(ldap: Arc<Ldap>, peer: IpAddr, secure: bool) -> Session {
        Session {
            ldap,
            peer,
            caller: Caller::Anonymous,
            bound_dn: String::new(),
            secure,
        }
    }

    /// Records that the TLS handshake after StartTLS succeeded.
    pub fn tls_started(&mut self) {
        self.secure = true;
    }

    /// Answers one framed message.
    /// Answers one request frame and counts it in the node's metrics.
    pub async fn respond(&mut self, frame: &[u8]) -> Reply {
        let started = std::time::Instant::now();
        let answer = self.answer(frame).await;
        let metrics = self.ldap.directory.metrics();
        metrics
            .ldap_duration
            .observe(started.elapsed().as_secs_f64());
        let (op, code, entries) = outcome(&answer);
        metrics
            .ldap_operations
            .get_or_create(&crate::telemetry::LdapLabels { op, code })
            .inc();
        if entries > 0 {
            metrics.ldap_entries_returned.inc_by(entries);
        }
        answer
    }

    async fn answer(&mut self, frame: &[u8]) -> Reply {
        let reply = |messages, then| Reply {
            entries: None,
            messages,
            then,
        };
        let close = |message: &str| {
            reply(
                vec![notice_of_disconnection(
                    LdapResultCode::ProtocolError,
                    message,
                )],
                Then::Close,
            )
        };
        let (msg, unsupported) = match decode(frame) {
            Decoded::Garbage => return close("the message is not an LDAPMessage"),
            Decoded::BadRequest { msgid, op } => {
                let e = LdapError::Protocol("the request could not be decoded".into());
                return match failure_response(msgid, op, error_code(&e), e.public_message()) {
                    Some(answer) => reply(vec![answer], Then::Continue),
                    None => close("unknown or undecodable operation"),
                };
            }
            Decoded::Message {
                msg,
                unsupported_critical,
            } => (msg, unsupported_critical),
        };
        let LdapMsg { msgid, op, ctrl } = *msg;
        if let Some(oid) = unsupported {
            // RFC 4511 §4.1.11: a critical control we cannot honour fails the operation.
            return match failure_response(
                msgid,
                op_tag(&op),
                LdapResultCode::UnavailableCriticalExtension,
                format!("critical control {oid} is not supported"),
            ) {
                Some(answer) => reply(vec![answer], Then::Continue),
                None => reply(Vec::new(), Then::Continue),
            };
        }
        let failure = |e: LdapError, op: u64| {
            failure_response(msgid, op, error_code(&e), e.public_message())
                .into_iter()
                .collect::<Vec<_>>()
        };
        match op {
            LdapOp::BindRequest(request) => {
                let answer = match bind(&self.ldap, self.peer, &request).await {
                    Ok((caller, dn)) => {
                        self.caller = caller;
                        self.bound_dn = dn;
                        LdapResult {
                            code: LdapResultCode::Success,
                            matcheddn: String::new(),
                            message: String::new(),
                            referral: Vec::new(),
                        }
                    }
                    Err(e) => {
                        // RFC 4511 §4.2.1: a failed bind leaves the connection anonymous.
                        self.caller = Caller::Anonymous;
                        self.bound_dn.clear();
                        ldap_result(error_code(&e), e.public_message())
                    }
                };
                reply(
                    vec![LdapMsg {
                        msgid,
                        op: LdapOp::BindResponse(LdapBindResponse {
                            res: answer,
                            saslcreds: None,
                        }),
                        ctrl: Vec::new(),
                    }],
                    Then::Continue,
                )
            }
            LdapOp::UnbindRequest => reply(Vec::new(), Then::Close),
            LdapOp::SearchRequest(request) => {
                let paged = ctrl.iter().find_map(|c| match c {
                    LdapControl::SimplePagedResults { size, cookie } => Some(PagedRequest {
                        size: *size,
                        cookie: cookie.clone(),
                    }),
                    _ => None,
                });
                let (entries, done) = search(
                    &self.ldap,
                    &self.caller,
                    self.secure,
                    msgid,
                    &request,
                    paged.as_ref(),
                )
                .await;
                Reply {
                    entries: Some(entries),
                    messages: vec![done],
                    then: Then::Continue,
                }
            }
            op @ (LdapOp::AddRequest(_)
            | LdapOp::ModifyRequest(_)
            | LdapOp::DelRequest(_)
            | LdapOp::ModifyDNRequest(_)) => reply(
                failure(
                    LdapError::Unsupported(
                        "the directory is read-only over LDAP; write through the REST API",
                    ),
                    op_tag(&op),
                ),
                Then::Continue,
            ),
            LdapOp::CompareRequest(_) => reply(
                failure(LdapError::Unsupported("compare is not supported"), 14),
                Then::Continue,
            ),
            // Requests are answered in order and at once: nothing to abandon.
            LdapOp::AbandonRequest(_) => reply(Vec::new(), Then::Continue),
            LdapOp::ExtendedRequest(request) => {
                let (answer, after) = extended(
                    &request,
                    self.ldap.tls.is_some(),
                    self.secure,
                    &self.bound_dn,
                );
                reply(
                    vec![LdapMsg {
                        msgid,
                        op: LdapOp::ExtendedResponse(answer),
                        ctrl: Vec::new(),
                    }],
                    match after {
                        After::StartTls => Then::StartTls,
                        After::Continue => Then::Continue,
                    },
                )
            }
            _ => close("a client sent a response, not a request"),
        }
    }
}

/// What a reply tells the metrics: the operation it ends, its result code
/// (0 when it carries none, as after an unbind) and the entries it sent.
fn outcome(reply: &Reply) -> (&'static str, u32, u64) {
    let entries = reply.entries.as_ref().map_or(0, |e| e.count) as u64;
    let Some(last) = reply.messages.last() else {
        return ("unbind-or-abandon", 0, 0);
    };
    let (op, result) = match &last.op {
        LdapOp::BindResponse(r) => ("bind", Some(&r.res)),
        LdapOp::SearchResultDone(r) => ("search", Some(r)),
        LdapOp::ExtendedResponse(r) if last.msgid == 0 => ("disconnect", Some(&r.res)),
        LdapOp::ExtendedResponse(r) => ("extended", Some(&r.res)),
        LdapOp::ModifyResponse(r)
        | LdapOp::AddResponse(r)
        | LdapOp::DelResponse(r)
        | LdapOp::ModifyDNResponse(r)
        | LdapOp::CompareResult(r) => ("write-or-compare", Some(r)),
        _ => ("other", None),
    };
    // The enum carries the RFC 4511 §4.1.9 numbers as discriminants.
    let code = result.map_or(0, |r| r.code.clone() as u32);
    (op, code, entries)
}
