//! Zone transfer (AXFR, RFC 5936), streamed message by message over TCP:
//! the SOA first, then the static records, then every published CERT
//! record, then the SOA again. The first message carries the question;
//! each message holds up to [`MESSAGE_TARGET`] octets (one record larger
//! than that travels alone). The zone is a snapshot taken when the request
//! arrived, so a transfer is consistent with the serial it carries.

use std::sync::Arc;

use super::handler::authoritative;
use super::tsig::Signer;
use super::wire::{Builder, CERT_PKIX, Header, Owner, Rcode, TYPE_CERT, TYPE_SOA};
use super::zones::Zone;
use crate::core::{NameKey, Publication, Published, PublishedCerts};

/// Octets a transfer message aims for (NSD uses the same size).
pub const MESSAGE_TARGET: usize = 16 * 1024;

const CERT_HEADER: [u8; 5] = [(CERT_PKIX >> 8) as u8, CERT_PKIX as u8, 0, 0, 0];

/// Where a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    FirstSoa,
    Static(usize),
    Certs { name: usize, cert: usize },
    LastSoa,
    Done,
}

/// A zone transfer in progress.
pub struct Transfer {
    zone: Arc<Zone>,
    serial: u32,
    header: Header,
    question: Vec<u8>,
    names: Vec<(NameKey, PublishedCerts)>,
    /// The names as the view listed them, until [`Transfer::resolve`].
    listed: Vec<(NameKey, Published)>,
    step: Step,
    messages: usize,
    /// Signs each message when the request was TSIG-signed.
    signer: Option<Signer>,
}

impl Transfer {
    pub fn new(
        zone: Arc<Zone>,
        serial: u32,
        header: Header,
        question: Vec<u8>,
        listed: Vec<(NameKey, Published)>,
        signer: Option<Signer>,
    ) -> Transfer {
        // What the cache held needs no reading.
        let (names, listed) = if listed
            .iter()
            .all(|(_, p)| matches!(p, Published::Certificates(_)))
        {
            let names = listed
                .into_iter()
                .filter_map(|(name, p)| match p {
                    Published::Certificates(certs) => Some((name, certs)),
                    Published::Unresolved(_) => None,
                })
                .collect();
            (names, Vec::new())
        } else {
            (Vec::new(), listed)
        };
        Transfer {
            zone,
            serial,
            header,
            question,
            names,
            listed,
            step: Step::FirstSoa,
            messages: 0,
            signer,
        }
    }

    /// The serial the transfer carries.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Reads the certificates the cache does not hold (without filling
    /// it). Call once, before the first message.
    pub async fn resolve(&mut self, publication: &Publication) -> crate::core::Result<()> {
        if self.listed.is_empty() {
            return Ok(());
        }
        let listed = std::mem::take(&mut self.listed);
        self.names = publication.resolve_all(listed).await?;
        Ok(())
    }

    /// Writes the next message into `out`; false when the transfer is complete.
    pub fn next_message(&mut self, out: &mut Vec<u8>) -> bool {
        if self.step == Step::Done {
            return false;
        }
        let question = (self.messages == 0).then_some(self.question.as_slice());
        let mut b = Builder::new(out, self.header, authoritative(Rcode::NoError), question);
        let mut records = 0usize;
        let zone = self.zone.clone();
        let apex = zone.apex.as_bytes();
        loop {
            let fits =
                |b: &Builder<'_>, size: usize| records == 0 || b.written() + size <= MESSAGE_TARGET;
            match self.step {
                Step::FirstSoa | Step::LastSoa => {
                    let (names, numbers) = zone.soa_rdata(self.serial);
                    let size = apex.len() + 11 + names.len() + numbers.len();
                    if !fits(&b, size) {
                        break;
                    }
                    b.answer(Owner::Key(apex), TYPE_SOA, zone.soa_ttl, &[names, &numbers]);
                    records += 1;
                    self.step = match self.step {
                        Step::FirstSoa => Step::Static(0),
                        _ => Step::Done,
                    };
                    if self.step == Step::Done {
                        break;
                    }
                }
                Step::Static(i) => {
                    let Some(r) = zone.records.get(i) else {
                        self.step = Step::Certs { name: 0, cert: 0 };
                        continue;
                    };
                    let rdata = r.data.wire();
                    let size = r.owner.as_bytes().len() + 11 + rdata.len();
                    if !fits(&b, size) {
                        break;
                    }
                    b.answer(
                        Owner::Key(r.owner.as_bytes()),
                        r.data.rtype(),
                        r.ttl,
                        &[&rdata],
                    );
                    records += 1;
                    self.step = Step::Static(i + 1);
                }
                Step::Certs { name, cert } => {
                    let Some((owner, certs)) = self.names.get(name) else {
                        self.step = Step::LastSoa;
                        continue;
                    };
                    let Some(der) = certs.get(cert) else {
                        self.step = Step::Certs {
                            name: name + 1,
                            cert: 0,
                        };
                        continue;
                    };
                    let size = owner.as_bytes().len() + 11 + CERT_HEADER.len() + der.len();
                    if size > usize::from(u16::MAX) - 512 {
                        // Cannot travel in one message; such a certificate is not served.
                        self.step = Step::Certs {
                            name,
                            cert: cert + 1,
                        };
                        continue;
                    }
                    if !fits(&b, size) {
                        break;
                    }
                    b.answer(
                        Owner::Key(owner.as_bytes()),
                        TYPE_CERT,
                        zone.ttl,
                        &[&CERT_HEADER, der],
                    );
                    records += 1;
                    self.step = Step::Certs {
                        name,
                        cert: cert + 1,
                    };
                }
                Step::Done => break,
            }
        }
        b.finish();
        if let Some(signer) = &mut self.signer {
            signer.sign(out);
        }
        self.messages += 1;
        true
    }
}
