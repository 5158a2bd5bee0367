//! The team queue: joining it ([`enqueue`]), [`drain`]ing it from the front while
//! agents have [`room`], and the positions announced to waiting contacts
//! ([`queue_positions`], [`queue_place`]).

use diesel::prelude::*;

use crate::db::schema::conversations;
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::routing::settings::{RoutingMode, TeamRouting};
use crate::routing::views::Considered;

use super::assign::assign_rotating;
use super::audit::{record, Audit};
use super::{candidates, facts, lock_team, Candidate, Effect, Facts, PresenceMap, OPEN};

pub(super) fn enqueue(
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

pub(super) fn waiting_ids(
    c: &mut DbConn,
    team_id: &str,
    limit: i64,
) -> Result<Vec<String>, AppError> {
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
pub(super) fn drain_with(
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

/// The queue of a team, oldest first: (conversation id, queued at ms, channel).
pub(super) fn queue_of(
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

#[cfg(test)]
mod room_tests {
    use super::*;
    use crate::protocol::PresenceStatus;

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
