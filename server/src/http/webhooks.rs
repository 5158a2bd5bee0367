//! Provider webhooks: `GET|POST /webhooks/whatsapp` (Meta Cloud API) and
//! `POST /webhooks/waha` (WAHA).
//!
//! Order of work for a POST, and why: rate limit; read the RAW body with a size
//! limit (signatures cover the exact bytes; 413 above the limit); verify the
//! signature (401, nothing parsed or stored); parse (400 on malformed JSON); then
//! store every message — each through its conversation's actor, so fan-out and the
//! after-commit hooks run exactly as for widget messages — and apply every status.
//! Only when all of it committed is the answer 200; a database outage answers 503
//! so the provider retries (both retry and may deliver duplicates: the provider id
//! is unique, so a replay stores nothing new).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::actors::messages::PostInbound;
use crate::channels::{self, InboundEvent, InboundMessage, StatusUpdate};
use crate::error::AppError;
use crate::outbox;
use crate::state::AppState;
use crate::store::whatsapp as store;

/// Registers the webhook routes (outside `/api`: providers call them, not clients).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks/whatsapp", web::get().to(meta_verify))
        .route("/webhooks/whatsapp", web::post().to(meta_post))
        .route("/webhooks/waha", web::post().to(waha_post));
}

#[derive(Deserialize)]
struct VerifyQuery {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// Equal-length, constant-time comparison of two byte strings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Meta's subscription handshake: echo `hub.challenge` when `hub.verify_token`
/// matches `WHATSAPP_VERIFY_TOKEN` (Meta docs, "Webhooks — Verification requests").
async fn meta_verify(
    state: web::Data<AppState>,
    query: web::Query<VerifyQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let expected = state
        .config
        .whatsapp
        .verify_token
        .as_ref()
        .ok_or_else(|| AppError::Forbidden("WHATSAPP_VERIFY_TOKEN is not configured".into()))?;
    let matches = q.mode.as_deref() == Some("subscribe")
        && q.verify_token
            .as_deref()
            .is_some_and(|t| same(t.as_bytes(), expected.expose().as_bytes()));
    match (matches, q.challenge) {
        (true, Some(challenge)) => Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(challenge)),
        _ => Err(AppError::Forbidden("verification token mismatch".into())),
    }
}

/// Reads the whole body, refusing more than `limit` bytes (413) before buffering it.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, AppError> {
    let too_large =
        || AppError::PayloadTooLarge(format!("webhook body is over the {limit}-byte limit"));
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| AppError::BadRequest(format!("could not read body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn parse_json(body: &[u8]) -> Result<Value, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::BadRequest(format!("invalid JSON: {e}")))
}

async fn meta_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    state.limits.webhook(super::client_ip(&req))?;
    // Fail closed: without the app secret nobody can be told apart from Meta.
    let secret = state.config.whatsapp.app_secret.clone().ok_or_else(|| {
        AppError::Forbidden(
            "WhatsApp webhook disabled: WHATSAPP_APP_SECRET is not configured".into(),
        )
    })?;
    let body = read_body(&req, payload, state.config.whatsapp.webhook_max_bytes).await?;
    if !channels::verify_meta_signature(
        secret.expose().as_bytes(),
        &body,
        header_str(&req, "x-hub-signature-256"),
    ) {
        return Err(AppError::Unauthorized(
            "missing or wrong X-Hub-Signature-256".into(),
        ));
    }
    let events =
        channels::meta::parse_webhook(&parse_json(&body)?).map_err(AppError::BadRequest)?;
    let n = handle(&state, events).await?;
    Ok(HttpResponse::Ok().json(json!({"received": n})))
}

async fn waha_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    state.limits.webhook(super::client_ip(&req))?;
    let cfg = &state.config.whatsapp;
    if cfg.waha_url.is_none() && cfg.waha_hmac_key.is_none() {
        return Err(AppError::Forbidden(
            "WAHA webhook disabled: set WAHA_URL (and WAHA_WEBHOOK_HMAC_KEY)".into(),
        ));
    }
    let body = read_body(&req, payload, cfg.webhook_max_bytes).await?;
    if let Some(key) = &cfg.waha_hmac_key {
        if !channels::verify_waha_hmac(
            key.expose().as_bytes(),
            &body,
            header_str(&req, "x-webhook-hmac"),
        ) {
            return Err(AppError::Unauthorized(
                "missing or wrong X-Webhook-Hmac".into(),
            ));
        }
    }
    let events =
        channels::waha::parse_webhook(&parse_json(&body)?).map_err(AppError::BadRequest)?;
    let n = handle(&state, events).await?;
    Ok(HttpResponse::Ok().json(json!({"received": n})))
}

/// Stores every event in payload order; returns how many there were.
async fn handle(state: &AppState, events: Vec<InboundEvent>) -> Result<usize, AppError> {
    let n = events.len();
    for event in events {
        match event {
            InboundEvent::Message(m) => ingest(state, m).await?,
            InboundEvent::Status(s) => status(state, s).await?,
        }
    }
    Ok(n)
}

async fn ingest(state: &AppState, m: InboundMessage) -> Result<(), AppError> {
    let team = state.config.whatsapp.team.clone();
    let (provider, sender) = (m.provider, m.sender.clone());
    let conversation_id = state
        .db
        .run(move |c| store::resolve_conversation(c, provider, &sender, &team))
        .await
        .map_err(|e| match e {
            // A misconfigured team must not make the provider drop the message.
            AppError::NotFound(why) => AppError::Unavailable(why),
            other => other,
        })?;
    let msg = PostInbound {
        provider_id: provider.stored_id(&m.provider_id),
        body: m.body,
        sender_name: m.sender.name,
        attachment: m
            .attachment
            .map(|a| serde_json::to_string(&a))
            .transpose()
            .map_err(AppError::internal)?,
    };
    let posted = state.hub.ask(state, &conversation_id, msg).await??;
    tracing::debug!(
        conversation = %conversation_id,
        seq = posted.message.seq,
        duplicate = posted.duplicate,
        "whatsapp message stored"
    );
    Ok(())
}

async fn status(state: &AppState, update: StatusUpdate) -> Result<(), AppError> {
    let change = state
        .db
        .run(move |c| store::apply_status(c, &update))
        .await?;
    if let Some(change) = change {
        outbox::publish(state, change).await;
    }
    Ok(())
}
