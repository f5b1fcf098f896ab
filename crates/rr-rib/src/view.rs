//! `show route`: the table as [`RouteView`] rows.
//!
//! What it is: [`Rib::routes`], read-only, for `ctl show routes` and tests. Rows come
//! sorted by prefix, each prefix's best route first, then its other routes in decision
//! order, then its filtered ones (with why, and every BGP route's ROA state). What it is not: a hot path (it allocates strings per
//! row), nor the FIB view (`rr-fib` holds what is installed).

use crate::table::{Route, Slot, SRC_ANNOUNCE, SRC_STATIC};
use crate::{Rib, RouteFilter, RouteView};
use ipnet::IpNet;
use rr_bgp::packet::Origin;

impl Rib {
    /// The routes `filter` selects (see [`RouteFilter`]).
    pub fn routes(&self, filter: RouteFilter) -> Vec<RouteView> {
        let wanted = |slot: &Slot| {
            if filter.filtered {
                slot.routes.as_slice().iter().any(Route::filtered)
            } else if filter.all {
                !slot.routes.is_empty()
            } else {
                slot.best().is_some()
            }
        };
        let slots: Vec<u32> = if let Some(net) = filter.prefix {
            self.table.find(&net.trunc()).into_iter().collect()
        } else if let Some(addr) = filter.for_addr {
            self.table.lpm(addr, wanted).into_iter().collect()
        } else {
            let mut v: Vec<u32> = (0..self.table.slots.len() as u32)
                .filter(|&s| {
                    self.table
                        .slots
                        .get(s as usize)
                        .is_some_and(|slot| !slot.is_free() && wanted(slot))
                })
                .collect();
            v.sort_by_key(|&s| self.table.slots.get(s as usize).map(|slot| slot.net));
            v
        };
        let mut out = Vec::new();
        for s in slots {
            let Some(slot) = self.table.slots.get(s as usize) else {
                continue;
            };
            let mut rows: Vec<(bool, &Route)> = slot
                .routes
                .as_slice()
                .iter()
                .enumerate()
                .map(|(i, r)| (i == 0 && !r.filtered(), r))
                .filter(|(best, r)| {
                    if filter.filtered {
                        r.filtered()
                    } else {
                        filter.all || *best
                    }
                })
                .collect();
            rows.sort_by(|(ba, a), (bb, b)| {
                bb.cmp(ba)
                    .then(a.filtered().cmp(&b.filtered()))
                    .then_with(|| self.compare(b, a))
            });
            out.extend(
                rows.into_iter()
                    .map(|(best, r)| self.view(slot.net, r, best)),
            );
        }
        out
    }

    fn view(&self, prefix: IpNet, r: &Route, best: bool) -> RouteView {
        let peer = match r.src {
            SRC_ANNOUNCE | SRC_STATIC => None,
            p => self.peer(p),
        };
        let source = match r.src {
            SRC_ANNOUNCE => "announce".to_string(),
            SRC_STATIC => "static".to_string(),
            _ => format!("bgp {}", peer.map_or("?", |p| p.cfg.name.as_str())),
        };
        let nh = self.route_nh(r);
        let on_link = peer.is_some_and(|p| p.cfg.iface.is_some());
        let a = r.path.attrs();
        RouteView {
            prefix,
            best,
            source,
            peer: peer.map(|p| p.id),
            iface: nh.map(|n| n.iface),
            // An unresolvable host-session route still shows the next hop it carries.
            gateway: nh
                .and_then(|n| n.gateway)
                .or_else(|| r.path.hop.gateway(on_link)),
            as_path: a.as_path.to_string(),
            origin: match a.origin {
                Origin::Igp => "IGP",
                Origin::Egp => "EGP",
                Origin::Incomplete => "incomplete",
            },
            med: a.med,
            local_pref: r.path.local_pref,
            communities: a
                .communities
                .iter()
                .map(|c| format!("({},{})", c >> 16, c & 0xffff))
                .collect(),
            large_communities: a
                .large_communities
                .iter()
                .map(|[g, l1, l2]| format!("({g},{l1},{l2})"))
                .collect(),
            filtered: r.filtered(),
            reason: r.reason,
            roa: r.roa,
        }
    }
}
