//! Persistence: SeaORM entities and repositories. Transactions, locking and the outbox live here;
//! callers get domain types and [`StoreError`], never entities or `DbErr`.

pub mod campaigns;
mod candidates;
pub mod coupons;
pub mod credits;
mod entities;
mod error;
pub mod events;
pub mod pins;
pub mod products;
pub mod purchases;
pub mod redemptions;
mod sql;
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
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};

pub use error::StoreError;

/// How to reach the database.
#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    /// `sqlite://path?mode=rwc` or `postgres://...`.
    pub url: String,
    /// Largest number of pooled connections.
    pub pool_size: u32,
}

/// The service's database: a pool shared by every repository.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    url: String,
    statements: Arc<AtomicU64>,
    events_committed: Arc<tokio::sync::Notify>,
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
        let mut options = ConnectOptions::new(settings.url.clone());
        options
            .max_connections(settings.pool_size)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            // A caller waiting longer than this for a connection gets UNAVAILABLE, not a hang.
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false)
            // WAL lets readers proceed beside the single writer; the busy timeout queues writers
            // instead of failing them at once.
            .map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        let mut db = Database::connect(options)
            .await
            .map_err(StoreError::from_connect)?;
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        Ok(Self {
            db,
            url: settings.url.clone(),
            statements,
            events_committed: Arc::default(),
        })
    }

    /// Runs every pending migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None)
            .await
            .map_err(|e| StoreError::Setup(format!("migration failed: {e}")))
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::from)
    }

    /// Statements this pool has executed: each one is a database round trip.
    pub fn statements_executed(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Connections the pool holds open, and how many of them are idle.
    pub fn pool_use(&self) -> (u32, usize) {
        match self.backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        }
    }

    /// The OpenTelemetry `db.system` of this database.
    pub fn db_system(&self) -> &'static str {
        match self.backend() {
            DbBackend::Postgres => "postgresql",
            _ => "sqlite",
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
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
