//! The store's one error type; `DbErr` is classified here and nowhere else.

use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// What went wrong with persistence, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist for this tenant. Becomes NOT_FOUND.
    #[error("not found")]
    NotFound,
    /// A unique key is taken. Becomes ALREADY_EXISTS.
    #[error("already exists")]
    AlreadyExists,
    /// The database cannot be reached or has no free connection. Becomes UNAVAILABLE.
    #[error("database unavailable")]
    Unavailable(#[source] DbErr),
    /// Lock contention the database gave up on (a PostgreSQL serialization failure or deadlock,
    /// SQLite busy): safe to retry the whole transaction. Becomes ABORTED if retries run out.
    #[error("contention")]
    Contention(#[source] DbErr),
    /// A limit refused the redemption of `code` when consumed atomically. Becomes
    /// FAILED_PRECONDITION with the reason.
    #[error("{code}: {}", reason.code())]
    Refused {
        code: crate::domain::Code,
        reason: crate::domain::engine::Reason,
    },
    /// No PIN of the product is left to sell. Becomes FAILED_PRECONDITION `PRODUCT_UNAVAILABLE`.
    #[error("product out of stock")]
    OutOfStock,
    /// The tenant's credits do not cover the price. Becomes FAILED_PRECONDITION
    /// `INSUFFICIENT_CREDITS`.
    #[error("insufficient credits")]
    InsufficientCredits,
    /// The database could not be prepared (directory, connection, migrations). Fatal at start.
    #[error("{0}")]
    Setup(String),
    /// A stored value is not what the code expects: a bug or a hand-edited row. Becomes INTERNAL.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Any other database failure. Becomes INTERNAL.
    #[error("database error")]
    Database(#[source] DbErr),
}

impl StoreError {
    pub(crate) fn from_connect(err: DbErr) -> Self {
        StoreError::Setup(format!("cannot connect to the database: {err}"))
    }
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
            return StoreError::AlreadyExists;
        }
        if is_unreachable(&err) {
            return StoreError::Unavailable(err);
        }
        if is_contention(&err) {
            return StoreError::Contention(err);
        }
        StoreError::Database(err)
    }
}

fn is_unreachable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => matches!(
            e.as_ref(),
            sea_orm::sqlx::Error::Io(_)
                | sea_orm::sqlx::Error::PoolTimedOut
                | sea_orm::sqlx::Error::PoolClosed
                | sea_orm::sqlx::Error::WorkerCrashed
        ),
        _ => false,
    }
}

/// PostgreSQL serialization failure (40001) or deadlock (40P01); SQLite busy or locked, in any
/// of their extended forms (5, 6, 261, 517, ...).
fn is_contention(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(db) = e.as_ref() else {
        return false;
    };
    match db.code().as_deref() {
        Some("40001") | Some("40P01") => true,
        Some(code) => code.parse::<i64>().is_ok_and(|n| matches!(n & 0xff, 5 | 6)),
        None => false,
    }
}
