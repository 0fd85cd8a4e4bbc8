//! AdminService's coupon use cases: create, find, list, update and deactivate a tenant's
//! coupons. Every change is audited in the transaction that makes it.

use super::{AppError, ErrorReason, StoreResultExt};
use crate::{
    domain::{
        audit::AuditEntry,
        coupon::{Coupon, CouponPatch, CouponRules, NewCoupon},
        Code, TenantId, Violations,
    },
    store::{coupons::CouponFilter, Page, Store},
};

/// How GetCoupon names the coupon it wants.
#[derive(Clone, Debug)]
pub(crate) enum CouponRef {
    Id(String),
    Code(Code),
}

/// UpdateCoupon as parsed: the coupon, the parts to replace, and the problems parsing found,
/// reported together with the rules the updated coupon would break.
#[derive(Debug)]
pub(crate) struct UpdateCoupon {
    pub(crate) id: String,
    pub(crate) patch: CouponPatch,
    pub(crate) parse_problems: Violations,
}

/// CreateCoupon: stores `coupon`; its code must be new in the tenant.
pub(crate) async fn create(
    store: &Store,
    tenant: &TenantId,
    actor: &str,
    coupon: &NewCoupon,
) -> Result<Coupon, AppError> {
    let audit = AuditEntry::new(actor, "CreateCoupon", "coupon")
        .with("code", coupon.code().as_str())
        .with("active", coupon.active())
        .with("automatic", coupon.automatic())
        .with("rules", rules_json(coupon.rules()));
    store.insert_coupon(tenant, coupon, &audit).await.taken(
        "coupon",
        coupon.code().as_str(),
        ErrorReason::CouponCodeExists,
    )
}

/// GetCoupon: the tenant's coupon with this id or code.
pub(crate) async fn find(
    store: &Store,
    tenant: &TenantId,
    coupon: &CouponRef,
) -> Result<Coupon, AppError> {
    match coupon {
        CouponRef::Id(id) => store.get_coupon(tenant, id).await.about("coupon", id),
        CouponRef::Code(code) => store
            .get_coupon_by_code(tenant, code)
            .await
            .about("coupon", code.as_str()),
    }
}

/// ListCoupons: a page of the tenant's coupons, oldest first.
pub(crate) async fn list(
    store: &Store,
    tenant: &TenantId,
    filter: &CouponFilter,
    after: Option<&str>,
    limit: u64,
) -> Result<Page<Coupon>, AppError> {
    Ok(store.list_coupons(tenant, filter, after, limit).await?)
}

/// UpdateCoupon: replaces the named parts of a coupon. The result must be a valid coupon as a
/// whole; limits take effect on the ledger's exact counts (see the redemption store).
pub(crate) async fn update(
    store: &Store,
    tenant: &TenantId,
    actor: &str,
    command: UpdateCoupon,
) -> Result<Coupon, AppError> {
    let UpdateCoupon {
        id,
        patch,
        parse_problems,
    } = command;
    let existing = store.get_coupon(tenant, &id).await.about("coupon", &id)?;
    let changed = patch.parts();
    let (rules, active) = patch.apply(&existing, parse_problems)?;
    let audit = AuditEntry::new(actor, "UpdateCoupon", "coupon")
        .with("update_mask", changed)
        .with("active", active)
        .with("rules", rules_json(&rules));
    store
        .save_coupon_rules(tenant, &id, &rules, active, &audit)
        .await
        .about("coupon", &id)
}

/// DeactivateCoupon: the coupon stops applying; its ledger stays.
pub(crate) async fn deactivate(
    store: &Store,
    tenant: &TenantId,
    actor: &str,
    id: &str,
) -> Result<Coupon, AppError> {
    let audit = AuditEntry::new(actor, "DeactivateCoupon", "coupon").with("active", false);
    store
        .deactivate_coupon(tenant, id, &audit)
        .await
        .about("coupon", id)
}

/// Rules as the audit log records them.
pub(super) fn rules_json(rules: &CouponRules) -> serde_json::Value {
    serde_json::to_value(rules).unwrap_or_default()
}
