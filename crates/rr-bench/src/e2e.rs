//! End to end: the real `rootless-router` binary as a child process, fed and drained over
//! UDP on 127.0.0.1 by this process.
//!
//! Per flow k (tunnels 2k → 2k+1): a generator thread is a WireGuard peer of the router's
//! tunnel 2k (`Tunnel` on a UDP socket, real handshake), encrypts its N datagrams *before*
//! the measured interval into one buffer and then sends them, unpaced, paced to a rate or
//! in closed loop. A sink thread is the peer of tunnel 2k+1: it answers the router's
//! handshake, then only counts the encrypted datagrams (into a ring of the newest) and at
//! the end decrypts the newest 1000 through its `Tunnel` to prove they are real forwarded
//! packets.
//!
//! The peers do their I/O one of two ways ([`Peers`]):
//! - as wireguard-go and kernel WireGuard on a GRO-capable NIC do (the default): the
//!   generator sends runs of equal-sized datagrams with one `sendmsg` and a `UDP_SEGMENT`
//!   control message (GSO; up to 64 per send within 64 KiB), and the sink's socket has
//!   `UDP_GRO`, so the router's segmented sends arrive as one buffer per run, split by the
//!   segment size the kernel reports. On loopback this matters beyond the peers' own cost:
//!   a GSO send to a socket *without* `UDP_GRO` is cut into datagrams at delivery, in the
//!   sending thread — so a plain sink would charge the router for segmenting and queueing
//!   each of its datagrams, work a NIC (or the far host) does on a real link;
//! - one datagram at a time (`--plain-peers`): `sendmmsg` of 64 and `recvmmsg` of 64.
//!
//! Measured over [first send, last datagram at a sink]: packets at the sinks, the router's
//! CPU time (its threads' nanosecond run times from `/proc/PID/task/*/schedstat`, else
//! utime + stime) and per thread (`/proc/PID/task/*/stat`), this process's own CPU time
//! (generators + sinks), UDP receive-queue drops of the router's ingress sockets and of
//! the sinks' sockets (`/proc/net/udp*`) and the router's own counters (over its control
//! socket), so every offered packet is accounted for, and — sampled every few
//! milliseconds from the run times — how long the router's receive threads provably ran
//! at the same time.

use crate::inproc::{handshake_params, Keys};
use crate::packet;
use crate::{gso, procfs};
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

/// Datagrams per `sendmmsg` / `recvmmsg` call (plain peers).
const BATCH: usize = 64;
/// Receive buffers the plain sink keeps (the newest) for the final decryption check, and
/// their size.
const RING: usize = 1024;
const SLOT: usize = 2048;
/// The same for a `UDP_GRO` sink, whose buffers hold whole runs: up to 64 KiB each, 16
/// per `recvmmsg`.
const GRO_RING: usize = 64;
const GRO_SLOT: usize = 1 << 16;
const GRO_BATCH: usize = 16;
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
    /// How the peers (generators and sinks) do their I/O.
    pub peers: Peers,
    /// Generators stop sending after this long even if they have datagrams left.
    pub max_time: Duration,
}

/// How the benchmark's WireGuard peers do their I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peers {
    /// As wireguard-go does: GSO runs (`UDP_SEGMENT`) out, `UDP_GRO` in.
    Offload,
    /// One datagram per message: `sendmmsg` out, `recvmmsg` in.
    Plain,
}

impl Peers {
    pub fn describe(self) -> &'static str {
        match self {
            Peers::Offload => {
                "peers as wireguard-go: GSO/GRO (generator: sendmsg + UDP_SEGMENT, up to 64 \
                 datagrams per send; sink: UDP_GRO)"
            }
            Peers::Plain => {
                "plain peers: one datagram per message (generator: sendmmsg of 64; sink: \
                 recvmmsg of 64, no UDP_GRO)"
            }
        }
    }
}

/// How a generator offers packets to the router.
#[derive(Clone, Copy, Debug)]
pub enum Load {
    /// [`Load::Window`] with a window sized from the router's ingress socket buffer, read
    /// (with `ss`) once the router is up; falls back to `rmem_default`.
    Closed,
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
    /// Send system calls the generator made.
    pub send_calls: u64,
    /// The `errno` that made the generator give up GSO for `sendmmsg`, if it did.
    pub gso_fallback: Option<i32>,
    /// Messages the sink received that held data: with `UDP_GRO`, runs of datagrams.
    pub sink_messages: u64,
    pub received: u64,
    /// Drops in the router's ingress socket (offered but never read by the router), as the
    /// kernel counts them: per message, so a GSO run dropped whole counts once.
    pub router_drops: u64,
    /// Drops in the sink's socket (forwarded by the router but not counted by us), per
    /// message likewise.
    pub sink_drops: u64,
    /// The router's own count of sends that failed on the egress tunnel (`tx_errors`), and
    /// of ingress datagrams that did not authenticate (`rx_errors`), if it answered.
    pub router_tx_errors: Option<u64>,
    pub router_rx_errors: Option<u64>,
    /// The router's packet counts on the flow's ingress (received) and egress (sent)
    /// tunnels, warm-up probes included, if it answered.
    pub router_rx_packets: Option<u64>,
    pub router_tx_packets: Option<u64>,
    pub verified: usize,
    pub sampled: usize,
}

impl FlowResult {
    pub fn offered_pps(&self) -> f64 {
        self.sent as f64 / self.send_time.as_secs_f64().max(1e-9)
    }
    /// Datagrams per send system call.
    pub fn per_send(&self) -> f64 {
        (self.sent + self.send_errors) as f64 / self.send_calls.max(1) as f64
    }
    /// Datagrams per message at the sink (the router's segments per send, with `UDP_GRO`).
    pub fn per_sink_message(&self) -> f64 {
        self.received as f64 / self.sink_messages.max(1) as f64
    }
}

/// How long two of the router's receive threads provably ran at the same time.
pub struct Parallel {
    /// The two receive threads with the most CPU time, with it (from `schedstat`).
    pub threads: [(String, Duration); 2],
    /// Sum over sampling slices of max(0, a + b − slice): in a slice, two threads that
    /// together ran longer than the slice lasted must have overlapped by at least the
    /// difference. A lower bound on the time both were on a CPU at once.
    pub overlap: Duration,
    /// Sampled time, and the slices in it where each of the two ran > 30% of the slice.
    pub sampled: Duration,
    pub slices: usize,
    pub both_busy_slices: usize,
}

impl Parallel {
    pub fn overlap_fraction(&self) -> f64 {
        self.overlap.as_secs_f64() / self.sampled.as_secs_f64().max(1e-9)
    }
    pub fn both_busy_fraction(&self) -> f64 {
        self.both_busy_slices as f64 / self.slices.max(1) as f64
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
    /// How the generators offered their packets (a closed loop's window resolved).
    pub load: Load,
    pub peers: Peers,
    /// The router's first ingress socket's receive buffer, as `ss` reports it.
    pub router_rcvbuf: Option<u64>,
    /// Packets the router's data plane dropped (all reasons), if it answered.
    pub router_dropped: Option<u64>,
    /// Present when the router has at least two receive threads.
    pub parallel: Option<Parallel>,
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

/// The router's tunnels and counters, asked over its control socket.
fn router_status(dir: &Path) -> Option<(Vec<rr_ctl::InterfaceStatus>, rr_ctl::Counters)> {
    use std::io::BufReader;
    let mut stream = std::os::unix::net::UnixStream::connect(dir.join("ctl.sock")).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    rr_ctl::write_line(&mut stream, &rr_ctl::Request::ShowInterfaces).ok()?;
    match rr_ctl::read_line(&mut BufReader::new(stream), 1 << 20).ok()?? {
        rr_ctl::Response::Interfaces {
            interfaces,
            counters,
        } => Some((interfaces, counters)),
        _ => None,
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

/// `bin run --config DIR/router.toml` with `config` written there, its log in
/// DIR/router.log (warnings and up).
pub fn spawn_router(bin: &Path, dir: &Path, config: &str) -> Result<std::process::Child> {
    std::fs::create_dir_all(dir)?;
    let conf = dir.join("router.toml");
    std::fs::write(&conf, config)?;
    let log = std::fs::File::create(dir.join("router.log"))?;
    Command::new(bin)
        .arg("run")
        .arg("--config")
        .arg(&conf)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

fn start_router(bin: &Path, flows: &[FlowSetup]) -> Result<RouterProc> {
    let dir = std::env::temp_dir().join(format!("rr-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let child = spawn_router(bin, &dir, &config_text(&dir, flows)?)?;
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
    /// Send system calls made.
    pub calls: u64,
    /// The `errno` that made a GSO sender fall back to `sendmmsg`.
    pub gso_fallback: Option<i32>,
    /// What the flow's sink had counted before the first send (warm-up probes).
    pub sink_before: u64,
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

/// Encrypts `n` packets for this flow into one buffer, ready for `sendmmsg` or GSO.
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
    spec: (usize, usize, Load, Duration, Peers),
    src_net: u8,
    sink_warm: Arc<AtomicBool>,
    sink_count: Arc<AtomicU64>,
    barrier: Arc<Barrier>,
) -> Result<GenOutcome> {
    let (size, n, load, max_time, peers) = spec;
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
    let (big, len) = match prepared {
        Ok(p) => p,
        Err(e) => {
            barrier.wait();
            return Err(e);
        }
    };
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
        peers == Peers::Offload,
        Some(&barrier),
    ))
}

/// Sends `total` datagrams to `to` as `load` says: datagram i is the (i mod n)-th of the
/// `n` in `big` (equal strides, each `len` bytes). `sink_count` is what the flow's sink
/// has counted so far. With `gso`, runs of up to [`gso::per_send`] datagrams leave in one
/// `sendmsg` with `UDP_SEGMENT` (one iovec per datagram), as wireguard-go sends; if the
/// kernel refuses that (`EIO`: no segmentation on the route, `EINVAL`: no `UDP_SEGMENT`),
/// the rest goes with `sendmmsg` of up to 64, the plain way. With `ready`, waits there
/// once the message headers are built (for millions of datagrams that takes a while, and
/// must not count as sending time).
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
    gso: bool,
    ready: Option<&Barrier>,
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
    let mut gso_fallback = None;
    let mut use_gso = gso && len <= usize::from(u16::MAX);
    if let Some(b) = ready {
        b.wait();
    }
    let start = Instant::now();
    let (mut i, mut errors, mut calls) = (0usize, 0u64, 0u64);
    // Window mode: what the sink had counted before we started, datagrams written off as
    // lost, and when the sink last made progress.
    let base = sink_count.load(Ordering::Relaxed);
    let (mut lost, mut seen, mut progress) = (0u64, base, start);
    while i < total && start.elapsed() < max_time {
        let per_call = if use_gso { gso::per_send(len) } else { BATCH };
        let due = match load {
            // `run` resolves `Closed` to a window before anything is sent.
            Load::Unpaced | Load::Closed => total,
            Load::Rate(r) => {
                let due = ((start.elapsed().as_secs_f64() * r) as usize + 1).min(total);
                // A GSO sender sends a run once ~100 µs worth (or a full run) is due,
                // rather than a datagram or two at a time.
                let least = if use_gso {
                    per_call.min((r * 100e-6).ceil() as usize).max(1)
                } else {
                    1
                };
                if due - i.min(due) < least && due < total {
                    i
                } else {
                    due
                }
            }
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
                let room = (w as u64).saturating_sub(in_flight) as usize;
                // A GSO sender fills a run when the window lets it (half the window at
                // most), rather than trickle out a datagram whenever one came through.
                let least = if use_gso {
                    per_call.min(w / 2).max(1)
                } else {
                    1
                };
                if room < least && i + room < total {
                    i
                } else {
                    (i + room).min(total)
                }
            }
        };
        if due <= i {
            std::thread::sleep(Duration::from_micros(match load {
                Load::Window(_) => 20,
                _ => 100,
            }));
            continue;
        }
        let k = i % n;
        let b = (due - i).min(per_call).min(n - k);
        calls += 1;
        if use_gso {
            let segment = (b > 1).then_some(len as u16);
            if gso::send_segments(fd, &name, &iov[k..k + b], segment) >= 0 {
                i += b;
                continue;
            }
            match gso::errno() {
                e @ (libc::EIO | libc::EINVAL) if b > 1 => {
                    gso_fallback = Some(e);
                    use_gso = false;
                }
                libc::EINTR => {}
                _ => {
                    // ENOBUFS and the like: that run is not offered; go on.
                    errors += b as u64;
                    i += b;
                }
            }
            continue;
        }
        // SAFETY: hdrs[k..k + b] are valid headers pointing at `iov`, `big` and `name`,
        // all alive for the duration of the call.
        let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr().add(k), b as libc::c_uint, 0) };
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
        calls,
        gso_fallback,
        sink_before: base,
    }
}

// ------------------------------------------------------------------ sink

pub(crate) struct SinkOutcome {
    pub received: u64,
    /// Messages that held data (with `UDP_GRO`: runs).
    pub messages: u64,
    pub last: Option<Instant>,
    pub verified: usize,
    pub sampled: usize,
}

/// Counts what arrives on `socket` until `stop`. With a tunnel: handshakes go through it,
/// data counts once a first packet decrypted (`warm`), and the newest datagrams are
/// decrypted and checked at the end. Without: every datagram counts. With `gro`, the
/// socket gets `UDP_GRO` and each message is split into datagrams by the segment size
/// the kernel reports with it (false if the kernel refused the option).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sink(
    mut tunnel: Option<Tunnel>,
    socket: UdpSocket,
    size: usize,
    dst_net: u8,
    gro: bool,
    warm: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Result<SinkOutcome> {
    let fd = socket.as_raw_fd();
    let gro = gro && gso::enable_gro(fd);
    let (entries, slot, batch) = if gro {
        (GRO_RING, GRO_SLOT, GRO_BATCH)
    } else {
        (RING, SLOT, BATCH)
    };
    let mut ring = vec![0u8; entries * slot];
    // Per message: its bytes if it arrived once the sink was warm (its data datagrams are
    // candidates for the final check), else 0; and its segment size.
    let mut data_len = vec![0usize; entries];
    let mut segment = vec![0usize; entries];
    let mut control = vec![[0u64; gso::CONTROL_WORDS]; entries];
    // SAFETY: plain data; zeroed is valid.
    let mut names: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; entries];
    let mut iov: Vec<libc::iovec> = ring
        .chunks_exact_mut(slot)
        .map(|s| libc::iovec {
            iov_base: s.as_mut_ptr() as *mut libc::c_void,
            iov_len: s.len(),
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .zip(names.iter_mut())
        .zip(control.iter_mut())
        .map(|((v, name), c)| {
            // SAFETY: as above.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = name as *mut libc::sockaddr_storage as *mut libc::c_void;
            h.msg_hdr.msg_iov = v as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = 1;
            if gro {
                h.msg_hdr.msg_control = c.as_mut_ptr() as *mut libc::c_void;
            }
            h
        })
        .collect();
    let mut plain = vec![0u8; MAX_DATAGRAM];
    let (mut pos, mut received, mut messages, mut last) = (0usize, 0u64, 0u64, None);
    let mut is_warm = tunnel.is_none();
    warm.store(is_warm, Ordering::Release);
    while !stop.load(Ordering::Relaxed) {
        let b = batch.min(entries - pos);
        for h in &mut hdrs[pos..pos + b] {
            h.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if gro {
                h.msg_hdr.msg_controllen = std::mem::size_of::<[u64; gso::CONTROL_WORDS]>() as _;
            }
        }
        // SAFETY: hdrs[pos..pos + b] point at ring slots, names and control buffers we own.
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
            let len = (hdrs[j].msg_len as usize).min(slot);
            let seg = if gro {
                gso::gro_segment(&hdrs[j].msg_hdr).map_or(len, |s| s.min(len))
            } else {
                len
            };
            data_len[j] = if is_warm { len } else { 0 };
            segment[j] = seg;
            let mut in_message = 0;
            for d in ring[j * slot..j * slot + len].chunks(seg.max(1)) {
                if is_warm && (tunnel.is_none() || is_data(d)) {
                    in_message += 1;
                    continue;
                }
                // Handshake, keepalive, or the first packets: through the tunnel.
                let (Some(from), Some(tunnel)) = (sockaddr_to_std(&names[j]), tunnel.as_mut())
                else {
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
            data += in_message;
            messages += u64::from(in_message > 0);
        }
        if data > 0 {
            received += data;
            last = Some(Instant::now());
            count.store(received, Ordering::Relaxed);
        }
        pos = (pos + r) % entries;
    }
    drop(hdrs);
    drop(iov);

    let Some(tunnel) = tunnel.as_mut() else {
        return Ok(SinkOutcome {
            received,
            messages,
            last,
            verified: 0,
            sampled: 0,
        });
    };
    // The newest data datagrams (byte ranges in `ring`), newest first, then through the
    // tunnel oldest first.
    let mut sample: Vec<(usize, usize)> = Vec::with_capacity(SAMPLE);
    'collect: for k in 1..=entries {
        let j = (pos + entries - k) % entries;
        if data_len[j] == 0 {
            continue;
        }
        let at = j * slot;
        let seg = segment[j].max(1);
        let runs = data_len[j].div_ceil(seg);
        for s in (0..runs).rev() {
            let (from, to) = (at + s * seg, (at + (s + 1) * seg).min(at + data_len[j]));
            if is_data(&ring[from..to]) {
                sample.push((from, to));
                if sample.len() == SAMPLE {
                    break 'collect;
                }
            }
        }
    }
    sample.reverse();
    let from = tunnel
        .endpoint()
        .context("the sink never heard from the router")?;
    let mut verified = 0;
    for &(a, b) in &sample {
        if let Received::Packet(p) = tunnel.receive(from, &ring[a..b], &mut plain, &mut |_, _| {}) {
            if packet::is_forwarded(p, size, dst_net) {
                verified += 1;
            }
        }
    }
    Ok(SinkOutcome {
        received,
        messages,
        last,
        verified,
        sampled: sample.len(),
    })
}

/// A WireGuard data message with a payload (not a 32-byte keepalive).
fn is_data(d: &[u8]) -> bool {
    d.first() == Some(&4) && d.len() > 32
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

/// The router's CPU time: its threads' run times in nanoseconds from `schedstat` where
/// the kernel has it (utime + stime are counted in clock ticks, 10 ms each), else
/// utime + stime from `/proc/PID/stat`.
fn router_cpu(pid: u32) -> Result<Duration> {
    procfs::process_runtime(pid)
        .or_else(|| procfs::process_cpu(pid))
        .context("reading the router's CPU time")
}

/// How often the sampler reads the receive threads' run times.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// Run times of the router's receive threads, read every [`SAMPLE_EVERY`]: thread names,
/// and per sample (time before reading, time after, run time of each thread).
type Samples = (Vec<String>, Vec<(Instant, Instant, Vec<Duration>)>);

fn sample_rx_threads(pid: u32, stop: &AtomicBool) -> Samples {
    let mut names = Vec::new();
    let mut clocks = Vec::new();
    for (tid, name) in procfs::thread_names(pid) {
        if name.starts_with("rx-") {
            if let Some(c) = procfs::RunTime::open(pid, tid) {
                names.push(name);
                clocks.push(c);
            }
        }
    }
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) && clocks.len() >= 2 {
        let before = Instant::now();
        let times: Vec<Duration> = clocks
            .iter_mut()
            .map(|c| c.read().unwrap_or_default())
            .collect();
        samples.push((before, Instant::now(), times));
        std::thread::sleep(SAMPLE_EVERY);
    }
    (names, samples)
}

/// The overlap of the two busiest receive threads over the samples up to `end`.
fn parallel_of((names, samples): &Samples, end: Instant) -> Option<Parallel> {
    let samples: Vec<_> = samples.iter().filter(|s| s.0 <= end).collect();
    let (first, last) = (samples.first()?, samples.last()?);
    let mut total: Vec<(usize, Duration)> = (0..names.len())
        .map(|k| (k, last.2[k].saturating_sub(first.2[k])))
        .collect();
    total.sort_by_key(|t| std::cmp::Reverse(t.1));
    let (a, b) = (total.first()?.0, total.get(1)?.0);
    let (mut overlap, mut both_busy) = (Duration::ZERO, 0);
    for w in samples.windows(2) {
        // Both run times grew within [start of the first read, end of the second].
        let slice = w[1].1.duration_since(w[0].0);
        let da = w[1].2[a].saturating_sub(w[0].2[a]);
        let db = w[1].2[b].saturating_sub(w[0].2[b]);
        overlap += (da + db).saturating_sub(slice);
        if da.as_secs_f64() > 0.3 * slice.as_secs_f64()
            && db.as_secs_f64() > 0.3 * slice.as_secs_f64()
        {
            both_busy += 1;
        }
    }
    Some(Parallel {
        threads: [
            (names[a].clone(), total[0].1),
            (names[b].clone(), total[1].1),
        ],
        overlap,
        sampled: last.1.duration_since(first.0),
        slices: samples.len() - 1,
        both_busy_slices: both_busy,
    })
}

pub fn run(spec: &RunSpec) -> Result<RunResult> {
    crate::progress(&format!(
        "{} B: end to end, {} flow(s), {:?}, {:?} peers, {} datagrams each",
        spec.size, spec.flows, spec.load, spec.peers, spec.packets
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
    let router_rcvbuf = procfs::udp_rcvbuf(setups[0].router_in);
    let load = match spec.load {
        Load::Closed => {
            let rmem = router_rcvbuf
                .or_else(|| procfs::sysctl("/proc/sys/net/core/rmem_default"))
                .unwrap_or(212_992);
            Load::Window(window_for(rmem, (spec.size + 32 + 15) & !15))
        }
        l => l,
    };
    let gro = spec.peers == Peers::Offload;

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
                .spawn(move || {
                    sink(
                        Some(sink_tunnel),
                        sink_socket,
                        size,
                        dst_net,
                        gro,
                        w,
                        count,
                        s,
                    )
                })?,
        );
        let b = barrier.clone();
        let gen_spec = (spec.size, spec.packets, load, spec.max_time, spec.peers);
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
    // The generators send from now on: the clock and the router's CPU time first.
    let t0 = Instant::now();
    let cpu0 = router_cpu(pid)?;
    let threads0 = procfs::thread_cpu(pid);
    let self0 = procfs::process_cpu(std::process::id()).unwrap_or_default();
    let machine0 = procfs::machine_cpu().unwrap_or_default();
    crate::progress("handshakes done, datagrams encrypted: sending");
    let stop_sampler = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop_sampler.clone();
        std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || sample_rx_threads(pid, &stop))?
    };

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
    stop_sampler.store(true, Ordering::Relaxed);
    let samples = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("sampler panicked"))?;
    let cpu1 = router_cpu(pid)?;
    let threads1 = procfs::thread_cpu(pid);
    let self1 = procfs::process_cpu(std::process::id()).unwrap_or_default();
    let machine1 = procfs::machine_cpu().unwrap_or_default();
    let drops: Vec<(u64, u64)> = ingress_ports
        .iter()
        .map(|(r, s)| (procfs::udp_drops(*r), procfs::udp_drops(*s)))
        .collect();
    let status = router_status(&router.dir);
    stop.store(true, Ordering::Relaxed);
    let sink_results: Vec<Result<SinkOutcome>> = sinks
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|_| bail!("sink panicked")))
        .collect();
    drop(router);
    crate::progress("router stopped");

    let mut flows = Vec::new();
    let mut t_end = t0;
    let iface = |i: usize| {
        status
            .as_ref()
            .and_then(|(ifs, _)| ifs.iter().find(|s| s.name == iface_name(i)))
    };
    for (k, ((g, s), (router_drops, sink_drops))) in gen_results
        .into_iter()
        .zip(sink_results)
        .zip(drops)
        .enumerate()
    {
        let (g, s) = (g?, s?);
        if let Some(l) = s.last {
            t_end = t_end.max(l);
        }
        flows.push(FlowResult {
            sent: g.sent,
            send_time: g.send_time,
            send_errors: g.errors,
            send_calls: g.calls,
            gso_fallback: g.gso_fallback,
            sink_messages: s.messages,
            // Probes of the warm-up that the sink counted are not part of the run (read
            // by the generator itself just before its first send: anything later would
            // race with the first datagrams).
            received: s.received - g.sink_before,
            router_drops,
            sink_drops,
            router_tx_errors: iface(2 * k + 1).map(|s| s.tx_errors),
            router_rx_errors: iface(2 * k).map(|s| s.rx_errors),
            router_rx_packets: iface(2 * k).map(|s| s.rx_packets),
            router_tx_packets: iface(2 * k + 1).map(|s| s.tx_packets),
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
        load,
        peers: spec.peers,
        router_rcvbuf,
        router_dropped: status.as_ref().map(|(_, c)| c.dropped.values().sum()),
        parallel: parallel_of(&samples, t_end),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    #[test]
    fn overlap_is_a_lower_bound_from_run_times() {
        let t0 = Instant::now();
        // Three samples 10 ms apart (reads take no time); threads x, y, z.
        let at = |k: u64| t0 + ms(10 * k);
        let samples = vec![
            (at(0), at(0), vec![ms(0), ms(0), ms(0)]),
            // Slice 1: x 8 ms, y 6 ms -> overlapped >= 4 ms; both > 30%.
            (at(1), at(1), vec![ms(8), ms(6), ms(1)]),
            // Slice 2: x 5 ms, y 2 ms -> no proof of overlap; y not busy.
            (at(2), at(2), vec![ms(13), ms(8), ms(1)]),
        ];
        let names = vec!["rx-a".to_string(), "rx-b".to_string(), "rx-c".to_string()];
        let p = parallel_of(&(names, samples), at(2)).unwrap();
        assert_eq!(p.threads[0], ("rx-a".to_string(), ms(13)));
        assert_eq!(p.threads[1], ("rx-b".to_string(), ms(8)));
        assert_eq!(p.overlap, ms(4));
        assert_eq!(p.sampled, ms(20));
        assert_eq!((p.slices, p.both_busy_slices), (2, 1));
    }

    #[test]
    fn gso_runs_fit_in_one_udp_payload() {
        assert_eq!(gso::per_send(1456), 44);
        assert_eq!(gso::per_send(144), 64);
        assert!(gso::per_send(1456) * 1456 <= 65507);
    }
}
