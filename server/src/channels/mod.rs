//! WhatsApp channel adapters: they translate the providers' webhooks into
//! [`InboundEvent`]s (messages and delivery statuses) and the hub's replies into
//! provider API calls.
//!
//! Two providers feed the same pipeline:
//! - [`meta`]: the Meta WhatsApp Cloud API (Graph API webhooks and `/messages`);
//! - [`waha`]: WAHA, a self-hosted WhatsApp HTTP API (github.com/devlikeapro/waha).
//!
//! Conversations of the Meta provider have channel `whatsapp`, those of WAHA
//! channel `waha`. Provider message ids are stored prefixed (`wa:` / `waha:`), so the
//! single unique index on `messages.provider_id` is unique per provider.
//!
//! This module owns the vocabulary both adapters share and the webhook signature
//! checks ([`verify_meta_signature`], [`verify_waha_hmac`]); the HTTP side lives in
//! `http/webhooks.rs`, persistence in `store/whatsapp.rs`, sending in `outbox.rs`.

pub mod meta;
pub mod numbers;
pub mod phone;
pub mod templates;
pub mod waha;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Sha256, Sha512};

use crate::model::MAX_BODY_CHARS;

/// Which provider a message came from or goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Meta WhatsApp Cloud API.
    Meta,
    /// WAHA (WhatsApp HTTP API, self-hosted).
    Waha,
}

impl Provider {
    /// Stored name (`outbox.provider`, attachment JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Meta => "meta",
            Self::Waha => "waha",
        }
    }

    /// The conversation channel of this provider's conversations.
    pub fn channel(self) -> &'static str {
        match self {
            Self::Meta => "whatsapp",
            Self::Waha => "waha",
        }
    }

    /// The provider of a conversation channel, if it is a WhatsApp one.
    pub fn of_channel(channel: &str) -> Option<Self> {
        match channel {
            "whatsapp" => Some(Self::Meta),
            "waha" => Some(Self::Waha),
            _ => None,
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "meta" => Some(Self::Meta),
            "waha" => Some(Self::Waha),
            _ => None,
        }
    }

    /// The stored form of a provider message id: `wa:<wamid>` or `waha:<id>`.
    pub fn stored_id(self, id: &str) -> String {
        match self {
            Self::Meta => format!("wa:{id}"),
            Self::Waha => format!("waha:{id}"),
        }
    }

    /// The provider's own id from a stored one (inverse of [`Provider::stored_id`]).
    pub fn raw_id(self, stored: &str) -> &str {
        let prefix = match self {
            Self::Meta => "wa:",
            Self::Waha => "waha:",
        };
        stored.strip_prefix(prefix).unwrap_or(stored)
    }

    /// Whether the 24-hour customer-service window applies. Meta enforces it (free
    /// text only within 24 h of the customer's last message; Meta "Conversations"
    /// docs); WAHA drives a WhatsApp Web session, which has no such rule.
    pub fn has_service_window(self) -> bool {
        matches!(self, Self::Meta)
    }
}

/// Length of the customer-service window (Meta: 24 hours after the last user message).
pub const SERVICE_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// Media or file attached to a message, as stored in `messages.attachment` (JSON).
/// Holds the provider's reference, never the bytes: agents fetch them through
/// `GET /api/media/{message_id}`, which downloads from the provider on demand.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// `image`, `video`, `audio`, `voice`, `document` or `sticker`.
    pub kind: String,
    /// MIME type as reported by the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// File name (documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Caption sent with the media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Base64 SHA-256 of the file (Meta).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// `meta` or `waha`: who can hand out the bytes; absent for outbound media the
    /// agent gave by URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Meta media id (fetch `GET {graph}/{media_id}` with the access token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// WAHA file URL, or the public URL an agent sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Delivery status of an outbound message. Statuses only move forward
/// (`pending < sent < delivered < read`); `failed` is final (SPEC guarantee 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Stored and queued in the outbox, not yet accepted by the provider.
    Pending,
    /// Accepted by the provider.
    Sent,
    /// On the customer's device.
    Delivered,
    /// Read (or played) by the customer.
    Read,
    /// Will not be delivered; see the error.
    Failed,
}

impl DeliveryStatus {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "sent" => Some(Self::Sent),
            "delivered" => Some(Self::Delivered),
            "read" => Some(Self::Read),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    /// The stored statuses a message may move to `self` from: only earlier ones, and
    /// never out of `failed`. A read message cannot become failed (read proves delivery).
    pub fn may_follow(self) -> &'static [&'static str] {
        match self {
            Self::Pending => &[],
            Self::Sent => &["pending"],
            Self::Delivered => &["pending", "sent"],
            Self::Read => &["pending", "sent", "delivered"],
            Self::Failed => &["pending", "sent", "delivered"],
        }
    }

    /// Order used to pick the furthest of several statuses.
    pub fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read => 3,
            Self::Failed => 4,
        }
    }
}

/// Why a provider will not deliver a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusError {
    /// Provider error code (Meta "Error codes" page), 0 when the provider gave none.
    pub code: i64,
    /// Human-readable reason.
    pub title: String,
}

/// Who wrote an inbound message, as the provider identifies them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sender {
    /// Stable WhatsApp identity: E.164 digits without `+` (`16505551234`), or
    /// `lid:<id>` for a WAHA `@lid` sender whose number is unknown.
    pub wa_id: String,
    /// E.164 phone (`+16505551234`), when known.
    pub phone: Option<String>,
    /// Profile name, when the provider sent one.
    pub name: Option<String>,
}

/// A customer's message, normalised from either provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundMessage {
    /// Provider it came through.
    pub provider: Provider,
    /// The provider's message id (wamid, WAHA id), unprefixed.
    pub provider_id: String,
    /// Author.
    pub sender: Sender,
    /// Readable text: the text itself, a caption, or a placeholder such as
    /// `[location] …` for types without text. Never empty.
    pub body: String,
    /// Media reference, for media messages.
    pub attachment: Option<Attachment>,
}

/// A delivery status report for an outbound message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusUpdate {
    /// Provider it came through.
    pub provider: Provider,
    /// The provider's id of the outbound message, unprefixed.
    pub provider_id: String,
    /// New status.
    pub status: DeliveryStatus,
    /// Reason, for `failed`.
    pub error: Option<StatusError>,
}

/// One thing a webhook reported.
// Events live only while one webhook is handled; boxing the larger variant would
// buy nothing but an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InboundEvent {
    /// A customer's message.
    Message(InboundMessage),
    /// A delivery status.
    Status(StatusUpdate),
    /// A WAHA session changed state (`session.status`).
    Session(SessionUpdate),
}

/// A WAHA `session.status` event (WAHA docs, "Events — session.status").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionUpdate {
    /// Session name.
    pub session: String,
    /// Its new state.
    pub status: numbers::SessionStatus,
}

/// Makes provider text storable: no NUL (PostgreSQL text cannot hold it), at most
/// [`MAX_BODY_CHARS`] characters, trimmed; `fallback` when nothing is left.
pub fn clean_body(text: &str, fallback: &str) -> String {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| *c != '\0')
        .take(MAX_BODY_CHARS)
        .collect();
    if cleaned.trim().is_empty() {
        fallback.to_string()
    } else {
        cleaned
    }
}

/// Checks Meta's `X-Hub-Signature-256` header (`sha256=<hex>`): HMAC-SHA256 of the
/// raw body keyed with the app secret, compared in constant time
/// (`Mac::verify_slice`). Meta docs: "Webhooks — Validating payloads".
pub fn verify_meta_signature(app_secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Checks WAHA's `X-Webhook-Hmac` header: hex HMAC-SHA512 of the raw body keyed
/// with `WAHA_WEBHOOK_HMAC_KEY`, compared in constant time (WAHA docs, "Webhooks —
/// HMAC authentication").
pub fn verify_waha_hmac(key: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(Ok(expected)) = header.map(|h| hex::decode(h.trim())) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha512>::new_from_slice(key) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const META_TEXT: &[u8] =
        include_bytes!("../../../tests/fixtures/whatsapp/meta_text_message.json");

    #[test]
    fn meta_signature_matches_the_readme_test_vector() {
        assert_eq!(META_TEXT.len(), 985);
        let good = "sha256=1c041e1c07f50386213ac582d2e17d24d70f1ed42949a6e5a5607057b805b5fc";
        assert!(verify_meta_signature(
            b"test_app_secret",
            META_TEXT,
            Some(good)
        ));
        assert!(!verify_meta_signature(
            b"other_secret",
            META_TEXT,
            Some(good)
        ));
        assert!(!verify_meta_signature(b"test_app_secret", META_TEXT, None));
        assert!(!verify_meta_signature(
            b"test_app_secret",
            META_TEXT,
            Some("sha256=zz")
        ));
        assert!(!verify_meta_signature(
            b"test_app_secret",
            META_TEXT,
            Some(&good.replace("sha256=", "sha1="))
        ));
    }

    #[test]
    fn waha_hmac_matches_the_readme_test_vector() {
        let body = br#"{"event":"message","session":"default","engine":"WEBJS"}"#;
        let good = "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89";
        assert!(verify_waha_hmac(b"my-secret-key", body, Some(good)));
        assert!(!verify_waha_hmac(b"my-secret-key", b"{}", Some(good)));
        assert!(!verify_waha_hmac(b"my-secret-key", body, None));
    }

    #[test]
    fn statuses_only_move_forward() {
        assert!(DeliveryStatus::Read.may_follow().contains(&"delivered"));
        assert!(!DeliveryStatus::Delivered.may_follow().contains(&"read"));
        assert!(!DeliveryStatus::Read.may_follow().contains(&"failed"));
        assert!(DeliveryStatus::Failed.may_follow().contains(&"sent"));
    }

    #[test]
    fn bodies_are_cleaned() {
        assert_eq!(clean_body("  a\0b ", "x"), "ab");
        assert_eq!(clean_body("   ", "[empty]"), "[empty]");
        assert_eq!(
            clean_body(&"é".repeat(5000), "x").chars().count(),
            MAX_BODY_CHARS
        );
    }
}

/// Why a provider call did not send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Worth retrying later (network, timeout, 5xx, 429, retryable provider codes).
    Transient(String),
    /// Will never succeed as is; the message is marked failed with this reason.
    Permanent(StatusError),
}

/// A fixture of `tests/fixtures/whatsapp/` (copied from the providers' docs) as JSON,
/// for the parsers' unit tests.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn test_fixture(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../tests/fixtures/whatsapp/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
