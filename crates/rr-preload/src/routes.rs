//! A per-process cache of the node's [`rr_ctl::exec::ExecRequest::Route`] answers.
//!
//! What it is: address → (mine, expiry) for [`TTL`], at most [`CAPACITY`] entries, the
//! oldest evicted first, so a program that sends many datagrams from undecided sockets
//! to the same destination (a resolver, a UDP client on the host's network) asks the
//! node once per address and [`TTL`], not once per `sendto`. It sits behind the same
//! kind of spin lock as the fd table (memory operations only), taken around `fork` by
//! [`fork_prepare`] / [`fork_parent`] / [`fork_child`].
//!
//! What it is not: routing logic (the node decides), nor always fresh: an answer may be
//! up to [`TTL`] old when the node's routes change.

use crate::table::SpinLock;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long an answer is reused.
pub const TTL: Duration = Duration::from_secs(5);

/// Most answers kept.
pub const CAPACITY: usize = 256;

/// The answers, oldest first (every entry lives [`TTL`], so this is also expiry order).
#[derive(Debug, Default)]
pub struct RouteCache {
    entries: VecDeque<(IpAddr, bool, Instant)>,
}

impl RouteCache {
    pub const fn new() -> RouteCache {
        RouteCache {
            entries: VecDeque::new(),
        }
    }

    /// The cached answer for `ip`, if one is still fresh at `now`.
    pub fn lookup(&mut self, ip: IpAddr, now: Instant) -> Option<bool> {
        while self.entries.front().is_some_and(|&(_, _, exp)| exp <= now) {
            self.entries.pop_front();
        }
        self.entries
            .iter()
            .find(|&&(a, _, _)| a == ip)
            .map(|&(_, mine, _)| mine)
    }

    /// Records the node's answer for `ip` at `now`.
    pub fn insert(&mut self, ip: IpAddr, mine: bool, now: Instant) {
        self.entries.retain(|&(a, _, _)| a != ip);
        while self.entries.len() >= CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back((ip, mine, now + TTL));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

static CACHE: SpinLock<RouteCache> = SpinLock::new(RouteCache::new());

/// The fresh cached answer for `ip`, if any.
pub fn cached(ip: IpAddr) -> Option<bool> {
    let now = Instant::now();
    CACHE.with(|c| c.lookup(ip, now))
}

/// Remembers the node's answer for `ip`.
pub fn remember(ip: IpAddr, mine: bool) {
    let now = Instant::now();
    CACHE.with(|c| c.insert(ip, mine, now));
}

/// `pthread_atfork` prepare handler: hold the lock across `fork`.
pub extern "C" fn fork_prepare() {
    CACHE.lock();
}

/// `pthread_atfork` parent handler.
pub extern "C" fn fork_parent() {
    CACHE.unlock();
}

/// `pthread_atfork` child handler: the child's copy is consistent; release it.
pub extern "C" fn fork_child() {
    CACHE.unlock();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_after_the_ttl() {
        let mut c = RouteCache::new();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "172.20.0.1".parse().unwrap();
        assert_eq!(c.lookup(a, t0), None);
        c.insert(a, false, t0);
        c.insert(b, true, t0 + Duration::from_secs(1));
        assert_eq!(c.lookup(a, t0 + Duration::from_millis(4999)), Some(false));
        assert_eq!(c.lookup(b, t0 + Duration::from_millis(4999)), Some(true));
        assert_eq!(c.lookup(a, t0 + TTL), None);
        assert_eq!(c.lookup(b, t0 + TTL), Some(true));
        assert_eq!(c.len(), 1);
        // A new answer for the same address replaces the old one.
        c.insert(b, false, t0 + TTL);
        assert_eq!(c.lookup(b, t0 + TTL), Some(false));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn the_oldest_answer_goes_when_full() {
        let mut c = RouteCache::new();
        let t0 = Instant::now();
        let ip = |i: usize| IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
        for i in 0..=CAPACITY {
            c.insert(ip(i), i % 2 == 0, t0);
        }
        assert_eq!(c.len(), CAPACITY);
        assert_eq!(c.lookup(ip(0), t0), None);
        assert_eq!(c.lookup(ip(1), t0), Some(false));
        assert_eq!(c.lookup(ip(CAPACITY), t0), Some(true));
    }
}
