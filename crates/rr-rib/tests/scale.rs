//! Real tables at scale: correctness with hundreds of thousands of prefixes (no timing
//! asserts; `cargo run --release --example full_table` measures).
//!
//! Data (see /work/shared/data/bgp_text/README.md):
//! - pyasn_ipasn6_20151101.dat.gz: RouteViews 2015, prefix -> origin AS
//!   (606k IPv4 + 27.7k IPv6); the first 200k IPv4 prefixes and all IPv6 ones are used.
//! - bgpdump-m_bview.20100701.0759.txt.gz: RIPE RIS 2010 bview as text, two full-feed
//!   peers plus three small ones, with real AS paths, origins, communities, AS_SETs.

mod common;
use common::*;
use flate2::read::GzDecoder;
use ipnet::IpNet;
use rr_bgp::packet::{AsPath, AsSegment, Attributes, NextHop, Origin};
use rr_rib::{Family, Rib, RouteFilter, Update};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;

fn data_lines(name: &str) -> impl Iterator<Item = String> {
    let path = format!(
        "{}/../../../shared/data/bgp_text/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    BufReader::new(GzDecoder::new(f))
        .lines()
        .map(|l| l.unwrap())
}

const PEER_AS: u32 = 64600;

/// The pyasn table as one peer would send it: one UPDATE per (origin AS, family).
fn pyasn_updates(v4_max: usize) -> (Vec<Update>, usize, usize, usize) {
    let mut by_origin: BTreeMap<(u32, bool), Vec<IpNet>> = BTreeMap::new();
    let (mut n4, mut n6) = (0, 0);
    for line in data_lines("pyasn_ipasn6_20151101.dat.gz") {
        if line.starts_with(';') || line.is_empty() {
            continue;
        }
        let (p, asn) = line.split_once('\t').unwrap();
        let n: IpNet = p.parse().unwrap();
        let v6 = matches!(n, IpNet::V6(_));
        if v6 {
            n6 += 1;
        } else if n4 < v4_max {
            n4 += 1;
        } else {
            continue;
        }
        by_origin
            .entry((asn.parse().unwrap(), v6))
            .or_default()
            .push(n);
    }
    let sets = by_origin.len();
    let updates = by_origin
        .into_iter()
        .map(|((origin, v6), nets)| {
            let path = if origin == PEER_AS {
                vec![PEER_AS]
            } else {
                vec![PEER_AS, origin]
            };
            if v6 {
                let mut u = ann_mp(attrs(&path), ll("fe80::64"), &[]);
                let m = u.mp_reach.as_mut().unwrap();
                m.family = Family::Ipv6Unicast;
                m.nlri = nets;
                u
            } else {
                let mut u = ann4(attrs(&path), "172.20.64.1", &[]);
                u.nlri = nets
                    .into_iter()
                    .map(|n| match n {
                        IpNet::V4(n) => n,
                        IpNet::V6(_) => unreachable!(),
                    })
                    .collect();
                u
            }
        })
        .collect();
    (updates, n4, n6, sets)
}

fn withdrawal_of(u: &Update) -> Update {
    let mut w = wd4(&[]);
    w.withdrawn = u.nlri.clone();
    if let Some(m) = &u.mp_reach {
        w.mp_unreach = Some(rr_bgp::packet::MpUnreach {
            family: m.family,
            withdrawn: m.nlri.clone(),
        });
    }
    w
}

#[test]
fn pyasn_table_in_exported_and_withdrawn() {
    let (updates, n4, n6, sets) = pyasn_updates(200_000);
    assert_eq!(n4, 200_000);
    assert_eq!(n6, 27_693);
    let mut rib = rib(&[]);
    rib.add_peer(1, peer("feed", PEER_AS, Some(1)));
    rib.add_peer(2, peer("downstream", 64601, Some(2)));
    rib.peer_up(1, up_dual());
    rib.peer_up(2, up_dual());
    rib.take_exports(1);
    rib.take_exports(2);
    for u in &updates {
        assert_eq!(rib.import(1, u), rr_rib::ImportOutcome::Ok);
    }
    // pyasn lists distinct prefixes.
    assert_eq!(rib.best_count(), (n4, n6));
    assert_eq!(rib.stats(1).imported_v4, n4 as u64);
    assert_eq!(rib.stats(1).imported_v6, n6 as u64);
    let f = rib.take_fib_changes();
    assert_eq!(f.len(), n4 + n6);
    assert!(f.iter().all(|(n, nh)| {
        let gw: IpAddr = match n {
            IpNet::V4(_) => ip("172.20.64.1"),
            IpNet::V6(_) => ip("fe80::64"),
        };
        *nh == Some(rr_fib::NextHop {
            iface: 1,
            gateway: Some(gw),
        })
    }));
    // One UPDATE per attribute set, as they came in.
    let e = read(&rib.take_exports(2));
    assert_eq!(e.announced.len(), n4 + n6);
    assert_eq!(e.announcing_updates, sets);
    assert!(rib.take_exports(1).is_empty());
    let (slots, paths) = rib.table_size();
    assert_eq!(slots, n4 + n6);
    assert!(paths <= sets + 2, "{paths} attribute sets held for {sets}");

    // A late peer gets the whole table too.
    rib.add_peer(3, peer("late", 64602, Some(3)));
    rib.peer_up(3, up_dual());
    let e = read(&rib.take_exports(3));
    assert_eq!(e.announced.len(), n4 + n6);
    assert_eq!(e.eor.len(), 2);

    // Everything withdrawn: FIB empty, withdrawals to both, the table frees its slots.
    for u in &updates {
        rib.import(1, &withdrawal_of(u));
    }
    assert_eq!(rib.best_count(), (0, 0));
    let f = rib.take_fib_changes();
    assert_eq!(f.len(), n4 + n6);
    assert!(f.iter().all(|(_, nh)| nh.is_none()));
    for p in [2, 3] {
        let e = read(&rib.take_exports(p));
        assert_eq!(e.withdrawn.len(), n4 + n6);
        assert!(e.announced.is_empty());
        assert_eq!(rib.stats(p).exported, 0);
    }
    rib.take_fib_changes();
    let (slots, paths) = rib.table_size();
    assert_eq!(slots, 0, "all slots freed");
    assert!(
        paths <= 1024,
        "{paths} dead attribute sets kept (at most 1024 wait)"
    );
}

/// One line of `bgpdump -m`: peer address, peer AS, prefix, attributes, next hop.
struct Entry {
    peer: IpAddr,
    peer_as: u32,
    prefix: IpNet,
    attrs: Attributes,
    next_hop: IpAddr,
}

fn parse_bgpdump(line: &str) -> Entry {
    let f: Vec<&str> = line.split('|').collect();
    let mut segments = Vec::new();
    let mut seq = Vec::new();
    for tok in f[6].split_whitespace() {
        if let Some(set) = tok.strip_prefix('{') {
            if !seq.is_empty() {
                segments.push(AsSegment::Sequence(std::mem::take(&mut seq)));
            }
            let set = set.trim_end_matches('}');
            segments.push(AsSegment::Set(
                set.split(',').map(|a| a.parse().unwrap()).collect(),
            ));
        } else {
            seq.push(tok.parse().unwrap());
        }
    }
    if !seq.is_empty() {
        segments.push(AsSegment::Sequence(seq));
    }
    let communities = f[11]
        .split_whitespace()
        .map(|c| {
            let (hi, lo) = c.split_once(':').unwrap();
            (hi.parse::<u32>().unwrap() << 16) | lo.parse::<u32>().unwrap()
        })
        .collect();
    let aggregator = f[13]
        .split_once(' ')
        .map(|(a, ip)| (a.parse().unwrap(), ip.parse().unwrap()));
    Entry {
        peer: f[3].parse().unwrap(),
        peer_as: f[4].parse().unwrap(),
        prefix: f[5].parse().unwrap(),
        attrs: Attributes {
            origin: match f[7] {
                "IGP" => Origin::Igp,
                "EGP" => Origin::Egp,
                _ => Origin::Incomplete,
            },
            as_path: AsPath { segments },
            med: Some(f[10].parse().unwrap()),
            atomic_aggregate: f[12] == "AG",
            aggregator,
            communities,
            ..Attributes::default()
        },
        next_hop: f[8].parse().unwrap(),
    }
}

/// Reference decision (RFC 4271 9.1.2.2 for eBGP-only routes without LOCAL_PREF):
/// true when route `a` is strictly better than `b`. `(peer id, attrs)`.
fn ref_better(a: (u32, &Attributes), b: (u32, &Attributes)) -> bool {
    let (la, lb) = (a.1.as_path.len(), b.1.as_path.len());
    if la != lb {
        return la < lb;
    }
    if a.1.origin != b.1.origin {
        return a.1.origin < b.1.origin;
    }
    if a.1.as_path.first() == b.1.as_path.first() && a.1.med != b.1.med {
        return a.1.med.unwrap_or(0) < b.1.med.unwrap_or(0);
    }
    a.0 < b.0
}

#[test]
fn real_multi_peer_table_matches_reference_decision() {
    let entries: Vec<Entry> = data_lines("bgpdump-m_bview.20100701.0759.txt.gz")
        .take(150_000)
        .map(|l| parse_bgpdump(&l))
        .collect();
    let mut rib = rib(&[]);
    let mut peers: HashMap<IpAddr, u32> = HashMap::new();
    for e in &entries {
        let n = peers.len() as u32 + 1;
        peers.entry(e.peer).or_insert_with(|| {
            rib.add_peer(n, peer(&e.peer.to_string(), e.peer_as, Some(n)));
            rib.peer_up(n, up_dual());
            n
        });
    }
    assert!(peers.len() >= 3, "both full feeds and a small peer");
    // Reference: the routes each prefix has, per peer (a later line replaces).
    let mut reference: HashMap<IpNet, BTreeMap<u32, (&Attributes, IpAddr)>> = HashMap::new();
    let mut rejected = 0;
    for e in &entries {
        let p = peers[&e.peer];
        let u = match (e.prefix, e.next_hop) {
            (IpNet::V4(n), IpAddr::V4(nh)) => {
                let mut a = e.attrs.clone();
                a.next_hop = Some(nh);
                Update {
                    attrs: Some(a),
                    nlri: vec![n],
                    ..Update::default()
                }
            }
            (n, IpAddr::V6(nh)) => {
                let mut u = ann_mp(e.attrs.clone(), NextHop::V6(nh), &[]);
                u.mp_reach.as_mut().unwrap().nlri = vec![n];
                u
            }
            _ => unreachable!(),
        };
        rib.import(p, &u);
        if e.attrs.as_path.is_empty() {
            rejected += 1; // eBGP with an empty path
        } else {
            reference
                .entry(e.prefix)
                .or_default()
                .insert(p, (&e.attrs, e.next_hop));
        }
    }
    let total_filtered: u64 = peers.values().map(|&p| rib.stats(p).filtered).sum();
    assert_eq!(total_filtered, rejected);
    assert_eq!(rib.best_count().0, reference.len());

    let check = |rib: &Rib, reference: &HashMap<IpNet, BTreeMap<u32, (&Attributes, IpAddr)>>| {
        let best: HashMap<IpNet, u32> = rib
            .routes(RouteFilter::default())
            .into_iter()
            .map(|r| (r.prefix, r.peer.unwrap()))
            .collect();
        assert_eq!(best.len(), reference.len());
        for (prefix, routes) in reference {
            let chosen = best[prefix];
            let (ca, _) = routes[&chosen];
            for (&p, (a, _)) in routes {
                assert!(
                    !ref_better((p, a), (chosen, ca)),
                    "{prefix}: peer {p} ({}) beats chosen {chosen} ({})",
                    a.as_path,
                    ca.as_path
                );
            }
        }
        best
    };
    let before = check(&rib, &reference);
    let fib_all: HashMap<IpNet, Option<rr_fib::NextHop>> =
        rib.take_fib_changes().into_iter().collect();
    assert_eq!(fib_all.len(), reference.len());
    for (prefix, p) in &before {
        assert_eq!(fib_all[prefix].unwrap().iface, *p);
        assert_eq!(
            fib_all[prefix].unwrap().gateway,
            Some(reference[prefix][p].1)
        );
    }

    // The busiest peer goes down: its prefixes move to the others or disappear.
    let mut count: HashMap<u32, usize> = HashMap::new();
    for p in before.values() {
        *count.entry(*p).or_default() += 1;
    }
    let (&gone, _) = count.iter().max_by_key(|(_, c)| **c).unwrap();
    rib.peer_down(gone);
    for routes in reference.values_mut() {
        routes.remove(&gone);
    }
    reference.retain(|_, r| !r.is_empty());
    let after = check(&rib, &reference);
    let changes: HashMap<IpNet, Option<rr_fib::NextHop>> =
        rib.take_fib_changes().into_iter().collect();
    for (prefix, p) in &before {
        match (after.get(prefix), changes.get(prefix)) {
            (Some(q), Some(Some(nh))) => {
                assert_eq!(*p, gone);
                assert_eq!(nh.iface, *q);
            }
            (None, Some(None)) => assert_eq!(*p, gone),
            (Some(q), None) => assert_eq!(p, q, "{prefix}: best moved without FIB change"),
            other => panic!("{prefix}: {other:?}"),
        }
    }
    assert_eq!(rib.best_count().0, reference.len());
}
