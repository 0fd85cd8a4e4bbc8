//! Logging and tracing: structured `tracing` output (text for people, JSON for collectors) and,
//! when an OTLP endpoint is configured, spans exported over OTLP/gRPC. The returned handle must be
//! shut down on exit so buffered spans are flushed.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider, Resource};
use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer};

use crate::config::{LogFormat, LogSettings};

/// Installed telemetry; [`shutdown`](Self::shutdown) flushes what is still buffered.
#[derive(Debug)]
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered and stops the exporter.
    pub async fn shutdown(self) {
        let Some(provider) = self.tracer_provider else {
            return;
        };
        // The SDK blocks while it flushes; keep that off the async workers.
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match flushed {
            Ok(Ok(())) => tracing::info!("telemetry flushed"),
            Ok(Err(error)) => tracing::warn!(%error, "flushing telemetry failed"),
            Err(error) => tracing::warn!(%error, "flushing telemetry panicked"),
        }
    }
}

/// Installs the global subscriber, and the OTLP exporter when an endpoint is set.
pub fn init(settings: &LogSettings) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_new(&settings.log_filter)
        .map_err(|e| anyhow::anyhow!("invalid log filter {:?}: {e}", settings.log_filter))?;
    let output = match settings.log_format {
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer_provider = match settings.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        None => None,
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| anyhow::anyhow!("OTLP exporter for {endpoint}: {e}"))?;
            Some(
                SdkTracerProvider::builder()
                    .with_resource(
                        Resource::builder()
                            .with_service_name("coupon-service")
                            .build(),
                    )
                    .with_batch_exporter(exporter)
                    .build(),
            )
        }
    };
    let traces = tracer_provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer("coupon-service"))
    });
    tracing_subscriber::registry()
        .with(output)
        .with(traces)
        .with(filter)
        .try_init()?;
    Ok(Telemetry { tracer_provider })
}
