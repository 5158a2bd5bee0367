//! The sequences every team gets, disabled until the team turns them on and
//! editable like any other (issue 17 §5). They are the seeds' own examples:
//! - seed 000, "NEW LEAD → send welcome WhatsApp message": [`WELCOME`];
//! - seed 000, "INTERESTED STAGE → send trip recommendations, schedule follow-up
//!   in 48 hours" ("send stage-appropriate WhatsApp message"): [`STAGE_FOLLOW_UP`];
//! - seed 003, "automated follow-up sequences" for leads who went quiet:
//!   [`NO_REPLY`].
//!
//! Sends that need an approved template ship unchosen (`content: None`): a
//! template is the team's own, and a sequence cannot be turned on before one is
//! picked.

use crate::broadcasts::content::Content;

use super::{Step, Trigger};

/// Preset key of the welcome message.
pub const WELCOME: &str = "welcome";
/// Preset key of the stage follow-up.
pub const STAGE_FOLLOW_UP: &str = "stage_follow_up";
/// Preset key of the no-reply follow-up.
pub const NO_REPLY: &str = "no_reply";

/// A shipped default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    /// Its key (`automations.preset`, unique per team).
    pub key: &'static str,
    /// Its name as first shown.
    pub name: &'static str,
    /// What starts it.
    pub trigger: Trigger,
    /// What it does.
    pub steps: Vec<Step>,
}

/// The defaults for a team whose pipeline has the stage keys `stages` (in
/// order): the stage follow-up watches `interested` when the pipeline has it,
/// else its second stage, else it is left out.
pub fn for_team(stages: &[String]) -> Vec<Preset> {
    let day = 24 * 60;
    let mut out = vec![Preset {
        key: WELCOME,
        name: "Welcome new lead",
        trigger: Trigger::LeadCreated,
        steps: vec![Step::Send {
            // A new lead from WhatsApp has just written, so the window is open and
            // text is allowed without a template.
            content: Some(Content::Text {
                body: "Thank you for contacting us! A member of our team will reply \
                       shortly."
                    .into(),
            }),
        }],
    }];
    let stage = stages
        .iter()
        .find(|s| s.as_str() == "interested")
        .or_else(|| stages.get(1));
    if let Some(stage) = stage {
        out.push(Preset {
            key: STAGE_FOLLOW_UP,
            name: "Interested: follow up in 48 hours",
            trigger: Trigger::StageEntered {
                stage: stage.clone(),
            },
            steps: vec![
                Step::Send { content: None },
                Step::Wait { minutes: 2 * day },
                Step::CreateTask {
                    title: "Follow up on the trip they asked about".into(),
                    due_in_minutes: 60,
                },
            ],
        });
    }
    out.push(Preset {
        key: NO_REPLY,
        name: "No reply follow-up",
        trigger: Trigger::NoReply { hours: 24 },
        steps: vec![
            Step::Send { content: None },
            Step::Wait { minutes: 2 * day },
            Step::Send { content: None },
            Step::Wait { minutes: day },
            Step::CreateTask {
                title: "Call: no reply to the follow-ups".into(),
                due_in_minutes: 60,
            },
        ],
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_team_gets_the_seed_examples_and_the_stage_one_follows_its_pipeline() {
        let stages: Vec<String> = ["new", "contacted", "interested"]
            .map(String::from)
            .to_vec();
        let p = for_team(&stages);
        assert_eq!(
            p.iter().map(|p| p.key).collect::<Vec<_>>(),
            [WELCOME, STAGE_FOLLOW_UP, NO_REPLY]
        );
        assert_eq!(
            p[1].trigger,
            Trigger::StageEntered {
                stage: "interested".into()
            }
        );
        let other = for_team(&["lead".to_string(), "quoted".to_string()]);
        assert_eq!(
            other[1].trigger,
            Trigger::StageEntered {
                stage: "quoted".into()
            }
        );
        assert_eq!(for_team(&["only".to_string()]).len(), 2);
    }
}
