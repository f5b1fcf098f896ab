//! Process signals: SIGINT/SIGTERM stop the node, SIGHUP reloads its config.
//!
//! What it is: block the signals in every thread (call [`block`] before starting any),
//! then wait for one synchronously with `sigwait` — no handler runs in signal context.
//!
//! What it is not: what a signal does. SIGHUP reloads the config
//! ([`crate::NodeHandle::reload`]); the caller of [`wait`] decides.

/// The signals a node waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
    Hangup,
}

fn set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a sigset_t we own.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        libc::sigaddset(&mut s, libc::SIGINT);
        libc::sigaddset(&mut s, libc::SIGTERM);
        libc::sigaddset(&mut s, libc::SIGHUP);
        s
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and the threads it starts later.
pub fn block() {
    let s = set();
    // SAFETY: pthread_sigmask with a valid set and a null old-set pointer.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &s, std::ptr::null_mut());
    }
}

/// Waits until one of the blocked signals arrives.
pub fn wait() -> Signal {
    let s = set();
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait reads a valid set and writes one int we own.
        let r = unsafe { libc::sigwait(&s, &mut sig) };
        if r == 0 {
            return match sig {
                libc::SIGINT => Signal::Interrupt,
                libc::SIGTERM => Signal::Terminate,
                _ => Signal::Hangup,
            };
        }
    }
}
