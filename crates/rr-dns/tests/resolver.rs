//! The stub resolver on a virtual clock: questions asked, answers matched (real dnsmasq
//! responses from tests/data with the ID patched in), retries, server rotation,
//! merging of A and AAAA, and junk from the network.

use rr_dns::wire::{
    decode_response, Header, Name, Question, RData, Record, RecordType, Response, CLASS_IN,
};
use rr_dns::{reverse_name, Answer, DnsError, QueryId, Resolver, Want, TRY_TIMEOUT};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const S1: &str = "172.20.0.53:53";
const S2: &str = "[fd42:d42:d42:54::1]:53";

fn resolver(servers: &[&str]) -> Resolver {
    Resolver::with_seed(
        servers.iter().map(|s| sa(s)).collect(),
        vec!["dn42".into(), "20.172.in-addr.arpa".into()],
        42,
    )
}

/// Every datagram waiting, decoded: (server, id, question name, type).
fn sent(r: &mut Resolver) -> Vec<(SocketAddr, u16, String, RecordType)> {
    std::iter::from_fn(|| r.poll_transmit())
        .map(|(to, bytes)| {
            let q = decode_response(&bytes).expect("own query decodes");
            assert!(!q.header.is_response && q.header.recursion_desired);
            assert_eq!(q.questions.len(), 1);
            assert_eq!(q.questions[0].qclass, CLASS_IN);
            let name = q.questions[0].name.to_string();
            (to, q.header.id, name, q.questions[0].qtype)
        })
        .collect()
}

/// A captured response with `id` patched in.
fn captured(file: &str, id: u16) -> Vec<u8> {
    let mut b = data(file);
    b[..2].copy_from_slice(&id.to_be_bytes());
    b
}

/// A response built with the codec: `answers` for `qname`/`qtype`.
fn answer(id: u16, rcode: u8, qname: &str, qtype: RecordType, answers: Vec<Record>) -> Vec<u8> {
    let r = Response {
        header: Header {
            id,
            is_response: true,
            recursion_desired: true,
            recursion_available: true,
            rcode,
            ..Header::default()
        },
        questions: vec![Question {
            name: Name::parse(qname).unwrap(),
            qtype,
            qclass: CLASS_IN,
        }],
        answers,
    };
    let mut out = Vec::new();
    r.encode(&mut out);
    out
}

fn rr(name: &str, data: RData) -> Record {
    let rtype = match data {
        RData::A(_) => RecordType::A,
        RData::Aaaa(_) => RecordType::AAAA,
        RData::Cname(_) => RecordType::CNAME,
        RData::Ptr(_) => RecordType::PTR,
        RData::Other(_) => RecordType(16),
    };
    Record {
        name: Name::parse(name).unwrap(),
        rtype,
        class: CLASS_IN,
        ttl: 60,
        data,
    }
}

fn results(r: &mut Resolver) -> Vec<(QueryId, Result<Answer, DnsError>)> {
    std::iter::from_fn(|| r.poll_result()).collect()
}

fn addrs(canonical: &str, list: &[&str]) -> Result<Answer, DnsError> {
    Ok(Answer::Addresses {
        canonical: canonical.into(),
        addrs: list.iter().map(|a| ip(a)).collect(),
    })
}

#[test]
fn any_asks_a_and_aaaa_and_lists_ipv4_first() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1, S2]);
    let q = r.resolve(t0, "www.example.dn42", Want::Any);
    let out = sent(&mut r);
    assert_eq!(out.len(), 2);
    assert!(out
        .iter()
        .all(|o| o.0 == sa(S1) && o.2 == "www.example.dn42"));
    assert_eq!(out[0].3, RecordType::A);
    assert_eq!(out[1].3, RecordType::AAAA);
    assert_ne!(out[0].1, out[1].1, "distinct ids");
    assert_eq!(r.poll_timeout(), Some(t0 + TRY_TIMEOUT));

    // AAAA first: the chain www -> alias -> web, then fd42:1::80.
    let aaaa = answer(
        out[1].1,
        0,
        "www.example.dn42",
        RecordType::AAAA,
        vec![
            rr(
                "www.example.dn42",
                RData::Cname(Name::parse("alias.example.dn42").unwrap()),
            ),
            rr(
                "alias.example.dn42",
                RData::Cname(Name::parse("web.example.dn42").unwrap()),
            ),
            rr(
                "web.example.dn42",
                RData::Aaaa("fd42:1::80".parse().unwrap()),
            ),
        ],
    );
    r.handle_datagram(t0, sa(S1), &aaaa);
    assert!(r.poll_result().is_none(), "waits for A");
    // dnsmasq's real answer to the A question.
    r.handle_datagram(
        t0,
        sa(S1),
        &captured("cname_chain_a.response.bin", out[0].1),
    );
    assert_eq!(
        results(&mut r),
        vec![(q, addrs("web.example.dn42", &["172.20.1.1", "fd42:1::80"]))]
    );
    assert_eq!(r.poll_timeout(), None);
    assert!(r.poll_transmit().is_none());
}

#[test]
fn v6_only_with_a_captured_answer() {
    let t0 = Instant::now();
    let mut r = resolver(&[S2]);
    let q = r.resolve(t0, "web.example.dn42.", Want::V6);
    let out = sent(&mut r);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0, out[0].3), (sa(S2), RecordType::AAAA));
    assert_eq!(out[0].2, "web.example.dn42");
    r.handle_datagram(t0, sa(S2), &captured("web_aaaa.response.bin", out[0].1));
    assert_eq!(
        results(&mut r),
        vec![(q, addrs("web.example.dn42", &["fd42:1::80"]))]
    );
}

#[test]
fn nxdomain_and_nodata_are_empty_lists() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1]);
    let q = r.resolve(t0, "nonexist.example.dn42", Want::V4);
    let out = sent(&mut r);
    r.handle_datagram(t0, sa(S1), &captured("nxdomain_a.response.bin", out[0].1));
    assert_eq!(
        results(&mut r),
        vec![(q, addrs("nonexist.example.dn42", &[]))]
    );

    // A NOERROR answer with only records of another type (NODATA for A).
    let q = r.resolve(t0, "web.example.dn42", Want::V4);
    let out = sent(&mut r);
    let other = answer(
        out[0].1,
        0,
        "web.example.dn42",
        RecordType::A,
        vec![rr(
            "web.example.dn42",
            RData::Aaaa("fd42::1".parse().unwrap()),
        )],
    );
    r.handle_datagram(t0, sa(S1), &other);
    assert_eq!(results(&mut r), vec![(q, addrs("web.example.dn42", &[]))]);
}

#[test]
fn timeouts_rotate_servers_for_two_rounds_then_fail() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1, S2]);
    let q = r.resolve(t0, "web.example.dn42", Want::V4);
    let mut servers = vec![sent(&mut r)[0].0];
    r.handle_timeout(t0 + Duration::from_millis(999));
    assert!(r.poll_transmit().is_none(), "not yet");
    for k in 1..4u32 {
        let now = t0 + TRY_TIMEOUT * k;
        assert_eq!(r.poll_timeout(), Some(now));
        r.handle_timeout(now);
        let out = sent(&mut r);
        assert_eq!(out.len(), 1);
        servers.push(out[0].0);
        assert!(r.poll_result().is_none());
    }
    assert_eq!(servers, vec![sa(S1), sa(S2), sa(S1), sa(S2)]);
    r.handle_timeout(t0 + TRY_TIMEOUT * 4);
    assert!(r.poll_transmit().is_none());
    assert_eq!(results(&mut r), vec![(q, Err(DnsError::Timeout))]);
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn a_late_answer_to_an_earlier_try_is_taken() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1, S2]);
    let q = r.resolve(t0, "www.example.dn42", Want::V4);
    let first = sent(&mut r)[0].clone();
    r.handle_timeout(t0 + TRY_TIMEOUT);
    let second = sent(&mut r)[0].clone();
    assert_eq!(second.0, sa(S2));
    assert_ne!(first.1, second.1, "each try has its own id");
    let late = captured("cname_chain_a.response.bin", first.1);
    // From the wrong server it is dropped; from the right one it is taken.
    r.handle_datagram(t0, sa(S2), &late);
    assert!(r.poll_result().is_none());
    r.handle_datagram(t0 + TRY_TIMEOUT, sa(S1), &late);
    assert_eq!(
        results(&mut r),
        vec![(q, addrs("web.example.dn42", &["172.20.1.1"]))]
    );
}

#[test]
fn mismatched_answers_are_dropped() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1]);
    let q = r.resolve(t0, "www.example.dn42", Want::V4);
    let id = sent(&mut r)[0].1;
    let good = captured("cname_chain_a.response.bin", id);
    // Wrong id, wrong port, another question with the right id, another type.
    r.handle_datagram(t0, sa(S1), &captured("cname_chain_a.response.bin", id ^ 1));
    r.handle_datagram(t0, sa("172.20.0.53:5353"), &good);
    r.handle_datagram(t0, sa(S1), &captured("nxdomain_a.response.bin", id));
    r.handle_datagram(t0, sa(S1), &captured("web_aaaa.response.bin", id));
    // A query (QR clear) echoed back, a response with opcode 2, and runts.
    let mut echo = good.clone();
    echo[2] &= 0x7f;
    r.handle_datagram(t0, sa(S1), &echo);
    let mut status = good.clone();
    status[2] |= 2 << 3;
    r.handle_datagram(t0, sa(S1), &status);
    r.handle_datagram(t0, sa(S1), &[]);
    r.handle_datagram(t0, sa(S1), &good[..5]);
    assert!(r.poll_result().is_none());
    assert!(r.poll_transmit().is_none());
    // The question matches case-insensitively (RFC 1035 2.3.3).
    let mut upper = good.clone();
    upper[13..16].copy_from_slice(b"WWW");
    r.handle_datagram(t0, sa(S1), &upper);
    assert_eq!(
        results(&mut r),
        vec![(q, addrs("web.example.dn42", &["172.20.1.1"]))]
    );
}

#[test]
fn refused_moves_on_at_once_and_is_reported() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1, S2]);
    let q = r.resolve(t0, "example.com", Want::V4);
    let mut tries = 0;
    let mut out = sent(&mut r);
    while let Some(last) = out.last().cloned() {
        tries += 1;
        // dnsmasq's REFUSED, at the same instant: the next server is asked at once.
        r.handle_datagram(t0, last.0, &captured("refused_a.response.bin", last.1));
        out = sent(&mut r);
    }
    assert_eq!(tries, 4);
    assert_eq!(results(&mut r), vec![(q, Err(DnsError::ServerFailure(5)))]);
}

#[test]
fn truncated_and_malformed_answers_fail_that_server() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1, S2]);
    let q = r.resolve(t0, "www.example.dn42", Want::V4);
    let id = sent(&mut r)[0].1;
    let mut tc = captured("cname_chain_a.response.bin", id);
    tc[2] |= 0x02;
    r.handle_datagram(t0, sa(S1), &tc);
    let next = sent(&mut r);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].0, sa(S2));
    // A matching header with a broken body.
    let broken = captured("cname_chain_a.response.bin", next[0].1);
    r.handle_datagram(t0, sa(S2), &broken[..40]);
    let next = sent(&mut r);
    assert_eq!(next[0].0, sa(S1));
    // The last two tries time out: the last answer's problem is reported.
    r.handle_timeout(t0 + TRY_TIMEOUT);
    assert_eq!(sent(&mut r)[0].0, sa(S2));
    r.handle_timeout(t0 + TRY_TIMEOUT * 2);
    assert_eq!(
        results(&mut r),
        vec![(
            q,
            Err(DnsError::Malformed(rr_dns::wire::WireError::Truncated))
        )]
    );

    let q = r.resolve(t0, "www.example.dn42", Want::V4);
    for _ in 0..4 {
        let o = sent(&mut r)[0].clone();
        let mut tc = captured("cname_chain_a.response.bin", o.1);
        tc[2] |= 0x02;
        r.handle_datagram(t0, o.0, &tc);
    }
    assert_eq!(
        results(&mut r),
        vec![(
            q,
            Err(DnsError::Malformed(
                rr_dns::wire::WireError::TruncatedResponse
            ))
        )]
    );
}

#[test]
fn any_with_one_family_failing() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1]);
    // A answers, AAAA times out: the addresses found are the answer.
    let q = r.resolve(t0, "www.example.dn42", Want::Any);
    let out = sent(&mut r);
    r.handle_datagram(
        t0,
        sa(S1),
        &captured("cname_chain_a.response.bin", out[0].1),
    );
    r.handle_timeout(t0 + TRY_TIMEOUT);
    assert_eq!(sent(&mut r).len(), 1, "AAAA retried");
    r.handle_timeout(t0 + TRY_TIMEOUT * 2);
    assert_eq!(
        results(&mut r),
        vec![(q, addrs("web.example.dn42", &["172.20.1.1"]))]
    );
    // A has none, AAAA times out: unknown, so the failure is reported.
    let q = r.resolve(t0, "web.example.dn42", Want::Any);
    let out = sent(&mut r);
    r.handle_datagram(
        t0,
        sa(S1),
        &answer(out[0].1, 0, "web.example.dn42", RecordType::A, vec![]),
    );
    r.handle_timeout(t0 + TRY_TIMEOUT);
    r.handle_timeout(t0 + TRY_TIMEOUT * 2);
    let _ = sent(&mut r);
    assert_eq!(results(&mut r), vec![(q, Err(DnsError::Timeout))]);
}

#[test]
fn reverse_lookups() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1]);
    let q = r.reverse(t0, ip("172.20.1.1"));
    let out = sent(&mut r);
    assert_eq!(out[0].2, "1.1.20.172.in-addr.arpa");
    assert_eq!(out[0].3, RecordType::PTR);
    r.handle_datagram(t0, sa(S1), &captured("ptr_v4.response.bin", out[0].1));
    assert_eq!(
        results(&mut r),
        vec![(q, Ok(Answer::Name("web.example.dn42".into())))]
    );

    // RFC 2317 classless delegation: the PTR sits behind a CNAME.
    let q = r.reverse(t0, ip("172.20.1.1"));
    let out = sent(&mut r);
    let delegated = answer(
        out[0].1,
        0,
        "1.1.20.172.in-addr.arpa",
        RecordType::PTR,
        vec![
            rr(
                "1.1.20.172.in-addr.arpa",
                RData::Cname(Name::parse("1.0/27.1.20.172.in-addr.arpa").unwrap()),
            ),
            rr(
                "1.0/27.1.20.172.in-addr.arpa",
                RData::Ptr(Name::parse("gw.example.dn42").unwrap()),
            ),
        ],
    );
    r.handle_datagram(t0, sa(S1), &delegated);
    assert_eq!(
        results(&mut r),
        vec![(q, Ok(Answer::Name("gw.example.dn42".into())))]
    );

    // No such name.
    let q = r.reverse(t0, ip("172.20.9.9"));
    let out = sent(&mut r);
    let nx = answer(out[0].1, 3, &out[0].2, RecordType::PTR, vec![]);
    r.handle_datagram(t0, sa(S1), &nx);
    assert_eq!(results(&mut r), vec![(q, Err(DnsError::ServerFailure(3)))]);
}

#[test]
fn immediate_failures() {
    let t0 = Instant::now();
    let mut none = Resolver::with_seed(vec![], vec!["dn42".into()], 1);
    let q = none.resolve(t0, "web.example.dn42", Want::Any);
    assert_eq!(results(&mut none), vec![(q, Err(DnsError::NoServers))]);
    let mut r = resolver(&[S1]);
    for bad in ["", ".", "a..dn42", &format!("{}.dn42", "x".repeat(64))] {
        let q = r.resolve(t0, bad, Want::Any);
        assert_eq!(
            results(&mut r),
            vec![(q, Err(DnsError::BadName))],
            "{bad:?}"
        );
    }
    assert!(r.poll_transmit().is_none());
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn domain_membership() {
    let r = Resolver::with_seed(vec![sa(S1)], rr_config_default_domains(), 1);
    for yes in [
        "dn42",
        "DN42.",
        "web.example.dn42",
        "Web.Example.Dn42.",
        "x.neonetwork",
    ] {
        assert!(r.is_dn42_name(yes), "{yes}");
    }
    for no in ["xdn42", "dn42.com", "example.com", "", ".", "dn4"] {
        assert!(!r.is_dn42_name(no), "{no}");
    }
    for yes in [
        "172.20.1.1",
        "172.23.255.255",
        "10.1.2.3",
        "fd42:d42:d42:54::1",
    ] {
        assert!(r.reverse_zone_matches(ip(yes)), "{yes}");
    }
    for no in [
        "172.24.0.1",
        "192.168.1.1",
        "fe80::1",
        "2001:db8::1",
        "::ffff:192.168.1.1",
    ] {
        assert!(!r.reverse_zone_matches(ip(no)), "{no}");
    }
    assert!(r.reverse_zone_matches(ip("::ffff:172.20.0.1")));
}

/// The DN42 wiki's list, as rr-config's default has it (kept here to stay free of the
/// config crate).
fn rr_config_default_domains() -> Vec<String> {
    [
        "dn42",
        "20.172.in-addr.arpa",
        "21.172.in-addr.arpa",
        "22.172.in-addr.arpa",
        "23.172.in-addr.arpa",
        "31.172.in-addr.arpa",
        "10.in-addr.arpa",
        "d.f.ip6.arpa.",
        "NeoNetwork",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn reverse_names() {
    assert_eq!(reverse_name(ip("172.20.1.2")), "2.1.20.172.in-addr.arpa");
    // RFC 3596 section 2.5's example.
    assert_eq!(
        reverse_name(ip("4321:0:1:2:3:4:567:89ab")),
        "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa"
    );
    assert_eq!(reverse_name(ip("::ffff:10.0.0.1")), "1.0.0.10.in-addr.arpa");
}

#[test]
fn ipv4_mapped_server_addresses_match() {
    let t0 = Instant::now();
    let mut r = resolver(&["[::ffff:172.20.0.53]:53"]);
    let q = r.resolve(t0, "www.example.dn42", Want::V4);
    let id = sent(&mut r)[0].1;
    r.handle_datagram(t0, sa(S1), &captured("cname_chain_a.response.bin", id));
    assert_eq!(
        results(&mut r),
        vec![(q, addrs("web.example.dn42", &["172.20.1.1"]))]
    );
}

#[test]
fn many_lookups_in_flight_get_distinct_ids() {
    let t0 = Instant::now();
    let mut r = resolver(&[S1]);
    let qs: Vec<QueryId> = (0..500)
        .map(|i| r.resolve(t0, &format!("h{i}.dn42"), Want::Any))
        .collect();
    let out = sent(&mut r);
    let mut ids: Vec<u16> = out.iter().map(|o| o.1).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1000);
    // Answer them all in reverse order: each result comes back under its own id.
    for o in out.iter().rev() {
        r.handle_datagram(t0, o.0, &answer(o.1, 3, &o.2, o.3, vec![]));
    }
    let mut done: Vec<QueryId> = results(&mut r).into_iter().map(|(q, _)| q).collect();
    done.sort_unstable();
    assert_eq!(done, qs);
}

/// Junk and mutated answers carrying the right id from the right server: no panic, and
/// every lookup ends with exactly one result.
#[test]
fn junk_with_matching_ids_never_wedges_a_lookup() {
    let seeds: Vec<Vec<u8>> = [
        "cname_chain_a",
        "web_aaaa",
        "nxdomain_a",
        "ptr_v4",
        "nodata_mx",
        "refused_a",
    ]
    .iter()
    .map(|c| data(&format!("{c}.response.bin")))
    .collect();
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let t0 = Instant::now();
    let mut r = resolver(&[S1, S2]);
    for round in 0..2_000u32 {
        let now = t0 + Duration::from_millis(u64::from(round) * 10);
        let q = r.resolve(now, "www.example.dn42", Want::Any);
        let mut got = None;
        let mut clock = now;
        for _ in 0..64 {
            let out: Vec<_> = std::iter::from_fn(|| r.poll_transmit()).collect();
            for (to, bytes) in out {
                let mut m = seeds[(next() % seeds.len() as u64) as usize].clone();
                for _ in 0..(next() % 4) {
                    let at = (next() % m.len() as u64) as usize;
                    m[at] = next() as u8;
                }
                m[..2].copy_from_slice(&bytes[..2]);
                r.handle_datagram(clock, to, &m);
            }
            if let Some(res) = r.poll_result() {
                got = Some(res);
                break;
            }
            clock = r.poll_timeout().expect("a lookup waits on a deadline");
            r.handle_timeout(clock);
        }
        let (id, _) = got.expect("every lookup ends");
        assert_eq!(id, q);
        assert!(r.poll_result().is_none());
    }
    assert_eq!(r.poll_timeout(), None);
}
