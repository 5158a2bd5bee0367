//! Runs: enrolment when a trigger fires (inside the trigger's own transaction),
//! the stop on a customer reply, the no-reply trigger's silences, and the step
//! bookkeeping the runner commits together with each step's effect.

use diesel::prelude::*;

use super::AutomationRow;
use crate::automations::{RunStatus, Trigger, TriggerKind};
use crate::db::schema::{automation_runs as runs, automations, conversations};
use crate::db::{is_unique_violation, DbConn};
use crate::error::AppError;
use crate::model::new_id;
use crate::scheduler::{JobKind, NewJob};

pub use super::RunRow;

/// How far back the no-reply trigger looks for silences, ms (beyond the
/// automation's own silence): a sweep that was down for a while still catches up,
/// an old conversation does not start a sequence years late.
const SILENCE_LOOKBACK_MS: i64 = 7 * 24 * 3_600_000;

// ------------------------------------------------------------------ enrolment

/// Who a trigger fired for.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// The team whose automations may start.
    pub team_id: &'a str,
    /// The contact.
    pub contact_id: &'a str,
    /// The contact's lead, when a lead trigger fired.
    pub lead_id: Option<&'a str>,
}

/// Enrols `who` in every enabled automation of its team with trigger kind `kind`
/// for which `fires` holds, unless that automation already has an active run for
/// the contact. `key` names the event (unique per automation: a trigger seen
/// twice enrols once). The first step's job is due at `now`; the caller nudges the
/// scheduler after its commit. Runs inside the caller's transaction. Returns how
/// many runs started.
///
/// # Errors
/// Database errors.
pub fn enrol(
    c: &mut DbConn,
    kind: TriggerKind,
    fires: impl Fn(&Trigger) -> bool,
    who: &Subject<'_>,
    key: &str,
    now: i64,
) -> Result<usize, AppError> {
    let candidates: Vec<AutomationRow> = automations::table
        .filter(automations::team_id.eq(who.team_id))
        .filter(automations::trigger_kind.eq(kind.as_str()))
        .filter(automations::enabled.eq(true))
        .select(AutomationRow::as_select())
        .load(c)?;
    let mut started = 0;
    for a in candidates {
        if a.trigger().is_ok_and(|t| fires(&t)) {
            started += enrol_one(c, &a, who, key, now)?;
        }
    }
    Ok(started)
}

/// Enrols `who` in automation `a` (see [`enrol`]); 1 when a run started, 0 when
/// the contact already has an active run of it or `key` was seen before.
///
/// # Errors
/// Database errors.
pub fn enrol_one(
    c: &mut DbConn,
    a: &AutomationRow,
    who: &Subject<'_>,
    key: &str,
    now: i64,
) -> Result<usize, AppError> {
    let busy: i64 = runs::table
        .filter(runs::automation_id.eq(&a.id))
        .filter(runs::contact_id.eq(who.contact_id))
        .filter(runs::status.eq(RunStatus::Active.as_str()))
        .count()
        .get_result(c)?;
    if busy > 0 {
        return Ok(0);
    }
    let run = RunRow {
        id: new_id(),
        automation_id: a.id.clone(),
        team_id: a.team_id.clone(),
        contact_id: who.contact_id.into(),
        lead_id: who.lead_id.map(str::to_string),
        enrol_key: key.into(),
        status: RunStatus::Active.as_str().into(),
        step: 0,
        stop_on_reply: a.stop_on_reply,
        reason: None,
        next_at: None,
        created_at: now,
        updated_at: now,
    };
    let inserted = c.transaction(|c| diesel::insert_into(runs::table).values(&run).execute(c));
    match inserted {
        Ok(_) => {
            // Due whatever the clock reads: the trigger's time is the system
            // clock's, the scheduler's may be a test's manual one.
            schedule_step(c, &run.id, 0, crate::scheduler::DUE_NOW)?;
            Ok(1)
        }
        // The same event enrolled it already.
        Err(e) if is_unique_violation(&e) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Schedules the job that runs step `step` of run `run_id` at `due_at`.
///
/// # Errors
/// Database errors.
pub fn schedule_step(c: &mut DbConn, run_id: &str, step: i32, due_at: i64) -> Result<(), AppError> {
    crate::scheduler::schedule(
        c,
        NewJob {
            kind: JobKind::AutomationStep,
            key: format!("{run_id}:{step}"),
            due_at,
            payload: serde_json::Value::Null,
        },
    )?;
    Ok(())
}

/// The lead-trigger hook of `store::leads::event`: a `lead_created` or
/// `stage_changed` event (id `event_id`, facts `detail`) enrols the lead's
/// contact. Other kinds cost nothing. Returns how many runs started.
///
/// # Errors
/// Database errors.
pub fn on_lead_event(
    c: &mut DbConn,
    lead_id: &str,
    kind: &str,
    detail: &serde_json::Value,
    event_id: &str,
    now: i64,
) -> Result<usize, AppError> {
    let (trigger, stage) = match kind {
        "lead_created" => (TriggerKind::LeadCreated, None),
        "stage_changed" => (
            TriggerKind::StageEntered,
            detail.get("to").and_then(|v| v.as_str()),
        ),
        _ => return Ok(0),
    };
    let lead = crate::store::leads::row(c, lead_id)?;
    let who = Subject {
        team_id: &lead.team_id,
        contact_id: &lead.contact_id,
        lead_id: Some(lead_id),
    };
    let fires = |t: &Trigger| match t {
        Trigger::LeadCreated => true,
        Trigger::StageEntered { stage: s } => Some(s.as_str()) == stage,
        _ => false,
    };
    enrol(
        c,
        trigger,
        fires,
        &who,
        &format!("lead_event:{event_id}"),
        now,
    )
}

/// The tag-trigger hook of `store::tags`: tag `tag_id` was just put on
/// `contact_id`; enrols it in the tag automations of every team it has a
/// conversation in.
///
/// # Errors
/// Database errors.
pub fn on_tag_added(
    c: &mut DbConn,
    contact_id: &str,
    tag_id: &str,
    now: i64,
) -> Result<(), AppError> {
    let teams: Vec<String> = automations::table
        .filter(automations::trigger_kind.eq(TriggerKind::TagAdded.as_str()))
        .filter(automations::enabled.eq(true))
        .filter(
            automations::team_id.eq_any(
                conversations::table
                    .filter(conversations::contact_id.eq(contact_id))
                    .select(conversations::team_id),
            ),
        )
        .select(automations::team_id)
        .distinct()
        .load(c)?;
    let fires = |t: &Trigger| matches!(t, Trigger::TagAdded { tag_id: id } if id == tag_id);
    let key = format!("tag:{tag_id}:{contact_id}:{now}");
    for team_id in teams {
        let who = Subject {
            team_id: &team_id,
            contact_id,
            lead_id: None,
        };
        enrol(c, TriggerKind::TagAdded, fires, &who, &key, now)?;
    }
    Ok(())
}

/// The inbound pipeline's `StopSequences` stage: a customer message from
/// `contact_id` stops the contact's runs that are waiting and stop on reply.
/// Returns how many stopped.
///
/// # Errors
/// Database errors.
pub fn stop_on_reply(c: &mut DbConn, contact_id: &str, now: i64) -> Result<usize, AppError> {
    Ok(diesel::update(
        runs::table
            .filter(runs::contact_id.eq(contact_id))
            .filter(runs::status.eq(RunStatus::Active.as_str()))
            .filter(runs::stop_on_reply.eq(true))
            .filter(runs::next_at.is_not_null()),
    )
    .set((
        runs::status.eq(RunStatus::Stopped.as_str()),
        runs::reason.eq("customer replied"),
        runs::next_at.eq(None::<i64>),
        runs::updated_at.eq(now),
    ))
    .execute(c)?)
}

/// The conversations a no-reply automation counts as silent at `now` (see
/// [`crate::automations::silent`]) that have not enrolled it yet: the contact,
/// and the enrolment key (conversation and the customer's last message time, so
/// each customer message starts at most one run).
///
/// # Errors
/// Database errors.
pub fn silences(
    c: &mut DbConn,
    a: &AutomationRow,
    hours: u32,
    now: i64,
) -> Result<Vec<(String, String)>, AppError> {
    let latest = now - i64::from(hours) * 3_600_000;
    let earliest = a
        .enabled_at
        .unwrap_or(now)
        .max(latest - SILENCE_LOOKBACK_MS);
    type Row = (String, String, Option<i64>, Option<i64>, Option<String>);
    let rows: Vec<Row> = conversations::table
        .filter(conversations::team_id.eq(&a.team_id))
        .filter(conversations::number_id.is_not_null())
        .filter(conversations::last_message_at.between(earliest, latest))
        // The customer wrote last: not a silence (the rest is checked below).
        .filter(conversations::last_message_sender.ne("guest"))
        .select((
            conversations::id,
            conversations::contact_id,
            conversations::last_message_at,
            conversations::last_inbound_at,
            conversations::last_message_sender,
        ))
        .load(c)?;
    let candidates: Vec<(String, String)> = rows
        .into_iter()
        .filter(|(_, _, last, inbound, sender)| {
            let team_wrote_last = sender.as_deref().is_some_and(|s| s != "guest");
            last.is_some_and(|l| {
                crate::automations::silent(hours, l, *inbound, team_wrote_last, now)
            })
        })
        .map(|(id, contact, _, inbound, _)| {
            (contact, format!("no_reply:{id}:{}", inbound.unwrap_or(0)))
        })
        .collect();
    let keys: Vec<&str> = candidates.iter().map(|(_, k)| k.as_str()).collect();
    let mut seen: Vec<String> = Vec::new();
    for chunk in keys.chunks(500) {
        seen.extend(
            runs::table
                .filter(runs::automation_id.eq(&a.id))
                .filter(runs::enrol_key.eq_any(chunk))
                .select(runs::enrol_key)
                .load::<String>(c)?,
        );
    }
    Ok(candidates
        .into_iter()
        .filter(|(_, k)| !seen.contains(k))
        .collect())
}

/// The enabled no-reply automations.
///
/// # Errors
/// Database errors.
pub fn no_reply_automations(c: &mut DbConn) -> Result<Vec<AutomationRow>, AppError> {
    Ok(automations::table
        .filter(automations::trigger_kind.eq(TriggerKind::NoReply.as_str()))
        .filter(automations::enabled.eq(true))
        .select(AutomationRow::as_select())
        .load(c)?)
}

// ------------------------------------------------------------------ runs

/// A run and its automation, if both still exist.
///
/// # Errors
/// Database errors.
pub fn run(c: &mut DbConn, run_id: &str) -> Result<Option<(RunRow, AutomationRow)>, AppError> {
    Ok(runs::table
        .inner_join(automations::table)
        .filter(runs::id.eq(run_id))
        .select((RunRow::as_select(), AutomationRow::as_select()))
        .first(c)
        .optional()?)
}

/// Moves an active run from step `from` to `to`, with `next_at` (waiting) and a
/// note. Returns false when the run is no longer active at `from` (stopped, or
/// another node moved it): the caller then does nothing.
///
/// # Errors
/// Database errors.
pub fn advance(
    c: &mut DbConn,
    run_id: &str,
    from: i32,
    to: i32,
    next_at: Option<i64>,
    note: Option<&str>,
    now: i64,
) -> Result<bool, AppError> {
    let to = Move {
        step: to,
        status: RunStatus::Active,
        next_at,
        note,
    };
    moved(c, run_id, from, &to, now)
}

/// Ends an active run at step `at` with `status` (done, stopped or failed) and a
/// reason. Returns false when it was no longer active there.
///
/// # Errors
/// Database errors.
pub fn end(
    c: &mut DbConn,
    run_id: &str,
    at: i32,
    status: RunStatus,
    reason: Option<&str>,
    now: i64,
) -> Result<bool, AppError> {
    let to = Move {
        step: at,
        status,
        next_at: None,
        note: reason,
    };
    moved(c, run_id, at, &to, now)
}

/// Where a run goes from its current step.
struct Move<'a> {
    step: i32,
    status: RunStatus,
    next_at: Option<i64>,
    /// Kept as the run's reason; `None` keeps the one it has.
    note: Option<&'a str>,
}

/// The one conditional UPDATE behind [`advance`] and [`end`]: only an active run
/// still at step `from` moves, so a step job run twice finds nothing to move.
fn moved(
    c: &mut DbConn,
    run_id: &str,
    from: i32,
    to: &Move<'_>,
    now: i64,
) -> Result<bool, AppError> {
    let target = runs::table
        .filter(runs::id.eq(run_id))
        .filter(runs::step.eq(from))
        .filter(runs::status.eq(RunStatus::Active.as_str()));
    let common = (
        runs::step.eq(to.step),
        runs::status.eq(to.status.as_str()),
        runs::next_at.eq(to.next_at),
        runs::updated_at.eq(now),
    );
    let n = match to.note {
        Some(note) => diesel::update(target)
            .set((common, runs::reason.eq(note)))
            .execute(c)?,
        None => diesel::update(target).set(common).execute(c)?,
    };
    Ok(n > 0)
}

/// The contact's newest WhatsApp conversation in the team: id, channel, number.
///
/// # Errors
/// Database errors.
pub fn whatsapp_conversation(
    c: &mut DbConn,
    contact_id: &str,
    team_id: &str,
) -> Result<Option<(String, String, String)>, AppError> {
    let row: Option<(String, String, Option<String>)> = conversations::table
        .filter(conversations::contact_id.eq(contact_id))
        .filter(conversations::team_id.eq(team_id))
        .filter(conversations::number_id.is_not_null())
        .order((conversations::created_at.desc(), conversations::id.desc()))
        .select((
            conversations::id,
            conversations::channel,
            conversations::number_id,
        ))
        .first(c)
        .optional()?;
    Ok(row.and_then(|(id, channel, number)| Some((id, channel, number?))))
}
