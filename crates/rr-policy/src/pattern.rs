//! The textual patterns of the policy language and their matchers: integer ranges,
//! prefix patterns (BIRD prefix-set syntax), standard and large community patterns,
//! and the exact communities that `add_*` actions take.
//!
//! Every form parses with `FromStr` and prints back with `Display` (parsing what was
//! printed gives an equal value). Parsers never panic, whatever the text; errors say
//! what was expected in the words an operator uses.
//!
//! What it is not: the rule evaluation (`eval.rs`) or the config file (`rr-config`).

use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A closed range of integers, `min..=max`. Config forms: `5`, `3..8`, `..8`, `3..`, `*`.
///
/// An open end is `0` (below) or `u32::MAX` (above); `*` is both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// Smallest value included.
    pub min: u32,
    /// Largest value included.
    pub max: u32,
}

/// BIRD prefix-set element: `net` (exactly), `net+` (net and all more-specifics),
/// `net-` (net and all less-specifics), `net{a,b}` (length a..=b).
///
/// Matching is BIRD's (`filter/trie.c`): a prefix of length `l` matches when
/// `min_len <= l <= max_len` and its first `min(l, len(net))` bits equal `net`'s. So
/// `net{a,b}` with `a >= len(net)` matches prefixes inside `net`, and lengths below
/// `len(net)` match the prefixes that contain `net` (`net-` is `net{0,len(net)}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixPattern {
    /// The network (host bits clear).
    pub net: IpNet,
    /// Shortest length matched.
    pub min_len: u8,
    /// Longest length matched.
    pub max_len: u8,
    /// Written as `net-` (less-specifics); only changes how it is printed.
    pub less_specific: bool,
}

/// An RFC 1997 community pattern `(asn, value)`, each part a [`Range`] (`*`, `1..9`, `5`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StdPattern {
    /// The high 16 bits (the ASN part).
    pub asn: Range,
    /// The low 16 bits.
    pub value: Range,
}

/// An RFC 8092 large community pattern `(global, local1, local2)`, each a [`Range`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LargePattern {
    /// The three parts.
    pub parts: [Range; 3],
}

/// A pattern that does not parse, with what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}`: {reason}")]
pub struct PatternError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

fn error(text: &str, reason: impl Into<String>) -> PatternError {
    PatternError {
        text: text.to_owned(),
        reason: reason.into(),
    }
}

impl Range {
    /// Every value (`*`).
    pub const ANY: Range = Range {
        min: 0,
        max: u32::MAX,
    };

    /// Just `v`.
    pub const fn single(v: u32) -> Range {
        Range { min: v, max: v }
    }

    /// Whether `v` is within the range.
    pub const fn contains(&self, v: u32) -> bool {
        self.min <= v && v <= self.max
    }

    /// The value, if the range holds exactly one.
    pub const fn as_single(&self) -> Option<u32> {
        if self.min == self.max {
            Some(self.min)
        } else {
            None
        }
    }

    /// Parses with explicit bounds at most `limit` (for the 16-bit halves of a
    /// community); open ends stay open.
    fn parse_limited(s: &str, limit: u32, what: &str) -> Result<Range, PatternError> {
        let range: Range = s.parse()?;
        let t = s.trim();
        let open_above = t == "*" || t.ends_with("..");
        let too_big = if range.min > limit {
            Some(range.min)
        } else if range.max > limit && !open_above {
            Some(range.max)
        } else {
            None
        };
        match too_big {
            Some(n) => Err(error(
                s,
                format!("{n} does not fit in {what} (at most {limit})"),
            )),
            None => Ok(range),
        }
    }
}

/// What a range may be, for "not a number" errors.
const RANGE_HINT: &str = " (expected a number, a range like `1..9`, `..9` or `3..`, or `*`)";

/// A decimal `u32`, with an error naming the text.
fn number(text: &str, part: &str, hint: &str) -> Result<u32, PatternError> {
    let part = part.trim();
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(text, format!("{part:?} is not a number{hint}")));
    }
    part.parse::<u32>()
        .map_err(|_| error(text, format!("{part} is larger than {}", u32::MAX)))
}

impl FromStr for Range {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<Range, PatternError> {
        let s = text.trim();
        if s == "*" {
            return Ok(Range::ANY);
        }
        let Some((lo, hi)) = s.split_once("..") else {
            return number(text, s, RANGE_HINT).map(Range::single);
        };
        let (lo, hi) = (lo.trim(), hi.trim());
        if lo.is_empty() && hi.is_empty() {
            return Err(error(
                text,
                "a range needs at least one end (write `*` for any)",
            ));
        }
        let min = if lo.is_empty() {
            0
        } else {
            number(text, lo, RANGE_HINT)?
        };
        let max = if hi.is_empty() {
            u32::MAX
        } else {
            number(text, hi, RANGE_HINT)?
        };
        if min > max {
            return Err(error(
                text,
                format!("the range is empty: {min} is greater than {max}"),
            ));
        }
        Ok(Range { min, max })
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (0, u32::MAX) => f.write_str("*"),
            (a, b) if a == b => write!(f, "{a}"),
            (0, b) => write!(f, "..{b}"),
            (a, u32::MAX) => write!(f, "{a}.."),
            (a, b) => write!(f, "{a}..{b}"),
        }
    }
}

/// The longest prefix length of the family of `net`.
fn max_bits(net: &IpNet) -> u8 {
    match net {
        IpNet::V4(_) => 32,
        IpNet::V6(_) => 128,
    }
}

/// The address as a left-aligned 128-bit number (IPv4 in the top 32 bits).
fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
        IpAddr::V6(a) => u128::from(a),
    }
}

impl PrefixPattern {
    /// Exactly `net`.
    pub fn exact(net: IpNet) -> PrefixPattern {
        let len = net.prefix_len();
        PrefixPattern {
            net: net.trunc(),
            min_len: len,
            max_len: len,
            less_specific: false,
        }
    }

    /// Whether `prefix` matches (see the type's docs; a prefix of the other family
    /// never does).
    pub fn matches(&self, prefix: &IpNet) -> bool {
        let len = prefix.prefix_len();
        let same_family = matches!(
            (self.net, prefix),
            (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
        );
        if !same_family || len < self.min_len || len > self.max_len {
            return false;
        }
        let common = u32::from(len.min(self.net.prefix_len()));
        let diff = bits(self.net.addr()) ^ bits(prefix.addr());
        // The first `common` bits are equal (a shift by 128 is not defined: 0 bits compare).
        common == 0 || diff >> (128 - common) == 0
    }
}

impl FromStr for PrefixPattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<PrefixPattern, PatternError> {
        let s = text.trim();
        let (net_text, form) = if let Some(net) = s.strip_suffix('+') {
            (net, Some(Form::More))
        } else if let Some(net) = s.strip_suffix('-') {
            (net, Some(Form::Less))
        } else if let Some(open) = s.find('{') {
            let Some(inner) = s[open + 1..].strip_suffix('}') else {
                return Err(error(
                    text,
                    "a length range is written `{min,max}`, e.g. `172.20.0.0/14{21,29}`",
                ));
            };
            let Some((a, b)) = inner.split_once(',') else {
                return Err(error(
                    text,
                    "a length range needs two lengths: `{min,max}`, e.g. `{21,29}`",
                ));
            };
            let length = |part: &str| -> Result<u8, PatternError> {
                let n = number(text, part, "")?;
                u8::try_from(n)
                    .map_err(|_| error(text, format!("prefix length {n} is longer than 128")))
            };
            (&s[..open], Some(Form::Lengths(length(a)?, length(b)?)))
        } else {
            (s, None)
        };
        let net_text = net_text.trim();
        let net: IpNet = net_text.parse().map_err(|_| {
            if net_text.parse::<IpAddr>().is_ok() {
                error(text, "the prefix length is missing (e.g. `172.20.0.0/14`)")
            } else {
                error(
                    text,
                    "not a prefix pattern (expected `net`, `net+`, `net-` or `net{min,max}`, e.g. `172.20.0.0/14{21,29}` or `fd00::/8{44,64}`)",
                )
            }
        })?;
        if net.trunc() != net {
            return Err(error(
                text,
                format!("{net} has host bits set; did you mean {}?", net.trunc()),
            ));
        }
        let len = net.prefix_len();
        let max = max_bits(&net);
        let pattern = match form {
            None => PrefixPattern::exact(net),
            Some(Form::More) => PrefixPattern {
                net,
                min_len: len,
                max_len: max,
                less_specific: false,
            },
            Some(Form::Less) => PrefixPattern {
                net,
                min_len: 0,
                max_len: len,
                less_specific: true,
            },
            Some(Form::Lengths(a, b)) => {
                if a > b {
                    return Err(error(
                        text,
                        format!("the length range {{{a},{b}}} is empty: {a} is greater than {b}"),
                    ));
                }
                if b > max {
                    return Err(error(
                        text,
                        format!(
                            "prefix length {b} is longer than {max}, the longest {} prefix",
                            if max == 32 { "IPv4" } else { "IPv6" }
                        ),
                    ));
                }
                PrefixPattern {
                    net,
                    min_len: a,
                    max_len: b,
                    less_specific: false,
                }
            }
        };
        Ok(pattern)
    }
}

/// The suffix of a prefix pattern.
enum Form {
    More,
    Less,
    Lengths(u8, u8),
}

impl fmt::Display for PrefixPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.net.prefix_len();
        if self.less_specific && self.min_len == 0 && self.max_len == len {
            write!(f, "{}-", self.net)
        } else if self.min_len == len && self.max_len == len {
            write!(f, "{}", self.net)
        } else if self.min_len == len && self.max_len == max_bits(&self.net) {
            write!(f, "{}+", self.net)
        } else {
            write!(f, "{}{{{},{}}}", self.net, self.min_len, self.max_len)
        }
    }
}

/// The parts of `(a,b,...)`, exactly `n` of them.
fn tuple<'t>(text: &'t str, n: usize, example: &str) -> Result<Vec<&'t str>, PatternError> {
    let s = text.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| error(text, format!("expected parentheses, e.g. `{example}`")))?;
    let parts: Vec<&str> = inner.split(',').collect();
    if parts.len() != n {
        return Err(error(
            text,
            format!("expected {n} parts separated by commas, e.g. `{example}`"),
        ));
    }
    Ok(parts)
}

impl StdPattern {
    /// Whether the community (RFC 1997: ASN in the high 16 bits) matches.
    pub const fn matches(&self, community: u32) -> bool {
        self.asn.contains(community >> 16) && self.value.contains(community & 0xffff)
    }

    /// The one community this pattern matches, if its parts are single values.
    pub const fn as_single(&self) -> Option<u32> {
        match (self.asn.as_single(), self.value.as_single()) {
            (Some(a), Some(v)) => Some((a << 16) | v),
            _ => None,
        }
    }
}

impl FromStr for StdPattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<StdPattern, PatternError> {
        let parts = tuple(text, 2, "(64511,1..9)")?;
        let part = |p: &str| {
            Range::parse_limited(p, u32::from(u16::MAX), "16 bits").map_err(|e| PatternError {
                text: text.to_owned(),
                reason: e.reason,
            })
        };
        Ok(StdPattern {
            asn: part(parts[0])?,
            value: part(parts[1])?,
        })
    }
}

impl fmt::Display for StdPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({},{})", self.asn, self.value)
    }
}

impl LargePattern {
    /// Whether the large community (RFC 8092) matches.
    pub const fn matches(&self, community: &[u32; 3]) -> bool {
        self.parts[0].contains(community[0])
            && self.parts[1].contains(community[1])
            && self.parts[2].contains(community[2])
    }

    /// The one large community this pattern matches, if its parts are single values.
    pub const fn as_single(&self) -> Option<[u32; 3]> {
        match (
            self.parts[0].as_single(),
            self.parts[1].as_single(),
            self.parts[2].as_single(),
        ) {
            (Some(a), Some(b), Some(c)) => Some([a, b, c]),
            _ => None,
        }
    }
}

impl FromStr for LargePattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<LargePattern, PatternError> {
        let parts = tuple(text, 3, "(4242420000,*,1..3)")?;
        let part = |p: &str| {
            p.parse::<Range>().map_err(|e| PatternError {
                text: text.to_owned(),
                reason: e.reason,
            })
        };
        Ok(LargePattern {
            parts: [part(parts[0])?, part(parts[1])?, part(parts[2])?],
        })
    }
}

impl fmt::Display for LargePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = &self.parts;
        write!(f, "({a},{b},{c})")
    }
}

/// An exact RFC 1997 community, `(64511,41)`, as `add_community` takes it.
pub fn parse_community(text: &str) -> Result<u32, PatternError> {
    let pattern: StdPattern = text.parse()?;
    pattern.as_single().ok_or_else(|| {
        error(
            text,
            "a community to add is one value per part, e.g. `(64511,41)` (ranges and `*` only match)",
        )
    })
}

/// An exact RFC 8092 large community, `(4242420000,1,2)`, as `add_large_community` takes it.
pub fn parse_large_community(text: &str) -> Result<[u32; 3], PatternError> {
    let pattern: LargePattern = text.parse()?;
    pattern.as_single().ok_or_else(|| {
        error(
            text,
            "a large community to add is one value per part, e.g. `(4242420000,1,2)` (ranges and `*` only match)",
        )
    })
}

/// `(asn,value)`, as BIRD prints a community.
pub fn format_community(community: u32) -> String {
    format!("({},{})", community >> 16, community & 0xffff)
}

/// `(a,b,c)`, as BIRD prints a large community.
pub fn format_large_community(community: &[u32; 3]) -> String {
    let [a, b, c] = community;
    format!("({a},{b},{c})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn err_reason<T: FromStr<Err = PatternError> + fmt::Debug>(s: &str) -> String {
        let e = s.parse::<T>().unwrap_err();
        assert_eq!(e.text, s);
        e.reason
    }

    #[test]
    fn range_forms_and_round_trip() {
        let cases = [
            ("5", Range::single(5), "5"),
            ("3..8", Range { min: 3, max: 8 }, "3..8"),
            ("..8", Range { min: 0, max: 8 }, "..8"),
            (
                "3..",
                Range {
                    min: 3,
                    max: u32::MAX,
                },
                "3..",
            ),
            ("*", Range::ANY, "*"),
            (" 3 .. 8 ", Range { min: 3, max: 8 }, "3..8"),
            ("0..8", Range { min: 0, max: 8 }, "..8"),
            ("4..4", Range::single(4), "4"),
            ("4294967295", Range::single(u32::MAX), "4294967295"),
        ];
        for (text, range, shown) in cases {
            let parsed: Range = text.parse().unwrap();
            assert_eq!(parsed, range, "{text}");
            assert_eq!(parsed.to_string(), shown, "{text}");
            assert_eq!(shown.parse::<Range>().unwrap(), range, "{text}");
        }
        assert!(Range { min: 3, max: 8 }.contains(3));
        assert!(Range { min: 3, max: 8 }.contains(8));
        assert!(!Range { min: 3, max: 8 }.contains(9));
        assert!(!Range { min: 3, max: 8 }.contains(2));
        assert_eq!(Range::single(7).as_single(), Some(7));
        assert_eq!(Range::ANY.as_single(), None);
    }

    #[test]
    fn range_errors() {
        assert!(err_reason::<Range>("8..3").contains("8 is greater than 3"));
        assert!(err_reason::<Range>("..").contains("`*`"));
        assert!(err_reason::<Range>("").contains("not a number"));
        assert!(err_reason::<Range>("x").contains("not a number"));
        assert!(err_reason::<Range>("-1").contains("not a number"));
        assert!(err_reason::<Range>("1...3").contains("not a number"));
        assert!(err_reason::<Range>("4294967296").contains("larger than 4294967295"));
        assert!(err_reason::<Range>("1..2..3").contains("not a number"));
    }

    #[test]
    fn prefix_pattern_forms() {
        let p: PrefixPattern = "172.20.0.0/14{21,29}".parse().unwrap();
        assert_eq!(
            p,
            PrefixPattern {
                net: net("172.20.0.0/14"),
                min_len: 21,
                max_len: 29,
                less_specific: false
            }
        );
        let p: PrefixPattern = "10.0.0.0/8+".parse().unwrap();
        assert_eq!((p.min_len, p.max_len, p.less_specific), (8, 32, false));
        let p: PrefixPattern = "fd00::/8+".parse().unwrap();
        assert_eq!((p.min_len, p.max_len), (8, 128));
        let p: PrefixPattern = "172.20.1.0/24-".parse().unwrap();
        assert_eq!((p.min_len, p.max_len, p.less_specific), (0, 24, true));
        let p: PrefixPattern = "172.20.1.0/24".parse().unwrap();
        assert_eq!(p, PrefixPattern::exact(net("172.20.1.0/24")));
        let p: PrefixPattern = " fd00::/8{44, 64} ".parse().unwrap();
        assert_eq!((p.min_len, p.max_len), (44, 64));
        // BIRD accepts a lower bound under the net's length.
        let p: PrefixPattern = "172.20.1.0/24{16,28}".parse().unwrap();
        assert_eq!((p.min_len, p.max_len), (16, 28));
    }

    #[test]
    fn prefix_pattern_round_trip() {
        for text in [
            "172.20.0.0/14{21,29}",
            "10.0.0.0/8+",
            "172.20.1.0/24-",
            "172.20.1.0/24",
            "fd00::/8{44,64}",
            "0.0.0.0/0+",
            "::/0-",
            "172.20.1.0/24{0,24}",
            "172.20.1.1/32",
        ] {
            let p: PrefixPattern = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
            assert_eq!(p.to_string().parse::<PrefixPattern>().unwrap(), p);
        }
        // Equivalent spellings print in the short form.
        let p: PrefixPattern = "10.0.0.0/8{8,32}".parse().unwrap();
        assert_eq!(p.to_string(), "10.0.0.0/8+");
        let p: PrefixPattern = "10.0.0.1/32+".parse().unwrap();
        assert_eq!(p.to_string(), "10.0.0.1/32");
    }

    #[test]
    fn prefix_pattern_errors() {
        let r = err_reason::<PrefixPattern>("172.20.0.1/14{21,29}");
        assert!(
            r.contains("host bits") && r.contains("172.20.0.0/14"),
            "{r}"
        );
        let r = err_reason::<PrefixPattern>("172.20.0.0/14{29,21}");
        assert!(r.contains("29 is greater than 21"), "{r}");
        let r = err_reason::<PrefixPattern>("172.20.0.0/14{21,33}");
        assert!(r.contains("longer than 32") && r.contains("IPv4"), "{r}");
        let r = err_reason::<PrefixPattern>("fd00::/8{44,129}");
        assert!(r.contains("longer than 128"), "{r}");
        let r = err_reason::<PrefixPattern>("fd00::/8{44,300}");
        assert!(r.contains("longer than 128"), "{r}");
        let r = err_reason::<PrefixPattern>("172.20.0.0");
        assert!(r.contains("length is missing"), "{r}");
        let r = err_reason::<PrefixPattern>("172.20.0.0/33");
        assert!(r.contains("not a prefix pattern"), "{r}");
        let r = err_reason::<PrefixPattern>("172.20.0.0/14{21,29");
        assert!(r.contains("{min,max}"), "{r}");
        let r = err_reason::<PrefixPattern>("172.20.0.0/14{21}");
        assert!(r.contains("two lengths"), "{r}");
        let r = err_reason::<PrefixPattern>("172.20.0.0/14{a,29}");
        assert!(r.contains("not a number"), "{r}");
        let r = err_reason::<PrefixPattern>("");
        assert!(r.contains("not a prefix pattern"), "{r}");
        let r = err_reason::<PrefixPattern>("dn42");
        assert!(r.contains("not a prefix pattern"), "{r}");
    }

    #[test]
    fn prefix_pattern_matching() {
        let dn42: PrefixPattern = "172.20.0.0/14{21,29}".parse().unwrap();
        assert!(dn42.matches(&net("172.20.4.128/26")));
        assert!(dn42.matches(&net("172.23.255.248/29")));
        assert!(dn42.matches(&net("172.20.0.0/21")));
        assert!(!dn42.matches(&net("172.20.0.0/20"))); // too short
        assert!(!dn42.matches(&net("172.20.0.0/30"))); // too long
        assert!(!dn42.matches(&net("172.24.0.0/24"))); // outside
        assert!(!dn42.matches(&net("10.0.0.0/24")));
        assert!(!dn42.matches(&net("fd00::/48"))); // other family

        let exact = PrefixPattern::exact(net("172.20.1.0/24"));
        assert!(exact.matches(&net("172.20.1.0/24")));
        assert!(!exact.matches(&net("172.20.1.0/25")));
        assert!(!exact.matches(&net("172.20.0.0/24")));

        let less: PrefixPattern = "172.20.1.0/24-".parse().unwrap();
        assert!(less.matches(&net("172.20.1.0/24")));
        assert!(less.matches(&net("172.20.0.0/16")));
        assert!(less.matches(&net("0.0.0.0/0")));
        assert!(!less.matches(&net("172.21.0.0/16")));
        assert!(!less.matches(&net("172.20.1.0/25")));

        let v6: PrefixPattern = "fd00::/8{44,64}".parse().unwrap();
        assert!(v6.matches(&net("fd42:d42:d42::/48")));
        assert!(v6.matches(&net("fdff:ffff:ffff:ffff::/64")));
        assert!(!v6.matches(&net("fe00::/48")));
        assert!(!v6.matches(&net("fd42::/40")));
        assert!(!v6.matches(&net("fd42::/65")));

        let all: PrefixPattern = "::/0+".parse().unwrap();
        assert!(all.matches(&net("::/0")));
        assert!(all.matches(&net("2001:db8::1/128")));
        assert!(!all.matches(&net("0.0.0.0/0")));

        let host: PrefixPattern = "fd00::1/128".parse().unwrap();
        assert!(host.matches(&net("fd00::1/128")));
        assert!(!host.matches(&net("fd00::2/128")));
    }

    #[test]
    fn community_patterns() {
        let p: StdPattern = "(64511,1..9)".parse().unwrap();
        assert_eq!(
            p,
            StdPattern {
                asn: Range::single(64511),
                value: Range { min: 1, max: 9 }
            }
        );
        assert!(p.matches((64511 << 16) | 5));
        assert!(!p.matches((64511 << 16) | 10));
        assert!(!p.matches((64512 << 16) | 5));
        let p: StdPattern = "(*,5)".parse().unwrap();
        assert!(p.matches(5));
        assert!(p.matches((65535 << 16) | 5));
        assert!(!p.matches(6));
        let p: StdPattern = " ( 64511 , 41.. ) ".parse().unwrap();
        assert!(p.matches((64511 << 16) | 65535));
        assert_eq!(p.to_string(), "(64511,41..)");
        for text in ["(64511,1..9)", "(*,5)", "(64511,*)", "(..10,3..)", "(0,0)"] {
            let p: StdPattern = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
        }
        assert_eq!(p.as_single(), None);
        assert_eq!(
            "(64511,41)".parse::<StdPattern>().unwrap().as_single(),
            Some((64511 << 16) | 41)
        );

        let r = err_reason::<StdPattern>("(65536,1)");
        assert!(r.contains("65536 does not fit in 16 bits"), "{r}");
        let r = err_reason::<StdPattern>("(1,1..70000)");
        assert!(r.contains("70000 does not fit"), "{r}");
        let r = err_reason::<StdPattern>("(4294967295,1)");
        assert!(r.contains("4294967295 does not fit"), "{r}");
        let r = err_reason::<StdPattern>("(1,70000..)");
        assert!(r.contains("70000 does not fit"), "{r}");
        let r = err_reason::<StdPattern>("64511:1");
        assert!(r.contains("parentheses"), "{r}");
        let r = err_reason::<StdPattern>("(64511,1,2)");
        assert!(r.contains("2 parts"), "{r}");
        let r = err_reason::<StdPattern>("(64511,9..1)");
        assert!(r.contains("9 is greater than 1"), "{r}");
        let r = err_reason::<StdPattern>("(64511,x)");
        assert!(r.contains("not a number"), "{r}");
    }

    #[test]
    fn large_community_patterns() {
        let p: LargePattern = "(4242420000,*,1..3)".parse().unwrap();
        assert!(p.matches(&[4242420000, 77, 2]));
        assert!(!p.matches(&[4242420000, 77, 4]));
        assert!(!p.matches(&[4242420001, 77, 2]));
        for text in [
            "(4242420000,*,1..3)",
            "(*,*,*)",
            "(1,2,3)",
            "(..5,4294967295,9..)",
        ] {
            let p: LargePattern = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
        }
        let r = err_reason::<LargePattern>("(1,2)");
        assert!(r.contains("3 parts"), "{r}");
        let r = err_reason::<LargePattern>("(1,2,4294967296)");
        assert!(r.contains("larger than"), "{r}");
        let r = err_reason::<LargePattern>("1:2:3");
        assert!(r.contains("parentheses"), "{r}");
    }

    #[test]
    fn exact_communities() {
        assert_eq!(parse_community("(64511,41)"), Ok((64511 << 16) | 41));
        assert_eq!(parse_community("(65535,65535)"), Ok(u32::MAX));
        let e = parse_community("(64511,1..3)").unwrap_err();
        assert!(e.reason.contains("one value per part"), "{e}");
        assert!(parse_community("(64511,*)").is_err());
        assert!(parse_community("(64511,65536)").is_err());
        assert_eq!(
            parse_large_community("(4242420000,1,2)"),
            Ok([4242420000, 1, 2])
        );
        assert!(parse_large_community("(4242420000,*,2)").is_err());
        assert!(parse_large_community("(4242420000,1)").is_err());
        assert_eq!(format_community((64511 << 16) | 41), "(64511,41)");
        assert_eq!(format_large_community(&[1, 2, 3]), "(1,2,3)");
        assert_eq!(format_community(parse_community("(1,2)").unwrap()), "(1,2)");
    }

    #[test]
    fn never_panics_on_odd_text() {
        for text in [
            "",
            "(",
            ")",
            "()",
            "(,)",
            "(,,)",
            "{",
            "}",
            "/",
            "+",
            "-",
            "{,}",
            "1.2.3.4/8{",
            "::/0{0,0}",
            "..",
            "...",
            "*..*",
            "(*)",
            "((1,2))",
            "é",
            "1/ 8",
            "\u{0}",
        ] {
            let _ = text.parse::<Range>();
            let _ = text.parse::<PrefixPattern>();
            let _ = text.parse::<StdPattern>();
            let _ = text.parse::<LargePattern>();
        }
    }
}
