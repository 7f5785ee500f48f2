//! The DNS wire format (RFC 1035 §4, RFC 6891 for EDNS), as much of it as an
//! authoritative server needs: reading a request without allocating, and
//! writing responses record by record into a reused buffer.
//!
//! Reading is strict and bounded: the question name may not use
//! compression (there is nothing before it to point at), names elsewhere
//! are skipped without following pointers (so a pointer loop cannot loop),
//! every length is checked against the buffer. Anything that does not add
//! up is a FORMERR, never a panic.

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_CERT: u16 = 37;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_TSIG: u16 = 250;
pub const TYPE_IXFR: u16 = 251;
pub const TYPE_AXFR: u16 = 252;
pub const TYPE_ANY: u16 = 255;

pub const CLASS_IN: u16 = 1;
pub const CLASS_ANY: u16 = 255;

pub const OPCODE_QUERY: u8 = 0;
pub const OPCODE_NOTIFY: u8 = 4;

/// CERT certificate type PKIX (RFC 4398 §2.1): an X.509 certificate, bare DER.
pub const CERT_PKIX: u16 = 1;

/// Where the question starts in every message.
pub const QUESTION_AT: usize = 12;

/// Response codes we send (RFC 1035, 1996, 6891).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    NoError = 0,
    /// The request could not be read.
    FormErr = 1,
    /// We failed (never for bad input).
    ServFail = 2,
    /// The name does not exist in a zone we host.
    NxDomain = 3,
    /// An opcode we do not implement.
    NotImp = 4,
    /// Not a zone we host, or a transfer the client may not make.
    Refused = 5,
    /// A transfer asked of a name that is not a zone apex of ours.
    NotAuth = 9,
    /// An EDNS version we do not speak (extended, needs the OPT record).
    BadVers = 16,
}

/// The header fields of a request that a response echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    /// The second header word as received.
    pub flags: u16,
}

impl Header {
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }
    fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }
}

/// A query name in lookup form: the wire name lower-cased without its root
/// label (the form of `core::NameKey`), on the stack, with where each label
/// starts so zone suffixes are found without allocating.
#[derive(Clone)]
pub struct Name {
    key: [u8; 255],
    len: usize,
    starts: [u8; 128],
    labels: usize,
}

impl Name {
    /// The name in key form.
    pub fn key(&self) -> &[u8] {
        &self.key[..self.len]
    }

    /// The name and each ancestor, longest first: (offset in the key, key of the suffix).
    pub fn suffixes(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.starts[..self.labels].iter().map(|&s| {
            let s = usize::from(s);
            (s, &self.key[s..self.len])
        })
    }

    /// Where the suffix equal to `apex` starts in the key, if it is one.
    pub fn suffix_offset(&self, apex: &[u8]) -> Option<usize> {
        if apex.is_empty() {
            return Some(self.len);
        }
        self.suffixes().find(|(_, s)| *s == apex).map(|(at, _)| at)
    }
}

/// The one question of a request.
#[derive(Clone)]
pub struct Question<'a> {
    /// The question as it came, name through class, echoed in the response
    /// so the client sees its own spelling (0x20 case randomisation survives).
    pub raw: &'a [u8],
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
}

/// The requester's EDNS(0) OPT record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// The UDP payload size it can take (values under 512 read as 512).
    pub udp_size: u16,
    pub version: u8,
    /// DNSSEC OK: copied back (RFC 3225), though we sign nothing.
    pub dnssec_ok: bool,
}

/// A request as read.
#[derive(Clone)]
pub struct Request<'a> {
    pub header: Header,
    pub question: Option<Question<'a>>,
    pub edns: Option<Edns>,
    /// Offset of a TSIG record (the last additional record), if any.
    pub tsig_at: Option<usize>,
    /// The whole message.
    pub raw: &'a [u8],
}

/// What reading a message gave.
// The request (with its name buffer) stays on the stack on purpose: the hot
// path allocates nothing to read a query.
#[allow(clippy::large_enum_variant)]
pub enum Parsed<'a> {
    /// Not worth an answer: shorter than a header, or itself a response.
    Drop,
    /// A header we can answer with FORMERR; the rest did not add up.
    FormErr(Header),
    Request(Request<'a>),
}

fn be16(msg: &[u8], at: usize) -> Option<u16> {
    let b = msg.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(msg: &[u8], at: usize) -> Option<u32> {
    let b = msg.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a message. Never panics, whatever the bytes.
pub fn parse(msg: &[u8]) -> Parsed<'_> {
    let (Some(id), Some(flags)) = (be16(msg, 0), be16(msg, 2)) else {
        return Parsed::Drop;
    };
    if msg.len() < 12 {
        return Parsed::Drop;
    }
    let header = Header { id, flags };
    if header.is_response() {
        return Parsed::Drop;
    }
    match parse_body(msg, header) {
        Some(request) => Parsed::Request(request),
        None => Parsed::FormErr(header),
    }
}

fn parse_body(msg: &[u8], header: Header) -> Option<Request<'_>> {
    let qdcount = be16(msg, 4)?;
    let ancount = be16(msg, 6)?;
    let nscount = be16(msg, 8)?;
    let arcount = be16(msg, 10)?;
    let mut pos = QUESTION_AT;
    let question = match qdcount {
        0 => None,
        1 => {
            let (name, end) = read_question_name(msg, pos)?;
            let qtype = be16(msg, end)?;
            let qclass = be16(msg, end + 2)?;
            let raw = msg.get(pos..end + 4)?;
            pos = end + 4;
            Some(Question {
                raw,
                name,
                qtype,
                qclass,
            })
        }
        _ => return None,
    };
    for _ in 0..u32::from(ancount) + u32::from(nscount) {
        pos = skip_record(msg, pos)?.end;
    }
    let mut edns = None;
    let mut tsig_at = None;
    for i in 0..arcount {
        let rr = skip_record(msg, pos)?;
        match rr.rtype {
            TYPE_OPT => {
                // One OPT, owned by the root (RFC 6891 §6.1.1).
                if edns.is_some() || rr.name_end != pos + 1 || msg.get(pos) != Some(&0) {
                    return None;
                }
                edns = Some(Edns {
                    udp_size: rr.class.max(512),
                    version: ((rr.ttl >> 16) & 0xff) as u8,
                    dnssec_ok: rr.ttl & 0x8000 != 0,
                });
            }
            TYPE_TSIG => {
                // TSIG must be the last record (RFC 8945 §5.1).
                if i + 1 != arcount {
                    return None;
                }
                tsig_at = Some(pos);
            }
            _ => {}
        }
        pos = rr.end;
    }
    Some(Request {
        header,
        question,
        edns,
        tsig_at,
        raw: msg,
    })
}

/// Reads an uncompressed name into lookup form.
fn read_question_name(msg: &[u8], mut pos: usize) -> Option<(Name, usize)> {
    let mut name = Name {
        key: [0; 255],
        len: 0,
        starts: [0; 128],
        labels: 0,
    };
    loop {
        let len = usize::from(*msg.get(pos)?);
        if len == 0 {
            return Some((name, pos + 1));
        }
        // 0xC0 pointers and the obsolete 0x40/0x80 label types: not in a question.
        if len > 63 || name.len + 1 + len > 254 || name.labels >= name.starts.len() {
            return None;
        }
        let label = msg.get(pos + 1..pos + 1 + len)?;
        name.starts[name.labels] = name.len as u8;
        name.labels += 1;
        name.key[name.len] = len as u8;
        for (dst, src) in name.key[name.len + 1..name.len + 1 + len]
            .iter_mut()
            .zip(label)
        {
            *dst = src.to_ascii_lowercase();
        }
        name.len += 1 + len;
        pos += 1 + len;
    }
}

/// Where a name written at `pos` ends, without following pointers.
pub fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    let start = pos;
    loop {
        let b = *msg.get(pos)?;
        match b & 0xc0 {
            0x00 if b == 0 => return Some(pos + 1),
            0x00 => {
                pos += 1 + usize::from(b);
                if pos - start > 255 {
                    return None;
                }
            }
            0xc0 => {
                msg.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

/// The fixed fields of a record and where it ends.
pub struct RecordSpan {
    pub name_end: usize,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: std::ops::Range<usize>,
    pub end: usize,
}

/// Reads past one resource record starting at `pos`.
pub fn skip_record(msg: &[u8], pos: usize) -> Option<RecordSpan> {
    let name_end = skip_name(msg, pos)?;
    let rtype = be16(msg, name_end)?;
    let class = be16(msg, name_end + 2)?;
    let ttl = be32(msg, name_end + 4)?;
    let rdlen = usize::from(be16(msg, name_end + 8)?);
    let start = name_end + 10;
    let end = start + rdlen;
    if end > msg.len() {
        return None;
    }
    Some(RecordSpan {
        name_end,
        rtype,
        class,
        ttl,
        rdata: start..end,
        end,
    })
}

/// How a record's owner is written.
#[derive(Clone, Copy)]
pub enum Owner<'a> {
    /// A compression pointer to this offset of the message (a suffix of
    /// the question name, which starts at [`QUESTION_AT`]).
    Pointer(usize),
    /// Written out in full: a name in key form (the root label is added).
    Key(&'a [u8]),
}

/// The flags of a response.
#[derive(Debug, Clone, Copy)]
pub struct ResponseFlags {
    pub authoritative: bool,
    pub truncated: bool,
    pub rcode: Rcode,
}

/// Writes one response message into a buffer, section by section (answer,
/// then authority, then additional: call them in that order).
pub struct Builder<'o> {
    out: &'o mut Vec<u8>,
    counts: [u16; 4],
    ext_rcode: u8,
}

impl<'o> Builder<'o> {
    /// Starts a response to `request` (header echoed: id, opcode, RD, CD)
    /// with `question` (the raw question to echo) if any.
    pub fn new(
        out: &'o mut Vec<u8>,
        request: Header,
        flags: ResponseFlags,
        question: Option<&[u8]>,
    ) -> Builder<'o> {
        out.clear();
        let rcode = flags.rcode as u16;
        let mut word = 0x8000 | (request.flags & 0x7800) | (request.flags & 0x0100);
        word |= request.flags & 0x0010; // CD
        if flags.authoritative {
            word |= 0x0400;
        }
        if flags.truncated {
            word |= 0x0200;
        }
        word |= rcode & 0x0f;
        out.extend_from_slice(&request.id.to_be_bytes());
        out.extend_from_slice(&word.to_be_bytes());
        out.extend_from_slice(&[0; 8]);
        let mut counts = [0; 4];
        if let Some(q) = question {
            out.extend_from_slice(q);
            counts[0] = 1;
        }
        Builder {
            out,
            counts,
            ext_rcode: (rcode >> 4) as u8,
        }
    }

    /// The length written so far.
    pub fn written(&self) -> usize {
        self.out.len()
    }

    fn record(&mut self, section: usize, owner: Owner<'_>, rtype: u16, ttl: u32, rdata: &[&[u8]]) {
        let rdlen: usize = rdata.iter().map(|p| p.len()).sum();
        let Ok(rdlen) = u16::try_from(rdlen) else {
            return;
        };
        match owner {
            Owner::Pointer(at) => {
                self.out
                    .extend_from_slice(&(0xc000 | (at as u16 & 0x3fff)).to_be_bytes());
            }
            Owner::Key(key) => {
                self.out.extend_from_slice(key);
                self.out.push(0);
            }
        }
        self.out.extend_from_slice(&rtype.to_be_bytes());
        self.out.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.out.extend_from_slice(&ttl.to_be_bytes());
        self.out.extend_from_slice(&rdlen.to_be_bytes());
        for part in rdata {
            self.out.extend_from_slice(part);
        }
        self.counts[section] = self.counts[section].saturating_add(1);
    }

    /// Adds a record to the answer section; `rdata` is given in parts.
    pub fn answer(&mut self, owner: Owner<'_>, rtype: u16, ttl: u32, rdata: &[&[u8]]) {
        self.record(1, owner, rtype, ttl, rdata);
    }

    /// Adds a record to the authority section.
    pub fn authority(&mut self, owner: Owner<'_>, rtype: u16, ttl: u32, rdata: &[&[u8]]) {
        self.record(2, owner, rtype, ttl, rdata);
    }

    /// Adds a record to the additional section.
    pub fn additional(&mut self, owner: Owner<'_>, rtype: u16, ttl: u32, rdata: &[&[u8]]) {
        self.record(3, owner, rtype, ttl, rdata);
    }

    /// Adds our OPT record: our UDP size, the extended rcode, DO copied.
    pub fn opt(&mut self, udp_size: u16, dnssec_ok: bool) {
        let ttl = (u32::from(self.ext_rcode) << 24) | if dnssec_ok { 0x8000 } else { 0 };
        self.out.push(0);
        self.out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        self.out.extend_from_slice(&udp_size.to_be_bytes());
        self.out.extend_from_slice(&ttl.to_be_bytes());
        self.out.extend_from_slice(&[0, 0]);
        self.counts[3] = self.counts[3].saturating_add(1);
    }

    /// Writes the section counts into the header; the message is complete.
    pub fn finish(self) -> usize {
        for (i, count) in self.counts.iter().enumerate() {
            let at = 4 + 2 * i;
            self.out[at..at + 2].copy_from_slice(&count.to_be_bytes());
        }
        self.out.len()
    }
}

/// A name in key form written as wire labels with the root label.
pub fn name_wire(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.extend_from_slice(key);
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&arcount.to_be_bytes());
        m.extend_from_slice(name);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        m.extend_from_slice(extra);
        m
    }

    const NAME: &[u8] = b"\x05Alice\x07example\x03org\x00";
    const OPT: &[u8] = &[0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0];

    #[test]
    fn reads_a_query_with_edns() {
        let m = query(NAME, TYPE_CERT, OPT, 1);
        let Parsed::Request(r) = parse(&m) else {
            panic!("parses")
        };
        assert_eq!(r.header.id, 0x1234);
        let q = r.question.unwrap();
        assert_eq!(q.name.key(), b"\x05alice\x07example\x03org");
        assert_eq!(q.qtype, TYPE_CERT);
        assert_eq!(q.raw, &m[12..12 + NAME.len() + 4]);
        assert_eq!(q.name.suffix_offset(b"\x07example\x03org"), Some(6));
        assert_eq!(q.name.suffix_offset(b"\x03org"), Some(14));
        assert_eq!(q.name.suffix_offset(b"\x03com"), None);
        assert_eq!(
            r.edns,
            Some(Edns {
                udp_size: 4096,
                version: 0,
                dnssec_ok: true
            })
        );
    }

    #[test]
    fn bad_input_is_formerr_or_dropped() {
        assert!(matches!(parse(b"\x00\x01"), Parsed::Drop));
        // A response is never answered.
        let mut m = query(NAME, TYPE_CERT, &[], 0);
        m[2] |= 0x80;
        assert!(matches!(parse(&m), Parsed::Drop));
        // A pointer in the question (a loop onto itself).
        let m = query(b"\xc0\x0c", TYPE_A, &[], 0);
        assert!(matches!(parse(&m), Parsed::FormErr(_)));
        // A label running off the end.
        let m = query(b"\x3fabc", TYPE_A, &[], 0);
        assert!(matches!(parse(&m), Parsed::FormErr(_)));
        // Two OPT records.
        let mut extra = OPT.to_vec();
        extra.extend_from_slice(OPT);
        let m = query(NAME, TYPE_A, &extra, 2);
        assert!(matches!(parse(&m), Parsed::FormErr(_)));
        // An additional record claimed but missing.
        let m = query(NAME, TYPE_A, &[], 1);
        assert!(matches!(parse(&m), Parsed::FormErr(_)));
        // Two questions.
        let mut m = query(NAME, TYPE_A, &[], 0);
        m[5] = 2;
        assert!(matches!(parse(&m), Parsed::FormErr(_)));
        // A name longer than 255 octets.
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        let m = query(&long, TYPE_A, &[], 0);
        assert!(matches!(parse(&m), Parsed::FormErr(_)));
    }

    #[test]
    fn skip_name_stops_at_pointers_and_bounds() {
        assert_eq!(skip_name(b"\xc0\x00", 0), Some(2));
        assert_eq!(skip_name(b"\xc0", 0), None);
        assert_eq!(skip_name(b"\x01a\x00", 0), Some(3));
        assert_eq!(skip_name(b"\x41a", 0), None);
    }

    #[test]
    fn builder_writes_counts_and_extended_rcode() {
        let mut out = Vec::new();
        let req = Header {
            id: 7,
            flags: 0x0110,
        };
        let mut b = Builder::new(
            &mut out,
            req,
            ResponseFlags {
                authoritative: true,
                truncated: false,
                rcode: Rcode::BadVers,
            },
            Some(b"\x00\x00\x01\x00\x01"),
        );
        b.answer(Owner::Pointer(12), TYPE_A, 60, &[&[127, 0, 0, 1]]);
        b.opt(1232, false);
        let n = b.finish();
        assert_eq!(n, out.len());
        assert_eq!(&out[0..4], &[0, 7, 0x85, 0x10]);
        assert_eq!(&out[4..12], &[0, 1, 0, 1, 0, 0, 0, 1]);
        let opt_ttl = &out[out.len() - 6..out.len() - 2];
        assert_eq!(opt_ttl, &[1, 0, 0, 0]);
    }
}
