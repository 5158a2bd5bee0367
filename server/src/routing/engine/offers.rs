//! Polls: opening an offer to the eligible agents, [`claim`] (exactly one wins),
//! [`expire_offer`] and the team's escalation steps, withdrawing a conversation's
//! offer, and the open offers read back ([`open_offers`], [`open_offers_for`]).

use std::collections::BTreeSet;

use diesel::prelude::*;

use crate::clock::rfc3339;
use crate::db::schema::{conversations, offer_recipients, offers};
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::model::new_id;
use crate::routing::settings::{EscalationStep, TeamRouting};
use crate::routing::views::{Considered, OfferView};

use super::assign::{assign_rotating, assign_row};
use super::audit::{record, Audit};
use super::queue::enqueue;
use super::{
    candidates, capacity_of, facts, lock_agent, lock_team, Candidate, Effect, Facts, PresenceMap,
    OPEN,
};

pub(super) fn open_offer_of(
    c: &mut DbConn,
    conversation_id: &str,
) -> Result<Option<String>, AppError> {
    Ok(offers::table
        .filter(offers::conversation_id.eq(conversation_id))
        .filter(offers::status.eq(OPEN))
        .select(offers::id)
        .first::<String>(c)
        .optional()?)
}

fn offer_view(f: &Facts, offer_id: &str, round: i32, expires_at: i64) -> OfferView {
    OfferView {
        offer_id: offer_id.to_string(),
        conversation_id: f.id.clone(),
        team_id: f.team_id.clone(),
        channel: f.channel.clone(),
        source: f.source.clone(),
        preview: f.last_message_preview.clone(),
        expires_at: rfc3339(expires_at),
        round,
    }
}

pub(super) fn open_poll(
    c: &mut DbConn,
    team: &mut TeamRouting,
    f: &Facts,
    cands: &mut [Candidate],
    now: i64,
) -> Result<Vec<Effect>, AppError> {
    let considered: Vec<Considered> = cands.iter().map(|x| x.considered(x.skip(false))).collect();
    let recipients: Vec<String> = cands
        .iter()
        .filter(|x| x.skip(false).is_none())
        .map(|x| x.agent_id.clone())
        .collect();
    if recipients.is_empty() {
        return enqueue(c, team, f, considered, now, "queued");
    }
    let offer_id = new_id();
    let expires_at = now + team.offer_timeout_ms;
    diesel::insert_into(offers::table)
        .values((
            offers::id.eq(&offer_id),
            offers::conversation_id.eq(&f.id),
            offers::team_id.eq(&team.team_id),
            offers::status.eq(OPEN),
            offers::round.eq(1),
            offers::created_at.eq(now),
            offers::expires_at.eq(expires_at),
        ))
        .execute(c)?;
    add_recipients(c, &offer_id, &recipients)?;
    // Offered conversations are not queued; they leave the queue if they were in it.
    diesel::update(conversations::table.find(&f.id))
        .set(conversations::queued_at.eq(None::<i64>))
        .execute(c)?;
    record(
        c,
        Audit {
            conversation_id: &f.id,
            team_id: &team.team_id,
            kind: "offered",
            agent_id: None,
            actor_id: None,
            via: Some("poll"),
            candidates: considered,
            note: None,
        },
        now,
    )?;
    let mut effects = vec![Effect::Offered {
        offer: offer_view(f, &offer_id, 1, expires_at),
        recipients,
        expires_at_ms: expires_at,
    }];
    if f.queued_at.is_some() {
        effects.push(Effect::QueueChanged {
            team_id: team.team_id.clone(),
        });
    }
    Ok(effects)
}

fn add_recipients(c: &mut DbConn, offer_id: &str, agents: &[String]) -> Result<(), AppError> {
    for agent in agents {
        diesel::insert_into(offer_recipients::table)
            .values((
                offer_recipients::offer_id.eq(offer_id),
                offer_recipients::agent_id.eq(agent),
            ))
            .execute(c)?;
    }
    Ok(())
}

fn recipients_of(c: &mut DbConn, offer_id: &str) -> Result<Vec<String>, AppError> {
    Ok(offer_recipients::table
        .filter(offer_recipients::offer_id.eq(offer_id))
        .select(offer_recipients::agent_id)
        .order(offer_recipients::agent_id)
        .load(c)?)
}

/// How a claim ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The conversation now assigned to the claimer.
    pub conversation_id: String,
    /// What to announce.
    pub effects: Vec<Effect>,
}

/// Claims an offer for `agent_id`: exactly one claim per offer succeeds.
///
/// # Errors
/// [`AppError::NotFound`] for an unknown offer; [`AppError::Forbidden`] when it was
/// not offered to this agent; [`AppError::Conflict`] when it is already claimed,
/// expired or withdrawn, or the agent is at capacity; database errors.
pub fn claim(
    c: &mut DbConn,
    offer_id: &str,
    agent_id: &str,
    now: i64,
) -> Result<Claimed, AppError> {
    let team_id: String = offers::table
        .find(offer_id)
        .select(offers::team_id)
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no offer {offer_id}")))?;
    write_transaction(c, |c| {
        let team = lock_team(c, &team_id)?;
        let (conversation_id, status): (String, String) = offers::table
            .find(offer_id)
            .select((offers::conversation_id, offers::status))
            .first(c)?;
        let recipients = recipients_of(c, offer_id)?;
        if !recipients.iter().any(|r| r == agent_id) {
            return Err(AppError::Forbidden("this offer was not made to you".into()));
        }
        if status != OPEN {
            return Err(AppError::Conflict(match status.as_str() {
                "claimed" => "someone else claimed this conversation first".into(),
                "expired" => "this offer has expired".into(),
                _ => "this offer was withdrawn".into(),
            }));
        }
        let open = lock_agent(c, agent_id)?;
        let capacity = capacity_of(c, agent_id, team.default_capacity)?;
        if open >= capacity {
            return Err(AppError::Conflict(format!(
                "you are at capacity ({open} of {capacity} open conversations)"
            )));
        }
        let won = diesel::update(
            offers::table
                .filter(offers::id.eq(offer_id))
                .filter(offers::status.eq(OPEN)),
        )
        .set((
            offers::status.eq("claimed"),
            offers::winner_id.eq(agent_id),
            offers::closed_at.eq(now),
        ))
        .execute(c)?;
        if won != 1 || !assign_row(c, &conversation_id, agent_id, now)? {
            return Err(AppError::Conflict(
                "someone else claimed this conversation first".into(),
            ));
        }
        record(
            c,
            Audit {
                conversation_id: &conversation_id,
                team_id: &team_id,
                kind: "claimed",
                agent_id: Some(agent_id),
                actor_id: Some(agent_id),
                via: Some("poll"),
                candidates: Vec::new(),
                note: Some(format!("first of {} to claim", recipients.len())),
            },
            now,
        )?;
        Ok(Claimed {
            effects: vec![
                Effect::OfferClosed {
                    offer_id: offer_id.to_string(),
                    conversation_id: conversation_id.clone(),
                    winner: Some(agent_id.to_string()),
                    recipients,
                    reason: "claimed",
                },
                Effect::Assigned {
                    conversation_id: conversation_id.clone(),
                    team_id: team_id.clone(),
                    agent_id: agent_id.to_string(),
                },
            ],
            conversation_id,
        })
    })
}

fn close_offer(
    c: &mut DbConn,
    offer_id: &str,
    conversation_id: &str,
    status: &'static str,
    now: i64,
) -> Result<Option<Effect>, AppError> {
    let n = diesel::update(
        offers::table
            .filter(offers::id.eq(offer_id))
            .filter(offers::status.eq(OPEN)),
    )
    .set((offers::status.eq(status), offers::closed_at.eq(now)))
    .execute(c)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(Effect::OfferClosed {
        offer_id: offer_id.to_string(),
        conversation_id: conversation_id.to_string(),
        winner: None,
        recipients: recipients_of(c, offer_id)?,
        reason: status,
    }))
}

/// Withdraws the open offer of a conversation, if any (it was assigned by hand,
/// resolved or transferred).
pub(super) fn cancel_offers(
    c: &mut DbConn,
    conversation_id: &str,
    now: i64,
) -> Result<Vec<Effect>, AppError> {
    let mut effects = Vec::new();
    if let Some(offer_id) = open_offer_of(c, conversation_id)? {
        effects.extend(close_offer(
            c,
            &offer_id,
            conversation_id,
            "cancelled",
            now,
        )?);
    }
    Ok(effects)
}

/// A poll round ended unclaimed: takes the team's next escalation step. `round` is
/// the round the timer was armed for; a stale timer (claimed, or already escalated)
/// does nothing.
///
/// # Errors
/// Database errors.
pub fn expire_offer(
    c: &mut DbConn,
    offer_id: &str,
    round: i32,
    presence: &PresenceMap,
    now: i64,
) -> Result<Vec<Effect>, AppError> {
    let Some(team_id) = offers::table
        .find(offer_id)
        .select(offers::team_id)
        .first::<String>(c)
        .optional()?
    else {
        return Ok(Vec::new());
    };
    write_transaction(c, |c| {
        let mut team = lock_team(c, &team_id)?;
        let (conversation_id, status, current_round): (String, String, i32) = offers::table
            .find(offer_id)
            .select((offers::conversation_id, offers::status, offers::round))
            .first(c)?;
        if status != OPEN || current_round != round {
            return Ok(Vec::new());
        }
        let f = facts(c, &conversation_id)?;
        let step = usize::try_from(round - 1)
            .ok()
            .and_then(|i| team.escalation.get(i).copied());
        let mut cands = candidates(c, &team, presence, now)?;
        let next_round = |c: &mut DbConn, team: &TeamRouting| -> Result<i64, AppError> {
            let expires_at = now + team.offer_timeout_ms;
            diesel::update(offers::table.find(offer_id))
                .set((
                    offers::round.eq(round + 1),
                    offers::expires_at.eq(expires_at),
                ))
                .execute(c)?;
            Ok(expires_at)
        };
        match step {
            Some(EscalationStep::Widen) => {
                let already: BTreeSet<String> = recipients_of(c, offer_id)?.into_iter().collect();
                let added: Vec<String> = cands
                    .iter()
                    .filter(|x| x.skip(true).is_none() && !already.contains(&x.agent_id))
                    .map(|x| x.agent_id.clone())
                    .collect();
                add_recipients(c, offer_id, &added)?;
                let expires_at = next_round(c, &team)?;
                record(
                    c,
                    Audit {
                        conversation_id: &conversation_id,
                        team_id: &team_id,
                        kind: "offer_widened",
                        agent_id: None,
                        actor_id: None,
                        via: Some("poll"),
                        candidates: cands.iter().map(|x| x.considered(x.skip(true))).collect(),
                        note: Some(format!("unclaimed; offered to {} more", added.len())),
                    },
                    now,
                )?;
                Ok(vec![Effect::Offered {
                    offer: offer_view(&f, offer_id, round + 1, expires_at),
                    recipients: recipients_of(c, offer_id)?,
                    expires_at_ms: expires_at,
                }])
            }
            Some(EscalationStep::AlertLeads) => {
                let expires_at = next_round(c, &team)?;
                record(
                    c,
                    Audit {
                        conversation_id: &conversation_id,
                        team_id: &team_id,
                        kind: "offer_alerted",
                        agent_id: None,
                        actor_id: None,
                        via: Some("poll"),
                        candidates: Vec::new(),
                        note: Some("unclaimed; team leads alerted".into()),
                    },
                    now,
                )?;
                Ok(vec![
                    Effect::Alert {
                        team_id: team_id.clone(),
                        conversation_id: conversation_id.clone(),
                        offer_id: offer_id.to_string(),
                    },
                    Effect::Offered {
                        offer: offer_view(&f, offer_id, round + 1, expires_at),
                        recipients: recipients_of(c, offer_id)?,
                        expires_at_ms: expires_at,
                    },
                ])
            }
            Some(EscalationStep::RoundRobin) | None => {
                let mut effects: Vec<Effect> =
                    close_offer(c, offer_id, &conversation_id, "expired", now)?
                        .into_iter()
                        .collect();
                record(
                    c,
                    Audit {
                        conversation_id: &conversation_id,
                        team_id: &team_id,
                        kind: "offer_expired",
                        agent_id: None,
                        actor_id: None,
                        via: Some("poll"),
                        candidates: Vec::new(),
                        note: Some(if step.is_some() {
                            "unclaimed; falling back to round-robin".into()
                        } else {
                            "unclaimed after every escalation step; queued".into()
                        }),
                    },
                    now,
                )?;
                if step.is_some() {
                    effects.extend(assign_rotating(
                        c, &mut team, &f, &mut cands, now, false, "queued",
                    )?);
                } else {
                    let considered = cands.iter().map(|x| x.considered(x.skip(false))).collect();
                    effects.extend(enqueue(c, &team, &f, considered, now, "queued")?);
                }
                Ok(effects)
            }
        }
    })
}

/// Open offers this agent may claim, oldest first (for a client that reconnects).
///
/// # Errors
/// Database errors.
pub fn open_offers_for(c: &mut DbConn, agent_id: &str) -> Result<Vec<OfferView>, AppError> {
    let rows: Vec<(String, String, i32, i64)> = offers::table
        .inner_join(offer_recipients::table)
        .filter(offer_recipients::agent_id.eq(agent_id))
        .filter(offers::status.eq(OPEN))
        .order(offers::created_at.asc())
        .select((
            offers::id,
            offers::conversation_id,
            offers::round,
            offers::expires_at,
        ))
        .load(c)?;
    rows.into_iter()
        .map(|(id, conv, round, expires_at)| {
            let f = facts(c, &conv)?;
            Ok(offer_view(&f, &id, round, expires_at))
        })
        .collect()
}

/// Every open offer (the router re-arms their timers at start), as
/// (offer id, round, expires at ms).
///
/// # Errors
/// Database errors.
pub fn open_offers(c: &mut DbConn) -> Result<Vec<(String, i32, i64)>, AppError> {
    Ok(offers::table
        .filter(offers::status.eq(OPEN))
        .select((offers::id, offers::round, offers::expires_at))
        .load(c)?)
}
