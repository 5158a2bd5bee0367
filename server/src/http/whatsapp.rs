//! Agent actions specific to WhatsApp conversations:
//! - `POST /api/conversations/{id}/attachments` — send an image or document by URL;
//! - `POST /api/conversations/{id}/whatsapp/read` — mark the customer's messages read
//!   on their phone (Meta `status: read`, WAHA `sendSeen`), through the outbox;
//! - `POST /api/conversations/{id}/whatsapp/typing` — show "typing…" on their phone
//!   (Meta typing indicator, WAHA `startTyping`), best effort and not queued: a late
//!   typing indicator is worse than none.

use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::actors::messages::{Authorize, PostMedia};
use crate::auth::{AuthAgent, Principal};
use crate::channels::numbers::Credentials;
use crate::channels::{meta, waha, Attachment, Provider};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::conversations::ConversationMeta;
use crate::store::outbox::{enqueue, NewOutbox};
use crate::store::whatsapp as store;

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(POST "/conversations/{id}/attachments", Rule::Agent(P::ConversationsReply), send_attachment),
    endpoint!(POST "/conversations/{id}/whatsapp/read", Rule::Agent(P::ConversationsReply), mark_read),
    endpoint!(POST "/conversations/{id}/whatsapp/typing", Rule::Agent(P::ConversationsReply), typing),
];

#[derive(Deserialize)]
struct AttachmentBody {
    kind: String,
    url: String,
    #[serde(default)]
    caption: Option<String>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    client_msg_id: Option<String>,
}

async fn send_attachment(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<AttachmentBody>,
) -> Result<HttpResponse, AppError> {
    let b = body.into_inner();
    if b.kind != "image" && b.kind != "document" {
        return Err(AppError::Validation(
            "A file can be sent as an image or a document.".into(),
        ));
    }
    let url = url::Url::parse(b.url.trim()).map_err(|_| {
        AppError::Validation(
            "The file address must be a full web address starting with http:// or https://.".into(),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || b.url.len() > 2048 {
        return Err(AppError::Validation(
            "The file address must be a full web address (http:// or https://) of at most 2048 characters.".into(),
        ));
    }
    let short = |v: Option<String>, max: usize| {
        v.map(|v| v.trim().chars().take(max).collect::<String>())
            .filter(|v| !v.is_empty())
    };
    let msg = PostMedia {
        principal: Principal::Agent(agent),
        client_msg_id: b.client_msg_id,
        attachment: Attachment {
            kind: b.kind,
            mime_type: short(b.mime_type, 100),
            filename: short(b.filename, 200),
            caption: short(b.caption, 1024),
            url: Some(url.to_string()),
            ..Attachment::default()
        },
    };
    let posted = state.hub.ask(&state, &path.into_inner(), msg).await??;
    let payload = json!({"message": posted.message, "duplicate": posted.duplicate});
    Ok(if posted.duplicate {
        HttpResponse::Ok().json(payload)
    } else {
        HttpResponse::Created().json(payload)
    })
}

async fn whatsapp_meta(
    state: &AppState,
    principal: Principal,
    id: &str,
) -> Result<(ConversationMeta, Provider), AppError> {
    let meta = state.hub.ask(state, id, Authorize { principal }).await??;
    let provider = Provider::of_channel(&meta.channel)
        .ok_or_else(|| AppError::Validation("This is not a WhatsApp conversation.".into()))?;
    Ok((meta, provider))
}

async fn mark_read(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (_, provider) = whatsapp_meta(&state, Principal::Agent(agent), &id).await?;
    let queued = state
        .db
        .run(move |c| {
            // Meta marks everything up to the given message read; WAHA takes a list.
            let limit = if provider == Provider::Meta { 1 } else { 50 };
            let ids: Vec<String> = store::inbound_provider_ids(c, &id, None, limit)?
                .into_iter()
                .map(|p| provider.raw_id(&p).to_string())
                .collect();
            if ids.is_empty() {
                return Ok(false);
            }
            let order = NewOutbox {
                provider,
                kind: "read",
                payload: json!({"message_ids": ids}).to_string(),
                not_before: None,
            };
            enqueue(c, &id, None, &order)?;
            Ok(true)
        })
        .await?;
    if queued {
        state.outbox.nudge();
    }
    Ok(HttpResponse::Accepted().json(json!({"queued": queued})))
}

async fn typing(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (meta, provider) = whatsapp_meta(&state, Principal::Agent(agent), &id).await?;
    let contact = meta.contact_id.clone();
    let st = state.clone();
    let (last, wa_id, creds) = state
        .db
        .run(move |c| {
            use crate::db::schema::contacts;
            use diesel::prelude::*;
            let wa_id: Option<String> = contacts::table
                .find(&contact)
                .select(contacts::wa_id)
                .first(c)?;
            // The number the conversation came in on; none usable: no indicator.
            let creds = crate::store::numbers::credentials_for_conversation(
                c,
                &st.secrets,
                &st.config.whatsapp,
                &id,
            )
            .ok();
            Ok((store::inbound_provider_ids(c, &id, None, 1)?, wa_id, creds))
        })
        .await?;
    let http = state.outbox.http().clone();
    let request = match (provider, creds) {
        (Provider::Meta, Some(Credentials::Meta(cfg))) => {
            match (last.first(), &cfg.access_token, &cfg.phone_number_id) {
                (Some(pid), Some(token), Some(number)) => Some(
                    http.post(format!("{}/{number}/messages", cfg.graph_url))
                        .bearer_auth(token.expose())
                        .json(&meta::read_request(provider.raw_id(pid), true)),
                ),
                _ => None,
            }
        }
        (Provider::Waha, Some(Credentials::Waha(cfg))) => match (&cfg.base_url, &wa_id) {
            (Some(base), Some(wa_id)) => {
                let mut r = http.post(format!("{base}/api/startTyping")).json(&json!({
                    "session": cfg.session,
                    "chatId": waha::chat_id(wa_id),
                }));
                if let Some(key) = &cfg.api_key {
                    r = r.header("X-Api-Key", key.expose());
                }
                Some(r)
            }
            _ => None,
        },
        _ => None,
    };
    let sent = request.is_some();
    if let Some(request) = request {
        actix_rt::spawn(async move {
            if let Err(e) = request.send().await {
                tracing::debug!(timeout = e.is_timeout(), "typing indicator not delivered");
            }
        });
    }
    Ok(HttpResponse::Accepted().json(json!({"sent": sent})))
}
