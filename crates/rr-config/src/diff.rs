//! What changed between two validated configs, for a reload.
//!
//! What it is: [`diff`], a pure comparison (sans-IO) of the config a node runs with and
//! the one it was asked to reload. BGP sessions are matched by name and sorted into
//! kept, re-evaluated (only their import/export policies or import limit changed, or a
//! `[[policy]]` they use: the route table applies that without a session reset, like
//! BIRD's `reload`), restarted (anything else of the session changed), added and
//! removed. Tunnels are matched by name too: kept, updated (addresses, MTU, link
//! communities, endpoint or listen port: the WireGuard session goes on), restarted
//! (keys, preshared key, keepalive: a new WireGuard session), added and removed; a
//! session over a tunnel whose keys or addresses change restarts (another peer, or
//! another local address), one over a tunnel whose link communities change is
//! re-evaluated; the others keep their TCP connection across a new handshake. `[[route]]`, `[roa]`, `[router]
//! announce` / `region` / `country`, `[metrics]` and `[looking_glass]` changes are
//! flagged. Everything a running node cannot change in place yet (the rest of
//! `[router]`, `[dns]`, gateways and any other section) is listed in
//! [`ConfigDiff::needs_restart`].
//!
//! What it is not: the reload itself (the node applies the diff), nor a validator (both
//! configs are already valid).

use crate::{BgpConfig, Config, InterfaceConfig, RouterConfig};

/// How a reload treats one BGP session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAction {
    /// Nothing of it changed: left alone.
    Kept,
    /// Only its policies or import limit changed: routes evaluated again, no reset.
    Reevaluate,
    /// Something else changed: closed with a Cease and started with the new settings.
    Restart,
    /// New in the config: started.
    Added,
    /// Gone from the config: closed with a Cease.
    Removed,
}

/// One BGP session in a [`ConfigDiff`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionChange {
    pub name: String,
    pub action: SessionAction,
    /// What changed, as the keys are written (`import_policy`, `hold_time`,
    /// `policy "x"`); empty for kept, added and removed sessions.
    pub changed: Vec<String>,
}

/// How a reload treats one tunnel (`[[interface]]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelAction {
    /// Nothing of it changed (its position in the file does not count).
    Kept,
    /// Its addresses, MTU, link communities, endpoint or listen port changed: applied
    /// with the WireGuard session and counters kept (a new endpoint is where packets
    /// go from now on).
    Updated,
    /// Its keys, preshared key or keepalive changed: a new WireGuard session.
    Restart,
    Added,
    Removed,
}

/// One tunnel in a [`ConfigDiff`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelChange {
    pub name: String,
    pub action: TunnelAction,
    /// The changed keys as written (`mtu`, `peer_public_key`); empty unless updated or
    /// restarted.
    pub changed: Vec<String>,
}

/// What a reload from `old` to `new` has to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigDiff {
    /// Changes a running node cannot apply; when not empty the reload is refused whole.
    pub needs_restart: Vec<String>,
    /// Every session of both configs: those of `new` in its order, then the removed ones.
    pub sessions: Vec<SessionChange>,
    /// Every tunnel of both configs, in the same order as `sessions`.
    pub tunnels: Vec<TunnelChange>,
    /// `[[route]]` differs: the static routes are replaced.
    pub routes_changed: bool,
    /// `[roa]` differs (sources, rules, check interval, or added / removed).
    pub roa_changed: bool,
    /// `[router] announce`, `region` or `country` differs: our prefixes and the
    /// communities they carry are replaced.
    pub announce_changed: bool,
    /// `[metrics]` or `[looking_glass]` differs: the server moves, starts or stops.
    pub http_changed: bool,
}

impl ConfigDiff {
    /// True when the reload changes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.needs_restart.is_empty()
            && !self.routes_changed
            && !self.roa_changed
            && !self.announce_changed
            && !self.http_changed
            && self
                .sessions
                .iter()
                .all(|s| s.action == SessionAction::Kept)
            && self.tunnels.iter().all(|t| t.action == TunnelAction::Kept)
    }

    /// The change of tunnel `name`, if it is in either config.
    pub fn tunnel(&self, name: &str) -> Option<&TunnelChange> {
        self.tunnels.iter().find(|t| t.name == name)
    }
}

/// Compares the running config `old` with `new`.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let tunnels = tunnel_changes(old, new);
    // Connected routes follow the tunnels' addresses; a static route through a tunnel
    // added or removed (the same name again is a new interface) is set again.
    let routes_changed = old.routes != new.routes
        || tunnels.iter().any(|t| {
            let named = |c: &Config| {
                c.routes.iter().any(|r| r.interface == t.name)
                    || c.interface(&t.name)
                        .is_some_and(|(_, i)| i.addresses.iter().any(is_connected))
            };
            matches!(t.action, TunnelAction::Added | TunnelAction::Removed)
                && (named(old) || named(new))
                || t.changed.iter().any(|c| c == "addresses")
        });
    let mut d = ConfigDiff {
        needs_restart: restart_reasons(old, new),
        routes_changed,
        roa_changed: !same_roa(old.roa.as_ref(), new.roa.as_ref()),
        announce_changed: sorted(&old.router.announce) != sorted(&new.router.announce)
            || old.router.region != new.router.region
            || old.router.country != new.router.country,
        http_changed: old.metrics != new.metrics || old.looking_glass != new.looking_glass,
        sessions: Vec::new(),
        tunnels,
    };
    let changed_policies: Vec<&str> = old
        .policies
        .iter()
        .map(|p| p.name.as_str())
        .chain(new.policies.iter().map(|p| p.name.as_str()))
        .filter(|name| old.policy(name) != new.policy(name))
        .collect();
    for b in &new.bgp {
        let change = match old.bgp.iter().find(|o| o.name == b.name) {
            None => SessionChange {
                name: b.name.clone(),
                action: SessionAction::Added,
                changed: Vec::new(),
            },
            Some(o) => session_change(o, b, &changed_policies, &d.tunnels),
        };
        d.sessions.push(change);
    }
    for o in &old.bgp {
        if !new.bgp.iter().any(|b| b.name == o.name) {
            d.sessions.push(SessionChange {
                name: o.name.clone(),
                action: SessionAction::Removed,
                changed: Vec::new(),
            });
        }
    }
    d
}

fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Two `[roa]` sections the same but for the order of their sources.
fn same_roa(a: Option<&crate::RoaConfig>, b: Option<&crate::RoaConfig>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            // Every field is named: one added later fails to compile here.
            let crate::RoaConfig {
                files: _,
                rtr: _,
                check_interval: _,
                reject_invalid: _,
                reject_unknown: _,
            } = a;
            let rtr = |c: &crate::RoaConfig| {
                sorted(
                    &c.rtr
                        .iter()
                        .map(|r| (r.text.clone(), r.addr))
                        .collect::<Vec<_>>(),
                )
            };
            sorted(&a.files) == sorted(&b.files)
                && rtr(a) == rtr(b)
                && a.check_interval == b.check_interval
                && a.reject_invalid == b.reject_invalid
                && a.reject_unknown == b.reject_unknown
        }
        _ => false,
    }
}

fn session_change(
    o: &BgpConfig,
    b: &BgpConfig,
    changed_policies: &[&str],
    tunnels: &[TunnelChange],
) -> SessionChange {
    let mut restart = Vec::new();
    let mut reeval = Vec::new();
    // Its tunnel (same name in both, or `interface` below differs and restarts it).
    if let Some(t) = b
        .interface
        .as_deref()
        .and_then(|n| tunnels.iter().find(|t| t.name == n))
    {
        let what = |keys: &[String]| format!("interface \"{}\" ({})", t.name, keys.join(", "));
        let link: Vec<String> = t
            .changed
            .iter()
            .filter(|c| LINK_KEYS.contains(&c.as_str()))
            .cloned()
            .collect();
        let another_peer_or_address = t
            .changed
            .iter()
            .any(|c| matches!(c.as_str(), "private_key" | "peer_public_key" | "addresses"));
        if another_peer_or_address {
            restart.push(what(&t.changed));
        } else if !link.is_empty() {
            reeval.push(what(&link));
        }
    }
    macro_rules! field {
        ($list:ident, $($f:ident),*) => {
            $(if o.$f != b.$f {
                $list.push(stringify!($f).to_string());
            })*
        };
    }
    field!(
        restart,
        neighbor,
        interface,
        remote_asn,
        families,
        extended_next_hop,
        passive,
        hold_time,
        keepalive,
        connect_retry,
        transport,
        port,
        local_port
    );
    field!(
        reeval,
        import,
        export,
        import_limit,
        import_limit_action,
        import_policy,
        export_policy
    );
    for name in b.import_policy.iter().chain(&b.export_policy).flatten() {
        let what = format!("policy \"{name}\"");
        if changed_policies.contains(&name.as_str()) && !reeval.contains(&what) {
            reeval.push(what);
        }
    }
    let (action, changed) = if !restart.is_empty() {
        restart.extend(reeval);
        (SessionAction::Restart, restart)
    } else if !reeval.is_empty() {
        (SessionAction::Reevaluate, reeval)
    } else {
        (SessionAction::Kept, Vec::new())
    };
    SessionChange {
        name: b.name.clone(),
        action,
        changed,
    }
}

/// Whether an interface address brings a connected route (wider than a host, not
/// link-local), as the node's FIB has it.
fn is_connected(a: &ipnet::IpNet) -> bool {
    let ll = matches!(a.addr(), std::net::IpAddr::V6(v6) if v6.is_unicast_link_local());
    a.prefix_len() < a.max_prefix_len() && !ll
}

/// The link-community keys of an interface (a change re-evaluates its sessions).
const LINK_KEYS: [&str; 3] = ["latency", "bandwidth", "crypto"];

/// Tunnels matched by name: those of `new` in its order, then the removed ones.
fn tunnel_changes(old: &Config, new: &Config) -> Vec<TunnelChange> {
    let mut out: Vec<TunnelChange> = new
        .interfaces
        .iter()
        .map(|i| match old.interfaces.iter().find(|o| o.name == i.name) {
            None => TunnelChange {
                name: i.name.clone(),
                action: TunnelAction::Added,
                changed: Vec::new(),
            },
            Some(o) => tunnel_change(o, i),
        })
        .collect();
    for o in &old.interfaces {
        if !new.interfaces.iter().any(|i| i.name == o.name) {
            out.push(TunnelChange {
                name: o.name.clone(),
                action: TunnelAction::Removed,
                changed: Vec::new(),
            });
        }
    }
    out
}

fn tunnel_change(o: &InterfaceConfig, i: &InterfaceConfig) -> TunnelChange {
    // Every field is named below: one added to InterfaceConfig later fails to compile
    // here until it is sorted into one of the lists.
    let InterfaceConfig {
        name: _,
        private_key: _,
        listen_port: _,
        peer_public_key: _,
        endpoint: _,
        endpoint_text: _,
        preshared_key: _,
        persistent_keepalive: _,
        mtu: _,
        addresses: _,
        link: _,
    } = i;
    let mut wireguard = Vec::new();
    let mut update = Vec::new();
    macro_rules! field {
        ($list:ident, $($f:ident),*) => {
            $(if o.$f != i.$f {
                $list.push(stringify!($f).to_string());
            })*
        };
    }
    field!(
        wireguard,
        private_key,
        peer_public_key,
        preshared_key,
        persistent_keepalive
    );
    // A name resolving elsewhere is not a change (WireGuard follows the peer anyway).
    let same_endpoint = if o.endpoint_text.is_some() {
        o.endpoint_text == i.endpoint_text
    } else {
        i.endpoint_text.is_none() && o.endpoint == i.endpoint
    };
    if !same_endpoint {
        update.push("endpoint".into());
    }
    field!(update, listen_port, mtu, addresses);
    for (key, changed) in LINK_KEYS.iter().zip([
        o.link.latency != i.link.latency,
        o.link.bandwidth != i.link.bandwidth,
        o.link.crypto != i.link.crypto,
    ]) {
        if changed {
            update.push(key.to_string());
        }
    }
    let action = if !wireguard.is_empty() {
        TunnelAction::Restart
    } else if !update.is_empty() {
        TunnelAction::Updated
    } else {
        TunnelAction::Kept
    };
    wireguard.extend(update);
    TunnelChange {
        name: i.name.clone(),
        action,
        changed: wireguard,
    }
}

fn restart_reasons(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let (ro, rn) = (&old.router, &new.router);
    macro_rules! router {
        ($($f:ident),*) => {
            $(if ro.$f != rn.$f {
                out.push(format!("[router] {}", stringify!($f)));
            })*
        };
    }
    // (announce, region and country are applied live.)
    router!(asn, router_id, addresses, control_socket);
    // Any field added to [router] later is covered here.
    let known = RouterConfig {
        asn: rn.asn,
        router_id: rn.router_id,
        addresses: rn.addresses.clone(),
        announce: ro.announce.clone(),
        control_socket: rn.control_socket.clone(),
        region: ro.region,
        country: ro.country,
    };
    if out.is_empty() && known != *ro {
        out.push("[router]".into());
    }
    if old.dns != new.dns {
        out.push("[dns]".into());
    }
    if old.forwards != new.forwards {
        out.push("[[forward]]".into());
    }
    if old.exposes != new.exposes {
        out.push("[[expose]]".into());
    }
    // Whatever else differs (sections this comparison does not name yet, such as ones
    // added after it was written) needs a restart too: compare the rest whole.
    let mut rest_old = old.clone();
    let mut rest_new = new.clone();
    for c in [&mut rest_old, &mut rest_new] {
        c.bgp.clear();
        c.routes.clear();
        c.policies.clear();
        c.source = None;
        c.router = old.router.clone();
        c.interfaces.clear();
        c.dns = old.dns.clone();
        c.forwards.clear();
        c.exposes.clear();
        c.roa = None;
        c.metrics = None;
        c.looking_glass = None;
    }
    if rest_old != rest_new {
        out.push("other settings outside [[bgp]], [[policy]] and [[route]]".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const KEY_A: &str = "kFnODq0EwAnbxP2/m2r4y5Nc6bjrSgrNV2jh0nVlqV0=";
    const KEY_B: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";

    fn config(extra: &str) -> Config {
        let text = format!(
            r#"
[router]
asn = 4242420001
addresses = ["172.20.0.1/32", "fd00:1::1/128"]

[[interface]]
name = "wg0"
private_key = "{KEY_A}"
peer_public_key = "{KEY_B}"
addresses = ["fe80::1/64"]

{extra}
"#
        );
        Config::parse(&text, "test.toml", Path::new("/nonexistent"))
            .unwrap_or_else(|e| panic!("test config invalid: {e}"))
    }

    const SESSIONS: &str = r#"
[[policy]]
name = "p"
default = "accept"

[[bgp]]
name = "a"
neighbor = "fe80::2"
interface = "wg0"
remote_asn = 4242420002
import_policy = "p"

[[bgp]]
name = "b"
neighbor = "fe80::3"
interface = "wg0"
remote_asn = 4242420003
"#;

    fn action(d: &ConfigDiff, name: &str) -> (SessionAction, Vec<String>) {
        let s = d
            .sessions
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no session {name} in {d:?}"));
        (s.action, s.changed.clone())
    }

    #[test]
    fn same_config_is_empty() {
        let d = diff(&config(SESSIONS), &config(SESSIONS));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(d.sessions.len(), 2);
    }

    #[test]
    fn policy_change_reevaluates_only_its_users() {
        let new = SESSIONS.replace("default = \"accept\"", "default = \"reject\"");
        let d = diff(&config(SESSIONS), &config(&new));
        assert!(d.needs_restart.is_empty(), "{d:?}");
        assert_eq!(
            action(&d, "a"),
            (SessionAction::Reevaluate, vec!["policy \"p\"".to_string()])
        );
        assert_eq!(action(&d, "b"), (SessionAction::Kept, vec![]));
        assert!(!d.is_empty());
    }

    #[test]
    fn session_policy_settings_reevaluate_and_others_restart() {
        let new = SESSIONS
            .replace(
                "remote_asn = 4242420003",
                "remote_asn = 4242420003\nimport = \"all\"\nimport_limit = 10",
            )
            .replace(
                "remote_asn = 4242420002",
                "remote_asn = 4242420002\nhold_time = 90",
            );
        let d = diff(&config(SESSIONS), &config(&new));
        assert_eq!(
            action(&d, "b"),
            (
                SessionAction::Reevaluate,
                vec!["import".to_string(), "import_limit".to_string()]
            )
        );
        assert_eq!(
            action(&d, "a"),
            (SessionAction::Restart, vec!["hold_time".to_string()])
        );
    }

    #[test]
    fn sessions_added_and_removed_by_name() {
        let new = SESSIONS.replace("name = \"b\"", "name = \"c\"");
        let d = diff(&config(SESSIONS), &config(&new));
        assert_eq!(action(&d, "a").0, SessionAction::Kept);
        assert_eq!(action(&d, "c").0, SessionAction::Added);
        assert_eq!(action(&d, "b").0, SessionAction::Removed);
        assert_eq!(d.sessions.last().map(|s| s.name.as_str()), Some("b"));
    }

    #[test]
    fn routes_flagged() {
        let route = "[[route]]\nprefix = \"172.20.1.0/24\"\ninterface = \"wg0\"\n";
        let d = diff(&config(SESSIONS), &config(&format!("{SESSIONS}\n{route}")));
        assert!(d.routes_changed);
        assert!(d.needs_restart.is_empty());
        assert!(d.sessions.iter().all(|s| s.action == SessionAction::Kept));
    }

    fn tunnel(d: &ConfigDiff, name: &str) -> (TunnelAction, Vec<String>) {
        let t = d
            .tunnel(name)
            .unwrap_or_else(|| panic!("no tunnel {name} in {d:?}"));
        (t.action, t.changed.clone())
    }

    const WG1: &str = "[[interface]]\nname = \"wg1\"\nprivate_key = \"kFnODq0EwAnbxP2/m2r4y5Nc6bjrSgrNV2jh0nVlqV0=\"\npeer_public_key = \"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\"\n";

    #[test]
    fn tunnels_added_removed_and_moved_by_name() {
        let d = diff(&config(SESSIONS), &config(&format!("{SESSIONS}\n{WG1}")));
        assert!(d.needs_restart.is_empty(), "{d:?}");
        assert_eq!(tunnel(&d, "wg0"), (TunnelAction::Kept, vec![]));
        assert_eq!(tunnel(&d, "wg1").0, TunnelAction::Added);
        assert!(d.sessions.iter().all(|s| s.action == SessionAction::Kept));
        assert!(
            !d.routes_changed,
            "wg1 has neither a connected network nor routes"
        );
        let with_net = WG1.to_string() + "addresses = [\"172.20.9.1/30\"]\n";
        let d = diff(
            &config(SESSIONS),
            &config(&format!("{SESSIONS}\n{with_net}")),
        );
        assert!(d.routes_changed, "172.20.9.0/30 is connected through wg1");

        let d = diff(&config(&format!("{SESSIONS}\n{WG1}")), &config(SESSIONS));
        assert_eq!(tunnel(&d, "wg1").0, TunnelAction::Removed);
        assert_eq!(d.tunnels.last().map(|t| t.name.as_str()), Some("wg1"));

        // The same two tunnels in the other order: nothing changes.
        let two = config(&format!("{SESSIONS}\n{WG1}"));
        let mut swapped = two.clone();
        swapped.interfaces.swap(0, 1);
        let d = diff(&two, &swapped);
        assert!(d.tunnels.iter().all(|t| t.action == TunnelAction::Kept));
    }

    #[test]
    fn tunnel_changes_sorted_and_their_sessions_follow() {
        let old = config(SESSIONS);
        let mut new = old.clone();
        new.interfaces[0].mtu = 1400;
        let d = diff(&old, &new);
        assert_eq!(
            tunnel(&d, "wg0"),
            (TunnelAction::Updated, vec!["mtu".into()])
        );
        assert!(d.sessions.iter().all(|s| s.action == SessionAction::Kept));
        assert!(!d.routes_changed);

        new.interfaces[0].link.latency = Some(3);
        let d = diff(&old, &new);
        assert_eq!(
            tunnel(&d, "wg0"),
            (TunnelAction::Updated, vec!["mtu".into(), "latency".into()])
        );
        assert_eq!(
            action(&d, "b"),
            (
                SessionAction::Reevaluate,
                vec!["interface \"wg0\" (latency)".to_string()]
            )
        );

        let mut new = old.clone();
        new.interfaces[0]
            .addresses
            .push("172.20.9.1/30".parse().expect("net"));
        let d = diff(&old, &new);
        assert_eq!(tunnel(&d, "wg0").0, TunnelAction::Updated);
        assert_eq!(action(&d, "a").0, SessionAction::Restart);
        assert!(d.routes_changed, "a /30 is a connected route");

        let mut new = old.clone();
        new.interfaces[0].peer_public_key = new.interfaces[0].private_key;
        new.interfaces[0].listen_port = Some(51999);
        let d = diff(&old, &new);
        assert_eq!(
            tunnel(&d, "wg0"),
            (
                TunnelAction::Restart,
                vec!["peer_public_key".into(), "listen_port".into()]
            )
        );
        assert_eq!(
            action(&d, "b"),
            (
                SessionAction::Restart,
                vec!["interface \"wg0\" (peer_public_key, listen_port)".to_string()]
            )
        );
    }

    #[test]
    fn roa_changes_are_applied_live() {
        let roa = "[roa]\nfiles = [\"/tmp/a.conf\"]\n";
        let d = diff(&config(SESSIONS), &config(&format!("{SESSIONS}\n{roa}")));
        assert!(d.needs_restart.is_empty() && d.roa_changed, "{d:?}");
        assert!(!d.is_empty());
        let d = diff(
            &config(&format!("{SESSIONS}\n{roa}")),
            &config(&format!("{SESSIONS}\n{roa}unknown = \"accept\"\n")),
        );
        assert!(d.roa_changed && d.sessions.iter().all(|s| s.action == SessionAction::Kept));
    }

    #[test]
    fn announce_region_country_are_applied_live() {
        let old = config(SESSIONS);
        let mut new = old.clone();
        new.router
            .announce
            .push("172.20.0.0/27".parse().expect("net"));
        new.router.region = Some(41);
        let d = diff(&old, &new);
        assert!(d.needs_restart.is_empty() && d.announce_changed, "{d:?}");
        assert!(d.sessions.iter().all(|s| s.action == SessionAction::Kept));
        new.router
            .addresses
            .push("172.20.0.2/32".parse().expect("net"));
        assert_eq!(diff(&old, &new).needs_restart, ["[router] addresses"]);
    }

    #[test]
    fn router_and_other_sections_need_a_restart() {
        let old = config(SESSIONS);
        let mut new = old.clone();
        new.router.asn = Some(4242420009);
        new.metrics = Some(crate::MetricsConfig {
            listen: "127.0.0.1:9324".parse().expect("addr"),
        });
        let d = diff(&old, &new);
        assert_eq!(d.needs_restart, vec!["[router] asn".to_string()]);
        assert!(d.http_changed);
        new.router.asn = old.router.asn;
        new.dns.servers.clear();
        let d = diff(&old, &new);
        assert_eq!(d.needs_restart, vec!["[dns]".to_string()]);
    }

    #[test]
    fn resolved_endpoint_alone_is_no_change() {
        let old = config(SESSIONS);
        let mut new = old.clone();
        new.interfaces[0].endpoint_text = Some("peer.example:51820".into());
        new.interfaces[0].endpoint = Some("192.0.2.1:51820".parse().expect("addr"));
        let mut old2 = new.clone();
        old2.interfaces[0].endpoint = Some("192.0.2.2:51820".parse().expect("addr"));
        assert!(diff(&old2, &new).is_empty());
        let d = diff(&old, &new);
        assert_eq!(
            tunnel(&d, "wg0"),
            (TunnelAction::Updated, vec!["endpoint".into()])
        );
        // The sessions over it keep their TCP connection.
        assert!(d.sessions.iter().all(|s| s.action == SessionAction::Kept));
    }
}
