//! `GET /api/audit`: the audit log, newest first, with filters (`docs/audit.md`).
//! Needs `audit.read` (admins). Read-only by design: there is no route that changes or deletes an
//! entry (the store has no such function and the table refuses both).
//!
//! Also [`actor`], which handlers use to say who is acting and from where when they
//! write an entry with their change (`store::audit::record`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use crate::auth::AuthAgent;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::accounts::AgentInfo;
use crate::store::audit::{self, AuditActor, AuditFilter};

/// The audit route and who may call it (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] =
    &[endpoint!(GET "/audit", Rule::Agent(P::AuditRead), list)];

/// The request's address for the log: `None` when the peer is unknown.
pub(crate) fn ip_of(req: &HttpRequest) -> Option<String> {
    let ip = super::client_ip(req);
    (!ip.is_unspecified()).then(|| ip.to_string())
}

/// `agent`, acting through `req`, as the audit log names it.
pub(crate) fn actor(agent: &AgentInfo, req: &HttpRequest) -> AuditActor {
    AuditActor {
        id: Some(agent.id.clone()),
        label: agent.email.clone(),
        ip: ip_of(req),
    }
}

/// An anonymous caller claiming `label` (the email of a failed login).
pub(crate) fn anonymous(label: &str, req: &HttpRequest) -> AuditActor {
    AuditActor {
        id: None,
        label: label.to_string(),
        ip: ip_of(req),
    }
}

/// Query parameters of `GET /api/audit`; each optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    actor_id: Option<String>,
    action: Option<String>,
    target_id: Option<String>,
    team_id: Option<String>,
    /// Epoch ms or RFC 3339.
    since: Option<String>,
    /// Epoch ms or RFC 3339.
    until: Option<String>,
    before: Option<String>,
    limit: Option<i64>,
}

/// A time bound given as epoch milliseconds or as RFC 3339.
///
/// # Errors
/// [`AppError::Validation`] naming the parameter.
fn time_param(value: Option<String>, name: &str) -> Result<Option<i64>, AppError> {
    let Some(v) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(Some(ms));
    }
    chrono::DateTime::parse_from_rfc3339(&v)
        .map(|t| Some(t.timestamp_millis()))
        .map_err(|_| {
            AppError::Validation(format!(
                "{name} is a time: epoch milliseconds or RFC 3339 (2026-12-05T08:00:00Z)."
            ))
        })
}

/// Blank query values count as absent (an empty filter field in a form).
fn given(v: Option<String>) -> Option<String> {
    v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// `GET /api/audit?actor_id=&action=&target_id=&team_id=&since=&until=&before=&limit=`:
/// `{"entries": [...], "next_before": id | null}`, newest first.
async fn list(
    state: web::Data<AppState>,
    AuthAgent(_reader): AuthAgent,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let filter = AuditFilter {
        actor_id: given(q.actor_id),
        action: given(q.action),
        target_id: given(q.target_id),
        team_id: given(q.team_id),
        since: time_param(q.since, "since")?,
        until: time_param(q.until, "until")?,
        before: given(q.before),
        limit: q.limit,
    };
    let page = state.db.run(move |c| audit::list(c, &filter)).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_milliseconds_or_rfc3339() {
        assert_eq!(time_param(None, "since").unwrap(), None);
        assert_eq!(time_param(Some(" ".into()), "since").unwrap(), None);
        assert_eq!(
            time_param(Some("1500".into()), "since").unwrap(),
            Some(1500)
        );
        assert_eq!(
            time_param(Some("1970-01-01T00:00:02.5Z".into()), "since").unwrap(),
            Some(2500)
        );
        assert!(matches!(
            time_param(Some("yesterday".into()), "until"),
            Err(AppError::Validation(_))
        ));
    }
}
