//! A tunnel's UDP socket: batched receive with GRO, segmented send with GSO.
//!
//! What it is: the kernel side of one WireGuard tunnel. Receives take up to
//! [`RECV_BATCH`] datagrams per system call (`recvmmsg`), and with UDP GRO the kernel
//! hands over runs of equal-sized datagrams from one sender as one buffer; sends of
//! several equal-sized datagrams to one endpoint go out as one `sendmsg` with
//! `UDP_SEGMENT`. Both come from `quinn-udp`, which falls back to one datagram per call
//! where the kernel lacks them. This is where wireguard-go's throughput comes from too.
//!
//! What it is not: WireGuard. Datagrams are opaque here.
//!
//! Unlike QUIC, WireGuard lets its outer packets be fragmented (the kernel module sends
//! them without DF), so the sockets go back to the kernel's default path-MTU behaviour
//! after `quinn-udp` set them to "probe".

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use std::io::{self, ErrorKind, IoSliceMut};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Receive buffers per system call.
pub const RECV_BATCH: usize = 8;
/// One receive buffer: a GRO run is at most 64 KiB of payload.
pub const RECV_BUF: usize = 1 << 16;
/// The socket buffer the node asks for (the kernel caps it at `net.core.rmem_max`).
const SOCKET_BUFFER: libc::c_int = 4 << 20;

pub(crate) struct TunnelSocket {
    socket: UdpSocket,
    state: UdpSocketState,
    /// `[::]` dual stack: IPv4 endpoints are written as IPv4-mapped addresses.
    dual_stack: bool,
}

fn setsockopt(fd: libc::c_int, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: a plain int option on a socket we own; failures are ignored on purpose
    // (the option is an optimisation or a default we fall back from).
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

impl TunnelSocket {
    /// Binds `port` (0 = any) on all addresses, IPv6 dual stack where the host has IPv6.
    pub fn bind(port: u16) -> io::Result<TunnelSocket> {
        let (socket, dual_stack) = match bind_dual_stack(port) {
            Ok(s) => (s, true),
            Err(e) if e.kind() == ErrorKind::AddrInUse => return Err(e),
            Err(_) => (UdpSocket::bind(("0.0.0.0", port))?, false),
        };
        let state = UdpSocketState::new((&socket).into())?;
        let fd = socket.as_raw_fd();
        setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DONT,
        );
        if dual_stack {
            setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                libc::IP_PMTUDISC_DONT,
            );
            setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 0);
        }
        // quinn-udp asks for ancillary data the node never reads (receive timestamps, TOS,
        // packet info): switch it off so the kernel need not build it for every message.
        setsockopt(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 0);
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_RECVTOS, 0);
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 0);
        if dual_stack {
            setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, 0);
            setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 0);
        }
        setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, SOCKET_BUFFER);
        setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, SOCKET_BUFFER);
        Ok(TunnelSocket {
            socket,
            state,
            dual_stack,
        })
    }

    pub fn local_port(&self) -> u16 {
        self.socket.local_addr().map_or(0, |a| a.port())
    }

    /// Most datagrams one segmented send may carry (1 = no GSO).
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    fn wire_addr(&self, to: SocketAddr) -> SocketAddr {
        match (self.dual_stack, to) {
            (true, SocketAddr::V4(v4)) => {
                SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
            }
            _ => to,
        }
    }

    /// Sends `contents` to `to`: one datagram, or with `segment` consecutive datagrams of
    /// that size (the last may be shorter). Returns how many datagrams failed.
    ///
    /// A segmented send the kernel refuses (EINVAL/EIO: e.g. a segment larger than the
    /// path MTU allows for GSO, or no GSO on this route) is sent again one datagram at a
    /// time, so nothing is lost for want of the offload.
    pub fn send(&self, to: SocketAddr, contents: &[u8], segment: Option<usize>) -> usize {
        let destination = self.wire_addr(to);
        let one = |contents: &[u8]| {
            let t = Transmit {
                destination,
                ecn: None,
                contents,
                segment_size: None,
                src_ip: None,
            };
            self.state.try_send((&self.socket).into(), &t)
        };
        match segment.filter(|s| *s < contents.len()) {
            None => usize::from(one(contents).is_err()),
            Some(seg) => {
                let t = Transmit {
                    destination,
                    ecn: None,
                    contents,
                    segment_size: Some(seg),
                    src_ip: None,
                };
                match self.state.try_send((&self.socket).into(), &t) {
                    Ok(()) => 0,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => contents.len().div_ceil(seg),
                    Err(_) => contents.chunks(seg).filter(|c| one(c).is_err()).count(),
                }
            }
        }
    }

    /// Waits up to `timeout` for datagrams, then receives a batch. Returns how many
    /// entries of `meta` are filled (0 on timeout); each covers `meta.len` bytes of its
    /// buffer made of datagrams of `meta.stride` bytes.
    pub fn recv(
        &self,
        bufs: &mut [Vec<u8>],
        meta: &mut [RecvMeta],
        timeout: Duration,
    ) -> io::Result<usize> {
        loop {
            let mut slices: Vec<IoSliceMut<'_>> =
                bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            match self.state.recv((&self.socket).into(), &mut slices, meta) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let mut pfd = libc::pollfd {
                        fd: self.socket.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd for a socket we own.
                    let r = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
                    if r == 0 {
                        return Ok(0);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// `[::]:port` with IPV6_V6ONLY off, whatever `net.ipv6.bindv6only` says.
fn bind_dual_stack(port: u16) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_only_v6(false)?;
    s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    Ok(s.into())
}

/// A datagram's source as the tunnel should remember it (IPv4-mapped back to IPv4).
pub(crate) fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        a => a,
    }
}
