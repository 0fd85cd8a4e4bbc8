//! Logging and tracing: structured `tracing` output (text for people, JSON for collectors) and,
//! when an OTLP endpoint is configured, spans exported over OTLP/gRPC (TLS for `https://`). The
//! returned handle must be shut down on exit so buffered spans are flushed; it reports whether
//! they reached the collector.

use std::{
    io::IsTerminal as _,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use opentelemetry::{trace::TracerProvider as _, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    propagation::TraceContextPropagator,
    trace::{SdkTracerProvider, SpanData, SpanExporter},
    Resource,
};
use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer};

use crate::config::{LogFormat, LogSettings};

/// The target of the one-line-per-call access log (`coupon_service::access=off` silences it).
pub const ACCESS_LOG_TARGET: &str = "coupon_service::access";

/// The service name spans carry unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` names one.
const DEFAULT_SERVICE_NAME: &str = "coupon-service";

/// At most one warning about failed exports per this interval; the failures in between are
/// counted into the next one.
const EXPORT_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Installed telemetry; [`shutdown`](Self::shutdown) flushes what is still buffered.
#[derive(Debug)]
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    exports: Arc<ExportHealth>,
}

impl Telemetry {
    /// Exports the spans still buffered, stops the exporter, and says whether the collector took
    /// the last spans sent to it.
    pub async fn shutdown(self) {
        let Some(provider) = self.tracer_provider else {
            return;
        };
        // The SDK blocks while it flushes; keep that off the async workers.
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        let failed_batches = self.exports.failed_total.load(Ordering::Relaxed);
        match flushed {
            Ok(Ok(())) if !self.exports.last_failed.load(Ordering::Relaxed) => {
                tracing::info!(failed_batches, "telemetry flushed")
            }
            Ok(Ok(())) => tracing::warn!(
                failed_batches,
                "flushing telemetry failed: the collector did not take the last spans"
            ),
            Ok(Err(error)) => tracing::warn!(%error, failed_batches, "flushing telemetry failed"),
            Err(error) => tracing::warn!(%error, "flushing telemetry panicked"),
        }
    }
}

/// Installs the global subscriber, and the OTLP exporter when an endpoint is set.
pub fn init(settings: &LogSettings) -> anyhow::Result<Telemetry> {
    let mut filter = EnvFilter::try_new(&settings.log_filter)
        .map_err(|e| anyhow::anyhow!("invalid log filter {:?}: {e}", settings.log_filter))?;
    if !settings.access_log {
        filter = filter.add_directive(format!("{ACCESS_LOG_TARGET}=off").parse()?);
    }
    // Colour codes only make sense to a terminal; in a file or a pod's log they are noise.
    let ansi = std::io::stderr().is_terminal();
    let output = match settings.log_format {
        LogFormat::Text => fmt::layer()
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let exports = Arc::new(ExportHealth::default());
    let tracer_provider = match settings.traces_endpoint() {
        None => None,
        Some(endpoint) => Some(tracer_provider(settings, endpoint, exports.clone())?),
    };
    let traces = tracer_provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer(DEFAULT_SERVICE_NAME))
    });
    tracing_subscriber::registry()
        .with(output)
        .with(traces)
        .with(filter)
        .try_init()?;
    Ok(Telemetry {
        tracer_provider,
        exports,
    })
}

fn tracer_provider(
    settings: &LogSettings,
    endpoint: &str,
    exports: Arc<ExportHealth>,
) -> anyhow::Result<SdkTracerProvider> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint);
    if endpoint.starts_with("https://") {
        exporter = exporter.with_tls_config(collector_tls(settings)?);
    }
    let exporter = exporter
        .build()
        .map_err(|e| anyhow::anyhow!("OTLP exporter for {endpoint}: {e}"))?;
    // The SDK's detectors read OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; ours is only the
    // name for when neither gives one.
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::new("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let mut resource = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if !named {
        resource = resource.with_service_name(DEFAULT_SERVICE_NAME);
    }
    Ok(SdkTracerProvider::builder()
        .with_resource(resource.build())
        .with_batch_exporter(ReportingExporter {
            inner: exporter,
            health: exports,
        })
        .build())
}

/// TLS to the collector: the public web roots, plus the CA of OTEL_EXPORTER_OTLP_CERTIFICATE for
/// a private collector, and a client certificate when one is configured.
fn collector_tls(settings: &LogSettings) -> anyhow::Result<tonic::transport::ClientTlsConfig> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let mut tls = ClientTlsConfig::new().with_webpki_roots();
    if let Some(ca) = &settings.otlp_certificate {
        tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    if let (Some(cert), Some(key)) = (&settings.otlp_client_certificate, &settings.otlp_client_key)
    {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(tls)
}

/// How exports to the collector are going.
#[derive(Debug, Default)]
struct ExportHealth {
    /// Whether the latest export failed.
    last_failed: AtomicBool,
    /// Batches that failed since start.
    failed_total: AtomicU64,
    /// Batches that failed since the last warning.
    failed_unreported: AtomicU64,
    /// When the last warning was logged.
    warned_at: Mutex<Option<Instant>>,
}

impl ExportHealth {
    fn observe(&self, result: &OTelSdkResult) {
        let Err(error) = result else {
            if self.last_failed.swap(false, Ordering::Relaxed) {
                tracing::info!("exporting spans works again");
            }
            return;
        };
        self.last_failed.store(true, Ordering::Relaxed);
        self.failed_total.fetch_add(1, Ordering::Relaxed);
        let unreported = self.failed_unreported.fetch_add(1, Ordering::Relaxed) + 1;
        let Ok(mut warned_at) = self.warned_at.lock() else {
            return;
        };
        if warned_at.is_some_and(|at| at.elapsed() < EXPORT_WARNING_INTERVAL) {
            return;
        }
        *warned_at = Some(Instant::now());
        self.failed_unreported.store(0, Ordering::Relaxed);
        tracing::warn!(%error, failed_batches = unreported, "exporting spans failed");
    }
}

/// The OTLP exporter, reporting failures and giving database spans their client conventions.
#[derive(Debug)]
struct ReportingExporter<E> {
    inner: E,
    health: Arc<ExportHealth>,
}

impl<E: SpanExporter> SpanExporter for ReportingExporter<E> {
    async fn export(&self, mut batch: Vec<SpanData>) -> OTelSdkResult {
        batch.iter_mut().for_each(database_client_span);
        let result = self.inner.export(batch).await;
        self.health.observe(&result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The store's spans (`db.<operation>` with `db.system` and the main table as
/// `db.collection.name`) are calls to the database: the database client conventions make them
/// CLIENT spans with `db.system.name` and `db.operation.name`. Those are set here, once, rather
/// than at each of the store's span sites.
fn database_client_span(span: &mut SpanData) {
    let Some(system) = span
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "db.system")
        .map(|kv| kv.value.clone())
    else {
        return;
    };
    span.span_kind = opentelemetry::trace::SpanKind::Client;
    let operation = span
        .name
        .strip_prefix("db.")
        .unwrap_or(&span.name)
        .to_owned();
    span.attributes
        .push(KeyValue::new("db.system.name", system));
    span.attributes
        .push(KeyValue::new("db.operation.name", operation));
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use opentelemetry_sdk::error::OTelSdkError;

    use super::*;

    #[test]
    fn export_failures_are_warned_about_once_per_interval_and_counted() {
        let health = ExportHealth::default();
        let failure = || {
            Err(OTelSdkError::InternalFailure(
                "collector unreachable".into(),
            ))
        };
        health.observe(&failure());
        let first_warning = health.warned_at.lock().unwrap().expect("warned at once");
        for _ in 0..4 {
            health.observe(&failure());
        }
        assert_eq!(
            *health.warned_at.lock().unwrap(),
            Some(first_warning),
            "no second warning within the interval"
        );
        assert_eq!(health.failed_unreported.load(Ordering::Relaxed), 4);
        assert_eq!(health.failed_total.load(Ordering::Relaxed), 5);
        assert!(health.last_failed.load(Ordering::Relaxed));
        health.observe(&Ok(()));
        assert!(!health.last_failed.load(Ordering::Relaxed), "recovered");
    }

    #[test]
    fn store_spans_become_database_client_spans() {
        let span_with = |name: &'static str, attributes: Vec<KeyValue>| SpanData {
            span_context: opentelemetry::trace::SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: opentelemetry::trace::SpanKind::Internal,
            name: Cow::Borrowed(name),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes,
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: opentelemetry::trace::Status::Unset,
            instrumentation_scope: Default::default(),
        };
        let mut store = span_with(
            "db.sell_pin",
            vec![KeyValue::new("db.system", "postgresql")],
        );
        database_client_span(&mut store);
        assert_eq!(store.span_kind, opentelemetry::trace::SpanKind::Client);
        let value = |span: &SpanData, key: &str| {
            span.attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.as_str().into_owned())
        };
        assert_eq!(
            value(&store, "db.operation.name").as_deref(),
            Some("sell_pin")
        );
        assert_eq!(
            value(&store, "db.system.name").as_deref(),
            Some("postgresql")
        );

        let mut other = span_with("coupons.v1.CouponService/Redeem", vec![]);
        database_client_span(&mut other);
        assert_eq!(other.span_kind, opentelemetry::trace::SpanKind::Internal);
        assert!(other.attributes.is_empty());
    }
}
