//! The prefix table's storage: a slab of per-prefix slots and a hash index over them.
//!
//! What it is: [`Table`], mapping each prefix (IPv4 and IPv6 in one slab) to a dense
//! slot number, and [`Slot`], what is kept per prefix: the routes from each source with
//! the best one first. The slab is a list of fixed-size chunks ([`Slab`]): it grows
//! without moving a slot or doubling its memory, so a full table costs its 40-byte
//! slots plus at most one partly used chunk. Slot numbers are what the per-peer export bit sets are indexed
//! by, so a slot is only reused once no peer and no pending FIB change refers to it (the
//! caller decides when; see `Rib::gc`).
//!
//! What it is not: the decision process (the caller orders the routes) nor a
//! longest-prefix-match structure for forwarding (`rr-fib` is); [`Table::lpm`] probes
//! one length at a time and is meant for `show route for`.

use crate::hash::{mix, Seed};
use crate::path::Path;
use crate::{FilterReason, Validity};
use hashbrown::HashTable;
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

/// `Route::src` of our own `announce` prefixes.
pub(crate) const SRC_ANNOUNCE: u32 = u32::MAX;
/// `Route::src` of static routes.
pub(crate) const SRC_STATIC: u32 = u32::MAX - 1;

/// One source's route for one prefix: 16 bytes (the two one-byte fields sit in what
/// was padding beside `src`).
#[derive(Clone, Debug)]
pub(crate) struct Route {
    /// The interned attributes: as accepted (after the import steps), or as received
    /// for a filtered route.
    pub(crate) path: Arc<Path>,
    /// The internal peer index, or [`SRC_ANNOUNCE`] / [`SRC_STATIC`].
    pub(crate) src: u32,
    /// Why the import rejected it: kept for display and re-evaluation, never selected.
    pub(crate) reason: Option<FilterReason>,
    /// ROA state (RFC 6811) of a BGP route; `None` for static and announce routes.
    pub(crate) roa: Option<Validity>,
}

impl Route {
    /// A route the import checks did not reject (static and announce routes always).
    pub(crate) fn local(path: Arc<Path>, src: u32) -> Route {
        Route {
            path,
            src,
            reason: None,
            roa: None,
        }
    }

    /// Rejected by the import: held, never selected.
    pub(crate) fn filtered(&self) -> bool {
        self.reason.is_some()
    }

    /// Same source and same (interned) attributes.
    pub(crate) fn same(&self, other: &Route) -> bool {
        self.src == other.src && Arc::ptr_eq(&self.path, &other.path)
    }
}

/// The routes of one prefix, without a heap allocation for the common single one: 16
/// bytes (the list's `Vec` is boxed: a thin pointer fits beside the tag, a `Vec` or a
/// boxed slice would make every slot 8 bytes larger).
#[derive(Debug, Default)]
pub(crate) enum Routes {
    /// No route (slot free or waiting to be freed).
    #[default]
    Empty,
    /// One route.
    One(Route),
    /// Two or more.
    #[expect(
        clippy::box_collection,
        reason = "a thin pointer keeps Routes at 16 bytes"
    )]
    Many(Box<Vec<Route>>),
}

impl Routes {
    pub(crate) fn as_slice(&self) -> &[Route] {
        match self {
            Routes::Empty => &[],
            Routes::One(r) => std::slice::from_ref(r),
            Routes::Many(v) => v,
        }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [Route] {
        match self {
            Routes::Empty => &mut [],
            Routes::One(r) => std::slice::from_mut(r),
            Routes::Many(v) => v,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Routes::Empty)
    }

    /// Index of the route from `src`.
    pub(crate) fn position(&self, src: u32) -> Option<usize> {
        self.as_slice().iter().position(|r| r.src == src)
    }

    /// Adds a route (the caller made sure `src` has none yet).
    pub(crate) fn push(&mut self, r: Route) {
        *self = match std::mem::take(self) {
            Routes::Empty => Routes::One(r),
            Routes::One(a) => Routes::Many(Box::new(vec![a, r])),
            Routes::Many(mut v) => {
                v.push(r);
                Routes::Many(v)
            }
        };
    }

    /// Removes route `i`, keeping the order of the others; `None` if out of range.
    pub(crate) fn remove(&mut self, i: usize) -> Option<Route> {
        match std::mem::take(self) {
            Routes::Empty => None,
            Routes::One(a) => {
                if i == 0 {
                    Some(a)
                } else {
                    *self = Routes::One(a);
                    None
                }
            }
            Routes::Many(mut v) => {
                let out = (i < v.len()).then(|| v.remove(i));
                *self = match v.len() {
                    0 => Routes::Empty,
                    1 => Routes::One(v.remove(0)),
                    _ => Routes::Many(v),
                };
                out
            }
        }
    }
}

/// Slot state flag: a FIB change for this prefix is pending (its original next hop is
/// recorded in the Rib's pending list).
pub(crate) const FIB_DIRTY: u8 = 1;
/// Slot state flag: no routes left; on the Rib's zombie list until it can be freed.
pub(crate) const ZOMBIE: u8 = 2;
/// Slot state flag: unused, on the free list.
pub(crate) const FREE: u8 = 4;

/// Everything kept per prefix: 40 bytes.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The routes, the best one first when there is a best (a non-filtered route).
    pub(crate) routes: Routes,
    /// The prefix, host bits clear.
    pub(crate) net: IpNet,
    /// [`FIB_DIRTY`] | [`ZOMBIE`] | [`FREE`].
    pub(crate) flags: u8,
    /// Number of peers whose export state (sent or queued) refers to this slot.
    pub(crate) out_refs: u32,
}

impl Slot {
    /// The best route: the first one, unless it is filtered (then there is none).
    pub(crate) fn best(&self) -> Option<&Route> {
        self.routes.as_slice().first().filter(|r| !r.filtered())
    }

    pub(crate) fn is_free(&self) -> bool {
        self.flags & FREE != 0
    }
}

/// 0 for IPv4, 1 for IPv6: the index of per-family arrays.
pub(crate) fn fam_of(net: &IpNet) -> usize {
    match net {
        IpNet::V4(_) => 0,
        IpNet::V6(_) => 1,
    }
}

/// Seeded splitmix64 over the prefix, folded to 32 bits: cheap, and the per-process
/// seed keeps peers from choosing prefixes that collide in advance.
fn hash_net(seed: Seed, net: &IpNet) -> u32 {
    let seed = seed.0;
    let h = match net {
        IpNet::V4(n) => {
            mix(seed ^ (u64::from(u32::from(n.addr())) << 8 | u64::from(n.prefix_len())))
        }
        IpNet::V6(n) => {
            let a = u128::from(n.addr());
            mix(mix(seed ^ a as u64 ^ 0x8000) ^ (a >> 64) as u64 ^ u64::from(n.prefix_len()))
        }
    };
    (h >> 32) as u32
}

/// One index entry: a slot and its prefix's [`hash_net`], kept so that growing the index
/// never reads the slab (a random access per prefix, most of the cost of a full table's
/// import otherwise), and most mismatches are rejected without reading it either.
#[derive(Clone, Copy, Debug)]
struct Entry {
    slot: u32,
    hash: u32,
}

impl Entry {
    /// The 64-bit hash the index uses: hashbrown takes the bucket from the low bits and
    /// a 7-bit tag from the top ones, so the 32 bits are given in both halves.
    fn hash64(h: u32) -> u64 {
        u64::from(h) << 32 | u64::from(h)
    }

    fn rehash(&self) -> u64 {
        Entry::hash64(self.hash)
    }
}

/// Slots per chunk of the slab (160 KiB).
const CHUNK: usize = 4096;

/// The slots, numbered densely, in chunks of [`CHUNK`] that never move: growing by one
/// slot at most allocates one chunk, never copies the others.
#[derive(Debug, Default)]
pub(crate) struct Slab {
    chunks: Vec<Vec<Slot>>,
    len: usize,
}

impl Slab {
    pub(crate) fn get(&self, i: usize) -> Option<&Slot> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut Slot> {
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    /// Number of slots (in use or free).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The slots in number order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.chunks.iter().flatten()
    }

    /// Appends a slot; returns its number. The first chunk grows like a `Vec` (a small
    /// table stays small); later ones are allocated whole.
    fn push(&mut self, slot: Slot) -> usize {
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(slot),
            _ => {
                let mut c = if self.chunks.is_empty() {
                    Vec::new()
                } else {
                    Vec::with_capacity(CHUNK)
                };
                c.push(slot);
                self.chunks.push(c);
            }
        }
        self.len += 1;
        self.len - 1
    }
}

/// All prefixes of both families.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) slots: Slab,
    free: Vec<u32>,
    index: HashTable<Entry>,
    seed: Seed,
    /// Prefixes with a best route, per family.
    pub(crate) best_count: [usize; 2],
}

impl Default for Table {
    fn default() -> Table {
        Table {
            slots: Slab::default(),
            free: Vec::new(),
            index: HashTable::new(),
            seed: Seed::random(),
            best_count: [0; 2],
        }
    }
}

impl Table {
    /// The slot of `net` (host bits must be clear).
    pub(crate) fn find(&self, net: &IpNet) -> Option<u32> {
        let slots = &self.slots;
        let h = hash_net(self.seed, net);
        self.index
            .find(Entry::hash64(h), |e| {
                e.hash == h && slots.get(e.slot as usize).is_some_and(|s| s.net == *net)
            })
            .map(|e| e.slot)
    }

    /// The slot of `net`, created empty if there is none.
    pub(crate) fn find_or_insert(&mut self, net: IpNet) -> u32 {
        let Table {
            slots,
            free,
            index,
            seed,
            ..
        } = self;
        let h = hash_net(*seed, &net);
        let entry = index.entry(
            Entry::hash64(h),
            |e| e.hash == h && slots.get(e.slot as usize).is_some_and(|s| s.net == net),
            Entry::rehash,
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(o) => o.get().slot,
            hashbrown::hash_table::Entry::Vacant(v) => {
                let slot = Slot {
                    routes: Routes::Empty,
                    net,
                    flags: 0,
                    out_refs: 0,
                };
                let i = match free.pop() {
                    Some(i) => {
                        if let Some(s) = slots.get_mut(i as usize) {
                            *s = slot;
                        }
                        i
                    }
                    None => u32::try_from(slots.push(slot)).unwrap_or(u32::MAX),
                };
                v.insert(Entry { slot: i, hash: h });
                i
            }
        }
    }

    /// Frees slot `i` (it must be empty and unreferenced): out of the index, onto the
    /// free list.
    pub(crate) fn release(&mut self, i: u32) {
        let Some(slot) = self.slots.get(i as usize) else {
            return;
        };
        if slot.is_free() {
            return;
        }
        let h = hash_net(self.seed, &slot.net);
        if let Ok(o) = self.index.find_entry(Entry::hash64(h), |e| e.slot == i) {
            o.remove();
        }
        if let Some(slot) = self.slots.get_mut(i as usize) {
            slot.routes = Routes::Empty;
            slot.flags = FREE;
            slot.out_refs = 0;
        }
        self.free.push(i);
    }

    /// The most specific prefix containing `addr` whose slot satisfies `pred`.
    pub(crate) fn lpm(&self, addr: IpAddr, pred: impl Fn(&Slot) -> bool) -> Option<u32> {
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (0..=max).rev().find_map(|len| {
            let net = IpNet::new(addr, len).ok()?.trunc();
            let i = self.find(&net)?;
            self.slots.get(i as usize).filter(|s| pred(s)).map(|_| i)
        })
    }

    /// Slots in use (not free), live or waiting to be freed.
    pub(crate) fn in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Gives memory back after mass removals (a full-table peer gone): everything when
    /// no slot is in use, else the index when it is less than a quarter full. The slab
    /// itself keeps its size (free slots are reused) while any slot is in use.
    pub(crate) fn shrink(&mut self) {
        if self.in_use() == 0 {
            self.slots = Slab::default();
            self.free = Vec::new();
            self.index = HashTable::new();
        } else if self.index.len() < self.index.capacity() / 4 {
            self.index.shrink_to_fit(Entry::rehash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::{Hop, Interner};
    use rr_bgp::packet::Attributes;

    fn route(src: u32) -> Route {
        Route::local(
            Interner::default().intern(&Attributes::default(), None, Hop::Local),
            src,
        )
    }

    #[test]
    fn sizes_stay_small() {
        assert_eq!(std::mem::size_of::<Route>(), 16);
        assert_eq!(std::mem::size_of::<Routes>(), 16);
        assert_eq!(std::mem::size_of::<Slot>(), 40);
    }

    #[test]
    fn routes_push_remove() {
        let mut r = Routes::default();
        assert!(r.remove(0).is_none());
        r.push(route(1));
        r.push(route(2));
        r.push(route(3));
        assert_eq!(r.position(2), Some(1));
        assert!(r.remove(5).is_none());
        assert_eq!(r.remove(1).map(|x| x.src), Some(2));
        assert_eq!(r.remove(0).map(|x| x.src), Some(1));
        assert!(matches!(r, Routes::One(_)));
        assert!(r.remove(1).is_none());
        assert_eq!(r.remove(0).map(|x| x.src), Some(3));
        assert!(r.is_empty());
    }

    #[test]
    fn index_insert_find_release_reuse_lpm() {
        let mut t = Table::default();
        let a: IpNet = "10.0.0.0/8".parse().unwrap();
        let b: IpNet = "10.1.0.0/16".parse().unwrap();
        let c: IpNet = "fd00::/8".parse().unwrap();
        let ia = t.find_or_insert(a);
        let ib = t.find_or_insert(b);
        let ic = t.find_or_insert(c);
        assert_eq!(t.find_or_insert(a), ia);
        assert_eq!(
            (t.find(&a), t.find(&b), t.find(&c)),
            (Some(ia), Some(ib), Some(ic))
        );
        assert_eq!(t.in_use(), 3);
        let addr: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(t.lpm(addr, |_| true), Some(ib));
        assert_eq!(t.lpm(addr, |s| s.net.prefix_len() < 16), Some(ia));
        assert_eq!(t.lpm("11.0.0.1".parse().unwrap(), |_| true), None);
        t.release(ib);
        assert_eq!(t.find(&b), None);
        assert_eq!(t.in_use(), 2);
        let d: IpNet = "192.168.0.0/24".parse().unwrap();
        assert_eq!(t.find_or_insert(d), ib, "freed slot reused");
        assert_eq!(t.find(&a), Some(ia));
        t.shrink();
        assert_eq!((t.find(&a), t.find(&d)), (Some(ia), Some(ib)));
        // Many entries: the index grows (by the kept hashes) and finds all.
        for i in 0..5000u32 {
            let n = IpNet::new(IpAddr::V4((0x0b00_0000 + (i << 8)).into()), 24).unwrap();
            t.find_or_insert(n);
        }
        for i in 0..5000u32 {
            let n = IpNet::new(IpAddr::V4((0x0b00_0000 + (i << 8)).into()), 24).unwrap();
            assert!(t.find(&n).is_some());
        }
        // Almost all released: the index shrinks and still finds the rest.
        for i in 0..5000u32 {
            let n = IpNet::new(IpAddr::V4((0x0b00_0000 + (i << 8)).into()), 24).unwrap();
            let s = t.find(&n).unwrap();
            t.release(s);
        }
        let cap = t.index.capacity();
        t.shrink();
        assert!(t.index.capacity() < cap);
        assert_eq!((t.find(&a), t.find(&c)), (Some(ia), Some(ic)));
        for s in [ia, ib, ic] {
            t.release(s);
        }
        t.shrink();
        assert_eq!((t.in_use(), t.slots.len()), (0, 0));
        assert_eq!(t.find_or_insert(a), 0, "starts over");
    }
}
