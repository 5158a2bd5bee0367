//! A broadcast's lifecycle as a pure state machine: draft → scheduled → sending →
//! done, with pause, resume and cancel (issue 17 §4). Every state change a user or
//! the runner asks for goes through [`next`], so the rules live in one place and
//! the store only records what [`next`] allowed.

use serde::{Deserialize, Serialize};

/// Where a broadcast is in its life. Stored by [`State::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Being written; nothing is sent and recipients are not fixed.
    Draft,
    /// Waiting for its send time.
    Scheduled,
    /// Recipients are fixed and copies are going out.
    Sending,
    /// Stopped by a user mid-send; resumes where it stopped.
    Paused,
    /// Every recipient has been sent to or skipped.
    Done,
    /// Stopped for good by a user; unsent recipients are never sent to.
    Cancelled,
}

impl State {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Scheduled => "scheduled",
            Self::Sending => "sending",
            Self::Paused => "paused",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => Self::Draft,
            "scheduled" => Self::Scheduled,
            "sending" => Self::Sending,
            "paused" => Self::Paused,
            "done" => Self::Done,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Whether the broadcast can no longer change.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Cancelled)
    }

    /// Whether its content, audience and time may still be edited.
    pub fn is_editable(self) -> bool {
        matches!(self, Self::Draft | Self::Scheduled)
    }
}

/// What someone (a user, or the runner) asks of a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send at a later time (epoch ms).
    Schedule,
    /// Back to draft from scheduled (unschedule).
    Unschedule,
    /// Start sending now (a user's "send now", or the runner at the send time).
    Start,
    /// Stop sending for now.
    Pause,
    /// Continue a paused broadcast.
    Resume,
    /// Stop for good.
    Cancel,
    /// The runner found nothing left to send.
    Finish,
}

/// Why an action was refused: the state it was asked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {state} broadcast cannot be {action}", state = .from.as_str(), action = verb(*.action))]
pub struct Refused {
    /// The broadcast's state.
    pub from: State,
    /// What was asked.
    pub action: Action,
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Schedule => "scheduled",
        Action::Unschedule => "unscheduled",
        Action::Start => "started",
        Action::Pause => "paused",
        Action::Resume => "resumed",
        Action::Cancel => "cancelled",
        Action::Finish => "finished",
    }
}

/// The state after `action` in state `from`.
///
/// # Errors
/// [`Refused`] when the action makes no sense there (pausing a draft, resuming a
/// finished broadcast, …); the HTTP layer answers 409 with its text.
pub fn next(from: State, action: Action) -> Result<State, Refused> {
    use Action as A;
    use State as S;
    let to = match (from, action) {
        (S::Draft | S::Scheduled, A::Schedule) => S::Scheduled,
        (S::Scheduled, A::Unschedule) => S::Draft,
        (S::Draft | S::Scheduled, A::Start) => S::Sending,
        (S::Sending, A::Pause) => S::Paused,
        (S::Paused, A::Resume) => S::Sending,
        (S::Draft | S::Scheduled | S::Sending | S::Paused, A::Cancel) => S::Cancelled,
        (S::Sending, A::Finish) => S::Done,
        _ => return Err(Refused { from, action }),
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_and_its_detours() {
        let s = next(State::Draft, Action::Schedule).unwrap();
        assert_eq!(s, State::Scheduled);
        let s = next(s, Action::Start).unwrap();
        let s = next(s, Action::Pause).unwrap();
        assert_eq!(s, State::Paused);
        let s = next(s, Action::Resume).unwrap();
        assert_eq!(next(s, Action::Finish).unwrap(), State::Done);
        assert_eq!(
            next(State::Paused, Action::Cancel).unwrap(),
            State::Cancelled
        );
        assert_eq!(
            next(State::Scheduled, Action::Unschedule).unwrap(),
            State::Draft
        );
    }

    #[test]
    fn final_states_refuse_everything() {
        for from in [State::Done, State::Cancelled] {
            for a in [
                Action::Schedule,
                Action::Unschedule,
                Action::Start,
                Action::Pause,
                Action::Resume,
                Action::Cancel,
                Action::Finish,
            ] {
                assert!(next(from, a).is_err(), "{from:?} {a:?}");
            }
        }
        let e = next(State::Draft, Action::Pause).unwrap_err();
        assert_eq!(e.to_string(), "a draft broadcast cannot be paused");
        // A paused broadcast is not finished by the runner: only resumed or cancelled.
        assert!(next(State::Paused, Action::Finish).is_err());
    }

    #[test]
    fn stored_names_round_trip() {
        for s in [
            State::Draft,
            State::Scheduled,
            State::Sending,
            State::Paused,
            State::Done,
            State::Cancelled,
        ] {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse("sent"), None);
    }
}
