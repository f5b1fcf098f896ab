//! The shim's side of the exec protocol ([`rr_ctl::exec`]): one short connection per
//! operation to the node's control socket.
//!
//! What it is: connect (without the hooks), send one [`rr_ctl::Request::Exec`] line with
//! the descriptors as `SCM_RIGHTS` on the same `sendmsg`, read answer lines. The
//! connection's fd is `CLOEXEC` and closed when the [`Ctl`] is dropped, before the hook
//! that made it returns.
//!
//! No read waits forever: the connection has `SO_RCVTIMEO`/`SO_SNDTIMEO` of
//! [`OP_TIMEOUT_MS`] for ordinary operations, and of the node's own wait plus
//! [`GRACE_MS`] for answers that wait on purpose ([`Ctl::expect_wait`]). A signal
//! during a read is retried until that deadline, except in [`Ctl::answer_interruptible`]
//! (a blocking `connect`), which reports it.
//!
//! What it is not: a long-lived client; nothing here survives an operation.

use crate::sys::{self, Errno};
use rr_ctl::exec::{ExecRequest, ExecResponse};
use rr_ctl::{Request, Response};
use std::time::{Duration, Instant};

/// Longest answer line accepted (resolutions carry address lists).
const MAX_LINE: usize = 64 * 1024;

/// How long an ordinary operation may take the node to answer.
pub const OP_TIMEOUT_MS: u64 = 10_000;

/// Added to the wait of an answer the node delays on purpose (a connect's outcome).
pub const GRACE_MS: u64 = 5_000;

/// Why an operation got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtlError {
    /// The node is not reachable (or not configured): fall back to the kernel.
    Unreachable,
    /// The node answered something that is not a protocol line, or closed early.
    Protocol,
    /// No answer within the timeout.
    Timeout,
    /// A signal arrived while [`Ctl::answer_interruptible`] waited.
    Interrupted,
}

/// One operation's connection.
pub struct Ctl {
    fd: i32,
    buf: Vec<u8>,
    /// Until when reads interrupted by a signal are retried.
    deadline: Instant,
}

impl Drop for Ctl {
    fn drop(&mut self) {
        sys::sys_close(self.fd);
    }
}

impl Ctl {
    /// Connects to the node and sends `op` with `fds`.
    pub fn start(op: &ExecRequest, fds: &[i32]) -> Result<Ctl, CtlError> {
        let path = crate::socket_path().ok_or(CtlError::Unreachable)?;
        let fd = sys::sys_socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)
            .map_err(|_| CtlError::Unreachable)?;
        let mut ctl = Ctl {
            fd,
            buf: Vec::new(),
            deadline: Instant::now(),
        };
        ctl.expect_wait(0, OP_TIMEOUT_MS)
            .map_err(|_| CtlError::Unreachable)?;
        sys::sys_connect_unix(fd, path).map_err(|_| CtlError::Unreachable)?;
        let mut line = serde_json::to_vec(&Request::Exec { op: op.clone() })
            .map_err(|_| CtlError::Protocol)?;
        line.push(b'\n');
        let mut sent = sys::sys_send_with_fds(fd, &line, fds).map_err(|_| CtlError::Unreachable)?;
        while sent < line.len() {
            let rest = line.get(sent..).unwrap_or(&[]);
            sent += sys::sys_send_with_fds(fd, rest, &[]).map_err(|_| CtlError::Protocol)?;
        }
        crate::debug2(|| format!("op {op:?}"));
        Ok(ctl)
    }

    /// Allows the next answers `wait_ms` plus `extra_ms` milliseconds.
    pub fn expect_wait(&mut self, wait_ms: u64, extra_ms: u64) -> Result<(), CtlError> {
        let ms = wait_ms.saturating_add(extra_ms);
        self.deadline = Instant::now() + Duration::from_millis(ms);
        sys::sys_set_timeouts(self.fd, ms).map_err(|_| CtlError::Protocol)
    }

    /// Reads the next answer line.
    pub fn answer(&mut self) -> Result<ExecResponse, CtlError> {
        self.read_answer(false)
    }

    /// Reads the next answer line; a signal during the wait ends it with
    /// [`CtlError::Interrupted`] (the answer is then lost with the connection).
    pub fn answer_interruptible(&mut self) -> Result<ExecResponse, CtlError> {
        self.read_answer(true)
    }

    fn read_answer(&mut self, interruptible: bool) -> Result<ExecResponse, CtlError> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                let resp: Response =
                    serde_json::from_slice(&line).map_err(|_| CtlError::Protocol)?;
                crate::debug2(|| format!("answer {resp:?}"));
                return match resp {
                    Response::Exec { answer } => Ok(answer),
                    Response::Error { message } => Ok(ExecResponse::Failed {
                        errno: libc::EIO,
                        message,
                    }),
                    _ => Err(CtlError::Protocol),
                };
            }
            if self.buf.len() > MAX_LINE {
                return Err(CtlError::Protocol);
            }
            let mut chunk = [0u8; 4096];
            let n = match sys::sys_read(self.fd, &mut chunk) {
                Ok(n) => n,
                Err(libc::EINTR) if interruptible => return Err(CtlError::Interrupted),
                Err(libc::EINTR) if Instant::now() < self.deadline => continue,
                Err(libc::EINTR | libc::EAGAIN) => return Err(CtlError::Timeout),
                Err(_) => return Err(CtlError::Protocol),
            };
            if n == 0 {
                return Err(CtlError::Protocol);
            }
            self.buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        }
    }
}

/// One operation, one answer (within [`OP_TIMEOUT_MS`]).
pub fn ask(op: &ExecRequest, fds: &[i32]) -> Result<ExecResponse, CtlError> {
    Ctl::start(op, fds)?.answer()
}

/// One operation whose answer the node may delay by up to `wait_ms` (a `Status` wait).
pub fn ask_waiting(op: &ExecRequest, wait_ms: u32) -> Result<ExecResponse, CtlError> {
    let mut c = Ctl::start(op, &[])?;
    c.expect_wait(wait_ms.into(), GRACE_MS)?;
    c.answer()
}

/// An errno for a failed exchange with the node, where one must be returned.
pub fn errno_of(e: CtlError) -> Errno {
    match e {
        CtlError::Unreachable => libc::ENETUNREACH,
        CtlError::Protocol => libc::EIO,
        CtlError::Timeout => libc::ETIMEDOUT,
        CtlError::Interrupted => libc::EINTR,
    }
}
