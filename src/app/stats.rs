//! GetCouponStats and GetCampaignStats: the operators' numbers, counted from the ledger. The
//! coupon or campaign is looked up in the caller's tenant first, so another tenant's is
//! NOT_FOUND like one that never existed; the range of per-day counts is decided here.

use super::{
    coupons::{self, CouponRef},
    AppError, StoreResultExt,
};
use crate::{
    domain::{
        stats::{BudgetLeft, Day, DayRange, RedemptionStats},
        Code, Currency, TenantId, Timestamp,
    },
    store::{
        stats::{LedgerStats, StatsScope},
        Store,
    },
};

/// The days a caller asked per-day counts for; a missing end is today, a missing start 29 days
/// before the end.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DaysAsked {
    pub(crate) start: Option<Day>,
    pub(crate) end: Option<Day>,
}

/// A coupon's numbers, with what names it.
#[derive(Clone, Debug)]
pub(crate) struct CouponStats {
    pub(crate) coupon_id: String,
    pub(crate) code: Code,
    pub(crate) campaign_id: Option<String>,
    pub(crate) stats: RedemptionStats,
}

/// GetCouponStats: the numbers of one of the tenant's coupons.
pub(crate) async fn coupon_stats(
    store: &Store,
    tenant: &TenantId,
    coupon: &CouponRef,
    days: DaysAsked,
    now: Timestamp,
) -> Result<CouponStats, AppError> {
    let range = resolve(days, now)?;
    let coupon = coupons::find(store, tenant, coupon).await?;
    let ledger = read(store, tenant, StatsScope::Coupon(&coupon.id), range).await?;
    Ok(CouponStats {
        stats: assemble(ledger, range, coupon.rules.currency),
        coupon_id: coupon.id,
        code: coupon.code,
        campaign_id: coupon.campaign_id,
    })
}

/// GetCampaignStats: the numbers over every coupon of one of the tenant's campaigns.
pub(crate) async fn campaign_stats(
    store: &Store,
    tenant: &TenantId,
    campaign_id: &str,
    days: DaysAsked,
    now: Timestamp,
) -> Result<RedemptionStats, AppError> {
    let range = resolve(days, now)?;
    let campaign = store
        .get_campaign(tenant, campaign_id)
        .await
        .about("campaign", campaign_id)?;
    let ledger = read(store, tenant, StatsScope::Campaign(&campaign.id), range).await?;
    Ok(assemble(ledger, range, campaign.rules.currency))
}

fn resolve(days: DaysAsked, now: Timestamp) -> Result<DayRange, AppError> {
    Ok(DayRange::resolve(days.start, days.end, Day::of(now))?)
}

async fn read(
    store: &Store,
    tenant: &TenantId,
    scope: StatsScope<'_>,
    range: DayRange,
) -> Result<LedgerStats, AppError> {
    let (from, until) = range.instants();
    Ok(store.redemption_stats(tenant, scope, from, until).await?)
}

fn assemble(ledger: LedgerStats, range: DayRange, currency: Option<Currency>) -> RedemptionStats {
    let budget = ledger.budget.map(|totals| BudgetLeft {
        currency,
        budget: totals.budget,
        used: totals.used,
        left: totals.left,
    });
    RedemptionStats::from_ledger(
        &ledger.groups,
        &ledger.per_day,
        range,
        ledger.customers,
        ledger.customer_emails,
        budget,
    )
}
