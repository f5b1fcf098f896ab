//! The decoder never panics, whatever the bytes, and whatever it accepts it can encode
//! and read back: 100 000 deterministic mutations of real messages (from the captures,
//! the BIRD/FRR sessions and MRT samples), plus Wireshark's `randpkt` BGP fuzz capture
//! (/work/shared/data/pcap_bgp/fuzz_randpkt). The same properties are checked by the
//! cargo-fuzz target `fuzz/fuzz_targets/bgp_decode.rs`, which explores further.

mod common;

use common::*;
use rr_bgp::packet::{frame, Attributes, Codec, Message, Update};

const CODECS: [Codec; 4] = [
    Codec {
        four_octet_as: false,
        extended_message: false,
    },
    Codec {
        four_octet_as: true,
        extended_message: false,
    },
    Codec {
        four_octet_as: false,
        extended_message: true,
    },
    Codec {
        four_octet_as: true,
        extended_message: true,
    },
];

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The value a decoded message must have after an encode / decode round trip: an
/// UPDATE whose attributes all went away (families we ignore) has none at all.
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

/// Decodes `bytes` with every codec; checks what is accepted.
fn check(bytes: &[u8]) -> usize {
    let mut accepted = 0;
    for codec in CODECS {
        let _ = frame(bytes, &codec);
        let Ok(m) = Message::decode(bytes, &codec) else {
            continue;
        };
        accepted += 1;
        let mut out = Vec::new();
        m.encode(&codec, &mut out);
        // Re-read without the length limit: a 2-byte session's merged AS path can grow
        // the message (AS4_PATH rebuilt from the whole path).
        let roomy = Codec {
            extended_message: true,
            ..codec
        };
        let again = Message::decode(&out, &roomy)
            .unwrap_or_else(|e| panic!("own encoding rejected: {e}\n{bytes:02x?}\n{out:02x?}"));
        let clean = !matches!(
            &m,
            Message::Update(Update {
                treat_as_withdraw: Some(_),
                ..
            })
        );
        if codec.four_octet_as && clean {
            assert_eq!(normalized(&again), normalized(&m), "{bytes:02x?}");
        }
        if let (Message::Update(u), true) = (&m, clean && codec.four_octet_as) {
            split_check(u, &codec);
        }
    }
    accepted
}

/// `encode_split` gives messages within the limit that carry the same prefixes.
fn split_check(u: &Update, codec: &Codec) {
    let mut out = Vec::new();
    u.encode_split(codec, &mut out);
    let mut rest = out.as_slice();
    let (mut nlri, mut withdrawn) = (0, 0);
    while !rest.is_empty() {
        let n = frame(rest, codec).expect("frames").expect("whole");
        let Ok(Message::Update(part)) = Message::decode(&rest[..n], codec) else {
            panic!("split part does not decode")
        };
        nlri += part.nlri.len() + part.mp_reach.map_or(0, |r| r.nlri.len());
        withdrawn += part.withdrawn.len() + part.mp_unreach.map_or(0, |r| r.withdrawn.len());
        rest = &rest[n..];
    }
    let want_nlri = u.nlri.len() + u.mp_reach.as_ref().map_or(0, |r| r.nlri.len());
    let want_withdrawn = u.withdrawn.len() + u.mp_unreach.as_ref().map_or(0, |r| r.withdrawn.len());
    assert_eq!(nlri + withdrawn, want_nlri + want_withdrawn);
}

/// Real messages to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let pcaps = data_dir().join("pcap_bgp");
    for e in std::fs::read_dir(&pcaps).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "cap") {
            for s in pcap_sessions(&e.path()) {
                seeds.extend(s.dirs.into_iter().flatten());
            }
        }
    }
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    seeds.extend(bgp_files(&here).into_values().flatten());
    for f in ["openbgpd_bgp", "quagga_bgp", "bird_bgp", "bird6_bgp"] {
        let msgs = mrt_messages(&read(&data_dir().join("mrt/mrtparse_samples").join(f)));
        seeds.extend(msgs.into_iter().map(|m| m.bgp));
    }
    seeds
}

/// One random change; the header length is then fixed up most of the time, so that
/// the mutation reaches the body decoder.
fn mutate(rng: &mut Rng, m: &mut Vec<u8>) {
    for _ in 0..=rng.below(3) {
        let at = rng.below(m.len());
        match rng.below(8) {
            0 => m[at] ^= 1 << rng.below(8),
            1 => m[at] = rng.next() as u8,
            2 => m[at] = [0, 1, 2, 3, 4, 0x7f, 0x80, 0xff][rng.below(8)],
            3 => m.insert(at, rng.next() as u8),
            4 if m.len() > 19 => {
                m.remove(at.max(19));
            }
            5 => m.truncate(at.max(19)),
            6 => {
                let len = rng.below(16).min(m.len() - at);
                let chunk = m[at..at + len].to_vec();
                let to = rng.below(m.len());
                m.splice(to..to, chunk);
            }
            _ => {
                // A 16-bit length field somewhere in the body.
                let v = rng.below(600) as u16;
                if at + 2 <= m.len() && at >= 19 {
                    m[at..at + 2].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
    }
    if rng.below(8) != 0 && m.len() >= 19 {
        let len = m.len().min(usize::from(u16::MAX)) as u16;
        m[16..18].copy_from_slice(&len.to_be_bytes());
    }
}

#[test]
fn mutated_real_messages() {
    let seeds = seeds();
    assert!(seeds.len() > 500, "{} seeds", seeds.len());
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut accepted = 0;
    for i in 0..100_000 {
        let mut m = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut m);
        accepted += check(&m);
        if i % 1000 == 0 {
            // Whole seeds too, so that the properties hold on unmutated messages.
            accepted += check(&seeds[rng.below(seeds.len())]);
        }
    }
    println!(
        "{} seeds, 100000 mutations, {accepted} decodes accepted",
        seeds.len()
    );
    assert!(accepted > 50_000, "mutations too destructive: {accepted}");
}

#[test]
fn randpkt_fuzz_capture() {
    // 1000 packets to port 179: a marker, then random bytes (length and type included,
    // so they rarely frame). Each is also read as a message of each type, with its
    // header length made to match (cut to 4096 bytes), so the random bodies reach the
    // OPEN, UPDATE, NOTIFICATION and ROUTE-REFRESH decoders.
    let path = data_dir().join("pcap_bgp/fuzz_randpkt/pevma_mrp_bgp.pcap");
    let segments = tcp_segments(&read(&path));
    assert_eq!(segments.len(), 1000);
    let (mut framed, mut accepted) = (0, 0);
    for s in &segments {
        let mut rest = s.payload.as_slice();
        while let Ok(Some(n)) = frame(rest, &CODECS[3]) {
            accepted += check(&rest[..n]);
            framed += 1;
            rest = &rest[n..];
        }
        let mut m = s.payload.clone();
        m.truncate(4096);
        if m.len() < 19 {
            continue;
        }
        let len = m.len() as u16;
        m[16..18].copy_from_slice(&len.to_be_bytes());
        for typ in 1..=5 {
            m[18] = typ;
            accepted += check(&m);
        }
    }
    println!(
        "{} packets, {framed} framed as sent, {accepted} decodes accepted",
        segments.len()
    );
}
