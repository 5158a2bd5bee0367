//! WebSocket upgrades: `/ws/agent` and `/ws/guest`. The session itself lives in
//! [`crate::actors::session`].

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::actors::session::{self, Endpoint};
use crate::auth::{bearer, Principal};
use crate::error::AppError;
use crate::state::AppState;

/// `GET /ws/agent`.
pub async fn agent(
    state: web::Data<AppState>,
    req: HttpRequest,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    check_origin(&state, &req)?;
    upgrade(state, req, stream, Endpoint::Agent).await
}

/// `GET /ws/guest`. Any origin: the widget runs on customers' sites.
pub async fn guest(
    state: web::Data<AppState>,
    req: HttpRequest,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    upgrade(state, req, stream, Endpoint::Guest).await
}

async fn upgrade(
    state: web::Data<AppState>,
    req: HttpRequest,
    stream: web::Payload,
    endpoint: Endpoint,
) -> Result<HttpResponse, actix_web::Error> {
    // A header token (non-browser clients) is checked before upgrading so a bad one
    // gets a plain 401; browsers send theirs in the first frame instead.
    let principal = match bearer(&req)? {
        Some(token) => Some(Principal::from_token(&state, &token).await?),
        None => None,
    };
    session::start(&req, stream, state.get_ref().clone(), endpoint, principal)
}

/// Agent sessions carry an agent's authority, so a page on another site must not
/// open one with a token it obtained somehow. Browsers always send `Origin`; other
/// clients may omit it.
fn check_origin(state: &AppState, req: &HttpRequest) -> Result<(), AppError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .map_err(|_| AppError::Forbidden("unreadable Origin header".into()))?
        .trim_end_matches('/')
        .to_lowercase();
    let host = req.connection_info().host().to_lowercase();
    let same_host = origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host);
    if same_host || state.config.allowed_origins.contains(&origin) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "origin {origin} may not open agent sessions (see SWITCHBOARD_ALLOWED_ORIGINS)"
        )))
    }
}
