//! The guest widget's API: `POST /api/widget/sessions` mints (or renews) a guest
//! token for a website visitor; `GET /api/widget/config?team=slug` tells the widget
//! what to show (pre-chat form, greeting, away message, whether anyone answers now);
//! `GET`/`PUT /api/teams/{id}/widget` read and change those settings.

use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::auth::AuthAgent;
use crate::auth::TokenSubject;
use crate::clock::now_ms;
use crate::error::AppError;
use crate::protocol::PresenceStatus;
use crate::state::AppState;
use crate::store::accounts;
use crate::store::audit::{self, AuditAction, AuditEntry};
use crate::store::conversations::{self, NewGuestConversation, VisitorProfile};
use crate::store::widget_settings::{self, WidgetUpdate};
use crate::visitor;

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(POST "/widget/sessions", Rule::Open, create_session),
    endpoint!(GET "/widget/config", Rule::Open, config),
    endpoint!(GET "/teams/{id}/widget", Rule::Agent(P::SettingsTeam), get_settings),
    endpoint!(PUT "/teams/{id}/widget", Rule::Agent(P::SettingsTeam), put_settings),
];

#[derive(Deserialize)]
struct ConfigQuery {
    team: Option<String>,
}

/// Public: what the widget of `team` shows. `available` is false outside business
/// hours or when no member of the team is online; the widget then shows the away
/// message (and still accepts messages).
async fn config(
    state: web::Data<AppState>,
    query: web::Query<ConfigQuery>,
) -> Result<HttpResponse, AppError> {
    let slug = field(query.into_inner().team, "team", 48)?.unwrap_or_else(|| "default".into());
    let (settings, members) = state
        .db
        .run(move |c| {
            let team = accounts::team_by_slug(c, &slug)?;
            Ok((
                widget_settings::load(c, &team.id)?,
                widget_settings::member_ids(c, &team.id)?,
            ))
        })
        .await?;
    let presence = state.hub.presence_snapshot();
    let someone_online = members
        .iter()
        .any(|id| presence.get(id) == Some(&PresenceStatus::Online));
    let open_now = settings
        .business_hours
        .as_ref()
        .is_none_or(|h| h.is_open(now_ms()));
    Ok(HttpResponse::Ok()
        // Presence changes by the second; a cached answer would show a stale state.
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "prechat_fields": settings.prechat_fields,
            "prechat_required": settings.prechat_required,
            "greeting": settings.greeting,
            "away_message": settings.away_message,
            "open_now": open_now,
            "available": open_now && someone_online,
        })))
}

async fn get_settings(
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
            widget_settings::load(c, &team_id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(settings))
}

async fn put_settings(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<WidgetUpdate>,
) -> Result<HttpResponse, AppError> {
    let team_id = path.into_inner();
    super::require_team(&agent, &team_id)?;
    let update = body.into_inner();
    let who = super::audit::actor(&agent, &req);
    let settings = state
        .db
        .run(move |c| {
            crate::db::write_transaction(c, |c| {
                if !accounts::team_exists(c, &team_id)? {
                    return Err(AppError::NotFound("no such team".into()));
                }
                let before = widget_settings::load(c, &team_id)?;
                let after = widget_settings::update(c, &team_id, &update)?;
                let entry = AuditEntry::new(&who, AuditAction::WidgetSettingsChanged)
                    .target("team", &team_id)
                    .team(&team_id)
                    .before(&before)
                    .after(&after);
                audit::record(c, &entry, now_ms())?;
                Ok(after)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(settings))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SessionBody {
    team: Option<String>,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    source: Option<String>,
    page_url: Option<String>,
    guest_token: Option<String>,
    /// `handle/source` of a quick-chat link (the hosted page sends it).
    quick_link: Option<String>,
    /// The browser's IANA time zone (`Intl.DateTimeFormat().resolvedOptions().timeZone`).
    time_zone: Option<String>,
    /// The browser's BCP 47 locale (`navigator.language`).
    locale: Option<String>,
}

/// What the session request tells of the visitor: the body's time zone and locale,
/// else the best `Accept-Language` tag; the country from either.
///
/// # Errors
/// [`AppError::Validation`] for a time zone or locale that is not one.
fn visitor_profile(
    req: &HttpRequest,
    time_zone: Option<String>,
    locale: Option<String>,
) -> Result<VisitorProfile, AppError> {
    let time_zone = field(time_zone, "time_zone", visitor::MAX_TIME_ZONE_CHARS)?;
    if time_zone
        .as_deref()
        .is_some_and(|tz| !visitor::is_time_zone(tz))
    {
        return Err(AppError::Validation(
            "The time zone is not one we know, such as Asia/Jakarta.".into(),
        ));
    }
    let locale = match field(locale, "locale", visitor::MAX_LOCALE_CHARS)? {
        Some(l) => Some(visitor::normalise_locale(&l).ok_or_else(|| {
            AppError::Validation("The language is not one we know, such as id-ID.".into())
        })?),
        None => None,
    };
    // A malformed header is the browser's business, not the visitor's: ignored.
    let accepted = req
        .headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(visitor::accept_language_tags)
        .unwrap_or_default();
    let mut locales: Vec<&str> = locale.iter().map(String::as_str).collect();
    locales.extend(accepted.iter().map(String::as_str));
    Ok(VisitorProfile {
        country: visitor::country(time_zone.as_deref(), &locales),
        locale: locale.or_else(|| accepted.first().cloned()),
        time_zone,
    })
}

/// How a form field is called in messages to the person who filled it in.
fn label(name: &str) -> &str {
    match name {
        "name" => "Your name",
        "email" => "Your email address",
        "phone" => "Your phone number",
        "page_url" => "The page address",
        "source" => "The source",
        "team" => "The team name",
        "quick_link" => "The quick-chat link",
        "time_zone" => "The time zone",
        "locale" => "The language",
        other => other,
    }
}

/// Trims an optional form field, treating blank as absent, and bounds its length.
///
/// # Errors
/// [`AppError::Validation`] with a sentence for the visitor ("Your name can be at
/// most 100 characters.").
fn field(value: Option<String>, name: &str, max_chars: usize) -> Result<Option<String>, AppError> {
    let Some(v) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    if v.chars().count() > max_chars {
        return Err(AppError::Validation(format!(
            "{} can be at most {max_chars} characters.",
            label(name)
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(AppError::Validation(format!(
            "{} cannot contain line breaks or other invisible characters.",
            label(name)
        )));
    }
    Ok(Some(v))
}

async fn create_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<SessionBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let profile = visitor_profile(&req, body.time_zone, body.locale)?;

    if let Some(token) = body
        .guest_token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let TokenSubject::Guest {
            contact_id,
            conversation_id,
        } = state.tokens.verify(token)?
        else {
            return Err(AppError::Unauthorized("not a guest token".into()));
        };
        let lookup = conversation_id.clone();
        let (contact, renewal) = (contact_id.clone(), profile.clone());
        match state
            .db
            .run(move |c| {
                let view = conversations::summary(c, &lookup)?;
                if view.contact.id == contact {
                    conversations::renew_contact(c, &contact, &renewal, now_ms())?;
                }
                Ok(view)
            })
            .await
        {
            Ok(view) if view.contact.id == contact_id => {
                // Renew the token so an active visitor's session never expires.
                let guest_token = state.tokens.issue_guest(&contact_id, &conversation_id)?;
                return Ok(HttpResponse::Ok().json(json!({
                    "guest_token": guest_token,
                    "conversation_id": conversation_id,
                    "contact_id": contact_id,
                    "last_seq": view.last_seq,
                    "agent_read_seq": view.agent_read_seq,
                    "guest_read_seq": view.guest_read_seq,
                })));
            }
            // The conversation is gone (e.g. the database was reset): start afresh.
            Ok(_) | Err(AppError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }

    // Only creations count against the limit: a returning visitor renews its token
    // on every page view, and that must never lock it out of its own conversation.
    state.limits.widget(super::client_ip(&req))?;
    let form = NewGuestConversation {
        team_id: String::new(),
        channel: "widget".into(),
        name: field(body.name, "name", 100)?,
        email: field(body.email, "email", 254)?,
        phone: field(body.phone, "phone", 32)?,
        source: field(body.source, "source", 64)?,
        page_url: field(body.page_url, "page_url", 2048)?,
        preferred_agent_id: None,
        profile,
    };
    let team = field(body.team, "team", 48)?.unwrap_or_else(|| "default".into());
    let quick_link = field(body.quick_link, "quick_link", 65)?;
    let view = state
        .db
        .run(move |c| {
            // A quick-chat link decides team, source and owner (routed owner-first).
            if let Some(link) = &quick_link {
                let (handle, source) = link.split_once('/').ok_or_else(|| {
                    AppError::Validation(
                        "This quick-chat link is not complete; please check the address.".into(),
                    )
                })?;
                let link = super::quick_chat::resolve(c, handle, source)?;
                let view = conversations::create_with_contact(
                    c,
                    NewGuestConversation {
                        team_id: link.team_id.clone(),
                        channel: "quick_chat".into(),
                        source: Some(link.source.clone()),
                        preferred_agent_id: Some(link.agent_id.clone()),
                        ..form
                    },
                )?;
                // The link counts conversations agents can see: this one now if
                // the pre-chat form made it visible, else at its first message
                // (`store::leads::process_message`) — an opened page is none.
                if view.visible_to_agents() {
                    super::quick_chat::count_conversation(c, &link.id)?;
                }
                return Ok(view);
            }
            let team = accounts::team_by_slug(c, &team)?;
            conversations::create_with_contact(
                c,
                NewGuestConversation {
                    team_id: team.id,
                    ..form
                },
            )
        })
        .await?;
    let guest_token = state.tokens.issue_guest(&view.contact.id, &view.id)?;
    Ok(HttpResponse::Created().json(json!({
        "guest_token": guest_token,
        "conversation_id": view.id,
        "contact_id": view.contact.id,
        "last_seq": 0,
        "agent_read_seq": 0,
        "guest_read_seq": 0,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_profile_comes_from_the_body_then_accept_language() {
        let req = TestRequest::default()
            .insert_header(("Accept-Language", "de-AT,de;q=0.9,en;q=0.5"))
            .to_http_request();
        let p = visitor_profile(&req, None, None).unwrap();
        assert_eq!(p.locale.as_deref(), Some("de-AT"));
        assert_eq!(p.country.as_deref(), Some("AT"));
        assert_eq!(p.time_zone, None);
        let p = visitor_profile(&req, Some("Asia/Jakarta".into()), Some("en_US".into())).unwrap();
        assert_eq!(p.locale.as_deref(), Some("en-US"));
        assert_eq!(
            p.country.as_deref(),
            Some("ID"),
            "the zone wins over the locale"
        );
        let bare = TestRequest::default().to_http_request();
        assert_eq!(
            visitor_profile(&bare, None, None).unwrap(),
            VisitorProfile::default()
        );
        assert!(visitor_profile(&bare, Some("../etc".into()), None).is_err());
        assert!(visitor_profile(&bare, None, Some("en US!".into())).is_err());
    }

    #[test]
    fn field_errors_are_sentences_for_the_visitor() {
        let Err(AppError::Validation(m)) = field(Some("x".repeat(101)), "name", 100) else {
            panic!("a long name is refused");
        };
        assert_eq!(m, "Your name can be at most 100 characters.");
        assert!(matches!(
            field(Some("a\u{7}b".into()), "email", 254),
            Err(AppError::Validation(_))
        ));
        assert_eq!(field(Some("  ".into()), "name", 100).unwrap(), None);
    }
}
