//! The real DN42 ROA snapshots in shared/data/dn42_roa (see its README.md): counts and
//! malformed entries as documented there, the same ROA set from every format of one
//! snapshot, and validation against it.

use ipnet::IpNet;
use rr_roa::parse::{parse_file, EntryError, Format, Parsed};
use rr_roa::{Roa, RoaSet, Validity};

fn data(name: &str) -> Parsed {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/dn42_roa/"
    )
    .to_owned()
        + name;
    parse_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn families(roas: &[Roa]) -> (usize, usize) {
    let v4 = roas
        .iter()
        .filter(|r| matches!(r.prefix(), IpNet::V4(_)))
        .count();
    (v4, roas.len() - v4)
}

/// (line, error) of every bad entry.
fn errors(p: &Parsed) -> Vec<(usize, EntryError)> {
    p.errors.iter().map(|e| (e.line, e.error.clone())).collect()
}

#[test]
fn netravnen_bird2_combined() {
    let p = data("netravnen_bird_route_dn42.conf");
    assert_eq!(p.format, Format::Bird2);
    // 3312 lines, 3 malformed.
    assert_eq!(p.roas.len(), 3309);
    assert_eq!(
        errors(&p),
        [
            (124, EntryError::Missing("prefix")),
            (1561, EntryError::Missing("AS number")),
            (3312, EntryError::Missing("AS number")),
        ]
    );
    // README: 1759 v4 lines + 1553 v6 lines; the per-family files count the prefixless
    // `max 112` line as IPv4, so all 3 malformed lines are "IPv4".
    assert_eq!(families(&p.roas), (1756, 1553));
}

#[test]
fn netravnen_bird2_per_family() {
    let v4 = data("netravnen_bird4_route_dn42.conf");
    let v6 = data("netravnen_bird6_route_dn42.conf");
    assert_eq!(
        errors(&v4),
        [
            (1, EntryError::Missing("prefix")),
            (8, EntryError::Missing("AS number")),
            (1759, EntryError::Missing("AS number")),
        ]
    );
    assert_eq!(families(&v4.roas), (1756, 0));
    assert_eq!(errors(&v6), []);
    assert_eq!(families(&v6.roas), (0, 1553));
    // The family files hold exactly the combined file's ROAs.
    let combined = data("netravnen_bird_route_dn42.conf").roas;
    let mut split: Vec<Roa> = v4.roas.into_iter().chain(v6.roas).collect();
    let mut combined_sorted = combined.clone();
    split.sort_unstable();
    combined_sorted.sort_unstable();
    assert_eq!(split, combined_sorted);
}

#[test]
fn netravnen_bird1() {
    let p = data("netravnen_bird_roa_dn42.conf");
    assert_eq!(p.format, Format::Bird1);
    assert_eq!(p.roas.len(), 3309);
    assert_eq!(
        errors(&p).iter().map(|e| e.0).collect::<Vec<_>>(),
        [124, 1561, 3312]
    );
}

#[test]
fn netravnen_json() {
    let p = data("netravnen_export_dn42.json");
    assert_eq!(p.format, Format::Json);
    assert_eq!(p.roas.len(), 3309);
    // The `"prefix": null` entry and the two `"asn": "AS"` ones (for 10.100.0.0/14 and
    // 172.31.0.0/16), each reported at the line of its `{`.
    assert_eq!(
        errors(&p),
        [
            (864, EntryError::Missing("prefix")),
            (10923, EntryError::Asn("AS".into())),
            (23180, EntryError::Asn("AS".into())),
        ]
    );
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/dn42_roa/netravnen_export_dn42.json"
    ))
    .unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(
        lines[863..866],
        ["{", r#""asn": "AS64654","#, r#""prefix": null,"#]
    );
    assert_eq!(
        lines[10922..10925],
        ["{", r#""asn": "AS","#, r#""prefix": "10.100.0.0/14","#]
    );
    assert_eq!(
        lines[23179..23182],
        ["{", r#""asn": "AS","#, r#""prefix": "172.31.0.0/16","#]
    );
}

#[test]
fn netravnen_slurm() {
    let p = data("netravnen_export_rfc8416_dn42.json");
    assert_eq!(p.format, Format::Slurm);
    assert_eq!(p.roas.len(), 3309);
    let kinds: Vec<EntryError> = p.errors.iter().map(|e| e.error.clone()).collect();
    assert_eq!(
        kinds,
        [
            EntryError::Missing("prefix"),
            EntryError::Asn(String::new()),
            EntryError::Asn(String::new()),
        ]
    );
}

#[test]
fn one_snapshot_one_set() {
    let bird2 = RoaSet::from_roas(data("netravnen_bird_route_dn42.conf").roas);
    let bird1 = RoaSet::from_roas(data("netravnen_bird_roa_dn42.conf").roas);
    let json = RoaSet::from_roas(data("netravnen_export_dn42.json").roas);
    let slurm = RoaSet::from_roas(data("netravnen_export_rfc8416_dn42.json").roas);
    // 3309 good lines, one of them twice (lines 843 and 844, fd6d:3f59:4c68::/48).
    assert_eq!(bird2.len(), 3308);
    assert_eq!(bird1, bird2);
    assert_eq!(json, bird2);
    assert_eq!(slurm, bird2);
}

#[test]
fn burble_2022() {
    let v4 = data("burble_bird2_20221109_roa_dn42.conf");
    let v6 = data("burble_bird2_20221109_roa_dn42_v6.conf");
    assert_eq!((v4.roas.len(), v4.errors.len()), (2088, 0));
    assert_eq!((v6.roas.len(), v6.errors.len()), (1875, 0));
    assert_eq!(families(&v4.roas), (2088, 0));
    assert_eq!(families(&v6.roas), (0, 1875));
    let set = RoaSet::from_roas(v4.roas.into_iter().chain(v6.roas));
    let as0: Vec<&Roa> = set.iter().filter(|r| r.asn() == 0).collect();
    assert!(!as0.is_empty(), "the 2022 snapshot has AS0 ROAs");
    // Every route a ROA names exactly is valid for that ROA's AS, unless it is AS0.
    for roa in &set {
        let want = if roa.asn() == 0 {
            Validity::Invalid
        } else {
            Validity::Valid
        };
        assert_eq!(set.validate(roa.prefix(), Some(roa.asn())), want, "{roa}");
    }
}

#[test]
fn validate_against_the_snapshot() {
    let set = RoaSet::from_roas(data("netravnen_bird_route_dn42.conf").roas);
    // Line 2310: `route 172.20.4.128/26 max 28 as 4242420049; # DN42/DIEMACO-MNT`.
    let example = net("172.20.4.128/26");
    let asns: Vec<u32> = set
        .covering(example)
        .filter(|r| r.prefix() == example)
        .map(|r| r.asn())
        .collect();
    assert!(asns.contains(&4242420049), "{asns:?}");
    assert_eq!(set.validate(example, Some(4242420049)), Validity::Valid);
    assert_eq!(
        set.validate(net("172.20.4.144/28"), Some(4242420049)),
        Validity::Valid
    );
    assert_eq!(
        set.validate(net("172.20.4.128/29"), Some(4242420049)),
        Validity::Invalid
    );
    assert_eq!(set.validate(example, Some(4242420050)), Validity::Invalid);
    assert_eq!(set.validate(example, None), Validity::Invalid);
    // Public space has no DN42 ROA.
    assert_eq!(
        set.validate(net("8.8.8.0/24"), Some(15169)),
        Validity::NotFound
    );
    assert_eq!(
        set.validate(net("2001:db8::/32"), Some(1)),
        Validity::NotFound
    );
}
