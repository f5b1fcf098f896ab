//! `rootless-router exec` as a user runs it: refusals before anything starts (no node,
//! not a socket, a stale socket, a node that says no), the environment the program
//! gets, the shim's lookup, setuid programs through the loader, static programs warned
//! about — against a scripted control socket and against a real `rootless-router run`.

use rr_ctl::exec::{ExecRequest, ExecResponse, PROTOCOL_VERSION};
use rr_ctl::{Request, Response};
use std::io::BufReader;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rootless-router"));
    c.env_remove("ROOTLESS_ROUTER_SOCKET")
        .env_remove("ROOTLESS_ROUTER_PRELOAD")
        .env_remove("ROOTLESS_ROUTER_PRELOAD_DEBUG")
        .env_remove("LD_PRELOAD")
        .env_remove("RUST_LOG");
    c
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir(tag: &str) -> TempDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "rr-exec-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `exec --socket SOCKET -- touch MARKER`: refused with exit 2, `expect` on stderr, and
/// the program never ran.
fn refused(socket: &Path, dir: &Path, expect: &str) -> String {
    let marker = dir.join("ran");
    let out = bin()
        .args(["exec", "--socket"])
        .arg(socket)
        .args(["--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(expect), "expected {expect:?} in: {err}");
    assert!(!marker.exists(), "the program ran");
    err
}

/// A control socket that answers each connection's first request with `answer`,
/// `conns` times; the requests it saw come back from the join handle.
fn scripted_node(socket: &Path, answer: Response, conns: usize) -> JoinHandle<Vec<Request>> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..conns {
            let (conn, _) = listener.accept().unwrap();
            let req: Request = rr_ctl::read_line(&mut BufReader::new(&conn), 1 << 16)
                .unwrap()
                .unwrap();
            seen.push(req);
            rr_ctl::write_line(&mut &conn, &answer).unwrap();
        }
        seen
    })
}

fn hello() -> Response {
    Response::Exec {
        answer: ExecResponse::Hello {
            version: PROTOCOL_VERSION,
        },
    }
}

/// An empty file as the shim: the loader says it cannot preload it and goes on, so the
/// environment can be inspected without the real shim in the program.
fn fake_shim(dir: &Path) -> PathBuf {
    let p = dir.join("fake_preload.so");
    std::fs::write(&p, b"").unwrap();
    p
}

fn exec_with(socket: &Path, shim: &Path, args: &[&str]) -> Output {
    bin()
        .args(["exec", "--socket"])
        .arg(socket)
        .arg("--")
        .args(args)
        .env("ROOTLESS_ROUTER_PRELOAD", shim)
        .output()
        .unwrap()
}

#[test]
fn no_socket_means_no_router_and_the_program_does_not_run() {
    let dir = tempdir("none");
    let err = refused(&dir.join("nothing.sock"), &dir, "no router running");
    assert!(err.contains("no control socket at"), "{err}");
    assert!(err.contains("rootless-router run --config FILE"), "{err}");
}

#[test]
fn a_regular_file_is_not_a_socket() {
    let dir = tempdir("file");
    let f = dir.join("plain.sock");
    std::fs::write(&f, "").unwrap();
    refused(&f, &dir, "is not a socket");
}

#[test]
fn a_stale_socket_means_the_node_exited() {
    let dir = tempdir("stale");
    let s = dir.join("stale.sock");
    drop(UnixListener::bind(&s).unwrap());
    let err = refused(&s, &dir, "stale socket");
    assert!(err.contains("no router running"), "{err}");
}

#[test]
fn the_nodes_refusal_is_printed_as_is() {
    let dir = tempdir("refusal");
    let s = dir.join("n.sock");
    let message = "permission denied: this node serves uid 1000 only, the client is uid 0";
    let node = scripted_node(
        &s,
        Response::Error {
            message: message.into(),
        },
        1,
    );
    refused(&s, &dir, message);
    assert_eq!(
        node.join().unwrap(),
        vec![Request::Exec {
            op: ExecRequest::Hello
        }]
    );

    let node = scripted_node(
        &dir.join("v.sock"),
        Response::Exec {
            answer: ExecResponse::Hello {
                version: PROTOCOL_VERSION + 1,
            },
        },
        1,
    );
    refused(&dir.join("v.sock"), &dir, "exec protocol version");
    node.join().unwrap();
}

#[test]
fn the_program_gets_the_shim_and_the_absolute_socket() {
    let dir = tempdir("env");
    let shim = fake_shim(&dir);
    let node = scripted_node(&dir.join("n.sock"), hello(), 2);
    // A relative --socket, from the directory it is in: made absolute for the program.
    let out = bin()
        .current_dir(&dir)
        .args(["exec", "--socket", "n.sock", "--", "sh", "-c"])
        .arg("echo \"$LD_PRELOAD|$ROOTLESS_ROUTER_SOCKET\"; exit 7")
        .env("ROOTLESS_ROUTER_PRELOAD", &shim)
        .env("LD_PRELOAD", "/nonexistent/other.so")
        .output()
        .unwrap();
    // The exit status is the program's own.
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!(
            "{}:/nonexistent/other.so|{}",
            shim.display(),
            dir.join("n.sock").display()
        )
    );
    // The socket from the environment, like ctl; arguments that look like options are
    // the program's.
    let out = bin()
        .env("ROOTLESS_ROUTER_SOCKET", dir.join("n.sock"))
        .env("ROOTLESS_ROUTER_PRELOAD", &shim)
        .args(["exec", "sh", "-c", "echo $0 $1", "-v", "--socket"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "-v --socket");
    node.join().unwrap();
}

#[test]
fn programs_not_found_or_not_executable() {
    let dir = tempdir("missing");
    let shim = fake_shim(&dir);
    let node = scripted_node(&dir.join("n.sock"), hello(), 2);
    let out = exec_with(&dir.join("n.sock"), &shim, &["no-such-program-rr"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(text(&out.stderr).contains("command not found"));
    let f = dir.join("data.txt");
    std::fs::write(&f, "not a program").unwrap();
    let out = exec_with(&dir.join("n.sock"), &shim, &[f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    node.join().unwrap();
}

#[test]
fn the_shim_is_found_beside_the_binary_or_named() {
    let dir = tempdir("shim");
    let node = scripted_node(&dir.join("n.sock"), hello(), 3);
    // Named but missing.
    let out = exec_with(&dir.join("n.sock"), &dir.join("gone.so"), &["true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("ROOTLESS_ROUTER_PRELOAD names"),
        "{}",
        text(&out.stderr)
    );
    // A copy of the binary in bin/ with no shim anywhere: both places are named.
    let bindir = dir.join("bin");
    std::fs::create_dir_all(&bindir).unwrap();
    let exe = bindir.join("rootless-router");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_rootless-router"), &exe).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_rootless-router"), &exe).unwrap();
    }
    let run = |args: &[&str]| {
        Command::new(&exe)
            .env_remove("ROOTLESS_ROUTER_PRELOAD")
            .env_remove("LD_PRELOAD")
            .args(["exec", "--socket"])
            .arg(dir.join("n.sock"))
            .arg("--")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["true"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&bindir.join("librr_preload.so").display().to_string()),
        "{err}"
    );
    assert!(
        err.contains(
            &dir.join("lib/rootless-router/librr_preload.so")
                .display()
                .to_string()
        ),
        "{err}"
    );
    assert!(err.contains("cargo build --release"), "{err}");
    // In ../lib/rootless-router/ it is found.
    let lib = dir.join("lib/rootless-router");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(lib.join("librr_preload.so"), b"").unwrap();
    let out = run(&["sh", "-c", "echo $LD_PRELOAD"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        lib.join("librr_preload.so").display().to_string()
    );
    node.join().unwrap();
}

#[test]
fn setuid_programs_run_through_their_loader_with_argv0_kept() {
    let dir = tempdir("suid");
    let shim = fake_shim(&dir);
    let node = scripted_node(&dir.join("n.sock"), hello(), 2);
    // A setuid copy of sh, found through PATH under its own name.
    let sh = dir.join("sush");
    std::fs::copy("/bin/sh", &sh).unwrap();
    std::fs::set_permissions(&sh, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    let out = bin()
        .env("PATH", &path)
        .env("ROOTLESS_ROUTER_PRELOAD", &shim)
        .env("ROOTLESS_ROUTER_PRELOAD_DEBUG", "0")
        .args(["exec", "-v", "--socket"])
        .arg(dir.join("n.sock"))
        .args(["--", "sush", "-c", "echo \"$0 $LD_PRELOAD\""])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("is setuid"), "{err}");
    assert!(err.contains("runs through /"), "{err}");
    // glibc >= 2.33's loader keeps argv[0] with --argv0; older ones show the path.
    let argv0_kept = Command::new("/lib64/ld-linux-x86-64.so.2")
        .arg("--help")
        .output()
        .is_ok_and(|o| text(&o.stdout).contains("--argv0"));
    let want0 = if argv0_kept {
        "sush".to_string()
    } else {
        sh.display().to_string()
    };
    assert_eq!(
        text(&out.stdout).trim(),
        format!("{want0} {}", shim.display())
    );
    // Quiet without -v.
    let out = bin()
        .env("PATH", &path)
        .env("ROOTLESS_ROUTER_PRELOAD", &shim)
        .args(["exec", "--socket"])
        .arg(dir.join("n.sock"))
        .args(["--", "sush", "-c", "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        !text(&out.stderr).contains("rootless-router"),
        "{}",
        text(&out.stderr)
    );
    node.join().unwrap();
}

#[test]
fn static_programs_are_warned_about_and_still_run() {
    let Some(ldconfig) = ["/sbin/ldconfig", "/usr/sbin/ldconfig"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("no static ldconfig here: the static-program warning is not checked");
        return;
    };
    let dir = tempdir("static");
    let shim = fake_shim(&dir);
    let node = scripted_node(&dir.join("n.sock"), hello(), 1);
    let out = exec_with(&dir.join("n.sock"), &shim, &[ldconfig, "--version"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(text(&out.stdout).contains("ldconfig"));
    assert!(err.contains("is statically linked"), "{err}");
    assert!(err.contains("[[forward]]"), "{err}");
    node.join().unwrap();
}

/// A real node on loopback, stopped on drop.
struct Node {
    child: Child,
    socket: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node(dir: &Path) -> Node {
    let socket = dir.join("node.sock");
    let cfg = dir.join("node.toml");
    std::fs::write(
        &cfg,
        format!(
            "[router]\naddresses = [\"172.20.0.1/32\"]\ncontrol_socket = \"{}\"\n",
            socket.display()
        ),
    )
    .unwrap();
    let child = bin()
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !socket.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "node did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Node { child, socket }
}

/// Needs the node's answer to Hello (rr-node's exec server).
#[test]
fn a_real_node_says_hello_and_the_program_runs() {
    let dir = tempdir("real");
    let node = start_node(&dir);
    let shim = fake_shim(&dir);
    // --config finds the socket as ctl does.
    let out = bin()
        .args(["exec", "--config"])
        .arg(dir.join("node.toml"))
        .args(["--", "env"])
        .env("ROOTLESS_ROUTER_PRELOAD", &shim)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("LD_PRELOAD={}", shim.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("ROOTLESS_ROUTER_SOCKET={}", node.socket.display())),
        "{stdout}"
    );
    drop(node);
    // The node is gone: its socket file is either removed or stale.
    let err = refused(&dir.join("node.sock"), &dir, "no router running");
    assert!(
        err.contains("no control socket") || err.contains("stale socket"),
        "{err}"
    );
}
