//! The lookup structure of one address family: a multibit trie with prefix expansion.
//!
//! What it is: a 65536-slot root indexed by the first 16 address bits, then nodes of
//! 256 slots indexed by each following byte (strides 16-8-8 for IPv4, 16-8-…-8 for IPv6),
//! the controlled-prefix-expansion scheme of Srinivasan and Varghese ("Fast address
//! lookups using controlled prefix expansion", 1999) with the DIR-24-8 / 16-8-8 layout.
//! Every slot is 4 bytes and holds either a child node or the best route for its whole
//! block *as a leaf*: the route's length and its interned next hop. The length is what
//! makes incremental updates exact: painting a route over its block overwrites only the
//! slots whose route is no longer than it (ties are the route itself), so more specific
//! routes survive, and a withdrawal repaints with the next shorter covering route. A
//! lookup is one root read plus one read per node on the way, at most 2 nodes for IPv4
//! and 14 for IPv6 (fewer through wide nodes, below), and the prefix that matched is
//! rebuilt from the address and the leaf's length.
//!
//! A node's 256 slots are stored by how many runs of equal slots they form, chosen again
//! after every change: up to 6, 12, 24 or 48 runs as a run list of 32, 64, 128 or 256
//! bytes (the first slot of each run as a byte, searched eight at a time without
//! branches, then the run's slot), beyond that as a dense array of 256 slots (1 KiB,
//! one read). Most nodes of a real table are run lists — a /16 with a few /24s in it, a
//! /40 with a few /48s — and a node whose slots become one leaf collapses back into its
//! parent's slot. Dense nodes are edited in place (keeping a count of their runs), run
//! lists through a short list of runs.
//!
//! IPv6 adds wide nodes: one node for 16 bits, at key bytes 2, 4, …, 14, where an 8-bit
//! node and its 8-bit children together form at most 48 runs over the 65536 indices (a
//! /32 holding a few /48s, a sparse /16 holding a few /32s). Stored as a run list with
//! 16-bit starts (8, 24 or 48 runs in 48, 144 or 288 bytes, searched four starts at a
//! time), a wide node saves one dependent read per 16 bits: a /48 in a sparse /16 is the
//! root plus 2 node reads instead of 4. A wide node is edited as its two 8-bit levels and
//! joined again afterwards if they still fit (level compression in the sense of Nilsson
//! and Karlsson's LC-trie, 1999, chosen per node by run count rather than by density).
//!
//! What it is not: the authoritative route set. It cannot tell which routes exist (a
//! route hidden under more specifics leaves no slot), so insertion, withdrawal and the
//! fallback route are decided by the caller from its per-length maps; this module only
//! paints. It is not concurrent either: readers get immutable snapshots from `SharedFib`.

/// A slot: [`EMPTY`], a leaf (see [`leaf`]), or a child node reference.
pub(crate) type Slot = u32;

/// No route covers the block.
pub(crate) const EMPTY: Slot = 0;
/// Set in a child reference.
const CHILD: u32 = 1 << 31;
/// A child reference holds its node's kind (bits 28..31) and index in that kind's arena.
const KIND_SHIFT: u32 = 28;
const KIND: u32 = 0b111 << KIND_SHIFT;
const INDEX: u32 = (1 << KIND_SHIFT) - 1;
const DENSE: u32 = 0b000;
/// Run-list kinds have bit 2 set; bits 0..2 give the size.
const RUNS6: u32 = 0b100;
const RUNS12: u32 = 0b101;
const RUNS24: u32 = 0b110;
const RUNS48: u32 = 0b111;
/// Wide (16-bit stride, IPv6 only) run-list kinds: bit 2 clear, bits 0..2 nonzero.
const WIDE8: u32 = 0b001;
const WIDE24: u32 = 0b010;
const WIDE48: u32 = 0b011;
/// The most runs a run-list node holds; more make a dense node.
const MAX_RUNS: usize = 48;
/// The most runs a wide node holds; more stay two 8-bit levels.
const MAX_WIDE: usize = 48;

/// Leaves keep the next-hop index in bits 8..31, so this many distinct next hops fit.
pub(crate) const MAX_HOPS: usize = 1 << 23;

/// The leaf for a route of length `len` through interned next hop `hop` (< [`MAX_HOPS`]).
/// The low byte is `len + 1`, so it is never [`EMPTY`] and compares by length.
pub(crate) fn leaf(len: u8, hop: u32) -> Slot {
    debug_assert!((hop as usize) < MAX_HOPS);
    ((hop & (MAX_HOPS as u32 - 1)) << 8) | (u32::from(len) + 1)
}

/// A leaf's route length and next-hop index; `None` for [`EMPTY`] and child references.
#[inline(always)]
pub(crate) fn leaf_parts(s: Slot) -> Option<(u8, u32)> {
    if s == EMPTY || s & CHILD != 0 {
        None
    } else {
        // The low byte is len + 1 in 1..=129.
        Some((((s & 0xff) - 1) as u8, s >> 8))
    }
}

const HIGH: u64 = 0x8080_8080_8080_8080;
const ONES: u64 = 0x0101_0101_0101_0101;

/// Bit 0 of each byte of the result is set iff that byte of `word` is `>= c`, without
/// branches or SIMD intrinsics (SWAR, after Hacker's Delight §6-1): per byte,
/// `(x | 0x80) - (c & 0x7f)` keeps bit 7 iff the low 7 bits of `x` reach those of `c`, and
/// no borrow crosses a byte; the high bits then decide (`x >= c` iff `x7 | that` when
/// c < 128, `x7 & that` when c >= 128, chosen by a mask, not a branch: the address byte
/// is as likely to be either).
#[inline(always)]
fn bytes_at_least(word: u64, c: u8) -> u64 {
    let low = (((word & !HIGH) | HIGH) - ONES * u64::from(c & 0x7f)) & HIGH;
    let high = word & HIGH;
    let c_high = 0u64.wrapping_sub(u64::from(c >> 7));
    ((high & low) | ((high ^ low) & !c_high)) >> 7
}

/// The number of flags set in a sum of [`bytes_at_least`] results (at most 255 per byte).
#[inline(always)]
fn count_flags(sum: u64) -> usize {
    (sum.wrapping_mul(ONES) >> 56) as usize
}

const HIGH16: u64 = 0x8000_8000_8000_8000;
const ONES16: u64 = 0x0001_0001_0001_0001;

/// Bit 0 of each 16-bit lane of the result is set iff that lane of `word` is `>= c`:
/// [`bytes_at_least`] with 16-bit lanes (the same borrow-free subtraction per lane).
#[inline(always)]
fn lanes_at_least(word: u64, c: u16) -> u64 {
    let low = (((word & !HIGH16) | HIGH16) - ONES16 * u64::from(c & 0x7fff)) & HIGH16;
    let high = word & HIGH16;
    let c_high = 0u64.wrapping_sub(u64::from(c >> 15));
    ((high & low) | ((high ^ low) & !c_high)) >> 15
}

/// The number of flags set in a sum of [`lanes_at_least`] results.
#[inline(always)]
fn count_lanes(sum: u64) -> usize {
    (sum.wrapping_mul(ONES16) >> 48) as usize
}

/// Byte `j` of a run list's starts, stored eight to a little-endian word.
fn start_byte(starts: &[u64], j: usize) -> u8 {
    starts
        .get(j / 8)
        .map_or(255, |w| (w >> (8 * (j % 8))) as u8)
}

fn set_start_byte(starts: &mut [u64], j: usize, v: u8) {
    if let Some(w) = starts.get_mut(j / 8) {
        let shift = 8 * (j % 8);
        *w = (*w & !(0xff << shift)) | (u64::from(v) << shift);
    }
}

/// Run-list nodes: `values[k]` is run `k`'s slot and byte `k - 1` of `starts` its first
/// slot, for the `n` runs; the remaining start bytes are 255 and the remaining values
/// repeat the last run. For slot `b` < 255 the run is then `8 * W - #{start bytes > b}`
/// (every unused 255 counts as greater), and for `b` = 255 the index clamps to the last
/// value, which holds the last run. `W` words of starts and `6 * W` values fill `32 * W`
/// bytes exactly.
macro_rules! run_node {
    ($name:ident, $words:literal, $runs:literal, $align:literal) => {
        #[derive(Clone, Copy, Debug)]
        #[repr(C, align($align))]
        struct $name {
            starts: [u64; $words],
            values: [Slot; $runs],
        }

        impl $name {
            #[inline(always)]
            fn get(&self, b: u8) -> Slot {
                let c = b.wrapping_add(1);
                let mut flags = 0;
                for &w in &self.starts {
                    flags += bytes_at_least(w, c);
                }
                let run = (8 * $words - count_flags(flags)).min($runs - 1);
                // Slot 255 is in the last run (c wrapped to 0 and counted every byte).
                let run = if b == 255 { $runs - 1 } else { run };
                self.values[run]
            }

            fn from_list(list: &RunList) -> Self {
                let mut node = $name {
                    starts: [u64::MAX; $words],
                    values: [list.last(); $runs],
                };
                for k in 0..list.n.min($runs) {
                    node.values[k] = list.value[k];
                    if k > 0 {
                        set_start_byte(&mut node.starts, k - 1, list.start[k] as u8);
                    }
                }
                node
            }

            fn runs(&self) -> RunList {
                RunList::decode(&self.starts, &self.values)
            }
        }
    };
}

/// The runs of a wide node while it is converted: `(first index, slot)`, starting at 0,
/// increasing, neighbours different.
type WideRuns = Vec<(u32, Slot)>;

/// Wide run-list nodes: one node for 16 address bits (two bytes), the IPv6 blocks a
/// byte-per-level trie would spend two reads on — a /32 holding a few /48s, a /16
/// holding a few /32s. Laid out as the 8-bit run lists, with 16-bit starts four to a
/// word: `values[k]` is run `k`'s slot and lane `k - 1` of `starts` its first index; the
/// remaining lanes are 0xffff and the remaining values repeat the last run.
macro_rules! wide_node {
    ($name:ident, $words:literal, $runs:literal) => {
        #[derive(Clone, Copy, Debug)]
        #[repr(C, align(16))]
        struct $name {
            starts: [u64; $words],
            values: [Slot; $runs],
        }

        impl $name {
            #[inline(always)]
            fn get(&self, k: u16) -> Slot {
                let c = k.wrapping_add(1);
                let mut flags = 0;
                for &w in &self.starts {
                    flags += lanes_at_least(w, c);
                }
                let run = (4 * $words - count_lanes(flags)).min($runs - 1);
                // Index 0xffff is in the last run (c wrapped to 0 and counted every lane).
                let run = if k == u16::MAX { $runs - 1 } else { run };
                self.values[run]
            }

            fn from_runs(runs: &[(u32, Slot)]) -> Self {
                let last = runs.last().map_or(EMPTY, |r| r.1);
                let mut node = $name {
                    starts: [u64::MAX; $words],
                    values: [last; $runs],
                };
                for (k, &(start, v)) in runs.iter().enumerate().take($runs) {
                    node.values[k] = v;
                    if let Some(w) = k.checked_sub(1).and_then(|j| node.starts.get_mut(j / 4)) {
                        let shift = 16 * ((k - 1) % 4);
                        *w = (*w & !(0xffff << shift)) | (u64::from(start as u16) << shift);
                    }
                }
                node
            }

            fn runs(&self) -> WideRuns {
                let mut out: WideRuns = vec![(0, self.values[0])];
                for (k, &v) in self.values.iter().enumerate().skip(1) {
                    let start = self
                        .starts
                        .get((k - 1) / 4)
                        .map_or(0xffff, |w| (w >> (16 * ((k - 1) % 4))) as u16);
                    // Padding repeats the last run with start 0xffff (see `RunList::decode`).
                    if start == u16::MAX && Some(v) == out.last().map(|r| r.1) {
                        break;
                    }
                    out.push((u32::from(start), v));
                    if start == u16::MAX {
                        break;
                    }
                }
                out
            }
        }
    };
}

wide_node!(Wide8, 2, 8);
wide_node!(Wide24, 6, 24);
wide_node!(Wide48, 12, 48);

run_node!(Runs6, 1, 6, 32);
run_node!(Runs12, 2, 12, 64);
run_node!(Runs24, 4, 24, 64);
run_node!(Runs48, 8, 48, 64);

/// A dense node: one slot per byte value.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Dense {
    slots: [Slot; 256],
}

/// Most runs a list holds while a node is edited: [`MAX_RUNS`] plus the two that an
/// edit of one slot range can split off.
const EDIT_RUNS: usize = MAX_RUNS + 2;

/// A node's slots as runs `(start, value)` while it is edited: `start[0]` is 0, starts
/// increase, and neighbouring runs differ once merged.
#[derive(Clone, Copy, Debug)]
struct RunList {
    start: [u16; EDIT_RUNS],
    value: [Slot; EDIT_RUNS],
    n: usize,
}

impl RunList {
    /// All 256 slots `v`.
    fn uniform(v: Slot) -> RunList {
        RunList {
            start: [0; EDIT_RUNS],
            value: [v; EDIT_RUNS],
            n: 1,
        }
    }

    fn last(&self) -> Slot {
        self.value[self.n.clamp(1, EDIT_RUNS) - 1]
    }

    fn push(&mut self, start: usize, v: Slot) {
        if self.n < EDIT_RUNS {
            self.start[self.n] = start as u16;
            self.value[self.n] = v;
            self.n += 1;
        }
    }

    fn decode(starts: &[u64], values: &[Slot]) -> RunList {
        let mut list = RunList::uniform(values.first().copied().unwrap_or(EMPTY));
        for (k, &v) in values.iter().enumerate().skip(1) {
            let start = start_byte(starts, k - 1);
            // Padding repeats the last run with start 255; a real run differs from the
            // one before it (a real run may start at 255 too, and then it is the last).
            if start == 255 && v == list.last() {
                break;
            }
            list.push(usize::from(start), v);
            if start == 255 {
                break;
            }
        }
        list
    }

    /// The runs of `slots` if there are at most [`MAX_RUNS`].
    fn from_slots(slots: &[Slot; 256]) -> Option<RunList> {
        let mut list = RunList::uniform(slots[0]);
        for (b, pair) in slots.windows(2).enumerate() {
            if pair[0] != pair[1] {
                if list.n == MAX_RUNS {
                    return None;
                }
                list.push(b + 1, pair[1]);
            }
        }
        Some(list)
    }

    fn expand(&self) -> [Slot; 256] {
        let mut slots = [self.value[0]; 256];
        for k in 1..self.n {
            let end = if k + 1 < self.n {
                usize::from(self.start[k + 1])
            } else {
                256
            };
            if let Some(run) = slots.get_mut(usize::from(self.start[k])..end) {
                run.fill(self.value[k]);
            }
        }
        slots
    }

    /// Makes slot `at` the start of a run (256: the end) and returns that run's index.
    fn split(&mut self, at: usize) -> usize {
        if at >= 256 {
            return self.n;
        }
        let k = self.start[1..self.n]
            .iter()
            .take_while(|&&s| usize::from(s) <= at)
            .count();
        if usize::from(self.start[k]) == at || self.n == EDIT_RUNS {
            // (A full list cannot happen: edits start from at most MAX_RUNS runs.)
            return k;
        }
        self.start.copy_within(k + 1..self.n, k + 2);
        self.value.copy_within(k + 1..self.n, k + 2);
        self.start[k + 1] = at as u16;
        self.value[k + 1] = self.value[k];
        self.n += 1;
        k + 1
    }

    /// Joins neighbouring runs of equal value.
    fn merge(&mut self) {
        let mut out = 1;
        for k in 1..self.n {
            if self.value[k] != self.value[out - 1] {
                self.start[out] = self.start[k];
                self.value[out] = self.value[k];
                out += 1;
            }
        }
        self.n = out;
    }
}

/// One kind of node. Freed nodes go on a free list and are reused first; the arena grows
/// by an eighth rather than doubling, so a full table wastes little capacity (large
/// reallocations are page remaps, so the copying stays cheap).
#[derive(Clone, Debug)]
struct Arena<T> {
    items: Vec<T>,
    free: Vec<u32>,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Arena {
            items: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Arena<T> {
    fn alloc(&mut self, item: T) -> u32 {
        if let Some(i) = self.free.pop() {
            if let Some(slot) = self.items.get_mut(i as usize) {
                *slot = item;
                return i;
            }
        }
        if self.items.len() == self.items.capacity() {
            self.items.reserve_exact(self.items.len() / 8 + 16);
        }
        self.items.push(item);
        debug_assert!(
            self.items.len() <= INDEX as usize,
            "node arena beyond 2^28 nodes"
        );
        (self.items.len() - 1) as u32
    }

    fn release(&mut self, i: u32) {
        self.free.push(i);
        if self.free.len() == self.items.len() {
            // Every node of this kind is free (a table emptied): give the memory back.
            *self = Arena::default();
        }
    }

    fn live(&self) -> usize {
        self.items.len() - self.free.len()
    }

    fn bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<T>() + self.free.capacity() * 4
    }
}

/// All nodes of a trie.
#[derive(Clone, Debug, Default)]
struct Nodes {
    dense: Arena<Dense>,
    /// Runs of equal slots in each dense node, kept as its slots change.
    dense_runs: Vec<u16>,
    runs6: Arena<Runs6>,
    runs12: Arena<Runs12>,
    runs24: Arena<Runs24>,
    runs48: Arena<Runs48>,
    wide8: Arena<Wide8>,
    wide24: Arena<Wide24>,
    wide48: Arena<Wide48>,
}

/// Whether child reference `s` is a wide node.
#[inline(always)]
fn is_wide(s: Slot) -> bool {
    s & CHILD != 0 && s & (0b100 << KIND_SHIFT) == 0 && s & (0b011 << KIND_SHIFT) != 0
}

impl Nodes {
    /// Slot `b` of the child node `s` refers to.
    #[inline(always)]
    fn get(&self, s: Slot, b: u8) -> Slot {
        // Tested bit by bit: a jump table's indirect branch mispredicts more.
        let i = (s & INDEX) as usize;
        let bit = |k: u32| s & (k << KIND_SHIFT) != 0;
        if !bit(0b100) {
            match self.dense.items.get(i) {
                Some(n) => n.slots[usize::from(b)],
                None => EMPTY,
            }
        } else if !bit(0b010) {
            if !bit(0b001) {
                match self.runs6.items.get(i) {
                    Some(n) => n.get(b),
                    None => EMPTY,
                }
            } else {
                match self.runs12.items.get(i) {
                    Some(n) => n.get(b),
                    None => EMPTY,
                }
            }
        } else if !bit(0b001) {
            match self.runs24.items.get(i) {
                Some(n) => n.get(b),
                None => EMPTY,
            }
        } else {
            match self.runs48.items.get(i) {
                Some(n) => n.get(b),
                None => EMPTY,
            }
        }
    }

    /// Index `k` of the wide node `s` refers to.
    #[inline(always)]
    fn get_wide(&self, s: Slot, k: u16) -> Slot {
        let i = (s & INDEX) as usize;
        if s & (0b010 << KIND_SHIFT) == 0 {
            match self.wide8.items.get(i) {
                Some(n) => n.get(k),
                None => EMPTY,
            }
        } else if s & (0b001 << KIND_SHIFT) == 0 {
            match self.wide24.items.get(i) {
                Some(n) => n.get(k),
                None => EMPTY,
            }
        } else {
            match self.wide48.items.get(i) {
                Some(n) => n.get(k),
                None => EMPTY,
            }
        }
    }

    /// The runs of wide node `s`.
    fn wide_runs(&self, s: Slot) -> Option<WideRuns> {
        let i = (s & INDEX) as usize;
        match (s & KIND) >> KIND_SHIFT {
            WIDE8 => self.wide8.items.get(i).map(Wide8::runs),
            WIDE24 => self.wide24.items.get(i).map(Wide24::runs),
            WIDE48 => self.wide48.items.get(i).map(Wide48::runs),
            _ => None,
        }
    }

    /// Stores at most [`MAX_WIDE`] runs as a new wide node.
    fn store_wide(&mut self, runs: &[(u32, Slot)]) -> Slot {
        let (kind, i) = match runs.len() {
            0..=8 => (WIDE8, self.wide8.alloc(Wide8::from_runs(runs))),
            9..=24 => (WIDE24, self.wide24.alloc(Wide24::from_runs(runs))),
            _ => (WIDE48, self.wide48.alloc(Wide48::from_runs(runs))),
        };
        CHILD | (kind << KIND_SHIFT) | i
    }

    /// Stores 256 slots as a new run-list or dense node (or their leaf if all one).
    fn store_slots(&mut self, slots: &[Slot; 256]) -> Slot {
        match RunList::from_slots(slots) {
            Some(list) => self.store_list(None, &list),
            None => {
                let runs = 1 + slots.windows(2).filter(|p| p[0] != p[1]).count();
                self.new_dense(*slots, runs)
            }
        }
    }

    /// The runs of run-list node `s`.
    fn list(&self, s: Slot) -> Option<RunList> {
        let i = (s & INDEX) as usize;
        match (s & KIND) >> KIND_SHIFT {
            RUNS6 => self.runs6.items.get(i).map(Runs6::runs),
            RUNS12 => self.runs12.items.get(i).map(Runs12::runs),
            RUNS24 => self.runs24.items.get(i).map(Runs24::runs),
            RUNS48 => self.runs48.items.get(i).map(Runs48::runs),
            _ => None,
        }
    }

    fn release(&mut self, s: Slot) {
        let i = s & INDEX;
        match (s & KIND) >> KIND_SHIFT {
            DENSE => {
                self.dense.release(i);
                if self.dense.items.is_empty() {
                    self.dense_runs = Vec::new();
                }
            }
            RUNS6 => self.runs6.release(i),
            RUNS12 => self.runs12.release(i),
            RUNS24 => self.runs24.release(i),
            RUNS48 => self.runs48.release(i),
            WIDE8 => self.wide8.release(i),
            WIDE24 => self.wide24.release(i),
            _ => self.wide48.release(i),
        }
    }

    fn new_dense(&mut self, slots: [Slot; 256], runs: usize) -> Slot {
        let i = self.dense.alloc(Dense { slots });
        let i_us = i as usize;
        if self.dense_runs.len() <= i_us {
            self.dense_runs.resize(i_us + 1, 0);
        }
        self.dense_runs[i_us] = runs as u16;
        CHILD | (DENSE << KIND_SHIFT) | i
    }

    /// Stores `list` as a node, reusing `old` (the run-list node it came from, if any)
    /// when the kind fits, and returns the slot that refers to it: the leaf itself when
    /// it is the only run.
    fn store_list(&mut self, old: Option<Slot>, list: &RunList) -> Slot {
        let only = list.value[0];
        if list.n == 1 && only & CHILD == 0 {
            if let Some(o) = old {
                self.release(o);
            }
            return only;
        }
        let kind = match list.n {
            0..=6 => RUNS6,
            7..=12 => RUNS12,
            13..=24 => RUNS24,
            25..=MAX_RUNS => RUNS48,
            _ => DENSE,
        };
        let reuse = old.filter(|o| (o & KIND) >> KIND_SHIFT == kind && kind != DENSE);
        if let Some(o) = old {
            if reuse.is_none() {
                self.release(o);
            }
        }
        macro_rules! put {
            ($arena:ident, $ty:ident) => {{
                let node = $ty::from_list(list);
                match reuse.and_then(|o| self.$arena.items.get_mut((o & INDEX) as usize)) {
                    Some(slot) => {
                        *slot = node;
                        reuse.unwrap_or(EMPTY)
                    }
                    None => CHILD | (kind << KIND_SHIFT) | self.$arena.alloc(node),
                }
            }};
        }
        match kind {
            RUNS6 => put!(runs6, Runs6),
            RUNS12 => put!(runs12, Runs12),
            RUNS24 => put!(runs24, Runs24),
            RUNS48 => put!(runs48, Runs48),
            _ => self.new_dense(list.expand(), list.n),
        }
    }

    /// Sets slot `b` of dense node `i` to `v`, keeping its run count.
    fn set_dense(&mut self, i: usize, b: usize, v: Slot) {
        let (Some(node), Some(runs)) = (self.dense.items.get_mut(i), self.dense_runs.get_mut(i))
        else {
            return;
        };
        let slots = &mut node.slots;
        let Some(&old) = slots.get(b) else {
            return;
        };
        let left = b.checked_sub(1).and_then(|l| slots.get(l)).copied();
        let right = slots.get(b + 1).copied();
        let boundaries = |x: Slot| {
            u16::from(left.is_some_and(|l| l != x)) + u16::from(right.is_some_and(|r| r != x))
        };
        *runs = *runs + boundaries(v) - boundaries(old);
        slots[b] = v;
    }

    /// The slot that refers to dense node `i` after an edit: the leaf if all its slots
    /// are one, a run list if it has become that sparse, else the node itself.
    fn finish_dense(&mut self, i: usize) -> Slot {
        let me = CHILD | (DENSE << KIND_SHIFT) | i as u32;
        let (Some(node), Some(&runs)) = (self.dense.items.get(i), self.dense_runs.get(i)) else {
            return EMPTY;
        };
        if usize::from(runs) > MAX_RUNS {
            return me;
        }
        match RunList::from_slots(&node.slots) {
            Some(list) => self.store_list(Some(me), &list),
            None => me,
        }
    }
}

/// Sizes of a trie, for [`crate::FibStats`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TrieSize {
    pub dense: usize,
    pub runs: usize,
    pub bytes: usize,
}

/// One family's trie over `N`-byte addresses (4 or 16).
#[derive(Debug)]
pub(crate) struct Trie<const N: usize> {
    root: Box<[Slot; 65536]>,
    nodes: Nodes,
}

fn empty_root() -> Box<[Slot; 65536]> {
    // Built on the heap: a 256 KiB array would go through the stack.
    match vec![EMPTY; 65536].into_boxed_slice().try_into() {
        Ok(root) => root,
        Err(_) => unreachable!("a 65536-element slice"),
    }
}

impl<const N: usize> Clone for Trie<N> {
    fn clone(&self) -> Self {
        let mut root = empty_root();
        root.copy_from_slice(&self.root[..]);
        Trie {
            root,
            nodes: self.nodes.clone(),
        }
    }
}

impl<const N: usize> Default for Trie<N> {
    fn default() -> Self {
        Trie {
            root: empty_root(),
            nodes: Nodes::default(),
        }
    }
}

/// What an edit does to each slot of a node's range.
#[derive(Clone, Copy)]
enum Op<'a, const N: usize> {
    /// The slot's block lies within the route: [`Trie::cover`].
    Cover { len: u32, new: Slot },
    /// The route lies strictly within the slot's block: [`Trie::descend`].
    Descend {
        byte: usize,
        key: &'a [u8; N],
        len: u32,
        new: Slot,
    },
}

impl<const N: usize> Trie<N> {
    /// The slot of the longest route covering address `a` ([`EMPTY`] if none).
    #[inline(always)]
    pub(crate) fn lookup(&self, a: &[u8; N]) -> Slot {
        let mut s = match &a[..] {
            [b0, b1, ..] => self.root[usize::from(u16::from_be_bytes([*b0, *b1]))],
            _ => return EMPTY,
        };
        if N == 4 {
            for &b in a.iter().skip(2) {
                if s & CHILD == 0 {
                    break;
                }
                s = self.nodes.get(s, b);
            }
            return s;
        }
        // IPv6: a wide node takes two bytes at once.
        let mut i = 2;
        while s & CHILD != 0 {
            if is_wide(s) {
                let k = match a.get(i..i + 2) {
                    Some(&[x, y]) => u16::from_be_bytes([x, y]),
                    _ => break,
                };
                s = self.nodes.get_wide(s, k);
                i += 2;
            } else {
                match a.get(i) {
                    Some(&b) => s = self.nodes.get(s, b),
                    None => break,
                }
                i += 1;
            }
        }
        s
    }

    /// Whether the node indexed by key byte `byte` may be a wide node: IPv6 only, at
    /// even bytes (so that wide and 8-bit levels stay aligned: a wide node's children
    /// are indexed by `byte + 2`, an 8-bit node's by `byte + 1`, which is never wide).
    const fn wide_at(byte: usize) -> bool {
        N == 16 && byte.is_multiple_of(2) && byte >= 2 && byte + 2 <= N
    }

    /// Writes `new` over every slot of the block of `key/len` whose route is not longer
    /// than `len`. With `new` = the route's leaf this inserts or replaces it; with `new` =
    /// the leaf of the next shorter covering route (or [`EMPTY`]) it withdraws it. `key`
    /// has its host bits clear and `len <= 8 * N`.
    pub(crate) fn paint(&mut self, key: &[u8; N], len: u8, new: Slot) {
        let len = u32::from(len);
        let r = match &key[..] {
            [b0, b1, ..] => usize::from(u16::from_be_bytes([*b0, *b1])),
            _ => return,
        };
        if len <= 16 {
            let span = 1usize << (16 - len);
            let first = r & !(span - 1);
            for i in first..first + span {
                let s = self.root[i];
                self.root[i] = self.cover(s, 2, len, new);
            }
        } else {
            let s = self.root[r];
            self.root[r] = self.descend(s, 2, key, len, new);
        }
    }

    /// Paints slot `s`, whose whole block lies within the route; `byte` indexes the key
    /// byte that selects a slot of the node below `s`.
    fn cover(&mut self, s: Slot, byte: usize, len: u32, new: Slot) -> Slot {
        if s & CHILD != 0 {
            self.edit(s, byte, 0, 256, Op::Cover { len, new })
        } else if s & 0xff <= len + 1 {
            // Empty (0), or a leaf of a route no longer than this one.
            new
        } else {
            s
        }
    }

    /// Paints inside the block of slot `s`, which the route lies strictly within; `byte`
    /// indexes the key byte that selects a slot of the node below `s`.
    fn descend(&mut self, s: Slot, byte: usize, key: &[u8; N], len: u32, new: Slot) -> Slot {
        let Some(&b) = key.get(byte) else {
            return s;
        };
        let depth = 8 * byte as u32 + 8;
        let b = usize::from(b);
        if len <= depth {
            let span = 1usize << (depth - len);
            let first = b & !(span - 1);
            self.edit(s, byte, first, first + span, Op::Cover { len, new })
        } else {
            let op = Op::Descend {
                byte: byte + 1,
                key,
                len,
                new,
            };
            self.edit(s, byte, b, b + 1, op)
        }
    }

    /// Applies `op` to slots `first..end` of the node below `s` (a new one if `s` is a
    /// leaf: all its slots start as that leaf) and returns the slot that now refers to it.
    /// `byte` indexes the key byte that selects a slot of that node. A wide node is
    /// edited as its two 8-bit levels, which become one wide node again afterwards if
    /// they still fit in one.
    fn edit(&mut self, s: Slot, byte: usize, first: usize, end: usize, op: Op<'_, N>) -> Slot {
        let s = if is_wide(s) { self.split_wide(s) } else { s };
        let r = self.edit_node(s, byte, first, end, op);
        if Self::wide_at(byte) {
            self.join_wide(r)
        } else {
            r
        }
    }

    /// [`Self::edit`] on an 8-bit node (or a leaf).
    fn edit_node(&mut self, s: Slot, byte: usize, first: usize, end: usize, op: Op<'_, N>) -> Slot {
        if s & CHILD != 0 && (s & KIND) >> KIND_SHIFT == DENSE {
            let i = (s & INDEX) as usize;
            for b in first..end {
                let Some(&v) = self.nodes.dense.items.get(i).and_then(|d| d.slots.get(b)) else {
                    return s;
                };
                let w = self.apply(v, byte, op);
                if w != v {
                    self.nodes.set_dense(i, b, w);
                }
            }
            return self.nodes.finish_dense(i);
        }
        let (mut list, old) = if s & CHILD == 0 {
            (RunList::uniform(s), None)
        } else {
            match self.nodes.list(s) {
                Some(list) => (list, Some(s)),
                None => return s,
            }
        };
        let a = list.split(first);
        let e = list.split(end);
        for k in a..e {
            list.value[k] = self.apply(list.value[k], byte, op);
        }
        list.merge();
        self.nodes.store_list(old, &list)
    }

    /// Applies `op` to slot `v` of a node indexed by key byte `byte`.
    fn apply(&mut self, v: Slot, byte: usize, op: Op<'_, N>) -> Slot {
        match op {
            Op::Cover { len, new } => self.cover(v, byte + 1, len, new),
            Op::Descend {
                byte,
                key,
                len,
                new,
            } => self.descend(v, byte, key, len, new),
        }
    }

    /// Replaces wide node `s` by its two 8-bit levels: a node whose slots are the wide
    /// node's values or nodes of the runs inside them. Returns the top node's slot.
    fn split_wide(&mut self, s: Slot) -> Slot {
        let Some(runs) = self.nodes.wide_runs(s) else {
            return s;
        };
        self.nodes.release(s);
        // Each block of 256 indices starts as the run holding its first index...
        let mut top = [EMPTY; 256];
        for (k, &(start, v)) in runs.iter().enumerate() {
            let end = runs.get(k + 1).map_or(1 << 16, |r| r.0);
            let blocks = ((start + 255) >> 8) as usize..((end + 255) >> 8) as usize;
            if let Some(blocks) = top.get_mut(blocks) {
                blocks.fill(v);
            }
        }
        // ...and a block in which runs start becomes a node of those runs.
        let mut k = 0;
        while let Some(&(start, _)) = runs.get(k) {
            if start & 0xff == 0 {
                k += 1;
                continue;
            }
            let block = start & !0xff;
            let Some(slot) = top.get_mut((start >> 8) as usize) else {
                break;
            };
            let mut list = RunList::uniform(*slot);
            while let Some(&(start, v)) = runs.get(k).filter(|r| r.0 < block + 256) {
                list.push((start - block) as usize, v);
                k += 1;
            }
            *slot = self.nodes.store_list(None, &list);
        }
        self.nodes.store_slots(&top)
    }

    /// Replaces the 8-bit node `r` and its 8-bit children by one wide node if it has
    /// children (else a wide node saves no read) and their slots form at most
    /// [`MAX_WIDE`] runs over the 16 bits; else returns `r`.
    fn join_wide(&mut self, r: Slot) -> Slot {
        if r & CHILD == 0 || (r & KIND) >> KIND_SHIFT == DENSE || is_wide(r) {
            return r;
        }
        let Some(top) = self.nodes.list(r) else {
            return r;
        };
        if !top.value[..top.n.min(EDIT_RUNS)]
            .iter()
            .any(|v| v & CHILD != 0)
        {
            return r;
        }
        let mut runs: WideRuns = Vec::with_capacity(MAX_WIDE + 1);
        let mut push = |start: u32, v: Slot| {
            if runs.last().map(|x| x.1) != Some(v) {
                runs.push((start, v));
            }
            runs.len() <= MAX_WIDE
        };
        for k in 0..top.n.min(EDIT_RUNS) {
            let start = u32::from(top.start[k]);
            let end = top.start.get(k + 1).filter(|_| k + 1 < top.n);
            let end = end.map_or(256, |&e| u32::from(e));
            let v = top.value[k];
            if v & CHILD == 0 {
                if !push(start << 8, v) {
                    return r;
                }
                continue;
            }
            // A child of an 8-bit node at an even byte is an 8-bit node (never wide).
            let Some(child) = self.nodes.list(v) else {
                return r;
            };
            for hi in start..end {
                for c in 0..child.n.min(EDIT_RUNS) {
                    if !push((hi << 8) | u32::from(child.start[c]), child.value[c]) {
                        return r;
                    }
                }
            }
        }
        for k in 0..top.n.min(EDIT_RUNS) {
            let v = top.value[k];
            if v & CHILD != 0 {
                self.nodes.release(v);
            }
        }
        self.nodes.release(r);
        self.nodes.store_wide(&runs)
    }

    /// Every route that some address still matches, as (key with host bits clear,
    /// length, hop index), sorted and without repeats. A route all of whose addresses
    /// match longer routes leaves no slot and is not listed: only the caller's route maps
    /// know it.
    pub(crate) fn visible(&self) -> Vec<([u8; N], u8, u32)> {
        let mut out = Vec::new();
        for (i, &s) in self.root.iter().enumerate() {
            let mut key = [0u8; N];
            for (k, b) in key.iter_mut().zip((i as u16).to_be_bytes()) {
                *k = b;
            }
            self.walk(s, key, 2, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Adds the routes of slot `s`, whose block starts at `key`, to `out`; `byte` is the
    /// key byte a node below `s` is indexed by.
    fn walk(&self, s: Slot, key: [u8; N], byte: usize, out: &mut Vec<([u8; N], u8, u32)>) {
        if s & CHILD == 0 {
            if let Some((len, hop)) = leaf_parts(s) {
                let route = (crate::routes::mask(key, len), len, hop);
                if out.last() != Some(&route) {
                    out.push(route);
                }
            }
            return;
        }
        if let Some(runs) = self.nodes.wide_runs(s) {
            self.walk_wide(&runs, key, byte, out);
            return;
        }
        let i = (s & INDEX) as usize;
        let slots = if (s & KIND) >> KIND_SHIFT == DENSE {
            match self.nodes.dense.items.get(i) {
                Some(n) => n.slots,
                None => return,
            }
        } else {
            match self.nodes.list(s) {
                Some(list) => list.expand(),
                None => return,
            }
        };
        for (b, &child) in slots.iter().enumerate() {
            let mut k = key;
            if let Some(x) = k.get_mut(byte) {
                *x = b as u8;
            }
            self.walk(child, k, byte + 1, out);
        }
    }

    /// [`Self::walk`] over a wide node's runs, indexed by key bytes `byte` and `byte + 1`:
    /// a child takes one index; a leaf's run is walked once per block of its route
    /// length, since neighbouring routes of one length and next hop share a run.
    fn walk_wide(
        &self,
        runs: &[(u32, Slot)],
        key: [u8; N],
        byte: usize,
        out: &mut Vec<([u8; N], u8, u32)>,
    ) {
        let set = |mut k: [u8; N], x: u32| {
            for (j, b) in (x as u16).to_be_bytes().into_iter().enumerate() {
                if let Some(kb) = k.get_mut(byte + j) {
                    *kb = b;
                }
            }
            k
        };
        for (k, &(start, v)) in runs.iter().enumerate() {
            let end = runs.get(k + 1).map_or(1 << 16, |r| r.0);
            if v & CHILD != 0 {
                self.walk(v, set(key, start), byte + 2, out);
                continue;
            }
            let Some((len, _)) = leaf_parts(v) else {
                continue;
            };
            // Indices per block of a route of this length (all 65536 if it is shorter
            // than the node's first bit).
            let bits = (8 * byte as u32 + 16)
                .saturating_sub(u32::from(len))
                .min(16);
            let step = 1u32 << bits;
            let mut x = start & !(step - 1);
            while x < end {
                self.walk(v, set(key, x.max(start)), byte + 2, out);
                x += step;
            }
        }
    }

    pub(crate) fn size(&self) -> TrieSize {
        let n = &self.nodes;
        TrieSize {
            dense: n.dense.live(),
            runs: n.runs6.live()
                + n.runs12.live()
                + n.runs24.live()
                + n.runs48.live()
                + n.wide8.live()
                + n.wide24.live()
                + n.wide48.live(),
            bytes: std::mem::size_of_val(&*self.root)
                + n.dense.bytes()
                + n.dense_runs.capacity() * 2
                + n.runs6.bytes()
                + n.runs12.bytes()
                + n.runs24.bytes()
                + n.runs48.bytes()
                + n.wide8.bytes()
                + n.wide24.bytes()
                + n.wide48.bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Number of runs of equal slots.
    fn runs(slots: &[Slot; 256]) -> usize {
        1 + slots.windows(2).filter(|p| p[0] != p[1]).count()
    }

    /// Slot layouts with `n` runs: spread evenly, then with the last run being slot 255
    /// alone, and with the first being slot 0 alone.
    fn layouts(n: usize) -> Vec<[Slot; 256]> {
        let mut even = [0; 256];
        for (b, x) in even.iter_mut().enumerate() {
            *x = (b * n / 256) as Slot + 1;
        }
        let mut out = vec![even];
        if n >= 2 {
            let mut t = [1; 256];
            for (b, x) in t.iter_mut().enumerate().skip(1) {
                *x = (((b - 1) * (n - 1)) / 255) as Slot + 2;
            }
            out.push(t);
            let mut u = [9; 256];
            for (b, x) in u.iter_mut().enumerate().take(255) {
                *x = ((b * (n - 1)) / 255) as Slot + 2;
            }
            out.push(u);
        }
        out.into_iter().filter(|s| runs(s) == n).collect()
    }

    #[test]
    fn run_nodes_round_trip_every_size_and_layout() {
        assert_eq!(std::mem::size_of::<Runs6>(), 32);
        assert_eq!(std::mem::size_of::<Runs12>(), 64);
        assert_eq!(std::mem::size_of::<Runs24>(), 128);
        assert_eq!(std::mem::size_of::<Runs48>(), 256);
        for n in 1..=MAX_RUNS {
            let cases = layouts(n);
            assert!(!cases.is_empty(), "{n} runs");
            for slots in &cases {
                let list = RunList::from_slots(slots).expect("at most MAX_RUNS");
                assert_eq!(list.n, n);
                assert_eq!(&list.expand(), slots);
                let check = |get: &dyn Fn(u8) -> Slot, back: RunList| {
                    for b in 0..=255u8 {
                        assert_eq!(get(b), slots[usize::from(b)], "{n} runs, slot {b}");
                    }
                    assert_eq!(back.n, n);
                    assert_eq!(&back.expand(), slots);
                };
                if n <= 6 {
                    let node = Runs6::from_list(&list);
                    check(&|b| node.get(b), node.runs());
                }
                if n <= 12 {
                    let node = Runs12::from_list(&list);
                    check(&|b| node.get(b), node.runs());
                }
                if n <= 24 {
                    let node = Runs24::from_list(&list);
                    check(&|b| node.get(b), node.runs());
                }
                let node = Runs48::from_list(&list);
                check(&|b| node.get(b), node.runs());
            }
        }
        let mut many = [0; 256];
        for (b, x) in many.iter_mut().enumerate() {
            *x = (b % 50) as Slot;
        }
        assert!(RunList::from_slots(&many).is_none());
    }

    #[test]
    fn byte_counting_matches_a_loop() {
        let words = [0u64, u64::MAX, 0x8000_7f80_ff01_0080, 0x0102_0304_fefd_7f81];
        for w in words {
            for c in 0..=255u8 {
                let want = w.to_le_bytes().iter().filter(|&&x| x >= c).count();
                assert_eq!(count_flags(bytes_at_least(w, c)), want, "{w:#x} >= {c}");
            }
        }
    }

    #[test]
    fn leaves_order_by_length_and_round_trip() {
        let l = leaf(24, 5);
        assert_eq!(leaf_parts(l), Some((24, 5)));
        let top = MAX_HOPS as u32 - 1;
        assert_eq!(leaf_parts(leaf(128, top)), Some((128, top)));
        assert_eq!(leaf_parts(leaf(0, 0)), Some((0, 0)));
        assert_eq!(leaf_parts(EMPTY), None);
        assert!(leaf(0, 0) != EMPTY && leaf(0, 0) & CHILD == 0);
    }

    #[test]
    fn nodes_change_kind_and_collapse_when_their_routes_go() {
        let mut t = Trie::<4>::default();
        let a = leaf(8, 1);
        t.paint(&[10, 0, 0, 0], 8, a);
        t.paint(&[10, 1, 2, 0], 24, leaf(24, 2));
        t.paint(&[10, 1, 2, 128], 25, leaf(25, 3));
        assert_eq!((t.size().runs, t.size().dense), (2, 0));
        assert_eq!(t.lookup(&[10, 1, 2, 200]), leaf(25, 3));
        assert_eq!(t.lookup(&[10, 1, 2, 1]), leaf(24, 2));
        assert_eq!(t.lookup(&[10, 1, 3, 1]), a);
        // Every other /24 of 10.1/16: 128 runs, a dense node; then back to a run list.
        for b in (4..=254u8).step_by(2) {
            t.paint(&[10, 1, b, 0], 24, leaf(24, 4));
        }
        assert_eq!((t.size().runs, t.size().dense), (1, 1));
        assert_eq!(t.lookup(&[10, 1, 200, 1]), leaf(24, 4));
        assert_eq!(t.lookup(&[10, 1, 201, 1]), a);
        for b in (4..=254u8).step_by(2) {
            t.paint(&[10, 1, b, 0], 24, a);
        }
        assert_eq!((t.size().runs, t.size().dense), (2, 0));
        assert_eq!(t.nodes.dense.items.capacity(), 0, "dense arena given back");
        // Withdraw the /25 (falls back to the /24), then the /24 (falls back to the /8).
        t.paint(&[10, 1, 2, 128], 25, leaf(24, 2));
        assert_eq!(t.size().runs, 1);
        t.paint(&[10, 1, 2, 0], 24, a);
        assert_eq!(t.size().runs, 0);
        assert_eq!(t.lookup(&[10, 1, 2, 200]), a);
        assert_eq!(
            t.nodes.runs6.items.capacity(),
            0,
            "run-list arena given back"
        );
    }

    #[test]
    fn lane_counting_matches_a_loop() {
        let words = [0u64, u64::MAX, 0x8000_7fff_ffff_0001, 0x0102_fffe_8001_7ffe];
        for w in words {
            let lanes = [
                w as u16,
                (w >> 16) as u16,
                (w >> 32) as u16,
                (w >> 48) as u16,
            ];
            for c in [0u16, 1, 2, 0x7ffe, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff] {
                let want = lanes.iter().filter(|&&x| x >= c).count();
                assert_eq!(count_lanes(lanes_at_least(w, c)), want, "{w:#x} >= {c:#x}");
            }
        }
    }

    /// Wide layouts with `n` runs: spread evenly, then with the last run being index
    /// 0xffff alone, and with the first being index 0 alone.
    fn wide_layouts(n: u32) -> Vec<WideRuns> {
        let even: WideRuns = (0..n).map(|k| (k * 65536 / n, k + 1)).collect();
        let mut out = vec![even];
        if n >= 2 {
            let mut last: WideRuns = (0..n - 1).map(|k| (k * 65535 / (n - 1), k + 1)).collect();
            last.push((0xffff, n + 7));
            out.push(last);
            let mut first: WideRuns = vec![(0, 99)];
            first.extend((1..n).map(|k| (1 + (k - 1) * 65535 / (n - 1), k + 1)));
            out.push(first);
        }
        out
    }

    #[test]
    fn wide_nodes_round_trip_every_size_and_layout() {
        assert_eq!(std::mem::size_of::<Wide8>(), 48);
        assert_eq!(std::mem::size_of::<Wide24>(), 144);
        assert_eq!(std::mem::size_of::<Wide48>(), 288);
        for n in 1..=MAX_WIDE as u32 {
            for runs in wide_layouts(n) {
                assert_eq!(runs.len(), n as usize);
                let mut want = vec![EMPTY; 65536];
                for (k, &(start, v)) in runs.iter().enumerate() {
                    let end = runs.get(k + 1).map_or(65536, |r| r.0);
                    want[start as usize..end as usize].fill(v);
                }
                let check = |get: &dyn Fn(u16) -> Slot, back: WideRuns| {
                    for k in 0..=u16::MAX {
                        assert_eq!(get(k), want[usize::from(k)], "{n} runs, index {k}");
                    }
                    assert_eq!(back, runs, "{n} runs decode");
                };
                if n <= 8 {
                    let node = Wide8::from_runs(&runs);
                    check(&|k| node.get(k), node.runs());
                }
                if n <= 24 {
                    let node = Wide24::from_runs(&runs);
                    check(&|k| node.get(k), node.runs());
                }
                let node = Wide48::from_runs(&runs);
                check(&|k| node.get(k), node.runs());
            }
        }
    }

    fn v6(groups: [u16; 3]) -> [u8; 16] {
        let mut a = [0u8; 16];
        for (i, g) in groups.iter().enumerate() {
            a[2 * i..2 * i + 2].copy_from_slice(&g.to_be_bytes());
        }
        a
    }

    fn wide_count(t: &Trie<16>) -> usize {
        t.nodes.wide8.live() + t.nodes.wide24.live() + t.nodes.wide48.live()
    }

    #[test]
    fn wide_nodes_form_split_and_go_with_their_routes() {
        let mut t = Trie::<16>::default();
        let base = leaf(32, 1);
        t.paint(&v6([0x2001, 0x0db8, 0]), 32, base);
        // Bytes 2 and 3 of a /16 holding one /32 are one wide node of three runs.
        assert_eq!(
            (wide_count(&t), t.size().runs),
            (1, 1),
            "a /32: one wide node"
        );
        // Two neighbouring /48s through the same next hop share a run of the wide node
        // under the /32 (bytes 4 and 5), and a third one elsewhere.
        let a = leaf(48, 2);
        for g in [0x0010, 0x0011, 0xff00] {
            t.paint(&v6([0x2001, 0x0db8, g]), 48, a);
        }
        assert_eq!(
            wide_count(&t),
            2,
            "bytes 4 and 5 under the /32 are a wide node"
        );
        assert_eq!(t.size().runs, 2);
        assert_eq!(t.lookup(&v6([0x2001, 0x0db8, 0x0011])), a);
        assert_eq!(t.lookup(&v6([0x2001, 0x0db8, 0x0012])), base);
        assert_eq!(t.lookup(&v6([0x2001, 0x0db8, 0xffff])), base);
        assert_eq!(t.lookup(&v6([0x2001, 0x0db9, 0x0011])), EMPTY);
        let mut want: Vec<([u8; 16], u8, u32)> = vec![(v6([0x2001, 0x0db8, 0]), 32, 1)];
        for g in [0x0010, 0x0011, 0xff00] {
            want.push((v6([0x2001, 0x0db8, g]), 48, 2));
        }
        want.sort_unstable();
        assert_eq!(t.visible(), want, "merged runs still list each route");
        // A /64 below a /48: the wide node's child at byte 6.
        let deep = leaf(64, 3);
        let mut k = v6([0x2001, 0x0db8, 0x0010]);
        k[7] = 0x40;
        t.paint(&k, 64, deep);
        assert_eq!(t.lookup(&k), deep);
        let mut k2 = k;
        k2[7] = 0x41;
        assert_eq!(t.lookup(&k2), a);
        assert_eq!(wide_count(&t), 3, "bytes 6 and 7 too");
        // Fifty more /48s spread over the /32: too many runs, back to two 8-bit levels.
        let b = leaf(48, 4);
        let spread: Vec<u16> = (1..=50u16).map(|i| i * 1024 + 7).collect();
        for &g in &spread {
            t.paint(&v6([0x2001, 0x0db8, g]), 48, b);
        }
        assert_eq!(wide_count(&t), 2, "bytes 4 and 5 split into 8-bit levels");
        assert!(t.size().runs > 2);
        assert_eq!(t.lookup(&v6([0x2001, 0x0db8, 1024 + 7])), b);
        assert_eq!(t.lookup(&v6([0x2001, 0x0db8, 1024 + 8])), base);
        assert_eq!(t.lookup(&k), deep);
        // Withdrawn again (repainted with the covering /32): joined into a wide node.
        for &g in &spread {
            t.paint(&v6([0x2001, 0x0db8, g]), 48, base);
        }
        assert_eq!((wide_count(&t), t.size().runs), (3, 3), "joined again");
        assert_eq!(t.lookup(&v6([0x2001, 0x0db8, 1024 + 7])), base);
        assert_eq!(t.lookup(&k), deep);
        assert_eq!(t.lookup(&v6([0x2001, 0x0db8, 0xff00])), a);
        // Covering the whole /16 with a shorter route keeps the longer ones.
        t.paint(&v6([0x2001, 0, 0]), 16, leaf(16, 5));
        assert_eq!(t.lookup(&v6([0x2001, 0x0db8, 0x0011])), a);
        assert_eq!(t.lookup(&v6([0x2001, 0x0db7, 0])), leaf(16, 5));
        // Everything withdrawn: no nodes left, arenas given back.
        t.paint(&v6([0x2001, 0, 0]), 16, EMPTY);
        t.paint(&k, 64, a);
        for g in [0x0010, 0x0011, 0xff00] {
            t.paint(&v6([0x2001, 0x0db8, g]), 48, base);
        }
        t.paint(&v6([0x2001, 0x0db8, 0]), 32, EMPTY);
        assert_eq!(t.lookup(&v6([0x2001, 0x0db8, 0x0011])), EMPTY);
        assert_eq!((wide_count(&t), t.size().runs, t.size().dense), (0, 0, 0));
        assert_eq!(t.nodes.wide8.items.capacity(), 0, "wide arena given back");
        assert!(t.visible().is_empty());
    }

    #[test]
    fn ipv4_never_has_wide_nodes() {
        assert!(!Trie::<4>::wide_at(2));
        assert!(Trie::<16>::wide_at(2) && Trie::<16>::wide_at(14));
        assert!(!Trie::<16>::wide_at(3) && !Trie::<16>::wide_at(15));
    }
}
