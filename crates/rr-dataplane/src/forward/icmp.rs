//! ICMP and ICMPv6 messages the forwarder originates: errors (RFC 792, RFC 1191, RFC 1812
//! §4.3.2, RFC 4443 §3) and echo replies (RFC 792, RFC 4443 §4.2), plus the error rate
//! limiter (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)).
//!
//! What it is: builders that write a complete IP packet into a caller-owned buffer, and
//! a token bucket driven by the caller's `now`.
//!
//! What it is not: the policy of when to send an error (that is in the parent module),
//! nor a parser of received ICMP beyond what an echo request needs.

use super::wire::{
    checksum, icmpv6_checksum, push_ipv4_header, push_ipv6_header, IPV4_HEADER_LEN,
    IPV6_HEADER_LEN, PROTO_ICMP, PROTO_ICMPV6,
};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// TTL / hop limit of packets the forwarder originates.
pub(crate) const ORIGINATED_TTL: u8 = 64;
/// Largest IPv4 ICMP error: RFC 1812 §4.3.2.3 "SHOULD NOT exceed 576 bytes".
pub(crate) const ICMPV4_ERROR_MAX: usize = 576;
/// Largest ICMPv6 error: the IPv6 minimum MTU (RFC 4443 §2.4(c)).
pub(crate) const ICMPV6_ERROR_MAX: usize = 1280;
/// Length of the ICMP / ICMPv6 header including its 4-byte type-specific field.
pub(crate) const ICMP_HEADER_LEN: usize = 8;
/// TOS of ICMPv4 errors: precedence 6, internetwork control (RFC 1812 §4.3.2.5).
const ICMPV4_ERROR_TOS: u8 = 0xC0;

/// ICMPv4 message types (RFC 792) the forwarder uses or must recognise.
pub(crate) mod v4 {
    pub(crate) const ECHO_REPLY: u8 = 0;
    pub(crate) const DEST_UNREACHABLE: u8 = 3;
    pub(crate) const ECHO_REQUEST: u8 = 8;
    pub(crate) const TIME_EXCEEDED: u8 = 11;
    /// Destination unreachable code 0, net unreachable.
    pub(crate) const CODE_NET_UNREACHABLE: u8 = 0;
    /// Destination unreachable code 4, fragmentation needed and DF set (RFC 1191 §4).
    pub(crate) const CODE_FRAG_NEEDED: u8 = 4;
    /// Time exceeded code 0, TTL exceeded in transit.
    pub(crate) const CODE_TTL_EXCEEDED: u8 = 0;

    /// Error types about which no error is sent (RFC 1812 §4.3.2.7, RFC 1122 §3.2.2):
    /// destination unreachable, source quench, redirect, time exceeded, parameter problem.
    pub(crate) fn is_error(icmp_type: u8) -> bool {
        matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
    }
}

/// ICMPv6 message types (RFC 4443) the forwarder uses or must recognise.
pub(crate) mod v6 {
    pub(crate) const DEST_UNREACHABLE: u8 = 1;
    pub(crate) const PACKET_TOO_BIG: u8 = 2;
    pub(crate) const TIME_EXCEEDED: u8 = 3;
    pub(crate) const ECHO_REQUEST: u8 = 128;
    pub(crate) const ECHO_REPLY: u8 = 129;
    /// Destination unreachable code 0, no route to destination.
    pub(crate) const CODE_NO_ROUTE: u8 = 0;
    /// Destination unreachable code 2, beyond scope of source address.
    pub(crate) const CODE_BEYOND_SCOPE: u8 = 2;
    /// Time exceeded code 0, hop limit exceeded in transit.
    pub(crate) const CODE_HOP_LIMIT: u8 = 0;

    /// Error messages have types 0..=127 (RFC 4443 §2.1); no error is sent about them
    /// (RFC 4443 §2.4(e.1)).
    pub(crate) fn is_error(icmp_type: u8) -> bool {
        icmp_type < 128
    }
}

/// Writes an ICMPv4 error (RFC 792) from `src` to `dst` into `out` (cleared first):
/// a 20-byte IP header (TTL 64, TOS 0xC0), the 8-byte ICMP header with `rest` as its bytes
/// 4..8 (zero, or the next-hop MTU for code 4 per RFC 1191 §4), then `quote` (the caller
/// limits it so the whole fits 576 bytes, RFC 1812 §4.3.2.3).
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_v4_error(
    out: &mut Vec<u8>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    icmp_type: u8,
    code: u8,
    rest: [u8; 4],
    quote: &[u8],
) {
    out.clear();
    let total = IPV4_HEADER_LEN + ICMP_HEADER_LEN + quote.len();
    let total16 = u16::try_from(total).unwrap_or(u16::MAX);
    push_ipv4_header(
        out,
        ICMPV4_ERROR_TOS,
        total16,
        ident,
        ORIGINATED_TTL,
        PROTO_ICMP,
        src,
        dst,
    );
    out.extend_from_slice(&[icmp_type, code, 0, 0]);
    out.extend_from_slice(&rest);
    out.extend_from_slice(quote);
    let csum = checksum(&out[IPV4_HEADER_LEN..]);
    out[IPV4_HEADER_LEN + 2..IPV4_HEADER_LEN + 4].copy_from_slice(&csum.to_be_bytes());
}

/// Writes an ICMPv6 error (RFC 4443 §3) from `src` to `dst` into `out` (cleared first):
/// a 40-byte IPv6 header (hop limit 64), the 8-byte ICMPv6 header with `rest` as bytes 4..8
/// (zero, or the MTU of a Packet Too Big), then `quote` (the caller limits it so the whole
/// fits 1280 bytes, RFC 4443 §2.4(c)). Checksum over the pseudo-header (RFC 4443 §2.3).
pub(crate) fn build_v6_error(
    out: &mut Vec<u8>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    icmp_type: u8,
    code: u8,
    rest: [u8; 4],
    quote: &[u8],
) {
    out.clear();
    let payload = ICMP_HEADER_LEN + quote.len();
    let payload16 = u16::try_from(payload).unwrap_or(u16::MAX);
    push_ipv6_header(out, 0, payload16, PROTO_ICMPV6, ORIGINATED_TTL, src, dst);
    out.extend_from_slice(&[icmp_type, code, 0, 0]);
    out.extend_from_slice(&rest);
    out.extend_from_slice(quote);
    let csum = icmpv6_checksum(&src, &dst, &out[IPV6_HEADER_LEN..]);
    out[IPV6_HEADER_LEN + 2..IPV6_HEADER_LEN + 4].copy_from_slice(&csum.to_be_bytes());
}

/// Writes the ICMPv4 echo reply (RFC 792 "Echo or Echo Reply Message") to the echo
/// `request` message (ICMP header onwards, >= 8 bytes) into `out`: addresses swapped
/// (`src` is the address that was pinged), TOS kept, TTL 64, no IP options, type 0,
/// identifier, sequence number and data unchanged.
pub(crate) fn build_v4_echo_reply(
    out: &mut Vec<u8>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    tos: u8,
    ident: u16,
    request: &[u8],
) {
    out.clear();
    let total = u16::try_from(IPV4_HEADER_LEN + request.len()).unwrap_or(u16::MAX);
    push_ipv4_header(out, tos, total, ident, ORIGINATED_TTL, PROTO_ICMP, src, dst);
    out.extend_from_slice(request);
    let icmp = &mut out[IPV4_HEADER_LEN..];
    icmp[0] = v4::ECHO_REPLY;
    icmp[2..4].copy_from_slice(&[0, 0]);
    let csum = checksum(icmp);
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());
}

/// Writes the ICMPv6 echo reply (RFC 4443 §4.2) to the echo `request` message into `out`:
/// `src` is the address that was pinged, traffic class kept, hop limit 64, no extension
/// headers, type 129, identifier, sequence number and data unchanged.
pub(crate) fn build_v6_echo_reply(
    out: &mut Vec<u8>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    traffic_class: u8,
    request: &[u8],
) {
    out.clear();
    let payload = u16::try_from(request.len()).unwrap_or(u16::MAX);
    push_ipv6_header(
        out,
        traffic_class,
        payload,
        PROTO_ICMPV6,
        ORIGINATED_TTL,
        src,
        dst,
    );
    out.extend_from_slice(request);
    let icmp = &mut out[IPV6_HEADER_LEN..];
    icmp[0] = v6::ECHO_REPLY;
    icmp[2..4].copy_from_slice(&[0, 0]);
    let csum = icmpv6_checksum(&src, &dst, icmp);
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());
}

/// A token bucket limiting ICMP errors (RFC 4443 §2.4(f), RFC 1812 §4.3.2.8): up to
/// `burst` errors at once, refilled at `per_sec` tokens per second. Driven by the caller's
/// clock; a `now` earlier than the last one is treated as no time passing.
#[derive(Clone, Debug)]
pub(crate) struct RateLimiter {
    per_sec: u32,
    burst: u32,
    tokens: u32,
    /// The instant the current token count was accurate at; `None` until first use
    /// (the bucket starts full).
    last: Option<Instant>,
}

impl RateLimiter {
    pub(crate) fn new(per_sec: u32, burst: u32) -> Self {
        RateLimiter {
            per_sec,
            burst,
            tokens: burst,
            last: None,
        }
    }

    /// Takes a token if one is available at `now`.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        match self.last {
            None => {
                self.tokens = self.burst;
                self.last = Some(now);
            }
            Some(last) if self.per_sec > 0 => {
                const NANOS: u128 = 1_000_000_000;
                let elapsed = now.saturating_duration_since(last).as_nanos();
                let per_sec = u128::from(self.per_sec);
                let new = elapsed.saturating_mul(per_sec) / NANOS;
                if new > 0 {
                    let room = u128::from(self.burst - self.tokens.min(self.burst));
                    if new >= room {
                        self.tokens = self.burst;
                        self.last = Some(now);
                    } else {
                        // new < room <= u32::MAX.
                        self.tokens += new as u32;
                        // Advance by exactly the time those tokens took, keeping the
                        // fraction of the next one (no drift at low rates).
                        let used = new * NANOS / per_sec;
                        self.last = Some(last + Duration::from_nanos(used as u64));
                    }
                }
            }
            Some(_) => {}
        }
        if self.tokens >= self.burst {
            // A full bucket does not accumulate: the refill clock restarts when it drains.
            self.last = Some(now);
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_starts_full_and_refills() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(10, 3);
        assert!(rl.allow(t0));
        assert!(rl.allow(t0));
        assert!(rl.allow(t0));
        assert!(!rl.allow(t0));
        // 99 ms: not yet a whole token at 10/s.
        assert!(!rl.allow(t0 + Duration::from_millis(99)));
        assert!(rl.allow(t0 + Duration::from_millis(100)));
        assert!(!rl.allow(t0 + Duration::from_millis(150)));
        // Fractions are kept: 100 ms after the previous refill point.
        assert!(rl.allow(t0 + Duration::from_millis(200)));
        // Long idle: capped at burst.
        let t1 = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(rl.allow(t1));
        }
        assert!(!rl.allow(t1));
        // Clock going backwards: no refill, no panic.
        assert!(!rl.allow(t0));
    }

    #[test]
    fn zero_rate_or_burst() {
        let t0 = Instant::now();
        let mut none = RateLimiter::new(100, 0);
        assert!(!none.allow(t0));
        assert!(!none.allow(t0 + Duration::from_secs(10)));
        let mut once = RateLimiter::new(0, 1);
        assert!(once.allow(t0));
        assert!(!once.allow(t0 + Duration::from_secs(10)));
    }
}
