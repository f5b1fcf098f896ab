//! A node with `[roa]` (a BIRD ROA file, checked every second), DN42 region/country and
//! a tunnel's link communities, fed by a BGP speaker in this test over the host's TCP
//! (`transport = "host"`): the node accepts exactly the ROA-valid routes, shows each
//! route's ROA state and why the others were filtered (`show routes filtered`, `show
//! bgp` per reason, `show roa`), and when the file is rewritten its decisions follow
//! without the session going down; a half-written file changes nothing.

use rr_bgp::packet::{AsPath, AsSegment, Attributes, Origin, Update};
use rr_bgp::session::{Direction, Event, Peer, SessionConfig};
use rr_config::{keys, Config};
use rr_ctl::{Request, Response, RouteEntry};
use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

const NODE_AS: u32 = 4242420001;
const PEER_AS: u32 = 4242420099;
const ORIGIN_AS: u32 = 4242420100;
/// Longest wait for the node (it checks the ROA file every second).
const PATIENCE: Duration = Duration::from_secs(20);

fn ask(socket: &Path, req: &Request) -> Response {
    let conn = UnixStream::connect(socket).expect("control socket");
    let mut w = conn.try_clone().unwrap();
    rr_ctl::write_line(&mut w, req).unwrap();
    let mut r = BufReader::new(conn);
    rr_ctl::read_line(&mut r, 16 << 20).unwrap().unwrap()
}

fn routes(socket: &Path, filtered: bool) -> Vec<RouteEntry> {
    let req = Request::ShowRoutes {
        for_addr: None,
        all: !filtered,
        filtered,
        prefix: None,
    };
    match ask(socket, &req) {
        Response::Routes { routes } => routes,
        other => panic!("unexpected answer {other:?}"),
    }
}

/// `prefix -> (best, roa, reason)` of the BGP routes.
fn states(socket: &Path) -> Vec<(String, bool, Option<String>, Option<String>)> {
    let mut v: Vec<_> = routes(socket, false)
        .into_iter()
        .filter(|r| r.source == "bgp")
        .map(|r| (r.prefix, r.best, r.roa, r.reason))
        .collect();
    v.sort();
    v
}

fn st(
    prefix: &str,
    best: bool,
    roa: &str,
    reason: Option<&str>,
) -> (String, bool, Option<String>, Option<String>) {
    (
        prefix.to_string(),
        best,
        Some(roa.to_string()),
        reason.map(str::to_string),
    )
}

/// The test's BGP speaker on one accepted connection; a session going down fails the
/// test (a ROA change must never reset it).
struct Speaker {
    peer: Peer,
    stream: TcpStream,
    received: Vec<Update>,
    established: bool,
}

impl Speaker {
    fn pump(&mut self, for_at_most: Duration) {
        let mut buf = [0u8; 65536];
        let _ = self.stream.set_read_timeout(Some(for_at_most));
        match self.stream.read(&mut buf) {
            Ok(0) => panic!("the node closed the connection"),
            Ok(n) => self.peer.handle_bytes(Instant::now(), 1, &buf[..n]),
            Err(_) => {}
        }
        self.peer.handle_timeout(Instant::now());
        while let Some((_, bytes)) = self.peer.poll_transmit() {
            self.stream.write_all(&bytes).unwrap();
        }
        while self.peer.poll_action().is_some() {}
        while let Some(e) = self.peer.poll_event() {
            match e {
                Event::Established(_) => self.established = true,
                Event::Update(u) => self.received.push(u),
                Event::Down { reason } => panic!("session down: {reason}"),
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
}

/// Writes `text` to `path` as a publisher should: a new file renamed over the old.
fn publish(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn roa_file_decides_and_its_changes_follow_without_a_session_reset() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("rr-roa-node-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("ctl.sock");
    let roa_file = dir.join("roa_dn42.conf");
    // .16 valid; .17 another origin's (invalid); .18 covered only up to /23 (invalid:
    // too long); .20 no ROA (unknown).
    publish(
        &roa_file,
        &format!(
            "# DN42 ROAs\n\
             route 172.20.16.0/24 max 24 as {ORIGIN_AS};\n\
             route 172.20.17.0/24 max 24 as 4242420555;\n\
             route 172.20.18.0/23 max 23 as {ORIGIN_AS};\n"
        ),
    );
    let text = format!(
        r#"[router]
asn = {NODE_AS}
addresses = ["172.20.0.1/32"]
announce = ["172.20.0.0/27"]
control_socket = "{socket}"
region = 41
country = 1276

[[interface]]
name = "t0"
private_key = "{key}"
peer_public_key = "{peer}"
addresses = ["fe80::1/64"]
latency = 3
bandwidth = 24
crypto = 34

[roa]
files = ["roa_dn42.conf"]
check_interval = 1

[[bgp]]
name = "feed"
neighbor = "127.0.0.1"
port = {port}
transport = "host"
interface = "t0"
remote_asn = {PEER_AS}
families = ["ipv4"]
"#,
        socket = socket.display(),
        key = keys::generate().to_base64(),
        peer = keys::public(&keys::generate()).to_base64(),
    );
    let config = Config::parse(&text, "test.toml", &dir).unwrap();
    let node = rr_node::Node::start(config).unwrap();

    let (stream, _) = listener.accept().unwrap();
    let mut cfg = SessionConfig::new(PEER_AS, Ipv4Addr::new(10, 9, 9, 9), NODE_AS);
    cfg.passive = true;
    let now = Instant::now();
    let mut peer = Peer::new(cfg, now);
    assert!(peer.connection_opened(now, 1, Direction::Incoming));
    let mut sp = Speaker {
        peer,
        stream,
        received: Vec::new(),
        established: false,
    };
    sp.wait("the session", |sp| sp.established);

    let update = Update {
        attrs: Some(Attributes {
            origin: Origin::Igp,
            as_path: AsPath {
                segments: vec![AsSegment::Sequence(vec![PEER_AS, ORIGIN_AS])],
            },
            next_hop: Some(Ipv4Addr::new(127, 0, 0, 1)),
            // Latency 5 (worse than the tunnel's 3), bandwidth 29 (better than its 24).
            communities: vec![(64511 << 16) | 5, (64511 << 16) | 29],
            large_communities: vec![[PEER_AS, 1, 2]],
            ..Attributes::default()
        }),
        nlri: [
            "172.20.16.0/24",
            "172.20.17.0/24",
            "172.20.18.0/24",
            "172.20.20.0/24",
        ]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect(),
        ..Update::default()
    };
    sp.peer.send_update(&update);
    sp.wait("the four routes", |_| states(&socket).len() == 4);
    assert_eq!(
        states(&socket),
        [
            st("172.20.16.0/24", true, "valid", None),
            st("172.20.17.0/24", false, "invalid", Some("roa-invalid")),
            st("172.20.18.0/24", false, "invalid", Some("roa-invalid")),
            st("172.20.20.0/24", false, "unknown", Some("roa-unknown")),
        ]
    );
    // The accepted route crossed the tunnel: latency max(5, 3), bandwidth min(29, 24),
    // crypto the tunnel's; the large community untouched.
    let valid = routes(&socket, false)
        .into_iter()
        .find(|r| r.prefix == "172.20.16.0/24")
        .unwrap();
    let mut c = valid.communities.clone();
    c.sort();
    assert_eq!(c, ["(64511,24)", "(64511,34)", "(64511,5)"]);
    assert_eq!(valid.large_communities, ["(4242420099,1,2)"]);
    // `show routes filtered`: only those, each with its reason.
    let filtered = routes(&socket, true);
    assert_eq!(filtered.len(), 3, "{filtered:?}");
    assert!(filtered.iter().all(|r| r.filtered && r.reason.is_some()));
    // `show bgp NAME`: the per-reason counts.
    match ask(
        &socket,
        &Request::ShowBgp {
            name: Some("feed".into()),
        },
    ) {
        Response::Bgp { sessions, .. } => {
            assert_eq!(sessions.len(), 1);
            let s = &sessions[0];
            assert_eq!((s.imported, s.filtered), (1, 3));
            assert_eq!(s.filtered_by.get("roa-invalid"), Some(&2));
            assert_eq!(s.filtered_by.get("roa-unknown"), Some(&1));
            assert_eq!(s.filtered_by.get("not-dn42"), Some(&0));
            assert_eq!(s.filtered_by.len(), 10, "every reason");
        }
        other => panic!("unexpected {other:?}"),
    }
    match ask(
        &socket,
        &Request::ShowBgp {
            name: Some("nope".into()),
        },
    ) {
        Response::Error { message } => assert!(message.contains("nope"), "{message}"),
        other => panic!("unexpected {other:?}"),
    }
    match ask(&socket, &Request::ShowRoa) {
        Response::Roa {
            configured,
            sources,
            total_v4,
            reject_invalid,
            reject_unknown,
            ..
        } => {
            assert!(configured && reject_invalid && reject_unknown);
            assert_eq!(total_v4, 3);
            assert_eq!(sources.len(), 1);
            assert_eq!(
                (sources[0].kind.as_str(), sources[0].state.as_str()),
                ("file", "loaded")
            );
            assert!(sources[0].name.ends_with("roa_dn42.conf"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Our own prefix goes out with the DN42 region and country communities.
    sp.wait("our announcement", |sp| {
        sp.received.iter().any(|u| {
            u.nlri.iter().any(|p| p.to_string() == "172.20.0.0/27")
                && u.attrs.as_ref().is_some_and(|a| {
                    a.communities.contains(&((64511 << 16) | 41))
                        && a.communities.contains(&((64511 << 16) | 1276))
                })
        })
    });

    // Half written: truncated in place. The ROAs are kept, nothing changes.
    std::fs::write(&roa_file, "").unwrap();
    sp.wait("the empty file to be noticed", |_| {
        match ask(&socket, &Request::ShowRoa) {
            Response::Roa { sources, .. } => sources[0].state == "kept",
            _ => false,
        }
    });
    assert_eq!(
        states(&socket)[0],
        st("172.20.16.0/24", true, "valid", None)
    );
    assert_eq!(routes(&socket, true).len(), 3);

    // The registry changes: .17 now belongs to the origin, .20 gets a ROA; .18 stays
    // too long. The routes held are validated again, the session stays up.
    publish(
        &roa_file,
        &format!(
            "route 172.20.16.0/24 max 24 as {ORIGIN_AS};\n\
             route 172.20.17.0/24 max 24 as {ORIGIN_AS};\n\
             route 172.20.18.0/23 max 23 as {ORIGIN_AS};\n\
             route 172.20.20.0/24 max 24 as {ORIGIN_AS};\n"
        ),
    );
    sp.wait("the new decisions", |_| {
        states(&socket)
            == [
                st("172.20.16.0/24", true, "valid", None),
                st("172.20.17.0/24", true, "valid", None),
                st("172.20.18.0/24", false, "invalid", Some("roa-invalid")),
                st("172.20.20.0/24", true, "valid", None),
            ]
    });
    match ask(&socket, &Request::ShowBgp { name: None }) {
        Response::Bgp { sessions, .. } => {
            let s = &sessions[0];
            assert_eq!(s.state, "Established");
            assert_eq!((s.imported, s.filtered), (3, 1));
            assert_eq!(s.filtered_by.get("roa-invalid"), Some(&1));
        }
        other => panic!("unexpected {other:?}"),
    }
    // The forwarding table follows.
    match ask(
        &socket,
        &Request::RouteLookup {
            addr: "172.20.20.9".parse().unwrap(),
        },
    ) {
        Response::Lookup { route: Some(r), .. } => assert_eq!(r.prefix, "172.20.20.0/24"),
        other => panic!("no FIB route: {other:?}"),
    }

    // A request this node does not know gets an answer that says so.
    let conn = UnixStream::connect(&socket).unwrap();
    let mut w = conn.try_clone().unwrap();
    w.write_all(b"{\"cmd\":\"show-babel\"}\n").unwrap();
    match rr_ctl::read_line::<Response>(&mut BufReader::new(conn), 1 << 20) {
        Ok(Some(Response::Error { message })) => {
            assert!(
                message.contains("unknown request \"show-babel\""),
                "{message}"
            )
        }
        other => panic!("unexpected {other:?}"),
    }

    sp.pump(Duration::from_millis(10));
    node.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
