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
