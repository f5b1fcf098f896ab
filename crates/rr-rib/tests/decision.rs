//! The decision process (RFC 4271 9.1.2.2 in BIRD's order) and static routes beating BGP.

mod common;
use common::*;
use rr_bgp::packet::Origin;
use rr_rib::{Rib, RouteFilter};

const A: u32 = 4242420002;
const B: u32 = 4242420003;

/// The peer handle of the best route for `prefix`.
fn best_peer(rib: &Rib, prefix: &str) -> Option<u32> {
    let v = rib.routes(RouteFilter {
        filtered: false,
        prefix: Some(net(prefix)),
        ..RouteFilter::default()
    });
    assert!(v.len() <= 1);
    v.first().and_then(|r| r.peer)
}

/// Two eBGP peers on tunnels 1 and 2 (ids 1 and 2), both up.
fn two_ebgp(asn1: u32, asn2: u32) -> Rib {
    let mut rib = rib(&[]);
    rib.add_peer(1, peer("a", asn1, Some(1)));
    rib.add_peer(2, peer("b", asn2, Some(2)));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    rib
}

#[test]
fn shorter_as_path_wins_whatever_the_order() {
    for first in [1, 2] {
        let mut rib = two_ebgp(A, B);
        let long = ann4(attrs(&[A, 65001, 65002]), "10.0.0.1", &["172.20.1.0/24"]);
        let short = ann4(attrs(&[B, 65002]), "10.0.0.2", &["172.20.1.0/24"]);
        if first == 1 {
            rib.import(1, &long);
            rib.import(2, &short);
        } else {
            rib.import(2, &short);
            rib.import(1, &long);
        }
        assert_eq!(best_peer(&rib, "172.20.1.0/24"), Some(2));
        assert_eq!(
            fib(&mut rib).get(&net("172.20.1.0/24")),
            Some(&via(2, "10.0.0.2"))
        );
    }
}

#[test]
fn as_set_counts_one() {
    let mut rib = two_ebgp(A, B);
    let mut with_set = attrs(&[A]);
    with_set
        .as_path
        .segments
        .push(rr_bgp::packet::AsSegment::Set(vec![1, 2, 3, 4]));
    rib.import(1, &ann4(with_set, "10.0.0.1", &["172.20.1.0/24"])); // length 2
    rib.import(2, &ann4(attrs(&[B, 5, 6]), "10.0.0.2", &["172.20.1.0/24"])); // length 3
    assert_eq!(best_peer(&rib, "172.20.1.0/24"), Some(1));
}

#[test]
fn local_pref_beats_path_length_on_ibgp() {
    let mut rib = rib(&[]);
    rib.add_peer(1, peer("i1", LOCAL, Some(1)));
    rib.add_peer(2, peer("i2", LOCAL, Some(2)));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    let mut high = attrs(&[A, 1, 2, 3]);
    high.local_pref = Some(200);
    let mut low = attrs(&[B]);
    low.local_pref = Some(100);
    rib.import(2, &ann4(low, "10.0.0.2", &["172.20.1.0/24"]));
    rib.import(1, &ann4(high, "10.0.0.1", &["172.20.1.0/24"]));
    assert_eq!(best_peer(&rib, "172.20.1.0/24"), Some(1));
    let v = rib.routes(RouteFilter::default());
    assert_eq!(v[0].local_pref, 200);
}

#[test]
fn local_pref_from_ebgp_is_ignored() {
    // RFC 4271 5.1.5: an external peer's LOCAL_PREF must be ignored.
    let mut rib = two_ebgp(A, B);
    let mut pushy = attrs(&[A, 1, 2]);
    pushy.local_pref = Some(1000);
    rib.import(1, &ann4(pushy, "10.0.0.1", &["172.20.1.0/24"]));
    rib.import(2, &ann4(attrs(&[B]), "10.0.0.2", &["172.20.1.0/24"]));
    assert_eq!(best_peer(&rib, "172.20.1.0/24"), Some(2));
    let all = rib.routes(RouteFilter {
        filtered: false,
        all: true,
        ..RouteFilter::default()
    });
    assert!(all.iter().all(|r| r.local_pref == 100));
}

#[test]
fn lower_origin_wins_at_equal_length() {
    let mut rib = two_ebgp(A, B);
    let mut incomplete = attrs(&[A, 65001]);
    incomplete.origin = Origin::Incomplete;
    let mut egp = attrs(&[B, 65001]);
    egp.origin = Origin::Egp;
    rib.import(1, &ann4(incomplete, "10.0.0.1", &["172.20.1.0/24"]));
    rib.import(2, &ann4(egp.clone(), "10.0.0.2", &["172.20.1.0/24"]));
    assert_eq!(best_peer(&rib, "172.20.1.0/24"), Some(2));
    let mut igp = attrs(&[A, 65001]);
    igp.origin = Origin::Igp;
    rib.import(1, &ann4(igp, "10.0.0.1", &["172.20.1.0/24"]));
    assert_eq!(best_peer(&rib, "172.20.1.0/24"), Some(1));
}

#[test]
fn med_compared_only_within_the_same_neighbor_as() {
    // Same neighbor AS (two sessions to AS A): lower MED wins even from the higher id.
    let mut rib = two_ebgp(A, A);
    let mut m50 = attrs(&[A, 65001]);
    m50.med = Some(50);
    let mut m10 = attrs(&[A, 65001]);
    m10.med = Some(10);
    rib.import(1, &ann4(m50, "10.0.0.1", &["172.20.1.0/24"]));
    rib.import(2, &ann4(m10, "10.0.0.2", &["172.20.1.0/24"]));
    assert_eq!(best_peer(&rib, "172.20.1.0/24"), Some(2));

    // Missing MED is the lowest value (RFC 4271 9.1.2.2 c).
    rib.import(1, &ann4(attrs(&[A, 65001]), "10.0.0.1", &["172.20.1.0/24"]));
    assert_eq!(best_peer(&rib, "172.20.1.0/24"), Some(1));

    // Different neighbor ASes: MED is not compared, the peer id decides (1 < 2)
    // although peer 1's MED is higher.
    let mut rib = two_ebgp(A, B);
    let mut high = attrs(&[A, 65001]);
    high.med = Some(500);
    let mut low = attrs(&[B, 65001]);
    low.med = Some(5);
    rib.import(2, &ann4(low, "10.0.0.2", &["172.20.1.0/24"]));
    rib.import(1, &ann4(high, "10.0.0.1", &["172.20.1.0/24"]));
    assert_eq!(best_peer(&rib, "172.20.1.0/24"), Some(1));
}

#[test]
fn ebgp_beats_ibgp() {
    let mut rib = rib(&[]);
    rib.add_peer(1, peer("internal", LOCAL, Some(1)));
    rib.add_peer(2, peer("external", A, Some(2)));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    rib.import(1, &ann4(attrs(&[A, 65001]), "10.0.0.1", &["172.20.1.0/24"]));
    rib.import(2, &ann4(attrs(&[A, 65001]), "10.0.0.2", &["172.20.1.0/24"]));
    assert_eq!(best_peer(&rib, "172.20.1.0/24"), Some(2));
}

#[test]
fn lowest_peer_id_breaks_ties() {
    for order in [[7u32, 3], [3, 7]] {
        let mut rib = rib(&[]);
        for (i, id) in order.iter().enumerate() {
            rib.add_peer(*id, peer(&format!("p{id}"), A + i as u32, Some(*id)));
            rib.peer_up(*id, up_dual());
        }
        for (i, id) in order.iter().enumerate() {
            let nh = format!("10.0.0.{id}");
            rib.import(
                *id,
                &ann4(attrs(&[A + i as u32, 65001]), &nh, &["172.20.1.0/24"]),
            );
        }
        assert_eq!(best_peer(&rib, "172.20.1.0/24"), Some(3), "order {order:?}");
    }
}

#[test]
fn withdrawing_the_best_promotes_the_next() {
    let mut rib = two_ebgp(A, B);
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.20.1.0/24"]));
    rib.import(2, &ann4(attrs(&[B, 1]), "10.0.0.2", &["172.20.1.0/24"]));
    assert_eq!(
        fib(&mut rib).get(&net("172.20.1.0/24")),
        Some(&via(1, "10.0.0.1"))
    );
    rib.import(1, &wd4(&["172.20.1.0/24"]));
    assert_eq!(best_peer(&rib, "172.20.1.0/24"), Some(2));
    assert_eq!(
        fib(&mut rib).get(&net("172.20.1.0/24")),
        Some(&via(2, "10.0.0.2"))
    );
    assert_eq!(rib.stats(1).preferred, 0);
    assert_eq!(rib.stats(2).preferred, 1);
    rib.import(2, &wd4(&["172.20.1.0/24"]));
    assert_eq!(fib(&mut rib).get(&net("172.20.1.0/24")), Some(&None));
    assert_eq!(rib.best_count(), (0, 0));
}

#[test]
fn static_beats_bgp_and_gives_way_when_removed() {
    let mut rib = two_ebgp(A, B);
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.20.1.0/24"]));
    fib(&mut rib);
    let st = rr_fib::NextHop {
        iface: 9,
        gateway: None,
    };
    rib.set_static(vec![(net("172.20.1.0/24"), st)]);
    assert_eq!(fib(&mut rib).get(&net("172.20.1.0/24")), Some(&Some(st)));
    let v = rib.routes(RouteFilter {
        filtered: false,
        all: true,
        ..RouteFilter::default()
    });
    assert_eq!(v.len(), 2);
    assert_eq!((v[0].source.as_str(), v[0].best), ("static", true));
    assert_eq!((v[1].source.as_str(), v[1].best), ("bgp a", false));
    // A BGP update for the prefix does not touch the FIB while the static wins.
    rib.import(1, &ann4(attrs(&[A, 1]), "10.0.0.9", &["172.20.1.0/24"]));
    assert!(fib(&mut rib).is_empty());
    rib.set_static(vec![]);
    assert_eq!(
        fib(&mut rib).get(&net("172.20.1.0/24")),
        Some(&via(1, "10.0.0.9"))
    );
}

#[test]
fn announce_beats_static_and_never_reaches_the_fib() {
    let mut rib = rib(&["172.20.1.0/24"]);
    assert_eq!(rib.best_count(), (1, 0));
    assert!(fib(&mut rib).is_empty());
    rib.set_static(vec![(
        net("172.20.1.0/24"),
        rr_fib::NextHop {
            iface: 1,
            gateway: None,
        },
    )]);
    assert!(fib(&mut rib).is_empty(), "the announce route stays best");
    let v = rib.routes(RouteFilter::default());
    assert_eq!(v[0].source, "announce");
    assert_eq!(v[0].iface, None);
}
