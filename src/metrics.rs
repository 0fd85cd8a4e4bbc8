//! Prometheus metrics: calls by method and status with latency, redemption outcomes, PIN stock,
//! open event streams and database pool use. Each server has its own registry, so several can
//! run in one process (as the tests do).

use std::sync::Arc;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::store::{Store, StoreError};

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Finished calls by service, method and gRPC status code name.
    pub rpc_requests: IntCounterVec,
    /// Call latency in seconds by service and method.
    pub rpc_duration: HistogramVec,
    /// Redeem calls by outcome: redeemed, replayed, refused, duplicate, error.
    pub redemptions: IntCounterVec,
    /// Purchase calls by outcome: sold, replayed, refused, error.
    pub purchases: IntCounterVec,
    /// WatchRedemptions streams open now.
    pub event_streams: IntGauge,
    pin_stock: IntGaugeVec,
    db_connections: IntGaugeVec,
    db_statements: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Arc<Self>, prometheus::Error> {
        let registry = Registry::new_custom(Some("coupon".into()), None)?;
        let rpc_requests = IntCounterVec::new(
            Opts::new(
                "rpc_requests_total",
                "gRPC calls by service, method and status code",
            ),
            &["service", "method", "code"],
        )?;
        let rpc_duration = HistogramVec::new(
            HistogramOpts::new("rpc_duration_seconds", "gRPC call latency").buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["service", "method"],
        )?;
        let redemptions = IntCounterVec::new(
            Opts::new("redemptions_total", "Redeem calls by outcome"),
            &["outcome"],
        )?;
        let purchases = IntCounterVec::new(
            Opts::new("purchases_total", "PIN purchase calls by outcome"),
            &["outcome"],
        )?;
        let event_streams = IntGauge::new("event_streams_open", "WatchRedemptions streams open")?;
        let pin_stock = IntGaugeVec::new(
            Opts::new("pin_stock", "Unsold, unexpired PINs per product"),
            &["tenant", "product"],
        )?;
        let db_connections = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )?;
        let db_statements = IntCounter::new("db_statements_total", "Database statements executed")?;
        registry.register(Box::new(rpc_requests.clone()))?;
        registry.register(Box::new(rpc_duration.clone()))?;
        registry.register(Box::new(redemptions.clone()))?;
        registry.register(Box::new(purchases.clone()))?;
        registry.register(Box::new(event_streams.clone()))?;
        registry.register(Box::new(pin_stock.clone()))?;
        registry.register(Box::new(db_connections.clone()))?;
        registry.register(Box::new(db_statements.clone()))?;
        Ok(Arc::new(Self {
            registry,
            rpc_requests,
            rpc_duration,
            redemptions,
            purchases,
            event_streams,
            pin_stock,
            db_connections,
            db_statements,
        }))
    }

    /// The text exposition, with the figures read from the database refreshed first.
    pub async fn render(&self, store: &Store) -> Result<String, StoreError> {
        self.pin_stock.reset();
        for (tenant, product, available) in store.pin_stock().await? {
            self.pin_stock
                .with_label_values(&[&tenant, &product])
                .set(available);
        }
        let (open, idle) = store.pool_use();
        self.db_connections
            .with_label_values(&["idle"])
            .set(idle as i64);
        self.db_connections
            .with_label_values(&["in_use"])
            .set(open as i64 - idle as i64);
        let executed = store.statements_executed();
        self.db_statements
            .inc_by(executed.saturating_sub(self.db_statements.get()));
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .map_err(|e| StoreError::Corrupt(format!("metrics encoding: {e}")))?;
        String::from_utf8(text).map_err(|e| StoreError::Corrupt(format!("metrics encoding: {e}")))
    }
}
