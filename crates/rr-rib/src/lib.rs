//! The route table hub of rootless-router: BIRD's "nest", sans-IO.
//!
//! What it is: [`Rib`], one routing table per address family fed by three kinds of
//! sources — our own `announce` prefixes, static routes, and BGP peers (decoded UPDATEs)
//! — through an import filter, a best-route selection per prefix (RFC 4271 section 9.1),
//! and two kinds of sinks: the forwarding table ([`Rib::take_fib_changes`]) and each BGP
//! peer's Adj-RIB-Out ([`Rib::take_exports`], grouped into one UPDATE per attribute set).
//!
//! ```text
//!  announce ─┐
//!  static ───┼─> import pipeline ─> table (best per prefix) ─┬─> FIB changes
//!  bgp peer ─┘   (checks, ROA,                               └─> export checks, link
//!                 link communities,                              communities, policy
//!                 policy, limit)                                 ─> UPDATEs per peer
//! ```
//!
//! Routing security and policy (DN42): every BGP route is validated against the ROA
//! set ([`Rib::set_roas`], RFC 6811) and the wiki's import rejects invalid and unknown
//! routes ([`RoaRules`]); the tunnel's DN42 link communities and a declarative
//! `rr_policy::Policy` per session and family apply on import and export. A rejected
//! route is held with its [`FilterReason`] and its attributes as received, so a ROA
//! change or a new peer config ([`Rib::reevaluate_peer`]) re-runs the import from what
//! the peer sent, and the FIB and exports follow without a session reset.
//!
//! Built for a full Internet table from one peer: attribute sets are interned (one
//! compact `Arc` shared by every prefix that carries them, hashed once per UPDATE with
//! a fast seeded hasher), a prefix costs one 40-byte slot in a chunked slab plus an
//! 8-byte index entry (slot and hash: the index grows without touching the slab), an
//! UPDATE is processed in O(its prefixes), and outputs are batched until the caller
//! takes them. The real 2015 full table (605k prefixes, 99k attribute sets) takes about
//! 88 bytes per prefix at rest (`examples/full_table.rs bench`).
//!
//! What it is not: a BGP session (that is `rr_bgp::session`), a socket owner or a clock
//! reader. Nothing here does I/O, spawns threads or reads the time; the caller feeds
//! events in and takes results out. It does not write the FIB itself either: the node
//! applies what [`Rib::take_fib_changes`] returns.
#![forbid(unsafe_code)]

mod bits;
pub mod dn42;
mod export;
mod hash;
mod import;
mod path;
mod rib;
mod roa;
mod table;
mod view;

use ipnet::IpNet;
use rr_fib::IfIndex;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use rib::Rib;
pub use rr_bgp::packet::{Family, Update};
pub use rr_roa::{RoaDelta, RoaSet, Validity};

/// Why a received route is held but not used (`ctl show routes filtered`, and the
/// per-reason counts of `ctl show bgp`). Checked in this order; the first that applies
/// is the route's reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterReason {
    /// The import policy is `none`.
    ImportNone,
    /// The AS path holds our own ASN (RFC 4271 9.1.2).
    AsLoop,
    /// An eBGP peer sent an empty AS path.
    EmptyAsPath,
    /// No usable next hop for the family.
    BadNextHop,
    /// One of our own `announce` prefixes or a more-specific of one.
    OwnPrefix,
    /// Outside the networks the DN42 registry permits (import policy `dn42`).
    NotDn42,
    /// ROA state invalid (RFC 6811), rejected by `[roa]`.
    RoaInvalid,
    /// No ROA covers it, rejected by `[roa] unknown = "reject"`.
    RoaUnknown,
    /// Rejected by the session's import policy (`[[policy]]`).
    Policy,
    /// Beyond the session's import limit.
    ImportLimit,
}

impl FilterReason {
    /// Every reason, in check order.
    pub const ALL: [FilterReason; 10] = [
        FilterReason::ImportNone,
        FilterReason::AsLoop,
        FilterReason::EmptyAsPath,
        FilterReason::BadNextHop,
        FilterReason::OwnPrefix,
        FilterReason::NotDn42,
        FilterReason::RoaInvalid,
        FilterReason::RoaUnknown,
        FilterReason::Policy,
        FilterReason::ImportLimit,
    ];

    /// The word `ctl` and metrics use: `import-none`, `as-loop`, `empty-as-path`,
    /// `bad-next-hop`, `own-prefix`, `not-dn42`, `roa-invalid`, `roa-unknown`, `policy`,
    /// `import-limit`.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterReason::ImportNone => "import-none",
            FilterReason::AsLoop => "as-loop",
            FilterReason::EmptyAsPath => "empty-as-path",
            FilterReason::BadNextHop => "bad-next-hop",
            FilterReason::OwnPrefix => "own-prefix",
            FilterReason::NotDn42 => "not-dn42",
            FilterReason::RoaInvalid => "roa-invalid",
            FilterReason::RoaUnknown => "roa-unknown",
            FilterReason::Policy => "policy",
            FilterReason::ImportLimit => "import-limit",
        }
    }

    /// Index into [`PeerStats::filtered_by`] (position in [`FilterReason::ALL`]).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What ROA validation rejects on import from peers whose import policy is `dn42`
/// (the DN42 wiki rejects both). Routes are validated against [`Rib::set_roas`]'s set
/// whatever this says (their state is shown and policies can match it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoaRules {
    /// Reject routes whose state is `Invalid`.
    pub reject_invalid: bool,
    /// Reject routes whose state is `NotFound`.
    pub reject_unknown: bool,
}

/// What a ROA change did to the table ([`Rib::set_roas`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoaChange {
    /// ROAs added.
    pub roas_added: usize,
    /// ROAs removed.
    pub roas_removed: usize,
    /// Received routes whose validity was computed again (those under a changed
    /// ROA's prefix).
    pub routes_checked: usize,
    /// Routes whose validity changed.
    pub validity_changed: usize,
    /// Routes that went from filtered to accepted or back.
    pub verdict_changed: usize,
}

/// The caller's handle for one BGP peer (session). Any value; also the last tie-breaker
/// of the decision process (lower wins), standing in for the peer's router ID.
pub type PeerId = u32;

/// What a peer's import or export filter lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The DN42 wiki's BIRD filter: only networks the DN42 registry's filter tables
    /// permit ([`dn42::is_valid_network`]); on import also never our own prefixes.
    Dn42,
    /// Everything (on import: except our own prefixes and their more-specifics).
    All,
    /// Nothing.
    None,
}

/// What happens when a peer's accepted routes of one family would exceed its import
/// limit (BIRD's `import limit N action ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitAction {
    /// Accept the route anyway; report the crossing once per session.
    Warn,
    /// Keep routes beyond the limit out of the table (they count as filtered).
    Block,
    /// Keep them out and ask the caller to restart the session.
    Restart,
    /// Keep them out and ask the caller to shut the session down.
    Disable,
}

/// A config word that is not one of the accepted values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{word}` (expected one of: {expected})")]
pub struct ParseWordError {
    /// What was being parsed ("policy", "limit action").
    pub what: &'static str,
    /// The word given.
    pub word: String,
    /// The accepted words.
    pub expected: &'static str,
}

impl std::str::FromStr for Policy {
    type Err = ParseWordError;

    /// `dn42`, `all` or `none`, as in the config file.
    fn from_str(s: &str) -> Result<Policy, ParseWordError> {
        match s {
            "dn42" => Ok(Policy::Dn42),
            "all" => Ok(Policy::All),
            "none" => Ok(Policy::None),
            _ => Err(ParseWordError {
                what: "policy",
                word: s.to_string(),
                expected: "dn42, all, none",
            }),
        }
    }
}

impl std::str::FromStr for LimitAction {
    type Err = ParseWordError;

    /// `warn`, `block`, `restart` or `disable`, BIRD's words.
    fn from_str(s: &str) -> Result<LimitAction, ParseWordError> {
        match s {
            "warn" => Ok(LimitAction::Warn),
            "block" => Ok(LimitAction::Block),
            "restart" => Ok(LimitAction::Restart),
            "disable" => Ok(LimitAction::Disable),
            _ => Err(ParseWordError {
                what: "limit action",
                word: s.to_string(),
                expected: "warn, block, restart, disable",
            }),
        }
    }
}

/// The node-wide settings the table needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RibConfig {
    /// Our ASN: prepended on eBGP export, and a path containing it is a loop.
    pub local_asn: u32,
    /// Our BGP identifier (kept for display; sessions use it, the table does not).
    pub router_id: Ipv4Addr,
    /// The prefixes this node originates. They sit in the table as local routes with the
    /// highest preference, are exported to every peer the export policy allows, are
    /// never accepted from a peer (nor their more-specifics), and are never written to
    /// the FIB: the node delivers its own addresses itself.
    pub announce: Vec<IpNet>,
    /// Communities put on our `announce` routes (DN42 region and country, RFC 1997).
    pub announce_communities: Vec<u32>,
    /// ROA rejection on `dn42` imports; `None`: validity is shown, nothing rejected
    /// for it (no `[roa]` in the config).
    pub roa: Option<RoaRules>,
}

/// One BGP peer's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// For display (`bgp <name>`).
    pub name: String,
    /// The peer's ASN; equal to our own means iBGP.
    pub remote_asn: u32,
    /// The tunnel the session runs over and its routes leave through. `None` for a
    /// session over the host's TCP: its routes' next hops are then resolved through the
    /// static routes.
    pub iface: Option<IfIndex>,
    /// Import filter.
    pub import: Policy,
    /// Export filter.
    pub export: Policy,
    /// Most accepted routes per family; `None` = no limit.
    pub import_limit: Option<u32>,
    /// What exceeding `import_limit` does.
    pub limit_action: LimitAction,
    /// Import policy per family (index 0 IPv4, 1 IPv6), applied after the built-in
    /// checks of `import`; `None` accepts unchanged.
    pub import_policy: [Option<std::sync::Arc<rr_policy::Policy>>; 2],
    /// Export policy per family, applied after `export`.
    pub export_policy: [Option<std::sync::Arc<rr_policy::Policy>>; 2],
    /// The tunnel's DN42 link communities, applied on import from and export to
    /// this peer (`rr_policy::dn42::apply_link`); `None` leaves them alone.
    pub link: Option<rr_policy::dn42::Link>,
}

/// What a session negotiated, and the addresses we use as next hop towards that peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerUp {
    /// The families both sides announced (RFC 4760).
    pub families: Vec<Family>,
    /// RFC 8950 negotiated for IPv4: IPv4 routes may be sent with an IPv6 next hop.
    pub extended_next_hop: bool,
    /// Our IPv4 address to send as NEXT_HOP.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// Our global IPv6 address, if we have one.
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Our link-local address on that tunnel (`None` for host sessions).
    pub next_hop_ll: Option<Ipv6Addr>,
}

/// What [`Rib::import`] asks of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Nothing to do.
    Ok,
    /// The peer's accepted routes of `family` reached the import limit. `Warn`: log it
    /// (reported once per session); `Block`: never returned (routes are just kept
    /// out); `Restart`/`Disable`: stop the session (which calls [`Rib::peer_down`]).
    LimitReached {
        /// The family whose limit was hit.
        family: Family,
        /// The configured action.
        action: LimitAction,
    },
}

/// One peer's route counts (BIRD's `show protocols all` "Routes:" line and more).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Routes from this peer currently accepted into the table (both families).
    pub imported: u64,
    /// Routes from this peer currently held but rejected (the sum of `filtered_by`).
    pub filtered: u64,
    /// Prefixes currently announced to this peer (its Adj-RIB-Out).
    pub exported: u64,
    /// `imported`, IPv4 only.
    pub imported_v4: u64,
    /// `imported`, IPv6 only.
    pub imported_v6: u64,
    /// Routes from this peer that are currently the best of their prefix.
    pub preferred: u64,
    /// UPDATE messages received since the peer was added.
    pub updates_received: u64,
    /// Prefixes announced by this peer since it was added (accepted or not).
    pub announcements_received: u64,
    /// Prefixes withdrawn by this peer since it was added (treat-as-withdraw included).
    pub withdrawals_received: u64,
    /// `filtered`, per [`FilterReason::index`].
    pub filtered_by: [u64; 10],
}

/// What [`Rib::routes`] shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteFilter {
    /// Only the most specific prefix containing this address that has a route
    /// (a best route, or with `all` any route).
    pub for_addr: Option<IpAddr>,
    /// Also non-best and filtered routes.
    pub all: bool,
    /// Only this prefix (host bits ignored). Takes precedence over `for_addr`.
    pub prefix: Option<IpNet>,
    /// Only filtered routes (implies `all`).
    pub filtered: bool,
}

/// One route as `ctl show routes` prints it (birdc `show route all` style).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteView {
    /// The prefix.
    pub prefix: IpNet,
    /// The best route of its prefix.
    pub best: bool,
    /// `static`, `announce` or `bgp <peer name>`.
    pub source: String,
    /// The BGP peer it came from.
    pub peer: Option<PeerId>,
    /// Where it would forward: the peer's tunnel, the static route's tunnel, or for a
    /// host session the tunnel of the static route its next hop resolves through.
    /// `None` for announce routes and unresolvable next hops.
    pub iface: Option<IfIndex>,
    /// The gateway (BGP next hop, or the static route's gateway).
    pub gateway: Option<IpAddr>,
    /// BIRD style: `4242420001 4242420002 {65000 65001}`.
    pub as_path: String,
    /// `IGP`, `EGP` or `incomplete`.
    pub origin: &'static str,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF, 100 when absent.
    pub local_pref: u32,
    /// RFC 1997 communities as `(64511,3)`.
    pub communities: Vec<String>,
    /// RFC 8092 large communities as `(4242420000,1,2)`.
    pub large_communities: Vec<String>,
    /// Held in the Adj-RIB-In but rejected by the import (shown with `all` or
    /// `filtered`), with the attributes as received.
    pub filtered: bool,
    /// Why, when `filtered`.
    pub reason: Option<FilterReason>,
    /// ROA state (RFC 6811) of a BGP route; `None` for static and announce routes.
    pub roa: Option<Validity>,
}

#[cfg(test)]
mod tests {
    /// The node may move the table into its control thread.
    #[test]
    fn rib_is_send() {
        fn send<T: Send>() {}
        send::<crate::Rib>();
    }
}
