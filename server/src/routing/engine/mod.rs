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
//!
//! The engine is split by what a decision is about:
//!
//! - `assign`: automatic assignment — [`route`] (owner first, then round-robin or a
//!   poll), [`reopened`], and [`requeue_offline`] for an agent who stayed offline.
//! - `manual`: changes people make — [`manual_assign`] (assign, hand back,
//!   unassign), [`transfer`] to another team, and [`closed`] (resolved or pending).
//! - `offers`: polls — opening an offer, [`claim`], the escalation steps of
//!   [`expire_offer`], withdrawing offers, [`open_offers`] and [`open_offers_for`].
//! - `queue`: the team queue — joining it, [`drain`] from its front within
//!   [`room`], [`queue_positions`] and [`queue_place`].
//! - `audit`: the routing event every decision records, and [`audit()`] to read them.
//! - `workload`: a team's [`workload()`] snapshot.
//!
//! This module holds what they share: [`Effect`], [`Candidate`] and [`candidates`],
//! the facts of a conversation routing reads, and the team and agent locks.

use std::collections::HashMap;

use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::db::schema::{agents, conversations, team_members, teams};
use crate::db::DbConn;
use crate::error::AppError;
use crate::protocol::PresenceStatus;
use crate::store::agent_hours;

use super::settings::{self, TeamRouting};
use super::views::{Considered, OfferView, SkipReason};

mod assign;
mod audit;
mod manual;
mod offers;
mod queue;
mod workload;

pub use assign::{reopened, requeue_offline, route};
pub use audit::audit;
pub use manual::{closed, manual_assign, transfer};
pub use offers::{claim, expire_offer, open_offers, open_offers_for, Claimed};
pub use queue::{drain, queue_place, queue_positions, room, QueuePlace};
pub use workload::workload;

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
