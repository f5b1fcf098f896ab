//! `[metrics]`: a node started with a metrics address answers `GET /metrics` over TCP
//! with the Prometheus text format, its numbers agreeing with `ctl`'s; wrong methods,
//! paths, oversized heads and clients that send nothing are refused or dropped while
//! another client's scrape still gets its answer.

use rr_config::{keys, Config};
use rr_ctl::{Request, Response};
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

fn ask(socket: &Path, req: &Request) -> Response {
    let conn = UnixStream::connect(socket).expect("control socket");
    let mut w = conn.try_clone().unwrap();
    rr_ctl::write_line(&mut w, req).unwrap();
    let mut r = BufReader::new(conn);
    rr_ctl::read_line(&mut r, 16 << 20).unwrap().unwrap()
}

/// Sends `request` and reads the whole answer (the node closes after one).
fn http(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    // Only so that a broken server fails the test instead of hanging it.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn status(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

/// The value of the sample line that starts with `series ` in the answer's body.
fn value(answer: &str, series: &str) -> u64 {
    answer
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{answer}"))
        .parse()
        .unwrap()
}

#[test]
fn a_node_serves_metrics_and_refuses_the_rest() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let bgp_port = closed.local_addr().unwrap().port();
    drop((free, closed));
    let dir = std::env::temp_dir().join(format!("rr-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("ctl.sock");
    let text = format!(
        r#"[router]
asn = 4242420001
addresses = ["172.20.0.1/32"]
control_socket = "{socket}"

[[interface]]
name = "t\"0"
private_key = "{key}"
peer_public_key = "{peer}"
addresses = ["fe80::1/64", "172.20.0.9/30"]

[[route]]
prefix = "fd00:9::/48"
interface = "t\"0"

[[bgp]]
name = "feed"
neighbor = "127.0.0.1"
port = {bgp_port}
transport = "host"
remote_asn = 4242420099

[metrics]
listen = "{addr}"
"#,
        socket = socket.display(),
        key = keys::generate().to_base64(),
        peer = keys::public(&keys::generate()).to_base64(),
    );
    let config = Config::parse(&text, "test.toml", &dir).unwrap();
    let node = rr_node::Node::start(config).unwrap();

    // Clients that hold connections: more than the node keeps, sending nothing, or
    // half a head. The oldest are dropped; none of them stops the scrape below.
    let idle: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        .unwrap();

    let answer = http(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&answer), "HTTP/1.1 200 OK", "{answer}");
    assert!(
        answer.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{answer}"
    );
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(body.contains("# TYPE rootless_router_tunnel_receive_bytes_total counter\n"));
    // The interface's name has a quote: escaped in the label.
    assert_eq!(
        value(
            body,
            "rootless_router_tunnel_receive_bytes_total{interface=\"t\\\"0\"}"
        ),
        0
    );
    let Response::Bgp {
        sessions,
        fib_v4,
        fib_v6,
    } = ask(&socket, &Request::ShowBgp { name: None })
    else {
        panic!("not a bgp answer")
    };
    assert_eq!(
        value(body, "rootless_router_fib_routes{family=\"ipv4\"}"),
        fib_v4
    );
    assert_eq!(
        value(body, "rootless_router_fib_routes{family=\"ipv6\"}"),
        fib_v6
    );
    assert_eq!((fib_v4, fib_v6), (1, 1));
    assert_eq!(sessions.len(), 1);
    // Nobody listens on the neighbor's port: never Established, exactly one state set.
    let states: Vec<&str> = body
        .lines()
        .filter(|l| {
            l.starts_with("rootless_router_bgp_session_state{session=\"feed\",")
                && l.ends_with(" 1")
        })
        .collect();
    assert_eq!(states.len(), 1, "{body}");
    assert!(!states[0].contains("Established"), "{body}");
    let uptime = format!(
        "rootless_router_bgp_session_uptime_seconds{{session=\"feed\",neighbor=\"{}\"}}",
        sessions[0].neighbor
    );
    assert_eq!(value(body, &uptime), 0);
    assert!(
        !body.contains("rootless_router_roa_"),
        "no [roa], no ROA metrics"
    );

    let head = http(addr, b"HEAD /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(status(&head), "HTTP/1.1 200 OK");
    assert!(
        head.ends_with("\r\n\r\n"),
        "a HEAD answer has no body: {head}"
    );
    let post = http(
        addr,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert_eq!(status(&post), "HTTP/1.1 405 Method Not Allowed");
    assert!(post.contains("\r\nAllow: GET, HEAD\r\n"), "{post}");
    for path in ["/", "/../", "/metrics/../etc/passwd", "/metricsx"] {
        let a = http(addr, format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes());
        assert_eq!(status(&a), "HTTP/1.1 404 Not Found", "{path}");
    }
    assert_eq!(
        status(&http(addr, b"hello\r\n\r\n")),
        "HTTP/1.1 400 Bad Request"
    );
    // A 1 MB header: refused once the head passes its limit (the rest may be unread).
    let mut big = TcpStream::connect(addr).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
    request.resize(1 << 20, b'a');
    let _ = big.write_all(&request);
    let mut answer = Vec::new();
    let _ = big.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // Still answering, with the slow clients still connected.
    let again = http(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status(&again), "HTTP/1.1 200 OK");
    drop((idle, half));

    node.shutdown();
    assert!(
        TcpStream::connect(addr).is_err(),
        "the listener is closed at shutdown"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
