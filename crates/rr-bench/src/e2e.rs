//! End to end: the real `rootless-router` binary as a child process, fed and drained over
//! UDP on 127.0.0.1 by this process.
//!
//! Per flow k (tunnels 2k → 2k+1): a generator thread is a WireGuard peer of the router's
//! tunnel 2k (`Tunnel` on a UDP socket, real handshake), encrypts its N datagrams *before*
//! the measured interval into one buffer and then sends them with `sendmmsg` (64 per call),
//! unpaced or paced to a given rate. A sink thread is the peer of tunnel 2k+1: it answers
//! the router's handshake, then only counts the encrypted datagrams (`recvmmsg`, 64 per call,
//! into a ring of the last 1024) and at the end decrypts the newest 1000 through its
//! `Tunnel` to prove they are real forwarded packets.
//!
//! Measured over [first send, last datagram at a sink]: packets at the sinks, the router's
//! CPU time (utime + stime from `/proc/PID/stat`) and per thread (`/proc/PID/task/*/stat`),
//! this process's own CPU time (generators + sinks), and UDP receive-queue drops of the
//! router's ingress sockets and of the sinks' sockets (`/proc/net/udp*`), so every offered
//! packet is accounted for.

use crate::inproc::{handshake_params, Keys};
use crate::packet;
use crate::procfs;
use anyhow::{bail, ensure, Context, Result};
use rr_dataplane::tunnel::{Received, Tunnel, MAX_DATAGRAM};
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Datagrams per `sendmmsg` / `recvmmsg` call.
const BATCH: usize = 64;
/// Datagrams the sink keeps (the newest) for the final decryption check.
const RING: usize = 1024;
const SLOT: usize = 2048;
/// How many of the newest datagrams the sink decrypts at the end.
const SAMPLE: usize = 1000;
/// What the sinks ask for as receive buffer (the kernel caps it at `rmem_max`).
pub(crate) const SINK_RCVBUF: usize = 8 << 20;
/// A sink that finds its socket empty sleeps this long instead of blocking in `recvmmsg`.
/// Blocking would make every datagram the router sends wake a sleeping thread, a
/// cross-process wakeup (and often a preemption) charged to the router that a real egress
/// link never costs it. Polling keeps that out of the router's CPU time; the sink's buffer
/// holds far more than a poll interval's worth.
const SINK_POLL: Duration = Duration::from_micros(100);

/// One run's parameters.
pub struct RunSpec<'a> {
    pub router: &'a Path,
    /// Inner IP packet size.
    pub size: usize,
    /// Independent flows, each through two tunnels of its own.
    pub flows: usize,
    /// Datagrams each generator sends.
    pub packets: usize,
    /// How each generator offers its packets.
    pub load: Load,
    /// Generators stop sending after this long even if they have datagrams left.
    pub max_time: Duration,
}

/// How a generator offers packets to the router.
#[derive(Clone, Copy, Debug)]
pub enum Load {
    /// Closed loop: at most this many datagrams sent but not yet seen by the flow's sink.
    /// The router's ingress queue never runs dry (so it is busy whenever it holds a CPU)
    /// and never overflows (so the generator does not burn CPU on datagrams the kernel
    /// drops): the forwarded rate is the router's capacity on the CPU it got.
    Window(usize),
    /// Open loop at this many packets per second.
    Rate(f64),
    /// Open loop, as fast as `sendmmsg` goes.
    Unpaced,
}

/// A window for [`Load::Window`] that fits about twice into a socket receive buffer of
/// `rmem` bytes, for datagrams of `len` bytes (estimating the kernel's per-datagram
/// memory, its "truesize", as the power of two above the data plus headers, plus the
/// `sk_buff` itself).
pub fn window_for(rmem: u64, len: usize) -> usize {
    let truesize = (len + 400).next_power_of_two() + 256;
    ((rmem as usize / truesize) / 2).clamp(8, 512)
}

/// One flow's outcome.
pub struct FlowResult {
    pub sent: u64,
    pub send_time: Duration,
    pub send_errors: u64,
    pub received: u64,
    /// Drops in the router's ingress socket (offered but never read by the router).
    pub router_drops: u64,
    /// Drops in the sink's socket (forwarded by the router but not counted by us).
    pub sink_drops: u64,
    pub verified: usize,
    pub sampled: usize,
}

impl FlowResult {
    pub fn offered_pps(&self) -> f64 {
        self.sent as f64 / self.send_time.as_secs_f64().max(1e-9)
    }
}

/// One run's outcome.
pub struct RunResult {
    pub flows: Vec<FlowResult>,
    /// First send to last datagram at any sink.
    pub window: Duration,
    /// Machine-wide busy and steal time over the window, all processes.
    pub machine_busy: Duration,
    pub machine_steal: Duration,
    pub router_cpu: Duration,
    /// Router threads by name with their CPU time over the window, busiest first.
    pub threads: Vec<(String, Duration)>,
    /// This process (generators and sinks) over the window.
    pub bench_cpu: Duration,
}

impl RunResult {
    pub fn received(&self) -> u64 {
        self.flows.iter().map(|f| f.received).sum()
    }
    pub fn forwarded_pps(&self) -> f64 {
        self.received() as f64 / self.window.as_secs_f64()
    }
    pub fn router_cores(&self) -> f64 {
        self.router_cpu.as_secs_f64() / self.window.as_secs_f64()
    }
    pub fn bench_cores(&self) -> f64 {
        self.bench_cpu.as_secs_f64() / self.window.as_secs_f64()
    }
    /// Cores busy with anything else (other processes, kernel threads), over the window.
    pub fn other_cores(&self) -> f64 {
        (self.machine_busy.as_secs_f64()
            - self.router_cpu.as_secs_f64()
            - self.bench_cpu.as_secs_f64())
        .max(0.0)
            / self.window.as_secs_f64()
    }
    /// Forwarded packets per second of router CPU time.
    pub fn per_core_pps(&self) -> f64 {
        self.received() as f64 / self.router_cpu.as_secs_f64().max(1e-9)
    }
}

// ------------------------------------------------------------------ the router process

/// The router as a child process; stopped (SIGTERM, then SIGKILL) when dropped.
struct RouterProc {
    child: Child,
    dir: PathBuf,
}

impl RouterProc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RouterProc {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A UDP port that was free a moment ago (dual-stack, as the router binds).
fn free_port() -> Result<u16> {
    let s = UdpSocket::bind("[::]:0")
        .or_else(|_| UdpSocket::bind("0.0.0.0:0"))
        .context("probing for a free UDP port")?;
    Ok(s.local_addr()?.port())
}

/// The sockets and keys of one flow, known before the router starts.
struct FlowSetup {
    gen_socket: UdpSocket,
    sink_socket: UdpSocket,
    /// Router ports: ingress (from the generator), egress (towards the sink).
    router_in: u16,
    router_out: u16,
    gen_keys: Keys,
    sink_keys: Keys,
}

fn config_text(dir: &Path, flows: &[FlowSetup]) -> Result<String> {
    use std::fmt::Write as _;
    let mut t = String::new();
    writeln!(
        t,
        "[router]\naddresses = [\"172.20.0.1/32\"]\ncontrol_socket = \"{}\"\n",
        dir.join("ctl.sock").display()
    )?;
    for (k, f) in flows.iter().enumerate() {
        let sink_port = f.sink_socket.local_addr()?.port();
        for (i, keys, port, endpoint) in [
            (2 * k, &f.gen_keys, f.router_in, None),
            (2 * k + 1, &f.sink_keys, f.router_out, Some(sink_port)),
        ] {
            writeln!(
                t,
                "[[interface]]\nname = \"{}\"\nprivate_key = \"{}\"\nlisten_port = {port}\n\
                 peer_public_key = \"{}\"",
                iface_name(i),
                keys.router_private.to_base64(),
                rr_config::keys::public(&keys.peer_private).to_base64(),
            )?;
            if let Some(p) = endpoint {
                writeln!(t, "endpoint = \"127.0.0.1:{p}\"")?;
            }
            writeln!(
                t,
                "\n[[route]]\nprefix = \"172.20.{}.0/24\"\ninterface = \"{}\"\n",
                i + 1,
                iface_name(i)
            )?;
        }
    }
    Ok(t)
}

/// Tunnel names: a, b, c, d, ... (the router's threads are then `rx-a`, `rx-b`, ...).
pub fn iface_name(i: usize) -> String {
    char::from(b'a' + i as u8).to_string()
}

fn start_router(bin: &Path, flows: &[FlowSetup]) -> Result<RouterProc> {
    let dir = std::env::temp_dir().join(format!("rr-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("router.toml");
    std::fs::write(&config, config_text(&dir, flows)?)?;
    let log = std::fs::File::create(dir.join("router.log"))?;
    let child = Command::new(bin)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut router = RouterProc { child, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    let ports: Vec<u16> = flows
        .iter()
        .flat_map(|f| [f.router_in, f.router_out])
        .collect();
    while !ports.iter().all(|p| procfs::udp_port_bound(*p)) {
        if let Ok(Some(status)) = router.child.try_wait() {
            let log = std::fs::read_to_string(router.dir.join("router.log")).unwrap_or_default();
            bail!("the router exited ({status}) during start-up:\n{log}");
        }
        if Instant::now() > deadline {
            bail!("the router did not bind its tunnel ports within 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(router)
}

// ------------------------------------------------------------------ raw batched UDP

pub(crate) fn sockaddr_v4(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn sockaddr_to_std(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    if s.ss_family as i32 == libc::AF_INET {
        // SAFETY: ss_family says the storage holds a sockaddr_in; storage is larger and aligned.
        let sin = unsafe { &*(s as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
        Some(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
            u16::from_be(sin.sin_port),
        )))
    } else {
        None
    }
}

pub(crate) fn set_rcvbuf(s: &UdpSocket, bytes: usize) {
    let v = bytes as libc::c_int;
    // SAFETY: a valid fd and an int option value of the right size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

// ------------------------------------------------------------------ generator

pub(crate) struct GenOutcome {
    pub sent: u64,
    pub send_time: Duration,
    pub errors: u64,
}

/// Handshake with the router over `socket`; returns once the first data packet went out.
fn generator_handshake(t: &mut Tunnel, socket: &UdpSocket, src_net: u8) -> Result<()> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut rx = vec![0u8; MAX_DATAGRAM];
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut next_init = Instant::now();
    loop {
        if Instant::now() > deadline {
            bail!("no handshake with the router's ingress tunnel within 10 s");
        }
        if Instant::now() >= next_init {
            // A packet to queue; boringtun sends an initiation when none is in flight.
            if let Some((to, d)) = t.send(&packet::ipv4_udp(100, src_net, 0), &mut buf) {
                socket.send_to(d, to)?;
            }
            next_init = Instant::now() + Duration::from_secs(1);
        }
        let (n, from) = match socket.recv_from(&mut rx) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut data_sent = false;
        t.receive(from, &rx[..n], &mut buf, &mut |to, d| {
            data_sent |= d.first() == Some(&4);
            let _ = socket.send_to(d, to);
        });
        if data_sent {
            return Ok(());
        }
    }
}

/// Encrypts `n` packets for this flow into one buffer, ready for `sendmmsg`.
fn pre_encrypt(t: &mut Tunnel, size: usize, src_net: u8, n: usize) -> Result<(Vec<u8>, usize)> {
    let stride = (size + 32 + 15) & !15;
    let mut big = vec![0u8; stride * n];
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let plain = packet::ipv4_udp(size, src_net, 0);
    let mut len = 0;
    for (i, slot) in big.chunks_exact_mut(stride).enumerate() {
        let mut p = plain.clone();
        // Vary the host part, and keep the header checksum valid.
        let host = 1 + (i % 250) as u8;
        p[15] = host;
        p[19] = host;
        p[10..12].fill(0);
        let c = packet::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        let (_, d) = t
            .send(&p, &mut buf)
            .context("session lost while encrypting")?;
        ensure!(
            d.first() == Some(&4) && d.len() <= stride,
            "not a data message"
        );
        len = d.len();
        slot[..len].copy_from_slice(d);
    }
    Ok((big, len))
}

#[allow(clippy::too_many_arguments)]
fn generator(
    mut tunnel: Tunnel,
    socket: UdpSocket,
    router: SocketAddrV4,
    spec: (usize, usize, Load, Duration),
    src_net: u8,
    sink_warm: Arc<AtomicBool>,
    sink_count: Arc<AtomicU64>,
    barrier: Arc<Barrier>,
) -> Result<GenOutcome> {
    let (size, n, load, max_time) = spec;
    let prepared = (|| -> Result<(Vec<u8>, usize)> {
        generator_handshake(&mut tunnel, &socket, src_net)?;
        // Probe until the router has a session with the sink, too.
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut probe = 1;
        while !sink_warm.load(Ordering::Acquire) {
            if Instant::now() > deadline {
                bail!("no packet reached the sink within 10 s (router egress handshake?)");
            }
            if let Some((to, d)) = tunnel.send(&packet::ipv4_udp(size, src_net, probe), &mut buf) {
                socket.send_to(d, to)?;
            }
            probe += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        pre_encrypt(&mut tunnel, size, src_net, n)
    })();
    barrier.wait();
    let (big, len) = prepared?;
    Ok(send_all(
        &socket,
        router,
        &big,
        n,
        len,
        n,
        load,
        &sink_count,
        max_time,
    ))
}

/// Sends `total` datagrams to `to` with `sendmmsg`, as `load` says: datagram i is the
/// (i mod n)-th of the `n` in `big` (equal strides, each `len` bytes). `sink_count` is
/// what the flow's sink has counted so far.
#[allow(clippy::too_many_arguments)]
pub(crate) fn send_all(
    socket: &UdpSocket,
    to: SocketAddrV4,
    big: &[u8],
    n: usize,
    len: usize,
    total: usize,
    load: Load,
    sink_count: &AtomicU64,
    max_time: Duration,
) -> GenOutcome {
    let stride = big.len() / n;

    let name = sockaddr_v4(to);
    let mut iov: Vec<libc::iovec> = (0..n)
        .map(|i| libc::iovec {
            iov_base: big[i * stride..].as_ptr() as *mut libc::c_void,
            iov_len: len,
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = &name as *const libc::sockaddr_in as *mut libc::c_void;
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_hdr.msg_iov = v as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    let fd = socket.as_raw_fd();
    let start = Instant::now();
    let (mut i, mut errors) = (0usize, 0u64);
    // Window mode: what the sink had counted before we started, datagrams written off as
    // lost, and when the sink last made progress.
    let base = sink_count.load(Ordering::Relaxed);
    let (mut lost, mut seen, mut progress) = (0u64, base, start);
    while i < total && start.elapsed() < max_time {
        let due = match load {
            Load::Unpaced => total,
            Load::Rate(r) => ((start.elapsed().as_secs_f64() * r) as usize + 1).min(total),
            Load::Window(w) => {
                let now_seen = sink_count.load(Ordering::Relaxed);
                if now_seen != seen {
                    seen = now_seen;
                    progress = Instant::now();
                }
                let in_flight = (i as u64).saturating_sub(seen - base + lost);
                if in_flight >= w as u64 && progress.elapsed() > Duration::from_millis(50) {
                    // Nothing came through for 50 ms: what is in flight was dropped.
                    lost += in_flight;
                    progress = Instant::now();
                    continue;
                }
                (i + (w as u64).saturating_sub(in_flight) as usize).min(total)
            }
        };
        if due <= i {
            std::thread::sleep(Duration::from_micros(match load {
                Load::Window(_) => 20,
                _ => 100,
            }));
            continue;
        }
        let b = (due - i).min(BATCH).min(n - i % n);
        // SAFETY: hdrs[i % n..i % n + b] are valid headers pointing at `iov`, `big` and `name`,
        // all alive for the duration of the call.
        let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr().add(i % n), b as libc::c_uint, 0) };
        if r > 0 {
            i += r as usize;
        } else {
            // ENOBUFS and the like: that datagram is not offered; go on.
            errors += 1;
            i += 1;
        }
    }
    let send_time = start.elapsed();
    drop(hdrs);
    drop(iov);
    GenOutcome {
        sent: i as u64 - errors,
        send_time,
        errors,
    }
}

// ------------------------------------------------------------------ sink

pub(crate) struct SinkOutcome {
    pub received: u64,
    pub last: Option<Instant>,
    pub verified: usize,
    pub sampled: usize,
}

/// Counts what arrives on `socket` until `stop`. With a tunnel: handshakes go through it,
/// data counts once a first packet decrypted (`warm`), and the newest datagrams are
/// decrypted and checked at the end. Without: every datagram counts.
pub(crate) fn sink(
    mut tunnel: Option<Tunnel>,
    socket: UdpSocket,
    size: usize,
    dst_net: u8,
    warm: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Result<SinkOutcome> {
    let fd = socket.as_raw_fd();
    let mut ring = vec![0u8; RING * SLOT];
    // Length of the datagram in each slot if it is a data message still to be checked, else 0.
    let mut data_len = [0usize; RING];
    // SAFETY: plain data; zeroed is valid.
    let mut names: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; RING];
    let mut iov: Vec<libc::iovec> = ring
        .chunks_exact_mut(SLOT)
        .map(|s| libc::iovec {
            iov_base: s.as_mut_ptr() as *mut libc::c_void,
            iov_len: SLOT,
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .zip(names.iter_mut())
        .map(|(v, name)| {
            // SAFETY: as above.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = name as *mut libc::sockaddr_storage as *mut libc::c_void;
            h.msg_hdr.msg_iov = v as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    let mut plain = vec![0u8; MAX_DATAGRAM];
    let (mut pos, mut received, mut last) = (0usize, 0u64, None);
    let mut is_warm = tunnel.is_none();
    warm.store(is_warm, Ordering::Release);
    while !stop.load(Ordering::Relaxed) {
        let b = BATCH.min(RING - pos);
        for h in &mut hdrs[pos..pos + b] {
            h.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: hdrs[pos..pos + b] point at ring slots and name storage we own.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr().add(pos),
                b as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r <= 0 {
            // Empty (or a transient error): poll again later rather than block, so the
            // router's `sendto` never has a sleeping sink to wake (see SINK_POLL).
            std::thread::sleep(SINK_POLL);
            continue;
        }
        let r = r as usize;
        let mut data = 0;
        for j in pos..pos + r {
            let len = hdrs[j].msg_len as usize;
            let d = &ring[j * SLOT..j * SLOT + len.min(SLOT)];
            data_len[j] = 0;
            if is_warm && (tunnel.is_none() || (d.first() == Some(&4) && len > 32)) {
                data += 1;
                data_len[j] = len;
                continue;
            }
            // Handshake, keepalive, or the first packets: through the tunnel.
            let (Some(from), Some(tunnel)) = (sockaddr_to_std(&names[j]), tunnel.as_mut()) else {
                continue;
            };
            let got = tunnel.receive(from, d, &mut plain, &mut |to, reply| {
                let _ = socket.send_to(reply, to);
            });
            if let Received::Packet(p) = got {
                if packet::is_forwarded(p, size, dst_net) && !is_warm {
                    is_warm = true;
                    warm.store(true, Ordering::Release);
                }
            }
        }
        if data > 0 {
            received += data;
            last = Some(Instant::now());
            count.store(received, Ordering::Relaxed);
        }
        pos = (pos + r) % RING;
    }
    drop(hdrs);
    drop(iov);

    // The newest data datagrams, oldest first, through the tunnel.
    let order: Vec<usize> = (0..RING)
        .map(|k| (pos + k) % RING)
        .filter(|&j| data_len[j] > 0)
        .collect();
    let Some(tunnel) = tunnel.as_mut() else {
        return Ok(SinkOutcome {
            received,
            last,
            verified: 0,
            sampled: 0,
        });
    };
    let sample = &order[order.len().saturating_sub(SAMPLE)..];
    let from = tunnel
        .endpoint()
        .context("the sink never heard from the router")?;
    let mut verified = 0;
    for &j in sample {
        let d = &ring[j * SLOT..j * SLOT + data_len[j]];
        if let Received::Packet(p) = tunnel.receive(from, d, &mut plain, &mut |_, _| {}) {
            if packet::is_forwarded(p, size, dst_net) {
                verified += 1;
            }
        }
    }
    Ok(SinkOutcome {
        received,
        last,
        verified,
        sampled: sample.len(),
    })
}

// ------------------------------------------------------------------ a run

fn thread_delta(
    before: &BTreeMap<u32, (String, Duration)>,
    after: &BTreeMap<u32, (String, Duration)>,
) -> Vec<(String, Duration)> {
    let mut v: Vec<(String, Duration)> = after
        .iter()
        .map(|(tid, (name, cpu))| {
            let b = before.get(tid).map_or(Duration::ZERO, |(_, c)| *c);
            (name.clone(), cpu.saturating_sub(b))
        })
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

pub fn run(spec: &RunSpec) -> Result<RunResult> {
    crate::progress(&format!(
        "{} B: end to end, {} flow(s), {:?}, {} datagrams each",
        spec.size, spec.flows, spec.load, spec.packets
    ));
    let mut setups = Vec::new();
    for _ in 0..spec.flows {
        let gen_socket = UdpSocket::bind("127.0.0.1:0")?;
        let sink_socket = UdpSocket::bind("127.0.0.1:0")?;
        set_rcvbuf(&sink_socket, SINK_RCVBUF);
        setups.push(FlowSetup {
            gen_socket,
            sink_socket,
            router_in: free_port()?,
            router_out: free_port()?,
            gen_keys: Keys::generate(),
            sink_keys: Keys::generate(),
        });
    }
    let router = start_router(spec.router, &setups)?;
    let pid = router.pid();

    let barrier = Arc::new(Barrier::new(spec.flows + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let mut gens = Vec::new();
    let mut sinks = Vec::new();
    let mut counts = Vec::new();
    let mut ingress_ports = Vec::new();
    for (k, f) in setups.into_iter().enumerate() {
        let (src_net, dst_net) = (2 * k as u8 + 1, 2 * k as u8 + 2);
        let router_in = SocketAddrV4::new(Ipv4Addr::LOCALHOST, f.router_in);
        let sink_port = f.sink_socket.local_addr()?.port();
        ingress_ports.push((f.router_in, sink_port));
        let gen_tunnel = Tunnel::new(
            &handshake_params(
                &f.gen_keys,
                Some(SocketAddr::V4(router_in)),
                1000 + k as u32,
            ),
            Tunnel::rate_limiter(&f.gen_keys.peer_private.0, 100),
        );
        let sink_tunnel = Tunnel::new(
            &handshake_params(&f.sink_keys, None, 2000 + k as u32),
            Tunnel::rate_limiter(&f.sink_keys.peer_private.0, 100),
        );
        let warm = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        counts.push(count.clone());
        let (w, s, size) = (warm.clone(), stop.clone(), spec.size);
        let sink_socket = f.sink_socket;
        sinks.push(
            std::thread::Builder::new()
                .name(format!("sink-{k}"))
                .spawn(move || sink(Some(sink_tunnel), sink_socket, size, dst_net, w, count, s))?,
        );
        let b = barrier.clone();
        let gen_spec = (spec.size, spec.packets, spec.load, spec.max_time);
        let gen_socket = f.gen_socket;
        let c = counts[k].clone();
        gens.push(
            std::thread::Builder::new()
                .name(format!("gen-{k}"))
                .spawn(move || {
                    generator(
                        gen_tunnel, gen_socket, router_in, gen_spec, src_net, warm, c, b,
                    )
                })?,
        );
    }

    barrier.wait();
    crate::progress("handshakes done, datagrams encrypted: sending");
    let cpu0 = procfs::process_cpu(pid).context("reading the router's CPU time")?;
    let threads0 = procfs::thread_cpu(pid);
    let self0 = procfs::process_cpu(std::process::id()).unwrap_or_default();
    let machine0 = procfs::machine_cpu().unwrap_or_default();
    let t0 = Instant::now();
    // Probes of the warm-up that the sinks counted are not part of the run.
    let counted0: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();

    let gen_results: Vec<Result<GenOutcome>> = gens
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|_| bail!("generator panicked")))
        .collect();
    // Drain: wait until the sinks have seen nothing new for 100 ms.
    let total = || {
        counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let (mut seen, mut quiet, deadline) = (total(), 0, Instant::now() + Duration::from_secs(10));
    while quiet < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let now = total();
        quiet = if now == seen { quiet + 1 } else { 0 };
        seen = now;
    }
    crate::progress("drained");
    let cpu1 = procfs::process_cpu(pid).context("reading the router's CPU time")?;
    let threads1 = procfs::thread_cpu(pid);
    let self1 = procfs::process_cpu(std::process::id()).unwrap_or_default();
    let machine1 = procfs::machine_cpu().unwrap_or_default();
    let drops: Vec<(u64, u64)> = ingress_ports
        .iter()
        .map(|(r, s)| (procfs::udp_drops(*r), procfs::udp_drops(*s)))
        .collect();
    stop.store(true, Ordering::Relaxed);
    let sink_results: Vec<Result<SinkOutcome>> = sinks
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|_| bail!("sink panicked")))
        .collect();
    drop(router);
    crate::progress("router stopped");

    let mut flows = Vec::new();
    let mut t_end = t0;
    for (((g, s), (router_drops, sink_drops)), counted0) in gen_results
        .into_iter()
        .zip(sink_results)
        .zip(drops)
        .zip(counted0)
    {
        let (g, s) = (g?, s?);
        if let Some(l) = s.last {
            t_end = t_end.max(l);
        }
        flows.push(FlowResult {
            sent: g.sent,
            send_time: g.send_time,
            send_errors: g.errors,
            received: s.received - counted0,
            router_drops,
            sink_drops,
            verified: s.verified,
            sampled: s.sampled,
        });
    }
    let window = t_end.duration_since(t0);
    ensure!(
        window > Duration::ZERO,
        "no packet came through the router (see its log with RUST_LOG)"
    );
    Ok(RunResult {
        flows,
        window,
        machine_busy: machine1.0.saturating_sub(machine0.0),
        machine_steal: machine1.2.saturating_sub(machine0.2),
        router_cpu: cpu1.saturating_sub(cpu0),
        threads: thread_delta(&threads0, &threads1),
        bench_cpu: self1.saturating_sub(self0),
    })
}
