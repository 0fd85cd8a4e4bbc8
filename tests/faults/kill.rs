//! `kill -9` of a server process mid-load, on SQLite and PostgreSQL: two real server processes
//! take concurrent Redeem, Confirm, Revert and Purchase calls; one is killed; every unanswered
//! call is retried with the same key on the survivor or the restarted process; then the
//! database is checked against every answer.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use tonic::{Code, Status};

use crate::{
    common::{connect, spawn_app, Backend, ServerProcess},
    history::{self, Policy, Targets},
};

/// Calls answered before the kill.
const BEFORE_KILL: usize = 60;

/// After a kill, transport failures of the killed process's calls are unanswered, to retry;
/// every status a server sent is judged as usual.
fn definite_after_kill(status: &Status) -> bool {
    status.metadata().get("x-request-id").is_some() && history::definite(status)
}

async fn kill_9_mid_load_loses_and_doubles_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    history::prepare(&app).await;
    let mut doomed = ServerProcess::spawn(&app.database_url);
    let survivor = ServerProcess::spawn(&app.database_url);
    let targets = Targets::new(vec![
        connect(doomed.addr).await,
        connect(survivor.addr).await,
    ]);
    let answered = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(history::run(
        targets.clone(),
        app.token.clone(),
        80,
        12,
        Arc::new(Policy {
            deadline: Duration::from_secs(5),
            definite: definite_after_kill,
        }),
        answered.clone(),
    ));
    while answered.load(Ordering::Relaxed) < BEFORE_KILL {
        assert!(!load.is_finished(), "the load ended before the kill");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    doomed.kill_9();
    let restarted = ServerProcess::spawn(&app.database_url);
    targets.replace(0, connect(restarted.addr).await);
    let history = load.await.expect("the load");
    assert!(
        history
            .seen
            .iter()
            .any(|s| s.metadata().get("x-request-id").is_none()),
        "calls were in flight on the killed process"
    );
    assert!(
        history
            .seen
            .iter()
            .all(|s| s.code() != Code::Internal || s.metadata().get("x-request-id").is_none()),
        "no server answered INTERNAL"
    );
    history::check(&app.database_url, &history).await;
}

crate::on_both_databases!(kill_9_mid_load_loses_and_doubles_nothing);
