//! Assembles the gRPC server: services, health, reflection, request ids, limits, deadlines and
//! graceful shutdown.

use std::{future::Future, net::SocketAddr, path::Path};

use anyhow::Context;
use tokio::{net::TcpListener, sync::oneshot};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic_health::{server::HealthReporter, ServingStatus};
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    api::{AdminApi, Authenticator, CouponApi, VoucherApi},
    config::ServeSettings,
    demo,
    domain::pin::PinKey,
    events::{EventFeed, FeedSettings},
    pb::{
        admin_service_server::AdminServiceServer, coupon_service_server::CouponServiceServer,
        voucher_service_server::VoucherServiceServer, FILE_DESCRIPTOR_SET,
    },
    store::{DatabaseSettings, Store},
};

/// Fully-qualified names of the services this server reports health for ("" is the server).
pub const SERVICE_NAMES: [&str; 3] = [
    "coupons.v1.CouponService",
    "coupons.v1.VoucherService",
    "coupons.v1.AdminService",
];

/// A bound, migrated, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    store: Store,
    pin_key: PinKey,
    settings: ServeSettings,
    demo_key: Option<String>,
}

impl Application {
    /// Connects and migrates the database, seeds demo data when asked, and binds the listener.
    pub async fn build(settings: ServeSettings) -> anyhow::Result<Self> {
        let store = Store::connect(&DatabaseSettings {
            url: settings.database.database_url.clone(),
            pool_size: settings.database.pool_size,
        })
        .await?;
        if !settings.no_migrate {
            store.migrate().await?;
        }
        let pin_key = load_pin_key(&settings)?;
        store.verify_pin_key(&pin_key).await?;
        let demo_key = if settings.demo {
            Some(demo::seed(&store, &pin_key).await?)
        } else {
            None
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let local_addr = listener.local_addr()?;
        Ok(Self {
            listener,
            local_addr,
            store,
            pin_key,
            settings,
            demo_key,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's store (its pool and statement count).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The demo API key, when demo mode seeded or found the demo tenant.
    pub fn demo_key(&self) -> Option<&str> {
        self.demo_key.as_deref()
    }

    /// Serves until `shutdown` resolves, then: health NOT_SERVING, stop accepting, drain within
    /// the grace period, close the pool.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Self {
            listener,
            store,
            pin_key,
            settings,
            ..
        } = self;
        let (health, health_service) = tonic_health::server::health_reporter();
        set_health(&health, ServingStatus::Serving).await;

        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        // grpcurl 1.8 asks for the v1alpha reflection service.
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let auth = Authenticator::new(store.clone());
        let max = settings.max_message_bytes;
        // Cancelled on shutdown: ends every event stream with UNAVAILABLE and stops the feed.
        let streams = CancellationToken::new();
        let feed = EventFeed::start(
            store.clone(),
            FeedSettings {
                poll_interval: settings.event_poll_interval,
                retention: settings.event_retention,
                live_buffer: settings.event_live_buffer,
            },
            streams.clone(),
        )
        .await?;
        let coupons = CouponServiceServer::new(CouponApi::new(
            auth.clone(),
            store.clone(),
            feed,
            settings.reservation_ttl,
        ))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
        let vouchers = VoucherServiceServer::new(VoucherApi::new(
            auth.clone(),
            store.clone(),
            pin_key.clone(),
        ))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
        let admin = AdminServiceServer::new(AdminApi::new(auth, store.clone(), pin_key))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);

        let layers = ServiceBuilder::new()
            // Take the caller's x-request-id or make one, before anything logs.
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            // Every log line of a call carries its request id and method.
            .layer(TraceLayer::new_for_grpc().make_span_with(call_span))
            // Return the request id in the response metadata.
            .layer(PropagateRequestIdLayer::x_request_id())
            // Bound the calls served at once; more wait instead of exhausting the pool.
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                settings.concurrency_limit,
            ))
            .into_inner();

        let (stop_sweeping, sweeping_stopped) = oneshot::channel::<()>();
        let sweeper = tokio::spawn(sweep_expired_reservations(
            store.clone(),
            settings.expiry_sweep_interval,
            sweeping_stopped,
        ));

        let (stop_accepting, stopped) = oneshot::channel::<()>();
        let server = Server::builder()
            // Caps every call; a shorter grpc-timeout from the caller wins.
            .timeout(settings.max_call_duration)
            .layer(layers)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(coupons)
            .add_service(vouchers)
            .add_service(admin)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                stopped.await.ok();
            });
        let mut server = tokio::spawn(server);

        tokio::select! {
            finished = &mut server => {
                streams.cancel();
                stop_sweeping.send(()).ok();
                sweeper.await.ok();
                store.close().await;
                return finished.context("server task failed")?.context("server failed");
            }
            () = shutdown => {}
        }

        tracing::info!(grace = ?settings.grace_period, "shutting down: health NOT_SERVING, draining calls");
        set_health(&health, ServingStatus::NotServing).await;
        streams.cancel();
        stop_sweeping.send(()).ok();
        // Let health watchers see NOT_SERVING before connections get GOAWAY.
        tokio::task::yield_now().await;
        stop_accepting.send(()).ok();
        match tokio::time::timeout(settings.grace_period, &mut server).await {
            Ok(finished) => finished
                .context("server task failed")?
                .context("server failed")?,
            Err(_) => {
                tracing::warn!(
                    "grace period ran out with calls or streams still open; closing them"
                );
                server.abort();
            }
        }
        sweeper.await.ok();
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Releases expired reservations every `interval` until told to stop. Replicas may sweep at once:
/// each release is guarded, so none is released twice.
async fn sweep_expired_reservations(
    store: Store,
    interval: std::time::Duration,
    mut stop: oneshot::Receiver<()>,
) {
    const BATCH: u64 = 500;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticks.tick() => {}
        }
        loop {
            match store
                .expire_due(crate::domain::Timestamp::now(), BATCH)
                .await
            {
                Ok(expired) if expired as u64 == BATCH => continue,
                Ok(0) => break,
                Ok(expired) => {
                    tracing::info!(expired, "released expired reservations");
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "expiring reservations failed; will retry");
                    break;
                }
            }
        }
    }
}

/// The span of one call: request id and method, tenant recorded once authenticated.
fn call_span<B>(request: &http::Request<B>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "grpc",
        request_id,
        method = %request.uri().path(),
        tenant = tracing::field::Empty,
    )
}

async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    for name in SERVICE_NAMES {
        health.set_service_status(name, status).await;
    }
}

/// The PIN key from --pin-key, else from the key file; demo mode creates the file when missing.
fn load_pin_key(settings: &ServeSettings) -> anyhow::Result<PinKey> {
    if let Some(encoded) = &settings.pin_key {
        return PinKey::from_base64(encoded).context("COUPON_PIN_KEY");
    }
    let path = settings.pin_key_file.as_path();
    if !path.exists() && settings.demo {
        create_demo_key_file(path)?;
    }
    let encoded = std::fs::read_to_string(path).with_context(|| {
        format!(
            "no PIN key: set COUPON_PIN_KEY to base64 of 32 random bytes, or put it in {}",
            path.display()
        )
    })?;
    PinKey::from_base64(&encoded).with_context(|| format!("PIN key file {}", path.display()))
}

fn create_demo_key_file(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, PinKey::generate_base64())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "demo mode generated a PIN key file; production keys belong in a secret (COUPON_PIN_KEY)"
    );
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}
