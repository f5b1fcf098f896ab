//! The forwarding information base: longest-prefix match over IPv4 and IPv6 routes,
//! sized for a full Internet table (1M IPv4 + 200k IPv6 routes).
//!
//! What it is: [`Fib`], a table mapping prefixes to a [`NextHop`] (a tunnel index and an
//! optional gateway), and [`SharedFib`], the one table the control plane writes and the
//! data plane reads without blocking. Each family is a 16-8-8 (IPv4) / 16-8-…-8 (IPv6)
//! multibit trie with prefix expansion whose 4-byte slots hold an interned next-hop index
//! and the matching route's length (module `trie`), beside the authoritative per-length
//! route maps that updates consult (module `routes`). A lookup is one read of a 256 KiB
//! root plus one read per trie node on the way (at most 2 for IPv4), independent of how
//! many prefix lengths are in use; the data plane's per-packet call is
//! [`Fib::lookup_nh_v4`] / [`Fib::lookup_nh_v6`], which skip rebuilding the matched prefix.
//! On the RouteViews 2015 table (606k IPv4 + 27.7k IPv6) one copy takes 28 B per IPv4
//! route and 56 B per IPv6 route, trie and maps together (`rr-bench fib` has the rest).
//! [`SharedFib`] keeps two copies and publishes a batch of changes by applying it to the
//! spare copy and swapping (left-right), so a batch costs about twice its own size rather
//! than a copy of the table (a batch so big that a copy is cheaper is caught up by one).
//!
//! What it is not: a RIB. It holds exactly one next hop per prefix, no attributes, no
//! route selection; the control plane decides and writes the result here.
#![forbid(unsafe_code)]

mod hops;
mod routes;
mod shared;
mod trie;

pub use shared::{SharedFib, SPARE_WAIT};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use routes::{mask, Routes};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use trie::{leaf, leaf_parts, Trie, EMPTY};

/// Index of an interface (tunnel) in the node, dense from 0.
pub type IfIndex = u32;

/// Where a matching packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// The tunnel the packet leaves through.
    pub iface: IfIndex,
    /// The gateway on that tunnel, if any (tunnels are point-to-point, so mostly informational).
    pub gateway: Option<std::net::IpAddr>,
}

/// One change of a batch: `Some` inserts or replaces the route, `None` removes it.
pub type Change = (IpNet, Option<NextHop>);

/// Why a change was not applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FibError {
    /// Trie leaves name next hops by a 23-bit index, so at most [`Fib::MAX_NEXT_HOPS`]
    /// distinct next hops can be in use at once; routes through new ones beyond that are
    /// not installed (the rest of a batch is).
    #[error(
        "{rejected} route(s) not installed: more than {} distinct next hops in use",
        Fib::MAX_NEXT_HOPS
    )]
    TooManyNextHops {
        /// How many changes of the call were refused.
        rejected: usize,
    },
}

/// One address family: the lookup trie and the authoritative routes, `N` address bytes.
#[derive(Clone, Debug, Default)]
struct Family<const N: usize> {
    trie: Trie<N>,
    routes: Routes<N>,
}

impl<const N: usize> Family<N> {
    /// Sets `key/len` to next hop `hop`; the previous hop of exactly that route.
    fn insert(&mut self, key: [u8; N], len: u8, hop: u32) -> Option<u32> {
        let key = mask(key, len);
        let old = self.routes.insert(key, len, hop);
        if old != Some(hop) {
            self.trie.paint(&key, len, leaf(len, hop));
        }
        old
    }

    /// Removes exactly `key/len`; its hop. Its addresses fall back to the longest shorter
    /// route covering it.
    fn remove(&mut self, key: [u8; N], len: u8) -> Option<u32> {
        let key = mask(key, len);
        let old = self.routes.remove(&key, len)?;
        let fallback = self
            .routes
            .covering(&key, len)
            .map_or(EMPTY, |(l, hop)| leaf(l, hop));
        self.trie.paint(&key, len, fallback);
        Some(old)
    }

    /// The matched prefix length and hop index for address `a`.
    #[inline]
    fn lookup(&self, a: &[u8; N]) -> Option<(u8, u32)> {
        leaf_parts(self.trie.lookup(a))
    }

    fn stats(&self) -> FamilyStats {
        let t = self.trie.size();
        FamilyStats {
            routes: self.routes.len(),
            dense_nodes: t.dense,
            run_nodes: t.runs,
            trie_bytes: t.bytes,
            map_bytes: self.routes.bytes(),
        }
    }
}

/// A longest-prefix-match table over IPv4 and IPv6.
#[derive(Default)]
pub struct Fib {
    v4: Family<4>,
    v6: Family<16>,
    hops: hops::Hops,
    /// While [`SharedFib`] writes through this copy: the changes made, to replay on the
    /// other copy. `None` otherwise (and in clones).
    journal: Option<Vec<Change>>,
}

impl Clone for Fib {
    fn clone(&self) -> Self {
        Fib {
            v4: self.v4.clone(),
            v6: self.v6.clone(),
            hops: self.hops.clone(),
            journal: None,
        }
    }
}

impl std::fmt::Debug for Fib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fib")
            .field("v4_routes", &self.v4.routes.len())
            .field("v6_routes", &self.v6.routes.len())
            .field("next_hops", &self.hops.len())
            .finish_non_exhaustive()
    }
}

/// Sizes of one family's structures, from [`Fib::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FamilyStats {
    /// Routes installed.
    pub routes: usize,
    /// Trie nodes stored as 256 slots (1 KiB).
    pub dense_nodes: usize,
    /// Trie nodes stored as a run list (32 to 256 bytes).
    pub run_nodes: usize,
    /// Bytes of the lookup trie: root, node arenas (by capacity) and free lists.
    pub trie_bytes: usize,
    /// Estimated bytes of the authoritative per-length route maps (by capacity).
    pub map_bytes: usize,
}

impl FamilyStats {
    /// Trie and maps together per route (0 when empty).
    pub fn bytes_per_route(&self) -> f64 {
        if self.routes == 0 {
            0.0
        } else {
            (self.trie_bytes + self.map_bytes) as f64 / self.routes as f64
        }
    }
}

/// Sizes of a [`Fib`]'s structures: what one copy costs in memory (a [`SharedFib`] keeps
/// two once written to).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FibStats {
    pub v4: FamilyStats,
    pub v6: FamilyStats,
    /// Distinct next hops in use.
    pub next_hops: usize,
    /// Bytes of the next-hop intern table.
    pub next_hop_bytes: usize,
}

impl FibStats {
    /// Every byte counted above.
    pub fn total_bytes(&self) -> usize {
        self.v4.trie_bytes
            + self.v4.map_bytes
            + self.v6.trie_bytes
            + self.v6.map_bytes
            + self.next_hop_bytes
    }
}

impl Fib {
    /// How many distinct next hops can be in use at once.
    pub const MAX_NEXT_HOPS: usize = trie::MAX_HOPS;

    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the route for `prefix` (host bits are ignored); returns the old next hop.
    ///
    /// # Panics
    /// If `nh` would be the table's [`Fib::MAX_NEXT_HOPS`]+1-th distinct next hop in use;
    /// [`Fib::try_insert`] and [`Fib::apply`] report that instead.
    pub fn insert(&mut self, prefix: IpNet, nh: NextHop) -> Option<NextHop> {
        match self.try_insert(prefix, nh) {
            Ok(old) => old,
            Err(e) => panic!("{e}"),
        }
    }

    /// Adds or replaces the route for `prefix` (host bits are ignored); returns the old
    /// next hop, or an error (and no change) if `nh` cannot be interned.
    pub fn try_insert(&mut self, prefix: IpNet, nh: NextHop) -> Result<Option<NextHop>, FibError> {
        let hop = self.hops.acquire(nh)?;
        let old = match prefix {
            IpNet::V4(p) => self.v4.insert(p.addr().octets(), p.prefix_len(), hop),
            IpNet::V6(p) => self.v6.insert(p.addr().octets(), p.prefix_len(), hop),
        };
        let old_nh = old.and_then(|h| self.hops.get(h));
        if let Some(h) = old {
            // When it is `hop` itself, this drops the reference just taken.
            self.hops.release(h);
        }
        if old != Some(hop) {
            if let Some(j) = &mut self.journal {
                j.push((prefix.trunc(), Some(nh)));
            }
        }
        Ok(old_nh)
    }

    /// Removes the route for exactly `prefix`; returns its next hop.
    pub fn remove(&mut self, prefix: &IpNet) -> Option<NextHop> {
        let old = match prefix {
            IpNet::V4(p) => self.v4.remove(p.addr().octets(), p.prefix_len()),
            IpNet::V6(p) => self.v6.remove(p.addr().octets(), p.prefix_len()),
        }?;
        let nh = self.hops.get(old);
        self.hops.release(old);
        if let Some(j) = &mut self.journal {
            j.push((prefix.trunc(), None));
        }
        nh
    }

    /// Applies a batch in order: `Some` inserts or replaces, `None` removes. Changes that
    /// cannot be applied (see [`FibError`]) are skipped and counted; the rest are applied.
    pub fn apply(&mut self, changes: &[Change]) -> Result<(), FibError> {
        let mut rejected = 0;
        for (prefix, nh) in changes {
            match nh {
                Some(nh) => {
                    if self.try_insert(*prefix, *nh).is_err() {
                        rejected += 1;
                    }
                }
                None => {
                    self.remove(prefix);
                }
            }
        }
        match rejected {
            0 => Ok(()),
            rejected => Err(FibError::TooManyNextHops { rejected }),
        }
    }

    /// The most specific route covering `addr`, with the prefix that matched.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<(IpNet, NextHop)> {
        match addr {
            IpAddr::V4(a) => self.lookup_v4(a).map(|(p, nh)| (IpNet::V4(p), nh)),
            IpAddr::V6(a) => self.lookup_v6(a).map(|(p, nh)| (IpNet::V6(p), nh)),
        }
    }

    /// The most specific IPv4 route covering `addr`, with the prefix that matched.
    #[inline]
    pub fn lookup_v4(&self, addr: Ipv4Addr) -> Option<(Ipv4Net, NextHop)> {
        let (len, hop) = self.v4.lookup(&addr.octets())?;
        let net = Ipv4Net::new(addr, len).ok()?.trunc();
        Some((net, self.hops.get(hop)?))
    }

    /// The most specific IPv6 route covering `addr`, with the prefix that matched.
    #[inline]
    pub fn lookup_v6(&self, addr: Ipv6Addr) -> Option<(Ipv6Net, NextHop)> {
        let (len, hop) = self.v6.lookup(&addr.octets())?;
        let net = Ipv6Net::new(addr, len).ok()?.trunc();
        Some((net, self.hops.get(hop)?))
    }

    /// The next hop for `addr`: the data plane's per-packet lookup.
    #[inline]
    pub fn lookup_nh(&self, addr: IpAddr) -> Option<NextHop> {
        match addr {
            IpAddr::V4(a) => self.lookup_nh_v4(a),
            IpAddr::V6(a) => self.lookup_nh_v6(a),
        }
    }

    /// The next hop for IPv4 `addr`, without building the matched prefix.
    #[inline]
    pub fn lookup_nh_v4(&self, addr: Ipv4Addr) -> Option<NextHop> {
        let (_, hop) = self.v4.lookup(&addr.octets())?;
        self.hops.get(hop)
    }

    /// The next hop for IPv6 `addr`, without building the matched prefix.
    #[inline]
    pub fn lookup_nh_v6(&self, addr: Ipv6Addr) -> Option<NextHop> {
        let (_, hop) = self.v6.lookup(&addr.octets())?;
        self.hops.get(hop)
    }

    /// The route for exactly `prefix` (host bits ignored), if installed.
    pub fn get(&self, prefix: &IpNet) -> Option<NextHop> {
        let hop = match prefix {
            IpNet::V4(p) => self
                .v4
                .routes
                .get(&mask(p.addr().octets(), p.prefix_len()), p.prefix_len()),
            IpNet::V6(p) => self
                .v6
                .routes
                .get(&mask(p.addr().octets(), p.prefix_len()), p.prefix_len()),
        }?;
        self.hops.get(hop)
    }

    /// Number of routes, both families.
    pub fn len(&self) -> usize {
        self.v4.routes.len() + self.v6.routes.len()
    }

    /// True when there is no route at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All routes, IPv4 first, each family sorted by prefix.
    pub fn routes(&self) -> Vec<(IpNet, NextHop)> {
        let mut v4: Vec<_> = self
            .v4
            .routes
            .iter()
            .filter_map(|(k, l, hop)| {
                let p = Ipv4Net::new(Ipv4Addr::from(k), l).ok()?;
                Some((IpNet::V4(p), self.hops.get(hop)?))
            })
            .collect();
        let mut v6: Vec<_> = self
            .v6
            .routes
            .iter()
            .filter_map(|(k, l, hop)| {
                let p = Ipv6Net::new(Ipv6Addr::from(k), l).ok()?;
                Some((IpNet::V6(p), self.hops.get(hop)?))
            })
            .collect();
        v4.sort_unstable_by_key(|(p, _)| *p);
        v6.sort_unstable_by_key(|(p, _)| *p);
        v4.extend(v6);
        v4
    }

    /// Sizes of the structures, per family.
    pub fn stats(&self) -> FibStats {
        FibStats {
            v4: self.v4.stats(),
            v6: self.v6.stats(),
            next_hops: self.hops.len(),
            next_hop_bytes: self.hops.bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nh(i: IfIndex) -> NextHop {
        NextHop {
            iface: i,
            gateway: None,
        }
    }

    fn look(f: &Fib, s: &str) -> Option<(String, IfIndex)> {
        let r = f
            .lookup(s.parse().unwrap())
            .map(|(p, n)| (p.to_string(), n.iface));
        assert_eq!(
            f.lookup_nh(s.parse().unwrap()).map(|n| n.iface),
            r.as_ref().map(|x| x.1),
            "lookup_nh agrees with lookup for {s}"
        );
        r
    }

    #[test]
    fn longest_match_wins_and_remove_falls_back() {
        let mut f = Fib::new();
        f.insert("0.0.0.0/0".parse().unwrap(), nh(0));
        f.insert("172.20.0.0/14".parse().unwrap(), nh(1));
        f.insert("172.20.1.0/24".parse().unwrap(), nh(2));
        f.insert("fd00::/8".parse().unwrap(), nh(3));
        f.insert("fd00:1::/48".parse().unwrap(), nh(4));
        let l = |s: &str| look(&f, s);
        assert_eq!(l("172.20.1.9"), Some(("172.20.1.0/24".into(), 2)));
        assert_eq!(l("172.21.0.1"), Some(("172.20.0.0/14".into(), 1)));
        assert_eq!(l("8.8.8.8"), Some(("0.0.0.0/0".into(), 0)));
        assert_eq!(l("fd00:1::5"), Some(("fd00:1::/48".into(), 4)));
        assert_eq!(l("fd00:2::5"), Some(("fd00::/8".into(), 3)));
        assert_eq!(l("2001:db8::1"), None);
        assert_eq!(f.len(), 5);
        assert_eq!(f.remove(&"172.20.1.0/24".parse().unwrap()), Some(nh(2)));
        assert_eq!(look(&f, "172.20.1.9"), Some(("172.20.0.0/14".into(), 1)));
        assert_eq!(f.remove(&"172.20.1.0/24".parse().unwrap()), None);
        assert_eq!(f.len(), 4);
    }

    #[test]
    fn host_bits_are_ignored_and_replacing_keeps_count() {
        let mut f = Fib::new();
        assert_eq!(f.insert("10.1.2.3/8".parse().unwrap(), nh(1)), None);
        assert_eq!(f.insert("10.0.0.0/8".parse().unwrap(), nh(2)), Some(nh(1)));
        assert_eq!(f.len(), 1);
        assert_eq!(f.routes()[0].0.to_string(), "10.0.0.0/8");
        assert_eq!(f.get(&"10.9.9.9/8".parse().unwrap()), Some(nh(2)));
        f.insert("::/0".parse().unwrap(), nh(7));
        f.insert("::1/128".parse().unwrap(), nh(8));
        assert_eq!(f.lookup_v6("::1".parse().unwrap()).unwrap().1, nh(8));
        assert_eq!(f.lookup_v6("::2".parse().unwrap()).unwrap().1, nh(7));
        assert_eq!(f.remove(&"10.1.0.0/8".parse().unwrap()), Some(nh(2)));
        assert_eq!(f.stats().next_hops, 2, "nh 1 and 2 released");
    }

    #[test]
    fn edges_default_host_routes_and_overlapping_removal() {
        let mut f = Fib::new();
        f.insert("0.0.0.0/0".parse().unwrap(), nh(1));
        f.insert("255.255.255.255/32".parse().unwrap(), nh(2));
        f.insert("0.0.0.0/32".parse().unwrap(), nh(3));
        f.insert(
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
                .parse()
                .unwrap(),
            nh(4),
        );
        f.insert("::/128".parse().unwrap(), nh(5));
        assert_eq!(
            look(&f, "255.255.255.255"),
            Some(("255.255.255.255/32".into(), 2))
        );
        assert_eq!(look(&f, "255.255.255.254"), Some(("0.0.0.0/0".into(), 1)));
        assert_eq!(look(&f, "0.0.0.0"), Some(("0.0.0.0/32".into(), 3)));
        assert_eq!(
            look(&f, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            Some(("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128".into(), 4))
        );
        assert_eq!(look(&f, "::"), Some(("::/128".into(), 5)));
        assert_eq!(look(&f, "::1"), None);
        // A chain /8 < /16 < /24 < /32 under the default; remove from the middle out.
        for (p, i) in [
            ("10.0.0.0/8", 10),
            ("10.1.0.0/16", 16),
            ("10.1.1.0/24", 24),
            ("10.1.1.1/32", 32),
        ] {
            f.insert(p.parse().unwrap(), nh(i));
        }
        assert_eq!(look(&f, "10.1.1.1"), Some(("10.1.1.1/32".into(), 32)));
        f.remove(&"10.1.0.0/16".parse().unwrap());
        assert_eq!(look(&f, "10.1.1.1"), Some(("10.1.1.1/32".into(), 32)));
        assert_eq!(look(&f, "10.1.2.1"), Some(("10.0.0.0/8".into(), 10)));
        f.remove(&"10.1.1.0/24".parse().unwrap());
        assert_eq!(look(&f, "10.1.1.2"), Some(("10.0.0.0/8".into(), 10)));
        f.remove(&"10.0.0.0/8".parse().unwrap());
        assert_eq!(look(&f, "10.1.1.2"), Some(("0.0.0.0/0".into(), 1)));
        assert_eq!(look(&f, "10.1.1.1"), Some(("10.1.1.1/32".into(), 32)));
        // Removing the default under everything leaves only the specifics.
        f.remove(&"0.0.0.0/0".parse().unwrap());
        assert_eq!(look(&f, "10.1.1.2"), None);
        assert_eq!(look(&f, "10.1.1.1"), Some(("10.1.1.1/32".into(), 32)));
        // Re-inserting a shorter route does not hide longer ones.
        f.insert("10.0.0.0/8".parse().unwrap(), nh(11));
        assert_eq!(look(&f, "10.1.1.1"), Some(("10.1.1.1/32".into(), 32)));
        assert_eq!(look(&f, "10.1.1.2"), Some(("10.0.0.0/8".into(), 11)));
    }

    #[test]
    fn gateways_are_distinct_next_hops() {
        let mut f = Fib::new();
        let g1 = NextHop {
            iface: 1,
            gateway: Some("fe80::1".parse().unwrap()),
        };
        let g2 = NextHop {
            iface: 1,
            gateway: Some("fe80::2".parse().unwrap()),
        };
        f.insert("10.0.0.0/8".parse().unwrap(), g1);
        f.insert("10.1.0.0/16".parse().unwrap(), g2);
        assert_eq!(f.lookup_nh_v4("10.1.0.1".parse().unwrap()), Some(g2));
        assert_eq!(f.lookup_nh_v4("10.2.0.1".parse().unwrap()), Some(g1));
        assert_eq!(f.stats().next_hops, 2);
    }
}
