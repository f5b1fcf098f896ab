//! Hand-rolled views of the IPv4 and IPv6 headers, the Internet checksum, and the
//! address classes the forwarder cares about.
//!
//! What it is: checked parsers (`parse` returns `None` for any buffer that is not a
//! well-formed header, and never panics, whatever the bytes), the RFC 1071 checksum with the
//! RFC 1624 incremental update, and the RFC 8200 extension-header walk needed to find an
//! upper-layer header.
//!
//! What it is not: a general packet library. Only the fields the forwarder reads are
//! decoded; everything else stays in the caller's buffer untouched.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Length of an IPv4 header without options (RFC 791 §3.1).
pub(crate) const IPV4_HEADER_LEN: usize = 20;
/// Length of the fixed IPv6 header (RFC 8200 §3).
pub(crate) const IPV6_HEADER_LEN: usize = 40;
/// IP protocol number of ICMP (RFC 792).
pub(crate) const PROTO_ICMP: u8 = 1;
/// Next-header value of ICMPv6 (RFC 4443).
pub(crate) const PROTO_ICMPV6: u8 = 58;

/// Adds `data` to the ones'-complement running sum `init` (RFC 1071 §4.1) and returns the
/// folded 16-bit sum (not yet complemented). An odd trailing byte is padded with zero, so
/// only the last chunk of a chained sum may have odd length.
pub(crate) fn ones_sum(data: &[u8], init: u32) -> u32 {
    let mut acc = u64::from(init);
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    fold(acc)
}

/// Folds carries back into the low 16 bits (end-around carry).
fn fold(mut acc: u64) -> u32 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    // Lossless: the loop leaves at most 16 bits.
    acc as u32
}

/// The Internet checksum of `data` (RFC 1071): the complement of the ones'-complement sum.
pub(crate) fn checksum(data: &[u8]) -> u16 {
    !(ones_sum(data, 0) as u16)
}

/// Whether `data` (a header or message with its checksum field in place) sums to all ones,
/// i.e. its checksum is correct. Both representations of zero (0x0000, 0xFFFF) are accepted.
pub(crate) fn checksum_ok(data: &[u8]) -> bool {
    ones_sum(data, 0) == 0xFFFF
}

/// The ones'-complement sum of the IPv6 pseudo-header (RFC 8200 §8.1) for an upper-layer
/// message of `len` bytes with next header `next_header`.
fn pseudo_header_sum_v6(src: &Ipv6Addr, dst: &Ipv6Addr, len: u32, next_header: u8) -> u32 {
    let s = ones_sum(&src.octets(), 0);
    let s = ones_sum(&dst.octets(), s);
    let s = ones_sum(&len.to_be_bytes(), s);
    ones_sum(&[0, 0, 0, next_header], s)
}

/// The ICMPv6 checksum (RFC 4443 §2.3) of `message`, whose checksum field (bytes 2..4)
/// must be zero.
pub(crate) fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, message: &[u8]) -> u16 {
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    let s = pseudo_header_sum_v6(src, dst, len, PROTO_ICMPV6);
    !(ones_sum(message, s) as u16)
}

/// Whether the ICMPv6 `message` (checksum field in place) has a correct checksum.
pub(crate) fn icmpv6_checksum_ok(src: &Ipv6Addr, dst: &Ipv6Addr, message: &[u8]) -> bool {
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    let s = pseudo_header_sum_v6(src, dst, len, PROTO_ICMPV6);
    ones_sum(message, s) == 0xFFFF
}

/// RFC 1624 eqn. 3 incremental update: the new checksum after the 16-bit word `old` became
/// `new`: `HC' = ~(~HC + ~m + m')`. Unlike eqn. 2 of RFC 1141 this never produces 0xFFFF
/// where a full recomputation would give 0x0000.
pub(crate) fn checksum_update(hc: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!hc) + u64::from(!old) + u64::from(new);
    !(fold(acc) as u16)
}

/// Decrements the TTL of the valid IPv4 header at the start of `packet` and updates its
/// header checksum incrementally (RFC 1812 §5.3.1, RFC 1624). The caller has checked
/// TTL > 1 and the length; a too-short buffer is left unchanged.
pub(crate) fn decrement_ttl_v4(packet: &mut [u8]) {
    if packet.len() < IPV4_HEADER_LEN {
        return;
    }
    let ttl = packet[8];
    let proto = packet[9];
    let new_ttl = ttl.saturating_sub(1);
    packet[8] = new_ttl;
    let old_word = u16::from_be_bytes([ttl, proto]);
    let new_word = u16::from_be_bytes([new_ttl, proto]);
    let hc = u16::from_be_bytes([packet[10], packet[11]]);
    let hc = checksum_update(hc, old_word, new_word);
    packet[10..12].copy_from_slice(&hc.to_be_bytes());
}

/// The decoded fields of a valid IPv4 header (RFC 791 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ipv4Header {
    /// IHL × 4, 20..=60, and <= `total_len`.
    pub header_len: usize,
    /// The Total Length field; <= the buffer's length.
    pub total_len: usize,
    pub tos: u8,
    pub ident: u16,
    /// Don't Fragment.
    pub df: bool,
    /// More Fragments.
    pub mf: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    pub ttl: u8,
    pub proto: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
}

impl Ipv4Header {
    /// Parses and validates the header at the start of `buf`: version 4, IHL >= 5,
    /// IHL × 4 <= Total Length <= `buf.len()`, correct header checksum (RFC 1812 §5.2.2).
    /// Bytes of `buf` beyond Total Length (tunnel padding) are ignored.
    pub(crate) fn parse(buf: &[u8]) -> Option<Self> {
        let fixed: &[u8; IPV4_HEADER_LEN] = buf.get(..IPV4_HEADER_LEN)?.try_into().ok()?;
        if fixed[0] >> 4 != 4 {
            return None;
        }
        let header_len = usize::from(fixed[0] & 0x0F) * 4;
        let total_len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
        if header_len < IPV4_HEADER_LEN || total_len < header_len || total_len > buf.len() {
            return None;
        }
        if !checksum_ok(buf.get(..header_len)?) {
            return None;
        }
        let flags_frag = u16::from_be_bytes([fixed[6], fixed[7]]);
        Some(Ipv4Header {
            header_len,
            total_len,
            tos: fixed[1],
            ident: u16::from_be_bytes([fixed[4], fixed[5]]),
            df: flags_frag & 0x4000 != 0,
            mf: flags_frag & 0x2000 != 0,
            frag_offset: flags_frag & 0x1FFF,
            ttl: fixed[8],
            proto: fixed[9],
            src: Ipv4Addr::new(fixed[12], fixed[13], fixed[14], fixed[15]),
            dst: Ipv4Addr::new(fixed[16], fixed[17], fixed[18], fixed[19]),
        })
    }

    /// Whether this packet is a fragment (MF set or a non-zero offset).
    pub(crate) fn is_fragment(&self) -> bool {
        self.mf || self.frag_offset != 0
    }
}

/// Writes a 20-byte IPv4 header (no options, no fragmentation) with a correct checksum
/// to the end of `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn push_ipv4_header(
    out: &mut Vec<u8>,
    tos: u8,
    total_len: u16,
    ident: u16,
    ttl: u8,
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) {
    let start = out.len();
    out.extend_from_slice(&[0x45, tos]);
    out.extend_from_slice(&total_len.to_be_bytes());
    out.extend_from_slice(&ident.to_be_bytes());
    out.extend_from_slice(&[0, 0, ttl, proto, 0, 0]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    let csum = checksum(&out[start..]);
    out[start + 10..start + 12].copy_from_slice(&csum.to_be_bytes());
}

/// The decoded fields of a valid fixed IPv6 header (RFC 8200 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ipv6Header {
    /// 40 + Payload Length; <= the buffer's length.
    pub total_len: usize,
    pub traffic_class: u8,
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
}

impl Ipv6Header {
    /// Parses the fixed header at the start of `buf`: version 6, 40 + Payload Length <=
    /// `buf.len()`. Bytes beyond that (tunnel padding) are ignored. A zero Payload Length
    /// (jumbogram, RFC 2675) is taken literally: the packet is the bare header.
    pub(crate) fn parse(buf: &[u8]) -> Option<Self> {
        let fixed: &[u8; IPV6_HEADER_LEN] = buf.get(..IPV6_HEADER_LEN)?.try_into().ok()?;
        if fixed[0] >> 4 != 6 {
            return None;
        }
        let total_len = IPV6_HEADER_LEN + usize::from(u16::from_be_bytes([fixed[4], fixed[5]]));
        if total_len > buf.len() {
            return None;
        }
        let src: [u8; 16] = fixed[8..24].try_into().ok()?;
        let dst: [u8; 16] = fixed[24..40].try_into().ok()?;
        Some(Ipv6Header {
            total_len,
            traffic_class: (fixed[0] << 4) | (fixed[1] >> 4),
            next_header: fixed[6],
            hop_limit: fixed[7],
            src: Ipv6Addr::from(src),
            dst: Ipv6Addr::from(dst),
        })
    }
}

/// Writes a 40-byte IPv6 header (flow label 0) to the end of `out`.
pub(crate) fn push_ipv6_header(
    out: &mut Vec<u8>,
    traffic_class: u8,
    payload_len: u16,
    next_header: u8,
    hop_limit: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
) {
    out.extend_from_slice(&[0x60 | (traffic_class >> 4), traffic_class << 4, 0, 0]);
    out.extend_from_slice(&payload_len.to_be_bytes());
    out.extend_from_slice(&[next_header, hop_limit]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
}

/// Where the upper-layer header of an IPv6 packet is, after its extension headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UpperLayer {
    /// The upper-layer protocol (the last Next Header value).
    pub proto: u8,
    /// Byte offset of the upper-layer header in the packet.
    pub offset: usize,
    /// A Fragment header was present (the upper-layer message may be incomplete).
    pub fragmented: bool,
}

/// At most this many extension headers are walked (RFC 8200 §4.1 expects a handful; a
/// chain longer than this is treated as opaque).
const MAX_EXTENSION_HEADERS: usize = 8;

/// Walks the extension-header chain of an IPv6 packet (RFC 8200 §4; AH per RFC 4302 §2.2)
/// to its upper-layer header. `None` if the chain is truncated, too long, or the packet is
/// a non-first fragment (whose upper-layer header is elsewhere).
pub(crate) fn ipv6_upper_layer(packet: &[u8]) -> Option<UpperLayer> {
    let mut next = *packet.get(6)?;
    let mut offset = IPV6_HEADER_LEN;
    let mut fragmented = false;
    for _ in 0..MAX_EXTENSION_HEADERS {
        let len = match next {
            // Hop-by-Hop Options, Routing, Destination Options: (Hdr Ext Len + 1) × 8.
            0 | 43 | 60 => (usize::from(*packet.get(offset + 1)?) + 1) * 8,
            // Fragment header: fixed 8 bytes; only the first fragment carries the rest.
            44 => {
                let frag = packet.get(offset..offset + 8)?;
                if u16::from_be_bytes([frag[2], frag[3]]) >> 3 != 0 {
                    return None;
                }
                fragmented = true;
                8
            }
            // Authentication Header: (Payload Len + 2) × 4.
            51 => (usize::from(*packet.get(offset + 1)?) + 2) * 4,
            proto => {
                return (offset <= packet.len()).then_some(UpperLayer {
                    proto,
                    offset,
                    fragmented,
                });
            }
        };
        next = *packet.get(offset)?;
        offset += len;
        if offset > packet.len() {
            return None;
        }
    }
    None
}

/// Whether `a` may appear as the source of a packet a router forwards (RFC 1812 §5.3.7):
/// not 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4 (multicast) or 255.255.255.255.
pub(crate) fn v4_source_ok(a: Ipv4Addr) -> bool {
    let o = a.octets();
    !(o[0] == 0 || o[0] == 127 || a.is_multicast() || a.is_broadcast())
}

/// Destinations that are never forwarded nor local (RFC 1812 §5.3.7, §4.2.3.1):
/// 0.0.0.0/8, 127.0.0.0/8 and the limited broadcast address.
pub(crate) fn v4_destination_martian(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 0 || o[0] == 127 || a.is_broadcast()
}

/// 224.0.0.0/24, the link-local multicast block (RFC 5771 §4): never forwarded.
pub(crate) fn v4_link_scope_multicast(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 224 && o[1] == 0 && o[2] == 0
}

/// 169.254.0.0/16 (RFC 3927 §7: routers must not forward it).
pub(crate) fn v4_link_local(a: Ipv4Addr) -> bool {
    a.is_link_local()
}

/// fe80::/10 (RFC 4291 §2.5.6).
pub(crate) fn v6_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xFFC0 == 0xFE80
}

/// Whether `a` may appear as the source of a forwarded packet (RFC 4291 §2.5.2, §2.5.3,
/// §2.7): not ::, ::1, or multicast.
pub(crate) fn v6_source_ok(a: Ipv6Addr) -> bool {
    !(a.is_unspecified() || a.is_loopback() || a.is_multicast())
}

/// :: and ::1 as destinations (RFC 4291 §2.5.2, §2.5.3).
pub(crate) fn v6_destination_martian(a: Ipv6Addr) -> bool {
    a.is_unspecified() || a.is_loopback()
}

/// ff02::/16-style link-local-scope multicast (scope 2, RFC 4291 §2.7): never forwarded.
pub(crate) fn v6_link_scope_multicast(a: Ipv6Addr) -> bool {
    a.is_multicast() && a.segments()[0] & 0x000F == 0x2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 numerical example: sum of 0001 f203 f4f5 f6f7 = ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ones_sum(&data, 0), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_is_zero_padded() {
        assert_eq!(ones_sum(&[0xab], 0), 0xab00);
        assert_eq!(ones_sum(&[0x12, 0x34, 0xab], 0), 0x1234 + 0xab00);
    }

    #[test]
    fn rfc1624_example() {
        // RFC 1624 §4: HC = 0xDD2F, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000.
        assert_eq!(checksum_update(0xDD2F, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn upper_layer_walk() {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[6] = 0; // hop-by-hop
        p.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]); // HBH -> dest opts, 8 bytes
        p.extend_from_slice(&[58, 1, 0, 0, 0, 0, 0, 0]); // dest opts -> ICMPv6, 16 bytes
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&[128, 0, 0, 0]);
        let u = ipv6_upper_layer(&p).expect("walks");
        assert_eq!(u.proto, 58);
        assert_eq!(u.offset, 40 + 8 + 16);
        assert!(!u.fragmented);
        // Truncated chain.
        assert_eq!(ipv6_upper_layer(&p[..50]), None);
        // Non-first fragment.
        let mut f = vec![0u8; 40];
        f[0] = 0x60;
        f[6] = 44;
        f.extend_from_slice(&[58, 0, 0, 8, 0, 0, 0, 1]);
        assert_eq!(ipv6_upper_layer(&f), None);
        f[43] = 1; // offset 0, M = 1
        let u = ipv6_upper_layer(&f).expect("first fragment");
        assert_eq!((u.proto, u.offset, u.fragmented), (58, 48, true));
    }
}
