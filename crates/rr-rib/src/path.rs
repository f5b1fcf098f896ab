//! Interned route attributes: one shared copy per distinct attribute set.
//!
//! What it is: [`Path`], everything about a route except its prefix and its source
//! (BGP attributes, next hop, and the values the decision process compares, computed
//! once), and [`Interner`], which hands out one `Arc<Path>` per distinct value so that
//! the thousands of prefixes of one UPDATE share one copy, and so that "same attributes"
//! is a pointer comparison. Unused entries are swept in batches, amortised O(1).
//!
//! What it is not: a policy engine; nothing here looks at prefixes or peers.

use rr_bgp::packet::{Attributes, NextHop};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

/// Where a route's packets go, as the source gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hop {
    /// Our own `announce` prefix: delivered by the node, not forwarded.
    Local,
    /// A static route's next hop.
    Static(rr_fib::NextHop),
    /// A BGP next hop: the classic NEXT_HOP or MP_REACH's, as received.
    Bgp(NextHop),
}

impl Hash for Hop {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self {
            Hop::Local => 0u8.hash(h),
            Hop::Static(nh) => {
                1u8.hash(h);
                nh.hash(h);
            }
            Hop::Bgp(nh) => {
                2u8.hash(h);
                match nh {
                    NextHop::V4(a) => a.hash(h),
                    NextHop::V6(a) => a.hash(h),
                    NextHop::V6Pair(g, l) => {
                        g.hash(h);
                        l.hash(h);
                    }
                }
            }
        }
    }
}

impl Hop {
    /// The address to forward to for a BGP next hop. Over a tunnel (`on_link`) the
    /// link-local address is preferred (it is what DN42 sessions carry); without one only
    /// an address that can be routed to (IPv4, or global IPv6) is any use.
    pub(crate) fn gateway(&self, on_link: bool) -> Option<IpAddr> {
        match self {
            Hop::Bgp(NextHop::V4(a)) => Some(IpAddr::V4(*a)),
            Hop::Bgp(nh) => {
                let ll = if on_link { nh.link_local() } else { None };
                ll.or_else(|| nh.global_v6()).map(IpAddr::V6)
            }
            Hop::Static(nh) => nh.gateway,
            Hop::Local => None,
        }
    }
}

/// A route's attributes. Identity (Hash/Eq) is the whole value; the derived fields are
/// functions of `attrs`, so including them changes nothing.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Path {
    /// BGP attributes; `next_hop` is always `None` here (it lives in `hop`).
    pub(crate) attrs: Attributes,
    /// The next hop.
    pub(crate) hop: Hop,
    /// LOCAL_PREF, 100 when absent (RFC 4271 9.1.1, BIRD's default).
    pub(crate) local_pref: u32,
    /// AS path length for RFC 4271 9.1.2.2 a.
    pub(crate) as_len: u32,
    /// The neighbor AS for the MED rule (RFC 4271 9.1.2.2 c): the first AS of the path,
    /// 0 for an empty path (a route from inside our AS).
    pub(crate) neighbor_as: u32,
}

impl Path {
    /// A path with these attributes (their `next_hop` is dropped) and next hop.
    pub(crate) fn new(mut attrs: Attributes, hop: Hop) -> Path {
        attrs.next_hop = None;
        Path {
            local_pref: attrs.local_pref.unwrap_or(100),
            as_len: u32::try_from(attrs.as_path.len()).unwrap_or(u32::MAX),
            neighbor_as: attrs.as_path.first().unwrap_or(0),
            attrs,
            hop,
        }
    }
}

/// The set of live attribute sets.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    set: HashSet<Arc<Path>>,
    /// Size after the last sweep; the next sweep runs once the set doubled.
    live: usize,
}

impl Interner {
    /// The shared copy of `path`.
    pub(crate) fn intern(&mut self, path: Path) -> Arc<Path> {
        if let Some(a) = self.set.get(&path) {
            return a.clone();
        }
        let a = Arc::new(path);
        self.set.insert(a.clone());
        a
    }

    /// Drops the sets no route holds any more, when the set has doubled since the last
    /// sweep, or when it holds more sets beyond `routes` (the number of routes in the
    /// table: each live set is held by at least one, so the rest are dead) than a
    /// quarter of its size and 1024. Either way a sweep frees a fixed share of what it
    /// scans, so its cost is amortised over the insertions that created the dead sets.
    pub(crate) fn maybe_sweep(&mut self, routes: usize) {
        let len = self.set.len();
        let surely_dead = len.saturating_sub(routes);
        if len > 2 * self.live + 1024 || surely_dead > (len / 4).max(1024) {
            self.sweep();
        }
    }

    /// Drops every set no route holds any more.
    pub(crate) fn sweep(&mut self) {
        self.set.retain(|a| Arc::strong_count(a) > 1);
        self.set.shrink_to_fit();
        self.live = self.set.len();
    }

    /// Distinct attribute sets held (live or not yet swept).
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rr_bgp::packet::{AsPath, AsSegment};
    use std::net::Ipv4Addr;

    fn attrs(path: Vec<u32>) -> Attributes {
        Attributes {
            as_path: AsPath {
                segments: vec![AsSegment::Sequence(path)],
            },
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            ..Attributes::default()
        }
    }

    #[test]
    fn same_value_same_arc_and_sweep_frees() {
        let mut i = Interner::default();
        let hop = Hop::Bgp(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1)));
        let a = i.intern(Path::new(attrs(vec![1, 2]), hop));
        let b = i.intern(Path::new(attrs(vec![1, 2]), hop));
        let c = i.intern(Path::new(attrs(vec![1, 3]), hop));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(a.attrs.next_hop, None);
        assert_eq!((a.as_len, a.neighbor_as, a.local_pref), (2, 1, 100));
        assert_eq!(i.len(), 2);
        drop(c);
        i.sweep();
        assert_eq!(i.len(), 1);
        drop((a, b));
        i.sweep();
        assert_eq!(i.len(), 0);
    }

    #[test]
    fn gateway_choice() {
        let ll: std::net::Ipv6Addr = "fe80::1".parse().unwrap();
        let g: std::net::Ipv6Addr = "fd00::1".parse().unwrap();
        let pair = Hop::Bgp(NextHop::V6Pair(g, ll));
        assert_eq!(pair.gateway(true), Some(IpAddr::V6(ll)));
        assert_eq!(pair.gateway(false), Some(IpAddr::V6(g)));
        let only_ll = Hop::Bgp(NextHop::V6(ll));
        assert_eq!(only_ll.gateway(true), Some(IpAddr::V6(ll)));
        assert_eq!(only_ll.gateway(false), None);
        assert_eq!(Hop::Local.gateway(true), None);
    }
}
