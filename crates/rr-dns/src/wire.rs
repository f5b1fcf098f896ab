//! The DNS message format of RFC 1035 section 4.1: what a stub resolver sends and reads.
//!
//! # What it is
//!
//! - [`encode_query`]: one question, RD set, and an EDNS(0) OPT record (RFC 6891
//!   section 6.1.2) advertising [`EDNS_UDP_SIZE`] bytes so that ordinary answers do not
//!   come back truncated.
//! - [`decode_response`]: the header, the question section and the answer section of a
//!   message, with name compression (RFC 1035 section 4.1.4) followed under loop
//!   protection. Whatever the bytes, it returns an error rather than panicking.
//! - [`Response::encode`]: the inverse, without compression (for tests and for small
//!   test servers).
//!
//! # What it is not
//!
//! Not a general DNS library: the authority and additional sections are not decoded
//! (a stub resolver with RD set reads only answers), record data is interpreted only
//! for A, AAAA, CNAME and PTR (everything else is kept as raw bytes), and there is no
//! DNSSEC, no TCP framing and no master-file syntax beyond `\DDD` escapes when a
//! [`Name`] is printed.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Errors of the codec. Each names what was wrong with the bytes or the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The message ends inside a header, name, record or record data.
    #[error("message truncated")]
    Truncated,
    /// A label is longer than 63 octets, or a name has an empty label (`a..b`).
    #[error("bad label (empty or longer than 63 octets)")]
    BadLabel,
    /// A name is longer than 255 octets on the wire (RFC 1035 section 2.3.4).
    #[error("name longer than 255 octets")]
    NameTooLong,
    /// A compression pointer that does not point strictly before the name part it is
    /// in (the way loops are built), or a label type other than 00 / 11.
    #[error("bad compression pointer or label type")]
    BadPointer,
    /// A record's data does not have the length its type requires.
    #[error("record data of type {rtype} has a bad length")]
    BadRecordData { rtype: u16 },
    /// The server set TC: the answer did not fit, and this client has no TCP fallback.
    #[error("response truncated (TC set); no TCP fallback")]
    TruncatedResponse,
}

/// A record type (RFC 1035 section 3.2.2, RFC 3596 section 2.1 for AAAA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordType(pub u16);

impl RecordType {
    pub const A: RecordType = RecordType(1);
    pub const CNAME: RecordType = RecordType(5);
    pub const PTR: RecordType = RecordType(12);
    pub const AAAA: RecordType = RecordType(28);
    /// EDNS(0) pseudo-record (RFC 6891 section 6.1.1).
    pub const OPT: RecordType = RecordType(41);
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RecordType::A => f.write_str("A"),
            RecordType::CNAME => f.write_str("CNAME"),
            RecordType::PTR => f.write_str("PTR"),
            RecordType::AAAA => f.write_str("AAAA"),
            RecordType::OPT => f.write_str("OPT"),
            RecordType(t) => write!(f, "TYPE{t}"),
        }
    }
}

/// Class IN (RFC 1035 section 3.2.4).
pub const CLASS_IN: u16 = 1;
/// RCODE 0: no error (RFC 1035 section 4.1.1).
pub const RCODE_NOERROR: u8 = 0;
/// RCODE 2: server failure.
pub const RCODE_SERVFAIL: u8 = 2;
/// RCODE 3: name error (NXDOMAIN): the name does not exist.
pub const RCODE_NXDOMAIN: u8 = 3;
/// The UDP payload size advertised in queries: the DNS flag day 2020 value, which
/// avoids IP fragmentation on any path with an MTU of 1280 or more.
pub const EDNS_UDP_SIZE: u16 = 1232;
/// Length of the fixed header (RFC 1035 section 4.1.1).
pub const HEADER_LEN: usize = 12;
/// Longest name on the wire, length octets included (RFC 1035 section 2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 section 2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// A domain name as a list of labels (the root is the empty list).
///
/// Comparison with [`Name::eq_ignore_case`] follows RFC 1035 section 2.3.3 (ASCII case
/// does not matter); `==` compares bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Name {
    labels: Vec<Vec<u8>>,
}

impl Name {
    /// Parses a dotted name: a trailing dot is allowed, `""` and `"."` are the root.
    /// No escapes: every byte other than `.` is part of a label.
    pub fn parse(text: &str) -> Result<Name, WireError> {
        let text = text.strip_suffix('.').unwrap_or(text);
        let mut name = Name::default();
        if text.is_empty() {
            return Ok(name);
        }
        let mut wire_len = 1;
        for label in text.split('.') {
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                return Err(WireError::BadLabel);
            }
            wire_len += 1 + label.len();
            if wire_len > MAX_NAME_LEN {
                return Err(WireError::NameTooLong);
            }
            name.labels.push(label.as_bytes().to_vec());
        }
        Ok(name)
    }

    /// The labels, leftmost first.
    pub fn labels(&self) -> &[Vec<u8>] {
        &self.labels
    }

    /// True for the root name.
    pub fn is_root(&self) -> bool {
        self.labels.is_empty()
    }

    /// Equality ignoring ASCII case (RFC 1035 section 2.3.3, RFC 4343).
    pub fn eq_ignore_case(&self, other: &Name) -> bool {
        self.labels.len() == other.labels.len()
            && self
                .labels
                .iter()
                .zip(&other.labels)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    /// Appends the uncompressed wire form (RFC 1035 section 3.1).
    pub fn encode(&self, out: &mut Vec<u8>) {
        for label in &self.labels {
            // Labels come from `parse` or the decoder: at most 63 octets each.
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        out.push(0);
    }
}

/// Prints the name without a trailing dot (the root as `.`); bytes outside printable
/// ASCII, and `.` or `\` inside a label, as `\DDD` (RFC 1035 section 5.1).
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.labels.is_empty() {
            return f.write_str(".");
        }
        for (i, label) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &b in label {
                if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                    write!(f, "{}", b as char)?;
                } else {
                    write!(f, "\\{b:03}")?;
                }
            }
        }
        Ok(())
    }
}

/// The fixed header (RFC 1035 section 4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub id: u16,
    /// QR: set in responses.
    pub is_response: bool,
    pub opcode: u8,
    /// AA.
    pub authoritative: bool,
    /// TC.
    pub truncated: bool,
    /// RD.
    pub recursion_desired: bool,
    /// RA.
    pub recursion_available: bool,
    /// The three bits between RA and RCODE: Z of RFC 1035, since used as AD and CD
    /// (RFC 4035 section 3.2): `0b100` = Z, `0b010` = AD, `0b001` = CD. Kept for
    /// re-encoding, not interpreted.
    pub z: u8,
    /// The low 4 bits of the response code (extended RCODEs of EDNS are not read).
    pub rcode: u8,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    /// Reads the first [`HEADER_LEN`] bytes.
    pub fn decode(msg: &[u8]) -> Result<Header, WireError> {
        let mut r = Reader::new(msg);
        let id = r.u16()?;
        let flags = r.u16()?;
        Ok(Header {
            id,
            is_response: flags & 0x8000 != 0,
            opcode: ((flags >> 11) & 0xf) as u8,
            authoritative: flags & 0x0400 != 0,
            truncated: flags & 0x0200 != 0,
            recursion_desired: flags & 0x0100 != 0,
            recursion_available: flags & 0x0080 != 0,
            z: ((flags >> 4) & 0x7) as u8,
            rcode: (flags & 0xf) as u8,
            qdcount: r.u16()?,
            ancount: r.u16()?,
            nscount: r.u16()?,
            arcount: r.u16()?,
        })
    }

    /// Appends the 12 header bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut flags = (u16::from(self.opcode & 0xf) << 11)
            | (u16::from(self.z & 0x7) << 4)
            | u16::from(self.rcode & 0xf);
        for (bit, on) in [
            (0x8000, self.is_response),
            (0x0400, self.authoritative),
            (0x0200, self.truncated),
            (0x0100, self.recursion_desired),
            (0x0080, self.recursion_available),
        ] {
            if on {
                flags |= bit;
            }
        }
        for v in [
            self.id,
            flags,
            self.qdcount,
            self.ancount,
            self.nscount,
            self.arcount,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// One entry of the question section (RFC 1035 section 4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: RecordType,
    pub qclass: u16,
}

/// Record data, interpreted for the types a stub resolver needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(Name),
    Ptr(Name),
    /// Any other type (or a class other than IN), as the bytes of RDATA.
    Other(Vec<u8>),
}

/// One resource record (RFC 1035 section 4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    pub rtype: RecordType,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

/// A decoded message: header, questions and answers (authority and additional sections
/// are skipped; `header` still carries their counts as received).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
}

impl Response {
    /// Appends the message without name compression. The header's QD/AN counts are
    /// written from the lists; NS/AR counts as 0 (those sections are not kept).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let header = Header {
            qdcount: self.questions.len().min(usize::from(u16::MAX)) as u16,
            ancount: self.answers.len().min(usize::from(u16::MAX)) as u16,
            nscount: 0,
            arcount: 0,
            ..self.header
        };
        header.encode(out);
        for q in self.questions.iter().take(usize::from(u16::MAX)) {
            q.name.encode(out);
            out.extend_from_slice(&q.qtype.0.to_be_bytes());
            out.extend_from_slice(&q.qclass.to_be_bytes());
        }
        for rr in self.answers.iter().take(usize::from(u16::MAX)) {
            rr.name.encode(out);
            out.extend_from_slice(&rr.rtype.0.to_be_bytes());
            out.extend_from_slice(&rr.class.to_be_bytes());
            out.extend_from_slice(&rr.ttl.to_be_bytes());
            let len_at = out.len();
            out.extend_from_slice(&[0, 0]);
            match &rr.data {
                RData::A(a) => out.extend_from_slice(&a.octets()),
                RData::Aaaa(a) => out.extend_from_slice(&a.octets()),
                RData::Cname(n) | RData::Ptr(n) => n.encode(out),
                RData::Other(b) => out.extend_from_slice(b),
            }
            // RDLENGTH back-filled; record data longer than 65535 is cut at the length.
            let len = (out.len() - len_at - 2).min(usize::from(u16::MAX));
            out.truncate(len_at + 2 + len);
            out[len_at..len_at + 2].copy_from_slice(&(len as u16).to_be_bytes());
        }
    }
}

/// A query for `name` / `qtype` in class IN with RD set (RFC 1035 section 4.1.1) and an
/// EDNS(0) OPT record in the additional section (RFC 6891 section 6.1.2).
pub fn encode_query(id: u16, name: &str, qtype: RecordType) -> Result<Vec<u8>, WireError> {
    let name = Name::parse(name)?;
    let mut out = Vec::with_capacity(HEADER_LEN + 4 + 11 + name.labels.len() * 16);
    Header {
        id,
        recursion_desired: true,
        qdcount: 1,
        arcount: 1,
        ..Header::default()
    }
    .encode(&mut out);
    name.encode(&mut out);
    out.extend_from_slice(&qtype.0.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    // OPT: root owner, TYPE 41, CLASS = UDP payload size, TTL = extended RCODE 0,
    // version 0, flags 0 (no DO), RDLENGTH 0.
    out.push(0);
    out.extend_from_slice(&RecordType::OPT.0.to_be_bytes());
    out.extend_from_slice(&EDNS_UDP_SIZE.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    Ok(out)
}

/// Decodes the header, questions and answers of a message. Does not check QR or the
/// opcode (the resolver does), so it reads queries as well.
pub fn decode_response(msg: &[u8]) -> Result<Response, WireError> {
    let header = Header::decode(msg)?;
    let mut r = Reader::new(msg);
    r.pos = HEADER_LEN;
    // No capacity from the untrusted counts: each entry needs at least 5 bytes anyway.
    let mut questions = Vec::new();
    for _ in 0..header.qdcount {
        let name = r.name()?;
        let qtype = RecordType(r.u16()?);
        let qclass = r.u16()?;
        questions.push(Question {
            name,
            qtype,
            qclass,
        });
    }
    let mut answers = Vec::new();
    for _ in 0..header.ancount {
        answers.push(r.record()?);
    }
    Ok(Response {
        header,
        questions,
        answers,
    })
}

/// A cursor over a whole message (names may point anywhere before themselves).
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(msg: &'a [u8]) -> Self {
        Reader { msg, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let s = self.msg.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        let b: [u8; 2] = self.take(2)?.try_into().map_err(|_| WireError::Truncated)?;
        Ok(u16::from_be_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok((u32::from(self.u16()?) << 16) | u32::from(self.u16()?))
    }

    /// A name at the cursor; the cursor moves past it (past the first pointer, if any).
    fn name(&mut self) -> Result<Name, WireError> {
        let (name, end) = read_name(self.msg, self.pos)?;
        self.pos = end;
        Ok(name)
    }

    /// One resource record (RFC 1035 section 4.1.3).
    fn record(&mut self) -> Result<Record, WireError> {
        let name = self.name()?;
        let rtype = RecordType(self.u16()?);
        let class = self.u16()?;
        let ttl = self.u32()?;
        let rdlen = usize::from(self.u16()?);
        let start = self.pos;
        let rdata = self.take(rdlen)?;
        let bad = WireError::BadRecordData { rtype: rtype.0 };
        let data = match (rtype, class) {
            (RecordType::A, CLASS_IN) => {
                let o: [u8; 4] = rdata.try_into().map_err(|_| bad)?;
                RData::A(Ipv4Addr::from(o))
            }
            (RecordType::AAAA, CLASS_IN) => {
                let o: [u8; 16] = rdata.try_into().map_err(|_| bad)?;
                RData::Aaaa(Ipv6Addr::from(o))
            }
            (RecordType::CNAME | RecordType::PTR, _) => {
                // The name may be compressed, pointing anywhere earlier in the message,
                // but its own bytes must fill RDATA exactly.
                let (target, end) = read_name(self.msg, start)?;
                if end != self.pos {
                    return Err(bad);
                }
                if rtype == RecordType::CNAME {
                    RData::Cname(target)
                } else {
                    RData::Ptr(target)
                }
            }
            _ => RData::Other(rdata.to_vec()),
        };
        Ok(Record {
            name,
            rtype,
            class,
            ttl,
            data,
        })
    }
}

/// Reads a possibly compressed name at `pos` (RFC 1035 section 4.1.4). Returns the name
/// and the offset just after it in the original position (after the first pointer).
///
/// Loop protection: every pointer must point strictly before the start of the run of
/// labels it ends, so each jump goes to a lower offset than any offset read before and
/// the walk terminates. Real compressors only point backwards to names already
/// written, which always satisfies this.
fn read_name(msg: &[u8], pos: usize) -> Result<(Name, usize), WireError> {
    let mut labels = Vec::new();
    let mut wire_len = 1usize;
    let mut p = pos;
    let mut run_start = pos;
    let mut end = None;
    loop {
        let len = *msg.get(p).ok_or(WireError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                let after = p + 1;
                return Ok((Name { labels }, end.unwrap_or(after)));
            }
            0x00 => {
                let n = usize::from(len);
                let label = msg.get(p + 1..p + 1 + n).ok_or(WireError::Truncated)?;
                wire_len += 1 + n;
                if wire_len > MAX_NAME_LEN {
                    return Err(WireError::NameTooLong);
                }
                labels.push(label.to_vec());
                p += 1 + n;
            }
            0xc0 => {
                let lo = *msg.get(p + 1).ok_or(WireError::Truncated)?;
                let target = (usize::from(len & 0x3f) << 8) | usize::from(lo);
                if target >= run_start {
                    return Err(WireError::BadPointer);
                }
                end.get_or_insert(p + 2);
                p = target;
                run_start = target;
            }
            // 01 and 10: extended / reserved label types (RFC 6891 section 5).
            _ => return Err(WireError::BadPointer),
        }
    }
}
