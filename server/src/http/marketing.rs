//! Marketing API (seed 001 shapes, adapted to the pipeline; `docs/leads.md`):
//! `POST /api/marketing/leads`, `GET /api/marketing/dashboard`,
//! `GET /api/marketing/analytics`.

use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::auth::AuthAgent;
use crate::clock::now_ms;
use crate::db::schema::contacts;
use crate::db::write_transaction;
use crate::error::AppError;
use crate::model::new_id;
use crate::state::AppState;
use crate::store::leads::{self as store, Actor, LeadOrigin};

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(POST "/marketing/leads", Rule::Agent(P::LeadsCreate), create_lead),
    endpoint!(POST "/leads", Rule::Agent(P::LeadsCreate), create_lead),
    endpoint!(GET "/marketing/dashboard", Rule::Agent(P::AnalyticsRead), dashboard),
    endpoint!(GET "/marketing/analytics", Rule::Agent(P::AnalyticsRead), analytics),
];

#[derive(Deserialize, Default)]
#[serde(default)]
struct LeadBody {
    team_id: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    name: Option<String>,
    /// Stage key (seed 001 calls it `phase`; both are accepted).
    stage: Option<String>,
    phase: Option<String>,
    interested_package: Option<String>,
    campaign_code: Option<String>,
    conversation_summary: Option<String>,
    /// Finer attribution, e.g. `meta_ads_campaign_123` (the lead's source is `api`).
    source: Option<String>,
    owner_id: Option<String>,
    priority: Option<String>,
    ai_confidence: Option<f64>,
}

/// Creates a lead from outside (an AI agent, a form, an import): a contact with the
/// given phone/email — joined to the same person's existing lead if there is one —
/// then stage, package, campaign, owner and notes applied as a manual change by the
/// caller. 201 with `{lead, created}`.
async fn create_lead(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    body: web::Json<LeadBody>,
) -> Result<HttpResponse, AppError> {
    let b = body.into_inner();
    if b.phone.is_none() && b.email.is_none() && b.name.is_none() {
        return Err(AppError::Validation(
            "Give at least a phone number, an email address or a name.".into(),
        ));
    }
    let phone = match &b.phone {
        Some(p) => Some(
            crate::channels::phone::normalise(p)
                .and_then(|(_, e)| e)
                .ok_or_else(|| {
                    AppError::Validation(
                        "The phone number must start with its country code, such as +62.".into(),
                    )
                })?,
        ),
        None => None,
    };
    if let Some(p) = &b.priority {
        if !crate::leads::config::PRIORITIES.contains(&p.as_str()) {
            return Err(AppError::Validation(
                "The priority can be low, normal or high.".into(),
            ));
        }
    }
    let team = super::team_for(&state, &agent, b.team_id.clone()).await?;
    let by = agent.id.clone();
    let (view, created, timeline) = state
        .db
        .run(move |c| {
            let cfg = store::config(c, &team)?;
            write_transaction(c, |c| {
                let now = now_ms();
                let contact_id = new_id();
                diesel::insert_into(contacts::table)
                    .values((
                        contacts::id.eq(&contact_id),
                        contacts::name.eq(&b.name),
                        contacts::email.eq(b.email.as_ref().map(|e| e.trim().to_lowercase())),
                        contacts::phone.eq(&phone),
                        contacts::created_at.eq(now),
                        contacts::updated_at.eq(now),
                    ))
                    .execute(c)?;
                if let Some(owner) = &b.owner_id {
                    crate::store::accounts::require_active_member(c, &team, owner)?;
                }
                let mut out = Vec::new();
                let origin = LeadOrigin {
                    team_id: team.clone(),
                    contact_id,
                    source: "api".into(),
                    source_detail: b.source.clone(),
                    owner_id: b.owner_id.clone(),
                    quick_link_id: None,
                    conversation_id: None,
                };
                let (mut lead, created) = store::ensure(c, &cfg, &origin, now, &mut out)?;
                let actor = Actor {
                    kind: "agent",
                    id: Some(&by),
                };
                if let Some(stage) = b.stage.as_ref().or(b.phase.as_ref()) {
                    store::move_stage(c, &cfg, &mut lead, stage, actor, true, None, now, &mut out)?;
                }
                if b.owner_id.is_some() {
                    lead.owner_id = b.owner_id.clone();
                }
                if let Some(p) = &b.interested_package {
                    lead.interested_package = Some(p.clone());
                }
                if let Some(code) = &b.campaign_code {
                    lead.campaign_code = Some(code.to_ascii_uppercase());
                }
                if let Some(p) = &b.priority {
                    lead.priority = super::leads::max_priority(&lead.priority, p).to_string();
                }
                if let Some(s) = &b.conversation_summary {
                    lead.notes = Some(match lead.notes.take() {
                        Some(n) => format!("{n}\n{s}"),
                        None => s.clone(),
                    });
                }
                lead.updated_at = now;
                store::save(c, &lead)?;
                out.push(store::event(
                    c,
                    &lead.id,
                    None,
                    "lead_api",
                    actor,
                    json!({"source": b.source, "ai_confidence": b.ai_confidence,
                           "summary": b.conversation_summary}),
                    now,
                )?);
                Ok((store::view(c, lead)?, created, out))
            })
        })
        .await?;
    super::leads::announce(&state, &view, &timeline).await;
    let mut status = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(status.json(json!({"lead": view, "created": created})))
}

#[derive(Deserialize)]
struct TeamQuery {
    team: Option<String>,
}

async fn dashboard(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    q: web::Query<TeamQuery>,
) -> Result<HttpResponse, AppError> {
    let team = super::team_for(&state, &agent, q.into_inner().team).await?;
    let v = state.db.run(move |c| store::dashboard(c, &team)).await?;
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Deserialize)]
struct AnalyticsQuery {
    team: Option<String>,
    /// Epoch ms: only leads created at or after it.
    since: Option<i64>,
}

async fn analytics(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    q: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, AppError> {
    let q = q.into_inner();
    if q.since.is_some_and(|s| s < 0) {
        return Err(AppError::Validation(
            "The start time (since) must be a number of milliseconds since 1970.".into(),
        ));
    }
    let team = super::team_for(&state, &agent, q.team).await?;
    let since = q.since;
    let v = state
        .db
        .run(move |c| store::analytics(c, &team, since))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

use diesel::prelude::*;
