//! Unit tests of the codec: the message header, OPEN errors, one test per RFC 7606
//! rule (each asserting the exact outcome), the RFC 6793 transition attributes, the
//! encoder's choices and `update_split`.
//!
//! What they are not: the tests against real captures, MRT files and BIRD/FRR sessions,
//! which live in `crates/rr-bgp/tests/`.

use super::*;

const AS4: Codec = Codec {
    four_octet_as: true,
    extended_message: false,
};
const AS2: Codec = Codec::INITIAL;

/// A whole message of `typ` with `body`.
fn msg(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((body.len() + HEADER_LEN) as u16).to_be_bytes());
    m.push(typ);
    m.extend_from_slice(body);
    m
}

/// One path attribute (extended length if asked or needed).
fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, code];
    if flags & FLAG_EXTENDED_LENGTH != 0 || value.len() > 255 {
        a[0] |= FLAG_EXTENDED_LENGTH;
        a.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        a.push(value.len() as u8);
    }
    a.extend_from_slice(value);
    a
}

/// An UPDATE from raw withdrawn routes, attributes and NLRI.
fn update(withdrawn: &[u8], attrs: &[Vec<u8>], nlri: &[u8]) -> Vec<u8> {
    let a: Vec<u8> = attrs.concat();
    let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(a.len() as u16).to_be_bytes());
    b.extend_from_slice(&a);
    b.extend_from_slice(nlri);
    msg(2, &b)
}

fn origin() -> Vec<u8> {
    attr(0x40, 1, &[0])
}
/// AS_PATH: one sequence of 4-byte ASNs.
fn path4(asns: &[u32]) -> Vec<u8> {
    let mut v = vec![2, asns.len() as u8];
    for a in asns {
        v.extend_from_slice(&a.to_be_bytes());
    }
    attr(0x40, 2, &v)
}
fn next_hop() -> Vec<u8> {
    attr(0x40, 3, &[192, 0, 2, 1])
}
/// 10.0.0.0/8 and 192.168.1.0/24 in the NLRI encoding.
const NLRI: &[u8] = &[8, 10, 24, 192, 168, 1];

/// The three mandatory attributes of a classic announcement.
fn mandatory() -> Vec<Vec<u8>> {
    vec![origin(), path4(&[4242420001]), next_hop()]
}

fn decode_update(m: &[u8], codec: &Codec) -> Update {
    match Message::decode(m, codec) {
        Ok(Message::Update(u)) => u,
        other => panic!("not an UPDATE: {other:?}"),
    }
}

/// Decodes and expects treat-as-withdraw with a reason containing `why`.
fn withdrawn_because(m: &[u8], codec: &Codec, why: &str) -> Update {
    let u = decode_update(m, codec);
    let reason = u.treat_as_withdraw.clone().expect("treat-as-withdraw");
    assert!(reason.contains(why), "reason {reason:?} lacks {why:?}");
    u
}

/// Decodes and expects an error with NOTIFICATION `code`/`subcode`.
fn error(m: &[u8], codec: &Codec, code: u8, subcode: u8) -> DecodeError {
    let e = Message::decode(m, codec).expect_err("an error");
    assert_eq!(
        (e.notification.code, e.notification.subcode),
        (code, subcode),
        "{e}"
    );
    e
}

fn v4(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn encode(m: &Message, codec: &Codec) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(codec, &mut out);
    out
}

// ---- header (RFC 4271 4.1, 6.1) ----

#[test]
fn frame_waits_for_whole_messages() {
    let k = msg(4, &[]);
    assert_eq!(frame(&[], &AS2), Ok(None));
    assert_eq!(frame(&k[..18], &AS2), Ok(None));
    assert_eq!(frame(&k, &AS2), Ok(Some(19)));
    let mut two = k.clone();
    two.extend_from_slice(&k[..5]);
    assert_eq!(frame(&two, &AS2), Ok(Some(19)));
    let u = update(&[], &mandatory(), NLRI);
    assert_eq!(frame(&u[..u.len() - 1], &AS2), Ok(None));
    assert_eq!(frame(&u, &AS2), Ok(Some(u.len())));
}

#[test]
fn frame_rejects_a_bad_marker_as_soon_as_it_arrives() {
    let mut k = msg(4, &[]);
    k[3] = 0;
    let e = frame(&k[..4], &AS2).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (1, 1));
    assert!(frame(&k, &AS2).is_err());
}

#[test]
fn frame_rejects_bad_lengths_with_the_length_as_data() {
    let mut m = msg(4, &[]);
    m[16..18].copy_from_slice(&18u16.to_be_bytes());
    let e = frame(&m, &AS2).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (1, 2));
    assert_eq!(e.notification.data, vec![0, 18]);
    // KEEPALIVE is exactly 19 bytes.
    let e = frame(&msg(4, &[0]), &AS2).unwrap_err();
    assert_eq!(e.notification.data, vec![0, 20]);
    // Below the minimum of the type: OPEN 29, UPDATE 23, NOTIFICATION 21, ROUTE-REFRESH 23.
    for (typ, len) in [(1, 28), (2, 22), (3, 20), (5, 22)] {
        let e = frame(&msg(typ, &vec![0; len - 19]), &AS2).unwrap_err();
        assert_eq!(
            (e.notification.subcode, e.notification.data.clone()),
            (2, (len as u16).to_be_bytes().to_vec())
        );
    }
    // Above 4096 only with RFC 8654, and never for OPEN.
    let mut big = msg(2, &[]);
    big[16..18].copy_from_slice(&4097u16.to_be_bytes());
    assert_eq!(
        frame(&big, &AS2).unwrap_err().notification.data,
        vec![0x10, 0x01]
    );
    let ext = Codec {
        four_octet_as: true,
        extended_message: true,
    };
    assert_eq!(frame(&big, &ext), Ok(None));
    big[18] = 1;
    assert!(frame(&big, &ext).is_err());
}

#[test]
fn frame_rejects_unknown_types_with_the_type_as_data() {
    let e = frame(&msg(6, &[]), &AS2).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (1, 3));
    assert_eq!(e.notification.data, vec![6]);
}

#[test]
fn decode_wants_exactly_one_message() {
    let mut k = msg(4, &[]);
    k.push(0);
    error(&k, &AS2, 1, 2);
    error(&k[..10], &AS2, 1, 2);
}

// ---- OPEN (RFC 4271 4.2, 6.2; RFC 5492; RFC 6793; RFC 9072) ----

/// An OPEN body: version 4, `my_as`, `hold`, `id`, then the parameter bytes.
fn open_msg(my_as: u16, hold: u16, id: [u8; 4], params: &[u8]) -> Vec<u8> {
    let mut b = vec![4];
    b.extend_from_slice(&my_as.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id);
    b.push(params.len() as u8);
    b.extend_from_slice(params);
    msg(1, &b)
}

/// One optional parameter of type 2 holding `caps`.
fn caps_param(caps: &[&[u8]]) -> Vec<u8> {
    let c = caps.concat();
    let mut p = vec![2, c.len() as u8];
    p.extend_from_slice(&c);
    p
}

const CAP_AS4: &[u8] = &[65, 4, 0xfc, 0xde, 0x31, 0x21]; // 4242420001
const CAP_MP6: &[u8] = &[1, 4, 0, 2, 0, 1];

#[test]
fn open_with_capabilities_in_one_or_several_parameters() {
    let one = open_msg(
        23456,
        9,
        [172, 20, 1, 1],
        &caps_param(&[CAP_MP6, &[2, 0], CAP_AS4]),
    );
    let mut p = caps_param(&[CAP_MP6]);
    p.extend(caps_param(&[&[2, 0]]));
    p.extend(caps_param(&[CAP_AS4]));
    let several = open_msg(23456, 9, [172, 20, 1, 1], &p);
    let expect = Open {
        version: 4,
        asn: 4242420001,
        hold_time: 9,
        router_id: Ipv4Addr::new(172, 20, 1, 1),
        capabilities: vec![
            Capability::Multiprotocol { afi: 2, safi: 1 },
            Capability::RouteRefresh,
            Capability::FourOctetAs(4242420001),
        ],
    };
    for m in [&one, &several] {
        assert_eq!(Message::decode(m, &AS2), Ok(Message::Open(expect.clone())));
    }
    // Encoded as BIRD and FRR do: one parameter.
    assert_eq!(encode(&Message::Open(expect), &AS2), one);
}

#[test]
fn open_capability_values() {
    let caps: &[&[u8]] = &[
        &[5, 6, 0, 1, 0, 1, 0, 2],
        &[6, 0],
        &[69, 4, 0, 1, 1, 3],
        &[64, 2, 0x40, 0x78],
        &[128, 0],
    ];
    let m = open_msg(65000, 0, [1, 2, 3, 4], &caps_param(caps));
    let Ok(Message::Open(o)) = Message::decode(&m, &AS2) else {
        panic!()
    };
    assert_eq!(o.asn, 65000);
    assert_eq!(
        o.capabilities,
        vec![
            Capability::ExtendedNextHop(vec![ExtendedNextHopEntry {
                afi: 1,
                safi: 1,
                nh_afi: 2
            }]),
            Capability::ExtendedMessage,
            Capability::AddPath(vec![(1, 1, 3)]),
            Capability::Other(64, vec![0x40, 0x78]),
            Capability::Other(128, vec![]),
        ]
    );
    assert_eq!(encode(&Message::Open(o), &AS2), m);
}

#[test]
fn open_extended_optional_parameters_rfc9072() {
    // 60 capabilities of 6 bytes: 360 bytes, more than one length byte holds.
    let caps: Vec<Capability> = (0..60)
        .map(|i| Capability::Other(200, vec![i, 0, 0, 0]))
        .collect();
    let o = Open {
        version: 4,
        asn: 65000,
        hold_time: 90,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        capabilities: caps,
    };
    let m = encode(&Message::Open(o.clone()), &AS2);
    assert_eq!(&m[28..34], &[255, 255, 0x01, 0x6b, 2, 0x01]);
    assert_eq!(Message::decode(&m, &AS2), Ok(Message::Open(o)));
    // A small one in the extended format (as RFC 9072 allows) is accepted too.
    let mut b = vec![
        4, 0xfd, 0xe8, 0, 90, 10, 0, 0, 1, 255, 255, 0, 5, 2, 0, 2, 2, 0,
    ];
    b.truncate(18);
    let Ok(Message::Open(o)) = Message::decode(&msg(1, &b), &AS2) else {
        panic!()
    };
    assert_eq!(o.capabilities, vec![Capability::RouteRefresh]);
}

#[test]
fn open_errors() {
    let ok = caps_param(&[CAP_MP6]);
    let mut v3 = open_msg(65000, 90, [1, 1, 1, 1], &ok);
    v3[19] = 3;
    assert_eq!(error(&v3, &AS2, 2, 1).notification.data, vec![0, 4]);
    error(&open_msg(0, 90, [1, 1, 1, 1], &ok), &AS2, 2, 2);
    error(
        &open_msg(
            23456,
            90,
            [1, 1, 1, 1],
            &caps_param(&[&[65, 4, 0, 0, 0, 0]]),
        ),
        &AS2,
        2,
        2,
    );
    let e = error(&open_msg(65000, 90, [0, 0, 0, 0], &ok), &AS2, 2, 3);
    assert_eq!(e.notification.data, vec![0, 0, 0, 0]);
    for hold in [1, 2] {
        let e = error(&open_msg(65000, hold, [1, 1, 1, 1], &ok), &AS2, 2, 6);
        assert_eq!(e.notification.data, hold.to_be_bytes().to_vec());
    }
    for hold in [0, 3] {
        assert!(Message::decode(&open_msg(65000, hold, [1, 1, 1, 1], &ok), &AS2).is_ok());
    }
    // Parameter type 1 (authentication, deprecated): unsupported, data = the parameter.
    let e = error(
        &open_msg(65000, 90, [1, 1, 1, 1], &[1, 2, 9, 9]),
        &AS2,
        2,
        4,
    );
    assert_eq!(e.notification.data, vec![1, 2, 9, 9]);
    // Malformed capabilities and parameters: 2/0, as BIRD.
    for params in [
        caps_param(&[&[1, 3, 0, 2, 0]]),
        caps_param(&[&[65, 2, 0, 1]]),
        caps_param(&[&[2, 1, 0]]),
        caps_param(&[&[1, 9, 0, 2]]),
        vec![2, 9, 1, 4],
        vec![2],
    ] {
        error(&open_msg(65000, 90, [1, 1, 1, 1], &params), &AS2, 2, 0);
    }
    // Trailing bytes after the declared parameters.
    let mut m = open_msg(65000, 90, [1, 1, 1, 1], &ok);
    m.push(0);
    m[17] += 1;
    error(&m, &AS2, 2, 0);
}

#[test]
fn open_asn_from_the_four_octet_capability() {
    // 2-byte field equal to the capability (small ASN).
    let m = open_msg(
        65001,
        90,
        [1, 1, 1, 1],
        &caps_param(&[&[65, 4, 0, 0, 0xfd, 0xe9]]),
    );
    let Ok(Message::Open(o)) = Message::decode(&m, &AS2) else {
        panic!()
    };
    assert_eq!(o.asn, 65001);
    assert_eq!(encode(&Message::Open(o), &AS2), m);
    // Disagreeing fields (seen in BGP_notification_msg.cap): the capability wins, as in
    // BIRD; re-encoded, the 2-byte field says AS_TRANS.
    let m = open_msg(
        65001,
        90,
        [1, 1, 1, 1],
        &caps_param(&[&[65, 4, 0, 2, 0xfd, 0xe8]]),
    );
    let Ok(Message::Open(o)) = Message::decode(&m, &AS2) else {
        panic!()
    };
    assert_eq!(o.asn, 196072);
    assert_eq!(
        &encode(&Message::Open(o), &AS2)[20..22],
        &AS_TRANS.to_be_bytes()
    );
}

// ---- NOTIFICATION, KEEPALIVE, ROUTE-REFRESH ----

#[test]
fn notification_keepalive_route_refresh_roundtrip() {
    for m in [
        Message::Keepalive,
        Message::Notification(Notification {
            code: 4,
            subcode: 0,
            data: vec![],
        }),
        Message::Notification(Notification::cease(2, "maintenance")),
        Message::RouteRefresh(RouteRefresh {
            afi: 2,
            subtype: 1,
            safi: 1,
        }),
    ] {
        for codec in [AS2, AS4] {
            assert_eq!(Message::decode(&encode(&m, &codec), &codec), Ok(m.clone()));
        }
    }
}

#[test]
fn route_refresh_of_the_wrong_length() {
    // RFC 7313 5: 7/1 with the message as data (ORF entries included: we never offer ORF).
    let m = msg(5, &[0, 1, 0, 1, 0]);
    assert_eq!(error(&m, &AS2, 7, 1).notification.data, m);
    // Shorter than 4 bytes cannot be framed: 1/2.
    let e = frame(&msg(5, &[0, 1, 0]), &AS2).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (1, 2));
}

#[test]
fn notifications_in_words() {
    let n = |code, subcode, data: &[u8]| Notification {
        code,
        subcode,
        data: data.to_vec(),
    };
    assert_eq!(n(4, 0, &[]).describe(), "Hold timer expired");
    assert_eq!(n(6, 2, &[]).describe(), "Cease: Administrative shutdown");
    assert_eq!(
        n(2, 2, &[0xfe, 0xb0]).describe(),
        "Error in OPEN message: Bad peer AS"
    );
    assert_eq!(
        n(3, 10, &[]).describe(),
        "Error in UPDATE message: Invalid network field"
    );
    assert_eq!(n(6, 0, &[]).describe(), "Cease");
    assert_eq!(
        n(3, 99, &[]).describe(),
        "Error in UPDATE message: subcode 99"
    );
    assert_eq!(n(9, 1, &[]).describe(), "Unknown error 9.1");
    assert_eq!(
        Notification::cease(2, "going down for maintenance").describe(),
        "Cease: Administrative shutdown: \"going down for maintenance\""
    );
    assert_eq!(
        Notification::cease(4, "a\"b\n").describe(),
        "Cease: Administrative reset: \"a\\\"b\\n\""
    );
    // Not UTF-8, or a length past the data: no text.
    assert_eq!(n(6, 2, &[2, 0xff, 0xfe]).shutdown_communication(), None);
    assert_eq!(n(6, 2, &[5, b'a']).shutdown_communication(), None);
    // Other subcodes carry no shutdown communication.
    assert_eq!(n(6, 3, &[1, b'a']).shutdown_communication(), None);
}

#[test]
fn cease_message_is_cut_at_a_character_boundary() {
    let long = "é".repeat(200); // 400 bytes
    let n = Notification::cease(2, &long);
    assert_eq!(n.data[0], 254);
    assert_eq!(n.data.len(), 255);
    assert_eq!(n.shutdown_communication(), Some(&long[..254]));
    assert!(Notification::cease(2, "").data.is_empty());
}

// ---- UPDATE: RFC 7606 error handling, one test per rule ----

#[test]
fn a_well_formed_update() {
    let m = update(&[16, 10, 1], &mandatory(), NLRI);
    let u = decode_update(&m, &AS4);
    assert_eq!(u.withdrawn, vec![v4("10.1.0.0/16")]);
    assert_eq!(u.nlri, vec![v4("10.0.0.0/8"), v4("192.168.1.0/24")]);
    let a = u.attrs.as_ref().unwrap();
    assert_eq!(
        a.as_path.segments,
        vec![AsSegment::Sequence(vec![4242420001])]
    );
    assert_eq!(a.next_hop, Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(u.treat_as_withdraw, None);
    assert_eq!(encode(&Message::Update(u), &AS4), m);
}

#[test]
fn rfc7606_3c_attribute_flags_conflict_is_treat_as_withdraw() {
    // ORIGIN marked optional.
    let mut a = mandatory();
    a[0] = attr(0xc0, 1, &[0]);
    withdrawn_because(&update(&[], &a, NLRI), &AS4, "wrong flags");
    // COMMUNITIES marked well-known.
    let mut a = mandatory();
    a.push(attr(0x40, 8, &[0, 1, 0, 2]));
    let u = withdrawn_because(&update(&[], &a, NLRI), &AS4, "wrong flags");
    assert!(u.attrs.unwrap().communities.is_empty());
    // The partial bit and the extended length bit are not conflicts.
    let mut a = mandatory();
    a.push(attr(0xe0 | FLAG_EXTENDED_LENGTH, 8, &[0, 1, 0, 2]));
    let u = decode_update(&update(&[], &a, NLRI), &AS4);
    assert_eq!(u.treat_as_withdraw, None);
    assert_eq!(u.attrs.unwrap().communities, vec![0x0001_0002]);
}

#[test]
fn rfc7606_3c_mp_reach_with_wrong_flags_is_still_parsed() {
    let mut a = vec![origin(), path4(&[65000])];
    a.push(attr(
        0xc0,
        14,
        &[
            0, 2, 1, 16, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 32, 0xfd, 0, 0,
            0x0a,
        ],
    ));
    let u = withdrawn_because(&update(&[], &a, &[]), &AS4, "wrong flags");
    assert_eq!(u.mp_reach.unwrap().nlri, vec![net("fd00:a::/32")]);
}

#[test]
fn rfc7606_3d_missing_mandatory_attributes_are_treat_as_withdraw() {
    for (i, name) in [(0, "ORIGIN"), (1, "AS_PATH"), (2, "NEXT_HOP")] {
        let mut a = mandatory();
        a.remove(i);
        withdrawn_because(&update(&[], &a, NLRI), &AS4, name);
    }
    // MP_REACH_NLRI needs no NEXT_HOP.
    let a = vec![
        origin(),
        path4(&[65000]),
        mp_reach_v6(&[48, 0xfd, 0, 0, 0x0a, 0, 0]),
    ];
    assert_eq!(
        decode_update(&update(&[], &a, &[]), &AS4).treat_as_withdraw,
        None
    );
    // A withdrawal needs no attributes at all.
    let u = decode_update(&update(&[8, 10], &[], &[]), &AS4);
    assert_eq!((u.attrs, u.treat_as_withdraw), (None, None));
    let u = decode_update(
        &update(
            &[],
            &[attr(0x80, 15, &[0, 2, 1, 32, 0xfd, 0, 0, 0x0a])],
            &[],
        ),
        &AS4,
    );
    assert_eq!(u.mp_unreach.unwrap().withdrawn, vec![net("fd00:a::/32")]);
}

/// MP_REACH_NLRI for IPv6 unicast with next hop fe80::1 and `nlri`.
fn mp_reach_v6(nlri: &[u8]) -> Vec<u8> {
    let mut v = vec![
        0, 2, 1, 16, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0,
    ];
    v.extend_from_slice(nlri);
    attr(0x80, 14, &v)
}

#[test]
fn rfc7606_3g_duplicate_attributes() {
    // Any attribute but MP_*: the first one counts, later ones are discarded.
    let mut a = mandatory();
    a.push(attr(0x40, 1, &[2]));
    a.push(attr(0xc0, 8, &[0, 1, 0, 2]));
    a.push(attr(0xc0, 8, &[0, 3, 0, 4]));
    let u = decode_update(&update(&[], &a, NLRI), &AS4);
    let attrs = u.attrs.unwrap();
    assert_eq!(
        (attrs.origin, attrs.communities),
        (Origin::Igp, vec![0x0001_0002])
    );
    assert_eq!(u.treat_as_withdraw, None);
    // MP_REACH_NLRI or MP_UNREACH_NLRI twice: session reset, Malformed Attribute List.
    let a = vec![
        origin(),
        path4(&[65000]),
        mp_reach_v6(&[]),
        mp_reach_v6(&[]),
    ];
    error(&update(&[], &a, &[]), &AS4, 3, 1);
    let unreach = attr(0x80, 15, &[0, 2, 1]);
    error(&update(&[], &[unreach.clone(), unreach], &[]), &AS4, 3, 1);
}

#[test]
fn rfc7606_4_framing_errors_are_treat_as_withdraw() {
    // The last attribute's length runs past the attribute list.
    let mut a = mandatory();
    a.push(vec![0xc0, 8, 8, 0, 1, 0, 2]);
    withdrawn_because(&update(&[], &a, NLRI), &AS4, "overruns the list");
    // A truncated attribute header.
    let mut a = mandatory();
    a.push(vec![0xd0, 8, 0]);
    withdrawn_because(&update(&[], &a, NLRI), &AS4, "truncated attribute header");
}

#[test]
fn rfc7606_5_2_an_error_in_an_update_without_nlri_resets_the_session() {
    // As BIRD: treat-as-withdraw needs something to withdraw.
    let mut a = mandatory();
    a.push(attr(0xc0, 8, &[0, 1, 0]));
    let e = error(&update(&[8, 10], &a, &[]), &AS4, 3, 1);
    assert!(e.reason.contains("without NLRI"), "{e}");
}

#[test]
fn rfc7606_5_3_nlri_syntax_errors_reset_the_session() {
    // Prefix longer than 32 bits, in NLRI or withdrawn routes.
    error(
        &update(&[], &mandatory(), &[33, 1, 2, 3, 4, 5]),
        &AS4,
        3,
        10,
    );
    error(&update(&[33, 1, 2, 3, 4, 5], &[], &[]), &AS4, 3, 10);
    // Prefix running past the end of its field.
    error(&update(&[], &mandatory(), &[24, 10, 0]), &AS4, 3, 10);
    error(&update(&[16, 10], &[], &[]), &AS4, 3, 10);
    // The same inside MP_REACH / MP_UNREACH.
    let a = vec![origin(), path4(&[65000]), mp_reach_v6(&[129])];
    error(&update(&[], &a, &[]), &AS4, 3, 10);
    let a = vec![origin(), path4(&[65000]), mp_reach_v6(&[64, 0xfd, 0])];
    error(&update(&[], &a, &[]), &AS4, 3, 10);
    error(
        &update(&[], &[attr(0x80, 15, &[0, 1, 1, 33])], &[]),
        &AS4,
        3,
        10,
    );
}

#[test]
fn rfc4271_6_3_lengths_past_the_message_are_malformed_attribute_list() {
    // Withdrawn Routes Length past the end.
    let mut m = update(&[], &[], &[]);
    m[19..21].copy_from_slice(&9u16.to_be_bytes());
    error(&m, &AS4, 3, 1);
    // Total Path Attribute Length past the end.
    let mut m = update(&[], &mandatory(), NLRI);
    m[21..23].copy_from_slice(&200u16.to_be_bytes());
    error(&m, &AS4, 3, 1);
}

#[test]
fn rfc7606_7_1_malformed_origin_is_treat_as_withdraw() {
    for value in [&[3][..], &[0, 0], &[]] {
        let mut a = mandatory();
        a[0] = attr(0x40, 1, value);
        withdrawn_because(&update(&[], &a, NLRI), &AS4, "ORIGIN");
    }
}

#[test]
fn rfc7606_7_2_malformed_as_path_is_treat_as_withdraw() {
    let cases: [(&[u8], &str); 5] = [
        (&[2, 2, 0, 0, 0, 1], "runs past"),
        (&[2, 0], "empty segment"),
        (&[2, 1, 0, 0, 0, 1, 2], "single byte"),
        (&[5, 1, 0, 0, 0, 1], "segment type 5"),
        (&[2, 1, 0, 0, 0, 0], "AS 0"),
    ];
    for (value, why) in cases {
        let mut a = mandatory();
        a[1] = attr(0x40, 2, value);
        withdrawn_because(&update(&[], &a, NLRI), &AS4, why);
    }
    // An empty AS_PATH is fine (iBGP).
    let mut a = mandatory();
    a[1] = attr(0x40, 2, &[]);
    assert_eq!(
        decode_update(&update(&[], &a, NLRI), &AS4).treat_as_withdraw,
        None
    );
}

#[test]
fn rfc7606_7_3_next_hop_of_the_wrong_length_is_treat_as_withdraw() {
    let mut a = mandatory();
    a[2] = attr(0x40, 3, &[192, 0, 2, 1, 0]);
    withdrawn_because(&update(&[], &a, NLRI), &AS4, "NEXT_HOP of 5 bytes");
}

#[test]
fn rfc7606_7_4_and_7_5_med_and_local_pref_lengths_are_treat_as_withdraw() {
    for (flags, code, len) in [(0x80, 4, 3), (0x40, 5, 5)] {
        let mut a = mandatory();
        a.push(attr(flags, code, &vec![0; len]));
        withdrawn_because(&update(&[], &a, NLRI), &AS4, "instead of 4");
    }
    let mut a = mandatory();
    a.push(attr(0x80, 4, &[0, 0, 0, 50]));
    a.push(attr(0x40, 5, &[0, 0, 0, 100]));
    let attrs = decode_update(&update(&[], &a, NLRI), &AS4).attrs.unwrap();
    assert_eq!((attrs.med, attrs.local_pref), (Some(50), Some(100)));
}

#[test]
fn rfc7606_7_6_and_7_7_atomic_aggregate_and_aggregator_lengths_are_attribute_discard() {
    let mut a = mandatory();
    a.push(attr(0x40, 6, &[0]));
    a.push(attr(0xc0, 7, &[0, 0, 0xfd, 0xe8, 10, 0, 0]));
    let u = decode_update(&update(&[], &a, NLRI), &AS4);
    assert_eq!(u.treat_as_withdraw, None);
    let attrs = u.attrs.unwrap();
    assert_eq!((attrs.atomic_aggregate, attrs.aggregator), (false, None));
    // 8 bytes on a 2-byte session is just as wrong; 6 bytes is right there.
    let agg8 = attr(0xc0, 7, &[0, 0, 0xfd, 0xe8, 10, 0, 0, 1]);
    let agg6 = attr(0xc0, 7, &[0xfd, 0xe8, 10, 0, 0, 1]);
    let path2 = attr(0x40, 2, &[2, 1, 0xfd, 0xe8]);
    let m = |agg: &Vec<u8>| {
        update(
            &[],
            &[origin(), path2.clone(), next_hop(), agg.clone()],
            NLRI,
        )
    };
    assert_eq!(
        decode_update(&m(&agg8), &AS2).attrs.unwrap().aggregator,
        None
    );
    assert_eq!(
        decode_update(&m(&agg6), &AS2).attrs.unwrap().aggregator,
        Some((65000, Ipv4Addr::new(10, 0, 0, 1)))
    );
    // RFC 7607: AS 0 in AGGREGATOR makes it malformed: discard.
    let mut a = mandatory();
    a.push(attr(0xc0, 7, &[0, 0, 0, 0, 10, 0, 0, 1]));
    let u = decode_update(&update(&[], &a, NLRI), &AS4);
    assert_eq!(
        (u.treat_as_withdraw, u.attrs.unwrap().aggregator),
        (None, None)
    );
}

#[test]
fn rfc7606_7_8_and_7_14_communities_lengths_are_treat_as_withdraw() {
    for (code, len) in [(8, 5), (8, 0), (16, 12), (16, 0)] {
        let mut a = mandatory();
        a.push(attr(0xc0, code, &vec![1; len]));
        withdrawn_because(
            &update(&[], &a, NLRI),
            &AS4,
            &format!("attribute {code} of {len} bytes"),
        );
    }
}

#[test]
fn rfc8092_5_large_communities_length_and_duplicates() {
    for len in [13, 0] {
        let mut a = mandatory();
        a.push(attr(0xc0, 32, &vec![1; len]));
        withdrawn_because(&update(&[], &a, NLRI), &AS4, "attribute 32");
    }
    let lc = |a: u32, b: u32, c: u32| [a.to_be_bytes(), b.to_be_bytes(), c.to_be_bytes()].concat();
    let mut a = mandatory();
    a.push(attr(
        0xc0,
        32,
        &[lc(1, 2, 3), lc(4, 5, 6), lc(1, 2, 3)].concat(),
    ));
    let attrs = decode_update(&update(&[], &a, NLRI), &AS4).attrs.unwrap();
    assert_eq!(attrs.large_communities, vec![[1, 2, 3], [4, 5, 6]]);
}

#[test]
fn rfc7606_7_11_malformed_mp_reach_resets_the_session() {
    // Next hop of a length no family uses.
    let mut v = vec![0, 2, 1, 4, 10, 0, 0, 1, 0];
    v.extend_from_slice(&[32, 0xfd, 0, 0, 0x0a]);
    let a = vec![origin(), path4(&[65000]), attr(0x80, 14, &v)];
    let e = error(&update(&[], &a, &[]), &AS4, 3, 9);
    assert_eq!(e.notification.data, a[2]);
    // Next hop longer than the attribute; no reserved byte; shorter than AFI+SAFI.
    for v in [
        &[0, 2, 1, 16, 0xfe][..],
        &[0, 1, 1, 4, 10, 0, 0, 1],
        &[0, 2],
    ] {
        let a = vec![origin(), path4(&[65000]), attr(0x80, 14, v)];
        error(&update(&[], &a, &[]), &AS4, 3, 9);
    }
    error(&update(&[], &[attr(0x80, 15, &[0, 2])], &[]), &AS4, 3, 9);
}

#[test]
fn mp_next_hop_encodings() {
    let ll = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xa);
    let g = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let cases: Vec<(u16, Vec<u8>, NextHop)> = vec![
        (
            1,
            vec![192, 0, 2, 1],
            NextHop::V4(Ipv4Addr::new(192, 0, 2, 1)),
        ),
        (1, ll.octets().to_vec(), NextHop::V6(ll)),
        (
            1,
            [[0; 16], ll.octets()].concat(),
            NextHop::V6Pair(Ipv6Addr::UNSPECIFIED, ll),
        ),
        (
            2,
            [g.octets(), ll.octets()].concat(),
            NextHop::V6Pair(g, ll),
        ),
        (2, [[0; 8].as_slice(), &g.octets()].concat(), NextHop::V6(g)),
        (
            2,
            [[0; 8].as_slice(), &g.octets(), &[0; 8], &ll.octets()].concat(),
            NextHop::V6Pair(g, ll),
        ),
    ];
    for (afi, nh, expect) in cases {
        let mut v = vec![0, afi as u8, 1, nh.len() as u8];
        v.extend_from_slice(&nh);
        v.extend_from_slice(&[0, 8, 10]);
        let a = vec![origin(), path4(&[65000]), attr(0x80, 14, &v)];
        let m = update(&[], &a, &[]);
        let u = decode_update(&m, &AS4);
        let r = u.mp_reach.clone().unwrap();
        assert_eq!(r.next_hop, expect);
        assert_eq!(
            r.nlri,
            vec![if afi == 1 {
                net("10.0.0.0/8")
            } else {
                net("a00::/8")
            }]
        );
        if [4, 16, 32].contains(&nh.len()) {
            assert_eq!(encode(&Message::Update(u), &AS4), m);
        }
    }
    // A non-zero route distinguisher, or 24 bytes for IPv4, is an error.
    for (afi, nh) in [
        (
            2u8,
            [[0, 0, 0, 0, 0, 0, 0, 1].as_slice(), &g.octets()].concat(),
        ),
        (1, vec![0; 24]),
    ] {
        let mut v = vec![0, afi, 1, nh.len() as u8];
        v.extend_from_slice(&nh);
        v.push(0);
        let a = vec![origin(), path4(&[65000]), attr(0x80, 14, &v)];
        error(&update(&[], &a, &[]), &AS4, 3, 9);
    }
    assert_eq!(
        NextHop::V6Pair(Ipv6Addr::UNSPECIFIED, ll).link_local(),
        Some(ll)
    );
    assert_eq!(NextHop::V6Pair(g, ll).global_v6(), Some(g));
}

#[test]
fn mp_attributes_of_other_families_are_ignored() {
    // FlowSpec (1/133) and labeled unicast (1/4), with contents we cannot parse.
    for safi in [133u8, 4, 128] {
        let a = vec![
            origin(),
            path4(&[65000]),
            attr(0x80, 14, &[0, 1, safi, 0, 0, 0xff, 0xff]),
            attr(0xc0, 16, &[0x80, 6, 0, 0, 0, 0, 0, 0]),
        ];
        let u = decode_update(&update(&[], &a, &[]), &AS4);
        assert_eq!((u.mp_reach, u.treat_as_withdraw), (None, None));
        assert_eq!(
            u.attrs.unwrap().ext_communities,
            vec![[0x80, 6, 0, 0, 0, 0, 0, 0]]
        );
        let u = decode_update(
            &update(&[], &[attr(0x80, 15, &[0, 1, safi, 0xff])], &[]),
            &AS4,
        );
        assert_eq!(u.mp_unreach, None);
        // Not mistaken for an IPv4 End-of-RIB.
        assert_eq!(u.is_end_of_rib(), None);
    }
}

#[test]
fn rfc4271_6_3_unrecognized_well_known_attribute() {
    let mut a = mandatory();
    let bad = attr(0x40, 40, &[1, 2]);
    a.push(bad.clone());
    let e = error(&update(&[], &a, NLRI), &AS4, 3, 2);
    assert_eq!(e.notification.data, bad);
}

#[test]
fn unknown_optional_attributes_are_kept_in_code_order() {
    let mut a = mandatory();
    a.push(attr(0xe0 | FLAG_EXTENDED_LENGTH, 40, &[1, 2]));
    a.push(attr(0x80, 9, &[10, 0, 0, 1]));
    let u = decode_update(&update(&[], &a, NLRI), &AS4);
    assert_eq!(
        u.attrs.clone().unwrap().other,
        vec![
            RawAttribute {
                flags: 0x80,
                code: 9,
                value: vec![10, 0, 0, 1]
            },
            RawAttribute {
                flags: 0xe0,
                code: 40,
                value: vec![1, 2]
            },
        ]
    );
    // Re-encoded in type-code order, partial bit kept, extended length dropped.
    let mut b = mandatory();
    b.push(attr(0x80, 9, &[10, 0, 0, 1]));
    b.push(attr(0xe0, 40, &[1, 2]));
    assert_eq!(encode(&Message::Update(u), &AS4), update(&[], &b, NLRI));
}

#[test]
fn host_bits_beyond_the_prefix_length_are_cleared() {
    let u = decode_update(&update(&[12, 10, 0xff], &mandatory(), &[9, 10, 0xff]), &AS4);
    assert_eq!(u.withdrawn, vec![v4("10.240.0.0/12")]);
    assert_eq!(u.nlri, vec![v4("10.128.0.0/9")]);
}

// ---- RFC 6793: 2-byte sessions, AS4_PATH, AS4_AGGREGATOR ----

/// AS_PATH of 2-byte ASNs.
fn path2(segments: &[(u8, &[u16])]) -> Vec<u8> {
    let mut v = Vec::new();
    for (t, asns) in segments {
        v.extend_from_slice(&[*t, asns.len() as u8]);
        for a in *asns {
            v.extend_from_slice(&a.to_be_bytes());
        }
    }
    attr(0x40, 2, &v)
}

fn as4_path(segments: &[(u8, &[u32])]) -> Vec<u8> {
    let mut v = Vec::new();
    for (t, asns) in segments {
        v.extend_from_slice(&[*t, asns.len() as u8]);
        for a in *asns {
            v.extend_from_slice(&a.to_be_bytes());
        }
    }
    attr(0xc0, 17, &v)
}

fn path_of(m: &[u8], codec: &Codec) -> AsPath {
    decode_update(m, codec).attrs.unwrap().as_path
}

#[test]
fn rfc6793_as4_path_is_merged_on_two_byte_sessions() {
    // An OLD speaker (65010) prepended itself in front of a NEW speaker's path.
    let m = update(
        &[],
        &[
            origin(),
            path2(&[(2, &[65010, 23456, 65001])]),
            next_hop(),
            as4_path(&[(2, &[4242420001, 65001])]),
        ],
        NLRI,
    );
    let p = path_of(&m, &AS2);
    assert_eq!(
        p.segments,
        vec![AsSegment::Sequence(vec![65010, 4242420001, 65001])]
    );
    assert_eq!(p.to_string(), "65010 4242420001 65001");
    // Re-encoded: AS_TRANS in AS_PATH, the whole path in AS4_PATH (RFC 6793 4.2.2).
    let again = encode(&Message::Update(decode_update(&m, &AS2)), &AS2);
    let expect = update(
        &[],
        &[
            origin(),
            path2(&[(2, &[65010, 23456, 65001])]),
            next_hop(),
            as4_path(&[(2, &[65010, 4242420001, 65001])]),
        ],
        NLRI,
    );
    assert_eq!(again, expect);
    // On a 4-byte session the same bytes mean something else, and AS4_PATH is dropped.
    let m4 = update(
        &[],
        &[
            origin(),
            path4(&[4242420001]),
            next_hop(),
            as4_path(&[(2, &[1, 2, 3])]),
        ],
        NLRI,
    );
    let u = decode_update(&m4, &AS4);
    assert_eq!(u.attrs.as_ref().unwrap().as_path.to_string(), "4242420001");
    assert!(u.attrs.unwrap().other.is_empty());
}

#[test]
fn rfc6793_as4_path_edge_cases() {
    let base = |as4: Vec<u8>| {
        update(
            &[],
            &[origin(), path2(&[(2, &[23456, 65001])]), next_hop(), as4],
            NLRI,
        )
    };
    // Longer than AS_PATH: ignored.
    let p = path_of(&base(as4_path(&[(2, &[1, 2, 3])])), &AS2);
    assert_eq!(p.to_string(), "23456 65001");
    // Malformed, or with AS 0: discarded, not treat-as-withdraw.
    for as4 in [attr(0xc0, 17, &[2, 3, 0, 0]), as4_path(&[(2, &[0, 65001])])] {
        let u = decode_update(&base(as4), &AS2);
        assert_eq!(u.treat_as_withdraw, None);
        assert_eq!(u.attrs.unwrap().as_path.to_string(), "23456 65001");
    }
    // Confederation segments in AS4_PATH are dropped (RFC 6793 6).
    let p = path_of(
        &base(as4_path(&[(3, &[7]), (2, &[4242420001, 65001])])),
        &AS2,
    );
    assert_eq!(p.to_string(), "4242420001 65001");
    // Sets count one; the leading part of AS_PATH keeps its sets and confederations.
    let m = update(
        &[],
        &[
            origin(),
            path2(&[
                (3, &[64512]),
                (2, &[65010]),
                (1, &[23456, 65002]),
                (2, &[65001]),
            ]),
            next_hop(),
            as4_path(&[(1, &[4242420009, 65002]), (2, &[65001])]),
        ],
        NLRI,
    );
    assert_eq!(
        path_of(&m, &AS2).to_string(),
        "(64512) 65010 {4242420009 65002} 65001"
    );
}

#[test]
fn rfc6793_aggregator() {
    let agg2 = |asn: u16| {
        let mut v = asn.to_be_bytes().to_vec();
        v.extend_from_slice(&[10, 0, 0, 2]);
        attr(0xc0, 7, &v)
    };
    let as4_agg = attr(0xc0, 18, &[0xfc, 0xde, 0x31, 0x21, 10, 0, 0, 2]);
    let as4p = as4_path(&[(2, &[4242420001])]);
    let m = |agg: Vec<u8>| {
        update(
            &[],
            &[
                origin(),
                path2(&[(2, &[23456])]),
                next_hop(),
                agg,
                as4p.clone(),
                as4_agg.clone(),
            ],
            NLRI,
        )
    };
    // AGGREGATOR says AS_TRANS: AS4_AGGREGATOR and AS4_PATH are used.
    let a = decode_update(&m(agg2(23456)), &AS2).attrs.unwrap();
    assert_eq!(a.aggregator, Some((4242420001, Ipv4Addr::new(10, 0, 0, 2))));
    assert_eq!(a.as_path.to_string(), "4242420001");
    // An OLD speaker aggregated: both AS4 attributes are ignored.
    let a = decode_update(&m(agg2(65005)), &AS2).attrs.unwrap();
    assert_eq!(a.aggregator, Some((65005, Ipv4Addr::new(10, 0, 0, 2))));
    assert_eq!(a.as_path.to_string(), "23456");
    // Encoding a 4-byte aggregator for an OLD speaker: AS_TRANS plus AS4_AGGREGATOR.
    let u = decode_update(&m(agg2(23456)), &AS2);
    let again = encode(&Message::Update(u.clone()), &AS2);
    assert_eq!(again, m(agg2(23456)));
    // For a NEW speaker: one 8-byte AGGREGATOR, no AS4 attributes.
    let four = encode(&Message::Update(u), &AS4);
    let expect = update(
        &[],
        &[
            origin(),
            path4(&[4242420001]),
            next_hop(),
            attr(0xc0, 7, &[0xfc, 0xde, 0x31, 0x21, 10, 0, 0, 2]),
        ],
        NLRI,
    );
    assert_eq!(four, expect);
}

// ---- the encoder ----

fn attrs_with(f: impl FnOnce(&mut Attributes)) -> Attributes {
    let mut a = Attributes {
        as_path: AsPath {
            segments: vec![AsSegment::Sequence(vec![4242420002])],
        },
        next_hop: Some(Ipv4Addr::new(172, 20, 1, 1)),
        ..Attributes::default()
    };
    f(&mut a);
    a
}

#[test]
fn extended_length_exactly_when_a_value_exceeds_255_bytes() {
    for (n, ext) in [(63usize, false), (64, true)] {
        let u = Update {
            attrs: Some(attrs_with(|a| a.communities = (0..n as u32).collect())),
            nlri: vec![v4("172.20.1.0/24")],
            ..Update::default()
        };
        let m = encode(&Message::Update(u.clone()), &AS4);
        let at = m
            .windows(2)
            .position(|w| w[1] == 8 && (w[0] & 0xc0) == 0xc0)
            .unwrap();
        assert_eq!(m[at] & FLAG_EXTENDED_LENGTH != 0, ext, "{n} communities");
        assert_eq!(Message::decode(&m, &AS4), Ok(Message::Update(u)));
    }
}

#[test]
fn long_as_paths_are_split_into_segments_of_255() {
    let asns: Vec<u32> = (1..=300).collect();
    let u = Update {
        attrs: Some(attrs_with(|a| {
            a.as_path.segments = vec![AsSegment::Sequence(asns.clone())]
        })),
        nlri: vec![v4("10.0.0.0/8")],
        ..Update::default()
    };
    let m = encode(&Message::Update(u), &AS4);
    let p = decode_update(&m, &AS4).attrs.unwrap().as_path;
    assert_eq!(
        p.segments,
        vec![
            AsSegment::Sequence(asns[..255].to_vec()),
            AsSegment::Sequence(asns[255..].to_vec())
        ]
    );
    assert_eq!(p.len(), 300);
}

#[test]
fn attributes_in_type_code_order_with_mp_attributes_in_place() {
    let u = Update {
        attrs: Some(attrs_with(|a| {
            a.next_hop = None;
            a.large_communities = vec![[4242420001, 1, 2]];
            a.communities = vec![(64511 << 16) | 3];
            a.med = Some(50);
            a.other = vec![
                RawAttribute {
                    flags: 0xc0,
                    code: 35,
                    value: vec![0; 4],
                },
                RawAttribute {
                    flags: 0x80,
                    code: 9,
                    value: vec![1, 2, 3, 4],
                },
                RawAttribute {
                    flags: 0xc0,
                    code: 20,
                    value: vec![],
                },
            ];
        })),
        mp_reach: Some(MpReach {
            family: Family::Ipv6Unicast,
            next_hop: NextHop::V6Pair(Ipv6Addr::UNSPECIFIED, "fe80::a".parse().unwrap()),
            nlri: vec![net("fd00:a::/48")],
        }),
        mp_unreach: Some(MpUnreach {
            family: Family::Ipv4Unicast,
            withdrawn: vec![net("172.20.1.64/26")],
        }),
        ..Update::default()
    };
    let m = encode(&Message::Update(u.clone()), &AS4);
    let mut codes = Vec::new();
    let attrs = &m[23..];
    let mut at = 0;
    while at < attrs.len() {
        codes.push(attrs[at + 1]);
        let (len, h) = if attrs[at] & FLAG_EXTENDED_LENGTH != 0 {
            (
                u16::from_be_bytes([attrs[at + 2], attrs[at + 3]]) as usize,
                4,
            )
        } else {
            (attrs[at + 2] as usize, 3)
        };
        at += h + len;
    }
    assert_eq!(codes, vec![1, 2, 4, 8, 9, 14, 15, 20, 32, 35]);
    let mut expect = u;
    expect.attrs.as_mut().unwrap().other.sort_by_key(|r| r.code);
    assert_eq!(Message::decode(&m, &AS4), Ok(Message::Update(expect)));
}

#[test]
fn end_of_rib_markers() {
    for family in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
        let u = Update::end_of_rib(family);
        let m = encode(&Message::Update(u.clone()), &AS4);
        let d = decode_update(&m, &AS4);
        assert_eq!(d, u);
        assert_eq!(d.is_end_of_rib(), Some(family));
    }
    assert_eq!(
        encode(
            &Message::Update(Update::end_of_rib(Family::Ipv4Unicast)),
            &AS4
        )
        .len(),
        23
    );
    // IPv6: nothing but an empty MP_UNREACH_NLRI (what BIRD and FRR send).
    assert_eq!(
        encode(
            &Message::Update(Update::end_of_rib(Family::Ipv6Unicast)),
            &AS4
        ),
        update(&[], &[attr(0x80, 15, &[0, 2, 1])], &[])
    );
}

/// All messages in `bytes`, each checked against `codec.max_len()`.
fn split(bytes: &[u8], codec: &Codec) -> Vec<Update> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = frame(rest, codec).unwrap().unwrap();
        assert!(n <= codec.max_len());
        out.push(decode_update(&rest[..n], codec));
        rest = &rest[n..];
    }
    out
}

fn v4_nets(n: u32) -> Vec<Ipv4Net> {
    (0..n)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap())
        .collect()
}

fn v6_nets(n: u32) -> Vec<IpNet> {
    (0..n)
        .map(|i| {
            IpNet::V6(
                Ipv6Net::new(
                    Ipv6Addr::from(0xfd00_u128 << 112 | (u128::from(i) << 80)),
                    48,
                )
                .unwrap(),
            )
        })
        .collect()
}

#[test]
fn update_split_keeps_small_updates_whole() {
    let u = Update {
        attrs: Some(attrs_with(|_| {})),
        nlri: v4_nets(10),
        withdrawn: vec![v4("10.200.0.0/16")],
        ..Update::default()
    };
    let mut whole = Vec::new();
    let mut splitted = Vec::new();
    Message::Update(u.clone()).encode(&AS4, &mut whole);
    u.encode_split(&AS4, &mut splitted);
    assert_eq!(whole, splitted);
    let mut eor = Vec::new();
    Update::end_of_rib(Family::Ipv4Unicast).encode_split(&AS4, &mut eor);
    assert_eq!(eor.len(), 23);
}

#[test]
fn update_split_chunks_withdrawals_first_then_announcements_with_attributes() {
    let attrs = attrs_with(|a| a.communities = vec![1, 2, 3]);
    let u = Update {
        withdrawn: v4_nets(1500),
        attrs: Some(attrs.clone()),
        nlri: v4_nets(2000),
        mp_reach: Some(MpReach {
            family: Family::Ipv6Unicast,
            next_hop: NextHop::V6("fe80::1".parse().unwrap()),
            nlri: v6_nets(700),
        }),
        mp_unreach: Some(MpUnreach {
            family: Family::Ipv6Unicast,
            withdrawn: v6_nets(900),
        }),
        treat_as_withdraw: None,
    };
    for codec in [AS4, AS2] {
        let mut out = Vec::new();
        u.encode_split(&codec, &mut out);
        let msgs = split(&out, &codec);
        assert!(msgs.len() >= 8, "{} messages", msgs.len());
        let (mut w, mut n, mut r, mut un) = (vec![], vec![], vec![], vec![]);
        let mut announcing = false;
        for m in &msgs {
            let announces = !m.nlri.is_empty() || m.mp_reach.is_some();
            assert!(!announcing || announces, "withdrawals come first");
            announcing |= announces;
            if announces {
                assert_eq!(m.attrs.as_ref(), Some(&attrs));
                assert!(m.withdrawn.is_empty() && m.mp_unreach.is_none());
            } else {
                assert!(m.attrs.as_ref().is_none_or(|a| *a == Attributes::default()));
            }
            w.extend(m.withdrawn.iter().copied());
            n.extend(m.nlri.iter().copied());
            if let Some(x) = &m.mp_reach {
                assert_eq!(x.next_hop, u.mp_reach.as_ref().unwrap().next_hop);
                r.extend(x.nlri.iter().copied());
            }
            if let Some(x) = &m.mp_unreach {
                un.extend(x.withdrawn.iter().copied());
            }
        }
        assert_eq!(w, u.withdrawn);
        assert_eq!(n, u.nlri);
        assert_eq!(r, u.mp_reach.as_ref().unwrap().nlri);
        assert_eq!(un, u.mp_unreach.as_ref().unwrap().withdrawn);
    }
    // With extended messages, fewer and bigger messages.
    let ext = Codec {
        four_octet_as: true,
        extended_message: true,
    };
    let mut out = Vec::new();
    u.encode_split(&ext, &mut out);
    assert_eq!(split(&out, &ext).len(), 1);
}

#[test]
fn update_split_withdraws_routes_whose_attributes_cannot_fit() {
    // 1100 communities: 4400 bytes of attributes, more than a 4096-byte message holds.
    let u = Update {
        attrs: Some(attrs_with(|a| a.communities = (0..1100).collect())),
        nlri: v4_nets(3),
        mp_reach: Some(MpReach {
            family: Family::Ipv6Unicast,
            next_hop: NextHop::V6("fe80::1".parse().unwrap()),
            nlri: v6_nets(2),
        }),
        ..Update::default()
    };
    let mut out = Vec::new();
    u.encode_split(&AS4, &mut out);
    let msgs = split(&out, &AS4);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].withdrawn, u.nlri);
    assert_eq!(msgs[1].mp_unreach.as_ref().unwrap().withdrawn, v6_nets(2));
    assert!(msgs
        .iter()
        .all(|m| m.nlri.is_empty() && m.mp_reach.is_none()));
}
