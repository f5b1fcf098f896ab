//! The exported entry points: libc's socket, I/O and name functions, interposed.
//!
//! What it is: thin `extern "C"` functions with libc's names and signatures. Each one
//! first checks the fd's class with one atomic load and, for descriptors the shim does
//! not manage, tail-calls the next definition (`sys::real`). For managed ones it turns
//! pointers into Rust values, calls the safe logic in [`crate::sock`], [`crate::dgram`]
//! or [`crate::names`], and writes results back. Logic runs under `catch_unwind`
//! ([`guard`]) so nothing unwinds into C.
//!
//! What it is not: a place for decisions (those live in the safe modules), and not
//! complete: `select`/`poll`/`epoll_wait`/`fork` need no hooks, since the program's
//! descriptors are real ones (`epoll_ctl` is hooked only so that registrations made
//! before a socket is converted follow it to its AF_UNIX end).
//!
//! Variadic libc functions (`fcntl`, `ioctl`) are declared with one fixed extra
//! argument; on the System V x86-64 and AArch64 Linux ABIs that is how the callee sees
//! a single variadic argument.

use crate::dgram;
use crate::names::{self, Lookup};
use crate::sock::{self, Act, OptAnswer, SetOpt};
use crate::sys::{self, real, set_errno, Errno};
use crate::table::{self, Class};
use libc::{
    addrinfo, c_char, c_int, c_long, c_uint, c_ulong, c_void, hostent, iovec, mmsghdr, msghdr,
    size_t, sockaddr, socklen_t, ssize_t, timespec,
};
use rr_ctl::exec::{Family, SockKind};
use std::ffi::CStr;
use std::net::SocketAddr;

/// Runs hook logic; a panic (a bug) becomes `fail` with `EIO` instead of unwinding into C.
fn guard<R>(fail: R, f: impl FnOnce() -> R) -> R {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        set_errno(libc::EIO);
        fail
    })
}

/// Runs a hook's decision: its own result, the real call (`pass`), or -1 with errno.
fn decide(f: impl FnOnce() -> Result<Act<c_int>, Errno>, pass: impl FnOnce() -> c_int) -> c_int {
    match guard(Err(libc::EIO), f) {
        Ok(Act::Done(r)) => r,
        Ok(Act::Pass) => pass(),
        Err(e) => err(e),
    }
}

fn err(e: Errno) -> c_int {
    set_errno(e);
    -1
}

fn errs(e: Errno) -> ssize_t {
    set_errno(e);
    -1
}

/// The program's iovec array as a slice.
///
/// # Safety
/// `iov` must be null or point at `n` iovecs.
unsafe fn iovs<'a>(iov: *const iovec, n: usize) -> &'a [iovec] {
    if iov.is_null() || n == 0 {
        &[]
    } else {
        // SAFETY: per the caller.
        unsafe { std::slice::from_raw_parts(iov, n) }
    }
}

/// Writes an int socket option value like the kernel: truncated to `*len`.
///
/// # Safety
/// `val` writable for `*len` bytes, `len` valid (both may be null: EFAULT).
unsafe fn put_int(val: *mut c_void, len: *mut socklen_t, v: i32) -> c_int {
    if val.is_null() || len.is_null() {
        return err(libc::EFAULT);
    }
    // SAFETY: per the caller.
    unsafe {
        let n = (*len as usize).min(4);
        std::ptr::copy_nonoverlapping(v.to_ne_bytes().as_ptr(), val.cast::<u8>(), n);
        *len = n as socklen_t;
    }
    0
}

// ---------------------------------------------------------------- socket lifecycle

/// `socket(2)`: the kernel socket is made as asked; IP stream/datagram/ICMP sockets get
/// notes (undecided). An ICMP socket the kernel refuses gets a UDP placeholder.
#[no_mangle]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    // SAFETY: pass-through with the caller's arguments.
    let pass = || unsafe { real::socket(domain, ty, proto) };
    // A socket the shim does not manage: its number may carry stale notes of a
    // descriptor closed where the shim could not see it.
    let unmanaged = || {
        let fd = pass();
        if fd >= 0 {
            table::forget(fd);
        }
        fd
    };
    if !crate::enabled() || (domain != libc::AF_INET && domain != libc::AF_INET6) {
        return unmanaged();
    }
    let v6 = domain == libc::AF_INET6;
    let flags = ty & (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
    let kind = match (ty & !flags, proto) {
        (libc::SOCK_STREAM, 0 | libc::IPPROTO_TCP) => SockKind::Stream,
        (libc::SOCK_DGRAM, 0 | libc::IPPROTO_UDP) => SockKind::Datagram,
        (libc::SOCK_DGRAM, libc::IPPROTO_ICMP) if !v6 => SockKind::Icmp,
        (libc::SOCK_DGRAM, libc::IPPROTO_ICMPV6) if v6 => SockKind::Icmp,
        _ => return unmanaged(),
    };
    let mut fd = pass();
    let mut placeholder = false;
    if fd < 0 && kind == SockKind::Icmp && matches!(sys::errno(), libc::EACCES | libc::EPERM) {
        // SAFETY: plain arguments.
        fd = unsafe { real::socket(domain, libc::SOCK_DGRAM | flags, 0) };
        placeholder = true;
    }
    if fd >= 0 {
        guard((), || {
            table::set(fd, table::Entry::new(v6, kind, placeholder));
        });
    }
    fd
}

#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: pass-through with the caller's arguments.
    let pass = || unsafe { real::connect(fd, addr, len) };
    if !table::is_ours(fd) {
        return pass();
    }
    // SAFETY: the caller gives `len` readable bytes at `addr`.
    let family = unsafe { sys::read_family(addr, len) };
    if family == Some(libc::AF_UNSPEC) {
        if table::class(fd) == Class::Dgram {
            return guard(-1, || dgram::reconnect(fd, None).unwrap_or_else(err));
        }
        return pass();
    }
    // SAFETY: as above.
    let Some(remote) = (unsafe { sys::read_sockaddr(addr, len) }) else {
        return pass();
    };
    decide(|| sock::connect(fd, remote), pass)
}

#[no_mangle]
pub unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: pass-through with the caller's arguments.
    let pass = || unsafe { real::bind(fd, addr, len) };
    if table::class(fd) != Class::Undecided {
        return pass();
    }
    // SAFETY: the caller gives `len` readable bytes at `addr`.
    let Some(a) = (unsafe { sys::read_sockaddr(addr, len) }) else {
        return pass();
    };
    decide(|| sock::bind(fd, a), pass)
}

#[no_mangle]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    if !table::is_ours(fd) {
        // SAFETY: pass-through.
        return unsafe { real::listen(fd, backlog) };
    }
    // SAFETY: pass-through.
    decide(
        || sock::listen(fd, backlog),
        || unsafe { real::listen(fd, backlog) },
    )
}

/// accept on a router listener; the peer goes to `(addr, len)`.
unsafe fn accept_router(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    match guard(Err(libc::EIO), || sock::accept(fd, flags)) {
        Ok(a) => {
            // SAFETY: the caller's (addr, len) pair, as for accept(2).
            unsafe { sys::write_sockaddr(a.remote, a.v6, addr, len) };
            a.fd
        }
        Err(e) => err(e),
    }
}

#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    if table::class(fd) == Class::Listener {
        // SAFETY: forwarding the caller's pointers.
        return unsafe { accept_router(fd, addr, len, 0) };
    }
    // SAFETY: pass-through.
    unsafe { real::accept(fd, addr, len) }
}

#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    if table::class(fd) == Class::Listener {
        // SAFETY: forwarding the caller's pointers.
        return unsafe { accept_router(fd, addr, len, flags) };
    }
    // SAFETY: pass-through.
    unsafe { real::accept4(fd, addr, len, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    if table::class(fd) == Class::Dgram {
        return 0;
    }
    // SAFETY: pass-through.
    unsafe { real::shutdown(fd, how) }
}

// ---------------------------------------------------------------- descriptors

/// The body of `close` and `syscall(SYS_close)`: forgets the notes, closes with
/// `real_close`, tells the node about a closed listener or datagram socket.
fn close_with<R: PartialEq + From<i8>>(fd: c_int, real_close: impl FnOnce() -> R) -> R {
    let closing = table::get(fd);
    table::forget(fd);
    let r = real_close();
    if r == R::from(0) {
        if let Some(e) = closing {
            guard((), || sock::closed(&e));
        }
    }
    r
}

/// The notes after the kernel made `to` a duplicate of `fd` (dup, dup2, dup3, F_DUPFD).
fn noted_dup(fd: c_int, to: c_int) {
    if fd != to && (table::is_ours(fd) || table::is_ours(to)) {
        table::copy(fd, to);
    }
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    // SAFETY: pass-through.
    close_with(fd, || unsafe { real::close(fd) })
}

#[no_mangle]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    if flags & (libc::CLOSE_RANGE_CLOEXEC as c_int) == 0 {
        table::forget_range(first, last);
    }
    // SAFETY: pass-through.
    let r = unsafe { real::close_range(first, last, flags) };
    if r < 0 && sys::errno() == libc::ENOSYS {
        // SAFETY: the same call, straight to the kernel (libc without the wrapper).
        let r = unsafe {
            real::syscall(
                libc::SYS_close_range,
                first.into(),
                last.into(),
                flags.into(),
                0,
                0,
                0,
            )
        };
        return r as c_int;
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn closefrom(first: c_int) {
    table::forget_range(u32::try_from(first).unwrap_or(0), u32::MAX);
    // SAFETY: pass-through.
    unsafe { real::closefrom(first) }
}

#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: pass-through.
    let r = unsafe { real::dup(fd) };
    if r >= 0 {
        noted_dup(fd, r);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn dup2(fd: c_int, to: c_int) -> c_int {
    // SAFETY: pass-through.
    let r = unsafe { real::dup2(fd, to) };
    if r >= 0 {
        noted_dup(fd, to);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn dup3(fd: c_int, to: c_int, flags: c_int) -> c_int {
    // SAFETY: pass-through.
    let r = unsafe { real::dup3(fd, to, flags) };
    if r >= 0 {
        noted_dup(fd, to);
    }
    r
}

fn after_fcntl(fd: c_int, cmd: c_int, r: c_int) -> c_int {
    if r >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
        noted_dup(fd, r);
    }
    r
}

/// `epoll_ctl(2)`: registrations of an undecided socket are noted, so that they follow
/// it when it becomes a router socket (see [`sock::install`]).
#[no_mangle]
pub unsafe extern "C" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    event: *mut libc::epoll_event,
) -> c_int {
    // SAFETY: pass-through.
    let r = unsafe { real::epoll_ctl(epfd, op, fd, event) };
    if r == 0 && table::class(fd) == Class::Undecided {
        let ev = if event.is_null() {
            None
        } else {
            // SAFETY: a valid epoll_event per epoll_ctl(2) (packed on x86-64, so read
            // unaligned, by value).
            let e = unsafe { std::ptr::read_unaligned(event) };
            Some(({ e.events }, { e.u64 }))
        };
        guard((), || sock::epoll_noted(fd, epfd, op, ev));
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: pass-through of the caller's argument.
    after_fcntl(fd, cmd, unsafe { real::fcntl(fd, cmd, arg) })
}

#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: pass-through of the caller's argument.
    after_fcntl(fd, cmd, unsafe { real::fcntl64(fd, cmd, arg) })
}

#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, req: c_ulong, arg: *mut c_void) -> c_int {
    if req == libc::FIONREAD && table::class(fd) == Class::Dgram && !arg.is_null() {
        let n = guard(0, || dgram::pending_len(fd));
        // SAFETY: FIONREAD's argument is an int*.
        unsafe { *arg.cast::<c_int>() = c_int::try_from(n).unwrap_or(c_int::MAX) };
        return 0;
    }
    // SAFETY: pass-through.
    unsafe { real::ioctl(fd, req, arg) }
}

// ---------------------------------------------------------------- names and options

/// Shared body of getsockname/getpeername for descriptors the shim does not know:
/// an AF_UNIX socket inherited across `execve` may be a router socket.
unsafe fn maybe_adopt(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    f: unsafe fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int,
) -> Option<c_int> {
    if !crate::enabled() || addr.is_null() || len.is_null() {
        return None;
    }
    // SAFETY: `len` is valid per getsockname(2)'s contract.
    let room = unsafe { *len };
    // SAFETY: pass-through of the caller's pointers.
    let r = unsafe { f(fd, addr, len) };
    if r != 0 || room < 2 {
        return Some(r);
    }
    // SAFETY: the kernel wrote at least the family.
    let fam = unsafe { sys::read_family(addr, 2) };
    if fam == Some(libc::AF_UNIX) && guard(false, || sock::adopt(fd)) {
        // SAFETY: restore the caller's buffer size; the hook answers from the notes.
        unsafe { *len = room };
        return None;
    }
    Some(r)
}

#[no_mangle]
pub unsafe extern "C" fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    if !table::is_ours(fd) {
        // SAFETY: forwarding the caller's pointers.
        if let Some(r) = unsafe { maybe_adopt(fd, addr, len, real::getsockname) } {
            return r;
        }
        if !table::is_ours(fd) {
            // SAFETY: pass-through.
            return unsafe { real::getsockname(fd, addr, len) };
        }
    }
    match guard(None, || sock::sockname(fd)) {
        Some((a, v6)) => {
            // SAFETY: the caller's (addr, len) pair.
            unsafe { sys::write_sockaddr(a, v6, addr, len) };
            0
        }
        // SAFETY: pass-through.
        None => unsafe { real::getsockname(fd, addr, len) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    if !table::is_ours(fd) {
        // SAFETY: forwarding the caller's pointers.
        if let Some(r) = unsafe { maybe_adopt(fd, addr, len, real::getpeername) } {
            return r;
        }
        if !table::is_ours(fd) {
            // SAFETY: pass-through.
            return unsafe { real::getpeername(fd, addr, len) };
        }
    }
    match guard(Err(libc::EIO), || sock::peername(fd)) {
        Ok(Some((a, v6))) => {
            // SAFETY: the caller's (addr, len) pair.
            unsafe { sys::write_sockaddr(a, v6, addr, len) };
            0
        }
        // SAFETY: pass-through.
        Ok(None) => unsafe { real::getpeername(fd, addr, len) },
        Err(e) => err(e),
    }
}

#[no_mangle]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    // SAFETY: pass-through with the caller's arguments.
    let pass = || unsafe { real::getsockopt(fd, level, name, val, len) };
    let c = table::class(fd);
    if c == Class::None || c == Class::Undecided {
        return pass();
    }
    match guard(None, || sock::getsockopt(fd, level, name)) {
        // SAFETY: the caller's (val, len) pair.
        Some(OptAnswer::Int(v)) => unsafe { put_int(val, len, v) },
        Some(OptAnswer::TcpInfo(state)) => {
            if val.is_null() || len.is_null() {
                return err(libc::EFAULT);
            }
            // SAFETY: the caller's buffer holds `*len` bytes.
            unsafe {
                let n = (*len as usize).min(std::mem::size_of::<libc::tcp_info>());
                std::ptr::write_bytes(val.cast::<u8>(), 0, n);
                if n > 0 {
                    *val.cast::<u8>() = state;
                }
                *len = n as socklen_t;
            }
            0
        }
        Some(OptAnswer::Empty) => {
            if len.is_null() {
                return err(libc::EFAULT);
            }
            // SAFETY: the caller's length word.
            unsafe { *len = 0 };
            0
        }
        Some(OptAnswer::Native) | None => {
            let r = pass();
            if r < 0 && matches!(sys::errno(), libc::ENOPROTOOPT | libc::EOPNOTSUPP) {
                // SAFETY: the caller's (val, len) pair.
                return unsafe { put_int(val, len, 0) };
            }
            r
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    // SAFETY: pass-through with the caller's arguments.
    let pass = || unsafe { real::setsockopt(fd, level, name, val, len) };
    if !table::is_ours(fd) {
        return pass();
    }
    let value = if !val.is_null() && len as usize >= 4 {
        // SAFETY: `len` >= 4 readable bytes at `val`.
        Some(unsafe { std::ptr::read_unaligned(val.cast::<i32>()) })
    } else {
        None
    };
    match guard(SetOpt::Kernel, || sock::setsockopt(fd, level, name, value)) {
        SetOpt::Kernel => pass(),
        SetOpt::Unix => {
            let r = pass();
            if r < 0 && sys::errno() != libc::EBADF {
                0
            } else {
                r
            }
        }
        SetOpt::Accept => 0,
    }
}

// ---------------------------------------------------------------- datagrams

/// Decides a send with a destination on a managed socket: `true` = it goes through
/// the router (converting an undecided socket first).
fn send_via_router(fd: c_int, dest: Option<SocketAddr>) -> Result<bool, Errno> {
    match table::class(fd) {
        Class::Dgram => Ok(true),
        Class::Undecided => {
            let Some(e) = table::get(fd).filter(|e| e.kind != SockKind::Stream) else {
                return Ok(false);
            };
            let Some(d) = dest else { return Ok(false) };
            if !sock::routed(d.ip()) {
                return Ok(false);
            }
            dgram::convert(fd, &e, None)
        }
        _ => Ok(false),
    }
}

/// One send of `iov` to `dest` on a socket that may be ours; `None` = pass through.
/// `gso`: the message asks for UDP segmentation offload (a `UDP_SEGMENT` cmsg), which
/// the router does not do: `EIO`, the answer that makes QUIC stacks (quinn, ngtcp2)
/// turn GSO off and send one datagram per call.
fn send_common(
    fd: c_int,
    dest: Option<SocketAddr>,
    iov: &[iovec],
    flags: c_int,
    gso: bool,
) -> Option<ssize_t> {
    guard(Some(errs(libc::EIO)), || match send_via_router(fd, dest) {
        Ok(true) if gso => Some(errs(libc::EIO)),
        Ok(true) => Some(match dgram::send(fd, dest, iov, flags) {
            Ok(n) => n as ssize_t,
            Err(e) => errs(e),
        }),
        Ok(false) => None,
        Err(e) => Some(errs(e)),
    })
}

#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> ssize_t {
    let c = table::class(fd);
    if c == Class::Dgram || (c == Class::Undecided && !addr.is_null()) {
        // SAFETY: the caller gives `alen` readable bytes at `addr`.
        let dest = unsafe { sys::read_sockaddr(addr, alen) };
        let iov = [iovec {
            iov_base: buf as *mut c_void,
            iov_len: n,
        }];
        if let Some(r) = send_common(fd, dest, &iov, flags, false) {
            return r;
        }
    }
    // SAFETY: pass-through.
    unsafe { real::sendto(fd, buf, n, flags, addr, alen) }
}

#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    if table::class(fd) == Class::Dgram {
        let iov = [iovec {
            iov_base: buf as *mut c_void,
            iov_len: n,
        }];
        if let Some(r) = send_common(fd, None, &iov, flags, false) {
            return r;
        }
    }
    // SAFETY: pass-through.
    unsafe { real::send(fd, buf, n, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    if table::class(fd) == Class::Dgram {
        let iov = [iovec {
            iov_base: buf as *mut c_void,
            iov_len: n,
        }];
        if let Some(r) = send_common(fd, None, &iov, 0, false) {
            return r;
        }
    }
    // SAFETY: pass-through.
    unsafe { real::write(fd, buf, n) }
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    if table::class(fd) == Class::Dgram {
        // SAFETY: the caller's iovec array of `n` entries.
        let v = unsafe { iovs(iov, usize::try_from(n).unwrap_or(0)) };
        if let Some(r) = send_common(fd, None, v, 0, false) {
            return r;
        }
    }
    // SAFETY: pass-through.
    unsafe { real::writev(fd, iov, n) }
}

/// sendmsg body for a socket that may be ours; `None` = pass through.
///
/// # Safety
/// `msg` must be a valid msghdr.
unsafe fn sendmsg_ours(fd: c_int, msg: *const msghdr, flags: c_int) -> Option<ssize_t> {
    if msg.is_null() {
        return None;
    }
    // SAFETY: per the caller.
    let m = unsafe { &*msg };
    // SAFETY: the msghdr's name and iovec fields describe the caller's buffers.
    let dest = unsafe { sys::read_sockaddr(m.msg_name as *const sockaddr, m.msg_namelen) };
    // SAFETY: as above.
    let v = unsafe { iovs(m.msg_iov, m.msg_iovlen) };
    // SAFETY: the msghdr's control fields describe the caller's buffer.
    let gso = unsafe { has_udp_segment(m) };
    send_common(fd, dest, v, flags, gso)
}

/// True when `m` carries a `UDP_SEGMENT` control message (UDP GSO).
///
/// # Safety
/// `m.msg_control` must be null or readable for `m.msg_controllen` bytes.
unsafe fn has_udp_segment(m: &msghdr) -> bool {
    if m.msg_control.is_null() {
        return false;
    }
    // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR stay within msg_controllen (null past it).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(m);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == libc::UDP_SEGMENT {
                return true;
            }
            c = libc::CMSG_NXTHDR(m, c);
        }
    }
    false
}

#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    let c = table::class(fd);
    if c == Class::Dgram || c == Class::Undecided {
        // SAFETY: the caller's msghdr.
        if let Some(r) = unsafe { sendmsg_ours(fd, msg, flags) } {
            return r;
        }
    }
    // SAFETY: pass-through.
    unsafe { real::sendmsg(fd, msg, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn sendmmsg(fd: c_int, msgs: *mut mmsghdr, n: c_uint, flags: c_int) -> c_int {
    let c = table::class(fd);
    if (c == Class::Dgram || c == Class::Undecided) && !msgs.is_null() {
        let mut done: c_int = 0;
        for i in 0..n as usize {
            // SAFETY: the caller's array of `n` mmsghdrs.
            let m = unsafe { &mut *msgs.add(i) };
            // SAFETY: a valid msghdr inside it.
            match unsafe { sendmsg_ours(fd, &m.msg_hdr, flags) } {
                None if i == 0 => break,
                None => return done,
                Some(r) if r < 0 => return if done > 0 { done } else { -1 },
                Some(r) => {
                    m.msg_len = r as c_uint;
                    done += 1;
                }
            }
        }
        if done > 0 {
            return done;
        }
    }
    // SAFETY: pass-through.
    unsafe { real::sendmmsg(fd, msgs, n, flags) }
}

/// recvmsg body on a router datagram socket: payload into the iovecs, the true source
/// into `msg_name`, a TTL/hop-limit cmsg when asked for.
///
/// # Safety
/// `msg` must be a valid msghdr.
unsafe fn recvmsg_ours(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    if msg.is_null() {
        return errs(libc::EFAULT);
    }
    // SAFETY: per the caller.
    let m = unsafe { &mut *msg };
    // SAFETY: the msghdr's iovecs describe the caller's buffers.
    let v = unsafe { iovs(m.msg_iov, m.msg_iovlen) };
    let r = match guard(Err(libc::EIO), || dgram::recv(fd, v, flags)) {
        Ok(r) => r,
        Err(e) => return errs(e),
    };
    if !m.msg_name.is_null() {
        match r.from {
            // SAFETY: msg_name holds msg_namelen bytes.
            Some(a) => unsafe {
                sys::write_sockaddr(a, r.v6, m.msg_name.cast(), &mut m.msg_namelen)
            },
            None => m.msg_namelen = 0,
        }
    }
    let mut mflags = r.flags & (libc::MSG_TRUNC | libc::MSG_EOR);
    mflags &= !libc::MSG_EOR;
    let mut clen = 0usize;
    if r.want_ttl && r.ttl != 0 && !m.msg_control.is_null() {
        // SAFETY: CMSG_SPACE is arithmetic.
        let space = unsafe { libc::CMSG_SPACE(4) } as usize;
        if m.msg_controllen >= space {
            let (level, ty) = if r.v6 {
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT)
            } else {
                (libc::IPPROTO_IP, libc::IP_TTL)
            };
            // SAFETY: msg_control holds msg_controllen >= CMSG_SPACE(4) bytes.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(m);
                if !c.is_null() {
                    (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
                    (*c).cmsg_level = level;
                    (*c).cmsg_type = ty;
                    std::ptr::write_unaligned(
                        libc::CMSG_DATA(c).cast::<c_int>(),
                        c_int::from(r.ttl),
                    );
                    clen = space;
                }
            }
        } else {
            mflags |= libc::MSG_CTRUNC;
        }
    }
    m.msg_controllen = clen;
    m.msg_flags = mflags;
    r.len as ssize_t
}

/// recvfrom body on a router datagram socket.
///
/// # Safety
/// As recvfrom(2).
unsafe fn recvfrom_ours(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    let iov = iovec {
        iov_base: buf,
        iov_len: n,
    };
    // SAFETY: msghdr is plain old data.
    let mut m: msghdr = unsafe { std::mem::zeroed() };
    m.msg_iov = &iov as *const iovec as *mut iovec;
    m.msg_iovlen = 1;
    if !addr.is_null() && !alen.is_null() {
        m.msg_name = addr.cast();
        // SAFETY: `alen` is valid per recvfrom(2).
        m.msg_namelen = unsafe { *alen };
    }
    // SAFETY: `m` describes the caller's buffers.
    let r = unsafe { recvmsg_ours(fd, &mut m, flags) };
    if r >= 0 && !addr.is_null() && !alen.is_null() {
        // SAFETY: as above.
        unsafe { *alen = m.msg_namelen };
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    if table::class(fd) == Class::Dgram {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { recvfrom_ours(fd, buf, n, flags, addr, alen) };
    }
    // SAFETY: pass-through.
    unsafe { real::recvfrom(fd, buf, n, flags, addr, alen) }
}

#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    if table::class(fd) == Class::Dgram {
        // SAFETY: forwarding the caller's arguments.
        return unsafe {
            recvfrom_ours(
                fd,
                buf,
                n,
                flags,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }
    // SAFETY: pass-through.
    unsafe { real::recv(fd, buf, n, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    if table::class(fd) == Class::Dgram {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { recvfrom_ours(fd, buf, n, 0, std::ptr::null_mut(), std::ptr::null_mut()) };
    }
    // SAFETY: pass-through.
    unsafe { real::read(fd, buf, n) }
}

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    if table::class(fd) == Class::Dgram {
        // SAFETY: msghdr is plain old data.
        let mut m: msghdr = unsafe { std::mem::zeroed() };
        m.msg_iov = iov as *mut iovec;
        m.msg_iovlen = usize::try_from(n).unwrap_or(0);
        // SAFETY: `m` describes the caller's iovecs.
        return unsafe { recvmsg_ours(fd, &mut m, 0) };
    }
    // SAFETY: pass-through.
    unsafe { real::readv(fd, iov, n) }
}

#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    if table::class(fd) == Class::Dgram {
        // SAFETY: forwarding the caller's msghdr.
        return unsafe { recvmsg_ours(fd, msg, flags) };
    }
    // SAFETY: pass-through.
    unsafe { real::recvmsg(fd, msg, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    msgs: *mut mmsghdr,
    n: c_uint,
    flags: c_int,
    timeout: *mut timespec,
) -> c_int {
    if table::class(fd) != Class::Dgram || msgs.is_null() {
        // SAFETY: pass-through.
        return unsafe { real::recvmmsg(fd, msgs, n, flags, timeout) };
    }
    // The timeout is not applied: the first datagram is waited for as recvmsg would.
    let mut done: c_int = 0;
    let mut fl = flags & !libc::MSG_WAITFORONE;
    for i in 0..n as usize {
        // SAFETY: the caller's array of `n` mmsghdrs.
        let m = unsafe { &mut *msgs.add(i) };
        // SAFETY: a valid msghdr inside it.
        let r = unsafe { recvmsg_ours(fd, &mut m.msg_hdr, fl) };
        if r < 0 {
            return if done > 0 { done } else { -1 };
        }
        m.msg_len = r as c_uint;
        done += 1;
        if flags & libc::MSG_WAITFORONE != 0 {
            fl |= libc::MSG_DONTWAIT;
        }
    }
    done
}

#[no_mangle]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    if n <= buflen && table::class(fd) == Class::Dgram {
        // SAFETY: forwarding the caller's arguments (n fits the buffer).
        return unsafe {
            recvfrom_ours(
                fd,
                buf,
                n,
                flags,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }
    // SAFETY: pass-through (aborts on overflow as glibc does).
    unsafe { real::__recv_chk(fd, buf, n, buflen, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    if n <= buflen && table::class(fd) == Class::Dgram {
        // SAFETY: forwarding the caller's arguments (n fits the buffer).
        return unsafe { recvfrom_ours(fd, buf, n, flags, addr, alen) };
    }
    // SAFETY: pass-through.
    unsafe { real::__recvfrom_chk(fd, buf, n, buflen, flags, addr, alen) }
}

#[no_mangle]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
) -> ssize_t {
    if n <= buflen && table::class(fd) == Class::Dgram {
        // SAFETY: forwarding the caller's arguments (n fits the buffer).
        return unsafe { recvfrom_ours(fd, buf, n, 0, std::ptr::null_mut(), std::ptr::null_mut()) };
    }
    // SAFETY: pass-through.
    unsafe { real::__read_chk(fd, buf, n, buflen) }
}

/// `dup2` as a system call: x86-64 has one; AArch64 has none (libc's dup2 uses dup3).
#[cfg(target_arch = "x86_64")]
const SYS_DUP2: c_long = libc::SYS_dup2;
#[cfg(not(target_arch = "x86_64"))]
const SYS_DUP2: c_long = -1;

/// `syscall(2)`, the libc function: libuv (dig, node.js...) calls `sendmmsg` and
/// `recvmmsg` through it, around the libc wrappers; those two on router datagram
/// sockets go to the hooks above. `close`, `close_range`, `dup`, `dup2` and `dup3`
/// made this way keep the fd table as their hooks do. Everything else goes through
/// untouched (the shim's own internal calls do not come here: they use
/// `sys::real::syscall`; the Rust standard library's `futex`/`getrandom` do).
#[no_mangle]
pub unsafe extern "C" fn syscall(
    n: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    if (n == libc::SYS_sendmmsg || n == libc::SYS_recvmmsg)
        && table::class(a1 as c_int) == Class::Dgram
    {
        // SAFETY: the arguments are those of the system call the caller made.
        return unsafe {
            if n == libc::SYS_sendmmsg {
                sendmmsg(a1 as c_int, a2 as *mut mmsghdr, a3 as c_uint, a4 as c_int)
            } else {
                recvmmsg(
                    a1 as c_int,
                    a2 as *mut mmsghdr,
                    a3 as c_uint,
                    a4 as c_int,
                    a5 as *mut timespec,
                )
            }
        }
        .into();
    }
    // SAFETY: pass-through of the caller's arguments (extra ones are ignored by the
    // kernel for system calls that take fewer).
    let pass = || unsafe { real::syscall(n, a1, a2, a3, a4, a5, a6) };
    let fd = a1 as c_int;
    if n == libc::SYS_close {
        return close_with(fd, pass);
    }
    if n == libc::SYS_close_range {
        if a3 & libc::CLOSE_RANGE_CLOEXEC as c_long == 0 {
            table::forget_range(a1 as c_uint, a2 as c_uint);
        }
        return pass();
    }
    if n == libc::SYS_dup || n == SYS_DUP2 || n == libc::SYS_dup3 {
        let r = pass();
        if r >= 0 {
            noted_dup(fd, if n == libc::SYS_dup { r } else { a2 } as c_int);
        }
        return r;
    }
    pass()
}

// ---------------------------------------------------------------- names

#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    // SAFETY: pass-through with the caller's arguments.
    let pass = || unsafe { real::getaddrinfo(node, service, hints, res) };
    if !crate::enabled() || node.is_null() || res.is_null() {
        return pass();
    }
    let (flags, af, socktype, protocol) = if hints.is_null() {
        (
            libc::AI_V4MAPPED | libc::AI_ADDRCONFIG,
            libc::AF_UNSPEC,
            0,
            0,
        )
    } else {
        // SAFETY: a valid addrinfo per getaddrinfo(3).
        let h = unsafe { &*hints };
        (h.ai_flags, h.ai_family, h.ai_socktype, h.ai_protocol)
    };
    if flags & libc::AI_NUMERICHOST != 0 {
        return pass();
    }
    // SAFETY: node is a C string per getaddrinfo(3).
    let Ok(name) = unsafe { CStr::from_ptr(node) }.to_str() else {
        return pass();
    };
    let Some(family) = names::family_of(af) else {
        return pass();
    };
    // SAFETY: service is null or a C string.
    let service = (!service.is_null()).then(|| unsafe { CStr::from_ptr(service) });
    guard(libc::EAI_SYSTEM, || match names::resolve(name, family) {
        Lookup::Kernel => pass(),
        Lookup::Failed => libc::EAI_AGAIN,
        Lookup::Addrs { addrs, .. } if addrs.is_empty() => libc::EAI_NONAME,
        Lookup::Addrs { canonical, addrs } => {
            let port =
                match names::service_port(service, socktype, flags & libc::AI_NUMERICSERV != 0) {
                    Ok(p) => p,
                    Err(e) => return e,
                };
            let types = names::socktypes(socktype, protocol, service.is_some());
            if types.is_empty() {
                return libc::EAI_SOCKTYPE;
            }
            let canon = (flags & libc::AI_CANONNAME != 0).then_some(canonical.as_str());
            let list = names::build_addrinfo(&addrs, &types, port, flags, canon);
            if list.is_null() {
                return libc::EAI_MEMORY;
            }
            // SAFETY: `res` is valid per getaddrinfo(3).
            unsafe { *res = list };
            0
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn getnameinfo(
    addr: *const sockaddr,
    alen: socklen_t,
    host: *mut c_char,
    hostlen: socklen_t,
    serv: *mut c_char,
    servlen: socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: pass-through with the caller's arguments.
    let pass = || unsafe { real::getnameinfo(addr, alen, host, hostlen, serv, servlen, flags) };
    if !crate::enabled() || host.is_null() || hostlen == 0 || flags & libc::NI_NUMERICHOST != 0 {
        return pass();
    }
    // SAFETY: `alen` readable bytes at `addr`.
    let Some(a) = (unsafe { sys::read_sockaddr(addr, alen) }) else {
        return pass();
    };
    let Some(name) = guard(None, || names::reverse(a.ip())) else {
        return pass();
    };
    if name.len() + 1 > hostlen as usize || name.contains('\0') {
        return libc::EAI_OVERFLOW;
    }
    // SAFETY: `host` holds `hostlen` > name.len() bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(name.as_ptr(), host.cast::<u8>(), name.len());
        *host.add(name.len()) = 0;
    }
    if !serv.is_null() && servlen > 0 {
        // SAFETY: the service part alone, through libc.
        return unsafe {
            real::getnameinfo(addr, alen, std::ptr::null_mut(), 0, serv, servlen, flags)
        };
    }
    0
}

/// `h_errno` values (netdb.h).
const HOST_NOT_FOUND: c_int = 1;
const TRY_AGAIN: c_int = 2;
const NETDB_INTERNAL: c_int = -1;

extern "C" {
    fn __h_errno_location() -> *mut c_int;
}

/// The shared body of the `gethostbyname*_r` hooks; `None` = pass through.
///
/// # Safety
/// As gethostbyname2_r(3).
unsafe fn hostbyname_r(
    name: *const c_char,
    af: c_int,
    ret: *mut hostent,
    buf: *mut c_char,
    buflen: size_t,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
) -> Option<c_int> {
    if !crate::enabled()
        || name.is_null()
        || ret.is_null()
        || result.is_null()
        || h_errnop.is_null()
    {
        return None;
    }
    let family = match af {
        libc::AF_INET => Family::V4,
        libc::AF_INET6 => Family::V6,
        _ => return None,
    };
    // SAFETY: name is a C string.
    let n = unsafe { CStr::from_ptr(name) }.to_str().ok()?;
    let (h, r) = match guard(Lookup::Failed, || names::resolve(n, family)) {
        Lookup::Kernel => return None,
        Lookup::Failed => (TRY_AGAIN, libc::EAGAIN),
        Lookup::Addrs { addrs, .. } if addrs.is_empty() => (HOST_NOT_FOUND, libc::ENOENT),
        Lookup::Addrs { canonical, addrs } => {
            // SAFETY: the caller's hostent and buffer of `buflen` bytes.
            match unsafe { names::fill_hostent(&canonical, af, &addrs, ret, buf, buflen) } {
                Ok(()) => {
                    // SAFETY: valid out-pointers.
                    unsafe {
                        *result = ret;
                        *h_errnop = 0;
                    }
                    return Some(0);
                }
                Err(e) => (NETDB_INTERNAL, e),
            }
        }
    };
    // SAFETY: valid out-pointers.
    unsafe {
        *result = std::ptr::null_mut();
        *h_errnop = h;
    }
    Some(r)
}

#[no_mangle]
pub unsafe extern "C" fn gethostbyname2_r(
    name: *const c_char,
    af: c_int,
    ret: *mut hostent,
    buf: *mut c_char,
    buflen: size_t,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
) -> c_int {
    // SAFETY: forwarding the caller's arguments.
    match unsafe { hostbyname_r(name, af, ret, buf, buflen, result, h_errnop) } {
        Some(r) => r,
        // SAFETY: pass-through.
        None => unsafe { real::gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn gethostbyname_r(
    name: *const c_char,
    ret: *mut hostent,
    buf: *mut c_char,
    buflen: size_t,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
) -> c_int {
    // SAFETY: forwarding the caller's arguments.
    match unsafe { hostbyname_r(name, libc::AF_INET, ret, buf, buflen, result, h_errnop) } {
        Some(r) => r,
        // SAFETY: pass-through.
        None => unsafe { real::gethostbyname_r(name, ret, buf, buflen, result, h_errnop) },
    }
}

/// Per-thread storage behind `gethostbyname`/`gethostbyname2` results (glibc keeps one
/// static buffer; one per thread is at least as safe).
struct HostBuf {
    ent: hostent,
    buf: [c_char; 2048],
}

thread_local! {
    static HOSTBUF: std::cell::Cell<*mut HostBuf> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// The non-reentrant variants, on the per-thread buffer; `None` = pass through.
///
/// # Safety
/// `name` is null or a C string.
unsafe fn hostbyname_static(name: *const c_char, af: c_int) -> Option<*mut hostent> {
    if !crate::enabled() || name.is_null() {
        return None;
    }
    let hb = HOSTBUF.with(|c| {
        if c.get().is_null() {
            // SAFETY: HostBuf is plain old data; all-zero is a valid value.
            let b: Box<HostBuf> = Box::new(unsafe { std::mem::zeroed() });
            c.set(Box::into_raw(b));
        }
        c.get()
    });
    let mut result: *mut hostent = std::ptr::null_mut();
    let mut h: c_int = 0;
    // SAFETY: hb is this thread's live buffer (leaked on purpose, like libc's).
    let r = unsafe {
        hostbyname_r(
            name,
            af,
            &mut (*hb).ent,
            (*hb).buf.as_mut_ptr(),
            (*hb).buf.len(),
            &mut result,
            &mut h,
        )
    }?;
    if r != 0 || result.is_null() {
        // SAFETY: glibc's h_errno location for this thread.
        unsafe { *__h_errno_location() = h };
        return Some(std::ptr::null_mut());
    }
    Some(result)
}

#[no_mangle]
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut hostent {
    // SAFETY: forwarding the caller's argument.
    match unsafe { hostbyname_static(name, libc::AF_INET) } {
        Some(p) => p,
        // SAFETY: pass-through.
        None => unsafe { real::gethostbyname(name) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn gethostbyname2(name: *const c_char, af: c_int) -> *mut hostent {
    // SAFETY: forwarding the caller's arguments.
    match unsafe { hostbyname_static(name, af) } {
        Some(p) => p,
        // SAFETY: pass-through.
        None => unsafe { real::gethostbyname2(name, af) },
    }
}
