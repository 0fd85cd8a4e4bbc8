//! One typed configuration from flags and environment. Every flag has an environment twin; a bad
//! value makes clap exit non-zero with a one-line reason.

use std::{net::SocketAddr, num::NonZeroU32, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{domain::Scopes, store::SqliteSynchronous};

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
    /// Run the database migrations and exit (serve does the same on start, under the same lock).
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage a tenant's API keys (recorded in the audit log under the actor "cli").
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

/// Key lifecycle on the command line, the same operations as AdminService's key RPCs.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue a key and print it (shown once).
    Create {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// Comma-separated scopes: read, redeem, purchase, admin.
        #[arg(long)]
        scopes: Scopes,
        /// Lifetime of the key, such as "90days"; without it the key does not expire.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List the tenant's keys; never their secrets.
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke a key: every replica refuses it within seconds.
    Revoke {
        #[arg(long)]
        tenant: String,
        key_id: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Issue a new key with the old key's scopes; the old key keeps working for the grace period.
    Rotate {
        #[arg(long)]
        tenant: String,
        key_id: String,
        /// How long the old key keeps working, at most 30 days.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        grace: Duration,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// List every tenant.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
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
    /// Show a tenant's own quota limits, or set those given (0 goes back to the service's
    /// default). The operator's way to raise a tenant above the default; every replica applies a
    /// change within a few seconds.
    Quota {
        /// The tenant's name.
        name: String,
        /// Calls per second on average.
        #[arg(long)]
        requests_per_second: Option<u32>,
        /// Calls that may arrive at once.
        #[arg(long)]
        burst: Option<u32>,
        /// Unknown-code answers one end customer may get per window.
        #[arg(long)]
        unknown_code_limit: Option<u32>,
        /// The unknown-code window, such as 5m (0s goes back to the default).
        #[arg(long, value_parser = humantime::parse_duration)]
        unknown_code_window: Option<Duration>,
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
    /// Largest number of pooled database connections. Defaults to 2 x cores + 2 (at most 32),
    /// cores as the process may use them (a container's CPU limit counts).
    #[arg(long, env = "COUPON_POOL_SIZE", default_value_t = default_pool_size(), value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,
    /// SQLite only: `full` (default) puts every commit on disk before answering; `normal` is
    /// faster but a power or OS crash may lose acknowledged redemptions and sales.
    #[arg(long, env = "COUPON_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteSynchronous::Full)]
    pub sqlite_synchronous: SqliteSynchronous,
}

/// The default pool: a call holds a connection mostly while PostgreSQL works, so a few
/// connections per core keep the cores busy, and a small per-pod pool keeps
/// `pods x (pool + 1 listener)` under the server's `max_connections` as the HPA scales out (the
/// README's connection budget; .ci/check_manifests.py checks the prod overlay against it).
pub fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    (2 * cores + 2).min(32)
}

/// Log output and trace export. The `OTEL_*` variables are the OpenTelemetry SDK's standard ones;
/// the SDK itself also reads `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
/// `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_*` and `OTEL_EXPORTER_OTLP_[TRACES_]{HEADERS,TIMEOUT,COMPRESSION}`.
#[derive(Debug, Clone, Args)]
pub struct LogSettings {
    /// Log format: text for people, json for log collectors.
    #[arg(long, env = "COUPON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter in RUST_LOG syntax.
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    pub log_filter: String,
    /// One `info` line per finished call (method, status code, duration, request id, tenant);
    /// `false` turns it off, as does the filter directive `coupon_service::access=off`.
    #[arg(long, env = "COUPON_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub access_log: bool,
    /// OTLP/gRPC endpoint to export traces to, such as http://otel-collector:4317 (https:// for
    /// TLS). Unset: no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
    /// OTLP/gRPC endpoint for traces only; wins over --otlp-endpoint.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", global = true)]
    pub otlp_traces_endpoint: Option<String>,
    /// `none` turns trace export off whatever the endpoint; `otlp` (the default) exports.
    #[arg(long, env = "OTEL_TRACES_EXPORTER", default_value = "otlp", value_parser = ["otlp", "none"], global = true)]
    pub traces_exporter: String,
    /// Turns the OpenTelemetry SDK off: no trace export.
    #[arg(long, env = "OTEL_SDK_DISABLED", global = true)]
    pub otel_sdk_disabled: bool,
    /// PEM CA certificates that the collector's TLS certificate must chain to (besides the
    /// public web roots).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_CERTIFICATE", global = true)]
    pub otlp_certificate: Option<PathBuf>,
    /// PEM client certificate presented to the collector (with --otlp-client-key).
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        requires = "otlp_client_key",
        global = true
    )]
    pub otlp_client_certificate: Option<PathBuf>,
    /// PEM private key of --otlp-client-certificate.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        requires = "otlp_client_certificate",
        global = true
    )]
    pub otlp_client_key: Option<PathBuf>,
}

impl LogSettings {
    /// Where traces go, when they are exported at all.
    pub fn traces_endpoint(&self) -> Option<&str> {
        if self.otel_sdk_disabled || self.traces_exporter == "none" {
            return None;
        }
        [&self.otlp_traces_endpoint, &self.otlp_endpoint]
            .into_iter()
            .filter_map(|endpoint| endpoint.as_deref())
            .map(str::trim)
            .find(|endpoint| !endpoint.is_empty())
    }
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
    /// Address of the Prometheus endpoint (`/metrics`), which has no authentication: loopback
    /// unless set (the container image and the manifests set 0.0.0.0:9090); port 0 picks a free
    /// port.
    #[arg(long, env = "COUPON_METRICS_LISTEN", default_value = "127.0.0.1:9090")]
    pub metrics_listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Do not run migrations on start; refuse to start while any are pending (run
    /// `coupon-service migrate` first).
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
    #[command(flatten)]
    pub quotas: QuotaSettings,
}

/// The default quota and code-guessing throttle of tenants that did not choose their own, and how
/// the limits are shared among replicas.
#[derive(Debug, Clone, Args)]
pub struct QuotaSettings {
    /// Calls per second a tenant may make on average, across every service; 0 turns the request
    /// quota off for tenants without their own.
    #[arg(long, env = "COUPON_QUOTA_REQUESTS_PER_SECOND", default_value_t = QuotaSettings::REQUESTS_PER_SECOND)]
    pub quota_requests_per_second: u32,
    /// Calls a tenant may make at once after a quiet spell.
    #[arg(long, env = "COUPON_QUOTA_BURST", default_value_t = QuotaSettings::BURST, value_parser = clap::value_parser!(u32).range(1..))]
    pub quota_burst: u32,
    /// Unknown-code answers (COUPON_NOT_FOUND) one end customer may get per window before its
    /// calls are throttled; 0 turns the throttle off for tenants without their own.
    #[arg(long, env = "COUPON_UNKNOWN_CODE_LIMIT", default_value_t = QuotaSettings::UNKNOWN_CODE_LIMIT)]
    pub unknown_code_limit: u32,
    /// The window the unknown-code limit is counted over (refilled continuously).
    #[arg(long, env = "COUPON_UNKNOWN_CODE_WINDOW", default_value = "5m", value_parser = parse_window)]
    pub unknown_code_window: Duration,
    /// Replicas sharing each tenant's limits: every process enforces this fraction of them, so
    /// all replicas together allow about the tenant's limit when calls are spread over them. 1
    /// makes every process enforce the whole limit (N replicas then allow N times it).
    #[arg(long, env = "COUPON_QUOTA_REPLICAS", default_value_t = NonZeroU32::MIN)]
    pub quota_replicas: NonZeroU32,
}

impl QuotaSettings {
    const REQUESTS_PER_SECOND: u32 = 1_000;
    const BURST: u32 = 2_000;
    const UNKNOWN_CODE_LIMIT: u32 = 50;
    const UNKNOWN_CODE_WINDOW: Duration = Duration::from_secs(300);
}

impl Default for QuotaSettings {
    /// The same values as the command line's defaults.
    fn default() -> Self {
        Self {
            quota_requests_per_second: Self::REQUESTS_PER_SECOND,
            quota_burst: Self::BURST,
            unknown_code_limit: Self::UNKNOWN_CODE_LIMIT,
            unknown_code_window: Self::UNKNOWN_CODE_WINDOW,
            quota_replicas: NonZeroU32::MIN,
        }
    }
}

/// A window of whole seconds, from 1 s to a day.
fn parse_window(text: &str) -> Result<Duration, String> {
    let window = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    let secs = window.as_secs();
    if window.subsec_nanos() != 0 || !(1..=86_400).contains(&secs) {
        return Err("must be whole seconds between 1s and 1d".into());
    }
    Ok(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LogSettings {
        LogSettings {
            log_format: LogFormat::Text,
            log_filter: "info".into(),
            access_log: true,
            otlp_endpoint: Some("http://collector:4317".into()),
            otlp_traces_endpoint: None,
            traces_exporter: "otlp".into(),
            otel_sdk_disabled: false,
            otlp_certificate: None,
            otlp_client_certificate: None,
            otlp_client_key: None,
        }
    }

    #[test]
    fn the_traces_endpoint_follows_the_otel_variables() {
        assert_eq!(settings().traces_endpoint(), Some("http://collector:4317"));
        let traces_only = LogSettings {
            otlp_traces_endpoint: Some("https://traces:4317".into()),
            ..settings()
        };
        assert_eq!(traces_only.traces_endpoint(), Some("https://traces:4317"));
        let blank = LogSettings {
            otlp_endpoint: Some(" ".into()),
            ..settings()
        };
        assert_eq!(blank.traces_endpoint(), None);
        let none = LogSettings {
            traces_exporter: "none".into(),
            ..settings()
        };
        assert_eq!(none.traces_endpoint(), None);
        let disabled = LogSettings {
            otel_sdk_disabled: true,
            ..settings()
        };
        assert_eq!(disabled.traces_endpoint(), None);
    }
}
