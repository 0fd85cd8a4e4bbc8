//! API key lifecycle: issue, revoke and rotate a tenant's keys, each audited in its own
//! transaction. Secrets leave this module only inside the [`IssuedKey`] shown once.

use std::time::Duration;

use super::{AppError, StoreResultExt};
use crate::{
    domain::{
        api_key::IssuedKey,
        audit::{instant, AuditEntry},
        tenant::KeySummary,
        InvalidInput, Problem, Scopes, TenantId, Timestamp,
    },
    store::{Page, Store},
};

/// The grace period of a rotation that names none: a day to roll the new key out.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
/// The longest grace period: a rotation should end, or it is not one.
pub(crate) const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A key just issued: its secret, shown once, and what listings will show of it.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) key: IssuedKey,
    pub(crate) summary: KeySummary,
}

/// CreateApiKey: a new key of `tenant` with `scopes`, expiring at `expires_at` when given.
pub(crate) async fn create(
    store: &Store,
    tenant: &TenantId,
    actor: &str,
    scopes: Scopes,
    expires_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<Issued, AppError> {
    if scopes.is_empty() {
        return Err(InvalidInput::field("scopes", Problem::ScopesRequired).into());
    }
    if expires_at.is_some_and(|expiry| expiry <= now) {
        return Err(InvalidInput::field("expire_time", Problem::NotInFuture).into());
    }
    let mut audit =
        AuditEntry::new(actor, "CreateApiKey", "api_key").with("scopes", scopes.to_string());
    if let Some(expiry) = expires_at {
        audit = audit.with("expire_time", instant(expiry));
    }
    let key = IssuedKey::generate();
    let summary = store
        .create_key(tenant, &key, &scopes, expires_at, &audit)
        .await?;
    Ok(Issued { key, summary })
}

/// RevokeApiKey: the key stops authenticating (on other replicas once their cache runs out).
pub(crate) async fn revoke(
    store: &Store,
    tenant: &TenantId,
    actor: &str,
    key_id: &str,
) -> Result<KeySummary, AppError> {
    let audit = AuditEntry::new(actor, "RevokeApiKey", "api_key").with("revoked", true);
    store
        .revoke_key(tenant, key_id, &audit)
        .await
        .about("api key", key_id)
}

/// RotateApiKey: a new key with the old key's scopes; the old one expires after `grace`.
pub(crate) async fn rotate(
    store: &Store,
    tenant: &TenantId,
    actor: &str,
    key_id: &str,
    grace: Duration,
    now: Timestamp,
) -> Result<(Issued, KeySummary), AppError> {
    if grace > MAX_GRACE {
        return Err(InvalidInput::field("grace_period", Problem::GracePeriodOutOfRange).into());
    }
    // Bounded by MAX_GRACE above, so the microseconds fit an i64.
    let grace_micros = i64::try_from(grace.as_micros()).unwrap_or(i64::MAX);
    let old_expires_at = Timestamp(now.micros().saturating_add(grace_micros));
    let audit = AuditEntry::new(actor, "RotateApiKey", "api_key");
    let key = IssuedKey::generate();
    let (summary, previous) = store
        .rotate_key(tenant, key_id, &key, old_expires_at, &audit)
        .await
        .about("api key", key_id)?;
    Ok((Issued { key, summary }, previous))
}

/// ListApiKeys: a page of the tenant's keys in id order; never their secrets.
pub(crate) async fn list(
    store: &Store,
    tenant: &TenantId,
    after: Option<&str>,
    limit: u64,
) -> Result<Page<KeySummary>, AppError> {
    Ok(store.list_keys(tenant, after, limit).await?)
}
