//! Tenants and their API keys.

use sea_orm::{
    sea_query::Expr, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use super::{
    audit,
    entities::{api_key, tenant},
    new_id, Page, Store, StoreError,
};
use crate::domain::{
    api_key::{hash_secret, IssuedKey},
    audit::{instant, AuditEntry},
    tenant::{KeySummary, StoredKey, Tenant},
    Scopes, TenantId, Timestamp,
};

impl Store {
    /// Creates a tenant with one API key. A name already taken is `AlreadyExists`.
    pub async fn create_tenant(
        &self,
        name: &str,
        scopes: &Scopes,
        key: &IssuedKey,
    ) -> Result<Tenant, StoreError> {
        let now = Timestamp::now().micros();
        let tenant_id = new_id("ten");
        let txn = self.conn().begin().await?;
        tenant::Entity::insert(tenant::ActiveModel {
            id: Set(tenant_id.clone()),
            name: Set(name.to_owned()),
            created_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        let tenant_id = TenantId(tenant_id);
        insert_key(&txn, &tenant_id, key, scopes, None).await?;
        txn.commit().await?;
        Ok(Tenant {
            id: tenant_id,
            name: name.to_owned(),
        })
    }

    /// The tenant called `name`, if any.
    pub async fn find_tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let found = tenant::Entity::find()
            .filter(tenant::Column::Name.eq(name))
            .one(self.conn())
            .await?;
        Ok(found.map(|t| Tenant {
            id: TenantId(t.id),
            name: t.name,
        }))
    }

    /// The key with this id, if any.
    #[tracing::instrument(name = "db.find_key", skip_all, fields(db.system = self.db_system(), db.collection.name = "api_keys"))]
    pub async fn find_key(&self, key_id: &str) -> Result<Option<StoredKey>, StoreError> {
        let Some(key) = api_key::Entity::find_by_id(key_id.to_owned())
            .one(self.conn())
            .await?
        else {
            return Ok(None);
        };
        let scopes = parse_scopes(&key)?;
        Ok(Some(StoredKey {
            key_id: key.id,
            tenant_id: TenantId(key.tenant_id),
            secret_hash: key.secret_hash,
            scopes,
            expires_at: key.expires_at.map(Timestamp),
            revoked_at: key.revoked_at.map(Timestamp),
        }))
    }
}

// === key lifecycle ===

/// How often "last used" may be written per key: a coarse instant, not a write per call.
pub const LAST_USED_RESOLUTION: std::time::Duration = std::time::Duration::from_secs(60);

impl Store {
    /// Every tenant, by name.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = tenant::Entity::find()
            .order_by_asc(tenant::Column::Name)
            .all(self.conn())
            .await?;
        Ok(rows
            .into_iter()
            .map(|t| Tenant {
                id: TenantId(t.id),
                name: t.name,
            })
            .collect())
    }

    /// Stores a new key of the tenant, with its audit entry.
    #[tracing::instrument(name = "db.create_key", skip_all, fields(db.system = self.db_system()))]
    pub async fn create_key(
        &self,
        tenant: &TenantId,
        key: &IssuedKey,
        scopes: &Scopes,
        expires_at: Option<Timestamp>,
        audit: &AuditEntry,
    ) -> Result<KeySummary, StoreError> {
        let txn = self.conn().begin().await?;
        let created = insert_key(&txn, tenant, key, scopes, expires_at).await?;
        let written = audit::record(&txn, tenant, audit, &key.key_id).await?;
        txn.commit().await?;
        written.announce();
        Ok(created)
    }

    /// A page of the tenant's keys in id order, after the id `after`. Never their secrets.
    #[tracing::instrument(name = "db.list_keys", skip_all, fields(db.system = self.db_system()))]
    pub async fn list_keys(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<KeySummary>, StoreError> {
        let mut query =
            api_key::Entity::find().filter(api_key::Column::TenantId.eq(tenant.0.as_str()));
        if let Some(after) = after {
            query = query.filter(api_key::Column::Id.gt(after));
        }
        let rows = query
            .order_by_asc(api_key::Column::Id)
            .limit(limit + 1)
            .all(self.conn())
            .await?;
        let keys = rows
            .into_iter()
            .map(summary)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(keys, limit, |k| k.key_id.clone()))
    }

    /// The tenant's key with this id, secret hash left out.
    pub async fn get_key(&self, tenant: &TenantId, key_id: &str) -> Result<KeySummary, StoreError> {
        find_tenant_key(self.conn(), tenant, key_id)
            .await?
            .map(summary)
            .unwrap_or(Err(StoreError::NotFound))
    }

    /// Revokes the tenant's key, with its audit entry. Revoking a revoked key keeps the first
    /// revocation instant.
    #[tracing::instrument(name = "db.revoke_key", skip_all, fields(db.system = self.db_system()))]
    pub async fn revoke_key(
        &self,
        tenant: &TenantId,
        key_id: &str,
        audit: &AuditEntry,
    ) -> Result<KeySummary, StoreError> {
        let now = Timestamp::now().micros();
        let txn = self.conn().begin().await?;
        api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(now))
            .filter(api_key::Column::Id.eq(key_id))
            .filter(api_key::Column::TenantId.eq(tenant.0.as_str()))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        let revoked = find_tenant_key(&txn, tenant, key_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let written = audit::record(&txn, tenant, audit, key_id).await?;
        txn.commit().await?;
        written.announce();
        summary(revoked)
    }

    /// Issues `new` with the scopes of the tenant's key `old_id` and makes the old key expire at
    /// `old_expires_at` (or earlier, when it already expired sooner), in one transaction with the
    /// audit entries of both keys. A revoked or unknown old key is `NotFound`.
    #[tracing::instrument(name = "db.rotate_key", skip_all, fields(db.system = self.db_system()))]
    pub async fn rotate_key(
        &self,
        tenant: &TenantId,
        old_id: &str,
        new: &IssuedKey,
        old_expires_at: Timestamp,
        audit: &AuditEntry,
    ) -> Result<(KeySummary, KeySummary), StoreError> {
        // Read before the transaction and written in it only if unchanged: a SQLite transaction
        // that reads first cannot become the writer once another connection has written (such
        // as a concurrent "last used" update), so the transaction's first statement writes.
        let old = find_tenant_key(self.conn(), tenant, old_id)
            .await?
            .filter(|key| key.revoked_at.is_none())
            .ok_or(StoreError::NotFound)?;
        // A key that already expires sooner keeps its earlier expiry.
        let expires_at = old
            .expires_at
            .map_or(old_expires_at.micros(), |e| e.min(old_expires_at.micros()));
        let txn = self.conn().begin().await?;
        let unchanged = match old.expires_at {
            Some(expiry) => api_key::Column::ExpiresAt.eq(expiry),
            None => api_key::Column::ExpiresAt.is_null(),
        };
        let updated = api_key::Entity::update_many()
            .col_expr(api_key::Column::ExpiresAt, Expr::value(expires_at))
            .filter(api_key::Column::Id.eq(old_id))
            .filter(api_key::Column::TenantId.eq(tenant.0.as_str()))
            .filter(api_key::Column::RevokedAt.is_null())
            .filter(unchanged)
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            // Revoked, or rotated by a concurrent call, since it was read.
            return Err(StoreError::Contention(sea_orm::DbErr::Custom(
                "the key changed during its rotation".into(),
            )));
        }
        let scopes = parse_scopes(&old)?;
        // The new key keeps the old key's own expiry, if it had one: rotation replaces a
        // secret, it does not extend a key's life.
        let new_expiry = old.expires_at.map(Timestamp);
        let created = insert_key(&txn, tenant, new, &scopes, new_expiry).await?;
        let old_written = audit::record(
            &txn,
            tenant,
            &audit
                .clone()
                .with("expire_time", instant(Timestamp(expires_at)))
                .with("replaced_by", new.key_id.as_str()),
            old_id,
        )
        .await?;
        let new_written = audit::record(
            &txn,
            tenant,
            &audit
                .clone()
                .with("scopes", scopes.to_string())
                .with("rotated_from", old_id),
            &new.key_id,
        )
        .await?;
        txn.commit().await?;
        old_written.announce();
        new_written.announce();
        let old = summary(api_key::Model {
            expires_at: Some(expires_at),
            ..old
        })?;
        Ok((created, old))
    }

    /// Records that a key was used at `now`, unless that was already recorded less than
    /// [`LAST_USED_RESOLUTION`] ago; replicas racing here write at most once each per period.
    pub async fn touch_key(&self, key_id: &str, now: Timestamp) -> Result<(), StoreError> {
        let resolution = i64::try_from(LAST_USED_RESOLUTION.as_micros()).unwrap_or(i64::MAX);
        api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::value(now.micros()))
            .filter(api_key::Column::Id.eq(key_id))
            .filter(
                Condition::any()
                    .add(api_key::Column::LastUsedAt.is_null())
                    .add(api_key::Column::LastUsedAt.lt(now.micros().saturating_sub(resolution))),
            )
            .exec(self.conn())
            .await?;
        Ok(())
    }
}

async fn insert_key(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    key: &IssuedKey,
    scopes: &Scopes,
    expires_at: Option<Timestamp>,
) -> Result<KeySummary, StoreError> {
    let model = api_key::Model {
        id: key.key_id.clone(),
        tenant_id: tenant.0.clone(),
        secret_hash: hash_secret(&key.secret),
        scopes: scopes.to_string(),
        created_at: Timestamp::now().micros(),
        expires_at: expires_at.map(Timestamp::micros),
        revoked_at: None,
        last_used_at: None,
    };
    api_key::Entity::insert(api_key::ActiveModel::from(model.clone()))
        .exec_without_returning(conn)
        .await?;
    summary(model)
}

async fn find_tenant_key(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    key_id: &str,
) -> Result<Option<api_key::Model>, StoreError> {
    Ok(api_key::Entity::find_by_id(key_id.to_owned())
        .filter(api_key::Column::TenantId.eq(tenant.0.as_str()))
        .one(conn)
        .await?)
}

fn parse_scopes(key: &api_key::Model) -> Result<Scopes, StoreError> {
    key.scopes
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("api key {}: {e}", key.id)))
}

fn summary(key: api_key::Model) -> Result<KeySummary, StoreError> {
    Ok(KeySummary {
        scopes: parse_scopes(&key)?,
        key_id: key.id,
        created_at: Timestamp(key.created_at),
        last_used_at: key.last_used_at.map(Timestamp),
        expires_at: key.expires_at.map(Timestamp),
        revoked_at: key.revoked_at.map(Timestamp),
    })
}
