//! The crypto bound: what one core can do if a transit packet cost nothing but its
//! cryptography — one ChaCha20-Poly1305 open (the ingress tunnel) and one seal (the egress
//! tunnel) with `ring`, the AEAD boringtun itself uses, on a buffer of the inner size.

use crate::{procfs, Rate};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Runs seal + open pairs on `size`-byte buffers for about `time` of wall time, on this
/// thread; the rate is per second of this thread's CPU time (the machine is shared).
pub fn bound(size: usize, time: Duration) -> Rate {
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7u8; 32]).expect("key"));
    let mut buf = vec![0x5au8; size + 16];
    let mut counter = 0u64;
    let one = |counter: u64, buf: &mut Vec<u8>| {
        let tag = key
            .seal_in_place_separate_tag(nonce(counter), Aad::empty(), &mut buf[..size])
            .expect("seal");
        buf[size..].copy_from_slice(tag.as_ref());
        let plain = key
            .open_in_place(nonce(counter), Aad::empty(), &mut buf[..])
            .expect("open");
        black_box(plain);
    };
    // Warm up (CPU frequency, caches).
    for _ in 0..2000 {
        one(counter, &mut buf);
        counter += 1;
    }
    let start = Instant::now();
    let cpu0 = procfs::thread_cpu_now();
    let mut packets = 0u64;
    loop {
        for _ in 0..1000 {
            one(counter, &mut buf);
            counter += 1;
        }
        packets += 1000;
        if start.elapsed() >= time {
            return Rate::new(packets, size, procfs::thread_cpu_now().saturating_sub(cpu0));
        }
    }
}
