//! WebSocket clients for the three chat targets, speaking each one's protocol:
//! Switchboard's JSON frames, Engine.IO v4 / Socket.IO v5 text packets, and the raw
//! hub's bare text. A guest connection sends and counts acknowledgements; an agent
//! connection receives and measures how long each message took from its intended
//! send time (open-loop: the schedule, not the actual send, so a stalled sender
//! cannot hide latency).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::stats::Latency;

/// Which server a client talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Switchboard (`/ws/guest`, `/ws/agent`).
    Ours,
    /// The Node Socket.IO peer.
    SocketIo,
    /// The raw tokio-tungstenite hub.
    Raw,
}

impl Kind {
    /// Short name used in the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "switchboard",
            Kind::SocketIo => "socketio",
            Kind::Raw => "raw_hub",
        }
    }
}

/// Nanoseconds since the first call (the bench's clock for embedded timestamps).
pub fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A WebSocket over TCP from `src` (a 127.0.0.x address, so that many thousands of
/// connections do not run out of ephemeral ports) with small client buffers.
pub async fn connect(
    addr: SocketAddr,
    path: &str,
    src: Option<Ipv4Addr>,
) -> anyhow::Result<WebSocketStream<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = src {
        socket.bind(SocketAddr::from((ip, 0)))?;
    }
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let url = format!("ws://{addr}{path}");
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config)).await?;
    Ok(ws)
}

/// The path to open for a target.
fn path(kind: Kind, agent: bool) -> &'static str {
    match (kind, agent) {
        (Kind::Ours, true) => "/ws/agent",
        (Kind::Ours, false) => "/ws/guest",
        (Kind::SocketIo, _) => "/socket.io/?EIO=4&transport=websocket",
        (Kind::Raw, _) => "/",
    }
}

/// Waits for a text frame satisfying `pred`, answering Engine.IO pings on the way.
async fn wait_text(
    ws: &mut WebSocketStream<TcpStream>,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let deadline = Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout(deadline, ws.next())
            .await
            .with_context(|| format!("waiting for {what}"))?
            .with_context(|| format!("closed while waiting for {what}"))??;
        if let Message::Text(t) = msg {
            if pred(t.as_str()) {
                return Ok(t.to_string());
            }
            if t.as_str() == "2" {
                ws.send(Message::text("3")).await?;
            } else if t.as_str().contains(r#""type":"error""#) {
                bail!("error while waiting for {what}: {t}");
            }
        }
    }
}

/// Opens a connection and does the target's handshake: Switchboard `auth` →
/// `hello`; Socket.IO open → `40{auth}` → `40`; raw hub role frame.
/// `credential` is the token (ours) or the conversation (peers); `None` for agents
/// of the peers.
pub async fn open(
    kind: Kind,
    addr: SocketAddr,
    agent: bool,
    credential: &str,
    src: Option<Ipv4Addr>,
) -> anyhow::Result<WebSocketStream<TcpStream>> {
    let mut ws = connect(addr, path(kind, agent), src).await?;
    match kind {
        Kind::Ours => {
            let auth = serde_json::json!({"type": "auth", "token": credential}).to_string();
            ws.send(Message::text(auth)).await?;
            wait_text(&mut ws, "hello", |t| t.contains(r#""type":"hello""#)).await?;
        }
        Kind::SocketIo => {
            wait_text(&mut ws, "engine.io open", |t| t.starts_with('0')).await?;
            let auth = if agent {
                serde_json::json!({"role": "agent"})
            } else {
                serde_json::json!({"role": "guest", "conversation": credential})
            };
            ws.send(Message::text(format!("40{auth}"))).await?;
            wait_text(&mut ws, "socket.io connect", |t| t.starts_with("40")).await?;
        }
        Kind::Raw => {
            ws.send(Message::text(if agent { "agent" } else { "guest" }))
                .await?;
        }
    }
    Ok(ws)
}

/// Counters shared by every guest connection of a run.
#[derive(Default)]
pub struct GuestTotals {
    /// Sends written.
    pub sent: AtomicU64,
    /// Acknowledgements received (ours: `ack`; Socket.IO: `43…`; raw: `ack`).
    pub acked: AtomicU64,
    /// Error answers (ours: `error` frames; Socket.IO: an ack carrying `error`).
    pub errors: AtomicU64,
    /// Connections that closed or failed while in use.
    pub closed: AtomicU64,
}

/// One guest: sends messages into its conversation.
pub struct Guest {
    kind: Kind,
    conversation: Arc<str>,
    tx: mpsc::UnboundedSender<Message>,
    counter: AtomicU64,
    /// Free slots of the closed-loop window (an ack frees one).
    pub window: Arc<Semaphore>,
}

impl Guest {
    /// Connects a guest of `conversation` (`token` for ours).
    pub async fn connect(
        kind: Kind,
        addr: SocketAddr,
        conversation: &str,
        token: &str,
        totals: Arc<GuestTotals>,
    ) -> anyhow::Result<Self> {
        let credential = if kind == Kind::Ours {
            token
        } else {
            conversation
        };
        let ws = open(kind, addr, false, credential, None).await?;
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        let window = Arc::new(Semaphore::new(0));
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if sink.feed(m).await.is_err() {
                    return;
                }
                while let Ok(m) = rx.try_recv() {
                    if sink.feed(m).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
        });
        let reader_tx = tx.clone();
        let reader_window = window.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(t) = msg else { continue };
                let t = t.as_str();
                let answered = match kind {
                    Kind::Ours => {
                        if t.contains(r#""type":"ack""#) {
                            totals.acked.fetch_add(1, Ordering::Relaxed);
                            true
                        } else if t.contains(r#""type":"error""#) {
                            totals.errors.fetch_add(1, Ordering::Relaxed);
                            true
                        } else {
                            false
                        }
                    }
                    Kind::SocketIo => {
                        if t == "2" {
                            let _ = reader_tx.send(Message::text("3"));
                            false
                        } else if t.starts_with("43") {
                            if t.contains("\"error\"") {
                                totals.errors.fetch_add(1, Ordering::Relaxed);
                            } else {
                                totals.acked.fetch_add(1, Ordering::Relaxed);
                            }
                            true
                        } else {
                            false
                        }
                    }
                    Kind::Raw => {
                        if t == "ack" {
                            totals.acked.fetch_add(1, Ordering::Relaxed);
                            true
                        } else {
                            false
                        }
                    }
                };
                if answered {
                    reader_window.add_permits(1);
                }
            }
            totals.closed.fetch_add(1, Ordering::Relaxed);
        });
        Ok(Self {
            kind,
            conversation: conversation.into(),
            tx,
            counter: AtomicU64::new(0),
            window,
        })
    }

    /// Sends one message stamped with `intended_ns` (see [`now_ns`]); `tag` keeps
    /// client message ids unique across phases.
    pub fn send(&self, tag: &str, intended_ns: u64, totals: &GuestTotals) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let body = format!(
            "bench:{intended_ns}: the quick brown fox jumps over the lazy dog, again and again"
        );
        let id = format!("{tag}-{n}");
        let text = match self.kind {
            Kind::Ours => format!(
                r#"{{"type":"send","conversation_id":"{}","client_msg_id":"{id}","body":"{body}"}}"#,
                self.conversation
            ),
            Kind::SocketIo => format!(
                r#"42{n}["send",{{"id":"{}-{id}","b":"{body}"}}]"#,
                self.conversation
            ),
            Kind::Raw => body,
        };
        totals.sent.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(Message::text(text));
    }
}

/// What the agent side measures; reset between phases.
pub struct AgentProbe {
    /// Messages received (any phase).
    pub received: AtomicU64,
    /// Received messages stamped inside the measurement window.
    pub in_window: AtomicU64,
    window_from: AtomicU64,
    window_until: AtomicU64,
    measuring: AtomicBool,
    /// Latencies of messages stamped inside the window.
    pub latency: Mutex<Latency>,
    /// Whether the agent's connection closed.
    pub closed: AtomicBool,
}

impl AgentProbe {
    fn new() -> Self {
        Self {
            received: AtomicU64::new(0),
            in_window: AtomicU64::new(0),
            window_from: AtomicU64::new(0),
            window_until: AtomicU64::new(0),
            measuring: AtomicBool::new(false),
            latency: Mutex::new(Latency::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// Starts measuring messages stamped in `[from_ns, until_ns)`.
    pub fn measure(&self, from_ns: u64, until_ns: u64) {
        if let Ok(mut l) = self.latency.lock() {
            *l = Latency::new();
        }
        self.in_window.store(0, Ordering::SeqCst);
        self.window_from.store(from_ns, Ordering::SeqCst);
        self.window_until.store(until_ns, Ordering::SeqCst);
        self.measuring.store(true, Ordering::SeqCst);
    }

    /// Stops measuring; returns the histogram.
    pub fn take(&self) -> Latency {
        self.measuring.store(false, Ordering::SeqCst);
        self.latency.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn observe(&self, stamp_ns: u64) {
        self.received.fetch_add(1, Ordering::Relaxed);
        if !self.measuring.load(Ordering::Relaxed) {
            return;
        }
        if stamp_ns < self.window_from.load(Ordering::Relaxed)
            || stamp_ns >= self.window_until.load(Ordering::Relaxed)
        {
            return;
        }
        let lat_us = now_ns().saturating_sub(stamp_ns) / 1000;
        self.in_window.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = self.latency.lock() {
            l.record_us(lat_us);
        }
    }
}

/// The stamp of a `bench:<ns>:` body inside any frame.
fn stamp(text: &str) -> Option<u64> {
    let start = text.find("bench:")? + "bench:".len();
    let rest = &text[start..];
    let end = rest.find(':')?;
    rest[..end].parse().ok()
}

/// Connects an agent (token for ours) whose every received message feeds the probe.
pub async fn agent(kind: Kind, addr: SocketAddr, token: &str) -> anyhow::Result<Arc<AgentProbe>> {
    let ws = open(kind, addr, true, token, None).await?;
    let probe = Arc::new(AgentProbe::new());
    let p = probe.clone();
    let (mut sink, mut stream) = ws.split();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            let Message::Text(t) = msg else { continue };
            let t = t.as_str();
            if kind == Kind::SocketIo && t == "2" {
                if sink.send(Message::text("3")).await.is_err() {
                    break;
                }
                continue;
            }
            let is_message = match kind {
                Kind::Ours => t.contains(r#""type":"message""#),
                Kind::SocketIo => t.starts_with(r#"42["message""#),
                Kind::Raw => true,
            };
            if is_message {
                if let Some(s) = stamp(t) {
                    p.observe(s);
                }
            }
        }
        p.closed.store(true, Ordering::SeqCst);
    });
    Ok(probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_found_in_every_protocol() {
        assert_eq!(
            stamp(r#"{"type":"message","body":"bench:123: fox"}"#),
            Some(123)
        );
        assert_eq!(stamp(r#"42["message",{"b":"bench:77:x"}]"#), Some(77));
        assert_eq!(stamp("bench:5:"), Some(5));
        assert_eq!(stamp("no stamp"), None);
    }
}
