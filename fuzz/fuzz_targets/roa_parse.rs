//! Arbitrary bytes as a ROA file (BIRD or JSON, whichever `parse_str` detects): it never
//! panics; every ROA it returns passes `Roa::new` again and survives a round trip through
//! BIRD 2 text; the set built from them validates each ROA's own prefix and AS (Valid,
//! or Invalid for AS0); and the diff from the empty set rebuilds the same set and marks
//! every ROA's prefix as affected.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rr_roa::parse::{parse_bird, parse_str};
use rr_roa::{Roa, RoaSet, Validity};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = parse_str(text) else {
        return;
    };
    let mut bird = String::new();
    for roa in &parsed.roas {
        assert_eq!(
            Roa::new(roa.prefix(), roa.max_len(), roa.asn()).as_ref(),
            Ok(roa)
        );
        bird.push_str(&format!("route {roa};\n"));
    }
    let again = parse_bird(&bird);
    assert_eq!(again.errors, []);
    assert_eq!(again.roas, parsed.roas);

    let set = RoaSet::from_roas(parsed.roas.iter().copied());
    for roa in &set {
        let want = if roa.asn() == 0 {
            Validity::Invalid
        } else {
            Validity::Valid
        };
        assert_eq!(set.validate(roa.prefix(), Some(roa.asn())), want);
    }
    let delta = RoaSet::diff(&RoaSet::new(), &set);
    let mut rebuilt = RoaSet::new();
    rebuilt.apply(&delta);
    assert_eq!(rebuilt, set);
    assert!(set.iter().all(|roa| delta.affects(roa.prefix())));
});
