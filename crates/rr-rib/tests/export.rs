//! Export: full table on peer_up, grouping, split horizon, next hop self for every
//! next hop variant, attribute rewriting, policies, peer_down, refresh.

mod common;
use common::*;
use rr_bgp::packet::{
    AsSegment, NextHop, RawAttribute, FLAG_OPTIONAL, FLAG_PARTIAL, FLAG_TRANSITIVE,
};
use rr_rib::{Family, PeerUp, Policy, Rib};

const A: u32 = 4242420002;
const B: u32 = 4242420003;
const C: u32 = 4242420004;

/// Our announce prefixes + peers 1 (A) and 2 (B), both up, exports drained.
fn setup() -> Rib {
    let mut rib = rib(&["172.20.0.0/27", "fd00:1::/48"]);
    rib.add_peer(1, peer("a", A, Some(1)));
    rib.add_peer(2, peer("b", B, Some(2)));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    rib.take_exports(1);
    rib.take_exports(2);
    fib(&mut rib);
    rib
}

fn seq(path: &[u32]) -> Vec<AsSegment> {
    vec![AsSegment::Sequence(path.to_vec())]
}

#[test]
fn full_table_after_peer_up_grouped_by_attributes_then_eor() {
    let mut rib = setup();
    // 40 prefixes in 4 attribute sets from peer 1, 2 IPv6 prefixes.
    for g in 0..4u32 {
        let nets: Vec<String> = (0..10)
            .map(|i| format!("172.21.{}.0/24", g * 10 + i))
            .collect();
        let refs: Vec<&str> = nets.iter().map(String::as_str).collect();
        rib.import(1, &ann4(attrs(&[A, 65000 + g]), "10.0.0.1", &refs));
    }
    rib.import(
        1,
        &ann_mp(attrs(&[A]), ll("fe80::a"), &["fd42::/48", "fd43::/48"]),
    );
    rib.add_peer(3, peer("c", C, Some(3)));
    rib.peer_up(3, up_dual());
    assert!(rib.has_exports());
    let updates = rib.take_exports(3);
    let e = read(&updates);
    // 40 + 2 learned + our 2 announce prefixes.
    assert_eq!(e.announced.len(), 44);
    // 4 IPv4 sets + the IPv6 set + our IPv4 and IPv6 announce sets.
    assert_eq!(e.announcing_updates, 7);
    assert_eq!(e.eor, [Family::Ipv4Unicast, Family::Ipv6Unicast]);
    assert!(e.withdrawn.is_empty());
    assert_eq!(rib.stats(3).exported, 44);
    // Nothing more until something changes.
    assert!(rib.take_exports(3).is_empty());
    // Down and up again: everything again (new session).
    rib.peer_down(3);
    assert_eq!(rib.stats(3).exported, 0);
    rib.peer_up(3, up_dual());
    assert_eq!(read(&rib.take_exports(3)).announced.len(), 44);
}

#[test]
fn announce_prefixes_go_out_with_our_asn_only() {
    let mut rib = rib(&["172.20.0.0/27", "fd00:1::/48"]);
    rib.add_peer(1, peer("a", A, Some(1)));
    rib.peer_up(1, up_dual());
    let e = read(&rib.take_exports(1));
    assert_eq!(e.announced.len(), 2);
    for (a, _) in e.announced.values() {
        assert_eq!(a.as_path.segments, seq(&[LOCAL]));
        assert_eq!(a.origin, rr_bgp::packet::Origin::Igp);
        assert_eq!((a.med, a.local_pref), (None, None));
    }
}

#[test]
fn split_horizon() {
    let mut rib = setup();
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.21.0.0/24"]));
    assert!(
        rib.take_exports(1).is_empty(),
        "never back to where it came from"
    );
    assert_eq!(read(&rib.take_exports(2)).announced.len(), 1);
    // Peer 2 gets a better route: peer 1 now hears peer 2's, peer 2 hears a withdrawal.
    rib.import(2, &ann4(attrs(&[B]), "10.0.0.2", &["172.20.64.0/24"]));
    rib.import(2, &ann4(attrs(&[]), "10.0.0.2", &["172.21.0.0/24"])); // empty path: filtered
    rib.take_exports(1);
    let mut better = attrs(&[B]);
    better.origin = rr_bgp::packet::Origin::Igp;
    rib.import(2, &ann4(better.clone(), "10.0.0.2", &["172.21.0.0/24"]));
    // Same length as peer 1's path: peer 1 (id 1) still wins the tie.
    assert!(rib.take_exports(2).is_empty());
    rib.import(1, &ann4(attrs(&[A, 65001]), "10.0.0.1", &["172.21.0.0/24"]));
    let to1 = read(&rib.take_exports(1));
    let to2 = read(&rib.take_exports(2));
    assert_eq!(
        to1.announced.keys().collect::<Vec<_>>(),
        [&net("172.21.0.0/24")]
    );
    assert_eq!(
        to1.announced[&net("172.21.0.0/24")].0.as_path.segments,
        seq(&[LOCAL, B])
    );
    assert_eq!(to2.withdrawn, [net("172.21.0.0/24")]);
    assert!(to2.announced.is_empty());
}

#[test]
fn ibgp_routes_do_not_go_to_ibgp_peers() {
    let mut rib = rib(&[]);
    rib.add_peer(1, peer("i1", LOCAL, Some(1)));
    rib.add_peer(2, peer("i2", LOCAL, Some(2)));
    rib.add_peer(3, peer("e", C, Some(3)));
    for p in 1..=3 {
        rib.peer_up(p, up_dual());
        rib.take_exports(p);
    }
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.21.0.0/24"]));
    assert!(rib.take_exports(2).is_empty());
    assert_eq!(read(&rib.take_exports(3)).announced.len(), 1);
    // An eBGP route does go to iBGP peers, path unchanged, LOCAL_PREF present.
    let mut m = attrs(&[C, 7]);
    m.med = Some(33);
    rib.import(3, &ann4(m, "10.0.0.3", &["172.21.1.0/24"]));
    let e = read(&rib.take_exports(2));
    let (a, nh) = &e.announced[&net("172.21.1.0/24")];
    assert_eq!(a.as_path.segments, seq(&[C, 7]));
    assert_eq!((a.local_pref, a.med), (Some(100), Some(33)));
    assert_eq!(*nh, Some(NextHop::V4(v4("172.20.0.1"))));
}

#[test]
fn ebgp_rewrites_attributes() {
    let mut rib = setup();
    let mut a = attrs(&[A, 65001]);
    a.med = Some(10);
    a.communities = vec![(64511 << 16) | 3, (64511 << 16) | 24];
    a.large_communities = vec![[4242420002, 1, 2]];
    a.ext_communities = vec![[0, 2, 0, 1, 0, 0, 0, 1]];
    a.atomic_aggregate = true;
    a.aggregator = Some((65001, v4("10.9.9.9")));
    a.other = vec![
        RawAttribute {
            flags: FLAG_OPTIONAL | FLAG_TRANSITIVE,
            code: 99,
            value: vec![1, 2, 3],
        },
        RawAttribute {
            flags: FLAG_OPTIONAL,
            code: 98,
            value: vec![4],
        },
    ];
    rib.import(1, &ann4(a.clone(), "10.0.0.1", &["172.21.0.0/24"]));
    let e = read(&rib.take_exports(2));
    let (out, nh) = &e.announced[&net("172.21.0.0/24")];
    assert_eq!(out.as_path.segments, seq(&[LOCAL, A, 65001]));
    assert_eq!((out.med, out.local_pref), (None, None));
    assert_eq!(*nh, Some(NextHop::V4(v4("172.20.0.1"))), "next hop self");
    assert_eq!(out.communities, a.communities);
    assert_eq!(out.large_communities, a.large_communities);
    assert_eq!(out.ext_communities, a.ext_communities);
    assert!(out.atomic_aggregate);
    assert_eq!(out.aggregator, a.aggregator);
    assert_eq!(
        out.other,
        [RawAttribute {
            flags: FLAG_OPTIONAL | FLAG_TRANSITIVE | FLAG_PARTIAL,
            code: 99,
            value: vec![1, 2, 3],
        }]
    );
}

/// Peer 3 comes up with `up`; returns what it gets for one IPv4 and one IPv6 route.
fn next_hops_for(up: PeerUp) -> (Option<rr_rib::Update>, Option<rr_rib::Update>) {
    let mut rib = setup();
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.21.0.0/24"]));
    rib.import(1, &ann_mp(attrs(&[A]), ll("fe80::a"), &["fd42::/48"]));
    rib.add_peer(3, peer("c", C, Some(3)));
    rib.peer_up(3, up);
    let updates = rib.take_exports(3);
    let find = |n: &str| {
        updates
            .iter()
            .find(|u| {
                u.nlri.iter().any(|x| x.to_string() == n)
                    || u.mp_reach
                        .as_ref()
                        .is_some_and(|m| m.nlri.iter().any(|x| x.to_string() == n))
            })
            .cloned()
    };
    (find("172.21.0.0/24"), find("fd42::/48"))
}

fn up(ll: Option<&str>, global: Option<&str>, v4a: Option<&str>, enh: bool) -> PeerUp {
    PeerUp {
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        extended_next_hop: enh,
        next_hop_v4: v4a.map(v4),
        next_hop_v6: global.map(v6),
        next_hop_ll: ll.map(v6),
    }
}

#[test]
fn next_hop_self_variants() {
    // Classic: an IPv4 address, no ENH.
    let (u4, u6) = next_hops_for(up(
        Some("fe80::1"),
        Some("fd00:1::1"),
        Some("172.20.0.1"),
        false,
    ));
    let u4 = u4.unwrap();
    assert_eq!(u4.attrs.as_ref().unwrap().next_hop, Some(v4("172.20.0.1")));
    assert!(u4.mp_reach.is_none());
    assert_eq!(
        u6.unwrap().mp_reach.unwrap().next_hop,
        NextHop::V6Pair(v6("fd00:1::1"), v6("fe80::1"))
    );

    // ENH over link-local: IPv4 in MP_REACH with the IPv6 next hop, even with an IPv4.
    let (u4, _) = next_hops_for(up(
        Some("fe80::1"),
        Some("fd00:1::1"),
        Some("172.20.0.1"),
        true,
    ));
    let u4 = u4.unwrap();
    assert!(u4.nlri.is_empty());
    assert_eq!(u4.attrs.as_ref().unwrap().next_hop, None);
    let m = u4.mp_reach.unwrap();
    assert_eq!(m.family, Family::Ipv4Unicast);
    assert_eq!(m.next_hop, NextHop::V6Pair(v6("fd00:1::1"), v6("fe80::1")));

    // Link-local only: [::, LL] for both families (what BIRD sends).
    let (u4, u6) = next_hops_for(up(Some("fe80::1"), None, None, true));
    let pair = NextHop::V6Pair(v6("::"), v6("fe80::1"));
    assert_eq!(u4.unwrap().mp_reach.unwrap().next_hop, pair);
    assert_eq!(u6.unwrap().mp_reach.unwrap().next_hop, pair);

    // ENH without a link-local (host session): IPv4 address still preferred.
    let (u4, u6) = next_hops_for(up(None, Some("fd00:1::1"), Some("172.20.0.1"), true));
    assert_eq!(u4.unwrap().attrs.unwrap().next_hop, Some(v4("172.20.0.1")));
    assert_eq!(
        u6.unwrap().mp_reach.unwrap().next_hop,
        NextHop::V6(v6("fd00:1::1"))
    );

    // ENH, global only, no IPv4 address: IPv4 with the 16-byte global next hop.
    let (u4, _) = next_hops_for(up(None, Some("fd00:1::1"), None, true));
    assert_eq!(
        u4.unwrap().mp_reach.unwrap().next_hop,
        NextHop::V6(v6("fd00:1::1"))
    );

    // No IPv4 address and no ENH: IPv4 routes cannot be sent; no IPv6 address: no IPv6.
    let (u4, u6) = next_hops_for(up(None, None, None, false));
    assert!(u4.is_none() && u6.is_none());
}

#[test]
fn only_negotiated_families_are_sent() {
    let mut rib = setup();
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.21.0.0/24"]));
    rib.import(1, &ann_mp(attrs(&[A]), ll("fe80::a"), &["fd42::/48"]));
    rib.add_peer(3, peer("c", C, Some(3)));
    let mut u = up_dual();
    u.families = vec![Family::Ipv6Unicast];
    rib.peer_up(3, u);
    let e = read(&rib.take_exports(3));
    assert!(e.announced.keys().all(|n| matches!(n, ipnet::IpNet::V6(_))));
    assert_eq!(e.announced.len(), 2);
    assert_eq!(e.eor, [Family::Ipv6Unicast]);
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.21.1.0/24"]));
    assert!(rib.take_exports(3).is_empty());
}

#[test]
fn export_policies() {
    let mut rib = rib(&["172.20.0.0/27"]);
    rib.add_peer(1, peer("src", A, Some(1)));
    let mut dn42 = peer("dn42", B, Some(2));
    dn42.export = Policy::Dn42;
    let mut none = peer("none", C, Some(3));
    none.export = Policy::None;
    rib.add_peer(2, dn42);
    rib.add_peer(3, none);
    for p in 1..=3 {
        rib.peer_up(p, up_dual());
    }
    rib.import(
        1,
        &ann4(
            attrs(&[A]),
            "10.0.0.1",
            &["172.21.0.0/24", "172.22.166.0/24", "192.168.0.0/16"],
        ),
    );
    let e = read(&rib.take_exports(2));
    let got: Vec<String> = e.announced.keys().map(|n| n.to_string()).collect();
    assert_eq!(got, ["172.20.0.0/27", "172.21.0.0/24"]);
    let e = read(&rib.take_exports(3));
    assert!(e.announced.is_empty());
    assert_eq!(e.eor.len(), 2, "End-of-RIB even with nothing to send");
}

#[test]
fn statics_are_not_exported() {
    let mut rib = setup();
    rib.set_static(vec![(
        net("172.21.9.0/24"),
        rr_fib::NextHop {
            iface: 1,
            gateway: None,
        },
    )]);
    assert!(rib.take_exports(2).is_empty());
    // A BGP route under a static: the static wins, so nothing is exported either,
    // and a previously exported BGP route is withdrawn.
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.21.8.0/24"]));
    assert_eq!(read(&rib.take_exports(2)).announced.len(), 1);
    rib.set_static(vec![(
        net("172.21.8.0/24"),
        rr_fib::NextHop {
            iface: 1,
            gateway: None,
        },
    )]);
    assert_eq!(read(&rib.take_exports(2)).withdrawn, [net("172.21.8.0/24")]);
}

#[test]
fn peer_down_withdraws_everything_from_fib_and_others() {
    let mut rib = setup();
    let nets: Vec<String> = (0..50).map(|i| format!("172.21.{i}.0/24")).collect();
    let refs: Vec<&str> = nets.iter().map(String::as_str).collect();
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &refs));
    rib.import(1, &ann_mp(attrs(&[A]), ll("fe80::a"), &["fd42::/48"]));
    // Peer 2 has a backup for one prefix.
    rib.import(2, &ann4(attrs(&[B, 9]), "10.0.0.2", &["172.21.0.0/24"]));
    assert_eq!(fib(&mut rib).len(), 51);
    assert_eq!(read(&rib.take_exports(2)).announced.len(), 51);
    assert_eq!(rib.stats(2).exported, 53, "with our 2 announce prefixes");
    rib.take_exports(1);
    let slots_before = rib.table_size().0;

    rib.peer_down(1);
    let f = fib(&mut rib);
    assert_eq!(f.len(), 51);
    assert_eq!(f[&net("172.21.0.0/24")], via(2, "10.0.0.2"));
    assert_eq!(f.values().filter(|v| v.is_none()).count(), 50);
    let e = read(&rib.take_exports(2));
    assert_eq!(
        e.withdrawn.len(),
        51,
        "the backup is peer 2's own: withdrawn too"
    );
    assert!(e.announced.is_empty());
    assert_eq!(rib.stats(2).exported, 2);
    assert_eq!(rib.best_count(), (2, 1));
    assert_eq!(
        rib.stats(1),
        rr_rib::PeerStats {
            updates_received: 2,
            announcements_received: 51,
            ..rr_rib::PeerStats::default()
        }
    );
    // Freed once nothing refers to them.
    fib(&mut rib);
    assert_eq!(rib.table_size().0, slots_before - 50);
    // Peer 1's session is down: its imports are ignored until it is up again.
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.21.60.0/24"]));
    assert_eq!(rib.best_count(), (2, 1));
}

#[test]
fn remove_peer_is_peer_down_and_forget() {
    let mut rib = setup();
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.21.0.0/24"]));
    rib.take_exports(2);
    rib.remove_peer(1);
    assert_eq!(read(&rib.take_exports(2)).withdrawn, [net("172.21.0.0/24")]);
    assert_eq!(rib.stats(1), rr_rib::PeerStats::default());
    assert!(rib.take_exports(1).is_empty());
    // The id can be reused for a new peer.
    rib.add_peer(1, peer("a2", C, Some(4)));
    rib.peer_up(1, up_dual());
    rib.import(1, &ann4(attrs(&[C]), "10.0.0.4", &["172.21.0.0/24"]));
    assert_eq!(fib(&mut rib)[&net("172.21.0.0/24")], via(4, "10.0.0.4"));
}

#[test]
fn refresh_sends_the_family_again() {
    let mut rib = setup();
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.21.0.0/24"]));
    rib.import(1, &ann_mp(attrs(&[A]), ll("fe80::a"), &["fd42::/48"]));
    rib.take_exports(2);
    assert!(!rib.has_exports());
    rib.refresh(2, Family::Ipv6Unicast);
    assert!(rib.has_exports());
    let e = read(&rib.take_exports(2));
    let got: Vec<String> = e.announced.keys().map(|n| n.to_string()).collect();
    assert_eq!(got, ["fd00:1::/48", "fd42::/48"]);
    assert!(
        e.eor.is_empty(),
        "End-of-RIB only after the session's first send"
    );
    rib.refresh(2, Family::Ipv4Unicast);
    assert_eq!(read(&rib.take_exports(2)).announced.len(), 2);
    assert_eq!(rib.stats(2).exported, 4);
}

#[test]
fn changes_are_batched_per_prefix() {
    let mut rib = setup();
    // Announce, change, withdraw between two takes: nothing was sent, nothing to send.
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.21.0.0/24"]));
    rib.import(1, &ann4(attrs(&[A, 1]), "10.0.0.1", &["172.21.0.0/24"]));
    rib.import(1, &wd4(&["172.21.0.0/24"]));
    assert!(rib.take_exports(2).is_empty());
    assert!(fib(&mut rib).is_empty());
    // Announce and change: only the last state goes out.
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.21.0.0/24"]));
    rib.import(1, &ann4(attrs(&[A, 7]), "10.0.0.1", &["172.21.0.0/24"]));
    let e = read(&rib.take_exports(2));
    assert_eq!(
        e.announced[&net("172.21.0.0/24")].0.as_path.segments,
        seq(&[LOCAL, A, 7])
    );
    // Withdrawals of both families come as one UPDATE per family.
    rib.import(
        1,
        &ann_mp(attrs(&[A]), ll("fe80::a"), &["fd42::/48", "fd43::/48"]),
    );
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.21.1.0/24"]));
    rib.take_exports(2);
    rib.import(1, &wd4(&["172.21.0.0/24", "172.21.1.0/24"]));
    rib.import(1, &wd6(&["fd42::/48", "fd43::/48"]));
    let updates = rib.take_exports(2);
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0].withdrawn.len(), 2);
    assert_eq!(updates[1].mp_unreach.as_ref().unwrap().withdrawn.len(), 2);
    assert!(updates.iter().all(|u| u.attrs.is_none()));
}

#[test]
fn enh_peer_gets_ipv4_withdrawals_in_mp_unreach() {
    let mut rib = setup();
    rib.add_peer(3, peer("c", C, Some(3)));
    rib.peer_up(3, up(Some("fe80::1"), None, None, true));
    rib.take_exports(3);
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.21.0.0/24"]));
    assert_eq!(read(&rib.take_exports(3)).announced.len(), 1);
    rib.import(1, &wd4(&["172.21.0.0/24"]));
    let updates = rib.take_exports(3);
    assert_eq!(updates.len(), 1);
    let m = updates[0].mp_unreach.as_ref().unwrap();
    assert_eq!(m.family, Family::Ipv4Unicast);
    assert_eq!(m.withdrawn, [net("172.21.0.0/24")]);
    assert!(updates[0].withdrawn.is_empty());
}
