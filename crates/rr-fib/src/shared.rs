//! [`SharedFib`]: the node's one forwarding table, written in batches by the control plane
//! and read by every data-plane thread without locks.
//!
//! What it is: a left-right pair of [`Fib`] copies. Readers `load()` the published copy
//! through `arc-swap` (wait-free). A writer takes the other copy (the spare), waits until
//! the last reader of it has let go — readers hold a snapshot for one batch of packets —
//! replays the changes that made the published copy (the log), applies its own changes
//! while journalling them, publishes it with one swap, and keeps the copy it replaced as
//! the new spare with the journal as its log. A batch therefore costs about twice its own
//! size whatever the table's size (a batch so large that replaying it would cost more
//! than copying the table is caught up by a copy instead). `arc-swap` pays its readers'
//! debts during the swap, so afterwards the spare's `Arc` count is exact and "unique"
//! means "no reader left".
//!
//! What it is not: a queue. Writers serialise on a mutex and each call publishes once;
//! coalescing route changes into batches (every ~10-50 ms during a table load) is the
//! caller's job. A reader that keeps a snapshot for long (a `load_full` kept around) is
//! not waited for beyond [`SPARE_WAIT`]: the writer then copies the published table
//! instead, which is slow on a full table but never blocks anyone.

use crate::{Change, Fib, FibError};
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a writer waits for readers to release the spare copy before copying the
/// published one instead (a full-table copy costs milliseconds to tens of milliseconds).
pub const SPARE_WAIT: Duration = Duration::from_millis(20);

/// A log longer than `REPLAY_MAX_FIXED + routes / REPLAY_MAX_PER_ROUTES` changes is not
/// replayed: the writer copies the published table instead (measured with `rr-bench fib`:
/// a full-table copy costs about as much as replaying 1 change per 100-250 routes).
const REPLAY_MAX_FIXED: usize = 256;
const REPLAY_MAX_PER_ROUTES: usize = 128;

/// The writer's side: the copy not published, and how far it lags the published one.
#[derive(Default)]
struct Writer {
    /// The copy published before the current one (readers may still hold it), or `None`
    /// before the first write and after a write that replaced the table wholesale.
    spare: Option<Arc<Fib>>,
    /// The changes that turn the spare into the published copy.
    log: Vec<Change>,
}

impl Writer {
    /// A private copy equal to the published table.
    fn writable(&mut self, current: &ArcSwap<Fib>) -> Fib {
        let log = std::mem::take(&mut self.log);
        let spare = self.spare.take();
        // Replaying costs a few hundred ns per change (hash maps, trie nodes: cache
        // misses); copying costs the two 256 KiB roots plus tens of bytes per route at
        // memory speed. Past this many changes the copy is the cheaper way to catch up.
        let published = current.load();
        if log.len() > REPLAY_MAX_FIXED + published.len() / REPLAY_MAX_PER_ROUTES {
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
                        // The log was accepted once from this very state: it applies whole.
                        let _ = fib.apply(&log);
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
/// Readers should hold a snapshot only briefly (one batch of packets): a writer waits up
/// to [`SPARE_WAIT`] for the last reader of the previous snapshot before falling back to
/// copying the whole table. Once written to, it holds two copies of the table.
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

    /// The current snapshot as an owned `Arc` (do not keep it long: see the type's docs).
    pub fn load_full(&self) -> Arc<Fib> {
        self.current.load_full()
    }

    /// Applies a batch of changes (`Some` inserts or replaces, `None` removes) and
    /// publishes the result once. See [`Fib::apply`] for the error.
    pub fn apply(&self, changes: &[Change]) -> Result<(), FibError> {
        self.update(|f| f.apply(changes))
    }

    /// Applies `f` to a private copy of the table and publishes the result (unless `f`
    /// changed nothing). Cost: the changes `f` makes plus those of the previous write.
    pub fn update<R>(&self, f: impl FnOnce(&mut Fib) -> R) -> R {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = w.writable(&self.current);
        next.journal = Some(Vec::new());
        let r = f(&mut next);
        match next.journal.take() {
            Some(log) if log.is_empty() => {
                // Unchanged: this copy equals the published one, so it is a spare with
                // nothing to catch up on.
                w.spare = Some(Arc::new(next));
            }
            Some(log) => {
                w.spare = Some(self.current.swap(Arc::new(next)));
                w.log = log;
            }
            None => {
                // `f` replaced the table wholesale: the old copy cannot catch up by replay.
                self.current.store(Arc::new(next));
            }
        }
        r
    }
}
