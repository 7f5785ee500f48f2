//! TSIG (RFC 8945) for zone transfers, HMAC-SHA256 only: when `dns.tsig`
//! is set, an AXFR/IXFR request must be signed with that key (and come from
//! an allowed address), and every message of the transfer is signed in
//! turn, each MAC chained to the one before (§5.3.1).
//!
//! A request that is unsigned, signed with another key or algorithm, with
//! a wrong MAC or a time outside its fudge is answered NOTAUTH, unsigned
//! (the TSIG error code is left out: such clients only need to know it
//! failed, and the log says why).

use std::sync::Arc;

use ring::hmac;

use super::wire::{self, TYPE_TSIG};
use crate::core::NameKey;

/// The one algorithm we speak.
const HMAC_SHA256: &[u8] = b"\x0bhmac-sha256";
const CLASS_ANY: u16 = 255;

/// A configured key.
pub struct TsigKey {
    name: NameKey,
    key: hmac::Key,
}

/// Why a signed request was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigFailure {
    /// No TSIG record.
    Unsigned,
    /// Another key name or algorithm (BADKEY).
    BadKey,
    /// The MAC does not verify (BADSIG).
    BadSig,
    /// Signed too long ago or in the future (BADTIME).
    BadTime,
    /// The record cannot be read.
    Malformed,
}

/// A verified request: what signing the answers needs.
#[derive(Clone)]
pub struct Signed {
    request_mac: Vec<u8>,
    original_id: u16,
}

/// Signs the messages of one transfer.
pub struct Signer {
    key: Arc<TsigKey>,
    prior_mac: Vec<u8>,
    original_id: u16,
    first: bool,
    now: u64,
}

impl TsigKey {
    /// `name` as a DNS name, `secret` in base64. None when either is invalid.
    pub fn new(name: &str, secret: &str) -> Option<TsigKey> {
        use base64::Engine;
        let name = NameKey::parse_dotted(name).filter(|n| n.label_count() > 0)?;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .ok()
            .filter(|s| !s.is_empty())?;
        Some(TsigKey {
            name,
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        })
    }

    /// A key nothing verifies against (stands in for an invalid configuration).
    pub fn unusable() -> TsigKey {
        let mut random = [0u8; 32];
        let _ = getrandom::fill(&mut random);
        TsigKey {
            name: NameKey::root(),
            key: hmac::Key::new(hmac::HMAC_SHA256, &random),
        }
    }

    /// Checks the TSIG record at `tsig_at` of `msg` at Unix time `now`.
    pub fn verify(
        &self,
        msg: &[u8],
        tsig_at: Option<usize>,
        now: u64,
    ) -> Result<Signed, TsigFailure> {
        let at = tsig_at.ok_or(TsigFailure::Unsigned)?;
        let rr = wire::skip_record(msg, at).ok_or(TsigFailure::Malformed)?;
        if rr.rtype != TYPE_TSIG {
            return Err(TsigFailure::Malformed);
        }
        let key_name = read_name(msg, at, rr.name_end).ok_or(TsigFailure::Malformed)?;
        let rdata = msg.get(rr.rdata.clone()).ok_or(TsigFailure::Malformed)?;
        let fields = TsigFields::read(rdata).ok_or(TsigFailure::Malformed)?;
        if key_name != self.name.as_bytes() || !fields.algorithm.eq_ignore_ascii_case(HMAC_SHA256) {
            return Err(TsigFailure::BadKey);
        }
        // The message as signed: without the TSIG record, ARCOUNT one less,
        // and the original id.
        let mut signed = msg.get(..at).ok_or(TsigFailure::Malformed)?.to_vec();
        let arcount = u16::from_be_bytes([signed[10], signed[11]]).saturating_sub(1);
        signed[10..12].copy_from_slice(&arcount.to_be_bytes());
        signed[0..2].copy_from_slice(&fields.original_id.to_be_bytes());
        self.variables(
            &mut signed,
            fields.time,
            fields.fudge,
            fields.error,
            fields.other,
        );
        if hmac::verify(&self.key, &signed, fields.mac).is_err() {
            return Err(TsigFailure::BadSig);
        }
        if now.abs_diff(fields.time) > u64::from(fields.fudge) {
            return Err(TsigFailure::BadTime);
        }
        Ok(Signed {
            request_mac: fields.mac.to_vec(),
            original_id: fields.original_id,
        })
    }

    /// Appends the TSIG variables (RFC 8945 §4.3.3) to the signed data.
    fn variables(&self, out: &mut Vec<u8>, time: u64, fudge: u16, error: u16, other: &[u8]) {
        out.extend_from_slice(&wire::name_wire(self.name.as_bytes()));
        out.extend_from_slice(&CLASS_ANY.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(HMAC_SHA256);
        out.push(0);
        out.extend_from_slice(&time.to_be_bytes()[2..]);
        out.extend_from_slice(&fudge.to_be_bytes());
        out.extend_from_slice(&error.to_be_bytes());
        out.extend_from_slice(&(other.len() as u16).to_be_bytes());
        out.extend_from_slice(other);
    }

    /// A signer for the answers to `request`, at Unix time `now`.
    pub fn signer(self: &Arc<Self>, request: &Signed, now: u64) -> Signer {
        Signer {
            key: self.clone(),
            prior_mac: request.request_mac.clone(),
            original_id: request.original_id,
            first: true,
            now,
        }
    }
}

const FUDGE: u16 = 300;

impl Signer {
    /// Appends a TSIG record to the complete message in `out`.
    pub fn sign(&mut self, out: &mut Vec<u8>) {
        if out.len() < 12 {
            return;
        }
        let mut data = Vec::with_capacity(out.len() + 128);
        data.extend_from_slice(&(self.prior_mac.len() as u16).to_be_bytes());
        data.extend_from_slice(&self.prior_mac);
        data.extend_from_slice(out);
        if self.first {
            self.key.variables(&mut data, self.now, FUDGE, 0, &[]);
        } else {
            data.extend_from_slice(&self.now.to_be_bytes()[2..]);
            data.extend_from_slice(&FUDGE.to_be_bytes());
        }
        let mac = hmac::sign(&self.key.key, &data);
        let mac = mac.as_ref();
        self.first = false;
        self.prior_mac = mac.to_vec();

        let mut rdata = Vec::with_capacity(64);
        rdata.extend_from_slice(HMAC_SHA256);
        rdata.push(0);
        rdata.extend_from_slice(&self.now.to_be_bytes()[2..]);
        rdata.extend_from_slice(&FUDGE.to_be_bytes());
        rdata.extend_from_slice(&(mac.len() as u16).to_be_bytes());
        rdata.extend_from_slice(mac);
        rdata.extend_from_slice(&self.original_id.to_be_bytes());
        rdata.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&wire::name_wire(self.key.name.as_bytes()));
        out.extend_from_slice(&TYPE_TSIG.to_be_bytes());
        out.extend_from_slice(&CLASS_ANY.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
        let arcount = u16::from_be_bytes([out[10], out[11]]).saturating_add(1);
        out[10..12].copy_from_slice(&arcount.to_be_bytes());
    }
}

/// The RDATA fields of a TSIG record.
struct TsigFields<'a> {
    algorithm: &'a [u8],
    time: u64,
    fudge: u16,
    mac: &'a [u8],
    original_id: u16,
    error: u16,
    other: &'a [u8],
}

impl<'a> TsigFields<'a> {
    fn read(rdata: &'a [u8]) -> Option<TsigFields<'a>> {
        // The algorithm name is never compressed (RFC 8945 §4.2).
        let alg_end = wire::skip_name(rdata, 0)?;
        if rdata.get(alg_end - 1) != Some(&0) {
            return None;
        }
        let algorithm = rdata.get(..alg_end - 1)?;
        let rest = rdata.get(alg_end..)?;
        let time = rest
            .get(0..6)?
            .iter()
            .fold(0u64, |t, b| (t << 8) | u64::from(*b));
        let fudge = u16::from_be_bytes(rest.get(6..8)?.try_into().ok()?);
        let mac_len = usize::from(u16::from_be_bytes(rest.get(8..10)?.try_into().ok()?));
        let mac = rest.get(10..10 + mac_len)?;
        let rest = rest.get(10 + mac_len..)?;
        let original_id = u16::from_be_bytes(rest.get(0..2)?.try_into().ok()?);
        let error = u16::from_be_bytes(rest.get(2..4)?.try_into().ok()?);
        let other_len = usize::from(u16::from_be_bytes(rest.get(4..6)?.try_into().ok()?));
        let other = rest.get(6..6 + other_len)?;
        Some(TsigFields {
            algorithm,
            time,
            fudge,
            mac,
            original_id,
            error,
            other,
        })
    }
}

/// The owner name at `start..end`, lower-cased in key form; None when it
/// uses compression (a TSIG key name never should).
fn read_name(msg: &[u8], start: usize, end: usize) -> Option<Vec<u8>> {
    let wire = msg.get(start..end)?;
    let (&0, labels) = wire.split_last()? else {
        return None;
    };
    NameKey::from_key_bytes(&labels.to_ascii_lowercase()).map(|k| k.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_its_own_messages() {
        let key = Arc::new(TsigKey::new("transfer-key.", "c2VjcmV0LXNlY3JldC1zZWNyZXQ=").unwrap());
        // A request: header + question, then signed like a response with an empty prior MAC.
        let mut msg = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(b"\x07example\x03org\x00\x00\xfc\x00\x01");
        let at = msg.len();
        // Sign as a client would: MAC over message + variables.
        let mut data = msg.clone();
        key.variables(&mut data, 1000, 300, 0, &[]);
        let mac = hmac::sign(&key.key, &data);
        let mut rdata = HMAC_SHA256.to_vec();
        rdata.push(0);
        rdata.extend_from_slice(&1000u64.to_be_bytes()[2..]);
        rdata.extend_from_slice(&300u16.to_be_bytes());
        rdata.extend_from_slice(&32u16.to_be_bytes());
        rdata.extend_from_slice(mac.as_ref());
        rdata.extend_from_slice(&[0x12, 0x34, 0, 0, 0, 0]);
        msg.extend_from_slice(b"\x0ctransfer-key\x00");
        msg.extend_from_slice(&[0, 250, 0, 255, 0, 0, 0, 0]);
        msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        msg.extend_from_slice(&rdata);
        msg[11] = 1;
        let signed = key.verify(&msg, Some(at), 1100).unwrap();
        assert_eq!(
            key.verify(&msg, Some(at), 2000).err(),
            Some(TsigFailure::BadTime)
        );
        let other = TsigKey::new("transfer-key.", "b3RoZXI=").unwrap();
        assert_eq!(
            other.verify(&msg, Some(at), 1100).err(),
            Some(TsigFailure::BadSig)
        );
        let renamed = TsigKey::new("other-key.", "b3RoZXI=").unwrap();
        assert_eq!(
            renamed.verify(&msg, Some(at), 1100).err(),
            Some(TsigFailure::BadKey)
        );
        assert_eq!(
            key.verify(&msg, None, 1100).err(),
            Some(TsigFailure::Unsigned)
        );
        assert_eq!(
            key.verify(&msg[..at + 20], Some(at), 1100).err(),
            Some(TsigFailure::Malformed)
        );
        let mut out = msg[..at].to_vec();
        out[11] = 0;
        let mut signer = key.signer(&signed, 1100);
        signer.sign(&mut out);
        assert_eq!(out[11], 1, "ARCOUNT counts the TSIG record");
        assert!(TsigKey::new("k.", "not base64!").is_none());
    }
}
