//! `rootless-router ctl`: the client side of the control socket, and its tables.
//!
//! What it is: argument parsing, one request, rendering the answer as birdc / `wg show`
//! style text or as JSON (`--json`). What it is not: a source of state; everything shown
//! comes from the running node.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use rr_ctl::{Request, Response};
use std::io::{BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct CtlArgs {
    /// Control socket (default: $ROOTLESS_ROUTER_SOCKET, then --config's control_socket,
    /// then $XDG_RUNTIME_DIR/rootless-router.sock).
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// Take the control socket from this config file.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Machine-readable output: one JSON object per answer line.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: CtlCmd,
}

#[derive(Subcommand)]
enum CtlCmd {
    /// Show live state.
    Show {
        #[command(subcommand)]
        what: ShowWhat,
    },
    /// Which route and tunnel a destination takes.
    RouteLookup { addr: IpAddr },
    /// ICMP echo from the router's own stack.
    Ping {
        addr: IpAddr,
        #[arg(short = 'c', long, default_value_t = 3)]
        count: u32,
        /// Tunnel for a link-local destination.
        #[arg(short = 'I', long)]
        interface: Option<String>,
    },
    /// Hop-by-hop path from the router's own stack.
    Traceroute {
        addr: IpAddr,
        #[arg(short = 'm', long, default_value_t = 30)]
        max_hops: u8,
        #[arg(short = 'I', long)]
        interface: Option<String>,
    },
}

#[derive(Subcommand)]
enum ShowWhat {
    /// Tunnels, as `wg show`.
    Interfaces,
    /// The BGP sessions, like birdc `show protocols`.
    Bgp,
    /// The routing table, like birdc `show route`: `show routes [for ADDR] [all]`.
    Routes {
        /// `for ADDR`: only the routes of the longest prefix covering ADDR; `all`:
        /// every route with its attributes, also the ones not chosen or filtered.
        #[arg(num_args = 0..=3, value_name = "for ADDR | all")]
        words: Vec<String>,
    },
}

/// `for ADDR` and `all`, in any order.
fn routes_request(words: &[String]) -> Result<Request> {
    let mut for_addr = None;
    let mut all = false;
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "all" => all = true,
            "for" => {
                let a = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("`for` needs an address"))?;
                for_addr = Some(
                    a.parse::<IpAddr>()
                        .with_context(|| format!("{a:?} is not an IP address"))?,
                );
            }
            other => bail!("unexpected {other:?}: expected `for ADDR` or `all`"),
        }
    }
    Ok(Request::ShowRoutes { for_addr, all })
}

/// Resolves the socket path as SPEC.md orders it.
pub fn socket_path(socket: Option<PathBuf>, config: Option<&Path>) -> Result<PathBuf> {
    if let Some(s) = socket {
        return Ok(s);
    }
    if let Some(s) = std::env::var_os("ROOTLESS_ROUTER_SOCKET").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(s));
    }
    if let Some(c) = config {
        if let Some(s) =
            rr_config::Config::control_socket_of(c).map_err(|e| anyhow::anyhow!("{e}"))?
        {
            return Ok(s);
        }
    }
    Ok(rr_ctl::default_socket_path())
}

/// Sends `req` and calls `each` for every answer line until the final one.
pub fn request(socket: &Path, req: &Request, mut each: impl FnMut(&Response)) -> Result<()> {
    let conn = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach a node at {} (is `rootless-router run` running, as this user?)",
            socket.display()
        )
    })?;
    let mut w = conn.try_clone()?;
    rr_ctl::write_line(&mut w, req)?;
    let mut r = BufReader::new(conn);
    loop {
        // A full table's `show routes --json` is a few hundred MB on one line.
        let resp: Response = rr_ctl::read_line(&mut r, 1 << 30)?
            .ok_or_else(|| anyhow::anyhow!("the node closed the connection without an answer"))?;
        if let Response::Error { message } = &resp {
            bail!("{message}");
        }
        each(&resp);
        if resp.is_final() {
            return Ok(());
        }
    }
}

pub fn run(args: CtlArgs) -> Result<ExitCode> {
    let socket = socket_path(args.socket, args.config.as_deref())?;
    let req = match args.cmd {
        CtlCmd::Show {
            what: ShowWhat::Interfaces,
        } => Request::ShowInterfaces,
        CtlCmd::Show {
            what: ShowWhat::Bgp,
        } => Request::ShowBgp,
        CtlCmd::Show {
            what: ShowWhat::Routes { words },
        } => routes_request(&words)?,
        CtlCmd::RouteLookup { addr } => Request::RouteLookup { addr },
        CtlCmd::Ping {
            addr,
            count,
            interface,
        } => Request::Ping {
            addr,
            count,
            interface,
        },
        CtlCmd::Traceroute {
            addr,
            max_hops,
            interface,
        } => Request::Traceroute {
            addr,
            max_hops,
            interface,
        },
    };
    let json = args.json;
    let mut ok = true;
    let mut out = std::io::stdout().lock();
    request(&socket, &req, |resp| {
        if json {
            let _ = writeln!(out, "{}", serde_json::to_string(resp).unwrap_or_default());
        } else {
            let _ = write!(out, "{}", render(resp));
        }
        let _ = out.flush();
        match resp {
            Response::PingDone { received, .. } => ok = *received > 0,
            Response::TracerouteDone { reached } => ok = *reached,
            _ => {}
        }
    })?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// "1 day, 2 hours, 1 minute, 5 seconds ago", as `wg show` words it.
fn ago(secs: u64) -> String {
    let parts = [
        (secs / 86400, "day"),
        (secs % 86400 / 3600, "hour"),
        (secs % 3600 / 60, "minute"),
        (secs % 60, "second"),
    ];
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    if words.is_empty() {
        "Now".to_string()
    } else {
        format!("{} ago", words.join(", "))
    }
}

/// "3d 2h", "2h 5m", "5m 3s", "7s": compact, for a table column.
fn since(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86400,
        secs % 86400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// Text rendering of one answer line.
pub fn render(resp: &Response) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    match resp {
        Response::Interfaces {
            interfaces,
            counters,
        } => {
            for (n, i) in interfaces.iter().enumerate() {
                if n > 0 {
                    s.push('\n');
                }
                let _ = writeln!(s, "interface: {}", i.name);
                let _ = writeln!(s, "  public key: {}", i.public_key);
                let _ = writeln!(s, "  listening port: {}", i.listen_port);
                if !i.addresses.is_empty() {
                    let _ = writeln!(s, "  addresses: {}", i.addresses.join(", "));
                }
                let _ = writeln!(s, "  mtu: {}", i.mtu);
                let _ = writeln!(s, "\n  peer: {}", i.peer_public_key);
                if let Some(e) = &i.endpoint {
                    let _ = writeln!(s, "    endpoint: {e}");
                }
                let _ = writeln!(
                    s,
                    "    allowed ips: (any: a point-to-point link, routes decide)"
                );
                let _ = writeln!(
                    s,
                    "    latest handshake: {}",
                    i.latest_handshake_secs.map_or("(none)".into(), ago)
                );
                let _ = writeln!(
                    s,
                    "    transfer: {} received, {} sent (inner bytes; {} / {} packets)",
                    human_bytes(i.rx_bytes),
                    human_bytes(i.tx_bytes),
                    i.rx_packets,
                    i.tx_packets
                );
                if let Some(k) = i.persistent_keepalive {
                    let _ = writeln!(s, "    persistent keepalive: every {k} seconds");
                }
                if i.rx_errors + i.tx_errors + i.endpoint_changes > 0 {
                    let _ = writeln!(
                        s,
                        "    errors: {} rejected datagrams, {} unsent; endpoint changes: {}",
                        i.rx_errors, i.tx_errors, i.endpoint_changes
                    );
                }
            }
            if interfaces.is_empty() {
                s.push_str("no interfaces\n");
            }
            let _ = writeln!(
                s,
                "\nforwarded {}, local {}, echo replies {}, fragmented {}, ICMP errors sent {}",
                counters.forwarded,
                counters.local,
                counters.echo_replied,
                counters.fragmented,
                counters.icmp_errors_sent
            );
            let drops: Vec<String> = counters
                .dropped
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            if !drops.is_empty() {
                let _ = writeln!(s, "dropped: {}", drops.join(", "));
            }
        }
        Response::Routes { routes } => {
            let w = routes
                .iter()
                .map(|r| r.prefix.len())
                .max()
                .unwrap_or(6)
                .max(6);
            let _ = writeln!(
                s,
                "{:<w$}    {:<16} {:<16} {:<26} as path",
                "prefix", "interface", "source", "gateway"
            );
            for r in routes {
                let source = match &r.peer {
                    Some(p) => format!("{} {p}", r.source),
                    None => r.source.clone(),
                };
                let mark = if r.filtered {
                    "!"
                } else if r.best {
                    "*"
                } else {
                    " "
                };
                let path = r.as_path.as_deref().map_or(String::new(), |p| {
                    let o = match r.origin.as_deref() {
                        Some("IGP") => "i",
                        Some("EGP") => "e",
                        Some(_) => "?",
                        None => "",
                    };
                    format!("[{}{o}]", if p.is_empty() { "" } else { p })
                });
                let _ = writeln!(
                    s,
                    "{:<w$} {mark}  {:<16} {:<16} {:<26} {path}",
                    r.prefix,
                    if r.interface.is_empty() {
                        "-"
                    } else {
                        &r.interface
                    },
                    source,
                    r.gateway.as_deref().unwrap_or("-"),
                );
                if let Some(m) = r.med {
                    let _ = writeln!(s, "{:<w$}    med {m}", "");
                }
                if let Some(l) = r.local_pref {
                    let _ = writeln!(s, "{:<w$}    local pref {l}", "");
                }
                if !r.communities.is_empty() {
                    let _ = writeln!(s, "{:<w$}    communities {}", "", r.communities.join(" "));
                }
                if !r.large_communities.is_empty() {
                    let _ = writeln!(
                        s,
                        "{:<w$}    large communities {}",
                        "",
                        r.large_communities.join(" ")
                    );
                }
            }
        }
        Response::Bgp {
            sessions,
            fib_v4,
            fib_v6,
        } => {
            let wn = sessions
                .iter()
                .map(|x| x.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            let wb = sessions
                .iter()
                .map(|x| x.neighbor.len())
                .max()
                .unwrap_or(8)
                .max(8);
            let _ = writeln!(
                s,
                "{:<wn$}  {:<wb$}  {:<10}  {:<11}  {:<10}  {:<18}  info",
                "name", "neighbor", "as", "state", "since", "imp/filt/exp"
            );
            for x in sessions {
                let routes = format!("{}/{}/{}", x.imported, x.filtered, x.exported);
                let mut info = Vec::new();
                if !x.families.is_empty() {
                    info.push(x.families.join("+"));
                }
                if x.extended_next_hop {
                    info.push("ext-nh".into());
                }
                if let Some(e) = &x.last_error {
                    info.push(format!("last error: {e}"));
                }
                let _ = writeln!(
                    s,
                    "{:<wn$}  {:<wb$}  {:<10}  {:<11}  {:<10}  {:<18}  {}",
                    x.name,
                    x.neighbor,
                    x.remote_asn,
                    x.state,
                    since(x.since_secs),
                    routes,
                    info.join(", ")
                );
            }
            let _ = writeln!(s, "forwarding table: {fib_v4} IPv4, {fib_v6} IPv6 routes");
        }
        Response::Lookup { addr, route, local } => {
            if *local {
                let _ = writeln!(s, "{addr} is this node's own address");
            }
            match route {
                Some(r) => {
                    let _ = writeln!(
                        s,
                        "{addr} via {} dev {} ({}{})",
                        r.prefix,
                        r.interface,
                        r.source,
                        r.gateway
                            .as_ref()
                            .map(|g| format!(", gateway {g}"))
                            .unwrap_or_default()
                    );
                }
                None if !*local => {
                    let _ = writeln!(s, "{addr}: no route");
                }
                None => {}
            }
        }
        Response::PingReply {
            seq,
            from,
            ttl,
            rtt_ms,
            error,
        } => match (from, error) {
            (Some(f), Some(e)) => {
                let _ = writeln!(s, "From {f} icmp_seq={seq} {e}");
            }
            (Some(f), None) => {
                let _ = writeln!(
                    s,
                    "reply from {f}: icmp_seq={seq} ttl={} time={:.2} ms",
                    ttl.unwrap_or(0),
                    rtt_ms.unwrap_or(0.0)
                );
            }
            (None, _) => {
                let _ = writeln!(s, "icmp_seq={seq}: no answer");
            }
        },
        Response::PingDone { sent, received } => {
            let loss = if *sent == 0 {
                0.0
            } else {
                100.0 * f64::from(sent.saturating_sub(*received)) / f64::from(*sent)
            };
            let _ = writeln!(
                s,
                "{sent} packets transmitted, {received} received, {loss:.0}% packet loss"
            );
        }
        Response::Hop {
            ttl, from, rtt_ms, ..
        } => match from {
            Some(f) => {
                let _ = writeln!(s, "{ttl:>2}  {f}  {:.2} ms", rtt_ms.unwrap_or(0.0));
            }
            None => {
                let _ = writeln!(s, "{ttl:>2}  *");
            }
        },
        Response::TracerouteDone { reached } => {
            if !reached {
                s.push_str("destination not reached\n");
            }
        }
        Response::Exec { answer } => {
            let _ = writeln!(s, "{answer:?}");
        }
        Response::Error { message } => {
            let _ = writeln!(s, "error: {message}");
        }
    }
    s
}
