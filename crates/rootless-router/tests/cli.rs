//! The binary as a user runs it: the demo's own checks, keys, `check`, and `ctl` refusals.

use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rootless-router"))
}

#[test]
fn demo_once_learns_routes_over_bgp_and_crosses_the_transit_node() {
    let dir = tempdir("demo");
    let out = bin()
        .args(["demo", "--once", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 11 checks, 12 with the exec check (it needs curl and the shim beside the binary).
    let exec_ran = !stdout.contains("exec check skipped");
    let expect = if exec_ran { 12 } else { 11 };
    assert!(
        stdout.contains(&format!("{expect} passed, 0 failed")),
        "{stdout}"
    );
    // The gateways: A's [[forward]] reached the host's web server through C's [[expose]].
    assert!(
        stdout.contains("hello from the web server behind node C\n=> ok"),
        "{stdout}"
    );
    // The routes came from BGP: A learned C's prefix through B.
    assert!(stdout.contains("[4242420002 4242420003i]"), "{stdout}");
    // Hop 1 of the traceroute is the transit node B.
    assert!(stdout.contains(" 1  172.20.2.1"), "{stdout}");
    assert!(stdout.contains(" 1  fd00:2::1"), "{stdout}");
}

#[test]
fn genkey_pubkey_round_trip() {
    let k = bin().arg("genkey").output().unwrap();
    assert!(k.status.success());
    let key = String::from_utf8(k.stdout).unwrap();
    assert_eq!(key.trim().len(), 44);
    let mut p = bin()
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(key.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim().len(), 44);
    // RFC 7748 6.1: Alice's key pair, as `wg pubkey` would print it.
    let mut p = bin()
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin
        .take()
        .unwrap()
        .write_all(b"dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n")
        .unwrap();
    let out = p.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
    );
    let mut p = bin()
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(b"not a key").unwrap();
    assert!(!p.wait_with_output().unwrap().status.success());
}

#[test]
fn check_reports_every_problem_and_run_refuses() {
    let dir = tempdir("check");
    let cfg = dir.join("bad.toml");
    std::fs::write(
        &cfg,
        r#"[router]
addresses = ["172.20.0.1/32"]

[[interface]]
name = "a"
private_key = "not-base64!"
peer_public_key = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
listen_port = 51820

[[interface]]
name = "b"
private_key = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
peer_public_key = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
listen_port = 51820
"#,
    )
    .unwrap();
    let out = bin()
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:6:"), "{err}");
    assert!(err.contains("private_key"), "{err}");
    assert!(err.contains("bad.toml:14:"), "{err}");
    assert!(err.to_lowercase().contains("duplicate"), "{err}");
    // The peer's key equals b's own public key: also reported.
    assert!(err.lines().count() >= 3, "{err}");
    let out = bin().args(["run", "--config"]).arg(&cfg).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn ctl_without_a_node_says_so() {
    let dir = tempdir("ctl");
    let out = bin()
        .args(["ctl", "--socket"])
        .arg(dir.join("nothing.sock"))
        .args(["show", "interfaces"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach a node"), "{err}");
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rr-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
