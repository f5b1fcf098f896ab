//! Route Origin Authorisations for DN42: origin validation (RFC 6811), the data to do it
//! with, and what changes when that data changes.
//!
//! # What it is
//!
//! - [`Roa`]: one validated ROA payload (prefix, max length, origin AS), the triple of
//!   RFC 6811 section 2 ("VRP"). Its constructor enforces what every source must satisfy.
//! - [`RoaSet`]: a deduplicated set of ROAs with a static index for "which ROAs cover this
//!   prefix" and [`RoaSet::validate`], the RFC 6811 section 2 procedure.
//! - [`RoaDelta`]: the ROAs added and removed between two sets ([`RoaSet::diff`]), or
//!   gathered from an incremental source; [`RoaDelta::affected`] and
//!   [`RoaDelta::affects`] name exactly the routes whose validity can change (those
//!   equal to or more specific than a changed ROA's prefix), so a RIB re-evaluates only
//!   those instead of its whole table.
//! - [`parse`]: the file formats DN42 publishes ROAs in — BIRD 2 `route … max … as …;`
//!   and BIRD 1 `roa …;` include files, the gortr/StayRTR JSON export and RFC 8416 SLURM
//!   — with per-line errors that never drop the rest of the file.
//!
//! # What it is not
//!
//! - No I/O besides [`parse::parse_file`] (one `read_to_string`): watching files for
//!   changes, timers and RTR (RFC 8210) sessions belong to the caller and to the RTR
//!   crate, which feed their results in as a new [`RoaSet`] or a [`RoaDelta`].
//! - No cryptographic RPKI validation: DN42 ROAs come from the registry, unsigned.
//! - No route policy: what to do with an invalid or not-found route is the RIB's call.
#![forbid(unsafe_code)]

pub mod parse;
mod set;

use ipnet::IpNet;
use std::fmt;

pub use set::{RoaDelta, RoaSet};

/// The validation state of a route (RFC 6811 section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Validity {
    /// At least one covering ROA matches the route's prefix length and origin AS.
    Valid,
    /// Covering ROAs exist, none of them matches.
    Invalid,
    /// No ROA covers the route's prefix.
    NotFound,
}

/// Why a triple is not a usable ROA.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoaError {
    /// The prefix has bits set after its length (e.g. `10.0.0.1/8`). Not fixed silently:
    /// the publisher meant something else, and guessing would authorise the wrong space.
    #[error("prefix {prefix} has host bits set (the network is {network})")]
    HostBits { prefix: IpNet, network: IpNet },
    /// RFC 6482 section 3.3: the max length must not be shorter than the prefix.
    #[error("max length {max_len} is shorter than the prefix {prefix}")]
    MaxLenTooShort { prefix: IpNet, max_len: u8 },
    /// RFC 6482 section 3.3: the max length must not exceed the address size (32 or 128).
    #[error("max length {max_len} is longer than {limit} bits for {prefix}")]
    MaxLenTooLong {
        prefix: IpNet,
        max_len: u8,
        limit: u8,
    },
}

/// One ROA payload: routes for `prefix` and its more-specifics up to `max_len` bits may be
/// originated by `asn`. An `asn` of 0 authorises no one (RFC 6483 section 4, RFC 7607):
/// it makes the covered space invalid unless another ROA validates a route.
///
/// The prefix never has host bits set and `prefix_len <= max_len <= 32 / 128`
/// ([`Roa::new`] checks it), which the index of [`RoaSet`] relies on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Roa {
    prefix: IpNet,
    max_len: u8,
    asn: u32,
}

impl Roa {
    /// Checks the triple (RFC 6482 section 3.3 for the max length).
    pub fn new(prefix: IpNet, max_len: u8, asn: u32) -> Result<Roa, RoaError> {
        let network = prefix.trunc();
        if network != prefix {
            return Err(RoaError::HostBits { prefix, network });
        }
        if max_len < prefix.prefix_len() {
            return Err(RoaError::MaxLenTooShort { prefix, max_len });
        }
        let limit = prefix.max_prefix_len();
        if max_len > limit {
            return Err(RoaError::MaxLenTooLong {
                prefix,
                max_len,
                limit,
            });
        }
        Ok(Roa {
            prefix,
            max_len,
            asn,
        })
    }

    pub fn prefix(&self) -> IpNet {
        self.prefix
    }

    pub fn max_len(&self) -> u8 {
        self.max_len
    }

    pub fn asn(&self) -> u32 {
        self.asn
    }

    /// RFC 6811 section 2 "matched", for a route this ROA covers: the route's length is
    /// within the max length and its origin is this ROA's AS. An AS0 ROA matches nothing
    /// (RFC 6483 section 4), not even a route whose origin is 0.
    fn allows(&self, route_len: u8, origin: Option<u32>) -> bool {
        self.asn != 0 && origin == Some(self.asn) && route_len <= self.max_len
    }
}

/// BIRD 2 syntax without the keyword: `172.20.4.128/26 max 29 as 4242420049`.
impl fmt::Display for Roa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} max {} as {}", self.prefix, self.max_len, self.asn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn constructor_checks() {
        assert!(Roa::new(net("172.20.0.0/24"), 24, 1).is_ok());
        assert!(Roa::new(net("172.20.0.0/24"), 32, 1).is_ok());
        assert!(Roa::new(net("fd00::/8"), 128, 1).is_ok());
        assert_eq!(
            Roa::new(net("172.20.0.1/24"), 24, 1),
            Err(RoaError::HostBits {
                prefix: net("172.20.0.1/24"),
                network: net("172.20.0.0/24")
            })
        );
        assert!(matches!(
            Roa::new(net("172.20.0.0/24"), 23, 1),
            Err(RoaError::MaxLenTooShort { max_len: 23, .. })
        ));
        assert!(matches!(
            Roa::new(net("172.20.0.0/24"), 33, 1),
            Err(RoaError::MaxLenTooLong { limit: 32, .. })
        ));
        assert!(matches!(
            Roa::new(net("fd00::/8"), 129, 1),
            Err(RoaError::MaxLenTooLong { limit: 128, .. })
        ));
    }

    #[test]
    fn display_is_bird_syntax() {
        let roa = Roa::new(net("172.20.4.128/26"), 29, 4242420049).unwrap();
        assert_eq!(roa.to_string(), "172.20.4.128/26 max 29 as 4242420049");
    }
}
