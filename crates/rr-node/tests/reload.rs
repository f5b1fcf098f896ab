//! `ctl reload` (and [`rr_node::NodeHandle::reload`], what SIGHUP calls) against a live
//! node started from a config file, with a BGP session over the host's TCP to a speaker
//! in this test built from `rr_bgp`: an import policy change re-evaluates the session's
//! routes without a reset (no NOTIFICATION, no new connection, `since` not reset), an
//! invalid file and a tunnel change are refused whole with nothing changed, and a
//! `hold_time` change restarts the session (Cease, then a new connection and OPEN).

use rr_bgp::packet::{AsPath, AsSegment, Attributes, Origin, Update};
use rr_bgp::session::{Direction, Event, Peer, SessionConfig};
use rr_config::{keys, Config};
use rr_ctl::{BgpSessionStatus, ReloadedSession, Request, Response, RouteEntry};
use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
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
struct Variant {
    /// `[[policy]] "in"` rejecting 172.20.17.0/24, the session's import policy.
    policy: bool,
    hold_time: u16,
    /// A second tunnel.
    second_tunnel: bool,
}

struct Files {
    path: std::path::PathBuf,
    socket: std::path::PathBuf,
    port: u16,
    key: String,
    peer_key: String,
}

impl Files {
    fn text(&self, v: Variant) -> String {
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
        if v.second_tunnel {
            text.push_str(&format!(
                r#"
[[interface]]
name = "t1"
private_key = "{key}"
peer_public_key = "{peer}"
addresses = ["fe80::1/64"]
"#,
                key = self.key,
                peer = self.peer_key,
            ));
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

/// A reload answer's parts: `(refused, kept, reevaluated, restarted)`.
type Outcome = (
    Vec<String>,
    Vec<String>,
    Vec<ReloadedSession>,
    Vec<ReloadedSession>,
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
        } => {
            assert_eq!(f, file.display().to_string());
            assert!(
                added.is_empty() && removed.is_empty(),
                "{added:?} {removed:?}"
            );
            assert!(!static_routes_changed);
            (refused, kept, reevaluated, restarted)
        }
        other => panic!("unexpected answer {other:?}"),
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
    let files = Files {
        path: dir.join("node.toml"),
        socket: dir.join("ctl.sock"),
        port: listener.local_addr().unwrap().port(),
        key: keys::generate().to_base64(),
        peer_key: keys::public(&keys::generate()).to_base64(),
    };
    let socket = files.socket.clone();
    let plain = Variant {
        policy: false,
        hold_time: 9,
        second_tunnel: false,
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
    let (refused, kept, reevaluated, restarted) =
        outcome(ask(&socket, &Request::Reload), &files.path);
    assert!(refused.is_empty(), "{refused:?}");
    assert!(kept.is_empty() && restarted.is_empty());
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
    let (refused, kept, reevaluated, restarted) =
        outcome(ask(&socket, &Request::Reload), &files.path);
    assert!(
        refused.iter().any(|r| r.contains("nope")),
        "not the config's error: {refused:?}"
    );
    assert!(kept.is_empty() && reevaluated.is_empty() && restarted.is_empty());
    assert_eq!(states(&socket), after_policy);

    // 3. A tunnel added: refused whole as needing a restart, through the handle (what
    // SIGHUP calls), even with a session change in the same file.
    files.write(&files.text(Variant {
        second_tunnel: true,
        hold_time: 6,
        ..with_policy
    }));
    let (refused, kept, reevaluated, restarted) = outcome(node.reload(), &files.path);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with("needs a restart: [[interface]] t1 added"),
        "{refused:?}"
    );
    assert!(kept.is_empty() && reevaluated.is_empty() && restarted.is_empty());
    assert_eq!(states(&socket), after_policy);
    sp.pump(Duration::from_millis(20));
    let s = session(&socket);
    assert_eq!((s.state.as_str(), s.hold_time), ("Established", Some(9)));
    assert!(s.since_secs >= since, "reset: {} < {since}", s.since_secs);
    assert!(sp.downs.is_empty() && !sp.closed, "{:?}", sp.downs);

    // 4. The session's hold time changed: restarted with a Cease, connected again.
    files.write(&files.text(Variant {
        hold_time: 6,
        ..with_policy
    }));
    let (refused, kept, reevaluated, restarted) =
        outcome(ask(&socket, &Request::Reload), &files.path);
    assert!(refused.is_empty(), "{refused:?}");
    assert!(kept.is_empty() && reevaluated.is_empty());
    assert_eq!(restarted, [changed("feed", &["hold_time"])]);
    sp.wait("the node's Cease", |sp| !sp.downs.is_empty());
    assert!(sp.downs[0].starts_with("Received: Cease"), "{:?}", sp.downs);
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
    let (refused, _, reevaluated, restarted) = outcome(node.reload(), &files.path);
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

    node.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
