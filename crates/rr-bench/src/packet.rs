//! The inner packets the benchmark sends: IPv4/UDP, DF set, TTL 64, a valid header
//! checksum, from `172.20.<src_net>.x` to `172.20.<src_net + 1>.x`.

/// TTL the generator writes; the router must hand it on as `TTL - 1`.
pub const TTL: u8 = 64;

/// RFC 1071 one's-complement sum over `data`, folded and complemented.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let word = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Packet number `i` of a flow: `size` bytes of IPv4 (20) + UDP (8) + payload.
/// The host part of source and destination cycles through 1..=250.
pub fn ipv4_udp(size: usize, src_net: u8, i: u32) -> Vec<u8> {
    assert!((28..=65535).contains(&size));
    let mut p = vec![0u8; size];
    let host = 1 + (i % 250) as u8;
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(size as u16).to_be_bytes());
    p[4..6].copy_from_slice(&(i as u16).to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = TTL;
    p[9] = 17; // UDP
    p[12..16].copy_from_slice(&[172, 20, src_net, host]);
    p[16..20].copy_from_slice(&[172, 20, src_net + 1, host]);
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let udp_len = (size - 20) as u16;
    p[20..22].copy_from_slice(&40000u16.to_be_bytes());
    p[22..24].copy_from_slice(&9u16.to_be_bytes()); // discard
    p[24..26].copy_from_slice(&udp_len.to_be_bytes());
    // UDP checksum 0 = none (allowed over IPv4).
    for (k, b) in p[28..].iter_mut().enumerate() {
        *b = (k as u32).wrapping_add(i) as u8;
    }
    p
}

/// Whether `p` is what the router should have made of a packet of this flow: the same
/// size, TTL decremented, header checksum still valid, destination in `172.20.<dst_net>/24`.
pub fn is_forwarded(p: &[u8], size: usize, dst_net: u8) -> bool {
    p.len() == size
        && p[0] == 0x45
        && p[8] == TTL - 1
        && p[16..19] == [172, 20, dst_net]
        && checksum(&p[..20]) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checksum_is_valid() {
        for size in [28, 100, 1420] {
            let p = ipv4_udp(size, 1, 7);
            assert_eq!(p.len(), size);
            assert_eq!(checksum(&p[..20]), 0);
            assert!(!is_forwarded(&p, size, 2), "TTL not yet decremented");
        }
    }
}
