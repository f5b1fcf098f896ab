//! Messages to bytes.
//!
//! What it is: the wire form of every [`Message`], header length back-filled; UPDATE
//! path attributes in type-code order with MP_REACH_NLRI / MP_UNREACH_NLRI at their
//! place (14, 15); the extended-length flag set exactly when a value exceeds 255 bytes;
//! AS paths as the [`Codec`] says (4-byte ASNs, or 2-byte with AS_TRANS plus AS4_PATH /
//! AS4_AGGREGATOR, RFC 6793 4.2.2); and [`update_split`], which spreads one [`Update`]
//! over as many messages as `codec.max_len()` requires.
//!
//! What it is not: a validator. Values are written as given (the caller builds them);
//! only what the wire cannot hold is adapted (segments over 255 ASNs are split, ASNs
//! over 65535 become AS_TRANS on 2-byte sessions). `Update::treat_as_withdraw` is a
//! decoding verdict and is not encoded.

use super::attrs::code;
use super::decode::msg_type;
use super::{
    AsSegment, Attributes, Capability, Codec, Family, Message, MpReach, NextHop, Open,
    RawAttribute, Update, AS_TRANS, FLAG_EXTENDED_LENGTH, FLAG_OPTIONAL, FLAG_TRANSITIVE,
    HEADER_LEN,
};
use ipnet::{IpNet, Ipv4Net};

/// The 2-byte "My Autonomous System" / AS_PATH / AGGREGATOR value for `asn`
/// (RFC 6793 4.2.2: AS_TRANS when it does not fit).
fn two_byte_as(asn: u32) -> u16 {
    u16::try_from(asn).unwrap_or(AS_TRANS)
}

/// Writes a big-endian u16 at `at` (a place reserved earlier), saturating: a value
/// that does not fit means the caller built something the wire cannot carry.
fn backfill(out: &mut [u8], at: usize, value: usize) {
    debug_assert!(value <= usize::from(u16::MAX), "field overflow: {value}");
    let v = u16::try_from(value).unwrap_or(u16::MAX);
    if let Some(f) = out.get_mut(at..at + 2) {
        f.copy_from_slice(&v.to_be_bytes());
    }
}

/// Header, body from `body`, length back-filled (RFC 4271 4.1).
fn with_header(out: &mut Vec<u8>, typ: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&[0, 0, typ]);
    body(out);
    let len = out.len() - start;
    backfill(out, start + 16, len);
}

/// Appends `msg`'s wire form.
pub(crate) fn message(msg: &Message, codec: &Codec, out: &mut Vec<u8>) {
    match msg {
        Message::Open(o) => with_header(out, msg_type::OPEN, |out| open(o, out)),
        Message::Update(u) => {
            let ab = AttrBytes::new(u.attrs.as_ref(), announces(u), codec);
            update_whole(u, &ab, out);
        }
        Message::Notification(n) => with_header(out, msg_type::NOTIFICATION, |out| {
            out.extend_from_slice(&[n.code, n.subcode]);
            out.extend_from_slice(&n.data);
        }),
        Message::Keepalive => with_header(out, msg_type::KEEPALIVE, |_| {}),
        Message::RouteRefresh(r) => with_header(out, msg_type::ROUTE_REFRESH, |out| {
            out.extend_from_slice(&r.afi.to_be_bytes());
            out.extend_from_slice(&[r.subtype, r.safi]);
        }),
    }
}

/// OPEN (RFC 4271 4.2): all capabilities in one optional parameter of type 2 (as BIRD
/// and FRR send them, RFC 5492 4), in the RFC 9072 extended format if they exceed 253
/// bytes.
fn open(o: &Open, out: &mut Vec<u8>) {
    out.push(o.version);
    out.extend_from_slice(&two_byte_as(o.asn).to_be_bytes());
    out.extend_from_slice(&o.hold_time.to_be_bytes());
    out.extend_from_slice(&o.router_id.octets());
    let mut caps = Vec::new();
    for c in &o.capabilities {
        capability(c, &mut caps);
    }
    if caps.is_empty() {
        out.push(0);
    } else if caps.len() + 2 <= 255 {
        out.extend_from_slice(&[(caps.len() + 2) as u8, 2, caps.len() as u8]);
        out.extend_from_slice(&caps);
    } else {
        // RFC 9072 2: Non-Ext OP Len = 255, Non-Ext OP Type = 255, 2-byte lengths.
        out.extend_from_slice(&[255, 255]);
        let at = out.len();
        out.extend_from_slice(&[0, 0, 2, 0, 0]);
        out.extend_from_slice(&caps);
        backfill(out, at, caps.len() + 3);
        backfill(out, at + 3, caps.len());
    }
}

/// One capability: code, length, value (RFC 5492 4).
fn capability(c: &Capability, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    let code = match c {
        Capability::Multiprotocol { afi, safi } => {
            out.extend_from_slice(&afi.to_be_bytes());
            out.extend_from_slice(&[0, *safi]);
            1
        }
        Capability::RouteRefresh => 2,
        Capability::ExtendedNextHop(entries) => {
            for e in entries {
                for x in [e.afi, e.safi, e.nh_afi] {
                    out.extend_from_slice(&x.to_be_bytes());
                }
            }
            5
        }
        Capability::ExtendedMessage => 6,
        Capability::FourOctetAs(asn) => {
            out.extend_from_slice(&asn.to_be_bytes());
            65
        }
        Capability::AddPath(entries) => {
            for (afi, safi, send_receive) in entries {
                out.extend_from_slice(&afi.to_be_bytes());
                out.extend_from_slice(&[*safi, *send_receive]);
            }
            69
        }
        Capability::Other(code, value) => {
            out.extend_from_slice(value);
            *code
        }
    };
    let len = out.len() - start - 2;
    debug_assert!(len <= 255, "capability {code} of {len} bytes");
    if let Some(h) = out.get_mut(start..start + 2) {
        h.copy_from_slice(&[code, u8::try_from(len).unwrap_or(u8::MAX)]);
    }
}

/// True when the UPDATE announces routes (and so needs ORIGIN and AS_PATH).
fn announces(u: &Update) -> bool {
    !u.nlri.is_empty() || u.mp_reach.is_some()
}

/// One path attribute: flags (extended length computed), code, length, value from `f`.
fn put_attr(out: &mut Vec<u8>, flags: u8, code: u8, f: impl FnOnce(&mut Vec<u8>)) {
    let hdr = out.len();
    out.extend_from_slice(&[flags | FLAG_EXTENDED_LENGTH, code, 0, 0]);
    f(out);
    let len = out.len() - hdr - 4;
    if len <= 255 {
        // RFC 4271 4.3: one length byte; move the value down by one.
        out.copy_within(hdr + 4.., hdr + 3);
        out.truncate(out.len() - 1);
        if let Some(h) = out.get_mut(hdr..hdr + 3) {
            h.copy_from_slice(&[flags & !FLAG_EXTENDED_LENGTH, code, len as u8]);
        }
    } else {
        backfill(out, hdr + 2, len);
    }
}

/// Encoded size of an attribute whose value has `len` bytes.
fn attr_size(len: usize) -> usize {
    len + if len > 255 { 4 } else { 3 }
}

/// AS path segments with 4- or 2-byte ASNs; sequences and sets longer than 255 are
/// split (RFC 4271 4.3: the count is one byte), empty segments are left out.
fn put_segments(out: &mut Vec<u8>, segments: &[AsSegment], four: bool) {
    for s in segments {
        let (typ, asns) = match s {
            AsSegment::Set(v) => (1, v),
            AsSegment::Sequence(v) => (2, v),
            AsSegment::ConfedSequence(v) => (3, v),
            AsSegment::ConfedSet(v) => (4, v),
        };
        for chunk in asns.chunks(255) {
            // chunks(255): the count fits in a byte.
            out.extend_from_slice(&[typ, chunk.len() as u8]);
            for &asn in chunk {
                if four {
                    out.extend_from_slice(&asn.to_be_bytes());
                } else {
                    out.extend_from_slice(&two_byte_as(asn).to_be_bytes());
                }
            }
        }
    }
}

/// An UPDATE's path attributes except MP_REACH / MP_UNREACH, encoded once: those with
/// codes below 14 (`lo`) and above 15 (`hi`), so the MP attributes go in between.
pub(crate) struct AttrBytes {
    lo: Vec<u8>,
    hi: Vec<u8>,
}

impl AttrBytes {
    /// ORIGIN and AS_PATH are written when the UPDATE announces routes or carries any
    /// attribute at all; a withdrawal with default attributes gets none.
    fn new(attrs: Option<&Attributes>, announce: bool, codec: &Codec) -> AttrBytes {
        let mut ab = AttrBytes {
            lo: Vec::new(),
            hi: Vec::new(),
        };
        let Some(a) = attrs else {
            return ab;
        };
        let mandatory = announce || *a != Attributes::default();
        let mut others: Vec<&RawAttribute> = a.other.iter().collect();
        others.sort_by_key(|r| r.code);
        let mut others = others.into_iter().peekable();
        const KNOWN: [u8; 12] = [
            code::ORIGIN,
            code::AS_PATH,
            code::NEXT_HOP,
            code::MED,
            code::LOCAL_PREF,
            code::ATOMIC_AGGREGATE,
            code::AGGREGATOR,
            code::COMMUNITIES,
            code::EXT_COMMUNITIES,
            code::AS4_PATH,
            code::AS4_AGGREGATOR,
            code::LARGE_COMMUNITIES,
        ];
        for k in KNOWN {
            while let Some(r) = others.next_if(|r| r.code < k) {
                put_attr(ab.part(r.code), r.flags, r.code, |o| {
                    o.extend_from_slice(&r.value)
                });
            }
            known(ab.part(k), k, a, mandatory, codec);
        }
        for r in others {
            put_attr(ab.part(r.code), r.flags, r.code, |o| {
                o.extend_from_slice(&r.value)
            });
        }
        ab
    }

    fn part(&mut self, code: u8) -> &mut Vec<u8> {
        if code < code::MP_REACH {
            &mut self.lo
        } else {
            &mut self.hi
        }
    }

    fn len(&self) -> usize {
        self.lo.len() + self.hi.len()
    }
}

/// Attribute `k` of `a`, if it has a value (RFC 4271 4.3 and 5, RFC 6793 4.2.2).
fn known(out: &mut Vec<u8>, k: u8, a: &Attributes, mandatory: bool, codec: &Codec) {
    const WELL_KNOWN: u8 = FLAG_TRANSITIVE;
    const OPT_TRANS: u8 = FLAG_OPTIONAL | FLAG_TRANSITIVE;
    let four = codec.four_octet_as;
    let has_as4 = |v: &[u32]| v.iter().any(|&asn| asn > u32::from(u16::MAX));
    match k {
        code::ORIGIN if mandatory => put_attr(out, WELL_KNOWN, k, |o| {
            o.push(match a.origin {
                super::Origin::Igp => 0,
                super::Origin::Egp => 1,
                super::Origin::Incomplete => 2,
            })
        }),
        code::AS_PATH if mandatory => put_attr(out, WELL_KNOWN, k, |o| {
            put_segments(o, &a.as_path.segments, four)
        }),
        code::NEXT_HOP => {
            if let Some(nh) = a.next_hop {
                put_attr(out, WELL_KNOWN, k, |o| o.extend_from_slice(&nh.octets()));
            }
        }
        code::MED => {
            if let Some(med) = a.med {
                put_attr(out, FLAG_OPTIONAL, k, |o| {
                    o.extend_from_slice(&med.to_be_bytes())
                });
            }
        }
        code::LOCAL_PREF => {
            if let Some(lp) = a.local_pref {
                put_attr(out, WELL_KNOWN, k, |o| {
                    o.extend_from_slice(&lp.to_be_bytes())
                });
            }
        }
        code::ATOMIC_AGGREGATE if a.atomic_aggregate => put_attr(out, WELL_KNOWN, k, |_| {}),
        code::AGGREGATOR => {
            if let Some((asn, ip)) = a.aggregator {
                put_attr(out, OPT_TRANS, k, |o| {
                    if four {
                        o.extend_from_slice(&asn.to_be_bytes());
                    } else {
                        o.extend_from_slice(&two_byte_as(asn).to_be_bytes());
                    }
                    o.extend_from_slice(&ip.octets());
                });
            }
        }
        code::COMMUNITIES if !a.communities.is_empty() => put_attr(out, OPT_TRANS, k, |o| {
            for c in &a.communities {
                o.extend_from_slice(&c.to_be_bytes());
            }
        }),
        code::EXT_COMMUNITIES if !a.ext_communities.is_empty() => {
            put_attr(out, OPT_TRANS, k, |o| {
                for c in &a.ext_communities {
                    o.extend_from_slice(c);
                }
            })
        }
        // RFC 6793 4.2.2: to an OLD speaker, the real path in AS4_PATH (without
        // confederation segments) whenever some ASN needs 4 bytes.
        code::AS4_PATH if !four && mandatory => {
            let segments: Vec<AsSegment> = a
                .as_path
                .segments
                .iter()
                .filter(|s| matches!(s, AsSegment::Sequence(_) | AsSegment::Set(_)))
                .cloned()
                .collect();
            let needed = segments.iter().any(|s| match s {
                AsSegment::Sequence(v) | AsSegment::Set(v) => has_as4(v),
                _ => false,
            });
            if needed {
                put_attr(out, OPT_TRANS, k, |o| put_segments(o, &segments, true));
            }
        }
        code::AS4_AGGREGATOR if !four => {
            if let Some((asn, ip)) = a.aggregator.filter(|(asn, _)| has_as4(&[*asn])) {
                put_attr(out, OPT_TRANS, k, |o| {
                    o.extend_from_slice(&asn.to_be_bytes());
                    o.extend_from_slice(&ip.octets());
                });
            }
        }
        code::LARGE_COMMUNITIES if !a.large_communities.is_empty() => {
            put_attr(out, OPT_TRANS, k, |o| {
                for lc in &a.large_communities {
                    for x in lc {
                        o.extend_from_slice(&x.to_be_bytes());
                    }
                }
            })
        }
        _ => {}
    }
}

/// Bytes of one prefix in an NLRI field: length in bits, then just enough bytes.
fn prefix_size(len: u8) -> usize {
    1 + usize::from(len).div_ceil(8)
}

fn put_prefix(out: &mut Vec<u8>, len: u8, octets: &[u8]) {
    out.push(len);
    out.extend(octets.iter().take(usize::from(len).div_ceil(8)));
}

fn put_v4(out: &mut Vec<u8>, p: &Ipv4Net) {
    put_prefix(out, p.prefix_len(), &p.addr().octets());
}

fn put_net(out: &mut Vec<u8>, p: &IpNet) {
    match p {
        IpNet::V4(n) => put_v4(out, n),
        IpNet::V6(n) => put_prefix(out, n.prefix_len(), &n.addr().octets()),
    }
}

fn next_hop_len(nh: &NextHop) -> usize {
    match nh {
        NextHop::V4(_) => 4,
        NextHop::V6(_) => 16,
        NextHop::V6Pair(..) => 32,
    }
}

/// The body of an UPDATE (RFC 4271 4.3, RFC 4760 3 and 4).
fn update_body(
    out: &mut Vec<u8>,
    withdrawn: &[Ipv4Net],
    ab: &AttrBytes,
    reach: Option<(&MpReach, &[IpNet])>,
    unreach: Option<(Family, &[IpNet])>,
    nlri: &[Ipv4Net],
) {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    for p in withdrawn {
        put_v4(out, p);
    }
    let len = out.len() - at - 2;
    backfill(out, at, len);
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&ab.lo);
    if let Some((m, nlri)) = reach {
        put_attr(out, FLAG_OPTIONAL, code::MP_REACH, |o| {
            let (afi, safi) = m.family.afi_safi();
            o.extend_from_slice(&afi.to_be_bytes());
            o.extend_from_slice(&[safi, next_hop_len(&m.next_hop) as u8]);
            match m.next_hop {
                NextHop::V4(a) => o.extend_from_slice(&a.octets()),
                NextHop::V6(a) => o.extend_from_slice(&a.octets()),
                NextHop::V6Pair(g, l) => {
                    o.extend_from_slice(&g.octets());
                    o.extend_from_slice(&l.octets());
                }
            }
            o.push(0);
            for p in nlri {
                put_net(o, p);
            }
        });
    }
    if let Some((family, withdrawn)) = unreach {
        put_attr(out, FLAG_OPTIONAL, code::MP_UNREACH, |o| {
            let (afi, safi) = family.afi_safi();
            o.extend_from_slice(&afi.to_be_bytes());
            o.push(safi);
            for p in withdrawn {
                put_net(o, p);
            }
        });
    }
    out.extend_from_slice(&ab.hi);
    let len = out.len() - at - 2;
    backfill(out, at, len);
    for p in nlri {
        put_v4(out, p);
    }
}

/// One UPDATE message with all of `u`, attributes pre-encoded in `ab`.
fn update_whole(u: &Update, ab: &AttrBytes, out: &mut Vec<u8>) {
    let reach = u.mp_reach.as_ref().map(|m| (m, m.nlri.as_slice()));
    let unreach = u
        .mp_unreach
        .as_ref()
        .map(|m| (m.family, m.withdrawn.as_slice()));
    with_header(out, msg_type::UPDATE, |out| {
        update_body(out, &u.withdrawn, ab, reach, unreach, &u.nlri)
    });
}

/// Splits `items` into consecutive runs whose message size `total(sum of item sizes)`
/// stays within `max`. Items too large to fit even alone are returned apart.
fn runs<T>(
    items: &[T],
    size: impl Fn(&T) -> usize,
    total: impl Fn(usize) -> usize,
    max: usize,
) -> (Vec<&[T]>, Vec<&T>) {
    let (mut out, mut unfit) = (Vec::new(), Vec::new());
    let (mut start, mut sum) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let s = size(item);
        if total(sum + s) <= max {
            sum += s;
            continue;
        }
        if let Some(run) = items.get(start..i).filter(|r| !r.is_empty()) {
            out.push(run);
        }
        if total(s) <= max {
            (start, sum) = (i, s);
        } else {
            unfit.push(item);
            (start, sum) = (i + 1, 0);
        }
    }
    if let Some(run) = items.get(start..).filter(|r| !r.is_empty()) {
        out.push(run);
    }
    (out, unfit)
}

/// Size of a message with header and empty withdrawn / attribute length fields.
const UPDATE_MIN: usize = HEADER_LEN + 4;

/// Appends one or more UPDATEs carrying `u`'s routes, none longer than
/// `codec.max_len()`. If `u` fits, that is exactly [`message`]'s encoding. Otherwise:
/// first the withdrawals (classic field, then MP_UNREACH_NLRI, chunked, no other
/// attributes), then the announcements (classic NLRI, then MP_REACH_NLRI, chunked, the
/// attributes repeated in each). An empty MP_UNREACH_NLRI (an End-of-RIB marker) is
/// dropped when splitting: sent alone it would mean End-of-RIB. Routes whose
/// attributes are too large to fit in any message are sent as withdrawals instead, as
/// BIRD does, so the neighbor does not keep an older path for them.
pub(crate) fn update_split(u: &Update, codec: &Codec, out: &mut Vec<u8>) {
    let max = codec.max_len();
    let ab = AttrBytes::new(u.attrs.as_ref(), announces(u), codec);
    let v4_size = |p: &Ipv4Net| prefix_size(p.prefix_len());
    let net_size = |p: &IpNet| prefix_size(p.prefix_len());
    let reach_value = |m: &MpReach, sum: usize| 5 + next_hop_len(&m.next_hop) + sum;
    let w_sum: usize = u.withdrawn.iter().map(v4_size).sum();
    let n_sum: usize = u.nlri.iter().map(v4_size).sum();
    let reach = u.mp_reach.as_ref().map_or(0, |m| {
        attr_size(reach_value(m, m.nlri.iter().map(net_size).sum()))
    });
    let unreach = u.mp_unreach.as_ref().map_or(0, |m| {
        attr_size(3 + m.withdrawn.iter().map(net_size).sum::<usize>())
    });
    if UPDATE_MIN + w_sum + ab.len() + reach + unreach + n_sum <= max {
        update_whole(u, &ab, out);
        return;
    }
    let base = UPDATE_MIN + ab.len();
    let (nlri_runs, nlri_unfit) = runs(&u.nlri, v4_size, |s| base + s, max);
    let (reach_runs, reach_unfit) = match &u.mp_reach {
        Some(m) => runs(
            &m.nlri,
            net_size,
            |s| base + attr_size(reach_value(m, s)),
            max,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let empty = AttrBytes {
        lo: Vec::new(),
        hi: Vec::new(),
    };
    // Withdrawals: the classic field, with the IPv4 routes that could not be announced.
    let withdrawn: Vec<Ipv4Net> = u.withdrawn.iter().chain(nlri_unfit).copied().collect();
    for run in runs(&withdrawn, v4_size, |s| UPDATE_MIN + s, max).0 {
        with_header(out, msg_type::UPDATE, |o| {
            update_body(o, run, &empty, None, None, &[])
        });
    }
    let mut groups: Vec<(Family, Vec<IpNet>)> = Vec::new();
    if let Some(m) = u.mp_unreach.as_ref().filter(|m| !m.withdrawn.is_empty()) {
        groups.push((m.family, m.withdrawn.clone()));
    }
    if let (Some(m), false) = (&u.mp_reach, reach_unfit.is_empty()) {
        match groups.iter_mut().find(|(f, _)| *f == m.family) {
            Some((_, g)) => g.extend(reach_unfit.iter().map(|p| **p)),
            None => groups.push((m.family, reach_unfit.iter().map(|p| **p).collect())),
        }
    }
    for (family, list) in &groups {
        let total = |s| UPDATE_MIN + attr_size(3 + s);
        for run in runs(list, net_size, total, max).0 {
            with_header(out, msg_type::UPDATE, |o| {
                update_body(o, &[], &empty, None, Some((*family, run)), &[])
            });
        }
    }
    for run in nlri_runs {
        with_header(out, msg_type::UPDATE, |o| {
            update_body(o, &[], &ab, None, None, run)
        });
    }
    if let Some(m) = &u.mp_reach {
        for run in reach_runs {
            with_header(out, msg_type::UPDATE, |o| {
                update_body(o, &[], &ab, Some((m, run)), None, &[])
            });
        }
    }
}
