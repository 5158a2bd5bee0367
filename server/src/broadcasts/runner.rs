//! The broadcast runner: the scheduler's handler for [`JobKind::Broadcast`]
//! (one job per broadcast, keyed by its id), which applies the policy of this
//! module to the database one pass at a time.
//!
//! A pass: starts a scheduled broadcast at its time; fixes the recipients once
//! (the segment's members on the broadcast's number); takes the next pending
//! recipients; skips those the rules exclude; plans send slots for the rest from
//! the number's pace and takes them in the database (so two broadcasts on one
//! number, or two nodes, share the number's rate); posts each copy into its
//! conversation with the duplicate key (broadcast, contact) and the slot as the
//! outbox row's earliest send time; and asks to run again just before the next
//! slot. Only the copies due within [`HORIZON_MS`] are posted per pass, so a pause
//! or cancel stops sending within that horizon.
//!
//! Exactly once per recipient: the recipients' primary key makes fixing them
//! idempotent; a copy posted again after a crash (before its recipient was marked
//! sent) is the same message (the writer's duplicate key), with the same outbox row.

use diesel::Connection;
use futures_util::StreamExt;
use rand::Rng;

use super::content::{personalise, Content, Skip};
use super::lifecycle::{next, Action, State};
use super::pacing::plan;
use crate::actors::conversation::broadcast::PostBroadcastCopy;
use crate::channels::numbers::NumberId;
use crate::channels::Provider;
use crate::clock::now_ms;
use crate::contacts::segment::SegmentFilter;
use crate::error::AppError;
use crate::scheduler::{JobKind, NewJob, Outcome};
use crate::state::AppState;
use crate::store::broadcasts::{self as store, BroadcastRow, NewRecipient, Pending};

/// How far ahead of their slots copies are posted, ms.
pub const HORIZON_MS: i64 = 1_000;

/// Pending recipients looked at per pass (the skipped ones do not use slots).
const PASS: i64 = 200;

/// Copies posted at once.
const CONCURRENCY: usize = 16;

/// Schedules (or reschedules) the broadcast's job at `due_at` (scheduler clock).
///
/// # Errors
/// Database errors.
pub fn schedule(c: &mut crate::db::DbConn, id: &str, due_at: i64) -> Result<(), AppError> {
    crate::scheduler::schedule(
        c,
        NewJob {
            kind: JobKind::Broadcast,
            key: id.to_string(),
            due_at,
            payload: serde_json::Value::Null,
        },
    )?;
    crate::scheduler::reschedule(c, JobKind::Broadcast, id, due_at)?;
    Ok(())
}

/// Runs one pass of broadcast `id` (the job's key).
pub async fn run(state: &AppState, id: &str) -> Outcome {
    match pass(state, id).await {
        Ok(outcome) => outcome,
        Err(AppError::NotFound(e)) => Outcome::Fail { error: e },
        Err(e) => Outcome::Retry {
            error: e.to_string(),
        },
    }
}

async fn pass(state: &AppState, id: &str) -> Result<Outcome, AppError> {
    let b = {
        let id = id.to_string();
        state.db.run(move |c| store::get(c, &id)).await?
    };
    let now = state.clock.now_ms();
    match b.state() {
        State::Scheduled => {
            if b.send_at.is_some_and(|t| t > now) {
                return Ok(Outcome::Again {
                    due_at: b.send_at.unwrap_or(now),
                });
            }
            let to = next(State::Scheduled, Action::Start)
                .map_err(|e| AppError::Conflict(e.to_string()))?;
            let bid = b.id.clone();
            state
                .db
                .run(move |c| store::transition(c, &bid, State::Scheduled, to, now))
                .await?;
        }
        State::Sending => {}
        // Paused: resuming schedules the job again; the rest never send.
        State::Draft | State::Paused | State::Done | State::Cancelled => return Ok(Outcome::Done),
    }
    let provider = number_provider(state, &b).await?;
    let content = b.content()?;
    if let Err(e) = content.check(provider) {
        return Ok(Outcome::Fail {
            error: e.to_string(),
        });
    }
    fix_recipients(state, &b, provider).await?;
    send_some(state, &b, provider, &content).await
}

/// The provider of the broadcast's number, which must be active.
async fn number_provider(state: &AppState, b: &BroadcastRow) -> Result<Provider, AppError> {
    let snapshot = state.numbers.snapshot(state).await?;
    let number = snapshot
        .get(&b.number_id)
        .ok_or_else(|| AppError::NotFound(format!("no WhatsApp number {}", b.number_id)))?;
    if !number.row.active {
        return Err(AppError::Conflict(format!(
            "the WhatsApp number {:?} is deactivated",
            number.row.label
        )));
    }
    Ok(number.row.provider())
}

/// Fixes the recipients once: the segment's members whose conversation is on the
/// broadcast's number.
async fn fix_recipients(
    state: &AppState,
    b: &BroadcastRow,
    provider: Provider,
) -> Result<(), AppError> {
    let (bid, number, filter) = (b.id.clone(), b.number_id.clone(), b.filter.clone());
    state
        .db
        .run(move |c| {
            if store::has_recipients(c, &bid)? {
                return Ok(());
            }
            let filter: SegmentFilter =
                serde_json::from_str(&filter).map_err(AppError::internal)?;
            let env = NumberId::env(provider).0;
            let recipients: Vec<NewRecipient> = crate::store::segments::members(c, &filter)?
                .into_iter()
                .filter(|m| {
                    Provider::of_channel(&m.channel) == Some(provider)
                        && m.number_id.as_deref().unwrap_or(&env) == number
                })
                .map(|m| NewRecipient {
                    contact_id: m.contact_id,
                    conversation_id: m.conversation_id,
                })
                .collect();
            store::materialise(c, &bid, &recipients).map(|_| ())
        })
        .await
}

/// Skips, paces and posts the next copies; says when to run again.
async fn send_some(
    state: &AppState,
    b: &BroadcastRow,
    provider: Provider,
    content: &Content,
) -> Result<Outcome, AppError> {
    let (bid, number) = (b.id.clone(), b.number_id.clone());
    let (pending, facts, pace, slot) = state
        .db
        .run(move |c| {
            let pending = store::pending(c, &bid, PASS)?;
            let facts = store::facts(c, &pending)?;
            let pace = store::pace_of(c, &number, provider)?;
            let slot = store::next_slot(c, &number)?;
            Ok((pending, facts, pace, slot))
        })
        .await?;
    let now = state.clock.now_ms();
    if pending.is_empty() {
        let bid = b.id.clone();
        let to =
            next(State::Sending, Action::Finish).map_err(|e| AppError::Conflict(e.to_string()))?;
        state
            .db
            .run(move |c| store::transition(c, &bid, State::Sending, to, now))
            .await?;
        return Ok(Outcome::Done);
    }
    let mut eligible: Vec<(Pending, Vec<String>)> = Vec::new();
    let mut skipped: Vec<(String, Skip)> = Vec::new();
    for p in pending {
        let f = facts.get(&p.contact_id).cloned().unwrap_or_default();
        match personalise(content, &f, now) {
            Ok(vars) => eligible.push((p, vars)),
            Err(skip) => skipped.push((p.contact_id, skip)),
        }
    }
    if !skipped.is_empty() {
        let bid = b.id.clone();
        state
            .db
            .run(move |c| {
                c.transaction(|c| {
                    for (contact, why) in &skipped {
                        store::mark_skipped(c, &bid, contact, why.as_str())?;
                    }
                    Ok::<_, AppError>(())
                })
            })
            .await?;
    }
    if eligible.is_empty() {
        return Ok(Outcome::Again { due_at: now });
    }
    // Slots are real time: the outbox sends by the system clock.
    let wall = now_ms();
    let mut rng = rand::rng();
    let (slots, following) = plan(pace, slot, wall, eligible.len(), HORIZON_MS, |_| {
        rng.random::<f64>()
    });
    if slots.is_empty() {
        return Ok(Outcome::Again {
            due_at: now + (following - HORIZON_MS / 2 - wall).max(0),
        });
    }
    eligible.truncate(slots.len());
    let number = b.number_id.clone();
    let took = state
        .db
        .run(move |c| store::take_slots(c, &number, slot, following, wall))
        .await?;
    if !took {
        // Another broadcast on this number took them: plan again at once.
        return Ok(Outcome::Again { due_at: now });
    }
    post_copies(state, b, content, eligible, slots).await?;
    Ok(Outcome::Again {
        due_at: now + (following - HORIZON_MS / 2 - wall).max(0),
    })
}

/// Posts the copies (concurrently, each into its own conversation) and marks each
/// recipient sent; a conversation that cannot take one skips its recipient.
async fn post_copies(
    state: &AppState,
    b: &BroadcastRow,
    content: &Content,
    eligible: Vec<(Pending, Vec<String>)>,
    slots: Vec<i64>,
) -> Result<(), AppError> {
    let copies = eligible.into_iter().zip(slots).map(|((p, vars), slot)| {
        let (kind, payload, body) = render(content, &vars);
        let msg = PostBroadcastCopy {
            broadcast_id: b.id.clone(),
            broadcast_name: b.name.clone(),
            contact_id: p.contact_id.clone(),
            body,
            kind,
            payload,
            not_before: slot,
        };
        async move {
            let posted = state.hub.ask(state, &p.conversation_id, msg).await;
            (p, posted)
        }
    });
    let results: Vec<_> = futures_util::stream::iter(copies)
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let bid = b.id.clone();
    let now = state.clock.now_ms();
    state
        .db
        .run(move |c| {
            c.transaction(|c| {
                for (p, posted) in &results {
                    match posted {
                        Ok(Ok(posted)) => {
                            store::mark_sent(c, &bid, &p.contact_id, &posted.message.id, now)?
                        }
                        Ok(Err(AppError::Conflict(_) | AppError::NotFound(_))) => {
                            store::mark_skipped(c, &bid, &p.contact_id, Skip::Unreachable.as_str())?
                        }
                        // Transient: stays pending, posted again (same key) next pass.
                        Ok(Err(e)) | Err(e) => {
                            tracing::warn!(broadcast = %bid, contact = %p.contact_id, error = %e, "broadcast copy not posted; will retry");
                        }
                    }
                }
                Ok::<_, AppError>(())
            })
        })
        .await
}

/// A copy's outbox kind, payload and the text agents see.
fn render(content: &Content, vars: &[String]) -> (&'static str, String, String) {
    match content {
        Content::Text { body } => ("text", "{}".into(), body.clone()),
        Content::Template { name, language, .. } => {
            // The outbox's template order (`channels::templates::send::Order`).
            let components = if vars.is_empty() {
                Vec::new()
            } else {
                let parameters: Vec<serde_json::Value> = vars
                    .iter()
                    .map(|v| serde_json::json!({"type": "text", "text": v}))
                    .collect();
                vec![serde_json::json!({"type": "body", "parameters": parameters})]
            };
            let payload = serde_json::json!({
                "name": name,
                "language": language,
                "components": components,
            });
            (
                "template",
                payload.to_string(),
                format!("[{name}] {}", vars.join(" · ")),
            )
        }
    }
}
