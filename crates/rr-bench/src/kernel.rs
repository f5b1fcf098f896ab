//! The kernel's share of a forwarded packet: a relay thread that makes exactly the system
//! calls a node's receive thread makes per datagram — one `recvfrom` on a dual-stack UDP
//! socket, one `sendto` of the same bytes from another one to an IPv4-mapped address — and
//! does nothing else (no crypto, no forwarding decision, no locks). Its CPU time per
//! datagram is the floor under the router's end-to-end cost as long as it makes two system
//! calls per packet. Two variants show what the alternatives would leave of that floor:
//! batching (`recvmmsg` + `sendmmsg`, up to 64 per call), and segmentation offload (the
//! relay's socket has `UDP_GRO`, it sends with `UDP_SEGMENT`: one trip through the stack
//! per train of up to 64 datagrams to one endpoint). On loopback a train only arrives
//! coalesced if it was sent as one, so in that variant the generator sends with
//! `UDP_SEGMENT` too — standing in for the NIC's GRO on a real link — and the sink has
//! `UDP_GRO`, so the relay's trains are not cut into datagrams at delivery on its time.
//!
//! Fed and drained like the end-to-end runs: a closed-loop generator and a polling sink,
//! both in other threads; only the relay thread's CPU time is counted.

use crate::e2e::{self, Load};
use crate::{gso, procfs};
use anyhow::{Context, Result};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// The relay thread's cost.
pub struct Floor {
    pub relayed: u64,
    pub cpu: Duration,
}

impl Floor {
    pub fn ns_per_packet(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e9 / self.relayed.max(1) as f64
    }
}

const BATCH: usize = 64;
/// What `rr-node` asks for as its tunnel sockets' receive buffer (the kernel caps it at
/// `rmem_max` and doubles it).
const ROUTER_RCVBUF: usize = 4 << 20;

/// A socket's receive buffer as the kernel holds it.
fn rcvbuf(s: &UdpSocket) -> u64 {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid fd and an int-sized out buffer with its length.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &mut v as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if r == 0 && v > 0 {
        v as u64
    } else {
        212_992
    }
}

/// How the relay does its I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Io {
    /// `recvfrom` + `sendto` per datagram, as a node's receive thread does.
    OneByOne,
    /// `recvmmsg` + `sendmmsg`, up to 64 datagrams per call.
    Batched,
    /// `UDP_GRO` receive + `UDP_SEGMENT` send, up to 64 datagrams per call.
    Offload,
}

/// `sendmsg` of `payload` to `name` as one send; with `segment`, as a `UDP_SEGMENT` train
/// of `segment`-byte datagrams.
fn send_segmented<T>(fd: libc::c_int, name: &T, payload: &[u8], segment: Option<u16>) -> isize {
    let iov = [libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    }];
    gso::send_segments(fd, name, &iov, segment)
}

fn relay_offload(rx: &UdpSocket, tx: &UdpSocket, to: SocketAddrV6, stop: &AtomicBool) -> u64 {
    gso::enable_gro(rx.as_raw_fd());
    let name = sockaddr_in6(to);
    let mut buf = vec![0u8; 65536];
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let mut control = [0u64; 8];
        // SAFETY: plain data; all-zero is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: msg points at live buffers.
        let len = unsafe { libc::recvmsg(rx.as_raw_fd(), &mut msg, 0) };
        if len <= 0 {
            continue;
        }
        let len = len as usize;
        let segment = gso::gro_segment(&msg).filter(|s| *s < len);
        send_segmented(
            tx.as_raw_fd(),
            &name,
            &buf[..len],
            segment.map(|s| s as u16),
        );
        n += segment.map_or(1, |s| len.div_ceil(s)) as u64;
    }
    n
}

/// Generator for [`Io::Offload`]: closed loop like [`Load::Window`], in `UDP_SEGMENT`
/// trains. Returns datagrams sent.
fn send_trains(
    socket: &UdpSocket,
    to: SocketAddrV4,
    len: usize,
    window: usize,
    time: Duration,
    count: &AtomicU64,
) -> u64 {
    let per_train = (65507 / len).min(BATCH);
    let payload = vec![0x42u8; per_train * len];
    let name = crate::e2e::sockaddr_v4(to);
    let start = std::time::Instant::now();
    let base = count.load(Ordering::Relaxed);
    let mut sent = 0u64;
    while start.elapsed() < time {
        let in_flight = sent.saturating_sub(count.load(Ordering::Relaxed) - base);
        let k = (window as u64)
            .saturating_sub(in_flight)
            .min(per_train as u64) as usize;
        if k == 0 {
            std::thread::sleep(Duration::from_micros(20));
            continue;
        }
        let seg = (k > 1).then_some(len as u16);
        if send_segmented(socket.as_raw_fd(), &name, &payload[..k * len], seg) > 0 {
            sent += k as u64;
        } else {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    sent
}

fn sockaddr_in6(to: SocketAddrV6) -> libc::sockaddr_in6 {
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: to.port().to_be(),
        sin6_flowinfo: 0,
        sin6_addr: libc::in6_addr {
            s6_addr: to.ip().octets(),
        },
        sin6_scope_id: 0,
    }
}

fn relay_one_by_one(rx: &UdpSocket, tx: &UdpSocket, to: SocketAddr, stop: &AtomicBool) -> u64 {
    let mut buf = vec![0u8; 65536];
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        if let Ok((len, _from)) = rx.recv_from(&mut buf) {
            let _ = tx.send_to(&buf[..len], to);
            n += 1;
        }
    }
    n
}

fn relay_batched(rx: &UdpSocket, tx: &UdpSocket, to: SocketAddrV6, stop: &AtomicBool) -> u64 {
    const SLOT: usize = 2048;
    let mut ring = vec![0u8; BATCH * SLOT];
    let name = sockaddr_in6(to);
    let mut iov: Vec<libc::iovec> = ring
        .chunks_exact_mut(SLOT)
        .map(|s| libc::iovec {
            iov_base: s.as_mut_ptr() as *mut libc::c_void,
            iov_len: SLOT,
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: plain data; all-zero is a valid empty header.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_iov = v as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    let mut out: Vec<libc::mmsghdr> = hdrs.clone();
    let mut out_iov: Vec<libc::iovec> = iov.clone();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: the headers point at `ring` slots we own.
        let r = unsafe {
            libc::recvmmsg(
                rx.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if r <= 0 {
            continue;
        }
        let r = r as usize;
        for j in 0..r {
            out_iov[j].iov_base = iov[j].iov_base;
            out_iov[j].iov_len = hdrs[j].msg_len as usize;
            out[j].msg_hdr.msg_iov = &mut out_iov[j];
            out[j].msg_hdr.msg_name = &name as *const libc::sockaddr_in6 as *mut libc::c_void;
            out[j].msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        }
        let mut sent = 0;
        while sent < r {
            // SAFETY: out[sent..r] point at `out_iov`, `ring` and `name`, all alive.
            let k = unsafe {
                libc::sendmmsg(
                    tx.as_raw_fd(),
                    out.as_mut_ptr().add(sent),
                    (r - sent) as libc::c_uint,
                    0,
                )
            };
            if k <= 0 {
                break;
            }
            sent += k as usize;
        }
        n += r as u64;
    }
    n
}

/// Relays `datagram_len`-byte datagrams for about `time`, doing its I/O as `io` says.
/// The relay's receive socket asks for the buffer the router's tunnel sockets ask for, and
/// the closed loop's window is sized from what it got, as in the end-to-end runs.
pub fn floor(datagram_len: usize, io: Io, time: Duration) -> Result<Floor> {
    let dual = |p| UdpSocket::bind(("::", p)).or_else(|_| UdpSocket::bind(("0.0.0.0", p)));
    let rx = dual(0).context("relay socket")?;
    let tx = dual(0).context("relay socket")?;
    e2e::set_rcvbuf(&rx, ROUTER_RCVBUF);
    let window = e2e::window_for(rcvbuf(&rx), (datagram_len + 15) & !15);
    rx.set_read_timeout(Some(Duration::from_millis(20)))?;
    let sink_socket = UdpSocket::bind("127.0.0.1:0")?;
    e2e::set_rcvbuf(&sink_socket, e2e::SINK_RCVBUF);
    let sink_port = sink_socket.local_addr()?.port();
    let to = SocketAddrV6::new(Ipv4Addr::LOCALHOST.to_ipv6_mapped(), sink_port, 0, 0);
    let rx_port = rx.local_addr()?.port();
    let gen_socket = UdpSocket::bind("127.0.0.1:0")?;

    let stop_relay = Arc::new(AtomicBool::new(false));
    let stop_sink = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(2));
    let relay = {
        let (stop, barrier) = (stop_relay.clone(), barrier.clone());
        std::thread::Builder::new()
            .name("relay".into())
            .spawn(move || {
                barrier.wait();
                let cpu0 = procfs::thread_cpu_now();
                let n = match io {
                    Io::OneByOne => relay_one_by_one(&rx, &tx, SocketAddr::V6(to), &stop),
                    Io::Batched => relay_batched(&rx, &tx, to, &stop),
                    Io::Offload => relay_offload(&rx, &tx, to, &stop),
                };
                (n, procfs::thread_cpu_now().saturating_sub(cpu0))
            })?
    };
    let sink = {
        let (stop, count) = (stop_sink.clone(), count.clone());
        let warm = Arc::new(AtomicBool::new(false));
        std::thread::Builder::new()
            .name("sink".into())
            .spawn(move || {
                e2e::sink(
                    None,
                    sink_socket,
                    0,
                    0,
                    io == Io::Offload,
                    warm,
                    count,
                    stop,
                )
            })?
    };
    // Any bytes will do: 4096 datagrams, cycled, for `time` (or 400k per second of it).
    let n = 4096;
    let stride = (datagram_len + 15) & !15;
    let big = vec![0x42u8; n * stride];
    let total = (time.as_secs_f64() * 400_000.0) as usize;
    barrier.wait();
    let relay_addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, rx_port);
    let sent = match io {
        Io::Offload => send_trains(&gen_socket, relay_addr, datagram_len, window, time, &count),
        _ => {
            e2e::send_all(
                &gen_socket,
                relay_addr,
                &big,
                n,
                datagram_len,
                total,
                Load::Window(window),
                &count,
                time,
                false,
                None,
            )
            .sent
        }
    };
    // Let the last datagrams through, then stop the relay first (its CPU clock stops with it).
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while count.load(Ordering::Relaxed) < sent && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop_relay.store(true, Ordering::Relaxed);
    let (relayed, cpu) = relay
        .join()
        .map_err(|_| anyhow::anyhow!("relay panicked"))?;
    stop_sink.store(true, Ordering::Relaxed);
    sink.join()
        .map_err(|_| anyhow::anyhow!("sink panicked"))??;
    Ok(Floor { relayed, cpu })
}
