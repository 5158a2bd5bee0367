//! One line for SQLite's write lock inside the process.
//!
//! Why: SQLite has one write lock per database file. A connection that finds it
//! taken waits in SQLite's busy handler, which sleeps 1, 2, 5, 10, … ms between
//! tries (`sqliteDefaultBusyCallback` in SQLite's `main.c`), while a write of ours
//! holds the lock for a tenth of a millisecond to a millisecond. The webhook bench
//! counted about 400 such sleeps a second: the message writer against the
//! pipeline's lease updates and bookkeeping. Each sleep in the writer held up a
//! whole batch of callers.
//!
//! So this process's writers queue here first and are handed the lock as soon as
//! it is free: [`crate::db::write_transaction`] holds the gate from `BEGIN
//! IMMEDIATE` to its end, and single-statement writes on a hot path take it with
//! [`hold`]. The busy handler still covers what does not queue here (another
//! process, a write outside the gate), so the gate changes waiting, never
//! correctness.
//!
//! Which gate applies is a property of the thread's current work: [`WriteGate::within`]
//! installs the database's gate for a closure ([`crate::db::Db::run`], the message
//! writer's thread). On PostgreSQL there is no gate (row locks wait without sleeping).

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{ArcMutexGuard, Mutex, RawMutex};

/// How long a writer queues before it goes on without the gate: SQLite's own
/// `busy_timeout` (`pool`), so a stuck holder costs no more than it did before.
const QUEUE_AT_MOST: Duration = Duration::from_secs(5);

type Guard = ArcMutexGuard<RawMutex, ()>;

thread_local! {
    /// The gate of the database this thread is working for, if it has one.
    static CURRENT: RefCell<Option<Arc<Mutex<()>>>> = const { RefCell::new(None) };
    /// Whether this thread holds its gate: a nested [`hold`] must not queue behind
    /// itself.
    static HOLDING: Cell<bool> = const { Cell::new(false) };
}

/// The write gate of one database: `Some` on SQLite. Cheap to clone.
#[derive(Clone, Default)]
pub struct WriteGate(Option<Arc<Mutex<()>>>);

impl std::fmt::Debug for WriteGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WriteGate").field(&self.0.is_some()).finish()
    }
}

impl WriteGate {
    /// A gate for a SQLite database.
    pub fn sqlite() -> Self {
        Self(Some(Arc::new(Mutex::new(()))))
    }

    /// No gate (PostgreSQL).
    pub fn none() -> Self {
        Self(None)
    }

    /// Runs `f` with this gate as the thread's current one, then restores the
    /// previous (so nested calls for another database are safe).
    pub fn within<T>(&self, f: impl FnOnce() -> T) -> T {
        let previous = CURRENT.with(|c| c.replace(self.0.clone()));
        let restore = Restore(previous);
        let out = f();
        drop(restore);
        out
    }
}

/// Puts the previous current gate back, also when the closure panics.
struct Restore(Option<Arc<Mutex<()>>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// The thread's place at its database's gate; leaving it lets the next writer in.
/// Empty when there is no gate, when this thread already held it, or when the
/// queue took longer than SQLite's busy timeout.
#[must_use = "the gate is held only while this lives"]
pub struct Held(Option<Guard>);

impl Drop for Held {
    fn drop(&mut self) {
        if self.0.take().is_some() {
            HOLDING.with(|h| h.set(false));
        }
    }
}

/// Queues for the thread's current gate (see the module documentation); hold the
/// result for as long as the write holds SQLite's lock.
pub fn hold() -> Held {
    if HOLDING.with(Cell::get) {
        return Held(None);
    }
    let Some(gate) = CURRENT.with(|c| c.borrow().clone()) else {
        return Held(None);
    };
    match Mutex::try_lock_arc_for(&gate, QUEUE_AT_MOST) {
        Some(guard) => {
            HOLDING.with(|h| h.set(true));
            Held(Some(guard))
        }
        None => {
            tracing::warn!(
                "waited {QUEUE_AT_MOST:?} for the SQLite write gate; going on without it"
            );
            Held(None)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn without_a_current_gate_nothing_is_held() {
        assert!(hold().0.is_none());
        WriteGate::none().within(|| assert!(hold().0.is_none()));
    }

    #[test]
    fn a_holder_can_hold_again_and_the_outer_hold_keeps_the_gate() {
        let gate = WriteGate::sqlite();
        let lock = gate.0.clone().unwrap();
        gate.within(|| {
            let outer = hold();
            assert!(outer.0.is_some());
            // Queuing behind itself would wait for QUEUE_AT_MOST and warn.
            let inner = hold();
            assert!(inner.0.is_none());
            drop(inner);
            assert!(
                lock.is_locked(),
                "the nested hold let go of the outer's gate"
            );
            drop(outer);
            assert!(!lock.is_locked());
        });
    }

    #[test]
    fn another_thread_waits_until_the_holder_leaves() {
        let gate = WriteGate::sqlite();
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (leave_tx, leave_rx) = std::sync::mpsc::channel::<()>();
        let holder = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                gate.within(|| {
                    let _held = hold();
                    entered_tx.send(()).unwrap();
                    leave_rx.recv().unwrap();
                })
            })
        };
        entered_rx.recv().unwrap();
        let lock = gate.0.clone().unwrap();
        assert!(lock.try_lock().is_none(), "held by the other thread");
        leave_tx.send(()).unwrap();
        holder.join().unwrap();
        gate.within(|| assert!(hold().0.is_some()));
    }

    #[test]
    fn within_restores_the_previous_gate() {
        let outer = WriteGate::sqlite();
        outer.within(|| {
            WriteGate::none().within(|| assert!(hold().0.is_none()));
            assert!(hold().0.is_some());
        });
        assert!(hold().0.is_none());
    }
}
