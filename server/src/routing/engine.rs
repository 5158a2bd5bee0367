//! Routing decisions as synchronous database transactions.
//!
//! Every decision runs in one transaction that starts by bumping the team's
//! `routing_lock` (and, before an agent's load is raised, the agent's): the UPDATE
//! takes the row lock on PostgreSQL and the write lock on SQLite, so decisions for a
//! team — the round-robin cursor, queue order, claims — and raises of one agent's load
//! are serialised across every node. Capacity is counted inside that lock, so it holds
//! under any concurrency (guarantee 6); an offer's winner is decided by
//! `UPDATE offers … WHERE status = 'open'`, so exactly one claim succeeds.
//!
//! The functions return [`Effect`]s — what changed — and never talk to actors; the
//! [`Router`](super::actor::Router) turns effects into frames and timers. Presence is
//! passed in as a snapshot because it lives in memory (or Redis), not in the database.

use std::collections::{BTreeSet, HashMap};

use diesel::dsl::count_star;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::db::schema::{
    agents, conversations, offer_recipients, offers, routing_events, team_members, teams,
};
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::model::new_id;
use crate::protocol::PresenceStatus;
use crate::store::agent_hours;

use super::settings::{self, EscalationStep, RoutingMode, TeamRouting};
use super::views::{
    AgentLoad, Considered, OfferView, QueueEntry, RoutingEventView, SkipReason, TeamWorkload,
};

/// Presence of agents at decision time (agent id → status; absent means offline).
pub type PresenceMap = HashMap<String, PresenceStatus>;

const OPEN: &str = "open";

/// What a decision changed; the router turns each into frames and timers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The conversation now has this assignee.
    Assigned {
        /// Conversation.
        conversation_id: String,
        /// Its team.
        team_id: String,
        /// New assignee.
        agent_id: String,
    },
    /// The conversation lost its assignee (requeue, hand-back, unassign).
    Unassigned {
        /// Conversation.
        conversation_id: String,
        /// Its team.
        team_id: String,
    },
    /// An offer was made or its round changed: send `offer` to `recipients`.
    Offered {
        /// The offer as recipients see it.
        offer: OfferView,
        /// Agents to send it to.
        recipients: Vec<String>,
        /// When the round ends, epoch ms (the router arms a timer).
        expires_at_ms: i64,
    },
    /// An offer closed: tell every recipient (`won` for `winner`).
    OfferClosed {
        /// Offer.
        offer_id: String,
        /// Its conversation.
        conversation_id: String,
        /// The winner, for a claim.
        winner: Option<String>,
        /// Everyone it was offered to.
        recipients: Vec<String>,
        /// `claimed`, `expired` or `cancelled`.
        reason: &'static str,
    },
    /// An offer went unclaimed: alert the team's leads.
    Alert {
        /// Team.
        team_id: String,
        /// Conversation.
        conversation_id: String,
        /// Offer.
        offer_id: String,
    },
    /// The team's queue changed (positions must be re-announced).
    QueueChanged {
        /// Team.
        team_id: String,
    },
    /// A conversation joined the back of the team's queue: only its own position
    /// is new (the others keep theirs), so only it is announced, unless it turns
    /// out not to be last ([`queue_place`]).
    Queued {
        /// Team.
        team_id: String,
        /// The conversation that joined.
        conversation_id: String,
    },
}

impl Effect {
    /// The team whose workload this effect changes, when it names one directly.
    pub fn team_id(&self) -> Option<&str> {
        match self {
            Self::Assigned { team_id, .. }
            | Self::Unassigned { team_id, .. }
            | Self::Alert { team_id, .. }
            | Self::QueueChanged { team_id }
            | Self::Queued { team_id, .. } => Some(team_id),
            Self::Offered { offer, .. } => Some(&offer.team_id),
            Self::OfferClosed { .. } => None,
        }
    }
}

/// A team member as routing sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Agent id.
    pub agent_id: String,
    /// Display name.
    pub name: String,
    /// Role name.
    pub role: String,
    /// Presence at decision time.
    pub presence: PresenceStatus,
    /// Open conversations assigned (all teams).
    pub open: i64,
    /// Capacity.
    pub capacity: i64,
    /// Outside their working hours at decision time (`routing::hours`).
    pub off_hours: bool,
}

impl Candidate {
    /// Why this agent cannot take a new conversation now (`None`: eligible).
    /// `allow_away` is used when an offer is widened to the whole team; working hours
    /// hold even then (an agent off shift is not paged by an escalation).
    pub fn skip(&self, allow_away: bool) -> Option<SkipReason> {
        match self.presence {
            PresenceStatus::Offline => Some(SkipReason::Offline),
            _ if self.off_hours => Some(SkipReason::OffHours),
            PresenceStatus::Away if !allow_away => Some(SkipReason::Away),
            _ if self.open >= self.capacity => Some(SkipReason::AtCapacity),
            _ => None,
        }
    }

    /// How many more conversations this agent can take now (0 when skipped).
    pub fn room(&self) -> i64 {
        if self.skip(false).is_some() {
            return 0;
        }
        (self.capacity - self.open).max(0)
    }

    fn considered(&self, skipped: Option<SkipReason>) -> Considered {
        Considered {
            agent_id: self.agent_id.clone(),
            presence: self.presence,
            open: self.open,
            capacity: self.capacity,
            skipped,
        }
    }
}

/// The facts of a conversation routing needs.
#[derive(Clone, Debug, Queryable)]
struct Facts {
    id: String,
    team_id: String,
    contact_id: String,
    channel: String,
    status: String,
    assignee_id: Option<String>,
    source: Option<String>,
    queued_at: Option<i64>,
    preferred_agent_id: Option<String>,
    last_message_preview: Option<String>,
}

fn facts(c: &mut DbConn, id: &str) -> Result<Facts, AppError> {
    conversations::table
        .find(id)
        .select((
            conversations::id,
            conversations::team_id,
            conversations::contact_id,
            conversations::channel,
            conversations::status,
            conversations::assignee_id,
            conversations::source,
            conversations::queued_at,
            conversations::preferred_agent_id,
            conversations::last_message_preview,
        ))
        .first::<Facts>(c)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no conversation {id}")))
}

/// Takes the team's routing lock and returns its settings (read under the lock).
fn lock_team(c: &mut DbConn, team_id: &str) -> Result<TeamRouting, AppError> {
    let n = diesel::update(teams::table.find(team_id))
        .set(teams::routing_lock.eq(teams::routing_lock + 1))
        .execute(c)?;
    if n == 0 {
        return Err(AppError::NotFound(format!("no team {team_id}")));
    }
    settings::load(c, team_id)
}

/// Takes the agent's routing lock and returns its current open count.
fn lock_agent(c: &mut DbConn, agent_id: &str) -> Result<i64, AppError> {
    diesel::update(agents::table.find(agent_id))
        .set(agents::routing_lock.eq(agents::routing_lock + 1))
        .execute(c)?;
    open_count(c, agent_id)
}

fn open_count(c: &mut DbConn, agent_id: &str) -> Result<i64, AppError> {
    Ok(conversations::table
        .filter(conversations::assignee_id.eq(agent_id))
        .filter(conversations::status.eq(OPEN))
        .select(count_star())
        .first(c)?)
}

/// An agent's capacity: its own, else `default_capacity`.
fn capacity_of(c: &mut DbConn, agent_id: &str, default_capacity: i32) -> Result<i64, AppError> {
    let own: Option<i32> = agents::table
        .find(agent_id)
        .select(agents::capacity)
        .first::<Option<i32>>(c)
        .optional()?
        .flatten();
    Ok(i64::from(own.unwrap_or(default_capacity)))
}

/// Every active member of the team with presence, load, capacity and whether they are
/// inside their working hours at `now` (epoch ms), ordered by id (the rotation order).
///
/// # Errors
/// Database errors.
pub fn candidates(
    c: &mut DbConn,
    team: &TeamRouting,
    presence: &PresenceMap,
    now: i64,
) -> Result<Vec<Candidate>, AppError> {
    let members: Vec<(String, String, String, Option<i32>)> = team_members::table
        .inner_join(agents::table)
        .filter(team_members::team_id.eq(&team.team_id))
        .filter(agents::active.eq(1))
        .select((agents::id, agents::name, agents::role, agents::capacity))
        .order(agents::id)
        .load(c)?;
    let ids: Vec<String> = members.iter().map(|m| m.0.clone()).collect();
    let counts: HashMap<String, i64> = conversations::table
        .filter(conversations::assignee_id.eq_any(&ids))
        .filter(conversations::status.eq(OPEN))
        .group_by(conversations::assignee_id)
        .select((conversations::assignee_id, count_star()))
        .load::<(Option<String>, i64)>(c)?
        .into_iter()
        .filter_map(|(id, n)| id.map(|id| (id, n)))
        .collect();
    let hours = agent_hours::for_agents(c, &ids)?;
    Ok(members
        .into_iter()
        .map(|(agent_id, name, role, cap)| Candidate {
            presence: presence
                .get(&agent_id)
                .copied()
                .unwrap_or(PresenceStatus::Offline),
            open: counts.get(&agent_id).copied().unwrap_or(0),
            capacity: i64::from(cap.unwrap_or(team.default_capacity)),
            off_hours: hours.get(&agent_id).is_some_and(|h| !h.is_working(now)),
            agent_id,
            name,
            role,
        })
        .collect())
}

/// Assigns an open, unassigned conversation. Returns false when it was not (any
/// more) open and unassigned.
fn assign_row(
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
struct Audit<'a> {
    conversation_id: &'a str,
    team_id: &'a str,
    kind: &'a str,
    agent_id: Option<&'a str>,
    actor_id: Option<&'a str>,
    via: Option<&'a str>,
    candidates: Vec<Considered>,
    note: Option<String>,
}

fn record(c: &mut DbConn, a: Audit<'_>, now: i64) -> Result<(), AppError> {
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

fn open_offer_of(c: &mut DbConn, conversation_id: &str) -> Result<Option<String>, AppError> {
    Ok(offers::table
        .filter(offers::conversation_id.eq(conversation_id))
        .filter(offers::status.eq(OPEN))
        .select(offers::id)
        .first::<String>(c)
        .optional()?)
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
fn assign_rotating(
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

fn enqueue(
    c: &mut DbConn,
    team: &TeamRouting,
    f: &Facts,
    considered: Vec<Considered>,
    now: i64,
    kind: &str,
) -> Result<Vec<Effect>, AppError> {
    if f.queued_at.is_some() {
        // Already waiting: its place in the line stays.
        return Ok(Vec::new());
    }
    diesel::update(conversations::table.find(&f.id))
        .set(conversations::queued_at.eq(now))
        .execute(c)?;
    record(
        c,
        Audit {
            conversation_id: &f.id,
            team_id: &team.team_id,
            kind,
            agent_id: None,
            actor_id: None,
            via: Some("queue"),
            candidates: considered,
            note: Some("nobody eligible: waiting in the team queue".into()),
        },
        now,
    )?;
    Ok(vec![Effect::Queued {
        team_id: team.team_id.clone(),
        conversation_id: f.id.clone(),
    }])
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

fn open_poll(
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

/// Assigns waiting conversations of a team, oldest first, while some agent is
/// eligible. Called whenever capacity may have appeared (an agent came online or
/// back from away, a conversation was resolved, unassigned or transferred away, a
/// capacity was raised).
///
/// # Errors
/// Database errors.
pub fn drain(
    c: &mut DbConn,
    team_id: &str,
    presence: &PresenceMap,
    now: i64,
) -> Result<Vec<Effect>, AppError> {
    write_transaction(c, |c| {
        let mut team = lock_team(c, team_id)?;
        if team.routing_mode == RoutingMode::Manual {
            return Ok(Vec::new());
        }
        drain_locked(c, &mut team, presence, now)
    })
}

/// The most waiting conversations one drain assigns.
const DRAIN_MAX: i64 = 500;

/// How many conversations the candidates can take between them now: the most one
/// drain can assign, since each assignment fills one slot of one eligible agent.
pub fn room(cands: &[Candidate]) -> i64 {
    cands.iter().map(Candidate::room).sum()
}

fn waiting_ids(c: &mut DbConn, team_id: &str, limit: i64) -> Result<Vec<String>, AppError> {
    Ok(conversations::table
        .filter(conversations::team_id.eq(team_id))
        .filter(conversations::status.eq(OPEN))
        .filter(conversations::assignee_id.is_null())
        .filter(conversations::queued_at.is_not_null())
        .order((conversations::queued_at.asc(), conversations::id.asc()))
        .select(conversations::id)
        .limit(limit)
        .load(c)?)
}

/// [`drain`]'s work, inside a transaction that already holds the team's lock.
fn drain_locked(
    c: &mut DbConn,
    team: &mut TeamRouting,
    presence: &PresenceMap,
    now: i64,
) -> Result<Vec<Effect>, AppError> {
    if waiting_ids(c, &team.team_id, 1)?.is_empty() {
        return Ok(Vec::new());
    }
    let cands = candidates(c, team, presence, now)?;
    drain_with(c, team, cands, now)
}

/// Assigns from the front of the queue with the candidates already read under the
/// team's lock. Reads only as many waiting conversations as the agents have room
/// for ([`room`]): a long queue that nobody can take from (everyone busy, off shift
/// or offline) costs one empty decision, not a read of the whole line per trigger.
fn drain_with(
    c: &mut DbConn,
    team: &mut TeamRouting,
    mut cands: Vec<Candidate>,
    now: i64,
) -> Result<Vec<Effect>, AppError> {
    let room = room(&cands).min(DRAIN_MAX);
    if room == 0 {
        return Ok(Vec::new());
    }
    let waiting = waiting_ids(c, &team.team_id, room)?;
    let mut effects = Vec::new();
    for id in waiting {
        if !cands.iter().any(|x| x.skip(false).is_none()) {
            break;
        }
        let f = facts(c, &id)?;
        let mut got = assign_rotating(c, team, &f, &mut cands, now, true, "queued")?;
        let assigned = got.iter().any(|e| matches!(e, Effect::Assigned { .. }));
        effects.append(&mut got);
        if !assigned {
            break;
        }
    }
    if !effects.is_empty() {
        effects.push(Effect::QueueChanged {
            team_id: team.team_id.clone(),
        });
    }
    Ok(effects)
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
fn cancel_offers(c: &mut DbConn, conversation_id: &str, now: i64) -> Result<Vec<Effect>, AppError> {
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

/// The queue of a team, oldest first: (conversation id, queued at ms, channel).
fn queue_of(
    c: &mut DbConn,
    team_id: &str,
    limit: i64,
) -> Result<Vec<(String, i64, String)>, AppError> {
    let rows: Vec<(String, Option<i64>, String)> = conversations::table
        .filter(conversations::team_id.eq(team_id))
        .filter(conversations::status.eq(OPEN))
        .filter(conversations::assignee_id.is_null())
        .filter(conversations::queued_at.is_not_null())
        .order((conversations::queued_at.asc(), conversations::id.asc()))
        .select((
            conversations::id,
            conversations::queued_at,
            conversations::channel,
        ))
        .limit(limit)
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(|(id, at, channel)| (id, at.unwrap_or(0), channel))
        .collect())
}

/// The positions of a team's waiting conversations (1: next), at most 500.
///
/// # Errors
/// Database errors.
pub fn queue_positions(c: &mut DbConn, team_id: &str) -> Result<Vec<(String, i64)>, AppError> {
    Ok(queue_of(c, team_id, 500)?
        .into_iter()
        .zip(1..)
        .map(|((id, _, _), pos)| (id, pos))
        .collect())
}

/// Where a conversation that just joined a team's queue stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueuePlace {
    /// Last in line, at this position (1: next): the others' positions are as
    /// they were.
    Last(i64),
    /// Not last (another node's clock put someone behind it) or no longer waiting:
    /// positions behind it moved, so the whole queue is announced again.
    Elsewhere,
}

/// Where `conversation_id` stands in team `team_id`'s queue, with two reads of
/// the waiting index (the line's last id, and how many wait) rather than the whole
/// line.
///
/// # Errors
/// Database errors.
pub fn queue_place(
    c: &mut DbConn,
    team_id: &str,
    conversation_id: &str,
) -> Result<QueuePlace, AppError> {
    let waiting = || {
        conversations::table
            .filter(conversations::team_id.eq(team_id))
            .filter(conversations::status.eq(OPEN))
            .filter(conversations::assignee_id.is_null())
            .filter(conversations::queued_at.is_not_null())
    };
    let last: Option<String> = waiting()
        .order((conversations::queued_at.desc(), conversations::id.desc()))
        .select(conversations::id)
        .first(c)
        .optional()?;
    if last.as_deref() != Some(conversation_id) {
        return Ok(QueuePlace::Elsewhere);
    }
    let n: i64 = waiting().count().get_result(c)?;
    Ok(QueuePlace::Last(n))
}

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

#[cfg(test)]
mod room_tests {
    use super::*;

    fn agent(presence: PresenceStatus, open: i64, capacity: i64, off_hours: bool) -> Candidate {
        Candidate {
            agent_id: "a".into(),
            name: "A".into(),
            role: "agent".into(),
            presence,
            open,
            capacity,
            off_hours,
        }
    }

    #[test]
    fn a_drain_reads_only_as_many_waiting_as_eligible_agents_can_take() {
        let team = [
            agent(PresenceStatus::Online, 3, 5, false),
            agent(PresenceStatus::Online, 5, 5, false),
            agent(PresenceStatus::Online, 7, 5, false),
            agent(PresenceStatus::Away, 0, 5, false),
            agent(PresenceStatus::Offline, 0, 5, false),
            agent(PresenceStatus::Online, 0, 5, true),
        ];
        assert_eq!(team[0].room(), 2);
        assert_eq!(team[1].room(), 0, "full");
        assert_eq!(team[2].room(), 0, "over capacity after a lowered limit");
        assert_eq!(
            room(&team),
            2,
            "away, offline and off-shift agents take nothing"
        );
        assert_eq!(
            room(&team[1..]),
            0,
            "nobody free: no read of the line at all"
        );
    }
}
