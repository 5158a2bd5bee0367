//! The message writer: one thread that commits message appends in batches
//! (group commit) and answers each caller only after its batch is durable.
//!
//! Why: a commit (fsync on SQLite's WAL, a round trip plus WAL flush on PostgreSQL)
//! costs far more than the rows in it, so appends that arrive while a commit is in
//! progress are gathered and committed together. Nothing waits for a timer: an idle
//! writer commits a lone message at once; under load batches grow by themselves.
//!
//! Each append runs in its own savepoint inside the batch transaction, so one bad
//! append (a missing conversation, a duplicate race) fails alone. If the batch commit
//! itself fails, every caller in it gets [`AppError::Unavailable`] and nothing was
//! stored; clients retry with the same `client_msg_id`, which makes the retry safe.

use std::thread::JoinHandle;

use diesel::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::db::Db;
use crate::error::AppError;
use crate::store::messages::{append_in_savepoint, Appended, NewMessage};

/// Capacity of the writer's queue; callers wait (asynchronously) when it is full,
/// which is the hub's backpressure against a database slower than its inbound rate.
const QUEUE: usize = 8192;

enum Job {
    Append {
        message: NewMessage,
        reply: oneshot::Sender<Result<Appended, AppError>>,
    },
    Stop,
}

/// Handle to the writer thread. Cheap to clone; the thread stops after
/// [`Writer::shutdown`] once everything queued before it is committed.
#[derive(Clone, Debug)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

/// The writer thread's join handle, kept by whoever owns shutdown.
#[derive(Debug)]
pub struct WriterThread(JoinHandle<()>);

impl WriterThread {
    /// Waits for the thread to finish its queue and exit.
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("message writer thread panicked");
        }
    }
}

impl Writer {
    /// Starts the writer thread.
    ///
    /// # Errors
    /// [`AppError::Internal`] when the OS refuses a thread.
    pub fn start(db: Db, max_batch: usize) -> Result<(Self, WriterThread), AppError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name("switchboard-writer".into())
            .spawn(move || run(db, rx, max_batch))
            .map_err(|e| AppError::internal(format!("cannot start writer thread: {e}")))?;
        Ok((Self { tx }, WriterThread(handle)))
    }

    /// Appends a message durably: resolves once the message is committed (or found to
    /// be a duplicate of a committed one).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for an unknown conversation; [`AppError::Unavailable`]
    /// when the database could not commit or the writer is shutting down.
    pub async fn append(&self, message: NewMessage) -> Result<Appended, AppError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Append { message, reply })
            .await
            .map_err(|_| AppError::Unavailable("the server is shutting down".into()))?;
        rx.await
            .map_err(|_| AppError::Unavailable("the message writer stopped".into()))?
    }

    /// Asks the thread to stop after committing everything queued so far.
    pub async fn shutdown(&self) {
        // A closed channel means the thread is already gone; nothing to do.
        let _ = self.tx.send(Job::Stop).await;
    }
}

fn run(db: Db, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch: Vec<(NewMessage, oneshot::Sender<Result<Appended, AppError>>)> = Vec::new();
    loop {
        let mut stop = false;
        match rx.blocking_recv() {
            Some(Job::Append { message, reply }) => batch.push((message, reply)),
            Some(Job::Stop) | None => stop = true,
        }
        while !stop && batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Job::Append { message, reply }) => batch.push((message, reply)),
                Ok(Job::Stop) => stop = true,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit(&db, &mut batch);
        }
        if stop {
            tracing::info!("message writer stopped");
            return;
        }
    }
}

fn commit(db: &Db, batch: &mut Vec<(NewMessage, oneshot::Sender<Result<Appended, AppError>>)>) {
    let size = batch.len();
    let mut conn = match db.conn() {
        Ok(c) => c,
        Err(e) => {
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(AppError::Unavailable(e.to_string())));
            }
            return;
        }
    };
    let mut results: Vec<Result<Appended, AppError>> = Vec::with_capacity(size);
    let outcome = conn.transaction::<_, diesel::result::Error, _>(|c| {
        results.clear();
        for (message, _) in batch.iter() {
            results.push(append_in_savepoint(c, message).map_err(|e| match e {
                diesel::result::Error::NotFound => {
                    AppError::NotFound(format!("no conversation {}", message.conversation_id))
                }
                other => AppError::from(other),
            }));
        }
        Ok(())
    });
    match outcome {
        Ok(()) => {
            tracing::trace!(size, "batch committed");
            for ((_, reply), result) in batch.drain(..).zip(results) {
                // A caller that went away (closed socket) does not need its answer;
                // its message is stored all the same.
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, size, "batch commit failed; callers will retry");
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(AppError::Unavailable(
                    "the database could not commit; nothing was stored, retry".into(),
                )));
            }
        }
    }
}
