//! The stages of the inbound pipeline and their order: the one place that says what
//! happens to a committed message after its ack.
//!
//! Every committed message passes [`STAGES`] in order; a stage that does not apply to
//! the sender ([`Stage::applies_to`]) is skipped. A stage either continues or fails;
//! a failure stops the message where it is, and the pipeline runs it again later from
//! that message (progress is recorded per message, after its last stage).
//!
//! Later capabilities add stages here, ahead of the lead bookkeeping (`../shared/SPEC.md`:
//! staff command → opt-out keyword → pending offer reply → …).

use crate::model::SenderKind;
use crate::state::AppState;
use crate::store::leads::{self as leads_store, Committed};

/// One stage of the inbound pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The lead's bookkeeping (`docs/leads.md`): quick-link count, intent rules,
    /// campaign codes, first response, stage moves, tasks, the package reply; then the
    /// `lead`/`timeline`/`handover` frames and the automatic reply, if any.
    LeadBookkeeping,
    /// The bot's turn on a customer message (`docs/bot.md`); after the bookkeeping, so
    /// a package reply already answers the turn and the bot does not answer it twice.
    Bot,
}

/// The order every committed message goes through.
pub const STAGES: [Stage; 2] = [Stage::LeadBookkeeping, Stage::Bot];

impl Stage {
    /// Whether the stage has anything to do with a message from `sender`: the hub's
    /// own messages (bot, system) feed no lead, and only customers talk to the bot.
    pub fn applies_to(self, sender: SenderKind) -> bool {
        match self {
            Stage::LeadBookkeeping => matches!(sender, SenderKind::Guest | SenderKind::Agent),
            Stage::Bot => sender == SenderKind::Guest,
        }
    }

    /// A stable name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Stage::LeadBookkeeping => "lead_bookkeeping",
            Stage::Bot => "bot",
        }
    }
}

/// A committed message on its way through the stages.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The message as the stages need it.
    pub message: Committed,
    /// Who wrote it.
    pub sender: SenderKind,
    /// The conversation's team.
    pub team_id: String,
}

/// Runs one stage for one message.
///
/// # Errors
/// The stage's error (database unavailable, …); the pipeline retries the message later.
pub async fn run(
    state: &AppState,
    stage: Stage,
    turn: &Turn,
) -> Result<(), crate::error::AppError> {
    match stage {
        Stage::LeadBookkeeping => {
            let m = turn.message.clone();
            let conversation_id = m.conversation_id.clone();
            match state
                .db
                .run(move |c| leads_store::process_message(c, &m))
                .await
            {
                Ok(out) => {
                    crate::leads::publish_outcome(state, &conversation_id, out).await;
                    Ok(())
                }
                Err(e) => {
                    if turn.sender == SenderKind::Guest {
                        // Neither the bookkeeping nor the bot can run now: make sure
                        // humans get the conversation rather than nobody.
                        state.hub.route(crate::routing::actor::RouteConversation {
                            conversation_id,
                            reopened: false,
                        });
                    }
                    Err(e)
                }
            }
        }
        Stage::Bot => {
            crate::bot::worker::on_customer_message(
                state,
                &turn.message.conversation_id,
                &turn.team_id,
                turn.message.seq,
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_go_through_every_stage_agents_through_bookkeeping_only() {
        let applies = |s: SenderKind| -> Vec<&str> {
            STAGES
                .iter()
                .filter(|st| st.applies_to(s))
                .map(|st| st.name())
                .collect()
        };
        assert_eq!(applies(SenderKind::Guest), vec!["lead_bookkeeping", "bot"]);
        assert_eq!(applies(SenderKind::Agent), vec!["lead_bookkeeping"]);
        assert!(applies(SenderKind::Bot).is_empty());
        assert!(applies(SenderKind::System).is_empty());
    }
}
