//! The codec against real BIRD 2 and FRR sessions in the DN42 style: the files in
//! `crates/rr-bgp/tests/data` (raw `*.bgp` message files and the `*.pcap` captures they
//! were cut from; its README.md says how they were made).
//!
//! [`every_captured_message_decodes_and_reencodes`] takes whatever files are there (and
//! fails only if the directory has files but no BGP messages): every message must
//! decode without any RFC 7606 treat-as-withdraw and re-encode either to the very same
//! bytes or to the canonical form with only encoding choices changed: BIRD puts
//! MP_REACH_NLRI / MP_UNREACH_NLRI first, with the extended length flag whatever their
//! size; FRR sets that flag on its MP attributes too, and puts each capability of its
//! OPEN in a parameter of its own (BIRD and the codec use one parameter for all). The
//! other tests check facts the README states about specific files; they need those
//! files.

mod common;

use common::*;
use rr_bgp::packet::{Capability, Codec, Family, Message, NextHop, Notification, AS_TRANS};
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The codec for a one-direction message file: from its OPEN, else 4-byte ASNs (all
/// DN42 sessions are; files without OPEN are extracts of NOTIFICATION / ROUTE-REFRESH).
fn codec_of(msgs: &[Vec<u8>]) -> Codec {
    let open = msgs
        .iter()
        .find_map(|m| match Message::decode(m, &Codec::INITIAL) {
            Ok(Message::Open(o)) => Some(o),
            _ => None,
        });
    Codec {
        four_octet_as: open.is_none_or(|o| {
            o.capabilities
                .iter()
                .any(|c| matches!(c, Capability::FourOctetAs(_)))
        }),
        extended_message: false,
    }
}

fn file(name: &str) -> Vec<Message> {
    let msgs = bgp_files(&dir())
        .remove(name)
        .unwrap_or_else(|| panic!("{name} is missing"));
    let codec = codec_of(&msgs);
    msgs.iter()
        .map(|m| Message::decode(m, &codec).expect("decodes"))
        .collect()
}

/// Checks one message; returns a short description of the outcome.
fn check(m: &[u8], codec: &Codec, origin: &str) -> String {
    match roundtrip(m, codec) {
        Ok((_, Roundtrip::Identical)) => "identical".into(),
        Ok((_, Roundtrip::Canonical(n))) => {
            let allowed = Normalized {
                reordered: n.reordered,
                ext_len: n.ext_len,
                regrouped: n.regrouped,
                ..Normalized::default()
            };
            assert_eq!(n, allowed, "{origin}: more than an encoding choice changed");
            format!(
                "canonical{}{}{}",
                if n.reordered { " reordered" } else { "" },
                if n.ext_len { " ext-len" } else { "" },
                if n.regrouped { " regrouped" } else { "" }
            )
        }
        Ok((_, other)) => panic!("{origin}: {other:?}"),
        Err(e) => panic!("{origin}: {e}"),
    }
}

#[test]
fn every_captured_message_decodes_and_reencodes() {
    let Ok(entries) = std::fs::read_dir(dir()) else {
        eprintln!("{} does not exist: nothing to check", dir().display());
        return;
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut total = 0;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for (name, msgs) in bgp_files(&dir()) {
        let codec = codec_of(&msgs);
        for (i, m) in msgs.iter().enumerate() {
            *outcomes
                .entry(check(m, &codec, &format!("{name} #{i}")))
                .or_default() += 1;
        }
        println!("{name}: {} messages", msgs.len());
        total += msgs.len();
    }
    for name in names.iter().filter(|n| n.ends_with(".pcap")) {
        for s in pcap_sessions(&dir().join(name)) {
            for m in s.dirs.iter().flatten() {
                *outcomes.entry(check(m, &s.codec, name)).or_default() += 1;
                total += 1;
            }
        }
        println!("{name}: decoded");
    }
    println!("{total} messages: {outcomes:?}");
    if !names.is_empty() {
        assert!(
            total > 0,
            "{} has files but no BGP messages",
            dir().display()
        );
    }
}

#[test]
fn bird_link_local_session_next_hops() {
    // BIRD: 32 bytes [::, fe80::a] for IPv6 and for IPv4 with extended next hop.
    let ll: Ipv6Addr = "fe80::a".parse().unwrap();
    let mut families = Vec::new();
    for m in file("bird_llenh_a2b.bgp") {
        let Message::Update(u) = m else { continue };
        if let Some(r) = u.mp_reach {
            if r.next_hop == NextHop::V6Pair(Ipv6Addr::UNSPECIFIED, ll) {
                assert_eq!(
                    (r.next_hop.link_local(), r.next_hop.global_v6()),
                    (Some(ll), None)
                );
                families.push(r.family);
            } else {
                // Routes learned from the IPv4 session keep their IPv4 next hop.
                assert!(matches!(r.next_hop, NextHop::V4(_)), "{r:?}");
            }
        }
    }
    assert!(families.contains(&Family::Ipv4Unicast) && families.contains(&Family::Ipv6Unicast));
}

#[test]
fn frr_link_local_session_next_hops() {
    // FRR: 32 bytes [fe80::b, fe80::b].
    let ll: Ipv6Addr = "fe80::b".parse().unwrap();
    let mut families = Vec::new();
    for m in file("frr_llenh_frr2bird.bgp") {
        let Message::Update(u) = m else { continue };
        if let Some(r) = u.mp_reach {
            assert_eq!(r.next_hop, NextHop::V6Pair(ll, ll));
            assert_eq!(
                (r.next_hop.link_local(), r.next_hop.global_v6()),
                (Some(ll), None)
            );
            families.push(r.family);
        }
    }
    assert!(families.contains(&Family::Ipv4Unicast) && families.contains(&Family::Ipv6Unicast));
}

#[test]
fn opens_of_four_byte_speakers() {
    for (name, asn) in [
        ("bird_llenh_a2b.bgp", 4242420002),
        ("bird_llenh_b2a.bgp", 4242420003),
        ("frr_llenh_frr2bird.bgp", 4242420003),
    ] {
        let raw = bgp_files(&dir()).remove(name).unwrap();
        assert_eq!(raw[0][20..22], AS_TRANS.to_be_bytes(), "{name}: My AS");
        let Message::Open(o) = &file(name)[0] else {
            panic!("{name}: no OPEN first")
        };
        assert_eq!(o.asn, asn);
        assert_eq!(o.hold_time, 9);
        let caps = &o.capabilities;
        assert!(caps.contains(&Capability::FourOctetAs(asn)));
        assert!(caps.contains(&Capability::Multiprotocol { afi: 2, safi: 1 }));
        assert!(caps.iter().any(|c| matches!(c, Capability::ExtendedNextHop(e) if e.iter().any(|e| (e.afi, e.safi, e.nh_afi) == (1, 1, 2)))));
        // Graceful restart (64), kept raw.
        assert!(caps.iter().any(|c| matches!(c, Capability::Other(64, _))));
    }
    // BIRD's long-lived graceful restart (71), FRR's hostname (73).
    let Message::Open(bird) = &file("bird_llenh_a2b.bgp")[0] else {
        panic!()
    };
    assert!(bird.capabilities.contains(&Capability::Other(71, vec![])));
    let Message::Open(frr) = &file("frr_llenh_frr2bird.bgp")[0] else {
        panic!()
    };
    assert!(frr
        .capabilities
        .iter()
        .any(|c| matches!(c, Capability::Other(73, v) if v.starts_with(&[5, b'f', b'r', b'r']))));
}

#[test]
fn end_of_rib_markers_of_both_families() {
    for name in ["bird_llenh_a2b.bgp", "frr_llenh_frr2bird.bgp"] {
        let eors: Vec<Family> = file(name)
            .iter()
            .filter_map(|m| match m {
                Message::Update(u) => u.is_end_of_rib(),
                _ => None,
            })
            .collect();
        assert!(eors.contains(&Family::Ipv4Unicast), "{name}: {eors:?}");
        assert!(eors.contains(&Family::Ipv6Unicast), "{name}: {eors:?}");
    }
}

#[test]
fn communities_as_configured() {
    // a's own IPv6 routes: (64511,3) (64511,24) (64511,34) (64511,41), large
    // (4242420001,1,2) and (4242420001,2,1000).
    let found = file("bird_llenh_a2b.bgp").into_iter().any(|m| {
        let Message::Update(u) = m else { return false };
        let Some(a) = &u.attrs else { return false };
        u.mp_reach
            .as_ref()
            .is_some_and(|r| r.family == Family::Ipv6Unicast)
            && a.communities == [3, 24, 34, 41].map(|x| (64511 << 16) | x)
            && a.large_communities == [[4242420001, 1, 2], [4242420001, 2, 1000]]
    });
    assert!(found);
}

#[test]
fn shutdown_communication_from_bird_and_frr() {
    let ours = Notification::cease(2, "going down for maintenance");
    for name in [
        "bird_notification_cease_msg.bgp",
        "frr_notification_cease_msg.bgp",
    ] {
        let Message::Notification(n) = &file(name)[0] else {
            panic!("{name}")
        };
        assert_eq!(n, &ours, "{name}: the same bytes as Notification::cease");
        assert_eq!(
            n.describe(),
            "Cease: Administrative shutdown: \"going down for maintenance\""
        );
    }
    let Message::Notification(n) = &file("bird_notification_cease.bgp")[0] else {
        panic!()
    };
    assert_eq!(n.describe(), "Cease: Administrative shutdown");
}

#[test]
fn enhanced_route_refresh_markers() {
    let subtypes: Vec<(u16, u8)> = file("frr_route_refresh.bgp")
        .iter()
        .filter_map(|m| match m {
            Message::RouteRefresh(r) => Some((r.afi, r.subtype)),
            _ => None,
        })
        .collect();
    for want in [(1, 0), (2, 0), (1, 1), (1, 2), (2, 1), (2, 2)] {
        assert!(subtypes.contains(&want), "{want:?} in {subtypes:?}");
    }
}
