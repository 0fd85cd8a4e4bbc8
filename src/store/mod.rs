//! Persistence: SeaORM entities and repositories. Transactions, locking and the outbox live here;
//! callers get domain types and [`StoreError`], never entities or `DbErr`.

pub mod audit;
pub mod campaigns;
mod candidates;
pub use candidates::Candidates;
mod dialect;
pub use dialect::Dialect;
pub mod coupons;
pub mod credits;
mod entities;
mod error;
pub mod events;
pub mod pins;
pub mod policies;
pub mod products;
pub mod purchases;
pub mod quotas;
pub mod redemptions;
mod retry;
pub mod stats;
pub mod tenants;

use std::{
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};

pub use error::StoreError;

/// How to reach the database.
#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    /// `sqlite://path?mode=rwc` or `postgres://...`.
    pub url: String,
    /// Largest number of pooled connections.
    pub pool_size: u32,
    /// How SQLite syncs commits to disk; ignored for PostgreSQL.
    pub sqlite_synchronous: SqliteSynchronous,
}

/// SQLite's `synchronous` setting: what an acknowledged commit survives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SqliteSynchronous {
    /// Every commit is on disk before it is acknowledged: survives a power or OS crash.
    #[default]
    Full,
    /// Faster commits that survive a process crash but may be lost, with the PINs they sold
    /// returned to stock, by a power or OS crash. Only by explicit choice.
    Normal,
}

/// The service's database: a pool shared by every repository.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    url: String,
    dialect: Dialect,
    statements: Arc<AtomicU64>,
    events_committed: Arc<tokio::sync::Notify>,
    /// Commits whose events other replicas have not been told of yet.
    commits_to_announce: Arc<tokio::sync::Notify>,
}

/// One page of a keyset-paginated listing: `next_after` is the last key when more may follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_after: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says that more exist.
    fn from_rows(mut items: Vec<T>, limit: u64, key: impl Fn(&T) -> String) -> Self {
        let more = items.len() as u64 > limit;
        items.truncate(limit as usize);
        let next_after = if more { items.last().map(key) } else { None };
        Self { items, next_after }
    }
}

impl Store {
    /// Connects, creating the SQLite file and its directory when needed.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        if let Some(path) = sqlite_path(&settings.url) {
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Setup(e.to_string()))?;
            }
        }
        let synchronous = match settings.sqlite_synchronous {
            SqliteSynchronous::Full => sea_orm::sqlx::sqlite::SqliteSynchronous::Full,
            SqliteSynchronous::Normal => sea_orm::sqlx::sqlite::SqliteSynchronous::Normal,
        };
        let mut options = ConnectOptions::new(settings.url.clone());
        options
            .max_connections(settings.pool_size)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            // A caller waiting longer than this for a connection gets UNAVAILABLE, not a hang.
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false)
            // WAL lets readers proceed beside the single writer; the busy timeout queues writers
            // instead of failing them at once. FULL by default: in WAL mode NORMAL may lose the
            // last commits, acknowledged to callers, to a power or OS crash.
            .map_sqlx_sqlite_opts(move |opts| {
                opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(synchronous)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        let mut db = Database::connect(options)
            .await
            .map_err(StoreError::from_connect)?;
        let dialect = Dialect::of(db.get_database_backend())?;
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        Ok(Self {
            db,
            url: settings.url.clone(),
            dialect,
            statements,
            events_committed: Arc::default(),
            commits_to_announce: Arc::default(),
        })
    }

    /// Runs every pending migration. On PostgreSQL, replicas that start together all call this:
    /// the migrations run in one transaction holding an advisory lock, so exactly one replica
    /// migrates while the others wait for it and then find nothing left to do. A database that a
    /// newer release already migrated further is served as it is.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
        /// The advisory lock that serialises migrations across replicas ("coupons" in ASCII).
        const MIGRATION_LOCK_KEY: i64 = 0x0063_6f75_706f_6e73;
        /// Applies the pending migrations, unless the database holds migrations this binary
        /// does not know: a newer release migrated it, and this one is a rollback or an old pod
        /// restarting during a rollout. Migrations keep the previous release working, so it
        /// serves the schema as it is; a database that also lacks migrations this binary needs
        /// is refused.
        async fn apply_migrations<'c, C>(db: &'c C) -> Result<(), sea_orm::DbErr>
        where
            C: sea_orm::ConnectionTrait,
            &'c C: migration::IntoSchemaManagerConnection<'c>,
        {
            let manager = migration::SchemaManager::new(db);
            if manager.has_table("seaql_migrations").await? {
                let rows = db
                    .query_all_raw(sea_orm::Statement::from_string(
                        db.get_database_backend(),
                        "SELECT version FROM seaql_migrations",
                    ))
                    .await?;
                let applied = rows
                    .iter()
                    .map(|row| row.try_get::<String>("", "version"))
                    .collect::<Result<Vec<_>, _>>()?;
                let known: Vec<String> = Migrator::migrations()
                    .iter()
                    .map(|m| m.name().to_owned())
                    .collect();
                let newer: Vec<&String> = applied.iter().filter(|v| !known.contains(v)).collect();
                if !newer.is_empty() {
                    let missing = known.iter().filter(|k| !applied.contains(k)).count();
                    if missing > 0 {
                        return Err(sea_orm::DbErr::Custom(format!(
                            "the database has migrations this binary does not know ({newer:?}) and lacks \
                             {missing} it needs"
                        )));
                    }
                    tracing::warn!(
                        ?newer,
                        "the database schema is newer than this binary; serving it as it is"
                    );
                    return Ok(());
                }
            }
            Migrator::up(db, None).await
        }
        let failed = |e: sea_orm::DbErr| StoreError::Setup(format!("migration failed: {e}"));
        if !self.dialect.has_replicas() {
            // A SQLite file belongs to one node, where one process migrates it on start.
            return apply_migrations(&self.db).await.map_err(failed);
        }
        // A transaction-scoped lock is released by commit, rollback or a lost connection alike,
        // so a replica killed mid-migration never leaves the others waiting forever. Each
        // migration runs in a savepoint of this transaction: the schema moves all at once.
        let transaction = self.db.begin().await.map_err(failed)?;
        transaction
            .execute_unprepared(&format!(
                "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
            ))
            .await
            .map_err(failed)?;
        apply_migrations(&transaction).await.map_err(failed)?;
        transaction.commit().await.map_err(failed)
    }

    /// The `synchronous` setting a pooled SQLite connection runs with; `None` on PostgreSQL,
    /// where durability is the server's own configuration.
    pub async fn sqlite_synchronous(&self) -> Result<Option<SqliteSynchronous>, StoreError> {
        if self.dialect != Dialect::Sqlite {
            return Ok(None);
        }
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA synchronous",
            ))
            .await?
            .ok_or_else(|| StoreError::Corrupt("PRAGMA synchronous answered nothing".into()))?;
        // 2 is FULL, 1 NORMAL (0 OFF, 3 EXTRA are never configured here).
        match row.try_get_by_index::<i64>(0)? {
            2 => Ok(Some(SqliteSynchronous::Full)),
            1 => Ok(Some(SqliteSynchronous::Normal)),
            other => Err(StoreError::Corrupt(format!(
                "PRAGMA synchronous is {other}"
            ))),
        }
    }

    /// Statements this pool has executed: each one is a database round trip.
    pub fn statements_executed(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Connections the pool holds open, and how many of them are idle.
    pub fn pool_use(&self) -> (u32, usize) {
        match self.dialect {
            Dialect::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            Dialect::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        }
    }

    /// The OpenTelemetry `db.system` of this database.
    pub fn db_system(&self) -> &'static str {
        self.dialect.db_system()
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(self) {
        if let Err(error) = self.db.close().await {
            tracing::warn!(%error, "closing the database pool failed");
        }
    }

    pub(crate) fn conn(&self) -> &DatabaseConnection {
        &self.db
    }
}

/// The file path of a SQLite URL, if it is one with a file.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// A new identifier: a prefix and a time-ordered UUIDv7, so ids sort by creation.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://data/c.db?mode=rwc"),
            Some("data/c.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }

    #[test]
    fn pages_know_when_more_follow() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_after.as_deref(), Some("2"));
        let last = Page::from_rows(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(last.next_after, None);
    }
}
