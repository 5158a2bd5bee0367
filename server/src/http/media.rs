//! `GET /api/media/{message_id}`: hands a message's media to an agent (or to the
//! guest of the conversation), fetched from the provider on demand.
//!
//! The fetch is guarded because the URLs come from outside: only the configured
//! provider hosts are contacted, with the credentials of the number the
//! conversation came in on (Meta: the Graph API host and `WHATSAPP_MEDIA_HOSTS`;
//! WAHA: that number's WAHA address only — its file URL's path is re-based onto it), redirects are
//! not followed, the download is cut at `SWITCHBOARD_MEDIA_MAX_BYTES` (413) and
//! bounded by `SWITCHBOARD_PROVIDER_TIMEOUT`. The answer is served with a safe
//! content type and a sandboxing CSP, so a hostile file cannot run script on the
//! hub's origin.

use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use serde_json::Value;

use crate::actors::conversation::check_access;
use crate::auth::Principal;
use crate::channels::numbers::Credentials;
use crate::channels::{Attachment, Provider};
use crate::config::WhatsAppConfig;
use crate::db::schema::messages;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{conversations, numbers};

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] =
    &[endpoint!(GET "/media/{message_id}", Rule::GuestOr(P::ConversationsReadTeam), get_media)];

fn bad_gateway(why: &str) -> AppError {
    // The provider, not the caller, is at fault; 503 tells clients to retry later.
    AppError::Unavailable(format!("media not available from the provider: {why}"))
}

/// Whether `url` may be fetched for Meta media: https (or the Graph URL's own
/// scheme, for a local fake in tests) on the Graph host or a configured media host.
fn meta_host_allowed(cfg: &WhatsAppConfig, url: &url::Url) -> bool {
    let Ok(graph) = url::Url::parse(&cfg.graph_url) else {
        return false;
    };
    let host = url.host_str().unwrap_or_default().to_lowercase();
    let same_as_graph = url.scheme() == graph.scheme()
        && Some(host.as_str()) == graph.host_str()
        && url.port_or_known_default() == graph.port_or_known_default();
    same_as_graph || (url.scheme() == "https" && cfg.media_hosts.contains(&host))
}

async fn get_media(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let message_id = path.into_inner();
    let st = state.clone();
    let (meta, attachment, creds) = state
        .db
        .run(move |c| {
            let (conversation_id, attachment): (String, Option<String>) = messages::table
                .find(&message_id)
                .select((messages::conversation_id, messages::attachment))
                .first(c)
                .optional()?
                .ok_or_else(|| AppError::NotFound("no such message".into()))?;
            // Media comes from the number the conversation came in on.
            let creds = numbers::credentials_for_conversation(
                c,
                &st.secrets,
                &st.config.whatsapp,
                &conversation_id,
            )
            .ok();
            Ok((conversations::meta(c, &conversation_id)?, attachment, creds))
        })
        .await?;
    check_access(&principal, &meta)?;
    let attachment: Attachment = attachment
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok())
        .ok_or_else(|| AppError::NotFound("this message has no media".into()))?;
    let cfg = &state.config.whatsapp;
    let http = state.outbox.http();
    let request = match attachment.provider {
        Some(Provider::Meta) => {
            let Some(Credentials::Meta(number)) = &creds else {
                return Err(bad_gateway("the conversation has no usable Meta number"));
            };
            let token = number
                .access_token
                .as_ref()
                .ok_or_else(|| bad_gateway("the number has no access token"))?;
            let media_id = attachment
                .media_id
                .as_deref()
                .filter(|id| {
                    id.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                })
                .ok_or_else(|| AppError::NotFound("no media id".into()))?;
            // Step 1: the media id yields a short-lived download URL (Meta "Media" docs).
            let info: Value = http
                .get(format!("{}/{media_id}", number.graph_url))
                .bearer_auth(token.expose())
                .send()
                .await
                .map_err(|_| bad_gateway("lookup failed"))?
                .error_for_status()
                .map_err(|e| bad_gateway(&format!("lookup answered {:?}", e.status())))?
                .json()
                .await
                .map_err(|_| bad_gateway("lookup answer unreadable"))?;
            let url = info
                .get("url")
                .and_then(Value::as_str)
                .and_then(|u| url::Url::parse(u).ok())
                .ok_or_else(|| bad_gateway("no download URL"))?;
            if !meta_host_allowed(cfg, &url) {
                tracing::warn!(host = ?url.host_str(), "media URL on a host that is not allowed");
                return Err(AppError::Forbidden(
                    "media host not allowed (WHATSAPP_MEDIA_HOSTS)".into(),
                ));
            }
            http.get(url).bearer_auth(token.expose())
        }
        Some(Provider::Waha) => {
            let Some(Credentials::Waha(number)) = &creds else {
                return Err(bad_gateway("the conversation has no usable WAHA number"));
            };
            let base = number
                .base_url
                .as_deref()
                .ok_or_else(|| bad_gateway("the number has no WAHA address"))?;
            let given = attachment
                .url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok())
                .ok_or_else(|| AppError::NotFound("no media URL".into()))?;
            // WAHA advertises files under its own public base URL, which may differ
            // from how the hub reaches it; only the path is trusted, and only WAHA's.
            if !given.path().starts_with("/api/files/") {
                return Err(AppError::Forbidden("not a WAHA file URL".into()));
            }
            let mut r = http.get(format!("{base}{}", given.path()));
            if let Some(key) = &number.api_key {
                r = r.header("X-Api-Key", key.expose());
            }
            r
        }
        None => {
            // Media an agent sent by public URL: the client can load it directly.
            return Err(AppError::NotFound("this media is at its public URL".into()));
        }
    };
    let mut resp = request
        .send()
        .await
        .map_err(|_| bad_gateway("download failed"))?
        .error_for_status()
        .map_err(|e| bad_gateway(&format!("download answered {:?}", e.status())))?;
    let limit = cfg.media_max_bytes;
    let too_large = || AppError::PayloadTooLarge(format!("media is over the {limit}-byte limit"));
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| bad_gateway("download interrupted"))?
    {
        if bytes.len() + chunk.len() > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    let mime = attachment
        .mime_type
        .as_deref()
        .unwrap_or("application/octet-stream")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let inline = ["image/", "audio/", "video/"]
        .iter()
        .any(|p| mime.starts_with(p))
        && mime != "image/svg+xml";
    let content_type = if inline {
        mime.as_str()
    } else {
        "application/octet-stream"
    };
    let filename: String = attachment
        .filename
        .as_deref()
        .unwrap_or("file")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' '))
        .collect();
    let disposition = if inline {
        "inline".to_string()
    } else {
        format!("attachment; filename=\"{filename}\"")
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_DISPOSITION, disposition))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'",
        ))
        .insert_header((header::CACHE_CONTROL, "private, max-age=300"))
        .body(bytes))
}
