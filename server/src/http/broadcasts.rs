//! Broadcasts over HTTP (`docs/campaigns.md`, "Broadcasts"):
//! - `GET /api/broadcasts` — the newest 200 broadcasts, newest first, with cheap
//!   counters only (recipients, pending, sent, delivered, read, failed, skipped:
//!   one grouped query for the whole list); the attribution analytics are on
//!   `GET /api/broadcasts/{id}`;
//! - `GET /api/broadcasts/numbers` — the active WhatsApp numbers the caller may
//!   broadcast from (id, label, provider, team, WABA; no secrets);
//! - `POST /api/broadcasts` — a new draft (name, number, content, segment);
//! - `GET /api/broadcasts/{id}` — one, with live analytics (the page polls it);
//! - `PUT /api/broadcasts/{id}` — edit a draft or scheduled one;
//! - `POST /api/broadcasts/{id}/schedule` — send at a local time in a time zone;
//! - `POST /api/broadcasts/{id}/send` — start now;
//! - `POST /api/broadcasts/{id}/{pause,resume,cancel,unschedule}`;
//! - `GET`/`PUT /api/whatsapp/numbers/{id}/pace` — a number's sending pace
//!   (`accounts.manage`).
//!
//! All broadcast routes need `campaigns.send`; every change is audited in the
//! same transaction. A state change the lifecycle refuses answers 409 with its
//! reason (`broadcasts::lifecycle`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::audit::actor;
use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use crate::auth::AuthAgent;
use crate::broadcasts::content::Content;
use crate::broadcasts::lifecycle::{next, Action, State};
use crate::broadcasts::pacing::{Pace, DAY_MS};
use crate::broadcasts::runner::{self, number_of};
use crate::broadcasts::schedule::send_at;
use crate::clock::rfc3339;
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::accounts::AgentInfo;
use crate::store::audit::{self, AuditAction, AuditActor, AuditEntry};
use crate::store::broadcasts::{self as store, BroadcastRow, Counters, Stats};
use crate::store::numbers::cache::Snapshot;
use crate::store::segments;

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(GET "/broadcasts", Rule::Agent(P::CampaignsSend), list),
    endpoint!(GET "/broadcasts/numbers", Rule::Agent(P::CampaignsSend), numbers),
    endpoint!(POST "/broadcasts", Rule::Agent(P::CampaignsSend), create),
    endpoint!(GET "/broadcasts/{id}", Rule::Agent(P::CampaignsSend), one),
    endpoint!(PUT "/broadcasts/{id}", Rule::Agent(P::CampaignsSend), update),
    endpoint!(POST "/broadcasts/{id}/schedule", Rule::Agent(P::CampaignsSend), schedule),
    endpoint!(POST "/broadcasts/{id}/send", Rule::Agent(P::CampaignsSend), send_now),
    endpoint!(POST "/broadcasts/{id}/pause", Rule::Agent(P::CampaignsSend), pause),
    endpoint!(POST "/broadcasts/{id}/resume", Rule::Agent(P::CampaignsSend), resume),
    endpoint!(POST "/broadcasts/{id}/cancel", Rule::Agent(P::CampaignsSend), cancel),
    endpoint!(POST "/broadcasts/{id}/unschedule", Rule::Agent(P::CampaignsSend), unschedule),
    endpoint!(GET "/whatsapp/numbers/{id}/pace", Rule::Agent(P::AccountsManage), get_pace),
    endpoint!(PUT "/whatsapp/numbers/{id}/pace", Rule::Agent(P::AccountsManage), put_pace),
];

/// Default attribution window, days (issue 17 §4).
const DEFAULT_ATTRIBUTION_DAYS: i64 = 7;
/// Longest attribution window, days.
const MAX_ATTRIBUTION_DAYS: i64 = 90;
/// Longest broadcast name, characters.
const MAX_NAME_CHARS: usize = 120;
/// Broadcasts listed at most.
const LIST_LIMIT: i64 = 200;

/// A broadcast as the API shows it, with `S` as its numbers: [`Stats`] (full
/// analytics) for one broadcast, [`Counters`] in the list.
#[derive(Debug, Serialize)]
pub struct BroadcastView<S> {
    id: String,
    name: String,
    number_id: String,
    number_label: Option<String>,
    provider: Option<&'static str>,
    content: Content,
    segment_id: Option<String>,
    segment_name: Option<String>,
    state: State,
    /// RFC 3339, for scheduled ones.
    send_at: Option<String>,
    time_zone: Option<String>,
    attribution_days: i64,
    created_by: Option<String>,
    created_at: String,
    updated_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    stats: S,
}

#[derive(Serialize)]
struct One {
    broadcast: BroadcastView<Stats>,
}

#[derive(Serialize)]
struct List {
    broadcasts: Vec<BroadcastView<Counters>>,
}

/// What a marketer gives to create or edit a broadcast.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BroadcastForm {
    name: String,
    number_id: String,
    content: Content,
    segment_id: String,
    attribution_days: Option<i64>,
}

/// A send time: wall clock `YYYY-MM-DDTHH:MM` in an IANA time zone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleForm {
    send_at: String,
    time_zone: String,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PaceBody {
    pace: Pace,
}

/// The caller may use number `number_team` (its team is one of theirs, or they
/// act in every team).
fn may_use(agent: &AgentInfo, number_team: Option<&str>) -> bool {
    agent.role.all_teams() || number_team.is_some_and(|t| agent.team_ids.iter().any(|x| x == t))
}

/// One broadcast with its full analytics ([`store::stats`]).
fn view(
    numbers: &Snapshot,
    c: &mut DbConn,
    b: BroadcastRow,
) -> Result<BroadcastView<Stats>, AppError> {
    let stats = store::stats(c, &b)?;
    let segment_name = match &b.segment_id {
        Some(id) => segments::get(c, id).ok().map(|s| s.name),
        None => None,
    };
    shown(numbers, b, segment_name, stats)
}

/// A broadcast as the API shows it, with `stats` as its numbers.
fn shown<S>(
    numbers: &Snapshot,
    b: BroadcastRow,
    segment_name: Option<String>,
    stats: S,
) -> Result<BroadcastView<S>, AppError> {
    let number = numbers.get(&b.number_id);
    Ok(BroadcastView {
        content: b.content()?,
        state: b.state(),
        number_label: number.as_ref().map(|n| n.row.label.clone()),
        provider: number.as_ref().map(|n| n.row.provider().as_str()),
        segment_name,
        send_at: b.send_at.map(rfc3339),
        attribution_days: b.attribution_ms / DAY_MS,
        created_at: rfc3339(b.created_at),
        updated_at: rfc3339(b.updated_at),
        started_at: b.started_at.map(rfc3339),
        finished_at: b.finished_at.map(rfc3339),
        stats,
        id: b.id,
        name: b.name,
        number_id: b.number_id,
        segment_id: b.segment_id,
        time_zone: b.time_zone,
        created_by: b.created_by,
    })
}

/// Checks a form against the number it names and returns the row to store
/// (state, times and counters from `base`).
async fn checked(
    state: &AppState,
    agent: &AgentInfo,
    form: BroadcastForm,
    base: BroadcastRow,
) -> Result<BroadcastRow, AppError> {
    let name = form.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::Validation(format!(
            "The name must be 1 to {MAX_NAME_CHARS} characters."
        )));
    }
    let days = form.attribution_days.unwrap_or(DEFAULT_ATTRIBUTION_DAYS);
    if !(1..=MAX_ATTRIBUTION_DAYS).contains(&days) {
        return Err(AppError::Validation(format!(
            "The attribution window must be 1 to {MAX_ATTRIBUTION_DAYS} days."
        )));
    }
    let mut row = BroadcastRow {
        name,
        number_id: form.number_id,
        content: serde_json::to_string(&form.content).map_err(AppError::internal)?,
        segment_id: Some(form.segment_id.clone()),
        attribution_ms: days * DAY_MS,
        ..base
    };
    let (provider, waba) = number_of(state, &row).await.map_err(|e| match e {
        AppError::NotFound(m) | AppError::Conflict(m) => AppError::Validation(m),
        other => other,
    })?;
    let team = state
        .numbers
        .snapshot(state)
        .await?
        .get(&row.number_id)
        .and_then(|n| n.row.team_id.clone());
    if !may_use(agent, team.as_deref()) {
        return Err(AppError::Forbidden(
            "That WhatsApp number belongs to a team you are not in.".into(),
        ));
    }
    form.content
        .check(provider)
        .map_err(|e| AppError::Validation(e.to_string()))?;
    runner::prepare(state, &form.content, waba).await?;
    let segment = state
        .db
        .run(move |c| segments::get(c, &form.segment_id))
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::Validation("No such segment.".into()),
            other => other,
        })?;
    row.filter = serde_json::to_string(&segment.filter).map_err(AppError::internal)?;
    Ok(row)
}

/// The list: three queries whatever its length (the broadcasts, their counters
/// grouped, their segments' names). It used to compute every listed broadcast's
/// full analytics, attribution queries included: up to 200 × several queries
/// each time the page (which polls while one is sending) read it.
async fn list(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let st = state.numbers.snapshot(&state).await?;
    let broadcasts = state
        .db
        .run(move |c| {
            let rows = store::list(c, LIST_LIMIT)?;
            let mut counters = store::counters(c, &rows)?;
            let segment_ids: Vec<&str> = rows
                .iter()
                .filter_map(|b| b.segment_id.as_deref())
                .collect();
            let names = store::segment_names(c, &segment_ids)?;
            rows.into_iter()
                .map(|b| {
                    let n = counters.remove(&b.id).unwrap_or_default();
                    let name = b.segment_id.as_ref().and_then(|id| names.get(id).cloned());
                    shown(&st, b, name, n)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(List { broadcasts }))
}

/// A number a broadcast may be sent from, as the wizard lists it.
#[derive(Serialize)]
struct UsableNumber {
    id: String,
    label: String,
    provider: &'static str,
    team_id: Option<String>,
    waba_id: Option<String>,
}

async fn numbers(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
) -> Result<HttpResponse, AppError> {
    let snapshot = state.numbers.snapshot(&state).await?;
    let env_waba = state.config.whatsapp.waba_id.as_deref();
    let numbers: Vec<UsableNumber> = snapshot
        .all()
        .filter(|n| n.row.active && may_use(&agent, n.row.team_id.as_deref()))
        .map(|n| UsableNumber {
            id: n.row.id.clone(),
            label: n.row.label.clone(),
            provider: n.row.provider().as_str(),
            team_id: n.row.team_id.clone(),
            waba_id: runner::waba_of(n, env_waba),
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "numbers": numbers })))
}

async fn one(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let st = state.numbers.snapshot(&state).await?;
    let broadcast = state
        .db
        .run(move |c| {
            let b = store::get(c, &id)?;
            view(&st, c, b)
        })
        .await?;
    Ok(HttpResponse::Ok().json(One { broadcast }))
}

async fn create(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    body: web::Json<BroadcastForm>,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now_ms();
    let base = BroadcastRow {
        id: crate::model::new_id(),
        name: String::new(),
        number_id: String::new(),
        content: String::new(),
        segment_id: None,
        filter: String::new(),
        state: State::Draft.as_str().into(),
        send_at: None,
        time_zone: None,
        attribution_ms: DEFAULT_ATTRIBUTION_DAYS * DAY_MS,
        recipients: 0,
        created_by: Some(agent.id.clone()),
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
    };
    let row = checked(&state, &agent, body.into_inner(), base).await?;
    let who = actor(&agent, &req);
    let st = state.numbers.snapshot(&state).await?;
    let broadcast = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                store::insert(c, &row)?;
                let entry = AuditEntry::new(&who, AuditAction::BroadcastCreated)
                    .target("broadcast", &row.id)
                    .after(audited(&row));
                audit::record(c, &entry, now)?;
                view(&st, c, row)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(One { broadcast }))
}

/// What the audit log keeps of a broadcast: what, from where, to whom, when.
fn audited(b: &BroadcastRow) -> serde_json::Value {
    serde_json::json!({
        "name": b.name,
        "number_id": b.number_id,
        "content": serde_json::from_str::<serde_json::Value>(&b.content).unwrap_or_default(),
        "segment_id": b.segment_id,
        "state": b.state,
        "send_at": b.send_at.map(rfc3339),
        "time_zone": b.time_zone,
    })
}

async fn update(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<BroadcastForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let before = {
        let id = id.clone();
        state.db.run(move |c| store::get(c, &id)).await?
    };
    if !before.state().is_editable() {
        return Err(AppError::Conflict(format!(
            "A {} broadcast cannot be edited.",
            before.state().as_str()
        )));
    }
    let now = state.clock.now_ms();
    let mut row = checked(&state, &agent, body.into_inner(), before.clone()).await?;
    row.updated_at = now;
    let who = actor(&agent, &req);
    let st = state.numbers.snapshot(&state).await?;
    let broadcast = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                // Another request may have started it meanwhile.
                let current = store::get(c, &row.id)?;
                if !current.state().is_editable() {
                    return Err(AppError::Conflict(format!(
                        "A {} broadcast cannot be edited.",
                        current.state().as_str()
                    )));
                }
                store::save_draft(c, &row)?;
                let entry = AuditEntry::new(&who, AuditAction::BroadcastUpdated)
                    .target("broadcast", &row.id)
                    .before(audited(&before))
                    .after(audited(&row));
                audit::record(c, &entry, now)?;
                let saved = store::get(c, &row.id)?;
                view(&st, c, saved)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(One { broadcast }))
}

/// What a lifecycle request does besides moving the state.
#[derive(Clone, Copy)]
enum Job {
    /// Run the broadcast's job now.
    RunNow,
    /// Run it at the stored send time.
    RunAt(i64),
    /// Remove its job.
    Cancel,
    /// Leave the job alone (the runner stops on its own when it sees the state).
    Keep,
}

/// Moves broadcast `id` by `action` (checked by the lifecycle), applies `job`,
/// records `what` in the audit log, all in one transaction; nudges the
/// scheduler; answers with the broadcast.
async fn act(
    state: &AppState,
    who: AuditActor,
    id: String,
    action: Action,
    what: AuditAction,
    job: Job,
    time: Option<(i64, String)>,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now_ms();
    let st = state.numbers.snapshot(state).await?;
    let broadcast = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let b = store::get(c, &id)?;
                let from = b.state();
                let to = next(from, action).map_err(|e| AppError::Conflict(e.to_string()))?;
                if let Some((at, zone)) = &time {
                    store::set_send_time(c, &id, Some(*at), Some(zone), now)?;
                }
                if !store::transition(c, &id, from, to, now)? {
                    return Err(AppError::Conflict(
                        "The broadcast changed meanwhile; reload it.".into(),
                    ));
                }
                match job {
                    Job::RunNow => runner::schedule(c, &id, now)?,
                    Job::RunAt(at) => runner::schedule(c, &id, at)?,
                    Job::Cancel => {
                        crate::scheduler::cancel(c, crate::scheduler::JobKind::Broadcast, &id)?;
                    }
                    Job::Keep => {}
                }
                let after = store::get(c, &id)?;
                let entry = AuditEntry::new(&who, what)
                    .target("broadcast", &id)
                    .before(audited(&b))
                    .after(audited(&after));
                audit::record(c, &entry, now)?;
                view(&st, c, after)
            })
        })
        .await?;
    state.scheduler.nudge();
    Ok(HttpResponse::Ok().json(One { broadcast }))
}

async fn schedule(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ScheduleForm>,
) -> Result<HttpResponse, AppError> {
    let form = body.into_inner();
    let at = send_at(&form.send_at, &form.time_zone, state.clock.now_ms())
        .map_err(|e| AppError::Validation(e.to_string()))?;
    let zone = form.time_zone.trim().to_string();
    act(
        &state,
        actor(&agent, &req),
        path.into_inner(),
        Action::Schedule,
        AuditAction::BroadcastScheduled,
        Job::RunAt(at),
        Some((at, zone)),
    )
    .await
}

/// The handlers of the lifecycle requests without a body.
macro_rules! lifecycle_route {
    ($name:ident, $action:expr, $audit:expr, $job:expr) => {
        async fn $name(
            state: web::Data<AppState>,
            AuthAgent(agent): AuthAgent,
            req: HttpRequest,
            path: web::Path<String>,
        ) -> Result<HttpResponse, AppError> {
            act(
                &state,
                actor(&agent, &req),
                path.into_inner(),
                $action,
                $audit,
                $job,
                None,
            )
            .await
        }
    };
}

lifecycle_route!(
    send_now,
    Action::Start,
    AuditAction::BroadcastStarted,
    Job::RunNow
);
lifecycle_route!(
    pause,
    Action::Pause,
    AuditAction::BroadcastPaused,
    Job::Keep
);
lifecycle_route!(
    resume,
    Action::Resume,
    AuditAction::BroadcastResumed,
    Job::RunNow
);
lifecycle_route!(
    cancel,
    Action::Cancel,
    AuditAction::BroadcastCancelled,
    Job::Cancel
);
lifecycle_route!(
    unschedule,
    Action::Unschedule,
    AuditAction::BroadcastUnscheduled,
    Job::Cancel
);

/// The provider of WhatsApp number `id`.
async fn provider_of(state: &AppState, id: &str) -> Result<crate::channels::Provider, AppError> {
    let snapshot = state.numbers.snapshot(state).await?;
    snapshot
        .get(id)
        .map(|n| n.row.provider())
        .ok_or_else(|| AppError::NotFound(format!("no WhatsApp number {id}")))
}

async fn get_pace(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let provider = provider_of(&state, &id).await?;
    let pace = state
        .db
        .run(move |c| store::pace_of(c, &id, provider))
        .await?;
    Ok(HttpResponse::Ok().json(PaceBody { pace }))
}

async fn put_pace(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<PaceBody>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let provider = provider_of(&state, &id).await?;
    let pace = body
        .into_inner()
        .pace
        .validate()
        .map_err(|e| AppError::Validation(e.to_string()))?;
    let matches = matches!(
        (&pace, provider),
        (Pace::Meta { .. }, crate::channels::Provider::Meta)
            | (Pace::Waha { .. }, crate::channels::Provider::Waha)
    );
    if !matches {
        return Err(AppError::Validation(format!(
            "This is a {} number: give a {} pace.",
            provider.as_str(),
            provider.as_str()
        )));
    }
    let who = actor(&agent, &req);
    let now = state.clock.now_ms();
    let number = id.clone();
    state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let before = store::pace_of(c, &id, provider)?;
                store::set_pace(c, &id, &pace, now)?;
                let entry = AuditEntry::new(&who, AuditAction::NumberPaceChanged)
                    .target("whatsapp_number", &id)
                    .before(before)
                    .after(pace);
                audit::record(c, &entry, now)?;
                Ok::<_, AppError>(())
            })
        })
        .await?;
    // After the commit, so a copy that reads the pace again sees the new one.
    state.outbox.pace_changed(&number);
    Ok(HttpResponse::Ok().json(PaceBody { pace }))
}
