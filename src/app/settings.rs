//! AdminService's tenant settings: the policy every coupon of the tenant obeys, and the
//! tenant's own request quota. Changes are audited in the transactions that make them.

use super::{quota::Quotas, AppError};
use crate::{
    domain::{
        audit::AuditEntry,
        policy::{PolicyField, TenantPolicy},
        quota::{QuotaField, QuotaLimits, TenantQuota},
        TenantId, Violations,
    },
    store::Store,
};

/// UpdateTenantQuota as parsed: the limits named by the mask, and the problems parsing found,
/// reported together with the limits the tenant may not set.
#[derive(Debug)]
pub(crate) struct QuotaChange {
    pub(crate) limits: TenantQuota,
    pub(crate) fields: Vec<QuotaField>,
    pub(crate) parse_problems: Violations,
}

/// GetTenantPolicy: the tenant's policy, empty when never set.
pub(crate) async fn policy(store: &Store, tenant: &TenantId) -> Result<TenantPolicy, AppError> {
    Ok(store.tenant_policy(tenant).await?)
}

/// UpdateTenantPolicy: writes only `fields` of a checked `values`.
pub(crate) async fn update_policy(
    store: &Store,
    tenant: &TenantId,
    actor: &str,
    values: &TenantPolicy,
    fields: &[PolicyField],
) -> Result<TenantPolicy, AppError> {
    let audit = values.audited(
        AuditEntry::new(actor, "UpdateTenantPolicy", "tenant_policy"),
        fields,
    );
    Ok(store
        .update_tenant_policy(tenant, values, fields, &audit)
        .await?)
}

/// GetTenantQuota: the tenant's own limits, and the service defaults they fall back to.
pub(crate) async fn quota(
    store: &Store,
    quotas: &Quotas,
    tenant: &TenantId,
) -> Result<(TenantQuota, QuotaLimits), AppError> {
    Ok((store.tenant_quota(tenant).await?, quotas.defaults()))
}

/// UpdateTenantQuota: a tenant may only tighten the service defaults (the operator loosens
/// them from the command line). Writes only the named limits and applies them in this process
/// at once; other replicas follow within [`super::quota::SETTINGS_TTL`].
pub(crate) async fn update_quota(
    store: &Store,
    quotas: &Quotas,
    tenant: &TenantId,
    actor: &str,
    change: QuotaChange,
) -> Result<(TenantQuota, QuotaLimits), AppError> {
    let QuotaChange {
        limits,
        fields,
        mut parse_problems,
    } = change;
    let defaults = quotas.defaults();
    limits.check("quota", &mut parse_problems);
    limits.check_within(&defaults, "quota", &mut parse_problems);
    parse_problems.finish(())?;
    let audit = limits.audited(
        AuditEntry::new(actor, "UpdateTenantQuota", "tenant_quota"),
        &fields,
    );
    let saved = store
        .update_tenant_quota(tenant, &limits, &fields, &audit)
        .await?;
    quotas.forget(tenant);
    Ok((saved, defaults))
}
