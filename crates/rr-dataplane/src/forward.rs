//! The forwarding core: what happens to one IP packet that arrived from a tunnel or was
//! originated by the node itself.
//!
//! What it is: a synchronous, sans-IO decision procedure ([`Forwarder`]) that takes `now`,
//! a packet, a [`Fib`] snapshot and a [`Sink`], and
//! - validates the IPv4 (RFC 791, RFC 1812 §5.2.2) or IPv6 (RFC 8200) header — any byte
//!   string is accepted without panicking; trailing tunnel padding beyond the IP length is
//!   ignored;
//! - delivers packets for the node's own addresses to the local stack, answering ICMP /
//!   ICMPv6 echo requests itself (RFC 792, RFC 4443 §4.2);
//! - scopes IPv6 link-local addresses (and IPv4 169.254/16) to the tunnel they belong to
//!   and never forwards them (RFC 4291 §2.5.6, RFC 4007 §9, RFC 3927 §7);
//! - forwards by longest-prefix match, decrementing TTL / hop limit (RFC 1812 §5.3.1,
//!   RFC 8200 §3) with the RFC 1624 incremental checksum update;
//! - sends ICMP errors — time exceeded, net unreachable, fragmentation needed (RFC 792,
//!   RFC 1191, RFC 1812 §4.3.2), ICMPv6 time exceeded, no route, beyond scope, packet too
//!   big (RFC 4443 §3, RFC 8201) — sourced from the node's addresses and rate limited by a
//!   token bucket (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f));
//! - fragments IPv4 packets without DF that exceed the egress MTU (RFC 791).
//!
//! What it is not: I/O (nothing here touches a socket or reads the clock), reassembly,
//! IP options processing (options are forwarded untouched; source-route options are not
//! acted upon), multicast routing, IPv6 fragmentation of the node's own packets, ICMP
//! redirects, or a transport stack: TCP, UDP and other ICMP go to [`Sink::deliver_local`].
//!
//! Allocation: forwarding a packet that fits the egress MTU allocates nothing and rewrites
//! at most three bytes in place. ICMP messages and fragments are built in scratch buffers
//! owned by the [`Forwarder`], which grow once and are reused.

mod frag;
mod icmp;
pub(crate) mod wire;

#[cfg(test)]
mod tests;

use icmp::RateLimiter;
use rr_fib::{Fib, IfIndex};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;
use wire::{
    checksum_ok, decrement_ttl_v4, icmpv6_checksum_ok, ipv6_upper_layer, v4_destination_martian,
    v4_link_local, v4_link_scope_multicast, v4_source_ok, v6_destination_martian, v6_link_local,
    v6_link_scope_multicast, v6_source_ok, Ipv4Header, Ipv6Header, IPV4_HEADER_LEN,
    IPV6_HEADER_LEN, PROTO_ICMP, PROTO_ICMPV6,
};

/// Default sustained rate of ICMP errors per [`Forwarder`], per second.
pub const DEFAULT_ICMP_ERRORS_PER_SEC: u32 = 100;
/// Default burst of ICMP errors per [`Forwarder`].
pub const DEFAULT_ICMP_ERROR_BURST: u32 = 50;

/// What the forwarder knows about one tunnel.
#[derive(Clone, Debug)]
pub struct IfaceInfo {
    /// Inner MTU of the tunnel, e.g. 1420.
    pub mtu: u16,
    /// This node's fe80::/10 addresses on this tunnel (scoped to it).
    pub link_local: Vec<Ipv6Addr>,
    /// This node's other (non-link-local) addresses configured on this tunnel.
    pub addrs: Vec<IpAddr>,
}

/// The node's addresses and tunnels, indexed by [`IfIndex`].
#[derive(Clone, Debug, Default)]
pub struct LocalConfig {
    /// The tunnels; `ifaces[i]` describes tunnel `i`.
    pub ifaces: Vec<IfaceInfo>,
    /// `[router].addresses` (host parts of the configured CIDRs).
    pub router_addrs: Vec<IpAddr>,
}

/// Whether `a` is an IPv6 link-local (fe80::/10) address.
fn is_v6_link_local(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if v6_link_local(v6))
}

fn v4_of(addrs: &[IpAddr]) -> Option<Ipv4Addr> {
    addrs.iter().find_map(|a| match a {
        IpAddr::V4(v4) => Some(*v4),
        IpAddr::V6(_) => None,
    })
}

fn global_v6_of(addrs: &[IpAddr]) -> Option<Ipv6Addr> {
    addrs.iter().find_map(|a| match a {
        IpAddr::V6(v6) if !v6_link_local(*v6) => Some(*v6),
        _ => None,
    })
}

impl LocalConfig {
    /// The tunnel `iface`, if it exists.
    pub fn iface(&self, iface: IfIndex) -> Option<&IfaceInfo> {
        self.ifaces.get(usize::try_from(iface).ok()?)
    }

    /// Is `dst` one of this node's addresses, as seen from a packet that arrived on `scope`?
    /// Global addresses (router_addrs and every iface's addrs) are local on every tunnel;
    /// a link-local address only on its own tunnel (RFC 4007 §6).
    pub fn is_local(&self, scope: IfIndex, dst: IpAddr) -> bool {
        if is_v6_link_local(dst) {
            self.iface(scope).is_some_and(|i| {
                i.addrs.contains(&dst)
                    || matches!(dst, IpAddr::V6(v6) if i.link_local.contains(&v6))
            })
        } else {
            self.router_addrs.contains(&dst) || self.ifaces.iter().any(|i| i.addrs.contains(&dst))
        }
    }

    /// Source address for ICMPv4 errors/replies sent out of / caused on `iface`: first IPv4
    /// in router_addrs, else the iface's first IPv4 addr, else any IPv4 of any iface; `None`
    /// if the node has no IPv4 at all.
    pub fn icmp_source_v4(&self, iface: IfIndex) -> Option<Ipv4Addr> {
        v4_of(&self.router_addrs)
            .or_else(|| self.iface(iface).and_then(|i| v4_of(&i.addrs)))
            .or_else(|| self.ifaces.iter().find_map(|i| v4_of(&i.addrs)))
    }

    /// Source address for ICMPv6 errors sent out of / caused on `iface`. If
    /// `dst_is_link_local` and the iface has a link-local address, that one (RFC 6724
    /// rule 2: match the destination's scope). Otherwise a global (non-link-local)
    /// address: router_addrs first, then the iface's, then any iface's; if none exists,
    /// the iface's first link-local address.
    pub fn icmp_source_v6(&self, iface: IfIndex, dst_is_link_local: bool) -> Option<Ipv6Addr> {
        let link_local = self
            .iface(iface)
            .and_then(|i| i.link_local.first().copied());
        if dst_is_link_local && link_local.is_some() {
            return link_local;
        }
        global_v6_of(&self.router_addrs)
            .or_else(|| self.iface(iface).and_then(|i| global_v6_of(&i.addrs)))
            .or_else(|| self.ifaces.iter().find_map(|i| global_v6_of(&i.addrs)))
            .or(link_local)
    }
}

/// Where the forwarder's output goes.
pub trait Sink {
    /// Send a complete IP packet out of tunnel `iface` (the caller encrypts it).
    fn transmit(&mut self, iface: IfIndex, packet: &[u8]);
    /// A packet for one of the node's own addresses that the forwarder does not answer
    /// itself (TCP, UDP, ICMP other than echo request, link-scope multicast, ...).
    /// `scope` = the tunnel it arrived on.
    fn deliver_local(&mut self, scope: IfIndex, packet: &[u8]);
}

/// Why a packet was not forwarded or delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not a valid IPv4/IPv6 packet (bad version, lengths, header checksum, echo checksum,
    /// IPv4 options that cannot be parsed for fragmentation).
    Malformed,
    /// TTL / hop limit would reach zero (RFC 1812 §5.3.1, RFC 8200 §3).
    TtlExceeded,
    /// No route to the destination.
    NoRoute,
    /// Larger than the egress MTU and not fragmentable (DF set, IPv6, or MTU too small).
    TooBig,
    /// A link-local source or destination that cannot leave its tunnel (RFC 4007 §9).
    LinkLocalScope,
    /// An ICMP error was due but the node has no address of that family to send it from.
    NoSourceAddress,
    /// Source is unspecified, loopback, multicast, broadcast, or one of the node's own
    /// addresses arriving from outside (RFC 1812 §5.3.7, RFC 4291).
    BadSource,
    /// Destination is 0.0.0.0/8, 127.0.0.0/8, 255.255.255.255, :: or ::1.
    BadDestination,
    /// Multicast destination other than link-scope (no multicast routing).
    Multicast,
    /// The route or configuration points at a tunnel index that does not exist.
    UnknownIface,
}

impl DropReason {
    /// Every reason, for pre-registering metric labels.
    pub const ALL: [DropReason; 10] = [
        DropReason::Malformed,
        DropReason::TtlExceeded,
        DropReason::NoRoute,
        DropReason::TooBig,
        DropReason::LinkLocalScope,
        DropReason::NoSourceAddress,
        DropReason::BadSource,
        DropReason::BadDestination,
        DropReason::Multicast,
        DropReason::UnknownIface,
    ];

    /// The reason in snake_case, used as a metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::NoRoute => "no_route",
            DropReason::TooBig => "too_big",
            DropReason::LinkLocalScope => "link_local_scope",
            DropReason::NoSourceAddress => "no_source_address",
            DropReason::BadSource => "bad_source",
            DropReason::BadDestination => "bad_destination",
            DropReason::Multicast => "multicast",
            DropReason::UnknownIface => "unknown_iface",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Sent whole out of `iface`.
    Forwarded { iface: IfIndex },
    /// Sent out of `iface` as `fragments` IPv4 fragments.
    Fragmented { iface: IfIndex, fragments: usize },
    /// Handed to [`Sink::deliver_local`].
    Local,
    /// The forwarder answered an echo request to a local address.
    EchoReplied,
    /// Not forwarded; `icmp_sent` says whether an ICMP error went back to the source.
    Dropped { reason: DropReason, icmp_sent: bool },
}

fn dropped(reason: DropReason) -> Disposition {
    Disposition::Dropped {
        reason,
        icmp_sent: false,
    }
}

/// How a packet left.
enum Sent {
    Whole,
    Fragments(usize),
}

impl Sent {
    fn disposition(self, iface: IfIndex) -> Disposition {
        match self {
            Sent::Whole => Disposition::Forwarded { iface },
            Sent::Fragments(fragments) => Disposition::Fragmented { iface, fragments },
        }
    }
}

/// An ICMP error could not be sent because the node has no address to send it from.
struct NoSourceAddress;

/// Sends the IPv4 packet `pkt` (exactly one packet) out of `iface`, fragmenting it (DF or
/// not) if it exceeds the MTU.
fn send_v4(
    config: &LocalConfig,
    frag_buf: &mut Vec<u8>,
    iface: IfIndex,
    pkt: &[u8],
    sink: &mut impl Sink,
) -> Result<Sent, DropReason> {
    let mtu = usize::from(config.iface(iface).ok_or(DropReason::UnknownIface)?.mtu);
    if pkt.len() <= mtu {
        sink.transmit(iface, pkt);
        return Ok(Sent::Whole);
    }
    let hdr = Ipv4Header::parse(pkt).ok_or(DropReason::Malformed)?;
    frag::fragment_v4(pkt, &hdr, mtu, frag_buf, |f| sink.transmit(iface, f))
        .map(Sent::Fragments)
        .map_err(|e| match e {
            frag::FragError::MtuTooSmall => DropReason::TooBig,
            frag::FragError::BadOptions | frag::FragError::OffsetOverflow => DropReason::Malformed,
        })
}

/// Sends the IPv6 packet `pkt` out of `iface` if it fits the MTU.
fn send_v6(
    config: &LocalConfig,
    iface: IfIndex,
    pkt: &[u8],
    sink: &mut impl Sink,
) -> Result<Sent, DropReason> {
    let mtu = usize::from(config.iface(iface).ok_or(DropReason::UnknownIface)?.mtu);
    if pkt.len() > mtu {
        return Err(DropReason::TooBig);
    }
    sink.transmit(iface, pkt);
    Ok(Sent::Whole)
}

/// The tunnel for a packet the node originates from `src` to `dst`: link-local traffic
/// stays on `scope`; otherwise the FIB decides, falling back to `scope`.
fn route_own_v4(fib: &Fib, scope: IfIndex, src: Ipv4Addr, dst: Ipv4Addr) -> IfIndex {
    if v4_link_local(src) || v4_link_local(dst) {
        return scope;
    }
    fib.lookup_nh_v4(dst).map_or(scope, |nh| nh.iface)
}

/// IPv6 counterpart of [`route_own_v4`].
fn route_own_v6(fib: &Fib, scope: IfIndex, src: Ipv6Addr, dst: Ipv6Addr) -> IfIndex {
    if v6_link_local(src) || v6_link_local(dst) {
        return scope;
    }
    fib.lookup_nh_v6(dst).map_or(scope, |nh| nh.iface)
}

/// The forwarding engine of one data-plane thread: configuration, ICMP rate limiter and
/// scratch buffers. Cheap to create; one per worker.
#[derive(Debug)]
pub struct Forwarder {
    config: Arc<LocalConfig>,
    /// Every non-link-local local address (router_addrs and all ifaces' addrs), sorted
    /// and deduplicated: a binary search is cheaper than hashing on the per-packet path.
    globals: Vec<IpAddr>,
    limiter: RateLimiter,
    /// Identification for IPv4 packets the forwarder originates (RFC 6864 §4.1: any value
    /// for atomic datagrams; a counter keeps them distinct).
    next_ident: u16,
    /// ICMP messages are built here.
    scratch: Vec<u8>,
    /// Fragments are built here.
    frag_buf: Vec<u8>,
}

fn globals_of(config: &LocalConfig) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = config
        .router_addrs
        .iter()
        .chain(config.ifaces.iter().flat_map(|i| i.addrs.iter()))
        .copied()
        .filter(|a| !is_v6_link_local(*a))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl Forwarder {
    /// A forwarder for `config`, with the default ICMP error rate
    /// ([`DEFAULT_ICMP_ERRORS_PER_SEC`], burst [`DEFAULT_ICMP_ERROR_BURST`]).
    pub fn new(config: Arc<LocalConfig>) -> Self {
        Forwarder {
            globals: globals_of(&config),
            config,
            limiter: RateLimiter::new(DEFAULT_ICMP_ERRORS_PER_SEC, DEFAULT_ICMP_ERROR_BURST),
            next_ident: 1,
            scratch: Vec::with_capacity(2048),
            frag_buf: Vec::with_capacity(2048),
        }
    }

    /// Sets the ICMP error rate limit: `per_sec` sustained, `burst` at once. A burst of 0
    /// disables ICMP errors. Echo replies are never limited.
    pub fn with_icmp_rate(mut self, per_sec: u32, burst: u32) -> Self {
        self.limiter = RateLimiter::new(per_sec, burst);
        self
    }

    /// Replaces the configuration (addresses, tunnels, MTUs). The rate limiter keeps its state.
    pub fn set_config(&mut self, config: Arc<LocalConfig>) {
        self.globals = globals_of(&config);
        self.config = config;
    }

    /// The current configuration.
    pub fn config(&self) -> &Arc<LocalConfig> {
        &self.config
    }

    /// [`LocalConfig::is_local`], with global addresses looked up in a sorted list.
    fn is_local(&self, scope: IfIndex, addr: IpAddr) -> bool {
        if is_v6_link_local(addr) {
            self.config.is_local(scope, addr)
        } else {
            self.globals.binary_search(&addr).is_ok()
        }
    }

    fn next_ident(&mut self) -> u16 {
        let id = self.next_ident;
        self.next_ident = id.wrapping_add(1);
        id
    }

    /// A decrypted packet that arrived on tunnel `ingress`. May rewrite it in place (TTL,
    /// checksum). Never panics, whatever `packet` holds.
    pub fn from_tunnel(
        &mut self,
        now: Instant,
        ingress: IfIndex,
        packet: &mut [u8],
        fib: &Fib,
        sink: &mut impl Sink,
    ) -> Disposition {
        match packet.first().map(|b| b >> 4) {
            Some(4) => self.tunnel_v4(now, ingress, packet, fib, sink),
            Some(6) => self.tunnel_v6(now, ingress, packet, fib, sink),
            _ => dropped(DropReason::Malformed),
        }
    }

    /// A packet originated by the node itself (its TCP/UDP stack, ping/traceroute probes).
    /// `scope` = the tunnel for a link-local destination (required for fe80::/10, 169.254/16
    /// and link-scope multicast destinations, and for link-local sources).
    /// No TTL decrement. If the destination is local, `deliver_local(scope or 0, ..)`
    /// (loopback). If it does not fit the egress MTU: IPv4 is fragmented (even with DF),
    /// IPv6 is `Dropped{TooBig}`. No ICMP errors are generated for the node's own packets.
    pub fn from_local(
        &mut self,
        _now: Instant,
        scope: Option<IfIndex>,
        packet: &mut [u8],
        fib: &Fib,
        sink: &mut impl Sink,
    ) -> Disposition {
        match packet.first().map(|b| b >> 4) {
            Some(4) => self.local_out_v4(scope, packet, fib, sink),
            Some(6) => self.local_out_v6(scope, packet, fib, sink),
            _ => dropped(DropReason::Malformed),
        }
    }

    // ---------------------------------------------------------------- IPv4, from a tunnel

    fn tunnel_v4(
        &mut self,
        now: Instant,
        ingress: IfIndex,
        packet: &mut [u8],
        fib: &Fib,
        sink: &mut impl Sink,
    ) -> Disposition {
        let Some(hdr) = Ipv4Header::parse(packet) else {
            return dropped(DropReason::Malformed);
        };
        // Tunnel padding beyond Total Length is not part of the packet.
        let Some(pkt) = packet.get_mut(..hdr.total_len) else {
            return dropped(DropReason::Malformed);
        };
        // RFC 1812 §5.3.7: martian sources; our own address from outside is a loop or spoof.
        if !v4_source_ok(hdr.src) || self.is_local(ingress, IpAddr::V4(hdr.src)) {
            return dropped(DropReason::BadSource);
        }
        if self.is_local(ingress, IpAddr::V4(hdr.dst)) {
            return self.local_in_v4(ingress, pkt, &hdr, fib, sink);
        }
        if hdr.dst.is_multicast() {
            // RFC 5771: 224.0.0.0/24 is link-local; it is for us, never forwarded.
            if v4_link_scope_multicast(hdr.dst) {
                sink.deliver_local(ingress, pkt);
                return Disposition::Local;
            }
            return dropped(DropReason::Multicast);
        }
        if v4_destination_martian(hdr.dst) {
            return dropped(DropReason::BadDestination);
        }
        // RFC 3927 §7: 169.254/16 is never forwarded.
        if v4_link_local(hdr.src) || v4_link_local(hdr.dst) {
            return dropped(DropReason::LinkLocalScope);
        }
        // RFC 1812 §5.3.1: a packet whose TTL would reach 0 is discarded with time exceeded.
        if hdr.ttl <= 1 {
            return self.icmp_error_v4(
                now,
                ingress,
                pkt,
                &hdr,
                (icmp::v4::TIME_EXCEEDED, icmp::v4::CODE_TTL_EXCEEDED, [0; 4]),
                DropReason::TtlExceeded,
                fib,
                sink,
            );
        }
        let Some(nh) = fib.lookup_nh_v4(hdr.dst) else {
            return self.icmp_error_v4(
                now,
                ingress,
                pkt,
                &hdr,
                (
                    icmp::v4::DEST_UNREACHABLE,
                    icmp::v4::CODE_NET_UNREACHABLE,
                    [0; 4],
                ),
                DropReason::NoRoute,
                fib,
                sink,
            );
        };
        let Some(mtu) = self.config.iface(nh.iface).map(|i| i.mtu) else {
            return dropped(DropReason::UnknownIface);
        };
        if pkt.len() > usize::from(mtu) && hdr.df {
            // RFC 1191 §4: the next-hop MTU goes in the low-order 16 bits of the
            // "unused" field.
            let [hi, lo] = mtu.to_be_bytes();
            return self.icmp_error_v4(
                now,
                ingress,
                pkt,
                &hdr,
                (
                    icmp::v4::DEST_UNREACHABLE,
                    icmp::v4::CODE_FRAG_NEEDED,
                    [0, 0, hi, lo],
                ),
                DropReason::TooBig,
                fib,
                sink,
            );
        }
        decrement_ttl_v4(pkt);
        match send_v4(&self.config, &mut self.frag_buf, nh.iface, pkt, sink) {
            Ok(sent) => sent.disposition(nh.iface),
            Err(reason) => dropped(reason),
        }
    }

    /// A packet for one of our IPv4 addresses: answer echo requests, deliver the rest.
    fn local_in_v4(
        &mut self,
        ingress: IfIndex,
        pkt: &[u8],
        hdr: &Ipv4Header,
        fib: &Fib,
        sink: &mut impl Sink,
    ) -> Disposition {
        if hdr.proto == PROTO_ICMP && !hdr.is_fragment() {
            if let Some(request) = pkt
                .get(hdr.header_len..)
                .filter(|m| m.len() >= icmp::ICMP_HEADER_LEN && m[0] == icmp::v4::ECHO_REQUEST)
            {
                // RFC 1122 §3.2.2: an ICMP message with a bad checksum is discarded.
                if !checksum_ok(request) {
                    return dropped(DropReason::Malformed);
                }
                let ident = self.next_ident();
                // RFC 1122 §3.2.2.6: the reply's source is the address that was pinged.
                icmp::build_v4_echo_reply(
                    &mut self.scratch,
                    hdr.dst,
                    hdr.src,
                    hdr.tos,
                    ident,
                    request,
                );
                let out = route_own_v4(fib, ingress, hdr.dst, hdr.src);
                return match send_v4(&self.config, &mut self.frag_buf, out, &self.scratch, sink) {
                    Ok(_) => Disposition::EchoReplied,
                    Err(reason) => dropped(reason),
                };
            }
        }
        sink.deliver_local(ingress, pkt);
        Disposition::Local
    }

    /// Sends an ICMPv4 error about `offending` (if allowed) and returns the drop disposition.
    #[allow(clippy::too_many_arguments)]
    fn icmp_error_v4(
        &mut self,
        now: Instant,
        ingress: IfIndex,
        offending: &[u8],
        hdr: &Ipv4Header,
        (icmp_type, code, rest): (u8, u8, [u8; 4]),
        reason: DropReason,
        fib: &Fib,
        sink: &mut impl Sink,
    ) -> Disposition {
        match self.send_error_v4(
            now,
            ingress,
            offending,
            hdr,
            (icmp_type, code, rest),
            fib,
            sink,
        ) {
            Ok(icmp_sent) => Disposition::Dropped { reason, icmp_sent },
            Err(NoSourceAddress) => dropped(DropReason::NoSourceAddress),
        }
    }

    /// `Ok(true)` if the error was sent, `Ok(false)` if it must not be or was rate limited.
    #[allow(clippy::too_many_arguments)]
    fn send_error_v4(
        &mut self,
        now: Instant,
        ingress: IfIndex,
        offending: &[u8],
        hdr: &Ipv4Header,
        (icmp_type, code, rest): (u8, u8, [u8; 4]),
        fib: &Fib,
        sink: &mut impl Sink,
    ) -> Result<bool, NoSourceAddress> {
        // RFC 1812 §4.3.2.7: no error about a non-first fragment, an ICMP error, or a
        // packet whose source does not name a single host, or to a multicast/broadcast dst.
        if hdr.frag_offset != 0
            || (hdr.proto == PROTO_ICMP
                && offending
                    .get(hdr.header_len)
                    .is_some_and(|&t| icmp::v4::is_error(t)))
            || !v4_source_ok(hdr.src)
            || hdr.dst.is_multicast()
            || hdr.dst.is_broadcast()
        {
            return Ok(false);
        }
        let src = self.config.icmp_source_v4(ingress).ok_or(NoSourceAddress)?;
        let out = route_own_v4(fib, ingress, src, hdr.src);
        let Some(mtu) = self.config.iface(out).map(|i| usize::from(i.mtu)) else {
            return Ok(false);
        };
        // RFC 1812 §4.3.2.8.
        if !self.limiter.allow(now) {
            return Ok(false);
        }
        // RFC 1812 §4.3.2.3: quote as much as fits in 576 bytes (and in the egress MTU).
        let room = icmp::ICMPV4_ERROR_MAX
            .min(mtu)
            .saturating_sub(IPV4_HEADER_LEN + icmp::ICMP_HEADER_LEN);
        let quote = offending.get(..room).unwrap_or(offending);
        let ident = self.next_ident();
        icmp::build_v4_error(
            &mut self.scratch,
            src,
            hdr.src,
            ident,
            icmp_type,
            code,
            rest,
            quote,
        );
        Ok(send_v4(&self.config, &mut self.frag_buf, out, &self.scratch, sink).is_ok())
    }

    // ---------------------------------------------------------------- IPv6, from a tunnel

    fn tunnel_v6(
        &mut self,
        now: Instant,
        ingress: IfIndex,
        packet: &mut [u8],
        fib: &Fib,
        sink: &mut impl Sink,
    ) -> Disposition {
        let Some(hdr) = Ipv6Header::parse(packet) else {
            return dropped(DropReason::Malformed);
        };
        let Some(pkt) = packet.get_mut(..hdr.total_len) else {
            return dropped(DropReason::Malformed);
        };
        // RFC 4291 §2.5.2, §2.5.3, §2.7: ::, ::1 and multicast are never sources.
        if !v6_source_ok(hdr.src) || self.is_local(ingress, IpAddr::V6(hdr.src)) {
            return dropped(DropReason::BadSource);
        }
        if self.is_local(ingress, IpAddr::V6(hdr.dst)) {
            return self.local_in_v6(ingress, pkt, &hdr, fib, sink);
        }
        if hdr.dst.is_multicast() {
            // Link-scope multicast (ff02::/16: all-nodes, routing protocols) is for us.
            if v6_link_scope_multicast(hdr.dst) {
                sink.deliver_local(ingress, pkt);
                return Disposition::Local;
            }
            return dropped(DropReason::Multicast);
        }
        if v6_destination_martian(hdr.dst) {
            return dropped(DropReason::BadDestination);
        }
        // RFC 4007 §9: link-local destinations are not forwarded (no error: the sender
        // addressed a neighbour on another link, which cannot happen on a p2p tunnel).
        if v6_link_local(hdr.dst) {
            return dropped(DropReason::LinkLocalScope);
        }
        // RFC 4443 §3.1 code 2: a link-local source cannot reach a global destination.
        if v6_link_local(hdr.src) {
            return self.icmp_error_v6(
                now,
                ingress,
                pkt,
                &hdr,
                (
                    icmp::v6::DEST_UNREACHABLE,
                    icmp::v6::CODE_BEYOND_SCOPE,
                    [0; 4],
                ),
                DropReason::LinkLocalScope,
                fib,
                sink,
            );
        }
        // RFC 8200 §3, RFC 4443 §3.3.
        if hdr.hop_limit <= 1 {
            return self.icmp_error_v6(
                now,
                ingress,
                pkt,
                &hdr,
                (icmp::v6::TIME_EXCEEDED, icmp::v6::CODE_HOP_LIMIT, [0; 4]),
                DropReason::TtlExceeded,
                fib,
                sink,
            );
        }
        let Some(nh) = fib.lookup_nh_v6(hdr.dst) else {
            return self.icmp_error_v6(
                now,
                ingress,
                pkt,
                &hdr,
                (icmp::v6::DEST_UNREACHABLE, icmp::v6::CODE_NO_ROUTE, [0; 4]),
                DropReason::NoRoute,
                fib,
                sink,
            );
        };
        let Some(mtu) = self.config.iface(nh.iface).map(|i| i.mtu) else {
            return dropped(DropReason::UnknownIface);
        };
        if pkt.len() > usize::from(mtu) {
            // RFC 4443 §3.2, RFC 8201: routers never fragment IPv6.
            return self.icmp_error_v6(
                now,
                ingress,
                pkt,
                &hdr,
                (icmp::v6::PACKET_TOO_BIG, 0, u32::from(mtu).to_be_bytes()),
                DropReason::TooBig,
                fib,
                sink,
            );
        }
        // Hop limit is byte 7 and > 1 here; IPv6 has no header checksum.
        pkt[7] = hdr.hop_limit - 1;
        sink.transmit(nh.iface, pkt);
        Disposition::Forwarded { iface: nh.iface }
    }

    /// A packet for one of our IPv6 addresses: answer echo requests, deliver the rest.
    fn local_in_v6(
        &mut self,
        ingress: IfIndex,
        pkt: &[u8],
        hdr: &Ipv6Header,
        fib: &Fib,
        sink: &mut impl Sink,
    ) -> Disposition {
        let request = ipv6_upper_layer(pkt)
            .filter(|up| up.proto == PROTO_ICMPV6 && !up.fragmented)
            .and_then(|up| pkt.get(up.offset..))
            .filter(|m| m.len() >= icmp::ICMP_HEADER_LEN && m[0] == icmp::v6::ECHO_REQUEST);
        if let Some(request) = request {
            // RFC 4443 §2.3: verify the checksum over the pseudo-header.
            if !icmpv6_checksum_ok(&hdr.src, &hdr.dst, request) {
                return dropped(DropReason::Malformed);
            }
            // RFC 4443 §4.2: the reply's source is the address the request was sent to.
            icmp::build_v6_echo_reply(
                &mut self.scratch,
                hdr.dst,
                hdr.src,
                hdr.traffic_class,
                request,
            );
            let out = route_own_v6(fib, ingress, hdr.dst, hdr.src);
            return match send_v6(&self.config, out, &self.scratch, sink) {
                Ok(_) => Disposition::EchoReplied,
                Err(reason) => dropped(reason),
            };
        }
        sink.deliver_local(ingress, pkt);
        Disposition::Local
    }

    /// Sends an ICMPv6 error about `offending` (if allowed) and returns the drop disposition.
    #[allow(clippy::too_many_arguments)]
    fn icmp_error_v6(
        &mut self,
        now: Instant,
        ingress: IfIndex,
        offending: &[u8],
        hdr: &Ipv6Header,
        (icmp_type, code, rest): (u8, u8, [u8; 4]),
        reason: DropReason,
        fib: &Fib,
        sink: &mut impl Sink,
    ) -> Disposition {
        match self.send_error_v6(
            now,
            ingress,
            offending,
            hdr,
            (icmp_type, code, rest),
            fib,
            sink,
        ) {
            Ok(icmp_sent) => Disposition::Dropped { reason, icmp_sent },
            Err(NoSourceAddress) => dropped(DropReason::NoSourceAddress),
        }
    }

    /// `Ok(true)` if the error was sent, `Ok(false)` if it must not be or was rate limited.
    #[allow(clippy::too_many_arguments)]
    fn send_error_v6(
        &mut self,
        now: Instant,
        ingress: IfIndex,
        offending: &[u8],
        hdr: &Ipv6Header,
        (icmp_type, code, rest): (u8, u8, [u8; 4]),
        fib: &Fib,
        sink: &mut impl Sink,
    ) -> Result<bool, NoSourceAddress> {
        // RFC 4443 §2.4(e): no error about an ICMPv6 error, a multicast destination, or a
        // source that does not identify a single node.
        let about_error = ipv6_upper_layer(offending).is_some_and(|up| {
            up.proto == PROTO_ICMPV6
                && offending
                    .get(up.offset)
                    .is_some_and(|&t| icmp::v6::is_error(t))
        });
        if about_error || !v6_source_ok(hdr.src) || hdr.dst.is_multicast() {
            return Ok(false);
        }
        let src = self
            .config
            .icmp_source_v6(ingress, v6_link_local(hdr.src))
            .ok_or(NoSourceAddress)?;
        let out = route_own_v6(fib, ingress, src, hdr.src);
        let Some(mtu) = self.config.iface(out).map(|i| usize::from(i.mtu)) else {
            return Ok(false);
        };
        // RFC 4443 §2.4(f).
        if !self.limiter.allow(now) {
            return Ok(false);
        }
        // RFC 4443 §2.4(c): as much of the invoking packet as fits in 1280 bytes.
        let room = icmp::ICMPV6_ERROR_MAX
            .min(mtu)
            .saturating_sub(IPV6_HEADER_LEN + icmp::ICMP_HEADER_LEN);
        let quote = offending.get(..room).unwrap_or(offending);
        icmp::build_v6_error(
            &mut self.scratch,
            src,
            hdr.src,
            icmp_type,
            code,
            rest,
            quote,
        );
        Ok(send_v6(&self.config, out, &self.scratch, sink).is_ok())
    }

    // ---------------------------------------------------------------- the node's own packets

    fn local_out_v4(
        &mut self,
        scope: Option<IfIndex>,
        packet: &mut [u8],
        fib: &Fib,
        sink: &mut impl Sink,
    ) -> Disposition {
        let Some(hdr) = Ipv4Header::parse(packet) else {
            return dropped(DropReason::Malformed);
        };
        let Some(pkt) = packet.get_mut(..hdr.total_len) else {
            return dropped(DropReason::Malformed);
        };
        let link_scoped =
            v4_link_local(hdr.src) || v4_link_local(hdr.dst) || v4_link_scope_multicast(hdr.dst);
        if link_scoped && scope.is_none() {
            return dropped(DropReason::LinkLocalScope);
        }
        let here = scope.unwrap_or(0);
        if self.is_local(here, IpAddr::V4(hdr.dst)) {
            sink.deliver_local(here, pkt);
            return Disposition::Local;
        }
        let out = if link_scoped {
            here
        } else if hdr.dst.is_multicast() {
            return dropped(DropReason::Multicast);
        } else if v4_destination_martian(hdr.dst) {
            return dropped(DropReason::BadDestination);
        } else if let Some(nh) = fib.lookup_nh_v4(hdr.dst) {
            nh.iface
        } else {
            return dropped(DropReason::NoRoute);
        };
        match send_v4(&self.config, &mut self.frag_buf, out, pkt, sink) {
            Ok(sent) => sent.disposition(out),
            Err(reason) => dropped(reason),
        }
    }

    fn local_out_v6(
        &mut self,
        scope: Option<IfIndex>,
        packet: &mut [u8],
        fib: &Fib,
        sink: &mut impl Sink,
    ) -> Disposition {
        let Some(hdr) = Ipv6Header::parse(packet) else {
            return dropped(DropReason::Malformed);
        };
        let Some(pkt) = packet.get_mut(..hdr.total_len) else {
            return dropped(DropReason::Malformed);
        };
        let link_scoped =
            v6_link_local(hdr.src) || v6_link_local(hdr.dst) || v6_link_scope_multicast(hdr.dst);
        if link_scoped && scope.is_none() {
            return dropped(DropReason::LinkLocalScope);
        }
        let here = scope.unwrap_or(0);
        if self.is_local(here, IpAddr::V6(hdr.dst)) {
            sink.deliver_local(here, pkt);
            return Disposition::Local;
        }
        let out = if link_scoped {
            here
        } else if hdr.dst.is_multicast() {
            return dropped(DropReason::Multicast);
        } else if v6_destination_martian(hdr.dst) {
            return dropped(DropReason::BadDestination);
        } else if let Some(nh) = fib.lookup_nh_v6(hdr.dst) {
            nh.iface
        } else {
            return dropped(DropReason::NoRoute);
        };
        match send_v6(&self.config, out, pkt, sink) {
            Ok(sent) => sent.disposition(out),
            Err(reason) => dropped(reason),
        }
    }
}
