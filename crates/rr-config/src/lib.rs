//! The rootless-router configuration file: load, validate, report.
//!
//! [`Config::load`] reads the TOML file described in SPEC.md ("The config file"),
//! checks everything that can be checked without starting the router (types, unknown
//! keys, key material, key files, duplicate names and ports, MTU, endpoints, route
//! prefixes, DN42 community values, ROA sources, route policies, the metrics and
//! looking glass addresses, references between sections) and either returns a fully
//! typed [`Config`] or *all* problems found, each with its line and key ([`ConfigErrors`]).
//!
//! It also holds WireGuard key helpers: [`Key`] (base64 in and out, never printed by
//! `Debug`) and [`keys`] (`wg genkey` / `wg pubkey`).
//!
//! It also compares two configs for a reload ([`diff()`]). It is not: the router's
//! runtime state, or the control protocol. It does no I/O besides reading the config file, the
//! key files it names, and resolving endpoint host names.
#![forbid(unsafe_code)]

mod diff;
mod error;
mod key;
pub mod keys;
mod tree;
mod validate;

pub use diff::{diff, ConfigDiff, SessionAction, SessionChange, TunnelAction, TunnelChange};
pub use error::{ConfigError, ConfigErrors};
pub use key::{Key, KeyError};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Default tunnel MTU (what wg-quick picks for an IPv6 underlay: 1500 - 80).
pub const DEFAULT_MTU: u16 = 1420;
/// Smallest accepted tunnel MTU: every tunnel may carry IPv6, which needs 1280.
pub const MIN_MTU: u16 = 1280;

/// A whole, validated config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `[router]`.
    pub router: RouterConfig,
    /// `[[interface]]`, in the order of the file: a node started with this config
    /// numbers its tunnels (IfIndex) in this order; tunnels a reload adds get new
    /// numbers, and removed ones leave theirs unused.
    pub interfaces: Vec<InterfaceConfig>,
    /// `[[route]]`: static routes.
    pub routes: Vec<RouteConfig>,
    /// `[[bgp]]`: BGP sessions.
    pub bgp: Vec<BgpConfig>,
    /// `[dns]`: the resolvers programs under `exec` use for DN42 names.
    pub dns: DnsConfig,
    /// `[[forward]]`: host listeners leading to DN42 addresses (for programs that
    /// bypass libc and so `exec`: Go, static binaries).
    pub forwards: Vec<GatewayConfig>,
    /// `[[expose]]`: router addresses leading to services on the host.
    pub exposes: Vec<GatewayConfig>,
    /// `[roa]`: ROA sources and what ROA validation rejects; `None` when absent.
    pub roa: Option<RoaConfig>,
    /// `[[policy]]`: named route policies, in file order (names unique).
    pub policies: Vec<std::sync::Arc<rr_policy::Policy>>,
    /// `[metrics]`: where Prometheus scrapes the node; `None` when absent.
    pub metrics: Option<MetricsConfig>,
    /// `[looking_glass]`: where the read-only web page is served; `None` when absent.
    pub looking_glass: Option<LookingGlassConfig>,
    /// The file it came from (`None` from [`Config::parse`]).
    pub source: Option<PathBuf>,
}

/// `[router]`: the node itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// Our AS number (required when there are `[[bgp]]` sessions).
    pub asn: Option<u32>,
    /// BGP router ID. When absent from the file: the first IPv4 address of `addresses`
    /// (and `None` if there is none and no BGP session needs one).
    pub router_id: Option<Ipv4Addr>,
    /// The node's own addresses (CIDR; the host part is the address, e.g.
    /// `172.20.0.1/32`). A bare address in the file means a host prefix.
    pub addresses: Vec<ipnet::IpNet>,
    /// Prefixes this node originates (no host bits set).
    pub announce: Vec<ipnet::IpNet>,
    /// Control socket path; a relative path in the file is relative to the config's
    /// directory.
    pub control_socket: Option<PathBuf>,
    /// DN42 region community value (41..=70) put on announced prefixes as (64511, v).
    pub region: Option<u16>,
    /// DN42 country community value (1000..=1999) put on announced prefixes.
    pub country: Option<u16>,
}

/// `[[interface]]`: one WireGuard tunnel to one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Unique among interfaces.
    pub name: String,
    /// From `private_key` or `private_key_file` (exactly one of the two).
    pub private_key: Key,
    /// UDP port to listen on; `None` (absent, or 0 in the file) = any free port.
    pub listen_port: Option<u16>,
    /// The peer's public key.
    pub peer_public_key: Key,
    /// `endpoint`, resolved at load time (the first address the resolver returned).
    pub endpoint: Option<SocketAddr>,
    /// `endpoint` as written (e.g. `peer.example.net:51820`), for re-resolving and display.
    pub endpoint_text: Option<String>,
    /// From `preshared_key` or `preshared_key_file`.
    pub preshared_key: Option<Key>,
    /// Seconds; `Some(0)` = off, as written.
    pub persistent_keepalive: Option<u16>,
    /// Tunnel MTU: [`DEFAULT_MTU`] unless set; always `MIN_MTU..=65535`.
    pub mtu: u16,
    /// This node's addresses on the tunnel, e.g. `fe80::1/64`, `172.20.0.1/32`.
    pub addresses: Vec<ipnet::IpNet>,
    /// DN42 link communities of this tunnel (`latency` 1..=9, `bandwidth` 21..=29,
    /// `crypto` 31..=34), applied to routes imported from and exported over it.
    pub link: rr_policy::dn42::Link,
}

impl InterfaceConfig {
    /// Our public key on this tunnel (derived from `private_key`).
    pub fn public_key(&self) -> Key {
        keys::public(&self.private_key)
    }
}

/// `[[route]]`: a static route out of a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// The destination (no host bits set).
    pub prefix: ipnet::IpNet,
    /// The interface's name, as written (the node looks its tunnel up by name: indexes
    /// change with reloads).
    pub interface: String,
    /// Optional next hop on that tunnel.
    pub gateway: Option<IpAddr>,
}

/// `[[bgp]]`: one BGP session. Parsed and validated now; used by the BGP speaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpConfig {
    /// Unique among sessions.
    pub name: String,
    /// The neighbor's address; a link-local one always comes with `interface`.
    pub neighbor: IpAddr,
    /// The tunnel the neighbor is on (an existing interface name).
    pub interface: Option<String>,
    /// The neighbor's AS number (never 0).
    pub remote_asn: u32,
    /// Address families, in the order written, without duplicates; default both.
    pub families: Vec<Family>,
    /// As written; absent means the default (on for IPv6 sessions, RFC 8950).
    pub extended_next_hop: Option<bool>,
    /// Only wait for the neighbor to connect. Default false.
    pub passive: bool,
    /// Seconds; 0 or 3..=65535.
    pub hold_time: Option<u16>,
    /// Seconds; less than `hold_time` when both are set and `hold_time` is not 0.
    pub keepalive: Option<u16>,
    /// Seconds; at least 1.
    pub connect_retry: Option<u16>,
    /// Which TCP the session runs on. Default [`Transport::Tunnel`].
    pub transport: Transport,
    /// The neighbor's TCP port (default 179).
    pub port: u16,
    /// Host transport with `passive`: the host TCP port to listen on.
    pub local_port: Option<u16>,
    /// Import policy (default [`Policy::Dn42`]).
    pub import: Policy,
    /// Export policy (default [`Policy::Dn42`]).
    pub export: Policy,
    /// Routes accepted per family before `import_limit_action`; `None` = no limit
    /// (`import_limit = 0`). Default [`DEFAULT_IMPORT_LIMIT`], the DN42 wiki's.
    pub import_limit: Option<u32>,
    /// What happens when the limit is reached (default [`LimitAction::Block`]).
    pub import_limit_action: LimitAction,
    /// `import_policy` / `import_policy_ipv4` / `import_policy_ipv6`: the `[[policy]]`
    /// applied on import, per family (index 0 IPv4, 1 IPv6); names exist in `policies`.
    pub import_policy: [Option<String>; 2],
    /// The same for export.
    pub export_policy: [Option<String>; 2],
}

/// `[roa]`: where ROAs come from and what validation rejects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoaConfig {
    /// `files`: ROA files (BIRD 1/2 include, StayRTR/gortr JSON, SLURM; detected),
    /// re-read when they change; relative paths are relative to the config's directory.
    /// Not opened at load time: a file that is missing or unreadable is the ROA
    /// watcher's to report (it may be written later, e.g. by a cron job).
    pub files: Vec<PathBuf>,
    /// `rtr`: RTR servers (RFC 8210 / 6810) on the host's network, e.g. StayRTR.
    pub rtr: Vec<RtrConfig>,
    /// `check_interval`: seconds between checks of the files for changes (default 5).
    pub check_interval: u16,
    /// `invalid = "reject" | "accept"` (default reject).
    pub reject_invalid: bool,
    /// `unknown = "reject" | "accept"` (default reject, as the DN42 wiki's filter).
    pub reject_unknown: bool,
}

/// One RTR server of `[roa] rtr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtrConfig {
    /// As written (`host:port`), for display and re-resolving.
    pub text: String,
    /// Resolved at load time.
    pub addr: SocketAddr,
}

impl Config {
    /// The `[[policy]]` named `name`.
    pub fn policy(&self, name: &str) -> Option<&std::sync::Arc<rr_policy::Policy>> {
        self.policies.iter().find(|p| p.name == name)
    }
}

/// `[dns]`: how programs under `exec` resolve names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// `servers`: resolvers on the DN42 side, asked in order over the router's network
    /// (port 53, or `addr:port` / `[v6]:port`). Default: DN42's anycast resolvers
    /// [`DEFAULT_DNS_SERVERS`].
    pub servers: Vec<SocketAddr>,
    /// `domains`: names in these domains (and the domains themselves) are resolved
    /// through `servers`; every other name through the host's resolver. Default:
    /// [`DEFAULT_DNS_DOMAINS`]. Lower case, no trailing dot.
    pub domains: Vec<String>,
}

/// DN42's anycast recursive resolvers.
pub const DEFAULT_DNS_SERVERS: [&str; 2] = ["172.20.0.53:53", "[fd42:d42:d42:54::1]:53"];
/// DN42's own domains and reverse zones (the DN42 wiki's forward-zone list).
pub const DEFAULT_DNS_DOMAINS: [&str; 9] = [
    "dn42",
    "20.172.in-addr.arpa",
    "21.172.in-addr.arpa",
    "22.172.in-addr.arpa",
    "23.172.in-addr.arpa",
    "31.172.in-addr.arpa",
    "10.in-addr.arpa",
    "d.f.ip6.arpa",
    "neonetwork",
];

impl Default for DnsConfig {
    fn default() -> DnsConfig {
        DnsConfig {
            servers: DEFAULT_DNS_SERVERS
                .iter()
                .map(|s| s.parse().expect("valid default"))
                .collect(),
            domains: DEFAULT_DNS_DOMAINS.iter().map(|d| d.to_string()).collect(),
        }
    }
}

/// One `[[forward]]` or `[[expose]]` gateway.
///
/// `[[forward]]`: `listen` is a host address (a kernel socket; usually 127.0.0.1:PORT),
/// `connect` an address reached through the router (a DN42 service).
/// `[[expose]]`: `listen` is one of the router's addresses (or `0.0.0.0` / `[::]` for
/// all of them) on the router's stack, `connect` a host address (a service on the host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// `name`: optional label for logs; default `forward-N` / `expose-N`.
    pub name: String,
    pub protocol: GatewayProtocol,
    pub listen: SocketAddr,
    pub connect: SocketAddr,
}

/// `protocol` of a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayProtocol {
    /// `"tcp"` (the default): each accepted connection is relayed to a new connection.
    Tcp,
    /// `"udp"`: each client address gets its own flow (idle ones expire after 60 s).
    Udp,
}

/// `[metrics]`: the Prometheus endpoint (plain HTTP, `GET /metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `listen`: the host TCP address to serve on (a kernel socket, not the router's
    /// network), e.g. `127.0.0.1:9324`; never port 0.
    pub listen: SocketAddr,
}

/// `[looking_glass]`: the read-only web page (plain HTTP: sessions, route lookup, ping,
/// traceroute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookingGlassConfig {
    /// `listen`: the host TCP address to serve on (a kernel socket, not the router's
    /// network), e.g. `127.0.0.1:8042`; never port 0, never the `[metrics]` address.
    pub listen: SocketAddr,
}

/// Default `[roa] check_interval`: seconds between checks of the ROA files.
pub const DEFAULT_ROA_CHECK_INTERVAL: u16 = 5;

/// The DN42 wiki's import limit per channel.
pub const DEFAULT_IMPORT_LIMIT: u32 = 9000;

/// Which TCP a BGP session runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `"tunnel"`: the node's own TCP/IP stack, over its WireGuard tunnels.
    Tunnel,
    /// `"host"`: the host kernel's TCP (a local daemon, a collector, a benchmark feed).
    Host,
}

/// A session's import or export policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `"dn42"`: only valid DN42 networks (the registry's filter tables), never our own
    /// announced prefixes from outside.
    Dn42,
    /// `"all"`: everything (still never our own prefixes from outside).
    All,
    /// `"none"`: nothing.
    None,
}

/// What a session does when its import limit is reached (BIRD's actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitAction {
    /// `"warn"`: log once, keep accepting.
    Warn,
    /// `"block"`: refuse routes beyond the limit.
    Block,
    /// `"restart"`: close the session; it comes back after the retry delay.
    Restart,
    /// `"disable"`: close the session and keep it down until reload or restart.
    Disable,
}

/// A BGP address family (AFI/SAFI unicast).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `"ipv4"`: IPv4 unicast.
    Ipv4,
    /// `"ipv6"`: IPv6 unicast.
    Ipv6,
}

impl Family {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Config {
    /// Reads and validates a config file. Relative key file paths (and a relative
    /// `control_socket`) are relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::single(&file, "", format!("cannot read config file: {e}"))
        })?;
        let base_dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut config = Config::parse(&text, &file, base_dir)?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Validates config text. `file_name` is only used in messages; relative paths in
    /// the text are relative to `base_dir`. `source` is `None`.
    pub fn parse(text: &str, file_name: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
        validate::build(text, base_dir).map_err(|errors| {
            let mut errs = ConfigErrors {
                file: file_name.to_owned(),
                errors,
            };
            errs.sort();
            errs
        })
    }

    /// Only `[router].control_socket` of a config file, without validating the rest
    /// (no key files read, no endpoint resolved): what `ctl --config` needs to find a
    /// running node even when the file has since gained an unrelated problem.
    pub fn control_socket_of(path: &Path) -> Result<Option<PathBuf>, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::single(&file, "", format!("cannot read config file: {e}"))
        })?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| ConfigErrors::single(&file, "", format!("not valid TOML: {e}")))?;
        let socket = table
            .get("router")
            .and_then(|r| r.get("control_socket"))
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty());
        let base_dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        Ok(socket.map(|s| match base_dir {
            Some(dir) => dir.join(s),
            None => PathBuf::from(s),
        }))
    }

    /// The host parts of `[router].addresses`.
    pub fn router_addresses(&self) -> Vec<IpAddr> {
        self.router.addresses.iter().map(|net| net.addr()).collect()
    }

    /// The interface with this name and its index.
    pub fn interface(&self, name: &str) -> Option<(usize, &InterfaceConfig)> {
        self.interfaces
            .iter()
            .enumerate()
            .find(|(_, i)| i.name == name)
    }
}
