//! The FIB sink (next hop per route kind, recursive resolution for host sessions,
//! change elision) and the `show route` view.

mod common;
use common::*;
use rr_bgp::packet::{NextHop, Origin};
use rr_rib::{Rib, RouteFilter};

const A: u32 = 4242420002;

fn with_peer(iface: Option<u32>) -> Rib {
    let mut rib = rib(&["172.20.0.0/27"]);
    rib.add_peer(1, peer("a", A, iface));
    rib.peer_up(1, up_dual());
    rib
}

#[test]
fn next_hop_per_route_kind() {
    let mut rib = with_peer(Some(4));
    rib.import(1, &ann4(attrs(&[A]), "172.20.9.1", &["172.21.0.0/24"]));
    let pair = NextHop::V6Pair(v6("fd00:9::1"), v6("fe80::9"));
    rib.import(1, &ann_mp(attrs(&[A]), pair, &["fd42::/48"]));
    rib.import(1, &ann_mp(attrs(&[A]), pair, &["172.21.1.0/24"]));
    rib.import(
        1,
        &ann_mp(attrs(&[A]), NextHop::V6(v6("fd00:9::1")), &["fd43::/48"]),
    );
    let f = fib(&mut rib);
    assert_eq!(f[&net("172.21.0.0/24")], via(4, "172.20.9.1"));
    // Over a tunnel the link-local of the pair is the gateway (also for RFC 8950 IPv4).
    assert_eq!(f[&net("fd42::/48")], via(4, "fe80::9"));
    assert_eq!(f[&net("172.21.1.0/24")], via(4, "fe80::9"));
    assert_eq!(f[&net("fd43::/48")], via(4, "fd00:9::1"));
    assert_eq!(f.len(), 4);
}

#[test]
fn no_op_changes_are_elided() {
    let mut rib = with_peer(Some(4));
    rib.import(1, &ann4(attrs(&[A]), "172.20.9.1", &["172.21.0.0/24"]));
    rib.import(1, &wd4(&["172.21.0.0/24"]));
    assert!(
        fib(&mut rib).is_empty(),
        "added and removed within one batch"
    );
    rib.import(1, &ann4(attrs(&[A]), "172.20.9.1", &["172.21.0.0/24"]));
    assert_eq!(fib(&mut rib).len(), 1);
    // Other attributes, same next hop: nothing for the FIB.
    rib.import(1, &ann4(attrs(&[A, 5]), "172.20.9.1", &["172.21.0.0/24"]));
    assert!(fib(&mut rib).is_empty());
    // Another next hop and back within one batch: nothing either.
    rib.import(1, &ann4(attrs(&[A]), "172.20.9.2", &["172.21.0.0/24"]));
    rib.import(1, &ann4(attrs(&[A]), "172.20.9.1", &["172.21.0.0/24"]));
    assert!(fib(&mut rib).is_empty());
    // Last wins within a batch.
    rib.import(1, &ann4(attrs(&[A]), "172.20.9.2", &["172.21.0.0/24"]));
    rib.import(1, &ann4(attrs(&[A]), "172.20.9.3", &["172.21.0.0/24"]));
    let f = fib(&mut rib);
    assert_eq!(f.len(), 1);
    assert_eq!(f[&net("172.21.0.0/24")], via(4, "172.20.9.3"));
}

#[test]
fn host_session_next_hops_resolve_through_statics() {
    let mut rib = rib(&[]);
    rib.add_peer(1, peer("host", A, None));
    rib.add_peer(2, peer("tun", 4242420003, Some(2)));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    rib.take_exports(2);
    rib.set_static(vec![
        (
            net("10.0.0.0/8"),
            rr_fib::NextHop {
                iface: 7,
                gateway: Some(ip("10.255.0.1")),
            },
        ),
        (
            net("10.1.0.0/16"),
            rr_fib::NextHop {
                iface: 8,
                gateway: None,
            },
        ),
    ]);
    assert_eq!(fib(&mut rib).len(), 2, "the statics themselves");
    rib.import(1, &ann4(attrs(&[A]), "10.1.2.3", &["172.21.0.0/24"]));
    rib.import(1, &ann4(attrs(&[A]), "10.9.9.9", &["172.21.1.0/24"]));
    rib.import(1, &ann4(attrs(&[A]), "192.0.2.1", &["172.21.2.0/24"]));
    // Link-local only from a host session: nothing to resolve.
    rib.import(1, &ann_mp(attrs(&[A]), ll("fe80::1"), &["fd42::/48"]));
    let f = fib(&mut rib);
    // Longest static match; a static without gateway makes the BGP next hop the gateway.
    assert_eq!(f[&net("172.21.0.0/24")], via(8, "10.1.2.3"));
    assert_eq!(f[&net("172.21.1.0/24")], via(7, "10.255.0.1"));
    assert_eq!(f.len(), 2, "unresolvable ones stay out of the FIB");
    assert_eq!(rib.stats(1).imported, 4);
    // They are in the table, shown without an interface.
    let v = rib.routes(RouteFilter {
        filtered: false,
        prefix: Some(net("172.21.2.0/24")),
        ..RouteFilter::default()
    });
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].iface, v[0].gateway), (None, Some(ip("192.0.2.1"))));
    // Only resolvable routes are exported.
    let e = read(&rib.take_exports(2));
    let got: Vec<String> = e.announced.keys().map(|n| n.to_string()).collect();
    assert_eq!(got, ["172.21.0.0/24", "172.21.1.0/24"]);

    // A static that covers 192.0.2.1 appears: the route resolves, FIB and exports follow.
    rib.set_static(vec![
        (
            net("10.0.0.0/8"),
            rr_fib::NextHop {
                iface: 7,
                gateway: Some(ip("10.255.0.1")),
            },
        ),
        (
            net("192.0.2.0/24"),
            rr_fib::NextHop {
                iface: 9,
                gateway: None,
            },
        ),
    ]);
    let f = fib(&mut rib);
    assert_eq!(f[&net("172.21.2.0/24")], via(9, "192.0.2.1"));
    // 10.1.0.0/16 is gone: 10.1.2.3 now resolves through 10.0.0.0/8.
    assert_eq!(f[&net("172.21.0.0/24")], via(7, "10.255.0.1"));
    assert_eq!(f[&net("10.1.0.0/16")], None);
    assert_eq!(
        f[&net("192.0.2.0/24")],
        Some(rr_fib::NextHop {
            iface: 9,
            gateway: None
        })
    );
    assert!(!f.contains_key(&net("172.21.1.0/24")), "unchanged");
    let e = read(&rib.take_exports(2));
    assert_eq!(
        e.announced.keys().collect::<Vec<_>>(),
        [&net("172.21.2.0/24")]
    );

    // Its static disappears: withdrawn from the FIB and from the peer.
    rib.set_static(vec![(
        net("10.0.0.0/8"),
        rr_fib::NextHop {
            iface: 7,
            gateway: Some(ip("10.255.0.1")),
        },
    )]);
    let f = fib(&mut rib);
    assert_eq!(f[&net("172.21.2.0/24")], None);
    assert_eq!(read(&rib.take_exports(2)).withdrawn, [net("172.21.2.0/24")]);
}

#[test]
fn resolvable_route_beats_unresolvable_one() {
    let mut rib = rib(&[]);
    rib.add_peer(1, peer("host", A, None)); // lower id would win a tie
    rib.add_peer(2, peer("tun", 4242420003, Some(2)));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    rib.import(1, &ann4(attrs(&[A]), "192.0.2.1", &["172.21.0.0/24"]));
    rib.import(
        2,
        &ann4(attrs(&[4242420003, 1, 2]), "10.0.0.2", &["172.21.0.0/24"]),
    );
    assert_eq!(fib(&mut rib)[&net("172.21.0.0/24")], via(2, "10.0.0.2"));
    let v = rib.routes(RouteFilter::default());
    assert_eq!(v[0].peer, Some(2));
}

#[test]
fn show_routes_view() {
    let mut rib = rib(&["172.20.0.0/27"]);
    rib.add_peer(1, peer("alpha", A, Some(1)));
    rib.add_peer(2, peer("beta", 4242420003, Some(2)));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    let mut a = attrs(&[A, 4242420099]);
    a.origin = Origin::Incomplete;
    a.med = Some(7);
    a.communities = vec![(64511 << 16) | 3, (64511 << 16) | 24];
    a.large_communities = vec![[4242420000, 1, 2]];
    rib.import(1, &ann4(a, "10.0.0.1", &["172.21.0.0/16"]));
    rib.import(
        2,
        &ann4(attrs(&[4242420003]), "10.0.0.2", &["172.21.5.0/24"]),
    );
    rib.import(
        2,
        &ann4(
            attrs(&[4242420003, 1, 2, 3]),
            "10.0.0.2",
            &["172.21.0.0/16"],
        ),
    );
    rib.import(
        2,
        &ann4(attrs(&[4242420003, LOCAL]), "10.0.0.2", &["172.21.7.0/24"]),
    );

    let best = rib.routes(RouteFilter::default());
    let nets: Vec<String> = best.iter().map(|r| r.prefix.to_string()).collect();
    assert_eq!(nets, ["172.20.0.0/27", "172.21.0.0/16", "172.21.5.0/24"]);
    let r = &best[1];
    assert_eq!(r.source, "bgp alpha");
    assert_eq!(
        (r.peer, r.iface, r.gateway),
        (Some(1), Some(1), Some(ip("10.0.0.1")))
    );
    assert_eq!(r.as_path, "4242420002 4242420099");
    assert_eq!(r.origin, "incomplete");
    assert_eq!((r.med, r.local_pref), (Some(7), 100));
    assert_eq!(r.communities, ["(64511,3)", "(64511,24)"]);
    assert_eq!(r.large_communities, ["(4242420000,1,2)"]);
    assert!(r.best && !r.filtered);
    assert_eq!(best[0].source, "announce");
    assert_eq!(best[0].origin, "IGP");

    // `all`: the losing route and the filtered one too, best first.
    let all = rib.routes(RouteFilter {
        filtered: false,
        all: true,
        ..RouteFilter::default()
    });
    assert_eq!(all.len(), 5);
    let sixteen: Vec<_> = all
        .iter()
        .filter(|r| r.prefix == net("172.21.0.0/16"))
        .collect();
    assert_eq!(sixteen.len(), 2);
    assert!(sixteen[0].best && !sixteen[1].best);
    assert_eq!(sixteen[1].source, "bgp beta");
    assert!(all
        .iter()
        .any(|r| r.prefix == net("172.21.7.0/24") && r.filtered));

    // for_addr: longest match with a best route; with `all` the filtered one counts.
    let lpm = |addr: &str, all: bool| {
        rib.routes(RouteFilter {
            filtered: false,
            for_addr: Some(ip(addr)),
            all,
            prefix: None,
        })
        .iter()
        .map(|r| r.prefix.to_string())
        .collect::<Vec<_>>()
    };
    assert_eq!(lpm("172.21.5.9", false), ["172.21.5.0/24"]);
    assert_eq!(lpm("172.21.9.9", false), ["172.21.0.0/16"]);
    assert_eq!(lpm("172.21.7.1", false), ["172.21.0.0/16"]);
    assert_eq!(lpm("172.21.7.1", true), ["172.21.7.0/24"]);
    assert!(lpm("192.168.1.1", false).is_empty());
    assert!(lpm("fd00::1", false).is_empty());

    // prefix: exact match only, host bits ignored.
    let p = rib.routes(RouteFilter {
        filtered: false,
        prefix: Some(net("172.21.5.77/24")),
        ..RouteFilter::default()
    });
    assert_eq!(p.len(), 1);
    assert!(rib
        .routes(RouteFilter {
            filtered: false,
            prefix: Some(net("172.21.6.0/24")),
            ..RouteFilter::default()
        })
        .is_empty());
    assert_eq!(rib.best_count(), (3, 0));
}

#[test]
fn set_static_touches_only_what_differs() {
    let mut rib = rib(&[]);
    let nh = |iface| rr_fib::NextHop {
        iface,
        gateway: None,
    };
    let a = (net("10.1.0.0/16"), nh(1));
    let b = (net("10.2.0.0/16"), nh(2));
    rib.set_static(vec![a, b]);
    assert_eq!(fib(&mut rib).len(), 2);
    rib.set_static(vec![b, a]);
    assert!(fib(&mut rib).is_empty());
    // One next hop changes, one static goes, one comes; a duplicate keeps the last.
    let c = (net("10.3.0.0/16"), nh(3));
    rib.set_static(vec![
        (net("10.1.0.0/16"), nh(9)),
        c,
        (net("10.1.0.0/16"), nh(5)),
    ]);
    let f = fib(&mut rib);
    assert_eq!(f.len(), 3);
    assert_eq!(f[&net("10.1.0.0/16")], Some(nh(5)));
    assert_eq!(f[&net("10.2.0.0/16")], None);
    assert_eq!(f[&net("10.3.0.0/16")], Some(nh(3)));
    assert_eq!(rib.best_count(), (2, 0));
}
