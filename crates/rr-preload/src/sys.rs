//! The raw system interface of the shim: every call the shim itself makes to the OS.
//!
//! What it is: two families of thin wrappers.
//! - `real::*`: the libc functions the shim interposes, looked up once with
//!   `dlsym(RTLD_NEXT, name)` and cached; hooks call them to pass a call through.
//! - Internal I/O (`socket`, `sendmsg`, `recvmsg`, `dup3`, `epoll_ctl`...) made through
//!   libc's `syscall` function looked up the same way (`real::syscall`, see [`raw`]),
//!   so the shim's own traffic with the node never enters its exported hooks: symbols
//!   exported from a preloaded object interpose calls from inside it too, so a plain
//!   `libc::syscall` here would land in the shim's own `syscall` hook, which keeps the
//!   fd table for `SYS_close`/`SYS_dup3`... The Rust standard library linked into the
//!   shim does make a few calls of its own through the exported symbols (`futex` and
//!   `getrandom` through `syscall`, panic messages through `write` on fd 2); the hooks
//!   pass those through untouched.
//!
//! It also converts socket addresses between `std::net` and their C byte layout, in safe
//! code, so that only the pointer <-> slice step needs `unsafe`.
//!
//! What it is not: policy. Nothing here decides whether a socket goes to the router.

use libc::{c_int, c_void, iovec, msghdr, sockaddr, socklen_t};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// A Linux errno value.
pub type Errno = c_int;

/// The calling thread's `errno`.
pub fn errno() -> Errno {
    // SAFETY: __errno_location returns a valid pointer to the thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's `errno`.
pub fn set_errno(e: Errno) {
    // SAFETY: as in errno().
    unsafe { *libc::__errno_location() = e }
}

/// Generates a cached `dlsym(RTLD_NEXT)` trampoline per interposed libc function.
macro_rules! real_fns {
    ($( fn $name:ident($($a:ident: $t:ty),*) -> $r:ty = $fail:expr; )*) => {
        /// The next definitions (normally glibc's) of the functions the shim exports.
        // `closefrom` returns `()`, spelled out by the generated signature.
        #[allow(clippy::unused_unit)]
        pub mod real {
            #[allow(unused_imports)]
            use libc::*;
            use std::sync::atomic::{AtomicPtr, Ordering};
            $(
                /// Calls the next definition of the libc function of the same name
                /// (`ENOSYS` if there is none).
                ///
                /// # Safety
                /// Same contract as the libc function.
                pub unsafe fn $name($($a: $t),*) -> $r {
                    static PTR: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
                    let mut p = PTR.load(Ordering::Acquire);
                    if p.is_null() {
                        // SAFETY: the name is a NUL-terminated literal.
                        p = unsafe {
                            dlsym(RTLD_NEXT, concat!(stringify!($name), "\0").as_ptr().cast())
                        };
                        if p.is_null() {
                            super::set_errno(ENOSYS);
                            return $fail;
                        }
                        PTR.store(p, Ordering::Release);
                    }
                    // SAFETY: dlsym found the libc symbol of this exact name, whose C
                    // signature is the one declared here.
                    let f: unsafe extern "C" fn($($t),*) -> $r = unsafe { std::mem::transmute(p) };
                    // SAFETY: the caller upholds the function's contract.
                    unsafe { f($($a),*) }
                }
            )*
        }
    };
}

real_fns! {
    fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int = -1;
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int = -1;
    fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int = -1;
    fn listen(fd: c_int, backlog: c_int) -> c_int = -1;
    fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int = -1;
    fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int = -1;
    fn close(fd: c_int) -> c_int = -1;
    fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int = -1;
    fn closefrom(first: c_int) -> () = ();
    fn dup(fd: c_int) -> c_int = -1;
    fn dup2(fd: c_int, to: c_int) -> c_int = -1;
    fn dup3(fd: c_int, to: c_int, flags: c_int) -> c_int = -1;
    fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int = -1;
    fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int = -1;
    fn ioctl(fd: c_int, req: c_ulong, arg: *mut c_void) -> c_int = -1;
    fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int = -1;
    fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int = -1;
    fn getsockopt(fd: c_int, level: c_int, name: c_int, val: *mut c_void, len: *mut socklen_t) -> c_int = -1;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int = -1;
    fn shutdown(fd: c_int, how: c_int) -> c_int = -1;
    fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t = -1;
    fn sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t = -1;
    fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t = -1;
    fn sendmmsg(fd: c_int, msgs: *mut mmsghdr, n: c_uint, flags: c_int) -> c_int = -1;
    fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t = -1;
    fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t = -1;
    fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t = -1;
    fn recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t = -1;
    fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t = -1;
    fn recvmmsg(fd: c_int, msgs: *mut mmsghdr, n: c_uint, flags: c_int, timeout: *mut timespec) -> c_int = -1;
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t = -1;
    fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t = -1;
    fn __recv_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int) -> ssize_t = -1;
    fn __recvfrom_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t = -1;
    fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t = -1;
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut epoll_event) -> c_int = -1;
    fn syscall(n: c_long, a1: c_long, a2: c_long, a3: c_long, a4: c_long, a5: c_long, a6: c_long) -> c_long = -1;
    fn getaddrinfo(node: *const c_char, service: *const c_char, hints: *const addrinfo, res: *mut *mut addrinfo) -> c_int = EAI_SYSTEM;
    fn gethostbyname(name: *const c_char) -> *mut hostent = std::ptr::null_mut();
    fn gethostbyname2(name: *const c_char, af: c_int) -> *mut hostent = std::ptr::null_mut();
    fn gethostbyname_r(name: *const c_char, ret: *mut hostent, buf: *mut c_char, buflen: size_t, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int = ENOSYS;
    fn gethostbyname2_r(name: *const c_char, af: c_int, ret: *mut hostent, buf: *mut c_char, buflen: size_t, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int = ENOSYS;
    fn getnameinfo(addr: *const sockaddr, len: socklen_t, host: *mut c_char, hostlen: socklen_t, serv: *mut c_char, servlen: socklen_t, flags: c_int) -> c_int = EAI_SYSTEM;
}

/// One system call through libc's `syscall` function, i.e. the next definition
/// ([`real::syscall`]), never the shim's exported `syscall` hook.
///
/// # Safety
/// The arguments must be valid for system call `n`.
unsafe fn raw(n: libc::c_long, args: &[libc::c_long]) -> libc::c_long {
    let a = |i: usize| args.get(i).copied().unwrap_or(0);
    // SAFETY: per the caller; unused trailing arguments are ignored by the kernel.
    unsafe { real::syscall(n, a(0), a(1), a(2), a(3), a(4), a(5)) }
}

/// `sc!(SYS_x, args...)`: [`raw`] with each argument (integer or pointer) as a `c_long`.
macro_rules! sc {
    ($n:expr $(, $a:expr)* $(,)?) => {
        raw($n, &[$($a as libc::c_long),*])
    };
}

/// Turns a `-1`/errno style return into a `Result`.
fn check(r: libc::c_long) -> Result<libc::c_long, Errno> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// Retries a system call interrupted by a signal (the shim's internal calls only).
fn retry(mut f: impl FnMut() -> libc::c_long) -> Result<libc::c_long, Errno> {
    loop {
        match check(f()) {
            Err(libc::EINTR) => continue,
            r => return r,
        }
    }
}

fn to_int(r: libc::c_long) -> c_int {
    c_int::try_from(r).unwrap_or(-1)
}

/// `socket(2)` without the hooks.
pub fn sys_socket(domain: c_int, ty: c_int, proto: c_int) -> Result<c_int, Errno> {
    // SAFETY: plain integer arguments.
    check(unsafe { sc!(libc::SYS_socket, domain, ty, proto) }).map(to_int)
}

/// `socketpair(2)` without the hooks.
pub fn sys_socketpair(domain: c_int, ty: c_int) -> Result<(c_int, c_int), Errno> {
    let mut fds = [-1 as c_int; 2];
    // SAFETY: `fds` is a writable array of two ints as socketpair requires.
    check(unsafe { sc!(libc::SYS_socketpair, domain, ty, 0, fds.as_mut_ptr()) })?;
    Ok((fds[0], fds[1]))
}

/// `close(2)` without the hooks; errors are irrelevant to the shim's own descriptors.
pub fn sys_close(fd: c_int) {
    // SAFETY: closes a descriptor the shim owns.
    unsafe { sc!(libc::SYS_close, fd) };
}

/// `connect(2)` of an AF_UNIX socket to `path`, without the hooks.
pub fn sys_connect_unix(fd: c_int, path: &[u8]) -> Result<(), Errno> {
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if path.len() >= sun.sun_path.len() {
        return Err(libc::ENAMETOOLONG);
    }
    for (d, s) in sun.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>();
    // SAFETY: `sun` is a valid sockaddr_un of `len` bytes.
    retry(|| unsafe {
        sc!(
            libc::SYS_connect,
            fd,
            &sun as *const libc::sockaddr_un,
            len as socklen_t,
        )
    })
    .map(drop)
}

/// `sendmsg(2)` of `data` with `fds` as SCM_RIGHTS, without the hooks.
pub fn sys_send_with_fds(fd: c_int, data: &[u8], fds: &[c_int]) -> Result<usize, Errno> {
    let mut iov = iovec {
        iov_base: data.as_ptr() as *mut c_void,
        iov_len: data.len(),
    };
    // Room for up to 4 descriptors, u64-aligned as cmsghdr needs.
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut msg: msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    let fds = fds.get(..fds.len().min(4)).unwrap_or(&[]);
    if !fds.is_empty() {
        let bytes = std::mem::size_of_val(fds) as u32;
        // SAFETY: CMSG_SPACE is pure arithmetic.
        let space = unsafe { libc::CMSG_SPACE(bytes) } as usize;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: msg_control points at `space` <= 64 writable, aligned bytes, so the
        // first header and its data fit.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast(), fds.len());
        }
    }
    // SAFETY: msg points at live buffers for the duration of the call.
    retry(|| unsafe {
        sc!(
            libc::SYS_sendmsg,
            fd,
            &msg as *const msghdr,
            libc::MSG_NOSIGNAL,
        )
    })
    .map(|n| n as usize)
}

/// `recvmsg(2)` of one record into `buf`, collecting up to one passed descriptor,
/// without the hooks. Returns (bytes, descriptor).
pub fn sys_recv_with_fd(
    fd: c_int,
    buf: &mut [u8],
    flags: c_int,
) -> Result<(usize, Option<c_int>), Errno> {
    let mut iov = iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut msg: msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: msg points at live buffers for the duration of the call. No retry: an
    // interrupted accept reports EINTR to the program, as the kernel's would.
    let n = check(unsafe { sc!(libc::SYS_recvmsg, fd, &mut msg as *mut msghdr, flags) })?;
    let mut got = None;
    // SAFETY: the kernel filled msg_control with well-formed cmsghdrs within
    // msg_controllen; CMSG_NXTHDR stays inside it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const c_int;
                let count = ((*c).cmsg_len - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    let f = std::ptr::read_unaligned(data.add(i));
                    if got.is_none() {
                        got = Some(f);
                    } else {
                        sys_close(f);
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, got))
}

/// Writes a debug line to fd 2 without the hooks (best effort).
pub fn write_stderr(s: &str) {
    // SAFETY: the string is readable for its length.
    unsafe { sc!(libc::SYS_write, 2, s.as_ptr(), s.len()) };
}

/// `read(2)` without the hooks. No retry: `EINTR` goes to the caller, which decides.
pub fn sys_read(fd: c_int, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: buf is writable for its length.
    check(unsafe { sc!(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) }).map(|n| n as usize)
}

/// Sets `SO_RCVTIMEO` and `SO_SNDTIMEO` of `fd` to `ms` milliseconds, without the
/// hooks. A read that times out fails with `EAGAIN`; one interrupted by a signal fails
/// with `EINTR` even under `SA_RESTART` (signal(7)).
pub fn sys_set_timeouts(fd: c_int, ms: u64) -> Result<(), Errno> {
    let tv = libc::timeval {
        tv_sec: libc::time_t::try_from(ms / 1000).unwrap_or(libc::time_t::MAX),
        tv_usec: ((ms % 1000) * 1000) as libc::suseconds_t,
    };
    let len = std::mem::size_of::<libc::timeval>();
    for opt in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
        // SAFETY: tv is a valid timeval of `len` bytes.
        check(unsafe {
            sc!(
                libc::SYS_setsockopt,
                fd,
                libc::SOL_SOCKET,
                opt,
                &tv as *const libc::timeval,
                len
            )
        })?;
    }
    Ok(())
}

/// `epoll_ctl(2)` without the hooks; `event` = (events, data) for ADD/MOD.
pub fn sys_epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    event: Option<(u32, u64)>,
) -> Result<(), Errno> {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    if let Some((events, data)) = event {
        ev = libc::epoll_event { events, u64: data };
    }
    // SAFETY: ev is a valid epoll_event for the duration of the call.
    check(unsafe {
        sc!(
            libc::SYS_epoll_ctl,
            epfd,
            op,
            fd,
            &mut ev as *mut libc::epoll_event
        )
    })
    .map(drop)
}

/// `sendmsg(2)` of a datagram record (header + user iovecs) without the hooks.
pub fn sys_sendmsg_iov(fd: c_int, iov: &[iovec], flags: c_int) -> Result<usize, Errno> {
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut msg: msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut iovec;
    msg.msg_iovlen = iov.len();
    // SAFETY: the iovecs point at buffers the caller keeps alive for the call. No
    // retry: an interrupted send reports EINTR to the program, as the kernel would.
    check(unsafe { sc!(libc::SYS_sendmsg, fd, &msg as *const msghdr, flags) }).map(|n| n as usize)
}

/// `recvmsg(2)` of a datagram record into iovecs without the hooks; returns (bytes,
/// msg_flags). No retry on EINTR (the program sees it, as with the kernel).
pub fn sys_recvmsg_iov(fd: c_int, iov: &[iovec], flags: c_int) -> Result<(usize, c_int), Errno> {
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut msg: msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut iovec;
    msg.msg_iovlen = iov.len();
    // SAFETY: the iovecs point at writable buffers the caller keeps alive for the call.
    let n = check(unsafe { sc!(libc::SYS_recvmsg, fd, &mut msg as *mut msghdr, flags) })?;
    Ok((n as usize, msg.msg_flags))
}

/// `fstat(2)`'s inode number: the [`rr_ctl::exec::SockId`] of a socket end.
pub fn sys_ino(fd: c_int) -> Result<u64, Errno> {
    // SAFETY: stat is plain old data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is writable.
    check(unsafe { sc!(libc::SYS_fstat, fd, &mut st as *mut libc::stat) })?;
    Ok(st.st_ino)
}

/// `fcntl(2)` with an integer argument, without the hooks.
pub fn sys_fcntl(fd: c_int, cmd: c_int, arg: c_int) -> Result<c_int, Errno> {
    // SAFETY: integer arguments only.
    check(unsafe { sc!(libc::SYS_fcntl, fd, cmd, arg) }).map(to_int)
}

/// `dup3(2)` without the hooks.
pub fn sys_dup3(from: c_int, to: c_int, flags: c_int) -> Result<(), Errno> {
    // SAFETY: integer arguments only.
    retry(|| unsafe { sc!(libc::SYS_dup3, from, to, flags) }).map(drop)
}

/// Copies the `SOL_SOCKET` option `opt` (a value of at most 32 bytes, e.g. a timeval)
/// from socket `from` to socket `to`, without the hooks. Best effort: an option one of
/// them lacks is left alone.
pub fn sys_copy_sockopt(from: c_int, to: c_int, opt: c_int) {
    let mut buf = [0u8; 32];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: buf is writable for `len` bytes and len is a valid socklen_t.
    let got = unsafe {
        sc!(
            libc::SYS_getsockopt,
            from,
            libc::SOL_SOCKET,
            opt,
            buf.as_mut_ptr(),
            &mut len as *mut libc::socklen_t,
        )
    };
    if got == 0 {
        // SAFETY: buf holds `len` bytes the kernel wrote for this option.
        unsafe {
            sc!(
                libc::SYS_setsockopt,
                to,
                libc::SOL_SOCKET,
                opt,
                buf.as_ptr(),
                len,
            )
        };
    }
}

/// An integer `SOL_SOCKET` option of `fd`, without the hooks.
pub fn sys_sockopt_int(fd: c_int, opt: c_int) -> Result<c_int, Errno> {
    let mut v: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: v is writable for `len` bytes and len is a valid socklen_t.
    check(unsafe {
        sc!(
            libc::SYS_getsockopt,
            fd,
            libc::SOL_SOCKET,
            opt,
            &mut v as *mut c_int,
            &mut len as *mut libc::socklen_t,
        )
    })?;
    Ok(v)
}

/// `listen(2)` without the hooks.
pub fn sys_listen(fd: c_int, backlog: c_int) -> Result<(), Errno> {
    // SAFETY: integer arguments only.
    check(unsafe { sc!(libc::SYS_listen, fd, backlog) }).map(drop)
}

/// `bind(2)` to `addr` without the hooks.
pub fn sys_bind(fd: c_int, addr: SocketAddr, v6: bool) -> Result<(), Errno> {
    let (buf, len) = encode_sockaddr(addr, v6);
    // SAFETY: buf holds a valid sockaddr of `len` bytes.
    check(unsafe { sc!(libc::SYS_bind, fd, buf.as_ptr(), len) }).map(drop)
}

/// `getsockname(2)` without the hooks, decoded.
pub fn sys_getsockname(fd: c_int) -> Result<SocketAddr, Errno> {
    let mut buf = [0u8; 128];
    let mut len = buf.len() as socklen_t;
    // SAFETY: buf is writable for `len` bytes.
    check(unsafe {
        sc!(
            libc::SYS_getsockname,
            fd,
            buf.as_mut_ptr(),
            &mut len as *mut socklen_t,
        )
    })?;
    decode_sockaddr(buf.get(..len as usize).unwrap_or(&buf)).ok_or(libc::EAFNOSUPPORT)
}

/// An `iovec` over a byte slice (for the shim's own buffers).
pub fn iov_of(b: &[u8]) -> iovec {
    iovec {
        iov_base: b.as_ptr() as *mut c_void,
        iov_len: b.len(),
    }
}

/// A socket address in its C layout: `sockaddr_in` (16 bytes) or `sockaddr_in6` (28
/// bytes). With `v6`, an IPv4 address is written v4-mapped (what an AF_INET6 socket
/// reports).
pub fn encode_sockaddr(addr: SocketAddr, v6: bool) -> ([u8; 28], socklen_t) {
    let mut b = [0u8; 28];
    let addr = match addr {
        SocketAddr::V4(a) if v6 => {
            SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
        }
        a => a,
    };
    match addr {
        SocketAddr::V4(a) => {
            b[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.ip().octets());
            (b, 16)
        }
        SocketAddr::V6(a) => {
            b[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&a.ip().octets());
            b[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
            (b, 28)
        }
    }
}

/// Reads a `sockaddr_in`/`sockaddr_in6` from its bytes; `None` for other families or
/// short buffers.
pub fn decode_sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let fam = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    if fam == libc::AF_INET as u16 {
        let o: [u8; 4] = b.get(4..8)?.try_into().ok()?;
        Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(o), port)))
    } else if fam == libc::AF_INET6 as u16 {
        let flow = u32::from_be_bytes(b.get(4..8)?.try_into().ok()?);
        let o: [u8; 16] = b.get(8..24)?.try_into().ok()?;
        let scope = u32::from_ne_bytes(b.get(24..28)?.try_into().ok()?);
        Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(o),
            port,
            flow,
            scope,
        )))
    } else {
        None
    }
}

/// The address family stored in a C sockaddr, if the buffer is long enough.
pub fn sockaddr_family(b: &[u8]) -> Option<c_int> {
    Some(u16::from_ne_bytes([*b.first()?, *b.get(1)?]) as c_int)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it stands for.
pub fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(ip) => SocketAddr::V4(SocketAddrV4::new(ip, v6.port())),
            None => a,
        },
        a => a,
    }
}

/// The wildcard address of a socket's family.
pub fn wildcard(v6: bool, port: u16) -> SocketAddr {
    if v6 {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
    }
}

/// Copies a socket address into a program's `(addr, *len)` pair the way the kernel does:
/// truncated to the buffer, `*len` set to the full size.
///
/// # Safety
/// `addr` must be null or writable for `*len` bytes; `len` must be null or valid.
pub unsafe fn write_sockaddr(a: SocketAddr, v6: bool, addr: *mut sockaddr, len: *mut socklen_t) {
    if addr.is_null() || len.is_null() {
        return;
    }
    let (buf, full) = encode_sockaddr(a, v6);
    // SAFETY: the caller guarantees `len` is valid.
    let room = unsafe { *len } as usize;
    let n = room.min(full as usize);
    // SAFETY: `addr` is writable for `room` >= n bytes; `buf` has `full` >= n bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(buf.as_ptr(), addr.cast::<u8>(), n);
        *len = full;
    }
}

/// Reads a program's `(addr, len)` socket address.
///
/// # Safety
/// `addr` must be null or readable for `len` bytes.
pub unsafe fn read_sockaddr(addr: *const sockaddr, len: socklen_t) -> Option<SocketAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees `len` readable bytes.
    let b = unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), (len as usize).min(128)) };
    decode_sockaddr(b)
}

/// The family field of a program's socket address (AF_UNSPEC for `connect` dissolving).
///
/// # Safety
/// `addr` must be null or readable for `len` bytes.
pub unsafe fn read_family(addr: *const sockaddr, len: socklen_t) -> Option<c_int> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees `len` readable bytes.
    let b = unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), (len as usize).min(2)) };
    sockaddr_family(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trips_and_maps() {
        for s in ["172.20.0.1:80", "[fd00::1%3]:179", "0.0.0.0:0"] {
            let a: SocketAddr = s.parse().unwrap();
            let (b, len) = encode_sockaddr(a, a.is_ipv6());
            assert_eq!(decode_sockaddr(&b[..len as usize]), Some(a));
        }
        let a: SocketAddr = "10.1.2.3:53".parse().unwrap();
        let (b, len) = encode_sockaddr(a, true);
        assert_eq!(len, 28);
        let m = decode_sockaddr(&b).unwrap();
        assert_eq!(m.to_string(), "[::ffff:10.1.2.3]:53");
        assert_eq!(unmap(m), a);
        assert_eq!(decode_sockaddr(&b[..10]), None);
    }
}
