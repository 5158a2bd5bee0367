//! The node-local hub: registries of live actors and the fan-out of bus events to
//! this node's sessions.
//!
//! It owns three indexes, each guarded for concurrent use from every worker thread:
//! - conversation id → running [`ConversationActor`] (started on demand, removed by
//!   the actor itself when it idles out);
//! - the agent directory: agent id → [`AgentActor`], the agent's role and teams, and
//!   how many of its sessions are attached, indexed by team for fan-out;
//! - conversation id → sessions watching it (guests of the conversation, and agents
//!   that resumed it).
//!
//! Fan-out rules (`docs/protocol.md`, "Who receives what") live in
//! [`Hub::deliver_local`]. The hub is a plain shared structure rather than an actor
//! so that fan-out does not funnel every message of the node through one mailbox.

use crate::access::Permission;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::prelude::*;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use parking_lot::RwLock;

use crate::actors::agent::AgentActor;
use crate::actors::conversation::ConversationActor;
use crate::actors::messages::{
    AttachSession, CatchUp, CloseSession, Deliver, DeliverToAgent, DetachSession, Reload,
    RevokeSessions, SetPresence,
};
use crate::actors::session::SessionRef;
use crate::bus::{Audience, Bus, BusEvent};
use crate::error::AppError;
use crate::protocol::{PresenceChoice, PresenceStatus};
use crate::routing::actor::Router;
use crate::state::AppState;
use crate::store::accounts::AgentInfo;
use crate::store::conversations;

struct LocalAgent {
    addr: Addr<AgentActor>,
    info: AgentInfo,
    /// Sessions attached and not yet detached; the actor may only retire at zero.
    sessions: usize,
}

#[derive(Default)]
struct Directory {
    agents: HashMap<Arc<str>, LocalAgent>,
    /// team id → local agents of that team.
    by_team: HashMap<String, Vec<Arc<str>>>,
    /// Local admins (they see every team).
    admins: Vec<Arc<str>>,
}

impl Directory {
    fn index(&mut self, id: &Arc<str>, info: &AgentInfo) {
        for team in &info.team_ids {
            let list = self.by_team.entry(team.clone()).or_default();
            if !list.contains(id) {
                list.push(id.clone());
            }
        }
        if info.role.all_teams() && !self.admins.contains(id) {
            self.admins.push(id.clone());
        }
    }

    fn unindex(&mut self, id: &str) {
        self.by_team.retain(|_, list| {
            list.retain(|a| &**a != id);
            !list.is_empty()
        });
        self.admins.retain(|a| &**a != id);
    }
}

/// Node-local registries and fan-out. Shared as `Arc<Hub>` by every actor and handler.
#[derive(Default)]
pub struct Hub {
    conversations: DashMap<Arc<str>, Addr<ConversationActor>>,
    directory: RwLock<Directory>,
    watchers: DashMap<Arc<str>, Vec<SessionRef>>,
    sessions: DashMap<Arc<str>, Recipient<CloseSession>>,
    bus: OnceLock<Arc<dyn Bus>>,
    router: OnceLock<Addr<Router>>,
    /// Published presence of agents connected to this node (absent: offline).
    presence: DashMap<String, PresenceStatus>,
    /// team id → its offline grace, when the team sets one.
    team_grace: DashMap<String, Duration>,
    /// Presence of agents connected to other nodes (multi-node mode; kept by
    /// [`crate::cluster`]). Merged with `presence` by [`Hub::presence_snapshot`].
    remote_presence: RwLock<HashMap<String, PresenceStatus>>,
    /// Live sessions that can be asked to re-read what they may have missed.
    catch_up: DashMap<Arc<str>, Recipient<CatchUp>>,
    /// agent id → the lowest token epoch a session may still attach with, learnt from
    /// [`BusEvent::AgentRevoked`] (closes the gap between a session's database read
    /// and its attach).
    revoked: DashMap<String, i64>,
    /// Bumped whenever a WhatsApp number changes on any node
    /// ([`BusEvent::NumbersChanged`], or a resync): the per-node cache of decrypted
    /// numbers (`store::numbers::cache`) reloads when it sees a new value.
    numbers_generation: AtomicU64,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("conversations", &self.conversations.len())
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// An empty hub; install its bus with [`Hub::set_bus`] before use.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The generation of the WhatsApp numbers as this node knows it: a cache built
    /// under an older value is stale.
    pub fn numbers_generation(&self) -> u64 {
        self.numbers_generation.load(Ordering::Acquire)
    }

    /// Marks every cached copy of the WhatsApp numbers on this node as stale.
    pub fn numbers_changed(&self) {
        self.numbers_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Installs the bus (once; later calls are ignored).
    pub fn set_bus(&self, bus: Arc<dyn Bus>) {
        let _ = self.bus.set(bus);
    }

    /// Installs the node's router (once; later calls are ignored).
    pub fn set_router(&self, router: Addr<Router>) {
        let _ = self.router.set(router);
    }

    /// Sends a trigger to the node's router (dropped before the router starts,
    /// which only happens while the node itself is starting).
    pub fn route<M>(&self, msg: M)
    where
        M: Message<Result = ()> + Send + 'static,
        Router: Handler<M>,
    {
        if let Some(router) = self.router.get() {
            router.do_send(msg);
        }
    }

    /// Records an agent's presence as published by its actor.
    pub fn set_presence_status(&self, agent_id: &str, status: PresenceStatus) {
        if status == PresenceStatus::Offline {
            self.presence.remove(agent_id);
        } else {
            self.presence.insert(agent_id.to_string(), status);
        }
    }

    /// Presence of every agent not offline, for a routing decision: this node's
    /// agents and, in multi-node mode, every other node's (an agent connected to
    /// several nodes counts as online if it is online on any).
    pub fn presence_snapshot(&self) -> HashMap<String, PresenceStatus> {
        let mut all = self.remote_presence.read().clone();
        for e in self.presence.iter() {
            let merged = match (all.get(e.key()), *e.value()) {
                (Some(PresenceStatus::Online), _) => PresenceStatus::Online,
                (_, local) => local,
            };
            all.insert(e.key().clone(), merged);
        }
        all
    }

    /// This node's own agents' presence, from its own sessions only.
    pub fn local_presence(&self, agent_id: &str) -> Option<PresenceStatus> {
        self.presence.get(agent_id).map(|s| *s)
    }

    /// This node's agents that are not offline, with their status and teams (what a
    /// node advertises in its Redis heartbeat).
    pub fn local_presence_entries(&self) -> Vec<(String, PresenceStatus, Vec<String>)> {
        let dir = self.directory.read();
        self.presence
            .iter()
            .map(|e| {
                let teams = dir
                    .agents
                    .get(e.key().as_str())
                    .map(|a| a.info.team_ids.clone())
                    .unwrap_or_default();
                (e.key().clone(), *e.value(), teams)
            })
            .collect()
    }

    /// Replaces the presence of agents on other nodes (multi-node mode).
    pub fn set_remote_presence(&self, remote: HashMap<String, PresenceStatus>) {
        *self.remote_presence.write() = remote;
    }

    /// Asks every live session to re-read, from the database, the messages it may
    /// have missed (after the node's link to the other nodes came back).
    pub fn catch_up_all(&self) {
        for s in self.catch_up.iter() {
            s.value().do_send(CatchUp);
        }
    }

    /// Hands this node's actor of a conversation, if it runs here, routing facts
    /// changed by another node.
    pub fn reload_conversation(&self, conversation_id: &str, facts: Reload) {
        if let Some(addr) = self.conversations.get(conversation_id) {
            addr.do_send(facts);
        }
    }

    /// Records a session that can be asked to catch up (see [`Hub::catch_up_all`]).
    pub fn register_catch_up(&self, id: Arc<str>, catch_up: Recipient<CatchUp>) {
        self.catch_up.insert(id, catch_up);
    }

    /// Sets (or, with `None`, clears) a team's offline grace.
    pub fn set_team_grace(&self, team_id: &str, grace: Option<Duration>) {
        match grace {
            Some(g) => {
                self.team_grace.insert(team_id.to_string(), g);
            }
            None => {
                self.team_grace.remove(team_id);
            }
        }
    }

    /// The offline grace for an agent of `team_ids`: the longest any of its teams
    /// sets (the most forgiving), else `default`.
    pub fn grace_for(&self, team_ids: &[String], default: Duration) -> Duration {
        team_ids
            .iter()
            .filter_map(|t| self.team_grace.get(t).map(|g| *g))
            .max()
            .unwrap_or(default)
    }

    /// Why the bus is degraded, if it is.
    pub fn bus_degraded(&self) -> Option<String> {
        self.bus.get().and_then(|b| b.degraded())
    }

    /// Publishes an event to every node (this one included).
    pub fn publish(&self, event: BusEvent) {
        match self.bus.get() {
            Some(bus) => bus.publish(event),
            None => self.deliver_local(&event),
        }
    }

    /// Delivers an event to this node's sessions, following the fan-out rules.
    pub fn deliver_local(&self, event: &BusEvent) {
        match event {
            BusEvent::Conversation {
                conversation_id,
                team_id,
                assignee_id,
                seq,
                frame,
                audience,
                exclude_session,
            } => {
                let deliver = Deliver {
                    frame: frame.clone(),
                    conversation_id: Some(conversation_id.clone()),
                    seq: *seq,
                };
                if *audience == Audience::Contact {
                    if let Some(watchers) = self.watchers.get(conversation_id) {
                        for s in watchers.iter().filter(|s| s.is_guest) {
                            s.push(deliver.clone());
                        }
                    }
                    return;
                }
                let dir = self.directory.read();
                let mut agents: Vec<&Arc<str>> = Vec::new();
                let team = dir.by_team.get(team_id.as_str());
                let whole_team = *audience == Audience::Team || assignee_id.is_none();
                for id in team.into_iter().flatten() {
                    let Some(role) = dir.agents.get(id).map(|a| a.info.role) else {
                        continue;
                    };
                    // A team member whose role reads no conversations (marketing)
                    // gets none of their events.
                    if !role.can(Permission::ConversationsReadTeam) {
                        continue;
                    }
                    let supervises = role.supervises();
                    if whole_team || supervises || assignee_id.as_deref() == Some(&**id) {
                        agents.push(id);
                    }
                }
                for id in &dir.admins {
                    if !agents.contains(&id) {
                        agents.push(id);
                    }
                }
                for id in &agents {
                    if let Some(agent) = dir.agents.get(*id) {
                        agent.addr.do_send(DeliverToAgent {
                            deliver: deliver.clone(),
                            exclude_session: exclude_session.clone(),
                        });
                    }
                }
                if let Some(watchers) = self.watchers.get(conversation_id) {
                    for s in watchers.iter() {
                        if s.is_guest && *audience != Audience::Participants {
                            continue;
                        }
                        if exclude_session.as_ref() == Some(&s.id) {
                            continue;
                        }
                        if let Some(agent) = &s.agent_id {
                            if agents.contains(&agent) {
                                continue;
                            }
                        }
                        s.push(deliver.clone());
                    }
                }
            }
            BusEvent::Agent { agent_id, frame } => {
                let dir = self.directory.read();
                if let Some(agent) = dir.agents.get(agent_id.as_str()) {
                    agent.addr.do_send(DeliverToAgent {
                        deliver: Deliver {
                            frame: frame.clone(),
                            conversation_id: None,
                            seq: None,
                        },
                        exclude_session: None,
                    });
                }
            }
            BusEvent::Supervisors { team_id, frame } => {
                let dir = self.directory.read();
                let deliver = Deliver {
                    frame: frame.clone(),
                    conversation_id: None,
                    seq: None,
                };
                let mut sent: Vec<&Arc<str>> = Vec::new();
                let team = dir.by_team.get(team_id.as_str()).into_iter().flatten();
                for id in team.chain(dir.admins.iter()) {
                    let Some(agent) = dir.agents.get(id) else {
                        continue;
                    };
                    if agent.info.role.supervises() && !sent.contains(&id) {
                        sent.push(id);
                        agent.addr.do_send(DeliverToAgent {
                            deliver: deliver.clone(),
                            exclude_session: None,
                        });
                    }
                }
            }
            BusEvent::AgentRevoked { agent_id, epoch } => self.revoke_agent(agent_id, *epoch),
            BusEvent::NumbersChanged => self.numbers_changed(),
            // Bookkeeping between nodes, handled by `crate::cluster`; nothing to
            // deliver to sessions.
            BusEvent::Presence { .. } | BusEvent::ConversationChanged { .. } | BusEvent::Resync => {
            }
        }
    }

    /// Starts delivering a conversation's events to `session`.
    pub fn watch(&self, conversation_id: Arc<str>, session: SessionRef) {
        let mut list = self.watchers.entry(conversation_id).or_default();
        if !list.iter().any(|s| s.id == session.id) {
            list.push(session);
        }
    }

    /// Stops delivering a conversation's events to the session `session_id`.
    pub fn unwatch(&self, conversation_id: &str, session_id: &str) {
        if let Entry::Occupied(mut e) = self.watchers.entry(Arc::from(conversation_id)) {
            e.get_mut().retain(|s| &*s.id != session_id);
            if e.get().is_empty() {
                e.remove();
            }
        }
    }

    /// Records a live session so shutdown can reach it.
    pub fn register_session(&self, id: Arc<str>, close: Recipient<CloseSession>) {
        self.sessions.insert(id, close);
    }

    /// Forgets a closed session.
    pub fn unregister_session(&self, id: &str) {
        self.sessions.remove(id);
        self.catch_up.remove(id);
    }

    /// Live sessions on this node.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Asks every session to close with `code` (graceful shutdown: 1012, "reconnect").
    pub fn close_all_sessions(&self, code: u16, reason: &str) {
        for s in self.sessions.iter() {
            s.value().do_send(CloseSession {
                code,
                reason: reason.to_string(),
            });
        }
    }

    /// Closes every session of `agent_id` on this node and stops fanning out to it;
    /// sessions authenticated under an epoch below `epoch` may not attach any more.
    pub fn revoke_agent(&self, agent_id: &str, epoch: i64) {
        self.revoked
            .entry(agent_id.to_string())
            .and_modify(|e| *e = (*e).max(epoch))
            .or_insert(epoch);
        {
            let mut dir = self.directory.write();
            dir.unindex(agent_id);
            if let Some(entry) = dir.agents.get(agent_id) {
                entry.addr.do_send(RevokeSessions {
                    reason: crate::actors::session::REVOKED_REASON.to_string(),
                });
            }
        }
        // Conversations the agent opened outside its inbox (watching).
        for mut list in self.watchers.iter_mut() {
            list.retain(|s| s.agent_id.as_deref() != Some(agent_id));
        }
    }

    /// Attaches an agent session, starting the agent's actor when it has none here.
    /// `info` is fresh from the database and replaces what the directory held.
    /// Returns `false` (and attaches nothing) when the agent was revoked after `info`
    /// was read: the session must close.
    #[must_use]
    pub fn attach_agent_session(
        &self,
        state: &AppState,
        info: AgentInfo,
        session: SessionRef,
    ) -> bool {
        if self
            .revoked
            .get(info.id.as_str())
            .is_some_and(|min| info.token_epoch < *min)
        {
            return false;
        }
        let mut dir = self.directory.write();
        let id: Arc<str> = Arc::from(info.id.as_str());
        let addr = match dir.agents.get_mut(&id) {
            Some(entry) if entry.addr.connected() => {
                entry.sessions += 1;
                entry.info = info.clone();
                entry.addr.clone()
            }
            _ => {
                let addr = AgentActor::new(state.clone(), info.clone()).start();
                dir.agents.insert(
                    id.clone(),
                    LocalAgent {
                        addr: addr.clone(),
                        info: info.clone(),
                        sessions: 1,
                    },
                );
                addr
            }
        };
        dir.unindex(&id);
        dir.index(&id, &info);
        addr.do_send(AttachSession { session, info });
        true
    }

    /// Detaches an agent session; the agent's actor decides about presence.
    pub fn detach_agent_session(&self, agent_id: &str, session_id: Arc<str>) {
        let mut dir = self.directory.write();
        if let Some(entry) = dir.agents.get_mut(agent_id) {
            entry.sessions = entry.sessions.saturating_sub(1);
            entry.addr.do_send(DetachSession { session_id });
        }
    }

    /// Called by an agent actor whose grace period ran out: removes it from the
    /// directory unless a session attached in the meantime. Returns whether it was
    /// removed (and so may stop).
    pub fn retire_agent(&self, agent_id: &str, addr: &Addr<AgentActor>) -> bool {
        let mut dir = self.directory.write();
        match dir.agents.get(agent_id) {
            Some(entry) if entry.addr == *addr && entry.sessions == 0 => {
                dir.agents.remove(agent_id);
                dir.unindex(agent_id);
                true
            }
            Some(entry) if entry.addr == *addr => false,
            // Not ours any more (replaced) or already gone: stop.
            _ => true,
        }
    }

    /// Forwards an agent's presence choice to its actor.
    pub fn set_presence(&self, agent_id: &str, status: PresenceChoice) {
        if let Some(entry) = self.directory.read().agents.get(agent_id) {
            entry.addr.do_send(SetPresence { status });
        }
    }

    /// The running actor of a conversation, started (after loading its routing facts)
    /// when there is none.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for an unknown conversation; [`AppError::Unavailable`]
    /// when the database is down.
    pub async fn conversation(
        &self,
        state: &AppState,
        id: &str,
    ) -> Result<Addr<ConversationActor>, AppError> {
        if let Some(addr) = self.conversations.get(id).map(|a| a.clone()) {
            if addr.connected() {
                return Ok(addr);
            }
        }
        let owned = id.to_string();
        let meta = state
            .db
            .run(move |c| conversations::meta(c, &owned))
            .await?;
        let key: Arc<str> = Arc::from(id);
        let addr = match self.conversations.entry(key.clone()) {
            Entry::Occupied(e) if e.get().connected() => e.get().clone(),
            Entry::Occupied(mut e) => {
                let addr = ConversationActor::new(state.clone(), key, meta).start();
                e.insert(addr.clone());
                addr
            }
            Entry::Vacant(v) => {
                let addr = ConversationActor::new(state.clone(), key, meta).start();
                v.insert(addr.clone());
                addr
            }
        };
        Ok(addr)
    }

    /// Sends `msg` to a conversation's actor, starting it if needed. If the actor
    /// stopped between lookup and delivery (it idled out), a fresh one gets it.
    ///
    /// # Errors
    /// As [`Hub::conversation`], plus [`AppError::Unavailable`] if no actor answers.
    pub async fn ask<M>(&self, state: &AppState, id: &str, msg: M) -> Result<M::Result, AppError>
    where
        M: Message + Send + Clone + 'static,
        M::Result: Send,
        ConversationActor: Handler<M>,
    {
        let addr = self.conversation(state, id).await?;
        match addr.send(msg.clone()).await {
            Ok(result) => Ok(result),
            Err(MailboxError::Closed) => {
                self.retire_conversation(id, &addr);
                let addr = self.conversation(state, id).await?;
                Ok(addr.send(msg).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a conversation actor from the registry if `addr` is still the one
    /// registered (called by the actor when it idles out).
    pub fn retire_conversation(&self, id: &str, addr: &Addr<ConversationActor>) {
        self.conversations
            .remove_if(id, |_, current| current == addr);
    }

    /// Running conversation actors on this node.
    pub fn conversation_count(&self) -> usize {
        self.conversations.len()
    }
}
