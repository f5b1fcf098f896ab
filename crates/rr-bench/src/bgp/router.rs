//! rootless-router as the receiver: the real binary as a child process with one dummy
//! WireGuard tunnel and one BGP session over the host's TCP to the feeder on 127.0.0.1.
//!
//! What it is: the config (`[[bgp]] transport = "host"`, `import = "all"`, no import
//! limit, routes resolved to the dummy tunnel), the process (stopped with SIGTERM, then
//! SIGKILL, when dropped) and the question the benchmark asks it over its control socket
//! — `show-bgp`, whose `fib_v4` / `fib_v6` are the routes in its forwarding table (what
//! `rootless-router ctl show bgp --json` prints), asked directly on the socket so that
//! polling every few milliseconds does not fork a process each time.
//!
//! What it is not: a test of the router's BGP behaviour (the interop suite is).

use super::bird::Counts;
use anyhow::{bail, Context, Result};
use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// The dummy tunnel the feeder's routes resolve to.
const TUNNEL: &str = "feed";

/// The router's config for one run.
pub fn config(dir: &Path, asn: u32, feeder_asn: u32, feeder_port: u16, listen_port: u16) -> String {
    let router_key = rr_config::keys::generate();
    let peer_key = rr_config::keys::generate();
    format!(
        "[router]\n\
         asn = {asn}\n\
         router_id = \"172.20.0.1\"\n\
         addresses = [\"172.20.0.1/32\"]\n\
         control_socket = \"{}\"\n\
         \n\
         [[interface]]\n\
         name = \"{TUNNEL}\"\n\
         private_key = \"{}\"\n\
         listen_port = {listen_port}\n\
         peer_public_key = \"{}\"\n\
         \n\
         [[bgp]]\n\
         name = \"feeder\"\n\
         neighbor = \"127.0.0.1\"\n\
         port = {feeder_port}\n\
         interface = \"{TUNNEL}\"\n\
         transport = \"host\"\n\
         remote_asn = {feeder_asn}\n\
         hold_time = 240\n\
         import = \"all\"\n\
         export = \"none\"\n\
         import_limit = 0\n",
        dir.join("ctl.sock").display(),
        router_key.to_base64(),
        rr_config::keys::public(&peer_key).to_base64(),
    )
}

/// The router as a child process.
pub struct Router {
    child: Child,
    pub pid: u32,
    dir: PathBuf,
    /// Forwarding-table routes before the feed.
    base: Counts,
}

/// The router's answer to `show-bgp`: (fib counts, the session's state and last error).
fn show_bgp(socket: &Path) -> Result<(Counts, String)> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    rr_ctl::write_line(&mut stream, &rr_ctl::Request::ShowBgp { name: None })?;
    match rr_ctl::read_line(&mut BufReader::new(stream), 16 << 20)? {
        Some(rr_ctl::Response::Bgp {
            sessions,
            fib_v4,
            fib_v6,
        }) => {
            let state =
                sessions
                    .first()
                    .map_or("no session".to_string(), |s| match &s.last_error {
                        Some(e) => format!("{} ({e})", s.state),
                        None => s.state.clone(),
                    });
            Ok((
                Counts {
                    v4: fib_v4,
                    v6: fib_v6,
                },
                state,
            ))
        }
        Some(other) => bail!("unexpected answer to show-bgp: {other:?}"),
        None => bail!("the router closed the control socket without an answer"),
    }
}

impl Router {
    /// Starts `bin run --config` with `config` in `dir`; returns once its control
    /// socket answers `show-bgp`.
    pub fn start(bin: &Path, dir: &Path, config: &str) -> Result<Router> {
        let child = crate::e2e::spawn_router(bin, dir, config)?;
        let pid = child.id();
        let mut r = Router {
            child,
            pid,
            dir: dir.to_path_buf(),
            base: Counts::default(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = r.child.try_wait()? {
                bail!(
                    "the router exited ({status}) at start-up:\n{}",
                    r.log_tail()
                );
            }
            match show_bgp(&r.socket()) {
                Ok((c, _)) => {
                    r.base = c;
                    return Ok(r);
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(e).context("the router's control socket did not answer show-bgp")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("ctl.sock")
    }

    /// Routes from the feed in the forwarding table (beyond what was there before).
    pub fn counts(&self) -> Result<Counts> {
        let (c, _) = show_bgp(&self.socket())?;
        Ok(Counts {
            v4: c.v4.saturating_sub(self.base.v4),
            v6: c.v6.saturating_sub(self.base.v6),
        })
    }

    /// The session's state (and last error), for progress and failure messages.
    pub fn session_state(&self) -> String {
        match show_bgp(&self.socket()) {
            Ok((_, s)) => s,
            Err(e) => format!("(control socket: {e:#})"),
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("router.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config the benchmark gives the router passes the router's own validation and
    /// means what the benchmark needs.
    #[test]
    fn config_is_valid_for_the_router() {
        let dir = Path::new("/tmp/rr-bench-test");
        let text = config(dir, 4_242_420_001, 4_242_420_002, 1790, 51820);
        let c = rr_config::Config::parse(&text, "router.toml", dir).unwrap();
        assert_eq!(c.router.asn, Some(4_242_420_001));
        let b = &c.bgp[0];
        assert_eq!(b.transport, rr_config::Transport::Host);
        assert_eq!(b.port, 1790);
        assert_eq!(b.remote_asn, 4_242_420_002);
        assert_eq!(b.import, rr_config::Policy::All);
        assert_eq!(b.import_limit, None);
        assert_eq!(b.interface.as_deref(), Some(TUNNEL));
        assert_eq!(c.interfaces[0].name, TUNNEL);
    }
}
