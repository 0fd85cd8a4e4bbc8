//! Authentication: `authorization: Bearer <key_id>.<secret>` or Basic `key_id:secret` (the
//! redeem/revert API's key and secret), checked against a stored hash in constant time.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use tonic::metadata::MetadataMap;

use super::ApiError;
use crate::{
    domain::{api_key::secret_matches, tenant::StoredKey, Scope, Scopes, TenantId},
    store::Store,
};

/// How long a looked-up key is trusted without asking the database again. Keys cannot be
/// changed through the API, so this only bounds how long a key deleted by hand keeps working.
const KEY_CACHE_TTL: Duration = Duration::from_secs(30);
/// Upper bound on cached keys, so a flood of made-up key ids cannot grow memory.
const KEY_CACHE_CAPACITY: usize = 10_000;

/// The authenticated caller of one request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: TenantId,
    pub key_id: String,
    scopes: Scopes,
}

impl Caller {
    /// Whether the caller's key carries `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(scope)
    }
}

/// Checks credentials on every call.
#[derive(Clone, Debug)]
pub struct Authenticator {
    store: Store,
    cache: Arc<Mutex<HashMap<String, (Instant, StoredKey)>>>,
}

impl Authenticator {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: Arc::default(),
        }
    }

    /// The caller, when its credentials are valid and its key carries `scope`.
    pub async fn authenticate(
        &self,
        metadata: &MetadataMap,
        scope: Scope,
    ) -> Result<Caller, ApiError> {
        let (key_id, secret) = credentials(metadata)?;
        let key = self
            .lookup(&key_id)
            .await?
            .ok_or(ApiError::Unauthenticated("invalid API key"))?;
        if !secret_matches(&secret, &key.secret_hash) {
            return Err(ApiError::Unauthenticated("invalid API key"));
        }
        // Every later log line and span of this call names its tenant.
        tracing::Span::current().record("tenant", key.tenant_id.0.as_str());
        tracing::debug!(key_id = %key.key_id, "authenticated");
        if !key.scopes.contains(scope) {
            return Err(ApiError::PermissionDenied(scope));
        }
        Ok(Caller {
            tenant: key.tenant_id,
            key_id: key.key_id,
            scopes: key.scopes,
        })
    }

    async fn lookup(&self, key_id: &str) -> Result<Option<StoredKey>, ApiError> {
        if let Some(key) = self.cached(key_id) {
            return Ok(Some(key));
        }
        let found = self.store.find_key(key_id).await?;
        if let Some(key) = &found {
            if let Ok(mut cache) = self.cache.lock() {
                if cache.len() >= KEY_CACHE_CAPACITY {
                    cache.clear();
                }
                cache.insert(key_id.to_owned(), (Instant::now(), key.clone()));
            }
        }
        Ok(found)
    }

    fn cached(&self, key_id: &str) -> Option<StoredKey> {
        let cache = self.cache.lock().ok()?;
        let (at, key) = cache.get(key_id)?;
        (at.elapsed() < KEY_CACHE_TTL).then(|| key.clone())
    }
}

/// Key id and secret from the `authorization` header.
fn credentials(metadata: &MetadataMap) -> Result<(String, String), ApiError> {
    let header = metadata
        .get("authorization")
        .ok_or(ApiError::Unauthenticated(
            "missing authorization: send 'Bearer <key>' or Basic key_id:secret",
        ))?
        .to_str()
        .map_err(|_| ApiError::Unauthenticated("malformed authorization header"))?;
    let (scheme, value) = header
        .trim()
        .split_once(' ')
        .ok_or(ApiError::Unauthenticated("malformed authorization header"))?;
    let pair = if scheme.eq_ignore_ascii_case("bearer") {
        value
            .trim()
            .split_once('.')
            .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
    } else if scheme.eq_ignore_ascii_case("basic") {
        STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| {
                text.split_once(':')
                    .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
            })
    } else {
        None
    };
    pair.filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
        .ok_or(ApiError::Unauthenticated("malformed API key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn with(header: &str) -> MetadataMap {
        let mut map = MetadataMap::new();
        if let Ok(value) = MetadataValue::try_from(header) {
            map.insert("authorization", value);
        }
        map
    }

    #[test]
    fn reads_bearer_and_basic() {
        assert_eq!(
            credentials(&with("Bearer key_1.s3cret")).ok(),
            Some(("key_1".into(), "s3cret".into()))
        );
        let basic = format!("Basic {}", STANDARD.encode("key_1:s3cret"));
        assert_eq!(
            credentials(&with(&basic)).ok(),
            Some(("key_1".into(), "s3cret".into()))
        );
    }

    #[test]
    fn refuses_malformed_headers() {
        for header in [
            "Bearer",
            "Bearer nodot",
            "Token a.b",
            "Basic !!!",
            "Bearer .x",
        ] {
            assert!(credentials(&with(header)).is_err(), "{header}");
        }
        assert!(credentials(&MetadataMap::new()).is_err());
    }
}
