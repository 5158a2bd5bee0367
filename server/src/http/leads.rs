//! Lead routes (`docs/leads.md`, `docs/api.md`): leads, their timeline and tasks,
//! the per-team pipeline and intent rules, campaign codes, and handovers.
//!
//! Agents see the leads of their teams; pipeline, rules and campaign codes are
//! changed by team leads and admins. Every change is recorded on the timeline with
//! its actor and pushed live (`lead`, `timeline` frames).

use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::require_team;
use crate::actors::messages::ChangeAssignee;
use crate::auth::{AuthAgent, Principal};
use crate::clock::now_ms;
use crate::db::write_transaction;
use crate::error::AppError;
use crate::leads::campaign;
use crate::leads::config::{priority_rank, LeadConfig, PRIORITIES};
use crate::state::AppState;
use crate::store::accounts::{self, AgentInfo};
use crate::store::audit::{self, AuditAction, AuditActor, AuditEntry};
use crate::store::leads::{self as store, Actor, CampaignCodeRow, LeadFilter, NewTask};

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(GET "/leads", Rule::Agent(P::LeadsRead), list),
    endpoint!(GET "/leads/{id}", Rule::Agent(P::LeadsRead), get),
    endpoint!(PATCH "/leads/{id}", Rule::Agent(P::LeadsEdit), update),
    endpoint!(GET "/leads/{id}/timeline", Rule::Agent(P::LeadsRead), timeline),
    endpoint!(GET "/leads/{id}/tasks", Rule::Agent(P::LeadsRead), lead_tasks),
    endpoint!(POST "/leads/{id}/tasks", Rule::Agent(P::LeadsEdit), create_task),
    endpoint!(GET "/tasks", Rule::Agent(P::LeadsRead), list_tasks),
    endpoint!(PATCH "/tasks/{id}", Rule::Agent(P::LeadsEdit), update_task),
    endpoint!(POST "/conversations/handover", Rule::Agent(P::ConversationsReply), handover),
    endpoint!(GET "/conversations/{id}/lead", Rule::Agent(P::ConversationsReadTeam), conversation_lead),
    endpoint!(GET "/teams/{id}/pipeline", Rule::Agent(P::LeadsRead), get_pipeline),
    endpoint!(PUT "/teams/{id}/pipeline", Rule::Agent(P::SettingsTeam), put_pipeline),
    endpoint!(GET "/campaign-codes", Rule::Agent(P::LeadsRead), list_codes),
    endpoint!(POST "/campaign-codes", Rule::Agent(P::CampaignsManage), create_code),
    endpoint!(GET "/campaign-codes/{code}", Rule::Agent(P::LeadsRead), get_code),
    endpoint!(PUT "/campaign-codes/{code}", Rule::Agent(P::CampaignsManage), update_code),
    endpoint!(DELETE "/campaign-codes/{code}", Rule::Agent(P::CampaignsManage), delete_code),
];

/// Loads a lead and checks the agent may see its team.
async fn visible_lead(
    state: &AppState,
    agent: &AgentInfo,
    id: String,
) -> Result<store::LeadRow, AppError> {
    let lead = state.db.run(move |c| store::row(c, &id)).await?;
    if !agent.can_access_team(&lead.team_id) {
        return Err(AppError::Forbidden("not your team's lead".into()));
    }
    Ok(lead)
}

pub(crate) use crate::leads::announce;

/// The teams a list may show: the one asked for (if the caller may see it), else
/// the caller's teams (`None`: every team, for admins).
///
/// # Errors
/// [`AppError::Forbidden`] for a team the caller is not in.
fn team_scope(agent: &AgentInfo, team: Option<String>) -> Result<Option<Vec<String>>, AppError> {
    match team {
        Some(t) if agent.can_access_team(&t) => Ok(Some(vec![t])),
        Some(_) => Err(AppError::Forbidden("not your team".into())),
        None => Ok((!agent.role.all_teams()).then(|| agent.team_ids.clone())),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    team: Option<String>,
    stage: Option<String>,
    owner: Option<String>,
    handover: Option<bool>,
    limit: Option<i64>,
}

async fn list(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let q = q.into_inner();
    let teams = team_scope(&agent, q.team)?;
    let filter = LeadFilter {
        teams,
        stage: q.stage,
        owner_id: q
            .owner
            .map(|o| if o == "me" { agent.id.clone() } else { o }),
        handover: q.handover.unwrap_or(false),
        limit: q.limit.unwrap_or(100).clamp(1, 500),
    };
    let leads = state.db.run(move |c| store::list(c, &filter)).await?;
    Ok(HttpResponse::Ok().json(json!({"leads": leads})))
}

async fn get(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lead = visible_lead(&state, &agent, path.into_inner()).await?;
    let view = state.db.run(move |c| store::view(c, lead)).await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn conversation_lead(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let Principal::Agent(agent) = principal else {
        return Err(AppError::Forbidden("agents only".into()));
    };
    let id = path.into_inner();
    let lookup = id.clone();
    let (summary, lead) = state
        .db
        .run(move |c| {
            let summary = crate::store::conversations::summary(c, &lookup)?;
            let lead = store::lead_of_contact(c, &summary.contact.id)?;
            Ok((summary, lead))
        })
        .await?;
    let view = match lead {
        Some(lead) => {
            if !agent.can_access_team(&lead.team_id) {
                return Err(AppError::Forbidden("not your team's lead".into()));
            }
            state.db.run(move |c| store::view(c, lead)).await?
        }
        // A conversation agents see has its lead: when its first message's
        // bookkeeping has not run yet (it runs on its own task), it is made now,
        // in the conversation's team.
        None if summary.visible_to_agents() => {
            if !agent.can_access_team(&summary.team_id) {
                return Err(AppError::Forbidden("not your team's lead".into()));
            }
            let (view, timeline) = state
                .db
                .run(move |c| store::ensure_for_conversation(c, &id))
                .await?;
            announce(&state, &view, &timeline).await;
            view
        }
        None => return Err(AppError::NotFound(format!("no conversation {id}"))),
    };
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UpdateBody {
    stage: Option<String>,
    owner_id: Option<Option<String>>,
    priority: Option<String>,
    score: Option<i32>,
    notes: Option<String>,
    interested_package: Option<String>,
    handover_pending: Option<bool>,
}

/// `PATCH /api/leads/{id}`: manual changes by agents, team leads and admins. A
/// manual stage move may go anywhere (backwards too) and is audited with its actor.
async fn update(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, AppError> {
    let lead = visible_lead(&state, &agent, path.into_inner()).await?;
    let b = body.into_inner();
    if let Some(p) = &b.priority {
        if !PRIORITIES.contains(&p.as_str()) {
            return Err(AppError::Validation(format!(
                "The priority can be one of {}.",
                PRIORITIES.join(", ")
            )));
        }
    }
    let by = agent.id.clone();
    let (view, timeline) = state
        .db
        .run(move |c| {
            let cfg = store::config(c, &lead.team_id)?;
            write_transaction(c, |c| {
                let mut l = store::row(c, &lead.id)?;
                let now = now_ms();
                let actor = Actor {
                    kind: "agent",
                    id: Some(&by),
                };
                let mut out = Vec::new();
                if let Some(s) = &b.stage {
                    store::move_stage(c, &cfg, &mut l, s, actor, true, None, now, &mut out)?;
                }
                let mut changes = serde_json::Map::new();
                if let Some(o) = b.owner_id.clone() {
                    if let Some(owner) = &o {
                        accounts::require_active_member(c, &l.team_id, owner)?;
                    }
                    changes.insert("owner_id".into(), json!(o));
                    l.owner_id = o;
                }
                if let Some(p) = b.priority.clone() {
                    changes.insert("priority".into(), json!(p));
                    l.priority = p;
                }
                if let Some(s) = b.score {
                    changes.insert("score".into(), json!(s));
                    l.score = s;
                }
                if let Some(n) = b.notes.clone() {
                    changes.insert("notes".into(), json!(true));
                    l.notes = Some(n).filter(|n| !n.is_empty());
                }
                if let Some(p) = b.interested_package.clone() {
                    changes.insert("interested_package".into(), json!(p));
                    l.interested_package = Some(p).filter(|p| !p.is_empty());
                }
                if let Some(h) = b.handover_pending {
                    changes.insert("handover_pending".into(), json!(h));
                    l.handover_pending = i32::from(h);
                }
                if !changes.is_empty() {
                    l.updated_at = now;
                    store::save(c, &l)?;
                    out.push(store::event(
                        c,
                        &l.id,
                        None,
                        "lead_updated",
                        actor,
                        serde_json::Value::Object(changes),
                        now,
                    )?);
                }
                Ok((store::view(c, l)?, out))
            })
        })
        .await?;
    announce(&state, &view, &timeline).await;
    Ok(HttpResponse::Ok().json(view))
}

async fn timeline(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lead = visible_lead(&state, &agent, path.into_inner()).await?;
    let entries = state.db.run(move |c| store::timeline(c, &lead.id)).await?;
    Ok(HttpResponse::Ok().json(json!({"timeline": entries})))
}

async fn lead_tasks(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lead = visible_lead(&state, &agent, path.into_inner()).await?;
    let tasks = state
        .db
        .run(move |c| store::list_tasks(c, None, Some(lead.id), None, None))
        .await?;
    Ok(HttpResponse::Ok().json(json!({"tasks": tasks})))
}

#[derive(Deserialize)]
struct TaskBody {
    title: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    assignee_id: Option<String>,
    /// Epoch ms.
    #[serde(default)]
    due_at: Option<i64>,
    #[serde(default)]
    due_in_minutes: Option<i64>,
}

async fn create_task(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<TaskBody>,
) -> Result<HttpResponse, AppError> {
    let lead = visible_lead(&state, &agent, path.into_inner()).await?;
    let b = body.into_inner();
    let title = b.title.trim().to_string();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(AppError::Validation(
            "The task title must be between 1 and 200 characters.".into(),
        ));
    }
    let now = now_ms();
    let due_at = match (b.due_at, b.due_in_minutes) {
        (Some(at), None) => at,
        (None, Some(m)) if m >= 0 => now + m * 60_000,
        (None, None) => now + 24 * 3_600_000,
        _ => {
            return Err(AppError::Validation(
                "Give a due time (due_at) or a delay in minutes of 0 or more (due_in_minutes), not both.".into(),
            ))
        }
    };
    let by = agent.id.clone();
    let (task, view, timeline) = state
        .db
        .run(move |c| {
            if let Some(assignee) = &b.assignee_id {
                accounts::require_active_member(c, &lead.team_id, assignee)?;
            }
            let mut out = Vec::new();
            let task = store::create_task(
                c,
                &lead,
                None,
                NewTask {
                    kind: b.kind.unwrap_or_else(|| "manual".into()),
                    title,
                    assignee_id: b.assignee_id.or(lead.owner_id.clone()).or(Some(by.clone())),
                    due_at,
                    created_by: Some(by),
                },
                now,
                &mut out,
            )?;
            Ok((task, store::view(c, lead)?, out))
        })
        .await?;
    announce(&state, &view, &timeline).await;
    Ok(HttpResponse::Created().json(task))
}

#[derive(Deserialize)]
struct TaskQuery {
    team: Option<String>,
    assignee: Option<String>,
    status: Option<String>,
}

async fn list_tasks(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    q: web::Query<TaskQuery>,
) -> Result<HttpResponse, AppError> {
    let q = q.into_inner();
    let teams = team_scope(&agent, q.team)?;
    let assignee = q
        .assignee
        .map(|a| if a == "me" { agent.id.clone() } else { a });
    let tasks = state
        .db
        .run(move |c| store::list_tasks(c, teams, None, assignee, q.status))
        .await?;
    Ok(HttpResponse::Ok().json(json!({"tasks": tasks})))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TaskPatch {
    status: Option<String>,
    due_at: Option<i64>,
    assignee_id: Option<Option<String>>,
    title: Option<String>,
}

async fn update_task(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<TaskPatch>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let lookup = id.clone();
    let t = state.db.run(move |c| store::task(c, &lookup)).await?;
    if !agent.can_access_team(&t.team_id) {
        return Err(AppError::Forbidden("not your team's task".into()));
    }
    let b = body.into_inner();
    let by = agent.id.clone();
    let (task, event) = state
        .db
        .run(move |c| {
            if let Some(Some(assignee)) = &b.assignee_id {
                accounts::require_active_member(c, &t.team_id, assignee)?;
            }
            store::update_task(c, &id, b.status, b.due_at, b.assignee_id, b.title, &by)
        })
        .await?;
    let lead_id = task.lead_id.clone();
    if let Ok(view) = state
        .db
        .run(move |c| {
            let l = store::row(c, &lead_id)?;
            store::view(c, l)
        })
        .await
    {
        announce(&state, &view, &[event]).await;
    }
    Ok(HttpResponse::Ok().json(task))
}

#[derive(Deserialize)]
struct HandoverBody {
    conversation_id: String,
    #[serde(default)]
    assigned_to: Option<String>,
    #[serde(default)]
    handover_notes: Option<String>,
}

/// `POST /api/conversations/handover` (seed 001): hands the conversation to a
/// human — assigns it (when `assigned_to` is given, with the usual assignment
/// permissions), makes that agent the lead's owner, clears the pending-handover
/// flag and records the handover with its notes.
async fn handover(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    body: web::Json<HandoverBody>,
) -> Result<HttpResponse, AppError> {
    let b = body.into_inner();
    let conversation = match &b.assigned_to {
        Some(target) => {
            let msg = ChangeAssignee {
                principal: Principal::Agent(agent.clone()),
                agent_id: Some(target.clone()),
            };
            Some(state.hub.ask(&state, &b.conversation_id, msg).await??)
        }
        None => None,
    };
    let conv = b.conversation_id.clone();
    let lead = state
        .db
        .run(move |c| store::lead_of_conversation(c, &conv))
        .await?;
    if !agent.can_access_team(&lead.team_id) {
        return Err(AppError::Forbidden("not your team's lead".into()));
    }
    let by = agent.id.clone();
    let conv = b.conversation_id.clone();
    let (view, timeline) = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let mut l = store::row(c, &lead.id)?;
                let now = now_ms();
                if let Some(t) = &b.assigned_to {
                    l.owner_id = Some(t.clone());
                }
                l.handover_pending = 0;
                l.escalated = 0;
                l.updated_at = now;
                store::save(c, &l)?;
                let e = store::event(
                    c,
                    &l.id,
                    Some(&conv),
                    "handover",
                    Actor {
                        kind: "agent",
                        id: Some(&by),
                    },
                    json!({"assigned_to": b.assigned_to, "notes": b.handover_notes}),
                    now,
                )?;
                Ok((store::view(c, l)?, vec![e]))
            })
        })
        .await?;
    announce(&state, &view, &timeline).await;
    Ok(HttpResponse::Ok().json(json!({"lead": view, "conversation": conversation})))
}

async fn get_pipeline(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let team = path.into_inner();
    if !agent.can_access_team(&team) {
        return Err(AppError::Forbidden("not your team".into()));
    }
    let cfg = state.db.run(move |c| store::config(c, &team)).await?;
    Ok(HttpResponse::Ok().json(cfg))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PipelineBody {
    stages: Option<Vec<crate::leads::config::Stage>>,
    rules: Option<Vec<crate::leads::config::IntentRule>>,
    welcome: Option<String>,
    /// `true` puts the built-in defaults back.
    reset: bool,
}

/// `PUT /api/teams/{id}/pipeline`: replaces stages, rules and/or the welcome text
/// (omitted parts stay as they are). Leads in a stage that no longer exists keep
/// their stage key until moved by hand.
async fn put_pipeline(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<PipelineBody>,
) -> Result<HttpResponse, AppError> {
    let team = path.into_inner();
    require_team(&agent, &team)?;
    let b = body.into_inner();
    let by = agent.id.clone();
    let who = super::audit::actor(&agent, &req);
    let changed = team.clone();
    let cfg = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let before = store::config(c, &team)?;
                let mut cfg = if b.reset {
                    LeadConfig::default()
                } else {
                    before.clone()
                };
                if let Some(s) = b.stages {
                    cfg.stages = s;
                }
                if let Some(r) = b.rules {
                    cfg.rules = r;
                }
                if let Some(w) = b.welcome {
                    cfg.welcome = w;
                }
                cfg.validate()?;
                store::save_config(c, &team, &cfg, &by)?;
                let entry = AuditEntry::new(&who, AuditAction::PipelineChanged)
                    .target("team", &team)
                    .team(&team)
                    .before(&before)
                    .after(&cfg);
                audit::record(c, &entry, now_ms())?;
                Ok(cfg)
            })
        })
        .await?;
    store::config_changed(&changed);
    Ok(HttpResponse::Ok().json(cfg))
}

#[derive(Deserialize)]
struct CodeBody {
    code: Option<String>,
    team_id: Option<String>,
    package_name: String,
    price: Option<i64>,
    currency: Option<String>,
    departure_date: Option<String>,
    duration_days: Option<i32>,
    quota: Option<i32>,
    image_url: Option<String>,
    brochure_url: Option<String>,
    itinerary: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

fn check_url(u: &Option<String>, name: &str) -> Result<(), AppError> {
    if let Some(u) = u {
        let ok = url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https"));
        if !ok {
            return Err(AppError::Validation(format!(
                "The {} must be a full web address starting with http:// or https://.",
                name.replace('_', " ")
            )));
        }
    }
    Ok(())
}

fn code_row(
    b: CodeBody,
    code: String,
    team_id: String,
    now: i64,
) -> Result<CampaignCodeRow, AppError> {
    if b.package_name.trim().is_empty() || b.package_name.chars().count() > 200 {
        return Err(AppError::Validation(
            "The package name must be between 1 and 200 characters.".into(),
        ));
    }
    check_url(&b.image_url, "image_url")?;
    check_url(&b.brochure_url, "brochure_url")?;
    if let Some(d) = &b.departure_date {
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
            AppError::Validation(
                "The departure date must be written as YYYY-MM-DD, e.g. 2025-03-14.".into(),
            )
        })?;
    }
    Ok(CampaignCodeRow {
        code,
        team_id,
        package_name: b.package_name.trim().into(),
        price: b.price,
        currency: b.currency,
        departure_date: b.departure_date,
        duration_days: b.duration_days,
        quota: b.quota,
        image_url: b.image_url,
        brochure_url: b.brochure_url,
        itinerary: b.itinerary,
        active: i32::from(b.active.unwrap_or(true)),
        created_at: now,
        updated_at: now,
    })
}

/// Writes a campaign-code entry (`before`/`after` the rows as the API shows them) in
/// the caller's transaction.
fn record_code(
    c: &mut crate::db::DbConn,
    who: &AuditActor,
    action: AuditAction,
    before: Option<&CampaignCodeRow>,
    after: &CampaignCodeRow,
) -> Result<(), AppError> {
    // `active` as a boolean, like the rest of the log.
    let state = |r: &CampaignCodeRow| {
        let mut v = json!(r);
        v["active"] = json!(r.active != 0);
        v
    };
    let mut entry = AuditEntry::new(who, action)
        .target("campaign_code", &after.code)
        .team(&after.team_id)
        .after(state(after));
    if let Some(b) = before {
        entry = entry.before(state(b));
    }
    audit::record(c, &entry, now_ms()).map(|_| ())
}

async fn default_team(
    state: &AppState,
    agent: &AgentInfo,
    team: Option<String>,
) -> Result<String, AppError> {
    if let Some(t) = team {
        return Ok(t);
    }
    if let Some(t) = agent.team_ids.first() {
        return Ok(t.clone());
    }
    let t = state
        .db
        .run(|c| crate::store::accounts::team_by_slug(c, "default"))
        .await?;
    Ok(t.id)
}

async fn create_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, AppError> {
    let b = body.into_inner();
    let code = b.code.as_deref().and_then(campaign::parse).ok_or_else(|| {
        AppError::Validation(
            "A campaign code looks like PKG_MONTH_YEAR_TYPE, e.g. UMR_MAR_2025_HEMAT.".into(),
        )
    })?;
    let team = default_team(&state, &agent, b.team_id.clone()).await?;
    require_team(&agent, &team)?;
    let row = code_row(b, code, team, now_ms())?;
    let stored = row.clone();
    let who = super::audit::actor(&agent, &req);
    state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                store::create_code(c, &row)?;
                record_code(c, &who, AuditAction::CampaignCodeCreated, None, &row)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(stored))
}

async fn load_code(
    state: &AppState,
    agent: &AgentInfo,
    code: String,
) -> Result<CampaignCodeRow, AppError> {
    use crate::db::schema::campaign_codes;
    use diesel::prelude::*;
    let code = code.to_ascii_uppercase();
    let row = state
        .db
        .run(move |c| {
            campaign_codes::table
                .find(&code)
                .select(CampaignCodeRow::as_select())
                .first(c)
                .optional()?
                .ok_or_else(|| AppError::NotFound(format!("no campaign code {code}")))
        })
        .await?;
    if !agent.can_access_team(&row.team_id) {
        return Err(AppError::Forbidden("not your team's code".into()));
    }
    Ok(row)
}

async fn get_code(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(load_code(&state, &agent, path.into_inner()).await?))
}

async fn list_codes(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
) -> Result<HttpResponse, AppError> {
    use crate::db::schema::campaign_codes;
    use diesel::prelude::*;
    let teams = (!agent.role.all_teams()).then(|| agent.team_ids.clone());
    let rows: Vec<CampaignCodeRow> = state
        .db
        .run(move |c| {
            let mut q = campaign_codes::table
                .select(CampaignCodeRow::as_select())
                .order(campaign_codes::code.asc())
                .into_boxed();
            if let Some(t) = teams {
                q = q.filter(campaign_codes::team_id.eq_any(t));
            }
            Ok(q.load(c)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({"campaign_codes": rows})))
}

async fn update_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, AppError> {
    use crate::db::schema::campaign_codes;
    use diesel::prelude::*;
    let old = load_code(&state, &agent, path.into_inner()).await?;
    require_team(&agent, &old.team_id)?;
    let mut row = code_row(
        body.into_inner(),
        old.code.clone(),
        old.team_id.clone(),
        now_ms(),
    )?;
    row.created_at = old.created_at;
    let stored = row.clone();
    let who = super::audit::actor(&agent, &req);
    state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                diesel::update(campaign_codes::table.find(&row.code))
                    .set((
                        campaign_codes::package_name.eq(&row.package_name),
                        campaign_codes::price.eq(row.price),
                        campaign_codes::currency.eq(&row.currency),
                        campaign_codes::departure_date.eq(&row.departure_date),
                        campaign_codes::duration_days.eq(row.duration_days),
                        campaign_codes::quota.eq(row.quota),
                        campaign_codes::image_url.eq(&row.image_url),
                        campaign_codes::brochure_url.eq(&row.brochure_url),
                        campaign_codes::itinerary.eq(&row.itinerary),
                        campaign_codes::active.eq(row.active),
                        campaign_codes::updated_at.eq(row.updated_at),
                    ))
                    .execute(c)?;
                record_code(c, &who, AuditAction::CampaignCodeUpdated, Some(&old), &row)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(stored))
}

/// Deactivates a code (leads keep their tag; the code stops matching).
async fn delete_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    use crate::db::schema::campaign_codes;
    use diesel::prelude::*;
    let old = load_code(&state, &agent, path.into_inner()).await?;
    require_team(&agent, &old.team_id)?;
    let who = super::audit::actor(&agent, &req);
    state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let now = now_ms();
                diesel::update(campaign_codes::table.find(&old.code))
                    .set((
                        campaign_codes::active.eq(0),
                        campaign_codes::updated_at.eq(now),
                    ))
                    .execute(c)?;
                let after = CampaignCodeRow {
                    active: 0,
                    updated_at: now,
                    ..old.clone()
                };
                let action = AuditAction::CampaignCodeDeactivated;
                record_code(c, &who, action, Some(&old), &after)
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Highest of two priorities (used by the marketing API).
pub(crate) fn max_priority<'a>(a: &'a str, b: &'a str) -> &'a str {
    if priority_rank(b) > priority_rank(a) {
        b
    } else {
        a
    }
}
