//! The one durable scheduler (SPEC "Second phase", shape 2; `docs/scheduler.md`):
//! everything that must happen later is a `jobs` row with a `due_at`, a lease and an
//! idempotency key (kind, key), claimed by whichever node gets there first.
//!
//! - [`schedule`], [`reschedule`], [`cancel`] and [`ensure`] are the API features
//!   use, on their own connection or inside their own transaction; after the commit
//!   they call [`Scheduler::nudge`] so a job due now runs at once.
//! - The runner ([`Scheduler::start`]) serves two queues ([`Lane`]), one loop each
//!   on the same machinery: the `jobs` table, whose due rows it claims in batches
//!   with a lease (one UPDATE per batch, `store::claim`), runs through
//!   [`handlers::run`] and records as [`policy::after`] decides; and the WhatsApp
//!   outbox, whose rows the message writer commits with their message
//!   ([`crate::outbox::pass`]). Each loop sleeps until its earliest due row or lease
//!   end, a nudge, or the poll interval (rows written by another node), whichever
//!   comes first, and both stop on one signal. Two loops, not one, so that a paced
//!   batch of broadcast copies waiting on its send slots never holds up a due job.
//! - Time is `state.clock` for jobs: with a manual clock, advancing it wakes the
//!   runner. Outbox rows are due by the system clock (provider retry backoff).

pub mod handlers;
pub mod policy;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use crate::db::DbConn;
use crate::error::AppError;
use crate::state::AppState;

pub use handlers::JobKind;
pub use policy::{Backoff, JobState, Outcome};

/// A `due_at` that is due whatever the clock reads: for work that must run as
/// soon as possible, scheduled where the caller's time may not be the
/// scheduler's (a manual test clock).
pub const DUE_NOW: i64 = 0;

/// A job's id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JobId(pub String);

/// A job to schedule.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// What it does.
    pub kind: JobKind,
    /// Idempotency key, unique with the kind (e.g. a broadcast recipient's id).
    pub key: String,
    /// When it is due, epoch ms (`state.clock`).
    pub due_at: i64,
    /// Whatever its handler needs (kept as JSON text).
    pub payload: Value,
}

/// The scheduler's settings (`docs/configuration.md`).
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// How long a claim holds a job before another node may take it
    /// (`SWITCHBOARD_JOBS_LEASE`, seconds, default 60). Longer than any handler runs.
    pub lease: Duration,
    /// How often a node looks for jobs nobody nudged it about, e.g. ones scheduled
    /// on another node (`SWITCHBOARD_JOBS_POLL`, seconds, default 5).
    pub poll: Duration,
    /// Jobs claimed per batch.
    pub batch: i64,
    /// Retry schedule (`SWITCHBOARD_JOBS_MAX_ATTEMPTS`, default 8; base 1 s, max 5 min).
    pub backoff: Backoff,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(5),
            batch: 32,
            backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(300),
                max_attempts: 8,
            },
        }
    }
}

/// Schedules a job; idempotent on (kind, key): when that pair exists (in any
/// state) nothing changes and its id is returned.
///
/// # Errors
/// Database errors.
pub fn schedule(conn: &mut DbConn, job: NewJob) -> Result<JobId, AppError> {
    let payload = job.payload.to_string();
    let (id, _) = store::insert_if_absent(
        conn,
        job.kind.as_str(),
        &job.key,
        &payload,
        job.due_at,
        crate::clock::now_ms(),
    )?;
    Ok(JobId(id))
}

/// Moves a job that is not running to `due_at` (pending again, attempts reset).
/// Returns whether it existed and changed.
///
/// # Errors
/// Database errors.
pub fn reschedule(
    conn: &mut DbConn,
    kind: JobKind,
    key: &str,
    due_at: i64,
) -> Result<bool, AppError> {
    store::reschedule(conn, kind.as_str(), key, due_at, crate::clock::now_ms())
}

/// Cancels a pending job; a running one finishes its run. Returns whether it did.
///
/// # Errors
/// Database errors.
pub fn cancel(conn: &mut DbConn, kind: JobKind, key: &str) -> Result<bool, AppError> {
    store::cancel(conn, kind.as_str(), key, crate::clock::now_ms())
}

/// Makes sure a recurring job exists: created due at `now` if missing; otherwise
/// its period is updated and a done or failed one comes back due at `now`.
/// The handler answers [`Outcome::Done`] and the runner schedules the next run one
/// `every` later (from the end of this one, so runs never pile up).
///
/// # Errors
/// Database errors.
pub fn ensure(
    conn: &mut DbConn,
    kind: JobKind,
    key: &str,
    every: Duration,
    now: i64,
) -> Result<JobId, AppError> {
    let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX).max(1);
    let payload = json!({ "every_ms": every_ms }).to_string();
    let (id, created) = store::insert_if_absent(conn, kind.as_str(), key, &payload, now, now)?;
    if !created {
        store::refresh_recurring(conn, &id, &payload, now)?;
    }
    Ok(JobId(id))
}

/// A recurring job's period, from its payload.
fn every_ms(payload: &str) -> Option<i64> {
    serde_json::from_str::<Value>(payload)
        .ok()?
        .get("every_ms")?
        .as_i64()
}

/// A queue the runner serves. Both have due rows with a lease and an idempotency
/// key; they differ in where the rows live and whose clock they are due by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// The `jobs` table: broadcasts, automation steps, recurring ticks
    /// ([`JobKind`]); due by `state.clock`.
    Jobs,
    /// The WhatsApp outbox (`outbox` table, `crate::outbox`); due by the system
    /// clock.
    Outbox,
}

impl Lane {
    /// Every lane, each run by its own loop.
    pub const ALL: [Self; 2] = [Self::Jobs, Self::Outbox];

    fn name(self) -> &'static str {
        match self {
            Self::Jobs => "jobs",
            Self::Outbox => "outbox",
        }
    }

    /// Claims and runs one batch; how many rows it took.
    async fn pass(self, state: &AppState, node: &str) -> Result<usize, AppError> {
        match self {
            Self::Jobs => pass(state, node).await,
            Self::Outbox => crate::outbox::pass(state).await,
        }
    }

    /// How long to wait at most before looking again.
    fn poll(self, state: &AppState) -> Duration {
        match self {
            Self::Jobs => state.config.scheduler.poll,
            Self::Outbox => state.config.whatsapp.outbox_poll,
        }
    }

    /// Resolves when the lane's earliest waiting row is due (never, without one).
    async fn due(self, state: &AppState) {
        match self {
            Self::Jobs => match state.db.run(store::next_wake).await.unwrap_or(None) {
                Some(at) => state.clock.sleep_until(at).await,
                None => std::future::pending().await,
            },
            Self::Outbox => match crate::outbox::next_due(state).await.unwrap_or(None) {
                Some(at) => {
                    let ms = u64::try_from(at - crate::clock::now_ms()).unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                None => std::future::pending().await,
            },
        }
    }

    /// Resolves at the lane's next nudge.
    async fn nudged(self, state: &AppState) {
        match self {
            Self::Jobs => state.scheduler.notify.notified().await,
            Self::Outbox => state.outbox.nudged().await,
        }
    }
}

/// The runner's shared parts: the nudge, the stop signal, the lanes' tasks.
pub struct Scheduler {
    node: String,
    notify: Notify,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A runner for this node (`SWITCHBOARD_NODE_ID`, or a random name), not started.
    pub fn new(node_id: Option<&str>) -> Arc<Self> {
        let node = node_id
            .map(str::to_string)
            .unwrap_or_else(crate::model::new_id);
        let (stop, _) = watch::channel(false);
        Arc::new(Self {
            node,
            notify: Notify::new(),
            stop,
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Wakes the jobs lane: a job was just scheduled or rescheduled. (The outbox
    /// lane is woken by `Outbox::nudge`.)
    pub fn nudge(&self) {
        self.notify.notify_one();
    }

    /// Makes sure the recurring jobs exist, then starts one loop per [`Lane`] on
    /// the current actix system.
    ///
    /// # Errors
    /// Database errors while ensuring the recurring jobs.
    pub async fn start(self: &Arc<Self>, state: AppState) -> Result<(), AppError> {
        let now = state.clock.now_ms();
        let jobs = handlers::recurring(&state.config);
        state
            .db
            .run(move |c| {
                for (kind, key, every) in jobs {
                    ensure(c, kind, key, every, now)?;
                }
                // Templates are synced at every start (issue 17 §2), not only
                // every period: a pending run due later is brought forward.
                reschedule(c, JobKind::TemplateSync, "every", now)?;
                Ok(())
            })
            .await?;
        let mut tasks = self.tasks.lock();
        for lane in Lane::ALL {
            let stop = self.stop.subscribe();
            tasks.push(actix_rt::spawn(run(state.clone(), stop, lane)));
        }
        Ok(())
    }

    /// Stops both loops after their current batch (in-flight provider sends finish
    /// or time out) and waits for them.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        self.notify.notify_one();
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            // A panicked loop has nothing left to stop.
            let _ = task.await;
        }
    }
}

async fn run(state: AppState, mut stop: watch::Receiver<bool>, lane: Lane) {
    let me = state.scheduler.clone();
    let mut moved = state.clock.changes();
    tracing::debug!(node = %me.node, lane = lane.name(), "scheduler lane started");
    loop {
        if *stop.borrow() {
            break;
        }
        match lane.pass(&state, &me.node).await {
            // More may be due right away.
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(lane = lane.name(), error = %e, "scheduler pass failed; will retry");
            }
        }
        tokio::select! {
            () = lane.nudged(&state) => {}
            () = lane.due(&state) => {}
            () = moved.next() => {}
            () = tokio::time::sleep(lane.poll(&state)) => {}
            _ = stop.changed() => {}
        }
    }
    tracing::debug!(lane = lane.name(), "scheduler lane stopped");
}

/// One batch: claims due jobs, runs them concurrently, records the outcomes.
async fn pass(state: &AppState, node: &str) -> Result<usize, AppError> {
    let cfg = &state.config.scheduler;
    let lease = i64::try_from(cfg.lease.as_millis()).unwrap_or(i64::MAX / 2);
    let owner = format!("{node}/{}", crate::model::new_id());
    let (now, batch) = (state.clock.now_ms(), cfg.batch);
    let rows = {
        let owner = owner.clone();
        state
            .db
            .run(move |c| store::claim(c, &owner, now, lease, batch))
            .await?
    };
    let n = rows.len();
    futures_util::future::join_all(rows.into_iter().map(|row| process(state, &owner, row))).await;
    Ok(n)
}

async fn process(state: &AppState, owner: &str, row: store::JobRow) {
    let backoff = state.config.scheduler.backoff;
    let outcome = if backoff.exhausted(row.attempts) {
        Outcome::Fail {
            error: format!(
                "claimed {} times without an outcome (its node stopped or hung each time)",
                row.attempts - 1
            ),
        }
    } else {
        match JobKind::parse(&row.kind) {
            Some(kind) => handlers::run(state, kind, &row).await,
            None => Outcome::Retry {
                error: format!(
                    "no handler for job kind `{}` on this node (written by a newer version?)",
                    row.kind
                ),
            },
        }
    };
    if let Outcome::Retry { error } | Outcome::Fail { error } = &outcome {
        tracing::warn!(job = %row.id, kind = %row.kind, key = %row.key, attempt = row.attempts, %error, "job failed");
    }
    let now = state.clock.now_ms();
    let t = policy::after(
        outcome,
        row.due_at,
        row.attempts,
        every_ms(&row.payload),
        now,
        &backoff,
    );
    let (id, owner) = (row.id.clone(), owner.to_string());
    match state
        .db
        .run(move |c| store::finish(c, &id, &owner, &t, now))
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(job = %row.id, "lease lost before the outcome was recorded; the new holder's counts");
        }
        // The lease runs out and the job runs again: handlers are idempotent by key.
        Err(e) => tracing::warn!(job = %row.id, error = %e, "could not record a job outcome"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_of_a_recurring_job_is_read_from_its_payload() {
        assert_eq!(every_ms(r#"{"every_ms":60000}"#), Some(60_000));
        assert_eq!(every_ms("{}"), None);
        assert_eq!(every_ms("not json"), None);
    }
}
