//! Measures the table with real full tables: time per phase and memory.
//!
//! `cargo run --release -p rr-rib --example full_table`
//!
//! 1. pyasn 2015 (RouteViews): 606k IPv4 + 27.7k IPv6 prefixes from one peer, one
//!    UPDATE per origin AS (about the attribute-set count of a real feed), exported to a
//!    second peer, then withdrawn.
//! 2. RIS 2010 bview text: 642k paths for 323k prefixes from two full feeds (+3 small
//!    peers), with real AS paths and communities, one UPDATE per line; then the larger
//!    feed goes down.
//!
//! 3. `full_table bench [rounds]`: only the router benchmark's feed (as rr-bench builds
//!    it): the MRT capture `mrt/bgpdump_updates.et-header.2015.gz` (89,679 UPDATEs,
//!    577,706 IPv4 prefixes) rewritten as an eBGP feed, plus the pyasn 2015 IPv6 table
//!    (27,693 prefixes, one UPDATE per origin AS), imported from one eBGP peer (import
//!    all, no limit, no other peer) followed by `take_fib_changes`, as the node does.
//!    `full_table bench [rounds] [n]` takes the FIB changes every `n` UPDATEs on the
//!    way (the node takes them every 10 ms or more), not only once at the end.
//!
//! Memory: "heap" is the bytes currently allocated, counted by a wrapper around the
//! system allocator (exact, and the table's share is the difference from the moment
//! before it was built); "RSS" is the resident set from /proc/self/status, input
//! included.

use flate2::read::GzDecoder;
use ipnet::IpNet;
use rr_bgp::packet::{
    AsPath, AsSegment, Attributes, Codec, Message, MpReach, MpUnreach, NextHop, Origin,
    FLAG_TRANSITIVE,
};
use rr_rib::{Family, LimitAction, PeerConfig, PeerUp, Policy, Rib, RibConfig, Update};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The system allocator, counting the bytes in use and the peak. The only unsafe code
/// of this package: it forwards to `System` unchanged (measurement only; the library
/// itself forbids unsafe code).
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        IN_USE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            IN_USE.fetch_sub(l.size(), Ordering::Relaxed);
            let now = IN_USE.fetch_add(new, Ordering::Relaxed) + new;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes in use now, and peak since the last reset, in MiB.
fn heap() -> (f64, f64) {
    let mib = |b: usize| b as f64 / 1048576.0;
    (
        mib(IN_USE.load(Ordering::Relaxed)),
        mib(PEAK.load(Ordering::Relaxed)),
    )
}

fn reset_peak() {
    PEAK.store(IN_USE.load(Ordering::Relaxed), Ordering::Relaxed);
}

fn data_lines(name: &str) -> impl Iterator<Item = String> {
    let path = format!(
        "{}/../../../shared/data/bgp_text/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    BufReader::new(GzDecoder::new(f))
        .lines()
        .map(|l| l.expect("readable data file"))
}

/// (VmRSS, VmHWM) in MiB.
fn rss() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn peer(name: &str, asn: u32, iface: u32) -> PeerConfig {
    PeerConfig {
        name: name.into(),
        remote_asn: asn,
        iface: Some(iface),
        import: Policy::All,
        export: Policy::All,
        import_limit: None,
        limit_action: LimitAction::Block,
        import_policy: [None, None],
        export_policy: [None, None],
        link: None,
    }
}

fn up() -> PeerUp {
    PeerUp {
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        extended_next_hop: false,
        next_hop_v4: Some(Ipv4Addr::new(172, 20, 0, 1)),
        next_hop_v6: Some("fd00:1::1".parse().expect("address")),
        next_hop_ll: Some("fe80::1".parse().expect("address")),
    }
}

fn new_rib() -> Rib {
    Rib::new(RibConfig {
        announce_communities: Vec::new(),
        roa: None,
        local_asn: 4242420001,
        router_id: Ipv4Addr::new(172, 20, 0, 1),
        announce: vec![],
    })
}

fn seq(path: Vec<u32>) -> AsPath {
    AsPath {
        segments: vec![AsSegment::Sequence(path)],
    }
}

/// Runs a phase; prints its time, the heap now and at its peak relative to `base`
/// (the heap before the table existed), and the RSS.
fn timed<T>(base: f64, what: &str, f: impl FnOnce() -> T) -> T {
    reset_peak();
    let t = Instant::now();
    let out = f();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let (now, peak) = heap();
    let (rss, _) = rss();
    println!(
        "  {what:<40} {ms:>8.1} ms  table heap {:>6.1} MiB (phase peak {:>6.1})  RSS {rss:>6.1} MiB",
        now - base,
        peak - base
    );
    out
}

fn pyasn() {
    const FEED: u32 = 64600;
    let mut by_origin: BTreeMap<(u32, bool), Vec<IpNet>> = BTreeMap::new();
    for line in data_lines("pyasn_ipasn6_20151101.dat.gz") {
        if line.starts_with(';') || line.is_empty() {
            continue;
        }
        let Some((p, asn)) = line.split_once('\t') else {
            continue;
        };
        let (Ok(n), Ok(asn)) = (p.parse::<IpNet>(), asn.parse::<u32>()) else {
            continue;
        };
        by_origin
            .entry((asn, matches!(n, IpNet::V6(_))))
            .or_default()
            .push(n);
    }
    let mut updates = Vec::new();
    let mut withdrawals = Vec::new();
    let (mut n4, mut n6) = (0, 0);
    for ((origin, v6), nets) in by_origin {
        let path = if origin == FEED {
            vec![FEED]
        } else {
            vec![FEED, origin]
        };
        let mut attrs = Attributes {
            origin: Origin::Igp,
            as_path: seq(path),
            ..Attributes::default()
        };
        if v6 {
            n6 += nets.len();
            withdrawals.push(Update {
                mp_unreach: Some(MpUnreach {
                    family: Family::Ipv6Unicast,
                    withdrawn: nets.clone(),
                }),
                ..Update::default()
            });
            updates.push(Update {
                attrs: Some(attrs),
                mp_reach: Some(MpReach {
                    family: Family::Ipv6Unicast,
                    next_hop: NextHop::V6Pair(
                        Ipv6Addr::UNSPECIFIED,
                        "fe80::64".parse().expect("address"),
                    ),
                    nlri: nets,
                }),
                ..Update::default()
            });
        } else {
            n4 += nets.len();
            let v4: Vec<_> = nets
                .into_iter()
                .filter_map(|n| match n {
                    IpNet::V4(n) => Some(n),
                    IpNet::V6(_) => None,
                })
                .collect();
            attrs.next_hop = Some(Ipv4Addr::new(172, 20, 64, 1));
            withdrawals.push(Update {
                withdrawn: v4.clone(),
                ..Update::default()
            });
            updates.push(Update {
                attrs: Some(attrs),
                nlri: v4,
                ..Update::default()
            });
        }
    }
    println!(
        "pyasn 2015: {n4} IPv4 + {n6} IPv6 prefixes in {} UPDATEs, one feed -> one downstream",
        updates.len()
    );
    let (base, _) = heap();
    println!("  input parsed: heap {base:.1} MiB");
    let mut rib = new_rib();
    rib.add_peer(1, peer("feed", FEED, 1));
    rib.add_peer(2, peer("downstream", 64601, 2));
    rib.peer_up(1, up());
    rib.peer_up(2, up());
    rib.take_exports(1);
    rib.take_exports(2);
    timed(base, "import", || {
        for u in &updates {
            rib.import(1, u);
        }
    });
    let (slots, paths) = rib.table_size();
    let per_route = |what: &str, n: usize| {
        let (now, _) = heap();
        println!(
            "  {what}: {:.1} bytes per route",
            (now - base) * 1048576.0 / n as f64
        );
    };
    println!("  table: {slots} prefixes, {paths} attribute sets");
    per_route("heap with the FIB batch and export queues pending", slots);
    let f = timed(base, "take_fib_changes", || rib.take_fib_changes());
    let fib_changes = f.len();
    drop(f);
    let out = timed(base, "take_exports (full table, downstream)", || {
        rib.take_exports(2)
    });
    println!(
        "  -> {fib_changes} FIB changes, {} UPDATEs exported",
        out.len()
    );
    drop(out);
    per_route("heap at rest (batches taken)", slots);
    rib.add_peer(3, peer("late", 64602, 3));
    rib.peer_up(3, up());
    let out = timed(base, "peer_up + take_exports (late peer)", || {
        rib.take_exports(3)
    });
    drop(out);
    timed(base, "withdraw all", || {
        for u in &withdrawals {
            rib.import(1, u);
        }
    });
    let f = timed(base, "take_fib_changes", || rib.take_fib_changes());
    drop(f);
    let out = timed(base, "take_exports (withdrawals, downstream)", || {
        rib.take_exports(2).len() + rib.take_exports(3).len()
    });
    println!("  -> {out} UPDATEs");
    rib.take_fib_changes();
    println!(
        "  after: {:?} (slots, attribute sets), table heap {:.1} MiB",
        rib.table_size(),
        heap().0 - base
    );
}

fn ris_two_feeds() {
    let mut entries = Vec::new();
    for line in data_lines("bgpdump-m_bview.20100701.0759.txt.gz") {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() < 14 {
            continue;
        }
        let mut segments = Vec::new();
        let mut seqv = Vec::new();
        for tok in f[6].split_whitespace() {
            if let Some(set) = tok.strip_prefix('{') {
                if !seqv.is_empty() {
                    segments.push(AsSegment::Sequence(std::mem::take(&mut seqv)));
                }
                segments.push(AsSegment::Set(
                    set.trim_end_matches('}')
                        .split(',')
                        .filter_map(|a| a.parse().ok())
                        .collect(),
                ));
            } else if let Ok(a) = tok.parse() {
                seqv.push(a);
            }
        }
        if !seqv.is_empty() {
            segments.push(AsSegment::Sequence(seqv));
        }
        let communities = f[11]
            .split_whitespace()
            .filter_map(|c| {
                let (hi, lo) = c.split_once(':')?;
                Some((hi.parse::<u32>().ok()? << 16) | lo.parse::<u32>().ok()?)
            })
            .collect();
        let (Ok(peer_ip), Ok(peer_as), Ok(IpNet::V4(prefix)), Ok(IpAddr::V4(nh))) = (
            f[3].parse::<IpAddr>(),
            f[4].parse::<u32>(),
            f[5].parse::<IpNet>(),
            f[8].parse::<IpAddr>(),
        ) else {
            continue;
        };
        let attrs = Attributes {
            origin: match f[7] {
                "IGP" => Origin::Igp,
                "EGP" => Origin::Egp,
                _ => Origin::Incomplete,
            },
            as_path: AsPath { segments },
            next_hop: Some(nh),
            med: f[10].parse().ok(),
            communities,
            ..Attributes::default()
        };
        entries.push((
            peer_ip,
            peer_as,
            Update {
                attrs: Some(attrs),
                nlri: vec![prefix],
                ..Update::default()
            },
        ));
    }
    println!("RIS 2010: {} paths, one UPDATE each", entries.len());
    let (base, _) = heap();
    println!("  input parsed: heap {base:.1} MiB");
    let mut rib = new_rib();
    let mut peers: HashMap<IpAddr, u32> = HashMap::new();
    let mut per_peer: HashMap<u32, usize> = HashMap::new();
    for (ip, asn, _) in &entries {
        let n = peers.len() as u32 + 1;
        let p = *peers.entry(*ip).or_insert_with(|| {
            rib.add_peer(n, peer(&ip.to_string(), *asn, n));
            rib.peer_up(n, up());
            rib.take_exports(n);
            n
        });
        *per_peer.entry(p).or_default() += 1;
    }
    timed(base, "import", || {
        for (ip, _, u) in &entries {
            rib.import(peers[ip], u);
        }
    });
    let (slots, paths) = rib.table_size();
    println!(
        "  table: {slots} prefixes, {} routes, {paths} attribute sets",
        entries.len()
    );
    let f = timed(base, "take_fib_changes", || rib.take_fib_changes().len());
    println!("  -> {f} FIB changes");
    let biggest = per_peer
        .iter()
        .max_by_key(|(_, c)| **c)
        .map(|(p, _)| *p)
        .unwrap_or(1);
    let x: usize = timed(base, "take_exports (full table to 5 peers)", || {
        peers.values().map(|&p| rib.take_exports(p).len()).sum()
    });
    println!("  -> {x} UPDATEs");
    let (now, _) = heap();
    println!(
        "  heap at rest: {:.1} bytes per route",
        (now - base) * 1048576.0 / entries.len() as f64
    );
    timed(base, "peer_down (largest feed)", || rib.peer_down(biggest));
    let f = timed(base, "take_fib_changes", || rib.take_fib_changes().len());
    let x: usize = timed(base, "take_exports (all peers)", || {
        peers.values().map(|&p| rib.take_exports(p).len()).sum()
    });
    println!(
        "  -> {f} FIB changes, {x} UPDATEs exported; best: {:?}",
        rib.best_count()
    );
}

/// The BGP messages of an MRT BGP4MP / BGP4MP_ET stream (RFC 6396 section 4.4), as
/// rr-bench's reader takes them.
fn mrt_messages(data: &[u8]) -> Vec<&[u8]> {
    let be16 = |b: &[u8], at: usize| {
        b.get(at..at + 2)
            .map(|x| u16::from_be_bytes([x[0], x[1]]))
            .expect("MRT field")
    };
    let be32 = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
            .expect("MRT field")
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= data.len() {
        let (kind, subtype, len) = (be16(data, at + 4), be16(data, at + 6), be32(data, at + 8));
        let body = &data[at + 12..at + 12 + len as usize];
        at += 12 + len as usize;
        let body = match kind {
            16 => body,
            17 => &body[4..],
            _ => continue,
        };
        let as_len = match subtype {
            0 | 6 => 2,
            4 | 7 => 4,
            _ => continue,
        };
        let afi_at = 2 * as_len + 2;
        let ip_len = if be16(body, afi_at) == 1 { 4 } else { 16 };
        out.push(&body[afi_at + 2 + 2 * ip_len..]);
    }
    out
}

/// The router benchmark's feed (see the module documentation), as decoded UPDATEs.
fn bench_feed() -> Vec<Update> {
    const FEEDER: u32 = 4242420002;
    let nh4 = Ipv4Addr::new(172, 20, 0, 2);
    let nh6: Ipv6Addr = "fd00:2::2".parse().expect("address");
    let path = format!(
        "{}/../../../shared/data/mrt/bgpdump_updates.et-header.2015.gz",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut bytes = Vec::new();
    GzDecoder::new(std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .read_to_end(&mut bytes)
        .expect("readable MRT file");
    let codec = Codec {
        four_octet_as: true,
        extended_message: false,
    };
    let mut updates = Vec::new();
    for m in mrt_messages(&bytes) {
        let Ok(Message::Update(mut u)) = Message::decode(m, &codec) else {
            continue;
        };
        if u.is_end_of_rib().is_some() || u.treat_as_withdraw.is_some() {
            continue;
        }
        // rr-bench's eBGP rewrite (feed.rs `to_ebgp`).
        let announces = !u.nlri.is_empty() || u.mp_reach.is_some();
        if let Some(a) = &mut u.attrs {
            if announces {
                a.as_path.prepend(FEEDER);
            }
            a.next_hop = (!u.nlri.is_empty()).then_some(nh4);
            a.local_pref = None;
            a.med = None;
            a.other.retain(|r| r.flags & FLAG_TRANSITIVE != 0);
        }
        updates.push(u);
    }
    let mut by_origin: BTreeMap<u32, Vec<IpNet>> = BTreeMap::new();
    for line in data_lines("pyasn_ipasn6_20151101.dat.gz") {
        let Some((p, asn)) = line.split_once('\t') else {
            continue;
        };
        if let (Ok(n @ IpNet::V6(_)), Ok(asn)) = (p.parse::<IpNet>(), asn.parse::<u32>()) {
            by_origin.entry(asn).or_default().push(n.trunc());
        }
    }
    for (origin, nlri) in by_origin {
        updates.push(Update {
            attrs: Some(Attributes {
                origin: Origin::Igp,
                as_path: seq(vec![FEEDER, origin]),
                ..Attributes::default()
            }),
            mp_reach: Some(MpReach {
                family: Family::Ipv6Unicast,
                next_hop: NextHop::V6(nh6),
                nlri,
            }),
            ..Update::default()
        });
    }
    updates
}

/// The benchmark's import: `rounds` fresh tables, each fed the whole feed from one eBGP
/// peer and then asked for its FIB changes; prints each round and the median.
fn bench(rounds: usize, every: usize) {
    let updates = bench_feed();
    println!(
        "benchmark feed: {} UPDATEs, FIB changes taken {}",
        updates.len(),
        if every == 0 {
            "at the end".to_string()
        } else {
            format!("every {every} UPDATEs and at the end")
        }
    );
    let mut totals = Vec::new();
    for round in 0..rounds {
        let (base, _) = heap();
        reset_peak();
        let mut rib = new_rib();
        rib.add_peer(1, peer("feeder", 4242420002, 1));
        rib.peer_up(1, up());
        rib.take_exports(1);
        let t = Instant::now();
        let mut n = 0;
        for (i, u) in updates.iter().enumerate() {
            rib.import(1, u);
            if every > 0 && i % every == every - 1 {
                n += rib.take_fib_changes().len();
            }
        }
        let import = t.elapsed().as_secs_f64() * 1e3;
        let t2 = Instant::now();
        let changes = rib.take_fib_changes();
        let fib = t2.elapsed().as_secs_f64() * 1e3;
        n += changes.len();
        drop(changes);
        let (slots, paths) = rib.table_size();
        let (now, peak) = heap();
        println!(
            "  round {round}: import {import:7.1} ms + (last) take_fib_changes {fib:6.1} ms = {:7.1} ms; \
             {n} FIB changes, {slots} prefixes, {paths} attribute sets; \
             at rest {:.1} B/route, peak {:.1} B/route",
            import + fib,
            (now - base) * 1048576.0 / slots as f64,
            (peak - base) * 1048576.0 / slots as f64,
        );
        totals.push(import + fib);
        drop(rib);
    }
    totals.sort_by(f64::total_cmp);
    if let Some(m) = totals.get(totals.len() / 2) {
        println!("  median import + take_fib_changes: {m:.1} ms");
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("bench") {
        let rounds = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
        bench(
            rounds,
            args.next().and_then(|r| r.parse().ok()).unwrap_or(0),
        );
        return;
    }
    pyasn();
    println!();
    ris_two_feeds();
}
