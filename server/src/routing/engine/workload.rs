//! A team's [`workload`] snapshot: agents' load and offers, the queue, the oldest
//! wait.

use std::collections::HashMap;

use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::clock::rfc3339;
use crate::db::schema::{conversations, offer_recipients, offers};
use crate::db::DbConn;
use crate::error::AppError;
use crate::routing::settings;
use crate::routing::views::{AgentLoad, QueueEntry, TeamWorkload};

use super::queue::queue_of;
use super::{candidates, PresenceMap, OPEN};

/// A team's workload snapshot.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn workload(
    c: &mut DbConn,
    team_id: &str,
    presence: &PresenceMap,
    now: i64,
) -> Result<TeamWorkload, AppError> {
    let team = settings::load(c, team_id)?;
    let cands = candidates(c, &team, presence, now)?;
    let offers_by_agent: HashMap<String, i64> = offer_recipients::table
        .inner_join(offers::table)
        .filter(offers::team_id.eq(team_id))
        .filter(offers::status.eq(OPEN))
        .group_by(offer_recipients::agent_id)
        .select((offer_recipients::agent_id, count_star()))
        .load::<(String, i64)>(c)?
        .into_iter()
        .collect();
    let offers_open: i64 = offers::table
        .filter(offers::team_id.eq(team_id))
        .filter(offers::status.eq(OPEN))
        .count()
        .get_result(c)?;
    let waiting: i64 = conversations::table
        .filter(conversations::team_id.eq(team_id))
        .filter(conversations::status.eq(OPEN))
        .filter(conversations::assignee_id.is_null())
        .filter(conversations::queued_at.is_not_null())
        .count()
        .get_result(c)?;
    let queue = queue_of(c, team_id, 50)?;
    let oldest_wait_ms = queue.first().map(|q| (now - q.1).max(0)).unwrap_or(0);
    Ok(TeamWorkload {
        team_id: team.team_id.clone(),
        team_name: team.team_name.clone(),
        routing_mode: team.routing_mode.as_str().into(),
        agents: cands
            .into_iter()
            .map(|x| AgentLoad {
                offers_open: offers_by_agent.get(&x.agent_id).copied().unwrap_or(0),
                agent_id: x.agent_id,
                name: x.name,
                role: x.role,
                presence: x.presence,
                open: x.open,
                capacity: x.capacity,
                off_hours: x.off_hours,
            })
            .collect(),
        waiting,
        oldest_wait_ms,
        offers_open,
        queue: queue
            .into_iter()
            .zip(1..)
            .map(|((conversation_id, at, channel), position)| QueueEntry {
                conversation_id,
                position,
                queued_at: rfc3339(at),
                channel,
            })
            .collect(),
        at: rfc3339(now),
    })
}
