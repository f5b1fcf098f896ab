//! UDP segmentation offload as WireGuard peers use it (wireguard-go, kernel WireGuard on a
//! GRO-capable NIC): a send of several equal-sized datagrams to one address as one
//! `sendmsg` with a `UDP_SEGMENT` control message (GSO), and a socket with `UDP_GRO` that
//! receives a run of them as one buffer plus a `UDP_GRO` control message giving the
//! segment size. Raw `libc`, so that the benchmark's peers do not share code with the
//! router they measure.

use std::os::fd::RawFd;

/// `setsockopt`/cmsg options at `SOL_UDP` (linux/udp.h).
pub const UDP_SEGMENT: libc::c_int = 103;
pub const UDP_GRO: libc::c_int = 104;

/// Most datagrams the benchmark puts in one GSO send (the kernel allows 64, or 128 on
/// recent kernels, within 65507 bytes of payload).
pub const MAX_SEGMENTS: usize = 64;

/// Datagrams of `len` bytes per GSO send: as many as fit, at most [`MAX_SEGMENTS`].
pub fn per_send(len: usize) -> usize {
    (65507 / len.max(1)).clamp(1, MAX_SEGMENTS)
}

/// Bytes of control buffer for one `UDP_SEGMENT` or `UDP_GRO` message (u64 for alignment).
pub const CONTROL_WORDS: usize = 4;

pub fn set_int_opt(fd: RawFd, level: libc::c_int, opt: libc::c_int, v: libc::c_int) -> bool {
    // SAFETY: a valid fd and an int option value of the right size.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

/// Turns on `UDP_GRO` on a receiving socket; false if the kernel lacks it.
pub fn enable_gro(fd: RawFd) -> bool {
    set_int_opt(fd, libc::SOL_UDP, UDP_GRO, 1)
}

/// One `sendmsg` of the concatenation of `iov` to `name`; with `segment`, as a
/// `UDP_SEGMENT` run of `segment`-byte datagrams (the last may be shorter). Returns what
/// `sendmsg` returns; `errno` tells why on -1.
pub fn send_segments<T>(fd: RawFd, name: &T, iov: &[libc::iovec], segment: Option<u16>) -> isize {
    let mut control = [0u64; CONTROL_WORDS];
    // SAFETY: plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = name as *const T as *mut libc::c_void;
    msg.msg_namelen = std::mem::size_of::<T>() as libc::socklen_t;
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len() as _;
    if let Some(seg) = segment {
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        // SAFETY: CMSG_SPACE is arithmetic; the control buffer (32 bytes) holds one
        // cmsghdr with a u16, and CMSG_FIRSTHDR/CMSG_DATA stay inside it.
        unsafe {
            msg.msg_controllen = libc::CMSG_SPACE(2) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(2) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, seg);
        }
    }
    // SAFETY: msg points at the caller's live iovecs (and their buffers), name and control.
    unsafe { libc::sendmsg(fd, &msg, 0) }
}

/// The segment size of a received message from its `UDP_GRO` control message, if the
/// kernel coalesced it (`None`: one datagram).
pub fn gro_segment(msg: &libc::msghdr) -> Option<usize> {
    let mut segment = None;
    // SAFETY: walking the control messages the kernel wrote into the message's buffer,
    // with the length it set.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
                segment = Some(size as usize);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    segment.filter(|s| *s > 0)
}

/// The last OS error's `errno`.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}
