//! Leads (issue 5): every conversation becomes a lead that moves through a team's
//! pipeline, with tasks, a timeline, intent rules, campaign codes and quick-chat
//! links. `docs/leads.md` describes the behaviour; this module wires it to the hub:
//!
//! - [`after_message`] is called by `ConversationActor::append_and_publish` after
//!   every committed message. It runs on its own task (the ack never waits for it):
//!   the bookkeeping in [`crate::store::leads::process_message`] on the blocking
//!   pool, then the frames (`lead`, `timeline`, `handover`) and, when the message
//!   asked for one, the automatic reply, posted through the conversation actor like
//!   any message (so it gets a seq, fans out, and goes through the WhatsApp outbox).
//! - [`start`] runs the overdue-task check (`task_due` frames).

pub mod campaign;
pub mod config;
pub mod intent;

use std::sync::LazyLock;

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::actors::messages::PostAutoReply;
use crate::bus::{Audience, BusEvent};
use crate::clock::now_ms;
use crate::model::{MessageView, SenderKind};
use crate::protocol::ServerFrame;
use crate::state::AppState;
use crate::store::leads::{self as store, Committed, LeadView, Outcome, TimelineEntry};

/// How many bookkeeping jobs may use the database at once. Bookkeeping is off the
/// message path, so it queues instead of competing with message appends and routing
/// for pool connections and (SQLite) the write lock — a burst of 200 first messages
/// must not starve the routing of those same conversations.
const BOOKKEEPING_PERMITS: usize = 2;

static BOOKKEEPING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(BOOKKEEPING_PERMITS));

/// Runs the lead bookkeeping for a committed message on its own task.
pub fn after_message(state: &AppState, message: &MessageView) {
    // Only the contact's and agents' messages feed a lead; the hub's own automatic
    // replies (bot, system) would cost a task and a query for nothing.
    if !matches!(message.sender.kind, SenderKind::Guest | SenderKind::Agent) {
        return;
    }
    let state = state.clone();
    let m = Committed {
        conversation_id: message.conversation_id.clone(),
        sender_kind: message.sender.kind.as_str().to_string(),
        sender_id: message.sender.id.clone(),
        body: message.body.clone(),
        seq: message.seq,
    };
    let from_customer = message.sender.kind == SenderKind::Guest;
    let seq = message.seq;
    actix_rt::spawn(async move {
        let conversation_id = m.conversation_id.clone();
        // The semaphore is never closed, so acquiring only fails if it were; then
        // running without a permit is still correct, only less polite.
        let permit = BOOKKEEPING.acquire().await.ok();
        let done = state.db.run(move |c| store::process_message(c, &m)).await;
        drop(permit);
        match done {
            Ok(out) => {
                let team_id = out.team_id.clone();
                // The package reply (if any) is posted first, so the bot sees the
                // turn answered and does not answer it twice.
                publish_outcome(&state, &conversation_id, out).await;
                if from_customer {
                    crate::bot::worker::on_customer_message(
                        &state,
                        &conversation_id,
                        &team_id,
                        seq,
                    );
                }
            }
            Err(e) => {
                tracing::warn!(conversation = %conversation_id, error = %e, "lead bookkeeping failed");
                if from_customer {
                    // Neither bookkeeping nor the bot can run: make sure humans get
                    // the conversation rather than nobody.
                    state.hub.route(crate::routing::actor::RouteConversation {
                        conversation_id: conversation_id.clone(),
                        reopened: false,
                    });
                }
            }
        }
    });
}

/// Publishes what the bookkeeping changed and posts the automatic reply.
async fn publish_outcome(state: &AppState, conversation_id: &str, out: Outcome) {
    publish_changes(
        state,
        conversation_id,
        &out.team_id,
        out.assignee_id.clone(),
        out.lead.as_ref(),
        &out.timeline,
    );
    if let Some(h) = &out.handover {
        publish_handover(state, &out.team_id, h.clone());
    }
    if let Some((body, image_url)) = out.reply {
        let msg = PostAutoReply {
            body,
            image_url,
            bot_guard: false,
        };
        match state.hub.ask(state, conversation_id, msg).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) | Err(e) => {
                tracing::warn!(conversation = %conversation_id, error = %e, "automatic reply not posted");
            }
        }
    }
}

/// Pushes `lead` and `timeline` frames to the agents of a conversation (its
/// assignee — or the whole team while unassigned — the team's leads, admins and
/// watchers).
pub fn publish_changes(
    state: &AppState,
    conversation_id: &str,
    team_id: &str,
    assignee_id: Option<String>,
    lead: Option<&LeadView>,
    timeline: &[TimelineEntry],
) {
    let send = |frame: ServerFrame| {
        state.hub.publish(BusEvent::Conversation {
            conversation_id: conversation_id.into(),
            team_id: team_id.to_string(),
            assignee_id: assignee_id.clone(),
            seq: None,
            frame: frame.encode(),
            audience: Audience::Agents,
            exclude_session: None,
        });
    };
    if let Some(l) = lead {
        send(ServerFrame::Lead(Box::new(l.clone())));
    }
    for e in timeline {
        send(ServerFrame::Timeline(Box::new(e.clone())));
    }
}

/// Pushes a `handover` frame to the team's leads and admins.
pub fn publish_handover(state: &AppState, team_id: &str, handover: Value) {
    state.hub.publish(BusEvent::Supervisors {
        team_id: team_id.to_string(),
        frame: ServerFrame::Handover(handover).encode(),
    });
}

/// Starts the overdue-task check: every `lead_task_check`, open tasks past due are
/// pushed once as `task_due` to their assignee and to the team's leads and admins.
pub fn start(state: &AppState) {
    let state = state.clone();
    actix_rt::spawn(async move {
        let mut every = tokio::time::interval(state.config.lead_task_check);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match state.db.run(|c| store::take_overdue(c, now_ms())).await {
                Ok(tasks) => {
                    for t in tasks {
                        let frame = ServerFrame::TaskDue(Box::new(t.clone())).encode();
                        if let Some(a) = &t.assignee_id {
                            state.hub.publish(BusEvent::Agent {
                                agent_id: a.clone(),
                                frame: frame.clone(),
                            });
                        }
                        state.hub.publish(BusEvent::Supervisors {
                            team_id: t.team_id.clone(),
                            frame,
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "overdue task check failed"),
            }
        }
    });
}
