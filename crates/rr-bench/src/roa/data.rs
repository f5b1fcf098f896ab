//! The ROA benchmark's data: the routes both receivers hold, the ROA sets before and
//! after the change, the include files both read, and the counts a correct receiver ends
//! with — computed here, independently of either receiver.
//!
//! What it is:
//! - [`table`]: the final table of one feed (prefix → origin AS), decoded back from the
//!   feed's encoded UPDATEs (withdrawals applied), so it is exactly what a receiver holds.
//! - [`pyasn_roas`]: one ROA per line of RouteViews' prefix → origin table of
//!   2015-11-01 (`bgp_text/pyasn_ipasn6_20151101.dat.gz`, pyasn's conversion): the prefix,
//!   max length = the prefix length, the origin AS — except one entry in ten, chosen by a
//!   fixed hash, which gets none. Real prefix → origin data from another collector than
//!   the IPv4 feed's (PCH), so most routes are valid, some invalid (another origin, or
//!   more specific than the announced prefix: RFC 6811 "too long") and some unknown (no
//!   covering entry, mostly the tenth left out). The IPv6 feed is built from this same
//!   file, so its routes are valid or (the tenth) unknown until the change.
//! - [`Change`]: `n` ROAs touched, chosen deterministically among the ROAs whose prefix is
//!   a route of the table (so each touches at least one route), ordered by a fixed hash of
//!   the ROA: the first half removed, the second half replaced — even positions by the
//!   same prefix for another origin (the next candidate's AS), odd ones by the same
//!   prefix and origin with the max length raised by up to 8 bits (to /24 or /48 at
//!   most; a prefix already that long changes origin instead). A replaced ROA is one
//!   RTR withdrawal plus one announcement: `n` ROAs make a delta of 1.5 `n` entries.
//! - [`write_bird`]: a ROA set as a BIRD 2 include file per family
//!   (`route P max M as A;`), the format both receivers read.
//! - [`Verdicts`]: per family, how many routes are valid, invalid and not found under a
//!   set; "accepted" = not invalid (the import filter drops invalid only).
//!
//! What it is not: a model of RPKI churn (a real 10,000-ROA change is mostly additions
//! and is spread over hours), or of today's RPKI coverage (in 2015 about 6% of the table
//! had a ROA; deriving ROAs from a routing table covers nearly all of it, the worst case
//! for re-evaluation work).

use crate::bgp::feed::{self, Feed, CODEC};
use anyhow::{Context, Result};
use ipnet::IpNet;
use rr_bgp::packet::Message;
use rr_roa::{Roa, RoaSet, Validity};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

/// One feed's final table: prefix → origin AS (`None`: the path ends in an AS_SET).
pub fn table(feed: &Feed) -> Result<HashMap<IpNet, Option<u32>>> {
    let mut t = HashMap::new();
    for_each_update(&feed.bytes, |u| {
        for n in &u.withdrawn {
            t.remove(&IpNet::V4(*n));
        }
        if let Some(r) = &u.mp_unreach {
            for n in &r.withdrawn {
                t.remove(n);
            }
        }
        let origin = u.attrs.as_ref().and_then(|a| a.as_path.origin());
        for n in &u.nlri {
            t.insert(IpNet::V4(*n), origin);
        }
        for n in u.mp_reach.iter().flat_map(|r| &r.nlri) {
            t.insert(*n, origin);
        }
    })?;
    Ok(t)
}

/// Decodes the feed's messages in order and hands each UPDATE to `f`.
pub fn for_each_update(bytes: &[u8], mut f: impl FnMut(&rr_bgp::packet::Update)) -> Result<()> {
    let mut at = 0;
    while at < bytes.len() {
        let len = bytes
            .get(at + 16..at + 18)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .context("message header cut short")?;
        let msg = bytes.get(at..at + len).context("message cut short")?;
        if let Message::Update(u) = Message::decode(msg, &CODEC)
            .with_context(|| format!("decoding the feed's message at byte {at}"))?
        {
            f(&u);
        }
        at += len.max(1);
    }
    Ok(())
}

/// What reading the pyasn table gave.
pub struct PyasnRoas {
    pub roas: Vec<Roa>,
    /// Lines that are not `prefix<TAB>ASN` with a usable prefix (comments aside).
    pub skipped: usize,
    /// Entries left without a ROA (one in ten).
    pub without: usize,
}

/// One ROA per prefix → origin line of the pyasn file (see the module docs).
pub fn pyasn_roas(data_dir: &Path) -> Result<PyasnRoas> {
    let text = feed::gunzip(&data_dir.join(feed::V6_FILE))?;
    let text = String::from_utf8_lossy(&text);
    let mut roas = Vec::new();
    let (mut skipped, mut without) = (0, 0);
    for line in text.lines() {
        if line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        let roa = line.split_once('\t').and_then(|(p, asn)| {
            let p: IpNet = p.trim().parse().ok()?;
            let asn: u32 = asn.trim().parse().ok()?;
            Roa::new(p, p.prefix_len(), asn).ok()
        });
        match roa {
            // One entry in ten (by a fixed hash) has no ROA: its routes are unknown.
            Some(r) if roa_hash(&r).is_multiple_of(10) => without += 1,
            Some(r) => roas.push(r),
            None => skipped += 1,
        }
    }
    Ok(PyasnRoas {
        roas,
        skipped,
        without,
    })
}

/// SplitMix64's finaliser: a fixed, well-mixed order for the change's choice.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn roa_hash(r: &Roa) -> u64 {
    let (addr, v6) = match r.prefix() {
        IpNet::V4(n) => (u128::from(u32::from(n.network())), 0),
        IpNet::V6(n) => (u128::from(n.network()), 1),
    };
    let mut h = mix(addr as u64 ^ v6);
    h = mix(h ^ (addr >> 64) as u64);
    mix(h
        ^ u64::from(r.prefix().prefix_len()) << 40
        ^ u64::from(r.max_len()) << 32
        ^ u64::from(r.asn()))
}

/// A ROA change between two sets (see the module docs for the choice).
pub struct Change {
    /// The set before.
    pub before: RoaSet,
    /// The set after.
    pub after: RoaSet,
    /// ROAs removed outright.
    pub removed: usize,
    /// ROAs given another origin AS.
    pub origin_changed: usize,
    /// ROAs given a longer max length.
    pub max_len_raised: usize,
}

/// Builds the change of `n` ROAs from `roas` for a table holding `routes`.
pub fn change(roas: &[Roa], routes: &HashSet<IpNet>, n: usize) -> Change {
    let before = RoaSet::from_roas(roas.iter().copied());
    let mut candidates: Vec<Roa> = before
        .iter()
        .filter(|r| routes.contains(&r.prefix()))
        .copied()
        .collect();
    candidates.sort_by_key(|r| (roa_hash(r), *r));
    let n = n.min(candidates.len());
    let (removed, replaced) = candidates[..n].split_at(n / 2);
    let mut gone: HashSet<Roa> = removed.iter().copied().collect();
    let mut added = Vec::new();
    let (mut origin_changed, mut max_len_raised) = (0, 0);
    for (i, r) in replaced.iter().enumerate() {
        gone.insert(*r);
        let cap = if r.prefix().max_prefix_len() == 32 {
            24
        } else {
            48
        };
        let longer = (r.max_len() + 8).min(cap.max(r.max_len()));
        let new = if i % 2 == 1 && longer > r.max_len() {
            max_len_raised += 1;
            Roa::new(r.prefix(), longer, r.asn()).ok()
        } else {
            origin_changed += 1;
            // Another real origin: the next candidate's, or one more if that is the same.
            let other = candidates
                .get(n + i)
                .or(candidates.first())
                .map_or(r.asn().wrapping_add(1), |c| c.asn());
            let asn = if other == r.asn() {
                other.wrapping_add(1)
            } else {
                other
            };
            Roa::new(r.prefix(), r.max_len(), asn).ok()
        };
        added.extend(new);
    }
    let after = RoaSet::from_roas(
        before
            .iter()
            .filter(|r| !gone.contains(r))
            .copied()
            .chain(added),
    );
    Change {
        before,
        after,
        removed: removed.len(),
        origin_changed,
        max_len_raised,
    }
}

/// Writes `set`'s ROAs of one family (`v6`) as a BIRD include file.
pub fn write_bird(set: &RoaSet, v6: bool, path: &Path) -> Result<usize> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    let mut n = 0;
    for r in set
        .iter()
        .filter(|r| matches!(r.prefix(), IpNet::V6(_)) == v6)
    {
        writeln!(
            w,
            "route {} max {} as {};",
            r.prefix(),
            r.max_len(),
            r.asn()
        )?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

/// Route counts by ROA state, per family (index 0 IPv4, 1 IPv6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    pub valid: [u64; 2],
    pub invalid: [u64; 2],
    pub not_found: [u64; 2],
}

impl Verdicts {
    /// How `table`'s routes validate against `set` (RFC 6811).
    pub fn of(table: &HashMap<IpNet, Option<u32>>, set: &RoaSet) -> Verdicts {
        let mut v = Verdicts::default();
        for (&net, &origin) in table {
            let f = usize::from(matches!(net, IpNet::V6(_)));
            match set.validate(net, origin) {
                Validity::Valid => v.valid[f] += 1,
                Validity::Invalid => v.invalid[f] += 1,
                Validity::NotFound => v.not_found[f] += 1,
            }
        }
        v
    }

    /// Routes a receiver that drops invalid ones accepts, per family.
    pub fn accepted(&self) -> [u64; 2] {
        [
            self.valid[0] + self.not_found[0],
            self.valid[1] + self.not_found[1],
        ]
    }
}

/// Routes of `table` whose acceptance differs between `a` and `b`.
pub fn verdict_flips(table: &HashMap<IpNet, Option<u32>>, a: &RoaSet, b: &RoaSet) -> u64 {
    table
        .iter()
        .filter(|(&n, &o)| {
            (a.validate(n, o) == Validity::Invalid) != (b.validate(n, o) == Validity::Invalid)
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roa(p: &str, max: u8, asn: u32) -> Roa {
        Roa::new(p.parse().unwrap(), max, asn).unwrap()
    }

    /// The change touches exactly `n` ROAs, all of them on routed prefixes: half gone,
    /// half replaced by a ROA for the same prefix with another origin or a longer max
    /// length; the rest of the set is unchanged; the choice is the same every time.
    #[test]
    fn change_is_deterministic_and_of_the_size_asked() {
        let mut roas = Vec::new();
        let mut routes = HashSet::new();
        for i in 0..200u32 {
            let p = format!("10.{}.{}.0/24", i / 256, i % 256);
            roas.push(roa(&p, 24, 64_500 + i % 7));
            if i % 2 == 0 {
                routes.insert(p.parse().unwrap());
            }
            roas.push(roa(&format!("2001:db8:{i:x}::/48"), 48, 64_600));
        }
        roas.push(roa("10.0.0.0/16", 16, 64_999));
        let c = change(&roas, &routes, 40);
        assert_eq!(c.removed, 20);
        assert_eq!(c.origin_changed + c.max_len_raised, 20);
        // /24s are at the IPv4 cap: every replacement changes the origin.
        assert_eq!(c.origin_changed, 20);
        let d = RoaSet::diff(&c.before, &c.after);
        assert_eq!(d.removed().len(), 40);
        assert_eq!(d.added().len(), 20);
        for r in d.removed() {
            assert!(routes.contains(&r.prefix()), "{r:?} is on no route");
        }
        for a in d.added() {
            let old: Vec<&Roa> = d
                .removed()
                .iter()
                .filter(|r| r.prefix() == a.prefix())
                .collect();
            assert_eq!(old.len(), 1);
            assert_ne!(old[0].asn(), a.asn());
            assert_eq!(old[0].max_len(), a.max_len());
        }
        let again = change(&roas, &routes, 40);
        assert!(again.after == c.after && again.before == c.before);
    }

    /// Shorter prefixes get their max length raised on odd positions (8 bits, capped).
    #[test]
    fn max_length_is_raised_below_the_cap() {
        let mut roas = Vec::new();
        let mut routes = HashSet::new();
        for i in 0..100u32 {
            let p = format!("{}.0.0.0/8", i + 1);
            roas.push(roa(&p, 8, 64_500));
            routes.insert(p.parse().unwrap());
        }
        let c = change(&roas, &routes, 20);
        assert_eq!((c.removed, c.origin_changed, c.max_len_raised), (10, 5, 5));
        let d = RoaSet::diff(&c.before, &c.after);
        assert_eq!(d.added().iter().filter(|r| r.max_len() == 16).count(), 5);
    }

    #[test]
    fn verdicts_and_flips() {
        let set_a = RoaSet::from_roas([roa("10.0.0.0/16", 16, 1), roa("2001:db8::/32", 48, 2)]);
        let set_b = RoaSet::from_roas([roa("10.0.0.0/16", 24, 1)]);
        let table: HashMap<IpNet, Option<u32>> = [
            ("10.0.0.0/16", Some(1)),  // valid, valid
            ("10.0.1.0/24", Some(1)),  // invalid (too long), valid
            ("10.0.2.0/24", Some(9)),  // invalid, invalid
            ("10.0.3.0/24", None),     // AS_SET: invalid, invalid
            ("192.0.2.0/24", Some(1)), // not found
            ("2001:db8:1::/48", Some(2)),
            ("2001:db8:2::/48", Some(3)),
        ]
        .into_iter()
        .map(|(p, o)| (p.parse().unwrap(), o))
        .collect();
        let v = Verdicts::of(&table, &set_a);
        assert_eq!(v.valid, [1, 1]);
        assert_eq!(v.invalid, [3, 1]);
        assert_eq!(v.not_found, [1, 0]);
        assert_eq!(v.accepted(), [2, 1]);
        let w = Verdicts::of(&table, &set_b);
        assert_eq!(w.accepted(), [3, 2]);
        // 10.0.1.0/24 becomes valid; 2001:db8:2::/48 becomes not found.
        assert_eq!(verdict_flips(&table, &set_a, &set_b), 2);
    }

    #[test]
    fn bird_include_file() {
        let dir = std::env::temp_dir().join(format!("rr-bench-roa-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let set = RoaSet::from_roas([roa("10.0.0.0/16", 24, 1), roa("2001:db8::/32", 48, 2)]);
        let p = dir.join("v4.conf");
        assert_eq!(write_bird(&set, false, &p).unwrap(), 1);
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, "route 10.0.0.0/16 max 24 as 1;\n");
        // The router reads the same file back to the same ROAs.
        let parsed = rr_roa::parse::parse_str(&text).unwrap();
        assert_eq!(parsed.roas, vec![roa("10.0.0.0/16", 24, 1)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
