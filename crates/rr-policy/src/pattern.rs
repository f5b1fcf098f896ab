//! The textual patterns of the policy language and their matchers: prefix patterns
//! (BIRD prefix-set syntax), standard and large community patterns.
//!
//! What it is not: the rule evaluation (`eval.rs`).

use ipnet::IpNet;

/// A closed range of integers, `min..=max`. Config forms: `5`, `3..8`, `..8`, `3..`, `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// Smallest value included.
    pub min: u32,
    /// Largest value included.
    pub max: u32,
}

/// BIRD prefix-set element: `net` (exactly), `net+` (net and all more-specifics),
/// `net-` (net and all less-specifics), `net{a,b}` (inside net, length a..=b).
/// Matches a prefix inside `net` whose length is within `[min_len, max_len]`
/// (for `net-`: a prefix containing `net`, length `0..=len(net)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixPattern {
    /// The network (host bits clear).
    pub net: IpNet,
    /// Shortest length matched.
    pub min_len: u8,
    /// Longest length matched.
    pub max_len: u8,
    /// `net-`: less-specifics instead of more-specifics.
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
