//! Tenant quotas: at most one row per tenant; no row (or a NULL column) follows the service's
//! default.
//!
//! An update writes only the columns its field mask names, in one UPDATE after making sure the
//! row exists, so concurrent updates of different limits both take effect.

use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ActiveValue::Set,
    ConnectionTrait, EntityTrait, TransactionTrait,
};

use super::{audit, entities::tenant_quota, Store, StoreError};
use crate::domain::{
    audit::AuditEntry,
    quota::{QuotaField, TenantQuota},
    TenantId, Timestamp,
};

impl Store {
    /// The limits the tenant chose; all `None` when it never chose any.
    #[tracing::instrument(name = "db.tenant_quota", skip_all, fields(db.system = self.db_system(), db.collection.name = "tenant_quotas"))]
    pub async fn tenant_quota(&self, tenant: &TenantId) -> Result<TenantQuota, StoreError> {
        let row = tenant_quota::Entity::find_by_id(tenant.0.clone())
            .one(self.conn())
            .await?;
        match row {
            Some(row) => quota_from_row(row),
            None => Ok(TenantQuota::default()),
        }
    }

    /// Replaces the `fields` of the tenant's quota with those of `update` (`None` goes back to
    /// the service default); returns the quota as stored.
    #[tracing::instrument(name = "db.update_tenant_quota", skip_all, fields(db.system = self.db_system(), db.collection.name = "tenant_quotas"))]
    pub async fn update_tenant_quota(
        &self,
        tenant: &TenantId,
        update: &TenantQuota,
        fields: &[QuotaField],
        audit: &AuditEntry,
    ) -> Result<TenantQuota, StoreError> {
        let now = Timestamp::now().micros();
        let txn = self.conn().begin().await?;
        tenant_quota::Entity::insert(tenant_quota::ActiveModel {
            tenant_id: Set(tenant.0.clone()),
            requests_per_second: Set(None),
            burst: Set(None),
            unknown_code_limit: Set(None),
            unknown_code_window_secs: Set(None),
            updated_at: Set(now),
        })
        .on_conflict_do_nothing_on([tenant_quota::Column::TenantId])
        .exec_without_returning(&txn)
        .await?;
        let mut statement = Query::update();
        statement
            .table(tenant_quota::Entity)
            .value(tenant_quota::Column::UpdatedAt, now)
            .and_where(Expr::col(tenant_quota::Column::TenantId).eq(tenant.0.as_str()));
        for field in fields {
            let (column, value) = match field {
                QuotaField::RequestsPerSecond => (
                    tenant_quota::Column::RequestsPerSecond,
                    update.requests_per_second,
                ),
                QuotaField::Burst => (tenant_quota::Column::Burst, update.burst),
                QuotaField::UnknownCodeLimit => (
                    tenant_quota::Column::UnknownCodeLimit,
                    update.unknown_code_limit,
                ),
                QuotaField::UnknownCodeWindow => (
                    tenant_quota::Column::UnknownCodeWindowSecs,
                    update.unknown_code_window_secs,
                ),
            };
            statement.value(column, value.map(i64::from));
        }
        txn.execute(&statement).await?;
        let row = tenant_quota::Entity::find_by_id(tenant.0.clone())
            .one(&txn)
            .await?
            .ok_or_else(|| StoreError::Corrupt("tenant quota row vanished".into()))?;
        let written = audit::record(&txn, tenant, audit, &tenant.0).await?;
        txn.commit().await?;
        written.announce();
        quota_from_row(row)
    }
}

fn quota_from_row(row: tenant_quota::Model) -> Result<TenantQuota, StoreError> {
    let limit = |name: &str, value: Option<i64>| {
        value
            .map(|v| {
                u32::try_from(v).map_err(|_| {
                    StoreError::Corrupt(format!("quota of tenant {}: {name} {v}", row.tenant_id))
                })
            })
            .transpose()
    };
    Ok(TenantQuota {
        requests_per_second: limit("requests_per_second", row.requests_per_second)?,
        burst: limit("burst", row.burst)?,
        unknown_code_limit: limit("unknown_code_limit", row.unknown_code_limit)?,
        unknown_code_window_secs: limit("unknown_code_window_secs", row.unknown_code_window_secs)?,
        updated_at: Some(Timestamp(row.updated_at)),
    })
}
