//! The per-descriptor state of the shim.
//!
//! What it is: one atomic byte per fd (< [`MAX_FD`]) saying whether the shim cares about
//! it at all, so hooks on other descriptors return to libc after one relaxed load; and a
//! map from fd to [`Entry`] behind a spin lock for the sockets it does care about. The
//! lock is only held for memory operations (never across a system call), and a
//! `pthread_atfork` handler ([`fork_prepare`], [`fork_parent`], [`fork_child`]) takes it
//! around `fork` so a child never inherits it held.
//!
//! What it is not: the owner of any descriptor. The kernel owns them; entries are only
//! notes, copied on `dup` and forgotten on `close`.

use rr_ctl::exec::{SockId, SockKind, SockOpts};
use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// Descriptors at or above this number are never managed (they pass through).
pub const MAX_FD: usize = 65536;

/// What the fast path needs to know about an fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    /// Not a socket of the shim: pass everything through.
    None = 0,
    /// An AF_INET/AF_INET6 kernel socket that may still become a router socket.
    Undecided = 1,
    /// A TCP connection through the router (a `SOCK_STREAM` pair end).
    Stream = 2,
    /// A UDP/ICMP socket through the router (a `SOCK_SEQPACKET` pair end with headers).
    Dgram = 3,
    /// A TCP listener through the router (a `SOCK_SEQPACKET` pair end with records).
    Listener = 4,
}

/// Progress of a TCP connect through the router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conn {
    /// The handshake is under way on the node.
    Pending,
    /// Settled: established, or its failure already reported once.
    Done,
}

/// What a managed socket is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Still the program's kernel socket.
    Undecided,
    Stream {
        id: SockId,
        local: SocketAddr,
        remote: SocketAddr,
        conn: Conn,
    },
    Dgram {
        id: SockId,
        local: SocketAddr,
        remote: Option<SocketAddr>,
    },
    Listener {
        id: SockId,
        local: SocketAddr,
    },
}

/// An `epoll` registration of an undecided socket, replayed on the AF_UNIX end that
/// replaces it (epoll keys registrations by open file, so they do not follow `dup3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpollReg {
    pub epfd: i32,
    pub events: u32,
    pub data: u64,
}

/// Notes on one managed socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// AF_INET6 (else AF_INET).
    pub v6: bool,
    pub kind: SockKind,
    /// The kernel socket is a UDP placeholder for an ICMP socket the kernel refused.
    pub placeholder: bool,
    /// Address given to `bind` (a router address, or a wildcard with the kernel's port).
    pub bound: Option<SocketAddr>,
    /// The kernel socket itself is bound (wildcard binds).
    pub kernel_bound: bool,
    pub opts: SockOpts,
    /// `IP_RECVTTL` / `IPV6_RECVHOPLIMIT` enabled.
    pub recv_ttl: bool,
    /// The program's `epoll` registrations of this fd while [`State::Undecided`].
    pub epoll: Vec<EpollReg>,
    pub state: State,
}

impl Entry {
    /// A fresh kernel socket of this kind.
    pub fn new(v6: bool, kind: SockKind, placeholder: bool) -> Entry {
        Entry {
            v6,
            kind,
            placeholder,
            bound: None,
            kernel_bound: false,
            opts: SockOpts::default(),
            recv_ttl: false,
            epoll: Vec::new(),
            state: State::Undecided,
        }
    }

    /// The fast-path class matching the state.
    pub fn class(&self) -> Class {
        match self.state {
            State::Undecided => Class::Undecided,
            State::Stream { .. } => Class::Stream,
            State::Dgram { .. } => Class::Dgram,
            State::Listener { .. } => Class::Listener,
        }
    }
}

static CLASS: [AtomicU8; MAX_FD] = [const { AtomicU8::new(0) }; MAX_FD];

/// A lock that spins; held only for short memory operations.
pub(crate) struct SpinLock<T> {
    held: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialised by `held` (see `with`).
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        SpinLock {
            held: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub(crate) fn lock(&self) {
        while self
            .held
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
    }

    pub(crate) fn unlock(&self) {
        self.held.store(false, Ordering::Release);
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.lock();
        // SAFETY: `held` is ours until unlock(), so no other reference exists.
        let r = f(unsafe { &mut *self.value.get() });
        self.unlock();
        r
    }
}

static MAP: SpinLock<Option<HashMap<i32, Entry>>> = SpinLock::new(None);

fn slot(fd: i32) -> Option<&'static AtomicU8> {
    usize::try_from(fd).ok().and_then(|i| CLASS.get(i))
}

/// The fast-path class of `fd` (one relaxed load).
pub fn class(fd: i32) -> Class {
    match slot(fd).map_or(0, |s| s.load(Ordering::Relaxed)) {
        1 => Class::Undecided,
        2 => Class::Stream,
        3 => Class::Dgram,
        4 => Class::Listener,
        _ => Class::None,
    }
}

/// True if the shim has notes on `fd`.
pub fn is_ours(fd: i32) -> bool {
    class(fd) != Class::None
}

/// A copy of the notes on `fd`.
pub fn get(fd: i32) -> Option<Entry> {
    if !is_ours(fd) {
        return None;
    }
    MAP.with(|m| m.as_ref().and_then(|m| m.get(&fd).cloned()))
}

/// Records `e` for `fd` (ignored for fds beyond the table). `epoll` registrations are
/// kept only for undecided sockets.
pub fn set(fd: i32, mut e: Entry) {
    let Some(s) = slot(fd) else { return };
    let class = e.class();
    if class != Class::Undecided {
        e.epoll.clear();
    }
    MAP.with(|m| {
        m.get_or_insert_with(HashMap::new).insert(fd, e);
    });
    s.store(class as u8, Ordering::Relaxed);
}

/// Changes the notes on `fd` in place, if any.
pub fn update(fd: i32, f: impl FnOnce(&mut Entry)) {
    let Some(s) = slot(fd) else { return };
    MAP.with(|m| {
        if let Some(e) = m.as_mut().and_then(|m| m.get_mut(&fd)) {
            f(e);
            s.store(e.class() as u8, Ordering::Relaxed);
        }
    });
}

/// Forgets `fd`.
pub fn forget(fd: i32) {
    let Some(s) = slot(fd) else { return };
    if s.swap(0, Ordering::Relaxed) != 0 {
        MAP.with(|m| {
            if let Some(m) = m.as_mut() {
                m.remove(&fd);
            }
        });
    }
}

/// Forgets every fd in `first..=last`.
pub fn forget_range(first: u32, last: u32) {
    let hi = (last as usize).min(MAX_FD - 1);
    let mut any = false;
    for i in (first as usize)..=hi {
        if let Some(s) = CLASS.get(i) {
            any |= s.swap(0, Ordering::Relaxed) != 0;
        }
    }
    if any {
        MAP.with(|m| {
            if let Some(m) = m.as_mut() {
                m.retain(|&fd, _| !(fd as u32 >= first && fd as u32 <= last));
            }
        });
    }
}

/// Copies the notes of `from` to `to` (after the kernel duplicated the descriptor);
/// `to` loses its own notes either way. `epoll` registrations name an fd number, so
/// `to` starts with none.
pub fn copy(from: i32, to: i32) {
    match get(from) {
        Some(mut e) => {
            e.epoll.clear();
            set(to, e)
        }
        None => forget(to),
    }
}

/// `pthread_atfork` prepare handler: hold the lock across `fork`.
pub extern "C" fn fork_prepare() {
    MAP.lock();
}

/// `pthread_atfork` parent handler.
pub extern "C" fn fork_parent() {
    MAP.unlock();
}

/// `pthread_atfork` child handler: the child's copy is consistent; release it.
pub extern "C" fn fork_child() {
    MAP.unlock();
}
