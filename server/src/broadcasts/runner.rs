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
//! slot. Only the copies due within [`HORIZON_MS`] are posted per pass, and while
//! the writer's bulk lane yields to chat messages (`writer::share`) no more than
//! it commits within that horizon, so a pause or cancel stops sending within it.
//!
//! Exactly once per recipient: the recipients' primary key makes fixing them
//! idempotent; a copy posted again after a crash (before its recipient was marked
//! sent) is the same message (the writer's duplicate key), with the same outbox row.

use diesel::Connection;
use futures_util::StreamExt;
use rand::Rng;

use super::content::{personalise, Content, Skip};
use super::lifecycle::{next, Action, State};
use super::pacing::{plan, DAY_MS};
use crate::actors::conversation::broadcast::PostBroadcastCopy;
use crate::channels::numbers::{Credentials, NumberId};
use crate::channels::templates::send::{self, Order};
use crate::channels::templates::{self, Header, Params, Shape};
use crate::channels::Provider;
use crate::clock::now_ms;
use crate::contacts::segment::SegmentFilter;
use crate::error::AppError;
use crate::scheduler::{JobKind, NewJob, Outcome};
use crate::state::AppState;
use crate::store::broadcasts::{self as store, BroadcastRow, NewRecipient, Pending};
use crate::store::numbers::cache::CachedNumber;

/// How far ahead of their slots copies are posted, ms.
pub const HORIZON_MS: i64 = 1_000;

/// Pending recipients looked at per pass (the skipped ones do not use slots).
const PASS: i64 = 200;

/// How long a number that reached its daily messaging limit waits before
/// looking again, ms.
const LIMIT_RECHECK_MS: i64 = 15 * 60 * 1_000;

/// How often a paused broadcast's job looks whether it was resumed, ms.
const PAUSED_RECHECK_MS: i64 = 2_000;

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
        // Paused: look again later. Resume also reschedules the job at once, but a
        // resume that lands while this pass runs cannot move a running job, and
        // the job must not end under a broadcast that is sending again.
        State::Paused => {
            return Ok(Outcome::Again {
                due_at: now + PAUSED_RECHECK_MS,
            })
        }
        State::Draft | State::Done | State::Cancelled => return Ok(Outcome::Done),
    }
    let (provider, waba) = number_of(state, &b).await?;
    let content = b.content()?;
    if let Err(e) = content.check(provider) {
        return Ok(Outcome::Fail {
            error: e.to_string(),
        });
    }
    let prepared = match prepare(state, &content, waba).await {
        Ok(p) => p,
        Err(AppError::Validation(e) | AppError::NotFound(e)) => {
            return Ok(Outcome::Fail { error: e })
        }
        Err(e) => return Err(e),
    };
    fix_recipients(state, &b, provider).await?;
    send_some(state, &b, provider, &content, &prepared).await
}

/// The provider and (Meta) WhatsApp Business Account of the broadcast's number,
/// which must be active.
///
/// # Errors
/// [`AppError::NotFound`] for a number that is gone; [`AppError::Conflict`] for a
/// deactivated one.
pub async fn number_of(
    state: &AppState,
    b: &BroadcastRow,
) -> Result<(Provider, Option<String>), AppError> {
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
    let waba = waba_of(number, state.config.whatsapp.waba_id.as_deref());
    Ok((number.row.provider(), waba))
}

/// The WhatsApp Business Account of a Meta number (its own, or
/// `WHATSAPP_WABA_ID` for the env number: `templates::sync::waba_of`); `None`
/// for WAHA numbers and Meta numbers without one.
pub fn waba_of(number: &CachedNumber, env_waba: Option<&str>) -> Option<String> {
    match &number.credentials {
        Credentials::Meta(m) => crate::channels::templates::sync::waba_of(m, env_waba),
        Credentials::Waha(_) => None,
    }
}

/// The content made ready to render per recipient: for a template, its approved
/// definition from the number's WhatsApp Business Account.
pub enum Prepared {
    /// Free text.
    Text {
        /// The message.
        body: String,
    },
    /// An approved template.
    Template {
        /// Name.
        name: String,
        /// Language code.
        language: String,
        /// What it takes and how it reads.
        shape: Shape,
        /// Header media link.
        header_media_url: Option<String>,
    },
}

/// Loads what `content` needs to be sent from a number of WABA `waba`.
///
/// # Errors
/// [`AppError::Validation`] for a template that is missing, not approved, or takes
/// variables a broadcast cannot fill (header or button variables); database errors.
pub async fn prepare(
    state: &AppState,
    content: &Content,
    waba: Option<String>,
) -> Result<Prepared, AppError> {
    let (name, language, variables, header_media_url) = match content {
        Content::Text { body } => return Ok(Prepared::Text { body: body.clone() }),
        Content::Template {
            name,
            language,
            variables,
            header_media_url,
        } => (name, language, variables, header_media_url),
    };
    let waba = waba.ok_or_else(|| {
        AppError::Validation(
            "This number has no WhatsApp Business Account id: templates cannot be looked up."
                .into(),
        )
    })?;
    let (n, l) = (name.clone(), language.clone());
    let row = state
        .db
        .run(move |c| crate::store::templates::get(c, &waba, &n, &l))
        .await
        .map_err(|e| match e {
            AppError::NotFound(m) => AppError::Validation(m),
            other => other,
        })?;
    if !row.sendable() {
        return Err(AppError::Validation(format!(
            "The template {:?} ({}) is {}: only approved templates can be broadcast.",
            row.name, row.language, row.status
        )));
    }
    let shape = templates::shape(&row.components_json());
    if matches!(&shape.header, Some(Header::Text { variables, .. }) if *variables > 0)
        || !shape.variable_buttons.is_empty()
    {
        return Err(AppError::Validation(
            "Broadcasts fill body variables only: this template has header or button variables."
                .into(),
        ));
    }
    if shape.body_variables != variables.len() {
        return Err(AppError::Validation(format!(
            "The template's body takes {} value(s); the broadcast maps {}.",
            shape.body_variables,
            variables.len()
        )));
    }
    let sample = Params {
        body: vec!["x".into(); shape.body_variables],
        header_media_url: header_media_url.clone(),
        ..Params::default()
    };
    templates::validate(&shape, &sample).map_err(AppError::Validation)?;
    Ok(Prepared::Template {
        name: row.name,
        language: row.language,
        shape,
        header_media_url: header_media_url.clone(),
    })
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
    prepared: &Prepared,
) -> Result<Outcome, AppError> {
    let (bid, number) = (b.id.clone(), b.number_id.clone());
    let now = state.clock.now_ms();
    // While the bulk lane yields to chat messages, post only what it commits
    // within the horizon: copies queued beyond it would go out after a pause.
    let take = state.writer.bulk_cap().map_or(PASS, |cap| {
        ((cap * HORIZON_MS as f64 / 1_000.0).ceil() as i64).clamp(1, PASS)
    });
    let (pending, facts, pace, slot, sent_day) = state
        .db
        .run(move |c| {
            let pending = store::pending(c, &bid, take)?;
            let facts = store::facts(c, &pending)?;
            let pace = store::pace_of(c, &number, provider)?;
            let slot = store::next_slot(c, &number)?;
            // Counting the day's sends reads every copy of the last 24 hours: only
            // when there is a limit to count against.
            let sent_day = match pace.daily_limit() {
                Some(_) => store::sent_since(c, &number, now - DAY_MS)?,
                None => 0,
            };
            Ok((pending, facts, pace, slot, sent_day))
        })
        .await?;
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
    let mut eligible: Vec<(Pending, Copy)> = Vec::new();
    let mut skipped: Vec<(String, Skip)> = Vec::new();
    for p in pending {
        let f = facts.get(&p.contact_id).cloned().unwrap_or_default();
        match personalise(content, &f, now).and_then(|vars| render(prepared, &vars)) {
            Ok(copy) => eligible.push((p, copy)),
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
    // Meta's messaging limit: business-initiated copies per moving 24 hours.
    if let Some(room) = pace.room_today(u32::try_from(sent_day).unwrap_or(u32::MAX)) {
        if room == 0 {
            return Ok(Outcome::Again {
                due_at: now + LIMIT_RECHECK_MS,
            });
        }
        eligible.truncate(room as usize);
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
    post_copies(state, b, eligible, slots).await?;
    Ok(Outcome::Again {
        due_at: now + (following - HORIZON_MS / 2 - wall).max(0),
    })
}

/// Posts the copies (concurrently, each into its own conversation) and marks each
/// recipient sent; a conversation that cannot take one skips its recipient.
async fn post_copies(
    state: &AppState,
    b: &BroadcastRow,
    eligible: Vec<(Pending, Copy)>,
    slots: Vec<i64>,
) -> Result<(), AppError> {
    let copies = eligible.into_iter().zip(slots).map(|((p, copy), slot)| {
        let msg = PostBroadcastCopy {
            sender_id: format!("{}{}", super::SENDER_PREFIX, b.id),
            sender_name: b.name.clone(),
            client_msg_id: p.contact_id.clone(),
            body: copy.body,
            kind: copy.kind,
            payload: copy.payload,
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

/// One recipient's copy: outbox kind and payload, and the text agents see.
pub struct Copy {
    /// Outbox kind (`text` or `template`).
    pub kind: &'static str,
    /// Outbox payload JSON (the template [`Order`]; `{}` for text).
    pub payload: String,
    /// The text as the customer reads it.
    pub body: String,
}

/// A recipient's copy from its variable values.
///
/// # Errors
/// [`Skip::InvalidVariable`] when a value breaks Meta's rules (too long).
pub fn render(prepared: &Prepared, vars: &[String]) -> Result<Copy, Skip> {
    match prepared {
        Prepared::Text { body } => Ok(Copy {
            kind: "text",
            payload: "{}".into(),
            body: body.clone(),
        }),
        Prepared::Template {
            name,
            language,
            shape,
            header_media_url,
        } => {
            let params = Params {
                body: vars.to_vec(),
                header_media_url: header_media_url.clone(),
                ..Params::default()
            };
            templates::validate(shape, &params).map_err(|_| Skip::InvalidVariable)?;
            let order = Order {
                name: name.clone(),
                language: language.clone(),
                components: send::components(shape, &params),
            };
            Ok(Copy {
                kind: "template",
                payload: serde_json::to_string(&order).map_err(|_| Skip::InvalidVariable)?,
                body: templates::render(shape, &params),
            })
        }
    }
}
