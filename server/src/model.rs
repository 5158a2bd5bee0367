//! The hub's vocabulary: roles, sender kinds, conversation statuses, and the JSON
//! shapes ("views") that HTTP responses and WebSocket frames share. Field names and
//! meanings are the contract in `docs/api.md` and `docs/protocol.md`.

use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::error::AppError;

/// What an agent account may do: a named set of permissions
/// ([`crate::access`], `docs/roles.md`). Stored as text in `agents.role`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Works the conversations and leads of their teams.
    Agent,
    /// Team lead: also supervises their teams (presence, workload, every
    /// conversation), assigns others and configures the team.
    #[serde(alias = "lead")]
    Manager,
    /// Works conversations and leads and follows the funnel (seed 004).
    Sales,
    /// Campaigns, quick links and analytics; no conversations (seed 004).
    Marketing,
    /// Everything, including accounts, hub settings and the audit log.
    Admin,
}

impl Role {
    /// Every role, from the most to the least access.
    pub const ALL: [Role; 5] = [
        Self::Admin,
        Self::Manager,
        Self::Sales,
        Self::Agent,
        Self::Marketing,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Manager => "manager",
            Self::Sales => "sales",
            Self::Marketing => "marketing",
            Self::Admin => "admin",
        }
    }

    /// Parses a stored or submitted role. `lead`, the team lead's name before roles
    /// became permission sets, is still accepted as `manager` so older clients and
    /// scripts keep working.
    ///
    /// # Errors
    /// [`AppError::Validation`] for anything else.
    pub fn parse(s: &str) -> Result<Self, AppError> {
        match s {
            "agent" => Ok(Self::Agent),
            "manager" | "lead" => Ok(Self::Manager),
            "sales" => Ok(Self::Sales),
            "marketing" => Ok(Self::Marketing),
            "admin" => Ok(Self::Admin),
            other => Err(AppError::Validation(format!(
                "The role can be admin, manager, sales, agent or marketing (not {other:?})."
            ))),
        }
    }

    /// Whether the role sees all of its teams' conversations and presence
    /// ([`crate::access::Permission::TeamSupervise`]).
    pub fn supervises(self) -> bool {
        self.can(crate::access::Permission::TeamSupervise)
    }

    /// Whether the role acts in every team ([`crate::access::Permission::TeamsAll`]).
    pub fn all_teams(self) -> bool {
        self.can(crate::access::Permission::TeamsAll)
    }
}

/// Who wrote a message. Stored as text in `messages.sender_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    /// The contact (website visitor, WhatsApp customer, quick-chat lead).
    Guest,
    /// A human agent.
    Agent,
    /// The bot.
    Bot,
    /// The hub itself (notices such as "conversation reopened").
    System,
}

impl SenderKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Guest => "guest",
            Self::Agent => "agent",
            Self::Bot => "bot",
            Self::System => "system",
        }
    }

    /// Parses a stored value; unknown values read as `system` so one odd row never
    /// breaks a history page.
    pub fn parse_lossy(s: &str) -> Self {
        match s {
            "guest" => Self::Guest,
            "agent" => Self::Agent,
            "bot" => Self::Bot,
            _ => Self::System,
        }
    }

    /// `in` for messages from the contact, `out` for everything sent to them.
    pub fn direction(self) -> &'static str {
        match self {
            Self::Guest => "in",
            Self::Agent | Self::Bot | Self::System => "out",
        }
    }
}

/// Where a conversation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Needs or is getting attention.
    Open,
    /// Waiting on the contact or on something outside the hub.
    Pending,
    /// Done; a new message from the contact reopens it.
    Resolved,
}

impl ConversationStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Pending => "pending",
            Self::Resolved => "resolved",
        }
    }

    /// Parses a stored or submitted status.
    ///
    /// # Errors
    /// [`AppError::Validation`] for anything but `open`, `pending`, `resolved`.
    pub fn parse(s: &str) -> Result<Self, AppError> {
        match s {
            "open" => Ok(Self::Open),
            "pending" => Ok(Self::Pending),
            "resolved" => Ok(Self::Resolved),
            other => Err(AppError::Validation(format!(
                "The status can be open, pending or resolved (not {other:?})."
            ))),
        }
    }
}

/// An agent as clients see it (never the password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    /// Agent id.
    pub id: String,
    /// Login email, lower-cased.
    pub email: String,
    /// Display name shown to guests and colleagues.
    pub name: String,
    /// Permissions.
    pub role: Role,
    /// Teams the agent belongs to.
    pub team_ids: Vec<String>,
    /// Whether the account may log in (deactivated agents are listed for admins).
    pub active: bool,
}

/// A team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamView {
    /// Team id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// URL-safe name used by the widget's `data-team`.
    pub slug: String,
}

/// The person on the other side of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    /// Contact id.
    pub id: String,
    /// Name as given in the pre-chat form or by the provider, if any (null for an
    /// anonymous visitor: the bot never greets a generated name).
    pub name: Option<String>,
    /// Email, if given.
    pub email: Option<String>,
    /// Phone in E.164, if given.
    pub phone: Option<String>,
    /// What to call the contact: `name` when known, else a generated two-word name
    /// ("Amber Falcon") derived from the id — the same on every node and after a
    /// restart ([`crate::visitor::generated_name`]).
    pub display_name: String,
    /// True when `display_name` is generated rather than given.
    pub generated_name: bool,
    /// ISO 3166-1 alpha-2 country, from the visitor's time zone, else the region of
    /// its locale or `Accept-Language`; null when unknown.
    pub country: Option<String>,
    /// IANA time zone the widget reported, if any.
    pub time_zone: Option<String>,
    /// BCP 47 locale the widget reported (else the first `Accept-Language` tag).
    pub locale: Option<String>,
    /// The contact has come back: a later widget visit with the same guest token
    /// (renewed after a pause of at least 30 minutes), or its lead held an earlier
    /// conversation of the same person (`docs/api.md`).
    pub returning: bool,
}

/// Who sent a message, as shown next to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderView {
    /// guest, agent, bot or system.
    pub kind: SenderKind,
    /// Contact id for guests, agent id for agents, absent for system.
    pub id: Option<String>,
    /// Display name at the time of sending.
    pub name: Option<String>,
}

/// One stored message: the body of `message` frames and of history pages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    /// Conversation id.
    pub conversation_id: String,
    /// Position in the conversation: 1, 2, 3 … without gaps.
    pub seq: i64,
    /// Message id.
    pub id: String,
    /// Author.
    pub sender: SenderView,
    /// Text exactly as sent; clients must render it as text, never as HTML.
    pub body: String,
    /// Commit time, RFC 3339 UTC.
    pub created_at: String,
    /// The sender's idempotency key, when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// Media or file attached (WhatsApp), absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<AttachmentView>,
    /// Delivery status of an outbound WhatsApp message: `pending`, `sent`,
    /// `delivered`, `read` or `failed`; absent for other messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Why delivery failed (`status: failed`): provider error code and title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::channels::StatusError>,
}

/// A message's attachment as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentView {
    /// `image`, `video`, `audio`, `voice`, `document` or `sticker`.
    pub kind: String,
    /// MIME type, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// File name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Caption, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Where to get the bytes: `/api/media/{message_id}` (the hub relays them from
    /// the provider; send the bearer token) for customers' media, or the public URL
    /// an agent sent.
    pub url: String,
}

impl AttachmentView {
    /// The view of a stored attachment of message `message_id`.
    pub fn of(message_id: &str, a: crate::channels::Attachment) -> Self {
        let url = match (a.provider, a.url) {
            (None, Some(public)) => public,
            _ => format!("/api/media/{message_id}"),
        };
        Self {
            kind: a.kind,
            mime_type: a.mime_type,
            filename: a.filename,
            caption: a.caption,
            url,
        }
    }
}

/// Latest message of a conversation, for list previews.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastMessageView {
    /// Its seq.
    pub seq: i64,
    /// First 200 characters of its body.
    pub body: String,
    /// Who wrote it.
    pub sender_kind: SenderKind,
    /// When, RFC 3339 UTC.
    pub created_at: String,
}

/// The conversation summary of `docs/api.md`, also pushed in `conversation` frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationView {
    /// Conversation id.
    pub id: String,
    /// Owning team.
    pub team_id: String,
    /// `widget` today; `whatsapp` and `quick_chat` later.
    pub channel: String,
    /// open, pending or resolved.
    pub status: ConversationStatus,
    /// The agent working it, if any.
    pub assignee_id: Option<String>,
    /// Where it came from (`demo`, `linkedin`, a campaign …), if known.
    pub source: Option<String>,
    /// The page the widget was on when the conversation started.
    pub page_url: Option<String>,
    /// The contact.
    pub contact: ContactView,
    /// Highest seq so far (0 before the first message).
    pub last_seq: i64,
    /// Preview of the latest message.
    pub last_message: Option<LastMessageView>,
    /// Time of the latest message, RFC 3339 UTC.
    pub last_message_at: Option<String>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// Highest seq the contact has read.
    pub guest_read_seq: i64,
    /// Highest seq an agent has read.
    pub agent_read_seq: i64,
    /// Since when it waits in the team queue for an agent (RFC 3339 UTC), if it does.
    pub queued_at: Option<String>,
    /// Meta WhatsApp conversations: when the 24-hour customer-service window closes
    /// (RFC 3339 UTC; 24 h after the customer's last message). Past it, or when
    /// null on such a conversation, free text is refused and a template is needed.
    /// Absent for other channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_expires_at: Option<String>,
    /// True on a Meta WhatsApp conversation whose window is closed (or never
    /// opened): the inbox shows "a template is needed". Absent for other channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_required: Option<bool>,
    /// The contact's lead's stage key; only in `GET /api/conversations` lists (absent
    /// elsewhere and when the contact has no lead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_stage: Option<String>,
    /// The contact's lead's priority (`low`|`normal`|`high`); like `lead_stage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_priority: Option<String>,
}

impl ConversationView {
    /// Whether agents see this conversation: it has a message, or its contact left
    /// a name, email or phone (pre-chat form, `POST /api/widget/contact`,
    /// WhatsApp). An opened widget alone makes none (`docs/api.md`). The SQL form is
    /// `store::conversations::visible_to_agents`; keep the two in step.
    pub fn visible_to_agents(&self) -> bool {
        self.last_seq > 0
            || self.contact.name.is_some()
            || self.contact.email.is_some()
            || self.contact.phone.is_some()
    }
}

/// Formats an optional epoch-ms time as RFC 3339 (see [`rfc3339`]).
pub(crate) fn opt_time(ms: Option<i64>) -> Option<String> {
    ms.map(rfc3339)
}

/// Characters of a body kept as the conversation's list preview.
pub const PREVIEW_CHARS: usize = 200;

/// Longest message body accepted, in characters (WhatsApp's own text limit is 4096).
pub const MAX_BODY_CHARS: usize = 4096;

/// Longest `client_msg_id` accepted, in characters.
pub const MAX_CLIENT_MSG_ID_CHARS: usize = 64;

/// Checks and normalises a message body: trailing and leading whitespace trimmed,
/// 1 to [`MAX_BODY_CHARS`] characters, no NUL (PostgreSQL text cannot hold it).
///
/// # Errors
/// [`AppError::Validation`] saying which rule failed.
pub fn validate_body(body: &str) -> Result<String, AppError> {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return Err(AppError::Validation("The message is empty.".into()));
    }
    let chars = trimmed.chars().count();
    if chars > MAX_BODY_CHARS {
        return Err(AppError::Validation(format!(
            "The message can be at most {MAX_BODY_CHARS} characters (this one has {chars})."
        )));
    }
    if trimmed.contains('\0') {
        return Err(AppError::Validation(
            "The message contains an invisible character that cannot be sent.".into(),
        ));
    }
    Ok(trimmed.to_string())
}

/// Checks a client-chosen idempotency key: 1 to 64 printable ASCII characters.
///
/// # Errors
/// [`AppError::Validation`] when empty, too long or containing other characters.
pub fn validate_client_msg_id(id: &str) -> Result<(), AppError> {
    if id.is_empty() || id.chars().count() > MAX_CLIENT_MSG_ID_CHARS {
        return Err(AppError::Validation(format!(
            "The message key (client_msg_id) must be between 1 and {MAX_CLIENT_MSG_ID_CHARS} characters."
        )));
    }
    if !id.chars().all(|c| c.is_ascii_graphic()) {
        return Err(AppError::Validation(
            "The message key (client_msg_id) can only use letters, digits and punctuation, without spaces.".into(),
        ));
    }
    Ok(())
}

/// First [`PREVIEW_CHARS`] characters of `body`.
pub fn preview(body: &str) -> String {
    body.chars().take(PREVIEW_CHARS).collect()
}

/// A new random, time-ordered id (UUIDv7).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_trimmed_and_bounded() {
        assert_eq!(validate_body("  hi \n").unwrap(), "hi");
        assert!(validate_body("   ").is_err());
        assert!(validate_body(&"é".repeat(MAX_BODY_CHARS)).is_ok());
        assert!(validate_body(&"é".repeat(MAX_BODY_CHARS + 1)).is_err());
        assert!(validate_body("a\0b").is_err());
    }

    #[test]
    fn client_msg_ids_are_printable_ascii() {
        assert!(validate_client_msg_id("0193a4b2-7c1e-7000-8000-000000000001").is_ok());
        assert!(validate_client_msg_id("").is_err());
        assert!(validate_client_msg_id("has space").is_err());
        assert!(validate_client_msg_id(&"x".repeat(65)).is_err());
    }

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).unwrap(), r);
        }
        assert_eq!(Role::parse("lead").unwrap(), Role::Manager);
        assert!(Role::parse("root").is_err());
    }
}
