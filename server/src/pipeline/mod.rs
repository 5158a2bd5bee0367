//! The inbound pipeline (`../shared/SPEC.md`, "one inbound pipeline"): every committed
//! message goes through the ordered [`stages::STAGES`], at least once, in seq order per
//! conversation — never dropped under load, and finished after a restart.
//!
//! How: the conversation actor calls [`Pipeline::committed`] after each commit, which
//! only marks the conversation as having work ([`queue::WorkQueue`], bounded by the
//! number of conversations, not of messages). Workers take up to [`GROUP`]
//! waiting conversations at once, take their leases in the database and read the
//! messages after each one's recorded progress ([`crate::store::pipeline`]), run the
//! stages for each message and record the group's progress once per pass (up to
//! [`PASS`] messages per conversation), giving the leases back in the same write.
//! A sweep (at start, then every `SWITCHBOARD_PIPELINE_SWEEP_MS`) picks up
//! conversations whose progress is behind and whose lease has run out: a node that
//! stopped, a pass that failed (a claim or progress write that fails gives back the
//! whole group's leases, and the group is tried again conversation by conversation,
//! so one bad conversation holds up only itself; a stage that fails stops only its
//! own conversation's pass).
//!
//! Delivery is at least once: a crash before a pass's progress write runs the stages
//! of that pass's messages again. A message whose stages keep failing is
//! retried [`MAX_ATTEMPTS`] times, then skipped with an error in the log, so one bad
//! message cannot hold up the rest of its conversation.

pub mod queue;
pub mod stages;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use crate::clock::now_ms;
use crate::error::AppError;
use crate::metrics::METRICS;
use crate::model::{new_id, SenderKind};
use crate::state::AppState;
use crate::store::leads::Committed;
use crate::store::pipeline as store;
use queue::WorkQueue;
use stages::{Turn, STAGES};

/// Workers running stages at once. Bookkeeping is off the message path, so it queues
/// instead of competing with appends and routing for pool connections and (SQLite) the
/// write lock.
const WORKERS: usize = 2;

/// Messages read per pass over a conversation.
pub const PASS: i64 = 32;

/// Conversations a worker takes from the queue at once: their claims share one
/// statement (PostgreSQL) or commit (SQLite), as do their progress writes.
pub const GROUP: usize = 16;

/// How long a lease lasts (ms); renewed on every pass, so only a stopped node's lapses.
const LEASE_MS: i64 = 60_000;

/// Conversations picked up per sweep.
const SWEEP_LIMIT: i64 = 500;

/// Attempts at one message before it is skipped.
pub const MAX_ATTEMPTS: u32 = 5;

/// The pipeline's shared parts: the work list, the wake-up, the stop signal.
pub struct Pipeline {
    queue: Mutex<WorkQueue>,
    notify: Notify,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// This process's lease owner name: unique per start, so a restarted node never
    /// mistakes its predecessor's lease for its own.
    owner: String,
    /// Failed attempts per (conversation, seq), forgotten once the message passes.
    failures: Mutex<HashMap<(String, i64), u32>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A stopped pipeline; [`Pipeline::start`] runs it.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(WorkQueue::default()),
            notify: Notify::new(),
            stop: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            owner: new_id(),
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// A message of `conversation_id` was committed: the conversation has work.
    pub fn committed(&self, conversation_id: &str) {
        if self.queue.lock().push(conversation_id) {
            self.notify.notify_one();
        }
    }

    /// Conversations waiting for or in a pass on this node (a gauge for operators).
    pub fn backlog(&self) -> usize {
        self.queue.lock().len()
    }

    /// Starts the workers and the sweep on the current actix system.
    pub fn start(self: &Arc<Self>, state: AppState) {
        let mut tasks = self.tasks.lock();
        for _ in 0..WORKERS {
            tasks.push(actix_rt::spawn(worker(
                state.clone(),
                self.stop.subscribe(),
            )));
        }
        tasks.push(actix_rt::spawn(sweep(state, self.stop.subscribe())));
    }

    /// Stops the workers after the message each is on and waits for them; what is left
    /// is picked up by the next start (its progress is in the database).
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        self.notify.notify_waiters();
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            // A panicked task has nothing left to stop.
            let _ = task.await;
        }
    }
}

async fn worker(state: AppState, mut stop: watch::Receiver<bool>) {
    let pipeline = state.pipeline.clone();
    loop {
        if *stop.borrow() {
            return;
        }
        let group = pipeline.queue.lock().take_up_to(GROUP);
        if group.is_empty() {
            tokio::select! {
                () = pipeline.notify.notified() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        drain(&state, &group, &stop).await;
        let mut queue = pipeline.queue.lock();
        let again = group.iter().filter(|id| queue.done(id)).count();
        drop(queue);
        for _ in 0..again {
            pipeline.notify.notify_one();
        }
    }
}

/// Runs the stages for every message of the `group`'s conversations after their
/// recorded progress. A pass that ends normally gives the leases back with its
/// progress; after a failure of the claim or the progress write they are given
/// back here. A failed group is then tried again conversation by conversation, so
/// one conversation whose claim keeps failing holds up only itself (the sweep
/// retries it), not the rest of its group.
async fn drain(state: &AppState, group: &[String], stop: &watch::Receiver<bool>) {
    let Err(e) = drain_together(state, group, stop).await else {
        return;
    };
    if let [id] = group {
        tracing::warn!(conversation = %id, error = %e, "pipeline pass failed; the sweep retries it");
        return;
    }
    tracing::debug!(conversations = group.len(), error = %e, "pipeline group failed; trying each alone");
    for id in group {
        if let Err(e) = drain_together(state, std::slice::from_ref(id), stop).await {
            tracing::warn!(conversation = %id, error = %e, "pipeline pass failed; the sweep retries it");
        }
    }
}

/// [`drain`]'s one try at the group as a whole; gives the leases back on failure.
async fn drain_together(
    state: &AppState,
    group: &[String],
    stop: &watch::Receiver<bool>,
) -> Result<(), AppError> {
    let owner = state.pipeline.owner.clone();
    let result = passes(state, group.to_vec(), &owner, stop).await;
    if result.is_err() {
        let (ids, who) = (group.to_vec(), owner);
        state
            .db
            .run(move |c| store::release(c, &ids, &who).map_err(AppError::from))
            .await?;
    }
    result
}

/// Passes over the group until each conversation's backlog is done: one claim and
/// one progress write per pass for the whole group.
async fn passes(
    state: &AppState,
    mut group: Vec<String>,
    owner: &str,
    stop: &watch::Receiver<bool>,
) -> Result<(), AppError> {
    while !group.is_empty() {
        let (ids, who) = (group.clone(), owner.to_string());
        let claimed = state
            .db
            .run(move |c| {
                let now = now_ms();
                let lease = store::Lease {
                    now,
                    until: now + LEASE_MS,
                };
                let group = store::Group {
                    conversation_ids: &ids,
                    owner: &who,
                    lease,
                    limit: PASS,
                };
                store::claim(c, &group).map_err(AppError::from)
            })
            .await?;
        // Conversations another node holds the lease on are left out: that node
        // goes on from the recorded progress.
        let mut progress = Vec::with_capacity(claimed.len());
        for backlog in claimed {
            progress.push(pass(state, backlog, stop).await);
        }
        let who = owner.to_string();
        let (progress, kept) = state
            .db
            .run(move |c| {
                let kept = store::advance(c, &who, &progress)?;
                Ok::<_, AppError>((progress, kept))
            })
            .await?;
        // A short read took everything committed before it; what commits later
        // marks the conversation again (`WorkQueue::push` while running), so only a
        // full read whose lease is still held needs another pass now.
        group = progress
            .into_iter()
            .zip(kept)
            .filter(|(p, kept)| *kept && !p.release)
            .map(|(p, _)| p.conversation_id)
            .collect();
    }
    Ok(())
}

/// Runs the stages over one conversation's backlog, in seq order, until a message
/// fails (it is retried later, up to [`MAX_ATTEMPTS`]) or the node stops; returns
/// the progress to record.
async fn pass(
    state: &AppState,
    backlog: store::Backlog,
    stop: &watch::Receiver<bool>,
) -> store::Advance {
    let conversation_id = backlog.conversation_id;
    let full = i64::try_from(backlog.messages.len()).unwrap_or(i64::MAX) >= PASS;
    let mut done = backlog.done;
    let conversation = Arc::new(backlog.conversation);
    let contact = Arc::new(stages::PassContact::new(backlog.contact));
    let mut failed = false;
    for row in backlog.messages {
        if *stop.borrow() {
            break;
        }
        let seq = row.seq;
        let committed_at = row.created_at;
        let turn = Turn {
            conversation: conversation.clone(),
            contact: contact.clone(),
            message: Committed {
                conversation_id: conversation_id.clone(),
                sender_kind: SenderKind::parse_lossy(&row.sender_kind),
                sender_id: row.sender_id,
                body: row.body,
                seq,
            },
        };
        match run_stages(state, &turn).await {
            Ok(()) => {
                forget_failures(state, &conversation_id, seq);
                let lag_ms = (now_ms() - committed_at).max(0);
                METRICS.pipeline_lag_seconds.observe(lag_ms as f64 / 1000.0);
            }
            Err(e) if give_up(state, &conversation_id, seq, &e) => {}
            Err(e) => {
                tracing::warn!(conversation = %conversation_id, seq, error = %e, "pipeline stage failed; the sweep retries the message");
                failed = true;
                break;
            }
        }
        done = seq;
    }
    store::Advance {
        release: !full || failed || *stop.borrow(),
        conversation_id,
        done,
    }
}

/// Runs every stage that applies, in order, until one consumes the message
/// ([`stages::Outcome`]) or fails.
async fn run_stages(state: &AppState, turn: &Turn) -> Result<(), AppError> {
    for stage in STAGES
        .iter()
        .copied()
        .filter(|s| s.applies_to(turn.message.sender_kind))
    {
        let outcome = stages::run(state, stage, turn).await.map_err(|e| {
            tracing::debug!(stage = stage.name(), seq = turn.message.seq, error = %e, "stage failed");
            e
        })?;
        if !outcome.continues() {
            tracing::debug!(
                stage = stage.name(),
                seq = turn.message.seq,
                ?outcome,
                "message consumed"
            );
            break;
        }
    }
    Ok(())
}

/// Counts a failed attempt at a message; true when it has failed [`MAX_ATTEMPTS`]
/// times and is to be skipped.
fn give_up(state: &AppState, conversation_id: &str, seq: i64, e: &AppError) -> bool {
    let mut failures = state.pipeline.failures.lock();
    let key = (conversation_id.to_string(), seq);
    let n = failures.entry(key.clone()).or_insert(0);
    *n += 1;
    if *n < MAX_ATTEMPTS {
        return false;
    }
    failures.remove(&key);
    METRICS.pipeline_skipped.inc();
    tracing::error!(conversation = %conversation_id, seq, error = %e, "pipeline gave up on a message after {MAX_ATTEMPTS} attempts");
    true
}

/// A message passed: its earlier failed attempts no longer count.
fn forget_failures(state: &AppState, conversation_id: &str, seq: i64) {
    let mut failures = state.pipeline.failures.lock();
    if !failures.is_empty() {
        failures.remove(&(conversation_id.to_string(), seq));
    }
}

/// Queues conversations whose progress is behind and whose lease has run out: at start
/// (what a stopped node left) and then every sweep interval.
async fn sweep(state: AppState, mut stop: watch::Receiver<bool>) {
    let every = state.config.pipeline_sweep;
    loop {
        if *stop.borrow() {
            return;
        }
        match state
            .db
            .run(|c| store::stalled(c, now_ms(), SWEEP_LIMIT).map_err(AppError::from))
            .await
        {
            Ok(ids) => {
                for id in ids {
                    state.pipeline.committed(&id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "pipeline sweep failed; will retry"),
        }
        tokio::select! {
            () = tokio::time::sleep(every.max(Duration::from_millis(10))) => {}
            _ = stop.changed() => {}
        }
    }
}
