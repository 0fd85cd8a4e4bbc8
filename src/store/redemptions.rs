//! The redemption ledger. Every limit is consumed by one conditional statement whose affected-row
//! count says whether it held, inside the transaction that records the redemption: never a read
//! followed by a write. Releases (revert, expiry) are guarded by the status they move from, so a
//! usage is given back exactly once however requests race.
//!
//! Every active redemption is counted on its coupon (total, budget, per customer) and on its
//! customer, whether or not a limit exists yet: a limit added, raised or lowered on a live coupon
//! is then exact at once. The coupon row's update also serializes each Redeem with an
//! `UpdateCoupon` of the same coupon, so the guards always compare against the newest limits.

use sea_orm::{
    sea_query::{Expr, ExprTrait, Func, OnConflict, Query},
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DeriveIden, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use super::{
    entities::{coupon, redemption},
    events::append_event,
    new_id,
    retry::retrying,
    Page, Store, StoreError,
};
use crate::domain::{
    event::EventKind,
    redemption::{customer_keys, RedeemOrder, Redemption, RedemptionStatus},
    Code, Currency, TenantId, Timestamp,
};

/// Times a release re-reads a redemption whose status keeps changing under it.
const ATTEMPTS: u32 = 8;

/// Active redemptions of a coupon per customer.
#[derive(DeriveIden)]
pub(super) enum CouponCustomerUsage {
    Table,
    CouponId,
    CustomerKey,
    Redemptions,
}

/// Active redemptions per customer key (id, and `email:` + e-mail), across coupons.
#[derive(DeriveIden)]
pub(super) enum CustomerStats {
    Table,
    TenantId,
    CustomerKey,
    ActiveRedemptions,
}

/// Which counter refused a redemption when it was consumed: a fact for the use case to explain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    /// The coupon's total redemptions reached its limit.
    TotalLimit,
    /// The coupon's budget cannot cover the discount.
    Budget,
    /// The customer's redemptions of the coupon reached its per-customer limit.
    CustomerLimit,
    /// The customer has another active order, so is not new.
    NewCustomer,
}

/// Which redemptions a listing returns.
#[derive(Clone, Debug, Default)]
pub struct RedemptionFilter {
    pub order_id: Option<String>,
    pub coupon_id: Option<String>,
    pub customer_id: Option<String>,
}

/// A stored redemption with the fingerprint of the request that made it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub redemption: Redemption,
    pub fingerprint: String,
}

impl Store {
    /// Every redemption of the order (of the given codes, or all), oldest first: an order and
    /// code may have ended attempts before its active one.
    #[tracing::instrument(name = "db.order_redemptions", skip_all, fields(db.system = self.db_system(), db.collection.name = "redemptions"))]
    pub async fn order_redemptions(
        &self,
        tenant: &TenantId,
        order_id: &str,
        codes: &[Code],
    ) -> Result<Vec<Recorded>, StoreError> {
        self.order_rows(tenant, order_id, codes)
            .await?
            .into_iter()
            .map(|row| {
                let fingerprint = row.fingerprint.clone();
                decode(row).map(|redemption| Recorded {
                    redemption,
                    fingerprint,
                })
            })
            .collect()
    }

    async fn order_rows(
        &self,
        tenant: &TenantId,
        order_id: &str,
        codes: &[Code],
    ) -> Result<Vec<redemption::Model>, StoreError> {
        let mut query = redemption::Entity::find()
            .filter(redemption::Column::TenantId.eq(tenant.0.as_str()))
            .filter(redemption::Column::OrderId.eq(order_id));
        if !codes.is_empty() {
            query = query.filter(redemption::Column::Code.is_in(codes.iter().map(|c| c.as_str())));
        }
        Ok(query
            .order_by_asc(redemption::Column::Id)
            .all(self.conn())
            .await?)
    }

    /// Records every draft of an order and consumes its counters, all or nothing, retrying
    /// contention. An order and code with an active redemption already is `AlreadyExists`; a
    /// counter that no longer allows it is `LimitReached`.
    #[tracing::instrument(name = "db.record_redemptions", skip_all, fields(db.system = self.db_system(), db.collection.name = "redemptions"))]
    pub async fn record_redemptions(
        &self,
        tenant: &TenantId,
        order: &RedeemOrder,
        now: Timestamp,
    ) -> Result<Vec<Redemption>, StoreError> {
        retrying(|| self.record_once(tenant, order, now)).await
    }

    async fn record_once(
        &self,
        tenant: &TenantId,
        order: &RedeemOrder,
        now: Timestamp,
    ) -> Result<Vec<Redemption>, StoreError> {
        let status = if order.completed {
            RedemptionStatus::Completed
        } else {
            RedemptionStatus::Pending
        };
        let txn = self.conn().begin().await?;
        // The inserts come first: they claim the idempotency keys (a racing retry waits on the
        // unique index, then fails) and make the transaction a writer from its first statement,
        // which SQLite needs to queue writers instead of failing them.
        let mut drafts = order.drafts.clone();
        drafts.sort_by(|a, b| a.coupon_id.cmp(&b.coupon_id));
        let mut recorded = Vec::with_capacity(drafts.len());
        for draft in &drafts {
            let model = redemption::Model {
                id: new_id("rdm"),
                tenant_id: tenant.0.clone(),
                coupon_id: draft.coupon_id.clone(),
                code: draft.code.as_str().to_owned(),
                campaign_id: draft.campaign_id.clone(),
                order_id: order.order_id.clone(),
                customer_id: order.customer_id.clone(),
                customer_email: order.customer_email.clone(),
                discount: draft.discount,
                currency: order.currency.code().to_owned(),
                status: status.as_str().to_owned(),
                request_id: order.request_id.clone(),
                fingerprint: order.fingerprint.clone(),
                // Every redemption is counted now; the columns remain for rows of earlier
                // versions, which the migration to exact limits recounted.
                counted: true,
                customer_counted: true,
                created_at: now.micros(),
                updated_at: now.micros(),
                expires_at: if order.completed {
                    None
                } else {
                    order.expires_at.map(Timestamp::micros)
                },
                automatic: draft.automatic,
            };
            redemption::Entity::insert(redemption::ActiveModel::from(model.clone()))
                .exec_without_returning(&txn)
                .await?;
            let kind = if order.completed {
                EventKind::RedeemedCompleted
            } else {
                EventKind::RedeemedPending
            };
            append_event(&txn, self.dialect, kind, &model, now).await?;
            recorded.push(model);
        }
        // Counters in coupon-id order, so two orders never lock the same coupons crosswise.
        for draft in &drafts {
            let refusal = if !consume_coupon(&txn, &draft.coupon_id, draft.discount).await? {
                Some(exhausted_limit(&txn, &draft.coupon_id).await?)
            } else if !consume_customer(&txn, &draft.coupon_id, &order.customer_id).await? {
                Some(Exhausted::CustomerLimit)
            } else {
                None
            };
            if let Some(exhausted) = refusal {
                txn.rollback().await?;
                return Err(StoreError::LimitReached {
                    coupon_id: draft.coupon_id.clone(),
                    exhausted,
                });
            }
        }
        let count = i64::try_from(drafts.len())
            .map_err(|_| StoreError::Corrupt("too many redemptions in one order".into()))?;
        let keys = customer_keys(&order.customer_id, &order.customer_email);
        let others_active = count_customer(&txn, tenant, &keys, count)
            .await?
            .into_iter()
            .any(|active| active > count);
        if order.claims_new_customer && others_active {
            txn.rollback().await?;
            let coupon_id = drafts
                .first()
                .map(|d| d.coupon_id.clone())
                .unwrap_or_default();
            return Err(StoreError::LimitReached {
                coupon_id,
                exhausted: Exhausted::NewCustomer,
            });
        }
        txn.commit().await?;
        self.signal_events();
        recorded.into_iter().map(decode).collect()
    }

    /// Completes the order's pending redemptions (of `codes`, or all); completed ones stay so.
    /// Returns the order's latest redemption of each code.
    #[tracing::instrument(name = "db.confirm_order", skip_all, fields(db.system = self.db_system(), db.collection.name = "redemptions"))]
    pub async fn confirm_order(
        &self,
        tenant: &TenantId,
        order_id: &str,
        codes: &[Code],
        now: Timestamp,
    ) -> Result<Vec<Redemption>, StoreError> {
        let pending: Vec<redemption::Model> = self
            .order_rows(tenant, order_id, codes)
            .await?
            .into_iter()
            .filter(|r| r.status == RedemptionStatus::Pending.as_str())
            .collect();
        for row in &pending {
            retrying(|| async {
                let txn = self.conn().begin().await?;
                let moved = txn
                    .execute(
                        Query::update()
                            .table(redemption::Entity)
                            .value(
                                redemption::Column::Status,
                                RedemptionStatus::Completed.as_str(),
                            )
                            .value(redemption::Column::ExpiresAt, Expr::null())
                            .value(redemption::Column::UpdatedAt, now.micros())
                            .and_where(redemption::Column::Id.eq(row.id.as_str()))
                            .and_where(
                                redemption::Column::Status.eq(RedemptionStatus::Pending.as_str()),
                            ),
                    )
                    .await?
                    .rows_affected();
                if moved == 1 {
                    let after = redemption::Model {
                        status: RedemptionStatus::Completed.as_str().to_owned(),
                        expires_at: None,
                        updated_at: now.micros(),
                        ..row.clone()
                    };
                    append_event(&txn, self.dialect, EventKind::Confirmed, &after, now).await?;
                }
                txn.commit().await?;
                self.signal_events();
                Ok(())
            })
            .await?;
        }
        self.latest(tenant, order_id, codes).await
    }

    /// Reverts the order's active redemptions (of `codes`, or all) and releases their usage.
    /// Returns the order's latest redemption of each code.
    #[tracing::instrument(name = "db.revert_order", skip_all, fields(db.system = self.db_system(), db.collection.name = "redemptions"))]
    pub async fn revert_order(
        &self,
        tenant: &TenantId,
        order_id: &str,
        codes: &[Code],
        now: Timestamp,
    ) -> Result<Vec<Redemption>, StoreError> {
        let active: Vec<String> = self
            .order_rows(tenant, order_id, codes)
            .await?
            .into_iter()
            .filter(|r| RedemptionStatus::parse(&r.status).is_some_and(|s| s.is_active()))
            .map(|r| r.id)
            .collect();
        for id in active {
            retrying(|| self.release(&id, RedemptionStatus::Reverted, now, false)).await?;
        }
        self.latest(tenant, order_id, codes).await
    }

    /// Expires up to `limit` pending redemptions whose reservation ended before `now`, across
    /// tenants, releasing their usage. Returns how many this call expired; replicas sweeping at
    /// once never release one twice.
    pub async fn expire_due(&self, now: Timestamp, limit: u64) -> Result<usize, StoreError> {
        let due: Vec<String> = redemption::Entity::find()
            .select_only()
            .column(redemption::Column::Id)
            .filter(redemption::Column::Status.eq(RedemptionStatus::Pending.as_str()))
            .filter(redemption::Column::ExpiresAt.lte(now.micros()))
            .order_by_asc(redemption::Column::ExpiresAt)
            .limit(limit)
            .into_tuple()
            .all(self.conn())
            .await?;
        let mut expired = 0;
        for id in due {
            if retrying(|| self.release(&id, RedemptionStatus::Expired, now, true)).await? {
                expired += 1;
            }
        }
        Ok(expired)
    }

    /// Moves one active redemption to `to` and gives back the counters it consumed. When
    /// `only_due`, only a pending redemption whose reservation ended by `now` moves. Returns
    /// whether this call moved it.
    async fn release(
        &self,
        id: &str,
        to: RedemptionStatus,
        now: Timestamp,
        only_due: bool,
    ) -> Result<bool, StoreError> {
        // A confirm may move the redemption between the read and the guarded update; then read
        // again and release from its new status.
        for _ in 0..ATTEMPTS {
            if let Some(released) = self.release_from_current(id, to, now, only_due).await? {
                return Ok(released);
            }
        }
        Err(StoreError::Corrupt(format!(
            "redemption {id} keeps changing state"
        )))
    }

    /// One attempt of [`release`](Self::release): `None` when the status changed under it.
    async fn release_from_current(
        &self,
        id: &str,
        to: RedemptionStatus,
        now: Timestamp,
        only_due: bool,
    ) -> Result<Option<bool>, StoreError> {
        let Some(current) = redemption::Entity::find_by_id(id.to_owned())
            .one(self.conn())
            .await?
        else {
            return Ok(Some(false));
        };
        let from = RedemptionStatus::parse(&current.status)
            .ok_or_else(|| StoreError::Corrupt(format!("redemption {id} status")))?;
        let movable = from.is_active() && (!only_due || from == RedemptionStatus::Pending);
        if !movable {
            return Ok(Some(false));
        }
        let txn = self.conn().begin().await?;
        // Guarded by the status read above: if another request moved it meanwhile, nothing
        // happens here and the caller sees the other's result.
        let mut guarded = Query::update();
        guarded
            .table(redemption::Entity)
            .value(redemption::Column::Status, to.as_str())
            .value(redemption::Column::ExpiresAt, Expr::null())
            .value(redemption::Column::UpdatedAt, now.micros())
            .and_where(redemption::Column::Id.eq(id))
            .and_where(redemption::Column::Status.eq(from.as_str()));
        if only_due {
            guarded.and_where(redemption::Column::ExpiresAt.lte(now.micros()));
        }
        if txn.execute(&guarded).await?.rows_affected() == 0 {
            txn.rollback().await?;
            return Ok(None);
        }
        give_back(&txn, &current).await?;
        let kind = if to == RedemptionStatus::Expired {
            EventKind::Expired
        } else {
            EventKind::Reverted
        };
        let after = redemption::Model {
            status: to.as_str().to_owned(),
            expires_at: None,
            updated_at: now.micros(),
            ..current
        };
        append_event(&txn, self.dialect, kind, &after, now).await?;
        txn.commit().await?;
        self.signal_events();
        Ok(Some(true))
    }

    /// The order's latest redemption of each code (of `codes`, or all), in code order.
    async fn latest(
        &self,
        tenant: &TenantId,
        order_id: &str,
        codes: &[Code],
    ) -> Result<Vec<Redemption>, StoreError> {
        let mut latest: Vec<Redemption> = Vec::new();
        // Rows come oldest first, so a later attempt replaces an earlier one.
        for recorded in self.order_redemptions(tenant, order_id, codes).await? {
            let redemption = recorded.redemption;
            match latest.iter_mut().find(|r| r.code == redemption.code) {
                Some(slot) => *slot = redemption,
                None => latest.push(redemption),
            }
        }
        latest.sort_by(|a, b| a.code.cmp(&b.code));
        Ok(latest)
    }

    /// The tenant's redemption with this id.
    #[tracing::instrument(name = "db.get_redemption", skip_all, fields(db.system = self.db_system(), db.collection.name = "redemptions"))]
    pub async fn get_redemption(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Redemption, StoreError> {
        redemption::Entity::find_by_id(id.to_owned())
            .filter(redemption::Column::TenantId.eq(tenant.0.as_str()))
            .one(self.conn())
            .await?
            .map(decode)
            .unwrap_or(Err(StoreError::NotFound))
    }

    /// A page of the tenant's redemptions, oldest first.
    #[tracing::instrument(name = "db.list_redemptions", skip_all, fields(db.system = self.db_system(), db.collection.name = "redemptions"))]
    pub async fn list_redemptions(
        &self,
        tenant: &TenantId,
        filter: &RedemptionFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<Redemption>, StoreError> {
        let mut query =
            redemption::Entity::find().filter(redemption::Column::TenantId.eq(tenant.0.as_str()));
        if let Some(order) = &filter.order_id {
            query = query.filter(redemption::Column::OrderId.eq(order.as_str()));
        }
        if let Some(coupon) = &filter.coupon_id {
            query = query.filter(redemption::Column::CouponId.eq(coupon.as_str()));
        }
        if let Some(customer) = &filter.customer_id {
            query = query.filter(redemption::Column::CustomerId.eq(customer.as_str()));
        }
        if let Some(after) = after {
            query = query.filter(redemption::Column::Id.gt(after));
        }
        let rows = query
            .order_by_asc(redemption::Column::Id)
            .limit(limit + 1)
            .all(self.conn())
            .await?;
        let items = rows
            .into_iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(items, limit, |r| r.id.clone()))
    }
}

/// Adds one redemption and its discount to the coupon's counters if its total limit and budget,
/// as they are now, allow it. On PostgreSQL the row lock makes a racing `UpdateCoupon` either
/// finish first (its limits apply) or wait for this transaction.
async fn consume_coupon(
    txn: &DatabaseTransaction,
    coupon_id: &str,
    discount: i64,
) -> Result<bool, StoreError> {
    let redemptions = || Expr::col(coupon::Column::Redemptions);
    let budget_used = || Expr::col(coupon::Column::BudgetUsed);
    let update = Query::update()
        .table(coupon::Entity)
        .value(coupon::Column::Redemptions, redemptions().add(1))
        .value(coupon::Column::BudgetUsed, budget_used().add(discount))
        .and_where(coupon::Column::Id.eq(coupon_id))
        .and_where(
            coupon::Column::MaxRedemptions
                .is_null()
                .or(redemptions().lt(Expr::col(coupon::Column::MaxRedemptions))),
        )
        .and_where(
            coupon::Column::Budget.is_null().or(budget_used()
                .add(discount)
                .lte(Expr::col(coupon::Column::Budget))),
        )
        .to_owned();
    Ok(txn.execute(&update).await?.rows_affected() == 1)
}

/// Adds one redemption to the customer's count for the coupon if the coupon's per-customer limit,
/// read in the same statement (after [`consume_coupon`] locked the coupon), allows it.
async fn consume_customer(
    txn: &DatabaseTransaction,
    coupon_id: &str,
    customer_key: &str,
) -> Result<bool, StoreError> {
    let used = || Expr::col((CouponCustomerUsage::Table, CouponCustomerUsage::Redemptions));
    let limit = Query::select()
        .column(coupon::Column::MaxRedemptionsPerCustomer)
        .from(coupon::Entity)
        .and_where(coupon::Column::Id.eq(coupon_id))
        .to_owned();
    let limit = Func::coalesce([
        Expr::SubQuery(None, Box::new(limit.into())),
        Expr::val(i64::MAX),
    ]);
    let upsert = Query::insert()
        .into_table(CouponCustomerUsage::Table)
        .columns([
            CouponCustomerUsage::CouponId,
            CouponCustomerUsage::CustomerKey,
            CouponCustomerUsage::Redemptions,
        ])
        // Limits are at least one, so a first redemption always fits.
        .values_panic([coupon_id.into(), customer_key.into(), 1i64.into()])
        .on_conflict(
            OnConflict::columns([
                CouponCustomerUsage::CouponId,
                CouponCustomerUsage::CustomerKey,
            ])
            .value(CouponCustomerUsage::Redemptions, used().add(1))
            .action_and_where(used().lt(limit))
            .to_owned(),
        )
        .to_owned();
    Ok(txn.execute(&upsert).await?.rows_affected() == 1)
}

/// Adds `delta` active redemptions to each of a customer's keys and returns their new counts, in
/// one statement. The rows' locks serialize the customer's racing orders, so the counts include
/// every committed one.
async fn count_customer(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    customer_keys: &[String],
    delta: i64,
) -> Result<Vec<i64>, StoreError> {
    let active = || Expr::col((CustomerStats::Table, CustomerStats::ActiveRedemptions));
    let mut upsert = Query::insert();
    upsert.into_table(CustomerStats::Table).columns([
        CustomerStats::TenantId,
        CustomerStats::CustomerKey,
        CustomerStats::ActiveRedemptions,
    ]);
    for key in customer_keys {
        upsert.values_panic([
            tenant.0.as_str().into(),
            key.as_str().into(),
            std::cmp::max(delta, 0).into(),
        ]);
    }
    upsert
        .on_conflict(
            OnConflict::columns([CustomerStats::TenantId, CustomerStats::CustomerKey])
                .value(
                    CustomerStats::ActiveRedemptions,
                    Func::greatest([active().add(delta), Expr::val(0i64)]),
                )
                .to_owned(),
        )
        .returning_col(CustomerStats::ActiveRedemptions);
    txn.query_all(&upsert)
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<i64>(0).map_err(StoreError::from))
        .collect()
}

/// Gives back what an active redemption consumed: its coupon's counters, its customer's count
/// of the coupon, and the customer's active redemptions.
async fn give_back(txn: &DatabaseTransaction, row: &redemption::Model) -> Result<(), StoreError> {
    txn.execute(
        Query::update()
            .table(coupon::Entity)
            .value(
                coupon::Column::Redemptions,
                Expr::col(coupon::Column::Redemptions).sub(1),
            )
            .value(
                coupon::Column::BudgetUsed,
                Expr::col(coupon::Column::BudgetUsed).sub(row.discount),
            )
            .and_where(coupon::Column::Id.eq(row.coupon_id.as_str()))
            .and_where(Expr::col(coupon::Column::Redemptions).gt(0))
            .and_where(Expr::col(coupon::Column::BudgetUsed).gte(row.discount)),
    )
    .await?;
    txn.execute(
        Query::update()
            .table(CouponCustomerUsage::Table)
            .value(
                CouponCustomerUsage::Redemptions,
                Expr::col(CouponCustomerUsage::Redemptions).sub(1),
            )
            .and_where(Expr::col(CouponCustomerUsage::CouponId).eq(row.coupon_id.as_str()))
            .and_where(Expr::col(CouponCustomerUsage::CustomerKey).eq(row.customer_id.as_str()))
            .and_where(Expr::col(CouponCustomerUsage::Redemptions).gt(0)),
    )
    .await?;
    let tenant = TenantId(row.tenant_id.clone());
    let keys = customer_keys(&row.customer_id, &row.customer_email);
    count_customer(txn, &tenant, &keys, -1).await?;
    Ok(())
}

/// Which of the coupon's limits refused a redemption: read inside the refusing transaction.
async fn exhausted_limit(
    txn: &DatabaseTransaction,
    coupon_id: &str,
) -> Result<Exhausted, StoreError> {
    let (used, max): (i64, Option<i64>) = coupon::Entity::find_by_id(coupon_id.to_owned())
        .select_only()
        .column(coupon::Column::Redemptions)
        .column(coupon::Column::MaxRedemptions)
        .into_tuple()
        .one(txn)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(if max.is_some_and(|max| used >= max) {
        Exhausted::TotalLimit
    } else {
        Exhausted::Budget
    })
}

fn decode(model: redemption::Model) -> Result<Redemption, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("redemption {} {what}", model.id));
    Ok(Redemption {
        code: Code::parse(&model.code).map_err(|_| corrupt("code"))?,
        currency: Currency::parse(&model.currency).map_err(|_| corrupt("currency"))?,
        status: RedemptionStatus::parse(&model.status).ok_or_else(|| corrupt("status"))?,
        id: model.id,
        coupon_id: model.coupon_id,
        campaign_id: model.campaign_id,
        order_id: model.order_id,
        customer_id: model.customer_id,
        discount: model.discount,
        request_id: model.request_id,
        created_at: Timestamp(model.created_at),
        updated_at: Timestamp(model.updated_at),
        expires_at: model.expires_at.map(Timestamp),
        automatic: model.automatic,
    })
}
