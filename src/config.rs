//! One typed configuration from flags and environment. Every flag has an environment twin; a bad
//! value makes clap exit non-zero with a one-line reason.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::domain::Scopes;

/// Default database: a SQLite file under ./data, created and migrated on start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/coupons.db?mode=rwc";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "coupon-service",
    version,
    about = "Multi-tenant gRPC coupon engine"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogSettings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC API (migrating the database first unless --no-migrate).
    Serve(Box<ServeSettings>),
    /// Run the database migrations and exit (for a Kubernetes Job).
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its first API key (shown once).
    Create {
        /// Unique tenant name.
        name: String,
        /// Comma-separated scopes of the key: read, redeem, purchase, admin.
        #[arg(long, default_value = "read,redeem,purchase,admin")]
        scopes: Scopes,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: sqlite://PATH?mode=rwc or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Largest number of pooled database connections.
    #[arg(long, env = "COUPON_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,
}

/// Log output.
#[derive(Debug, Clone, Args)]
pub struct LogSettings {
    /// Log format: text for people, json for log collectors.
    #[arg(long, env = "COUPON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter in RUST_LOG syntax.
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    pub log_filter: String,
    /// OTLP/gRPC endpoint to export traces to, such as http://otel-collector:4317. Unset: no
    /// export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything `serve` needs.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "COUPON_LISTEN", default_value = "0.0.0.0:50051")]
    pub listen: SocketAddr,
    /// Address of the Prometheus endpoint (`/metrics`); port 0 picks a free port.
    #[arg(long, env = "COUPON_METRICS_LISTEN", default_value = "0.0.0.0:9090")]
    pub metrics_listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Do not run migrations on start (run `coupon-service migrate` first).
    #[arg(long, env = "COUPON_NO_MIGRATE")]
    pub no_migrate: bool,
    /// Create a demo tenant with a documented development key and demo data if missing.
    #[arg(long, env = "COUPON_DEMO")]
    pub demo: bool,
    /// How long in-flight calls and streams may run after SIGTERM before the process exits.
    #[arg(long, env = "COUPON_GRACE_PERIOD", default_value = "20s", value_parser = humantime::parse_duration)]
    pub grace_period: Duration,
    /// Largest request or response message, in bytes.
    #[arg(long, env = "COUPON_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Largest number of calls served at once across all connections; more wait their turn.
    #[arg(long, env = "COUPON_CONCURRENCY_LIMIT", default_value_t = 1024)]
    pub concurrency_limit: usize,
    /// Longest time any call may run; a shorter `grpc-timeout` from the caller wins.
    #[arg(long, env = "COUPON_MAX_CALL_DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub max_call_duration: Duration,
    /// How long a pending redemption holds usage unless confirmed; a request may say otherwise.
    #[arg(long, env = "COUPON_RESERVATION_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub reservation_ttl: Duration,
    /// How often expired reservations are looked for and released.
    #[arg(long, env = "COUPON_EXPIRY_SWEEP_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub expiry_sweep_interval: Duration,
    /// How often the event feed reads the outbox when no commit notification arrives.
    #[arg(long, env = "COUPON_EVENT_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub event_poll_interval: Duration,
    /// How long redemption events are kept for watchers to resume from.
    #[arg(long, env = "COUPON_EVENT_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub event_retention: Duration,
    /// Live events buffered per process for watchers; a watcher further behind catches up from the
    /// outbox instead.
    #[arg(long, env = "COUPON_EVENT_LIVE_BUFFER", default_value_t = 4_096)]
    pub event_live_buffer: usize,
    /// PEM certificate chain to serve gRPC over TLS with (with --tls-key).
    #[arg(long, env = "COUPON_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "COUPON_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates that client certificates must chain to: mutual TLS, every caller
    /// presents a certificate (needs --tls-cert).
    #[arg(long, env = "COUPON_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Plaintext address serving only grpc.health.v1, for probes that cannot present a client
    /// certificate. Defaults to 0.0.0.0:50052 when mutual TLS is on; off otherwise.
    #[arg(long, env = "COUPON_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
    /// Base64 of the 32-byte AES-256 key that seals PINs (from a Kubernetes Secret).
    #[arg(long, env = "COUPON_PIN_KEY", hide_env_values = true)]
    pub pin_key: Option<String>,
    /// File holding the PIN key, used when --pin-key is not given. In demo mode a key is generated
    /// here when missing.
    #[arg(long, env = "COUPON_PIN_KEY_FILE", default_value = "data/pin.key")]
    pub pin_key_file: PathBuf,
}
