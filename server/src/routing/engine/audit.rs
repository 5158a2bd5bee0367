//! The routing audit: [`record`] stores one event per decision (with the
//! candidates considered), [`audit`] reads a conversation's events back.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::db::schema::routing_events;
use crate::db::DbConn;
use crate::error::AppError;
use crate::model::new_id;
use crate::routing::views::{Considered, RoutingEventView};

#[derive(Serialize, Deserialize, Default)]
struct Detail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    via: Option<String>,
    #[serde(default)]
    candidates: Vec<Considered>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// One routing-audit entry to store.
pub(super) struct Audit<'a> {
    pub(super) conversation_id: &'a str,
    pub(super) team_id: &'a str,
    pub(super) kind: &'a str,
    pub(super) agent_id: Option<&'a str>,
    pub(super) actor_id: Option<&'a str>,
    pub(super) via: Option<&'a str>,
    pub(super) candidates: Vec<Considered>,
    pub(super) note: Option<String>,
}

pub(super) fn record(c: &mut DbConn, a: Audit<'_>, now: i64) -> Result<(), AppError> {
    let detail = serde_json::to_string(&Detail {
        via: a.via.map(str::to_string),
        candidates: a.candidates,
        note: a.note,
    })
    .map_err(AppError::internal)?;
    diesel::insert_into(routing_events::table)
        .values((
            routing_events::id.eq(new_id()),
            routing_events::conversation_id.eq(a.conversation_id),
            routing_events::team_id.eq(a.team_id),
            routing_events::kind.eq(a.kind),
            routing_events::agent_id.eq(a.agent_id),
            routing_events::actor_id.eq(a.actor_id),
            routing_events::detail.eq(detail),
            routing_events::created_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}

/// The routing audit of a conversation, oldest first.
///
/// # Errors
/// Database errors.
pub fn audit(c: &mut DbConn, conversation_id: &str) -> Result<Vec<RoutingEventView>, AppError> {
    type Row = (
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
        i64,
    );
    let rows: Vec<Row> = routing_events::table
        .filter(routing_events::conversation_id.eq(conversation_id))
        .order((routing_events::created_at.asc(), routing_events::id.asc()))
        .select((
            routing_events::id,
            routing_events::conversation_id,
            routing_events::team_id,
            routing_events::kind,
            routing_events::agent_id,
            routing_events::actor_id,
            routing_events::detail,
            routing_events::created_at,
        ))
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, conversation_id, team_id, kind, agent_id, actor_id, detail, at)| {
                // A detail that does not parse (written by a newer version) still shows
                // the decision itself.
                let d: Detail = serde_json::from_str(&detail).unwrap_or_default();
                RoutingEventView {
                    id,
                    conversation_id,
                    team_id,
                    kind,
                    agent_id,
                    actor_id,
                    via: d.via,
                    candidates: d.candidates,
                    note: d.note,
                    created_at: rfc3339(at),
                }
            },
        )
        .collect())
}
