//! Moving a lead through the team's pipeline. Intent rules, the first agent reply,
//! automations, the bot and agents by hand all move leads; the rules of a move
//! (automatic moves only go forward, the furthest position, the closing time, the
//! stage's follow-up task) live here once.

use diesel::prelude::*;
use serde_json::json;

use crate::db::schema::leads;
use crate::db::DbConn;
use crate::error::AppError;
use crate::leads::config::LeadConfig;

use super::tasks::has_open_task;
use super::{create_task, event, Actor, LeadRow, NewTask, TimelineEntry};

/// Moves a lead to `to`. Automatic moves (`manual` false) only go forward and
/// return `None` otherwise; manual moves may go anywhere. Updates the furthest
/// position, the closing time, creates the stage's follow-up task, and records
/// `stage_changed` with the actor.
///
/// # Errors
/// [`AppError::Validation`] for an unknown stage; database errors.
#[allow(clippy::too_many_arguments)]
pub fn move_stage(
    c: &mut DbConn,
    cfg: &LeadConfig,
    lead: &mut LeadRow,
    to: &str,
    actor: Actor<'_>,
    manual: bool,
    conversation_id: Option<&str>,
    now: i64,
    out: &mut Vec<TimelineEntry>,
) -> Result<bool, AppError> {
    let Some(pos) = cfg.position(to) else {
        return Err(AppError::Validation(format!(
            "There is no stage {to:?} in the pipeline."
        )));
    };
    if lead.stage == to || (!manual && !cfg.is_forward(&lead.stage, to)) {
        return Ok(false);
    }
    let stage = &cfg.stages[pos];
    let open_count = cfg.stages.iter().filter(|s| s.outcome.is_none()).count();
    let reached = match stage.outcome.as_deref() {
        Some("won") => open_count,
        Some(_) => lead.furthest_position as usize,
        None => pos,
    };
    let from = std::mem::replace(&mut lead.stage, to.to_string());
    lead.furthest_position = lead.furthest_position.max(reached as i32);
    lead.closed_at = stage.outcome.is_some().then_some(now);
    lead.updated_at = now;
    diesel::update(leads::table.find(&lead.id))
        .set((
            leads::stage.eq(&lead.stage),
            leads::furthest_position.eq(lead.furthest_position),
            leads::closed_at.eq(lead.closed_at),
            leads::updated_at.eq(now),
        ))
        .execute(c)?;
    out.push(event(
        c,
        &lead.id,
        conversation_id,
        "stage_changed",
        actor,
        json!({"from": from, "to": to, "manual": manual}),
        now,
    )?);
    if let Some(hours) = stage.follow_up_hours {
        if !has_open_task(c, &lead.id, "follow_up")? {
            create_task(
                c,
                lead,
                conversation_id,
                NewTask {
                    kind: "follow_up".into(),
                    title: format!("Follow up: lead is now {}", stage.name),
                    assignee_id: lead.owner_id.clone(),
                    due_at: now + hours * 3_600_000,
                    created_by: None,
                },
                now,
                out,
            )?;
        }
    }
    Ok(true)
}
