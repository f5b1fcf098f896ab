//! Arbitrary bytes as a DNS message: `decode_response` never panics, what it accepts
//! re-encodes into something it accepts again with the same value; and the resolver,
//! fed the bytes as the answer (ID patched in) to its pending query, never panics and
//! still ends the lookup with exactly one result.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rr_dns::wire::decode_response;
use rr_dns::{Resolver, Want};
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = decode_response(data) {
        let mut out = Vec::new();
        r.encode(&mut out);
        let mut want = r.clone();
        want.header.nscount = 0;
        want.header.arcount = 0;
        assert_eq!(decode_response(&out).expect("own encoding decodes"), want);
    }

    let server = "172.20.0.53:53".parse().unwrap();
    let mut resolver = Resolver::with_seed(vec![server], vec!["dn42".into()], 7);
    let now = Instant::now();
    let q = resolver.resolve(now, "www.example.dn42", Want::V4);
    let (to, query) = resolver.poll_transmit().expect("a query");
    let mut answer = data.to_vec();
    if let Some(id) = answer.get_mut(..2) {
        id.copy_from_slice(&query[..2]);
    }
    resolver.handle_datagram(now, to, &answer);
    let result = loop {
        if let Some(res) = resolver.poll_result() {
            break res;
        }
        let deadline = resolver.poll_timeout().expect("waits on a deadline");
        resolver.handle_timeout(deadline);
    };
    assert_eq!(result.0, q);
    assert!(resolver.poll_result().is_none());
});
