//! An RPKI-to-Router (RTR) client: how rootless-router learns ROA data (validated ROA
//! payloads) from a cache such as StayRTR, for route origin validation (RFC 6811).
//!
//! # What it is
//!
//! - [`pdu`]: the PDUs of RFC 8210 section 5 (protocol version 1) and RFC 6810 section 5
//!   (version 0) as Rust values, framing from a byte stream ([`pdu::frame`]), decoding
//!   that never panics ([`pdu::Pdu::decode`]) and encoding ([`pdu::Pdu::encode`]).
//! - [`Client`]: the router side of one cache, sans-IO in the quinn-proto style. It takes
//!   the transport's state ([`Client::connection_opened`], [`Client::connection_closed`]),
//!   received bytes ([`Client::handle_bytes`]) and the time ([`Client::handle_timeout`]);
//!   it hands out bytes to send ([`Client::poll_transmit`]), its next deadline
//!   ([`Client::poll_timeout`]) and [`Event`]s: VRP changes committed atomically at each
//!   End of Data, table drops, and requests to close the connection.
//!
//! # What it is not
//!
//! - No transport: no TCP, SSH or TLS, no clock, no reconnect loop. The caller connects,
//!   and reconnects after a close; [`Client::retry_interval`] is the RFC 8210 section 6
//!   Retry Interval that says how long to wait (back off further as it likes), and
//!   [`CloseReason::reconnect_at_once`] marks the two cases (a version downgrade, and a
//!   session the cache refused) where the next connection should be opened right away.
//! - No origin validation: [`Vrp`]s are handed on; matching routes against them is the
//!   ROA table's business.
//! - No BGPsec: Router Key PDUs (RFC 8210 section 5.10) are decoded and skipped; no ASPA
//!   (draft-ietf-sidrops-8210bis protocol version 2): a version 2 PDU is a protocol error.
//! - One cache per [`Client`]; choosing among several caches (RFC 8210 section 10) is the
//!   caller's.

#![forbid(unsafe_code)]

mod client;
pub mod pdu;

pub use client::{Client, CloseReason, Event};

use ipnet::IpNet;

/// A validated ROA payload (RFC 6811 section 2; carried by the IPv4 and IPv6 Prefix PDUs
/// of RFC 8210 sections 5.6 and 5.7): `asn` may originate `prefix` and its
/// more-specifics up to `max_len` bits. `asn` 0 (RFC 7607) means no AS may.
///
/// Values built by the decoder always have `prefix` without host bits and
/// `prefix.prefix_len() <= max_len <= prefix.max_prefix_len()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vrp {
    /// The ROA prefix.
    pub prefix: IpNet,
    /// The longest prefix length the ROA covers.
    pub max_len: u8,
    /// The AS allowed to originate it.
    pub asn: u32,
}

impl Vrp {
    /// A VRP, if the values are one a cache may send: `prefix` without host bits and
    /// `prefix.prefix_len() <= max_len <= prefix.max_prefix_len()`.
    pub fn new(prefix: IpNet, max_len: u8, asn: u32) -> Option<Vrp> {
        let valid = prefix.trunc() == prefix
            && (prefix.prefix_len()..=prefix.max_prefix_len()).contains(&max_len);
        valid.then_some(Vrp {
            prefix,
            max_len,
            asn,
        })
    }
}
