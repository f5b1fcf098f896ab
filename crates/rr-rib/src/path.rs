//! Interned route attributes: one shared copy per distinct attribute set.
//!
//! What it is: [`Path`], everything about a route except its prefix and its source
//! (BGP attributes, next hop, and the values the decision process compares, computed
//! once), stored compactly: the scalar attributes inline, the AS path and the three
//! community lists packed into one `u32` array (a full table's 100k sets take about half
//! the memory of as many `Attributes` values; [`Path::attrs`] unpacks them for display
//! and export), and [`Interner`], which hands out one `Arc<Path>` per distinct value so that
//! the thousands of prefixes of one UPDATE share one copy, and so that "same attributes"
//! is a pointer comparison. An UPDATE's attributes are hashed once (with the table's
//! fast seeded hasher) and compared in place: they are only copied when the set is new.
//! Each path keeps its hash, so the set grows and is swept without hashing again.
//! Unused entries are swept in batches, amortised O(1).
//!
//! A path an import step changed (DN42 link communities, the import policy) keeps the
//! path it was made from, as received ([`Path::received`]): part of its identity, so a
//! route still costs one `Arc` and re-evaluation (ROA change, new policy) starts from
//! what the peer sent, not from an earlier result.
//!
//! What it is not: a policy engine; nothing here looks at prefixes or peers.

use crate::hash::Seed;
use hashbrown::HashTable;
use rr_bgp::packet::{AsPath, AsSegment, Attributes, NextHop, Origin, RawAttribute};
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr};
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

/// A route's attributes and next hop. Identity is everything but the derived fields
/// (`local_pref`, `as_len`, `neighbor_as`, functions of the rest) and `hash` (the hash
/// of the rest under the interner's seed); `orig` counts by pointer.
#[derive(Debug)]
pub(crate) struct Path {
    /// The next hop.
    pub(crate) hop: Hop,
    /// LOCAL_PREF, 100 when absent (RFC 4271 9.1.1, BIRD's default).
    pub(crate) local_pref: u32,
    /// AS path length for RFC 4271 9.1.2.2 a.
    pub(crate) as_len: u32,
    /// The neighbor AS for the MED rule (RFC 4271 9.1.2.2 c): the first AS of the path,
    /// 0 for an empty path (a route from inside our AS).
    pub(crate) neighbor_as: u32,
    /// ORIGIN.
    pub(crate) origin: Origin,
    /// MULTI_EXIT_DISC.
    pub(crate) med: Option<u32>,
    /// LOCAL_PREF as kept (iBGP only).
    local_pref_attr: Option<u32>,
    atomic_aggregate: bool,
    aggregator: Option<(u32, Ipv4Addr)>,
    /// AS path, communities, large and extended communities: see [`pack`].
    words: Box<[u32]>,
    /// Unrecognised attributes (rare; an empty box allocates nothing).
    other: Box<[RawAttribute]>,
    /// The path as received, when this one is the result of import steps on it (never
    /// itself a derived path).
    orig: Option<Arc<Path>>,
    hash: u64,
}

/// Packs the variable-length attributes into `out` (cleared first): the AS path as
/// `segment count, (kind, length, ASNs...)...`, then `count, values...` for the
/// communities, large communities (3 words each) and extended communities (2 words
/// each, native byte order: only [`unpack`] reads them).
fn pack(a: &Attributes, out: &mut Vec<u32>) {
    let n = |len: usize| u32::try_from(len).unwrap_or(u32::MAX);
    out.clear();
    out.push(n(a.as_path.segments.len()));
    for seg in &a.as_path.segments {
        let (kind, asns) = match seg {
            AsSegment::Sequence(v) => (0, v),
            AsSegment::Set(v) => (1, v),
            AsSegment::ConfedSequence(v) => (2, v),
            AsSegment::ConfedSet(v) => (3, v),
        };
        out.push(kind);
        out.push(n(asns.len()));
        out.extend_from_slice(asns);
    }
    out.push(n(a.communities.len()));
    out.extend_from_slice(&a.communities);
    out.push(n(a.large_communities.len()));
    for l in &a.large_communities {
        out.extend_from_slice(l);
    }
    out.push(n(a.ext_communities.len()));
    for e in &a.ext_communities {
        let [b0, b1, b2, b3, b4, b5, b6, b7] = *e;
        out.push(u32::from_ne_bytes([b0, b1, b2, b3]));
        out.push(u32::from_ne_bytes([b4, b5, b6, b7]));
    }
}

/// Reads [`pack`]'s words back (a short array reads as zeros and empty lists).
struct Words<'a>(&'a [u32]);

impl<'a> Words<'a> {
    fn one(&mut self) -> u32 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.0 = rest;
        first
    }

    fn many(&mut self, n: usize) -> &'a [u32] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

/// Attributes holding the AS path and community lists [`pack`] packed (the other fields
/// are left at their defaults).
fn unpack(words: &[u32]) -> Attributes {
    let mut w = Words(words);
    let segments = (0..w.one())
        .map(|_| {
            let kind = w.one();
            let len = w.one() as usize;
            let asns = w.many(len).to_vec();
            match kind {
                0 => AsSegment::Sequence(asns),
                1 => AsSegment::Set(asns),
                2 => AsSegment::ConfedSequence(asns),
                _ => AsSegment::ConfedSet(asns),
            }
        })
        .collect();
    let len = w.one() as usize;
    let communities = w.many(len).to_vec();
    let len = w.one() as usize;
    let large = w
        .many(len.saturating_mul(3))
        .chunks_exact(3)
        .filter_map(|c| match *c {
            [a, b, c] => Some([a, b, c]),
            _ => None,
        })
        .collect();
    let len = w.one() as usize;
    let ext = w
        .many(len.saturating_mul(2))
        .chunks_exact(2)
        .filter_map(|c| match *c {
            [a, b] => {
                let ([a0, a1, a2, a3], [b0, b1, b2, b3]) = (a.to_ne_bytes(), b.to_ne_bytes());
                Some([a0, a1, a2, a3, b0, b1, b2, b3])
            }
            _ => None,
        })
        .collect();
    Attributes {
        as_path: AsPath { segments },
        communities,
        large_communities: large,
        ext_communities: ext,
        ..Attributes::default()
    }
}

impl Path {
    /// The path `attrs` (their next hop ignored, LOCAL_PREF replaced by `local_pref`),
    /// whose [`pack`]ed words are `words`, and `hop` make; `hash` is their
    /// [`hash_parts`].
    fn new(
        attrs: &Attributes,
        local_pref: Option<u32>,
        words: &[u32],
        hop: Hop,
        orig: Option<Arc<Path>>,
        hash: u64,
    ) -> Path {
        Path {
            hop,
            local_pref: local_pref.unwrap_or(100),
            as_len: u32::try_from(attrs.as_path.len()).unwrap_or(u32::MAX),
            neighbor_as: attrs.as_path.first().unwrap_or(0),
            origin: attrs.origin,
            med: attrs.med,
            local_pref_attr: local_pref,
            atomic_aggregate: attrs.atomic_aggregate,
            aggregator: attrs.aggregator,
            words: words.into(),
            other: attrs.other.as_slice().into(),
            orig,
            hash,
        }
    }

    /// The path as received: the one this was derived from, or itself.
    pub(crate) fn received(self: &Arc<Path>) -> &Arc<Path> {
        self.orig.as_ref().unwrap_or(self)
    }

    /// The AS path's segments as (kind, ASNs): kind 0 sequence, 1 set, 2 and 3 the
    /// confederation ones (see [`pack`]).
    fn segments(&self) -> impl Iterator<Item = (u32, &[u32])> + '_ {
        let mut w = Words(&self.words);
        (0..w.one()).map(move |_| {
            let kind = w.one();
            let len = w.one() as usize;
            (kind, w.many(len))
        })
    }

    /// RFC 6811 section 2's origin AS: the last AS of the path when it ends in an
    /// AS_SEQUENCE, `None` (the distinguished value NONE) when it ends in a set or a
    /// confederation segment; `empty` for a path without any AS (RFC 6811: a route
    /// from inside our AS has our AS as its origin).
    pub(crate) fn origin_as(&self, empty: u32) -> Option<u32> {
        self.segments()
            .filter(|(_, asns)| !asns.is_empty())
            .last()
            .map_or(Some(empty), |(kind, asns)| match kind {
                0 => asns.last().copied(),
                _ => None,
            })
    }

    /// Whether the AS path holds `asn` anywhere.
    pub(crate) fn path_contains(&self, asn: u32) -> bool {
        self.segments().any(|(_, asns)| asns.contains(&asn))
    }

    /// Whether the AS path holds no AS at all.
    pub(crate) fn path_is_empty(&self) -> bool {
        self.segments().all(|(_, asns)| asns.is_empty())
    }

    /// The BGP attributes, unpacked (`next_hop` is always `None`: it is in `hop`).
    pub(crate) fn attrs(&self) -> Attributes {
        Attributes {
            origin: self.origin,
            next_hop: None,
            med: self.med,
            local_pref: self.local_pref_attr,
            atomic_aggregate: self.atomic_aggregate,
            aggregator: self.aggregator,
            other: self.other.to_vec(),
            ..unpack(&self.words)
        }
    }

    /// Whether this path is what `attrs` (next hop ignored, LOCAL_PREF replaced by
    /// `local_pref`, variable parts [`pack`]ed into `words`) and `hop` make.
    fn is(
        &self,
        attrs: &Attributes,
        local_pref: Option<u32>,
        words: &[u32],
        hop: &Hop,
        orig: Option<&Arc<Path>>,
    ) -> bool {
        self.hop == *hop
            && match (&self.orig, orig) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
            && self.local_pref_attr == local_pref
            && self.origin == attrs.origin
            && self.med == attrs.med
            && self.atomic_aggregate == attrs.atomic_aggregate
            && self.aggregator == attrs.aggregator
            && *self.words == *words
            && *self.other == *attrs.other
    }
}

/// The hash of the path `attrs` (next hop ignored, LOCAL_PREF replaced by `local_pref`,
/// variable parts [`pack`]ed into `words`) and `hop` make.
fn hash_parts(
    seed: &Seed,
    attrs: &Attributes,
    local_pref: Option<u32>,
    words: &[u32],
    hop: &Hop,
    orig: Option<&Arc<Path>>,
) -> u64 {
    // Destructured so that a field added to `Attributes` fails to compile here (and
    // gets a place in `Path`).
    let Attributes {
        origin,
        as_path: _,
        next_hop: _,
        med,
        local_pref: _,
        atomic_aggregate,
        aggregator,
        communities: _,
        ext_communities: _,
        large_communities: _,
        other,
    } = attrs;
    let mut h = seed.build_hasher();
    hop.hash(&mut h);
    orig.map(Arc::as_ptr).hash(&mut h);
    local_pref.hash(&mut h);
    origin.hash(&mut h);
    med.hash(&mut h);
    atomic_aggregate.hash(&mut h);
    aggregator.hash(&mut h);
    words.hash(&mut h);
    other.hash(&mut h);
    h.finish()
}

/// The set of live attribute sets.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    set: HashTable<Arc<Path>>,
    seed: Seed,
    /// Scratch space for [`pack`].
    words: Vec<u32>,
    /// Size after the last sweep; the next sweep runs once the set doubled.
    live: usize,
}

impl Interner {
    /// The shared copy of the path `attrs` (their next hop ignored, LOCAL_PREF replaced
    /// by `local_pref`) and `hop` make. `attrs` are hashed once and copied only when no
    /// such path is held yet.
    pub(crate) fn intern(
        &mut self,
        attrs: &Attributes,
        local_pref: Option<u32>,
        hop: Hop,
    ) -> Arc<Path> {
        self.intern_from(attrs, local_pref, hop, None)
    }

    /// The shared copy of the path import steps made of `orig` (a received path):
    /// `attrs` with their own LOCAL_PREF, `orig`'s next hop.
    pub(crate) fn intern_derived(&mut self, attrs: &Attributes, orig: &Arc<Path>) -> Arc<Path> {
        let orig = orig.received().clone();
        self.intern_from(attrs, attrs.local_pref, orig.hop, Some(orig))
    }

    fn intern_from(
        &mut self,
        attrs: &Attributes,
        local_pref: Option<u32>,
        hop: Hop,
        orig: Option<Arc<Path>>,
    ) -> Arc<Path> {
        pack(attrs, &mut self.words);
        let words = self.words.as_slice();
        let h = hash_parts(&self.seed, attrs, local_pref, words, &hop, orig.as_ref());
        if let Some(a) = self
            .set
            .find(h, |p| p.is(attrs, local_pref, words, &hop, orig.as_ref()))
        {
            return a.clone();
        }
        let a = Arc::new(Path::new(attrs, local_pref, words, hop, orig, h));
        self.set.insert_unique(h, a.clone(), |p| p.hash);
        a
    }

    /// Drops the sets no route holds any more, when the set has doubled since the last
    /// sweep, or when it holds more sets beyond twice `routes` (the number of routes in
    /// the table: each live set is held by a route, or is the received path of a derived
    /// one a route holds, so the rest are dead) than a quarter of its size and 1024. Either way a sweep frees a fixed share of what it
    /// scans, so its cost is amortised over the insertions that created the dead sets.
    pub(crate) fn maybe_sweep(&mut self, routes: usize) {
        let len = self.set.len();
        let surely_dead = len.saturating_sub(routes.saturating_mul(2));
        if len > 2 * self.live + 1024 || surely_dead > (len / 4).max(1024) {
            self.sweep();
        }
    }

    /// Drops every set no route holds any more (a received path whose derived paths
    /// are dropped in the same pass goes at the next sweep).
    pub(crate) fn sweep(&mut self) {
        self.set.retain(|a| Arc::strong_count(a) > 1);
        self.set.shrink_to_fit(|p| p.hash);
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
        let a = i.intern(&attrs(vec![1, 2]), None, hop);
        let mut other_nh = attrs(vec![1, 2]);
        other_nh.next_hop = Some(Ipv4Addr::new(192, 0, 2, 99));
        let b = i.intern(&other_nh, None, hop);
        let c = i.intern(&attrs(vec![1, 3]), None, hop);
        // LOCAL_PREF is what the caller says, not what the attributes carry.
        let mut lp = attrs(vec![1, 2]);
        lp.local_pref = Some(300);
        let d = i.intern(&lp, None, hop);
        let e = i.intern(&lp, Some(300), hop);
        let f = i.intern(&attrs(vec![1, 2]), None, Hop::Local);
        assert!(
            Arc::ptr_eq(&a, &b),
            "the next hop in the attributes is ignored"
        );
        assert!(Arc::ptr_eq(&a, &d));
        assert!(!Arc::ptr_eq(&a, &c) && !Arc::ptr_eq(&a, &e) && !Arc::ptr_eq(&a, &f));
        assert_eq!(a.attrs().next_hop, None);
        assert_eq!((a.as_len, a.neighbor_as, a.local_pref), (2, 1, 100));
        assert_eq!((e.local_pref, e.attrs().local_pref), (300, Some(300)));
        assert_eq!(i.len(), 4);
        drop((c, d, e, f));
        i.sweep();
        assert_eq!(i.len(), 1);
        // Many sets: the set grows by the kept hashes and finds every one again.
        let many: Vec<_> = (0..3000)
            .map(|n| i.intern(&attrs(vec![7, n]), None, hop))
            .collect();
        for (n, p) in (0..3000).zip(&many) {
            assert!(Arc::ptr_eq(p, &i.intern(&attrs(vec![7, n]), None, hop)));
        }
        assert_eq!(i.len(), 3001);
        drop(many);
        i.sweep();
        assert_eq!(i.len(), 1);
        assert!(Arc::ptr_eq(&a, &i.intern(&attrs(vec![1, 2]), None, hop)));
        drop((a, b));
        i.sweep();
        assert_eq!(i.len(), 0);
    }

    /// Everything an attribute set can hold comes back out of the packed form, and
    /// differs from a set that differs in any one part.
    #[test]
    fn packed_attributes_round_trip() {
        let full = Attributes {
            origin: Origin::Incomplete,
            as_path: AsPath {
                segments: vec![
                    AsSegment::ConfedSequence(vec![65001]),
                    AsSegment::ConfedSet(vec![65002, 65003]),
                    AsSegment::Sequence(vec![4242420001, 64512]),
                    AsSegment::Set(vec![1, 2, 3]),
                    AsSegment::Sequence(vec![]),
                ],
            },
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            med: Some(7),
            local_pref: Some(300),
            atomic_aggregate: true,
            aggregator: Some((64512, Ipv4Addr::new(198, 51, 100, 1))),
            communities: vec![0xfdff_0001, 0xffff_ff01],
            ext_communities: vec![[0, 2, 0xfd, 0xe8, 1, 2, 3, 4], [8; 8]],
            large_communities: vec![[4242420001, 1, 2], [3, 4, 5]],
            other: vec![RawAttribute {
                flags: 0xc0,
                code: 99,
                value: vec![1, 2, 3],
            }],
        };
        let hop = Hop::Bgp(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1)));
        let mut i = Interner::default();
        let p = i.intern(&full, Some(300), hop);
        let mut want = full.clone();
        want.next_hop = None;
        assert_eq!(p.attrs(), want);
        assert_eq!((p.as_len, p.neighbor_as, p.local_pref), (3, 0, 300));
        assert!(Arc::ptr_eq(&p, &i.intern(&full, Some(300), hop)));
        let variants: Vec<fn(&mut Attributes)> = vec![
            |a| a.origin = Origin::Igp,
            |a| a.as_path.segments.pop().map_or((), drop),
            |a| a.med = None,
            |a| a.atomic_aggregate = false,
            |a| a.aggregator = None,
            |a| a.communities.push(5),
            |a| a.ext_communities[1][7] = 9,
            |a| a.large_communities.truncate(1),
            |a| a.other.clear(),
        ];
        for (n, change) in variants.into_iter().enumerate() {
            let mut a = full.clone();
            change(&mut a);
            let q = i.intern(&a, Some(300), hop);
            assert!(!Arc::ptr_eq(&p, &q), "variant {n}");
            a.next_hop = None;
            assert_eq!(q.attrs(), a, "variant {n}");
        }
        let mut words = Vec::new();
        pack(&Attributes::default(), &mut words);
        assert_eq!(unpack(&words), Attributes::default());
        // A cut-off array reads as empty lists, without panicking.
        pack(&full, &mut words);
        for cut in 0..words.len() {
            let _ = unpack(words.get(..cut).unwrap_or_default());
        }
    }

    /// Real attribute sets (RIPE RIS 2010, see /work/shared/data/bgp_text/README.md):
    /// AS paths with AS_SETs, communities, MEDs survive packing.
    #[test]
    fn real_attribute_sets_round_trip() {
        use std::io::BufRead;
        let path = format!(
            "{}/../../../shared/data/bgp_text/bgpdump-m_bview.20100701.0759.txt.gz",
            env!("CARGO_MANIFEST_DIR")
        );
        let file = std::fs::File::open(&path).unwrap();
        let lines = std::io::BufReader::new(flate2::read::GzDecoder::new(file)).lines();
        let mut i = Interner::default();
        let mut held = Vec::new();
        for line in lines.take(20_000) {
            let line = line.unwrap();
            let f: Vec<&str> = line.split('|').collect();
            let mut segments = Vec::new();
            for tok in f[6].split_whitespace() {
                match tok.strip_prefix('{') {
                    Some(set) => segments.push(AsSegment::Set(
                        set.trim_end_matches('}')
                            .split(',')
                            .map(|a| a.parse().unwrap())
                            .collect(),
                    )),
                    None => segments.push(AsSegment::Sequence(vec![tok.parse().unwrap()])),
                }
            }
            let a = Attributes {
                origin: if f[7] == "IGP" {
                    Origin::Igp
                } else {
                    Origin::Incomplete
                },
                as_path: AsPath { segments },
                med: f[10].parse().ok(),
                communities: f[11]
                    .split_whitespace()
                    .map(|c| {
                        let (hi, lo) = c.split_once(':').unwrap();
                        (hi.parse::<u32>().unwrap() << 16) | lo.parse::<u32>().unwrap()
                    })
                    .collect(),
                ..Attributes::default()
            };
            let hop = Hop::Bgp(NextHop::V4(f[8].parse().unwrap()));
            let p = i.intern(&a, None, hop);
            assert_eq!(p.attrs(), a, "{line}");
            assert_eq!(p.as_len as usize, a.as_path.len());
            held.push(p);
        }
        // Equal sets share one copy: as many copies as distinct pointers, far fewer
        // than lines.
        let distinct: std::collections::HashSet<*const Path> =
            held.iter().map(Arc::as_ptr).collect();
        assert_eq!(distinct.len(), i.len());
        assert!(i.len() > 1000 && i.len() < 15_000, "{} sets", i.len());
    }

    /// A derived path is its own set (even with the received path's attributes), one
    /// per (attributes, received path), and leads back to the received one.
    #[test]
    fn derived_paths_lead_back_to_the_received_one() {
        let mut i = Interner::default();
        let hop = Hop::Bgp(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1)));
        let rx = i.intern(&attrs(vec![1, 2]), None, hop);
        let mut a = rx.attrs();
        let same = i.intern_derived(&a, &rx);
        assert!(!Arc::ptr_eq(&same, &rx));
        assert!(Arc::ptr_eq(same.received(), &rx) && Arc::ptr_eq(rx.received(), &rx));
        a.communities.push(7);
        a.local_pref = Some(200);
        let d = i.intern_derived(&a, &rx);
        assert_eq!((d.local_pref, d.hop), (200, hop));
        // Deriving from a derived path still points at the received one.
        assert!(Arc::ptr_eq(&d, &i.intern_derived(&a, &same)));
        assert!(Arc::ptr_eq(d.received(), &rx));
        let other = i.intern(&attrs(vec![1, 3]), None, hop);
        assert!(!Arc::ptr_eq(&d, &i.intern_derived(&a, &other)));
        assert_eq!(i.len(), 5);
        drop((same, d));
        i.sweep();
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn origin_and_path_checks_from_packed_words() {
        let mut i = Interner::default();
        let mut at = |segments: Vec<AsSegment>| {
            let a = Attributes {
                as_path: AsPath { segments },
                ..Attributes::default()
            };
            i.intern(&a, None, Hop::Local)
        };
        let p = at(vec![AsSegment::Sequence(vec![1, 2, 3])]);
        assert_eq!(p.origin_as(9), Some(3));
        assert!(p.path_contains(2) && !p.path_contains(9) && !p.path_is_empty());
        let set = at(vec![
            AsSegment::Sequence(vec![1]),
            AsSegment::Set(vec![4, 5]),
        ]);
        assert_eq!(set.origin_as(9), None, "RFC 6811: NONE");
        assert!(set.path_contains(5));
        let empty = at(vec![]);
        assert_eq!(empty.origin_as(9), Some(9), "our own AS");
        assert!(empty.path_is_empty());
        let hollow = at(vec![AsSegment::Sequence(vec![])]);
        assert!(hollow.path_is_empty());
        assert_eq!(hollow.origin_as(9), Some(9));
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
