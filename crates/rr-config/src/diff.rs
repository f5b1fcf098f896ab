//! What changed between two validated configs, for a reload.
//!
//! What it is: [`diff`], a pure comparison (sans-IO) of the config a node runs with and
//! the one it was asked to reload. BGP sessions are matched by name and sorted into
//! kept, re-evaluated (only their import/export policies or import limit changed, or a
//! `[[policy]]` they use: the route table applies that without a session reset, like
//! BIRD's `reload`), restarted (anything else of the session changed), added and
//! removed. `[[route]]` changes are flagged. Everything a running node cannot change
//! in place yet (tunnels, `[router]`, `[dns]`, gateways, `[roa]`, `[metrics]` and any
//! other section) is listed in [`ConfigDiff::needs_restart`].
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

/// What a reload from `old` to `new` has to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigDiff {
    /// Changes a running node cannot apply; when not empty the reload is refused whole.
    pub needs_restart: Vec<String>,
    /// Every session of both configs: those of `new` in its order, then the removed ones.
    pub sessions: Vec<SessionChange>,
    /// `[[route]]` differs: the static routes are replaced.
    pub routes_changed: bool,
}

impl ConfigDiff {
    /// True when the reload changes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.needs_restart.is_empty()
            && !self.routes_changed
            && self
                .sessions
                .iter()
                .all(|s| s.action == SessionAction::Kept)
    }
}

/// Why tunnels are not changed live (said with every tunnel change).
const TUNNELS_LATER: &str =
    "tunnels are indexed by position in the forwarding table; changing them live comes later";

/// Compares the running config `old` with `new`.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let mut d = ConfigDiff {
        needs_restart: restart_reasons(old, new),
        routes_changed: old.routes != new.routes,
        sessions: Vec::new(),
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
            Some(o) => session_change(o, b, &changed_policies),
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

fn session_change(o: &BgpConfig, b: &BgpConfig, changed_policies: &[&str]) -> SessionChange {
    let mut restart = Vec::new();
    let mut reeval = Vec::new();
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

/// An interface with the resolved endpoint left out when it is written the same: a
/// name resolving elsewhere is not a config change (WireGuard follows the peer anyway).
fn same_interface(a: &InterfaceConfig, b: &InterfaceConfig) -> bool {
    let mut b = b.clone();
    if a.endpoint_text.is_some() && a.endpoint_text == b.endpoint_text {
        b.endpoint = a.endpoint;
    }
    *a == b
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
    router!(
        asn,
        router_id,
        addresses,
        announce,
        control_socket,
        region,
        country
    );
    // Any field added to [router] later is covered here.
    let known = RouterConfig {
        asn: rn.asn,
        router_id: rn.router_id,
        addresses: rn.addresses.clone(),
        announce: rn.announce.clone(),
        control_socket: rn.control_socket.clone(),
        region: rn.region,
        country: rn.country,
    };
    if out.is_empty() && known != *ro {
        out.push("[router]".into());
    }
    for (n, i) in new.interfaces.iter().enumerate() {
        match old.interfaces.iter().position(|o| o.name == i.name) {
            None => out.push(format!("[[interface]] {} added ({TUNNELS_LATER})", i.name)),
            Some(p) if !same_interface(&old.interfaces[p], i) => out.push(format!(
                "[[interface]] {} changed ({TUNNELS_LATER})",
                i.name
            )),
            Some(p) if p != n => out.push(format!(
                "[[interface]] {} moved from position {} to {} ({TUNNELS_LATER})",
                i.name,
                p + 1,
                n + 1
            )),
            Some(_) => {}
        }
    }
    for o in &old.interfaces {
        if !new.interfaces.iter().any(|i| i.name == o.name) {
            out.push(format!(
                "[[interface]] {} removed ({TUNNELS_LATER})",
                o.name
            ));
        }
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
    if old.roa != new.roa {
        out.push("[roa]".into());
    }
    if old.metrics != new.metrics {
        out.push("[metrics]".into());
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

    #[test]
    fn tunnels_router_and_other_sections_need_a_restart() {
        let tunnel = format!(
            "[[interface]]\nname = \"wg1\"\nprivate_key = \"{KEY_A}\"\npeer_public_key = \"{KEY_B}\"\n"
        );
        let d = diff(&config(SESSIONS), &config(&format!("{SESSIONS}\n{tunnel}")));
        assert_eq!(d.needs_restart.len(), 1, "{d:?}");
        assert!(d.needs_restart[0].starts_with("[[interface]] wg1 added"));

        let old = config(SESSIONS);
        let mut new = old.clone();
        new.interfaces[0].mtu = 1400;
        new.router.asn = Some(4242420009);
        new.metrics = Some(crate::MetricsConfig {
            listen: "127.0.0.1:9324".parse().expect("addr"),
        });
        let d = diff(&old, &new);
        assert_eq!(
            d.needs_restart,
            vec![
                "[router] asn".to_string(),
                format!("[[interface]] wg0 changed ({TUNNELS_LATER})"),
                "[metrics]".to_string(),
            ]
        );
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
        assert_eq!(diff(&old, &new).needs_restart.len(), 1);
    }
}
