//! Declarative route policy: what replaces the BIRD filters a DN42 operator writes.
//!
//! What it is: [`Policy`], an ordered list of [`Rule`]s evaluated against one route
//! (its prefix, its ROA state and its BGP attributes). A rule whose [`Match`]es all
//! hold applies its [`Action`]s to the attributes and then, if it has a [`Verdict`],
//! ends the evaluation with it; a rule without a verdict lets evaluation go on with the
//! modified attributes (BIRD's `if ... then { bgp_local_pref = 200; }` without
//! `accept`). When no rule ends it, [`Policy::default`] decides. [`dn42`] holds the DN42
//! community rules (64511: latency, bandwidth, crypto, region, country).
//!
//! The textual forms operators write in the config (`172.20.0.0/14{21,29}`,
//! `(64511,1..9)`, `(4242420000,*,*)`) parse with `FromStr` here, so the config crate
//! and error messages agree on one syntax.
//!
//! What it is not: the built-in DN42 import checks (registry prefix filter, own
//! prefixes, AS loop, ROA rejection, import limits live in `rr-rib`), a config file
//! reader (`rr-config` builds policies), or I/O of any kind.
#![forbid(unsafe_code)]

pub mod dn42;
mod eval;
mod pattern;

use ipnet::IpNet;
pub use rr_roa::Validity;

pub use pattern::{
    format_community, format_large_community, parse_community, parse_large_community, LargePattern,
    PatternError, PrefixPattern, Range, StdPattern,
};
/// The address family a [`Match::Family`] names (re-exported so that policy builders
/// need not depend on `rr-bgp`).
pub use rr_bgp::packet::Family;

/// A named policy: rules in order, then a default verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The name it is referred to by in `[[bgp]]` (`import_policy = "..."`).
    pub name: String,
    /// Evaluated in order.
    pub rules: Vec<Rule>,
    /// The verdict when no rule ends the evaluation (config `default`, default accept).
    pub default: Verdict,
}

/// One rule: if every match holds, apply the actions, then stop with the verdict (if any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// All must hold (an empty list always holds).
    pub matches: Vec<Match>,
    /// Applied in order when the matches hold.
    pub actions: Vec<Action>,
    /// Ends the evaluation when the matches hold; `None` goes on to the next rule.
    pub verdict: Option<Verdict>,
}

/// A condition on a route ([`Match::holds`]). Lists mean "any of" (an empty list never
/// holds); a route lacking what is asked about (no origin AS: an empty path, or one
/// ending in an AS_SET) does not match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    /// The route's address family.
    Family(Family),
    /// The prefix matches one of these patterns (BIRD prefix-set semantics, see
    /// [`PrefixPattern`]).
    Prefix(Vec<PrefixPattern>),
    /// The origin AS (last AS of the path) is one of these.
    Origin(Vec<u32>),
    /// The AS path contains one of these ASNs anywhere.
    PathContains(Vec<u32>),
    /// The first AS of the path (the neighbor's) is one of these.
    NeighborAs(Vec<u32>),
    /// The AS path length (RFC 4271 counting: a SET counts 1) is within the range.
    PathLen(Range),
    /// One of the route's communities (RFC 1997) matches one of these.
    Community(Vec<StdPattern>),
    /// One of the route's large communities (RFC 8092) matches one of these.
    LargeCommunity(Vec<LargePattern>),
    /// The route's ROA state (RFC 6811) is one of these.
    Roa(Vec<Validity>),
}

/// A change to a route's attributes ([`Action::apply`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// LOCAL_PREF := value.
    LocalPref(u32),
    /// MULTI_EXIT_DISC := value.
    Med(u32),
    /// Prepend `asn` (`None`: the router's own ASN) `times` times.
    Prepend { asn: Option<u32>, times: u8 },
    /// Add these communities (no duplicates).
    AddCommunity(Vec<u32>),
    /// Remove every community matching one of these.
    DeleteCommunity(Vec<StdPattern>),
    /// Add these large communities (no duplicates).
    AddLargeCommunity(Vec<[u32; 3]>),
    /// Remove every large community matching one of these.
    DeleteLargeCommunity(Vec<LargePattern>),
}

/// Accept or reject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The route goes on (into the table, or to the peer).
    Accept,
    /// The route is filtered.
    Reject,
}

/// What a policy needs to know about a route besides its attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    /// The route's prefix (host bits clear).
    pub prefix: IpNet,
    /// Its ROA state (`NotFound` when the router has no ROA data).
    pub roa: Validity,
    /// The router's own ASN (for `Prepend { asn: None }`).
    pub local_asn: u32,
}

/// The result of [`Policy::evaluate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Accept or reject.
    pub verdict: Verdict,
    /// The rule (index into `rules`) that decided; `None` = the default.
    pub rule: Option<usize>,
    /// Whether any action changed the attributes.
    pub modified: bool,
    /// Whether a `set_med` action ran (even to the value the route had): on export to
    /// an eBGP peer the MED is sent only when the policy set it (BIRD's rule).
    pub med_set: bool,
}
