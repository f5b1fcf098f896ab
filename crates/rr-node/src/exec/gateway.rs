//! `[[forward]]` and `[[expose]]` gateways: fixed port relays between the host and the
//! router's network, for programs that cannot run under `exec` (Go, static binaries)
//! and for services on the host that DN42 should reach.
//!
//! - forward TCP: a host listener; each connection → a stack connection to `connect`.
//! - forward UDP: a host socket; each client address → a stack binding (a flow) that
//!   sends to `connect`; its replies go back to that client.
//! - expose TCP: a stack listener on a router address (or wildcard); each connection →
//!   a non-blocking host connection to `connect`.
//! - expose UDP: a stack binding; each remote address → a connected host socket (a
//!   flow entry of its own, registered in epoll); its replies go back from the binding.
//!
//! UDP flows idle for [`FLOW_IDLE`] are closed. Host sockets are read one
//! [`super::Budget`] per pass; at [`super::MAX_RELAYS`] new connections wait in the
//! kernel's or the stack's backlog and new expose flows are not made. What it is not: a proxy protocol (no
//! PROXY header; the far side sees the node's / the host's address).

use super::relay::StreamRelay;
use super::{udp_sent, Budget, Ctx, Entry, Kind, RELAY_TCP_BUFFERS};
use crate::sys::{self, Ready};
use crate::NodeError;
use rr_config::{Config, GatewayConfig, GatewayProtocol};
use rr_stack::{Stack, TcpHandle, UdpHandle};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// UDP flows without traffic for this long are closed.
pub(crate) const FLOW_IDLE: Duration = Duration::from_secs(60);

/// A relay for a kernel TCP socket (`connecting`: a non-blocking connect under way).
fn new_kernel_relay(fd: OwnedFd, tcp: TcpHandle, connecting: bool) -> StreamRelay {
    StreamRelay::new(fd, tcp, None, true, connecting)
}

/// An expose-UDP flow's host socket, shared by the gateway (sends) and the flow's
/// entry (receives), with the time of its latest datagram either way.
pub(crate) struct FlowSock {
    sock: UdpSocket,
    last: std::sync::Mutex<Instant>,
}

impl FlowSock {
    fn touch(&self, now: Instant) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    fn idle(&self, now: Instant) -> bool {
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        now.duration_since(last) >= FLOW_IDLE
    }
}

/// One gateway (or one expose-UDP flow).
pub(crate) enum Gateway {
    ForwardTcp {
        name: String,
        listener: TcpListener,
        connect: SocketAddr,
        readable: bool,
    },
    ForwardUdp {
        name: String,
        sock: UdpSocket,
        connect: SocketAddr,
        readable: bool,
        flows: HashMap<SocketAddr, (UdpHandle, Instant)>,
    },
    ExposeTcp {
        listener: TcpHandle,
        connect: SocketAddr,
    },
    ExposeUdp {
        binding: UdpHandle,
        connect: SocketAddr,
        /// Remote → the flow's host socket.
        flows: HashMap<SocketAddr, Arc<FlowSock>>,
    },
    /// An expose-UDP flow's host socket: its replies go out of `binding` to `remote`.
    ExposeFlow {
        sock: Arc<FlowSock>,
        binding: UdpHandle,
        remote: SocketAddr,
        readable: bool,
    },
}

fn bind_err(g: &GatewayConfig, source: std::io::Error) -> NodeError {
    NodeError::Gateway {
        name: g.name.clone(),
        listen: g.listen,
        source,
    }
}

/// Binds every configured gateway; the first failure names its gateway.
pub(crate) fn start(config: &Config, stack: &mut Stack) -> Result<Vec<Gateway>, NodeError> {
    let mut out = Vec::new();
    for g in &config.forwards {
        out.push(match g.protocol {
            GatewayProtocol::Tcp => {
                let l = TcpListener::bind(g.listen).map_err(|e| bind_err(g, e))?;
                l.set_nonblocking(true).map_err(|e| bind_err(g, e))?;
                Gateway::ForwardTcp {
                    name: g.name.clone(),
                    listener: l,
                    connect: g.connect,
                    readable: true,
                }
            }
            GatewayProtocol::Udp => {
                let s = UdpSocket::bind(g.listen).map_err(|e| bind_err(g, e))?;
                s.set_nonblocking(true).map_err(|e| bind_err(g, e))?;
                Gateway::ForwardUdp {
                    name: g.name.clone(),
                    sock: s,
                    connect: g.connect,
                    readable: true,
                    flows: HashMap::new(),
                }
            }
        });
    }
    for g in &config.exposes {
        let stack_err = |e: rr_stack::StackError| bind_err(g, std::io::Error::other(e.to_string()));
        out.push(match g.protocol {
            GatewayProtocol::Tcp => Gateway::ExposeTcp {
                listener: stack
                    .tcp_listen_with(g.listen, None, RELAY_TCP_BUFFERS)
                    .map_err(stack_err)?,
                connect: g.connect,
            },
            GatewayProtocol::Udp => Gateway::ExposeUdp {
                binding: stack.udp_bind(g.listen, None).map_err(stack_err)?,
                connect: g.connect,
                flows: HashMap::new(),
            },
        });
    }
    Ok(out)
}

impl Gateway {
    /// The host descriptor to register, if any.
    pub fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        match self {
            Gateway::ForwardTcp { listener, .. } => Some(listener.as_fd()),
            Gateway::ForwardUdp { sock, .. } => Some(sock.as_fd()),
            Gateway::ExposeFlow { sock, .. } => Some(sock.sock.as_fd()),
            Gateway::ExposeTcp { .. } | Gateway::ExposeUdp { .. } => None,
        }
    }

    pub fn ready(&mut self, ev: &Ready) {
        match self {
            Gateway::ForwardTcp { readable, .. }
            | Gateway::ForwardUdp { readable, .. }
            | Gateway::ExposeFlow { readable, .. } => *readable |= ev.readable,
            Gateway::ExposeTcp { .. } | Gateway::ExposeUdp { .. } => {}
        }
    }

    pub fn service(&mut self, ctx: &mut Ctx<'_>) -> bool {
        match self {
            Gateway::ForwardTcp {
                name,
                listener,
                connect,
                readable,
            } => {
                while *readable && ctx.room() {
                    match sys::accept(listener.as_raw_fd(), true) {
                        Ok((fd, _)) => forward_conn(ctx, name, fd, *connect),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => *readable = false,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => {
                            tracing::warn!(gateway = %name, error = %e, "accept");
                            *readable = false;
                        }
                    }
                }
                true
            }
            Gateway::ForwardUdp {
                name,
                sock,
                connect,
                readable,
                flows,
            } => {
                let mut budget = Budget::new();
                while *readable {
                    if !budget.left() {
                        ctx.more = true;
                        break;
                    }
                    let (n, client) = match sock.recv_from(ctx.buf) {
                        Ok(r) => r,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            *readable = false;
                            break;
                        }
                        Err(_) => continue,
                    };
                    budget.spend(n);
                    let flow = match flows.get_mut(&client) {
                        Some(f) => f,
                        None => {
                            let any = SocketAddr::new(unspecified(*connect), 0);
                            match ctx.stack.udp_bind(any, None) {
                                Ok(h) => flows.entry(client).or_insert((h, ctx.now)),
                                Err(e) => {
                                    tracing::debug!(gateway = %name, error = %e, "no flow");
                                    continue;
                                }
                            }
                        }
                    };
                    flow.1 = ctx.now;
                    let data = ctx.buf.get(..n).unwrap_or_default();
                    let r = ctx.stack.udp_send_to(flow.0, data, *connect, None);
                    udp_sent(ctx.shared, r, *connect);
                }
                let now = ctx.now;
                flows.retain(|client, (h, last)| {
                    while let Some((n, from, _)) = ctx.stack.udp_recv_from(*h, ctx.buf) {
                        if from == *connect {
                            *last = now;
                            let _ = sock.send_to(ctx.buf.get(..n).unwrap_or_default(), *client);
                        }
                    }
                    if now.duration_since(*last) >= FLOW_IDLE {
                        ctx.stack.udp_close(*h);
                        false
                    } else {
                        true
                    }
                });
                true
            }
            Gateway::ExposeTcp { listener, connect } => {
                while ctx.room() {
                    let Some(h) = ctx.stack.tcp_accept(*listener) else {
                        break;
                    };
                    expose_conn(ctx, h, *connect);
                }
                true
            }
            Gateway::ExposeUdp {
                binding,
                connect,
                flows,
            } => {
                while let Some((n, from, _)) = ctx.stack.udp_recv_from(*binding, ctx.buf) {
                    let live = flows.get(&from).filter(|s| Arc::strong_count(s) > 1);
                    let s = match live {
                        Some(s) => s.clone(),
                        // A new flow is a relay; at the limit the datagram is dropped.
                        None if !ctx.room() => continue,
                        None => match expose_flow(ctx, *binding, from, *connect) {
                            Ok(s) => {
                                flows.insert(from, s.clone());
                                s
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, %connect, "expose flow");
                                continue;
                            }
                        },
                    };
                    s.touch(ctx.now);
                    let _ = s.sock.send(ctx.buf.get(..n).unwrap_or_default());
                }
                // A flow whose entry expired holds the only reference.
                flows.retain(|_, s| Arc::strong_count(s) > 1);
                true
            }
            Gateway::ExposeFlow {
                sock,
                binding,
                remote,
                readable,
            } => {
                let mut budget = Budget::new();
                while *readable {
                    if !budget.left() {
                        ctx.more = true;
                        break;
                    }
                    match sock.sock.recv(ctx.buf) {
                        Ok(n) => {
                            budget.spend(n);
                            sock.touch(ctx.now);
                            let data = ctx.buf.get(..n).unwrap_or_default();
                            let r = ctx.stack.udp_send_to(*binding, data, *remote, None);
                            udp_sent(ctx.shared, r, *remote);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => *readable = false,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        // ICMP port unreachable from the host service, say: keep the flow.
                        Err(_) => *readable = false,
                    }
                }
                !sock.idle(ctx.now)
            }
        }
    }

    pub fn release(self, stack: &mut Stack) {
        match self {
            Gateway::ForwardUdp { flows, .. } => {
                for (h, _) in flows.values() {
                    stack.udp_close(*h);
                }
            }
            Gateway::ExposeTcp { listener, .. } => stack.tcp_release(listener),
            Gateway::ExposeUdp { binding, .. } => stack.udp_close(binding),
            Gateway::ForwardTcp { .. } | Gateway::ExposeFlow { .. } => {}
        }
    }
}

fn unspecified(like: SocketAddr) -> std::net::IpAddr {
    match like {
        SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// A host connection accepted by a forward gateway → a stack connection.
fn forward_conn(ctx: &mut Ctx<'_>, name: &str, fd: OwnedFd, connect: SocketAddr) {
    let h = match ctx
        .stack
        .tcp_connect_with(ctx.now, connect, None, None, RELAY_TCP_BUFFERS)
    {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(gateway = %name, error = %e, "connect");
            sys::reset_on_close(&fd);
            return;
        }
    };
    relay_kernel_stream(ctx, fd, h, false);
}

/// A stack connection accepted by an expose gateway → a non-blocking host connection.
fn expose_conn(ctx: &mut Ctx<'_>, h: TcpHandle, connect: SocketAddr) {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(connect),
        socket2::Type::STREAM,
        None,
    )
    .and_then(|s| s.set_nonblocking(true).map(|()| s));
    let started = sock.and_then(|s| match s.connect(&connect.into()) {
        Ok(()) => Ok(s),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(s),
        Err(e) => Err(e),
    });
    let fd = match started {
        Ok(s) => OwnedFd::from(s),
        Err(e) => {
            tracing::debug!(error = %e, %connect, "expose connect");
            ctx.stack.tcp_abort(h);
            ctx.stack.tcp_release(h);
            return;
        }
    };
    relay_kernel_stream(ctx, fd, h, true);
}

/// Relays host connection `fd` and stack connection `h` (`connecting`: the host side's
/// connect is still under way); if its descriptor cannot be watched, both go.
fn relay_kernel_stream(ctx: &mut Ctx<'_>, fd: OwnedFd, h: TcpHandle, connecting: bool) {
    let id = ctx.alloc();
    if ctx.register(&fd, id, 0).is_err() {
        ctx.stack.tcp_abort(h);
        ctx.stack.tcp_release(h);
        return;
    }
    ctx.adds.push((
        id,
        Entry {
            sock: None,
            kind: Kind::Stream(new_kernel_relay(fd, h, connecting)),
        },
    ));
}

/// A new expose-UDP flow: a host socket connected to `connect`, its own entry.
fn expose_flow(
    ctx: &mut Ctx<'_>,
    binding: UdpHandle,
    remote: SocketAddr,
    connect: SocketAddr,
) -> std::io::Result<Arc<FlowSock>> {
    let s = UdpSocket::bind(SocketAddr::new(unspecified(connect), 0))?;
    s.connect(connect)?;
    let id = ctx.alloc();
    ctx.register(&s, id, 0)?;
    let s = Arc::new(FlowSock {
        sock: s,
        last: std::sync::Mutex::new(ctx.now),
    });
    ctx.adds.push((
        id,
        Entry {
            sock: None,
            kind: Kind::Gateway(Gateway::ExposeFlow {
                sock: s.clone(),
                binding,
                remote,
                readable: true,
            }),
        },
    ));
    Ok(s)
}
