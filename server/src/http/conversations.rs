//! Conversation routes: list, summary, history, post, assign, status.
//!
//! Reads go straight to the database (authorised against the conversation's team or
//! guest); writes go through the conversation's actor, which owns ordering and
//! fan-out, so a message posted over HTTP reaches WebSocket viewers exactly like one
//! sent over a socket.

use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::actors::conversation::check_access;
use crate::actors::messages::{ChangeAssignee, ChangeStatus, PostMessage};
use crate::auth::{AuthAgent, Principal};
use crate::error::AppError;
use crate::model::ConversationStatus;
use crate::state::AppState;
use crate::store::conversations::{self, AssigneeFilter, ListFilter};
use crate::store::messages::{self, Page};

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(GET "/conversations", Rule::Agent(P::ConversationsReadTeam), list),
    endpoint!(GET "/conversations/{id}", Rule::GuestOr(P::ConversationsReadTeam), get),
    endpoint!(GET "/conversations/{id}/messages", Rule::GuestOr(P::ConversationsReadTeam), history),
    endpoint!(POST "/conversations/{id}/messages", Rule::GuestOr(P::ConversationsReply), post_message),
    endpoint!(POST "/conversations/{id}/assign", Rule::Agent(P::ConversationsReply), assign),
    endpoint!(POST "/conversations/{id}/status", Rule::Agent(P::ConversationsReply), set_status),
];

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

fn limit(value: Option<i64>) -> Result<i64, AppError> {
    match value {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(AppError::Validation(format!(
            "Ask for between 1 and {MAX_LIMIT} items at a time (limit)."
        ))),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    assignee: Option<String>,
    team: Option<String>,
    channel: Option<String>,
    q: Option<String>,
    limit: Option<i64>,
}

async fn list(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let status = match query.status.as_deref() {
        None | Some("all") | Some("") => None,
        Some(s) => Some(ConversationStatus::parse(s)?),
    };
    let assignee = match query.assignee.as_deref() {
        None | Some("") | Some("any") => AssigneeFilter::Any,
        Some("me") => AssigneeFilter::Agent(agent.id.clone()),
        Some("none") => AssigneeFilter::Nobody,
        Some(id) => AssigneeFilter::Agent(id.to_string()),
    };
    if let Some(team) = &query.team {
        if !agent.can_access_team(team) {
            return Err(AppError::Forbidden("not your team".into()));
        }
    }
    let filter = ListFilter {
        visible_teams: (!agent.role.all_teams()).then(|| agent.team_ids.clone()),
        team_id: query.team,
        channel: query.channel.filter(|c| !c.is_empty() && c != "all"),
        status,
        assignee,
        q: query.q.map(|q| q.chars().take(100).collect()),
        limit: limit(query.limit)?,
    };
    let list = state
        .db
        .run(move |c| conversations::list(c, &filter))
        .await?;
    Ok(HttpResponse::Ok().json(json!({"conversations": list})))
}

/// Loads a conversation's routing facts and checks `principal` may see it.
async fn authorize_read(
    state: &AppState,
    principal: &Principal,
    id: String,
) -> Result<(), AppError> {
    let meta = state.db.run(move |c| conversations::meta(c, &id)).await?;
    check_access(principal, &meta)
}

async fn get(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (meta, view) = state
        .db
        .run(move |c| {
            Ok((
                conversations::meta(c, &id)?,
                conversations::summary(c, &id)?,
            ))
        })
        .await?;
    check_access(&principal, &meta)?;
    // An opened widget is not yet a conversation for agents (docs/api.md); its
    // guest reads it as usual.
    if matches!(principal, Principal::Agent(_)) && !view.visible_to_agents() {
        return Err(AppError::NotFound(format!("no conversation {}", view.id)));
    }
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
struct HistoryQuery {
    after_seq: Option<i64>,
    before_seq: Option<i64>,
    limit: Option<i64>,
}

async fn history(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let page = match (query.after_seq, query.before_seq) {
        (Some(_), Some(_)) => {
            return Err(AppError::Validation(
                "Give after_seq or before_seq, not both.".into(),
            ))
        }
        (Some(after), None) if after >= 0 => Page::After(after),
        (None, Some(before)) if before >= 1 => Page::Before(before),
        (None, None) => Page::Latest,
        _ => {
            return Err(AppError::Validation(
                "after_seq can be 0 or more, and before_seq 1 or more.".into(),
            ))
        }
    };
    let limit = limit(query.limit)?;
    authorize_read(&state, &principal, id.clone()).await?;
    let (rows, has_more) = state
        .db
        .run(move |c| messages::page(c, &id, page, limit))
        .await?;
    let messages: Vec<_> = rows.into_iter().map(messages::MessageRow::view).collect();
    Ok(HttpResponse::Ok().json(json!({"messages": messages, "has_more": has_more})))
}

#[derive(Deserialize)]
struct PostBody {
    body: String,
    #[serde(default)]
    client_msg_id: Option<String>,
}

async fn post_message(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<String>,
    body: web::Json<PostBody>,
) -> Result<HttpResponse, AppError> {
    if let Principal::Guest(g) = &principal {
        // The same budget as the guest's WebSocket sends (agents are not limited).
        state
            .limits
            .guest_message(&g.conversation_id, super::client_ip(&req))?;
    }
    let id = path.into_inner();
    let PostBody {
        body,
        client_msg_id,
    } = body.into_inner();
    let msg = PostMessage {
        principal,
        client_msg_id,
        body,
    };
    let posted = state.hub.ask(&state, &id, msg).await??;
    let payload = json!({"message": posted.message, "duplicate": posted.duplicate});
    Ok(if posted.duplicate {
        HttpResponse::Ok().json(payload)
    } else {
        HttpResponse::Created().json(payload)
    })
}

#[derive(Deserialize)]
struct AssignBody {
    #[serde(default)]
    agent_id: Option<String>,
}

async fn assign(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<AssignBody>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let msg = ChangeAssignee {
        principal: Principal::Agent(agent),
        agent_id: body.into_inner().agent_id,
    };
    let view = state.hub.ask(&state, &id, msg).await??;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
struct StatusBody {
    status: String,
}

async fn set_status(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<StatusBody>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let msg = ChangeStatus {
        principal: Principal::Agent(agent),
        status: ConversationStatus::parse(&body.status)?,
    };
    let view = state.hub.ask(&state, &id, msg).await??;
    Ok(HttpResponse::Ok().json(view))
}
