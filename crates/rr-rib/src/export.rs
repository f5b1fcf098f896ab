//! The export sink: what each BGP peer should hear from us, as grouped UPDATEs.
//!
//! What it is: [`Rib::take_exports`] and friends. For each slot queued for a peer (or
//! every slot of a family on a full send), the best route is run through the export
//! rules — split horizon (never back to the peer it came from, like BIRD), no iBGP
//! route to another iBGP peer (RFC 4271 9.2, no route reflection), no static routes,
//! no unresolvable routes, the built-in export filter (`all`, `dn42`, `none`), a next
//! hop we can give for the family — then the peer tunnel's DN42 link communities
//! (`rr_policy::dn42::apply_link`, the wiki's rules) and the peer's export policy for
//! the family (its context carrying the route's ROA state; a reject means the prefix is
//! not sent, or withdrawn), and compared with the peer's Adj-RIB-Out bit: announce,
//! withdraw, or nothing. Announcements are grouped by their exported attribute set
//! (after the policy), so a full table leaves as one UPDATE per attribute set (the
//! codec's `encode_split` packs the NLRI into messages), withdrawals as one UPDATE per
//! family. Without an export policy the attributes are worked out once per interned
//! path; with one, the policy runs per prefix (it can match the prefix).
//!
//! Exported attributes (RFC 4271 5.1), applied after the policy, as BIRD does: eBGP —
//! our ASN prepended (5.1.2), NEXT_HOP self (5.1.3), LOCAL_PREF (5.1.5) removed, and
//! MULTI_EXIT_DISC removed (BIRD: MED does not cross ASes) unless the export policy
//! set it (`set_med`, even to the value it had); iBGP — path unchanged, LOCAL_PREF always present (5.1.5),
//! MED kept, next hop self too (our tunnels' next hops mean nothing to another node).
//! Both: communities, large and extended communities, ATOMIC_AGGREGATE and AGGREGATOR
//! kept; unknown optional transitive attributes passed on with the Partial bit set (RFC
//! 4271 section 5), unknown optional non-transitive ones dropped.
//!
//! What it is not: the encoder (rr-bgp's `Update::encode_split` is) nor a place that
//! remembers what it sent beyond one bit per prefix: a best route that changes and
//! changes back between two `take_exports` is announced again, which is harmless.

use crate::hash::Seed;
use crate::path::Path;
use crate::rib::{fam_index, family, UpState, V4Out};
use crate::table::{fam_of, Route, SRC_ANNOUNCE, SRC_STATIC};
use crate::{dn42, Family, PeerId, Policy, Rib, Update, Validity};
use ipnet::{IpNet, Ipv4Net};
use rr_bgp::packet::{
    Attributes, MpReach, MpUnreach, NextHop, RawAttribute, FLAG_OPTIONAL, FLAG_PARTIAL,
    FLAG_TRANSITIVE,
};
use std::collections::HashMap;
use std::sync::Arc;

/// What the exported attributes depend on besides the route.
#[derive(Clone)]
struct Target {
    ibgp: bool,
    local_asn: u32,
    up: UpState,
    /// The peer tunnel's DN42 link communities.
    link: Option<rr_policy::dn42::Link>,
    /// The peer's export policy per family.
    policy: [Option<Arc<rr_policy::Policy>>; 2],
}

/// A route's attributes with the peer tunnel's link communities applied: what the
/// export policy sees.
fn linked_attrs(path: &Path, t: &Target) -> Attributes {
    let mut a = path.attrs();
    if let Some(link) = &t.link {
        rr_policy::dn42::apply_link(&mut a, link);
    }
    a
}

/// The attributes we send, from what the export policy left (`s`) and whether the
/// policy set the MED (see the module documentation).
fn export_attrs(s: Attributes, med_set: bool, t: &Target, fam: usize) -> Attributes {
    let local_pref = s.local_pref.unwrap_or(100);
    let policy_med = if med_set { s.med } else { None };
    let mut a = Attributes {
        origin: s.origin,
        as_path: s.as_path,
        next_hop: None,
        med: s.med,
        local_pref: None,
        atomic_aggregate: s.atomic_aggregate,
        aggregator: s.aggregator,
        communities: s.communities,
        ext_communities: s.ext_communities,
        large_communities: s.large_communities,
        other: s
            .other
            .into_iter()
            .filter(|x| x.flags & FLAG_OPTIONAL != 0 && x.flags & FLAG_TRANSITIVE != 0)
            .map(|x| RawAttribute {
                flags: x.flags | FLAG_PARTIAL,
                ..x
            })
            .collect(),
    };
    if t.ibgp {
        a.local_pref = Some(local_pref);
    } else {
        a.as_path.prepend(t.local_asn);
        a.med = policy_med;
    }
    if let (0, Some(V4Out::Classic(nh))) = (fam, t.up.v4) {
        a.next_hop = Some(nh);
    }
    a
}

/// Collects one peer's announcements and withdrawals of one `take_exports`.
#[derive(Default)]
struct Builder {
    withdraw: [Vec<IpNet>; 2],
    /// (interned path pointer, family) -> group, without an export policy. Valid for
    /// one take: the table does not change meanwhile, so the pointers stay alive and
    /// distinct.
    by_path: HashMap<(usize, usize), usize, Seed>,
    /// (interned path pointer, family) -> what the export policy starts from, with one.
    linked: HashMap<(usize, usize), Attributes, Seed>,
    /// (exported attributes, family) -> group: paths that export alike share an UPDATE.
    by_attrs: HashMap<(Attributes, usize), usize, Seed>,
    /// Per group: family and prefixes.
    groups: Vec<(usize, Vec<IpNet>)>,
}

impl Builder {
    /// Adds `net` (best route `path`, ROA state `roa`) to its group; `false` when the
    /// export policy rejects it.
    fn announce(&mut self, net: IpNet, path: &Arc<Path>, roa: Validity, t: &Target) -> bool {
        let fam = fam_of(&net);
        let key = (Arc::as_ptr(path) as usize, fam);
        let g = match &t.policy[fam] {
            None => match self.by_path.get(&key) {
                Some(&g) => g,
                None => {
                    let a = linked_attrs(path, t);
                    let g = self.group(export_attrs(a, false, t, fam), fam);
                    self.by_path.insert(key, g);
                    g
                }
            },
            Some(policy) => {
                let base = self
                    .linked
                    .entry(key)
                    .or_insert_with(|| linked_attrs(path, t));
                let mut a = base.clone();
                let ctx = rr_policy::Context {
                    prefix: net,
                    roa,
                    local_asn: t.local_asn,
                };
                let out = policy.evaluate(&ctx, &mut a);
                if out.verdict == rr_policy::Verdict::Reject {
                    return false;
                }
                self.group(export_attrs(a, out.med_set, t, fam), fam)
            }
        };
        if let Some((_, nets)) = self.groups.get_mut(g) {
            nets.push(net);
        }
        true
    }

    /// The group of the exported attribute set `attrs` of family `fam`.
    fn group(&mut self, attrs: Attributes, fam: usize) -> usize {
        let next = self.groups.len();
        let g = *self.by_attrs.entry((attrs, fam)).or_insert(next);
        if g == next {
            self.groups.push((fam, Vec::new()));
        }
        g
    }

    fn finish(self, t: &Target) -> Vec<Update> {
        let mut attrs_of: Vec<Option<Attributes>> = Vec::new();
        attrs_of.resize_with(self.groups.len(), || None);
        for ((a, _), g) in self.by_attrs {
            if let Some(slot) = attrs_of.get_mut(g) {
                *slot = Some(a);
            }
        }
        let mut out = Vec::with_capacity(self.groups.len() + 2);
        let [w4, w6] = self.withdraw;
        if !w4.is_empty() {
            out.push(match t.up.v4 {
                // BIRD: IPv4 goes in MP attributes whenever extended next hop is used.
                Some(V4Out::Mp(_)) => Update {
                    mp_unreach: Some(MpUnreach {
                        family: Family::Ipv4Unicast,
                        withdrawn: w4,
                    }),
                    ..Update::default()
                },
                _ => Update {
                    withdrawn: v4_nets(w4),
                    ..Update::default()
                },
            });
        }
        if !w6.is_empty() {
            out.push(Update {
                mp_unreach: Some(MpUnreach {
                    family: Family::Ipv6Unicast,
                    withdrawn: w6,
                }),
                ..Update::default()
            });
        }
        for ((fam, nets), attrs) in self.groups.into_iter().zip(attrs_of) {
            let Some(attrs) = attrs else {
                continue;
            };
            let mp = |next_hop: NextHop, nlri: Vec<IpNet>| MpReach {
                family: family(fam),
                next_hop,
                nlri,
            };
            let update = match (fam, t.up.v4, t.up.v6) {
                (0, Some(V4Out::Classic(_)), _) => Update {
                    attrs: Some(attrs),
                    nlri: v4_nets(nets),
                    ..Update::default()
                },
                (0, Some(V4Out::Mp(nh)), _) | (1, _, Some(nh)) => Update {
                    attrs: Some(attrs),
                    mp_reach: Some(mp(nh, nets)),
                    ..Update::default()
                },
                _ => continue,
            };
            out.push(update);
        }
        out
    }
}

fn v4_nets(nets: Vec<IpNet>) -> Vec<Ipv4Net> {
    nets.into_iter()
        .filter_map(|n| match n {
            IpNet::V4(n) => Some(n),
            IpNet::V6(_) => None,
        })
        .collect()
}

impl Rib {
    /// The UPDATEs due to a peer since the last call: withdrawals (one UPDATE per
    /// family), then one UPDATE per exported attribute set with all its prefixes, then
    /// after the first full send of a session an End-of-RIB marker per family (RFC 4724
    /// section 2). Send each with `Update::encode_split`. Empty for a peer that is down.
    pub fn take_exports(&mut self, id: PeerId) -> Vec<Update> {
        let Some(p) = self.peer_idx(id) else {
            return Vec::new();
        };
        let Some(peer) = self.peers.get_mut(p as usize).and_then(Option::as_mut) else {
            return Vec::new();
        };
        let Some(up) = peer.up else {
            return Vec::new();
        };
        let target = Target {
            ibgp: peer.ibgp,
            local_asn: self.cfg.local_asn,
            up,
            link: peer.cfg.link,
            policy: peer.cfg.export_policy.clone(),
        };
        let queue = std::mem::take(&mut peer.out.queue);
        let full = std::mem::take(&mut peer.out.full);
        let eor = std::mem::take(&mut peer.out.eor);
        let mut b = Builder::default();
        for s in queue {
            self.set_out_bit(p, s, Bit::Queued, false);
            let Some(slot) = self.table.slots.get(s as usize) else {
                continue;
            };
            if !full[fam_of(&slot.net)] {
                self.export_one(p, s, &target, &mut b);
            }
        }
        for (fam, _) in full.iter().enumerate().filter(|(_, f)| **f) {
            for s in 0..self.table.slots.len() as u32 {
                let Some(slot) = self.table.slots.get(s as usize) else {
                    continue;
                };
                if !slot.is_free() && fam_of(&slot.net) == fam {
                    self.export_one(p, s, &target, &mut b);
                }
            }
        }
        let mut out = b.finish(&target);
        for (fam, _) in eor.iter().enumerate().filter(|(_, e)| **e) {
            out.push(Update::end_of_rib(family(fam)));
        }
        out
    }

    /// Whether some peer that is up has exports pending.
    pub fn has_exports(&self) -> bool {
        self.peers.iter().flatten().any(|p| {
            p.up.is_some()
                && (!p.out.queue.is_empty()
                    || p.out.full.iter().any(|f| *f)
                    || p.out.eor.iter().any(|f| *f))
        })
    }

    /// The peer asked for a route refresh (RFC 2918): queue the whole table of that
    /// family again. Ignored for a peer that is down or did not negotiate the family.
    pub fn refresh(&mut self, id: PeerId, family: Family) {
        let f = fam_index(family);
        if let Some(peer) = self
            .peer_idx(id)
            .and_then(|p| self.peers.get_mut(p as usize))
            .and_then(Option::as_mut)
        {
            if peer.up.is_some_and(|u| u.families[f]) {
                peer.out.full[f] = true;
            }
        }
    }

    /// Compares what peer `p` should have for slot `s` with what it has.
    fn export_one(&mut self, p: u32, s: u32, t: &Target, b: &mut Builder) {
        let want = self.exportable(p, s).map(|r| (r.path.clone(), r.roa));
        let Some(slot) = self.table.slots.get(s as usize) else {
            return;
        };
        let net = slot.net;
        let sent = self.peer(p).is_some_and(|peer| peer.out.sent.get(s));
        let announced = want.is_some_and(|(path, roa)| {
            // Our own prefixes: validated as originated by us.
            let roa = roa.unwrap_or_else(|| self.roas.validate(net, Some(self.cfg.local_asn)));
            b.announce(net, &path, roa, t)
        });
        if announced {
            if !sent {
                self.set_out_bit(p, s, Bit::Sent, true);
            }
        } else if sent {
            b.withdraw[fam_of(&net)].push(net);
            self.set_out_bit(p, s, Bit::Sent, false);
        }
    }

    /// The route peer `p` should have for slot `s`, if any.
    fn exportable(&self, p: u32, s: u32) -> Option<&Route> {
        let slot = self.table.slots.get(s as usize)?;
        let r = slot.best()?;
        let peer = self.peer(p)?;
        let up = peer.up.as_ref()?;
        let fam = fam_of(&slot.net);
        let has_next_hop = if fam == 0 {
            up.v4.is_some()
        } else {
            up.v6.is_some()
        };
        if !up.families[fam] || !has_next_hop {
            return None;
        }
        match r.src {
            SRC_STATIC => return None,
            SRC_ANNOUNCE => {}
            q => {
                // Split horizon: never back to where it came from.
                if q == p {
                    return None;
                }
                let from = self.peer(q)?;
                if from.ibgp && peer.ibgp {
                    return None;
                }
                if !self.reachable(r) {
                    return None;
                }
            }
        }
        let allowed = match peer.cfg.export {
            Policy::None => false,
            Policy::All => true,
            Policy::Dn42 => dn42::is_valid_network(&slot.net),
        };
        allowed.then_some(r)
    }

    /// Sets or clears one of peer `p`'s export bits for slot `s`, keeping the slot's
    /// reference count and the peer's exported count right.
    fn set_out_bit(&mut self, p: u32, s: u32, bit: Bit, value: bool) {
        let Some(peer) = self.peers.get_mut(p as usize).and_then(Option::as_mut) else {
            return;
        };
        let out = &mut peer.out;
        let before = out.sent.get(s) || out.queued.get(s);
        match bit {
            Bit::Sent => {
                if out.sent.put(s, value) != value {
                    if value {
                        peer.exported += 1;
                    } else {
                        peer.exported = peer.exported.saturating_sub(1);
                    }
                }
            }
            Bit::Queued => {
                out.queued.put(s, value);
            }
        }
        let after = out.sent.get(s) || out.queued.get(s);
        if let Some(slot) = self.table.slots.get_mut(s as usize) {
            match (before, after) {
                (false, true) => slot.out_refs += 1,
                (true, false) => slot.out_refs = slot.out_refs.saturating_sub(1),
                _ => {}
            }
        }
    }
}

/// Which export bit.
#[derive(Clone, Copy)]
enum Bit {
    Sent,
    Queued,
}
