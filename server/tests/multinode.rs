//! Multi-node mode with real processes: two or three `switchboard` binaries on
//! different ports sharing one fresh PostgreSQL database and Redis (each test its
//! own key prefix; the outage test its own `redis-server`).
//!
//! Every chat test runs its traffic through a [`Checker`] that logs each send (with
//! its `client_msg_id`) and each receive (with its `seq`) per viewer and asserts:
//! nothing acknowledged is lost, nothing is duplicated, and every viewer sees each
//! conversation in the same order as the database.
//!
//! Waiting is done by polling real state until it appears (bounded by generous
//! safety timeouts); nothing sleeps a fixed time and then asserts.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard_e2e::process::{free_port, HubProcess as Node};
use switchboard_e2e::{eventually, Backend, PgDatabase, TestAgent, TestGuest, TestServer, Ws};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Safety net for outcomes that should arrive promptly.
const PATIENCE: Duration = Duration::from_secs(30);
/// Node heartbeat and TTL of the node-kill test (short, so a dead node is noticed fast).
const HEARTBEAT_SECS: f64 = 0.3;
const TTL_SECS: f64 = 1.5;
/// Node heartbeat and TTL of every other test: long enough that a busy CI machine
/// never lets a live node's entry lapse (which would skip its agents in routing).
const RELAXED_HEARTBEAT_SECS: f64 = 1.0;
const RELAXED_TTL_SECS: f64 = 10.0;

// ---- a private redis-server ---------------------------------------------------

/// A `redis-server` owned by one test, so stopping it disturbs nobody else.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let mut r = Self {
            port: free_port(),
            child: None,
        };
        r.restart();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (is it installed?)");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut buf = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read_exact(&mut buf).is_ok()
                    && &buf == b"+PONG\r\n"
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        kill_child(&mut self.child);
    }
}

/// SIGKILL (`Child::kill` on Unix) and reap: no graceful shutdown, no cleanup.
fn kill_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- nodes --------------------------------------------------------------------

/// Nodes sharing a database and a Redis prefix.
struct Cluster {
    db: PgDatabase,
    redis_url: String,
    prefix: String,
    logs: tempfile::TempDir,
    nodes: Vec<Node>,
    heartbeat_secs: f64,
    ttl_secs: f64,
}

impl Cluster {
    /// `None` when PostgreSQL is unavailable and not required (the test is skipped).
    async fn start(n: usize, redis_url: &str) -> Option<Self> {
        Self::start_with(n, redis_url, RELAXED_HEARTBEAT_SECS, RELAXED_TTL_SECS).await
    }

    /// As [`Cluster::start`], with short heartbeats so a killed node is noticed fast.
    async fn start_fast_failover(n: usize, redis_url: &str) -> Option<Self> {
        Self::start_with(n, redis_url, HEARTBEAT_SECS, TTL_SECS).await
    }

    async fn start_with(
        n: usize,
        redis_url: &str,
        heartbeat_secs: f64,
        ttl_secs: f64,
    ) -> Option<Self> {
        if !switchboard_e2e::postgres_available() {
            return None;
        }
        let db = tokio::task::spawn_blocking(PgDatabase::create)
            .await
            .expect("create db");
        let mut c = Self {
            db,
            redis_url: redis_url.to_string(),
            prefix: format!("sbt-{}", uuid_like()),
            logs: tempfile::tempdir().expect("temp dir"),
            nodes: Vec::new(),
            heartbeat_secs,
            ttl_secs,
        };
        // The first node migrates and bootstraps alone; the others then start together.
        let first = c.spawn_node("n0");
        c.nodes.push(first);
        c.wait_ready(0).await;
        for i in 1..n {
            let node = c.spawn_node(&format!("n{i}"));
            c.nodes.push(node);
        }
        for i in 1..n {
            c.wait_ready(i).await;
        }
        Some(c)
    }

    fn spawn_node(&self, name: &str) -> Node {
        let log = self.logs.path().join(format!("{name}.log"));
        let rate = || "100000".to_string();
        let env = [
            ("RUST_LOG", "warn,switchboard=debug".to_string()),
            ("DATABASE_URL", self.db.url().to_string()),
            ("REDIS_URL", self.redis_url.clone()),
            ("SWITCHBOARD_REDIS_PREFIX", self.prefix.clone()),
            ("SWITCHBOARD_NODE_ID", name.to_string()),
            (
                "SWITCHBOARD_NODE_HEARTBEAT",
                self.heartbeat_secs.to_string(),
            ),
            ("SWITCHBOARD_NODE_TTL", self.ttl_secs.to_string()),
            ("SWITCHBOARD_OFFER_SWEEP", "1".into()),
            ("SWITCHBOARD_RATE_LOGIN", rate()),
            ("SWITCHBOARD_RATE_WIDGET", rate()),
            // The tests' guests send bursts far past a visitor's limit on purpose.
            ("SWITCHBOARD_RATE_GUEST_BURST", rate()),
            ("SWITCHBOARD_RATE_GUEST_MESSAGES", rate()),
            ("SWITCHBOARD_RATE_GUEST_ADDR_BURST", rate()),
            ("SWITCHBOARD_RATE_GUEST_ADDR_MESSAGES", rate()),
            ("SWITCHBOARD_WORKERS", "1".into()),
            ("SWITCHBOARD_WRITERS", "2".into()),
            ("SWITCHBOARD_DB_POOL_SIZE", "6".into()),
            ("SWITCHBOARD_DB_TIMEOUT", "1".into()),
            ("SWITCHBOARD_HEARTBEAT", "1".into()),
            ("SWITCHBOARD_CLIENT_TIMEOUT", "20".into()),
            ("SWITCHBOARD_SHUTDOWN_TIMEOUT", "2".into()),
        ];
        let binary = env!("CARGO_BIN_EXE_switchboard");
        Node::spawn(binary, name, Backend::Postgres, &env, &log)
    }

    /// Waits until node `i` answers `/readyz` with a healthy bus.
    async fn wait_ready(&mut self, i: usize) {
        self.nodes[i]
            .wait_ready(PATIENCE * 2, |b| b["bus"] == "ok" && b["database"] == "ok")
            .await;
    }

    fn srv(&self, i: usize) -> &TestServer {
        &self.nodes[i].srv
    }

    async fn readyz(&self, i: usize) -> Value {
        match self
            .srv(i)
            .http
            .get(self.srv(i).url("/readyz"))
            .send()
            .await
        {
            Ok(resp) => resp.json::<Value>().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

/// `{conversation_id: seq}` for a `resume`.
fn cursor(conv: &str, seq: i64) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(conv.to_string(), json!(seq));
    Value::Object(m)
}

const SHARED_REDIS: &str = "redis://127.0.0.1:6379/";

// ---- presence and routing helpers --------------------------------------------

async fn workload(srv: &TestServer, admin: &str, team: &str) -> Value {
    let (status, body) = srv
        .get(&format!("/api/team/workload?team_id={team}"), Some(admin))
        .await;
    assert_eq!(status, 200, "{body}");
    body["teams"][0].clone()
}

fn presence_of(w: &Value, id: &str) -> Option<String> {
    w["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["agent_id"] == id)
        .and_then(|a| a["presence"].as_str().map(str::to_string))
}

/// Waits until every node's workload shows every agent in `ids` as `presence`.
async fn wait_presence_everywhere(
    c: &Cluster,
    admin: &str,
    team: &str,
    ids: &[String],
    presence: &str,
) {
    for i in 0..c.nodes.len() {
        if c.nodes[i].child.is_none() {
            continue;
        }
        eventually(&format!("{ids:?} {presence} on node {i}"), || async {
            let w = workload(c.srv(i), admin, team).await;
            ids.iter()
                .all(|id| presence_of(&w, id).as_deref() == Some(presence))
                .then_some(())
        })
        .await;
    }
}

async fn assignee(srv: &TestServer, token: &str, id: &str) -> Option<String> {
    let (status, body) = srv
        .get(&format!("/api/conversations/{id}"), Some(token))
        .await;
    assert_eq!(status, 200, "{body}");
    body["assignee_id"].as_str().map(str::to_string)
}

async fn lead(srv: &TestServer, n: usize) -> TestGuest {
    let guest = srv.guest().await;
    let (status, body) = srv
        .post_message(
            &guest.token,
            &guest.conversation_id,
            &format!("hello-{n}"),
            "Hi, I need a quote",
        )
        .await;
    assert_eq!(status, 201, "{body}");
    guest
}

// ---- the checker --------------------------------------------------------------

/// Everything every viewer sent and received, for the delivery assertions.
#[derive(Default)]
struct Log {
    /// client_msg_id → (conversation, seq) from its `ack`.
    acked: HashMap<String, (String, i64)>,
    /// client_msg_ids sent (acked or not).
    sent: Vec<(String, String)>,
    /// viewer → (conversation, seq, message id) in arrival order.
    seen: HashMap<String, Vec<(String, i64, String)>>,
    /// Send errors by client_msg_id (none expected in these tests).
    errors: HashMap<String, String>,
}

/// Shared log plus helpers (see the module documentation).
#[derive(Clone, Default)]
struct Checker(Arc<Mutex<Log>>);

impl Checker {
    fn record(&self, viewer: &str, frame: &Value) {
        let mut log = self.0.lock().unwrap();
        match frame["type"].as_str() {
            Some("ack") => {
                let cmid = frame["client_msg_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let seq = frame["seq"].as_i64().unwrap_or_default();
                let conv = log
                    .sent
                    .iter()
                    .find(|(_, id)| *id == cmid)
                    .map(|(c, _)| c.clone())
                    .unwrap_or_default();
                log.acked.insert(cmid, (conv, seq));
            }
            Some("message") => {
                let conv = frame["conversation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let seq = frame["seq"].as_i64().unwrap_or_default();
                let id = frame["id"].as_str().unwrap_or_default().to_string();
                log.seen
                    .entry(viewer.to_string())
                    .or_default()
                    .push((conv, seq, id));
            }
            Some("error") => {
                if let Some(r) = frame["ref"].as_str() {
                    log.errors.insert(r.to_string(), frame.to_string());
                }
            }
            _ => {}
        }
    }

    fn sent(&self, conv: &str, cmid: &str) {
        self.0
            .lock()
            .unwrap()
            .sent
            .push((conv.to_string(), cmid.to_string()));
    }

    fn acked_count(&self) -> usize {
        self.0.lock().unwrap().acked.len()
    }

    /// Highest seq `viewer` holds of `conv` (0 if none).
    fn last_seq(&self, viewer: &str, conv: &str) -> i64 {
        self.0
            .lock()
            .unwrap()
            .seen
            .get(viewer)
            .into_iter()
            .flatten()
            .filter(|(c, _, _)| c == conv)
            .map(|(_, s, _)| *s)
            .max()
            .unwrap_or(0)
    }

    /// Whether `viewer` holds every seq 1..=`upto` of `conv`.
    fn has_through(&self, viewer: &str, conv: &str, upto: i64) -> bool {
        let log = self.0.lock().unwrap();
        let got: HashSet<i64> = log
            .seen
            .get(viewer)
            .into_iter()
            .flatten()
            .filter(|(c, _, _)| c == conv)
            .map(|(_, s, _)| *s)
            .collect();
        (1..=upto).all(|s| got.contains(&s))
    }

    /// The assertions: for each viewer of `conv`, the messages seen are exactly the
    /// stored `history` (each once, ascending seq, same ids), and every acked
    /// `client_msg_id` of `conv` is in the history exactly once at its acked seq.
    fn assert_exactly_once(&self, conv: &str, viewers: &[&str], history: &[Value]) {
        let log = self.0.lock().unwrap();
        let stored: BTreeMap<i64, String> = history
            .iter()
            .map(|m| {
                (
                    m["seq"].as_i64().unwrap(),
                    m["id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let seqs: Vec<i64> = stored.keys().copied().collect();
        let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert_eq!(seqs, expected, "stored seq must be gapless");
        let mut by_cmid: HashMap<&str, Vec<i64>> = HashMap::new();
        for m in history {
            if let Some(c) = m["client_msg_id"].as_str() {
                by_cmid
                    .entry(c)
                    .or_default()
                    .push(m["seq"].as_i64().unwrap());
            }
        }
        for (cmid, (c, seq)) in &log.acked {
            if c != conv {
                continue;
            }
            let stored_at = by_cmid.get(cmid.as_str()).cloned().unwrap_or_default();
            assert_eq!(
                stored_at,
                vec![*seq],
                "acked {cmid} must be stored once, at seq {seq}"
            );
        }
        for cmid in by_cmid.keys() {
            assert_eq!(by_cmid[cmid].len(), 1, "{cmid} stored twice");
        }
        assert!(log.errors.is_empty(), "send errors: {:?}", log.errors);
        for viewer in viewers {
            let got: Vec<(i64, String)> = log
                .seen
                .get(*viewer)
                .into_iter()
                .flatten()
                .filter(|(c, _, _)| c == conv)
                .map(|(_, s, id)| (*s, id.clone()))
                .collect();
            let want: Vec<(i64, String)> = stored.iter().map(|(s, id)| (*s, id.clone())).collect();
            assert_eq!(
                got.len(),
                want.len(),
                "{viewer}: saw {} messages, {} stored (duplicates or losses): seqs {:?}",
                got.len(),
                want.len(),
                got.iter().map(|(s, _)| *s).collect::<Vec<_>>()
            );
            assert_eq!(
                got, want,
                "{viewer}: order or content differs from the database"
            );
        }
        eprintln!(
            "checker: {conv}: {} stored, {} acked, viewers {viewers:?} each saw all exactly once in order",
            stored.len(),
            log.acked.values().filter(|(c, _)| c == conv).count()
        );
    }
}

/// A socket read continuously in the background; frames are logged to the checker.
struct Viewer {
    name: String,
    tx: mpsc::UnboundedSender<Value>,
    task: tokio::task::JoinHandle<()>,
}

impl Viewer {
    /// Starts reading `ws` as `name`; sends `resume` with `cursors` first if given.
    async fn start(name: &str, mut ws: Ws, cursors: Option<Value>, checker: &Checker) -> Self {
        if let Some(c) = cursors {
            ws.send_json(&json!({"type": "resume", "cursors": c})).await;
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
        let checker = checker.clone();
        let who = name.to_string();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    cmd = rx.recv() => match cmd {
                        Some(v) => ws.send_json(&v).await,
                        None => break,
                    },
                    msg = ws.next_message() => match msg {
                        Some(Message::Text(t)) => {
                            let v: Value = serde_json::from_str(t.as_str()).expect("json frame");
                            checker.record(&who, &v);
                        }
                        Some(Message::Close(_)) | None => break,
                        Some(_) => {}
                    },
                }
            }
        });
        Self {
            name: name.to_string(),
            tx,
            task,
        }
    }

    /// Sends a message (not waiting for its ack).
    fn send(&self, checker: &Checker, conv: &str, cmid: &str) {
        checker.sent(conv, cmid);
        let _ = self.tx.send(json!({
            "type": "send",
            "conversation_id": conv,
            "client_msg_id": cmid,
            "body": format!("{} says {cmid}", self.name),
        }));
    }
}

async fn wait_acked(checker: &Checker, n: usize) {
    eventually(&format!("{n} acks"), || async {
        (checker.acked_count() >= n).then_some(())
    })
    .await;
}

async fn wait_all_seen(checker: &Checker, conv: &str, viewers: &[&str], upto: i64) {
    for v in viewers {
        eventually(&format!("{v} to hold seq 1..={upto}"), || async {
            checker.has_through(v, conv, upto).then_some(())
        })
        .await;
    }
}

async fn history(srv: &TestServer, token: &str, conv: &str) -> Vec<Value> {
    srv.history(token, conv).await
}

async fn agent_on(c: &Cluster, i: usize) -> (TestAgent, Ws) {
    let agent = c.srv(0).agent("agent").await;
    let ws = c.srv(i).ws_agent(&agent.token).await;
    (agent, ws)
}

// ---- tests --------------------------------------------------------------------

/// A guest on node A and an agent on node B chat live; the conversation is routed
/// (round-robin) on A to the agent on B, then reassigned through node B to a second
/// agent on node A, whose live feed proves A's conversation actor adopted B's change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_on_a_and_agent_on_b_chat_live() {
    let Some(c) = Cluster::start(2, SHARED_REDIS).await else {
        return;
    };
    let admin = c.srv(0).admin_token().await;
    let team = c.srv(0).default_team_id().await;
    c.srv(0)
        .set_routing(
            &team,
            json!({"routing_mode": "round_robin", "default_capacity": 100}),
        )
        .await;
    let checker = Checker::default();
    let (agent, agent_ws) = agent_on(&c, 1).await;
    wait_presence_everywhere(&c, &admin, &team, std::slice::from_ref(&agent.id), "online").await;

    let guest = c.srv(0).guest().await;
    let conv = guest.conversation_id.clone();
    let guest_ws = c.srv(0).ws_guest(&guest.token).await;
    let g = Viewer::start("guest@A", guest_ws, Some(cursor(&conv, 0)), &checker).await;
    g.send(&checker, &conv, "g-0");
    wait_acked(&checker, 1).await;
    let routed = eventually("routing on A to the agent on B", || async {
        assignee(c.srv(1), &admin, &conv).await
    })
    .await;
    assert_eq!(
        routed, agent.id,
        "the only online agent (on node B) gets the lead"
    );
    let a = Viewer::start("agent@B", agent_ws, Some(cursor(&conv, 0)), &checker).await;
    for i in 1..=20 {
        g.send(&checker, &conv, &format!("g-{i}"));
        a.send(&checker, &conv, &format!("a-{i}"));
    }
    wait_acked(&checker, 41).await;
    wait_all_seen(&checker, &conv, &["guest@A", "agent@B"], 41).await;

    // Reassign through node B to an agent connected to node A.
    let (agent2, mut agent2_ws) = agent_on(&c, 0).await;
    wait_presence_everywhere(
        &c,
        &admin,
        &team,
        std::slice::from_ref(&agent2.id),
        "online",
    )
    .await;
    let (status, body) = c
        .srv(1)
        .post(
            &format!("/api/conversations/{conv}/assign"),
            Some(&admin),
            &json!({"agent_id": agent2.id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The `assigned` frame travels after the change on B's publisher; once agent2
    // (on A) has it, A's actor has adopted the new assignee.
    loop {
        let v = agent2_ws.next_of_type("assigned").await;
        if v["conversation_id"] == conv.as_str() && v["agent_id"] == agent2.id.as_str() {
            break;
        }
    }
    let b = Viewer::start("agent2@A", agent2_ws, Some(cursor(&conv, 41)), &checker).await;
    g.send(&checker, &conv, "g-after-transfer");
    wait_acked(&checker, 42).await;
    wait_all_seen(&checker, &conv, &["guest@A"], 42).await;
    eventually("agent2 on A to get the guest's message live", || async {
        (checker.last_seq("agent2@A", &conv) == 42).then_some(())
    })
    .await;

    let h = history(c.srv(1), &admin, &conv).await;
    checker.assert_exactly_once(&conv, &["guest@A", "agent@B"], &h);
    drop((g, a, b));
}

/// 20 agents spread over three nodes all get one poll offer and claim it at once,
/// each through its own node: exactly one wins, everyone sees the offer close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_agents_on_three_nodes_one_winner() {
    let Some(c) = Cluster::start(3, SHARED_REDIS).await else {
        return;
    };
    let admin = c.srv(0).admin_token().await;
    let team = c.srv(0).default_team_id().await;
    c.srv(0)
        .set_routing(
            &team,
            json!({"routing_mode": "poll", "offer_timeout_ms": 600_000}),
        )
        .await;
    let mut agents = Vec::new();
    for i in 0..20 {
        let (agent, ws) = agent_on(&c, i % 3).await;
        agents.push((i % 3, agent, ws));
    }
    let ids: Vec<String> = agents.iter().map(|(_, a, _)| a.id.clone()).collect();
    wait_presence_everywhere(&c, &admin, &team, &ids, "online").await;

    let guest = lead(c.srv(1), 0).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for (node, agent, mut ws) in agents {
        let offer = ws.next_of_type("offer").await;
        assert_eq!(offer["conversation_id"], guest.conversation_id.as_str());
        let offer_id = offer["offer_id"].as_str().unwrap().to_string();
        let url = c.srv(node).url(&format!("/api/offers/{offer_id}/claim"));
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let status = reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .post(url)
                .bearer_auth(&agent.token)
                .send()
                .await
                .expect("claim")
                .status()
                .as_u16();
            let closed = loop {
                let v = ws.next_of_type("offer_closed").await;
                if v["offer_id"] == offer_id.as_str() {
                    break v;
                }
            };
            (agent.id, status, closed["won"].as_bool())
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (id, status, won) = t.await.expect("claim task");
        match status {
            200 => {
                assert_eq!(won, Some(true), "the 200 claimer must be told it won");
                winners.push(id);
            }
            409 => assert_eq!(
                won,
                Some(false),
                "a 409 claimer must see the offer close lost"
            ),
            s => panic!("unexpected claim status {s}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    for i in 0..3 {
        assert_eq!(
            assignee(c.srv(i), &admin, &guest.conversation_id)
                .await
                .as_deref(),
            Some(winners[0].as_str())
        );
    }
}

/// Round-robin over three agents, one per node, with leads arriving on every node:
/// each agent gets the same share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_is_fair_across_nodes() {
    let Some(c) = Cluster::start(3, SHARED_REDIS).await else {
        return;
    };
    let admin = c.srv(0).admin_token().await;
    let team = c.srv(0).default_team_id().await;
    c.srv(0)
        .set_routing(
            &team,
            json!({"routing_mode": "round_robin", "default_capacity": 1000}),
        )
        .await;
    let mut sockets = Vec::new();
    let mut ids = Vec::new();
    for i in 0..3 {
        let (agent, ws) = agent_on(&c, i).await;
        ids.push(agent.id.clone());
        sockets.push(ws);
    }
    wait_presence_everywhere(&c, &admin, &team, &ids, "online").await;
    let mut convs = Vec::new();
    for n in 0..30 {
        convs.push(lead(c.srv(n % 3), n).await.conversation_id);
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for conv in &convs {
        let a = eventually("an assignee", || async {
            assignee(c.srv(0), &admin, conv).await
        })
        .await;
        *counts.entry(a).or_default() += 1;
    }
    eprintln!("round-robin shares across nodes: {counts:?}");
    for id in &ids {
        let n = counts.get(id).copied().unwrap_or(0);
        assert!(
            (9..=11).contains(&n),
            "unfair share {n} for {id}: {counts:?}"
        );
    }
    drop(sockets);
}

/// Killing node A (SIGKILL): its agent goes offline on node B within the TTL, and
/// the guest, reconnecting to node B, resumes with no gap and no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_agents_go_offline_and_guest_resumes_elsewhere() {
    let Some(mut c) = Cluster::start_fast_failover(2, SHARED_REDIS).await else {
        return;
    };
    let admin = c.srv(0).admin_token().await;
    let team = c.srv(0).default_team_id().await;
    c.srv(0).manual_routing().await;
    let checker = Checker::default();
    let (agent_a, _agent_a_ws) = agent_on(&c, 0).await;
    let (agent_b, agent_b_ws) = agent_on(&c, 1).await;
    wait_presence_everywhere(
        &c,
        &admin,
        &team,
        &[agent_a.id.clone(), agent_b.id.clone()],
        "online",
    )
    .await;

    let guest = c.srv(0).guest().await;
    let conv = guest.conversation_id.clone();
    let g = Viewer::start(
        "guest",
        c.srv(0).ws_guest(&guest.token).await,
        Some(cursor(&conv, 0)),
        &checker,
    )
    .await;
    let b = Viewer::start("agent@B", agent_b_ws, Some(cursor(&conv, 0)), &checker).await;
    for i in 0..10 {
        g.send(&checker, &conv, &format!("g-{i}"));
        b.send(&checker, &conv, &format!("b-{i}"));
    }
    wait_acked(&checker, 20).await;
    wait_all_seen(&checker, &conv, &["guest", "agent@B"], 20).await;

    let killed = Instant::now();
    c.nodes[0].kill();
    eventually("agent A offline on node B", || async {
        let w = workload(c.srv(1), &admin, &team).await;
        (presence_of(&w, &agent_a.id).as_deref() == Some("offline")).then_some(())
    })
    .await;
    let took = killed.elapsed();
    eprintln!("agent of the killed node offline on node B after {took:?} (TTL {TTL_SECS}s)");
    // TTL plus one heartbeat to notice, with ample room for a loaded CI machine.
    assert!(
        took < Duration::from_secs_f64(TTL_SECS * 4.0 + 5.0),
        "took {took:?} to notice a dead node"
    );
    let _ = g.task.await;

    // The agent keeps writing while the guest is away.
    for i in 10..15 {
        b.send(&checker, &conv, &format!("b-{i}"));
    }
    wait_acked(&checker, 25).await;
    let last = checker.last_seq("guest", &conv);
    let g2 = Viewer::start(
        "guest",
        c.srv(1).ws_guest(&guest.token).await,
        Some(cursor(&conv, last)),
        &checker,
    )
    .await;
    for i in 100..105 {
        g2.send(&checker, &conv, &format!("g-{i}"));
    }
    wait_acked(&checker, 30).await;
    wait_all_seen(&checker, &conv, &["guest", "agent@B"], 30).await;
    let h = history(c.srv(1), &admin, &conv).await;
    checker.assert_exactly_once(&conv, &["guest", "agent@B"], &h);
    drop((g2, b));
}

/// Redis killed and restarted mid-traffic: both nodes report degraded, keep
/// acknowledging, resubscribe, and afterwards every viewer holds every
/// acknowledged message exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_mid_traffic_loses_and_duplicates_nothing() {
    let mut redis = PrivateRedis::start();
    let Some(c) = Cluster::start(2, &redis.url()).await else {
        return;
    };
    let admin = c.srv(0).admin_token().await;
    let team = c.srv(0).default_team_id().await;
    c.srv(0).manual_routing().await;
    let checker = Checker::default();
    let (agent, agent_ws) = agent_on(&c, 1).await;
    wait_presence_everywhere(&c, &admin, &team, std::slice::from_ref(&agent.id), "online").await;
    let guest = c.srv(0).guest().await;
    let conv = guest.conversation_id.clone();
    let g = Viewer::start(
        "guest@A",
        c.srv(0).ws_guest(&guest.token).await,
        Some(cursor(&conv, 0)),
        &checker,
    )
    .await;
    let a = Viewer::start("agent@B", agent_ws, Some(cursor(&conv, 0)), &checker).await;
    let mut n = 0;
    let send_round = |n: &mut usize| {
        g.send(&checker, &conv, &format!("g-{n}"));
        a.send(&checker, &conv, &format!("a-{n}"));
        *n += 1;
    };
    for _ in 0..10 {
        send_round(&mut n);
    }
    wait_acked(&checker, 2 * n).await;

    redis.kill();
    for _ in 0..5 {
        send_round(&mut n);
    }
    for i in 0..2 {
        eventually(&format!("node {i} degraded"), || async {
            let r = c.readyz(i).await;
            (r["status"] == "degraded").then_some(())
        })
        .await;
    }
    // Still serving local sessions and acknowledging while Redis is gone.
    for _ in 0..10 {
        send_round(&mut n);
    }
    wait_acked(&checker, 2 * n).await;

    redis.restart();
    for i in 0..2 {
        eventually(&format!("node {i} healthy again"), || async {
            let r = c.readyz(i).await;
            (r["status"] == "ready").then_some(())
        })
        .await;
    }
    // Nothing new is sent yet: what the viewers missed during the outage must
    // arrive through the resync alone (no later message's gap to trigger a read).
    let during = (2 * n) as i64;
    wait_all_seen(&checker, &conv, &["guest@A", "agent@B"], during).await;
    for _ in 0..5 {
        send_round(&mut n);
    }
    wait_acked(&checker, 2 * n).await;
    let total = (2 * n) as i64;
    wait_all_seen(&checker, &conv, &["guest@A", "agent@B"], total).await;
    let h = history(c.srv(0), &admin, &conv).await;
    assert_eq!(h.len() as i64, total);
    checker.assert_exactly_once(&conv, &["guest@A", "agent@B"], &h);
    drop((g, a));
}

/// Deactivating an agent through node A closes its WebSocket on node B (close 1008,
/// carried by the bus) and its token stops working on both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_on_a_closes_the_agent_socket_on_b() {
    let Some(c) = Cluster::start(2, SHARED_REDIS).await else {
        return;
    };
    let admin = c.srv(0).admin_token().await;
    let (agent, mut ws) = agent_on(&c, 1).await;
    let (status, body) = c
        .srv(0)
        .patch(
            &format!("/api/agents/{}", agent.id),
            Some(&admin),
            &json!({"active": false}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let close = ws.expect_close().await.map(|f| u16::from(f.code));
    assert_eq!(
        close,
        Some(1008),
        "node B closes the revoked agent's socket"
    );
    for i in 0..2 {
        let (status, _) = c.srv(i).get("/api/auth/me", Some(&agent.token)).await;
        assert_eq!(status, 401, "node {i} refuses the old token");
    }
}

/// A webhook to node B signed with `secret`, as Meta would send it; its HTTP status.
async fn meta_webhook_status(srv: &TestServer, secret: &str, wamid: &str) -> u16 {
    let mut v = switchboard_e2e::meta_text_webhook("6281234567001", wamid, "Halo");
    v["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!("55501");
    let body = v.to_string().into_bytes();
    let sig = switchboard_e2e::meta_signature(secret, &body);
    srv.post_webhook("/webhooks/whatsapp", body, &[("x-hub-signature-256", sig)])
        .await
        .0
}

/// Node B keeps the WhatsApp numbers' opened secrets in memory; a number added
/// and its app secret rotated through node A take effect on B at once (the
/// change is carried by the bus), long before B's copy would age out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_changed_on_a_is_used_by_b_at_once() {
    let Some(c) = Cluster::start(2, SHARED_REDIS).await else {
        return;
    };
    let admin = c.srv(0).admin_token().await;
    let team = c.srv(0).default_team_id().await;
    // B loads its copy now: no Meta number yet, so webhooks are refused.
    assert_eq!(
        meta_webhook_status(c.srv(1), "first", "wamid.MN0").await,
        403
    );
    let (status, body) = c
        .srv(0)
        .post(
            "/api/whatsapp/numbers",
            Some(&admin),
            &json!({"provider": "meta", "label": "Tours", "team_id": team,
                "phone_number_id": "55501", "access_token": "t", "app_secret": "first"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["number"]["id"].as_str().expect("id").to_string();
    let b = c.srv(1);
    let n = std::sync::atomic::AtomicUsize::new(0);
    let status_on_b = |secret: &'static str| {
        let wamid = format!(
            "wamid.MN{}",
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
        );
        async move { meta_webhook_status(b, secret, &wamid).await }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while status_on_b("first").await != 200 {
        assert!(
            Instant::now() < deadline,
            "node B never learnt the new number"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = c
        .srv(0)
        .patch(
            &format!("/api/whatsapp/numbers/{id}"),
            Some(&admin),
            &json!({"app_secret": "second"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while status_on_b("second").await != 200 {
        assert!(Instant::now() < deadline, "node B kept the old app secret");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        status_on_b("first").await,
        401,
        "the old secret is refused on B"
    );
}
