//! `GET /api/jobs`: the durable scheduler's jobs (`docs/scheduler.md`), for the
//! Settings → Scheduled jobs screen. Admins only (`audit.read`: like the audit log,
//! it shows what the hub does on its own, across every team). Read-only.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use crate::clock::rfc3339;
use crate::error::AppError;
use crate::scheduler::policy::JobState;
use crate::scheduler::store::{self, JobFilter, JobRow};
use crate::state::AppState;

/// The jobs route and who may call it (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] =
    &[endpoint!(GET "/jobs", Rule::Agent(P::AuditRead), list)];

/// Most rows one answer carries.
const MAX_LIMIT: i64 = 500;

/// Query parameters of `GET /api/jobs`; each optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    kind: Option<String>,
    state: Option<String>,
    limit: Option<i64>,
}

async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let job_state = match q.state.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            AppError::Validation(format!(
                "state must be one of {}",
                JobState::ALL.map(JobState::as_str).join(", ")
            ))
        })?),
    };
    let filter = JobFilter {
        kind: q
            .kind
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty()),
        state: job_state,
        limit: q.limit.unwrap_or(200).clamp(1, MAX_LIMIT),
    };
    let rows = state.db.run(move |c| store::list(c, &filter)).await?;
    let now = state.clock.now_ms();
    Ok(HttpResponse::Ok().json(json!({
        "now": rfc3339(now),
        "now_ms": now,
        "jobs": rows.iter().map(view).collect::<Vec<_>>(),
    })))
}

/// A job as the API shows it (times both as epoch ms and RFC 3339).
fn view(j: &JobRow) -> Value {
    json!({
        "id": j.id,
        "kind": j.kind,
        "key": j.key,
        "payload": serde_json::from_str::<Value>(&j.payload).unwrap_or(Value::Null),
        "due_at": rfc3339(j.due_at),
        "due_at_ms": j.due_at,
        "state": j.state,
        "attempts": j.attempts,
        "lease_owner": j.lease_owner,
        "lease_until": j.lease_until.map(rfc3339),
        "last_error": j.last_error,
        "created_at": rfc3339(j.created_at),
        "updated_at": rfc3339(j.updated_at),
    })
}
