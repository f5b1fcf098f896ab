//! A fake node for the shim's tests: a **test double of the exec protocol only**
//! ([`rr_ctl::exec`]), not of the router.
//!
//! It serves the control socket on a temp path and pretends that 10.99.0.0/16 and
//! fd99::/16 are routed: a router destination `10.99.x.y:p` is relayed to the kernel
//! at `127.0.0.1:p` (`[::1]:p` for IPv6), and answers come back named as the router
//! address. Its own addresses are 10.99.0.100 and fd99::100. Router listeners are
//! exposed on a kernel port on 127.0.0.1 ([`FakeNode::exposed`]); connections to it
//! arrive at the program as router connections from 10.99.0.7. ICMP echo requests to a
//! router address are answered by the fake node itself. Names under `.dn42` resolve to
//! 10.99.0.1 / fd99::1 (`nx.dn42`: no such host; `fail.dn42`: server failure;
//! `hang.dn42`: never answered). A connect to [`SLOW_V4`] takes [`SLOW_CONNECT`] before
//! the node tries the kernel.
//!
//! Every operation is logged as a short line ([`FakeNode::log`]) for assertions.
#![allow(dead_code)]

use rr_ctl::exec::{
    Accepted, DgramHeader, ExecRequest, ExecResponse, Family, SockKind, DGRAM_HEADER_LEN,
};
use rr_ctl::{Request, Response};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const NODE_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
pub const PEER_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 7);
/// A router destination whose TCP handshake takes [`SLOW_CONNECT`].
pub const SLOW_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 254);
pub const SLOW_CONNECT: Duration = Duration::from_secs(2);

/// Is `ip` in the fake routed ranges?
pub fn routed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[..2] == [10, 99],
        IpAddr::V6(v6) => v6.segments()[0] == 0xfd99,
    }
}

/// The kernel address a router address is relayed to.
fn to_kernel(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), a.port()),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), a.port()),
    }
}

/// How a connect ended: (local, remote) or an errno; `None` while pending.
type Outcome = Option<Result<(SocketAddr, SocketAddr), i32>>;

#[derive(Default)]
struct Shared {
    log: Vec<String>,
    /// Connect outcomes by socket id: None = pending.
    status: HashMap<u64, Outcome>,
    /// Router listener port → kernel port that reaches it.
    exposed: HashMap<u16, SocketAddr>,
    /// Datagram sockets: id → connected peer.
    peers: HashMap<u64, Arc<Mutex<Option<SocketAddr>>>>,
    /// Connected stream sockets by id, for `Describe`: (local, remote).
    streams: HashMap<u64, (SocketAddr, SocketAddr)>,
    /// Datagram sockets: id → (kind, local).
    dgrams: HashMap<u64, (SockKind, SocketAddr)>,
    next_port: u16,
}

pub struct FakeNode {
    pub dir: PathBuf,
    pub socket: PathBuf,
    shared: Arc<(Mutex<Shared>, Condvar)>,
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl FakeNode {
    pub fn start(name: &str) -> FakeNode {
        let dir = std::env::temp_dir().join(format!("rr-preload-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("ctl.sock");
        let l = UnixListener::bind(&socket).unwrap();
        let shared = Arc::new((
            Mutex::new(Shared {
                next_port: 40000,
                ..Shared::default()
            }),
            Condvar::new(),
        ));
        let sh = shared.clone();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let sh = sh.clone();
                std::thread::spawn(move || serve(c, sh));
            }
        });
        FakeNode {
            dir,
            socket,
            shared,
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.shared.0.lock().unwrap().log.clone()
    }

    /// The kernel address that reaches the router listener on `port` (waits for it).
    pub fn exposed(&self, port: u16) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(a) = self.shared.0.lock().unwrap().exposed.get(&port) {
                return *a;
            }
            assert!(
                Instant::now() < deadline,
                "no router listener on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn log(sh: &(Mutex<Shared>, Condvar), line: String) {
    sh.0.lock().unwrap().log.push(line);
}

fn port(sh: &(Mutex<Shared>, Condvar)) -> u16 {
    let mut s = sh.0.lock().unwrap();
    s.next_port += 1;
    s.next_port
}

/// Reads one request line and the descriptors that came with it.
fn read_request(c: &UnixStream) -> Option<(Request, Vec<OwnedFd>)> {
    let mut line = Vec::new();
    let mut fds = Vec::new();
    loop {
        let mut buf = [0u8; 4096];
        let (n, got) = recv_fds(c.as_raw_fd(), &mut buf).ok()?;
        fds.extend(got);
        if n == 0 {
            return None;
        }
        line.extend_from_slice(&buf[..n]);
        if line.contains(&b'\n') {
            break;
        }
    }
    let req = serde_json::from_slice(&line).ok()?;
    Some((req, fds))
}

fn answer(c: &mut UnixStream, a: ExecResponse) {
    let _ = rr_ctl::write_line(c, &Response::Exec { answer: a });
}

fn serve(mut c: UnixStream, sh: Arc<(Mutex<Shared>, Condvar)>) {
    let Some((Request::Exec { op }, mut fds)) = read_request(&c) else {
        return;
    };
    let kinds: Vec<&str> = fds.iter().map(|_| "fd").collect();
    log(&sh, format!("{} fds={}", op_name(&op), kinds.len()));
    match op {
        ExecRequest::Hello => answer(&mut c, ExecResponse::Hello { version: 1 }),
        ExecRequest::Route { addr } => answer(&mut c, ExecResponse::Route { mine: routed(addr) }),
        ExecRequest::Connect { id, remote, .. } => {
            if !routed(remote.ip()) {
                return answer(&mut c, ExecResponse::Kernel);
            }
            let node_end = fds.remove(0);
            let local = SocketAddr::new(IpAddr::V4(NODE_V4), port(&sh));
            sh.0.lock().unwrap().status.insert(id, None);
            answer(&mut c, ExecResponse::Opened { local });
            if remote.ip() == IpAddr::V4(SLOW_V4) {
                std::thread::sleep(SLOW_CONNECT);
            }
            let res = TcpStream::connect_timeout(&to_kernel(remote), Duration::from_secs(3));
            let outcome = match &res {
                Ok(_) => Ok((local, remote)),
                Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
            };
            if let Ok(pair) = outcome {
                sh.0.lock().unwrap().streams.insert(id, pair);
            }
            sh.0.lock().unwrap().status.insert(id, Some(outcome));
            sh.1.notify_all();
            match res {
                Ok(tcp) => {
                    answer(&mut c, ExecResponse::Connected { local, remote });
                    relay_stream(UnixStream::from(node_end), tcp);
                }
                Err(e) => answer(
                    &mut c,
                    ExecResponse::Failed {
                        errno: e.raw_os_error().unwrap_or(libc::EIO),
                        message: e.to_string(),
                    },
                ),
            }
        }
        ExecRequest::Status { id, wait_ms } => {
            let deadline = Instant::now() + Duration::from_millis(wait_ms.into());
            let mut s = sh.0.lock().unwrap();
            let a = loop {
                match s.status.get(&id) {
                    Some(Some(Ok((local, remote)))) => {
                        break ExecResponse::Connected {
                            local: *local,
                            remote: *remote,
                        }
                    }
                    Some(Some(Err(e))) => {
                        break ExecResponse::Failed {
                            errno: *e,
                            message: "connect failed".into(),
                        }
                    }
                    Some(None) if Instant::now() < deadline => {
                        s = sh.1.wait_timeout(s, deadline - Instant::now()).unwrap().0;
                    }
                    Some(None) => break ExecResponse::Pending,
                    None => {
                        break ExecResponse::Failed {
                            errno: libc::EBADF,
                            message: "unknown".into(),
                        }
                    }
                }
            };
            drop(s);
            answer(&mut c, a);
        }
        ExecRequest::Datagram {
            id,
            kind,
            local,
            remote,
            ..
        } => {
            let node_end = UnixDatagram::from(fds.remove(0));
            let local = SocketAddr::new(
                IpAddr::V4(NODE_V4),
                if local.port() == 0 {
                    port(&sh)
                } else {
                    local.port()
                },
            );
            let peer = Arc::new(Mutex::new(remote));
            sh.0.lock().unwrap().peers.insert(id, peer.clone());
            sh.0.lock().unwrap().dgrams.insert(id, (kind, local));
            answer(&mut c, ExecResponse::Opened { local });
            if kind == SockKind::Icmp {
                icmp_echo(node_end, peer);
            } else {
                relay_dgram(node_end, peer);
            }
        }
        ExecRequest::Reconnect { id, remote } => {
            let peer = sh.0.lock().unwrap().peers.get(&id).cloned();
            match peer {
                Some(p) => {
                    *p.lock().unwrap() = remote;
                    answer(
                        &mut c,
                        ExecResponse::Opened {
                            local: SocketAddr::new(IpAddr::V4(NODE_V4), 1),
                        },
                    );
                }
                None => answer(
                    &mut c,
                    ExecResponse::Failed {
                        errno: libc::EBADF,
                        message: "unknown".into(),
                    },
                ),
            }
        }
        ExecRequest::Listen { local, .. } => {
            let node_end = fds.remove(0);
            let kernel = fds.pop();
            let local = if local.port() == 0 {
                SocketAddr::new(local.ip(), port(&sh))
            } else {
                local
            };
            let exposed = TcpListener::bind("127.0.0.1:0").unwrap();
            sh.0.lock()
                .unwrap()
                .exposed
                .insert(local.port(), exposed.local_addr().unwrap());
            answer(&mut c, ExecResponse::Opened { local });
            let listener = Arc::new(node_end);
            if let Some(k) = kernel {
                let l2 = listener.clone();
                std::thread::spawn(move || {
                    let kl = TcpListener::from(k);
                    for s in kl.incoming().flatten() {
                        let rec = Accepted {
                            id: 0,
                            local: s.local_addr().unwrap(),
                            remote: s.peer_addr().unwrap(),
                        };
                        let _ = send_fd(
                            l2.as_raw_fd(),
                            &serde_json::to_vec(&rec).unwrap(),
                            s.as_raw_fd(),
                        );
                    }
                });
            }
            for s in exposed.incoming().flatten() {
                let (a, b) = UnixStream::pair().unwrap();
                let id = ino(b.as_raw_fd());
                let rec = Accepted {
                    id,
                    local,
                    remote: SocketAddr::new(IpAddr::V4(PEER_V4), s.peer_addr().unwrap().port()),
                };
                if send_fd(
                    listener.as_raw_fd(),
                    &serde_json::to_vec(&rec).unwrap(),
                    b.as_raw_fd(),
                )
                .is_err()
                {
                    return;
                }
                drop(b);
                std::thread::spawn(move || relay_stream(a, s));
            }
        }
        ExecRequest::Close { .. } => answer(&mut c, ExecResponse::Closed { released: true }),
        ExecRequest::Describe { id } => {
            let (stream, dgram) = {
                let g = sh.0.lock().unwrap();
                (g.streams.get(&id).copied(), g.dgrams.get(&id).copied())
            };
            answer(
                &mut c,
                match (stream, dgram) {
                    (Some((local, remote)), _) => ExecResponse::Socket {
                        kind: SockKind::Stream,
                        v6: false,
                        local,
                        remote: Some(remote),
                        listening: false,
                    },
                    (None, Some((kind, local))) => ExecResponse::Socket {
                        kind,
                        v6: false,
                        local,
                        remote: None,
                        listening: false,
                    },
                    (None, None) => ExecResponse::Failed {
                        errno: libc::EBADF,
                        message: "not ours".into(),
                    },
                },
            )
        }
        ExecRequest::Resolve { name, family } => {
            if name == "hang.dn42" {
                // Holds the connection open without a word.
                std::thread::sleep(Duration::from_secs(60));
                return;
            }
            let a = if !name.ends_with(".dn42") {
                ExecResponse::Kernel
            } else if name == "fail.dn42" {
                ExecResponse::Failed {
                    errno: libc::ETIMEDOUT,
                    message: "timeout".into(),
                }
            } else {
                let all: Vec<IpAddr> = if name == "nx.dn42" {
                    vec![]
                } else {
                    vec!["10.99.0.1".parse().unwrap(), "fd99::1".parse().unwrap()]
                };
                let addrs = all
                    .into_iter()
                    .filter(|a| match family {
                        Family::Any => true,
                        Family::V4 => a.is_ipv4(),
                        Family::V6 => a.is_ipv6(),
                    })
                    .collect();
                ExecResponse::Addresses {
                    canonical: name,
                    addrs,
                }
            };
            answer(&mut c, a);
        }
        ExecRequest::ReverseResolve { addr } => answer(
            &mut c,
            if routed(addr) {
                ExecResponse::Name {
                    name: "host.fake.dn42".into(),
                }
            } else {
                ExecResponse::Kernel
            },
        ),
    }
}

fn op_name(op: &ExecRequest) -> String {
    let s = format!("{op:?}");
    match op {
        ExecRequest::Connect { remote, .. } => format!("Connect {remote}"),
        ExecRequest::Datagram { kind, remote, .. } => format!("Datagram {kind:?} {remote:?}"),
        _ => s.split([' ', '{']).next().unwrap_or("").to_string(),
    }
}

/// Copies both ways between the program's stream end and a kernel TCP connection.
fn relay_stream(u: UnixStream, t: TcpStream) {
    let (mut u2, mut t2) = (u.try_clone().unwrap(), t.try_clone().unwrap());
    let h = std::thread::spawn(move || {
        let _ = std::io::copy(&mut u2, &mut t2);
        let _ = t2.shutdown(std::net::Shutdown::Write);
    });
    let (mut u, mut t) = (u, t);
    let _ = std::io::copy(&mut t, &mut u);
    let _ = u.shutdown(std::net::Shutdown::Write);
    let _ = h.join();
}

/// UDP: records from the program go to the kernel at the mapped address; datagrams
/// coming back are named by their router address, with TTL 61.
fn relay_dgram(node: UnixDatagram, peer: Arc<Mutex<Option<SocketAddr>>>) {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (n2, u2) = (node.try_clone().unwrap(), udp.try_clone().unwrap());
    let names: Arc<Mutex<HashMap<u16, SocketAddr>>> = Arc::default();
    let names2 = names.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done2 = done.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while !done2.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((n, from)) = u2.recv_from(&mut buf) else {
                continue;
            };
            let src = names2.lock().unwrap().get(&from.port()).copied();
            let mut rec = DgramHeader { addr: src, ttl: 61 }.encode().to_vec();
            rec.extend_from_slice(&buf[..n]);
            if n2.send(&rec).is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 65536 + DGRAM_HEADER_LEN];
    loop {
        let n = match node.recv(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let Some(h) = DgramHeader::decode(&buf[..n]) else {
            continue;
        };
        let Some(dest) = h.addr.or(*peer.lock().unwrap()) else {
            continue;
        };
        let k = to_kernel(dest);
        names.lock().unwrap().insert(k.port(), dest);
        let _ = udp.send_to(&buf[DGRAM_HEADER_LEN..n], k);
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// ICMP: answers echo requests (type 8 / 128) with replies from the destination.
fn icmp_echo(node: UnixDatagram, peer: Arc<Mutex<Option<SocketAddr>>>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match node.recv(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let Some(h) = DgramHeader::decode(&buf[..n]) else {
            continue;
        };
        let Some(dest) = h.addr.or(*peer.lock().unwrap()) else {
            continue;
        };
        let mut msg = buf[DGRAM_HEADER_LEN..n].to_vec();
        match msg.first() {
            Some(8) => msg[0] = 0,
            Some(128) => msg[0] = 129,
            _ => continue,
        }
        let mut rec = DgramHeader {
            addr: Some(dest),
            ttl: 64,
        }
        .encode()
        .to_vec();
        rec.extend_from_slice(&msg);
        let _ = node.send(&rec);
    }
}

fn ino(fd: RawFd) -> u64 {
    // SAFETY: stat is plain old data; fd is open.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st);
        st.st_ino
    }
}

/// sendmsg of `data` with one descriptor.
pub fn send_fd(sock: RawFd, data: &[u8], fd: RawFd) -> std::io::Result<()> {
    // SAFETY: all buffers live across the call; the cmsg fits the aligned buffer.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut _,
            iov_len: data.len(),
        };
        let mut cbuf = [0u64; 4];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
        *(libc::CMSG_DATA(c) as *mut i32) = fd;
        if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// recvmsg collecting descriptors.
fn recv_fds(sock: RawFd, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let mut fds = Vec::new();
    // SAFETY: all buffers live across the call; cmsgs are walked within controllen.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut cbuf = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_type == libc::SCM_RIGHTS {
                let k = ((*c).cmsg_len - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..k {
                    let fd = std::ptr::read_unaligned((libc::CMSG_DATA(c) as *const i32).add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        Ok((n as usize, fds))
    }
}

/// A kernel TCP echo server on 127.0.0.1 (reads until EOF... echoing as it goes).
pub fn tcp_echo() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let mut w = s;
                let _ = std::io::copy(&mut r, &mut w);
                let _ = w.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    p
}

/// A kernel UDP echo on 127.0.0.1.
pub fn udp_echo() -> u16 {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let p = u.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok((n, from)) = u.recv_from(&mut buf) {
            let _ = u.send_to(&buf[..n], from);
        }
    });
    p
}

/// A kernel TCP port on 127.0.0.1 with nothing listening (bound then closed).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A minimal HTTP server on 127.0.0.1: answers every request with `body`.
pub fn http_server(body: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    p
}

/// The shim library cargo built for this test run: in the test binary's own directory
/// (`target/<profile>/deps/`), where the crate's lib target (cdylib + rlib) lands before
/// its integration tests run. (The copy in `target/<profile>/` is refreshed only by
/// `cargo build`, so it can be stale under `cargo test`.)
pub fn preload_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().join("librr_preload.so");
    assert!(p.exists(), "{} not built", p.display());
    p
}

pub fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Output of a program run under the shim.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd args` with the shim preloaded (and the node's socket when `node` is
/// given), killing it after 30 s.
pub fn run(node: Option<&FakeNode>, cmd: &str, args: &[&str]) -> Run {
    let mut c = std::process::Command::new(cmd);
    c.args(args)
        .env("LD_PRELOAD", preload_path())
        .env_remove("ROOTLESS_ROUTER_SOCKET")
        .env("ROOTLESS_ROUTER_PRELOAD_DEBUG", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(n) = node {
        c.env("ROOTLESS_ROUTER_SOCKET", &n.socket);
    }
    let child = c.spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            // SAFETY: kills the child this test started, by its pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
    let r = Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if !r.ok {
        eprintln!("--- stdout\n{}\n--- stderr\n{}", r.stdout, r.stderr);
    }
    r
}

/// Runs a python script under the shim with the fake node.
pub fn py(node: Option<&FakeNode>, script: &str, args: &[&str]) -> Run {
    let mut a = vec!["-c", script];
    a.extend_from_slice(args);
    run(node, python(), &a)
}

/// A minimal DNS server on 127.0.0.1 (UDP): answers every query with one A record
/// 10.99.0.42 for the question's name.
pub fn dns_server() -> u16 {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let p = u.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = u.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            // The question ends after its name (labels until 0) plus type and class.
            let mut i = 12;
            while i < n && buf[i] != 0 {
                i += buf[i] as usize + 1;
            }
            let qend = i + 5;
            if qend > n {
                continue;
            }
            let mut r = buf[..qend].to_vec();
            r[2] = 0x84 | (buf[2] & 0x01); // QR, AA, RD copied
            r[3] = 0x80; // RA
            r[6..8].copy_from_slice(&1u16.to_be_bytes()); // ANCOUNT
            r[8..12].fill(0);
            r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 99, 0, 42]);
            let _ = u.send_to(&r, from);
        }
    });
    p
}
