//! Quick-chat links (seed 003): an agent shares `/q/{handle}/{source}` (e.g.
//! `/q/sarah/linkedin`); the hosted page shows whose link it is (the agent's name,
//! initials and team, whether they are online) above the widget engine running
//! full-page, so a lead chats at once without signing up. The session it opens is
//! attributed to the link's source, belongs to the link owner's team and is routed
//! to the owner first (`preferred_agent_id`). Page views count as clicks,
//! conversations started through the link as conversations.
//!
//! Also here: `POST /api/widget/contact`, where a guest leaves an email or phone
//! (progressive engagement), which may merge its lead with the same person's lead.

use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{AuthAgent, Principal};
use crate::clock::{now_ms, rfc3339};
use crate::db::schema::{agent_handles, agents, quick_links, teams};
use crate::db::{is_unique_violation, DbConn};
use crate::error::AppError;
use crate::model::new_id;
use crate::protocol::PresenceStatus;
use crate::state::AppState;
use crate::store::audit::{self, AuditAction, AuditEntry};

use super::pages::{self, PageText};

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(GET "/quick-links", Rule::Agent(P::QuickLinksManage), list),
    endpoint!(POST "/quick-links", Rule::Agent(P::QuickLinksManage), create),
    endpoint!(DELETE "/quick-links/{id}", Rule::Agent(P::QuickLinksManage), deactivate),
    endpoint!(POST "/widget/contact", Rule::Guest, contact),
];

/// Page routes (outside `/api`).
pub fn pages(cfg: &mut web::ServiceConfig) {
    cfg.route("/q/{handle}/{source}", web::get().to(page));
}

/// A row of `quick_links` (on the wire as [`QuickLinkView`]).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = quick_links)]
pub struct QuickLinkRow {
    /// Link id.
    pub id: String,
    /// Owner.
    pub agent_id: String,
    /// Team the conversations go to.
    pub team_id: String,
    /// The owner's handle.
    pub handle: String,
    /// Source label (`linkedin`).
    pub source: String,
    /// Page views.
    pub clicks: i64,
    /// Conversations started.
    pub conversations: i64,
    /// 1 while usable.
    pub active: i32,
    /// Epoch ms.
    pub created_at: i64,
}

/// A quick-chat link as the API shows it: like the rest of the API, a boolean
/// `active` and an RFC 3339 `created_at`.
#[derive(Debug, Serialize)]
pub struct QuickLinkView {
    /// Link id.
    pub id: String,
    /// Owner.
    pub agent_id: String,
    /// Team the conversations go to.
    pub team_id: String,
    /// The owner's handle.
    pub handle: String,
    /// Source label (`linkedin`).
    pub source: String,
    /// Page views.
    pub clicks: i64,
    /// Conversations started.
    pub conversations: i64,
    /// False once deactivated (`DELETE /api/quick-links/{id}`).
    pub active: bool,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl From<QuickLinkRow> for QuickLinkView {
    fn from(r: QuickLinkRow) -> Self {
        Self {
            id: r.id,
            agent_id: r.agent_id,
            team_id: r.team_id,
            handle: r.handle,
            source: r.source,
            clicks: r.clicks,
            conversations: r.conversations,
            active: r.active != 0,
            created_at: rfc3339(r.created_at),
        }
    }
}

/// Handles and sources: 1-32 of `a-z 0-9 - _` (they go into URLs and the page).
fn slug(v: &str, name: &str) -> Result<String, AppError> {
    let v = v.trim().to_ascii_lowercase();
    let ok = !v.is_empty()
        && v.len() <= 32
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(v)
    } else {
        Err(AppError::Validation(format!(
            "{name} must be 1-32 of a-z, 0-9, - and _"
        )))
    }
}

/// The active link `handle/source`.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn resolve(c: &mut DbConn, handle: &str, source: &str) -> Result<QuickLinkRow, AppError> {
    quick_links::table
        .filter(quick_links::handle.eq(handle))
        .filter(quick_links::source.eq(source))
        .filter(quick_links::active.eq(1))
        .select(QuickLinkRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::NotFound("no such quick-chat link".into()))
}

/// Counts a conversation started through a link.
///
/// # Errors
/// Database errors.
pub fn count_conversation(c: &mut DbConn, id: &str) -> Result<(), AppError> {
    diesel::update(quick_links::table.find(id))
        .set(quick_links::conversations.eq(quick_links::conversations + 1))
        .execute(c)?;
    Ok(())
}

#[derive(Deserialize)]
struct CreateBody {
    source: String,
    #[serde(default)]
    handle: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
}

/// `POST /api/quick-links {source, handle?, team_id?}`: the caller's link for a
/// source. The first link claims the handle (default: the agent's name in slug
/// form); a handle belongs to one agent (409 otherwise).
async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, AppError> {
    let b = body.into_inner();
    let source = slug(&b.source, "source")?;
    let wanted = match &b.handle {
        Some(h) => Some(slug(h, "handle")?),
        None => None,
    };
    let team = match b.team_id.or_else(|| agent.team_ids.first().cloned()) {
        Some(t) if agent.can_access_team(&t) => t,
        Some(_) => return Err(AppError::Forbidden("not your team".into())),
        None => {
            return Err(AppError::Validation(
                "you are in no team; give team_id".into(),
            ))
        }
    };
    let agent_id = agent.id.clone();
    let fallback: String = agent
        .name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(32)
        .collect();
    let who = super::audit::actor(&agent, &req);
    let row = state
        .db
        .run(move |c| {
            crate::db::write_transaction(c, |c| {
                let row = store_link(c, agent_id, team, wanted, fallback, source)?;
                let entry = AuditEntry::new(&who, AuditAction::QuickLinkCreated)
                    .target("quick_link", &row.id)
                    .team(&row.team_id)
                    .after(QuickLinkView::from(row.clone()));
                audit::record(c, &entry, row.created_at)?;
                Ok(row)
            })
        })
        .await?;
    let url = format!("/q/{}/{}", row.handle, row.source);
    Ok(HttpResponse::Created().json(json!({"link": QuickLinkView::from(row), "url": url})))
}

/// Stores the caller's link for `source`, claiming the handle (`wanted`, else
/// `fallback`) on the agent's first link.
///
/// # Errors
/// [`AppError::Conflict`] for a handle taken or differing from the agent's, or a
/// second link for the source; [`AppError::Validation`] for a bad handle; database
/// errors.
fn store_link(
    c: &mut DbConn,
    agent_id: String,
    team: String,
    wanted: Option<String>,
    fallback: String,
    source: String,
) -> Result<QuickLinkRow, AppError> {
    let now = now_ms();
    let current: Option<String> = agent_handles::table
        .filter(agent_handles::agent_id.eq(&agent_id))
        .select(agent_handles::handle)
        .first(c)
        .optional()?;
    let handle = match (current, wanted) {
        (Some(h), Some(w)) if h != w => {
            return Err(AppError::Conflict(format!("your handle is already {h:?}")))
        }
        (Some(h), _) => h,
        (None, w) => {
            let h = w.unwrap_or(fallback);
            let h = slug(&h, "handle")?;
            match c.transaction(|c| {
                diesel::insert_into(agent_handles::table)
                    .values((
                        agent_handles::handle.eq(&h),
                        agent_handles::agent_id.eq(&agent_id),
                        agent_handles::created_at.eq(now),
                    ))
                    .execute(c)
            }) {
                Ok(_) => h,
                Err(e) if is_unique_violation(&e) => {
                    return Err(AppError::Conflict(format!("handle {h:?} is taken")))
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let row = QuickLinkRow {
        id: new_id(),
        agent_id,
        team_id: team,
        handle,
        source,
        clicks: 0,
        conversations: 0,
        active: 1,
        created_at: now,
    };
    match c.transaction(|c| {
        diesel::insert_into(quick_links::table)
            .values(&row)
            .execute(c)
    }) {
        Ok(_) => Ok(row),
        Err(e) if is_unique_violation(&e) => Err(AppError::Conflict(
            "you already have a link for this source".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// `GET /api/quick-links`: the caller's links; team leads and admins see their
/// teams' links. Each with its click and conversation counts.
async fn list(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
) -> Result<HttpResponse, AppError> {
    let rows: Vec<QuickLinkRow> = state
        .db
        .run(move |c| {
            let mut q = quick_links::table
                .select(QuickLinkRow::as_select())
                .order(quick_links::created_at.asc())
                .into_boxed();
            if agent.role.all_teams() {
            } else if agent.role.supervises() {
                q = q.filter(quick_links::team_id.eq_any(agent.team_ids.clone()));
            } else {
                q = q.filter(quick_links::agent_id.eq(agent.id.clone()));
            }
            Ok(q.load(c)?)
        })
        .await?;
    let links: Vec<QuickLinkView> = rows.into_iter().map(QuickLinkView::from).collect();
    Ok(HttpResponse::Ok().json(json!({"quick_links": links})))
}

async fn deactivate(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let who = super::audit::actor(&agent, &req);
    state
        .db
        .run(move |c| {
            crate::db::write_transaction(c, |c| {
                let row: QuickLinkRow = quick_links::table
                    .find(&id)
                    .select(QuickLinkRow::as_select())
                    .first(c)
                    .optional()?
                    .ok_or_else(|| AppError::NotFound("no such link".into()))?;
                let allowed = row.agent_id == agent.id
                    || (agent.role.supervises() && agent.can_access_team(&row.team_id));
                if !allowed {
                    return Err(AppError::Forbidden("not your link".into()));
                }
                diesel::update(quick_links::table.find(&id))
                    .set(quick_links::active.eq(0))
                    .execute(c)?;
                let after = QuickLinkRow {
                    active: 0,
                    ..row.clone()
                };
                let entry = AuditEntry::new(&who, AuditAction::QuickLinkDeactivated)
                    .target("quick_link", &id)
                    .team(&row.team_id)
                    .before(QuickLinkView::from(row))
                    .after(QuickLinkView::from(after));
                audit::record(c, &entry, now_ms()).map(|_| ())
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What a person sees for a quick-chat link that does not exist (or no longer).
const NO_SUCH_LINK: PageText = PageText {
    title: "This chat link is not active",
    message: "The link may be mistyped, or its owner has switched it off. Ask the person who shared it for a new one.",
};

/// The hosted page: a header card with the link owner's name, initials, team and
/// presence, and the widget engine opened full-page below it, bound to the link.
/// Unknown or deactivated links: a friendly 404 page for browsers, JSON for API
/// clients (`pages::respond`).
async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (handle, source) = path.into_inner();
    match render_page(&state, &handle, &source).await {
        Ok(resp) => resp,
        Err(e) => pages::respond(&req, e, &NO_SUCH_LINK),
    }
}

/// Counts the click and renders the page of the active link `handle/source`.
async fn render_page(
    state: &AppState,
    handle: &str,
    source: &str,
) -> Result<HttpResponse, AppError> {
    let gone = || AppError::NotFound("no such quick-chat link".into());
    let handle = slug(handle, "handle").map_err(|_| gone())?;
    let source = slug(source, "source").map_err(|_| gone())?;
    let (h, s) = (handle.clone(), source.clone());
    let (agent_id, agent_name, team_name, team_slug) = state
        .db
        .run(move |c| {
            let link = resolve(c, &h, &s)?;
            diesel::update(quick_links::table.find(&link.id))
                .set(quick_links::clicks.eq(quick_links::clicks + 1))
                .execute(c)?;
            let agent_name: String = agents::table
                .find(&link.agent_id)
                .select(agents::name)
                .first(c)?;
            let (team_name, team_slug): (String, String) = teams::table
                .find(&link.team_id)
                .select((teams::name, teams::slug))
                .first(c)?;
            Ok((link.agent_id, agent_name, team_name, team_slug))
        })
        .await?;
    let online = state.hub.presence_snapshot().get(&agent_id) == Some(&PresenceStatus::Online);
    let first_name = agent_name.split_whitespace().next().unwrap_or(&agent_name);
    let title = format!("Chat with {first_name}");
    let html = pages::fill(
        QUICK_CHAT_PAGE,
        &[
            ("HANDLE", &handle),
            ("SOURCE", &source),
            ("TEAM_SLUG", &team_slug),
            ("TEAM_NAME", &team_name),
            ("AGENT_NAME", &agent_name),
            ("AGENT_INITIALS", &initials(&agent_name)),
            ("TITLE", &title),
            ("PRESENCE", if online { "online" } else { "offline" }),
            (
                "PRESENCE_TEXT",
                if online {
                    "Online now"
                } else {
                    "Away — leave a message"
                },
            ),
        ],
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
        ))
        .body(html))
}

/// Up to two letters for an avatar: the first letters of the first and last
/// words (`Sarah van Dijk` → `SD`), or the first two of a single word.
fn initials(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    let letters: String = match words.as_slice() {
        [] => "?".into(),
        [one] => one.chars().take(2).collect(),
        [first, .., last] => first.chars().take(1).chain(last.chars().take(1)).collect(),
    };
    letters.to_uppercase()
}

/// The hosted page's HTML (`widget/quick-chat.html`, embedded at build time).
const QUICK_CHAT_PAGE: &str = include_str!("../../../widget/quick-chat.html");

#[derive(Deserialize, Default)]
#[serde(default)]
struct ContactBody {
    email: Option<String>,
    phone: Option<String>,
}

/// `POST /api/widget/contact {email?, phone?}` (guest token): the guest leaves an
/// email or phone. Joins the lead with the same person's lead if there is one.
async fn contact(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<ContactBody>,
) -> Result<HttpResponse, AppError> {
    let Principal::Guest(guest) = principal else {
        return Err(AppError::Forbidden("guests only".into()));
    };
    let b = body.into_inner();
    let email = b
        .email
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty());
    if let Some(e) = &email {
        let ok = e.len() <= 254
            && e.split_once('@')
                .is_some_and(|(a, d)| !a.is_empty() && d.contains('.'));
        if !ok {
            return Err(AppError::Validation("email is not valid".into()));
        }
    }
    let phone = b.phone.filter(|p| !p.trim().is_empty());
    if email.is_none() && phone.is_none() {
        return Err(AppError::Validation("give an email or a phone".into()));
    }
    let contact_id = guest.contact_id.clone();
    let (lead, timeline) = state
        .db
        .run(move |c| crate::store::leads::engage(c, &contact_id, email, phone))
        .await?;
    if let Some(l) = &lead {
        super::leads::announce(&state, l, &timeline).await;
    }
    Ok(HttpResponse::Ok().json(json!({"ok": true})))
}

#[cfg(test)]
mod tests {
    use super::initials;

    #[test]
    fn initials_take_first_and_last_words() {
        assert_eq!(initials("Sarah van Dijk"), "SD");
        assert_eq!(initials("  ayu "), "AY");
        assert_eq!(initials("Émile Zola"), "ÉZ");
        assert_eq!(initials(""), "?");
    }
}
