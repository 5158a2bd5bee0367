//! Lead routing (`docs/routing.md`): who gets a new conversation, when, and why.
//!
//! - [`settings`]: per-team mode, capacity, offer timeout, escalation, grace, requeue.
//! - [`hours`]: working hours, the pure policy (is this agent working now?).
//! - [`engine`]: each decision as one database transaction under the team's routing
//!   lock — round-robin with a stored cursor, poll offers with exactly one winner,
//!   owner-first, the queue, requeue of an offline agent's unanswered conversations,
//!   manual assignment and transfer — plus the audit and workload reads.
//! - [`actor`]: the per-node `Router` actor that triggers decisions and announces
//!   their effects (frames, refreshes, timers, the team leads' workload stream).
//! - [`views`]: the wire shapes.

pub mod actor;
pub mod engine;
pub mod hours;
pub mod settings;
pub mod views;

#[cfg(test)]
mod proptests;

use crate::clock::now_ms;
use crate::error::AppError;
use crate::model::ConversationView;
use crate::state::AppState;
use crate::store::accounts::AgentInfo;
use crate::store::conversations;

use actor::ApplyEffects;

/// Claims an offer for `agent` (WebSocket `claim` and `POST /api/offers/{id}/claim`)
/// and announces the result: `offer_closed` to every recipient, `assigned` to the
/// team. Returns the conversation as assigned.
///
/// # Errors
/// [`AppError::NotFound`] (no such offer), [`AppError::Forbidden`] (not offered to
/// this agent), [`AppError::Conflict`] (already claimed, expired, withdrawn, or the
/// agent is at capacity), [`AppError::Unavailable`] (database down).
pub async fn claim(
    state: &AppState,
    agent: &AgentInfo,
    offer_id: &str,
) -> Result<ConversationView, AppError> {
    let agent_id = agent.id.clone();
    let offer = offer_id.to_string();
    let started = std::time::Instant::now();
    let (claimed, view) = state
        .db
        .run(move |c| {
            let claimed = engine::claim(c, &offer, &agent_id, now_ms())?;
            let view = conversations::summary(c, &claimed.conversation_id)?;
            Ok((claimed, view))
        })
        .await?;
    crate::metrics::METRICS
        .claim_seconds
        .observe(started.elapsed().as_secs_f64());
    state.hub.route(ApplyEffects {
        effects: claimed.effects,
    });
    Ok(view)
}
