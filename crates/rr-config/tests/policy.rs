//! Issue 5's config: `[router] region/country`, `[[interface]] latency/bandwidth/crypto`,
//! `[roa]`, `[[policy]]` with `[[policy.rule]]`, and the sessions' `import_policy` /
//! `export_policy` keys. A full valid example, the defaults, and every validation rule
//! with its line and key.

use rr_config::{Config, ConfigErrors, DEFAULT_ROA_CHECK_INTERVAL};
use rr_policy::{dn42, Action, Family, Match, Range, Rule, Validity, Verdict};
use std::path::Path;

const PRIV_I: &str = "AKeZaHwBxjiKLFnkY2unvEdOTtg4AL+M9dQXfopFVFk=";
const PUB_R: &str = "YDCttCs9e1J52/g9vEnwJJa+2x6RqaayAYMpSVQfGEY=";

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, "test.toml", Path::new("/etc/rr"))
}

/// `[router]`: 3 lines; what follows starts on line 4.
const ROUTER: &str = "[router]\nasn = 4242420001\naddresses = [\"172.20.0.1/32\"]\n";

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

/// Asserts the single error's line and key, and that its message contains `needle`.
fn expect(rest: &str, line: usize, key: &str, needle: &str) {
    let (l, k, m) = single(rest);
    assert_eq!((l, k.as_str()), (Some(line), key), "{rest}\n-> {m}");
    assert!(m.contains(needle), "{rest}\n-> {m}\n(expected {needle:?})");
}

fn ok(rest: &str) -> Config {
    parse(&format!("{ROUTER}{rest}")).unwrap_or_else(|e| panic!("{rest}\n-> {e}"))
}

fn c(asn: u32, v: u32) -> u32 {
    (asn << 16) | v
}

#[test]
fn full_example() {
    let text = format!(
        r#"[router]
asn = 4242420001
addresses = ["172.20.0.1/32"]
announce = ["172.20.0.0/27"]
region = 41
country = 1276

[[interface]]
name = "wg-a"
private_key = "{PRIV_I}"
peer_public_key = "{PUB_R}"
latency = 3
bandwidth = 24
crypto = 34

[roa]
files = ["roa_dn42.conf", "/var/lib/roa/roa_dn42_v6.json"]
rtr = ["127.0.0.1:8282", "[::1]:8283"]
check_interval = 10
invalid = "reject"
unknown = "accept"

[[policy]]
name = "peers-in"
default = "reject"

[[policy.rule]]
family = "ipv4"
prefix = ["172.20.0.0/14{{21,29}}", "10.0.0.0/8+", "fd00::/8{{44,64}}"]
origin = [4242420000]
as_path_contains = [4242421234]
neighbor_as = [4242420001]
as_path_length = "..10"
community = ["(64511,1..3)"]
large_community = ["(4242420000,*,*)"]
roa = ["valid", "unknown"]
set_local_pref = 200
set_med = 50
prepend = 2
add_community = ["(64511,41)"]
delete_community = ["(64511,*)"]
add_large_community = ["(4242420000,1,2)"]
delete_large_community = ["(4242420000,*,*)"]
action = "accept"

[[policy.rule]]
as_path_length = 3
prepend = 1
prepend_asn = 4242420002

[[policy]]
name = "peers-out"

[[bgp]]
name = "a"
neighbor = "fe80::a"
interface = "wg-a"
remote_asn = 4242420010
import_policy = "peers-in"
export_policy = "peers-out"
export_policy_ipv6 = "peers-in"
"#
    );
    let config = parse(&text).unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(config.router.region, Some(41));
    assert_eq!(config.router.country, Some(1276));
    assert_eq!(
        config.interfaces[0].link,
        dn42::Link {
            latency: Some(3),
            bandwidth: Some(24),
            crypto: Some(34)
        }
    );

    let roa = config.roa.as_ref().unwrap();
    assert_eq!(
        roa.files,
        vec![
            Path::new("/etc/rr/roa_dn42.conf").to_path_buf(),
            Path::new("/var/lib/roa/roa_dn42_v6.json").to_path_buf()
        ]
    );
    assert_eq!(roa.rtr.len(), 2);
    assert_eq!(roa.rtr[0].text, "127.0.0.1:8282");
    assert_eq!(roa.rtr[0].addr, "127.0.0.1:8282".parse().unwrap());
    assert_eq!(roa.rtr[1].addr, "[::1]:8283".parse().unwrap());
    assert_eq!(roa.check_interval, 10);
    assert!(roa.reject_invalid);
    assert!(!roa.reject_unknown);

    assert_eq!(config.policies.len(), 2);
    let p = config.policy("peers-in").unwrap();
    assert_eq!(p.name, "peers-in");
    assert_eq!(p.default, Verdict::Reject);
    assert_eq!(p.rules.len(), 2);
    let r = &p.rules[0];
    let prefixes = ["172.20.0.0/14{21,29}", "10.0.0.0/8+", "fd00::/8{44,64}"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(
        r.matches,
        vec![
            Match::Family(Family::Ipv4Unicast),
            Match::Prefix(prefixes),
            Match::Origin(vec![4242420000]),
            Match::PathContains(vec![4242421234]),
            Match::NeighborAs(vec![4242420001]),
            Match::PathLen(Range { min: 0, max: 10 }),
            Match::Community(vec!["(64511,1..3)".parse().unwrap()]),
            Match::LargeCommunity(vec!["(4242420000,*,*)".parse().unwrap()]),
            Match::Roa(vec![Validity::Valid, Validity::NotFound]),
        ]
    );
    // Actions in the fixed order: local-pref, MED, deletes before adds, prepend.
    assert_eq!(
        r.actions,
        vec![
            Action::LocalPref(200),
            Action::Med(50),
            Action::DeleteCommunity(vec!["(64511,*)".parse().unwrap()]),
            Action::AddCommunity(vec![c(64511, 41)]),
            Action::DeleteLargeCommunity(vec!["(4242420000,*,*)".parse().unwrap()]),
            Action::AddLargeCommunity(vec![[4242420000, 1, 2]]),
            Action::Prepend {
                asn: None,
                times: 2
            },
        ]
    );
    assert_eq!(r.verdict, Some(Verdict::Accept));
    assert_eq!(
        p.rules[1],
        Rule {
            matches: vec![Match::PathLen(Range::single(3))],
            actions: vec![Action::Prepend {
                asn: Some(4242420002),
                times: 1
            }],
            verdict: None,
        }
    );
    let out = config.policy("peers-out").unwrap();
    assert_eq!((out.default, out.rules.len()), (Verdict::Accept, 0));
    assert!(config.policy("nope").is_none());

    let s = &config.bgp[0];
    assert_eq!(
        s.import_policy,
        [Some("peers-in".to_owned()), Some("peers-in".to_owned())]
    );
    // The per-family key overrides the plain one.
    assert_eq!(
        s.export_policy,
        [Some("peers-out".to_owned()), Some("peers-in".to_owned())]
    );

    // The reload diff compares configs with ==.
    assert_eq!(parse(&text).unwrap(), config);
}

#[test]
fn defaults() {
    let c = ok("");
    assert_eq!((c.router.region, c.router.country), (None, None));
    assert_eq!(c.roa, None);
    assert!(c.policies.is_empty());

    let c = ok(&format!(
        "[[interface]]\nname = \"a\"\nprivate_key = \"{PRIV_I}\"\npeer_public_key = \"{PUB_R}\"\n\
         [[bgp]]\nname = \"s\"\nneighbor = \"172.20.0.66\"\nremote_asn = 1\n"
    ));
    assert_eq!(c.interfaces[0].link, dn42::Link::default());
    assert_eq!(c.bgp[0].import_policy, [None, None]);
    assert_eq!(c.bgp[0].export_policy, [None, None]);

    let c = ok("[roa]\nrtr = [\"127.0.0.1:8282\"]\n");
    let roa = c.roa.unwrap();
    assert!(roa.files.is_empty());
    assert_eq!(roa.check_interval, DEFAULT_ROA_CHECK_INTERVAL);
    assert!(roa.reject_invalid && roa.reject_unknown);

    // Only some link communities; a policy that only has a default.
    let c = ok(&format!(
        "[[interface]]\nname = \"a\"\nprivate_key = \"{PRIV_I}\"\npeer_public_key = \"{PUB_R}\"\ncrypto = 31\n\
         [[policy]]\nname = \"deny\"\ndefault = \"reject\"\n"
    ));
    assert_eq!(
        c.interfaces[0].link,
        dn42::Link {
            crypto: Some(31),
            ..dn42::Link::default()
        }
    );
    assert_eq!(c.policies[0].rules, vec![]);
    assert_eq!(c.policies[0].default, Verdict::Reject);
}

#[test]
fn region_and_country() {
    let c = ok("").router;
    assert_eq!(c.region, None);
    let c = parse("[router]\nregion = 70\ncountry = 1000\n").unwrap();
    assert_eq!((c.router.region, c.router.country), (Some(70), Some(1000)));
    for (bad, needle) in [
        ("region = 40", "must be 41..=70"),
        ("region = 71", "41 = Europe"),
        ("region = \"41\"", "expected an integer"),
        ("country = 276", "1000 + the ISO 3166-1"),
        ("country = 2000", "must be 1000..=1999"),
    ] {
        let text = format!("[router]\nasn = 1\n{bad}\n");
        let errs = parse(&text).unwrap_err();
        assert_eq!(errs.errors.len(), 1, "{errs}");
        let e = &errs.errors[0];
        let key = format!("router.{}", bad.split(' ').next().unwrap());
        assert_eq!((e.line, e.key.as_str()), (Some(3), key.as_str()), "{bad}");
        assert!(e.message.contains(needle), "{bad}: {}", e.message);
    }
}

#[test]
fn link_communities() {
    let iface = |extra: &str| {
        format!(
            "[[interface]]\nname = \"a\"\nprivate_key = \"{PRIV_I}\"\npeer_public_key = \"{PUB_R}\"\n{extra}\n"
        )
    };
    let c = ok(&iface("latency = 9\nbandwidth = 21\ncrypto = 33"));
    assert_eq!(
        c.interfaces[0].link,
        dn42::Link {
            latency: Some(9),
            bandwidth: Some(21),
            crypto: Some(33)
        }
    );
    for (bad, key, needle) in [
        ("latency = 0", "latency", "must be 1..=9"),
        ("latency = 10", "latency", "1 = up to 2.7 ms"),
        ("bandwidth = 4", "bandwidth", "24 = 100"),
        ("bandwidth = 30", "bandwidth", "must be 21..=29"),
        ("crypto = 30", "crypto", "34 = with PFS"),
        ("crypto = 35", "crypto", "must be 31..=34"),
        ("crypto = 3.4", "crypto", "expected an integer"),
    ] {
        // The interface starts on line 4; the extra line is line 8.
        expect(&iface(bad), 8, &format!("interface \"a\".{key}"), needle);
    }
    // All three wrong: three errors, each with its line.
    let errs = parse(&format!(
        "{ROUTER}{}",
        iface("latency = 0\nbandwidth = 0\ncrypto = 0")
    ))
    .unwrap_err();
    let lines: Vec<_> = errs.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [Some(8), Some(9), Some(10)], "{errs}");
}

#[test]
fn roa_section() {
    let c = ok("[roa]\nfiles = [\"roa.conf\"]\ninvalid = \"accept\"\nunknown = \"reject\"\n");
    let roa = c.roa.unwrap();
    assert_eq!(roa.files, vec![Path::new("/etc/rr/roa.conf").to_path_buf()]);
    assert!(!roa.reject_invalid && roa.reject_unknown);
    let c = ok("[roa]\nrtr = [\"localhost:8282\"]\n");
    let rtr = &c.roa.unwrap().rtr[0];
    assert_eq!(rtr.text, "localhost:8282");
    assert!(rtr.addr.ip().is_loopback() && rtr.addr.port() == 8282);

    // [roa] is on line 4; its first key on line 5.
    for (bad, line, key, needle) in [
        ("", 4, "roa", "has no ROA source"),
        ("files = []\nrtr = []\n", 4, "roa", "has no ROA source"),
        (
            "files = [\"a\"]\nfrobnicate = 1\n",
            6,
            "roa.frobnicate",
            "unknown key",
        ),
        (
            "file = [\"a\"]\nrtr = [\"127.0.0.1:8282\"]\n",
            5,
            "roa.file",
            "did you mean `files`?",
        ),
        (
            "files = \"roa.conf\"\n",
            5,
            "roa.files",
            "expected an array of strings",
        ),
        ("files = [\"\"]\n", 5, "roa.files", "must not be empty"),
        ("files = [\"a\", \"./a\"]\n", 5, "roa.files", "listed twice"),
        (
            "files = [\"a\",\n  \"a\"]\n",
            6,
            "roa.files",
            "listed twice",
        ),
        (
            "rtr = [\"127.0.0.1\"]\n",
            5,
            "roa.rtr",
            "RTR server \"127.0.0.1\" has no port",
        ),
        ("rtr = [\"::1:8282\"]\n", 5, "roa.rtr", "ambiguous"),
        ("rtr = [\"127.0.0.1:0\"]\n", 5, "roa.rtr", "port 0"),
        (
            "rtr = [\"no such host!:8282\"]\n",
            5,
            "roa.rtr",
            "cannot resolve RTR server",
        ),
        (
            "rtr = [\"127.0.0.1:8282\", \"127.0.0.1:8282\"]\n",
            5,
            "roa.rtr",
            "listed twice",
        ),
        ("rtr = [1]\n", 5, "roa.rtr", "found an integer"),
        (
            "files = [\"a\"]\ncheck_interval = 0\n",
            6,
            "roa.check_interval",
            "must be 1..=65535",
        ),
        (
            "files = [\"a\"]\ncheck_interval = \"5s\"\n",
            6,
            "roa.check_interval",
            "expected an integer",
        ),
        (
            "files = [\"a\"]\ninvalid = \"drop\"\n",
            6,
            "roa.invalid",
            "\"reject\", \"accept\"",
        ),
        (
            "files = [\"a\"]\nunknown = true\n",
            6,
            "roa.unknown",
            "expected a string",
        ),
    ] {
        expect(&format!("[roa]\n{bad}"), line, key, needle);
    }
    let errs = parse(&format!("roa = 1\n{ROUTER}")).unwrap_err();
    assert_eq!(errs.errors.len(), 1, "{errs}");
    assert_eq!(
        (errs.errors[0].line, errs.errors[0].key.as_str()),
        (Some(1), "roa")
    );
    assert!(
        errs.errors[0].message.contains("expected a table"),
        "{errs}"
    );
}

/// `[[policy]]` on line 4 (`name` on 5), its first `[[policy.rule]]` on line 6 and the
/// rule's first key on line 7.
fn rule(keys: &str) -> String {
    format!("[[policy]]\nname = \"p\"\n[[policy.rule]]\n{keys}\n")
}

#[test]
fn rule_keys() {
    let one = |keys: &str| -> Rule {
        let c = ok(&rule(keys));
        c.policies[0].rules[0].clone()
    };
    assert_eq!(
        one("family = \"ipv6\"").matches,
        [Match::Family(Family::Ipv6Unicast)]
    );
    assert_eq!(
        one("as_path_length = \"2..5\"").matches,
        [Match::PathLen(Range { min: 2, max: 5 })]
    );
    assert_eq!(
        one("as_path_length = \"3..\"").matches,
        [Match::PathLen(Range {
            min: 3,
            max: u32::MAX
        })]
    );
    assert_eq!(
        one("roa = [\"invalid\"]\naction = \"reject\"").verdict,
        Some(Verdict::Reject)
    );
    assert_eq!(
        one("add_community = [\"(64511,41)\", \"(64511,1276)\"]").actions,
        [Action::AddCommunity(vec![c(64511, 41), c(64511, 1276)])]
    );
    assert_eq!(one("set_med = 0").actions, [Action::Med(0)]);
    assert_eq!(
        one("set_local_pref = 4294967295").actions,
        [Action::LocalPref(u32::MAX)]
    );
}

#[test]
fn rule_errors() {
    let path = "policy \"p\".rule[0]";
    for (bad, line, key, needle) in [
        (
            "pefix = [\"10.0.0.0/8\"]",
            7,
            "pefix",
            "did you mean `prefix`?",
        ),
        ("family = \"inet\"", 7, "family", "\"ipv4\", \"ipv6\""),
        (
            "prefix = \"10.0.0.0/8+\"",
            7,
            "prefix",
            "an array of prefix patterns",
        ),
        ("prefix = []", 7, "prefix", "is empty"),
        (
            "prefix = [\"10.0.0.1/8+\"]",
            7,
            "prefix",
            "host bits set; did you mean 10.0.0.0/8?",
        ),
        (
            "prefix = [\"10.0.0.0/8\",\n  \"10.0.0.0/8{24,16}\"]",
            8,
            "prefix",
            "24 is greater than 16",
        ),
        (
            "prefix = [\"fd00::/8{44,129}\"]",
            7,
            "prefix",
            "longer than 128",
        ),
        ("origin = [0]", 7, "origin", "reserved"),
        ("origin = 4242420000", 7, "origin", "an array of AS numbers"),
        ("origin = []", 7, "origin", "is empty"),
        (
            "as_path_contains = [\"AS1\"]",
            7,
            "as_path_contains",
            "expected an integer",
        ),
        (
            "neighbor_as = [4294967296]",
            7,
            "neighbor_as",
            "out of range",
        ),
        (
            "as_path_length = \"10..2\"",
            7,
            "as_path_length",
            "10 is greater than 2",
        ),
        ("as_path_length = -1", 7, "as_path_length", "out of range"),
        (
            "as_path_length = [1]",
            7,
            "as_path_length",
            "an integer or a range",
        ),
        ("community = [\"64511:1\"]", 7, "community", "parentheses"),
        (
            "community = [\"(64511,70000)\"]",
            7,
            "community",
            "does not fit in 16 bits",
        ),
        (
            "large_community = [\"(1,2)\"]",
            7,
            "large_community",
            "3 parts",
        ),
        ("roa = [\"notfound\"]", 7, "roa", "\"unknown\""),
        ("set_local_pref = -5", 7, "set_local_pref", "out of range"),
        ("set_med = \"50\"", 7, "set_med", "expected an integer"),
        ("prepend = 0", 7, "prepend", "must be 1..=255"),
        ("prepend = 256", 7, "prepend", "must be 1..=255"),
        (
            "prepend_asn = 4242420002",
            7,
            "prepend_asn",
            "needs `prepend`",
        ),
        ("prepend = 1\nprepend_asn = 0", 8, "prepend_asn", "reserved"),
        (
            "add_community = [\"(64511,1..3)\"]",
            7,
            "add_community",
            "one value per part",
        ),
        (
            "delete_community = [\"(64511)\"]",
            7,
            "delete_community",
            "2 parts",
        ),
        (
            "add_large_community = [\"(1,*,2)\"]",
            7,
            "add_large_community",
            "one value per part",
        ),
        (
            "delete_large_community = [\"(1,2,3,4)\"]",
            7,
            "delete_large_community",
            "3 parts",
        ),
        ("action = \"drop\"", 7, "action", "\"accept\", \"reject\""),
    ] {
        expect(&rule(bad), line, &format!("{path}.{key}"), needle);
    }
    // An empty rule.
    expect(&rule(""), 6, path, "an empty rule");
    // [policy.rule] written as a table.
    expect(
        "[[policy]]\nname = \"p\"\n[policy.rule]\naction = \"reject\"\n",
        6,
        "policy \"p\".rule",
        "write [[policy.rule]]",
    );
    // Every problem of a rule is reported.
    let errs = parse(&format!(
        "{ROUTER}{}",
        rule("prefix = [\"x\"]\norigin = [0]\naction = \"maybe\"")
    ))
    .unwrap_err();
    let lines: Vec<_> = errs.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [Some(7), Some(8), Some(9)], "{errs}");
}

#[test]
fn policy_errors() {
    for (bad, line, key, needle) in [
        (
            "[[policy]]\ndefault = \"accept\"\n",
            4,
            "policy[0].name",
            "missing required key `name`",
        ),
        (
            "[[policy]]\nname = \"a b\"\n",
            5,
            "policy[0].name",
            "not a valid name",
        ),
        (
            "[[policy]]\nname = \"p\"\ndefault = \"deny\"\n",
            6,
            "policy \"p\".default",
            "\"accept\", \"reject\"",
        ),
        (
            "[[policy]]\nname = \"p\"\nrules = []\n",
            6,
            "policy \"p\".rules",
            "did you mean `rule`?",
        ),
        (
            "[[policy]]\nname = \"p\"\n[[policy]]\nname = \"p\"\n",
            7,
            "policy \"p\".name",
            "duplicate policy name \"p\" (first used on line 5)",
        ),
        ("[policy]\nname = \"p\"\n", 4, "policy", "write [[policy]]"),
    ] {
        expect(bad, line, key, needle);
    }
}

/// A session on line 4 (`[[bgp]]`), its keys from line 8; two policies after it.
fn session(keys: &str) -> String {
    format!(
        "[[bgp]]\nname = \"s\"\nneighbor = \"172.20.0.66\"\nremote_asn = 1\n{keys}\n\
         [[policy]]\nname = \"in\"\n[[policy]]\nname = \"out\"\n"
    )
}

#[test]
fn session_policies() {
    let some = |s: &str| Some(s.to_owned());
    let c = ok(&session("import_policy = \"in\""));
    assert_eq!(c.bgp[0].import_policy, [some("in"), some("in")]);
    assert_eq!(c.bgp[0].export_policy, [None, None]);
    let c = ok(&session(
        "import_policy_ipv6 = \"out\"\nexport_policy_ipv4 = \"in\"",
    ));
    assert_eq!(c.bgp[0].import_policy, [None, some("out")]);
    assert_eq!(c.bgp[0].export_policy, [some("in"), None]);
    // The per-family key wins wherever it is written.
    let c = ok(&session(
        "import_policy_ipv4 = \"out\"\nimport_policy = \"in\"",
    ));
    assert_eq!(c.bgp[0].import_policy, [some("out"), some("in")]);
    let c = ok(&session(
        "export_policy_ipv6 = \"in\"\nexport_policy = \"out\"",
    ));
    assert_eq!(c.bgp[0].export_policy, [some("out"), some("in")]);

    for (bad, line, key, needle) in [
        (
            "import_policy = \"inn\"",
            8,
            "import_policy",
            "no [[policy]] is named \"inn\"; did you mean \"in\"?",
        ),
        (
            "export_policy = \"nothing-like-it\"",
            8,
            "export_policy",
            "no [[policy]] is named",
        ),
        (
            "import_policy_ipv4 = 1",
            8,
            "import_policy_ipv4",
            "expected a string",
        ),
        (
            "export_policy_ipv6 = \"x\"",
            8,
            "export_policy_ipv6",
            "no [[policy]]",
        ),
        (
            "import_policy_ip4 = \"in\"",
            8,
            "import_policy_ip4",
            "did you mean `import_policy_ipv4`?",
        ),
        (
            "families = [\"ipv4\"]\nimport_policy_ipv6 = \"in\"",
            9,
            "import_policy_ipv6",
            "does not carry ipv6",
        ),
        (
            "families = [\"ipv6\"]\nexport_policy_ipv4 = \"in\"",
            9,
            "export_policy_ipv4",
            "does not carry ipv4",
        ),
    ] {
        expect(&session(bad), line, &format!("bgp \"s\".{key}"), needle);
    }

    // A policy with a problem of its own: the session naming it gets no second error.
    let errs = parse(&format!(
        "{ROUTER}[[bgp]]\nname = \"s\"\nneighbor = \"172.20.0.66\"\nremote_asn = 1\nimport_policy = \"in\"\n\
         [[policy]]\nname = \"in\"\ndefault = \"maybe\"\n"
    ))
    .unwrap_err();
    assert_eq!(errs.errors.len(), 1, "{errs}");
    assert_eq!(errs.errors[0].key, "policy \"in\".default");
    assert_eq!(errs.errors[0].line, Some(11));
}
