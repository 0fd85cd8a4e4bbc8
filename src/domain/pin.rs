//! PIN secrecy: PINs are sealed with AES-256-GCM before they are stored, and found again for
//! duplicate checks through a keyed digest, so the database never holds one in clear text.

use aes_gcm::{
    aead::{Aead, KeyInit},
    Aes256Gcm, Nonce,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const NONCE_LEN: usize = 12;
/// Plaintext sealed once per database so a wrong key is caught at start-up.
const KEY_CHECK_PLAINTEXT: &str = "coupon-service pin key check v1";

/// The key that seals PINs. Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct PinKey {
    cipher: Aes256Gcm,
    digest_key: [u8; 32],
}

impl std::fmt::Debug for PinKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinKey(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinKeyError {
    #[error("the PIN key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("a sealed PIN could not be opened: wrong key or corrupt data")]
    CannotOpen,
    #[error("a PIN could not be sealed")]
    CannotSeal,
}

impl PinKey {
    /// A key from its base64 form (32 bytes).
    pub fn from_base64(encoded: &str) -> Result<Self, PinKeyError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| PinKeyError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| PinKeyError::BadKey)?;
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| PinKeyError::BadKey)?;
        // The digest key is derived so that one secret serves both purposes without reuse.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&key).map_err(|_| PinKeyError::BadKey)?;
        mac.update(b"pin digest");
        let digest_key = mac.finalize().into_bytes().into();
        Ok(Self { cipher, digest_key })
    }

    /// A fresh random key in base64 form.
    pub fn generate_base64() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        STANDARD.encode(key)
    }

    /// Seals a secret: base64 of nonce and ciphertext.
    pub fn seal(&self, secret: &str) -> Result<String, PinKeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), secret.as_bytes())
            .map_err(|_| PinKeyError::CannotSeal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    /// Opens what [`seal`](Self::seal) made.
    pub fn open(&self, sealed: &str) -> Result<String, PinKeyError> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| PinKeyError::CannotOpen)?;
        if bytes.len() < NONCE_LEN {
            return Err(PinKeyError::CannotOpen);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| PinKeyError::CannotOpen)?;
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), ciphertext)
            .map_err(|_| PinKeyError::CannotOpen)?;
        String::from_utf8(plain).map_err(|_| PinKeyError::CannotOpen)
    }

    /// Keyed digest of a PIN, equal for equal PINs, useless without the key.
    pub fn digest(&self, pin: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.digest_key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(pin.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A sealed known text, stored once so later starts can tell whether the key is the same.
    pub fn key_check(&self) -> Result<String, PinKeyError> {
        self.seal(KEY_CHECK_PLAINTEXT)
    }

    /// Whether `sealed` (from [`key_check`](Self::key_check)) was made with this key.
    pub fn verifies(&self, sealed: &str) -> bool {
        self.open(sealed)
            .is_ok_and(|text| text == KEY_CHECK_PLAINTEXT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_detects_a_wrong_key() {
        let key = PinKey::from_base64(&PinKey::generate_base64()).unwrap();
        let other = PinKey::from_base64(&PinKey::generate_base64()).unwrap();
        let sealed = key.seal("1234-5678").unwrap();
        assert!(!sealed.contains("1234"));
        assert_eq!(key.open(&sealed).unwrap(), "1234-5678");
        assert_eq!(other.open(&sealed), Err(PinKeyError::CannotOpen));
        assert!(key.verifies(&key.key_check().unwrap()));
        assert!(!other.verifies(&key.key_check().unwrap()));
        assert_eq!(key.digest("a"), key.digest("a"));
        assert_ne!(key.digest("a"), other.digest("a"));
        assert_ne!(key.seal("a").unwrap(), key.seal("a").unwrap());
    }

    #[test]
    fn refuses_short_keys() {
        assert_eq!(
            PinKey::from_base64("c2hvcnQ=").unwrap_err(),
            PinKeyError::BadKey
        );
    }
}
