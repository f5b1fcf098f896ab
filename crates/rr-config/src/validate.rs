//! Builds a typed [`Config`] from the spanned TOML tree, collecting every problem.
//!
//! Checks are those a user can fix in the file: types and ranges, unknown keys (with a
//! "did you mean" suggestion), key material and key files, duplicate interface names and
//! ports, references from routes and BGP sessions to interfaces, `[dns]` servers and
//! domains, `[[forward]]` / `[[expose]]` addresses (an expose listens on one of the
//! router's addresses, a forward leads away from loopback, no two listeners of a kind
//! on one address), DN42 community values (region, country, a tunnel's latency /
//! bandwidth / crypto), `[roa]` sources, `[[policy]]` rules (every pattern parsed with
//! `rr-policy`'s parsers, so the config and the policy engine agree on one syntax) and
//! sessions' references to policies, the `[metrics]` and `[looking_glass]` addresses
//! (host `addr:port`s no TCP `[[forward]]` or each other listens on), and so on. It never stops at the first problem. It
//! is not the runtime: nothing here binds sockets or talks to peers (so "port already in use by
//! another program" is found at start, not here).

use crate::error::ConfigError;
use crate::tree::{self, Key as TKey, Node, Span, Value};
use crate::{
    BgpConfig, Config, DnsConfig, Family, GatewayConfig, GatewayProtocol, InterfaceConfig, Key,
    LimitAction, LookingGlassConfig, MetricsConfig, Policy, RoaConfig, RouteConfig, RouterConfig,
    RtrConfig, Transport, DEFAULT_IMPORT_LIMIT, DEFAULT_MTU, DEFAULT_ROA_CHECK_INTERVAL, MIN_MTU,
};
use ipnet::IpNet;
use rr_policy::{dn42, Action, Match, PatternError, Rule, Validity, Verdict};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Longest path a unix socket address can hold (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

const TOP_KEYS: &[&str] = &[
    "router",
    "interface",
    "route",
    "bgp",
    "dns",
    "forward",
    "expose",
    "roa",
    "policy",
    "metrics",
    "looking_glass",
];
/// The keys of `[metrics]` and of `[looking_glass]`.
const METRICS_KEYS: &[&str] = &["listen"];
const DNS_KEYS: &[&str] = &["servers", "domains"];
const GATEWAY_KEYS: &[&str] = &["name", "protocol", "listen", "connect"];
/// The DNS port (RFC 1035 section 4.2.1).
const DNS_PORT: u16 = 53;
const ROUTER_KEYS: &[&str] = &[
    "asn",
    "router_id",
    "addresses",
    "announce",
    "control_socket",
    "region",
    "country",
];
const INTERFACE_KEYS: &[&str] = &[
    "name",
    "private_key",
    "private_key_file",
    "listen_port",
    "peer_public_key",
    "endpoint",
    "preshared_key",
    "preshared_key_file",
    "persistent_keepalive",
    "mtu",
    "addresses",
    "latency",
    "bandwidth",
    "crypto",
];
const ROUTE_KEYS: &[&str] = &["prefix", "interface", "gateway"];
const BGP_KEYS: &[&str] = &[
    "name",
    "neighbor",
    "interface",
    "remote_asn",
    "families",
    "extended_next_hop",
    "passive",
    "hold_time",
    "keepalive",
    "connect_retry",
    "transport",
    "port",
    "local_port",
    "import",
    "export",
    "import_limit",
    "import_limit_action",
    "import_policy",
    "import_policy_ipv4",
    "import_policy_ipv6",
    "export_policy",
    "export_policy_ipv4",
    "export_policy_ipv6",
];
const ROA_KEYS: &[&str] = &["files", "rtr", "check_interval", "invalid", "unknown"];
const POLICY_KEYS: &[&str] = &["name", "default", "rule"];
const RULE_KEYS: &[&str] = &[
    "family",
    "prefix",
    "origin",
    "as_path_contains",
    "neighbor_as",
    "as_path_length",
    "community",
    "large_community",
    "roa",
    "set_local_pref",
    "set_med",
    "prepend",
    "prepend_asn",
    "add_community",
    "delete_community",
    "add_large_community",
    "delete_large_community",
    "action",
];

/// Parses and validates; on failure returns every problem (unsorted).
pub(crate) fn build(text: &str, base_dir: &Path) -> Result<Config, Vec<ConfigError>> {
    let doc = match tree::parse(text) {
        Ok(doc) => doc,
        Err(e) => return Err(vec![syntax_error(text, &e)]),
    };
    let mut cx = Cx {
        text,
        base_dir,
        errors: Vec::new(),
    };
    let config = cx.config(&doc);
    match config {
        Some(config) if cx.errors.is_empty() => Ok(config),
        _ => {
            debug_assert!(!cx.errors.is_empty(), "config rejected without a reason");
            Err(cx.errors)
        }
    }
}

fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let line = e.span().map(|s| tree::line_of(text, s.start));
    let mut message = e.message().trim().to_owned();
    if message.contains("$__toml_private_datetime") || message.contains("$__serde_spanned") {
        message = "unexpected value (date-times are not used in this config)".to_owned();
    }
    ConfigError {
        line,
        key: String::new(),
        message: format!("TOML syntax error: {message}"),
    }
}

/// One value in a table, with the key path for messages and the best span we have.
#[derive(Clone, Copy)]
struct Field<'t> {
    node: &'t Node,
    span: &'t Span,
}

/// A table being read: its entries, the path used in messages, and a span for
/// "missing key" errors.
struct Table<'t> {
    path: String,
    entries: &'t [(TKey, Node)],
    span: Span,
}

impl<'t> Table<'t> {
    fn get(&self, name: &str) -> Option<Field<'t>> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(k, node)| Field {
                node,
                span: if node.span.is_some() {
                    &node.span
                } else {
                    &k.span
                },
            })
    }

    fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{}", self.path, name)
        }
    }
}

struct Cx<'a> {
    text: &'a str,
    base_dir: &'a Path,
    errors: Vec<ConfigError>,
}

/// What is known about an `[[interface]]` even when it has errors: enough to resolve
/// references from routes and sessions without cascading errors.
struct IfaceInfo {
    name: Option<String>,
    name_span: Span,
    listen_port: Option<(u16, Span)>,
}

impl<'a> Cx<'a> {
    fn error(&mut self, span: &Span, key: impl Into<String>, message: impl Into<String>) {
        let line = span.as_ref().map(|s| tree::line_of(self.text, s.start));
        self.errors.push(ConfigError {
            line,
            key: key.into(),
            message: message.into(),
        });
    }

    fn line(&self, span: &Span) -> Option<usize> {
        span.as_ref().map(|s| tree::line_of(self.text, s.start))
    }

    /// `node` as a table; `span` is used when the node has none.
    fn table(&mut self, node: &'a Node, path: String, span: &Span) -> Option<Table<'a>> {
        let span = node.span.clone().or_else(|| span.clone());
        match &node.value {
            Value::Table(entries) => Some(Table {
                path,
                entries,
                span,
            }),
            other => {
                self.error(
                    &span,
                    path,
                    format!("expected a table, found {}", other.kind()),
                );
                None
            }
        }
    }

    fn unknown_keys(&mut self, table: &Table<'_>, allowed: &[&str]) {
        for (k, _) in table.entries {
            if allowed.contains(&k.name.as_str()) {
                continue;
            }
            let mut message = format!("unknown key `{}`", k.name);
            if let Some(s) = suggest(&k.name, allowed) {
                message.push_str(&format!("; did you mean `{s}`?"));
            } else {
                message.push_str(&format!("; expected one of {}", list(allowed)));
            }
            self.error(&k.span, table.key(&k.name), message);
        }
    }

    fn missing(&mut self, table: &Table<'_>, name: &str, what: &str) {
        self.error(
            &table.span,
            table.key(name),
            format!("missing required key `{name}` ({what})"),
        );
    }

    fn wrong_type(&mut self, f: Field<'_>, key: &str, expected: &str) {
        self.error(
            f.span,
            key,
            format!("expected {expected}, found {}", f.node.value.describe()),
        );
    }

    fn string(&mut self, f: Field<'a>, key: &str) -> Option<&'a str> {
        match &f.node.value {
            Value::String(s) => Some(s),
            _ => {
                self.wrong_type(f, key, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, f: Field<'a>, key: &str) -> Option<bool> {
        match f.node.value {
            Value::Boolean(b) => Some(b),
            _ => {
                self.wrong_type(f, key, "a boolean (true or false)");
                None
            }
        }
    }

    /// An integer in `min..=max`.
    fn integer(&mut self, f: Field<'a>, key: &str, min: i64, max: i64) -> Option<i64> {
        match f.node.value {
            Value::Integer(i) if (min..=max).contains(&i) => Some(i),
            Value::Integer(i) => {
                self.error(
                    f.span,
                    key,
                    format!("{i} is out of range: must be {min}..={max}"),
                );
                None
            }
            _ => {
                self.wrong_type(f, key, "an integer");
                None
            }
        }
    }

    fn u16(&mut self, f: Field<'a>, key: &str, min: u16) -> Option<u16> {
        self.integer(f, key, min.into(), u16::MAX.into())
            .map(|i| i as u16)
    }

    fn asn(&mut self, f: Field<'a>, key: &str) -> Option<u32> {
        match f.node.value {
            Value::Integer(0) => {
                self.error(f.span, key, "AS number 0 is reserved (RFC 7607)");
                None
            }
            _ => self.integer(f, key, 1, u32::MAX.into()).map(|i| i as u32),
        }
    }

    /// An array of strings: each with its span (errors reported for the others).
    fn strings(&mut self, f: Field<'a>, key: &str) -> Vec<(&'a str, &'a Span)> {
        let Value::Array(items) = &f.node.value else {
            self.wrong_type(f, key, "an array of strings");
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let span = if item.span.is_some() {
                &item.span
            } else {
                f.span
            };
            match &item.value {
                Value::String(s) => out.push((s.as_str(), span)),
                other => self.error(
                    span,
                    key,
                    format!("expected an array of strings, found {} in it", other.kind()),
                ),
            }
        }
        out
    }

    fn ip(&mut self, f: Field<'a>, key: &str) -> Option<IpAddr> {
        let s = self.string(f, key)?;
        match s.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.error(f.span, key, format!("{s:?} is not an IP address"));
                None
            }
        }
    }

    /// Addresses with prefix length (a bare address means a host prefix).
    fn addresses(&mut self, f: Field<'a>, key: &str) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (s, span) in self.strings(f, key) {
            if let Ok(net) = s.parse::<IpNet>() {
                out.push(net);
            } else if let Ok(ip) = s.parse::<IpAddr>() {
                out.push(IpNet::from(ip));
            } else {
                self.error(
                    span,
                    key,
                    format!("{s:?} is not an address (e.g. \"172.20.0.1/32\" or \"fe80::1/64\")"),
                );
            }
        }
        out
    }

    /// A network prefix: prefix length required, no host bits.
    fn prefix(&mut self, s: &str, span: &Span, key: &str) -> Option<IpNet> {
        let net = match s.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => {
                let hint = if s.parse::<IpAddr>().is_ok() {
                    " (the prefix length is missing, e.g. \"/32\")"
                } else {
                    " (e.g. \"172.20.1.0/24\" or \"fd00:1::/48\")"
                };
                self.error(span, key, format!("{s:?} is not a network prefix{hint}"));
                return None;
            }
        };
        if net.trunc() != net {
            self.error(
                span,
                key,
                format!("{net} has host bits set; did you mean {}?", net.trunc()),
            );
            return None;
        }
        Some(net)
    }

    /// A path from the file: relative ones are relative to the config's directory.
    fn path(&self, s: &str) -> PathBuf {
        let p = Path::new(s);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// `NAME` or `NAME_file`: exactly one when `required`, at most one otherwise.
    fn key_pair(&mut self, table: &Table<'a>, name: &str, required: bool) -> Option<Key> {
        let file_name = format!("{name}_file");
        let inline = table.get(name);
        let file = table.get(&file_name);
        match (inline, file) {
            (Some(_), Some(f)) => {
                self.error(
                    f.span,
                    table.key(&file_name),
                    format!("set either `{name}` or `{file_name}`, not both"),
                );
                None
            }
            (None, None) => {
                if required {
                    self.missing(table, name, &format!("or `{file_name}`"));
                }
                None
            }
            (Some(f), None) => self.key_value(f, &table.key(name)),
            (None, Some(f)) => {
                let key = table.key(&file_name);
                let s = self.string(f, &key)?;
                let path = self.path(s);
                match std::fs::read_to_string(&path) {
                    Ok(content) => match Key::from_base64(content.trim()) {
                        Ok(k) => Some(k),
                        Err(e) => {
                            self.error(
                                f.span,
                                key,
                                format!(
                                    "key file {} does not hold a valid key: {e}",
                                    path.display()
                                ),
                            );
                            None
                        }
                    },
                    Err(e) => {
                        self.error(
                            f.span,
                            key,
                            format!("cannot read key file {}: {e}", path.display()),
                        );
                        None
                    }
                }
            }
        }
    }

    /// An inline base64 key. The message never repeats the value.
    fn key_value(&mut self, f: Field<'a>, key: &str) -> Option<Key> {
        let s = self.string(f, key)?;
        match Key::from_base64(s.trim()) {
            Ok(k) => Some(k),
            Err(e) => {
                self.error(f.span, key, format!("not a valid WireGuard key: {e}"));
                None
            }
        }
    }

    fn endpoint(&mut self, f: Field<'a>, key: &str) -> Option<(SocketAddr, String)> {
        let s = self.string(f, key)?;
        self.host_port(s, f.span, key, "endpoint")
    }

    /// `host:port` (`[v6]:port`), resolved now (the first address the resolver
    /// returns), and the text as written (trimmed). `what` names it in messages.
    fn host_port(
        &mut self,
        s: &str,
        span: &Span,
        key: &str,
        what: &str,
    ) -> Option<(SocketAddr, String)> {
        let text = s.trim();
        if !text.contains(':') {
            self.error(
                span,
                key,
                format!("{what} {text:?} has no port: write host:port"),
            );
            return None;
        }
        if let Some((host, _)) = text.rsplit_once(':') {
            if host.contains(':') && !host.starts_with('[') {
                self.error(
                    span,
                    key,
                    format!("{what} {text:?} is ambiguous: write an IPv6 address as [addr]:port"),
                );
                return None;
            }
        }
        let resolved = match text.parse::<SocketAddr>() {
            Ok(addr) => Ok(Some(addr)),
            Err(_) => text.to_socket_addrs().map(|mut addrs| addrs.next()),
        };
        match resolved {
            Ok(Some(addr)) if addr.port() == 0 => {
                self.error(span, key, format!("{what} {text:?} has port 0"));
                None
            }
            Ok(Some(addr)) => Some((addr, text.to_owned())),
            Ok(None) => {
                self.error(span, key, format!("{what} {text:?} resolves to no address"));
                None
            }
            Err(e) => {
                self.error(
                    span,
                    key,
                    format!(
                        "cannot resolve {what} {text:?}: {e} (write host:port, an IPv6 address as [addr]:port)"
                    ),
                );
                None
            }
        }
    }

    fn config(&mut self, doc: &'a Node) -> Option<Config> {
        let top = self.table(doc, String::new(), &None)?;
        self.unknown_keys(&top, TOP_KEYS);

        let errors_before = self.errors.len();
        let router = match top.get("router") {
            Some(f) => self.router(f),
            None => {
                self.error(&None, "router", "missing [router] table");
                None
            }
        };

        let iface_nodes = self.array_of_tables(&top, "interface");
        let mut infos = Vec::new();
        let mut interfaces = Vec::new();
        for (i, node) in iface_nodes.iter().enumerate() {
            let (info, iface) = self.interface(i, node);
            infos.push(info);
            interfaces.extend(iface);
        }
        self.interface_cross_checks(&infos);
        // The router's addresses are only known for sure when [router] and every
        // [[interface]] were read without a problem.
        let addresses_known = self.errors.len() == errors_before;
        let names: HashMap<&str, usize> = infos
            .iter()
            .enumerate()
            .rev() // the first of duplicates wins
            .filter_map(|(i, info)| info.name.as_deref().map(|n| (n, i)))
            .collect();

        let mut routes = Vec::new();
        for (i, node) in self.array_of_tables(&top, "route").iter().enumerate() {
            routes.extend(self.route(i, node, &names));
        }

        let roa = match top.get("roa") {
            Some(f) => self.roa(f).map(Some),
            None => Some(None),
        };
        let (policies, policy_names) = self.policies(&top);

        let mut sessions = Vec::new();
        let mut session_names: HashMap<String, Span> = HashMap::new();
        let mut neighbors: HashMap<(IpAddr, Option<String>), String> = HashMap::new();
        for (i, node) in self.array_of_tables(&top, "bgp").iter().enumerate() {
            let Some((session, name_span, neighbor_span)) =
                self.bgp(i, node, &names, &policy_names)
            else {
                continue;
            };
            let path = format!("bgp {:?}", session.name);
            if let Some(first) = session_names.get(&session.name) {
                let message = format!(
                    "duplicate session name {:?} (first used on line {})",
                    session.name,
                    line_text(self.line(first))
                );
                self.error(&name_span, format!("{path}.name"), message);
            } else {
                session_names.insert(session.name.clone(), name_span);
            }
            let scope = (session.neighbor, session.interface.clone());
            if let Some(first) = neighbors.get(&scope) {
                let message = format!(
                    "neighbor {} is already the neighbor of session {first:?}",
                    session.neighbor
                );
                self.error(&neighbor_span, format!("{path}.neighbor"), message);
            } else {
                neighbors.insert(scope, session.name.clone());
            }
            sessions.push(session);
        }

        let dns = match top.get("dns") {
            Some(f) => self.dns(f),
            None => Some(DnsConfig::default()),
        };
        // Otherwise expose listen addresses are not checked against them (the problem
        // that hides some of them is reported anyway).
        let router_addrs: Option<Vec<IpAddr>> =
            router.as_ref().filter(|_| addresses_known).map(|(r, _)| {
                r.addresses
                    .iter()
                    .chain(interfaces.iter().flat_map(|i| &i.addresses))
                    .map(|n| n.addr())
                    .collect()
            });
        let (forwards, exposes) = self.gateways(&top, router_addrs.as_deref());
        let metrics = match top.get("metrics") {
            Some(f) => self.metrics(f, forwards.as_deref()).map(Some),
            None => Some(None),
        };
        let looking_glass = match top.get("looking_glass") {
            Some(f) => self
                .looking_glass(f, forwards.as_deref(), metrics.flatten())
                .map(Some),
            None => Some(None),
        };

        let (mut router, router_span) = router?;
        if router.router_id.is_none() {
            router.router_id = router.addresses.iter().find_map(|net| match net.addr() {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            });
        }
        if !sessions.is_empty() {
            if router.asn.is_none() {
                self.error(
                    &router_span,
                    "router.asn",
                    "missing: [[bgp]] sessions need the router's AS number",
                );
            }
            if router.router_id.is_none() {
                self.error(
                    &router_span,
                    "router.router_id",
                    "missing, and router.addresses has no IPv4 address to take it from: [[bgp]] sessions need a router ID",
                );
            }
        }

        Some(Config {
            roa: roa?,
            policies: policies?,
            router,
            interfaces,
            routes,
            bgp: sessions,
            dns: dns?,
            forwards: forwards?,
            exposes: exposes?,
            metrics: metrics?,
            looking_glass: looking_glass?,
            source: None,
        })
    }

    /// `[[NAME]]`: the tables, or none (with an error) if it is something else.
    fn array_of_tables(&mut self, top: &Table<'a>, name: &str) -> Vec<&'a Node> {
        self.tables_in(top, name, name)
    }

    /// The array of tables `name` in `table`, written `[[header]]` in the file.
    fn tables_in(&mut self, table: &Table<'a>, name: &str, header: &str) -> Vec<&'a Node> {
        let Some(f) = table.get(name) else {
            return Vec::new();
        };
        let key = table.key(name);
        match &f.node.value {
            Value::Array(items) => items.iter().collect(),
            Value::Table(_) => {
                self.error(
                    f.span,
                    key,
                    format!("must be an array of tables: write [[{header}]], not [{header}]"),
                );
                Vec::new()
            }
            _ => {
                self.wrong_type(f, &key, "an array of tables ([[...]])");
                Vec::new()
            }
        }
    }

    fn router(&mut self, f: Field<'a>) -> Option<(RouterConfig, Span)> {
        let t = self.table(f.node, "router".into(), f.span)?;
        self.unknown_keys(&t, ROUTER_KEYS);
        let asn = t.get("asn").and_then(|f| self.asn(f, "router.asn"));
        let router_id = t.get("router_id").and_then(|f| {
            let ip = self.ip(f, "router.router_id")?;
            match ip {
                IpAddr::V4(v4) if v4 != Ipv4Addr::UNSPECIFIED => Some(v4),
                IpAddr::V4(_) => {
                    self.error(f.span, "router.router_id", "must not be 0.0.0.0");
                    None
                }
                IpAddr::V6(_) => {
                    self.error(
                        f.span,
                        "router.router_id",
                        format!("{ip} is IPv6: a router ID is an IPv4 address (32 bits)"),
                    );
                    None
                }
            }
        });
        let addresses = t
            .get("addresses")
            .map(|f| self.addresses(f, "router.addresses"))
            .unwrap_or_default();
        let announce = t
            .get("announce")
            .map(|f| {
                self.strings(f, "router.announce")
                    .into_iter()
                    .filter_map(|(s, span)| self.prefix(s, span, "router.announce"))
                    .collect()
            })
            .unwrap_or_default();
        let control_socket = t.get("control_socket").and_then(|f| {
            let s = self.string(f, "router.control_socket")?;
            if s.is_empty() {
                self.error(f.span, "router.control_socket", "must not be empty");
                return None;
            }
            let path = self.path(s);
            if path.as_os_str().len() > MAX_SOCKET_PATH {
                self.error(
                    f.span,
                    "router.control_socket",
                    format!(
                        "path {} is too long for a unix socket ({} bytes, at most {MAX_SOCKET_PATH})",
                        path.display(),
                        path.as_os_str().len()
                    ),
                );
                return None;
            }
            Some(path)
        });
        let region = t.get("region").and_then(|f| {
            self.dn42_value(
                f,
                "router.region",
                dn42::REGION,
                "the DN42 region community (64511, 41..70) put on announced prefixes: 41 = Europe, 42/43/44 = North America east/central/west, 52 = Asia east; see the DN42 wiki's BGP communities page",
            )
        });
        let country = t.get("country").and_then(|f| {
            self.dn42_value(
                f,
                "router.country",
                dn42::COUNTRY,
                "1000 + the ISO 3166-1 numeric country code, e.g. 1276 = Germany, 1840 = United States",
            )
        });
        Some((
            RouterConfig {
                region,
                country,
                asn,
                router_id,
                addresses,
                announce,
                control_socket,
            },
            t.span,
        ))
    }

    /// A name: non-empty, printable, no whitespace.
    fn name(&mut self, t: &Table<'a>, what: &str) -> Option<(String, Span)> {
        let Some(f) = t.get("name") else {
            self.missing(t, "name", what);
            return None;
        };
        let key = t.key("name");
        let s = self.string(f, &key)?;
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.error(
                f.span,
                key,
                format!("{s:?} is not a valid name: it must be non-empty, without spaces"),
            );
            return None;
        }
        Some((s.to_owned(), f.span.clone()))
    }

    fn interface(&mut self, i: usize, node: &'a Node) -> (IfaceInfo, Option<InterfaceConfig>) {
        let mut info = IfaceInfo {
            name: None,
            name_span: None,
            listen_port: None,
        };
        let Some(mut t) = self.table(node, format!("interface[{i}]"), &None) else {
            return (info, None);
        };
        let name = self.name(&t, "the tunnel's name");
        if let Some((name, span)) = &name {
            t.path = format!("interface {name:?}");
            info.name = Some(name.clone());
            info.name_span = span.clone();
        }
        self.unknown_keys(&t, INTERFACE_KEYS);

        let private_key = self.key_pair(&t, "private_key", true);
        let peer_public_key = match t.get("peer_public_key") {
            Some(f) => self.key_value(f, &t.key("peer_public_key")),
            None => {
                self.missing(&t, "peer_public_key", "the peer's public key");
                None
            }
        };
        if let (Some(private), Some(peer)) = (&private_key, &peer_public_key) {
            if crate::keys::public(private) == *peer {
                let f = t.get("peer_public_key").expect("was read above");
                self.error(
                    f.span,
                    t.key("peer_public_key"),
                    "is this interface's own public key (derived from its private key): \
                     it must be the peer's",
                );
            }
        }
        let preshared_key = self.key_pair(&t, "preshared_key", false);

        let listen_port = t.get("listen_port").and_then(|f| {
            let port = self.u16(f, &t.key("listen_port"), 0)?;
            if port != 0 {
                info.listen_port = Some((port, f.span.clone()));
            }
            Some(port)
        });
        let endpoint = t
            .get("endpoint")
            .map(|f| self.endpoint(f, &t.key("endpoint")));
        let persistent_keepalive = t
            .get("persistent_keepalive")
            .and_then(|f| self.u16(f, &t.key("persistent_keepalive"), 0));
        let mtu = match t.get("mtu") {
            None => Some(DEFAULT_MTU),
            Some(f) => match f.node.value {
                Value::Integer(m) if !(i64::from(MIN_MTU)..=65535).contains(&m) => {
                    self.error(
                        f.span,
                        t.key("mtu"),
                        format!(
                            "mtu {m} is out of range: must be {MIN_MTU}..=65535 \
                             (every tunnel may carry IPv6, which needs at least 1280)"
                        ),
                    );
                    None
                }
                _ => self.u16(f, &t.key("mtu"), MIN_MTU),
            },
        };
        let addresses = t
            .get("addresses")
            .map(|f| self.addresses(f, &t.key("addresses")))
            .unwrap_or_default();
        let link_value = |cx: &mut Self, name: &str, range: RangeInclusive<u16>, what: &str| {
            optional(t.get(name).map(|f| {
                cx.dn42_value(f, &t.key(name), range, what)
                    .and_then(|v| u8::try_from(v).ok())
            }))
        };
        let latency = link_value(
            self,
            "latency",
            dn42::LATENCY,
            "the DN42 latency class of this tunnel: 1 = up to 2.7 ms, 2 = 7.3 ms, 3 = 20 ms, 4 = 55 ms, 5 = 148 ms, 6 = 403 ms, 7 = 1.1 s, 8 = 3 s, 9 = more",
        );
        let bandwidth = link_value(
            self,
            "bandwidth",
            dn42::BANDWIDTH,
            "the DN42 bandwidth community value: 21 = 0.1 Mbit/s, 22 = 1, 23 = 10, 24 = 100, 25 = 1000 Mbit/s ... 29",
        );
        let crypto = link_value(
            self,
            "crypto",
            dn42::CRYPTO,
            "the DN42 encryption community value: 31 = none, 32 = unsafe, 33 = safe without PFS, 34 = with PFS (WireGuard)",
        );

        let iface = (|| {
            let endpoint = match endpoint {
                None => None,
                Some(resolved) => Some(resolved?),
            };
            Some(InterfaceConfig {
                link: dn42::Link {
                    latency: latency.ok()?,
                    bandwidth: bandwidth.ok()?,
                    crypto: crypto.ok()?,
                },
                name: name?.0,
                private_key: private_key?,
                listen_port: listen_port.filter(|&p| p != 0),
                peer_public_key: peer_public_key?,
                endpoint: endpoint.as_ref().map(|(addr, _)| *addr),
                endpoint_text: endpoint.map(|(_, text)| text),
                preshared_key,
                persistent_keepalive,
                mtu: mtu?,
                addresses,
            })
        })();
        (info, iface)
    }

    fn interface_cross_checks(&mut self, infos: &[IfaceInfo]) {
        let mut names: HashMap<&str, &Span> = HashMap::new();
        let mut ports: HashMap<u16, (String, &Span)> = HashMap::new();
        for (i, info) in infos.iter().enumerate() {
            let label = info
                .name
                .as_ref()
                .map_or_else(|| format!("interface[{i}]"), |n| format!("interface {n:?}"));
            if let Some(name) = &info.name {
                if let Some(first) = names.get(name.as_str()) {
                    let message = format!(
                        "duplicate interface name {name:?} (first used on line {})",
                        line_text(self.line(first))
                    );
                    self.error(&info.name_span, format!("interface[{i}].name"), message);
                } else {
                    names.insert(name, &info.name_span);
                }
            }
            if let Some((port, span)) = &info.listen_port {
                if let Some((other, first)) = ports.get(port) {
                    let message = format!(
                        "duplicate port {port}: {other} listens on it too (line {})",
                        line_text(self.line(first))
                    );
                    self.error(span, format!("{label}.listen_port"), message);
                } else {
                    ports.insert(*port, (label, span));
                }
            }
        }
    }

    fn interface_ref(
        &mut self,
        t: &Table<'a>,
        names: &HashMap<&str, usize>,
        required: bool,
    ) -> Option<(String, Option<usize>)> {
        let Some(f) = t.get("interface") else {
            if required {
                self.missing(t, "interface", "the tunnel the route leaves through");
            }
            return None;
        };
        let key = t.key("interface");
        let s = self.string(f, &key)?;
        match names.get(s) {
            Some(&index) => Some((s.to_owned(), Some(index))),
            None => {
                let known: Vec<&str> = names.keys().copied().collect();
                let mut message = format!("no [[interface]] is named {s:?}");
                if let Some(close) = suggest(s, &known) {
                    message.push_str(&format!("; did you mean {close:?}?"));
                }
                self.error(f.span, key, message);
                Some((s.to_owned(), None))
            }
        }
    }

    fn route(
        &mut self,
        i: usize,
        node: &'a Node,
        names: &HashMap<&str, usize>,
    ) -> Option<RouteConfig> {
        let t = self.table(node, format!("route[{i}]"), &None)?;
        self.unknown_keys(&t, ROUTE_KEYS);
        let prefix = match t.get("prefix") {
            Some(f) => self
                .string(f, &t.key("prefix"))
                .and_then(|s| self.prefix(s, f.span, &t.key("prefix"))),
            None => {
                self.missing(&t, "prefix", "the destination, e.g. \"172.20.1.0/24\"");
                None
            }
        };
        let interface = self.interface_ref(&t, names, true);
        let gateway = optional(t.get("gateway").map(|f| self.ip(f, &t.key("gateway"))));
        let (interface, index) = interface?;
        // An unknown interface was reported above.
        index?;
        Some(RouteConfig {
            prefix: prefix?,
            interface,
            gateway: gateway.ok()?,
        })
    }

    /// A session, with the spans of its name and neighbor (for duplicate checks).
    fn bgp(
        &mut self,
        i: usize,
        node: &'a Node,
        names: &HashMap<&str, usize>,
        policy_names: &HashSet<String>,
    ) -> Option<(BgpConfig, Span, Span)> {
        let mut t = self.table(node, format!("bgp[{i}]"), &None)?;
        let name = self.name(&t, "the session's name");
        if let Some((name, _)) = &name {
            t.path = format!("bgp {name:?}");
        }
        self.unknown_keys(&t, BGP_KEYS);

        let interface = self.interface_ref(&t, names, false);
        let transport = match t.get("transport") {
            None => Some(Transport::Tunnel),
            Some(f) => self.choice(
                f,
                &t.key("transport"),
                &[("tunnel", Transport::Tunnel), ("host", Transport::Host)],
            ),
        };
        let host = transport == Some(Transport::Host);
        let neighbor_field = t.get("neighbor");
        let neighbor = match neighbor_field {
            Some(f) => self.ip(f, &t.key("neighbor")).and_then(|ip| {
                if host && is_link_local(ip) {
                    self.error(
                        f.span,
                        t.key("neighbor"),
                        format!("{ip} is link-local: only `transport = \"tunnel\"` sessions reach link-local neighbors"),
                    );
                    return None;
                }
                let bad = ip.is_unspecified() || ip.is_multicast() || (ip.is_loopback() && !host);
                if bad {
                    self.error(
                        f.span,
                        t.key("neighbor"),
                        if ip.is_loopback() {
                            format!("{ip} cannot be a BGP neighbor over a tunnel: set `transport = \"host\"` for a daemon on this host")
                        } else {
                            format!("{ip} cannot be a BGP neighbor")
                        },
                    );
                    return None;
                }
                if is_link_local(ip) && interface.is_none() {
                    self.error(
                        f.span,
                        t.key("neighbor"),
                        format!("{ip} is link-local: set `interface` to the tunnel it is on"),
                    );
                    return None;
                }
                Some(ip)
            }),
            None => {
                self.missing(&t, "neighbor", "the neighbor's address");
                None
            }
        };
        let remote_asn = match t.get("remote_asn") {
            Some(f) => self.asn(f, &t.key("remote_asn")),
            None => {
                self.missing(&t, "remote_asn", "the neighbor's AS number");
                None
            }
        };
        let families = match t.get("families") {
            None => Some(vec![Family::Ipv4, Family::Ipv6]),
            Some(f) => self.families(f, &t.key("families")),
        };
        // Optional settings: `Err(())` = present but invalid (already reported).
        let extended_next_hop = optional(
            t.get("extended_next_hop")
                .map(|f| self.boolean(f, &t.key("extended_next_hop"))),
        );
        let passive = t
            .get("passive")
            .map_or(Some(false), |f| self.boolean(f, &t.key("passive")));
        let hold_time = optional(t.get("hold_time").map(|f| match f.node.value {
            Value::Integer(1 | 2) => {
                self.error(
                    f.span,
                    t.key("hold_time"),
                    "must be 0 (no keepalives) or at least 3 seconds (RFC 4271)",
                );
                None
            }
            _ => self.u16(f, &t.key("hold_time"), 0),
        }));
        let keepalive = optional(t.get("keepalive").map(|f| {
            let k = self.u16(f, &t.key("keepalive"), 0)?;
            if let Ok(Some(h)) = hold_time {
                if h != 0 && k >= h {
                    self.error(
                        f.span,
                        t.key("keepalive"),
                        format!("must be less than hold_time ({h}); usually hold_time / 3"),
                    );
                    return None;
                }
            }
            Some(k)
        }));
        let connect_retry = optional(
            t.get("connect_retry")
                .map(|f| self.u16(f, &t.key("connect_retry"), 1)),
        );
        let port = t
            .get("port")
            .map_or(Some(179), |f| self.u16(f, &t.key("port"), 1));
        let local_port = optional(t.get("local_port").map(|f| {
            let p = self.u16(f, &t.key("local_port"), 1)?;
            if !(host && passive == Some(true)) {
                self.error(
                    f.span,
                    t.key("local_port"),
                    "only used by passive sessions with `transport = \"host\"` (the host port to listen on)",
                );
                return None;
            }
            Some(p)
        }));
        if host && passive == Some(true) && t.get("local_port").is_none() {
            self.missing(
                &t,
                "local_port",
                "the host TCP port a passive `transport = \"host\"` session listens on",
            );
        }
        let policies = [
            ("dn42", Policy::Dn42),
            ("all", Policy::All),
            ("none", Policy::None),
        ];
        let import = t.get("import").map_or(Some(Policy::Dn42), |f| {
            self.choice(f, &t.key("import"), &policies)
        });
        let export = t.get("export").map_or(Some(Policy::Dn42), |f| {
            self.choice(f, &t.key("export"), &policies)
        });
        let import_limit = match t.get("import_limit") {
            None => Some(Some(DEFAULT_IMPORT_LIMIT)),
            Some(f) => self
                .integer(f, &t.key("import_limit"), 0, i64::from(u32::MAX))
                .map(|n| (n > 0).then_some(n as u32)),
        };
        let import_limit_action = match t.get("import_limit_action") {
            None => Some(LimitAction::Block),
            Some(f) => self.choice(
                f,
                &t.key("import_limit_action"),
                &[
                    ("warn", LimitAction::Warn),
                    ("block", LimitAction::Block),
                    ("restart", LimitAction::Restart),
                    ("disable", LimitAction::Disable),
                ],
            ),
        };
        let import_policy =
            self.policy_refs(&t, "import_policy", policy_names, families.as_deref());
        let export_policy =
            self.policy_refs(&t, "export_policy", policy_names, families.as_deref());
        let (name, name_span) = name?;
        let interface = match interface {
            Some((name, Some(_))) => Some(name),
            Some((_, None)) => return None,
            None => None,
        };
        Some((
            BgpConfig {
                import_policy: import_policy?,
                export_policy: export_policy?,
                name,
                neighbor: neighbor?,
                interface,
                remote_asn: remote_asn?,
                families: families?,
                extended_next_hop: extended_next_hop.ok()?,
                passive: passive?,
                hold_time: hold_time.ok()?,
                keepalive: keepalive.ok()?,
                connect_retry: connect_retry.ok()?,
                transport: transport?,
                port: port?,
                local_port: local_port.ok()?,
                import: import?,
                export: export?,
                import_limit: import_limit?,
                import_limit_action: import_limit_action?,
            },
            name_span,
            neighbor_field.and_then(|f| f.span.clone()),
        ))
    }

    /// `[dns]`: absent keys keep their defaults ([`DnsConfig::default`]).
    fn dns(&mut self, f: Field<'a>) -> Option<DnsConfig> {
        let t = self.table(f.node, "dns".into(), f.span)?;
        self.unknown_keys(&t, DNS_KEYS);
        let defaults = DnsConfig::default();
        let mut ok = true;
        let servers = match t.get("servers") {
            None => defaults.servers,
            Some(f) => {
                let key = t.key("servers");
                let mut out: Vec<SocketAddr> = Vec::new();
                for (s, span) in self.strings(f, &key) {
                    match self.dns_server(s, span, &key) {
                        Some(addr) if out.contains(&addr) => {
                            self.error(span, &key, format!("{addr} is listed twice"));
                            ok = false;
                        }
                        Some(addr) => out.push(addr),
                        None => ok = false,
                    }
                }
                ok &= matches!(f.node.value, Value::Array(_));
                out
            }
        };
        let domains = match t.get("domains") {
            None => defaults.domains,
            Some(f) => {
                let key = t.key("domains");
                let mut out: Vec<String> = Vec::new();
                for (s, span) in self.strings(f, &key) {
                    let d = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
                    let bad_label = d
                        .split('.')
                        .any(|l| l.is_empty() || l.len() > 63 || l.contains(char::is_whitespace));
                    if bad_label || d.len() > 253 {
                        self.error(
                            span,
                            &key,
                            format!(
                                "{s:?} is not a domain name (dot-separated labels of 1 to 63 characters, e.g. \"dn42\" or \"20.172.in-addr.arpa\")"
                            ),
                        );
                        ok = false;
                    } else if out.contains(&d) {
                        self.error(span, &key, format!("{s:?} is listed twice"));
                        ok = false;
                    } else {
                        out.push(d);
                    }
                }
                ok &= matches!(f.node.value, Value::Array(_));
                out
            }
        };
        if ok && servers.is_empty() && !domains.is_empty() {
            let span = t.get("servers").map_or(&t.span, |f| f.span);
            self.error(
                span,
                t.key("servers"),
                format!(
                    "is empty, but `domains` lists {} domain(s) to resolve through it: list a server, or set `domains = []` to leave every name to the host's resolver",
                    domains.len()
                ),
            );
            ok = false;
        }
        ok.then_some(DnsConfig { servers, domains })
    }

    /// One `[dns].servers` entry: `addr`, `addr:port` or `[v6]:port`, port 53 by default.
    fn dns_server(&mut self, s: &str, span: &Span, key: &str) -> Option<SocketAddr> {
        let addr = match (s.parse::<SocketAddr>(), s.parse::<IpAddr>()) {
            (Ok(a), _) => a,
            (_, Ok(ip)) => SocketAddr::new(ip, DNS_PORT),
            _ => {
                self.error(
                    span,
                    key,
                    format!(
                        "{s:?} is not an address (e.g. \"172.20.0.53\", \"10.0.0.53:5353\" or \"[fd42:d42:d42:54::1]:53\"; no host names)"
                    ),
                );
                return None;
            }
        };
        let ip = addr.ip();
        let problem = if addr.port() == 0 {
            Some("port 0 is not a port")
        } else if ip.is_unspecified() || ip.is_multicast() || ip == Ipv4Addr::BROADCAST {
            Some("cannot be a DNS server")
        } else if ip.is_loopback() {
            Some("is loopback: DNS servers are asked over the router's network (the DN42 side), not the host's")
        } else {
            None
        };
        if let Some(p) = problem {
            self.error(span, key, format!("{s:?} {p}"));
            return None;
        }
        Some(addr)
    }

    /// `[[forward]]` and `[[expose]]`, with the checks across them: unique names, no two
    /// listeners of a kind on the same protocol and address. `router_addrs`: the
    /// router's own addresses, when known. `None` = invalid (already reported).
    fn gateways(
        &mut self,
        top: &Table<'a>,
        router_addrs: Option<&[IpAddr]>,
    ) -> (Option<Vec<GatewayConfig>>, Option<Vec<GatewayConfig>>) {
        let mut names: HashMap<String, Span> = HashMap::new();
        let mut kinds = Vec::new();
        for kind in [Gateway::Forward, Gateway::Expose] {
            let mut ok = true;
            let mut out: Vec<(GatewayConfig, Span)> = Vec::new();
            for (i, node) in self.array_of_tables(top, kind.word()).iter().enumerate() {
                let Some((g, name_span, listen_span)) = self.gateway(kind, i, node, router_addrs)
                else {
                    ok = false;
                    continue;
                };
                let path = format!("{} {:?}", kind.word(), g.name);
                if let Some(first) = names.get(&g.name) {
                    let message = format!(
                        "duplicate name {:?} (first used on line {}); [[forward]] and [[expose]] names share one namespace",
                        g.name,
                        line_text(self.line(first))
                    );
                    self.error(&name_span, format!("{path}.name"), message);
                    ok = false;
                } else {
                    names.insert(g.name.clone(), name_span);
                }
                if let Some((other, first)) = out
                    .iter()
                    .find(|(o, _)| o.protocol == g.protocol && overlaps(o.listen, g.listen))
                {
                    let message = format!(
                        "{} {} is already taken by {} {:?} (line {})",
                        protocol_word(g.protocol),
                        g.listen,
                        kind.word(),
                        other.name,
                        line_text(self.line(first))
                    );
                    self.error(&listen_span, format!("{path}.listen"), message);
                    ok = false;
                    continue;
                }
                out.push((g, listen_span));
            }
            kinds.push(ok.then(|| out.into_iter().map(|(g, _)| g).collect()));
        }
        let exposes = kinds.pop().flatten();
        let forwards = kinds.pop().flatten();
        (forwards, exposes)
    }

    /// One gateway, with the spans of its name and its listen address.
    fn gateway(
        &mut self,
        kind: Gateway,
        i: usize,
        node: &'a Node,
        router_addrs: Option<&[IpAddr]>,
    ) -> Option<(GatewayConfig, Span, Span)> {
        let mut t = self.table(node, format!("{}[{i}]", kind.word()), &None)?;
        let name = match t.get("name") {
            Some(_) => self.name(&t, "").inspect(|(name, _)| {
                t.path = format!("{} {name:?}", kind.word());
            }),
            None => Some((format!("{}-{}", kind.word(), i + 1), t.span.clone())),
        };
        self.unknown_keys(&t, GATEWAY_KEYS);
        let protocol = match t.get("protocol") {
            None => Some(GatewayProtocol::Tcp),
            Some(f) => self.choice(
                f,
                &t.key("protocol"),
                &[("tcp", GatewayProtocol::Tcp), ("udp", GatewayProtocol::Udp)],
            ),
        };
        let (listen_what, connect_what) = match kind {
            Gateway::Forward => (
                "the host address to listen on, e.g. \"127.0.0.1:8080\"",
                "the address reached through the router, e.g. \"172.20.1.1:80\"",
            ),
            Gateway::Expose => (
                "a router address to listen on, e.g. \"172.20.0.1:80\" or \"0.0.0.0:80\"",
                "the service on the host, e.g. \"127.0.0.1:8080\"",
            ),
        };
        let listen = self.gateway_addr(&t, "listen", listen_what);
        let connect = self.gateway_addr(&t, "connect", connect_what);
        let listen = listen.and_then(|(addr, span)| {
            let ip = addr.ip();
            let problem = match kind {
                _ if ip.is_multicast() || ip == Ipv4Addr::BROADCAST => {
                    Some(format!("{ip} cannot be listened on"))
                }
                Gateway::Expose if ip.is_unspecified() => None,
                Gateway::Expose => router_addrs
                    .filter(|known| !known.contains(&ip))
                    .map(|known| {
                        let list: Vec<String> = known.iter().map(|a| a.to_string()).collect();
                        format!(
                            "{ip} is not one of the router's addresses ({}): an [[expose]] listens on the router's network; use one of them, or 0.0.0.0 / [::] for all",
                            if list.is_empty() { "it has none".to_owned() } else { list.join(", ") }
                        )
                    }),
                Gateway::Forward => None,
            };
            match problem {
                Some(p) => {
                    self.error(&span, t.key("listen"), p);
                    None
                }
                None => Some((addr, span)),
            }
        });
        let connect = connect.and_then(|(addr, span)| {
            let ip = addr.ip();
            let problem = if ip.is_unspecified() || ip.is_multicast() || ip == Ipv4Addr::BROADCAST {
                Some(format!("{ip} cannot be connected to"))
            } else if kind == Gateway::Forward && ip.is_loopback() {
                Some(format!(
                    "{ip} is loopback: a [[forward]] leads through the router to a DN42 address (for a service on this host, connect to it directly, or use [[expose]] the other way round)"
                ))
            } else {
                None
            };
            match problem {
                Some(p) => {
                    self.error(&span, t.key("connect"), p);
                    None
                }
                None => Some(addr),
            }
        });
        let (name, name_span) = name?;
        let (listen, listen_span) = listen?;
        Some((
            GatewayConfig {
                name,
                protocol: protocol?,
                listen,
                connect: connect?,
            },
            name_span,
            listen_span,
        ))
    }

    /// `[metrics]`: a host address to serve Prometheus on, not one a TCP `[[forward]]`
    /// (`forwards`, when valid) already listens on.
    fn metrics(
        &mut self,
        f: Field<'a>,
        forwards: Option<&[GatewayConfig]>,
    ) -> Option<MetricsConfig> {
        let listen = self.http_listen(
            f,
            "metrics",
            "the host address Prometheus scrapes, e.g. \"127.0.0.1:9324\"",
            forwards,
            None,
        )?;
        Some(MetricsConfig { listen })
    }

    /// `[looking_glass]`: a host address to serve the web page on, not one a TCP
    /// `[[forward]]` or `[metrics]` (when valid) already listens on.
    fn looking_glass(
        &mut self,
        f: Field<'a>,
        forwards: Option<&[GatewayConfig]>,
        metrics: Option<MetricsConfig>,
    ) -> Option<LookingGlassConfig> {
        let listen = self.http_listen(
            f,
            "looking_glass",
            "the host address of the looking glass page, e.g. \"127.0.0.1:8042\"",
            forwards,
            metrics.map(|m| m.listen),
        )?;
        Some(LookingGlassConfig { listen })
    }

    /// The `listen` of a plain HTTP section (`section`): a host address that can be
    /// listened on, not one a TCP `[[forward]]` or `other` (`[metrics]`) is on.
    fn http_listen(
        &mut self,
        f: Field<'a>,
        section: &str,
        example: &str,
        forwards: Option<&[GatewayConfig]>,
        other: Option<SocketAddr>,
    ) -> Option<SocketAddr> {
        let t = self.table(f.node, section.into(), f.span)?;
        self.unknown_keys(&t, METRICS_KEYS);
        let (listen, span) = self.gateway_addr(&t, "listen", example)?;
        let ip = listen.ip();
        if ip.is_multicast() || ip == Ipv4Addr::BROADCAST {
            self.error(
                &span,
                t.key("listen"),
                format!("{ip} cannot be listened on"),
            );
            return None;
        }
        let taken = forwards
            .unwrap_or_default()
            .iter()
            .find(|g| g.protocol == GatewayProtocol::Tcp && overlaps(g.listen, listen));
        if let Some(g) = taken {
            self.error(
                &span,
                t.key("listen"),
                format!("tcp {listen} is already taken by forward {:?}", g.name),
            );
            return None;
        }
        if other.is_some_and(|o| overlaps(o, listen)) {
            self.error(
                &span,
                t.key("listen"),
                format!("tcp {listen} is already taken by [metrics]"),
            );
            return None;
        }
        Some(listen)
    }

    /// A required `addr:port` (`[v6]:port`) with a port other than 0, and its span.
    fn gateway_addr(
        &mut self,
        t: &Table<'a>,
        name: &str,
        what: &str,
    ) -> Option<(SocketAddr, Span)> {
        let Some(f) = t.get(name) else {
            self.missing(t, name, what);
            return None;
        };
        let key = t.key(name);
        let s = self.string(f, &key)?;
        let addr = match s.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                let hint = if s.parse::<IpAddr>().is_ok() {
                    "the port is missing"
                } else {
                    "write addr:port, an IPv6 address as [addr]:port; no host names"
                };
                self.error(
                    f.span,
                    key,
                    format!("{s:?} is not an address with a port ({hint})"),
                );
                return None;
            }
        };
        if addr.port() == 0 {
            self.error(f.span, key, format!("{s:?}: port 0 is not a port"));
            return None;
        }
        Some((addr, f.span.clone()))
    }

    /// One of a fixed set of words.
    fn choice<T: Copy>(&mut self, f: Field<'a>, key: &str, options: &[(&str, T)]) -> Option<T> {
        let s = self.string(f, key)?;
        if let Some((_, v)) = options.iter().find(|(name, _)| *name == s) {
            return Some(*v);
        }
        let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
        self.error(
            f.span,
            key,
            format!("unknown value {s:?}: expected one of {}", names.join(", ")),
        );
        None
    }

    /// An integer in a DN42 community range; `what` explains the values.
    fn dn42_value(
        &mut self,
        f: Field<'a>,
        key: &str,
        range: RangeInclusive<u16>,
        what: &str,
    ) -> Option<u16> {
        let (min, max) = (*range.start(), *range.end());
        match f.node.value {
            Value::Integer(i) if (i64::from(min)..=i64::from(max)).contains(&i) => {
                u16::try_from(i).ok()
            }
            Value::Integer(i) => {
                self.error(
                    f.span,
                    key,
                    format!("{i} is out of range: must be {min}..={max} ({what})"),
                );
                None
            }
            _ => {
                self.wrong_type(f, key, "an integer");
                None
            }
        }
    }

    /// `[roa]`: sources of ROAs and what validation rejects.
    fn roa(&mut self, f: Field<'a>) -> Option<RoaConfig> {
        let t = self.table(f.node, "roa".into(), f.span)?;
        self.unknown_keys(&t, ROA_KEYS);
        let errors_before = self.errors.len();
        let mut files: Vec<PathBuf> = Vec::new();
        if let Some(f) = t.get("files") {
            let key = t.key("files");
            for (s, span) in self.strings(f, &key) {
                if s.trim().is_empty() {
                    self.error(span, &key, "a file name must not be empty");
                    continue;
                }
                let path = self.path(s);
                if files.contains(&path) {
                    self.error(span, &key, format!("{s:?} is listed twice"));
                } else {
                    files.push(path);
                }
            }
        }
        let mut rtr: Vec<RtrConfig> = Vec::new();
        if let Some(f) = t.get("rtr") {
            let key = t.key("rtr");
            for (s, span) in self.strings(f, &key) {
                let Some((addr, text)) = self.host_port(s, span, &key, "RTR server") else {
                    continue;
                };
                if rtr.iter().any(|r| r.text == text || r.addr == addr) {
                    self.error(span, &key, format!("{text:?} is listed twice"));
                } else {
                    rtr.push(RtrConfig { text, addr });
                }
            }
        }
        if files.is_empty() && rtr.is_empty() && self.errors.len() == errors_before {
            self.error(
                &t.span,
                "roa",
                "has no ROA source: set `files` (ROA files: BIRD include, StayRTR JSON or SLURM) and/or `rtr` (RTR servers, e.g. [\"127.0.0.1:8282\"] for StayRTR)",
            );
        }
        let check_interval = t
            .get("check_interval")
            .map_or(Some(DEFAULT_ROA_CHECK_INTERVAL), |f| {
                self.u16(f, &t.key("check_interval"), 1)
            });
        let rejects = [("reject", true), ("accept", false)];
        let reject_invalid = t
            .get("invalid")
            .map_or(Some(true), |f| self.choice(f, &t.key("invalid"), &rejects));
        let reject_unknown = t
            .get("unknown")
            .map_or(Some(true), |f| self.choice(f, &t.key("unknown"), &rejects));
        Some(RoaConfig {
            files,
            rtr,
            check_interval: check_interval?,
            reject_invalid: reject_invalid?,
            reject_unknown: reject_unknown?,
        })
    }

    /// `[[policy]]`, in file order with unique names (`None` if any has a problem), and
    /// the names of all of them, also those with problems (so that sessions naming
    /// them get no second error).
    fn policies(
        &mut self,
        top: &Table<'a>,
    ) -> (Option<Vec<Arc<rr_policy::Policy>>>, HashSet<String>) {
        let mut out = Some(Vec::new());
        let mut seen: HashMap<String, Span> = HashMap::new();
        for (i, node) in self.array_of_tables(top, "policy").iter().enumerate() {
            let (policy, name) = self.policy(i, node);
            if let Some((name, span)) = name {
                if let Some(first) = seen.get(&name) {
                    let message = format!(
                        "duplicate policy name {name:?} (first used on line {})",
                        line_text(self.line(first))
                    );
                    self.error(&span, format!("policy {name:?}.name"), message);
                    out = None;
                } else {
                    seen.insert(name, span);
                }
            }
            match (policy, out.as_mut()) {
                (Some(p), Some(list)) => list.push(Arc::new(p)),
                (None, _) => out = None,
                (Some(_), None) => {}
            }
        }
        (out, seen.into_keys().collect())
    }

    /// One `[[policy]]` (if valid), and its name with its span (if it has one).
    fn policy(
        &mut self,
        i: usize,
        node: &'a Node,
    ) -> (Option<rr_policy::Policy>, Option<(String, Span)>) {
        let Some(mut t) = self.table(node, format!("policy[{i}]"), &None) else {
            return (None, None);
        };
        let name = self.name(&t, "what sessions refer to it by");
        if let Some((name, _)) = &name {
            t.path = format!("policy {name:?}");
        }
        self.unknown_keys(&t, POLICY_KEYS);
        let default = t.get("default").map_or(Some(Verdict::Accept), |f| {
            self.choice(f, &t.key("default"), &VERDICTS)
        });
        let mut rules = Some(Vec::new());
        let header = "policy.rule";
        for (j, node) in self.tables_in(&t, "rule", header).iter().enumerate() {
            match (self.rule(&t.path, j, node), rules.as_mut()) {
                (Some(r), Some(list)) => list.push(r),
                (None, _) => rules = None,
                (Some(_), None) => {}
            }
        }
        let policy = (|| {
            Some(rr_policy::Policy {
                name: name.clone()?.0,
                rules: rules?,
                default: default?,
            })
        })();
        (policy, name)
    }

    /// One `[[policy.rule]]`: matches in the order of [`RULE_KEYS`], then actions in a
    /// fixed order (local-pref, MED, community deletes before adds, prepend).
    fn rule(&mut self, policy_path: &str, j: usize, node: &'a Node) -> Option<Rule> {
        let t = self.table(node, format!("{policy_path}.rule[{j}]"), &None)?;
        self.unknown_keys(&t, RULE_KEYS);
        let errors_before = self.errors.len();
        let mut matches = Vec::new();
        let mut actions = Vec::new();
        let field = |name: &str| t.get(name).map(|f| (f, t.key(name)));

        if let Some((f, key)) = field("family") {
            let families = [
                ("ipv4", rr_policy::Family::Ipv4Unicast),
                ("ipv6", rr_policy::Family::Ipv6Unicast),
            ];
            matches.extend(self.choice(f, &key, &families).map(Match::Family));
        }
        if let Some((f, key)) = field("prefix") {
            let v = self.list(f, &key, "prefix patterns", |s| s.parse());
            matches.extend(v.map(Match::Prefix));
        }
        if let Some((f, key)) = field("origin") {
            matches.extend(self.asns(f, &key).map(Match::Origin));
        }
        if let Some((f, key)) = field("as_path_contains") {
            matches.extend(self.asns(f, &key).map(Match::PathContains));
        }
        if let Some((f, key)) = field("neighbor_as") {
            matches.extend(self.asns(f, &key).map(Match::NeighborAs));
        }
        if let Some((f, key)) = field("as_path_length") {
            let range = match &f.node.value {
                Value::Integer(_) => self
                    .integer(f, &key, 0, u32::MAX.into())
                    .map(|n| rr_policy::Range::single(n as u32)),
                Value::String(s) => match s.parse::<rr_policy::Range>() {
                    Ok(r) => Some(r),
                    Err(e) => {
                        self.error(f.span, &key, e.to_string());
                        None
                    }
                },
                _ => {
                    self.wrong_type(f, &key, "an integer or a range like \"..10\" or \"2..5\"");
                    None
                }
            };
            matches.extend(range.map(Match::PathLen));
        }
        if let Some((f, key)) = field("community") {
            let v = self.list(f, &key, "community patterns", |s| s.parse());
            matches.extend(v.map(Match::Community));
        }
        if let Some((f, key)) = field("large_community") {
            let v = self.list(f, &key, "large community patterns", |s| s.parse());
            matches.extend(v.map(Match::LargeCommunity));
        }
        if let Some((f, key)) = field("roa") {
            let v = self.list(f, &key, "ROA states", |s| match s {
                "valid" => Ok(Validity::Valid),
                "invalid" => Ok(Validity::Invalid),
                "unknown" => Ok(Validity::NotFound),
                _ => Err(PatternError {
                    text: s.to_owned(),
                    reason: "expected \"valid\", \"invalid\" or \"unknown\" (RFC 6811 NotFound)"
                        .to_owned(),
                }),
            });
            matches.extend(v.map(Match::Roa));
        }

        if let Some((f, key)) = field("set_local_pref") {
            let v = self.integer(f, &key, 0, u32::MAX.into());
            actions.extend(v.map(|n| Action::LocalPref(n as u32)));
        }
        if let Some((f, key)) = field("set_med") {
            let v = self.integer(f, &key, 0, u32::MAX.into());
            actions.extend(v.map(|n| Action::Med(n as u32)));
        }
        if let Some((f, key)) = field("delete_community") {
            let v = self.list(f, &key, "community patterns", |s| s.parse());
            actions.extend(v.map(Action::DeleteCommunity));
        }
        if let Some((f, key)) = field("add_community") {
            let v = self.list(f, &key, "communities", rr_policy::parse_community);
            actions.extend(v.map(Action::AddCommunity));
        }
        if let Some((f, key)) = field("delete_large_community") {
            let v = self.list(f, &key, "large community patterns", |s| s.parse());
            actions.extend(v.map(Action::DeleteLargeCommunity));
        }
        if let Some((f, key)) = field("add_large_community") {
            let v = self.list(
                f,
                &key,
                "large communities",
                rr_policy::parse_large_community,
            );
            actions.extend(v.map(Action::AddLargeCommunity));
        }
        let prepend_asn = field("prepend_asn").and_then(|(f, key)| self.asn(f, &key));
        match (field("prepend"), field("prepend_asn")) {
            (Some((f, key)), _) => {
                let times = self.integer(f, &key, 1, u8::MAX.into());
                actions.extend(times.map(|n| Action::Prepend {
                    asn: prepend_asn,
                    times: n as u8,
                }));
            }
            (None, Some((f, key))) => self.error(
                f.span,
                key,
                "needs `prepend` (how many times to prepend this AS)",
            ),
            (None, None) => {}
        }
        let verdict = field("action").and_then(|(f, key)| self.choice(f, &key, &VERDICTS));

        if t.entries.is_empty() {
            self.error(
                &t.span,
                t.path.clone(),
                "an empty rule: give it matches (e.g. `prefix`), actions (e.g. `set_local_pref`) and/or `action = \"accept\"` / `\"reject\"`",
            );
        }
        (self.errors.len() == errors_before).then_some(Rule {
            matches,
            actions,
            verdict,
        })
    }

    /// A non-empty array of strings, each parsed by `parse`; `None` (problems reported)
    /// if any is wrong.
    fn list<T>(
        &mut self,
        f: Field<'a>,
        key: &str,
        what: &str,
        parse: impl Fn(&str) -> Result<T, PatternError>,
    ) -> Option<Vec<T>> {
        let Value::Array(items) = &f.node.value else {
            self.wrong_type(f, key, &format!("an array of {what} (strings)"));
            return None;
        };
        if items.is_empty() {
            self.error(
                f.span,
                key,
                "is empty: list at least one, or leave the key out",
            );
            return None;
        }
        let mut out = Vec::new();
        for (s, span) in self.strings(f, key) {
            match parse(s) {
                Ok(v) => out.push(v),
                Err(e) => self.error(span, key, e.to_string()),
            }
        }
        (out.len() == items.len()).then_some(out)
    }

    /// A non-empty array of AS numbers.
    fn asns(&mut self, f: Field<'a>, key: &str) -> Option<Vec<u32>> {
        let Value::Array(items) = &f.node.value else {
            self.wrong_type(f, key, "an array of AS numbers");
            return None;
        };
        if items.is_empty() {
            self.error(
                f.span,
                key,
                "is empty: list at least one, or leave the key out",
            );
            return None;
        }
        let mut out = Vec::new();
        for item in items {
            let span = if item.span.is_some() {
                &item.span
            } else {
                f.span
            };
            out.extend(self.asn(Field { node: item, span }, key));
        }
        (out.len() == items.len()).then_some(out)
    }

    /// `BASE`, `BASE_ipv4`, `BASE_ipv6` of a session: names of existing policies, per
    /// family (index 0 IPv4, 1 IPv6; the per-family key wins). `families`: the
    /// session's, when known.
    fn policy_refs(
        &mut self,
        t: &Table<'a>,
        base: &str,
        names: &HashSet<String>,
        families: Option<&[Family]>,
    ) -> Option<[Option<String>; 2]> {
        let mut out: [Option<String>; 2] = [None, None];
        let mut ok = true;
        let keys = [
            (String::from(base), None),
            (format!("{base}_ipv4"), Some(Family::Ipv4)),
            (format!("{base}_ipv6"), Some(Family::Ipv6)),
        ];
        for (name, family) in keys {
            let Some(f) = t.get(&name) else {
                continue;
            };
            let key = t.key(&name);
            let Some(s) = self.string(f, &key) else {
                ok = false;
                continue;
            };
            if !names.contains(s) {
                let known: Vec<&str> = names.iter().map(String::as_str).collect();
                let mut message = format!("no [[policy]] is named {s:?}");
                if let Some(close) = suggest(s, &known) {
                    message.push_str(&format!("; did you mean {close:?}?"));
                }
                self.error(f.span, key, message);
                ok = false;
                continue;
            }
            match family {
                None => out = [Some(s.to_owned()), Some(s.to_owned())],
                Some(fam) => {
                    if families.is_some_and(|list| !list.contains(&fam)) {
                        self.error(
                            f.span,
                            key,
                            format!("this session does not carry {fam} (see `families`)"),
                        );
                        ok = false;
                    }
                    out[usize::from(fam == Family::Ipv6)] = Some(s.to_owned());
                }
            }
        }
        ok.then_some(out)
    }

    fn families(&mut self, f: Field<'a>, key: &str) -> Option<Vec<Family>> {
        let items = self.strings(f, key);
        let mut out = Vec::new();
        let mut ok = true;
        for (s, span) in items {
            let family = match s {
                "ipv4" => Family::Ipv4,
                "ipv6" => Family::Ipv6,
                _ => {
                    self.error(
                        span,
                        key,
                        format!("unknown family {s:?}: expected \"ipv4\" or \"ipv6\""),
                    );
                    ok = false;
                    continue;
                }
            };
            if out.contains(&family) {
                self.error(span, key, format!("{s:?} is listed twice"));
                ok = false;
            } else {
                out.push(family);
            }
        }
        if ok && out.is_empty() {
            if matches!(f.node.value, Value::Array(_)) {
                self.error(
                    f.span,
                    key,
                    "must name at least one family (\"ipv4\", \"ipv6\")",
                );
            }
            return None;
        }
        ok.then_some(out)
    }
}

/// `action` and `default` words.
const VERDICTS: [(&str, Verdict); 2] = [("accept", Verdict::Accept), ("reject", Verdict::Reject)];

/// The two kinds of gateway.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gateway {
    Forward,
    Expose,
}

impl Gateway {
    fn word(self) -> &'static str {
        match self {
            Gateway::Forward => "forward",
            Gateway::Expose => "expose",
        }
    }
}

fn protocol_word(p: GatewayProtocol) -> &'static str {
    match p {
        GatewayProtocol::Tcp => "tcp",
        GatewayProtocol::Udp => "udp",
    }
}

/// Two listen addresses that cannot both be bound: same port, and the same address, or
/// a wildcard covering the other (`0.0.0.0` covers IPv4; `[::]` covers both, as a
/// dual-stack socket does on Linux by default).
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    let covers =
        |w: SocketAddr, o: SocketAddr| w.ip().is_unspecified() && (w.is_ipv6() || o.is_ipv4());
    a.port() == b.port() && (a.ip() == b.ip() || covers(a, b) || covers(b, a))
}

/// An optional setting: absent → `Ok(None)`, valid → `Ok(Some(v))`, invalid → `Err(())`.
fn optional<T>(read: Option<Option<T>>) -> Result<Option<T>, ()> {
    match read {
        None => Ok(None),
        Some(Some(v)) => Ok(Some(v)),
        Some(None) => Err(()),
    }
}

fn line_text(line: Option<usize>) -> String {
    line.map_or_else(|| "?".to_owned(), |l| l.to_string())
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The closest allowed name to a misspelt one, if it is close.
fn suggest<'n>(name: &str, allowed: &[&'n str]) -> Option<&'n str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let n = norm(name);
    if let Some(exact) = allowed.iter().find(|a| norm(a) == n) {
        return Some(exact);
    }
    allowed
        .iter()
        .map(|a| (levenshtein(&n, &norm(a)), *a))
        .filter(|&(d, a)| d <= 2 && d < a.len().min(n.len()))
        .min_by_key(|&(d, _)| d)
        .map(|(_, a)| a)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("listen-port", INTERFACE_KEYS), Some("listen_port"));
        assert_eq!(suggest("Listen_Port", INTERFACE_KEYS), Some("listen_port"));
        assert_eq!(
            suggest("peer_publickey", INTERFACE_KEYS),
            Some("peer_public_key")
        );
        assert_eq!(suggest("interfaces", TOP_KEYS), Some("interface"));
        assert_eq!(suggest("zzz", INTERFACE_KEYS), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }

    #[test]
    fn link_local() {
        assert!(is_link_local("fe80::a".parse().unwrap()));
        assert!(is_link_local("febf::1".parse().unwrap()));
        assert!(!is_link_local("fec0::1".parse().unwrap()));
        assert!(is_link_local("169.254.1.1".parse().unwrap()));
        assert!(!is_link_local("172.20.0.1".parse().unwrap()));
    }
}
