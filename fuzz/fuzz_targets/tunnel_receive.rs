//! Arbitrary datagrams into a WireGuard tunnel: never a panic, never an endpoint change.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rr_dataplane::tunnel::{Received, Tunnel, TunnelParams, MAX_DATAGRAM};

fuzz_target!(|data: &[u8]| {
    let key = [0x48u8; 32];
    let params = TunnelParams {
        private_key: key,
        peer_public_key: [0x11; 32],
        preshared_key: None,
        persistent_keepalive: None,
        endpoint: None,
        index: 1,
    };
    let mut t = Tunnel::new(&params, Tunnel::rate_limiter(&key, 10));
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let from = "192.0.2.1:51820".parse().unwrap();
    let r = t.receive(from, data, &mut buf, &mut |_, _| {});
    assert!(!matches!(r, Received::Packet(_)));
    assert!(t.endpoint().is_none());
});
