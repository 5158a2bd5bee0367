//! `AgentActor`: one per agent with at least one session on this node.
//!
//! It owns the agent's sessions (tabs and devices) for delivery and the agent's
//! presence. Presence is derived: online or away (the agent's choice) while any
//! session is attached, offline once the last session has been gone for
//! `presence_grace` — so a page reload, which closes one socket and opens another
//! within a second, never flips an agent offline. Presence changes are pushed to the
//! team leads and admins of the agent's teams.

use actix::prelude::*;

use crate::bus::BusEvent;
use crate::protocol::{PresenceChoice, PresenceStatus, ServerFrame};
use crate::routing::actor::{PresenceChanged, WorkloadWanted};
use crate::state::AppState;
use crate::store::accounts::AgentInfo;

use super::messages::{AttachSession, DeliverToAgent, DetachSession, RevokeSessions, SetPresence};
use super::session::SessionRef;

/// The actor of one connected agent. See the module documentation.
pub struct AgentActor {
    state: AppState,
    info: AgentInfo,
    sessions: Vec<SessionRef>,
    choice: PresenceChoice,
    published: Option<PresenceStatus>,
    grace: Option<SpawnHandle>,
}

impl AgentActor {
    /// An actor for `info`'s agent, starting online.
    pub fn new(state: AppState, info: AgentInfo) -> Self {
        Self {
            state,
            info,
            sessions: Vec::new(),
            choice: PresenceChoice::Online,
            published: None,
            grace: None,
        }
    }

    fn status(&self) -> PresenceStatus {
        if self.sessions.is_empty() && self.grace.is_none() {
            PresenceStatus::Offline
        } else {
            match self.choice {
                PresenceChoice::Online => PresenceStatus::Online,
                PresenceChoice::Away => PresenceStatus::Away,
            }
        }
    }

    /// Pushes the presence to supervisors when it changed since the last push.
    fn publish_presence(&mut self) {
        let status = self.status();
        if self.published == Some(status) {
            return;
        }
        self.published = Some(status);
        self.state.hub.set_presence_status(&self.info.id, status);
        // Other nodes keep a presence cache for their routers (multi-node mode).
        self.state.hub.publish(BusEvent::Presence {
            agent_id: self.info.id.clone(),
            team_ids: self.info.team_ids.clone(),
            status,
        });
        self.state.hub.route(PresenceChanged {
            agent_id: self.info.id.clone(),
            team_ids: self.info.team_ids.clone(),
            status,
        });
        let frame = ServerFrame::Presence {
            agent_id: self.info.id.clone(),
            status,
        }
        .encode();
        for team_id in &self.info.team_ids {
            self.state.hub.publish(BusEvent::Supervisors {
                team_id: team_id.clone(),
                frame: frame.clone(),
            });
        }
        tracing::debug!(agent = %self.info.id, ?status, "presence");
    }
}

impl Actor for AgentActor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        tracing::debug!(agent = %self.info.id, "agent actor started");
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        tracing::debug!(agent = %self.info.id, "agent actor stopped");
    }
}

impl Handler<AttachSession> for AgentActor {
    type Result = ();

    fn handle(&mut self, msg: AttachSession, ctx: &mut Self::Context) {
        if let Some(handle) = self.grace.take() {
            ctx.cancel_future(handle);
        }
        self.info = msg.info;
        if !self.sessions.iter().any(|s| s.id == msg.session.id) {
            self.sessions.push(msg.session);
        }
        self.publish_presence();
        if self.info.role.supervises() {
            // A lead's new tab needs the current workload, not the next change.
            self.state.hub.route(WorkloadWanted {
                team_ids: self.info.team_ids.clone(),
                all_teams: self.info.role.all_teams(),
            });
        }
    }
}

impl Handler<DetachSession> for AgentActor {
    type Result = ();

    fn handle(&mut self, msg: DetachSession, ctx: &mut Self::Context) {
        self.sessions.retain(|s| s.id != msg.session_id);
        if !self.sessions.is_empty() || self.grace.is_some() {
            return;
        }
        let grace = self
            .state
            .hub
            .grace_for(&self.info.team_ids, self.state.config.presence_grace);
        self.grace = Some(ctx.run_later(grace, |act, ctx| {
            act.grace = None;
            if !act.sessions.is_empty() {
                return;
            }
            if act.state.hub.retire_agent(&act.info.id, &ctx.address()) {
                act.publish_presence();
                ctx.stop();
            }
            // Otherwise a session is on its way (attached in the hub, its message
            // still in our mailbox): stay.
        }));
    }
}

impl Handler<RevokeSessions> for AgentActor {
    type Result = ();

    /// Each session detaches itself as it stops, which takes presence to offline
    /// through the usual grace period.
    fn handle(&mut self, msg: RevokeSessions, _: &mut Self::Context) {
        for s in &self.sessions {
            s.close(1008, &msg.reason);
        }
        tracing::info!(agent = %self.info.id, sessions = self.sessions.len(), "agent sessions revoked");
    }
}

impl Handler<SetPresence> for AgentActor {
    type Result = ();

    fn handle(&mut self, msg: SetPresence, _: &mut Self::Context) {
        self.choice = msg.status;
        self.publish_presence();
    }
}

impl Handler<DeliverToAgent> for AgentActor {
    type Result = ();

    fn handle(&mut self, msg: DeliverToAgent, _: &mut Self::Context) {
        for s in &self.sessions {
            if msg.exclude_session.as_ref() != Some(&s.id) {
                s.push(msg.deliver.clone());
            }
        }
    }
}
