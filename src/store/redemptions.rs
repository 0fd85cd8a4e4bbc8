//! The redemption ledger. Every limit is consumed by one conditional statement whose affected-row
//! count says whether it held, inside the transaction that records the redemption: never a read
//! followed by a write. Releases (revert, expiry) are guarded by the status they move from, so a
//! usage is given back exactly once however requests race.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use super::{
    entities::redemption,
    events::append_event,
    new_id,
    sql::{execute, retrying, statement},
    Page, Store, StoreError,
};
use crate::domain::{
    engine::Reason,
    event::EventKind,
    redemption::{customer_keys, RedeemOrder, Redemption, RedemptionStatus},
    Code, Currency, TenantId, Timestamp,
};

/// Times a release re-reads a redemption whose status keeps changing under it.
const ATTEMPTS: u32 = 8;

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
    /// The order's redemptions, of the given codes or all.
    #[tracing::instrument(name = "db.order_redemptions", skip_all, fields(db.system = self.db_system()))]
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

    /// Records every draft of an order and consumes its limits, all or nothing, retrying
    /// contention. A (order, code) already recorded is `AlreadyExists`; a limit that no longer
    /// holds is `Refused`.
    #[tracing::instrument(name = "db.record_redemptions", skip_all, fields(db.system = self.db_system()))]
    pub async fn record_redemptions(
        &self,
        tenant: &TenantId,
        order: &RedeemOrder,
    ) -> Result<Vec<Redemption>, StoreError> {
        retrying(|| self.record_once(tenant, order)).await
    }

    async fn record_once(
        &self,
        tenant: &TenantId,
        order: &RedeemOrder,
    ) -> Result<Vec<Redemption>, StoreError> {
        let now = Timestamp::now();
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
                counted: draft.counted,
                customer_counted: draft.per_customer_limit.is_some(),
                created_at: now.micros(),
                updated_at: now.micros(),
                expires_at: if order.completed {
                    None
                } else {
                    order.expires_at.map(Timestamp::micros)
                },
            };
            redemption::Entity::insert(redemption::ActiveModel::from(model.clone()))
                .exec_without_returning(&txn)
                .await?;
            let kind = if order.completed {
                EventKind::RedeemedCompleted
            } else {
                EventKind::RedeemedPending
            };
            append_event(&txn, kind, &model).await?;
            recorded.push(model);
        }
        // Counters in coupon-id order, so two orders never lock the same coupons crosswise.
        for draft in &drafts {
            if draft.counted {
                let consumed = execute(
                    &txn,
                    "UPDATE coupons SET redemptions = redemptions + 1, budget_used = budget_used + $1 \
                     WHERE id = $2 AND (max_redemptions IS NULL OR redemptions < max_redemptions) \
                     AND (budget IS NULL OR budget_used + $1 <= budget)",
                    vec![draft.discount.into(), draft.coupon_id.clone().into()],
                )
                .await?;
                if consumed == 0 {
                    let reason = exhausted_limit(&txn, &draft.coupon_id).await?;
                    txn.rollback().await?;
                    return Err(StoreError::Refused {
                        code: draft.code.clone(),
                        reason,
                    });
                }
            }
            if let Some(limit) = draft.per_customer_limit {
                let consumed = execute(
                    &txn,
                    "INSERT INTO coupon_customer_usage (coupon_id, customer_key, redemptions) \
                     VALUES ($1, $2, 1) ON CONFLICT (coupon_id, customer_key) DO UPDATE \
                     SET redemptions = coupon_customer_usage.redemptions + 1 \
                     WHERE coupon_customer_usage.redemptions < $3",
                    vec![
                        draft.coupon_id.clone().into(),
                        order.customer_id.clone().into(),
                        limit.into(),
                    ],
                )
                .await?;
                if consumed == 0 {
                    txn.rollback().await?;
                    return Err(StoreError::Refused {
                        code: draft.code.clone(),
                        reason: Reason::CustomerLimitReached,
                    });
                }
            }
        }
        if order.completed {
            count_completed(
                &txn,
                tenant,
                &order.customer_id,
                &order.customer_email,
                drafts.len() as i64,
            )
            .await?;
        }
        txn.commit().await?;
        self.signal_events();
        recorded.into_iter().map(decode).collect()
    }

    /// Completes the order's pending redemptions (of `codes`, or all); completed ones stay so.
    #[tracing::instrument(name = "db.confirm_order", skip_all, fields(db.system = self.db_system()))]
    pub async fn confirm_order(
        &self,
        tenant: &TenantId,
        order_id: &str,
        codes: &[Code],
    ) -> Result<Vec<Redemption>, StoreError> {
        let pending: Vec<redemption::Model> = self
            .order_rows(tenant, order_id, codes)
            .await?
            .into_iter()
            .filter(|r| r.status == RedemptionStatus::Pending.as_str())
            .collect();
        for row in &pending {
            retrying(|| async {
                let now = Timestamp::now().micros();
                let txn = self.conn().begin().await?;
                let moved = execute(
                    &txn,
                    "UPDATE redemptions SET status = 'completed', expires_at = NULL, updated_at = $1 \
                     WHERE id = $2 AND status = 'pending'",
                    vec![now.into(), row.id.clone().into()],
                )
                .await?;
                if moved == 1 {
                    count_completed(&txn, tenant, &row.customer_id, &row.customer_email, 1).await?;
                    let after = redemption::Model {
                        status: RedemptionStatus::Completed.as_str().to_owned(),
                        expires_at: None,
                        updated_at: now,
                        ..row.clone()
                    };
                    append_event(&txn, EventKind::Confirmed, &after).await?;
                }
                txn.commit().await?;
                self.signal_events();
                Ok(())
            })
            .await?;
        }
        self.current(tenant, order_id, codes).await
    }

    /// Reverts the order's active redemptions (of `codes`, or all) and releases their usage.
    #[tracing::instrument(name = "db.revert_order", skip_all, fields(db.system = self.db_system()))]
    pub async fn revert_order(
        &self,
        tenant: &TenantId,
        order_id: &str,
        codes: &[Code],
    ) -> Result<Vec<Redemption>, StoreError> {
        let active: Vec<String> = self
            .order_redemptions(tenant, order_id, codes)
            .await?
            .into_iter()
            .filter(|r| r.redemption.status.is_active())
            .map(|r| r.redemption.id)
            .collect();
        for id in active {
            retrying(|| self.release(&id, RedemptionStatus::Reverted, None)).await?;
        }
        self.current(tenant, order_id, codes).await
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
            if retrying(|| self.release(&id, RedemptionStatus::Expired, Some(now))).await? {
                expired += 1;
            }
        }
        Ok(expired)
    }

    /// Moves one active redemption to `to` and gives back exactly the counters it consumed.
    /// With `due`, only a pending redemption whose reservation ended by then moves. Returns
    /// whether this call moved it.
    async fn release(
        &self,
        id: &str,
        to: RedemptionStatus,
        due: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        // A confirm may move the redemption between the read and the guarded update; then read
        // again and release from its new status.
        for _ in 0..ATTEMPTS {
            if let Some(released) = self.release_from_current(id, to, due).await? {
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
        due: Option<Timestamp>,
    ) -> Result<Option<bool>, StoreError> {
        let Some(current) = redemption::Entity::find_by_id(id.to_owned())
            .one(self.conn())
            .await?
        else {
            return Ok(Some(false));
        };
        let from = RedemptionStatus::parse(&current.status)
            .ok_or_else(|| StoreError::Corrupt(format!("redemption {id} status")))?;
        let movable = from.is_active() && (due.is_none() || from == RedemptionStatus::Pending);
        if !movable {
            return Ok(Some(false));
        }
        let now = Timestamp::now().micros();
        let txn = self.conn().begin().await?;
        // Guarded by the status read above: if another request moved it meanwhile, nothing
        // happens here and the caller sees the other's result.
        let moved = execute(
            &txn,
            "UPDATE redemptions SET status = $1, expires_at = NULL, updated_at = $2 \
             WHERE id = $3 AND status = $4 AND ($5 = 0 OR expires_at <= $6)",
            vec![
                to.as_str().into(),
                now.into(),
                id.into(),
                from.as_str().into(),
                i64::from(due.is_some()).into(),
                due.map(Timestamp::micros).unwrap_or(0).into(),
            ],
        )
        .await?;
        if moved == 0 {
            txn.rollback().await?;
            return Ok(None);
        }
        if current.counted {
            execute(
                &txn,
                "UPDATE coupons SET redemptions = redemptions - 1, budget_used = budget_used - $1 \
                 WHERE id = $2 AND redemptions > 0 AND budget_used >= $1",
                vec![current.discount.into(), current.coupon_id.clone().into()],
            )
            .await?;
        }
        if current.customer_counted {
            execute(
                &txn,
                "UPDATE coupon_customer_usage SET redemptions = redemptions - 1 \
                 WHERE coupon_id = $1 AND customer_key = $2 AND redemptions > 0",
                vec![
                    current.coupon_id.clone().into(),
                    current.customer_id.clone().into(),
                ],
            )
            .await?;
        }
        if from == RedemptionStatus::Completed {
            let tenant = TenantId(current.tenant_id.clone());
            count_completed(
                &txn,
                &tenant,
                &current.customer_id,
                &current.customer_email,
                -1,
            )
            .await?;
        }
        let kind = if to == RedemptionStatus::Expired {
            EventKind::Expired
        } else {
            EventKind::Reverted
        };
        let after = redemption::Model {
            status: to.as_str().to_owned(),
            expires_at: None,
            updated_at: now,
            ..current
        };
        append_event(&txn, kind, &after).await?;
        txn.commit().await?;
        self.signal_events();
        Ok(Some(true))
    }

    async fn current(
        &self,
        tenant: &TenantId,
        order_id: &str,
        codes: &[Code],
    ) -> Result<Vec<Redemption>, StoreError> {
        Ok(self
            .order_redemptions(tenant, order_id, codes)
            .await?
            .into_iter()
            .map(|r| r.redemption)
            .collect())
    }

    /// The tenant's redemption with this id.
    #[tracing::instrument(name = "db.get_redemption", skip_all, fields(db.system = self.db_system()))]
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
    #[tracing::instrument(name = "db.list_redemptions", skip_all, fields(db.system = self.db_system()))]
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

/// Which limit refused a counted redemption: read inside the refusing transaction.
async fn exhausted_limit(txn: &DatabaseTransaction, coupon_id: &str) -> Result<Reason, StoreError> {
    let row = txn
        .query_one_raw(statement(
            txn.get_database_backend(),
            "SELECT redemptions, max_redemptions FROM coupons WHERE id = $1",
            vec![coupon_id.into()],
        ))
        .await?
        .ok_or(StoreError::NotFound)?;
    let used: i64 = row.try_get("", "redemptions")?;
    let max: Option<i64> = row.try_get("", "max_redemptions")?;
    Ok(if max.is_some_and(|max| used >= max) {
        Reason::UsageLimitReached
    } else {
        Reason::BudgetExhausted
    })
}

/// Adds `delta` completed redemptions to the customer's stats, under the id and the e-mail.
async fn count_completed(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    customer_id: &str,
    email: &str,
    delta: i64,
) -> Result<(), StoreError> {
    for key in customer_keys(customer_id, email) {
        execute(
            txn,
            "INSERT INTO customer_stats (tenant_id, customer_key, completed_redemptions) \
             VALUES ($1, $2, MAX($3, 0)) ON CONFLICT (tenant_id, customer_key) DO UPDATE \
             SET completed_redemptions = MAX(customer_stats.completed_redemptions + $3, 0)",
            vec![tenant.0.clone().into(), key.into(), delta.into()],
        )
        .await?;
    }
    Ok(())
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
    })
}
