//! ICMP probes sent from the node's own addresses: `ctl ping` and `ctl traceroute`.
//!
//! What it is: builders for ICMP/ICMPv6 echo requests (RFC 792, RFC 4443 §4.1) and a
//! parser that recognises the answers to them — an echo reply, or an ICMP error
//! (time exceeded, destination unreachable, too big) quoting one of our requests.
//!
//! What it is not: a socket or a timer; the control loop sends what is built here and
//! feeds back what the forwarding plane delivers locally.

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

/// The Internet checksum (RFC 1071) over `data`, starting from `sum`.
fn checksum(mut sum: u32, data: &[u8]) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_v6(src: &Ipv6Addr, dst: &Ipv6Addr, len: usize, next: u8) -> u32 {
    let mut sum = 0u32;
    for a in [src.octets(), dst.octets()] {
        for c in a.chunks_exact(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
    }
    sum + (len as u32 >> 16) + (len as u32 & 0xffff) + u32::from(next)
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
            let c = checksum(0, &icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            Some(ipv4(s, d, ttl, 1, &icmp))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            icmp.extend_from_slice(&[128, 0, 0, 0]);
            icmp.extend_from_slice(&ident.to_be_bytes());
            icmp.extend_from_slice(&seq.to_be_bytes());
            icmp.extend_from_slice(&payload);
            let c = checksum(pseudo_v6(&s, &d, icmp.len(), 58), &icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            let mut p = Vec::with_capacity(40 + icmp.len());
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
            p.extend_from_slice(&[58, ttl]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&icmp);
            Some(p)
        }
        _ => None,
    }
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut p = Vec::with_capacity(total as usize);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, ttl, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = checksum(0, &p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// If `packet` answers one of our echo requests, what it says. Never panics.
pub fn parse_answer(packet: &[u8]) -> Option<ProbeAnswer> {
    match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            if ihl < 20 || packet.len() < ihl + 8 || packet[9] != 1 {
                return None;
            }
            let from = IpAddr::V4(Ipv4Addr::new(
                packet[12], packet[13], packet[14], packet[15],
            ));
            let ttl = packet[8];
            let icmp = &packet[ihl..];
            let kind = match icmp[0] {
                0 => {
                    return Some(ProbeAnswer {
                        ident: u16::from_be_bytes([icmp[4], icmp[5]]),
                        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
                        from,
                        ttl,
                        kind: AnswerKind::EchoReply,
                    })
                }
                11 => AnswerKind::TimeExceeded,
                3 if icmp[1] == 4 => AnswerKind::TooBig,
                3 => AnswerKind::Unreachable,
                _ => return None,
            };
            // The quoted packet: our IPv4 echo request.
            let q = &icmp[8..];
            let qihl = usize::from(*q.first()? & 0x0f) * 4;
            if q[0] >> 4 != 4 || qihl < 20 || q.len() < qihl + 8 || q[9] != 1 || q[qihl] != 8 {
                return None;
            }
            let qi = &q[qihl..];
            Some(ProbeAnswer {
                ident: u16::from_be_bytes([qi[4], qi[5]]),
                seq: u16::from_be_bytes([qi[6], qi[7]]),
                from,
                ttl,
                kind,
            })
        }
        6 => {
            if packet.len() < 48 || packet[6] != 58 {
                return None;
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&packet[8..24]);
            let from = IpAddr::V6(Ipv6Addr::from(a));
            let ttl = packet[7];
            let icmp = &packet[40..];
            let kind = match icmp[0] {
                129 => {
                    return Some(ProbeAnswer {
                        ident: u16::from_be_bytes([icmp[4], icmp[5]]),
                        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
                        from,
                        ttl,
                        kind: AnswerKind::EchoReply,
                    })
                }
                1 => AnswerKind::Unreachable,
                2 => AnswerKind::TooBig,
                3 => AnswerKind::TimeExceeded,
                _ => return None,
            };
            let q = &icmp[8..];
            if q.len() < 48 || q[0] >> 4 != 6 || q[6] != 58 || q[40] != 128 {
                return None;
            }
            Some(ProbeAnswer {
                ident: u16::from_be_bytes([q[44], q[45]]),
                seq: u16::from_be_bytes([q[46], q[47]]),
                from,
                ttl,
                kind,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checksums_verify_and_replies_parse() {
        let s: IpAddr = "172.20.0.1".parse().unwrap();
        let d: IpAddr = "172.20.1.1".parse().unwrap();
        let p = echo_request(s, d, 64, 0x1234, 7).unwrap();
        assert_eq!(checksum(0, &p[..20]), 0);
        assert_eq!(checksum(0, &p[20..]), 0);
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
        let te = ipv4(
            "172.20.9.9".parse().unwrap(),
            "172.20.0.1".parse().unwrap(),
            63,
            1,
            &icmp,
        );
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
        assert_eq!(checksum(pseudo_v6(&s, &d, p.len() - 40, 58), &p[40..]), 0);
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
            }
        }
    }
}
