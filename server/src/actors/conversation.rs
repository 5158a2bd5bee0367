//! `ConversationActor`: one per active conversation on a node.
//!
//! It owns the conversation's order of events on this node: it authorises every
//! post, typing signal and read marker against the conversation's routing facts
//! (kept in memory), hands appends to the group-commit writer — which assigns `seq`
//! inside the commit — and publishes the committed message only after the commit,
//! so an `ack` and a `message` frame always describe durable data. It is started on
//! demand by the [`Hub`](crate::hub::Hub) and stops itself after
//! `conversation_idle` without activity.
//!
//! Appends are not serialised by waiting: several may be in flight to the writer at
//! once (that is what lets the writer batch). actix handles their answers in no
//! particular order, so what follows each commit waits its turn and runs in the order
//! the appends were handed over, which is seq order ([`append`], `in_order`).
//! Sessions additionally reorder by `seq`, so even a reordering here could not show a
//! viewer messages out of order; it would only cost them a read of the database.

pub mod broadcast;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::auth::Principal;
use crate::bus::{Audience, BusEvent};
use crate::channels::{DeliveryStatus, Provider, SERVICE_WINDOW_MS};
use crate::clock::now_ms;
use crate::error::AppError;
use crate::model::{
    validate_body, validate_client_msg_id, ConversationStatus, ConversationView, SenderKind,
    SenderView,
};
use crate::protocol::{ReaderView, ServerFrame};
use crate::routing;
use crate::routing::actor::{ApplyEffects, ConversationClosed, RouteConversation};
use crate::state::AppState;
use crate::store::accounts::AgentInfo;
use crate::store::conversations::{self, ConversationMeta, ReadSide};
use crate::store::messages::{ChannelAppend, NewMessage};
use crate::store::outbox::NewOutbox;

use super::messages::{
    Authorize, ChangeAssignee, ChangeStatus, MarkRead, PostAutoReply, PostInbound, PostMedia,
    PostMessage, Posted, PublishStatus, Refresh, Reload, SetTyping,
};

mod append;
mod in_order;
mod template;
mod transfer;

use append::LaneOrders;

/// How often an actor checks whether it has been idle long enough to stop.
const IDLE_CHECK: Duration = Duration::from_secs(30);

/// The actor of one conversation. See the module documentation.
pub struct ConversationActor {
    state: AppState,
    id: Arc<str>,
    meta: ConversationMeta,
    last_activity: Instant,
    /// Appends handed to the writer, per lane, and commits waiting for an earlier
    /// append's; an actor with appends out does not stop.
    order: LaneOrders,
    /// When this node last asked the router to route this conversation in its
    /// current unassigned spell (ms, `state.clock`); `None` after any change of
    /// assignee, status or team. See [`crate::routing::route_again`].
    routed_at: Option<i64>,
}

impl ConversationActor {
    /// An actor for the conversation described by `meta`.
    pub fn new(state: AppState, id: Arc<str>, meta: ConversationMeta) -> Self {
        Self {
            state,
            id,
            meta,
            last_activity: Instant::now(),
            order: LaneOrders::default(),
            routed_at: None,
        }
    }

    fn touch(&mut self) {
        self.last_activity = Instant::now();
    }

    fn publish(
        &self,
        frame: &ServerFrame,
        seq: Option<i64>,
        audience: Audience,
        exclude: Option<Arc<str>>,
    ) {
        self.state.hub.publish(BusEvent::Conversation {
            conversation_id: self.id.clone(),
            team_id: self.meta.team_id.clone(),
            assignee_id: self.meta.assignee_id.clone(),
            seq,
            frame: frame.encode(),
            audience,
            exclude_session: exclude,
        });
    }

    /// Pushes a summary to every inbox of the team (`conversation` frame).
    fn publish_view(&self, view: &ConversationView) {
        let frame = ServerFrame::Conversation {
            conversation: Box::new(view.clone()),
        };
        self.publish(&frame, None, Audience::Team, None);
    }

    /// Reads the summary and pushes it to the team (after a first message or a reopen).
    fn publish_summary(&self, ctx: &mut Context<Self>) {
        let state = self.state.clone();
        let id = self.id.to_string();
        let fut = async move { state.db.run(move |c| conversations::summary(c, &id)).await };
        ctx.spawn(fut.into_actor(self).map(|res, act, _| match res {
            Ok(view) => act.publish_view(&view),
            Err(e) => tracing::warn!(conversation = %act.id, error = %e, "could not publish conversation summary"),
        }));
    }
}

/// Whether `principal` may read and write the conversation described by `meta`:
/// a guest only its own conversation; an agent the conversations of its teams;
/// an admin all.
///
/// # Errors
/// [`AppError::Forbidden`].
pub fn check_access(principal: &Principal, meta: &ConversationMeta) -> Result<(), AppError> {
    let allowed = match principal {
        Principal::Guest(g) => g.conversation_id == meta.id && g.contact_id == meta.contact_id,
        Principal::Agent(a) => a.can_access_team(&meta.team_id),
    };
    if allowed {
        Ok(())
    } else {
        Err(AppError::Forbidden("this conversation is not yours".into()))
    }
}

/// [`check_access`] for what only staff may do (assign, transfer, change the status,
/// send a file or a template); answers the agent.
///
/// # Errors
/// [`AppError::Forbidden`] for a guest or an agent outside the conversation's team.
pub fn check_agent<'p>(
    principal: &'p Principal,
    meta: &ConversationMeta,
) -> Result<&'p AgentInfo, AppError> {
    check_access(principal, meta)?;
    match principal {
        Principal::Agent(agent) => Ok(agent),
        Principal::Guest(_) => Err(AppError::Forbidden("agents only".into())),
    }
}

impl Actor for ConversationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(IDLE_CHECK, |act, ctx| {
            let idle = act.state.config.conversation_idle;
            if act.order.idle() && act.last_activity.elapsed() >= idle {
                act.state.hub.retire_conversation(&act.id, &ctx.address());
                ctx.stop();
            }
        });
    }
}

impl Handler<PostMessage> for ConversationActor {
    type Result = ResponseActFuture<Self, Result<Posted, AppError>>;

    fn handle(&mut self, msg: PostMessage, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let prepared = (|| {
            check_access(&msg.principal, &self.meta)?;
            let body = validate_body(&msg.body)?;
            if let Some(id) = &msg.client_msg_id {
                validate_client_msg_id(id)?;
            }
            let (sender_kind, sender_id, sender_name) = match &msg.principal {
                Principal::Guest(g) => (
                    SenderKind::Guest,
                    g.contact_id.clone(),
                    self.meta.contact_name.clone(),
                ),
                Principal::Agent(a) => (SenderKind::Agent, a.id.clone(), Some(a.name.clone())),
            };
            let channel = if sender_kind == SenderKind::Agent {
                self.whatsapp_send("text")?
            } else {
                None
            };
            Ok(NewMessage {
                conversation_id: self.id.to_string(),
                reopen: sender_kind == SenderKind::Guest
                    && self.meta.status == ConversationStatus::Resolved,
                sender_kind,
                sender_id: Some(sender_id),
                sender_name,
                body,
                client_msg_id: msg.client_msg_id,
                provider_id: None,
                channel: channel.map(Box::new),
            })
        })();
        let new = match prepared {
            Ok(new) => new,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        self.append_and_publish(new)
    }
}

impl Handler<SetTyping> for ConversationActor {
    type Result = Result<(), AppError>;

    fn handle(&mut self, msg: SetTyping, _: &mut Self::Context) -> Self::Result {
        check_access(&msg.principal, &self.meta)?;
        self.touch();
        let (sender, audience) = match &msg.principal {
            Principal::Guest(g) => (
                SenderView {
                    kind: SenderKind::Guest,
                    id: Some(g.contact_id.clone()),
                    name: self.meta.contact_name.clone(),
                },
                Audience::Agents,
            ),
            Principal::Agent(a) => (
                SenderView {
                    kind: SenderKind::Agent,
                    id: Some(a.id.clone()),
                    name: Some(a.name.clone()),
                },
                Audience::Participants,
            ),
        };
        let frame = ServerFrame::Typing {
            conversation_id: self.id.to_string(),
            on: msg.on,
            sender,
        };
        self.publish(&frame, None, audience, msg.origin_session);
        Ok(())
    }
}

impl Handler<MarkRead> for ConversationActor {
    type Result = ResponseActFuture<Self, Result<(), AppError>>;

    fn handle(&mut self, msg: MarkRead, _: &mut Self::Context) -> Self::Result {
        if let Err(e) = check_access(&msg.principal, &self.meta) {
            return Box::pin(fut::ready(Err(e)));
        }
        if msg.seq < 1 {
            return Box::pin(fut::ready(Err(AppError::Validation(
                "The message number must be 1 or more.".into(),
            ))));
        }
        self.touch();
        let (side, reader) = match &msg.principal {
            Principal::Guest(g) => (
                ReadSide::Guest,
                ReaderView {
                    kind: SenderKind::Guest,
                    id: g.contact_id.clone(),
                },
            ),
            Principal::Agent(a) => (
                ReadSide::Agent,
                ReaderView {
                    kind: SenderKind::Agent,
                    id: a.id.clone(),
                },
            ),
        };
        let state = self.state.clone();
        let id = self.id.to_string();
        let seq = msg.seq;
        let fut = async move {
            state
                .db
                .run(move |c| conversations::mark_read(c, &id, side, seq))
                .await
        };
        Box::pin(fut.into_actor(self).map(move |res, act, _| {
            let stored = res?;
            // Relay only what moved the marker; a stale or future seq is ignored.
            if stored == seq {
                let audience = match side {
                    ReadSide::Guest => Audience::Agents,
                    ReadSide::Agent => Audience::Participants,
                };
                let frame = ServerFrame::Read {
                    conversation_id: act.id.to_string(),
                    seq,
                    reader,
                };
                act.publish(&frame, None, audience, None);
            }
            Ok(())
        }))
    }
}

impl Handler<Authorize> for ConversationActor {
    type Result = Result<ConversationMeta, AppError>;

    fn handle(&mut self, msg: Authorize, _: &mut Self::Context) -> Self::Result {
        check_access(&msg.principal, &self.meta)?;
        self.touch();
        Ok(self.meta.clone())
    }
}

impl Handler<ChangeAssignee> for ConversationActor {
    type Result = ResponseActFuture<Self, Result<ConversationView, AppError>>;

    fn handle(&mut self, msg: ChangeAssignee, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let actor = match check_agent(&msg.principal, &self.meta) {
            Ok(actor) => actor.clone(),
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let state = self.state.clone();
        let id = self.id.to_string();
        let target = msg.agent_id.clone();
        let fut = async move {
            state
                .db
                .run(move |c| {
                    // Who may do what is decided against the assignee in the
                    // database, under the team's routing lock: this actor's copy may
                    // lag behind a routing decision made a moment ago.
                    let effects = routing::engine::manual_assign(
                        c,
                        &id,
                        target.as_deref(),
                        &actor.id,
                        actor
                            .role
                            .can(crate::access::Permission::ConversationsAssignOthers),
                        now_ms(),
                    )?;
                    Ok((conversations::summary(c, &id)?, effects))
                })
                .await
        };
        Box::pin(fut.into_actor(self).map(|res, act, ctx| {
            let (view, effects) = match res {
                Ok(done) => done,
                Err(e) => {
                    if matches!(e, AppError::Conflict(_)) {
                        // Someone (maybe on another node) changed it: refresh our copy.
                        act.reload_meta(ctx);
                    }
                    return Err(e);
                }
            };
            act.adopt_routing(&view, effects);
            Ok(view)
        }))
    }
}

impl ConversationActor {
    /// A staff command of this actor changed the routing facts in the database
    /// (assign, transfer): adopts them from `view` and announces them, and hands
    /// `effects` (offers withdrawn, queue positions, workload) to the router.
    fn adopt_routing(&mut self, view: &ConversationView, effects: Vec<routing::engine::Effect>) {
        self.announce(view.clone());
        self.state.hub.route(ApplyEffects { effects });
    }
}

impl Handler<ChangeStatus> for ConversationActor {
    type Result = ResponseActFuture<Self, Result<ConversationView, AppError>>;

    fn handle(&mut self, msg: ChangeStatus, _: &mut Self::Context) -> Self::Result {
        self.touch();
        if let Err(e) = check_agent(&msg.principal, &self.meta) {
            return Box::pin(fut::ready(Err(e)));
        }
        let state = self.state.clone();
        let id = self.id.to_string();
        let status = msg.status;
        let fut = async move {
            state
                .db
                .run(move |c| {
                    conversations::set_status(c, &id, status)?;
                    conversations::summary(c, &id)
                })
                .await
        };
        Box::pin(fut.into_actor(self).map(|res, act, _| {
            let view = res?;
            act.meta.status = view.status;
            act.routed_at = None;
            act.changed_elsewhere();
            act.publish_view(&view);
            if view.status == ConversationStatus::Open {
                if view.assignee_id.is_none() {
                    act.state.hub.route(RouteConversation {
                        conversation_id: act.id.to_string(),
                        reopened: false,
                    });
                }
            } else {
                act.state.hub.route(ConversationClosed {
                    conversation_id: act.id.to_string(),
                    team_id: act.meta.team_id.clone(),
                });
            }
            Ok(view)
        }))
    }
}

impl ConversationActor {
    /// A contact's message committed: an unassigned (or reopened) conversation needs
    /// routing. The router ignores conversations already queued or on offer.
    fn after_inbound(&mut self, reopened: bool) {
        let now = self.state.clock.now_ms();
        let unassigned =
            self.meta.assignee_id.is_none() && crate::routing::route_again(self.routed_at, now);
        if reopened || unassigned {
            self.routed_at = Some(now);
            // The team's bot may answer first and route only when it hands over.
            crate::bot::worker::gate_routing(
                &self.state,
                &self.meta.team_id,
                &self.meta.channel,
                RouteConversation {
                    conversation_id: self.id.to_string(),
                    reopened,
                },
            );
        }
    }

    /// Adopts a fresh summary from the database and announces what changed: a new
    /// assignee (`assigned` to the team), a new team (the old team's inboxes learn
    /// it left), and the summary itself.
    fn announce(&mut self, view: ConversationView) {
        let assignee_changed = self.meta.assignee_id != view.assignee_id;
        let team_changed = self.meta.team_id != view.team_id;
        if !assignee_changed && !team_changed && self.meta.status == view.status {
            return;
        }
        if team_changed {
            self.publish_view(&view);
            self.meta.team_id = view.team_id.clone();
        }
        self.meta.assignee_id = view.assignee_id.clone();
        self.meta.status = view.status;
        self.routed_at = None;
        self.changed_elsewhere();
        if assignee_changed {
            let assigned = ServerFrame::Assigned {
                conversation_id: self.id.to_string(),
                agent_id: view.assignee_id.clone(),
            };
            self.publish(&assigned, None, Audience::Team, None);
        }
        self.publish_view(&view);
    }

    fn reload_meta(&mut self, ctx: &mut Context<Self>) {
        let state = self.state.clone();
        let id = self.id.to_string();
        let fut = async move { state.db.run(move |c| conversations::meta(c, &id)).await };
        ctx.spawn(fut.into_actor(self).map(|res, act, _| {
            if let Ok(meta) = res {
                act.meta = meta;
            }
        }));
    }
}

impl ConversationActor {
    /// Tells other nodes' actors of this conversation to reload their routing facts
    /// (multi-node mode; a no-op on the in-process bus).
    fn changed_elsewhere(&self) {
        self.state.hub.publish(BusEvent::ConversationChanged {
            conversation_id: self.id.to_string(),
            team_id: self.meta.team_id.clone(),
            assignee_id: self.meta.assignee_id.clone(),
            status: self.meta.status,
        });
    }
}

impl Handler<Reload> for ConversationActor {
    type Result = ();

    fn handle(&mut self, msg: Reload, _: &mut Self::Context) {
        let same = self.meta.team_id == msg.team_id
            && self.meta.assignee_id == msg.assignee_id
            && self.meta.status == msg.status;
        if !same {
            self.routed_at = None;
        }
        self.meta.team_id = msg.team_id;
        self.meta.assignee_id = msg.assignee_id;
        self.meta.status = msg.status;
    }
}

impl Handler<Refresh> for ConversationActor {
    type Result = ResponseActFuture<Self, Result<(), AppError>>;

    fn handle(&mut self, _: Refresh, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let state = self.state.clone();
        let id = self.id.to_string();
        let fut = async move { state.db.run(move |c| conversations::summary(c, &id)).await };
        Box::pin(fut.into_actor(self).map(|res, act, _| {
            act.announce(res?);
            Ok(())
        }))
    }
}

impl ConversationActor {
    /// For an agent's message in a WhatsApp conversation: the outbox order and the
    /// initial `pending` status, after checking Meta's 24-hour customer-service
    /// window (outside it only templates may be sent; Meta "Conversations" docs).
    /// `None` for other channels.
    fn whatsapp_send(&self, kind: &'static str) -> Result<Option<ChannelAppend>, AppError> {
        let Some(provider) = Provider::of_channel(&self.meta.channel) else {
            return Ok(None);
        };
        if provider.has_service_window() {
            let open = self
                .meta
                .last_inbound_at
                .is_some_and(|t| now_ms() < t + SERVICE_WINDOW_MS);
            if !open {
                return Err(AppError::Conflict(
                    "outside the 24-hour WhatsApp customer-service window: the customer has \
                     not written in the last 24 hours, so only a template message can be sent"
                        .into(),
                ));
            }
        }
        Ok(Some(ChannelAppend {
            attachment: None,
            status: Some(DeliveryStatus::Pending.as_str().into()),
            outbox: Some(NewOutbox {
                provider,
                kind,
                payload: "{}".into(),
                not_before: None,
            }),
        }))
    }
}

impl Handler<PostInbound> for ConversationActor {
    type Result = ResponseActFuture<Self, Result<Posted, AppError>>;

    fn handle(&mut self, msg: PostInbound, _: &mut Self::Context) -> Self::Result {
        self.touch();
        if msg.sender_name.is_some() {
            self.meta.contact_name = msg.sender_name.clone();
        }
        // Every customer message opens or refreshes the 24-hour window; the append
        // stores the same in `last_inbound_at`.
        self.meta.last_inbound_at = Some(now_ms());
        let new = NewMessage {
            conversation_id: self.id.to_string(),
            sender_kind: SenderKind::Guest,
            sender_id: Some(self.meta.contact_id.clone()),
            sender_name: self.meta.contact_name.clone(),
            body: msg.body,
            client_msg_id: None,
            provider_id: Some(msg.provider_id),
            reopen: self.meta.status == ConversationStatus::Resolved,
            channel: msg.attachment.map(|a| {
                Box::new(ChannelAppend {
                    attachment: Some(a),
                    ..ChannelAppend::default()
                })
            }),
        };
        self.append_and_publish(new)
    }
}

impl Handler<PostMedia> for ConversationActor {
    type Result = ResponseActFuture<Self, Result<Posted, AppError>>;

    fn handle(&mut self, msg: PostMedia, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let prepared = (|| {
            let agent = check_agent(&msg.principal, &self.meta)?;
            if let Some(id) = &msg.client_msg_id {
                validate_client_msg_id(id)?;
            }
            let Some(mut channel) = self.whatsapp_send("media")? else {
                return Err(AppError::Validation(
                    "Files can only be sent in WhatsApp conversations.".into(),
                ));
            };
            let a = &msg.attachment;
            let body = match (&a.caption, &a.filename) {
                (Some(c), _) => validate_body(c)?,
                (None, Some(f)) => format!("[{}: {f}]", a.kind),
                (None, None) => format!("[{}]", a.kind),
            };
            channel.attachment = Some(serde_json::to_string(a).map_err(AppError::internal)?);
            Ok(NewMessage {
                conversation_id: self.id.to_string(),
                sender_kind: SenderKind::Agent,
                sender_id: Some(agent.id.clone()),
                sender_name: Some(agent.name.clone()),
                body,
                client_msg_id: msg.client_msg_id.clone(),
                provider_id: None,
                reopen: false,
                channel: Some(Box::new(channel)),
            })
        })();
        match prepared {
            Ok(new) => self.append_and_publish(new),
            Err(e) => Box::pin(fut::ready(Err(e))),
        }
    }
}

impl Handler<PublishStatus> for ConversationActor {
    type Result = ();

    fn handle(&mut self, msg: PublishStatus, _: &mut Self::Context) {
        let c = msg.change;
        let frame = ServerFrame::Status {
            conversation_id: c.conversation_id,
            message_id: c.message_id,
            seq: c.seq,
            status: c.status,
            error: c.error,
        };
        self.publish(&frame, None, Audience::Agents, None);
    }
}

impl Handler<PostAutoReply> for ConversationActor {
    type Result = ResponseActFuture<Self, Result<Posted, AppError>>;

    fn handle(&mut self, msg: PostAutoReply, _: &mut Self::Context) -> Self::Result {
        self.touch();
        if msg.bot_guard && self.meta.assignee_id.is_some() {
            return Box::pin(fut::ready(Err(AppError::Conflict(
                "an agent has this conversation; the bot stands back".into(),
            ))));
        }
        let prepared = (|| {
            let body = validate_body(&msg.body)?;
            let kind = if msg.image_url.is_some() {
                "media"
            } else {
                "text"
            };
            let mut channel = self.whatsapp_send(kind)?;
            if let (Some(ch), Some(url)) = (channel.as_mut(), msg.image_url) {
                let a = crate::channels::Attachment {
                    kind: "image".into(),
                    caption: Some(body.clone()),
                    url: Some(url),
                    ..crate::channels::Attachment::default()
                };
                ch.attachment = Some(serde_json::to_string(&a).map_err(AppError::internal)?);
            }
            Ok(NewMessage {
                conversation_id: self.id.to_string(),
                sender_kind: SenderKind::Bot,
                sender_id: None,
                sender_name: Some("Switchboard".into()),
                body,
                client_msg_id: None,
                provider_id: None,
                reopen: false,
                channel: channel.map(Box::new),
            })
        })();
        match prepared {
            Ok(new) => self.append_and_publish(new),
            Err(e) => Box::pin(fut::ready(Err(e))),
        }
    }
}
