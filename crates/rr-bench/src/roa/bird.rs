//! BIRD 2's side of the ROA benchmark: the same two feeds over two BGP sessions on
//! loopback, the same ROAs from include files, and the change done the way a BIRD
//! operator does it: `configure` (re-reads the include files into the ROA tables), then
//! `reload in` (re-runs the import filter over each channel's import table).
//!
//! What it is:
//! - [`config`]: `roa4`/`roa6` tables filled by two static protocols that `include` the
//!   ROA files (BIRD takes `include` only at the start of a line); per feeder a multihop eBGP session from 127.0.0.1 to the feeder's
//!   listening socket (127.0.0.2, 127.0.0.3), both channels with `import table on`,
//!   `rpki reload off` (so nothing re-evaluates until `reload in`; with BIRD's default
//!   `rpki reload on` the same reload starts by itself after `configure`), the import
//!   filter `if roa_check(TABLE, net, bgp_path.last) = ROA_INVALID then reject; accept;`
//!   and `export all` (the other feeder's best routes go out, as the router's do).
//!   Listening port above 1024: no privilege needed; no kernel protocol: the host's
//!   tables are never touched.
//! - [`BirdSide::change`]: times `configure` until BIRD answers `Reconfigured` (its
//!   ROA tables are then updated: static protocols reconfigure synchronously), and
//!   `reload in "feed_*"` until every route of both import tables has been through the
//!   import filter again. The completion signal: each reloaded route passes
//!   `rte_update` and adds one to its channel's `Import updates: received` counter
//!   (`show protocols all`), so the reload is over when the four channels' counters
//!   have grown by the routes their import tables hold (BIRD 2.0 is single-threaded and
//!   answers the control socket between reload bursts, so a counter it reports is final
//!   for the routes counted).
//!
//! What it is not: an RTR client measurement (BIRD's `protocol rpki` is not used: the
//! include file is the DN42 wiki's documented way and the same input for both).

use crate::bgp::bird::{Bird, ChannelRoutes};
use crate::procfs;
use anyhow::{bail, ensure, Context, Result};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The BGP protocols' names, one per feeder.
pub const PROTOCOLS: [&str; 2] = ["feed_a", "feed_b"];
/// The feeders' addresses.
pub const FEEDERS: [Ipv4Addr; 2] = [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)];
/// The include files, relative to BIRD's directory.
pub const ROA_FILES: [&str; 2] = ["roa_v4.conf", "roa_v6.conf"];

/// BIRD's config (see the module docs).
pub fn config(dir: &Path, local_asn: u32, local_port: u16, feeders: [(u32, u16); 2]) -> String {
    let d = dir.display();
    let mut c = format!(
        "log \"{d}/bird.log\" {{ info, warning, error, fatal, bug }};\n\
         router id 127.0.0.1;\n\
         roa4 table roa_v4;\n\
         roa6 table roa_v6;\n\
         protocol device {{ }}\n\
         protocol static roas_v4 {{\n\
         \troa4 {{ table roa_v4; }};\n\
         include \"{d}/{}\";\n\
         }}\n\
         protocol static roas_v6 {{\n\
         \troa6 {{ table roa_v6; }};\n\
         include \"{d}/{}\";\n\
         }}\n\
         filter roa_in_v4 {{ if roa_check(roa_v4, net, bgp_path.last) = ROA_INVALID then reject; accept; }}\n\
         filter roa_in_v6 {{ if roa_check(roa_v6, net, bgp_path.last) = ROA_INVALID then reject; accept; }}\n",
        ROA_FILES[0], ROA_FILES[1]
    );
    for ((name, addr), (asn, port)) in PROTOCOLS.iter().zip(FEEDERS).zip(feeders) {
        c.push_str(&format!(
            "protocol bgp {name} {{\n\
             \tlocal 127.0.0.1 port {local_port} as {local_asn};\n\
             \tneighbor {addr} port {port} as {asn};\n\
             \tmultihop;\n\
             \thold time 240;\n\
             \tipv4 {{ import table on; rpki reload off; import filter roa_in_v4; export all; }};\n\
             \tipv6 {{ import table on; rpki reload off; import filter roa_in_v6; export all; \
             next hop address 2001:db8::1; }};\n\
             }}\n"
        ));
    }
    c
}

/// The four channels' counters, in `PROTOCOLS` × (ipv4, ipv6) order.
fn channels(b: &mut Bird) -> Result<[[ChannelRoutes; 2]; 2]> {
    channels_of(&b.protocols()?.0)
}

/// The four channels' counters from `show protocols all`, parsed.
fn channels_of(
    routes: &HashMap<(String, String), ChannelRoutes>,
) -> Result<[[ChannelRoutes; 2]; 2]> {
    let get = |p: &str, c: &str| -> Result<ChannelRoutes> {
        routes
            .get(&(p.to_string(), c.to_string()))
            .copied()
            .with_context(|| format!("no channel {p}.{c} in `show protocols all`"))
    };
    Ok([
        [get(PROTOCOLS[0], "ipv4")?, get(PROTOCOLS[0], "ipv6")?],
        [get(PROTOCOLS[1], "ipv4")?, get(PROTOCOLS[1], "ipv6")?],
    ])
}

fn received(c: &[[ChannelRoutes; 2]; 2]) -> u64 {
    c.iter().flatten().map(|r| r.import_received).sum()
}

/// Waits until `pid` has used less than 5 ms of CPU in 250 ms (at most `limit`).
pub fn wait_idle(pid: u32, limit: Duration) {
    let end = Instant::now() + limit;
    let mut last = procfs::process_cpu(pid);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(250));
        let now = procfs::process_cpu(pid);
        match (last, now) {
            (Some(a), Some(b)) if b.saturating_sub(a) < Duration::from_millis(5) => return,
            _ => last = now,
        }
    }
}

/// A running BIRD with both feeds loaded.
pub struct BirdSide {
    pub bird: Bird,
    dir: PathBuf,
    /// Routes in each channel's import table (the feeds' distinct prefixes).
    in_tables: [[u64; 2]; 2],
    /// From start to both feeds in (seconds).
    pub load_time: Duration,
}

/// One timed change.
pub struct BirdRun {
    /// `configure` until `Reconfigured`.
    pub configure: Duration,
    /// `reload in` until every route went through the filter again.
    pub reload: Duration,
    /// When the last poll that still saw the reload unfinished was answered.
    pub reload_low: Duration,
    /// BIRD's CPU time over configure + reload.
    pub cpu: Option<Duration>,
    /// Accepted routes per protocol afterwards, (IPv4, IPv6).
    pub accepted: [[u64; 2]; 2],
    pub polls: u64,
    /// Anything odd (a reload that started by itself, ...).
    pub note: String,
}

impl BirdSide {
    /// Starts BIRD in `dir` (config and include files already there) and waits until
    /// it holds both feeds (`announced[i]` = announcements in feed `i`, (IPv4, IPv6);
    /// `distinct[i]` = its final prefixes) and is idle.
    pub fn start(
        bin: &Path,
        dir: &Path,
        config: &str,
        announced: [[u64; 2]; 2],
        distinct: [[u64; 2]; 2],
        timeout: Duration,
    ) -> Result<BirdSide> {
        let t = Instant::now();
        // As root, BIRD drops to nobody once its sockets are open.
        let extra: &[&str] = if is_root() {
            &["-u", "nobody", "-g", "nogroup"]
        } else {
            &[]
        };
        let mut bird = Bird::start_with(bin, None, dir, config, false, extra)?;
        bird.ctl.set_timeout(timeout)?;
        let deadline = Instant::now() + timeout;
        loop {
            // A BGP protocol shows its channels once it has started.
            let c = channels(&mut bird);
            let done = c.as_ref().is_ok_and(|c| {
                (0..2).all(|p| (0..2).all(|f| c[p][f].import_received >= announced[p][f]))
            });
            if done {
                break;
            }
            if Instant::now() > deadline {
                let (_, states) = bird.protocols()?;
                bail!(
                    "BIRD did not load the feeds within {timeout:?}: {:?}; protocols {states:?}; \
                     log: {}",
                    c,
                    bird.log_tail().replace('\n', " | ")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        wait_idle(bird.pid, Duration::from_secs(120));
        Ok(BirdSide {
            bird,
            dir: dir.to_path_buf(),
            in_tables: distinct,
            load_time: t.elapsed(),
        })
    }

    /// Routes exported to the feeders, both sessions, both families.
    pub fn exported(&mut self) -> Result<u64> {
        let c = channels(&mut self.bird)?;
        Ok(c.iter().flatten().map(|r| r.exported).sum())
    }

    /// Accepted routes per protocol, (IPv4, IPv6).
    pub fn accepted(&mut self) -> Result<[[u64; 2]; 2]> {
        let c = channels(&mut self.bird)?;
        Ok(c.map(|p| p.map(|r| r.imported)))
    }

    /// Puts `files` (IPv4, IPv6) in place of the include files, then times `configure`
    /// and `reload in` (see the module docs).
    pub fn change(
        &mut self,
        files: &[PathBuf; 2],
        poll: Duration,
        timeout: Duration,
    ) -> Result<BirdRun> {
        for (src, name) in files.iter().zip(ROA_FILES) {
            std::fs::copy(src, self.dir.join(name))
                .with_context(|| format!("copying {}", src.display()))?;
        }
        wait_idle(self.bird.pid, Duration::from_secs(60));
        let pid = self.bird.pid;
        let before = received(&channels(&mut self.bird)?);
        let cpu0 = procfs::process_cpu(pid);

        let t = Instant::now();
        let reply = self.bird.ctl.command("configure")?;
        let configure = t.elapsed();
        ensure!(
            reply.iter().any(|(code, _)| *code == 3),
            "configure: {reply:?}"
        );

        let base = received(&channels(&mut self.bird)?);
        let mut note = String::new();
        if base != before {
            note = format!(
                "{} routes re-filtered by configure alone; ",
                base.saturating_sub(before)
            );
        }
        let expected: u64 = self.in_tables.iter().flatten().sum();
        let t = Instant::now();
        let reply = self.bird.ctl.command("reload in \"feed_*\"")?;
        ensure!(
            reply.iter().all(|(code, _)| *code < 8000),
            "reload in: {reply:?}"
        );
        let mut polls = 0;
        let mut low = Duration::ZERO;
        let reload = loop {
            let c = channels(&mut self.bird)?;
            let seen = t.elapsed();
            polls += 1;
            let done = received(&c).saturating_sub(base);
            if done >= expected {
                if done > expected {
                    note.push_str(&format!(
                        "{} more routes filtered than held; ",
                        done - expected
                    ));
                }
                break seen;
            }
            low = seen;
            if seen > timeout {
                bail!("reload not done after {timeout:?}: {done} of {expected} routes");
            }
            std::thread::sleep(poll);
        };
        let cpu = match (cpu0, procfs::process_cpu(pid)) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        Ok(BirdRun {
            configure,
            reload,
            reload_low: low,
            cpu,
            accepted: self.accepted()?,
            polls,
            note,
        })
    }

    /// Peak and current resident set (MiB).
    pub fn rss_mib(&self) -> (Option<f64>, Option<f64>) {
        let f = |field| crate::bgp::status_kib(self.bird.pid, field).map(|k| k as f64 / 1024.0);
        (f("VmHWM"), f("VmRSS"))
    }
}

/// Whether this process runs as root (then BIRD is told to drop to `nobody`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config BIRD 2.0.12 parses (`bird -p`) when BIRD is installed: the ROA tables,
    /// the filters and both sessions as documented.
    #[test]
    fn config_parses_in_bird_when_installed() {
        let dir = std::env::temp_dir().join(format!("rr-bench-roa-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(ROA_FILES[0]),
            "route 10.0.0.0/8 max 24 as 64500;\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(ROA_FILES[1]),
            "route 2001:db8::/32 max 48 as 64500;\n",
        )
        .unwrap();
        let c = config(
            &dir,
            4_242_420_001,
            11_179,
            [(4_242_420_002, 1), (4_242_420_003, 2)],
        );
        assert!(c.contains("roa_check(roa_v6, net, bgp_path.last) = ROA_INVALID then reject"));
        assert_eq!(c.matches("import table on; rpki reload off;").count(), 4);
        assert!(c.contains("neighbor 127.0.0.3 port 2 as 4242420003;"));
        let conf = dir.join("bird.conf");
        std::fs::write(&conf, &c).unwrap();
        if let Ok(out) = std::process::Command::new("bird")
            .arg("-p")
            .arg("-c")
            .arg(&conf)
            .output()
        {
            assert!(
                out.status.success(),
                "bird -p: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn received_sums_the_four_channels() {
        let mut m = HashMap::new();
        for (i, p) in PROTOCOLS.iter().enumerate() {
            for (j, f) in ["ipv4", "ipv6"].iter().enumerate() {
                m.insert(
                    (p.to_string(), f.to_string()),
                    ChannelRoutes {
                        import_received: 10 * (i as u64 + 1) + j as u64,
                        ..ChannelRoutes::default()
                    },
                );
            }
        }
        let c = channels_of(&m).unwrap();
        assert_eq!(received(&c), 10 + 11 + 20 + 21);
        m.remove(&("feed_b".to_string(), "ipv6".to_string()));
        assert!(channels_of(&m).is_err());
    }
}
