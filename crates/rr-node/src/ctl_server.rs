//! The control socket: a unix stream socket, mode 0600, serving only the node's own uid.
//!
//! What it is: accept loop and request handlers. Each connection gets a short-lived
//! thread, reads one [`rr_ctl::Request`] line and answers; `show` requests read shared
//! state directly (tunnel counters, a FIB snapshot), probes go through the control thread.
//! The first message of every connection is read with `recvmsg`, so that descriptors
//! (`SCM_RIGHTS`) sent with an `exec` operation are taken (close-on-exec); an `exec`
//! operation is handed with its descriptors and the connection to the control thread,
//! which answers on it (the thread ends at once, so many programs' short operations
//! need no thread each while they wait). Descriptors with any other request are refused.
//!
//! What it is not: authentication beyond the kernel's peer credentials (`SO_PEERCRED`),
//! which are exact for a local socket.

use crate::control::{ControlMsg, ProbeMode, ProbeRequest};
use crate::shared::{NodeError, Shared};
use base64::Engine;
use rr_ctl::{InterfaceStatus, Request, Response, RouteEntry};
use std::io::{ErrorKind, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// The longest request line accepted.
const MAX_REQUEST: usize = 4096;
/// How long a question to the control thread may take (a full table's `show routes`).
const QUERY_WAIT: Duration = Duration::from_secs(30);

/// The control socket path: the config's `control_socket`, else the per-user default.
pub fn socket_path(configured: Option<&Path>) -> PathBuf {
    match configured {
        Some(p) => p.to_path_buf(),
        None => rr_ctl::default_socket_path(),
    }
}

/// Binds the socket with mode 0600 in a directory only this user may enter. A stale
/// socket left by a dead node is replaced; a live one, or any file that is not a
/// socket, is not touched.
pub fn bind(path: &Path) -> Result<UnixListener, NodeError> {
    let err = |source| NodeError::ControlSocket {
        path: path.to_path_buf(),
        source,
    };
    let refuse = |why: &str| err(std::io::Error::other(why.to_string()));
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(refuse("exists and is not a socket; refusing to replace it"));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(NodeError::ControlSocketInUse {
                path: path.to_path_buf(),
            });
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(err)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
        } else if path == rr_ctl::default_socket_path() && dir != std::env::temp_dir() {
            // The per-user default under /tmp: someone else could have made it first.
            let meta = std::fs::metadata(dir).map_err(err)?;
            if meta.uid() != euid() || meta.mode() & 0o077 != 0 {
                return Err(refuse(
                    "its directory is not this user's own with mode 0700; refusing to use it",
                ));
            }
        }
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    // Others could not connect even before this (no write bit under any usual umask),
    // and every connection's uid is checked anyway.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    Ok(listener)
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
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

/// Control connections being read or answered by a thread at once; more are answered
/// "busy". `exec` operations hold a thread only while their line is read.
const MAX_CONNECTIONS: usize = 1024;
/// Stack of a connection's thread (requests are small; answers are built on the heap).
const CONN_STACK: usize = 256 * 1024;

/// Accepts until shutdown (checked every 250 ms), one short-lived thread per connection.
pub fn serve(shared: &Arc<Shared>, listener: UnixListener) {
    let me = euid();
    let active = Arc::new(AtomicUsize::new(0));
    while !shared.shutdown.load(Ordering::Relaxed) {
        let conn = match listener.accept() {
            Ok((conn, _)) => conn,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let mut pfd = libc::pollfd {
                    fd: listener.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for a socket we own.
                unsafe { libc::poll(&mut pfd, 1, 250) };
                continue;
            }
            Err(e) => {
                // Out of descriptors, say: back off instead of spinning.
                tracing::warn!(error = %e, "control socket accept");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let mut w = conn;
            let _ = rr_ctl::write_line(
                &mut w,
                &Response::Error {
                    message: "busy: too many control connections".into(),
                },
            );
            continue;
        }
        let (shared, done) = (shared.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("ctl-conn".into())
            .stack_size(CONN_STACK)
            .spawn(move || {
                if let Err(e) = handle(&shared, conn, me) {
                    tracing::debug!(error = %e, "control connection");
                }
                done.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
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
    let (line, fds) = match read_request(&conn) {
        Ok(Some(r)) => r,
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
    let req: Request = match rr_ctl::decode_request(&line) {
        Ok(req) => req,
        Err(e) => {
            return rr_ctl::write_line(
                &mut w,
                &Response::Error {
                    message: e.to_string(),
                },
            )
        }
    };
    if !fds.is_empty() && !matches!(req, Request::Exec { .. }) {
        return rr_ctl::write_line(
            &mut w,
            &Response::Error {
                message: "descriptors come only with exec operations".into(),
            },
        );
    }
    match req {
        Request::Exec { op } => {
            let call = crate::exec::ExecCall { op, fds, conn };
            if shared.control.send(ControlMsg::Exec(call)).is_err() {
                return rr_ctl::write_line(
                    &mut w,
                    &Response::Error {
                        message: "the node is shutting down".into(),
                    },
                );
            }
            Ok(())
        }
        Request::ShowInterfaces => rr_ctl::write_line(&mut w, &interfaces(shared)),
        Request::ShowBgp { .. } | Request::ShowRoutes { .. } | Request::ShowRoa => {
            let (tx, rx) = mpsc::channel();
            let answer = match shared.control.send(ControlMsg::Query(req, tx)) {
                Ok(()) => rx
                    .recv_timeout(QUERY_WAIT)
                    .unwrap_or_else(|_| Response::Error {
                        message: "the node did not answer in time".into(),
                    }),
                Err(_) => Response::Error {
                    message: "the node is shutting down".into(),
                },
            };
            rr_ctl::write_line(&mut w, &answer)
        }
        Request::Reload => rr_ctl::write_line(&mut w, &crate::shared::reload(shared)),
        Request::RouteLookup { addr } => {
            let local = shared.is_local_anywhere(addr);
            let route = shared
                .fib
                .load()
                .lookup(addr)
                .map(|(p, nh)| Box::new(route_entry(shared, p, nh)));
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

/// Reads one request line: the first message with `recvmsg` (taking the descriptors
/// that came with it), the rest of the line, if any, with plain reads. `Ok(None)`: the
/// client closed without a request.
fn read_request(conn: &UnixStream) -> std::io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_REQUEST + 1];
    let (mut n, fds) = crate::sys::recv_with_fds(conn.as_raw_fd(), &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    while !buf[..n].contains(&b'\n') {
        if n > MAX_REQUEST {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                "control message too long",
            ));
        }
        let mut r = conn;
        let m = r.read(&mut buf[n..])?;
        if m == 0 {
            break;
        }
        n += m;
    }
    let end = buf[..n].iter().position(|&b| b == b'\n').unwrap_or(n);
    if end > MAX_REQUEST {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            "control message too long",
        ));
    }
    buf.truncate(end);
    Ok(Some((buf, fds)))
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

pub(crate) fn interfaces(shared: &Shared) -> Response {
    let interfaces = shared
        .live_tunnels()
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
        counters: shared
            .counters
            .snapshot(shared.local_queue_full.load(Ordering::Relaxed)),
    }
}

fn route_entry(shared: &Shared, prefix: ipnet::IpNet, nh: rr_fib::NextHop) -> RouteEntry {
    // Configured routes are known here; everything else in the FIB came from BGP.
    let sources = shared
        .route_sources
        .read()
        .unwrap_or_else(|e| e.into_inner());
    let source = sources.get(&prefix).map_or("bgp", |s| s.as_str());
    RouteEntry {
        prefix: prefix.to_string(),
        interface: shared.iface_name(nh.iface),
        gateway: nh.gateway.map(|g| g.to_string()),
        source: source.to_string(),
        best: true,
        ..RouteEntry::default()
    }
}
