//! Tenant policies: at most one row per tenant; no row is the empty policy.
//!
//! An update writes only the columns its field mask names, in one UPDATE after making sure the
//! row exists, so concurrent updates of different rules both take effect.

use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ActiveValue::Set,
    ConnectionTrait, EntityTrait, TransactionTrait,
};

use super::{audit, entities::tenant_policy, Store, StoreError};
use crate::domain::{
    audit::AuditEntry,
    policy::{PolicyField, TenantPolicy},
    TenantId, Timestamp,
};

impl Store {
    /// The tenant's policy; the empty policy when it never set one.
    #[tracing::instrument(name = "db.tenant_policy", skip_all, fields(db.system = self.db_system(), db.collection.name = "tenant_policies"))]
    pub async fn tenant_policy(&self, tenant: &TenantId) -> Result<TenantPolicy, StoreError> {
        let row = tenant_policy::Entity::find_by_id(tenant.0.clone())
            .one(self.conn())
            .await?;
        match row {
            Some(row) => policy_from_row(row),
            None => Ok(TenantPolicy::default()),
        }
    }

    /// Replaces the `fields` of the tenant's policy with those of `update`; returns the policy
    /// as stored.
    #[tracing::instrument(name = "db.update_tenant_policy", skip_all, fields(db.system = self.db_system(), db.collection.name = "tenant_policies"))]
    pub async fn update_tenant_policy(
        &self,
        tenant: &TenantId,
        update: &TenantPolicy,
        fields: &[PolicyField],
        audit: &AuditEntry,
    ) -> Result<TenantPolicy, StoreError> {
        let now = Timestamp::now().micros();
        let order_types = serde_json::to_string(&update.excluded_order_types)
            .map_err(|e| StoreError::Corrupt(format!("policy order types: {e}")))?;
        let txn = self.conn().begin().await?;
        tenant_policy::Entity::insert(tenant_policy::ActiveModel {
            tenant_id: Set(tenant.0.clone()),
            refuse_loyalty_points: Set(false),
            requires_verified_phone: Set(false),
            excluded_order_types: Set("[]".to_owned()),
            default_channel: Set(String::new()),
            updated_at: Set(now),
        })
        .on_conflict_do_nothing_on([tenant_policy::Column::TenantId])
        .exec_without_returning(&txn)
        .await?;
        let mut statement = Query::update();
        statement
            .table(tenant_policy::Entity)
            .value(tenant_policy::Column::UpdatedAt, now)
            .and_where(Expr::col(tenant_policy::Column::TenantId).eq(tenant.0.as_str()));
        for field in fields {
            match field {
                PolicyField::RefuseLoyaltyPoints => statement.value(
                    tenant_policy::Column::RefuseLoyaltyPoints,
                    update.refuse_loyalty_points,
                ),
                PolicyField::RequiresVerifiedPhone => statement.value(
                    tenant_policy::Column::RequiresVerifiedPhone,
                    update.requires_verified_phone,
                ),
                PolicyField::ExcludedOrderTypes => statement.value(
                    tenant_policy::Column::ExcludedOrderTypes,
                    order_types.clone(),
                ),
                PolicyField::DefaultChannel => statement.value(
                    tenant_policy::Column::DefaultChannel,
                    update.default_channel.clone(),
                ),
            };
        }
        txn.execute(&statement).await?;
        let row = tenant_policy::Entity::find_by_id(tenant.0.clone())
            .one(&txn)
            .await?
            .ok_or_else(|| StoreError::Corrupt("tenant policy row vanished".into()))?;
        let written = audit::record(&txn, tenant, audit, &tenant.0).await?;
        txn.commit().await?;
        written.announce();
        policy_from_row(row)
    }
}

pub(super) fn policy_from_row(row: tenant_policy::Model) -> Result<TenantPolicy, StoreError> {
    let excluded_order_types = serde_json::from_str(&row.excluded_order_types).map_err(|e| {
        StoreError::Corrupt(format!(
            "policy of tenant {}: order types: {e}",
            row.tenant_id
        ))
    })?;
    Ok(TenantPolicy {
        refuse_loyalty_points: row.refuse_loyalty_points,
        requires_verified_phone: row.requires_verified_phone,
        excluded_order_types,
        default_channel: row.default_channel,
        updated_at: Some(Timestamp(row.updated_at)),
    })
}
