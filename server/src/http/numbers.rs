//! WhatsApp numbers (inboxes) administration, `accounts.manage` only:
//! - `GET /api/whatsapp/numbers` — every number, with team, status, and for each
//!   secret only whether it is set; plus the hub's Meta verify token;
//! - `POST /api/whatsapp/numbers` — add a Meta number or a WAHA session;
//! - `PATCH /api/whatsapp/numbers/{id}` — change it (secrets are write-only: a
//!   given value replaces, `clear_secrets` removes, anything else is kept);
//! - `DELETE /api/whatsapp/numbers/{id}` — deactivate it (kept for its history);
//! - `POST /api/whatsapp/numbers/{id}/session` — ask WAHA for the session's state
//!   now (`GET {waha}/api/sessions/{name}`), store and return it.
//!
//! Every change is audited in its transaction; secrets never reach the log or a
//! response. Env numbers (`source: env`) are read-only here.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::audit::actor;
use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use crate::auth::AuthAgent;
use crate::bus::BusEvent;
use crate::channels::numbers::{
    clean_base_url, clean_label, clean_meta_id, clean_session, Credentials, NumberId,
    NumberStatusFrame, ProviderSettings, SecretField, SessionStatus,
};
use crate::channels::{waha, Provider};
use crate::clock::now_ms;
use crate::db::write_transaction;
use crate::error::AppError;
use crate::protocol::ServerFrame;
use crate::state::AppState;
use crate::store::audit::{self, AuditAction, AuditActor, AuditEntry};
use crate::store::numbers::{self as store, NewNumber, NumberChange, NumberRow, NumberView};

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(GET "/whatsapp/numbers", Rule::Agent(P::AccountsManage), list),
    endpoint!(POST "/whatsapp/numbers", Rule::Agent(P::AccountsManage), create),
    endpoint!(PATCH "/whatsapp/numbers/{id}", Rule::Agent(P::AccountsManage), update),
    endpoint!(DELETE "/whatsapp/numbers/{id}", Rule::Agent(P::AccountsManage), deactivate),
    endpoint!(POST "/whatsapp/numbers/{id}/session", Rule::Agent(P::AccountsManage), refresh_session),
];

/// `GET /api/whatsapp/numbers`.
#[derive(Serialize)]
struct NumbersList {
    /// Env numbers first, then by label.
    numbers: Vec<NumberView>,
    /// Verify token to give Meta when subscribing the webhook (besides
    /// `WHATSAPP_VERIFY_TOKEN`); it opens nothing by itself.
    meta_verify_token: String,
}

/// One number, as create/update/deactivate answer.
#[derive(Serialize)]
struct NumberOne {
    number: NumberView,
}

/// Answer of the session refresh.
#[derive(Serialize)]
struct SessionAnswer {
    /// The state WAHA reported.
    status: SessionStatus,
    /// The number afterwards.
    number: NumberView,
}

/// Body of `POST /api/whatsapp/numbers`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    provider: Provider,
    label: String,
    team_id: String,
    #[serde(default)]
    phone_number_id: Option<String>,
    #[serde(default)]
    waba_id: Option<String>,
    #[serde(default)]
    waha_url: Option<String>,
    #[serde(default)]
    waha_session: Option<String>,
    #[serde(default)]
    insecure_unsigned: bool,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    app_secret: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    hmac_key: Option<String>,
}

/// Body of `PATCH /api/whatsapp/numbers/{id}`: every field optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    phone_number_id: Option<String>,
    #[serde(default)]
    waba_id: Option<String>,
    #[serde(default)]
    waha_url: Option<String>,
    #[serde(default)]
    waha_session: Option<String>,
    #[serde(default)]
    insecure_unsigned: Option<bool>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    app_secret: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    hmac_key: Option<String>,
    /// Secrets to remove: `access_token`, `app_secret`, `api_key`, `hmac_key`.
    #[serde(default)]
    clear_secrets: Vec<String>,
}

/// Given secrets, trimmed; blank ones (an untouched form field) are not given.
fn given_secrets(pairs: [(SecretField, &Option<String>); 4]) -> Vec<(SecretField, String)> {
    pairs
        .into_iter()
        .filter_map(|(f, v)| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| (f, v.to_string()))
        })
        .collect()
}

fn optional_id(v: Option<&str>, what: &str) -> Result<Option<String>, AppError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => clean_meta_id(v, what).map(Some),
        None => Ok(None),
    }
}

/// The checked provider settings of a create body.
fn settings_of(b: &CreateBody) -> Result<ProviderSettings, AppError> {
    match b.provider {
        Provider::Meta => Ok(ProviderSettings::Meta {
            phone_number_id: clean_meta_id(
                b.phone_number_id.as_deref().unwrap_or_default(),
                "phone number id",
            )?,
            waba_id: optional_id(b.waba_id.as_deref(), "WhatsApp Business Account id")?,
        }),
        Provider::Waha => Ok(ProviderSettings::Waha {
            base_url: clean_base_url(b.waha_url.as_deref().unwrap_or_default())?,
            session: clean_session(b.waha_session.as_deref().unwrap_or_default())?,
            insecure_unsigned: b.insecure_unsigned,
        }),
    }
}

/// The provider settings after an update body, from the stored row.
fn settings_after(row: &NumberRow, b: &UpdateBody) -> Result<Option<ProviderSettings>, AppError> {
    match row.provider() {
        Provider::Meta => {
            if b.phone_number_id.is_none() && b.waba_id.is_none() {
                return Ok(None);
            }
            let pnid = b
                .phone_number_id
                .as_deref()
                .or(row.phone_number_id.as_deref())
                .unwrap_or_default();
            let waba = match &b.waba_id {
                Some(w) => optional_id(Some(w), "WhatsApp Business Account id")?,
                None => row.waba_id.clone(),
            };
            Ok(Some(ProviderSettings::Meta {
                phone_number_id: clean_meta_id(pnid, "phone number id")?,
                waba_id: waba,
            }))
        }
        Provider::Waha => {
            if b.waha_url.is_none() && b.waha_session.is_none() && b.insecure_unsigned.is_none() {
                return Ok(None);
            }
            let url = b.waha_url.as_deref().or(row.waha_url.as_deref());
            let session = b.waha_session.as_deref().or(row.waha_session.as_deref());
            Ok(Some(ProviderSettings::Waha {
                base_url: clean_base_url(url.unwrap_or_default())?,
                session: clean_session(session.unwrap_or_default())?,
                insecure_unsigned: b.insecure_unsigned.unwrap_or(row.insecure_unsigned),
            }))
        }
    }
}

fn parse_field(name: &str) -> Result<SecretField, AppError> {
    [
        SecretField::AccessToken,
        SecretField::AppSecret,
        SecretField::ApiKey,
        SecretField::HmacKey,
    ]
    .into_iter()
    .find(|f| f.name() == name)
    .ok_or_else(|| AppError::Validation(format!("There is no secret {name:?}.")))
}

/// A row's view with its team's name.
fn view_of(
    c: &mut crate::db::DbConn,
    state: &AppState,
    row: &NumberRow,
) -> Result<NumberView, AppError> {
    let team = store::team_name(c, row.team_id.as_deref())?;
    Ok(store::view(
        row,
        team,
        &state.secrets,
        &state.config.whatsapp,
    ))
}

fn audited(
    c: &mut crate::db::DbConn,
    who: &AuditActor,
    action: AuditAction,
    before: Option<&NumberView>,
    after: &NumberView,
) -> Result<(), AppError> {
    let mut entry = AuditEntry::new(who, action)
        .target("whatsapp_number", &after.id)
        .after(after);
    if let Some(b) = before {
        entry = entry.before(b);
    }
    if let Some(team) = &after.team_id {
        entry = entry.team(team);
    }
    audit::record(c, &entry, now_ms()).map(|_| ())
}

async fn list(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let st = state.clone();
    let numbers = state
        .db
        .run(move |c| {
            store::all(c)?
                .iter()
                .map(|r| view_of(c, &st, r))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(NumbersList {
        numbers,
        meta_verify_token: state.secrets.meta_verify_token().to_string(),
    }))
}

async fn create(
    state: web::Data<AppState>,
    AuthAgent(admin): AuthAgent,
    req: HttpRequest,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, AppError> {
    let b = body.into_inner();
    let new = NewNumber {
        label: clean_label(&b.label)?,
        team_id: b.team_id.trim().to_string(),
        settings: settings_of(&b)?,
        secrets: given_secrets([
            (SecretField::AccessToken, &b.access_token),
            (SecretField::AppSecret, &b.app_secret),
            (SecretField::ApiKey, &b.api_key),
            (SecretField::HmacKey, &b.hmac_key),
        ]),
    };
    let who = actor(&admin, &req);
    let st = state.clone();
    let number = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let row = store::create(c, &st.secrets, &new)?;
                let view = view_of(c, &st, &row)?;
                audited(c, &who, AuditAction::WhatsAppNumberCreated, None, &view)?;
                Ok(view)
            })
        })
        .await?;
    state.hub.publish(BusEvent::NumbersChanged);
    tracing::info!(number = %number.id, provider = number.provider.as_str(), "WhatsApp number added");
    Ok(HttpResponse::Created().json(NumberOne { number }))
}

async fn apply(
    state: &web::Data<AppState>,
    who: AuditActor,
    id: String,
    action: AuditAction,
    change: impl FnOnce(&NumberRow) -> Result<NumberChange, AppError> + Send + 'static,
) -> Result<NumberView, AppError> {
    let st = state.clone();
    let view = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let current = store::get(c, &id)?;
                let change = change(&current)?;
                let (before, after) = store::update(c, &st.secrets, &id, &change)?;
                let before = view_of(c, &st, &before)?;
                let after = view_of(c, &st, &after)?;
                audited(c, &who, action, Some(&before), &after)?;
                Ok(after)
            })
        })
        .await?;
    // After the commit: every node's cached credentials are now stale.
    state.hub.publish(BusEvent::NumbersChanged);
    Ok(view)
}

async fn update(
    state: web::Data<AppState>,
    AuthAgent(admin): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, AppError> {
    let b = body.into_inner();
    let label = b.label.as_deref().map(clean_label).transpose()?;
    let mut secrets: Vec<(SecretField, Option<String>)> = b
        .clear_secrets
        .iter()
        .map(|n| parse_field(n).map(|f| (f, None)))
        .collect::<Result<_, _>>()?;
    secrets.extend(
        given_secrets([
            (SecretField::AccessToken, &b.access_token),
            (SecretField::AppSecret, &b.app_secret),
            (SecretField::ApiKey, &b.api_key),
            (SecretField::HmacKey, &b.hmac_key),
        ])
        .into_iter()
        .map(|(f, v)| (f, Some(v))),
    );
    let who = actor(&admin, &req);
    let number = apply(
        &state,
        who,
        path.into_inner(),
        AuditAction::WhatsAppNumberUpdated,
        move |row| {
            Ok(NumberChange {
                label,
                team_id: b.team_id.as_deref().map(|t| t.trim().to_string()),
                active: b.active,
                settings: settings_after(row, &b)?,
                secrets,
            })
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(NumberOne { number }))
}

async fn deactivate(
    state: web::Data<AppState>,
    AuthAgent(admin): AuthAgent,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let who = actor(&admin, &req);
    let number = apply(
        &state,
        who,
        path.into_inner(),
        AuditAction::WhatsAppNumberDeactivated,
        |_| {
            Ok(NumberChange {
                active: Some(false),
                ..NumberChange::default()
            })
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(NumberOne { number }))
}

async fn refresh_session(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let creds = {
        let (st, id) = (state.clone(), id.clone());
        state
            .db
            .run(move |c| store::credentials(c, &st.secrets, &st.config.whatsapp, &id))
            .await?
    };
    let Credentials::Waha(w) = creds else {
        return Err(AppError::Validation(
            "Only WAHA numbers have a session.".into(),
        ));
    };
    let base = w
        .base_url
        .as_deref()
        .ok_or_else(|| AppError::Validation("This number has no WAHA address.".into()))?;
    let mut req = state
        .outbox
        .http()
        .get(format!("{base}/api/sessions/{}", w.session));
    if let Some(key) = &w.api_key {
        req = req.header("X-Api-Key", key.expose());
    }
    let unavailable = |why: &str| AppError::Unavailable(format!("WAHA did not answer: {why}"));
    let resp = req.send().await.map_err(|_| unavailable("no connection"))?;
    if !resp.status().is_success() {
        return Err(unavailable(&format!("HTTP {}", resp.status().as_u16())));
    }
    let answer: Value = resp
        .json()
        .await
        .map_err(|_| unavailable("unreadable answer"))?;
    let status =
        waha::session_status_of(&answer).ok_or_else(|| unavailable("no known session status"))?;
    record_session_status(&state, &w.number_id, status).await?;
    let st = state.clone();
    let number = state
        .db
        .run(move |c| {
            let row = store::get(c, &id)?;
            view_of(c, &st, &row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(SessionAnswer { status, number }))
}

/// Stores a WAHA session status of `number`, and when it changed pushes a
/// `number_status` frame to admins and the number's team leads (so a `FAILED` or
/// `STOPPED` session is seen at once).
///
/// # Errors
/// Database errors.
pub(crate) async fn record_session_status(
    state: &AppState,
    number: &NumberId,
    status: SessionStatus,
) -> Result<(), AppError> {
    let id = number.as_str().to_string();
    let at = now_ms();
    let changed = state
        .db
        .run(move |c| {
            if store::set_session_status(c, &id, status, at)? {
                store::get(c, &id).map(Some)
            } else {
                Ok(None)
            }
        })
        .await?;
    if let Some(row) = changed {
        if status.needs_attention() {
            tracing::warn!(number = %row.id, status = status.as_str(), "WhatsApp number needs attention");
        }
        let frame = ServerFrame::NumberStatus(Box::new(NumberStatusFrame {
            number_id: NumberId(row.id.clone()),
            label: row.label.clone(),
            team_id: row.team_id.clone(),
            status,
            attention: status.needs_attention(),
            at,
        }))
        .encode();
        // Admins get every team's supervisor frames; an unbound env number
        // (no team) reaches admins only.
        state.hub.publish(BusEvent::Supervisors {
            team_id: row.team_id.unwrap_or_default(),
            frame,
        });
    }
    Ok(())
}
