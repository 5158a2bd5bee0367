//! Every message the actors exchange, as named-field structs. Keeping them in one
//! place shows the whole conversation between actors at a glance:
//!
//! ```text
//! SessionActor  --PostMessage/SetTyping/MarkRead/Authorize-->  ConversationActor
//! ConversationActor --(BusEvent via Hub)--> Deliver --> SessionActor (guests, watchers)
//!                                       \-> DeliverToAgent --> AgentActor --> Deliver --> SessionActor
//! SessionActor  --AttachSession/DetachSession/SetPresence-->  AgentActor
//! Hub (shutdown) --CloseSession--> SessionActor
//! ```

use std::sync::Arc;

use actix::prelude::*;
use bytestring::ByteString;

use crate::auth::Principal;
use crate::error::AppError;
use crate::model::{ConversationStatus, ConversationView, MessageView};
use crate::protocol::PresenceChoice;
use crate::store::conversations::ConversationMeta;

use super::session::SessionRef;

/// One encoded frame for one session. Frames of a conversation's message carry its
/// id and seq, so the session can keep exactly-once, in-order delivery.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct Deliver {
    /// The JSON text to send.
    pub frame: ByteString,
    /// Conversation the frame belongs to (for `message` frames).
    pub conversation_id: Option<Arc<str>>,
    /// The message's seq (for `message` frames).
    pub seq: Option<i64>,
}

/// Close a session with a WebSocket close code (shutdown: 1012; slow consumer: 1013).
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct CloseSession {
    /// RFC 6455 close code.
    pub code: u16,
    /// Human-readable reason (≤ 123 bytes on the wire).
    pub reason: String,
}

/// Store a message in a conversation and fan it out; answers after the commit.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<Posted, AppError>")]
pub struct PostMessage {
    /// The author (authorisation is checked against the conversation).
    pub principal: Principal,
    /// Idempotency key.
    pub client_msg_id: Option<String>,
    /// Raw body (validated by the actor).
    pub body: String,
}

/// What [`PostMessage`] stored.
#[derive(Clone, Debug)]
pub struct Posted {
    /// The stored message (the earlier one when `duplicate`).
    pub message: MessageView,
    /// True when this key had been used before: nothing new was stored.
    pub duplicate: bool,
}

/// Relay a typing indicator.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<(), AppError>")]
pub struct SetTyping {
    /// Who is typing.
    pub principal: Principal,
    /// Started or stopped.
    pub on: bool,
    /// The session typing, which does not need its own indicator back.
    pub origin_session: Option<Arc<str>>,
}

/// Move a read marker forward and relay it.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<(), AppError>")]
pub struct MarkRead {
    /// Who read.
    pub principal: Principal,
    /// Highest seq seen.
    pub seq: i64,
}

/// Check that `principal` may use the conversation; answers with its routing facts.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<ConversationMeta, AppError>")]
pub struct Authorize {
    /// Who asks.
    pub principal: Principal,
}

/// Assign, reassign or unassign.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<ConversationView, AppError>")]
pub struct ChangeAssignee {
    /// Who asks (permission rules in `docs/api.md`).
    pub principal: Principal,
    /// New assignee, or `None` to unassign.
    pub agent_id: Option<String>,
}

/// Move the conversation to another team (`POST /api/conversations/{id}/transfer`,
/// `docs/routing.md`) and, with `agent_id`, assign it there, in one transaction:
/// either both happen or neither. Answers the conversation as it is afterwards; the
/// actor adopts its new team and assignee from that answer, so no reload follows.
/// Without `agent_id` the conversation is routed in the new team.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<ConversationView, AppError>")]
pub struct Transfer {
    /// Who asks: an agent of the conversation's team allowed to assign others
    /// (`conversations.assign_others`, checked by the route).
    pub principal: Principal,
    /// The team to move it to.
    pub team_id: String,
    /// The agent of that team to assign it to, if any.
    pub agent_id: Option<String>,
}

/// Change the status (resolve, reopen, set pending).
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<ConversationView, AppError>")]
pub struct ChangeStatus {
    /// Who asks.
    pub principal: Principal,
    /// New status.
    pub status: ConversationStatus,
}

/// A session of this agent opened (sent to the agent's actor).
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct AttachSession {
    /// The session.
    pub session: SessionRef,
    /// The agent as just read from the database (role and teams may have changed
    /// since the actor started).
    pub info: crate::store::accounts::AgentInfo,
}

/// The agent's access was taken away (deactivated, role changed, removed from a team,
/// password changed): close every session of it on this node.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct RevokeSessions {
    /// Close reason shown to the client (≤ 123 bytes).
    pub reason: String,
}

/// A session of this agent closed.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct DetachSession {
    /// The session's id.
    pub session_id: Arc<str>,
}

/// The agent chose online or away.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct SetPresence {
    /// The choice.
    pub status: PresenceChoice,
}

/// A frame for every session of one agent.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct DeliverToAgent {
    /// The frame.
    pub deliver: Deliver,
    /// A session not to send it to (the one it came from).
    pub exclude_session: Option<Arc<str>>,
}

/// Routing changed the conversation in the database (assignee, queue, team): reload
/// its routing facts and announce what changed (`assigned`, `conversation`).
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<(), AppError>")]
pub struct Refresh;

/// Store a customer's message that arrived through a WhatsApp provider webhook and
/// fan it out like a guest's post (`ConversationActor`'s one post-commit path);
/// answers after the commit. A repeated `provider_id` stores nothing new.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<Posted, AppError>")]
pub struct PostInbound {
    /// Stored provider id (`wa:<wamid>` / `waha:<id>`), unique across messages.
    pub provider_id: String,
    /// Readable body (already cleaned by the adapter).
    pub body: String,
    /// The customer's profile name, when the provider sent one.
    pub sender_name: Option<String>,
    /// Media reference, JSON of [`crate::channels::Attachment`].
    pub attachment: Option<String>,
}

/// An agent sends an image or document by URL into a WhatsApp conversation: stored,
/// then sent through the outbox like a text reply.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<Posted, AppError>")]
pub struct PostMedia {
    /// The agent.
    pub principal: Principal,
    /// Idempotency key.
    pub client_msg_id: Option<String>,
    /// What to send (kind `image` or `document`, `url` set).
    pub attachment: crate::channels::Attachment,
}

/// Push a committed delivery-status change to the conversation's agents.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct PublishStatus {
    /// The change, already committed.
    pub change: crate::store::whatsapp::StatusChange,
}

/// Re-read, from the database, every message this session may have missed
/// (cross-node events were lost while the node's Redis link was down).
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct CatchUp;

/// Another node changed this conversation's routing facts: adopt them quietly
/// (that node already announced the change).
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct Reload {
    /// Team after the change.
    pub team_id: String,
    /// Assignee after the change.
    pub assignee_id: Option<String>,
    /// Status after the change.
    pub status: ConversationStatus,
}

/// An automatic reply from the hub (campaign package, welcome, engagement
/// invitation): stored as a `bot` message with a seq, fanned out like any message,
/// and in WhatsApp conversations sent through the outbox — as an image with the
/// body as caption when `image_url` is set.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<Posted, AppError>")]
pub struct PostAutoReply {
    /// Text (the caption when an image is sent).
    pub body: String,
    /// Image to send with it (WhatsApp only; other channels get the text).
    pub image_url: Option<String>,
    /// The bot's reply: refused (409) when a human has the conversation by the time
    /// it would be appended, so the bot never talks over an agent.
    pub bot_guard: bool,
}

/// An agent sends an approved Meta template (outside the 24-hour window too):
/// stored with its rendered text, then sent through the outbox as a `template`
/// row. The HTTP handler has checked the template and its values
/// (`http/templates.rs`).
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<Posted, AppError>")]
pub struct PostTemplate {
    /// The agent.
    pub principal: Principal,
    /// Idempotency key.
    pub client_msg_id: Option<String>,
    /// The text the customer reads (`channels::templates::render`).
    pub body: String,
    /// The outbox payload: JSON of `channels::templates::send::Order`.
    pub order: String,
}
