//! Assembles the gRPC server: services, health, reflection, request ids, telemetry, limits,
//! deadlines, the metrics endpoint and graceful shutdown.

mod incoming;
mod metrics_http;
mod pin_key;
mod rpc;
mod shutdown;
mod sweeper;
mod tls;

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::{net::TcpListener, sync::oneshot};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic_health::{server::HealthReporter, ServingStatus};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

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
    /// Connects and migrates the database, seeds demo data when asked, and binds both listeners.
    pub async fn build(settings: ServeSettings) -> anyhow::Result<Self> {
        let store = Store::connect(&DatabaseSettings {
            url: settings.database.database_url.clone(),
            pool_size: settings.database.pool_size,
        })
        .await?;
        if !settings.no_migrate {
            store.migrate().await?;
        }
        let pin_key = pin_key::load_pin_key(&settings)?;
        store.verify_pin_key(&pin_key).await?;
        let demo_key = if settings.demo {
            Some(demo::seed(&store, &pin_key).await?)
        } else {
            None
        };
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

    /// Serves until `shutdown` resolves, then: health NOT_SERVING, event streams end with
    /// UNAVAILABLE, new calls refused, in-flight calls drained within the grace period, pool closed.
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
        // Stays up through the drain so probes see NOT_SERVING; stopped last.
        let health_only = CancellationToken::new();
        let health_port = health_listener.map(|listener| {
            let service = tonic_health::pb::health_server::HealthServer::new(
                tonic_health::server::HealthService::from_health_reporter(health.clone()),
            );
            let stop = health_only.clone();
            tokio::spawn(
                Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                        stop.cancelled().await
                    }),
            )
        });

        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        // grpcurl 1.8 asks for the v1alpha reflection service.
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        // Cancelled at shutdown: ends event streams with UNAVAILABLE and stops background work.
        let stopping = CancellationToken::new();
        let feed = EventFeed::start(
            store.clone(),
            FeedSettings {
                poll_interval: settings.event_poll_interval,
                retention: settings.event_retention,
                live_buffer: settings.event_live_buffer,
            },
            metrics.event_streams.clone(),
            stopping.clone(),
        )
        .await?;
        let auth = Authenticator::new(store.clone());
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
            .into_inner();

        let sweeper = tokio::spawn(sweeper::sweep_expired_reservations(
            store.clone(),
            settings.expiry_sweep_interval,
            stopping.clone(),
        ));
        let metrics_endpoint = tokio::spawn(metrics_http::serve(
            metrics_listener,
            metrics,
            store.clone(),
            stopping.clone(),
        ));

        let (stop_accepting, stopped) = oneshot::channel::<()>();
        let (incoming, listener_closed) =
            incoming::ClosedOnDrop::new(TcpListenerStream::new(listener));
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
            finished = &mut server => Some(finished),
            () = shutdown => None,
        };
        if let Some(finished) = served {
            stopping.cancel();
            health_only.cancel();
            sweeper.await.ok();
            metrics_endpoint.await.ok();
            store.close().await;
            return finished
                .context("server task failed")?
                .context("server failed");
        }

        // Refuse new connections first (the listening socket closes, existing connections get
        // GOAWAY), so that nobody sees NOT_SERVING while a new call could still get in. Calls and
        // streams in flight carry on, health watchers among them.
        stop_accepting.send(()).ok();
        listener_closed.await.ok();
        tracing::info!(grace = ?settings.grace_period, "shutting down: health NOT_SERVING");
        set_health(&health, ServingStatus::NotServing).await;
        stopping.cancel();
        match tokio::time::timeout(settings.grace_period, &mut server).await {
            Ok(finished) => {
                finished
                    .context("server task failed")?
                    .context("server failed")?;
                tracing::info!("drained: every call finished");
            }
            Err(_) => {
                tracing::warn!(
                    "grace period ran out with calls or streams still open; closing them"
                );
                server.abort();
            }
        }
        health_only.cancel();
        if let Some(port) = health_port {
            port.await.ok();
        }
        sweeper.await.ok();
        metrics_endpoint.await.ok();
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    for name in SERVICE_NAMES {
        health.set_service_status(name, status).await;
    }
}
