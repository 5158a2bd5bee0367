//! `SessionActor`: one per WebSocket connection (guest, agent, team lead). This is
//! the only module that uses `actix-web-actors`.
//!
//! It owns, for its connection:
//! - authentication (first `auth` frame or an upgrade `Authorization` header);
//! - decoding of the JSON protocol (`docs/protocol.md`), answering bad input with
//!   `error` frames — a bad frame never closes the session, except a text frame
//!   that is not UTF-8, which RFC 6455 requires to fail the connection (1007);
//! - guests' message budget (`RateLimits::guest_message`): over it a `send` gets a
//!   `rate_limited` error naming its `client_msg_id`, nothing is stored;
//! - the heartbeat: a ping every `heartbeat`, a close after `client_timeout` of silence;
//! - exactly-once, in-order delivery per conversation: a cursor per conversation
//!   remembers the last `seq` sent, drops repeats, holds early arrivals and fetches
//!   any gap from the database before continuing;
//! - the bounded outbound queue. actix-web-actors only runs this actor while the
//!   client is reading (the actor is polled by the response body), so an unread
//!   client stalls it and its mailbox fills. The mailbox capacity is therefore the
//!   bound: fan-out uses `try_send`, and a full mailbox marks the session as
//!   overflowed; it is closed with 1013 as soon as it runs again, and the client
//!   resumes from its cursors.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix::dev::SendError;
use actix::prelude::*;
use actix_http::ws::Item;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use bytestring::ByteString;

use crate::auth::Principal;
use crate::error::AppError;
use crate::metrics::METRICS;
use crate::model::{MessageView, SenderKind};
use crate::protocol::{ClientFrame, ServerFrame, You};
use crate::state::AppState;
use crate::store::conversations;
use crate::store::messages::{self, Page};

use super::messages::{
    Authorize, CatchUp, CloseSession, Deliver, MarkRead, PostMessage, SetTyping,
};

/// Which endpoint a session connected to; a token must match it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/ws/agent`.
    Agent,
    /// `/ws/guest`.
    Guest,
}

/// Close reason when an agent's access was taken away while connected (close code
/// 1008, policy violation, RFC 6455 §7.4.1): the client must log in again.
pub const REVOKED_REASON: &str = "access changed; log in again";

/// Most frames held while authentication is in progress.
const MAX_QUEUED_BEFORE_AUTH: usize = 64;
/// Most conversations in one `resume`.
const MAX_RESUME_CONVERSATIONS: usize = 500;
/// Page size when replaying history.
const REPLAY_PAGE: i64 = 500;

/// What other actors hold to send frames to a session.
#[derive(Clone)]
pub struct SessionRef {
    /// Session id (unique across nodes).
    pub id: Arc<str>,
    /// The agent behind the session, for agent sessions.
    pub agent_id: Option<Arc<str>>,
    /// Whether it is a guest session.
    pub is_guest: bool,
    recipient: Recipient<Deliver>,
    closer: Recipient<CloseSession>,
    overflow: Arc<AtomicBool>,
}

impl std::fmt::Debug for SessionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRef")
            .field("id", &self.id)
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

impl SessionRef {
    /// Queues a frame for the session without waiting. When the session's queue is
    /// full the session is marked as a slow consumer (it will close with 1013) and
    /// the frame is dropped — the client recovers it with `resume`.
    pub fn push(&self, deliver: Deliver) {
        if self.overflow.load(Ordering::Relaxed) {
            return;
        }
        match self.recipient.try_send(deliver) {
            Ok(()) | Err(SendError::Closed(_)) => {}
            Err(SendError::Full(_)) => {
                self.overflow.store(true, Ordering::Relaxed);
                tracing::warn!(session = %self.id, "outbound queue full; closing slow session");
            }
        }
    }

    /// Asks the session to close with an RFC 6455 close `code` and `reason`.
    pub fn close(&self, code: u16, reason: &str) {
        self.closer.do_send(CloseSession {
            code,
            reason: reason.to_string(),
        });
    }
}

/// Upgrades an HTTP request to a WebSocket served by a new [`SessionActor`].
///
/// # Errors
/// [`AppError::BadRequest`] when the request is not a valid WebSocket upgrade.
pub fn start(
    req: &HttpRequest,
    stream: web::Payload,
    state: AppState,
    endpoint: Endpoint,
    preauthenticated: Option<Principal>,
) -> Result<HttpResponse, actix_web::Error> {
    // The codec refuses (and closes on) frames past this size; frames between the
    // protocol limit and this size get a polite `frame_too_large` and the session
    // lives on.
    let codec_limit = (state.config.max_frame_bytes * 2).max(1 << 20);
    let mut actor = SessionActor::new(state, endpoint, preauthenticated);
    actor.peer = crate::http::client_ip(req);
    ws::WsResponseBuilder::new(actor, req, stream)
        .frame_size(codec_limit)
        .start()
        .map_err(|e| AppError::BadRequest(format!("expected a WebSocket upgrade: {e}")).into())
}

/// What a session authenticates with.
enum Credentials {
    /// A token from the `auth` frame, still to be verified.
    Token(String),
    /// Already verified by the upgrade request.
    Principal(Principal),
}

enum Auth {
    Waiting,
    Pending { queued: Vec<ClientFrame> },
    Ready(Principal),
}

/// Delivery state of one conversation for this session.
///
/// Invariant: the client has, or was sent on this connection, every message with
/// `seq <= last_sent`, and `base < seq <= last_sent` were all sent on this connection
/// (so a `resume` at or above `base` never needs to repeat them).
struct Cursor {
    /// Highest seq the client holds.
    last_sent: i64,
    /// Below-or-equal: the client's own business (declared by `resume`, or before
    /// the first frame this connection sent).
    base: i64,
    /// Frames that arrived ahead of a gap (or before a guest's first `resume`), by seq.
    pending: BTreeMap<i64, ByteString>,
    /// Generation of the database fetch under way, if any; a result whose generation
    /// is not this one is stale (a later `resume` superseded it) and is ignored.
    fetching: Option<u64>,
    /// Guest conversations hold live frames until the first `resume` or `send`
    /// says where the client stands, so nothing is ever sent twice.
    awaiting_resume: bool,
    /// This connection's sends in this conversation not answered yet. While one is
    /// out, a gap is most likely that message on its way (its copy comes back with
    /// the answer, and fan-out may bring the next one first), so the cursor holds
    /// instead of reading the database; the read happens if a gap is left once the
    /// last answer is in.
    own_in_flight: u32,
}

impl Cursor {
    /// The client holds everything up to `seq` and nothing was sent here yet.
    fn at(seq: i64) -> Self {
        Self {
            last_sent: seq,
            base: seq,
            pending: BTreeMap::new(),
            fetching: None,
            awaiting_resume: false,
            own_in_flight: 0,
        }
    }

    /// Whether frames wait behind a missing seq.
    fn has_gap(&self) -> bool {
        self.pending
            .first_key_value()
            .is_some_and(|(seq, _)| *seq > self.last_sent + 1)
    }
}

/// Frames a cursor holds behind a gap while this connection's own sends are out,
/// before it reads the database anyway.
const HOLD_FOR_OWN_SENDS: usize = 64;

/// Frames held for a guest that has not resumed yet; past this they are dropped,
/// because the `resume` reads everything from the database anyway.
const MAX_HELD_BEFORE_RESUME: usize = 1024;

enum Fragment {
    Text(Vec<u8>),
    /// A binary or oversize message whose remaining fragments are skipped.
    Skip,
}

/// One WebSocket connection. See the module documentation.
pub struct SessionActor {
    id: Arc<str>,
    endpoint: Endpoint,
    state: AppState,
    auth: Auth,
    /// A principal the upgrade request already authenticated (header token).
    preauthenticated: Option<Principal>,
    last_heard: Instant,
    cursors: HashMap<Arc<str>, Cursor>,
    watching: HashSet<Arc<str>>,
    overflow: Arc<AtomicBool>,
    fragment: Option<Fragment>,
    closing: bool,
    fetch_generation: u64,
    /// The client's address (behind trusted proxies, the forwarded one): guests'
    /// messages are also limited per address.
    peer: IpAddr,
}

impl SessionActor {
    fn new(state: AppState, endpoint: Endpoint, preauthenticated: Option<Principal>) -> Self {
        Self {
            id: Arc::from(crate::model::new_id()),
            endpoint,
            state,
            auth: Auth::Waiting,
            preauthenticated,
            last_heard: Instant::now(),
            cursors: HashMap::new(),
            watching: HashSet::new(),
            overflow: Arc::new(AtomicBool::new(false)),
            fragment: None,
            closing: false,
            fetch_generation: 0,
            peer: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        }
    }

    fn principal(&self) -> Option<&Principal> {
        match &self.auth {
            Auth::Ready(p) => Some(p),
            _ => None,
        }
    }

    fn session_ref(&self, ctx: &mut ws::WebsocketContext<Self>) -> SessionRef {
        let agent_id = match self.principal() {
            Some(Principal::Agent(a)) => Some(Arc::from(a.id.as_str())),
            _ => None,
        };
        SessionRef {
            id: self.id.clone(),
            agent_id,
            is_guest: self.endpoint == Endpoint::Guest,
            recipient: ctx.address().recipient(),
            closer: ctx.address().recipient(),
            overflow: self.overflow.clone(),
        }
    }

    fn send_frame(&self, ctx: &mut ws::WebsocketContext<Self>, frame: &ServerFrame) {
        ctx.text(frame.encode());
    }

    fn send_error(
        &self,
        ctx: &mut ws::WebsocketContext<Self>,
        code: &str,
        message: impl Into<String>,
        reference: Option<String>,
    ) {
        self.send_frame(ctx, &ServerFrame::error(code, message, reference));
    }

    fn send_app_error(
        &self,
        ctx: &mut ws::WebsocketContext<Self>,
        err: &AppError,
        reference: Option<String>,
    ) {
        if matches!(err, AppError::Internal(_) | AppError::Unavailable(_)) {
            tracing::warn!(session = %self.id, error = ?err, "frame failed");
        }
        self.send_frame(ctx, &ServerFrame::app_error(err, reference));
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: u16, reason: &str) {
        if self.closing {
            return;
        }
        self.closing = true;
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::from(code),
            description: Some(reason.to_string()),
        }));
        ctx.stop();
    }

    fn watch(&mut self, conversation_id: Arc<str>, ctx: &mut ws::WebsocketContext<Self>) {
        if self.watching.insert(conversation_id.clone()) {
            let me = self.session_ref(ctx);
            self.state.hub.watch(conversation_id, me);
        }
    }

    // ---- authentication -------------------------------------------------------

    fn authenticate(&mut self, credentials: Credentials, ctx: &mut ws::WebsocketContext<Self>) {
        self.auth = Auth::Pending { queued: Vec::new() };
        let state = self.state.clone();
        let endpoint = self.endpoint;
        let fut = async move {
            let principal = match credentials {
                Credentials::Token(token) => Principal::from_token(&state, &token).await?,
                Credentials::Principal(principal) => principal,
            };
            let you = match (&principal, endpoint) {
                (Principal::Agent(a), Endpoint::Agent) => You {
                    kind: SenderKind::Agent,
                    id: a.id.clone(),
                    name: a.name.clone(),
                    role: Some(a.role),
                    team_ids: Some(a.team_ids.clone()),
                    conversation_id: None,
                },
                (Principal::Guest(g), Endpoint::Guest) => {
                    let ask = Authorize {
                        principal: principal.clone(),
                    };
                    let meta = match state.hub.ask(&state, &g.conversation_id, ask).await {
                        Ok(Ok(meta)) => meta,
                        Ok(Err(AppError::NotFound(_))) | Err(AppError::NotFound(_)) => {
                            return Err(AppError::Unauthorized(
                                "this guest session no longer exists".into(),
                            ))
                        }
                        Ok(Err(e)) | Err(e) => return Err(e),
                    };
                    You {
                        kind: SenderKind::Guest,
                        id: g.contact_id.clone(),
                        // The contact's display name: the one given, else the
                        // generated one agents also see (docs/api.md, ContactView).
                        name: meta
                            .contact_name
                            .unwrap_or_else(|| crate::visitor::generated_name(&g.contact_id)),
                        role: None,
                        team_ids: None,
                        conversation_id: Some(g.conversation_id.clone()),
                    }
                }
                _ => {
                    return Err(AppError::Unauthorized(
                        "this token belongs to the other endpoint (/ws/agent or /ws/guest)".into(),
                    ))
                }
            };
            Ok((principal, you))
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok((principal, you)) => act.on_authenticated(principal, you, ctx),
            Err(e @ AppError::Unavailable(_)) => {
                act.send_app_error(ctx, &e, Some("auth".into()));
                act.close(ctx, 1011, "database unavailable; reconnect shortly");
            }
            Err(e) => {
                act.send_error(ctx, "unauthorized", e.public_message(), Some("auth".into()));
                act.close(ctx, 1008, "authentication failed");
            }
        }));
    }

    fn on_authenticated(
        &mut self,
        principal: Principal,
        you: You,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let queued = match std::mem::replace(&mut self.auth, Auth::Ready(principal.clone())) {
            Auth::Pending { queued } => queued,
            _ => Vec::new(),
        };
        match &principal {
            Principal::Agent(info) => {
                let me = self.session_ref(ctx);
                if !self
                    .state
                    .hub
                    .attach_agent_session(&self.state, info.clone(), me)
                {
                    // Revoked between the database read and now.
                    self.send_error(
                        ctx,
                        "unauthorized",
                        crate::error::INVALID_SESSION_MESSAGE,
                        Some("auth".into()),
                    );
                    self.close(ctx, 1008, REVOKED_REASON);
                    return;
                }
            }
            Principal::Guest(g) => {
                let key: Arc<str> = Arc::from(g.conversation_id.as_str());
                let mut cursor = Cursor::at(0);
                cursor.awaiting_resume = true;
                self.cursors.insert(key.clone(), cursor);
                self.watch(key, ctx);
            }
        }
        tracing::debug!(session = %self.id, kind = ?you.kind, "session authenticated");
        self.send_frame(
            ctx,
            &ServerFrame::Hello {
                session_id: self.id.to_string(),
                you,
                heartbeat_ms: u64::try_from(self.state.config.heartbeat.as_millis())
                    .unwrap_or(u64::MAX),
            },
        );
        for frame in queued {
            self.handle_frame(frame, ctx);
        }
    }

    // ---- inbound frames -------------------------------------------------------

    fn handle_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        if text.len() > self.state.config.max_frame_bytes {
            self.send_error(
                ctx,
                "frame_too_large",
                format!(
                    "This message is too large to send (at most {} bytes).",
                    self.state.config.max_frame_bytes
                ),
                None,
            );
            return;
        }
        match ClientFrame::parse(text) {
            Ok(frame) => self.handle_frame(frame, ctx),
            Err(e) => self.send_error(ctx, e.code, e.message, e.frame_type),
        }
    }

    fn handle_frame(&mut self, frame: ClientFrame, ctx: &mut ws::WebsocketContext<Self>) {
        match &mut self.auth {
            Auth::Waiting => match frame {
                ClientFrame::Auth { token } => self.authenticate(Credentials::Token(token), ctx),
                ClientFrame::Ping => self.send_frame(ctx, &ServerFrame::Pong),
                _ => {
                    self.send_error(
                        ctx,
                        "unauthorized",
                        "send {\"type\":\"auth\",\"token\":…} first",
                        None,
                    );
                    self.close(ctx, 1008, "not authenticated");
                }
            },
            Auth::Pending { queued } => match frame {
                ClientFrame::Auth { .. } => {
                    self.send_error(
                        ctx,
                        "bad_frame",
                        "already authenticating",
                        Some("auth".into()),
                    );
                }
                other if queued.len() < MAX_QUEUED_BEFORE_AUTH => queued.push(other),
                _ => {
                    self.send_error(
                        ctx,
                        "bad_frame",
                        "too many frames before authentication finished",
                        None,
                    );
                }
            },
            Auth::Ready(principal) => {
                let principal = principal.clone();
                self.dispatch(principal, frame, ctx);
            }
        }
    }

    /// The conversation a frame targets: as given, or a guest's own.
    fn target(&self, principal: &Principal, given: Option<String>) -> Option<String> {
        given.or_else(|| match principal {
            Principal::Guest(g) => Some(g.conversation_id.clone()),
            Principal::Agent(_) => None,
        })
    }

    fn dispatch(
        &mut self,
        principal: Principal,
        frame: ClientFrame,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        if let (Principal::Agent(agent), Some(permission)) =
            (&principal, crate::access::frame_permission(&frame))
        {
            if let Err(e) = crate::access::require(agent, permission) {
                self.send_app_error(ctx, &e, Some(frame.reference()));
                return;
            }
        }
        match frame {
            ClientFrame::Auth { .. } => {
                self.send_error(
                    ctx,
                    "bad_frame",
                    "already authenticated",
                    Some("auth".into()),
                );
            }
            ClientFrame::Ping => self.send_frame(ctx, &ServerFrame::Pong),
            ClientFrame::Send {
                conversation_id,
                client_msg_id,
                body,
            } => match self.target(&principal, conversation_id) {
                Some(conv) => self.on_send(principal, conv, client_msg_id, body, ctx),
                None => self.send_error(
                    ctx,
                    "validation",
                    "conversation_id is required",
                    Some(client_msg_id),
                ),
            },
            ClientFrame::Typing {
                conversation_id,
                on,
            } => match self.target(&principal, conversation_id) {
                Some(conv) => {
                    let msg = SetTyping {
                        principal,
                        on,
                        origin_session: Some(self.id.clone()),
                    };
                    self.ask_conversation(conv, msg, "typing", ctx);
                }
                None => self.send_error(
                    ctx,
                    "validation",
                    "conversation_id is required",
                    Some("typing".into()),
                ),
            },
            ClientFrame::Read {
                conversation_id,
                seq,
            } => match self.target(&principal, conversation_id) {
                Some(conv) => self.ask_conversation(conv, MarkRead { principal, seq }, "read", ctx),
                None => self.send_error(
                    ctx,
                    "validation",
                    "conversation_id is required",
                    Some("read".into()),
                ),
            },
            ClientFrame::Resume { cursors } => self.on_resume(principal, cursors, ctx),
            ClientFrame::Claim { offer_id } => match principal {
                Principal::Agent(agent) => {
                    let state = self.state.clone();
                    let fut = async move { crate::routing::claim(&state, &agent, &offer_id).await };
                    ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
                        // Success is announced to every session of the agent by
                        // `offer_closed {won: true}` and `assigned`.
                        if let Err(e) = res {
                            act.send_app_error(ctx, &e, Some("claim".into()));
                        }
                    }));
                }
                Principal::Guest(_) => {
                    self.send_error(
                        ctx,
                        "forbidden",
                        "claims are for agents",
                        Some("claim".into()),
                    );
                }
            },
            ClientFrame::Presence { status } => match &principal {
                Principal::Agent(a) => self.state.hub.set_presence(&a.id, status),
                Principal::Guest(_) => {
                    self.send_error(
                        ctx,
                        "forbidden",
                        "presence is for agents",
                        Some("presence".into()),
                    );
                }
            },
        }
    }

    /// Sends a fire-and-forget request to a conversation; only failures are reported.
    fn ask_conversation<M>(
        &mut self,
        conv: String,
        msg: M,
        what: &'static str,
        ctx: &mut ws::WebsocketContext<Self>,
    ) where
        M: Message<Result = Result<(), AppError>> + Send + Clone + 'static,
        crate::actors::conversation::ConversationActor: Handler<M>,
    {
        let state = self.state.clone();
        let fut = async move { state.hub.ask(&state, &conv, msg).await.and_then(|r| r) };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            if let Err(e) = res {
                act.send_app_error(ctx, &e, Some(what.into()));
            }
        }));
    }

    fn on_send(
        &mut self,
        principal: Principal,
        conv: String,
        client_msg_id: String,
        body: String,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        if let Principal::Guest(g) = &principal {
            // Checked before anything is stored: a limited message is never acked,
            // and the guest retries it later with the same client_msg_id.
            if let Err(e) = self
                .state
                .limits
                .guest_message(&g.conversation_id, self.peer)
            {
                tracing::info!(session = %self.id, conversation = %g.conversation_id, address = %self.peer, "guest message rate-limited");
                self.send_app_error(ctx, &e, Some(client_msg_id));
                return;
            }
        }
        let state = self.state.clone();
        let is_agent = matches!(principal, Principal::Agent(_));
        let msg = PostMessage {
            principal,
            client_msg_id: Some(client_msg_id.clone()),
            body,
        };
        let target = conv.clone();
        if let Some(cursor) = self.cursors.get_mut(conv.as_str()) {
            cursor.own_in_flight += 1;
        }
        let fut = async move { state.hub.ask(&state, &target, msg).await.and_then(|r| r) };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.answered(&conv, res, client_msg_id, is_agent, ctx);
        }));
    }

    /// The answer to one of this connection's sends: the `ack` (or error) and the
    /// sender's own copy of the message.
    fn answered(
        &mut self,
        conv: &str,
        res: Result<crate::actors::messages::Posted, AppError>,
        client_msg_id: String,
        is_agent: bool,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let key: Arc<str> = Arc::from(conv);
        if let Some(cursor) = self.cursors.get_mut(&key) {
            cursor.own_in_flight = cursor.own_in_flight.saturating_sub(1);
        }
        match res {
            Ok(posted) => {
                let view = posted.message;
                self.send_frame(
                    ctx,
                    &ServerFrame::Ack {
                        conversation_id: view.conversation_id.clone(),
                        client_msg_id,
                        id: view.id.clone(),
                        seq: view.seq,
                        duplicate: posted.duplicate,
                    },
                );
                if is_agent {
                    // An agent writing in a conversation is looking at it.
                    self.watch(key.clone(), ctx);
                }
                // The sender always sees its own message, even when fan-out would not
                // reach it; the cursor drops the copy that fan-out may also bring.
                let seq = view.seq;
                if let Some(cursor) = self.cursors.get_mut(&key) {
                    if cursor.awaiting_resume {
                        // A guest that sends before resuming starts its stream here.
                        *cursor = Cursor::at(seq - 1);
                    }
                }
                self.deliver_seq(key.clone(), seq, ServerFrame::Message(view).encode(), ctx);
            }
            Err(e) => self.send_app_error(ctx, &e, Some(client_msg_id)),
        }
        // The last answer is in and something is still missing: now it is worth a read.
        let left = self
            .cursors
            .get(&key)
            .is_some_and(|c| c.own_in_flight == 0 && c.fetching.is_none() && c.has_gap());
        if left {
            self.fill_from_db(key, ctx);
        }
    }

    // ---- exactly-once delivery -----------------------------------------------

    fn deliver_seq(
        &mut self,
        conv: Arc<str>,
        seq: i64,
        frame: ByteString,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        // First sight of this conversation: start at this message; the client loads
        // older history over HTTP or with `resume`.
        let cursor = self
            .cursors
            .entry(conv.clone())
            .or_insert_with(|| Cursor::at(seq - 1));
        if cursor.awaiting_resume {
            if cursor.pending.len() >= MAX_HELD_BEFORE_RESUME {
                cursor.pending.clear();
            }
            cursor.pending.insert(seq, frame);
            return;
        }
        if cursor.fetching.is_some() {
            // The cursor may still move (a clamp to the real end); decide when the
            // read lands.
            cursor.pending.insert(seq, frame);
            return;
        }
        if seq <= cursor.last_sent {
            return;
        }
        if seq == cursor.last_sent + 1 {
            ctx.text(frame);
            cursor.last_sent = seq;
            drain(cursor, ctx);
            return;
        }
        cursor.pending.insert(seq, frame);
        // Held for this connection's own sends only while few frames wait: a seq that
        // is not coming by either route must not hold a busy sender's stream for long.
        if cursor.own_in_flight == 0 || cursor.pending.len() >= HOLD_FOR_OWN_SENDS {
            self.fill_from_db(conv, ctx);
        }
    }

    /// Fetches every message after the cursor and sends what the client has not had.
    /// A newer fetch for the same conversation makes this one stale.
    fn fill_from_db(&mut self, conv: Arc<str>, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(after) = self.start_fetch(&conv) else {
            return;
        };
        METRICS.session_gap_reads.inc();
        let generation = self.fetch_generation;
        let state = self.state.clone();
        let id = conv.to_string();
        let fut = async move { fetch_after(&state, id, after).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.finish_fetch(&conv, generation, res, ctx);
        }));
    }

    /// Marks a fetch as under way; returns the seq to read after.
    fn start_fetch(&mut self, conv: &Arc<str>) -> Option<i64> {
        self.fetch_generation += 1;
        let cursor = self.cursors.get_mut(conv)?;
        cursor.fetching = Some(self.fetch_generation);
        Some(cursor.last_sent)
    }

    fn finish_fetch(
        &mut self,
        conv: &Arc<str>,
        generation: u64,
        result: Result<Fetched, AppError>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Some(cursor) = self.cursors.get_mut(conv) else {
            return;
        };
        if cursor.fetching != Some(generation) {
            return;
        }
        cursor.fetching = None;
        let fetched = match result {
            Ok(fetched) => fetched,
            Err(e) => {
                self.send_app_error(ctx, &e, Some(conv.to_string()));
                return;
            }
        };
        if cursor.last_sent > fetched.last_seq {
            // A cursor past the end (a client's stale or invented state) would
            // swallow the next messages; the database says where the end is.
            cursor.last_sent = fetched.last_seq;
            cursor.base = cursor.base.min(fetched.last_seq);
        }
        for m in fetched.messages {
            if m.seq <= cursor.last_sent {
                continue;
            }
            if m.seq != cursor.last_sent + 1 {
                // The database never has gaps (seq is assigned in the commit); if it
                // ever did, moving on beats stalling the conversation forever.
                tracing::error!(conversation = %conv, expected = cursor.last_sent + 1, got = m.seq, "gap in stored seq");
            }
            cursor.last_sent = m.seq;
            cursor.pending.remove(&m.seq);
            ctx.text(ServerFrame::Message(m).encode());
        }
        drain(cursor, ctx);
        // Frames that arrived while reading, beyond what the read saw, need another read.
        if cursor.has_gap() {
            self.fill_from_db(conv.clone(), ctx);
        }
    }

    fn on_resume(
        &mut self,
        principal: Principal,
        cursors: BTreeMap<String, i64>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        if cursors.len() > MAX_RESUME_CONVERSATIONS {
            self.send_error(
                ctx,
                "validation",
                format!("resume at most {MAX_RESUME_CONVERSATIONS} conversations at once"),
                Some("resume".into()),
            );
            return;
        }
        let state = self.state.clone();
        let authorize = async move {
            let mut allowed = Vec::new();
            let mut denied = Vec::new();
            for (conv, last) in cursors {
                let ask = Authorize {
                    principal: principal.clone(),
                };
                match state.hub.ask(&state, &conv, ask).await.and_then(|r| r) {
                    Ok(_) => allowed.push((conv, last.max(0))),
                    Err(e) => denied.push((conv, e)),
                }
            }
            (allowed, denied)
        };
        ctx.spawn(
            authorize
                .into_actor(self)
                .map(|(allowed, denied), act, ctx| {
                    for (conv, e) in denied {
                        act.send_app_error(ctx, &e, Some(conv));
                    }
                    // Watch first, then read: anything committed meanwhile either is in the
                    // read or arrives live and waits in `pending` until the read is applied.
                    let mut fetches = Vec::with_capacity(allowed.len());
                    for (conv, declared) in allowed {
                        let key: Arc<str> = Arc::from(conv.as_str());
                        match act.cursors.get_mut(&key) {
                            None => {
                                act.cursors.insert(key.clone(), Cursor::at(declared));
                            }
                            Some(cursor) if cursor.awaiting_resume || declared < cursor.base => {
                                // The client lacks something older than what this connection
                                // sent: replay from its declaration, in order (frames it got
                                // live before this resume may come again).
                                cursor.awaiting_resume = false;
                                cursor.last_sent = declared;
                                cursor.base = declared;
                            }
                            Some(cursor) => {
                                // It holds everything up to `declared`, and was sent
                                // base+1..=last_sent here: nothing to repeat.
                                cursor.last_sent = cursor.last_sent.max(declared);
                            }
                        }
                        act.watch(key.clone(), ctx);
                        if let Some(after) = act.start_fetch(&key) {
                            fetches.push((key, act.fetch_generation, after));
                        }
                    }
                    let state = act.state.clone();
                    let wanted = fetches
                        .iter()
                        .map(|(key, _, after)| (key.to_string(), *after))
                        .collect();
                    let fetch = async move { fetch_many(&state, wanted).await };
                    ctx.spawn(fetch.into_actor(act).map(move |read, act, ctx| {
                        let mut now = BTreeMap::new();
                        let results: Vec<Result<Fetched, AppError>> = match read {
                            Ok(results) => results,
                            // No connection at all: every conversation gets the error.
                            Err(e) => fetches
                                .iter()
                                .map(|_| Err(AppError::Unavailable(e.public_message())))
                                .collect(),
                        };
                        for ((key, generation, _), res) in fetches.into_iter().zip(results) {
                            act.finish_fetch(&key, generation, res, ctx);
                            if let Some(cursor) = act.cursors.get(&key) {
                                now.insert(key.to_string(), cursor.last_sent);
                            }
                        }
                        act.send_frame(ctx, &ServerFrame::Resumed { cursors: now });
                    }));
                }),
        );
    }

    // ---- heartbeat --------------------------------------------------------------

    fn tick(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.overflow.load(Ordering::Relaxed) {
            self.close(ctx, 1013, "slow consumer: reconnect and resume");
            return;
        }
        if self.last_heard.elapsed() > self.state.config.client_timeout {
            tracing::debug!(session = %self.id, "heartbeat timeout");
            self.close(ctx, 1001, "heartbeat timeout");
            return;
        }
        ctx.ping(b"");
    }
}

/// Whether a protocol I/O error is actix-web-actors' report of a text frame that is
/// not UTF-8. It wraps `std::str::Utf8Error` into `io::Error::new(Other, e.to_string())`
/// (actix-web-actors 4.3.1, `ws.rs`, `WsStream::poll_next`), so its text is the only
/// handle; every other I/O error on this path is a broken connection.
fn is_invalid_utf8(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::Other
    ) && e.to_string().contains("utf-8")
}

/// Sends held frames that are now next in line.
fn drain(cursor: &mut Cursor, ctx: &mut ws::WebsocketContext<SessionActor>) {
    while let Some(entry) = cursor.pending.first_entry() {
        let seq = *entry.key();
        if seq <= cursor.last_sent {
            entry.remove();
        } else if seq == cursor.last_sent + 1 {
            ctx.text(entry.remove());
            cursor.last_sent = seq;
        } else {
            break;
        }
    }
}

/// What a replay read found: every message after the cursor, ascending, and the
/// conversation's highest stored seq.
struct Fetched {
    messages: Vec<MessageView>,
    last_seq: i64,
}

/// Every message of a conversation after `after`, read page by page, and the
/// conversation's current `last_seq`. Blocking: runs inside `Db::run`.
fn read_after(
    c: &mut crate::db::DbConn,
    conversation_id: &str,
    after: i64,
) -> Result<Fetched, AppError> {
    let last_seq = conversations::last_seq(c, conversation_id)?;
    let mut out = Vec::new();
    let mut from = after;
    loop {
        let (rows, more) = messages::page(c, conversation_id, Page::After(from), REPLAY_PAGE)?;
        if let Some(last) = rows.last() {
            from = last.seq;
        }
        out.extend(rows.into_iter().map(messages::MessageRow::view));
        if !more {
            // A message committed after `last_seq` was read may be in the pages.
            let newest = out.last().map_or(0, |m| m.seq);
            return Ok(Fetched {
                messages: out,
                last_seq: last_seq.max(newest),
            });
        }
    }
}

/// [`read_after`] for one conversation, off the actor's thread.
async fn fetch_after(
    state: &AppState,
    conversation_id: String,
    after: i64,
) -> Result<Fetched, AppError> {
    state
        .db
        .run(move |c| read_after(c, &conversation_id, after))
        .await
}

/// [`read_after`] for several conversations in one blocking task; each has its own
/// result, so one missing conversation does not spoil the others.
async fn fetch_many(
    state: &AppState,
    wanted: Vec<(String, i64)>,
) -> Result<Vec<Result<Fetched, AppError>>, AppError> {
    state
        .db
        .run(move |c| {
            Ok(wanted
                .iter()
                .map(|(id, after)| read_after(c, id, *after))
                .collect())
        })
        .await
}

impl Actor for SessionActor {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.state.config.ws_outbound_queue);
        self.state
            .hub
            .register_session(self.id.clone(), ctx.address().recipient());
        self.state
            .hub
            .register_catch_up(self.id.clone(), ctx.address().recipient());
        ctx.run_interval(self.state.config.heartbeat, |act, ctx| act.tick(ctx));
        match self.preauthenticated.take() {
            Some(principal) => self.authenticate(Credentials::Principal(principal), ctx),
            None => {
                ctx.run_later(self.state.config.auth_timeout, |act, ctx| {
                    if matches!(act.auth, Auth::Waiting) {
                        act.send_error(ctx, "unauthorized", "no auth frame in time", None);
                        act.close(ctx, 1008, "authentication timeout");
                    }
                });
            }
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        let hub = &self.state.hub;
        hub.unregister_session(&self.id);
        for conv in &self.watching {
            hub.unwatch(conv, &self.id);
        }
        if let Some(Principal::Agent(a)) = self.principal() {
            hub.detach_agent_session(&a.id, self.id.clone());
        }
        tracing::debug!(session = %self.id, "session closed");
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for SessionActor {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        let msg = match item {
            Ok(msg) => msg,
            Err(ws::ProtocolError::Overflow) => {
                self.send_error(
                    ctx,
                    "frame_too_large",
                    "frame too large to read; closing",
                    None,
                );
                self.close(ctx, 1009, "frame too large");
                return;
            }
            Err(ws::ProtocolError::Io(e)) if is_invalid_utf8(&e) => {
                self.fail_invalid_utf8(ctx);
                return;
            }
            Err(e) => {
                tracing::debug!(session = %self.id, error = %e, "protocol error");
                self.close(ctx, 1002, "protocol error");
                return;
            }
        };
        match msg {
            ws::Message::Text(text) => self.handle_text(&text, ctx),
            ws::Message::Binary(_) => {
                self.send_error(
                    ctx,
                    "unsupported_frame",
                    "binary frames are not supported; send JSON text",
                    None,
                );
            }
            ws::Message::Ping(payload) => ctx.pong(&payload),
            ws::Message::Pong(_) | ws::Message::Nop => {}
            ws::Message::Close(reason) => {
                self.closing = true;
                ctx.close(reason);
                ctx.stop();
            }
            ws::Message::Continuation(item) => self.handle_fragment(item, ctx),
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl SessionActor {
    /// A text message that is not UTF-8. RFC 6455 §8.1 says the endpoint MUST fail
    /// the connection, and §7.4.1 names the close code: 1007 (inconsistent data).
    /// The client gets an `error` frame saying why, then the close.
    fn fail_invalid_utf8(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        tracing::debug!(session = %self.id, "text frame is not UTF-8; closing with 1007");
        self.send_error(
            ctx,
            "bad_frame",
            "text frames must be valid UTF-8; closing the connection",
            None,
        );
        self.close(ctx, 1007, "invalid UTF-8 in a text frame");
    }

    /// Reassembles fragmented text messages (rare from browsers, legal in RFC 6455),
    /// holding at most `max_frame_bytes`.
    fn handle_fragment(&mut self, item: Item, ctx: &mut ws::WebsocketContext<Self>) {
        let limit = self.state.config.max_frame_bytes;
        let (bytes, last) = match item {
            Item::FirstText(bytes) => {
                self.fragment = Some(Fragment::Text(Vec::new()));
                (bytes, false)
            }
            Item::FirstBinary(_) => {
                self.fragment = Some(Fragment::Skip);
                self.send_error(
                    ctx,
                    "unsupported_frame",
                    "binary frames are not supported; send JSON text",
                    None,
                );
                return;
            }
            Item::Continue(bytes) => (bytes, false),
            Item::Last(bytes) => (bytes, true),
        };
        match &mut self.fragment {
            Some(Fragment::Text(buf)) if buf.len() + bytes.len() <= limit => {
                buf.extend_from_slice(&bytes)
            }
            Some(Fragment::Text(_)) => {
                self.fragment = (!last).then_some(Fragment::Skip);
                self.send_error(
                    ctx,
                    "frame_too_large",
                    format!("This message is too large to send (at most {limit} bytes)."),
                    None,
                );
                return;
            }
            Some(Fragment::Skip) => {
                if last {
                    self.fragment = None;
                }
                return;
            }
            None => {
                self.send_error(
                    ctx,
                    "bad_frame",
                    "continuation frame without a first fragment",
                    None,
                );
                return;
            }
        }
        if last {
            if let Some(Fragment::Text(buf)) = self.fragment.take() {
                match String::from_utf8(buf) {
                    Ok(text) => self.handle_text(&text, ctx),
                    Err(_) => self.fail_invalid_utf8(ctx),
                }
            }
        }
    }
}

impl Handler<Deliver> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        if self.overflow.load(Ordering::Relaxed) {
            self.close(ctx, 1013, "slow consumer: reconnect and resume");
            return;
        }
        match (msg.conversation_id, msg.seq) {
            (Some(conv), Some(seq)) => self.deliver_seq(conv, seq, msg.frame, ctx),
            _ => ctx.text(msg.frame),
        }
    }
}

impl Handler<CatchUp> for SessionActor {
    type Result = ();

    /// Re-reads every conversation this connection follows (a guest's before its
    /// first `resume` excepted: the `resume` reads them anyway). A fetch already under
    /// way may have read before the missed commit, so a new one supersedes it.
    fn handle(&mut self, _: CatchUp, ctx: &mut Self::Context) {
        self.recheck_access(ctx);
        let convs: Vec<Arc<str>> = self
            .cursors
            .iter()
            .filter(|(_, c)| !c.awaiting_resume)
            .map(|(k, _)| k.clone())
            .collect();
        for conv in convs {
            self.fill_from_db(conv, ctx);
        }
    }
}

impl SessionActor {
    /// An agent session re-reads its account after the bus may have dropped events
    /// (a missed [`crate::bus::BusEvent::AgentRevoked`] among them) and closes when the
    /// account was deactivated or its tokens revoked meanwhile.
    fn recheck_access(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(Principal::Agent(info)) = self.principal() else {
            return;
        };
        let (id, epoch) = (info.id.clone(), info.token_epoch);
        let db = self.state.db.clone();
        let fut = async move {
            db.run(move |c| crate::store::accounts::active_agent(c, &id))
                .await
        };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(now) if now.token_epoch == epoch => {}
            Ok(_) | Err(AppError::Unauthorized(_)) => act.close(ctx, 1008, REVOKED_REASON),
            // The database is down: the next catch-up checks again.
            Err(_) => {}
        }));
    }
}

impl Handler<CloseSession> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: CloseSession, ctx: &mut Self::Context) {
        self.close(ctx, msg.code, &msg.reason);
    }
}
