//! BIRD 2 as the reference receiver: in a network namespace of its own, fed over a veth
//! pair by the feeder in a second namespace, with or without a kernel protocol writing
//! the routes into that namespace's kernel FIB.
//!
//! What it is:
//! - [`Topology`]: two namespaces made for one run (`ip netns add`), joined by a veth
//!   pair: the feeder's side 198.18.0.1/30 + 2001:2::1/64, BIRD's side 198.18.0.2/30 +
//!   2001:2::2/64 (RFC 2544 / RFC 5180 benchmarking ranges). A direct eBGP session, so
//!   BIRD accepts the feed's next hops (the feeder's addresses) as directly connected and
//!   its kernel protocol can install them. Deleted on drop; the host's own tables are
//!   never touched.
//! - [`in_netns`]: runs a closure on a thread that joined a namespace (`setns`), so the
//!   feeder's listening socket lives there.
//! - [`Bird`]: one `bird -f` per run with a fresh config, and a client of its control
//!   socket (the protocol birdc speaks: `DDDD-text` lines, the last one `DDDD text`).
//!   Routes "in BIRD's table" are the BGP channels' `imported` counters (`show protocols
//!   all`, constant time for BIRD); routes "in the kernel FIB" are read from the
//!   namespace's own kernel counters — `/proc/PID/net/rt6_stats` (IPv6 route entries, a
//!   counter) and `/proc/PID/net/fib_triestat` (IPv4 prefixes in the main table, a walk
//!   of the trie) — less what was there before the feed.
//!
//! What it is not: a BIRD test harness or a config generator for anything but this
//! benchmark. The topology needs root (namespaces) and the `ip` program; [`Bird`] and
//! [`Ctl`] alone (as `rr-bench roa` uses them, on loopback) need only `bird`.

use anyhow::{anyhow, bail, ensure, Context, Result};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The feeder's addresses on its side of the veth pair.
pub const FEEDER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const FEEDER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
/// BIRD's addresses on its side.
const BIRD_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const BIRD_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
/// The BGP protocol's name in BIRD's config.
const PROTOCOL: &str = "feeder";

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running `ip` (iproute2)")?;
    ensure!(
        out.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Two network namespaces and a veth pair between them, for one BIRD run.
pub struct Topology {
    /// The feeder's namespace.
    pub feed: String,
    /// BIRD's namespace.
    pub bird: String,
}

impl Topology {
    pub fn create(tag: &str) -> Result<Topology> {
        let t = Topology {
            feed: format!("rrb-feed-{tag}"),
            bird: format!("rrb-bird-{tag}"),
        };
        // Left-overs of a run that was killed.
        let _ = ip(&["netns", "del", &t.feed]);
        let _ = ip(&["netns", "del", &t.bird]);
        ip(&["netns", "add", &t.feed]).context("creating a network namespace (needs root)")?;
        ip(&["netns", "add", &t.bird])?;
        let (f, b) = (t.feed.as_str(), t.bird.as_str());
        ip(&[
            "-n", b, "link", "add", "rrb-b", "type", "veth", "peer", "name", "rrb-f", "netns", f,
        ])?;
        for (ns, dev, v4, v6) in [
            (f, "rrb-f", FEEDER_V4, FEEDER_V6),
            (b, "rrb-b", BIRD_V4, BIRD_V6),
        ] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            // No IPv6 link-local address: it would appear (after DAD) in the middle of
            // a run and count as a route; the session and next hops use the globals.
            ip(&["-n", ns, "link", "set", dev, "addrgenmode", "none"])?;
            // The same MTU as loopback's order of magnitude: TCP segments of up to 64 KiB,
            // as on 127.0.0.1 where the router's session runs.
            ip(&["-n", ns, "link", "set", dev, "mtu", "65535", "up"])?;
            ip(&["-n", ns, "addr", "add", &format!("{v4}/30"), "dev", dev])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                dev,
                "nodad",
            ])?;
        }
        Ok(t)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.feed]);
        let _ = ip(&["netns", "del", &self.bird]);
    }
}

/// Runs `f` on a thread that has joined network namespace `name` (`/run/netns/NAME`);
/// sockets it creates stay in that namespace.
pub fn in_netns<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    let path = format!("/run/netns/{name}");
    let ns = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: a valid namespace fd; setns only changes this thread's namespace.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("setns into {name}"));
            }
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow!("the thread in {name} panicked"))?
    })
}

/// BIRD's config for one run: the BGP session to the feeder importing everything, and
/// with `kernel` the two kernel protocols exporting everything (`learn off`, `merge paths
/// off`: one route per prefix, nothing read back).
pub fn config(
    kernel: bool,
    local_asn: u32,
    feeder_asn: u32,
    feeder_port: u16,
    log: &Path,
) -> String {
    let mut c = format!(
        "log \"{}\" all;\n\
         router id {BIRD_V4};\n\
         protocol device {{ }}\n\
         protocol bgp {PROTOCOL} {{\n\
         \tlocal {BIRD_V4} as {local_asn};\n\
         \tneighbor {FEEDER_V4} port {feeder_port} as {feeder_asn};\n\
         \thold time 240;\n\
         \tstart delay time 0;\n\
         \tipv4 {{ import all; export none; }};\n\
         \tipv6 {{ import all; export none; }};\n\
         }}\n",
        log.display()
    );
    if kernel {
        for v in ["ipv4", "ipv6"] {
            c.push_str(&format!(
                "protocol kernel kernel_{v} {{\n\
                 \t{v} {{ import none; export all; }};\n\
                 \tlearn off;\n\
                 \tmerge paths off;\n\
                 }}\n"
            ));
        }
    }
    c
}

/// One line of a control-socket reply: its code and text.
type Line = (u16, String);

/// A client of BIRD's control socket.
pub struct Ctl {
    stream: BufReader<UnixStream>,
}

impl Ctl {
    pub fn connect(path: &Path) -> Result<Ctl> {
        let s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut c = Ctl {
            stream: BufReader::new(s),
        };
        // The greeting: `0001 BIRD 2.0.12 ready.`
        let hello = c.reply()?;
        ensure!(
            hello.first().is_some_and(|(code, _)| *code == 1),
            "unexpected greeting {hello:?}"
        );
        Ok(c)
    }

    /// How long a reply may take (30 s unless changed).
    pub fn set_timeout(&mut self, t: Duration) -> Result<()> {
        self.stream.get_ref().set_read_timeout(Some(t))?;
        Ok(())
    }

    /// Sends one command and returns its reply.
    pub fn command(&mut self, cmd: &str) -> Result<Vec<Line>> {
        let s = self.stream.get_mut();
        s.write_all(cmd.as_bytes())?;
        s.write_all(b"\n")?;
        self.reply()
    }

    /// Reads reply lines up to the last one (a code followed by a space).
    fn reply(&mut self) -> Result<Vec<Line>> {
        let mut lines = Vec::new();
        let mut code = 0;
        loop {
            let mut l = String::new();
            if self.stream.read_line(&mut l)? == 0 {
                bail!("BIRD closed its control socket");
            }
            let l = l.trim_end_matches('\n');
            match parse_line(l) {
                ReplyLine::Coded(c, text, last) => {
                    code = c;
                    lines.push((c, text.to_string()));
                    if last {
                        return Ok(lines);
                    }
                }
                ReplyLine::Continued(text) => lines.push((code, text.to_string())),
                ReplyLine::Async => {}
            }
        }
    }
}

enum ReplyLine<'a> {
    /// `DDDD-text` (more follows) or `DDDD text` (the last line).
    Coded(u16, &'a str, bool),
    /// ` text`: more of the previous code.
    Continued(&'a str),
    /// `+text`: a log message, not part of the reply.
    Async,
}

fn parse_line(l: &str) -> ReplyLine<'_> {
    let coded = l
        .get(..4)
        .and_then(|d| d.parse::<u16>().ok())
        .and_then(|c| match l.as_bytes().get(4) {
            Some(b'-') => Some((c, false)),
            Some(b' ') => Some((c, true)),
            None => Some((c, true)),
            _ => None,
        });
    match coded {
        Some((c, last)) => ReplyLine::Coded(c, l.get(5..).unwrap_or(""), last),
        None if l.starts_with('+') => ReplyLine::Async,
        None => ReplyLine::Continued(l.strip_prefix(' ').unwrap_or(l)),
    }
}

/// Route counters of one channel, from a `Routes:` line of `show protocols all`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelRoutes {
    pub imported: u64,
    pub filtered: u64,
    pub exported: u64,
    /// The `received` column of `Import updates:` (route change stats): every route the
    /// channel's import filter ran on, a re-run from its import table (`reload in`)
    /// included.
    pub import_received: u64,
}

/// What `show protocols all` says: (protocol, channel) → route counters, and protocol →
/// its state, since and info columns.
pub type Protocols = (
    HashMap<(String, String), ChannelRoutes>,
    HashMap<String, String>,
);

/// `show protocols all`, parsed.
pub fn parse_protocols(lines: &[Line]) -> Protocols {
    let mut routes = HashMap::new();
    let mut states = HashMap::new();
    let mut proto = String::new();
    let mut channel = String::new();
    for (code, text) in lines {
        if *code == 1002 {
            // `feeder     BGP        ---        up     16:01:02.345  Established`
            let mut f = text.split_whitespace();
            proto = f.next().unwrap_or("").to_string();
            channel.clear();
            let rest: Vec<&str> = f.skip(2).collect();
            states.insert(proto.clone(), rest.join(" "));
            continue;
        }
        let t = text.trim();
        if let Some(c) = t.strip_prefix("Channel ") {
            channel = c.trim().to_string();
        } else if let Some(r) = t.strip_prefix("Routes:") {
            // `577706 imported, 0 filtered, 0 exported, 577706 preferred`
            let mut cr = ChannelRoutes::default();
            for part in r.split(',') {
                let mut w = part.split_whitespace();
                let (Some(n), Some(what)) = (w.next(), w.next()) else {
                    continue;
                };
                let Ok(n) = n.parse::<u64>() else { continue };
                match what {
                    "imported" => cr.imported = n,
                    "filtered" => cr.filtered = n,
                    "exported" => cr.exported = n,
                    _ => {}
                }
            }
            routes.insert((proto.clone(), channel.clone()), cr);
        } else if let Some(r) = t.strip_prefix("Import updates:") {
            // `received rejected filtered ignored accepted`, after the Routes: line.
            let received = r.split_whitespace().next().and_then(|n| n.parse().ok());
            if let (Some(n), Some(cr)) =
                (received, routes.get_mut(&(proto.clone(), channel.clone())))
            {
                cr.import_received = n;
            }
        }
    }
    (routes, states)
}

/// IPv4 prefixes in the main table, from `/proc/net/fib_triestat` (the `Prefixes:` line
/// of its `Main:` section).
pub fn parse_triestat(text: &str) -> Option<u64> {
    let main = text.split("Main:").nth(1)?;
    let line = main
        .lines()
        .find(|l| l.trim_start().starts_with("Prefixes:"))?;
    line.split(':').nth(1)?.trim().parse().ok()
}

/// IPv6 route entries in all tables, from `/proc/net/rt6_stats` (hex fields: fib nodes,
/// route nodes, allocated, route entries, ...).
pub fn parse_rt6_stats(text: &str) -> Option<u64> {
    u64::from_str_radix(text.split_whitespace().nth(3)?, 16).ok()
}

/// A running BIRD.
pub struct Bird {
    child: Child,
    pub pid: u32,
    pub ctl: Ctl,
    pub kernel: bool,
    dir: PathBuf,
    /// Kernel route counts before the feed, IPv4 and IPv6.
    kernel_base: (u64, u64),
}

/// Routes a receiver holds, per family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub v4: u64,
    pub v6: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.v4 + self.v6
    }
}

impl Bird {
    /// Starts `bird -f` in namespace `ns` (`None`: this process's own, with `extra` args)
    /// with `config`, files in `dir`; returns once its control socket answers.
    pub fn start(
        bin: &Path,
        ns: Option<&str>,
        dir: &Path,
        config: &str,
        kernel: bool,
    ) -> Result<Bird> {
        Bird::start_with(bin, ns, dir, config, kernel, &[])
    }

    /// [`Bird::start`] with extra arguments for BIRD (`-u USER`, ...).
    pub fn start_with(
        bin: &Path,
        ns: Option<&str>,
        dir: &Path,
        config: &str,
        kernel: bool,
        extra: &[&str],
    ) -> Result<Bird> {
        std::fs::create_dir_all(dir)?;
        let conf = dir.join("bird.conf");
        std::fs::write(&conf, config)?;
        let sock = dir.join("bird.ctl");
        let out = std::fs::File::create(dir.join("bird.out"))?;
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let child = cmd
            .arg("-f")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(&sock)
            .arg("-P")
            .arg(dir.join("bird.pid"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {} in {ns:?}", bin.display()))?;
        // `ip netns exec` execs the program in place: the child is BIRD itself.
        let pid = child.id();
        let mut child = child;
        let deadline = Instant::now() + Duration::from_secs(20);
        let ctl = loop {
            if let Some(status) = child.try_wait()? {
                let out = std::fs::read_to_string(dir.join("bird.out")).unwrap_or_default();
                bail!("BIRD exited ({status}) at start-up: {out}");
            }
            if let Ok(c) = Ctl::connect(&sock) {
                break c;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("BIRD's control socket did not answer within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        ensure!(comm.trim() == "bird", "process {pid} is {comm:?}, not bird");
        let mut b = Bird {
            child,
            pid,
            ctl,
            kernel,
            dir: dir.to_path_buf(),
            kernel_base: (0, 0),
        };
        b.kernel_base = (b.kernel_v4()?, b.kernel_v6()?);
        Ok(b)
    }

    /// `show protocols all`, parsed.
    pub fn protocols(&mut self) -> Result<Protocols> {
        let lines = self.ctl.command("show protocols all")?;
        Ok(parse_protocols(&lines))
    }

    /// Routes in BIRD's tables from the feeder, per family.
    pub fn table_counts(&mut self) -> Result<Counts> {
        let (routes, _) = self.protocols()?;
        let get = |c: &str| {
            routes
                .get(&(PROTOCOL.to_string(), c.to_string()))
                .map_or(0, |r| r.imported)
        };
        Ok(Counts {
            v4: get("ipv4"),
            v6: get("ipv6"),
        })
    }

    fn kernel_v4(&self) -> Result<u64> {
        let p = format!("/proc/{}/net/fib_triestat", self.pid);
        parse_triestat(&std::fs::read_to_string(&p)?).with_context(|| format!("parsing {p}"))
    }

    fn kernel_v6(&self) -> Result<u64> {
        let p = format!("/proc/{}/net/rt6_stats", self.pid);
        parse_rt6_stats(&std::fs::read_to_string(&p)?).with_context(|| format!("parsing {p}"))
    }

    /// Routes BIRD added to its namespace's kernel FIB, per family.
    pub fn kernel_counts(&self) -> Result<Counts> {
        Ok(Counts {
            v4: self.kernel_v4()?.saturating_sub(self.kernel_base.0),
            v6: self.kernel_v6()?.saturating_sub(self.kernel_base.1),
        })
    }

    /// What the benchmark polls: BIRD's table; with a kernel protocol, the IPv6 kernel
    /// FIB (a counter) and, for IPv4, the routes BIRD's kernel protocol has exported.
    /// BIRD exports to the kernel synchronously (each netlink request waits for the
    /// kernel's answer before the next route) and answers its control socket only between
    /// such exports, so a route counted there is in the kernel — which [`Bird::confirm`]
    /// then checks once against the kernel itself (walking the IPv4 trie costs tens of
    /// milliseconds at a full table: too much to do every poll beside the receiver).
    pub fn counts(&mut self) -> Result<Counts> {
        if !self.kernel {
            return self.table_counts();
        }
        let (routes, _) = self.protocols()?;
        let exported = routes
            .get(&("kernel_ipv4".to_string(), "ipv4".to_string()))
            .map_or(0, |r| r.exported);
        Ok(Counts {
            v4: exported,
            v6: self.kernel_v6()?.saturating_sub(self.kernel_base.1),
        })
    }

    /// The authoritative count once [`Bird::counts`] says done: the kernel's own with a
    /// kernel protocol, else BIRD's table.
    pub fn confirm(&mut self) -> Result<Counts> {
        if self.kernel {
            self.kernel_counts()
        } else {
            self.table_counts()
        }
    }

    /// The BGP session's state column (`up  <since>  Established`).
    pub fn session_state(&mut self) -> String {
        match self.protocols() {
            Ok((_, states)) => states.get(PROTOCOL).cloned().unwrap_or_default(),
            Err(e) => format!("(control socket: {e:#})"),
        }
    }

    /// The last line of `show route count` (the total over all tables), for the record.
    pub fn route_count(&mut self) -> Result<String> {
        let lines = self.ctl.command("show route count")?;
        // Per table, then `Total: N of N routes for N networks in 2 tables`.
        Ok(lines
            .iter()
            .map(|(_, t)| t.trim())
            .rfind(|t| !t.is_empty())
            .unwrap_or_default()
            .to_string())
    }

    /// Asks BIRD to shut down (it withdraws its kernel routes first) and waits for it,
    /// killing it after `wait`.
    pub fn stop(mut self, wait: Duration) -> Result<()> {
        let _ = self.ctl.command("down");
        let deadline = Instant::now() + wait;
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("BIRD did not shut down within {wait:?}; killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// BIRD's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("bird.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines() {
        assert!(matches!(
            parse_line("0001 BIRD 2.0.12 ready."),
            ReplyLine::Coded(1, "BIRD 2.0.12 ready.", true)
        ));
        assert!(matches!(
            parse_line("1002-feeder     BGP"),
            ReplyLine::Coded(1002, "feeder     BGP", false)
        ));
        assert!(matches!(
            parse_line("     Routes:         5 imported"),
            ReplyLine::Continued("    Routes:         5 imported")
        ));
        assert!(matches!(parse_line("+ log line"), ReplyLine::Async));
        assert!(matches!(parse_line("0000"), ReplyLine::Coded(0, "", true)));
    }

    /// A raw reply of BIRD 2.0.12 to `show protocols all`, captured from this benchmark's
    /// kernel-FIB run in mid-feed: per-channel counters land under the right protocol.
    #[test]
    fn show_protocols_all_from_a_real_bird() {
        let raw = include_str!("bird_show_protocols_all.txt");
        let mut lines = Vec::new();
        let mut code = 0;
        for l in raw.lines() {
            match parse_line(l) {
                ReplyLine::Coded(c, t, _) => {
                    code = c;
                    lines.push((c, t.to_string()));
                }
                ReplyLine::Continued(t) => lines.push((code, t.to_string())),
                ReplyLine::Async => {}
            }
        }
        let (routes, states) = parse_protocols(&lines);
        let get = |p: &str, c: &str| routes[&(p.to_string(), c.to_string())];
        assert_eq!(get("feeder", "ipv4").imported, 271_887);
        assert_eq!(get("feeder", "ipv4").import_received, 271_887);
        assert_eq!(get("kernel_ipv4", "ipv4").import_received, 0);
        assert_eq!(get("feeder", "ipv6").imported, 0);
        assert_eq!(get("kernel_ipv4", "ipv4").exported, 271_887);
        assert_eq!(get("kernel_ipv4", "ipv4").imported, 0);
        assert_eq!(get("kernel_ipv6", "ipv6"), ChannelRoutes::default());
        assert_eq!(routes.len(), 4);
        assert!(
            states["feeder"].ends_with("Established"),
            "{:?}",
            states["feeder"]
        );
        assert!(states["device1"].starts_with("up"));
    }

    #[test]
    fn proc_net_counters() {
        let triestat = "Basic info: size of leaf: 48 bytes, size of tnode: 40 bytes.\n\
             Main:\n\tAver depth:     1.66\n\tMax depth:      2\n\tLeaves:         3\n\
             \tPrefixes:       577709\n\tInternal nodes: 2\nLocal:\n\tPrefixes:       3\n";
        assert_eq!(parse_triestat(triestat), Some(577_709));
        assert_eq!(parse_triestat("Local:\n\tPrefixes: 3\n"), None);
        assert_eq!(
            parse_rt6_stats("0009 0006 000d 6c2d 0000 0000 0000\n"),
            Some(0x6c2d)
        );
        assert_eq!(parse_rt6_stats("0009 0006"), None);
    }
}
