//! Database health: a monitor that probes the database on a connection of its own and keeps
//! grpc.health.v1 in step with it, and a guard that answers every API call within its deadline.
//!
//! Without them an outage looked like this: calls waited the pool's fixed acquire timeout
//! whatever their deadline (callers got DEADLINE_EXCEEDED and could not tell whether anything
//! committed), a lost connection surfaced as INTERNAL, and health stayed SERVING throughout.
//!
//! - The monitor probes on its own connection, not the pool's, so a pool busy with real calls
//!   never reads as an outage. Two failed probes in a row mark the database down: the
//!   server-wide and per-service health statuses turn NOT_SERVING (Kubernetes readiness takes the
//!   pod out of rotation), while [`LIVENESS`] stays SERVING so an outage restarts no pod. While
//!   down it probes every [`PROBE_INTERVAL_DOWN`], so health is SERVING again well within 2 s of
//!   the database's return, without a restart (the pool reconnects on demand).
//! - The guard refuses API calls at once with UNAVAILABLE while the monitor knows the database
//!   is down, and bounds every other call by what is left of its own deadline (`grpc-timeout`,
//!   capped by the server's longest call): a call the database has not answered in time is
//!   answered UNAVAILABLE just before the caller would give up. The handler is dropped then,
//!   which is safe: a transaction commits whole or not at all, and a retry with the same key
//!   replays what did commit.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use sea_orm::sqlx::{self, Connection, Executor};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic_health::{server::HealthReporter, ServingStatus};
use tower::{Layer, Service};

use super::SERVICE_NAMES;

/// The health service name that means "the process is alive": SERVING from start until
/// shutdown, whatever the database does. Kubernetes liveness probes this name; readiness probes
/// one that follows the database.
pub const LIVENESS: &str = "liveness";

/// How often the database is probed while it answers.
const PROBE_INTERVAL_UP: Duration = Duration::from_millis(1_000);
/// How often it is probed while it is down or a probe just failed.
pub const PROBE_INTERVAL_DOWN: Duration = Duration::from_millis(250);
/// Longest wait for one probe (connecting included): a blackholed address never answers.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Failed probes in a row that mark the database down; one alone may be a terminated session.
const FAILURES_TO_MARK_DOWN: u32 = 2;
/// Longest part of a call's deadline kept back for the answer to reach the caller.
const ANSWER_MARGIN: Duration = Duration::from_millis(200);

/// Whether the database answered its last probes; shared by the monitor and the guard.
#[derive(Clone, Debug)]
pub struct DatabaseState {
    up: Arc<AtomicBool>,
}

impl DatabaseState {
    /// Whether the database is believed reachable.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }
}

/// The running monitor: stop it before shutdown sets health NOT_SERVING, so that it cannot set
/// SERVING again afterwards.
pub struct DatabaseMonitor {
    state: DatabaseState,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl DatabaseMonitor {
    /// Starts probing the database at `url`, setting the server-wide and per-service health
    /// statuses on every change (never [`LIVENESS`]). The database is taken to be up at start:
    /// the server has just connected and migrated.
    pub async fn start(url: &str, health: HealthReporter) -> Self {
        let state = DatabaseState {
            up: Arc::new(AtomicBool::new(true)),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(watch(Probe::new(url), state.clone(), health, stop.clone()));
        Self { state, stop, task }
    }

    /// What the monitor knows, for the guard.
    pub fn state(&self) -> DatabaseState {
        self.state.clone()
    }

    /// A layer answering API calls within their deadlines (see the module documentation);
    /// `max_call_duration` bounds calls that carry no deadline.
    pub fn guard(&self, max_call_duration: Duration) -> DatabaseGuardLayer {
        DatabaseGuardLayer {
            state: self.state(),
            max_call_duration,
        }
    }

    /// Stops probing and waits for the monitor to finish; health is left as it was.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.ok();
    }
}

async fn watch(
    mut probe: Probe,
    state: DatabaseState,
    health: HealthReporter,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let interval = if failures > 0 {
            PROBE_INTERVAL_DOWN
        } else {
            PROBE_INTERVAL_UP
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let answered = tokio::select! {
            () = stop.cancelled() => return,
            answered = probe.check() => answered,
        };
        failures = if answered {
            0
        } else {
            failures.saturating_add(1)
        };
        let up = failures < FAILURES_TO_MARK_DOWN;
        if up == state.is_up() {
            continue;
        }
        state.up.store(up, Ordering::Release);
        let status = if up {
            tracing::info!("database answers again: health SERVING");
            ServingStatus::Serving
        } else {
            tracing::warn!(failures, "database unreachable: health NOT_SERVING");
            ServingStatus::NotServing
        };
        health.set_service_status("", status).await;
        for name in SERVICE_NAMES {
            health.set_service_status(name, status).await;
        }
    }
}

/// One connection of the monitor's own, replaced whenever a probe fails.
struct Probe {
    url: String,
    connection: Option<ProbeConnection>,
}

enum ProbeConnection {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Probe {
    fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            connection: None,
        }
    }

    /// Whether the database answered a query within [`PROBE_TIMEOUT`].
    async fn check(&mut self) -> bool {
        let answered = match tokio::time::timeout(PROBE_TIMEOUT, self.query()).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::debug!(%error, "database probe failed");
                false
            }
            Err(_) => {
                tracing::debug!(timeout = ?PROBE_TIMEOUT, "database probe timed out");
                false
            }
        };
        if !answered {
            // Whatever state the connection is in, a fresh one tells the truth next time.
            self.connection = None;
        }
        answered
    }

    async fn query(&mut self) -> Result<(), sqlx::Error> {
        if self.connection.is_none() {
            self.connection = Some(if self.url.starts_with("postgres") {
                ProbeConnection::Postgres(sqlx::PgConnection::connect(&self.url).await?)
            } else {
                // Never create the file: a missing database must fail the probe.
                let url = self.url.replace("mode=rwc", "mode=rw");
                ProbeConnection::Sqlite(sqlx::SqliteConnection::connect(&url).await?)
            });
        }
        match self.connection.as_mut() {
            Some(ProbeConnection::Postgres(connection)) => {
                connection.execute("SELECT 1").await?;
            }
            // Reads the schema, so a missing or unreadable file fails the probe.
            Some(ProbeConnection::Sqlite(connection)) => {
                connection
                    .execute("SELECT count(*) FROM sqlite_master")
                    .await?;
            }
            None => {}
        }
        Ok(())
    }
}

/// Answers API calls within their deadlines; see the module documentation.
#[derive(Clone, Debug)]
pub struct DatabaseGuardLayer {
    state: DatabaseState,
    max_call_duration: Duration,
}

impl<S> Layer<S> for DatabaseGuardLayer {
    type Service = DatabaseGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DatabaseGuard {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`DatabaseGuardLayer`] makes.
#[derive(Clone, Debug)]
pub struct DatabaseGuard<S> {
    inner: S,
    layer: DatabaseGuardLayer,
}

/// Calls of these services use the database; health and reflection do not.
const GUARDED_PREFIX: &str = "/coupons.v1.";

impl<S, B> Service<http::Request<B>> for DatabaseGuard<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !request.uri().path().starts_with(GUARDED_PREFIX) {
            return Box::pin(self.inner.call(request));
        }
        if !self.layer.state.is_up() {
            return Box::pin(std::future::ready(Ok(unavailable(
                "the service cannot reach its database",
            ))));
        }
        let budget = grpc_timeout(request.headers()).map_or(self.layer.max_call_duration, |t| {
            t.min(self.layer.max_call_duration)
        });
        let answer_within = budget.saturating_sub(ANSWER_MARGIN.min(budget / 10));
        let call = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(answer_within, call).await {
                Ok(answered) => answered,
                Err(_) => {
                    tracing::warn!(
                        ?budget,
                        "the database did not answer within the call's deadline"
                    );
                    Ok(unavailable(
                        "the database did not answer within the call's deadline",
                    ))
                }
            }
        })
    }
}

fn unavailable(message: &str) -> http::Response<tonic::body::Body> {
    Status::unavailable(message).into_http()
}

/// The `grpc-timeout` header: up to 8 digits and a unit (H, M, S, m, u, n).
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3_600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().unwrap());
        headers
    }

    #[test]
    fn reads_grpc_timeouts() {
        assert_eq!(
            grpc_timeout(&header("1500m")),
            Some(Duration::from_millis(1_500))
        );
        assert_eq!(grpc_timeout(&header("2S")), Some(Duration::from_secs(2)));
        assert_eq!(
            grpc_timeout(&header("1H")),
            Some(Duration::from_secs(3_600))
        );
        assert_eq!(
            grpc_timeout(&header("99999999u")),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(
            grpc_timeout(&header("123456789S")),
            None,
            "at most 8 digits"
        );
        assert_eq!(grpc_timeout(&header("5x")), None);
        assert_eq!(grpc_timeout(&http::HeaderMap::new()), None);
    }
}
