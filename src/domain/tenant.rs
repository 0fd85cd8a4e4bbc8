//! Tenants: every row belongs to one, and one never sees another's.

use std::fmt;

use super::{Scopes, Timestamp};

/// A tenant's identifier. Every repository call takes one, so no query can forget the scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TenantId(pub String);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
}

/// A stored API key: who it belongs to, what it may do, and the hash of its secret.
#[derive(Clone, Debug)]
pub struct StoredKey {
    pub key_id: String,
    pub tenant_id: TenantId,
    pub secret_hash: String,
    pub scopes: Scopes,
    /// After this instant the key no longer authenticates (a rotated key's grace period ends).
    pub expires_at: Option<Timestamp>,
    /// When the key was revoked; a revoked key never authenticates again.
    pub revoked_at: Option<Timestamp>,
}

impl StoredKey {
    /// Whether the key may authenticate at `now`: neither revoked nor past its expiry.
    pub fn usable_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| now < expiry)
    }
}

/// What a listing shows of a key: everything but its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySummary {
    pub key_id: String,
    pub scopes: Scopes,
    pub created_at: Timestamp,
    /// Coarse: written at most once a minute per key, so it may lag the last call by that much.
    pub last_used_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(expires_at: Option<Timestamp>, revoked_at: Option<Timestamp>) -> StoredKey {
        StoredKey {
            key_id: "key_1".into(),
            tenant_id: TenantId("ten_1".into()),
            secret_hash: String::new(),
            scopes: Scopes::all(),
            expires_at,
            revoked_at,
        }
    }

    #[test]
    fn expired_and_revoked_keys_are_unusable() {
        let now = Timestamp(1_000);
        assert!(key(None, None).usable_at(now));
        assert!(key(Some(Timestamp(1_001)), None).usable_at(now));
        assert!(!key(Some(Timestamp(1_000)), None).usable_at(now));
        assert!(!key(None, Some(Timestamp(10))).usable_at(now));
    }
}
