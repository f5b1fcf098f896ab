//! The ROA set and its index for RFC 6811 section 2 validation, and set differences for
//! re-evaluating only the routes a ROA change can touch.
//!
//! The index is static (rebuilt by [`RoaSet::apply`], which is O(n log n)): per address
//! family, the distinct ROA prefixes sorted by (network, length), each with a link to its
//! nearest enclosing ROA prefix (a nesting forest, built with one stack in one pass).
//! The ROAs of a prefix are a contiguous run of the sorted ROA list.
//!
//! Lookup of a route R: binary search for the last prefix G <= R in that order (within
//! the run of prefixes sharing R's top bits, found in a table), then walk
//! G's enclosing chain. Every ROA prefix C covering R lies on that chain: C <= G <= R in
//! the order, G's network lies inside C, and an aligned prefix starting inside C that
//! sorts after C is C or inside it — so G is C or nested in C. The chain is short (the
//! nesting depth of ROA prefixes, a handful in DN42), so a lookup is one binary search
//! plus a few steps.
//!
//! Not here: parsing (see [`crate::parse`]), and the RIB's own walk over its routes.

use crate::{Roa, Validity};
use ipnet::IpNet;
use std::iter;

/// No enclosing prefix.
const NONE: u32 = u32::MAX;

/// One distinct ROA prefix in the index, its network left-aligned in 128 bits (IPv4 in
/// the top 32) so both families share the code.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    net: u128,
    len: u8,
    /// Index of the nearest enclosing prefix in the same family's list, or [`NONE`].
    parent: u32,
    /// `roas[start..end]` are this prefix's ROAs.
    start: u32,
    end: u32,
}

impl Node {
    /// Does this prefix cover (equal or contain) the aligned prefix `(net, len)`?
    fn covers(&self, net: u128, len: u8) -> bool {
        self.len <= len && net & mask(self.len) == self.net
    }
}

fn mask(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// The network of `prefix`, left-aligned, and its length.
fn key(prefix: IpNet) -> (u128, u8) {
    match prefix {
        IpNet::V4(n) => (u128::from(u32::from(n.network())) << 96, n.prefix_len()),
        IpNet::V6(n) => (u128::from(n.network()), n.prefix_len()),
    }
}

/// A deduplicated set of ROAs, indexed for covering-ROA lookups.
///
/// Iteration order is [`Roa`]'s `Ord`: IPv4 before IPv6, then by network, prefix length,
/// max length and AS. Build one with [`RoaSet::from_roas`] or `collect()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoaSet {
    /// Sorted, without duplicates.
    roas: Vec<Roa>,
    v4: Family,
    v6: Family,
}

/// One address family's index: the nodes, and where each run of nodes sharing the top
/// `bits` bits of their network starts (`buckets[b]..buckets[b + 1]`), so a lookup
/// binary-searches one small run instead of the whole list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Family {
    nodes: Vec<Node>,
    bits: u32,
    buckets: Vec<u32>,
}

/// At most 2^16 + 1 bucket starts (256 KiB) per family.
const MAX_BUCKET_BITS: u32 = 16;

impl Family {
    fn new(nodes: Vec<Node>) -> Family {
        // About one node per bucket.
        let bits = (usize::BITS - nodes.len().leading_zeros()).min(MAX_BUCKET_BITS);
        let mut buckets = Vec::with_capacity((1 << bits) + 1);
        let mut at = 0;
        for b in 0..=(1usize << bits) {
            while nodes.get(at).is_some_and(|n| bucket(n.net, bits) < b) {
                at += 1;
            }
            buckets.push(at as u32);
        }
        Family {
            nodes,
            bits,
            buckets,
        }
    }

    /// The last node sorting at or before `(net, len)`. Nodes in earlier buckets have a
    /// smaller network, nodes in later ones a larger one, so it is in this bucket or,
    /// if none there qualifies, the one before the bucket.
    fn last_at_or_before(&self, net: u128, len: u8) -> Option<usize> {
        let b = bucket(net, self.bits);
        let (lo, hi) = match (self.buckets.get(b), self.buckets.get(b + 1)) {
            (Some(&lo), Some(&hi)) => (lo as usize, hi as usize),
            _ => return None,
        };
        let run = self.nodes.get(lo..hi).unwrap_or_default();
        (lo + run.partition_point(|n| (n.net, n.len) <= (net, len))).checked_sub(1)
    }
}

/// The top `bits` bits of a left-aligned network.
fn bucket(net: u128, bits: u32) -> usize {
    net.checked_shr(128 - bits).unwrap_or(0) as usize
}

impl RoaSet {
    pub fn new() -> RoaSet {
        RoaSet::default()
    }

    /// Sorts, deduplicates and indexes `roas`.
    pub fn from_roas(roas: impl IntoIterator<Item = Roa>) -> RoaSet {
        let mut roas: Vec<Roa> = roas.into_iter().collect();
        roas.sort_unstable();
        roas.dedup();
        let (mut v4, mut v6): (Vec<Node>, Vec<Node>) = (Vec::new(), Vec::new());
        let (mut open4, mut open6): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
        let mut start = 0;
        for run in roas.chunk_by(|a, b| a.prefix == b.prefix) {
            let end = start + run.len();
            let (net, len) = key(run[0].prefix);
            let (nodes, open) = match run[0].prefix {
                IpNet::V4(_) => (&mut v4, &mut open4),
                IpNet::V6(_) => (&mut v6, &mut open6),
            };
            // `open` holds the chain of prefixes enclosing the previous one; in sorted
            // order the enclosing prefixes of this one are a prefix of that chain.
            while open
                .last()
                .is_some_and(|&top| !nodes[top as usize].covers(net, len))
            {
                open.pop();
            }
            let parent = open.last().copied().unwrap_or(NONE);
            open.push(nodes.len() as u32);
            nodes.push(Node {
                net,
                len,
                parent,
                start: start as u32,
                end: end as u32,
            });
            start = end;
        }
        RoaSet {
            roas,
            v4: Family::new(v4),
            v6: Family::new(v6),
        }
    }

    pub fn len(&self) -> usize {
        self.roas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roas.is_empty()
    }

    pub fn contains(&self, roa: &Roa) -> bool {
        self.roas.binary_search(roa).is_ok()
    }

    /// All ROAs, sorted.
    pub fn iter(&self) -> std::slice::Iter<'_, Roa> {
        self.roas.iter()
    }

    /// The ROAs whose prefix equals or contains `prefix` (host bits of `prefix` are
    /// ignored): RFC 6811 section 2's "candidate ROAs". Most specific prefix first.
    pub fn covering(&self, prefix: IpNet) -> impl Iterator<Item = &Roa> + '_ {
        let (net, len) = key(prefix);
        let family = match prefix {
            IpNet::V4(_) => &self.v4,
            IpNet::V6(_) => &self.v6,
        };
        let nodes = &family.nodes;
        let last = family.last_at_or_before(net, len);
        iter::successors(last, move |&i| {
            let parent = nodes[i].parent;
            (parent != NONE).then_some(parent as usize)
        })
        .map(move |i| &nodes[i])
        .filter(move |node| node.covers(net, len))
        .flat_map(move |node| &self.roas[node.start as usize..node.end as usize])
    }

    /// RFC 6811 section 2: the validation state of a route for `prefix` (host bits
    /// ignored) whose origin AS is `origin`.
    ///
    /// `origin` is `None` for RFC 6811's distinguished value NONE: the AS_PATH ends in
    /// an AS_SET (or AS_CONFED_*) segment, or has no AS to name. Such a route is
    /// [`Validity::Invalid`] if any ROA covers it, else [`Validity::NotFound`]. (For a
    /// route with an empty AS_PATH, RFC 6811 names the validating speaker's own AS as
    /// the origin; that is the caller's substitution to make.) ROAs for AS0 match no
    /// origin (RFC 6483 section 4, RFC 7607).
    pub fn validate(&self, prefix: IpNet, origin: Option<u32>) -> Validity {
        let route_len = prefix.prefix_len();
        let mut covered = false;
        for roa in self.covering(prefix) {
            covered = true;
            if roa.allows(route_len, origin) {
                return Validity::Valid;
            }
        }
        if covered {
            Validity::Invalid
        } else {
            Validity::NotFound
        }
    }

    /// What changed from `old` to `new`: one merge pass over both sorted lists.
    pub fn diff(old: &RoaSet, new: &RoaSet) -> RoaDelta {
        let (mut added, mut removed) = (Vec::new(), Vec::new());
        let (mut a, mut b) = (old.roas.iter().peekable(), new.roas.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x == y => {
                    a.next();
                    b.next();
                }
                (Some(&&x), Some(&&y)) if x < y => {
                    removed.push(x);
                    a.next();
                }
                (_, Some(&&y)) => {
                    added.push(y);
                    b.next();
                }
                (Some(&&x), None) => {
                    removed.push(x);
                    a.next();
                }
                (None, None) => break,
            }
        }
        RoaDelta::from_sorted(added, removed)
    }

    /// Removes `delta.removed()`, then inserts `delta.added()`, and re-indexes.
    pub fn apply(&mut self, delta: &RoaDelta) {
        let kept = self
            .roas
            .iter()
            .filter(|roa| delta.removed.binary_search(roa).is_err());
        *self = RoaSet::from_roas(kept.chain(&delta.added).copied().collect::<Vec<_>>());
    }
}

impl FromIterator<Roa> for RoaSet {
    fn from_iter<I: IntoIterator<Item = Roa>>(iter: I) -> RoaSet {
        RoaSet::from_roas(iter)
    }
}

impl<'a> IntoIterator for &'a RoaSet {
    type Item = &'a Roa;
    type IntoIter = std::slice::Iter<'a, Roa>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// ROAs added and removed: the change between two [`RoaSet`]s, or a batch of
/// announcements and withdrawals from an incremental source such as RTR.
///
/// Which routes to re-evaluate: a route's validity depends only on the ROAs covering its
/// prefix, so it can change only if a changed ROA's prefix equals or contains the
/// route's prefix. [`RoaDelta::affected`] lists the fewest prefixes whose subtrees hold
/// all such routes; [`RoaDelta::affects`] answers for one route in O(log n).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoaDelta {
    /// Sorted, without duplicates.
    added: Vec<Roa>,
    /// Sorted, without duplicates.
    removed: Vec<Roa>,
    /// The changed ROAs' prefixes without those inside another one: sorted, pairwise
    /// disjoint.
    cover: Vec<IpNet>,
    /// `cover` indexed like a [`RoaSet`] for [`RoaDelta::affects`] (no parents, no ROAs).
    v4: Family,
    v6: Family,
}

impl RoaDelta {
    /// A delta that removes `removed`, then adds `added` (a ROA in both ends up in the
    /// set). Duplicates are dropped.
    pub fn new(
        added: impl IntoIterator<Item = Roa>,
        removed: impl IntoIterator<Item = Roa>,
    ) -> RoaDelta {
        let sorted = |roas: Vec<Roa>| {
            let mut roas = roas;
            roas.sort_unstable();
            roas.dedup();
            roas
        };
        RoaDelta::from_sorted(
            sorted(added.into_iter().collect()),
            sorted(removed.into_iter().collect()),
        )
    }

    fn from_sorted(added: Vec<Roa>, removed: Vec<Roa>) -> RoaDelta {
        let mut prefixes: Vec<IpNet> = added.iter().chain(&removed).map(|r| r.prefix).collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        // In (network, length) order a prefix's more-specifics follow it directly, so a
        // prefix inside any kept one is inside the last kept one.
        let mut cover: Vec<IpNet> = Vec::new();
        for p in prefixes {
            if !cover.last().is_some_and(|last| last.contains(&p)) {
                cover.push(p);
            }
        }
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for &p in &cover {
            let (net, len) = key(p);
            let node = Node {
                net,
                len,
                parent: NONE,
                start: 0,
                end: 0,
            };
            match p {
                IpNet::V4(_) => v4.push(node),
                IpNet::V6(_) => v6.push(node),
            }
        }
        RoaDelta {
            added,
            removed,
            cover,
            v4: Family::new(v4),
            v6: Family::new(v6),
        }
    }

    /// The ROAs to add, sorted.
    pub fn added(&self) -> &[Roa] {
        &self.added
    }

    /// The ROAs to remove, sorted.
    pub fn removed(&self) -> &[Roa] {
        &self.removed
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// The prefixes whose routes (equal or more specific) may change validity: the
    /// changed ROAs' prefixes, minus those inside another one. Sorted and pairwise
    /// disjoint, so no route is under two of them.
    ///
    /// In a table ordered like `BTreeMap<IpNet, _>` with host bits cleared, the routes
    /// under `p` are exactly the range `p ..= IpNet::new(p.broadcast(), p.max_prefix_len())`.
    pub fn affected(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.cover.iter().copied()
    }

    /// Can the validity of a route for `prefix` (host bits ignored) differ before and
    /// after this delta? Exactly when a changed ROA's prefix covers it.
    pub fn affects(&self, prefix: IpNet) -> bool {
        let (net, len) = key(prefix);
        let family = match prefix {
            IpNet::V4(_) => &self.v4,
            IpNet::V6(_) => &self.v6,
        };
        // The cover is disjoint, so the only candidate is the last entry sorting at or
        // before the route (see the module docs for why).
        family
            .last_at_or_before(net, len)
            .is_some_and(|i| family.nodes[i].covers(net, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn roa(prefix: &str, max_len: u8, asn: u32) -> Roa {
        Roa::new(net(prefix), max_len, asn).unwrap()
    }

    fn set(roas: &[Roa]) -> RoaSet {
        roas.iter().copied().collect()
    }

    use Validity::*;

    #[test]
    fn exact_less_and_more_specific() {
        let s = set(&[roa("172.20.0.0/24", 24, 64512)]);
        assert_eq!(s.validate(net("172.20.0.0/24"), Some(64512)), Valid);
        assert_eq!(s.validate(net("172.20.0.0/24"), Some(64513)), Invalid);
        // Less specific: not covered.
        assert_eq!(s.validate(net("172.20.0.0/23"), Some(64512)), NotFound);
        assert_eq!(s.validate(net("172.16.0.0/12"), Some(64512)), NotFound);
        // More specific beyond max length: covered, not matched.
        assert_eq!(s.validate(net("172.20.0.128/25"), Some(64512)), Invalid);
        // Beside it.
        assert_eq!(s.validate(net("172.20.1.0/24"), Some(64512)), NotFound);
        // Host bits of the route are ignored.
        assert_eq!(s.validate(net("172.20.0.7/24"), Some(64512)), Valid);
    }

    #[test]
    fn max_length() {
        let s = set(&[roa("172.20.0.0/24", 28, 1)]);
        assert_eq!(s.validate(net("172.20.0.0/24"), Some(1)), Valid);
        assert_eq!(s.validate(net("172.20.0.16/28"), Some(1)), Valid);
        assert_eq!(s.validate(net("172.20.0.240/28"), Some(1)), Valid);
        assert_eq!(s.validate(net("172.20.0.16/29"), Some(1)), Invalid);
        assert_eq!(s.validate(net("172.20.0.1/32"), Some(1)), Invalid);
    }

    #[test]
    fn multiple_roas() {
        let s = set(&[
            roa("172.20.0.0/16", 16, 1),
            roa("172.20.0.0/16", 24, 2),
            roa("172.20.128.0/17", 17, 3),
            roa("172.20.128.0/24", 28, 4),
        ]);
        assert_eq!(s.validate(net("172.20.0.0/16"), Some(1)), Valid);
        assert_eq!(s.validate(net("172.20.0.0/16"), Some(2)), Valid);
        assert_eq!(s.validate(net("172.20.5.0/24"), Some(1)), Invalid);
        assert_eq!(s.validate(net("172.20.5.0/24"), Some(2)), Valid);
        // Covered by the /16 (AS2 up to /24) and the /17 (AS3 exact).
        assert_eq!(s.validate(net("172.20.128.0/17"), Some(3)), Valid);
        assert_eq!(s.validate(net("172.20.129.0/24"), Some(2)), Valid);
        assert_eq!(s.validate(net("172.20.129.0/24"), Some(3)), Invalid);
        // Deepest: the /24 with max 28 for AS4; the /16's AS2 still reaches /24 only.
        assert_eq!(s.validate(net("172.20.128.16/28"), Some(4)), Valid);
        assert_eq!(s.validate(net("172.20.128.16/28"), Some(2)), Invalid);
        assert_eq!(s.validate(net("172.20.128.0/24"), Some(2)), Valid);
        let mut asns: Vec<u32> = s
            .covering(net("172.20.128.0/26"))
            .map(|r| r.asn())
            .collect();
        asns.sort_unstable();
        assert_eq!(asns, [1, 2, 3, 4]);
        assert_eq!(s.covering(net("172.20.0.0/15")).count(), 0);
    }

    #[test]
    fn as0() {
        let s = set(&[roa("172.20.0.0/16", 32, 0), roa("172.20.1.0/24", 24, 5)]);
        // AS0 covers but matches nothing, not even origin 0.
        assert_eq!(s.validate(net("172.20.2.0/24"), Some(0)), Invalid);
        assert_eq!(s.validate(net("172.20.2.0/24"), Some(7)), Invalid);
        // Another ROA can still validate inside AS0 space.
        assert_eq!(s.validate(net("172.20.1.0/24"), Some(5)), Valid);
        assert_eq!(s.validate(net("172.21.0.0/24"), Some(0)), NotFound);
    }

    #[test]
    fn origin_none() {
        let s = set(&[roa("fd00:1::/48", 64, 1)]);
        assert_eq!(s.validate(net("fd00:1::/48"), None), Invalid);
        assert_eq!(s.validate(net("fd00:2::/48"), None), NotFound);
    }

    #[test]
    fn families_do_not_mix() {
        // ::/0 and 0.0.0.0/0 cover everything of their own family only; an IPv6 ROA
        // whose top bits equal an IPv4 network must not cover it.
        let s = set(&[roa("ac14::/16", 128, 1)]);
        assert_eq!(s.validate(net("172.20.0.0/16"), Some(1)), NotFound);
        assert_eq!(s.validate(net("ac14:1::/32"), Some(1)), Valid);
        let s = set(&[roa("0.0.0.0/0", 32, 1)]);
        assert_eq!(s.validate(net("fd00::/8"), Some(1)), NotFound);
        assert_eq!(s.validate(net("10.0.0.0/8"), Some(1)), Valid);
        assert_eq!(s.validate(net("10.0.0.1/32"), Some(2)), Invalid);
    }

    #[test]
    fn v6() {
        let s = set(&[
            roa("fd00::/8", 8, 0),
            roa("fd42:d42:d42::/48", 64, 4242420000),
            roa("fd42:d42:d42:80::/64", 64, 4242420001),
        ]);
        assert_eq!(
            s.validate(net("fd42:d42:d42::/48"), Some(4242420000)),
            Valid
        );
        assert_eq!(
            s.validate(net("fd42:d42:d42:80::/64"), Some(4242420000)),
            Valid
        );
        assert_eq!(
            s.validate(net("fd42:d42:d42:80::/64"), Some(4242420001)),
            Valid
        );
        assert_eq!(
            s.validate(net("fd42:d42:d42:81::/64"), Some(4242420001)),
            Invalid
        );
        assert_eq!(
            s.validate(net("fd42:d42:d42::/80"), Some(4242420000)),
            Invalid
        );
        assert_eq!(s.validate(net("fd43::/48"), Some(4242420000)), Invalid);
        assert_eq!(s.validate(net("fc00::/7"), Some(4242420000)), NotFound);
    }

    #[test]
    fn covering_prefix_in_an_earlier_bucket() {
        // 300 prefixes: 9 bucket bits. 10.0.0.0/8 sits in bucket 20 (10.0/9); a route in
        // 10.200.0.0/16 falls in the empty bucket 21 and must still find it.
        let mut roas = vec![roa("10.0.0.0/8", 16, 1), roa("10.0.0.0/16", 24, 2)];
        roas.extend(
            (0..298).map(|i| roa(&format!("192.168.{i}.0/24", i = i % 256), 24, 3 + i / 256)),
        );
        let s = set(&roas);
        assert_eq!(s.v4.bits, 9);
        assert_eq!(s.validate(net("10.200.0.0/16"), Some(1)), Valid);
        assert_eq!(s.validate(net("10.200.0.0/17"), Some(1)), Invalid);
        assert_eq!(s.validate(net("10.0.5.0/24"), Some(2)), Valid);
        assert_eq!(s.validate(net("11.0.0.0/16"), Some(1)), NotFound);
        assert_eq!(s.validate(net("192.168.7.0/24"), Some(3)), Valid);
        assert_eq!(s.validate(net("192.168.7.0/24"), Some(4)), Valid);
        assert_eq!(s.validate(net("192.168.100.0/24"), Some(4)), Invalid);
        assert_eq!(s.validate(net("255.0.0.0/8"), Some(4)), NotFound);
        assert_eq!(s.validate(net("0.0.0.0/0"), Some(4)), NotFound);
    }

    #[test]
    fn dedup_and_order() {
        let a = roa("fd00::/8", 8, 1);
        let b = roa("10.0.0.0/8", 8, 1);
        let s = set(&[a, b, a, b]);
        assert_eq!(s.len(), 2);
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), [b, a]);
        assert!(s.contains(&a));
        assert!(!s.contains(&roa("fd00::/8", 9, 1)));
    }

    #[test]
    fn diff_apply_affected() {
        let old = set(&[
            roa("172.20.0.0/16", 24, 1),
            roa("172.20.1.0/24", 24, 2),
            roa("172.21.0.0/24", 24, 3),
        ]);
        let new = set(&[
            roa("172.20.0.0/16", 24, 1),
            roa("172.20.1.0/24", 28, 2),
            roa("172.22.0.0/24", 24, 3),
        ]);
        let d = RoaSet::diff(&old, &new);
        assert_eq!(
            d.added(),
            [roa("172.20.1.0/24", 28, 2), roa("172.22.0.0/24", 24, 3)]
        );
        assert_eq!(
            d.removed(),
            [roa("172.20.1.0/24", 24, 2), roa("172.21.0.0/24", 24, 3)]
        );
        assert_eq!(
            d.affected().collect::<Vec<_>>(),
            [
                net("172.20.1.0/24"),
                net("172.21.0.0/24"),
                net("172.22.0.0/24")
            ]
        );
        assert!(d.affects(net("172.20.1.16/28")));
        assert!(d.affects(net("172.21.0.0/24")));
        assert!(!d.affects(net("172.21.0.0/23")));
        assert!(!d.affects(net("172.20.2.0/24")));
        assert!(!d.affects(net("fd00::/8")));
        let mut applied = old.clone();
        applied.apply(&d);
        assert_eq!(applied, new);
        assert!(RoaSet::diff(&new, &new).is_empty());

        // A change to an enclosing prefix swallows the changes inside it.
        let d = RoaDelta::new([roa("172.20.1.0/24", 24, 9)], [roa("172.20.0.0/16", 24, 1)]);
        assert_eq!(d.affected().collect::<Vec<_>>(), [net("172.20.0.0/16")]);
    }
}
