//! Prometheus metrics: calls by method and status with latency (unary calls and streams apart),
//! redemption and purchase outcomes, PIN stock, open event streams, database pool use, the
//! process's own figures and the build. Each server has its own registry, so several can run in
//! one process (as the tests do).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, OnceLock,
    },
    time::{Duration, Instant},
};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use prost::Message as _;

use crate::store::{Store, StoreError};

/// The `service` and `method` label of a call to a path the server does not serve, so that
/// made-up paths (sent before any authentication) cannot create series without bound. The name
/// is the OpenTelemetry RPC conventions' own for an unknown method.
pub const UNKNOWN: &str = "_OTHER";

/// How long the PIN stock figures may be reused before a scrape reads them again. Stock sold or
/// imported through this replica is read again at the next scrape; changes made through other
/// replicas show within this time.
const PIN_STOCK_MAX_AGE: Duration = Duration::from_secs(60);

/// Methods whose success changes PIN stock.
const STOCK_CHANGING_METHODS: [&str; 4] =
    ["Purchase", "ImportPins", "CreateProduct", "UpdateProduct"];

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Finished calls by service, method and gRPC status code (`OK`, `NOT_FOUND`, ...).
    pub rpc_requests: IntCounterVec,
    /// Unary call latency in seconds by service and method.
    pub rpc_duration: HistogramVec,
    /// How long streaming calls stayed open, in seconds, by service and method; apart from the
    /// unary latency, which minutes-long streams would otherwise swamp.
    pub rpc_stream_duration: HistogramVec,
    /// Redeem calls by outcome: redeemed, replayed, refused, duplicate, error.
    pub redemptions: IntCounterVec,
    /// Purchase calls by outcome: sold, replayed (an identical retry), refused, duplicate (the
    /// reference was used for a different purchase), error.
    pub purchases: IntCounterVec,
    /// WatchRedemptions streams open now.
    pub event_streams: IntGauge,
    pin_stock: IntGaugeVec,
    /// When the PIN stock was last read, behind an async lock so that scrapes arriving together
    /// read it once.
    pin_stock_read: tokio::sync::Mutex<Option<Instant>>,
    pin_stock_changed: AtomicBool,
    db_connections: IntGaugeVec,
    db_statements: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Arc<Self>, prometheus::Error> {
        // Not a prefixed registry: the process collector's `process_*` names are standard.
        let registry = Registry::new();
        let opts = |name: &str, help: &str| Opts::new(name, help).namespace("coupon");
        let rpc_requests = IntCounterVec::new(
            opts(
                "rpc_requests_total",
                "gRPC calls by service, method and status code",
            ),
            &["service", "method", "code"],
        )?;
        let rpc_duration = HistogramVec::new(
            HistogramOpts::new("rpc_duration_seconds", "Unary gRPC call latency")
                .namespace("coupon")
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
            &["service", "method"],
        )?;
        let rpc_stream_duration = HistogramVec::new(
            HistogramOpts::new(
                "rpc_stream_duration_seconds",
                "How long streaming gRPC calls stayed open",
            )
            .namespace("coupon")
            .buckets(vec![
                0.1, 1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 86400.0,
            ]),
            &["service", "method"],
        )?;
        let redemptions = IntCounterVec::new(
            opts("redemptions_total", "Redeem calls by outcome"),
            &["outcome"],
        )?;
        let purchases = IntCounterVec::new(
            opts("purchases_total", "PIN purchase calls by outcome"),
            &["outcome"],
        )?;
        let event_streams =
            IntGauge::with_opts(opts("event_streams_open", "WatchRedemptions streams open"))?;
        let pin_stock = IntGaugeVec::new(
            opts(
                "pin_stock",
                "Unsold, unexpired PINs per product, read from the shared database (every replica \
                 reports the same figure: aggregate with max, not sum)",
            ),
            &["tenant", "product"],
        )?;
        let db_connections = IntGaugeVec::new(
            opts("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )?;
        let db_statements =
            IntCounter::with_opts(opts("db_statements_total", "Database statements executed"))?;
        let build_info = IntGaugeVec::new(
            opts("build_info", "Always 1: the version of the running binary"),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        registry.register(Box::new(rpc_requests.clone()))?;
        registry.register(Box::new(rpc_duration.clone()))?;
        registry.register(Box::new(rpc_stream_duration.clone()))?;
        registry.register(Box::new(redemptions.clone()))?;
        registry.register(Box::new(purchases.clone()))?;
        registry.register(Box::new(event_streams.clone()))?;
        registry.register(Box::new(pin_stock.clone()))?;
        registry.register(Box::new(db_connections.clone()))?;
        registry.register(Box::new(db_statements.clone()))?;
        registry.register(Box::new(build_info))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Arc::new(Self {
            registry,
            rpc_requests,
            rpc_duration,
            rpc_stream_duration,
            redemptions,
            purchases,
            event_streams,
            pin_stock,
            pin_stock_read: tokio::sync::Mutex::new(None),
            pin_stock_changed: AtomicBool::new(false),
            db_connections,
            db_statements,
        }))
    }

    /// Counts a finished call: `code` is the gRPC status code's number.
    pub fn record_call(&self, method: &RpcMethod, code: i32, elapsed: Duration) {
        let labels = [method.service.as_str(), method.method.as_str()];
        self.rpc_requests
            .with_label_values(&[labels[0], labels[1], code_name(code)])
            .inc();
        let latency = if method.streaming {
            &self.rpc_stream_duration
        } else {
            &self.rpc_duration
        };
        latency
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
        if code == 0 && STOCK_CHANGING_METHODS.contains(&method.method.as_str()) {
            self.pin_stock_changed.store(true, Ordering::Relaxed);
        }
    }

    /// The text exposition, with the figures read from the database refreshed first. A database
    /// that cannot be read leaves the last figures in place: the scrape still reports the rest.
    pub async fn render(&self, store: &Store) -> Result<String, StoreError> {
        self.refresh_pin_stock(store).await;
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

    /// Reads the PIN stock when this replica changed it or the last reading is too old: one
    /// grouped statement per interval, not one per scrape.
    async fn refresh_pin_stock(&self, store: &Store) {
        let mut read_at = self.pin_stock_read.lock().await;
        let changed = self.pin_stock_changed.swap(false, Ordering::Relaxed);
        let fresh = read_at.is_some_and(|at| at.elapsed() < PIN_STOCK_MAX_AGE);
        if fresh && !changed {
            return;
        }
        *read_at = Some(Instant::now());
        match store.pin_stock().await {
            Ok(stock) => {
                self.pin_stock.reset();
                for (tenant, product, available) in stock {
                    self.pin_stock
                        .with_label_values(&[&tenant, &product])
                        .set(available);
                }
            }
            Err(error) => tracing::warn!(%error, "reading PIN stock for metrics failed"),
        }
    }
}

/// What the metrics and the call's span say about the method a path names.
#[derive(Clone, Debug)]
pub struct RpcMethod {
    /// Fully-qualified service name, or [`UNKNOWN`].
    pub service: String,
    /// Method name, or [`UNKNOWN`].
    pub method: String,
    /// Whether either side streams.
    pub streaming: bool,
}

impl RpcMethod {
    /// The method a request path (`/package.Service/Method`) names, if the server serves it.
    pub fn from_path(path: &str) -> Self {
        served_methods()
            .get(path)
            .cloned()
            .unwrap_or_else(|| RpcMethod {
                service: UNKNOWN.to_owned(),
                method: UNKNOWN.to_owned(),
                streaming: false,
            })
    }

    /// `service/method`, the span name the RPC conventions ask for.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.service, self.method)
    }
}

/// Every path the server serves, read once from the descriptor sets it registers: the
/// contract's, health's and reflection's.
fn served_methods() -> &'static HashMap<String, RpcMethod> {
    static METHODS: OnceLock<HashMap<String, RpcMethod>> = OnceLock::new();
    METHODS.get_or_init(|| {
        let sets = [
            crate::pb::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let mut methods = HashMap::new();
        for encoded in sets {
            // The sets are compiled in; one that does not decode only loses its labels.
            let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
                continue;
            };
            for file in set.file {
                for service in &file.service {
                    let service_name = match file.package() {
                        "" => service.name().to_owned(),
                        package => format!("{package}.{}", service.name()),
                    };
                    for method in &service.method {
                        methods.insert(
                            format!("/{service_name}/{}", method.name()),
                            RpcMethod {
                                service: service_name.clone(),
                                method: method.name().to_owned(),
                                streaming: method.client_streaming() || method.server_streaming(),
                            },
                        );
                    }
                }
            }
        }
        methods
    })
}

/// The gRPC status code's canonical name (`OK`, `ALREADY_EXISTS`), as dashboards expect it.
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        // grpc-status is a peer's text: a number outside the spec is reported, bounded, as this.
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_are_the_canonical_upper_snake() {
        assert_eq!(code_name(tonic::Code::Ok as i32), "OK");
        assert_eq!(
            code_name(tonic::Code::AlreadyExists as i32),
            "ALREADY_EXISTS"
        );
        assert_eq!(
            code_name(tonic::Code::Unauthenticated as i32),
            "UNAUTHENTICATED"
        );
        assert_eq!(code_name(99), "UNKNOWN");
    }

    #[test]
    fn served_paths_are_known_and_others_are_one_bucket() {
        let watch = RpcMethod::from_path("/coupons.v1.CouponService/WatchRedemptions");
        assert_eq!(watch.method, "WatchRedemptions");
        assert!(watch.streaming);
        let redeem = RpcMethod::from_path("/coupons.v1.CouponService/Redeem");
        assert!(!redeem.streaming);
        assert_eq!(
            RpcMethod::from_path("/grpc.health.v1.Health/Check").service,
            "grpc.health.v1.Health"
        );
        assert!(
            RpcMethod::from_path("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
                .streaming
        );
        let made_up = RpcMethod::from_path("/evil.Service/Method42");
        assert_eq!(
            (made_up.service.as_str(), made_up.method.as_str()),
            (UNKNOWN, UNKNOWN)
        );
    }
}
