//! The outbox: events appended in the state change's own transaction, and read back gap-free.
//!
//! On PostgreSQL transactions may commit out of id order, so each row records its transaction id
//! and readers take only rows of transactions older than every transaction still running
//! (`pg_snapshot_xmin`), in (txid, id) order. No later commit can then land behind a delivered
//! position. SQLite has one writer at a time, so its rows commit in id order (txid is 0).

use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, QueryResult, Value};
use tokio::sync::Notify;

use super::{
    entities::{redemption, setting},
    sql::statement,
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

const COLUMNS: &str = "id, txid, tenant_id, kind, occurred_at, redemption_id, coupon_id, code, \
    campaign_id, order_id, customer_id, discount, currency, status, request_id, created_at, \
    updated_at, expires_at";

/// Appends the event of a state change inside its transaction; on PostgreSQL the commit also
/// notifies every replica.
pub(super) async fn append_event(
    txn: &DatabaseTransaction,
    kind: EventKind,
    row: &redemption::Model,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    let txid = match backend {
        DbBackend::Postgres => "pg_current_xact_id()::text::bigint",
        _ => "0",
    };
    let sql = format!(
        "INSERT INTO redemption_events (txid, tenant_id, kind, occurred_at, redemption_id, \
         coupon_id, code, campaign_id, order_id, customer_id, discount, currency, status, \
         request_id, created_at, updated_at, expires_at) VALUES ({txid}, $1, $2, $3, $4, $5, $6, \
         $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    );
    let values: Vec<Value> = vec![
        row.tenant_id.clone().into(),
        kind.as_str().into(),
        Timestamp::now().micros().into(),
        row.id.clone().into(),
        row.coupon_id.clone().into(),
        row.code.clone().into(),
        row.campaign_id.clone().into(),
        row.order_id.clone().into(),
        row.customer_id.clone().into(),
        row.discount.into(),
        row.currency.clone().into(),
        row.status.clone().into(),
        row.request_id.clone().into(),
        row.created_at.into(),
        row.updated_at.into(),
        row.expires_at.into(),
    ];
    txn.execute_raw(statement(backend, &sql, values)).await?;
    if backend == DbBackend::Postgres {
        // Delivered at commit, and only if the transaction commits.
        txn.execute_unprepared(&format!("NOTIFY {EVENTS_CHANNEL}"))
            .await?;
    }
    Ok(())
}

impl Store {
    /// Wakes whoever waits for committed events in this process.
    pub(super) fn signal_events(&self) {
        self.events_committed.notify_one();
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
        if self.backend() != DbBackend::Postgres {
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
        let backend = self.backend();
        let horizon = match backend {
            DbBackend::Postgres => {
                "AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
            }
            _ => "",
        };
        let mut values: Vec<Value> =
            vec![after.txid.into(), after.id.into(), (limit as i64).into()];
        let tenant_filter = match tenant {
            Some(tenant) => {
                values.push(tenant.0.clone().into());
                "AND tenant_id = $4"
            }
            None => "",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM redemption_events WHERE (txid > $1 OR (txid = $1 AND id > $2)) \
             {horizon} {tenant_filter} ORDER BY txid, id LIMIT $3"
        );
        let rows = self
            .conn()
            .query_all_raw(statement(backend, &sql, values))
            .await?;
        rows.iter().map(decode).collect()
    }

    /// The position of the newest event no later commit can precede: watching from here sees only
    /// what happens next.
    pub async fn latest_event_position(&self) -> Result<EventPosition, StoreError> {
        let horizon = match self.backend() {
            DbBackend::Postgres => {
                "WHERE txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
            }
            _ => "",
        };
        let sql = format!(
            "SELECT txid, id FROM redemption_events {horizon} ORDER BY txid DESC, id DESC LIMIT 1"
        );
        let row = self
            .conn()
            .query_one_raw(statement(self.backend(), &sql, vec![]))
            .await?;
        Ok(match row {
            Some(row) => EventPosition {
                txid: row.try_get("", "txid")?,
                id: row.try_get("", "id")?,
            },
            None => self.events_pruned_through().await?.unwrap_or_default(),
        })
    }

    /// Deletes every event at or before the newest one that occurred before `cutoff`, and records
    /// that position: resuming from before it is out of range. Returns how many were deleted.
    pub async fn prune_events(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        let backend = self.backend();
        let newest_old = self
            .conn()
            .query_one_raw(statement(
                backend,
                "SELECT txid, id FROM redemption_events WHERE occurred_at < $1 \
                 ORDER BY txid DESC, id DESC LIMIT 1",
                vec![cutoff.micros().into()],
            ))
            .await?;
        let Some(row) = newest_old else {
            return Ok(0);
        };
        let horizon = EventPosition {
            txid: row.try_get("", "txid")?,
            id: row.try_get("", "id")?,
        };
        let encoded = format!("{}:{}", horizon.txid, horizon.id);
        let deleted = self
            .conn()
            .execute_raw(statement(
                backend,
                "DELETE FROM redemption_events WHERE txid < $1 OR (txid = $1 AND id <= $2)",
                vec![horizon.txid.into(), horizon.id.into()],
            ))
            .await?
            .rows_affected();
        let mark = statement(
            backend,
            "INSERT INTO settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = $2",
            vec![PRUNED_THROUGH.into(), encoded.into()],
        );
        self.conn().execute_raw(mark).await?;
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
        },
    })
}
