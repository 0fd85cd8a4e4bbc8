//! The ledger's numbers for one coupon or one campaign, read from one snapshot. Every statement
//! is bounded by `(tenant_id, coupon_id)` or `(tenant_id, campaign_id)` and served by the
//! indexes that lead with them (migration `m20261122_000130`), so its cost follows that coupon's
//! or campaign's redemptions only, never the rest of the tenant's data or other tenants'.

use sea_orm::{
    sea_query::{Alias, Expr, ExprTrait, Func, Query, SelectStatement},
    ColumnTrait, ConnectionTrait, DatabaseTransaction, QueryResult, TransactionTrait,
};

use super::{
    entities::{coupon, redemption},
    Store, StoreError,
};
use crate::domain::{
    redemption::RedemptionStatus,
    stats::{Day, LedgerGroup, MICROS_PER_DAY},
    Currency, TenantId, Timestamp,
};

/// Whose redemptions are counted.
#[derive(Clone, Copy, Debug)]
pub enum StatsScope<'a> {
    /// One coupon, by id.
    Coupon(&'a str),
    /// Every coupon of a campaign, by the campaign's id.
    Campaign(&'a str),
}

/// What the ledger holds for a scope, all read in one snapshot.
#[derive(Clone, Debug, Default)]
pub struct LedgerStats {
    /// Redemptions grouped by status and currency.
    pub groups: Vec<LedgerGroup>,
    /// Redemptions made in the asked instants, by UTC day and their status now; days without
    /// redemptions are absent.
    pub per_day: Vec<(Day, RedemptionStatus, i64)>,
    /// Distinct customer ids among active (pending or completed) redemptions.
    pub customers: i64,
    /// Distinct non-empty e-mails among active redemptions.
    pub customer_emails: i64,
    /// Over the scope's coupons that have a budget: the budgets, the amounts used (the
    /// counters Redeem keeps in the ledger's transactions) and what is left, each coupon's
    /// left counted from zero up. `None` when no coupon of the scope has a budget.
    pub budget: Option<BudgetTotals>,
}

/// Budget sums over a scope's coupons with a budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetTotals {
    pub budget: i64,
    pub used: i64,
    pub left: i64,
}

impl Store {
    /// The numbers of a coupon or campaign of the tenant; per-day counts cover redemptions made
    /// from `from` up to (not including) `until`. A scope without redemptions answers zeros.
    #[tracing::instrument(name = "db.redemption_stats", skip_all, fields(db.system = self.db_system(), db.collection.name = "redemptions"))]
    pub async fn redemption_stats(
        &self,
        tenant: &TenantId,
        scope: StatsScope<'_>,
        from: Timestamp,
        until: Timestamp,
    ) -> Result<LedgerStats, StoreError> {
        let (isolation, access) = self.dialect.snapshot();
        let txn = self.conn().begin_with_config(isolation, access).await?;
        let stats = LedgerStats {
            groups: groups(&txn, tenant, scope).await?,
            per_day: per_day(&txn, tenant, scope, from, until).await?,
            budget: budget(&txn, tenant, scope).await?,
            ..distinct_customers(&txn, tenant, scope).await?
        };
        txn.commit().await?;
        Ok(stats)
    }
}

/// `SELECT ... FROM redemptions WHERE tenant_id = ? AND <scope> = ?`.
fn scoped(tenant: &TenantId, scope: StatsScope<'_>) -> SelectStatement {
    let (column, id) = match scope {
        StatsScope::Coupon(id) => (redemption::Column::CouponId, id),
        StatsScope::Campaign(id) => (redemption::Column::CampaignId, id),
    };
    Query::select()
        .from(redemption::Entity)
        .and_where(redemption::Column::TenantId.eq(tenant.0.as_str()))
        .and_where(column.eq(id))
        .to_owned()
}

/// A sum as BIGINT: PostgreSQL sums BIGINTs as NUMERIC.
fn sum(expr: Expr) -> Expr {
    Func::cast_as(Func::sum(expr), Alias::new("BIGINT")).into()
}

fn status_of(text: &str) -> Result<RedemptionStatus, StoreError> {
    RedemptionStatus::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("redemption status {text:?}")))
}

async fn groups(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    scope: StatsScope<'_>,
) -> Result<Vec<LedgerGroup>, StoreError> {
    let query = scoped(tenant, scope)
        .column(redemption::Column::Status)
        .column(redemption::Column::Currency)
        .expr(Func::count(Expr::col(redemption::Column::Id)))
        .expr(sum(Expr::col(redemption::Column::Discount)))
        .expr(Func::min(Expr::col(redemption::Column::CreatedAt)))
        .expr(Func::max(Expr::col(redemption::Column::CreatedAt)))
        .group_by_columns([redemption::Column::Status, redemption::Column::Currency])
        .to_owned();
    txn.query_all(&query)
        .await?
        .iter()
        .map(|row| {
            let currency: String = row.try_get_by_index(1)?;
            Ok(LedgerGroup {
                status: status_of(&row.try_get_by_index::<String>(0)?)?,
                currency: Currency::parse(&currency)
                    .map_err(|_| StoreError::Corrupt(format!("currency {currency:?}")))?,
                count: row.try_get_by_index(2)?,
                discount: row.try_get_by_index(3)?,
                first_at: Timestamp(row.try_get_by_index(4)?),
                last_at: Timestamp(row.try_get_by_index(5)?),
            })
        })
        .collect()
}

async fn per_day(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    scope: StatsScope<'_>,
    from: Timestamp,
    until: Timestamp,
) -> Result<Vec<(Day, RedemptionStatus, i64)>, StoreError> {
    // Instants are never before 1970, so integer division is the UTC day on both databases.
    // Grouped by the output name: PostgreSQL would not see two bound divisors as one expression.
    let day = Alias::new("day");
    let query = scoped(tenant, scope)
        .expr_as(
            Expr::col(redemption::Column::CreatedAt).div(MICROS_PER_DAY),
            day.clone(),
        )
        .column(redemption::Column::Status)
        .expr(Func::count(Expr::col(redemption::Column::Id)))
        .and_where(redemption::Column::CreatedAt.gte(from.micros()))
        .and_where(redemption::Column::CreatedAt.lt(until.micros()))
        .group_by_col(day)
        .group_by_col(redemption::Column::Status)
        .to_owned();
    txn.query_all(&query)
        .await?
        .iter()
        .map(|row| {
            Ok((
                Day::from_number(row.try_get_by_index(0)?),
                status_of(&row.try_get_by_index::<String>(1)?)?,
                row.try_get_by_index(2)?,
            ))
        })
        .collect()
}

async fn distinct_customers(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    scope: StatsScope<'_>,
) -> Result<LedgerStats, StoreError> {
    let active = [
        RedemptionStatus::Pending.as_str(),
        RedemptionStatus::Completed.as_str(),
    ];
    // NULLIF drops the empty e-mail of checkouts that gave none; COUNT skips NULLs.
    let email = Func::cust("NULLIF")
        .arg(Expr::col(redemption::Column::CustomerEmail))
        .arg("");
    let query = scoped(tenant, scope)
        .expr(Func::count_distinct(Expr::col(
            redemption::Column::CustomerId,
        )))
        .expr(Func::count_distinct(email))
        .and_where(redemption::Column::Status.is_in(active))
        .to_owned();
    let row = txn.query_one(&query).await?;
    let count = |row: &Option<QueryResult>, index| -> Result<i64, StoreError> {
        Ok(match row {
            Some(row) => row.try_get_by_index(index)?,
            None => 0,
        })
    };
    Ok(LedgerStats {
        customers: count(&row, 0)?,
        customer_emails: count(&row, 1)?,
        ..LedgerStats::default()
    })
}

async fn budget(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    scope: StatsScope<'_>,
) -> Result<Option<BudgetTotals>, StoreError> {
    let budget = || Expr::col(coupon::Column::Budget);
    let used = || Expr::col(coupon::Column::BudgetUsed);
    let mut query = Query::select();
    query
        .from(coupon::Entity)
        .expr(Func::count(Expr::col(coupon::Column::Id)))
        .expr(sum(budget()))
        .expr(sum(used()))
        .expr(sum(Expr::case(budget().gt(used()), budget().sub(used()))
            .finally(0i64)
            .into()))
        .and_where(coupon::Column::TenantId.eq(tenant.0.as_str()))
        .and_where(coupon::Column::Budget.is_not_null());
    match scope {
        StatsScope::Coupon(id) => query.and_where(coupon::Column::Id.eq(id)),
        StatsScope::Campaign(id) => query.and_where(coupon::Column::CampaignId.eq(id)),
    };
    let Some(row) = txn.query_one(&query).await? else {
        return Ok(None);
    };
    if row.try_get_by_index::<i64>(0)? == 0 {
        return Ok(None);
    }
    Ok(Some(BudgetTotals {
        budget: row.try_get_by_index(1)?,
        used: row.try_get_by_index(2)?,
        left: row.try_get_by_index(3)?,
    }))
}
