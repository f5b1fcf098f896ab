//! `rr-bench fib`: the forwarding table on a full Internet table, beside the `prefix-trie`
//! crate (a TreeBitMap, `PrefixMap::get_lpm`) on the same routes and addresses.
//!
//! What it is: it loads a real full table (RouteViews 2015-11-01 as converted by pyasn:
//! 606k IPv4 + 27.7k IPv6 prefixes, `shared/data/bgp_text/pyasn_ipasn6_20151101.dat.gz`),
//! spreads next hops round-robin over `--tunnels` tunnels, and measures for `rr_fib` and
//! `prefix-trie` (twice: with `NextHop` values, as a FIB would use it directly, and with
//! 4-byte indices into a next-hop list, interned as ours are — the faster of the two):
//! build time (ours by direct `Fib::insert` and by `SharedFib::apply` in batches), memory
//! (structure sizes, and each structure built alone in a fresh child process: its RSS
//! growth and peak RSS growth), lookups per CPU second
//! on the same addresses (half inside random table prefixes, half uniformly random — for
//! IPv6 uniform within 2000::/3, the global unicast space, since nearly all of the rest
//! misses at the first step for both), single thread, in interleaved rounds, and the cost of
//! a batch of changes on the full table. Before timing, both are checked to agree on every
//! address's matched prefix and next hop.
//!
//! Unless `--no-synthetic`, it repeats everything on a synthetic 1,000,000 IPv4 + 200,000
//! IPv6 table: the real one plus more-specifics of random real prefixes (random host
//! bits), each length drawn from the real table's own length histogram and redrawn until
//! it is no shorter than its parent's and no longer than /24 (IPv4) or /48 (IPv6), the
//! longest the default-free zone accepts — the way the table has grown since 2015, mostly
//! deaggregation into /24s and /48s.
//!
//! What it is not: a test (it fails only on set-up errors or a disagreement between the
//! two tables), or a multi-core benchmark.

use crate::procfs::thread_cpu_now;
use anyhow::{bail, Context, Result};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use rr_fib::{Change, FamilyStats, Fib, NextHop, SharedFib};
use std::collections::HashSet;
use std::hint::black_box;
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct FibArgs {
    /// The shared data directory (default: ../../../shared/data from this crate's source).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Addresses looked up per family in each round.
    #[arg(long, default_value_t = 10_000_000)]
    addresses: usize,
    /// Interleaved rounds (ours, prefix-trie, ours, prefix-trie, ...).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Tunnels the next hops are spread over, round-robin.
    #[arg(long, default_value_t = 16)]
    tunnels: u32,
    /// Routes per `SharedFib::apply` call when building in batches.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Only the real table, not the synthetic 1M + 200k one.
    #[arg(long)]
    no_synthetic: bool,
    /// (Internal) build one structure in this process and print its memory: `ours`,
    /// `shared` or `prefix-trie`, on the real table or (with --synthetic-table) the other.
    #[arg(long, hide = true)]
    measure: Option<String>,
    #[arg(long, hide = true)]
    synthetic_table: bool,
}

const TABLE: &str = "bgp_text/pyasn_ipasn6_20151101.dat.gz";

/// splitmix64: a deterministic generator, so every run draws the same tables and addresses.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn u128(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }
}

struct Table {
    name: String,
    v4: Vec<Ipv4Net>,
    v6: Vec<Ipv6Net>,
}

fn load(path: &std::path::Path) -> Result<Table> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    let (mut seen4, mut seen6) = (HashSet::new(), HashSet::new());
    for line in reader.lines() {
        let line = line.with_context(|| format!("read {}", path.display()))?;
        if line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        let field = line.split('\t').next().unwrap_or_default();
        match field.parse::<IpNet>() {
            Ok(IpNet::V4(p)) if seen4.insert(p.trunc()) => v4.push(p.trunc()),
            Ok(IpNet::V6(p)) if seen6.insert(p.trunc()) => v6.push(p.trunc()),
            Ok(_) => {}
            Err(e) => bail!("{}: bad prefix {field:?}: {e}", path.display()),
        }
    }
    Ok(Table {
        name: "real: RouteViews 2015-11-01 (pyasn)".into(),
        v4,
        v6,
    })
}

/// More-specifics of random `real` prefixes until there are `target` distinct ones, each
/// length drawn from the real histogram (a random real prefix's length), redrawn until it
/// is no shorter than the parent's and at most `longest`.
fn extend(
    real: &[u128],
    lens: &[u8],
    bits: u8,
    longest: u8,
    target: usize,
    rng: &mut Rng,
) -> Vec<(u128, u8)> {
    let mask = |len: u8| match len {
        0 => 0,
        l => (u128::MAX << (128 - u32::from(l))) >> (128 - u32::from(bits)),
    };
    let mut out: Vec<(u128, u8)> = real.iter().copied().zip(lens.iter().copied()).collect();
    let mut seen: HashSet<(u128, u8)> = out.iter().copied().collect();
    while out.len() < target && !real.is_empty() {
        let i = rng.below(real.len());
        let (parent, plen) = (real[i], lens[i]);
        let Some(len) = (0..8)
            .map(|_| lens[rng.below(lens.len())])
            .find(|&l| l >= plen && l <= longest)
        else {
            continue;
        };
        let host = rng.u128() & mask(bits) & !mask(plen);
        let net = (parent | host) & mask(len);
        if seen.insert((net, len)) {
            out.push((net, len));
        }
    }
    out
}

fn synthesize(real: &Table, v4_target: usize, v6_target: usize) -> Table {
    let mut rng = Rng(0x5eed_f1b0);
    let keys4: Vec<u128> = real
        .v4
        .iter()
        .map(|p| u32::from(p.network()).into())
        .collect();
    let lens4: Vec<u8> = real.v4.iter().map(|p| p.prefix_len()).collect();
    let keys6: Vec<u128> = real.v6.iter().map(|p| u128::from(p.network())).collect();
    let lens6: Vec<u8> = real.v6.iter().map(|p| p.prefix_len()).collect();
    let v4 = extend(&keys4, &lens4, 32, 24, v4_target, &mut rng)
        .into_iter()
        .filter_map(|(k, l)| Ipv4Net::new(Ipv4Addr::from(k as u32), l).ok())
        .collect();
    let v6 = extend(&keys6, &lens6, 128, 48, v6_target, &mut rng)
        .into_iter()
        .filter_map(|(k, l)| Ipv6Net::new(Ipv6Addr::from(k), l).ok())
        .collect();
    Table {
        name: format!(
            "synthetic: the real table + more-specifics to {v4_target} IPv4 + {v6_target} IPv6"
        ),
        v4,
        v6,
    }
}

fn next_hop(i: usize, tunnels: u32) -> NextHop {
    let t = (i as u32) % tunnels.max(1);
    NextHop {
        iface: t,
        gateway: Some(IpAddr::V6(Ipv6Addr::new(
            0xfe80,
            0,
            0,
            0,
            0,
            0,
            0,
            t as u16 + 1,
        ))),
    }
}

/// Resident set size of this process, from `/proc/self/statm` (pages).
fn rss() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * page)
}

/// Peak resident set size of this process (`VmHWM` in `/proc/self/status`), in bytes.
fn peak_rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<usize>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Memory of one structure built in a fresh process: RSS growth when built and the
/// growth of the peak RSS (hash-table doublings and arena growth on the way).
#[derive(Clone, Copy, Debug, Default)]
struct Rss {
    after: usize,
    peak: usize,
}

/// The child's side of `--measure`: load, settle, reset the peak, build, report.
fn measure_here(t: &Table, what: &str, a: &FibArgs) -> Result<()> {
    let routes = changes(t, a.tunnels);
    let base = rss();
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0); without it
    // the peak from loading the data stands and the peak growth reads low.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let base_peak = peak_rss();
    let keep: Box<dyn std::any::Any> = match what {
        "ours" => Box::new(build_ours(&routes)),
        "shared" => Box::new(build_batched(&routes, a.batch)?.0),
        "prefix-trie" => Box::new(build_trie(t, a.tunnels)),
        "prefix-trie-nh" => Box::new(build_trie_nh(t, a.tunnels)),
        other => bail!("--measure {other}: not ours, shared, prefix-trie or prefix-trie-nh"),
    };
    let after = rss();
    println!(
        "RSS {} {}",
        after.saturating_sub(base),
        peak_rss().saturating_sub(base_peak)
    );
    drop(keep);
    Ok(())
}

/// Runs `--measure what` in a child process.
fn measure_child(what: &str, a: &FibArgs, synthetic: bool) -> Result<Rss> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args([
        "fib",
        "--measure",
        what,
        "--tunnels",
        &a.tunnels.to_string(),
    ]);
    cmd.args(["--batch", &a.batch.to_string()]);
    if let Some(d) = &a.data {
        cmd.arg("--data").arg(d);
    }
    if synthetic {
        cmd.arg("--synthetic-table");
    }
    let out = cmd.output().context("run the measuring child")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RSS "))
        .with_context(|| {
            format!(
                "child printed no RSS line: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let mut f = line
        .split_whitespace()
        .map(|x| x.parse::<usize>().unwrap_or(0));
    Ok(Rss {
        after: f.next().unwrap_or(0),
        peak: f.next().unwrap_or(0),
    })
}

fn mb(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// prefix-trie's side, as a FIB would use it directly: `NextHop` values.
struct TriesNh {
    v4: PrefixMap<Ipv4Net, NextHop>,
    v6: PrefixMap<Ipv6Net, NextHop>,
}

fn build_trie_nh(t: &Table, tunnels: u32) -> TriesNh {
    let mut v4 = PrefixMap::new();
    let mut v6 = PrefixMap::new();
    for (i, p) in t.v4.iter().enumerate() {
        v4.insert(*p, next_hop(i, tunnels));
    }
    for (i, p) in t.v6.iter().enumerate() {
        v6.insert(*p, next_hop(t.v4.len() + i, tunnels));
    }
    TriesNh { v4, v6 }
}

/// prefix-trie's side with next hops interned as ours are: values are 4-byte indices into
/// `hops`, resolved to a `NextHop` after the match (the stronger baseline: its cells stay
/// small).
struct Tries {
    v4: PrefixMap<Ipv4Net, u32>,
    v6: PrefixMap<Ipv6Net, u32>,
    hops: Vec<NextHop>,
}

impl Tries {
    fn hop(&self, i: &u32) -> NextHop {
        self.hops.get(*i as usize).copied().unwrap_or(NextHop {
            iface: u32::MAX,
            gateway: None,
        })
    }
}

fn build_ours(routes: &[Change]) -> Fib {
    let mut f = Fib::new();
    for (p, nh) in routes {
        if let Some(nh) = nh {
            f.insert(*p, *nh);
        }
    }
    f
}

fn build_trie(t: &Table, tunnels: u32) -> Tries {
    let mut v4 = PrefixMap::new();
    let mut v6 = PrefixMap::new();
    let t_max = tunnels.max(1);
    for (i, p) in t.v4.iter().enumerate() {
        v4.insert(*p, i as u32 % t_max);
    }
    for (i, p) in t.v6.iter().enumerate() {
        v6.insert(*p, (t.v4.len() + i) as u32 % t_max);
    }
    let hops = (0..t_max as usize).map(|i| next_hop(i, tunnels)).collect();
    Tries { v4, v6, hops }
}

/// Batches through `SharedFib::apply`: (table, total time, slowest batch).
fn build_batched(routes: &[Change], batch: usize) -> Result<(SharedFib, Duration, Duration)> {
    let shared = SharedFib::new(Fib::new());
    let mut slowest = Duration::ZERO;
    let t = Instant::now();
    for chunk in routes.chunks(batch.max(1)) {
        let b = Instant::now();
        shared.apply(chunk)?;
        slowest = slowest.max(b.elapsed());
    }
    Ok((shared, t.elapsed(), slowest))
}

/// Half inside random table prefixes (random host bits), half uniform in `uniform`.
fn addresses(
    keys: &[(u128, u8)],
    bits: u8,
    uniform: (u128, u8),
    n: usize,
    rng: &mut Rng,
) -> Vec<u128> {
    let host_mask = |len: u8| -> u128 {
        let all = u128::MAX >> (128 - u32::from(bits));
        all.checked_shr(u32::from(len)).unwrap_or(0)
    };
    (0..n)
        .map(|i| {
            if i % 2 == 0 && !keys.is_empty() {
                let (k, l) = keys[rng.below(keys.len())];
                k | (rng.u128() & host_mask(l))
            } else {
                uniform.0 | (rng.u128() & host_mask(uniform.1))
            }
        })
        .collect()
}

/// Lookups per CPU second of `f` over `items`.
fn rate<T>(items: &[T], mut f: impl FnMut(&T) -> u64) -> f64 {
    let t = thread_cpu_now();
    let mut sum = 0u64;
    for x in items {
        sum = sum.wrapping_add(f(x));
    }
    black_box(sum);
    items.len() as f64 / (thread_cpu_now() - t).as_secs_f64().max(1e-9)
}

fn family_line(name: &str, s: &FamilyStats) -> String {
    format!(
        "{name}: {} routes, {} = {:.1} B/route (trie {}: {} dense + {} run-list nodes; route maps {})",
        s.routes,
        mb(s.trie_bytes + s.map_bytes),
        s.bytes_per_route(),
        mb(s.trie_bytes),
        s.dense_nodes,
        s.run_nodes,
        mb(s.map_bytes)
    )
}

/// The table as changes: next hops round-robin over `tunnels`.
fn changes(t: &Table, tunnels: u32) -> Vec<Change> {
    t.v4.iter()
        .map(|p| IpNet::V4(*p))
        .chain(t.v6.iter().map(|p| IpNet::V6(*p)))
        .enumerate()
        .map(|(i, p)| (p, Some(next_hop(i, tunnels))))
        .collect()
}

fn bench_table(t: &Table, a: &FibArgs, synthetic: bool) -> Result<()> {
    let tunnels = a.tunnels;
    println!();
    println!(
        "== {}: {} IPv4 + {} IPv6 prefixes, next hops round-robin over {} tunnels ==",
        t.name,
        t.v4.len(),
        t.v6.len(),
        tunnels
    );
    let routes = changes(t, tunnels);
    let n_routes = routes.len() as f64;

    // Memory: structure sizes, and each structure built alone in a fresh process.
    crate::progress("fib: memory");
    let ours = build_ours(&routes);
    let tries = build_trie(t, tunnels);
    let tries_nh = build_trie_nh(t, tunnels);
    let (shared, _, _) = build_batched(&routes, a.batch)?;
    let m_ours = measure_child("ours", a, synthetic)?;
    let m_shared = measure_child("shared", a, synthetic)?;
    let m_trie = measure_child("prefix-trie", a, synthetic)?;
    let m_trie_nh = measure_child("prefix-trie-nh", a, synthetic)?;
    let s = ours.stats();
    let per = |b: usize| b as f64 / n_routes;
    println!("memory, ours: one Fib's structures (by capacity):");
    println!("  {}", family_line("IPv4", &s.v4));
    println!("  {}", family_line("IPv6", &s.v6));
    println!(
        "  next hops: {} interned, {} B; all together {} = {:.1} B/route",
        s.next_hops,
        s.next_hop_bytes,
        mb(s.total_bytes()),
        per(s.total_bytes())
    );
    println!(
        "memory, built alone in a fresh process (RSS growth when built / growth of the peak RSS):\n  \
         ours Fib by insert          {} = {:.1} B/route / {} = {:.1} B/route\n  \
         ours SharedFib by apply     {} = {:.1} B/route / {} = {:.1} B/route (two copies, left-right)\n  \
         prefix-trie PrefixMap<_, u32> {} = {:.1} B/route / {} = {:.1} B/route \
         (its own count, mem_size: IPv4 {:.1} B/route, IPv6 {:.1} B/route)\n  \
         prefix-trie PrefixMap<_, NextHop> {} = {:.1} B/route / {} = {:.1} B/route",
        mb(m_ours.after),
        per(m_ours.after),
        mb(m_ours.peak),
        per(m_ours.peak),
        mb(m_shared.after),
        per(m_shared.after),
        mb(m_shared.peak),
        per(m_shared.peak),
        mb(m_trie.after),
        per(m_trie.after),
        mb(m_trie.peak),
        per(m_trie.peak),
        tries.v4.mem_size() as f64 / t.v4.len().max(1) as f64,
        tries.v6.mem_size() as f64 / t.v6.len().max(1) as f64,
        mb(m_trie_nh.after),
        per(m_trie_nh.after),
        mb(m_trie_nh.peak),
        per(m_trie_nh.peak),
    );

    // Agreement on every address before timing anything.
    crate::progress("fib: addresses and cross-check");
    let mut rng = Rng(0xadd7_e55e5);
    let keys4: Vec<(u128, u8)> =
        t.v4.iter()
            .map(|p| (u128::from(u32::from(p.network())), p.prefix_len()))
            .collect();
    let keys6: Vec<(u128, u8)> =
        t.v6.iter()
            .map(|p| (u128::from(p.network()), p.prefix_len()))
            .collect();
    let a4: Vec<Ipv4Addr> = addresses(&keys4, 32, (0, 0), a.addresses, &mut rng)
        .into_iter()
        .map(|x| Ipv4Addr::from(x as u32))
        .collect();
    let a6: Vec<Ipv6Addr> = addresses(&keys6, 128, (0x2000 << 112, 3), a.addresses, &mut rng)
        .into_iter()
        .map(Ipv6Addr::from)
        .collect();
    let n4: Vec<Ipv4Net> = a4.iter().map(|&x| Ipv4Net::from(x)).collect();
    let n6: Vec<Ipv6Net> = a6.iter().map(|&x| Ipv6Net::from(x)).collect();
    let fib = shared.load_full();
    let mut hits = [0usize; 2];
    for (x, n) in a4.iter().zip(&n4) {
        let mine = fib.lookup_v4(*x);
        let theirs = tries.v4.get_lpm(n).map(|(p, i)| (p, tries.hop(i)));
        if tries_nh.v4.get_lpm(n).map(|(p, h)| (p, *h)) != theirs {
            bail!("IPv4 {x}: prefix-trie disagrees with itself");
        }
        if mine != theirs
            || ours.lookup_v4(*x) != theirs
            || fib.lookup_nh_v4(*x) != theirs.map(|t| t.1)
        {
            bail!("IPv4 {x}: ours {mine:?}, prefix-trie {theirs:?}");
        }
        hits[0] += usize::from(mine.is_some());
    }
    for (x, n) in a6.iter().zip(&n6) {
        let mine = fib.lookup_v6(*x);
        let theirs = tries.v6.get_lpm(n).map(|(p, i)| (p, tries.hop(i)));
        if tries_nh.v6.get_lpm(n).map(|(p, h)| (p, *h)) != theirs {
            bail!("IPv6 {x}: prefix-trie disagrees with itself");
        }
        if mine != theirs
            || ours.lookup_v6(*x) != theirs
            || fib.lookup_nh_v6(*x) != theirs.map(|t| t.1)
        {
            bail!("IPv6 {x}: ours {mine:?}, prefix-trie {theirs:?}");
        }
        hits[1] += usize::from(mine.is_some());
    }
    println!(
        "agreement: ours (direct and batched) and prefix-trie give the same prefix and next hop for all \
         {} IPv4 ({:.0}% matched a route) and {} IPv6 ({:.0}% matched) addresses",
        a4.len(),
        100.0 * hits[0] as f64 / a4.len().max(1) as f64,
        a6.len(),
        100.0 * hits[1] as f64 / a6.len().max(1) as f64
    );
    drop(fib);

    // Lookups, interleaved.
    crate::progress("fib: lookups");
    // Per family: ours next hop only, ours with prefix, prefix-trie (u32), prefix-trie (NextHop).
    let mut r: [Vec<f64>; 8] = Default::default();
    for _ in 0..a.rounds.max(1) {
        r[0].push(rate(&a4, |x| {
            ours.lookup_nh_v4(*x).map_or(0, |h| u64::from(h.iface))
        }));
        r[1].push(rate(&a4, |x| {
            ours.lookup_v4(*x)
                .map_or(0, |(p, h)| u64::from(h.iface + u32::from(p.prefix_len())))
        }));
        r[2].push(rate(&n4, |x| {
            tries
                .v4
                .get_lpm(x)
                .map_or(0, |(_, i)| u64::from(tries.hop(i).iface))
        }));
        r[3].push(rate(&n4, |x| {
            tries_nh
                .v4
                .get_lpm(x)
                .map_or(0, |(_, h)| u64::from(h.iface))
        }));
        r[4].push(rate(&a6, |x| {
            ours.lookup_nh_v6(*x).map_or(0, |h| u64::from(h.iface))
        }));
        r[5].push(rate(&a6, |x| {
            ours.lookup_v6(*x)
                .map_or(0, |(p, h)| u64::from(h.iface + u32::from(p.prefix_len())))
        }));
        r[6].push(rate(&n6, |x| {
            tries
                .v6
                .get_lpm(x)
                .map_or(0, |(_, i)| u64::from(tries.hop(i).iface))
        }));
        r[7].push(rate(&n6, |x| {
            tries_nh
                .v6
                .get_lpm(x)
                .map_or(0, |(_, h)| u64::from(h.iface))
        }));
    }
    let m: Vec<f64> = r.iter().map(|v| median(v.clone())).collect();
    let show = |x: f64| format!("{:5.1} M/s ({:5.1} ns)", x / 1e6, 1e9 / x);
    println!(
        "lookups per CPU second, 1 thread, median of {} interleaved rounds of {} addresses per family \
         (half inside random table prefixes, half uniform; IPv6 uniform within 2000::/3):",
        a.rounds.max(1),
        a.addresses,
    );
    for (name, k) in [("IPv4", 0), ("IPv6", 4)] {
        println!(
            "  {name}  ours lookup_nh {}, with the prefix {} | prefix-trie get_lpm: u32 values {}, \
             NextHop values {} | ours / prefix-trie: {:.2}x and {:.2}x ({:.2}x and {:.2}x with the prefix)",
            show(m[k]),
            show(m[k + 1]),
            show(m[k + 2]),
            show(m[k + 3]),
            m[k] / m[k + 2],
            m[k] / m[k + 3],
            m[k + 1] / m[k + 2],
            m[k + 1] / m[k + 3],
        );
    }
    let all = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{:.1}", x / 1e6))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "  each round (M/s): IPv4 ours {} | prefix-trie u32 {} | NextHop {}; IPv6 ours {} | \
         prefix-trie u32 {} | NextHop {}",
        all(&r[0]),
        all(&r[2]),
        all(&r[3]),
        all(&r[4]),
        all(&r[6]),
        all(&r[7]),
    );

    // Build times, interleaved.
    crate::progress("fib: build times");
    drop((tries, tries_nh, shared));
    let rounds = a.rounds.max(2);
    let mut b: [Vec<f64>; 3] = Default::default();
    let mut slowest = Vec::new();
    for _ in 0..rounds {
        let t0 = Instant::now();
        black_box(build_ours(&routes));
        b[0].push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        black_box(build_trie(t, tunnels));
        b[1].push(t0.elapsed().as_secs_f64());
        let (s, total, max) = build_batched(&routes, a.batch)?;
        black_box(s);
        b[2].push(total.as_secs_f64());
        slowest.push(max.as_secs_f64());
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    let batches = routes.len().div_ceil(a.batch.max(1));
    println!(
        "build, wall time, best of {rounds}: ours Fib::insert {:.3} s ({:.2} M routes/s); prefix-trie insert \
         {:.3} s ({:.2} M routes/s); ours SharedFib::apply in {batches} batches of {} {:.3} s \
         ({:.2} ms per batch; slowest batch {:.1} ms, median over rounds)",
        best(&b[0]),
        n_routes / best(&b[0]) / 1e6,
        best(&b[1]),
        n_routes / best(&b[1]) / 1e6,
        a.batch,
        best(&b[2]),
        1e3 * best(&b[2]) / batches.max(1) as f64,
        1e3 * median(slowest),
    );

    // Churn on the full table: what a batch costs now, against a full copy (the old way
    // of publishing any change).
    crate::progress("fib: churn");
    let (shared, _, _) = build_batched(&routes, a.batch)?;
    let mut rng = Rng(0xc4u64 << 32);
    let mut line = Vec::new();
    for size in [1_000, 10_000] {
        let mut times = Vec::new();
        for round in 0..20 {
            let batch: Vec<Change> = (0..size)
                .map(|k| {
                    let (p, _) = routes[rng.below(routes.len())];
                    if k % 4 == 0 {
                        (p, None)
                    } else {
                        (p, Some(next_hop(round + k, tunnels)))
                    }
                })
                .collect();
            let t0 = Instant::now();
            shared.apply(&batch)?;
            times.push(t0.elapsed().as_secs_f64());
        }
        line.push(format!("{size} changes {:.2} ms", 1e3 * median(times)));
    }
    let mut copies = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let copy = Fib::clone(&shared.load());
        copies.push(t0.elapsed().as_secs_f64());
        drop(copy);
    }
    println!(
        "churn on the full table, SharedFib::apply of random changes (3/4 new next hops, 1/4 \
         withdrawals), median of 20: {}; one full copy of the table (what publishing any \
         change cost before) {:.2} ms",
        line.join(", "),
        1e3 * median(copies)
    );
    Ok(())
}

pub fn run(a: FibArgs) -> Result<()> {
    if a.measure.is_none() {
        crate::progress("fib: start");
    }
    let data = a
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let real = load(&data.join(TABLE))?;
    if let Some(what) = &a.measure {
        let table = if a.synthetic_table {
            synthesize(&real, 1_000_000, 200_000)
        } else {
            real
        };
        return measure_here(&table, what, &a);
    }
    println!("rr-bench fib: the forwarding table (rr_fib) on a full Internet table, beside prefix-trie's");
    println!("PrefixMap (a TreeBitMap) on the same routes and addresses.");
    println!("data: {}", data.join(TABLE).display());
    bench_table(&real, &a, false)?;
    if !a.no_synthetic {
        let synth = synthesize(&real, 1_000_000, 200_000);
        drop(real);
        bench_table(&synth, &a, true)?;
    }
    Ok(())
}
