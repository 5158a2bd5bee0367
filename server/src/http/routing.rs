//! Routing routes (`docs/api.md`, "Routing"): team routing settings, agent capacity,
//! offers and claims, hand-back, transfer, the routing audit and the team lead's
//! workload; an agent's working hours (in [`hours`]).

mod hours;

use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::require_team;
use crate::actors::messages::{Authorize, ChangeAssignee, Transfer};
use crate::auth::{AuthAgent, Principal};
use crate::clock::now_ms;
use crate::db::schema::agents;
use crate::error::AppError;
use crate::routing::actor::{Drain, SettingsChanged};
use crate::routing::{self, engine, settings};
use crate::state::AppState;
use crate::store::accounts;
use crate::store::audit::{self as audit_log, AuditAction, AuditEntry};

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(GET "/teams/{id}/routing", Rule::Agent(P::SettingsTeam), get_settings),
    endpoint!(PUT "/teams/{id}/routing", Rule::Agent(P::SettingsTeam), put_settings),
    endpoint!(PUT "/agents/{id}/capacity", Rule::Agent(P::AccountsManage), put_capacity),
    endpoint!(GET "/agents/{id}/hours", Rule::Agent(P::AccountsRead), hours::get_hours),
    endpoint!(PUT "/agents/{id}/hours", Rule::Agent(P::AccountsManage), hours::put_hours),
    endpoint!(GET "/team/workload", Rule::Agent(P::TeamSupervise), workload),
    endpoint!(GET "/offers", Rule::Agent(P::ConversationsReply), my_offers),
    endpoint!(POST "/offers/{id}/claim", Rule::Agent(P::ConversationsReply), claim),
    endpoint!(POST "/conversations/{id}/requeue", Rule::Agent(P::ConversationsReply), requeue),
    endpoint!(POST "/conversations/{id}/transfer", Rule::Agent(P::ConversationsAssignOthers), transfer),
    endpoint!(GET "/conversations/{id}/routing", Rule::Agent(P::ConversationsReadTeam), audit),
];

async fn get_settings(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let team_id = path.into_inner();
    require_team(&agent, &team_id)?;
    let team = state.db.run(move |c| settings::load(c, &team_id)).await?;
    Ok(HttpResponse::Ok().json(team))
}

async fn put_settings(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<settings::RoutingUpdate>,
) -> Result<HttpResponse, AppError> {
    let team_id = path.into_inner();
    require_team(&agent, &team_id)?;
    let update = body.into_inner();
    let (id, who) = (team_id.clone(), super::audit::actor(&agent, &req));
    let team = state
        .db
        .run(move |c| {
            crate::db::write_transaction(c, |c| {
                let before = settings::load(c, &id)?;
                let team = settings::update(c, &id, &update)?;
                let entry = AuditEntry::new(&who, AuditAction::RoutingSettingsChanged)
                    .target("team", &id)
                    .team(&id)
                    .before(&before)
                    .after(&team);
                audit_log::record(c, &entry, now_ms())?;
                Ok(team)
            })
        })
        .await?;
    settings::changed(&team_id);
    state.hub.route(SettingsChanged { team_id });
    Ok(HttpResponse::Ok().json(team))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapacityBody {
    /// 1 to 1000, or null for the team default.
    capacity: Option<i32>,
}

async fn put_capacity(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<CapacityBody>,
) -> Result<HttpResponse, AppError> {
    let capacity = body.into_inner().capacity;
    if let Some(n) = capacity {
        if !(1..=1000).contains(&n) {
            return Err(AppError::Validation(
                "The capacity must be between 1 and 1000, or empty to use the team default.".into(),
            ));
        }
    }
    let agent_id = path.into_inner();
    let (id, who) = (agent_id.clone(), super::audit::actor(&agent, &req));
    let info = state
        .db
        .run(move |c| {
            use diesel::prelude::*;
            crate::db::write_transaction(c, |c| {
                let before: Option<Option<i32>> = agents::table
                    .find(&id)
                    .select(agents::capacity)
                    .first(c)
                    .optional()?;
                let Some(before) = before else {
                    return Err(AppError::NotFound(format!("no agent {id}")));
                };
                diesel::update(agents::table.find(&id))
                    .set(agents::capacity.eq(capacity))
                    .execute(c)?;
                let entry = AuditEntry::new(&who, AuditAction::AgentCapacityChanged)
                    .target("agent", &id)
                    .before(json!({ "capacity": before }))
                    .after(json!({ "capacity": capacity }));
                audit_log::record(c, &entry, now_ms())?;
                accounts::active_agent(c, &id)
            })
        })
        .await?;
    // More room may mean waiting conversations can go to this agent now.
    for team_id in &info.team_ids {
        state.hub.route(Drain {
            team_id: team_id.clone(),
        });
    }
    Ok(HttpResponse::Ok().json(json!({"agent_id": agent_id, "capacity": capacity})))
}

#[derive(Deserialize)]
struct WorkloadQuery {
    team_id: Option<String>,
}

async fn workload(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    query: web::Query<WorkloadQuery>,
) -> Result<HttpResponse, AppError> {
    let wanted = query.into_inner().team_id;
    if let Some(t) = &wanted {
        require_team(&agent, t)?;
    }
    let presence = state.hub.presence_snapshot();
    let teams = state
        .db
        .run(move |c| {
            let ids: Vec<String> = match wanted {
                Some(t) => vec![t],
                None => accounts::list_teams(c, &agent)?
                    .into_iter()
                    .map(|t| t.id)
                    .collect(),
            };
            let now = now_ms();
            ids.iter()
                .map(|t| engine::workload(c, t, &presence, now))
                .collect::<Result<Vec<_>, AppError>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "teams": teams })))
}

async fn my_offers(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
) -> Result<HttpResponse, AppError> {
    let offers = state
        .db
        .run(move |c| engine::open_offers_for(c, &agent.id))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "offers": offers })))
}

async fn claim(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let view = routing::claim(&state, &agent, &path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "conversation": view })))
}

async fn requeue(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let msg = ChangeAssignee {
        principal: Principal::Agent(agent),
        agent_id: None,
    };
    let view = state.hub.ask(&state, &id, msg).await??;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    team_id: String,
    #[serde(default)]
    agent_id: Option<String>,
}

async fn transfer(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<TransferBody>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let TransferBody { team_id, agent_id } = body.into_inner();
    let view = state
        .hub
        .ask(
            &state,
            &id,
            Transfer {
                principal: Principal::Agent(agent),
                team_id,
                agent_id,
            },
        )
        .await??;
    Ok(HttpResponse::Ok().json(view))
}

async fn audit(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    state
        .hub
        .ask(
            &state,
            &id,
            Authorize {
                principal: Principal::Agent(agent),
            },
        )
        .await??;
    let events = state.db.run(move |c| engine::audit(c, &id)).await?;
    Ok(HttpResponse::Ok().json(json!({ "events": events })))
}
