//! Arbitrary bytes as a BGP byte stream: framing and decoding never panic, and what
//! the decoder accepts the encoder writes back into something it accepts again, with
//! the same value on 4-byte-AS sessions; `encode_split` keeps every prefix within the
//! size limit. The first byte picks the codec (4-byte ASNs, extended messages).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rr_bgp::packet::{frame, Attributes, Codec, Message, Update};

/// The value a message keeps through encode / decode: an UPDATE whose attributes all
/// went away (families the codec ignores) comes back with none at all.
fn normalized(m: &Message) -> Message {
    let mut m = m.clone();
    if let Message::Update(u) = &mut m {
        if u.attrs == Some(Attributes::default()) && u.mp_reach.is_none() && u.mp_unreach.is_none()
        {
            u.attrs = None;
        }
    }
    m
}

fn prefixes(u: &Update) -> usize {
    u.nlri.len()
        + u.withdrawn.len()
        + u.mp_reach.as_ref().map_or(0, |r| r.nlri.len())
        + u.mp_unreach.as_ref().map_or(0, |r| r.withdrawn.len())
}

fn check(m: &Message, codec: &Codec) {
    let mut out = Vec::new();
    m.encode(codec, &mut out);
    // A 2-byte session's merged AS path may grow the message: re-read without the limit.
    let roomy = Codec {
        extended_message: true,
        ..*codec
    };
    let again = Message::decode(&out, &roomy).expect("own encoding is accepted");
    let Message::Update(u) = m else {
        assert_eq!(&again, m);
        return;
    };
    if u.treat_as_withdraw.is_some() || !codec.four_octet_as {
        return;
    }
    assert_eq!(normalized(&again), normalized(m));
    let mut split = Vec::new();
    u.encode_split(codec, &mut split);
    let mut rest = split.as_slice();
    let mut count = 0;
    while !rest.is_empty() {
        let n = frame(rest, codec)
            .expect("split frames")
            .expect("split whole");
        let Ok(Message::Update(part)) = Message::decode(&rest[..n], codec) else {
            panic!("split part rejected")
        };
        count += prefixes(&part);
        rest = &rest[n..];
    }
    assert_eq!(count, prefixes(u));
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let codec = Codec {
        four_octet_as: sel & 1 != 0,
        extended_message: sel & 2 != 0,
    };
    while let Ok(Some(n)) = frame(rest, &codec) {
        if let Ok(m) = Message::decode(&rest[..n], &codec) {
            check(&m, &codec);
        }
        rest = &rest[n..];
    }
});
