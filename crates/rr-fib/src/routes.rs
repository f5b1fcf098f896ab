//! The authoritative route set of one address family: a hash map per prefix length.
//!
//! What it is: `by_len[l]` maps the `N` address bytes (host bits clear) of each /l route
//! to its interned next hop. It answers what the trie cannot: whether a route exists
//! (insert/replace/remove), which route a withdrawal falls back to (the longest shorter
//! one covering it, one probe per populated shorter length), and the list of routes.
//! Keys are only as many address bytes as the length needs, so entries are 8 bytes for
//! IPv4 and 8, 12 or 20 bytes for IPv6 (up to /32, /64, /128) before the hash table's
//! overhead, and a key hashes as one or two integers (one multiply-xorshift round each).
//!
//! What it is not: on the lookup path. The data plane only reads the trie.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// Hashes the masked prefix keys: the splitmix64 finaliser over 8-byte chunks, seeded
/// per process. Several times cheaper than SipHash, and the seed keeps bucket collisions
/// from being computed in advance by whoever chooses the prefixes (BGP peers).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PrefixHash {
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

/// The hasher of one key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PrefixHasher {
    state: u64,
}

impl Hasher for PrefixHasher {
    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.state = mix(self.state ^ u64::from(x));
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.state = mix(self.state ^ x);
    }

    #[inline]
    fn write_u128(&mut self, x: u128) {
        self.write_u64(x as u64);
        self.write_u64((x >> 64) as u64);
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.state = mix(self.state ^ u64::from_le_bytes(word));
        }
    }

    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
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

/// Clears the bits of `key` past the first `len`.
pub(crate) fn mask<const N: usize>(mut key: [u8; N], len: u8) -> [u8; N] {
    let len = usize::from(len);
    for (i, b) in key.iter_mut().enumerate() {
        let keep = len.saturating_sub(8 * i).min(8);
        *b &= !(0xffu16 >> keep) as u8;
    }
    key
}

/// `K` leading address bytes, hashed as one integer (two for 16 bytes) rather than
/// through the byte-slice path (a length word, then byte chunks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key<const K: usize>([u8; K]);

impl<const K: usize> std::hash::Hash for Key<K> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        match &self.0[..] {
            [a, b, c, d] => state.write_u32(u32::from_be_bytes([*a, *b, *c, *d])),
            bytes => {
                for chunk in bytes.chunks(8) {
                    let mut word = [0u8; 8];
                    for (w, b) in word.iter_mut().zip(chunk) {
                        *w = *b;
                    }
                    state.write_u64(u64::from_be_bytes(word));
                }
            }
        }
    }
}

type Map<const K: usize> = HashMap<Key<K>, u32, PrefixHash>;

/// The routes of one length, keyed by as few leading address bytes as that length needs
/// (the rest are zero): 4 up to /32, 8 up to /64, else 16. A real IPv6 table is mostly
/// /32 and /48, so its entries are 8 and 12 bytes rather than 20.
#[derive(Clone, Debug)]
enum LenMap {
    B4(Map<4>),
    B8(Map<8>),
    B16(Map<16>),
}

/// The first `K` bytes of `key`.
fn head<const K: usize>(key: &[u8]) -> Option<[u8; K]> {
    key.get(..K)?.try_into().ok()
}

fn k4(key: &[u8]) -> Option<Key<4>> {
    head(key).map(Key)
}

fn k8(key: &[u8]) -> Option<Key<8>> {
    head(key).map(Key)
}

fn k16(key: &[u8]) -> Option<Key<16>> {
    head(key).map(Key)
}

/// `head` zero-extended to `N` bytes.
fn widen<const N: usize>(head: &[u8]) -> [u8; N] {
    let mut key = [0; N];
    for (k, h) in key.iter_mut().zip(head) {
        *k = *h;
    }
    key
}

impl LenMap {
    fn for_len(len: usize, hasher: PrefixHash) -> LenMap {
        match len {
            0..=32 => LenMap::B4(HashMap::with_hasher(hasher)),
            33..=64 => LenMap::B8(HashMap::with_hasher(hasher)),
            _ => LenMap::B16(HashMap::with_hasher(hasher)),
        }
    }

    fn get(&self, key: &[u8]) -> Option<u32> {
        match self {
            LenMap::B4(m) => m.get(&k4(key)?),
            LenMap::B8(m) => m.get(&k8(key)?),
            LenMap::B16(m) => m.get(&k16(key)?),
        }
        .copied()
    }

    fn insert(&mut self, key: &[u8], hop: u32) -> Option<u32> {
        match self {
            LenMap::B4(m) => m.insert(k4(key)?, hop),
            LenMap::B8(m) => m.insert(k8(key)?, hop),
            LenMap::B16(m) => m.insert(k16(key)?, hop),
        }
    }

    fn remove(&mut self, key: &[u8]) -> Option<u32> {
        let old = match self {
            LenMap::B4(m) => m.remove(&k4(key)?),
            LenMap::B8(m) => m.remove(&k8(key)?),
            LenMap::B16(m) => m.remove(&k16(key)?),
        };
        if old.is_some() && self.is_empty() {
            // A length emptied by a withdrawn table gives its memory back.
            match self {
                LenMap::B4(m) => *m = HashMap::with_hasher(*m.hasher()),
                LenMap::B8(m) => *m = HashMap::with_hasher(*m.hasher()),
                LenMap::B16(m) => *m = HashMap::with_hasher(*m.hasher()),
            }
        }
        old
    }

    fn is_empty(&self) -> bool {
        match self {
            LenMap::B4(m) => m.is_empty(),
            LenMap::B8(m) => m.is_empty(),
            LenMap::B16(m) => m.is_empty(),
        }
    }

    /// Every entry as `N` address bytes and hop.
    fn entries<const N: usize>(&self) -> Vec<([u8; N], u32)> {
        match self {
            LenMap::B4(m) => m.iter().map(|(k, h)| (widen(&k.0), *h)).collect(),
            LenMap::B8(m) => m.iter().map(|(k, h)| (widen(&k.0), *h)).collect(),
            LenMap::B16(m) => m.iter().map(|(k, h)| (widen(&k.0), *h)).collect(),
        }
    }

    /// Estimated heap bytes: hashbrown keeps a power-of-two bucket count at most 7/8
    /// full, each bucket one entry plus one control byte, plus a group of trailing
    /// control bytes.
    fn bytes(&self) -> usize {
        let (capacity, entry) = match self {
            LenMap::B4(m) => (m.capacity(), std::mem::size_of::<(Key<4>, u32)>()),
            LenMap::B8(m) => (m.capacity(), std::mem::size_of::<(Key<8>, u32)>()),
            LenMap::B16(m) => (m.capacity(), std::mem::size_of::<(Key<16>, u32)>()),
        };
        let buckets = match capacity {
            0 => return 0,
            c if c < 8 => (c + 1).next_power_of_two(),
            c => (c * 8 / 7).next_power_of_two(),
        };
        buckets * (entry + 1) + 16
    }
}

/// One family's routes, `N` address bytes each.
#[derive(Clone, Debug)]
pub(crate) struct Routes<const N: usize> {
    by_len: Vec<LenMap>,
    len: usize,
}

impl<const N: usize> Default for Routes<N> {
    fn default() -> Self {
        let hasher = PrefixHash::default();
        Routes {
            by_len: (0..=8 * N).map(|l| LenMap::for_len(l, hasher)).collect(),
            len: 0,
        }
    }
}

impl<const N: usize> Routes<N> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The next hop of exactly `key/len`.
    pub(crate) fn get(&self, key: &[u8; N], len: u8) -> Option<u32> {
        self.by_len.get(usize::from(len))?.get(key)
    }

    /// Sets `key/len` (host bits clear) to `hop`; the old hop if it existed.
    pub(crate) fn insert(&mut self, key: [u8; N], len: u8, hop: u32) -> Option<u32> {
        let old = self.by_len.get_mut(usize::from(len))?.insert(&key, hop);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(crate) fn remove(&mut self, key: &[u8; N], len: u8) -> Option<u32> {
        let old = self.by_len.get_mut(usize::from(len))?.remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// The longest route strictly shorter than `len` that covers `key`: (length, hop).
    pub(crate) fn covering(&self, key: &[u8; N], len: u8) -> Option<(u8, u32)> {
        (0..len).rev().find_map(|l| {
            let map = self.by_len.get(usize::from(l))?;
            if map.is_empty() {
                return None;
            }
            map.get(&mask(*key, l)).map(|hop| (l, hop))
        })
    }

    /// Every route: (address bytes, length, hop), in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = ([u8; N], u8, u32)> + '_ {
        self.by_len.iter().enumerate().flat_map(|(l, m)| {
            m.entries::<N>()
                .into_iter()
                .map(move |(k, hop)| (k, l as u8, hop))
        })
    }

    /// Estimated heap bytes of all the maps.
    pub(crate) fn bytes(&self) -> usize {
        self.by_len.iter().map(LenMap::bytes).sum::<usize>()
            + self.by_len.capacity() * std::mem::size_of::<LenMap>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_clears_host_bits() {
        assert_eq!(mask([10, 255, 255, 255], 8), [10, 0, 0, 0]);
        assert_eq!(mask([10, 255, 255, 255], 12), [10, 240, 0, 0]);
        assert_eq!(mask([255; 4], 0), [0; 4]);
        assert_eq!(mask([255; 4], 32), [255; 4]);
        assert_eq!(mask([255; 16], 127)[15], 254);
    }

    #[test]
    fn covering_finds_the_longest_shorter_route() {
        let mut r = Routes::<4>::default();
        r.insert([0; 4], 0, 1);
        r.insert([10, 0, 0, 0], 8, 2);
        r.insert([10, 1, 0, 0], 16, 3);
        assert_eq!(r.covering(&[10, 1, 2, 0], 24), Some((16, 3)));
        assert_eq!(r.covering(&[10, 1, 0, 0], 16), Some((8, 2)));
        assert_eq!(r.covering(&[11, 0, 0, 0], 8), Some((0, 1)));
        assert_eq!(r.covering(&[0; 4], 0), None);
        assert_eq!(r.len(), 3);
        assert_eq!(r.remove(&[10, 0, 0, 0], 8), Some(2));
        assert_eq!(r.covering(&[10, 1, 0, 0], 16), Some((0, 1)));
        assert_eq!(r.len(), 2);
    }
}
