//! How the admin API shows a number: its settings, team and status, and for each
//! secret only whether it is set ([`SecretState`]), never the value.

use diesel::prelude::*;
use serde::Serialize;

use super::{env_secret, NumberRow};
use crate::channels::numbers::{NumberSource, SecretField, SecretState, SessionStatus};
use crate::channels::Provider;
use crate::config::WhatsAppConfig;
use crate::db::schema::teams;
use crate::db::DbConn;
use crate::error::AppError;
use crate::secrets::SecretBox;

fn secret_state(
    row: &NumberRow,
    field: SecretField,
    sb: &SecretBox,
    cfg: &WhatsAppConfig,
) -> SecretState {
    if row.source() == NumberSource::Env {
        return match env_secret(cfg, field) {
            Some(_) => SecretState::Set,
            None => SecretState::Unset,
        };
    }
    match row.sealed(field) {
        None => SecretState::Unset,
        Some(s) if sb.open(&row.id, field.name(), s).is_ok() => SecretState::Set,
        Some(_) => SecretState::Unreadable,
    }
}

/// Whether each secret of a number is set, as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SecretsView {
    /// Meta access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<SecretState>,
    /// Meta app secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_secret: Option<SecretState>,
    /// WAHA API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretState>,
    /// WAHA webhook HMAC key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hmac_key: Option<SecretState>,
}

/// A number as the admin API shows it: settings, team, status, and for each
/// secret only whether it is set.
#[derive(Clone, Debug, Serialize)]
pub struct NumberView {
    /// Id.
    pub id: String,
    /// `meta` or `waha`.
    pub provider: Provider,
    /// `env` (read-only) or `admin`.
    pub source: NumberSource,
    /// Name.
    pub label: String,
    /// Team id (`null`: an env number whose `WHATSAPP_TEAM` did not exist at start).
    pub team_id: Option<String>,
    /// Team name.
    pub team_name: Option<String>,
    /// Whether it takes webhooks and sends.
    pub active: bool,
    /// Meta phone number id.
    pub phone_number_id: Option<String>,
    /// Meta WABA id.
    pub waba_id: Option<String>,
    /// WAHA base URL.
    pub waha_url: Option<String>,
    /// WAHA session name.
    pub waha_session: Option<String>,
    /// WAHA: unsigned webhooks accepted.
    pub insecure_unsigned: bool,
    /// Per secret: `unset`, `set` or `unreadable`.
    pub secrets: SecretsView,
    /// Last WAHA session status.
    pub session_status: Option<SessionStatus>,
    /// When it was reported (epoch ms).
    pub session_status_at: Option<i64>,
    /// Path of the webhook to give the provider (prefix with the hub's public URL).
    pub webhook_path: &'static str,
    /// Whether it receives webhooks at all: Meta needs an app secret, WAHA an HMAC
    /// key or `insecure_unsigned` (fail closed).
    pub receiving: bool,
}

/// The API view of `row` (`team_name` looked up by the caller).
pub fn view(
    row: &NumberRow,
    team_name: Option<String>,
    sb: &SecretBox,
    cfg: &WhatsAppConfig,
) -> NumberView {
    let provider = row.provider();
    let state = |f: SecretField| {
        SecretField::of(provider)
            .contains(&f)
            .then(|| secret_state(row, f, sb, cfg))
    };
    let secrets = SecretsView {
        access_token: state(SecretField::AccessToken),
        app_secret: state(SecretField::AppSecret),
        api_key: state(SecretField::ApiKey),
        hmac_key: state(SecretField::HmacKey),
    };
    let receiving = row.active
        && match provider {
            Provider::Meta => secrets.app_secret == Some(SecretState::Set),
            Provider::Waha => secrets.hmac_key == Some(SecretState::Set) || row.insecure_unsigned,
        };
    NumberView {
        id: row.id.clone(),
        provider,
        source: row.source(),
        label: row.label.clone(),
        team_id: row.team_id.clone(),
        team_name,
        active: row.active,
        phone_number_id: row.phone_number_id.clone(),
        waba_id: row.waba_id.clone(),
        waha_url: row.waha_url.clone(),
        waha_session: row.waha_session.clone(),
        insecure_unsigned: row.insecure_unsigned,
        secrets,
        session_status: row.session_status.as_deref().and_then(SessionStatus::parse),
        session_status_at: row.session_status_at,
        webhook_path: match provider {
            Provider::Meta => "/webhooks/whatsapp",
            Provider::Waha => "/webhooks/waha",
        },
        receiving,
    }
}

/// The name of team `id`, if any.
///
/// # Errors
/// Database errors.
pub fn team_name(conn: &mut DbConn, id: Option<&str>) -> Result<Option<String>, AppError> {
    let Some(id) = id else { return Ok(None) };
    Ok(teams::table
        .find(id)
        .select(teams::name)
        .first(conn)
        .optional()?)
}
