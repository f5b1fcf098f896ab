//! The node's own TCP and UDP endpoints, on smoltcp, sans-IO.
//!
//! # What it is
//!
//! [`Stack`] terminates the TCP connections and UDP datagrams addressed to the node
//! itself (BGP sessions, later the programs run under `exec`). The forwarding core
//! decides that a decrypted packet is local and hands it to [`Stack::receive`] with the
//! tunnel it arrived on (its [`Scope`]); [`Stack::poll_transmit`] hands back packets
//! to route: by FIB (`None`), or out of one tunnel (`Some(scope)`) when the packet
//! has a link-local source or destination, or its destination was pinned to a tunnel
//! by [`Stack::tcp_connect`] / [`Stack::udp_send_to`] with an explicit scope.
//! No clock, no sockets, no threads: `now` comes in, deadlines go out
//! ([`Stack::poll_delay`]).
//!
//! # How scoping works
//!
//! smoltcp addresses carry no scope, so there is one smoltcp `Interface` (with its own
//! `SocketSet`) for global traffic and one per tunnel for link-local traffic. A packet
//! whose source *or* destination is IPv6 link-local (fe80::/10) belongs to the interface
//! of the tunnel it arrived on; everything else to the global interface. Two tunnels
//! may therefore both use fe80::1 ↔ fe80::a and carry two independent connections,
//! even with identical port numbers. Tunnel interfaces are created on first use.
//!
//! # Addresses and smoltcp's compile-time address limit
//!
//! smoltcp interfaces hold at most 8 addresses here (`iface-max-addr-count-8`). To
//! have no limit at all, the interfaces hold **no** addresses: they run with
//! `set_any_ip(true)` plus default routes (so smoltcp accepts any destination and
//! can emit to any destination on a point-to-point `Medium::Ip` device), and this
//! module does the address checks itself: a packet is accepted only if its
//! destination is one of the node's global addresses, or one of the arrival tunnel's
//! link-local addresses. Source addresses are always chosen here, never by smoltcp
//! (first global address of the remote's family; the tunnel's first link-local address
//! for a link-local remote).
//!
//! # TCP
//!
//! smoltcp has no listen backlog: a listening socket *becomes* the connection. A
//! listener here is a group of smoltcp sockets created on demand: right before smoltcp
//! sees a SYN, the best-matching listener (exact address > same-family wildcard >
//! `[::]` taking IPv4, scope-specific > any scope) gets a listening socket bound to
//! the SYN's exact destination on that interface, if fewer than
//! [`StackConfig::tcp_backlog`] connections are pending. [`Stack::tcp_accept`] yields
//! established connections. A SYN nobody listens for is answered with RST by
//! smoltcp. CUBIC congestion control is on; window scaling is automatic (smoltcp
//! derives the shift from the receive buffer size). [`Stack::tcp_release`] of an open
//! connection closes it gracefully (FIN) and keeps the socket as an orphan until it
//! is closed, or aborts it after [`StackConfig::tcp_orphan_timeout`].
//!
//! # UDP
//!
//! UDP does not use smoltcp sockets: smoltcp's UDP sockets have no scope, no
//! most-specific-match and a fixed buffer per socket and interface. Datagrams for a
//! bound port are matched here (same precedence rules as TCP listeners) and queued per
//! binding with their true source and scope; datagram boundaries are kept. Datagrams
//! for an unbound port go on to smoltcp, which has no UDP sockets and therefore
//! answers ICMP port unreachable (traceroute to the node relies on it). Outgoing
//! datagrams are built with `smoltcp::wire`.
//!
//! # What it is not
//!
//! - No ICMP echo (the forwarding core answers pings) and no ICMP sockets yet; ICMP
//!   errors received for our own TCP/UDP traffic are ignored (smoltcp has no PMTU
//!   discovery: the TCP MSS follows [`StackConfig::mtu`]).
//! - No IP fragmentation or reassembly: IPv4 fragments are dropped, and UDP datagrams
//!   larger than the MTU are refused with [`StackError::MessageTooLong`].
//! - No unbounded output: once [`StackConfig::tx_queue_packets`] packets wait for
//!   [`Stack::poll_transmit`], TCP holds back and [`Stack::udp_send_to`] refuses with
//!   [`StackError::QueueFull`] (the caller drops the datagram, as a full kernel queue
//!   would).
//! - No multicast, and UDP behind IPv6 extension headers is not matched to bindings.
//! - No TCP-MD5 (smoltcp lacks it), no TCP timestamps, no SACK generation.
//! - An IPv4 "link-local" 169.254/16 address is treated as an ordinary global address.
#![forbid(unsafe_code)]

mod device;
mod packet;

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, AnySocket};
use smoltcp::time::{Duration as SmolDuration, Instant as SmolInstant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpEndpoint, IpListenEndpoint, IpProtocol};

use device::{Dev, OutPacket, OutTag, RxPacket};
use packet::{is_link_local, is_unicast, SynInfo};

/// A tunnel index, as used by the forwarding core.
pub type Scope = u32;

/// A TCP listener or connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TcpHandle(u64);

/// A UDP binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UdpHandle(u64);

/// A simplified TCP state, as a socket user sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    /// A listener ([`Stack::tcp_listen`]).
    Listening,
    /// SYN sent or received, handshake not complete.
    Connecting,
    /// Data flows both ways.
    Established,
    /// We closed our sending side ([`Stack::tcp_close`]); the peer may still send.
    LocalClosed,
    /// The peer closed its sending side (FIN received); we may still send.
    Closing,
    /// Nothing more will be sent or received (both sides closed, reset, timed out,
    /// aborted, or an unknown handle).
    Closed,
}

/// Buffer sizes of one TCP connection (or of every connection a listener accepts).
/// The receive buffer also sets the window scale smoltcp offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpBuffers {
    pub rx: usize,
    pub tx: usize,
}

/// Errors of the stack's operations.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StackError {
    #[error("unknown or released handle")]
    InvalidHandle,
    #[error("operation needs a connection, not a listener")]
    NotConnected,
    #[error(
        "{0} cannot be used as a node address (unspecified, loopback, multicast, or wrong scope)"
    )]
    InvalidAddress(IpAddr),
    #[error("{0} is not a usable remote address")]
    InvalidRemote(SocketAddr),
    #[error("{0} is not one of this node's addresses")]
    AddrNotAvailable(IpAddr),
    #[error("link-local address {0} needs a scope (tunnel)")]
    ScopeRequired(IpAddr),
    #[error(
        "a scope (tunnel) applies only to IPv6 link-local or unspecified local addresses, not {0}"
    )]
    ScopeNotApplicable(IpAddr),
    #[error("the node has no source address to reach {0}")]
    NoSourceAddress(IpAddr),
    #[error("local {local} and remote {remote} are of different address families")]
    FamilyMismatch { local: IpAddr, remote: IpAddr },
    #[error("{0} is already in use")]
    AddrInUse(SocketAddr),
    #[error("no free ephemeral port")]
    PortsExhausted,
    #[error("datagram of {len} bytes does not fit the MTU of {mtu} bytes")]
    MessageTooLong { len: usize, mtu: usize },
    /// [`StackConfig::tx_queue_packets`] packets already wait for
    /// [`Stack::poll_transmit`]: the datagram is not queued (`ENOBUFS`).
    #[error("the transmit queue is full ({0} packets)")]
    QueueFull(usize),
    /// The connection ended in an orderly way (FIN received and all data read), or
    /// was closed or aborted locally.
    #[error("connection closed")]
    Closed,
    /// The peer reset the established connection, or it timed out.
    #[error("connection reset")]
    Reset,
    /// The connection attempt failed: refused (RST) or timed out.
    #[error("connection refused or timed out")]
    Refused,
}

/// Tunables. [`StackConfig::default`] is what [`Stack::new`] uses.
#[derive(Clone, Debug)]
pub struct StackConfig {
    /// IP MTU of the packets the stack emits (TCP MSS follows from it). Default 1420,
    /// the usual WireGuard MTU.
    pub mtu: usize,
    /// TCP receive buffer per connection. Default 64 KiB.
    pub tcp_rx_buffer: usize,
    /// TCP send buffer per connection. Default 64 KiB.
    pub tcp_tx_buffer: usize,
    /// Connections per listener not yet returned by `tcp_accept` (handshake in
    /// progress or established). Default 16.
    pub tcp_backlog: usize,
    /// Abort a connection whose handshake does not complete, or whose queued data sees
    /// no acknowledgement, within this long. Idle connections never time out (unless
    /// keep-alive is on, see [`Stack::tcp_set_keepalive`]). Default 120 s.
    pub tcp_timeout: Option<Duration>,
    /// How long a released, still-closing connection may linger. Default 60 s.
    pub tcp_orphan_timeout: Duration,
    /// Bytes queued per UDP binding before further datagrams are dropped. Default 256 KiB.
    pub udp_queue_bytes: usize,
    /// Packets queued per interface between `receive` and `poll`. Default 4096.
    pub rx_queue_packets: usize,
    /// Packets queued for `poll_transmit` before TCP holds back and `udp_send_to`
    /// refuses with [`StackError::QueueFull`]. Default 4096.
    pub tx_queue_packets: usize,
    /// Seed for TCP initial sequence numbers and ephemeral ports. `None`: random per
    /// process (use `Some` in tests for determinism).
    pub random_seed: Option<u64>,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            mtu: 1420,
            tcp_rx_buffer: 64 * 1024,
            tcp_tx_buffer: 64 * 1024,
            tcp_backlog: 16,
            tcp_timeout: Some(Duration::from_secs(120)),
            tcp_orphan_timeout: Duration::from_secs(60),
            udp_queue_bytes: 256 * 1024,
            rx_queue_packets: 4096,
            tx_queue_packets: 4096,
            random_seed: None,
        }
    }
}

/// Counters of packets the stack dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackStats {
    /// Not a valid IPv4/IPv6 packet (bad header, checksum, fragment, bad UDP).
    pub rx_malformed: u64,
    /// Not addressed to one of the node's addresses (for that tunnel).
    pub rx_not_local: u64,
    /// An interface's receive queue was full.
    pub rx_queue_full: u64,
    /// A UDP binding's queue was full.
    pub udp_queue_full: u64,
    /// Datagrams `udp_send_to` refused because the transmit queue was full.
    pub tx_queue_full: u64,
}

/// Which smoltcp interface: the global one, or a tunnel's link-local one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum IfaceId {
    Global,
    Scope(Scope),
}

impl IfaceId {
    fn for_pair(
        local: IpAddr,
        remote: IpAddr,
        scope: Option<Scope>,
    ) -> Result<IfaceId, StackError> {
        if is_link_local(remote) || is_link_local(local) {
            let ll = if is_link_local(remote) { remote } else { local };
            Ok(IfaceId::Scope(scope.ok_or(StackError::ScopeRequired(ll))?))
        } else {
            Ok(IfaceId::Global)
        }
    }

    fn scope(self) -> Option<Scope> {
        match self {
            IfaceId::Global => None,
            IfaceId::Scope(s) => Some(s),
        }
    }
}

struct Iface {
    iface: Interface,
    sockets: SocketSet<'static>,
    rx: VecDeque<RxPacket>,
}

struct Conn {
    iface: IfaceId,
    sock: SocketHandle,
    /// The interface was removed ([`Stack::remove_scope`]): the socket is gone.
    detached: bool,
    local: SocketAddr,
    peer: SocketAddr,
    /// Destination pinned to a tunnel for this connection (global remote only).
    pin: Option<Scope>,
    established: bool,
    fin_received: bool,
    local_abort: bool,
}

impl Conn {
    fn new(iface: IfaceId, sock: SocketHandle, local: SocketAddr, peer: SocketAddr) -> Conn {
        Conn {
            iface,
            sock,
            detached: false,
            local,
            peer,
            pin: None,
            established: false,
            fin_received: false,
            local_abort: false,
        }
    }

    fn observe(&mut self, state: tcp::State) {
        use tcp::State::*;
        if matches!(
            state,
            Established | FinWait1 | FinWait2 | CloseWait | LastAck | Closing | TimeWait
        ) {
            self.established = true;
        }
        if matches!(state, CloseWait | LastAck | Closing | TimeWait) {
            self.fin_received = true;
        }
    }

    fn closed_error(&self) -> StackError {
        if self.local_abort || self.fin_received {
            StackError::Closed
        } else if !self.established {
            StackError::Refused
        } else {
            StackError::Reset
        }
    }
}

struct Listener {
    local: SocketAddr,
    scope: Option<Scope>,
    bufs: TcpBuffers,
    /// Listening sockets (created on demand, one per interface and destination) and
    /// connections not yet accepted.
    socks: Vec<(IfaceId, SocketHandle)>,
}

enum TcpEntry {
    Conn(Conn),
    Listener(Listener),
}

/// How well a bound `local` address matches a packet's destination (higher is better).
fn addr_score(bound: IpAddr, dst: IpAddr) -> Option<u8> {
    if bound == dst {
        return Some(3);
    }
    if !bound.is_unspecified() {
        return None;
    }
    match (bound, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => Some(2),
        // [::] is dual-stack, as on Linux by default.
        (IpAddr::V6(_), IpAddr::V4(_)) => Some(1),
        (IpAddr::V4(_), IpAddr::V6(_)) => None,
    }
}

/// Score of a binding (`local`, `scope`) for a packet to `dst` on interface `id`.
fn binding_score(
    local: SocketAddr,
    scope: Option<Scope>,
    id: IfaceId,
    dst: SocketAddr,
) -> Option<u8> {
    if local.port() != dst.port() {
        return None;
    }
    if let Some(s) = scope {
        if id != IfaceId::Scope(s) {
            return None;
        }
    }
    addr_score(local.ip(), dst.ip()).map(|a| a * 2 + u8::from(scope.is_some()))
}

struct UdpBinding {
    local: SocketAddr,
    scope: Option<Scope>,
    queue: VecDeque<(Vec<u8>, SocketAddr, Option<Scope>)>,
    queued_bytes: usize,
}

struct Orphan {
    iface: IfaceId,
    sock: SocketHandle,
    deadline: SmolInstant,
    /// Local port whose reference this orphan holds (listener sockets hold none).
    port: Option<u16>,
}

/// The node's own TCP/UDP endpoints. See the [crate docs](crate).
pub struct Stack {
    base: Instant,
    now: SmolInstant,
    cfg: StackConfig,
    seed: u64,
    global: Vec<IpAddr>,
    global_set: HashSet<IpAddr>,
    link_local: HashMap<Scope, Vec<Ipv6Addr>>,
    ifaces: BTreeMap<IfaceId, Iface>,
    out: VecDeque<OutPacket>,
    tcp: HashMap<u64, TcpEntry>,
    udp: HashMap<u64, UdpBinding>,
    next_id: u64,
    /// Local TCP ports in use (listeners, connections, orphans), with use counts.
    tcp_ports: HashMap<u16, usize>,
    port_cursor: u16,
    orphans: Vec<Orphan>,
    /// Global remote addresses whose packets must leave through a given tunnel,
    /// with the number of connections asking for it.
    pins: HashMap<IpAddr, (Scope, usize)>,
    stats: StackStats,
}

const EPHEMERAL_FIRST: u16 = 49152;
const EPHEMERAL_COUNT: u16 = 16384;

fn to_std(a: IpAddress) -> IpAddr {
    match a {
        IpAddress::Ipv4(a) => IpAddr::V4(a),
        IpAddress::Ipv6(a) => IpAddr::V6(a),
    }
}

fn ep_to_std(e: IpEndpoint) -> SocketAddr {
    SocketAddr::new(to_std(e.addr), e.port)
}

fn smol_duration(d: Duration) -> SmolDuration {
    SmolDuration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn std_duration(d: SmolDuration) -> Duration {
    Duration::from_micros(d.total_micros())
}

fn map_state(s: tcp::State) -> TcpState {
    use tcp::State::*;
    match s {
        Listen => TcpState::Listening,
        SynSent | SynReceived => TcpState::Connecting,
        Established => TcpState::Established,
        FinWait1 | FinWait2 => TcpState::LocalClosed,
        CloseWait => TcpState::Closing,
        LastAck | Closing | TimeWait | Closed => TcpState::Closed,
    }
}

fn validate_global(ip: IpAddr) -> Result<(), StackError> {
    if !is_unicast(ip) || is_link_local(ip) {
        return Err(StackError::InvalidAddress(ip));
    }
    Ok(())
}

fn validate_link_local(a: Ipv6Addr) -> Result<(), StackError> {
    if !packet::is_link_local_v6(a) || a.is_multicast() {
        return Err(StackError::InvalidAddress(IpAddr::V6(a)));
    }
    Ok(())
}

fn new_iface(id: IfaceId, seed: u64, cfg: &StackConfig, now: SmolInstant) -> Iface {
    let mut rx = VecDeque::new();
    let mut out = VecDeque::new();
    let mut dev = Dev {
        rx: &mut rx,
        out: &mut out,
        tag: OutTag::Global,
        mtu: cfg.mtu,
        out_limit: cfg.tx_queue_packets,
    };
    let mut config = Config::new(HardwareAddress::Ip);
    let salt = match id {
        IfaceId::Global => 0,
        IfaceId::Scope(s) => u64::from(s) + 1,
    };
    config.random_seed = seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut iface = Interface::new(config, &mut dev, now);
    // No addresses on the interface (see the crate docs): accept any destination,
    // and let every destination be "reachable" on this point-to-point device.
    iface.set_any_ip(true);
    let routes = iface.routes_mut();
    // The gateway is irrelevant on a Medium::Ip device; these never fail on an
    // empty table of capacity 2.
    let _ = routes.add_default_ipv4_route(Ipv4Addr::new(192, 0, 0, 8));
    let _ = routes.add_default_ipv6_route(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 1));
    Iface {
        iface,
        sockets: SocketSet::new(Vec::new()),
        rx,
    }
}

fn new_tcp_socket(cfg: &StackConfig, bufs: TcpBuffers) -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; bufs.rx]),
        tcp::SocketBuffer::new(vec![0u8; bufs.tx]),
    );
    s.set_congestion_control(tcp::CongestionControl::Cubic);
    // Expires handshakes that never complete, including half-open ones in a backlog.
    s.set_timeout(cfg.tcp_timeout.map(smol_duration));
    s
}

/// smoltcp's socket timeout (0.14) aborts a connection once `timeout` has passed since
/// the peer's last segment, even when there is nothing to wait for: an idle connection
/// would die. So it is armed only while it means something: during the handshake,
/// while data waits for acknowledgement (a zero-window peer still answers probes), or
/// with keep-alive on. smoltcp restarts the clock when data is queued after a quiet
/// period.
fn arm_timeout(s: &mut tcp::Socket<'static>, timeout: Option<Duration>) {
    use tcp::State::*;
    let want = matches!(s.state(), Listen | SynSent | SynReceived)
        || s.send_queue() > 0
        || s.keep_alive().is_some();
    s.set_timeout(if want {
        timeout.map(smol_duration)
    } else {
        None
    });
}

/// Right before smoltcp processes a SYN on interface `id`: make sure the listener that
/// should get it has a listening socket there, and that no other listener's socket
/// (or no listener at all, for a retransmitted SYN of an existing connection) takes it.
fn prepare_listener(
    id: IfaceId,
    sockets: &mut SocketSet<'static>,
    syn: SynInfo,
    tcp_entries: &mut HashMap<u64, TcpEntry>,
    cfg: &StackConfig,
) {
    let local = IpEndpoint::from(syn.dst);
    let remote = IpEndpoint::from(syn.src);
    let listen_ep = IpListenEndpoint::from(syn.dst);
    let existing = sockets.iter().any(|(_, s)| {
        tcp::Socket::downcast(s).is_some_and(|t| {
            !matches!(t.state(), tcp::State::Closed | tcp::State::Listen)
                && t.local_endpoint() == Some(local)
                && t.remote_endpoint() == Some(remote)
        })
    });
    let mut best: Option<(u8, u64)> = None;
    if !existing {
        for (&k, e) in tcp_entries.iter() {
            if let TcpEntry::Listener(l) = e {
                if let Some(score) = binding_score(l.local, l.scope, id, syn.dst) {
                    let better = match best {
                        None => true,
                        Some((bs, bk)) => score > bs || (score == bs && k < bk),
                    };
                    if better {
                        best = Some((score, k));
                    }
                }
            }
        }
    }
    let best_key = best.map(|(_, k)| k);
    let mut found = false;
    let mut best_pending = 0usize;
    for (&k, e) in tcp_entries.iter_mut() {
        let TcpEntry::Listener(l) = e else { continue };
        l.socks.retain(|&(i, h)| {
            if i != id {
                if Some(k) == best_key {
                    best_pending += 1;
                }
                return true;
            }
            let s = sockets.get::<tcp::Socket>(h);
            if s.state() == tcp::State::Listen {
                if s.listen_endpoint() != listen_ep {
                    return true;
                }
                if Some(k) == best_key && !found {
                    found = true;
                    return true;
                }
                sockets.remove(h);
                false
            } else if s.state() == tcp::State::Closed && s.remote_endpoint().is_none() {
                // A handshake that failed; nothing left to send.
                sockets.remove(h);
                false
            } else {
                if Some(k) == best_key {
                    best_pending += 1;
                }
                true
            }
        });
    }
    let Some(k) = best_key else { return };
    if found || best_pending >= cfg.tcp_backlog {
        return;
    }
    let Some(TcpEntry::Listener(l)) = tcp_entries.get_mut(&k) else {
        return;
    };
    let mut s = new_tcp_socket(cfg, l.bufs);
    if s.listen(listen_ep).is_ok() {
        let h = sockets.add(s);
        l.socks.push((id, h));
    }
}

impl Stack {
    /// A stack for the node's `global` addresses (IPv4 and IPv6, not link-local) and
    /// per tunnel the node's link-local (fe80::/10) addresses, with the default
    /// [`StackConfig`].
    pub fn new(
        now: Instant,
        global: &[IpAddr],
        link_local: &[(Scope, Vec<Ipv6Addr>)],
    ) -> Result<Stack, StackError> {
        Stack::with_config(now, global, link_local, StackConfig::default())
    }

    /// Like [`Stack::new`], with explicit tunables.
    pub fn with_config(
        now: Instant,
        global: &[IpAddr],
        link_local: &[(Scope, Vec<Ipv6Addr>)],
        cfg: StackConfig,
    ) -> Result<Stack, StackError> {
        let seed = cfg.random_seed.unwrap_or_else(|| {
            let mut h = RandomState::new().build_hasher();
            h.write_u64(0x7272_2d73_7461_636b);
            h.finish()
        });
        let mut stack = Stack {
            base: now,
            now: SmolInstant::from_micros(0),
            cfg,
            seed,
            global: Vec::new(),
            global_set: HashSet::new(),
            link_local: HashMap::new(),
            ifaces: BTreeMap::new(),
            out: VecDeque::new(),
            tcp: HashMap::new(),
            udp: HashMap::new(),
            next_id: 1,
            tcp_ports: HashMap::new(),
            port_cursor: (seed % u64::from(EPHEMERAL_COUNT)) as u16,
            orphans: Vec::new(),
            pins: HashMap::new(),
            stats: StackStats::default(),
        };
        stack.set_global_addresses(global)?;
        for (scope, addrs) in link_local {
            let mut all = stack.link_local.get(scope).cloned().unwrap_or_default();
            all.extend(addrs.iter().copied());
            stack.set_link_local(*scope, &all)?;
        }
        let g = new_iface(IfaceId::Global, stack.seed, &stack.cfg, stack.now);
        stack.ifaces.insert(IfaceId::Global, g);
        Ok(stack)
    }

    /// Replace the node's global addresses. Existing connections keep theirs.
    pub fn set_global_addresses(&mut self, global: &[IpAddr]) -> Result<(), StackError> {
        for &ip in global {
            validate_global(ip)?;
        }
        let mut list = Vec::new();
        for &ip in global {
            if !list.contains(&ip) {
                list.push(ip);
            }
        }
        self.global_set = list.iter().copied().collect();
        self.global = list;
        Ok(())
    }

    /// Replace a tunnel's link-local addresses (empty: none). Existing connections
    /// keep theirs.
    pub fn set_link_local(&mut self, scope: Scope, addrs: &[Ipv6Addr]) -> Result<(), StackError> {
        for &a in addrs {
            validate_link_local(a)?;
        }
        let mut list = Vec::new();
        for &a in addrs {
            if !list.contains(&a) {
                list.push(a);
            }
        }
        self.link_local.insert(scope, list);
        Ok(())
    }

    /// Forget a tunnel: its link-local addresses, its interface and every connection
    /// on it (they read as [`TcpState::Closed`] / [`StackError::Reset`] until released).
    pub fn remove_scope(&mut self, scope: Scope) {
        self.link_local.remove(&scope);
        let id = IfaceId::Scope(scope);
        if self.ifaces.remove(&id).is_none() {
            return;
        }
        for e in self.tcp.values_mut() {
            match e {
                TcpEntry::Conn(c) if c.iface == id => c.detached = true,
                TcpEntry::Listener(l) => l.socks.retain(|&(i, _)| i != id),
                _ => {}
            }
        }
        let mut freed = Vec::new();
        self.orphans.retain(|o| {
            if o.iface == id {
                freed.extend(o.port);
                false
            } else {
                true
            }
        });
        for p in freed {
            self.unref_port(p);
        }
    }

    /// Drop counters.
    pub fn stats(&self) -> StackStats {
        self.stats
    }

    /// Packets waiting for [`Stack::poll_transmit`] (at most
    /// [`StackConfig::tx_queue_packets`], plus the replies smoltcp makes to received
    /// packets: RSTs, ACKs, ICMP errors).
    pub fn tx_queued(&self) -> usize {
        self.out.len()
    }

    fn set_now(&mut self, now: Instant) -> SmolInstant {
        let d = now.saturating_duration_since(self.base);
        let t = SmolInstant::from_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        if t > self.now {
            self.now = t;
        }
        self.now
    }

    fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn iface_mut(&mut self, id: IfaceId) -> &mut Iface {
        let (seed, now) = (self.seed, self.now);
        let cfg = &self.cfg;
        self.ifaces
            .entry(id)
            .or_insert_with(|| new_iface(id, seed, cfg, now))
    }

    fn ref_port(&mut self, port: u16) {
        *self.tcp_ports.entry(port).or_insert(0) += 1;
    }

    fn unref_port(&mut self, port: u16) {
        if let Some(n) = self.tcp_ports.get_mut(&port) {
            *n -= 1;
            if *n == 0 {
                self.tcp_ports.remove(&port);
            }
        }
    }

    fn pin(&mut self, remote: IpAddr, scope: Scope) {
        let e = self.pins.entry(remote).or_insert((scope, 0));
        // The latest request wins if two connections disagree about the tunnel.
        e.0 = scope;
        e.1 += 1;
    }

    fn unpin(&mut self, remote: IpAddr) {
        if let Some(e) = self.pins.get_mut(&remote) {
            e.1 -= 1;
            if e.1 == 0 {
                self.pins.remove(&remote);
            }
        }
    }

    fn is_node_addr(&self, ip: IpAddr, scope: Option<Scope>) -> bool {
        match ip {
            IpAddr::V6(a) if packet::is_link_local_v6(a) => scope
                .and_then(|s| self.link_local.get(&s))
                .is_some_and(|l| l.contains(&a)),
            _ => self.global_set.contains(&ip),
        }
    }

    /// Check a local address given to listen/bind.
    fn check_bind_addr(&self, ip: IpAddr, scope: Option<Scope>) -> Result<(), StackError> {
        if ip.is_unspecified() {
            if scope.is_some() && ip.is_ipv4() {
                return Err(StackError::ScopeNotApplicable(ip));
            }
            return Ok(());
        }
        if is_link_local(ip) {
            if scope.is_none() {
                return Err(StackError::ScopeRequired(ip));
            }
        } else if scope.is_some() {
            return Err(StackError::ScopeNotApplicable(ip));
        }
        if !self.is_node_addr(ip, scope) {
            return Err(StackError::AddrNotAvailable(ip));
        }
        Ok(())
    }

    /// Source address for talking to `remote` (what `getsockname` of a connected
    /// socket bound to a wildcard tells).
    pub fn select_source(
        &self,
        remote: IpAddr,
        scope: Option<Scope>,
    ) -> Result<IpAddr, StackError> {
        if is_link_local(remote) {
            let s = scope.ok_or(StackError::ScopeRequired(remote))?;
            return self
                .link_local
                .get(&s)
                .and_then(|l| l.first())
                .map(|&a| IpAddr::V6(a))
                .ok_or(StackError::NoSourceAddress(remote));
        }
        self.global
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == remote.is_ipv4())
            .ok_or(StackError::NoSourceAddress(remote))
    }

    /// An IP packet for this node, arrived on tunnel `scope`.
    ///
    /// Packets that are malformed or not addressed to the node's addresses (its global
    /// ones, or the tunnel's link-local ones) are dropped and counted in [`Stack::stats`].
    pub fn receive(&mut self, now: Instant, scope: Scope, packet: &[u8]) {
        self.set_now(now);
        let Some(p) = packet::parse_ip(packet) else {
            self.stats.rx_malformed += 1;
            return;
        };
        if !is_unicast(p.src) || !is_unicast(p.dst) {
            self.stats.rx_not_local += 1;
            return;
        }
        let id = if is_link_local(p.src) || is_link_local(p.dst) {
            IfaceId::Scope(scope)
        } else {
            IfaceId::Global
        };
        if !self.is_node_addr(p.dst, Some(scope)) {
            self.stats.rx_not_local += 1;
            return;
        }
        let mut syn = None;
        if p.proto == IpProtocol::Udp {
            let Some((sport, dport, data)) = packet::parse_udp(&p) else {
                self.stats.rx_malformed += 1;
                return;
            };
            let dst = SocketAddr::new(p.dst, dport);
            let mut best: Option<(u8, u64)> = None;
            for (&k, b) in &self.udp {
                if let Some(score) = binding_score(b.local, b.scope, id, dst) {
                    if best.is_none_or(|(bs, bk)| score > bs || (score == bs && k < bk)) {
                        best = Some((score, k));
                    }
                }
            }
            if let Some((_, k)) = best {
                let limit = self.cfg.udp_queue_bytes;
                if let Some(b) = self.udp.get_mut(&k) {
                    if b.queued_bytes + data.len() > limit {
                        self.stats.udp_queue_full += 1;
                    } else {
                        b.queued_bytes += data.len();
                        b.queue.push_back((
                            data.to_vec(),
                            SocketAddr::new(p.src, sport),
                            id.scope(),
                        ));
                    }
                }
                return;
            }
            // No binding: smoltcp (which has no UDP sockets) answers port unreachable.
        } else if p.proto == IpProtocol::Tcp {
            syn = packet::tcp_syn(&p);
        }
        let limit = self.cfg.rx_queue_packets;
        let bytes = p.packet.to_vec();
        let ifc = self.iface_mut(id);
        if ifc.rx.len() >= limit {
            self.stats.rx_queue_full += 1;
            return;
        }
        ifc.rx.push_back(RxPacket { bytes, syn });
    }

    /// Run smoltcp: process received packets and timers, produce output. Call after
    /// [`Stack::receive`], after socket operations, and when [`Stack::poll_delay`] expires.
    pub fn poll(&mut self, now: Instant) {
        let ts = self.set_now(now);
        let Stack {
            ifaces,
            tcp: tcp_entries,
            out,
            cfg,
            ..
        } = self;
        for (&id, ifc) in ifaces.iter_mut() {
            let Iface { iface, sockets, rx } = ifc;
            if rx.is_empty() && sockets.iter().next().is_none() {
                continue;
            }
            let tag = match id {
                IfaceId::Global => OutTag::Global,
                IfaceId::Scope(s) => OutTag::Fixed(Some(s)),
            };
            let mut dev = Dev {
                rx,
                out,
                tag,
                mtu: cfg.mtu,
                out_limit: cfg.tx_queue_packets,
            };
            iface.poll_maintenance(ts);
            while let Some(front) = dev.rx.front() {
                if let Some(syn) = front.syn {
                    prepare_listener(id, sockets, syn, tcp_entries, cfg);
                }
                iface.poll_ingress_single(ts, &mut dev, sockets);
            }
            while matches!(
                iface.poll_egress(ts, &mut dev, sockets),
                PollResult::SocketStateChanged
            ) {}
        }
        self.sweep(ts);
    }

    /// After a poll: remember connection milestones, reap orphans.
    fn sweep(&mut self, ts: SmolInstant) {
        let timeout = self.cfg.tcp_timeout;
        for e in self.tcp.values_mut() {
            match e {
                TcpEntry::Conn(c) => {
                    if c.detached {
                        continue;
                    }
                    if let Some(ifc) = self.ifaces.get_mut(&c.iface) {
                        let s = ifc.sockets.get_mut::<tcp::Socket>(c.sock);
                        c.observe(s.state());
                        arm_timeout(s, timeout);
                    }
                }
                TcpEntry::Listener(l) => {
                    // Established connections waiting for tcp_accept may idle, too.
                    for &(i, h) in &l.socks {
                        if let Some(ifc) = self.ifaces.get_mut(&i) {
                            arm_timeout(ifc.sockets.get_mut::<tcp::Socket>(h), timeout);
                        }
                    }
                }
            }
        }
        let mut freed = Vec::new();
        let ifaces = &mut self.ifaces;
        self.orphans.retain(|o| {
            let Some(ifc) = ifaces.get_mut(&o.iface) else {
                freed.extend(o.port);
                return false;
            };
            let s = ifc.sockets.get_mut::<tcp::Socket>(o.sock);
            if s.state() == tcp::State::Closed && s.remote_endpoint().is_none() {
                ifc.sockets.remove(o.sock);
                freed.extend(o.port);
                return false;
            }
            if ts >= o.deadline && s.state() != tcp::State::Closed {
                // Sends RST on the next poll, then is reaped.
                s.abort();
            }
            true
        });
        for p in freed {
            self.unref_port(p);
        }
    }

    /// Next outgoing IP packet: `Some(scope)` when it must leave through that tunnel
    /// (link-local source or destination, or a destination pinned to a tunnel),
    /// `None` to route it by FIB.
    pub fn poll_transmit(&mut self) -> Option<(Option<Scope>, Vec<u8>)> {
        let p = self.out.pop_front()?;
        let scope = match p.tag {
            OutTag::Fixed(s) => s,
            OutTag::Global if self.pins.is_empty() => None,
            OutTag::Global => {
                packet::dst_addr(&p.bytes).and_then(|d| self.pins.get(&d).map(|&(s, _)| s))
            }
        };
        Some((scope, p.bytes))
    }

    /// How long until [`Stack::poll`] must be called again (`None`: only on new input
    /// or a socket operation).
    pub fn poll_delay(&mut self, now: Instant) -> Option<Duration> {
        let ts = self.set_now(now);
        let mut best: Option<Duration> = None;
        let mut consider = |d: Duration| {
            best = Some(best.map_or(d, |b| b.min(d)));
        };
        for ifc in self.ifaces.values_mut() {
            if !ifc.rx.is_empty() {
                consider(Duration::ZERO);
                continue;
            }
            if ifc.sockets.iter().next().is_none() {
                continue;
            }
            if let Some(d) = ifc.iface.poll_delay(ts, &ifc.sockets) {
                consider(std_duration(d));
            }
        }
        for o in &self.orphans {
            consider(if o.deadline > ts {
                std_duration(o.deadline - ts)
            } else {
                Duration::ZERO
            });
        }
        best
    }

    // ---------------------------------------------------------------- TCP

    /// Listen for TCP connections on `local`.
    ///
    /// - unspecified address, scope `None`: connections to any of the node's addresses
    ///   of that family (`[::]` also takes IPv4), global or link-local on any tunnel;
    /// - unspecified IPv6 address, scope `Some(s)`: only connections on tunnel `s` with a
    ///   link-local source or destination;
    /// - a specific address: only connections to it (link-local ones need the scope).
    ///
    /// Port 0 picks an ephemeral port (see [`Stack::tcp_local`]). Connections get the
    /// buffer sizes of [`StackConfig`].
    pub fn tcp_listen(
        &mut self,
        local: SocketAddr,
        scope: Option<Scope>,
    ) -> Result<TcpHandle, StackError> {
        let bufs = self.default_buffers();
        self.tcp_listen_with(local, scope, bufs)
    }

    /// Like [`Stack::tcp_listen`]; the connections it accepts get buffers of `bufs`.
    pub fn tcp_listen_with(
        &mut self,
        local: SocketAddr,
        scope: Option<Scope>,
        bufs: TcpBuffers,
    ) -> Result<TcpHandle, StackError> {
        self.check_bind_addr(local.ip(), scope)?;
        let mut local = local;
        if local.port() == 0 {
            local.set_port(self.ephemeral_tcp_port()?);
        }
        let clash = self
            .tcp
            .values()
            .any(|e| matches!(e, TcpEntry::Listener(l) if l.local == local && l.scope == scope));
        if clash {
            return Err(StackError::AddrInUse(local));
        }
        self.ref_port(local.port());
        let id = self.alloc_id();
        self.tcp.insert(
            id,
            TcpEntry::Listener(Listener {
                local,
                scope,
                bufs,
                socks: Vec::new(),
            }),
        );
        Ok(TcpHandle(id))
    }

    /// An established connection from `listener`'s backlog, if any.
    pub fn tcp_accept(&mut self, listener: TcpHandle) -> Option<TcpHandle> {
        let Some(TcpEntry::Listener(l)) = self.tcp.get_mut(&listener.0) else {
            return None;
        };
        let ifaces = &mut self.ifaces;
        let mut taken = None;
        l.socks.retain(|&(i, h)| {
            if taken.is_some() {
                return true;
            }
            let Some(ifc) = ifaces.get_mut(&i) else {
                return false;
            };
            let s = ifc.sockets.get::<tcp::Socket>(h);
            match s.state() {
                tcp::State::Listen | tcp::State::SynReceived | tcp::State::SynSent => true,
                tcp::State::Closed => {
                    if s.remote_endpoint().is_none() {
                        ifc.sockets.remove(h);
                        false
                    } else {
                        true
                    }
                }
                state => match (s.local_endpoint(), s.remote_endpoint()) {
                    (Some(local), Some(peer)) => {
                        taken = Some((i, h, state, ep_to_std(local), ep_to_std(peer)));
                        false
                    }
                    _ => true,
                },
            }
        });
        let (iface, sock, state, local, peer) = taken?;
        let mut c = Conn::new(iface, sock, local, peer);
        c.established = true;
        c.observe(state);
        self.ref_port(local.port());
        let id = self.alloc_id();
        self.tcp.insert(id, TcpEntry::Conn(c));
        Some(TcpHandle(id))
    }

    fn default_buffers(&self) -> TcpBuffers {
        TcpBuffers {
            rx: self.cfg.tcp_rx_buffer,
            tx: self.cfg.tcp_tx_buffer,
        }
    }

    fn ephemeral_tcp_port(&mut self) -> Result<u16, StackError> {
        for _ in 0..EPHEMERAL_COUNT {
            self.port_cursor = (self.port_cursor + 1) % EPHEMERAL_COUNT;
            let p = EPHEMERAL_FIRST + self.port_cursor;
            if !self.tcp_ports.contains_key(&p) {
                return Ok(p);
            }
        }
        Err(StackError::PortsExhausted)
    }

    /// Open a TCP connection to `remote`.
    ///
    /// `scope` is required for a link-local remote (the tunnel to use); for a global
    /// remote it pins the connection's packets to that tunnel instead of the FIB. `local`
    /// picks the source address and/or port (port 0: ephemeral); by default the source is
    /// the first global address of the remote's family, or the tunnel's first link-local
    /// address. Call [`Stack::poll`] to send the SYN.
    pub fn tcp_connect(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        scope: Option<Scope>,
        local: Option<SocketAddr>,
    ) -> Result<TcpHandle, StackError> {
        let bufs = self.default_buffers();
        self.tcp_connect_with(now, remote, scope, local, bufs)
    }

    /// Like [`Stack::tcp_connect`], with buffers of `bufs`.
    pub fn tcp_connect_with(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        scope: Option<Scope>,
        local: Option<SocketAddr>,
        bufs: TcpBuffers,
    ) -> Result<TcpHandle, StackError> {
        self.set_now(now);
        if remote.port() == 0 || !is_unicast(remote.ip()) {
            return Err(StackError::InvalidRemote(remote));
        }
        let local_ip = match local.map(|l| l.ip()).filter(|ip| !ip.is_unspecified()) {
            Some(ip) => {
                if ip.is_ipv4() != remote.is_ipv4() {
                    return Err(StackError::FamilyMismatch {
                        local: ip,
                        remote: remote.ip(),
                    });
                }
                if is_link_local(ip) && scope.is_none() {
                    return Err(StackError::ScopeRequired(ip));
                }
                if !self.is_node_addr(ip, scope) {
                    return Err(StackError::AddrNotAvailable(ip));
                }
                ip
            }
            None => self.select_source(remote.ip(), scope)?,
        };
        let id = IfaceId::for_pair(local_ip, remote.ip(), scope)?;
        let port = match local.map(|l| l.port()).filter(|&p| p != 0) {
            Some(p) => p,
            None => self.ephemeral_tcp_port()?,
        };
        let local_ep = IpEndpoint::new(local_ip.into(), port);
        let remote_ep = IpEndpoint::from(remote);
        let mut sock = new_tcp_socket(&self.cfg, bufs);
        let ifc = self.iface_mut(id);
        let in_use = ifc.sockets.iter().any(|(_, s)| {
            tcp::Socket::downcast(s).is_some_and(|t| {
                t.state() != tcp::State::Closed
                    && t.local_endpoint() == Some(local_ep)
                    && t.remote_endpoint() == Some(remote_ep)
            })
        });
        if in_use {
            return Err(StackError::AddrInUse(SocketAddr::new(local_ip, port)));
        }
        sock.connect(ifc.iface.context(), remote_ep, local_ep)
            .map_err(|_| StackError::InvalidRemote(remote))?;
        let h = ifc.sockets.add(sock);
        let pin = match id {
            IfaceId::Global => scope,
            IfaceId::Scope(_) => None,
        };
        if let Some(s) = pin {
            self.pin(remote.ip(), s);
        }
        self.ref_port(port);
        let hid = self.alloc_id();
        let mut c = Conn::new(id, h, SocketAddr::new(local_ip, port), remote);
        c.pin = pin;
        self.tcp.insert(hid, TcpEntry::Conn(c));
        Ok(TcpHandle(hid))
    }

    fn conn(&self, h: TcpHandle) -> Result<(&Conn, Option<&tcp::Socket<'static>>), StackError> {
        match self.tcp.get(&h.0) {
            None => Err(StackError::InvalidHandle),
            Some(TcpEntry::Listener(_)) => Err(StackError::NotConnected),
            Some(TcpEntry::Conn(c)) => {
                let s = if c.detached {
                    None
                } else {
                    self.ifaces
                        .get(&c.iface)
                        .map(|i| i.sockets.get::<tcp::Socket>(c.sock))
                };
                Ok((c, s))
            }
        }
    }

    fn conn_mut(
        &mut self,
        h: TcpHandle,
    ) -> Result<(&mut Conn, Option<&mut tcp::Socket<'static>>), StackError> {
        match self.tcp.get_mut(&h.0) {
            None => Err(StackError::InvalidHandle),
            Some(TcpEntry::Listener(_)) => Err(StackError::NotConnected),
            Some(TcpEntry::Conn(c)) => {
                let s = if c.detached {
                    None
                } else {
                    self.ifaces
                        .get_mut(&c.iface)
                        .map(|i| i.sockets.get_mut::<tcp::Socket>(c.sock))
                };
                if let Some(s) = &s {
                    c.observe(s.state());
                }
                Ok((c, s))
            }
        }
    }

    /// The connection's (or listener's) state; [`TcpState::Closed`] for an unknown handle.
    pub fn tcp_state(&self, h: TcpHandle) -> TcpState {
        match self.tcp.get(&h.0) {
            Some(TcpEntry::Listener(_)) => TcpState::Listening,
            Some(TcpEntry::Conn(_)) => match self.conn(h) {
                Ok((_, Some(s))) => map_state(s.state()),
                _ => TcpState::Closed,
            },
            None => TcpState::Closed,
        }
    }

    /// Queue data; returns how much fit (0: the send buffer is full, or still connecting).
    pub fn tcp_send(&mut self, h: TcpHandle, data: &[u8]) -> Result<usize, StackError> {
        let timeout = self.cfg.tcp_timeout;
        let (c, s) = self.conn_mut(h)?;
        let Some(s) = s else {
            return Err(c.closed_error());
        };
        match s.state() {
            tcp::State::SynSent | tcp::State::SynReceived => Ok(0),
            tcp::State::Closed => Err(c.closed_error()),
            _ if !s.may_send() => Err(StackError::Closed),
            _ => {
                let n = s.send_slice(data).map_err(|_| StackError::Closed)?;
                arm_timeout(s, timeout);
                Ok(n)
            }
        }
    }

    /// Read received data; `Ok(0)`: nothing right now. After the peer's FIN and all
    /// data read: `Err(Closed)`; after a reset: `Err(Reset)` (or `Err(Refused)` if the
    /// connection never got established).
    pub fn tcp_recv(&mut self, h: TcpHandle, buf: &mut [u8]) -> Result<usize, StackError> {
        let (c, s) = self.conn_mut(h)?;
        let Some(s) = s else {
            return Err(c.closed_error());
        };
        match s.state() {
            tcp::State::SynSent | tcp::State::SynReceived => return Ok(0),
            tcp::State::Listen => return Ok(0),
            _ => {}
        }
        match s.recv_slice(buf) {
            Ok(n) => Ok(n),
            Err(tcp::RecvError::Finished) => Err(StackError::Closed),
            Err(_) => Err(c.closed_error()),
        }
    }

    /// Like [`Stack::tcp_send`] without a copy in between: `fill` gets the largest
    /// contiguous free part of the send buffer and returns how many bytes it wrote
    /// there (e.g. a `read(2)` straight into it). `fill` is not called (`Ok(0)`) while
    /// the buffer is full or the handshake is not complete. A ring buffer's free space
    /// may be in two parts: call again while it returns what `fill` was offered.
    pub fn tcp_send_with(
        &mut self,
        h: TcpHandle,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, StackError> {
        let timeout = self.cfg.tcp_timeout;
        let (c, s) = self.conn_mut(h)?;
        let Some(s) = s else {
            return Err(c.closed_error());
        };
        match s.state() {
            tcp::State::SynSent | tcp::State::SynReceived => Ok(0),
            tcp::State::Closed => Err(c.closed_error()),
            _ if !s.may_send() => Err(StackError::Closed),
            _ if s.send_queue() >= s.send_capacity() => Ok(0),
            _ => {
                let n = s
                    .send(|buf| {
                        let n = fill(buf).min(buf.len());
                        (n, n)
                    })
                    .map_err(|_| StackError::Closed)?;
                arm_timeout(s, timeout);
                Ok(n)
            }
        }
    }

    /// Like [`Stack::tcp_recv`] without a copy in between: `drain` gets the largest
    /// contiguous part of the received data and returns how many bytes it consumed
    /// (e.g. a `write(2)` straight from it). `Ok(0)` without calling `drain`: nothing
    /// received yet. Errors as [`Stack::tcp_recv`].
    pub fn tcp_recv_with(
        &mut self,
        h: TcpHandle,
        drain: impl FnOnce(&[u8]) -> usize,
    ) -> Result<usize, StackError> {
        let (c, s) = self.conn_mut(h)?;
        let Some(s) = s else {
            return Err(c.closed_error());
        };
        match s.state() {
            tcp::State::SynSent | tcp::State::SynReceived | tcp::State::Listen => return Ok(0),
            _ => {}
        }
        if s.recv_queue() == 0 {
            // Keeps the error reporting of tcp_recv (FIN after all data, reset).
            return match s.recv_slice(&mut []) {
                Ok(_) => Ok(0),
                Err(tcp::RecvError::Finished) => Err(StackError::Closed),
                Err(_) => Err(c.closed_error()),
            };
        }
        match s.recv(|buf| {
            let n = drain(buf).min(buf.len());
            (n, n)
        }) {
            Ok(n) => Ok(n),
            Err(tcp::RecvError::Finished) => Err(StackError::Closed),
            Err(_) => Err(c.closed_error()),
        }
    }

    /// TCP handles in use (listeners and connections not yet released).
    pub fn tcp_handles(&self) -> usize {
        self.tcp.len()
    }

    /// Bytes queued for sending and not yet acknowledged by the peer.
    pub fn tcp_send_queue(&self, h: TcpHandle) -> usize {
        match self.conn(h) {
            Ok((_, Some(s))) => s.send_queue(),
            _ => 0,
        }
    }

    /// Bytes received and not yet read.
    pub fn tcp_recv_queue(&self, h: TcpHandle) -> usize {
        match self.conn(h) {
            Ok((_, Some(s))) => s.recv_queue(),
            _ => 0,
        }
    }

    /// Disable (true) or enable Nagle's algorithm.
    pub fn tcp_set_nodelay(&mut self, h: TcpHandle, nodelay: bool) -> Result<(), StackError> {
        if let (_, Some(s)) = self.conn_mut(h)? {
            s.set_nagle_enabled(!nodelay);
        }
        Ok(())
    }

    /// Send keep-alives after this much idle time (`None`: off, the default). With
    /// keep-alives on, a peer silent for [`StackConfig::tcp_timeout`] resets the
    /// connection: choose an interval well below it, and turn it on right after
    /// connect/accept (smoltcp counts the silence from the peer's last segment, so
    /// enabling it on a connection idle for longer than the timeout aborts it).
    pub fn tcp_set_keepalive(
        &mut self,
        h: TcpHandle,
        interval: Option<Duration>,
    ) -> Result<(), StackError> {
        let timeout = self.cfg.tcp_timeout;
        if let (_, Some(s)) = self.conn_mut(h)? {
            s.set_keep_alive(interval.map(smol_duration));
            arm_timeout(s, timeout);
        }
        Ok(())
    }

    /// The remote endpoint, and the tunnel when it is scoped (link-local, or pinned by
    /// `tcp_connect`).
    pub fn tcp_peer(&self, h: TcpHandle) -> Option<(SocketAddr, Option<Scope>)> {
        match self.tcp.get(&h.0)? {
            TcpEntry::Conn(c) => Some((c.peer, c.iface.scope().or(c.pin))),
            TcpEntry::Listener(_) => None,
        }
    }

    /// The local endpoint (a listener's bound address).
    pub fn tcp_local(&self, h: TcpHandle) -> Option<SocketAddr> {
        match self.tcp.get(&h.0)? {
            TcpEntry::Conn(c) => Some(c.local),
            TcpEntry::Listener(l) => Some(l.local),
        }
    }

    /// Close our sending side (FIN after the queued data). On a listener: stop
    /// listening and reset the connections not yet accepted.
    pub fn tcp_close(&mut self, h: TcpHandle) {
        match self.tcp.get(&h.0) {
            Some(TcpEntry::Conn(_)) => {
                if let Ok((_, Some(s))) = self.conn_mut(h) {
                    s.close();
                }
            }
            Some(TcpEntry::Listener(_)) => self.close_listener(h),
            None => {}
        }
    }

    /// Abort with RST. On a listener: like [`Stack::tcp_close`].
    pub fn tcp_abort(&mut self, h: TcpHandle) {
        match self.tcp.get(&h.0) {
            Some(TcpEntry::Conn(_)) => {
                if let Ok((c, s)) = self.conn_mut(h) {
                    c.local_abort = true;
                    if let Some(s) = s {
                        s.abort();
                    }
                }
            }
            Some(TcpEntry::Listener(_)) => self.close_listener(h),
            None => {}
        }
    }

    fn close_listener(&mut self, h: TcpHandle) {
        let Some(TcpEntry::Listener(l)) = self.tcp.get_mut(&h.0) else {
            return;
        };
        let deadline = self.now + smol_duration(self.cfg.tcp_orphan_timeout);
        for (i, sh) in std::mem::take(&mut l.socks) {
            let Some(ifc) = self.ifaces.get_mut(&i) else {
                continue;
            };
            let s = ifc.sockets.get_mut::<tcp::Socket>(sh);
            if s.state() == tcp::State::Listen || s.remote_endpoint().is_none() {
                ifc.sockets.remove(sh);
            } else {
                s.abort();
                self.orphans.push(Orphan {
                    iface: i,
                    sock: sh,
                    deadline,
                    port: None,
                });
            }
        }
    }

    /// Free the handle. An open connection is closed gracefully first (FIN; the socket
    /// lingers until closed, at most [`StackConfig::tcp_orphan_timeout`]). A listener
    /// stops listening.
    pub fn tcp_release(&mut self, h: TcpHandle) {
        match self.tcp.get(&h.0) {
            None => {}
            Some(TcpEntry::Listener(l)) => {
                let port = l.local.port();
                self.close_listener(h);
                self.tcp.remove(&h.0);
                self.unref_port(port);
            }
            Some(TcpEntry::Conn(_)) => {
                let Some(TcpEntry::Conn(c)) = self.tcp.remove(&h.0) else {
                    return;
                };
                if c.pin.is_some() {
                    self.unpin(c.peer.ip());
                }
                let port = c.local.port();
                let ifc = if c.detached {
                    None
                } else {
                    self.ifaces.get_mut(&c.iface)
                };
                let Some(ifc) = ifc else {
                    self.unref_port(port);
                    return;
                };
                let s = ifc.sockets.get_mut::<tcp::Socket>(c.sock);
                if s.state() == tcp::State::Closed && s.remote_endpoint().is_none() {
                    ifc.sockets.remove(c.sock);
                    self.unref_port(port);
                } else {
                    s.close();
                    self.orphans.push(Orphan {
                        iface: c.iface,
                        sock: c.sock,
                        deadline: self.now + smol_duration(self.cfg.tcp_orphan_timeout),
                        port: Some(port),
                    });
                }
            }
        }
    }

    // ---------------------------------------------------------------- UDP

    /// Bind a UDP port. Port 0: an ephemeral port. An unspecified address receives for
    /// any node address of its family (`[::]` also IPv4), on any tunnel for scope
    /// `None`, or only link-local traffic of tunnel `s` for `Some(s)`.
    pub fn udp_bind(
        &mut self,
        local: SocketAddr,
        scope: Option<Scope>,
    ) -> Result<UdpHandle, StackError> {
        self.check_bind_addr(local.ip(), scope)?;
        let mut local = local;
        if local.port() == 0 {
            let used: HashSet<u16> = self.udp.values().map(|b| b.local.port()).collect();
            let mut port = None;
            for _ in 0..EPHEMERAL_COUNT {
                self.port_cursor = (self.port_cursor + 1) % EPHEMERAL_COUNT;
                let p = EPHEMERAL_FIRST + self.port_cursor;
                if !used.contains(&p) {
                    port = Some(p);
                    break;
                }
            }
            local.set_port(port.ok_or(StackError::PortsExhausted)?);
        } else if self
            .udp
            .values()
            .any(|b| b.local == local && b.scope == scope)
        {
            return Err(StackError::AddrInUse(local));
        }
        let id = self.alloc_id();
        self.udp.insert(
            id,
            UdpBinding {
                local,
                scope,
                queue: VecDeque::new(),
                queued_bytes: 0,
            },
        );
        Ok(UdpHandle(id))
    }

    /// The bound local address.
    pub fn udp_local(&self, h: UdpHandle) -> Option<SocketAddr> {
        self.udp.get(&h.0).map(|b| b.local)
    }

    /// Send one datagram to `to`. `scope` (or the binding's) is required for a
    /// link-local destination; for a global one it sends the datagram out of that
    /// tunnel instead of routing by FIB. The packet is ready for
    /// [`Stack::poll_transmit`] at once; when [`StackConfig::tx_queue_packets`] packets
    /// already wait there it is refused with [`StackError::QueueFull`].
    pub fn udp_send_to(
        &mut self,
        h: UdpHandle,
        data: &[u8],
        to: SocketAddr,
        scope: Option<Scope>,
    ) -> Result<(), StackError> {
        let b = self.udp.get(&h.0).ok_or(StackError::InvalidHandle)?;
        if to.port() == 0 || !is_unicast(to.ip()) {
            return Err(StackError::InvalidRemote(to));
        }
        let scope = scope.or(b.scope);
        let src_ip = if b.local.ip().is_unspecified() {
            if b.local.is_ipv4() && to.is_ipv6() {
                return Err(StackError::FamilyMismatch {
                    local: b.local.ip(),
                    remote: to.ip(),
                });
            }
            self.select_source(to.ip(), scope)?
        } else {
            if b.local.is_ipv4() != to.is_ipv4() {
                return Err(StackError::FamilyMismatch {
                    local: b.local.ip(),
                    remote: to.ip(),
                });
            }
            b.local.ip()
        };
        let tag = IfaceId::for_pair(src_ip, to.ip(), scope)?.scope().or(scope);
        let len = packet::udp_packet_len(src_ip, data.len());
        let mtu = self.cfg.mtu.min(65535);
        if len > mtu {
            return Err(StackError::MessageTooLong { len, mtu });
        }
        if self.out.len() >= self.cfg.tx_queue_packets {
            self.stats.tx_queue_full += 1;
            return Err(StackError::QueueFull(self.out.len()));
        }
        let src = SocketAddr::new(src_ip, b.local.port());
        let bytes = packet::build_udp(src, to, data).ok_or(StackError::FamilyMismatch {
            local: src_ip,
            remote: to.ip(),
        })?;
        self.out.push_back(OutPacket {
            tag: OutTag::Fixed(tag),
            bytes,
        });
        Ok(())
    }

    /// The next datagram: bytes copied (the rest of a longer datagram is discarded),
    /// its source, and its tunnel if the source or destination was link-local.
    pub fn udp_recv_from(
        &mut self,
        h: UdpHandle,
        buf: &mut [u8],
    ) -> Option<(usize, SocketAddr, Option<Scope>)> {
        let b = self.udp.get_mut(&h.0)?;
        let (data, from, scope) = b.queue.pop_front()?;
        b.queued_bytes -= data.len();
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Some((n, from, scope))
    }

    /// Size of the next queued datagram, if any.
    pub fn udp_peek_len(&self, h: UdpHandle) -> Option<usize> {
        self.udp.get(&h.0)?.queue.front().map(|d| d.0.len())
    }

    /// Unbind; queued datagrams are dropped.
    pub fn udp_close(&mut self, h: UdpHandle) {
        self.udp.remove(&h.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_send_refuses_once_the_transmit_queue_is_full() {
        let (a, b): (IpAddr, IpAddr) = ([172, 20, 1, 1].into(), [172, 20, 2, 1].into());
        let to = SocketAddr::new(b, 53);
        let cfg = StackConfig {
            tx_queue_packets: 8,
            random_seed: Some(1),
            ..StackConfig::default()
        };
        let mut s = Stack::with_config(Instant::now(), &[a], &[], cfg).unwrap();
        let u = s.udp_bind(SocketAddr::new(a, 0), None).unwrap();
        for i in 0..8 {
            s.udp_send_to(u, &[i], to, None).unwrap();
        }
        assert_eq!(s.tx_queued(), 8);
        // Full: refused and counted, nothing more queued.
        for _ in 0..3 {
            assert_eq!(
                s.udp_send_to(u, b"x", to, None),
                Err(StackError::QueueFull(8))
            );
        }
        assert_eq!(s.tx_queued(), 8);
        assert_eq!(s.stats().tx_queue_full, 3);
        // One packet sent on: room for one more, in order.
        let (_, first) = s.poll_transmit().unwrap();
        assert_eq!(first.last(), Some(&0));
        s.udp_send_to(u, b"y", to, None).unwrap();
        assert!(s.udp_send_to(u, b"z", to, None).is_err());
        let mut last = None;
        while let Some((_, p)) = s.poll_transmit() {
            last = p.last().copied();
        }
        assert_eq!(last, Some(b'y'));
        assert_eq!(s.tx_queued(), 0);
    }
}
