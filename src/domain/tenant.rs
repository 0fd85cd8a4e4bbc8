//! Tenants: every row belongs to one, and one never sees another's.

use std::fmt;

use super::Scopes;

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
}
