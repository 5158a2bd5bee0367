//! Agents' working hours in the `agent_hours` table (one row per agent with hours; no
//! row means always available). The policy — parsing, validation, "working now?" —
//! lives in [`crate::routing::hours`]; this module only reads and writes rows.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{agent_hours, conversations, team_members};
use crate::db::DbConn;
use crate::error::AppError;
use crate::routing::hours::{self, RawHours, Schedule, WeeklyHours};

/// `GET`/`PUT /api/agents/{id}/hours`: an agent's working hours.
#[derive(Clone, Debug, Serialize)]
pub struct HoursView {
    /// The agent.
    pub agent_id: String,
    /// IANA zone name, or null when the agent has no hours.
    pub time_zone: Option<String>,
    /// Weekday key → `HH:MM-HH:MM` list (every weekday present), or null: always
    /// available.
    pub hours: Option<WeeklyHours>,
    /// Whether the agent is inside their hours at the time of the read (always true
    /// without hours).
    pub working_now: bool,
}

impl HoursView {
    /// The view of `schedule` for `agent_id` at `now_ms`.
    pub fn new(agent_id: &str, schedule: Option<&Schedule>, now_ms: i64) -> Self {
        Self {
            agent_id: agent_id.to_string(),
            time_zone: schedule.map(|s| s.time_zone.name().to_string()),
            hours: schedule.map(|s| s.hours.clone()),
            working_now: schedule.is_none_or(|s| s.is_working(now_ms)),
        }
    }
}

/// Parses a stored row. A row the current rules refuse (written by an older version)
/// is logged and ignored — the agent counts as always available rather than never.
fn from_row(agent_id: &str, time_zone: &str, json: &str) -> Option<Schedule> {
    let parsed = parse_stored(time_zone, json);
    if let Err(e) = &parsed {
        tracing::warn!(agent_id, error = %e, "stored working hours ignored");
    }
    parsed.ok()
}

fn parse_stored(time_zone: &str, json: &str) -> Result<Schedule, String> {
    let raw: RawHours = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(Schedule {
        time_zone: hours::parse_time_zone(time_zone)?,
        hours: WeeklyHours::parse(&raw)?,
    })
}

/// The agent's working hours, if any.
///
/// # Errors
/// Database errors.
pub fn get(c: &mut DbConn, agent_id: &str) -> Result<Option<Schedule>, AppError> {
    let row: Option<(String, String)> = agent_hours::table
        .find(agent_id)
        .select((agent_hours::time_zone, agent_hours::hours))
        .first(c)
        .optional()?;
    Ok(row.and_then(|(tz, json)| from_row(agent_id, &tz, &json)))
}

/// The working hours of each of `agent_ids` that has them.
///
/// # Errors
/// Database errors.
pub fn for_agents(
    c: &mut DbConn,
    agent_ids: &[String],
) -> Result<HashMap<String, Schedule>, AppError> {
    let rows: Vec<(String, String, String)> = agent_hours::table
        .filter(agent_hours::agent_id.eq_any(agent_ids))
        .select((
            agent_hours::agent_id,
            agent_hours::time_zone,
            agent_hours::hours,
        ))
        .load(c)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, tz, json)| from_row(&id, &tz, &json).map(|s| (id, s)))
        .collect())
}

/// Teams with conversations waiting in their queue and at least one member with
/// working hours: the ones whose queue a shift start may unblock.
///
/// # Errors
/// Database errors.
pub fn teams_waiting_with_hours(c: &mut DbConn) -> Result<Vec<String>, AppError> {
    // Plain lists rather than subqueries: diesel would need every pair of these
    // tables declared joinable, and the lists are small (agents with hours, teams).
    let agents: Vec<String> = agent_hours::table.select(agent_hours::agent_id).load(c)?;
    if agents.is_empty() {
        return Ok(Vec::new());
    }
    let with_hours: Vec<String> = team_members::table
        .filter(team_members::agent_id.eq_any(&agents))
        .select(team_members::team_id)
        .distinct()
        .load(c)?;
    Ok(conversations::table
        .filter(conversations::status.eq("open"))
        .filter(conversations::assignee_id.is_null())
        .filter(conversations::queued_at.is_not_null())
        .filter(conversations::team_id.eq_any(&with_hours))
        .select(conversations::team_id)
        .distinct()
        .load(c)?)
}

/// Sets (`Some`) or clears (`None`) the agent's working hours.
///
/// # Errors
/// Database errors.
pub fn set(
    c: &mut DbConn,
    agent_id: &str,
    schedule: Option<&Schedule>,
    now_ms: i64,
) -> Result<(), AppError> {
    diesel::delete(agent_hours::table.find(agent_id)).execute(c)?;
    if let Some(s) = schedule {
        let json = serde_json::to_string(&s.hours.to_raw())
            .map_err(|e| AppError::Internal(format!("working hours as JSON: {e}")))?;
        diesel::insert_into(agent_hours::table)
            .values((
                agent_hours::agent_id.eq(agent_id),
                agent_hours::time_zone.eq(s.time_zone.name()),
                agent_hours::hours.eq(json),
                agent_hours::updated_at.eq(now_ms),
            ))
            .execute(c)?;
    }
    Ok(())
}
