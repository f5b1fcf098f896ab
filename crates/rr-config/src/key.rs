//! [`Key`]: a 32-byte WireGuard key (private, public or preshared) and its base64 form.
//!
//! This module only converts between bytes and the base64 text `wg` uses. It does no
//! cryptography (see [`crate::keys`] for generating keys and deriving public keys) and
//! never prints key material: `Debug` shows `<key>` whatever the key is.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// A 32-byte WireGuard key: a Curve25519 private or public key, or a preshared key.
///
/// `Debug` prints `<key>` and there is no `Display`: secrets must not end up in logs by
/// accident. Use [`Key::to_base64`] where printing is intended (e.g. a public key).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(pub [u8; 32]);

/// Why a text is not a key. Never contains the text itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not valid (padded, standard-alphabet) base64.
    #[error("not valid base64 (a WireGuard key is 44 base64 characters ending in '=')")]
    Base64,
    /// Valid base64, but not of 32 bytes.
    #[error("decodes to {0} bytes, a WireGuard key has 32")]
    Length(usize),
}

impl Key {
    /// Decodes the base64 text `wg genkey` / `wg pubkey` / `wg genpsk` print (standard
    /// alphabet, padded). Surrounding whitespace is not accepted here: trim first.
    pub fn from_base64(s: &str) -> Result<Key, KeyError> {
        // 32 bytes are 44 base64 characters; refuse long inputs before decoding them.
        if s.len() > 64 {
            return Err(KeyError::Length(s.len() / 4 * 3));
        }
        let bytes = STANDARD.decode(s).map_err(|_| KeyError::Base64)?;
        let array: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Length(bytes.len()))?;
        Ok(Key(array))
    }

    /// The base64 text, as `wg` prints it (44 characters, no newline).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<key>")
    }
}

impl From<[u8; 32]> for Key {
    fn from(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let text = "YDCttCs9e1J52/g9vEnwJJa+2x6RqaayAYMpSVQfGEY=";
        let key = Key::from_base64(text).unwrap();
        assert_eq!(key.to_base64(), text);
        assert_eq!(key.as_bytes()[0], 0x60);
    }

    #[test]
    fn rejects_bad_keys() {
        assert_eq!(Key::from_base64(""), Err(KeyError::Length(0)));
        assert_eq!(Key::from_base64("not base64!"), Err(KeyError::Base64));
        // 31 bytes
        assert_eq!(
            Key::from_base64(&STANDARD.encode([7u8; 31])),
            Err(KeyError::Length(31))
        );
        // 33 bytes
        assert_eq!(
            Key::from_base64(&STANDARD.encode([7u8; 33])),
            Err(KeyError::Length(33))
        );
        // whitespace is the caller's job
        assert!(Key::from_base64(" YDCttCs9e1J52/g9vEnwJJa+2x6RqaayAYMpSVQfGEY=").is_err());
        assert!(Key::from_base64(&"A".repeat(1000)).is_err());
    }

    #[test]
    fn debug_hides_the_key() {
        let key = Key([0x41; 32]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "<key>");
        assert!(!shown.contains(&key.to_base64()));
    }
}
