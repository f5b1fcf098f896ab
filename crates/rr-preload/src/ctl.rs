//! The shim's side of the exec protocol ([`rr_ctl::exec`]): one short connection per
//! operation to the node's control socket.
//!
//! What it is: connect (without the hooks), send one [`rr_ctl::Request::Exec`] line with
//! the descriptors as `SCM_RIGHTS` on the same `sendmsg`, read answer lines. The
//! connection's fd is `CLOEXEC` and closed when the [`Ctl`] is dropped, before the hook
//! that made it returns.
//!
//! What it is not: a long-lived client; nothing here survives an operation.

use crate::sys::{self, Errno};
use rr_ctl::exec::{ExecRequest, ExecResponse};
use rr_ctl::{Request, Response};

/// Longest answer line accepted (resolutions carry address lists).
const MAX_LINE: usize = 64 * 1024;

/// Why an operation got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtlError {
    /// The node is not reachable (or not configured): fall back to the kernel.
    Unreachable,
    /// The node answered something that is not a protocol line, or closed early.
    Protocol,
}

/// One operation's connection.
pub struct Ctl {
    fd: i32,
    buf: Vec<u8>,
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
        let ctl = Ctl {
            fd,
            buf: Vec::new(),
        };
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

    /// Reads the next answer line.
    pub fn answer(&mut self) -> Result<ExecResponse, CtlError> {
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
            let n = sys::sys_read(self.fd, &mut chunk).map_err(|_| CtlError::Protocol)?;
            if n == 0 {
                return Err(CtlError::Protocol);
            }
            self.buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        }
    }
}

/// One operation, one answer.
pub fn ask(op: &ExecRequest, fds: &[i32]) -> Result<ExecResponse, CtlError> {
    Ctl::start(op, fds)?.answer()
}

/// An errno for a failed exchange with the node, where one must be returned.
pub fn errno_of(e: CtlError) -> Errno {
    match e {
        CtlError::Unreachable => libc::ENETUNREACH,
        CtlError::Protocol => libc::EIO,
    }
}
