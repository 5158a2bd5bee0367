//! What happens to a job row, as pure functions (no database, no clock): the states
//! a job can be in, what a handler may answer, the retry backoff, and the row an
//! outcome leads to. The runner ([`super`]) applies these; `docs/scheduler.md`
//! explains them.

use std::time::Duration;

use serde::Serialize;

/// Where a job is in its life. Stored as text in `jobs.state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for its `due_at` (or for its next attempt).
    Pending,
    /// Claimed by a node whose lease (`lease_until`) has not run out.
    Running,
    /// Finished (one-off jobs only; a recurring job goes back to pending).
    Done,
    /// Gave up: a permanent failure, or too many failed attempts.
    Failed,
    /// Called off before it ran.
    Cancelled,
}

impl JobState {
    /// Every state, for validation and the UI's filter.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Running,
        Self::Done,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// What a handler answers for one run of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It is done (a recurring job is then due again one period later).
    Done,
    /// Run it again at `due_at` (the handler decides the next time itself).
    Again {
        /// Next run, epoch ms.
        due_at: i64,
    },
    /// A transient failure: try again after a backoff; give up after too many.
    Retry {
        /// Why, kept in `last_error`.
        error: String,
    },
    /// A permanent failure: never try this occurrence again.
    Fail {
        /// Why, kept in `last_error`.
        error: String,
    },
}

/// The retry schedule: `base`, doubling per failed attempt, capped at `max`; after
/// `max_attempts` claims of one occurrence the job fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failed attempt.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Claims of one occurrence before it is given up.
    pub max_attempts: i32,
}

impl Backoff {
    /// Delay in ms after the `attempt`-th failed attempt (1-based): `base ·
    /// 2^(attempt-1)`, capped at `max`. Deterministic (no jitter), so the schedule
    /// shown in `GET /api/jobs` is the one that happens; jobs of one kind rarely fail
    /// in lockstep, and if they do their leases already spread them over the nodes.
    pub fn delay_ms(&self, attempt: i32) -> i64 {
        let base = ms(self.base);
        let max = ms(self.max);
        let shift = u32::try_from(attempt.saturating_sub(1).clamp(0, 62)).unwrap_or(0);
        base.saturating_mul(1_i64.checked_shl(shift).unwrap_or(i64::MAX))
            .min(max)
    }

    /// True when a job claimed `attempts` times has had all its tries (a job whose
    /// node died mid-run that often is not run again: it may be what kills nodes).
    pub fn exhausted(&self, attempts: i32) -> bool {
        attempts > self.max_attempts
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The row after an outcome: its new state, due time, attempt count and error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// New state.
    pub state: JobState,
    /// New `due_at`.
    pub due_at: i64,
    /// New `attempts` (0 when a new occurrence starts).
    pub attempts: i32,
    /// New `last_error` (`None` clears it).
    pub last_error: Option<String>,
}

/// What `outcome` does to a job due at `due_at`, claimed `attempts` times for
/// this occurrence, recurring every `every_ms` (if it recurs), at time `now`.
///
/// A recurring job never ends by failing: when an occurrence fails for good, the
/// error is kept and the next occurrence is scheduled, so a bad minute does not
/// stop the working-hours tick forever.
pub fn after(
    outcome: Outcome,
    due_at: i64,
    attempts: i32,
    every_ms: Option<i64>,
    now: i64,
    backoff: &Backoff,
) -> Transition {
    let next = |last_error: Option<String>| match every_ms {
        Some(every) => Transition {
            state: JobState::Pending,
            due_at: now.saturating_add(every.max(1)),
            attempts: 0,
            last_error,
        },
        None => Transition {
            state: if last_error.is_some() {
                JobState::Failed
            } else {
                JobState::Done
            },
            due_at,
            attempts,
            last_error,
        },
    };
    match outcome {
        Outcome::Done => next(None),
        Outcome::Again { due_at } => Transition {
            state: JobState::Pending,
            due_at,
            attempts: 0,
            last_error: None,
        },
        Outcome::Retry { error } if attempts < backoff.max_attempts => Transition {
            state: JobState::Pending,
            due_at: now.saturating_add(backoff.delay_ms(attempts)),
            attempts,
            last_error: Some(error),
        },
        Outcome::Retry { error } => next(Some(format!(
            "gave up after {attempts} {}: {error}",
            if attempts == 1 { "attempt" } else { "attempts" }
        ))),
        Outcome::Fail { error } => next(Some(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(5),
        max_attempts: 4,
    };

    #[test]
    fn backoff_doubles_from_base_and_is_capped() {
        let delays: Vec<i64> = (1..=5).map(|a| B.delay_ms(a)).collect();
        assert_eq!(delays, [1_000, 2_000, 4_000, 5_000, 5_000]);
        assert_eq!(B.delay_ms(0), 1_000);
        assert_eq!(B.delay_ms(i32::MAX), 5_000);
        assert!(!B.exhausted(4));
        assert!(B.exhausted(5));
    }

    #[test]
    fn done_ends_a_one_off_job_and_reschedules_a_recurring_one() {
        let t = after(Outcome::Done, 10, 1, None, 100, &B);
        assert_eq!(
            (t.state, t.due_at, t.attempts, t.last_error),
            (JobState::Done, 10, 1, None)
        );
        let t = after(Outcome::Done, 10, 2, Some(60), 100, &B);
        assert_eq!((t.state, t.due_at, t.attempts), (JobState::Pending, 160, 0));
        let t = after(Outcome::Again { due_at: 500 }, 10, 3, None, 100, &B);
        assert_eq!((t.state, t.due_at, t.attempts), (JobState::Pending, 500, 0));
    }

    #[test]
    fn retry_backs_off_then_fails_with_the_error() {
        let retry = || Outcome::Retry {
            error: "down".into(),
        };
        let t = after(retry(), 10, 1, None, 100, &B);
        assert_eq!((t.state, t.due_at), (JobState::Pending, 1_100));
        assert_eq!(t.last_error.as_deref(), Some("down"));
        let t = after(retry(), 10, 3, None, 100, &B);
        assert_eq!(t.due_at, 4_100);
        let t = after(retry(), 10, 4, None, 100, &B);
        assert_eq!(t.state, JobState::Failed);
        assert_eq!(
            t.last_error.as_deref(),
            Some("gave up after 4 attempts: down")
        );
    }

    #[test]
    fn a_recurring_job_survives_a_failed_occurrence() {
        let t = after(
            Outcome::Fail {
                error: "bad".into(),
            },
            10,
            1,
            Some(60),
            100,
            &B,
        );
        assert_eq!((t.state, t.due_at, t.attempts), (JobState::Pending, 160, 0));
        assert_eq!(t.last_error.as_deref(), Some("bad"));
        let t = after(
            Outcome::Fail {
                error: "bad".into(),
            },
            10,
            1,
            None,
            100,
            &B,
        );
        assert_eq!(t.state, JobState::Failed);
    }

    #[test]
    fn states_round_trip() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobState::parse("nope"), None);
    }
}
