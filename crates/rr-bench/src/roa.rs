//! `rr-bench roa`: ROA re-evaluation of a full table after a ROA change — the router's
//! table beside BIRD 2 doing the same (`configure` + `reload in` with an import table),
//! same routes, same ROA files, same run.
//!
//! What it is:
//! - **Routes** (>= 1,000,000 by default): the `rr-bench bgp` feed — the real 2015 IPv4
//!   table from the MRT capture (577,699 prefixes once its withdrawals and left-out
//!   UPDATEs are applied) and the real 2015 IPv6 table (27,693) — sent by two eBGP peers
//!   (AS4242420002 and AS4242420003, each prepending itself), so each receiver holds
//!   2 x 605,392 = 1,210,784 routes and picks a best route per prefix. `--quick`: the
//!   first 20,000 + 2,000 prefixes.
//! - **ROAs** ([`data`]): one per line of RouteViews' 2015-11-01 prefix → origin table
//!   (pyasn; 606k IPv4 + 27.7k IPv6 entries, one in ten left out by a fixed hash), max
//!   length = prefix length: real prefix → origin pairs from another collector than the
//!   IPv4 routes', so most routes are valid, some invalid and some unknown (the mix is
//!   printed).
//! - **The change** ([`data::Change`]): 10,000 ROAs (`--change`), chosen by a fixed hash
//!   among the ROAs whose prefix is routed: 5,000 removed, 5,000 replaced by a ROA with
//!   another origin or a longer max length (on this table 3,871 and 1,129: most prefixes
//!   are /24s, whose max length stays). Round 1 applies it, round 2 undoes it (the same 10,000
//!   ROAs back), round 3 applies it again, ...; both receivers get the same files in the
//!   same order, interleaved (router, then BIRD, each round). The expected outcome is
//!   computed here (`rr_roa::RoaSet::validate` over the decoded feed) and each receiver's
//!   accepted counts are checked against it every round.
//! - **Router** ([`router`]): `rr_rib::Rib` in this process, the node's table, with an
//!   import policy rejecting ROA-invalid routes; timed: parsing + indexing the files
//!   ("load") and `set_roas` + the FIB batch + the exports ("re-evaluate").
//! - **BIRD** ([`bird`]): BIRD 2 as a child process on loopback (unprivileged: dropped
//!   to `nobody` when started as root), fed over TCP by the `bgp` benchmark's feeder;
//!   timed: `configure` (re-reads the include files into its ROA tables) and
//!   `reload in` (re-runs the import filter over both import tables, updates the table
//!   and exports), until its counters show every route re-filtered.
//!
//! The comparison the issue asks for is router "re-evaluate" against BIRD `reload in`
//! (the work after the ROA data is in); "load" against `configure` and the sums are
//! shown beside it. The router's re-evaluation is incremental (only routes under a
//! changed ROA are looked at) where BIRD's reload runs the filter over every route:
//! that design difference is the point being measured, not hidden.
//!
//! What it is not: a test (it asserts nothing but prints whether each receiver's counts
//! match the computed ones), an RTR or file-watch latency measurement, or a quiet
//! measurement: 2 shared cores, the router's table and BIRD live side by side (BIRD idle
//! while the router is timed and the reverse, checked by its CPU clock before each
//! change).

mod bird;
mod data;
mod router;

use crate::bgp::feed::{self, Feed};
use crate::bgp::feeder;
use crate::progress;
use anyhow::{Context, Result};
use std::collections::HashSet;
use std::net::{Ipv6Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The receivers' ASN and the two feeders'.
const RECEIVER_ASN: u32 = 4_242_420_001;
const FEEDER_ASNS: [u32; 2] = [4_242_420_002, 4_242_420_003];

#[derive(clap::Args)]
pub struct RoaArgs {
    /// The shared data folder (with mrt/ and bgp_text/).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Rounds (default 3; 1 with --quick); each runs the router, then BIRD.
    #[arg(long)]
    rounds: Option<usize>,
    /// ROAs changed per round (default 10000; 1000 with --quick).
    #[arg(long)]
    change: Option<usize>,
    /// A small smoke run: 20,000 IPv4 + 2,000 IPv6 prefixes per peer, one round.
    #[arg(long)]
    quick: bool,
    /// Who runs: router, bird, or both (default).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Side::Router, Side::Bird])]
    sides: Vec<Side>,
    /// The BIRD 2 daemon.
    #[arg(long, default_value = "bird")]
    bird: PathBuf,
    /// How often BIRD's counters are read during its reload, in milliseconds.
    #[arg(long, default_value_t = 20)]
    poll_ms: u64,
    /// Give up on a BIRD step after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

/// A receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Side {
    Router,
    Bird,
}

/// One round's figures for one receiver.
struct Row {
    side: Side,
    round: usize,
    /// Router: parse + index; BIRD: configure.
    load: Duration,
    /// Router: set_roas + FIB + exports; BIRD: reload in.
    reevaluate: Duration,
    /// Whether the accepted counts matched the computed ones.
    correct: bool,
    text: String,
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

fn work_dir() -> PathBuf {
    std::env::temp_dir().join(format!("rr-bench-roa-{}", std::process::id()))
}

fn free_tcp_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn run(a: RoaArgs) -> Result<()> {
    let data_dir = a
        .data
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let rounds = a.rounds.unwrap_or(if a.quick { 1 } else { 3 }).max(1);
    let change_n = a.change.unwrap_or(if a.quick { 1_000 } else { 10_000 });
    let (v4, v6) = if a.quick {
        (Some(20_000), Some(2_000))
    } else {
        (None, None)
    };

    progress("roa: building the two feeds");
    let t = Instant::now();
    let mut feeds = Vec::new();
    for (i, &asn) in FEEDER_ASNS.iter().enumerate() {
        feeds.push(
            feed::build(&feed::FeedSpec {
                data_dir: data_dir.clone(),
                feeder_asn: asn,
                next_hop_v4: bird::FEEDERS[i],
                next_hop_v6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2 + i as u16),
                v4,
                v6,
            })
            .with_context(|| format!("building the feed from {}", data_dir.display()))?,
        );
    }
    let feeds: [Feed; 2] = feeds.try_into().map_err(|_| anyhow::anyhow!("two feeds"))?;
    progress("roa: the ROAs and the change");
    let table = data::table(&feeds[0])?;
    let routes: HashSet<_> = table.keys().copied().collect();
    let pyasn = data::pyasn_roas(&data_dir)?;
    let change = data::change(&pyasn.roas, &routes, change_n);
    let before = data::Verdicts::of(&table, &change.before);
    let after = data::Verdicts::of(&table, &change.after);
    let flips = data::verdict_flips(&table, &change.before, &change.after);
    let delta = rr_roa::RoaSet::diff(&change.before, &change.after);

    let dir = work_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut files = Vec::new();
    for (set, tag) in [(&change.before, "before"), (&change.after, "after")] {
        let v4 = dir.join(format!("roa_v4_{tag}.conf"));
        let v6 = dir.join(format!("roa_v6_{tag}.conf"));
        data::write_bird(set, false, &v4)?;
        data::write_bird(set, true, &v6)?;
        files.push([v4, v6]);
    }
    let prep = t.elapsed();

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let routes_total = 2 * table.len() as u64;
    let pct = |n: u64| 100.0 * n as f64 / table.len().max(1) as f64;
    println!("rr-bench roa: ROA re-evaluation of a full table after a ROA change,");
    println!("rootless-router's table beside BIRD 2 (configure + reload in), same run.");
    println!();
    println!("host: {cpus} CPUs (shared: other work on the machine shows in the figures)");
    println!(
        "routes: {routes_total} = 2 eBGP peers (AS{} and AS{}) x {} prefixes ({} IPv4 from {}, \
         {} IPv6 from {})",
        FEEDER_ASNS[0],
        FEEDER_ASNS[1],
        table.len(),
        feeds[0].v4.distinct,
        feed::MRT_FILE,
        feeds[0].v6.distinct,
        feed::V6_FILE
    );
    println!(
        "ROAs: {} from {} (prefix, max length = prefix length, origin; {} entries left \
         without one by a fixed hash, {} lines skipped): {} IPv4 + {} IPv6 after dedup",
        pyasn.roas.len(),
        feed::V6_FILE,
        pyasn.without,
        pyasn.skipped,
        change
            .before
            .iter()
            .filter(|r| matches!(r.prefix(), ipnet::IpNet::V4(_)))
            .count(),
        change
            .before
            .iter()
            .filter(|r| matches!(r.prefix(), ipnet::IpNet::V6(_)))
            .count(),
    );
    for (what, v) in [("before", &before), ("after", &after)] {
        let sum = |x: [u64; 2]| x[0] + x[1];
        println!(
            "  per peer {what}: valid {} ({:.1}%), invalid {} ({:.1}%), not found {} ({:.1}%); \
             accepted {} IPv4 + {} IPv6",
            sum(v.valid),
            pct(sum(v.valid)),
            sum(v.invalid),
            pct(sum(v.invalid)),
            sum(v.not_found),
            pct(sum(v.not_found)),
            v.accepted()[0],
            v.accepted()[1],
        );
    }
    println!(
        "change: {} ROAs ({} removed, {} origin changed, {} max length raised) = delta of {} \
         removed + {} added; {} routes per peer change verdict; odd rounds apply it, even \
         rounds undo it",
        change.removed + change.origin_changed + change.max_len_raised,
        change.removed,
        change.origin_changed,
        change.max_len_raised,
        delta.removed().len(),
        delta.added().len(),
        flips
    );
    println!(
        "prepared in {:.1} s before any clock runs (feeds encoded, ROA files written)",
        prep.as_secs_f64()
    );
    println!();

    let expected = |round: usize| {
        if round % 2 == 1 {
            after.accepted()
        } else {
            before.accepted()
        }
    };
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let result: Result<()> = std::thread::scope(|s| {
        // Whatever happens, the feeders are told to stop so that the scope can end.
        let r = (|| -> Result<()> {
            // BIRD first: its feeders must be listening before it starts.
            let mut bird_side = None;
            if a.sides.contains(&Side::Bird) {
                progress("roa: BIRD: starting and loading both feeds");
                let mut ports = [(0u32, 0u16); 2];
                for (i, f) in feeds.iter().enumerate() {
                    let l = TcpListener::bind((bird::FEEDERS[i], 0))
                        .with_context(|| format!("binding {}", bird::FEEDERS[i]))?;
                    ports[i] = (FEEDER_ASNS[i], l.local_addr()?.port());
                    let cfg = feeder::FeederConfig {
                        asn: FEEDER_ASNS[i],
                        router_id: bird::FEEDERS[i],
                        hold_time: 240,
                    };
                    let (stop, tx) = (&stop, tx.clone());
                    s.spawn(move || {
                        feeder::serve(&l, &cfg, &f.bytes, Duration::from_secs(60), stop, &tx)
                    });
                }
                let bdir = dir.join("bird");
                std::fs::create_dir_all(&bdir)?;
                for (src, name) in files[0].iter().zip(bird::ROA_FILES) {
                    std::fs::copy(src, bdir.join(name))?;
                }
                // BIRD may run as nobody: its directory and files must be readable to it.
                for p in [&dir, &bdir] {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777))?;
                }
                let config = bird::config(&bdir, RECEIVER_ASN, free_tcp_port()?, ports);
                let announced = feeds
                    .each_ref()
                    .map(|f| [f.v4.announced as u64, f.v6.announced as u64]);
                let distinct = feeds
                    .each_ref()
                    .map(|f| [f.v4.distinct as u64, f.v6.distinct as u64]);
                let mut b = bird::BirdSide::start(
                    &a.bird,
                    &bdir,
                    &config,
                    announced,
                    distinct,
                    Duration::from_secs(a.timeout),
                )?;
                let (_, rss) = b.rss_mib();
                println!(
                    "BIRD 2: both feeds in after {:.1} s; {} routes exported to the feeders; \
                 resident {:.0} MiB",
                    b.load_time.as_secs_f64(),
                    b.exported()?,
                    rss.unwrap_or(0.0)
                );
                bird_side = Some(b);
            }
            let mut router_side = None;
            if a.sides.contains(&Side::Router) {
                progress("roa: router: building the table");
                let r = router::RouterSide::load(
                    RECEIVER_ASN,
                    feeds.each_ref(),
                    FEEDER_ASNS,
                    change.before.clone(),
                )?;
                println!(
                    "router: both feeds in the table after {:.1} s; resident set grew {:.0} MiB",
                    r.load_time.as_secs_f64(),
                    r.rss_growth_mib
                );
                router_side = Some(r);
            }
            // Both start from the "before" set.
            let start = before.accepted();
            if let Some(r) = &router_side {
                check(&mut notes, "router, initial", r.accepted(), start);
            }
            if let Some(b) = &mut bird_side {
                check(&mut notes, "BIRD, initial", b.accepted()?, start);
            }
            println!();
            println!(
                "{:<8} {:>5} {:>10} {:>13} {:>9}  detail",
                "side", "round", "load (s)", "re-eval (s)", "sum (s)"
            );
            for round in 1..=rounds {
                let f = &files[round % 2];
                let want = expected(round);
                if let Some(r) = &mut router_side {
                    progress(&format!("roa: round {round}: router"));
                    let cpu0 = crate::procfs::thread_cpu_now();
                    let run = r.change(f)?;
                    let cpu = crate::procfs::thread_cpu_now().saturating_sub(cpu0);
                    let ok = check(
                        &mut notes,
                        &format!("router, round {round}"),
                        run.accepted,
                        want,
                    );
                    let c = run.change;
                    let row = Row {
                        side: Side::Router,
                        round,
                        load: run.load,
                        reevaluate: run.reevaluate,
                        correct: ok,
                        text: format!(
                            "set_roas {} s; ROAs +{} -{}; routes checked {}, validity changed {}, \
                         verdict changed {}; {} FIB changes, {} UPDATEs out; CPU {} s; \
                         filtered {}+{}; {}",
                            secs(run.set_roas),
                            c.roas_added,
                            c.roas_removed,
                            c.routes_checked,
                            c.validity_changed,
                            c.verdict_changed,
                            run.fib_changes,
                            run.updates_out,
                            secs(cpu),
                            run.filtered[0],
                            run.filtered[1],
                            if ok { "counts OK" } else { "COUNTS DIFFER" }
                        ),
                    };
                    print_row(&row);
                    rows.push(row);
                }
                if let Some(b) = &mut bird_side {
                    progress(&format!("roa: round {round}: BIRD"));
                    let run = b.change(
                        f,
                        Duration::from_millis(a.poll_ms.max(1)),
                        Duration::from_secs(a.timeout),
                    )?;
                    let ok = check(
                        &mut notes,
                        &format!("BIRD, round {round}"),
                        run.accepted,
                        want,
                    );
                    let row = Row {
                        side: Side::Bird,
                        round,
                        load: run.configure,
                        reevaluate: run.reload,
                        correct: ok,
                        text: format!(
                        "configure, then reload in done between {} and {} s ({} polls); CPU {} s; \
                         {}{}",
                        secs(run.reload_low),
                        secs(run.reload),
                        run.polls,
                        run.cpu.map_or("-".to_string(), secs),
                        run.note,
                        if ok { "counts OK" } else { "COUNTS DIFFER" }
                    ),
                    };
                    print_row(&row);
                    rows.push(row);
                }
                while let Ok(e) = rx.try_recv() {
                    if let feeder::Event::Failed { why } = e {
                        notes.push(format!("a feeder's session failed: {why}"));
                    }
                }
            }
            if let Some(b) = &bird_side {
                let (peak, now) = b.rss_mib();
                println!();
                println!(
                    "BIRD 2 resident: {:.0} MiB now, {:.0} MiB peak",
                    now.unwrap_or(0.0),
                    peak.unwrap_or(0.0)
                );
            }
            if let Some(r) = &router_side {
                println!(
                    "router table: resident set grew {:.0} MiB while it was built (this process)",
                    r.rss_growth_mib
                );
            }
            stop.store(true, Ordering::Relaxed);
            if let Some(b) = bird_side {
                b.bird.stop(Duration::from_secs(60))?;
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        r
    });
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    summary(&rows, &notes);
    Ok(())
}

/// Compares accepted counts with the computed ones; records a note when they differ.
fn check(notes: &mut Vec<String>, who: &str, got: [[u64; 2]; 2], want: [u64; 2]) -> bool {
    let ok = got.iter().all(|g| *g == want);
    if !ok {
        notes.push(format!(
            "{who}: accepted {got:?} per peer (IPv4, IPv6), computed {want:?}"
        ));
    }
    ok
}

fn print_row(r: &Row) {
    println!(
        "{:<8} {:>5} {:>10} {:>13} {:>9}  {}",
        match r.side {
            Side::Router => "router",
            Side::Bird => "BIRD 2",
        },
        r.round,
        secs(r.load),
        secs(r.reevaluate),
        secs(r.load + r.reevaluate),
        r.text
    );
}

fn summary(rows: &[Row], notes: &[String]) {
    let med = |side: Side, f: &dyn Fn(&Row) -> Duration| {
        let mut v: Vec<f64> = rows
            .iter()
            .filter(|r| r.side == side)
            .map(|r| f(r).as_secs_f64())
            .collect();
        median(&mut v)
    };
    println!();
    println!(
        "== summary: medians over {} round(s) ==",
        rows.iter().map(|r| r.round).max().unwrap_or(0)
    );
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    let (rl, rr) = (
        med(Side::Router, &|r| r.load),
        med(Side::Router, &|r| r.reevaluate),
    );
    let (bl, br) = (
        med(Side::Bird, &|r| r.load),
        med(Side::Bird, &|r| r.reevaluate),
    );
    let sum = |a: Option<f64>, b: Option<f64>| Some(a? + b?);
    println!("router: load {} s (parse + index the files), re-evaluate {} s (set_roas + FIB + exports), sum {} s", f(rl), f(rr), f(sum(rl, rr)));
    println!(
        "BIRD 2: configure {} s, reload in {} s, sum {} s",
        f(bl),
        f(br),
        f(sum(bl, br))
    );
    if let (Some(rr), Some(br)) = (rr, br) {
        println!(
            "re-evaluation: router {:.3} s vs BIRD reload {:.3} s: BIRD / router = {:.1}x — target \
             (faster than BIRD): {}",
            rr,
            br,
            br / rr.max(1e-9),
            if rr < br { "MET" } else { "NOT met" }
        );
    }
    if let (Some(r), Some(b)) = (sum(rl, rr), sum(bl, br)) {
        println!(
            "whole change (files read + re-evaluation): router {r:.3} s vs BIRD {b:.3} s: \
             BIRD / router = {:.1}x",
            b / r.max(1e-9)
        );
    }
    let wrong = rows.iter().filter(|r| !r.correct).count();
    println!(
        "decisions: {} of {} runs ended with exactly the computed accepted counts",
        rows.len() - wrong,
        rows.len()
    );
    for n in notes {
        println!("note: {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn count_check() {
        let mut notes = Vec::new();
        assert!(check(&mut notes, "x", [[5, 1], [5, 1]], [5, 1]));
        assert!(notes.is_empty());
        assert!(!check(&mut notes, "y", [[5, 1], [4, 1]], [5, 1]));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("y: "));
    }
}
