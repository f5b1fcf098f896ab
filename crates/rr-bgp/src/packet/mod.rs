//! BGP messages as Rust values, and their wire format.
//!
//! What it is: the message types ([`Message`], [`Open`], [`Update`], [`Notification`],
//! [`RouteRefresh`]), the path attributes a DN42 session carries ([`Attributes`]), and
//! the codec: [`frame`] finds one message in a byte stream, [`Message::decode`] turns
//! its bytes into a value, [`Message::encode`] turns a value back into bytes. What an
//! UPDATE means depends on what the session negotiated (4-byte ASNs, extended
//! messages, ...): that is the [`Codec`] argument.
//!
//! Decoding never panics, whatever the bytes. Errors map to the NOTIFICATION that
//! RFC 4271 section 6 prescribes ([`DecodeError::notification`]). UPDATE errors follow
//! RFC 7606: a malformed attribute that only taints the routes of that UPDATE does not
//! fail the decode; it marks the update [`Update::treat_as_withdraw`] (RFC 7606 section
//! 2), or is dropped silently where RFC 7606 says "attribute discard".
//!
//! What it is not: a session. No state is kept between messages beyond the [`Codec`]
//! the caller passes in.

mod attrs;
mod decode;
mod encode;

#[cfg(test)]
mod tests;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

pub use decode::frame;

/// Length of the fixed header: marker (16), length (2), type (1).
pub const HEADER_LEN: usize = 19;
/// Largest message without RFC 8654.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Largest message once both sides announced extended messages (RFC 8654).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;
/// RFC 6793: the 2-byte AS number standing in for a 4-byte one.
pub const AS_TRANS: u16 = 23456;

/// What the two sides negotiated that changes the wire format of later messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codec {
    /// Both sides sent the 4-octet AS capability (RFC 6793): AS_PATH carries 4-byte ASNs.
    pub four_octet_as: bool,
    /// Both sides sent the extended message capability (RFC 8654): messages up to 65535.
    pub extended_message: bool,
}

impl Codec {
    /// Before OPENs are exchanged: 2-byte AS paths, 4096-byte messages.
    pub const INITIAL: Codec = Codec {
        four_octet_as: false,
        extended_message: false,
    };

    /// The largest message this codec accepts and produces.
    pub fn max_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }
}

/// Address family identifier (RFC 4760; IANA "Address Family Numbers").
pub const AFI_IPV4: u16 = 1;
/// Address family identifier for IPv6.
pub const AFI_IPV6: u16 = 2;
/// Subsequent AFI: unicast.
pub const SAFI_UNICAST: u8 = 1;

/// The two families rootless-router routes: IPv4 and IPv6 unicast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// AFI 1, SAFI 1.
    Ipv4Unicast,
    /// AFI 2, SAFI 1.
    Ipv6Unicast,
}

impl Family {
    /// (AFI, SAFI) on the wire.
    pub fn afi_safi(self) -> (u16, u8) {
        match self {
            Family::Ipv4Unicast => (AFI_IPV4, SAFI_UNICAST),
            Family::Ipv6Unicast => (AFI_IPV6, SAFI_UNICAST),
        }
    }

    /// The family for (AFI, SAFI), if it is one we route.
    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Family> {
        match (afi, safi) {
            (AFI_IPV4, SAFI_UNICAST) => Some(Family::Ipv4Unicast),
            (AFI_IPV6, SAFI_UNICAST) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }
}

/// One BGP message (RFC 4271 section 4).
///
/// Messages are transient (decoded, handed on, dropped), so the size difference between
/// an UPDATE and a KEEPALIVE costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Type 1.
    Open(Open),
    /// Type 2.
    Update(Update),
    /// Type 3.
    Notification(Notification),
    /// Type 4.
    Keepalive,
    /// Type 5 (RFC 2918).
    RouteRefresh(RouteRefresh),
}

/// OPEN (RFC 4271 section 4.2) with its capabilities (RFC 5492).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// Always 4.
    pub version: u8,
    /// The sender's ASN: the full 4-byte value (from the 4-octet AS capability when
    /// present, RFC 6793), else the 2-byte "My Autonomous System" field.
    pub asn: u32,
    /// Seconds; 0 or at least 3.
    pub hold_time: u16,
    /// BGP identifier.
    pub router_id: Ipv4Addr,
    /// Capabilities, in the order received (and encoded).
    pub capabilities: Vec<Capability>,
}

/// A capability advertised in an OPEN (RFC 5492).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Code 1 (RFC 4760): the sender handles this (AFI, SAFI). Unknown pairs are kept
    /// as numbers so they can be printed and ignored.
    Multiprotocol { afi: u16, safi: u8 },
    /// Code 2 (RFC 2918).
    RouteRefresh,
    /// Code 5 (RFC 8950): NLRI of (afi, safi) may carry a next hop of `nh_afi`.
    ExtendedNextHop(Vec<ExtendedNextHopEntry>),
    /// Code 6 (RFC 8654).
    ExtendedMessage,
    /// Code 65 (RFC 6793): the sender's 4-byte ASN.
    FourOctetAs(u32),
    /// Code 69 (RFC 7911): kept for display; we never negotiate ADD-PATH.
    AddPath(Vec<(u16, u8, u8)>),
    /// Any other code (graceful restart, RFC 4724, among them), kept raw: (code, value).
    Other(u8, Vec<u8>),
}

/// One (NLRI AFI, NLRI SAFI, next hop AFI) triple of the extended next hop capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtendedNextHopEntry {
    /// AFI of the NLRI (1 for IPv4).
    pub afi: u16,
    /// SAFI of the NLRI.
    pub safi: u16,
    /// AFI of the next hop (2 for IPv6).
    pub nh_afi: u16,
}

/// UPDATE (RFC 4271 section 4.3, RFC 4760), decoded.
///
/// IPv4 routes may come in the classic fields (`withdrawn`, `nlri` with
/// `attrs.next_hop`) or in MP_REACH/MP_UNREACH; IPv6 routes only in the latter. The
/// decoder keeps them where they were; the encoder writes them where they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// Withdrawn IPv4 routes (the classic field).
    pub withdrawn: Vec<Ipv4Net>,
    /// Path attributes other than MP_REACH/MP_UNREACH. `None` when the UPDATE carried no
    /// attributes at all (a pure withdrawal).
    pub attrs: Option<Attributes>,
    /// MP_REACH_NLRI (attribute 14, RFC 4760), at most one.
    pub mp_reach: Option<MpReach>,
    /// MP_UNREACH_NLRI (attribute 15, RFC 4760), at most one.
    pub mp_unreach: Option<MpUnreach>,
    /// Announced IPv4 routes (the classic field).
    pub nlri: Vec<Ipv4Net>,
    /// RFC 7606 section 2: an attribute error that taints every route this UPDATE
    /// announces. The receiver must treat all of `nlri` and `mp_reach` as withdrawn (and
    /// still process `withdrawn`/`mp_unreach`). The text says what was wrong, for logs.
    pub treat_as_withdraw: Option<String>,
}

impl Update {
    /// End-of-RIB marker for `family` (RFC 4724 section 2): an empty UPDATE for IPv4,
    /// an empty MP_UNREACH for others.
    pub fn end_of_rib(family: Family) -> Update {
        match family {
            Family::Ipv4Unicast => Update::default(),
            Family::Ipv6Unicast => Update {
                mp_unreach: Some(MpUnreach {
                    family,
                    withdrawn: Vec::new(),
                }),
                attrs: Some(Attributes::default()),
                ..Update::default()
            },
        }
    }

    /// The family this UPDATE is the End-of-RIB marker of, if it is one.
    pub fn is_end_of_rib(&self) -> Option<Family> {
        let plain = self.withdrawn.is_empty() && self.nlri.is_empty() && self.mp_reach.is_none();
        if !plain {
            return None;
        }
        match &self.mp_unreach {
            None if self.attrs.is_none() => Some(Family::Ipv4Unicast),
            Some(u) if u.withdrawn.is_empty() => Some(u.family),
            _ => None,
        }
    }
}

/// MP_REACH_NLRI (RFC 4760 section 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpReach {
    /// The family of `nlri`.
    pub family: Family,
    /// The next hop, as encoded.
    pub next_hop: NextHop,
    /// Announced prefixes, all of `family`.
    pub nlri: Vec<IpNet>,
}

/// MP_UNREACH_NLRI (RFC 4760 section 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpUnreach {
    /// The family of `withdrawn`.
    pub family: Family,
    /// Withdrawn prefixes, all of `family`.
    pub withdrawn: Vec<IpNet>,
}

/// The next hop field of MP_REACH_NLRI.
///
/// All encodings seen from real speakers are accepted: 4 bytes (IPv4), 16 bytes (one
/// IPv6 address: global per RFC 2545, but some speakers put a link-local address here),
/// 32 bytes (global + link-local, RFC 2545; the "global" may be `::` or repeat the
/// link-local). IPv4 NLRI may carry an IPv6 next hop (RFC 8950).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHop {
    /// 4 bytes.
    V4(Ipv4Addr),
    /// 16 bytes, as received (may be link-local).
    V6(Ipv6Addr),
    /// 32 bytes: (global, link-local), as received.
    V6Pair(Ipv6Addr, Ipv6Addr),
}

impl NextHop {
    /// The link-local address in this next hop, if any: the second of a pair, or a
    /// 16-byte or "global" address that is itself link-local (fe80::/10).
    pub fn link_local(&self) -> Option<Ipv6Addr> {
        let ll = |a: &Ipv6Addr| (a.segments()[0] & 0xffc0) == 0xfe80;
        match self {
            NextHop::V4(_) => None,
            NextHop::V6(a) => ll(a).then_some(*a),
            NextHop::V6Pair(g, l) => {
                if ll(l) {
                    Some(*l)
                } else if ll(g) {
                    Some(*g)
                } else {
                    None
                }
            }
        }
    }

    /// The global (non-link-local, non-unspecified) IPv6 address in this next hop, if any.
    pub fn global_v6(&self) -> Option<Ipv6Addr> {
        let usable = |a: &Ipv6Addr| (a.segments()[0] & 0xffc0) != 0xfe80 && !a.is_unspecified();
        match self {
            NextHop::V4(_) => None,
            NextHop::V6(a) | NextHop::V6Pair(a, _) => usable(a).then_some(*a),
        }
    }
}

/// ORIGIN values (RFC 4271 section 5.1.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// 0.
    #[default]
    Igp,
    /// 1.
    Egp,
    /// 2.
    Incomplete,
}

/// One AS_PATH segment (RFC 4271 section 4.3, RFC 5065 confederation types kept).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AsSegment {
    /// Type 2: ordered.
    Sequence(Vec<u32>),
    /// Type 1: unordered (counts as 1 in path length).
    Set(Vec<u32>),
    /// Type 3 (RFC 5065).
    ConfedSequence(Vec<u32>),
    /// Type 4 (RFC 5065).
    ConfedSet(Vec<u32>),
}

/// An AS_PATH: always holds 4-byte ASNs once decoded (AS4_PATH already merged in per
/// RFC 6793 section 4.2.3 when the peer is a 2-byte speaker).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    /// The segments, in wire order.
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// Path length for the decision process (RFC 4271 9.1.2.2 a): a SET counts 1,
    /// confederation segments 0.
    pub fn len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                AsSegment::Sequence(v) => v.len(),
                AsSegment::Set(_) => 1,
                _ => 0,
            })
            .sum()
    }

    /// True when there is no AS at all (a route this AS originates, as seen internally).
    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| match s {
            AsSegment::Sequence(v)
            | AsSegment::Set(v)
            | AsSegment::ConfedSequence(v)
            | AsSegment::ConfedSet(v) => v.is_empty(),
        })
    }

    /// True when `asn` occurs anywhere in the path (loop detection, RFC 4271 9.1.2).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| match s {
            AsSegment::Sequence(v)
            | AsSegment::Set(v)
            | AsSegment::ConfedSequence(v)
            | AsSegment::ConfedSet(v) => v.contains(&asn),
        })
    }

    /// The first AS of the path (the neighbor's, on eBGP), if the path starts with a sequence.
    pub fn first(&self) -> Option<u32> {
        match self.segments.first() {
            Some(AsSegment::Sequence(v)) => v.first().copied(),
            _ => None,
        }
    }

    /// The origin AS: the last AS of a final sequence.
    pub fn origin(&self) -> Option<u32> {
        match self.segments.last() {
            Some(AsSegment::Sequence(v)) => v.last().copied(),
            _ => None,
        }
    }

    /// Prepends `asn` (eBGP export, RFC 4271 5.1.2): into the leading sequence, or a new
    /// one (a sequence holds at most 255 ASNs on the wire; the encoder splits longer ones).
    pub fn prepend(&mut self, asn: u32) {
        match self.segments.first_mut() {
            Some(AsSegment::Sequence(v)) => v.insert(0, asn),
            _ => self.segments.insert(0, AsSegment::Sequence(vec![asn])),
        }
    }
}

impl std::fmt::Display for AsPath {
    /// BIRD's style: `4242420001 4242420002 {65000 65001}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for s in &self.segments {
            let (open, close, v) = match s {
                AsSegment::Sequence(v) => ("", "", v),
                AsSegment::Set(v) => ("{", "}", v),
                AsSegment::ConfedSequence(v) => ("(", ")", v),
                AsSegment::ConfedSet(v) => ("[", "]", v),
            };
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(open)?;
            for (i, a) in v.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{a}")?;
            }
            f.write_str(close)?;
        }
        Ok(())
    }
}

/// An attribute we don't interpret, kept to pass on (optional transitive ones, with the
/// Partial bit set on re-advertisement per RFC 4271 5) or to drop (optional
/// non-transitive ones).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    /// Flags as received: optional, transitive, partial. The decoder clears the
    /// extended-length bit and the unused low bits; the encoder sets extended length
    /// itself, exactly when the value exceeds 255 bytes.
    pub flags: u8,
    /// Type code.
    pub code: u8,
    /// Value bytes.
    pub value: Vec<u8>,
}

/// Attribute flag: optional.
pub const FLAG_OPTIONAL: u8 = 0x80;
/// Attribute flag: transitive.
pub const FLAG_TRANSITIVE: u8 = 0x40;
/// Attribute flag: partial.
pub const FLAG_PARTIAL: u8 = 0x20;
/// Attribute flag: extended length (2-byte length).
pub const FLAG_EXTENDED_LENGTH: u8 = 0x10;

/// The path attributes of an UPDATE, except MP_REACH/MP_UNREACH (which are in [`Update`]).
///
/// Hash/Eq so that routes with the same attributes can share one copy and exports can
/// be grouped into one UPDATE per attribute set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// ORIGIN (type 1, well-known mandatory).
    pub origin: Origin,
    /// AS_PATH (type 2, well-known mandatory; with AS4_PATH, type 17, merged in).
    pub as_path: AsPath,
    /// NEXT_HOP (type 3): IPv4 next hop for the classic NLRI field.
    pub next_hop: Option<Ipv4Addr>,
    /// MULTI_EXIT_DISC (type 4).
    pub med: Option<u32>,
    /// LOCAL_PREF (type 5), iBGP only.
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE (type 6).
    pub atomic_aggregate: bool,
    /// AGGREGATOR (type 7; AS4_AGGREGATOR, type 18, merged in): (ASN, address).
    pub aggregator: Option<(u32, Ipv4Addr)>,
    /// COMMUNITIES (type 8, RFC 1997), in wire order.
    pub communities: Vec<u32>,
    /// EXTENDED COMMUNITIES (type 16, RFC 4360), 8 bytes each, in wire order.
    pub ext_communities: Vec<[u8; 8]>,
    /// LARGE_COMMUNITY (type 32, RFC 8092), in wire order, duplicates removed.
    pub large_communities: Vec<[u32; 3]>,
    /// Other attributes, in type-code order (the order they are encoded in; a decoded
    /// UPDATE's are sorted, so that equal sets compare equal).
    pub other: Vec<RawAttribute>,
}

/// NOTIFICATION (RFC 4271 section 4.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Error code.
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// Data (for Cease/Administrative Shutdown it may be an RFC 9003 message).
    pub data: Vec<u8>,
}

/// NOTIFICATION error codes (RFC 4271 section 4.5, RFC 4486).
pub mod error_code {
    /// 1.
    pub const MESSAGE_HEADER: u8 = 1;
    /// 2.
    pub const OPEN_MESSAGE: u8 = 2;
    /// 3.
    pub const UPDATE_MESSAGE: u8 = 3;
    /// 4.
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    /// 5.
    pub const FSM: u8 = 5;
    /// 6.
    pub const CEASE: u8 = 6;
    /// 7 (RFC 7313).
    pub const ROUTE_REFRESH: u8 = 7;
}

impl Notification {
    /// `code/subcode` in words, as birdc prints them (e.g. "Hold timer expired",
    /// "Cease: Administrative shutdown"), with the shutdown communication if there is one.
    pub fn describe(&self) -> String {
        decode::describe_notification(self)
    }

    /// Cease with `subcode` (RFC 4486; 2 = Administrative Shutdown, 4 = Administrative
    /// Reset) carrying `message` as an RFC 9003 shutdown communication: a length byte
    /// and UTF-8, cut at a character boundary to at most 255 bytes. An empty message
    /// gives empty data.
    pub fn cease(subcode: u8, message: &str) -> Notification {
        let mut end = message.len().min(255);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let text = message.get(..end).unwrap_or_default();
        let mut data = Vec::with_capacity(text.len() + 1);
        if !text.is_empty() {
            data.push(text.len() as u8);
            data.extend_from_slice(text.as_bytes());
        }
        Notification {
            code: error_code::CEASE,
            subcode,
            data,
        }
    }

    /// The RFC 9003 shutdown communication of a Cease / Administrative Shutdown or
    /// Administrative Reset, if the data holds a well-formed one.
    pub fn shutdown_communication(&self) -> Option<&str> {
        decode::shutdown_communication(self)
    }
}

/// ROUTE-REFRESH (RFC 2918): ask the neighbor to send its Adj-RIB-Out again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRefresh {
    /// AFI.
    pub afi: u16,
    /// Subtype (RFC 7313; 0 = normal request).
    pub subtype: u8,
    /// SAFI.
    pub safi: u8,
}

/// Why a message could not be decoded, and what the session must answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct DecodeError {
    /// The NOTIFICATION to send before closing the session (RFC 4271 section 6).
    pub notification: Notification,
    /// What was wrong, in words, for logs and `ctl show bgp`.
    pub reason: String,
}

impl DecodeError {
    /// The NOTIFICATION this error maps to.
    pub fn notification(&self) -> &Notification {
        &self.notification
    }
}

/// Helper used by the decoder and the RIB: host bits cleared.
pub fn net_v4(addr: Ipv4Addr, len: u8) -> Option<Ipv4Net> {
    Ipv4Net::new(addr, len).ok().map(|n| n.trunc())
}

/// Helper used by the decoder and the RIB: host bits cleared.
pub fn net_v6(addr: Ipv6Addr, len: u8) -> Option<Ipv6Net> {
    Ipv6Net::new(addr, len).ok().map(|n| n.trunc())
}

impl Message {
    /// Decodes one whole message (header included, exactly as delimited by [`frame`]).
    pub fn decode(bytes: &[u8], codec: &Codec) -> Result<Message, DecodeError> {
        decode::message(bytes, codec)
    }

    /// Appends this message's wire form to `out` (header included, length back-filled).
    /// An UPDATE too large for `codec.max_len()` is the caller's bug: use
    /// [`Update::encode_split`] for anything built from a table.
    pub fn encode(&self, codec: &Codec, out: &mut Vec<u8>) {
        encode::message(self, codec, out)
    }
}

impl Update {
    /// Appends one or more UPDATE messages carrying exactly this update's routes, split
    /// so that none exceeds `codec.max_len()` (attributes repeated in each).
    pub fn encode_split(&self, codec: &Codec, out: &mut Vec<u8>) {
        encode::update_split(self, codec, out)
    }
}
