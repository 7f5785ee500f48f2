//! Deciding whether an authentic record may take effect: who wrote it (the
//! envelope's author, or the author of a relayed record), whether its
//! author's key is the one in force, whether it repeats what was already
//! applied, and whether an unexpired chain of delegations from the pinned
//! root covers what it speaks about.
//!
//! Certificates are checked by the caller (they need the node's trust
//! anchors); everything else about acceptance is decided here.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::error::{RejectCode, Rejection};
use super::grant::{GrantBook, SignedGrant};
use super::record::{Body, Record, body_type};
use super::types::{Hash, Key};

/// What a node remembers about an author whose records it has applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorState {
    /// The author's log identity.
    pub log: Key,
    /// The key its records must be signed with now.
    pub signer: Key,
    /// Every key the author has used, the log key first.
    pub lineage: Vec<Key>,
    /// The last of its sequence numbers applied here.
    pub last_seq: u64,
}

impl AuthorState {
    /// An author seen for the first time.
    pub fn new(log: Key) -> AuthorState {
        AuthorState {
            log,
            signer: log,
            lineage: vec![log],
            last_seq: 0,
        }
    }
}

/// A record that may take effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// What it says (never a relay).
    pub body: Body,
    /// The delegations that authorise it, root first (empty when the
    /// author is the root or the body names no domain).
    pub chain: Vec<Hash>,
}

/// The judgement on one record of a child's log.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The authored record: the envelope itself, or the record it relays.
    /// `None` when a relay could not be decoded.
    pub authored: Option<Record>,
    /// Its author (the envelope's log when the relay did not decode).
    pub author: Key,
    /// The author's sequence number (0 when unknown).
    pub author_seq: u64,
    /// Whether it may take effect.
    pub outcome: Result<Accepted, Rejection>,
}

/// Judges the records of one page in order, carrying what earlier records
/// change (new grants, rotated keys, sequence numbers) to later ones.
#[derive(Debug)]
pub struct Evaluator {
    book: GrantBook,
    authors: HashMap<Key, AuthorState>,
    new_grants: Vec<SignedGrant>,
    now: DateTime<Utc>,
}

impl Evaluator {
    /// An evaluator over the grants known so far and the stored states of
    /// the authors the page may concern.
    pub fn new(book: GrantBook, authors: Vec<AuthorState>, now: DateTime<Utc>) -> Evaluator {
        Evaluator {
            book,
            authors: authors.into_iter().map(|a| (a.log, a)).collect(),
            new_grants: Vec::new(),
            now,
        }
    }

    /// The author states after the records evaluated so far.
    pub fn authors(&self) -> impl Iterator<Item = &AuthorState> {
        self.authors.values()
    }

    /// Grants first seen in this page.
    pub fn new_grants(&self) -> &[SignedGrant] {
        &self.new_grants
    }

    /// The grant book with this page's grants added.
    pub fn book(&self) -> &GrantBook {
        &self.book
    }

    /// Judges one record of a child's log (already chain-checked).
    pub fn evaluate(&mut self, envelope: &Record) -> Evaluation {
        let authored = if envelope.body_type == body_type::RELAY {
            match envelope.body() {
                Ok(Body::Relay(inner)) => *inner,
                other => {
                    let rejection = other.err().unwrap_or_else(|| {
                        Rejection::new(RejectCode::InvalidRecord, "a relay that carries no record")
                    });
                    return Evaluation {
                        authored: None,
                        author: envelope.header.log,
                        author_seq: 0,
                        outcome: Err(rejection),
                    };
                }
            }
        } else {
            envelope.clone()
        };
        let author = authored.header.log;
        let author_seq = authored.header.seq;
        let outcome = self.judge(&authored);
        Evaluation {
            authored: Some(authored),
            author,
            author_seq,
            outcome,
        }
    }

    fn judge(&mut self, record: &Record) -> Result<Accepted, Rejection> {
        let h = &record.header;
        let state = self
            .authors
            .entry(h.log)
            .or_insert_with(|| AuthorState::new(h.log));
        if h.seq <= state.last_seq {
            return Err(Rejection::new(
                RejectCode::Replayed,
                format!(
                    "record {} of {} was applied before (last applied {})",
                    h.seq,
                    h.log.short(),
                    state.last_seq
                ),
            ));
        }
        if h.signer != state.signer {
            return Err(Rejection::new(
                RejectCode::WrongSigner,
                format!(
                    "record {} of {} is signed by {}; its key is {}",
                    h.seq,
                    h.log.short(),
                    h.signer.short(),
                    state.signer.short()
                ),
            ));
        }
        state.last_seq = h.seq;
        let lineage = state.lineage.clone();
        let body = record.body()?;
        let chain = match &body {
            Body::EntryUpsert(p) => self.authorise(&lineage, p.entry.address.domain())?,
            Body::EntryRemoval(a) => self.authorise(&lineage, a.domain())?,
            Body::OrganisationUpsert(o) => {
                if o.domains.is_empty() {
                    return Err(Rejection::new(
                        RejectCode::InvalidRecord,
                        format!(
                            "organisation {} names no domain; a published organisation must",
                            o.id
                        ),
                    ));
                }
                let mut chain = Vec::new();
                for d in &o.domains {
                    chain = self.authorise(&lineage, d)?;
                }
                chain
            }
            Body::OrganisationRemoval(_) => Vec::new(),
            Body::Delegation(grants) => {
                for g in grants {
                    if self.book.add(g.clone()) {
                        self.new_grants.push(g.clone());
                    }
                }
                Vec::new()
            }
            Body::KeyRotation(new_key) => {
                if let Some(state) = self.authors.get_mut(&h.log) {
                    state.signer = *new_key;
                    if !state.lineage.contains(new_key) {
                        state.lineage.push(*new_key);
                    }
                }
                Vec::new()
            }
            // Authorised by the policy owner's signature, which the
            // receiver checks; no domain delegation is involved.
            Body::PolicyEvent(_) => Vec::new(),
            Body::Relay(_) => {
                return Err(Rejection::new(
                    RejectCode::InvalidRecord,
                    "a relay may not carry a relay",
                ));
            }
        };
        Ok(Accepted { body, chain })
    }

    fn authorise(
        &self,
        lineage: &[Key],
        domain: &crate::domain::DomainName,
    ) -> Result<Vec<Hash>, Rejection> {
        Ok(self
            .book
            .authorise(lineage, domain, self.now)?
            .into_iter()
            .map(SignedGrant::hash)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::grant::Grant;
    use crate::federation::record::EntryPublication;
    use crate::federation::testkit::{Log, key, sample_entry, t};
    use crate::federation::types::Key;
    use crate::pki::NodeKey;

    fn k(n: &NodeKey) -> Key {
        Key(n.public_key_bytes())
    }

    fn grant(issuer: &NodeKey, subject: &NodeKey, domain: &str, days: i64) -> SignedGrant {
        Grant::new(
            k(issuer),
            k(subject),
            vec![domain.parse().unwrap()],
            t(0),
            t(days * 86_400),
        )
        .unwrap()
        .sign(issuer)
        .unwrap()
    }

    fn upsert(log: &mut Log, address: &str) -> Record {
        let entry = sample_entry(&log.id(), address);
        log.append(&Body::EntryUpsert(Box::new(EntryPublication {
            entry,
            certificates: vec![],
        })))
    }

    #[test]
    fn relayed_records_are_judged_by_their_author() {
        let (root, inter, org) = (key(1), key(2), key(3));
        let g1 = grant(&root, &inter, "example.org", 30);
        let g2 = grant(&inter, &org, "cardio.example.org", 30);
        let mut org_log = Log::new(key(3));
        let d = org_log.append(&Body::Delegation(vec![g1.clone(), g2.clone()]));
        let a = upsert(&mut org_log, "alice@cardio.example.org");
        let evil = upsert(&mut org_log, "eve@neuro.example.org");

        let mut inter_log = Log::new(key(2));
        let relay = |log: &mut Log, r: &Record| log.append(&Body::Relay(Box::new(r.clone())));
        let rd = relay(&mut inter_log, &d);
        let ra = relay(&mut inter_log, &a);
        let re = relay(&mut inter_log, &evil);
        let ra_again = relay(&mut inter_log, &a);

        let mut ev = Evaluator::new(GrantBook::new(k(&root)), vec![], t(60));
        let e = ev.evaluate(&rd);
        assert_eq!(e.author, k(&org));
        assert!(e.outcome.is_ok());
        assert_eq!(ev.new_grants().len(), 2);
        let e = ev.evaluate(&ra);
        let ok = e.outcome.unwrap();
        assert_eq!(ok.chain, vec![g1.hash(), g2.hash()]);
        assert_eq!(e.author_seq, 2);
        let e = ev.evaluate(&re);
        assert_eq!(e.outcome.unwrap_err().code, RejectCode::OutOfDelegation);
        let e = ev.evaluate(&ra_again);
        assert_eq!(e.outcome.unwrap_err().code, RejectCode::Replayed);
        let st = ev.authors().find(|a| a.log == k(&org)).unwrap();
        assert_eq!(st.last_seq, 3);

        // Later, after the delegation expired.
        let mut org_log2 = Log::new(key(3));
        org_log2.append(&Body::Delegation(vec![g1, g2]));
        let late = upsert(&mut org_log2, "bob@cardio.example.org");
        let mut ev2 = Evaluator::new(ev.book().clone(), vec![], t(31 * 86_400));
        let e = ev2.evaluate(&late);
        assert_eq!(e.outcome.unwrap_err().code, RejectCode::DelegationExpired);
    }

    #[test]
    fn rotation_moves_authority_to_the_new_key() {
        let root = key(1);
        let g = grant(&root, &key(3), "cardio.example.org", 30);
        let mut log = Log::new(key(3));
        log.append(&Body::Delegation(vec![g]));
        log.rotate(key(4));
        let a = upsert(&mut log, "alice@cardio.example.org");
        let mut ev = Evaluator::new(GrantBook::new(k(&root)), vec![], t(60));
        let mut all = Log::new(key(3));
        for r in [
            all.append(&Body::Delegation(vec![grant(
                &root,
                &key(3),
                "cardio.example.org",
                30,
            )])),
            all.rotate(key(4)),
        ] {
            assert!(ev.evaluate(&r).outcome.is_ok());
        }
        assert!(
            ev.evaluate(&a).outcome.is_ok(),
            "new key inherits the grant"
        );
        let mut stale = Log::new(key(3));
        for _ in 0..4 {
            stale.removal("x@cardio.example.org");
        }
        let e = ev.evaluate(&stale.removal("x@cardio.example.org"));
        assert_eq!(e.outcome.unwrap_err().code, RejectCode::WrongSigner);
    }
}
