//! The automation runner: the scheduler's handlers for
//! [`crate::scheduler::JobKind::AutomationStep`] (one step of one run, keyed `{run}:{step}`) and
//! [`crate::scheduler::JobKind::AutomationSilences`] (the no-reply trigger's sweep).
//!
//! A step job runs the run's steps from `step` until a wait or the end: a wait
//! moves the run on and schedules the next step's job at the wait's end; every
//! other step's effect commits together with the run's advance (a conditional
//! UPDATE on the run's step and status), so a job run twice — a lost lease, a
//! second node — finds the run already moved and does nothing. A send is posted
//! into the conversation with the duplicate key `{run}:{step}` before the advance:
//! posted again after a crash, it is the same message with the same outbox row.
//!
//! A send that cannot go (no WhatsApp conversation, opted out, text to a closed
//! window, a template that is not approved) is skipped, noted on the run, and the
//! sequence goes on: its other steps (a task for a human, a tag) still matter.

use super::{next, Next, RunStatus, Step, Trigger, SENDER_PREFIX};
use crate::actors::conversation::broadcast::PostBroadcastCopy;
use crate::broadcasts::content::{personalise, Content, Skip};
use crate::broadcasts::runner::{prepare, render, waba_of};
use crate::channels::Provider;
use crate::clock::now_ms;
use crate::db::write_transaction;
use crate::error::AppError;
use crate::scheduler::Outcome;
use crate::state::AppState;
use crate::store::automations::runs::{self, RunRow, Subject};
use crate::store::automations::AutomationRow;
use crate::store::broadcasts::{facts, Pending};
use crate::store::leads::{self as leads_store, Actor, NewTask};

/// How often the no-reply sweep looks for silent conversations.
pub const SILENCE_SWEEP: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs the step job `key` (`{run}:{step}`).
pub async fn run_step(state: &AppState, key: &str) -> Outcome {
    let Some((run_id, step)) = key
        .rsplit_once(':')
        .and_then(|(r, s)| Some((r.to_string(), s.parse::<i32>().ok()?)))
    else {
        return Outcome::Fail {
            error: format!("bad automation step key {key:?}"),
        };
    };
    match steps_from(state, &run_id, step).await {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Retry {
            error: e.to_string(),
        },
    }
}

async fn steps_from(state: &AppState, run_id: &str, mut step: i32) -> Result<(), AppError> {
    let found = {
        let id = run_id.to_string();
        state.db.run(move |c| runs::run(c, &id)).await?
    };
    let Some((run, automation)) = found else {
        return Ok(());
    };
    if run.status != RunStatus::Active.as_str() || run.step != step {
        return Ok(());
    }
    if !automation.enabled {
        end(
            state,
            &run,
            step,
            RunStatus::Stopped,
            Some("automation turned off"),
        )
        .await?;
        return Ok(());
    }
    let steps = automation.steps()?;
    loop {
        let now = state.clock.now_ms();
        let index = usize::try_from(step).unwrap_or(usize::MAX);
        match next(&steps, index, now) {
            Next::Finish => {
                end(state, &run, step, RunStatus::Done, None).await?;
                return Ok(());
            }
            Next::WaitUntil { at } => {
                let id = run.id.clone();
                state
                    .db
                    .run(move |c| {
                        write_transaction(c, |c| {
                            if runs::advance(c, &id, step, step + 1, Some(at), None, now)? {
                                runs::schedule_step(c, &id, step + 1, at)?;
                            }
                            Ok(())
                        })
                    })
                    .await?;
                return Ok(());
            }
            Next::Do(Step::Send { content }) => {
                let note = send(state, &run, &automation, step, content.as_ref()).await?;
                if !advance(state, &run, step, note).await? {
                    return Ok(());
                }
            }
            Next::Do(action) => {
                if !act(state, &run, step, action.clone()).await? {
                    return Ok(());
                }
            }
        }
        step += 1;
    }
}

async fn advance(
    state: &AppState,
    run: &RunRow,
    step: i32,
    note: Option<String>,
) -> Result<bool, AppError> {
    let (id, now) = (run.id.clone(), state.clock.now_ms());
    state
        .db
        .run(move |c| runs::advance(c, &id, step, step + 1, None, note.as_deref(), now))
        .await
}

async fn end(
    state: &AppState,
    run: &RunRow,
    step: i32,
    status: RunStatus,
    reason: Option<&str>,
) -> Result<bool, AppError> {
    let (id, now, reason) = (
        run.id.clone(),
        state.clock.now_ms(),
        reason.map(str::to_string),
    );
    state
        .db
        .run(move |c| runs::end(c, &id, step, status, reason.as_deref(), now))
        .await
}

/// Tag, task or stage: the effect and the advance in one transaction (the
/// advance first, so a run already moved does nothing). Returns whether the run
/// moved on.
async fn act(state: &AppState, run: &RunRow, step: i32, action: Step) -> Result<bool, AppError> {
    let run = run.clone();
    let now = state.clock.now_ms();
    let (moved, timeline, lead_view) = state
        .db
        .run(move |c| {
            let lead = leads_store::lead_of_contact(c, &run.contact_id)?
                .filter(|l| l.team_id == run.team_id);
            write_transaction(c, |c| {
                let needs_lead = matches!(action, Step::CreateTask { .. } | Step::MoveStage { .. });
                let note =
                    (needs_lead && lead.is_none()).then_some("skipped: the contact has no lead");
                if !runs::advance(c, &run.id, step, step + 1, None, note, now)? {
                    return Ok((false, Vec::new(), None));
                }
                let mut out = Vec::new();
                match (action, lead) {
                    (Step::AddTag { tag_id }, _) => {
                        // A tag deleted since the sequence was saved: nothing to add.
                        if crate::store::tags::get(c, &tag_id).is_ok() {
                            crate::store::tags::add(
                                c,
                                &tag_id,
                                std::slice::from_ref(&run.contact_id),
                                now_ms(),
                            )?;
                        }
                        Ok((true, out, None))
                    }
                    (
                        Step::CreateTask {
                            title,
                            due_in_minutes,
                        },
                        Some(lead),
                    ) => {
                        let task = NewTask {
                            kind: "automation".into(),
                            title,
                            assignee_id: lead.owner_id.clone(),
                            due_at: now + i64::from(due_in_minutes) * 60_000,
                            created_by: None,
                        };
                        leads_store::create_task(c, &lead, None, task, now_ms(), &mut out)?;
                        Ok((true, out, None))
                    }
                    (Step::MoveStage { stage }, Some(mut lead)) => {
                        let cfg = leads_store::config(c, &lead.team_id)?;
                        let actor = Actor::SYSTEM;
                        if leads_store::move_stage(
                            c,
                            &cfg,
                            &mut lead,
                            &stage,
                            actor,
                            true,
                            None,
                            now_ms(),
                            &mut out,
                        )? {
                            lead.updated_at = now_ms();
                            leads_store::save(c, &lead)?;
                        }
                        let view = leads_store::view(c, lead)?;
                        Ok((true, out, Some(view)))
                    }
                    _ => Ok((true, out, None)),
                }
            })
        })
        .await?;
    if moved && (!timeline.is_empty() || lead_view.is_some()) {
        state.scheduler.nudge();
        if let Some(view) = &lead_view {
            crate::leads::announce(state, view, &timeline).await;
        }
    }
    Ok(moved)
}

/// Posts the send step's message; returns the note for a skipped send.
async fn send(
    state: &AppState,
    run: &RunRow,
    automation: &AutomationRow,
    step: i32,
    content: Option<&Content>,
) -> Result<Option<String>, AppError> {
    let Some(content) = content else {
        return Ok(Some(format!("step {}: nothing chosen to send", step + 1)));
    };
    let (contact, team) = (run.contact_id.clone(), run.team_id.clone());
    let Some((conversation_id, channel, number_id)) = state
        .db
        .run(move |c| runs::whatsapp_conversation(c, &contact, &team))
        .await?
    else {
        return Ok(Some(skipped(step, Skip::Unreachable)));
    };
    let Some(provider) = Provider::of_channel(&channel) else {
        return Ok(Some(skipped(step, Skip::Unreachable)));
    };
    if provider == Provider::Waha && matches!(content, Content::Template { .. }) {
        return Ok(Some(format!(
            "step {}: templates are Meta's; this conversation is on a WAHA number",
            step + 1
        )));
    }
    let pending = vec![Pending {
        contact_id: run.contact_id.clone(),
        conversation_id: conversation_id.clone(),
    }];
    let known = state.db.run(move |c| facts(c, &pending)).await?;
    let f = known.get(&run.contact_id).cloned().unwrap_or_default();
    let vars = match personalise(content, &f, state.clock.now_ms()) {
        Ok(v) => v,
        Err(skip) => return Ok(Some(skipped(step, skip))),
    };
    let waba = match waba_of_number(state, &number_id).await? {
        Some(n) => n,
        None => return Ok(Some(skipped(step, Skip::Unreachable))),
    };
    let prepared = match prepare(state, content, waba).await {
        Ok(p) => p,
        Err(AppError::Validation(e) | AppError::NotFound(e)) => {
            return Ok(Some(format!("step {}: {e}", step + 1)))
        }
        Err(e) => return Err(e),
    };
    let copy = match render(&prepared, &vars) {
        Ok(c) => c,
        Err(skip) => return Ok(Some(skipped(step, skip))),
    };
    let msg = PostBroadcastCopy {
        sender_id: format!("{SENDER_PREFIX}{}", automation.id),
        sender_name: automation.name.clone(),
        client_msg_id: format!("{}:{step}", run.id),
        body: copy.body,
        kind: copy.kind,
        payload: copy.payload,
        not_before: now_ms(),
    };
    match state.hub.ask(state, &conversation_id, msg).await {
        Ok(Ok(_)) => Ok(None),
        Ok(Err(AppError::Conflict(e) | AppError::NotFound(e))) => {
            Ok(Some(format!("step {}: {e}", step + 1)))
        }
        Ok(Err(e)) | Err(e) => Err(e),
    }
}

fn skipped(step: i32, why: Skip) -> String {
    format!(
        "step {}: skipped ({})",
        step + 1,
        why.as_str().replace('_', " ")
    )
}

/// The WABA of number `number_id` (`Some(None)` for WAHA or a Meta number
/// without one); `None` when the number is gone.
async fn waba_of_number(
    state: &AppState,
    number_id: &str,
) -> Result<Option<Option<String>>, AppError> {
    let snapshot = state.numbers.snapshot(state).await?;
    Ok(snapshot
        .get(number_id)
        .map(|n| waba_of(n, state.config.whatsapp.waba_id.as_deref())))
}

/// The no-reply sweep: enrols the silent conversations of every enabled
/// no-reply automation. Idempotent: each silence has its enrolment key.
pub async fn sweep_silences(state: &AppState) -> Outcome {
    let now = state.clock.now_ms();
    let started = state
        .db
        .run(move |c| {
            let mut started = 0;
            for a in runs::no_reply_automations(c)? {
                let Ok(Trigger::NoReply { hours }) = a.trigger() else {
                    continue;
                };
                for (contact_id, key) in runs::silences(c, &a, hours, now)? {
                    let who = Subject {
                        team_id: &a.team_id,
                        contact_id: &contact_id,
                        lead_id: None,
                    };
                    started += write_transaction(c, |c| runs::enrol_one(c, &a, &who, &key, now))?;
                }
            }
            Ok::<_, AppError>(started)
        })
        .await;
    match started {
        Ok(n) => {
            if n > 0 {
                state.scheduler.nudge();
            }
            Outcome::Done
        }
        Err(e) => Outcome::Retry {
            error: e.to_string(),
        },
    }
}
