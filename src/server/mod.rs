//! Assembles the gRPC server: services, health, reflection, request ids, telemetry, limits,
//! deadlines, the metrics endpoint and graceful shutdown.

mod database_health;
mod incoming;
mod metrics_http;
mod pin_key;
mod reflection;
mod rpc;
mod shutdown;
mod sweeper;
mod tls;

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic_health::{server::HealthReporter, ServingStatus};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub use database_health::{DatabaseMonitor, LIVENESS};
pub use shutdown::shutdown_signal;

use crate::{
    api::{AdminApi, Authenticator, CouponApi, VoucherApi},
    config::ServeSettings,
    demo,
    domain::pin::PinKey,
    events::{EventFeed, FeedSettings},
    metrics::Metrics,
    pb::{
        admin_service_server::AdminServiceServer, coupon_service_server::CouponServiceServer,
        voucher_service_server::VoucherServiceServer,
    },
    store::{DatabaseSettings, Store},
};

/// Fully-qualified names of the services this server reports health for ("" is the server).
pub const SERVICE_NAMES: [&str; 3] = [
    "coupons.v1.CouponService",
    "coupons.v1.VoucherService",
    "coupons.v1.AdminService",
];

/// Where probes reach health when mutual TLS is on and no address is configured.
const DEFAULT_HEALTH_LISTEN: &str = "0.0.0.0:50052";

/// A bound, migrated, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<tonic::transport::ServerTlsConfig>,
    health_listener: Option<TcpListener>,
    health_addr: Option<SocketAddr>,
    metrics_listener: TcpListener,
    metrics_addr: SocketAddr,
    metrics: Arc<Metrics>,
    store: Store,
    pin_key: PinKey,
    settings: ServeSettings,
    demo_key: Option<String>,
}

impl Application {
    /// Binds every listener, then connects and migrates the database (or, with `no_migrate`,
    /// checks that it is migrated) and seeds demo data when asked. Binding first means a taken
    /// port fails the start before anything is written.
    pub async fn build(settings: ServeSettings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let metrics_listener = TcpListener::bind(settings.metrics_listen)
            .await
            .with_context(|| format!("cannot listen on {} for metrics", settings.metrics_listen))?;
        let tls = tls::server_tls(&settings)?;
        // The kubelet's gRPC probe cannot present a client certificate: with mutual TLS, health is
        // also served in plaintext on a port of its own.
        let health_listen = match (settings.health_listen, &settings.tls_client_ca) {
            (Some(addr), _) => Some(addr),
            (None, Some(_)) => Some(DEFAULT_HEALTH_LISTEN.parse()?),
            (None, None) => None,
        };
        let health_listener = match health_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} for health"))?,
            ),
            None => None,
        };
        let pin_key = pin_key::load_pin_key(&settings)?;
        let store = Store::connect(&DatabaseSettings {
            url: settings.database.database_url.clone(),
            pool_size: settings.database.pool_size,
            sqlite_synchronous: settings.database.sqlite_synchronous,
        })
        .await?;
        if settings.no_migrate {
            // Serving an older schema than this binary needs fails call by call; refuse at once.
            use migration::MigratorTrait as _;
            let pending = migration::Migrator::get_pending_migrations_read_only(store.conn())
                .await
                .context("checking the database schema (--no-migrate)")?;
            if !pending.is_empty() {
                anyhow::bail!(
                    "the database schema is older than this binary needs ({} migrations pending): \
                     run `coupon-service migrate`, or serve without --no-migrate",
                    pending.len()
                );
            }
        } else {
            store.migrate().await?;
        }
        store.verify_pin_key(&pin_key).await?;
        let demo_key = if settings.demo {
            Some(demo::seed(&store, &pin_key).await?)
        } else {
            None
        };
        Ok(Self {
            health_addr: health_listener
                .as_ref()
                .map(|l| l.local_addr())
                .transpose()?,
            health_listener,
            tls,
            local_addr: listener.local_addr()?,
            metrics_addr: metrics_listener.local_addr()?,
            listener,
            metrics_listener,
            metrics: Metrics::new()?,
            store,
            pin_key,
            settings,
            demo_key,
        })
    }

    /// The gRPC address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The plaintext health-only address, when there is one.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_addr
    }

    /// The metrics address actually bound.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The server's store (its pool and statement count).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The demo API key, when demo mode seeded or found the demo tenant.
    pub fn demo_key(&self) -> Option<&str> {
        self.demo_key.as_deref()
    }

    /// Serves until `shutdown` resolves, then: new connections refused, health NOT_SERVING,
    /// event streams end with UNAVAILABLE, in-flight calls drained within the grace period,
    /// background tasks stopped, pool closed.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Self {
            listener,
            tls,
            health_listener,
            metrics_listener,
            metrics,
            store,
            pin_key,
            settings,
            ..
        } = self;
        let (health, health_service) = tonic_health::server::health_reporter();
        set_health(&health, ServingStatus::Serving).await;
        // Readiness follows the database; liveness does not.
        let database =
            DatabaseMonitor::start(&settings.database.database_url, health.clone()).await;
        let guard = database.guard(settings.max_call_duration);
        let mut tasks = Tasks::new(store.clone(), database);
        if let Some(listener) = health_listener {
            tasks.serve_health_port(listener, &health);
        }

        // grpcurl 1.8 asks for the v1alpha reflection service, newer tools for v1.
        let (reflection_v1, reflection_v1alpha) = reflection::services()?;

        let feed = EventFeed::start(
            store.clone(),
            FeedSettings {
                poll_interval: settings.event_poll_interval,
                retention: settings.event_retention,
                live_buffer: settings.event_live_buffer,
            },
            metrics.event_streams.clone(),
            tasks.stopping.clone(),
        )
        .await?;
        let auth = Authenticator::new(store.clone()).with_quotas(quotas(&store, &settings.quotas));
        let max = settings.max_message_bytes;
        let coupons = CouponServiceServer::new(CouponApi::new(
            auth.clone(),
            store.clone(),
            feed,
            metrics.clone(),
            settings.reservation_ttl,
        ))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
        let vouchers = VoucherServiceServer::new(VoucherApi::new(
            auth.clone(),
            store.clone(),
            pin_key.clone(),
            metrics.clone(),
        ))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
        let admin = AdminServiceServer::new(AdminApi::new(auth, store.clone(), pin_key))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);

        let layers = ServiceBuilder::new()
            // Take the caller's x-request-id or make one, before anything logs.
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            // One span per call (request id, method, tenant, trace parent) and call metrics.
            .layer(rpc::RpcTelemetryLayer::new(metrics.clone()))
            // Return the request id in the response metadata.
            .layer(PropagateRequestIdLayer::x_request_id())
            // Bound the calls served at once; more wait instead of exhausting the pool.
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                settings.concurrency_limit,
            ))
            // Answer within each call's deadline; UNAVAILABLE at once while the database is down.
            .layer(guard)
            .into_inner();

        tasks.spawn(sweeper::sweep_expired_reservations(
            store.clone(),
            settings.expiry_sweep_interval,
            tasks.stopping.clone(),
        ));
        tasks.spawn(metrics_http::serve(
            metrics_listener,
            metrics,
            store.clone(),
            tasks.stopping.clone(),
        ));

        let (stop_accepting, stopped) = oneshot::channel::<()>();
        let (incoming, listener_closed) =
            incoming::ClosedOnDrop::new(incoming::NoDelay::new(listener));
        let mut builder = Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).context("TLS configuration")?;
        }
        let server = builder
            // Caps every call; a shorter grpc-timeout from the caller wins.
            .timeout(settings.max_call_duration)
            .layer(layers)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(coupons)
            .add_service(vouchers)
            .add_service(admin)
            .serve_with_incoming_shutdown(incoming, async {
                stopped.await.ok();
            });
        let mut server = tokio::spawn(server);

        let served = tokio::select! {
            finished = &mut server => Err(finished),
            () = shutdown => Ok(()),
        };
        let outcome = match served {
            // The server ended by itself: a failure to report after cleaning up.
            Err(finished) => finished
                .context("server task failed")
                .and_then(|served| served.context("server failed")),
            Ok(()) => {
                // Refuse new connections first (the listening socket closes, existing
                // connections get GOAWAY), so that nobody sees NOT_SERVING while a new call
                // could still get in. Calls and streams in flight carry on, health watchers
                // among them.
                stop_accepting.send(()).ok();
                listener_closed.await.ok();
                tracing::info!(grace = ?settings.grace_period, "shutting down: health NOT_SERVING");
                // The monitor would report the database's health again: stop it first.
                tasks.stop_database_monitor().await;
                set_health(&health, ServingStatus::NotServing).await;
                tasks.stopping.cancel();
                drain(server, settings.grace_period).await
            }
        };
        tasks.finish().await;
        if outcome.is_ok() {
            tracing::info!("stopped");
        }
        outcome
    }
}

/// Waits for the server to finish its calls and streams, up to `grace`; then closes what is
/// left.
async fn drain(
    mut server: JoinHandle<Result<(), tonic::transport::Error>>,
    grace: std::time::Duration,
) -> anyhow::Result<()> {
    match tokio::time::timeout(grace, &mut server).await {
        Ok(finished) => {
            finished
                .context("server task failed")?
                .context("server failed")?;
            tracing::info!("drained: every call finished");
        }
        Err(_) => {
            tracing::warn!("grace period ran out with calls or streams still open; closing them");
            server.abort();
        }
    }
    Ok(())
}

/// The server's background work and its one way of stopping: cancel, wait for every task, stop
/// the plaintext health port last (probes watch it through the drain), close the pool.
struct Tasks {
    /// Cancelled at shutdown: ends event streams with UNAVAILABLE and stops background work.
    stopping: CancellationToken,
    /// Reports the database's health until shutdown begins.
    database: Option<DatabaseMonitor>,
    background: Vec<JoinHandle<()>>,
    health_only: CancellationToken,
    health_port: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    store: Store,
}

impl Tasks {
    fn new(store: Store, database: DatabaseMonitor) -> Self {
        Self {
            stopping: CancellationToken::new(),
            database: Some(database),
            background: Vec::new(),
            health_only: CancellationToken::new(),
            health_port: None,
            store,
        }
    }

    fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.background.push(tokio::spawn(task));
    }

    /// Serves health alone on `listener` until the very end of shutdown.
    fn serve_health_port(&mut self, listener: TcpListener, health: &HealthReporter) {
        let service = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(health.clone()),
        );
        let stop = self.health_only.clone();
        self.health_port = Some(tokio::spawn(
            Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming::NoDelay::new(listener), async move {
                    stop.cancelled().await
                }),
        ));
    }

    async fn stop_database_monitor(&mut self) {
        if let Some(monitor) = self.database.take() {
            monitor.stop().await;
        }
    }

    async fn finish(mut self) {
        self.stop_database_monitor().await;
        self.stopping.cancel();
        for task in self.background {
            task.await.ok();
        }
        self.health_only.cancel();
        if let Some(port) = self.health_port {
            port.await.ok();
        }
        self.store.close().await;
    }
}

async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    health.set_service_status(LIVENESS, status).await;
    for name in SERVICE_NAMES {
        health.set_service_status(name, status).await;
    }
}

/// The quota and throttle state of this process, with the configured defaults.
fn quotas(store: &Store, settings: &crate::config::QuotaSettings) -> crate::app::quota::Quotas {
    let defaults = crate::domain::quota::QuotaLimits {
        requests_per_second: settings.quota_requests_per_second,
        burst: settings.quota_burst,
        unknown_code_limit: settings.unknown_code_limit,
        unknown_code_window: settings.unknown_code_window,
    };
    crate::app::quota::Quotas::new(store.clone(), defaults, settings.quota_replicas)
}
