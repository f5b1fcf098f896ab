//! Real WireGuard handshakes captured by Wireshark's test suite, with their keys
//! (`shared/data/wireguard/`): our tunnel, as the responder, must accept the captured
//! initiations — MAC1, the encrypted static key and the timestamp all check out against
//! keys that wireguard-go / the kernel used — and answer them; with the wrong key it must not.

use base64::Engine;
use rr_dataplane::tunnel::{Received, Tunnel, TunnelParams, MAX_DATAGRAM};
use std::net::SocketAddr;
use std::path::PathBuf;

fn data(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/wireguard")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the shared test data sits beside the checkout)",
            p.display()
        )
    })
}

fn key(b64: &str) -> [u8; 32] {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
        .try_into()
        .unwrap()
}

/// UDP payloads of a classic pcap of Ethernet/IPv4/UDP frames, with their source.
fn udp_payloads(pcap: &[u8]) -> Vec<(SocketAddr, Vec<u8>)> {
    assert_eq!(&pcap[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let incl = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &pcap[at + 16..at + 16 + incl];
        at += 16 + incl;
        if frame.len() < 42 || frame[12..14] != [0x08, 0x00] || frame[23] != 17 {
            continue;
        }
        let ihl = usize::from(frame[14] & 0x0f) * 4;
        let udp = &frame[14 + ihl..];
        let src = SocketAddr::from((
            [frame[26], frame[27], frame[28], frame[29]],
            u16::from_be_bytes([udp[0], udp[1]]),
        ));
        out.push((src, udp[8..].to_vec()));
    }
    out
}

fn responder(private: &str, peer: &str, psk: Option<&str>) -> Tunnel {
    let private = key(private);
    Tunnel::new(
        &TunnelParams {
            private_key: private,
            peer_public_key: key(peer),
            preshared_key: psk.map(key),
            persistent_keepalive: None,
            endpoint: None,
            index: 7,
        },
        Tunnel::rate_limiter(&private, 100),
    )
}

/// Feeds `init` to `t`; returns the reply datagrams.
fn answer(t: &mut Tunnel, from: SocketAddr, init: &[u8]) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut sent = Vec::new();
    let r = t.receive(from, init, &mut buf, &mut |to, d| {
        assert_eq!(to, from);
        sent.push(d.to_vec())
    });
    assert!(!matches!(r, Received::Packet(_)));
    sent
}

const SPRIV_I: &str = "AKeZaHwBxjiKLFnkY2unvEdOTtg4AL+M9dQXfopFVFk=";
const SPUB_I: &str = "Igge9KzRytKNwrgkzDE/8hrLu6Ly0OqVdvOPWhA5KR4=";
const SPRIV_R: &str = "cFIxTUyBs1Qil414hBwEgvasEax8CKJ5IS5ZougplWs=";
const SPUB_R: &str = "YDCttCs9e1J52/g9vEnwJJa+2x6RqaayAYMpSVQfGEY=";

#[test]
fn captured_initiations_are_accepted_by_the_right_key_only() {
    let frames = udp_payloads(&data("wireguard-ping-tcp.pcap"));
    let inits: Vec<_> = frames
        .iter()
        .filter(|(_, d)| d[0] == 1 && d.len() == 148)
        .collect();
    assert_eq!(inits.len(), 2, "frames 1 and 13");
    for (from, init) in inits {
        let mut r = responder(SPRIV_R, SPUB_I, None);
        let reply = answer(&mut r, *from, init);
        assert_eq!(reply.len(), 1);
        assert_eq!(
            (reply[0][0], reply[0].len()),
            (2, 92),
            "a handshake response"
        );
        // The response names the initiator's sender index as its receiver index.
        assert_eq!(reply[0][8..12], init[4..8]);
        assert_eq!(
            r.endpoint(),
            Some(*from),
            "authenticated: the endpoint is learned"
        );

        // Expecting another peer's static key: the decrypted static does not match.
        let mut wrong = responder(SPRIV_R, SPUB_R, None);
        assert!(answer(&mut wrong, *from, init).is_empty());
        assert_eq!(wrong.endpoint(), None);
        // The initiator's own key cannot answer (MAC1 is keyed to the responder).
        let mut not_me = responder(SPRIV_I, SPUB_R, None);
        assert!(answer(&mut not_me, *from, init).is_empty());
        assert_eq!(not_me.stats().rx_errors, 1);
    }
}

#[test]
fn captured_psk_initiations_in_both_directions() {
    let frames = udp_payloads(&data("wireguard-psk.pcap"));
    let inits: Vec<_> = frames.iter().filter(|(_, d)| d[0] == 1).collect();
    assert_eq!(inits.len(), 2);
    // Frame 1: the holder of Spriv_i initiates with psk2; frame 3: roles reversed, psk3.
    let psk2 = "//////////////////////////////////////////8=";
    let psk3 = "iIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIg=";
    let mut r = responder(SPRIV_R, SPUB_I, Some(psk2));
    assert_eq!(answer(&mut r, inits[0].0, &inits[0].1).len(), 1);
    let mut i = responder(SPRIV_I, SPUB_R, Some(psk3));
    assert_eq!(answer(&mut i, inits[1].0, &inits[1].1).len(), 1);
    // Replaying the same initiation (same TAI64N timestamp) is refused (whitepaper 5.1).
    assert!(answer(&mut i, inits[1].0, &inits[1].1).is_empty());
}
