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
//! - [`route_again`]: how often a customer's messages in an unassigned conversation
//!   ask the router (once per spell, again after [`ROUTE_AGAIN_MS`]).

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

/// How long one routing trigger covers a conversation's later customer messages
/// (ms) while its assignee, status and team stay the same.
pub const ROUTE_AGAIN_MS: i64 = 5_000;

/// Whether a customer message in an unassigned conversation asks the router again.
/// The router's answer for such a conversation does not change from one message to
/// the next (it is queued, on offer, or in a manual team), so one trigger per spell
/// is enough and the rest would each cost a read; asking again after
/// [`ROUTE_AGAIN_MS`] covers a decision that failed (database trouble) and a team
/// switched away from manual routing.
pub fn route_again(routed_at: Option<i64>, now_ms: i64) -> bool {
    routed_at.is_none_or(|at| now_ms - at >= ROUTE_AGAIN_MS || now_ms < at)
}

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

#[cfg(test)]
mod trigger_tests {
    use super::*;

    #[test]
    fn one_trigger_covers_a_spell_until_it_is_old() {
        assert!(
            route_again(None, 1_000),
            "the first message of a spell routes"
        );
        assert!(!route_again(Some(1_000), 1_001));
        assert!(!route_again(Some(1_000), 1_000 + ROUTE_AGAIN_MS - 1));
        assert!(
            route_again(Some(1_000), 1_000 + ROUTE_AGAIN_MS),
            "asked again"
        );
        assert!(route_again(Some(1_000), 999), "a clock set back asks again");
    }
}
