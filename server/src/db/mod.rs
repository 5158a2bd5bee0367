//! Storage: one diesel code path over SQLite and PostgreSQL.
//!
//! [`DbConn`] is a `#[derive(diesel::MultiConnection)]` enum, so queries are written
//! once against it and run on either backend. The pool hands out connections to
//! blocking-pool tasks ([`Db::run`]); no query ever runs on an actor's thread.
//! Migrations for both backends (`migrations/sqlite`, `migrations/postgres`) are
//! embedded in the binary and run at start.
//!
//! Backend limits we design around (diesel's `MultiBackend`): no `ON CONFLICT`, no
//! `Bool` type. Uniqueness races are therefore resolved by catching the unique
//! violation inside a savepoint, and flags are `Integer` columns.

pub mod checkpoint;
mod connection;
pub mod gate;
mod pool;
pub mod prepared;
pub mod schema;

pub use connection::{DbConn, MultiBackend};
pub use pool::{suspect_connections, Manager, PoolConn};

/// Rows per multi-row INSERT from [`insert_rows!`]: at 30 columns a statement
/// stays under SQLite's 32,766 bound parameters (PostgreSQL allows 65,535).
pub const INSERT_CHUNK: usize = 1_000;

/// `insert_rows!(conn, table, &rows)`: one multi-row `INSERT` of `rows` (a slice of
/// insert forms, at most [`INSERT_CHUNK`]) on whichever backend `conn` (a
/// `&mut DbConn`) is; evaluates to `QueryResult<usize>`. Diesel builds multi-row
/// INSERTs per backend but not through the `MultiConnection`, hence the match.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            $crate::db::DbConn::Postgresql(c) => {
                diesel::insert_into($table).values($rows).execute(c)
            }
            $crate::db::DbConn::Sqlite(c) => diesel::insert_into($table).values($rows).execute(c),
        }
    };
}
pub(crate) use insert_rows;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel::r2d2::{Pool, PooledConnection, R2D2Connection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::{Config, DatabaseTarget};
use crate::error::AppError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// Arbitrary constant naming the PostgreSQL advisory lock that serialises migrations
/// when several nodes start at once.
const MIGRATION_LOCK_KEY: i64 = 0x5357_4254_4348; // "SWBTCH"

/// A pooled connection; it dereferences (twice) to the [`DbConn`] closures passed to
/// [`Db::run`] get.
pub type Conn = PooledConnection<Manager>;

/// Handle to the database: a connection pool plus the backend it talks to, and on
/// SQLite the thread that checkpoints its WAL ([`checkpoint`]) and the queue for its
/// write lock ([`gate`]). Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    backend: &'static str,
    checkpoints: Option<Arc<checkpoint::Checkpointer>>,
    gate: gate::WriteGate,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the pool, creating the SQLite file and its directory when needed, and
    /// runs pending migrations. Blocking: call it from a blocking context or at start.
    ///
    /// # Errors
    /// [`AppError::Unavailable`] when the database cannot be reached or migrated.
    pub fn open(config: &Config) -> Result<Self, AppError> {
        if let DatabaseTarget::Sqlite { path } = &config.database {
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    AppError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        let manager = Manager::new(config.database.clone());
        let pool = Pool::builder()
            .max_size(config.db_pool_size)
            .min_idle(Some(1))
            .connection_timeout(config.db_timeout)
            // Check out only live connections, so a database that came back after an
            // outage is used again without a restart. `Manager` tests only idle or
            // suspect connections (see `pool`), so a busy pool pays no round trip.
            .test_on_check_out(true)
            .idle_timeout(Some(Duration::from_secs(600)))
            .build(manager)
            .map_err(|e| AppError::Unavailable(format!("cannot open database: {e}")))?;
        let (checkpoints, gate) = match &config.database {
            DatabaseTarget::Sqlite { path } => (
                Some(Arc::new(
                    checkpoint::Checkpointer::start(path.clone()).map_err(|e| {
                        AppError::internal(format!("cannot start the checkpoint thread: {e}"))
                    })?,
                )),
                gate::WriteGate::sqlite(),
            ),
            DatabaseTarget::Postgres { .. } => (None, gate::WriteGate::none()),
        };
        let db = Self {
            pool,
            backend: config.database.backend_name(),
            checkpoints,
            gate,
        };
        let mut conn = db.conn()?;
        migrate(&mut conn)?;
        Ok(db)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The queue for SQLite's write lock ([`gate`]); a thread working for this
    /// database outside [`Db::run`] (the message writer) installs it with
    /// [`gate::WriteGate::within`].
    pub fn write_gate(&self) -> gate::WriteGate {
        self.gate.clone()
    }

    /// A commit added to SQLite's WAL: its checkpoint runs soon, on its own thread
    /// ([`checkpoint`]). A no-op on PostgreSQL.
    pub fn written(&self) {
        if let Some(c) = &self.checkpoints {
            c.written();
        }
    }

    /// Takes a connection from the pool, waiting up to the configured timeout.
    /// Blocking; use [`Db::run`] from async code.
    ///
    /// # Errors
    /// [`AppError::Unavailable`] when no connection can be had in time.
    pub fn conn(&self) -> Result<Conn, AppError> {
        watch_outage(self.pool.get().map_err(AppError::from))
    }

    /// Runs `f` with a pooled connection on the blocking thread pool and returns its
    /// result, so actors and request handlers never wait on the database themselves.
    ///
    /// # Errors
    /// Whatever `f` returns; [`AppError::Unavailable`] when no connection is available.
    pub async fn run<T, F>(&self, f: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let (pool, gate) = (self.pool.clone(), self.gate.clone());
        tokio::task::spawn_blocking(move || {
            watch_outage(gate.within(|| {
                pool.get()
                    .map_err(AppError::from)
                    .and_then(|mut conn| f(&mut conn))
            }))
        })
        .await
        .map_err(|e| AppError::internal(format!("database task failed: {e}")))?
    }

    /// `SELECT 1` round trip, for `/readyz`.
    ///
    /// # Errors
    /// [`AppError::Unavailable`] with the reason.
    pub async fn ping(&self) -> Result<(), AppError> {
        self.run(|c| {
            c.ping()
                .map_err(|e| AppError::Unavailable(format!("database ping failed: {e}")))
        })
        .await
    }
}

/// Passes `result` through; an [`AppError::Unavailable`] (no connection in time, a
/// lost connection, an outage-like error) also makes the pool test every older
/// connection before reuse ([`suspect_connections`]): the same outage may have cut them.
fn watch_outage<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if matches!(result, Err(AppError::Unavailable(_))) {
        suspect_connections();
    }
    result
}

fn migrate(conn: &mut DbConn) -> Result<(), AppError> {
    let fail = |e: Box<dyn std::error::Error + Send + Sync>| {
        AppError::Unavailable(format!("migration failed: {e}"))
    };
    match conn {
        DbConn::Sqlite(c) => {
            c.run_pending_migrations(SQLITE_MIGRATIONS).map_err(fail)?;
        }
        DbConn::Postgresql(c) => {
            // Several nodes may start together; only one may migrate at a time.
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .execute(c)?;
            let result = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ());
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                .execute(c)?;
            result.map_err(fail)?;
        }
    }
    Ok(())
}

/// Whether a diesel error is a unique-constraint violation (a lost race or a duplicate).
pub fn is_unique_violation(err: &diesel::result::Error) -> bool {
    matches!(
        err,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Runs `f` in a transaction that holds the write lock from its first statement.
///
/// On SQLite a plain `BEGIN` is deferred: a transaction that reads and then writes
/// must upgrade its lock, and if another connection committed in between SQLite
/// answers `SQLITE_BUSY` at once (no busy-timeout wait; see "BEGIN IMMEDIATE" in
/// <https://www.sqlite.org/lang_transaction.html>). With several writers (the message
/// writer, routing decisions) every read-then-write transaction uses
/// `BEGIN IMMEDIATE`, which waits for the lock up front instead. On PostgreSQL this
/// is an ordinary transaction (row locks do the same job there).
///
/// On SQLite it first queues for the lock in this process ([`gate`]), so it waits
/// for the writer before it, not in SQLite's sleeping busy handler.
///
/// Inside another transaction (a caller that writes an audit entry with the change,
/// `store::audit`) it becomes a savepoint of that transaction, which already holds
/// the lock when it was opened by this function.
///
/// # Errors
/// Whatever `f` returns, or the database error of BEGIN/COMMIT.
pub fn write_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    match conn {
        DbConn::Sqlite(sqlite) => {
            let nested = AnsiTransactionManager::transaction_manager_status_mut(sqlite)
                .transaction_depth()?
                .is_some();
            if nested {
                return conn.transaction(f);
            }
        }
        DbConn::Postgresql(_) => return conn.transaction(f),
    }
    // In this process's line for the lock first (`gate`), held to the end.
    let _held = gate::hold();
    if let DbConn::Sqlite(sqlite) = conn {
        AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    }
    match f(conn) {
        Ok(value) => {
            <DbConn as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            // The caller's error is the one worth reporting; a failed rollback leaves
            // the connection broken, which the pool detects and replaces.
            let _ = <DbConn as Connection>::TransactionManager::rollback_transaction(conn);
            Err(e)
        }
    }
}
