//! ListAuditEntries: who changed what in a tenant, newest first.

use super::AppError;
use crate::{
    domain::{audit::RecordedAudit, TenantId},
    store::{audit::AuditFilter, Page, Store},
};

/// A page of the tenant's audit log, newest first, before the entry `before`.
pub(crate) async fn list(
    store: &Store,
    tenant: &TenantId,
    filter: &AuditFilter,
    before: Option<&str>,
    limit: u64,
) -> Result<Page<RecordedAudit>, AppError> {
    Ok(store
        .list_audit_entries(tenant, filter, before, limit)
        .await?)
}
