//! The router's side of the ROA benchmark: the node's table ([`rr_rib::Rib`]) in this
//! process, fed both feeds' UPDATEs as its BGP sessions would hand them over, then
//! timed through a ROA change.
//!
//! What it is: one `Rib` with two eBGP peers (one per feed, each on a tunnel of its own,
//! `import = all`, `export = all`) and as each peer's import policy the translation of
//! BIRD's `if roa_check(...) = ROA_INVALID then reject; accept;`: one rule matching ROA
//! state `invalid` with verdict reject, default accept (`rr_policy`). (The table's own
//! `[roa]` rejection applies to `import = dn42` sessions only, and the DN42 registry
//! filter of those rejects every Internet prefix.) The clock covers what the node does
//! when its ROA source changes:
//! - **load**: parse the two include files (`rr_roa::parse::parse_file`) and index them
//!   (`RoaSet::from_roas`) — the counterpart of BIRD's `configure`;
//! - **re-evaluate**: `Rib::set_roas` (diff, re-validation of the routes the delta
//!   covers, verdicts, best routes), then `take_fib_changes` and `take_exports` for both
//!   peers (the FIB batch and the UPDATEs the change sends) — the counterpart of BIRD's
//!   `reload in`, which also ends with the master table and exports updated.
//!
//! What it is not: the node's control loop (no sockets, no timers, no FIB writes: the
//! FIB batch is built and dropped) or a measurement of the RTR or file-watch path.

use super::data;
use crate::bgp::feed::Feed;
use anyhow::{ensure, Result};
use rr_policy::{Match, Rule, Verdict};
use rr_rib::{
    Family, LimitAction, PeerConfig, PeerId, PeerUp, Policy, Rib, RibConfig, RoaChange, RoaRules,
    RoaSet, Validity,
};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The two peers' ids.
const PEERS: [PeerId; 2] = [1, 2];

/// BIRD's `if roa_check(...) = ROA_INVALID then reject; accept;` as a policy.
pub fn reject_invalid() -> rr_policy::Policy {
    rr_policy::Policy {
        name: "roa-reject-invalid".into(),
        rules: vec![Rule {
            matches: vec![Match::Roa(vec![Validity::Invalid])],
            actions: vec![],
            verdict: Some(Verdict::Reject),
        }],
        default: Verdict::Accept,
    }
}

/// The table after the feeds, ready for changes.
pub struct RouterSide {
    rib: Rib,
    /// Resident set growth while the table was built (MiB).
    pub rss_growth_mib: f64,
    /// Time to import both feeds and take the first FIB batch and exports.
    pub load_time: Duration,
}

/// One timed change.
pub struct RouterRun {
    /// Parsing the include files and indexing the set.
    pub load: Duration,
    /// `set_roas` + FIB changes + exports.
    pub reevaluate: Duration,
    /// Of which `set_roas` alone.
    pub set_roas: Duration,
    pub change: RoaChange,
    pub fib_changes: usize,
    pub updates_out: usize,
    /// Accepted routes per peer afterwards, (IPv4, IPv6).
    pub accepted: [[u64; 2]; 2],
    /// Filtered routes per peer afterwards.
    pub filtered: [u64; 2],
}

fn vm_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

impl RouterSide {
    /// Builds the table: `roas` first, then both feeds (`feeds[i]` from peer `PEERS[i]`
    /// with ASN `asns[i]`), then the first FIB batch and exports are taken.
    pub fn load(local_asn: u32, feeds: [&Feed; 2], asns: [u32; 2], roas: RoaSet) -> Result<Self> {
        let rss0 = vm_rss_mib();
        let t = Instant::now();
        let mut rib = Rib::new(RibConfig {
            local_asn,
            router_id: Ipv4Addr::new(127, 0, 0, 1),
            announce: Vec::new(),
            announce_communities: Vec::new(),
            roa: Some(RoaRules {
                reject_invalid: true,
                reject_unknown: false,
            }),
        });
        rib.set_roas(roas);
        let policy = Arc::new(reject_invalid());
        for (i, (&id, &asn)) in PEERS.iter().zip(&asns).enumerate() {
            rib.add_peer(
                id,
                PeerConfig {
                    name: format!("feed_{}", char::from(b'a' + i as u8)),
                    remote_asn: asn,
                    iface: Some(i as u32 + 1),
                    import: Policy::All,
                    export: Policy::All,
                    import_limit: None,
                    limit_action: LimitAction::Block,
                    import_policy: [Some(policy.clone()), Some(policy.clone())],
                    export_policy: [None, None],
                    link: None,
                },
            );
            rib.peer_up(
                id,
                PeerUp {
                    families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
                    extended_next_hop: false,
                    next_hop_v4: Some(Ipv4Addr::new(127, 0, 0, 1)),
                    next_hop_v6: Some("2001:db8::1".parse()?),
                    next_hop_ll: None,
                },
            );
        }
        for (&id, feed) in PEERS.iter().zip(feeds) {
            data::for_each_update(&feed.bytes, |u| {
                rib.import(id, u);
            })?;
        }
        drop(rib.take_fib_changes());
        for id in PEERS {
            drop(rib.take_exports(id));
        }
        let load_time = t.elapsed();
        Ok(RouterSide {
            rib,
            rss_growth_mib: vm_rss_mib() - rss0,
            load_time,
        })
    }

    /// Accepted routes per peer, (IPv4, IPv6).
    pub fn accepted(&self) -> [[u64; 2]; 2] {
        PEERS.map(|id| {
            let s = self.rib.stats(id);
            [s.imported_v4, s.imported_v6]
        })
    }

    /// Reads `files` as the new ROA set and re-evaluates the table (timed, see the
    /// module docs).
    pub fn change(&mut self, files: &[PathBuf]) -> Result<RouterRun> {
        let t = Instant::now();
        let mut roas = Vec::new();
        for f in files {
            let parsed = rr_roa::parse::parse_file(f)?;
            ensure!(
                parsed.errors.is_empty(),
                "{}: {} bad lines, first: {:?}",
                f.display(),
                parsed.errors.len(),
                parsed.errors.first()
            );
            roas.extend(parsed.roas);
        }
        let set = RoaSet::from_roas(roas);
        let load = t.elapsed();

        let t = Instant::now();
        let change = self.rib.set_roas(set);
        let set_roas = t.elapsed();
        let fib_changes = self.rib.take_fib_changes().len();
        let updates_out: usize = PEERS
            .iter()
            .map(|&id| self.rib.take_exports(id).len())
            .sum();
        let reevaluate = t.elapsed();
        Ok(RouterRun {
            load,
            reevaluate,
            set_roas,
            change,
            fib_changes,
            updates_out,
            accepted: self.accepted(),
            filtered: PEERS.map(|id| self.rib.stats(id).filtered),
        })
    }
}
