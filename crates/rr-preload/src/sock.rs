//! Socket lifecycle decisions: which sockets go to the router, and turning a kernel
//! socket into a router one (bind, connect, listen, accept, names, options).
//!
//! What it is: safe code over [`crate::table`] and [`crate::ctl`]. Each function either
//! finishes the call ([`Act::Done`]), or says "let libc do it" ([`Act::Pass`]), or fails
//! with an errno. Conversion keeps the program's fd number: the program end of a new
//! AF_UNIX pair is `dup3`'d onto it (which closes the kernel socket in this process),
//! with the original `O_NONBLOCK` and `FD_CLOEXEC`.
//!
//! What it is not: pointer handling (the `hooks` module) or datagram framing
//! ([`crate::dgram`]).

use crate::ctl::{self, Ctl, CtlError};
use crate::sys::{self, Errno};
use crate::table::{self, Class, Conn, Entry, EpollReg, State};
use rr_ctl::exec::{Accepted, ExecRequest, ExecResponse, SockKind, MAX_ACCEPT_RECORD};
use std::net::{IpAddr, SocketAddr};

/// How long `SO_ERROR` waits for a pending connect (about Linux's SYN retry budget).
const CONNECT_WAIT_MS: u32 = 75_000;

/// What a hook does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Act<T> {
    /// The shim finished the call with this result.
    Done(T),
    /// Call the next (libc) definition with the original arguments.
    Pass,
}

/// The IPv4 address an IPv4-mapped IPv6 address stands for; others unchanged.
pub fn unmap_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Destinations that always stay with the kernel, without asking the node.
pub fn kernel_only(ip: IpAddr) -> bool {
    let ip = unmap_ip(ip);
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

/// Does the node carry `ip`? (`Route`, answers cached for [`crate::routes::TTL`]; any
/// failure = no, not cached.)
pub fn routed(ip: IpAddr) -> bool {
    if !crate::enabled() || kernel_only(ip) {
        return false;
    }
    let addr = unmap_ip(ip);
    if let Some(mine) = crate::routes::cached(addr) {
        return mine;
    }
    match ctl::ask(&ExecRequest::Route { addr }, &[]) {
        Ok(ExecResponse::Route { mine }) => {
            crate::routes::remember(addr, mine);
            mine
        }
        Ok(_) => false,
        Err(e) => {
            crate::debug(|| format!("route {addr}: node unreachable ({e:?}) → kernel"));
            false
        }
    }
}

/// Puts the program end `prog` of a new pair at `fd`, keeping `fd`'s `O_NONBLOCK`,
/// `FD_CLOEXEC` and `epoll` registrations; closes `prog`. Returns whether `fd` is
/// non-blocking.
pub fn install(fd: i32, prog: i32, flags: Flags) -> Result<bool, Errno> {
    let Flags { fl, fdfl } = flags;
    let cloexec = if fdfl & libc::FD_CLOEXEC != 0 {
        libc::O_CLOEXEC
    } else {
        0
    };
    // Timeouts the program set on its kernel socket hold for the pair end that takes its
    // place (iputils ping paces itself with SO_RCVTIMEO on a blocking socket).
    for opt in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
        sys::sys_copy_sockopt(fd, prog, opt);
    }
    // epoll keys a registration by open file and fd number: once `prog` takes the
    // number, the kernel socket's registrations would never fire again (or, when the node
    // holds a copy of the kernel socket, fire for it). So each one is deleted while the
    // kernel socket is still at `fd` and added again for the pair end (nginx registers
    // an upstream socket before it connects it).
    let regs = table::get(fd).map(|e| e.epoll).unwrap_or_default();
    for r in &regs {
        let _ = sys::sys_epoll_ctl(r.epfd, libc::EPOLL_CTL_DEL, fd, None);
    }
    let r = sys::sys_dup3(prog, fd, cloexec);
    sys::sys_close(prog);
    for reg in &regs {
        let ev = Some((reg.events, reg.data));
        if let Err(e) = sys::sys_epoll_ctl(reg.epfd, libc::EPOLL_CTL_ADD, fd, ev) {
            crate::debug(|| format!("fd {fd}: epoll {} not moved: errno {e}", reg.epfd));
        }
    }
    r?;
    let nonblock = fl & libc::O_NONBLOCK != 0;
    if nonblock {
        let now = sys::sys_fcntl(fd, libc::F_GETFL, 0)?;
        sys::sys_fcntl(fd, libc::F_SETFL, now | libc::O_NONBLOCK)?;
    }
    Ok(nonblock)
}

/// A successful `epoll_ctl(epfd, op, fd, event)` by the program: keeps the registrations
/// of an undecided socket for [`install`]. `event` = (events, data).
pub fn epoll_noted(fd: i32, epfd: i32, op: i32, event: Option<(u32, u64)>) {
    table::update(fd, |e| {
        if e.state != State::Undecided {
            return;
        }
        e.epoll.retain(|r| r.epfd != epfd);
        if let (libc::EPOLL_CTL_ADD | libc::EPOLL_CTL_MOD, Some((events, data))) = (op, event) {
            e.epoll.push(EpollReg { epfd, events, data });
        }
    });
}

/// A socket's file status and descriptor flags.
#[derive(Clone, Copy)]
pub struct Flags {
    fl: i32,
    fdfl: i32,
}

/// Reads `fd`'s flags. Must come before the op that hands the kernel socket to the node:
/// the node makes its copy non-blocking, and file status flags are shared by every
/// descriptor of one open file.
pub fn flags(fd: i32) -> Result<Flags, Errno> {
    Ok(Flags {
        fl: sys::sys_fcntl(fd, libc::F_GETFL, 0)?,
        fdfl: sys::sys_fcntl(fd, libc::F_GETFD, 0)?,
    })
}

/// [`flags`], or the pair (`prog`, `node`) made for the op closed and the error.
pub fn flags_or_close(fd: i32, prog: i32, node: i32) -> Result<Flags, Errno> {
    flags(fd).inspect_err(|_| {
        sys::sys_close(prog);
        sys::sys_close(node);
    })
}

/// A new AF_UNIX pair (program end, node end) and the program end's inode.
fn pair(ty: i32) -> Result<(i32, i32, u64), Errno> {
    let (a, b) = sys::sys_socketpair(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC)?;
    match sys::sys_ino(a) {
        Ok(id) => Ok((a, b, id)),
        Err(e) => {
            sys::sys_close(a);
            sys::sys_close(b);
            Err(e)
        }
    }
}

/// The local address a connect asks for: an earlier router bind or a wildcard with a port.
fn connect_local(e: &Entry) -> Option<SocketAddr> {
    e.bound
        .filter(|a| a.port() != 0 || !a.ip().is_unspecified())
}

/// `connect` on a managed socket.
pub fn connect(fd: i32, remote: SocketAddr) -> Result<Act<i32>, Errno> {
    let Some(e) = table::get(fd) else {
        return Ok(Act::Pass);
    };
    match (&e.state, e.kind) {
        (State::Stream { id, conn, .. }, _) => match conn {
            Conn::Done => Err(libc::EISCONN),
            // Like Linux: the first connect after the handshake ends reports its
            // outcome (0 or the error), later ones EISCONN; EALREADY while pending.
            Conn::Pending => match status(fd, *id, 0)? {
                0 => Ok(Act::Done(0)),
                err => Err(err),
            },
        },
        (State::Listener { .. }, _) => Err(libc::EINVAL),
        (State::Dgram { .. }, _) => crate::dgram::reconnect(fd, Some(remote)).map(Act::Done),
        (State::Undecided, SockKind::Stream) => connect_stream(fd, e, remote),
        (State::Undecided, _) => {
            if !routed(remote.ip()) {
                table::forget(fd);
                crate::debug(|| format!("connect fd {fd} {remote} → kernel"));
                return Ok(Act::Pass);
            }
            match crate::dgram::convert(fd, &e, Some(remote))? {
                true => Ok(Act::Done(0)),
                false => Ok(Act::Pass),
            }
        }
    }
}

fn connect_stream(fd: i32, e: Entry, remote: SocketAddr) -> Result<Act<i32>, Errno> {
    let remote = sys::unmap(remote);
    if kernel_only(remote.ip()) || !crate::enabled() {
        table::forget(fd);
        crate::debug(|| format!("connect fd {fd} {remote} → kernel"));
        return Ok(Act::Pass);
    }
    let (prog, node, id) = pair(libc::SOCK_STREAM)?;
    let op = ExecRequest::Connect {
        id,
        v6: e.v6,
        local: connect_local(&e),
        remote,
        opts: e.opts,
    };
    let fl = flags_or_close(fd, prog, node)?;
    let started = Ctl::start(&op, &[node]);
    sys::sys_close(node);
    let first = started.and_then(|mut c| c.answer().map(|a| (c, a)));
    let (mut c, local) = match first {
        Ok((c, ExecResponse::Opened { local })) => (c, local),
        Ok((_, ExecResponse::Failed { errno, message })) => {
            sys::sys_close(prog);
            crate::debug(|| format!("connect fd {fd} {remote} → router: failed: {message}"));
            return Err(errno);
        }
        Ok((_, ExecResponse::Kernel)) | Err(CtlError::Unreachable) => {
            sys::sys_close(prog);
            table::forget(fd);
            crate::debug(|| format!("connect fd {fd} {remote} → kernel"));
            return Ok(Act::Pass);
        }
        Err(err) => {
            sys::sys_close(prog);
            return Err(ctl::errno_of(err));
        }
        Ok(_) => {
            sys::sys_close(prog);
            return Err(libc::EIO);
        }
    };
    let nonblock = install(fd, prog, fl)?;
    let mut ne = e;
    ne.state = State::Stream {
        id,
        local,
        remote,
        conn: Conn::Pending,
    };
    table::set(fd, ne);
    crate::debug(|| format!("connect fd {fd} {remote} → router (from {local})"));
    if nonblock {
        return Err(libc::EINPROGRESS);
    }
    // A blocking connect waits for the handshake, as long as SO_ERROR would, plus grace.
    let waited = c
        .expect_wait(CONNECT_WAIT_MS.into(), ctl::GRACE_MS)
        .and_then(|()| c.answer_interruptible());
    match waited {
        Ok(ExecResponse::Connected { local, .. }) => {
            finish(fd, Some(local));
            Ok(Act::Done(0))
        }
        Ok(ExecResponse::Failed { errno, .. }) => {
            finish(fd, None);
            Err(errno)
        }
        // Like a blocking connect interrupted on Linux: the handshake goes on (the node
        // keeps it after this connection closes); a later connect says EALREADY until it
        // ends, SO_ERROR tells how it ended.
        Err(CtlError::Interrupted) => Err(libc::EINTR),
        Err(CtlError::Timeout) => {
            finish(fd, None);
            Err(libc::ETIMEDOUT)
        }
        Ok(_) | Err(_) => {
            finish(fd, None);
            Err(libc::ECONNABORTED)
        }
    }
}

/// Marks a connect as settled (and records the final local address on success).
fn finish(fd: i32, local: Option<SocketAddr>) {
    table::update(fd, |e| {
        if let State::Stream { conn, local: l, .. } = &mut e.state {
            *conn = Conn::Done;
            if let Some(a) = local {
                *l = a;
            }
        }
    });
}

/// The node's word on a pending connect.
enum Outcome {
    /// Established, from this local address.
    Connected(SocketAddr),
    /// Failed with this errno (or the node could not say).
    Failed(i32),
    /// Still under way after the wait.
    Pending,
}

/// Asks the node how connect `id` is going, waiting up to `wait_ms`; settles nothing.
fn outcome(id: u64, wait_ms: u32) -> Outcome {
    match ctl::ask_waiting(&ExecRequest::Status { id, wait_ms }, wait_ms) {
        Ok(ExecResponse::Connected { local, .. }) => Outcome::Connected(local),
        Ok(ExecResponse::Failed { errno, .. }) => Outcome::Failed(errno),
        Ok(ExecResponse::Pending) => Outcome::Pending,
        Ok(_) => Outcome::Failed(libc::EIO),
        Err(e) => Outcome::Failed(ctl::errno_of(e)),
    }
}

/// Asks the node how a pending connect ended: 0 = connected, else the errno (reported
/// once: the connect is settled afterwards). `EALREADY` while still pending.
fn status(fd: i32, id: u64, wait_ms: u32) -> Result<i32, Errno> {
    match outcome(id, wait_ms) {
        Outcome::Connected(local) => {
            finish(fd, Some(local));
            Ok(0)
        }
        Outcome::Failed(errno) => {
            finish(fd, None);
            Ok(errno)
        }
        Outcome::Pending if wait_ms == 0 => Err(libc::EALREADY),
        Outcome::Pending => {
            finish(fd, None);
            Ok(libc::ETIMEDOUT)
        }
    }
}

/// `getsockopt(SO_ERROR)` on a managed socket: the truth about a pending connect (may
/// wait for it), 0 otherwise.
pub fn so_error(fd: i32) -> i32 {
    match table::get(fd).map(|e| e.state) {
        Some(State::Stream {
            id,
            conn: Conn::Pending,
            ..
        }) => status(fd, id, CONNECT_WAIT_MS).unwrap_or(0),
        _ => 0,
    }
}

/// `bind` on a managed socket that is still a kernel socket.
pub fn bind(fd: i32, addr: SocketAddr) -> Result<Act<i32>, Errno> {
    let Some(e) = table::get(fd).filter(|e| e.state == State::Undecided) else {
        return Ok(Act::Pass);
    };
    let ip = addr.ip();
    if ip.is_unspecified() {
        sys::sys_bind(fd, addr, e.v6)?;
        let actual = sys::sys_getsockname(fd).unwrap_or(addr);
        table::update(fd, |e| {
            e.bound = Some(actual);
            e.kernel_bound = true;
        });
        crate::debug(|| {
            format!(
                "bind fd {fd} {actual} → kernel + router ({:?}, port {})",
                e.kind,
                addr.port()
            )
        });
        if e.kind == SockKind::Datagram && addr.port() != 0 {
            // A UDP server on a wildcard port hears DN42 clients before it sends
            // anything: it becomes a router socket now (its kernel socket goes along, so
            // the host's clients still reach it). Without a node it stays the kernel's.
            if let Some(ne) = table::get(fd) {
                let r = crate::dgram::convert(fd, &ne, None);
                crate::debug(|| format!("bind fd {fd}: {r:?}"));
            }
        }
        return Ok(Act::Done(0));
    }
    if !routed(ip) {
        table::forget(fd);
        crate::debug(|| format!("bind fd {fd} {addr} → kernel"));
        return Ok(Act::Pass);
    }
    let addr = sys::unmap(addr);
    crate::debug(|| format!("bind fd {fd} {addr} → router"));
    let mut ne = e;
    ne.bound = Some(addr);
    table::set(fd, ne.clone());
    if ne.kind != SockKind::Stream {
        // A datagram socket bound to a router address is a router socket from now on.
        return match crate::dgram::convert(fd, &ne, None)? {
            true => Ok(Act::Done(0)),
            false => Err(libc::EADDRNOTAVAIL),
        };
    }
    Ok(Act::Done(0))
}

/// `listen` on a managed socket.
pub fn listen(fd: i32, backlog: i32) -> Result<Act<i32>, Errno> {
    let Some(e) = table::get(fd) else {
        return Ok(Act::Pass);
    };
    match (&e.state, e.kind, e.bound) {
        (State::Listener { .. }, _, _) => Ok(Act::Done(0)),
        (State::Undecided, SockKind::Stream, Some(local)) => {
            let wildcard = e.kernel_bound;
            if wildcard {
                sys::sys_listen(fd, backlog)?;
            }
            let (prog, node, id) = pair(libc::SOCK_SEQPACKET)?;
            let op = ExecRequest::Listen {
                id,
                v6: e.v6,
                local,
                backlog: u32::try_from(backlog).unwrap_or(0),
                opts: e.opts,
            };
            let fl = flags_or_close(fd, prog, node)?;
            let fds: &[i32] = if wildcard { &[node, fd] } else { &[node] };
            let ans = ctl::ask(&op, fds);
            sys::sys_close(node);
            match ans {
                Ok(ExecResponse::Opened { local }) => {
                    install(fd, prog, fl)?;
                    let mut ne = e;
                    ne.state = State::Listener { id, local };
                    table::set(fd, ne);
                    crate::debug(|| format!("listen fd {fd} {local} → router"));
                    Ok(Act::Done(0))
                }
                Ok(ExecResponse::Failed { errno, message }) if !wildcard => {
                    sys::sys_close(prog);
                    crate::debug(|| format!("listen fd {fd} {local}: {message}"));
                    Err(errno)
                }
                other => {
                    sys::sys_close(prog);
                    table::forget(fd);
                    crate::debug(|| format!("listen fd {fd} {local} → kernel ({other:?})"));
                    if wildcard {
                        Ok(Act::Done(0))
                    } else {
                        Err(libc::EADDRNOTAVAIL)
                    }
                }
            }
        }
        _ => {
            table::forget(fd);
            Ok(Act::Pass)
        }
    }
}

/// One accepted connection: the new fd, the peer, and whether the listener is AF_INET6.
pub struct AcceptedFd {
    pub fd: i32,
    pub remote: SocketAddr,
    pub v6: bool,
}

/// `accept4` on a router listener: one record + one descriptor from the node.
pub fn accept(fd: i32, flags: i32) -> Result<AcceptedFd, Errno> {
    let Some(e) = table::get(fd) else {
        return Err(libc::EBADF);
    };
    let rflags = if flags & libc::SOCK_CLOEXEC != 0 {
        libc::MSG_CMSG_CLOEXEC
    } else {
        0
    };
    let mut buf = [0u8; MAX_ACCEPT_RECORD];
    let (n, got) = sys::sys_recv_with_fd(fd, &mut buf, rflags)?;
    let Some(nfd) = got else {
        return Err(if n == 0 {
            libc::EINVAL
        } else {
            libc::ECONNABORTED
        });
    };
    let acc: Accepted = match serde_json::from_slice(buf.get(..n).unwrap_or(&[])) {
        Ok(a) => a,
        Err(_) => {
            sys::sys_close(nfd);
            return Err(libc::ECONNABORTED);
        }
    };
    if flags & libc::SOCK_NONBLOCK != 0 {
        let fl = sys::sys_fcntl(nfd, libc::F_GETFL, 0).unwrap_or(0);
        let _ = sys::sys_fcntl(nfd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    if acc.id != 0 {
        let mut ne = Entry::new(e.v6, SockKind::Stream, false);
        ne.opts = e.opts;
        ne.state = State::Stream {
            id: acc.id,
            local: acc.local,
            remote: acc.remote,
            conn: Conn::Done,
        };
        table::set(nfd, ne);
    }
    crate::debug(|| format!("accept fd {fd} → fd {nfd} from {}", acc.remote));
    Ok(AcceptedFd {
        fd: nfd,
        remote: acc.remote,
        v6: e.v6,
    })
}

/// `getsockname` from the notes; `None` = ask the kernel.
pub fn sockname(fd: i32) -> Option<(SocketAddr, bool)> {
    let e = table::get(fd)?;
    let a = match e.state {
        State::Stream { local, .. }
        | State::Dgram { local, .. }
        | State::Listener { local, .. } => local,
        State::Undecided if !e.kernel_bound => e.bound?,
        State::Undecided => return None,
    };
    Some((a, e.v6))
}

/// `getpeername` from the notes; `Ok(None)` = ask the kernel.
pub fn peername(fd: i32) -> Result<Option<(SocketAddr, bool)>, Errno> {
    let Some(e) = table::get(fd) else {
        return Ok(None);
    };
    match e.state {
        State::Stream {
            remote, conn, id, ..
        } => {
            if conn == Conn::Pending {
                // Only SO_ERROR and connect report (and so settle) a failed connect, as
                // Linux's getpeername leaves sk_err alone. Success has nothing to lose:
                // it is settled here (SO_ERROR says 0 either way).
                match outcome(id, 0) {
                    Outcome::Connected(local) => finish(fd, Some(local)),
                    Outcome::Failed(_) | Outcome::Pending => return Err(libc::ENOTCONN),
                }
            }
            Ok(Some((remote, e.v6)))
        }
        State::Dgram {
            remote: Some(r), ..
        } => Ok(Some((r, e.v6))),
        State::Dgram { .. } | State::Listener { .. } => Err(libc::ENOTCONN),
        State::Undecided => Ok(None),
    }
}

/// At load time: router listeners and datagram sockets inherited across `execve` are
/// adopted before the program's first call on them, which may be `accept` or `recvfrom`
/// rather than a name call (nginx's binary upgrade hands its listeners to the new
/// image). Only AF_UNIX `SOCK_SEQPACKET` descriptors can be such sockets, so only those
/// are asked about; inherited stream sockets carry raw bytes and work as they are (the
/// name calls adopt them when asked).
pub fn adopt_inherited() {
    if !crate::enabled() {
        return;
    }
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        let seqpacket = sys::sys_sockopt_int(fd, libc::SO_DOMAIN) == Ok(libc::AF_UNIX)
            && sys::sys_sockopt_int(fd, libc::SO_TYPE) == Ok(libc::SOCK_SEQPACKET);
        if seqpacket {
            adopt(fd);
        }
    }
}

/// After `execve` the notes are gone: ask the node about an inherited AF_UNIX socket
/// and adopt it if the node knows it.
pub fn adopt(fd: i32) -> bool {
    if !crate::enabled() || table::is_ours(fd) {
        return false;
    }
    let Ok(id) = sys::sys_ino(fd) else {
        return false;
    };
    match ctl::ask(&ExecRequest::Describe { id }, &[]) {
        Ok(ExecResponse::Socket {
            kind,
            v6,
            local,
            remote,
            listening,
        }) => {
            let mut e = Entry::new(v6, kind, false);
            e.state = match (kind, listening, remote) {
                (SockKind::Stream, true, _) => State::Listener { id, local },
                (SockKind::Stream, false, Some(remote)) => State::Stream {
                    id,
                    local,
                    remote,
                    conn: Conn::Done,
                },
                (SockKind::Stream, false, None) => return false,
                (_, _, remote) => State::Dgram { id, local, remote },
            };
            table::set(fd, e);
            crate::debug(|| format!("adopted inherited fd {fd} ({kind:?} {local})"));
            true
        }
        _ => false,
    }
}

/// After `close` of a router listener or datagram socket: tells the node, which frees
/// the port at once unless another descriptor of it is still open (a forked child's),
/// so a program that closes and binds the same port again finds it free.
pub fn closed(e: &Entry) {
    let id = match e.state {
        State::Listener { id, .. } | State::Dgram { id, .. } => id,
        State::Undecided | State::Stream { .. } => return,
    };
    let r = ctl::ask(&ExecRequest::Close { id }, &[]);
    crate::debug(|| format!("close {id}: {r:?}"));
}

/// A `getsockopt` answer the shim makes up for a router socket.
#[derive(Debug, PartialEq, Eq)]
pub enum OptAnswer {
    Int(i32),
    /// `TCP_INFO` with only `tcpi_state` set.
    TcpInfo(u8),
    /// A value of length 0: `IP_OPTIONS` of a connection that carries none (sshd drops
    /// connections whose `IP_OPTIONS` are not empty: source routing).
    Empty,
    /// Ask the real call on the AF_UNIX descriptor.
    Native,
}

/// `getsockopt` on a converted socket.
pub fn getsockopt(fd: i32, level: i32, name: i32) -> Option<OptAnswer> {
    let e = table::get(fd)?;
    if e.state == State::Undecided {
        return None;
    }
    let proto = match (e.kind, e.v6) {
        (SockKind::Stream, _) => libc::IPPROTO_TCP,
        (SockKind::Datagram, _) => libc::IPPROTO_UDP,
        (SockKind::Icmp, false) => libc::IPPROTO_ICMP,
        (SockKind::Icmp, true) => libc::IPPROTO_ICMPV6,
    };
    let ty = if e.kind == SockKind::Stream {
        libc::SOCK_STREAM
    } else {
        libc::SOCK_DGRAM
    };
    let listening = matches!(e.state, State::Listener { .. });
    let a = match (level, name) {
        (libc::SOL_SOCKET, libc::SO_ERROR) => OptAnswer::Int(so_error(fd)),
        (libc::SOL_SOCKET, libc::SO_TYPE) => OptAnswer::Int(ty),
        (libc::SOL_SOCKET, libc::SO_DOMAIN) => {
            OptAnswer::Int(if e.v6 { libc::AF_INET6 } else { libc::AF_INET })
        }
        (libc::SOL_SOCKET, libc::SO_PROTOCOL) => OptAnswer::Int(proto),
        (libc::SOL_SOCKET, libc::SO_ACCEPTCONN) => OptAnswer::Int(i32::from(listening)),
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => OptAnswer::Int(i32::from(e.opts.keepalive)),
        (libc::SOL_SOCKET, libc::SO_REUSEADDR | libc::SO_REUSEPORT) => {
            OptAnswer::Int(i32::from(e.opts.reuse))
        }
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => OptAnswer::Int(i32::from(e.opts.nodelay)),
        (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => OptAnswer::Int(1380),
        (libc::IPPROTO_TCP, libc::TCP_INFO) => OptAnswer::TcpInfo(match e.state {
            State::Listener { .. } => 10, // TCP_LISTEN
            State::Stream {
                conn: Conn::Pending,
                ..
            } => 2, // TCP_SYN_SENT
            _ => 1,                       // TCP_ESTABLISHED
        }),
        (libc::IPPROTO_IP, libc::IP_OPTIONS) => OptAnswer::Empty,
        (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) => OptAnswer::Int(i32::from(e.opts.v6only)),
        (libc::IPPROTO_IP, libc::IP_RECVTTL) | (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT) => {
            OptAnswer::Int(i32::from(e.recv_ttl))
        }
        _ => OptAnswer::Native,
    };
    Some(a)
}

/// What `setsockopt` on a managed socket does after the notes are taken.
#[derive(Debug, PartialEq, Eq)]
pub enum SetOpt {
    /// Still a kernel socket: apply it there.
    Kernel,
    /// A socket-level option of a router socket: apply it to the AF_UNIX end, swallow
    /// errors other than `EBADF`.
    Unix,
    /// Protocol-level option of a router socket: accepted, nothing to do.
    Accept,
}

/// `setsockopt` on a managed socket: records what the node needs to know.
pub fn setsockopt(fd: i32, level: i32, name: i32, value: Option<i32>) -> SetOpt {
    let Some(e) = table::get(fd) else {
        return SetOpt::Kernel;
    };
    if let Some(v) = value {
        let on = v != 0;
        table::update(fd, |e| match (level, name) {
            (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => e.opts.keepalive = on,
            (libc::SOL_SOCKET, libc::SO_REUSEADDR | libc::SO_REUSEPORT) => e.opts.reuse = on,
            (libc::IPPROTO_TCP, libc::TCP_NODELAY) => e.opts.nodelay = on,
            (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) => e.opts.v6only = on,
            (libc::IPPROTO_IP, libc::IP_RECVTTL)
            | (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT) => e.recv_ttl = on,
            _ => {}
        });
    }
    match (e.class(), level) {
        (Class::Undecided | Class::None, _) => SetOpt::Kernel,
        (_, libc::SOL_SOCKET) => SetOpt::Unix,
        _ => SetOpt::Accept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_only_addresses() {
        for a in [
            "127.0.0.1",
            "::1",
            "0.0.0.0",
            "::",
            "224.0.0.5",
            "ff02::1",
            "255.255.255.255",
            "::ffff:127.0.0.1",
        ] {
            assert!(kernel_only(a.parse().unwrap()), "{a}");
        }
        for a in [
            "172.20.0.1",
            "fd00::1",
            "10.99.0.1",
            "::ffff:172.20.0.1",
            "fe80::1",
        ] {
            assert!(!kernel_only(a.parse().unwrap()), "{a}");
        }
    }
}
