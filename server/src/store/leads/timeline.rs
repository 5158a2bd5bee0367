//! A lead's history. [`event`] appends a lead event, and starts the automations it
//! triggers in the same transaction; [`timeline`] merges those events with the
//! messages and routing decisions of the lead's conversations, which other modules
//! store and which are only joined here, on read.

use diesel::prelude::*;
use serde_json::{json, Value};

use crate::clock::rfc3339;
use crate::db::schema::{lead_events, messages};
use crate::db::DbConn;
use crate::error::AppError;
use crate::model::new_id;

use super::{conversation_ids, row, Actor, TimelineEntry};

/// Appends a timeline event; returns it as an entry.
///
/// # Errors
/// Database errors.
pub fn event(
    c: &mut DbConn,
    lead_id: &str,
    conversation_id: Option<&str>,
    kind: &str,
    actor: Actor<'_>,
    detail: Value,
    now: i64,
) -> Result<TimelineEntry, AppError> {
    let id = new_id();
    diesel::insert_into(lead_events::table)
        .values((
            lead_events::id.eq(&id),
            lead_events::lead_id.eq(lead_id),
            lead_events::conversation_id.eq(conversation_id),
            lead_events::kind.eq(kind),
            lead_events::actor_kind.eq(actor.kind),
            lead_events::actor_id.eq(actor.id),
            lead_events::detail.eq(detail.to_string()),
            lead_events::created_at.eq(now),
        ))
        .execute(c)?;
    // Lead-created and stage-entered automations start here, in the event's own
    // transaction, whichever path (rules, an agent, an import) made the event.
    let started =
        crate::store::automations::runs::on_lead_event(c, lead_id, kind, &detail, &id, now)?;
    Ok(TimelineEntry {
        id,
        lead_id: lead_id.into(),
        conversation_id: conversation_id.map(str::to_string),
        kind: kind.into(),
        actor_kind: actor.kind.into(),
        actor_id: actor.id.map(str::to_string),
        detail,
        at: rfc3339(now),
        at_ms: now,
        started_runs: started > 0,
    })
}

// ------------------------------------------------------------------ timeline

/// The whole timeline of a lead, oldest first: messages of every conversation of
/// its contacts, routing decisions about them, and lead events.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn timeline(c: &mut DbConn, lead_id: &str) -> Result<Vec<TimelineEntry>, AppError> {
    row(c, lead_id)?;
    let convs = conversation_ids(c, lead_id)?;
    let mut out: Vec<TimelineEntry> = Vec::new();
    type Msg = (
        String,
        String,
        i64,
        String,
        Option<String>,
        Option<String>,
        String,
        i64,
        Option<String>,
    );
    let msgs: Vec<Msg> = messages::table
        .filter(messages::conversation_id.eq_any(&convs))
        .select((
            messages::id,
            messages::conversation_id,
            messages::seq,
            messages::sender_kind,
            messages::sender_id,
            messages::sender_name,
            messages::body,
            messages::created_at,
            messages::status,
        ))
        .load(c)?;
    for (id, conv, seq, kind, sender_id, sender_name, body, at, status) in msgs {
        out.push(TimelineEntry {
            id,
            lead_id: lead_id.into(),
            conversation_id: Some(conv),
            kind: if kind == "guest" { "message_in" } else { "message_out" }.into(),
            actor_kind: kind,
            actor_id: sender_id,
            detail: json!({"seq": seq, "body": crate::model::preview(&body), "sender_name": sender_name, "status": status}),
            at: rfc3339(at),
            at_ms: at,
            started_runs: false,
        });
    }
    for conv in &convs {
        for r in crate::routing::engine::audit(c, conv)? {
            let at_ms = chrono::DateTime::parse_from_rfc3339(&r.created_at)
                .map(|d| d.timestamp_millis())
                .unwrap_or_default();
            out.push(TimelineEntry {
                id: r.id.clone(),
                lead_id: lead_id.into(),
                conversation_id: Some(r.conversation_id.clone()),
                kind: format!("routing_{}", r.kind),
                actor_kind: if r.actor_id.is_some() {
                    "agent"
                } else {
                    "system"
                }
                .into(),
                actor_id: r.actor_id.clone(),
                detail: serde_json::to_value(&r).unwrap_or(Value::Null),
                at: r.created_at.clone(),
                at_ms,
                started_runs: false,
            });
        }
    }
    type Ev = (
        String,
        Option<String>,
        String,
        String,
        Option<String>,
        String,
        i64,
    );
    let events: Vec<Ev> = lead_events::table
        .filter(lead_events::lead_id.eq(lead_id))
        .select((
            lead_events::id,
            lead_events::conversation_id,
            lead_events::kind,
            lead_events::actor_kind,
            lead_events::actor_id,
            lead_events::detail,
            lead_events::created_at,
        ))
        .load(c)?;
    for (id, conv, kind, actor_kind, actor_id, detail, at) in events {
        out.push(TimelineEntry {
            id,
            lead_id: lead_id.into(),
            conversation_id: conv,
            kind,
            actor_kind,
            actor_id,
            detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
            at: rfc3339(at),
            at_ms: at,
            started_runs: false,
        });
    }
    out.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}
