//! SQLite's WAL checkpoints, on a thread of their own instead of inside commits.
//!
//! Why: SQLite checkpoints inside the commit of whichever connection leaves the WAL
//! at `wal_autocheckpoint` pages or more (<https://www.sqlite.org/wal.html>,
//! "Automatic Checkpoint"). That count is the WAL's length since its last restart,
//! and the WAL only restarts when no reader still uses it. The hub always has
//! readers (the pipeline, sessions, the API), so once the WAL passed that size every
//! commit checkpointed: two fsyncs and page copies inside the message writer's loop.
//! The webhook bench measured a quarter of the writer thread's CPU there and 150
//! fsyncs a second, each holding up a whole batch of callers.
//!
//! So pooled connections run with `wal_autocheckpoint = 0` (`pool`), and this
//! thread, with a connection of its own, runs `PRAGMA wal_checkpoint(PASSIVE)`,
//! which never waits for and never blocks readers or writers
//! (<https://www.sqlite.org/c3ref/wal_checkpoint_v2.html>): after commits the message
//! writer reports ([`Checkpointer::written`]), at most once per [`GAP`], and at
//! least once per [`IDLE`] for every other connection's writes.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use parking_lot::{Condvar, Mutex};

/// Shortest time between two checkpoints under load: the WAL gathers this much
/// traffic per checkpoint, so its two fsyncs are shared by every commit in it.
pub const GAP: Duration = Duration::from_millis(50);

/// Longest time between two checkpoints: writes the message writer does not report
/// (the pipeline, the API) are checkpointed at least this often.
pub const IDLE: Duration = Duration::from_secs(1);

/// What `PRAGMA wal_checkpoint` answers (<https://www.sqlite.org/pragma.html#pragma_wal_checkpoint>).
#[derive(QueryableByName, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpointed {
    /// 1 when a FULL, RESTART or TRUNCATE checkpoint was blocked from completing;
    /// a PASSIVE one (ours) answers 0.
    #[diesel(sql_type = BigInt)]
    pub busy: i64,
    /// Frames (pages) in the WAL; -1 when the database is not in WAL mode.
    #[diesel(sql_type = BigInt)]
    pub log: i64,
    /// Of those, frames now copied into the database file.
    #[diesel(sql_type = BigInt)]
    pub checkpointed: i64,
}

/// Runs one passive checkpoint on `conn`.
///
/// # Errors
/// The database error of the PRAGMA (an unreadable file, a closed connection).
pub fn passive(conn: &mut SqliteConnection) -> QueryResult<Checkpointed> {
    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(conn)
}

#[derive(Default)]
struct Signal {
    /// Something was committed since the last checkpoint began.
    written: bool,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    signal: Mutex<Signal>,
    wake: Condvar,
}

/// The checkpoint thread of one SQLite database. Dropping it stops the thread and
/// waits for it (the last [`crate::db::Db`] clone going away closes its connection too).
pub struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// Starts the thread for the SQLite file at `path`.
    ///
    /// # Errors
    /// The OS's error when it refuses a thread.
    pub fn start(path: String) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("switchboard-checkpoint".into())
                .spawn(move || run(&path, &shared))?
        };
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// A commit added to the WAL: checkpoint soon. Cheap enough for every batch.
    pub fn written(&self) {
        let mut signal = self.shared.signal.lock();
        if !signal.written {
            signal.written = true;
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.signal.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("checkpoint thread panicked");
            }
        }
    }
}

/// Waits up to `timeout` for a report (`take_written`: and takes it, since the
/// checkpoint about to run covers it) or, without `take_written`, only for the stop,
/// leaving reports for the next round; true when stopping.
fn wait(shared: &Shared, timeout: Duration, take_written: bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut signal = shared.signal.lock();
    while !(signal.stop || (take_written && signal.written)) {
        if shared.wake.wait_until(&mut signal, deadline).timed_out() {
            break;
        }
    }
    if take_written {
        signal.written = false;
    }
    signal.stop
}

fn run(path: &str, shared: &Shared) {
    let mut conn: Option<SqliteConnection> = None;
    loop {
        if wait(shared, IDLE, true) {
            return;
        }
        if conn.is_none() {
            conn = SqliteConnection::establish(path)
                .map_err(|e| tracing::warn!(error = %e, "checkpoint connection failed; will retry"))
                .ok();
        }
        if let Some(c) = conn.as_mut() {
            match passive(c) {
                Ok(done) => tracing::trace!(?done, "wal checkpoint"),
                Err(e) => {
                    tracing::warn!(error = %e, "wal checkpoint failed; will retry");
                    conn = None;
                }
            }
        }
        // Lets the next checkpoint gather a batch of commits; only a stop cuts it short.
        if wait(shared, GAP, false) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::testing::{self, Scratch};

    const MB: u64 = 1 << 20;

    #[test]
    fn commits_leave_the_wal_to_the_checkpoint() {
        let (scratch, db) = testing::sqlite();
        let Scratch::Sqlite(dir) = &scratch else {
            unreachable!("testing::sqlite gives a SQLite scratch")
        };
        let file = dir.path().join("t.db");
        let mut pooled = db.conn().unwrap();
        let c: &mut crate::db::DbConn = &mut pooled;
        diesel::sql_query("CREATE TABLE blobs (b BLOB)")
            .execute(c)
            .unwrap();
        // 8 MB in 8 commits: well past SQLite's default autocheckpoint (1000 pages),
        // which would have copied them into the file inside one of these commits.
        for _ in 0..8 {
            diesel::sql_query("INSERT INTO blobs VALUES (zeroblob(1048576))")
                .execute(c)
                .unwrap();
        }
        let before = std::fs::metadata(&file).unwrap().len();
        assert!(
            before < MB,
            "a commit checkpointed: the file holds {before} bytes"
        );

        let mut own = SqliteConnection::establish(&file.to_string_lossy()).unwrap();
        let done = passive(&mut own).unwrap();
        assert_eq!(done.busy, 0);
        assert!(done.log > 2000, "{done:?}");
        assert_eq!(done.checkpointed, done.log, "nobody reads: all copied");
        assert!(std::fs::metadata(&file).unwrap().len() >= 8 * MB);
    }

    #[test]
    fn a_report_waits_for_the_next_round_and_is_taken_by_it() {
        let shared = Shared::default();
        shared.signal.lock().written = true;
        // The gap after a checkpoint keeps the report...
        assert!(!wait(&shared, Duration::ZERO, false));
        assert!(shared.signal.lock().written);
        // ...and the next round starts at once (an hour's timeout would hang the
        // test) and takes it.
        assert!(!wait(&shared, Duration::from_secs(3600), true));
        assert!(!shared.signal.lock().written);
    }

    #[test]
    fn a_stop_ends_any_wait() {
        let shared = Shared::default();
        shared.signal.lock().stop = true;
        assert!(wait(&shared, Duration::from_secs(3600), false));
        assert!(wait(&shared, Duration::from_secs(3600), true));
    }
}
