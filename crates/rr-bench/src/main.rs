//! `rr-bench`: rootless-router measured beside a reference, in the same run.
//!
//! - `rr-bench bgp` (module [`bgp`]): a full table over one BGP session into the router
//!   and into BIRD 2; time until every prefix is in the forwarding table, and peak RSS.
//! - `rr-bench fib` (module [`fib`]): the router's FIB and the `prefix-trie` crate on the
//!   same real table: lookups/s, build time, bytes per route.
//! - `rr-bench exec` (module [`exec`]): iperf3 through two routers with the programs under
//!   `rootless-router exec`, beside two kernels joined by wireguard-go; Gbit/s and CPU.
//! - `rr-bench roa` (module [`roa`]): ROA re-evaluation of a 1.2M-route table after a
//!   10,000-ROA change, beside BIRD 2's `configure` + `reload in` with an import table.
//! - `rr-bench forward`, below: how fast the router forwards, tunnel to tunnel, next to
//!   the best any WireGuard-to-WireGuard router could do on the same core.
//!
//! What it is: `rr-bench forward` measures, for 1420-byte and 100-byte inner IPv4 packets,
//! 1. the **crypto bound**: one ChaCha20-Poly1305 open + one seal per packet (`ring`, the
//!    AEAD inside boringtun), single thread — the physical limit of a transit packet;
//! 2. the **in-process core**: the code path of a node's receive thread (`Tunnel::receive`
//!    → `Forwarder::from_tunnel` with a real `Fib` → `Tunnel::send`) with no sockets;
//! 3. the same core on **two threads at once**, each on a tunnel pair of its own, against
//!    one thread, by wall time: whether the data path scales with cores;
//! 4. the **kernel floor**: a relay thread making only system calls — `recvfrom` + `sendto`
//!    per datagram, batched (`recvmmsg` + `sendmmsg`), and with UDP GRO/GSO — to show
//!    where the end-to-end time goes and what each I/O design leaves of it;
//! 5. **end to end**: the real `rootless-router run` binary as a child process, fed over
//!    WireGuard on 127.0.0.1 by generator threads (real handshakes, datagrams encrypted
//!    before the clock starts) and drained by sink threads (newest 1000 decrypted at the
//!    end as proof), in closed loop and paced, with the router's CPU time from `/proc` so
//!    the rate can be normalised per core. The peers do their I/O as wireguard-go does —
//!    GSO runs out (`UDP_SEGMENT`), `UDP_GRO` in — or, with `--plain-peers`, one datagram
//!    per message (`sendmmsg` / `recvmmsg`);
//! 6. **several tunnels**: two independent flows at once, with the router's per-thread CPU
//!    and how long its two receive threads provably ran at the same time.
//!
//! CPU time, not wall time, is the denominator everywhere but 3 (thread CPU clock for 1, 2
//! and 4, `/proc/PID/stat` for the router), so the figures survive other load on the
//! machine.
//!
//! What it is not: a timed test (it asserts nothing and fails on nothing but set-up
//! errors), a WAN benchmark (loopback has no latency, no loss, and charges the kernel's
//! delivery of each datagram to the sending process), or a stable absolute number on a
//! shared 2-core machine: the generators and sinks run on the same cores as the router, so
//! the ratios to the crypto bound and the CPU-normalised per-core rate are the figures to
//! read.

mod bgp;
mod crypto;
mod e2e;
mod exec;
mod fib;
mod gso;
mod inproc;
mod kernel;
mod packet;
mod procfs;
mod roa;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "rr-bench", about = "Benchmarks for rootless-router")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Forwarding throughput tunnel to tunnel, beside the ChaCha20-Poly1305 bound.
    Forward(ForwardArgs),
    /// The forwarding table on a full Internet table, beside the prefix-trie crate.
    Fib(fib::FibArgs),
    /// A full BGP table from one peer into the FIB: time and peak memory, beside BIRD 2.
    Bgp(bgp::BgpArgs),
    /// iperf3 under `rootless-router exec` across two routers, beside wireguard-go + kernels.
    Exec(exec::ExecArgs),
    /// ROA re-evaluation of a full table after a ROA change, beside BIRD 2's reload.
    Roa(roa::RoaArgs),
}

#[derive(clap::Args)]
struct ForwardArgs {
    /// Length of each timed phase (crypto bound, in-process core, paced end-to-end run).
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Datagrams each generator sends in an end-to-end run (default: about `seconds`
    /// worth at the in-process rate, at most 384 MB of ciphertext per generator).
    #[arg(long)]
    packets: Option<usize>,
    /// Inner IP packet sizes, in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [1420usize, 100])]
    sizes: Vec<usize>,
    /// The router binary (default: `rootless-router` next to this executable).
    #[arg(long)]
    router: Option<PathBuf>,
    /// Only the crypto bound and the in-process core.
    #[arg(long)]
    no_e2e: bool,
    /// Also run one flow unpaced (open loop, as fast as the generator goes): mostly shows
    /// the kernel dropping at the router's socket.
    #[arg(long)]
    unpaced: bool,
    /// Peers that send and receive one datagram per message (`sendmmsg` / `recvmmsg`)
    /// instead of as wireguard-go does (GSO runs out, `UDP_GRO` in).
    #[arg(long)]
    plain_peers: bool,
}

/// A packet rate measured over an interval.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    pub packets: u64,
    /// Inner packet size in bytes.
    pub size: usize,
    pub time: Duration,
}

impl Rate {
    pub fn new(packets: u64, size: usize, time: Duration) -> Rate {
        Rate {
            packets,
            size,
            time,
        }
    }
    pub fn pps(&self) -> f64 {
        self.packets as f64 / self.time.as_secs_f64().max(1e-12)
    }
}

fn gbps(pps: f64, size: usize) -> f64 {
    pps * size as f64 * 8.0 / 1e9
}

fn mpps(pps: f64) -> String {
    format!("{:.3}", pps / 1e6)
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// A progress line on stderr, with the time since start.
pub fn progress(what: &str) {
    let t = START.get_or_init(std::time::Instant::now).elapsed();
    eprintln!("[rr-bench +{:.1} s] {what}", t.as_secs_f64());
}

/// Memory for one generator's pre-encrypted datagrams.
const GEN_BUFFER_BYTES: usize = 384 << 20;

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Forward(a) => forward(a),
        Cmd::Fib(a) => fib::run(a),
        Cmd::Bgp(a) => bgp::run(a),
        Cmd::Exec(a) => exec::run(a),
        Cmd::Roa(a) => roa::run(a),
    }
}

fn router_binary(arg: Option<PathBuf>) -> Result<PathBuf> {
    let path = match arg {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .context("executable has no directory")?
            .join("rootless-router"),
    };
    if !path.is_file() {
        bail!(
            "{} not found: build it first with `cargo build --release -p rootless-router`",
            path.display()
        );
    }
    Ok(path)
}

/// Everything measured for one packet size.
struct SizeReport {
    size: usize,
    bound: Rate,
    inproc: inproc::InProc,
    /// The in-process core by wall time on 1 and on 2 threads at once.
    scaling: Option<(inproc::Parallel, inproc::Parallel)>,
    /// The kernel's share: (one by one, batched, offload).
    floor: Option<(kernel::Floor, kernel::Floor, kernel::Floor)>,
    closed_loop: Option<e2e::RunResult>,
    paced: Option<(f64, e2e::RunResult)>,
    multi: Option<e2e::RunResult>,
}

fn forward(a: ForwardArgs) -> Result<()> {
    progress("start");
    let time = Duration::from_secs_f64(a.seconds.max(0.05));
    let router = if a.no_e2e {
        None
    } else {
        Some(router_binary(a.router.clone())?)
    };
    let peers = if a.plain_peers {
        e2e::Peers::Plain
    } else {
        e2e::Peers::Offload
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rmem = procfs::sysctl("/proc/sys/net/core/rmem_default");
    let rmem_max = procfs::sysctl("/proc/sys/net/core/rmem_max");
    let show = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());

    println!("rr-bench forward: tunnel-to-tunnel forwarding through rootless-router,");
    println!("beside the ChaCha20-Poly1305 bound measured in the same run.");
    println!();
    println!(
        "host: {cpus} CPUs; kernel UDP rmem_default {} B, rmem_max {} B",
        show(rmem),
        show(rmem_max)
    );
    if let Some(r) = &router {
        println!("router: {}", r.display());
        println!("{}", peers.describe());
    }
    println!(
        "NOTE: absolute rates are noisy here: {cpus} shared cores, and this process's\n\
         generators and sinks compete with the router for them (and on loopback the kernel's\n\
         delivery of every datagram is charged to its sender). The headline figures are the\n\
         ratios to the crypto bound and the CPU-normalised per-core rate\n\
         (forwarded pps / (router CPU seconds / wall seconds))."
    );

    let mut reports = Vec::new();
    for &size in &a.sizes {
        if !(28..=1420).contains(&size) {
            bail!("--sizes: {size} is not within 28..=1420 (IPv4 + UDP headers, tunnel MTU)");
        }
        println!();
        println!("== {size}-byte inner packets ==");
        progress(&format!("{size} B: crypto bound"));
        let bound = crypto::bound(size, time);
        println!(
            "crypto bound     1 open + 1 seal / packet, 1 thread, per CPU second: {} Mpps, {:.2} Gbit/s, {:.0} ns/packet",
            mpps(bound.pps()),
            gbps(bound.pps(), size),
            1e9 / bound.pps()
        );
        progress(&format!("{size} B: in-process core"));
        let ip = inproc::run(size, time)?;
        println!(
            "in-process core  receive -> forward -> send, 1 thread, per CPU second: {} Mpps, {:.2} Gbit/s, {:.0} ns/packet = {} of bound ({}/{} outputs decrypted and checked)",
            mpps(ip.rate.pps()),
            gbps(ip.rate.pps(), size),
            1e9 / ip.rate.pps(),
            pct(ip.rate.pps() / bound.pps()),
            ip.verified,
            ip.sampled
        );
        progress(&format!("{size} B: in-process core, 1 and 2 threads"));
        let one = inproc::parallel(size, 1, time)?;
        let two = inproc::parallel(size, 2, time)?;
        println!(
            "in-process core  2 threads at once (a tunnel pair and Forwarder each, one shared FIB), \
             by wall time: {} Mpps combined vs {} Mpps on 1 thread = {:.2}x (2.00 = scales \
             perfectly); the threads got {:.2} cores vs {:.2} ({}/{} outputs decrypted and checked)",
            mpps(two.pps()),
            mpps(one.pps()),
            two.pps() / one.pps(),
            two.cores(),
            one.cores(),
            two.verified + one.verified,
            two.sampled + one.sampled,
        );
        let mut report = SizeReport {
            size,
            bound,
            inproc: ip,
            scaling: Some((one, two)),
            floor: None,
            closed_loop: None,
            paced: None,
            multi: None,
        };
        if let Some(router) = &router {
            let stride = (size + 32 + 15) & !15;
            let cap = GEN_BUFFER_BYTES / stride;
            progress(&format!("{size} B: kernel floor"));
            let one = kernel::floor(size + 32, kernel::Io::OneByOne, time)?;
            let batched = kernel::floor(size + 32, kernel::Io::Batched, time)?;
            let offload = kernel::floor(size + 32, kernel::Io::Offload, time)?;
            println!(
                "kernel floor     a relay thread making only system calls, no crypto, loopback, CPU per \
                 datagram: recvfrom + sendto each {:.0} ns = {} Mpps per core; batched (recvmmsg + \
                 sendmmsg, <= 64) {:.0} ns; offload (UDP_GRO in, UDP_SEGMENT out, <= 64 per run, \
                 fed in GSO runs, drained by a UDP_GRO sink) {:.0} ns",
                one.ns_per_packet(),
                mpps(1e9 / one.ns_per_packet()),
                batched.ns_per_packet(),
                offload.ns_per_packet(),
            );
            let (batched_ns, offload_ns) = (batched.ns_per_packet(), offload.ns_per_packet());
            // The floor for the router's I/O with these peers: GRO in and GSO out with
            // wireguard-go-like peers; datagram by datagram in (and out, as far as the
            // plain sink is concerned) with plain ones.
            let (floor_name, floor_ns) = match peers {
                e2e::Peers::Offload => ("offload", offload_ns),
                e2e::Peers::Plain => ("batched", batched_ns),
            };
            report.floor = Some((one, batched, offload));
            // Enough datagrams for `time` at 1.5 times the rate in-process + kernel floor
            // predicts; generators stop after twice `time` anyway (unless --packets).
            let inproc_ns = 1e9 / report.inproc.rate.pps();
            let expected = 1e9 / (inproc_ns + floor_ns);
            let default_n = ((1.5 * expected * time.as_secs_f64()) as usize).clamp(20_000, cap);
            let n = a.packets.unwrap_or(default_n);
            let max_time = match a.packets {
                Some(_) => Duration::from_secs(3600),
                None => 2 * time,
            };
            let spec = |flows, packets, load| e2e::RunSpec {
                router,
                size,
                flows,
                packets,
                load,
                peers,
                max_time,
            };
            let sat = e2e::run(&spec(1, n, e2e::Load::Closed))?;
            print_run(
                &format!("end to end, 1 flow, closed loop ({})", in_flight(&sat)),
                &sat,
                &bound,
                None,
            );
            let e2e_ns = 1e9 / sat.per_core_pps();
            println!(
                "  where the router's {e2e_ns:.0} ns/packet go: in-process core {inproc_ns:.0} \
                 (crypto {:.0} of it) + kernel floor for this I/O ({floor_name}) {floor_ns:.0} = \
                 {:.0}; unexplained {:.0} (locks, clock, wake-ups, cache misses, what the relay \
                 does not do). The floor leaves at best {} Mpps per core = {} of bound.",
                1e9 / bound.pps(),
                inproc_ns + floor_ns,
                e2e_ns - inproc_ns - floor_ns,
                mpps(1e9 / (inproc_ns + floor_ns)),
                pct(1e9 / (inproc_ns + floor_ns) / bound.pps()),
            );
            if a.unpaced {
                let blast = e2e::run(&spec(1, n, e2e::Load::Unpaced))?;
                print_run("end to end, 1 flow, unpaced", &blast, &bound, None);
            }
            // Open loop just below what the router managed in closed loop: the loss figure
            // that matters (is anything dropped below capacity?) and the per-core cost
            // when the router is not always busy.
            let rate = 0.9 * sat.forwarded_pps();
            let n_paced = a
                .packets
                .unwrap_or(((rate * time.as_secs_f64()) as usize).clamp(20_000, cap));
            let paced = e2e::run(&spec(1, n_paced, e2e::Load::Rate(rate)))?;
            print_run(
                "end to end, 1 flow, paced at 90% of the closed-loop rate",
                &paced,
                &bound,
                Some(rate),
            );
            let multi = e2e::run(&spec(2, n, e2e::Load::Closed))?;
            print_run(
                &format!(
                    "end to end, 2 flows (a->b, c->d) at once, closed loop ({} each)",
                    in_flight(&multi)
                ),
                &multi,
                &bound,
                None,
            );
            report.closed_loop = Some(sat);
            report.paced = Some((rate, paced));
            report.multi = Some(multi);
        }
        reports.push(report);
    }
    print_summary(&reports, peers, a.no_e2e);
    Ok(())
}

/// A closed loop's window, for a title.
fn in_flight(r: &e2e::RunResult) -> String {
    match r.load {
        e2e::Load::Window(w) => format!(
            "{w} datagrams in flight: at most half what the router's ingress socket buffer{} holds",
            r.router_rcvbuf
                .map_or(String::new(), |b| format!(" of {} KiB", b >> 10))
        ),
        l => format!("{l:?}"),
    }
}

fn print_run(title: &str, r: &e2e::RunResult, bound: &Rate, pace: Option<f64>) {
    let size = bound.size;
    let show = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
    println!("{title}:");
    for (k, f) in r.flows.iter().enumerate() {
        let offered = match pace {
            Some(p) => format!("paced to {} Mpps, ", mpps(p)),
            None => String::new(),
        };
        println!(
            "  flow {} -> {}: sent {} in {:.2} s ({}offered {} Mpps){}; at the sink {} = {} Mpps, {:.2} Gbit/s; \
             lost {} = {} (socket drops, in messages — a GSO run counts once: router ingress {}, sink {}; \
             router's own count: received {}, sent {}, send errors {}, undecryptable {}, with warm-up); \
             {}/{} of the newest decrypted and checked",
            e2e::iface_name(2 * k),
            e2e::iface_name(2 * k + 1),
            f.sent,
            f.send_time.as_secs_f64(),
            offered,
            mpps(f.offered_pps()),
            if f.send_errors > 0 {
                format!(", {} send errors", f.send_errors)
            } else {
                String::new()
            },
            f.received,
            mpps(f.received as f64 / r.window.as_secs_f64()),
            gbps(f.received as f64 / r.window.as_secs_f64(), size),
            f.sent as i64 - f.received as i64,
            pct(1.0 - f.received as f64 / f.sent.max(1) as f64),
            f.router_drops,
            f.sink_drops,
            show(f.router_rx_packets),
            show(f.router_tx_packets),
            show(f.router_tx_errors),
            show(f.router_rx_errors),
            f.verified,
            f.sampled,
        );
        let fallback = match f.gso_fallback {
            Some(e) => format!(
                " (GSO refused: {}; fell back to sendmmsg)",
                std::io::Error::from_raw_os_error(e)
            ),
            None => String::new(),
        };
        let (call, sink_note) = match (r.peers, f.gso_fallback) {
            (e2e::Peers::Offload, None) => (
                "sendmsg (one GSO run)",
                ", i.e. per GSO send of the router (UDP_GRO keeps runs whole)",
            ),
            (e2e::Peers::Offload, Some(_)) => (
                "send call",
                ", i.e. per GSO send of the router (UDP_GRO keeps runs whole)",
            ),
            (e2e::Peers::Plain, _) => ("sendmmsg", " (recvmmsg, no UDP_GRO)"),
        };
        println!(
            "    I/O: generator {:.1} datagrams per {call}{fallback}; sink {:.1} datagrams per message{sink_note}",
            f.per_send(),
            f.per_sink_message(),
        );
    }
    println!(
        "  total: {} Mpps, {:.2} Gbit/s over {:.2} s; router CPU {:.2} s = {:.2} cores; \
         generators+sinks {:.2} cores; everything else on the machine {:.2} cores, steal {:.2}",
        mpps(r.forwarded_pps()),
        gbps(r.forwarded_pps(), size),
        r.window.as_secs_f64(),
        r.router_cpu.as_secs_f64(),
        r.router_cores(),
        r.bench_cores(),
        r.other_cores(),
        r.machine_steal.as_secs_f64() / r.window.as_secs_f64(),
    );
    if let Some(d) = r.router_dropped.filter(|d| *d > 0) {
        println!("  the router's data plane dropped {d} packets (all reasons, whole run)");
    }
    println!(
        "  per core: {} Mpps, {:.2} Gbit/s, {:.0} ns of router CPU per packet = {} of bound",
        mpps(r.per_core_pps()),
        gbps(r.per_core_pps(), size),
        1e9 / r.per_core_pps(),
        pct(r.per_core_pps() / bound.pps()),
    );
    let threads: Vec<String> = r
        .threads
        .iter()
        .filter(|(_, cpu)| !cpu.is_zero())
        .map(|(name, cpu)| {
            format!(
                "{name} {:.2} s ({:.2} cores)",
                cpu.as_secs_f64(),
                cpu.as_secs_f64() / r.window.as_secs_f64()
            )
        })
        .collect();
    println!(
        "  router threads: {}",
        if threads.is_empty() {
            "(none measurable)".to_string()
        } else {
            threads.join(", ")
        }
    );
    if r.flows.len() > 1 {
        if let Some(p) = &r.parallel {
            println!(
                "  at the same time: {} and {} were both on a CPU for at least {:.0} ms of the \
                 {:.0} ms sampled ({}; lower bound: per {} ms slice, run time a + b beyond the \
                 slice), and both ran > 30% of the slice in {} of slices",
                p.threads[0].0,
                p.threads[1].0,
                p.overlap.as_secs_f64() * 1e3,
                p.sampled.as_secs_f64() * 1e3,
                pct(p.overlap_fraction()),
                e2e::SAMPLE_EVERY.as_millis(),
                pct(p.both_busy_fraction()),
            );
        }
    }
}

fn print_summary(reports: &[SizeReport], peers: e2e::Peers, no_e2e: bool) {
    println!();
    println!(
        "== summary (per core = forwarded pps / router cores used; % = of the crypto bound) =="
    );
    if !no_e2e {
        println!("{}", peers.describe());
    }
    print!("{:<44}", "");
    for r in reports {
        print!("{:>30}", format!("{} B", r.size));
    }
    println!();
    /// A row: pps, and what to show instead of the share of the bound.
    type Row<'a> = (
        &'a str,
        Box<dyn Fn(&SizeReport) -> Option<(f64, Option<String>)>>,
    );
    let floor = |f: fn(&(kernel::Floor, kernel::Floor, kernel::Floor)) -> f64| {
        move |r: &SizeReport| r.floor.as_ref().map(|t| (1e9 / f(t), None))
    };
    let rows: Vec<Row> = vec![
        (
            "crypto bound, 1 core",
            Box::new(|r| Some((r.bound.pps(), None))),
        ),
        (
            "in-process core, 1 core",
            Box::new(|r| Some((r.inproc.rate.pps(), None))),
        ),
        (
            "in-process core, 1 thread, wall",
            Box::new(|r| r.scaling.as_ref().map(|(one, _)| (one.pps(), None))),
        ),
        (
            "in-process core, 2 threads, wall (scaling)",
            Box::new(|r| {
                r.scaling
                    .as_ref()
                    .map(|(one, two)| (two.pps(), Some(format!("{:.2}x", two.pps() / one.pps()))))
            }),
        ),
        (
            "kernel floor: recvfrom+sendto, per core",
            Box::new(floor(|t| t.0.ns_per_packet())),
        ),
        (
            "kernel floor: batched, per core",
            Box::new(floor(|t| t.1.ns_per_packet())),
        ),
        (
            "kernel floor: GRO+GSO offload, per core",
            Box::new(floor(|t| t.2.ns_per_packet())),
        ),
        (
            "in-process + batched floor (prediction)",
            Box::new(|r| {
                r.floor
                    .as_ref()
                    .map(|(_, b, _)| (1e9 / (1e9 / r.inproc.rate.pps() + b.ns_per_packet()), None))
            }),
        ),
        (
            "in-process + offload floor (prediction)",
            Box::new(|r| {
                r.floor
                    .as_ref()
                    .map(|(_, _, g)| (1e9 / (1e9 / r.inproc.rate.pps() + g.ns_per_packet()), None))
            }),
        ),
        (
            "end to end closed loop, per core",
            Box::new(|r| r.closed_loop.as_ref().map(|s| (s.per_core_pps(), None))),
        ),
        (
            "end to end paced 90%, per core",
            Box::new(|r| r.paced.as_ref().map(|(_, s)| (s.per_core_pps(), None))),
        ),
        (
            "end to end 2 flows, per core",
            Box::new(|r| r.multi.as_ref().map(|s| (s.per_core_pps(), None))),
        ),
        (
            "end to end 2 flows, total (router cores)",
            Box::new(|r| {
                r.multi.as_ref().map(|s| {
                    (
                        s.forwarded_pps(),
                        Some(format!("({:.2})", s.router_cores())),
                    )
                })
            }),
        ),
    ];
    for (name, f) in &rows {
        print!("{name:<44}");
        for r in reports {
            let cell = match f(r) {
                Some((pps, extra)) => format!(
                    "{:>5} Mpps {:>5.2} Gb/s {:>5}",
                    mpps(pps),
                    gbps(pps, r.size),
                    extra.unwrap_or_else(|| pct(pps / r.bound.pps()))
                ),
                None => "-".to_string(),
            };
            print!("{cell:>30}");
        }
        println!();
    }
    for r in reports {
        if let Some((one, two)) = &r.scaling {
            let f = two.pps() / one.pps();
            // Packets per CPU second of each thread, 2 threads against 1.
            let efficiency = (two.pps() / two.cores()) / (one.pps() / one.cores());
            println!(
                "{} B: the in-process core on 2 threads forwards {f:.2}x what 1 does ({:.2} cores \
                 used vs {:.2}; per CPU second each thread did {} of what one alone does): {}",
                r.size,
                two.cores(),
                one.cores(),
                pct(efficiency),
                if f >= 1.7 {
                    "the data path scales with cores"
                } else if two.cores() < 1.7 {
                    "inconclusive: the two threads did not get two cores (other load?)"
                } else {
                    "NOT scaling here: the threads got two cores but did less per CPU second \
                     (shared caches and memory, or the host's load on these vCPUs; rerun to tell)"
                }
            );
        }
        if let Some(s) = &r.closed_loop {
            let ratio = s.per_core_pps() / r.bound.pps();
            let verdict = match (r.size, ratio >= 0.5) {
                (1420, true) => " (target at 1420 B: >= 50%): meets it",
                (1420, false) => " (target at 1420 B: >= 50%): MISSES it",
                _ => "",
            };
            println!(
                "{} B: router end to end per core = {} of the crypto bound{verdict}",
                r.size,
                pct(ratio),
            );
        }
        if let Some(m) = &r.multi {
            print_parallel_verdict(r.size, m);
        }
    }
    println!(
        "method: generators encrypt all datagrams before the clock starts. 'closed loop' keeps\n\
         a fixed number of datagrams between generator and sink (at most half what the router's\n\
         ingress socket buffer holds, read with ss), so the router always has work queued yet\n\
         nothing is dropped: the router is busy whenever it holds a CPU, and its per-core rate\n\
         is its capacity. 'paced' offers 90% of the closed-loop rate open loop: loss there is\n\
         loss below capacity. Router CPU = its threads' run times (ns, /proc/PID/task/*/\n\
         schedstat) over [first send, last datagram at a sink]; per core = forwarded /\n\
         (router CPU s / wall s).\n\
         peers: by default the generator and sink do I/O as wireguard-go and kernel WireGuard\n\
         do: the generator sends GSO runs (one sendmsg with UDP_SEGMENT per up to 64 datagrams,\n\
         falling back to sendmmsg if the kernel answers EIO/EINVAL) and the sink's socket has\n\
         UDP_GRO, splitting what it receives by the segment size in the UDP_GRO cmsg. This is\n\
         not only the peers' own cost: on loopback a GSO send to a socket without UDP_GRO is cut\n\
         into datagrams at delivery, in the sending thread, so a plain sink makes the router pay\n\
         for segmenting and queueing each of its datagrams — work a NIC (or the far host) does\n\
         on a real link. With UDP_GRO the router's GSO runs arrive whole, as the generator's do\n\
         at the router. --plain-peers sends and receives one datagram per message instead.\n\
         parallel: the 2-flow verdict rests on per-thread run times (ns, /proc/PID/task/*/\n\
         schedstat) sampled every 5 ms: in a slice, two threads whose run times add up to more\n\
         than the slice overlapped by at least the excess. The generators and sinks run on the\n\
         same cores, so the router cannot have both cores to itself here; the in-process\n\
         2-thread phase shows the scaling without them."
    );
}

/// Whether the router's two receive threads ran in parallel in the 2-flow run.
fn print_parallel_verdict(size: usize, m: &e2e::RunResult) {
    let cores = |d: Duration| d.as_secs_f64() / m.window.as_secs_f64();
    let Some(p) = &m.parallel else {
        println!(
            "{size} B, 2 flows: router used {:.2} cores; its receive threads could not be sampled",
            m.router_cores()
        );
        return;
    };
    let (a, b) = (&p.threads[0], &p.threads[1]);
    let busy = cores(a.1) > 0.3 && cores(b.1) > 0.3;
    let proven = p.overlap_fraction() >= 0.1 || m.router_cores() > 1.05;
    println!(
        "{size} B, 2 flows: {} {:.2} and {} {:.2} cores, both on a CPU at once >= {} of the \
         time; the router used {:.2} cores in all while generators+sinks used {:.2} of the \
         {} — {}",
        a.0,
        cores(a.1),
        b.0,
        cores(b.1),
        pct(p.overlap_fraction()),
        m.router_cores(),
        m.bench_cores(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if busy && proven {
            "the receive threads run in parallel: the router uses both cores when it gets them \
             (it cannot have both to itself here)"
        } else if busy {
            "both receive threads busy but NOT shown to run at the same time (taking turns on \
             one core?)"
        } else {
            "NOT using both cores: a receive thread is mostly idle"
        }
    );
}
