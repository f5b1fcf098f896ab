//! One WireGuard tunnel: boringtun's `Tunn` plus what a point-to-point interface keeps
//! beside it — the peer's endpoint (given, or learned and then roaming), counters, and the
//! rules for when an endpoint may change.
//!
//! What it is: the glue between UDP datagrams and decrypted IP packets for one peer. The
//! Noise_IKpsk2 handshake, sessions, rekey and keepalive timers and cookies are
//! boringtun's (WireGuard whitepaper §5, §6). Endpoint roaming follows the whitepaper
//! §2.1: the endpoint becomes the source address of the most recent *authenticated*
//! datagram (a data packet or handshake that decrypted); cookie replies and garbage never
//! move it.
//!
//! What it is not: I/O. The caller receives datagrams, passes them in, and sends what
//! comes out to the address given; boringtun reads the monotonic clock itself, so timer
//! behaviour is real-time (polled through [`Tunnel::update_timers`]).

use boringtun::noise::errors::WireGuardError;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The largest datagram a tunnel handles: an inner packet up to 65535 bytes plus overhead.
pub const MAX_DATAGRAM: usize = 65535 + 64;

/// Static parameters of one tunnel.
#[derive(Clone)]
pub struct TunnelParams {
    pub private_key: [u8; 32],
    pub peer_public_key: [u8; 32],
    pub preshared_key: Option<[u8; 32]>,
    /// Seconds; `None` or 0 = off.
    pub persistent_keepalive: Option<u16>,
    /// A configured endpoint; `None` waits for the peer.
    pub endpoint: Option<SocketAddr>,
    /// Unique per tunnel in the node: session indices are derived from it.
    pub index: u32,
}

/// Counters and state, as `wg show` reports them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TunnelStats {
    pub endpoint: Option<SocketAddr>,
    pub since_last_handshake: Option<Duration>,
    /// Inner bytes, as boringtun counts them.
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Datagrams that did not authenticate or parse.
    pub rx_errors: u64,
    /// Packets not sent: no endpoint known yet.
    pub tx_no_endpoint: u64,
    pub endpoint_changes: u64,
}

/// What a received datagram produced.
#[derive(Debug)]
pub enum Received<'a> {
    /// A decrypted IP packet for the forwarding plane (it lives in the caller's buffer).
    Packet(&'a mut [u8]),
    /// Handshake, keepalive or cookie traffic, fully handled (replies went to `send`).
    Control,
    /// The datagram was rejected; it changed nothing.
    Rejected(WireGuardError),
}

/// A WireGuard peer as a point-to-point interface.
pub struct Tunnel {
    tunn: Tunn,
    endpoint: Option<SocketAddr>,
    stats: TunnelStats,
}

/// WireGuard message types (whitepaper §5.4).
const MSG_HANDSHAKE_RESPONSE: u8 = 2;
const MSG_COOKIE_REPLY: u8 = 3;
const MSG_DATA: u8 = 4;

impl Tunnel {
    /// A tunnel whose handshakes are admitted by `rate_limiter` (one limiter per private key,
    /// shared by all tunnels with that key, is what makes the limit global).
    pub fn new(p: &TunnelParams, rate_limiter: Arc<RateLimiter>) -> Tunnel {
        let keepalive = p.persistent_keepalive.filter(|k| *k > 0);
        let tunn = Tunn::new(
            StaticSecret::from(p.private_key),
            PublicKey::from(p.peer_public_key),
            p.preshared_key,
            keepalive,
            p.index,
            Some(rate_limiter),
        );
        Tunnel {
            tunn,
            endpoint: p.endpoint,
            stats: TunnelStats::default(),
        }
    }

    /// A rate limiter for tunnels using `private_key`, admitting `per_second` handshakes
    /// before it demands cookies. The caller must call `reset_count` on it every second.
    pub fn rate_limiter(private_key: &[u8; 32], per_second: u64) -> Arc<RateLimiter> {
        let public = PublicKey::from(&StaticSecret::from(*private_key));
        Arc::new(RateLimiter::new(&public, per_second))
    }

    /// The peer's current endpoint.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.endpoint
    }

    /// Points the tunnel at a newly configured endpoint (`wg set … endpoint`): packets
    /// go there from now on; the session goes on, and an authenticated packet from
    /// elsewhere moves the endpoint again, as always.
    pub fn set_endpoint(&mut self, endpoint: SocketAddr) {
        if self.endpoint != Some(endpoint) {
            self.endpoint = Some(endpoint);
            self.stats.endpoint_changes += 1;
        }
    }

    /// Counters and handshake age.
    pub fn stats(&self) -> TunnelStats {
        let (since, tx, rx, _, _) = self.tunn.stats();
        TunnelStats {
            endpoint: self.endpoint,
            since_last_handshake: since,
            rx_bytes: rx as u64,
            tx_bytes: tx as u64,
            ..self.stats.clone()
        }
    }

    fn learn_endpoint(&mut self, from: SocketAddr) {
        if self.endpoint != Some(from) {
            // Logged by the node, with the tunnel's name, when its timer tick sees it.
            self.endpoint = Some(from);
            self.stats.endpoint_changes += 1;
        }
    }

    /// Handles one datagram from `from`. Replies (handshake responses, cookies, queued
    /// packets) are handed to `send(addr, bytes)`. `buf` must be [`MAX_DATAGRAM`] long;
    /// a decrypted packet is returned inside it.
    pub fn receive<'b>(
        &mut self,
        from: SocketAddr,
        datagram: &[u8],
        buf: &'b mut [u8],
        send: &mut impl FnMut(SocketAddr, &[u8]),
    ) -> Received<'b> {
        let msg_type = datagram.first().copied().unwrap_or(0);
        // Decide from the result whether the datagram authenticated; borrow juggling:
        // boringtun hands back a slice of `buf`, so we record what to do and re-slice.
        enum Outcome {
            V4(usize),
            V6(usize),
            Reply { len: usize, authenticated: bool },
            Done,
            Err(WireGuardError),
        }
        let outcome = match self.tunn.decapsulate(Some(from.ip()), datagram, buf) {
            TunnResult::WriteToTunnelV4(p, _) => Outcome::V4(p.len()),
            TunnResult::WriteToTunnelV6(p, _) => Outcome::V6(p.len()),
            TunnResult::WriteToNetwork(p) => Outcome::Reply {
                len: p.len(),
                // A cookie reply is sent before authentication (we are under load).
                authenticated: p.first() != Some(&MSG_COOKIE_REPLY),
            },
            TunnResult::Done => Outcome::Done,
            TunnResult::Err(e) => Outcome::Err(e),
        };
        match outcome {
            Outcome::V4(len) | Outcome::V6(len) => {
                self.learn_endpoint(from);
                self.stats.rx_packets += 1;
                Received::Packet(&mut buf[..len])
            }
            Outcome::Reply { len, authenticated } => {
                if authenticated {
                    self.learn_endpoint(from);
                }
                send(from, &buf[..len]);
                if authenticated {
                    self.flush_queued(buf, send);
                }
                Received::Control
            }
            Outcome::Done => {
                // A keepalive decrypted (data with empty payload) or a cookie reply accepted.
                if msg_type == MSG_DATA {
                    self.learn_endpoint(from);
                }
                if msg_type == MSG_DATA || msg_type == MSG_HANDSHAKE_RESPONSE {
                    self.flush_queued(buf, send);
                }
                Received::Control
            }
            Outcome::Err(e) => {
                self.stats.rx_errors += 1;
                Received::Rejected(e)
            }
        }
    }

    /// Sends packets boringtun queued while no session existed.
    fn flush_queued(&mut self, buf: &mut [u8], send: &mut impl FnMut(SocketAddr, &[u8])) {
        let Some(to) = self.endpoint else { return };
        while let TunnResult::WriteToNetwork(p) = self.tunn.decapsulate(None, &[], buf) {
            self.stats.tx_packets += 1;
            send(to, p);
        }
    }

    /// Encrypts one IP packet for the peer. Returns the datagram and where to send it, or
    /// `None` when there is nothing to send now (no endpoint known; or the packet was
    /// queued behind a handshake and no initiation is due).
    /// `buf` must be at least `packet.len() + 32` and 148 bytes long.
    pub fn send<'b>(&mut self, packet: &[u8], buf: &'b mut [u8]) -> Option<(SocketAddr, &'b [u8])> {
        let Some(to) = self.endpoint else {
            self.stats.tx_no_endpoint += 1;
            return None;
        };
        match self.tunn.encapsulate(packet, buf) {
            TunnResult::WriteToNetwork(p) => {
                if p.first() == Some(&MSG_DATA) {
                    self.stats.tx_packets += 1;
                }
                Some((to, p))
            }
            _ => None,
        }
    }

    /// Drives handshake retries, rekeys and keepalives; call about every 100 ms.
    /// Returns a datagram to send, if one is due.
    pub fn update_timers<'b>(&mut self, buf: &'b mut [u8]) -> Option<(SocketAddr, &'b [u8])> {
        match self.tunn.update_timers(buf) {
            TunnResult::WriteToNetwork(p) => self.endpoint.map(|to| (to, &*p)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> [u8; 32] {
        let mut k = [seed; 32];
        k[0] &= 248;
        k[31] = (k[31] & 127) | 64;
        k
    }

    fn pair(psk: Option<[u8; 32]>) -> (Tunnel, Tunnel, SocketAddr, SocketAddr) {
        let (ka, kb) = (key(1), key(2));
        let pa = *PublicKey::from(&StaticSecret::from(ka)).as_bytes();
        let pb = *PublicKey::from(&StaticSecret::from(kb)).as_bytes();
        let addr_a: SocketAddr = "192.0.2.1:51820".parse().unwrap();
        let addr_b: SocketAddr = "192.0.2.2:51820".parse().unwrap();
        let a = Tunnel::new(
            &TunnelParams {
                private_key: ka,
                peer_public_key: pb,
                preshared_key: psk,
                persistent_keepalive: None,
                endpoint: Some(addr_b),
                index: 1,
            },
            Tunnel::rate_limiter(&ka, 10),
        );
        let b = Tunnel::new(
            &TunnelParams {
                private_key: kb,
                peer_public_key: pa,
                preshared_key: psk,
                persistent_keepalive: None,
                endpoint: None,
                index: 2,
            },
            Tunnel::rate_limiter(&kb, 10),
        );
        (a, b, addr_a, addr_b)
    }

    /// A minimal valid IPv4 packet (checksum unchecked by boringtun).
    fn ipv4_packet(payload: &[u8]) -> Vec<u8> {
        let total = 20 + payload.len();
        let mut p = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            17,
            0,
            0,
        ];
        p.extend_from_slice(&[172, 20, 1, 1, 172, 20, 2, 1]);
        p.extend_from_slice(payload);
        p
    }

    type Sent = Vec<(SocketAddr, Vec<u8>)>;

    /// Delivers `datagram` to `t` and collects what it sends.
    fn deliver(t: &mut Tunnel, from: SocketAddr, datagram: &[u8]) -> (Option<Vec<u8>>, Sent) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut out = Vec::new();
        let got = match t.receive(from, datagram, &mut buf, &mut |to, d| {
            out.push((to, d.to_vec()))
        }) {
            Received::Packet(p) => Some(p.to_vec()),
            _ => None,
        };
        (got, out)
    }

    #[test]
    fn handshake_then_data_both_ways_and_endpoint_learned() {
        for psk in [None, Some([7u8; 32])] {
            let (mut a, mut b, addr_a, addr_b) = pair(psk);
            let mut buf = vec![0u8; MAX_DATAGRAM];
            let pkt = ipv4_packet(b"hello");
            // No session: the packet is queued and an initiation goes out.
            let (to, init) = a.send(&pkt, &mut buf).unwrap();
            assert_eq!(to, addr_b);
            assert_eq!(init.len(), 148);
            let init = init.to_vec();
            assert_eq!(b.endpoint(), None);
            let (got, out) = deliver(&mut b, addr_a, &init);
            assert!(got.is_none());
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].0, addr_a, "response goes to the initiator");
            assert_eq!(out[0].1.len(), 92);
            assert_eq!(
                b.endpoint(),
                Some(addr_a),
                "endpoint learned from an authenticated init"
            );
            // The response completes the handshake; the queued packet is flushed to b.
            let (_, out) = deliver(&mut a, addr_b, &out[0].1);
            let data: Vec<_> = out.iter().map(|(_, d)| d.clone()).collect();
            assert!(!data.is_empty());
            let mut received = Vec::new();
            for d in data {
                if let (Some(p), _) = deliver(&mut b, addr_a, &d) {
                    received.push(p);
                }
            }
            assert_eq!(received, vec![pkt.clone()]);
            // And back.
            let (to, d) = b.send(&pkt, &mut buf).unwrap();
            assert_eq!(to, addr_a);
            let d = d.to_vec();
            assert_eq!(deliver(&mut a, addr_b, &d).0, Some(pkt.clone()));
            assert!(a.stats().since_last_handshake.is_some());
        }
    }

    #[test]
    fn roaming_follows_authenticated_packets_only() {
        let (mut a, mut b, addr_a, addr_b) = pair(None);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let init = a.send(&ipv4_packet(b"x"), &mut buf).unwrap().1.to_vec();
        let (_, out) = deliver(&mut b, addr_a, &init);
        let (_, out) = deliver(&mut a, addr_b, &out[0].1);
        for (_, d) in &out {
            deliver(&mut b, addr_a, d);
        }
        // a moves to a new address; a forged datagram from elsewhere must not move b.
        let moved: SocketAddr = "198.51.100.7:40000".parse().unwrap();
        let forged = {
            let mut d = a.send(&ipv4_packet(b"y"), &mut buf).unwrap().1.to_vec();
            let n = d.len();
            d[n - 1] ^= 1;
            d
        };
        let attacker: SocketAddr = "203.0.113.66:1".parse().unwrap();
        assert!(deliver(&mut b, attacker, &forged).0.is_none());
        assert_eq!(b.endpoint(), Some(addr_a));
        assert_eq!(b.stats().rx_errors, 1);
        let real = a.send(&ipv4_packet(b"z"), &mut buf).unwrap().1.to_vec();
        assert!(deliver(&mut b, moved, &real).0.is_some());
        assert_eq!(b.endpoint(), Some(moved));
        assert_eq!(b.stats().endpoint_changes, 2);

        // A configured endpoint (a reload): packets go there, the session goes on.
        let configured: SocketAddr = "192.0.2.9:51820".parse().unwrap();
        b.set_endpoint(configured);
        b.set_endpoint(configured);
        assert_eq!(b.stats().endpoint_changes, 3);
        let (to, d) = b.send(&ipv4_packet(b"w"), &mut buf).unwrap();
        assert_eq!(
            (to, d.first()),
            (configured, Some(&4)),
            "data, no new handshake"
        );
    }

    #[test]
    fn under_load_initiations_get_cookies_and_move_nothing() {
        let (mut a, _, addr_a, _) = pair(None);
        // b with a limiter that admits no handshake before demanding a cookie.
        let (ka, kb) = (key(1), key(2));
        let pa = *PublicKey::from(&StaticSecret::from(ka)).as_bytes();
        let mut b = Tunnel::new(
            &TunnelParams {
                private_key: kb,
                peer_public_key: pa,
                preshared_key: None,
                persistent_keepalive: None,
                endpoint: None,
                index: 2,
            },
            Tunnel::rate_limiter(&kb, 0),
        );
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let init = a.send(&ipv4_packet(b"x"), &mut buf).unwrap().1.to_vec();
        let (got, out) = deliver(&mut b, addr_a, &init);
        assert!(got.is_none());
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].1[0], out[0].1.len()), (3, 64), "a cookie reply");
        assert_eq!(out[0].0, addr_a, "sent back to the claimed source only");
        assert_eq!(b.endpoint(), None, "a cookie reply is no authentication");
        // The initiator takes the cookie; its next initiation carries MAC2 and is answered.
        assert!(
            deliver(&mut a, "192.0.2.2:51820".parse().unwrap(), &out[0].1)
                .1
                .is_empty()
        );
        let mut retry = None;
        for _ in 0..60 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if let Some((_, d)) = a.update_timers(&mut buf) {
                retry = Some(d.to_vec());
                break;
            }
        }
        let retry = retry.expect("boringtun retries the handshake within 6 s");
        let (_, out) = deliver(&mut b, addr_a, &retry);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].1[0], out[0].1.len()),
            (2, 92),
            "answered with a valid cookie"
        );
        assert_eq!(b.endpoint(), Some(addr_a));
    }

    #[test]
    fn garbage_is_rejected_without_effect() {
        let (_, mut b, _, _) = pair(None);
        let from: SocketAddr = "192.0.2.9:9".parse().unwrap();
        let mut x = 0x1234_5678_9abc_def0u64;
        for len in [0usize, 1, 3, 4, 31, 32, 64, 92, 148, 149, 1500] {
            for first in [0u8, 1, 2, 3, 4, 5, 255] {
                let mut d: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                if let Some(f) = d.first_mut() {
                    *f = first;
                }
                let (got, out) = deliver(&mut b, from, &d);
                assert!(got.is_none() && out.is_empty());
            }
        }
        assert_eq!(b.endpoint(), None);
    }

    #[test]
    fn no_endpoint_means_nothing_sent() {
        let (_, mut b, _, _) = pair(None);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        assert!(b.send(&ipv4_packet(b"x"), &mut buf).is_none());
        assert_eq!(b.stats().tx_no_endpoint, 1);
        assert!(b.update_timers(&mut buf).is_none());
    }
}
