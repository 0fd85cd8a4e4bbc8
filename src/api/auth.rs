//! Authentication: `authorization: Bearer <key_id>.<secret>` or Basic `key_id:secret` (the
//! redeem/revert API's key and secret), checked against a stored hash in constant time.

use base64::{engine::general_purpose::STANDARD, Engine};
use tonic::metadata::MetadataMap;

use super::{key_cache::KeyCache, request::locale, ApiError, InLocale};
use crate::{
    app::quota::Quotas,
    domain::{api_key::secret_matches, messages::Locale, Scope, Scopes, TenantId, Timestamp},
    store::Store,
};

/// Compared with presented secrets of unknown key ids, so that an unknown id costs the same
/// hashing as a known one with a wrong secret.
const NO_SUCH_KEY_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The authenticated caller of one request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: TenantId,
    /// The id of the key that authenticated the call: the actor in the audit log.
    pub key_id: String,
    /// The language of the caller's `accept-language`, which its errors are described in.
    pub locale: Locale,
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
    keys: KeyCache,
    quotas: Quotas,
}

impl Authenticator {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            keys: KeyCache::default(),
            quotas: Quotas::unlimited(),
        }
    }

    /// Drops this process's cached copy of a key after this process changed it; other replicas
    /// see the change within the cache's lifetime (see `key_cache`).
    pub fn forget_key(&self, key_id: &str) {
        self.keys.forget(key_id);
    }

    /// The caller, when its credentials are valid and its key carries `scope`.
    pub async fn authenticate(
        &self,
        metadata: &MetadataMap,
        scope: Scope,
    ) -> Result<Caller, ApiError> {
        let (key_id, secret) = credentials(metadata)?;
        let locale = locale(metadata);
        let Some(key) = self
            .keys
            .lookup(&self.store, &key_id)
            .await
            .in_locale(locale)?
        else {
            secret_matches(&secret, NO_SUCH_KEY_HASH);
            return Err(ApiError::Unauthenticated("invalid API key"));
        };
        // Revoked and expired keys answer exactly like wrong secrets: nothing to learn.
        if !secret_matches(&secret, &key.secret_hash) || !key.usable_at(Timestamp::now()) {
            return Err(ApiError::Unauthenticated("invalid API key"));
        }
        self.keys.note_use(&self.store, &key.key_id);
        // Every later log line and span of this call names its tenant.
        tracing::Span::current().record("tenant", key.tenant_id.0.as_str());
        tracing::debug!(key_id = %key.key_id, "authenticated");
        if !key.scopes.contains(scope) {
            return Err(ApiError::PermissionDenied(scope));
        }
        // Every authenticated call of every service counts against its tenant's quota.
        self.quotas.admit(&key.tenant_id).await.in_locale(locale)?;
        Ok(Caller {
            tenant: key.tenant_id,
            key_id: key.key_id,
            locale,
            scopes: key.scopes,
        })
    }
}

// === quotas ===

impl Authenticator {
    /// Counts every authenticated call against its tenant's quota in `quotas`.
    pub(crate) fn with_quotas(self, quotas: Quotas) -> Self {
        Self { quotas, ..self }
    }

    /// The quota and throttle state calls are counted in.
    pub(crate) fn quotas(&self) -> &Quotas {
        &self.quotas
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
