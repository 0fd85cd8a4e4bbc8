//! Tenants and their API keys.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use super::{
    entities::{api_key, tenant},
    new_id, Store, StoreError,
};
use crate::domain::{
    api_key::{hash_secret, IssuedKey},
    tenant::{StoredKey, Tenant},
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
        api_key::Entity::insert(api_key::ActiveModel {
            id: Set(key.key_id.clone()),
            tenant_id: Set(tenant_id.clone()),
            secret_hash: Set(hash_secret(&key.secret)),
            scopes: Set(scopes.to_string()),
            created_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(Tenant {
            id: TenantId(tenant_id),
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
    #[tracing::instrument(name = "db.find_key", skip_all, fields(db.system = self.db_system()))]
    pub async fn find_key(&self, key_id: &str) -> Result<Option<StoredKey>, StoreError> {
        let Some(key) = api_key::Entity::find_by_id(key_id.to_owned())
            .one(self.conn())
            .await?
        else {
            return Ok(None);
        };
        let scopes = key
            .scopes
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("api key {}: {e}", key.id)))?;
        Ok(Some(StoredKey {
            key_id: key.id,
            tenant_id: TenantId(key.tenant_id),
            secret_hash: key.secret_hash,
            scopes,
        }))
    }
}
