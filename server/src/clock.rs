//! Time as the hub stores and shows it: UTC milliseconds since the Unix epoch in the
//! database, RFC 3339 with milliseconds (`2026-11-21T08:15:02.123Z`) on the wire.
//!
//! Also the injectable [`Clock`]: the system clock in production, a [`ManualClock`]
//! that tests set and advance, so code that waits for a time (the scheduler,
//! `docs/scheduler.md`) is tested without sleeping. Code that has an
//! [`crate::state::AppState`] reads `state.clock`; the free [`now_ms`] stays the
//! system clock for code that is not yet clock-injected.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::watch;

/// Current time in UTC milliseconds since the Unix epoch (always the system clock).
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Where "now" comes from: the system clock, or a manual one (tests).
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The machine's clock.
    #[default]
    System,
    /// A clock that moves only when told to ([`ManualClock::set`], [`ManualClock::advance`]).
    Manual(ManualClock),
}

impl Clock {
    /// Current time in UTC milliseconds.
    pub fn now_ms(&self) -> i64 {
        match self {
            Self::System => now_ms(),
            Self::Manual(m) => m.now_ms(),
        }
    }

    /// Resolves once this clock reads `at_ms` or later. On the system clock that is
    /// a timer; on a manual clock it is the `set`/`advance` that gets there (no wall
    /// time passes in tests).
    pub async fn sleep_until(&self, at_ms: i64) {
        match self {
            Self::System => {
                let wait = u64::try_from(at_ms.saturating_sub(now_ms())).unwrap_or(0);
                if wait > 0 {
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
            }
            Self::Manual(m) => m.reached(at_ms).await,
        }
    }

    /// A stream of "the clock was moved" for a waiter that must re-read what is
    /// due after a test sets or advances a manual clock (nothing on the system clock).
    pub fn changes(&self) -> ClockChanges {
        ClockChanges(match self {
            Self::System => None,
            Self::Manual(m) => Some(m.ms.subscribe()),
        })
    }
}

/// See [`Clock::changes`]. Kept across waits, so a move between two waits is not missed.
#[derive(Debug)]
pub struct ClockChanges(Option<watch::Receiver<i64>>);

impl ClockChanges {
    /// Resolves when the manual clock has moved since the last call (or since
    /// [`Clock::changes`]); never on the system clock.
    pub async fn next(&mut self) {
        let moved = match &mut self.0 {
            Some(rx) => rx.changed().await.is_ok(),
            None => false,
        };
        if !moved {
            // System clock, or the sender (kept by the clock) is gone: never.
            std::future::pending::<()>().await;
        }
    }
}

/// A clock shared by clones (a test and the servers it started): it reads what it
/// was last set to, and wakes everything waiting on it when moved.
#[derive(Clone, Debug)]
pub struct ManualClock {
    ms: Arc<watch::Sender<i64>>,
}

impl ManualClock {
    /// A manual clock reading `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        Self {
            ms: Arc::new(watch::Sender::new(start_ms)),
        }
    }

    /// What it reads.
    pub fn now_ms(&self) -> i64 {
        *self.ms.borrow()
    }

    /// Sets it to `ms` (it may go backwards; nothing here assumes it does not).
    pub fn set(&self, ms: i64) {
        self.ms.send_replace(ms);
    }

    /// Moves it forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.ms.send_modify(|v| *v = v.saturating_add(by));
    }

    async fn reached(&self, at_ms: i64) {
        let mut rx = self.ms.subscribe();
        loop {
            if *rx.borrow_and_update() >= at_ms {
                return;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `self`, so this cannot happen; never resolve.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC with millisecond precision.
/// Out-of-range values (beyond year 262 143) format as the epoch rather than panic.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or(DateTime::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis_and_z() {
        assert_eq!(rfc3339(1_763_712_902_123), "2025-11-21T08:15:02.123Z");
        assert_eq!(rfc3339(i64::MAX), "1970-01-01T00:00:00.000Z");
    }

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_when_advanced() {
        let manual = ManualClock::new(1_000);
        let clock = Clock::Manual(manual.clone());
        assert_eq!(clock.now_ms(), 1_000);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(5_000).await }
        });
        manual.advance(Duration::from_millis(3_000));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        manual.advance(Duration::from_millis(1_000));
        sleeper.await.unwrap();
        assert_eq!(clock.now_ms(), 5_000);
    }
}
