//! Changes people make to a conversation: [`manual_assign`] (assign, hand back,
//! unassign), [`transfer`] to another team, and [`closed`] when it is resolved or
//! set pending.

use diesel::prelude::*;

use crate::db::schema::{agents, conversations, team_members};
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;

use super::audit::{record, Audit};
use super::offers::cancel_offers;
use super::{capacity_of, facts, lock_agent, lock_team, Effect, OPEN};

/// A person changes the assignee (`POST /api/conversations/{id}/assign`, hand-back,
/// unassign). Enforces who may do it against the current assignee (read under the
/// team's lock): team leads and admins (`supervises`) may assign anyone or nobody;
/// an agent may take an unassigned conversation or hand back its own. Also enforces
/// capacity, withdraws any open offer, puts an unassigned open conversation back in
/// the queue and records the decision.
///
/// # Errors
/// [`AppError::Forbidden`] for an agent assigning someone else;
/// [`AppError::Validation`] for an unknown or inactive agent or one outside the team;
/// [`AppError::Conflict`] when someone else holds it (for an agent) or the target is
/// at capacity; database errors.
pub fn manual_assign(
    c: &mut DbConn,
    conversation_id: &str,
    target: Option<&str>,
    actor_id: &str,
    supervises: bool,
    now: i64,
) -> Result<Vec<Effect>, AppError> {
    let team_id = facts(c, conversation_id)?.team_id;
    write_transaction(c, |c| {
        let team = lock_team(c, &team_id)?;
        let f = facts(c, conversation_id)?;
        let expected = f.assignee_id.as_deref();
        if !supervises {
            let handing_back = target.is_none() && expected == Some(actor_id);
            if !handing_back {
                if target != Some(actor_id) {
                    return Err(AppError::Forbidden(
                        "agents may only assign conversations to themselves; ask a team lead"
                            .into(),
                    ));
                }
                if expected.is_some_and(|cur| cur != actor_id) {
                    return Err(AppError::Conflict(
                        "someone else already has this conversation".into(),
                    ));
                }
            }
        }
        if expected == target {
            return Ok(Vec::new());
        }
        let open_now = f.status == OPEN;
        let mut note = None;
        if let Some(agent_id) = target {
            let member = team_members::table
                .inner_join(agents::table)
                .filter(team_members::team_id.eq(&team_id))
                .filter(team_members::agent_id.eq(agent_id))
                .filter(agents::active.eq(1))
                .select(agents::name)
                .first::<String>(c)
                .optional()?;
            let is_admin = agents::table
                .find(agent_id)
                .filter(agents::active.eq(1))
                .filter(agents::role.eq("admin"))
                .count()
                .get_result::<i64>(c)?
                > 0;
            if member.is_none() && !is_admin {
                return Err(AppError::Validation(format!(
                    "This agent ({agent_id}) is not an active member of the conversation's team."
                )));
            }
            let open = lock_agent(c, agent_id)?;
            let capacity = capacity_of(c, agent_id, team.default_capacity)?;
            if open_now && open >= capacity {
                return Err(AppError::Conflict(format!(
                    "{} is at capacity ({open} of {capacity} open conversations)",
                    member.as_deref().unwrap_or("that agent")
                )));
            }
            note = Some(format!("{open} of {capacity} open before this one"));
        }
        let queued_at = if target.is_none() && open_now {
            Some(now)
        } else {
            None
        };
        let target_row = conversations::table.filter(conversations::id.eq(conversation_id));
        let changes = (
            conversations::assignee_id.eq(target),
            conversations::queued_at.eq(queued_at),
            conversations::assigned_at.eq(target.map(|_| now)),
            conversations::updated_at.eq(now),
        );
        let n = match expected {
            Some(cur) => diesel::update(target_row.filter(conversations::assignee_id.eq(cur)))
                .set(changes)
                .execute(c)?,
            None => diesel::update(target_row.filter(conversations::assignee_id.is_null()))
                .set(changes)
                .execute(c)?,
        };
        if n != 1 {
            return Err(AppError::Conflict(
                "the assignment changed meanwhile; reload and retry".into(),
            ));
        }
        let mut effects = cancel_offers(c, conversation_id, now)?;
        record(
            c,
            Audit {
                conversation_id,
                team_id: &team_id,
                kind: if target.is_some() {
                    "assigned"
                } else {
                    "unassigned"
                },
                agent_id: target.or(expected),
                actor_id: Some(actor_id),
                via: Some("manual"),
                candidates: Vec::new(),
                note,
            },
            now,
        )?;
        match target {
            Some(agent_id) => effects.push(Effect::Assigned {
                conversation_id: conversation_id.to_string(),
                team_id: team_id.clone(),
                agent_id: agent_id.to_string(),
            }),
            None => effects.push(Effect::Unassigned {
                conversation_id: conversation_id.to_string(),
                team_id: team_id.clone(),
            }),
        }
        if f.queued_at.is_some() || queued_at.is_some() {
            effects.push(Effect::QueueChanged {
                team_id: team_id.clone(),
            });
        }
        Ok(effects)
    })
}

/// Moves a conversation to another team, optionally to an agent of it. It leaves
/// its assignee and any offer behind; without a target agent it is routed afresh in
/// the new team by the caller.
///
/// # Errors
/// [`AppError::NotFound`] for an unknown team; as [`manual_assign`] for the agent.
pub fn transfer(
    c: &mut DbConn,
    conversation_id: &str,
    to_team: &str,
    actor_id: &str,
    now: i64,
) -> Result<Vec<Effect>, AppError> {
    let from_team = facts(c, conversation_id)?.team_id;
    if from_team == to_team {
        return Ok(Vec::new());
    }
    write_transaction(c, |c| {
        // Lock in id order so two opposite transfers cannot deadlock.
        let (first, second) = if from_team.as_str() < to_team {
            (from_team.clone(), to_team.to_string())
        } else {
            (to_team.to_string(), from_team.clone())
        };
        lock_team(c, &first)?;
        lock_team(c, &second)?;
        let f = facts(c, conversation_id)?;
        let mut effects = cancel_offers(c, conversation_id, now)?;
        diesel::update(conversations::table.find(conversation_id))
            .set((
                conversations::team_id.eq(to_team),
                conversations::assignee_id.eq(None::<String>),
                conversations::queued_at.eq(None::<i64>),
                conversations::updated_at.eq(now),
            ))
            .execute(c)?;
        record(
            c,
            Audit {
                conversation_id,
                team_id: to_team,
                kind: "transferred",
                agent_id: f.assignee_id.as_deref(),
                actor_id: Some(actor_id),
                via: Some("manual"),
                candidates: Vec::new(),
                note: Some(format!("from team {from_team}")),
            },
            now,
        )?;
        if f.assignee_id.is_some() {
            effects.push(Effect::Unassigned {
                conversation_id: conversation_id.to_string(),
                team_id: to_team.to_string(),
            });
        }
        effects.push(Effect::QueueChanged {
            team_id: from_team.clone(),
        });
        Ok(effects)
    })
}

/// A conversation was resolved or set pending: withdraws its offer and takes it out
/// of the queue (its assignee's capacity is freed by the status itself).
///
/// # Errors
/// Database errors.
pub fn closed(c: &mut DbConn, conversation_id: &str, now: i64) -> Result<Vec<Effect>, AppError> {
    let f = facts(c, conversation_id)?;
    write_transaction(c, |c| {
        lock_team(c, &f.team_id)?;
        let mut effects = cancel_offers(c, conversation_id, now)?;
        let n = diesel::update(
            conversations::table
                .filter(conversations::id.eq(conversation_id))
                .filter(conversations::status.ne(OPEN))
                .filter(conversations::queued_at.is_not_null()),
        )
        .set(conversations::queued_at.eq(None::<i64>))
        .execute(c)?;
        if n == 1 {
            effects.push(Effect::QueueChanged {
                team_id: f.team_id.clone(),
            });
        }
        Ok(effects)
    })
}
