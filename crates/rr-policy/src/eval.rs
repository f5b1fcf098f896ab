//! Rule evaluation: [`Policy::evaluate`], [`Match::holds`], [`Action::apply`].
//!
//! What it is not: parsing (`pattern.rs`, and `rr-config` for whole policies) or the
//! DN42 link communities (`dn42.rs`), which the RIB applies before a policy runs.

use crate::{Action, Context, Match, Outcome, Policy, Verdict};
use rr_bgp::packet::{Attributes, Family};

impl Policy {
    /// A policy without rules: `default` decides everything.
    pub fn new(name: impl Into<String>, default: Verdict) -> Policy {
        Policy {
            name: name.into(),
            rules: Vec::new(),
            default,
        }
    }

    /// Evaluates the policy for one route; actions modify `attrs` in place.
    ///
    /// Rules run in order. A rule whose matches all hold applies its actions in order
    /// and, if it has a verdict, ends the evaluation with it (later rules see the
    /// attributes as the earlier rules left them). Otherwise the policy's default
    /// decides. Actions of rules that ran stay applied whatever the verdict; a caller
    /// that rejects the route drops those attributes anyway.
    pub fn evaluate(&self, ctx: &Context, attrs: &mut Attributes) -> Outcome {
        let mut modified = false;
        let mut med_set = false;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matches.iter().all(|m| m.holds(ctx, attrs)) {
                continue;
            }
            for action in &rule.actions {
                modified |= action.apply(ctx, attrs);
                med_set |= matches!(action, Action::Med(_));
            }
            if let Some(verdict) = rule.verdict {
                return Outcome {
                    verdict,
                    rule: Some(i),
                    modified,
                    med_set,
                };
            }
        }
        Outcome {
            verdict: self.default,
            rule: None,
            modified,
            med_set,
        }
    }
}

impl Match {
    /// Whether the condition holds for a route. A list holds when any element matches
    /// (an empty list never holds); a route without the attribute asked about (no
    /// origin AS, e.g. a path ending in an AS_SET) does not match it.
    pub fn holds(&self, ctx: &Context, attrs: &Attributes) -> bool {
        let path = &attrs.as_path;
        match self {
            Match::Family(family) => family_of(ctx) == *family,
            Match::Prefix(patterns) => patterns.iter().any(|p| p.matches(&ctx.prefix)),
            Match::Origin(asns) => path.origin().is_some_and(|o| asns.contains(&o)),
            Match::PathContains(asns) => asns.iter().any(|&a| path.contains(a)),
            Match::NeighborAs(asns) => path.first().is_some_and(|f| asns.contains(&f)),
            Match::PathLen(range) => range.contains(u32::try_from(path.len()).unwrap_or(u32::MAX)),
            Match::Community(patterns) => attrs
                .communities
                .iter()
                .any(|&c| patterns.iter().any(|p| p.matches(c))),
            Match::LargeCommunity(patterns) => attrs
                .large_communities
                .iter()
                .any(|c| patterns.iter().any(|p| p.matches(c))),
            Match::Roa(states) => states.contains(&ctx.roa),
        }
    }
}

/// The family of the route's prefix.
fn family_of(ctx: &Context) -> Family {
    match ctx.prefix {
        ipnet::IpNet::V4(_) => Family::Ipv4Unicast,
        ipnet::IpNet::V6(_) => Family::Ipv6Unicast,
    }
}

impl Action {
    /// Applies the action; returns whether the attributes changed (setting a value
    /// already there, adding a community already present or deleting one that is
    /// absent changes nothing).
    pub fn apply(&self, ctx: &Context, attrs: &mut Attributes) -> bool {
        match self {
            Action::LocalPref(v) => set(&mut attrs.local_pref, *v),
            Action::Med(v) => set(&mut attrs.med, *v),
            Action::Prepend { asn, times } => {
                let asn = asn.unwrap_or(ctx.local_asn);
                for _ in 0..*times {
                    // RFC 4271 section 5.1.2: into the leading AS_SEQUENCE.
                    attrs.as_path.prepend(asn);
                }
                *times > 0
            }
            Action::AddCommunity(add) => {
                let before = attrs.communities.len();
                for &c in add {
                    if !attrs.communities.contains(&c) {
                        attrs.communities.push(c);
                    }
                }
                attrs.communities.len() != before
            }
            Action::DeleteCommunity(patterns) => {
                let before = attrs.communities.len();
                attrs
                    .communities
                    .retain(|&c| !patterns.iter().any(|p| p.matches(c)));
                attrs.communities.len() != before
            }
            Action::AddLargeCommunity(add) => {
                let before = attrs.large_communities.len();
                for c in add {
                    if !attrs.large_communities.contains(c) {
                        attrs.large_communities.push(*c);
                    }
                }
                attrs.large_communities.len() != before
            }
            Action::DeleteLargeCommunity(patterns) => {
                let before = attrs.large_communities.len();
                attrs
                    .large_communities
                    .retain(|c| !patterns.iter().any(|p| p.matches(c)));
                attrs.large_communities.len() != before
            }
        }
    }
}

/// `*slot = Some(v)`; whether that changed it.
fn set(slot: &mut Option<u32>, v: u32) -> bool {
    let changed = *slot != Some(v);
    *slot = Some(v);
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LargePattern, PrefixPattern, Range, Rule, StdPattern, Validity};
    use rr_bgp::packet::AsSegment;

    const US: u32 = 4242420001;

    fn ctx(prefix: &str, roa: Validity) -> Context {
        Context {
            prefix: prefix.parse().unwrap(),
            roa,
            local_asn: US,
        }
    }

    fn attrs(path: &[u32]) -> Attributes {
        let mut a = Attributes::default();
        a.as_path.segments = vec![AsSegment::Sequence(path.to_vec())];
        a
    }

    fn c(asn: u32, v: u32) -> u32 {
        (asn << 16) | v
    }

    fn std(s: &str) -> StdPattern {
        s.parse().unwrap()
    }

    fn rule(matches: Vec<Match>, actions: Vec<Action>, verdict: Option<Verdict>) -> Rule {
        Rule {
            matches,
            actions,
            verdict,
        }
    }

    /// Whether a single match holds for a route.
    fn holds(m: Match, ctx: &Context, a: &Attributes) -> bool {
        m.holds(ctx, a)
    }

    #[test]
    fn matches() {
        let v4 = ctx("172.20.4.128/26", Validity::Valid);
        let v6 = ctx("fd42:d42:d42::/48", Validity::NotFound);
        let mut a = attrs(&[4242420010, 4242420020, 4242420049]);
        a.communities = vec![c(64511, 3), c(64511, 24)];
        a.large_communities = vec![[4242420010, 1, 2]];

        assert!(holds(Match::Family(Family::Ipv4Unicast), &v4, &a));
        assert!(!holds(Match::Family(Family::Ipv6Unicast), &v4, &a));
        assert!(holds(Match::Family(Family::Ipv6Unicast), &v6, &a));

        let dn42 = |s: &str| s.parse::<PrefixPattern>().unwrap();
        let prefixes = Match::Prefix(vec![dn42("10.0.0.0/8+"), dn42("172.20.0.0/14{21,29}")]);
        assert!(holds(prefixes.clone(), &v4, &a));
        assert!(!holds(prefixes, &v6, &a));
        assert!(!holds(Match::Prefix(vec![]), &v4, &a));

        assert!(holds(Match::Origin(vec![1, 4242420049]), &v4, &a));
        assert!(!holds(Match::Origin(vec![4242420010]), &v4, &a));
        assert!(holds(Match::PathContains(vec![4242420020]), &v4, &a));
        assert!(!holds(Match::PathContains(vec![US]), &v4, &a));
        assert!(holds(Match::NeighborAs(vec![4242420010]), &v4, &a));
        assert!(!holds(Match::NeighborAs(vec![4242420049]), &v4, &a));

        assert!(holds(Match::PathLen(Range::single(3)), &v4, &a));
        assert!(holds(Match::PathLen("..3".parse().unwrap()), &v4, &a));
        assert!(!holds(Match::PathLen("4..".parse().unwrap()), &v4, &a));

        assert!(holds(Match::Community(vec![std("(64511,1..9)")]), &v4, &a));
        assert!(!holds(Match::Community(vec![std("(64511,4..9)")]), &v4, &a));
        assert!(holds(
            Match::Community(vec![std("(1,1)"), std("(*,24)")]),
            &v4,
            &a
        ));
        let large = |s: &str| s.parse::<LargePattern>().unwrap();
        assert!(holds(
            Match::LargeCommunity(vec![large("(4242420010,*,*)")]),
            &v4,
            &a
        ));
        assert!(!holds(
            Match::LargeCommunity(vec![large("(4242420010,2,*)")]),
            &v4,
            &a
        ));

        assert!(holds(Match::Roa(vec![Validity::Valid]), &v4, &a));
        assert!(!holds(Match::Roa(vec![Validity::Valid]), &v6, &a));
        assert!(holds(
            Match::Roa(vec![Validity::Invalid, Validity::NotFound]),
            &v6,
            &a
        ));
    }

    #[test]
    fn matches_on_odd_paths() {
        let v4 = ctx("172.20.4.128/26", Validity::Valid);
        // Empty path (an iBGP route of our own): no origin, no neighbor, length 0.
        let empty = Attributes::default();
        assert!(!holds(Match::Origin(vec![US]), &v4, &empty));
        assert!(!holds(Match::NeighborAs(vec![US]), &v4, &empty));
        assert!(holds(Match::PathLen(Range::single(0)), &v4, &empty));
        // A path ending in an AS_SET has no origin AS (RFC 6811 section 2), and a SET
        // counts 1 in the length.
        let mut set = attrs(&[4242420010]);
        set.as_path
            .segments
            .push(AsSegment::Set(vec![4242420049, 4242420050]));
        assert!(!holds(Match::Origin(vec![4242420049]), &v4, &set));
        assert!(holds(Match::PathContains(vec![4242420050]), &v4, &set));
        assert!(holds(Match::PathLen(Range::single(2)), &v4, &set));
        // No communities at all.
        assert!(!holds(Match::Community(vec![std("(*,*)")]), &v4, &empty));
        assert!(!holds(
            Match::LargeCommunity(vec!["(*,*,*)".parse().unwrap()]),
            &v4,
            &empty
        ));
    }

    #[test]
    fn actions() {
        let k = ctx("172.20.4.128/26", Validity::Valid);
        let mut a = attrs(&[4242420010]);
        a.communities = vec![c(64511, 3), c(1, 1), c(64511, 24)];
        a.large_communities = vec![[1, 2, 3], [4242420010, 1, 1]];

        assert!(Action::LocalPref(200).apply(&k, &mut a));
        assert_eq!(a.local_pref, Some(200));
        assert!(!Action::LocalPref(200).apply(&k, &mut a));
        assert!(Action::Med(50).apply(&k, &mut a));
        assert_eq!(a.med, Some(50));
        assert!(!Action::Med(50).apply(&k, &mut a));

        assert!(Action::Prepend {
            asn: None,
            times: 2
        }
        .apply(&k, &mut a));
        assert_eq!(a.as_path.to_string(), format!("{US} {US} 4242420010"));
        assert!(Action::Prepend {
            asn: Some(7),
            times: 1
        }
        .apply(&k, &mut a));
        assert_eq!(a.as_path.first(), Some(7));
        assert!(!Action::Prepend {
            asn: None,
            times: 0
        }
        .apply(&k, &mut a));
        assert_eq!(a.as_path.len(), 4);
        // Onto an empty path: a new sequence.
        let mut e = Attributes::default();
        assert!(Action::Prepend {
            asn: None,
            times: 1
        }
        .apply(&k, &mut e));
        assert_eq!(e.as_path.origin(), Some(US));

        // Add: no duplicates, appended in order.
        assert!(
            Action::AddCommunity(vec![c(64511, 41), c(1, 1), c(64511, 1276)]).apply(&k, &mut a)
        );
        assert_eq!(
            a.communities,
            vec![
                c(64511, 3),
                c(1, 1),
                c(64511, 24),
                c(64511, 41),
                c(64511, 1276)
            ]
        );
        assert!(!Action::AddCommunity(vec![c(1, 1)]).apply(&k, &mut a));
        // Delete keeps the order of the rest.
        assert!(
            Action::DeleteCommunity(vec![std("(64511,1..9)"), std("(64511,1000..1999)")])
                .apply(&k, &mut a)
        );
        assert_eq!(a.communities, vec![c(1, 1), c(64511, 24), c(64511, 41)]);
        assert!(!Action::DeleteCommunity(vec![std("(2,*)")]).apply(&k, &mut a));

        assert!(Action::AddLargeCommunity(vec![[9, 9, 9], [1, 2, 3]]).apply(&k, &mut a));
        assert_eq!(
            a.large_communities,
            vec![[1, 2, 3], [4242420010, 1, 1], [9, 9, 9]]
        );
        assert!(!Action::AddLargeCommunity(vec![[9, 9, 9]]).apply(&k, &mut a));
        assert!(
            Action::DeleteLargeCommunity(vec!["(4242420010,*,*)".parse().unwrap()])
                .apply(&k, &mut a)
        );
        assert_eq!(a.large_communities, vec![[1, 2, 3], [9, 9, 9]]);
        assert!(
            !Action::DeleteLargeCommunity(vec!["(4242420010,*,*)".parse().unwrap()])
                .apply(&k, &mut a)
        );
    }

    #[test]
    fn rule_order_verdict_and_default() {
        let k = ctx("172.20.4.128/26", Validity::Valid);
        let policy = Policy {
            name: "p".into(),
            rules: vec![
                // 0: no verdict, applies and goes on.
                rule(vec![], vec![Action::LocalPref(100)], None),
                // 1: does not match.
                rule(
                    vec![Match::Origin(vec![1])],
                    vec![Action::Med(1)],
                    Some(Verdict::Accept),
                ),
                // 2: matches; overrides rule 0's local-pref, then rejects.
                rule(
                    vec![Match::NeighborAs(vec![4242420010])],
                    vec![Action::LocalPref(300)],
                    Some(Verdict::Reject),
                ),
                // 3: never reached for that route.
                rule(vec![], vec![Action::Med(9)], Some(Verdict::Accept)),
            ],
            default: Verdict::Accept,
        };
        let mut a = attrs(&[4242420010]);
        let out = policy.evaluate(&k, &mut a);
        assert_eq!(
            out,
            Outcome {
                verdict: Verdict::Reject,
                rule: Some(2),
                modified: true,
                med_set: false
            }
        );
        assert_eq!((a.local_pref, a.med), (Some(300), None));

        // Another neighbor: rule 3 accepts.
        let mut a = attrs(&[4242420011]);
        let out = policy.evaluate(&k, &mut a);
        assert_eq!(
            (out.verdict, out.rule, out.med_set),
            (Verdict::Accept, Some(3), true)
        );
        assert_eq!((a.local_pref, a.med), (Some(100), Some(9)));
        // Setting the MED the route already has changes nothing, but is reported.
        let mut a = attrs(&[4242420011]);
        a.med = Some(9);
        a.local_pref = Some(100);
        let out = policy.evaluate(&k, &mut a);
        assert_eq!((out.modified, out.med_set), (false, true));

        // No rule decides: the default does.
        let only_default = Policy {
            name: "d".into(),
            rules: vec![rule(
                vec![Match::Origin(vec![1])],
                vec![],
                Some(Verdict::Accept),
            )],
            default: Verdict::Reject,
        };
        let mut a = attrs(&[4242420011]);
        let before = a.clone();
        assert_eq!(
            only_default.evaluate(&k, &mut a),
            Outcome {
                verdict: Verdict::Reject,
                rule: None,
                modified: false,
                med_set: false
            }
        );
        assert_eq!(a, before);
        assert_eq!(
            Policy::new("empty", Verdict::Accept).evaluate(&k, &mut a),
            Outcome {
                verdict: Verdict::Accept,
                rule: None,
                modified: false,
                med_set: false
            }
        );
    }

    #[test]
    fn modified_only_when_changed() {
        let k = ctx("172.20.4.128/26", Validity::Valid);
        let policy = Policy {
            name: "p".into(),
            rules: vec![rule(
                vec![],
                vec![
                    Action::LocalPref(200),
                    Action::AddCommunity(vec![c(64511, 41)]),
                    Action::DeleteCommunity(vec![std("(65535,*)")]),
                ],
                Some(Verdict::Accept),
            )],
            default: Verdict::Reject,
        };
        let mut a = attrs(&[4242420010]);
        a.local_pref = Some(200);
        a.communities = vec![c(64511, 41)];
        let out = policy.evaluate(&k, &mut a);
        assert_eq!(
            (out.verdict, out.rule, out.modified),
            (Verdict::Accept, Some(0), false)
        );
        a.local_pref = Some(100);
        assert!(policy.evaluate(&k, &mut a).modified);
        assert_eq!(a.local_pref, Some(200));
        // A change by a rule without a verdict counts too.
        let p = Policy {
            name: "q".into(),
            rules: vec![rule(vec![], vec![Action::Med(5)], None)],
            default: Verdict::Accept,
        };
        let out = p.evaluate(&k, &mut a);
        assert_eq!((out.rule, out.modified), (None, true));
    }

    /// The DN42 wiki's BIRD import filter, written as a policy:
    ///
    /// ```text
    /// if is_valid_network() && !is_self_net() then {
    ///   if (roa_check(dn42_roa, net, bgp_path.last) != ROA_VALID) then reject;
    ///   update_flags(...); accept;
    /// }
    /// reject;
    /// ```
    /// `update_flags` is the RIB's `apply_link`; the rest is this policy.
    #[test]
    fn wiki_import_filter_as_a_policy() {
        let set =
            |s: &[&str]| -> Vec<PrefixPattern> { s.iter().map(|p| p.parse().unwrap()).collect() };
        let valid_network = set(&[
            "172.20.0.0/14{21,29}",
            "172.20.0.0/24{28,32}",
            "172.21.0.0/24{28,32}",
            "172.22.0.0/24{28,32}",
            "172.23.0.0/24{28,32}",
            "172.31.0.0/16+",
            "10.100.0.0/14+",
            "10.127.0.0/16+",
            "10.0.0.0/8{15,24}",
            "fd00::/8{44,64}",
        ]);
        let self_net = set(&["172.20.1.0/27+", "fd00:1::/48+"]);
        let policy = Policy {
            name: "dn42-import".into(),
            rules: vec![
                rule(vec![Match::Prefix(self_net)], vec![], Some(Verdict::Reject)),
                rule(
                    vec![Match::Roa(vec![Validity::Invalid, Validity::NotFound])],
                    vec![],
                    Some(Verdict::Reject),
                ),
                rule(
                    vec![Match::Prefix(valid_network)],
                    vec![],
                    Some(Verdict::Accept),
                ),
            ],
            default: Verdict::Reject,
        };
        let cases: [(&str, Validity, Verdict, Option<usize>); 10] = [
            ("172.20.4.128/26", Validity::Valid, Verdict::Accept, Some(2)),
            (
                "172.20.4.128/26",
                Validity::Invalid,
                Verdict::Reject,
                Some(1),
            ),
            (
                "172.20.4.128/26",
                Validity::NotFound,
                Verdict::Reject,
                Some(1),
            ),
            ("172.20.0.0/16", Validity::Valid, Verdict::Reject, None), // too short
            ("172.20.4.128/30", Validity::Valid, Verdict::Reject, None), // too specific
            ("172.20.0.53/32", Validity::Valid, Verdict::Accept, Some(2)), // anycast
            ("8.8.8.0/24", Validity::Valid, Verdict::Reject, None),    // not DN42
            ("172.20.1.0/28", Validity::Valid, Verdict::Reject, Some(0)), // ours
            (
                "fd42:d42:d42::/48",
                Validity::Valid,
                Verdict::Accept,
                Some(2),
            ),
            ("2001:db8::/48", Validity::Valid, Verdict::Reject, None),
        ];
        for (prefix, roa, verdict, rule_index) in cases {
            let mut a = attrs(&[4242420010, 4242420049]);
            let out = policy.evaluate(&ctx(prefix, roa), &mut a);
            assert_eq!(
                (out.verdict, out.rule),
                (verdict, rule_index),
                "{prefix} {roa:?}"
            );
            assert!(!out.modified);
        }
    }
}
