//! What differs between the databases the service runs on, in one place. Portable statements
//! are built with sea-query, which writes each backend's syntax (placeholders, `GREATEST`, row
//! locks that SQLite has no need for); what remains is here, as exhaustive matches, so a new
//! backend is one more variant and the compiler names every decision it must make.
//!
//! What a backend must provide:
//! - transactions with conditional `UPDATE`s whose affected-row count is exact, `INSERT ... ON
//!   CONFLICT ... DO UPDATE ... WHERE` upserts, `RETURNING`, and partial unique indexes;
//! - for the event outbox, a way to read only rows that no running transaction can still precede
//!   ([`Dialect::outbox_txid`] and the horizon in `store::events`);
//! - for several replicas on one database, a cross-process wake-up (LISTEN/NOTIFY here; polling
//!   is the fallback) and a lock that serializes migrations.
//!
//! A PostgreSQL-compatible distributed database (CockroachDB, YugabyteDB) would be a variant
//! whose outbox horizon and notifications differ (no `pg_snapshot_xmin`; changefeeds instead of
//! NOTIFY) while the portable statements stay as they are.

use sea_orm::{sea_query::Expr, AccessMode, DbBackend, IsolationLevel};

use super::StoreError;

/// A database the service supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    /// The dialect of a connected backend; MySQL is refused at start.
    pub(crate) fn of(backend: DbBackend) -> Result<Self, StoreError> {
        match backend {
            DbBackend::Postgres => Ok(Dialect::Postgres),
            DbBackend::Sqlite => Ok(Dialect::Sqlite),
            // The backend enum is open-ended: anything else is refused at start, never guessed.
            other => Err(StoreError::Setup(format!(
                "{other:?} is not supported: use PostgreSQL or SQLite"
            ))),
        }
    }

    /// The OpenTelemetry `db.system` name.
    pub fn db_system(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgresql",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// What an outbox row records of its writing transaction: PostgreSQL's transaction id, so
    /// readers can wait for transactions that commit out of id order; 0 on SQLite, whose single
    /// writer commits rows in id order.
    pub(crate) fn outbox_txid(self) -> Expr {
        match self {
            Dialect::Postgres => Expr::cust("pg_current_xact_id()::text::bigint"),
            Dialect::Sqlite => Expr::val(0i64),
        }
    }

    /// How a read of several statements sees one snapshot, so that numbers read together agree:
    /// a read-only REPEATABLE READ transaction on PostgreSQL (READ COMMITTED would give each
    /// statement its own); on SQLite any transaction reads one WAL snapshot from its first read.
    pub(crate) fn snapshot(self) -> (Option<IsolationLevel>, Option<AccessMode>) {
        match self {
            Dialect::Postgres => (
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            ),
            Dialect::Sqlite => (None, None),
        }
    }

    /// Whether other processes share the database and must be told of commits (replicas on one
    /// PostgreSQL); a SQLite file has one process, which signals itself.
    pub(crate) fn has_replicas(self) -> bool {
        match self {
            Dialect::Postgres => true,
            Dialect::Sqlite => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_it_does_not_support() {
        assert_eq!(
            Dialect::of(DbBackend::Postgres).ok(),
            Some(Dialect::Postgres)
        );
        assert_eq!(Dialect::of(DbBackend::Sqlite).ok(), Some(Dialect::Sqlite));
        assert!(Dialect::of(DbBackend::MySql).is_err());
    }
}
