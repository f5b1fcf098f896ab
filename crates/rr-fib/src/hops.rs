//! Interned next hops: the few distinct [`NextHop`] values a table uses (one per tunnel
//! and gateway), each stored once and named by a small index that fits in a trie leaf.
//!
//! What it is: a reference-counted intern table; an index is freed when its last route
//! goes, and reused. What it is not: shared between tables — each `Fib` has its own, so
//! indices mean nothing outside it.

use crate::{FibError, NextHop};
use std::collections::HashMap;

#[derive(Clone, Debug, Default)]
pub(crate) struct Hops {
    list: Vec<NextHop>,
    /// Routes using each index; 0 = free.
    refs: Vec<usize>,
    index: HashMap<NextHop, u32>,
    free: Vec<u32>,
    /// The last next hop acquired and its index: a table load brings runs of routes
    /// through the same next hop, which then skip the hash lookup.
    last: Option<(NextHop, u32)>,
}

impl Hops {
    /// The index of `nh`, interning it, with one more reference.
    pub(crate) fn acquire(&mut self, nh: NextHop) -> Result<u32, FibError> {
        let hit = match self.last {
            Some((l, i)) if l == nh => Some(i),
            _ => self.index.get(&nh).copied(),
        };
        if let Some(i) = hit {
            if let Some(r) = self.refs.get_mut(i as usize) {
                *r += 1;
            }
            self.last = Some((nh, i));
            return Ok(i);
        }
        let i = match self.free.pop() {
            Some(i) => i,
            None if self.list.len() < crate::trie::MAX_HOPS => {
                self.list.push(nh);
                self.refs.push(0);
                (self.list.len() - 1) as u32
            }
            None => return Err(FibError::TooManyNextHops { rejected: 1 }),
        };
        if let (Some(slot), Some(r)) =
            (self.list.get_mut(i as usize), self.refs.get_mut(i as usize))
        {
            *slot = nh;
            *r = 1;
        }
        self.index.insert(nh, i);
        self.last = Some((nh, i));
        Ok(i)
    }

    /// Drops one reference to `i`, freeing it with the last.
    pub(crate) fn release(&mut self, i: u32) {
        let Some(r) = self.refs.get_mut(i as usize) else {
            return;
        };
        *r = r.saturating_sub(1);
        if *r == 0 {
            if let Some(nh) = self.list.get(i as usize) {
                self.index.remove(nh);
            }
            if self.last.is_some_and(|(_, l)| l == i) {
                self.last = None;
            }
            self.free.push(i);
        }
    }

    /// An intern table whose index `i` is `list[i]` with `refs[i]` references (free when
    /// 0): how a table is rebuilt around a trie that already names these indices.
    pub(crate) fn with_refs(list: Vec<NextHop>, mut refs: Vec<usize>) -> Hops {
        refs.resize(list.len(), 0);
        let mut index = HashMap::new();
        let mut free = Vec::new();
        for (i, (nh, &r)) in list.iter().zip(&refs).enumerate() {
            if r == 0 {
                free.push(i as u32);
            } else {
                index.insert(*nh, i as u32);
            }
        }
        Hops {
            list,
            refs,
            index,
            free,
            last: None,
        }
    }

    /// Every index's next hop (free ones keep their last value).
    pub(crate) fn list(&self) -> &[NextHop] {
        &self.list
    }

    #[inline]
    pub(crate) fn get(&self, i: u32) -> Option<NextHop> {
        self.list.get(i as usize).copied()
    }

    /// Distinct next hops in use.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.list.capacity() * std::mem::size_of::<NextHop>()
            + self.refs.capacity() * std::mem::size_of::<usize>()
            + self.free.capacity() * 4
            + self.index.capacity() * (std::mem::size_of::<(NextHop, u32)>() + 1) * 8 / 7
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nh(i: u32) -> NextHop {
        NextHop {
            iface: i,
            gateway: None,
        }
    }

    #[test]
    fn indices_are_shared_counted_and_reused() {
        let mut h = Hops::default();
        let a = h.acquire(nh(1)).unwrap();
        assert_eq!(h.acquire(nh(1)).unwrap(), a);
        let b = h.acquire(nh(2)).unwrap();
        assert_ne!(a, b);
        assert_eq!(h.len(), 2);
        h.release(a);
        assert_eq!(h.get(a), Some(nh(1)), "one reference left");
        h.release(a);
        assert_eq!(h.len(), 1);
        let c = h.acquire(nh(3)).unwrap();
        assert_eq!(c, a, "freed index reused");
        assert_eq!(h.get(c), Some(nh(3)));
        assert_eq!(h.get(b), Some(nh(2)));
    }
}
