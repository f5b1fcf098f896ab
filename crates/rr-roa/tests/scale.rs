//! The benchmark shape, measured and printed (no timing asserts): 1,000,000
//! routes validated against 200,000 ROAs, then a 10,000-ROA change (5,000 removed, 5,000
//! added), the routes it can affect found with `RoaDelta::affects` and re-validated.
//! Correctness is asserted: every route whose validity changed is among the affected.
//!
//! Synthetic data: the real DN42 table is ~1-2 thousand prefixes, and the 2015 Internet
//! table in shared/data/mrt would all be NotFound against DN42 ROAs. Figures mean
//! something only with `cargo test --release -p rr-roa --test scale -- --nocapture`.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rr_roa::{Roa, RoaDelta, RoaSet, Validity};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ROAS: usize = 200_000;
const ROUTES: usize = 1_000_000;
const CHANGE: usize = 10_000;

/// One ROA in five is IPv6: /16–/24 (IPv4) or /29–/48 (IPv6), max length up to 4 more.
fn random_roa(rng: &mut Rng) -> Roa {
    let prefix = if rng.below(5) == 0 {
        let len = 29 + rng.below(20) as u8;
        let addr = (0x2u128 << 125) | (u128::from(rng.next()) << 64);
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(addr), len).unwrap())
    } else {
        let len = 16 + rng.below(9) as u8;
        IpNet::V4(Ipv4Net::new(Ipv4Addr::from(rng.next() as u32), len).unwrap())
    };
    let prefix = prefix.trunc();
    let max_len = (prefix.prefix_len() + rng.below(5) as u8).min(prefix.max_prefix_len());
    Roa::new(prefix, max_len, 64_512 + rng.below(50_000) as u32).unwrap()
}

/// 70% of routes sit under a ROA (up to 2 bits past its max length), mostly with its
/// origin; the rest are random prefixes of the same lengths.
fn random_route(rng: &mut Rng, roas: &[Roa]) -> (IpNet, Option<u32>) {
    let origin = Some(64_512 + rng.below(50_000) as u32);
    if rng.below(10) < 7 {
        let roa = roas[rng.below(roas.len() as u64) as usize];
        let p = roa.prefix();
        let len = (p.prefix_len() + rng.below(u64::from(roa.max_len() - p.prefix_len()) + 3) as u8)
            .min(p.max_prefix_len());
        let route = match p {
            IpNet::V4(n) => {
                let host = (rng.next() as u32) & !u32::from(n.netmask());
                let addr = Ipv4Addr::from(u32::from(n.network()) | host);
                IpNet::V4(Ipv4Net::new(addr, len).unwrap())
            }
            IpNet::V6(n) => {
                let host = (u128::from(rng.next()) << 64 | u128::from(rng.next()))
                    & !u128::from(n.netmask());
                let addr = Ipv6Addr::from(u128::from(n.network()) | host);
                IpNet::V6(Ipv6Net::new(addr, len).unwrap())
            }
        };
        let origin = if rng.below(5) == 0 {
            origin
        } else {
            Some(roa.asn())
        };
        (route.trunc(), origin)
    } else {
        (random_roa(rng).prefix(), origin)
    }
}

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{:>8.1} ms ({:.1} M/s)",
        d.as_secs_f64() * 1e3,
        n as f64 / d.as_secs_f64() / 1e6
    )
}

#[test]
fn million_routes_ten_thousand_roa_change() {
    let mut rng = Rng(0x5ca1e);
    let roas: Vec<Roa> = (0..ROAS).map(|_| random_roa(&mut rng)).collect();
    let routes: Vec<(IpNet, Option<u32>)> =
        (0..ROUTES).map(|_| random_route(&mut rng, &roas)).collect();

    let t = Instant::now();
    let old = RoaSet::from_roas(roas.iter().copied());
    let built = t.elapsed();

    let t = Instant::now();
    let before: Vec<Validity> = routes.iter().map(|&(p, o)| old.validate(p, o)).collect();
    let full = t.elapsed();
    let count = |v: &[Validity], want| v.iter().filter(|&&x| x == want).count();

    // The change: 5,000 ROAs withdrawn, 5,000 new.
    let removed: Vec<Roa> = (0..CHANGE / 2)
        .map(|_| {
            *old.iter()
                .nth(rng.below(old.len() as u64) as usize)
                .unwrap()
        })
        .collect();
    let added: Vec<Roa> = (0..CHANGE / 2).map(|_| random_roa(&mut rng)).collect();
    let mut new = old.clone();
    let t = Instant::now();
    new.apply(&RoaDelta::new(added, removed));
    let applied = t.elapsed();

    // What a file reload does: diff the old and new sets, then re-evaluate.
    let t = Instant::now();
    let delta = RoaSet::diff(&old, &new);
    let diffed = t.elapsed();
    let t = Instant::now();
    let affected: Vec<usize> = (0..routes.len())
        .filter(|&i| delta.affects(routes[i].0))
        .collect();
    let scanned = t.elapsed();
    let t = Instant::now();
    let mut after = before.clone();
    for &i in &affected {
        let (p, o) = routes[i];
        after[i] = new.validate(p, o);
    }
    let revalidated = t.elapsed();

    // Correctness: the incremental result equals a full re-validation.
    let t = Instant::now();
    let full_after: Vec<Validity> = routes.iter().map(|&(p, o)| new.validate(p, o)).collect();
    let full2 = t.elapsed();
    assert_eq!(after, full_after);
    let changed = (0..ROUTES).filter(|&i| before[i] != after[i]).count();
    assert!(changed > 0 && changed <= affected.len());

    println!(
        "{} ROAs ({} after the change), {} routes: {} valid, {} invalid, {} not found",
        old.len(),
        new.len(),
        ROUTES,
        count(&before, Validity::Valid),
        count(&before, Validity::Invalid),
        count(&before, Validity::NotFound),
    );
    println!("build the ROA set      {}", rate(ROAS, built));
    println!("validate all routes    {}", rate(ROUTES, full));
    println!(
        "apply a {} change   {:>8.1} ms (re-index)",
        delta.added().len() + delta.removed().len(),
        applied.as_secs_f64() * 1e3
    );
    println!(
        "diff old/new sets      {:>8.1} ms",
        diffed.as_secs_f64() * 1e3
    );
    println!(
        "find affected routes   {} -> {} under {} prefixes, {} of them changed",
        rate(ROUTES, scanned),
        affected.len(),
        delta.affected().count(),
        changed
    );
    println!(
        "re-validate affected   {}",
        rate(affected.len(), revalidated)
    );
    println!(
        "incremental total      {:>8.1} ms (diff + find + re-validate) vs full re-validation {:.1} ms",
        (diffed + scanned + revalidated).as_secs_f64() * 1e3,
        full2.as_secs_f64() * 1e3
    );
}
