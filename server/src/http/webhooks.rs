//! Provider webhooks: `GET|POST /webhooks/whatsapp` (Meta Cloud API) and
//! `POST /webhooks/waha` (WAHA). Each event lands in the WhatsApp number (inbox)
//! it came in on — Meta by `metadata.phone_number_id`, WAHA by `session` — and so
//! in that number's team (`store/numbers.rs`).
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
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actors::messages::PostInbound;
use crate::channels::numbers::{
    waha_webhook_auth, Credentials, MetaCredentials, NumberId, WahaWebhookAuth,
};
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
/// matches `WHATSAPP_VERIFY_TOKEN` or the hub's own verify token shown in the
/// numbers screen (`SecretBox::meta_verify_token`; Meta docs, "Webhooks —
/// Verification requests").
async fn meta_verify(
    state: web::Data<AppState>,
    query: web::Query<VerifyQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let given = q.verify_token.as_deref().unwrap_or_default().as_bytes();
    let env_match = state
        .config
        .whatsapp
        .verify_token
        .as_ref()
        .is_some_and(|t| same(given, t.expose().as_bytes()));
    let hub_match = same(given, state.secrets.meta_verify_token().as_bytes());
    let matches = q.mode.as_deref() == Some("subscribe") && (env_match || hub_match);
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

/// Where an accepted event goes: its number and that number's team.
#[derive(Clone, Debug)]
struct Target {
    number_id: NumberId,
    team_id: Option<String>,
}

impl Target {
    fn of(c: &Credentials) -> Self {
        let (number_id, team_id) = match c {
            Credentials::Meta(m) => (m.number_id.clone(), m.team_id.clone()),
            Credentials::Waha(w) => (w.number_id.clone(), w.team_id.clone()),
        };
        Self { number_id, team_id }
    }
}

/// Meta: the signature is checked against the app secret of every active Meta
/// number (there are few, and nothing is parsed before a match); each message
/// then goes to the number of its `metadata.phone_number_id` among those whose
/// secret matched — or to the env number, which, as before several numbers
/// existed, takes any phone number id of its app.
async fn meta_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    state.limits.webhook(super::client_ip(&req))?;
    let cfg = &state.config.whatsapp;
    let snapshot = state.numbers.snapshot(&state).await?;
    let signed: Vec<&MetaCredentials> = snapshot
        .active_meta()
        .filter(|m| m.app_secret.is_some())
        .collect();
    // Fail closed: without an app secret nobody can be told apart from Meta.
    if signed.is_empty() {
        return Err(AppError::Forbidden(
            "WhatsApp webhook disabled: no Meta number has an app secret (WHATSAPP_APP_SECRET)"
                .into(),
        ));
    }
    let body = read_body(&req, payload, cfg.webhook_max_bytes).await?;
    let header = header_str(&req, "x-hub-signature-256");
    let verified: Vec<MetaCredentials> = signed
        .into_iter()
        .filter(|m| {
            m.app_secret.as_ref().is_some_and(|s| {
                channels::verify_meta_signature(s.expose().as_bytes(), &body, header)
            })
        })
        .cloned()
        .collect();
    if verified.is_empty() {
        return Err(AppError::Unauthorized(
            "missing or wrong X-Hub-Signature-256".into(),
        ));
    }
    let parsed = parse_json(&body)?;
    let events = channels::meta::parse_webhook_by_number(&parsed).map_err(AppError::BadRequest)?;
    template_updates(&state, &parsed).await?;
    let n = events.len();
    for (phone_number_id, event) in events {
        let number = verified
            .iter()
            .find(|m| m.phone_number_id.is_some() && m.phone_number_id == phone_number_id)
            .or_else(|| {
                verified
                    .iter()
                    .find(|m| m.number_id.as_str() == NumberId::ENV_META)
            });
        match (event, number) {
            (InboundEvent::Message(m), Some(number)) => {
                ingest(&state, &Target::of(&Credentials::Meta(number.clone())), m).await?;
            }
            (InboundEvent::Message(_), None) => tracing::warn!(
                phone_number_id = ?phone_number_id,
                "WhatsApp message for a phone number id no number with this app secret has; skipped"
            ),
            (InboundEvent::Status(s), _) => status(&state, s).await?,
            (InboundEvent::Session(_), _) => {}
        }
    }
    Ok(HttpResponse::Ok().json(Received { received: n }))
}

/// `message_template_status_update` changes: the template's new status now, then
/// a re-sync of its WABA in the background (new components, templates the hub
/// had not seen yet).
async fn template_updates(state: &AppState, payload: &Value) -> Result<(), AppError> {
    let events = channels::templates::parse_status_events(payload);
    let mut wabas: Vec<String> = Vec::new();
    for ev in events {
        if !wabas.contains(&ev.waba_id) {
            wabas.push(ev.waba_id.clone());
        }
        state
            .db
            .run(move |c| crate::store::templates::apply_status(c, &ev))
            .await?;
    }
    for waba in wabas {
        let st = state.clone();
        actix_rt::spawn(async move {
            if let Err(e) = channels::templates::sync::sync_one(&st, &waba).await {
                tracing::warn!(error = %e, "template re-sync after a status update failed");
            }
        });
    }
    Ok(())
}

/// WAHA: the number is found by the event's `session` (else the env number takes
/// any session); its HMAC key is checked, and a number without one refuses
/// (fail closed) unless it explicitly accepts unsigned webhooks.
async fn waha_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    state.limits.webhook(super::client_ip(&req))?;
    let cfg = &state.config.whatsapp;
    let body = read_body(&req, payload, cfg.webhook_max_bytes).await?;
    let parsed = parse_json(&body);
    let session = parsed
        .as_ref()
        .ok()
        .and_then(|v| v.get("session"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let snapshot = state.numbers.snapshot(&state).await?;
    let Some(cached) = snapshot.waha_by_session(&session) else {
        return Err(AppError::Forbidden(format!(
            "WAHA webhook disabled: no WhatsApp number has session {session:?} (set WAHA_URL or add a number)"
        )));
    };
    if !cached.row.active {
        return Err(AppError::Forbidden(format!(
            "the WhatsApp number for session {session:?} is deactivated"
        )));
    }
    let Credentials::Waha(number) = cached.credentials.clone() else {
        return Err(AppError::internal("a WAHA lookup found a Meta number"));
    };
    match waha_webhook_auth(&number) {
        WahaWebhookAuth::Verify(key) => {
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
        WahaWebhookAuth::Unsigned => {}
        WahaWebhookAuth::Refuse => {
            return Err(AppError::Forbidden(
                "WAHA webhook refused: this number has no HMAC key (set one, or insecure_unsigned)"
                    .into(),
            ))
        }
    }
    let events = channels::waha::parse_webhook(&parsed?).map_err(AppError::BadRequest)?;
    let n = events.len();
    let target = Target::of(&Credentials::Waha(number.clone()));
    for event in events {
        match event {
            InboundEvent::Message(m) => ingest(&state, &target, m).await?,
            InboundEvent::Status(s) => status(&state, s).await?,
            InboundEvent::Session(s) => {
                super::numbers::record_session_status(&state, &number.number_id, s.status).await?
            }
        }
    }
    Ok(HttpResponse::Ok().json(Received { received: n }))
}

/// Answer to an accepted webhook POST.
#[derive(Serialize)]
struct Received {
    /// Events in the payload.
    received: usize,
}

async fn ingest(state: &AppState, target: &Target, m: InboundMessage) -> Result<(), AppError> {
    let provider = m.provider;
    let known = state.known_wa.get(target.number_id.as_str(), &m.sender);
    let conversation_id = match known {
        Some(id) => id,
        None => {
            let team_slug = state.config.whatsapp.team.clone();
            let (sender, inbox_of) = (m.sender.clone(), target.clone());
            let id = state
                .db
                .run(move |c| {
                    let inbox = store::Inbox {
                        number_id: inbox_of.number_id.as_str(),
                        team_id: inbox_of.team_id.as_deref(),
                        team_slug: &team_slug,
                    };
                    store::resolve_conversation(c, provider, &sender, &inbox)
                })
                .await
                .map_err(|e| match e {
                    // A misconfigured team must not make the provider drop the message.
                    AppError::NotFound(why) => AppError::Unavailable(why),
                    other => other,
                })?;
            state
                .known_wa
                .remember(target.number_id.as_str(), &m.sender, &id);
            id
        }
    };
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
