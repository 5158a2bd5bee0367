//! Leads (issue 5): every conversation becomes a lead that moves through a team's
//! pipeline, with tasks, a timeline, intent rules, campaign codes and quick-chat
//! links. `docs/leads.md` describes the behaviour; this module wires it to the hub:
//!
//! - The bookkeeping ([`crate::store::leads::process_message`]) is a stage of the
//!   inbound pipeline ([`crate::pipeline`]), run for every committed guest and agent
//!   message after its ack; [`publish_outcome`] then pushes the frames (`lead`,
//!   `timeline`, `handover`) and, when the message asked for one, posts the automatic
//!   reply through the conversation actor like any message (so it gets a seq, fans
//!   out, and goes through the WhatsApp outbox).
//! - [`push_overdue_tasks`] is the overdue-task check (`task_due` frames), a
//!   recurring job of the scheduler ([`crate::scheduler`]).

pub mod campaign;
pub mod config;
pub mod intent;

use serde_json::Value;

use crate::actors::messages::PostAutoReply;
use crate::bus::{Audience, BusEvent};
use crate::error::AppError;
use crate::protocol::ServerFrame;
use crate::state::AppState;
use crate::store::leads::{self as store, LeadView, Outcome, TimelineEntry};

/// Publishes what the bookkeeping changed and posts the automatic reply (the package
/// reply comes first, so the bot, the next stage, sees the turn answered).
pub async fn publish_outcome(state: &AppState, conversation_id: &str, out: Outcome) {
    wake_automations(state, &out.timeline);
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

/// Pushes a lead's change (`lead` and `timeline` frames) to the agents of its
/// latest conversation, and wakes the scheduler when an entry may have started an
/// automation ([`wake_automations`]).
pub async fn announce(state: &AppState, lead: &LeadView, timeline: &[TimelineEntry]) {
    wake_automations(state, timeline);
    let Some(conv) = lead.conversation_ids.last().cloned() else {
        return;
    };
    let lookup = conv.clone();
    if let Ok(meta) = state
        .db
        .run(move |c| crate::store::conversations::meta(c, &lookup))
        .await
    {
        publish_changes(
            state,
            &conv,
            &meta.team_id,
            meta.assignee_id,
            Some(lead),
            timeline,
        );
    }
}

/// An entry whose event enrolled the lead's contact in automations
/// (`store::automations::runs::on_lead_event`, in the same transaction) has runs
/// whose first step is due at once, so the scheduler is woken rather than left to
/// its poll. Entries that started nothing (most new leads) wake nothing: a wake
/// costs the scheduler a pass of three statements.
pub fn wake_automations(state: &AppState, timeline: &[TimelineEntry]) {
    if timeline.iter().any(|e| e.started_runs) {
        state.scheduler.nudge();
    }
}

/// Pushes a `handover` frame to the team's leads and admins.
pub fn publish_handover(state: &AppState, team_id: &str, handover: Value) {
    state.hub.publish(BusEvent::Supervisors {
        team_id: team_id.to_string(),
        frame: ServerFrame::Handover(handover).encode(),
    });
}

/// The overdue-task check, run by the scheduler (`JobKind::OverdueTasks`, every
/// `lead_task_check`): open tasks past due (by `state.clock`) are pushed once as
/// `task_due` to their assignee and to the team's leads and admins. Idempotent:
/// `take_overdue` marks what it returns, so a rerun pushes nothing twice.
///
/// # Errors
/// Database errors (the scheduler retries).
pub async fn push_overdue_tasks(state: &AppState) -> Result<(), AppError> {
    let now = state.clock.now_ms();
    let tasks = state.db.run(move |c| store::take_overdue(c, now)).await?;
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
    Ok(())
}
