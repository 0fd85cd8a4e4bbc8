//! The database cut off mid-load: PostgreSQL refusing connections or silently not answering
//! (through a proxy, so the shared cluster is untouched), SQLite's file locked by another
//! connection. Every call is answered within its deadline with UNAVAILABLE or ABORTED, never
//! INTERNAL; health follows the database while liveness does not; service resumes without a
//! restart; and the history checks out.

use std::{
    str::FromStr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use coupon_service::{
    pb,
    server::{LIVENESS, SERVICE_NAMES},
};
use sea_orm::sqlx::{self, ConnectOptions, Connection, Executor};
use tonic::{transport::Channel, Code, Status};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

use crate::{
    common::{
        proxy::{DbProxy, Mode},
        spawn_app, spawn_app_with, Backend, TestApp,
    },
    history::{self, Policy, Targets},
};

/// The deadline of every call during the load.
const DEADLINE: Duration = Duration::from_secs(2);
/// Calls answered before the cut.
const BEFORE_CUT: usize = 40;
/// The flows of the load.
const FLOWS: usize = 60;
/// How long a test waits for the load to feel a fault before it fails rather than hangs.
const FELT_WITHIN: Duration = Duration::from_secs(60);

async fn health(channel: &Channel, service: &str) -> ServingStatus {
    let mut client = HealthClient::new(channel.clone());
    let check = client.check(HealthCheckRequest {
        service: service.into(),
    });
    let answer = tokio::time::timeout(DEADLINE, check)
        .await
        .expect("health answers within a deadline whatever the database does")
        .expect("health answers whatever the database does")
        .into_inner();
    ServingStatus::try_from(answer.status).unwrap()
}

/// Polls until `service` reports `expected`; panics after a generous bound.
async fn wait_for_health(channel: &Channel, service: &str, expected: ServingStatus) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while health(channel, service).await != expected {
        assert!(
            Instant::now() < give_up,
            "{service:?} never became {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a call may be answered while the database is cut: a status the server sent (not a
/// transport failure), and UNAVAILABLE or ABORTED unless it is a definite answer.
fn allowed_during_cut(status: &Status) -> bool {
    status.metadata().get("x-request-id").is_some()
        && (matches!(status.code(), Code::Unavailable | Code::Aborted) || history::definite(status))
}

/// Starts the load and waits until it is well under way.
async fn start_load(
    app: &TestApp,
    flows: usize,
) -> (tokio::task::JoinHandle<history::History>, Arc<AtomicUsize>) {
    history::prepare(app).await;
    let answered = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(history::run(
        Targets::new(vec![app.channel.clone()]),
        app.token.clone(),
        flows,
        8,
        Arc::new(Policy {
            deadline: DEADLINE,
            definite: history::definite,
        }),
        answered.clone(),
    ));
    while answered.load(Ordering::Relaxed) < BEFORE_CUT {
        assert!(!load.is_finished(), "the load ended before the cut");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (load, answered)
}

/// Health while the database is down: NOT_SERVING server-wide and per service, SERVING for
/// liveness; and a call without a deadline is refused at once rather than left waiting.
async fn assert_down(app: &TestApp) {
    wait_for_health(&app.channel, "", ServingStatus::NotServing).await;
    for name in SERVICE_NAMES {
        assert_eq!(
            health(&app.channel, name).await,
            ServingStatus::NotServing,
            "{name}"
        );
    }
    assert_eq!(health(&app.channel, LIVENESS).await, ServingStatus::Serving);
    let status = app
        .coupons(&app.token)
        .list_redemptions(pb::ListRedemptionsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

async fn finish(app: &TestApp, load: tokio::task::JoinHandle<history::History>) {
    let history = load.await.expect("the load");
    for status in &history.seen {
        assert!(allowed_during_cut(status), "{status:?}");
    }
    assert!(
        history.seen.iter().any(|s| s.code() == Code::Unavailable),
        "the cut was felt"
    );
    history::check(&app.database_url, &history).await;
}

async fn postgres_cut(mode: Mode) {
    let proxy = DbProxy::before_test_postgres().await;
    let app = spawn_app_with(Backend::Postgres, |settings| {
        settings.database.database_url = proxy.route(&settings.database.database_url);
    })
    .await;
    let (load, _) = start_load(&app, FLOWS).await;
    proxy.set(mode);
    assert_down(&app).await;
    proxy.set(Mode::Forward);
    // Back without a restart: health first, then every call the load retries.
    for name in ["", LIVENESS].into_iter().chain(SERVICE_NAMES) {
        wait_for_health(&app.channel, name, ServingStatus::Serving).await;
    }
    finish(&app, load).await;
}

/// A database that refuses connections at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refusing_connections_mid_load() {
    postgres_cut(Mode::Refuse).await;
}

/// A database whose address stops answering: nothing is refused, nothing comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_not_answering_mid_load() {
    postgres_cut(Mode::Blackhole).await;
}

/// Sessions terminated by the administrator (SQLSTATE 57P01, as in a PostgreSQL restart) are
/// UNAVAILABLE, never INTERNAL, and the service carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_terminated_sessions_mid_load() {
    let app = spawn_app(Backend::Postgres).await;
    let (load, answered) = start_load(&app, FLOWS).await;
    let (base, name) = app.database_url.rsplit_once('/').unwrap();
    let admin = sea_orm::Database::connect(format!("{base}/postgres"))
        .await
        .unwrap();
    let terminate = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    );
    // Several rounds while calls are in flight.
    for round in 1..=3 {
        sea_orm::ConnectionTrait::execute_unprepared(&admin, &terminate)
            .await
            .unwrap();
        let target = BEFORE_CUT + round * 15;
        while answered.load(Ordering::Relaxed) < target && !load.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    admin.close().await.ok();
    finish_allowing_quiet_cut(&app, load).await;
}

/// SQLite's file locked by another connection's exclusive transaction: calls get UNAVAILABLE
/// (their deadline ran out, or no pooled connection was free) or ABORTED (contention), never
/// INTERNAL; the file stays readable in WAL mode, so health stays SERVING; releasing the lock
/// resumes service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_locked_mid_load() {
    let app = spawn_app(Backend::Sqlite).await;
    // Many more flows than the other cuts: taking the lock can wait for the server's writers,
    // and the load must still be running when the lock is finally held.
    let (load, answered) = start_load(&app, FLOWS * 8).await;
    // The server's writers take the write lock back to back; a patient locker gets its turn.
    let mut locker = sqlx::sqlite::SqliteConnectOptions::from_str(&app.database_url)
        .unwrap()
        .busy_timeout(FELT_WITHIN)
        .connect()
        .await
        .unwrap();
    locker.execute("BEGIN EXCLUSIVE").await.unwrap();
    // Hold the lock for at least two calls' deadlines' worth of answers.
    let held_from = answered.load(Ordering::Relaxed);
    let give_up = Instant::now() + FELT_WITHIN;
    while answered.load(Ordering::Relaxed) < held_from + 16 {
        assert!(
            !load.is_finished(),
            "the load ended while the lock was held"
        );
        assert!(
            Instant::now() < give_up,
            "calls stopped being answered under the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The file is still readable: a lock is contention, not an outage.
    assert_eq!(health(&app.channel, "").await, ServingStatus::Serving);
    locker.execute("ROLLBACK").await.unwrap();
    locker.close().await.ok();
    finish(&app, load).await;
}

/// Like `finish`, for a cut so brief that the load may not have felt it.
async fn finish_allowing_quiet_cut(app: &TestApp, load: tokio::task::JoinHandle<history::History>) {
    let history = load.await.expect("the load");
    for status in &history.seen {
        assert!(allowed_during_cut(status), "{status:?}");
    }
    history::check(&app.database_url, &history).await;
}
