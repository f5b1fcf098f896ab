//! The benchmark's BGP feed: a full table as UPDATE messages, encoded once, in memory,
//! before anything is timed.
//!
//! What it is:
//! - IPv4: a real full table as a real speaker sent it — the MRT capture
//!   `mrt/bgpdump_updates.et-header.2015.gz` (one iBGP session of PCH's AS3856, 89,679
//!   UPDATEs, 577,706 distinct prefixes), each UPDATE decoded with `rr_bgp`'s codec and
//!   rewritten as the feeder's eBGP advertisement: the feeder's ASN prepended (RFC 4271
//!   section 5.1.2), NEXT_HOP set to the feeder's address (5.1.3), LOCAL_PREF dropped
//!   (5.1.5: not sent to eBGP peers), MULTI_EXIT_DISC dropped (5.1.4: not passed on to
//!   other ASes), optional non-transitive attributes such as ORIGINATOR_ID and CLUSTER_LIST
//!   dropped (RFC 4456 section 8 / RFC 4271 section 5). AS paths, communities, aggregators,
//!   the capture's grouping of prefixes into UPDATEs and its few withdrawals stay as
//!   captured. The few captured UPDATEs a receiver must treat as withdrawn (RFC 7606; here
//!   AS_PATHs containing AS 0, RFC 7607) are left out and counted ([`LeftOut`]).
//! - IPv6: the real 2015 IPv6 table (`bgp_text/pyasn_ipasn6_20151101.dat.gz`, 27,693
//!   prefixes with their origin AS), one MP_REACH_NLRI UPDATE (RFC 4760) per origin AS
//!   with AS path `feeder origin`, split at 4096 bytes.
//! - Optionally a synthetic scale-up to more prefixes (the 1,000,000 IPv4 and
//!   200,000 IPv6): further rounds over the real UPDATEs, each with every prefix moved to
//!   another part of the address space ([`shift_v4`], [`shift_v6`]: the first octet, or
//!   the first 16 bits inside 2000::/3, offset per round; the prefix length and the
//!   UPDATE's attributes stay), keeping only prefixes not in the table yet, until the
//!   count is reached. So the length mix and attribute diversity stay the real table's.
//!   A count below the real table's takes its first prefixes instead.
//! - The End-of-RIB marker of each family (RFC 4724 section 2) closes the feed.
//!
//! What it is not: a model of today's table (2015 data: ~578k IPv4 prefixes, not ~1M),
//! of churn (there is none beyond the capture's withdrawals), or of the path diversity a
//! receiver sees from several peers (one peer, one path per prefix).

use super::mrt;
use anyhow::{bail, ensure, Context, Result};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rr_bgp::packet::{
    AsPath, AsSegment, Attributes, Codec, Family, Message, MpReach, NextHop, Origin, Update,
    FLAG_TRANSITIVE,
};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// The full IPv4 table as UPDATEs, relative to the data directory.
pub const MRT_FILE: &str = "mrt/bgpdump_updates.et-header.2015.gz";
/// The IPv6 table with origin ASNs, relative to the data directory.
pub const V6_FILE: &str = "bgp_text/pyasn_ipasn6_20151101.dat.gz";

/// What the feeder negotiates and the feed is encoded for: 4-byte ASNs (RFC 6793), no
/// extended messages (RFC 8654), so every UPDATE is at most 4096 bytes as in most feeds.
pub const CODEC: Codec = Codec {
    four_octet_as: true,
    extended_message: false,
};

/// The captured session negotiated 4-byte ASNs: its AS_PATHs hold 4-byte numbers (both
/// OPENs of the capture carry capability 65).
const CAPTURE_CODEC: Codec = CODEC;

/// How to build the feed.
#[derive(Clone, Debug)]
pub struct FeedSpec {
    /// The folder with `mrt/` and `bgp_text/` (the project's shared data).
    pub data_dir: PathBuf,
    /// The feeder's ASN, prepended to every path.
    pub feeder_asn: u32,
    /// NEXT_HOP of the IPv4 routes.
    pub next_hop_v4: Ipv4Addr,
    /// MP_REACH next hop of the IPv6 routes.
    pub next_hop_v6: Ipv6Addr,
    /// Distinct IPv4 prefixes wanted; `None`: the real table as captured.
    pub v4: Option<usize>,
    /// Distinct IPv6 prefixes wanted; `None`: the real table.
    pub v6: Option<usize>,
}

/// Counts for one family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FamilyCounts {
    /// Distinct prefixes in the receiver's table once the whole feed is applied.
    pub distinct: usize,
    /// Of them, prefixes from the real data (the rest are synthetic).
    pub real: usize,
    /// Prefixes announced, counting re-announcements.
    pub announced: usize,
    /// Prefixes withdrawn.
    pub withdrawn: usize,
    /// Prefixes of length /24 (IPv4) or /48 (IPv6): the most common length.
    pub common_length: usize,
}

/// The encoded feed and what a receiver must end up with.
pub struct Feed {
    /// UPDATE messages back to back, End-of-RIB markers last.
    pub bytes: Vec<u8>,
    /// Number of messages in `bytes`.
    pub messages: usize,
    pub v4: FamilyCounts,
    pub v6: FamilyCounts,
    /// Distinct path attribute sets (AS path, communities, ... as encoded).
    pub attribute_sets: usize,
    /// Captured UPDATEs not in the feed.
    pub left_out: LeftOut,
}

impl Feed {
    /// Distinct prefixes of both families a receiver must hold at the end.
    pub fn expected(&self) -> u64 {
        (self.v4.distinct + self.v6.distinct) as u64
    }
}

/// Reads a gzip file whole.
pub fn gunzip(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file))
        .read_to_end(&mut out)
        .with_context(|| format!("decompressing {}", path.display()))?;
    Ok(out)
}

/// Builds and encodes the feed.
pub fn build(spec: &FeedSpec) -> Result<Feed> {
    let mrt_bytes = gunzip(&spec.data_dir.join(MRT_FILE))?;
    let (v4_base, left_out) = capture_updates(&mrt_bytes, spec)?;
    drop(mrt_bytes);
    let v6_text = gunzip(&spec.data_dir.join(V6_FILE))?;
    let v6_base = v6_updates(&String::from_utf8_lossy(&v6_text), spec)?;
    drop(v6_text);

    let mut bytes = Vec::new();
    let mut attribute_sets = HashSet::new();
    let mut emit = |u: &Update, bytes: &mut Vec<u8>| {
        if let Some(a) = &u.attrs {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            a.hash(&mut h);
            attribute_sets.insert(h.finish());
        }
        u.encode_split(&CODEC, bytes);
    };
    let v4 = replay(&v4_base, spec.v4, &V4, |u| emit(u, &mut bytes))?;
    let v6 = replay(&v6_base, spec.v6, &V6, |u| emit(u, &mut bytes))?;
    for family in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
        Message::Update(Update::end_of_rib(family)).encode(&CODEC, &mut bytes);
    }
    let messages = count_messages(&bytes)?;
    Ok(Feed {
        bytes,
        messages,
        v4,
        v6,
        attribute_sets: attribute_sets.len(),
        left_out,
    })
}

/// Counts the BGP messages in a buffer of whole messages (their length fields).
pub fn count_messages(bytes: &[u8]) -> Result<usize> {
    let mut n = 0;
    let mut at = 0;
    while at < bytes.len() {
        let len = bytes
            .get(at + 16..at + 18)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .context("message header cut short")?;
        ensure!(
            (19..=CODEC.max_len()).contains(&len),
            "message of {len} bytes at {at}"
        );
        at += len;
        n += 1;
    }
    ensure!(at == bytes.len(), "last message cut short");
    Ok(n)
}

/// Captured UPDATEs that the codec marks treat-as-withdraw (RFC 7606 section 2; the
/// capture has AS_PATHs containing AS 0, which RFC 7607 section 2 says to treat so).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeftOut {
    pub updates: usize,
    /// The prefixes they announced.
    pub prefixes: usize,
    /// Why, as the decoder says it (each reason once).
    pub reasons: Vec<String>,
}

/// The captured UPDATEs, rewritten as the feeder's eBGP advertisements.
fn capture_updates(mrt_bytes: &[u8], spec: &FeedSpec) -> Result<(Vec<Update>, LeftOut)> {
    let walk = mrt::messages(mrt_bytes)?;
    let mut peer = None;
    let mut out = Vec::new();
    let mut left_out = LeftOut::default();
    for m in &walk.messages {
        match peer {
            None => peer = Some(m.peer_ip),
            Some(p) if p != m.peer_ip => {
                bail!("{MRT_FILE}: more than one peer ({p} and {})", m.peer_ip)
            }
            Some(_) => {}
        }
        let msg = Message::decode(m.message, &CAPTURE_CODEC)
            .with_context(|| format!("{MRT_FILE}: decoding a captured message"))?;
        if let Message::Update(mut u) = msg {
            if u.is_end_of_rib().is_some() {
                // The feed ends with its own markers, after the IPv6 routes.
                continue;
            }
            if let Some(why) = &u.treat_as_withdraw {
                // A receiver must treat its routes as withdrawn (RFC 7606): not part of
                // a feed whose every prefix has to arrive.
                left_out.updates += 1;
                left_out.prefixes += u.nlri.len() + u.mp_reach.as_ref().map_or(0, |m| m.nlri.len());
                if !left_out.reasons.contains(why) {
                    left_out.reasons.push(why.clone());
                }
                continue;
            }
            to_ebgp(&mut u, spec);
            out.push(u);
        }
    }
    ensure!(!out.is_empty(), "{MRT_FILE}: no UPDATE in it");
    Ok((out, left_out))
}

/// Rewrites a received iBGP UPDATE as the feeder's eBGP advertisement of it.
fn to_ebgp(u: &mut Update, spec: &FeedSpec) {
    let announces = !u.nlri.is_empty() || u.mp_reach.is_some();
    if let Some(a) = &mut u.attrs {
        if announces {
            a.as_path.prepend(spec.feeder_asn);
        }
        if !u.nlri.is_empty() {
            a.next_hop = Some(spec.next_hop_v4);
        } else {
            a.next_hop = None;
        }
        a.local_pref = None;
        a.med = None;
        a.other.retain(|r| r.flags & FLAG_TRANSITIVE != 0);
    }
    if let Some(mp) = &mut u.mp_reach {
        mp.next_hop = match mp.family {
            Family::Ipv4Unicast => NextHop::V4(spec.next_hop_v4),
            Family::Ipv6Unicast => NextHop::V6(spec.next_hop_v6),
        };
    }
}

/// IPv6 UPDATEs from a pyasn table (`prefix<TAB>origin ASN` per line, `;` comments):
/// one per origin AS, in order of first appearance.
fn v6_updates(text: &str, spec: &FeedSpec) -> Result<Vec<Update>> {
    let mut groups: Vec<(u32, Vec<IpNet>)> = Vec::new();
    let mut index: HashMap<u32, usize> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(prefix), Some(asn)) = (f.next(), f.next()) else {
            bail!("{V6_FILE} line {}: not `prefix asn`", n + 1);
        };
        if !prefix.contains(':') {
            continue;
        }
        let net: Ipv6Net = prefix
            .parse()
            .with_context(|| format!("{V6_FILE} line {}: prefix", n + 1))?;
        let asn: u32 = asn
            .parse()
            .with_context(|| format!("{V6_FILE} line {}: ASN", n + 1))?;
        let i = *index.entry(asn).or_insert_with(|| {
            groups.push((asn, Vec::new()));
            groups.len() - 1
        });
        if let Some((_, v)) = groups.get_mut(i) {
            v.push(IpNet::V6(net.trunc()));
        }
    }
    ensure!(!groups.is_empty(), "{V6_FILE}: no IPv6 prefix in it");
    Ok(groups
        .into_iter()
        .map(|(origin, nlri)| {
            let path = if origin == spec.feeder_asn {
                vec![origin]
            } else {
                vec![spec.feeder_asn, origin]
            };
            Update {
                attrs: Some(Attributes {
                    origin: Origin::Igp,
                    as_path: AsPath {
                        segments: vec![AsSegment::Sequence(path)],
                    },
                    ..Attributes::default()
                }),
                mp_reach: Some(MpReach {
                    family: Family::Ipv6Unicast,
                    next_hop: NextHop::V6(spec.next_hop_v6),
                    nlri,
                }),
                ..Update::default()
            }
        })
        .collect())
}

/// How [`replay`] reads and writes one family's prefixes in an UPDATE.
struct FamilyOps {
    /// The prefixes announced and withdrawn.
    announced: fn(&Update) -> Vec<IpNet>,
    withdrawn: fn(&Update) -> Vec<IpNet>,
    /// The same UPDATE announcing `nlri` instead; withdrawing what it did or nothing.
    with_nlri: fn(&Update, Vec<IpNet>, bool) -> Update,
    /// A prefix moved for synthetic round `r` (≥ 1), `None` where it would leave the
    /// unicast space.
    shift: fn(IpNet, u32) -> Option<IpNet>,
    /// The most common prefix length.
    common_length: u8,
    /// The family's name, for errors.
    name: &'static str,
}

const V4: FamilyOps = FamilyOps {
    announced: |u| {
        let mut v: Vec<IpNet> = u.nlri.iter().map(|n| IpNet::V4(*n)).collect();
        v.extend(mp_prefixes(u, Family::Ipv4Unicast));
        v
    },
    withdrawn: |u| {
        let mut v: Vec<IpNet> = u.withdrawn.iter().map(|n| IpNet::V4(*n)).collect();
        v.extend(mp_withdrawn(u, Family::Ipv4Unicast));
        v
    },
    with_nlri: |u, nlri, keep_withdrawn| Update {
        withdrawn: if keep_withdrawn {
            u.withdrawn.clone()
        } else {
            Vec::new()
        },
        attrs: if nlri.is_empty() {
            None
        } else {
            u.attrs.clone()
        },
        mp_reach: None,
        mp_unreach: None,
        nlri: nlri
            .into_iter()
            .filter_map(|n| match n {
                IpNet::V4(n) => Some(n),
                IpNet::V6(_) => None,
            })
            .collect(),
        treat_as_withdraw: None,
    },
    shift: |n, r| match n {
        IpNet::V4(n) => shift_v4(n, r).map(IpNet::V4),
        IpNet::V6(_) => None,
    },
    common_length: 24,
    name: "IPv4",
};

const V6: FamilyOps = FamilyOps {
    announced: |u| mp_prefixes(u, Family::Ipv6Unicast),
    withdrawn: |u| mp_withdrawn(u, Family::Ipv6Unicast),
    with_nlri: |u, nlri, keep_withdrawn| Update {
        mp_unreach: u.mp_unreach.clone().filter(|_| keep_withdrawn),
        mp_reach: u
            .mp_reach
            .as_ref()
            .filter(|_| !nlri.is_empty())
            .map(|mp| MpReach {
                family: mp.family,
                next_hop: mp.next_hop,
                nlri,
            }),
        attrs: u.attrs.clone(),
        ..Update::default()
    },
    shift: |n, r| match n {
        IpNet::V6(n) => shift_v6(n, r).map(IpNet::V6),
        IpNet::V4(_) => None,
    },
    common_length: 48,
    name: "IPv6",
};

fn mp_prefixes(u: &Update, family: Family) -> Vec<IpNet> {
    match &u.mp_reach {
        Some(mp) if mp.family == family => mp.nlri.clone(),
        _ => Vec::new(),
    }
}

fn mp_withdrawn(u: &Update, family: Family) -> Vec<IpNet> {
    match &u.mp_unreach {
        Some(mp) if mp.family == family => mp.withdrawn.clone(),
        _ => Vec::new(),
    }
}

/// IPv4 prefix `n` moved for synthetic round `r`: its first octet advanced by 37 per round
/// within 1..=223 (unicast), skipping 127; host bits below the length cleared.
pub fn shift_v4(n: Ipv4Net, r: u32) -> Option<Ipv4Net> {
    let a = u32::from(n.addr());
    let first = a >> 24;
    if first == 0 || first > 223 {
        return None;
    }
    let moved = 1 + (first - 1 + 37 * r) % 223;
    if moved == 127 {
        return None;
    }
    Ipv4Net::new(
        Ipv4Addr::from((moved << 24) | (a & 0x00ff_ffff)),
        n.prefix_len(),
    )
    .ok()
    .map(|n| n.trunc())
}

/// IPv6 prefix `n` moved for synthetic round `r`: the 13 bits after 2000::/3 advanced by
/// 0x111 per round (staying in global unicast 2000::/3); other prefixes are not moved.
pub fn shift_v6(n: Ipv6Net, r: u32) -> Option<Ipv6Net> {
    let mut s = n.addr().segments();
    if s[0] & 0xe000 != 0x2000 {
        return None;
    }
    s[0] = 0x2000 | ((s[0] & 0x1fff).wrapping_add((0x111 * r) as u16) & 0x1fff);
    Ipv6Net::new(Ipv6Addr::from(s), n.prefix_len())
        .ok()
        .map(|n| n.trunc())
}

/// Emits the `base` UPDATEs as they are (up to `want` distinct prefixes), then synthetic
/// rounds until `want` is reached; returns the counts.
fn replay(
    base: &[Update],
    want: Option<usize>,
    ops: &FamilyOps,
    mut emit: impl FnMut(&Update),
) -> Result<FamilyCounts> {
    let mut table: HashSet<IpNet> = HashSet::new();
    let mut c = FamilyCounts::default();
    let cap = want.unwrap_or(usize::MAX);
    for u in base {
        let withdrawn = (ops.withdrawn)(u);
        let announced = (ops.announced)(u);
        if table.len() >= cap && withdrawn.is_empty() {
            break;
        }
        for w in &withdrawn {
            table.remove(w);
        }
        let total = announced.len();
        let mut kept = Vec::with_capacity(total);
        for n in announced {
            if table.len() < cap || table.contains(&n) {
                table.insert(n);
                kept.push(n);
            }
        }
        c.withdrawn += withdrawn.len();
        c.announced += kept.len();
        if kept.len() == total {
            emit(u);
        } else if !kept.is_empty() || !withdrawn.is_empty() {
            emit(&(ops.with_nlri)(u, kept, true));
        }
    }
    c.real = table.len();
    let mut round = 1;
    // Synthetic rounds only when a count was asked for.
    while want.is_some() && table.len() < cap {
        let before = table.len();
        for u in base {
            if table.len() >= cap {
                break;
            }
            let mut fresh = Vec::new();
            for n in (ops.announced)(u) {
                let Some(m) = (ops.shift)(n, round) else {
                    continue;
                };
                if table.len() < cap && table.insert(m) {
                    fresh.push(m);
                }
            }
            if !fresh.is_empty() {
                c.announced += fresh.len();
                emit(&(ops.with_nlri)(u, fresh, false));
            }
        }
        ensure!(
            table.len() > before && round < 64,
            "{}: cannot make {cap} distinct prefixes (stuck at {})",
            ops.name,
            table.len()
        );
        round += 1;
    }
    c.distinct = table.len();
    c.common_length = table
        .iter()
        .filter(|n| n.prefix_len() == ops.common_length)
        .count();
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
    }

    fn spec(v4: Option<usize>, v6: Option<usize>) -> FeedSpec {
        FeedSpec {
            data_dir: data_dir(),
            feeder_asn: 4_242_420_002,
            next_hop_v4: Ipv4Addr::new(198, 18, 0, 1),
            next_hop_v6: "2001:2::1".parse().unwrap(),
            v4,
            v6,
        }
    }

    /// Decodes a feed the way a receiver does and returns its final table per family,
    /// checking every message on the way.
    fn receive(feed: &Feed, s: &FeedSpec) -> (HashSet<Ipv4Net>, HashSet<Ipv6Net>, usize) {
        let (mut t4, mut t6) = (HashSet::new(), HashSet::new());
        let mut eor = 0;
        let mut at = 0;
        let mut n = 0;
        while at < feed.bytes.len() {
            let len = usize::from(u16::from_be_bytes([
                feed.bytes[at + 16],
                feed.bytes[at + 17],
            ]));
            assert!(len <= 4096);
            let Message::Update(u) = Message::decode(&feed.bytes[at..at + len], &CODEC).unwrap()
            else {
                panic!("not an UPDATE at {at}");
            };
            at += len;
            n += 1;
            if u.is_end_of_rib().is_some() {
                eor += 1;
                continue;
            }
            assert!(u.treat_as_withdraw.is_none());
            for w in &u.withdrawn {
                t4.remove(w);
            }
            if !u.nlri.is_empty() || u.mp_reach.is_some() {
                let a = u.attrs.as_ref().expect("announcement without attributes");
                assert_eq!(a.as_path.first(), Some(s.feeder_asn), "{:?}", a.as_path);
                assert_eq!(a.local_pref, None);
                assert_eq!(a.med, None);
                assert!(a.other.iter().all(|r| r.code != 9 && r.code != 10));
                if !u.nlri.is_empty() {
                    assert_eq!(a.next_hop, Some(s.next_hop_v4));
                }
            }
            t4.extend(u.nlri.iter().copied());
            if let Some(mp) = &u.mp_reach {
                assert_eq!(mp.family, Family::Ipv6Unicast);
                assert_eq!(mp.next_hop, NextHop::V6(s.next_hop_v6));
                for p in &mp.nlri {
                    match p {
                        IpNet::V6(p) => t6.insert(*p),
                        IpNet::V4(p) => panic!("IPv4 {p} in IPv6 MP_REACH"),
                    };
                }
            }
        }
        assert_eq!(n, feed.messages);
        (t4, t6, eor)
    }

    /// The real tables: every prefix of the capture and of the IPv6 list arrives, with
    /// the feeder's path, next hops and no iBGP attributes, in UPDATEs of <= 4096 bytes.
    #[test]
    fn real_feed_decodes_to_the_real_tables() {
        let s = spec(None, None);
        let feed = build(&s).unwrap();
        // Figures from the data's README (counted by an independent reader): 577,737
        // announcements of 577,706 distinct prefixes, and 27,693 IPv6 prefixes.
        assert_eq!(feed.v4.announced + feed.left_out.prefixes, 577_737);
        assert!(feed.left_out.updates < 100, "{:?}", feed.left_out);
        assert_eq!(feed.v6.distinct, 27_693);
        assert_eq!(feed.v6.real, 27_693);
        let (t4, t6, eor) = receive(&feed, &s);
        assert_eq!(eor, 2);
        assert_eq!(t4.len(), feed.v4.distinct);
        assert_eq!(t6.len(), feed.v6.distinct);
        // The capture withdraws a few prefixes it announced earlier.
        assert!(feed.v4.withdrawn > 0);
        let least = 577_706 - feed.v4.withdrawn - feed.left_out.prefixes;
        assert!(
            (least..=577_706).contains(&feed.v4.distinct),
            "{:?} {:?}",
            feed.v4,
            feed.left_out
        );
        assert!(feed.attribute_sets > 10_000, "{}", feed.attribute_sets);
        // The most common lengths of a real table.
        assert!(feed.v4.common_length * 2 > feed.v4.distinct);
        assert!(feed.v6.common_length * 3 > feed.v6.distinct);
    }

    /// The synthetic scale-up reaches exactly the counts asked for, with distinct,
    /// truncated prefixes; a count below the real table's takes a prefix of it.
    #[test]
    fn scaled_and_truncated_feeds_have_the_counts_asked_for() {
        let s = spec(Some(1_000_000), Some(40_000));
        let feed = build(&s).unwrap();
        assert_eq!((feed.v4.distinct, feed.v6.distinct), (1_000_000, 40_000));
        assert_eq!(feed.v6.real, 27_693);
        let (t4, t6, _) = receive(&feed, &s);
        assert_eq!((t4.len(), t6.len()), (1_000_000, 40_000));
        assert!(t4.iter().all(|n| *n == n.trunc()));
        // Synthetic prefixes keep the real length mix: still mostly /24.
        assert!(feed.v4.common_length * 2 > feed.v4.distinct);

        let s = spec(Some(1000), Some(10));
        let feed = build(&s).unwrap();
        let (t4, t6, _) = receive(&feed, &s);
        assert_eq!((t4.len(), t6.len()), (1000, 10));
    }

    #[test]
    fn shifts_stay_in_unicast_space() {
        let n: Ipv4Net = "193.0.0.0/21".parse().unwrap();
        assert_eq!(shift_v4(n, 1), Some("7.0.0.0/21".parse().unwrap()));
        assert_eq!(shift_v4("224.0.0.0/4".parse().unwrap(), 1), None);
        for r in 1..10 {
            for first in 1..=223u32 {
                let n = Ipv4Net::new(Ipv4Addr::from(first << 24), 8).unwrap();
                if let Some(m) = shift_v4(n, r) {
                    let o = u32::from(m.addr()) >> 24;
                    assert!((1..=223).contains(&o) && o != 127 && o != first);
                }
            }
        }
        let n: Ipv6Net = "2a00:1450::/32".parse().unwrap();
        assert_eq!(shift_v6(n, 1), Some("2b11:1450::/32".parse().unwrap()));
        assert_eq!(shift_v6("fd00::/8".parse().unwrap(), 1), None);
        assert_eq!(
            shift_v6("3fff:ff00::/24".parse().unwrap(), 1),
            Some("2110:ff00::/24".parse().unwrap())
        );
    }
}
