//! The event bus: how an event produced on one node reaches sessions on every node.
//!
//! Producers (conversation and agent actors) publish [`BusEvent`]s; each node's
//! [`crate::hub::Hub`] delivers the events it receives to its own sessions. The
//! single-node default is [`LocalBus`], which hands events straight to the local hub.
//! A Redis implementation of the same trait carries them between nodes (multi-node
//! mode). Events carry the already-encoded frame, so a message is serialised once
//! however many sessions receive it.

use std::sync::{Arc, Weak};

use bytestring::ByteString;
use serde::{Deserialize, Serialize};

use crate::hub::Hub;

/// Which sessions of a conversation get an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Guests of the conversation, the assignee (or, while unassigned, the whole
    /// team), the team's leads, admins, and watching agents.
    Participants,
    /// The same without guests.
    Agents,
    /// Every agent of the team, leads, admins and watchers, assigned or not
    /// (for changes every inbox list must show, such as a new assignee).
    Team,
    /// Only the contact's own sessions (its place in the queue).
    Contact,
}

/// An event to deliver.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusEvent {
    /// Something that happened in a conversation.
    Conversation {
        /// Conversation id.
        conversation_id: Arc<str>,
        /// Its team (decides which agents see it).
        team_id: String,
        /// Its assignee after the event.
        assignee_id: Option<String>,
        /// Seq of the message, for `message` frames.
        seq: Option<i64>,
        /// The encoded frame.
        frame: ByteString,
        /// Who gets it.
        audience: Audience,
        /// A session that must not get it (its origin).
        exclude_session: Option<Arc<str>>,
    },
    /// A frame for every session of one agent.
    Agent {
        /// Agent id.
        agent_id: String,
        /// The encoded frame.
        frame: ByteString,
    },
    /// A frame for the leads of a team and for admins (presence, workload).
    Supervisors {
        /// Team id.
        team_id: String,
        /// The encoded frame.
        frame: ByteString,
    },
    /// An agent's presence changed on the publishing node (multi-node bookkeeping:
    /// other nodes update their presence cache and route; no frame of its own — the
    /// `presence` frame travels as [`BusEvent::Supervisors`]).
    Presence {
        /// Agent id.
        agent_id: String,
        /// The agent's teams (other nodes do not know the agent otherwise).
        team_ids: Vec<String>,
        /// Its presence on the publishing node.
        status: crate::protocol::PresenceStatus,
    },
    /// A conversation's routing facts (assignee, team, status) changed in the
    /// database: other nodes' actors of that conversation adopt them, so their
    /// fan-out reaches the right agents. Carried in the event (rather than re-read)
    /// so a node applies it before any later event of the same publisher. No frame.
    ConversationChanged {
        /// Conversation id.
        conversation_id: String,
        /// Team after the change.
        team_id: String,
        /// Assignee after the change.
        assignee_id: Option<String>,
        /// Status after the change.
        status: crate::model::ConversationStatus,
    },
    /// An agent's access was taken away (deactivated, role changed, removed from a
    /// team, password changed): every node closes that agent's sessions and refuses
    /// sessions authenticated under an earlier token epoch. No frame.
    AgentRevoked {
        /// Agent id.
        agent_id: String,
        /// The agent's token epoch after the change; sessions from below it close.
        epoch: i64,
    },
    /// A WhatsApp number was added, changed or deactivated: every node drops its
    /// cached, decrypted copy of the numbers (`store::numbers::cache`). No frame.
    NumbersChanged,
    /// The publishing node may have missed or dropped cross-node events (its Redis
    /// link was down): every node has its sessions re-read what they may lack from
    /// the database. No frame.
    Resync,
}

/// Carries events to every node's hub.
pub trait Bus: Send + Sync + 'static {
    /// Publishes an event. Never blocks and never fails loudly: a bus that cannot
    /// reach its peers still delivers locally and reports itself degraded, and clients
    /// recover anything they missed with `resume`.
    fn publish(&self, event: BusEvent);

    /// `None` when healthy, else why not (shown by `/readyz`).
    fn degraded(&self) -> Option<String> {
        None
    }
}

/// The single-node bus: delivers to this process's hub directly.
#[derive(Debug)]
pub struct LocalBus {
    hub: Weak<Hub>,
}

impl LocalBus {
    /// A bus delivering to `hub`.
    pub fn new(hub: &Arc<Hub>) -> Self {
        Self {
            hub: Arc::downgrade(hub),
        }
    }
}

impl Bus for LocalBus {
    fn publish(&self, event: BusEvent) {
        if let Some(hub) = self.hub.upgrade() {
            hub.deliver_local(&event);
        }
    }
}
