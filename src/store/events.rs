//! The outbox: events appended in the state change's own transaction, and read back gap-free.
//!
//! On PostgreSQL transactions may commit out of id order, so each row records its transaction id
//! and readers take only rows of transactions older than every transaction of this database still
//! running (the [outbox horizon](Store::outbox_horizon)), in (txid, id) order. No later commit can
//! then land behind a delivered position. SQLite has one writer at a time, so its rows commit in
//! id order (txid is 0).

use std::sync::Arc;

use sea_orm::{
    sea_query::{Expr, ExprTrait, OnConflict, Order, Query, SelectStatement},
    ConnectionTrait, DatabaseTransaction, DeriveIden, QueryResult,
};
use tokio::sync::Notify;

use super::{
    dialect::Dialect,
    entities::{redemption, setting},
    Store, StoreError,
};
use crate::domain::{
    event::{EventKind, EventPosition, RedemptionEvent},
    redemption::{Redemption, RedemptionStatus},
    Code, Currency, TenantId, Timestamp,
};

/// PostgreSQL channel that carries commit wake-ups between replicas.
pub const EVENTS_CHANNEL: &str = "coupon_events";
const PRUNED_THROUGH: &str = "events_pruned_through";

/// The outbox table.
#[derive(Clone, Copy, DeriveIden)]
enum RedemptionEvents {
    Table,
    Id,
    Txid,
    TenantId,
    Kind,
    OccurredAt,
    RedemptionId,
    CouponId,
    Code,
    CampaignId,
    OrderId,
    CustomerId,
    Discount,
    Currency,
    Status,
    RequestId,
    CreatedAt,
    UpdatedAt,
    ExpiresAt,
    Automatic,
}

/// The columns an event is read with.
const COLUMNS: [RedemptionEvents; 19] = [
    RedemptionEvents::Id,
    RedemptionEvents::Txid,
    RedemptionEvents::TenantId,
    RedemptionEvents::Kind,
    RedemptionEvents::OccurredAt,
    RedemptionEvents::RedemptionId,
    RedemptionEvents::CouponId,
    RedemptionEvents::Code,
    RedemptionEvents::CampaignId,
    RedemptionEvents::OrderId,
    RedemptionEvents::CustomerId,
    RedemptionEvents::Discount,
    RedemptionEvents::Currency,
    RedemptionEvents::Status,
    RedemptionEvents::RequestId,
    RedemptionEvents::CreatedAt,
    RedemptionEvents::UpdatedAt,
    RedemptionEvents::ExpiresAt,
    RedemptionEvents::Automatic,
];

/// Appends the event of a state change inside its transaction. Replicas are told after the
/// commit (see [`Store::signal_events`]): a NOTIFY inside the transaction would take
/// PostgreSQL's global notification lock at every commit.
pub(super) async fn append_event(
    txn: &DatabaseTransaction,
    dialect: Dialect,
    kind: EventKind,
    row: &redemption::Model,
    now: Timestamp,
) -> Result<(), StoreError> {
    let insert = Query::insert()
        .into_table(RedemptionEvents::Table)
        .columns(COLUMNS.into_iter().skip(1))
        .values_panic([
            dialect.outbox_txid(),
            row.tenant_id.as_str().into(),
            kind.as_str().into(),
            now.micros().into(),
            row.id.as_str().into(),
            row.coupon_id.as_str().into(),
            row.code.as_str().into(),
            row.campaign_id.clone().into(),
            row.order_id.as_str().into(),
            row.customer_id.as_str().into(),
            row.discount.into(),
            row.currency.as_str().into(),
            row.status.as_str().into(),
            row.request_id.as_str().into(),
            row.created_at.into(),
            row.updated_at.into(),
            row.expires_at.into(),
            row.automatic.into(),
        ])
        .to_owned();
    txn.execute(&insert).await?;
    Ok(())
}

/// Events after `after` in feed order, (txid, id).
fn after_position(after: EventPosition) -> SelectStatement {
    Query::select()
        .columns(COLUMNS)
        .from(RedemptionEvents::Table)
        .and_where(
            Expr::col(RedemptionEvents::Txid)
                .gt(after.txid)
                .or(Expr::col(RedemptionEvents::Txid)
                    .eq(after.txid)
                    .and(Expr::col(RedemptionEvents::Id).gt(after.id))),
        )
        .to_owned()
}

impl Store {
    /// Called after a transaction with events commits: wakes this process's readers, and has
    /// the replicas told (see [`announce_commits`](Self::announce_commits)).
    pub(super) fn signal_events(&self) {
        self.events_committed.notify_one();
        self.commits_to_announce.notify_one();
    }

    /// On PostgreSQL, tells every replica of this process's commits until the connection fails:
    /// one NOTIFY after each burst of commits, outside their transactions. Never returns on
    /// SQLite, whose writers are all in this process.
    pub async fn announce_commits(&self) -> Result<(), StoreError> {
        if !self.dialect.has_replicas() {
            return std::future::pending().await;
        }
        let notify = Query::select()
            .expr(Expr::cust_with_values(
                "pg_notify($1, '')",
                [EVENTS_CHANNEL],
            ))
            .to_owned();
        loop {
            self.commits_to_announce.notified().await;
            self.conn().query_one(&notify).await?;
        }
    }

    /// Notified after this process commits events, and on PostgreSQL after any replica does
    /// (see [`forward_event_notifications`](Self::forward_event_notifications)).
    pub fn events_committed(&self) -> Arc<Notify> {
        self.events_committed.clone()
    }

    /// On PostgreSQL, forwards every replica's commit notifications to
    /// [`events_committed`](Self::events_committed) until the connection fails; returns
    /// immediately on SQLite, whose writers are all in this process.
    pub async fn forward_event_notifications(&self) -> Result<(), StoreError> {
        if !self.dialect.has_replicas() {
            return std::future::pending().await;
        }
        let mut listener = sea_orm::sqlx::postgres::PgListener::connect(&self.url)
            .await
            .map_err(|e| StoreError::Unavailable(sea_orm::DbErr::Custom(e.to_string())))?;
        listener
            .listen(EVENTS_CHANNEL)
            .await
            .map_err(|e| StoreError::Unavailable(sea_orm::DbErr::Custom(e.to_string())))?;
        loop {
            listener
                .recv()
                .await
                .map_err(|e| StoreError::Unavailable(sea_orm::DbErr::Custom(e.to_string())))?;
            self.events_committed.notify_one();
        }
    }

    /// Up to `limit` events after `after` that can no longer be preceded by a later commit, in
    /// feed order; only `tenant`'s when given.
    pub async fn events_after(
        &self,
        after: EventPosition,
        tenant: Option<&TenantId>,
        limit: u64,
    ) -> Result<Vec<RedemptionEvent>, StoreError> {
        let mut query = after_position(after);
        if let Some(tenant) = tenant {
            query.and_where(Expr::col(RedemptionEvents::TenantId).eq(tenant.0.as_str()));
        }
        if let Some(horizon) = self.outbox_horizon().await? {
            query.and_where(Expr::col(RedemptionEvents::Txid).lt(horizon));
        }
        query
            .order_by(RedemptionEvents::Txid, Order::Asc)
            .order_by(RedemptionEvents::Id, Order::Asc)
            .limit(limit);
        let rows = self.conn().query_all(&query).await?;
        rows.iter().map(decode).collect()
    }

    /// The position of the newest event no later commit can precede: watching from here sees only
    /// what happens next.
    pub async fn latest_event_position(&self) -> Result<EventPosition, StoreError> {
        let mut query = Query::select()
            .columns([RedemptionEvents::Txid, RedemptionEvents::Id])
            .from(RedemptionEvents::Table)
            .order_by(RedemptionEvents::Txid, Order::Desc)
            .order_by(RedemptionEvents::Id, Order::Desc)
            .limit(1)
            .to_owned();
        if let Some(horizon) = self.outbox_horizon().await? {
            query.and_where(Expr::col(RedemptionEvents::Txid).lt(horizon));
        }
        let row = self.conn().query_one(&query).await?;
        Ok(match row {
            Some(row) => EventPosition {
                txid: row.try_get("", "txid")?,
                id: row.try_get("", "id")?,
            },
            None => self.events_pruned_through().await?.unwrap_or_default(),
        })
    }

    /// On PostgreSQL, a transaction id such that every transaction below it that could write this
    /// database's outbox has finished: rows with a smaller `txid` that a later statement cannot
    /// see will never appear. `None` on SQLite, where rows commit in id order.
    ///
    /// `pg_snapshot_xmin` would also do, but it counts every transaction of the cluster, so one
    /// held open in an unrelated database stalled delivery for as long as it stayed open. A
    /// transaction only ever writes its own database, so this takes the transactions in progress
    /// in this statement's snapshot, keeps those that a backend (or a prepared transaction) of
    /// this database still holds when looked up afterwards, and returns the oldest of them, else
    /// the snapshot's xmax. A transaction left out was, at the lookup, finished or elsewhere, so
    /// the rows query, a later statement with a later snapshot, sees all it committed below the
    /// horizon. Backends' `backend_xid` is readable without `pg_read_all_stats`.
    async fn outbox_horizon(&self) -> Result<Option<i64>, StoreError> {
        match self.dialect {
            Dialect::Postgres => {}
            Dialect::Sqlite => return Ok(None),
        }
        const HORIZON: &str = "WITH snap AS (SELECT pg_current_snapshot() AS s) \
            SELECT COALESCE(\
              (SELECT min(x::text::bigint) FROM snap, pg_snapshot_xip(snap.s) AS x \
                WHERE x::xid IN (\
                  SELECT backend_xid FROM pg_stat_activity \
                   WHERE datname = current_database() AND backend_xid IS NOT NULL \
                  UNION ALL \
                  SELECT transaction FROM pg_prepared_xacts WHERE database = current_database())), \
              (SELECT pg_snapshot_xmax(snap.s)::text::bigint FROM snap)) AS horizon";
        let row = self
            .conn()
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                HORIZON,
            ))
            .await?
            .ok_or_else(|| StoreError::Corrupt("outbox horizon query returned no row".into()))?;
        Ok(Some(row.try_get("", "horizon")?))
    }

    /// Deletes every event at or before the newest one that occurred before `cutoff`, and records
    /// that position: resuming from before it is out of range. Returns how many were deleted.
    pub async fn prune_events(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        let newest_old = Query::select()
            .columns([RedemptionEvents::Txid, RedemptionEvents::Id])
            .from(RedemptionEvents::Table)
            .and_where(Expr::col(RedemptionEvents::OccurredAt).lt(cutoff.micros()))
            .order_by(RedemptionEvents::Txid, Order::Desc)
            .order_by(RedemptionEvents::Id, Order::Desc)
            .limit(1)
            .to_owned();
        let Some(row) = self.conn().query_one(&newest_old).await? else {
            return Ok(0);
        };
        let horizon = EventPosition {
            txid: row.try_get("", "txid")?,
            id: row.try_get("", "id")?,
        };
        let encoded = format!("{}:{}", horizon.txid, horizon.id);
        let delete = Query::delete()
            .from_table(RedemptionEvents::Table)
            .cond_where(
                Expr::col(RedemptionEvents::Txid)
                    .lt(horizon.txid)
                    .or(Expr::col(RedemptionEvents::Txid)
                        .eq(horizon.txid)
                        .and(Expr::col(RedemptionEvents::Id).lte(horizon.id))),
            )
            .to_owned();
        let deleted = self.conn().execute(&delete).await?.rows_affected();
        let mark = Query::insert()
            .into_table(setting::Entity)
            .columns([setting::Column::Name, setting::Column::Value])
            .values_panic([PRUNED_THROUGH.into(), encoded.into()])
            .on_conflict(
                OnConflict::column(setting::Column::Name)
                    .update_column(setting::Column::Value)
                    .to_owned(),
            )
            .to_owned();
        self.conn().execute(&mark).await?;
        Ok(deleted)
    }

    /// The newest pruned position, if events were ever pruned.
    pub async fn events_pruned_through(&self) -> Result<Option<EventPosition>, StoreError> {
        use sea_orm::EntityTrait;
        let Some(row) = setting::Entity::find_by_id(PRUNED_THROUGH.to_owned())
            .one(self.conn())
            .await?
        else {
            return Ok(None);
        };
        let parsed = row.value.split_once(':').and_then(|(t, i)| {
            Some(EventPosition {
                txid: t.parse().ok()?,
                id: i.parse().ok()?,
            })
        });
        parsed
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt("events_pruned_through".into()))
    }
}

fn decode(row: &QueryResult) -> Result<RedemptionEvent, StoreError> {
    let id: i64 = row.try_get("", "id")?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("event {id} {what}"));
    let kind: String = row.try_get("", "kind")?;
    let code: String = row.try_get("", "code")?;
    let currency: String = row.try_get("", "currency")?;
    let status: String = row.try_get("", "status")?;
    Ok(RedemptionEvent {
        position: EventPosition {
            txid: row.try_get("", "txid")?,
            id,
        },
        tenant: TenantId(row.try_get("", "tenant_id")?),
        kind: EventKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
        occurred_at: Timestamp(row.try_get("", "occurred_at")?),
        redemption: Redemption {
            id: row.try_get("", "redemption_id")?,
            coupon_id: row.try_get("", "coupon_id")?,
            code: Code::parse(&code).map_err(|_| corrupt("code"))?,
            campaign_id: row.try_get("", "campaign_id")?,
            order_id: row.try_get("", "order_id")?,
            customer_id: row.try_get("", "customer_id")?,
            discount: row.try_get("", "discount")?,
            currency: Currency::parse(&currency).map_err(|_| corrupt("currency"))?,
            status: RedemptionStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
            request_id: row.try_get("", "request_id")?,
            created_at: Timestamp(row.try_get("", "created_at")?),
            updated_at: Timestamp(row.try_get("", "updated_at")?),
            expires_at: row.try_get::<Option<i64>>("", "expires_at")?.map(Timestamp),
            automatic: row.try_get("", "automatic")?,
        },
    })
}
