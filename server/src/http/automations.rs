//! Automations over HTTP (`docs/automations.md`):
//! - `GET /api/automations?team_id=` — the caller's teams' sequences, with run counts;
//! - `POST /api/automations` — a new one (off);
//! - `GET /api/automations/{id}` — one, with its newest runs;
//! - `PUT /api/automations/{id}` — name, trigger, stop-on-reply, steps;
//! - `POST /api/automations/{id}/{enable,disable}`;
//! - `DELETE /api/automations/{id}` — not for the shipped defaults (turn them off).
//!
//! Every route needs `campaigns.manage` and a team of the caller's; every change
//! is audited in its transaction. A sequence is checked before it is saved
//! ([`crate::automations::check`]); turning one on also needs every send step
//! chosen and its template approved for one of the team's Meta numbers.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::audit::actor;
use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use crate::auth::AuthAgent;
use crate::automations::{check, Known, Step, Strictness, Trigger};
use crate::broadcasts::content::Content;
use crate::channels::Provider;
use crate::clock::rfc3339;
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::accounts::AgentInfo;
use crate::store::audit::{self, AuditAction, AuditEntry};
use crate::store::automations::{self as store, AutomationRow, RunCounts, RunView};

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(GET "/automations", Rule::Agent(P::CampaignsManage), list),
    endpoint!(POST "/automations", Rule::Agent(P::CampaignsManage), create),
    endpoint!(GET "/automations/{id}", Rule::Agent(P::CampaignsManage), one),
    endpoint!(PUT "/automations/{id}", Rule::Agent(P::CampaignsManage), update),
    endpoint!(DELETE "/automations/{id}", Rule::Agent(P::CampaignsManage), delete),
    endpoint!(POST "/automations/{id}/enable", Rule::Agent(P::CampaignsManage), enable),
    endpoint!(POST "/automations/{id}/disable", Rule::Agent(P::CampaignsManage), disable),
];

/// An automation as the API shows it (`docs/automations.md`, "API").
#[derive(Debug, Serialize)]
pub struct AutomationView {
    id: String,
    team_id: String,
    name: String,
    preset: Option<String>,
    enabled: bool,
    trigger: Trigger,
    stop_on_reply: bool,
    steps: Vec<Step>,
    runs: RunCounts,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    recent_runs: Option<Vec<RunView>>,
}

#[derive(Serialize)]
struct List {
    automations: Vec<AutomationView>,
}

#[derive(Deserialize)]
struct ListQuery {
    team_id: Option<String>,
}

/// What a marketer gives to create (`team_id` required) or edit one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AutomationForm {
    team_id: Option<String>,
    name: String,
    trigger: Trigger,
    #[serde(default = "yes")]
    stop_on_reply: bool,
    steps: Vec<Step>,
}

fn yes() -> bool {
    true
}

fn view(
    row: AutomationRow,
    runs: RunCounts,
    recent: Option<Vec<RunView>>,
) -> Result<AutomationView, AppError> {
    Ok(AutomationView {
        trigger: row.trigger()?,
        steps: row.steps()?,
        runs,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        recent_runs: recent,
        id: row.id,
        team_id: row.team_id,
        name: row.name,
        preset: row.preset,
        enabled: row.enabled,
        stop_on_reply: row.stop_on_reply,
    })
}

fn one_view(c: &mut DbConn, row: AutomationRow) -> Result<AutomationView, AppError> {
    let runs = store::counts(c, std::slice::from_ref(&row.id))?
        .remove(&row.id)
        .unwrap_or_default();
    let recent = store::recent_runs(c, &row.id)?;
    view(row, runs, Some(recent))
}

/// The automation `id`, if the caller may manage its team (404 otherwise, so
/// other teams' ids are not confirmed).
async fn visible(
    state: &AppState,
    agent: &AgentInfo,
    id: String,
) -> Result<AutomationRow, AppError> {
    let row = state.db.run(move |c| store::get(c, &id)).await?;
    if agent.can_access_team(&row.team_id) {
        Ok(row)
    } else {
        Err(AppError::NotFound("no such automation".into()))
    }
}

/// Checks a sequence for team `team_id` ([`check`]; for one that is or turns on,
/// also its templates).
async fn checked(
    state: &AppState,
    team_id: &str,
    name: &str,
    trigger: &Trigger,
    steps: &[Step],
    strictness: Strictness,
) -> Result<(), AppError> {
    let team = team_id.to_string();
    let known: Known = state.db.run(move |c| store::known(c, &team)).await?;
    check(name, trigger, steps, &known, strictness).map_err(AppError::Validation)?;
    if strictness == Strictness::Enable {
        check_templates(state, team_id, steps).await?;
    }
    Ok(())
}

/// Every template a sequence sends must be approved in the WhatsApp Business
/// Account of one of the team's active Meta numbers (Meta sends only approved
/// templates outside the customer service window).
async fn check_templates(state: &AppState, team_id: &str, steps: &[Step]) -> Result<(), AppError> {
    let snapshot = state.numbers.snapshot(state).await?;
    let env_waba = state.config.whatsapp.waba_id.as_deref();
    let wabas: Vec<Option<String>> = snapshot
        .all()
        .filter(|n| n.row.active && n.row.provider() == Provider::Meta)
        .filter(|n| n.row.team_id.as_deref().is_none_or(|t| t == team_id))
        .map(|n| crate::broadcasts::runner::waba_of(n, env_waba))
        .collect();
    for (i, step) in steps.iter().enumerate() {
        let Step::Send {
            content: Some(content @ Content::Template { name, .. }),
        } = step
        else {
            continue;
        };
        let mut approved = false;
        for waba in &wabas {
            if crate::broadcasts::runner::prepare(state, content, waba.clone())
                .await
                .is_ok()
            {
                approved = true;
                break;
            }
        }
        if !approved {
            return Err(AppError::Validation(format!(
                "Step {}: the template {name:?} is not approved for this team's WhatsApp numbers.",
                i + 1
            )));
        }
    }
    Ok(())
}

async fn list(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let teams = match q.into_inner().team_id {
        Some(t) if agent.can_access_team(&t) => Some(vec![t]),
        Some(_) => return Err(AppError::Forbidden("not your team".into())),
        None => (!agent.role.all_teams()).then(|| agent.team_ids.clone()),
    };
    let automations = state
        .db
        .run(move |c| {
            let rows = store::list(c, teams.as_deref())?;
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            let mut counts = store::counts(c, &ids)?;
            rows.into_iter()
                .map(|r| {
                    let n = counts.remove(&r.id).unwrap_or_default();
                    view(r, n, None)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(List { automations }))
}

async fn one(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let row = visible(&state, &agent, path.into_inner()).await?;
    let body = state.db.run(move |c| one_view(c, row)).await?;
    Ok(HttpResponse::Ok().json(body))
}

async fn create(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    body: web::Json<AutomationForm>,
) -> Result<HttpResponse, AppError> {
    let f = body.into_inner();
    let Some(team_id) = f.team_id.clone() else {
        return Err(AppError::Validation("Choose the team.".into()));
    };
    if !agent.can_access_team(&team_id) {
        return Err(AppError::Forbidden("not your team".into()));
    }
    checked(
        &state,
        &team_id,
        &f.name,
        &f.trigger,
        &f.steps,
        Strictness::Save,
    )
    .await?;
    let now = state.clock.now_ms();
    let mut row = AutomationRow::new(
        &team_id,
        &f.name,
        &f.trigger,
        &f.steps,
        Some(agent.id.clone()),
        now,
    )?;
    row.stop_on_reply = f.stop_on_reply;
    let who = actor(&agent, &req);
    let body = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                store::insert(c, &row)?;
                let entry = AuditEntry::new(&who, AuditAction::AutomationCreated)
                    .target("automation", &row.id)
                    .team(&row.team_id)
                    .after(audited(&row));
                audit::record(c, &entry, now)?;
                one_view(c, row)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(body))
}

/// What the audit log keeps of an automation.
fn audited(a: &AutomationRow) -> serde_json::Value {
    serde_json::json!({
        "name": a.name,
        "enabled": a.enabled,
        "trigger": serde_json::from_str::<serde_json::Value>(&a.trigger_spec).unwrap_or_default(),
        "stop_on_reply": a.stop_on_reply,
        "steps": serde_json::from_str::<serde_json::Value>(&a.steps).unwrap_or_default(),
    })
}

async fn update(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<AutomationForm>,
) -> Result<HttpResponse, AppError> {
    let before = visible(&state, &agent, path.into_inner()).await?;
    let f = body.into_inner();
    if f.team_id.as_ref().is_some_and(|t| *t != before.team_id) {
        return Err(AppError::Validation(
            "An automation stays in its team; make a new one for another team.".into(),
        ));
    }
    let strictness = if before.enabled {
        Strictness::Enable
    } else {
        Strictness::Save
    };
    checked(
        &state,
        &before.team_id,
        &f.name,
        &f.trigger,
        &f.steps,
        strictness,
    )
    .await?;
    let now = state.clock.now_ms();
    let fresh = AutomationRow::new(&before.team_id, &f.name, &f.trigger, &f.steps, None, now)?;
    let row = AutomationRow {
        name: fresh.name,
        trigger_kind: fresh.trigger_kind,
        trigger_spec: fresh.trigger_spec,
        steps: fresh.steps,
        stop_on_reply: f.stop_on_reply,
        updated_at: now,
        ..before.clone()
    };
    let who = actor(&agent, &req);
    let body = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                store::save(c, &row)?;
                let entry = AuditEntry::new(&who, AuditAction::AutomationUpdated)
                    .target("automation", &row.id)
                    .team(&row.team_id)
                    .before(audited(&before))
                    .after(audited(&row));
                audit::record(c, &entry, now)?;
                one_view(c, row)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(body))
}

async fn switch(
    state: web::Data<AppState>,
    agent: AgentInfo,
    req: HttpRequest,
    id: String,
    on: bool,
) -> Result<HttpResponse, AppError> {
    let row = visible(&state, &agent, id).await?;
    if on {
        let (trigger, steps) = (row.trigger()?, row.steps()?);
        checked(
            &state,
            &row.team_id,
            &row.name,
            &trigger,
            &steps,
            Strictness::Enable,
        )
        .await?;
    }
    let now = state.clock.now_ms();
    let who = actor(&agent, &req);
    let action = if on {
        AuditAction::AutomationEnabled
    } else {
        AuditAction::AutomationDisabled
    };
    let body = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let stopped = store::set_enabled(c, &row.id, on, now)?;
                let entry = AuditEntry::new(&who, action)
                    .target("automation", &row.id)
                    .team(&row.team_id)
                    .after(serde_json::json!({ "name": row.name, "runs_stopped": stopped }));
                audit::record(c, &entry, now)?;
                let row = store::get(c, &row.id)?;
                one_view(c, row)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(body))
}

async fn enable(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    switch(state, agent, req, path.into_inner(), true).await
}

async fn disable(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    switch(state, agent, req, path.into_inner(), false).await
}

async fn delete(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let row = visible(&state, &agent, path.into_inner()).await?;
    if row.preset.is_some() {
        return Err(AppError::Conflict(
            "A default automation cannot be deleted; turn it off instead.".into(),
        ));
    }
    let now = state.clock.now_ms();
    let who = actor(&agent, &req);
    state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                store::delete(c, &row.id)?;
                let entry = AuditEntry::new(&who, AuditAction::AutomationDeleted)
                    .target("automation", &row.id)
                    .team(&row.team_id)
                    .before(audited(&row));
                audit::record(c, &entry, now)
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
