//! `rr-bench bgp`: how long a full table takes from a BGP peer into the forwarding
//! table, and how much memory that takes — rootless-router beside BIRD 2, same feed,
//! same sender, same run.
//!
//! What it is: the feed ([`feed`]: the real 2015 IPv4 table as its 89,679 captured
//! UPDATEs plus the real 2015 IPv6 table, rewritten as one eBGP peer's advertisements,
//! optionally scaled up synthetically) is encoded once, in memory. Then, in interleaved
//! rounds, each receiver gets it from the same minimal BGP speaker ([`feeder`]) over TCP:
//! 1. **rootless-router** ([`router`]): the release binary, one `[[bgp]]` session with
//!    `transport = "host"` to the feeder on 127.0.0.1; done when its forwarding table
//!    (`show-bgp` → `fib_v4 + fib_v6`) holds every prefix;
//! 2. **BIRD 2, table** ([`bird`]): `import all` into its tables; done when its BGP
//!    channels' `imported` counters reach every prefix;
//! 3. **BIRD 2, kernel FIB**: the same plus `protocol kernel` for both families, in a
//!    network namespace of its own; done when that namespace's kernel tables hold every
//!    prefix. This is the like-for-like comparison for time: both end with the routes in
//!    a forwarding table.
//!
//! Each run's clock starts when the session is Established and the feeder starts
//! writing, and stops at the first poll (every `--poll-ms`) that sees every prefix.
//! Memory is the receiver's peak resident set (`VmHWM`); CPU is its user + system time
//! (for BIRD with a kernel protocol that includes the kernel's work of installing the
//! routes, done in BIRD's netlink system calls).
//!
//! What it is not: a test (it asserts nothing beyond the receivers ending with every
//! prefix), a churn or convergence benchmark (one peer, no withdrawals beyond the
//! capture's, no path selection among peers), or a quiet measurement: the machine's
//! other load is shown beside each run. BIRD's peak RSS does not include the kernel's
//! memory for the FIB it programs; the router's includes its own FIB.

pub(crate) mod bird;
pub(crate) mod feed;
pub(crate) mod feeder;
mod mrt;
mod router;

use crate::{procfs, progress};
use anyhow::{Context, Result};
use bird::Counts;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The feeder's ASN and the receivers' (DN42 numbers, on no path of the 2015 tables).
const FEEDER_ASN: u32 = 4_242_420_002;
const RECEIVER_ASN: u32 = 4_242_420_001;

#[derive(clap::Args)]
pub struct BgpArgs {
    /// The shared data folder (with mrt/ and bgp_text/).
    #[arg(long)]
    data: Option<PathBuf>,
    /// IPv4 prefixes in the feed (default: the real table, 577,7xx): fewer takes the first
    /// ones, more adds synthetic prefixes (the real ones moved elsewhere in the address
    /// space, same lengths and attributes). The full table: 1000000.
    #[arg(long)]
    v4: Option<usize>,
    /// IPv6 prefixes likewise (default: the real table, 27,693; the issue's: 200000).
    #[arg(long)]
    v6: Option<usize>,
    /// Rounds; each runs every receiver once, in order.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Receivers, in order within a round.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Receiver::Router, Receiver::Bird, Receiver::BirdKernel])]
    receivers: Vec<Receiver>,
    /// The router binary (default: `rootless-router` next to this executable).
    #[arg(long)]
    router: Option<PathBuf>,
    /// The BIRD 2 daemon.
    #[arg(long, default_value = "bird")]
    bird: PathBuf,
    /// How often the receiver's route count is read, in milliseconds.
    #[arg(long, default_value_t = 20)]
    poll_ms: u64,
    /// Give up on a receiver after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

/// Who receives the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Receiver {
    /// rootless-router; done when its forwarding table holds the feed.
    Router,
    /// BIRD 2 without a kernel protocol; done when its table holds the feed.
    Bird,
    /// BIRD 2 with kernel protocols in a namespace; done when the kernel FIB holds it.
    BirdKernel,
}

impl Receiver {
    fn label(self) -> &'static str {
        match self {
            Receiver::Router => "rootless-router (FIB)",
            Receiver::Bird => "BIRD 2 (table)",
            Receiver::BirdKernel => "BIRD 2 (kernel FIB)",
        }
    }
}

/// One receiver's run.
struct RunResult {
    receiver: Receiver,
    round: usize,
    /// Prefixes seen at the end.
    reached: Counts,
    /// From Established to every prefix in the FIB / table; `None` if never.
    time: Option<Duration>,
    /// When the last poll that still saw the feed incomplete was answered: the run
    /// finished between this and `time`.
    time_low: Option<Duration>,
    /// From Established to the last byte of the feed handed to TCP.
    sent: Option<Duration>,
    peak_rss_kib: Option<u64>,
    /// Resident set once started, before the session: the receiver with empty tables.
    idle_rss_kib: Option<u64>,
    /// The receiver's user + system time over the whole run (start-up included).
    cpu: Option<Duration>,
    /// Everything else on the machine, in cores, over the timed interval.
    other_cores: Option<f64>,
    polls: u64,
    /// Mean time one poll took.
    poll_time: Duration,
    /// An independent count after the clock stopped, or why the run failed.
    note: String,
}

/// A receiver while it runs.
enum Live {
    Router(router::Router),
    Bird(bird::Bird),
}

impl Live {
    fn pid(&self) -> u32 {
        match self {
            Live::Router(r) => r.pid,
            Live::Bird(b) => b.pid,
        }
    }
    fn counts(&mut self) -> Result<Counts> {
        match self {
            Live::Router(r) => r.counts(),
            Live::Bird(b) => b.counts(),
        }
    }
    /// The authoritative count, read once `counts` says done (may be costlier).
    fn confirm(&mut self) -> Result<Counts> {
        match self {
            Live::Router(r) => r.counts(),
            Live::Bird(b) => b.confirm(),
        }
    }
    fn state(&mut self) -> String {
        match self {
            Live::Router(r) => r.session_state(),
            Live::Bird(b) => b.session_state(),
        }
    }
    fn log_tail(&self) -> String {
        match self {
            Live::Router(r) => r.log_tail(),
            Live::Bird(b) => b.log_tail(),
        }
    }
}

/// A `/proc/PID/status` memory field in KiB: `VmHWM` (peak resident set), `VmRSS`.
pub(crate) fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn run(a: BgpArgs) -> Result<()> {
    progress("bgp: building the feed");
    let data = a
        .data
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let t = Instant::now();
    let feed = feed::build(&feed::FeedSpec {
        data_dir: data.clone(),
        feeder_asn: FEEDER_ASN,
        next_hop_v4: bird::FEEDER_V4,
        next_hop_v6: bird::FEEDER_V6,
        v4: a.v4,
        v6: a.v6,
    })
    .with_context(|| format!("building the feed from {}", data.display()))?;
    let build_time = t.elapsed();
    let router_bin = if a.receivers.contains(&Receiver::Router) {
        Some(crate::router_binary(a.router.clone())?)
    } else {
        None
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());

    println!("rr-bench bgp: a full table from one eBGP peer into the forwarding table,");
    println!("rootless-router beside BIRD 2, same feed, same sender, same run.");
    println!();
    println!("host: {cpus} CPUs");
    println!(
        "feed: {} IPv4 prefixes ({} real from {}, {} synthetic; {} announced, {} withdrawn; \
         /24: {:.0}%) + {} IPv6 ({} real from {}, {} synthetic; /48: {:.0}%)",
        thousands(feed.v4.distinct as u64),
        thousands(feed.v4.real as u64),
        feed::MRT_FILE,
        thousands((feed.v4.distinct - feed.v4.real.min(feed.v4.distinct)) as u64),
        thousands(feed.v4.announced as u64),
        feed.v4.withdrawn,
        100.0 * feed.v4.common_length as f64 / feed.v4.distinct.max(1) as f64,
        thousands(feed.v6.distinct as u64),
        thousands(feed.v6.real as u64),
        feed::V6_FILE,
        thousands((feed.v6.distinct - feed.v6.real.min(feed.v6.distinct)) as u64),
        100.0 * feed.v6.common_length as f64 / feed.v6.distinct.max(1) as f64,
    );
    println!(
        "      {} UPDATE messages (<= 4096 B, End-of-RIB for both families last), {:.1} MB, \
         {} distinct attribute sets; built and encoded in {:.1} s before any clock runs",
        thousands(feed.messages as u64),
        feed.bytes.len() as f64 / 1e6,
        thousands(feed.attribute_sets as u64),
        build_time.as_secs_f64(),
    );
    if feed.left_out.updates > 0 {
        println!(
            "      left out: {} captured UPDATE(s) ({} prefixes) a receiver must treat as \
             withdrawn (RFC 7606): {}",
            feed.left_out.updates,
            feed.left_out.prefixes,
            feed.left_out.reasons.join("; ")
        );
    }
    if let Some(r) = &router_bin {
        println!("router: {}", r.display());
    }
    println!(
        "feeder: AS{FEEDER_ASN}, one session per run, OPEN with 4-octet AS + IPv4/IPv6 \
         unicast, no extended messages; receivers AS{RECEIVER_ASN}"
    );
    println!(
        "NOTE: {cpus} shared cores; other engineers' builds may run at the same time (see the \
         'others' column: everything else on the machine, in cores, during the timed interval)."
    );
    println!();
    println!(
        "{:<22} {:>5} {:>11} {:>11} {:>12} {:>10} {:>10} {:>8} {:>7} {:>14}  note",
        "receiver",
        "round",
        "prefixes",
        "to FIB (s)",
        "written (s)",
        "idle MiB",
        "peak MiB",
        "CPU (s)",
        "others",
        "polls (ms each)"
    );

    let mut results = Vec::new();
    for round in 1..=a.rounds.max(1) {
        for &kind in &a.receivers {
            progress(&format!("bgp: round {round}: {}", kind.label()));
            let r = match run_one(kind, round, &feed, &a, router_bin.as_deref()) {
                Ok(r) => r,
                Err(e) => RunResult {
                    receiver: kind,
                    round,
                    reached: Counts::default(),
                    time: None,
                    time_low: None,
                    sent: None,
                    peak_rss_kib: None,
                    idle_rss_kib: None,
                    cpu: None,
                    other_cores: None,
                    polls: 0,
                    poll_time: Duration::ZERO,
                    note: format!("FAILED: {e:#}"),
                },
            };
            print_run(&r);
            results.push(r);
        }
    }
    print_summary(&results, &feed);
    let _ = std::fs::remove_dir_all(work_dir());
    Ok(())
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".to_string(), |d| format!("{:.2}", d.as_secs_f64()))
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".to_string(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn print_run(r: &RunResult) {
    println!(
        "{:<22} {:>5} {:>11} {:>11} {:>12} {:>10} {:>10} {:>8} {:>7} {:>14}  {}",
        r.receiver.label(),
        r.round,
        thousands(r.reached.total()),
        match (r.time_low, r.time) {
            (Some(lo), Some(hi)) => format!("{:.2}-{:.2}", lo.as_secs_f64(), hi.as_secs_f64()),
            (_, t) => secs(t),
        },
        secs(r.sent),
        mib(r.idle_rss_kib),
        mib(r.peak_rss_kib),
        secs(r.cpu),
        r.other_cores.map_or("-".to_string(), |c| format!("{c:.2}")),
        format!("{} ({:.1})", r.polls, r.poll_time.as_secs_f64() * 1e3),
        r.note
    );
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn print_summary(results: &[RunResult], feed: &feed::Feed) {
    println!();
    println!(
        "== summary: {} prefixes ({} IPv4 + {} IPv6), median over completed rounds ==",
        thousands(feed.expected()),
        thousands(feed.v4.distinct as u64),
        thousands(feed.v6.distinct as u64)
    );
    let med = |k: Receiver| {
        let done: Vec<&RunResult> = results
            .iter()
            .filter(|r| r.receiver == k && r.time.is_some())
            .collect();
        let time = median(
            done.iter()
                .filter_map(|r| r.time)
                .map(|d| d.as_secs_f64())
                .collect(),
        );
        let rss = median(
            done.iter()
                .filter_map(|r| r.peak_rss_kib)
                .map(|k| k as f64 / 1024.0)
                .collect(),
        );
        let cpu = median(
            done.iter()
                .filter_map(|r| r.cpu)
                .map(|d| d.as_secs_f64())
                .collect(),
        );
        (done.len(), time, rss, cpu)
    };
    println!(
        "{:<22} {:>6} {:>12} {:>12} {:>10} {:>14}",
        "receiver", "runs", "to FIB (s)", "peak MiB", "CPU (s)", "prefixes/s"
    );
    let kinds = [Receiver::Router, Receiver::Bird, Receiver::BirdKernel];
    for k in kinds {
        let (n, time, rss, cpu) = med(k);
        if !results.iter().any(|r| r.receiver == k) {
            continue;
        }
        let f = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
        println!(
            "{:<22} {:>6} {:>12} {:>12} {:>10} {:>14}",
            k.label(),
            n,
            f(time, 2),
            f(rss, 1),
            f(cpu, 2),
            time.map_or("-".to_string(), |t| thousands(
                (feed.expected() as f64 / t) as u64
            )),
        );
    }
    let (_, rt, rm, _) = med(Receiver::Router);
    for (k, what) in [
        (
            Receiver::BirdKernel,
            "like for like on time (both end in a forwarding table); BIRD's RSS excludes the kernel FIB it fills",
        ),
        (
            Receiver::Bird,
            "BIRD without a FIB: its table only (an easier target than the router's job)",
        ),
    ] {
        let (_, bt, bm, _) = med(k);
        if let (Some(rt), Some(bt)) = (rt, bt) {
            let mem = match (rm, bm) {
                (Some(rm), Some(bm)) => format!("{:.2}x", rm / bm),
                _ => "-".to_string(),
            };
            println!(
                "router / {:<20} time {:.2}x, peak RSS {mem} — {what}",
                k.label(),
                rt / bt,
            );
        }
    }
    let (_, kt, km, _) = med(Receiver::BirdKernel);
    if let (Some(rt), Some(rm), Some(kt), Some(km)) = (rt, rm, kt, km) {
        println!(
            "target (less time and less memory than BIRD 2 doing the same job, kernel FIB): \
             time {}, memory {}",
            if rt < kt { "MET" } else { "NOT met" },
            if rm < km { "MET" } else { "NOT met" },
        );
    }
    println!(
        "method: the feed is encoded before the clock starts; one TCP session per run from the\n\
         same feeder code (the router's over 127.0.0.1, BIRD's over a veth pair between two\n\
         namespaces made for the run, MTU 65535); the clock runs from Established (the first\n\
         byte of the feed) to the first poll that sees every prefix: router = its forwarding\n\
         table (show-bgp fib_v4 + fib_v6 over the control socket); BIRD (table) = its BGP\n\
         channels' imported counters (show protocols all); BIRD (kernel FIB) = the namespace's\n\
         kernel tables: IPv6 from /proc/PID/net/rt6_stats every poll, IPv4 from the kernel\n\
         protocol's exported counter (BIRD exports synchronously over netlink), confirmed once\n\
         at the end from /proc/PID/net/fib_triestat (main-table prefixes; a trie walk too\n\
         costly to poll), both less the count before the feed.\n\
         'to FIB' a-b: the last poll still short was answered at a, the first complete one at\n\
         b; the run ended in between, and b (an upper bound) is what the summary uses. A\n\
         receiver that answers late while busy has a wider interval ('ms each': mean poll time).\n\
         'written' = when the feeder's last write returned (the receiver had read all but what\n\
         the socket buffers hold). Idle = VmRSS once started, before the session; peak = VmHWM\n\
         at the end; CPU = the receiver's utime + stime for the whole run (start-up included);\n\
         'others' = the rest of the machine in cores over the timed interval (this benchmark's\n\
         own polling and feeder included)."
    );
}

/// Where each run's configs, sockets and logs go.
fn work_dir() -> PathBuf {
    std::env::temp_dir().join(format!("rr-bench-bgp-{}", std::process::id()))
}

/// A UDP port that was free a moment ago (for the router's dummy tunnel).
fn free_udp_port() -> Result<u16> {
    let s = UdpSocket::bind("[::]:0").or_else(|_| UdpSocket::bind("0.0.0.0:0"))?;
    Ok(s.local_addr()?.port())
}

fn run_one(
    kind: Receiver,
    round: usize,
    feed: &feed::Feed,
    a: &BgpArgs,
    router_bin: Option<&Path>,
) -> Result<RunResult> {
    let tag = format!("{}-{round}", std::process::id());
    let dir = work_dir().join(format!("{kind:?}-{round}").to_lowercase());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let feeder_cfg = feeder::FeederConfig {
        asn: FEEDER_ASN,
        router_id: Ipv4Addr::new(198, 18, 0, 1),
        hold_time: 240,
    };
    let mut topology = None;
    let (listener, mut live) = match kind {
        Receiver::Router => {
            let bin = router_bin.context("no router binary")?;
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let port = listener.local_addr()?.port();
            let config = router::config(&dir, RECEIVER_ASN, FEEDER_ASN, port, free_udp_port()?);
            (
                listener,
                Live::Router(router::Router::start(bin, &dir, &config)?),
            )
        }
        Receiver::Bird | Receiver::BirdKernel => {
            let t = topology.insert(bird::Topology::create(&tag)?);
            let listener = bird::in_netns(&t.feed, || TcpListener::bind((bird::FEEDER_V4, 0)))??;
            let port = listener.local_addr()?.port();
            let kernel = kind == Receiver::BirdKernel;
            let config = bird::config(
                kernel,
                RECEIVER_ASN,
                FEEDER_ASN,
                port,
                &dir.join("bird.log"),
            );
            let b = bird::Bird::start(&a.bird, Some(&t.bird), &dir, &config, kernel)?;
            (listener, Live::Bird(b))
        }
    };
    let idle_rss_kib = status_kib(live.pid(), "VmRSS");
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            feeder::serve(
                &listener,
                &feeder_cfg,
                &feed.bytes,
                Duration::from_secs(60),
                &stop,
                &tx,
            )
        });
        let r = watch(&mut live, &rx, feed, a);
        stop.store(true, Ordering::Relaxed);
        // Stopping the receiver also unblocks a feeder still writing to it.
        let stopped = match live {
            Live::Router(r) => {
                drop(r);
                Ok(())
            }
            Live::Bird(b) => b.stop(Duration::from_secs(180)),
        };
        (r, stopped)
    });
    drop(topology);
    let (r, stopped) = result;
    let mut r = r?;
    r.receiver = kind;
    r.round = round;
    r.idle_rss_kib = idle_rss_kib;
    if let Err(e) = stopped {
        r.note.push_str(&format!("; stop: {e:#}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(r)
}

/// Waits for the session, then polls the receiver until it holds the whole feed.
fn watch(
    live: &mut Live,
    events: &mpsc::Receiver<feeder::Event>,
    feed: &feed::Feed,
    a: &BgpArgs,
) -> Result<RunResult> {
    let pid = live.pid();
    let expected = feed.expected();
    let fail = |live: &mut Live, why: String| -> anyhow::Error {
        anyhow::anyhow!(
            "{why}; session: {}; log: {}",
            live.state(),
            live.log_tail().replace('\n', " | ")
        )
    };
    // The session.
    let t0 = loop {
        match events.recv_timeout(Duration::from_secs(90)) {
            Ok(feeder::Event::Established { at }) => break at,
            Ok(feeder::Event::Failed { why }) => return Err(fail(live, why)),
            Ok(feeder::Event::Sent { .. }) => {}
            Err(_) => return Err(fail(live, "no session within 90 s".into())),
        }
    };
    let machine0 = procfs::machine_cpu();
    let cpu_recv0 = procfs::process_cpu(pid);
    let mut sent = None;
    let mut polls = 0u64;
    let mut poll_total = Duration::ZERO;
    let mut last = Counts::default();
    let mut last_change = Instant::now();
    let mut next_report = Instant::now() + Duration::from_secs(2);
    let period = Duration::from_millis(a.poll_ms.max(1));
    let complete = |c: Counts| c.v4 >= feed.v4.distinct as u64 && c.v6 >= feed.v6.distinct as u64;
    let mut confirm_due = t0;
    let mut unconfirmed = false;
    let mut last_short: Option<Instant> = None;
    let done = loop {
        let p = Instant::now();
        let c = live.counts()?;
        let seen = Instant::now();
        poll_total += seen - p;
        polls += 1;
        if complete(c) && seen >= confirm_due {
            let confirmed = live.confirm()?;
            if complete(confirmed) {
                // Done as of this poll, unless an earlier confirmation failed: then as
                // of this confirmation.
                let at = if unconfirmed { Instant::now() } else { seen };
                break (at, confirmed);
            }
            unconfirmed = true;
            confirm_due = Instant::now() + Duration::from_millis(200);
        }
        while let Ok(e) = events.try_recv() {
            match e {
                feeder::Event::Sent { at } => sent = Some(at - t0),
                feeder::Event::Failed { why } => {
                    return Err(fail(
                        live,
                        format!("{why} at {} of {expected} prefixes", c.total()),
                    ))
                }
                feeder::Event::Established { .. } => {}
            }
        }
        last_short = Some(seen);
        if c != last {
            last = c;
            last_change = Instant::now();
        }
        if last_change.elapsed() > Duration::from_secs(60) {
            return Err(fail(
                live,
                format!(
                    "stalled for 60 s at {} IPv4 + {} IPv6 of {} + {}",
                    c.v4, c.v6, feed.v4.distinct, feed.v6.distinct
                ),
            ));
        }
        if t0.elapsed() > Duration::from_secs(a.timeout) {
            return Err(fail(
                live,
                format!("timed out at {} of {expected}", c.total()),
            ));
        }
        if Instant::now() >= next_report {
            progress(&format!(
                "bgp:   {:.1} s: {} IPv4 + {} IPv6 of {}",
                t0.elapsed().as_secs_f64(),
                c.v4,
                c.v6,
                expected
            ));
            next_report += Duration::from_secs(2);
        }
        std::thread::sleep(period.saturating_sub(p.elapsed()));
    };
    let (t_done, reached) = done;
    let window = (t_done - t0).as_secs_f64().max(1e-9);
    let peak = status_kib(pid, "VmHWM");
    let cpu = procfs::process_cpu(pid);
    let other_cores = match (machine0, procfs::machine_cpu(), cpu_recv0, cpu) {
        (Some(m0), Some(m1), Some(r0), Some(r1)) => {
            let busy = m1.0.saturating_sub(m0.0).as_secs_f64();
            Some(((busy - r1.saturating_sub(r0).as_secs_f64()) / window).max(0.0))
        }
        _ => None,
    };
    while let Ok(e) = events.try_recv() {
        if let feeder::Event::Sent { at } = e {
            sent = Some(at - t0);
        }
    }
    let note = match live {
        Live::Bird(b) if b.kernel => {
            let table = b.table_counts().map(|c| (c.v4, c.v6)).ok();
            format!(
                "kernel {} + {}; BIRD table {}",
                reached.v4,
                reached.v6,
                table.map_or("?".to_string(), |(v4, v6)| format!("{v4} + {v6}"))
            )
        }
        Live::Bird(b) => format!("show route count: {}", b.route_count().unwrap_or_default()),
        Live::Router(_) => format!("fib {} + {}", reached.v4, reached.v6),
    };
    Ok(RunResult {
        receiver: Receiver::Router,
        round: 0,
        reached,
        time: Some(t_done - t0),
        time_low: last_short.map(|at| at.saturating_duration_since(t0)),
        sent,
        peak_rss_kib: peak,
        idle_rss_kib: None,
        cpu,
        other_cores,
        polls,
        poll_time: poll_total / polls.max(1) as u32,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_thousands() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(thousands(605_399), "605,399");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }
}
