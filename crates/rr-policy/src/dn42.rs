//! The DN42 BGP community scheme (AS 64511), as the DN42 wiki's BIRD filters apply it
//! (wiki page "BGP communities", formerly "Bird communities").
//!
//! Values: latency 1..=9 (`(64511,1)` = up to 2.7 ms ... 9 = over 2981 ms, the upper
//! bound of class x being e^x ms), bandwidth 21..=29 (21 = 0.1 Mbit/s ... 25 = 1 Gbit/s,
//! 2x = 10^(x-2) Mbit/s and more), crypto 31..=34 (31 = not encrypted ... 34 = encrypted
//! with perfect forward secrecy: WireGuard), region 41..=70, country 1000..=1999
//! (1000 + ISO 3166-1 numeric code).
//!
//! What it is: [`apply_link`] (the wiki's `update_flags`) and the constants and
//! helpers for these communities. What it is not: policy evaluation; the RIB calls
//! [`apply_link`] on import and export, and puts [`origin_communities`] on the routes
//! the node originates.

use rr_bgp::packet::Attributes;
use std::ops::RangeInclusive;

/// The DN42 community ASN.
pub const ASN: u16 = 64511;
/// Latency classes.
pub const LATENCY: RangeInclusive<u16> = 1..=9;
/// Bandwidth classes.
pub const BANDWIDTH: RangeInclusive<u16> = 21..=29;
/// Encryption classes.
pub const CRYPTO: RangeInclusive<u16> = 31..=34;
/// Route origin: region.
pub const REGION: RangeInclusive<u16> = 41..=70;
/// Route origin: country (1000 + ISO 3166-1 numeric).
pub const COUNTRY: RangeInclusive<u16> = 1000..=1999;

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
///
/// Decisions where the wiki's filter says nothing:
/// - a kind the link does not set (`None`) is left exactly as received, duplicates
///   included: the operator stated nothing about this tunnel for it;
/// - a link value outside its kind's range (e.g. latency 12) counts as not set (the
///   config never produces one);
/// - `(64511, v)` values outside the three ranges (0, 10..=20, 35..=40, region,
///   country, ...) are not link communities and stay untouched, as with the wiki's
///   `bgp_community.delete([(64511, a..b)])`, which only covers the ranges.
///
/// The chosen community keeps its position if the route had it; otherwise it is
/// appended (BIRD's `bgp_community.add`). Other communities keep their order.
pub fn apply_link(attrs: &mut Attributes, link: &Link) -> bool {
    let kinds = [
        (link.latency, LATENCY, Pick::Max),
        (link.bandwidth, BANDWIDTH, Pick::Min),
        (link.crypto, CRYPTO, Pick::Min),
    ];
    let mut changed = false;
    for (value, range, pick) in kinds {
        if let Some(v) = value.map(u16::from).filter(|v| range.contains(v)) {
            changed |= update_kind(&mut attrs.communities, v, &range, pick);
        }
    }
    changed
}

/// Which of the route's and the link's values a kind keeps.
#[derive(Clone, Copy)]
enum Pick {
    Max,
    Min,
}

/// One kind of `update_flags`: keep exactly one `(64511, x)` with `x` in `range`, the
/// max or min of the route's values and `link`.
fn update_kind(
    communities: &mut Vec<u32>,
    link: u16,
    range: &RangeInclusive<u16>,
    pick: Pick,
) -> bool {
    let value_of = |c: u32| -> Option<u16> {
        let v = (c & 0xffff) as u16;
        (c >> 16 == u32::from(ASN) && range.contains(&v)).then_some(v)
    };
    let target = communities
        .iter()
        .filter_map(|&c| value_of(c))
        .fold(link, |acc, v| match pick {
            Pick::Max => acc.max(v),
            Pick::Min => acc.min(v),
        });
    let before = communities.len();
    let mut kept = false;
    communities.retain(|&c| match value_of(c) {
        None => true,
        Some(v) if v == target && !kept => {
            kept = true;
            true
        }
        Some(_) => false,
    });
    let removed = communities.len() != before;
    if !kept {
        communities.push(community(target));
    }
    removed || !kept
}

/// The community value `(64511, v)`.
pub const fn community(v: u16) -> u32 {
    ((ASN as u32) << 16) | v as u32
}

/// The communities the node puts on the routes it originates: `(64511, region)` and
/// `(64511, country)`, the ones set (the wiki: only on routes originating from the
/// node's own network). Values outside [`REGION`] / [`COUNTRY`] are left out.
pub fn origin_communities(region: Option<u16>, country: Option<u16>) -> Vec<u32> {
    let region = region.filter(|r| REGION.contains(r));
    let country = country.filter(|c| COUNTRY.contains(c));
    region.into_iter().chain(country).map(community).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(latency: u8, bandwidth: u8, crypto: u8) -> Link {
        Link {
            latency: Some(latency),
            bandwidth: Some(bandwidth),
            crypto: Some(crypto),
        }
    }

    fn values(attrs: &Attributes) -> Vec<u16> {
        attrs
            .communities
            .iter()
            .map(|&c| {
                assert_eq!(
                    c >> 16,
                    u32::from(ASN),
                    "only DN42 communities in these cases"
                );
                (c & 0xffff) as u16
            })
            .collect()
    }

    fn with(vals: &[u16]) -> Attributes {
        Attributes {
            communities: vals.iter().map(|&v| community(v)).collect(),
            ..Attributes::default()
        }
    }

    /// (route's DN42 values, link, values after, changed).
    #[test]
    fn update_flags_table() {
        let cases: &[(&[u16], Link, &[u16], bool)] = &[
            // A route without any gets the link's.
            (&[], link(3, 24, 34), &[3, 24, 34], true),
            // Latency: max; bandwidth and crypto: min.
            (&[5, 25, 33], link(3, 24, 34), &[5, 33, 24], true),
            (&[2, 23, 34], link(3, 24, 33), &[23, 3, 33], true),
            // Already what the link gives: nothing changes.
            (&[3, 24, 34], link(3, 24, 34), &[3, 24, 34], false),
            (&[9, 21, 31], link(1, 29, 34), &[9, 21, 31], false),
            // Two latency communities (a sloppy upstream): the max of all, one left.
            (&[2, 7, 24, 34], link(3, 24, 34), &[7, 24, 34], true),
            (&[7, 2, 24, 34], link(8, 24, 34), &[24, 34, 8], true),
            // Duplicates of the chosen value collapse to the first.
            (&[4, 4, 24, 34], link(3, 24, 34), &[4, 24, 34], true),
            // Two bandwidths and two cryptos: the min of each.
            (&[3, 25, 22, 34, 32], link(3, 24, 34), &[3, 22, 32], true),
            // Values outside the kinds stay: 0, 10, 20, 35, region 41, country 1276.
            (
                &[0, 10, 20, 35, 41, 1276],
                link(3, 24, 34),
                &[0, 10, 20, 35, 41, 1276, 3, 24, 34],
                true,
            ),
            // Only some of a kind missing.
            (&[6, 41], link(3, 24, 34), &[6, 41, 24, 34], true),
        ];
        for (route, l, after, changed) in cases {
            let mut attrs = with(route);
            assert_eq!(apply_link(&mut attrs, l), *changed, "{route:?} over {l:?}");
            assert_eq!(values(&attrs), *after, "{route:?} over {l:?}");
            // Idempotent: crossing the same link again changes nothing.
            assert!(!apply_link(&mut attrs, l), "{route:?} twice");
        }
    }

    #[test]
    fn unset_and_out_of_range_link_values() {
        // Nothing set: nothing touched, even two latencies.
        let mut attrs = with(&[2, 7, 24]);
        assert!(!apply_link(&mut attrs, &Link::default()));
        assert_eq!(values(&attrs), [2, 7, 24]);
        // Only latency set: bandwidth and crypto stay as received.
        let only_latency = Link {
            latency: Some(4),
            ..Link::default()
        };
        let mut attrs = with(&[2, 25, 22]);
        assert!(apply_link(&mut attrs, &only_latency));
        assert_eq!(values(&attrs), [25, 22, 4]);
        // Out of range link values count as unset.
        let bad = Link {
            latency: Some(12),
            bandwidth: Some(4),
            crypto: Some(35),
        };
        let mut attrs = with(&[]);
        assert!(!apply_link(&mut attrs, &bad));
        assert!(attrs.communities.is_empty());
    }

    #[test]
    fn other_communities_are_untouched() {
        let mut attrs = Attributes {
            communities: vec![(65000 << 16) | 3, community(5), (65000 << 16) | 24],
            large_communities: vec![[4242420000, 1, 2]],
            ..Attributes::default()
        };
        assert!(apply_link(&mut attrs, &link(3, 24, 34)));
        assert_eq!(
            attrs.communities,
            vec![
                (65000 << 16) | 3,
                community(5),
                (65000 << 16) | 24,
                community(24),
                community(34)
            ]
        );
        assert_eq!(attrs.large_communities, vec![[4242420000, 1, 2]]);
    }

    #[test]
    fn origin() {
        assert_eq!(
            origin_communities(Some(41), Some(1276)),
            vec![community(41), community(1276)]
        );
        assert_eq!(origin_communities(None, Some(1276)), vec![community(1276)]);
        assert_eq!(origin_communities(Some(40), Some(2000)), Vec::<u32>::new());
        assert_eq!(community(41), (64511 << 16) | 41);
    }
}
