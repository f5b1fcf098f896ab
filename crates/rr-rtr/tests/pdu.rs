//! The PDU codec against byte vectors written out from the layouts of RFC 8210 section 5
//! and RFC 6810 section 5, every decode error, and real PDUs captured from StayRTR.

use ipnet::IpNet;
use rr_rtr::pdu::{frame, DecodeError, ErrorCode, Pdu, Timing, Version, MAX_PDU_LEN};
use rr_rtr::Vrp;

fn vrp(prefix: &str, max_len: u8, asn: u32) -> Vrp {
    Vrp::new(prefix.parse().unwrap(), max_len, asn).unwrap()
}

/// Decodes `bytes` to `(version, pdu)` and encodes it back to exactly `bytes`.
fn both_ways(bytes: &[u8], version: Version, pdu: Pdu) {
    assert_eq!(frame(bytes), Ok(Some(bytes.len())));
    assert_eq!(Pdu::decode(bytes), Ok((version, pdu.clone())));
    let mut out = vec![0xee]; // encode appends
    pdu.encode(version, &mut out);
    assert_eq!(&out[1..], bytes);
}

#[test]
fn every_pdu_type_both_ways() {
    // Serial Notify (5.2): version, type 0, session id, length 12, serial.
    let b = [1, 0, 0x12, 0x34, 0, 0, 0, 12, 0xde, 0xad, 0xbe, 0xef];
    let pdu = Pdu::SerialNotify {
        session_id: 0x1234,
        serial: 0xdeadbeef,
    };
    both_ways(&b, Version::V1, pdu.clone());
    let mut b0 = b;
    b0[0] = 0;
    both_ways(&b0, Version::V0, pdu);
    // Serial Query (5.3).
    both_ways(
        &[1, 1, 0xab, 0xcd, 0, 0, 0, 12, 0, 0, 0, 7],
        Version::V1,
        Pdu::SerialQuery {
            session_id: 0xabcd,
            serial: 7,
        },
    );
    // Reset Query (5.4): zero field, length 8.
    both_ways(&[1, 2, 0, 0, 0, 0, 0, 8], Version::V1, Pdu::ResetQuery);
    both_ways(&[0, 2, 0, 0, 0, 0, 0, 8], Version::V0, Pdu::ResetQuery);
    // Cache Response (5.5).
    both_ways(
        &[1, 3, 0xb1, 0xce, 0, 0, 0, 8],
        Version::V1,
        Pdu::CacheResponse { session_id: 0xb1ce },
    );
    // IPv4 Prefix (5.6): flags, prefix len, max len, zero, prefix, ASN; length 20.
    both_ways(
        &[
            1, 4, 0, 0, 0, 0, 0, 20, 1, 26, 29, 0, 172, 20, 4, 128, 0xfc, 0xde, 0x31, 0x51,
        ],
        Version::V1,
        Pdu::Prefix {
            announce: true,
            vrp: vrp("172.20.4.128/26", 29, 4242420049),
        },
    );
    // Withdrawal, AS0.
    both_ways(
        &[
            0, 4, 0, 0, 0, 0, 0, 20, 0, 24, 28, 0, 172, 20, 0, 0, 0, 0, 0, 0,
        ],
        Version::V0,
        Pdu::Prefix {
            announce: false,
            vrp: vrp("172.20.0.0/24", 28, 0),
        },
    );
    // IPv6 Prefix (5.7): length 32.
    let mut b = vec![1, 6, 0, 0, 0, 0, 0, 32, 1, 48, 64, 0];
    b.extend_from_slice(
        &"fd42:d42:d42::"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    b.extend_from_slice(&4242422601u32.to_be_bytes());
    both_ways(
        &b,
        Version::V1,
        Pdu::Prefix {
            announce: true,
            vrp: vrp("fd42:d42:d42::/48", 64, 4242422601),
        },
    );
    // End of Data, version 1 (5.8): serial, refresh, retry, expire; length 24.
    both_ways(
        &[
            1, 7, 0, 9, 0, 0, 0, 24, 0, 0, 0, 5, 0, 0, 7, 8, 0, 0, 1, 44, 0, 0, 14, 16,
        ],
        Version::V1,
        Pdu::EndOfData {
            session_id: 9,
            serial: 5,
            timing: Some(Timing {
                refresh: 1800,
                retry: 300,
                expire: 3600,
            }),
        },
    );
    // End of Data, version 0 (RFC 6810 5.7): serial only; length 12.
    both_ways(
        &[0, 7, 0, 9, 0, 0, 0, 12, 0, 0, 0, 5],
        Version::V0,
        Pdu::EndOfData {
            session_id: 9,
            serial: 5,
            timing: None,
        },
    );
    // Cache Reset (5.9).
    both_ways(&[1, 8, 0, 0, 0, 0, 0, 8], Version::V1, Pdu::CacheReset);
    // Router Key (5.10): flags, zero, length, SKI (20), ASN, SPKI.
    let mut b = vec![1, 9, 1, 0, 0, 0, 0, 35];
    b.extend_from_slice(&[0x5a; 20]);
    b.extend_from_slice(&64512u32.to_be_bytes());
    b.extend_from_slice(&[0x30, 0x01, 0x00]);
    both_ways(
        &b,
        Version::V1,
        Pdu::RouterKey {
            announce: true,
            ski: [0x5a; 20],
            asn: 64512,
            spki: vec![0x30, 0x01, 0x00],
        },
    );
    // Error Report (5.11): code, length, PDU length, PDU, text length, text.
    let mut b = vec![1, 10, 0, 6, 0, 0, 0, 30, 0, 0, 0, 8];
    b.extend_from_slice(&[1, 2, 0, 0, 0, 0, 0, 8]);
    b.extend_from_slice(&[0, 0, 0, 6]);
    b.extend_from_slice(b"w\xc3\xa4hlt");
    both_ways(
        &b,
        Version::V1,
        Pdu::ErrorReport {
            code: ErrorCode::WithdrawalOfUnknownRecord,
            pdu: vec![1, 2, 0, 0, 0, 0, 0, 8],
            text: "wählt".into(),
        },
    );
    // Empty PDU and text.
    both_ways(
        &[0, 10, 0, 2, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0],
        Version::V0,
        Pdu::ErrorReport {
            code: ErrorCode::NoDataAvailable,
            pdu: vec![],
            text: String::new(),
        },
    );
}

#[test]
fn reserved_fields_and_flags_are_ignored_and_written_as_zero() {
    // Zero field set, flags 0xff, zero byte set: still announce, re-encoded clean.
    let b = [
        1, 4, 0xff, 0xff, 0, 0, 0, 20, 0xff, 8, 8, 0xff, 10, 0, 0, 0, 0, 0, 0, 1,
    ];
    let (v, pdu) = Pdu::decode(&b).unwrap();
    assert_eq!(
        pdu,
        Pdu::Prefix {
            announce: true,
            vrp: vrp("10.0.0.0/8", 8, 1)
        }
    );
    let mut out = Vec::new();
    pdu.encode(v, &mut out);
    assert_eq!(
        out,
        [1, 4, 0, 0, 0, 0, 0, 20, 1, 8, 8, 0, 10, 0, 0, 0, 0, 0, 0, 1]
    );
    // A Reset Query with a non-zero reserved field.
    assert_eq!(
        Pdu::decode(&[1, 2, 9, 9, 0, 0, 0, 8]),
        Ok((Version::V1, Pdu::ResetQuery))
    );
}

#[test]
fn v1_end_of_data_without_timing_writes_the_defaults_and_v0_drops_it() {
    let eod = |timing| Pdu::EndOfData {
        session_id: 1,
        serial: 2,
        timing,
    };
    let mut out = Vec::new();
    eod(None).encode(Version::V1, &mut out);
    assert_eq!(Pdu::decode(&out).unwrap().1, eod(Some(Timing::DEFAULT)));
    out.clear();
    eod(Some(Timing::DEFAULT)).encode(Version::V0, &mut out);
    assert_eq!(out.len(), 12);
    assert_eq!(Pdu::decode(&out).unwrap().1, eod(None));
}

#[test]
fn framing() {
    let notify = [1, 0, 0, 1, 0, 0, 0, 12, 0, 0, 0, 1];
    for n in 0..notify.len() {
        assert_eq!(frame(&notify[..n]), Ok(None), "prefix of {n} bytes");
    }
    assert_eq!(frame(&notify), Ok(Some(12)));
    let mut two = notify.to_vec();
    two.extend_from_slice(&notify);
    assert_eq!(frame(&two), Ok(Some(12)));
    // Length below the header, and beyond the limit: the stream cannot be resynced.
    for len in [0u32, 7] {
        let b = [1, 2, 0, 0, (len >> 24) as u8, 0, 0, len as u8];
        assert_eq!(frame(&b), Err(DecodeError::BadFrameLength(len)));
    }
    let big = [1, 10, 0, 0, 0, 1, 0, 1];
    assert_eq!(frame(&big), Err(DecodeError::BadFrameLength(65537)));
    assert_eq!(
        frame(&[1, 10, 0, 0, 0xff, 0xff, 0xff, 0xff]),
        Err(DecodeError::BadFrameLength(u32::MAX))
    );
    // Exactly the limit is fine (and incomplete here).
    assert_eq!(MAX_PDU_LEN, 65536);
    assert_eq!(frame(&[1, 10, 0, 0, 0, 1, 0, 0]), Ok(None));
}

fn err(bytes: &[u8]) -> DecodeError {
    Pdu::decode(bytes).expect_err("must not decode")
}

#[test]
fn decode_errors() {
    use DecodeError::*;
    // Header and length field.
    assert_eq!(err(&[1, 2, 0]), Truncated { have: 3, need: 8 });
    assert_eq!(
        err(&[1, 0, 0, 0, 0, 0, 0, 12, 0]),
        Truncated { have: 9, need: 12 }
    );
    assert_eq!(
        err(&[1, 2, 0, 0, 0, 0, 0, 8, 0]),
        TrailingBytes { field: 8, have: 9 }
    );
    assert_eq!(err(&[2, 2, 0, 0, 0, 0, 0, 8]), UnsupportedVersion(2));
    assert_eq!(err(&[0xff, 2, 0, 0, 0, 0, 0, 8]), UnsupportedVersion(255));
    // Types: 5 was never assigned, 11+ unknown, Router Key is version 1 only.
    for (v, t) in [(1, 5), (1, 11), (1, 255), (0, 9)] {
        let e = err(&[v, t, 0, 0, 0, 0, 0, 8]);
        assert_eq!(
            e,
            UnsupportedType {
                version: v,
                pdu_type: t
            }
        );
        assert_eq!(e.error_code(), ErrorCode::UnsupportedPduType);
    }
    // Wrong fixed lengths.
    for (v, t, len) in [
        (1, 0, 8),
        (1, 0, 16),
        (1, 1, 8),
        (1, 2, 12),
        (1, 3, 12),
        (1, 4, 32),
        (1, 6, 20),
        (0, 7, 24),
        (1, 7, 12),
        (1, 8, 12),
        (1, 9, 31),
        (1, 10, 12),
    ] {
        let mut b = vec![v, t, 0, 0, 0, 0, 0, len];
        b.resize(usize::from(len), 0);
        let e = err(&b);
        assert_eq!(
            e,
            BadLength {
                pdu_type: t,
                length: usize::from(len)
            },
            "type {t} len {len}"
        );
        assert_eq!(e.error_code(), ErrorCode::CorruptData);
    }
    // Prefixes: length beyond the family, max length below the length or beyond the
    // family, host bits set.
    let v4 = |plen, max, a: [u8; 4]| {
        let mut b = vec![1, 4, 0, 0, 0, 0, 0, 20, 1, plen, max, 0];
        b.extend_from_slice(&a);
        b.extend_from_slice(&[0, 0, 0, 1]);
        b
    };
    for (plen, max, a) in [
        (33, 33, [10, 0, 0, 0]),
        (24, 23, [10, 0, 0, 0]),
        (24, 33, [10, 0, 0, 0]),
        (8, 8, [10, 0, 0, 1]),
    ] {
        let e = err(&v4(plen, max, a));
        assert!(
            matches!(e, BadPrefix { prefix_len, max_len, .. } if prefix_len == plen && max_len == max),
            "{e:?}"
        );
        assert_eq!(e.error_code(), ErrorCode::CorruptData);
    }
    let mut v6 = vec![1, 6, 0, 0, 0, 0, 0, 32, 1, 129, 129, 0];
    v6.resize(32, 0);
    assert!(matches!(
        err(&v6),
        BadPrefix {
            prefix_len: 129,
            ..
        }
    ));
    // Error Reports whose inner lengths do not add up.
    let report = |pdu_len: u32, pdu: &[u8], text_len: Option<u32>, text: &[u8]| {
        let mut b = vec![1, 10, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&pdu_len.to_be_bytes());
        b.extend_from_slice(pdu);
        if let Some(t) = text_len {
            b.extend_from_slice(&t.to_be_bytes());
        }
        b.extend_from_slice(text);
        let len = (b.len() as u32).to_be_bytes();
        b[4..8].copy_from_slice(&len);
        b
    };
    assert_eq!(err(&report(9, &[0; 8], Some(0), b"")), BadErrorReport);
    assert_eq!(
        err(&report(u32::MAX, &[0; 8], Some(0), b"")),
        BadErrorReport
    );
    assert_eq!(
        err(&report(0, &[0; 3], None, b"")),
        BadLength {
            pdu_type: 10,
            length: 15
        }
    );
    assert_eq!(err(&report(4, &[0; 4], None, b"")), BadErrorReport);
    assert_eq!(err(&report(0, &[], Some(3), b"ab")), BadErrorReport);
    assert_eq!(err(&report(0, &[], Some(1), b"ab")), BadErrorReport);
    assert_eq!(err(&report(0, &[], Some(2), b"\xff\xfe")), BadErrorText);
    assert_eq!(report(0, &[], Some(2), b"ok").len(), 18);
    assert!(Pdu::decode(&report(0, &[], Some(2), b"ok")).is_ok());
    // Error codes.
    assert_eq!(
        err(&[2, 2, 0, 0, 0, 0, 0, 8]).error_code(),
        ErrorCode::UnsupportedProtocolVersion
    );
    assert_eq!(err(&[1, 2, 0]).error_code(), ErrorCode::CorruptData);
    assert_eq!(BadErrorText.error_code(), ErrorCode::CorruptData);
}

#[test]
fn error_code_numbers() {
    for n in 0..=12u16 {
        assert_eq!(ErrorCode::from_number(n).number(), n);
    }
    assert_eq!(
        ErrorCode::from_number(4),
        ErrorCode::UnsupportedProtocolVersion
    );
    assert_eq!(
        ErrorCode::from_number(8),
        ErrorCode::UnexpectedProtocolVersion
    );
    assert_eq!(ErrorCode::from_number(9), ErrorCode::Other(9));
}

#[test]
fn timing_is_clamped_to_rfc8210_section_6() {
    let t = |refresh, retry, expire| Timing {
        refresh,
        retry,
        expire,
    };
    assert_eq!(t(1800, 300, 3600).clamped(), t(1800, 300, 3600));
    assert_eq!(t(0, 0, 0).clamped(), t(1, 1, 600));
    assert_eq!(
        t(u32::MAX, u32::MAX, u32::MAX).clamped(),
        t(86400, 7200, 172800)
    );
    // Expire must exceed refresh and retry.
    assert_eq!(t(3600, 600, 1000).clamped(), t(3600, 600, 3601));
}

#[test]
fn vrp_new_rejects_what_no_cache_may_send() {
    let net = |s: &str| s.parse::<IpNet>().unwrap();
    assert!(Vrp::new(net("10.0.0.0/8"), 8, 1).is_some());
    assert!(Vrp::new(net("10.0.0.0/8"), 32, 1).is_some());
    assert!(Vrp::new(net("10.0.0.0/8"), 7, 1).is_none());
    assert!(Vrp::new(net("10.0.0.0/8"), 33, 1).is_none());
    assert!(Vrp::new(net("10.0.0.1/8"), 8, 1).is_none());
    assert!(Vrp::new(net("fd00::/8"), 128, 1).is_some());
    assert!(Vrp::new(net("fd00::/8"), 129, 1).is_none());
}

// ---- Real bytes from StayRTR 0.5.1 (tests/data/README.md) ----

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Splits a captured stream into PDUs, checks each re-encodes to the same bytes.
fn decode_stream(bytes: &[u8]) -> Vec<(Version, Pdu)> {
    let mut rest = bytes;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let n = frame(rest).unwrap().expect("whole PDUs");
        let (v, pdu) = Pdu::decode(&rest[..n]).unwrap();
        let mut again = Vec::new();
        pdu.encode(v, &mut again);
        assert_eq!(again, &rest[..n]);
        out.push((v, pdu));
        rest = &rest[n..];
    }
    out
}

fn announce(prefix: &str, max_len: u8, asn: u32) -> Pdu {
    Pdu::Prefix {
        announce: true,
        vrp: vrp(prefix, max_len, asn),
    }
}

#[test]
fn stayrtr_v1_reset_notify_and_serial() {
    let full = decode_stream(&data("v1_reset.response.bin"));
    assert!(full.iter().all(|(v, _)| *v == Version::V1));
    let Pdu::CacheResponse { session_id } = full[0].1 else {
        panic!("{:?}", full[0])
    };
    let pdus: Vec<Pdu> = full.into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        pdus[1..],
        [
            announce("fd42:d42:d42::/48", 64, 4242422601),
            announce("172.20.4.128/26", 29, 4242420049),
            announce("172.20.0.0/24", 28, 0),
            Pdu::EndOfData {
                session_id,
                serial: 0,
                timing: Some(Timing {
                    refresh: 1800,
                    retry: 300,
                    expire: 3600
                }),
            },
        ]
    );
    assert_eq!(
        decode_stream(&data("v1_notify.bin")),
        [(
            Version::V1,
            Pdu::SerialNotify {
                session_id,
                serial: 1
            }
        )]
    );
    let inc: Vec<Pdu> = decode_stream(&data("v1_serial.response.bin"))
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        inc,
        [
            Pdu::CacheResponse { session_id },
            announce("fdcf:8538:9ad5::/48", 64, 4242423914),
            Pdu::Prefix {
                announce: false,
                vrp: vrp("172.20.0.0/24", 28, 0)
            },
            Pdu::EndOfData {
                session_id,
                serial: 1,
                timing: Some(Timing {
                    refresh: 1800,
                    retry: 300,
                    expire: 3600
                }),
            },
        ]
    );
}

#[test]
fn stayrtr_v0_sessions_and_error_report() {
    for file in ["v0_reset.response.bin", "v0_cache_v1_query.response.bin"] {
        let pdus = decode_stream(&data(file));
        assert!(pdus.iter().all(|(v, _)| *v == Version::V0), "{file}");
        assert_eq!(pdus.len(), 5, "{file}");
        assert!(matches!(pdus[0].1, Pdu::CacheResponse { .. }));
        assert!(matches!(
            pdus[4].1,
            Pdu::EndOfData {
                serial: 1,
                timing: None,
                ..
            }
        ));
    }
    assert_eq!(
        decode_stream(&data("v3_query.response.bin")),
        [(
            Version::V0,
            Pdu::ErrorReport {
                code: ErrorCode::UnsupportedProtocolVersion,
                pdu: vec![],
                text: "Bad protocol version\0".into(),
            }
        )]
    );
}
