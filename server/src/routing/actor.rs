//! The `Router` actor: one per node, for every team. It turns routing triggers
//! (a contact wrote in an unassigned conversation, an agent came online or went
//! offline, capacity freed, an offer round ended) into [`engine`](super::engine)
//! decisions on the blocking pool, and their [`Effect`]s into frames, conversation
//! refreshes and timers. It never blocks: each decision runs as a spawned future and
//! the database serialises decisions per team (see the engine's documentation), so
//! several nodes' routers can act at once.
//!
//! Timers: one per open offer (its round's end) and one per agent gone offline (the
//! requeue delay). Offer timers are re-armed from the database at start, so a
//! restart does not leave offers open forever; a stale timer is harmless because the
//! engine checks the round it was armed for.
//!
//! Workload: every effect and presence change marks its team dirty; dirty teams'
//! workloads are recomputed and pushed to team leads at most every
//! [`WORKLOAD_DEBOUNCE`].

use crate::metrics::{gauge_value, METRICS};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::actors::messages::Refresh;
use crate::bus::{Audience, BusEvent};
use crate::clock::now_ms;
use crate::error::AppError;
use crate::protocol::{PresenceStatus, ServerFrame};
use crate::state::AppState;
use crate::store::agent_hours;

use super::engine::{self, Effect};
use super::settings;

/// Longest a team lead waits for a workload change to be pushed.
pub const WORKLOAD_DEBOUNCE: Duration = Duration::from_millis(200);

/// How often queues are drained for agents whose working hours may have begun: a
/// shift that starts by the clock is no event, so without this a waiting lead would
/// wait for the next trigger (`docs/routing.md`, "Working hours"). The period of the
/// scheduler's recurring `routing.hours_tick` job (`crate::scheduler`).
pub const HOURS_TICK: Duration = Duration::from_secs(60);

/// The working-hours tick: drain every team that has agents with working hours
/// and a waiting queue. Sent by the scheduler's recurring job, on whichever node
/// claimed it; draining is idempotent (a queue already served stays served).
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct HoursTick;

/// A contact wrote in a conversation that may need an agent (or reopened it).
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct RouteConversation {
    /// Conversation.
    pub conversation_id: String,
    /// True when this message reopened a resolved conversation.
    pub reopened: bool,
}

/// An agent's presence changed on this node.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct PresenceChanged {
    /// Agent.
    pub agent_id: String,
    /// Its teams.
    pub team_ids: Vec<String>,
    /// New presence.
    pub status: PresenceStatus,
}

/// Capacity may have appeared in a team (a conversation resolved or unassigned,
/// settings changed): assign waiting conversations.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct Drain {
    /// Team.
    pub team_id: String,
}

/// A conversation stopped being open (resolved or pending).
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct ConversationClosed {
    /// Conversation.
    pub conversation_id: String,
    /// Its team.
    pub team_id: String,
}

/// Effects decided elsewhere (a claim, a manual assignment) to announce.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct ApplyEffects {
    /// What changed.
    pub effects: Vec<Effect>,
}

/// A team lead connected: push the current workload of these teams.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct WorkloadWanted {
    /// Teams.
    pub team_ids: Vec<String>,
    /// Every team (an admin connected).
    pub all_teams: bool,
}

/// Team settings changed: refresh cached grace periods and drain.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct SettingsChanged {
    /// Team.
    pub team_id: String,
}

/// Customer-message triggers waiting for their turn, oldest first, at most one per
/// conversation: a waiting trigger decides on the database's state when its turn
/// comes, which includes every later message. So a burst in one conversation costs
/// one decision, and when the database falls behind the queue is bounded by the
/// number of conversations, not of messages.
#[derive(Debug, Default)]
struct Arrivals {
    order: VecDeque<RouteConversation>,
    waiting: HashSet<String>,
}

impl Arrivals {
    /// Queues `msg` unless its conversation is already waiting; a reopen upgrades the
    /// waiting trigger (a reopen decides more than a plain route).
    fn push(&mut self, msg: RouteConversation) {
        if self.waiting.insert(msg.conversation_id.clone()) {
            self.order.push_back(msg);
            METRICS.routing_queue.set(gauge_value(self.order.len()));
        } else if msg.reopened {
            if let Some(waiting) = self
                .order
                .iter_mut()
                .find(|a| a.conversation_id == msg.conversation_id)
            {
                waiting.reopened = true;
            }
        }
    }

    /// The oldest waiting trigger.
    fn pop(&mut self) -> Option<RouteConversation> {
        let msg = self.order.pop_front()?;
        self.waiting.remove(&msg.conversation_id);
        METRICS.routing_queue.set(gauge_value(self.order.len()));
        Some(msg)
    }
}

/// The router of one node. See the module documentation.
pub struct Router {
    state: AppState,
    offer_timers: HashMap<String, SpawnHandle>,
    requeue_timers: HashMap<String, SpawnHandle>,
    dirty: HashSet<String>,
    flush_pending: bool,
    /// Customer-message triggers waiting for their turn.
    arrivals: Arrivals,
    /// An arrival is being decided.
    arrival_busy: bool,
}

impl Router {
    /// A router over `state`.
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            offer_timers: HashMap::new(),
            requeue_timers: HashMap::new(),
            dirty: HashSet::new(),
            flush_pending: false,
            arrivals: Arrivals::default(),
            arrival_busy: false,
        }
    }

    /// Decides the next waiting arrival, if none is being decided. Arrivals are
    /// decided one at a time, in the order their messages were committed on this
    /// node: run side by side on the blocking pool, a later lead could take the
    /// team lock first and the free place before an earlier one.
    fn next_arrival(&mut self, ctx: &mut Context<Self>) {
        if self.arrival_busy {
            return;
        }
        let Some(msg) = self.arrivals.pop() else {
            return;
        };
        self.arrival_busy = true;
        let id = msg.conversation_id;
        let state = self.state.clone();
        let presence = state.hub.presence_snapshot();
        let reopened = msg.reopened;
        let fut = async move {
            state
                .db
                .run(move |c| {
                    if reopened {
                        engine::reopened(c, &id, &presence, now_ms())
                    } else {
                        engine::route(c, &id, &presence, now_ms())
                    }
                })
                .await
        };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            match res {
                Ok(effects) => act.apply(effects, ctx),
                Err(e) => tracing::warn!(error = %e, reopened, "routing decision failed"),
            }
            act.arrival_busy = false;
            act.next_arrival(ctx);
        }));
    }

    /// Runs a blocking engine call with a fresh presence snapshot, then applies its
    /// effects. Failures are logged: the trigger's data is durable, and the next
    /// trigger (or a restart) routes again.
    fn decide<F>(&mut self, what: &'static str, ctx: &mut Context<Self>, f: F)
    where
        F: FnOnce(
                &mut crate::db::DbConn,
                &engine::PresenceMap,
                i64,
            ) -> Result<Vec<Effect>, AppError>
            + Send
            + 'static,
    {
        let state = self.state.clone();
        let presence = state.hub.presence_snapshot();
        let fut = async move { state.db.run(move |c| f(c, &presence, now_ms())).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(effects) => act.apply(effects, ctx),
            Err(e) => tracing::warn!(error = %e, what, "routing decision failed"),
        }));
    }

    fn apply(&mut self, effects: Vec<Effect>, ctx: &mut Context<Self>) {
        // A team whose whole queue is announced again needs that once per decision,
        // and then no separate announcement of a conversation that joined it.
        let mut whole_queue: Vec<String> = Vec::new();
        for effect in &effects {
            if let Effect::QueueChanged { team_id } = effect {
                if !whole_queue.contains(team_id) {
                    whole_queue.push(team_id.clone());
                }
            }
        }
        for effect in effects {
            if let Some(team) = effect.team_id() {
                self.mark_dirty(team.to_string(), ctx);
            }
            match effect {
                Effect::Assigned {
                    conversation_id, ..
                } => {
                    self.refresh(conversation_id.clone());
                    // The contact learns it is no longer waiting.
                    self.publish_queue_position(&conversation_id, None);
                }
                Effect::Unassigned {
                    conversation_id,
                    team_id,
                } => {
                    self.refresh(conversation_id);
                    ctx.notify(Drain { team_id });
                }
                Effect::Offered {
                    offer,
                    recipients,
                    expires_at_ms,
                } => {
                    let frame = ServerFrame::Offer(offer.clone()).encode();
                    for agent_id in recipients {
                        self.state.hub.publish(BusEvent::Agent {
                            agent_id,
                            frame: frame.clone(),
                        });
                    }
                    self.arm_offer(offer.offer_id, offer.round, expires_at_ms, ctx);
                }
                Effect::OfferClosed {
                    offer_id,
                    conversation_id,
                    winner,
                    recipients,
                    reason,
                } => {
                    if let Some(handle) = self.offer_timers.remove(&offer_id) {
                        ctx.cancel_future(handle);
                    }
                    for agent_id in recipients {
                        let frame = ServerFrame::OfferClosed {
                            offer_id: offer_id.clone(),
                            conversation_id: conversation_id.clone(),
                            won: winner.as_deref() == Some(agent_id.as_str()),
                            reason: reason.to_string(),
                        }
                        .encode();
                        self.state.hub.publish(BusEvent::Agent { agent_id, frame });
                    }
                }
                Effect::Alert {
                    team_id,
                    conversation_id,
                    offer_id,
                } => {
                    let frame = ServerFrame::RoutingAlert {
                        team_id: team_id.clone(),
                        conversation_id,
                        offer_id,
                        message: "a conversation was offered and nobody claimed it".into(),
                    }
                    .encode();
                    self.state
                        .hub
                        .publish(BusEvent::Supervisors { team_id, frame });
                }
                Effect::QueueChanged { .. } => {}
                Effect::Queued {
                    team_id,
                    conversation_id,
                } => {
                    if !whole_queue.contains(&team_id) {
                        self.announce_joined(team_id, conversation_id, ctx);
                    }
                }
            }
        }
        for team_id in whole_queue {
            self.announce_queue(team_id, ctx);
        }
    }

    /// Tells the conversation's actor to reload its routing facts and announce a
    /// changed assignee (`assigned` + `conversation` frames).
    fn refresh(&self, conversation_id: String) {
        let state = self.state.clone();
        actix::spawn(async move {
            if let Err(e) = state
                .hub
                .ask(&state, &conversation_id, Refresh)
                .await
                .and_then(|r| r)
            {
                tracing::warn!(conversation = %conversation_id, error = %e, "could not refresh after routing");
            }
        });
    }

    fn publish_queue_position(&self, conversation_id: &str, position: Option<i64>) {
        self.state.hub.publish(BusEvent::Conversation {
            conversation_id: Arc::from(conversation_id),
            team_id: String::new(),
            assignee_id: None,
            seq: None,
            frame: ServerFrame::Queue {
                conversation_id: conversation_id.to_string(),
                position,
            }
            .encode(),
            audience: Audience::Contact,
            exclude_session: None,
        });
    }

    fn announce_queue(&mut self, team_id: String, ctx: &mut Context<Self>) {
        let state = self.state.clone();
        let fut = async move {
            state
                .db
                .run(move |c| engine::queue_positions(c, &team_id))
                .await
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, _| match res {
            Ok(positions) => {
                for (id, pos) in positions {
                    act.publish_queue_position(&id, Some(pos));
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read queue positions"),
        }));
    }

    /// Announces the position of a conversation that joined the back of the queue
    /// (the others' did not change); the whole queue when it is not last.
    fn announce_joined(
        &mut self,
        team_id: String,
        conversation_id: String,
        ctx: &mut Context<Self>,
    ) {
        let state = self.state.clone();
        let (team, id) = (team_id.clone(), conversation_id.clone());
        let fut = async move {
            state
                .db
                .run(move |c| engine::queue_place(c, &team, &id))
                .await
        };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(engine::QueuePlace::Last(position)) => {
                act.publish_queue_position(&conversation_id, Some(position));
            }
            Ok(engine::QueuePlace::Elsewhere) => act.announce_queue(team_id, ctx),
            Err(e) => tracing::warn!(error = %e, "could not read a queue position"),
        }));
    }

    fn arm_offer(
        &mut self,
        offer_id: String,
        round: i32,
        expires_at_ms: i64,
        ctx: &mut Context<Self>,
    ) {
        if let Some(old) = self.offer_timers.remove(&offer_id) {
            ctx.cancel_future(old);
        }
        let wait = Duration::from_millis(u64::try_from(expires_at_ms - now_ms()).unwrap_or(0));
        let id = offer_id.clone();
        let handle = ctx.run_later(wait, move |act, ctx| {
            act.offer_timers.remove(&id);
            act.decide("offer timeout", ctx, move |c, presence, now| {
                engine::expire_offer(c, &id, round, presence, now)
            });
        });
        self.offer_timers.insert(offer_id, handle);
    }

    /// Arms a timer for every open offer this router does not time yet.
    fn sweep_offers(&mut self, ctx: &mut Context<Self>) {
        let state = self.state.clone();
        let fut = async move { state.db.run(engine::open_offers).await };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok(open) => {
                for (id, round, expires_at) in open {
                    if !act.offer_timers.contains_key(&id) {
                        act.arm_offer(id, round, expires_at, ctx);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not re-arm offer timers"),
        }));
    }

    fn mark_dirty(&mut self, team_id: String, ctx: &mut Context<Self>) {
        self.dirty.insert(team_id);
        if !self.flush_pending {
            self.flush_pending = true;
            ctx.run_later(WORKLOAD_DEBOUNCE, |act, ctx| act.flush_workload(ctx));
        }
    }

    fn flush_workload(&mut self, ctx: &mut Context<Self>) {
        self.flush_pending = false;
        let teams: Vec<String> = self.dirty.drain().collect();
        let state = self.state.clone();
        let presence = state.hub.presence_snapshot();
        let fut = async move {
            state
                .db
                .run(move |c| {
                    let now = now_ms();
                    teams
                        .iter()
                        .map(|t| engine::workload(c, t, &presence, now))
                        .collect::<Result<Vec<_>, AppError>>()
                })
                .await
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, _| match res {
            Ok(loads) => {
                for load in loads {
                    let team_id = load.team_id.clone();
                    let frame = ServerFrame::Workload(load).encode();
                    act.state
                        .hub
                        .publish(BusEvent::Supervisors { team_id, frame });
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not compute workload"),
        }));
    }

    fn load_settings(&mut self, ctx: &mut Context<Self>) {
        let state = self.state.clone();
        let fut = async move { state.db.run(settings::load_all).await };
        ctx.spawn(fut.into_actor(self).map(|res, act, _| match res {
            Ok(all) => {
                for team in all {
                    act.state.hub.set_team_grace(
                        &team.team_id,
                        team.offline_grace_ms
                            .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not load routing settings"),
        }));
    }
}

impl Actor for Router {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.load_settings(ctx);
        // Offers created before a restart (or on a node that died) still end.
        self.sweep_offers(ctx);
        // With several nodes, an offer's timer lives on the node that made it; if
        // that node dies the offer must still expire. Every node arms a timer for
        // each open offer it does not time yet (expiry is idempotent per round).
        let cluster = &self.state.config.cluster;
        if cluster.redis_url.is_some() {
            ctx.run_interval(cluster.offer_sweep, |act, ctx| act.sweep_offers(ctx));
        }
    }
}

impl Handler<HoursTick> for Router {
    type Result = ();

    fn handle(&mut self, _: HoursTick, ctx: &mut Self::Context) {
        self.decide("hours tick", ctx, |c, presence, now| {
            let mut effects = Vec::new();
            for team_id in agent_hours::teams_waiting_with_hours(c)? {
                effects.extend(engine::drain(c, &team_id, presence, now)?);
            }
            Ok(effects)
        });
    }
}

impl Handler<RouteConversation> for Router {
    type Result = ();

    fn handle(&mut self, msg: RouteConversation, ctx: &mut Self::Context) {
        self.arrivals.push(msg);
        self.next_arrival(ctx);
    }
}

impl Handler<PresenceChanged> for Router {
    type Result = ();

    fn handle(&mut self, msg: PresenceChanged, ctx: &mut Self::Context) {
        for team in &msg.team_ids {
            self.mark_dirty(team.clone(), ctx);
        }
        match msg.status {
            PresenceStatus::Online => {
                if let Some(handle) = self.requeue_timers.remove(&msg.agent_id) {
                    ctx.cancel_future(handle);
                }
                for team_id in msg.team_ids {
                    ctx.notify(Drain { team_id });
                }
            }
            PresenceStatus::Away => {
                if let Some(handle) = self.requeue_timers.remove(&msg.agent_id) {
                    ctx.cancel_future(handle);
                }
            }
            PresenceStatus::Offline => {
                // The shortest requeue delay of the agent's teams applies.
                let state = self.state.clone();
                let teams = msg.team_ids.clone();
                let agent_id = msg.agent_id;
                let fut = async move {
                    state
                        .db
                        .run(move |c| {
                            let mut delay: Option<i64> = None;
                            for t in &teams {
                                let d = settings::load(c, t)?.requeue_delay_ms;
                                delay = Some(delay.map_or(d, |cur| cur.min(d)));
                            }
                            Ok(delay)
                        })
                        .await
                };
                ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
                    let delay = match res {
                        Ok(Some(ms)) => Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
                        Ok(None) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "could not read requeue delay");
                            return;
                        }
                    };
                    let id = agent_id.clone();
                    let handle = ctx.run_later(delay, move |act, ctx| {
                        act.requeue_timers.remove(&id);
                        act.decide("requeue", ctx, move |c, p, now| {
                            engine::requeue_offline(c, &id, p, now)
                        });
                    });
                    if let Some(old) = act.requeue_timers.insert(agent_id, handle) {
                        ctx.cancel_future(old);
                    }
                }));
            }
        }
    }
}

impl Handler<Drain> for Router {
    type Result = ();

    fn handle(&mut self, msg: Drain, ctx: &mut Self::Context) {
        self.mark_dirty(msg.team_id.clone(), ctx);
        let team_id = msg.team_id;
        self.decide("drain", ctx, move |c, p, now| {
            engine::drain(c, &team_id, p, now)
        });
    }
}

impl Handler<ConversationClosed> for Router {
    type Result = ();

    fn handle(&mut self, msg: ConversationClosed, ctx: &mut Self::Context) {
        let id = msg.conversation_id;
        let team_id = msg.team_id;
        self.decide("close", ctx, move |c, p, now| {
            let mut effects = engine::closed(c, &id, now)?;
            effects.extend(engine::drain(c, &team_id, p, now)?);
            Ok(effects)
        });
    }
}

impl Handler<ApplyEffects> for Router {
    type Result = ();

    fn handle(&mut self, msg: ApplyEffects, ctx: &mut Self::Context) {
        self.apply(msg.effects, ctx);
    }
}

impl Handler<WorkloadWanted> for Router {
    type Result = ();

    fn handle(&mut self, msg: WorkloadWanted, ctx: &mut Self::Context) {
        if !msg.all_teams {
            for team in msg.team_ids {
                self.mark_dirty(team, ctx);
            }
            return;
        }
        let state = self.state.clone();
        let fut = async move { state.db.run(settings::load_all).await };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok(all) => {
                for team in all {
                    act.mark_dirty(team.team_id, ctx);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list teams for the workload"),
        }));
    }
}

impl Handler<SettingsChanged> for Router {
    type Result = ();

    fn handle(&mut self, msg: SettingsChanged, ctx: &mut Self::Context) {
        self.load_settings(ctx);
        ctx.notify(Drain {
            team_id: msg.team_id,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(id: &str, reopened: bool) -> RouteConversation {
        RouteConversation {
            conversation_id: id.into(),
            reopened,
        }
    }

    #[test]
    fn a_burst_in_one_conversation_waits_as_one_trigger_and_a_reopen_upgrades_it() {
        let mut a = Arrivals::default();
        a.push(route("x", false));
        a.push(route("y", false));
        a.push(route("x", false));
        a.push(route("x", true));
        let first = a.pop().unwrap();
        assert_eq!(
            (first.conversation_id.as_str(), first.reopened),
            ("x", true)
        );
        // Once taken, a new message in it waits again, behind the others.
        a.push(route("x", false));
        let order: Vec<_> = std::iter::from_fn(|| a.pop())
            .map(|m| m.conversation_id)
            .collect();
        assert_eq!(order, vec!["y", "x"]);
    }
}
