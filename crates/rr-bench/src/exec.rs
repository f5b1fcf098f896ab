//! `rr-bench exec`: TCP throughput of unmodified programs through two rootless-routers,
//! beside the same transfer between two kernels joined by wireguard-go, in the same run.
//!
//! What it is: `iperf3` (one stream, then `-P 4`; `-t 5` by default), interleaved,
//! `--rounds` (3) times each, medians printed, over two paths that carry the same
//! inner traffic (172.20.10.1 → 172.20.11.1, WireGuard, MTU 1420):
//! 1. **router path**: two `rootless-router run` processes (started by
//!    [`crate::e2e::spawn_router`]) in a network namespace of their own, joined by one
//!    WireGuard tunnel over that namespace's loopback, each with its own address and a
//!    static route to the other's. `iperf3 -s` runs under `rootless-router exec` of
//!    router B, `iperf3 -c` under `rootless-router exec` of router A: the client's TCP
//!    is router A's stack, the server's router B's, and the programs hold AF_UNIX pairs
//!    to their router (the shim, `librr_preload.so`).
//! 2. **kernel path**: two namespaces joined by a veth, each with a wireguard-go `wg0`
//!    (its own mount namespace for `/run/wireguard`) and the kernel's TCP, `iperf3 -s`
//!    in one, `iperf3 -c` in the other.
//!
//! Printed: Gbit/s at the receiver (iperf3's `sum_received`), the ratio router/kernel
//! (target: ≥ 1), and the CPU time (`/proc/PID/stat` utime + stime) the two routers and
//! the two wireguard-go processes used during each transfer, also per Gbit carried.
//!
//! What it is not: a like-for-like CPU comparison (on the kernel path TCP and the
//! copies run in the kernel, charged to iperf3 and softirqs, not to wireguard-go; on
//! the router path the routers do TCP themselves), a WAN benchmark (loopback and veth:
//! no latency, no loss), or a test (it asserts nothing). It needs root (namespaces),
//! `ip`, `unshare`, `nsenter`, `wg`, `wireguard-go` and `iperf3`; when the router path
//! cannot run (no `exec`, no shim) it says why and prints the kernel path alone.

use crate::{e2e, procfs, progress};
use anyhow::{anyhow, bail, ensure, Context, Result};
use rr_config::keys;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ExecArgs {
    /// Length of each iperf3 transfer, seconds (`-t`).
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Rounds of every (path, streams) pair; medians are printed.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Parallel streams per transfer (`-P`), one measurement each.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 4])]
    streams: Vec<usize>,
    /// The router binary (default: `rootless-router` next to this executable); the shim
    /// `librr_preload.so` is looked for beside it by `rootless-router exec`.
    #[arg(long)]
    router: Option<PathBuf>,
    /// Only the kernel path.
    #[arg(long)]
    no_router: bool,
}

/// Inner addresses: the client side and the server side, on both paths.
const CLIENT_V4: &str = "172.20.10.1";
const SERVER_V4: &str = "172.20.11.1";
/// The kernel path's veth.
const VETH_A: &str = "10.77.0.1";
const VETH_B: &str = "10.77.0.2";
const WG_PORT: u16 = 51820;
/// The routers' tunnel ports on their namespace's loopback.
const ROUTER_A_PORT: u16 = 51001;
const ROUTER_B_PORT: u16 = 51002;
const IPERF_PORT: u16 = 5201;

fn output(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    Ok(out)
}

/// Runs a command that must succeed; the error names it with its stderr.
fn run_ok(cmd: &mut Command) -> Result<()> {
    let out = output(cmd)?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

fn ip(args: &[&str]) -> Result<()> {
    run_ok(Command::new("ip").args(args))
}

/// `ip netns exec NS PROGRAM` (ip execs PROGRAM: the child's pid is PROGRAM's).
fn in_ns(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(program);
    c
}

/// Polls `f` every 100 ms until it is true or `limit` has passed.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Network namespaces made for this run. Dropping kills every process left inside them
/// (all started by this run) and deletes them.
struct Namespaces(Vec<String>);

impl Namespaces {
    fn add(&mut self, name: String) -> Result<String> {
        let _ = ip(&["netns", "del", &name]);
        ip(&["netns", "add", &name]).context("creating a network namespace (needs root)")?;
        self.0.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let pids = Command::new("ip")
                .args(["netns", "pids", ns])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            for pid in pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                // SAFETY: kill has no memory preconditions; the pid is in our namespace.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A child process killed (and reaped) when dropped.
struct Proc(Child);

impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }
    fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cpu(pid: u32) -> Duration {
    procfs::process_cpu(pid).unwrap_or_default()
}

fn write_key(path: &Path, key: &rr_config::Key) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{}", key.to_base64())?;
    Ok(())
}

// ------------------------------------------------------------------ kernel path

/// Two namespaces, veth between them, wireguard-go `wg0` in each.
struct KernelPath {
    client_ns: String,
    server_ns: String,
    wg: [Proc; 2],
}

fn start_wireguard_go(ns: &str, log: &Path) -> Result<Proc> {
    let script = "mkdir -p /run/wireguard && \
                  mount -t tmpfs -o mode=0755 rrb-wg /run/wireguard && \
                  exec wireguard-go -f wg0";
    let child = in_ns(ns, "unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context("starting wireguard-go")?;
    let mut p = Proc(child);
    let pid = p.pid().to_string();
    let up = wait_for(Duration::from_secs(10), || {
        Command::new("nsenter")
            .args([
                "-t",
                &pid,
                "-m",
                "-n",
                "test",
                "-S",
                "/run/wireguard/wg0.sock",
            ])
            .status()
            .is_ok_and(|s| s.success())
    });
    if !up || !p.alive() {
        bail!(
            "wireguard-go in {ns} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
    Ok(p)
}

impl KernelPath {
    fn up(nss: &mut Namespaces, tag: &str, dir: &Path) -> Result<KernelPath> {
        let a = nss.add(format!("rrx-{tag}-ka"))?;
        let b = nss.add(format!("rrx-{tag}-kb"))?;
        ip(&[
            "link", "add", "veth0", "netns", &a, "type", "veth", "peer", "name", "veth0", "netns",
            &b,
        ])?;
        for (ns, addr) in [(&a, VETH_A), (&b, VETH_B)] {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "veth0",
            ])?;
            ip(&["-n", ns, "link", "set", "veth0", "up"])?;
        }
        let (ka, kb) = (keys::generate(), keys::generate());
        let mut wg = Vec::new();
        for (ns, own, peer_pub, peer_veth, addr, remote) in [
            (
                &a,
                &ka,
                keys::public(&kb),
                VETH_B,
                CLIENT_V4,
                "172.20.11.0/24",
            ),
            (
                &b,
                &kb,
                keys::public(&ka),
                VETH_A,
                SERVER_V4,
                "172.20.10.0/24",
            ),
        ] {
            let p = start_wireguard_go(ns, &dir.join(format!("{ns}.wg.log")))?;
            let key_file = dir.join(format!("{ns}.key"));
            write_key(&key_file, own)?;
            let pid = p.pid().to_string();
            run_ok(
                Command::new("nsenter")
                    .args(["-t", &pid, "-m", "-n", "wg", "set", "wg0", "private-key"])
                    .arg(&key_file)
                    .args(["listen-port", &WG_PORT.to_string(), "peer"])
                    .arg(peer_pub.to_base64())
                    .args(["allowed-ips", remote, "endpoint"])
                    .arg(format!("{peer_veth}:{WG_PORT}")),
            )?;
            ip(&["-n", ns, "addr", "add", &format!("{addr}/32"), "dev", "wg0"])?;
            ip(&["-n", ns, "link", "set", "wg0", "up"])?;
            ip(&["-n", ns, "route", "add", remote, "dev", "wg0", "src", addr])?;
            wg.push(p);
        }
        let [wa, wb]: [Proc; 2] = wg.try_into().map_err(|_| anyhow!("two wireguard-go"))?;
        let ok = wait_for(Duration::from_secs(10), || {
            output(in_ns(&a, "ping").args(["-c", "1", "-W", "1", SERVER_V4]))
                .is_ok_and(|o| o.status.success())
        });
        ensure!(ok, "no ping {CLIENT_V4} -> {SERVER_V4} over wireguard-go");
        Ok(KernelPath {
            client_ns: a,
            server_ns: b,
            wg: [wa, wb],
        })
    }

    fn transfer(&mut self, seconds: u32, streams: usize, log: &Path) -> Result<Transfer> {
        let server = in_ns(&self.server_ns, "iperf3")
            .args(["-s", "-1", "-p", &IPERF_PORT.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .context("starting iperf3 -s (is iperf3 installed?)")?;
        let _server = Proc(server);
        let ns = self.server_ns.clone();
        wait_for(Duration::from_secs(5), || tcp_listening(&ns, IPERF_PORT));
        let pids = [self.wg[0].pid(), self.wg[1].pid()];
        let client = in_ns(&self.client_ns, "iperf3");
        measure(client, seconds, streams, &pids)
    }
}

/// Whether a TCP listener on `port` shows in `ss -tln` inside `ns`.
fn tcp_listening(ns: &str, port: u16) -> bool {
    output(in_ns(ns, "ss").args(["-Htln"]))
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.contains(&format!(":{port} ")))
        })
        .unwrap_or(false)
}

// ------------------------------------------------------------------ router path

/// Two routers in one namespace, one tunnel between them over its loopback.
struct RouterPath {
    ns: String,
    bin: PathBuf,
    dir: PathBuf,
    routers: [Proc; 2],
    server: Option<Proc>,
}

fn router_config(
    dir: &Path,
    own: &str,
    other: &str,
    keys: (&rr_config::Key, rr_config::Key),
    ports: (u16, u16),
) -> String {
    format!(
        "[router]\naddresses = [\"{own}/32\"]\ncontrol_socket = \"{}\"\n\n\
         [[interface]]\nname = \"tun\"\nprivate_key = \"{}\"\nlisten_port = {}\n\
         peer_public_key = \"{}\"\nendpoint = \"127.0.0.1:{}\"\npersistent_keepalive = 25\n\n\
         [[route]]\nprefix = \"{other}/24\"\ninterface = \"tun\"\n",
        dir.join("ctl.sock").display(),
        keys.0.to_base64(),
        ports.0,
        keys.1.to_base64(),
        ports.1,
    )
}

/// Runs `f` on a thread that joined network namespace `ns`: processes it spawns start
/// there.
fn in_netns_thread<T: Send>(ns: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: a valid namespace fd; setns only changes this thread's namespace.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error()).context("setns");
            }
            f()
        })
        .join()
        .map_err(|_| anyhow!("the thread in {ns} panicked"))?
    })
}

impl RouterPath {
    fn up(nss: &mut Namespaces, tag: &str, bin: &Path, dir: &Path) -> Result<RouterPath> {
        let ns = nss.add(format!("rrx-{tag}-r"))?;
        let (ka, kb) = (keys::generate(), keys::generate());
        let (da, db) = (dir.join("router-a"), dir.join("router-b"));
        let ca = router_config(
            &da,
            CLIENT_V4,
            "172.20.11.0",
            (&ka, keys::public(&kb)),
            (ROUTER_A_PORT, ROUTER_B_PORT),
        );
        let cb = router_config(
            &db,
            SERVER_V4,
            "172.20.10.0",
            (&kb, keys::public(&ka)),
            (ROUTER_B_PORT, ROUTER_A_PORT),
        );
        let (a, b) = in_netns_thread(&ns, || {
            let a = e2e::spawn_router(bin, &da, &ca)?;
            let b = e2e::spawn_router(bin, &db, &cb)?;
            Ok((Proc(a), Proc(b)))
        })?;
        let mut routers = [a, b];
        for (r, d) in routers.iter_mut().zip([&da, &db]) {
            let sock = d.join("ctl.sock");
            let up = wait_for(Duration::from_secs(10), || sock.exists() || !r.alive());
            if !up || !r.alive() {
                bail!(
                    "router in {} did not start: {}",
                    d.display(),
                    std::fs::read_to_string(d.join("router.log")).unwrap_or_default()
                );
            }
        }
        let sock = da.join("ctl.sock");
        let ok = wait_for(Duration::from_secs(10), || {
            output(
                Command::new(bin)
                    .arg("ctl")
                    .arg("--socket")
                    .arg(&sock)
                    .args(["ping", SERVER_V4, "-c", "1"]),
            )
            .is_ok_and(|o| o.status.success())
        });
        ensure!(
            ok,
            "router A gets no ping reply from {SERVER_V4} over the tunnel"
        );
        Ok(RouterPath {
            ns,
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            routers,
            server: None,
        })
    }

    /// `rootless-router exec --socket <router X> -- PROGRAM...` inside the namespace.
    fn exec(&self, router: &str) -> Command {
        let mut c = in_ns(&self.ns, &self.bin);
        c.arg("exec")
            .arg("--socket")
            .arg(self.dir.join(router).join("ctl.sock"))
            .arg("--");
        c
    }

    fn transfer(&mut self, seconds: u32, streams: usize, log: &Path) -> Result<Transfer> {
        // One iperf3 -s under router B's exec for the whole run (it serves one test at
        // a time).
        let restart = match &mut self.server {
            Some(p) => !p.alive(),
            None => true,
        };
        if restart {
            let child = self
                .exec("router-b")
                .args(["iperf3", "-s", "-p", &IPERF_PORT.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log)?)
                .spawn()
                .context("starting rootless-router exec -- iperf3 -s")?;
            let mut p = Proc(child);
            // The wildcard listener shows in the namespace's kernel too (the shim hands
            // the kernel's listening socket to the router as well).
            let ns = self.ns.clone();
            wait_for(Duration::from_secs(5), || {
                tcp_listening(&ns, IPERF_PORT) || !p.alive()
            });
            if !p.alive() {
                bail!(
                    "iperf3 -s under exec of router B exited: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            self.server = Some(p);
        }
        let pids = [self.routers[0].pid(), self.routers[1].pid()];
        let mut client = self.exec("router-a");
        client.arg("iperf3");
        measure(client, seconds, streams, &pids)
    }
}

// ------------------------------------------------------------------ measuring

/// One transfer: throughput at the receiver and the CPU time of the two tunnel
/// processes (routers or wireguard-go) during it.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    gbps: f64,
    cpu: [Duration; 2],
    wall: Duration,
}

impl Transfer {
    fn cpu_total(&self) -> f64 {
        (self.cpu[0] + self.cpu[1]).as_secs_f64()
    }
}

/// Runs `client` (a command prefix ending before iperf3's own arguments) as
/// `iperf3 -c SERVER -t S -P N -J`, with `pids`' CPU time around it. Up to 3 attempts
/// while the server refuses (it may still be starting).
fn measure(mut client: Command, seconds: u32, streams: usize, pids: &[u32; 2]) -> Result<Transfer> {
    client.args([
        "-c",
        SERVER_V4,
        "-p",
        &IPERF_PORT.to_string(),
        "-t",
        &seconds.to_string(),
        "-P",
        &streams.to_string(),
        "-J",
    ]);
    let mut last = String::new();
    for _ in 0..3 {
        let before = pids.map(cpu);
        let t0 = Instant::now();
        let out = output(&mut client)?;
        let wall = t0.elapsed();
        let after = pids.map(cpu);
        let text = String::from_utf8_lossy(&out.stdout);
        match parse_iperf(&text) {
            Ok(bps) => {
                return Ok(Transfer {
                    gbps: bps / 1e9,
                    cpu: [after[0] - before[0], after[1] - before[1]],
                    wall,
                })
            }
            Err(e) => {
                last = format!(
                    "{e}; exit {}; stderr: {}; stdout: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim(),
                    text.chars().take(600).collect::<String>()
                );
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    bail!("iperf3 -c failed: {last}")
}

/// Receiver-side bits per second of an `iperf3 -J` report.
fn parse_iperf(json: &str) -> Result<f64> {
    let v: serde_json::Value = serde_json::from_str(json).context("iperf3 printed no JSON")?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        bail!("iperf3: {e}");
    }
    let bps = v
        .pointer("/end/sum_received/bits_per_second")
        .and_then(|b| b.as_f64())
        .context("no end.sum_received.bits_per_second in iperf3's JSON")?;
    ensure!(bps > 0.0, "iperf3 received nothing");
    Ok(bps)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn check_tools(tools: &[&str]) -> Result<()> {
    for t in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ensure!(found, "`{t}` not found (apt-get install iproute2 util-linux wireguard-go wireguard-tools iperf3)");
    }
    Ok(())
}

pub fn run(a: ExecArgs) -> Result<()> {
    progress("start");
    ensure!(
        a.rounds > 0 && !a.streams.is_empty(),
        "--rounds and --streams must not be empty"
    );
    check_tools(&[
        "ip",
        "unshare",
        "nsenter",
        "wg",
        "wireguard-go",
        "iperf3",
        "ss",
    ])?;
    let router = if a.no_router {
        None
    } else {
        Some(crate::router_binary(a.router.clone())?)
    };
    let tag = std::process::id().to_string();
    let dir = std::env::temp_dir().join(format!("rr-bench-exec-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut nss = Namespaces(Vec::new());

    println!("rr-bench exec: iperf3 through two rootless-routers (programs under `exec`),");
    println!("beside two kernels joined by wireguard-go, interleaved in the same run.");
    println!(
        "{} s per transfer, streams {:?}, {} rounds, median shown; host {} CPUs",
        a.seconds,
        a.streams,
        a.rounds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    progress("kernel path: namespaces, veth, wireguard-go");
    let mut kernel = KernelPath::up(&mut nss, &tag, &dir)?;
    let mut routed = match &router {
        None => None,
        Some(bin) => {
            progress("router path: two routers, one tunnel");
            println!("router: {}", bin.display());
            match RouterPath::up(&mut nss, &tag, bin, &dir) {
                Ok(r) => Some(r),
                Err(e) => {
                    println!("router path could not be set up: {e:#}");
                    None
                }
            }
        }
    };

    // results[streams index] = (kernel transfers, router transfers)
    let mut results: Vec<(Vec<Transfer>, Vec<Transfer>)> =
        a.streams.iter().map(|_| (Vec::new(), Vec::new())).collect();
    let mut router_error: Option<String> = None;
    for round in 1..=a.rounds {
        for (i, &n) in a.streams.iter().enumerate() {
            progress(&format!("round {round}: kernel path, -P {n}"));
            let k = kernel.transfer(a.seconds, n, &dir.join("iperf3-s-kernel.log"))?;
            print_transfer(
                &format!("round {round} -P {n} kernel + wireguard-go"),
                &k,
                "wireguard-go",
            );
            results[i].0.push(k);
            if let (Some(r), None) = (routed.as_mut(), &router_error) {
                progress(&format!("round {round}: router path, -P {n}"));
                match r.transfer(a.seconds, n, &dir.join("iperf3-s-router.log")) {
                    Ok(t) => {
                        print_transfer(
                            &format!("round {round} -P {n} rootless-router exec"),
                            &t,
                            "routers",
                        );
                        results[i].1.push(t);
                    }
                    Err(e) => {
                        println!("router path failed: {e:#}");
                        router_error = Some(format!("{e:#}"));
                    }
                }
            }
        }
    }

    println!();
    println!("== summary (medians of {} rounds) ==", a.rounds);
    println!(
        "{:<10}{:>14}{:>14}{:>10}{:>26}{:>26}",
        "streams",
        "kernel Gb/s",
        "router Gb/s",
        "ratio",
        "wireguard-go CPU s/Gbit",
        "routers CPU s/Gbit"
    );
    for (&n, (k, r)) in a.streams.iter().zip(&results) {
        let kg = median(k.iter().map(|t| t.gbps).collect());
        let rg = median(r.iter().map(|t| t.gbps).collect());
        let per_gbit = |v: &[Transfer]| {
            median(
                v.iter()
                    .map(|t| t.cpu_total() / (t.gbps * t.wall.as_secs_f64()).max(1e-9))
                    .collect(),
            )
        };
        let show = |x: Option<f64>, p: usize| x.map_or("-".to_string(), |x| format!("{x:.p$}"));
        let ratio = match (rg, kg) {
            (Some(r), Some(k)) if k > 0.0 => Some(r / k),
            _ => None,
        };
        println!(
            "{:<10}{:>14}{:>14}{:>10}{:>26}{:>26}",
            format!("-P {n}"),
            show(kg, 2),
            show(rg, 2),
            show(ratio, 2),
            show(per_gbit(k), 3),
            show(per_gbit(r), 3),
        );
        if let Some(ratio) = ratio {
            println!(
                "  -P {n}: router path / kernel path = {ratio:.2} (target >= 1.00): {}",
                if ratio >= 1.0 {
                    "meets it"
                } else {
                    "MISSES it"
                }
            );
        }
    }
    if let Some(e) = router_error {
        println!("the router path failed, figures above are incomplete: {e}");
    } else if routed.is_none() && router.is_some() {
        println!("the router path did not run (see above): kernel path only");
    }
    println!(
        "method: iperf3 -J, receiver's rate (end.sum_received). CPU = utime + stime from\n\
         /proc/PID/stat of the two tunnel processes across each transfer (routers: their\n\
         own TCP/IP stacks, WireGuard and the relay to the programs' AF_UNIX pairs;\n\
         wireguard-go: WireGuard only — the kernel path's TCP runs in the kernel, charged\n\
         to iperf3 and softirqs). CPU s/Gbit = CPU seconds / (Gbit/s x wall seconds)."
    );
    drop(routed.take());
    drop(kernel);
    drop(nss);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn print_transfer(what: &str, t: &Transfer, procs: &str) {
    println!(
        "{what}: {:.2} Gbit/s; {procs} CPU {:.2} s + {:.2} s over {:.1} s wall",
        t.gbps,
        t.cpu[0].as_secs_f64(),
        t.cpu[1].as_secs_f64(),
        t.wall.as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iperf_json_receiver_rate() {
        let ok = r#"{"start":{},"end":{"sum_sent":{"bits_per_second":2e9},
                    "sum_received":{"bits_per_second":1.5e9}}}"#;
        assert_eq!(parse_iperf(ok).unwrap(), 1.5e9);
        assert!(parse_iperf(r#"{"error":"unable to connect to server"}"#).is_err());
        assert!(parse_iperf(r#"{"end":{"sum_received":{"bits_per_second":0}}}"#).is_err());
        assert!(parse_iperf("iperf3: error").is_err());
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }

    #[test]
    fn router_configs_point_at_each_other() {
        let (ka, kb) = (keys::generate(), keys::generate());
        let t = router_config(
            Path::new("/x"),
            CLIENT_V4,
            "172.20.11.0",
            (&ka, keys::public(&kb)),
            (1, 2),
        );
        assert!(t.contains("listen_port = 1\n") && t.contains("endpoint = \"127.0.0.1:2\""));
        assert!(t.contains("prefix = \"172.20.11.0/24\""));
        assert!(t.contains(&keys::public(&kb).to_base64()));
        let c = rr_config::Config::parse(&t, "router-a.toml", Path::new("/x"))
            .unwrap_or_else(|e| panic!("{e:?}\n{t}"));
        assert_eq!(c.interfaces.len(), 1);
        assert_eq!(c.routes.len(), 1);
    }
}
