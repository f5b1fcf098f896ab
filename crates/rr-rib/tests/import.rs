//! Import: the RFC 4271 9.1.2 checks, RFC 7606 treat-as-withdraw, policies, own
//! prefixes, import limits, replacement and withdrawal.

mod common;
use common::*;
use rr_bgp::packet::NextHop;
use rr_rib::{Family, ImportOutcome, LimitAction, Policy, Rib, RouteFilter, Update};

const A: u32 = 4242420002;

fn all_routes(rib: &Rib) -> Vec<rr_rib::RouteView> {
    rib.routes(RouteFilter {
        filtered: false,
        all: true,
        ..RouteFilter::default()
    })
}

fn one_peer(cfg: rr_rib::PeerConfig) -> Rib {
    let mut rib = rib(&["172.20.0.0/27", "fd00:1::/48"]);
    rib.add_peer(1, cfg);
    rib.peer_up(1, up_dual());
    rib
}

#[test]
fn path_with_our_asn_is_a_loop() {
    let mut rib = one_peer(peer("a", A, Some(1)));
    rib.import(
        1,
        &ann4(attrs(&[A, LOCAL, 65001]), "10.0.0.1", &["172.20.1.0/24"]),
    );
    assert_eq!(rib.best_count(), (1, 1), "only our announce prefixes");
    assert!(fib(&mut rib).is_empty());
    let s = rib.stats(1);
    assert_eq!((s.imported, s.filtered), (0, 1));
    let v = all_routes(&rib);
    let r = v.iter().find(|r| r.prefix == net("172.20.1.0/24")).unwrap();
    assert!(r.filtered && !r.best);
    assert_eq!(r.as_path, format!("{A} {LOCAL} 65001"));
    // `show route` without `all` does not list it.
    assert!(rib
        .routes(RouteFilter::default())
        .iter()
        .all(|r| r.prefix != net("172.20.1.0/24")));
}

#[test]
fn empty_as_path_is_invalid_on_ebgp_only() {
    let mut rib = one_peer(peer("a", A, Some(1)));
    rib.import(1, &ann4(attrs(&[]), "10.0.0.1", &["172.20.1.0/24"]));
    assert_eq!(rib.stats(1).filtered, 1);
    let mut rib = one_peer(peer("i", LOCAL, Some(1)));
    rib.import(1, &ann4(attrs(&[]), "10.0.0.1", &["172.20.1.0/24"]));
    assert_eq!((rib.stats(1).imported, rib.stats(1).filtered), (1, 0));
}

#[test]
fn first_as_is_not_enforced() {
    // BIRD's default: "enforce first as" off; a route server's path is fine.
    let mut rib = one_peer(peer("a", A, Some(1)));
    rib.import(
        1,
        &ann4(attrs(&[65010, 65011]), "10.0.0.1", &["172.20.1.0/24"]),
    );
    assert_eq!(rib.stats(1).imported, 1);
    assert_eq!(fib(&mut rib).len(), 1);
}

#[test]
fn unusable_next_hops_are_filtered() {
    let mut rib = one_peer(peer("a", A, Some(1)));
    // Classic NLRI without NEXT_HOP, and with 0.0.0.0 / multicast.
    let mut no_nh = ann4(attrs(&[A]), "10.0.0.1", &["172.20.1.0/24"]);
    if let Some(a) = no_nh.attrs.as_mut() {
        a.next_hop = None;
    }
    rib.import(1, &no_nh);
    rib.import(1, &ann4(attrs(&[A]), "0.0.0.0", &["172.20.2.0/24"]));
    rib.import(1, &ann4(attrs(&[A]), "224.0.0.5", &["172.20.3.0/24"]));
    // IPv6 NLRI with an IPv4 next hop, or with only ::.
    rib.import(
        1,
        &ann_mp(attrs(&[A]), NextHop::V4(v4("10.0.0.1")), &["fd42::/48"]),
    );
    rib.import(
        1,
        &ann_mp(attrs(&[A]), NextHop::V6(v6("::")), &["fd43::/48"]),
    );
    assert_eq!((rib.stats(1).imported, rib.stats(1).filtered), (0, 5));
    assert!(fib(&mut rib).is_empty());
    // A loopback next hop is what a daemon on the host sends (host sessions).
    rib.import(1, &ann4(attrs(&[A]), "127.0.0.1", &["172.20.4.0/24"]));
    assert_eq!(rib.stats(1).imported, 1);
    assert_eq!(fib(&mut rib).len(), 1);
    // All three link-local encodings BIRD has seen are fine: [::, LL], [LL], [LL, LL].
    rib.import(1, &ann_mp(attrs(&[A]), ll("fe80::a"), &["fd44::/48"]));
    rib.import(
        1,
        &ann_mp(attrs(&[A]), NextHop::V6(v6("fe80::a")), &["fd45::/48"]),
    );
    let pair = NextHop::V6Pair(v6("fe80::a"), v6("fe80::a"));
    rib.import(1, &ann_mp(attrs(&[A]), pair, &["fd46::/48"]));
    // And an IPv4 route with an IPv6 next hop (RFC 8950).
    rib.import(1, &ann_mp(attrs(&[A]), ll("fe80::a"), &["172.20.5.0/24"]));
    assert_eq!(rib.stats(1).imported, 5);
    let f = fib(&mut rib);
    assert_eq!(f.len(), 4);
    assert!(f.values().all(|nh| *nh == via(1, "fe80::a")));
}

#[test]
fn dn42_import_policy() {
    let mut cfg = peer("a", A, Some(1));
    cfg.import = Policy::Dn42;
    let mut rib = one_peer(cfg);
    let a = attrs(&[A]);
    rib.import(
        1,
        &ann4(
            a.clone(),
            "10.0.0.1",
            &[
                "172.20.0.128/28", // anycast range, /28 ok
                "172.22.166.0/24", // denied by rule 0001
                "10.0.0.0/25",     // 10/8 only up to /24
                "10.0.0.0/24",     // ok
                "192.168.1.0/24",  // not DN42
            ],
        ),
    );
    rib.import(1, &ann_mp(a.clone(), ll("fe80::a"), &["fd42:1::/48"]));
    rib.import(1, &ann_mp(a, ll("fe80::a"), &["fd42:2::/65"]));
    let s = rib.stats(1);
    assert_eq!((s.imported_v4, s.imported_v6, s.filtered), (2, 1, 4));
    let f = fib(&mut rib);
    let installed: Vec<_> = f.keys().map(|n| n.to_string()).collect();
    assert_eq!(installed, ["10.0.0.0/24", "172.20.0.128/28", "fd42:1::/48"]);
}

#[test]
fn own_prefixes_are_never_imported() {
    for policy in [Policy::All, Policy::Dn42] {
        let mut cfg = peer("a", A, Some(1));
        cfg.import = policy;
        let mut rib = one_peer(cfg);
        rib.import(
            1,
            &ann4(
                attrs(&[A]),
                "10.0.0.1",
                &["172.20.0.0/27", "172.20.0.16/28", "172.20.0.0/26"],
            ),
        );
        rib.import(
            1,
            &ann_mp(
                attrs(&[A]),
                ll("fe80::a"),
                &["fd00:1::/48", "fd00:1:0:5::/64"],
            ),
        );
        // Only the covering /26 is someone else's (and a valid DN42 network).
        let s = rib.stats(1);
        assert_eq!((s.imported, s.filtered), (1, 4), "{policy:?}");
        let f = fib(&mut rib);
        assert_eq!(f.keys().collect::<Vec<_>>(), [&net("172.20.0.0/26")]);
        let v = rib.routes(RouteFilter {
            filtered: false,
            prefix: Some(net("172.20.0.0/27")),
            all: true,
            ..RouteFilter::default()
        });
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].source.as_str(), v[0].best), ("announce", true));
        assert!(v[1].filtered);
    }
}

#[test]
fn policy_none_imports_nothing() {
    let mut cfg = peer("a", A, Some(1));
    cfg.import = Policy::None;
    let mut rib = one_peer(cfg);
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.20.1.0/24"]));
    assert_eq!((rib.stats(1).imported, rib.stats(1).filtered), (0, 1));
    assert!(fib(&mut rib).is_empty());
}

fn limited(action: LimitAction) -> Rib {
    let mut cfg = peer("a", A, Some(1));
    cfg.import_limit = Some(2);
    cfg.limit_action = action;
    one_peer(cfg)
}

fn nets(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("172.20.{i}.0/24")).collect()
}

fn announce_n(rib: &mut Rib, range: std::ops::Range<usize>) -> Vec<ImportOutcome> {
    let all = nets(range.end);
    all[range]
        .iter()
        .map(|n| rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &[n.as_str()])))
        .collect()
}

#[test]
fn import_limit_warn_accepts_and_reports_once() {
    let mut rib = limited(LimitAction::Warn);
    let out = announce_n(&mut rib, 0..4);
    let hit = ImportOutcome::LimitReached {
        family: Family::Ipv4Unicast,
        action: LimitAction::Warn,
    };
    assert_eq!(
        out,
        [ImportOutcome::Ok, ImportOutcome::Ok, hit, ImportOutcome::Ok]
    );
    assert_eq!(rib.stats(1).imported, 4);
    // The limit is per family: IPv6 starts from zero.
    let r = rib.import(1, &ann_mp(attrs(&[A]), ll("fe80::a"), &["fd42::/48"]));
    assert_eq!(r, ImportOutcome::Ok);
}

#[test]
fn import_limit_block_keeps_new_routes_out() {
    let mut rib = limited(LimitAction::Block);
    let out = announce_n(&mut rib, 0..4);
    assert!(out.iter().all(|o| *o == ImportOutcome::Ok));
    let s = rib.stats(1);
    assert_eq!((s.imported, s.filtered), (2, 2));
    assert_eq!(fib(&mut rib).len(), 2);
    // Replacing an accepted route is not a new route: allowed at the limit.
    rib.import(1, &ann4(attrs(&[A, 1]), "10.0.0.2", &["172.20.1.0/24"]));
    assert_eq!(
        fib(&mut rib).get(&net("172.20.1.0/24")),
        Some(&via(1, "10.0.0.2"))
    );
    assert_eq!(rib.stats(1).imported, 2);
}

#[test]
fn import_limit_restart_and_disable_ask_the_caller() {
    for action in [LimitAction::Restart, LimitAction::Disable] {
        let mut rib = limited(action);
        let out = announce_n(&mut rib, 0..3);
        assert_eq!(
            out[2],
            ImportOutcome::LimitReached {
                family: Family::Ipv4Unicast,
                action
            }
        );
        assert_eq!(rib.stats(1).imported, 2);
        assert_eq!(fib(&mut rib).len(), 2);
        // The node stops the session.
        rib.peer_down(1);
        assert_eq!(fib(&mut rib).values().filter(|v| v.is_none()).count(), 2);
        assert_eq!(rib.stats(1).imported, 0);
    }
}

#[test]
fn treat_as_withdraw_removes_instead_of_adding() {
    let mut rib = one_peer(peer("a", A, Some(1)));
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.20.1.0/24"]));
    rib.import(1, &ann_mp(attrs(&[A]), ll("fe80::a"), &["fd42::/48"]));
    assert_eq!(fib(&mut rib).len(), 2);
    let mut bad = ann4(attrs(&[A]), "10.0.0.1", &["172.20.1.0/24", "172.20.2.0/24"]);
    bad.treat_as_withdraw = Some("malformed COMMUNITIES".into());
    rib.import(1, &bad);
    let mut bad6 = ann_mp(attrs(&[A]), ll("fe80::a"), &["fd42::/48"]);
    bad6.treat_as_withdraw = Some("malformed AS_PATH".into());
    rib.import(1, &bad6);
    let f = fib(&mut rib);
    assert_eq!(f.get(&net("172.20.1.0/24")), Some(&None));
    assert_eq!(f.get(&net("fd42::/48")), Some(&None));
    assert_eq!(f.len(), 2, "172.20.2.0/24 never existed");
    assert_eq!(rib.best_count(), (1, 1));
    assert_eq!(rib.stats(1).withdrawals_received, 3);
}

#[test]
fn reannounce_replaces_and_same_attributes_change_nothing() {
    let mut rib = one_peer(peer("a", A, Some(1)));
    rib.add_peer(2, peer("b", 4242420003, Some(2)));
    rib.peer_up(2, up_dual());
    rib.take_exports(1);
    rib.take_exports(2);
    assert!(!rib.has_exports());
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.20.1.0/24"]));
    assert_eq!(fib(&mut rib).len(), 1);
    assert_eq!(read(&rib.take_exports(2)).announced.len(), 1);
    // Same attributes again: no FIB change, nothing to export.
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.1", &["172.20.1.0/24"]));
    assert!(fib(&mut rib).is_empty());
    assert!(!rib.has_exports());
    assert!(rib.take_exports(2).is_empty());
    // New attributes, same next hop: the export changes, the FIB does not.
    let mut c = attrs(&[A]);
    c.communities = vec![(64511 << 16) | 3];
    rib.import(1, &ann4(c, "10.0.0.1", &["172.20.1.0/24"]));
    assert!(fib(&mut rib).is_empty());
    let e = read(&rib.take_exports(2));
    assert_eq!(
        e.announced[&net("172.20.1.0/24")].0.communities,
        vec![(64511 << 16) | 3]
    );
    // New next hop: FIB changes; one route per peer and prefix still.
    rib.import(1, &ann4(attrs(&[A]), "10.0.0.7", &["172.20.1.0/24"]));
    assert_eq!(
        fib(&mut rib).get(&net("172.20.1.0/24")),
        Some(&via(1, "10.0.0.7"))
    );
    assert_eq!(all_routes(&rib).len(), 3);
    assert_eq!(rib.stats(1).imported, 1);
}

#[test]
fn withdraw_of_unknown_prefix_is_harmless() {
    let mut rib = one_peer(peer("a", A, Some(1)));
    rib.add_peer(2, peer("b", 4242420003, Some(2)));
    rib.peer_up(2, up_dual());
    rib.take_exports(2);
    rib.import(1, &wd4(&["172.20.9.0/24"]));
    rib.import(1, &wd6(&["fd42::/48"]));
    // Someone else's route is not withdrawn by this peer either.
    rib.import(
        2,
        &ann4(attrs(&[4242420003]), "10.0.0.2", &["172.20.1.0/24"]),
    );
    fib(&mut rib);
    rib.import(1, &wd4(&["172.20.1.0/24"]));
    assert!(fib(&mut rib).is_empty());
    assert_eq!(rib.best_count(), (2, 1));
    assert!(rib.take_exports(2).is_empty());
    assert_eq!(
        rib.table_size().0,
        3,
        "no slot left behind for unknown prefixes"
    );
}

#[test]
fn updates_from_down_or_unknown_peers_are_ignored() {
    let mut rib = rib(&[]);
    rib.add_peer(1, peer("a", A, Some(1)));
    let u = ann4(attrs(&[A]), "10.0.0.1", &["172.20.1.0/24"]);
    assert_eq!(rib.import(1, &u), ImportOutcome::Ok);
    assert_eq!(rib.import(99, &u), ImportOutcome::Ok);
    assert_eq!(rib.best_count(), (0, 0));
    assert_eq!(rib.stats(1).updates_received, 0);
    // End-of-RIB from an up peer: nothing happens.
    rib.peer_up(1, up_dual());
    rib.import(1, &Update::end_of_rib(Family::Ipv4Unicast));
    rib.import(1, &Update::end_of_rib(Family::Ipv6Unicast));
    assert_eq!(rib.best_count(), (0, 0));
    assert_eq!(rib.stats(1).updates_received, 2);
}

#[test]
fn host_bits_are_ignored() {
    let mut rib = one_peer(peer("a", A, Some(1)));
    let mut u = ann4(attrs(&[A]), "10.0.0.1", &[]);
    u.nlri = vec![ipnet::Ipv4Net::new(v4("172.20.1.77"), 24).unwrap()];
    rib.import(1, &u);
    assert_eq!(
        fib(&mut rib).keys().collect::<Vec<_>>(),
        [&net("172.20.1.0/24")]
    );
    let mut w = wd4(&[]);
    w.withdrawn = vec![ipnet::Ipv4Net::new(v4("172.20.1.1"), 24).unwrap()];
    rib.import(1, &w);
    assert_eq!(fib(&mut rib).get(&net("172.20.1.0/24")), Some(&None));
}
