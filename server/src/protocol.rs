//! The WebSocket wire format (`docs/protocol.md`): frames clients send
//! ([`ClientFrame`]) and frames the hub sends ([`ServerFrame`]).
//!
//! Parsing distinguishes a frame that is not a JSON object or lacks fields
//! (`bad_frame`) from a well-formed frame of a type we do not know (`unknown_type`),
//! so client authors get a precise error. Nothing here can panic on input.

use std::collections::BTreeMap;

use bytestring::ByteString;
use serde::{Deserialize, Serialize};

use crate::model::{ConversationView, MessageView, SenderKind, SenderView};
use crate::routing::views::{OfferView, TeamWorkload};

/// An agent's chosen availability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceChoice {
    /// Taking conversations.
    Online,
    /// Connected but not taking new work.
    Away,
}

/// Presence as others see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// Connected and available.
    Online,
    /// Connected, not available.
    Away,
    /// No session (past the grace period).
    Offline,
}

/// A frame from a client.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame: the token.
    Auth {
        /// Agent or guest token.
        token: String,
    },
    /// Post a message.
    Send {
        /// Target; guests may omit it.
        #[serde(default)]
        conversation_id: Option<String>,
        /// Idempotency key.
        client_msg_id: String,
        /// Text.
        body: String,
    },
    /// Typing started or stopped.
    Typing {
        /// Target; guests may omit it.
        #[serde(default)]
        conversation_id: Option<String>,
        /// True while typing.
        on: bool,
    },
    /// Everything up to `seq` has been seen.
    Read {
        /// Target; guests may omit it.
        #[serde(default)]
        conversation_id: Option<String>,
        /// Highest seen seq.
        seq: i64,
    },
    /// Replay what was missed and watch these conversations.
    Resume {
        /// conversation id → highest seq the client holds (0: none).
        cursors: BTreeMap<String, i64>,
    },
    /// An agent's availability.
    Presence {
        /// online or away.
        status: PresenceChoice,
    },
    /// Take an offered conversation (poll routing). The winner gets
    /// `offer_closed {won: true}` and `assigned`; a late claim gets an `error` with
    /// code `conflict`.
    Claim {
        /// The offer.
        offer_id: String,
    },
    /// Application-level ping.
    Ping,
}

impl ClientFrame {
    /// What an `error` frame about this frame names in `ref`: the idempotency key
    /// of a `send`, else the frame's type.
    pub fn reference(&self) -> String {
        match self {
            Self::Send { client_msg_id, .. } => client_msg_id.clone(),
            Self::Auth { .. } => "auth".into(),
            Self::Typing { .. } => "typing".into(),
            Self::Read { .. } => "read".into(),
            Self::Resume { .. } => "resume".into(),
            Self::Presence { .. } => "presence".into(),
            Self::Claim { .. } => "claim".into(),
            Self::Ping => "ping".into(),
        }
    }
}

const KNOWN_TYPES: [&str; 8] = [
    "auth", "send", "typing", "read", "resume", "presence", "claim", "ping",
];

/// Why a frame could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameError {
    /// `bad_frame` or `unknown_type`.
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
    /// The frame's `type`, when it had one.
    pub frame_type: Option<String>,
}

impl ClientFrame {
    /// Decodes one text frame.
    ///
    /// # Errors
    /// [`FrameError`] with code `bad_frame` (not JSON, not an object, missing or wrong
    /// fields) or `unknown_type`.
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| FrameError {
            code: "bad_frame",
            message: format!("not valid JSON: {e}"),
            frame_type: None,
        })?;
        let Some(obj) = value.as_object() else {
            return Err(FrameError {
                code: "bad_frame",
                message: "a frame must be a JSON object".into(),
                frame_type: None,
            });
        };
        let Some(kind) = obj.get("type").and_then(|t| t.as_str()) else {
            return Err(FrameError {
                code: "bad_frame",
                message: "a frame needs a string \"type\"".into(),
                frame_type: None,
            });
        };
        if !KNOWN_TYPES.contains(&kind) {
            return Err(FrameError {
                code: "unknown_type",
                message: format!("unknown frame type {kind:?}"),
                frame_type: Some(kind.chars().take(64).collect()),
            });
        }
        let kind = kind.to_string();
        serde_json::from_value(value).map_err(|e| FrameError {
            code: "bad_frame",
            message: format!("invalid {kind} frame: {e}"),
            frame_type: Some(kind),
        })
    }
}

/// Who a session belongs to, as told in `hello`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct You {
    /// `agent` or `guest`.
    pub kind: SenderKind,
    /// Agent id or contact id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Agents: role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::model::Role>,
    /// Agents: teams.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_ids: Option<Vec<String>>,
    /// Guests: their conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

/// Who read a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReaderView {
    /// guest or agent.
    pub kind: SenderKind,
    /// Contact or agent id.
    pub id: String,
}

/// A frame to a client.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Authentication succeeded.
    Hello {
        /// This connection's id.
        session_id: String,
        /// Who you are.
        you: You,
        /// Server ping interval in ms.
        heartbeat_ms: u64,
    },
    /// A committed message.
    Message(MessageView),
    /// Your `send` is committed.
    Ack {
        /// Conversation.
        conversation_id: String,
        /// Your key.
        client_msg_id: String,
        /// Stored message id.
        id: String,
        /// Its seq.
        seq: i64,
        /// True when it had been stored before.
        duplicate: bool,
    },
    /// Someone is typing.
    Typing {
        /// Conversation.
        conversation_id: String,
        /// Started or stopped.
        on: bool,
        /// Who.
        sender: SenderView,
    },
    /// Someone read up to `seq`.
    Read {
        /// Conversation.
        conversation_id: String,
        /// Highest read seq.
        seq: i64,
        /// Who.
        reader: ReaderView,
    },
    /// Resume finished; these are the cursors now held.
    Resumed {
        /// conversation id → last seq delivered.
        cursors: BTreeMap<String, i64>,
    },
    /// A conversation was created or changed.
    Conversation {
        /// Its summary (boxed: with its contact it is the largest frame by far).
        conversation: Box<ConversationView>,
    },
    /// A conversation's assignee changed.
    Assigned {
        /// Conversation.
        conversation_id: String,
        /// New assignee, null when unassigned.
        agent_id: Option<String>,
    },
    /// An agent's presence changed.
    Presence {
        /// Agent.
        agent_id: String,
        /// New status.
        status: PresenceStatus,
    },
    /// A conversation is offered to you (poll routing). Anonymised: no phone number
    /// or email until claimed.
    Offer(OfferView),
    /// An offer you received is closed: you won it, someone else did, or it expired
    /// or was withdrawn.
    OfferClosed {
        /// The offer.
        offer_id: String,
        /// Its conversation.
        conversation_id: String,
        /// True for the agent who won the claim.
        won: bool,
        /// `claimed`, `expired` or `cancelled`.
        reason: String,
    },
    /// The conversation waits in its team's queue at `position` (1: next), or left
    /// it (`position` null).
    Queue {
        /// Conversation.
        conversation_id: String,
        /// 1-based place in the queue; null once it is no longer queued.
        position: Option<i64>,
    },
    /// A team's live workload (team leads and admins).
    Workload(TeamWorkload),
    /// An offer went unclaimed past its timeout (team leads and admins).
    RoutingAlert {
        /// Team.
        team_id: String,
        /// Conversation waiting.
        conversation_id: String,
        /// The unclaimed offer.
        offer_id: String,
        /// Human sentence.
        message: String,
    },
    /// Something was wrong with a frame or its effect.
    Error {
        /// Stable code.
        code: String,
        /// Sentence for humans.
        message: String,
        /// The frame's `client_msg_id` or `type`, when known.
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        /// For `rate_limited`: milliseconds to wait before sending again.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Answer to `ping`.
    Pong,
    /// The delivery status of an outbound WhatsApp message moved forward
    /// (to agents of the conversation; `docs/protocol.md`).
    Status {
        /// Conversation.
        conversation_id: String,
        /// The message.
        message_id: String,
        /// Its seq.
        seq: i64,
        /// `sent`, `delivered`, `read` or `failed`.
        status: crate::channels::DeliveryStatus,
        /// Why, for `failed`: provider error code and title.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<crate::channels::StatusError>,
    },
    /// A lead was created or changed (to the agents of its conversation;
    /// `docs/leads.md`).
    Lead(Box<crate::store::leads::LeadView>),
    /// A new entry on a lead's timeline (to the agents of its conversation).
    Timeline(Box<crate::store::leads::TimelineEntry>),
    /// A task is overdue (to its assignee, and to the team's leads and admins).
    TaskDue(Box<crate::store::leads::TaskRow>),
    /// A lead asked for a human (payment intent): to the team's leads and admins.
    /// `{lead_id, conversation_id, team_id, intent, reason, last_message}`.
    Handover(serde_json::Value),
    /// The bot's state of a conversation changed (paused, resumed, handed over): to
    /// the conversation's agents. `{conversation_id, status, reason, summary}`.
    Bot(serde_json::Value),
    /// A WhatsApp number's WAHA session changed state: to admins and the number's
    /// team leads (`docs/channels/whatsapp.md`).
    NumberStatus(Box<crate::channels::numbers::NumberStatusFrame>),
    /// A contact's tags changed (to the agents of each of its conversations;
    /// `docs/contacts.md`).
    ContactTags(Box<crate::store::tags::ContactTagsFrame>),
}

impl ServerFrame {
    /// Serialises the frame once; the result is shared by every recipient.
    pub fn encode(&self) -> ByteString {
        // Serialising these plain structs cannot fail (no maps with non-string keys,
        // no custom serialisers); the fallback keeps the session alive regardless.
        match serde_json::to_string(self) {
            Ok(s) => ByteString::from(s),
            Err(e) => {
                tracing::error!(error = %e, "frame serialisation failed");
                ByteString::from_static(
                    r#"{"type":"error","code":"internal","message":"internal error"}"#,
                )
            }
        }
    }

    /// An `error` frame.
    pub fn error(code: &str, message: impl Into<String>, reference: Option<String>) -> Self {
        Self::Error {
            code: code.to_string(),
            message: message.into(),
            reference,
            retry_after_ms: None,
        }
    }

    /// The `error` frame for an [`AppError`]: its code and public sentence, and for
    /// [`AppError::RateLimited`] the wait (whole seconds, as in `Retry-After`).
    pub fn app_error(err: &crate::error::AppError, reference: Option<String>) -> Self {
        let retry_after_ms = match err {
            crate::error::AppError::RateLimited(wait) => {
                Some(crate::error::retry_after_secs(*wait).saturating_mul(1000))
            }
            _ => None,
        };
        Self::Error {
            code: err.code().to_string(),
            message: err.public_message(),
            reference,
            retry_after_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_client_frame() {
        assert_eq!(
            ClientFrame::parse(
                r#"{"type":"send","conversation_id":"c","client_msg_id":"m1","body":"hi"}"#
            )
            .unwrap(),
            ClientFrame::Send {
                conversation_id: Some("c".into()),
                client_msg_id: "m1".into(),
                body: "hi".into()
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"ping"}"#).unwrap(),
            ClientFrame::Ping
        );
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"resume","cursors":{"c":3}}"#).unwrap(),
            ClientFrame::Resume { .. }
        ));
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"presence","status":"away"}"#).unwrap(),
            ClientFrame::Presence {
                status: PresenceChoice::Away
            }
        ));
    }

    #[test]
    fn tells_bad_frames_from_unknown_types() {
        assert_eq!(ClientFrame::parse("{nope").unwrap_err().code, "bad_frame");
        assert_eq!(ClientFrame::parse("[1,2]").unwrap_err().code, "bad_frame");
        assert_eq!(
            ClientFrame::parse(r#"{"kind":"send"}"#).unwrap_err().code,
            "bad_frame"
        );
        let e = ClientFrame::parse(r#"{"type":"dance"}"#).unwrap_err();
        assert_eq!(
            (e.code, e.frame_type.as_deref()),
            ("unknown_type", Some("dance"))
        );
        let e = ClientFrame::parse(r#"{"type":"send","body":"x"}"#).unwrap_err();
        assert_eq!(
            (e.code, e.frame_type.as_deref()),
            ("bad_frame", Some("send"))
        );
        assert!(e.message.contains("client_msg_id"));
    }

    #[test]
    fn server_frames_are_tagged() {
        let s =
            ServerFrame::error("validation", "body must not be empty", Some("m1".into())).encode();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["ref"], "m1");
        assert_eq!(ServerFrame::Pong.encode(), r#"{"type":"pong"}"#);
    }
}
