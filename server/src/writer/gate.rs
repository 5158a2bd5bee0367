//! The bulk lane's gate: applies [`BulkShare`]'s cap to the bulk writer thread
//! with a token bucket, and carries the chat delays the interactive writer
//! threads measure to it.
//!
//! The bulk thread blocks in [`BulkGate::room`] until the cap lets at least one
//! copy through; the copies behind it wait in the lane's queue (their callers,
//! the broadcast runner and the automation runner, wait asynchronously), so
//! nothing is dropped and no chat message is held: chat messages never pass
//! through this gate.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::share::{BulkShare, Tuning};

/// Shared by every writer thread of one [`super::Writer`].
#[derive(Debug)]
pub struct BulkGate {
    origin: Instant,
    /// The controller's interval: the bucket holds at most one interval's copies.
    interval: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    share: BulkShare,
    /// Copies the bucket holds now (may be fractional).
    tokens: f64,
    /// When `tokens` was last refilled (offset from `origin`).
    refilled: Duration,
}

impl BulkGate {
    /// A gate without a cap until chat delays call for one.
    pub fn new(tuning: Tuning) -> Self {
        Self {
            origin: Instant::now(),
            interval: tuning.interval,
            inner: Mutex::new(Inner {
                share: BulkShare::new(tuning, Duration::ZERO),
                tokens: 0.0,
                refilled: Duration::ZERO,
            }),
        }
    }

    /// Records `count` chat messages committed, their queue-to-commit delays
    /// adding up to `total`.
    ///
    /// Chat traffic also drives decisions, so the base delay is learnt while no
    /// broadcast runs (the bulk thread only decides when it has copies).
    pub fn chat_committed(&self, count: usize, total: Duration) {
        let mut inner = self.inner.lock();
        inner.share.chat_committed(count as u64, total);
        self.decide(&mut inner);
    }

    /// The cap now, deciding anew when an interval has passed (logged, and
    /// exported as `switchboard_bulk_cap_per_second`).
    fn decide(&self, inner: &mut Inner) -> (Duration, Option<f64>) {
        let now = self.origin.elapsed();
        if let Some(d) = inner.share.tick(now) {
            tracing::debug!(cap = d.cap, mean = ?d.mean, base = ?d.base, "bulk lane cap");
            crate::metrics::METRICS
                .bulk_cap_per_second
                .set(d.cap.map_or(0, |c| c.round() as i64));
        }
        (now, inner.share.current())
    }

    /// Blocks the calling (bulk writer) thread until the cap lets a copy
    /// through; returns how many copies, at most `want` (at least 1), may be
    /// committed now, and takes them from the bucket. The caller hands back what
    /// it did not use with [`BulkGate::bulk_committed`].
    pub fn room(&self, want: usize) -> usize {
        {
            let mut inner = self.inner.lock();
            let now = self.origin.elapsed();
            inner.share.copies_waiting(now);
        }
        loop {
            let wait = {
                let mut inner = self.inner.lock();
                let (now, cap) = self.decide(&mut inner);
                let Some(cap) = cap else {
                    // Uncapped: start a future cap from an empty bucket.
                    inner.tokens = 0.0;
                    inner.refilled = now;
                    return want;
                };
                // At most one interval's worth of copies in one burst.
                let burst = (cap * self.interval.as_secs_f64()).max(1.0);
                let since = now.saturating_sub(inner.refilled);
                inner.tokens = (inner.tokens + since.as_secs_f64() * cap).min(burst);
                inner.refilled = now;
                if inner.tokens >= 1.0 {
                    let n = (inner.tokens.floor() as usize).clamp(1, want.max(1));
                    inner.tokens -= n as f64;
                    return n;
                }
                Duration::from_secs_f64((1.0 - inner.tokens) / cap)
            };
            // Short sleeps, so a cap that grows (or lifts) applies soon.
            std::thread::sleep(wait.min(Duration::from_millis(20)));
        }
    }

    /// The cap as last decided, copies per second (`None`: uncapped).
    pub fn cap(&self) -> Option<f64> {
        self.inner.lock().share.current()
    }

    /// Records `count` copies committed out of `allowed` that
    /// [`BulkGate::room`] let through (the rest go back in the bucket).
    pub fn bulk_committed(&self, count: usize, allowed: usize) {
        let mut inner = self.inner.lock();
        inner.share.bulk_committed(count as u64);
        inner.tokens += allowed.saturating_sub(count) as f64;
    }
}
