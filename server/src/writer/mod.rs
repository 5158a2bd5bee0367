//! The message writers: threads that commit message appends in batches (group
//! commit) and answer each caller only after its batch is durable.
//!
//! Why: a commit (fsync on SQLite's WAL, a round trip plus WAL flush on PostgreSQL)
//! costs far more than the rows in it, so appends that arrive while a commit is in
//! progress are gathered and committed together. Nothing waits for a timer: an idle
//! writer commits a lone message at once; under load batches grow by themselves.
//!
//! SQLite has one write lock, so it gets one writer. PostgreSQL commits in parallel,
//! so it gets several (`SWITCHBOARD_WRITERS`), each owning a share of the
//! conversations (by a hash of the id): one conversation's appends in a lane always
//! go through the same thread and are committed in the order they arrived.
//!
//! Two lanes ([`Lane`]): on PostgreSQL, campaign copies (broadcasts, automation
//! sends) have a writer thread of their own. A batch of copies is a transaction
//! with an outbox row per copy, several times the cost of a batch of chat
//! messages; in the same queue, a customer's message waited behind it. A copy and
//! a chat message in one conversation may then commit in either order: both take
//! their seq in their commit (the conversation row's lock orders them), and
//! sessions already reorder by seq.
//!
//! The bulk lane also yields ([`gate`], [`share`]): its thread commits copies no
//! faster than a cap set from the delay chat messages see in the interactive
//! lanes, lowered when a broadcast makes them wait longer than usual and lifted
//! when it does not, so a broadcast takes only the capacity chat traffic leaves.
//!
//! A batch first runs in a fixed number of statements ([`append_batch`]: one
//! duplicate lookup, one seq bump per conversation, one INSERT on PostgreSQL). On
//! PostgreSQL a batch that commits nothing besides its messages (no reopen, no
//! outbox order: every customer message) runs as one combined statement outside a
//! transaction ([`append_one_statement`]), since a statement is atomic by itself,
//! with a stored duplicate caught by its unique index; any other batch runs in one
//! plain transaction. If any statement
//! fails (a missing conversation, a duplicate race), it is redone with one savepoint
//! per append, so only the bad append fails. If the commit itself fails, every caller in the batch
//! gets [`AppError::Unavailable`] and nothing was stored; clients retry with the same
//! `client_msg_id`, which makes the retry safe.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

pub mod gate;
pub mod share;

use gate::BulkGate;
pub use share::Tuning;

use crate::db::{write_transaction, Db};
use crate::error::AppError;
use crate::store::messages::batch::{append_batch, append_one_statement, fits_one_statement};
use crate::store::messages::{append_in_savepoint, Appended, NewMessage};

/// Capacity of the writer's queue; callers wait (asynchronously) when it is full,
/// which is the hub's backpressure against a database slower than its inbound rate.
const QUEUE: usize = 8192;

/// Which queue an append waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Someone waits for it: customer, guest and agent messages.
    Interactive,
    /// Campaign copies: broadcast copies and automation sends.
    Bulk,
}

/// Where campaign copies ([`Lane::Bulk`]) are committed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BulkLane {
    /// In the interactive threads (SQLite: one write lock, so a thread of their
    /// own would only take turns with them).
    Shared,
    /// On a thread of their own (PostgreSQL), yielding to chat messages per
    /// `yielding` ([`share`]), or as fast as they come when `None`.
    Own {
        /// The controller's constants; `None`: no cap.
        yielding: Option<Tuning>,
    },
}

enum Job {
    Append(Pending),
    Stop,
}

/// One append waiting for its batch.
struct Pending {
    message: NewMessage,
    reply: oneshot::Sender<Result<Appended, AppError>>,
    /// When it entered the queue: a chat message's delay feeds the bulk gate.
    queued: Instant,
}

/// What a writer thread does besides committing, by its lane.
enum Role {
    /// Interactive lane: reports its messages' delays to the gate, if any.
    Chat(Option<Arc<BulkGate>>),
    /// Bulk lane: waits at the gate, if any, before each batch.
    Copies(Option<Arc<BulkGate>>),
}

/// Handle to the writer threads. Cheap to clone; the threads stop after
/// [`Writer::shutdown`] once everything queued before it is committed.
#[derive(Clone, Debug)]
pub struct Writer {
    queues: Arc<[mpsc::Sender<Job>]>,
    /// The bulk lane's own thread (PostgreSQL); `None` puts bulk appends in the
    /// interactive queues.
    bulk: Option<mpsc::Sender<Job>>,
    /// The bulk lane's gate, when it yields.
    gate: Option<Arc<BulkGate>>,
}

/// The writer threads' join handles, kept by whoever owns shutdown.
#[derive(Debug)]
pub struct WriterThread(Vec<JoinHandle<()>>);

impl WriterThread {
    /// Waits for the threads to finish their queues and exit.
    pub fn join(self) {
        for handle in self.0 {
            if handle.join().is_err() {
                tracing::error!("message writer thread panicked");
            }
        }
    }
}

impl Writer {
    /// Starts `threads` writer threads (at least one) for chat messages, and one
    /// for campaign copies when `bulk` is [`BulkLane::Own`] (PostgreSQL: see the
    /// module docs).
    ///
    /// # Errors
    /// [`AppError::Internal`] when the OS refuses a thread.
    pub fn start(
        db: Db,
        threads: usize,
        bulk: BulkLane,
        max_batch: usize,
    ) -> Result<(Self, WriterThread), AppError> {
        let gate = match bulk {
            BulkLane::Own {
                yielding: Some(tuning),
            } => Some(Arc::new(BulkGate::new(tuning))),
            _ => None,
        };
        let mut queues = Vec::new();
        let mut handles = Vec::new();
        let kept = gate.clone();
        let mut spawn = |name: String, role: Role| {
            let (tx, rx) = mpsc::channel(QUEUE);
            let db = db.clone();
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    // This thread's appends queue for SQLite's write lock (`db::gate`).
                    let gate = db.write_gate();
                    gate.within(|| run(db, rx, max_batch, role))
                })
                .map_err(|e| AppError::internal(format!("cannot start writer thread: {e}")))?;
            handles.push(handle);
            Ok::<_, AppError>(tx)
        };
        for n in 0..threads.max(1) {
            queues.push(spawn(
                format!("switchboard-writer-{n}"),
                Role::Chat(gate.clone()),
            )?);
        }
        let bulk = match bulk {
            BulkLane::Own { .. } => {
                Some(spawn("switchboard-writer-bulk".into(), Role::Copies(gate))?)
            }
            BulkLane::Shared => None,
        };
        Ok((
            Self {
                queues: queues.into(),
                bulk,
                gate: kept,
            },
            WriterThread(handles),
        ))
    }

    /// The queue owning a conversation: stable for the life of the process.
    fn queue_for(&self, conversation_id: &str) -> &mpsc::Sender<Job> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        conversation_id.hash(&mut hasher);
        // Truncation is fine: only the spread over a handful of queues matters.
        let slot = (hasher.finish() as usize) % self.queues.len();
        &self.queues[slot]
    }

    /// Appends a message durably in the interactive lane: resolves once the
    /// message is committed (or found to be a duplicate of a committed one).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for an unknown conversation; [`AppError::Unavailable`]
    /// when the database could not commit or the writer is shutting down.
    pub async fn append(&self, message: NewMessage) -> Result<Appended, AppError> {
        self.append_in(Lane::Interactive, message).await
    }

    /// [`Writer::append`] in `lane`.
    ///
    /// The message is handed to its writer thread when this is called, not when the
    /// future is first polled, if the queue has room (it waits in the future only
    /// when the queue is full). So a caller that calls this for several messages in
    /// a row gets them committed in that order, however it later polls the futures
    /// (the conversation actor publishes in that order: `actors::conversation::in_order`).
    ///
    /// # Errors
    /// As [`Writer::append`].
    pub fn append_in(
        &self,
        lane: Lane,
        message: NewMessage,
    ) -> impl std::future::Future<Output = Result<Appended, AppError>> + Send + 'static {
        let (reply, rx) = oneshot::channel();
        let queue = match (lane, &self.bulk) {
            (Lane::Bulk, Some(bulk)) => bulk,
            _ => self.queue_for(&message.conversation_id),
        };
        let job = Job::Append(Pending {
            message,
            reply,
            queued: Instant::now(),
        });
        let full = match queue.try_send(job) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(job)) => Some((queue.clone(), job)),
            // Sent again below, where a closed queue reports the shutdown.
            Err(mpsc::error::TrySendError::Closed(job)) => Some((queue.clone(), job)),
        };
        async move {
            if let Some((queue, job)) = full {
                queue
                    .send(job)
                    .await
                    .map_err(|_| AppError::Unavailable("the server is shutting down".into()))?;
            }
            rx.await
                .map_err(|_| AppError::Unavailable("the message writer stopped".into()))?
        }
    }

    /// The bulk lane's cap now, campaign copies per second (`None`: uncapped, or
    /// no yielding lane): what a producer of copies posts ahead by, so copies do
    /// not sit in the queue where a pause cannot reach them.
    pub fn bulk_cap(&self) -> Option<f64> {
        self.gate.as_ref().and_then(|g| g.cap())
    }

    /// Asks the threads to stop after committing everything queued so far.
    pub async fn shutdown(&self) {
        for queue in self.queues.iter().chain(&self.bulk) {
            // A closed channel means the thread is already gone; nothing to do.
            let _ = queue.send(Job::Stop).await;
        }
    }
}

fn run(db: Db, mut rx: mpsc::Receiver<Job>, max_batch: usize, role: Role) {
    let mut batch: Vec<Pending> = Vec::new();
    loop {
        let mut stop = false;
        match rx.blocking_recv() {
            Some(Job::Append(pending)) => batch.push(pending),
            Some(Job::Stop) | None => stop = true,
        }
        // A copy waits here, before the rest of its batch is gathered, so the
        // batch is only as large as the cap allows.
        let reserved = match &role {
            Role::Copies(Some(gate)) if !stop => Some(gate.room(max_batch)),
            _ => None,
        };
        while !stop && batch.len() < reserved.unwrap_or(max_batch) {
            match rx.try_recv() {
                Ok(Job::Append(pending)) => batch.push(pending),
                Ok(Job::Stop) => stop = true,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let size = batch.len();
            let waited = commit(&db, &mut batch);
            match &role {
                Role::Chat(Some(gate)) => gate.chat_committed(size, waited),
                Role::Copies(Some(gate)) => gate.bulk_committed(size, reserved.unwrap_or(size)),
                _ => {}
            }
        }
        if stop {
            tracing::debug!("message writer stopped");
            return;
        }
    }
}

/// Commits `batch` and answers its callers; returns the sum of the appends'
/// delays from their queue to the answer.
fn commit(db: &Db, batch: &mut Vec<Pending>) -> Duration {
    let size = batch.len();
    let waited = |batch: &[Pending]| {
        let now = Instant::now();
        batch
            .iter()
            .map(|p| now.saturating_duration_since(p.queued))
            .sum()
    };
    let started = std::time::Instant::now();
    let mut conn = match db.conn() {
        Ok(c) => c,
        Err(e) => {
            let waited = waited(batch);
            for p in batch.drain(..) {
                let _ = p.reply.send(Err(AppError::Unavailable(e.to_string())));
            }
            return waited;
        }
    };
    // Fast path: the whole batch in one statement on PostgreSQL when nothing else
    // has to commit with it, else in one transaction without savepoints. Any failed
    // statement aborts it (PostgreSQL cannot go on in a failed transaction); then the
    // batch is redone with one savepoint per append, so only the bad append fails.
    let messages: Vec<&NewMessage> = batch.iter().map(|p| &p.message).collect();
    let fast = if fits_one_statement(&conn, &messages) {
        append_one_statement(&mut conn, &messages)
    } else {
        write_transaction::<_, diesel::result::Error, _>(&mut conn, |c| append_batch(c, &messages))
    };
    let outcome = match fast {
        Ok(appended) => Ok(appended.into_iter().map(Ok).collect::<Vec<_>>()),
        Err(e) => {
            tracing::debug!(error = %e, size, "batch fast path failed; retrying append by append");
            append_each(&mut conn, &messages)
        }
    };
    let waited = waited(batch);
    match outcome {
        Ok(results) => {
            tracing::trace!(size, "batch committed");
            let m = &crate::metrics::METRICS;
            m.writer_batch_size.observe(size as f64);
            m.writer_commit_seconds
                .observe(started.elapsed().as_secs_f64());
            let stored = results
                .iter()
                .filter(|r| r.as_ref().is_ok_and(|a| !a.duplicate))
                .count();
            m.messages_committed.inc_by(stored as u64);
            db.written();
            for (p, result) in batch.drain(..).zip(results) {
                // A caller that went away (closed socket) does not need its answer;
                // its message is stored all the same.
                let _ = p.reply.send(result);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, size, "batch commit failed; callers will retry");
            // Even the one-by-one retry failed: most likely the connection itself
            // (an outage), so every pooled connection is tested before reuse.
            crate::db::suspect_connections();
            for p in batch.drain(..) {
                let _ = p.reply.send(Err(AppError::Unavailable(
                    "the database could not commit; nothing was stored, retry".into(),
                )));
            }
        }
    }
    waited
}

/// The batch append by append, one savepoint each, in one transaction: after the
/// fast path failed (a stored duplicate, a missing conversation), so only the bad
/// append fails and a duplicate is answered with its stored row.
///
/// # Errors
/// The transaction's own failure (begin, commit); each append's error is its item.
fn append_each(
    conn: &mut crate::db::DbConn,
    messages: &[&NewMessage],
) -> diesel::QueryResult<Vec<Result<Appended, AppError>>> {
    write_transaction::<_, diesel::result::Error, _>(conn, |c| {
        Ok(messages
            .iter()
            .map(|message| {
                append_in_savepoint(c, message).map_err(|e| match e {
                    diesel::result::Error::NotFound => {
                        AppError::NotFound(format!("no conversation {}", message.conversation_id))
                    }
                    other => AppError::from(other),
                })
            })
            .collect::<Vec<_>>())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SenderKind;

    use crate::testing::{self, Scratch};

    fn open_on((scratch, db): (Scratch, Db)) -> (Scratch, Db, String) {
        let (_, conv) = testing::team_and_conversation(&db, "t");
        (scratch, db, conv)
    }

    fn open() -> (Scratch, Db, String) {
        open_on(testing::sqlite())
    }

    /// How a check appends a batch: the transactional path (both backends), or the
    /// single statement the writer uses on PostgreSQL for plain batches.
    #[derive(Clone, Copy, Debug)]
    enum Path {
        Transaction,
        OneStatement,
    }

    impl Path {
        fn append(
            self,
            c: &mut crate::db::DbConn,
            batch: &[&NewMessage],
        ) -> diesel::QueryResult<Vec<Appended>> {
            match self {
                Path::Transaction => write_transaction(c, |c| append_batch(c, batch)),
                Path::OneStatement => {
                    assert!(fits_one_statement(c, batch), "a plain PostgreSQL batch");
                    match append_one_statement(c, batch) {
                        Ok(appended) => Ok(appended),
                        // As the writer does: a stored duplicate fails the statement,
                        // which stores nothing, and the batch goes append by append.
                        Err(_) => Ok(append_each(c, batch)?
                            .into_iter()
                            .map(|r| r.unwrap())
                            .collect()),
                    }
                }
            }
        }
    }

    /// A test on SQLite and, on PostgreSQL (skipped without a test server), one per
    /// path: the PostgreSQL paths are their own SQL (`batch/postgres.rs`).
    macro_rules! on_both_backends {
        ($sqlite:ident, $postgres:ident, $check:ident) => {
            on_both_backends!(
                $sqlite,
                $postgres,
                $check,
                [Path::Transaction, Path::OneStatement]
            );
        };
        ($sqlite:ident, $postgres:ident, $check:ident, [$($path:expr),+]) => {
            #[test]
            fn $sqlite() {
                $check(open(), Path::Transaction);
            }

            #[test]
            fn $postgres() {
                for path in [$($path),+] {
                    if let Some(target) = testing::postgres() {
                        $check(open_on(target), path);
                    }
                }
            }
        };
    }

    fn msg(conv: &str, key: &str) -> NewMessage {
        NewMessage {
            conversation_id: conv.into(),
            sender_kind: SenderKind::Guest,
            sender_id: Some("g".into()),
            sender_name: None,
            body: format!("body {key}"),
            client_msg_id: Some(key.into()),
            provider_id: None,
            reopen: false,
            channel: None,
        }
    }

    on_both_backends!(
        a_batch_numbers_each_conversation_and_settles_duplicates_first_sqlite,
        a_batch_numbers_each_conversation_and_settles_duplicates_first_postgres,
        batch_numbers_each_conversation
    );

    fn batch_numbers_each_conversation((_scratch, db, conv): (Scratch, Db, String), path: Path) {
        let (_, other) = testing::team_and_conversation(&db, "u");
        let mut c = db.conn().unwrap();
        let first = path.append(&mut c, &[&msg(&conv, "a")]).unwrap();
        assert_eq!((first[0].message.seq, first[0].duplicate), (1, false));
        let batch = [
            msg(&conv, "b"),
            msg(&other, "x"),
            msg(&conv, "a"),
            msg(&conv, "b"),
            msg(&conv, "c"),
            msg(&other, "y"),
        ];
        let refs: Vec<&NewMessage> = batch.iter().collect();
        if matches!(path, Path::OneStatement) {
            assert!(
                append_one_statement(&mut c, &refs).is_err(),
                "the stored \"a\" fails the one statement"
            );
            assert_eq!(
                last_seq(&mut c, &conv),
                1,
                "and nothing of the batch took a seq"
            );
        }
        let results = path.append(&mut c, &refs).unwrap();
        let got: Vec<_> = results
            .into_iter()
            .map(|a| (a.message.client_msg_id.unwrap(), a.message.seq, a.duplicate))
            .collect();
        let want = [
            ("b", 2, false),
            ("x", 1, false),
            ("a", 1, true),
            ("b", 2, true),
            ("c", 3, false),
            ("y", 2, false),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(k, s, d)| (k.to_string(), *s, *d))
            .collect();
        assert_eq!(got, want);
        let (rows, _) =
            crate::store::messages::page(&mut c, &conv, crate::store::messages::Page::After(0), 10)
                .unwrap();
        assert_eq!(
            rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(last_seq(&mut c, &conv), 3, "a duplicate never takes a seq");
    }

    fn last_seq(c: &mut crate::db::DbConn, conv: &str) -> i64 {
        use crate::db::schema::conversations as t;
        use diesel::prelude::*;
        t::table.find(conv).select(t::last_seq).first(c).unwrap()
    }

    on_both_backends!(
        recent_activity_is_not_rewritten_but_stale_activity_moves_sqlite,
        recent_activity_is_not_rewritten_but_stale_activity_moves_postgres,
        activity_moves_only_when_stale
    );

    /// `updated_at` (indexed) moves only when older than `ACTIVITY_STEP_MS`, while
    /// `last_message_at` always does. Times are set in the row instead of waited for.
    fn activity_moves_only_when_stale((_scratch, db, conv): (Scratch, Db, String), path: Path) {
        use crate::db::schema::conversations as t;
        use diesel::prelude::*;
        let mut c = db.conn().unwrap();
        let mut set_and_append = |updated_at: i64, key: &str| -> (i64, i64) {
            diesel::update(t::table.find(&conv))
                .set((
                    t::updated_at.eq(updated_at),
                    t::last_message_at.eq(Some(1_i64)),
                ))
                .execute(&mut **c)
                .unwrap();
            path.append(&mut c, &[&msg(&conv, key)]).unwrap();
            let (updated, last): (i64, Option<i64>) = t::table
                .find(&conv)
                .select((t::updated_at, t::last_message_at))
                .first(&mut **c)
                .unwrap();
            (updated, last.unwrap())
        };
        // "Recent": in the future of any clock this test runs on.
        let recent = crate::clock::now_ms() + 3_600_000;
        let (updated, last) = set_and_append(recent, "a");
        assert_eq!(updated, recent, "a recent updated_at is left alone");
        assert!(last > 1, "last_message_at always moves");
        let (updated, last) = set_and_append(1, "b");
        assert!(updated > 1, "a stale updated_at moves");
        assert_eq!(updated, last, "it moves to the message's time");
    }

    on_both_backends!(
        a_bad_append_fails_alone_and_seq_stays_gapless_sqlite,
        a_bad_append_fails_alone_and_seq_stays_gapless_postgres,
        bad_append_fails_alone,
        [Path::OneStatement]
    );

    /// A message is handed over when `append_in` is called, not when its future is
    /// first polled: the conversation actor's futures are polled in an order actix
    /// scrambles, and it publishes in hand-over order, which must be seq order.
    #[test]
    fn appends_commit_in_call_order_whatever_the_poll_order() {
        let (_scratch, db, conv) = open();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (writer, thread) = Writer::start(db.clone(), 1, BulkLane::Shared, 64).unwrap();
        let first = writer.append_in(Lane::Interactive, msg(&conv, "first"));
        let second = writer.append_in(Lane::Interactive, msg(&conv, "second"));
        let (second, first) = rt.block_on(async {
            let second = second.await.unwrap();
            let first = first.await.unwrap();
            writer.shutdown().await;
            (second, first)
        });
        thread.join();
        assert_eq!(first.message.seq, 1);
        assert_eq!(second.message.seq, 2);
    }

    /// Through the writer, which picks its path itself (on PostgreSQL the single
    /// statement fails as a whole and the batch is redone append by append).
    fn bad_append_fails_alone((_scratch, db, conv): (Scratch, Db, String), _: Path) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (writer, thread) = Writer::start(db.clone(), 1, BulkLane::Shared, 64).unwrap();
        let results = rt.block_on(async {
            // Queued together, so they land in one batch: the missing conversation
            // fails the fast path and the batch is redone append by append.
            let futures = vec![
                writer.append(msg(&conv, "a")),
                writer.append(msg("no-such-conversation", "b")),
                writer.append(msg(&conv, "c")),
                writer.append(msg(&conv, "a")),
            ];
            let out = futures_util::future::join_all(futures).await;
            writer.shutdown().await;
            out
        });
        thread.join();
        let seqs: Vec<_> = results
            .iter()
            .map(|r| {
                r.as_ref()
                    .map(|a| (a.message.seq, a.duplicate))
                    .map_err(AppError::code)
            })
            .collect();
        assert_eq!(
            seqs,
            vec![
                Ok((1, false)),
                Err("not_found"),
                Ok((2, false)),
                Ok((1, true))
            ]
        );
        let mut c = db.conn().unwrap();
        let (rows, _) =
            crate::store::messages::page(&mut c, &conv, crate::store::messages::Page::After(0), 10)
                .unwrap();
        assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2]);
    }

    /// PostgreSQL: a chat message commits while the bulk lane is stuck. The copy
    /// waits for a conversation row another transaction holds; the chat message,
    /// in the one interactive thread, is stored meanwhile. Without the bulk lane
    /// both share that thread and the chat message waits for the lock too.
    #[test]
    fn a_chat_message_does_not_wait_behind_a_stuck_campaign_copy() {
        use crate::db::schema::conversations;
        use diesel::prelude::*;

        let Some((_scratch, db)) = testing::postgres() else {
            return;
        };
        let (_, held) = testing::team_and_conversation(&db, "held");
        let (_, chat) = testing::team_and_conversation(&db, "chat");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (writer, thread) =
            Writer::start(db.clone(), 1, BulkLane::Own { yielding: None }, 64).unwrap();
        let mut holder = db.conn().unwrap();
        let copy = holder
            .transaction::<_, diesel::result::Error, _>(|h| {
                diesel::update(conversations::table.find(&held))
                    .set(conversations::updated_at.eq(1_i64))
                    .execute(h)?;
                let bulk = writer.clone();
                let copy =
                    rt.spawn(async move { bulk.append_in(Lane::Bulk, msg(&held, "copy")).await });
                rt.block_on(async {
                    // Let the copy reach its queue first.
                    tokio::task::yield_now().await;
                    // A guard against a hang, not a timing assertion.
                    let answered = tokio::time::timeout(
                        std::time::Duration::from_secs(30),
                        writer.append(msg(&chat, "hello")),
                    )
                    .await
                    .expect("the chat message must not wait for the held row");
                    assert_eq!(answered.unwrap().message.seq, 1);
                    assert!(!copy.is_finished(), "the copy waits for the row lock");
                });
                Ok(copy)
            })
            .unwrap();
        let copied = rt.block_on(copy).unwrap().unwrap();
        assert_eq!(
            copied.message.seq, 1,
            "the copy is stored once the lock is gone"
        );
        rt.block_on(writer.shutdown());
        thread.join();
    }
}
