//! Segments over HTTP (`docs/contacts.md`, "Segments"):
//! - `GET /api/segments` (`leads.read`) — saved segments;
//! - `POST /api/segments/preview` (`leads.read`) — count and first 50 contacts of an
//!   unsaved filter, within the caller's teams (the segment builder's live preview);
//! - `GET /api/segments/{id}/preview` (`leads.read`) — the same for a saved one;
//! - `POST /api/segments`, `PUT`/`DELETE /api/segments/{id}` (`campaigns.manage`,
//!   audited).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::audit::actor;
use super::contacts::scope_of;
use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use crate::auth::AuthAgent;
use crate::clock::now_ms;
use crate::contacts::clean_segment_name;
use crate::contacts::segment::SegmentFilter;
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::audit::{self, AuditAction, AuditEntry};
use crate::store::contacts::{self as contacts_store, ContactSummary, ListQuery};
use crate::store::segments::{self as store, SegmentView, PREVIEW};
use crate::store::tags;

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(GET "/segments", Rule::Agent(P::LeadsRead), list),
    endpoint!(POST "/segments/preview", Rule::Agent(P::LeadsRead), preview),
    endpoint!(POST "/segments", Rule::Agent(P::CampaignsManage), create),
    endpoint!(GET "/segments/{id}/preview", Rule::Agent(P::LeadsRead), preview_saved),
    endpoint!(PUT "/segments/{id}", Rule::Agent(P::CampaignsManage), update),
    endpoint!(DELETE "/segments/{id}", Rule::Agent(P::CampaignsManage), delete),
];

#[derive(Serialize)]
struct SegmentList {
    segments: Vec<SegmentView>,
}

#[derive(Serialize)]
struct SegmentOne {
    segment: SegmentView,
}

/// A preview: how many contacts match and the first [`PREVIEW`], newest first.
#[derive(Serialize)]
struct Preview {
    count: i64,
    contacts: Vec<ContactSummary>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterBody {
    filter: SegmentFilter,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentBody {
    name: String,
    filter: SegmentFilter,
}

/// The filter validated, its tags checked to exist.
fn checked(c: &mut DbConn, filter: SegmentFilter) -> Result<SegmentFilter, AppError> {
    let filter = filter.validated()?;
    tags::check_exist(c, filter.tag_ids())?;
    Ok(filter)
}

fn preview_of(
    c: &mut DbConn,
    filter: SegmentFilter,
    scope: Option<&[String]>,
) -> Result<Preview, AppError> {
    let query = ListQuery {
        filter,
        q: None,
        limit: PREVIEW,
        offset: 0,
    };
    let page = contacts_store::list(c, &query, scope)?;
    Ok(Preview {
        count: page.total,
        contacts: page.contacts,
    })
}

async fn list(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let segments = state.db.run(store::all).await?;
    Ok(HttpResponse::Ok().json(SegmentList { segments }))
}

async fn preview(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    body: web::Json<FilterBody>,
) -> Result<HttpResponse, AppError> {
    let filter = body.into_inner().filter;
    let scope = scope_of(&agent);
    let p = state
        .db
        .run(move |c| {
            let filter = checked(c, filter)?;
            preview_of(c, filter, scope.as_deref())
        })
        .await?;
    Ok(HttpResponse::Ok().json(p))
}

async fn preview_saved(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let scope = scope_of(&agent);
    let p = state
        .db
        .run(move |c| {
            let segment = store::get(c, &id)?;
            preview_of(c, segment.filter, scope.as_deref())
        })
        .await?;
    Ok(HttpResponse::Ok().json(p))
}

async fn create(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    body: web::Json<SegmentBody>,
) -> Result<HttpResponse, AppError> {
    let b = body.into_inner();
    let name = clean_segment_name(&b.name)?;
    let who = actor(&agent, &req);
    let agent_id = agent.id.clone();
    let segment = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let filter = checked(c, b.filter)?;
                let now = now_ms();
                let segment = store::create(c, &name, &filter, &agent_id, now)?;
                let entry = AuditEntry::new(&who, AuditAction::SegmentCreated)
                    .target("segment", &segment.id)
                    .after(&segment);
                audit::record(c, &entry, now)?;
                Ok::<_, AppError>(segment)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(SegmentOne { segment }))
}

async fn update(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<SegmentBody>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let b = body.into_inner();
    let name = clean_segment_name(&b.name)?;
    let who = actor(&agent, &req);
    let segment = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let filter = checked(c, b.filter)?;
                let now = now_ms();
                let (before, after) = store::update(c, &id, &name, &filter, now)?;
                let entry = AuditEntry::new(&who, AuditAction::SegmentUpdated)
                    .target("segment", &id)
                    .before(&before)
                    .after(&after);
                audit::record(c, &entry, now)?;
                Ok::<_, AppError>(after)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(SegmentOne { segment }))
}

async fn delete(
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
                let before = store::delete(c, &id)?;
                let entry = AuditEntry::new(&who, AuditAction::SegmentDeleted)
                    .target("segment", &id)
                    .before(&before);
                audit::record(c, &entry, now)?;
                Ok::<_, AppError>(())
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
