//! The RFC 1035 codec against real messages from `dig` and dnsmasq (tests/data), hand
//! built compression traps, and 100k random and mutated inputs.

use rr_dns::wire::{
    decode_response, encode_query, Header, Name, RData, RecordType, Response, WireError, CLASS_IN,
    EDNS_UDP_SIZE,
};
use std::net::{Ipv4Addr, Ipv6Addr};

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const CAPTURES: [&str; 6] = [
    "cname_chain_a",
    "web_aaaa",
    "nxdomain_a",
    "ptr_v4",
    "nodata_mx",
    "refused_a",
];

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

#[test]
fn dnsmasq_cname_chain_with_compression() {
    let r = decode_response(&data("cname_chain_a.response.bin")).unwrap();
    assert_eq!(r.header.id, 0xe2c5);
    assert!(r.header.is_response && r.header.authoritative);
    assert!(r.header.recursion_desired && r.header.recursion_available);
    assert!(!r.header.truncated);
    assert_eq!((r.header.opcode, r.header.rcode), (0, 0));
    assert_eq!(
        r.header.arcount, 1,
        "the OPT record is counted, not decoded"
    );
    assert_eq!(r.questions.len(), 1);
    assert_eq!(r.questions[0].name.to_string(), "www.example.dn42");
    assert_eq!(r.questions[0].qtype, RecordType::A);
    assert_eq!(r.questions[0].qclass, CLASS_IN);
    let got: Vec<(String, RecordType, RData)> = r
        .answers
        .iter()
        .map(|rr| (rr.name.to_string(), rr.rtype, rr.data.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "www.example.dn42".into(),
                RecordType::CNAME,
                RData::Cname(name("alias.example.dn42"))
            ),
            (
                "alias.example.dn42".into(),
                RecordType::CNAME,
                RData::Cname(name("web.example.dn42"))
            ),
            (
                "web.example.dn42".into(),
                RecordType::A,
                RData::A(Ipv4Addr::new(172, 20, 1, 1))
            ),
        ]
    );
}

#[test]
fn dnsmasq_aaaa_ptr_nxdomain_nodata_refused() {
    let r = decode_response(&data("web_aaaa.response.bin")).unwrap();
    assert_eq!(r.answers.len(), 1);
    assert_eq!(
        r.answers[0].data,
        RData::Aaaa("fd42:1::80".parse::<Ipv6Addr>().unwrap())
    );

    let r = decode_response(&data("ptr_v4.response.bin")).unwrap();
    assert_eq!(r.questions[0].name.to_string(), "1.1.20.172.in-addr.arpa");
    assert_eq!(r.questions[0].qtype, RecordType::PTR);
    assert_eq!(r.answers[0].data, RData::Ptr(name("web.example.dn42")));

    let r = decode_response(&data("nxdomain_a.response.bin")).unwrap();
    assert_eq!(r.header.rcode, 3);
    assert!(r.answers.is_empty());

    let r = decode_response(&data("nodata_mx.response.bin")).unwrap();
    assert_eq!(r.header.rcode, 0);
    assert_eq!(r.questions[0].qtype, RecordType(15));
    assert!(r.answers.is_empty());

    let r = decode_response(&data("refused_a.response.bin")).unwrap();
    assert_eq!(r.header.rcode, 5);
}

#[test]
fn digs_queries_decode_and_ours_ask_the_same_question() {
    for capture in CAPTURES {
        let dig = data(&format!("{capture}.query.bin"));
        let q = decode_response(&dig).unwrap();
        assert!(!q.header.is_response && q.header.recursion_desired);
        assert_eq!(q.questions.len(), 1);
        let question = &q.questions[0];
        let ours = encode_query(q.header.id, &question.name.to_string(), question.qtype).unwrap();
        // Header id and counts equal (dig also sets AD, we do not); question bytes equal.
        assert_eq!(ours[..2], dig[..2], "{capture}");
        assert_eq!(ours[4..12], dig[4..12], "{capture}");
        let qend = 12 + question.name.to_string().len() + 2 + 4;
        assert_eq!(ours[12..qend], dig[12..qend], "{capture}");
        // Our OPT: root, type 41, class = buffer size, TTL 0, no options.
        let mut opt = vec![0u8, 0, 41];
        opt.extend_from_slice(&EDNS_UDP_SIZE.to_be_bytes());
        opt.extend_from_slice(&[0; 6]);
        assert_eq!(ours[qend..], opt[..], "{capture}");
        assert_eq!(ours[2..4], [0x01, 0x00], "only RD");
        let back = decode_response(&ours).unwrap();
        assert_eq!(back.questions, q.questions);
    }
}

#[test]
fn header_round_trips() {
    for capture in CAPTURES {
        for kind in ["query", "response"] {
            let bytes = data(&format!("{capture}.{kind}.bin"));
            let h = Header::decode(&bytes).unwrap();
            let mut out = Vec::new();
            h.encode(&mut out);
            assert_eq!(out[..], bytes[..12], "{capture}.{kind}");
        }
    }
}

/// Decoded, encoded without compression, decoded again: the same message (the
/// authority and additional counts drop to 0, their sections are not kept).
fn round_trip(r: &Response) {
    let mut out = Vec::new();
    r.encode(&mut out);
    let again = decode_response(&out).expect("own encoding decodes");
    let mut want = r.clone();
    want.header.nscount = 0;
    want.header.arcount = 0;
    assert_eq!(again, want);
}

#[test]
fn captured_responses_round_trip_and_compression_saves_bytes() {
    for capture in CAPTURES {
        let r = decode_response(&data(&format!("{capture}.response.bin"))).unwrap();
        round_trip(&r);
    }
    let bytes = data("cname_chain_a.response.bin");
    let r = decode_response(&bytes).unwrap();
    let mut out = Vec::new();
    r.encode(&mut out);
    // 123 bytes with pointers and the 11-byte OPT; ours has no OPT and no pointers.
    assert!(
        out.len() > bytes.len() - 11,
        "{} vs {}",
        out.len(),
        bytes.len()
    );
}

#[test]
fn every_short_prefix_is_refused() {
    for capture in CAPTURES {
        let bytes = data(&format!("{capture}.response.bin"));
        // The answers end where the OPT record starts: 11 bytes, 17 with the Extended
        // DNS Error option (RFC 8914, INFO-CODE 14) dnsmasq adds to its REFUSED.
        let opt_len = if capture == "refused_a" { 17 } else { 11 };
        let answers_end = bytes.len() - opt_len;
        for n in 0..answers_end {
            assert_eq!(
                decode_response(&bytes[..n]),
                Err(WireError::Truncated),
                "{capture} cut at {n}"
            );
        }
        assert!(decode_response(&bytes[..answers_end]).is_ok());
    }
}

/// A response header with `qd` questions, then `body`.
fn message(qd: u16, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0];
    m[4..6].copy_from_slice(&qd.to_be_bytes());
    m.extend_from_slice(body);
    m
}

#[test]
fn compression_loops_and_bad_pointers_are_refused() {
    // A pointer to itself (offset 12).
    let m = message(1, &[0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(decode_response(&m), Err(WireError::BadPointer));
    // A label, then a pointer back to that label: a loop (RFC 1035 4.1.4 allows only
    // pointers to earlier names).
    let m = message(1, &[1, b'a', 0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(decode_response(&m), Err(WireError::BadPointer));
    // A forward pointer.
    let m = message(1, &[0xc0, 14, 0, 0, 1, 0, 1]);
    assert_eq!(decode_response(&m), Err(WireError::BadPointer));
    // Two names pointing at each other: the second is fine backwards, but the first
    // jumps forward.
    let m = message(2, &[0xc0, 18, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(decode_response(&m), Err(WireError::BadPointer));
    // Pointer past the end.
    let m = message(1, &[0xc0]);
    assert_eq!(decode_response(&m), Err(WireError::Truncated));
    // Extended label types 01 and 10.
    for t in [0x40, 0x80] {
        let m = message(1, &[t, 0, 0, 1, 0, 1]);
        assert_eq!(decode_response(&m), Err(WireError::BadPointer));
    }
    // A legitimate backward chain: "b" + -> "a" + root.
    let m = message(2, &[1, b'a', 0, 0, 1, 0, 1, 1, b'b', 0xc0, 12, 0, 1, 0, 1]);
    let r = decode_response(&m).unwrap();
    assert_eq!(r.questions[1].name.to_string(), "b.a");
}

#[test]
fn names_over_255_octets_are_refused_even_through_pointers() {
    // Four names of 63-byte labels, each pointing at the one before: 64, 128, 192,
    // 256 octets + the root: the fourth is too long.
    let mut body = Vec::new();
    let mut prev: Option<usize> = None;
    for _ in 0..4 {
        let at = 12 + body.len();
        body.push(63);
        body.extend_from_slice(&[b'x'; 63]);
        match prev {
            Some(p) => body.extend_from_slice(&[0xc0 | (p >> 8) as u8, p as u8]),
            None => body.push(0),
        }
        body.extend_from_slice(&[0, 1, 0, 1]);
        prev = Some(at);
    }
    let three = message(3, &body);
    assert_eq!(decode_response(&three).unwrap().questions.len(), 3);
    let four = message(4, &body);
    assert_eq!(decode_response(&four), Err(WireError::NameTooLong));
}

#[test]
fn bad_record_lengths_are_refused() {
    // Question "a" A IN, then an A record with 3 bytes of data.
    let mut body = vec![1, b'a', 0, 0, 1, 0, 1];
    body.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 3, 1, 2, 3]);
    let mut m = message(1, &body);
    m[7] = 1;
    assert_eq!(
        decode_response(&m),
        Err(WireError::BadRecordData { rtype: 1 })
    );
    // A CNAME whose name is shorter than its RDLENGTH.
    let mut body = vec![1, b'a', 0, 0, 5, 0, 1];
    body.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 0xc0, 12, 0, 0]);
    let mut m = message(1, &body);
    m[7] = 1;
    assert_eq!(
        decode_response(&m),
        Err(WireError::BadRecordData { rtype: 5 })
    );
}

#[test]
fn names_parse_and_print() {
    assert_eq!(name("Web.Example.DN42.").to_string(), "Web.Example.DN42");
    assert!(name("web.example.dn42").eq_ignore_case(&name("WEB.example.Dn42.")));
    assert!(!name("web.example").eq_ignore_case(&name("web.example.dn42")));
    assert!(name(".").is_root() && name("").is_root());
    assert_eq!(name(".").to_string(), ".");
    assert_eq!(Name::parse("a..b"), Err(WireError::BadLabel));
    assert_eq!(Name::parse(".a"), Err(WireError::BadLabel));
    assert_eq!(Name::parse(&"x".repeat(64)), Err(WireError::BadLabel));
    assert!(Name::parse(&"x".repeat(63)).is_ok());
    // 4 labels of 63 = 256 octets + root: too long; 3 of 63 + one of 61 = 255.
    let l = "x".repeat(63);
    assert_eq!(
        Name::parse(&[&l[..], &l, &l, &l].join(".")),
        Err(WireError::NameTooLong)
    );
    assert!(Name::parse(&[&l[..], &l, &l, &"x".repeat(61)].join(".")).is_ok());
    assert_eq!(
        encode_query(1, "a..b", RecordType::A),
        Err(WireError::BadLabel)
    );
    // Odd bytes print as \DDD.
    let m = message(1, &[3, b'a', b'.', 0xff, 0, 0, 1, 0, 1]);
    let r = decode_response(&m).unwrap();
    assert_eq!(r.questions[0].name.to_string(), "a\\046\\255");
}

/// xorshift64*: deterministic bytes for the fuzz-style loop.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random bytes and mutated captures: the decoder never panics, and what it accepts
/// round-trips.
#[test]
fn hundred_thousand_random_and_mutated_messages() {
    let seeds: Vec<Vec<u8>> = CAPTURES
        .iter()
        .flat_map(|c| {
            [
                data(&format!("{c}.response.bin")),
                data(&format!("{c}.query.bin")),
            ]
        })
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for i in 0..100_000 {
        let mut m = if i % 4 == 0 {
            let len = rng.below(300);
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            seeds[rng.below(seeds.len())].clone()
        };
        for _ in 0..1 + rng.below(4) {
            if m.is_empty() {
                break;
            }
            let at = rng.below(m.len());
            match rng.below(4) {
                0 => m[at] = rng.next() as u8,
                1 => m[at] ^= 1 << rng.below(8),
                2 => m.truncate(at),
                _ => m.insert(at, rng.next() as u8),
            }
        }
        if let Ok(r) = decode_response(&m) {
            accepted += 1;
            round_trip(&r);
        }
    }
    // Mutations of real messages often stay valid: the loop exercised both paths.
    assert!(accepted > 10_000, "{accepted}");
}
