//! The relays: a stack TCP connection ↔ a stream descriptor, a stack UDP binding or ICMP
//! identifier ↔ a SEQPACKET descriptor, a stack listener ↔ a SEQPACKET descriptor that
//! carries accepted connections.
//!
//! What it is not: the owner of the descriptors' registration (the [`super::Exec`] does
//! that) or of any protocol: TCP is the stack's, ICMP echo building is
//! `rr_dataplane::probe`'s.

use super::{
    apply_opts, program_form, udp_sent, unmap, Budget, Ctx, Entry, Kind, SockRec, PAIR_BUFFER,
};
use crate::sys::{self, Ready};
use rr_ctl::exec::{Accepted, DgramHeader, SockId, SockKind, SockOpts, DGRAM_HEADER_LEN};
use rr_stack::{Stack, StackError, TcpHandle, TcpState, UdpHandle};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Instant;

/// A stack TCP connection ↔ a stream descriptor (the node end of a program's pair, or a
/// kernel TCP socket of a gateway).
pub(crate) struct StreamRelay {
    fd: OwnedFd,
    tcp: TcpHandle,
    readable: bool,
    writable: bool,
    hup: bool,
    /// EOF read from the descriptor; the stack connection got its FIN.
    fd_eof: bool,
    /// The peer's FIN was passed on (`shutdown(SHUT_WR)`), or the descriptor no longer
    /// takes data.
    out_done: bool,
    /// A program's connect under way: its socket, deadline, and whether it is AF_INET6.
    connect: Option<(SockId, Instant, bool)>,
    /// A kernel TCP socket: a reset of the stack side resets it too.
    kernel: bool,
    /// A kernel non-blocking connect under way (expose gateways).
    kernel_connecting: bool,
    /// Abort the stack connection when released (the descriptor side failed).
    abort: bool,
}

impl StreamRelay {
    pub fn new(
        fd: OwnedFd,
        tcp: TcpHandle,
        connect: Option<(SockId, Instant, bool)>,
        kernel: bool,
        kernel_connecting: bool,
    ) -> StreamRelay {
        StreamRelay {
            fd,
            tcp,
            readable: true,
            writable: true,
            hup: false,
            fd_eof: false,
            out_done: false,
            connect,
            kernel,
            kernel_connecting,
            abort: false,
        }
    }

    pub fn ready(&mut self, ev: &Ready) {
        self.readable |= ev.readable || ev.hup;
        self.writable |= ev.writable || ev.hup;
        self.hup |= ev.hup;
    }

    /// Moves what can move; false when the relay is done.
    pub fn service(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let fd = self.fd.as_raw_fd();
        if self.kernel_connecting {
            if !self.writable && !self.hup {
                return true;
            }
            let err = socket2::SockRef::from(&self.fd).take_error();
            if !matches!(err, Ok(None)) {
                tracing::debug!(?err, "gateway connect failed");
                self.abort = true;
                return false;
            }
            self.kernel_connecting = false;
        }
        let stack = &mut *ctx.stack;
        if let Some((sid, deadline, v6)) = self.connect {
            match stack.tcp_state(self.tcp) {
                TcpState::Connecting => {
                    if ctx.now >= deadline {
                        ctx.settle(sid, Err((libc::ETIMEDOUT, "connection timed out".into())));
                        self.abort = true;
                        return false;
                    }
                    return true;
                }
                TcpState::Closed => {
                    ctx.settle(sid, Err((libc::ECONNREFUSED, "connection refused".into())));
                    return false;
                }
                _ => {
                    self.connect = None;
                    let local = stack.tcp_local(self.tcp);
                    let peer = stack.tcp_peer(self.tcp).map(|p| p.0);
                    if let (Some(l), Some(p)) = (local, peer) {
                        ctx.settle(sid, Ok((program_form(v6, l), program_form(v6, p))));
                    }
                }
            }
        }
        let stack = &mut *ctx.stack;
        // Descriptor → stack: read straight into the send buffer, only what fits.
        while self.readable && !self.fd_eof {
            let mut step = Io::Moved(0);
            let r = stack.tcp_send_with(self.tcp, |buf| {
                step = Io::of(sys::recv(fd, buf));
                step.moved()
            });
            match step {
                Io::WouldBlock => self.readable = false,
                // The descriptor failed (a kernel socket reset): the connection goes too.
                Io::Broken => {
                    self.abort = true;
                    return false;
                }
                Io::Eof => {
                    self.fd_eof = true;
                    stack.tcp_close(self.tcp);
                    break;
                }
                Io::Moved(_) => {}
            }
            match r {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        // Stack → descriptor: write straight from the receive buffer.
        let mut reset = false;
        while !self.out_done && self.writable {
            let mut step = Io::Moved(0);
            let r = stack.tcp_recv_with(self.tcp, |data| {
                step = Io::of(sys::send(fd, data));
                step.moved()
            });
            match step {
                Io::WouldBlock => self.writable = false,
                // The other end no longer reads; what it wrote is still read to EOF.
                Io::Broken => {
                    self.out_done = true;
                    break;
                }
                Io::Eof | Io::Moved(_) => {}
            }
            match r {
                Ok(0) => break,
                Ok(_) => {}
                Err(StackError::Closed) => {
                    sys::shutdown_write(fd);
                    self.out_done = true;
                }
                Err(_) => {
                    reset = true;
                    break;
                }
            }
        }
        if reset {
            return false;
        }
        if self.fd_eof && (self.out_done || self.hup) {
            return false;
        }
        if self.hup && !self.readable {
            // Hung up with nothing left to read.
            return false;
        }
        if stack.tcp_state(self.tcp) == TcpState::Closed {
            // Reset, aborted or timed out: what was received still goes out first.
            // After the peer's FIN (all written), nothing more can be sent either.
            return !self.out_done && stack.tcp_recv_queue(self.tcp) > 0;
        }
        true
    }

    pub fn release(self, stack: &mut Stack) {
        let closed = stack.tcp_state(self.tcp) == TcpState::Closed;
        if self.abort {
            stack.tcp_abort(self.tcp);
        }
        if self.kernel && closed && !self.out_done {
            sys::reset_on_close(&self.fd);
        }
        stack.tcp_release(self.tcp);
    }
}

/// What carries a datagram socket on the node's side.
#[derive(Clone, Copy)]
pub(crate) enum DgramKind {
    Udp(UdpHandle),
    /// ICMP echo: the identifier the node uses, and the program's own (restored on
    /// replies; the one of its latest request).
    Icmp {
        ident: u16,
        program_ident: u16,
    },
}

/// A stack UDP binding or ICMP identifier ↔ a SEQPACKET descriptor; plus, optionally,
/// the program's kernel socket for destinations the node does not carry.
/// What one `recv`/`send` on a relayed descriptor came to.
#[derive(Clone, Copy)]
enum Io {
    /// Bytes moved (0 after an interrupted call: try again on the next pass).
    Moved(usize),
    /// `recv` returned 0: the other end shut down its writing side.
    Eof,
    WouldBlock,
    /// Any other error: the descriptor is unusable.
    Broken,
}

impl Io {
    fn of(r: std::io::Result<usize>) -> Io {
        match r {
            Ok(0) => Io::Eof,
            Ok(n) => Io::Moved(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Io::WouldBlock,
            Err(e) if e.kind() == ErrorKind::Interrupted => Io::Moved(0),
            Err(_) => Io::Broken,
        }
    }

    /// The byte count to report to the stack.
    fn moved(self) -> usize {
        match self {
            Io::Moved(n) => n,
            Io::Eof | Io::WouldBlock | Io::Broken => 0,
        }
    }
}

pub(crate) struct DgramRelay {
    fd: OwnedFd,
    kernel: Option<UdpSocket>,
    pub kind: DgramKind,
    local: SocketAddr,
    pub remote: Option<SocketAddr>,
    readable: bool,
    writable: bool,
    hup: bool,
    k_readable: bool,
}

impl DgramRelay {
    /// The node's end of the program's pair.
    pub fn program_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// The stack binding's address.
    pub fn bound(&self) -> SocketAddr {
        self.local
    }

    pub fn new(
        fd: OwnedFd,
        kernel: Option<UdpSocket>,
        kind: DgramKind,
        local: SocketAddr,
        remote: Option<SocketAddr>,
    ) -> DgramRelay {
        DgramRelay {
            fd,
            kernel,
            kind,
            local,
            remote,
            readable: true,
            writable: true,
            hup: false,
            k_readable: true,
        }
    }

    pub fn ready(&mut self, sub: u64, ev: &Ready) {
        if sub == 1 {
            self.k_readable |= ev.readable;
        } else {
            self.readable |= ev.readable || ev.hup;
            self.writable |= ev.writable;
            self.hup |= ev.hup;
        }
    }

    /// Sends one record to the program; a full socket drops it (UDP semantics).
    fn deliver(&mut self, buf: &mut [u8], from: SocketAddr, ttl: u8, len: usize) {
        if !self.writable {
            return;
        }
        let v6 = self.local.is_ipv6();
        let h = DgramHeader {
            addr: Some(program_form(v6, from)),
            ttl,
        };
        buf[..DGRAM_HEADER_LEN].copy_from_slice(&h.encode());
        let end = (DGRAM_HEADER_LEN + len).min(buf.len());
        match sys::send(self.fd.as_raw_fd(), &buf[..end]) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => self.writable = false,
            Err(_) => {}
        }
    }

    pub fn service(&mut self, ctx: &mut Ctx<'_>) -> bool {
        // Program → node: one budget's worth; the rest in the next pass.
        let mut budget = Budget::new();
        while self.readable {
            if !budget.left() {
                ctx.more = true;
                break;
            }
            let n = match sys::recv(self.fd.as_raw_fd(), ctx.buf) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.readable = false;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            };
            budget.spend(n);
            let Some(record) = ctx.buf.get(..n) else {
                continue;
            };
            let Some(h) = DgramHeader::decode(record) else {
                continue;
            };
            let payload = &record[DGRAM_HEADER_LEN..];
            let Some(to) = h.addr.or(self.remote).map(unmap) else {
                continue;
            };
            if ctx.carries(to.ip()) {
                match &mut self.kind {
                    DgramKind::Udp(u) => {
                        let r = ctx.stack.udp_send_to(*u, payload, to, None);
                        udp_sent(ctx.shared, r, to);
                    }
                    DgramKind::Icmp {
                        ident,
                        program_ident,
                    } => {
                        if let Some(p) = echo_packet(ctx, self.local.ip(), to.ip(), *ident, payload)
                        {
                            if let Some(pi) = payload.get(4..6) {
                                *program_ident = u16::from_be_bytes([pi[0], pi[1]]);
                            }
                            ctx.icmp_send(p);
                        }
                    }
                }
            } else if let Some(k) = &self.kernel {
                let to = match k.local_addr() {
                    Ok(SocketAddr::V6(_)) => program_form(true, to),
                    _ => to,
                };
                let _ = k.send_to(payload, to);
            }
        }
        // The kernel socket → program, one budget's worth too.
        let mut budget = Budget::new();
        while self.k_readable && self.writable {
            let Some(k) = &self.kernel else { break };
            if !budget.left() {
                ctx.more = true;
                break;
            }
            let buf = &mut *ctx.buf;
            match k.recv_from(&mut buf[DGRAM_HEADER_LEN..]) {
                Ok((n, from)) => {
                    budget.spend(n);
                    self.deliver(buf, unmap(from), 0, n)
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.k_readable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.k_readable = false,
            }
        }
        // The stack → program.
        if let DgramKind::Udp(u) = self.kind {
            while self.writable {
                let buf = &mut *ctx.buf;
                let Some((n, from, _)) = ctx.stack.udp_recv_from(u, &mut buf[DGRAM_HEADER_LEN..])
                else {
                    break;
                };
                if self.remote.is_some_and(|r| r != from) {
                    continue;
                }
                self.deliver(buf, from, 0, n);
            }
        }
        !self.hup || self.readable
    }

    /// An echo reply for this socket: to the program with its own identifier.
    pub fn icmp_reply(&mut self, r: &rr_dataplane::probe::EchoReply<'_>, buf: &mut [u8]) {
        let DgramKind::Icmp { program_ident, .. } = self.kind else {
            return;
        };
        if self.remote.is_some_and(|a| a.ip() != r.from) {
            return;
        }
        let len = r.message.len().min(buf.len() - DGRAM_HEADER_LEN);
        let body = &mut buf[DGRAM_HEADER_LEN..DGRAM_HEADER_LEN + len];
        body.copy_from_slice(&r.message[..len]);
        rr_dataplane::probe::set_echo_ident(r.from, r.to, body, program_ident);
        self.deliver(buf, SocketAddr::new(r.from, 0), r.ttl, len);
    }

    pub fn release_kind(kind: DgramKind, stack: &mut Stack) {
        if let DgramKind::Udp(u) = kind {
            stack.udp_close(u);
        }
    }

    pub fn release(self, stack: &mut Stack, epoll: &sys::Epoll) {
        if let Some(k) = &self.kernel {
            epoll.delete(k.as_raw_fd());
        }
        DgramRelay::release_kind(self.kind, stack);
    }
}

/// An echo request from the node: from `local` if it is an address, else from the
/// address the forwarding plane uses toward `to` (as `ctl ping` does).
fn echo_packet(
    ctx: &Ctx<'_>,
    local: IpAddr,
    to: IpAddr,
    ident: u16,
    message: &[u8],
) -> Option<Vec<u8>> {
    let src = if !local.is_unspecified() && local.is_ipv4() == to.is_ipv4() {
        local
    } else {
        let l = ctx.shared.local.load();
        match ctx.shared.fib.load().lookup(to) {
            Some((_, nh)) => match to {
                IpAddr::V4(_) => l.icmp_source_v4(nh.iface).map(IpAddr::V4)?,
                IpAddr::V6(_) => l.icmp_source_v6(nh.iface, false).map(IpAddr::V6)?,
            },
            // The node's own address: any of its addresses of the family.
            None => *l
                .router_addrs
                .iter()
                .find(|a| a.is_ipv4() == to.is_ipv4())?,
        }
    };
    let want = if to.is_ipv4() { 8 } else { 128 };
    if message.first() != Some(&want) {
        return None;
    }
    rr_dataplane::probe::echo_request_with(src, to, 64, ident, message)
}

/// A connection ready for the program, waiting for room on the listener's descriptor.
struct PendingAccept {
    record: Vec<u8>,
    fd: OwnedFd,
}

/// A stack listener (and the program's kernel listener, for a wildcard) ↔ the SEQPACKET
/// descriptor accepted connections are passed on.
pub(crate) struct ListenRelay {
    fd: OwnedFd,
    kernel: Option<OwnedFd>,
    tcp: TcpHandle,
    v6: bool,
    /// The listening socket's options, inherited by the connections it accepts.
    opts: SockOpts,
    writable: bool,
    hup: bool,
    k_readable: bool,
    pending: Option<PendingAccept>,
}

impl ListenRelay {
    /// The node's end of the program's pair.
    pub fn program_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    pub fn new(
        fd: OwnedFd,
        kernel: Option<OwnedFd>,
        tcp: TcpHandle,
        v6: bool,
        opts: SockOpts,
    ) -> ListenRelay {
        ListenRelay {
            fd,
            kernel,
            tcp,
            v6,
            opts,
            writable: true,
            hup: false,
            k_readable: true,
            pending: None,
        }
    }

    pub fn ready(&mut self, sub: u64, ev: &Ready) {
        if sub == 1 {
            self.k_readable |= ev.readable;
        } else {
            self.writable |= ev.writable;
            self.hup |= ev.hup;
        }
    }

    fn record(a: &Accepted) -> Vec<u8> {
        serde_json::to_vec(a).unwrap_or_default()
    }

    pub fn service(&mut self, ctx: &mut Ctx<'_>) -> bool {
        if self.hup {
            return false;
        }
        loop {
            if let Some(p) = &self.pending {
                match sys::send_with_fd(self.fd.as_raw_fd(), &p.record, Some(p.fd.as_fd())) {
                    Ok(_) => self.pending = None,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        self.writable = false;
                        return true;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
            }
            if !self.writable {
                return true;
            }
            // At [`super::MAX_RELAYS`], connections wait in the stack's backlog.
            if let Some(h) = ctx.room().then(|| ctx.stack.tcp_accept(self.tcp)).flatten() {
                self.pending = self.adopt(ctx, h);
                continue;
            }
            if !self.k_readable {
                return true;
            }
            let Some(k) = &self.kernel else {
                return true;
            };
            match sys::accept(k.as_raw_fd(), false) {
                Ok((fd, peer)) => {
                    let local = sys::local_addr(&fd);
                    if let (Some(local), Some(remote)) = (local, peer) {
                        let a = Accepted {
                            id: 0,
                            local,
                            remote,
                        };
                        self.pending = Some(PendingAccept {
                            record: ListenRelay::record(&a),
                            fd,
                        });
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.k_readable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.k_readable = false,
            }
        }
    }

    /// A connection the stack accepted: a stream pair, the node end relayed, the
    /// program end ready to be passed.
    fn adopt(&self, ctx: &mut Ctx<'_>, h: TcpHandle) -> Option<PendingAccept> {
        let fail = |ctx: &mut Ctx<'_>| {
            ctx.stack.tcp_abort(h);
            ctx.stack.tcp_release(h);
            None
        };
        let (Some(local), Some((remote, _))) = (ctx.stack.tcp_local(h), ctx.stack.tcp_peer(h))
        else {
            return fail(ctx);
        };
        let Ok((mine, theirs)) = sys::socketpair(libc::SOCK_STREAM) else {
            return fail(ctx);
        };
        let Ok(ino) = sys::inode(theirs.as_raw_fd()) else {
            return fail(ctx);
        };
        let id = ctx.alloc();
        if ctx.register(&mine, id, 0).is_err() {
            return fail(ctx);
        }
        sys::set_buffers(mine.as_raw_fd(), PAIR_BUFFER);
        apply_opts(ctx.stack, h, self.opts);
        let (local, remote) = (program_form(self.v6, local), program_form(self.v6, remote));
        ctx.adds.push((
            id,
            Entry {
                sock: Some(ino),
                kind: Kind::Stream(StreamRelay::new(mine, h, None, false, false)),
            },
        ));
        ctx.socks.insert(
            ino,
            SockRec {
                kind: SockKind::Stream,
                v6: self.v6,
                local,
                remote: Some(remote),
                listening: false,
                entry: Some(id),
                outcome: super::Outcome::None,
            },
        );
        Some(PendingAccept {
            record: ListenRelay::record(&Accepted {
                id: ino,
                local,
                remote,
            }),
            fd: theirs,
        })
    }

    pub fn release(self, stack: &mut Stack, epoll: &sys::Epoll) {
        if let Some(k) = &self.kernel {
            epoll.delete(k.as_raw_fd());
        }
        stack.tcp_release(self.tcp);
    }
}
