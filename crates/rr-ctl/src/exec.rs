//! The protocol between the `exec` shim (`rr-preload`) and a running node.
//!
//! # What it is
//!
//! A program under `rootless-router exec` holds *real kernel descriptors*: for every
//! socket that the router carries, the shim makes an AF_UNIX `socketpair`, keeps one end
//! at the program's fd number and hands the other end to the node. The node relays
//! between its end and its own TCP/UDP/ICMP endpoints, so poll/epoll/select/fork/dup
//! work on the program's side without the shim.
//!
//! - **Operations** (open, bind, listen, connect, status, resolve) are one short
//!   connection each to the node's control socket: one [`crate::Request::Exec`] line,
//!   sent with `sendmsg` and the descriptors it hands over as `SCM_RIGHTS` ancillary
//!   data on the same message, then [`crate::Response::Exec`] line(s). The control
//!   socket checks the peer's uid as it does for `ctl`.
//! - **Stream data** (TCP) flows raw over a `SOCK_STREAM` pair: no framing, so the
//!   program's `read`/`write`/`splice`/`sendfile` need no shim. EOF either way is a
//!   FIN (`shutdown(SHUT_WR)` works natively for half-close).
//! - **Datagram data** (UDP, ICMP echo) flows over a `SOCK_SEQPACKET` pair, one record
//!   per datagram: a fixed [`DgramHeader`] ([`DGRAM_HEADER_LEN`] bytes) then the
//!   payload. Program → node: the header names the destination (family 0 = the
//!   connected peer). Node → program: the header names the source and the TTL / hop
//!   limit the packet arrived with. For ICMP the payload is the ICMP message from its
//!   type byte on (what a Linux `SOCK_DGRAM`/`IPPROTO_ICMP` socket carries); the node
//!   fills in identifier and checksum on the way out and gives the program's
//!   identifier back on replies.
//! - **Listeners**: the program's listening fd is the program end of a `SOCK_SEQPACKET`
//!   pair. Each accepted connection arrives on it as one record: an [`Accepted`] JSON
//!   object plus one descriptor in `SCM_RIGHTS` (a `SOCK_STREAM` pair end for a
//!   connection through the router, or a real kernel TCP socket for one accepted from
//!   the host's kernel listener that a wildcard listen hands over). So a readable
//!   listener means "accept will not block", for every poller and every forked worker.
//!
//! Sockets are named by an [`SockId`]: the inode number (`st_ino` from `fstat`) of the
//! program's end. It survives `dup`, `fork` and `execve` (a fresh shim image can ask the
//! node to [`ExecRequest::Describe`] an inherited AF_UNIX descriptor it does not know).
//!
//! # What it is not
//!
//! No routing logic: the node alone decides what goes through it
//! ([`ExecRequest::Route`]; [`ExecResponse::Kernel`] means "not mine, use the kernel").

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The environment variable `exec` sets to the control socket's absolute path; the shim
/// reads it. (The CLI also honours it as the default `--socket`.)
pub const ENV_SOCKET: &str = "ROOTLESS_ROUTER_SOCKET";
/// Set by `exec` to `1` for debugging output of the shim on stderr (`2` = every op).
pub const ENV_DEBUG: &str = "ROOTLESS_ROUTER_PRELOAD_DEBUG";
/// Overrides where `exec` finds the shim library.
pub const ENV_PRELOAD: &str = "ROOTLESS_ROUTER_PRELOAD";
/// File name of the shim library, beside the `rootless-router` binary.
pub const PRELOAD_FILE: &str = "librr_preload.so";
/// Protocol version; [`ExecResponse::Hello`] carries the node's.
pub const PROTOCOL_VERSION: u32 = 1;

/// A socket's name between shim and node: `st_ino` of the program's end.
pub type SockId = u64;

/// What kind of socket a program asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SockKind {
    /// `SOCK_STREAM` (TCP).
    Stream,
    /// `SOCK_DGRAM` (UDP).
    Datagram,
    /// `SOCK_DGRAM` with `IPPROTO_ICMP` / `IPPROTO_ICMPV6`: echo request/reply only.
    Icmp,
}

/// Socket options the node honours on its side, gathered by the shim.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SockOpts {
    /// `IPV6_V6ONLY` on an AF_INET6 socket (a `[::]` binding then takes no IPv4).
    #[serde(default)]
    pub v6only: bool,
    /// `TCP_NODELAY`.
    #[serde(default)]
    pub nodelay: bool,
    /// `SO_KEEPALIVE`.
    #[serde(default)]
    pub keepalive: bool,
    /// `SO_REUSEADDR` / `SO_REUSEPORT`: a second binding of the same address is allowed
    /// when the first one is a listener of the same program (nginx after a reload).
    #[serde(default)]
    pub reuse: bool,
}

/// One operation. Descriptors that go with it travel as `SCM_RIGHTS` on the message
/// that carries the request line; `fds` below says what each one is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecRequest {
    /// Checks the node is there and serves this uid. → [`ExecResponse::Hello`].
    Hello,
    /// Would the node carry traffic to `addr`? → [`ExecResponse::Route`].
    Route { addr: IpAddr },
    /// A TCP connection through the node. `fds[0]` = node end of a `SOCK_STREAM`
    /// pair. `local` is an earlier `bind` (a router address or a wildcard with a port).
    ///
    /// Answers: first [`ExecResponse::Opened`] (the local address chosen; the connect
    /// is under way) or [`ExecResponse::Failed`] / [`ExecResponse::Kernel`]; then, on
    /// the same connection, when the handshake ends: [`ExecResponse::Connected`] or
    /// [`ExecResponse::Failed`] (`ECONNREFUSED`, `ETIMEDOUT`, `EHOSTUNREACH`...). The
    /// shim of a blocking `connect` waits for the second line; a non-blocking one
    /// closes the connection after the first and asks [`ExecRequest::Status`] later.
    Connect {
        id: SockId,
        v6: bool,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        #[serde(default)]
        opts: SockOpts,
    },
    /// A UDP or ICMP socket through the node. `fds[0]` = node end of a `SOCK_SEQPACKET`
    /// pair; `fds[1]`, when present, = the program's original kernel socket, bound to a
    /// wildcard address: the node relays the host's datagrams on it too and sends to
    /// destinations it does not carry through it, so one socket reaches both worlds.
    /// `local` port 0 = the node picks one (the kernel socket's port when there is one).
    /// `remote` = `connect`ed peer (datagrams from others are dropped; header family 0
    /// sends to it). → [`ExecResponse::Opened`].
    Datagram {
        id: SockId,
        kind: SockKind,
        v6: bool,
        local: SocketAddr,
        remote: Option<SocketAddr>,
        #[serde(default)]
        opts: SockOpts,
    },
    /// Changes the connected peer of a datagram socket (`connect` again; `None` =
    /// `AF_UNSPEC` dissolves it). → [`ExecResponse::Opened`].
    Reconnect {
        id: SockId,
        remote: Option<SocketAddr>,
    },
    /// A TCP listener on a router address or a wildcard. `fds[0]` = node end of a
    /// `SOCK_SEQPACKET` pair; `fds[1]`, for a wildcard, = the program's kernel socket,
    /// already listening on the same port (loopback clients keep working).
    /// → [`ExecResponse::Opened`] with the bound address.
    Listen {
        id: SockId,
        v6: bool,
        local: SocketAddr,
        backlog: u32,
        #[serde(default)]
        opts: SockOpts,
    },
    /// The outcome of a connect started with [`ExecRequest::Connect`]: answered at once
    /// if known, else when known or after `wait_ms` with [`ExecResponse::Pending`].
    Status { id: SockId, wait_ms: u32 },
    /// What the node knows of a socket (after `execve` the shim has forgotten).
    /// → [`ExecResponse::Socket`] or [`ExecResponse::Failed`] (`EBADF`: not ours).
    Describe { id: SockId },
    /// The program closed its descriptor of listener or datagram socket `id` (sent after
    /// the `close`). The node releases the socket at once when no other descriptor of the
    /// program end is open anywhere (its end sees the hang-up), so the program can bind
    /// the same port again right away (iperf3 -s re-creates its listener after each
    /// test). → [`ExecResponse::Closed`].
    Close { id: SockId },
    /// Addresses for a name, through the DNS servers on the DN42 side when the name is
    /// in a DN42 domain; → [`ExecResponse::Addresses`], or [`ExecResponse::Kernel`]
    /// when the host's resolver should answer.
    Resolve { name: String, family: Family },
    /// The name of an address (PTR) when the node carries it. → [`ExecResponse::Name`]
    /// or [`ExecResponse::Kernel`].
    ReverseResolve { addr: IpAddr },
}

/// Which address families a resolution wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    Any,
    V4,
    V6,
}

/// Answers to [`ExecRequest`]s.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecResponse {
    Hello {
        version: u32,
    },
    Route {
        mine: bool,
    },
    /// Not the node's: the shim leaves the socket (or the name) to the kernel / libc.
    Kernel,
    /// The socket exists on the node; `local` is its address (`getsockname`).
    Opened {
        local: SocketAddr,
    },
    Connected {
        local: SocketAddr,
        remote: SocketAddr,
    },
    Pending,
    /// `errno` is a Linux errno value the shim returns as is; `message` is for logs.
    Failed {
        errno: i32,
        message: String,
    },
    Socket {
        kind: SockKind,
        v6: bool,
        local: SocketAddr,
        remote: Option<SocketAddr>,
        listening: bool,
    },
    /// Resolution result: the canonical name (the last CNAME target, or the name) and
    /// the addresses, in the resolver's order. An empty list is "no such host"
    /// (`EAI_NONAME`); `Failed` is a server failure or timeout (`EAI_AGAIN`).
    Addresses {
        canonical: String,
        addrs: Vec<IpAddr>,
    },
    Name {
        name: String,
    },
    /// `released`: false when another process still holds the socket (a forked worker).
    Closed {
        released: bool,
    },
}

/// One accepted connection, as the record on a listener's descriptor (plus one fd).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// `st_ino` of the delivered descriptor when it is a stream pair end (the node made
    /// the pair); 0 for a kernel TCP socket (the shim leaves that one to the kernel).
    pub id: SockId,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// Largest [`Accepted`] record.
pub const MAX_ACCEPT_RECORD: usize = 512;

/// Length of [`DgramHeader`] on the wire.
pub const DGRAM_HEADER_LEN: usize = 28;

/// The header in front of every datagram on a `SOCK_SEQPACKET` pair.
///
/// Layout (network byte order): `family: u8` (0 none, 4, 6), `ttl: u8`, `port: u16`,
/// `addr: [u8; 16]` (IPv4 in the first 4 bytes), `scope_id: u32`, `flags: u32` (0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DgramHeader {
    /// The peer: destination going out, source coming in. `None` = the connected peer.
    pub addr: Option<SocketAddr>,
    /// Arrival TTL / hop limit (node → program); 0 = unknown / not set.
    pub ttl: u8,
}

impl DgramHeader {
    pub fn encode(&self) -> [u8; DGRAM_HEADER_LEN] {
        let mut b = [0u8; DGRAM_HEADER_LEN];
        b[1] = self.ttl;
        match self.addr {
            None => {}
            Some(SocketAddr::V4(a)) => {
                b[0] = 4;
                b[2..4].copy_from_slice(&a.port().to_be_bytes());
                b[4..8].copy_from_slice(&a.ip().octets());
            }
            Some(SocketAddr::V6(a)) => {
                b[0] = 6;
                b[2..4].copy_from_slice(&a.port().to_be_bytes());
                b[4..20].copy_from_slice(&a.ip().octets());
                b[20..24].copy_from_slice(&a.scope_id().to_be_bytes());
            }
        }
        b
    }

    /// `None` when the record is shorter than a header or names an unknown family.
    pub fn decode(b: &[u8]) -> Option<DgramHeader> {
        let b = b.get(..DGRAM_HEADER_LEN)?;
        let port = u16::from_be_bytes([b[2], b[3]]);
        let addr = match b[0] {
            0 => None,
            4 => {
                let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
                Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
            }
            6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(&b[4..20]);
                let scope = u32::from_be_bytes([b[20], b[21], b[22], b[23]]);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(o),
                    port,
                    0,
                    scope,
                )))
            }
            _ => return None,
        };
        Some(DgramHeader { addr, ttl: b[1] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        for addr in [
            None,
            Some("172.20.0.1:53".parse().unwrap()),
            Some("[fe80::1%7]:179".parse().unwrap()),
            Some("[fd00::1]:0".parse().unwrap()),
        ] {
            let h = DgramHeader { addr, ttl: 63 };
            assert_eq!(DgramHeader::decode(&h.encode()), Some(h));
        }
        assert_eq!(DgramHeader::decode(&[4u8; 27]), None);
        let mut bad = [0u8; DGRAM_HEADER_LEN];
        bad[0] = 5;
        assert_eq!(DgramHeader::decode(&bad), None);
    }

    #[test]
    fn requests_are_one_json_line() {
        let r = crate::Request::Exec {
            op: ExecRequest::Connect {
                id: 7,
                v6: false,
                local: None,
                remote: "172.20.1.1:80".parse().unwrap(),
                opts: SockOpts::default(),
            },
        };
        let mut out = Vec::new();
        crate::write_line(&mut out, &r).unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        let back: crate::Request = crate::read_line(&mut std::io::BufReader::new(&out[..]), 4096)
            .unwrap()
            .unwrap();
        assert_eq!(back, r);
    }
}
