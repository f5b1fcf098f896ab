//! A growable bit set indexed by slot number: one bit per prefix per peer.
//!
//! What it is: the compact per-peer export state (which prefixes the peer currently
//! has from us, which are queued for re-evaluation). What it is not: a general-purpose
//! bit vector; it only grows, and reading past the end is `false`.

/// Bits, all clear until set.
#[derive(Clone, Debug, Default)]
pub(crate) struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    /// Whether bit `i` is set.
    pub(crate) fn get(&self, i: u32) -> bool {
        let i = i as usize;
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    /// Sets or clears bit `i`; returns its previous value.
    pub(crate) fn put(&mut self, i: u32, value: bool) -> bool {
        let i = i as usize;
        let word = i / 64;
        if word >= self.words.len() {
            if !value {
                return false;
            }
            self.words.resize(word + 1, 0);
        }
        let mask = 1u64 << (i % 64);
        let w = &mut self.words[word];
        let old = *w & mask != 0;
        if value {
            *w |= mask;
        } else {
            *w &= !mask;
        }
        old
    }

    /// The set bits, ascending.
    pub(crate) fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros();
                w &= w - 1;
                Some((wi * 64) as u32 + b)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::BitSet;

    #[test]
    fn set_get_iterate() {
        let mut b = BitSet::default();
        assert!(!b.get(1000));
        assert!(!b.put(1000, false));
        assert!(!b.put(3, true));
        assert!(!b.put(64, true));
        assert!(!b.put(1000, true));
        assert!(b.put(1000, true));
        assert!(b.get(3) && b.get(64) && b.get(1000) && !b.get(65));
        assert_eq!(b.ones().collect::<Vec<_>>(), vec![3, 64, 1000]);
        assert!(b.put(64, false));
        assert_eq!(b.ones().collect::<Vec<_>>(), vec![3, 1000]);
    }
}
