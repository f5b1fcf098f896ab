//! The DN42 BGP community scheme (AS 64511), as the DN42 wiki's BIRD filters apply it.
//!
//! Values: latency 1..=9 (`(64511,1)` = under 2.7 ms ... 9 = over 1480 ms), bandwidth
//! 21..=29 (21 = 0.1 Mbit/s ... 29 = 10 Gbit/s and more), crypto 31..=34 (31 = not
//! encrypted ... 34 = encrypted with perfect forward secrecy: WireGuard), region
//! 41..=70, country 1000..=1999 (1000 + ISO 3166 numeric code).
//!
//! What it is not: policy evaluation; the RIB calls [`apply_link`] on import and export.

use rr_bgp::packet::Attributes;

/// The DN42 community ASN.
pub const ASN: u16 = 64511;

/// The properties of one tunnel that DN42 communities describe, as community values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Link {
    /// 1..=9.
    pub latency: Option<u8>,
    /// 21..=29.
    pub bandwidth: Option<u8>,
    /// 31..=34.
    pub crypto: Option<u8>,
}

/// Updates a route's DN42 link communities for crossing `link` (the wiki's
/// `update_flags`): latency becomes the max of the route's and the link's, bandwidth
/// and crypto the min; a route without one gets the link's. Only one community of each
/// kind remains. Returns whether anything changed.
pub fn apply_link(attrs: &mut Attributes, link: &Link) -> bool {
    let _ = (attrs, link);
    unimplemented!("dn42 link communities")
}

/// The community value `(64511, v)`.
pub const fn community(v: u16) -> u32 {
    ((ASN as u32) << 16) | v as u32
}
