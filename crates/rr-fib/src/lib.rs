//! The forwarding information base: longest-prefix match over IPv4 and IPv6 routes.
//!
//! What it is: [`Fib`], an immutable-after-build LPM table mapping prefixes to a
//! [`NextHop`] (a tunnel index and an optional gateway), and [`SharedFib`], the one
//! table the control plane writes and the data plane reads without blocking
//! (read-copy-update through `arc-swap`: readers load a snapshot, writers publish a new one).
//!
//! What it is not: a RIB. It holds exactly one next hop per prefix, no attributes, no
//! route selection; the control plane decides and writes the result here.
#![forbid(unsafe_code)]

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

use arc_swap::ArcSwap;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// Hashes the masked prefix keys: two rounds of the splitmix64 finaliser over the
/// key's halves, seeded per process. Several times cheaper than SipHash on the
/// per-packet path, and the seed keeps bucket collisions from being computed in advance
/// by whoever chooses the prefixes (BGP peers, later).
#[derive(Clone, Copy, Debug)]
struct PrefixHash {
    seed: u64,
}

impl Default for PrefixHash {
    fn default() -> Self {
        PrefixHash {
            seed: std::collections::hash_map::RandomState::new().hash_one(0x0072_7266_6962_u64),
        }
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hasher of one key; only `write_u128` is used by the table.
#[derive(Clone, Copy, Debug)]
struct PrefixHasher {
    state: u64,
}

impl Hasher for PrefixHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.state = mix(self.state ^ u64::from(*b));
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.state = mix(mix(self.state ^ v as u64) ^ (v >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

impl BuildHasher for PrefixHash {
    type Hasher = PrefixHasher;

    fn build_hasher(&self) -> PrefixHasher {
        PrefixHasher { state: self.seed }
    }
}

/// One address family's table: a hash map per prefix length, searched from the longest
/// length present down. A lookup costs at most one hash probe per distinct length in use
/// (DN42 tables use a handful), and no probe at all for absent lengths.
#[derive(Clone, Debug)]
struct Table<const BITS: usize> {
    /// `by_len[l]` maps the network bits (host bits zero) of each /l prefix to its next hop.
    by_len: Vec<HashMap<u128, NextHop, PrefixHash>>,
    /// Lengths in use, longest first.
    lengths: Vec<u8>,
    len: usize,
}

impl<const BITS: usize> Default for Table<BITS> {
    fn default() -> Self {
        Table {
            by_len: vec![HashMap::with_hasher(PrefixHash::default()); BITS + 1],
            lengths: Vec::new(),
            len: 0,
        }
    }
}

impl<const BITS: usize> Table<BITS> {
    fn mask(len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            (u128::MAX << (BITS - len as usize)) & (u128::MAX >> (128 - BITS))
        }
    }

    fn insert(&mut self, key: u128, len: u8, nh: NextHop) -> Option<NextHop> {
        let old = self.by_len[len as usize].insert(key & Self::mask(len), nh);
        if old.is_none() {
            self.len += 1;
            if !self.lengths.contains(&len) {
                self.lengths.push(len);
                self.lengths.sort_unstable_by(|a, b| b.cmp(a));
            }
        }
        old
    }

    fn remove(&mut self, key: u128, len: u8) -> Option<NextHop> {
        let map = &mut self.by_len[len as usize];
        let old = map.remove(&(key & Self::mask(len)));
        if old.is_some() {
            self.len -= 1;
            if map.is_empty() {
                self.lengths.retain(|l| *l != len);
            }
        }
        old
    }

    fn lookup(&self, key: u128) -> Option<(u128, u8, NextHop)> {
        self.lengths.iter().find_map(|&len| {
            let net = key & Self::mask(len);
            self.by_len[len as usize]
                .get(&net)
                .map(|nh| (net, len, *nh))
        })
    }

    fn iter(&self) -> impl Iterator<Item = (u128, u8, NextHop)> + '_ {
        self.by_len
            .iter()
            .enumerate()
            .flat_map(|(len, m)| m.iter().map(move |(k, nh)| (*k, len as u8, *nh)))
    }
}

/// A longest-prefix-match table over IPv4 and IPv6.
#[derive(Clone, Debug, Default)]
pub struct Fib {
    v4: Table<32>,
    v6: Table<128>,
}

impl Fib {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the route for `prefix` (host bits are ignored); returns the old next hop.
    pub fn insert(&mut self, prefix: IpNet, nh: NextHop) -> Option<NextHop> {
        match prefix {
            IpNet::V4(p) => self
                .v4
                .insert(u32::from(p.addr()).into(), p.prefix_len(), nh),
            IpNet::V6(p) => self.v6.insert(u128::from(p.addr()), p.prefix_len(), nh),
        }
    }

    /// Removes the route for exactly `prefix`; returns its next hop.
    pub fn remove(&mut self, prefix: &IpNet) -> Option<NextHop> {
        match prefix {
            IpNet::V4(p) => self.v4.remove(u32::from(p.addr()).into(), p.prefix_len()),
            IpNet::V6(p) => self.v6.remove(u128::from(p.addr()), p.prefix_len()),
        }
    }

    /// The most specific route covering `addr`.
    pub fn lookup(&self, addr: IpAddr) -> Option<(IpNet, NextHop)> {
        match addr {
            IpAddr::V4(a) => self.lookup_v4(a).map(|(p, nh)| (IpNet::V4(p), nh)),
            IpAddr::V6(a) => self.lookup_v6(a).map(|(p, nh)| (IpNet::V6(p), nh)),
        }
    }

    /// The most specific IPv4 route covering `addr`.
    pub fn lookup_v4(&self, addr: Ipv4Addr) -> Option<(Ipv4Net, NextHop)> {
        self.v4
            .lookup(u32::from(addr).into())
            .map(|(net, len, nh)| {
                let net = Ipv4Net::new(Ipv4Addr::from(net as u32), len).expect("len <= 32");
                (net, nh)
            })
    }

    /// The most specific IPv6 route covering `addr`.
    pub fn lookup_v6(&self, addr: Ipv6Addr) -> Option<(Ipv6Net, NextHop)> {
        self.v6.lookup(addr.into()).map(|(net, len, nh)| {
            let net = Ipv6Net::new(Ipv6Addr::from(net), len).expect("len <= 128");
            (net, nh)
        })
    }

    /// Number of routes, both families.
    pub fn len(&self) -> usize {
        self.v4.len + self.v6.len
    }

    /// True when there is no route at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All routes, IPv4 first, each family sorted by prefix.
    pub fn routes(&self) -> Vec<(IpNet, NextHop)> {
        let mut v4: Vec<_> = self
            .v4
            .iter()
            .map(|(k, l, nh)| {
                let p = Ipv4Net::new(Ipv4Addr::from(k as u32), l).expect("len <= 32");
                (IpNet::V4(p), nh)
            })
            .collect();
        let mut v6: Vec<_> = self
            .v6
            .iter()
            .map(|(k, l, nh)| {
                let p = Ipv6Net::new(Ipv6Addr::from(k), l).expect("len <= 128");
                (IpNet::V6(p), nh)
            })
            .collect();
        v4.sort_by_key(|(p, _)| *p);
        v6.sort_by_key(|(p, _)| *p);
        v4.extend(v6);
        v4
    }
}

/// The node's one forwarding table: written by the control plane, read by every data-plane
/// thread without locks. Readers [`load`](Self::load) a snapshot; writers
/// [`update`](Self::update) a private copy and publish it atomically.
#[derive(Clone, Default)]
pub struct SharedFib {
    current: Arc<ArcSwap<Fib>>,
    /// Serialises writers so that no update is lost; readers never take it.
    writer: Arc<Mutex<()>>,
}

impl SharedFib {
    /// A shared table starting as `fib`.
    pub fn new(fib: Fib) -> Self {
        SharedFib {
            current: Arc::new(ArcSwap::from_pointee(fib)),
            writer: Arc::default(),
        }
    }

    /// The current snapshot; cheap, wait-free, and never blocks a writer.
    pub fn load(&self) -> arc_swap::Guard<Arc<Fib>> {
        self.current.load()
    }

    /// The current snapshot as an owned `Arc`.
    pub fn load_full(&self) -> Arc<Fib> {
        self.current.load_full()
    }

    /// Applies `f` to a copy of the table and publishes the result.
    pub fn update<R>(&self, f: impl FnOnce(&mut Fib) -> R) -> R {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = Fib::clone(&self.current.load());
        let r = f(&mut next);
        self.current.store(Arc::new(next));
        r
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

    #[test]
    fn longest_match_wins_and_remove_falls_back() {
        let mut f = Fib::new();
        f.insert("0.0.0.0/0".parse().unwrap(), nh(0));
        f.insert("172.20.0.0/14".parse().unwrap(), nh(1));
        f.insert("172.20.1.0/24".parse().unwrap(), nh(2));
        f.insert("fd00::/8".parse().unwrap(), nh(3));
        f.insert("fd00:1::/48".parse().unwrap(), nh(4));
        fn look(f: &Fib, s: &str) -> Option<(String, IfIndex)> {
            f.lookup(s.parse().unwrap())
                .map(|(p, n)| (p.to_string(), n.iface))
        }
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
        f.insert("::/0".parse().unwrap(), nh(7));
        f.insert("::1/128".parse().unwrap(), nh(8));
        assert_eq!(f.lookup_v6("::1".parse().unwrap()).unwrap().1, nh(8));
        assert_eq!(f.lookup_v6("::2".parse().unwrap()).unwrap().1, nh(7));
    }

    #[test]
    fn shared_readers_keep_their_snapshot() {
        let s = SharedFib::new(Fib::new());
        let before = s.load_full();
        s.update(|f| f.insert("10.0.0.0/8".parse().unwrap(), nh(1)));
        assert!(before.is_empty());
        assert_eq!(s.load().len(), 1);
    }
}
