//! The BGP speaker's I/O: sessions over the node's own TCP or the host's, the route
//! table between them, and the forwarding table it programs.
//!
//! What it is: the glue owned by the control thread. Each `[[bgp]]` section is an
//! `rr_bgp::session::Peer` (the sans-IO state machine); its connections are either
//! connections of the node's userspace stack (`transport = "tunnel"`, the stack listens
//! on TCP 179 of all the node's addresses) or host sockets (`transport = "host"`, one
//! reader and one writer thread per connection, bytes handed over the control
//! channel). Events of the sessions go to the `rr_rib::Rib`; its best routes go in
//! batches to the FIB writer thread, which publishes them while the route table goes on
//! with the next UPDATEs; its exports go back to the sessions.
//!
//! It also runs the `[roa]` sources ([`crate::roa_io::RoaFeed`]) and hands their ROA
//! set to the route table when it changes: received routes are validated again there,
//! and the FIB and the exports follow without any session being touched.
//!
//! What it is not: protocol logic. Message parsing, the FSM, timers, the decision
//! process and policies live in `rr-bgp` and `rr-rib`; nothing here decides a route.

use crate::control::ControlMsg;
use crate::logging::LogLimit;
use crate::roa_io::{RoaFeed, RtrMsg};
use crate::shared::{RouteSource, Shared};
use ipnet::IpNet;
use rr_bgp::packet::Family as BgpFamily;
use rr_bgp::session::{Action, ConnId, Direction, Event, Peer, SessionConfig, State, StopCause};
use rr_config::{BgpConfig, Config, Family, Transport};
use rr_fib::{IfIndex, NextHop};
use rr_rib::{
    FilterReason, PeerConfig, PeerId, PeerUp, Rib, RibConfig, RoaRules, RouteFilter, RouteView,
    Validity,
};
use rr_stack::{Stack, StackError, TcpHandle, TcpState};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Default seconds between connection attempts: short, DN42 peers come and go.
const DEFAULT_CONNECT_RETRY: u16 = 5;
/// Default hold time offered (BIRD's).
const DEFAULT_HOLD_TIME: u16 = 240;
/// FIB changes go to the FIB writer thread at most this often while routes pour in (or
/// sooner once this many are pending); the writer merges what queued up meanwhile and
/// publishes once per merge.
const FIB_HAND_OVER_EVERY: Duration = Duration::from_millis(5);
const FIB_HAND_OVER_AT: usize = 16 * 1024;
/// Batches in flight to the FIB writer before the route table waits for it.
const FIB_QUEUE: usize = 8;
/// Bytes read from a stack connection per call.
const READ_CHUNK: usize = 64 * 1024;
/// A host connection's reader stops reading while this much is waiting for the
/// control thread: TCP then pushes back on the sender instead of the feed piling up here.
const HOST_UNREAD_LIMIT: usize = 1 << 20;
/// How long a host connection attempt may take.
const HOST_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What host-socket threads tell the control thread.
pub(crate) enum HostMsg {
    /// An outgoing host connection is up (or failed).
    Connected(ConnId, std::io::Result<TcpStream>),
    /// A passive host session's listener accepted a connection.
    Accepted(usize, TcpStream),
    /// Bytes read from a host connection.
    Data(ConnId, Vec<u8>),
    /// The host connection ended (EOF or error).
    Closed(ConnId),
    /// Something from an RTR connection of `[roa] rtr`.
    Rtr(RtrMsg),
}

enum Io {
    /// A connection of the node's own stack.
    Stack(TcpHandle),
    /// An outgoing host connection still being made by its thread.
    HostPending,
    /// A host socket: bytes to its writer thread, the stream kept to shut it down.
    Host {
        tx: mpsc::Sender<Vec<u8>>,
        stream: TcpStream,
        /// Bytes read by the reader thread and not yet handled here.
        unread: Arc<AtomicUsize>,
    },
}

struct Conn {
    id: ConnId,
    peer: usize,
    io: Io,
    /// Bytes the session produced that the stack's send buffer did not take yet.
    out: Vec<u8>,
    /// The session has been told about this connection.
    opened: bool,
    /// The session asked to close it: close once `out` is written.
    closing: bool,
}

impl Conn {
    fn new(id: ConnId, peer: usize, io: Io, opened: bool) -> Conn {
        Conn {
            id,
            peer,
            io,
            out: Vec::new(),
            opened,
            closing: false,
        }
    }

    /// Moves what waits in `out` into the stack connection's send buffer, as far as it fits.
    fn flush(&mut self, stack: &mut Stack) {
        if let Io::Stack(h) = self.io {
            if !self.out.is_empty() {
                if let Ok(n) = stack.tcp_send(h, &self.out) {
                    self.out.drain(..n);
                }
            }
        }
    }
}

struct PeerSlot {
    cfg: BgpConfig,
    peer: Peer,
    iface: Option<IfIndex>,
    /// Kept down by `import_limit_action = "disable"`.
    disabled: bool,
    /// Negotiated when Established, for `show bgp`.
    established: Option<rr_bgp::session::Negotiated>,
    /// "UPDATE treated as withdraw" lines: a broken or hostile peer sends them by the
    /// thousand.
    taw_log: LogLimit,
    /// Removed by a reload: stopped, kept only so that the positions (PeerIds) of the
    /// others stay.
    removed: bool,
    /// The host listener of a passive host session: its address and its thread's stop flag.
    accept: Option<(SocketAddr, Arc<AtomicBool>)>,
}

pub(crate) struct Bgp {
    shared: Arc<Shared>,
    rib: Rib,
    peers: Vec<PeerSlot>,
    conns: Vec<Conn>,
    listener: Option<TcpHandle>,
    next_conn: ConnId,
    fib_pending: Vec<rr_fib::Change>,
    /// To the FIB writer thread.
    fib_tx: mpsc::SyncSender<Vec<rr_fib::Change>>,
    /// Earliest time of the next hand-over to the FIB writer.
    next_publish: Instant,
    buf: Vec<u8>,
    /// The `[roa]` sources, when configured.
    roa: Option<RoaFeed>,
    /// What ROA validation rejects (`[roa] invalid`, `unknown`), for `show roa`.
    roa_rules: Option<RoaRules>,
    /// The rules of a `[roa]` a reload added, waiting for its first ROA set.
    pending_roa_rules: Option<Option<RoaRules>>,
    /// "connection from an unknown neighbor" lines: anyone reaching our port 179 can
    /// make them.
    stranger_log: LogLimit,
}

fn bgp_family(f: Family) -> BgpFamily {
    match f {
        Family::Ipv4 => BgpFamily::Ipv4Unicast,
        Family::Ipv6 => BgpFamily::Ipv6Unicast,
    }
}

fn family_name(f: BgpFamily) -> &'static str {
    match f {
        BgpFamily::Ipv4Unicast => "ipv4",
        BgpFamily::Ipv6Unicast => "ipv6",
    }
}

fn policy(p: rr_config::Policy) -> rr_rib::Policy {
    match p {
        rr_config::Policy::Dn42 => rr_rib::Policy::Dn42,
        rr_config::Policy::All => rr_rib::Policy::All,
        rr_config::Policy::None => rr_rib::Policy::None,
    }
}

fn limit_action(a: rr_config::LimitAction) -> rr_rib::LimitAction {
    match a {
        rr_config::LimitAction::Warn => rr_rib::LimitAction::Warn,
        rr_config::LimitAction::Block => rr_rib::LimitAction::Block,
        rr_config::LimitAction::Restart => rr_rib::LimitAction::Restart,
        rr_config::LimitAction::Disable => rr_rib::LimitAction::Disable,
    }
}

impl PeerSlot {
    fn new(cfg: &BgpConfig, peer: Peer, iface: Option<IfIndex>) -> PeerSlot {
        PeerSlot {
            cfg: cfg.clone(),
            peer,
            iface,
            disabled: false,
            established: None,
            taw_log: LogLimit::new(5, Duration::from_secs(60)),
            removed: false,
            accept: None,
        }
    }
}

/// The communities on our own prefixes: DN42 region and country.
fn announce_communities(config: &Config) -> Vec<u32> {
    [config.router.region, config.router.country]
        .into_iter()
        .flatten()
        .map(rr_policy::dn42::community)
        .collect()
}

/// The `[roa]` sources of `cfg`, reporting to the control thread.
fn new_roa_feed(shared: &Arc<Shared>, cfg: &rr_config::RoaConfig, now: Instant) -> RoaFeed {
    let s = shared.clone();
    let notify: crate::roa_io::Notify =
        Arc::new(move |m| s.control.send(ControlMsg::Host(HostMsg::Rtr(m))).is_ok());
    RoaFeed::new(cfg, notify, now)
}

/// The running session named `name`.
fn slot_of(peers: &[PeerSlot], name: &str) -> Option<usize> {
    peers.iter().position(|p| !p.removed && p.cfg.name == name)
}

/// What [`Bgp::prepare_reload`] had to acquire: host listeners of new or moved
/// passive sessions, by session name.
pub(crate) struct PreparedReload {
    listeners: Vec<(String, SocketAddr, TcpListener)>,
}

/// What session `b` of `config` is: its state machine's settings, the route table's
/// view of it, and its tunnel.
fn session_of(
    config: &Config,
    b: &BgpConfig,
    shared: &Shared,
) -> (SessionConfig, PeerConfig, Option<IfIndex>) {
    let asn = config.router.asn.unwrap_or(0);
    let router_id = config.router.router_id.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let tunnel = b
        .interface
        .as_deref()
        .and_then(|name| config.interface(name));
    // The running tunnel's index (positions in the file change with reloads).
    let iface = tunnel.and_then(|(_, t)| shared.iface_by_name(&t.name));
    let link = tunnel
        .map(|(_, t)| t.link)
        .filter(|l| *l != rr_policy::dn42::Link::default());
    let named = |names: &[Option<String>; 2]| {
        names
            .clone()
            .map(|n| n.and_then(|n| config.policy(&n).cloned()))
    };
    let session = SessionConfig {
        local_asn: asn,
        router_id,
        remote_asn: b.remote_asn,
        families: b.families.iter().copied().map(bgp_family).collect(),
        extended_next_hop: b.extended_next_hop.unwrap_or(b.neighbor.is_ipv6()),
        hold_time: b.hold_time.unwrap_or(DEFAULT_HOLD_TIME),
        keepalive: b.keepalive,
        connect_retry: b.connect_retry.unwrap_or(DEFAULT_CONNECT_RETRY),
        passive: b.passive,
    };
    let peer = PeerConfig {
        name: b.name.clone(),
        remote_asn: b.remote_asn,
        iface,
        import: policy(b.import),
        export: policy(b.export),
        import_limit: b.import_limit,
        limit_action: limit_action(b.import_limit_action),
        import_policy: named(&b.import_policy),
        export_policy: named(&b.export_policy),
        link,
    };
    (session, peer, iface)
}

/// The host address a passive host session listens on (`None` for the others).
fn host_listen_addr(b: &BgpConfig) -> Option<SocketAddr> {
    if b.transport != Transport::Host || !b.passive {
        return None;
    }
    let port = b.local_port.unwrap_or(179);
    let ip: IpAddr = match (b.neighbor.is_loopback(), b.neighbor) {
        (true, IpAddr::V4(_)) => Ipv4Addr::LOCALHOST.into(),
        (true, IpAddr::V6(_)) => Ipv6Addr::LOCALHOST.into(),
        (false, IpAddr::V4(_)) => Ipv4Addr::UNSPECIFIED.into(),
        (false, IpAddr::V6(_)) => Ipv6Addr::UNSPECIFIED.into(),
    };
    Some(SocketAddr::new(ip, port))
}

fn bind_host_listener(
    b: &BgpConfig,
    addr: SocketAddr,
) -> Result<TcpListener, crate::shared::NodeError> {
    TcpListener::bind(addr).map_err(|e| crate::shared::NodeError::BgpListen {
        what: format!("BGP session {:?} (local_port {})", b.name, addr.port()),
        source: e,
    })
}

fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

impl Bgp {
    /// The sessions of `config`, the route table with the node's static routes, and the
    /// listeners: TCP 179 on the node's stack (when a session runs over a tunnel) and a
    /// host port per passive host session (each with its accept thread).
    pub fn new(
        shared: Arc<Shared>,
        config: &Config,
        stack: &mut Stack,
        now: Instant,
    ) -> Result<Bgp, crate::shared::NodeError> {
        let asn = config.router.asn.unwrap_or(0);
        let router_id = config.router.router_id.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let announce_communities = announce_communities(config);
        let roa_rules = config.roa.as_ref().map(|r| RoaRules {
            reject_invalid: r.reject_invalid,
            reject_unknown: r.reject_unknown,
        });
        let mut rib = Rib::new(RibConfig {
            local_asn: asn,
            router_id,
            announce: config.router.announce.clone(),
            announce_communities,
            roa: roa_rules,
        });
        let statics: Vec<(IpNet, NextHop)> = shared.fib.routes();
        rib.set_static(statics);
        let mut peers = Vec::new();
        for (n, b) in config.bgp.iter().enumerate() {
            let (session, peer_cfg, iface) = session_of(config, b, &shared);
            rib.add_peer(n as PeerId, peer_cfg);
            peers.push(PeerSlot::new(b, Peer::new(session, now), iface));
        }
        let listener = if config.bgp.iter().any(|b| b.transport == Transport::Tunnel) {
            let any = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 179));
            Some(
                stack
                    .tcp_listen(any, None)
                    .map_err(crate::shared::NodeError::Stack)?,
            )
        } else {
            None
        };
        for (n, b) in config.bgp.iter().enumerate() {
            if let Some(addr) = host_listen_addr(b) {
                let l = bind_host_listener(b, addr)?;
                peers[n].accept = Some((addr, spawn_accept(shared.clone(), n, l)));
            }
        }
        if config.roa.is_none() {
            // RFC 6811 validation needs ROAs; iBGP routes are not validated anyway.
            let unchecked: Vec<&str> = config
                .bgp
                .iter()
                .filter(|b| {
                    b.import == rr_config::Policy::Dn42 && Some(b.remote_asn) != config.router.asn
                })
                .map(|b| b.name.as_str())
                .collect();
            if !unchecked.is_empty() {
                tracing::warn!(
                    sessions = %unchecked.join(", "),
                    "no [roa] section: sessions with import = \"dn42\" do no ROA origin validation (RFC 6811); \
                     invalid and unknown routes are accepted (the DN42 wiki's filter drops them)"
                );
            }
        }
        let fib_tx = spawn_fib_writer(&shared)?;
        let roa = config
            .roa
            .as_ref()
            .map(|cfg| new_roa_feed(&shared, cfg, now));
        let mut bgp = Bgp {
            fib_tx,
            shared,
            rib,
            peers,
            conns: Vec::new(),
            listener,
            next_conn: 1,
            fib_pending: Vec::new(),
            next_publish: now,
            buf: vec![0u8; READ_CHUNK],
            roa,
            roa_rules,
            pending_roa_rules: None,
            stranger_log: LogLimit::new(5, Duration::from_secs(60)),
        };
        // The files' ROAs are in place before any route arrives.
        bgp.apply_roas(now);
        Ok(bgp)
    }

    /// Hands the `[roa]` sources' set to the route table when it changed (at most every
    /// [`crate::roa_io::PUBLISH_EVERY`]); the table validates its routes again.
    fn apply_roas(&mut self, now: Instant) {
        let Some(set) = self.roa.as_mut().and_then(|f| f.poll_publish(now)) else {
            return;
        };
        let roas = set.len();
        let started = Instant::now();
        let c = self.rib.set_roas(set);
        tracing::info!(
            roas,
            added = c.roas_added,
            removed = c.roas_removed,
            routes_checked = c.routes_checked,
            validity_changed = c.validity_changed,
            verdict_changed = c.verdict_changed,
            took = ?started.elapsed(),
            "ROA set applied"
        );
        if let Some(rules) = self.pending_roa_rules.take() {
            self.set_roa_rules(now, rules);
        }
    }

    /// The earliest time `drive` must run again.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self
            .peers
            .iter()
            .filter_map(|p| p.peer.poll_timeout())
            .min();
        if !self.fib_pending.is_empty() {
            let due = self.next_publish;
            t = Some(t.map_or(due, |x| x.min(due)));
        }
        if let Some(due) = self.roa.as_ref().and_then(RoaFeed::poll_timeout) {
            t = Some(t.map_or(due, |x| x.min(due)));
        }
        t
    }

    /// One pass: stack connections read and written, new connections accepted, timers,
    /// events to the route table, exports to the sessions, the FIB published.
    pub fn drive(&mut self, now: Instant, stack: &mut Stack) {
        self.accept(now, stack);
        self.stack_io(now, stack);
        for p in &mut self.peers {
            p.peer.handle_timeout(now);
        }
        if let Some(f) = &mut self.roa {
            f.drive(now);
        }
        self.apply_roas(now);
        self.process(now, stack);
    }

    /// A message from a host-socket thread.
    pub fn host_msg(&mut self, now: Instant, msg: HostMsg, stack: &mut Stack) {
        match msg {
            HostMsg::Connected(id, result) => {
                let Some(i) = self.conns.iter().position(|c| c.id == id) else {
                    return;
                };
                let peer = self.conns[i].peer;
                match result.and_then(|stream| host_io(&self.shared, id, stream)) {
                    Ok(io) => {
                        self.conns[i].io = io;
                        self.conns[i].opened = true;
                        let slot = &mut self.peers[peer];
                        if !slot.peer.connection_opened(now, id, Direction::Outgoing) {
                            self.close_conn(i, stack);
                        }
                    }
                    Err(e) => {
                        self.conns.remove(i);
                        self.peers[peer]
                            .peer
                            .connection_failed(now, id, &e.to_string());
                    }
                }
            }
            HostMsg::Accepted(peer, stream) => {
                let id = self.next_id();
                match host_io(&self.shared, id, stream) {
                    Ok(io) => self.adopt_incoming(now, Conn::new(id, peer, io, true), stack),
                    Err(e) => tracing::warn!(error = %e, "cannot use an accepted BGP connection"),
                }
            }
            HostMsg::Data(id, bytes) => {
                if let Some(c) = self.conns.iter().find(|c| c.id == id) {
                    if let Io::Host { unread, .. } = &c.io {
                        unread.fetch_sub(bytes.len(), Ordering::Relaxed);
                    }
                    let peer = c.peer;
                    self.peers[peer].peer.handle_bytes(now, id, &bytes);
                }
            }
            HostMsg::Closed(id) => {
                if let Some(i) = self.conns.iter().position(|c| c.id == id) {
                    let c = self.conns.remove(i);
                    if let Io::Host { stream, .. } = &c.io {
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                    self.peers[c.peer].peer.connection_closed(now, id);
                }
            }
            HostMsg::Rtr(m) => {
                if let Some(f) = &mut self.roa {
                    f.rtr_msg(now, m);
                }
                self.apply_roas(now);
            }
        }
        self.process(now, stack);
    }

    fn next_id(&mut self) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        id
    }

    /// Incoming connections on the stack's port 179, matched to a session by the
    /// neighbor's address (and tunnel, for link-local neighbors).
    fn accept(&mut self, now: Instant, stack: &mut Stack) {
        let Some(l) = self.listener else { return };
        while let Some(h) = stack.tcp_accept(l) {
            let from = stack.tcp_peer(h);
            let found = from.and_then(|(addr, scope)| {
                self.peers.iter().position(|p| {
                    !p.removed
                        && p.cfg.transport == Transport::Tunnel
                        && p.cfg.neighbor == addr.ip()
                        && (!is_link_local(addr.ip()) || scope == p.iface)
                })
            });
            let Some(peer) = found else {
                if let Some(suppressed) = self.stranger_log.allow(now) {
                    tracing::info!(from = ?from, suppressed, "BGP connection from an unknown neighbor refused");
                }
                stack.tcp_abort(h);
                stack.tcp_release(h);
                continue;
            };
            let id = self.next_id();
            let _ = stack.tcp_set_nodelay(h, true);
            self.adopt_incoming(now, Conn::new(id, peer, Io::Stack(h), true), stack);
        }
    }

    /// Hands an incoming connection to its session; closes it if the session refuses
    /// it (or is disabled by its import limit).
    fn adopt_incoming(&mut self, now: Instant, conn: Conn, stack: &mut Stack) {
        let (id, peer) = (conn.id, conn.peer);
        self.conns.push(conn);
        let slot = &mut self.peers[peer];
        let ok = !slot.disabled && slot.peer.connection_opened(now, id, Direction::Incoming);
        if !ok {
            let i = self.conns.len() - 1;
            self.close_conn(i, stack);
        }
    }

    /// Reads, writes and state changes of the stack connections.
    fn stack_io(&mut self, now: Instant, stack: &mut Stack) {
        let mut i = 0;
        while i < self.conns.len() {
            let Io::Stack(h) = self.conns[i].io else {
                i += 1;
                continue;
            };
            let id = self.conns[i].id;
            let peer = self.conns[i].peer;
            let state = stack.tcp_state(h);
            if !self.conns[i].opened {
                match state {
                    TcpState::Connecting => {
                        i += 1;
                        continue;
                    }
                    TcpState::Established | TcpState::Closing => {
                        self.conns[i].opened = true;
                        let _ = stack.tcp_set_nodelay(h, true);
                        if !self.peers[peer]
                            .peer
                            .connection_opened(now, id, Direction::Outgoing)
                        {
                            self.close_conn(i, stack);
                            continue;
                        }
                    }
                    _ => {
                        stack.tcp_release(h);
                        self.conns.remove(i);
                        self.peers[peer].peer.connection_failed(
                            now,
                            id,
                            "connection refused or timed out",
                        );
                        continue;
                    }
                }
            }
            // Read what there is.
            let mut ended = false;
            loop {
                match stack.tcp_recv(h, &mut self.buf) {
                    Ok(0) => break,
                    Ok(n) => self.peers[peer].peer.handle_bytes(now, id, &self.buf[..n]),
                    Err(_) => {
                        ended = true;
                        break;
                    }
                }
            }
            if !ended {
                ended = matches!(stack.tcp_state(h), TcpState::Closed | TcpState::Closing);
            }
            // Write what waits.
            let c = &mut self.conns[i];
            c.flush(stack);
            if c.closing && c.out.is_empty() {
                stack.tcp_close(h);
                stack.tcp_release(h);
                self.conns.remove(i);
                continue;
            }
            if ended {
                stack.tcp_close(h);
                stack.tcp_release(h);
                self.conns.remove(i);
                self.peers[peer].peer.connection_closed(now, id);
                continue;
            }
            i += 1;
        }
    }

    /// Closes connection `i` now (what the session queued for it is sent first).
    fn close_conn(&mut self, i: usize, stack: &mut Stack) {
        let c = &mut self.conns[i];
        c.flush(stack);
        match &c.io {
            Io::Stack(h) => {
                let h = *h;
                stack.tcp_close(h);
                stack.tcp_release(h);
            }
            Io::Host { tx, stream, .. } => {
                // An empty buffer tells the writer thread to shut the socket down
                // after what it already has.
                if tx.send(Vec::new()).is_err() {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
            Io::HostPending => {}
        }
        self.conns.remove(i);
    }

    /// Drains the sessions (bytes, actions, events), runs the route table, exports.
    fn process(&mut self, now: Instant, stack: &mut Stack) {
        loop {
            let mut busy = false;
            for n in 0..self.peers.len() {
                busy |= self.drain_peer(n, now, stack);
            }
            // Exports to established sessions.
            if self.rib.has_exports() {
                for n in 0..self.peers.len() {
                    if self.peers[n].peer.state() == State::Established {
                        for u in self.rib.take_exports(n as PeerId) {
                            self.peers[n].peer.send_update(&u);
                            busy = true;
                        }
                    }
                }
            }
            if !busy {
                break;
            }
        }
        // Write what the sessions produced.
        for c in &mut self.conns {
            c.flush(stack);
        }
        self.fib_pending.extend(self.rib.take_fib_changes());
        let due = now >= self.next_publish || self.fib_pending.len() >= FIB_HAND_OVER_AT;
        if !self.fib_pending.is_empty() && due {
            // Blocks only when the writer is FIB_QUEUE batches behind: then the route
            // table waits for the forwarding table rather than queueing without end.
            let batch = std::mem::take(&mut self.fib_pending);
            if self.fib_tx.send(batch).is_err() {
                tracing::error!("the FIB writer is gone; routes are no longer installed");
            }
            self.next_publish = now + FIB_HAND_OVER_EVERY;
        }
    }

    /// Everything session `n` has to say; true if it said anything.
    fn drain_peer(&mut self, n: usize, now: Instant, stack: &mut Stack) -> bool {
        let mut busy = false;
        while let Some((id, bytes)) = self.peers[n].peer.poll_transmit() {
            busy = true;
            let Some(c) = self.conns.iter_mut().find(|c| c.id == id) else {
                continue;
            };
            match &c.io {
                Io::Host { tx, .. } => {
                    let _ = tx.send(bytes);
                }
                Io::Stack(_) => c.out.extend_from_slice(&bytes),
                Io::HostPending => {}
            }
        }
        while let Some(a) = self.peers[n].peer.poll_action() {
            busy = true;
            match a {
                Action::Connect => self.connect(n, now, stack),
                Action::Close(id) => {
                    if let Some(i) = self.conns.iter().position(|c| c.id == id) {
                        if matches!(self.conns[i].io, Io::Stack(_)) && !self.conns[i].out.is_empty()
                        {
                            self.conns[i].closing = true;
                        } else {
                            self.close_conn(i, stack);
                        }
                    }
                }
            }
        }
        while let Some(e) = self.peers[n].peer.poll_event() {
            busy = true;
            self.event(n, now, e);
        }
        busy
    }

    fn event(&mut self, n: usize, now: Instant, e: Event) {
        let id = n as PeerId;
        match e {
            Event::Established(neg) => {
                tracing::info!(session = %self.peers[n].cfg.name, "BGP session established");
                let up = self.peer_up(n, &neg);
                self.peers[n].established = Some(neg);
                self.rib.peer_up(id, up);
            }
            Event::Update(u) => {
                if let Some(why) = &u.treat_as_withdraw {
                    let p = &mut self.peers[n];
                    if let Some(suppressed) = p.taw_log.allow(now) {
                        tracing::warn!(session = %p.cfg.name, %why, suppressed, "UPDATE treated as withdraw (RFC 7606)");
                    }
                }
                let outcome = self.rib.import(id, &u);
                self.limit_outcome(n, now, outcome);
            }
            Event::RouteRefresh(f) => self.rib.refresh(id, f),
            Event::Down { reason } => {
                tracing::info!(session = %self.peers[n].cfg.name, %reason, "BGP session down");
                self.peers[n].established = None;
                self.rib.peer_down(id);
            }
            Event::StateChanged(s) => {
                tracing::debug!(session = %self.peers[n].cfg.name, state = s.as_str(), "BGP state");
                if s != State::Established {
                    self.peers[n].established = None;
                }
            }
        }
    }

    /// What session `n` does when its import limit was reached.
    fn limit_outcome(&mut self, n: usize, now: Instant, outcome: rr_rib::ImportOutcome) {
        let rr_rib::ImportOutcome::LimitReached { family, action } = outcome else {
            return;
        };
        let name = self.peers[n].cfg.name.clone();
        let fam = family_name(family);
        match action {
            rr_rib::LimitAction::Restart => {
                tracing::warn!(session = %name, family = fam, "import limit reached: restarting the session");
                self.peers[n].peer.stop(now, "import limit reached");
                self.peers[n].peer.start(now);
            }
            rr_rib::LimitAction::Disable => {
                tracing::warn!(session = %name, family = fam, "import limit reached: session disabled");
                self.peers[n].disabled = true;
                self.peers[n].peer.stop(now, "import limit reached");
            }
            rr_rib::LimitAction::Warn | rr_rib::LimitAction::Block => {
                tracing::warn!(session = %name, family = fam, "import limit reached");
            }
        }
    }

    /// The part of a reload that can fail, done before anything changes: the new host
    /// listeners, and the stack's BGP listener if tunnel sessions appear.
    pub fn prepare_reload(
        &mut self,
        new: &Config,
        diff: &rr_config::ConfigDiff,
        stack: &mut Stack,
    ) -> Result<PreparedReload, String> {
        let mut listeners = Vec::new();
        for change in &diff.sessions {
            let Some(b) = new.bgp.iter().find(|b| b.name == change.name) else {
                continue;
            };
            let Some(addr) = host_listen_addr(b) else {
                continue;
            };
            let held = slot_of(&self.peers, &b.name)
                .and_then(|n| self.peers[n].accept.as_ref())
                .is_some_and(|(a, _)| *a == addr);
            if !held {
                let l = bind_host_listener(b, addr).map_err(|e| e.to_string())?;
                listeners.push((b.name.clone(), addr, l));
            }
        }
        if self.listener.is_none() && new.bgp.iter().any(|b| b.transport == Transport::Tunnel) {
            let any = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 179));
            self.listener = Some(stack.tcp_listen(any, None).map_err(|e| e.to_string())?);
        }
        Ok(PreparedReload { listeners })
    }

    /// A reload's `[roa]` (`new`; `None`: the section is gone): the sources follow
    /// ([`RoaFeed::reconfigure`]: what stays keeps its ROAs, so no route goes unknown
    /// while a kept RTR server reconnects), and when what validation rejects changed,
    /// every route runs through the import again. A section added by a reload has no
    /// ROAs yet: its rules wait for its first set (else every route would be unknown,
    /// and rejected, until an RTR cache answers). No session is touched.
    pub fn reload_roa(&mut self, now: Instant, new: Option<&rr_config::RoaConfig>) {
        let rules = new.map(|r| RoaRules {
            reject_invalid: r.reject_invalid,
            reject_unknown: r.reject_unknown,
        });
        match (self.roa.as_mut(), new) {
            (Some(feed), Some(cfg)) => {
                feed.reconfigure(cfg, now);
                self.set_roa_rules(now, rules);
            }
            (None, Some(cfg)) => {
                self.roa = Some(new_roa_feed(&self.shared, cfg, now));
                self.pending_roa_rules = Some(rules);
            }
            (Some(feed), None) => {
                feed.shutdown();
                self.roa = None;
                self.pending_roa_rules = None;
                self.set_roa_rules(now, None);
                let c = self.rib.set_roas(rr_roa::RoaSet::default());
                tracing::info!(
                    routes_checked = c.routes_checked,
                    verdict_changed = c.verdict_changed,
                    "[roa] removed: no ROAs any more"
                );
            }
            (None, None) => {}
        }
        self.apply_roas(now);
    }

    /// What validation rejects from now on; every route through the import again when
    /// it changed.
    fn set_roa_rules(&mut self, now: Instant, rules: Option<RoaRules>) {
        if rules == self.roa_rules {
            return;
        }
        self.roa_rules = rules;
        for (id, outcome) in self.rib.set_roa_rules(rules) {
            self.limit_outcome(id as usize, now, outcome);
        }
        tracing::info!(?rules, "ROA rules changed, every route evaluated again");
    }

    /// A reload's `[router] announce`, `region` and `country`: our prefixes are
    /// announced, withdrawn or sent again with the new communities; peers' routes
    /// under prefixes that became (or stopped being) ours are evaluated again.
    pub fn reload_announce(&mut self, now: Instant, new: &Config) {
        let outcomes = self
            .rib
            .set_announce(new.router.announce.clone(), announce_communities(new));
        for (id, outcome) in outcomes {
            self.limit_outcome(id as usize, now, outcome);
        }
        tracing::info!(announce = ?new.router.announce, region = ?new.router.region, country = ?new.router.country, "reload: our prefixes and their communities replaced");
    }

    /// The first step of applying a reload: sessions to restart or remove say Cease
    /// (while their tunnels still exist: the caller sends the packets before it
    /// changes the tunnels).
    pub fn stop_for_reload(
        &mut self,
        now: Instant,
        diff: &rr_config::ConfigDiff,
        stack: &mut Stack,
    ) {
        use rr_config::SessionAction;
        for change in &diff.sessions {
            let Some(n) = slot_of(&self.peers, &change.name) else {
                continue;
            };
            match change.action {
                SessionAction::Restart => {
                    tracing::info!(session = %change.name, changed = %change.changed.join(", "), "reload: restarting the BGP session");
                    self.peers[n].peer.stop_for(
                        now,
                        StopCause::ConfigurationChange,
                        "configuration changed",
                    );
                }
                SessionAction::Removed => {
                    tracing::info!(session = %change.name, "reload: BGP session removed");
                    self.peers[n].peer.stop_for(
                        now,
                        StopCause::PeerDeconfigured,
                        "session removed from the configuration",
                    );
                }
                _ => {}
            }
        }
        self.process(now, stack);
    }

    /// Applies a reload's session and static route changes (`new` is the whole new
    /// config, `diff` what changed from the running one; the sessions to restart or
    /// remove have said Cease ([`Bgp::stop_for_reload`]) and the tunnels are the new
    /// ones). Unchanged sessions are not touched; a session disabled by its import
    /// limit starts again.
    pub fn apply_reload(
        &mut self,
        now: Instant,
        new: &Config,
        diff: &rr_config::ConfigDiff,
        stack: &mut Stack,
        prepared: PreparedReload,
    ) {
        use rr_config::SessionAction;
        let PreparedReload { listeners } = prepared;
        for change in &diff.sessions {
            let b = new.bgp.iter().find(|b| b.name == change.name);
            let found = slot_of(&self.peers, &change.name);
            match (change.action, found, b) {
                (SessionAction::Removed, Some(n), _) => {
                    self.rib.remove_peer(n as PeerId);
                    let slot = &mut self.peers[n];
                    slot.removed = true;
                    slot.established = None;
                    if let Some((_, stop)) = slot.accept.take() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                (SessionAction::Restart, Some(n), Some(b)) => {
                    let (session, peer_cfg, iface) = session_of(new, b, &self.shared);
                    self.rib.remove_peer(n as PeerId);
                    self.rib.add_peer(n as PeerId, peer_cfg);
                    let accept = self.peers[n].accept.take();
                    let mut slot = PeerSlot::new(b, Peer::new(session, now), iface);
                    match accept {
                        Some((addr, stop)) if Some(addr) == host_listen_addr(b) => {
                            slot.accept = Some((addr, stop));
                        }
                        Some((_, stop)) => stop.store(true, Ordering::Relaxed),
                        None => {}
                    }
                    self.peers[n] = slot;
                }
                (SessionAction::Reevaluate, Some(n), Some(b)) => {
                    tracing::info!(session = %change.name, changed = %change.changed.join(", "), "reload: re-evaluating the BGP session's routes");
                    let (_, peer_cfg, _) = session_of(new, b, &self.shared);
                    self.peers[n].cfg = b.clone();
                    let outcome = self.rib.reevaluate_peer(n as PeerId, peer_cfg);
                    self.limit_outcome(n, now, outcome);
                }
                (SessionAction::Added, None, Some(b)) => {
                    tracing::info!(session = %change.name, "reload: BGP session added");
                    let (session, peer_cfg, iface) = session_of(new, b, &self.shared);
                    let n = self.peers.len();
                    self.rib.add_peer(n as PeerId, peer_cfg);
                    self.peers
                        .push(PeerSlot::new(b, Peer::new(session, now), iface));
                }
                _ => {}
            }
            if let Some(n) = slot_of(&self.peers, &change.name) {
                if self.peers[n].disabled {
                    tracing::info!(session = %change.name, "reload: session disabled by its import limit starts again");
                    self.peers[n].disabled = false;
                    self.peers[n].peer.start(now);
                }
            }
        }
        for (name, addr, l) in listeners {
            if let Some(n) = slot_of(&self.peers, &name) {
                self.peers[n].accept = Some((addr, spawn_accept(self.shared.clone(), n, l)));
            }
        }
        if diff.routes_changed {
            let routes = crate::shared::configured_routes(new, |n| self.shared.iface_by_name(n));
            *self
                .shared
                .route_sources
                .write()
                .unwrap_or_else(|e| e.into_inner()) =
                routes.iter().map(|(net, _, src)| (*net, *src)).collect();
            let statics = routes.into_iter().map(|(net, nh, _)| (net, nh)).collect();
            self.rib.set_static(statics);
        }
        self.process(now, stack);
    }

    /// Our next hops toward session `n`: on a tunnel, our addresses on it (its
    /// link-local; a global one only when the neighbor is global, since a link-local
    /// neighbor like BIRD refuses a global next hop it cannot reach directly); else the
    /// router's own addresses.
    fn peer_up(&self, n: usize, neg: &rr_bgp::session::Negotiated) -> PeerUp {
        let slot = &self.peers[n];
        let local = self.shared.local.load();
        let iface = slot.iface.and_then(|i| local.ifaces.get(i as usize));
        let v4_of = |addrs: &[IpAddr]| {
            addrs.iter().find_map(|a| match a {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            })
        };
        let v6_of = |addrs: &[IpAddr]| {
            addrs.iter().find_map(|a| match a {
                IpAddr::V6(v6) if !v6.is_unicast_link_local() => Some(*v6),
                _ => None,
            })
        };
        let next_hop_v4 = iface
            .and_then(|i| v4_of(&i.addrs))
            .or_else(|| v4_of(&local.router_addrs));
        let next_hop_ll = iface.and_then(|i| i.link_local.first().copied());
        let next_hop_v6 = if is_link_local(slot.cfg.neighbor) {
            None
        } else {
            iface
                .and_then(|i| v6_of(&i.addrs))
                .or_else(|| v6_of(&local.router_addrs))
        };
        PeerUp {
            families: neg.families.clone(),
            extended_next_hop: neg.extended_next_hop,
            next_hop_v4,
            next_hop_v6,
            next_hop_ll,
        }
    }

    fn connect(&mut self, n: usize, now: Instant, stack: &mut Stack) {
        // An attempt the session gave up on (its connect timeout) must not linger:
        // smoltcp would retry its SYN for minutes.
        let mut i = 0;
        while i < self.conns.len() {
            let c = &self.conns[i];
            if c.peer == n && !c.opened {
                if let Io::Stack(h) = c.io {
                    stack.tcp_abort(h);
                    stack.tcp_release(h);
                    self.conns.remove(i);
                    continue;
                }
            }
            i += 1;
        }
        let id = self.next_id();
        let slot = &mut self.peers[n];
        if slot.disabled {
            slot.peer
                .connection_failed(now, id, "disabled by the import limit");
            return;
        }
        let remote = SocketAddr::new(slot.cfg.neighbor, slot.cfg.port);
        match slot.cfg.transport {
            Transport::Tunnel => match stack.tcp_connect(now, remote, slot.iface, None) {
                Ok(h) => self.conns.push(Conn::new(id, n, Io::Stack(h), false)),
                Err(e) => slot.peer.connection_failed(now, id, &connect_error(&e)),
            },
            Transport::Host => {
                self.conns.push(Conn::new(id, n, Io::HostPending, false));
                let shared = self.shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("bgp-connect".into())
                    .spawn(move || {
                        let r = TcpStream::connect_timeout(&remote, HOST_CONNECT_TIMEOUT);
                        let _ = shared
                            .control
                            .send(ControlMsg::Host(HostMsg::Connected(id, r)));
                    });
                if let Err(e) = spawned {
                    self.conns.pop();
                    self.peers[n]
                        .peer
                        .connection_failed(now, id, &e.to_string());
                }
            }
        }
    }

    /// `ctl show bgp [NAME]`.
    pub fn status(&self, now: Instant, name: Option<&str>) -> rr_ctl::Response {
        if let Some(name) = name {
            if !self.peers.iter().any(|p| !p.removed && p.cfg.name == name) {
                return rr_ctl::Response::Error {
                    message: format!("no BGP session named \"{name}\""),
                };
            }
        }
        let sessions = self
            .peers
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.removed && name.is_none_or(|name| p.cfg.name == name))
            .map(|(n, p)| {
                let st = self.rib.stats(n as PeerId);
                let neighbor = match (&p.cfg.transport, &p.cfg.interface) {
                    (Transport::Host, _) => SocketAddr::new(p.cfg.neighbor, p.cfg.port).to_string(),
                    (_, Some(i)) if is_link_local(p.cfg.neighbor) => {
                        format!("{}%{i}", p.cfg.neighbor)
                    }
                    _ => p.cfg.neighbor.to_string(),
                };
                let neg = p.established.as_ref();
                rr_ctl::BgpSessionStatus {
                    name: p.cfg.name.clone(),
                    neighbor,
                    interface: p.cfg.interface.clone(),
                    transport: match p.cfg.transport {
                        Transport::Tunnel => "tunnel".into(),
                        Transport::Host => "host".into(),
                    },
                    remote_asn: p.cfg.remote_asn,
                    state: if p.disabled {
                        "Disabled".into()
                    } else {
                        p.peer.state().as_str().into()
                    },
                    since_secs: now.saturating_duration_since(p.peer.since()).as_secs(),
                    last_error: p.peer.last_error().map(str::to_string),
                    remote_router_id: neg.map(|n| n.remote_router_id.to_string()),
                    families: neg.map_or_else(Vec::new, |n| {
                        n.families
                            .iter()
                            .map(|f| family_name(*f).to_string())
                            .collect()
                    }),
                    extended_next_hop: neg.is_some_and(|n| n.extended_next_hop),
                    hold_time: neg.map(|n| n.hold_time),
                    keepalive: neg.map(|n| n.keepalive),
                    imported: st.imported,
                    imported_v4: st.imported_v4,
                    imported_v6: st.imported_v6,
                    filtered: st.filtered,
                    filtered_by: FilterReason::ALL
                        .iter()
                        .map(|r| {
                            let n = st.filtered_by.get(r.index()).copied().unwrap_or(0);
                            (r.as_str().to_string(), n)
                        })
                        .collect(),
                    exported: st.exported,
                    import_limit: p.cfg.import_limit,
                }
            })
            .collect();
        let fib = self.shared.fib.load();
        let st = fib.stats();
        let (fib_v4, fib_v6) = (st.v4.routes, st.v6.routes);
        rr_ctl::Response::Bgp {
            sessions,
            fib_v4: fib_v4 as u64,
            fib_v6: fib_v6 as u64,
        }
    }

    /// `ctl show routes [for ADDR] [all | filtered]`.
    pub fn routes(
        &self,
        for_addr: Option<IpAddr>,
        prefix: Option<IpNet>,
        all: bool,
        filtered: bool,
    ) -> rr_ctl::Response {
        let views = self.rib.routes(RouteFilter {
            filtered,
            for_addr,
            all: all || filtered,
            prefix,
        });
        let routes = views.into_iter().map(|v| self.route_entry(v)).collect();
        rr_ctl::Response::Routes { routes }
    }

    fn route_entry(&self, v: RouteView) -> rr_ctl::RouteEntry {
        let peer = v
            .peer
            .and_then(|p| self.peers.get(p as usize))
            .map(|p| p.cfg.name.clone());
        let mut source = if peer.is_some() {
            "bgp".to_string()
        } else {
            v.source.clone()
        };
        if source == "static"
            && self
                .shared
                .route_sources
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&v.prefix)
                == Some(&RouteSource::Connected)
        {
            source = "connected".into();
        }
        let bgp = peer.is_some() || source == "announce";
        rr_ctl::RouteEntry {
            prefix: v.prefix.to_string(),
            interface: v
                .iface
                .map(|i| self.shared.iface_name(i))
                .unwrap_or_default(),
            gateway: v.gateway.map(|g| g.to_string()),
            source,
            peer,
            best: v.best,
            filtered: v.filtered,
            reason: v.reason.map(|r| r.as_str().to_string()),
            roa: v.roa.map(|r| {
                match r {
                    Validity::Valid => "valid",
                    Validity::Invalid => "invalid",
                    Validity::NotFound => "unknown",
                }
                .to_string()
            }),
            as_path: bgp.then(|| v.as_path.clone()),
            origin: bgp.then(|| v.origin.to_string()),
            med: v.med,
            local_pref: bgp.then_some(v.local_pref),
            communities: v.communities,
            large_communities: v.large_communities,
        }
    }

    /// `ctl show roa`.
    pub fn roa_status(&self, now: Instant) -> rr_ctl::Response {
        let Some(feed) = &self.roa else {
            return rr_ctl::Response::Roa {
                configured: false,
                sources: Vec::new(),
                total_v4: 0,
                total_v6: 0,
                pending: false,
                reject_invalid: false,
                reject_unknown: false,
            };
        };
        let (sources, (total_v4, total_v6), pending) = feed.sources().status(now);
        let rules = self.roa_rules;
        rr_ctl::Response::Roa {
            configured: true,
            sources,
            total_v4,
            total_v6,
            pending,
            reject_invalid: rules.is_some_and(|r| r.reject_invalid),
            reject_unknown: rules.is_some_and(|r| r.reject_unknown),
        }
    }

    /// Closes every session (Cease) and the host sockets; routes stay where they are,
    /// the process is ending.
    pub fn shutdown(&mut self, now: Instant, stack: &mut Stack) {
        if let Some(f) = &mut self.roa {
            f.shutdown();
        }
        for p in &mut self.peers {
            p.peer.stop(now, "shutting down");
        }
        self.process(now, stack);
        for c in &self.conns {
            if let Io::Host { stream, .. } = &c.io {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

/// The thread that writes the FIB: it takes the route table's changes, merges every
/// batch that queued up while it worked, and publishes them at once. The forwarding
/// table is thus built beside the route table, on another core, not after it.
fn spawn_fib_writer(
    shared: &Arc<Shared>,
) -> Result<mpsc::SyncSender<Vec<rr_fib::Change>>, crate::shared::NodeError> {
    let (tx, rx) = mpsc::sync_channel::<Vec<rr_fib::Change>>(FIB_QUEUE);
    let s = shared.clone();
    std::thread::Builder::new()
        .name("fib-writer".into())
        .spawn(move || {
            while let Ok(mut batch) = rx.recv() {
                while let Ok(more) = rx.try_recv() {
                    batch.extend(more);
                }
                if let Err(e) = s.fib.apply(&batch) {
                    tracing::error!(error = %e, "forwarding table");
                }
            }
        })
        .map_err(crate::shared::NodeError::Thread)?;
    Ok(tx)
}

fn connect_error(e: &StackError) -> String {
    match e {
        StackError::NoSourceAddress(_) => format!("{e} (give the tunnel or router an address)"),
        _ => e.to_string(),
    }
}

/// Reader and writer threads for a host connection.
fn host_io(shared: &Arc<Shared>, id: ConnId, stream: TcpStream) -> std::io::Result<Io> {
    let _ = stream.set_nodelay(true);
    let mut reader = stream.try_clone()?;
    let mut writer = stream.try_clone()?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let s = shared.clone();
    let unread = Arc::new(AtomicUsize::new(0));
    let pending = unread.clone();
    std::thread::Builder::new()
        .name("bgp-host-rx".into())
        .spawn(move || {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        while pending.load(Ordering::Relaxed) > HOST_UNREAD_LIMIT {
                            if s.shutdown.load(Ordering::Relaxed) {
                                return;
                            }
                            std::thread::sleep(Duration::from_micros(500));
                        }
                        pending.fetch_add(n, Ordering::Relaxed);
                        let msg = ControlMsg::Host(HostMsg::Data(id, buf[..n].to_vec()));
                        if s.control.send(msg).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = s.control.send(ControlMsg::Host(HostMsg::Closed(id)));
        })?;
    std::thread::Builder::new()
        .name("bgp-host-tx".into())
        .spawn(move || {
            for bytes in rx {
                if bytes.is_empty() {
                    break;
                }
                if writer.write_all(&bytes).is_err() {
                    break;
                }
            }
            let _ = writer.shutdown(Shutdown::Both);
        })?;
    Ok(Io::Host { tx, stream, unread })
}

/// The accept loop of a passive host session's listener; ends at shutdown, or when the
/// returned flag is set (the session was removed or moved by a reload).
fn spawn_accept(shared: Arc<Shared>, peer: usize, l: TcpListener) -> Arc<AtomicBool> {
    let _ = l.set_nonblocking(true);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("bgp-host-accept".into())
        .spawn(move || loop {
            if shared.shutdown.load(Ordering::Relaxed) || stopped.load(Ordering::Relaxed) {
                return;
            }
            match l.accept() {
                Ok((s, _)) => {
                    let _ = s.set_nonblocking(false);
                    if shared
                        .control
                        .send(ControlMsg::Host(HostMsg::Accepted(peer, s)))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the BGP listener thread");
    }
    stop
}
