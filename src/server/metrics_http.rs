//! The Prometheus endpoint, on its own port so that it can stay private to the cluster.

use std::sync::Arc;

use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{metrics::Metrics, store::Store};

/// Serves `GET /metrics` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    store: Store,
    stop: CancellationToken,
) {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state((metrics, store));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(error) = served {
        tracing::warn!(%error, "metrics endpoint failed");
    }
}

async fn scrape(State((metrics, store)): State<(Arc<Metrics>, Store)>) -> impl IntoResponse {
    match metrics.render(&store).await {
        Ok(text) => (
            StatusCode::OK,
            [("content-type", "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(%error, "rendering metrics failed");
            (StatusCode::SERVICE_UNAVAILABLE, "metrics unavailable").into_response()
        }
    }
}
