//! Automations (sequences, issue 17 §5; `docs/automations.md`): a team's rule
//! "when this happens to a contact, do these steps, with waits between them".
//!
//! This module holds the policy, as pure functions over typed values:
//! - what starts a sequence ([`Trigger`]) and what it does ([`Step`]);
//! - the checks a sequence passes before it is saved or turned on ([`check`]);
//! - what the runner does next from a run's step ([`next`]);
//! - the defaults every team gets, disabled ([`presets`]).
//!
//! The store (`store::automations`) enrols contacts when a trigger fires, in the
//! trigger's own transaction; the runner ([`runner`]) is the scheduler's handler
//! for one step of one run; the inbound pipeline's `StopSequences` stage stops
//! waiting runs when the customer writes.

pub mod presets;
pub mod runner;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::broadcasts::content::Content;

/// An automation's id (UUID v7 text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AutomationId(pub String);

/// A run's id: one contact going through one automation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

/// The `sender_id` prefix of the messages a sequence sends (`automation:{id}`).
pub const SENDER_PREFIX: &str = "automation:";

/// Longest name, characters.
pub const MAX_NAME_CHARS: usize = 80;
/// Most steps in one sequence.
pub const MAX_STEPS: usize = 20;
/// Longest wait or task delay, minutes (90 days).
pub const MAX_MINUTES: u32 = 90 * 24 * 60;
/// Longest silence the no-reply trigger waits for, hours (30 days).
pub const MAX_SILENCE_HOURS: u32 = 30 * 24;
/// Longest task title, characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// What starts a sequence for a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// A lead is created in the team (from a conversation, a form or an import).
    LeadCreated,
    /// A lead enters stage `stage` (a key of the team's pipeline), by hand or by
    /// the lead rules.
    StageEntered {
        /// Stage key.
        stage: String,
    },
    /// Tag `tag_id` is put on a contact who has a conversation in the team.
    TagAdded {
        /// Tag id.
        tag_id: String,
    },
    /// The customer has not written for `hours` since the team last wrote in a
    /// WhatsApp conversation; once per customer message.
    NoReply {
        /// Hours of silence (1–720).
        hours: u32,
    },
}

/// A trigger's kind, as stored in `automations.trigger_kind` (indexed: a trigger
/// looks up only the automations of its kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerKind {
    /// [`Trigger::LeadCreated`].
    LeadCreated,
    /// [`Trigger::StageEntered`].
    StageEntered,
    /// [`Trigger::TagAdded`].
    TagAdded,
    /// [`Trigger::NoReply`].
    NoReply,
}

impl TriggerKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeadCreated => "lead_created",
            Self::StageEntered => "stage_entered",
            Self::TagAdded => "tag_added",
            Self::NoReply => "no_reply",
        }
    }
}

impl Trigger {
    /// Its kind.
    pub fn kind(&self) -> TriggerKind {
        match self {
            Self::LeadCreated => TriggerKind::LeadCreated,
            Self::StageEntered { .. } => TriggerKind::StageEntered,
            Self::TagAdded { .. } => TriggerKind::TagAdded,
            Self::NoReply { .. } => TriggerKind::NoReply,
        }
    }
}

/// One step of a sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Wait before the next step.
    Wait {
        /// Minutes (1 – 90 days).
        minutes: u32,
    },
    /// Send a template or text in the contact's WhatsApp conversation of the team
    /// (the broadcasts' [`Content`]); `None` until chosen (the presets), and a
    /// sequence cannot be turned on with one unchosen.
    Send {
        /// What to send.
        content: Option<Content>,
    },
    /// Put a tag on the contact.
    AddTag {
        /// Tag id.
        tag_id: String,
    },
    /// Create a task on the contact's lead, for its owner.
    CreateTask {
        /// Title.
        title: String,
        /// Due this many minutes after the step runs.
        due_in_minutes: u32,
    },
    /// Move the contact's lead to a stage (a manual-style move: any direction).
    MoveStage {
        /// Stage key.
        stage: String,
    },
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Steps are left.
    Active,
    /// Every step ran.
    Done,
    /// Stopped: the customer replied, the automation was turned off or deleted.
    Stopped,
    /// A step could not run (its reason is on the run).
    Failed,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [Self; 4] = [Self::Active, Self::Done, Self::Stopped, Self::Failed];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Done => "done",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What the team has that a sequence may name.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// The team's pipeline stage keys.
    pub stages: Vec<String>,
    /// Existing tag ids.
    pub tags: HashSet<String>,
}

/// How strictly [`check`] looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Saving a draft: unchosen send steps are allowed.
    Save,
    /// Turning it on (or saving one that is on): every step must be complete.
    Enable,
}

/// Checks a sequence before it is saved or turned on. Messages are for the
/// marketer and name the step (1-based).
///
/// # Errors
/// The first problem found, as a sentence.
pub fn check(
    name: &str,
    trigger: &Trigger,
    steps: &[Step],
    known: &Known,
    strictness: Strictness,
) -> Result<(), String> {
    let n = name.trim().chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(format!(
            "The name must be 1 to {MAX_NAME_CHARS} characters."
        ));
    }
    match trigger {
        Trigger::LeadCreated => {}
        Trigger::StageEntered { stage } if !known.stages.contains(stage) => {
            return Err(format!(
                "There is no stage {stage:?} in the team's pipeline."
            ));
        }
        Trigger::StageEntered { .. } => {}
        Trigger::TagAdded { tag_id } if !known.tags.contains(tag_id) => {
            return Err("The trigger's tag does not exist.".into());
        }
        Trigger::TagAdded { .. } => {}
        Trigger::NoReply { hours } if !(1..=MAX_SILENCE_HOURS).contains(hours) => {
            return Err(format!(
                "The silence must be 1 to {MAX_SILENCE_HOURS} hours."
            ));
        }
        Trigger::NoReply { .. } => {}
    }
    if steps.is_empty() || steps.len() > MAX_STEPS {
        return Err(format!("A sequence has 1 to {MAX_STEPS} steps."));
    }
    for (i, step) in steps.iter().enumerate() {
        check_step(step, known, strictness).map_err(|e| format!("Step {}: {e}", i + 1))?;
    }
    if steps.iter().all(|s| matches!(s, Step::Wait { .. })) {
        return Err("A sequence needs at least one step that does something.".into());
    }
    Ok(())
}

fn check_step(step: &Step, known: &Known, strictness: Strictness) -> Result<(), String> {
    match step {
        Step::Wait { minutes }
        | Step::CreateTask {
            due_in_minutes: minutes,
            ..
        } if *minutes > MAX_MINUTES => Err("waits and due times are at most 90 days.".into()),
        Step::Wait { minutes: 0 } => Err("a wait is at least one minute.".into()),
        Step::Wait { .. } => Ok(()),
        Step::Send { content: None } if strictness == Strictness::Enable => {
            Err("choose what to send.".into())
        }
        Step::Send { content: None } => Ok(()),
        Step::Send {
            content: Some(Content::Text { body }),
        } => {
            let n = body.trim().chars().count();
            if n == 0 || n > 4096 {
                Err("the text must be 1 to 4096 characters.".into())
            } else {
                Ok(())
            }
        }
        Step::Send {
            content: Some(Content::Template { name, language, .. }),
        } => {
            if name.trim().is_empty() || language.trim().is_empty() {
                Err("choose a template and its language.".into())
            } else {
                Ok(())
            }
        }
        Step::AddTag { tag_id } if !known.tags.contains(tag_id) => {
            Err("that tag does not exist.".into())
        }
        Step::AddTag { .. } => Ok(()),
        Step::CreateTask { title, .. } => {
            let n = title.trim().chars().count();
            if n == 0 || n > MAX_TITLE_CHARS {
                Err(format!(
                    "the task title must be 1 to {MAX_TITLE_CHARS} characters."
                ))
            } else {
                Ok(())
            }
        }
        Step::MoveStage { stage } if !known.stages.contains(stage) => Err(format!(
            "there is no stage {stage:?} in the team's pipeline."
        )),
        Step::MoveStage { .. } => Ok(()),
    }
}

/// What the runner does for a run whose next step is `step`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<'a> {
    /// Every step ran: the run is done.
    Finish,
    /// Wait: the run continues at step `step + 1` at `at` (epoch ms).
    WaitUntil {
        /// When the next step is due.
        at: i64,
    },
    /// Do this step now, then go on to the next.
    Do(&'a Step),
}

/// The runner's next move at `now` for a run at `step` of `steps`.
pub fn next(steps: &[Step], step: usize, now: i64) -> Next<'_> {
    match steps.get(step) {
        None => Next::Finish,
        Some(Step::Wait { minutes }) => Next::WaitUntil {
            at: now + i64::from(*minutes) * 60_000,
        },
        Some(s) => Next::Do(s),
    }
}

/// Whether a no-reply automation of `hours` counts a conversation silent at
/// `now`: the team (agent or hub) wrote last, at `last_message_at`, after the
/// customer's last message, and `hours` have passed since.
pub fn silent(
    hours: u32,
    last_message_at: i64,
    last_inbound_at: Option<i64>,
    team_wrote_last: bool,
    now: i64,
) -> bool {
    let waited = now - last_message_at >= i64::from(hours) * 3_600_000;
    team_wrote_last && last_inbound_at.is_some_and(|t| t <= last_message_at) && waited
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        Known {
            stages: vec!["new".into(), "interested".into()],
            tags: ["vip".to_string()].into_iter().collect(),
        }
    }

    fn text(body: &str) -> Step {
        Step::Send {
            content: Some(Content::Text { body: body.into() }),
        }
    }

    #[test]
    fn a_sequence_is_checked_step_by_step_and_names_the_step() {
        let k = known();
        let ok = [
            text("Hi"),
            Step::Wait { minutes: 60 },
            Step::AddTag {
                tag_id: "vip".into(),
            },
        ];
        assert_eq!(
            check(
                "Welcome",
                &Trigger::LeadCreated,
                &ok,
                &k,
                Strictness::Enable
            ),
            Ok(())
        );
        let unchosen = [Step::Wait { minutes: 60 }, Step::Send { content: None }];
        assert_eq!(
            check("x", &Trigger::LeadCreated, &unchosen, &k, Strictness::Save),
            Ok(())
        );
        assert_eq!(
            check(
                "x",
                &Trigger::LeadCreated,
                &unchosen,
                &k,
                Strictness::Enable
            ),
            Err("Step 2: choose what to send.".into())
        );
        let bad_stage = [Step::MoveStage {
            stage: "won".into(),
        }];
        assert!(
            check("x", &Trigger::LeadCreated, &bad_stage, &k, Strictness::Save)
                .unwrap_err()
                .starts_with("Step 1: there is no stage")
        );
        assert!(check("", &Trigger::LeadCreated, &ok, &k, Strictness::Save).is_err());
        assert!(check("x", &Trigger::LeadCreated, &[], &k, Strictness::Save).is_err());
        let waits = [Step::Wait { minutes: 5 }];
        assert!(check("x", &Trigger::LeadCreated, &waits, &k, Strictness::Save).is_err());
        let zero = [Step::Wait { minutes: 0 }, text("Hi")];
        assert!(check("x", &Trigger::LeadCreated, &zero, &k, Strictness::Save).is_err());
    }

    #[test]
    fn triggers_must_name_what_exists() {
        let k = known();
        let steps = [text("Hi")];
        let stage = Trigger::StageEntered {
            stage: "interested".into(),
        };
        assert_eq!(check("x", &stage, &steps, &k, Strictness::Enable), Ok(()));
        let gone = Trigger::StageEntered {
            stage: "quoted".into(),
        };
        assert!(check("x", &gone, &steps, &k, Strictness::Enable).is_err());
        let tag = Trigger::TagAdded {
            tag_id: "nope".into(),
        };
        assert!(check("x", &tag, &steps, &k, Strictness::Enable).is_err());
        let silence = Trigger::NoReply { hours: 0 };
        assert!(check("x", &silence, &steps, &k, Strictness::Enable).is_err());
    }

    #[test]
    fn the_runner_waits_does_and_finishes() {
        let steps = [Step::Wait { minutes: 2 }, text("Hi")];
        assert_eq!(next(&steps, 0, 1_000), Next::WaitUntil { at: 121_000 });
        assert_eq!(next(&steps, 1, 0), Next::Do(&steps[1]));
        assert_eq!(next(&steps, 2, 0), Next::Finish);
    }

    #[test]
    fn a_conversation_is_silent_only_when_the_team_wrote_last_long_enough_ago() {
        let h = 3_600_000;
        assert!(silent(24, 0, Some(-5), true, 24 * h));
        assert!(!silent(24, 0, Some(-5), true, 24 * h - 1), "not yet");
        assert!(
            !silent(24, 0, Some(-5), false, 48 * h),
            "the customer wrote last"
        );
        assert!(
            !silent(24, 0, None, true, 48 * h),
            "the customer never wrote"
        );
        assert!(
            !silent(24, 0, Some(10), true, 48 * h),
            "a reply after the team"
        );
    }

    #[test]
    fn steps_and_triggers_read_the_documented_json() {
        let t: Trigger = serde_json::from_str(r#"{"kind":"no_reply","hours":24}"#).unwrap();
        assert_eq!(t, Trigger::NoReply { hours: 24 });
        let s: Step = serde_json::from_str(r#"{"kind":"send","content":null}"#).unwrap();
        assert_eq!(s, Step::Send { content: None });
        let s: Step =
            serde_json::from_str(r#"{"kind":"create_task","title":"Call","due_in_minutes":60}"#)
                .unwrap();
        assert_eq!(
            s,
            Step::CreateTask {
                title: "Call".into(),
                due_in_minutes: 60
            }
        );
        assert!(serde_json::from_str::<Step>(r#"{"kind":"explode"}"#).is_err());
    }
}
