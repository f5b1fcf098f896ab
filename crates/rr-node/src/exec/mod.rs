//! The node side of `rootless-router exec`, and the `[[forward]]` / `[[expose]]` gateways.
//!
//! What it is: the control thread's relays between kernel descriptors and the node's
//! stack ([`rr_stack::Stack`]), and the answers to the shim's operations
//! ([`rr_ctl::exec`]). A program under `exec` holds one end of an AF_UNIX pair per socket;
//! the node end is registered edge-triggered in the control thread's epoll
//! ([`crate::sys::Epoll`]) and relayed to a stack TCP connection (stream pair), a stack UDP
//! binding or ICMP echo identifier (SEQPACKET pair with [`rr_ctl::exec::DgramHeader`]), or
//! stack listener (SEQPACKET pair carrying accepted descriptors). Gateways are the same
//! relays with a kernel TCP/UDP socket instead of a pair end.
//!
//! Readiness is kept as flags (`readable`, `writable`) set by epoll edges and cleared by
//! `EAGAIN`; one [`Exec::service`] pass moves what can move: from a descriptor only as
//! much as the stack's send buffer takes (read straight into it), to a descriptor what
//! the stack received (written straight from its buffer).
//!
//! Bounds: a datagram relay moves at most one [`Budget`] per pass and stays readable
//! when it has more ([`Exec::busy`]: the control loop then polls instead of sleeping);
//! datagrams the stack's transmit queue or the ICMP queue ([`ICMP_OUT_MAX`]) has no room
//! for are dropped and counted; at most [`MAX_RELAYS`] relays exist at once (`EMFILE`
//! beyond, for programs; gateways leave new connections in the kernel's or the stack's
//! backlog until one closes).
//!
//! What it is not: a socket API. The shim (`rr-preload`) turns libc calls into the
//! operations; routing decisions are the FIB's; TCP is smoltcp's.

mod dns;
mod gateway;
mod relay;

use crate::shared::Shared;
use crate::sys::{self, Epoll, Ready};
use relay::{DgramKind, DgramRelay, ListenRelay, StreamRelay};
use rr_config::Config;
use rr_ctl::exec::{ExecRequest, ExecResponse, SockId, SockKind, SockOpts, PROTOCOL_VERSION};
use rr_ctl::Response;
use rr_stack::{Stack, StackError, TcpBuffers, TcpHandle};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// TCP buffers of connections made for programs and gateways, each way: big enough for
/// a window that fills a fast path (smoltcp derives the window scale from it).
pub(crate) const RELAY_TCP_BUFFERS: TcpBuffers = TcpBuffers {
    rx: 1 << 20,
    tx: 1 << 20,
};
/// `SO_SNDBUF`/`SO_RCVBUF` asked for on the node's ends of stream pairs.
const PAIR_BUFFER: usize = 1 << 20;
/// How long a connect may take before `ETIMEDOUT`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the outcome of a failed connect stays known to `Status`.
const FAILED_KEPT: Duration = Duration::from_secs(60);
/// The largest datagram record: header plus a 64 KiB payload.
const RECORD_MAX: usize = rr_ctl::exec::DGRAM_HEADER_LEN + 65_536;
/// Token of the control thread's eventfd.
pub(crate) const WAKE_TOKEN: u64 = u64::MAX;
/// Most relays at once: program sockets (connections, accepted connections, datagram
/// sockets, listeners) and gateway connections and flows. A TCP relay may hold 1 MiB +
/// 1 MiB of stack buffers ([`RELAY_TCP_BUFFERS`]) and 1 MiB + 1 MiB of kernel pair
/// buffers ([`PAIR_BUFFER`]), so this bounds the worst case to a few GiB; a program
/// asking for more sockets gets `EMFILE`. The connections kept for connects' answers
/// and `Status` waiters are bounded by the same number.
pub(crate) const MAX_RELAYS: usize = 4096;
/// Records one datagram relay (or UDP gateway) moves in one pass, at most.
const BATCH_RECORDS: usize = 64;
/// Bytes one datagram relay (or UDP gateway) moves in one pass, at most.
const BATCH_BYTES: usize = 256 * 1024;
/// Programs' ICMP echo requests queued for the forwarding plane between two passes.
pub(crate) const ICMP_OUT_MAX: usize = 1024;
/// ICMP echo identifiers the node hands to programs' ICMP sockets (`ctl ping` counts
/// up from 0x5253, far below).
const ICMP_IDENT_FIRST: u16 = 0xa000;

/// One operation, as the control socket's thread hands it over: the request, the
/// descriptors that came with it, and the connection to answer on.
pub(crate) struct ExecCall {
    pub op: ExecRequest,
    pub fds: Vec<OwnedFd>,
    pub conn: UnixStream,
}

/// Writes one answer line; a client that has gone is of no concern.
fn answer(conn: &UnixStream, a: ExecResponse) {
    let mut w = conn;
    let _ = rr_ctl::write_line(&mut w, &Response::Exec { answer: a });
}

fn failed(errno: i32, message: impl Into<String>) -> ExecResponse {
    ExecResponse::Failed {
        errno,
        message: message.into(),
    }
}

/// The errno a program sees for a stack error.
fn errno_of(e: &StackError) -> i32 {
    match e {
        StackError::AddrNotAvailable(_) | StackError::InvalidAddress(_) => libc::EADDRNOTAVAIL,
        StackError::AddrInUse(_) => libc::EADDRINUSE,
        StackError::PortsExhausted => libc::EAGAIN,
        StackError::NoSourceAddress(_) => libc::ENETUNREACH,
        StackError::FamilyMismatch { .. } => libc::EAFNOSUPPORT,
        StackError::MessageTooLong { .. } => libc::EMSGSIZE,
        StackError::Refused => libc::ECONNREFUSED,
        StackError::Reset => libc::ECONNRESET,
        StackError::Closed => libc::EPIPE,
        StackError::QueueFull(_) => libc::ENOBUFS,
        _ => libc::EINVAL,
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub(crate) fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        _ => a,
    }
}

/// An address as an AF_INET6 socket of a program shows it (IPv4 mapped).
pub(crate) fn program_form(v6: bool, a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V4(v4) if v6 => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        _ => a,
    }
}

/// How a program's connect ended, for `Status`.
enum Outcome {
    /// Not a connecting socket.
    None,
    /// Under way: the connection that waits for the second answer, and `Status` waiters.
    Pending {
        answer: Option<UnixStream>,
        waiters: Vec<(UnixStream, Instant)>,
    },
    Connected,
    Failed {
        errno: i32,
        message: String,
        until: Instant,
    },
}

/// What the node knows of one program socket (by [`SockId`]).
struct SockRec {
    kind: SockKind,
    v6: bool,
    local: SocketAddr,
    remote: Option<SocketAddr>,
    listening: bool,
    /// The relay carrying it.
    entry: Option<u64>,
    outcome: Outcome,
}

/// What one entry relays.
enum Kind {
    Stream(StreamRelay),
    Dgram(DgramRelay),
    Listen(ListenRelay),
    Gateway(gateway::Gateway),
}

struct Entry {
    sock: Option<SockId>,
    kind: Kind,
}

/// The share of one pass a datagram loop may use, so that one flooding program cannot
/// hold the control thread (a writer as fast as the node never lets it see `EAGAIN`).
pub(crate) struct Budget {
    records: usize,
    bytes: usize,
}

impl Budget {
    pub fn new() -> Budget {
        Budget {
            records: BATCH_RECORDS,
            bytes: BATCH_BYTES,
        }
    }

    /// Is there room for another record?
    pub fn left(&self) -> bool {
        self.records > 0 && self.bytes > 0
    }

    /// Counts one record of `len` bytes.
    pub fn spend(&mut self, len: usize) {
        self.records = self.records.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(len);
    }
}

/// What a pass may use and change besides the entry it serves.
pub(crate) struct Ctx<'a> {
    pub now: Instant,
    pub stack: &'a mut Stack,
    pub shared: &'a Shared,
    pub epoll: &'a Epoll,
    pub buf: &'a mut [u8],
    next_id: &'a mut u64,
    adds: &'a mut Vec<(u64, Entry)>,
    socks: &'a mut HashMap<SockId, SockRec>,
    /// ICMP packets to send (through the forwarding plane, from the control thread).
    pub icmp_out: &'a mut Vec<Vec<u8>>,
    /// Relays at the start of the pass (with `adds`, what [`MAX_RELAYS`] bounds).
    relays: usize,
    /// A relay stopped at its [`Budget`] with more to move.
    pub more: bool,
}

impl Ctx<'_> {
    fn alloc(&mut self) -> u64 {
        *self.next_id += 1;
        *self.next_id
    }

    /// Registers a descriptor of entry `id` (`sub` 0: its main one, 1: the kernel socket).
    fn register(&self, fd: &impl AsRawFd, id: u64, sub: u64) -> std::io::Result<()> {
        sys::set_nonblocking(fd.as_raw_fd())?;
        self.epoll.add(fd.as_raw_fd(), id << 1 | sub)
    }

    /// Would the node carry traffic to `ip`?
    pub fn carries(&self, ip: IpAddr) -> bool {
        carries(self.shared, ip)
    }

    /// May a new relay be added ([`MAX_RELAYS`])?
    pub fn room(&self) -> bool {
        self.relays + self.adds.len() < MAX_RELAYS
    }

    /// Queues a program's ICMP echo request; beyond [`ICMP_OUT_MAX`] it is dropped.
    pub fn icmp_send(&mut self, packet: Vec<u8>) {
        if self.icmp_out.len() >= ICMP_OUT_MAX {
            dropped(self.shared);
        } else {
            self.icmp_out.push(packet);
        }
    }

    /// A connect's outcome is known: answer the waiting connections.
    fn settle(&mut self, id: SockId, result: Result<(SocketAddr, SocketAddr), (i32, String)>) {
        let Some(rec) = self.socks.get_mut(&id) else {
            return;
        };
        let (resp, outcome) = match result {
            Ok((local, remote)) => (
                ExecResponse::Connected { local, remote },
                Outcome::Connected,
            ),
            Err((errno, message)) => (
                failed(errno, message.clone()),
                Outcome::Failed {
                    errno,
                    message,
                    until: self.now + FAILED_KEPT,
                },
            ),
        };
        if let Outcome::Pending { answer: a, waiters } =
            std::mem::replace(&mut rec.outcome, outcome)
        {
            for c in a.iter().chain(waiters.iter().map(|(c, _)| c)) {
                answer(c, resp.clone());
            }
        }
    }
}

/// Counts a datagram dropped for want of room.
fn dropped(shared: &Shared) {
    shared
        .exec_counts
        .dgram_dropped
        .fetch_add(1, Ordering::Relaxed);
}

/// The outcome of the stack's `udp_send_to` for a program's or gateway's datagram: a
/// full transmit queue drops it (counted), as a full kernel queue would.
pub(crate) fn udp_sent(shared: &Shared, r: Result<(), StackError>, to: SocketAddr) {
    match r {
        Ok(()) => {}
        Err(StackError::QueueFull(_)) => dropped(shared),
        Err(e) => tracing::trace!(error = %e, %to, "datagram not sent"),
    }
}

fn carries(shared: &Shared, ip: IpAddr) -> bool {
    if matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()) {
        return false;
    }
    shared.is_local_anywhere(ip) || shared.fib.load().lookup(ip).is_some()
}

/// The control thread's `exec` state. See the [module docs](self).
pub(crate) struct Exec {
    epoll: Epoll,
    entries: HashMap<u64, Entry>,
    next_id: u64,
    socks: HashMap<SockId, SockRec>,
    /// ICMP identifier → entry.
    icmp: HashMap<u16, u64>,
    next_icmp: u16,
    buf: Vec<u8>,
    events: Vec<Ready>,
    adds: Vec<(u64, Entry)>,
    dead: Vec<u64>,
    pub icmp_out: Vec<Vec<u8>>,
    /// Connections waiting on `Status` or a connect's second answer.
    waiting: usize,
    /// When failed connects' outcomes are next forgotten.
    next_gc: Instant,
    dns: dns::Dns,
    /// The latest pass left work for the next one ([`Exec::busy`]).
    more: bool,
    /// The most packets the stack's transmit queue and the ICMP queue held after a pass.
    tx_peak: usize,
    icmp_peak: usize,
}

impl Exec {
    /// The poller (with the control thread's eventfd) and the configured gateways.
    pub fn new(
        shared: &Shared,
        config: &Config,
        stack: &mut Stack,
    ) -> Result<Exec, crate::NodeError> {
        let epoll = Epoll::new().map_err(crate::NodeError::Poller)?;
        epoll
            .add(shared.control.waker.event.raw(), WAKE_TOKEN)
            .map_err(crate::NodeError::Poller)?;
        let dns = dns::Dns::new(config, stack)?;
        let mut exec = Exec {
            dns,
            epoll,
            entries: HashMap::new(),
            next_id: 0,
            socks: HashMap::new(),
            icmp: HashMap::new(),
            next_icmp: ICMP_IDENT_FIRST,
            buf: vec![0u8; RECORD_MAX],
            events: Vec::new(),
            adds: Vec::new(),
            dead: Vec::new(),
            icmp_out: Vec::new(),
            waiting: 0,
            next_gc: Instant::now(),
            more: false,
            tx_peak: 0,
            icmp_peak: 0,
        };
        for g in gateway::start(config, stack)? {
            exec.next_id += 1;
            let id = exec.next_id;
            if let Some(fd) = g.fd() {
                exec.epoll
                    .add(fd.as_raw_fd(), id << 1)
                    .map_err(crate::NodeError::Poller)?;
            }
            exec.entries.insert(
                id,
                Entry {
                    sock: None,
                    kind: Kind::Gateway(g),
                },
            );
        }
        Ok(exec)
    }

    /// Waits up to `timeout` for descriptors (0: only collects) and notes their
    /// readiness. Returns whether the eventfd fired.
    pub fn wait(&mut self, timeout: Duration, wake: &crate::shared::Waker) -> bool {
        let ms = if timeout.is_zero() {
            0
        } else {
            i32::try_from(timeout.as_millis().max(1)).unwrap_or(i32::MAX)
        };
        self.events.clear();
        self.epoll.wait(&mut self.events, ms);
        let mut woken = false;
        for ev in &self.events {
            if ev.token == WAKE_TOKEN {
                wake.event.clear();
                woken = true;
                continue;
            }
            if let Some(e) = self.entries.get_mut(&(ev.token >> 1)) {
                e.kind.ready(ev.token & 1, ev);
            }
        }
        woken
    }

    /// One pass over every relay; publishes the counts.
    pub fn service(&mut self, now: Instant, stack: &mut Stack, shared: &Shared) {
        let mut ctx = Ctx {
            now,
            stack,
            shared,
            epoll: &self.epoll,
            buf: &mut self.buf,
            next_id: &mut self.next_id,
            adds: &mut self.adds,
            socks: &mut self.socks,
            icmp_out: &mut self.icmp_out,
            relays: self.entries.len(),
            more: false,
        };
        for (&id, e) in self.entries.iter_mut() {
            let alive = match &mut e.kind {
                Kind::Stream(r) => r.service(&mut ctx),
                Kind::Dgram(r) => r.service(&mut ctx),
                Kind::Listen(r) => r.service(&mut ctx),
                Kind::Gateway(g) => g.service(&mut ctx),
            };
            if !alive {
                self.dead.push(id);
            }
        }
        self.more = ctx.more;
        self.dns.service(now, stack, &mut self.buf);
        self.reap(stack);
        for (id, e) in self.adds.drain(..) {
            self.entries.insert(id, e);
        }
        if self.waiting > 0 || now >= self.next_gc {
            self.expire_waiters(now);
            self.next_gc = now + Duration::from_secs(1);
        }
        let c = &shared.exec_counts;
        c.sockets.store(self.socks.len() as u64, Ordering::Relaxed);
        c.relays.store(self.entries.len() as u64, Ordering::Relaxed);
        c.stack_tcp
            .store(stack.tcp_handles() as u64, Ordering::Relaxed);
        self.tx_peak = self.tx_peak.max(stack.tx_queued());
        self.icmp_peak = self.icmp_peak.max(self.icmp_out.len());
        c.stack_tx_peak
            .store(self.tx_peak as u64, Ordering::Relaxed);
        c.icmp_out_peak
            .store(self.icmp_peak as u64, Ordering::Relaxed);
    }

    /// The latest pass stopped a relay at its [`Budget`]: poll again without sleeping.
    pub fn busy(&self) -> bool {
        self.more
    }

    /// `EMFILE` when [`MAX_RELAYS`] relays exist.
    fn admit(&self) -> Result<(), ExecResponse> {
        if self.entries.len() >= MAX_RELAYS {
            return Err(failed(
                libc::EMFILE,
                format!("the node carries {MAX_RELAYS} sockets of programs already"),
            ));
        }
        Ok(())
    }

    /// Removes dead entries, releasing their stack endpoints.
    fn reap(&mut self, stack: &mut Stack) {
        for id in self.dead.drain(..) {
            let Some(e) = self.entries.remove(&id) else {
                continue;
            };
            if let Kind::Dgram(r) = &e.kind {
                if let DgramKind::Icmp { ident, .. } = r.kind {
                    self.icmp.remove(&ident);
                }
            }
            e.kind.release(stack, &self.epoll);
            if let Some(sid) = e.sock {
                let keep = matches!(self.socks.get(&sid), Some(r) if matches!(r.outcome, Outcome::Failed { .. }) && r.entry == Some(id));
                if keep {
                    if let Some(r) = self.socks.get_mut(&sid) {
                        r.entry = None;
                    }
                } else if matches!(self.socks.get(&sid), Some(r) if r.entry == Some(id)) {
                    self.socks.remove(&sid);
                }
            }
        }
    }

    /// Answers `Status` waiters whose time is up, and forgets old failures.
    fn expire_waiters(&mut self, now: Instant) {
        let mut waiting = 0;
        self.socks.retain(|_, r| match &mut r.outcome {
            Outcome::Pending { answer: a, waiters } => {
                waiters.retain(|(c, until)| {
                    if now >= *until {
                        answer(c, ExecResponse::Pending);
                        false
                    } else {
                        true
                    }
                });
                waiting += waiters.len() + usize::from(a.is_some());
                true
            }
            Outcome::Failed { until, .. } => r.entry.is_some() || now < *until,
            _ => true,
        });
        self.waiting = waiting;
    }

    /// The earliest `Status` or DNS deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let dns = self.dns.poll_timeout();
        if self.waiting == 0 {
            return dns;
        }
        let status = self
            .socks
            .values()
            .filter_map(|r| match &r.outcome {
                Outcome::Pending { waiters, .. } => waiters.iter().map(|w| w.1).min(),
                _ => None,
            })
            .min();
        match (dns, status) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// An echo reply for one of the programs' ICMP sockets: handed to it (true), or not
    /// ours (false).
    pub fn icmp_reply(&mut self, packet: &[u8]) -> bool {
        let Some(r) = rr_dataplane::probe::parse_echo_reply(packet) else {
            return false;
        };
        let Some(id) = self.icmp.get(&r.ident) else {
            return false;
        };
        if let Some(Entry {
            kind: Kind::Dgram(d),
            ..
        }) = self.entries.get_mut(id)
        {
            d.icmp_reply(&r, &mut self.buf);
        }
        true
    }

    /// Serves one operation.
    pub fn op(&mut self, call: ExecCall, now: Instant, stack: &mut Stack, shared: &Shared) {
        let ExecCall { op, fds, conn } = call;
        let _ = conn.set_nonblocking(true);
        let resp = match op {
            ExecRequest::Hello => ExecResponse::Hello {
                version: PROTOCOL_VERSION,
            },
            ExecRequest::Route { addr } => ExecResponse::Route {
                mine: carries(shared, unmap(SocketAddr::new(addr, 0)).ip()),
            },
            ExecRequest::Resolve { name, family } => {
                match self.dns.resolve(now, &name, family, conn) {
                    Some(conn) => {
                        answer(&conn, ExecResponse::Kernel);
                    }
                    None => self.dns.service(now, stack, &mut self.buf),
                }
                return;
            }
            ExecRequest::ReverseResolve { addr } => {
                match self
                    .dns
                    .reverse(now, unmap(SocketAddr::new(addr, 0)).ip(), conn)
                {
                    Some(conn) => {
                        answer(&conn, ExecResponse::Kernel);
                    }
                    None => self.dns.service(now, stack, &mut self.buf),
                }
                return;
            }
            ExecRequest::Close { id } => {
                let entry = self.socks.get(&id).and_then(|r| r.entry);
                let gone = entry
                    .and_then(|e| self.entries.get(&e))
                    .is_some_and(|e| e.kind.program_gone());
                if let (true, Some(e)) = (gone, entry) {
                    self.dead.push(e);
                    self.reap(stack);
                }
                ExecResponse::Closed { released: gone }
            }
            ExecRequest::Describe { id } => match self.socks.get(&id) {
                Some(r) if r.entry.is_some() => ExecResponse::Socket {
                    kind: r.kind,
                    v6: r.v6,
                    local: r.local,
                    remote: r.remote,
                    listening: r.listening,
                },
                _ => failed(libc::EBADF, "not a socket of this node"),
            },
            ExecRequest::Status { id, wait_ms } => match self.socks.get_mut(&id) {
                None => failed(libc::EBADF, "no connect of this socket"),
                Some(r) => match &mut r.outcome {
                    Outcome::None => failed(libc::EINVAL, "not a connecting socket"),
                    Outcome::Connected => ExecResponse::Connected {
                        local: r.local,
                        remote: r.remote.unwrap_or(r.local),
                    },
                    Outcome::Failed { errno, message, .. } => failed(*errno, message.clone()),
                    Outcome::Pending { waiters, .. } => {
                        if wait_ms == 0 {
                            ExecResponse::Pending
                        } else if self.waiting >= MAX_RELAYS {
                            // Each waiter is a connection the node keeps open.
                            failed(libc::EAGAIN, "too many connections wait for connects")
                        } else {
                            let until = now + Duration::from_millis(u64::from(wait_ms));
                            waiters.push((conn, until));
                            self.waiting += 1;
                            return;
                        }
                    }
                },
            },
            ExecRequest::Connect {
                id,
                v6,
                local,
                remote,
                opts,
            } => match self.connect(now, stack, shared, fds, id, v6, local, remote, opts) {
                Ok(local) => {
                    answer(&conn, ExecResponse::Opened { local });
                    if let Some(SockRec {
                        outcome: Outcome::Pending { answer: a, .. },
                        ..
                    }) = self.socks.get_mut(&id)
                    {
                        *a = Some(conn);
                        self.waiting += 1;
                    }
                    return;
                }
                Err(resp) => resp,
            },
            ExecRequest::Datagram {
                id,
                kind,
                v6,
                local,
                remote,
                opts,
            } => self
                .datagram(stack, shared, fds, id, kind, v6, local, remote, opts)
                .unwrap_or_else(|e| e),
            ExecRequest::Reconnect { id, remote } => self.reconnect(stack, id, remote),
            ExecRequest::Listen {
                id,
                v6,
                local,
                backlog: _,
                opts,
            } => self
                .listen(stack, fds, id, v6, local, opts)
                .unwrap_or_else(|e| e),
        };
        answer(&conn, resp);
    }

    fn add_sock(&mut self, id: SockId, rec: SockRec) {
        if self.socks.len() >= MAX_RELAYS {
            // Failed connects' outcomes kept for `Status` go first (every other record
            // has a relay, and those are bounded).
            self.socks
                .retain(|_, r| !(r.entry.is_none() && matches!(r.outcome, Outcome::Failed { .. })));
        }
        // A reused inode (the program closed an old socket we have not reaped yet):
        // the old record goes.
        self.socks.insert(id, rec);
    }

    fn new_entry(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn register(&self, fd: &impl AsRawFd, id: u64, sub: u64) -> Result<(), ExecResponse> {
        sys::set_nonblocking(fd.as_raw_fd())
            .and_then(|()| self.epoll.add(fd.as_raw_fd(), id << 1 | sub))
            .map_err(|e| failed(e.raw_os_error().unwrap_or(libc::EIO), e.to_string()))
    }

    #[allow(clippy::too_many_arguments)]
    fn connect(
        &mut self,
        now: Instant,
        stack: &mut Stack,
        shared: &Shared,
        fds: Vec<OwnedFd>,
        id: SockId,
        v6: bool,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        opts: SockOpts,
    ) -> Result<SocketAddr, ExecResponse> {
        self.admit()?;
        let fd = take_fd(fds, &[libc::SOCK_STREAM], "a stream pair end")?;
        let remote_u = unmap(remote);
        if !carries(shared, remote_u.ip()) {
            return Err(failed(
                libc::ENETUNREACH,
                format!("no route to {}", remote_u.ip()),
            ));
        }
        let h = stack
            .tcp_connect_with(now, remote_u, None, local.map(unmap), RELAY_TCP_BUFFERS)
            .map_err(|e| failed(errno_of(&e), e.to_string()))?;
        apply_opts(stack, h, opts);
        let entry = self.new_entry();
        if let Err(e) = self.register(&fd, entry, 0) {
            stack.tcp_abort(h);
            stack.tcp_release(h);
            return Err(e);
        }
        sys::set_buffers(fd.as_raw_fd(), PAIR_BUFFER);
        let local = program_form(v6, stack.tcp_local(h).unwrap_or(remote_u));
        let relay = StreamRelay::new(fd, h, Some((id, now + CONNECT_TIMEOUT, v6)), false, false);
        self.entries.insert(
            entry,
            Entry {
                sock: Some(id),
                kind: Kind::Stream(relay),
            },
        );
        self.add_sock(
            id,
            SockRec {
                kind: SockKind::Stream,
                v6,
                local,
                remote: Some(program_form(v6, remote_u)),
                listening: false,
                entry: Some(entry),
                outcome: Outcome::Pending {
                    answer: None,
                    waiters: Vec::new(),
                },
            },
        );
        Ok(local)
    }

    #[allow(clippy::too_many_arguments)]
    fn datagram(
        &mut self,
        stack: &mut Stack,
        shared: &Shared,
        mut fds: Vec<OwnedFd>,
        id: SockId,
        kind: SockKind,
        v6: bool,
        local: SocketAddr,
        remote: Option<SocketAddr>,
        _opts: SockOpts,
    ) -> Result<ExecResponse, ExecResponse> {
        self.admit()?;
        let kernel = if fds.len() > 1 {
            let k = fds.pop().filter(|k| {
                matches!(sys::socket_kind(k.as_raw_fd()), Ok((d, libc::SOCK_DGRAM)) if d == libc::AF_INET || d == libc::AF_INET6)
            });
            match k {
                Some(k) => Some(std::net::UdpSocket::from(k)),
                None => return Err(failed(libc::EBADF, "fds[1] is not a datagram socket")),
            }
        } else {
            None
        };
        let fd = take_fd(fds, &[libc::SOCK_SEQPACKET], "a seqpacket pair end")?;
        let local_u = unmap(local);
        let remote_u = remote.map(unmap);
        let entry = self.new_entry();
        let (dk, bound) = match kind {
            SockKind::Stream => {
                return Err(failed(
                    libc::EINVAL,
                    "a stream socket is not a datagram one",
                ))
            }
            SockKind::Datagram => {
                let mut want = local_u;
                if want.port() == 0 {
                    if let Some(p) = kernel
                        .as_ref()
                        .and_then(|k| k.local_addr().ok())
                        .map(|a| a.port())
                    {
                        want.set_port(p);
                    }
                }
                let h = stack
                    .udp_bind(want, None)
                    .map_err(|e| failed(errno_of(&e), e.to_string()))?;
                let bound = stack.udp_local(h).unwrap_or(want);
                (DgramKind::Udp(h), bound)
            }
            SockKind::Icmp => {
                if !local_u.ip().is_unspecified() && !shared.is_local_anywhere(local_u.ip()) {
                    return Err(failed(
                        libc::EADDRNOTAVAIL,
                        format!("{} is not an address of this node", local_u.ip()),
                    ));
                }
                let Some(ident) = self.free_ident() else {
                    return Err(failed(libc::EAGAIN, "no free ICMP identifier"));
                };
                self.icmp.insert(ident, entry);
                (
                    DgramKind::Icmp {
                        ident,
                        program_ident: 0,
                    },
                    SocketAddr::new(local_u.ip(), ident),
                )
            }
        };
        let k_reg = match &kernel {
            Some(k) => self.register(k, entry, 1),
            None => Ok(()),
        };
        if let Err(e) = self.register(&fd, entry, 0).and(k_reg) {
            DgramRelay::release_kind(dk, stack);
            if let DgramKind::Icmp { ident, .. } = dk {
                self.icmp.remove(&ident);
            }
            return Err(e);
        }
        let local = program_form(v6, connected_local(stack, bound, remote_u));
        self.entries.insert(
            entry,
            Entry {
                sock: Some(id),
                kind: Kind::Dgram(DgramRelay::new(fd, kernel, dk, bound, remote_u)),
            },
        );
        self.add_sock(
            id,
            SockRec {
                kind,
                v6,
                local,
                remote: remote_u.map(|r| program_form(v6, r)),
                listening: false,
                entry: Some(entry),
                outcome: Outcome::None,
            },
        );
        Ok(ExecResponse::Opened { local })
    }

    fn free_ident(&mut self) -> Option<u16> {
        for _ in 0..=(u16::MAX - ICMP_IDENT_FIRST) {
            let i = self.next_icmp;
            self.next_icmp = if i == u16::MAX {
                ICMP_IDENT_FIRST
            } else {
                i + 1
            };
            if !self.icmp.contains_key(&i) {
                return Some(i);
            }
        }
        None
    }

    fn reconnect(&mut self, stack: &Stack, id: SockId, remote: Option<SocketAddr>) -> ExecResponse {
        let Some(rec) = self.socks.get_mut(&id) else {
            return failed(libc::EBADF, "not a socket of this node");
        };
        let Some(Entry {
            kind: Kind::Dgram(d),
            ..
        }) = rec.entry.and_then(|e| self.entries.get_mut(&e))
        else {
            return failed(libc::EINVAL, "not a datagram socket");
        };
        let remote_u = remote.map(unmap);
        d.remote = remote_u;
        rec.remote = remote_u.map(|r| program_form(rec.v6, r));
        rec.local = program_form(rec.v6, connected_local(stack, d.bound(), remote_u));
        ExecResponse::Opened { local: rec.local }
    }

    fn listen(
        &mut self,
        stack: &mut Stack,
        mut fds: Vec<OwnedFd>,
        id: SockId,
        v6: bool,
        local: SocketAddr,
        opts: SockOpts,
    ) -> Result<ExecResponse, ExecResponse> {
        self.admit()?;
        let kernel = if fds.len() > 1 {
            match fds.pop() {
                Some(k)
                    if matches!(sys::socket_kind(k.as_raw_fd()), Ok((d, libc::SOCK_STREAM)) if d == libc::AF_INET || d == libc::AF_INET6)
                        && sys::is_listening(k.as_raw_fd()) =>
                {
                    Some(k)
                }
                _ => return Err(failed(libc::EBADF, "fds[1] is not a listening TCP socket")),
            }
        } else {
            None
        };
        let fd = take_fd(fds, &[libc::SOCK_SEQPACKET], "a seqpacket pair end")?;
        let h = stack
            .tcp_listen_with(unmap(local), None, RELAY_TCP_BUFFERS)
            .map_err(|e| failed(errno_of(&e), e.to_string()))?;
        let entry = self.new_entry();
        let k_reg = match &kernel {
            Some(k) => self.register(k, entry, 1),
            None => Ok(()),
        };
        if let Err(e) = self.register(&fd, entry, 0).and(k_reg) {
            stack.tcp_release(h);
            return Err(e);
        }
        let bound = program_form(v6, stack.tcp_local(h).unwrap_or(local));
        self.entries.insert(
            entry,
            Entry {
                sock: Some(id),
                kind: Kind::Listen(ListenRelay::new(fd, kernel, h, v6, opts)),
            },
        );
        self.add_sock(
            id,
            SockRec {
                kind: SockKind::Stream,
                v6,
                local: bound,
                remote: None,
                listening: true,
                entry: Some(entry),
                outcome: Outcome::None,
            },
        );
        Ok(ExecResponse::Opened { local: bound })
    }

    /// Closes every relay (the node is stopping).
    pub fn shutdown(&mut self, stack: &mut Stack) {
        for (_, e) in self.entries.drain() {
            e.kind.release(stack, &self.epoll);
        }
        self.socks.clear();
    }
}

/// The first descriptor, checked to be an AF_UNIX socket of one of `types`.
fn take_fd(fds: Vec<OwnedFd>, types: &[libc::c_int], what: &str) -> Result<OwnedFd, ExecResponse> {
    let mut it = fds.into_iter();
    let Some(fd) = it.next() else {
        return Err(failed(
            libc::EBADF,
            format!("no descriptor: fds[0] must be {what}"),
        ));
    };
    match sys::socket_kind(fd.as_raw_fd()) {
        Ok((libc::AF_UNIX, t)) if types.contains(&t) => Ok(fd),
        _ => Err(failed(libc::EBADF, format!("fds[0] is not {what}"))),
    }
}

/// `TCP_NODELAY` and `SO_KEEPALIVE` of a program's socket on its stack connection (a
/// listener's apply to every connection it accepts, as on Linux).
fn apply_opts(stack: &mut Stack, h: TcpHandle, opts: SockOpts) {
    if opts.nodelay {
        let _ = stack.tcp_set_nodelay(h, true);
    }
    if opts.keepalive {
        let _ = stack.tcp_set_keepalive(h, Some(Duration::from_secs(60)));
    }
}

impl Kind {
    fn ready(&mut self, sub: u64, ev: &Ready) {
        match self {
            Kind::Stream(r) => r.ready(ev),
            Kind::Dgram(r) => r.ready(sub, ev),
            Kind::Listen(r) => r.ready(sub, ev),
            Kind::Gateway(g) => g.ready(ev),
        }
    }

    /// True when every descriptor of the program's end of this relay's pair is closed.
    fn program_gone(&self) -> bool {
        let fd = match self {
            Kind::Dgram(r) => r.program_fd(),
            Kind::Listen(r) => r.program_fd(),
            Kind::Stream(_) | Kind::Gateway(_) => return false,
        };
        sys::hung_up(fd)
    }

    /// Frees the stack endpoints. Kernel sockets the program also holds are taken out
    /// of the epoll first (closing our descriptor alone would not remove them).
    fn release(self, stack: &mut Stack, epoll: &Epoll) {
        match self {
            Kind::Stream(r) => r.release(stack),
            Kind::Dgram(r) => r.release(stack, epoll),
            Kind::Listen(r) => r.release(stack, epoll),
            Kind::Gateway(g) => g.release(stack),
        }
    }
}

/// The local address a datagram socket reports: its binding, with the source address the
/// node picks for the connected peer in place of a wildcard (as the kernel does).
fn connected_local(stack: &Stack, bound: SocketAddr, remote: Option<SocketAddr>) -> SocketAddr {
    match remote {
        Some(r) if bound.ip().is_unspecified() => match stack.select_source(r.ip(), None) {
            Ok(ip) => SocketAddr::new(ip, bound.port()),
            Err(_) => bound,
        },
        _ => bound,
    }
}
