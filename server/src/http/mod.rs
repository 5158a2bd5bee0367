//! HTTP routes (`docs/api.md`): JSON API, WebSocket upgrades, pages and assets.
//!
//! Every handler returns `Result<_, AppError>`; request-body, query and path parse
//! failures are turned into the same JSON error shape by the configs installed here.

mod agents;
mod assets;
mod audit;
mod auth;
mod automations;
mod bot;
mod broadcasts;
mod contacts;
mod conversations;
pub mod endpoints;
mod health;
mod jobs;
mod knowledge;
mod leads;
mod marketing;
mod media;
mod numbers;
mod pages;
mod quick_chat;
mod routing;
mod segments;
mod templates;
mod webhooks;
mod whatsapp;
mod widget;
mod ws;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use actix_cors::Cors;
use actix_web::dev::Service;
use actix_web::http::header;
use actix_web::middleware::{Compress, DefaultHeaders};
use actix_web::{web, HttpRequest};
use futures_util::FutureExt;

use crate::error::AppError;
use crate::state::AppState;

/// Installs every route on an actix-web app.
pub fn configure(cfg: &mut web::ServiceConfig, state: &AppState) {
    let max_body = state.config.max_body_bytes;
    cfg.app_data(web::Data::new(state.clone()))
        .app_data(
            web::JsonConfig::default()
                .limit(max_body)
                .error_handler(|err, _| AppError::from(err).into()),
        )
        .app_data(web::QueryConfig::default().error_handler(|err, _| AppError::from(err).into()))
        .app_data(web::PathConfig::default().error_handler(|err, _| AppError::from(err).into()))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/ws/agent", web::get().to(ws::agent))
        .route("/ws/guest", web::get().to(ws::guest))
        .service(
            web::scope("/api")
                // Bearer tokens, not cookies, authenticate the API, so any origin may
                // call it (the widget runs on customers' sites); no credentials mode.
                .wrap(
                    Cors::default()
                        .allow_any_origin()
                        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
                        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                        .max_age(3600),
                )
                .configure(endpoints::mount)
                .default_service(web::to(not_found)),
        )
        .configure(webhooks::routes)
        .configure(quick_chat::pages)
        .configure(assets::routes)
        .default_service(web::to(not_found));
}

/// Security headers for every response, and gzip where the client accepts it.
pub fn default_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "strict-origin-when-cross-origin"))
}

/// Response compression (skipped for WebSocket upgrades by actix itself).
pub fn compress() -> Compress {
    Compress::default()
}

/// An unknown route: a friendly page for a person's browser, the JSON error for
/// API clients (`pages::respond`).
async fn not_found(req: HttpRequest) -> actix_web::HttpResponse {
    pages::respond(
        &req,
        AppError::NotFound("no such route".into()),
        &pages::NO_SUCH_PAGE,
    )
}

/// The client's address, for rate limits and logs: the TCP peer, or — when the peer
/// is one of `SWITCHBOARD_TRUSTED_PROXIES` — the address its `X-Forwarded-For` names
/// (see [`forwarded_client`]).
pub(crate) fn client_ip(req: &HttpRequest) -> IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let trusted = req
        .app_data::<web::Data<crate::state::AppState>>()
        .map(|s| s.config.trusted_proxies.as_slice())
        .unwrap_or_default();
    if trusted.is_empty() {
        return peer;
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    forwarded_client(peer, &forwarded.join(","), trusted)
}

/// The real client behind trusted proxies. Each proxy appends the address it heard
/// from to `X-Forwarded-For`, so the list is read from the right: the first entry
/// that is not itself a trusted proxy is the client (entries further left were
/// written by the client and prove nothing). A peer that is not trusted is the
/// client, whatever it claims; a trusted peer without a usable header is too.
pub(crate) fn forwarded_client(
    peer: IpAddr,
    forwarded_for: &str,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for entry in forwarded_for.rsplit(',') {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            // Garbage (or a port, or an obfuscated name) ends the trustworthy part.
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// Logs method, path (never the query string, which could carry secrets from
/// careless clients), status and duration of every request.
pub fn access_log<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>>
where
    S: Service<
        actix_web::dev::ServiceRequest,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_string();
    srv.call(req).map(move |res| {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match &res {
            Ok(r) => tracing::debug!(%method, %path, status = r.status().as_u16(), ms, "request"),
            Err(e) => tracing::debug!(%method, %path, error = %e, ms, "request failed"),
        }
        res
    })
}

/// Whether `agent` may act in `team_id` (its own teams; every team with
/// `teams.all`). *What* it may do there is the route's rule (`endpoints`); this is
/// *where*.
///
/// # Errors
/// [`AppError::Forbidden`] for a team the agent is not in.
pub(crate) fn require_team(
    agent: &crate::store::accounts::AgentInfo,
    team_id: &str,
) -> Result<(), AppError> {
    if agent.can_access_team(team_id) {
        Ok(())
    } else {
        Err(AppError::Forbidden("not your team".into()))
    }
}

/// The team a request is about: the one named, else the caller's first team, else
/// the default team.
///
/// # Errors
/// [`AppError::Forbidden`] when the caller is not in that team (admins are in all);
/// database errors.
pub(crate) async fn team_for(
    state: &AppState,
    agent: &crate::store::accounts::AgentInfo,
    team: Option<String>,
) -> Result<String, AppError> {
    let team = match team {
        Some(t) => t,
        None => match agent.team_ids.first() {
            Some(t) => t.clone(),
            None => {
                state
                    .db
                    .run(|c| crate::store::accounts::team_by_slug(c, "default"))
                    .await?
                    .id
            }
        },
    };
    if !agent.can_access_team(&team) {
        return Err(AppError::Forbidden("not your team".into()));
    }
    Ok(team)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        let none: Vec<ipnet::IpNet> = Vec::new();
        // (peer, X-Forwarded-For, trusted proxies, the client address believed)
        let cases = [
            // An untrusted peer cannot pick its address.
            ("203.0.113.9", "198.51.100.1", &trusted, "203.0.113.9"),
            // A trusted proxy: the rightmost address it did not add itself.
            (
                "10.0.0.2",
                "6.6.6.6, 198.51.100.1, 10.0.0.3",
                &trusted,
                "198.51.100.1",
            ),
            ("10.0.0.2", "", &trusted, "10.0.0.2"),
            ("10.0.0.2", "nonsense", &trusted, "10.0.0.2"),
            ("10.0.0.2", "2001:db8::1", &trusted, "2001:db8::1"),
            ("10.0.0.2", "198.51.100.1", &none, "10.0.0.2"),
        ];
        for (peer, header, proxies, want) in cases {
            assert_eq!(
                forwarded_client(ip(peer), header, proxies),
                ip(want),
                "{peer} {header:?}"
            );
        }
    }
}
