//! `rootless-router demo`: three nodes on loopback UDP, in this one process, no config,
//! no root. A and C are stub networks; B is the transit node between them. Each node
//! originates its own prefixes and learns the others' over BGP (one MP-BGP session per
//! tunnel, over IPv6 link-local with extended next hop, as DN42 peers do); no node has a
//! static route. The demo waits for the WireGuard handshakes and the BGP sessions, shows
//! the routes A learned, B dropping a ROA-invalid announcement C makes of A's space (B
//! validates against a ROA file, as DN42 nodes do) and the DN42 communities B's tunnels
//! put on routes, then pings and traceroutes from A's own stack to C across B, fetches a
//! page from a web server on this host that C exposes on its DN42 address (`[[expose]]`)
//! through a port A forwards (`[[forward]]`) and, when curl is installed, with `curl`
//! under `rootless-router exec` on A's network; prints what it saw, and leaves the nodes
//! running for `ctl` until Ctrl-C.
//!
//! What it is not: a test fixture with hidden shortcuts — every node is a full
//! `rr_node::Node` started from a TOML config, exactly as `run` starts one.

use crate::ctl::{render, request};
use anyhow::{Context, Result};
use clap::Args;
use rr_config::{keys, Config, Key};
use rr_ctl::{Request, Response};
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct DemoArgs {
    /// Run the checks, print them and exit (status 0 when every check passed).
    #[arg(long)]
    once: bool,
    /// Directory for the nodes' configs and control sockets (default: a new temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

struct DemoNode {
    name: &'static str,
    v4: &'static str,
    v6: &'static str,
    socket: PathBuf,
}

pub fn run(args: DemoArgs) -> Result<ExitCode> {
    let temp_dir = args.dir.is_none();
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("rootless-router-demo-{}", std::process::id())),
    };
    // The configs hold private keys: a directory only this user may enter.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;

    let (ka, kb_a, kb_c, kc) = (
        keys::generate(),
        keys::generate(),
        keys::generate(),
        keys::generate(),
    );
    let pk = |k| keys::public(k).to_base64();
    let sock = |n: &str| dir.join(format!("{n}.sock"));

    // The ROAs B validates against, in the BIRD 2 include format DN42 publishes them in.
    let roa_file = dir.join("roa_dn42.conf");
    std::fs::write(&roa_file, DEMO_ROAS)
        .with_context(|| format!("writing {}", roa_file.display()))?;
    let b = format!(
        r#"[router]
asn = 4242420002
addresses = ["172.20.2.1/32", "fd00:2::1/128"]
announce = ["172.20.2.0/24", "fd00:2::/48"]
control_socket = "{sb}"
region = 41
country = 1276

# Origin validation as the DN42 wiki does it: invalid and unknown routes are dropped.
[roa]
files = ["{roa}"]

# No endpoints: B learns them from A's and C's handshakes (and follows them if they roam).
[[interface]]
name = "to-a"
private_key = "{kba}"
peer_public_key = "{pa}"
addresses = ["fe80::b/64"]
latency = 2
bandwidth = 24
crypto = 34

[[interface]]
name = "to-c"
private_key = "{kbc}"
peer_public_key = "{pc}"
addresses = ["fe80::b/64"]
latency = 3
bandwidth = 25
crypto = 34

[[bgp]]
name = "a"
neighbor = "fe80::1"
interface = "to-a"
remote_asn = 4242420001
connect_retry = 1

[[bgp]]
name = "c"
neighbor = "fe80::3"
interface = "to-c"
remote_asn = 4242420003
connect_retry = 1
"#,
        sb = sock("b").display(),
        roa = roa_file.display(),
        kba = kb_a.to_base64(),
        kbc = kb_c.to_base64(),
        pa = pk(&ka),
        pc = pk(&kc),
    );
    rr_node::signals::block();
    let start = |name: &str, text: &str| -> Result<rr_node::NodeHandle> {
        let path = dir.join(format!("{name}.toml"));
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?
            .write_all(text.as_bytes())?;
        let cfg = Config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
        rr_node::Node::start(cfg).with_context(|| format!("starting node {name}"))
    };
    // B listens on ports the kernel picks; A and C are told them.
    let node_b = start("b", &b)?;
    let (port_ba, port_bc) = match node_b.listen_ports()[..] {
        [ab, bc] => (ab, bc),
        _ => anyhow::bail!("node B has not two tunnels"),
    };
    // A web server on this host stands behind C: C exposes it on its DN42 address, and
    // A forwards a port of this host to that address (the gateways that programs which
    // bypass libc use); `exec` reaches it straight through A's network.
    let web = host_web_server().context("starting the demo's web server on 127.0.0.1")?;
    let forward_port = free_port().context("picking a port for A's [[forward]]")?;
    let roa_section = format!("\n[roa]\nfiles = [\"{}\"]\n", roa_file.display());
    let a = stub_config(1, &sock("a"), &ka, &kb_a, port_ba)
        + &roa_section
        + &format!(
            "\n[[forward]]\nlisten = \"127.0.0.1:{forward_port}\"\nconnect = \"172.20.3.1:80\"\n"
        );
    // C also announces a more-specific of A's space: the ROA says A's AS originates it,
    // so B drops it (`roa-invalid`) and A never sees it.
    let c = stub_config(3, &sock("c"), &kc, &kb_c, port_bc).replace(
        r#"announce = ["172.20.3.0/24""#,
        &format!(r#"announce = ["{HIJACK}", "172.20.3.0/24""#),
    ) + &roa_section
        + &format!("\n[[expose]]\nlisten = \"172.20.3.1:80\"\nconnect = \"{web}\"\n");
    let handles = vec![node_b, start("a", &a)?, start("c", &c)?];
    let nodes = [
        DemoNode {
            name: "A",
            v4: "172.20.1.1",
            v6: "fd00:1::1",
            socket: sock("a"),
        },
        DemoNode {
            name: "B",
            v4: "172.20.2.1",
            v6: "fd00:2::1",
            socket: sock("b"),
        },
        DemoNode {
            name: "C",
            v4: "172.20.3.1",
            v6: "fd00:3::1",
            socket: sock("c"),
        },
    ];

    println!("rootless-router demo: three nodes on loopback UDP, one process, no root.\n");
    println!(
        "  A {} {}  ==wg==  B {} {} (transit)  ==wg==  C {} {}\n",
        nodes[0].v4, nodes[0].v6, nodes[1].v4, nodes[1].v6, nodes[2].v4, nodes[2].v6
    );

    let up = wait_handshakes(&nodes[1].socket, 2, Duration::from_secs(15));
    println!(
        "WireGuard handshakes: {}",
        if up {
            "B has both peers up"
        } else {
            "NOT complete after 15 s"
        }
    );

    let routed = wait_routes(&nodes, Duration::from_secs(20));
    println!(
        "BGP: {}",
        if routed {
            "B has both sessions up; A and C learned each other's prefixes"
        } else {
            "routes NOT all learned after 20 s"
        }
    );

    let mut passed = 0;
    let mut failed = 0;
    let check_at = |node: usize, title: &str, req: Request, ok: &dyn Fn(&[Response]) -> bool| {
        println!("\n$ {title}");
        let mut lines = Vec::new();
        let r = request(&nodes[node].socket, &req, |resp| {
            print!("{}", render(resp));
            lines.push(resp.clone());
        });
        let good = r.is_ok() && ok(&lines);
        if let Err(e) = r {
            println!("error: {e:#}");
        }
        println!("=> {}", if good { "ok" } else { "FAILED" });
        good
    };
    let mut check = |node: usize, title: &str, req: Request, ok: &dyn Fn(&[Response]) -> bool| {
        if check_at(node, title, req, ok) {
            passed += 1
        } else {
            failed += 1
        }
    };
    check(
        1,
        "B: show bgp (both sessions Established)",
        Request::ShowBgp { name: None },
        &|l: &[Response]| {
            l.iter().any(|r| {
                matches!(r, Response::Bgp { sessions, .. }
                if sessions.len() == 2 && sessions.iter().all(|s| s.state == "Established"))
            })
        },
    );
    check(
        0,
        &format!(
            "A: show routes for {} (learned from B, AS path B C)",
            nodes[2].v4
        ),
        Request::ShowRoutes {
            for_addr: Some(nodes[2].v4.parse()?),
            all: false,
            filtered: false,
            prefix: None,
        },
        &|l: &[Response]| {
            l.iter().any(|r| {
                matches!(r, Response::Routes { routes }
                if routes.iter().any(|x| x.best && x.prefix == "172.20.3.0/24"
                    && x.as_path.as_deref() == Some("4242420002 4242420003")
                    && x.interface == "to-b"))
            })
        },
    );
    check(
        0,
        &format!("A: show routes for {} (IPv6, same path)", nodes[2].v6),
        Request::ShowRoutes {
            for_addr: Some(nodes[2].v6.parse()?),
            all: false,
            filtered: false,
            prefix: None,
        },
        &|l: &[Response]| {
            l.iter().any(|r| {
                matches!(r, Response::Routes { routes }
                if routes.iter().any(|x| x.best && x.prefix == "fd00:3::/48"
                    && x.as_path.as_deref() == Some("4242420002 4242420003")))
            })
        },
    );
    check(
        1,
        &format!("B: show routes filtered (C's {HIJACK} is in A's ROA: roa-invalid)"),
        Request::ShowRoutes {
            for_addr: None,
            all: false,
            filtered: true,
            prefix: None,
        },
        &|l: &[Response]| {
            l.iter().any(|r| {
                matches!(r, Response::Routes { routes }
                if routes.iter().any(|x| x.prefix == HIJACK && x.filtered
                    && x.reason.as_deref() == Some("roa-invalid")))
            })
        },
    );
    check(
        0,
        &format!(
            "A: show routes for {} (ROA valid; DN42 communities from B's tunnels: latency max 3, bandwidth min 24, crypto 34)",
            nodes[2].v4
        ),
        Request::ShowRoutes {
            for_addr: Some(nodes[2].v4.parse()?),
            all: false,
            filtered: false,
            prefix: None,
        },
        &|l: &[Response]| {
            l.iter().any(|r| {
                matches!(r, Response::Routes { routes }
                if routes.iter().any(|x| x.best && x.prefix == "172.20.3.0/24"
                    && x.roa.as_deref() == Some("valid")
                    && ["(64511,3)", "(64511,24)", "(64511,34)"]
                        .iter()
                        .all(|c| x.communities.iter().any(|have| have == c))))
            })
        },
    );
    let replies = |n: u32| {
        move |l: &[Response]| {
            l.iter()
                .any(|r| matches!(r, Response::PingDone { received, .. } if *received >= n))
        }
    };
    check(
        0,
        &format!("ping from A's own stack to C ({})", nodes[2].v4),
        Request::Ping {
            addr: nodes[2].v4.parse()?,
            count: 3,
            interface: None,
        },
        &replies(2),
    );
    check(
        0,
        &format!("ping6 from A's own stack to C ({})", nodes[2].v6),
        Request::Ping {
            addr: nodes[2].v6.parse()?,
            count: 3,
            interface: None,
        },
        &replies(2),
    );
    let via_b = |b: String, c: String| {
        move |l: &[Response]| {
            let hops: Vec<_> = l
                .iter()
                .filter_map(|r| match r {
                    Response::Hop { ttl, from, .. } => Some((*ttl, from.clone())),
                    _ => None,
                })
                .collect();
            hops.first() == Some(&(1, Some(b.clone())))
                && hops.last().map(|h| h.1.clone()) == Some(Some(c.clone()))
        }
    };
    check(
        0,
        &format!(
            "traceroute from A to C: the first hop is the transit node B ({})",
            nodes[1].v4
        ),
        Request::Traceroute {
            addr: nodes[2].v4.parse()?,
            max_hops: 8,
            interface: None,
        },
        &via_b(nodes[1].v4.into(), nodes[2].v4.into()),
    );
    check(
        0,
        &format!("traceroute6 from A to C via B ({})", nodes[1].v6),
        Request::Traceroute {
            addr: nodes[2].v6.parse()?,
            max_hops: 8,
            interface: None,
        },
        &via_b(nodes[1].v6.into(), nodes[2].v6.into()),
    );
    check(
        0,
        "ping from A to an unused address in B's announced 172.20.2.0/24 (B answers unreachable)",
        Request::Ping {
            addr: "172.20.2.99".parse()?,
            count: 1,
            interface: None,
        },
        &|l: &[Response]| {
            l.iter().any(|r| matches!(r, Response::PingReply { error: Some(e), from: Some(f), .. } if e.contains("unreachable") && f == "172.20.2.1"))
        },
    );

    println!(
        "\n$ TCP to 127.0.0.1:{forward_port} (A's [[forward]] to 172.20.3.1:80, C's [[expose]] of {web})"
    );
    match http_get(&format!("127.0.0.1:{forward_port}")) {
        Ok(body) if body.contains(WEB_GREETING) => {
            print!("{body}");
            println!("=> ok");
            passed += 1;
        }
        r => {
            println!("{r:?}\n=> FAILED");
            failed += 1;
        }
    }
    let exe_path = std::env::current_exe().ok();
    match (exe_path, find_in_path("curl"), crate::exec::find_shim()) {
        (_, _, Err(e)) => println!("\n(exec check skipped: {e})"),
        (Some(exe), Some(curl), Ok(_)) => {
            println!(
                "\n$ rootless-router exec --socket {} -- curl -s http://172.20.3.1/   (on A's network)",
                nodes[0].socket.display()
            );
            let out = std::process::Command::new(exe)
                .arg("exec")
                .arg("--socket")
                .arg(&nodes[0].socket)
                .arg("--")
                .arg(curl)
                .args(["-s", "--max-time", "10", "http://172.20.3.1/"])
                .output();
            match out {
                Ok(o) if String::from_utf8_lossy(&o.stdout).contains(WEB_GREETING) => {
                    print!("{}", String::from_utf8_lossy(&o.stdout));
                    println!("=> ok");
                    passed += 1;
                }
                r => {
                    println!("{r:?}\n=> FAILED");
                    failed += 1;
                }
            }
        }
        _ => println!("\n(exec check skipped: curl is not installed)"),
    }

    println!("\n{passed} passed, {failed} failed");
    let mut poke = String::new();
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "rootless-router".into());
    let _ = writeln!(
        poke,
        "\nThe nodes keep running. Poke them from another terminal:"
    );
    for n in &nodes {
        let _ = writeln!(
            poke,
            "  {exe} ctl --socket {} show interfaces     # node {}",
            n.socket.display(),
            n.name
        );
    }
    let _ = writeln!(
        poke,
        "  {exe} ctl --socket {} show bgp",
        nodes[1].socket.display()
    );
    let _ = writeln!(
        poke,
        "  {exe} ctl --socket {} show routes all",
        nodes[0].socket.display()
    );
    let _ = writeln!(
        poke,
        "  {exe} ctl --socket {} traceroute {}",
        nodes[2].socket.display(),
        nodes[0].v6
    );
    let _ = writeln!(
        poke,
        "  {exe} ctl --socket {} ping -c 5 {}",
        nodes[0].socket.display(),
        nodes[2].v4
    );
    let _ = writeln!(
        poke,
        "  {exe} exec --socket {} -- curl http://172.20.3.1/   # any program, on A's network",
        nodes[0].socket.display()
    );
    let _ = writeln!(
        poke,
        "  curl http://127.0.0.1:{forward_port}/                  # A's [[forward]] to C"
    );
    let _ = writeln!(
        poke,
        "Configs are in {}. Ctrl-C stops the demo.",
        dir.display()
    );
    if !args.once {
        print!("{poke}");
        rr_node::signals::wait();
    }
    for h in handles {
        h.shutdown();
    }
    if temp_dir {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What the demo's web server answers.
const WEB_GREETING: &str = "hello from the web server behind node C";

/// A web server on 127.0.0.1 (the host's kernel), answering every request with
/// [`WEB_GREETING`]; returns its address.
/// The demo's ROA table (BIRD 2 include format): each node's prefixes, its origin.
const DEMO_ROAS: &str = "\
# DN42-style ROA table for the demo (BIRD 2 include format)
route 172.20.1.0/24 max 24 as 4242420001;
route 172.20.2.0/24 max 24 as 4242420002;
route 172.20.3.0/24 max 24 as 4242420003;
route fd00:1::/48 max 48 as 4242420001;
route fd00:2::/48 max 48 as 4242420002;
route fd00:3::/48 max 48 as 4242420003;
";

/// What C announces inside A's space.
const HIJACK: &str = "172.20.1.128/25";

fn host_web_server() -> std::io::Result<std::net::SocketAddr> {
    use std::io::Read as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("demo-web".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut conn = conn;
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16384 {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let body = format!("{WEB_GREETING}\n");
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })?;
    Ok(addr)
}

/// A TCP port free on 127.0.0.1 right now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One HTTP GET of `/` at `addr`; the body.
fn http_get(addr: &str) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

/// `name` found in `$PATH`.
fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// A stub node `n` (A = 1, C = 3): 172.20.n.1 and fd00:n::1, one tunnel to B at
/// 127.0.0.1:`port` and one BGP session with B over it.
fn stub_config(n: u8, socket: &Path, key: &Key, b_key: &Key, port: u16) -> String {
    format!(
        r#"[router]
asn = 424242000{n}
addresses = ["172.20.{n}.1/32", "fd00:{n}::1/128"]
announce = ["172.20.{n}.0/24", "fd00:{n}::/48"]
control_socket = "{socket}"

[[interface]]
name = "to-b"
private_key = "{key}"
peer_public_key = "{b_pub}"
endpoint = "127.0.0.1:{port}"
persistent_keepalive = 5
addresses = ["fe80::{n}/64"]

[[bgp]]
name = "b"
neighbor = "fe80::b"
interface = "to-b"
remote_asn = 4242420002
connect_retry = 1
"#,
        socket = socket.display(),
        key = key.to_base64(),
        b_pub = keys::public(b_key).to_base64(),
    )
}

fn wait_handshakes(socket: &Path, peers: usize, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        let mut up = 0;
        let _ = request(socket, &Request::ShowInterfaces, |r| {
            if let Response::Interfaces { interfaces, .. } = r {
                up = interfaces
                    .iter()
                    .filter(|i| i.latest_handshake_secs.is_some())
                    .count();
            }
        });
        if up >= peers {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Until B has both sessions Established and A and C have each other's prefixes in
/// their forwarding tables.
fn wait_routes(nodes: &[DemoNode], limit: Duration) -> bool {
    let start = Instant::now();
    let learned = |socket: &Path, addr: &str| {
        let Ok(addr) = addr.parse() else { return false };
        let mut found = false;
        let _ = request(socket, &Request::RouteLookup { addr }, |r| {
            if let Response::Lookup { route: Some(_), .. } = r {
                found = true;
            }
        });
        found
    };
    while start.elapsed() < limit {
        let done = learned(&nodes[0].socket, nodes[2].v4)
            && learned(&nodes[0].socket, nodes[2].v6)
            && learned(&nodes[2].socket, nodes[0].v4)
            && learned(&nodes[2].socket, nodes[0].v6);
        if done {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
