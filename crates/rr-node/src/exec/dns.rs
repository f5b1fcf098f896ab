//! Name resolution for programs under `exec`: names in the DN42 domains (and addresses
//! in DN42's reverse zones) are asked of the `[dns]` servers over the router's own
//! network, from one ephemeral UDP binding of the node's stack; everything else is left
//! to the host's resolver ([`ExecResponse::Kernel`]).
//!
//! What it is not: a resolver. Queries, retries, CNAME chains and parsing are
//! `rr_dns::Resolver`'s; this moves its datagrams and answers the waiting connections.

use super::{answer, failed};
use crate::NodeError;
use rr_config::Config;
use rr_ctl::exec::{ExecResponse, Family};
use rr_dns::{Answer, DnsError, QueryId, Resolver, Want};
use rr_stack::{Stack, UdpHandle};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::time::Instant;

pub(crate) struct Dns {
    resolver: Resolver,
    /// `[::]:ephemeral` on the stack (it takes IPv4 too).
    binding: UdpHandle,
    waiting: HashMap<QueryId, UnixStream>,
}

impl Dns {
    pub fn new(config: &Config, stack: &mut Stack) -> Result<Dns, NodeError> {
        let binding = stack
            .udp_bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0), None)
            .map_err(NodeError::Stack)?;
        Ok(Dns {
            resolver: Resolver::new(config.dns.servers.clone(), config.dns.domains.clone()),
            binding,
            waiting: HashMap::new(),
        })
    }

    /// Starts a lookup answered later on `conn`; gives `conn` back when the name is
    /// not a DN42 one.
    pub fn resolve(
        &mut self,
        now: Instant,
        name: &str,
        family: Family,
        conn: UnixStream,
    ) -> Option<UnixStream> {
        if !self.resolver.is_dn42_name(name) {
            return Some(conn);
        }
        let want = match family {
            Family::Any => Want::Any,
            Family::V4 => Want::V4,
            Family::V6 => Want::V6,
        };
        let q = self.resolver.resolve(now, name, want);
        self.waiting.insert(q, conn);
        None
    }

    /// Starts a PTR lookup, as [`Dns::resolve`].
    pub fn reverse(&mut self, now: Instant, addr: IpAddr, conn: UnixStream) -> Option<UnixStream> {
        if !self.resolver.reverse_zone_matches(addr) {
            return Some(conn);
        }
        let q = self.resolver.reverse(now, addr);
        self.waiting.insert(q, conn);
        None
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.waiting.is_empty() {
            return None;
        }
        self.resolver.poll_timeout()
    }

    /// Moves the resolver's datagrams, runs its timers, answers finished lookups.
    pub fn service(&mut self, now: Instant, stack: &mut Stack, buf: &mut [u8]) {
        while let Some((n, from, _)) = stack.udp_recv_from(self.binding, buf) {
            self.resolver
                .handle_datagram(now, from, buf.get(..n).unwrap_or_default());
        }
        if self.resolver.poll_timeout().is_some_and(|t| t <= now) {
            self.resolver.handle_timeout(now);
        }
        while let Some((to, bytes)) = self.resolver.poll_transmit() {
            if let Err(e) = stack.udp_send_to(self.binding, &bytes, to, None) {
                tracing::debug!(server = %to, error = %e, "DNS query not sent");
            }
        }
        while let Some((q, result)) = self.resolver.poll_result() {
            let Some(conn) = self.waiting.remove(&q) else {
                continue;
            };
            let resp = match result {
                Ok(Answer::Addresses { canonical, addrs }) => {
                    ExecResponse::Addresses { canonical, addrs }
                }
                Ok(Answer::Name(name)) => ExecResponse::Name { name },
                Err(e) => {
                    let errno = match e {
                        DnsError::Timeout => libc::ETIMEDOUT,
                        DnsError::ServerFailure(3) => libc::ENOENT,
                        DnsError::BadName => libc::EINVAL,
                        _ => libc::EIO,
                    };
                    failed(errno, e.to_string())
                }
            };
            answer(&conn, resp);
        }
    }
}
