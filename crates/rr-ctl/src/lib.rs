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
    /// The BGP sessions, like birdc `show protocols`.
    ShowBgp,
    /// The routing table: best routes (like birdc `show route`), or with `all` every
    /// route, also the ones not chosen and the ones the import policy refused. `for_addr`
    /// narrows it to the routes of the longest matching prefix.
    ShowRoutes {
        #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
        for_addr: Option<IpAddr>,
        #[serde(default)]
        all: bool,
    },
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
    /// Refused by the session's import policy (only listed with `all`).
    #[serde(default)]
    pub filtered: bool,
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
    /// Routes refused by the import policy, loop detection or the import limit.
    pub filtered: u64,
    /// Routes currently advertised to this session.
    pub exported: u64,
    pub import_limit: Option<u32>,
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
    Lookup {
        addr: String,
        route: Option<RouteEntry>,
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
            Request::ShowBgp,
            Request::ShowRoutes {
                for_addr: Some("172.20.0.1".parse().unwrap()),
                all: true,
            },
            Request::ShowRoutes {
                for_addr: None,
                all: false,
            },
            Request::RouteLookup {
                addr: "fd00::1".parse().unwrap(),
            },
            Request::Ping {
                addr: "172.20.0.1".parse().unwrap(),
                count: 3,
                interface: None,
            },
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
    fn show_routes_without_arguments_is_still_understood() {
        let mut rd = std::io::BufReader::new(&b"{\"cmd\":\"show-routes\"}\n"[..]);
        let got: Request = read_line(&mut rd, 4096).unwrap().unwrap();
        assert_eq!(
            got,
            Request::ShowRoutes {
                for_addr: None,
                all: false
            }
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
