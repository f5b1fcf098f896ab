//! RTR PDUs as Rust values, and their wire format (RFC 8210 section 5, RFC 6810 section 5).
//!
//! What it is: [`Pdu`] (every PDU type of protocol versions 0 and 1), [`frame`] to find
//! one PDU in a byte stream by its length field, [`Pdu::decode`] to turn one PDU's bytes
//! into a value and [`Pdu::encode`] to turn a value back into bytes. Decoding never
//! panics, whatever the bytes: every read goes through a bounds-checked cursor, and every
//! error is a [`DecodeError`] that names the RFC 8210 section 12 error code
//! ([`DecodeError::error_code`]) to put in the Error Report.
//!
//! Reserved ("zero") fields are written as zero and ignored when read, as are the
//! undefined flag bits (RFC 8210 section 5.6). Lengths are not: each PDU type has the
//! exact length its layout gives, and anything else is Corrupt Data.
//!
//! What it is not: a stream buffer (the caller keeps bytes until [`frame`] says a PDU is
//! complete) nor a session (that is [`crate::Client`]).

use crate::Vrp;
use ipnet::IpNet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Every PDU starts with version (1), type (1), a 2-byte field and the length (4).
pub const HEADER_LEN: usize = 8;
/// The longest PDU accepted. RFC 8210 section 5 sets no limit; the longest PDU a cache
/// sends in practice is a Router Key (~120 bytes) or an Error Report quoting one, so
/// 64 KiB only stops a corrupt length field from making the receiver buffer gigabytes.
pub const MAX_PDU_LEN: usize = 65536;

/// PDU type numbers (RFC 8210 section 5; IANA "rpki-rtr-pdu").
pub mod pdu_type {
    /// Serial Notify (section 5.2).
    pub const SERIAL_NOTIFY: u8 = 0;
    /// Serial Query (section 5.3).
    pub const SERIAL_QUERY: u8 = 1;
    /// Reset Query (section 5.4).
    pub const RESET_QUERY: u8 = 2;
    /// Cache Response (section 5.5).
    pub const CACHE_RESPONSE: u8 = 3;
    /// IPv4 Prefix (section 5.6).
    pub const IPV4_PREFIX: u8 = 4;
    /// IPv6 Prefix (section 5.7).
    pub const IPV6_PREFIX: u8 = 6;
    /// End of Data (section 5.8).
    pub const END_OF_DATA: u8 = 7;
    /// Cache Reset (section 5.9).
    pub const CACHE_RESET: u8 = 8;
    /// Router Key (section 5.10), version 1 only.
    pub const ROUTER_KEY: u8 = 9;
    /// Error Report (section 5.11).
    pub const ERROR_REPORT: u8 = 10;
}

/// The protocol versions spoken: 0 (RFC 6810) and 1 (RFC 8210).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// RFC 6810: no Router Key, End of Data without timing parameters.
    V0,
    /// RFC 8210.
    V1,
}

impl Version {
    /// The number in the Protocol Version field.
    pub fn number(self) -> u8 {
        match self {
            Version::V0 => 0,
            Version::V1 => 1,
        }
    }

    /// The version with this number, if it is one we speak.
    pub fn from_number(n: u8) -> Option<Version> {
        match n {
            0 => Some(Version::V0),
            1 => Some(Version::V1),
            _ => None,
        }
    }
}

/// The timing parameters of a version 1 End of Data (RFC 8210 section 6), in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long to wait after a successful update before the next Serial Query.
    pub refresh: u32,
    /// How long to wait before retrying a failed query (or connection).
    pub retry: u32,
    /// How long data may be used without a successful update.
    pub expire: u32,
}

impl Timing {
    /// The values RFC 8210 section 6 recommends, used in version 0 (which has no timing
    /// parameters on the wire) and before the first End of Data.
    pub const DEFAULT: Timing = Timing {
        refresh: 3600,
        retry: 600,
        expire: 7200,
    };

    /// The values brought into the ranges of RFC 8210 section 6: refresh 1..=86400,
    /// retry 1..=7200, expire 600..=172800 and larger than both refresh and retry.
    pub fn clamped(self) -> Timing {
        let refresh = self.refresh.clamp(1, 86400);
        let retry = self.retry.clamp(1, 7200);
        let expire = self
            .expire
            .clamp(600, 172800)
            .max(refresh.max(retry).saturating_add(1));
        Timing {
            refresh,
            retry,
            expire,
        }
    }
}

/// Error codes of the Error Report PDU (RFC 8210 section 12, RFC 6810 section 13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0, fatal.
    CorruptData,
    /// 1, fatal.
    InternalError,
    /// 2, not fatal: the cache has no data yet.
    NoDataAvailable,
    /// 3, fatal.
    InvalidRequest,
    /// 4, fatal: the sender does not speak the PDU's protocol version.
    UnsupportedProtocolVersion,
    /// 5, fatal.
    UnsupportedPduType,
    /// 6, fatal: a withdrawal of a record the receiver does not hold.
    WithdrawalOfUnknownRecord,
    /// 7, fatal: an announcement of a record the receiver already holds.
    DuplicateAnnouncement,
    /// 8, fatal (version 1): a PDU of another version than the one negotiated.
    UnexpectedProtocolVersion,
    /// Any other number (fatal, RFC 8210 section 5.11: unknown codes end the session).
    Other(u16),
}

impl ErrorCode {
    /// The number on the wire.
    pub fn number(self) -> u16 {
        match self {
            ErrorCode::CorruptData => 0,
            ErrorCode::InternalError => 1,
            ErrorCode::NoDataAvailable => 2,
            ErrorCode::InvalidRequest => 3,
            ErrorCode::UnsupportedProtocolVersion => 4,
            ErrorCode::UnsupportedPduType => 5,
            ErrorCode::WithdrawalOfUnknownRecord => 6,
            ErrorCode::DuplicateAnnouncement => 7,
            ErrorCode::UnexpectedProtocolVersion => 8,
            ErrorCode::Other(n) => n,
        }
    }

    /// The code for a number on the wire.
    pub fn from_number(n: u16) -> ErrorCode {
        match n {
            0 => ErrorCode::CorruptData,
            1 => ErrorCode::InternalError,
            2 => ErrorCode::NoDataAvailable,
            3 => ErrorCode::InvalidRequest,
            4 => ErrorCode::UnsupportedProtocolVersion,
            5 => ErrorCode::UnsupportedPduType,
            6 => ErrorCode::WithdrawalOfUnknownRecord,
            7 => ErrorCode::DuplicateAnnouncement,
            8 => ErrorCode::UnexpectedProtocolVersion,
            n => ErrorCode::Other(n),
        }
    }
}

/// One RTR PDU (RFC 8210 section 5). The protocol version is not part of the value: it is
/// returned by [`Pdu::decode`] and passed to [`Pdu::encode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pdu {
    /// Type 0 (section 5.2): the cache has new data.
    SerialNotify { session_id: u16, serial: u32 },
    /// Type 1 (section 5.3): the router asks for changes since `serial`.
    SerialQuery { session_id: u16, serial: u32 },
    /// Type 2 (section 5.4): the router asks for everything.
    ResetQuery,
    /// Type 3 (section 5.5): data follows.
    CacheResponse { session_id: u16 },
    /// Types 4 and 6 (sections 5.6, 5.7), by the family of `vrp.prefix`: announce
    /// (flags bit 0 set) or withdraw one VRP.
    Prefix { announce: bool, vrp: Vrp },
    /// Type 7 (section 5.8): the data is complete up to `serial`. `timing` is on the wire
    /// in version 1 only; encoding a version 1 End of Data without it writes
    /// [`Timing::DEFAULT`].
    EndOfData {
        session_id: u16,
        serial: u32,
        timing: Option<Timing>,
    },
    /// Type 8 (section 5.9): the cache cannot serve the Serial Query; send a Reset Query.
    CacheReset,
    /// Type 9 (section 5.10, version 1 only): a BGPsec router key.
    RouterKey {
        announce: bool,
        /// Subject Key Identifier.
        ski: [u8; 20],
        asn: u32,
        /// Subject Public Key Info, DER.
        spki: Vec<u8>,
    },
    /// Type 10 (section 5.11): `pdu` is the offending PDU (possibly empty), `text` a
    /// diagnostic message (possibly empty).
    ErrorReport {
        code: ErrorCode,
        pdu: Vec<u8>,
        text: String,
    },
}

/// Why bytes are not a valid PDU. Each maps to the Error Report code to answer with
/// ([`DecodeError::error_code`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the header or than the length field says.
    #[error("truncated PDU: {have} bytes, need {need}")]
    Truncated { have: usize, need: usize },
    /// The length field is below the header size or above [`MAX_PDU_LEN`].
    #[error("PDU length {0} out of range 8..={MAX_PDU_LEN}")]
    BadFrameLength(u32),
    /// More bytes than the length field says (a caller bug or a corrupt stream).
    #[error("PDU length field says {field}, got {have} bytes")]
    TrailingBytes { field: usize, have: usize },
    /// A protocol version other than 0 and 1.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// A PDU type that does not exist in this protocol version.
    #[error("unsupported PDU type {pdu_type} in version {version}")]
    UnsupportedType { version: u8, pdu_type: u8 },
    /// The length does not match the layout of the PDU type.
    #[error("PDU type {pdu_type} with length {length}")]
    BadLength { pdu_type: u8, length: usize },
    /// A prefix PDU whose lengths are impossible or whose prefix has host bits set.
    #[error("invalid prefix {addr}/{prefix_len} max {max_len}")]
    BadPrefix {
        addr: std::net::IpAddr,
        prefix_len: u8,
        max_len: u8,
    },
    /// An Error Report whose inner lengths do not add up to its length.
    #[error("Error Report inner lengths do not match its length")]
    BadErrorReport,
    /// An Error Report whose text is not UTF-8 (RFC 8210 section 5.11).
    #[error("Error Report text is not UTF-8")]
    BadErrorText,
}

impl DecodeError {
    /// The RFC 8210 section 12 error code for an Error Report about this PDU.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            DecodeError::UnsupportedVersion(_) => ErrorCode::UnsupportedProtocolVersion,
            DecodeError::UnsupportedType { .. } => ErrorCode::UnsupportedPduType,
            _ => ErrorCode::CorruptData,
        }
    }
}

/// How long the PDU at the start of `buf` is: `Ok(None)` until `buf` holds all of it
/// (or at least its header), an error when the length field is out of range (which
/// leaves no way to find the next PDU: the stream is lost).
pub fn frame(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    let Some(len) = buf.get(4..8) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    let n = usize::try_from(len).unwrap_or(usize::MAX);
    if !(HEADER_LEN..=MAX_PDU_LEN).contains(&n) {
        return Err(DecodeError::BadFrameLength(len));
    }
    Ok((buf.len() >= n).then_some(n))
}

/// A cursor over a byte slice; every read returns `None` instead of going past the end.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.buf.split_at_checked(n)?;
        self.buf = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }
}

impl Pdu {
    /// Decodes one whole PDU (`buf` is exactly what [`frame`] measured) and returns its
    /// protocol version with it.
    pub fn decode(buf: &[u8]) -> Result<(Version, Pdu), DecodeError> {
        let Some(&[ver, ty, f0, f1, l0, l1, l2, l3]) = buf.first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::Truncated {
                have: buf.len(),
                need: HEADER_LEN,
            });
        };
        let version = Version::from_number(ver).ok_or(DecodeError::UnsupportedVersion(ver))?;
        let field = u16::from_be_bytes([f0, f1]);
        let length = usize::try_from(u32::from_be_bytes([l0, l1, l2, l3])).unwrap_or(usize::MAX);
        if length < buf.len() {
            return Err(DecodeError::TrailingBytes {
                field: length,
                have: buf.len(),
            });
        }
        if length > buf.len() {
            return Err(DecodeError::Truncated {
                have: buf.len(),
                need: length,
            });
        }
        let mut r = Reader {
            buf: &buf[HEADER_LEN..],
        };
        let bad_length = || DecodeError::BadLength {
            pdu_type: ty,
            length,
        };
        let exact = |n: usize| {
            if length == n {
                Ok(())
            } else {
                Err(bad_length())
            }
        };
        use pdu_type::*;
        let pdu = match ty {
            SERIAL_NOTIFY | SERIAL_QUERY => {
                exact(12)?;
                let serial = r.u32().ok_or_else(bad_length)?;
                if ty == SERIAL_NOTIFY {
                    Pdu::SerialNotify {
                        session_id: field,
                        serial,
                    }
                } else {
                    Pdu::SerialQuery {
                        session_id: field,
                        serial,
                    }
                }
            }
            RESET_QUERY => exact(8).map(|()| Pdu::ResetQuery)?,
            CACHE_RESPONSE => exact(8).map(|()| Pdu::CacheResponse { session_id: field })?,
            CACHE_RESET => exact(8).map(|()| Pdu::CacheReset)?,
            IPV4_PREFIX | IPV6_PREFIX => {
                let v4 = ty == IPV4_PREFIX;
                exact(if v4 { 20 } else { 32 })?;
                let [flags, prefix_len, max_len, _zero] = r.array().ok_or_else(bad_length)?;
                let addr: std::net::IpAddr = if v4 {
                    Ipv4Addr::from(r.array::<4>().ok_or_else(bad_length)?).into()
                } else {
                    Ipv6Addr::from(r.array::<16>().ok_or_else(bad_length)?).into()
                };
                let asn = r.u32().ok_or_else(bad_length)?;
                let bad = DecodeError::BadPrefix {
                    addr,
                    prefix_len,
                    max_len,
                };
                let prefix = IpNet::new(addr, prefix_len).map_err(|_| bad.clone())?;
                if prefix.trunc() != prefix
                    || max_len < prefix_len
                    || max_len > prefix.max_prefix_len()
                {
                    return Err(bad);
                }
                Pdu::Prefix {
                    announce: flags & 1 != 0,
                    vrp: Vrp {
                        prefix,
                        max_len,
                        asn,
                    },
                }
            }
            END_OF_DATA => {
                exact(if version == Version::V0 { 12 } else { 24 })?;
                let serial = r.u32().ok_or_else(bad_length)?;
                let timing = match version {
                    Version::V0 => None,
                    Version::V1 => Some(Timing {
                        refresh: r.u32().ok_or_else(bad_length)?,
                        retry: r.u32().ok_or_else(bad_length)?,
                        expire: r.u32().ok_or_else(bad_length)?,
                    }),
                };
                Pdu::EndOfData {
                    session_id: field,
                    serial,
                    timing,
                }
            }
            ROUTER_KEY if version == Version::V1 => {
                let ski = r.array::<20>().ok_or_else(bad_length)?;
                let asn = r.u32().ok_or_else(bad_length)?;
                Pdu::RouterKey {
                    announce: f0 & 1 != 0,
                    ski,
                    asn,
                    spki: r.buf.to_vec(),
                }
            }
            ERROR_REPORT => {
                // Header, PDU length and text length at least.
                if length < 16 {
                    return Err(bad_length());
                }
                let pdu_len = r.u32().ok_or_else(bad_length)?;
                let pdu_len = usize::try_from(pdu_len).unwrap_or(usize::MAX);
                let pdu = r.take(pdu_len).ok_or(DecodeError::BadErrorReport)?.to_vec();
                let text_len = r.u32().ok_or(DecodeError::BadErrorReport)?;
                let text_len = usize::try_from(text_len).unwrap_or(usize::MAX);
                let text = r.take(text_len).ok_or(DecodeError::BadErrorReport)?;
                if !r.buf.is_empty() {
                    return Err(DecodeError::BadErrorReport);
                }
                let text =
                    String::from_utf8(text.to_vec()).map_err(|_| DecodeError::BadErrorText)?;
                Pdu::ErrorReport {
                    code: ErrorCode::from_number(field),
                    pdu,
                    text,
                }
            }
            _ => {
                return Err(DecodeError::UnsupportedType {
                    version: ver,
                    pdu_type: ty,
                })
            }
        };
        Ok((version, pdu))
    }

    /// The PDU type number.
    pub fn pdu_type(&self) -> u8 {
        use pdu_type::*;
        match self {
            Pdu::SerialNotify { .. } => SERIAL_NOTIFY,
            Pdu::SerialQuery { .. } => SERIAL_QUERY,
            Pdu::ResetQuery => RESET_QUERY,
            Pdu::CacheResponse { .. } => CACHE_RESPONSE,
            Pdu::Prefix { vrp, .. } => match vrp.prefix {
                IpNet::V4(_) => IPV4_PREFIX,
                IpNet::V6(_) => IPV6_PREFIX,
            },
            Pdu::EndOfData { .. } => END_OF_DATA,
            Pdu::CacheReset => CACHE_RESET,
            Pdu::RouterKey { .. } => ROUTER_KEY,
            Pdu::ErrorReport { .. } => ERROR_REPORT,
        }
    }

    /// Appends the PDU with protocol `version` to `out`, length back-filled. Values that
    /// cannot be decoded again in that version (a Router Key in version 0, a PDU longer
    /// than [`MAX_PDU_LEN`]) are written as asked; not producing them is the caller's job.
    pub fn encode(&self, version: Version, out: &mut Vec<u8>) {
        let start = out.len();
        let field = match self {
            Pdu::SerialNotify { session_id, .. }
            | Pdu::SerialQuery { session_id, .. }
            | Pdu::CacheResponse { session_id }
            | Pdu::EndOfData { session_id, .. } => *session_id,
            Pdu::RouterKey { announce, .. } => u16::from(*announce) << 8,
            Pdu::ErrorReport { code, .. } => code.number(),
            Pdu::ResetQuery | Pdu::Prefix { .. } | Pdu::CacheReset => 0,
        };
        out.push(version.number());
        out.push(self.pdu_type());
        out.extend_from_slice(&field.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        match self {
            Pdu::SerialNotify { serial, .. } | Pdu::SerialQuery { serial, .. } => {
                out.extend_from_slice(&serial.to_be_bytes())
            }
            Pdu::ResetQuery | Pdu::CacheResponse { .. } | Pdu::CacheReset => {}
            Pdu::Prefix { announce, vrp } => {
                out.extend_from_slice(&[
                    u8::from(*announce),
                    vrp.prefix.prefix_len(),
                    vrp.max_len,
                    0,
                ]);
                match vrp.prefix {
                    IpNet::V4(n) => out.extend_from_slice(&n.addr().octets()),
                    IpNet::V6(n) => out.extend_from_slice(&n.addr().octets()),
                }
                out.extend_from_slice(&vrp.asn.to_be_bytes());
            }
            Pdu::EndOfData { serial, timing, .. } => {
                out.extend_from_slice(&serial.to_be_bytes());
                if version == Version::V1 {
                    let t = timing.unwrap_or(Timing::DEFAULT);
                    for v in [t.refresh, t.retry, t.expire] {
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                }
            }
            Pdu::RouterKey { ski, asn, spki, .. } => {
                out.extend_from_slice(ski);
                out.extend_from_slice(&asn.to_be_bytes());
                out.extend_from_slice(spki);
            }
            Pdu::ErrorReport { pdu, text, .. } => {
                out.extend_from_slice(&len32(pdu.len()).to_be_bytes());
                out.extend_from_slice(pdu);
                out.extend_from_slice(&len32(text.len()).to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
        let len = len32(out.len() - start).to_be_bytes();
        out[start + 4..start + 8].copy_from_slice(&len);
    }
}

/// A length as the u32 of the wire (saturating; such a PDU is rejected by [`frame`]).
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
