//! Config file tests: the SPEC example, every validation rule, and error reporting.

use rr_config::{keys, Config, ConfigErrors, Family, Key, DEFAULT_MTU};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

// Wireshark's WireGuard test keys (/work/shared/data/wireguard/wireshark_wireguard_test_keys.txt).
const PRIV_I: &str = "AKeZaHwBxjiKLFnkY2unvEdOTtg4AL+M9dQXfopFVFk=";
const PUB_I: &str = "Igge9KzRytKNwrgkzDE/8hrLu6Ly0OqVdvOPWhA5KR4=";
const PRIV_R: &str = "cFIxTUyBs1Qil414hBwEgvasEax8CKJ5IS5ZougplWs=";
const PUB_R: &str = "YDCttCs9e1J52/g9vEnwJJa+2x6RqaayAYMpSVQfGEY=";
const PSK: &str = "iIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIg=";

/// A fresh directory under the system temp dir.
fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rr-config-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, "test.toml", Path::new("/nonexistent-dir"))
}

fn errors(text: &str) -> ConfigErrors {
    match parse(text) {
        Ok(c) => panic!("expected errors, got {c:?}"),
        Err(e) => e,
    }
}

/// The single error of a config (panics if there are several).
fn single(text: &str) -> (Option<usize>, String, String) {
    let errs = errors(text);
    assert_eq!(errs.errors.len(), 1, "expected one error, got:\n{errs}");
    let e = &errs.errors[0];
    (e.line, e.key.clone(), e.message.clone())
}

fn router() -> String {
    "[router]\nasn = 4242420001\naddresses = [\"172.20.0.1/32\"]\n".to_owned()
}

/// `[router]` (3 lines) + one interface starting on line 4 with `extra` lines after it.
fn with_iface(extra: &str) -> String {
    format!(
        "{}[[interface]]\nname = \"peer-a\"\nprivate_key = \"{PRIV_I}\"\npeer_public_key = \"{PUB_R}\"\n{extra}",
        router()
    )
}

#[test]
fn spec_example_parses() {
    let dir = temp_dir();
    std::fs::write(dir.join("peer-a.key"), format!("{PRIV_I}\n")).unwrap();
    std::fs::write(dir.join("peer-b.psk"), format!("  {PSK}\r\n\n")).unwrap();
    let text = format!(
        r#"# A DN42 node, in the style of SPEC.md
[router]
asn = 4242420001                                  # 4-byte ASNs are the norm in DN42
router_id = "172.20.0.1"
addresses = ["172.20.0.1/32", "fd00:1::1/128"]    # the node's own addresses
announce = ["172.20.0.0/27", "fd00:1::/48"]       # prefixes this node originates
control_socket = "/run/user/1000/rootless-router.sock"

# One WireGuard tunnel = one point-to-point interface = one peer.
[[interface]]
name = "peer-a"
private_key_file = "peer-a.key"
listen_port = 51821
peer_public_key = "{PUB_R}"
endpoint = "127.0.0.1:51820"
persistent_keepalive = 25
mtu = 1420
addresses = ["fe80::1/64", "172.20.0.1/32"]

[[interface]]
name = "peer-b"
private_key = "{PRIV_R}"
listen_port = 51822
peer_public_key = "{PUB_I}"
endpoint = "[::1]:51820"
preshared_key_file = "{psk}"

[[interface]]
name = "roaming"
private_key = "{PRIV_I}"
peer_public_key = "{PUB_R}"
listen_port = 0

[[route]]
prefix = "172.20.1.0/24"
interface = "peer-a"

[[route]]
prefix = "fd00:2::/48"
interface = "peer-b"
gateway = "fe80::b"

[[bgp]]
name = "peer-a"
neighbor = "fe80::a"
interface = "peer-a"
remote_asn = 4242420010

[[bgp]]
name = "peer-b-v4"
neighbor = "172.20.0.66"
remote_asn = 4242420020
families = ["ipv4"]
extended_next_hop = false
passive = true
hold_time = 90
keepalive = 30
connect_retry = 5
"#,
        psk = dir.join("peer-b.psk").display()
    );
    let path = dir.join("router.toml");
    std::fs::write(&path, &text).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(config.source.as_deref(), Some(path.as_path()));
    let r = &config.router;
    assert_eq!(r.asn, Some(4242420001));
    assert_eq!(r.router_id, Some(Ipv4Addr::new(172, 20, 0, 1)));
    assert_eq!(
        r.addresses,
        vec![
            "172.20.0.1/32".parse().unwrap(),
            "fd00:1::1/128".parse().unwrap()
        ]
    );
    assert_eq!(
        r.announce,
        vec![
            "172.20.0.0/27".parse().unwrap(),
            "fd00:1::/48".parse().unwrap()
        ]
    );
    assert_eq!(
        r.control_socket.as_deref(),
        Some(Path::new("/run/user/1000/rootless-router.sock"))
    );
    assert_eq!(
        config.router_addresses(),
        vec![
            "172.20.0.1".parse::<IpAddr>().unwrap(),
            "fd00:1::1".parse().unwrap()
        ]
    );

    assert_eq!(config.interfaces.len(), 3);
    let a = &config.interfaces[0];
    assert_eq!(a.name, "peer-a");
    assert_eq!(a.private_key, Key::from_base64(PRIV_I).unwrap());
    assert_eq!(a.public_key().to_base64(), PUB_I);
    assert_eq!(a.listen_port, Some(51821));
    assert_eq!(a.peer_public_key.to_base64(), PUB_R);
    assert_eq!(a.endpoint, Some("127.0.0.1:51820".parse().unwrap()));
    assert_eq!(a.endpoint_text.as_deref(), Some("127.0.0.1:51820"));
    assert_eq!(a.preshared_key, None);
    assert_eq!(a.persistent_keepalive, Some(25));
    assert_eq!(a.mtu, 1420);
    assert_eq!(
        a.addresses,
        vec![
            "fe80::1/64".parse().unwrap(),
            "172.20.0.1/32".parse().unwrap()
        ]
    );
    let b = &config.interfaces[1];
    assert_eq!(b.endpoint, Some("[::1]:51820".parse().unwrap()));
    assert_eq!(b.preshared_key.map(|k| k.to_base64()), Some(PSK.to_owned()));
    assert_eq!(b.mtu, DEFAULT_MTU);
    let roaming = &config.interfaces[2];
    assert_eq!(roaming.listen_port, None);
    assert_eq!(roaming.endpoint, None);
    assert_eq!(roaming.persistent_keepalive, None);
    assert!(roaming.addresses.is_empty());
    assert_eq!(config.interface("peer-b").map(|(i, _)| i), Some(1));

    assert_eq!(config.routes.len(), 2);
    assert_eq!(config.routes[0].prefix, "172.20.1.0/24".parse().unwrap());
    assert_eq!(config.routes[0].interface, "peer-a");
    assert_eq!(config.routes[0].gateway, None);
    assert_eq!(config.routes[1].interface, "peer-b");
    assert_eq!(config.routes[1].gateway, Some("fe80::b".parse().unwrap()));

    assert_eq!(config.bgp.len(), 2);
    let s = &config.bgp[0];
    assert_eq!(s.name, "peer-a");
    assert_eq!(s.neighbor, "fe80::a".parse::<IpAddr>().unwrap());
    assert_eq!(s.interface.as_deref(), Some("peer-a"));
    assert_eq!(s.remote_asn, 4242420010);
    assert_eq!(s.families, vec![Family::Ipv4, Family::Ipv6]);
    assert_eq!(s.extended_next_hop, None);
    assert!(!s.passive);
    assert_eq!(
        (s.hold_time, s.keepalive, s.connect_retry),
        (None, None, None)
    );
    let s = &config.bgp[1];
    assert_eq!(s.interface, None);
    assert_eq!(s.families, vec![Family::Ipv4]);
    assert_eq!(s.extended_next_hop, Some(false));
    assert!(s.passive);
    assert_eq!(
        (s.hold_time, s.keepalive, s.connect_retry),
        (Some(90), Some(30), Some(5))
    );

    // Debug output never shows key material.
    let debug = format!("{config:?}");
    for secret in [PRIV_I, PRIV_R, PSK, PUB_R] {
        assert!(!debug.contains(secret));
    }
    assert!(debug.contains("<key>"));

    // Parsing the same text twice gives equal configs (the reload diff relies on ==).
    let again = Config::load(&path).unwrap();
    assert_eq!(again, config);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn minimal_config_and_router_id_default() {
    let c = parse("[router]\n").unwrap();
    assert!(c.interfaces.is_empty() && c.routes.is_empty() && c.bgp.is_empty());
    assert_eq!(c.router.asn, None);
    assert_eq!(c.router.router_id, None);
    assert_eq!(c.source, None);

    let c =
        parse("[router]\naddresses = [\"fd00::1/128\", \"172.20.0.9/27\", \"172.20.0.1/32\"]\n")
            .unwrap();
    assert_eq!(c.router.router_id, Some(Ipv4Addr::new(172, 20, 0, 9)));
    assert_eq!(c.router_addresses()[1], IpAddr::from([172, 20, 0, 9]));

    // Only IPv6 addresses: no router ID (and none needed without BGP).
    let c = parse("interface = []\n[router]\naddresses = [\"fd00::1/128\"]\n").unwrap();
    assert_eq!(c.router.router_id, None);

    // A bare address is a host prefix.
    let c = parse("[router]\naddresses = [\"172.20.0.1\", \"fd00::1\"]\n").unwrap();
    assert_eq!(c.router.addresses[0], "172.20.0.1/32".parse().unwrap());
    assert_eq!(c.router.addresses[1], "fd00::1/128".parse().unwrap());
}

#[test]
fn router_missing() {
    let (line, key, message) = single("");
    assert_eq!((line, key.as_str()), (None, "router"));
    assert!(message.contains("missing [router]"), "{message}");
    let errs = errors(&format!(
        "[[interface]]\nname = \"a\"\nprivate_key = \"{PRIV_I}\"\npeer_public_key = \"{PUB_R}\"\n"
    ));
    assert_eq!(errs.errors.len(), 1);
    assert_eq!(errs.errors[0].key, "router");
}

#[test]
fn unknown_keys_are_reported_with_line() {
    let (line, key, message) = single(&with_iface("listen-port = 51820\n"));
    assert_eq!(line, Some(8));
    assert_eq!(key, "interface \"peer-a\".listen-port");
    assert!(message.contains("unknown key `listen-port`"), "{message}");
    assert!(message.contains("did you mean `listen_port`?"), "{message}");

    let (line, key, message) = single("[router]\nasn = 1\nrouter-id = \"1.2.3.4\"\n");
    assert_eq!((line, key.as_str()), (Some(3), "router.router-id"));
    assert!(message.contains("router_id"));

    let (line, key, message) = single("[router]\n[bgpp]\nx = 1\n");
    assert_eq!((line, key.as_str()), (Some(2), "bgpp"));
    assert!(message.contains("did you mean `bgp`?"), "{message}");

    let (line, _, message) = single("[router]\n[[interfaces]]\nname = \"a\"\n");
    assert_eq!(line, Some(2));
    assert!(message.contains("did you mean `interface`?"), "{message}");

    // A totally unknown key lists what is allowed.
    let (_, _, message) = single("[router]\nfrobnicate = 1\n");
    assert!(
        message.contains("`asn`") && message.contains("`control_socket`"),
        "{message}"
    );
}

#[test]
fn syntax_errors_give_the_line() {
    let (line, key, message) = single("[router]\nasn = 1\naddresses = [\"a\"\n\n[[interface]]\n");
    assert!(line.is_some());
    assert_eq!(key, "");
    assert!(message.contains("TOML syntax error"), "{message}");

    let (line, _, _) = single("[router]\nasn = 1\nasn = 2\n");
    assert_eq!(line, Some(3));

    let (line, _, _) = single("[router]\n\nasn = \"unterminated\n");
    assert_eq!(line, Some(3));

    let (line, _, _) = single("[router]\nasn = = 4\n");
    assert_eq!(line, Some(2));
}

#[test]
fn wrong_types_give_the_line() {
    let (line, key, message) = single("[router]\n\nasn = \"4242420001\"\n");
    assert_eq!((line, key.as_str()), (Some(3), "router.asn"));
    assert_eq!(message, "expected an integer, found a string");

    let (line, key, message) = single(&with_iface("mtu = 1420.5\n"));
    assert_eq!((line, key.as_str()), (Some(8), "interface \"peer-a\".mtu"));
    assert!(message.contains("found a float (1420.5)"), "{message}");

    let (line, key, _) = single(&with_iface("addresses = \"fe80::1/64\"\n"));
    assert_eq!(
        (line, key.as_str()),
        (Some(8), "interface \"peer-a\".addresses")
    );

    let (line, _, message) = single("[router]\naddresses = [\"172.20.0.1/32\",\n  42]\n");
    assert_eq!(line, Some(3));
    assert!(message.contains("found an integer"), "{message}");

    let (line, key, message) = single("router = 5\n");
    assert_eq!((line, key.as_str()), (Some(1), "router"));
    assert!(message.contains("expected a table"), "{message}");

    let (line, key, message) = single("[router]\n[interface]\nname = \"a\"\n");
    assert_eq!((line, key.as_str()), (Some(2), "interface"));
    assert!(message.contains("[[interface]]"), "{message}");

    let (line, _, message) = single("[router]\ncontrol_socket = 1979-05-27\n");
    assert_eq!(line, Some(2));
    assert!(message.contains("date-time"), "{message}");

    let (line, _, _) = single("[router]\nasn = 99999999999\n");
    assert_eq!(line, Some(2));
}

#[test]
fn bad_keys_are_named_never_printed() {
    let bad_values = [
        "not base64 at all!",
        "AAAA",                                             // 3 bytes
        "YDCttCs9e1J52/g9vEnwJJa+2x6RqaayAYMpSVQfGEZ=AAAA", // garbage after
        "YDCttCs9e1J52/g9vEnwJJa+2x6RqaayAYMpSVQfGEYAAA=",  // 35 bytes
    ];
    for bad in bad_values {
        for (field, extra) in [
            ("private_key", ""),
            ("peer_public_key", ""),
            ("preshared_key", "preshared_key = \"@BAD@\"\n"),
        ] {
            let mut text = with_iface(extra).replace("@BAD@", bad);
            if field != "preshared_key" {
                let good = if field == "private_key" {
                    PRIV_I
                } else {
                    PUB_R
                };
                text = text.replace(good, bad);
            }
            let errs = errors(&text);
            assert_eq!(errs.errors.len(), 1, "{errs}");
            let e = &errs.errors[0];
            assert_eq!(e.key, format!("interface \"peer-a\".{field}"));
            assert!(
                e.message.contains("not a valid WireGuard key"),
                "{}",
                e.message
            );
            assert!(!errs.to_string().contains(bad), "{errs}");
        }
    }
}

#[test]
fn private_key_exactly_one_source() {
    let dir = temp_dir();
    std::fs::write(dir.join("k"), PRIV_I).unwrap();
    let text = with_iface("private_key_file = \"k\"\n");
    let errs = Config::parse(&text, "t.toml", &dir).unwrap_err();
    assert_eq!(errs.errors.len(), 1, "{errs}");
    assert_eq!(errs.errors[0].line, Some(8));
    assert!(errs.errors[0].message.contains("not both"));

    let text = with_iface("").replace(&format!("private_key = \"{PRIV_I}\"\n"), "");
    let (line, key, message) = single(&text);
    assert_eq!(
        (line, key.as_str()),
        (Some(4), "interface \"peer-a\".private_key")
    );
    assert!(message.contains("private_key_file"), "{message}");

    let text = with_iface(&format!(
        "preshared_key = \"{PSK}\"\npreshared_key_file = \"x\"\n"
    ));
    let (line, _, message) = single(&text);
    assert_eq!(line, Some(9));
    assert!(message.contains("not both"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn key_files() {
    let dir = temp_dir();
    // Trimmed, as `wg genkey > file` writes a trailing newline.
    std::fs::write(dir.join("priv"), format!("{PRIV_R}\n")).unwrap();
    std::fs::write(dir.join("bad"), "hello\n").unwrap();
    let text = with_iface("")
        .replace(
            &format!("private_key = \"{PRIV_I}\""),
            "private_key_file = \"priv\"",
        )
        .replace(PUB_R, PUB_I);
    let c = Config::parse(&text, "t.toml", &dir).unwrap();
    assert_eq!(c.interfaces[0].private_key.to_base64(), PRIV_R);

    // Absolute paths are taken as they are.
    let abs = dir.join("priv");
    let text2 = text.replace("\"priv\"", &format!("{:?}", abs.display().to_string()));
    let c = Config::parse(&text2, "t.toml", Path::new("/")).unwrap();
    assert_eq!(c.interfaces[0].private_key.to_base64(), PRIV_R);

    // Unreadable: the error has the path.
    let errs =
        Config::parse(&text.replace("\"priv\"", "\"missing.key\""), "t.toml", &dir).unwrap_err();
    assert_eq!(errs.errors.len(), 1);
    let e = &errs.errors[0];
    assert_eq!(e.key, "interface \"peer-a\".private_key_file");
    assert_eq!(e.line, Some(6));
    let missing = dir.join("missing.key").display().to_string();
    assert!(e.message.contains(&missing), "{}", e.message);

    // Readable but not a key: the path, not the content.
    let errs = Config::parse(&text.replace("\"priv\"", "\"bad\""), "t.toml", &dir).unwrap_err();
    assert!(errs.errors[0].message.contains("does not hold a valid key"));
    assert!(!errs.to_string().contains("hello"));

    // Preshared key file, relative.
    std::fs::write(dir.join("psk"), format!("{PSK}\n")).unwrap();
    let c = Config::parse(
        &with_iface("preshared_key_file = \"psk\"\n"),
        "t.toml",
        &dir,
    )
    .unwrap();
    assert_eq!(c.interfaces[0].preshared_key.unwrap().to_base64(), PSK);
    std::fs::remove_dir_all(dir).unwrap();
}

fn two_ifaces(a_extra: &str, b_name: &str, b_extra: &str) -> String {
    format!(
        "{}[[interface]]\nname = \"peer-a\"\nprivate_key = \"{PRIV_I}\"\npeer_public_key = \"{PUB_R}\"\n{a_extra}\
         [[interface]]\nname = \"{b_name}\"\nprivate_key = \"{PRIV_I}\"\npeer_public_key = \"{PUB_R}\"\n{b_extra}",
        router()
    )
}

#[test]
fn duplicate_names_and_ports() {
    let text = two_ifaces("", "peer-a", "");
    let (line, key, message) = single(&text);
    assert_eq!(line, Some(9));
    assert_eq!(key, "interface[1].name");
    assert!(
        message.contains("duplicate interface name \"peer-a\""),
        "{message}"
    );
    assert!(message.contains("line 5"), "{message}");

    let text = two_ifaces("listen_port = 51820\n", "peer-b", "listen_port = 51820\n");
    let (line, key, message) = single(&text);
    assert_eq!(line, Some(13));
    assert_eq!(key, "interface \"peer-b\".listen_port");
    assert!(message.contains("duplicate port 51820"), "{message}");
    assert!(message.contains("interface \"peer-a\""), "{message}");

    // Port 0 (any) twice is fine; different ports are fine.
    parse(&two_ifaces(
        "listen_port = 0\n",
        "peer-b",
        "listen_port = 0\n",
    ))
    .unwrap();
    parse(&two_ifaces(
        "listen_port = 1\n",
        "peer-b",
        "listen_port = 2\n",
    ))
    .unwrap();

    let (line, _, message) = single(&with_iface("listen_port = 70000\n"));
    assert_eq!(line, Some(8));
    assert!(message.contains("out of range"), "{message}");
}

#[test]
fn peer_key_must_not_be_our_own() {
    let text = with_iface("").replace(PUB_R, PUB_I);
    let (line, key, message) = single(&text);
    assert_eq!(line, Some(7));
    assert_eq!(key, "interface \"peer-a\".peer_public_key");
    assert!(message.contains("own public key"), "{message}");
}

#[test]
fn mtu_range() {
    let c = parse(&with_iface("")).unwrap();
    assert_eq!(c.interfaces[0].mtu, 1420);
    for ok in [1280, 1420, 9000, 65535] {
        let c = parse(&with_iface(&format!("mtu = {ok}\n"))).unwrap();
        assert_eq!(c.interfaces[0].mtu, ok);
    }
    for bad in [0, 576, 1279, 65536, -1] {
        let (line, key, message) = single(&with_iface(&format!("mtu = {bad}\n")));
        assert_eq!((line, key.as_str()), (Some(8), "interface \"peer-a\".mtu"));
        assert!(message.contains("1280..=65535"), "{message}");
    }
}

#[test]
fn endpoints() {
    let ep = |s: &str| parse(&with_iface(&format!("endpoint = \"{s}\"\n")));
    let c = ep("192.0.2.1:51820").unwrap();
    assert_eq!(
        c.interfaces[0].endpoint,
        Some("192.0.2.1:51820".parse().unwrap())
    );
    let c = ep("[2001:db8::1]:51820").unwrap();
    assert_eq!(
        c.interfaces[0].endpoint,
        Some("[2001:db8::1]:51820".parse().unwrap())
    );
    let c = ep("localhost:1").unwrap();
    let addr: SocketAddr = c.interfaces[0].endpoint.unwrap();
    assert!(addr.ip().is_loopback() && addr.port() == 1, "{addr}");
    assert_eq!(
        c.interfaces[0].endpoint_text.as_deref(),
        Some("localhost:1")
    );

    for bad in [
        "192.0.2.1",           // no port
        "2001:db8::1:51820",   // IPv6 without brackets
        "192.0.2.1:99999",     // port out of range
        "192.0.2.1:0",         // port 0
        "no such host!:51820", // does not resolve
        "",
    ] {
        let errs = ep(bad).unwrap_err();
        assert_eq!(errs.errors.len(), 1, "{bad}: {errs}");
        let e = &errs.errors[0];
        assert_eq!(e.line, Some(8), "{bad}");
        assert_eq!(e.key, "interface \"peer-a\".endpoint");
    }
}

#[test]
fn routes() {
    let route = |extra: &str| parse(&with_iface(&format!("[[route]]\n{extra}")));
    let c = route("prefix = \"172.20.1.0/24\"\ninterface = \"peer-a\"\n").unwrap();
    assert_eq!(c.routes[0].interface, "peer-a");

    let errs = route("prefix = \"172.20.1.5/24\"\ninterface = \"peer-a\"\n").unwrap_err();
    assert_eq!(errs.errors.len(), 1);
    assert_eq!(errs.errors[0].line, Some(9));
    assert_eq!(errs.errors[0].key, "route[0].prefix");
    assert_eq!(
        errs.errors[0].message,
        "172.20.1.5/24 has host bits set; did you mean 172.20.1.0/24?"
    );

    let errs = route("prefix = \"fd00:2::1/48\"\ninterface = \"peer-a\"\n").unwrap_err();
    assert!(errs.errors[0].message.contains("did you mean fd00:2::/48?"));

    let errs = route("prefix = \"172.20.1.0/24\"\ninterface = \"peer-b\"\n").unwrap_err();
    assert_eq!(errs.errors.len(), 1);
    assert_eq!(errs.errors[0].line, Some(10));
    assert_eq!(errs.errors[0].key, "route[0].interface");
    assert!(errs.errors[0]
        .message
        .contains("no [[interface]] is named \"peer-b\""));
    assert!(errs.errors[0].message.contains("did you mean \"peer-a\"?"));

    let errs = route("prefix = \"172.20.1.1\"\ninterface = \"peer-a\"\n").unwrap_err();
    assert!(errs.errors[0].message.contains("prefix length is missing"));

    let errs = route("prefix = \"nonsense\"\n").unwrap_err();
    assert_eq!(errs.errors.len(), 2, "{errs}"); // bad prefix + missing interface
    assert_eq!(errs.errors[0].line, Some(8)); // missing: the [[route]] line
    assert_eq!(errs.errors[1].line, Some(9));

    let errs =
        route("prefix = \"172.20.1.0/24\"\ninterface = \"peer-a\"\ngateway = \"x\"\n").unwrap_err();
    assert_eq!(errs.errors[0].key, "route[0].gateway");

    // announce checks host bits too.
    let (line, key, message) = single("[router]\nannounce = [\"172.20.0.1/27\"]\n");
    assert_eq!((line, key.as_str()), (Some(2), "router.announce"));
    assert!(message.contains("did you mean 172.20.0.0/27?"));
}

#[test]
fn addresses_must_parse() {
    let (line, key, message) = single(&with_iface(
        "addresses = [\"fe80::1/64\", \"fe80::zz/64\"]\n",
    ));
    assert_eq!(
        (line, key.as_str()),
        (Some(8), "interface \"peer-a\".addresses")
    );
    assert!(
        message.contains("\"fe80::zz/64\" is not an address"),
        "{message}"
    );

    let (line, key, _) = single("[router]\naddresses = [\"172.20.0.1/33\"]\n");
    assert_eq!((line, key.as_str()), (Some(2), "router.addresses"));
    let (line, key, _) = single("[router]\nrouter_id = \"fd00::1\"\n");
    assert_eq!((line, key.as_str()), (Some(2), "router.router_id"));
}

fn bgp(extra: &str) -> Result<Config, ConfigErrors> {
    // [[bgp]] is on line 8, the first extra line is 10.
    parse(&with_iface(&format!("[[bgp]]\nname = \"s\"\n{extra}")))
}

#[test]
fn bgp_sessions() {
    let c =
        bgp("neighbor = \"fe80::a\"\ninterface = \"peer-a\"\nremote_asn = 4242420010\n").unwrap();
    assert_eq!(c.bgp[0].interface.as_deref(), Some("peer-a"));

    // Link-local without interface.
    let errs = bgp("neighbor = \"fe80::a\"\nremote_asn = 4242420010\n").unwrap_err();
    assert_eq!(errs.errors.len(), 1, "{errs}");
    assert_eq!(errs.errors[0].line, Some(10));
    assert_eq!(errs.errors[0].key, "bgp \"s\".neighbor");
    assert!(errs.errors[0].message.contains("link-local"));
    // IPv4 link-local too.
    assert!(bgp("neighbor = \"169.254.0.1\"\nremote_asn = 1\n").is_err());
    // A global neighbor needs no interface.
    bgp("neighbor = \"172.20.0.66\"\nremote_asn = 1\n").unwrap();

    // Unknown interface.
    let errs = bgp("neighbor = \"fe80::a\"\ninterface = \"peer-x\"\nremote_asn = 1\n").unwrap_err();
    assert_eq!(errs.errors.len(), 1, "{errs}");
    assert_eq!(errs.errors[0].line, Some(11));
    assert_eq!(errs.errors[0].key, "bgp \"s\".interface");

    // remote_asn 0, and missing.
    let errs = bgp("neighbor = \"172.20.0.66\"\nremote_asn = 0\n").unwrap_err();
    assert_eq!(errs.errors.len(), 1, "{errs}");
    assert_eq!(errs.errors[0].line, Some(11));
    assert_eq!(errs.errors[0].key, "bgp \"s\".remote_asn");
    let errs = bgp("neighbor = \"172.20.0.66\"\n").unwrap_err();
    assert_eq!(errs.errors[0].line, Some(8));
    assert!(errs.errors[0].message.contains("remote_asn"));

    // Families.
    let c = bgp("neighbor = \"172.20.0.66\"\nremote_asn = 1\nfamilies = [\"ipv6\", \"ipv4\"]\n")
        .unwrap();
    assert_eq!(c.bgp[0].families, vec![Family::Ipv6, Family::Ipv4]);
    for bad in ["[]", "[\"ipv4\", \"ipv4\"]", "[\"ip4\"]", "\"ipv4\""] {
        let errs = bgp(&format!(
            "neighbor = \"172.20.0.66\"\nremote_asn = 1\nfamilies = {bad}\n"
        ))
        .unwrap_err();
        assert_eq!(errs.errors.len(), 1, "{bad}: {errs}");
        assert_eq!(errs.errors[0].line, Some(12), "{bad}");
    }

    // Timers.
    for (bad, line) in [
        ("hold_time = 2\n", 12),
        ("hold_time = 9\nkeepalive = 9\n", 13),
        ("connect_retry = 0\n", 12),
    ] {
        let errs = bgp(&format!(
            "neighbor = \"172.20.0.66\"\nremote_asn = 1\n{bad}"
        ))
        .unwrap_err();
        assert_eq!(errs.errors.len(), 1, "{bad}: {errs}");
        assert_eq!(errs.errors[0].line, Some(line), "{bad}");
    }
    bgp("neighbor = \"172.20.0.66\"\nremote_asn = 1\nhold_time = 0\nkeepalive = 0\n").unwrap();
    // Every bad setting of one session is reported.
    let errs = bgp(
        "neighbor = \"172.20.0.66\"\nremote_asn = 1\nhold_time = 1\npassive = 1\n\
                    connect_retry = 0\nextended_next_hop = \"yes\"\n",
    )
    .unwrap_err();
    let lines: Vec<_> = errs.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [Some(12), Some(13), Some(14), Some(15)], "{errs}");

    // BGP needs the router's ASN and a router ID.
    let text = "[router]\naddresses = [\"fd00::1/128\"]\n[[bgp]]\nname = \"s\"\nneighbor = \"fd00::2\"\nremote_asn = 1\n";
    let errs = errors(text);
    let keys: Vec<&str> = errs.errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["router.asn", "router.router_id"], "{errs}");
    assert!(errs.errors.iter().all(|e| e.line == Some(1)));

    // Duplicate session names and neighbors.
    let text = with_iface(
        "[[bgp]]\nname = \"s\"\nneighbor = \"172.20.0.66\"\nremote_asn = 1\n\
         [[bgp]]\nname = \"s\"\nneighbor = \"172.20.0.66\"\nremote_asn = 1\n",
    );
    let errs = errors(&text);
    assert_eq!(errs.errors.len(), 2, "{errs}");
    assert_eq!(errs.errors[0].line, Some(13));
    assert!(errs.errors[0].message.contains("duplicate session name"));
    assert_eq!(errs.errors[1].line, Some(14));
    // The same link-local neighbor on two tunnels is fine.
    let text = two_ifaces(
        "listen_port = 1\n",
        "peer-b",
        "[[bgp]]\nname = \"a\"\nneighbor = \"fe80::a\"\ninterface = \"peer-a\"\nremote_asn = 1\n\
         [[bgp]]\nname = \"b\"\nneighbor = \"fe80::a\"\ninterface = \"peer-b\"\nremote_asn = 1\n",
    );
    parse(&text).unwrap();
}

#[test]
fn many_problems_reported_together_sorted_by_line() {
    let text = format!(
        r#"[router]
asn = 0
addresses = ["172.20.0.1/32"]

[[interface]]
name = "peer-a"
private_key = "{PRIV_I}"
peer_public_key = "c2VjcmV0"
listen-port = 51820
mtu = 100

[[interface]]
name = "peer-b"
private_key = "{PRIV_I}"
private_key_file = "/etc/key"
peer_public_key = "{PUB_R}"
endpoint = "nowhere"

[[route]]
prefix = "172.20.1.5/24"
interface = "peer-c"

[[bgp]]
name = "b"
neighbor = "fe80::b"
remote_asn = 0
"#
    );
    let errs = errors(&text);
    let got: Vec<(Option<usize>, &str)> = errs
        .errors
        .iter()
        .map(|e| (e.line, e.key.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(2), "router.asn"),
            (Some(8), "interface \"peer-a\".peer_public_key"),
            (Some(9), "interface \"peer-a\".listen-port"),
            (Some(10), "interface \"peer-a\".mtu"),
            (Some(15), "interface \"peer-b\".private_key_file"),
            (Some(17), "interface \"peer-b\".endpoint"),
            (Some(20), "route[0].prefix"),
            (Some(21), "route[0].interface"),
            (Some(25), "bgp \"b\".neighbor"),
            (Some(26), "bgp \"b\".remote_asn"),
        ],
        "{errs}"
    );
    let shown = errs.to_string();
    println!("{shown}");
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 10);
    assert!(lines[0].starts_with("test.toml:2: router.asn: "), "{shown}");
    assert_eq!(
        lines[6],
        "test.toml:20: route[0].prefix: 172.20.1.5/24 has host bits set; did you mean 172.20.1.0/24?"
    );
    assert!(!shown.contains("c2VjcmV0"), "{shown}");
    // It is a std error.
    let boxed: Box<dyn std::error::Error> = Box::new(errs.clone());
    assert_eq!(boxed.to_string(), shown);
}

#[test]
fn load_errors() {
    let dir = temp_dir();
    let errs = Config::load(&dir.join("absent.toml")).unwrap_err();
    assert_eq!(errs.errors.len(), 1);
    assert!(errs.file.ends_with("absent.toml"));
    assert!(
        errs.to_string().contains("cannot read config file"),
        "{errs}"
    );

    // Relative control socket: relative to the config's directory.
    let path = dir.join("r.toml");
    std::fs::write(&path, "[router]\ncontrol_socket = \"ctl.sock\"\n").unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.router.control_socket, Some(dir.join("ctl.sock")));

    std::fs::write(
        &path,
        format!("[router]\ncontrol_socket = \"/{}\"\n", "x".repeat(120)),
    )
    .unwrap();
    let errs = Config::load(&path).unwrap_err();
    assert!(
        errs.to_string().contains("too long for a unix socket"),
        "{errs}"
    );
    assert!(errs
        .to_string()
        .starts_with(&format!("{}:2: router.control_socket: ", path.display())));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn genkey_pubkey_round_trip() {
    let private = keys::generate();
    let text = private.to_base64();
    let public = keys::public(&Key::from_base64(&text).unwrap());
    // A config using a generated pair for both ends parses.
    let peer = keys::public(&keys::generate());
    let cfg = with_iface("")
        .replace(PRIV_I, &text)
        .replace(PUB_R, &peer.to_base64());
    let c = parse(&cfg).unwrap();
    assert_eq!(c.interfaces[0].public_key(), public);
}

#[test]
fn control_socket_is_found_even_in_a_config_with_other_problems() {
    let dir = std::env::temp_dir().join(format!("rr-config-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("node.toml");
    std::fs::write(
        &path,
        "[router]\ncontrol_socket = \"ctl.sock\"\n[[interface]]\nname = \"a\"\nprivate_key = \"bad\"\n",
    )
    .unwrap();
    assert!(Config::load(&path).is_err());
    assert_eq!(
        Config::control_socket_of(&path).unwrap(),
        Some(dir.join("ctl.sock"))
    );
    std::fs::write(&path, "[router]\nasn = 1\n").unwrap();
    assert_eq!(Config::control_socket_of(&path).unwrap(), None);
    std::fs::write(&path, "[router\n").unwrap();
    assert!(Config::control_socket_of(&path).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bgp_transport_policy_and_limits() {
    use rr_config::{LimitAction, Policy, Transport, DEFAULT_IMPORT_LIMIT};
    // Defaults: our own stack, port 179, the DN42 policy both ways, the wiki's limit.
    let c = bgp("neighbor = \"fe80::a\"\ninterface = \"peer-a\"\nremote_asn = 1\n").unwrap();
    let s = &c.bgp[0];
    assert_eq!(s.transport, Transport::Tunnel);
    assert_eq!((s.port, s.local_port), (179, None));
    assert_eq!((s.import, s.export), (Policy::Dn42, Policy::Dn42));
    assert_eq!(s.import_limit, Some(DEFAULT_IMPORT_LIMIT));
    assert_eq!(s.import_limit_action, LimitAction::Block);

    // A daemon on the host's loopback, over the host's TCP.
    let c = bgp(
        "neighbor = \"127.0.0.1\"\nremote_asn = 1\ntransport = \"host\"\nport = 1790\n\
         import = \"all\"\nexport = \"none\"\nimport_limit = 0\nimport_limit_action = \"disable\"\n",
    )
    .unwrap();
    let s = &c.bgp[0];
    assert_eq!((s.transport, s.port), (Transport::Host, 1790));
    assert_eq!((s.import, s.export), (Policy::All, Policy::None));
    assert_eq!(s.import_limit, None);
    assert_eq!(s.import_limit_action, LimitAction::Disable);
    let c = bgp(
        "neighbor = \"127.0.0.1\"\nremote_asn = 1\ntransport = \"host\"\npassive = true\nlocal_port = 1791\n",
    )
    .unwrap();
    assert_eq!(c.bgp[0].local_port, Some(1791));

    // Loopback over a tunnel, link-local over the host, unknown words, a passive host
    // session with nowhere to listen, local_port where it means nothing: one error each.
    for (bad, line, needle) in [
        ("neighbor = \"127.0.0.1\"\nremote_asn = 1\n", 10, "transport = \"host\""),
        (
            "neighbor = \"fe80::a\"\ninterface = \"peer-a\"\nremote_asn = 1\ntransport = \"host\"\n",
            10,
            "link-local",
        ),
        ("neighbor = \"172.20.0.66\"\nremote_asn = 1\ntransport = \"kernel\"\n", 12, "\"host\""),
        ("neighbor = \"172.20.0.66\"\nremote_asn = 1\nimport = \"any\"\n", 12, "\"dn42\""),
        ("neighbor = \"172.20.0.66\"\nremote_asn = 1\nimport_limit_action = \"stop\"\n", 12, "\"restart\""),
        ("neighbor = \"172.20.0.66\"\nremote_asn = 1\nimport_limit = -1\n", 12, ""),
        ("neighbor = \"172.20.0.66\"\nremote_asn = 1\nport = 0\n", 12, ""),
        ("neighbor = \"127.0.0.1\"\nremote_asn = 1\ntransport = \"host\"\npassive = true\n", 8, "local_port"),
        ("neighbor = \"172.20.0.66\"\nremote_asn = 1\nlocal_port = 1790\n", 12, "passive"),
    ] {
        let errs = bgp(bad).unwrap_err();
        assert_eq!(errs.errors.len(), 1, "{bad}: {errs}");
        assert_eq!(errs.errors[0].line, Some(line), "{bad}: {errs}");
        assert!(errs.errors[0].message.contains(needle), "{bad}: {errs}");
    }
}
