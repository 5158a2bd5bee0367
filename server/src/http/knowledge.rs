//! Knowledge base API (`docs/api.md`, "Knowledge"): document CRUD, Markdown import
//! and a retrieval preview. Team members read and search; the team's leads and
//! admins write. Every write re-chunks in the store's transaction, then embeds the
//! new chunks (when an embedding endpoint is configured) before answering.

use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::require_team;
use crate::auth::AuthAgent;
use crate::bot::knowledge::chunk;
use crate::clock::now_ms;
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::accounts::{self, AgentInfo};
use crate::store::audit::{self, AuditAction, AuditActor, AuditEntry};
use crate::store::knowledge::{self as store, DocUpdate, NewDoc, MAX_BODY_BYTES};

/// Request bodies may be larger here than elsewhere in the API: a document may
/// hold [`MAX_BODY_BYTES`] of text, JSON-escaped. Oversized documents within this
/// limit get the store's clear validation message rather than a bare 413.
const JSON_LIMIT: usize = 4 * MAX_BODY_BYTES;

/// Most hits a search returns.
const MAX_K: usize = 20;

/// The knowledge routes and who may call them (`http::endpoints`). Writes take
/// bodies up to [`JSON_LIMIT`] (imports of whole FAQ files).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(GET "/knowledge", Rule::Agent(P::ConversationsReadTeam), list),
    endpoint!(POST "/knowledge", Rule::Agent(P::SettingsTeam), create, app_data = json_config()),
    // Before `/{id}`, which would take these words for ids.
    endpoint!(GET "/knowledge/search", Rule::Agent(P::ConversationsReadTeam), search),
    endpoint!(POST "/knowledge/import", Rule::Agent(P::SettingsTeam), import, app_data = json_config()),
    endpoint!(GET "/knowledge/{id}", Rule::Agent(P::ConversationsReadTeam), get),
    endpoint!(PUT "/knowledge/{id}", Rule::Agent(P::SettingsTeam), update, app_data = json_config()),
    endpoint!(DELETE "/knowledge/{id}", Rule::Agent(P::SettingsTeam), delete),
];

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(|err, _| AppError::from(err).into())
}

/// The team a request is about: the one named (if the caller may see it), else
/// the caller's only team.
///
/// # Errors
/// [`AppError::Forbidden`] for a team the caller is not in; [`AppError::NotFound`]
/// for an unknown team (admins); [`AppError::Validation`] when the caller is in
/// several teams (or none) and named none.
async fn resolve_team(
    state: &AppState,
    agent: &AgentInfo,
    team: Option<String>,
) -> Result<String, AppError> {
    let team = match team.filter(|t| !t.trim().is_empty()) {
        Some(t) if agent.can_access_team(&t) => t,
        Some(_) => return Err(AppError::Forbidden("not your team".into())),
        None => match agent.team_ids.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(AppError::Validation(
                    "Choose a team (team_id): you are in several teams or none.".into(),
                ))
            }
        },
    };
    let t = team.clone();
    if !state.db.run(move |c| accounts::team_exists(c, &t)).await? {
        return Err(AppError::NotFound("no such team".into()));
    }
    Ok(team)
}

/// Loads a document the caller may see.
async fn visible_doc(
    state: &AppState,
    agent: &AgentInfo,
    id: String,
) -> Result<store::DocRow, AppError> {
    let doc = state.db.run(move |c| store::get(c, &id)).await?;
    if !agent.can_access_team(&doc.team_id) {
        return Err(AppError::Forbidden("not your team's knowledge".into()));
    }
    Ok(doc)
}

/// The stored document as the API shows it.
async fn view(state: &AppState, row: store::DocRow) -> Result<store::DocView, AppError> {
    state.db.run(move |c| store::view(c, row)).await
}

/// A document as the log shows it: what identifies it, never its text.
fn doc_summary(row: &store::DocRow) -> serde_json::Value {
    json!({
        "id": row.id,
        "kind": row.kind,
        "ref_code": row.ref_code,
        "title": row.title,
        "revision": row.revision,
    })
}

/// Writes a knowledge entry about one document in the caller's transaction.
fn record_doc(
    c: &mut DbConn,
    who: &AuditActor,
    action: AuditAction,
    before: Option<&store::DocRow>,
    after: Option<&store::DocRow>,
) -> Result<(), AppError> {
    let Some(doc) = after.or(before) else {
        return Ok(());
    };
    let mut entry = AuditEntry::new(who, action)
        .target("knowledge_doc", &doc.id)
        .team(&doc.team_id);
    entry.before = before.map(doc_summary);
    entry.after = after.map(doc_summary);
    audit::record(c, &entry, now_ms()).map(|_| ())
}

#[derive(Deserialize)]
struct ListQuery {
    team_id: Option<String>,
    kind: Option<String>,
}

async fn list(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let q = q.into_inner();
    let team = resolve_team(&state, &agent, q.team_id).await?;
    let kind = q.kind.filter(|k| !k.is_empty());
    let docs = state
        .db
        .run(move |c| store::list(c, &team, kind.as_deref()))
        .await?;
    Ok(HttpResponse::Ok().json(json!({"documents": docs})))
}

#[derive(Deserialize)]
struct CreateBody {
    team_id: Option<String>,
    #[serde(flatten)]
    doc: NewDoc,
}

async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, AppError> {
    let CreateBody { team_id, doc } = body.into_inner();
    let team = resolve_team(&state, &agent, team_id).await?;
    require_team(&agent, &team)?;
    let by = agent.id.clone();
    let (t, who) = (team.clone(), super::audit::actor(&agent, &req));
    let row = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let row = store::create(c, &t, doc, &by)?;
                record_doc(c, &who, AuditAction::KnowledgeCreated, None, Some(&row))?;
                Ok(row)
            })
        })
        .await?;
    state.bot.knowledge.embed_document(&team, &row.id).await;
    Ok(HttpResponse::Created().json(json!({"document": view(&state, row).await?})))
}

async fn get(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let row = visible_doc(&state, &agent, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({"document": view(&state, row).await?})))
}

async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<DocUpdate>,
) -> Result<HttpResponse, AppError> {
    let current = visible_doc(&state, &agent, path.into_inner()).await?;
    require_team(&agent, &current.team_id)?;
    let (id, by, upd) = (current.id.clone(), agent.id.clone(), body.into_inner());
    let who = super::audit::actor(&agent, &req);
    let row = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let before = store::get(c, &id)?;
                let row = store::update(c, &id, upd, &by)?;
                let action = AuditAction::KnowledgeUpdated;
                record_doc(c, &who, action, Some(&before), Some(&row))?;
                Ok(row)
            })
        })
        .await?;
    state
        .bot
        .knowledge
        .embed_document(&row.team_id, &row.id)
        .await;
    Ok(HttpResponse::Ok().json(json!({"document": view(&state, row).await?})))
}

async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let current = visible_doc(&state, &agent, path.into_inner()).await?;
    require_team(&agent, &current.team_id)?;
    let who = super::audit::actor(&agent, &req);
    state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                store::delete(c, &current.id)?;
                record_doc(c, &who, AuditAction::KnowledgeDeleted, Some(&current), None)
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct ImportBody {
    team_id: Option<String>,
    title: Option<String>,
    markdown: Option<String>,
    /// Split FAQ-style Markdown into FAQ entries instead of one document.
    #[serde(default)]
    as_faq: bool,
}

async fn import(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    body: web::Json<ImportBody>,
) -> Result<HttpResponse, AppError> {
    let b = body.into_inner();
    let team = resolve_team(&state, &agent, b.team_id).await?;
    require_team(&agent, &team)?;
    let markdown = b.markdown.unwrap_or_default();
    if markdown.trim().is_empty() {
        return Err(AppError::Validation("The text is empty.".into()));
    }
    if markdown.len() > MAX_BODY_BYTES {
        return Err(AppError::Validation(format!(
            "The text can be at most {} KB.",
            MAX_BODY_BYTES / 1024
        )));
    }
    let docs: Vec<NewDoc> = if b.as_faq {
        let pairs = chunk::faq_pairs(&markdown);
        if pairs.is_empty() {
            return Err(AppError::Validation(
                "No questions found: write each question as a heading starting with ## and its answer below it."
                    .into(),
            ));
        }
        pairs
            .into_iter()
            .map(|(q, a)| NewDoc {
                kind: Some("faq".into()),
                title: Some(q),
                body: a,
                ..NewDoc::default()
            })
            .collect()
    } else {
        let title = b
            .title
            .filter(|t| !t.trim().is_empty())
            .or_else(|| chunk::first_h1(&markdown))
            .unwrap_or_else(|| "Imported document".into());
        vec![NewDoc {
            kind: Some("markdown".into()),
            title: Some(title),
            body: markdown,
            ..NewDoc::default()
        }]
    };
    let by = agent.id.clone();
    let (t, who) = (team.clone(), super::audit::actor(&agent, &req));
    // All entries or none: one failing entry (a too-long question) rolls the import
    // back, log entry included.
    let rows = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let mut rows = Vec::with_capacity(docs.len());
                for d in docs {
                    rows.push(store::create(c, &t, d, &by)?);
                }
                let mut entry = AuditEntry::new(&who, AuditAction::KnowledgeImported).team(&t);
                entry.after = Some(json!({
                    "documents": rows.iter().map(doc_summary).collect::<Vec<_>>(),
                }));
                audit::record(c, &entry, now_ms())?;
                Ok(rows)
            })
        })
        .await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        state.bot.knowledge.embed_document(&team, &row.id).await;
        views.push(view(&state, row).await?);
    }
    Ok(HttpResponse::Created().json(json!({"documents": views})))
}

#[derive(Deserialize)]
struct SearchQuery {
    team_id: Option<String>,
    q: Option<String>,
    k: Option<usize>,
}

async fn search(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    q: web::Query<SearchQuery>,
) -> Result<HttpResponse, AppError> {
    let q = q.into_inner();
    let team = resolve_team(&state, &agent, q.team_id).await?;
    let query = q.q.unwrap_or_default();
    if query.trim().is_empty() {
        return Err(AppError::Validation("Type something to search for.".into()));
    }
    if query.chars().count() > 2000 {
        return Err(AppError::Validation(
            "A search can be at most 2000 characters.".into(),
        ));
    }
    let k = q.k.unwrap_or(5).clamp(1, MAX_K);
    let result = state
        .bot
        .knowledge
        .search_detailed(&team, &query, k)
        .await?;
    Ok(HttpResponse::Ok().json(result))
}
