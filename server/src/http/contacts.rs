//! Contacts, tags, consent and opt-out keywords over HTTP (`docs/contacts.md`):
//! - `GET /api/contacts?q=&limit=&offset=` — search (name/phone) within the caller's
//!   teams, each contact with tags, consent, latest conversation (`leads.read`);
//! - `GET /api/contacts/{id}` — one contact with its consent history (`leads.read`);
//! - `PUT /api/contacts/{id}/tags` — set a contact's tags from the inbox (`leads.edit`);
//! - `PUT /api/contacts/{id}/consent` — opt a contact in or out (`campaigns.manage`,
//!   audited);
//! - `GET /api/tags` (`leads.read`); `POST /api/tags`, `PATCH`/`DELETE
//!   /api/tags/{id}`, `POST /api/tags/{id}/add` and `/remove` (bulk, many contacts)
//!   (`campaigns.manage`, audited);
//! - `GET`/`PUT /api/teams/{id}/consent-settings` — the team's opt-out/opt-in
//!   keywords and confirmations (`settings.team`, audited).
//!
//! Tag changes on a contact push a `contact_tags` frame to the agents of its
//! conversations, so another agent's inbox shows them at once.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit::actor;
use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use crate::auth::AuthAgent;
use crate::bus::{Audience, BusEvent};
use crate::clock::now_ms;
use crate::contacts::optout::KeywordSettings;
use crate::contacts::segment::SegmentFilter;
use crate::contacts::{clean_tag_name, ConsentSource, ConsentState};
use crate::db::write_transaction;
use crate::error::AppError;
use crate::protocol::ServerFrame;
use crate::state::AppState;
use crate::store::accounts::{self, AgentInfo};
use crate::store::audit::{self, AuditAction, AuditEntry};
use crate::store::consent::{self, ConsentEvent};
use crate::store::contacts::{self as store, ContactSummary, ListQuery};
use crate::store::tags::{self, ContactTagsFrame, TagView};

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(GET "/contacts", Rule::Agent(P::LeadsRead), list),
    endpoint!(GET "/contacts/{id}", Rule::Agent(P::LeadsRead), detail),
    endpoint!(PUT "/contacts/{id}/tags", Rule::Agent(P::LeadsEdit), set_tags),
    endpoint!(PUT "/contacts/{id}/consent", Rule::Agent(P::CampaignsManage), set_consent),
    endpoint!(GET "/tags", Rule::Agent(P::LeadsRead), list_tags),
    endpoint!(POST "/tags", Rule::Agent(P::CampaignsManage), create_tag),
    endpoint!(PATCH "/tags/{id}", Rule::Agent(P::CampaignsManage), rename_tag),
    endpoint!(DELETE "/tags/{id}", Rule::Agent(P::CampaignsManage), delete_tag),
    endpoint!(POST "/tags/{id}/add", Rule::Agent(P::CampaignsManage), bulk_add),
    endpoint!(POST "/tags/{id}/remove", Rule::Agent(P::CampaignsManage), bulk_remove),
    endpoint!(GET "/teams/{id}/consent-settings", Rule::Agent(P::SettingsTeam), get_keywords),
    endpoint!(PUT "/teams/{id}/consent-settings", Rule::Agent(P::SettingsTeam), put_keywords),
];

/// Contact ids an audit entry of a bulk change lists (the count is always there).
const AUDITED_IDS: usize = 100;

/// The teams whose contacts `agent` sees: `None` for every team.
pub(super) fn scope_of(agent: &AgentInfo) -> Option<Vec<String>> {
    (!agent.role.all_teams()).then(|| agent.team_ids.clone())
}

#[derive(Deserialize)]
struct ListParams {
    q: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, AppError> {
    let p = params.into_inner();
    let query = ListQuery {
        filter: SegmentFilter::default(),
        q: p.q,
        limit: p.limit.unwrap_or(50),
        offset: p.offset.unwrap_or(0),
    };
    let scope = scope_of(&agent);
    let page = state
        .db
        .run(move |c| store::list(c, &query, scope.as_deref()))
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /api/contacts/{id}`.
#[derive(Serialize)]
struct Detail {
    #[serde(flatten)]
    summary: ContactSummary,
    consent_history: Vec<ConsentEvent>,
}

async fn detail(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let scope = scope_of(&agent);
    let detail = state
        .db
        .run(move |c| {
            Ok::<_, AppError>(Detail {
                summary: store::summary(c, &id, scope.as_deref())?,
                consent_history: consent::history(c, &id)?,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsBody {
    tag_ids: Vec<String>,
}

async fn set_tags(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<TagsBody>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let wanted = body.into_inner().tag_ids;
    let scope = scope_of(&agent);
    let (summary, _) = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                // Within the caller's teams only (404 otherwise, as for reading).
                store::summary(c, &id, scope.as_deref())?;
                let changed = tags::set_for_contact(c, &id, &wanted, now_ms())?;
                Ok::<_, AppError>((store::summary(c, &id, scope.as_deref())?, changed))
            })
        })
        .await?;
    // A tag automation may have started (`store::tags::add`): its first step is due now.
    state.scheduler.nudge();
    publish_tags(&state, &summary).await;
    Ok(HttpResponse::Ok().json(summary))
}

/// Pushes a `contact_tags` frame to the agents of the contact's conversations.
async fn publish_tags(state: &AppState, summary: &ContactSummary) {
    let contact_id = summary.contact.id.clone();
    let convs = state
        .db
        .run(move |c| conversations_of(c, &contact_id))
        .await
        .unwrap_or_default();
    for (conversation_id, team_id, assignee_id) in convs {
        let frame = ServerFrame::ContactTags(Box::new(ContactTagsFrame {
            conversation_id: conversation_id.clone(),
            contact_id: summary.contact.id.clone(),
            tags: summary.tags.clone(),
        }));
        state.hub.publish(BusEvent::Conversation {
            conversation_id: conversation_id.into(),
            team_id,
            assignee_id,
            seq: None,
            frame: frame.encode(),
            audience: Audience::Agents,
            exclude_session: None,
        });
    }
}

fn conversations_of(
    c: &mut crate::db::DbConn,
    contact_id: &str,
) -> Result<Vec<(String, String, Option<String>)>, AppError> {
    use crate::db::schema::conversations;
    use diesel::prelude::*;
    Ok(conversations::table
        .filter(conversations::contact_id.eq(contact_id))
        .select((
            conversations::id,
            conversations::team_id,
            conversations::assignee_id,
        ))
        .load(c)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    state: ConsentState,
    #[serde(default)]
    note: Option<String>,
}

async fn set_consent(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ConsentBody>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let b = body.into_inner();
    let note = b
        .note
        .map(|n| n.trim().chars().take(200).collect::<String>())
        .filter(|n| !n.is_empty());
    let who = actor(&agent, &req);
    let scope = scope_of(&agent);
    let agent_id = agent.id.clone();
    let summary = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                store::summary(c, &id, scope.as_deref())?;
                let change = consent::Change {
                    contact_id: &id,
                    state: b.state,
                    source: ConsentSource::Agent,
                    actor_id: Some(&agent_id),
                    message: None,
                    detail: note.as_deref(),
                };
                let now = now_ms();
                if let Some(before) = consent::change(c, &change, now)? {
                    let after = consent::get(c, &id)?;
                    let entry = AuditEntry::new(&who, AuditAction::ContactConsentChanged)
                        .target("contact", &id)
                        .before(&before)
                        .after(json!({"consent": after, "note": note}));
                    audit::record(c, &entry, now)?;
                }
                store::summary(c, &id, scope.as_deref())
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(summary))
}

/// `GET /api/tags`.
#[derive(Serialize)]
struct TagList {
    tags: Vec<tags::TagCount>,
}

async fn list_tags(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let tags = state.db.run(tags::all).await?;
    Ok(HttpResponse::Ok().json(TagList { tags }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: String,
}

/// One tag, as its changes answer.
#[derive(Serialize)]
struct TagOne {
    tag: TagView,
}

async fn create_tag(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    body: web::Json<NameBody>,
) -> Result<HttpResponse, AppError> {
    let name = clean_tag_name(&body.name)?;
    let who = actor(&agent, &req);
    let tag = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let now = now_ms();
                let tag = tags::create(c, &name, now)?;
                let entry = AuditEntry::new(&who, AuditAction::TagCreated)
                    .target("tag", &tag.id)
                    .after(&tag);
                audit::record(c, &entry, now)?;
                Ok::<_, AppError>(tag)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(TagOne { tag }))
}

async fn rename_tag(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<NameBody>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let name = clean_tag_name(&body.name)?;
    let who = actor(&agent, &req);
    let tag = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let now = now_ms();
                let (before, after) = tags::rename(c, &id, &name, now)?;
                let entry = AuditEntry::new(&who, AuditAction::TagRenamed)
                    .target("tag", &id)
                    .before(&before)
                    .after(&after);
                audit::record(c, &entry, now)?;
                Ok::<_, AppError>(after)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(TagOne { tag }))
}

async fn delete_tag(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let who = actor(&agent, &req);
    state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let now = now_ms();
                let before = tags::delete(c, &id)?;
                let entry = AuditEntry::new(&who, AuditAction::TagDeleted)
                    .target("tag", &id)
                    .before(&before);
                audit::record(c, &entry, now)?;
                Ok::<_, AppError>(())
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    contact_ids: Vec<String>,
}

/// Answer of a bulk change.
#[derive(Serialize)]
struct BulkAnswer {
    /// Contacts that gained (add) or lost (remove) the tag.
    changed: usize,
}

async fn bulk(
    state: web::Data<AppState>,
    agent: AgentInfo,
    req: HttpRequest,
    tag_id: String,
    contact_ids: Vec<String>,
    add: bool,
) -> Result<HttpResponse, AppError> {
    let who = actor(&agent, &req);
    let changed = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let now = now_ms();
                let (changed, action) = if add {
                    (
                        tags::add(c, &tag_id, &contact_ids, now)?,
                        AuditAction::TagBulkAdded,
                    )
                } else {
                    (
                        tags::remove(c, &tag_id, &contact_ids)?,
                        AuditAction::TagBulkRemoved,
                    )
                };
                let listed: Vec<&String> = contact_ids.iter().take(AUDITED_IDS).collect();
                let entry = AuditEntry::new(&who, action)
                    .target("tag", &tag_id)
                    .after(json!({
                        "contacts": contact_ids.len(),
                        "changed": changed,
                        "contact_ids": listed,
                        "truncated": contact_ids.len() > AUDITED_IDS,
                    }));
                audit::record(c, &entry, now)?;
                Ok::<_, AppError>(changed)
            })
        })
        .await?;
    if add && changed > 0 {
        // Tag automations may have started: their first steps are due now.
        state.scheduler.nudge();
    }
    Ok(HttpResponse::Ok().json(BulkAnswer { changed }))
}

async fn bulk_add(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<BulkBody>,
) -> Result<HttpResponse, AppError> {
    bulk(
        state,
        agent,
        req,
        path.into_inner(),
        body.into_inner().contact_ids,
        true,
    )
    .await
}

async fn bulk_remove(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<BulkBody>,
) -> Result<HttpResponse, AppError> {
    bulk(
        state,
        agent,
        req,
        path.into_inner(),
        body.into_inner().contact_ids,
        false,
    )
    .await
}

async fn get_keywords(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let team_id = path.into_inner();
    super::require_team(&agent, &team_id)?;
    let settings = state
        .db
        .run(move |c| {
            if !accounts::team_exists(c, &team_id)? {
                return Err(AppError::NotFound("no such team".into()));
            }
            consent::settings(c, &team_id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(settings))
}

async fn put_keywords(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<KeywordSettings>,
) -> Result<HttpResponse, AppError> {
    let team_id = path.into_inner();
    super::require_team(&agent, &team_id)?;
    let team = team_id.clone();
    let settings = body.into_inner().validated()?;
    let who = actor(&agent, &req);
    let agent_id = agent.id.clone();
    let saved = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                if !accounts::team_exists(c, &team_id)? {
                    return Err(AppError::NotFound("no such team".into()));
                }
                let now = now_ms();
                let before = consent::save_settings(c, &team_id, &settings, &agent_id, now)?;
                let entry = AuditEntry::new(&who, AuditAction::ConsentSettingsChanged)
                    .target("team", &team_id)
                    .team(&team_id)
                    .before(&before)
                    .after(&settings);
                audit::record(c, &entry, now)?;
                Ok(settings)
            })
        })
        .await?;
    consent::settings_changed(&team);
    Ok(HttpResponse::Ok().json(saved))
}
