//! The audit log. Store functions that make admin changes call [`record`] inside their own
//! transaction, so an entry commits exactly when its change does, and [`Written::announce`]
//! after the commit, so the log line never describes a change that rolled back.
//!
//! The store functions that take an `audit: &AuditEntry` write it this way: `insert_coupon`,
//! `save_coupon_rules`, `deactivate_coupon` (about the coupon), `insert_campaign` and
//! `generate_codes` (about the campaign; generated codes are counted, never listed),
//! `insert_product`, `save_product` and `import_pins` (about the product; PINs are counted,
//! never recorded), `add_credits` (about the new ledger entry), `update_tenant_policy` (about
//! the tenant), and the key functions of `tenants` (about the key). A change refused inside its
//! transaction rolls its entry back with it.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{entities::audit_entry, new_id, Page, Store, StoreError};
use crate::domain::{
    audit::{AuditEntry, RecordedAudit},
    TenantId, Timestamp,
};

/// Which entries a listing returns.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
}

/// An entry written inside a transaction that has not committed yet.
#[must_use = "announce the entry once its transaction has committed"]
#[derive(Debug)]
pub(crate) struct Written(RecordedAudit);

impl Written {
    /// The structured log line of a committed entry.
    pub(crate) fn announce(self) {
        let entry = self.0;
        tracing::info!(
            target: "audit",
            audit_id = %entry.id,
            tenant = %entry.tenant,
            key_id = %entry.actor,
            rpc = %entry.rpc,
            resource_type = %entry.resource_type,
            resource_id = %entry.resource_id,
            changes = %serde_json::Value::Object(entry.changes),
            "admin change"
        );
    }
}

/// Writes `entry` about `resource_id` on `conn`, which is the transaction of the change.
pub(crate) async fn record(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    entry: &AuditEntry,
    resource_id: &str,
) -> Result<Written, StoreError> {
    let recorded = RecordedAudit {
        id: new_id("aud"),
        tenant: tenant.clone(),
        actor: entry.actor.clone(),
        rpc: entry.rpc.to_owned(),
        resource_type: entry.resource_type.to_owned(),
        resource_id: resource_id.to_owned(),
        changes: entry.changes.clone(),
        at: Timestamp::now(),
    };
    audit_entry::Entity::insert(audit_entry::ActiveModel {
        id: Set(recorded.id.clone()),
        tenant_id: Set(tenant.0.clone()),
        key_id: Set(recorded.actor.clone()),
        rpc: Set(recorded.rpc.clone()),
        resource_type: Set(recorded.resource_type.clone()),
        resource_id: Set(recorded.resource_id.clone()),
        changes: Set(serde_json::Value::Object(recorded.changes.clone()).to_string()),
        created_at: Set(recorded.at.micros()),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(Written(recorded))
}

impl Store {
    /// A page of the tenant's audit entries, newest first, before the id `before`.
    #[tracing::instrument(name = "db.list_audit_entries", skip_all, fields(db.system = self.db_system()))]
    pub async fn list_audit_entries(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Page<RecordedAudit>, StoreError> {
        let mut query =
            audit_entry::Entity::find().filter(audit_entry::Column::TenantId.eq(tenant.0.as_str()));
        if let Some(resource_type) = &filter.resource_type {
            query = query.filter(audit_entry::Column::ResourceType.eq(resource_type.as_str()));
        }
        if let Some(resource_id) = &filter.resource_id {
            query = query.filter(audit_entry::Column::ResourceId.eq(resource_id.as_str()));
        }
        if let Some(before) = before {
            query = query.filter(audit_entry::Column::Id.lt(before));
        }
        let rows = query
            .order_by_desc(audit_entry::Column::Id)
            .limit(limit + 1)
            .all(self.conn())
            .await?;
        let entries = rows
            .into_iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(entries, limit, |e| e.id.clone()))
    }
}

fn decode(model: audit_entry::Model) -> Result<RecordedAudit, StoreError> {
    let changes = match serde_json::from_str(&model.changes) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => {
            return Err(StoreError::Corrupt(format!(
                "audit entry {} changes are not a JSON object",
                model.id
            )))
        }
    };
    Ok(RecordedAudit {
        id: model.id,
        tenant: TenantId(model.tenant_id),
        actor: model.key_id,
        rpc: model.rpc,
        resource_type: model.resource_type,
        resource_id: model.resource_id,
        changes,
        at: Timestamp(model.created_at),
    })
}
