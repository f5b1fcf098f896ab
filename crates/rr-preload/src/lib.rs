//! `librr_preload.so`: the LD_PRELOAD shim of `rootless-router exec`.
//!
//! What it is: libc-level hooks (`socket`, `connect`, `bind`, `listen`, `accept`,
//! datagram send/receive, socket names and options, `getaddrinfo`...) that hand an
//! unmodified dynamically linked program *real AF_UNIX descriptors* connected to the
//! router for the sockets the router carries, following the protocol in
//! [`rr_ctl::exec`]. Everything else (loopback, the host's own networks, files, pipes)
//! goes to the next libc definition untouched. Without `ROOTLESS_ROUTER_SOCKET` in the
//! environment at load time the shim passes every call through.
//!
//! Layout: [`sys`] holds every raw call (the only module with real `unsafe` work besides
//! the exported entry points in `hooks`); [`table`] is the per-fd notes; [`ctl`] talks to
//! the node; [`routes`] caches its route answers; [`sock`], [`dgram`] and [`names`] are
//! the decisions, in safe code.
//!
//! What it is not: a network stack or a router. It holds no routing logic (the node
//! answers [`rr_ctl::exec::ExecRequest::Route`]), and it cannot reach programs that do
//! not call libc's socket functions: statically linked binaries and Go programs bypass
//! it (that is what `[[forward]]` is for). Setuid/file-capability programs ignore
//! LD_PRELOAD.

mod ctl;
mod dgram;
mod hooks;
mod names;
mod routes;
mod sock;
mod sys;
mod table;

use std::sync::OnceLock;

/// Settings read from the environment once.
struct Config {
    /// The node's control socket path, bytes; `None` = pass-through mode.
    socket: Option<Vec<u8>>,
    /// `ROOTLESS_ROUTER_PRELOAD_DEBUG`: 0 off, 1 decisions, 2 every operation.
    debug: u8,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

fn config() -> &'static Config {
    CONFIG.get_or_init(|| {
        use std::os::unix::ffi::OsStringExt;
        let socket = std::env::var_os(rr_ctl::exec::ENV_SOCKET)
            .map(|s| s.into_vec())
            .filter(|s| !s.is_empty());
        let debug = std::env::var(rr_ctl::exec::ENV_DEBUG)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Config { socket, debug }
    })
}

/// True when the shim is active (the node's socket was given).
pub(crate) fn enabled() -> bool {
    config().socket.is_some()
}

/// The node's control socket path.
pub(crate) fn socket_path() -> Option<&'static [u8]> {
    config().socket.as_deref()
}

/// One line on stderr per decision, when debugging is on.
pub(crate) fn debug(line: impl FnOnce() -> String) {
    if config().debug >= 1 {
        sys::write_stderr(&format!("rr-preload: {}\n", line()));
    }
}

/// One line on stderr per protocol operation, at debug level 2.
pub(crate) fn debug2(line: impl FnOnce() -> String) {
    if config().debug >= 2 {
        sys::write_stderr(&format!("rr-preload: {}\n", line()));
    }
}

/// Runs at load time: reads the environment before the program can change it, makes
/// the fd table and the route cache fork-safe (their locks are never nested, so the
/// order the handlers take them in does not matter), and adopts router sockets inherited
/// across `execve` ([`sock::adopt_inherited`]).
extern "C" fn init() {
    let _ = config();
    // SAFETY: the handlers are plain functions valid for the life of the process.
    unsafe {
        libc::pthread_atfork(
            Some(table::fork_prepare),
            Some(table::fork_parent),
            Some(table::fork_child),
        );
        libc::pthread_atfork(
            Some(routes::fork_prepare),
            Some(routes::fork_parent),
            Some(routes::fork_child),
        );
    }
    sock::adopt_inherited();
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;
