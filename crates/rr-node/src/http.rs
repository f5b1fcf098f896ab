//! The connection handling of the node's small HTTP/1.1 servers (`[metrics]`,
//! `[looking_glass]`).
//!
//! What it is: [`serve`], one thread's `poll` loop over a listener and its connections.
//! A request head may be at most [`MAX_HEAD`] bytes and must arrive within
//! [`READ_TIME`]; at most [`MAX_CONNS`] connections are held, the oldest dropped for a
//! new one; one answer per connection, written within [`WRITE_TIME`], after which what
//! the client still sends is read and dropped for [`LINGER`] (so closing does not reset
//! the connection before the client has read the answer). A client that sends nothing,
//! or sends slowly, holds a slot and nothing else. An answer may come later from
//! another thread ([`Answer::Later`], a looking-glass probe): the connection waits for
//! it without being polled.
//!
//! What it is not: a router of requests or a renderer (the servers' handlers are);
//! TLS, keep-alive or request bodies.

use crate::shared::Shared;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest request head (request line and headers) read.
pub(crate) const MAX_HEAD: usize = 8192;
/// How long a client has to send its request head.
pub(crate) const READ_TIME: Duration = Duration::from_secs(5);
/// How long a client has to take the answer.
pub(crate) const WRITE_TIME: Duration = Duration::from_secs(10);
/// How long what a client sends after its answer is read and dropped.
pub(crate) const LINGER: Duration = Duration::from_secs(2);
/// Connections held at once; a new one drops the oldest.
pub(crate) const MAX_CONNS: usize = 32;

/// What a handler gives a complete request head.
pub(crate) enum Answer {
    /// The whole answer, status line to body.
    Now(Vec<u8>),
    /// The whole answer, from another thread within the given time.
    Later(mpsc::Receiver<Vec<u8>>, Duration),
}

/// One client connection.
struct Conn {
    stream: TcpStream,
    head: Vec<u8>,
    state: ConnState,
    deadline: Instant,
}

enum ConnState {
    /// Reading the request head into `head`.
    Reading,
    /// The answer comes from another thread.
    Waiting(mpsc::Receiver<Vec<u8>>),
    /// Writing the answer; how much of it is written.
    Writing(Vec<u8>, usize),
    /// Answer sent and our side shut: what the client still sends is dropped.
    Draining,
}

/// Serves `listener` until shutdown or `stop` (a reload moved or removed the server),
/// checked at least every 250 ms. `answer` answers a complete request head;
/// `too_large` is the answer to a head longer than [`MAX_HEAD`]; `what` names the
/// server in the log.
pub(crate) fn serve(
    shared: &Shared,
    listener: TcpListener,
    stop: &AtomicBool,
    what: &str,
    mut answer: impl FnMut(&[u8]) -> Answer,
    too_large: impl Fn() -> Vec<u8>,
) {
    let mut conns: Vec<Conn> = Vec::new();
    while !shared.shutdown.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        // Answers from other threads are looked for every 50 ms.
        let waiting = conns
            .iter()
            .any(|c| matches!(c.state, ConnState::Waiting(_)));
        let cap = Duration::from_millis(if waiting { 50 } else { 250 });
        let wait = conns
            .iter()
            .map(|c| c.deadline.saturating_duration_since(now))
            .fold(cap, Duration::min);
        let mut fds = Vec::with_capacity(conns.len() + 1);
        fds.push(libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        fds.extend(conns.iter().map(|c| libc::pollfd {
            fd: c.stream.as_raw_fd(),
            events: match c.state {
                ConnState::Writing(..) => libc::POLLOUT,
                ConnState::Reading | ConnState::Draining => libc::POLLIN,
                ConnState::Waiting(_) => 0,
            },
            revents: 0,
        }));
        // SAFETY: `fds` is a valid array of pollfds for descriptors we own, and its
        // length is what we pass.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                wait.as_millis().min(250) as libc::c_int + 1,
            )
        };
        if n < 0 {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let now = Instant::now();
        // Connections first (their indexes are those of `fds`), then new ones.
        let mut keep = Vec::with_capacity(conns.len());
        for (mut c, pfd) in conns.into_iter().zip(&fds[1..]) {
            let open = match &c.state {
                ConnState::Waiting(rx) => match rx.try_recv() {
                    Ok(out) => {
                        c.state = ConnState::Writing(out, 0);
                        c.deadline = now + WRITE_TIME;
                        step(&mut c, now, &mut answer, &too_large)
                    }
                    Err(mpsc::TryRecvError::Empty) => {
                        pfd.revents & (libc::POLLHUP | libc::POLLERR) == 0
                    }
                    Err(mpsc::TryRecvError::Disconnected) => false,
                },
                _ if pfd.revents != 0 => step(&mut c, now, &mut answer, &too_large),
                _ => true,
            };
            if open && now < c.deadline {
                keep.push(c);
            }
        }
        conns = keep;
        if fds[0].revents != 0 {
            accept_into(&listener, &mut conns, what, |stream| Conn {
                stream,
                head: Vec::new(),
                state: ConnState::Reading,
                deadline: now + READ_TIME,
            });
        }
    }
}

/// Takes every waiting connection into `conns` (made by `new`), dropping the oldest held
/// ones beyond [`MAX_CONNS`]; `what` names the server in the log.
fn accept_into<C>(
    listener: &TcpListener,
    conns: &mut Vec<C>,
    what: &str,
    new: impl Fn(TcpStream) -> C,
) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                if conns.len() >= MAX_CONNS {
                    conns.remove(0);
                }
                conns.push(new(stream));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::ConnectionAborted => {}
            Err(e) => {
                tracing::debug!(error = %e, server = what, "accept");
                // Out of descriptors, say: the listener stays readable, so without a
                // pause the level-triggered poll would spin; the next round tries again.
                std::thread::sleep(Duration::from_millis(100));
                return;
            }
        }
    }
}

/// Reads or writes what the connection is ready for; false when it is done.
fn step(
    c: &mut Conn,
    now: Instant,
    answer: &mut impl FnMut(&[u8]) -> Answer,
    too_large: &impl Fn() -> Vec<u8>,
) -> bool {
    let mut buf = [0u8; 4096];
    let again =
        |e: std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted);
    match &mut c.state {
        ConnState::Waiting(_) => true,
        ConnState::Writing(out, done) => match c.stream.write(&out[*done..]) {
            Ok(n) if n > 0 => {
                *done += n;
                if *done == out.len() {
                    let _ = c.stream.shutdown(std::net::Shutdown::Write);
                    c.state = ConnState::Draining;
                    c.deadline = now + LINGER;
                }
                true
            }
            Ok(_) => false,
            Err(e) => again(e),
        },
        ConnState::Draining => match c.stream.read(&mut buf) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => again(e),
        },
        ConnState::Reading => {
            let n = match c.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(e) => return again(e),
            };
            let room = (MAX_HEAD + 1).saturating_sub(c.head.len());
            c.head.extend_from_slice(&buf[..n.min(room)]);
            let a = match head_end(&c.head) {
                Some(end) => answer(&c.head[..end]),
                None if c.head.len() > MAX_HEAD => Answer::Now(too_large()),
                None => return true,
            };
            c.head = Vec::new();
            match a {
                Answer::Now(out) => {
                    c.state = ConnState::Writing(out, 0);
                    c.deadline = now + WRITE_TIME;
                    // Write at once: most answers fit in the socket buffer.
                    step(c, now, answer, too_large)
                }
                Answer::Later(rx, within) => {
                    c.state = ConnState::Waiting(rx);
                    c.deadline = now + within;
                    true
                }
            }
        }
    }
}

/// The length of a complete request head (through the blank line), if there is one.
pub(crate) fn head_end(head: &[u8]) -> Option<usize> {
    let crlf = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = head.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }
}
