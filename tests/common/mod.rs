//! Test harness: the real server on 127.0.0.1:0 against a fresh, migrated database (a SQLite
//! file or a PostgreSQL database of its own), with real generated clients. No sleeps.

#![allow(dead_code)]

pub mod proxy;

use std::{net::SocketAddr, time::Duration};

use coupon_service::{
    config::{DatabaseArgs, ServeSettings},
    domain::{api_key::IssuedKey, pin::PinKey, Scopes},
    pb::{
        admin_service_client::AdminServiceClient, coupon_service_client::CouponServiceClient,
        voucher_service_client::VoucherServiceClient,
    },
    server::Application,
    store::{DatabaseSettings, Store},
};
use sea_orm::{ConnectionTrait, Database};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{
    metadata::MetadataValue,
    service::{interceptor::InterceptedService, Interceptor},
    transport::{Channel, Endpoint},
    Request, Status,
};

/// Which database a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fixed PIN key for tests (base64 of 32 bytes).
pub const TEST_PIN_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Runs each named `async fn(Backend)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A test's own database: a SQLite file in a temp dir, or a PostgreSQL database that is dropped
/// when this is, so runs leave no `cs_test_*` databases behind.
pub struct TestDatabase {
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// The temp dir (the SQLite file, the PIN key file).
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((base, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on its own futures: use a
        // thread with a runtime of its own. FORCE ends connections a server left open.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let admin = Database::connect(&base).await.map_err(|e| e.to_string())?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())?;
                admin.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop a test database: {error}");
        }
    }
}

/// A fresh database URL for `backend`, and the database that keeps it alive.
pub async fn fresh_database(backend: Backend) -> (String, TestDatabase) {
    let dir = tempfile::tempdir().expect("temp dir");
    match backend {
        Backend::Sqlite => (
            format!("sqlite://{}/coupons.db?mode=rwc", dir.path().display()),
            TestDatabase {
                dir,
                postgres: None,
            },
        ),
        Backend::Postgres => {
            let (url, base, name) = fresh_postgres_database().await;
            (
                url,
                TestDatabase {
                    dir,
                    postgres: Some((base, name)),
                },
            )
        }
    }
}

/// Creates an empty PostgreSQL database for one test: its URL, the server's URL and its name.
async fn fresh_postgres_database() -> (String, String, String) {
    let base = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let name = format!("cs_test_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {base} must answer for the tests: {e}"));
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    admin.close().await.ok();
    let (prefix, _) = base.rsplit_once('/').expect("database URL has a path");
    (format!("{prefix}/{name}"), base, name)
}

/// Settings for a test server on a free port.
pub fn test_settings(database_url: &str, dir: &std::path::Path) -> ServeSettings {
    ServeSettings {
        listen: "127.0.0.1:0".parse().expect("address"),
        metrics_listen: "127.0.0.1:0".parse().expect("address"),
        database: DatabaseArgs {
            database_url: database_url.to_owned(),
            pool_size: 8,
            sqlite_synchronous: Default::default(),
        },
        no_migrate: false,
        demo: false,
        grace_period: Duration::from_secs(5),
        max_message_bytes: 4 * 1024 * 1024,
        concurrency_limit: 256,
        max_call_duration: Duration::from_secs(30),
        reservation_ttl: Duration::from_secs(15 * 60),
        expiry_sweep_interval: Duration::from_secs(1),
        event_poll_interval: Duration::from_millis(500),
        event_retention: Duration::from_secs(7 * 24 * 3_600),
        event_live_buffer: 4_096,
        pin_key: Some(TEST_PIN_KEY.to_owned()),
        pin_key_file: dir.join("pin.key"),
        tls_cert: None,
        tls_key: None,
        tls_client_ca: None,
        health_listen: None,
        quotas: Default::default(),
    }
}

/// A running server, a store on the same database for setup and checks, and a tenant key.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The Prometheus endpoint.
    pub metrics_addr: SocketAddr,
    pub channel: Channel,
    pub store: Store,
    /// The server's own pool, to count the statements a call makes.
    pub server_store: Store,
    pub database_url: String,
    /// Bearer token of tenant "acme" with every scope.
    pub token: String,
    pub pin_key: PinKey,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _database: TestDatabase,
}

/// Starts a server on a fresh database with tenant "acme".
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts a server on a fresh database, letting the test adjust the settings.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut ServeSettings)) -> TestApp {
    let (fresh_url, dir) = fresh_database(backend).await;
    let mut settings = test_settings(&fresh_url, dir.path());
    adjust(&mut settings);
    let database_url = settings.database.database_url.clone();
    let app = Application::build(settings).await.expect("server builds");
    let addr = app.local_addr();
    let server_store = app.store().clone();
    let metrics_addr = app.metrics_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        stopped.await.ok();
    }));
    // The listener is bound before build returns, so connecting needs no wait.
    let channel = connect(addr).await;
    let store = Store::connect(&DatabaseSettings {
        url: database_url.clone(),
        pool_size: 4,
        sqlite_synchronous: Default::default(),
    })
    .await
    .expect("test store");
    let mut app = TestApp {
        addr,
        metrics_addr,
        channel,
        store,
        server_store,
        database_url,
        token: String::new(),
        pin_key: PinKey::from_base64(TEST_PIN_KEY).expect("pin key"),
        stop: Some(stop),
        server: Some(server),
        _database: dir,
    };
    app.token = app.new_tenant("acme", Scopes::all()).await;
    app
}

/// A channel to a server.
pub async fn connect(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to test server")
}

impl TestApp {
    /// Creates a tenant and returns the bearer token of its key.
    pub async fn new_tenant(&self, name: &str, scopes: Scopes) -> String {
        let key = IssuedKey::generate();
        self.store
            .create_tenant(name, &scopes, &key)
            .await
            .expect("create tenant");
        key.token()
    }

    pub fn admin(&self, token: &str) -> AdminServiceClient<InterceptedService<Channel, Auth>> {
        AdminServiceClient::with_interceptor(self.channel.clone(), Auth::bearer(token))
    }

    pub fn coupons(&self, token: &str) -> CouponServiceClient<InterceptedService<Channel, Auth>> {
        CouponServiceClient::with_interceptor(self.channel.clone(), Auth::bearer(token))
    }

    pub fn vouchers(&self, token: &str) -> VoucherServiceClient<InterceptedService<Channel, Auth>> {
        VoucherServiceClient::with_interceptor(self.channel.clone(), Auth::bearer(token))
    }

    /// Stops the server the way a signal would and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Adds an `authorization` header to every call, and a deadline when one is set.
#[derive(Clone)]
pub struct Auth(
    Option<MetadataValue<tonic::metadata::Ascii>>,
    Option<Duration>,
);

impl Auth {
    pub fn bearer(token: &str) -> Self {
        Self::header(&format!("Bearer {token}"))
    }

    pub fn header(value: &str) -> Self {
        Self(Some(value.parse().expect("header value")), None)
    }

    pub fn none() -> Self {
        Self(None, None)
    }

    /// Sends `timeout` as every call's deadline (`grpc-timeout`).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.1 = Some(timeout);
        self
    }
}

impl Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        if let Some(timeout) = self.1 {
            request.set_timeout(timeout);
        }
        Ok(request)
    }
}

/// The field paths of a status's BadRequest details.
pub fn violated_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The reason of a status's ErrorInfo details.
pub fn error_reason(status: &Status) -> Option<String> {
    use tonic_types::StatusExt;
    status.get_details_error_info().map(|info| info.reason)
}

/// A server running as its own process (the real binary) on a database another test server has
/// already migrated; killed when dropped.
pub struct ServerProcess {
    child: std::process::Child,
    pub addr: SocketAddr,
}

/// Reads a child's stdout to the end on a thread, so the child never writes to a closed pipe.
fn drain(lines: impl Iterator<Item = std::io::Result<String>> + Send + 'static) {
    std::thread::spawn(move || lines.for_each(drop));
}

impl ServerProcess {
    pub fn spawn(database_url: &str) -> Self {
        Self::spawn_logging(database_url, None)
    }

    /// Like `spawn`, with extra command-line arguments for `serve`.
    pub fn spawn_with_args(database_url: &str, extra: &[&str]) -> Self {
        Self::start(database_url, None, extra)
    }

    /// Like `spawn`, writing debug logs (JSON, as in production) to `log` when given.
    pub fn spawn_logging(database_url: &str, log: Option<&std::path::Path>) -> Self {
        Self::start(database_url, log, &[])
    }

    fn start(database_url: &str, log: Option<&std::path::Path>, extra: &[&str]) -> Self {
        use std::io::{BufRead, BufReader};
        let stderr = match log {
            Some(path) => std::process::Stdio::from(std::fs::File::create(path).expect("log file")),
            None => std::process::Stdio::null(),
        };
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_coupon-service"))
            .args([
                "serve",
                "--no-migrate",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--pool-size",
                "8",
            ])
            .args(extra)
            .env("DATABASE_URL", database_url)
            .env("COUPON_PIN_KEY", TEST_PIN_KEY)
            .env("RUST_LOG", if log.is_some() { "debug" } else { "warn" })
            .env("COUPON_LOG_FORMAT", "json")
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start the server binary");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("listening on ").map(str::to_owned))
            .expect("the server prints its address")
            .parse()
            .expect("an address");
        drain(lines);
        Self { child, addr }
    }
}

impl ServerProcess {
    /// Kills the process with SIGKILL, as `kill -9` would: no drain, no cleanup.
    pub fn kill_9(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// `count` server processes on the test's database, with four connections to each: real
/// replicas racing through one database.
pub async fn server_processes(app: &TestApp, count: usize) -> (Vec<ServerProcess>, Vec<Channel>) {
    let processes: Vec<ServerProcess> = (0..count)
        .map(|_| ServerProcess::spawn(&app.database_url))
        .collect();
    let mut channels = Vec::new();
    for process in &processes {
        for _ in 0..4 {
            channels.push(connect(process.addr).await);
        }
    }
    (processes, channels)
}
