//! Real programs (python3, curl) under the shim, against the fake node of
//! `common/mod.rs` (a test double of the exec protocol, relaying "router" addresses
//! 10.99.0.0/16 to kernel servers on 127.0.0.1).
//!
//! The shim library is the cdylib cargo builds for this crate before its tests
//! (`target/<profile>/librr_preload.so`, found from the test binary's path).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;

#[test]
fn tcp_blocking_connect_carries_data_both_ways() {
    let node = FakeNode::start("tcp-block");
    let port = tcp_echo();
    let r = py(
        Some(&node),
        r#"
import socket, sys, os, hashlib
port = int(sys.argv[1])
c = socket.create_connection(("10.99.0.1", port), timeout=None)
data = os.urandom(300_000)
c.sendall(data)
c.shutdown(socket.SHUT_WR)
back = b""
while True:
    b = c.recv(65536)
    if not b: break
    back += b
print("same", back == data, len(back))
print("peer", c.getpeername())
print("local", c.getsockname()[0])
print("nodelay", c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print("nodelay", c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
print("type", c.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE))
"#,
        &[&port.to_string()],
    );
    assert!(r.ok);
    assert!(r.stdout.contains("same True 300000"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("peer ('10.99.0.1', {port})")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("local 10.99.0.100"), "{}", r.stdout);
    assert!(r.stdout.contains("nodelay 0\nnodelay 1"), "{}", r.stdout);
    assert!(r.stdout.contains("type 1"), "{}", r.stdout);
    assert!(node
        .log()
        .iter()
        .any(|l| l.starts_with("Connect 10.99.0.1:")));
    assert!(r.stderr.contains("→ router"), "{}", r.stderr);
}

#[test]
fn nonblocking_connect_tells_the_truth_through_so_error() {
    let node = FakeNode::start("tcp-nb");
    let port = tcp_echo();
    let closed = closed_port();
    let r = py(
        Some(&node),
        r#"
import socket, sys, select, errno
port, closed = int(sys.argv[1]), int(sys.argv[2])
for p in (port, closed):
    c = socket.socket()
    c.setblocking(False)
    rc = c.connect_ex(("10.99.0.1", p))
    print("connect_ex", errno.errorcode.get(rc, rc))
    select.select([], [c], [], 10)
    e = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    print("so_error", errno.errorcode.get(e, e))
    if e == 0:
        print("again", errno.errorcode.get(c.connect_ex(("10.99.0.1", p))))
        c.setblocking(True)
        c.sendall(b"hello")
        print("echo", c.recv(5))
    c.close()
try:
    socket.create_connection(("10.99.0.1", closed))
except ConnectionRefusedError as e:
    print("blocking refused", e.errno == errno.ECONNREFUSED)
"#,
        &[&port.to_string(), &closed.to_string()],
    );
    assert!(r.ok);
    let want = "connect_ex EINPROGRESS\nso_error 0\nagain EISCONN\necho b'hello'\n\
                connect_ex EINPROGRESS\nso_error ECONNREFUSED\nblocking refused True\n";
    assert_eq!(r.stdout, want, "{}", r.stderr);
}

#[test]
fn loopback_stays_with_the_kernel_and_no_socket_means_no_shim() {
    let node = FakeNode::start("loop");
    let port = tcp_echo();
    let script = r#"
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"plain")
print(c.recv(5), c.getpeername())
"#;
    let r = py(Some(&node), script, &[&port.to_string()]);
    assert!(r.ok);
    assert!(r.stdout.contains("b'plain' ('127.0.0.1'"), "{}", r.stdout);
    assert!(node.log().is_empty(), "{:?}", node.log());
    assert!(r.stderr.contains("→ kernel"), "{}", r.stderr);
    // Without ROOTLESS_ROUTER_SOCKET the shim passes everything through, quietly.
    let r = py(None, script, &[&port.to_string()]);
    assert!(r.ok);
    assert!(r.stdout.contains("b'plain'"));
    assert_eq!(r.stderr, "");
}

#[test]
fn udp_reports_the_true_source_and_ttl() {
    let node = FakeNode::start("udp");
    let port = udp_echo();
    let r = py(
        Some(&node),
        r#"
import socket, sys
port = int(sys.argv[1])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.IPPROTO_IP, 12, 1)  # IP_RECVTTL
u.sendto(b"x" * 1000, ("10.99.0.1", port))
data, anc, flags, src = u.recvmsg(2000, 64)
print("recvmsg", len(data), src, [(l, t, int.from_bytes(d, "little")) for l, t, d in anc])
u.sendto(b"abc", ("10.99.0.2", port))
print("peek", u.recv(10, socket.MSG_PEEK))
print("short", u.recvmsg(2))
print("local", u.getsockname()[0])
u.connect(("10.99.0.3", port))
u.send(b"conn")
print("connected", u.recvfrom(100), u.getpeername())
# A loopback destination on a fresh socket stays with the kernel.
k = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
k.sendto(b"k", ("127.0.0.1", port))
print("kernel", k.recvfrom(10))
u.close()
# A UDP server on a wildcard port is the node's at bind (it hears DN42 first).
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", port + 1 if port < 65535 else port - 1))
s.close()
"#,
        &[&port.to_string()],
    );
    assert!(r.ok);
    let out = &r.stdout;
    assert!(
        out.contains(&format!("recvmsg 1000 ('10.99.0.1', {port}) [(0, 2, 61)]")),
        "{out}"
    );
    assert!(out.contains("peek b'abc'"), "{out}");
    assert!(
        out.contains(&format!(
            "short (b'ab', [], {}, ('10.99.0.2', {port}))",
            libc::MSG_TRUNC
        )),
        "{out}"
    );
    assert!(out.contains("local 10.99.0.100"), "{out}");
    assert!(
        out.contains(&format!(
            "connected (b'conn', ('10.99.0.3', {port})) ('10.99.0.3', {port})"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("kernel (b'k', ('127.0.0.1', {port}))")),
        "{out}"
    );
    let log = node.log();
    assert!(
        log.iter().any(|l| l == "Datagram Datagram None fds=2"),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.starts_with("Reconnect")), "{log:?}");
    let opened = log
        .iter()
        .filter(|l| l.starts_with("Datagram Datagram"))
        .count();
    assert_eq!(opened, 2, "{log:?} {}", r.stderr);
    let closed = log.iter().filter(|l| *l == "Close fds=0").count();
    assert_eq!(closed, 2, "{log:?}");
}

#[test]
fn icmp_echo_socket_goes_through_the_node() {
    let node = FakeNode::start("icmp");
    let r = py(
        Some(&node),
        r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
s.sendto(bytes([8, 0, 0, 0, 0, 1, 0, 1]) + b"payload", ("10.99.0.9", 0))
data, src = s.recvfrom(100)
print("reply", data[0], data[8:], src[0])
"#,
        &[],
    );
    assert!(r.ok);
    assert!(
        r.stdout.contains("reply 0 b'payload' 10.99.0.9"),
        "{}",
        r.stdout
    );
    assert!(node.log().iter().any(|l| l.starts_with("Datagram Icmp")));
}

#[test]
fn listen_and_accept_in_a_forked_child() {
    let node = FakeNode::start("listen");
    let script = r#"
import socket, os, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("10.99.0.100", 8080))
l.listen(5)
print("listening", l.getsockname(), l.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN), flush=True)
pid = os.fork()
if pid == 0:
    c, peer = l.accept()
    msg = c.recv(100)
    c.sendall(b"pong:" + msg + b":" + str(peer).encode() + b":" + str(c.getsockname()).encode())
    c.close()
    os._exit(0)
l.close()
_, st = os.waitpid(pid, 0)
print("child", st)
"#;
    let node_ref = &node;
    std::thread::scope(|s| {
        let h = s.spawn(|| py(Some(node_ref), script, &[]));
        let exposed = node.exposed(8080);
        let mut c = TcpStream::connect(exposed).unwrap();
        c.write_all(b"ping").unwrap();
        let mut back = String::new();
        c.read_to_string(&mut back).unwrap();
        assert!(back.starts_with("pong:ping:('10.99.0.7', "), "{back}");
        assert!(back.ends_with(":('10.99.0.100', 8080)"), "{back}");
        let r = h.join().unwrap();
        assert!(r.ok);
        assert!(
            r.stdout.contains("listening ('10.99.0.100', 8080) 1"),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("child 0"), "{}", r.stdout);
    });
}

#[test]
fn wildcard_listener_still_takes_loopback_clients() {
    let node = FakeNode::start("wild");
    let r = py(
        Some(&node),
        r#"
import socket
l = socket.socket()
l.bind(("0.0.0.0", 0))
l.listen(5)
port = l.getsockname()[1]
c = socket.create_connection(("127.0.0.1", port))
a, peer = l.accept()
c.sendall(b"via kernel")
print(a.recv(100), peer[0], a.getsockname()[1] == port)
"#,
        &[],
    );
    assert!(r.ok);
    assert!(
        r.stdout.contains("b'via kernel' 127.0.0.1 True"),
        "{}",
        r.stdout
    );
    assert!(
        node.log().iter().any(|l| l == "Listen fds=2"),
        "{:?}",
        node.log()
    );
}

#[test]
fn names_resolve_through_the_node() {
    let node = FakeNode::start("names");
    let r = py(
        Some(&node),
        r#"
import socket
print("gai", sorted({a[4][0] for a in socket.getaddrinfo("web.dn42", 80)}))
print("gai4", [a[4] for a in socket.getaddrinfo("web.dn42", "http", socket.AF_INET, socket.SOCK_STREAM)])
print("canon", socket.getaddrinfo("web.dn42", None, socket.AF_INET6, socket.SOCK_DGRAM, 0, socket.AI_CANONNAME)[0][3])
for bad in ("nx.dn42", "fail.dn42"):
    try:
        socket.getaddrinfo(bad, 80)
    except socket.gaierror as e:
        print(bad, e.errno == socket.EAI_NONAME, e.errno == socket.EAI_AGAIN)
print("ghbn", socket.gethostbyname("web.dn42"))
print("ghbn_ex", socket.gethostbyname_ex("web.dn42"))
print("gni", socket.getnameinfo(("10.99.0.1", 80), 0))
print("gni_num", socket.getnameinfo(("10.99.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV))
print("local", socket.getaddrinfo("localhost", 80, socket.AF_INET)[0][4][0])
"#,
        &[],
    );
    assert!(r.ok);
    let want = "gai ['10.99.0.1', 'fd99::1']\n\
                gai4 [('10.99.0.1', 80)]\n\
                canon web.dn42\n\
                nx.dn42 True False\n\
                fail.dn42 False True\n\
                ghbn 10.99.0.1\n\
                ghbn_ex ('web.dn42', [], ['10.99.0.1'])\n\
                gni ('host.fake.dn42', 'http')\n\
                gni_num ('10.99.0.1', '80')\n\
                local 127.0.0.1\n";
    assert_eq!(r.stdout, want, "{}", r.stderr);
}

#[test]
fn curl_fetches_through_the_node() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("curl not installed: skipped");
        return;
    }
    let node = FakeNode::start("curl");
    let port = http_server("hello from the router side\n");
    for url in [
        format!("http://10.99.0.1:{port}/"),
        format!("http://web.dn42:{port}/"),
    ] {
        let r = run(
            Some(&node),
            "curl",
            &["-sS", "--max-time", "10", "-4", &url],
        );
        assert!(r.ok, "{url}");
        assert_eq!(r.stdout, "hello from the router side\n");
    }
    let log = node.log();
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("Connect 10.99.0.1:"))
            .count(),
        2,
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.starts_with("Resolve")), "{log:?}");
}

#[test]
fn dig_queries_a_server_behind_the_router() {
    if std::process::Command::new("dig")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("dig not installed: skipped");
        return;
    }
    let node = FakeNode::start("dig");
    let port = dns_server();
    let r = run(
        Some(&node),
        "dig",
        &[
            "+short",
            "+tries=1",
            "+time=5",
            "-p",
            &port.to_string(),
            "@10.99.0.53",
            "example.dn42",
            "A",
        ],
    );
    assert!(r.ok);
    assert_eq!(r.stdout, "10.99.0.42\n", "{}", r.stderr);
    assert!(
        node.log()
            .iter()
            .any(|l| l.starts_with("Datagram Datagram")),
        "{:?}",
        node.log()
    );
}

#[test]
fn nc_talks_through_the_node() {
    if std::process::Command::new("nc").arg("-h").output().is_err() {
        eprintln!("nc not installed: skipped");
        return;
    }
    let node = FakeNode::start("nc");
    let port = tcp_echo();
    let mut c = std::process::Command::new("nc");
    c.args(["-N", "10.99.0.1", &port.to_string()])
        .env("LD_PRELOAD", preload_path())
        .env("ROOTLESS_ROUTER_SOCKET", &node.socket)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"netcat line\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "netcat line\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(node
        .log()
        .iter()
        .any(|l| l.starts_with("Connect 10.99.0.1:")));
}

#[test]
fn an_inherited_socket_is_adopted_after_execve() {
    let node = FakeNode::start("exec");
    let port = tcp_echo();
    let child = r#"
import socket, sys
s = socket.socket(fileno=int(sys.argv[1]))
print("child", s.family == socket.AF_INET, s.type == socket.SOCK_STREAM, s.getpeername())
s.sendall(b"after exec")
print("child echo", s.recv(100))
"#;
    let r = py(
        Some(&node),
        r#"
import socket, sys, os
c = socket.create_connection(("10.99.0.1", int(sys.argv[1])))
c.set_inheritable(True)
os.execv(sys.executable, [sys.executable, "-c", sys.argv[2], str(c.fileno())])
"#,
        &[&port.to_string(), child],
    );
    assert!(r.ok);
    assert_eq!(
        r.stdout,
        format!("child True True ('10.99.0.1', {port})\nchild echo b'after exec'\n"),
        "{}",
        r.stderr
    );
    assert!(
        node.log().iter().any(|l| l.starts_with("Describe")),
        "{:?}",
        node.log()
    );
}

#[test]
fn an_inherited_datagram_socket_is_adopted_at_load_time() {
    let node = FakeNode::start("exec-dgram");
    let port = udp_echo();
    // The exec'd child calls libc's sendto and recvfrom on the bare descriptor (through
    // ctypes: Python's socket objects ask the socket its name first, which would adopt it
    // anyway): only the adoption at load time makes them see the router socket.
    let child = r#"
import ctypes, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
fd, port = int(sys.argv[1]), int(sys.argv[2])
to = struct.pack("=H", socket.AF_INET) + struct.pack("!H4s8x", port, socket.inet_aton("10.99.0.7"))
msg = b"after exec"
if libc.sendto(fd, msg, len(msg), 0, to, len(to)) != len(msg):
    sys.exit("sendto: errno %d" % ctypes.get_errno())
buf = ctypes.create_string_buffer(100)
src = ctypes.create_string_buffer(16)
srclen = ctypes.c_uint32(16)
n = libc.recvfrom(fd, buf, 100, 0, src, ctypes.byref(srclen))
sport, saddr = struct.unpack("!H4s", src.raw[2:8])
print("child", (buf.raw[:n], (socket.inet_ntoa(saddr), sport)))
"#;
    let r = py(
        Some(&node),
        r#"
import socket, sys, os
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"before", ("10.99.0.7", int(sys.argv[1])))
print("parent", u.recvfrom(100))
u.set_inheritable(True)
os.execv(sys.executable, [sys.executable, "-c", sys.argv[2], str(u.fileno()), sys.argv[1]])
"#,
        &[&port.to_string(), child],
    );
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        format!(
            "parent (b'before', ('10.99.0.7', {port}))\nchild (b'after exec', ('10.99.0.7', {port}))\n"
        ),
        "{}",
        r.stderr
    );
    assert!(
        node.log().iter().any(|l| l.starts_with("Describe")),
        "{:?}",
        node.log()
    );
}

#[test]
fn epoll_registrations_made_before_connect_follow_the_socket() {
    let node = FakeNode::start("epoll");
    let port = tcp_echo();
    let uport = udp_echo();
    let r = py(
        Some(&node),
        r#"
import socket, select, sys, errno
port, uport = int(sys.argv[1]), int(sys.argv[2])
ep = select.epoll()
# nginx's order: register the upstream socket, then connect it.
c = socket.socket()
c.setblocking(False)
ep.register(c.fileno(), select.EPOLLOUT | select.EPOLLIN)
print("connect_ex", errno.errorcode.get(c.connect_ex(("10.99.0.1", port))))
ev = ep.poll(5)
print("writable", [(fd == c.fileno(), bool(m & select.EPOLLOUT)) for fd, m in ev])
print("so_error", c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
c.send(b"ping")
ep.modify(c.fileno(), select.EPOLLIN)
ev = ep.poll(5)
print("readable", [(fd == c.fileno(), bool(m & select.EPOLLIN)) for fd, m in ev])
print("echo", c.recv(10))
# A UDP socket registered before its first sendto converts it.
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setblocking(False)
ep.register(u.fileno(), select.EPOLLIN)
u.sendto(b"udp", ("10.99.0.1", uport))
ev = ep.poll(5)
print("udp", [fd == u.fileno() for fd, m in ev], u.recvfrom(10)[0])
"#,
        &[&port.to_string(), &uport.to_string()],
    );
    assert!(r.ok);
    let want = "connect_ex EINPROGRESS\nwritable [(True, True)]\nso_error 0\n\
                readable [(True, True)]\necho b'ping'\nudp [True] b'udp'\n";
    assert_eq!(r.stdout, want, "{}", r.stderr);
    assert!(r.stderr.contains("→ router"), "{}", r.stderr);
}

#[test]
fn closes_and_dups_the_hooks_do_not_see_keep_the_table_true() {
    let node = FakeNode::start("rawclose");
    let uport = udp_echo();
    let r = py(
        Some(&node),
        r#"
import socket, ctypes, os, sys
uport = int(sys.argv[1])
SYS_close, SYS_close_range, SYS_dup3 = map(int, sys.argv[2:5])
libc = ctypes.CDLL(None, use_errno=True)  # the shim's syscall() comes first
glibc = ctypes.CDLL("libc.so.6", use_errno=True)  # glibc's own close(): the shim never sees it
L = ctypes.c_long
dest = ("10.99.0.1", uport)
name = "\0rr-preload-rawclose-%d" % os.getpid()
sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sink.bind(name)

def router_udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"hi", dest)
    assert u.recvfrom(10)[0] == b"hi"
    return u

def reuse_is_plain(n):
    # A fresh AF_UNIX socket takes the freed number; its datagrams must stay plain.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    same = s.fileno() == n
    s.connect(name)
    s.send(b"plain")
    got = sink.recv(100)
    s.close()
    return same, got

n = router_udp().detach()
print("close", libc.syscall(L(SYS_close), L(n)), reuse_is_plain(n))
n = router_udp().detach()
print("close_range", libc.syscall(L(SYS_close_range), L(n), L(n), L(0)), reuse_is_plain(n))
u = router_udp()
m = u.fileno() + 10
print("dup3", libc.syscall(L(SYS_dup3), L(u.fileno()), L(m), L(0)) == m)
d = socket.socket(fileno=m)
d.sendto(b"dup", dest)
print("dup3 echo", d.recvfrom(10))
n = router_udp().detach()
print("hidden close", glibc.close(n), reuse_is_plain(n))
u.detach(), d.detach()  # no close at exit: the node's log counts closes
"#,
        &[
            &uport.to_string(),
            &libc::SYS_close.to_string(),
            &libc::SYS_close_range.to_string(),
            &libc::SYS_dup3.to_string(),
        ],
    );
    assert!(r.ok);
    let want = format!(
        "close 0 (True, b'plain')\nclose_range 0 (True, b'plain')\ndup3 True\n\
         dup3 echo (b'dup', ('10.99.0.1', {uport}))\nhidden close 0 (True, b'plain')\n"
    );
    assert_eq!(r.stdout, want, "{}", r.stderr);
    // syscall(SYS_close) of a router datagram socket tells the node, as close() does.
    let log = node.log();
    assert_eq!(
        log.iter().filter(|l| *l == "Close fds=0").count(),
        1,
        "{log:?}"
    );
}

#[test]
fn route_answers_are_cached() {
    let node = FakeNode::start("routecache");
    let r = py(
        Some(&node),
        r#"
import socket, errno
# Sends to a host-side address from undecided sockets: the node says "not mine" once.
# (Port 0: the kernel refuses with EINVAL before routing, so nothing leaves the host.)
fails = set()
for i in range(5):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for j in range(4):
        try:
            u.sendto(b"x", ("192.0.2.1", 0))
        except OSError as e:
            fails.add(errno.errorcode.get(e.errno))
    u.close()
print("kernel said", sorted(fails))
"#,
        &[],
    );
    assert!(r.ok);
    assert_eq!(r.stdout, "kernel said ['EINVAL']\n", "{}", r.stderr);
    let log = node.log();
    assert_eq!(
        log.iter().filter(|l| *l == "Route fds=0").count(),
        1,
        "{log:?}"
    );
}

#[test]
fn getpeername_does_not_consume_a_failed_connect() {
    let node = FakeNode::start("peerfail");
    let closed = closed_port();
    let r = py(
        Some(&node),
        r#"
import socket, sys, errno, time
closed = int(sys.argv[1])
def start():
    c = socket.socket()
    c.setblocking(False)
    print("connect_ex", errno.errorcode.get(c.connect_ex(("10.99.0.1", closed))))
    time.sleep(0.5)  # the node knows the outcome by now
    try:
        c.getpeername()
        print("getpeername ok?")
    except OSError as e:
        print("getpeername", errno.errorcode.get(e.errno))
    return c
c = start()
print("so_error", errno.errorcode.get(c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)))
c = start()
print("connect again", errno.errorcode.get(c.connect_ex(("10.99.0.1", closed))))
"#,
        &[&closed.to_string()],
    );
    assert!(r.ok);
    let want = "connect_ex EINPROGRESS\ngetpeername ENOTCONN\nso_error ECONNREFUSED\n\
                connect_ex EINPROGRESS\ngetpeername ENOTCONN\nconnect again ECONNREFUSED\n";
    assert_eq!(r.stdout, want, "{}", r.stderr);
}

#[test]
fn gso_sends_and_the_error_queue_are_refused_on_router_datagram_sockets() {
    let node = FakeNode::start("gso");
    let port = udp_echo();
    let r = py(
        Some(&node),
        r#"
import socket, sys, errno, struct, time
dest = ("10.99.0.1", int(sys.argv[1]))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"first", dest)
print("echo", u.recvfrom(100)[0])
UDP_SEGMENT = 103
try:
    u.sendmsg([b"x" * 3000], [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("=H", 1000))], 0, dest)
    print("gso sent")
except OSError as e:
    print("gso", errno.errorcode.get(e.errno))
u.sendto(b"second", dest)
time.sleep(0.3)  # the echo is waiting now
try:
    print("errqueue", u.recvmsg(100, 100, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT))
except OSError as e:
    print("errqueue", errno.errorcode.get(e.errno))
print("echo", u.recvfrom(100)[0])
"#,
        &[&port.to_string()],
    );
    assert!(r.ok);
    let want = "echo b'first'\ngso EIO\nerrqueue EAGAIN\necho b'second'\n";
    assert_eq!(r.stdout, want, "{}", r.stderr);
}

#[test]
fn a_blocking_connect_interrupted_by_a_signal_stays_pending() {
    let node = FakeNode::start("eintr");
    let port = tcp_echo();
    let r = py(
        Some(&node),
        r#"
import socket, signal, sys, time, errno
port = int(sys.argv[1])
class Alarm(Exception):
    pass
def on_alarm(*a):
    raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
c = socket.socket()
t = time.monotonic()
signal.setitimer(signal.ITIMER_REAL, 0.3)
try:
    c.connect(("10.99.0.254", port))
    print("connected")
except Alarm:
    print("interrupted early", time.monotonic() - t < 1.5)
print("again", errno.errorcode.get(c.connect_ex(("10.99.0.254", port))))
print("so_error", c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
c.sendall(b"late")
print("echo", c.recv(10))
"#,
        &[&port.to_string()],
    );
    assert!(r.ok);
    let want = "interrupted early True\nagain EALREADY\nso_error 0\necho b'late'\n";
    assert_eq!(r.stdout, want, "{}", r.stderr);
}

#[test]
fn a_node_that_never_answers_a_name_gives_eai_again() {
    let node = FakeNode::start("hang");
    let r = py(
        Some(&node),
        r#"
import socket, time
t = time.monotonic()
try:
    socket.getaddrinfo("hang.dn42", 80)
    print("answered?")
except socket.gaierror as e:
    print("eai_again", e.errno == socket.EAI_AGAIN)
print("waited", round(time.monotonic() - t))
"#,
        &[],
    );
    assert!(r.ok);
    assert_eq!(r.stdout, "eai_again True\nwaited 10\n", "{}", r.stderr);
}
