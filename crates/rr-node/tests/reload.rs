//! `ctl reload` (and [`rr_node::NodeHandle::reload`], what SIGHUP calls) against a live
//! node started from a config file, with a BGP session over the host's TCP to a speaker
//! in this test built from `rr_bgp`: an import policy change re-evaluates the session's
//! routes without a reset (no NOTIFICATION, no new connection, `since` not reset), an
//! invalid file and a tunnel on a port in use are refused whole with nothing changed, a
//! tunnel added is up at once (a WireGuard peer in this test pings the node through it)
//! and updated in place (its session and counters kept) with the BGP session untouched,
//! and a `hold_time` change restarts the session (Cease, then a new connection and OPEN)
//! while the added tunnel is removed. Then `[roa]` added, its rules and its file changed
//! (routes rejected and accepted again, no reset), and `[metrics]` / `[looking_glass]`
//! started, moved and stopped.

use rr_bgp::packet::{AsPath, AsSegment, Attributes, Origin, Update};
use rr_bgp::session::{Direction, Event, Peer, SessionConfig};
use rr_config::{keys, Config};
use rr_ctl::{
    BgpSessionStatus, InterfaceStatus, ReloadedSession, ReloadedTunnels, Request, Response,
    RouteEntry,
};
use rr_dataplane::probe::{self, AnswerKind};
use rr_dataplane::tunnel::{Received, Tunnel, TunnelParams, MAX_DATAGRAM};
use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

const NODE_AS: u32 = 4242420001;
const PEER_AS: u32 = 4242420099;
const ORIGIN_AS: u32 = 4242420100;
/// Longest wait for the node.
const PATIENCE: Duration = Duration::from_secs(20);

fn ask(socket: &Path, req: &Request) -> Response {
    let conn = UnixStream::connect(socket).expect("control socket");
    let mut w = conn.try_clone().unwrap();
    rr_ctl::write_line(&mut w, req).unwrap();
    let mut r = BufReader::new(conn);
    rr_ctl::read_line(&mut r, 16 << 20).unwrap().unwrap()
}

/// The BGP routes: `(prefix, best, reason)`, sorted.
fn states(socket: &Path) -> Vec<(String, bool, Option<String>)> {
    let req = Request::ShowRoutes {
        for_addr: None,
        all: true,
        filtered: false,
        prefix: None,
    };
    let routes: Vec<RouteEntry> = match ask(socket, &req) {
        Response::Routes { routes } => routes,
        other => panic!("unexpected answer {other:?}"),
    };
    let mut v: Vec<_> = routes
        .into_iter()
        .filter(|r| r.source == "bgp")
        .map(|r| (r.prefix, r.best, r.reason))
        .collect();
    v.sort();
    v
}

fn st(prefix: &str, best: bool, reason: Option<&str>) -> (String, bool, Option<String>) {
    (prefix.to_string(), best, reason.map(str::to_string))
}

fn session(socket: &Path) -> BgpSessionStatus {
    match ask(socket, &Request::ShowBgp { name: None }) {
        Response::Bgp { mut sessions, .. } => {
            assert_eq!(sessions.len(), 1, "{sessions:?}");
            sessions.remove(0)
        }
        other => panic!("unexpected answer {other:?}"),
    }
}

/// The test's BGP speaker on one accepted connection; what the node does to the
/// session (a NOTIFICATION, closing the connection) is recorded, not a failure.
struct Speaker {
    peer: Peer,
    stream: TcpStream,
    established: bool,
    /// The reasons of every `Event::Down` (a received NOTIFICATION says `Received: ...`).
    downs: Vec<String>,
    closed: bool,
}

impl Speaker {
    /// Takes the node's next connection on `listener` and answers its OPEN.
    fn accept(listener: &TcpListener) -> Speaker {
        listener.set_nonblocking(false).unwrap();
        let (stream, _) = listener.accept().unwrap();
        let mut cfg = SessionConfig::new(PEER_AS, Ipv4Addr::new(10, 9, 9, 9), NODE_AS);
        cfg.passive = true;
        cfg.hold_time = 9;
        let now = Instant::now();
        let mut peer = Peer::new(cfg, now);
        assert!(peer.connection_opened(now, 1, Direction::Incoming));
        let mut sp = Speaker {
            peer,
            stream,
            established: false,
            downs: Vec::new(),
            closed: false,
        };
        sp.wait("the session", |sp| sp.established);
        sp
    }

    fn pump(&mut self, for_at_most: Duration) {
        let mut buf = [0u8; 65536];
        if !self.closed {
            let _ = self.stream.set_read_timeout(Some(for_at_most));
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    self.peer.connection_closed(Instant::now(), 1);
                }
                Ok(n) => self.peer.handle_bytes(Instant::now(), 1, &buf[..n]),
                Err(_) => {}
            }
        }
        self.peer.handle_timeout(Instant::now());
        while let Some((_, bytes)) = self.peer.poll_transmit() {
            if !self.closed {
                let _ = self.stream.write_all(&bytes);
            }
        }
        while self.peer.poll_action().is_some() {}
        while let Some(e) = self.peer.poll_event() {
            match e {
                Event::Established(_) => self.established = true,
                Event::Down { reason } => self.downs.push(reason),
                _ => {}
            }
        }
    }

    /// Pumps until `f` holds, or fails after [`PATIENCE`].
    fn wait(&mut self, what: &str, mut f: impl FnMut(&mut Speaker) -> bool) {
        let start = Instant::now();
        loop {
            self.pump(Duration::from_millis(20));
            if f(self) {
                return;
            }
            assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        }
    }

    fn announce(&mut self, prefixes: &[&str]) {
        let update = Update {
            attrs: Some(Attributes {
                origin: Origin::Igp,
                as_path: AsPath {
                    segments: vec![AsSegment::Sequence(vec![PEER_AS, ORIGIN_AS])],
                },
                next_hop: Some(Ipv4Addr::new(127, 0, 0, 1)),
                ..Attributes::default()
            }),
            nlri: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
            ..Update::default()
        };
        self.peer.send_update(&update);
        self.pump(Duration::from_millis(10));
    }
}

/// What the config file can say in this test.
#[derive(Clone, Copy)]
struct Variant<'a> {
    /// `[[policy]] "in"` rejecting 172.20.17.0/24, the session's import policy.
    policy: bool,
    hold_time: u16,
    /// A second tunnel (172.20.9.1/30, to the test's WireGuard peer): its name,
    /// `listen_port` (`None`: any) and `mtu`.
    second_tunnel: Option<(&'a str, Option<u16>, u16)>,
    /// A `[roa]` section, as written.
    roa: Option<&'a str>,
    /// More sections, as written.
    extra: Option<&'a str>,
}

struct Files {
    path: std::path::PathBuf,
    socket: std::path::PathBuf,
    port: u16,
    key: String,
    peer_key: String,
    /// The public key of the test's WireGuard peer on t1.
    wg_peer_key: String,
}

impl Files {
    /// The node's public key, as `show interfaces` writes it.
    fn key_public(&self) -> String {
        keys::public(&rr_config::Key::from_base64(&self.key).unwrap()).to_base64()
    }

    fn text(&self, v: Variant<'_>) -> String {
        let mut text = format!(
            r#"[router]
asn = {NODE_AS}
addresses = ["172.20.0.1/32"]
announce = ["172.20.0.0/27"]
control_socket = "{socket}"

[[interface]]
name = "t0"
private_key = "{key}"
peer_public_key = "{peer}"
addresses = ["fe80::1/64"]
"#,
            socket = self.socket.display(),
            key = self.key,
            peer = self.peer_key,
        );
        if let Some((name, port, mtu)) = v.second_tunnel {
            text.push_str(&format!(
                r#"
[[interface]]
name = "{name}"
private_key = "{key}"
peer_public_key = "{peer}"
addresses = ["172.20.9.1/30"]
mtu = {mtu}
{port}
"#,
                key = self.key,
                peer = self.wg_peer_key,
                port = port
                    .map(|p| format!("listen_port = {p}"))
                    .unwrap_or_default(),
            ));
        }
        if let Some(roa) = v.roa {
            text.push_str(&format!("\n{roa}\n"));
        }
        if let Some(extra) = v.extra {
            text.push_str(&format!("\n{extra}\n"));
        }
        if v.policy {
            text.push_str(
                r#"
[[policy]]
name = "in"
default = "accept"

[[policy.rule]]
prefix = ["172.20.17.0/24"]
action = "reject"
"#,
            );
        }
        text.push_str(&format!(
            r#"
[[bgp]]
name = "feed"
neighbor = "127.0.0.1"
port = {port}
transport = "host"
interface = "t0"
remote_asn = {PEER_AS}
families = ["ipv4"]
hold_time = {hold}
{import_policy}
"#,
            port = self.port,
            hold = v.hold_time,
            import_policy = if v.policy {
                "import_policy = \"in\""
            } else {
                ""
            },
        ));
        text
    }

    /// Writes the config file as an editor saving it should: a new file renamed over.
    fn write(&self, text: &str) {
        let tmp = self.path.with_extension("new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.path).unwrap();
    }
}

/// A reload answer's parts: `(refused, kept, reevaluated, restarted, tunnels)`.
type Outcome = (
    Vec<String>,
    Vec<String>,
    Vec<ReloadedSession>,
    Vec<ReloadedSession>,
    ReloadedTunnels,
);

fn outcome(answer: Response, file: &Path) -> Outcome {
    match answer {
        Response::Reload {
            file: f,
            refused,
            kept,
            reevaluated,
            restarted,
            added,
            removed,
            static_routes_changed,
            tunnels,
            roa_changed: _,
            announce_changed,
            servers,
        } => {
            assert!(!announce_changed && servers.is_empty());
            assert_eq!(f, file.display().to_string());
            assert!(
                added.is_empty() && removed.is_empty(),
                "{added:?} {removed:?}"
            );
            // Only tunnels added or removed bring or take connected routes here.
            assert_eq!(
                static_routes_changed,
                !tunnels.added.is_empty() || !tunnels.removed.is_empty()
            );
            (refused, kept, reevaluated, restarted, *tunnels)
        }
        other => panic!("unexpected answer {other:?}"),
    }
}

fn interfaces(socket: &Path) -> Vec<InterfaceStatus> {
    match ask(socket, &Request::ShowInterfaces) {
        Response::Interfaces { interfaces, .. } => interfaces,
        other => panic!("unexpected answer {other:?}"),
    }
}

/// A WireGuard peer of the node's tunnel t1, in this test (boringtun, as the node's).
struct WgPeer {
    sock: UdpSocket,
    tunnel: Tunnel,
}

impl WgPeer {
    fn new(private: &rr_config::Key, node_public: &rr_config::Key, node_port: u16) -> WgPeer {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let params = TunnelParams {
            private_key: private.0,
            peer_public_key: node_public.0,
            preshared_key: None,
            persistent_keepalive: None,
            endpoint: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, node_port))),
            index: 7,
        };
        let limiter = Tunnel::rate_limiter(&private.0, 100);
        WgPeer {
            sock,
            tunnel: Tunnel::new(&params, limiter),
        }
    }

    /// Pings `dst` from 172.20.9.2 through the tunnel (a handshake first) until an
    /// echo reply comes back; `None` if none within `patience`.
    fn ping(&mut self, dst: Ipv4Addr, patience: Duration) -> Option<IpAddr> {
        let src = IpAddr::V4(Ipv4Addr::new(172, 20, 9, 2));
        let deadline = Instant::now() + patience;
        let mut out = vec![0u8; MAX_DATAGRAM];
        let mut plain = vec![0u8; MAX_DATAGRAM];
        let mut dgram = vec![0u8; MAX_DATAGRAM];
        let mut seq = 0;
        let mut next = Instant::now();
        while Instant::now() < deadline {
            if Instant::now() >= next {
                seq += 1;
                let req = probe::echo_request(src, dst.into(), 64, 0x7777, seq).unwrap();
                if let Some((to, d)) = self.tunnel.send(&req, &mut out) {
                    self.sock.send_to(d, to).unwrap();
                }
                next = Instant::now() + Duration::from_millis(300);
            }
            let Ok((n, from)) = self.sock.recv_from(&mut dgram) else {
                continue;
            };
            let sock = &self.sock;
            let got = self
                .tunnel
                .receive(from, &dgram[..n], &mut plain, &mut |to, d| {
                    let _ = sock.send_to(d, to);
                });
            if let Received::Packet(p) = got {
                if let Some(a) = probe::parse_answer(p) {
                    if a.ident == 0x7777 && a.kind == AnswerKind::EchoReply {
                        return Some(a.from);
                    }
                }
            }
        }
        None
    }
}

/// A TCP port free on 127.0.0.1 just now.
fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// `GET path` on 127.0.0.1:`port`: the whole answer, or `None` if nothing listens.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    c.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Waits until nothing listens on 127.0.0.1:`port` (a stopped server's thread ends
/// within 250 ms).
fn wait_refused(port: u16) {
    let give_up = Instant::now() + PATIENCE;
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < give_up, "port {port} still listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn changed(name: &str, what: &[&str]) -> ReloadedSession {
    ReloadedSession {
        name: name.to_string(),
        changed: what.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn reload_reevaluates_policies_live_refuses_bad_configs_and_restarts_changed_sessions() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = std::env::temp_dir().join(format!("rr-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let node_key = keys::generate();
    let wg_peer_key = keys::generate();
    let files = Files {
        path: dir.join("node.toml"),
        socket: dir.join("ctl.sock"),
        port: listener.local_addr().unwrap().port(),
        key: node_key.to_base64(),
        peer_key: keys::public(&keys::generate()).to_base64(),
        wg_peer_key: keys::public(&wg_peer_key).to_base64(),
    };
    let socket = files.socket.clone();
    let plain = Variant {
        policy: false,
        hold_time: 9,
        second_tunnel: None,
        roa: None,
        extra: None,
    };
    files.write(&files.text(plain));
    let node = rr_node::Node::start(Config::load(&files.path).unwrap()).unwrap();

    let mut sp = Speaker::accept(&listener);
    sp.announce(&["172.20.16.0/24", "172.20.17.0/24"]);
    sp.wait("both routes in the table", |_| {
        states(&socket)
            == [
                st("172.20.16.0/24", true, None),
                st("172.20.17.0/24", true, None),
            ]
    });
    // Long enough up that a reset would show in `since_secs`.
    sp.wait("the session to be up a few seconds", |_| {
        session(&socket).since_secs >= 2
    });
    let since = session(&socket).since_secs;
    listener.set_nonblocking(true).unwrap();

    // 1. An import policy added: re-evaluated from the routes as received, no reset.
    let with_policy = Variant {
        policy: true,
        ..plain
    };
    files.write(&files.text(with_policy));
    let (refused, kept, reevaluated, restarted, tunnels) =
        outcome(ask(&socket, &Request::Reload), &files.path);
    assert!(refused.is_empty(), "{refused:?}");
    assert!(kept.is_empty() && restarted.is_empty());
    assert_eq!(tunnels.kept, ["t0"]);
    assert_eq!(
        reevaluated,
        [changed("feed", &["import_policy", "policy \"in\""])]
    );
    sp.wait("172.20.17.0/24 filtered by the policy", |_| {
        states(&socket)
            == [
                st("172.20.16.0/24", true, None),
                st("172.20.17.0/24", false, Some("policy")),
            ]
    });
    // The same connection goes on: a new route on it is taken in (with the new policy).
    sp.announce(&["172.20.18.0/24"]);
    sp.wait("the route sent after the reload", |_| {
        states(&socket).iter().any(|r| r.0 == "172.20.18.0/24")
    });
    let s = session(&socket);
    assert_eq!(s.state, "Established");
    assert!(s.since_secs >= since, "reset: {} < {since}", s.since_secs);
    assert_eq!(s.filtered, 1);
    assert!(sp.downs.is_empty() && !sp.closed, "{:?}", sp.downs);
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "the node connected again"
    );
    let after_policy = states(&socket);

    // 2. An invalid file: refused with its error, nothing changed.
    let bad = files
        .text(with_policy)
        .replace("import_policy = \"in\"", "import_policy = \"nope\"");
    files.write(&bad);
    let (refused, kept, reevaluated, restarted, _) =
        outcome(ask(&socket, &Request::Reload), &files.path);
    assert!(
        refused.iter().any(|r| r.contains("nope")),
        "not the config's error: {refused:?}"
    );
    assert!(kept.is_empty() && reevaluated.is_empty() && restarted.is_empty());
    assert_eq!(states(&socket), after_policy);

    // 3. A tunnel added on a port in use: refused whole (through the handle, what
    // SIGHUP calls), even with a session change in the same file; nothing changes.
    let busy = UdpSocket::bind("[::]:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    files.write(&files.text(Variant {
        second_tunnel: Some(("t1", Some(busy_port), 1420)),
        hold_time: 6,
        ..with_policy
    }));
    let (refused, kept, reevaluated, restarted, tunnels) = outcome(node.reload(), &files.path);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].contains(&format!(
            "interface \"t1\": cannot bind UDP port {busy_port}"
        )),
        "{refused:?}"
    );
    assert!(kept.is_empty() && reevaluated.is_empty() && restarted.is_empty());
    assert_eq!(tunnels, ReloadedTunnels::default());
    assert_eq!(states(&socket), after_policy);
    assert_eq!(interfaces(&socket).len(), 1);
    sp.pump(Duration::from_millis(20));
    let s = session(&socket);
    assert_eq!((s.state.as_str(), s.hold_time), ("Established", Some(9)));
    assert!(s.since_secs >= since, "reset: {} < {since}", s.since_secs);
    assert!(sp.downs.is_empty() && !sp.closed, "{:?}", sp.downs);
    drop(busy);

    // The same tunnel on any port: added and up at once, the session untouched.
    files.write(&files.text(Variant {
        second_tunnel: Some(("t1", None, 1420)),
        ..with_policy
    }));
    let (refused, kept, reevaluated, restarted, tunnels) = outcome(node.reload(), &files.path);
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(kept, ["feed"]);
    assert!(reevaluated.is_empty() && restarted.is_empty());
    assert_eq!(
        (tunnels.kept, tunnels.added),
        (vec!["t0".to_string()], vec!["t1".to_string()])
    );
    let ifs = interfaces(&socket);
    assert_eq!(
        ifs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["t0", "t1"]
    );
    assert_eq!(ifs[1].index, 1);
    assert_eq!(ifs[1].public_key, files.key_public());
    let mut wg = WgPeer::new(&wg_peer_key, &keys::public(&node_key), ifs[1].listen_port);
    assert_eq!(
        wg.ping(Ipv4Addr::new(172, 20, 0, 1), PATIENCE),
        Some(IpAddr::V4(Ipv4Addr::new(172, 20, 0, 1))),
        "no echo reply through the added tunnel"
    );
    let before = interfaces(&socket)[1].clone();
    assert!(before.rx_packets > 0 && before.latest_handshake_secs.is_some());

    // Its MTU changed: updated in place, WireGuard session and counters kept (the
    // next ping needs no handshake), the BGP session still untouched.
    files.write(&files.text(Variant {
        second_tunnel: Some(("t1", None, 1400)),
        ..with_policy
    }));
    let (refused, kept, _, restarted, tunnels) = outcome(node.reload(), &files.path);
    assert!(refused.is_empty() && restarted.is_empty(), "{refused:?}");
    assert_eq!(kept, ["feed"]);
    assert_eq!(tunnels.updated, [changed("t1", &["mtu"])]);
    let after = interfaces(&socket)[1].clone();
    assert_eq!((after.mtu, after.listen_port), (1400, before.listen_port));
    assert!(
        after.rx_packets >= before.rx_packets,
        "{after:?} {before:?}"
    );
    assert!(
        after.latest_handshake_secs.is_some(),
        "a new WireGuard session: {after:?}"
    );
    assert!(wg.ping(Ipv4Addr::new(172, 20, 0, 1), PATIENCE).is_some());
    let s = session(&socket);
    assert!(s.since_secs >= since, "reset: {} < {since}", s.since_secs);
    assert!(sp.downs.is_empty() && !sp.closed, "{:?}", sp.downs);

    // Pinned to the port it has: updated, the same socket (no bind of a port in use).
    let port = after.listen_port;
    files.write(&files.text(Variant {
        second_tunnel: Some(("t1", Some(port), 1400)),
        ..with_policy
    }));
    let (refused, _, _, _, tunnels) = outcome(node.reload(), &files.path);
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(tunnels.updated, [changed("t1", &["listen_port"])]);
    assert_eq!(interfaces(&socket)[1].listen_port, port);
    assert!(interfaces(&socket)[1].latest_handshake_secs.is_some());

    // Renamed, same port: t1 removed and t9 added in one reload, t9 taking t1's
    // socket over (binding it anew would fail while t1 holds it); the peer's next
    // handshake lands on t9 (another index, a new session).
    files.write(&files.text(Variant {
        second_tunnel: Some(("t9", Some(port), 1400)),
        ..with_policy
    }));
    let (refused, kept, _, _, tunnels) = outcome(node.reload(), &files.path);
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(kept, ["feed"]);
    assert_eq!(
        (tunnels.added, tunnels.removed),
        (vec!["t9".to_string()], vec!["t1".to_string()])
    );
    let ifs = interfaces(&socket);
    assert_eq!(
        ifs.iter()
            .map(|i| (i.name.as_str(), i.index, i.listen_port))
            .collect::<Vec<_>>(),
        [("t0", 0, ifs[0].listen_port), ("t9", 2, port)]
    );
    let mut wg = WgPeer::new(&wg_peer_key, &keys::public(&node_key), port);
    assert!(
        wg.ping(Ipv4Addr::new(172, 20, 0, 1), PATIENCE).is_some(),
        "no echo reply through the renamed tunnel: {:?}",
        interfaces(&socket)
    );

    // Moved to another port: updated (its WireGuard session kept), the old port
    // closed once the receive thread lets go of it.
    let other_port = UdpSocket::bind("[::]:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap();
    files.write(&files.text(Variant {
        second_tunnel: Some(("t9", Some(other_port), 1400)),
        ..with_policy
    }));
    let (refused, _, _, _, tunnels) = outcome(node.reload(), &files.path);
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(tunnels.updated, [changed("t9", &["listen_port"])]);
    assert_eq!(interfaces(&socket)[1].listen_port, other_port);
    let give_up = Instant::now() + PATIENCE;
    while UdpSocket::bind(("::", port)).is_err() {
        assert!(Instant::now() < give_up, "port {port} still held");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut wg = WgPeer::new(&wg_peer_key, &keys::public(&node_key), other_port);
    assert!(
        wg.ping(Ipv4Addr::new(172, 20, 0, 1), PATIENCE).is_some(),
        "no echo reply on the new port"
    );

    // 4. The session's hold time changed: restarted with a Cease, connected again.
    files.write(&files.text(Variant {
        hold_time: 6,
        ..with_policy
    }));
    let (refused, kept, reevaluated, restarted, tunnels) =
        outcome(ask(&socket, &Request::Reload), &files.path);
    assert!(refused.is_empty(), "{refused:?}");
    assert!(kept.is_empty() && reevaluated.is_empty());
    assert_eq!(restarted, [changed("feed", &["hold_time"])]);
    assert_eq!(tunnels.removed, ["t9"]);
    assert_eq!(interfaces(&socket).len(), 1);
    assert!(
        wg.ping(Ipv4Addr::new(172, 20, 0, 1), Duration::from_secs(2))
            .is_none(),
        "the removed tunnel still answers"
    );
    sp.wait("the node's Cease", |sp| !sp.downs.is_empty());
    assert_eq!(sp.downs[0], "Received: Cease: Other configuration change");
    let mut sp = Speaker::accept(&listener);
    sp.announce(&["172.20.16.0/24", "172.20.17.0/24"]);
    sp.wait("the routes again, the policy still applied", |_| {
        states(&socket)
            == [
                st("172.20.16.0/24", true, None),
                st("172.20.17.0/24", false, Some("policy")),
            ]
    });
    let s = session(&socket);
    assert_eq!((s.state.as_str(), s.hold_time), ("Established", Some(6)));

    // 5. The policy taken away again: the filtered route comes back, no reset.
    files.write(&files.text(Variant {
        hold_time: 6,
        ..plain
    }));
    let (refused, _, reevaluated, restarted, _) = outcome(node.reload(), &files.path);
    assert!(refused.is_empty() && restarted.is_empty(), "{refused:?}");
    // (The policy is no longer the session's, so only the session's key is named.)
    assert_eq!(reevaluated, [changed("feed", &["import_policy"])]);
    sp.wait("172.20.17.0/24 accepted again", |_| {
        states(&socket)
            == [
                st("172.20.16.0/24", true, None),
                st("172.20.17.0/24", true, None),
            ]
    });
    assert!(sp.downs.is_empty() && !sp.closed, "{:?}", sp.downs);

    // 6. [roa] added by a reload: a file with a ROA for 172.20.16.0/24 only; the
    // session (eBGP, import "dn42") now rejects the unknown 172.20.17.0/24. No reset.
    let roa_file = dir.join("roa.conf");
    std::fs::write(
        &roa_file,
        format!("route 172.20.16.0/24 max 24 as {ORIGIN_AS};\n"),
    )
    .unwrap();
    let since = session(&socket).since_secs;
    let reject = format!("[roa]\nfiles = [\"{}\"]\n", roa_file.display());
    let roa_answer = |node: &rr_node::NodeHandle| match node.reload() {
        Response::Reload {
            refused,
            kept,
            roa_changed,
            ..
        } => {
            assert!(refused.is_empty(), "{refused:?}");
            assert_eq!(kept, ["feed"]);
            assert!(roa_changed);
        }
        other => panic!("unexpected answer {other:?}"),
    };
    files.write(&files.text(Variant {
        hold_time: 6,
        roa: Some(&reject),
        ..plain
    }));
    roa_answer(&node);
    sp.wait("172.20.17.0/24 rejected as ROA unknown", |_| {
        states(&socket)
            == [
                st("172.20.16.0/24", true, None),
                st("172.20.17.0/24", false, Some("roa-unknown")),
            ]
    });

    // 7. unknown = "accept": taken in again.
    let accept = format!("{reject}unknown = \"accept\"\n");
    files.write(&files.text(Variant {
        hold_time: 6,
        roa: Some(&accept),
        ..plain
    }));
    roa_answer(&node);
    sp.wait("172.20.17.0/24 accepted with unknown = accept", |_| {
        states(&socket)
            == [
                st("172.20.16.0/24", true, None),
                st("172.20.17.0/24", true, None),
            ]
    });

    // 8. The ROA file replaced by another that makes 172.20.16.0/24 invalid, through
    // a reload naming it (the old file is no longer read).
    let other = dir.join("roa2.conf");
    std::fs::write(&other, "route 172.20.16.0/24 max 24 as 4242420555;\n").unwrap();
    let moved = format!(
        "[roa]\nfiles = [\"{}\"]\nunknown = \"accept\"\n",
        other.display()
    );
    files.write(&files.text(Variant {
        hold_time: 6,
        roa: Some(&moved),
        ..plain
    }));
    roa_answer(&node);
    sp.wait("172.20.16.0/24 rejected as ROA invalid", |_| {
        states(&socket)
            == [
                st("172.20.16.0/24", false, Some("roa-invalid")),
                st("172.20.17.0/24", true, None),
            ]
    });
    let s = session(&socket);
    assert_eq!(s.state, "Established");
    assert!(s.since_secs >= since, "reset: {} < {since}", s.since_secs);
    assert!(sp.downs.is_empty() && !sp.closed, "{:?}", sp.downs);

    // 9. [metrics] and [looking_glass] started, moved and stopped by reloads.
    let servers_answer = |node: &rr_node::NodeHandle| match node.reload() {
        Response::Reload {
            refused, servers, ..
        } => {
            assert!(refused.is_empty(), "{refused:?}");
            servers
        }
        other => panic!("unexpected answer {other:?}"),
    };
    let [p1, p2, p3] = [free_tcp_port(), free_tcp_port(), free_tcp_port()];
    let http = format!(
        "[metrics]\nlisten = \"127.0.0.1:{p1}\"\n\n[looking_glass]\nlisten = \"127.0.0.1:{p2}\"\n"
    );
    files.write(&files.text(Variant {
        hold_time: 6,
        roa: Some(&moved),
        extra: Some(&http),
        ..plain
    }));
    assert_eq!(
        servers_answer(&node),
        [
            format!("[metrics] on 127.0.0.1:{p1}"),
            format!("[looking_glass] on 127.0.0.1:{p2}")
        ]
    );
    let scrape = http_get(p1, "/metrics").expect("metrics answer");
    assert!(scrape.starts_with("HTTP/1.1 200"), "{scrape}");
    assert!(
        scrape.contains("rootless_router_bgp_session_state{"),
        "{scrape}"
    );
    let page = http_get(p2, "/").expect("looking glass answers");
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("feed"),
        "{page}"
    );

    // The metrics moved, the looking glass gone.
    let moved_http = format!("[metrics]\nlisten = \"127.0.0.1:{p3}\"\n");
    files.write(&files.text(Variant {
        hold_time: 6,
        roa: Some(&moved),
        extra: Some(&moved_http),
        ..plain
    }));
    assert_eq!(
        servers_answer(&node),
        [
            format!("[metrics] on 127.0.0.1:{p3}"),
            "[looking_glass] stopped".to_string()
        ]
    );
    assert!(http_get(p3, "/metrics").is_some_and(|r| r.starts_with("HTTP/1.1 200")));
    wait_refused(p1);
    wait_refused(p2);
    let s = session(&socket);
    assert!(s.since_secs >= since, "reset: {} < {since}", s.since_secs);

    node.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
