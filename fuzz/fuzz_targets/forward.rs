//! Arbitrary bytes as a decrypted packet from a tunnel: the forwarder decides without
//! panicking, and whatever it emits is a well-formed IP packet no larger than the MTU.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rr_dataplane::forward::{Forwarder, IfaceInfo, LocalConfig, Sink};
use rr_fib::{Fib, IfIndex, NextHop};
use std::sync::Arc;
use std::time::Instant;

struct Check;

impl Sink for Check {
    fn transmit(&mut self, _iface: IfIndex, packet: &[u8]) {
        assert!(packet.len() <= 1420);
        assert!(matches!(packet[0] >> 4, 4 | 6));
    }
    fn deliver_local(&mut self, _scope: IfIndex, packet: &[u8]) {
        assert!(!packet.is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    let iface = |ll: &str, a: &str| IfaceInfo {
        mtu: 1420,
        link_local: vec![ll.parse().unwrap()],
        addrs: vec![a.parse().unwrap()],
    };
    let cfg = LocalConfig {
        ifaces: vec![iface("fe80::1", "172.20.0.1"), iface("fe80::1", "fd00:1::1")],
        router_addrs: vec!["172.20.0.1".parse().unwrap(), "fd00:1::1".parse().unwrap()],
    };
    let mut fib = Fib::new();
    for (p, i) in [("172.20.0.0/14", 0), ("0.0.0.0/0", 1), ("fd00::/8", 1), ("::/0", 0)] {
        fib.insert(p.parse().unwrap(), NextHop { iface: i, gateway: None });
    }
    let mut f = Forwarder::new(Arc::new(cfg));
    let mut buf = data.to_vec();
    let ingress = data.first().map_or(0, |b| u32::from(b & 1));
    let _ = f.from_tunnel(Instant::now(), ingress, &mut buf, &fib, &mut Check);
    let mut buf = data.to_vec();
    let _ = f.from_local(Instant::now(), None, &mut buf, &fib, &mut Check);
});
