//! UDP and ICMP sockets through the router: conversion, and the [`DgramHeader`] framing
//! on every send and receive.
//!
//! What it is: once converted, a datagram socket is the program end of a
//! `SOCK_SEQPACKET` pair; every record is a 28-byte header plus the payload. Sends
//! prepend the header as a separate iovec (the payload is never copied by the shim);
//! receives scatter the header into a shim buffer and the payload straight into the
//! program's buffers, so `MSG_PEEK`, `MSG_TRUNC` and `MSG_DONTWAIT` are the kernel's own.
//!
//! What it is not: pointer handling for `msghdr`/`mmsghdr` (the `hooks` module does it).

use crate::ctl::{self, CtlError};
use crate::sock::install;
use crate::sys::{self, Errno};
use crate::table::{self, Entry, State};
use libc::iovec;
use rr_ctl::exec::{DgramHeader, ExecRequest, ExecResponse, SockKind, DGRAM_HEADER_LEN};
use std::net::SocketAddr;

/// Turns a managed kernel datagram socket into a router one. `Ok(false)` = the node
/// does not want it (or is unreachable): the socket stays the kernel's and is forgotten.
pub fn convert(fd: i32, e: &Entry, remote: Option<SocketAddr>) -> Result<bool, Errno> {
    let remote = remote.map(sys::unmap);
    let (prog, node) =
        sys::sys_socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC)?;
    let id = match sys::sys_ino(prog) {
        Ok(id) => id,
        Err(err) => {
            sys::sys_close(prog);
            sys::sys_close(node);
            return Err(err);
        }
    };
    // A router address binding travels alone; otherwise the kernel socket goes along,
    // bound to a wildcard, so the node also relays the host's side through it. The ICMP
    // placeholder is a UDP socket and never goes along.
    let mut with_kernel = false;
    let local = match e.bound {
        Some(a) if !e.kernel_bound => a,
        _ if e.kind == SockKind::Icmp => sys::wildcard(e.v6, 0),
        _ => {
            if !e.kernel_bound {
                if let Err(err) = sys::sys_bind(fd, sys::wildcard(e.v6, 0), e.v6) {
                    sys::sys_close(prog);
                    sys::sys_close(node);
                    return Err(err);
                }
            }
            with_kernel = true;
            sys::sys_getsockname(fd).unwrap_or_else(|_| sys::wildcard(e.v6, 0))
        }
    };
    let op = ExecRequest::Datagram {
        id,
        kind: e.kind,
        v6: e.v6,
        local,
        remote,
        opts: e.opts,
    };
    let fl = crate::sock::flags_or_close(fd, prog, node)?;
    let fds: &[i32] = if with_kernel { &[node, fd] } else { &[node] };
    let ans = ctl::ask(&op, fds);
    sys::sys_close(node);
    match ans {
        Ok(ExecResponse::Opened { local }) => {
            install(fd, prog, fl)?;
            let mut ne = e.clone();
            ne.state = State::Dgram { id, local, remote };
            table::set(fd, ne);
            crate::debug(|| format!("datagram fd {fd} ({:?}) {local} → router", e.kind));
            Ok(true)
        }
        Ok(ExecResponse::Failed { errno, message }) => {
            sys::sys_close(prog);
            crate::debug(|| format!("datagram fd {fd}: {message}"));
            Err(errno)
        }
        Ok(ExecResponse::Kernel) | Err(CtlError::Unreachable) => {
            sys::sys_close(prog);
            table::forget(fd);
            crate::debug(|| format!("datagram fd {fd} → kernel"));
            Ok(false)
        }
        Err(err) => {
            sys::sys_close(prog);
            Err(ctl::errno_of(err))
        }
        Ok(_) => {
            sys::sys_close(prog);
            Err(libc::EIO)
        }
    }
}

/// `connect` again on a router datagram socket (`None` = `AF_UNSPEC`).
pub fn reconnect(fd: i32, remote: Option<SocketAddr>) -> Result<i32, Errno> {
    let Some(State::Dgram { id, .. }) = table::get(fd).map(|e| e.state) else {
        return Err(libc::EBADF);
    };
    let remote = remote.map(sys::unmap);
    match ctl::ask(&ExecRequest::Reconnect { id, remote }, &[]) {
        Ok(ExecResponse::Opened { local }) => {
            table::update(fd, |e| {
                e.state = State::Dgram { id, local, remote };
            });
            Ok(0)
        }
        Ok(ExecResponse::Failed { errno, .. }) => Err(errno),
        Ok(_) => Err(libc::EIO),
        Err(e) => Err(ctl::errno_of(e)),
    }
}

/// Sends one datagram (the program's iovecs) on a router datagram socket; `dest: None`
/// = the connected peer. Returns the payload bytes sent.
pub fn send(fd: i32, dest: Option<SocketAddr>, iov: &[iovec], flags: i32) -> Result<usize, Errno> {
    if dest.is_none() {
        match table::get(fd).map(|e| e.state) {
            Some(State::Dgram {
                remote: Some(_), ..
            }) => {}
            Some(State::Dgram { .. }) => return Err(libc::EDESTADDRREQ),
            _ => return Err(libc::EBADF),
        }
    }
    let hdr = DgramHeader {
        addr: dest.map(sys::unmap),
        ttl: 0,
    }
    .encode();
    let mut v: Vec<iovec> = Vec::with_capacity(iov.len() + 1);
    v.push(sys::iov_of(&hdr));
    v.extend_from_slice(iov);
    // Datagram sockets never raise SIGPIPE; MSG_CONFIRM/MSG_MORE mean nothing here.
    let flags = (flags & (libc::MSG_DONTWAIT)) | libc::MSG_NOSIGNAL;
    let n = sys::sys_sendmsg_iov(fd, &v, flags)?;
    Ok(n.saturating_sub(DGRAM_HEADER_LEN))
}

/// One received datagram.
#[derive(Debug)]
pub struct Received {
    /// Payload length: copied bytes, or the full length with `MSG_TRUNC` in the flags.
    pub len: usize,
    /// Where it came from (the connected peer when the header names none).
    pub from: Option<SocketAddr>,
    /// Arrival TTL / hop limit, 0 = unknown.
    pub ttl: u8,
    /// `msg_flags` (`MSG_TRUNC` when the program's buffer was short).
    pub flags: i32,
    /// The socket is AF_INET6 (addresses are reported v4-mapped).
    pub v6: bool,
    /// `IP_RECVTTL` / `IPV6_RECVHOPLIMIT` is on.
    pub want_ttl: bool,
}

/// Receives one datagram into the program's iovecs. `MSG_ERRQUEUE` finds the error
/// queue empty (`EAGAIN`): the router reports no ICMP errors or send timestamps there.
pub fn recv(fd: i32, iov: &[iovec], flags: i32) -> Result<Received, Errno> {
    if flags & libc::MSG_ERRQUEUE != 0 {
        return Err(libc::EAGAIN);
    }
    let e = table::get(fd).ok_or(libc::EBADF)?;
    let State::Dgram { remote, .. } = e.state else {
        return Err(libc::EBADF);
    };
    let hdr = [0u8; DGRAM_HEADER_LEN];
    let mut v: Vec<iovec> = Vec::with_capacity(iov.len() + 1);
    v.push(sys::iov_of(&hdr));
    v.extend_from_slice(iov);
    let flags = flags & (libc::MSG_PEEK | libc::MSG_TRUNC | libc::MSG_DONTWAIT | libc::MSG_WAITALL);
    let (n, mflags) = sys::sys_recvmsg_iov(fd, &v, flags)?;
    let h = if n >= DGRAM_HEADER_LEN {
        DgramHeader::decode(&hdr)
    } else {
        None
    };
    Ok(Received {
        len: n.saturating_sub(DGRAM_HEADER_LEN),
        from: h.and_then(|h| h.addr).or(remote),
        ttl: h.map_or(0, |h| h.ttl),
        flags: mflags,
        v6: e.v6,
        want_ttl: e.recv_ttl,
    })
}

/// `FIONREAD` on a router datagram socket: the next payload's length (0 if none).
pub fn pending_len(fd: i32) -> usize {
    let flags = libc::MSG_PEEK | libc::MSG_TRUNC | libc::MSG_DONTWAIT;
    match sys::sys_recvmsg_iov(fd, &[], flags) {
        Ok((n, _)) => n.saturating_sub(DGRAM_HEADER_LEN),
        Err(_) => 0,
    }
}
