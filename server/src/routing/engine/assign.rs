//! Automatic assignment: [`route`] a conversation that needs an agent (owner first,
//! then round-robin, or a poll), the round-robin rotation itself, a reopened
//! conversation ([`reopened`]) and the requeue of an offline agent's unanswered work
//! ([`requeue_offline`]).

use std::collections::HashMap;

use diesel::prelude::*;

use crate::db::schema::{conversations, teams};
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::protocol::PresenceStatus;
use crate::routing::settings::{self, RoutingMode, TeamRouting};
use crate::routing::views::SkipReason;

use super::audit::{record, Audit};
use super::offers::{open_offer_of, open_poll};
use super::queue::{drain, drain_with, enqueue, waiting_ids};
use super::{
    candidates, capacity_of, facts, lock_agent, lock_team, Candidate, Effect, Facts, PresenceMap,
    OPEN,
};

/// Assigns an open, unassigned conversation. Returns false when it was not (any
/// more) open and unassigned.
pub(super) fn assign_row(
    c: &mut DbConn,
    conversation_id: &str,
    agent_id: &str,
    now: i64,
) -> Result<bool, AppError> {
    let n = diesel::update(
        conversations::table
            .filter(conversations::id.eq(conversation_id))
            .filter(conversations::assignee_id.is_null())
            .filter(conversations::status.eq(OPEN)),
    )
    .set((
        conversations::assignee_id.eq(agent_id),
        conversations::queued_at.eq(None::<i64>),
        conversations::assigned_at.eq(now),
        conversations::updated_at.eq(now),
    ))
    .execute(c)?;
    Ok(n == 1)
}

/// The agent a conversation should go to first: the preferred agent (a quick-chat
/// link's owner, a previous assignee), else the assignee of the contact's latest
/// other conversation (a returning contact goes back to its agent).
fn owner_for(c: &mut DbConn, f: &Facts) -> Result<Option<String>, AppError> {
    if let Some(p) = &f.preferred_agent_id {
        return Ok(Some(p.clone()));
    }
    // A returning contact goes to its lead's owner first (docs/leads.md).
    if let Some(owner) = crate::store::leads::owner_for_contact(c, &f.team_id, &f.contact_id)? {
        return Ok(Some(owner));
    }
    Ok(conversations::table
        .filter(conversations::contact_id.eq(&f.contact_id))
        .filter(conversations::id.ne(&f.id))
        .filter(conversations::assignee_id.is_not_null())
        .order(conversations::updated_at.desc())
        .select(conversations::assignee_id)
        .first::<Option<String>>(c)
        .optional()?
        .flatten())
}

/// Tries `agent_id` under its lock: assigns when it is under capacity.
fn try_assign(c: &mut DbConn, f: &Facts, cand: &mut Candidate, now: i64) -> Result<bool, AppError> {
    let open = lock_agent(c, &cand.agent_id)?;
    cand.open = open;
    if open >= cand.capacity {
        return Ok(false);
    }
    if !assign_row(c, &f.id, &cand.agent_id, now)? {
        return Ok(false);
    }
    cand.open += 1;
    Ok(true)
}

/// Assigns by owner-first, then round-robin; queues when nobody is eligible.
pub(super) fn assign_rotating(
    c: &mut DbConn,
    team: &mut TeamRouting,
    f: &Facts,
    cands: &mut [Candidate],
    now: i64,
    owner_first: bool,
    kind_when_queued: &str,
) -> Result<Vec<Effect>, AppError> {
    if owner_first {
        if let Some(owner) = owner_for(c, f)? {
            if let Some(i) = cands.iter().position(|x| x.agent_id == owner) {
                if cands[i].skip(false).is_none() && try_assign(c, f, &mut cands[i], now)? {
                    let considered = vec![cands[i].considered(None)];
                    record(
                        c,
                        Audit {
                            conversation_id: &f.id,
                            team_id: &team.team_id,
                            kind: "assigned",
                            agent_id: Some(&owner),
                            actor_id: None,
                            via: Some("owner"),
                            candidates: considered,
                            note: Some("went to its owner first".into()),
                        },
                        now,
                    )?;
                    return Ok(vec![Effect::Assigned {
                        conversation_id: f.id.clone(),
                        team_id: team.team_id.clone(),
                        agent_id: owner,
                    }]);
                }
            }
        }
    }
    let n = cands.len();
    // The rotation continues after the last chosen agent, in id order.
    let start = match &team.rr_cursor {
        Some(cursor) => cands
            .iter()
            .position(|x| x.agent_id.as_str() > cursor.as_str())
            .unwrap_or(0),
        None => 0,
    };
    let mut skipped: HashMap<usize, SkipReason> = HashMap::new();
    let mut chosen: Option<usize> = None;
    for k in 0..n {
        let i = (start + k) % n;
        if let Some(reason) = cands[i].skip(false) {
            skipped.insert(i, reason);
            continue;
        }
        if try_assign(c, f, &mut cands[i], now)? {
            chosen = Some(i);
            break;
        }
        skipped.insert(i, SkipReason::AtCapacity);
    }
    let considered = cands
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let reason = if Some(i) == chosen {
                None
            } else {
                Some(skipped.get(&i).copied().unwrap_or(SkipReason::NotNext))
            };
            x.considered(reason)
        })
        .collect();
    match chosen {
        Some(i) => {
            let agent_id = cands[i].agent_id.clone();
            diesel::update(teams::table.find(&team.team_id))
                .set(teams::rr_cursor.eq(&agent_id))
                .execute(c)?;
            team.rr_cursor = Some(agent_id.clone());
            record(
                c,
                Audit {
                    conversation_id: &f.id,
                    team_id: &team.team_id,
                    kind: "assigned",
                    agent_id: Some(&agent_id),
                    actor_id: None,
                    via: Some("round_robin"),
                    candidates: considered,
                    note: None,
                },
                now,
            )?;
            Ok(vec![Effect::Assigned {
                conversation_id: f.id.clone(),
                team_id: team.team_id.clone(),
                agent_id,
            }])
        }
        None => enqueue(c, team, f, considered, now, kind_when_queued),
    }
}

/// Routes a conversation that needs an agent: owner first, then by the team's mode;
/// queues it when nobody is eligible. Does nothing for a conversation that is
/// resolved, assigned, on offer or already queued.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn route(
    c: &mut DbConn,
    conversation_id: &str,
    presence: &PresenceMap,
    now: i64,
) -> Result<Vec<Effect>, AppError> {
    let seen = facts(c, conversation_id)?;
    // A contact writing in a conversation that is already taken care of (assigned,
    // waiting, closed) triggers this on every message: answer that from a plain read
    // and leave the team's write lock to decisions that need it.
    if seen.status != OPEN || seen.assignee_id.is_some() || seen.queued_at.is_some() {
        return Ok(Vec::new());
    }
    // A manual team never assigns by itself; its unassigned conversations would
    // otherwise take the team's write lock for nothing on every contact message.
    if settings::mode_cached(c, &seen.team_id)? == RoutingMode::Manual {
        return Ok(Vec::new());
    }
    let team_id = seen.team_id;
    write_transaction(c, |c| {
        let mut team = lock_team(c, &team_id)?;
        // Read again under the lock: another node may have routed it meanwhile.
        let f = facts(c, conversation_id)?;
        if f.status != OPEN
            || f.assignee_id.is_some()
            || f.queued_at.is_some()
            || f.team_id != team_id
            || open_offer_of(c, conversation_id)?.is_some()
        {
            return Ok(Vec::new());
        }
        let mut cands = candidates(c, &team, presence, now)?;
        if team.routing_mode != RoutingMode::Manual && !waiting_ids(c, &team_id, 1)?.is_empty() {
            // Others are already waiting: this lead joins the back of the line and the
            // line moves first, so a newcomer never takes a place freed a moment ago
            // (before the drain that capacity triggered has run) from someone older.
            let considered = cands.iter().map(|x| x.considered(x.skip(false))).collect();
            let mut effects = enqueue(c, &team, &f, considered, now, "queued")?;
            effects.extend(drain_with(c, &mut team, cands, now)?);
            return Ok(effects);
        }
        match team.routing_mode {
            RoutingMode::Manual => Ok(Vec::new()),
            RoutingMode::RoundRobin => {
                assign_rotating(c, &mut team, &f, &mut cands, now, true, "queued")
            }
            RoutingMode::Poll => {
                // Owner-first applies to polls too: the owner gets it without a poll.
                if let Some(owner) = owner_for(c, &f)? {
                    if let Some(i) = cands.iter().position(|x| x.agent_id == owner) {
                        if cands[i].skip(false).is_none() {
                            return assign_rotating(
                                c, &mut team, &f, &mut cands, now, true, "queued",
                            );
                        }
                    }
                }
                open_poll(c, &mut team, &f, &mut cands, now)
            }
        }
    })
}

/// Returns an offline agent's open, unanswered conversations (the contact wrote
/// last) to their teams' queues. Does nothing when the agent is back.
///
/// # Errors
/// Database errors.
pub fn requeue_offline(
    c: &mut DbConn,
    agent_id: &str,
    presence: &PresenceMap,
    now: i64,
) -> Result<Vec<Effect>, AppError> {
    if presence
        .get(agent_id)
        .is_some_and(|p| *p != PresenceStatus::Offline)
    {
        return Ok(Vec::new());
    }
    let held: Vec<(String, String)> = conversations::table
        .filter(conversations::assignee_id.eq(agent_id))
        .filter(conversations::status.eq(OPEN))
        .filter(conversations::last_message_sender.eq("guest"))
        .select((conversations::team_id, conversations::id))
        .order((conversations::team_id, conversations::id))
        .load(c)?;
    let mut by_team: Vec<(String, Vec<String>)> = Vec::new();
    for (team, id) in held {
        match by_team.last_mut() {
            Some((t, ids)) if *t == team => ids.push(id),
            _ => by_team.push((team, vec![id])),
        }
    }
    let mut effects = Vec::new();
    for (team_id, ids) in by_team {
        let mut got = write_transaction(c, |c| -> Result<Vec<Effect>, AppError> {
            lock_team(c, &team_id)?;
            let mut effects = Vec::new();
            for id in ids {
                let n = diesel::update(
                    conversations::table
                        .filter(conversations::id.eq(&id))
                        .filter(conversations::assignee_id.eq(agent_id))
                        .filter(conversations::status.eq(OPEN))
                        .filter(conversations::last_message_sender.eq("guest")),
                )
                .set((
                    conversations::assignee_id.eq(None::<String>),
                    conversations::queued_at.eq(now),
                    conversations::updated_at.eq(now),
                ))
                .execute(c)?;
                if n == 1 {
                    record(
                        c,
                        Audit {
                            conversation_id: &id,
                            team_id: &team_id,
                            kind: "requeued",
                            agent_id: Some(agent_id),
                            actor_id: None,
                            via: Some("queue"),
                            candidates: Vec::new(),
                            note: Some("assignee offline past the requeue delay".into()),
                        },
                        now,
                    )?;
                    effects.push(Effect::Unassigned {
                        conversation_id: id,
                        team_id: team_id.clone(),
                    });
                }
            }
            effects.push(Effect::QueueChanged {
                team_id: team_id.clone(),
            });
            Ok(effects)
        })?;
        effects.append(&mut got);
        effects.extend(drain(c, &team_id, presence, now)?);
    }
    Ok(effects)
}

/// A resolved conversation was reopened by its contact while still assigned. It
/// stays with its agent when that agent is online (or away) and under capacity;
/// otherwise it is unassigned, remembers the agent as preferred, and is routed.
///
/// # Errors
/// Database errors.
pub fn reopened(
    c: &mut DbConn,
    conversation_id: &str,
    presence: &PresenceMap,
    now: i64,
) -> Result<Vec<Effect>, AppError> {
    let f = facts(c, conversation_id)?;
    let Some(agent_id) = f.assignee_id.clone() else {
        return route(c, conversation_id, presence, now);
    };
    let released = write_transaction(c, |c| -> Result<bool, AppError> {
        let team = lock_team(c, &f.team_id)?;
        let open = lock_agent(c, &agent_id)?;
        let capacity = capacity_of(c, &agent_id, team.default_capacity)?;
        let online = presence
            .get(&agent_id)
            .is_some_and(|p| *p != PresenceStatus::Offline);
        // `open` includes this conversation again now that it is open.
        if online && open <= capacity {
            return Ok(false);
        }
        let n = diesel::update(
            conversations::table
                .filter(conversations::id.eq(conversation_id))
                .filter(conversations::assignee_id.eq(&agent_id)),
        )
        .set((
            conversations::assignee_id.eq(None::<String>),
            conversations::preferred_agent_id.eq(&agent_id),
            conversations::updated_at.eq(now),
        ))
        .execute(c)?;
        if n == 1 {
            record(
                c,
                Audit {
                    conversation_id,
                    team_id: &f.team_id,
                    kind: "unassigned",
                    agent_id: Some(&agent_id),
                    actor_id: None,
                    via: Some("reopen"),
                    candidates: Vec::new(),
                    note: Some(if online {
                        "reopened while its agent was at capacity".into()
                    } else {
                        "reopened while its agent was offline".into()
                    }),
                },
                now,
            )?;
        }
        Ok(n == 1)
    })?;
    if !released {
        return Ok(Vec::new());
    }
    let mut effects = vec![Effect::Unassigned {
        conversation_id: conversation_id.to_string(),
        team_id: f.team_id.clone(),
    }];
    effects.extend(route(c, conversation_id, presence, now)?);
    Ok(effects)
}
