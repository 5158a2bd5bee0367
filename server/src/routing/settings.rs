//! Per-team routing settings: mode, capacity, offer timeout, escalation, grace and
//! requeue delay (`docs/routing.md`), stored on the `teams` row.

use std::sync::LazyLock;
use std::time::Duration;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::teams;
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::store::team_cache::TeamCache;

/// How a team hands out new conversations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingMode {
    /// The next eligible agent in a stored rotation.
    RoundRobin,
    /// An offer to every eligible agent at once; the first claim wins.
    Poll,
    /// No automatic assignment: the whole team sees unassigned conversations and
    /// agents take them themselves (auto-assignment switched off).
    Manual,
}

impl RoutingMode {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::Poll => "poll",
            Self::Manual => "manual",
        }
    }

    /// Parses a stored or submitted name.
    ///
    /// # Errors
    /// [`AppError::Validation`] for anything else.
    pub fn parse(s: &str) -> Result<Self, AppError> {
        match s {
            "round_robin" => Ok(Self::RoundRobin),
            "poll" => Ok(Self::Poll),
            "manual" => Ok(Self::Manual),
            other => Err(AppError::Validation(format!(
                "Choose how conversations are handed out: round_robin, poll or manual (not {other:?})."
            ))),
        }
    }
}

/// What happens, in order, each time a poll offer's round times out unclaimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationStep {
    /// Offer to every team member with a live session (away ones too) under
    /// capacity, for another round.
    Widen,
    /// Tell the team leads (`routing_alert` frame) and keep the offer open another round.
    AlertLeads,
    /// Close the offer and assign by round-robin (or queue when nobody is eligible).
    RoundRobin,
}

impl EscalationStep {
    fn as_str(self) -> &'static str {
        match self {
            Self::Widen => "widen",
            Self::AlertLeads => "alert_leads",
            Self::RoundRobin => "round_robin",
        }
    }

    fn parse(s: &str) -> Result<Self, AppError> {
        match s.trim() {
            "widen" => Ok(Self::Widen),
            "alert_leads" => Ok(Self::AlertLeads),
            "round_robin" => Ok(Self::RoundRobin),
            other => Err(AppError::Validation(format!(
                "An escalation step can be widen, alert_leads or round_robin (not {other:?})."
            ))),
        }
    }
}

/// A team's routing settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRouting {
    /// Team id.
    pub team_id: String,
    /// Team name.
    pub team_name: String,
    /// Round-robin or poll.
    pub routing_mode: RoutingMode,
    /// Open conversations an agent may hold when it has no capacity of its own.
    pub default_capacity: i32,
    /// How long each poll round waits for a claim, ms.
    pub offer_timeout_ms: i64,
    /// Steps taken one per timed-out round; when they run out the conversation is queued.
    pub escalation: Vec<EscalationStep>,
    /// Grace after an agent's last session closes before it counts as offline, ms
    /// (null: the server's `SWITCHBOARD_PRESENCE_GRACE`).
    pub offline_grace_ms: Option<i64>,
    /// How long an offline agent keeps its unanswered conversations before they
    /// return to the queue, ms.
    pub requeue_delay_ms: i64,
    /// The last agent round-robin chose (the rotation continues after it).
    #[serde(skip)]
    pub rr_cursor: Option<String>,
}

impl TeamRouting {
    /// The poll round length.
    pub fn offer_timeout(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.offer_timeout_ms).unwrap_or(0))
    }

    /// The requeue delay.
    pub fn requeue_delay(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.requeue_delay_ms).unwrap_or(0))
    }
}

type TeamRoutingRow = (
    String,
    String,
    String,
    i32,
    i64,
    String,
    Option<i64>,
    i64,
    Option<String>,
);

/// The `teams` columns a [`TeamRoutingRow`] is read from.
const COLUMNS: (
    teams::id,
    teams::name,
    teams::routing_mode,
    teams::default_capacity,
    teams::offer_timeout_ms,
    teams::escalation,
    teams::offline_grace_ms,
    teams::requeue_delay_ms,
    teams::rr_cursor,
) = (
    teams::id,
    teams::name,
    teams::routing_mode,
    teams::default_capacity,
    teams::offer_timeout_ms,
    teams::escalation,
    teams::offline_grace_ms,
    teams::requeue_delay_ms,
    teams::rr_cursor,
);

fn from_row(row: TeamRoutingRow) -> Result<TeamRouting, AppError> {
    let (team_id, team_name, mode, cap, timeout, escalation, grace, requeue, cursor) = row;
    Ok(TeamRouting {
        team_id,
        team_name,
        routing_mode: RoutingMode::parse(&mode)?,
        default_capacity: cap,
        offer_timeout_ms: timeout,
        escalation: parse_escalation(&escalation)?,
        offline_grace_ms: grace,
        requeue_delay_ms: requeue,
        rr_cursor: cursor,
    })
}

fn parse_escalation(s: &str) -> Result<Vec<EscalationStep>, AppError> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(EscalationStep::parse)
        .collect()
}

/// Reads a team's settings.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn load(conn: &mut DbConn, team_id: &str) -> Result<TeamRouting, AppError> {
    let row = teams::table
        .find(team_id)
        .select(COLUMNS)
        .first::<TeamRoutingRow>(conn)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no team {team_id}")))?;
    from_row(row)
}

/// A team's routing mode from this node's cache when read within
/// [`crate::store::team_cache::TTL`]: what a customer message's routing trigger
/// checks first, so a manual team's messages cost no read of the team row. A
/// decision that acts re-reads the settings under the team lock ([`load`]), so the
/// cache only ever skips work: after a switch away from manual on another node,
/// that node's messages are left for agents to take for up to the TTL.
///
/// # Errors
/// As [`load`]; nothing is cached then.
pub fn mode_cached(conn: &mut DbConn, team_id: &str) -> Result<RoutingMode, AppError> {
    MODES
        .get(team_id, || load(conn, team_id).map(|t| t.routing_mode))
        .map(|mode| *mode)
}

/// A team's settings changed (after the commit): the next [`mode_cached`] on this
/// node reads them again.
pub fn changed(team_id: &str) {
    MODES.invalidate(team_id);
}

static MODES: LazyLock<TeamCache<RoutingMode>> = LazyLock::new(TeamCache::default);

/// Every team's settings.
///
/// # Errors
/// Database errors.
pub fn load_all(conn: &mut DbConn) -> Result<Vec<TeamRouting>, AppError> {
    teams::table
        .select(COLUMNS)
        .order(teams::id)
        .load::<TeamRoutingRow>(conn)?
        .into_iter()
        .map(from_row)
        .collect()
}

/// A change to a team's settings (`PUT /api/teams/{id}/routing`); absent fields stay.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingUpdate {
    /// New mode.
    pub routing_mode: Option<RoutingMode>,
    /// 1 to 1000.
    pub default_capacity: Option<i32>,
    /// 1 000 ms to 1 day.
    pub offer_timeout_ms: Option<i64>,
    /// Up to 6 steps.
    pub escalation: Option<Vec<EscalationStep>>,
    /// 0 to 1 day; `null` is not distinguishable from absent here, so the server
    /// default is restored with `reset_offline_grace: true`.
    pub offline_grace_ms: Option<i64>,
    /// Restore the server's default grace.
    #[serde(default)]
    pub reset_offline_grace: bool,
    /// 0 to 7 days.
    pub requeue_delay_ms: Option<i64>,
}

const DAY_MS: i64 = 86_400_000;

/// A setting's name as a person reads it: `offer_timeout_ms` → "offer timeout (ms)".
fn label(name: &str) -> String {
    match name.strip_suffix("_ms") {
        Some(n) => format!("{} (ms)", n.replace('_', " ")),
        None => name.replace('_', " "),
    }
}

fn in_range(name: &str, v: i64, lo: i64, hi: i64) -> Result<(), AppError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(AppError::Validation(format!(
            "The {} must be between {lo} and {hi}.",
            label(name)
        )))
    }
}

/// Applies `update` to the team and returns the settings now stored.
///
/// # Errors
/// [`AppError::Validation`] for out-of-range values; [`AppError::NotFound`];
/// database errors.
pub fn update(
    conn: &mut DbConn,
    team_id: &str,
    update: &RoutingUpdate,
) -> Result<TeamRouting, AppError> {
    if let Some(v) = update.default_capacity {
        in_range("default_capacity", i64::from(v), 1, 1000)?;
    }
    if let Some(v) = update.offer_timeout_ms {
        in_range("offer_timeout_ms", v, 1000, DAY_MS)?;
    }
    if let Some(v) = update.offline_grace_ms {
        in_range("offline_grace_ms", v, 0, DAY_MS)?;
    }
    if let Some(v) = update.requeue_delay_ms {
        in_range("requeue_delay_ms", v, 0, 7 * DAY_MS)?;
    }
    if let Some(steps) = &update.escalation {
        if steps.len() > 6 {
            return Err(AppError::Validation(
                "There can be at most 6 escalation steps.".into(),
            ));
        }
    }
    write_transaction::<_, AppError, _>(conn, |c| {
        let current = load(c, team_id)?;
        let escalation = update
            .escalation
            .clone()
            .unwrap_or(current.escalation)
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let grace = if update.reset_offline_grace {
            None
        } else {
            update.offline_grace_ms.or(current.offline_grace_ms)
        };
        diesel::update(teams::table.find(team_id))
            .set((
                teams::routing_mode
                    .eq(update.routing_mode.unwrap_or(current.routing_mode).as_str()),
                teams::default_capacity
                    .eq(update.default_capacity.unwrap_or(current.default_capacity)),
                teams::offer_timeout_ms
                    .eq(update.offer_timeout_ms.unwrap_or(current.offer_timeout_ms)),
                teams::escalation.eq(escalation),
                teams::offline_grace_ms.eq(grace),
                teams::requeue_delay_ms
                    .eq(update.requeue_delay_ms.unwrap_or(current.requeue_delay_ms)),
            ))
            .execute(c)?;
        load(c, team_id)
    })
}
