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
    /// Re-read the config file the node was started with and apply what changed (as
    /// SIGHUP does); refused whole, changing nothing, if it is invalid or needs a restart.
    Reload,
}

#[derive(Subcommand)]
enum ShowWhat {
    /// Tunnels, as `wg show`.
    Interfaces,
    /// The BGP sessions, like birdc `show protocols`; with NAME that session in detail
    /// (birdc `show protocols all NAME`), with its filtered routes per reason.
    Bgp { name: Option<String> },
    /// The routing table, like birdc `show route`: `show routes [PREFIX | for ADDR] [all |
    /// filtered]`.
    Routes {
        /// `for ADDR`: only the routes of the longest prefix covering ADDR; `all`:
        /// every route with its attributes, also the ones not chosen or filtered;
        /// `filtered`: only the filtered ones, each with its reason.
        #[arg(num_args = 0..=4, value_name = "for ADDR | all | filtered")]
        words: Vec<String>,
    },
    /// The ROA sources (`[roa]` files, RTR servers) and the ROA set in use.
    Roa,
}

/// `for ADDR`, `all` and `filtered`, in any order.
fn routes_request(words: &[String]) -> Result<Request> {
    let mut for_addr = None;
    let mut prefix = None;
    let mut all = false;
    let mut filtered = false;
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "all" => all = true,
            // `all` too: a node older than `filtered` ignores it, and the client keeps
            // the filtered routes of the whole list itself.
            "filtered" => (all, filtered) = (true, true),
            "for" => {
                let a = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("`for` needs an address"))?;
                for_addr = Some(
                    a.parse::<IpAddr>()
                        .with_context(|| format!("{a:?} is not an IP address"))?,
                );
            }
            net if net.contains('/') => {
                let n = net
                    .parse::<ipnet::IpNet>()
                    .with_context(|| format!("{net:?} is not a prefix"))?;
                if n.trunc() != n {
                    bail!("{net:?} has host bits set (the prefix is {})", n.trunc());
                }
                prefix = Some(n);
            }
            other => {
                bail!("unexpected {other:?}: expected a PREFIX, `for ADDR`, `all` or `filtered`")
            }
        }
    }
    Ok(Request::ShowRoutes {
        for_addr,
        all,
        filtered,
        prefix,
    })
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
        let resp: Response = match rr_ctl::read_line(&mut r, 1 << 30) {
            Ok(Some(resp)) => resp,
            Ok(None) => bail!("the node closed the connection without an answer"),
            Err(rr_ctl::CtlError::Json(e)) => bail!(
                "the node's answer is not one this client understands (is the node newer \
                 than the client?): {e}"
            ),
            Err(e) => return Err(e.into()),
        };
        if let Response::Error { message } = &resp {
            bail!("{message}");
        }
        each(&resp);
        if resp.is_final() {
            return Ok(());
        }
    }
}

/// What an answer from a node older than the request's options still needs: only the
/// named session, only the filtered routes.
fn narrow(req: &Request, resp: &Response) -> Result<Response> {
    let mut resp = resp.clone();
    match (req, &mut resp) {
        (Request::ShowBgp { name: Some(name) }, Response::Bgp { sessions, .. }) => {
            sessions.retain(|s| &s.name == name);
            if sessions.is_empty() {
                bail!("no BGP session named \"{name}\"");
            }
        }
        (
            Request::ShowRoutes {
                filtered, prefix, ..
            },
            Response::Routes { routes },
        ) => {
            // What an older node does not filter itself.
            routes.retain(|r| {
                (!filtered || r.filtered)
                    && prefix.is_none_or(|p| r.prefix.parse::<ipnet::IpNet>() == Ok(p))
            });
        }
        _ => {}
    }
    Ok(resp)
}

pub fn run(args: CtlArgs) -> Result<ExitCode> {
    let socket = socket_path(args.socket, args.config.as_deref())?;
    let req = match args.cmd {
        CtlCmd::Show {
            what: ShowWhat::Interfaces,
        } => Request::ShowInterfaces,
        CtlCmd::Show {
            what: ShowWhat::Bgp { name },
        } => Request::ShowBgp { name },
        CtlCmd::Show {
            what: ShowWhat::Routes { words },
        } => routes_request(&words)?,
        CtlCmd::Show {
            what: ShowWhat::Roa,
        } => Request::ShowRoa,
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
        CtlCmd::Reload => Request::Reload,
    };
    let json = args.json;
    let mut ok = true;
    let mut out = std::io::stdout().lock();
    let detail = matches!(req, Request::ShowBgp { name: Some(_) });
    let mut failure = None;
    request(&socket, &req, |resp| {
        let resp = match narrow(&req, resp) {
            Ok(r) => r,
            Err(e) => {
                failure = Some(e);
                return;
            }
        };
        let resp = &resp;
        if json {
            let _ = writeln!(out, "{}", serde_json::to_string(resp).unwrap_or_default());
        } else if detail {
            let _ = write!(out, "{}", render_bgp_detail(resp));
        } else {
            let _ = write!(out, "{}", render(resp));
        }
        let _ = out.flush();
        match resp {
            Response::PingDone { received, .. } => ok = *received > 0,
            Response::TracerouteDone { reached } => ok = *reached,
            Response::Reload { refused, .. } => ok = refused.is_empty(),
            _ => {}
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
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

/// `3 (roa-invalid 2, not-dn42 1)`: the filtered routes of a session, the reasons
/// by count (a node older than the per-reason counts gives only the total).
fn filtered_summary(x: &rr_ctl::BgpSessionStatus) -> String {
    let mut reasons: Vec<(&String, &u64)> = x.filtered_by.iter().filter(|(_, n)| **n > 0).collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if reasons.is_empty() {
        return x.filtered.to_string();
    }
    let parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
    format!("{} ({})", x.filtered, parts.join(", "))
}

/// `show bgp NAME`: one session, birdc `show protocols all` style.
pub fn render_bgp_detail(resp: &Response) -> String {
    use std::fmt::Write as _;
    let Response::Bgp { sessions, .. } = resp else {
        return render(resp);
    };
    let mut s = String::new();
    for x in sessions {
        let _ = writeln!(s, "session {}", x.name);
        let via = match &x.interface {
            Some(i) => format!(" ({} over {i})", x.transport),
            None => format!(" ({})", x.transport),
        };
        let _ = writeln!(s, "  neighbor:      {}{via}", x.neighbor);
        let _ = writeln!(s, "  remote AS:     {}", x.remote_asn);
        let _ = writeln!(
            s,
            "  state:         {} for {}",
            x.state,
            since(x.since_secs)
        );
        if let Some(id) = &x.remote_router_id {
            let _ = writeln!(s, "  router id:     {id}");
        }
        if !x.families.is_empty() {
            let enh = if x.extended_next_hop {
                " (extended next hop)"
            } else {
                ""
            };
            let _ = writeln!(s, "  families:      {}{enh}", x.families.join(", "));
        }
        if let (Some(h), Some(k)) = (x.hold_time, x.keepalive) {
            let _ = writeln!(s, "  hold time:     {h} s, keepalive {k} s");
        }
        if let Some(e) = &x.last_error {
            let _ = writeln!(s, "  last error:    {e}");
        }
        let _ = writeln!(
            s,
            "  routes:        {} imported ({} IPv4, {} IPv6), {} filtered, {} exported",
            x.imported, x.imported_v4, x.imported_v6, x.filtered, x.exported
        );
        let _ = writeln!(s, "  filtered:      {}", filtered_summary(x));
        if let Some(l) = x.import_limit {
            let _ = writeln!(s, "  import limit:  {l} per family");
        }
    }
    s
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
                "{:<w$}    {:<16} {:<16} {:<26} {:<8} as path",
                "prefix", "interface", "source", "gateway", "roa"
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
                    "{:<w$} {mark}  {:<16} {:<16} {:<26} {:<8} {path}",
                    r.prefix,
                    if r.interface.is_empty() {
                        "-"
                    } else {
                        &r.interface
                    },
                    source,
                    r.gateway.as_deref().unwrap_or("-"),
                    r.roa.as_deref().unwrap_or("-"),
                );
                if r.filtered {
                    let why = r.reason.as_deref().unwrap_or("reason not given");
                    let _ = writeln!(s, "{:<w$}    filtered: {why}", "");
                }
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
                if x.filtered > 0 {
                    let _ = writeln!(s, "{:<wn$}  filtered: {}", "", filtered_summary(x));
                }
            }
            let _ = writeln!(s, "forwarding table: {fib_v4} IPv4, {fib_v6} IPv6 routes");
        }
        Response::Roa {
            configured,
            sources,
            total_v4,
            total_v6,
            pending,
            reject_invalid,
            reject_unknown,
        } => {
            if !configured {
                s.push_str(
                    "no [roa] in the config: every route's ROA state is unknown, none is \
                     rejected for it\n",
                );
                return s;
            }
            let names: Vec<String> = sources
                .iter()
                .map(|x| format!("{} {}", x.kind, x.name))
                .collect();
            let wn = names.iter().map(String::len).max().unwrap_or(6).max(6);
            let _ = writeln!(
                s,
                "{:<wn$}  {:<10}  {:>6}  {:>6}  {:>10}  {:>7}  {:<10}  info",
                "source", "state", "ipv4", "ipv6", "serial", "session", "updated"
            );
            for (x, name) in sources.iter().zip(&names) {
                let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                let mut info = Vec::new();
                if let Some(v) = x.version {
                    info.push(format!("RTR version {v}"));
                }
                if x.bad_lines > 0 {
                    info.push(format!("{} bad lines", x.bad_lines));
                }
                if let Some(e) = &x.last_error {
                    info.push(format!("last error: {e}"));
                }
                let _ = writeln!(
                    s,
                    "{name:<wn$}  {:<10}  {:>6}  {:>6}  {:>10}  {:>7}  {:<10}  {}",
                    x.state,
                    x.v4,
                    x.v6,
                    opt(x.serial.map(|n| n.to_string())),
                    opt(x.session_id.map(|n| n.to_string())),
                    opt(x.updated_secs.map(|t| format!("{} ago", since(t)))),
                    info.join(", ")
                );
            }
            let word = |reject: bool| if reject { "rejected" } else { "accepted" };
            let _ = writeln!(
                s,
                "in use: {total_v4} IPv4 + {total_v6} IPv6 ROAs{}; invalid routes {}, unknown routes {}",
                if *pending {
                    " (a change is about to be applied)"
                } else {
                    ""
                },
                word(*reject_invalid),
                word(*reject_unknown)
            );
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
        Response::Reload {
            file,
            refused,
            kept,
            reevaluated,
            restarted,
            added,
            removed,
            static_routes_changed,
            tunnels,
            roa_changed,
            announce_changed,
            servers,
        } => render_reload(
            &mut s,
            file,
            refused,
            [kept, added, removed, servers],
            [reevaluated, restarted],
            [*static_routes_changed, *roa_changed, *announce_changed],
            tunnels,
        ),
        Response::Error { message } => {
            let _ = writeln!(s, "error: {message}");
        }
    }
    s
}

/// `ctl reload`: what was done, one line per kind of change, or why nothing was.
fn render_reload(
    s: &mut String,
    file: &str,
    refused: &[String],
    [kept, added, removed, servers]: [&Vec<String>; 4],
    [reevaluated, restarted]: [&Vec<rr_ctl::ReloadedSession>; 2],
    [static_routes_changed, roa_changed, announce_changed]: [bool; 3],
    tunnels: &rr_ctl::ReloadedTunnels,
) {
    use std::fmt::Write as _;
    if !refused.is_empty() {
        let _ = writeln!(s, "reload of {file} refused, nothing changed:");
        for r in refused {
            let _ = writeln!(s, "  {r}");
        }
        return;
    }
    let flag = |on: bool, what: &str| if on { what.to_string() } else { String::new() };
    let with_changes = |list: &[rr_ctl::ReloadedSession]| {
        list.iter()
            .map(|x| format!("{} ({})", x.name, x.changed.join(", ")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(s, "reloaded {file}");
    let lines = [
        ("kept", kept.join(", ")),
        ("re-evaluated", with_changes(reevaluated)),
        ("restarted", with_changes(restarted)),
        ("added", added.join(", ")),
        ("removed", removed.join(", ")),
        ("static routes", flag(static_routes_changed, "replaced")),
        (
            "announce",
            flag(announce_changed, "prefixes and communities applied"),
        ),
        ("roa", flag(roa_changed, "sources and rules applied")),
        ("servers", servers.join(", ")),
        ("tunnels kept", tunnels.kept.join(", ")),
        ("tunnels updated", with_changes(&tunnels.updated)),
        ("tunnels restarted", with_changes(&tunnels.restarted)),
        ("tunnels added", tunnels.added.join(", ")),
        ("tunnels removed", tunnels.removed.join(", ")),
    ];
    for (what, list) in lines {
        if !list.is_empty() {
            let _ = writeln!(s, "  {:<19}{list}", format!("{what}:"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rr_ctl::{BgpSessionStatus, ReloadedSession, RoaSourceStatus, RouteEntry};

    #[test]
    fn reload_answers_render() {
        let done = Response::Reload {
            file: "/etc/rr.toml".into(),
            refused: Vec::new(),
            kept: vec!["a".into(), "b".into()],
            reevaluated: vec![ReloadedSession {
                name: "c".into(),
                changed: vec!["import_policy".into(), "policy \"p\"".into()],
            }],
            restarted: vec![ReloadedSession {
                name: "d".into(),
                changed: vec!["hold_time".into()],
            }],
            added: vec!["e".into()],
            removed: Vec::new(),
            static_routes_changed: true,
            tunnels: Box::new(rr_ctl::ReloadedTunnels {
                kept: vec!["wg0".into()],
                restarted: vec![ReloadedSession {
                    name: "wg1".into(),
                    changed: vec!["peer_public_key".into()],
                }],
                added: vec!["wg2".into()],
                ..Default::default()
            }),
            roa_changed: true,
            announce_changed: true,
            servers: vec!["[looking_glass] stopped".into()],
        };
        assert_eq!(
            render(&done),
            "reloaded /etc/rr.toml\n  \
             kept:              a, b\n  \
             re-evaluated:      c (import_policy, policy \"p\")\n  \
             restarted:         d (hold_time)\n  \
             added:             e\n  \
             static routes:     replaced\n  \
             announce:          prefixes and communities applied\n  \
             roa:               sources and rules applied\n  \
             servers:           [looking_glass] stopped\n  \
             tunnels kept:      wg0\n  \
             tunnels restarted: wg1 (peer_public_key)\n  \
             tunnels added:     wg2\n"
        );
        let refused = Response::Reload {
            file: "/etc/rr.toml".into(),
            refused: vec!["needs a restart: [metrics]".into()],
            kept: Vec::new(),
            reevaluated: Vec::new(),
            restarted: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
            static_routes_changed: false,
            tunnels: Default::default(),
            roa_changed: false,
            announce_changed: false,
            servers: Vec::new(),
        };
        assert_eq!(
            render(&refused),
            "reload of /etc/rr.toml refused, nothing changed:\n  needs a restart: [metrics]\n"
        );
    }

    #[test]
    fn routes_words() {
        let w = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            routes_request(&w("filtered")).unwrap(),
            Request::ShowRoutes {
                for_addr: None,
                all: true,
                filtered: true,
                prefix: None,
            }
        );
        assert!(routes_request(&w("bogus")).is_err());
        assert_eq!(
            routes_request(&w("fd00:1::/48 all")).unwrap(),
            Request::ShowRoutes {
                for_addr: None,
                all: true,
                filtered: false,
                prefix: Some("fd00:1::/48".parse().unwrap()),
            }
        );
        let e = routes_request(&w("172.20.1.1/24")).unwrap_err().to_string();
        assert!(
            e.contains("host bits set (the prefix is 172.20.1.0/24)"),
            "{e}"
        );
        assert!(routes_request(&w("172.20.1.0/33")).is_err());
    }

    #[test]
    fn filtered_routes_and_reasons_render() {
        let r = Response::Routes {
            routes: vec![RouteEntry {
                prefix: "172.20.17.0/24".into(),
                interface: "t0".into(),
                source: "bgp".into(),
                peer: Some("feed".into()),
                filtered: true,
                reason: Some("roa-invalid".into()),
                roa: Some("invalid".into()),
                as_path: Some("4242420099 4242420100".into()),
                origin: Some("IGP".into()),
                ..RouteEntry::default()
            }],
        };
        let text = render(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains(" roa ") && lines[0].ends_with("as path"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("172.20.17.0/24 !")
                && lines[1].contains(" invalid  [4242420099 4242420100i]"),
            "{text}"
        );
        assert_eq!(lines[2].trim(), "filtered: roa-invalid");
        // An older node's answer sent every route: only the filtered ones are kept.
        let req = Request::ShowRoutes {
            for_addr: None,
            all: true,
            filtered: true,
            prefix: None,
        };
        let mut both = r.clone();
        if let Response::Routes { routes } = &mut both {
            let mut ok = routes[0].clone();
            ok.filtered = false;
            routes.push(ok);
        }
        assert_eq!(narrow(&req, &both).unwrap(), r);
    }

    #[test]
    fn filtered_counts_per_reason_render() {
        let mut x = BgpSessionStatus {
            name: "feed".into(),
            state: "Established".into(),
            filtered: 3,
            ..BgpSessionStatus::default()
        };
        for (r, n) in [("not-dn42", 1), ("roa-invalid", 2), ("policy", 0)] {
            x.filtered_by.insert(r.into(), n);
        }
        assert_eq!(filtered_summary(&x), "3 (roa-invalid 2, not-dn42 1)");
        let resp = Response::Bgp {
            sessions: vec![x],
            fib_v4: 1,
            fib_v6: 0,
        };
        assert!(render(&resp).contains("  filtered: 3 (roa-invalid 2, not-dn42 1)\n"));
        let detail = render_bgp_detail(&resp);
        assert!(detail.starts_with("session feed\n"), "{detail}");
        assert!(detail.contains("  filtered:      3 (roa-invalid 2, not-dn42 1)\n"));
        let req = Request::ShowBgp {
            name: Some("other".into()),
        };
        assert!(narrow(&req, &resp).is_err());
    }

    #[test]
    fn roa_sources_render() {
        let resp = Response::Roa {
            configured: true,
            sources: vec![
                RoaSourceStatus {
                    kind: "file".into(),
                    name: "/etc/rr/roa_dn42.conf".into(),
                    state: "kept".into(),
                    v4: 2088,
                    updated_secs: Some(65),
                    bad_lines: 3,
                    last_error: Some("the file is empty (being written?)".into()),
                    ..RoaSourceStatus::default()
                },
                RoaSourceStatus {
                    kind: "rtr".into(),
                    name: "127.0.0.1:8282".into(),
                    state: "synced".into(),
                    v4: 1759,
                    v6: 1553,
                    serial: Some(7),
                    session_id: Some(4711),
                    version: Some(1),
                    updated_secs: Some(2),
                    ..RoaSourceStatus::default()
                },
            ],
            total_v4: 3000,
            total_v6: 1553,
            pending: false,
            reject_invalid: true,
            reject_unknown: false,
        };
        let text = render(&resp);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["source", "state", "ipv4", "ipv6", "serial", "session", "updated", "info"]
        );
        assert!(
            lines[1].starts_with("file /etc/rr/roa_dn42.conf  kept"),
            "{text}"
        );
        assert!(
            lines[1].ends_with(
                "1m 5s ago   3 bad lines, last error: the file is empty (being written?)"
            ),
            "{text}"
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            [
                "rtr",
                "127.0.0.1:8282",
                "synced",
                "1759",
                "1553",
                "7",
                "4711",
                "2s",
                "ago",
                "RTR",
                "version",
                "1"
            ]
        );
        assert_eq!(
            lines[3],
            "in use: 3000 IPv4 + 1553 IPv6 ROAs; invalid routes rejected, unknown routes accepted"
        );
        let none = Response::Roa {
            configured: false,
            sources: Vec::new(),
            total_v4: 0,
            total_v6: 0,
            pending: false,
            reject_invalid: false,
            reject_unknown: false,
        };
        assert!(render(&none).starts_with("no [roa] in the config"));
    }
}
