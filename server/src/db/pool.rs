//! The pool's connection factory and its liveness rule: which checked-out
//! connections get a `SELECT 1` before use.
//!
//! Testing every checkout made `SELECT 1` the most frequent statement of the
//! PostgreSQL message path (pg_stat_statements, `docs/performance.md`). Testing none
//! hands out connections an outage cut, so the first requests after the database
//! came back fail with 503 (the e2e `outage` test caught exactly that). The rule in
//! between ([`needs_test`]): a connection is tested when it has been idle longer than
//! [`IDLE_BEFORE_TEST`], or when a lost-connection error has been seen anywhere in the
//! process since it was last known good ([`suspect_connections`]). Under load neither
//! holds and checkouts cost nothing; after an outage every older connection is tested
//! once before it is used again.
//!
//! What is left: a connection cut silently (no error seen yet) and reused within
//! [`IDLE_BEFORE_TEST`] of its last use fails its request once with 503 — a retryable
//! answer that stores nothing — and that failure makes every other connection suspect.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, R2D2Connection};

use super::DbConn;
use crate::config::DatabaseTarget;

/// A connection idle this long is tested before use: the database may have
/// restarted meanwhile without any request noticing.
pub const IDLE_BEFORE_TEST: Duration = Duration::from_secs(1);

/// Bumped whenever an error suggests connections were lost. Process-wide rather than
/// per pool: a test process runs many pools, and a spurious bump costs each of their
/// connections one `SELECT 1`, nothing more.
static LOST_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Marks every pooled connection as suspect: each is tested once at its next
/// checkout. Called where a database error is seen that may mean a lost connection:
/// [`super::Db::run`] and [`super::Db::conn`] on an `Unavailable` answer, the message
/// writer on a failed commit.
pub fn suspect_connections() {
    LOST_GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// Whether a connection must be tested before use: it was last known good before the
/// latest suspicion (`verified < lost`), or it has sat idle for [`IDLE_BEFORE_TEST`]
/// or longer.
pub fn needs_test(verified: u64, lost: u64, idle: Duration) -> bool {
    verified < lost || idle >= IDLE_BEFORE_TEST
}

/// A pooled connection with what the liveness rule needs to know about it.
/// Dereferences to [`DbConn`], so queries take `&mut conn` as before.
pub struct PoolConn {
    conn: DbConn,
    /// The [`LOST_GENERATION`] at which it was opened or last passed a test.
    verified: u64,
    /// When it last went back to the pool (or was opened).
    returned: Instant,
}

impl Deref for PoolConn {
    type Target = DbConn;

    fn deref(&self) -> &DbConn {
        &self.conn
    }
}

impl DerefMut for PoolConn {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.conn
    }
}

/// The pool's connection factory: opens connections of the configured backend;
/// SQLite connections get their pragmas here because they are per-connection settings.
#[derive(Debug, Clone)]
pub struct Manager {
    target: DatabaseTarget,
}

impl Manager {
    /// A factory for `target`.
    pub fn new(target: DatabaseTarget) -> Self {
        Self { target }
    }

    fn establish(&self) -> ConnectionResult<DbConn> {
        match &self.target {
            DatabaseTarget::Postgres { url } => {
                diesel::PgConnection::establish(url.expose()).map(DbConn::Postgresql)
            }
            DatabaseTarget::Sqlite { path } => {
                let mut conn = diesel::SqliteConnection::establish(path)?;
                // WAL lets readers work while the writer commits; NORMAL sync is
                // durable against process crashes (the WAL is fsynced at checkpoints),
                // busy_timeout turns writer contention into waiting instead of errors.
                // No commit checkpoints: the checkpoint thread does (`checkpoint`).
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
                     PRAGMA wal_autocheckpoint = 0;",
                )
                .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for Manager {
    type Connection = PoolConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PoolConn, Self::Error> {
        // Read before connecting: a suspicion raised meanwhile must still apply.
        let verified = LOST_GENERATION.load(Ordering::Acquire);
        let conn = self
            .establish()
            .map_err(diesel::r2d2::Error::ConnectionError)?;
        Ok(PoolConn {
            conn,
            verified,
            returned: Instant::now(),
        })
    }

    /// Runs at every checkout (`test_on_check_out`); tests only what [`needs_test`]
    /// names.
    fn is_valid(&self, conn: &mut PoolConn) -> Result<(), Self::Error> {
        let lost = LOST_GENERATION.load(Ordering::Acquire);
        if !needs_test(conn.verified, lost, conn.returned.elapsed()) {
            return Ok(());
        }
        conn.conn.ping().map_err(diesel::r2d2::Error::QueryError)?;
        conn.verified = lost;
        Ok(())
    }

    /// Runs at every check-in, so it is also where the idle clock starts.
    fn has_broken(&self, conn: &mut PoolConn) -> bool {
        conn.returned = Instant::now();
        std::thread::panicking() || conn.conn.is_broken()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_connection_known_good_is_not_tested() {
        assert!(!needs_test(3, 3, Duration::from_millis(5)));
        assert!(!needs_test(
            4,
            3,
            IDLE_BEFORE_TEST - Duration::from_millis(1)
        ));
    }

    #[test]
    fn a_connection_older_than_the_last_suspicion_is_tested() {
        assert!(needs_test(2, 3, Duration::ZERO));
    }

    #[test]
    fn an_idle_connection_is_tested() {
        assert!(needs_test(3, 3, IDLE_BEFORE_TEST));
        assert!(needs_test(3, 3, Duration::from_secs(600)));
    }
}
