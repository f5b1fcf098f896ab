//! `rr-bench`: how fast rootless-router forwards, tunnel to tunnel, next to the best any
//! WireGuard-to-WireGuard router could do on the same core.
//!
//! What it is: `rr-bench forward` measures, for 1420-byte and 100-byte inner IPv4 packets,
//! 1. the **crypto bound**: one ChaCha20-Poly1305 open + one seal per packet (`ring`, the
//!    AEAD inside boringtun), single thread — the physical limit of a transit packet;
//! 2. the **in-process core**: the code path of a node's receive thread (`Tunnel::receive`
//!    → `Forwarder::from_tunnel` with a real `Fib` → `Tunnel::send`) with no sockets;
//! 3. the **kernel floor**: a relay thread making only the node's per-packet system calls
//!    (`recvfrom` + `sendto`), and the same with batching and with UDP GRO/GSO, to show
//!    where the end-to-end time goes and what each I/O design would leave of it;
//! 4. **end to end**: the real `rootless-router run` binary as a child process, fed over
//!    WireGuard on 127.0.0.1 by generator threads (real handshakes, datagrams encrypted
//!    before the clock starts, sent with `sendmmsg`) and drained by sink threads
//!    (`recvmmsg`, newest 1000 decrypted at the end as proof), in closed loop and paced,
//!    with the router's CPU time from `/proc` so the rate can be normalised per core;
//! 5. **several tunnels**: two independent flows at once, with the router's per-thread CPU.
//!
//! CPU time, not wall time, is the denominator everywhere (thread CPU clock for 1–3,
//! `/proc/PID/stat` for the router), so the figures survive other load on the machine.
//!
//! What it is not: a timed test (it asserts nothing and fails on nothing but set-up
//! errors), a WAN benchmark (loopback has no latency, no loss, and charges the kernel's
//! delivery of each datagram to the sending process), or a stable absolute number on a
//! shared 2-core machine: the generators and sinks run on the same cores as the router, so
//! the ratios to the crypto bound and the CPU-normalised per-core rate are the figures to
//! read.

mod crypto;
mod e2e;
mod inproc;
mod kernel;
mod packet;
mod procfs;

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
    /// Also run one flow unpaced (open loop, as fast as `sendmmsg` goes): mostly shows
    /// the kernel dropping at the router's socket.
    #[arg(long)]
    unpaced: bool,
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
        println!(
            "router: {} (its sockets keep rmem_default: it sets no SO_RCVBUF)",
            r.display()
        );
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
        let mut report = SizeReport {
            size,
            bound,
            inproc: ip,
            floor: None,
            closed_loop: None,
            paced: None,
            multi: None,
        };
        if let Some(router) = &router {
            let stride = (size + 32 + 15) & !15;
            let cap = GEN_BUFFER_BYTES / stride;
            let window = e2e::window_for(rmem.unwrap_or(212_992), stride);
            progress(&format!("{size} B: kernel floor"));
            let one = kernel::floor(size + 32, kernel::Io::OneByOne, window, time)?;
            let batched = kernel::floor(size + 32, kernel::Io::Batched, window, time)?;
            let offload = kernel::floor(size + 32, kernel::Io::Offload, window, time)?;
            println!(
                "kernel floor     recvfrom + sendto per datagram (the system calls a node's rx thread makes \
                 per packet), no crypto, loopback: {:.0} ns/packet of CPU = {} Mpps per core; \
                 batched (recvmmsg + sendmmsg, <= 64): {:.0} ns/packet; \
                 offload (UDP_GRO + UDP_SEGMENT, <= 64): {:.0} ns/packet",
                one.ns_per_packet(),
                mpps(1e9 / one.ns_per_packet()),
                batched.ns_per_packet(),
                offload.ns_per_packet(),
            );
            let (one_ns, batched_ns, offload_ns) = (
                one.ns_per_packet(),
                batched.ns_per_packet(),
                offload.ns_per_packet(),
            );
            report.floor = Some((one, batched, offload));
            // Enough datagrams for `time` at 1.5 times the rate in-process + kernel floor
            // predicts; generators stop after twice `time` anyway (unless --packets).
            let expected = 1e9 / (1e9 / report.inproc.rate.pps() + one_ns);
            let default_n = ((1.5 * expected * time.as_secs_f64()) as usize).clamp(20_000, cap);
            let n = a.packets.unwrap_or(default_n);
            let max_time = match a.packets {
                Some(_) => Duration::from_secs(3600),
                None => 2 * time,
            };
            let sat = e2e::run(&e2e::RunSpec {
                router,
                size,
                flows: 1,
                packets: n,
                load: e2e::Load::Window(window),
                max_time,
            })?;
            print_run(
                &format!("end to end, 1 flow, closed loop ({window} datagrams in flight)"),
                &sat,
                &bound,
                None,
            );
            let inproc_ns = 1e9 / report.inproc.rate.pps();
            let e2e_ns = 1e9 / sat.per_core_pps();
            println!(
                "  where the router's {e2e_ns:.0} ns/packet go: in-process core {inproc_ns:.0} \
                 (crypto {:.0} of it) + kernel floor {one_ns:.0} = {:.0}; unexplained {:.0} \
                 (locks, clock, wake-ups, cache misses between the two). With batched I/O the \
                 floor would be {batched_ns:.0}: at best {} Mpps per core = {} of bound; with \
                 segmentation offload {offload_ns:.0}: at best {} Mpps per core = {} of bound.",
                1e9 / bound.pps(),
                inproc_ns + one_ns,
                e2e_ns - inproc_ns - one_ns,
                mpps(1e9 / (inproc_ns + batched_ns)),
                pct(1e9 / (inproc_ns + batched_ns) / bound.pps()),
                mpps(1e9 / (inproc_ns + offload_ns)),
                pct(1e9 / (inproc_ns + offload_ns) / bound.pps()),
            );
            if a.unpaced {
                let blast = e2e::run(&e2e::RunSpec {
                    router,
                    size,
                    flows: 1,
                    packets: n,
                    load: e2e::Load::Unpaced,
                    max_time,
                })?;
                print_run("end to end, 1 flow, unpaced", &blast, &bound, None);
            }
            // Open loop just below what the router managed in closed loop: the loss figure
            // that matters (is anything dropped below capacity?) and the per-core cost
            // when the router is not always busy.
            let rate = 0.9 * sat.forwarded_pps();
            let n_paced = a
                .packets
                .unwrap_or(((rate * time.as_secs_f64()) as usize).clamp(20_000, cap));
            let paced = e2e::run(&e2e::RunSpec {
                router,
                size,
                flows: 1,
                packets: n_paced,
                load: e2e::Load::Rate(rate),
                max_time,
            })?;
            print_run(
                "end to end, 1 flow, paced at 90% of the closed-loop rate",
                &paced,
                &bound,
                Some(rate),
            );
            let multi = e2e::run(&e2e::RunSpec {
                router,
                size,
                flows: 2,
                packets: n,
                load: e2e::Load::Window(window),
                max_time,
            })?;
            print_run(
                &format!(
                    "end to end, 2 flows (a->b, c->d) at once, closed loop ({window} in flight each)"
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
    print_summary(&reports);
    Ok(())
}

fn print_run(title: &str, r: &e2e::RunResult, bound: &Rate, pace: Option<f64>) {
    let size = bound.size;
    println!("{title}:");
    for (k, f) in r.flows.iter().enumerate() {
        let offered = match pace {
            Some(p) => format!("paced to {} Mpps, ", mpps(p)),
            None => String::new(),
        };
        println!(
            "  flow {} -> {}: sent {} in {:.2} s ({}offered {} Mpps){}; at the sink {} = {} Mpps, {:.2} Gbit/s; \
             loss {} (router ingress socket drops {}, sink socket drops {}, other {}); {}/{} of the newest decrypted and checked",
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
            pct(1.0 - f.received as f64 / f.sent.max(1) as f64),
            f.router_drops,
            f.sink_drops,
            f.sent as i64 - f.received as i64 - f.router_drops as i64 - f.sink_drops as i64,
            f.verified,
            f.sampled,
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
}

fn print_summary(reports: &[SizeReport]) {
    println!();
    println!(
        "== summary (per core = forwarded pps / router cores used; % = of the crypto bound) =="
    );
    print!("{:<44}", "");
    for r in reports {
        print!("{:>30}", format!("{} B", r.size));
    }
    println!();
    type Row<'a> = (
        &'a str,
        Box<dyn Fn(&SizeReport) -> Option<(f64, Option<f64>)>>,
    );
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
            "kernel floor: recvfrom+sendto, per core",
            Box::new(|r| {
                r.floor
                    .as_ref()
                    .map(|(o, _, _)| (1e9 / o.ns_per_packet(), None))
            }),
        ),
        (
            "kernel floor: batched, per core",
            Box::new(|r| {
                r.floor
                    .as_ref()
                    .map(|(_, b, _)| (1e9 / b.ns_per_packet(), None))
            }),
        ),
        (
            "kernel floor: GRO+GSO offload, per core",
            Box::new(|r| {
                r.floor
                    .as_ref()
                    .map(|(_, _, g)| (1e9 / g.ns_per_packet(), None))
            }),
        ),
        (
            "in-process + kernel floor (prediction)",
            Box::new(|r| {
                r.floor
                    .as_ref()
                    .map(|(o, _, _)| (1e9 / (1e9 / r.inproc.rate.pps() + o.ns_per_packet()), None))
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
                r.multi
                    .as_ref()
                    .map(|s| (s.forwarded_pps(), Some(s.router_cores())))
            }),
        ),
    ];
    for (name, f) in &rows {
        print!("{name:<44}");
        for r in reports {
            let cell = match f(r) {
                Some((pps, cores)) => {
                    let extra = match cores {
                        Some(c) => format!("({c:.2})"),
                        None => pct(pps / r.bound.pps()),
                    };
                    format!(
                        "{:>5} Mpps {:>5.2} Gb/s {:>5}",
                        mpps(pps),
                        gbps(pps, r.size),
                        extra
                    )
                }
                None => "-".to_string(),
            };
            print!("{cell:>30}");
        }
        println!();
    }
    for r in reports {
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
            let rx: Vec<String> = m
                .threads
                .iter()
                .filter(|(n, _)| n.starts_with("rx-"))
                .filter(|(_, c)| c.as_secs_f64() / m.window.as_secs_f64() > 0.1)
                .map(|(n, c)| format!("{n} {:.2}", c.as_secs_f64() / m.window.as_secs_f64()))
                .collect();
            println!(
                "{} B, 2 flows: router used {:.2} cores (busy rx threads, cores: {}): {}",
                r.size,
                m.router_cores(),
                rx.join(", "),
                if m.router_cores() > 1.05 && rx.len() >= 2 {
                    "both cores in use"
                } else {
                    "NOT using both cores"
                }
            );
        }
    }
    println!(
        "method: generators encrypt all datagrams before the clock starts. 'closed loop' keeps\n\
         a fixed number of datagrams between generator and sink (half what the router's\n\
         rmem_default socket holds), so the router always has work queued yet nothing is\n\
         dropped: the router is busy whenever it holds a CPU, and its per-core rate is its\n\
         capacity. 'paced' offers 90% of the closed-loop rate open loop: loss there is loss\n\
         below capacity. Router CPU = utime+stime from /proc/PID/stat over [first send, last\n\
         datagram at a sink]; per core = forwarded / (router CPU s / wall s)."
    );
}
