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
    /// A counter refused a redemption of the coupon when consumed atomically; the use case says
    /// what that means to the caller.
    #[error("coupon {coupon_id}: {exhausted:?}")]
    LimitReached {
        coupon_id: String,
        exhausted: super::redemptions::Exhausted,
    },
    /// No PIN of the product is left to sell. Becomes FAILED_PRECONDITION `PRODUCT_UNAVAILABLE`.
    #[error("product out of stock")]
    OutOfStock,
    /// The tenant's credits do not cover the price. Becomes FAILED_PRECONDITION
    /// `INSUFFICIENT_CREDITS`.
    #[error("insufficient credits")]
    InsufficientCredits,
    /// PINs of an import (by position in it) are already stock of another product of the
    /// tenant. Becomes ALREADY_EXISTS `PIN_IN_ANOTHER_PRODUCT`; nothing was imported.
    #[error("PINs already in another product")]
    PinInAnotherProduct { positions: Vec<usize> },
    /// Adding the credits would take the balance beyond what can be counted. Becomes
    /// FAILED_PRECONDITION `BALANCE_OVERFLOW`.
    #[error("balance would overflow")]
    BalanceOverflow,
    /// The database could not be prepared (directory, connection, migrations). Fatal at start.
    #[error("{0}")]
    Setup(String),
    /// A stored value is not what the code expects: a bug or a hand-edited row. Becomes INTERNAL.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database refused a value the caller sent (PostgreSQL data exception, class 22). Becomes
    /// INVALID_ARGUMENT; the edge should have refused it first.
    #[error("the database refused a value")]
    BadValue(#[source] DbErr),
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
        match classify(&err) {
            Fault::Unreachable => StoreError::Unavailable(err),
            Fault::Contention => StoreError::Contention(err),
            Fault::BadValue => StoreError::BadValue(err),
            Fault::Other => StoreError::Database(err),
        }
    }
}

/// What kind of failure a database error is, decided per backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The database cannot be reached, or dropped the connection.
    Unreachable,
    /// Lock contention: the whole transaction may be retried.
    Contention,
    /// A value the caller sent cannot be stored (such as text with a NUL byte).
    BadValue,
    /// Anything else: a bug, a missing grant, a broken schema.
    Other,
}

fn classify(err: &DbErr) -> Fault {
    let sqlx = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return Fault::Unreachable,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            e.as_ref()
        }
        _ => return Fault::Other,
    };
    use sea_orm::sqlx::Error;
    match sqlx {
        Error::Io(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed => {
            Fault::Unreachable
        }
        Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or_default();
            if db
                .try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                classify_postgres(code)
            } else {
                classify_sqlite(code)
            }
        }
        _ => Fault::Other,
    }
}

/// PostgreSQL by SQLSTATE class. Only serialization failures and deadlocks are contention: a
/// missing GRANT (42501) retried would look like endless contention to the caller.
pub(crate) fn classify_postgres(sqlstate: &str) -> Fault {
    match sqlstate {
        "40001" | "40P01" => Fault::Contention,
        // Connection exceptions; admin or crash shutdown (57P01..57P03) and a database being
        // dropped or restarted (57P04 is unused, 57P05 idle session timeout).
        s if s.starts_with("08") || s.starts_with("57P") => Fault::Unreachable,
        // Data exceptions: a value the caller sent (NUL byte, out-of-range number).
        s if s.starts_with("22") => Fault::BadValue,
        _ => Fault::Other,
    }
}

/// SQLite by its primary result code (the low byte of the extended code): BUSY (5) and LOCKED
/// (6) are contention; CANTOPEN (14) and IOERR (10) mean the file cannot be used; TOOBIG (18)
/// and MISMATCH (20) are values the caller sent.
pub(crate) fn classify_sqlite(code: &str) -> Fault {
    match code.parse::<i64>().map(|n| n & 0xff) {
        Ok(5 | 6) => Fault::Contention,
        Ok(10 | 14) => Fault::Unreachable,
        Ok(18 | 20) => Fault::BadValue,
        _ => Fault::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_states_are_classified_by_class() {
        assert_eq!(classify_postgres("40001"), Fault::Contention);
        assert_eq!(classify_postgres("40P01"), Fault::Contention);
        assert_eq!(classify_postgres("57P01"), Fault::Unreachable);
        assert_eq!(classify_postgres("57P03"), Fault::Unreachable);
        assert_eq!(classify_postgres("08006"), Fault::Unreachable);
        assert_eq!(classify_postgres("22021"), Fault::BadValue);
        assert_eq!(classify_postgres("22003"), Fault::BadValue);
        // These once matched SQLite's busy test (`code & 0xff` of 5 or 6) and were retried.
        assert_eq!(classify_postgres("22022"), Fault::BadValue);
        assert_eq!(classify_postgres("42501"), Fault::Other);
        assert_eq!(classify_postgres("42P01"), Fault::Other);
    }

    #[test]
    fn sqlite_codes_are_classified_by_primary_code() {
        assert_eq!(classify_sqlite("5"), Fault::Contention);
        assert_eq!(classify_sqlite("517"), Fault::Contention);
        assert_eq!(classify_sqlite("262"), Fault::Contention);
        assert_eq!(classify_sqlite("14"), Fault::Unreachable);
        assert_eq!(classify_sqlite("2067"), Fault::Other);
        assert_eq!(classify_sqlite("1"), Fault::Other);
    }
}
