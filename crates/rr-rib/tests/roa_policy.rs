//! Issue 5 in the table: filter reasons and their counts, ROA origin validation (RFC
//! 6811) and re-evaluation when the ROAs change, DN42 link communities, import and
//! export policies, re-evaluation of a peer with a new config.

mod common;

use common::*;
use ipnet::IpNet;
use rr_bgp::packet::{AsSegment, Attributes};
use rr_policy::dn42::{community, Link};
use rr_policy::{Action, Match, Rule, Verdict};
use rr_rib::{
    dn42, FilterReason, Policy, Rib, RibConfig, RoaRules, RoaSet, RouteFilter, RouteView, Validity,
};
use rr_roa::Roa;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const X: u32 = 4242420049;
const Y: u32 = 4242420050;
const Z: u32 = 4242420051;
const A: u32 = 4242420002;
const B: u32 = 4242420003;

fn roas(list: &[(&str, u8, u32)]) -> RoaSet {
    list.iter()
        .map(|&(p, max, asn)| Roa::new(net(p), max, asn).unwrap())
        .collect()
}

fn rib_with(announce: &[&str], roa: Option<RoaRules>, communities: Vec<u32>) -> Rib {
    Rib::new(RibConfig {
        local_asn: LOCAL,
        router_id: v4("172.20.0.1"),
        announce: announce.iter().map(|s| net(s)).collect(),
        announce_communities: communities,
        roa,
    })
}

const REJECT_BOTH: Option<RoaRules> = Some(RoaRules {
    reject_invalid: true,
    reject_unknown: true,
});

/// Peer `id`'s route for `prefix`, as `show routes all` shows it.
fn view(rib: &Rib, prefix: &str, id: u32) -> RouteView {
    rib.routes(RouteFilter {
        prefix: Some(net(prefix)),
        all: true,
        ..RouteFilter::default()
    })
    .into_iter()
    .find(|v| v.peer == Some(id))
    .unwrap_or_else(|| panic!("no route for {prefix} from {id}"))
}

fn path_attrs(path: &[u32], communities: &[u32]) -> Attributes {
    Attributes {
        communities: communities.to_vec(),
        ..attrs(path)
    }
}

fn prefixes(list: &[&str]) -> Match {
    Match::Prefix(list.iter().map(|p| p.parse().unwrap()).collect())
}

fn policy(rules: Vec<Rule>) -> Option<Arc<rr_policy::Policy>> {
    Some(Arc::new(rr_policy::Policy {
        name: "test".into(),
        rules,
        default: Verdict::Accept,
    }))
}

fn dn42_peer(name: &str, asn: u32, iface: u32) -> rr_rib::PeerConfig {
    let mut p = peer(name, asn, Some(iface));
    p.import = Policy::Dn42;
    p.export = Policy::Dn42;
    p
}

fn comms(v: &RouteView) -> BTreeSet<String> {
    v.communities.iter().cloned().collect()
}

fn fmt_comm(c: u32) -> String {
    format!("({},{})", c >> 16, c & 0xffff)
}

#[test]
fn every_filter_reason_is_produced_counted_and_shown() {
    let mut rib = rib_with(&["172.20.1.0/24"], REJECT_BOTH, Vec::new());
    rib.set_roas(roas(&[
        ("172.20.4.0/22", 24, X),
        ("172.20.8.0/22", 24, X),
        ("172.20.12.0/22", 24, X),
    ]));
    let mut a = dn42_peer("a", A, 1);
    a.import_limit = Some(2);
    a.import_policy[0] = policy(vec![Rule {
        matches: vec![prefixes(&["172.20.5.0/24"])],
        actions: vec![],
        verdict: Some(Verdict::Reject),
    }]);
    rib.add_peer(1, a);
    let mut b = dn42_peer("b", B, 2);
    b.import = Policy::None;
    rib.add_peer(2, b);
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());

    let nh = "172.20.0.2";
    rib.import(
        1,
        &ann4(
            attrs(&[A, X]),
            nh,
            &[
                "172.20.4.0/24",
                "172.20.5.0/24",
                "172.20.6.0/24",
                "172.20.1.0/25",
                "8.8.8.0/24",
                "172.20.50.0/24",
            ],
        ),
    );
    rib.import(1, &ann4(attrs(&[A]), nh, &["172.20.9.0/24"]));
    rib.import(1, &ann4(attrs(&[A, LOCAL, X]), nh, &["172.20.12.0/24"]));
    rib.import(1, &ann4(attrs(&[]), nh, &["172.20.13.0/24"]));
    rib.import(1, &ann4(attrs(&[A, X]), "0.0.0.0", &["172.20.14.0/24"]));
    let outcome = rib.import(1, &ann4(attrs(&[A, X]), nh, &["172.20.7.0/24"]));
    assert_eq!(outcome, rr_rib::ImportOutcome::Ok, "block: nothing to do");
    rib.import(2, &ann4(attrs(&[B, X]), nh, &["172.20.4.0/24"]));

    let want: BTreeMap<IpNet, (u32, FilterReason)> = [
        ("172.20.4.0/24", 2, FilterReason::ImportNone),
        ("172.20.12.0/24", 1, FilterReason::AsLoop),
        ("172.20.13.0/24", 1, FilterReason::EmptyAsPath),
        ("172.20.14.0/24", 1, FilterReason::BadNextHop),
        ("172.20.1.0/25", 1, FilterReason::OwnPrefix),
        ("8.8.8.0/24", 1, FilterReason::NotDn42),
        ("172.20.9.0/24", 1, FilterReason::RoaInvalid),
        ("172.20.50.0/24", 1, FilterReason::RoaUnknown),
        ("172.20.5.0/24", 1, FilterReason::Policy),
        ("172.20.7.0/24", 1, FilterReason::ImportLimit),
    ]
    .into_iter()
    .map(|(p, id, r)| (net(p), (id, r)))
    .collect();
    // Every reason once.
    let reasons: BTreeSet<&str> = want.values().map(|(_, r)| r.as_str()).collect();
    assert_eq!(reasons.len(), FilterReason::ALL.len());

    let filtered = rib.routes(RouteFilter {
        filtered: true,
        ..RouteFilter::default()
    });
    let got: BTreeMap<IpNet, (u32, FilterReason)> = filtered
        .iter()
        .map(|v| {
            assert!(v.filtered && !v.best);
            (v.prefix, (v.peer.unwrap(), v.reason.unwrap()))
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(filtered.len(), want.len(), "only filtered routes");

    let (sa, sb) = (rib.stats(1), rib.stats(2));
    assert_eq!((sa.imported, sa.filtered), (2, 9));
    assert_eq!((sb.imported, sb.filtered), (0, 1));
    for r in FilterReason::ALL {
        let expect_a = u64::from(r != FilterReason::ImportNone);
        let expect_b = u64::from(r == FilterReason::ImportNone);
        assert_eq!(sa.filtered_by[r.index()], expect_a, "{}", r.as_str());
        assert_eq!(sb.filtered_by[r.index()], expect_b, "{}", r.as_str());
    }

    // Accepted routes: ROA valid, not filtered; shown without `filtered`.
    let best = rib.routes(RouteFilter::default());
    let best: Vec<(IpNet, Option<Validity>)> = best
        .iter()
        .filter(|v| v.peer.is_some())
        .map(|v| (v.prefix, v.roa))
        .collect();
    assert_eq!(
        best,
        vec![
            (net("172.20.4.0/24"), Some(Validity::Valid)),
            (net("172.20.6.0/24"), Some(Validity::Valid)),
        ]
    );
    let own = view_own(&rib, "172.20.1.0/24");
    assert_eq!((own.roa, own.reason), (None, None));

    // Withdrawals take the counts down again.
    rib.import(
        1,
        &wd4(&["172.20.9.0/24", "172.20.5.0/24", "172.20.6.0/24"]),
    );
    let sa = rib.stats(1);
    assert_eq!((sa.imported, sa.filtered), (1, 7));
    assert_eq!(sa.filtered_by[FilterReason::RoaInvalid.index()], 0);
    assert_eq!(sa.filtered_by[FilterReason::Policy.index()], 0);
    rib.peer_down(1);
    assert_eq!(rib.stats(1).filtered_by, [0; 10]);
}

fn view_own(rib: &Rib, prefix: &str) -> RouteView {
    rib.routes(RouteFilter {
        prefix: Some(net(prefix)),
        ..RouteFilter::default()
    })
    .remove(0)
}

/// RFC 6811 section 2 states through the table: several ROAs per prefix, max length,
/// AS0 (RFC 7607), AS_SET origins, the empty path of iBGP (our own AS), IPv6.
#[test]
fn roa_states_valid_invalid_unknown_too_long() {
    // No [roa]: states shown, nothing rejected for them.
    let mut rib = rib_with(&[], None, Vec::new());
    rib.set_roas(roas(&[
        ("172.20.0.0/16", 24, X),
        ("172.20.0.0/16", 28, Y),
        ("172.22.0.0/24", 24, 0),
        ("172.21.9.0/24", 24, LOCAL),
        ("fd00:1::/32", 48, X),
    ]));
    assert_eq!(rib.roas().len(), 5);
    rib.add_peer(1, peer("a", A, Some(1)));
    rib.add_peer(2, peer("i", LOCAL, Some(2)));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    let nh = "172.20.0.2";
    let cases: &[(&str, &[u32], Validity)] = &[
        ("172.20.1.0/24", &[A, X], Validity::Valid),
        ("172.20.1.0/26", &[A, X], Validity::Invalid), // too long for X
        ("172.20.2.0/26", &[A, Y], Validity::Valid),   // Y's ROA allows /28
        ("172.20.2.0/29", &[A, Y], Validity::Invalid), // too long for Y
        ("172.20.3.0/24", &[A, Z], Validity::Invalid), // wrong origin
        ("172.22.0.0/24", &[A, X], Validity::Invalid), // AS0 only
        ("172.23.0.0/24", &[A, X], Validity::NotFound),
        ("172.20.0.0/15", &[A, X], Validity::NotFound), // less specific than the ROAs
    ];
    for (p, path, _) in cases {
        rib.import(1, &ann4(attrs(path), nh, &[p]));
    }
    let mut set = attrs(&[A]);
    set.as_path.segments.push(AsSegment::Set(vec![X, Y]));
    rib.import(1, &ann4(set, nh, &["172.20.4.0/24"]));
    rib.import(
        1,
        &ann_mp(
            attrs(&[A, X]),
            ll("fe80::2"),
            &["fd00:1:2::/48", "fd00:1:3::/56"],
        ),
    );
    rib.import(2, &ann4(attrs(&[]), nh, &["172.21.9.0/24"]));
    for (p, _, want) in cases {
        let v = view(&rib, p, 1);
        assert_eq!(v.roa, Some(*want), "{p}");
        assert!(!v.filtered && v.best, "{p}");
    }
    // RFC 6811: an AS_SET origin is NONE, invalid when covered.
    assert_eq!(view(&rib, "172.20.4.0/24", 1).roa, Some(Validity::Invalid));
    assert_eq!(view(&rib, "fd00:1:2::/48", 1).roa, Some(Validity::Valid));
    assert_eq!(view(&rib, "fd00:1:3::/56", 1).roa, Some(Validity::Invalid));
    // An empty path (from inside our AS) is originated by our AS.
    assert_eq!(view(&rib, "172.21.9.0/24", 2).roa, Some(Validity::Valid));
    assert_eq!(rib.stats(1).filtered, 0);
}

#[test]
fn reject_unknown_off_and_roa_only_for_dn42_imports() {
    let rules = Some(RoaRules {
        reject_invalid: true,
        reject_unknown: false,
    });
    let mut rib = rib_with(&[], rules, Vec::new());
    rib.set_roas(roas(&[("172.20.0.0/16", 24, X)]));
    rib.add_peer(1, dn42_peer("a", A, 1));
    rib.add_peer(2, peer("all", B, Some(2)));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    let nets = ["172.20.1.0/24", "172.21.1.0/24"];
    rib.import(1, &ann4(attrs(&[A, Z]), "172.20.0.2", &nets));
    rib.import(2, &ann4(attrs(&[B, Z]), "172.20.0.3", &nets));
    let v = view(&rib, "172.20.1.0/24", 1);
    assert_eq!(
        (v.roa, v.reason),
        (Some(Validity::Invalid), Some(FilterReason::RoaInvalid))
    );
    let v = view(&rib, "172.21.1.0/24", 1);
    assert_eq!((v.roa, v.filtered), (Some(Validity::NotFound), false));
    // Import `all`: validity shown, not acted on.
    let v = view(&rib, "172.20.1.0/24", 2);
    assert_eq!((v.roa, v.filtered), (Some(Validity::Invalid), false));
    assert_eq!((rib.stats(1).imported, rib.stats(1).filtered), (1, 1));
    assert_eq!((rib.stats(2).imported, rib.stats(2).filtered), (2, 0));
}

/// iBGP routes are not rejected for their ROA state (they were validated where they
/// entered the AS), even with import `dn42`; their state is still shown.
#[test]
fn roa_rejection_is_for_ebgp_only() {
    let mut rib = rib_with(&[], REJECT_BOTH, Vec::new());
    rib.set_roas(roas(&[("172.20.0.0/16", 24, X)]));
    rib.add_peer(1, dn42_peer("ebgp", A, 1));
    rib.add_peer(2, dn42_peer("ibgp", LOCAL, 2));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    // Invalid (origin Z, and the /28 is past max length 24) and unknown.
    let nets = ["172.20.1.0/28", "172.21.1.0/24"];
    rib.import(1, &ann4(attrs(&[A, Z]), "172.20.0.2", &nets));
    rib.import(2, &ann4(attrs(&[Z]), "172.20.0.3", &nets));
    let e = view(&rib, "172.20.1.0/28", 1);
    let i = view(&rib, "172.20.1.0/28", 2);
    assert_eq!(e.reason, Some(FilterReason::RoaInvalid));
    assert_eq!((i.roa, i.filtered), (Some(Validity::Invalid), false));
    let e = view(&rib, "172.21.1.0/24", 1);
    let i = view(&rib, "172.21.1.0/24", 2);
    assert_eq!(e.reason, Some(FilterReason::RoaUnknown));
    assert_eq!((i.roa, i.filtered), (Some(Validity::NotFound), false));
    assert_eq!((rib.stats(2).imported, rib.stats(2).filtered), (2, 0));
}

/// The ROA set changes under established sessions: invalid -> valid and valid ->
/// unknown, with the FIB, the exports and the counters following, nothing else.
#[test]
fn set_roas_flips_verdicts_with_fib_and_exports() {
    let mut rib = rib_with(&[], REJECT_BOTH, Vec::new());
    rib.set_roas(roas(&[("172.20.4.0/22", 24, X), ("172.20.8.0/22", 24, X)]));
    rib.add_peer(1, dn42_peer("a", A, 1));
    rib.add_peer(2, dn42_peer("b", B, 2));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    rib.import(1, &ann4(attrs(&[A, X]), "172.20.0.2", &["172.20.4.0/24"]));
    rib.import(1, &ann4(attrs(&[A]), "172.20.0.2", &["172.20.9.0/24"]));
    rib.import(1, &ann4(attrs(&[A]), "172.20.0.2", &["172.20.60.0/24"]));
    assert_eq!(
        fib(&mut rib),
        BTreeMap::from([(net("172.20.4.0/24"), via(1, "172.20.0.2"))])
    );
    let e = read(&rib.take_exports(2));
    assert_eq!(
        e.announced.keys().copied().collect::<Vec<_>>(),
        vec![net("172.20.4.0/24")]
    );
    let _ = rib.take_exports(1);
    let before = rib.stats(1);
    assert_eq!((before.imported, before.filtered), (1, 2));

    // 172.20.9.0/24 now allowed for A; 172.20.4.0/22's ROA gone (-> unknown).
    let change = rib.set_roas(roas(&[("172.20.8.0/22", 24, X), ("172.20.9.0/24", 24, A)]));
    assert_eq!(
        change,
        rr_rib::RoaChange {
            roas_added: 1,
            roas_removed: 1,
            routes_checked: 2,
            validity_changed: 2,
            verdict_changed: 2,
        }
    );
    assert_eq!(
        fib(&mut rib),
        BTreeMap::from([
            (net("172.20.4.0/24"), None),
            (net("172.20.9.0/24"), via(1, "172.20.0.2")),
        ])
    );
    let e = read(&rib.take_exports(2));
    assert_eq!(
        e.announced.keys().copied().collect::<Vec<_>>(),
        vec![net("172.20.9.0/24")]
    );
    assert_eq!(e.withdrawn, vec![net("172.20.4.0/24")]);
    assert!(e.eor.is_empty(), "no session was reset");
    assert!(
        rib.take_exports(1).is_empty(),
        "split horizon: nothing for A"
    );
    let after = rib.stats(1);
    assert_eq!((after.imported, after.filtered), (1, 2));
    assert_eq!(after.filtered_by[FilterReason::RoaUnknown.index()], 2);
    assert_eq!(after.filtered_by[FilterReason::RoaInvalid.index()], 0);
    assert_eq!(after.updates_received, before.updates_received);
    assert_eq!(
        view(&rib, "172.20.4.0/24", 1).reason,
        Some(FilterReason::RoaUnknown)
    );
    // The same set again: nothing to do.
    let same = rib.set_roas(roas(&[("172.20.8.0/22", 24, X), ("172.20.9.0/24", 24, A)]));
    assert_eq!(same, rr_rib::RoaChange::default());
    assert!(fib(&mut rib).is_empty() && !rib.has_exports());
}

#[test]
fn link_communities_on_import_and_export() {
    let announce_comms = vec![community(41), community(1276)];
    let mut rib = rib_with(&["172.20.1.0/24"], None, announce_comms);
    let mut a = dn42_peer("a", A, 1);
    a.link = Some(Link {
        latency: Some(3),
        bandwidth: Some(24),
        crypto: Some(34),
    });
    let mut b = dn42_peer("b", B, 2);
    b.link = Some(Link {
        latency: Some(5),
        bandwidth: Some(21),
        crypto: Some(34),
    });
    rib.add_peer(1, a);
    rib.add_peer(2, b);
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    let other = (65000 << 16) | 7;
    let mut at = path_attrs(
        &[A, X],
        &[community(1), community(25), community(33), other],
    );
    at.large_communities = vec![[A, 1, 2]];
    rib.import(1, &ann4(at, "172.20.0.2", &["172.20.9.0/24"]));
    // Import over A's tunnel: latency max(1, 3), bandwidth min(25, 24), crypto
    // min(33, 34).
    let v = view(&rib, "172.20.9.0/24", 1);
    let want: BTreeSet<String> = [community(3), community(24), community(33), other]
        .into_iter()
        .map(fmt_comm)
        .collect();
    assert_eq!(comms(&v), want);
    assert_eq!(v.large_communities, vec![format!("({A},1,2)")]);

    // Export over B's tunnel: latency max(3, 5), bandwidth min(24, 21), crypto 33.
    let e = read(&rib.take_exports(2));
    let (sent, _) = &e.announced[&net("172.20.9.0/24")];
    let got: BTreeSet<u32> = sent.communities.iter().copied().collect();
    assert_eq!(
        got,
        BTreeSet::from([community(5), community(21), community(33), other])
    );
    assert_eq!(sent.large_communities, vec![[A, 1, 2]], "untouched");
    // Our own prefix: region and country, plus B's link.
    let (own, _) = &e.announced[&net("172.20.1.0/24")];
    let got: BTreeSet<u32> = own.communities.iter().copied().collect();
    assert_eq!(
        got,
        BTreeSet::from([
            community(41),
            community(1276),
            community(5),
            community(21),
            community(34)
        ])
    );
    // To A: its own link on our prefix (its route is not sent back).
    let e = read(&rib.take_exports(1));
    let (own, _) = &e.announced[&net("172.20.1.0/24")];
    let got: BTreeSet<u32> = own.communities.iter().copied().collect();
    assert_eq!(
        got,
        BTreeSet::from([
            community(41),
            community(1276),
            community(3),
            community(24),
            community(34)
        ])
    );
    assert!(!e.announced.contains_key(&net("172.20.9.0/24")));
}

/// An import policy's LOCAL_PREF decides the selection; a new import policy takes
/// effect through `reevaluate_peer` without a session reset.
#[test]
fn import_policy_local_pref_changes_selection() {
    let mut rib = rib_with(&[], None, Vec::new());
    rib.add_peer(1, peer("a", A, Some(1)));
    rib.add_peer(2, peer("b", B, Some(2)));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    let nets = ["172.20.9.0/24", "172.20.10.0/24"];
    rib.import(1, &ann4(attrs(&[A, X]), "172.20.0.2", &nets));
    rib.import(2, &ann4(attrs(&[B, Y, X]), "172.20.0.3", &nets));
    assert_eq!(
        fib(&mut rib),
        BTreeMap::from([
            (net("172.20.9.0/24"), via(1, "172.20.0.2")),
            (net("172.20.10.0/24"), via(1, "172.20.0.2")),
        ])
    );
    let mut b = peer("b", B, Some(2));
    b.import_policy[0] = policy(vec![Rule {
        matches: vec![prefixes(&["172.20.9.0/24"])],
        actions: vec![Action::LocalPref(200)],
        verdict: None,
    }]);
    assert_eq!(rib.reevaluate_peer(2, b), rr_rib::ImportOutcome::Ok);
    assert_eq!(
        fib(&mut rib),
        BTreeMap::from([(net("172.20.9.0/24"), via(2, "172.20.0.3"))])
    );
    let v = view(&rib, "172.20.9.0/24", 2);
    assert!(v.best);
    assert_eq!(v.local_pref, 200);
    assert_eq!(view(&rib, "172.20.10.0/24", 2).local_pref, 100);
    // New announcements from B go through the new policy too.
    rib.import(
        2,
        &ann4(attrs(&[B, Y, X]), "172.20.0.3", &["172.20.9.0/24"]),
    );
    assert_eq!(view(&rib, "172.20.9.0/24", 2).local_pref, 200);
    assert!(fib(&mut rib).is_empty());
    assert_eq!(rib.stats(2).updates_received, 2);
}

#[test]
fn export_policy_prepends_tags_rejects_and_withdraws() {
    let mut rib = rib_with(&[], None, Vec::new());
    rib.add_peer(1, peer("a", A, Some(1)));
    let mut b = peer("b", B, Some(2));
    b.export_policy[0] = policy(vec![
        Rule {
            matches: vec![prefixes(&["172.20.9.0/24"])],
            actions: vec![
                Action::Prepend {
                    asn: None,
                    times: 2,
                },
                Action::AddCommunity(vec![(65000 << 16) | 9]),
                Action::Med(50),
            ],
            verdict: Some(Verdict::Accept),
        },
        Rule {
            matches: vec![prefixes(&["172.20.11.0/24"])],
            actions: vec![],
            verdict: Some(Verdict::Reject),
        },
        Rule {
            matches: vec![prefixes(&["172.20.12.0/24"])],
            actions: vec![Action::Med(7)],
            verdict: Some(Verdict::Accept),
        },
    ]);
    rib.add_peer(2, b.clone());
    rib.peer_up(1, up_dual());
    let nets = [
        "172.20.9.0/24",
        "172.20.10.0/24",
        "172.20.11.0/24",
        "172.20.12.0/24",
    ];
    let mut at = attrs(&[A, X]);
    at.med = Some(7);
    rib.import(1, &ann4(at, "172.20.0.2", &nets));
    rib.peer_up(2, up_dual());
    let e = read(&rib.take_exports(2));
    assert_eq!(
        e.announced.keys().copied().collect::<Vec<_>>(),
        vec![
            net("172.20.9.0/24"),
            net("172.20.10.0/24"),
            net("172.20.12.0/24")
        ]
    );
    let (tagged, _) = &e.announced[&net("172.20.9.0/24")];
    assert_eq!(
        tagged.as_path.to_string(),
        format!("{LOCAL} {LOCAL} {LOCAL} {A} {X}")
    );
    assert_eq!(tagged.communities, vec![(65000 << 16) | 9]);
    assert_eq!(tagged.med, Some(50), "set by the export policy: sent");
    let (plain, _) = &e.announced[&net("172.20.10.0/24")];
    assert_eq!(plain.as_path.to_string(), format!("{LOCAL} {A} {X}"));
    assert_eq!(plain.med, None, "a MED does not cross ASes");
    assert!(plain.communities.is_empty());
    let (same, _) = &e.announced[&net("172.20.12.0/24")];
    assert_eq!(
        same.med,
        Some(7),
        "set by the policy to the value it had: sent"
    );
    assert_eq!(e.announcing_updates, 3, "grouped by exported attributes");
    assert_eq!(rib.stats(2).exported, 3);

    // A new export policy: 172.20.10.0/24 rejected now (withdrawn), 172.20.11.0/24
    // allowed (announced).
    b.export_policy[0] = policy(vec![Rule {
        matches: vec![prefixes(&["172.20.10.0/24"])],
        actions: vec![],
        verdict: Some(Verdict::Reject),
    }]);
    rib.reevaluate_peer(2, b);
    let e = read(&rib.take_exports(2));
    assert_eq!(e.withdrawn, vec![net("172.20.10.0/24")]);
    assert!(e.announced.contains_key(&net("172.20.11.0/24")));
    assert!(!e.announced.contains_key(&net("172.20.10.0/24")));
    let (now, _) = &e.announced[&net("172.20.9.0/24")];
    assert_eq!(now.as_path.to_string(), format!("{LOCAL} {A} {X}"));
    assert!(e.eor.is_empty());
    assert_eq!(rib.stats(2).exported, 3);
    assert!(fib(&mut rib).values().all(|nh| *nh == via(1, "172.20.0.2")));
}

/// Re-evaluation starts from the attributes as received: an import policy that adds a
/// community, and two ROA flips, leave the community there once.
#[test]
fn reevaluation_keeps_received_attributes() {
    let mut rib = rib_with(&[], REJECT_BOTH, Vec::new());
    let valid = roas(&[("172.20.8.0/22", 24, X)]);
    rib.set_roas(valid.clone());
    let tag = (65000 << 16) | 1;
    let mut a = dn42_peer("a", A, 1);
    a.import_policy[0] = policy(vec![Rule {
        matches: vec![Match::Roa(vec![Validity::Valid])],
        actions: vec![Action::AddCommunity(vec![tag]), Action::LocalPref(150)],
        verdict: None,
    }]);
    rib.add_peer(1, a.clone());
    rib.add_peer(2, dn42_peer("b", B, 2));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    let other = (65000 << 16) | 2;
    rib.import(
        1,
        &ann4(
            path_attrs(&[A, X], &[other]),
            "172.20.0.2",
            &["172.20.9.0/24"],
        ),
    );
    let accepted = |rib: &Rib| {
        let v = view(rib, "172.20.9.0/24", 1);
        assert!(v.best && !v.filtered);
        assert_eq!(v.local_pref, 150);
        assert_eq!(v.communities, vec![fmt_comm(other), fmt_comm(tag)]);
    };
    accepted(&rib);
    let _ = (fib(&mut rib), rib.take_exports(2));
    for round in 0..2 {
        let change = rib.set_roas(RoaSet::new());
        assert_eq!((change.validity_changed, change.verdict_changed), (1, 1));
        let v = view(&rib, "172.20.9.0/24", 1);
        assert_eq!(v.reason, Some(FilterReason::RoaUnknown), "round {round}");
        assert_eq!(v.communities, vec![fmt_comm(other)], "as received");
        assert_eq!(v.local_pref, 100);
        assert_eq!(
            fib(&mut rib),
            BTreeMap::from([(net("172.20.9.0/24"), None)])
        );
        assert_eq!(
            read(&rib.take_exports(2)).withdrawn,
            vec![net("172.20.9.0/24")]
        );
        rib.set_roas(valid.clone());
        accepted(&rib);
        assert_eq!(
            fib(&mut rib),
            BTreeMap::from([(net("172.20.9.0/24"), via(1, "172.20.0.2"))])
        );
        let e = read(&rib.take_exports(2));
        let (sent, _) = &e.announced[&net("172.20.9.0/24")];
        assert_eq!(sent.communities, vec![other, tag], "once");
    }
    // Without the policy the received attributes come back.
    a.import_policy[0] = None;
    rib.reevaluate_peer(1, a);
    let v = view(&rib, "172.20.9.0/24", 1);
    assert_eq!(
        (v.communities.clone(), v.local_pref),
        (vec![fmt_comm(other)], 100)
    );
    assert!(fib(&mut rib).is_empty(), "same next hop");
    let e = read(&rib.take_exports(2));
    assert_eq!(
        e.announced[&net("172.20.9.0/24")].0.communities,
        vec![other]
    );
    assert_eq!(rib.stats(1).imported, 1);
}

/// A naive reading of RFC 6811 section 2, independent of the ROA index.
fn reference(roas: &[Roa], prefix: IpNet, origin: u32) -> Validity {
    let covering: Vec<&Roa> = roas
        .iter()
        .filter(|r| r.prefix().contains(&prefix))
        .collect();
    if covering.is_empty() {
        Validity::NotFound
    } else if covering
        .iter()
        .any(|r| r.asn() == origin && r.asn() != 0 && prefix.prefix_len() <= r.max_len())
    {
        Validity::Valid
    } else {
        Validity::Invalid
    }
}

/// Real DN42 ROAs (burble's BIRD 2 files of 2022-11-09, AS0 entries included) and
/// routes derived from them: the ROA's own prefix and origin, a wrong origin, and a
/// prefix one bit longer than the max length; each state as a naive reference says,
/// and with the wiki's import, exactly the valid DN42 networks accepted.
#[test]
fn real_dn42_roas_and_derived_routes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/dn42_roa");
    let mut all = Vec::new();
    for f in [
        "burble_bird2_20221109_roa_dn42.conf",
        "burble_bird2_20221109_roa_dn42_v6.conf",
    ] {
        let parsed = rr_roa::parse::parse_file(format!("{dir}/{f}")).unwrap();
        assert!(parsed.errors.is_empty(), "{f}: {:?}", parsed.errors.first());
        all.extend(parsed.roas);
    }
    assert!(all.len() > 3900, "{} ROAs", all.len());
    assert!(all.iter().any(|r| r.asn() == 0), "AS0 ROAs in the data");
    let mut rib = rib_with(&[], REJECT_BOTH, Vec::new());
    rib.set_roas(all.iter().copied().collect());
    // Three peers, one per kind of derived route (a prefix per peer once).
    let kinds = ["own", "wrong-origin", "too-long"];
    for (i, k) in kinds.iter().enumerate() {
        rib.add_peer(i as u32 + 1, dn42_peer(k, A + i as u32, i as u32 + 1));
        rib.peer_up(i as u32 + 1, up_dual());
    }
    let mut routes: [BTreeMap<IpNet, u32>; 3] = Default::default();
    for r in all.iter().filter(|r| r.asn() != 0).step_by(3) {
        routes[0].entry(r.prefix()).or_insert(r.asn());
        routes[1].entry(r.prefix()).or_insert(r.asn() + 1);
        let longer = r.max_len() + 1;
        if longer <= r.prefix().max_prefix_len() {
            let p = IpNet::new(r.prefix().network(), longer).unwrap();
            routes[2].entry(p).or_insert(r.asn());
        }
    }
    let mut want_accepted = [0u64; 3];
    let mut states = std::collections::HashMap::<(usize, Validity), usize>::new();
    for (i, list) in routes.iter().enumerate() {
        let id = i as u32 + 1;
        for (&p, &origin) in list {
            let u = match p {
                IpNet::V4(_) => ann4(attrs(&[A + i as u32, origin]), "172.20.0.2", &[]),
                IpNet::V6(_) => ann_mp(attrs(&[A + i as u32, origin]), ll("fe80::2"), &[]),
            };
            let u = match p {
                IpNet::V4(n) => rr_rib::Update { nlri: vec![n], ..u },
                IpNet::V6(_) => {
                    let mut u = u;
                    u.mp_reach.as_mut().unwrap().nlri = vec![p];
                    u
                }
            };
            rib.import(id, &u);
            let want = reference(&all, p, origin);
            let v = view(&rib, &p.to_string(), id);
            assert_eq!(v.roa, Some(want), "{p} from AS{origin}");
            let ok = want == Validity::Valid && dn42::is_valid_network(&p);
            assert_eq!(!v.filtered, ok, "{p} from AS{origin}: {:?}", v.reason);
            want_accepted[i] += u64::from(ok);
            *states.entry((i, want)).or_default() += 1;
        }
        assert_eq!(rib.stats(id).imported, want_accepted[i], "{}", kinds[i]);
    }
    // The derived routes exercise every state (most own routes valid, wrong origins
    // and too-long ones mostly invalid).
    assert!(states[&(0, Validity::Valid)] > 1000, "{states:?}");
    assert!(states[&(1, Validity::Invalid)] > 1000, "{states:?}");
    assert!(states[&(2, Validity::Invalid)] > 100, "{states:?}");
    // Dropping the IPv4 ROAs: every IPv4 route becomes unknown and is rejected.
    let v6_only: RoaSet = all
        .iter()
        .filter(|r| matches!(r.prefix(), IpNet::V6(_)))
        .copied()
        .collect();
    let change = rib.set_roas(v6_only);
    let v4_routes: usize = routes
        .iter()
        .map(|l| l.keys().filter(|p| matches!(p, IpNet::V4(_))).count())
        .sum();
    assert_eq!(change.routes_checked, v4_routes);
    for (i, _) in kinds.iter().enumerate() {
        assert_eq!(rib.stats(i as u32 + 1).imported_v4, 0);
    }
}

/// An export policy that matches the ROA state: a ROA change that leaves the table's
/// choice alone (import `all`, no `[roa]` rejection) still changes what is exported.
#[test]
fn export_policy_follows_roa_state() {
    let mut rib = rib_with(&[], None, Vec::new());
    rib.add_peer(1, peer("a", A, Some(1)));
    let mut b = peer("b", B, Some(2));
    b.export_policy[0] = policy(vec![Rule {
        matches: vec![Match::Roa(vec![Validity::Invalid])],
        actions: vec![],
        verdict: Some(Verdict::Reject),
    }]);
    rib.add_peer(2, b);
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    rib.import(1, &ann4(attrs(&[A, X]), "172.20.0.2", &["172.20.9.0/24"]));
    let e = read(&rib.take_exports(2));
    assert!(e.announced.contains_key(&net("172.20.9.0/24")));
    let _ = fib(&mut rib);
    let change = rib.set_roas(roas(&[("172.20.9.0/24", 24, Y)]));
    assert_eq!((change.validity_changed, change.verdict_changed), (1, 0));
    assert!(fib(&mut rib).is_empty(), "still the best, same next hop");
    let e = read(&rib.take_exports(2));
    assert_eq!(e.withdrawn, vec![net("172.20.9.0/24")]);
    rib.set_roas(roas(&[("172.20.9.0/24", 24, X)]));
    let e = read(&rib.take_exports(2));
    assert!(e.announced.contains_key(&net("172.20.9.0/24")));
}

/// A reload changes `[roa] unknown` (and later removes `[roa]`): every route runs
/// through the import again, from its attributes as received, with FIB and counters
/// following; no route is lost or duplicated.
#[test]
fn roa_rules_changed_live() {
    let mut rib = rib_with(&[], REJECT_BOTH, Vec::new());
    rib.set_roas(roas(&[("172.20.0.0/16", 24, X)]));
    rib.add_peer(1, dn42_peer("a", A, 1));
    rib.peer_up(1, up_dual());
    let nets = ["172.20.1.0/24", "172.21.1.0/24", "172.20.2.0/28"];
    rib.import(1, &ann4(attrs(&[A, X]), "172.20.0.2", &nets));
    let state = |rib: &Rib, p: &str| {
        let v = view(rib, p, 1);
        (v.filtered, v.reason)
    };
    assert_eq!(state(&rib, "172.20.1.0/24"), (false, None));
    assert_eq!(
        state(&rib, "172.21.1.0/24"),
        (true, Some(FilterReason::RoaUnknown))
    );
    assert_eq!(
        state(&rib, "172.20.2.0/28"),
        (true, Some(FilterReason::RoaInvalid))
    );
    assert_eq!((rib.stats(1).imported, rib.stats(1).filtered), (1, 2));
    let _ = rib.take_fib_changes();

    // unknown = "accept": the unknown route is taken in and reaches the FIB.
    let outcome = rib.set_roa_rules(Some(RoaRules {
        reject_invalid: true,
        reject_unknown: false,
    }));
    assert!(outcome.is_empty());
    assert_eq!(state(&rib, "172.21.1.0/24"), (false, None));
    assert_eq!(
        state(&rib, "172.20.2.0/28"),
        (true, Some(FilterReason::RoaInvalid))
    );
    assert_eq!((rib.stats(1).imported, rib.stats(1).filtered), (2, 1));
    let changed: Vec<String> = rib
        .take_fib_changes()
        .iter()
        .map(|c| format!("{c:?}"))
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].contains("172.21.1.0/24"), "{changed:?}");

    // The same rules again: nothing to do.
    assert!(rib
        .set_roa_rules(Some(RoaRules {
            reject_invalid: true,
            reject_unknown: false,
        }))
        .is_empty());
    assert!(rib.take_fib_changes().is_empty());

    // No [roa] any more: nothing rejected for its ROA state.
    rib.set_roa_rules(None);
    assert_eq!(state(&rib, "172.20.2.0/28"), (false, None));
    assert_eq!((rib.stats(1).imported, rib.stats(1).filtered), (3, 0));
}

/// A reload changes `[router] announce` and the region: a new prefix of ours is
/// announced (with the new community) and a peer's more-specific of it becomes
/// `own-prefix`, a prefix no longer ours is withdrawn and the peer's route for it
/// accepted again; the prefix kept is re-announced with the new community.
#[test]
fn announce_changed_live() {
    let mut rib = rib_with(&["172.20.0.0/27"], None, vec![community(41)]);
    rib.add_peer(1, peer("a", A, Some(1)));
    rib.add_peer(2, peer("b", B, Some(2)));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    rib.import(
        1,
        &ann4(
            attrs(&[A]),
            "172.20.0.2",
            &["172.20.50.0/25", "172.20.0.0/28"],
        ),
    );
    assert_eq!(
        view(&rib, "172.20.0.0/28", 1).reason,
        Some(FilterReason::OwnPrefix)
    );
    let e = read(&rib.take_exports(2));
    assert_eq!(
        e.announced.keys().copied().collect::<Vec<_>>(),
        vec![net("172.20.0.0/27"), net("172.20.50.0/25")]
    );
    let _ = rib.take_exports(1);
    let _ = fib(&mut rib);

    // 172.20.0.0/27 no longer ours, 172.20.50.0/24 now ours, region 42.
    let out = rib.set_announce(vec![net("172.20.50.0/24")], vec![community(42)]);
    assert!(out.is_empty());
    assert_eq!(view(&rib, "172.20.0.0/28", 1).reason, None);
    assert_eq!(
        view(&rib, "172.20.50.0/25", 1).reason,
        Some(FilterReason::OwnPrefix)
    );
    let e = read(&rib.take_exports(2));
    assert_eq!(
        e.announced.keys().copied().collect::<Vec<_>>(),
        vec![net("172.20.0.0/28"), net("172.20.50.0/24")]
    );
    assert_eq!(
        e.announced[&net("172.20.50.0/24")].0.communities,
        vec![community(42)]
    );
    assert_eq!(
        e.withdrawn,
        vec![net("172.20.0.0/27"), net("172.20.50.0/25")]
    );
    assert!(e.eor.is_empty(), "no session was reset");
    assert_eq!(
        fib(&mut rib),
        BTreeMap::from([
            (net("172.20.0.0/28"), via(1, "172.20.0.2")),
            (net("172.20.50.0/25"), None),
        ])
    );

    // Only the region changes: the prefix is sent again with it, nothing else moves.
    assert!(rib
        .set_announce(vec![net("172.20.50.0/24")], vec![community(43)])
        .is_empty());
    let e = read(&rib.take_exports(2));
    assert_eq!(
        e.announced.keys().copied().collect::<Vec<_>>(),
        vec![net("172.20.50.0/24")]
    );
    assert_eq!(
        e.announced[&net("172.20.50.0/24")].0.communities,
        vec![community(43)]
    );
    let _ = rib.take_exports(1);
    assert!(fib(&mut rib).is_empty());
    // The same again: nothing.
    assert!(rib
        .set_announce(vec![net("172.20.50.0/24")], vec![community(43)])
        .is_empty());
    assert!(!rib.has_exports());
}
