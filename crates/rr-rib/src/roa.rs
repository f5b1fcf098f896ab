//! ROA origin validation in the table (RFC 6811): the ROA set, and re-evaluation of
//! received routes when it changes.
//!
//! What it is: [`Rib::set_roas`], and [`Rib::set_roa_rules`] (what validation rejects,
//! changed by a reload: every received route through the import again). A route's validity depends only on the ROAs covering
//! its prefix, so after a change only routes under a changed ROA's prefix
//! ([`RoaDelta::affects`](crate::RoaDelta::affects)) are validated again, and only
//! those whose state changed go through the import pipeline again (`import.rs`), from
//! their attributes as received. What it is not: a ROA source (files and RTR are the
//! node's; it hands the table a whole new set).

use crate::import::ReceivedCache;
use crate::table::SRC_STATIC;
use crate::{Rib, RoaChange, RoaSet};

impl Rib {
    /// Replaces what ROA validation rejects (`[roa] invalid` / `unknown`; `None`: no
    /// `[roa]`, nothing rejected for its state). Every peer's routes run through the
    /// import again from their attributes as received, as [`Rib::reevaluate_peer`]
    /// does with the peer's own settings unchanged; no session is touched. Returns the
    /// import-limit outcome of each peer that hit its limit.
    pub fn set_roa_rules(
        &mut self,
        rules: Option<crate::RoaRules>,
    ) -> Vec<(crate::PeerId, crate::ImportOutcome)> {
        if self.cfg.roa == rules {
            return Vec::new();
        }
        self.cfg.roa = rules;
        self.reevaluate_all()
    }

    /// Replaces the ROA set. Received routes covered by a changed ROA are validated
    /// again and, where their state changes, run through the import pipeline again:
    /// accepted, filtered, or given other attributes by the import policy. FIB changes
    /// and exports follow as for an UPDATE; no session is touched. A route that a ROA
    /// change would accept beyond the import limit is kept out (`import-limit`) with
    /// action `restart` or `disable` too: no session restarts for a ROA change.
    pub fn set_roas(&mut self, roas: RoaSet) -> RoaChange {
        let delta = RoaSet::diff(&self.roas, &roas);
        self.roas = roas;
        let mut change = RoaChange {
            roas_added: delta.added().len(),
            roas_removed: delta.removed().len(),
            ..RoaChange::default()
        };
        if delta.is_empty() {
            return change;
        }
        let mut cache = ReceivedCache::default();
        let mut srcs = Vec::new();
        for s in 0..self.table.slots.len() as u32 {
            let Some(slot) = self.table.slots.get(s as usize) else {
                continue;
            };
            if slot.routes.is_empty() || !delta.affects(slot.net) {
                continue;
            }
            srcs.clear();
            srcs.extend(
                slot.routes
                    .as_slice()
                    .iter()
                    .map(|r| r.src)
                    .filter(|&src| src < SRC_STATIC),
            );
            for &p in &srcs {
                self.reevaluate_route(p, s, &mut cache, true, &mut change);
            }
        }
        drop(cache);
        self.paths.maybe_sweep(self.route_total());
        change
    }

    /// The ROA set in use.
    pub fn roas(&self) -> &RoaSet {
        &self.roas
    }
}
