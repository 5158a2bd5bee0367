//! Every kind of job the hub knows ([`JobKind`], a closed set) and the ONE match
//! that sends a claimed job to its feature's handler ([`run`]). A feature that needs
//! something done later adds a variant here and a handler in its own module; the
//! runner, leases and retries stay the scheduler's.
//!
//! Handlers must be idempotent by the job's key: a lease that runs out while a
//! handler is still working (a hung or dead node) lets another node run the same
//! job again, so "done exactly once in effect" is the handler's promise, kept by
//! checking the state its key names before acting (see `docs/scheduler.md`).

use std::time::Duration;

use crate::config::Config;
use crate::state::AppState;

use super::policy::Outcome;
use super::store::JobRow;

/// What a job does. Stored as its [`JobKind::as_str`] name in `jobs.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Drains team queues for agents whose working hours may have begun
    /// (`routing::actor`, `docs/routing.md` "Working hours"). Recurring.
    HoursTick,
    /// Pushes `task_due` for open lead tasks past due (`leads`). Recurring.
    OverdueTasks,
    /// One pass of a broadcast (`broadcasts::runner`); the key is its id.
    Broadcast,
    /// The steps of an automation run from one step to the next wait or the end
    /// (`automations::runner`); the key is `{run}:{step}`.
    AutomationStep,
    /// Enrols the conversations the no-reply automations count as silent
    /// (`automations::runner::sweep_silences`). Recurring.
    AutomationSilences,
    /// Syncs every WABA's message templates (`channels::templates::sync`).
    /// Recurring, and due at once at every start.
    TemplateSync,
}

impl JobKind {
    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::HoursTick,
        Self::OverdueTasks,
        Self::Broadcast,
        Self::AutomationStep,
        Self::AutomationSilences,
        Self::TemplateSync,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HoursTick => "routing.hours_tick",
            Self::OverdueTasks => "leads.overdue_tasks",
            Self::Broadcast => "broadcast.pass",
            Self::AutomationStep => "automation.step",
            Self::AutomationSilences => "automations.no_reply_sweep",
            Self::TemplateSync => "templates.sync",
        }
    }

    /// Parses a stored name; `None` for a kind this node does not know (written by
    /// a newer version during a rolling upgrade).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The recurring jobs every node makes sure exist at start: kind, key, period.
pub fn recurring(config: &Config) -> Vec<(JobKind, &'static str, Duration)> {
    vec![
        (
            JobKind::HoursTick,
            "every",
            crate::routing::actor::HOURS_TICK,
        ),
        (JobKind::OverdueTasks, "every", config.lead_task_check),
        (
            JobKind::AutomationSilences,
            "every",
            crate::automations::runner::SILENCE_SWEEP,
        ),
        (
            JobKind::TemplateSync,
            "every",
            crate::channels::templates::sync::SYNC_EVERY,
        ),
    ]
}

/// Runs one claimed job of a known kind.
pub async fn run(state: &AppState, kind: JobKind, job: &JobRow) -> Outcome {
    tracing::debug!(job = %job.id, kind = kind.as_str(), key = %job.key, "running job");
    match kind {
        JobKind::HoursTick => {
            state.hub.route(crate::routing::actor::HoursTick);
            Outcome::Done
        }
        JobKind::Broadcast => crate::broadcasts::runner::run(state, &job.key).await,
        JobKind::AutomationStep => crate::automations::runner::run_step(state, &job.key).await,
        JobKind::AutomationSilences => crate::automations::runner::sweep_silences(state).await,
        JobKind::TemplateSync => crate::channels::templates::sync::run_job(state).await,
        JobKind::OverdueTasks => match crate::leads::push_overdue_tasks(state).await {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Retry {
                error: e.to_string(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_unknown_kinds_are_none() {
        for k in JobKind::ALL {
            assert_eq!(JobKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(JobKind::parse("broadcasts.send"), None);
    }
}
