//! Multi-node mode: the Redis [`Bus`] and cluster-wide presence.
//!
//! It owns everything a node shares with its peers through Redis (`REDIS_URL`):
//! - **events**: one pub/sub channel, `<prefix>:events`. Every [`BusEvent`] is
//!   delivered to this node's sessions at once and published wrapped in an
//!   [`Envelope`] naming the node; each node ignores its own envelopes, so nothing is
//!   delivered twice and local delivery never depends on Redis.
//! - **presence**: each node writes its agents' presence as one JSON value under
//!   `<prefix>:node:<node id>` with a TTL (`SWITCHBOARD_NODE_TTL`), refreshed every
//!   `SWITCHBOARD_NODE_HEARTBEAT`, and lists itself in the set `<prefix>:nodes`. On
//!   the same tick it reads every other node's value. A node whose key expired is
//!   gone: its agents drop out of the presence cache and each surviving node's router
//!   takes the offline path (requeue after the team's delay). Presence changes also
//!   travel as [`BusEvent::Presence`] so peers learn them without waiting a tick.
//! - **health**: while the subscription is down the node is degraded (`/readyz`),
//!   keeps serving its own sessions, and drops cross-node events instead of queueing
//!   them. When the subscription comes back the node asks its own sessions to catch
//!   up from the database and publishes [`BusEvent::Resync`], which makes every other
//!   node do the same — so events dropped on either side are recovered without the
//!   clients having to notice. (Clients that reconnect `resume` as always.)
//!
//! Why pub/sub and not Streams: the events are notifications about data that is
//! already durable in the database (a message frame is published only after its
//! commit), sessions deduplicate by `seq` and fill gaps from the database, and an
//! outage is healed by the resync above. A stream would add retention, trimming and
//! per-node read positions without strengthening any guarantee.
//!
//! Nothing here runs on an actor: publishing is a non-blocking channel send, and the
//! Redis work happens in three tasks on the starting arbiter (publisher,
//! subscriber, heartbeat).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::actors::messages::Reload;
use crate::bus::{Bus, BusEvent};
use crate::config::ClusterConfig;
use crate::error::AppError;
use crate::hub::Hub;
use crate::protocol::{PresenceStatus, ServerFrame};
use crate::routing::actor::PresenceChanged;

/// Events waiting for the publisher; past this they are dropped (and recovered by a
/// resync), so a stalled Redis never grows memory.
const PUBLISH_QUEUE: usize = 16_384;

/// Timeout of one Redis command or connection attempt: a dead Redis must make the
/// node degraded quickly, not stall its tasks.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest pause between attempts to resubscribe.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What travels on the events channel: an event and the node that published it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// Publishing node's id (receivers skip their own).
    pub node: String,
    /// The event.
    pub event: BusEvent,
}

/// One agent's entry in a node's heartbeat value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RemoteAgent {
    status: PresenceStatus,
    teams: Vec<String>,
}

/// Presence learnt from other nodes: node id → agent id → entry.
#[derive(Default)]
struct View {
    nodes: HashMap<String, HashMap<String, RemoteAgent>>,
}

impl View {
    /// Best status per agent across the other nodes (online beats away), with teams.
    fn merged(&self) -> HashMap<String, RemoteAgent> {
        let mut out: HashMap<String, RemoteAgent> = HashMap::new();
        for agents in self.nodes.values() {
            for (id, a) in agents {
                match out.get(id) {
                    Some(cur) if cur.status == PresenceStatus::Online => {}
                    _ => {
                        out.insert(id.clone(), a.clone());
                    }
                }
            }
        }
        out
    }
}

/// Why the node is degraded, per cause; `None` each when healthy.
#[derive(Default)]
struct Health {
    subscriber: Mutex<Option<String>>,
    heartbeat: Mutex<Option<String>>,
    /// The subscription is live (events may be published).
    subscribed: AtomicBool,
    /// Events were dropped since the last successful publish: publish a resync next.
    missed: AtomicBool,
}

/// The Redis-backed [`Bus`] of a node in multi-node mode. See the module docs.
pub struct RedisBus {
    hub: Weak<Hub>,
    node_id: String,
    config: ClusterConfig,
    client: redis::Client,
    tx: mpsc::Sender<Vec<u8>>,
    rx: Mutex<Option<mpsc::Receiver<Vec<u8>>>>,
    health: Health,
    view: Mutex<View>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds the URL, which may carry a password: never print it.
        f.debug_struct("RedisBus")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl RedisBus {
    /// A bus for `hub` configured by `config` (whose `redis_url` must be set). Does
    /// not connect: call [`RedisBus::spawn`] once the node's router is installed.
    ///
    /// # Errors
    /// [`AppError::Validation`] when `REDIS_URL` is missing or not a Redis URL.
    pub fn new(hub: &Arc<Hub>, config: &ClusterConfig) -> Result<Arc<Self>, AppError> {
        let url = config
            .redis_url
            .as_ref()
            .ok_or_else(|| AppError::Validation("REDIS_URL is not set".into()))?;
        // The parse error text may quote the URL; say only what is wrong.
        let client = redis::Client::open(url.expose())
            .map_err(|e| AppError::Validation(format!("REDIS_URL is invalid ({:?})", e.kind())))?;
        let node_id = config
            .node_id
            .clone()
            .unwrap_or_else(|| format!("node-{}", uuid::Uuid::now_v7().simple()));
        let (tx, rx) = mpsc::channel(PUBLISH_QUEUE);
        let bus = Self {
            hub: Arc::downgrade(hub),
            node_id,
            config: config.clone(),
            client,
            tx,
            rx: Mutex::new(Some(rx)),
            health: Health::default(),
            view: Mutex::new(View::default()),
        };
        *bus.health.subscriber.lock() = Some("redis: not connected yet".into());
        Ok(Arc::new(bus))
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.config.redis_prefix)
    }

    /// Starts the publisher, subscriber and heartbeat tasks on the current arbiter.
    /// Later calls do nothing.
    pub fn spawn(self: &Arc<Self>) {
        let Some(rx) = self.rx.lock().take() else {
            return;
        };
        tracing::info!(node = %self.node_id, prefix = %self.config.redis_prefix, "multi-node mode: Redis bus");
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(MAX_BACKOFF);
        let manager = match ConnectionManager::new_lazy_with_config(
            self.client.clone(),
            manager_config,
        ) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "cannot create the Redis connection manager; staying degraded");
                *self.health.heartbeat.lock() = Some(format!("redis: {}", e.kind_str()));
                return;
            }
        };
        actix_rt::spawn(self.clone().publisher(rx, manager.clone()));
        actix_rt::spawn(self.clone().subscriber());
        actix_rt::spawn(self.clone().heartbeat(manager));
    }

    fn envelope(&self, event: BusEvent) -> Option<Vec<u8>> {
        let env = Envelope {
            node: self.node_id.clone(),
            event,
        };
        match serde_json::to_vec(&env) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a bus event");
                None
            }
        }
    }

    async fn publisher(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Vec<u8>>,
        mut conn: ConnectionManager,
    ) {
        let channel = self.key("events");
        while let Some(bytes) = rx.recv().await {
            let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(bytes)
                .query_async(&mut conn)
                .await;
            match sent {
                Ok(_) => {
                    if self.health.missed.swap(false, Ordering::AcqRel) {
                        if let Some(resync) = self.envelope(BusEvent::Resync) {
                            let again: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                                .arg(&channel)
                                .arg(resync)
                                .query_async(&mut conn)
                                .await;
                            if again.is_err() {
                                self.health.missed.store(true, Ordering::Release);
                            }
                        }
                    }
                }
                Err(e) => {
                    self.health.missed.store(true, Ordering::Release);
                    tracing::warn!(error = %e, "redis publish failed; peers will resync");
                }
            }
        }
    }

    async fn subscriber(self: Arc<Self>) {
        let channel = self.key("events");
        let mut backoff = Duration::from_millis(50);
        let mut first = true;
        loop {
            let connected = tokio::time::timeout(REDIS_TIMEOUT, async {
                let mut pubsub = self.client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            })
            .await;
            let mut pubsub = match connected {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    self.set_subscriber_down(format!("redis: {}", e.kind_str()));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
                Err(_) => {
                    self.set_subscriber_down("redis: connection timed out".into());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_millis(50);
            *self.health.subscriber.lock() = None;
            self.health.subscribed.store(true, Ordering::Release);
            if first {
                tracing::info!(node = %self.node_id, "subscribed to the Redis bus");
            } else {
                tracing::info!(node = %self.node_id, "resubscribed to the Redis bus; resyncing");
                // Whatever was published while we were away is lost to us, and we
                // dropped what we produced: everyone re-reads from the database.
                if let Some(hub) = self.hub.upgrade() {
                    hub.catch_up_all();
                }
                self.health.missed.store(false, Ordering::Release);
                self.enqueue(BusEvent::Resync);
            }
            first = false;
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                self.receive(msg.get_payload_bytes());
            }
            drop(messages);
            self.set_subscriber_down("redis: subscription lost".into());
        }
    }

    fn set_subscriber_down(&self, reason: String) {
        if self.health.subscribed.swap(false, Ordering::AcqRel) {
            tracing::warn!(node = %self.node_id, %reason, "redis bus down; serving local sessions only");
        }
        self.health.missed.store(true, Ordering::Release);
        *self.health.subscriber.lock() = Some(reason);
    }

    fn enqueue(&self, event: BusEvent) {
        let Some(bytes) = self.envelope(event) else {
            return;
        };
        if self.tx.try_send(bytes).is_err() {
            self.health.missed.store(true, Ordering::Release);
        }
    }

    /// Handles one envelope from the channel.
    fn receive(&self, payload: &[u8]) {
        let env: Envelope = match serde_json::from_slice(payload) {
            Ok(env) => env,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable bus envelope ignored");
                return;
            }
        };
        if env.node == self.node_id {
            return;
        }
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        match env.event {
            BusEvent::Presence {
                agent_id,
                team_ids,
                status,
            } => {
                let before = self.view.lock().merged();
                {
                    let mut view = self.view.lock();
                    let agents = view.nodes.entry(env.node).or_default();
                    if status == PresenceStatus::Offline {
                        agents.remove(&agent_id);
                    } else {
                        agents.insert(
                            agent_id,
                            RemoteAgent {
                                status,
                                teams: team_ids,
                            },
                        );
                    }
                }
                self.apply_view(&hub, before, false);
            }
            BusEvent::ConversationChanged {
                conversation_id,
                team_id,
                assignee_id,
                status,
            } => {
                hub.reload_conversation(
                    &conversation_id,
                    Reload {
                        team_id,
                        assignee_id,
                        status,
                    },
                );
            }
            BusEvent::Resync => {
                // What this node missed may include a number change.
                hub.numbers_changed();
                hub.catch_up_all();
            }
            other => hub.deliver_local(&other),
        }
    }

    /// Publishes the merged remote presence to the hub and tells the router about
    /// every agent whose cluster-wide presence changed. `announce` also pushes a
    /// `presence` frame to this node's supervisors (for agents lost with their node,
    /// whose own node can no longer say so).
    fn apply_view(&self, hub: &Hub, before: HashMap<String, RemoteAgent>, announce: bool) {
        let after = self.view.lock().merged();
        hub.set_remote_presence(after.iter().map(|(id, a)| (id.clone(), a.status)).collect());
        let effective = |remote: Option<&RemoteAgent>, id: &str| {
            let local = hub.local_presence(id);
            match (remote.map(|r| r.status), local) {
                (Some(PresenceStatus::Online), _) | (_, Some(PresenceStatus::Online)) => {
                    PresenceStatus::Online
                }
                (Some(PresenceStatus::Away), _) | (_, Some(PresenceStatus::Away)) => {
                    PresenceStatus::Away
                }
                _ => PresenceStatus::Offline,
            }
        };
        let mut ids: Vec<&String> = before.keys().chain(after.keys()).collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let old = effective(before.get(id), id);
            let new = effective(after.get(id), id);
            if old == new {
                continue;
            }
            let team_ids = after
                .get(id)
                .or_else(|| before.get(id))
                .map(|a| a.teams.clone())
                .unwrap_or_default();
            tracing::debug!(agent = %id, ?old, ?new, "cluster presence changed");
            if announce && new == PresenceStatus::Offline {
                let frame = ServerFrame::Presence {
                    agent_id: id.clone(),
                    status: new,
                }
                .encode();
                for team_id in &team_ids {
                    hub.deliver_local(&BusEvent::Supervisors {
                        team_id: team_id.clone(),
                        frame: frame.clone(),
                    });
                }
            }
            hub.route(PresenceChanged {
                agent_id: id.clone(),
                team_ids,
                status: new,
            });
        }
    }

    async fn heartbeat(self: Arc<Self>, mut conn: ConnectionManager) {
        let mut every = tokio::time::interval(self.config.node_heartbeat);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(hub) = self.hub.upgrade() else {
                return;
            };
            match self.beat(&hub, &mut conn).await {
                Ok(nodes) => {
                    *self.health.heartbeat.lock() = None;
                    let before = self.view.lock().merged();
                    self.view.lock().nodes = nodes;
                    self.apply_view(&hub, before, true);
                }
                Err(e) => {
                    // Keep the last known view: marking every remote agent offline
                    // because Redis blinked would requeue their conversations.
                    let reason = format!("redis: {}", e.kind_str());
                    let mut slot = self.health.heartbeat.lock();
                    if slot.is_none() {
                        tracing::warn!(node = %self.node_id, %reason, "redis heartbeat failed");
                    }
                    *slot = Some(reason);
                }
            }
        }
    }

    /// Writes this node's heartbeat and presence, then reads every other live node's.
    async fn beat(
        &self,
        hub: &Hub,
        conn: &mut ConnectionManager,
    ) -> redis::RedisResult<HashMap<String, HashMap<String, RemoteAgent>>> {
        let mine: HashMap<String, RemoteAgent> = hub
            .local_presence_entries()
            .into_iter()
            .map(|(id, status, teams)| (id, RemoteAgent { status, teams }))
            .collect();
        let value = serde_json::to_string(&mine).unwrap_or_else(|_| "{}".into());
        let nodes_key = self.key("nodes");
        let ttl_ms = u64::try_from(self.config.node_ttl.as_millis()).unwrap_or(u64::MAX);
        let (members,): (Vec<String>,) = redis::pipe()
            .cmd("SET")
            .arg(self.key(&format!("node:{}", self.node_id)))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms)
            .ignore()
            .cmd("SADD")
            .arg(&nodes_key)
            .arg(&self.node_id)
            .ignore()
            .cmd("SMEMBERS")
            .arg(&nodes_key)
            .query_async(conn)
            .await?;
        let others: Vec<String> = members.into_iter().filter(|n| *n != self.node_id).collect();
        let mut out = HashMap::new();
        if others.is_empty() {
            return Ok(out);
        }
        let keys: Vec<String> = others
            .iter()
            .map(|n| self.key(&format!("node:{n}")))
            .collect();
        let values: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(conn).await?;
        let mut gone = Vec::new();
        for (node, value) in others.into_iter().zip(values) {
            match value {
                Some(v) => {
                    let agents: HashMap<String, RemoteAgent> =
                        serde_json::from_str(&v).unwrap_or_default();
                    out.insert(node, agents);
                }
                None => gone.push(node),
            }
        }
        if !gone.is_empty() {
            // Expired heartbeat: the node is gone; forget it (a restarted node
            // re-adds itself).
            let _: redis::RedisResult<i64> = redis::cmd("SREM")
                .arg(&nodes_key)
                .arg(&gone)
                .query_async(conn)
                .await;
        }
        Ok(out)
    }
}

impl Bus for RedisBus {
    fn publish(&self, event: BusEvent) {
        if let Some(hub) = self.hub.upgrade() {
            hub.deliver_local(&event);
        }
        if !self.health.subscribed.load(Ordering::Acquire) {
            // Degraded: drop instead of queueing; the resync on recovery makes every
            // node re-read what its sessions lack.
            self.health.missed.store(true, Ordering::Release);
            return;
        }
        self.enqueue(event);
    }

    fn degraded(&self) -> Option<String> {
        self.health
            .subscriber
            .lock()
            .clone()
            .or_else(|| self.health.heartbeat.lock().clone())
    }
}

/// `RedisError::kind` as a short text without the error's details (which may
/// quote the connection URL).
trait KindStr {
    fn kind_str(&self) -> String;
}

impl KindStr for redis::RedisError {
    fn kind_str(&self) -> String {
        if self.is_timeout() {
            "timed out".into()
        } else if self.is_connection_refusal() {
            "connection refused".into()
        } else if self.is_io_error() || self.is_connection_dropped() {
            "connection lost".into()
        } else {
            format!("{:?}", self.kind())
        }
    }
}
