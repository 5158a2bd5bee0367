//! Liveness and readiness probes.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
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
