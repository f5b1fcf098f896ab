//! Path attributes: decoding one UPDATE's attribute list with the RFC 7606 rules, and
//! encoding [`Attributes`] back in type-code order.
//!
//! What it is: the per-attribute checks of RFC 4271 5 / 6.3 as revised by RFC 7606
//! (section 3 for flags, duplicates and missing attributes, 4 for framing, 7 for each
//! attribute), RFC 6793 (2-byte AS paths, AS4_PATH / AS4_AGGREGATOR), RFC 7607 (AS 0),
//! RFC 8092 5 (large communities) and RFC 4760 (MP_REACH_NLRI / MP_UNREACH_NLRI).
//! Decoding yields the attributes plus, at most, a "treat-as-withdraw" reason; only the
//! errors RFC 7606 cannot contain (duplicate or malformed MP attributes, unrecognized
//! well-known attributes) become a [`DecodeError`].
//!
//! What it is not: policy. Semantic checks (martian next hops, LOCAL_PREF from an eBGP
//! neighbor, first AS = neighbor AS, loops) belong to the session and the RIB.

use super::decode::{prefixes_mp, update_error, Reader};
use super::{
    AsPath, AsSegment, Attributes, Codec, DecodeError, Family, MpReach, MpUnreach, NextHop, Origin,
    RawAttribute, AS_TRANS, FLAG_EXTENDED_LENGTH, FLAG_OPTIONAL, FLAG_PARTIAL, FLAG_TRANSITIVE,
};
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Attribute type codes (IANA "BGP Path Attributes").
pub(crate) mod code {
    pub(crate) const ORIGIN: u8 = 1;
    pub(crate) const AS_PATH: u8 = 2;
    pub(crate) const NEXT_HOP: u8 = 3;
    pub(crate) const MED: u8 = 4;
    pub(crate) const LOCAL_PREF: u8 = 5;
    pub(crate) const ATOMIC_AGGREGATE: u8 = 6;
    pub(crate) const AGGREGATOR: u8 = 7;
    pub(crate) const COMMUNITIES: u8 = 8;
    pub(crate) const MP_REACH: u8 = 14;
    pub(crate) const MP_UNREACH: u8 = 15;
    pub(crate) const EXT_COMMUNITIES: u8 = 16;
    pub(crate) const AS4_PATH: u8 = 17;
    pub(crate) const AS4_AGGREGATOR: u8 = 18;
    pub(crate) const LARGE_COMMUNITIES: u8 = 32;
}

/// The optional and transitive bits each attribute we know must carry (RFC 4271 5,
/// RFC 4760 3/4, RFC 1997, RFC 4360 2, RFC 6793 3, RFC 8092 3).
fn expected_flags(c: u8) -> Option<u8> {
    const WELL_KNOWN: u8 = FLAG_TRANSITIVE;
    const OPT_TRANS: u8 = FLAG_OPTIONAL | FLAG_TRANSITIVE;
    match c {
        code::ORIGIN | code::AS_PATH | code::NEXT_HOP | code::LOCAL_PREF => Some(WELL_KNOWN),
        code::ATOMIC_AGGREGATE => Some(WELL_KNOWN),
        code::MED | code::MP_REACH | code::MP_UNREACH => Some(FLAG_OPTIONAL),
        code::AGGREGATOR | code::COMMUNITIES | code::EXT_COMMUNITIES => Some(OPT_TRANS),
        code::AS4_PATH | code::AS4_AGGREGATOR | code::LARGE_COMMUNITIES => Some(OPT_TRANS),
        _ => None,
    }
}

/// Which attribute codes occurred in an UPDATE.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Seen([u64; 4]);

impl Seen {
    /// True if `code` occurred.
    pub(crate) fn has(&self, code: u8) -> bool {
        let i = usize::from(code);
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set(&mut self, code: u8) {
        let i = usize::from(code);
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
}

/// The attribute list of one UPDATE, decoded.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// Everything but MP_REACH / MP_UNREACH.
    pub(crate) attrs: Attributes,
    /// MP_REACH_NLRI of a family we route.
    pub(crate) mp_reach: Option<MpReach>,
    /// MP_UNREACH_NLRI of a family we route.
    pub(crate) mp_unreach: Option<MpUnreach>,
    /// Codes present (first occurrences, before any discard).
    pub(crate) seen: Seen,
    /// The first error that calls for "treat-as-withdraw" (RFC 7606 2).
    pub(crate) withdraw: Option<String>,
}

/// State while walking the list.
struct Walk<'c> {
    codec: &'c Codec,
    out: Parsed,
    as4_path: Option<AsPath>,
    as4_aggregator: Option<(u32, Ipv4Addr)>,
}

impl Walk<'_> {
    fn withdraw(&mut self, why: String) {
        self.out.withdraw.get_or_insert(why);
    }
}

/// Decodes a path attribute list (RFC 4271 4.3) with the RFC 7606 rules.
pub(crate) fn parse(data: &[u8], codec: &Codec) -> Result<Parsed, DecodeError> {
    let mut w = Walk {
        codec,
        out: Parsed {
            attrs: Attributes::default(),
            mp_reach: None,
            mp_unreach: None,
            seen: Seen::default(),
            withdraw: None,
        },
        as4_path: None,
        as4_aggregator: None,
    };
    let mut r = Reader::new(data);
    while !r.is_empty() {
        let start = data.len() - r.remaining();
        let flags = r.u8().unwrap_or_default();
        let header = match (r.u8(), flags & FLAG_EXTENDED_LENGTH != 0) {
            (Some(c), true) => r.u16().map(|l| (c, usize::from(l))),
            (Some(c), false) => r.u8().map(|l| (c, usize::from(l))),
            (None, _) => None,
        };
        // RFC 7606 4: an attribute header or value running past the attribute list is a
        // framing error: treat-as-withdraw, and nothing after it can be found.
        let Some((c, len)) = header else {
            w.withdraw("attribute list framing error: truncated attribute header".into());
            break;
        };
        let Some(value) = r.take(len) else {
            w.withdraw(format!(
                "attribute list framing error: attribute {c} of {len} bytes overruns the list"
            ));
            break;
        };
        let raw = data
            .get(start..data.len() - r.remaining())
            .unwrap_or_default();
        one(&mut w, flags, c, value, raw)?;
    }
    if !w.codec.four_octet_as {
        merge_as4(&mut w);
    }
    // Type-code order, as the encoder writes them: equal attribute sets compare equal
    // whatever order a speaker sent them in.
    w.out.attrs.other.sort_by_key(|r| r.code);
    Ok(w.out)
}

/// One attribute.
fn one(w: &mut Walk<'_>, flags: u8, c: u8, value: &[u8], raw: &[u8]) -> Result<(), DecodeError> {
    // RFC 7606 3 (g): MP_REACH / MP_UNREACH twice is Malformed Attribute List; any other
    // attribute: keep the first, discard the others.
    if w.out.seen.has(c) {
        if c == code::MP_REACH || c == code::MP_UNREACH {
            return Err(update_error(
                1,
                Vec::new(),
                format!("malformed attribute list: attribute {c} appears twice"),
            ));
        }
        return Ok(());
    }
    w.out.seen.set(c);
    // RFC 6793 section 3: a NEW speaker talking to a NEW speaker discards these.
    if w.codec.four_octet_as && (c == code::AS4_PATH || c == code::AS4_AGGREGATOR) {
        return Ok(());
    }
    let Some(expected) = expected_flags(c) else {
        // RFC 4271 6.3: a well-known attribute we don't know is an error (data: the
        // attribute); optional ones are kept for the RIB to pass on or drop.
        if flags & FLAG_OPTIONAL == 0 {
            return Err(update_error(
                2,
                raw.to_vec(),
                format!("unrecognized well-known attribute {c}"),
            ));
        }
        w.out.attrs.other.push(RawAttribute {
            flags: flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE | FLAG_PARTIAL),
            code: c,
            value: value.to_vec(),
        });
        return Ok(());
    };
    let len = value.len();
    // RFC 7606 3 (c): optional/transitive bits in conflict with the type make the
    // attribute malformed: treat-as-withdraw, except where the attribute's own rules
    // say "discard" (AS4_PATH / AS4_AGGREGATOR, RFC 6793 section 6).
    if flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) != expected {
        if c == code::AS4_PATH || c == code::AS4_AGGREGATOR {
            return Ok(());
        }
        w.withdraw(format!("attribute {c} with wrong flags {flags:#04x}"));
        if c != code::MP_REACH && c != code::MP_UNREACH {
            return Ok(());
        }
    }
    let mut v = Reader::new(value);
    let four = w.codec.four_octet_as;
    let a = &mut w.out.attrs;
    match c {
        // RFC 7606 7.1: bad length or value: treat-as-withdraw.
        code::ORIGIN => match (v.u8(), len) {
            (Some(0), 1) => a.origin = Origin::Igp,
            (Some(1), 1) => a.origin = Origin::Egp,
            (Some(2), 1) => a.origin = Origin::Incomplete,
            _ => w.withdraw(format!("malformed ORIGIN ({len} bytes: {value:02x?})")),
        },
        // RFC 7606 7.2 and RFC 7607 2: malformed, or AS 0: treat-as-withdraw.
        code::AS_PATH => match as_path(value, if four { 4 } else { 2 }) {
            Ok(p) if p.contains(0) => w.withdraw("AS_PATH contains AS 0".into()),
            Ok(p) => a.as_path = p,
            Err(why) => w.withdraw(format!("malformed AS_PATH: {why}")),
        },
        // RFC 7606 7.3.
        code::NEXT_HOP => match (v.array::<4>(), len) {
            (Some(nh), 4) => a.next_hop = Some(Ipv4Addr::from(nh)),
            _ => w.withdraw(format!("NEXT_HOP of {len} bytes")),
        },
        // RFC 7606 7.4 / 7.5.
        code::MED | code::LOCAL_PREF => match (v.u32(), len) {
            (Some(x), 4) if c == code::MED => a.med = Some(x),
            (Some(x), 4) => a.local_pref = Some(x),
            _ => w.withdraw(format!("attribute {c} of {len} bytes instead of 4")),
        },
        // RFC 7606 7.6: bad length: attribute discard.
        code::ATOMIC_AGGREGATE => a.atomic_aggregate = len == 0,
        // RFC 7606 7.7 (and RFC 7607 for AS 0): attribute discard.
        code::AGGREGATOR => {
            let asn = if four {
                v.u32()
            } else {
                v.u16().map(u32::from)
            };
            if let (Some(asn), Some(ip), true) = (asn, v.array::<4>(), v.is_empty()) {
                if asn != 0 {
                    a.aggregator = Some((asn, Ipv4Addr::from(ip)));
                }
            }
        }
        // RFC 7606 7.8 / 7.14, RFC 8092 5: not a non-zero multiple: treat-as-withdraw.
        code::COMMUNITIES if len > 0 && len.is_multiple_of(4) => {
            a.communities = value
                .chunks_exact(4)
                .filter_map(|c| c.try_into().ok().map(u32::from_be_bytes))
                .collect();
        }
        code::EXT_COMMUNITIES if len > 0 && len.is_multiple_of(8) => {
            a.ext_communities = value
                .chunks_exact(8)
                .filter_map(|c| c.try_into().ok())
                .collect();
        }
        code::LARGE_COMMUNITIES if len > 0 && len.is_multiple_of(12) => {
            // RFC 8092 5: duplicates are dropped.
            let mut dup = HashSet::new();
            a.large_communities = value
                .chunks_exact(12)
                .filter_map(|c| {
                    let mut r = Reader::new(c);
                    Some([r.u32()?, r.u32()?, r.u32()?])
                })
                .filter(|lc| dup.insert(*lc))
                .collect();
        }
        code::COMMUNITIES | code::EXT_COMMUNITIES | code::LARGE_COMMUNITIES => {
            w.withdraw(format!("attribute {c} of {len} bytes"));
        }
        // RFC 6793 section 6 and RFC 7607: malformed or AS 0: attribute discard. RFC 6793
        // section 6 also says confederation segments in AS4_PATH are dropped.
        code::AS4_PATH => {
            if let Ok(mut p) = as_path(value, 4) {
                if !p.contains(0) {
                    p.segments
                        .retain(|s| matches!(s, AsSegment::Sequence(_) | AsSegment::Set(_)));
                    w.as4_path = Some(p);
                }
            }
        }
        code::AS4_AGGREGATOR => {
            if let (Some(asn), Some(ip), true) = (v.u32(), v.array::<4>(), v.is_empty()) {
                if asn != 0 {
                    w.as4_aggregator = Some((asn, Ipv4Addr::from(ip)));
                }
            }
        }
        code::MP_REACH => w.out.mp_reach = mp_reach(value, raw)?,
        code::MP_UNREACH => w.out.mp_unreach = mp_unreach(value, raw)?,
        _ => {}
    }
    Ok(())
}

/// AS_PATH / AS4_PATH segments (RFC 4271 4.3, RFC 5065 3) with `width`-byte ASNs.
/// RFC 7606 7.2: malformed if a segment type is unknown, a segment is empty, runs past
/// the attribute, or a single byte is left over.
fn as_path(value: &[u8], width: usize) -> Result<AsPath, String> {
    let mut r = Reader::new(value);
    let mut segments = Vec::new();
    while !r.is_empty() {
        let (Some(typ), Some(n)) = (r.u8(), r.u8()) else {
            return Err("a single byte after the last segment".into());
        };
        if n == 0 {
            return Err("an empty segment".into());
        }
        let bytes = r
            .take(usize::from(n) * width)
            .ok_or_else(|| format!("a segment of {n} ASNs runs past the attribute"))?;
        let asns: Vec<u32> = bytes
            .chunks_exact(width)
            .map(|c| c.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
            .collect();
        segments.push(match typ {
            1 => AsSegment::Set(asns),
            2 => AsSegment::Sequence(asns),
            3 => AsSegment::ConfedSequence(asns),
            4 => AsSegment::ConfedSet(asns),
            t => return Err(format!("unknown segment type {t}")),
        });
    }
    Ok(AsPath { segments })
}

/// RFC 6793 4.2.3: rebuild the 4-byte path and aggregator from an OLD speaker's
/// AS_PATH / AGGREGATOR and the AS4_PATH / AS4_AGGREGATOR carried through it.
fn merge_as4(w: &mut Walk<'_>) {
    let a = &mut w.out.attrs;
    if let Some((agg_as, _)) = a.aggregator {
        if let Some(agg4) = w.as4_aggregator {
            // Aggregated by an OLD speaker: AS4_AGGREGATOR and AS4_PATH are stale.
            if agg_as != u32::from(AS_TRANS) {
                return;
            }
            a.aggregator = Some(agg4);
        }
    }
    let Some(as4) = w.as4_path.take() else {
        return;
    };
    if !w.out.seen.has(code::AS_PATH) {
        return;
    }
    // Lengths as in the decision process: a set counts 1, confederation segments 0.
    let (n2, n4) = (a.as_path.len(), as4.len());
    if n2 < n4 {
        return;
    }
    // Take the leading n2 - n4 ASNs of AS_PATH (with the confederation segments next to
    // them), then all of AS4_PATH.
    let mut keep = n2 - n4;
    let mut merged: Vec<AsSegment> = Vec::new();
    for s in &a.as_path.segments {
        let n = match s {
            AsSegment::Sequence(v) => v.len(),
            AsSegment::Set(_) => 1,
            _ => 0,
        };
        if keep < n {
            if let (AsSegment::Sequence(v), true) = (s, keep > 0) {
                merged.push(AsSegment::Sequence(v.iter().take(keep).copied().collect()));
            }
            break;
        }
        keep -= n;
        merged.push(s.clone());
    }
    for s in as4.segments {
        // One sequence where the AS_PATH had one (the split is an artifact of the merge).
        if let (Some(AsSegment::Sequence(prev)), AsSegment::Sequence(next)) =
            (merged.last_mut(), &s)
        {
            if prev.len() + next.len() <= 255 {
                prev.extend_from_slice(next);
                continue;
            }
        }
        merged.push(s);
    }
    a.as_path = AsPath { segments: merged };
}

/// RFC 4760 3. Families we don't route are ignored (`Ok(None)`); for ours, a malformed
/// attribute (too short, next hop of an unexpected length) resets the session with
/// 3/9 Optional Attribute Error (RFC 7606 7.11 allows that or "AFI/SAFI disable"), and
/// NLRI syntax errors with 3/10 (RFC 7606 5.3).
fn mp_reach(value: &[u8], raw: &[u8]) -> Result<Option<MpReach>, DecodeError> {
    let bad =
        |why: String| update_error(9, raw.to_vec(), format!("malformed MP_REACH_NLRI: {why}"));
    let mut r = Reader::new(value);
    let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
        return Err(bad("shorter than 3 bytes".into()));
    };
    let Some(family) = Family::from_afi_safi(afi, safi) else {
        return Ok(None);
    };
    let nh = r
        .u8()
        .and_then(|n| r.take(usize::from(n)))
        .ok_or_else(|| bad("next hop runs past the attribute".into()))?;
    // The reserved byte (formerly the SNPA count, RFC 4760 3) is skipped.
    r.u8()
        .ok_or_else(|| bad("no reserved byte after the next hop".into()))?;
    let next_hop = next_hop(family, nh)
        .ok_or_else(|| bad(format!("next hop of {} bytes for {family:?}", nh.len())))?;
    let nlri = prefixes_mp(r.rest(), family, "MP_REACH_NLRI")?;
    Ok(Some(MpReach {
        family,
        next_hop,
        nlri,
    }))
}

/// The next hop field of MP_REACH_NLRI: 4 bytes (IPv4 NLRI), 16 or 32 (RFC 2545 for
/// IPv6, RFC 8950 for IPv4 NLRI), and for IPv6 the RFC 4659-style 24 / 48 bytes whose
/// route distinguishers are zero (BIRD accepts these too).
fn next_hop(family: Family, nh: &[u8]) -> Option<NextHop> {
    let mut r = Reader::new(nh);
    let v6 = |r: &mut Reader<'_>| r.array::<16>().map(Ipv6Addr::from);
    let rd = |r: &mut Reader<'_>| r.take(8).is_some_and(|b| b.iter().all(|&x| x == 0));
    match (family, nh.len()) {
        (Family::Ipv4Unicast, 4) => r.array::<4>().map(|a| NextHop::V4(Ipv4Addr::from(a))),
        (_, 16) => v6(&mut r).map(NextHop::V6),
        (_, 32) => Some(NextHop::V6Pair(v6(&mut r)?, v6(&mut r)?)),
        (Family::Ipv6Unicast, 24) if rd(&mut r) => v6(&mut r).map(NextHop::V6),
        (Family::Ipv6Unicast, 48) if rd(&mut r) => {
            let g = v6(&mut r)?;
            rd(&mut r).then_some(())?;
            Some(NextHop::V6Pair(g, v6(&mut r)?))
        }
        _ => None,
    }
}

/// RFC 4760 4: AFI, SAFI, withdrawn routes. Same error rules as [`mp_reach`].
fn mp_unreach(value: &[u8], raw: &[u8]) -> Result<Option<MpUnreach>, DecodeError> {
    let mut r = Reader::new(value);
    let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
        return Err(update_error(
            9,
            raw.to_vec(),
            "malformed MP_UNREACH_NLRI: shorter than 3 bytes",
        ));
    };
    let Some(family) = Family::from_afi_safi(afi, safi) else {
        return Ok(None);
    };
    let withdrawn = prefixes_mp(r.rest(), family, "MP_UNREACH_NLRI")?;
    Ok(Some(MpUnreach { family, withdrawn }))
}
