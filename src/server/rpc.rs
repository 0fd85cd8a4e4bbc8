//! Per-call telemetry as a tower layer: one server span per call following the OpenTelemetry RPC
//! conventions (`rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`), a child of the
//! caller's W3C `traceparent`, carrying the `trace_id` and `span_id` that log lines then show;
//! call counts and latency by method and status; and one access-log line per call.
//!
//! Paths the server does not serve are labelled `_OTHER`: they arrive before authentication, and
//! must not create metric series or span names at a caller's whim.
//!
//! A gRPC status arrives in the response headers (errors) or in the trailers at the end of the
//! body (successes, streams), so the call is finished when whichever comes first is seen, and a
//! body dropped before its trailers is a cancelled call.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
    time::Instant,
};

use http::HeaderMap;
use http_body::{Body, Frame};
use opentelemetry::{
    propagation::Extractor,
    trace::{TraceContextExt as _, TraceId},
};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    metrics::{code_name, Metrics, RpcMethod},
    telemetry::ACCESS_LOG_TARGET,
};

/// Adds telemetry to every call.
#[derive(Clone, Debug)]
pub struct RpcTelemetryLayer {
    metrics: Arc<Metrics>,
}

impl RpcTelemetryLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for RpcTelemetryLayer {
    type Service = RpcTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcTelemetry {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`RpcTelemetryLayer`] makes.
#[derive(Clone, Debug)]
pub struct RpcTelemetry<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, RB> Service<http::Request<B>> for RpcTelemetry<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Send + 'static,
{
    type Response = http::Response<ObservedBody<RB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = Call::start(&request, self.metrics.clone());
        let span = call.span.clone();
        let response = self.inner.call(request);
        Box::pin(
            async move {
                let response = response.await?;
                let (parts, body) = response.into_parts();
                let mut call = Some(call);
                if let Some(code) = grpc_status(&parts.headers) {
                    if let Some(call) = call.take() {
                        call.finish(code);
                    }
                }
                Ok(http::Response::from_parts(
                    parts,
                    ObservedBody { inner: body, call },
                ))
            }
            .instrument(span),
        )
    }
}

/// The gRPC health service, whose calls are logged at debug only.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// One call in flight.
struct Call {
    span: tracing::Span,
    method: RpcMethod,
    started: Instant,
    metrics: Arc<Metrics>,
    finished: bool,
}

impl Call {
    fn start<B>(request: &http::Request<B>, metrics: Arc<Metrics>) -> Self {
        let method = RpcMethod::from_path(request.uri().path());
        let request_id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let span = tracing::info_span!(
            "grpc",
            otel.name = %method.full_name(),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = %method.service,
            rpc.method = %method.method,
            rpc.grpc.status_code = tracing::field::Empty,
            request_id,
            tenant = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&Headers(request.headers()))
        });
        let callers_trace = parent.span().span_context().trace_id();
        // Without an OpenTelemetry layer installed this is a no-op.
        let _ = span.set_parent(parent);
        // Log lines of the call carry the ids its trace is exported under, so that a log search
        // leads to the trace and back. Without export, the caller's trace id still correlates.
        let context = span.context();
        let own = context.span().span_context().clone();
        if own.is_valid() {
            span.record("trace_id", own.trace_id().to_string());
            span.record("span_id", own.span_id().to_string());
        } else if callers_trace != TraceId::INVALID {
            span.record("trace_id", callers_trace.to_string());
        }
        Self {
            span,
            method,
            started: Instant::now(),
            metrics,
            finished: false,
        }
    }

    fn finish(mut self, code: i32) {
        self.record(code);
    }

    fn record(&mut self, code: i32) {
        if self.finished {
            return;
        }
        self.finished = true;
        let elapsed = self.started.elapsed();
        self.span.record("rpc.grpc.status_code", code);
        if is_server_error(code) {
            self.span.record("otel.status_code", "ERROR");
        }
        self.metrics.record_call(&self.method, code, elapsed);
        let _entered = self.span.enter();
        let (method, code, duration_ms) = (
            self.method.full_name(),
            code_name(code),
            elapsed.as_secs_f64() * 1_000.0,
        );
        // Probes check health every few seconds on every pod: at info they would drown the calls.
        if self.method.service == HEALTH_SERVICE {
            tracing::debug!(target: ACCESS_LOG_TARGET, %method, code, duration_ms, "call finished");
        } else {
            tracing::info!(target: ACCESS_LOG_TARGET, %method, code, duration_ms, "call finished");
        }
    }
}

/// Whether a status code marks the server span as failed. The OpenTelemetry RPC conventions
/// leave server spans unset for codes that describe the caller's request (NOT_FOUND,
/// INVALID_ARGUMENT, UNAUTHENTICATED, ...), so that error rates count the server's failures only.
fn is_server_error(code: i32) -> bool {
    use tonic::Code;
    matches!(
        Code::from_i32(code),
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

impl Drop for Call {
    /// A body dropped before its trailers: the client went away or the deadline passed.
    fn drop(&mut self) {
        self.record(tonic::Code::Cancelled as i32);
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

pin_project_lite::pin_project! {
    /// A response body that finishes its call when the trailers pass.
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        let code = match &frame {
            Some(Ok(frame)) => frame
                .trailers_ref()
                .map(|t| grpc_status(t).unwrap_or(tonic::Code::Unknown as i32)),
            Some(Err(_)) => Some(tonic::Code::Internal as i32),
            None => Some(tonic::Code::Unknown as i32),
        };
        if let Some(code) = code {
            if let Some(call) = this.call.take() {
                call.finish(code);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
