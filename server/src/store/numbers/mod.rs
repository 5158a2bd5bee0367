//! WhatsApp numbers in the database (`whatsapp_numbers`, migration
//! `2026-12-05-100001_whatsapp_numbers`): the env numbers written at start-up
//! ([`sync_env`]), admin-made numbers with their secrets sealed by
//! [`SecretBox`], lookups for inbound webhooks, and the decrypted credentials
//! other parts send with ([`credentials_for_conversation`], [`meta_numbers`]).
//!
//! Rules (fail-closed webhooks, input checks) are in `channels::numbers`; the
//! API's view of a number in [`view`].

use diesel::prelude::*;

use crate::channels::numbers::{
    Credentials, MetaCredentials, NumberId, NumberSource, ProviderSettings, SecretField,
    SessionStatus, WahaCredentials,
};
use crate::channels::Provider;
use crate::clock::now_ms;
use crate::config::{Secret, WhatsAppConfig};
use crate::db::schema::{conversations, teams, whatsapp_numbers};
use crate::db::{is_unique_violation, DbConn};
use crate::error::AppError;
use crate::model::new_id;
use crate::secrets::SecretBox;

pub mod cache;
mod view;
pub use view::{team_name, view, NumberView, SecretsView};

/// A row of `whatsapp_numbers`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = whatsapp_numbers, treat_none_as_null = true)]
pub struct NumberRow {
    /// Id (UUID, or `env-meta` / `env-waha`).
    pub id: String,
    /// `meta` or `waha`.
    pub provider: String,
    /// `env` or `admin`.
    pub source: String,
    /// Name shown to admins.
    pub label: String,
    /// Team its conversations land in.
    pub team_id: Option<String>,
    /// Deactivated numbers refuse webhooks and send nothing.
    pub active: bool,
    /// Meta phone number id.
    pub phone_number_id: Option<String>,
    /// Meta WhatsApp Business Account id.
    pub waba_id: Option<String>,
    /// WAHA base URL.
    pub waha_url: Option<String>,
    /// WAHA session name.
    pub waha_session: Option<String>,
    /// WAHA: accept webhooks without an HMAC key.
    pub insecure_unsigned: bool,
    /// Sealed Meta access token.
    pub access_token_enc: Option<String>,
    /// Sealed Meta app secret.
    pub app_secret_enc: Option<String>,
    /// Sealed WAHA API key.
    pub api_key_enc: Option<String>,
    /// Sealed WAHA webhook HMAC key.
    pub hmac_key_enc: Option<String>,
    /// Last WAHA session status (WAHA's name).
    pub session_status: Option<String>,
    /// When it was reported (epoch ms).
    pub session_status_at: Option<i64>,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

impl NumberRow {
    /// An active number with no settings, secrets or session status yet, made at
    /// `now` (epoch ms).
    pub fn blank(
        id: &str,
        provider: Provider,
        source: NumberSource,
        label: &str,
        team_id: Option<String>,
        now: i64,
    ) -> Self {
        Self {
            id: id.into(),
            provider: provider.as_str().into(),
            source: source.as_str().into(),
            label: label.into(),
            team_id,
            active: true,
            phone_number_id: None,
            waba_id: None,
            waha_url: None,
            waha_session: None,
            insecure_unsigned: false,
            access_token_enc: None,
            app_secret_enc: None,
            api_key_enc: None,
            hmac_key_enc: None,
            session_status: None,
            session_status_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The provider.
    pub fn provider(&self) -> Provider {
        Provider::parse(&self.provider).unwrap_or(Provider::Meta)
    }

    /// Where its settings come from.
    pub fn source(&self) -> NumberSource {
        NumberSource::parse(&self.source)
    }

    fn sealed(&self, field: SecretField) -> Option<&str> {
        match field {
            SecretField::AccessToken => self.access_token_enc.as_deref(),
            SecretField::AppSecret => self.app_secret_enc.as_deref(),
            SecretField::ApiKey => self.api_key_enc.as_deref(),
            SecretField::HmacKey => self.hmac_key_enc.as_deref(),
        }
    }

    fn sealed_mut(&mut self, field: SecretField) -> &mut Option<String> {
        match field {
            SecretField::AccessToken => &mut self.access_token_enc,
            SecretField::AppSecret => &mut self.app_secret_enc,
            SecretField::ApiKey => &mut self.api_key_enc,
            SecretField::HmacKey => &mut self.hmac_key_enc,
        }
    }
}

/// The secret of an env number, from the environment configuration.
fn env_secret(cfg: &WhatsAppConfig, field: SecretField) -> Option<Secret> {
    match field {
        SecretField::AccessToken => cfg.access_token.clone(),
        SecretField::AppSecret => cfg.app_secret.clone(),
        SecretField::ApiKey => cfg.waha_api_key.clone(),
        SecretField::HmacKey => cfg.waha_hmac_key.clone(),
    }
}

/// A secret of `row`, decrypted (env numbers: from the environment). An
/// unreadable one (the key changed) counts as unset, with an error in the log.
fn secret(
    row: &NumberRow,
    field: SecretField,
    sb: &SecretBox,
    cfg: &WhatsAppConfig,
) -> Option<Secret> {
    if row.source() == NumberSource::Env {
        return env_secret(cfg, field);
    }
    let sealed = row.sealed(field)?;
    match sb.open(&row.id, field.name(), sealed) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(number = %row.id, field = field.name(), error = %e, "a WhatsApp number secret is unreadable; enter it again");
            None
        }
    }
}

/// A row's credentials, decrypted.
pub fn credentials_of(row: &NumberRow, sb: &SecretBox, cfg: &WhatsAppConfig) -> Credentials {
    let id = NumberId(row.id.clone());
    match row.provider() {
        Provider::Meta => Credentials::Meta(MetaCredentials {
            number_id: id,
            team_id: row.team_id.clone(),
            graph_url: cfg.graph_url.clone(),
            phone_number_id: row.phone_number_id.clone(),
            waba_id: row.waba_id.clone(),
            access_token: secret(row, SecretField::AccessToken, sb, cfg),
            app_secret: secret(row, SecretField::AppSecret, sb, cfg),
        }),
        Provider::Waha => Credentials::Waha(WahaCredentials {
            number_id: id,
            team_id: row.team_id.clone(),
            base_url: row.waha_url.clone(),
            session: row
                .waha_session
                .clone()
                .unwrap_or_else(|| cfg.waha_session.clone()),
            api_key: secret(row, SecretField::ApiKey, sb, cfg),
            hmac_key: secret(row, SecretField::HmacKey, sb, cfg),
            insecure_unsigned: row.insecure_unsigned,
        }),
    }
}

/// Reads one number.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn get(conn: &mut DbConn, id: &str) -> Result<NumberRow, AppError> {
    whatsapp_numbers::table
        .find(id)
        .select(NumberRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no WhatsApp number {id}")))
}

/// Every number, env ones first, then by label.
///
/// # Errors
/// Database errors.
pub fn all(conn: &mut DbConn) -> Result<Vec<NumberRow>, AppError> {
    Ok(whatsapp_numbers::table
        .select(NumberRow::as_select())
        .order((
            whatsapp_numbers::source.desc(),
            whatsapp_numbers::label.asc(),
        ))
        .load(conn)?)
}

/// Writes (or refreshes) the env numbers from the environment configuration, so
/// a hub configured by `WHATSAPP_*` / `WAHA_*` keeps working as its first numbers
/// (zero-config upgrade). Meta counts as configured when any of
/// `WHATSAPP_PHONE_NUMBER_ID`, `WHATSAPP_APP_SECRET`, `WHATSAPP_ACCESS_TOKEN` is
/// set; WAHA when `WAHA_URL` or `WAHA_WEBHOOK_HMAC_KEY` is (the conditions under
/// which their webhooks worked before). An env number no longer configured is
/// deactivated. Safe on several nodes at once.
///
/// # Errors
/// Database errors.
pub fn sync_env(conn: &mut DbConn, cfg: &WhatsAppConfig) -> Result<(), AppError> {
    let team_id: Option<String> = teams::table
        .filter(teams::slug.eq(&cfg.team))
        .select(teams::id)
        .first(conn)
        .optional()?;
    if team_id.is_none() {
        tracing::warn!(team = %cfg.team, "WHATSAPP_TEAM names no team yet; env numbers use the slug");
    }
    let now = now_ms();
    let base = |id: &str, provider: Provider, label: &str, active: bool| NumberRow {
        active,
        ..NumberRow::blank(id, provider, NumberSource::Env, label, team_id.clone(), now)
    };
    let meta_on =
        cfg.phone_number_id.is_some() || cfg.app_secret.is_some() || cfg.access_token.is_some();
    let mut meta = base(
        NumberId::ENV_META,
        Provider::Meta,
        "Meta (environment)",
        meta_on,
    );
    meta.phone_number_id = cfg.phone_number_id.clone();
    let waha_on = cfg.waha_url.is_some() || cfg.waha_hmac_key.is_some();
    let mut waha = base(
        NumberId::ENV_WAHA,
        Provider::Waha,
        "WAHA (environment)",
        waha_on,
    );
    waha.waha_url = cfg.waha_url.clone();
    waha.waha_session = Some(cfg.waha_session.clone());
    waha.insecure_unsigned = cfg.waha_insecure_unsigned;
    for row in [meta, waha] {
        upsert_env(conn, row)?;
    }
    Ok(())
}

fn upsert_env(conn: &mut DbConn, mut row: NumberRow) -> Result<(), AppError> {
    let existing = whatsapp_numbers::table
        .find(&row.id)
        .select(NumberRow::as_select())
        .first(conn)
        .optional()?;
    let written = conn.transaction(|c| match &existing {
        Some(old) => {
            if !row.active && !old.active {
                return Ok(0);
            }
            row.created_at = old.created_at;
            row.session_status = old.session_status.clone();
            row.session_status_at = old.session_status_at;
            diesel::update(whatsapp_numbers::table.find(&row.id))
                .set(&row)
                .execute(c)
        }
        None if row.active => diesel::insert_into(whatsapp_numbers::table)
            .values(&row)
            .execute(c),
        None => Ok(0),
    });
    match written {
        Ok(_) => Ok(()),
        // Another node wrote it first, or an admin number already has this phone
        // number id / session: the admin's number wins; say so.
        Err(e) if is_unique_violation(&e) => {
            tracing::warn!(number = %row.id, "env WhatsApp number clashes with a stored one; left as is");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// What an admin gives to create a number.
#[derive(Debug, Clone)]
pub struct NewNumber {
    /// Name shown to admins (checked).
    pub label: String,
    /// Team id (checked to exist here).
    pub team_id: String,
    /// Provider settings (checked).
    pub settings: ProviderSettings,
    /// Secrets to seal; fields the provider does not have are ignored.
    pub secrets: Vec<(SecretField, String)>,
}

fn team_exists(conn: &mut DbConn, team_id: &str) -> Result<(), AppError> {
    let n: i64 = teams::table
        .filter(teams::id.eq(team_id))
        .count()
        .get_result(conn)?;
    if n == 0 {
        return Err(AppError::Validation(format!("There is no team {team_id}.")));
    }
    Ok(())
}

fn apply_settings(row: &mut NumberRow, settings: &ProviderSettings) {
    match settings {
        ProviderSettings::Meta {
            phone_number_id,
            waba_id,
        } => {
            row.phone_number_id = Some(phone_number_id.clone());
            row.waba_id = waba_id.clone();
        }
        ProviderSettings::Waha {
            base_url,
            session,
            insecure_unsigned,
        } => {
            row.waha_url = Some(base_url.clone());
            row.waha_session = Some(session.clone());
            row.insecure_unsigned = *insecure_unsigned;
        }
    }
}

fn clash(e: diesel::result::Error) -> AppError {
    if is_unique_violation(&e) {
        AppError::Conflict(
            "Another number already uses this phone number id or WAHA session (a deactivated one can be reactivated).".into(),
        )
    } else {
        e.into()
    }
}

/// Creates an admin number, secrets sealed. Call inside the transaction that
/// audits it.
///
/// # Errors
/// [`AppError::Validation`] for an unknown team; [`AppError::Conflict`] when the
/// phone number id or WAHA session is taken; database errors.
pub fn create(conn: &mut DbConn, sb: &SecretBox, new: &NewNumber) -> Result<NumberRow, AppError> {
    team_exists(conn, &new.team_id)?;
    let now = now_ms();
    let provider = new.settings.provider();
    let mut row = NumberRow::blank(
        &new_id(),
        provider,
        NumberSource::Admin,
        &new.label,
        Some(new.team_id.clone()),
        now,
    );
    apply_settings(&mut row, &new.settings);
    for (field, value) in &new.secrets {
        if SecretField::of(provider).contains(field) {
            *row.sealed_mut(*field) = Some(sb.seal(&row.id, field.name(), value)?);
        }
    }
    conn.transaction(|c| {
        diesel::insert_into(whatsapp_numbers::table)
            .values(&row)
            .execute(c)
    })
    .map_err(clash)?;
    Ok(row)
}

/// A change to an admin number; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct NumberChange {
    /// New label (checked).
    pub label: Option<String>,
    /// New team id (checked to exist here).
    pub team_id: Option<String>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// New provider settings (must be the number's provider).
    pub settings: Option<ProviderSettings>,
    /// Secrets to set (`Some(value)`) or clear (`None`); others are kept.
    pub secrets: Vec<(SecretField, Option<String>)>,
}

/// Applies `change` to admin number `id`; returns (before, after). Call inside
/// the transaction that audits it.
///
/// # Errors
/// [`AppError::NotFound`]; [`AppError::Conflict`] for an env number (edited through
/// the environment) or a taken phone number id / session; [`AppError::Validation`]
/// for another provider's settings or an unknown team; database errors.
pub fn update(
    conn: &mut DbConn,
    sb: &SecretBox,
    id: &str,
    change: &NumberChange,
) -> Result<(NumberRow, NumberRow), AppError> {
    let before = get(conn, id)?;
    if before.source() == NumberSource::Env {
        return Err(AppError::Conflict(
            "This number is configured by environment variables; change them and restart the hub."
                .into(),
        ));
    }
    let mut row = before.clone();
    if let Some(l) = &change.label {
        row.label = l.clone();
    }
    if let Some(t) = &change.team_id {
        team_exists(conn, t)?;
        row.team_id = Some(t.clone());
    }
    if let Some(a) = change.active {
        row.active = a;
    }
    if let Some(s) = &change.settings {
        if s.provider() != row.provider() {
            return Err(AppError::Validation(
                "A number's provider cannot change; add a new number instead.".into(),
            ));
        }
        apply_settings(&mut row, s);
    }
    for (field, value) in &change.secrets {
        if !SecretField::of(row.provider()).contains(field) {
            continue;
        }
        *row.sealed_mut(*field) = match value {
            Some(v) => Some(sb.seal(&row.id, field.name(), v)?),
            None => None,
        };
    }
    row.updated_at = now_ms();
    conn.transaction(|c| {
        diesel::update(whatsapp_numbers::table.find(id))
            .set(&row)
            .execute(c)
    })
    .map_err(clash)?;
    Ok((before, row))
}

/// Stores a WAHA session status reported for `id` at `at` (epoch ms); returns
/// whether it differs from the one stored before (then it is worth announcing).
///
/// # Errors
/// Database errors.
pub fn set_session_status(
    conn: &mut DbConn,
    id: &str,
    status: SessionStatus,
    at: i64,
) -> Result<bool, AppError> {
    let old: Option<Option<String>> = whatsapp_numbers::table
        .find(id)
        .select(whatsapp_numbers::session_status)
        .first(conn)
        .optional()?;
    let Some(old) = old else {
        return Ok(false);
    };
    diesel::update(whatsapp_numbers::table.find(id))
        .set((
            whatsapp_numbers::session_status.eq(status.as_str()),
            whatsapp_numbers::session_status_at.eq(at),
        ))
        .execute(conn)?;
    Ok(old.as_deref() != Some(status.as_str()))
}

/// Active Meta numbers as stored (webhook verification picks among them).
///
/// # Errors
/// Database errors.
pub fn active_meta_rows(conn: &mut DbConn) -> Result<Vec<NumberRow>, AppError> {
    Ok(whatsapp_numbers::table
        .filter(whatsapp_numbers::provider.eq(Provider::Meta.as_str()))
        .filter(whatsapp_numbers::active.eq(true))
        .select(NumberRow::as_select())
        .order(whatsapp_numbers::id.asc())
        .load(conn)?)
}

/// Every active Meta number with its credentials decrypted (graph URL, phone
/// number id, WABA id, access token): for template sync and broadcasts.
///
/// # Errors
/// Database errors.
pub fn meta_numbers(
    conn: &mut DbConn,
    sb: &SecretBox,
    cfg: &WhatsAppConfig,
) -> Result<Vec<MetaCredentials>, AppError> {
    Ok(active_meta_rows(conn)?
        .iter()
        .filter_map(|r| match credentials_of(r, sb, cfg) {
            Credentials::Meta(m) => Some(m),
            Credentials::Waha(_) => None,
        })
        .collect())
}

/// The credentials of number `id` (active or not).
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn credentials(
    conn: &mut DbConn,
    sb: &SecretBox,
    cfg: &WhatsAppConfig,
    id: &str,
) -> Result<Credentials, AppError> {
    Ok(credentials_of(&get(conn, id)?, sb, cfg))
}

/// The credentials of the number a WhatsApp conversation came in on — what its
/// replies, read receipts, typing indicators and media use. A conversation from
/// before numbers existed (no `number_id`) uses its provider's env number.
///
/// # Errors
/// [`AppError::NotFound`] when the conversation or its number is gone, or it is
/// not a WhatsApp conversation; [`AppError::Conflict`] when its number is
/// deactivated; database errors.
pub fn credentials_for_conversation(
    conn: &mut DbConn,
    sb: &SecretBox,
    cfg: &WhatsAppConfig,
    conversation_id: &str,
) -> Result<Credentials, AppError> {
    let id = number_of_conversation(conn, conversation_id)?;
    let row = get(conn, &id.0)?;
    if !row.active {
        return Err(AppError::Conflict(format!(
            "the WhatsApp number {:?} is deactivated",
            row.label
        )));
    }
    Ok(credentials_of(&row, sb, cfg))
}

/// The number a WhatsApp conversation came in on; a conversation from before
/// numbers existed (no `number_id`) has its provider's env number.
///
/// # Errors
/// [`AppError::NotFound`] when the conversation is gone or not a WhatsApp
/// conversation; database errors.
pub fn number_of_conversation(
    conn: &mut DbConn,
    conversation_id: &str,
) -> Result<NumberId, AppError> {
    let (channel, number_id): (String, Option<String>) = conversations::table
        .find(conversation_id)
        .select((conversations::channel, conversations::number_id))
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no conversation {conversation_id}")))?;
    number_of(&channel, number_id)
}

/// The number of a conversation with this `channel` and stored `number_id` (an
/// env number's conversations store none).
///
/// # Errors
/// [`AppError::NotFound`] when the channel is not WhatsApp's.
pub fn number_of(channel: &str, number_id: Option<String>) -> Result<NumberId, AppError> {
    let provider = Provider::of_channel(channel)
        .ok_or_else(|| AppError::NotFound("not a WhatsApp conversation".into()))?;
    Ok(number_id.map_or_else(|| NumberId::env(provider), NumberId))
}
