//! A sans-IO DNS stub resolver client: how programs under `rootless-router exec` resolve
//! DN42 names through the DNS servers on the DN42 side.
//!
//! # What it is
//!
//! [`Resolver`] takes questions ([`Resolver::resolve`], [`Resolver::reverse`]), the
//! datagrams that come back ([`Resolver::handle_datagram`]) and the time
//! ([`Resolver::handle_timeout`]), and hands out datagrams to send
//! ([`Resolver::poll_transmit`]), its next deadline ([`Resolver::poll_timeout`]) and
//! results ([`Resolver::poll_result`]). It never opens a socket and never reads the
//! clock: the node sends and receives over its own UDP endpoint. The message codec is
//! in [`wire`] (RFC 1035 section 4.1).
//!
//! Behaviour, as glibc's stub resolver does it (`resolv.conf(5)`: `timeout:1`,
//! `attempts:2`): each try waits [`TRY_TIMEOUT`], then the next server is asked; after
//! [`ROUNDS`] rounds over all servers the lookup fails. A server failure (any RCODE
//! other than NOERROR and NXDOMAIN), a truncated answer or a malformed answer moves on
//! to the next server at once. Responses are matched by ID, server address and
//! question (RFC 5452 section 3); anything else is dropped. CNAME chains inside one
//! answer are followed (RFC 1034 section 3.6.2), also for reverse lookups (RFC 2317
//! classless delegation uses them).
//!
//! # What it is not
//!
//! - No TCP fallback: a truncated (TC) response counts as a failure of that server.
//!   Queries advertise an EDNS(0) buffer of [`wire::EDNS_UDP_SIZE`] bytes, so the
//!   caller must accept datagrams that large.
//! - No cache, no search list, no `ndots`, no DNSSEC validation, no 0x20 case
//!   randomisation. IDs are pseudo-random (16 bits); source-port randomisation is the
//!   caller's business.
//! - Not for the host's names: [`Resolver::is_dn42_name`] tells the caller which names
//!   belong here, everything else goes to the host's resolver.

#![forbid(unsafe_code)]

pub mod wire;

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use wire::{Name, RData, RecordType, Response, WireError, CLASS_IN, RCODE_NOERROR};

/// Names a lookup started by [`Resolver::resolve`] or [`Resolver::reverse`].
pub type QueryId = u64;

/// How long one try waits for its server (glibc's default `timeout:1`).
pub const TRY_TIMEOUT: Duration = Duration::from_secs(1);
/// How many times every server is asked before giving up (glibc's default `attempts:2`).
pub const ROUNDS: usize = 2;
/// The longest CNAME chain followed inside one answer.
pub const MAX_CNAME_CHAIN: usize = 16;

/// Which addresses a lookup wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A and AAAA, asked in parallel; the result lists IPv4 addresses first.
    Any,
    V4,
    V6,
}

/// A successful lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Forward lookup: `canonical` is the last CNAME target (or the name asked, without
    /// a trailing dot). An empty `addrs` means the name does not exist (NXDOMAIN) or has
    /// no address of the wanted family.
    Addresses {
        canonical: String,
        addrs: Vec<IpAddr>,
    },
    /// Reverse lookup: the PTR target, without a trailing dot.
    Name(String),
}

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// No server answered within [`ROUNDS`] rounds of [`TRY_TIMEOUT`].
    #[error("DNS lookup timed out")]
    Timeout,
    /// The last server that answered gave this RCODE (2 SERVFAIL, 5 REFUSED...). For a
    /// reverse lookup, [`wire::RCODE_NXDOMAIN`] also stands for "no PTR record" (an
    /// empty NOERROR answer), since there is no name to return.
    #[error("DNS server failure (rcode {0})")]
    ServerFailure(u8),
    /// The last server that answered sent something this client cannot read (or a
    /// truncated answer: [`WireError::TruncatedResponse`]).
    #[error("malformed DNS response: {0}")]
    Malformed(WireError),
    /// The resolver has no servers.
    #[error("no DNS servers configured")]
    NoServers,
    /// The name cannot be put in a query (empty label, label over 63 or name over 255
    /// octets).
    #[error("invalid domain name")]
    BadName,
}

/// The sans-IO stub resolver. See the crate documentation.
#[derive(Debug)]
pub struct Resolver {
    servers: Vec<SocketAddr>,
    /// Lower case, no trailing dot, none empty.
    domains: Vec<String>,
    rng: u64,
    next_query: QueryId,
    lookups: Vec<Lookup>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    results: VecDeque<(QueryId, Result<Answer, DnsError>)>,
}

/// One lookup: one part per question (two for [`Want::Any`]).
#[derive(Debug)]
struct Lookup {
    id: QueryId,
    reverse: bool,
    parts: Vec<Part>,
}

/// One question and its tries.
#[derive(Debug)]
struct Part {
    qname: Name,
    qtype: RecordType,
    /// The encoded query; each try patches its ID into the first two bytes.
    query: Vec<u8>,
    /// Tries sent so far.
    tries: usize,
    /// When the current try gives up; `None` once `outcome` is known.
    deadline: Option<Instant>,
    /// (wire ID, server) of every try: a late answer to an earlier try is welcome.
    sent: Vec<(u16, SocketAddr)>,
    /// The last answer that was a failure (RCODE, TC, malformed).
    last_error: Option<DnsError>,
    outcome: Option<Result<Found, DnsError>>,
}

/// What one question found.
#[derive(Debug, Clone)]
enum Found {
    Addrs {
        canonical: Name,
        addrs: Vec<IpAddr>,
    },
    /// `None`: NXDOMAIN or no PTR record.
    Ptr(Option<Name>),
}

impl Resolver {
    /// A resolver asking `servers` in order, for names in `domains` (compared case
    /// insensitively; a trailing dot is ignored, empty domains are dropped). IDs are
    /// seeded from the standard library's per-process random hash keys.
    pub fn new(servers: Vec<SocketAddr>, domains: Vec<String>) -> Resolver {
        let seed = RandomState::new().hash_one(0x5eed_u64);
        Resolver::with_seed(servers, domains, seed)
    }

    /// Like [`Resolver::new`] with a given ID seed (deterministic tests).
    pub fn with_seed(servers: Vec<SocketAddr>, domains: Vec<String>, seed: u64) -> Resolver {
        let domains = domains
            .iter()
            .map(|d| normalize(d))
            .filter(|d| !d.is_empty())
            .collect();
        Resolver {
            servers,
            domains,
            rng: seed,
            next_query: 1,
            lookups: Vec::new(),
            transmits: VecDeque::new(),
            results: VecDeque::new(),
        }
    }

    /// True when `name` is one of the domains or ends with `.` + one of them (ASCII case
    /// ignored, a trailing dot allowed).
    pub fn is_dn42_name(&self, name: &str) -> bool {
        let name = normalize(name);
        self.domains.iter().any(|d| {
            name.strip_suffix(d.as_str())
                .is_some_and(|head| head.is_empty() || head.ends_with('.'))
        })
    }

    /// True when the reverse name of `addr` ([`reverse_name`]) is in one of the domains.
    pub fn reverse_zone_matches(&self, addr: IpAddr) -> bool {
        self.is_dn42_name(&reverse_name(addr))
    }

    /// Starts a forward lookup of `name`. The result comes out of
    /// [`Resolver::poll_result`] with the returned id (at once for
    /// [`DnsError::NoServers`] and [`DnsError::BadName`]).
    pub fn resolve(&mut self, now: Instant, name: &str, want: Want) -> QueryId {
        let qtypes: &[RecordType] = match want {
            Want::Any => &[RecordType::A, RecordType::AAAA],
            Want::V4 => &[RecordType::A],
            Want::V6 => &[RecordType::AAAA],
        };
        self.start(now, name, qtypes, false)
    }

    /// Starts a reverse (PTR) lookup of `addr` under in-addr.arpa / ip6.arpa.
    pub fn reverse(&mut self, now: Instant, addr: IpAddr) -> QueryId {
        self.start(now, &reverse_name(addr), &[RecordType::PTR], true)
    }

    /// A datagram from `from` (the caller's UDP endpoint got it). Unmatched or
    /// unreadable datagrams that match no try are dropped.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, payload: &[u8]) {
        let Ok(header) = wire::Header::decode(payload) else {
            return;
        };
        let from = canonical(from);
        let Some((li, pi)) = self.lookups.iter().enumerate().find_map(|(li, l)| {
            l.parts
                .iter()
                .position(|p| p.outcome.is_none() && p.sent.contains(&(header.id, from)))
                .map(|pi| (li, pi))
        }) else {
            return;
        };
        let verdict = match wire::decode_response(payload) {
            Err(e) => Err(DnsError::Malformed(e)),
            Ok(resp) => {
                let part = &self.lookups[li].parts[pi];
                if !resp.header.is_response
                    || resp.header.opcode != 0
                    || !matches_question(&resp, &part.qname, part.qtype)
                {
                    // Not an answer, or one to another question: not ours (RFC 5452).
                    return;
                } else if resp.header.truncated {
                    Err(DnsError::Malformed(WireError::TruncatedResponse))
                } else {
                    match resp.header.rcode {
                        RCODE_NOERROR => Ok(extract(&resp, &part.qname, part.qtype, false)),
                        wire::RCODE_NXDOMAIN => Ok(extract(&resp, &part.qname, part.qtype, true)),
                        rcode => Err(DnsError::ServerFailure(rcode)),
                    }
                }
            }
        };
        match verdict {
            Ok(found) => {
                let part = &mut self.lookups[li].parts[pi];
                part.outcome = Some(Ok(found));
                part.deadline = None;
            }
            Err(e) => {
                let part = &mut self.lookups[li].parts[pi];
                part.last_error = Some(e);
                self.next_try(now, li, pi);
            }
        }
        self.finish(li);
    }

    /// The next datagram to send, and where to.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// When [`Resolver::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lookups
            .iter()
            .flat_map(|l| &l.parts)
            .filter_map(|p| p.deadline)
            .min()
    }

    /// Gives up the tries whose deadline passed: the next server is asked, or the lookup
    /// fails after [`ROUNDS`] rounds.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut li = 0;
        while li < self.lookups.len() {
            for pi in 0..self.lookups[li].parts.len() {
                if self.lookups[li].parts[pi]
                    .deadline
                    .is_some_and(|d| d <= now)
                {
                    self.next_try(now, li, pi);
                }
            }
            if !self.finish(li) {
                li += 1;
            }
        }
    }

    /// A finished lookup.
    pub fn poll_result(&mut self) -> Option<(QueryId, Result<Answer, DnsError>)> {
        self.results.pop_front()
    }

    fn start(&mut self, now: Instant, name: &str, qtypes: &[RecordType], reverse: bool) -> QueryId {
        let id = self.next_query;
        self.next_query += 1;
        let qname = match Name::parse(name) {
            Ok(n) if !n.is_root() => n,
            _ => {
                self.results.push_back((id, Err(DnsError::BadName)));
                return id;
            }
        };
        if self.servers.is_empty() {
            self.results.push_back((id, Err(DnsError::NoServers)));
            return id;
        }
        let mut parts = Vec::new();
        for &qtype in qtypes {
            let Ok(query) = wire::encode_query(0, name, qtype) else {
                self.results.push_back((id, Err(DnsError::BadName)));
                return id;
            };
            parts.push(Part {
                qname: qname.clone(),
                qtype,
                query,
                tries: 0,
                deadline: None,
                sent: Vec::new(),
                last_error: None,
                outcome: None,
            });
        }
        self.lookups.push(Lookup { id, reverse, parts });
        let li = self.lookups.len() - 1;
        for pi in 0..qtypes.len() {
            self.next_try(now, li, pi);
        }
        id
    }

    /// Sends the next try of a part, or fails the part when all tries are used.
    fn next_try(&mut self, now: Instant, li: usize, pi: usize) {
        let total = self.servers.len() * ROUNDS;
        if self.lookups[li].parts[pi].tries >= total {
            let part = &mut self.lookups[li].parts[pi];
            let err = part.last_error.take().unwrap_or(DnsError::Timeout);
            part.outcome = Some(Err(err));
            part.deadline = None;
            return;
        }
        let wire_id = self.fresh_id();
        let part = &mut self.lookups[li].parts[pi];
        let server = self.servers[part.tries % self.servers.len()];
        let mut datagram = part.query.clone();
        datagram[..2].copy_from_slice(&wire_id.to_be_bytes());
        part.tries += 1;
        part.deadline = Some(now + TRY_TIMEOUT);
        part.sent.push((wire_id, canonical(server)));
        self.transmits.push_back((server, datagram));
    }

    /// Publishes the result of lookup `li` when all its parts are done; true if it did
    /// (and removed the lookup).
    fn finish(&mut self, li: usize) -> bool {
        if self.lookups[li].parts.iter().any(|p| p.outcome.is_none()) {
            return false;
        }
        let lookup = self.lookups.remove(li);
        let outcomes = lookup.parts.into_iter().filter_map(|p| p.outcome);
        let result = if lookup.reverse {
            merge_reverse(outcomes)
        } else {
            merge_addresses(outcomes)
        };
        self.results.push_back((lookup.id, result));
        true
    }

    /// A pseudo-random ID not used by any try still waiting (splitmix64).
    fn fresh_id(&mut self) -> u16 {
        loop {
            self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            let id = (z ^ (z >> 31)) as u16;
            let taken = self
                .lookups
                .iter()
                .flat_map(|l| &l.parts)
                .filter(|p| p.outcome.is_none())
                .any(|p| p.sent.iter().any(|&(i, _)| i == id));
            if !taken {
                return id;
            }
        }
    }
}

/// The reverse-lookup name of an address: `4.3.2.1.in-addr.arpa` (RFC 1035 section
/// 3.5) or the 32 nibbles under `ip6.arpa` (RFC 3596 section 2.5). An IPv4-mapped IPv6
/// address is treated as its IPv4 address.
pub fn reverse_name(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(a) => {
            let [a, b, c, d] = a.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(a) => {
            let mut s = String::with_capacity(72);
            for byte in a.octets().iter().rev() {
                let _ = write!(s, "{:x}.{:x}.", byte & 0xf, byte >> 4);
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// Lower case, no trailing dot.
fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Addresses compared as the kernel would deliver them (IPv4-mapped = IPv4).
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Exactly one question, the one asked, in class IN.
fn matches_question(resp: &Response, qname: &Name, qtype: RecordType) -> bool {
    match resp.questions.as_slice() {
        [q] => q.qtype == qtype && q.qclass == CLASS_IN && q.name.eq_ignore_case(qname),
        _ => false,
    }
}

/// The records of `qtype` at the end of the CNAME chain that starts at `qname`.
fn extract(resp: &Response, qname: &Name, qtype: RecordType, nxdomain: bool) -> Found {
    let mut current = qname;
    for _ in 0..MAX_CNAME_CHAIN {
        let next = resp.answers.iter().find_map(|rr| match &rr.data {
            RData::Cname(target) if rr.class == CLASS_IN && rr.name.eq_ignore_case(current) => {
                Some(target)
            }
            _ => None,
        });
        match next {
            Some(target) => current = target,
            None => break,
        }
    }
    let at_end = resp
        .answers
        .iter()
        .filter(|rr| rr.class == CLASS_IN && rr.name.eq_ignore_case(current));
    if qtype == RecordType::PTR {
        let name = if nxdomain {
            None
        } else {
            at_end
                .filter_map(|rr| match &rr.data {
                    RData::Ptr(n) => Some(n.clone()),
                    _ => None,
                })
                .next()
        };
        return Found::Ptr(name);
    }
    let addrs = if nxdomain {
        Vec::new()
    } else {
        at_end
            .filter_map(|rr| match (&rr.data, qtype) {
                (RData::A(a), RecordType::A) => Some(IpAddr::V4(*a)),
                (RData::Aaaa(a), RecordType::AAAA) => Some(IpAddr::V6(*a)),
                _ => None,
            })
            .collect()
    };
    Found::Addrs {
        canonical: current.clone(),
        addrs,
    }
}

/// Merges the parts of a forward lookup (A first): addresses if any part found some;
/// else the first failure; else "no such host" (an empty list).
fn merge_addresses(
    outcomes: impl Iterator<Item = Result<Found, DnsError>>,
) -> Result<Answer, DnsError> {
    let mut canonical = None;
    let mut addrs = Vec::new();
    let mut error = None;
    for outcome in outcomes {
        match outcome {
            Ok(Found::Addrs {
                canonical: c,
                addrs: a,
            }) => {
                if canonical.is_none() || (addrs.is_empty() && !a.is_empty()) {
                    canonical = Some(c);
                }
                addrs.extend(a);
            }
            Ok(Found::Ptr(_)) => {}
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    match (error, canonical) {
        (Some(e), _) if addrs.is_empty() => Err(e),
        (_, Some(c)) => Ok(Answer::Addresses {
            canonical: c.to_string(),
            addrs,
        }),
        (Some(e), None) => Err(e),
        (None, None) => Err(DnsError::BadName),
    }
}

/// The single part of a reverse lookup.
fn merge_reverse(
    mut outcomes: impl Iterator<Item = Result<Found, DnsError>>,
) -> Result<Answer, DnsError> {
    match outcomes.next() {
        Some(Ok(Found::Ptr(Some(name)))) => Ok(Answer::Name(name.to_string())),
        Some(Ok(_)) => Err(DnsError::ServerFailure(wire::RCODE_NXDOMAIN)),
        Some(Err(e)) => Err(e),
        None => Err(DnsError::BadName),
    }
}
