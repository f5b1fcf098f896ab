//! A node's BGP session over the host's TCP (`transport = "host"`), against a speaker
//! in this test built from `rr_bgp`'s codec and session: the node connects, routes it
//! is given reach its forwarding table through the configured tunnel (the DN42 policy
//! filters the rest), it announces its own prefixes with its AS, and a closed
//! connection takes the routes out again.

use rr_bgp::packet::{AsPath, AsSegment, Attributes, Family, MpReach, NextHop, Origin, Update};
use rr_bgp::session::{Direction, Event, Peer, SessionConfig};
use rr_config::{keys, Config};
use rr_ctl::{Request, Response};
use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

const NODE_AS: u32 = 4242420001;
const PEER_AS: u32 = 4242420099;

fn ask(socket: &Path, req: &Request) -> Response {
    let conn = UnixStream::connect(socket).expect("control socket");
    let mut w = conn.try_clone().unwrap();
    rr_ctl::write_line(&mut w, req).unwrap();
    let mut r = BufReader::new(conn);
    rr_ctl::read_line(&mut r, 16 << 20).unwrap().unwrap()
}

fn routes_for(socket: &Path, addr: &str) -> Vec<rr_ctl::RouteEntry> {
    let req = Request::ShowRoutes {
        for_addr: Some(addr.parse().unwrap()),
        all: true,
        filtered: false,
        prefix: None,
    };
    match ask(socket, &req) {
        Response::Routes { routes } => routes,
        other => panic!("unexpected answer {other:?}"),
    }
}

fn wait(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The test's BGP speaker on one accepted connection.
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
        let now = Instant::now();
        match self.stream.read(&mut buf) {
            Ok(0) => panic!("the node closed the connection"),
            Ok(n) => self.peer.handle_bytes(now, 1, &buf[..n]),
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
}

fn attrs(path: &[u32]) -> Attributes {
    Attributes {
        origin: Origin::Igp,
        as_path: AsPath {
            segments: vec![AsSegment::Sequence(path.to_vec())],
        },
        next_hop: Some(Ipv4Addr::new(127, 0, 0, 1)),
        communities: vec![(64511 << 16) | 3],
        large_communities: vec![[PEER_AS, 1, 2]],
        ..Attributes::default()
    }
}

#[test]
fn host_session_programs_the_fib_and_exports_our_prefixes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("rr-bgp-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("ctl.sock");
    let text = format!(
        r#"[router]
asn = {NODE_AS}
addresses = ["172.20.0.1/32", "fd00:1::1/128"]
announce = ["172.20.0.0/27", "fd00:1::/48"]
control_socket = "{socket}"

[[interface]]
name = "t0"
private_key = "{key}"
peer_public_key = "{peer}"
addresses = ["fe80::1/64"]

[[bgp]]
name = "feed"
neighbor = "127.0.0.1"
port = {port}
transport = "host"
interface = "t0"
remote_asn = {PEER_AS}
hold_time = 9
"#,
        socket = socket.display(),
        key = keys::generate().to_base64(),
        peer = keys::public(&keys::generate()).to_base64(),
    );
    let config = Config::parse(&text, "test.toml", &dir).unwrap();
    let node = rr_node::Node::start(config).unwrap();

    listener.set_nonblocking(false).expect("blocking listener");
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
        received: Vec::new(),
        established: false,
    };
    let start = Instant::now();
    while !sp.established {
        assert!(start.elapsed() < Duration::from_secs(10), "not established");
        sp.pump(Duration::from_millis(50));
    }

    // Two DN42 networks (v4 classic, v6 in MP_REACH) and one that is not DN42.
    let v4 = Update {
        attrs: Some(attrs(&[PEER_AS, 4242420100])),
        nlri: vec![
            "172.20.16.0/24".parse().unwrap(),
            "8.8.8.0/24".parse().unwrap(),
        ],
        ..Update::default()
    };
    let v6 = Update {
        attrs: Some(Attributes {
            next_hop: None,
            ..attrs(&[PEER_AS])
        }),
        mp_reach: Some(MpReach {
            family: Family::Ipv6Unicast,
            next_hop: NextHop::V6("fd00:99::1".parse().unwrap()),
            nlri: vec!["fd00:16::/48".parse().unwrap()],
        }),
        ..Update::default()
    };
    sp.peer.send_update(&v4);
    sp.peer.send_update(&v6);
    sp.pump(Duration::from_millis(10));

    wait(
        "the routes in the node's table",
        Duration::from_secs(10),
        || {
            sp.pump(Duration::from_millis(10));
            let r4 = routes_for(&socket, "172.20.16.5");
            let r6 = routes_for(&socket, "fd00:16::5");
            r4.iter().any(|r| r.best) && r6.iter().any(|r| r.best)
        },
    );
    let r4 = routes_for(&socket, "172.20.16.5");
    let best = r4.iter().find(|r| r.best).unwrap();
    assert_eq!(best.prefix, "172.20.16.0/24");
    assert_eq!(best.interface, "t0");
    assert_eq!(best.peer.as_deref(), Some("feed"));
    assert_eq!(best.as_path.as_deref(), Some("4242420099 4242420100"));
    assert_eq!(best.communities, ["(64511,3)"]);
    assert_eq!(best.large_communities, ["(4242420099,1,2)"]);
    // The forwarding table has them too (what the data plane uses).
    match ask(
        &socket,
        &Request::RouteLookup {
            addr: "fd00:16::5".parse().unwrap(),
        },
    ) {
        Response::Lookup { route: Some(r), .. } => {
            assert_eq!(
                (r.prefix.as_str(), r.interface.as_str()),
                ("fd00:16::/48", "t0")
            )
        }
        other => panic!("no FIB route: {other:?}"),
    }
    // Not a DN42 network: held, marked filtered, not forwarded.
    let r8 = routes_for(&socket, "8.8.8.8");
    assert!(r8.iter().all(|r| r.filtered && !r.best), "{r8:?}");
    match ask(&socket, &Request::ShowBgp { name: None }) {
        Response::Bgp {
            sessions,
            fib_v4,
            fib_v6,
        } => {
            let s = &sessions[0];
            assert_eq!(
                (s.state.as_str(), s.imported, s.filtered),
                ("Established", 2, 1)
            );
            assert_eq!(s.transport, "host");
            assert!(fib_v4 >= 1 && fib_v6 >= 1);
        }
        other => panic!("unexpected {other:?}"),
    }

    // The node announced its own prefixes to us, with its AS as the path.
    wait("the node's announcements", Duration::from_secs(10), || {
        sp.pump(Duration::from_millis(20));
        let mut got = Vec::new();
        for u in &sp.received {
            let path = u.attrs.as_ref().map(|a| a.as_path.to_string());
            for p in &u.nlri {
                got.push((p.to_string(), path.clone()));
            }
            if let Some(m) = &u.mp_reach {
                for p in &m.nlri {
                    got.push((p.to_string(), path.clone()));
                }
            }
        }
        let want = |p: &str| got.contains(&(p.to_string(), Some(NODE_AS.to_string())));
        want("172.20.0.0/27") && want("fd00:1::/48")
    });
    // Split horizon: what we sent is not sent back.
    assert!(sp
        .received
        .iter()
        .all(|u| !u.nlri.iter().any(|p| p.to_string() == "172.20.16.0/24")));

    // The connection goes away: the routes leave the table and the FIB at once.
    drop(sp);
    wait(
        "the routes to be withdrawn",
        Duration::from_secs(10),
        || routes_for(&socket, "172.20.16.5").is_empty(),
    );
    match ask(
        &socket,
        &Request::RouteLookup {
            addr: "172.20.16.5".parse().unwrap(),
        },
    ) {
        Response::Lookup { route, .. } => assert!(route.is_none(), "{route:?}"),
        other => panic!("unexpected {other:?}"),
    }
    node.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
