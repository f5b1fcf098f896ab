//! `[looking_glass]`: a node started with a looking glass address serves its pages over
//! TCP: the sessions (names escaped), a route lookup of a route the node has (by address
//! and by prefix), a ping from the node; hostile inputs get a 400 page with the input
//! escaped, other methods 405, other paths 404, every answer with its security headers.

use rr_config::{keys, Config};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Sends `request` and reads the whole answer (the node closes after one).
fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    // Only so that a broken server fails the test instead of hanging it.
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn get(addr: SocketAddr, target: &str) -> String {
    http(addr, &format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

fn status(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

#[test]
fn a_node_serves_the_looking_glass_and_refuses_hostile_input() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let bgp_port = closed.local_addr().unwrap().port();
    drop((free, closed));
    let dir = std::env::temp_dir().join(format!("rr-lg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("ctl.sock");
    let text = format!(
        r#"[router]
asn = 4242420001
addresses = ["172.20.0.1/32"]
control_socket = "{socket}"

[[interface]]
name = "t0"
private_key = "{key}"
peer_public_key = "{peer}"
addresses = ["fe80::1/64", "172.20.0.9/30"]

[[route]]
prefix = "fd00:9::/48"
interface = "t0"

[[bgp]]
name = "feed<i>"
neighbor = "127.0.0.1"
port = {bgp_port}
transport = "host"
remote_asn = 4242420099

[looking_glass]
listen = "{addr}"
"#,
        socket = socket.display(),
        key = keys::generate().to_base64(),
        peer = keys::public(&keys::generate()).to_base64(),
    );
    let config = Config::parse(&text, "test.toml", &dir).unwrap();
    let node = rr_node::Node::start(config).unwrap();

    let page = get(addr, "/");
    assert_eq!(status(&page), "HTTP/1.1 200 OK", "{page}");
    for h in [
        "\r\nContent-Type: text/html; charset=utf-8\r\n",
        "\r\nContent-Security-Policy: default-src 'none'; style-src 'unsafe-inline';",
        "\r\nX-Content-Type-Options: nosniff\r\n",
        "\r\nReferrer-Policy: no-referrer\r\n",
    ] {
        assert!(page.contains(h), "{h} missing in {page}");
    }
    assert!(page.contains("name=\"viewport\""), "{page}");
    assert!(page.contains("<td>feed&lt;i&gt;</td>"), "{page}");
    assert!(page.contains("<td>4242420099</td>"), "{page}");
    assert!(!page.contains("<script"), "{page}");

    // The configured route, by an address in it and by its prefix.
    for target in ["/route?q=fd00%3A9%3A%3A1", "/route?q=fd00%3A9%3A%3A%2F48"] {
        let page = get(addr, target);
        assert_eq!(status(&page), "HTTP/1.1 200 OK", "{page}");
        assert!(
            page.contains("<dt>Prefix</dt><dd>fd00:9::/48</dd>"),
            "{page}"
        );
        assert!(page.contains("<dt>Status</dt><dd>best</dd>"), "{page}");
        assert!(page.contains("on t0"), "{page}");
    }
    // A prefix the node does not have, inside one it has.
    let page = get(addr, "/route?q=fd00%3A9%3A1%3A%3A%2F64");
    assert_eq!(status(&page), "HTTP/1.1 200 OK", "{page}");
    assert!(page.contains("No route."), "{page}");

    // Hostile inputs: 400, the input escaped when it is shown.
    let page = get(addr, "/route?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert_eq!(status(&page), "HTTP/1.1 400 Bad Request", "{page}");
    assert!(
        page.contains("&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot; is not"),
        "{page}"
    );
    assert!(!page.contains("<script"), "{page}");
    for target in [
        "/ping?q=1.2.3.4%3B+rm+-rf+%2F".to_string(),
        "/traceroute?q=example.com".to_string(),
        "/ping?q=1.2.3.4%00".to_string(),
        "/route?q=..%2F..%2Fetc%2Fpasswd".to_string(),
        "/route?q=%E2%91%A0.2.3.4".to_string(),
        format!("/route?q={}", "9".repeat(1024)),
    ] {
        let page = get(addr, &target);
        assert_eq!(
            status(&page),
            "HTTP/1.1 400 Bad Request",
            "{target}: {page}"
        );
        assert!(page.contains("class=\"err\""), "{target}: {page}");
    }
    // 10 KB does not fit in a request head at all.
    let page = get(addr, &format!("/route?q={}", "9".repeat(10 * 1024)));
    assert_eq!(
        status(&page),
        "HTTP/1.1 431 Request Header Fields Too Large",
        "{page}"
    );
    let page = http(
        addr,
        "POST /ping?q=172.20.0.1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status(&page), "HTTP/1.1 405 Method Not Allowed", "{page}");
    let page = get(addr, "/../etc/passwd");
    assert_eq!(status(&page), "HTTP/1.1 404 Not Found", "{page}");
    let page = http(addr, "HEAD / HTTP/1.1\r\n\r\n");
    assert_eq!(status(&page), "HTTP/1.1 200 OK", "{page}");
    assert!(page.ends_with("\r\n\r\n"), "HEAD has no body: {page}");

    // A ping goes to the control thread (on the page's probe thread) and its answer,
    // here the refusal of the node's own address, is shown escaped.
    let page = get(addr, "/ping?q=172.20.0.1");
    assert_eq!(status(&page), "HTTP/1.1 200 OK", "{page}");
    assert!(page.contains("<h2>Ping 172.20.0.1</h2>"), "{page}");
    assert!(
        page.contains("<p class=\"err\">172.20.0.1 is this node&#39;s own address</p>"),
        "{page}"
    );

    node.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
