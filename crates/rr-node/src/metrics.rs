//! `[metrics]`: the node's counters for Prometheus, over plain HTTP/1.1 on a host address.
//!
//! What it is: one thread with its own `poll` loop, serving `GET /metrics` (and `HEAD`)
//! in the Prometheus text exposition format, version 0.0.4. Every other path is 404,
//! other methods 405, anything unreadable 400. Connections (head size and time limits,
//! at most 32 held, one answer each, `Connection: close`) are [`crate::http`]'s: a
//! client that sends nothing, or sends slowly, holds a slot and nothing else.
//!
//! The numbers are the snapshots `ctl` shows: tunnels and data-plane counters read
//! from the shared state (as `show interfaces`), BGP sessions, FIB sizes and ROA
//! sources asked from the control thread as `show bgp` / `show roa` are (a scrape never
//! blocks it: the question is queued, and an answer not given in [`QUERY_WAIT`] makes
//! the scrape a 503).
//!
//! What it is not: TLS, authentication, keep-alive or compression (listen on loopback,
//! or put a proxy in front); a store of history (Prometheus keeps it). The rendering
//! ([`render`]) is plain code over `rr-ctl` types, tested without sockets.

use crate::control::ControlMsg;
use crate::http::Answer;
use crate::shared::{NodeError, Shared};
use rr_ctl::{BgpSessionStatus, InterfaceStatus, Request, Response, RoaSourceStatus};
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime};

/// How long the control thread has to answer `show bgp` / `show roa` for a scrape.
const QUERY_WAIT: Duration = Duration::from_secs(5);
/// The exposition format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds the metrics listener (non-blocking), at start or for a reload.
pub(crate) fn bind(listen: SocketAddr) -> Result<TcpListener, NodeError> {
    let err = |source| NodeError::Metrics { listen, source };
    let l = TcpListener::bind(listen).map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    Ok(l)
}

/// Serves until shutdown or `stop` (a reload moved or removed it); the connections are
/// [`crate::http`]'s.
pub(crate) fn serve(shared: &Arc<Shared>, listener: TcpListener, stop: &AtomicBool) {
    crate::http::serve(
        shared,
        listener,
        stop,
        "metrics",
        |head| Answer::Now(answer(shared, head)),
        || plain(431, "Request Header Fields Too Large", ""),
    );
}

/// What a request gets, by its request line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Metrics { head_only: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// Reads the request line of a complete head.
pub(crate) fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::BadRequest;
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") || !target.starts_with('/') {
        return Route::BadRequest;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::MethodNotAllowed,
    };
    // A query string is ignored (Prometheus sends none unless configured to).
    match target.split_once('?').map_or(target, |(path, _)| path) {
        "/metrics" => Route::Metrics { head_only },
        _ => Route::NotFound,
    }
}

fn answer(shared: &Shared, head: &[u8]) -> Vec<u8> {
    match route(head) {
        Route::Metrics { head_only } => match scrape(shared) {
            Some(body) => {
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                if !head_only {
                    out.extend_from_slice(body.as_bytes());
                }
                out
            }
            None => plain(
                503,
                "Service Unavailable",
                "the node did not answer in time\n",
            ),
        },
        Route::NotFound => plain(404, "Not Found", "only /metrics is served here\n"),
        Route::MethodNotAllowed => plain(405, "Method Not Allowed", "GET or HEAD only\n"),
        Route::BadRequest => plain(400, "Bad Request", "not an HTTP/1.x request\n"),
    }
}

/// A short text answer.
fn plain(code: u16, reason: &str, body: &str) -> Vec<u8> {
    let allow = if code == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {code} {reason}\r\n{allow}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Asks the control thread one question, without ever waiting for room in its queue.
pub(crate) fn query(shared: &Shared, req: Request) -> Option<Response> {
    let (tx, rx) = mpsc::channel();
    shared.control.try_send(ControlMsg::Query(req, tx)).ok()?;
    rx.recv_timeout(QUERY_WAIT).ok()
}

/// The exposition of the node now; `None` when the control thread did not answer.
fn scrape(shared: &Shared) -> Option<String> {
    let Response::Interfaces {
        interfaces,
        counters,
    } = crate::ctl_server::interfaces(shared)
    else {
        return None;
    };
    let Some(Response::Bgp {
        sessions,
        fib_v4,
        fib_v6,
    }) = query(shared, Request::ShowBgp { name: None })
    else {
        return None;
    };
    let roa = match query(shared, Request::ShowRoa)? {
        Response::Roa {
            configured: true,
            sources,
            total_v4,
            total_v6,
            ..
        } => Some(Roa {
            sources,
            total_v4,
            total_v6,
        }),
        Response::Roa { .. } => None,
        _ => return None,
    };
    let now_unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Some(render(&Snapshot {
        now_unix,
        interfaces: &interfaces,
        counters: &counters,
        sessions: &sessions,
        fib: [fib_v4, fib_v6],
        roa: roa.as_ref(),
    }))
}

/// The `[roa]` part of `show roa`.
pub(crate) struct Roa {
    pub sources: Vec<RoaSourceStatus>,
    pub total_v4: u64,
    pub total_v6: u64,
}

/// Everything one scrape shows.
pub(crate) struct Snapshot<'a> {
    /// Seconds since the Unix epoch, for the handshake timestamps.
    pub now_unix: u64,
    pub interfaces: &'a [InterfaceStatus],
    pub counters: &'a rr_ctl::Counters,
    pub sessions: &'a [BgpSessionStatus],
    /// Routes in the FIB: IPv4, IPv6.
    pub fib: [u64; 2],
    /// `None` without `[roa]`.
    pub roa: Option<&'a Roa>,
}

/// BGP states a session's `state` gauge lists (birdc's words, and `Disabled`).
const BGP_STATES: [&str; 7] = [
    "Idle",
    "Connect",
    "Active",
    "OpenSent",
    "OpenConfirm",
    "Established",
    "Disabled",
];
const FILE_STATES: [&str; 3] = ["loaded", "kept", "failed"];
const RTR_STATES: [&str; 4] = ["connecting", "syncing", "synced", "down"];

/// The text exposition (format 0.0.4) of a snapshot.
pub(crate) fn render(s: &Snapshot<'_>) -> String {
    let mut e = Exposition::default();
    e.family(
        "build_info",
        "gauge",
        "Always 1; the version of rootless-router serving these metrics.",
    );
    e.sample(
        "build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1u64,
    );

    type TunnelValue = fn(&InterfaceStatus, u64) -> u64;
    let tunnel: [(&str, &str, &str, TunnelValue); 8] = [
        (
            "tunnel_receive_bytes_total",
            "counter",
            "Bytes of decrypted packets received on the tunnel.",
            |t, _| t.rx_bytes,
        ),
        (
            "tunnel_transmit_bytes_total",
            "counter",
            "Bytes of packets sent into the tunnel, before encryption.",
            |t, _| t.tx_bytes,
        ),
        (
            "tunnel_receive_packets_total",
            "counter",
            "Packets received on the tunnel.",
            |t, _| t.rx_packets,
        ),
        (
            "tunnel_transmit_packets_total",
            "counter",
            "Packets sent into the tunnel.",
            |t, _| t.tx_packets,
        ),
        (
            "tunnel_receive_errors_total",
            "counter",
            "Datagrams on the tunnel's port that failed authentication or parsing.",
            |t, _| t.rx_errors,
        ),
        (
            "tunnel_transmit_errors_total",
            "counter",
            "Packets that could not be sent (no endpoint yet, socket error).",
            |t, _| t.tx_errors,
        ),
        (
            "tunnel_endpoint_changes_total",
            "counter",
            "Times the peer's endpoint changed (roaming).",
            |t, _| t.endpoint_changes,
        ),
        (
            "tunnel_last_handshake_timestamp_seconds",
            "gauge",
            "Unix time of the latest completed WireGuard handshake; 0 if none yet.",
            |t, now| {
                t.latest_handshake_secs
                    .map_or(0, |ago| now.saturating_sub(ago))
            },
        ),
    ];
    for (name, kind, help, value) in tunnel {
        e.family(name, kind, help);
        for t in s.interfaces {
            e.sample(name, &[("interface", &t.name)], value(t, s.now_unix));
        }
    }

    let c = s.counters;
    let node: [(&str, &str, u64); 5] = [
        (
            "forwarded_packets_total",
            "Packets forwarded from one tunnel to another (or out of the node's own stack).",
            c.forwarded,
        ),
        (
            "fragmented_packets_total",
            "IPv4 packets forwarded in fragments.",
            c.fragmented,
        ),
        (
            "local_packets_total",
            "Packets delivered to the node's own stack.",
            c.local,
        ),
        (
            "echo_replies_total",
            "ICMP echo requests to the node answered by the data plane.",
            c.echo_replied,
        ),
        (
            "icmp_errors_sent_total",
            "ICMP errors sent for dropped packets (unreachable, time exceeded, too big).",
            c.icmp_errors_sent,
        ),
    ];
    for (name, help, v) in node {
        e.family(name, "counter", help);
        e.sample(name, &[], v);
    }
    e.family(
        "dropped_packets_total",
        "counter",
        "Packets dropped by the data plane, by reason.",
    );
    for (reason, v) in &c.dropped {
        e.sample("dropped_packets_total", &[("reason", reason)], *v);
    }
    e.family(
        "fib_routes",
        "gauge",
        "Routes in the forwarding table, by family.",
    );
    for (family, v) in ["ipv4", "ipv6"].iter().zip(s.fib) {
        e.sample("fib_routes", &[("family", family)], v);
    }

    e.family(
        "bgp_session_state",
        "gauge",
        "1 for the session's current state, 0 for the others.",
    );
    for b in s.sessions {
        let known = BGP_STATES.contains(&b.state.as_str());
        let states = BGP_STATES
            .iter()
            .copied()
            .chain((!known).then_some(b.state.as_str()));
        for st in states {
            let labels = [
                ("session", b.name.as_str()),
                ("neighbor", &b.neighbor),
                ("state", st),
            ];
            e.sample("bgp_session_state", &labels, u64::from(st == b.state));
        }
    }
    type SessionValue = fn(&BgpSessionStatus) -> u64;
    let session: [(&str, &str, SessionValue); 2] = [
        (
            "bgp_session_uptime_seconds",
            "Seconds the session has been Established; 0 when it is not.",
            |b| {
                if b.state == "Established" {
                    b.since_secs
                } else {
                    0
                }
            },
        ),
        (
            "bgp_routes_exported",
            "Routes currently advertised to the session's neighbor.",
            |b| b.exported,
        ),
    ];
    for (name, help, value) in session {
        e.family(name, "gauge", help);
        for b in s.sessions {
            let labels = [("session", b.name.as_str()), ("neighbor", &b.neighbor)];
            e.sample(name, &labels, value(b));
        }
    }
    e.family(
        "bgp_routes_imported",
        "gauge",
        "Routes from the session accepted into the routing table, by family.",
    );
    for b in s.sessions {
        for (family, v) in [("ipv4", b.imported_v4), ("ipv6", b.imported_v6)] {
            let labels = [
                ("session", b.name.as_str()),
                ("neighbor", &b.neighbor),
                ("family", family),
            ];
            e.sample("bgp_routes_imported", &labels, v);
        }
    }
    e.family(
        "bgp_routes_filtered",
        "gauge",
        "Routes from the session refused by the import checks, policy or limit, by reason.",
    );
    for b in s.sessions {
        for (reason, v) in &b.filtered_by {
            let labels = [
                ("session", b.name.as_str()),
                ("neighbor", &b.neighbor),
                ("reason", reason),
            ];
            e.sample("bgp_routes_filtered", &labels, *v);
        }
    }

    if let Some(roa) = s.roa {
        e.family(
            "roa_entries",
            "gauge",
            "ROAs in use (the union of every source), by family.",
        );
        for (family, v) in [("ipv4", roa.total_v4), ("ipv6", roa.total_v6)] {
            e.sample("roa_entries", &[("family", family)], v);
        }
        e.family(
            "roa_source_entries",
            "gauge",
            "ROAs from one [roa] source (a file or an RTR server), by family.",
        );
        for r in &roa.sources {
            for (family, v) in [("ipv4", r.v4), ("ipv6", r.v6)] {
                let labels = [
                    ("kind", r.kind.as_str()),
                    ("source", &r.name),
                    ("family", family),
                ];
                e.sample("roa_source_entries", &labels, v);
            }
        }
        e.family(
            "roa_source_state",
            "gauge",
            "1 for the ROA source's current state, 0 for the others of its kind.",
        );
        for r in &roa.sources {
            let kind_states: &[&str] = if r.kind == "rtr" {
                &RTR_STATES
            } else {
                &FILE_STATES
            };
            let known = kind_states.contains(&r.state.as_str());
            let states = kind_states
                .iter()
                .copied()
                .chain((!known).then_some(r.state.as_str()));
            for st in states {
                let labels = [
                    ("kind", r.kind.as_str()),
                    ("source", &r.name),
                    ("state", st),
                ];
                e.sample("roa_source_state", &labels, u64::from(st == r.state));
            }
        }
    }
    e.out
}

/// The metric name prefix.
const PREFIX: &str = "rootless_router_";

/// A text exposition being written: families in order, each with its samples.
#[derive(Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {PREFIX}{name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {PREFIX}{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.out.push_str(PREFIX);
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// A label value: backslash, double quote and line feed escaped.
pub(crate) fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A HELP text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_label("fe80::1%peer-a"), "fe80::1%peer-a");
        assert_eq!(escape_help("a \"q\" \\ b\nc"), "a \"q\" \\\\ b\\nc");
        let mut e = Exposition::default();
        e.sample(
            "x",
            &[("source", "/tmp/a\"b\\\n.json"), ("family", "ipv4")],
            3,
        );
        assert_eq!(
            e.out,
            "rootless_router_x{source=\"/tmp/a\\\"b\\\\\\n.json\",family=\"ipv4\"} 3\n"
        );
    }

    #[test]
    fn request_lines_are_routed() {
        let r = |s: &str| route(s.as_bytes());
        assert_eq!(
            r("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            r("HEAD /metrics?x=1 HTTP/1.0\n\n"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(r("GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(r("GET /../ HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            r("GET /metrics/../metrics HTTP/1.1\r\n\r\n"),
            Route::NotFound
        );
        assert_eq!(r("POST /metrics HTTP/1.1\r\n\r\n"), Route::MethodNotAllowed);
        assert_eq!(r("GET /metrics HTTP/2\r\n\r\n"), Route::BadRequest);
        assert_eq!(r("GET metrics HTTP/1.1\r\n\r\n"), Route::BadRequest);
        assert_eq!(r("GET  /metrics HTTP/1.1\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET /\xff HTTP/1.1\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"\r\n\r\n"), Route::BadRequest);
    }

    fn sample_snapshot<'a>(
        interfaces: &'a [InterfaceStatus],
        counters: &'a rr_ctl::Counters,
        sessions: &'a [BgpSessionStatus],
        roa: &'a Roa,
    ) -> Snapshot<'a> {
        Snapshot {
            now_unix: 1_700_000_000,
            interfaces,
            counters,
            sessions,
            fib: [12, 34],
            roa: Some(roa),
        }
    }

    #[test]
    fn a_snapshot_renders_every_family_once_with_its_samples() {
        let iface = InterfaceStatus {
            name: "peer-a".into(),
            index: 0,
            public_key: String::new(),
            listen_port: 1,
            peer_public_key: String::new(),
            endpoint: None,
            latest_handshake_secs: Some(5),
            rx_bytes: 1000,
            tx_bytes: 2000,
            rx_packets: 10,
            tx_packets: 20,
            persistent_keepalive: None,
            mtu: 1420,
            addresses: vec![],
            rx_errors: 1,
            tx_errors: 2,
            endpoint_changes: 3,
        };
        let fresh = InterfaceStatus {
            name: "peer-b".into(),
            latest_handshake_secs: None,
            ..iface.clone()
        };
        let mut counters = rr_ctl::Counters {
            forwarded: 7,
            icmp_errors_sent: 4,
            ..rr_ctl::Counters::default()
        };
        counters.dropped.insert("no_route".into(), 9);
        let session = BgpSessionStatus {
            name: "a".into(),
            neighbor: "fe80::2%peer-a".into(),
            state: "Established".into(),
            since_secs: 60,
            imported_v4: 5,
            imported_v6: 6,
            exported: 8,
            filtered_by: [("roa-invalid".to_string(), 2)].into(),
            ..BgpSessionStatus::default()
        };
        let down = BgpSessionStatus {
            name: "b".into(),
            neighbor: "172.20.0.2".into(),
            state: "Active".into(),
            since_secs: 30,
            ..BgpSessionStatus::default()
        };
        let roa = Roa {
            sources: vec![RoaSourceStatus {
                kind: "rtr".into(),
                name: "127.0.0.1:8282".into(),
                state: "synced".into(),
                v4: 100,
                v6: 50,
                ..RoaSourceStatus::default()
            }],
            total_v4: 100,
            total_v6: 50,
        };
        let ifaces = [iface, fresh];
        let sessions = [session, down];
        let text = render(&sample_snapshot(&ifaces, &counters, &sessions, &roa));
        for line in [
            "rootless_router_tunnel_receive_bytes_total{interface=\"peer-a\"} 1000",
            "rootless_router_tunnel_transmit_packets_total{interface=\"peer-a\"} 20",
            "rootless_router_tunnel_endpoint_changes_total{interface=\"peer-a\"} 3",
            "rootless_router_tunnel_last_handshake_timestamp_seconds{interface=\"peer-a\"} 1699999995",
            "rootless_router_tunnel_last_handshake_timestamp_seconds{interface=\"peer-b\"} 0",
            "rootless_router_forwarded_packets_total 7",
            "rootless_router_icmp_errors_sent_total 4",
            "rootless_router_dropped_packets_total{reason=\"no_route\"} 9",
            "rootless_router_fib_routes{family=\"ipv6\"} 34",
            "rootless_router_bgp_session_state{session=\"a\",neighbor=\"fe80::2%peer-a\",state=\"Established\"} 1",
            "rootless_router_bgp_session_state{session=\"a\",neighbor=\"fe80::2%peer-a\",state=\"Idle\"} 0",
            "rootless_router_bgp_session_state{session=\"b\",neighbor=\"172.20.0.2\",state=\"Active\"} 1",
            "rootless_router_bgp_session_uptime_seconds{session=\"a\",neighbor=\"fe80::2%peer-a\"} 60",
            "rootless_router_bgp_session_uptime_seconds{session=\"b\",neighbor=\"172.20.0.2\"} 0",
            "rootless_router_bgp_routes_imported{session=\"a\",neighbor=\"fe80::2%peer-a\",family=\"ipv4\"} 5",
            "rootless_router_bgp_routes_filtered{session=\"a\",neighbor=\"fe80::2%peer-a\",reason=\"roa-invalid\"} 2",
            "rootless_router_bgp_routes_exported{session=\"a\",neighbor=\"fe80::2%peer-a\"} 8",
            "rootless_router_roa_entries{family=\"ipv4\"} 100",
            "rootless_router_roa_source_entries{kind=\"rtr\",source=\"127.0.0.1:8282\",family=\"ipv6\"} 50",
            "rootless_router_roa_source_state{kind=\"rtr\",source=\"127.0.0.1:8282\",state=\"synced\"} 1",
            "rootless_router_roa_source_state{kind=\"rtr\",source=\"127.0.0.1:8282\",state=\"down\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Each session has exactly one state at 1.
        let ones = text
            .lines()
            .filter(|l| l.starts_with("rootless_router_bgp_session_state{") && l.ends_with(" 1"))
            .count();
        assert_eq!(ones, 2, "{text}");
        // Every sample belongs to the family declared last (families are contiguous),
        // every family is declared once, counters end in _total.
        let mut declared = std::collections::HashSet::new();
        let mut current = String::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(declared.insert(name.to_string()), "{name} declared twice");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{l}");
                current = name.to_string();
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert_eq!(name, current, "sample outside its family: {l}");
            }
        }
    }

    #[test]
    fn without_roa_or_sessions_the_families_are_still_valid() {
        let counters = rr_ctl::Counters::default();
        let text = render(&Snapshot {
            now_unix: 0,
            interfaces: &[],
            counters: &counters,
            sessions: &[],
            fib: [0, 0],
            roa: None,
        });
        assert!(!text.contains("roa_"), "{text}");
        assert!(text.contains("# TYPE rootless_router_bgp_session_state gauge\n"));
        assert!(text.contains("rootless_router_fib_routes{family=\"ipv4\"} 0\n"));
        assert!(text.ends_with('\n'));
    }
}
