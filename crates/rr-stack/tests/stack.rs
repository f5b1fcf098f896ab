//! Stacks wired back to back through an in-memory "wire", on a virtual clock.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use rr_stack::{Scope, Stack, StackConfig, StackError, TcpBuffers, TcpHandle, TcpState};

// ------------------------------------------------------------------ harness

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn cfg(seed: u64) -> StackConfig {
    StackConfig {
        random_seed: Some(seed),
        ..StackConfig::default()
    }
}

/// Nodes joined by point-to-point links `(node, scope) <-> (node, scope)`. A packet
/// with no scope (route by FIB) takes the node's `default` link.
struct Net {
    base: Instant,
    now: Instant,
    nodes: Vec<Stack>,
    links: HashMap<(usize, Scope), (usize, Scope)>,
    default: Vec<Option<Scope>>,
    /// Every packet emitted: (node, scope tag, bytes).
    log: Vec<(usize, Option<Scope>, Vec<u8>)>,
    /// Drop every n-th packet on the wire.
    drop_every: Option<u64>,
    /// Drop everything (black hole).
    blackhole: bool,
    sent: u64,
}

impl Net {
    fn new(nodes: Vec<Stack>, base: Instant) -> Net {
        let n = nodes.len();
        Net {
            base,
            now: base,
            nodes,
            links: HashMap::new(),
            default: vec![None; n],
            log: Vec::new(),
            drop_every: None,
            blackhole: false,
            sent: 0,
        }
    }

    fn link(&mut self, a: (usize, Scope), b: (usize, Scope)) {
        self.links.insert(a, b);
        self.links.insert(b, a);
        if self.default[a.0].is_none() {
            self.default[a.0] = Some(a.1);
        }
        if self.default[b.0].is_none() {
            self.default[b.0] = Some(b.1);
        }
    }

    /// Poll everything and move packets once; true if any packet moved.
    fn step(&mut self) -> bool {
        let now = self.now;
        for n in &mut self.nodes {
            n.poll(now);
        }
        let mut moved = false;
        for i in 0..self.nodes.len() {
            while let Some((scope, bytes)) = self.nodes[i].poll_transmit() {
                moved = true;
                self.log.push((i, scope, bytes.clone()));
                self.sent += 1;
                if self.blackhole || self.drop_every.is_some_and(|d| self.sent.is_multiple_of(d)) {
                    continue;
                }
                let Some(out) = scope.or(self.default[i]) else {
                    continue;
                };
                let Some(&(j, s)) = self.links.get(&(i, out)) else {
                    continue;
                };
                self.nodes[j].receive(now, s, &bytes);
            }
        }
        moved
    }

    /// Run until `done` or `limit` of virtual time passed; advances the clock to the
    /// next deadline when the wire is idle.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Net) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            if done(self) {
                return true;
            }
            if self.now >= end {
                return false;
            }
            if self.step() {
                continue;
            }
            let now = self.now;
            let next = self
                .nodes
                .iter_mut()
                .filter_map(|n| n.poll_delay(now))
                .min()
                .unwrap_or(Duration::from_millis(100))
                .clamp(Duration::from_millis(1), Duration::from_millis(500));
            self.now += next;
        }
    }

    fn run(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    fn elapsed(&self) -> Duration {
        self.now - self.base
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}
fn v6(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn ll(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}
fn sa(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

const A4: [u8; 4] = [172, 20, 0, 1];
const B4: [u8; 4] = [172, 20, 0, 2];

fn a4() -> IpAddr {
    v4(A4[0], A4[1], A4[2], A4[3])
}
fn b4() -> IpAddr {
    v4(B4[0], B4[1], B4[2], B4[3])
}
fn a6() -> IpAddr {
    v6("fd00:1::1")
}
fn b6() -> IpAddr {
    v6("fd00:2::1")
}

/// A and B, tunnel 0 on both sides, global addresses v4 + v6.
fn pair() -> Net {
    let base = Instant::now();
    let a = Stack::with_config(base, &[a4(), a6()], &[(0, vec![ll("fe80::1")])], cfg(1)).unwrap();
    let b = Stack::with_config(base, &[b4(), b6()], &[(0, vec![ll("fe80::2")])], cfg(2)).unwrap();
    let mut net = Net::new(vec![a, b], base);
    net.link((0, 0), (1, 0));
    net
}

fn accept(net: &mut Net, node: usize, l: TcpHandle) -> TcpHandle {
    let mut got = None;
    assert!(
        net.run_until(Duration::from_secs(10), |n| {
            got = n.nodes[node].tcp_accept(l);
            got.is_some()
        }),
        "no connection accepted"
    );
    got.unwrap()
}

fn wait_state(net: &mut Net, node: usize, h: TcpHandle, st: TcpState) {
    assert!(
        net.run_until(Duration::from_secs(30), |n| n.nodes[node].tcp_state(h)
            == st),
        "node {node} never reached {st:?}, is {:?}",
        net.nodes[node].tcp_state(h)
    );
}

/// Read everything available until `n` bytes were collected.
fn read_exact(net: &mut Net, node: usize, h: TcpHandle, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    assert!(net.run_until(Duration::from_secs(30), |net| {
        loop {
            match net.nodes[node].tcp_recv(h, &mut buf) {
                Ok(0) => break,
                Ok(k) => got.extend_from_slice(&buf[..k]),
                Err(StackError::Closed) => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
        got.len() >= n
    }));
    got
}

// ------------------------------------------------------------------ TCP

fn echo_1mb(server_addr: IpAddr, listen: SocketAddr) {
    let mut net = pair();
    let l = net.nodes[1].tcp_listen(listen, None).unwrap();
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(server_addr, 7), None, None)
        .unwrap();
    assert_eq!(net.nodes[0].tcp_state(c), TcpState::Connecting);
    let s = accept(&mut net, 1, l);
    wait_state(&mut net, 0, c, TcpState::Established);
    assert_eq!(
        net.nodes[1].tcp_peer(s).unwrap().0,
        net.nodes[0].tcp_local(c).unwrap()
    );
    assert_eq!(net.nodes[1].tcp_local(s).unwrap(), sa(server_addr, 7));
    assert_eq!(net.nodes[0].tcp_peer(c), Some((sa(server_addr, 7), None)));

    const N: usize = 1 << 20;
    let data = XorShift(99).bytes(N);
    let (mut sent, mut echoed_back) = (0usize, Vec::with_capacity(N));
    let mut pending: Vec<u8> = Vec::new(); // server: read, not yet written back
    let mut server_got = 0usize;
    let mut buf = vec![0u8; 8192];
    let ok = net.run_until(Duration::from_secs(120), |net| {
        let (a, rest) = net.nodes.split_at_mut(1);
        let (a, b) = (&mut a[0], &mut rest[0]);
        if sent < N {
            sent += a.tcp_send(c, &data[sent..]).unwrap();
        }
        loop {
            if !pending.is_empty() {
                let k = b.tcp_send(s, &pending).unwrap();
                pending.drain(..k);
            }
            let k = b.tcp_recv(s, &mut buf).unwrap();
            if k == 0 {
                break;
            }
            server_got += k;
            pending.extend_from_slice(&buf[..k]);
        }
        if !pending.is_empty() {
            let k = b.tcp_send(s, &pending).unwrap();
            pending.drain(..k);
        }
        loop {
            let k = a.tcp_recv(c, &mut buf).unwrap();
            if k == 0 {
                break;
            }
            echoed_back.extend_from_slice(&buf[..k]);
        }
        echoed_back.len() == N
    });
    assert!(
        ok,
        "echo stalled: sent {sent} server {server_got} back {}",
        echoed_back.len()
    );
    assert_eq!(server_got, N);
    assert!(echoed_back == data, "echoed data differs");
    // Orderly shutdown both ways.
    net.nodes[0].tcp_close(c);
    assert!(net.run_until(Duration::from_secs(10), |n| {
        n.nodes[1].tcp_recv(s, &mut [0u8; 16]) == Err(StackError::Closed)
    }));
    net.nodes[1].tcp_close(s);
    wait_state(&mut net, 0, c, TcpState::Closed);
    wait_state(&mut net, 1, s, TcpState::Closed);
    net.nodes[0].tcp_release(c);
    net.nodes[1].tcp_release(s);
    net.nodes[1].tcp_release(l);
    assert_eq!(net.nodes[0].tcp_state(c), TcpState::Closed);
}

#[test]
fn tcp_echo_1mb_ipv4() {
    echo_1mb(b4(), sa(v4(0, 0, 0, 0), 7));
}

#[test]
fn tcp_echo_1mb_ipv6() {
    echo_1mb(b6(), sa(v6("::"), 7));
}

#[test]
fn tcp_echo_1mb_ipv4_on_dual_stack_listener() {
    echo_1mb(b4(), sa(v6("::"), 7));
}

#[test]
fn tcp_survives_packet_loss() {
    let mut net = pair();
    net.drop_every = Some(7);
    let l = net.nodes[1].tcp_listen(sa(b6(), 80), None).unwrap();
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(b6(), 80), None, None)
        .unwrap();
    let s = accept(&mut net, 1, l);
    let data = XorShift(5).bytes(200_000);
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    assert!(net.run_until(Duration::from_secs(300), |n| {
        if sent < data.len() {
            sent += n.nodes[0].tcp_send(c, &data[sent..]).unwrap();
        }
        while let Ok(k @ 1..) = n.nodes[1].tcp_recv(s, &mut buf) {
            got.extend_from_slice(&buf[..k]);
        }
        got.len() == data.len()
    }));
    assert!(got == data);
}

/// Buffers of one connection, and data moved without a copy through `tcp_send_with`
/// (fill the send buffer in place) and `tcp_recv_with` (consume from the receive buffer
/// in place, a part at a time), then FIN reported by `tcp_recv_with` too.
#[test]
fn tcp_in_place_send_and_recv_with_own_buffers() {
    let mut net = pair();
    let big = TcpBuffers {
        rx: 1 << 20,
        tx: 1 << 20,
    };
    let l = net.nodes[1]
        .tcp_listen_with(sa(b4(), 80), None, big)
        .unwrap();
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect_with(now, sa(b4(), 80), None, None, big)
        .unwrap();
    // Nothing is offered before the handshake is complete.
    assert_eq!(net.nodes[0].tcp_send_with(c, |_| unreachable!()), Ok(0));
    let s = accept(&mut net, 1, l);
    wait_state(&mut net, 0, c, TcpState::Established);
    const N: usize = 3 << 20;
    let data = XorShift(7).bytes(N);
    let (mut sent, mut got) = (0usize, Vec::with_capacity(N));
    let mut largest_offer = 0;
    let ok = net.run_until(Duration::from_secs(60), |net| {
        let (a, rest) = net.nodes.split_at_mut(1);
        let (a, b) = (&mut a[0], &mut rest[0]);
        while sent < N {
            let k = a
                .tcp_send_with(c, |buf| {
                    largest_offer = largest_offer.max(buf.len());
                    let k = buf.len().min(N - sent);
                    buf[..k].copy_from_slice(&data[sent..sent + k]);
                    k
                })
                .unwrap();
            if k == 0 {
                break;
            }
            sent += k;
        }
        if sent == N {
            a.tcp_close(c);
        }
        loop {
            // Take at most 1000 bytes a call: the rest stays queued.
            match b.tcp_recv_with(s, |d| {
                let k = d.len().min(1000);
                got.extend_from_slice(&d[..k]);
                k
            }) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(StackError::Closed) => return true,
                Err(e) => panic!("{e}"),
            }
        }
    });
    assert!(ok, "sent {sent}, got {}", got.len());
    assert!(got == data, "data differs");
    // One offer saw (almost) the whole 1 MiB send buffer: the sizes took effect.
    assert!(largest_offer > 512 * 1024, "{largest_offer}");
    assert_eq!(net.nodes[1].tcp_handles(), 2);
    net.nodes[1].tcp_release(s);
    net.nodes[1].tcp_release(l);
    assert_eq!(net.nodes[1].tcp_handles(), 0);
}

#[test]
fn tcp_half_close() {
    let mut net = pair();
    let l = net.nodes[1]
        .tcp_listen(sa(v4(0, 0, 0, 0), 179), None)
        .unwrap();
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(b4(), 179), None, None)
        .unwrap();
    let s = accept(&mut net, 1, l);
    assert_eq!(net.nodes[0].tcp_send(c, b"hello").unwrap(), 5);
    net.nodes[0].tcp_close(c);
    net.step();
    assert_eq!(net.nodes[0].tcp_state(c), TcpState::LocalClosed);
    assert_eq!(net.nodes[0].tcp_send(c, b"x"), Err(StackError::Closed));
    assert_eq!(read_exact(&mut net, 1, s, 5), b"hello");
    wait_state(&mut net, 1, s, TcpState::Closing);
    assert_eq!(
        net.nodes[1].tcp_recv(s, &mut [0u8; 8]),
        Err(StackError::Closed)
    );
    // The other direction still works.
    assert_eq!(net.nodes[1].tcp_send(s, b"world").unwrap(), 5);
    assert_eq!(read_exact(&mut net, 0, c, 5), b"world");
    net.nodes[1].tcp_close(s);
    assert!(net.run_until(Duration::from_secs(10), |n| {
        n.nodes[0].tcp_recv(c, &mut [0u8; 8]) == Err(StackError::Closed)
    }));
    wait_state(&mut net, 1, s, TcpState::Closed);
    assert_eq!(net.nodes[0].tcp_state(c), TcpState::Closed);
    // TIME-WAIT runs out; reads keep saying "closed", not "reset".
    net.run(Duration::from_secs(15));
    assert_eq!(
        net.nodes[0].tcp_recv(c, &mut [0u8; 8]),
        Err(StackError::Closed)
    );
    net.nodes[0].tcp_release(c);
    net.nodes[1].tcp_release(s);
    assert_eq!(
        net.nodes[0].tcp_recv(c, &mut [0u8; 8]),
        Err(StackError::InvalidHandle)
    );
}

#[test]
fn tcp_closed_port_is_refused_with_rst() {
    let mut net = pair();
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(b6(), 4242), None, None)
        .unwrap();
    wait_state(&mut net, 0, c, TcpState::Closed);
    assert_eq!(
        net.nodes[0].tcp_recv(c, &mut [0u8; 4]),
        Err(StackError::Refused)
    );
    assert_eq!(net.nodes[0].tcp_send(c, b"x"), Err(StackError::Refused));
    // B answered with RST (and nothing else).
    let rst = net.log.iter().filter(|(n, _, _)| *n == 1).count();
    assert_eq!(rst, 1);
    assert!(net.elapsed() < Duration::from_secs(1));
}

#[test]
fn tcp_abort_resets_peer() {
    let mut net = pair();
    let l = net.nodes[1].tcp_listen(sa(v6("::"), 22), None).unwrap();
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(b6(), 22), None, None)
        .unwrap();
    let s = accept(&mut net, 1, l);
    wait_state(&mut net, 0, c, TcpState::Established);
    net.nodes[1].tcp_abort(s);
    wait_state(&mut net, 0, c, TcpState::Closed);
    assert_eq!(
        net.nodes[0].tcp_recv(c, &mut [0u8; 4]),
        Err(StackError::Reset)
    );
    assert_eq!(net.nodes[0].tcp_send(c, b"x"), Err(StackError::Reset));
    assert_eq!(
        net.nodes[1].tcp_recv(s, &mut [0u8; 4]),
        Err(StackError::Closed)
    );
}

#[test]
fn tcp_release_open_connection_sends_fin() {
    let mut net = pair();
    let l = net.nodes[1].tcp_listen(sa(b4(), 80), None).unwrap();
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(b4(), 80), None, None)
        .unwrap();
    let s = accept(&mut net, 1, l);
    net.nodes[0].tcp_send(c, b"bye").unwrap();
    net.nodes[0].tcp_release(c);
    assert_eq!(read_exact(&mut net, 1, s, 3), b"bye");
    assert!(net.run_until(Duration::from_secs(10), |n| {
        n.nodes[1].tcp_recv(s, &mut [0u8; 8]) == Err(StackError::Closed)
    }));
    net.nodes[1].tcp_close(s);
    net.run(Duration::from_secs(20));
    assert_eq!(net.nodes[1].tcp_state(s), TcpState::Closed);
    // Nothing left to do for either side.
    let now = net.now;
    assert_eq!(net.nodes[0].poll_delay(now), None);
}

#[test]
fn tcp_connect_timeout_is_refused() {
    let mut net = pair();
    net.blackhole = true;
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(b4(), 179), None, None)
        .unwrap();
    assert!(
        net.run_until(Duration::from_secs(300), |n| n.nodes[0].tcp_state(c)
            == TcpState::Closed)
    );
    assert!(
        net.elapsed() >= Duration::from_secs(119),
        "timed out after {:?}",
        net.elapsed()
    );
    assert_eq!(
        net.nodes[0].tcp_recv(c, &mut [0u8; 4]),
        Err(StackError::Refused)
    );
}

#[test]
fn tcp_backlog_accepts_simultaneous_connections() {
    let mut net = pair();
    let l = net.nodes[1].tcp_listen(sa(v6("::"), 179), None).unwrap();
    let now = net.now;
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let dst = if i % 2 == 0 { b4() } else { b6() };
            net.nodes[0]
                .tcp_connect(now, sa(dst, 179), None, None)
                .unwrap()
        })
        .collect();
    let mut servers = Vec::new();
    assert!(net.run_until(Duration::from_secs(10), |n| {
        while let Some(s) = n.nodes[1].tcp_accept(l) {
            servers.push(s);
        }
        servers.len() == clients.len()
    }));
    for &c in &clients {
        assert_eq!(net.nodes[0].tcp_state(c), TcpState::Established);
        let local = net.nodes[0].tcp_local(c).unwrap();
        net.nodes[0]
            .tcp_send(c, local.to_string().as_bytes())
            .unwrap();
    }
    // Each server connection receives its own client's local address.
    for &s in &servers {
        let peer = net.nodes[1].tcp_peer(s).unwrap().0.to_string();
        assert_eq!(read_exact(&mut net, 1, s, peer.len()), peer.as_bytes());
    }
    assert_eq!(net.nodes[1].tcp_accept(l), None);
}

#[test]
fn tcp_most_specific_listener_wins() {
    let mut net = pair();
    let wild = net.nodes[1].tcp_listen(sa(v6("::"), 80), None).unwrap();
    let v4only = net.nodes[1]
        .tcp_listen(sa(v4(0, 0, 0, 0), 80), None)
        .unwrap();
    let exact = net.nodes[1].tcp_listen(sa(b6(), 80), None).unwrap();
    assert_eq!(
        net.nodes[1].tcp_listen(sa(b6(), 80), None),
        Err(StackError::AddrInUse(sa(b6(), 80)))
    );
    let now = net.now;
    net.nodes[0]
        .tcp_connect(now, sa(b4(), 80), None, None)
        .unwrap();
    accept(&mut net, 1, v4only);
    net.nodes[0]
        .tcp_connect(now, sa(b6(), 80), None, None)
        .unwrap();
    accept(&mut net, 1, exact);
    // A listener closed: its connections go to the next best one.
    net.nodes[1].tcp_release(v4only);
    net.nodes[0]
        .tcp_connect(now, sa(b4(), 80), None, None)
        .unwrap();
    accept(&mut net, 1, wild);
    assert_eq!(net.nodes[1].tcp_accept(exact), None);
}

#[test]
fn tcp_more_than_eight_global_addresses() {
    let base = Instant::now();
    let many: Vec<IpAddr> = (1..=12).map(|i| v6(&format!("fd00:2::{i}"))).collect();
    let a = Stack::with_config(base, &[a6()], &[], cfg(1)).unwrap();
    let b = Stack::with_config(base, &many, &[], cfg(2)).unwrap();
    let mut net = Net::new(vec![a, b], base);
    net.link((0, 0), (1, 0));
    let l = net.nodes[1].tcp_listen(sa(v6("::"), 179), None).unwrap();
    let now = net.now;
    for ip in &many {
        let c = net.nodes[0]
            .tcp_connect(now, sa(*ip, 179), None, None)
            .unwrap();
        let s = accept(&mut net, 1, l);
        assert_eq!(net.nodes[1].tcp_local(s), Some(sa(*ip, 179)));
        wait_state(&mut net, 0, c, TcpState::Established);
    }
    // Not one of B's addresses: dropped, not answered.
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(v6("fd00:2::99"), 179), None, None)
        .unwrap();
    net.run(Duration::from_secs(2));
    assert_eq!(net.nodes[0].tcp_state(c), TcpState::Connecting);
    assert!(net.nodes[1].stats().rx_not_local > 0);
}

#[test]
fn tcp_connect_pinned_to_tunnel() {
    let base = Instant::now();
    let a = Stack::with_config(base, &[a4()], &[], cfg(1)).unwrap();
    let b = Stack::with_config(base, &[b4()], &[], cfg(2)).unwrap();
    let mut net = Net::new(vec![a, b], base);
    // A's FIB default goes nowhere useful; only tunnel 7 reaches B.
    net.links.insert((0, 7), (1, 0));
    net.links.insert((1, 0), (0, 7));
    net.default = vec![Some(99), Some(0)];
    let l = net.nodes[1]
        .tcp_listen(sa(v4(0, 0, 0, 0), 179), None)
        .unwrap();
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(b4(), 179), Some(7), None)
        .unwrap();
    accept(&mut net, 1, l);
    wait_state(&mut net, 0, c, TcpState::Established);
    assert_eq!(net.nodes[0].tcp_peer(c), Some((sa(b4(), 179), Some(7))));
    assert!(net.log.iter().filter(|e| e.0 == 0).all(|e| e.1 == Some(7)));
}

// ------------------------------------------------------------------ link-local scoping

/// A has tunnels 0 and 1, both with local fe80::1; B (A's tunnel 0) and C (A's
/// tunnel 1) are both fe80::a.
fn ll_triangle() -> Net {
    let base = Instant::now();
    let a = Stack::with_config(
        base,
        &[a6()],
        &[(0, vec![ll("fe80::1")]), (1, vec![ll("fe80::1")])],
        cfg(1),
    )
    .unwrap();
    let b = Stack::with_config(base, &[b6()], &[(0, vec![ll("fe80::a")])], cfg(2)).unwrap();
    let c = Stack::with_config(
        base,
        &[v6("fd00:3::1")],
        &[(0, vec![ll("fe80::a")])],
        cfg(3),
    )
    .unwrap();
    let mut net = Net::new(vec![a, b, c], base);
    net.link((0, 0), (1, 0));
    net.link((0, 1), (2, 0));
    net
}

#[test]
fn link_local_tcp_reaches_the_right_peer() {
    let mut net = ll_triangle();
    // B listens on the wildcard (scope None takes link-local too), C on its tunnel only.
    let lb = net.nodes[1].tcp_listen(sa(v6("::"), 179), None).unwrap();
    let lc = net.nodes[2].tcp_listen(sa(v6("::"), 179), Some(0)).unwrap();
    let peer = sa(v6("fe80::a"), 179);
    let now = net.now;
    assert_eq!(
        net.nodes[0].tcp_connect(now, peer, None, None),
        Err(StackError::ScopeRequired(v6("fe80::a")))
    );
    // Same local address and port on both tunnels: still two connections.
    let local = Some(sa(v6("fe80::1"), 50000));
    let c0 = net.nodes[0].tcp_connect(now, peer, Some(0), local).unwrap();
    let c1 = net.nodes[0].tcp_connect(now, peer, Some(1), local).unwrap();
    assert_eq!(
        net.nodes[0].tcp_connect(now, peer, Some(1), local),
        Err(StackError::AddrInUse(sa(v6("fe80::1"), 50000)))
    );
    let sb = accept(&mut net, 1, lb);
    let sc = accept(&mut net, 2, lc);
    assert_eq!(
        net.nodes[1].tcp_peer(sb),
        Some((sa(v6("fe80::1"), 50000), Some(0)))
    );
    assert_eq!(
        net.nodes[2].tcp_peer(sc),
        Some((sa(v6("fe80::1"), 50000), Some(0)))
    );
    assert_eq!(net.nodes[1].tcp_local(sb), Some(peer));
    net.nodes[1].tcp_send(sb, b"I am B").unwrap();
    net.nodes[2].tcp_send(sc, b"I am C").unwrap();
    net.nodes[0].tcp_send(c0, b"hi B").unwrap();
    net.nodes[0].tcp_send(c1, b"hi C").unwrap();
    assert_eq!(read_exact(&mut net, 0, c0, 6), b"I am B");
    assert_eq!(read_exact(&mut net, 0, c1, 6), b"I am C");
    assert_eq!(read_exact(&mut net, 1, sb, 4), b"hi B");
    assert_eq!(read_exact(&mut net, 2, sc, 4), b"hi C");
    assert_eq!(net.nodes[0].tcp_peer(c0), Some((peer, Some(0))));
    assert_eq!(net.nodes[0].tcp_peer(c1), Some((peer, Some(1))));
    // Every packet A sent carried its tunnel.
    assert!(net.log.iter().filter(|e| e.0 == 0).all(|e| e.1.is_some()));
    // Closing one leaves the other alone.
    net.nodes[0].tcp_abort(c0);
    wait_state(&mut net, 1, sb, TcpState::Closed);
    assert_eq!(net.nodes[2].tcp_state(sc), TcpState::Established);
    net.nodes[2].tcp_send(sc, b"still here").unwrap();
    assert_eq!(read_exact(&mut net, 0, c1, 10), b"still here");
}

#[test]
fn link_local_listener_scope_is_enforced() {
    let mut net = ll_triangle();
    // A listens on tunnel 1 only; B (on tunnel 0) is refused, C gets through.
    let l = net.nodes[0].tcp_listen(sa(v6("::"), 179), Some(1)).unwrap();
    let now = net.now;
    let from_b = net.nodes[1]
        .tcp_connect(now, sa(v6("fe80::1"), 179), Some(0), None)
        .unwrap();
    let from_c = net.nodes[2]
        .tcp_connect(now, sa(v6("fe80::1"), 179), Some(0), None)
        .unwrap();
    let s = accept(&mut net, 0, l);
    assert_eq!(
        net.nodes[0].tcp_peer(s),
        Some((
            sa(
                v6("fe80::a"),
                net.nodes[2].tcp_local(from_c).unwrap().port()
            ),
            Some(1)
        ))
    );
    wait_state(&mut net, 1, from_b, TcpState::Closed);
    assert_eq!(
        net.nodes[1].tcp_recv(from_b, &mut [0u8; 4]),
        Err(StackError::Refused)
    );
    wait_state(&mut net, 2, from_c, TcpState::Established);
}

#[test]
fn link_local_source_to_global_destination_stays_on_its_tunnel() {
    let mut net = ll_triangle();
    let l = net.nodes[1].tcp_listen(sa(v6("::"), 80), None).unwrap();
    let now = net.now;
    // A talks from fe80::1 (tunnel 0) to B's global address.
    let c = net.nodes[0]
        .tcp_connect(now, sa(b6(), 80), Some(0), Some(sa(v6("fe80::1"), 0)))
        .unwrap();
    let s = accept(&mut net, 1, l);
    assert_eq!(net.nodes[1].tcp_peer(s).unwrap().1, Some(0));
    wait_state(&mut net, 0, c, TcpState::Established);
    assert!(net.log.iter().all(|e| e.1 == Some(0)));
}

#[test]
fn link_local_udp_reaches_the_right_peer() {
    let mut net = ll_triangle();
    let ua = net.nodes[0].udp_bind(sa(v6("::"), 6696), None).unwrap();
    let ub = net.nodes[1]
        .udp_bind(sa(v6("fe80::a"), 6696), Some(0))
        .unwrap();
    let uc = net.nodes[2].udp_bind(sa(v6("::"), 6696), Some(0)).unwrap();
    let a_ll = sa(v6("fe80::1"), 6696);
    assert_eq!(
        net.nodes[1].udp_send_to(ub, b"x", a_ll, None),
        Ok(()),
        "the binding's scope is used"
    );
    net.nodes[2].udp_send_to(uc, b"from C", a_ll, None).unwrap();
    net.step();
    let mut buf = [0u8; 64];
    let (n, from, scope) = net.nodes[0].udp_recv_from(ua, &mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from, scope),
        (&b"x"[..], sa(v6("fe80::a"), 6696), Some(0))
    );
    let (n, from, scope) = net.nodes[0].udp_recv_from(ua, &mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from, scope),
        (&b"from C"[..], sa(v6("fe80::a"), 6696), Some(1))
    );
    // Reply to the same address on each tunnel.
    net.nodes[0]
        .udp_send_to(ua, b"to B", from, Some(0))
        .unwrap();
    net.nodes[0]
        .udp_send_to(ua, b"to C", from, Some(1))
        .unwrap();
    assert_eq!(
        net.nodes[0].udp_send_to(ua, b"?", from, None),
        Err(StackError::ScopeRequired(from.ip()))
    );
    net.step();
    let (n, from, scope) = net.nodes[1].udp_recv_from(ub, &mut buf).unwrap();
    assert_eq!((&buf[..n], from, scope), (&b"to B"[..], a_ll, Some(0)));
    let (n, _, _) = net.nodes[2].udp_recv_from(uc, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"to C");
    assert!(net.nodes[1].udp_recv_from(ub, &mut buf).is_none());
}

// ------------------------------------------------------------------ UDP

fn udp_exchange(a_ip: IpAddr, b_ip: IpAddr, bind_any: IpAddr) {
    let mut net = pair();
    let ub = net.nodes[1].udp_bind(sa(bind_any, 53), None).unwrap();
    let ua = net.nodes[0].udp_bind(sa(bind_any, 0), None).unwrap();
    let a_port = net.nodes[0].udp_local(ua).unwrap().port();
    assert!(a_port >= 49152);
    let sizes = [0usize, 1, 100, 1000, 1300];
    let mut rng = XorShift(7);
    let msgs: Vec<Vec<u8>> = sizes.iter().map(|&n| rng.bytes(n)).collect();
    for m in &msgs {
        net.nodes[0].udp_send_to(ua, m, sa(b_ip, 53), None).unwrap();
    }
    net.step();
    let mut buf = vec![0u8; 2000];
    for m in &msgs {
        assert_eq!(net.nodes[1].udp_peek_len(ub), Some(m.len()));
        let (n, from, scope) = net.nodes[1].udp_recv_from(ub, &mut buf).unwrap();
        assert_eq!(&buf[..n], &m[..]);
        assert_eq!(from, sa(a_ip, a_port));
        assert_eq!(scope, None);
        net.nodes[1].udp_send_to(ub, &buf[..n], from, None).unwrap();
    }
    assert!(net.nodes[1].udp_recv_from(ub, &mut buf).is_none());
    net.step();
    for m in &msgs {
        let (n, from, _) = net.nodes[0].udp_recv_from(ua, &mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&m[..], sa(b_ip, 53)));
    }
    // Truncation keeps boundaries: the rest of a long datagram is discarded.
    net.nodes[0]
        .udp_send_to(ua, &[1, 2, 3, 4], sa(b_ip, 53), None)
        .unwrap();
    net.nodes[0]
        .udp_send_to(ua, &[5], sa(b_ip, 53), None)
        .unwrap();
    net.step();
    let mut small = [0u8; 2];
    assert_eq!(net.nodes[1].udp_recv_from(ub, &mut small).unwrap().0, 2);
    assert_eq!(small, [1, 2]);
    assert_eq!(net.nodes[1].udp_recv_from(ub, &mut small).unwrap().0, 1);
    assert_eq!(small[0], 5);
    // Too big for the MTU, no fragmentation.
    assert!(matches!(
        net.nodes[0].udp_send_to(ua, &[0u8; 1500], sa(b_ip, 53), None),
        Err(StackError::MessageTooLong { .. })
    ));
    net.nodes[1].udp_close(ub);
    assert!(net.nodes[1].udp_recv_from(ub, &mut buf).is_none());
}

#[test]
fn udp_exchange_ipv4() {
    udp_exchange(a4(), b4(), v4(0, 0, 0, 0));
}

#[test]
fn udp_exchange_ipv6() {
    udp_exchange(a6(), b6(), v6("::"));
}

#[test]
fn udp_bind_rules() {
    let mut net = pair();
    let s = &mut net.nodes[1];
    assert_eq!(
        s.udp_bind(sa(v4(10, 0, 0, 1), 1), None),
        Err(StackError::AddrNotAvailable(v4(10, 0, 0, 1)))
    );
    assert_eq!(
        s.udp_bind(sa(v6("fe80::2"), 1), None),
        Err(StackError::ScopeRequired(v6("fe80::2")))
    );
    assert_eq!(
        s.udp_bind(sa(b4(), 1), Some(0)),
        Err(StackError::ScopeNotApplicable(b4()))
    );
    assert_eq!(
        s.udp_bind(sa(v6("fe80::2"), 1), Some(5)),
        Err(StackError::AddrNotAvailable(v6("fe80::2")))
    );
    s.udp_bind(sa(v6("fe80::2"), 1), Some(0)).unwrap();
    s.udp_bind(sa(b4(), 1), None).unwrap();
    assert_eq!(
        s.udp_bind(sa(b4(), 1), None),
        Err(StackError::AddrInUse(sa(b4(), 1)))
    );
    let u4 = s.udp_bind(sa(v4(0, 0, 0, 0), 2), None).unwrap();
    assert!(matches!(
        s.udp_send_to(u4, b"x", sa(b6(), 9), None),
        Err(StackError::FamilyMismatch { .. })
    ));
}

fn udp_port_unreachable(dst: IpAddr) {
    use smoltcp::wire::{
        Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv6DstUnreachable, Icmpv6Message,
        Icmpv6Packet, IpProtocol, Ipv4Packet, Ipv6Packet,
    };
    let mut net = pair();
    let ua = net.nodes[0].udp_bind(sa(v6("::"), 40000), None).unwrap();
    net.nodes[0]
        .udp_send_to(ua, b"probe", sa(dst, 33434), None)
        .unwrap();
    net.run(Duration::from_millis(100));
    let replies: Vec<_> = net.log.iter().filter(|e| e.0 == 1).collect();
    assert_eq!(replies.len(), 1, "exactly one ICMP error");
    let (_, scope, bytes) = replies[0];
    assert_eq!(*scope, None, "routed by FIB");
    match dst {
        IpAddr::V4(_) => {
            let ip = Ipv4Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(ip.next_header(), IpProtocol::Icmp);
            assert_eq!(IpAddr::V4(ip.src_addr()), dst);
            assert_eq!(IpAddr::V4(ip.dst_addr()), a4());
            let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
            assert_eq!(icmp.msg_type(), Icmpv4Message::DstUnreachable);
            assert_eq!(
                icmp.msg_code(),
                u8::from(Icmpv4DstUnreachable::PortUnreachable)
            );
        }
        IpAddr::V6(_) => {
            let ip = Ipv6Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(ip.next_header(), IpProtocol::Icmpv6);
            assert_eq!(IpAddr::V6(ip.src_addr()), dst);
            let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
            assert_eq!(icmp.msg_type(), Icmpv6Message::DstUnreachable);
            assert_eq!(
                icmp.msg_code(),
                u8::from(Icmpv6DstUnreachable::PortUnreachable)
            );
        }
    }
    // A's stack swallows the ICMP error without trouble.
    let mut buf = [0u8; 16];
    assert!(net.nodes[0].udp_recv_from(ua, &mut buf).is_none());
}

#[test]
fn udp_closed_port_gets_icmp_port_unreachable_ipv4() {
    udp_port_unreachable(b4());
}

#[test]
fn udp_closed_port_gets_icmp_port_unreachable_ipv6() {
    udp_port_unreachable(b6());
}

#[test]
fn udp_closed_port_on_link_local_goes_back_on_the_tunnel() {
    let mut net = ll_triangle();
    let ua = net.nodes[0].udp_bind(sa(v6("::"), 0), None).unwrap();
    net.nodes[0]
        .udp_send_to(ua, b"probe", sa(v6("fe80::a"), 9), Some(1))
        .unwrap();
    net.run(Duration::from_millis(100));
    let from_c: Vec<_> = net.log.iter().filter(|e| e.0 == 2).collect();
    assert_eq!(from_c.len(), 1);
    assert_eq!(from_c[0].1, Some(0));
    assert!(net.log.iter().all(|e| e.0 != 1), "B saw nothing");
}

// ------------------------------------------------------------------ robustness

#[test]
fn garbage_never_panics() {
    let mut net = pair();
    // Give the stacks something to match against.
    net.nodes[1].tcp_listen(sa(v6("::"), 179), None).unwrap();
    net.nodes[1].udp_bind(sa(v6("::"), 53), None).unwrap();
    net.nodes[1].tcp_listen(sa(v6("::"), 179), Some(0)).unwrap();
    let ua = net.nodes[0].udp_bind(sa(v6("::"), 0), None).unwrap();
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(b4(), 179), None, None)
        .unwrap();
    net.nodes[0]
        .tcp_connect(now, sa(v6("fe80::2"), 179), Some(0), None)
        .unwrap();
    net.nodes[0]
        .udp_send_to(ua, b"hello", sa(b6(), 53), None)
        .unwrap();
    net.nodes[0]
        .udp_send_to(ua, b"hello", sa(b6(), 54), None)
        .unwrap();
    net.nodes[0].tcp_send(c, b"payload").unwrap();
    net.run(Duration::from_secs(1));
    let samples: Vec<Vec<u8>> = net.log.iter().map(|e| e.2.clone()).collect();
    assert!(samples.len() > 5);

    let mut rng = XorShift(0x1234_5678);
    let base = net.now;
    let b = &mut net.nodes[1];
    for i in 0..30_000u64 {
        let now = base + Duration::from_millis(i);
        let pkt = match rng.below(4) {
            // Pure noise, sometimes with a plausible version nibble.
            0 => {
                let n = rng.below(100) as usize;
                let mut p = rng.bytes(n);
                if let Some(first) = p.first_mut() {
                    *first = (*first & 0x0f) | if rng.below(2) == 0 { 0x40 } else { 0x60 };
                }
                p
            }
            // A real packet, truncated.
            1 => {
                let s = &samples[rng.below(samples.len() as u64) as usize];
                s[..rng.below(s.len() as u64 + 1) as usize].to_vec()
            }
            // A real packet with a few bytes flipped.
            _ => {
                let mut p = samples[rng.below(samples.len() as u64) as usize].clone();
                for _ in 0..=rng.below(4) {
                    let at = rng.below(p.len() as u64) as usize;
                    p[at] ^= 1 << rng.below(8);
                }
                p
            }
        };
        b.receive(now, rng.below(3) as u32, &pkt);
        if i % 7 == 0 {
            b.poll(now);
            while b.poll_transmit().is_some() {}
            let _ = b.poll_delay(now);
        }
    }
    assert!(b.stats().rx_malformed > 0);
}

#[test]
fn remove_scope_closes_its_connections() {
    let mut net = ll_triangle();
    let l = net.nodes[1].tcp_listen(sa(v6("::"), 179), None).unwrap();
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(v6("fe80::a"), 179), Some(0), None)
        .unwrap();
    accept(&mut net, 1, l);
    wait_state(&mut net, 0, c, TcpState::Established);
    net.nodes[0].remove_scope(0);
    assert_eq!(net.nodes[0].tcp_state(c), TcpState::Closed);
    assert_eq!(
        net.nodes[0].tcp_recv(c, &mut [0u8; 4]),
        Err(StackError::Reset)
    );
    net.nodes[0].tcp_release(c);
    let now = net.now;
    assert_eq!(
        net.nodes[0].tcp_connect(now, sa(v6("fe80::a"), 179), Some(0), None),
        Err(StackError::NoSourceAddress(v6("fe80::a")))
    );
}

#[test]
fn construction_validates_addresses() {
    let now = Instant::now();
    assert!(matches!(
        Stack::new(now, &[v6("fe80::1")], &[]),
        Err(StackError::InvalidAddress(_))
    ));
    assert!(matches!(
        Stack::new(now, &[v4(0, 0, 0, 0)], &[]),
        Err(StackError::InvalidAddress(_))
    ));
    assert!(matches!(
        Stack::new(now, &[], &[(0, vec![ll("fd00::1")])]),
        Err(StackError::InvalidAddress(_))
    ));
    assert!(Stack::new(now, &[a4(), a6()], &[(3, vec![ll("fe80::1")])]).is_ok());
}

#[test]
fn tcp_idle_connection_survives_the_timeout() {
    let mut net = pair();
    let l = net.nodes[1].tcp_listen(sa(b4(), 179), None).unwrap();
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(b4(), 179), None, None)
        .unwrap();
    let s = accept(&mut net, 1, l);
    net.nodes[0].tcp_send(c, b"open").unwrap();
    assert_eq!(read_exact(&mut net, 1, s, 4), b"open");
    // Idle far longer than StackConfig::tcp_timeout, polling now and then.
    for _ in 0..10 {
        net.now += Duration::from_secs(100);
        net.step();
    }
    assert_eq!(net.nodes[0].tcp_state(c), TcpState::Established);
    assert_eq!(net.nodes[1].tcp_state(s), TcpState::Established);
    net.nodes[0].tcp_send(c, b"again").unwrap();
    assert_eq!(read_exact(&mut net, 1, s, 5), b"again");
    net.nodes[1].tcp_send(s, b"back").unwrap();
    assert_eq!(read_exact(&mut net, 0, c, 4), b"back");
}

#[test]
fn tcp_unacknowledged_data_times_out() {
    let mut net = pair();
    let l = net.nodes[1].tcp_listen(sa(b6(), 179), None).unwrap();
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(b6(), 179), None, None)
        .unwrap();
    let s = accept(&mut net, 1, l);
    net.run(Duration::from_secs(200)); // idle first: must not matter
    net.blackhole = true;
    let start = net.now;
    net.nodes[0].tcp_send(c, b"lost in the void").unwrap();
    assert!(
        net.run_until(Duration::from_secs(300), |n| n.nodes[0].tcp_state(c)
            == TcpState::Closed)
    );
    let took = net.now - start;
    assert!(
        took >= Duration::from_secs(119) && took < Duration::from_secs(200),
        "{took:?}"
    );
    assert_eq!(
        net.nodes[0].tcp_recv(c, &mut [0u8; 4]),
        Err(StackError::Reset)
    );
    assert_eq!(net.nodes[1].tcp_state(s), TcpState::Established);
}

#[test]
fn tcp_zero_window_peer_is_not_timed_out() {
    let mut net = pair();
    let l = net.nodes[1].tcp_listen(sa(b4(), 179), None).unwrap();
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(b4(), 179), None, None)
        .unwrap();
    let s = accept(&mut net, 1, l);
    // B never reads for 10 minutes; A keeps its send buffer full.
    let chunk = vec![7u8; 16384];
    let mut sent = 0usize;
    net.run_until(Duration::from_secs(600), |n| {
        sent += n.nodes[0].tcp_send(c, &chunk).unwrap();
        false
    });
    assert_eq!(net.nodes[0].tcp_state(c), TcpState::Established);
    assert!(net.nodes[0].tcp_send_queue(c) > 0);
    assert_eq!(net.nodes[1].tcp_recv_queue(s), 64 * 1024);
    // B starts reading: everything arrives.
    let got = read_exact(&mut net, 1, s, sent);
    assert_eq!(got.len(), sent);
}

#[test]
fn tcp_half_open_handshakes_expire_from_the_backlog() {
    let base = Instant::now();
    let a = Stack::with_config(base, &[a4()], &[], cfg(1)).unwrap();
    let b = Stack::with_config(
        base,
        &[b4()],
        &[],
        StackConfig {
            tcp_backlog: 1,
            ..cfg(2)
        },
    )
    .unwrap();
    let mut net = Net::new(vec![a, b], base);
    net.link((0, 0), (1, 0));
    let l = net.nodes[1].tcp_listen(sa(b4(), 179), None).unwrap();
    // Deliver one SYN, then lose everything: B holds a half-open connection.
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(b4(), 179), None, None)
        .unwrap();
    net.nodes[0].poll(now);
    let (_, syn) = net.nodes[0].poll_transmit().unwrap();
    net.nodes[1].receive(now, 0, &syn);
    net.blackhole = true;
    net.run(Duration::from_secs(1));
    net.nodes[0].tcp_abort(c);
    // Backlog full: a second connection is refused at once.
    net.blackhole = false;
    let now = net.now;
    let c2 = net.nodes[0]
        .tcp_connect(now, sa(b4(), 179), None, None)
        .unwrap();
    wait_state(&mut net, 0, c2, TcpState::Closed);
    assert_eq!(
        net.nodes[0].tcp_recv(c2, &mut [0u8; 1]),
        Err(StackError::Refused)
    );
    // After the timeout the half-open slot is freed.
    net.blackhole = true;
    net.run(Duration::from_secs(130));
    net.blackhole = false;
    let now = net.now;
    let c3 = net.nodes[0]
        .tcp_connect(now, sa(b4(), 179), None, None)
        .unwrap();
    accept(&mut net, 1, l);
    wait_state(&mut net, 0, c3, TcpState::Established);
}

#[test]
fn tcp_keepalive_detects_a_dead_peer_and_keeps_a_live_one() {
    let mut net = pair();
    let l = net.nodes[1].tcp_listen(sa(b4(), 179), None).unwrap();
    let now = net.now;
    let live = net.nodes[0]
        .tcp_connect(now, sa(b4(), 179), None, None)
        .unwrap();
    accept(&mut net, 1, l);
    net.nodes[0]
        .tcp_set_keepalive(live, Some(Duration::from_secs(30)))
        .unwrap();
    net.run(Duration::from_secs(400));
    assert_eq!(net.nodes[0].tcp_state(live), TcpState::Established);
    net.blackhole = true;
    let start = net.now;
    assert!(
        net.run_until(Duration::from_secs(300), |n| n.nodes[0].tcp_state(live)
            == TcpState::Closed)
    );
    assert!(
        net.now - start <= Duration::from_secs(125),
        "{:?}",
        net.now - start
    );
    assert_eq!(
        net.nodes[0].tcp_recv(live, &mut [0u8; 1]),
        Err(StackError::Reset)
    );
}
