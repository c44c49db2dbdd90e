//! Sealed tokens: a value that round-trips through the client unreadable
//! and untampered (the cart version a checkout form was rendered from),
//! with ChaCha20-Poly1305 under a key derived from the session secret and
//! bound to the session, so a token is worthless in another session.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::session::SessionKeys;

const NONCE_BYTES: usize = 12;

pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl Sealer {
    pub fn new(keys: &SessionKeys) -> Sealer {
        Sealer { cipher: ChaCha20Poly1305::new(Key::from_slice(&keys.derive("sealed-token-v1"))) }
    }

    /// Encrypts `plain` for `session`: URL-safe base64 of nonce + ciphertext.
    pub fn seal(&self, session: &str, plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).expect("the system's random source");
        let sealed = self.cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: session.as_bytes() }).expect("encryption of a short message");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The plaintext, if the token was sealed by us for `session`.
    pub fn open(&self, session: &str, token: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: session.as_bytes() }).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "another-secret-of-enough-bytes").unwrap();
        Sealer::new(&SessionKeys::new(crate::config::parse_session_secret(path.to_str().unwrap()).unwrap()))
    }

    #[test]
    fn round_trips_only_in_its_session_and_untampered() {
        let s = sealer();
        let token = s.seal("session-a", b"cart 7");
        assert!(!token.contains("cart"), "unreadable");
        assert_eq!(s.open("session-a", &token).as_deref(), Some(&b"cart 7"[..]));
        assert_eq!(s.open("session-b", &token), None, "bound to the session");
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(s.open("session-a", &URL_SAFE_NO_PAD.encode(bytes)), None, "tampered");
        assert_eq!(s.open("session-a", "!!"), None);
        assert_ne!(s.seal("session-a", b"cart 7"), token, "a fresh nonce each time");
    }
}
