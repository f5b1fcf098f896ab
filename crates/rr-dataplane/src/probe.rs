//! ICMP probes sent from the node's own addresses: `ctl ping` and `ctl traceroute`.
//!
//! What it is: builders for ICMP/ICMPv6 echo requests (RFC 792, RFC 4443 §4.1) and a
//! parser that recognises the answers to them — an echo reply, or an ICMP error
//! (time exceeded, destination unreachable, too big) quoting one of our requests.
//!
//! What it is not: a socket or a timer; the node's control loop sends what is built
//! here (through [`crate::forward::Forwarder::from_local`]) and feeds back what the
//! forwarding plane delivers locally.

use crate::forward::wire::{checksum, icmpv6_checksum, push_ipv4_header, push_ipv6_header};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an incoming ICMP packet says about one of our probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub ident: u16,
    pub seq: u16,
    /// Who sent the answer.
    pub from: IpAddr,
    /// TTL / hop limit of the answer as received.
    pub ttl: u8,
    pub kind: AnswerKind,
}

/// The kind of answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerKind {
    EchoReply,
    TimeExceeded,
    Unreachable,
    TooBig,
}

impl AnswerKind {
    /// Human-readable, as ping prints it.
    pub fn describe(self) -> &'static str {
        match self {
            AnswerKind::EchoReply => "echo reply",
            AnswerKind::TimeExceeded => "time exceeded",
            AnswerKind::Unreachable => "destination unreachable",
            AnswerKind::TooBig => "packet too big",
        }
    }
}

/// An echo request from `src` to `dst` with `ttl`, identifier, sequence and a 56-byte
/// payload (as ping sends). `src` and `dst` must be the same family.
pub fn echo_request(src: IpAddr, dst: IpAddr, ttl: u8, ident: u16, seq: u16) -> Option<Vec<u8>> {
    let payload = [0x5a_u8; 56];
    let mut icmp = Vec::with_capacity(8 + payload.len());
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            icmp.extend_from_slice(&[8, 0, 0, 0]);
            icmp.extend_from_slice(&ident.to_be_bytes());
            icmp.extend_from_slice(&seq.to_be_bytes());
            icmp.extend_from_slice(&payload);
            let c = checksum(&icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            let mut p = Vec::with_capacity(20 + icmp.len());
            push_ipv4_header(&mut p, 0, (20 + icmp.len()) as u16, ident, ttl, 1, s, d);
            p.extend_from_slice(&icmp);
            Some(p)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            icmp.extend_from_slice(&[128, 0, 0, 0]);
            icmp.extend_from_slice(&ident.to_be_bytes());
            icmp.extend_from_slice(&seq.to_be_bytes());
            icmp.extend_from_slice(&payload);
            let c = icmpv6_checksum(&s, &d, &icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            let mut p = Vec::with_capacity(40 + icmp.len());
            push_ipv6_header(&mut p, 0, icmp.len() as u16, 58, ttl, s, d);
            p.extend_from_slice(&icmp);
            Some(p)
        }
        _ => None,
    }
}

/// An echo request that carries a program's ICMP message (what a Linux
/// `IPPROTO_ICMP`/`IPPROTO_ICMPV6` datagram socket sends: the message from its type byte
/// on): the type is set to echo request (RFC 792 / RFC 4443 §4.1), the identifier to
/// `ident`, the checksum computed; sequence number and data are the program's. `None`
/// for mixed families or a message shorter than the 8-byte echo header.
pub fn echo_request_with(
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    ident: u16,
    message: &[u8],
) -> Option<Vec<u8>> {
    if message.len() < 8 || message.len() > 65_000 {
        return None;
    }
    let mut icmp = message.to_vec();
    icmp[1] = 0;
    icmp[4..6].copy_from_slice(&ident.to_be_bytes());
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            icmp[0] = 8;
            icmp[2..4].copy_from_slice(&[0, 0]);
            let c = checksum(&icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            let mut p = Vec::with_capacity(20 + icmp.len());
            push_ipv4_header(&mut p, 0, (20 + icmp.len()) as u16, ident, ttl, 1, s, d);
            p.extend_from_slice(&icmp);
            Some(p)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            icmp[0] = 128;
            icmp[2..4].copy_from_slice(&[0, 0]);
            let c = icmpv6_checksum(&s, &d, &icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            let mut p = Vec::with_capacity(40 + icmp.len());
            push_ipv6_header(&mut p, 0, icmp.len() as u16, 58, ttl, s, d);
            p.extend_from_slice(&icmp);
            Some(p)
        }
        _ => None,
    }
}

/// An echo reply (RFC 792 type 0, RFC 4443 §4.2 type 129) as it arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoReply<'a> {
    pub from: IpAddr,
    pub to: IpAddr,
    /// TTL / hop limit as received.
    pub ttl: u8,
    pub ident: u16,
    /// The ICMP message from its type byte on.
    pub message: &'a [u8],
}

/// `packet` if it is an echo reply without IPv6 extension headers. Never panics.
pub fn parse_echo_reply(packet: &[u8]) -> Option<EchoReply<'_>> {
    let (from, to, ttl, message) = match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            if ihl < 20 || packet.len() < ihl + 8 || packet[9] != 1 {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            let end = total.clamp(ihl + 8, packet.len());
            let ip = |o: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    packet[o],
                    packet[o + 1],
                    packet[o + 2],
                    packet[o + 3],
                ))
            };
            (ip(12), ip(16), packet[8], packet.get(ihl..end)?)
        }
        6 => {
            if packet.len() < 48 || packet[6] != 58 {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
            let end = (40 + len).clamp(48, packet.len());
            let ip = |o: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&packet[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            };
            (ip(8), ip(24), packet[7], packet.get(40..end)?)
        }
        _ => return None,
    };
    let want = if from.is_ipv4() { 0 } else { 129 };
    if message.first() != Some(&want) {
        return None;
    }
    Some(EchoReply {
        from,
        to,
        ttl,
        ident: u16::from_be_bytes([*message.get(4)?, *message.get(5)?]),
        message,
    })
}

/// Writes `ident` into an echo message (from its type byte on) and fixes its checksum;
/// `src`/`dst` are the packet's addresses (ICMPv6's checksum covers them).
pub fn set_echo_ident(src: IpAddr, dst: IpAddr, message: &mut [u8], ident: u16) {
    if message.len() < 8 {
        return;
    }
    message[4..6].copy_from_slice(&ident.to_be_bytes());
    message[2..4].copy_from_slice(&[0, 0]);
    let c = match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => icmpv6_checksum(&s, &d, message),
        _ => checksum(message),
    };
    message[2..4].copy_from_slice(&c.to_be_bytes());
}

/// If `packet` answers one of our echo requests, what it says. Never panics.
pub fn parse_answer(packet: &[u8]) -> Option<ProbeAnswer> {
    // Per family: who answered, its TTL, and the ICMP message whose identifier and
    // sequence number are ours — the reply itself, or the echo request an error quotes.
    // Either way they sit at bytes 4..8 of that ICMP header.
    let (from, ttl, kind, echo) = match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            if ihl < 20 || packet.len() < ihl + 8 || packet[9] != 1 {
                return None;
            }
            let from = IpAddr::V4(Ipv4Addr::new(
                packet[12], packet[13], packet[14], packet[15],
            ));
            let icmp = &packet[ihl..];
            let kind = match icmp[0] {
                0 => AnswerKind::EchoReply,
                11 => AnswerKind::TimeExceeded,
                3 if icmp[1] == 4 => AnswerKind::TooBig,
                3 => AnswerKind::Unreachable,
                _ => return None,
            };
            let echo = if kind == AnswerKind::EchoReply {
                icmp
            } else {
                // The quoted packet: our IPv4 echo request.
                let q = &icmp[8..];
                let qihl = usize::from(*q.first()? & 0x0f) * 4;
                if q[0] >> 4 != 4 || qihl < 20 || q.len() < qihl + 8 || q[9] != 1 || q[qihl] != 8 {
                    return None;
                }
                &q[qihl..]
            };
            (from, packet[8], kind, echo)
        }
        6 => {
            if packet.len() < 48 || packet[6] != 58 {
                return None;
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&packet[8..24]);
            let icmp = &packet[40..];
            let kind = match icmp[0] {
                129 => AnswerKind::EchoReply,
                1 => AnswerKind::Unreachable,
                2 => AnswerKind::TooBig,
                3 => AnswerKind::TimeExceeded,
                _ => return None,
            };
            let echo = if kind == AnswerKind::EchoReply {
                icmp
            } else {
                // The quoted packet: our IPv6 echo request.
                let q = &icmp[8..];
                if q.len() < 48 || q[0] >> 4 != 6 || q[6] != 58 || q[40] != 128 {
                    return None;
                }
                &q[40..]
            };
            (IpAddr::V6(Ipv6Addr::from(a)), packet[7], kind, echo)
        }
        _ => return None,
    };
    Some(ProbeAnswer {
        ident: u16::from_be_bytes([echo[4], echo[5]]),
        seq: u16::from_be_bytes([echo[6], echo[7]]),
        from,
        ttl,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::wire::{checksum_ok, icmpv6_checksum_ok};

    #[test]
    fn request_checksums_verify_and_replies_parse() {
        let s: IpAddr = "172.20.0.1".parse().unwrap();
        let d: IpAddr = "172.20.1.1".parse().unwrap();
        let p = echo_request(s, d, 64, 0x1234, 7).unwrap();
        assert!(checksum_ok(&p[..20]));
        assert!(checksum_ok(&p[20..]));
        // Turn it into the reply a peer would send.
        let mut r = p.clone();
        r[12..16].copy_from_slice(&p[16..20]);
        r[16..20].copy_from_slice(&p[12..16]);
        r[20] = 0;
        let a = parse_answer(&r).unwrap();
        assert_eq!(
            (a.ident, a.seq, a.kind, a.from),
            (0x1234, 7, AnswerKind::EchoReply, d)
        );
        // A time exceeded from a router quoting the request.
        let mut icmp = vec![11, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&p[..28]);
        let mut te = Vec::new();
        let (from, to) = ("172.20.9.9".parse().unwrap(), "172.20.0.1".parse().unwrap());
        push_ipv4_header(&mut te, 0, (20 + icmp.len()) as u16, 0, 63, 1, from, to);
        te.extend_from_slice(&icmp);
        let a = parse_answer(&te).unwrap();
        assert_eq!(
            (a.ident, a.seq, a.kind),
            (0x1234, 7, AnswerKind::TimeExceeded)
        );
    }

    #[test]
    fn v6_request_checksum_and_answers() {
        let s: Ipv6Addr = "fd00:1::1".parse().unwrap();
        let d: Ipv6Addr = "fd00:a::1".parse().unwrap();
        let p = echo_request(s.into(), d.into(), 64, 9, 3).unwrap();
        assert!(icmpv6_checksum_ok(&s, &d, &p[40..]));
        let mut icmp = vec![3, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&p);
        let mut te = vec![0x60, 0, 0, 0, 0, 0, 58, 60];
        te.extend_from_slice(&"fd00:9::9".parse::<Ipv6Addr>().unwrap().octets());
        te.extend_from_slice(&s.octets());
        te.extend_from_slice(&icmp);
        let a = parse_answer(&te).unwrap();
        assert_eq!(
            (a.ident, a.seq, a.kind, a.ttl),
            (9, 3, AnswerKind::TimeExceeded, 60)
        );
    }

    #[test]
    fn program_echo_requests_and_their_replies() {
        for (s, d) in [("172.20.0.1", "172.20.1.1"), ("fd00:1::1", "fd00:a::1")] {
            let (s, d): (IpAddr, IpAddr) = (s.parse().unwrap(), d.parse().unwrap());
            // A program's message: its own identifier 0x0101, sequence 5, 4 data bytes.
            let msg = [8, 0, 0, 0, 1, 1, 0, 5, b'p', b'i', b'n', b'g'];
            let p = echo_request_with(s, d, 64, 0x7777, &msg).unwrap();
            let off = if s.is_ipv4() { 20 } else { 40 };
            match (s, d) {
                (IpAddr::V6(a), IpAddr::V6(b)) => assert!(icmpv6_checksum_ok(&a, &b, &p[off..])),
                _ => assert!(checksum_ok(&p[off..])),
            }
            // The peer's reply: addresses swapped, type changed.
            let mut r = p.clone();
            let (sa, da) = if s.is_ipv4() {
                (12..16, 16..20)
            } else {
                (8..24, 24..40)
            };
            r[sa.clone()].copy_from_slice(&p[da.clone()]);
            r[da].copy_from_slice(&p[sa]);
            r[off] = if s.is_ipv4() { 0 } else { 129 };
            let e = parse_echo_reply(&r).unwrap();
            assert_eq!((e.from, e.to, e.ident, e.ttl), (d, s, 0x7777, 64));
            assert_eq!(&e.message[6..], &msg[6..]);
            let mut m = e.message.to_vec();
            set_echo_ident(d, s, &mut m, 0x0101);
            assert_eq!(&m[4..6], &[1, 1]);
            match (d, s) {
                (IpAddr::V6(a), IpAddr::V6(b)) => assert!(icmpv6_checksum_ok(&a, &b, &m)),
                _ => assert!(checksum_ok(&m)),
            }
            // A request is not a reply.
            assert!(parse_echo_reply(&p).is_none());
        }
        assert!(echo_request_with(
            "172.20.0.1".parse().unwrap(),
            "172.20.0.2".parse().unwrap(),
            64,
            1,
            &[8, 0, 0]
        )
        .is_none());
    }

    #[test]
    fn garbage_never_panics() {
        let mut x = 88172645463325252u64;
        for len in 0..200 {
            for _ in 0..50 {
                let mut v: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                if let Some(f) = v.first_mut() {
                    *f = if x & 1 == 0 { 0x45 } else { 0x60 };
                }
                if v.len() > 9 {
                    v[9] = 1;
                    if v.len() > 6 {
                        v[6] = 58;
                    }
                }
                let _ = parse_answer(&v);
                let _ = parse_echo_reply(&v);
            }
        }
    }
}
