//! Signed policy events: the canonical encoding (the same rules as every
//! signed federation object, `federation::encoding`), signing by the
//! owner, and decoding with the signature checked.
//!
//! ```text
//! event  := "ccdir/policy-event/v1" policy:str owner:key version:u64
//!           prev:hash time:time op:u8 op-body sig:sig
//! create := kind:u8 (1 deny-list, 2 allow-list) title:str description:str   (op 1)
//! list   := subject:str reason:str expires:opt<time>                         (op 2)
//! delist := subject:str reason:str                                           (op 3)
//! ```
//!
//! `opt<time>` is `0x00`, or `0x01` and the time. `sig` is Ed25519 by
//! `owner` over every preceding octet; an event's hash is SHA-256 of all
//! of its octets, signature included, and is the next event's `prev`.
//! Version 1 is the create event, with `prev` all zeros; subjects are in
//! canonical form (`Subject::to_string`), or the event is refused.

use chrono::{DateTime, SubsecRound, Utc};

use crate::domain::{DomainError, EventFacts, PolicyId, PolicyKind, PolicyOp, Subject};
use crate::federation::encoding::{Reader, Writer};
use crate::federation::{Hash, Key, sha256};
use crate::pki::{NodeKey, verify_ed25519};

/// The magic that starts an event.
pub const EVENT_MAGIC: &[u8] = b"ccdir/policy-event/v1";
/// The largest event accepted (a reason and a description at their limits
/// fit easily).
pub const MAX_EVENT_BYTES: usize = 8 * 1024;

/// Why event bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not an event: truncated, trailing bytes, bad field.
    #[error("malformed policy event: {0}")]
    Malformed(String),
    /// A field breaks a rule (subject form, sizes, version 1 not a create).
    #[error("invalid policy event: {0}")]
    Invalid(String),
    /// The owner's signature does not verify.
    #[error("the signature of policy event {policy} version {version} does not verify")]
    BadSignature { policy: String, version: u64 },
}

impl From<DomainError> for EventError {
    fn from(e: DomainError) -> Self {
        EventError::Invalid(e.to_string())
    }
}

/// An event's content, before or after signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEvent {
    pub policy: PolicyId,
    /// The owner key: it signs every event of the policy.
    pub owner: Key,
    pub version: u64,
    pub prev: Hash,
    /// When the owner signed it (microseconds).
    pub time: DateTime<Utc>,
    pub op: PolicyOp,
}

/// An event with its owner's signature, as it travels: the bytes are the
/// evidence and are never re-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEvent {
    pub event: PolicyEvent,
    bytes: Vec<u8>,
    hash: Hash,
}

fn kind_code(kind: PolicyKind) -> u8 {
    match kind {
        PolicyKind::DenyList => 1,
        PolicyKind::AllowList => 2,
    }
}

impl PolicyEvent {
    fn check(&self) -> Result<(), EventError> {
        self.op.validate()?;
        let create = matches!(self.op, PolicyOp::Create { .. });
        if create != (self.version == 1) {
            return Err(EventError::Invalid(
                "version 1 is the create event, and only version 1".into(),
            ));
        }
        if self.version == 1 && self.prev != Hash::ZERO {
            return Err(EventError::Invalid(
                "the create event has an all-zero previous hash".into(),
            ));
        }
        Ok(())
    }

    /// Encodes and signs; `key` must be the owner.
    pub fn sign(mut self, key: &NodeKey) -> Result<SignedEvent, EventError> {
        if Key(key.public_key_bytes()) != self.owner {
            return Err(EventError::Invalid(
                "an event is signed by the owner it names".into(),
            ));
        }
        self.time = self.time.trunc_subsecs(6);
        self.check()?;
        let mut w = Writer::new(EVENT_MAGIC);
        w.str(self.policy.as_str())
            .key(&self.owner)
            .u64(self.version)
            .hash(&self.prev)
            .time(self.time);
        match &self.op {
            PolicyOp::Create {
                kind,
                title,
                description,
            } => {
                w.u8(1).u8(kind_code(*kind)).str(title).str(description);
            }
            PolicyOp::List {
                subject,
                reason,
                expires,
            } => {
                w.u8(2).str(&subject.to_string()).str(reason);
                match expires {
                    None => w.u8(0),
                    Some(t) => w.u8(1).time(*t),
                };
            }
            PolicyOp::Delist { subject, reason } => {
                w.u8(3).str(&subject.to_string()).str(reason);
            }
        }
        let sig = key.sign(w.as_bytes());
        w.raw(&sig);
        let bytes = w.into_bytes();
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(EventError::Invalid(format!(
                "an event may take at most {MAX_EVENT_BYTES} bytes"
            )));
        }
        // Times travel in microseconds; keep what a reader will decode.
        if let PolicyOp::List {
            expires: Some(t), ..
        } = &mut self.op
        {
            *t = t.trunc_subsecs(6);
        }
        Ok(SignedEvent {
            hash: sha256(&bytes),
            event: self,
            bytes,
        })
    }
}

fn subject(r: &mut Reader<'_>) -> Result<Subject, EventError> {
    let text = r
        .str("subject")
        .map_err(|e| EventError::Malformed(e.to_string()))?;
    let subject: Subject = text.parse()?;
    if subject.to_string() != text {
        return Err(EventError::Invalid(format!(
            "subject {text:?} is not in canonical form ({subject})"
        )));
    }
    Ok(subject)
}

impl SignedEvent {
    /// Decodes an event and verifies the owner's signature.
    pub fn decode(bytes: &[u8]) -> Result<SignedEvent, EventError> {
        Self::read(bytes, true)
    }

    /// Decodes an event this node verified when it accepted it (read back
    /// from its own database): the rules are checked, the signature is not
    /// verified again — feeds turn stored events into JSON on their path.
    pub fn decode_stored(bytes: &[u8]) -> Result<SignedEvent, EventError> {
        Self::read(bytes, false)
    }

    fn read(bytes: &[u8], verify: bool) -> Result<SignedEvent, EventError> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(EventError::Malformed(format!(
                "{} bytes is more than the {MAX_EVENT_BYTES} an event may take",
                bytes.len()
            )));
        }
        let m = |e: crate::federation::DecodeError| EventError::Malformed(e.to_string());
        let mut r = Reader::new(bytes, EVENT_MAGIC).map_err(m)?;
        let policy: PolicyId = r.str("policy").map_err(m)?.parse()?;
        let owner = r.key("owner").map_err(m)?;
        let version = r.u64("version").map_err(m)?;
        let prev = r.hash("prev").map_err(m)?;
        let time = r.time("time").map_err(m)?;
        let op = match r.u8("op").map_err(m)? {
            1 => {
                let kind = match r.u8("kind").map_err(m)? {
                    1 => PolicyKind::DenyList,
                    2 => PolicyKind::AllowList,
                    other => return Err(EventError::Malformed(format!("policy kind {other}"))),
                };
                PolicyOp::Create {
                    kind,
                    title: r.str("title").map_err(m)?.to_owned(),
                    description: r.str("description").map_err(m)?.to_owned(),
                }
            }
            2 => {
                let subject = subject(&mut r)?;
                let reason = r.str("reason").map_err(m)?.to_owned();
                let expires = match r.u8("expires").map_err(m)? {
                    0 => None,
                    1 => Some(r.time("expires").map_err(m)?),
                    _ => return Err(EventError::Malformed("expires: bad option".into())),
                };
                PolicyOp::List {
                    subject,
                    reason,
                    expires,
                }
            }
            3 => PolicyOp::Delist {
                subject: subject(&mut r)?,
                reason: r.str("reason").map_err(m)?.to_owned(),
            },
            other => return Err(EventError::Malformed(format!("operation {other}"))),
        };
        let signed_len = r.position();
        let sig = r.sig("signature").map_err(m)?;
        r.finish("event").map_err(m)?;
        let event = PolicyEvent {
            policy,
            owner,
            version,
            prev,
            time,
            op,
        };
        event.check()?;
        if verify {
            verify_ed25519(&owner.0, &bytes[..signed_len], &sig).map_err(|_| {
                EventError::BadSignature {
                    policy: event.policy.to_string(),
                    version,
                }
            })?;
        }
        Ok(SignedEvent {
            event,
            bytes: bytes.to_vec(),
            hash: sha256(bytes),
        })
    }

    /// The canonical bytes, signature included: the evidence.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// SHA-256 of [`SignedEvent::bytes`].
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// What [`crate::domain::judge`] needs.
    pub fn facts(&self) -> EventFacts {
        EventFacts {
            policy: self.event.policy.clone(),
            owner: self.event.owner.to_hex(),
            version: self.event.version,
            prev: self.event.prev.0,
            hash: self.hash.0,
            create: matches!(self.event.op, PolicyOp::Create { .. }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testkit::{Chain, owner};

    #[test]
    fn events_round_trip_and_chain() {
        let mut chain = Chain::new(owner(1), "direct-p1");
        let create = chain.create();
        let list = chain.list("domain:spam.example", "relays spam");
        let delist = chain.delist("domain:spam.example", "fixed");
        for e in [&create, &list, &delist] {
            let back = SignedEvent::decode(e.bytes()).unwrap();
            assert_eq!(&back, e);
            for cut in 0..e.bytes().len() {
                assert!(SignedEvent::decode(&e.bytes()[..cut]).is_err());
            }
            let mut long = e.bytes().to_vec();
            long.push(0);
            assert!(SignedEvent::decode(&long).is_err());
        }
        assert_eq!(list.event.prev, create.hash());
        assert_eq!(delist.event.version, 3);
    }

    #[test]
    fn a_flipped_bit_breaks_the_signature() {
        let mut chain = Chain::new(owner(1), "direct-p1");
        let e = chain.create();
        let mut b = e.bytes().to_vec();
        let n = b.len();
        b[n - 1] ^= 1;
        assert!(matches!(
            SignedEvent::decode(&b),
            Err(EventError::BadSignature { .. })
        ));
        assert!(
            SignedEvent::decode_stored(&b).is_ok(),
            "stored: not verified again"
        );
        // A different owner key in the header: the signature no longer fits it.
        let mut b = e.bytes().to_vec();
        let at = EVENT_MAGIC.len() + 4 + "direct-p1".len();
        b[at] ^= 1;
        assert!(matches!(
            SignedEvent::decode(&b),
            Err(EventError::BadSignature { .. })
        ));
    }

    /// Bytes from anywhere never panic the decoder: every event of a
    /// chain with octets overwritten at random, deterministically.
    #[test]
    fn mutated_events_are_refused_never_a_panic() {
        let mut chain = Chain::new(owner(2), "direct-p1");
        let events = [
            chain.create(),
            chain.list("addr:eve@mallory.example", "phishing"),
            chain.delist("addr:eve@mallory.example", "fixed"),
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for e in &events {
            for _ in 0..2000 {
                let mut b = e.bytes().to_vec();
                for _ in 0..1 + next() % 3 {
                    let at = (next() as usize) % b.len();
                    b[at] = next() as u8;
                }
                if b != e.bytes() {
                    assert!(
                        SignedEvent::decode(&b).is_err(),
                        "a changed event never verifies"
                    );
                }
            }
        }
    }

    #[test]
    fn rules_hold_at_signing_and_decoding() {
        let k = owner(1);
        let list_at_one = PolicyEvent {
            policy: "p".parse().unwrap(),
            owner: Key(k.public_key_bytes()),
            version: 1,
            prev: Hash::ZERO,
            time: Utc::now(),
            op: PolicyOp::Delist {
                subject: "domain:x.org".parse().unwrap(),
                reason: String::new(),
            },
        };
        assert!(matches!(
            list_at_one.clone().sign(&k),
            Err(EventError::Invalid(_))
        ));
        assert!(list_at_one.sign(&owner(2)).is_err(), "not the owner's key");
    }
}
