//! Meta message templates over the API:
//! - `GET /api/templates` — every synced template with its WABA, the numbers on
//!   each WABA and the last sync (the Templates page);
//! - `POST /api/templates/sync` — sync every WABA now;
//! - `GET /api/conversations/{id}/templates` — what the inbox picker offers in
//!   one conversation: its WABA's templates and the contact / lead fields the
//!   variable form prefills from;
//! - `POST /api/conversations/{id}/template` — send one, checked against the
//!   stored template (approved, language, variable counts), stored with its
//!   rendered text and queued in the outbox. Allowed outside the 24-hour window.

use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::actors::messages::{Authorize, PostTemplate};
use crate::auth::{AuthAgent, Principal};
use crate::channels::numbers::Credentials;
use crate::channels::templates::{self, send, sync, Params};
use crate::channels::Provider;
use crate::db::schema::contacts;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{leads, numbers, templates as store};

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(GET "/templates", Rule::Agent(P::CampaignsManage), list),
    endpoint!(POST "/templates/sync", Rule::Agent(P::CampaignsManage), sync_now),
    endpoint!(GET "/conversations/{id}/templates", Rule::Agent(P::ConversationsReply), for_conversation),
    endpoint!(POST "/conversations/{id}/template", Rule::Agent(P::ConversationsReply), send_template),
];

async fn list(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let wabas: Vec<Value> = sync::wabas(&state)
        .await?
        .into_iter()
        .map(|w| json!({"waba_id": w.waba_id, "numbers": w.numbers}))
        .collect();
    let (list, syncs) = state
        .db
        .run(|c| Ok((store::list(c, None)?, store::syncs(c)?)))
        .await?;
    Ok(HttpResponse::Ok().json(json!({"templates": list, "syncs": syncs, "wabas": wabas})))
}

async fn sync_now(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let outcomes = sync::sync_all(&state).await?;
    Ok(HttpResponse::Ok().json(json!({"synced": outcomes})))
}

/// The WABA of a conversation's number, checking that `principal` may see it
/// and that it is a Meta conversation.
async fn conversation_waba(
    state: &AppState,
    principal: Principal,
    id: &str,
) -> Result<(String, String), AppError> {
    let meta = state.hub.ask(state, id, Authorize { principal }).await??;
    if Provider::of_channel(&meta.channel) != Some(Provider::Meta) {
        return Err(AppError::Validation(
            "Templates can only be sent in conversations of a Meta WhatsApp number.".into(),
        ));
    }
    let st = state.clone();
    let conv = id.to_string();
    let creds = state
        .db
        .run(move |c| {
            numbers::credentials_for_conversation(c, &st.secrets, &st.config.whatsapp, &conv)
        })
        .await?;
    let Credentials::Meta(m) = creds else {
        return Err(AppError::Validation(
            "This conversation's number is not a Meta number.".into(),
        ));
    };
    let waba = sync::waba_of(&m, state.config.whatsapp.waba_id.as_deref()).ok_or_else(|| {
        AppError::Validation(
            "This conversation's number has no WhatsApp Business Account id: set it on the number (or WHATSAPP_WABA_ID) to use templates.".into(),
        )
    })?;
    Ok((waba, meta.contact_id))
}

async fn for_conversation(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (waba, contact_id) = conversation_waba(&state, Principal::Agent(agent), &id).await?;
    let (list, fields) = state
        .db
        .run(move |c| {
            let (name, phone, locale): (Option<String>, Option<String>, Option<String>) =
                contacts::table
                    .find(&contact_id)
                    .select((contacts::name, contacts::phone, contacts::locale))
                    .first(c)?;
            let lead = leads::lead_of_contact(c, &contact_id)?;
            let first = name
                .as_deref()
                .and_then(|n| n.split_whitespace().next())
                .map(str::to_string);
            let fields = json!({
                "name": name,
                "first_name": first,
                "phone": phone,
                "locale": locale,
                "package": lead.as_ref().and_then(|l| l.interested_package.clone()),
                "campaign_code": lead.as_ref().and_then(|l| l.campaign_code.clone()),
                "stage": lead.as_ref().map(|l| l.stage.clone()),
            });
            Ok((store::list(c, Some(&waba))?, fields))
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({"templates": list, "fields": fields})))
}

#[derive(Deserialize)]
struct SendBody {
    name: String,
    language: String,
    #[serde(flatten)]
    params: Params,
    #[serde(default)]
    client_msg_id: Option<String>,
}

async fn send_template(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<SendBody>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let b = body.into_inner();
    let principal = Principal::Agent(agent);
    let (waba, _) = conversation_waba(&state, principal.clone(), &id).await?;
    let (name, language) = (b.name.trim().to_string(), b.language.trim().to_string());
    let row = state
        .db
        .run(move |c| store::get(c, &waba, &name, &language))
        .await
        .map_err(|e| match e {
            AppError::NotFound(m) => AppError::Validation(m),
            other => other,
        })?;
    if !row.sendable() {
        return Err(AppError::Validation(format!(
            "The template {:?} ({}) is {}{}: only approved templates can be sent.",
            row.name,
            row.language,
            row.status,
            if row.deleted { ", deleted at Meta" } else { "" }
        )));
    }
    let shape = templates::shape(&row.components_json());
    templates::validate(&shape, &b.params).map_err(AppError::Validation)?;
    let order = send::Order {
        name: row.name.clone(),
        language: row.language.clone(),
        components: send::components(&shape, &b.params),
    };
    let msg = PostTemplate {
        principal,
        client_msg_id: b.client_msg_id,
        body: templates::render(&shape, &b.params),
        order: serde_json::to_string(&order).map_err(AppError::internal)?,
    };
    let posted = state.hub.ask(&state, &id, msg).await??;
    let payload = json!({"message": posted.message, "duplicate": posted.duplicate});
    Ok(if posted.duplicate {
        HttpResponse::Ok().json(payload)
    } else {
        HttpResponse::Created().json(payload)
    })
}
