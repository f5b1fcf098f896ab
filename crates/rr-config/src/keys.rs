//! WireGuard key helpers: what `wg genkey` and `wg pubkey` do.
//!
//! This module is key generation (from the OS random number generator) and X25519
//! public-key derivation only. It is not the Noise handshake (boringtun does that in the
//! data plane) and it does not parse or print keys (see [`crate::Key`]).

use crate::Key;
use boringtun::x25519::{PublicKey, StaticSecret};
use rand_core::{OsRng, RngCore as _};

/// Applies RFC 7748 clamping to a private key, as `wg genkey` does:
/// `k[0] &= 248; k[31] &= 127; k[31] |= 64`.
pub fn clamp(mut key: [u8; 32]) -> [u8; 32] {
    key[0] &= 248;
    key[31] &= 127;
    key[31] |= 64;
    key
}

/// A new private key, clamped exactly as `wg genkey` does (RFC 7748 clamping:
/// `k[0] &= 248; k[31] &= 127; k[31] |= 64`), from the OS RNG.
///
/// Panics only if the operating system cannot provide random bytes.
pub fn generate() -> Key {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    Key(clamp(bytes))
}

/// X25519 public key of a private key (what `wg pubkey` prints): the scalar
/// multiplication of the (clamped) private key with the base point 9.
pub fn public(private: &Key) -> Key {
    let secret = StaticSecret::from(private.0);
    Key(PublicKey::from(&secret).to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> [u8; 32] {
        let bytes: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }

    #[test]
    fn generate_is_clamped_and_decodes() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..64 {
            let key = generate();
            let k = key.0;
            assert_eq!(k[0] & 7, 0);
            assert_eq!(k[31] & 128, 0);
            assert_eq!(k[31] & 64, 64);
            let text = key.to_base64();
            assert_eq!(text.len(), 44);
            assert_eq!(Key::from_base64(&text).unwrap(), key);
            assert!(seen.insert(k), "OS RNG repeated a key");
        }
    }

    #[test]
    fn clamp_matches_rfc7748() {
        assert_eq!(clamp([0xff; 32])[0], 0xf8);
        assert_eq!(clamp([0xff; 32])[31], 0x7f);
        assert_eq!(clamp([0; 32])[31], 0x40);
        assert_eq!(clamp([0xff; 32])[1..31], [0xff; 30]);
    }

    /// RFC 7748 section 6.1: Alice's and Bob's key pairs.
    #[test]
    fn rfc7748_vectors() {
        let alice = Key(hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        assert_eq!(
            public(&alice).0,
            hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        let bob = Key(hex(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ));
        assert_eq!(
            public(&bob).0,
            hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        );
    }

    /// RFC 7748 section 5.2, first X25519 test vector: the scalar a546e36b... times
    /// the u-coordinate e6db6867... Not a base-point multiplication, so it is checked
    /// with the raw x25519 function to confirm the scalar convention (clamping) is the
    /// same one `public` relies on.
    #[test]
    fn rfc7748_section5_scalar_mult() {
        let scalar = hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
        let u = hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
        let secret = StaticSecret::from(scalar);
        let shared = secret.diffie_hellman(&PublicKey::from(u));
        assert_eq!(
            shared.to_bytes(),
            hex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
        );
    }

    /// Static key pairs from Wireshark's WireGuard decryption test
    /// (/work/shared/data/wireguard/wireshark_wireguard_test_keys.txt).
    #[test]
    fn wireshark_vectors() {
        let pairs = [
            (
                "AKeZaHwBxjiKLFnkY2unvEdOTtg4AL+M9dQXfopFVFk=",
                "Igge9KzRytKNwrgkzDE/8hrLu6Ly0OqVdvOPWhA5KR4=",
            ),
            // The same key before clamping: `wg pubkey` clamps, so the public key is equal.
            (
                "B6eZaHwBxjiKLFnkY2unvEdOTtg4AL+M9dQXfopFVJk=",
                "Igge9KzRytKNwrgkzDE/8hrLu6Ly0OqVdvOPWhA5KR4=",
            ),
            (
                "cFIxTUyBs1Qil414hBwEgvasEax8CKJ5IS5ZougplWs=",
                "YDCttCs9e1J52/g9vEnwJJa+2x6RqaayAYMpSVQfGEY=",
            ),
        ];
        for (private, expected) in pairs {
            let private = Key::from_base64(private).unwrap();
            assert_eq!(public(&private).to_base64(), expected);
        }
    }

    #[test]
    fn generated_pairs_agree() {
        let a = generate();
        let b = generate();
        let ab = StaticSecret::from(a.0).diffie_hellman(&PublicKey::from(public(&b).0));
        let ba = StaticSecret::from(b.0).diffie_hellman(&PublicKey::from(public(&a).0));
        assert_eq!(ab.to_bytes(), ba.to_bytes());
    }
}
