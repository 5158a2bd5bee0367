//! WhatsApp numbers (inboxes): the vocabulary and the pure rules of several
//! numbers per hub — each a Meta Cloud API phone number or a WAHA session, bound to
//! one team. SQL lives in `store/numbers.rs`, the admin API in `http/numbers.rs`,
//! secrets at rest in `secrets.rs`.
//!
//! The environment configuration (`WHATSAPP_*`, `WAHA_*`) is presented as up to two
//! numbers with the stable ids [`NumberId::ENV_META`] and [`NumberId::ENV_WAHA`];
//! their secrets stay in the environment and they cannot be edited through the API.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Provider;
use crate::config::Secret;
use crate::error::AppError;

/// Id of a row of `whatsapp_numbers` (a UUID, or one of the two env ids).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NumberId(pub String);

impl NumberId {
    /// The Meta number configured by `WHATSAPP_*` environment variables.
    pub const ENV_META: &'static str = "env-meta";
    /// The WAHA session configured by `WAHA_*` environment variables.
    pub const ENV_WAHA: &'static str = "env-waha";

    /// The env number of a provider.
    pub fn env(provider: Provider) -> Self {
        Self(
            match provider {
                Provider::Meta => Self::ENV_META,
                Provider::Waha => Self::ENV_WAHA,
            }
            .to_string(),
        )
    }

    /// Whether this is one of the env numbers.
    pub fn is_env(&self) -> bool {
        self.0 == Self::ENV_META || self.0 == Self::ENV_WAHA
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NumberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a number's settings come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberSource {
    /// Environment variables (read-only through the API).
    Env,
    /// Created by an admin through `POST /api/whatsapp/numbers`.
    Admin,
}

impl NumberSource {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::Admin => "admin",
        }
    }

    /// Parses a stored name (anything unknown is treated as admin-made).
    pub fn parse(s: &str) -> Self {
        if s == "env" {
            Self::Env
        } else {
            Self::Admin
        }
    }
}

/// State of a WAHA session (WAHA docs, "Sessions — status": `STARTING`,
/// `SCAN_QR_CODE`, `WORKING`, `FAILED`, `STOPPED`). Meta numbers have none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStatus {
    /// The session is starting.
    Starting,
    /// Waiting for someone to scan the QR code with the phone.
    ScanQrCode,
    /// Connected: messages flow.
    Working,
    /// Crashed or logged out: no messages flow until someone restarts it.
    Failed,
    /// Stopped on purpose: no messages flow.
    Stopped,
}

impl SessionStatus {
    /// WAHA's name, also the stored one.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "STARTING",
            Self::ScanQrCode => "SCAN_QR_CODE",
            Self::Working => "WORKING",
            Self::Failed => "FAILED",
            Self::Stopped => "STOPPED",
        }
    }

    /// Parses WAHA's name (case-insensitive); `None` for a state WAHA may add later.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "STARTING" => Some(Self::Starting),
            "SCAN_QR_CODE" => Some(Self::ScanQrCode),
            "WORKING" => Some(Self::Working),
            "FAILED" => Some(Self::Failed),
            "STOPPED" => Some(Self::Stopped),
            _ => None,
        }
    }

    /// Whether an admin must act: no message flows until the session is restarted
    /// (`FAILED`, `STOPPED`). These are pushed to admins at once.
    pub fn needs_attention(self) -> bool {
        matches!(self, Self::Failed | Self::Stopped)
    }
}

/// The `number_status` frame: a number's WAHA session changed state.
#[derive(Clone, Debug, Serialize)]
pub struct NumberStatusFrame {
    /// The number.
    pub number_id: NumberId,
    /// Its name.
    pub label: String,
    /// Its team.
    pub team_id: Option<String>,
    /// The new state.
    pub status: SessionStatus,
    /// Whether an admin must act ([`SessionStatus::needs_attention`]).
    pub attention: bool,
    /// When it was reported (epoch ms).
    pub at: i64,
}

/// Provider-specific, non-secret settings of a number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum ProviderSettings {
    /// A Meta Cloud API phone number.
    Meta {
        /// The business phone number id (`metadata.phone_number_id` in webhooks).
        phone_number_id: String,
        /// WhatsApp Business Account id (template management), when known.
        waba_id: Option<String>,
    },
    /// A WAHA session.
    Waha {
        /// WAHA base URL, no trailing slash.
        base_url: String,
        /// Session name (`session` in WAHA webhooks).
        session: String,
        /// Accept webhooks without an HMAC key (explicit opt-out of fail-closed).
        insecure_unsigned: bool,
    },
}

impl ProviderSettings {
    /// The provider.
    pub fn provider(&self) -> Provider {
        match self {
            Self::Meta { .. } => Provider::Meta,
            Self::Waha { .. } => Provider::Waha,
        }
    }
}

/// One write-only secret of a number; the column holding it is `<name>_enc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretField {
    /// Meta Graph API access token (sending, media, templates).
    AccessToken,
    /// Meta app secret (webhook `X-Hub-Signature-256`).
    AppSecret,
    /// WAHA `X-Api-Key`.
    ApiKey,
    /// WAHA webhook HMAC key (`X-Webhook-Hmac`).
    HmacKey,
}

impl SecretField {
    /// Name in the API and the associated data of its ciphertext.
    pub fn name(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::AppSecret => "app_secret",
            Self::ApiKey => "api_key",
            Self::HmacKey => "hmac_key",
        }
    }

    /// The secrets a provider's numbers have.
    pub fn of(provider: Provider) -> &'static [SecretField] {
        match provider {
            Provider::Meta => &[Self::AccessToken, Self::AppSecret],
            Provider::Waha => &[Self::ApiKey, Self::HmacKey],
        }
    }
}

/// Whether a secret is there, as the API shows it (never the value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretState {
    /// Not set.
    Unset,
    /// Set and readable with the current key.
    Set,
    /// Stored but cannot be decrypted (the key changed): enter it again.
    Unreadable,
}

/// Credentials of a Meta number, decrypted: what sending, media and templates use.
#[derive(Clone, Debug)]
pub struct MetaCredentials {
    /// The number.
    pub number_id: NumberId,
    /// Team its conversations land in (`None`: an env number whose `WHATSAPP_TEAM`
    /// did not exist at start-up; its conversations use the slug).
    pub team_id: Option<String>,
    /// Graph API base URL with version, no trailing slash (`WHATSAPP_GRAPH_URL`).
    pub graph_url: String,
    /// Business phone number id (`POST {graph_url}/{phone_number_id}/messages`).
    pub phone_number_id: Option<String>,
    /// WhatsApp Business Account id (`GET {graph_url}/{waba_id}/message_templates`).
    pub waba_id: Option<String>,
    /// Bearer token.
    pub access_token: Option<Secret>,
    /// Webhook signature key.
    pub app_secret: Option<Secret>,
}

/// Credentials of a WAHA number, decrypted.
#[derive(Clone, Debug)]
pub struct WahaCredentials {
    /// The number.
    pub number_id: NumberId,
    /// Team its conversations land in (see [`MetaCredentials::team_id`]).
    pub team_id: Option<String>,
    /// WAHA base URL, no trailing slash.
    pub base_url: Option<String>,
    /// Session name.
    pub session: String,
    /// `X-Api-Key`.
    pub api_key: Option<Secret>,
    /// Webhook HMAC key.
    pub hmac_key: Option<Secret>,
    /// Webhooks without HMAC key accepted (explicit opt-out).
    pub insecure_unsigned: bool,
}

/// A number's credentials, by provider.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// Meta Cloud API.
    Meta(MetaCredentials),
    /// WAHA.
    Waha(WahaCredentials),
}

impl Credentials {
    /// The number.
    pub fn number_id(&self) -> &NumberId {
        match self {
            Self::Meta(m) => &m.number_id,
            Self::Waha(w) => &w.number_id,
        }
    }
}

/// How a WAHA webhook for a number must be authenticated.
#[derive(Clone, Debug)]
pub enum WahaWebhookAuth {
    /// Check `X-Webhook-Hmac` with this key.
    Verify(Secret),
    /// Accept unsigned (the number set `insecure_unsigned`).
    Unsigned,
    /// Refuse: no key and no explicit opt-out (fail closed, as for Meta).
    Refuse,
}

/// The fail-closed rule for WAHA webhooks: a key means verify; no key means
/// refuse, unless the number explicitly accepts unsigned webhooks.
pub fn waha_webhook_auth(w: &WahaCredentials) -> WahaWebhookAuth {
    match (&w.hmac_key, w.insecure_unsigned) {
        (Some(k), _) => WahaWebhookAuth::Verify(k.clone()),
        (None, true) => WahaWebhookAuth::Unsigned,
        (None, false) => WahaWebhookAuth::Refuse,
    }
}

/// Checks a number's label: 1–80 characters after trimming.
///
/// # Errors
/// [`AppError::Validation`] with a sentence for the admin.
pub fn clean_label(label: &str) -> Result<String, AppError> {
    let l = label.trim();
    if l.is_empty() || l.chars().count() > 80 {
        return Err(AppError::Validation(
            "A number needs a name of 1 to 80 characters.".into(),
        ));
    }
    Ok(l.to_string())
}

/// Checks Meta ids (phone number id, WABA id): digits only, 1–32 of them.
///
/// # Errors
/// [`AppError::Validation`] naming the field.
pub fn clean_meta_id(value: &str, what: &str) -> Result<String, AppError> {
    let v = value.trim();
    if v.is_empty() || v.len() > 32 || !v.chars().all(|c| c.is_ascii_digit()) {
        return Err(AppError::Validation(format!(
            "The {what} is the number Meta shows in WhatsApp Manager (digits only)."
        )));
    }
    Ok(v.to_string())
}

/// Checks a WAHA base URL: absolute `http`/`https`; returns it without trailing `/`.
///
/// # Errors
/// [`AppError::Validation`].
pub fn clean_base_url(value: &str) -> Result<String, AppError> {
    let v = value.trim().trim_end_matches('/');
    match url::Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && v.len() <= 2048 => Ok(v.to_string()),
        _ => Err(AppError::Validation(
            "The WAHA address must be a full web address such as http://waha:3000.".into(),
        )),
    }
}

/// Checks a WAHA session name: 1–64 letters, digits, `_` or `-` (WAHA's own rule
/// for session names in URLs).
///
/// # Errors
/// [`AppError::Validation`].
pub fn clean_session(value: &str) -> Result<String, AppError> {
    let v = value.trim();
    if v.is_empty()
        || v.len() > 64
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(AppError::Validation(
            "A WAHA session name has 1 to 64 letters, digits, '_' or '-'.".into(),
        ));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_states_follow_waha() {
        for s in ["STARTING", "SCAN_QR_CODE", "WORKING", "FAILED", "STOPPED"] {
            assert_eq!(SessionStatus::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(SessionStatus::parse("failed"), Some(SessionStatus::Failed));
        assert_eq!(SessionStatus::parse("NEW_STATE"), None);
        assert!(SessionStatus::Failed.needs_attention());
        assert!(SessionStatus::Stopped.needs_attention());
        assert!(!SessionStatus::ScanQrCode.needs_attention());
        assert_eq!(
            serde_json::to_string(&SessionStatus::ScanQrCode).unwrap(),
            "\"SCAN_QR_CODE\""
        );
    }

    #[test]
    fn waha_webhooks_fail_closed() {
        let mut w = WahaCredentials {
            number_id: NumberId("n".into()),
            team_id: None,
            base_url: None,
            session: "s".into(),
            api_key: None,
            hmac_key: None,
            insecure_unsigned: false,
        };
        assert!(matches!(waha_webhook_auth(&w), WahaWebhookAuth::Refuse));
        w.insecure_unsigned = true;
        assert!(matches!(waha_webhook_auth(&w), WahaWebhookAuth::Unsigned));
        w.hmac_key = Some(Secret::new("k"));
        assert!(matches!(waha_webhook_auth(&w), WahaWebhookAuth::Verify(k) if k.expose() == "k"));
    }

    #[test]
    fn inputs_are_checked() {
        assert!(clean_label("  ").is_err());
        assert_eq!(clean_label(" Sales ").unwrap(), "Sales");
        assert!(clean_meta_id("12a", "phone number id").is_err());
        assert_eq!(
            clean_meta_id(" 106540352242922 ", "x").unwrap(),
            "106540352242922"
        );
        assert!(clean_base_url("ftp://x").is_err());
        assert_eq!(
            clean_base_url("http://waha:3000/").unwrap(),
            "http://waha:3000"
        );
        assert!(clean_session("a/b").is_err());
        assert_eq!(clean_session("sales-1").unwrap(), "sales-1");
        assert!(NumberId::env(Provider::Waha).is_env());
        assert!(!NumberId("x".into()).is_env());
    }
}
