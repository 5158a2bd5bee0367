//! What routing shows to clients: offers, the team workload, queue entries and the
//! routing audit. These are wire shapes (`docs/protocol.md`, `docs/api.md`).

use serde::{Deserialize, Serialize};

use crate::protocol::PresenceStatus;

/// An offer as sent to each recipient in an `offer` frame and by `GET /api/offers`.
/// Deliberately anonymised: no contact name, phone number or email.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferView {
    /// Offer id (claim with it).
    pub offer_id: String,
    /// The conversation on offer.
    pub conversation_id: String,
    /// Its team.
    pub team_id: String,
    /// `widget`, `whatsapp`, `quick_chat`.
    pub channel: String,
    /// Attribution (`linkedin`, a campaign …), if known.
    pub source: Option<String>,
    /// The first characters of the latest message from the contact.
    pub preview: Option<String>,
    /// When the current round ends (RFC 3339 UTC); the offer may be widened then.
    pub expires_at: String,
    /// 1 for the first round; each escalation step adds one.
    pub round: i32,
}

/// Why an agent was not chosen (routing audit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// No live session (past the grace period).
    Offline,
    /// Connected but chose away.
    Away,
    /// Open conversations already at capacity.
    AtCapacity,
    /// Outside their working hours (`PUT /api/agents/{id}/hours`).
    OffHours,
    /// Not a member of the conversation's team.
    NotInTeam,
    /// Another eligible agent was next in the rotation.
    NotNext,
}

/// One agent considered by a routing decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Considered {
    /// Agent.
    pub agent_id: String,
    /// Presence at decision time.
    pub presence: PresenceStatus,
    /// Open conversations at decision time.
    pub open: i64,
    /// The agent's capacity.
    pub capacity: i64,
    /// Why skipped; absent for the chosen agent and for offer recipients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<SkipReason>,
}

/// One stored routing decision (`GET /api/conversations/{id}/routing`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingEventView {
    /// Event id.
    pub id: String,
    /// Conversation.
    pub conversation_id: String,
    /// Team at the time.
    pub team_id: String,
    /// `assigned`, `offered`, `offer_widened`, `offer_alerted`, `claimed`,
    /// `offer_expired`, `queued`, `requeued`, `unassigned`, `transferred`.
    pub kind: String,
    /// The agent the decision chose (assignee, claimer), if any.
    pub agent_id: Option<String>,
    /// Who caused it when a person did (manual assignment, hand-back), else null.
    pub actor_id: Option<String>,
    /// How it was decided: `owner`, `round_robin`, `poll`, `queue`, `manual` …
    pub via: Option<String>,
    /// Every agent considered, with why each was skipped.
    pub candidates: Vec<Considered>,
    /// Human sentence.
    pub note: Option<String>,
    /// When, RFC 3339 UTC.
    pub created_at: String,
}

/// One agent's line in the workload view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentLoad {
    /// Agent.
    pub agent_id: String,
    /// Display name.
    pub name: String,
    /// `agent`, `lead` or `admin`.
    pub role: String,
    /// online, away or offline.
    pub presence: PresenceStatus,
    /// Open conversations assigned (over all teams).
    pub open: i64,
    /// Capacity (the agent's own, else the team default).
    pub capacity: i64,
    /// Offers this agent can claim right now.
    pub offers_open: i64,
    /// Outside their working hours at the snapshot: offered nothing new.
    pub off_hours: bool,
}

/// A waiting conversation in the workload view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// Conversation.
    pub conversation_id: String,
    /// 1-based place (1: next to be assigned).
    pub position: i64,
    /// Waiting since, RFC 3339 UTC.
    pub queued_at: String,
    /// Channel.
    pub channel: String,
}

/// A team's live workload: `GET /api/team/workload` and the `workload` frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamWorkload {
    /// Team.
    pub team_id: String,
    /// Team name.
    pub team_name: String,
    /// `round_robin` or `poll`.
    pub routing_mode: String,
    /// Every active member.
    pub agents: Vec<AgentLoad>,
    /// Conversations waiting in the queue.
    pub waiting: i64,
    /// The longest wait in ms at the time of the snapshot (0 when none wait).
    pub oldest_wait_ms: i64,
    /// Open offers (poll rounds nobody has claimed yet).
    pub offers_open: i64,
    /// The oldest waiting conversations, at most 50, oldest first.
    pub queue: Vec<QueueEntry>,
    /// Snapshot time, RFC 3339 UTC.
    pub at: String,
}
