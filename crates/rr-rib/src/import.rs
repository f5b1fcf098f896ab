//! The import pipeline: what a received route becomes in the table.
//!
//! What it is: for one prefix of a peer's UPDATE, or for a route held in the table that
//! is re-evaluated (ROA change, new peer config), in this order:
//!
//! 1. the built-in checks, first failure wins ([`FilterReason`] order): import `none`,
//!    AS loop (RFC 4271 9.1.2), empty AS path from an eBGP peer, no usable next hop,
//!    one of our own prefixes, outside the DN42 registry's networks (import `dn42`),
//!    ROA state (RFC 6811 section 2, computed for every BGP route; rejected only for
//!    import `dn42` from eBGP peers when `[roa]` says so);
//! 2. the tunnel's DN42 link communities (`rr_policy::dn42::apply_link`);
//! 3. the peer's import policy for the family (`rr_policy::Policy::evaluate`, its
//!    context carrying the ROA state);
//! 4. the import limit.
//!
//! A rejected route is held with its reason and its attributes as received; an
//! accepted one with the attributes steps 2 and 3 made, whose interned path leads
//! back to the received one (`Path::received`), so re-evaluation always starts from
//! what the peer sent. The work that does not depend on the prefix (path-wide checks,
//! origin AS, link communities) is done once per received attribute set
//! ([`Received`]), not per prefix.
//!
//! What it is not: the decision process or the sinks (`rib.rs` applies a route with
//! `Rib::change`, which selects and queues FIB changes and exports).

use crate::dn42;
use crate::path::{Hop, Path};
use crate::rib::family;
use crate::table::{fam_of, Route};
use crate::{
    FilterReason, ImportOutcome, LimitAction, PeerConfig, PeerId, Policy, Rib, RoaChange, Validity,
};
use ipnet::IpNet;
use rr_bgp::packet::{Attributes, NextHop};
use std::collections::HashMap;
use std::sync::Arc;

/// A received attribute set with what the import derives from it once for all the
/// prefixes that carry it, for one peer and family.
pub(crate) struct Received {
    /// As received.
    path: Arc<Path>,
    /// The first path-wide check that fails.
    check: Option<FilterReason>,
    /// The origin AS for ROA validation (RFC 6811 section 2).
    origin: Option<u32>,
    /// After the tunnel's link communities (`path` itself when they change nothing).
    linked: Arc<Path>,
    /// `linked`'s attributes, when the peer has an import policy for the family.
    attrs: Option<Attributes>,
}

/// [`Received`] per (peer, received path, family) during one re-evaluation pass.
pub(crate) type ReceivedCache = HashMap<(u32, usize, usize), Received, crate::hash::Seed>;

impl Rib {
    /// Prepares `path`, as received from peer `p` for family `fam`, for import.
    pub(crate) fn received(&mut self, p: u32, path: Arc<Path>, fam: usize) -> Option<Received> {
        let peer = self.peer(p)?;
        let link = peer.cfg.link;
        let has_policy = peer.cfg.import_policy[fam].is_some();
        let check = self.path_check(p, &path, fam);
        let origin = path.origin_as(self.cfg.local_asn);
        let mut attrs = (link.is_some() || has_policy).then(|| path.attrs());
        let mut linked = path.clone();
        if let (Some(link), Some(a)) = (link, attrs.as_mut()) {
            if rr_policy::dn42::apply_link(a, &link) {
                linked = self.paths.intern_derived(a, &path);
            }
        }
        Some(Received {
            path,
            check,
            origin,
            linked,
            attrs: attrs.filter(|_| has_policy),
        })
    }

    /// The path-wide checks: import `none`, AS loop (RFC 4271 9.1.2), empty AS path
    /// from an eBGP peer (RFC 4271 5.1.2), next hop (RFC 4271 5.1.3, RFC 2545, RFC
    /// 8950).
    fn path_check(&self, p: u32, path: &Path, fam: usize) -> Option<FilterReason> {
        let Some(peer) = self.peer(p) else {
            return Some(FilterReason::ImportNone);
        };
        if peer.cfg.import == Policy::None {
            return Some(FilterReason::ImportNone);
        }
        if path.path_contains(self.cfg.local_asn) {
            return Some(FilterReason::AsLoop);
        }
        // An eBGP neighbor always puts its own AS first (RFC 4271 5.1.2), so an empty
        // path from one is malformed. (BIRD's "enforce first as" check is off, as there.)
        if !peer.ibgp && path.path_is_empty() {
            return Some(FilterReason::EmptyAsPath);
        }
        let hop_ok = match (fam, path.hop) {
            // A loopback next hop is what a daemon on the host sends over a host
            // session; the tunnel, not the gateway, decides where packets go.
            (0, Hop::Bgp(NextHop::V4(a))) => {
                !(a.is_unspecified() || a.is_multicast() || a.is_broadcast())
            }
            (_, Hop::Bgp(NextHop::V4(_))) => false,
            // RFC 2545 / RFC 8950: a link-local or global IPv6 address.
            (_, Hop::Bgp(nh)) => nh.link_local().is_some() || nh.global_v6().is_some(),
            _ => false,
        };
        (!hop_ok).then_some(FilterReason::BadNextHop)
    }

    /// Steps 1 to 3 of the pipeline for `net` from peer `p`, whose ROA state is `roa`:
    /// the path to hold and, if rejected, why.
    fn evaluate(
        &mut self,
        p: u32,
        net: IpNet,
        rx: &Received,
        roa: Validity,
    ) -> (Arc<Path>, Option<FilterReason>) {
        let reject = |r| (rx.path.clone(), Some(r));
        if let Some(r) = rx.check {
            return reject(r);
        }
        let Some(peer) = self.peer(p) else {
            return reject(FilterReason::ImportNone);
        };
        let import = peer.cfg.import;
        if self.cfg.announce.iter().any(|a| a.contains(&net)) {
            return reject(FilterReason::OwnPrefix);
        }
        if import == Policy::Dn42 {
            if !dn42::is_valid_network(&net) {
                return reject(FilterReason::NotDn42);
            }
            // Origin validation is for routes from other ASes (RFC 6811 section 2 is
            // applied at the AS edge): iBGP routes were checked where they entered the
            // AS, and internal more-specifics would fail it (the DN42 wiki imports iBGP
            // with `import all`).
            if let Some(rules) = self.cfg.roa.filter(|_| !peer.ibgp) {
                match roa {
                    Validity::Invalid if rules.reject_invalid => {
                        return reject(FilterReason::RoaInvalid)
                    }
                    Validity::NotFound if rules.reject_unknown => {
                        return reject(FilterReason::RoaUnknown)
                    }
                    _ => {}
                }
            }
        }
        let (Some(policy), Some(attrs)) = (&peer.cfg.import_policy[fam_of(&net)], &rx.attrs) else {
            return (rx.linked.clone(), None);
        };
        let ctx = rr_policy::Context {
            prefix: net,
            roa,
            local_asn: self.cfg.local_asn,
        };
        let mut a = attrs.clone();
        let out = policy.evaluate(&ctx, &mut a);
        match out.verdict {
            rr_policy::Verdict::Reject => reject(FilterReason::Policy),
            rr_policy::Verdict::Accept if out.modified => {
                (self.paths.intern_derived(&a, &rx.path), None)
            }
            rr_policy::Verdict::Accept => (rx.linked.clone(), None),
        }
    }

    /// One announced prefix from peer `p`, carrying `rx`.
    pub(crate) fn announce(
        &mut self,
        p: u32,
        net: IpNet,
        rx: &Received,
        outcome: &mut ImportOutcome,
    ) {
        let Some(peer) = self.peer_mut(p) else {
            return;
        };
        peer.announced += 1;
        let roa = self.roas.validate(net, rx.origin);
        let (path, reason) = self.evaluate(p, net, rx, roa);
        let s = self.table.find_or_insert(net);
        let pos = self.slot_position(s, p);
        self.install(p, s, pos, path, reason, roa, outcome);
    }

    /// Step 4 (the import limit) and the bookkeeping: puts peer `p`'s route for slot `s`
    /// (replacing route `pos` of the slot, which must be `p`'s) into the table, unless
    /// it is what is there already. Returns whether it went from accepted to filtered
    /// or back.
    #[expect(
        clippy::too_many_arguments,
        reason = "one route's parts, kept apart to avoid building a Route twice"
    )]
    fn install(
        &mut self,
        p: u32,
        s: u32,
        pos: Option<usize>,
        path: Arc<Path>,
        reason: Option<FilterReason>,
        roa: Validity,
        outcome: &mut ImportOutcome,
    ) -> bool {
        let Some(slot) = self.table.slots.get(s as usize) else {
            return false;
        };
        let fam = fam_of(&slot.net);
        let old = pos
            .and_then(|i| slot.routes.as_slice().get(i))
            .map(|r| (r.path.clone(), r.reason, r.roa));
        let was_accepted = matches!(old, Some((_, None, _)));
        let Some(peer) = self.peer_mut(p) else {
            return false;
        };
        let (mut path, mut reason) = (path, reason);
        if reason.is_none() && !was_accepted {
            if let Some(limit) = peer.cfg.import_limit {
                if peer.accepted[fam] >= u64::from(limit) {
                    let action = peer.cfg.limit_action;
                    let hit = ImportOutcome::LimitReached {
                        family: family(fam),
                        action,
                    };
                    match action {
                        LimitAction::Warn => {
                            if !peer.warned[fam] {
                                peer.warned[fam] = true;
                                *outcome = hit;
                            }
                        }
                        LimitAction::Block | LimitAction::Restart | LimitAction::Disable => {
                            reason = Some(FilterReason::ImportLimit);
                            path = path.received().clone();
                            if action != LimitAction::Block {
                                *outcome = hit;
                            }
                        }
                    }
                }
            }
        }
        if let Some((old_path, old_reason, old_roa)) = &old {
            if Arc::ptr_eq(old_path, &path) && *old_reason == reason && *old_roa == Some(roa) {
                return false; // nothing changes
            }
            let count = match old_reason {
                Some(r) => &mut peer.filtered_by[r.index()],
                None => &mut peer.accepted[fam],
            };
            *count = count.saturating_sub(1);
        }
        match reason {
            Some(r) => peer.filtered_by[r.index()] += 1,
            None => peer.accepted[fam] += 1,
        }
        let route = Route {
            path,
            src: p,
            reason,
            roa: Some(roa),
        };
        self.change(s, move |routes| match pos {
            Some(i) => {
                if let Some(r) = routes.as_mut_slice().get_mut(i) {
                    *r = route;
                }
            }
            None => routes.push(route),
        });
        was_accepted != reason.is_none()
    }

    /// Runs peer `p`'s route in slot `s` through the pipeline again, from its
    /// attributes as received. With `roa_only`, only when its ROA state changed (the
    /// only input a ROA change alters). Counts into `change`.
    pub(crate) fn reevaluate_route(
        &mut self,
        p: u32,
        s: u32,
        cache: &mut ReceivedCache,
        roa_only: bool,
        change: &mut RoaChange,
    ) -> ImportOutcome {
        let mut outcome = ImportOutcome::Ok;
        let Some(slot) = self.table.slots.get(s as usize) else {
            return outcome;
        };
        let net = slot.net;
        let fam = fam_of(&net);
        let Some(i) = slot.routes.position(p) else {
            return outcome;
        };
        let Some(r) = slot.routes.as_slice().get(i) else {
            return outcome;
        };
        let received = r.path.received().clone();
        let old_roa = r.roa;
        let key = (p, Arc::as_ptr(&received) as usize, fam);
        let rx = match cache.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let Some(rx) = self.received(p, received, fam) else {
                    return outcome;
                };
                v.insert(rx)
            }
        };
        let roa = self.roas.validate(net, rx.origin);
        change.routes_checked += 1;
        let roa_changed = old_roa != Some(roa);
        if roa_only && !roa_changed {
            return outcome;
        }
        let (path, reason) = self.evaluate(p, net, rx, roa);
        if self.install(p, s, Some(i), path, reason, roa, &mut outcome) {
            change.verdict_changed += 1;
        }
        if roa_changed {
            change.validity_changed += 1;
            // Export policies may match the ROA state of a route whose best did not
            // change.
            let best = self.table.slots.get(s as usize).and_then(|sl| sl.best());
            if best.is_some_and(|b| b.src == p) {
                self.queue_exports(s);
            }
        }
        outcome
    }

    /// Replaces peer `id`'s settings and runs all its routes through the import again,
    /// from their attributes as received (a new import policy, link, limit or `import`
    /// takes effect without a session reset: BIRD's `reload in` from its import table).
    /// When the export side changed (`export`, export policies, link), the peer's whole
    /// table is sent again (what no longer passes is withdrawn). A changed tunnel moves
    /// the peer's routes' FIB next hops. Returns what [`Rib::import`] would for the
    /// import limit (the first limit hit).
    pub fn reevaluate_peer(&mut self, id: PeerId, config: PeerConfig) -> ImportOutcome {
        let mut outcome = ImportOutcome::Ok;
        let Some(p) = self.peer_idx(id) else {
            return outcome;
        };
        let local_asn = self.cfg.local_asn;
        let Some(peer) = self.peer(p) else {
            return outcome;
        };
        let old = &peer.cfg;
        let export_changed = old.export != config.export
            || old.export_policy != config.export_policy
            || old.link != config.link
            || peer.ibgp != (config.remote_asn == local_asn);
        let forwarding_changed =
            old.iface != config.iface || peer.ibgp != (config.remote_asn == local_asn);
        let slots: Vec<u32> = (0..self.table.slots.len() as u32)
            .filter(|&s| self.slot_position(s, p).is_some())
            .collect();
        if forwarding_changed {
            for &s in &slots {
                self.record_fib(s);
            }
        }
        let Some(peer) = self.peer_mut(p) else {
            return outcome;
        };
        peer.ibgp = config.remote_asn == local_asn;
        peer.cfg = config;
        if export_changed {
            if let Some(up) = peer.up {
                peer.out.full = up.families;
            }
        }
        let mut cache = ReceivedCache::default();
        let mut counts = RoaChange::default();
        for &s in &slots {
            let o = self.reevaluate_route(p, s, &mut cache, false, &mut counts);
            if outcome == ImportOutcome::Ok {
                outcome = o;
            }
            if forwarding_changed {
                // Selection (reachability, eBGP over iBGP) and exportability depend on
                // the tunnel and the session type.
                self.change(s, |_| {});
                self.queue_exports(s);
            }
        }
        drop(cache);
        self.paths.maybe_sweep(self.route_total());
        outcome
    }
}
