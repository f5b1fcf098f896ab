//! ROA re-evaluation at scale: 1,000,000 routes, 200,000 ROAs, a 10,000-ROA change.
//! Prints its timings (no timing assertions); run it in release:
//!
//! `cargo test --release -p rr-rib --test roa_scale -- --ignored --nocapture`

mod common;

use common::*;
use ipnet::{IpNet, Ipv6Net};
use rr_rib::{FilterReason, Policy, Rib, RibConfig, RoaRules, RoaSet};
use rr_roa::Roa;
use std::net::Ipv6Addr;
use std::time::Instant;

/// Route `i`: the /48 `fdXX:XXXX:XX00::/48` numbered `i` inside fd00::/8 (DN42 permits
/// /44../64 there).
fn route(i: u32) -> IpNet {
    let a = (0xfd00u128 << 112) | (u128::from(i) << 80);
    IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), 48).unwrap())
}

/// ROA `j`: the /46 holding routes 4j..4j+3, max length 48, for `asn`.
fn roa(j: u32, asn: u32) -> Roa {
    let a = (0xfd00u128 << 112) | (u128::from(j * 4) << 80);
    Roa::new(
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), 46).unwrap()),
        48,
        asn,
    )
    .unwrap()
}

fn origin(j: u32) -> u32 {
    4_242_421_000 + j % 3000
}

#[test]
#[ignore = "measurement: run in release with --ignored --nocapture"]
fn reevaluate_million_routes_after_10k_roa_change() {
    const ROUTES: u32 = 1_000_000;
    const ROAS: u32 = 200_000;
    const CHANGED: u32 = 10_000;
    let mut rib = Rib::new(RibConfig {
        local_asn: LOCAL,
        router_id: v4("172.20.0.1"),
        announce: Vec::new(),
        announce_communities: Vec::new(),
        roa: Some(RoaRules {
            reject_invalid: true,
            reject_unknown: true,
        }),
    });
    let t = Instant::now();
    rib.set_roas((0..ROAS).map(|j| roa(j, origin(j))).collect());
    println!("200k ROAs indexed: {:?}", t.elapsed());
    let mut a = peer("a", 4242420002, Some(1));
    a.import = Policy::Dn42;
    rib.add_peer(1, a);
    rib.add_peer(2, peer("b", 4242420003, Some(2)));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    let t = Instant::now();
    // One UPDATE per ROA's four routes (their origin's path), the rest in 1000s.
    for j in 0..ROUTES / 4 {
        let nets: Vec<IpNet> = (4 * j..4 * j + 4).map(route).collect();
        let u = rr_rib::Update {
            attrs: Some(attrs(&[4242420002, origin(j)])),
            mp_reach: Some(rr_bgp::packet::MpReach {
                family: rr_rib::Family::Ipv6Unicast,
                next_hop: ll("fe80::2"),
                nlri: nets,
            }),
            ..rr_rib::Update::default()
        };
        rib.import(1, &u);
    }
    let _ = rib.take_fib_changes();
    let _ = rib.take_exports(2);
    println!("1M routes imported: {:?}", t.elapsed());
    let s = rib.stats(1);
    assert_eq!(s.imported, u64::from(ROAS) * 4);
    assert_eq!(
        s.filtered_by[FilterReason::RoaUnknown.index()],
        u64::from(ROUTES - ROAS * 4)
    );

    // 10k ROAs change their AS: 5k of them in the first half, 5k at the end.
    let changed = |j: u32| !(CHANGED / 2..ROAS - CHANGED / 2).contains(&j);
    let new: RoaSet = (0..ROAS)
        .map(|j| roa(j, if changed(j) { origin(j) + 1 } else { origin(j) }))
        .collect();
    let t = Instant::now();
    let change = rib.set_roas(new);
    let reeval = t.elapsed();
    let t = Instant::now();
    let fib = rib.take_fib_changes();
    let exports = rib.take_exports(2);
    let drain = t.elapsed();
    println!("{change:?}");
    println!(
        "set_roas (diff, scan, re-evaluate): {reeval:?}; FIB + export drain: {drain:?} \
         ({} FIB changes, {} UPDATEs)",
        fib.len(),
        exports.len()
    );
    assert_eq!(change.roas_added as u32, CHANGED);
    assert_eq!(change.validity_changed as u32, CHANGED * 4);
    assert_eq!(change.verdict_changed as u32, CHANGED * 4);
    assert_eq!(fib.len() as u32, CHANGED * 4);
    assert_eq!(rib.stats(1).imported, u64::from(ROAS - CHANGED) * 4);
}
