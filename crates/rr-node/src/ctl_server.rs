//! The control socket: a unix stream socket, mode 0600, serving only the node's own uid.
//!
//! What it is: accept loop and request handlers. Each connection gets a short-lived
//! thread, reads one [`rr_ctl::Request`] line and answers; `show` requests read shared
//! state directly (tunnel counters, a FIB snapshot), probes go through the control thread.
//!
//! What it is not: authentication beyond the kernel's peer credentials (`SO_PEERCRED`),
//! which are exact for a local socket.

use crate::control::{ControlMsg, ProbeMode, ProbeRequest};
use crate::shared::{NodeError, RouteSource, Shared};
use base64::Engine;
use rr_ctl::{InterfaceStatus, Request, Response, RouteEntry};
use std::io::{BufReader, ErrorKind};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// The longest request line accepted.
const MAX_REQUEST: usize = 4096;

/// The control socket path: the config's `control_socket`, else the per-user default.
pub fn socket_path(configured: Option<&Path>) -> PathBuf {
    match configured {
        Some(p) => p.to_path_buf(),
        None => rr_ctl::default_socket_path(),
    }
}

/// Binds the socket with mode 0600. A stale socket left by a dead node is replaced; a
/// live one is not.
pub fn bind(path: &Path) -> Result<UnixListener, NodeError> {
    let err = |source| NodeError::ControlSocket {
        path: path.to_path_buf(),
        source,
    };
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(NodeError::ControlSocketInUse {
                path: path.to_path_buf(),
            });
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).map_err(err)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
    }
    // Created under a restrictive umask so there is no moment it is open to others.
    // SAFETY: umask only swaps the process's file-creation mask; no memory is involved.
    let old = unsafe { libc::umask(0o177) };
    let listener = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let listener = listener.map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
}

/// Unblocks the accept loop at shutdown.
pub fn wake(path: &Path) {
    let _ = UnixStream::connect(path);
}

/// The uid of the process at the other end of a unix socket.
fn peer_uid(s: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a properly sized and
    // aligned ucred; the fd is a live unix socket owned by `s`.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(cred.uid)
}

pub fn serve(shared: &Arc<Shared>, listener: UnixListener) {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    for conn in listener.incoming() {
        if shared.shutdown.load(Ordering::Relaxed) {
            break;
        }
        let Ok(conn) = conn else { continue };
        let shared = shared.clone();
        let _ = std::thread::Builder::new()
            .name("ctl-conn".into())
            .spawn(move || {
                if let Err(e) = handle(&shared, conn, me) {
                    tracing::debug!(error = %e, "control connection");
                }
            });
    }
}

fn handle(shared: &Shared, conn: UnixStream, me: u32) -> Result<(), rr_ctl::CtlError> {
    let mut w = conn.try_clone()?;
    let uid = peer_uid(&conn);
    if uid != Some(me) {
        let who = uid.map_or("unknown".to_string(), |u| u.to_string());
        return rr_ctl::write_line(
            &mut w,
            &Response::Error {
                message: format!(
                    "permission denied: this node serves uid {me} only, the client is uid {who}"
                ),
            },
        );
    }
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(conn);
    let req: Request = match rr_ctl::read_line(&mut r, MAX_REQUEST) {
        Ok(Some(req)) => req,
        Ok(None) => return Ok(()),
        Err(e) => {
            return rr_ctl::write_line(
                &mut w,
                &Response::Error {
                    message: format!("bad request: {e}"),
                },
            )
        }
    };
    match req {
        Request::ShowInterfaces => rr_ctl::write_line(&mut w, &interfaces(shared)),
        Request::ShowRoutes => rr_ctl::write_line(&mut w, &routes(shared)),
        Request::RouteLookup { addr } => {
            let local =
                (0..shared.tunnels.len().max(1) as u32).any(|s| shared.local.is_local(s, addr));
            let route = shared
                .fib
                .load()
                .lookup(addr)
                .map(|(p, nh)| route_entry(shared, p, nh));
            rr_ctl::write_line(
                &mut w,
                &Response::Lookup {
                    addr: addr.to_string(),
                    route,
                    local,
                },
            )
        }
        Request::Ping {
            addr,
            count,
            interface,
        } => probe(
            shared,
            &mut w,
            addr,
            interface,
            ProbeMode::Ping {
                count: count.clamp(1, 100),
            },
        ),
        Request::Traceroute {
            addr,
            max_hops,
            interface,
        } => probe(
            shared,
            &mut w,
            addr,
            interface,
            ProbeMode::Traceroute {
                max_hops: max_hops.clamp(1, 64),
            },
        ),
    }
}

fn probe(
    shared: &Shared,
    w: &mut UnixStream,
    addr: std::net::IpAddr,
    interface: Option<String>,
    mode: ProbeMode,
) -> Result<(), rr_ctl::CtlError> {
    let scope = match interface {
        None => None,
        Some(name) => match shared.iface_by_name(&name) {
            Some(i) => Some(i),
            None => {
                return rr_ctl::write_line(
                    w,
                    &Response::Error {
                        message: format!("no interface named \"{name}\""),
                    },
                )
            }
        },
    };
    let (tx, rx) = mpsc::channel();
    let _ = shared.control.send(ControlMsg::Probe(ProbeRequest {
        addr,
        scope,
        mode,
        reply: tx,
    }));
    loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(resp) => {
                let last = resp.is_final();
                match rr_ctl::write_line(w, &resp) {
                    Err(rr_ctl::CtlError::Io(e)) if e.kind() == ErrorKind::BrokenPipe => {
                        return Ok(())
                    }
                    r => r?,
                }
                if last {
                    return Ok(());
                }
            }
            Err(_) => {
                return rr_ctl::write_line(
                    w,
                    &Response::Error {
                        message: "the node stopped answering".into(),
                    },
                )
            }
        }
    }
}

fn b64(k: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(k)
}

fn interfaces(shared: &Shared) -> Response {
    let interfaces = shared
        .tunnels
        .iter()
        .map(|t| {
            let st = t.tunnel.lock().unwrap_or_else(|e| e.into_inner()).stats();
            InterfaceStatus {
                name: t.name.clone(),
                index: t.index,
                public_key: b64(&t.public_key),
                listen_port: t.listen_port,
                peer_public_key: b64(&t.peer_public_key),
                endpoint: st.endpoint.map(|e| e.to_string()),
                latest_handshake_secs: st.since_last_handshake.map(|d| d.as_secs()),
                rx_bytes: st.rx_bytes,
                tx_bytes: st.tx_bytes,
                rx_packets: st.rx_packets,
                tx_packets: st.tx_packets,
                persistent_keepalive: t.persistent_keepalive,
                mtu: t.mtu,
                addresses: t.addresses.iter().map(|a| a.to_string()).collect(),
                rx_errors: st.rx_errors,
                tx_errors: st.tx_no_endpoint + t.tx_errors.load(Ordering::Relaxed),
                endpoint_changes: st.endpoint_changes,
            }
        })
        .collect();
    Response::Interfaces {
        interfaces,
        counters: shared.counters.snapshot(),
    }
}

fn route_entry(shared: &Shared, prefix: ipnet::IpNet, nh: rr_fib::NextHop) -> RouteEntry {
    let source = shared
        .route_sources
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&prefix)
        .copied()
        .unwrap_or(RouteSource::Static);
    RouteEntry {
        prefix: prefix.to_string(),
        interface: shared.iface_name(nh.iface),
        gateway: nh.gateway.map(|g| g.to_string()),
        source: source.as_str().to_string(),
    }
}

fn routes(shared: &Shared) -> Response {
    let fib = shared.fib.load();
    Response::Routes {
        routes: fib
            .routes()
            .into_iter()
            .map(|(p, nh)| route_entry(shared, p, nh))
            .collect(),
    }
}
