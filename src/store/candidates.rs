//! The engine's reads: coupons together with what the ledger knows of them and the customer, and
//! the tenant's policy, in one statement per request, however many codes it names.

use sea_orm::{
    sea_query::{Alias, Expr, ExprTrait, Func, Query, SelectStatement, UnionType},
    ColumnTrait, ConnectionTrait, FromQueryResult, IdenStatic, Iterable, QueryResult,
};

use super::{
    coupons::{decode, AutomaticPromotionKeys},
    entities::{coupon, tenant_policy},
    policies::policy_from_row,
    redemptions::{CouponCustomerUsage, CustomerStats},
    Store, StoreError,
};
use crate::domain::{
    automatic::Lookup, coupon::Coupon, engine::LedgerView, policy::TenantPolicy, Code, TenantId,
};

/// Prefix of the policy's columns in a candidates row.
const POLICY: &str = "policy_";

/// Coupons with their ledger views, and the policy of their tenant.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    pub coupons: Vec<(Coupon, LedgerView)>,
    /// The default (empty) policy when no coupon was found: then nothing is evaluated.
    pub policy: TenantPolicy,
}

impl Store {
    /// The tenant's coupons with these codes, and its active automatic promotions that this
    /// `lookup` finds, each with its ledger view for `customer_key`, in one statement. A typed
    /// code never names an automatic promotion. Without a lookup, only the codes are read.
    #[tracing::instrument(name = "db.coupons_with_ledger", skip_all, fields(db.system = self.db_system(), db.collection.name = "coupons"))]
    pub async fn coupons_with_ledger(
        &self,
        tenant: &TenantId,
        codes: &[Code],
        lookup: Option<&Lookup>,
        customer_key: Option<&str>,
    ) -> Result<Candidates, StoreError> {
        let typed = (!codes.is_empty()).then(|| {
            with_ledger(tenant, customer_key)
                .and_where(coupon::Column::Code.is_in(codes.iter().map(|c| c.as_str())))
                .and_where(coupon::Column::Automatic.eq(false))
                .to_owned()
        });
        let automatic = lookup.map(|lookup| automatic_candidates(tenant, lookup, customer_key));
        let query = match (typed, automatic) {
            (Some(mut typed), Some(automatic)) => typed.union(UnionType::All, automatic).to_owned(),
            (Some(only), None) | (None, Some(only)) => only,
            (None, None) => return Ok(Candidates::default()),
        };
        self.read(&query, customer_key).await
    }

    /// Every active coupon of the tenant that is neither a campaign's unique code nor an automatic
    /// promotion, with its ledger
    /// view for `customer_key`, in id order: what ListApplicable considers.
    #[tracing::instrument(name = "db.public_coupons_with_ledger", skip_all, fields(db.system = self.db_system(), db.collection.name = "coupons"))]
    pub async fn public_coupons_with_ledger(
        &self,
        tenant: &TenantId,
        customer_key: Option<&str>,
    ) -> Result<Candidates, StoreError> {
        let query = with_ledger(tenant, customer_key)
            .and_where(coupon::Column::Active.eq(true))
            .and_where(coupon::Column::CampaignId.is_null())
            .and_where(coupon::Column::Automatic.eq(false))
            .order_by((coupon::Entity, coupon::Column::Id), sea_orm::Order::Asc)
            .to_owned();
        self.read(&query, customer_key).await
    }

    async fn read(
        &self,
        query: &SelectStatement,
        customer_key: Option<&str>,
    ) -> Result<Candidates, StoreError> {
        let rows = self.conn().query_all(query).await?;
        let policy = match rows.first() {
            Some(row) => match tenant_policy::Model::from_query_result_optional(row, POLICY)? {
                Some(stored) => policy_from_row(stored)?,
                None => TenantPolicy::default(),
            },
            None => TenantPolicy::default(),
        };
        let coupons = rows
            .iter()
            .map(|row| decode_row(row, customer_key))
            .collect::<Result<_, _>>()?;
        Ok(Candidates { coupons, policy })
    }
}

/// The tenant's coupons with, for `customer_key`, their active redemptions of each coupon and
/// the customer's active redemptions of any coupon, as correlated subqueries; and the tenant's
/// policy beside each, from a left join.
fn with_ledger(tenant: &TenantId, customer_key: Option<&str>) -> SelectStatement {
    let customer = customer_key.unwrap_or("");
    let by_customer = Query::select()
        .column((CouponCustomerUsage::Table, CouponCustomerUsage::Redemptions))
        .from(CouponCustomerUsage::Table)
        .and_where(
            Expr::col((CouponCustomerUsage::Table, CouponCustomerUsage::CouponId))
                .equals((coupon::Entity, coupon::Column::Id)),
        )
        .and_where(
            Expr::col((CouponCustomerUsage::Table, CouponCustomerUsage::CustomerKey)).eq(customer),
        )
        .to_owned();
    let customer_active = Query::select()
        .column((CustomerStats::Table, CustomerStats::ActiveRedemptions))
        .from(CustomerStats::Table)
        .and_where(
            Expr::col((CustomerStats::Table, CustomerStats::TenantId))
                .equals((coupon::Entity, coupon::Column::TenantId)),
        )
        .and_where(Expr::col((CustomerStats::Table, CustomerStats::CustomerKey)).eq(customer))
        .to_owned();
    let mut query = Query::select();
    query.columns(coupon::Column::iter().map(|c| (coupon::Entity, c)));
    for column in tenant_policy::Column::iter() {
        query.expr_as(
            Expr::col((tenant_policy::Entity, column)),
            Alias::new(format!("{POLICY}{}", column.as_str())),
        );
    }
    query
        .expr_as(
            Func::coalesce([
                Expr::SubQuery(None, Box::new(by_customer.into())),
                Expr::val(0i64),
            ]),
            Alias::new("customer_redemptions"),
        )
        .expr_as(
            Expr::SubQuery(None, Box::new(customer_active.into())),
            Alias::new("customer_active_redemptions"),
        )
        .from(coupon::Entity)
        .left_join(
            tenant_policy::Entity,
            Expr::col((tenant_policy::Entity, tenant_policy::Column::TenantId))
                .equals((coupon::Entity, coupon::Column::TenantId)),
        )
        .and_where(Expr::col((coupon::Entity, coupon::Column::TenantId)).eq(tenant.0.as_str()))
        .to_owned()
}

/// The tenant's active automatic promotions indexed under one of the lookup's keys: the key
/// table's primary key answers the lookup, so promotions that cannot match are never read.
fn automatic_candidates(
    tenant: &TenantId,
    lookup: &Lookup,
    customer_key: Option<&str>,
) -> SelectStatement {
    let mut matching = Query::select();
    matching
        .column(AutomaticPromotionKeys::CouponId)
        .from(AutomaticPromotionKeys::Table)
        .and_where(
            Expr::col((
                AutomaticPromotionKeys::Table,
                AutomaticPromotionKeys::TenantId,
            ))
            .eq(tenant.0.as_str()),
        )
        .and_where(
            Expr::col((
                AutomaticPromotionKeys::Table,
                AutomaticPromotionKeys::Currency,
            ))
            .is_in(lookup.currencies.iter().map(String::as_str)),
        )
        .and_where(
            Expr::col((
                AutomaticPromotionKeys::Table,
                AutomaticPromotionKeys::Target,
            ))
            .is_in(lookup.targets.iter().map(String::as_str)),
        );
    if let Some(channels) = &lookup.channels {
        matching.and_where(
            Expr::col((
                AutomaticPromotionKeys::Table,
                AutomaticPromotionKeys::Channel,
            ))
            .is_in(channels.iter().map(String::as_str)),
        );
    }
    with_ledger(tenant, customer_key)
        .and_where(coupon::Column::Automatic.eq(true))
        .and_where(coupon::Column::Active.eq(true))
        .and_where(Expr::col((coupon::Entity, coupon::Column::Id)).in_subquery(matching))
        .to_owned()
}

fn decode_row(
    row: &QueryResult,
    customer_key: Option<&str>,
) -> Result<(Coupon, LedgerView), StoreError> {
    let model = coupon::Model::from_query_result(row, "")?;
    let customer_redemptions: i64 = row.try_get("", "customer_redemptions")?;
    let customer_active: Option<i64> = row.try_get("", "customer_active_redemptions")?;
    let coupon = decode(model)?;
    let ledger = LedgerView {
        usage: coupon.usage,
        customer_redemptions,
        customer_returning: customer_key.map(|_| customer_active.unwrap_or(0) > 0),
    };
    Ok((coupon, ledger))
}
