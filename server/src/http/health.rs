//! Liveness and readiness probes.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::metrics::{gauge_value, METRICS};
use crate::state::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /metrics`: the OpenMetrics text of [`crate::metrics::Metrics`]. The moment
/// gauges are read now; the outbox and job counts are left as last read when the database does
/// not answer (the scrape itself still succeeds, so the other numbers arrive).
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let m = &METRICS;
    m.sessions.set(gauge_value(state.hub.session_count()));
    m.conversations_active
        .set(gauge_value(state.hub.conversation_count()));
    m.pipeline_backlog
        .set(gauge_value(state.pipeline.backlog()));
    match state.db.run(crate::store::outbox::pending_count).await {
        Ok(n) => {
            m.outbox_pending.set(n);
        }
        Err(e) => tracing::debug!(error = %e, "outbox count unavailable for /metrics"),
    }
    let now = state.clock.now_ms();
    match state
        .db
        .run(move |c| crate::scheduler::store::counts(c, now))
        .await
    {
        Ok((backlog, due, failed)) => {
            m.jobs_backlog.set(backlog);
            m.jobs_due.set(due);
            m.jobs_failed.set(failed);
        }
        Err(e) => tracing::debug!(error = %e, "job counts unavailable for /metrics"),
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(m.encode())
}

/// `GET /readyz`: the database answers (and the bus is healthy). 503 otherwise, so a
/// load balancer stops sending traffic to a node that cannot commit.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = match state.db.ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => e.public_message(),
    };
    let bus = state.hub.bus_degraded();
    let ready = database == "ok";
    let body = json!({
        "status": if !ready { "unavailable" } else if bus.is_some() { "degraded" } else { "ready" },
        "database": database,
        "backend": state.db.backend(),
        "bus": bus.unwrap_or_else(|| "ok".into()),
        "sessions": state.hub.session_count(),
        "conversations_active": state.hub.conversation_count(),
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
