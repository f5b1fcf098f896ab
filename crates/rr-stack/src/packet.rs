//! IP/UDP/TCP header handling on top of `smoltcp::wire`: classifying incoming packets
//! and building outgoing UDP datagrams. All parsing goes through `new_checked`, so no
//! input can make an accessor panic.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpPacket, UdpPacket,
    UdpRepr,
};

/// IPv4 and IPv6 header lengths of the packets we build (no options).
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const UDP_HEADER: usize = 8;
/// Hop limit / TTL of datagrams we originate.
const HOP_LIMIT: u8 = 64;

/// A validated IP packet.
pub(crate) struct Parsed<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: IpProtocol,
    /// The transport payload (bounded by the IP length field).
    pub payload: &'a [u8],
    /// The whole IP packet, without any trailing bytes beyond its length field.
    pub packet: &'a [u8],
}

/// Parse an IPv4 or IPv6 header. IPv4 header checksum is verified; IPv4 fragments are
/// refused (smoltcp is built without reassembly).
pub(crate) fn parse_ip(buf: &[u8]) -> Option<Parsed<'_>> {
    let version = buf.first()? >> 4;
    match version {
        4 => {
            let p = Ipv4Packet::new_checked(buf).ok()?;
            let r = Ipv4Repr::parse(&p, &ChecksumCapabilities::default()).ok()?;
            if p.more_frags() || p.frag_offset() != 0 {
                return None;
            }
            let total = usize::from(p.total_len());
            let header = usize::from(p.header_len());
            Some(Parsed {
                src: IpAddr::V4(r.src_addr),
                dst: IpAddr::V4(r.dst_addr),
                proto: r.next_header,
                payload: buf.get(header..total)?,
                packet: buf.get(..total)?,
            })
        }
        6 => {
            let p = Ipv6Packet::new_checked(buf).ok()?;
            let r = Ipv6Repr::parse(&p).ok()?;
            let total = IPV6_HEADER + usize::from(p.payload_len());
            Some(Parsed {
                src: IpAddr::V6(r.src_addr),
                dst: IpAddr::V6(r.dst_addr),
                proto: r.next_header,
                payload: buf.get(IPV6_HEADER..total)?,
                packet: buf.get(..total)?,
            })
        }
        _ => None,
    }
}

/// Destination address of an IP packet we emitted (for tunnel pinning).
pub(crate) fn dst_addr(buf: &[u8]) -> Option<IpAddr> {
    parse_ip(buf).map(|p| p.dst)
}

/// A valid UDP datagram: checksum verified (IPv4 zero checksum allowed, IPv6 not).
pub(crate) fn parse_udp<'a>(p: &Parsed<'a>) -> Option<(u16, u16, &'a [u8])> {
    let u = UdpPacket::new_checked(p.payload).ok()?;
    let r = UdpRepr::parse(
        &u,
        &IpAddress::from(p.src),
        &IpAddress::from(p.dst),
        &ChecksumCapabilities::default(),
    )
    .ok()?;
    let len = usize::from(u.len());
    // new_checked guarantees 8 <= len <= payload.len().
    let data = p.payload.get(UDP_HEADER..len)?;
    Some((r.src_port, r.dst_port, data))
}

/// Endpoints of a TCP SYN (without ACK or RST) with a valid checksum.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SynInfo {
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

pub(crate) fn tcp_syn(p: &Parsed<'_>) -> Option<SynInfo> {
    let t = TcpPacket::new_checked(p.payload).ok()?;
    if !t.syn() || t.ack() || t.rst() || t.dst_port() == 0 || t.src_port() == 0 {
        return None;
    }
    if !t.verify_checksum(&IpAddress::from(p.src), &IpAddress::from(p.dst)) {
        return None;
    }
    Some(SynInfo {
        src: SocketAddr::new(p.src, t.src_port()),
        dst: SocketAddr::new(p.dst, t.dst_port()),
    })
}

/// Size of the IP packet carrying a UDP datagram of `len` bytes from `src`.
pub(crate) fn udp_packet_len(src: IpAddr, len: usize) -> usize {
    let ip = match src {
        IpAddr::V4(_) => IPV4_HEADER,
        IpAddr::V6(_) => IPV6_HEADER,
    };
    ip + UDP_HEADER + len
}

/// Build an IP+UDP packet. The caller checked that the families match and the length
/// fits (`udp_packet_len(..) <= mtu <= 65535`).
pub(crate) fn build_udp(src: SocketAddr, dst: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
    let caps = ChecksumCapabilities::default();
    let udp_len = UDP_HEADER + data.len();
    let udp = UdpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
    };
    let (header, mut buf) = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut buf = vec![0u8; IPV4_HEADER + udp_len];
            let repr = Ipv4Repr {
                src_addr: s,
                dst_addr: d,
                next_header: IpProtocol::Udp,
                payload_len: udp_len,
                hop_limit: HOP_LIMIT,
            };
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &caps);
            (IPV4_HEADER, buf)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut buf = vec![0u8; IPV6_HEADER + udp_len];
            let repr = Ipv6Repr {
                src_addr: s,
                dst_addr: d,
                next_header: IpProtocol::Udp,
                payload_len: udp_len,
                hop_limit: HOP_LIMIT,
            };
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
            (IPV6_HEADER, buf)
        }
        _ => return None,
    };
    udp.emit(
        &mut UdpPacket::new_unchecked(&mut buf[header..]),
        &IpAddress::from(src.ip()),
        &IpAddress::from(dst.ip()),
        data.len(),
        |payload| payload.copy_from_slice(data),
        &caps,
    );
    Some(buf)
}

/// fe80::/10.
pub(crate) fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => false,
        IpAddr::V6(a) => is_link_local_v6(a),
    }
}

pub(crate) fn is_link_local_v6(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// A unicast address that may appear on the wire as a source or destination of
/// traffic to or from this node (no unspecified, loopback, multicast or broadcast).
pub(crate) fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast())
        }
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_loopback() || a.is_multicast()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn udp_round_trip_both_families() {
        for (src, dst) in [
            (sa("172.20.0.1:5000"), sa("172.20.0.2:53")),
            (sa("[fe80::1]:6696"), sa("[fd00::2]:6696")),
        ] {
            let bytes = build_udp(src, dst, b"payload").unwrap();
            assert_eq!(bytes.len(), udp_packet_len(src.ip(), 7));
            let p = parse_ip(&bytes).unwrap();
            assert_eq!(
                (p.src, p.dst, p.proto),
                (src.ip(), dst.ip(), IpProtocol::Udp)
            );
            let (sport, dport, data) = parse_udp(&p).unwrap();
            assert_eq!(
                (sport, dport, data),
                (src.port(), dst.port(), &b"payload"[..])
            );
            // Any flipped bit is caught by a checksum or a length check.
            for i in 0..bytes.len() {
                // IPv6 traffic class, flow label and hop limit are not protected.
                if src.is_ipv6() && matches!(i, 1..=3 | 7) {
                    continue;
                }
                let mut b = bytes.clone();
                b[i] ^= 0x10;
                let ok = parse_ip(&b).and_then(|p| {
                    parse_udp(&p).map(|(s, d, x)| (p.proto, p.src, p.dst, s, d, x.to_vec()))
                });
                assert_ne!(
                    ok,
                    Some((
                        IpProtocol::Udp,
                        src.ip(),
                        dst.ip(),
                        src.port(),
                        dst.port(),
                        b"payload".to_vec()
                    )),
                    "flip at {i} went unnoticed"
                );
            }
        }
        assert!(build_udp(sa("1.2.3.4:1"), sa("[::1]:1"), b"").is_none());
    }

    #[test]
    fn address_classes() {
        assert!(is_link_local("fe80::1".parse().unwrap()));
        assert!(is_link_local("febf::1".parse().unwrap()));
        assert!(!is_link_local("fec0::1".parse().unwrap()));
        assert!(!is_link_local("169.254.0.1".parse().unwrap()));
        for bad in [
            "0.0.0.0",
            "127.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "ff02::1",
        ] {
            assert!(!is_unicast(bad.parse().unwrap()), "{bad}");
        }
        assert!(is_unicast("fe80::1".parse().unwrap()));
        assert!(dst_addr(&[0x45]).is_none());
        assert!(parse_ip(&[]).is_none());
    }
}
