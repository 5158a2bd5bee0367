//! The stages of the inbound pipeline and their order: the one place that says what
//! happens to a committed message after its ack.
//!
//! Every committed message passes [`STAGES`] in order; a stage that does not apply to
//! the sender ([`Stage::applies_to`]) is skipped. A stage declares its [`Outcome`]:
//! continue to the next stage, or the message is consumed (with or without a reply
//! from the hub) and no later stage runs for it. A consumed message keeps its seq and
//! is shown to agents like any other; only the hub's own processing stops. A stage
//! that fails stops the message where it is, and the pipeline runs it again later
//! from that message (progress is recorded per message, after its last stage).
//!
//! Later capabilities add stages here, ahead of the lead bookkeeping (`../shared/SPEC.md`:
//! staff command → opt-out keyword → pending offer reply → …).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::actors::messages::PostAutoReply;
use crate::clock::now_ms;
use crate::contacts::optout::KeywordIntent;
use crate::contacts::{ConsentSource, ConsentState};
use crate::db::write_transaction;
use crate::error::AppError;
use crate::model::SenderKind;
use crate::state::AppState;
use crate::store::consent;
use crate::store::leads::{self as leads_store, Committed, ConversationFacts};
use crate::store::pipeline::ContactFlags;

/// One stage of the inbound pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A customer message stops the contact's automation runs that are waiting
    /// and stop on a reply (`docs/automations.md`): the customer is talking, the
    /// follow-up is no longer needed. First, so a STOP also ends them; a run the
    /// same message starts (its lead is created by the bookkeeping below) is not
    /// waiting yet and goes on.
    StopSequences,
    /// A customer message that is exactly an opt-out keyword (STOP, …) or an opt-in
    /// keyword (START) changes the contact's marketing consent (`docs/contacts.md`);
    /// the hub confirms a change once. The message is consumed: no bot answer, no
    /// lead bookkeeping.
    OptOut,
    /// The lead's bookkeeping (`docs/leads.md`): quick-link count, intent rules,
    /// campaign codes, first response, stage moves, tasks, the package reply; then the
    /// `lead`/`timeline`/`handover` frames and the automatic reply, if any.
    LeadBookkeeping,
    /// The bot's turn on a customer message (`docs/bot.md`); after the bookkeeping, so
    /// a package reply already answers the turn and the bot does not answer it twice.
    Bot,
}

/// The order every committed message goes through.
pub const STAGES: [Stage; 4] = [
    Stage::StopSequences,
    Stage::OptOut,
    Stage::LeadBookkeeping,
    Stage::Bot,
];

/// Whether any stage has work for a message from `sender`: the hub's own bot and
/// system messages (broadcast copies, automation sends, auto-replies) have none, so
/// they are not handed to the pipeline at all; a later pass reads past them.
pub fn any_applies(sender: SenderKind) -> bool {
    STAGES.iter().any(|s| s.applies_to(sender))
}

/// What a stage did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Go on to the next stage.
    Continue,
    /// The message was handled here without a reply; later stages do not run.
    Consumed,
    /// The message was handled here and the hub replied; later stages do not run.
    Replied,
}

impl Outcome {
    /// Whether later stages run.
    pub fn continues(self) -> bool {
        self == Outcome::Continue
    }
}

impl Stage {
    /// Whether the stage has anything to do with a message from `sender`: the hub's
    /// own messages (bot, system) feed no lead, and only customers talk to the bot.
    pub fn applies_to(self, sender: SenderKind) -> bool {
        match self {
            Stage::LeadBookkeeping => matches!(sender, SenderKind::Guest | SenderKind::Agent),
            Stage::StopSequences | Stage::OptOut | Stage::Bot => sender == SenderKind::Guest,
        }
    }

    /// A stable name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Stage::StopSequences => "stop_sequences",
            Stage::OptOut => "opt_out",
            Stage::LeadBookkeeping => "lead_bookkeeping",
            Stage::Bot => "bot",
        }
    }
}

/// A committed message on its way through the stages.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The message as the stages need it (who wrote it: `message.sender_kind`).
    pub message: Committed,
    /// The conversation (team, contact, channel, …) as read at the start of the
    /// pass: shared by the pass's messages.
    pub conversation: Arc<ConversationFacts>,
    /// What the pass knows of the contact, shared by its messages.
    pub contact: Arc<PassContact>,
}

/// What a pass knows of its conversation's contact: read when the pass began
/// ([`ContactFlags`]) and kept up to date by its stages, so a quiet customer message
/// (no keyword, no rule, no code, a known lead, nothing waiting) costs no statement.
///
/// Why it is safe to trust for a whole pass: a lead is never taken from a contact
/// (a merge moves the contact to the other lead); and a run the scheduler puts to
/// waiting while the pass runs is the same race as one put there just after the
/// message — the next pass reads the flags again.
#[derive(Debug)]
pub struct PassContact {
    lead_known: AtomicBool,
    runs_waiting: AtomicBool,
}

impl PassContact {
    /// The flags as read when the pass began.
    pub fn new(flags: ContactFlags) -> Self {
        Self {
            lead_known: AtomicBool::new(flags.lead_known),
            runs_waiting: AtomicBool::new(flags.runs_waiting),
        }
    }
}

/// Runs one stage for one message.
///
/// # Errors
/// The stage's error (database unavailable, …); the pipeline retries the message later.
pub async fn run(state: &AppState, stage: Stage, turn: &Turn) -> Result<Outcome, AppError> {
    match stage {
        Stage::StopSequences => {
            // Nothing waiting when the pass began, or an earlier message of the pass
            // stopped it: nothing to stop.
            if !turn.contact.runs_waiting.swap(false, Ordering::Relaxed) {
                return Ok(Outcome::Continue);
            }
            let (contact_id, now) = (turn.conversation.contact_id.clone(), state.clock.now_ms());
            let stopped = state
                .db
                .run(move |c| crate::store::automations::runs::stop_on_reply(c, &contact_id, now))
                .await;
            if stopped.is_err() {
                turn.contact.runs_waiting.store(true, Ordering::Relaxed);
            }
            stopped.map(|_| Outcome::Continue)
        }
        Stage::OptOut => opt_out(state, turn).await,
        Stage::LeadBookkeeping => {
            if quiet(turn) {
                return Ok(Outcome::Continue);
            }
            let (m, facts) = (turn.message.clone(), turn.conversation.clone());
            let conversation_id = m.conversation_id.clone();
            match state
                .db
                .run(move |c| leads_store::process_message(c, &m, &facts))
                .await
            {
                Ok(out) => {
                    if turn.message.sender_kind == SenderKind::Guest {
                        // The bookkeeping of a customer's message makes the lead.
                        turn.contact.lead_known.store(true, Ordering::Relaxed);
                    }
                    crate::leads::publish_outcome(state, &conversation_id, out).await;
                    Ok(Outcome::Continue)
                }
                Err(e) => {
                    if turn.message.sender_kind == SenderKind::Guest {
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
                &turn.conversation.team_id,
                turn.message.seq,
            );
            Ok(Outcome::Continue)
        }
    }
}

/// Whether the lead bookkeeping has nothing to do for a customer's message, decided
/// without a blocking hop: a known lead, and the team's cached configuration says the
/// message changes nothing ([`leads_store::changes_nothing`]). `false` when unsure
/// (the configuration is not cached): the bookkeeping then decides with the database.
fn quiet(turn: &Turn) -> bool {
    turn.message.sender_kind == SenderKind::Guest
        && turn.contact.lead_known.load(Ordering::Relaxed)
        && leads_store::config_peek(&turn.conversation.team_id).is_some_and(|cfg| {
            leads_store::changes_nothing(&cfg, &turn.message.body, &turn.conversation.channel)
        })
}

/// The opt-out stage: the team's keywords ([`consent::settings`]) classify the
/// message; a keyword changes the contact's consent, with an event naming the
/// message, and the hub confirms only when the state changed — so a second STOP
/// sends nothing, and a pass run again after a crash does not confirm twice.
async fn opt_out(state: &AppState, turn: &Turn) -> Result<Outcome, AppError> {
    // Most messages are no keyword: with the keywords cached, say so without a hop.
    if consent::settings_peek(&turn.conversation.team_id)
        .is_some_and(|settings| settings.classify(&turn.message.body).is_none())
    {
        return Ok(Outcome::Continue);
    }
    let m = turn.message.clone();
    let team_id = turn.conversation.team_id.clone();
    let reply = state
        .db
        .run(move |c| {
            let settings = consent::settings_cached(c, &team_id)?;
            let Some(intent) = settings.classify(&m.body) else {
                return Ok(None);
            };
            let (target, text) = match intent {
                KeywordIntent::OptOut => (ConsentState::OptedOut, settings.opt_out_reply.clone()),
                KeywordIntent::OptIn => (ConsentState::OptedIn, settings.opt_in_reply.clone()),
            };
            write_transaction(c, |c| {
                let contact_id = crate::store::contacts::of_conversation(c, &m.conversation_id)?;
                let change = consent::Change {
                    contact_id: &contact_id,
                    state: target,
                    source: ConsentSource::Keyword,
                    actor_id: None,
                    message: Some((&m.conversation_id, m.seq)),
                    detail: Some(m.body.trim()),
                };
                let changed = consent::change(c, &change, now_ms())?;
                Ok::<_, AppError>(Some(changed.map(|_| text)))
            })
        })
        .await?;
    match reply {
        None => Ok(Outcome::Continue),
        Some(None) => Ok(Outcome::Consumed),
        Some(Some(body)) => {
            let msg = PostAutoReply {
                body,
                image_url: None,
                bot_guard: false,
            };
            let conversation_id = &turn.message.conversation_id;
            match state.hub.ask(state, conversation_id, msg).await {
                Ok(Ok(_)) => {}
                // The consent is recorded either way; the confirmation is a courtesy.
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!(conversation = %conversation_id, error = %e, "consent confirmation not posted");
                }
            }
            Ok(Outcome::Replied)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_go_through_every_stage_agents_through_bookkeeping_only() {
        assert_eq!(
            STAGES[0],
            Stage::StopSequences,
            "a reply stops sequences first"
        );
        assert_eq!(STAGES[1], Stage::OptOut, "then opt-out keywords");
        assert!(Outcome::Continue.continues());
        assert!(!Outcome::Consumed.continues() && !Outcome::Replied.continues());
        let applies = |s: SenderKind| -> Vec<&str> {
            STAGES
                .iter()
                .filter(|st| st.applies_to(s))
                .map(|st| st.name())
                .collect()
        };
        assert_eq!(
            applies(SenderKind::Guest),
            vec!["stop_sequences", "opt_out", "lead_bookkeeping", "bot"]
        );
        assert_eq!(applies(SenderKind::Agent), vec!["lead_bookkeeping"]);
        assert!(applies(SenderKind::Bot).is_empty());
        assert!(applies(SenderKind::System).is_empty());
        assert!(any_applies(SenderKind::Guest) && any_applies(SenderKind::Agent));
        assert!(!any_applies(SenderKind::Bot) && !any_applies(SenderKind::System));
    }
}
