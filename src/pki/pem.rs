//! PEM (RFC 7468) reading and writing.
//!
//! The reader is deliberately lenient about what surrounds the blocks (text
//! before, between and after them, CRLF or LF, indentation, RFC 1421 headers
//! such as `Proc-Type:`), because certificates arrive pasted out of mails and
//! web pages. Inside a block it is strict: the base64 must decode.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

use super::PkiError;

/// Standard alphabet, padding optional (some tools drop it).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One decoded PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PemBlock {
    pub label: String,
    pub der: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// All PEM blocks in `text`, in order. Fails on a block without its END line
/// or with a body that is not base64.
pub(crate) fn pem_blocks(text: &[u8]) -> Result<Vec<PemBlock>, PkiError> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const DASHES: &[u8] = b"-----";
    let mut blocks = Vec::new();
    let mut pos = 0;
    while let Some(b) = find(text, BEGIN, pos) {
        let label_start = b + BEGIN.len();
        let label_end = find(text, DASHES, label_start)
            .ok_or_else(|| PkiError::invalid("unterminated PEM BEGIN line"))?;
        let label = text
            .get(label_start..label_end)
            .and_then(|l| std::str::from_utf8(l).ok())
            .filter(|l| l.len() <= 64 && !l.contains(['\n', '\r']))
            .ok_or_else(|| PkiError::invalid("malformed PEM label"))?
            .to_owned();
        let body_start = label_end + DASHES.len();
        let end_line = format!("-----END {label}-----");
        let body_end = find(text, end_line.as_bytes(), body_start)
            .ok_or_else(|| PkiError::invalid(format!("PEM block {label} has no END line")))?;
        let body = text.get(body_start..body_end).unwrap_or(&[]);
        let der =
            decode_body(body).map_err(|e| PkiError::invalid(format!("PEM block {label}: {e}")))?;
        blocks.push(PemBlock { label, der });
        pos = body_end + end_line.len();
    }
    Ok(blocks)
}

/// Base64 body of a block; RFC 1421 header lines (`Name: value`) are skipped.
fn decode_body(body: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not ASCII".to_string())?;
    let mut b64 = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.trim();
        if line.contains(':') {
            continue;
        }
        b64.extend(line.chars().filter(|c| !c.is_ascii_whitespace()));
    }
    if b64.is_empty() {
        return Err("empty body".into());
    }
    LENIENT
        .decode(b64.as_bytes())
        .map_err(|e| format!("bad base64: {e}"))
}

/// PEM-encodes each DER blob under `label` (`CERTIFICATE`, `PKCS7`, ...),
/// 64 characters a line, LF line ends.
pub fn to_pem<D: AsRef<[u8]>>(label: &str, ders: &[D]) -> String {
    let mut out = String::new();
    for der in ders {
        out.push_str("-----BEGIN ");
        out.push_str(label);
        out.push_str("-----\n");
        let b64 = STANDARD.encode(der.as_ref());
        // base64 output is ASCII, so byte chunks are char boundaries.
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END ");
        out.push_str(label);
        out.push_str("-----\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_noise_and_crlf() {
        let pem = to_pem("CERTIFICATE", &[vec![1u8; 100], vec![2u8; 3]]);
        let noisy = format!(
            "Subject: hello\r\n\r\n{}\r\ntrailing words",
            pem.replace('\n', "\r\n")
        );
        let blocks = pem_blocks(noisy.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "CERTIFICATE");
        assert_eq!(blocks[0].der, vec![1u8; 100]);
        assert_eq!(blocks[1].der, vec![2u8; 3]);
    }

    #[test]
    fn lines_are_64_wide() {
        let pem = to_pem("X", &[vec![0u8; 200]]);
        assert!(pem.lines().all(|l| l.len() <= 64));
    }

    #[test]
    fn missing_end_and_bad_base64_are_errors() {
        assert!(pem_blocks(b"-----BEGIN CERTIFICATE-----\nAAAA\n").is_err());
        assert!(
            pem_blocks(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----").is_err()
        );
        assert!(pem_blocks(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----").is_err());
        assert!(pem_blocks(b"-----BEGIN ").is_err());
        assert!(pem_blocks(b"no pem here").unwrap().is_empty());
    }
}
