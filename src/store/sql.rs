//! Portable raw SQL for the statements SeaORM's builders do not express (conditional upserts,
//! `RETURNING` from guarded updates), and the retry of transactions that lost to contention.

use std::time::Duration;

use rand::Rng;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, Value};

use super::StoreError;

/// Attempts of a transaction that lost to contention before the caller gets ABORTED.
const ATTEMPTS: u32 = 8;

/// Runs `attempt` again while it loses to contention, with a growing, jittered pause.
pub(crate) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(StoreError::Contention(error)) if tries + 1 < ATTEMPTS => {
                tries += 1;
                let base = 5u64 << tries.min(6);
                let pause = base + rand::rng().random_range(0..base);
                tracing::debug!(%error, tries, "transaction lost to contention; retrying");
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            other => return other,
        }
    }
}

/// A statement in the backend's parameter syntax: `$1` for PostgreSQL, `?1` for SQLite.
pub(crate) fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => sql.replace("MAX(", "GREATEST("),
        _ => sql.replace('$', "?"),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

pub(crate) async fn execute(
    txn: &DatabaseTransaction,
    sql: &str,
    values: Vec<Value>,
) -> Result<u64, StoreError> {
    let result = txn
        .execute_raw(statement(txn.get_database_backend(), sql, values))
        .await?;
    Ok(result.rows_affected())
}
