//! The router's per-packet work without the operating system: the code path of one
//! receive thread of `rr-node` (`Tunnel::receive` → `Forwarder::from_tunnel` with a real
//! `Fib` → `Tunnel::send`) on one core, with the sockets replaced by memory.
//!
//! Two tunnel pairs complete their Noise handshakes in memory: generator ↔ router-side A
//! and router-side B ↔ sink. The generator's datagrams are encrypted before the clock
//! starts (in batches, so memory stays small and the replay window stays happy); only the
//! router's decrypt, forwarding decision and encrypt are timed. What is left out compared
//! with a node: the sockets, the per-tunnel `Mutex`, the counters.
//!
//! [`parallel`] runs the same core on two threads at once, each with tunnels of its own
//! (as two flows through a node are two receive threads on two tunnel pairs), to show
//! whether the data path scales with cores when nothing else competes for them.

use crate::Rate;
use crate::{packet, procfs};
use anyhow::{ensure, Context, Result};
use rr_dataplane::forward::{Forwarder, IfaceInfo, LocalConfig, Sink};
use rr_dataplane::tunnel::{Received, Tunnel, TunnelParams, MAX_DATAGRAM};
use rr_fib::{Fib, IfIndex, NextHop};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A tunnel endpoint in memory: its tunnel and the address the other side sees.
pub struct Peer {
    pub tunnel: Tunnel,
    pub addr: SocketAddr,
}

/// Keys of one tunnel: the router's side and the benchmark's peer.
pub struct Keys {
    pub router_private: rr_config::Key,
    pub peer_private: rr_config::Key,
}

impl Keys {
    pub fn generate() -> Keys {
        Keys {
            router_private: rr_config::keys::generate(),
            peer_private: rr_config::keys::generate(),
        }
    }
}

/// Tunnel parameters for the benchmark's side of a tunnel with keys `k`.
pub fn handshake_params(k: &Keys, endpoint: Option<SocketAddr>, index: u32) -> TunnelParams {
    TunnelParams {
        private_key: k.peer_private.0,
        peer_public_key: rr_config::keys::public(&k.router_private).0,
        preshared_key: None,
        persistent_keepalive: None,
        endpoint,
        index,
    }
}

/// Two tunnels that know each other's keys; `a` knows `b`'s address and will initiate.
pub fn pair(index_a: u32, index_b: u32, addr_a: SocketAddr, addr_b: SocketAddr) -> (Peer, Peer) {
    let k = Keys::generate();
    let a = Tunnel::new(
        &handshake_params(&k, Some(addr_b), index_a),
        Tunnel::rate_limiter(&k.peer_private.0, 100),
    );
    let b_params = TunnelParams {
        private_key: k.router_private.0,
        peer_public_key: rr_config::keys::public(&k.peer_private).0,
        preshared_key: None,
        persistent_keepalive: None,
        endpoint: None,
        index: index_b,
    };
    let b = Tunnel::new(&b_params, Tunnel::rate_limiter(&k.router_private.0, 100));
    (
        Peer {
            tunnel: a,
            addr: addr_a,
        },
        Peer {
            tunnel: b,
            addr: addr_b,
        },
    )
}

/// Runs the handshake between `a` (initiator) and `b` in memory, including the first
/// (queued) data packet, so both sides have a confirmed session.
pub fn handshake(a: &mut Peer, b: &mut Peer) -> Result<()> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let probe = packet::ipv4_udp(100, 1, 0);
    let init = a
        .tunnel
        .send(&probe, &mut buf)
        .context("no handshake initiation")?
        .1
        .to_vec();
    let mut to_a = Vec::new();
    b.tunnel
        .receive(a.addr, &init, &mut buf, &mut |_, d| to_a.push(d.to_vec()));
    ensure!(to_a.len() == 1, "no handshake response");
    let mut to_b = Vec::new();
    a.tunnel.receive(b.addr, &to_a[0], &mut buf, &mut |_, d| {
        to_b.push(d.to_vec())
    });
    let mut got = 0;
    for d in &to_b {
        if let Received::Packet(_) = b.tunnel.receive(a.addr, d, &mut buf, &mut |_, _| {}) {
            got += 1;
        }
    }
    ensure!(got == 1, "queued packet not delivered after the handshake");
    Ok(())
}

/// The router's `LocalConfig` and `Fib` for `flows` flows: flow k arrives on tunnel 2k
/// from 172.20.(2k+1).0/24 and leaves on tunnel 2k+1 towards 172.20.(2k+2).0/24.
pub fn router_tables(flows: usize) -> (LocalConfig, Fib) {
    let iface = IfaceInfo {
        mtu: 1420,
        link_local: Vec::new(),
        addrs: Vec::new(),
    };
    let config = LocalConfig {
        ifaces: vec![iface; 2 * flows],
        router_addrs: vec!["172.20.0.1".parse().expect("addr")],
    };
    let mut fib = Fib::new();
    for k in 0..flows {
        for (iface, net) in [(2 * k, 2 * k + 1), (2 * k + 1, 2 * k + 2)] {
            let prefix = format!("172.20.{net}.0/24").parse().expect("prefix");
            fib.insert(
                prefix,
                NextHop {
                    iface: iface as IfIndex,
                    gateway: None,
                },
            );
        }
    }
    (config, fib)
}

/// The forwarder's output: encrypt on the egress tunnel, as `Shared::transmit` does.
struct EncryptSink<'a> {
    egress_index: IfIndex,
    egress: &'a mut Tunnel,
    buf: &'a mut [u8],
    sent: u64,
    keep: Option<&'a mut Vec<Vec<u8>>>,
}

impl Sink for EncryptSink<'_> {
    fn transmit(&mut self, iface: IfIndex, packet: &[u8]) {
        if iface != self.egress_index {
            return;
        }
        if let Some((to, datagram)) = self.egress.send(packet, self.buf) {
            self.sent += 1;
            if let Some(keep) = self.keep.as_deref_mut() {
                keep.push(datagram.to_vec());
            }
            black_box((to, datagram));
        }
    }

    fn deliver_local(&mut self, _scope: IfIndex, _packet: &[u8]) {}
}

/// Result of the in-process run.
pub struct InProc {
    pub rate: Rate,
    /// Datagrams of the last batch the sink-side tunnel decrypted and checked.
    pub verified: usize,
    pub sampled: usize,
}

/// Packets per batch: encrypted by the generator side untimed, then forwarded timed.
const BATCH: usize = 8192;

/// One receive thread's data path in memory, for flow `k`: generator ↔ router tunnel 2k,
/// router tunnel 2k+1 ↔ sink, its own `Forwarder`, packets from 172.20.(2k+1).x.
struct Lane {
    k: usize,
    size: usize,
    gen: Peer,
    ra: Peer,
    rb: Peer,
    sink: Peer,
    forwarder: Forwarder,
    plain: Vec<Vec<u8>>,
    enc_buf: Vec<u8>,
    plain_buf: Vec<u8>,
    out_buf: Vec<u8>,
}

impl Lane {
    fn new(k: usize, size: usize, local: Arc<LocalConfig>) -> Result<Lane> {
        let addr = |p: usize| SocketAddr::from(([127, 0, 0, 1], p as u16));
        let base = 10 * k;
        let (mut gen, mut ra) = pair(
            100 + 2 * k as u32,
            2 * k as u32,
            addr(base + 1),
            addr(base + 2),
        );
        let (mut rb, mut sink) = pair(
            2 * k as u32 + 1,
            101 + 2 * k as u32,
            addr(base + 3),
            addr(base + 4),
        );
        handshake(&mut gen, &mut ra)?;
        handshake(&mut rb, &mut sink)?;
        let src_net = 2 * k as u8 + 1;
        Ok(Lane {
            k,
            size,
            gen,
            ra,
            rb,
            sink,
            forwarder: Forwarder::new(local),
            plain: (0..BATCH as u32)
                .map(|i| packet::ipv4_udp(size, src_net, i))
                .collect(),
            enc_buf: vec![0u8; MAX_DATAGRAM],
            plain_buf: vec![0u8; MAX_DATAGRAM],
            out_buf: vec![0u8; MAX_DATAGRAM],
        })
    }

    /// The generator's side: `n` datagrams for router tunnel 2k.
    fn encrypt(&mut self, n: usize) -> Vec<Vec<u8>> {
        self.plain[..n]
            .iter()
            .map(|p| {
                self.gen
                    .tunnel
                    .send(p, &mut self.enc_buf)
                    .expect("session established")
                    .1
                    .to_vec()
            })
            .collect()
    }

    /// The router's side: decrypt, forward, encrypt; returns packets forwarded.
    fn forward(&mut self, batch: &[Vec<u8>], fib: &Fib, keep: Option<&mut Vec<Vec<u8>>>) -> u64 {
        let ingress = 2 * self.k as IfIndex;
        let mut sink = EncryptSink {
            egress_index: ingress + 1,
            egress: &mut self.rb.tunnel,
            buf: &mut self.out_buf,
            sent: 0,
            keep,
        };
        let from = self.gen.addr;
        for d in batch {
            if let Received::Packet(p) =
                self.ra
                    .tunnel
                    .receive(from, d, &mut self.plain_buf, &mut |_, _| {})
            {
                self.forwarder
                    .from_tunnel(Instant::now(), ingress, p, fib, &mut sink);
            }
        }
        sink.sent
    }

    /// Forwards `n` more packets and has the sink decrypt and check them: (verified, n).
    fn verify(&mut self, n: usize, fib: &Fib) -> (usize, usize) {
        let batch = self.encrypt(n);
        let mut kept = Vec::new();
        self.forward(&batch, fib, Some(&mut kept));
        let dst_net = 2 * self.k as u8 + 2;
        let mut verified = 0;
        for d in &kept {
            if let Received::Packet(p) =
                self.sink
                    .tunnel
                    .receive(self.rb.addr, d, &mut self.plain_buf, &mut |_, _| {})
            {
                if packet::is_forwarded(p, self.size, dst_net) {
                    verified += 1;
                }
            }
        }
        (verified, n)
    }
}

/// Times decrypt → forward → encrypt of `size`-byte packets for about `time` of CPU.
pub fn run(size: usize, time: Duration) -> Result<InProc> {
    let (config, fib) = router_tables(1);
    let mut lane = Lane::new(0, size, Arc::new(config))?;

    // Warm-up batch, untimed.
    let batch = lane.encrypt(BATCH);
    lane.forward(&batch, &fib, None);

    // Timed by this thread's CPU clock (the machine is shared), for about `time` of it.
    let mut timed = Duration::ZERO;
    let mut forwarded = 0u64;
    while timed < time {
        let batch = lane.encrypt(BATCH);
        let cpu0 = procfs::thread_cpu_now();
        forwarded += lane.forward(&batch, &fib, None);
        timed += procfs::thread_cpu_now().saturating_sub(cpu0);
    }

    // One more batch, untimed, whose output the sink decrypts and checks.
    let (verified, sampled) = lane.verify(1000, &fib);
    Ok(InProc {
        rate: Rate::new(forwarded, size, timed),
        verified,
        sampled,
    })
}

/// The in-process core on `threads` threads at once, by wall time.
pub struct Parallel {
    pub forwarded: u64,
    /// Wall time of the forwarding phases (all threads forwarding at once).
    pub wall: Duration,
    /// CPU time each thread spent in them.
    pub cpu: Vec<Duration>,
    pub verified: usize,
    pub sampled: usize,
}

impl Parallel {
    pub fn pps(&self) -> f64 {
        self.forwarded as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    /// CPU cores the threads got during the phases.
    pub fn cores(&self) -> f64 {
        self.cpu.iter().map(Duration::as_secs_f64).sum::<f64>() / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Packets per batch in the parallel runs (smaller: the batches are synchronised).
const PAR_BATCH: usize = 4096;

/// `threads` threads, each a [`Lane`] of its own (its own tunnels and `Forwarder`; one
/// `SharedFib` and `LocalConfig` for all, loaded per batch as a node's receive thread
/// does), forward batches in lock step: each encrypts its next batch untimed, then all
/// start forwarding together and the wall clock runs until the last one is done. So the
/// forwarded packets per wall second compare directly between 1 and 2 threads.
pub fn parallel(size: usize, threads: usize, time: Duration) -> Result<Parallel> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Barrier;
    let (config, fib) = router_tables(threads);
    let local = Arc::new(config);
    let fib = rr_fib::SharedFib::new(fib);
    let barrier = Arc::new(Barrier::new(threads + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for k in 0..threads {
        let mut lane = Lane::new(k, size, local.clone())?;
        let (fib, barrier, stop) = (fib.clone(), barrier.clone(), stop.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("lane-{k}"))
                .spawn(move || {
                    let warm = lane.encrypt(PAR_BATCH);
                    lane.forward(&warm, &fib.load(), None);
                    let (mut forwarded, mut cpu) = (0u64, Duration::ZERO);
                    loop {
                        let batch = lane.encrypt(PAR_BATCH);
                        barrier.wait();
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let cpu0 = procfs::thread_cpu_now();
                        forwarded += lane.forward(&batch, &fib.load(), None);
                        cpu += procfs::thread_cpu_now().saturating_sub(cpu0);
                        barrier.wait();
                    }
                    let (verified, sampled) = lane.verify(1000, &fib.load());
                    (forwarded, cpu, verified, sampled)
                })?,
        );
    }
    let mut wall = Duration::ZERO;
    loop {
        barrier.wait();
        let t = Instant::now();
        barrier.wait();
        wall += t.elapsed();
        if wall >= time {
            stop.store(true, Ordering::Relaxed);
            barrier.wait();
            break;
        }
    }
    let mut out = Parallel {
        forwarded: 0,
        wall,
        cpu: Vec::new(),
        verified: 0,
        sampled: 0,
    };
    for h in handles {
        let (f, c, v, s) = h
            .join()
            .map_err(|_| anyhow::anyhow!("in-process thread panicked"))?;
        out.forwarded += f;
        out.cpu.push(c);
        out.verified += v;
        out.sampled += s;
    }
    Ok(out)
}
