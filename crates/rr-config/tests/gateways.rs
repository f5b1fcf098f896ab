//! `[dns]`, `[[forward]]` and `[[expose]]`: a full valid example, the defaults, and
//! every validation rule with its line and key.

use rr_config::{Config, ConfigErrors, DnsConfig, GatewayProtocol, DEFAULT_DNS_DOMAINS};
use std::net::SocketAddr;
use std::path::Path;

const PRIV_I: &str = "AKeZaHwBxjiKLFnkY2unvEdOTtg4AL+M9dQXfopFVFk=";
const PUB_R: &str = "YDCttCs9e1J52/g9vEnwJJa+2x6RqaayAYMpSVQfGEY=";

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, "test.toml", Path::new("/nonexistent-dir"))
}

/// `[router]` with two addresses: 2 lines.
const ROUTER: &str = "[router]\naddresses = [\"172.20.0.1/32\", \"fd00:1::1/128\"]\n";

/// The single error of `ROUTER` + `rest`: (line, key, message).
fn single(rest: &str) -> (Option<usize>, String, String) {
    let errs = match parse(&format!("{ROUTER}{rest}")) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e,
    };
    assert_eq!(errs.errors.len(), 1, "expected one error, got:\n{errs}");
    let e = &errs.errors[0];
    (e.line, e.key.clone(), e.message.clone())
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn full_example() {
    let text = format!(
        r#"{ROUTER}
[[interface]]
name = "peer-a"
private_key = "{PRIV_I}"
peer_public_key = "{PUB_R}"
addresses = ["fe80::1/64", "172.20.0.33/32"]

[dns]
servers = ["172.20.0.53", "fd42:d42:d42:54::1", "10.0.0.53:5353", "[fd42::53]:5300"]
domains = ["DN42.", "20.172.in-addr.arpa"]

[[forward]]
name = "web"
protocol = "tcp"
listen = "127.0.0.1:8080"
connect = "172.20.1.1:80"

[[forward]]
protocol = "udp"
listen = "127.0.0.1:5353"
connect = "[fd42:d42:d42:54::1]:53"

[[forward]]
listen = "127.0.0.1:8080"
protocol = "udp"
connect = "172.20.1.1:80"

[[expose]]
listen = "172.20.0.1:80"
connect = "127.0.0.1:8080"

[[expose]]
name = "ssh"
listen = "[::]:22"
connect = "[::1]:22"

[[expose]]
listen = "172.20.0.33:53"
protocol = "udp"
connect = "127.0.0.1:5353"
"#
    );
    let c = parse(&text).unwrap();
    assert_eq!(
        c.dns,
        DnsConfig {
            servers: vec![
                sa("172.20.0.53:53"),
                sa("[fd42:d42:d42:54::1]:53"),
                sa("10.0.0.53:5353"),
                sa("[fd42::53]:5300"),
            ],
            domains: vec!["dn42".into(), "20.172.in-addr.arpa".into()],
        }
    );
    let f: Vec<(&str, GatewayProtocol, SocketAddr, SocketAddr)> = c
        .forwards
        .iter()
        .map(|g| (g.name.as_str(), g.protocol, g.listen, g.connect))
        .collect();
    assert_eq!(
        f,
        vec![
            (
                "web",
                GatewayProtocol::Tcp,
                sa("127.0.0.1:8080"),
                sa("172.20.1.1:80")
            ),
            (
                "forward-2",
                GatewayProtocol::Udp,
                sa("127.0.0.1:5353"),
                sa("[fd42:d42:d42:54::1]:53")
            ),
            // Same address as "web", other protocol: fine.
            (
                "forward-3",
                GatewayProtocol::Udp,
                sa("127.0.0.1:8080"),
                sa("172.20.1.1:80")
            ),
        ]
    );
    let e: Vec<(&str, GatewayProtocol, SocketAddr)> = c
        .exposes
        .iter()
        .map(|g| (g.name.as_str(), g.protocol, g.listen))
        .collect();
    assert_eq!(
        e,
        vec![
            ("expose-1", GatewayProtocol::Tcp, sa("172.20.0.1:80")),
            ("ssh", GatewayProtocol::Tcp, sa("[::]:22")),
            // An interface address is one of the router's.
            ("expose-3", GatewayProtocol::Udp, sa("172.20.0.33:53")),
        ]
    );
    assert_eq!(c.exposes[1].connect, sa("[::1]:22"));
}

#[test]
fn defaults_without_the_sections() {
    let c = parse(ROUTER).unwrap();
    assert_eq!(c.dns, DnsConfig::default());
    assert_eq!(c.dns.domains.len(), DEFAULT_DNS_DOMAINS.len());
    assert!(c.forwards.is_empty() && c.exposes.is_empty());
    // An empty [dns] keeps both defaults; one key replaces only its own list.
    assert_eq!(
        parse(&format!("{ROUTER}[dns]\n")).unwrap().dns,
        DnsConfig::default()
    );
    let c = parse(&format!("{ROUTER}[dns]\nservers = [\"172.23.0.53\"]\n")).unwrap();
    assert_eq!(c.dns.servers, vec![sa("172.23.0.53:53")]);
    assert_eq!(c.dns.domains, DnsConfig::default().domains);
    let c = parse(&format!("{ROUTER}[dns]\ndomains = [\"neonetwork\"]\n")).unwrap();
    assert_eq!(c.dns.servers, DnsConfig::default().servers);
    assert_eq!(c.dns.domains, vec!["neonetwork".to_string()]);
    // Both empty: every name goes to the host's resolver.
    let c = parse(&format!("{ROUTER}[dns]\nservers = []\ndomains = []\n")).unwrap();
    assert!(c.dns.servers.is_empty() && c.dns.domains.is_empty());
}

#[test]
fn dns_errors() {
    let (line, key, m) = single("[dns]\nserver = [\"172.20.0.53\"]\n");
    assert_eq!((line, key.as_str()), (Some(4), "dns.server"));
    assert!(m.contains("did you mean `servers`?"), "{m}");

    let (line, key, m) = single("[dns]\nservers = [\"ns1.dn42\"]\n");
    assert_eq!((line, key.as_str()), (Some(4), "dns.servers"));
    assert!(m.contains("\"ns1.dn42\" is not an address"), "{m}");
    assert!(m.contains("no host names"), "{m}");

    let (line, _, m) = single("[dns]\nservers = [\n  \"172.20.0.53\",\n  \"172.20.0.54:0\",\n]\n");
    assert_eq!(line, Some(6));
    assert!(m.contains("port 0"), "{m}");

    let (_, _, m) = single("[dns]\nservers = [\"127.0.0.53\"]\n");
    assert!(m.contains("loopback"), "{m}");
    let (_, _, m) = single("[dns]\nservers = [\"0.0.0.0\"]\n");
    assert!(m.contains("cannot be a DNS server"), "{m}");
    let (_, _, m) = single("[dns]\nservers = [\"172.20.0.53\", \"172.20.0.53:53\"]\n");
    assert!(m.contains("172.20.0.53:53 is listed twice"), "{m}");
    let (_, key, m) = single("[dns]\nservers = \"172.20.0.53\"\n");
    assert_eq!(key, "dns.servers");
    assert!(m.contains("an array of strings"), "{m}");

    let (line, key, m) = single("[dns]\ndomains = [\"dn42\", \"a..b\"]\n");
    assert_eq!((line, key.as_str()), (Some(4), "dns.domains"));
    assert!(m.contains("\"a..b\" is not a domain name"), "{m}");
    let (_, _, m) = single(&format!("[dns]\ndomains = [\"{}.dn42\"]\n", "x".repeat(64)));
    assert!(m.contains("is not a domain name"), "{m}");
    let (_, _, m) = single("[dns]\ndomains = [\"dn42\", \"DN42.\"]\n");
    assert!(m.contains("\"DN42.\" is listed twice"), "{m}");

    // Domains (the default list) but no server to ask.
    let (line, key, m) = single("[dns]\nservers = []\n");
    assert_eq!((line, key.as_str()), (Some(4), "dns.servers"));
    assert!(m.contains("`domains` lists 9 domain(s)"), "{m}");
    assert!(m.contains("domains = []"), "{m}");

    let (line, key, m) = single("[[dns]]\nservers = []\n");
    assert_eq!((line, key.as_str()), (Some(3), "dns"));
    assert!(m.contains("expected a table"), "{m}");
}

#[test]
fn gateway_fields() {
    let errs = parse(&format!(
        "{ROUTER}[[forward]]\nlisten = \"127.0.0.1:80\"\nconect = \"172.20.1.1:80\"\n"
    ))
    .unwrap_err();
    let keys: Vec<&str> = errs.errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["forward[0].connect", "forward[0].conect"], "{errs}");
    assert!(errs.errors[1].message.contains("did you mean `connect`?"));
    assert!(errs.errors[0]
        .message
        .contains("missing required key `connect`"));

    let (line, key, m) = single(
        "[[forward]]\nname = \"web\"\nlisten = \"127.0.0.1\"\nconnect = \"172.20.1.1:80\"\n",
    );
    assert_eq!((line, key.as_str()), (Some(5), "forward \"web\".listen"));
    assert!(m.contains("the port is missing"), "{m}");

    let (_, key, m) =
        single("[[forward]]\nlisten = \"localhost:80\"\nconnect = \"172.20.1.1:80\"\n");
    assert_eq!(key, "forward[0].listen");
    assert!(m.contains("no host names"), "{m}");

    let (_, key, m) =
        single("[[forward]]\nlisten = \"127.0.0.1:0\"\nconnect = \"172.20.1.1:80\"\n");
    assert_eq!(key, "forward[0].listen");
    assert!(m.contains("port 0"), "{m}");
    let (_, key, m) = single("[[expose]]\nlisten = \"172.20.0.1:80\"\nconnect = \"127.0.0.1:0\"\n");
    assert_eq!(key, "expose[0].connect");
    assert!(m.contains("port 0"), "{m}");

    let (line, key, m) = single("[[forward]]\nprotocol = \"sctp\"\nlisten = \"127.0.0.1:80\"\nconnect = \"172.20.1.1:80\"\n");
    assert_eq!((line, key.as_str()), (Some(4), "forward[0].protocol"));
    assert!(m.contains("expected one of \"tcp\", \"udp\""), "{m}");

    let (_, key, m) = single(
        "[[forward]]\nname = \"my web\"\nlisten = \"127.0.0.1:80\"\nconnect = \"172.20.1.1:80\"\n",
    );
    assert_eq!(key, "forward[0].name");
    assert!(m.contains("without spaces"), "{m}");

    let (line, key, m) = single("[forward]\nlisten = \"127.0.0.1:80\"\n");
    assert_eq!((line, key.as_str()), (Some(3), "forward"));
    assert!(m.contains("write [[forward]]"), "{m}");
}

#[test]
fn forward_connect_leads_through_the_router() {
    for bad in ["127.0.0.1:80", "[::1]:80"] {
        let (line, key, m) = single(&format!(
            "[[forward]]\nlisten = \"127.0.0.1:8080\"\nconnect = \"{bad}\"\n"
        ));
        assert_eq!((line, key.as_str()), (Some(5), "forward[0].connect"));
        assert!(m.contains("is loopback"), "{m}");
    }
    for bad in ["0.0.0.0:80", "[::]:80", "224.0.0.1:80"] {
        let (_, _, m) = single(&format!(
            "[[forward]]\nlisten = \"127.0.0.1:8080\"\nconnect = \"{bad}\"\n"
        ));
        assert!(m.contains("cannot be connected to"), "{m}");
    }
    // A forward may listen on the host's wildcard.
    let c = parse(&format!(
        "{ROUTER}[[forward]]\nlisten = \"0.0.0.0:8080\"\nconnect = \"172.20.1.1:80\"\n"
    ))
    .unwrap();
    assert_eq!(c.forwards[0].listen, sa("0.0.0.0:8080"));
}

#[test]
fn expose_listens_on_a_router_address() {
    let (line, key, m) = single(
        "[[expose]]\nname = \"web\"\nlisten = \"172.20.9.9:80\"\nconnect = \"127.0.0.1:8080\"\n",
    );
    assert_eq!((line, key.as_str()), (Some(5), "expose \"web\".listen"));
    assert!(
        m.contains("172.20.9.9 is not one of the router's addresses (172.20.0.1, fd00:1::1)"),
        "{m}"
    );
    let (_, _, m) = single("[[expose]]\nlisten = \"127.0.0.1:80\"\nconnect = \"127.0.0.1:8080\"\n");
    assert!(m.contains("not one of the router's addresses"), "{m}");
    for ok in ["0.0.0.0:80", "[::]:80", "[fd00:1::1]:80"] {
        let c = parse(&format!(
            "{ROUTER}[[expose]]\nlisten = \"{ok}\"\nconnect = \"127.0.0.1:8080\"\n"
        ))
        .unwrap();
        assert_eq!(c.exposes[0].listen, sa(ok));
    }
    let (_, key, m) =
        single("[[expose]]\nlisten = \"172.20.0.1:80\"\nconnect = \"0.0.0.0:8080\"\n");
    assert_eq!(key, "expose[0].connect");
    assert!(m.contains("cannot be connected to"), "{m}");
    // A router without addresses says so.
    let errs =
        parse("[router]\n[[expose]]\nlisten = \"172.20.0.1:80\"\nconnect = \"127.0.0.1:1\"\n")
            .unwrap_err();
    assert!(errs.errors[0].message.contains("(it has none)"), "{errs}");
    // When [router] or an [[interface]] has a problem, its addresses are not certain:
    // only that problem is reported.
    let errs = parse("[router]\nasn = \"x\"\n[[expose]]\nlisten = \"172.20.0.1:80\"\nconnect = \"127.0.0.1:1\"\n")
        .unwrap_err();
    assert_eq!(errs.errors.len(), 1, "{errs}");
    assert_eq!(errs.errors[0].key, "router.asn");
}

#[test]
fn duplicate_listeners_and_names() {
    let fwd = |name: &str, proto: &str, listen: &str| {
        format!(
            "[[forward]]\nname = \"{name}\"\nprotocol = \"{proto}\"\nlisten = \"{listen}\"\nconnect = \"172.20.1.1:80\"\n"
        )
    };
    let (line, key, m) = single(&format!(
        "{}{}",
        fwd("a", "tcp", "127.0.0.1:80"),
        fwd("b", "tcp", "127.0.0.1:80")
    ));
    assert_eq!((line, key.as_str()), (Some(11), "forward \"b\".listen"));
    assert!(
        m.contains("tcp 127.0.0.1:80 is already taken by forward \"a\" (line 6)"),
        "{m}"
    );
    // A wildcard covers the specific address; [::] covers IPv4 too; 0.0.0.0 not IPv6.
    for (x, y) in [
        ("0.0.0.0:80", "127.0.0.1:80"),
        ("127.0.0.1:80", "0.0.0.0:80"),
        ("[::]:80", "127.0.0.1:80"),
        ("[::1]:80", "[::]:80"),
    ] {
        let (_, _, m) = single(&format!("{}{}", fwd("a", "udp", x), fwd("b", "udp", y)));
        assert!(m.contains("is already taken"), "{x} {y}: {m}");
    }
    for (x, y) in [
        ("0.0.0.0:80", "[::1]:80"),
        ("127.0.0.1:80", "127.0.0.1:81"),
        ("127.0.0.1:80", "127.0.0.2:80"),
    ] {
        parse(&format!(
            "{ROUTER}{}{}",
            fwd("a", "udp", x),
            fwd("b", "udp", y)
        ))
        .unwrap();
    }
    // A forward and an expose on the same address: different stacks, no conflict.
    parse(&format!(
        "{ROUTER}{}[[expose]]\nlisten = \"0.0.0.0:80\"\nconnect = \"127.0.0.1:8080\"\n",
        fwd("a", "tcp", "0.0.0.0:80")
    ))
    .unwrap();
    // Two exposes do conflict.
    let (_, key, _) = single(
        "[[expose]]\nlisten = \"0.0.0.0:80\"\nconnect = \"127.0.0.1:1\"\n[[expose]]\nlisten = \"172.20.0.1:80\"\nconnect = \"127.0.0.1:2\"\n",
    );
    assert_eq!(key, "expose \"expose-2\".listen");

    // Names are shared by forwards and exposes, defaults included.
    let (line, key, m) = single(&format!(
        "{}[[expose]]\nname = \"a\"\nlisten = \"172.20.0.1:80\"\nconnect = \"127.0.0.1:1\"\n",
        fwd("a", "tcp", "127.0.0.1:80")
    ));
    assert_eq!((line, key.as_str()), (Some(9), "expose \"a\".name"));
    assert!(
        m.contains("duplicate name \"a\" (first used on line 4)"),
        "{m}"
    );
    let (_, key, _) = single(&format!(
        "[[forward]]\nlisten = \"127.0.0.1:81\"\nconnect = \"172.20.1.1:80\"\n{}",
        fwd("forward-1", "tcp", "127.0.0.1:80")
    ));
    assert_eq!(key, "forward \"forward-1\".name");
}
