//! The control protocol between a running node and its clients (`rootless-router ctl`).
//!
//! What it is: the request and response types, and their framing: one JSON object per
//! line over the node's unix control socket. A client writes one [`Request`] line; the
//! node answers with one or more [`Response`] lines and closes the connection. Commands
//! that take time (`ping`, `traceroute`) stream one line per result and end with a
//! summary line.
//!
//! What it is not: a transport (the daemon and the CLI own their sockets) or a formatter
//! (the CLI renders tables from these types).
#![forbid(unsafe_code)]

pub mod exec;

use serde::{Deserialize, Serialize};
use std::io::{BufRead, Read, Write};
use std::net::IpAddr;

/// One command to the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// The tunnels, as `wg show` shows them.
    ShowInterfaces,
    /// The BGP sessions, like birdc `show protocols`; with `name` only that one (an
    /// error when there is none of that name).
    ShowBgp {
        /// Absent from the line when `None`: `{"cmd":"show-bgp"}` as before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// The routing table: best routes (like birdc `show route`), or with `all` every
    /// route, also the ones not chosen and the ones the import checks refused. `for_addr`
    /// narrows it to the routes of the longest matching prefix; `filtered` to the routes
    /// refused (birdc `show route filtered`), each with its reason.
    ShowRoutes {
        #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
        for_addr: Option<IpAddr>,
        #[serde(default)]
        all: bool,
        /// Absent from the line when false. A node older than this field ignores it;
        /// clients send `all` with it and keep only `filtered` entries themselves.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        filtered: bool,
        /// Only the routes of exactly this prefix (birdc `show route PREFIX`). Absent
        /// from the line when `None`; a node older than this field answers with every
        /// route, and clients keep the prefix's themselves.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<ipnet::IpNet>,
    },
    /// The ROA sources (`[roa]` files and RTR servers) and the set in use.
    ShowRoa,
    /// Which route and tunnel a destination takes.
    RouteLookup { addr: IpAddr },
    /// ICMP echo from the node's own stack.
    Ping {
        addr: IpAddr,
        count: u32,
        /// Tunnel name, required for a link-local destination.
        interface: Option<String>,
    },
    /// Hop-by-hop path from the node's own stack (ICMP echo with rising TTL).
    Traceroute {
        addr: IpAddr,
        max_hops: u8,
        interface: Option<String>,
    },
    /// An operation of the `exec` shim ([`exec`]); the connection may carry descriptors.
    Exec { op: exec::ExecRequest },
    /// Re-read the config file the node was started with and apply what changed
    /// (SIGHUP does the same); answered with [`Response::Reload`].
    Reload,
}

/// One BGP session or tunnel a reload touched, and what of it changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadedSession {
    pub name: String,
    /// The changed keys as written (`import_policy`, `hold_time`, `policy "x"`, `mtu`).
    #[serde(default)]
    pub changed: Vec<String>,
}

/// What a reload did to the tunnels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReloadedTunnels {
    /// Untouched: WireGuard session, endpoint and counters go on.
    pub kept: Vec<String>,
    /// Addresses, MTU, link communities or listen port changed; the WireGuard session,
    /// endpoint and counters go on.
    pub updated: Vec<ReloadedSession>,
    /// Keys, endpoint or keepalive changed: a new WireGuard session.
    pub restarted: Vec<ReloadedSession>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// A tunnel's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    pub name: String,
    pub index: u32,
    pub public_key: String,
    pub listen_port: u16,
    pub peer_public_key: String,
    pub endpoint: Option<String>,
    /// Seconds since the latest completed handshake.
    pub latest_handshake_secs: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub persistent_keepalive: Option<u16>,
    pub mtu: u16,
    pub addresses: Vec<String>,
    /// Datagrams that failed authentication or parsing.
    pub rx_errors: u64,
    /// Packets that could not be sent (no endpoint yet, socket error).
    pub tx_errors: u64,
    pub endpoint_changes: u64,
}

/// One route: a forwarding-table entry (`route-lookup`) or a routing-table entry
/// (`show routes`), with its BGP attributes when it came from BGP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    pub prefix: String,
    /// The tunnel packets leave through; empty when the route is not usable (e.g. a
    /// host session's route whose next hop resolves to no tunnel).
    pub interface: String,
    pub gateway: Option<String>,
    /// Where it came from: `static`, `announce` (originated here), `bgp` with `peer`.
    pub source: String,
    /// The BGP session it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The chosen route for its prefix (the one in the forwarding table / exported).
    #[serde(default)]
    pub best: bool,
    /// Refused by the import checks or the session's import policy (only listed with
    /// `all` or `filtered`).
    #[serde(default)]
    pub filtered: bool,
    /// Why, when `filtered`: `import-none`, `as-loop`, `empty-as-path`, `bad-next-hop`,
    /// `own-prefix`, `not-dn42`, `roa-invalid`, `roa-unknown`, `policy`, `import-limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 6811 origin validation state of a BGP route: `valid`, `invalid` or `unknown`
    /// (no ROA covers it). Absent for static, connected and announced routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roa: Option<String>,
    /// BGP AS path, BIRD style (`4242420002 4242420003`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    /// RFC 1997 communities as `(64511,3)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
    /// RFC 8092 large communities as `(4242420001,1,2)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub large_communities: Vec<String>,
}

/// One BGP session, as birdc `show protocols all` tells it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpSessionStatus {
    pub name: String,
    /// `fe80::a%peer-a`, `172.20.0.66`, `127.0.0.1:1790`.
    pub neighbor: String,
    pub interface: Option<String>,
    /// `tunnel` or `host`.
    pub transport: String,
    pub remote_asn: u32,
    /// Idle, Connect, Active, OpenSent, OpenConfirm, Established.
    pub state: String,
    /// Seconds since the last state change.
    pub since_secs: u64,
    /// The last error, birdc style (`Received: Hold timer expired`).
    pub last_error: Option<String>,
    /// Set while Established.
    pub remote_router_id: Option<String>,
    /// Negotiated families (`ipv4`, `ipv6`).
    pub families: Vec<String>,
    pub extended_next_hop: bool,
    pub hold_time: Option<u16>,
    pub keepalive: Option<u16>,
    /// Routes accepted into the table from this session (both families).
    pub imported: u64,
    pub imported_v4: u64,
    pub imported_v6: u64,
    /// Routes refused by the import checks, the import policy or the import limit.
    pub filtered: u64,
    /// `filtered` per reason (the words of [`RouteEntry::reason`]), every reason
    /// present, 0 when none. Empty from a node older than this field.
    #[serde(default)]
    pub filtered_by: std::collections::BTreeMap<String, u64>,
    /// Routes currently advertised to this session.
    pub exported: u64,
    pub import_limit: Option<u32>,
}

/// One ROA source of `[roa]`, as `show roa` tells it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoaSourceStatus {
    /// `file` or `rtr`.
    pub kind: String,
    /// The file's path, or the RTR server as written (`127.0.0.1:8282`).
    pub name: String,
    /// A file: `loaded`; `kept` (the last read failed or found the file empty, the
    /// ROAs read before are still used); `failed` (nothing could be read yet).
    /// An RTR server: `connecting`; `syncing` (connected, waiting for its data);
    /// `synced`; `down` (not connected, its data is kept until it expires).
    pub state: String,
    /// ROAs from this source, per family.
    pub v4: u64,
    pub v6: u64,
    /// RTR: the cache's serial and session ID of the data held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u16>,
    /// RTR: the protocol version in use (1 = RFC 8210, 0 = RFC 6810).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    /// Seconds since this source's data last changed or was confirmed (a file read, an
    /// RTR End of Data); `None`: never.
    pub updated_secs: Option<u64>,
    /// A file: lines (or JSON entries) of the last read that were not ROAs.
    #[serde(default)]
    pub bad_lines: u64,
    /// The last problem (read error, connection error, cache error), if any.
    pub last_error: Option<String>,
}

/// Node-wide counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub forwarded: u64,
    pub local: u64,
    pub echo_replied: u64,
    pub fragmented: u64,
    pub icmp_errors_sent: u64,
    /// Drops by reason (reason names as in the data plane).
    pub dropped: std::collections::BTreeMap<String, u64>,
}

/// One answer line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Response {
    /// The answer to [`Request::Reload`]: applied (`refused` empty) or refused whole.
    Reload {
        /// The config file read.
        file: String,
        /// Why nothing was applied: the config's errors, or the changes that need a
        /// restart. Empty when the reload was applied.
        refused: Vec<String>,
        /// BGP sessions left untouched.
        kept: Vec<String>,
        /// Sessions whose routes were evaluated again (policy or import limit), no reset.
        reevaluated: Vec<ReloadedSession>,
        /// Sessions closed with a Cease and started with their new settings.
        restarted: Vec<ReloadedSession>,
        added: Vec<String>,
        removed: Vec<String>,
        /// The `[[route]]` static routes were replaced.
        static_routes_changed: bool,
        /// The tunnels (absent in answers of nodes older than live tunnel reload).
        #[serde(default)]
        tunnels: Box<ReloadedTunnels>,
        /// `[roa]` changed and was applied (its sources and rules).
        #[serde(default)]
        roa_changed: bool,
        /// `[router] announce`, `region` or `country` changed and was applied.
        #[serde(default)]
        announce_changed: bool,
        /// `[metrics]` / `[looking_glass]` servers moved, started or stopped
        /// (`[metrics] on 127.0.0.1:9324`, `[looking_glass] stopped`).
        #[serde(default)]
        servers: Vec<String>,
    },
    Interfaces {
        interfaces: Vec<InterfaceStatus>,
        counters: Counters,
    },
    Routes {
        routes: Vec<RouteEntry>,
    },
    Bgp {
        sessions: Vec<BgpSessionStatus>,
        /// Routes in the forwarding table, per family.
        fib_v4: u64,
        fib_v6: u64,
    },
    /// The answer to [`Request::ShowRoa`].
    Roa {
        /// False when the config has no `[roa]`: no sources, every route `unknown`,
        /// none rejected for its ROA state.
        configured: bool,
        sources: Vec<RoaSourceStatus>,
        /// The ROAs in use: the union of every source, per family.
        total_v4: u64,
        total_v6: u64,
        /// A change of the sources is waiting to be applied (changes are coalesced).
        pending: bool,
        /// `[roa] invalid = "reject"` / `unknown = "reject"`.
        reject_invalid: bool,
        reject_unknown: bool,
    },
    Lookup {
        addr: String,
        /// Boxed: the enum stays small (the JSON is the same).
        route: Option<Box<RouteEntry>>,
        /// True when the address is the node's own.
        local: bool,
    },
    /// One ping result: a reply, or `None` fields on timeout.
    PingReply {
        seq: u16,
        from: Option<String>,
        ttl: Option<u8>,
        rtt_ms: Option<f64>,
        /// An ICMP error instead of a reply, e.g. "destination unreachable".
        error: Option<String>,
    },
    PingDone {
        sent: u32,
        received: u32,
    },
    /// One traceroute hop.
    Hop {
        ttl: u8,
        from: Option<String>,
        rtt_ms: Option<f64>,
        /// True when `from` is the destination itself.
        reached: bool,
    },
    TracerouteDone {
        reached: bool,
    },
    Error {
        message: String,
    },
    /// The answer to a [`Request::Exec`].
    Exec {
        answer: exec::ExecResponse,
    },
}

impl Response {
    /// True for the last line of an answer.
    pub fn is_final(&self) -> bool {
        !matches!(self, Response::PingReply { .. } | Response::Hop { .. })
    }
}

/// Errors of the framing.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("control socket i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed control message: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the node closed the connection without an answer")]
    Closed,
}

/// Why a request line is refused ([`decode_request`]).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A well-formed request this node does not know, such as a newer client's.
    #[error("unknown request \"{cmd}\" (is this node older than the client? restart it with the same version)")]
    Unknown { cmd: String },
    /// Not a request at all, or a known one with bad arguments.
    #[error("bad request: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Decodes one request line, telling an unknown command apart from a malformed line.
pub fn decode_request(line: &[u8]) -> Result<Request, RequestError> {
    serde_json::from_slice(line).map_err(|e| {
        let cmd = serde_json::from_slice::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("cmd").and_then(|c| c.as_str()).map(str::to_string));
        match cmd {
            Some(cmd) if !KNOWN_REQUESTS.contains(&cmd.as_str()) => RequestError::Unknown { cmd },
            _ => RequestError::Malformed(e),
        }
    })
}

/// The `cmd` words of [`Request`].
const KNOWN_REQUESTS: [&str; 9] = [
    "show-interfaces",
    "show-bgp",
    "show-routes",
    "show-roa",
    "route-lookup",
    "ping",
    "traceroute",
    "exec",
    "reload",
];

/// Writes one message as a line.
pub fn write_line<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), CtlError> {
    let mut line = serde_json::to_vec(msg)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()?;
    Ok(())
}

/// Reads one message line; `Ok(None)` at end of stream. Lines longer than `max` bytes are refused.
pub fn read_line<T: for<'de> Deserialize<'de>>(
    r: &mut impl BufRead,
    max: usize,
) -> Result<Option<T>, CtlError> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(max as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.len() > max {
        return Err(CtlError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "control message too long",
        )));
    }
    Ok(Some(serde_json::from_slice(&line)?))
}

/// The control socket used when none is given: `$XDG_RUNTIME_DIR/rootless-router.sock`,
/// else one per user under the system temp dir.
pub fn default_socket_path() -> std::path::PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => std::path::PathBuf::from(d).join("rootless-router.sock"),
        None => {
            // The effective uid, without unsafe code: the owner of our own /proc entry.
            use std::os::unix::fs::MetadataExt;
            let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
            std::env::temp_dir()
                .join(format!("rootless-router-{uid}"))
                .join("ctl.sock")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_lines() {
        let reqs = [
            Request::ShowInterfaces,
            Request::ShowBgp { name: None },
            Request::ShowBgp {
                name: Some("peer_a".into()),
            },
            Request::ShowRoutes {
                for_addr: Some("172.20.0.1".parse().unwrap()),
                all: true,
                filtered: false,
                prefix: None,
            },
            Request::ShowRoutes {
                for_addr: None,
                all: true,
                filtered: true,
                prefix: None,
            },
            Request::ShowRoa,
            Request::RouteLookup {
                addr: "fd00::1".parse().unwrap(),
            },
            Request::Ping {
                addr: "172.20.0.1".parse().unwrap(),
                count: 3,
                interface: None,
            },
            Request::Reload,
        ];
        let mut buf = Vec::new();
        for r in &reqs {
            write_line(&mut buf, r).unwrap();
        }
        let mut rd = std::io::BufReader::new(&buf[..]);
        for r in &reqs {
            let got: Request = read_line(&mut rd, 4096).unwrap().unwrap();
            assert_eq!(&got, r);
        }
        assert!(read_line::<Request>(&mut rd, 4096).unwrap().is_none());
    }

    #[test]
    fn reload_request_and_answer_lines() {
        assert_eq!(
            decode_request(br#"{"cmd":"reload"}"#).unwrap(),
            Request::Reload
        );
        let answer = Response::Reload {
            file: "/etc/rr.toml".into(),
            refused: Vec::new(),
            kept: vec!["a".into()],
            reevaluated: vec![ReloadedSession {
                name: "b".into(),
                changed: vec!["import_policy".into()],
            }],
            restarted: Vec::new(),
            added: vec!["c".into()],
            removed: Vec::new(),
            static_routes_changed: true,
            tunnels: Box::new(ReloadedTunnels {
                kept: vec!["wg0".into()],
                updated: vec![ReloadedSession {
                    name: "wg1".into(),
                    changed: vec!["mtu".into()],
                }],
                added: vec!["wg2".into()],
                ..ReloadedTunnels::default()
            }),
            roa_changed: true,
            announce_changed: false,
            servers: vec!["[metrics] on 127.0.0.1:9324".into()],
        };
        let mut buf = Vec::new();
        write_line(&mut buf, &answer).unwrap();
        assert!(buf.starts_with(br#"{"kind":"reload","#));
        let got: Response = read_line(&mut &buf[..], 4096).unwrap().unwrap();
        assert_eq!(got, answer);
        // An answer of a node older than tunnel reload still reads, with no tunnels.
        let old = br#"{"kind":"reload","file":"f","refused":[],"kept":[],"reevaluated":[],"restarted":[],"added":[],"removed":[],"static_routes_changed":false}"#;
        let got: Response = read_line(&mut &old[..], 4096).unwrap().unwrap();
        assert!(
            matches!(got, Response::Reload { tunnels, .. } if *tunnels == ReloadedTunnels::default())
        );
    }

    #[test]
    fn show_routes_without_arguments_is_still_understood() {
        let mut rd = std::io::BufReader::new(&b"{\"cmd\":\"show-routes\"}\n"[..]);
        let got: Request = read_line(&mut rd, 4096).unwrap().unwrap();
        assert_eq!(
            got,
            Request::ShowRoutes {
                for_addr: None,
                all: false,
                filtered: false,
                prefix: None,
            }
        );
    }

    /// Lines an older node understands stay exactly what they were; the new fields
    /// appear only when used.
    #[test]
    fn old_request_lines_are_unchanged() {
        let line = |r: &Request| serde_json::to_string(r).unwrap();
        assert_eq!(
            line(&Request::ShowBgp { name: None }),
            r#"{"cmd":"show-bgp"}"#
        );
        assert_eq!(
            line(&Request::ShowRoutes {
                for_addr: None,
                all: true,
                filtered: false,
                prefix: None,
            }),
            r#"{"cmd":"show-routes","all":true}"#
        );
        assert_eq!(
            line(&Request::ShowRoutes {
                for_addr: None,
                all: true,
                filtered: true,
                prefix: None,
            }),
            r#"{"cmd":"show-routes","all":true,"filtered":true}"#
        );
        let with_prefix = Request::ShowRoutes {
            for_addr: None,
            all: true,
            filtered: false,
            prefix: Some("172.20.0.0/24".parse().unwrap()),
        };
        assert_eq!(
            line(&with_prefix),
            r#"{"cmd":"show-routes","all":true,"prefix":"172.20.0.0/24"}"#
        );
        assert_eq!(
            decode_request(br#"{"cmd":"show-routes","all":true,"prefix":"172.20.0.0/24"}"#)
                .unwrap(),
            with_prefix
        );
        assert_eq!(line(&Request::ShowRoa), r#"{"cmd":"show-roa"}"#);
        assert_eq!(
            decode_request(br#"{"cmd":"show-bgp"}"#).unwrap(),
            Request::ShowBgp { name: None }
        );
    }

    #[test]
    fn unknown_requests_are_named_and_malformed_ones_are_not() {
        let e = decode_request(br#"{"cmd":"show-babel","x":1}"#).unwrap_err();
        assert!(matches!(&e, RequestError::Unknown { cmd } if cmd == "show-babel"));
        assert!(
            e.to_string().contains("unknown request \"show-babel\""),
            "{e}"
        );
        // A known command with a bad argument is malformed, not unknown.
        let e = decode_request(br#"{"cmd":"route-lookup","addr":"nope"}"#).unwrap_err();
        assert!(matches!(e, RequestError::Malformed(_)), "{e}");
        assert!(matches!(
            decode_request(b"not json"),
            Err(RequestError::Malformed(_))
        ));
    }

    /// Every request's `cmd` word is in the list `decode_request` checks.
    #[test]
    fn known_requests_list_every_command() {
        let reqs = [
            Request::ShowInterfaces,
            Request::ShowBgp { name: None },
            Request::ShowRoutes {
                for_addr: None,
                all: false,
                filtered: false,
                prefix: None,
            },
            Request::ShowRoa,
            Request::RouteLookup {
                addr: "fd00::1".parse().unwrap(),
            },
            Request::Ping {
                addr: "fd00::1".parse().unwrap(),
                count: 1,
                interface: None,
            },
            Request::Traceroute {
                addr: "fd00::1".parse().unwrap(),
                max_hops: 1,
                interface: None,
            },
            Request::Exec {
                op: exec::ExecRequest::Hello,
            },
            Request::Reload,
        ];
        let mut cmds: Vec<String> = reqs
            .iter()
            .map(|r| {
                serde_json::to_value(r).unwrap()["cmd"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        cmds.sort();
        let mut known: Vec<String> = KNOWN_REQUESTS.iter().map(|s| s.to_string()).collect();
        known.sort();
        assert_eq!(cmds, known);
    }

    #[test]
    fn new_answers_round_trip_and_old_answers_still_parse() {
        let mut filtered_by = std::collections::BTreeMap::new();
        filtered_by.insert("roa-invalid".to_string(), 2);
        filtered_by.insert("not-dn42".to_string(), 1);
        let answers = [
            Response::Roa {
                configured: true,
                sources: vec![
                    RoaSourceStatus {
                        kind: "file".into(),
                        name: "/etc/rr/roa_dn42.conf".into(),
                        state: "loaded".into(),
                        v4: 2088,
                        v6: 0,
                        updated_secs: Some(3),
                        bad_lines: 3,
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
                        updated_secs: Some(0),
                        last_error: Some("connection refused".into()),
                        ..RoaSourceStatus::default()
                    },
                ],
                total_v4: 3000,
                total_v6: 1553,
                pending: false,
                reject_invalid: true,
                reject_unknown: true,
            },
            Response::Routes {
                routes: vec![RouteEntry {
                    prefix: "172.20.9.0/24".into(),
                    source: "bgp".into(),
                    peer: Some("a".into()),
                    filtered: true,
                    reason: Some("roa-invalid".into()),
                    roa: Some("invalid".into()),
                    ..RouteEntry::default()
                }],
            },
            Response::Bgp {
                sessions: vec![BgpSessionStatus {
                    name: "a".into(),
                    filtered: 3,
                    filtered_by,
                    ..BgpSessionStatus::default()
                }],
                fib_v4: 1,
                fib_v6: 2,
            },
        ];
        let mut buf = Vec::new();
        for a in &answers {
            write_line(&mut buf, a).unwrap();
        }
        let mut rd = std::io::BufReader::new(&buf[..]);
        for a in &answers {
            let got: Response = read_line(&mut rd, 1 << 20).unwrap().unwrap();
            assert_eq!(&got, a);
        }
        // What a node of issue 4 sent: no reason, roa or filtered_by.
        let old = br#"{"kind":"routes","routes":[{"prefix":"172.20.1.0/24","interface":"peer-a","gateway":null,"source":"bgp","peer":"a","best":true,"filtered":false}]}"#;
        let got: Response = serde_json::from_slice(old).unwrap();
        let Response::Routes { routes } = got else {
            panic!("not routes")
        };
        assert_eq!(
            (routes[0].reason.as_ref(), routes[0].roa.as_ref()),
            (None, None)
        );
        let old = br#"{"kind":"bgp","sessions":[{"name":"a","neighbor":"x","interface":null,"transport":"host","remote_asn":1,"state":"Idle","since_secs":1,"last_error":null,"remote_router_id":null,"families":[],"extended_next_hop":false,"hold_time":null,"keepalive":null,"imported":0,"imported_v4":0,"imported_v6":0,"filtered":0,"exported":0,"import_limit":null}],"fib_v4":0,"fib_v6":0}"#;
        let got: Response = serde_json::from_slice(old).unwrap();
        assert!(
            matches!(got, Response::Bgp { sessions, .. } if sessions[0].filtered_by.is_empty())
        );
    }

    #[test]
    fn garbage_and_oversized_lines_are_errors() {
        let mut rd = std::io::BufReader::new(&b"{\"cmd\":\"rm-rf\"}\n"[..]);
        assert!(read_line::<Request>(&mut rd, 4096).is_err());
        let long = vec![b'a'; 5000];
        let mut rd = std::io::BufReader::new(&long[..]);
        assert!(read_line::<Request>(&mut rd, 4096).is_err());
    }
}
