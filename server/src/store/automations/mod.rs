//! Automations in the database (migration `2026-12-06-000005_automations`): the
//! teams' sequences, the runs of contacts going through them, enrolment when a
//! trigger fires (inside the trigger's own transaction) and the step bookkeeping
//! the runner commits together with each step's effect.
//!
//! The rules are in [`crate::automations`]; this module stores what they decided:
//! the automations here, enrolment and runs in [`runs`].

pub mod runs;

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;

use crate::automations::presets;
use crate::automations::{Known, RunStatus, Step, Trigger};
use crate::db::schema::{automation_runs, automations, contacts, teams};
use crate::db::{is_unique_violation, DbConn};
use crate::error::AppError;
use crate::model::new_id;

/// Runs listed on an automation's page.
pub const RECENT_RUNS: i64 = 50;

/// A row of `automations`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = automations)]
pub struct AutomationRow {
    /// Id.
    pub id: String,
    /// Owning team.
    pub team_id: String,
    /// Name.
    pub name: String,
    /// Preset key for the shipped defaults.
    pub preset: Option<String>,
    /// Whether triggers enrol contacts.
    pub enabled: bool,
    /// When it was last turned on, epoch ms.
    pub enabled_at: Option<i64>,
    /// [`TriggerKind`] name.
    pub trigger_kind: String,
    /// [`Trigger`] as JSON.
    pub trigger_spec: String,
    /// Whether a customer message stops a waiting run.
    pub stop_on_reply: bool,
    /// `[Step]` as JSON.
    pub steps: String,
    /// Who made it (`None` for presets).
    pub created_by: Option<String>,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

impl AutomationRow {
    /// Its trigger.
    ///
    /// # Errors
    /// [`AppError::Internal`] for a row that does not parse (written by hand).
    pub fn trigger(&self) -> Result<Trigger, AppError> {
        serde_json::from_str(&self.trigger_spec).map_err(AppError::internal)
    }

    /// Its steps.
    ///
    /// # Errors
    /// [`AppError::Internal`] for a row that does not parse.
    pub fn steps(&self) -> Result<Vec<Step>, AppError> {
        serde_json::from_str(&self.steps).map_err(AppError::internal)
    }

    /// A new, disabled automation.
    ///
    /// # Errors
    /// [`AppError::Internal`] when the values do not serialise.
    pub fn new(
        team_id: &str,
        name: &str,
        trigger: &Trigger,
        steps: &[Step],
        created_by: Option<String>,
        now: i64,
    ) -> Result<Self, AppError> {
        Ok(Self {
            id: new_id(),
            team_id: team_id.into(),
            name: name.trim().into(),
            preset: None,
            enabled: false,
            enabled_at: None,
            trigger_kind: trigger.kind().as_str().into(),
            trigger_spec: serde_json::to_string(trigger).map_err(AppError::internal)?,
            stop_on_reply: true,
            steps: serde_json::to_string(steps).map_err(AppError::internal)?,
            created_by,
            created_at: now,
            updated_at: now,
        })
    }
}

/// A row of `automation_runs`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = automation_runs)]
pub struct RunRow {
    /// Id.
    pub id: String,
    /// The automation.
    pub automation_id: String,
    /// The automation's team.
    pub team_id: String,
    /// Who goes through it.
    pub contact_id: String,
    /// The contact's lead when enrolled by a lead trigger.
    pub lead_id: Option<String>,
    /// What enrolled it (unique per automation).
    pub enrol_key: String,
    /// [`RunStatus`] name.
    pub status: String,
    /// The next step to run (0-based).
    pub step: i32,
    /// Copied from the automation at enrolment.
    pub stop_on_reply: bool,
    /// Why it stopped or failed, or the last skipped step's reason.
    pub reason: Option<String>,
    /// While waiting: when the next step is due, epoch ms.
    pub next_at: Option<i64>,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

/// How many runs of an automation are in each status.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct RunCounts {
    /// Active.
    pub active: i64,
    /// Done.
    pub done: i64,
    /// Stopped.
    pub stopped: i64,
    /// Failed.
    pub failed: i64,
}

/// A run as an automation's page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// Run id.
    pub id: String,
    /// Contact.
    pub contact_id: String,
    /// The contact's name.
    pub contact_name: Option<String>,
    /// Status.
    pub status: RunStatus,
    /// Next step (0-based).
    pub step: i32,
    /// Why it stopped or failed, or a skipped step's reason.
    pub reason: Option<String>,
    /// When the next step is due (RFC 3339), while waiting.
    pub next_at: Option<String>,
    /// RFC 3339.
    pub updated_at: String,
}

// ------------------------------------------------------------------ automations

/// Inserts an automation.
///
/// # Errors
/// Database errors.
pub fn insert(c: &mut DbConn, row: &AutomationRow) -> Result<(), AppError> {
    diesel::insert_into(automations::table)
        .values(row)
        .execute(c)?;
    Ok(())
}

/// One automation.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn get(c: &mut DbConn, id: &str) -> Result<AutomationRow, AppError> {
    automations::table
        .find(id)
        .select(AutomationRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::NotFound("no such automation".into()))
}

/// The automations of `team_ids` (every team when `None`), by team and name.
///
/// # Errors
/// Database errors.
pub fn list(c: &mut DbConn, team_ids: Option<&[String]>) -> Result<Vec<AutomationRow>, AppError> {
    let mut q = automations::table
        .select(AutomationRow::as_select())
        .order((
            automations::team_id,
            automations::created_at,
            automations::id,
        ))
        .into_boxed();
    if let Some(ids) = team_ids {
        q = q.filter(automations::team_id.eq_any(ids.to_vec()));
    }
    Ok(q.load(c)?)
}

/// Saves name, trigger, stop-on-reply and steps.
///
/// # Errors
/// Database errors.
pub fn save(c: &mut DbConn, row: &AutomationRow) -> Result<(), AppError> {
    diesel::update(automations::table.find(&row.id))
        .set((
            automations::name.eq(&row.name),
            automations::trigger_kind.eq(&row.trigger_kind),
            automations::trigger_spec.eq(&row.trigger_spec),
            automations::stop_on_reply.eq(row.stop_on_reply),
            automations::steps.eq(&row.steps),
            automations::updated_at.eq(row.updated_at),
        ))
        .execute(c)?;
    Ok(())
}

/// Turns an automation on or off. Turning it off stops its active runs; their
/// pending step jobs find them stopped and do nothing. Returns the runs stopped.
///
/// # Errors
/// Database errors.
pub fn set_enabled(c: &mut DbConn, id: &str, on: bool, now: i64) -> Result<usize, AppError> {
    diesel::update(automations::table.find(id))
        .set((
            automations::enabled.eq(on),
            automations::enabled_at.eq(on.then_some(now)),
            automations::updated_at.eq(now),
        ))
        .execute(c)?;
    if on {
        return Ok(0);
    }
    stop_runs(c, id, "automation turned off", now)
}

/// Deletes an automation and its runs.
///
/// # Errors
/// Database errors.
pub fn delete(c: &mut DbConn, id: &str) -> Result<(), AppError> {
    diesel::delete(automation_runs::table.filter(automation_runs::automation_id.eq(id)))
        .execute(c)?;
    diesel::delete(automations::table.find(id)).execute(c)?;
    Ok(())
}

fn stop_runs(c: &mut DbConn, automation_id: &str, why: &str, now: i64) -> Result<usize, AppError> {
    Ok(diesel::update(
        automation_runs::table
            .filter(automation_runs::automation_id.eq(automation_id))
            .filter(automation_runs::status.eq(RunStatus::Active.as_str())),
    )
    .set((
        automation_runs::status.eq(RunStatus::Stopped.as_str()),
        automation_runs::reason.eq(why),
        automation_runs::next_at.eq(None::<i64>),
        automation_runs::updated_at.eq(now),
    ))
    .execute(c)?)
}

/// Run counts per automation of `ids` (one grouped query).
///
/// # Errors
/// Database errors.
pub fn counts(c: &mut DbConn, ids: &[String]) -> Result<HashMap<String, RunCounts>, AppError> {
    let rows: Vec<(String, String, i64)> = automation_runs::table
        .filter(automation_runs::automation_id.eq_any(ids))
        .group_by((automation_runs::automation_id, automation_runs::status))
        .select((
            automation_runs::automation_id,
            automation_runs::status,
            diesel::dsl::count_star(),
        ))
        .load(c)?;
    let mut out: HashMap<String, RunCounts> = HashMap::new();
    for (id, status, n) in rows {
        let e = out.entry(id).or_default();
        match RunStatus::parse(&status) {
            Some(RunStatus::Active) => e.active = n,
            Some(RunStatus::Done) => e.done = n,
            Some(RunStatus::Stopped) => e.stopped = n,
            Some(RunStatus::Failed) => e.failed = n,
            None => {}
        }
    }
    Ok(out)
}

/// The newest runs of an automation with their contacts' names.
///
/// # Errors
/// Database errors.
pub fn recent_runs(c: &mut DbConn, automation_id: &str) -> Result<Vec<RunView>, AppError> {
    let rows: Vec<(RunRow, Option<String>)> = automation_runs::table
        .inner_join(contacts::table.on(contacts::id.eq(automation_runs::contact_id)))
        .filter(automation_runs::automation_id.eq(automation_id))
        .order((
            automation_runs::updated_at.desc(),
            automation_runs::id.desc(),
        ))
        .limit(RECENT_RUNS)
        .select((RunRow::as_select(), contacts::name))
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(|(r, name)| RunView {
            status: RunStatus::parse(&r.status).unwrap_or(RunStatus::Failed),
            next_at: r.next_at.map(crate::clock::rfc3339),
            updated_at: crate::clock::rfc3339(r.updated_at),
            id: r.id,
            contact_id: r.contact_id,
            contact_name: name,
            step: r.step,
            reason: r.reason,
        })
        .collect())
}

/// What team `team_id` has that a sequence may name: its pipeline's stage keys
/// and every tag (tags are shared by all teams).
///
/// # Errors
/// Database errors.
pub fn known(c: &mut DbConn, team_id: &str) -> Result<Known, AppError> {
    let stages = crate::store::leads::config(c, team_id)?
        .stages
        .into_iter()
        .map(|s| s.key)
        .collect();
    let tags = crate::db::schema::tags::table
        .select(crate::db::schema::tags::id)
        .load::<String>(c)?
        .into_iter()
        .collect();
    Ok(Known { stages, tags })
}

/// Makes sure team `team_id` has the shipped defaults ([`presets::for_team`]),
/// disabled. Idempotent (unique per team and preset). Presets cannot be deleted
/// (`http::automations` refuses), only edited or left off, so this never brings
/// back one a team removed.
///
/// # Errors
/// Database errors.
pub fn ensure_presets(c: &mut DbConn, team_id: &str, now: i64) -> Result<(), AppError> {
    let have: Vec<Option<String>> = automations::table
        .filter(automations::team_id.eq(team_id))
        .filter(automations::preset.is_not_null())
        .select(automations::preset)
        .load(c)?;
    let stages: Vec<String> = crate::store::leads::config(c, team_id)?
        .stages
        .into_iter()
        .map(|s| s.key)
        .collect();
    for p in presets::for_team(&stages) {
        if have.iter().flatten().any(|k| k == p.key) {
            continue;
        }
        let mut row = AutomationRow::new(team_id, p.name, &p.trigger, &p.steps, None, now)?;
        row.preset = Some(p.key.into());
        let inserted = c.transaction(|c| {
            diesel::insert_into(automations::table)
                .values(&row)
                .execute(c)
        });
        match inserted {
            // Another node made it meanwhile.
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// [`ensure_presets`] for every team (at start).
///
/// # Errors
/// Database errors.
pub fn ensure_presets_all(c: &mut DbConn, now: i64) -> Result<(), AppError> {
    let ids: Vec<String> = teams::table.select(teams::id).load(c)?;
    for id in ids {
        ensure_presets(c, &id, now)?;
    }
    Ok(())
}
