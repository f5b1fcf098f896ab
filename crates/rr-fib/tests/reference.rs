//! The table against a naive longest-prefix match (a linear scan over a list of routes),
//! over thousands of random inserts, replacements, removals and lookups in both families,
//! drawn from a deterministic generator so failures replay.
//!
//! The prefixes are drawn inside a few narrow regions so that routes overlap, nest and
//! pile up in the same trie nodes (which then switch between the run-list and dense
//! forms and collapse again), with lengths across the whole range including /0 and the
//! host lengths.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rr_fib::{Change, Fib, IfIndex, NextHop, SharedFib};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The reference: every route in a map, lookups by scanning all of them.
#[derive(Default)]
struct Naive {
    routes: BTreeMap<IpNet, NextHop>,
}

impl Naive {
    fn lookup(&self, a: IpAddr) -> Option<(IpNet, NextHop)> {
        self.routes
            .iter()
            .filter(|(p, _)| p.contains(&a))
            .max_by_key(|(p, _)| p.prefix_len())
            .map(|(p, nh)| (*p, *nh))
    }
}

fn nh(rng: &mut Rng) -> NextHop {
    let i = rng.below(6) as IfIndex;
    NextHop {
        iface: i,
        // Two gateways on tunnel 0: distinct next hops on one tunnel.
        gateway: (i == 0 && rng.below(2) == 0).then(|| "fe80::1".parse().unwrap()),
    }
}

/// A v4 address in one of a few regions: inside 10.1.0.0/16 (nodes fill up), around
/// 10.1.x/24 boundaries, or anywhere.
fn addr4(rng: &mut Rng) -> u32 {
    match rng.below(8) {
        0 => rng.next() as u32,
        1..=3 => 0x0a01_0000 | (rng.below(0x10000) as u32),
        4..=6 => 0x0a01_0500 | (rng.below(0x100) as u32),
        _ => 0xffff_ff00 | (rng.below(0x100) as u32),
    }
}

/// A v6 address: inside 2001:db8::/32, near a /48 boundary, at the top or anywhere.
fn addr6(rng: &mut Rng) -> u128 {
    let r = (u128::from(rng.next()) << 64) | u128::from(rng.next());
    match rng.below(8) {
        0 => r,
        1..=3 => (0x2001_0db8u128 << 96) | (r >> 32),
        4..=6 => (0x2001_0db8_0001u128 << 80) | (r >> 48 >> rng.below(80)),
        _ => u128::MAX ^ (r >> 64 >> rng.below(64)),
    }
}

fn len(rng: &mut Rng, bits: u8) -> u8 {
    match rng.below(4) {
        0 => rng.below(u64::from(bits) + 1) as u8,
        // Mostly the longer half: where the nodes are.
        _ => (bits / 2) + rng.below(u64::from(bits / 2) + 1) as u8,
    }
}

fn prefix(rng: &mut Rng) -> IpNet {
    if rng.below(2) == 0 {
        let l = len(rng, 32);
        IpNet::V4(Ipv4Net::new(Ipv4Addr::from(addr4(rng)), l).unwrap().trunc())
    } else {
        let l = len(rng, 128);
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(addr6(rng)), l).unwrap().trunc())
    }
}

fn addr(rng: &mut Rng) -> IpAddr {
    if rng.below(2) == 0 {
        IpAddr::V4(Ipv4Addr::from(addr4(rng)))
    } else {
        IpAddr::V6(Ipv6Addr::from(addr6(rng)))
    }
}

/// Checks `a` in `fib` against the reference, through every lookup method.
fn check(fib: &Fib, naive: &Naive, a: IpAddr, step: usize) {
    let want = naive.lookup(a);
    assert_eq!(fib.lookup(a), want, "step {step}: lookup({a})");
    assert_eq!(
        fib.lookup_nh(a),
        want.map(|w| w.1),
        "step {step}: lookup_nh({a})"
    );
    match a {
        IpAddr::V4(v4) => assert_eq!(fib.lookup_nh_v4(v4), want.map(|w| w.1)),
        IpAddr::V6(v6) => assert_eq!(fib.lookup_nh_v6(v6), want.map(|w| w.1)),
    }
}

/// Addresses worth checking after a change to `p`: its first and last address, and just
/// outside both ends.
fn edges(p: IpNet) -> Vec<IpAddr> {
    let mut out = vec![p.network(), p.broadcast()];
    match p {
        IpNet::V4(n) => {
            let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
            out.extend(lo.checked_sub(1).map(|x| IpAddr::V4(x.into())));
            out.extend(hi.checked_add(1).map(|x| IpAddr::V4(x.into())));
        }
        IpNet::V6(n) => {
            let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
            out.extend(lo.checked_sub(1).map(|x| IpAddr::V6(x.into())));
            out.extend(hi.checked_add(1).map(|x| IpAddr::V6(x.into())));
        }
    }
    out
}

#[test]
fn random_operations_match_a_linear_scan() {
    for seed in 1..=3u64 {
        let mut rng = Rng(seed);
        let mut fib = Fib::new();
        let mut naive = Naive::default();
        let mut known: Vec<IpNet> = Vec::new();
        for step in 0..5000 {
            match rng.below(10) {
                // Insert or replace (sometimes a route seen before).
                0..=5 => {
                    let p = if !known.is_empty() && rng.below(4) == 0 {
                        known[rng.below(known.len() as u64) as usize]
                    } else {
                        prefix(&mut rng)
                    };
                    let hop = nh(&mut rng);
                    let old = fib.insert(p, hop);
                    assert_eq!(old, naive.routes.insert(p, hop), "step {step}: insert {p}");
                    known.push(p);
                    for a in edges(p) {
                        check(&fib, &naive, a, step);
                    }
                }
                // Remove a known route (or one that is gone already).
                6..=8 if !known.is_empty() => {
                    let p = known.swap_remove(rng.below(known.len() as u64) as usize);
                    assert_eq!(
                        fib.remove(&p),
                        naive.routes.remove(&p),
                        "step {step}: remove {p}"
                    );
                    for a in edges(p) {
                        check(&fib, &naive, a, step);
                    }
                }
                _ => {
                    let p = prefix(&mut rng);
                    assert_eq!(
                        fib.remove(&p),
                        naive.routes.remove(&p),
                        "step {step}: remove {p}"
                    );
                }
            }
            assert_eq!(fib.len(), naive.routes.len());
            for _ in 0..4 {
                check(&fib, &naive, addr(&mut rng), step);
            }
            if step % 500 == 499 {
                let mut want: Vec<_> = naive.routes.iter().map(|(p, n)| (*p, *n)).collect();
                want.sort_by_key(|(p, _)| (p.addr().is_ipv6(), *p));
                assert_eq!(fib.routes(), want, "step {step}: routes()");
                for (p, hop) in &want {
                    assert_eq!(fib.get(p), Some(*hop));
                }
            }
        }
        // Withdraw everything: the table empties and every lookup misses.
        for p in naive.routes.keys().copied().collect::<Vec<_>>() {
            assert!(fib.remove(&p).is_some());
            naive.routes.remove(&p);
        }
        assert!(fib.is_empty());
        for _ in 0..1000 {
            assert_eq!(fib.lookup(addr(&mut rng)), None);
        }
        let s = fib.stats();
        assert_eq!(
            (
                s.v4.dense_nodes,
                s.v4.run_nodes,
                s.v6.dense_nodes,
                s.v6.run_nodes,
                s.next_hops
            ),
            (0, 0, 0, 0, 0),
            "seed {seed}: every node and next hop freed"
        );
    }
}

/// A random batch of changes, with repeats of the same prefix inside the batch.
fn batch(rng: &mut Rng, known: &mut Vec<IpNet>, n: usize) -> Vec<Change> {
    (0..n)
        .map(|_| {
            let p = if !known.is_empty() && rng.below(2) == 0 {
                known[rng.below(known.len() as u64) as usize]
            } else {
                let p = prefix(rng);
                known.push(p);
                p
            };
            let hop = (rng.below(3) != 0).then(|| nh(rng));
            (p, hop)
        })
        .collect()
}

#[test]
fn batches_equal_the_same_changes_one_by_one() {
    let mut rng = Rng(42);
    let shared = SharedFib::new(Fib::new());
    let mut batched = Fib::new();
    let mut single = Fib::new();
    let mut known = Vec::new();
    for round in 0..60 {
        let n = rng.below(200) as usize;
        let changes = batch(&mut rng, &mut known, n);
        shared.apply(&changes).unwrap();
        batched.apply(&changes).unwrap();
        for (p, hop) in &changes {
            match hop {
                Some(h) => {
                    single.insert(*p, *h);
                }
                None => {
                    single.remove(p);
                }
            }
        }
        let published = shared.load();
        let want = single.routes();
        assert_eq!(shared.routes(), want, "round {round}");
        assert_eq!(published.len(), single.len(), "round {round}");
        // The snapshot has no route maps: it lists the routes its trie shows, a subset.
        let shown = published.routes();
        assert!(
            shown.iter().all(|r| want.contains(r)),
            "round {round}: a snapshot shows only real routes"
        );
        for (p, hop) in want.iter().take(20) {
            assert_eq!(shared.get(p), Some(*hop), "round {round}: get {p}");
        }
        assert_eq!(batched.routes(), single.routes(), "round {round}");
        for _ in 0..200 {
            let a = addr(&mut rng);
            assert_eq!(published.lookup(a), single.lookup(a), "round {round}: {a}");
            assert_eq!(batched.lookup(a), single.lookup(a), "round {round}: {a}");
        }
    }
    // update() journals too: the copies stay in step when closures and batches mix.
    shared.update(|f| {
        f.insert(
            "10.1.0.0/16".parse().unwrap(),
            NextHop {
                iface: 9,
                gateway: None,
            },
        );
        f.remove(&"10.1.0.0/16".parse().unwrap());
        f.insert(
            "10.2.0.0/16".parse().unwrap(),
            NextHop {
                iface: 9,
                gateway: None,
            },
        );
    });
    single.insert(
        "10.2.0.0/16".parse().unwrap(),
        NextHop {
            iface: 9,
            gateway: None,
        },
    );
    for _ in 0..3 {
        let changes = batch(&mut rng, &mut known, 50);
        shared.apply(&changes).unwrap();
        single.apply(&changes).unwrap();
        assert_eq!(shared.routes(), single.routes());
    }
}

/// The spare trie is brought up to date by re-deciding each touched prefix from the
/// current maps, not by replaying: one prefix inserted, withdrawn and re-inserted with
/// another next hop over several batches while a longer and a shorter route over it
/// change too, so that a replay against the current maps would fall back wrongly. Every
/// snapshot is checked against a linear scan at every interesting address.
#[test]
fn syncing_the_spare_follows_the_current_maps_across_batches() {
    let p = |s: &str| -> IpNet { s.parse().unwrap() };
    let hop = |i: u32| NextHop {
        iface: i,
        gateway: None,
    };
    let (short, mid, long) = (p("10.0.0.0/8"), p("10.1.0.0/16"), p("10.1.2.0/24"));
    let (short6, mid6, long6) = (p("fd00::/8"), p("fd00:1::/32"), p("fd00:1:2::/48"));
    let batches: Vec<Vec<Change>> = vec![
        vec![(mid, Some(hop(1))), (mid6, Some(hop(1)))],
        vec![
            (long, Some(hop(2))),
            (short, Some(hop(3))),
            (long6, Some(hop(2))),
        ],
        vec![(mid, None), (mid6, None), (short6, Some(hop(3)))],
        vec![(long, None), (short, Some(hop(4))), (long6, None)],
        vec![(mid, Some(hop(5))), (short, None), (mid6, Some(hop(5)))],
        vec![(long, Some(hop(6))), (mid, None), (mid, Some(hop(7)))],
        vec![(short, Some(hop(8))), (mid, None), (short6, None)],
        vec![
            (long, None),
            (mid, Some(hop(9))),
            (mid6, Some(hop(9))),
            (long6, Some(hop(1))),
        ],
        vec![(mid, Some(hop(9)))],
        vec![],
        vec![
            (short, None),
            (mid, None),
            (long, None),
            (mid6, None),
            (long6, None),
        ],
    ];
    let probes: Vec<IpAddr> = [short, mid, long, short6, mid6, long6]
        .iter()
        .flat_map(|q| edges(*q))
        .collect();
    let shared = SharedFib::new(Fib::new());
    let mut naive = Naive::default();
    for (round, changes) in batches.iter().enumerate() {
        shared.apply(changes).unwrap();
        for (q, h) in changes {
            match h {
                Some(h) => naive.routes.insert(*q, *h),
                None => naive.routes.remove(q),
            };
        }
        let fib = shared.load();
        for a in &probes {
            check(&fib, &naive, *a, round);
        }
        assert_eq!(fib.len(), naive.routes.len(), "round {round}");
        let want: Vec<_> = naive.routes.iter().map(|(p, n)| (*p, *n)).collect();
        let mut want = want;
        want.sort_by_key(|(p, _)| (p.addr().is_ipv6(), *p));
        assert_eq!(shared.routes(), want, "round {round}");
    }
    assert!(shared.load().is_empty());
    assert_eq!(shared.stats().next_hops, 0, "every next hop released");
}

/// Big batches (caught up by copying the trie) and small ones (caught up by syncing)
/// mixed, against the same changes one by one.
#[test]
fn copied_and_synced_spares_agree() {
    let mut rng = Rng(7);
    let shared = SharedFib::new(Fib::new());
    let mut single = Fib::new();
    let mut known = Vec::new();
    for round in 0..12 {
        let n = if round % 3 == 0 { 6000 } else { 100 };
        let changes = batch(&mut rng, &mut known, n);
        shared.apply(&changes).unwrap();
        single.apply(&changes).unwrap();
        let fib = shared.load();
        for _ in 0..2000 {
            let a = addr(&mut rng);
            assert_eq!(fib.lookup(a), single.lookup(a), "round {round}: {a}");
        }
        assert_eq!(fib.len(), single.len());
    }
    assert_eq!(shared.routes(), single.routes());
}
