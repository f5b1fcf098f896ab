//! [`Rib`]: sources in, best route per prefix, changes out.
//!
//! What it is: the table and everything that changes it — peers coming and going,
//! UPDATEs imported (RFC 7606 treat-as-withdraw; the import pipeline itself — checks,
//! ROA, link communities, policy, limit — is in `import.rs`), static routes, the
//! decision process (RFC 4271 9.1.2.2, in BIRD's order), and the FIB sink with its
//! change batching. The export sink is in `export.rs`, the `show route` view in
//! `view.rs`, ROA changes in `roa.rs`.
//!
//! What it is not: I/O. The node calls these methods from its event loop and applies
//! what the `take_*` methods return.
//!
//! Bookkeeping, in short: every prefix has a slot (see `table.rs`) whose first route
//! is its best. When the best route of a slot changes (another source, or the same
//! source with other interned attributes), the slot is queued once for each peer that
//! is up for that family, and its FIB next hop before the first change of the batch is
//! recorded; `take_fib_changes` compares that with the next hop now and reports only
//! real changes. A slot that loses its last route stays allocated (a "zombie") until no
//! peer's export state and no pending FIB change refers to it.

use crate::bits::BitSet;
use crate::hash::Seed;
use crate::path::{Hop, Interner};
use crate::table::{
    fam_of, Route, Routes, Table, FIB_DIRTY, FREE, SRC_ANNOUNCE, SRC_STATIC, ZOMBIE,
};
use crate::{
    Family, ImportOutcome, PeerConfig, PeerId, PeerStats, PeerUp, RibConfig, RoaSet, Update,
};
use ipnet::IpNet;
use rr_bgp::packet::{Attributes, NextHop};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Preference of our own `announce` prefixes (BIRD's "direct" routes).
const PREF_ANNOUNCE: u32 = 240;
/// Preference of static routes (BIRD's default for static).
const PREF_STATIC: u32 = 200;
/// Preference of BGP routes (BIRD's default for BGP).
const PREF_BGP: u32 = 100;
/// Largest FIB change buffer (entries, 28 bytes each) kept between two
/// `take_fib_changes`.
const KEEP_FIB_PENDING: usize = 1 << 16;

/// 0 for IPv4 unicast, 1 for IPv6 unicast.
pub(crate) fn fam_index(f: Family) -> usize {
    match f {
        Family::Ipv4Unicast => 0,
        Family::Ipv6Unicast => 1,
    }
}

/// The family of index `i` (see [`fam_index`]).
pub(crate) fn family(i: usize) -> Family {
    if i == 0 {
        Family::Ipv4Unicast
    } else {
        Family::Ipv6Unicast
    }
}

/// How IPv4 routes go to a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum V4Out {
    /// Classic NLRI field with this NEXT_HOP (RFC 4271).
    Classic(Ipv4Addr),
    /// MP_REACH for IPv4 with an IPv6 next hop (RFC 8950).
    Mp(NextHop),
}

/// What we send a peer that is up: negotiated families and our next hops.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UpState {
    pub(crate) families: [bool; 2],
    /// `None`: no usable next hop, IPv4 routes are not sent.
    pub(crate) v4: Option<V4Out>,
    /// `None`: no IPv6 address, IPv6 routes are not sent.
    pub(crate) v6: Option<NextHop>,
}

impl UpState {
    fn new(up: &PeerUp) -> UpState {
        let mut families = [false; 2];
        for f in &up.families {
            families[fam_index(*f)] = true;
        }
        // RFC 2545 section 3: global (+ link-local); BIRD sends [::, LL] when a session
        // has only a link-local address.
        let v6 = match (up.next_hop_v6, up.next_hop_ll) {
            (Some(g), Some(l)) => Some(NextHop::V6Pair(g, l)),
            (None, Some(l)) => Some(NextHop::V6Pair(Ipv6Addr::UNSPECIFIED, l)),
            (Some(g), None) => Some(NextHop::V6(g)),
            (None, None) => None,
        };
        let v4 = match up.next_hop_v4 {
            Some(a) if !(up.extended_next_hop && up.next_hop_ll.is_some()) => {
                Some(V4Out::Classic(a))
            }
            // RFC 8950: IPv4 NLRI with an IPv6 next hop.
            _ if up.extended_next_hop => v6.map(V4Out::Mp),
            _ => None,
        };
        UpState { families, v4, v6 }
    }
}

/// One peer's export state (its Adj-RIB-Out, compactly).
#[derive(Debug, Default)]
pub(crate) struct Out {
    /// Slots whose prefix the peer currently has from us.
    pub(crate) sent: BitSet,
    /// Slots in `queue`.
    pub(crate) queued: BitSet,
    /// Slots whose best route changed since the last `take_exports`, in order.
    pub(crate) queue: Vec<u32>,
    /// Per family: the whole table is to be (re)sent.
    pub(crate) full: [bool; 2],
    /// Per family: an End-of-RIB marker follows the next full send.
    pub(crate) eor: [bool; 2],
}

/// One peer.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) id: PeerId,
    pub(crate) cfg: PeerConfig,
    pub(crate) ibgp: bool,
    pub(crate) up: Option<UpState>,
    pub(crate) out: Out,
    pub(crate) accepted: [u64; 2],
    /// Routes held but rejected, per [`FilterReason::index`](crate::FilterReason::index).
    pub(crate) filtered_by: [u64; 10],
    preferred: u64,
    pub(crate) exported: u64,
    pub(crate) warned: [bool; 2],
    updates: u64,
    pub(crate) announced: u64,
    withdrawn: u64,
}

/// The routing table: see the crate documentation.
///
/// Decision process (RFC 4271 9.1.2.2, in BIRD's order), best first:
/// 1. preference: our `announce` prefixes (240) > static routes (200) > BGP (100);
/// 2. a BGP route whose next hop resolves over one whose does not (RFC 4271 9.1.2.1;
///    only routes from peers without a tunnel can fail to resolve);
/// 3. highest LOCAL_PREF (100 when absent);
/// 4. shortest AS_PATH (a SET counts 1);
/// 5. lowest ORIGIN (IGP < EGP < incomplete);
/// 6. lowest MED (absent = 0), only between routes whose paths start with the same AS;
/// 7. eBGP over iBGP;
/// 8. lowest [`PeerId`]: the peers' router IDs are not known to the table, so the
///    caller's peer handle is the final, deterministic tie-breaker.
#[derive(Debug)]
pub struct Rib {
    pub(crate) cfg: RibConfig,
    pub(crate) table: Table,
    pub(crate) paths: Interner,
    pub(crate) peers: Vec<Option<Peer>>,
    peer_index: HashMap<PeerId, u32, Seed>,
    /// Static routes, longest prefix first (for next hop resolution).
    statics: Vec<(IpNet, rr_fib::NextHop)>,
    /// Slots with a FIB change pending, with their next hop before the batch.
    fib_pending: Vec<(u32, Option<rr_fib::NextHop>)>,
    /// Slots without routes, to be freed once nothing refers to them.
    zombies: Vec<u32>,
    /// The ROAs routes are validated against (RFC 6811).
    pub(crate) roas: RoaSet,
}

impl Rib {
    /// A table holding only our `announce` prefixes.
    pub fn new(config: RibConfig) -> Rib {
        let mut rib = Rib {
            cfg: config,
            table: Table::default(),
            paths: Interner::default(),
            peers: Vec::new(),
            peer_index: HashMap::default(),
            statics: Vec::new(),
            fib_pending: Vec::new(),
            zombies: Vec::new(),
            roas: RoaSet::new(),
        };
        // Our prefixes carry the node's communities (DN42 region and country).
        let local_attrs = Attributes {
            communities: rib.cfg.announce_communities.clone(),
            ..Attributes::default()
        };
        let local = rib.paths.intern(&local_attrs, None, Hop::Local);
        let announce: Vec<IpNet> = rib.cfg.announce.iter().map(IpNet::trunc).collect();
        rib.cfg.announce.clone_from(&announce);
        for net in announce {
            let s = rib.table.find_or_insert(net);
            if rib.slot_position(s, SRC_ANNOUNCE).is_none() {
                let r = Route::local(local.clone(), SRC_ANNOUNCE);
                rib.change(s, |routes| routes.push(r));
            }
        }
        rib
    }

    /// Replaces our `announce` prefixes and the communities they carry (a reload of
    /// `[router] announce`, `region`, `country`): prefixes that go are withdrawn, new
    /// ones announced, all re-announced when the communities change. Since a peer may
    /// not send us our own prefixes (nor more-specifics), every peer's routes run
    /// through the import again when the prefixes change. Returns the import-limit
    /// outcome of each peer that hit its limit.
    pub fn set_announce(
        &mut self,
        announce: Vec<IpNet>,
        communities: Vec<u32>,
    ) -> Vec<(PeerId, crate::ImportOutcome)> {
        let mut announce: Vec<IpNet> = announce.iter().map(IpNet::trunc).collect();
        announce.sort();
        announce.dedup();
        let communities_changed = communities != self.cfg.announce_communities;
        let prefixes_changed = {
            let mut old = self.cfg.announce.clone();
            old.sort();
            old.dedup();
            old != announce
        };
        if !communities_changed && !prefixes_changed {
            return Vec::new();
        }
        let local_attrs = Attributes {
            communities: communities.clone(),
            ..Attributes::default()
        };
        let local = self.paths.intern(&local_attrs, None, Hop::Local);
        for net in std::mem::take(&mut self.cfg.announce) {
            if communities_changed || !announce.contains(&net) {
                if let Some(s) = self.table.find(&net) {
                    if let Some(i) = self.slot_position(s, SRC_ANNOUNCE) {
                        self.change(s, |routes| {
                            routes.remove(i);
                        });
                    }
                }
            }
        }
        for &net in &announce {
            let s = self.table.find_or_insert(net);
            if self.slot_position(s, SRC_ANNOUNCE).is_none() {
                let r = Route::local(local.clone(), SRC_ANNOUNCE);
                self.change(s, |routes| routes.push(r));
            }
        }
        self.cfg.announce = announce;
        self.cfg.announce_communities = communities;
        let outcomes = if prefixes_changed {
            self.reevaluate_all()
        } else {
            Vec::new()
        };
        self.paths.maybe_sweep(self.route_total());
        outcomes
    }

    /// Every peer's routes through the import again, each with its own settings.
    pub(crate) fn reevaluate_all(&mut self) -> Vec<(PeerId, crate::ImportOutcome)> {
        let mut peers: Vec<(PeerId, PeerConfig)> = self
            .peer_index
            .iter()
            .filter_map(|(&id, &p)| Some((id, self.peer(p)?.cfg.clone())))
            .collect();
        peers.sort_by_key(|(id, _)| *id);
        peers
            .into_iter()
            .map(|(id, cfg)| (id, self.reevaluate_peer(id, cfg)))
            .filter(|(_, o)| *o != crate::ImportOutcome::Ok)
            .collect()
    }

    /// Adds a peer (down until [`Rib::peer_up`]). An existing peer with this id is
    /// removed first.
    pub fn add_peer(&mut self, id: PeerId, config: PeerConfig) {
        if self.peer_index.contains_key(&id) {
            self.remove_peer(id);
        }
        let peer = Peer {
            id,
            ibgp: config.remote_asn == self.cfg.local_asn,
            cfg: config,
            up: None,
            out: Out::default(),
            accepted: [0; 2],
            filtered_by: [0; 10],
            preferred: 0,
            exported: 0,
            warned: [false; 2],
            updates: 0,
            announced: 0,
            withdrawn: 0,
        };
        let p = match self.peers.iter().position(Option::is_none) {
            Some(p) => {
                self.peers[p] = Some(peer);
                p
            }
            None => {
                self.peers.push(Some(peer));
                self.peers.len() - 1
            }
        };
        self.peer_index.insert(id, p as u32);
    }

    /// Like [`Rib::peer_down`], then forgets the peer.
    pub fn remove_peer(&mut self, id: PeerId) {
        if let Some(p) = self.peer_index.remove(&id) {
            self.down(p);
            if let Some(slot) = self.peers.get_mut(p as usize) {
                *slot = None;
            }
        }
    }

    /// Replaces all static routes. They win over BGP routes for the same prefix
    /// (preference 200 > 100, as in BIRD), are written to the FIB, are not exported,
    /// and are what the next hops of tunnel-less peers are resolved through. A prefix
    /// given twice keeps the last next hop.
    pub fn set_static(&mut self, routes: Vec<(IpNet, rr_fib::NextHop)>) {
        let mut seen = HashSet::new();
        let mut new: Vec<(IpNet, rr_fib::NextHop)> = routes
            .into_iter()
            .rev()
            .map(|(n, nh)| (n.trunc(), nh))
            .filter(|(n, _)| seen.insert(*n))
            .collect();
        new.sort_by(|a, b| b.0.prefix_len().cmp(&a.0.prefix_len()).then(a.0.cmp(&b.0)));

        // Slots holding routes whose next hop is resolved through the statics: record
        // their FIB next hop under the old statics before anything moves.
        let ifaceless: Vec<bool> = self
            .peers
            .iter()
            .map(|p| p.as_ref().is_some_and(|p| p.cfg.iface.is_none()))
            .collect();
        let affected: Vec<u32> = self
            .table
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.routes
                    .as_slice()
                    .iter()
                    .any(|r| ifaceless.get(r.src as usize).copied().unwrap_or(false))
            })
            .map(|(i, _)| i as u32)
            .collect();
        let mut reachable_before = Vec::with_capacity(affected.len());
        for &s in &affected {
            self.record_fib(s);
            reachable_before.push(self.best_reachable(s));
        }

        // Only the statics that differ are touched.
        let old: HashMap<IpNet, rr_fib::NextHop> =
            std::mem::replace(&mut self.statics, new.clone())
                .into_iter()
                .collect();
        let kept: HashSet<IpNet> = new.iter().map(|(n, _)| *n).collect();
        for net in old.keys().filter(|n| !kept.contains(n)) {
            if let Some(s) = self.table.find(net) {
                if let Some(i) = self.slot_position(s, SRC_STATIC) {
                    self.change(s, |routes| {
                        routes.remove(i);
                    });
                }
            }
        }
        for (net, nh) in new {
            if old.get(&net) == Some(&nh) {
                continue;
            }
            let path = self
                .paths
                .intern(&Attributes::default(), None, Hop::Static(nh));
            let s = self.table.find_or_insert(net);
            let pos = self.slot_position(s, SRC_STATIC);
            let r = Route::local(path, SRC_STATIC);
            self.change(s, |routes| {
                match pos.and_then(|i| routes.as_mut_slice().get_mut(i)) {
                    Some(slot) => *slot = r,
                    None => routes.push(r),
                }
            });
        }
        // Resolvability may have changed the best route (then `change` queues the
        // exports), or only whether the best route may be exported.
        for (s, before) in affected.into_iter().zip(reachable_before) {
            self.change(s, |_| {});
            if self.best_reachable(s) != before {
                self.queue_exports(s);
            }
        }
        self.paths.maybe_sweep(self.route_total());
    }

    /// The session is established: remembers what was negotiated and queues the whole
    /// table for export to it, followed by an End-of-RIB marker per family (RFC 4724
    /// section 2). If the peer was already up, it goes down first.
    pub fn peer_up(&mut self, id: PeerId, up: PeerUp) {
        let Some(p) = self.peer_index.get(&id).copied() else {
            return;
        };
        if self.peer(p).is_some_and(|peer| peer.up.is_some()) {
            self.down(p);
        }
        let state = UpState::new(&up);
        if let Some(peer) = self.peer_mut(p) {
            peer.out.full = state.families;
            peer.out.eor = state.families;
            peer.warned = [false; 2];
            peer.up = Some(state);
        }
    }

    /// The session is gone: all its routes leave the table at once (FIB changes and
    /// withdrawals to the other peers follow), and its export state is forgotten.
    pub fn peer_down(&mut self, id: PeerId) {
        if let Some(&p) = self.peer_index.get(&id) {
            self.down(p);
        }
    }

    /// Applies one UPDATE from a peer that is up (RFC 4271 9.1.1 / 9.1.2): withdrawals
    /// remove the peer's routes; announcements replace them. With
    /// `treat_as_withdraw` (RFC 7606 section 2) the announced prefixes are withdrawn
    /// instead. Each announced prefix goes through the import pipeline (see
    /// [`FilterReason`](crate::FilterReason) for the checks, in order; then the peer's DN42 link communities,
    /// its import policy, its import limit); what fails is kept as a filtered route,
    /// with its reason and its attributes as received. LOCAL_PREF from an eBGP peer is
    /// ignored (RFC 4271 5.1.5). End-of-RIB needs nothing. Updates from unknown peers or peers that are
    /// down are ignored. O(prefixes in the UPDATE).
    ///
    /// Returns [`ImportOutcome::LimitReached`] when the peer's import limit of a family
    /// was hit with action `warn` (once per session), `restart` or `disable`.
    pub fn import(&mut self, id: PeerId, update: &Update) -> ImportOutcome {
        let mut outcome = ImportOutcome::Ok;
        let Some(p) = self.peer_index.get(&id).copied() else {
            return outcome;
        };
        match self.peer_mut(p) {
            Some(peer) if peer.up.is_some() => peer.updates += 1,
            _ => return outcome,
        }
        for n in &update.withdrawn {
            self.withdraw(p, IpNet::V4(n.trunc()));
        }
        if let Some(u) = &update.mp_unreach {
            for n in &u.withdrawn {
                self.withdraw(p, n.trunc());
            }
        }
        let attrs = match &update.attrs {
            Some(a) if update.treat_as_withdraw.is_none() => a,
            // Tainted (or, impossible after decoding, announcements without attributes):
            // every announced prefix is withdrawn.
            _ => {
                for n in &update.nlri {
                    self.withdraw(p, IpNet::V4(n.trunc()));
                }
                for n in update.mp_reach.iter().flat_map(|r| &r.nlri) {
                    self.withdraw(p, n.trunc());
                }
                self.paths.maybe_sweep(self.route_total());
                return outcome;
            }
        };
        // RFC 4271 5.1.5: LOCAL_PREF from an external peer is ignored (BIRD drops it).
        let ibgp = self.peer(p).is_some_and(|peer| peer.ibgp);
        let local_pref = if ibgp { attrs.local_pref } else { None };
        if !update.nlri.is_empty() {
            let hop = NextHop::V4(attrs.next_hop.unwrap_or(Ipv4Addr::UNSPECIFIED));
            let path = self.paths.intern(attrs, local_pref, Hop::Bgp(hop));
            if let Some(rx) = self.received(p, path, 0) {
                for n in &update.nlri {
                    self.announce(p, IpNet::V4(n.trunc()), &rx, &mut outcome);
                }
            }
        }
        if let Some(r) = &update.mp_reach {
            let fam = fam_index(r.family);
            let path = self.paths.intern(attrs, local_pref, Hop::Bgp(r.next_hop));
            if let Some(rx) = self.received(p, path, fam) {
                for n in &r.nlri {
                    if fam_of(n) == fam {
                        self.announce(p, n.trunc(), &rx, &mut outcome);
                    }
                }
            }
        }
        self.paths.maybe_sweep(self.route_total());
        outcome
    }

    /// The FIB changes since the last call: one entry per prefix, its next hop now
    /// (`None` = remove), only where that differs from before. Prefixes whose best
    /// route is one of our `announce` routes have no FIB entry.
    pub fn take_fib_changes(&mut self) -> Vec<(IpNet, Option<rr_fib::NextHop>)> {
        let mut pending = std::mem::take(&mut self.fib_pending);
        let mut out = Vec::with_capacity(pending.len());
        for &(s, before) in &pending {
            let Some(slot) = self.table.slots.get_mut(s as usize) else {
                continue;
            };
            slot.flags &= !FIB_DIRTY;
            let net = slot.net;
            let now = self.fib_nh(s);
            if now != before {
                out.push((net, now));
            }
        }
        // The node takes a batch every few milliseconds: the next one reuses this buffer
        // instead of growing one from nothing, unless it is a big one not worth keeping.
        pending.clear();
        if pending.capacity() <= KEEP_FIB_PENDING {
            self.fib_pending = pending;
        }
        self.gc();
        out
    }

    /// One peer's counters (all zero for an unknown peer).
    pub fn stats(&self, id: PeerId) -> PeerStats {
        let Some(peer) = self.peer_index.get(&id).and_then(|&p| self.peer(p)) else {
            return PeerStats::default();
        };
        PeerStats {
            imported: peer.accepted[0] + peer.accepted[1],
            filtered: peer.filtered_by.iter().sum(),
            exported: peer.exported,
            imported_v4: peer.accepted[0],
            imported_v6: peer.accepted[1],
            preferred: peer.preferred,
            updates_received: peer.updates,
            announcements_received: peer.announced,
            withdrawals_received: peer.withdrawn,
            filtered_by: peer.filtered_by,
        }
    }

    /// Number of (IPv4, IPv6) prefixes that have a best route.
    pub fn best_count(&self) -> (usize, usize) {
        (self.table.best_count[0], self.table.best_count[1])
    }

    /// Memory figures for `ctl` and benchmarks: (prefix slots in use, distinct
    /// attribute sets held).
    pub fn table_size(&self) -> (usize, usize) {
        (self.table.in_use(), self.paths.len())
    }

    // ---- internals -------------------------------------------------------------

    /// Routes in the table, filtered ones included.
    pub(crate) fn route_total(&self) -> usize {
        let bgp: u64 = self
            .peers
            .iter()
            .flatten()
            .map(|p| p.accepted[0] + p.accepted[1] + p.filtered_by.iter().sum::<u64>())
            .sum();
        bgp as usize + self.statics.len() + self.cfg.announce.len()
    }

    pub(crate) fn peer(&self, p: u32) -> Option<&Peer> {
        self.peers.get(p as usize)?.as_ref()
    }

    pub(crate) fn peer_mut(&mut self, p: u32) -> Option<&mut Peer> {
        self.peers.get_mut(p as usize)?.as_mut()
    }

    pub(crate) fn peer_idx(&self, id: PeerId) -> Option<u32> {
        self.peer_index.get(&id).copied()
    }

    pub(crate) fn slot_position(&self, s: u32, src: u32) -> Option<usize> {
        self.table.slots.get(s as usize)?.routes.position(src)
    }

    /// Takes a peer down: export state first (so that its own routes leaving do not
    /// queue anything for it), then its routes.
    fn down(&mut self, p: u32) {
        let Some(peer) = self.peer_mut(p) else {
            return;
        };
        peer.up = None;
        peer.exported = 0;
        let out = std::mem::take(&mut peer.out);
        for s in out.sent.ones() {
            self.unref_slot(s);
        }
        for s in out.queued.ones().filter(|&s| !out.sent.get(s)) {
            self.unref_slot(s);
        }
        for s in 0..self.table.slots.len() as u32 {
            if let Some(i) = self.slot_position(s, p) {
                self.remove_route(p, s, i);
            }
        }
        self.paths.sweep();
        self.gc();
    }

    fn unref_slot(&mut self, s: u32) {
        if let Some(slot) = self.table.slots.get_mut(s as usize) {
            slot.out_refs = slot.out_refs.saturating_sub(1);
        }
    }

    fn withdraw(&mut self, p: u32, net: IpNet) {
        if let Some(peer) = self.peer_mut(p) {
            peer.withdrawn += 1;
        }
        let Some(s) = self.table.find(&net) else {
            return; // never announced: harmless
        };
        if let Some(i) = self.slot_position(s, p) {
            self.remove_route(p, s, i);
        }
    }

    fn remove_route(&mut self, p: u32, s: u32, i: usize) {
        let Some(slot) = self.table.slots.get(s as usize) else {
            return;
        };
        let fam = fam_of(&slot.net);
        let reason = slot.routes.as_slice().get(i).map(|r| r.reason);
        if let (Some(peer), Some(reason)) = (self.peer_mut(p), reason) {
            let count = match reason {
                Some(r) => &mut peer.filtered_by[r.index()],
                None => &mut peer.accepted[fam],
            };
            *count = count.saturating_sub(1);
        }
        self.change(s, |routes| {
            routes.remove(i);
        });
    }

    /// Applies `f` to a slot's routes, re-runs the selection, and propagates a change of
    /// the best route to the FIB batch and the export queues.
    pub(crate) fn change(&mut self, s: u32, f: impl FnOnce(&mut Routes)) {
        let Some(slot) = self.table.slots.get_mut(s as usize) else {
            return;
        };
        let old = slot.best().cloned();
        f(&mut slot.routes);
        self.reselect(s);
        let Some(slot) = self.table.slots.get_mut(s as usize) else {
            return;
        };
        let same = match (&old, slot.best()) {
            (Some(a), Some(b)) => a.same(b),
            (None, None) => true,
            _ => false,
        };
        if slot.routes.is_empty() && slot.flags & ZOMBIE == 0 {
            slot.flags |= ZOMBIE;
            self.zombies.push(s);
        }
        if !same {
            self.best_changed(s, old);
        }
    }

    /// Moves the best route of a slot to the front.
    fn reselect(&mut self, s: u32) {
        let Some(slot) = self.table.slots.get(s as usize) else {
            return;
        };
        let routes = slot.routes.as_slice();
        if routes.len() < 2 {
            return;
        }
        let mut best: Option<usize> = None;
        for (i, r) in routes.iter().enumerate() {
            if r.filtered() {
                continue;
            }
            best = match best {
                Some(b) if self.compare(r, &routes[b]) != Ordering::Greater => Some(b),
                _ => Some(i),
            };
        }
        if let Some(b) = best.filter(|&b| b != 0) {
            if let Some(slot) = self.table.slots.get_mut(s as usize) {
                slot.routes.as_mut_slice().swap(0, b);
            }
        }
    }

    fn preference(src: u32) -> u32 {
        match src {
            SRC_ANNOUNCE => PREF_ANNOUNCE,
            SRC_STATIC => PREF_STATIC,
            _ => PREF_BGP,
        }
    }

    /// The decision process (see [`Rib`]): `Greater` when `a` is better.
    pub(crate) fn compare(&self, a: &Route, b: &Route) -> Ordering {
        let by_pref = Self::preference(a.src).cmp(&Self::preference(b.src));
        if by_pref != Ordering::Equal || a.src >= SRC_STATIC || b.src >= SRC_STATIC {
            return by_pref;
        }
        let (x, y) = (&a.path, &b.path);
        let (pa, pb) = (self.peer(a.src), self.peer(b.src));
        let ebgp = |p: Option<&Peer>| p.is_some_and(|p| !p.ibgp);
        let id = |p: Option<&Peer>| p.map_or(PeerId::MAX, |p| p.id);
        self.reachable(a)
            .cmp(&self.reachable(b))
            .then(x.local_pref.cmp(&y.local_pref))
            .then(y.as_len.cmp(&x.as_len))
            .then(y.origin.cmp(&x.origin))
            .then_with(|| {
                // RFC 4271 9.1.2.2 c: MED only between routes from the same neighbor AS;
                // a missing MED is the lowest value.
                if x.neighbor_as == y.neighbor_as {
                    y.med.unwrap_or(0).cmp(&x.med.unwrap_or(0))
                } else {
                    Ordering::Equal
                }
            })
            .then(ebgp(pa).cmp(&ebgp(pb)))
            .then(id(pb).cmp(&id(pa)))
    }

    /// Whether a route can be forwarded: always, except a BGP route from a peer without
    /// a tunnel whose next hop no static route covers.
    pub(crate) fn reachable(&self, r: &Route) -> bool {
        if r.src >= SRC_STATIC {
            return true;
        }
        match self.peer(r.src) {
            Some(peer) if peer.cfg.iface.is_some() => true,
            _ => self.route_nh(r).is_some(),
        }
    }

    /// Whether slot `s` has a best route and it is reachable.
    fn best_reachable(&self, s: u32) -> bool {
        self.table
            .slots
            .get(s as usize)
            .and_then(|slot| slot.best())
            .is_some_and(|r| self.reachable(r))
    }

    /// The longest static route containing `addr`.
    fn resolve(&self, addr: IpAddr) -> Option<rr_fib::NextHop> {
        self.statics
            .iter()
            .find(|(net, _)| net.contains(&addr))
            .map(|(_, nh)| *nh)
    }

    /// Where a route would forward (whether or not it is the best).
    pub(crate) fn route_nh(&self, r: &Route) -> Option<rr_fib::NextHop> {
        match r.src {
            SRC_ANNOUNCE => None,
            SRC_STATIC => match r.path.hop {
                Hop::Static(nh) => Some(nh),
                _ => None,
            },
            p => {
                let peer = self.peer(p)?;
                match peer.cfg.iface {
                    Some(iface) => Some(rr_fib::NextHop {
                        iface,
                        gateway: r.path.hop.gateway(true),
                    }),
                    None => {
                        // A host session: resolve the next hop recursively through the
                        // static routes (longest match).
                        let gw = r.path.hop.gateway(false)?;
                        let via = self.resolve(gw)?;
                        Some(rr_fib::NextHop {
                            iface: via.iface,
                            gateway: via.gateway.or(Some(gw)),
                        })
                    }
                }
            }
        }
    }

    /// The FIB next hop of a slot: its best route's.
    fn fib_nh(&self, s: u32) -> Option<rr_fib::NextHop> {
        let best = self.table.slots.get(s as usize)?.best()?;
        self.route_nh(best)
    }

    /// Notes a slot's current FIB next hop as "before", unless already noted.
    pub(crate) fn record_fib(&mut self, s: u32) {
        let before = self.fib_nh(s);
        if let Some(slot) = self.table.slots.get_mut(s as usize) {
            if slot.flags & FIB_DIRTY == 0 {
                slot.flags |= FIB_DIRTY;
                self.fib_pending.push((s, before));
            }
        }
    }

    /// The best route of slot `s` is no longer `old`.
    fn best_changed(&mut self, s: u32, old: Option<Route>) {
        let Some(slot) = self.table.slots.get(s as usize) else {
            return;
        };
        let fam = fam_of(&slot.net);
        let new_src = slot.best().map(|r| r.src);
        let dirty = slot.flags & FIB_DIRTY != 0;
        match (&old, new_src) {
            (None, Some(_)) => self.table.best_count[fam] += 1,
            (Some(_), None) => self.table.best_count[fam] -= 1,
            _ => {}
        }
        if let Some(peer) = old.as_ref().and_then(|r| self.peer_mut(r.src)) {
            peer.preferred = peer.preferred.saturating_sub(1);
        }
        if let Some(peer) = new_src.and_then(|src| self.peer_mut(src)) {
            peer.preferred += 1;
        }
        if !dirty {
            let before = old.as_ref().and_then(|r| self.route_nh(r));
            if before != self.fib_nh(s) {
                if let Some(slot) = self.table.slots.get_mut(s as usize) {
                    slot.flags |= FIB_DIRTY;
                }
                self.fib_pending.push((s, before));
            }
        }
        self.queue_exports(s);
    }

    /// Queues slot `s` for every peer that is up for its family (and not already due
    /// to get the whole family).
    pub(crate) fn queue_exports(&mut self, s: u32) {
        let Some(slot) = self.table.slots.get_mut(s as usize) else {
            return;
        };
        let fam = fam_of(&slot.net);
        let best_src = slot.best().map(|r| r.src);
        for (pi, peer) in self.peers.iter_mut().enumerate() {
            let Some(peer) = peer else {
                continue;
            };
            let Some(up) = &peer.up else {
                continue;
            };
            if !up.families[fam] || peer.out.full[fam] {
                continue;
            }
            // A peer that does not have the prefix from us needs nothing when there is
            // no best route any more, or when the best is its own (split horizon).
            if !peer.out.sent.get(s) && best_src.is_none_or(|src| src == pi as u32) {
                continue;
            }
            if peer.out.queued.put(s, true) {
                continue;
            }
            peer.out.queue.push(s);
            if !peer.out.sent.get(s) {
                slot.out_refs += 1;
            }
        }
    }

    /// Frees the slots that lost their last route and that nothing refers to any more.
    fn gc(&mut self) {
        let zombies = std::mem::take(&mut self.zombies);
        for s in zombies {
            let Some(slot) = self.table.slots.get_mut(s as usize) else {
                continue;
            };
            if slot.flags & FREE != 0 {
                continue;
            }
            if !slot.routes.is_empty() {
                slot.flags &= !ZOMBIE;
            } else if slot.out_refs == 0 && slot.flags & FIB_DIRTY == 0 {
                self.table.release(s);
            } else {
                self.zombies.push(s);
            }
        }
        self.table.shrink();
    }
}
