//! [`SharedFib`]: the node's one forwarding table, written in batches by the control plane
//! and read by every data-plane thread without locks.
//!
//! What it is: the authoritative route maps (one set, the writer's, behind a mutex) and a
//! left-right pair of trie-only [`Fib`] copies. Readers `load()` the published copy
//! through `arc-swap` (wait-free). A writer takes the other copy (the spare), waits until
//! the last reader of it has let go — readers hold a snapshot for one batch of packets —
//! brings it up to date by re-deciding from the current maps every prefix that the
//! previous write touched (`Fib::sync`; replaying the old changes would consult maps that
//! have moved on), applies its own changes to the maps and to this trie while noting the
//! prefixes touched, publishes it with one swap, and keeps the copy it replaced as the
//! new spare, stale in exactly those prefixes. A batch therefore costs about twice its
//! own trie paints and once its map updates, whatever the table's size (a batch so large
//! that syncing it would cost more than copying the trie is caught up by a copy instead).
//! `arc-swap` pays its readers' debts during the swap, so afterwards the spare's `Arc`
//! count is exact and "unique" means "no reader left".
//!
//! What it is not: a queue. Writers serialise on a mutex and each call publishes once;
//! coalescing route changes into batches (every ~10-50 ms during a table load) is the
//! caller's job. A reader that keeps a snapshot for long (a `load_full` kept around) is
//! not waited for beyond [`SPARE_WAIT`]: the writer then copies the published tries
//! instead, which is slow on a full table but never blocks anyone.

use crate::{Change, Fib, FibError, FibStats, NextHop, Table, Touched};
use arc_swap::ArcSwap;
use ipnet::IpNet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a writer waits for readers to release the spare copy before copying the
/// published one instead (a full-table copy costs milliseconds to tens of milliseconds).
pub const SPARE_WAIT: Duration = Duration::from_millis(20);

/// More than `SYNC_MAX_FIXED + routes / SYNC_MAX_PER_ROUTES` stale prefixes are not
/// synced: the writer copies the published tries instead (measured with `rr-bench fib`:
/// on the real table, 10k-change batches load faster by copy than by sync).
const SYNC_MAX_FIXED: usize = 256;
const SYNC_MAX_PER_ROUTES: usize = 128;

/// The writer's side: the route maps, the copy not published, and where it is stale.
#[derive(Default)]
struct Writer {
    /// The authoritative routes; `None` only while a write runs (or after one panicked).
    table: Option<Box<Table>>,
    /// The copy published before the current one (readers may still hold it), or `None`
    /// before the first write and after a write that replaced the table wholesale.
    spare: Option<Arc<Fib>>,
    /// The prefixes in which the spare differs from the published copy.
    pending: Vec<Touched>,
}

impl Writer {
    /// The route maps (rebuilt from the published tries if a panicking write lost them).
    fn table(&mut self, current: &ArcSwap<Fib>) -> &mut Box<Table> {
        self.table
            .get_or_insert_with(|| Box::new(Table::rebuilt(&current.load())))
    }

    /// A private trie-only copy equal to the published table.
    fn writable(&mut self, current: &ArcSwap<Fib>) -> Fib {
        let pending = std::mem::take(&mut self.pending);
        let spare = self.spare.take();
        // Syncing costs a map probe and a trie paint per prefix (cache misses); copying
        // costs the two 256 KiB roots plus the trie nodes at memory speed and page
        // faults. Past this many prefixes the copy is the cheaper way to catch up.
        let published = current.load();
        if pending.len() > SYNC_MAX_FIXED + published.len() / SYNC_MAX_PER_ROUTES {
            // (Dropping the spare first keeps at most two copies alive.)
            drop(spare);
            return Fib::clone(&published);
        }
        drop(published);
        if let Some(mut spare) = spare {
            let deadline = Instant::now() + SPARE_WAIT;
            let mut spins = 0u32;
            loop {
                match Arc::try_unwrap(spare) {
                    Ok(mut fib) => {
                        fib.sync(self.table(current), &pending);
                        return fib;
                    }
                    Err(held) => spare = held,
                }
                if Instant::now() >= deadline {
                    break;
                }
                spins += 1;
                if spins < 64 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            // A reader keeps the spare: it frees it when done; we copy instead.
        }
        Fib::clone(&current.load())
    }
}

/// The node's one forwarding table: written by the control plane, read by every data-plane
/// thread without locks. Readers [`load`](Self::load) a snapshot; writers
/// [`apply`](Self::apply) a batch of changes or [`update`](Self::update) the table in a
/// closure, and each call publishes atomically once.
///
/// Snapshots are trie-only [`Fib`]s: lookups, `len` and `stats` are theirs, while the
/// authoritative route list and exact-prefix queries are [`routes`](Self::routes) and
/// [`get`](Self::get) here (they take the writers' lock).
///
/// Readers should hold a snapshot only briefly (one batch of packets): a writer waits up
/// to [`SPARE_WAIT`] for the last reader of the previous snapshot before falling back to
/// copying the whole trie. Once written to, it holds two tries and one set of route maps.
#[derive(Clone, Default)]
pub struct SharedFib {
    current: Arc<ArcSwap<Fib>>,
    /// Serialises writers; readers never take it.
    writer: Arc<Mutex<Writer>>,
}

impl std::fmt::Debug for SharedFib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedFib")
            .field(&*self.current.load())
            .finish()
    }
}

impl SharedFib {
    /// A shared table starting as `fib`. Its route maps move to the writer's side (a
    /// trie-only `fib`, such as a copy of another `SharedFib`'s snapshot, has them
    /// rebuilt from its trie: routes hidden under longer ones everywhere are lost).
    pub fn new(mut fib: Fib) -> Self {
        let table = fib.take_table();
        fib.journal = None;
        SharedFib {
            current: Arc::new(ArcSwap::from_pointee(fib)),
            writer: Arc::new(Mutex::new(Writer {
                table: Some(table),
                spare: None,
                pending: Vec::new(),
            })),
        }
    }

    /// The current snapshot; cheap, wait-free, and never blocks a writer.
    pub fn load(&self) -> arc_swap::Guard<Arc<Fib>> {
        self.current.load()
    }

    /// The current snapshot as an owned `Arc` (do not keep it long: see the type's docs).
    pub fn load_full(&self) -> Arc<Fib> {
        self.current.load_full()
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// All routes, IPv4 first, each family sorted by prefix: the authoritative list from
    /// the writer's route maps (waits for a write in progress).
    pub fn routes(&self) -> Vec<(IpNet, NextHop)> {
        self.writer().table(&self.current).routes()
    }

    /// The route for exactly `prefix` (host bits ignored), if installed, from the
    /// writer's route maps (waits for a write in progress).
    pub fn get(&self, prefix: &IpNet) -> Option<NextHop> {
        self.writer().table(&self.current).get(prefix)
    }

    /// Sizes of the published trie and of the route maps: what one standalone [`Fib`]
    /// of this table would report. Once written to, a second trie of about the same
    /// size exists beside them (the spare).
    pub fn stats(&self) -> FibStats {
        let mut s = self.load().stats();
        let (m4, m6, mh) = self.writer().table(&self.current).bytes();
        s.v4.map_bytes = m4;
        s.v6.map_bytes = m6;
        s.next_hop_bytes += mh;
        s
    }

    /// Applies a batch of changes (`Some` inserts or replaces, `None` removes) and
    /// publishes the result once. See [`Fib::apply`] for the error.
    pub fn apply(&self, changes: &[Change]) -> Result<(), FibError> {
        self.update(|f| f.apply(changes))
    }

    /// Applies `f` to a private copy of the table and publishes the result (unless `f`
    /// changed nothing). Cost: the changes `f` makes plus those of the previous write.
    pub fn update<R>(&self, f: impl FnOnce(&mut Fib) -> R) -> R {
        let mut w = self.writer();
        let mut next = w.writable(&self.current);
        w.table(&self.current);
        next.table = w.table.take();
        next.journal = Some(Vec::new());
        let r = f(&mut next);
        let journal = next.journal.take();
        match (next.table.take(), journal) {
            (Some(table), Some(log)) => {
                w.table = Some(table);
                if log.is_empty() {
                    // Unchanged: this copy equals the published one, so it is a spare
                    // with nothing to catch up on.
                    w.spare = Some(Arc::new(next));
                } else {
                    w.spare = Some(self.current.swap(Arc::new(next)));
                    w.pending = log;
                }
            }
            (table, _) => {
                // `f` replaced the table wholesale: the old copy cannot catch up by sync.
                w.table = Some(table.unwrap_or_else(|| Box::new(Table::rebuilt(&next))));
                self.current.store(Arc::new(next));
            }
        }
        r
    }
}
