//! API keys: a public key id and a random secret, of which only a SHA-256 hash is stored.
//!
//! Secrets are 256 random bits, so a fast hash is enough (slow password hashes protect
//! low-entropy secrets) and keeps authentication cheap on every call.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A newly issued key. The full key is shown once; only `secret_hash` is kept.
#[derive(Clone, Debug)]
pub struct IssuedKey {
    pub key_id: String,
    pub secret: String,
}

impl IssuedKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut id);
        rand::rng().fill_bytes(&mut secret);
        Self {
            key_id: format!("key_{}", hex::encode(id)),
            secret: URL_SAFE_NO_PAD.encode(secret),
        }
    }

    /// The bearer token form, `<key_id>.<secret>`.
    pub fn token(&self) -> String {
        format!("{}.{}", self.key_id, self.secret)
    }
}

/// Hex SHA-256 of a secret, as stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares a presented secret with a stored hash in constant time.
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    let presented = hash_secret(secret);
    presented.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_keys_verify_and_differ() {
        let key = IssuedKey::generate();
        let stored = hash_secret(&key.secret);
        assert!(secret_matches(&key.secret, &stored));
        assert!(!secret_matches("guess", &stored));
        assert_ne!(IssuedKey::generate().secret, key.secret);
        assert_eq!(key.token(), format!("{}.{}", key.key_id, key.secret));
    }
}
