//! `RoaSet::validate`, `RoaSet::diff`/`apply` and `RoaDelta::affected`/`affects` against
//! brute-force definitions, on random ROAs crowded into a small space so prefixes nest,
//! repeat and overlap.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rr_roa::{Roa, RoaDelta, RoaSet, Validity};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// xorshift64*: deterministic, no dependency.
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

/// A prefix of length `len` inside 10.0.0.0/8 or fd00::/8, random in its first `spread`
/// bits only, so that random prefixes often share networks.
fn prefix(rng: &mut Rng, v6: bool, len: u8, spread: u32) -> IpNet {
    let bits = rng.next() >> (64 - spread);
    if v6 {
        let addr = (0xfdu128 << 120) | (u128::from(bits) << (120 - spread));
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(addr), len).unwrap()).trunc()
    } else {
        let addr = (10u32 << 24) | ((bits as u32) << (24 - spread));
        IpNet::V4(Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap()).trunc()
    }
}

fn random_roa(rng: &mut Rng) -> Roa {
    let v6 = rng.below(2) == 1;
    let len = 8 + rng.below(13) as u8;
    let p = prefix(rng, v6, len, 14);
    let max_len = (len + rng.below(5) as u8).min(p.max_prefix_len());
    Roa::new(p, max_len, rng.below(5) as u32).unwrap()
}

fn random_route(rng: &mut Rng) -> IpNet {
    let v6 = rng.below(2) == 1;
    let len = 6 + rng.below(21) as u8;
    prefix(rng, v6, len, 14)
}

/// RFC 6811 section 2, literally.
fn reference(roas: &BTreeSet<Roa>, route: IpNet, origin: Option<u32>) -> Validity {
    let mut covered = false;
    for roa in roas {
        if roa.prefix().contains(&route) {
            covered = true;
            if roa.asn() != 0 && origin == Some(roa.asn()) && route.prefix_len() <= roa.max_len() {
                return Validity::Valid;
            }
        }
    }
    if covered {
        Validity::Invalid
    } else {
        Validity::NotFound
    }
}

const ORIGINS: [Option<u32>; 7] = [None, Some(0), Some(1), Some(2), Some(3), Some(4), Some(5)];

#[test]
fn validate_matches_reference() {
    let mut rng = Rng(0x5eed_0001);
    let mut checked = [0usize; 3];
    for round in 0..20 {
        let roas: BTreeSet<Roa> = (0..10 + round * 30).map(|_| random_roa(&mut rng)).collect();
        let set: RoaSet = roas.iter().copied().collect();
        assert_eq!(set.iter().copied().collect::<BTreeSet<_>>(), roas);
        let routes = (0..400)
            .map(|_| random_route(&mut rng))
            .chain(roas.iter().map(|r| r.prefix()));
        for route in routes {
            let mut covering: Vec<Roa> = set.covering(route).copied().collect();
            covering.sort_unstable();
            let want: Vec<Roa> = roas
                .iter()
                .filter(|r| r.prefix().contains(&route))
                .copied()
                .collect();
            assert_eq!(covering, want, "covering {route}");
            for origin in ORIGINS {
                let got = set.validate(route, origin);
                assert_eq!(got, reference(&roas, route, origin), "{route} {origin:?}");
                checked[got as usize] += 1;
            }
        }
    }
    // Every outcome was exercised, not just NotFound.
    assert!(checked.iter().all(|&n| n > 1000), "{checked:?}");
}

#[test]
fn diff_apply_and_affected_match_reference() {
    let mut rng = Rng(0x5eed_0002);
    for round in 0..30 {
        let old: BTreeSet<Roa> = (0..20 + round * 20).map(|_| random_roa(&mut rng)).collect();
        let mut new = old.clone();
        for _ in 0..rng.below(20) {
            if let Some(&r) = new.iter().nth(rng.below(new.len() as u64) as usize) {
                new.remove(&r);
            }
        }
        for _ in 0..rng.below(20) {
            new.insert(random_roa(&mut rng));
        }
        let (old_set, new_set): (RoaSet, RoaSet) =
            (old.iter().copied().collect(), new.iter().copied().collect());

        let delta = RoaSet::diff(&old_set, &new_set);
        let added: Vec<Roa> = new.difference(&old).copied().collect();
        let removed: Vec<Roa> = old.difference(&new).copied().collect();
        assert_eq!(delta.added(), added);
        assert_eq!(delta.removed(), removed);
        assert_eq!(delta, RoaDelta::new(added.clone(), removed.clone()));
        let mut applied = old_set.clone();
        applied.apply(&delta);
        assert_eq!(applied, new_set);

        // affected(): sorted, pairwise disjoint, each a changed prefix, covering them all.
        let changed: BTreeSet<IpNet> = added.iter().chain(&removed).map(|r| r.prefix()).collect();
        let affected: Vec<IpNet> = delta.affected().collect();
        assert!(affected.windows(2).all(|w| w[0] < w[1]));
        for (i, a) in affected.iter().enumerate() {
            assert!(changed.contains(a));
            assert!(affected
                .iter()
                .enumerate()
                .all(|(j, b)| i == j || !(a.contains(b) || b.contains(a))));
        }
        assert!(changed
            .iter()
            .all(|c| affected.iter().any(|a| a.contains(c))));

        // affects(): exactly "a changed ROA's prefix covers the route", and every route
        // whose validity changed is among them.
        let routes = (0..500)
            .map(|_| random_route(&mut rng))
            .chain(changed.iter().copied());
        for route in routes {
            let want = changed.iter().any(|c| c.contains(&route));
            assert_eq!(delta.affects(route), want, "{route}");
            for origin in ORIGINS {
                if new_set.validate(route, origin) != old_set.validate(route, origin) {
                    assert!(delta.affects(route));
                }
            }
        }
    }
}
