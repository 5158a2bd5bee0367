//! `GET`/`PUT /api/agents/{id}/hours` (`docs/api.md`, "Routing"): an agent's working
//! hours. Outside them routing offers the agent nothing new (`docs/routing.md`).

use actix_web::{web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::json;

use crate::auth::AuthAgent;
use crate::clock::now_ms;
use crate::db::schema::{agents, team_members};
use crate::db::DbConn;
use crate::error::AppError;
use crate::routing::actor::Drain;
use crate::routing::hours::{self, RawHours, Schedule, WeeklyHours};
use crate::state::AppState;
use crate::store::agent_hours::{self, HoursView};
use crate::store::audit::{self as audit_log, AuditAction, AuditEntry};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HoursBody {
    /// IANA zone name; required with hours.
    #[serde(default)]
    time_zone: Option<String>,
    /// Weekday key → `HH:MM-HH:MM` list, or null: always available.
    hours: Option<RawHours>,
}

impl HoursBody {
    /// The validated schedule (`None`: clear the hours).
    fn schedule(self) -> Result<Option<Schedule>, AppError> {
        let Some(raw) = self.hours else {
            return Ok(None);
        };
        let Some(zone) = self.time_zone.filter(|z| !z.trim().is_empty()) else {
            return Err(AppError::Validation(
                "Choose the time zone the working hours are in.".into(),
            ));
        };
        let time_zone = hours::parse_time_zone(&zone).map_err(AppError::Validation)?;
        let hours = WeeklyHours::parse(&raw).map_err(AppError::Validation)?;
        Ok(Some(Schedule { time_zone, hours }))
    }
}

fn require_agent(c: &mut DbConn, id: &str) -> Result<(), AppError> {
    let found: Option<String> = agents::table
        .find(id)
        .select(agents::id)
        .first(c)
        .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| AppError::NotFound(format!("no agent {id}")))
}

/// The audit shape of a schedule: null, or `{time_zone, hours}`.
fn audit_shape(s: Option<&Schedule>) -> serde_json::Value {
    match s {
        Some(s) => json!({ "time_zone": s.time_zone.name(), "hours": s.hours }),
        None => json!(null),
    }
}

/// `GET /api/agents/{id}/hours`.
pub(super) async fn get_hours(
    state: web::Data<AppState>,
    _agent: AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let view = state
        .db
        .run(move |c| {
            require_agent(c, &id)?;
            let schedule = agent_hours::get(c, &id)?;
            Ok(HoursView::new(&id, schedule.as_ref(), now_ms()))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `PUT /api/agents/{id}/hours`: sets or clears (`"hours": null`) the hours, with an
/// audit entry in the same transaction, then drains the agent's teams' queues (the
/// agent may be eligible now).
pub(super) async fn put_hours(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<HoursBody>,
) -> Result<HttpResponse, AppError> {
    let schedule = body.into_inner().schedule()?;
    let id = path.into_inner();
    let who = crate::http::audit::actor(&agent, &req);
    let (view, team_ids) = state
        .db
        .run(move |c| {
            crate::db::write_transaction(c, |c| {
                require_agent(c, &id)?;
                let now = now_ms();
                let before = agent_hours::get(c, &id)?;
                agent_hours::set(c, &id, schedule.as_ref(), now)?;
                let entry = AuditEntry::new(&who, AuditAction::AgentHoursChanged)
                    .target("agent", &id)
                    .before(audit_shape(before.as_ref()))
                    .after(audit_shape(schedule.as_ref()));
                audit_log::record(c, &entry, now)?;
                let teams: Vec<String> = team_members::table
                    .filter(team_members::agent_id.eq(&id))
                    .select(team_members::team_id)
                    .load(c)?;
                Ok((HoursView::new(&id, schedule.as_ref(), now), teams))
            })
        })
        .await?;
    for team_id in team_ids {
        state.hub.route(Drain { team_id });
    }
    Ok(HttpResponse::Ok().json(view))
}
