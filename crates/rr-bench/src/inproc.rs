//! The router's per-packet work without the operating system: the code path of one
//! receive thread of `rr-node` (`Tunnel::receive` → `Forwarder::from_tunnel` with a real
//! `Fib` → `Tunnel::send`) on one core, with the sockets replaced by memory.
//!
//! Two tunnel pairs complete their Noise handshakes in memory: generator ↔ router-side A
//! and router-side B ↔ sink. The generator's datagrams are encrypted before the clock
//! starts (in batches, so memory stays small and the replay window stays happy); only the
//! router's decrypt, forwarding decision and encrypt are timed. What is left out compared
//! with a node: `recvfrom`/`sendto`, the per-tunnel `Mutex`, the counters.

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

/// The forwarder's output: encrypt on router-side B, as `Shared::transmit` does.
struct EncryptSink<'a> {
    egress: &'a mut Tunnel,
    buf: &'a mut [u8],
    sent: u64,
    keep: Option<&'a mut Vec<Vec<u8>>>,
}

impl Sink for EncryptSink<'_> {
    fn transmit(&mut self, iface: IfIndex, packet: &[u8]) {
        if iface != 1 {
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

/// Times decrypt → forward → encrypt of `size`-byte packets for about `time` of CPU.
pub fn run(size: usize, time: Duration) -> Result<InProc> {
    let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let (mut gen, mut ra) = pair(100, 0, addr(1), addr(2));
    let (mut rb, mut sink) = pair(1, 101, addr(3), addr(4));
    handshake(&mut gen, &mut ra)?;
    handshake(&mut rb, &mut sink)?;
    let (config, fib) = router_tables(1);
    let mut forwarder = Forwarder::new(Arc::new(config));

    const BATCH: usize = 8192;
    let plain: Vec<Vec<u8>> = (0..BATCH as u32)
        .map(|i| packet::ipv4_udp(size, 1, i))
        .collect();
    let mut enc_buf = vec![0u8; MAX_DATAGRAM];
    let mut encrypt_batch = |gen: &mut Peer, n: usize| -> Vec<Vec<u8>> {
        plain[..n]
            .iter()
            .map(|p| {
                gen.tunnel
                    .send(p, &mut enc_buf)
                    .expect("session established")
                    .1
                    .to_vec()
            })
            .collect()
    };
    let mut plain_buf = vec![0u8; MAX_DATAGRAM];
    let mut out_buf = vec![0u8; MAX_DATAGRAM];
    let mut forward_batch =
        |ra: &mut Peer, rb: &mut Peer, batch: &[Vec<u8>], keep: Option<&mut Vec<Vec<u8>>>| {
            let mut sink = EncryptSink {
                egress: &mut rb.tunnel,
                buf: &mut out_buf,
                sent: 0,
                keep,
            };
            for d in batch {
                if let Received::Packet(p) =
                    ra.tunnel
                        .receive(gen_addr(), d, &mut plain_buf, &mut |_, _| {})
                {
                    forwarder.from_tunnel(Instant::now(), 0, p, &fib, &mut sink);
                }
            }
            sink.sent
        };

    // Warm-up batch, untimed.
    let batch = encrypt_batch(&mut gen, BATCH);
    forward_batch(&mut ra, &mut rb, &batch, None);

    // Timed by this thread's CPU clock (the machine is shared), for about `time` of it.
    let mut timed = Duration::ZERO;
    let mut forwarded = 0u64;
    while timed < time {
        let batch = encrypt_batch(&mut gen, BATCH);
        let cpu0 = procfs::thread_cpu_now();
        forwarded += forward_batch(&mut ra, &mut rb, &batch, None);
        timed += procfs::thread_cpu_now().saturating_sub(cpu0);
    }

    // One more batch, untimed, whose output the sink decrypts and checks.
    let sample = 1000;
    let batch = encrypt_batch(&mut gen, sample);
    let mut kept = Vec::new();
    forward_batch(&mut ra, &mut rb, &batch, Some(&mut kept));
    let mut verified = 0;
    for d in &kept {
        if let Received::Packet(p) = sink
            .tunnel
            .receive(rb.addr, d, &mut plain_buf, &mut |_, _| {})
        {
            if packet::is_forwarded(p, size, 2) {
                verified += 1;
            }
        }
    }
    Ok(InProc {
        rate: Rate::new(forwarded, size, timed),
        verified,
        sampled: sample,
    })
}

/// The generator's address as router-side A knows it (it learned it in the handshake).
fn gen_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1))
}
