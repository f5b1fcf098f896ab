//! The forwarding information base: longest-prefix match over IPv4 and IPv6 routes,
//! sized for a full Internet table (1M IPv4 + 200k IPv6 routes).
//!
//! What it is: [`Fib`], a table mapping prefixes to a [`NextHop`] (a tunnel index and an
//! optional gateway), and [`SharedFib`], the one table the control plane writes and the
//! data plane reads without blocking. Each family is a 16-8-8 (IPv4) / 16-8-…-8 (IPv6,
//! with 16-bit wide nodes where a block has few runs) multibit trie with prefix
//! expansion whose 4-byte slots hold an interned next-hop index and the matching
//! route's length (module `trie`). Beside the tries, the authoritative
//! per-length route maps and the next-hop intern table (module `routes`, `hops`: the
//! [`Table`]) decide what an update paints. A lookup is one read of a 256 KiB root plus
//! one read per trie node on the way (at most 2 for IPv4), independent of how many prefix
//! lengths are in use; the data plane's per-packet call is [`Fib::lookup_nh_v4`] /
//! [`Fib::lookup_nh_v6`], which skip rebuilding the matched prefix.
//!
//! A standalone [`Fib`] owns its route maps. [`SharedFib`] keeps the only route maps on
//! its writer's side and publishes trie-only `Fib` snapshots: two tries (left-right), one
//! set of maps. A batch is applied to the maps and painted on the spare trie, which is
//! first brought up to date by re-deciding every prefix the previous batch touched from
//! the current maps ([`Fib`]'s `sync`), so a batch costs about twice its own size rather
//! than a copy of the table. `rr-bench fib` has the figures.
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

/// The authoritative side of a table: every route of both families in per-length maps,
/// and the next-hop intern table whose indices the trie leaves hold. A standalone [`Fib`]
/// owns one; a [`SharedFib`] keeps the only one on its writer's side.
#[derive(Clone, Debug, Default)]
pub(crate) struct Table {
    v4: Routes<4>,
    v6: Routes<16>,
    hops: hops::Hops,
}

/// A prefix (host bits clear) that a write changed: where the other copy's trie is stale.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Touched {
    V4([u8; 4], u8),
    V6([u8; 16], u8),
}

/// The leaf `key/len` must paint its block with, according to `routes`: its own if the
/// route exists, else the longest shorter route covering it (or [`EMPTY`]).
fn decided<const N: usize>(routes: &Routes<N>, key: &[u8; N], len: u8) -> trie::Slot {
    match routes.get(key, len) {
        Some(hop) => leaf(len, hop),
        None => routes
            .covering(key, len)
            .map_or(EMPTY, |(l, hop)| leaf(l, hop)),
    }
}

impl Table {
    /// The table a trie-only `fib` stands for: its visible routes (a route hidden under
    /// longer ones everywhere is not in a trie, so it is lost), with the same hop indices.
    fn rebuilt(fib: &Fib) -> Table {
        let mut t = Table::default();
        let mut refs = vec![0usize; fib.nh.len()];
        for (key, len, hop) in fib.v4.visible() {
            t.v4.insert(key, len, hop);
            if let Some(r) = refs.get_mut(hop as usize) {
                *r += 1;
            }
        }
        for (key, len, hop) in fib.v6.visible() {
            t.v6.insert(key, len, hop);
            if let Some(r) = refs.get_mut(hop as usize) {
                *r += 1;
            }
        }
        t.hops = hops::Hops::with_refs(fib.nh.clone(), refs);
        t
    }

    fn counts(&self) -> Counts {
        Counts {
            v4: self.v4.len(),
            v6: self.v6.len(),
            hops: self.hops.len(),
        }
    }

    fn get(&self, prefix: &IpNet) -> Option<NextHop> {
        let hop = match prefix {
            IpNet::V4(p) => self
                .v4
                .get(&mask(p.addr().octets(), p.prefix_len()), p.prefix_len()),
            IpNet::V6(p) => self
                .v6
                .get(&mask(p.addr().octets(), p.prefix_len()), p.prefix_len()),
        }?;
        self.hops.get(hop)
    }

    fn routes(&self) -> Vec<(IpNet, NextHop)> {
        routes_of(
            self.v4.iter(),
            self.v6.iter(),
            |h| self.hops.get(h),
            self.v4.len() + self.v6.len(),
        )
    }

    fn bytes(&self) -> (usize, usize, usize) {
        (self.v4.bytes(), self.v6.bytes(), self.hops.bytes())
    }
}

/// Both families' routes as prefixes, IPv4 first, each sorted by prefix.
fn routes_of(
    v4: impl Iterator<Item = ([u8; 4], u8, u32)>,
    v6: impl Iterator<Item = ([u8; 16], u8, u32)>,
    hop: impl Fn(u32) -> Option<NextHop>,
    size: usize,
) -> Vec<(IpNet, NextHop)> {
    let mut out = Vec::with_capacity(size);
    out.extend(v4.filter_map(|(k, l, h)| {
        let p = Ipv4Net::new(Ipv4Addr::from(k), l).ok()?;
        Some((IpNet::V4(p), hop(h)?))
    }));
    let n4 = out.len();
    out.extend(v6.filter_map(|(k, l, h)| {
        let p = Ipv6Net::new(Ipv6Addr::from(k), l).ok()?;
        Some((IpNet::V6(p), hop(h)?))
    }));
    let (a, b) = out.split_at_mut(n4);
    a.sort_unstable_by_key(|(p, _)| *p);
    b.sort_unstable_by_key(|(p, _)| *p);
    out
}

/// Routes per family and distinct next hops: kept in every copy so that a snapshot
/// without the route maps still answers [`Fib::len`] and [`Fib::stats`].
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    v4: usize,
    v6: usize,
    hops: usize,
}

/// A longest-prefix-match table over IPv4 and IPv6.
///
/// Built with [`Fib::new`] it holds its tries and its authoritative route maps. A
/// snapshot published by [`SharedFib`] holds only the tries and the next-hop values
/// (the writer keeps the maps): its lookups, [`len`](Self::len) and
/// [`stats`](Self::stats) are exact, but [`routes`](Self::routes) and
/// [`get`](Self::get) can only see what the trie shows (see there), so use
/// [`SharedFib::routes`] and [`SharedFib::get`] for the authoritative answer.
pub struct Fib {
    v4: Trie<4>,
    v6: Trie<16>,
    /// Interned next hops by the index the trie leaves hold.
    nh: Vec<NextHop>,
    counts: Counts,
    /// The route maps and intern table: `None` in a [`SharedFib`]'s snapshots.
    table: Option<Box<Table>>,
    /// While [`SharedFib`] writes through this copy: the prefixes changed, to bring the
    /// other copy up to date. `None` otherwise (and in clones).
    journal: Option<Vec<Touched>>,
}

impl Default for Fib {
    fn default() -> Self {
        Fib {
            v4: Trie::default(),
            v6: Trie::default(),
            nh: Vec::new(),
            counts: Counts::default(),
            table: Some(Box::default()),
            journal: None,
        }
    }
}

impl Clone for Fib {
    fn clone(&self) -> Self {
        Fib {
            v4: self.v4.clone(),
            v6: self.v6.clone(),
            nh: self.nh.clone(),
            counts: self.counts,
            table: self.table.clone(),
            journal: None,
        }
    }
}

impl std::fmt::Debug for Fib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fib")
            .field("v4_routes", &self.counts.v4)
            .field("v6_routes", &self.counts.v6)
            .field("next_hops", &self.counts.hops)
            .field("route_maps", &self.table.is_some())
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
    /// Trie nodes stored as a run list (32 to 256 bytes; IPv6 also 16-bit-stride wide
    /// run lists, 48 to 288 bytes).
    pub run_nodes: usize,
    /// Bytes of the lookup trie: root, node arenas (by capacity) and free lists.
    pub trie_bytes: usize,
    /// Estimated bytes of the authoritative per-length route maps (by capacity); 0 in a
    /// [`SharedFib`] snapshot, which has none.
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

/// Sizes of a [`Fib`]'s structures: one trie per family and, for a standalone `Fib` or
/// [`SharedFib::stats`], the route maps (a [`SharedFib`] keeps a second trie per family
/// once written to, and one set of maps).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FibStats {
    pub v4: FamilyStats,
    pub v6: FamilyStats,
    /// Distinct next hops in use.
    pub next_hops: usize,
    /// Bytes of the next-hop values and (where counted) the intern table.
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

/// Sets interned next hop `hop` to `nh` in a copy's list of values.
fn set_hop(list: &mut Vec<NextHop>, hop: u32, nh: NextHop) {
    let i = hop as usize;
    match list.get_mut(i) {
        Some(x) => *x = nh,
        None => {
            // Indices are handed out densely, so this only ever appends `i`.
            list.resize(i + 1, nh);
        }
    }
}

impl Fib {
    /// How many distinct next hops can be in use at once.
    pub const MAX_NEXT_HOPS: usize = trie::MAX_HOPS;

    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The route maps, rebuilt from the tries if this is a copy of a [`SharedFib`]
    /// snapshot (see [`Table::rebuilt`]).
    fn table_mut(&mut self) -> &mut Table {
        if self.table.is_none() {
            self.table = Some(Box::new(Table::rebuilt(self)));
        }
        self.table.get_or_insert_with(Box::default)
    }

    /// Takes the route maps out (rebuilding them if absent): what [`SharedFib`] keeps.
    pub(crate) fn take_table(&mut self) -> Box<Table> {
        self.table_mut();
        self.table.take().unwrap_or_default()
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
    ///
    /// On a copy of a [`SharedFib`] snapshot the route maps are first rebuilt from the
    /// trie (routes hidden under longer ones everywhere are lost).
    pub fn try_insert(&mut self, prefix: IpNet, nh: NextHop) -> Result<Option<NextHop>, FibError> {
        self.table_mut();
        let Fib {
            v4,
            v6,
            nh: values,
            counts,
            table,
            journal,
        } = self;
        let Some(t) = table.as_deref_mut() else {
            return Ok(None);
        };
        let hop = t.hops.acquire(nh)?;
        set_hop(values, hop, nh);
        let (old, touched) = match prefix {
            IpNet::V4(p) => {
                let (key, len) = (mask(p.addr().octets(), p.prefix_len()), p.prefix_len());
                let old = t.v4.insert(key, len, hop);
                if old != Some(hop) {
                    v4.paint(&key, len, leaf(len, hop));
                }
                (old, Touched::V4(key, len))
            }
            IpNet::V6(p) => {
                let (key, len) = (mask(p.addr().octets(), p.prefix_len()), p.prefix_len());
                let old = t.v6.insert(key, len, hop);
                if old != Some(hop) {
                    v6.paint(&key, len, leaf(len, hop));
                }
                (old, Touched::V6(key, len))
            }
        };
        let old_nh = old.and_then(|h| t.hops.get(h));
        if let Some(h) = old {
            // When it is `hop` itself, this drops the reference just taken.
            t.hops.release(h);
        }
        if old != Some(hop) {
            if let Some(j) = journal {
                j.push(touched);
            }
        }
        *counts = t.counts();
        Ok(old_nh)
    }

    /// Removes the route for exactly `prefix`; returns its next hop.
    pub fn remove(&mut self, prefix: &IpNet) -> Option<NextHop> {
        self.table_mut();
        let Fib {
            v4,
            v6,
            counts,
            table,
            journal,
            ..
        } = self;
        let t = table.as_deref_mut()?;
        let (old, touched) = match prefix {
            IpNet::V4(p) => {
                let (key, len) = (mask(p.addr().octets(), p.prefix_len()), p.prefix_len());
                let old = t.v4.remove(&key, len)?;
                v4.paint(&key, len, decided(&t.v4, &key, len));
                (old, Touched::V4(key, len))
            }
            IpNet::V6(p) => {
                let (key, len) = (mask(p.addr().octets(), p.prefix_len()), p.prefix_len());
                let old = t.v6.remove(&key, len)?;
                v6.paint(&key, len, decided(&t.v6, &key, len));
                (old, Touched::V6(key, len))
            }
        };
        let nh = t.hops.get(old);
        t.hops.release(old);
        if let Some(j) = journal {
            j.push(touched);
        }
        *counts = t.counts();
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

    /// Brings this copy's tries up to `table` where they may differ from it: every prefix
    /// in `touched` is painted with what `table` decides for it now (its own leaf if the
    /// route exists, else its covering route's). The tries must have been exact for some
    /// earlier state of `table` that differs from the current one only in `touched`.
    ///
    /// Why that is exact, address by address: a paint of `p` only overwrites slots whose
    /// route is no longer than `p`, and writes either `p` itself (present now) or the
    /// longest current route shorter than `p` covering it. A stale slot is the leaf of a
    /// route `r` of the earlier state whose prefix is in `touched`; painting `r` replaces
    /// it unless a longer leaf is there, and a longer leaf written by this pass is either
    /// a current route or the current best among routes shorter than a touched prefix.
    /// A current route longer than everything stale ends as the slot's value whether it
    /// was painted (present) or kept (no touched prefix of its length or longer covers
    /// it, so nothing overwrites it). Order does not matter, repeats do no harm.
    pub(crate) fn sync(&mut self, table: &Table, touched: &[Touched]) {
        for t in touched {
            match t {
                Touched::V4(key, len) => self.v4.paint(key, *len, decided(&table.v4, key, *len)),
                Touched::V6(key, len) => self.v6.paint(key, *len, decided(&table.v6, key, *len)),
            }
        }
        self.nh.clear();
        self.nh.extend_from_slice(table.hops.list());
        self.counts = table.counts();
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
        let (len, hop) = leaf_parts(self.v4.lookup(&addr.octets()))?;
        let net = Ipv4Net::new(addr, len).ok()?.trunc();
        Some((net, *self.nh.get(hop as usize)?))
    }

    /// The most specific IPv6 route covering `addr`, with the prefix that matched.
    #[inline]
    pub fn lookup_v6(&self, addr: Ipv6Addr) -> Option<(Ipv6Net, NextHop)> {
        let (len, hop) = leaf_parts(self.v6.lookup(&addr.octets()))?;
        let net = Ipv6Net::new(addr, len).ok()?.trunc();
        Some((net, *self.nh.get(hop as usize)?))
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
        let (_, hop) = leaf_parts(self.v4.lookup(&addr.octets()))?;
        self.nh.get(hop as usize).copied()
    }

    /// The next hop for IPv6 `addr`, without building the matched prefix.
    #[inline]
    pub fn lookup_nh_v6(&self, addr: Ipv6Addr) -> Option<NextHop> {
        let (_, hop) = leaf_parts(self.v6.lookup(&addr.octets()))?;
        self.nh.get(hop as usize).copied()
    }

    /// The route for exactly `prefix` (host bits ignored), if installed.
    ///
    /// On a [`SharedFib`] snapshot (no route maps) this reads the trie at the prefix's
    /// first address, so a route that longer ones hide there is not found: ask
    /// [`SharedFib::get`] instead.
    pub fn get(&self, prefix: &IpNet) -> Option<NextHop> {
        if let Some(t) = &self.table {
            return t.get(prefix);
        }
        let (p, nh) = self.lookup(prefix.network())?;
        (p.prefix_len() == prefix.prefix_len()).then_some(nh)
    }

    /// Number of routes, both families.
    pub fn len(&self) -> usize {
        self.counts.v4 + self.counts.v6
    }

    /// True when there is no route at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All routes, IPv4 first, each family sorted by prefix.
    ///
    /// On a [`SharedFib`] snapshot (no route maps) these are the routes its trie shows:
    /// a route that longer routes hide at every one of its addresses is missing. Ask
    /// [`SharedFib::routes`] for the authoritative list.
    pub fn routes(&self) -> Vec<(IpNet, NextHop)> {
        if let Some(t) = &self.table {
            return t.routes();
        }
        let v4 = self.v4.visible();
        let v6 = self.v6.visible();
        let size = v4.len() + v6.len();
        routes_of(
            v4.into_iter(),
            v6.into_iter(),
            |h| self.nh.get(h as usize).copied(),
            size,
        )
    }

    /// Sizes of the structures, per family.
    pub fn stats(&self) -> FibStats {
        let (m4, m6, mh) = self.table.as_ref().map_or((0, 0, 0), |t| t.bytes());
        let family = |t: trie::TrieSize, routes: usize, map_bytes: usize| FamilyStats {
            routes,
            dense_nodes: t.dense,
            run_nodes: t.runs,
            trie_bytes: t.bytes,
            map_bytes,
        };
        FibStats {
            v4: family(self.v4.size(), self.counts.v4, m4),
            v6: family(self.v6.size(), self.counts.v6, m6),
            next_hops: self.counts.hops,
            next_hop_bytes: self.nh.capacity() * std::mem::size_of::<NextHop>() + mh,
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
