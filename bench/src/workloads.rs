//! The workloads. Each function measures one target; the orchestrator
//! (`main.rs`) runs ours, the peer and the ceiling one after the other inside a
//! round and turns the results into ratios.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::clients::{self, now_ns, AgentProbe, Guest, GuestTotals, Kind};
use crate::stats::Latency;

/// Admin credentials the hub is started with.
pub const ADMIN_EMAIL: &str = "admin@bench.local";
/// See [`ADMIN_EMAIL`].
pub const ADMIN_PASSWORD: &str = "bench-admin-password-1";
/// `WHATSAPP_APP_SECRET` the hub is started with.
pub const APP_SECRET: &str = "bench-meta-app-secret";

/// An HTTP client for the hub's API.
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// A client for `addr`.
    pub fn new(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(64)
                .build()?,
            base: format!("http://{addr}"),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status} {text}");
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    /// POST with JSON.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// PUT with JSON.
    pub async fn put(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Value> {
        self.call(reqwest::Method::PUT, path, token, Some(body))
            .await
    }

    /// GET.
    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    /// Logs in; returns the token.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let v = self
            .post(
                "/api/auth/login",
                None,
                &json!({"email": email, "password": password}),
            )
            .await?;
        Ok(v["token"].as_str().context("token")?.to_string())
    }

    /// The admin's token.
    pub async fn admin(&self) -> anyhow::Result<String> {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// The id of the team with `slug`.
    pub async fn team_id(&self, admin: &str, slug: &str) -> anyhow::Result<String> {
        let v = self.get("/api/teams", Some(admin)).await?;
        v["teams"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["slug"] == slug)
            .and_then(|t| t["id"].as_str())
            .map(str::to_string)
            .context("team not found")
    }

    /// Creates an agent in `team`; returns its token.
    pub async fn agent(&self, admin: &str, team: &str, n: usize) -> anyhow::Result<String> {
        let email = format!("agent{n}-{}@bench.local", now_ns());
        let password = "bench-agent-password";
        self.post(
            "/api/agents",
            Some(admin),
            &json!({"email": email, "name": format!("Agent {n}"), "password": password, "role": "agent", "team_ids": [team]}),
        )
        .await?;
        self.login(&email, password).await
    }

    /// `n` widget guests (conversation id, guest token) in `team` (slug).
    pub async fn guests(&self, team: &str, n: usize) -> anyhow::Result<Vec<(String, String)>> {
        let results: Vec<anyhow::Result<(String, String)>> = stream::iter(0..n)
            .map(|i| async move {
                let v = self
                    .post(
                        "/api/widget/sessions",
                        None,
                        &json!({"team": team, "name": format!("Visitor {i}"), "source": "bench"}),
                    )
                    .await?;
                Ok((
                    v["conversation_id"]
                        .as_str()
                        .context("conversation_id")?
                        .to_string(),
                    v["guest_token"]
                        .as_str()
                        .context("guest_token")?
                        .to_string(),
                ))
            })
            .buffer_unordered(16)
            .collect()
            .await;
        results.into_iter().collect()
    }
}

/// The connected clients of one chat target: guests (one per conversation) and
/// one agent that sees every message.
pub struct Chat {
    /// Which target.
    pub kind: Kind,
    guests: Vec<Arc<Guest>>,
    totals: Arc<GuestTotals>,
    agent: Arc<AgentProbe>,
    phase: AtomicU64,
}

impl Chat {
    /// Connects `convs` guests and the agent, then sends one message per
    /// conversation and waits for every ack (conversations, actors and leads exist
    /// before anything is measured).
    pub async fn connect(
        kind: Kind,
        addr: SocketAddr,
        convs: &[(String, String)],
        agent_token: &str,
    ) -> anyhow::Result<Self> {
        let agent = clients::agent(kind, addr, agent_token).await?;
        let totals = Arc::new(GuestTotals::default());
        let guests: Vec<anyhow::Result<Guest>> = stream::iter(convs.iter().cloned())
            .map(|(c, t)| {
                let totals = totals.clone();
                async move { Guest::connect(kind, addr, &c, &t, totals).await }
            })
            .buffered(32)
            .collect()
            .await;
        let guests = guests
            .into_iter()
            .map(|g| g.map(Arc::new))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let chat = Self {
            kind,
            guests,
            totals,
            agent,
            phase: AtomicU64::new(0),
        };
        let tag = chat.tag();
        for g in &chat.guests {
            g.send(&tag, now_ns(), &chat.totals);
        }
        chat.drain(Duration::from_secs(60)).await?;
        Ok(chat)
    }

    fn tag(&self) -> String {
        format!("p{}", self.phase.fetch_add(1, Ordering::Relaxed))
    }

    /// Waits until every send is answered.
    async fn drain(&self, patience: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + patience;
        loop {
            let sent = self.totals.sent.load(Ordering::SeqCst);
            let answered = self.totals.acked.load(Ordering::SeqCst)
                + self.totals.errors.load(Ordering::SeqCst);
            if answered >= sent {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: {} of {sent} sends unanswered",
                    self.kind.name(),
                    sent - answered
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Open-loop sending at `rate` msgs/s round-robin over the conversations:
    /// latency from each message's scheduled send time to the agent receiving it,
    /// over `duration` after `warmup`.
    pub async fn latency(
        &self,
        rate: f64,
        warmup: Duration,
        duration: Duration,
    ) -> anyhow::Result<Value> {
        let tag = self.tag();
        let start_ns = now_ns();
        let from = start_ns + warmup.as_nanos() as u64;
        let until = from + duration.as_nanos() as u64;
        self.agent.measure(from, until);
        let total = warmup + duration;
        let start = Instant::now();
        let mut sent: u64 = 0;
        let mut in_window: u64 = 0;
        let interval_ns = 1e9 / rate;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let n = self.guests.len() as u64;
        loop {
            tick.tick().await;
            let elapsed = start.elapsed();
            let due = ((elapsed.min(total).as_secs_f64()) * rate) as u64;
            while sent < due {
                let intended = start_ns + (sent as f64 * interval_ns) as u64;
                if intended >= from && intended < until {
                    in_window += 1;
                }
                self.guests[(sent % n) as usize].send(&tag, intended, &self.totals);
                sent += 1;
            }
            if elapsed >= total {
                break;
            }
        }
        // Grace: whatever has not arrived 5 s after the end counts as lost.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.agent.in_window.load(Ordering::SeqCst) < in_window && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let hist = self.agent.take();
        let received = self.agent.in_window.load(Ordering::SeqCst);
        let _ = self.drain(Duration::from_secs(120)).await;
        let mut v = hist.summary();
        v["rate"] = json!(rate);
        v["expected"] = json!(in_window);
        v["received"] = json!(received);
        v["lost"] = json!(in_window.saturating_sub(received));
        v["agent_closed"] = json!(self.agent.closed.load(Ordering::SeqCst));
        Ok(v)
    }

    /// Closed-loop sending: every conversation keeps `window` sends in flight for
    /// `duration`; then every outstanding send is answered. Returns acks over the
    /// measured span, all acks of the phase (for verification) and errors.
    pub async fn durable(
        &self,
        window: usize,
        duration: Duration,
    ) -> anyhow::Result<(f64, u64, u64)> {
        let tag: Arc<str> = self.tag().into();
        let acked0 = self.totals.acked.load(Ordering::SeqCst);
        let errors0 = self.totals.errors.load(Ordering::SeqCst);
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for g in &self.guests {
            g.window.add_permits(window);
            let (g, stop, tag, totals) =
                (g.clone(), stop.clone(), tag.clone(), self.totals.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match g.window.acquire().await {
                        Ok(p) => p.forget(),
                        Err(_) => break,
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    g.send(&tag, now_ns(), &totals);
                }
            }));
        }
        let start = Instant::now();
        tokio::time::sleep(duration).await;
        let acked_mid = self.totals.acked.load(Ordering::SeqCst);
        let elapsed = start.elapsed().as_secs_f64();
        stop.store(true, Ordering::SeqCst);
        for g in &self.guests {
            g.window.add_permits(1);
        }
        for t in tasks {
            let _ = t.await;
        }
        self.drain(Duration::from_secs(120)).await?;
        for g in &self.guests {
            // Take back every permit left so the next phase starts from zero.
            while let Ok(p) = g.window.try_acquire() {
                p.forget();
            }
        }
        let acked = self.totals.acked.load(Ordering::SeqCst);
        Ok((
            (acked_mid - acked0) as f64 / elapsed,
            acked - acked0,
            self.totals.errors.load(Ordering::SeqCst) - errors0,
        ))
    }

    /// Messages the agent received so far.
    pub fn agent_received(&self) -> u64 {
        self.agent.received.load(Ordering::SeqCst)
    }
}

/// Which server the connections workload opens idle sessions on.
#[derive(Clone, Copy, Debug)]
pub enum ConnTarget {
    /// Switchboard agent sessions (authenticated: `auth` → `hello`).
    Ours,
    /// The raw tokio-tungstenite hub (4 KiB buffers).
    Raw,
    /// Node `ws`.
    NodeWs,
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(1024)
}

/// Opens idle sessions up to each of `levels`, measuring the server's RSS growth
/// per session and the connect rate at each level.
pub async fn connections(
    target: ConnTarget,
    addr: SocketAddr,
    token: &str,
    levels: &[usize],
    pid: u32,
) -> anyhow::Result<Value> {
    let limit = open_files_limit().saturating_sub(300) as usize;
    let mut handles = Vec::new();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = crate::procs::rss_bytes(pid)?;
    let mut out = Vec::new();
    let mut failures = 0usize;
    for &level in levels {
        let level = level.min(limit);
        if level <= handles.len() {
            continue;
        }
        let from = handles.len();
        let start = Instant::now();
        let token: Arc<str> = token.into();
        let opened: Vec<anyhow::Result<tokio::task::JoinHandle<()>>> = stream::iter(from..level)
            .map(|i| {
                let token = token.clone();
                async move {
                    // 127.0.0.2, .3, …: 15,000 connections per source address.
                    let src = Ipv4Addr::new(127, 0, 0, 2 + (i / 15_000) as u8);
                    let ws = match target {
                        ConnTarget::Ours => {
                            clients::open(Kind::Ours, addr, true, &token, Some(src)).await?
                        }
                        ConnTarget::Raw => {
                            clients::open(Kind::Raw, addr, false, "", Some(src)).await?
                        }
                        ConnTarget::NodeWs => clients::connect(addr, "/", Some(src)).await?,
                    };
                    Ok(tokio::spawn(async move {
                        let (mut sink, mut stream) = ws.split();
                        while let Some(Ok(m)) = stream.next().await {
                            if let Message::Ping(p) = m {
                                let _ = sink.send(Message::Pong(p)).await;
                            }
                        }
                    }))
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        let elapsed = start.elapsed().as_secs_f64();
        for h in opened {
            match h {
                Ok(h) => handles.push(h),
                Err(_) => failures += 1,
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = crate::procs::rss_bytes(pid)?;
        let n = handles.len();
        out.push(json!({
            "sessions": n,
            "rss_bytes": rss,
            "rss_per_session_bytes": (rss.saturating_sub(base)) as f64 / n.max(1) as f64,
            "connect_per_s": (n - from) as f64 / elapsed,
        }));
    }
    for h in &handles {
        h.abort();
    }
    Ok(json!({"base_rss_bytes": base, "failures": failures, "levels": out}))
}

/// `X-Hub-Signature-256` of `body` with the hub's app secret (Meta: HMAC-SHA256,
/// hex, `sha256=` prefix).
pub fn meta_signature(body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    match Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

/// A signed Meta text webhook: message `wamid` from `phone` with `text`.
pub fn meta_webhook(phone: &str, wamid: &str, text: &str) -> (Vec<u8>, String) {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Bench Customer"}, "wa_id": phone}],
        "messages": [{"from": phone, "id": wamid, "timestamp": "1749416383", "type": "text", "text": {"body": text}}]
    }}]}]})
    .to_string()
    .into_bytes();
    let sig = meta_signature(&body);
    (body, sig)
}

/// Posts webhooks to `url`.
pub struct Webhooks {
    http: reqwest::Client,
    url: String,
    next: AtomicU64,
    tag: u64,
    phones: u64,
}

impl Webhooks {
    /// Webhooks from `phones` different customers.
    pub fn new(url: String, phones: u64) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(256)
                .build()?,
            url,
            next: AtomicU64::new(0),
            tag: now_ns(),
            phones,
        }))
    }

    /// One webhook; whether it got a 200.
    pub async fn post_one(&self, stamp_ns: u64) -> bool {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let phone = format!("1650555{:04}", n % self.phones);
        let (body, sig) = meta_webhook(
            &phone,
            &format!("wamid.bench-{}-{n}", self.tag),
            &format!("bench:{stamp_ns}: is this still available?"),
        );
        match self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sig)
            .body(body)
            .send()
            .await
        {
            Ok(r) => {
                let ok = r.status().as_u16() == 200;
                let _ = r.bytes().await;
                ok
            }
            Err(_) => false,
        }
    }

    /// Every phone once (contacts and conversations exist before measuring).
    pub async fn warm(self: &Arc<Self>) -> u64 {
        let ok: Vec<bool> = stream::iter(0..self.phones)
            .map(|_| {
                let me = self.clone();
                async move { me.post_one(now_ns()).await }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        ok.into_iter().filter(|b| *b).count() as u64
    }

    /// Closed loop with `concurrency` requests in flight for `duration`:
    /// (200s per second, 200s, failures).
    pub async fn throughput(
        self: &Arc<Self>,
        concurrency: usize,
        duration: Duration,
    ) -> (f64, u64, u64) {
        let ok = Arc::new(AtomicU64::new(0));
        let bad = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let until = start + duration;
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (me, ok, bad) = (self.clone(), ok.clone(), bad.clone());
                tokio::spawn(async move {
                    while Instant::now() < until {
                        if me.post_one(now_ns()).await {
                            ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        let ok = ok.load(Ordering::SeqCst);
        (
            ok as f64 / start.elapsed().as_secs_f64(),
            ok,
            bad.load(Ordering::SeqCst),
        )
    }

    /// Open loop at `rate`/s for `duration`: latency from the scheduled time to the
    /// answer, and failures.
    pub async fn fixed_rate(self: &Arc<Self>, rate: f64, duration: Duration) -> (Latency, u64) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(u64, bool)>();
        let start_ns = now_ns();
        let start = Instant::now();
        let mut sent = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while start.elapsed() < duration {
            tick.tick().await;
            let due = (start.elapsed().min(duration).as_secs_f64() * rate) as u64;
            while sent < due {
                let intended = start_ns + (sent as f64 * 1e9 / rate) as u64;
                let (me, tx) = (self.clone(), tx.clone());
                tokio::spawn(async move {
                    let ok = me.post_one(intended).await;
                    let _ = tx.send((now_ns().saturating_sub(intended) / 1000, ok));
                });
                sent += 1;
            }
        }
        drop(tx);
        let mut lat = Latency::new();
        let mut failures = 0;
        while let Some((us, ok)) = rx.recv().await {
            lat.record_us(us);
            if !ok {
                failures += 1;
            }
        }
        (lat, failures)
    }
}

/// Poll routing with `agents` agents online: per new lead, the time from the
/// guest's first message to the offer on each agent's socket, and from each
/// winner's `claim` to its `offer_closed {won: true}`.
pub async fn routing(
    api: &Api,
    addr: SocketAddr,
    agents: usize,
    leads: usize,
) -> anyhow::Result<Value> {
    let admin = api.admin().await?;
    let slug = format!("poll{}", now_ns() % 1_000_000_000);
    let team = api
        .post(
            "/api/teams",
            Some(&admin),
            &json!({"name": "Poll bench", "slug": slug}),
        )
        .await?["team"]["id"]
        .as_str()
        .context("team id")?
        .to_string();
    api.put(
        &format!("/api/teams/{team}/routing"),
        Some(&admin),
        &json!({"routing_mode": "poll", "default_capacity": 1000, "offer_timeout_ms": 30000}),
    )
    .await?;
    let mut tokens = Vec::new();
    for i in 0..agents {
        tokens.push(api.agent(&admin, &team, i).await?);
    }
    // Every agent socket feeds one event channel; claims go back through writers.
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<(usize, Value, u64)>();
    let mut writers = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let ws = clients::open(Kind::Ours, addr, true, t, None).await?;
        let (mut sink, mut stream) = ws.split();
        let (wtx, mut wrx) = mpsc::unbounded_channel::<String>();
        writers.push(wtx);
        tokio::spawn(async move {
            while let Some(s) = wrx.recv().await {
                if sink.send(Message::text(s)).await.is_err() {
                    break;
                }
            }
        });
        let ev_tx = ev_tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                if let Message::Text(t) = m {
                    let t = t.as_str();
                    if t.contains(r#""type":"offer"#) || t.contains(r#""type":"error""#) {
                        if let Ok(v) = serde_json::from_str::<Value>(t) {
                            let _ = ev_tx.send((i, v, now_ns()));
                        }
                    }
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut offer = Latency::new();
    let mut first_offer = Latency::new();
    let mut claim = Latency::new();
    let mut unclaimed = 0u64;
    let guests = api.guests(&slug, leads).await?;
    for (conv, token) in guests {
        let t0 = now_ns();
        api.post(
            &format!("/api/conversations/{conv}/messages"),
            Some(&token),
            &json!({"body": "hello, I would like a quote", "client_msg_id": format!("r{t0}")}),
        )
        .await?;
        let mut offers = 0usize;
        let mut claims_sent: Vec<Option<u64>> = vec![None; agents];
        let mut closed = 0usize;
        let mut won = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while closed < agents {
            let Ok(Some((i, v, at))) = tokio::time::timeout_at(deadline, ev_rx.recv()).await else {
                break;
            };
            if v["conversation_id"] != conv.as_str() && v["type"] != "error" {
                continue;
            }
            match v["type"].as_str() {
                Some("offer") => {
                    if offers == 0 {
                        first_offer.record_us(at.saturating_sub(t0) / 1000);
                    }
                    offers += 1;
                    offer.record_us(at.saturating_sub(t0) / 1000);
                    if claims_sent[i].is_none() {
                        let id = v["offer_id"].as_str().unwrap_or_default();
                        claims_sent[i] = Some(now_ns());
                        let _ =
                            writers[i].send(json!({"type": "claim", "offer_id": id}).to_string());
                    }
                }
                Some("offer_closed") => {
                    closed += 1;
                    if v["won"] == true {
                        won = true;
                        if let Some(sent) = claims_sent[i] {
                            claim.record_us(at.saturating_sub(sent) / 1000);
                        }
                    }
                }
                _ => {}
            }
        }
        if !won {
            unclaimed += 1;
        }
    }
    Ok(json!({
        "agents": agents,
        "leads": leads,
        "unclaimed": unclaimed,
        "offer_each_agent": offer.summary(),
        "offer_first_agent": first_offer.summary(),
        "claim_to_winner": claim.summary(),
    }))
}
