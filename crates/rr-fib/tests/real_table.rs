//! A real full table: RouteViews 2015-11-01 as converted by pyasn (606,138 IPv4 + 27,693
//! IPv6 prefixes, `shared/data/bgp_text/pyasn_ipasn6_20151101.dat.gz`), installed, looked
//! up against a per-length reference, half withdrawn, looked up again, then emptied.
//!
//! The reference does longest-prefix match the slow obvious way: one exact-match probe
//! per prefix length, longest first.

use ipnet::IpNet;
use rr_fib::{Fib, NextHop};
use std::collections::HashSet;
use std::io::BufRead;
use std::net::IpAddr;

const TABLE: &str = "../../../shared/data/bgp_text/pyasn_ipasn6_20151101.dat.gz";

fn load() -> Vec<IpNet> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(TABLE);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut seen = HashSet::new();
    std::io::BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(|l| l.expect("gzip text"))
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| {
            let field = l.split('\t').next().unwrap_or_default().to_string();
            field.parse::<IpNet>().expect("a prefix").trunc()
        })
        .filter(|p| seen.insert(*p))
        .collect()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn nh(i: usize) -> NextHop {
    NextHop {
        iface: (i % 16) as u32,
        gateway: None,
    }
}

/// Longest match by probing every length.
fn reference(
    routes: &std::collections::HashMap<IpNet, NextHop>,
    a: IpAddr,
) -> Option<(IpNet, NextHop)> {
    let bits = if a.is_ipv4() { 32 } else { 128 };
    (0..=bits).rev().find_map(|l| {
        let p = IpNet::new(a, l).ok()?.trunc();
        routes.get(&p).map(|nh| (p, *nh))
    })
}

/// Addresses inside random installed prefixes (random host bits) and random ones.
fn addresses(prefixes: &[IpNet], n: usize, rng: &mut Rng) -> Vec<IpAddr> {
    (0..n)
        .map(|i| {
            let r = (u128::from(rng.next()) << 64) | u128::from(rng.next());
            match (
                i % 4,
                prefixes.get(rng.next() as usize % prefixes.len().max(1)),
            ) {
                (0, _) | (_, None) => {
                    if i % 8 == 0 {
                        IpAddr::V4((r as u32).into())
                    } else {
                        IpAddr::V6(r.into())
                    }
                }
                (_, Some(IpNet::V4(p))) => {
                    let host = r as u32 & u32::from(p.hostmask());
                    IpAddr::V4((u32::from(p.network()) | host).into())
                }
                (_, Some(IpNet::V6(p))) => {
                    let host = r & u128::from(p.hostmask());
                    IpAddr::V6((u128::from(p.network()) | host).into())
                }
            }
        })
        .collect()
}

#[test]
fn full_table_matches_the_reference_through_installs_and_withdrawals() {
    let prefixes = load();
    let v4 = prefixes.iter().filter(|p| p.addr().is_ipv4()).count();
    assert_eq!(
        (v4, prefixes.len() - v4),
        (606_138, 27_693),
        "the data file's own counts"
    );
    let mut fib = Fib::new();
    let mut routes = std::collections::HashMap::new();
    for (i, p) in prefixes.iter().enumerate() {
        assert_eq!(fib.insert(*p, nh(i)), None, "{p} inserted once");
        routes.insert(*p, nh(i));
    }
    assert_eq!(fib.len(), prefixes.len());
    let mut rng = Rng(2015);
    let check = |fib: &Fib, routes: &std::collections::HashMap<IpNet, NextHop>, rng: &mut Rng| {
        let installed: Vec<IpNet> = routes.keys().copied().collect();
        let mut hits = 0;
        for a in addresses(&installed, 20_000, rng) {
            let want = reference(routes, a);
            assert_eq!(fib.lookup(a), want, "{a}");
            assert_eq!(fib.lookup_nh(a), want.map(|w| w.1), "{a}");
            hits += usize::from(want.is_some());
        }
        assert!(
            hits > 10_000,
            "the addresses exercise the table ({hits} hits)"
        );
    };
    check(&fib, &routes, &mut rng);
    let s = fib.stats();
    assert_eq!(
        (s.v4.routes, s.v6.routes, s.next_hops),
        (606_138, 27_693, 16)
    );
    // Well under 100 bytes per route, trie and route maps together (see rr-bench fib).
    assert!(s.v4.bytes_per_route() < 40.0, "{:?}", s.v4);
    assert!(s.v6.bytes_per_route() < 80.0, "{:?}", s.v6);

    // Withdraw a random half: many addresses fall back to covering routes.
    let mut gone = Vec::new();
    for p in &prefixes {
        if rng.next().is_multiple_of(2) {
            assert_eq!(fib.remove(p), routes.remove(p), "{p}");
            gone.push(*p);
        }
    }
    assert_eq!(fib.len(), routes.len());
    check(&fib, &routes, &mut rng);
    for p in gone.iter().take(2000) {
        assert_eq!(fib.get(p), None);
    }

    // Withdraw the rest: nothing is left, not even nodes.
    for p in routes.keys() {
        assert!(fib.remove(p).is_some(), "{p}");
    }
    assert!(fib.is_empty());
    let s = fib.stats();
    assert_eq!(
        (
            s.v4.dense_nodes,
            s.v4.run_nodes,
            s.v6.dense_nodes,
            s.v6.run_nodes,
            s.next_hops
        ),
        (0, 0, 0, 0, 0)
    );
}
