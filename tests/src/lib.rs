//! Test harness for the end-to-end suite: starts a real Switchboard server
//! in-process on port 0 (its own actix system on its own thread), against a fresh
//! SQLite file or a fresh PostgreSQL database, and gives tests real HTTP and
//! WebSocket clients.
//!
//! PostgreSQL: `SWITCHBOARD_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) names a database the harness connects to
//! in order to create one fresh database per test (dropped afterwards). When the
//! server is unreachable the PostgreSQL variants are skipped with a notice, unless
//! `SWITCHBOARD_TEST_REQUIRE_PG=1`, which turns that into a failure (CI sets it).
//!
//! Timeouts here are safety nets against hangs (a test fails instead of blocking
//! CI forever), never the thing a test asserts; they are generous on purpose.

// A harness's way to report a broken precondition is to panic with a message: the
// test that called it fails right there, which is exactly what a test wants.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod browser;
pub mod fake_openai;
pub mod process;

use std::sync::Arc;
use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use switchboard::clock::{Clock, ManualClock};
use switchboard::config::{DatabaseTarget, GuestMessageLimits, Secret};
use switchboard::scheduler::NewJob;
use switchboard::{Config, ShutdownHandle};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for something that should happen promptly before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `probe` until it returns `Some` (every 20 ms), failing the test after
/// [`PATIENCE`]: for state that the server reaches asynchronously (an assignment,
/// a presence change). A retry loop, not a timing assertion.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The admin created by every test server.
pub const ADMIN_EMAIL: &str = "admin@test.local";
/// Its password.
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// Which database a test server uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server.
    Postgres,
}

/// Runs a test body once per backend: generates `mod $name { fn sqlite(); fn postgres(); }`.
/// The body gets the backend in `$backend` and starts its own server(s).
#[macro_export]
macro_rules! both_backends {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: $crate::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if !$crate::postgres_available() {
                    return;
                }
                run($crate::Backend::Postgres).await;
            }
        }
    };
}

fn pg_admin_url() -> String {
    std::env::var("SWITCHBOARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Whether PostgreSQL tests should run: true when reachable; when not, false with a
/// notice — or a panic if `SWITCHBOARD_TEST_REQUIRE_PG=1`.
pub fn postgres_available() -> bool {
    match PgConnection::establish(&pg_admin_url()) {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("SWITCHBOARD_TEST_REQUIRE_PG").is_ok_and(|v| v == "1") {
                panic!("PostgreSQL required (SWITCHBOARD_TEST_REQUIRE_PG=1) but unreachable: {e}");
            }
            eprintln!("skipping PostgreSQL variant: {e}");
            false
        }
    }
}

/// A database created for one test; dropped with it.
#[derive(Debug)]
pub struct PgDatabase {
    name: String,
    url: String,
}

impl PgDatabase {
    /// Creates a fresh, empty database.
    pub fn create() -> Self {
        let admin = pg_admin_url();
        let mut conn = PgConnection::establish(&admin).expect("connect to PostgreSQL");
        let name = format!("sbt_{}", uuid::Uuid::new_v4().simple());
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .expect("create test database");
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin);
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Its connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&pg_admin_url()) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

/// Where a test server keeps its data; shared across restarts.
#[derive(Debug)]
enum Storage {
    Sqlite(tempfile::TempDir),
    Postgres(PgDatabase),
    /// Owned by whoever started the server (a separate process).
    External,
}

/// A running Switchboard server.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// `ws://127.0.0.1:<port>`.
    pub ws_base: String,
    /// Which backend it runs on.
    pub backend: Backend,
    /// The configuration it was started with.
    pub config: Config,
    /// An HTTP client.
    pub http: reqwest::Client,
    storage: Arc<Storage>,
    handle: Option<ShutdownHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A logged-in agent.
#[derive(Clone, Debug)]
pub struct TestAgent {
    /// Agent id.
    pub id: String,
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
    /// Bearer token.
    pub token: String,
    /// Display name.
    pub name: String,
}

/// A widget guest.
#[derive(Clone, Debug)]
pub struct TestGuest {
    /// Guest token.
    pub token: String,
    /// Its conversation.
    pub conversation_id: String,
    /// Its contact.
    pub contact_id: String,
}

/// The config every test server starts from: port 0, known admin, generous rate
/// limits (tests create many sessions and send many guest messages from one address).
pub fn base_config() -> Config {
    Config {
        bind: "127.0.0.1:0".parse().expect("literal address"),
        admin_email: ADMIN_EMAIL.into(),
        admin_password: Some(Secret::new(ADMIN_PASSWORD)),
        rate_login_per_min: 100_000,
        rate_widget_per_min: 100_000,
        guest_messages: GuestMessageLimits {
            per_guest_burst: 100_000,
            per_guest_per_min: 100_000,
            per_address_burst: 100_000,
            per_address_per_min: 100_000,
        },
        workers: Some(2),
        db_pool_size: 8,
        shutdown_timeout: Duration::from_secs(5),
        ..Config::default()
    }
}

impl TestServer {
    /// Starts a server on a fresh database with [`base_config`].
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a server on a fresh database, letting the test adjust the config.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        let storage = match backend {
            Backend::Sqlite => Storage::Sqlite(tempfile::tempdir().expect("temp dir")),
            Backend::Postgres => Storage::Postgres(
                tokio::task::spawn_blocking(PgDatabase::create)
                    .await
                    .expect("create db"),
            ),
        };
        let mut config = base_config();
        config.database = match &storage {
            Storage::Sqlite(dir) => DatabaseTarget::Sqlite {
                path: dir
                    .path()
                    .join("switchboard.db")
                    .to_string_lossy()
                    .into_owned(),
            },
            Storage::Postgres(db) => DatabaseTarget::Postgres {
                url: Secret::new(db.url()),
            },
            Storage::External => unreachable!("created just above"),
        };
        adjust(&mut config);
        Self::launch(backend, config, Arc::new(storage)).await
    }

    async fn launch(backend: Backend, config: Config, storage: Arc<Storage>) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let server_config = config.clone();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                match switchboard::start(server_config).await {
                    Ok(running) => {
                        let _ = tx.send(Ok((running.local_addr(), running.shutdown_handle())));
                        if let Err(e) = running.stopped().await {
                            eprintln!("test server stopped with error: {e}");
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        });
        let (addr, handle) = tokio::time::timeout(PATIENCE, rx)
            .await
            .expect("server start timed out")
            .expect("server thread died")
            .unwrap_or_else(|e| panic!("server failed to start: {e}"));
        Self {
            base: format!("http://{addr}"),
            ws_base: format!("ws://{addr}"),
            backend,
            config,
            http: test_http_client(),
            storage,
            handle: Some(handle),
            thread: Some(thread),
        }
    }

    /// Starts a server whose clock is manual (reading the real time at start; it
    /// moves only with [`TestServer::advance`]), so tests of scheduled work never
    /// sleep.
    pub async fn start_manual(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(backend, |cfg| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_millis();
            cfg.clock = Clock::Manual(ManualClock::new(i64::try_from(now).expect("ms fit i64")));
            adjust(cfg);
        })
        .await
    }

    /// The manual clock this server (and its siblings) run on.
    pub fn manual_clock(&self) -> ManualClock {
        match &self.config.clock {
            Clock::Manual(m) => m.clone(),
            Clock::System => panic!("this server runs on the system clock; use start_manual"),
        }
    }

    /// What the manual clock reads, epoch ms.
    pub fn now_ms(&self) -> i64 {
        self.manual_clock().now_ms()
    }

    /// Moves the manual clock forward; every node on it wakes its scheduler.
    pub fn advance(&self, by: Duration) {
        self.manual_clock().advance(by);
    }

    /// A second node on the same database (and the same clock), with its own
    /// config adjustments (e.g. a node id). Stopped when dropped, like any server.
    pub async fn sibling(&self, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.config.clone();
        config.bind = "127.0.0.1:0".parse().expect("literal address");
        adjust(&mut config);
        Self::launch(self.backend, config, self.storage.clone()).await
    }

    /// Schedules a job through the scheduler's own API, on this server's database
    /// (as a feature would, from outside the server's process state). The server
    /// is not nudged: it finds the job when its clock moves or it polls.
    pub async fn schedule_job(&self, job: NewJob) -> String {
        self.schedule_jobs(vec![job]).await.remove(0)
    }

    /// [`TestServer::schedule_job`] for several jobs, on one connection.
    pub async fn schedule_jobs(&self, jobs: Vec<NewJob>) -> Vec<String> {
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || {
            let db = switchboard::db::Db::open(&config).expect("open the database");
            let mut conn = db.conn().expect("a connection");
            jobs.into_iter()
                .map(|job| {
                    switchboard::scheduler::schedule(&mut conn, job)
                        .expect("schedule")
                        .0
                })
                .collect()
        })
        .await
        .expect("schedule task")
    }

    /// Makes a job run again now, as a node whose lease ran out would hand it to
    /// another (`scheduler::reschedule`: pending again, due at once). The server
    /// is not nudged.
    pub async fn rerun_job(&self, kind: switchboard::scheduler::JobKind, key: &str) {
        let (config, key) = (self.config.clone(), key.to_string());
        tokio::task::spawn_blocking(move || {
            let db = switchboard::db::Db::open(&config).expect("open the database");
            let mut conn = db.conn().expect("a connection");
            let moved =
                switchboard::scheduler::reschedule(&mut conn, kind, &key, 0).expect("reschedule");
            assert!(moved, "no job {key} to run again");
        })
        .await
        .expect("reschedule task");
    }

    /// A client for a server this harness did not start (e.g. a separate
    /// `switchboard` process listening on `addr`): the same HTTP and WebSocket
    /// helpers; `stop` and dropping do nothing to the server.
    pub fn remote(addr: std::net::SocketAddr, backend: Backend) -> Self {
        Self {
            base: format!("http://{addr}"),
            ws_base: format!("ws://{addr}"),
            backend,
            config: base_config(),
            http: test_http_client(),
            storage: Arc::new(Storage::External),
            handle: None,
            thread: None,
        }
    }

    /// Graceful shutdown; waits until the server thread has finished.
    pub async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .ok();
        }
    }

    /// Stops and starts again on the same database (a new port).
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let mut config = self.config.clone();
        config.bind = "127.0.0.1:0".parse().expect("literal address");
        Self::launch(self.backend, config, self.storage.clone()).await
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with an optional bearer token; returns status and JSON body (Null if none).
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("GET")).await
    }

    /// POST JSON with an optional bearer token; returns status and JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("POST")).await
    }

    /// POST raw bytes as JSON content type (for malformed-body tests).
    pub async fn post_raw(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("POST")).await
    }

    /// Logs in; returns the token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                "/api/auth/login",
                None,
                &json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, 200, "login failed: {body}");
        body["token"].as_str().expect("token").to_string()
    }

    /// The admin's token.
    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// The bootstrap admin as a [`TestAgent`] (logged in).
    pub async fn admin_agent(&self) -> TestAgent {
        let token = self.admin_token().await;
        let (status, me) = self.get("/api/auth/me", Some(&token)).await;
        assert_eq!(status, 200, "{me}");
        TestAgent {
            id: me["agent"]["id"].as_str().expect("id").to_string(),
            email: ADMIN_EMAIL.into(),
            password: ADMIN_PASSWORD.into(),
            token,
            name: me["agent"]["name"].as_str().unwrap_or("Admin").into(),
        }
    }

    /// Waits until the start-up template sync has stored `n` templates (the
    /// fixtures hold four).
    pub async fn templates_synced(&self, token: &str, n: usize) {
        eventually("templates synced", || async {
            let (_, body) = self.get("/api/templates", Some(token)).await;
            (body["templates"].as_array().map_or(0, Vec::len) == n).then_some(())
        })
        .await;
    }

    /// Creates an agent with `role` in the default team and logs it in.
    pub async fn agent(&self, role: &str) -> TestAgent {
        self.agent_in(role, None).await
    }

    /// Creates an agent with `role` in the given teams (`None`: the default team)
    /// and logs it in.
    pub async fn agent_in(&self, role: &str, team_ids: Option<&[&str]>) -> TestAgent {
        let admin = self.admin_token().await;
        let n = uuid::Uuid::new_v4().simple().to_string();
        let email = format!("{role}-{}@test.local", &n[..8]);
        let password = "agent-password-1".to_string();
        let name = format!("{role} {}", &n[..4]);
        let mut request = json!({"email": email, "name": name, "password": password, "role": role});
        if let Some(teams) = team_ids {
            request["team_ids"] = json!(teams);
        }
        let (status, body) = self.post("/api/agents", Some(&admin), &request).await;
        assert_eq!(status, 201, "create agent failed: {body}");
        let token = self.login(&email, &password).await;
        TestAgent {
            id: body["agent"]["id"].as_str().expect("id").to_string(),
            email,
            password,
            token,
            name,
        }
    }

    /// Creates a widget guest (new contact and conversation).
    pub async fn guest(&self) -> TestGuest {
        self.guest_with(json!({"name": "Visitor", "source": "test"}))
            .await
    }

    /// Creates a widget guest with a custom session body.
    pub async fn guest_with(&self, body: Value) -> TestGuest {
        let (status, body) = self.post("/api/widget/sessions", None, &body).await;
        assert!(
            status == 201 || status == 200,
            "widget session failed: {status} {body}"
        );
        TestGuest {
            token: body["guest_token"]
                .as_str()
                .expect("guest_token")
                .to_string(),
            conversation_id: body["conversation_id"]
                .as_str()
                .expect("conversation_id")
                .to_string(),
            contact_id: body["contact_id"].as_str().expect("contact_id").to_string(),
        }
    }

    /// Creates a team as the admin; returns its id.
    pub async fn create_team(&self, name: &str, slug: &str) -> String {
        let admin = self.admin_token().await;
        let (status, body) = self
            .post(
                "/api/teams",
                Some(&admin),
                &json!({"name": name, "slug": slug}),
            )
            .await;
        assert_eq!(status, 201, "create team failed: {body}");
        body["team"]["id"].as_str().expect("team id").to_string()
    }

    /// PUT JSON with an optional bearer token; returns status and JSON body.
    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.http.put(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("PUT")).await
    }

    /// PATCH JSON with an optional bearer token; returns status and JSON body.
    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.http.patch(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("PATCH")).await
    }

    /// DELETE with an optional bearer token; returns status and JSON body.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.delete(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("DELETE")).await
    }

    /// The id of the team every server starts with (slug `default`).
    pub async fn default_team_id(&self) -> String {
        let admin = self.admin_token().await;
        let (status, body) = self.get("/api/teams", Some(&admin)).await;
        assert_eq!(status, 200, "list teams failed: {body}");
        body["teams"]
            .as_array()
            .expect("teams")
            .iter()
            .find(|t| t["slug"] == "default")
            .and_then(|t| t["id"].as_str())
            .expect("default team")
            .to_string()
    }

    /// Changes a team's routing settings as the admin; returns the stored settings.
    pub async fn set_routing(&self, team_id: &str, settings: Value) -> Value {
        let admin = self.admin_token().await;
        let (status, body) = self
            .put(
                &format!("/api/teams/{team_id}/routing"),
                Some(&admin),
                &settings,
            )
            .await;
        assert_eq!(status, 200, "routing settings refused: {body}");
        body
    }

    /// Changes the default team's widget settings (greeting, away message, pre-chat
    /// form …) as the admin; returns the stored settings.
    pub async fn set_widget(&self, settings: Value) -> Value {
        let admin = self.admin_token().await;
        let team = self.default_team_id().await;
        let (status, body) = self
            .put(
                &format!("/api/teams/{team}/widget"),
                Some(&admin),
                &settings,
            )
            .await;
        assert_eq!(status, 200, "widget settings refused: {body}");
        body
    }

    /// Switches the default team to manual routing (no automatic assignment), for
    /// tests about delivery rather than routing.
    pub async fn manual_routing(&self) {
        let team = self.default_team_id().await;
        self.set_routing(&team, json!({"routing_mode": "manual"}))
            .await;
    }

    /// `POST /api/conversations/{id}/messages`; returns status and body.
    pub async fn post_message(
        &self,
        token: &str,
        conversation_id: &str,
        client_msg_id: &str,
        body: &str,
    ) -> (u16, Value) {
        self.post(
            &format!("/api/conversations/{conversation_id}/messages"),
            Some(token),
            &json!({"body": body, "client_msg_id": client_msg_id}),
        )
        .await
    }

    /// The whole history of a conversation over HTTP, walking `after_seq` pages.
    pub async fn history(&self, token: &str, conversation_id: &str) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        loop {
            let after = out.last().map_or(0, |m| m["seq"].as_i64().expect("seq"));
            let (status, body) = self
                .get(
                    &format!(
                        "/api/conversations/{conversation_id}/messages?after_seq={after}&limit=200"
                    ),
                    Some(token),
                )
                .await;
            assert_eq!(status, 200, "history failed: {body}");
            out.extend(
                body["messages"]
                    .as_array()
                    .expect("messages")
                    .iter()
                    .cloned(),
            );
            if body["has_more"] != json!(true) {
                return out;
            }
        }
    }

    /// `ws://127.0.0.1:<port>` + `path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.ws_base)
    }

    /// An authenticated agent socket (auth frame sent, `hello` received).
    pub async fn ws_agent(&self, token: &str) -> Ws {
        Ws::connect_authed(&format!("{}/ws/agent", self.ws_base), token).await
    }

    /// An authenticated guest socket.
    pub async fn ws_guest(&self, token: &str) -> Ws {
        Ws::connect_authed(&format!("{}/ws/guest", self.ws_base), token).await
    }

    /// A guest socket as the widget opens one: authenticated, then `resume` of its
    /// conversation from `last_seq` (a guest's live messages start at its first
    /// `resume`). Returns the socket and the replayed messages.
    pub async fn ws_guest_resumed(&self, guest: &TestGuest, last_seq: i64) -> (Ws, Vec<Value>) {
        let mut ws = self.ws_guest(&guest.token).await;
        let mut cursors = serde_json::Map::new();
        cursors.insert(guest.conversation_id.clone(), json!(last_seq));
        let (replayed, resumed) = ws.resume(Value::Object(cursors)).await;
        assert!(
            resumed["cursors"].get(&guest.conversation_id).is_some(),
            "resume of the guest's own conversation refused: {resumed}"
        );
        (ws, replayed)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A test that panicked before `stop` still must not leave a server running
        // into the next test's database drop; stop it on a scratch runtime.
        if let Some(handle) = self.handle.take() {
            // The runtime must be built and dropped off the test's async thread.
            std::thread::scope(|s| {
                s.spawn(move || {
                    if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        rt.block_on(handle.shutdown());
                    }
                });
            });
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// A WebSocket client speaking the hub's JSON protocol.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `hello` frame (Null before authentication).
    pub hello: Value,
}

impl Ws {
    /// Connects without authenticating.
    pub async fn connect(url: &str) -> Self {
        let (stream, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .expect("websocket connect");
        Self {
            stream,
            hello: Value::Null,
        }
    }

    /// Connects with extra request headers (e.g. `Origin`, `Authorization`);
    /// returns the HTTP status on a refused upgrade.
    pub async fn connect_with_headers(url: &str, headers: &[(&str, &str)]) -> Result<Self, u16> {
        let mut req = url.into_client_request().expect("request");
        for (k, v) in headers {
            req.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())
                    .expect("header name"),
                v.parse().expect("header value"),
            );
        }
        match tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(req))
            .await
            .expect("connect timed out")
        {
            Ok((stream, _)) => Ok(Self {
                stream,
                hello: Value::Null,
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("websocket connect: {e}"),
        }
    }

    /// Connects over a TCP socket whose receive buffer is tiny, so the server's
    /// writes back up quickly when the test stops reading (slow-consumer tests).
    pub async fn connect_slow_reader(url: &str, token: &str) -> Self {
        let addr: std::net::SocketAddr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .expect("host")
            .parse()
            .expect("socket address");
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        socket.connect(&addr.into()).expect("connect");
        socket.set_nonblocking(true).expect("nonblocking");
        let tcp = TcpStream::from_std(socket.into()).expect("tokio stream");
        let (stream, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
            .await
            .expect("handshake");
        let mut ws = Self {
            stream,
            hello: Value::Null,
        };
        ws.send_json(&json!({"type": "auth", "token": token})).await;
        ws.hello = ws.next_of_type("hello").await;
        ws
    }

    /// Connects, sends `auth`, waits for `hello` (panics on anything else).
    pub async fn connect_authed(url: &str, token: &str) -> Self {
        let mut ws = Self::connect(url).await;
        ws.send_json(&json!({"type": "auth", "token": token})).await;
        let hello = ws.next_json().await;
        assert_eq!(hello["type"], "hello", "expected hello, got {hello}");
        ws.hello = hello;
        ws
    }

    /// Sends a JSON frame.
    pub async fn send_json(&mut self, v: &Value) {
        self.send_text(&v.to_string()).await;
    }

    /// Sends a text frame as is.
    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.expect("send");
    }

    /// Sends any WebSocket message.
    pub async fn send_raw(&mut self, msg: Message) {
        self.stream.send(msg).await.expect("send");
    }

    /// The next data frame as JSON; pings are answered by the library. Panics on
    /// close or after [`PATIENCE`].
    pub async fn next_json(&mut self) -> Value {
        match self.next_json_or_close().await {
            Ok(v) => v,
            Err(close) => panic!("socket closed while waiting for a frame: {close:?}"),
        }
    }

    /// The next data frame as JSON, or the close frame if the server closed.
    pub async fn next_json_or_close(&mut self) -> Result<Value, Option<CloseFrame>> {
        // One deadline for the whole wait: server pings (skipped here) must not keep
        // restarting the safety net.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("no frame within the patience window");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return Ok(serde_json::from_str(t.as_str()).expect("server frames are JSON"))
                }
                Some(Ok(Message::Close(frame))) => return Err(frame),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// Skips frames until one of `kind` arrives.
    pub async fn next_of_type(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let v = tokio::time::timeout_at(deadline, self.next_json())
                .await
                .unwrap_or_else(|_| panic!("no {kind} frame within the patience window"));
            if v["type"] == kind {
                return v;
            }
        }
    }

    /// Waits for the server to close the socket; returns the close frame.
    pub async fn expect_close(&mut self) -> Option<CloseFrame> {
        loop {
            match self.next_json_or_close().await {
                Ok(_) => continue,
                Err(frame) => return frame,
            }
        }
    }

    /// Sends a message and waits for its `ack`; returns the ack.
    pub async fn send_message(
        &mut self,
        conversation_id: &str,
        client_msg_id: &str,
        body: &str,
    ) -> Value {
        self.send_json(&json!({
            "type": "send",
            "conversation_id": conversation_id,
            "client_msg_id": client_msg_id,
            "body": body,
        }))
        .await;
        loop {
            let v = self.next_json().await;
            if v["type"] == "ack" && v["client_msg_id"] == client_msg_id {
                return v;
            }
            if v["type"] == "error" && v["ref"] == client_msg_id {
                panic!("send {client_msg_id} failed: {v}");
            }
        }
    }

    /// Sends `n` messages (`client_msg_id` `"{prefix}-{i}"`, body `"{prefix} says {i}"`)
    /// without waiting between them, then collects their `n` acks in arrival order.
    /// Any `error` frame fails the test.
    pub async fn send_many(&mut self, conversation_id: &str, prefix: &str, n: usize) -> Vec<Value> {
        for i in 0..n {
            self.send_json(&json!({
                "type": "send",
                "conversation_id": conversation_id,
                "client_msg_id": format!("{prefix}-{i}"),
                "body": format!("{prefix} says {i}"),
            }))
            .await;
        }
        let mut acks = Vec::with_capacity(n);
        while acks.len() < n {
            let v = self.next_json().await;
            assert_ne!(v["type"], "error", "send failed: {v}");
            if v["type"] == "ack" {
                acks.push(v);
            }
        }
        acks
    }

    /// Collects `message` frames of `conversation_id` until `count` have arrived
    /// (other frames are skipped).
    pub async fn collect_messages(&mut self, conversation_id: &str, count: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let v = self.next_json().await;
            if v["type"] == "message" && v["conversation_id"] == conversation_id {
                out.push(v);
            }
        }
        out
    }

    /// Sends `resume` and returns every `message` frame received before `resumed`.
    pub async fn resume(&mut self, cursors: Value) -> (Vec<Value>, Value) {
        self.send_json(&json!({"type": "resume", "cursors": cursors}))
            .await;
        let mut messages = Vec::new();
        loop {
            let v = self.next_json().await;
            match v["type"].as_str() {
                Some("message") => messages.push(v),
                Some("resumed") => return (messages, v),
                _ => {}
            }
        }
    }

    /// Closes the socket politely.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// The next WebSocket message of any kind (pings and pongs included; the library
    /// still answers pings by itself); `None` once the connection has ended.
    /// Panics after [`PATIENCE`].
    pub async fn next_message(&mut self) -> Option<Message> {
        let msg = tokio::time::timeout(PATIENCE, self.stream.next())
            .await
            .expect("no frame within the patience window");
        match msg {
            Some(Ok(m)) => Some(m),
            Some(Err(_)) | None => None,
        }
    }

    /// A round trip through the session: sends `{"type":"ping"}` and returns every
    /// JSON frame that arrived before the `pong`. Anything the server queued for this
    /// session before it read the ping comes out ahead of the pong, so this shows
    /// what did (or did not) arrive up to now without waiting on a clock.
    pub async fn barrier(&mut self) -> Vec<Value> {
        self.send_json(&json!({"type": "ping"})).await;
        let mut before = Vec::new();
        loop {
            let v = self.next_json().await;
            if v["type"] == "pong" {
                return before;
            }
            before.push(v);
        }
    }

    /// The underlying TCP stream (for tests that must bypass the WebSocket library).
    pub fn tcp(&mut self) -> &mut TcpStream {
        match self.stream.get_mut() {
            MaybeTlsStream::Plain(tcp) => tcp,
            _ => panic!("test sockets are plain TCP"),
        }
    }
}

/// A frame read straight off a raw socket (see [`RawWs`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFrame {
    /// RFC 6455 opcode: 0x1 text, 0x2 binary, 0x8 close, 0x9 ping, 0xA pong.
    pub opcode: u8,
    /// Unmasked payload.
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// Text opcode.
    pub const TEXT: u8 = 0x1;
    /// Close opcode.
    pub const CLOSE: u8 = 0x8;
    /// Ping opcode.
    pub const PING: u8 = 0x9;

    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == Self::CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// A text frame's payload as JSON.
    pub fn json(&self) -> Option<Value> {
        (self.opcode == Self::TEXT)
            .then(|| serde_json::from_slice(&self.payload).ok())
            .flatten()
    }
}

/// A hand-rolled WebSocket client on a plain TCP socket: it answers nothing by itself
/// (no pongs, no close replies), so it plays a client that has gone silent, and
/// every byte the server sends is visible.
pub struct RawWs {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Connects and completes the upgrade handshake to `url` (`ws://host:port/path`).
    pub async fn connect(url: &str) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rest = url.trim_start_matches("ws://");
        let (host, path) = rest.split_once('/').expect("ws://host:port/path");
        let mut tcp = tokio::time::timeout(PATIENCE, TcpStream::connect(host))
            .await
            .expect("connect timed out")
            .expect("tcp connect");
        let request = format!(
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes())
            .await
            .expect("write handshake");
        let mut buf = Vec::new();
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(PATIENCE, tcp.read(&mut chunk))
                .await
                .expect("handshake timed out")
                .expect("read handshake");
            assert!(n > 0, "server closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        buf.drain(..end);
        Self { tcp, buf }
    }

    /// Sends one masked frame (clients must mask).
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | u8::try_from(n).expect("small")),
            n if n <= usize::from(u16::MAX) => {
                out.push(0x80 | 126);
                out.extend_from_slice(&u16::try_from(n).expect("fits").to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = *uuid::Uuid::new_v4().as_bytes();
        out.extend_from_slice(&mask[..4]);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.tcp.write_all(&out).await.expect("write frame");
    }

    /// Sends a JSON text frame.
    pub async fn send_json(&mut self, v: &Value) {
        self.send_frame(RawFrame::TEXT, v.to_string().as_bytes())
            .await;
    }

    /// The next frame, or `None` at end of stream (the server closed the TCP
    /// connection, or reset it). Panics after [`PATIENCE`] without a frame.
    pub async fn next_frame(&mut self) -> Option<RawFrame> {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 8192];
            let read = tokio::time::timeout(PATIENCE, self.tcp.read(&mut chunk))
                .await
                .expect("no bytes within the patience window");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// Parses one unmasked server frame from the front of `buf`: the frame and how many
/// bytes it used, or `None` if the buffer does not yet hold a whole frame.
fn parse_frame(buf: &[u8]) -> Option<(RawFrame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    assert_eq!(buf[1] & 0x80, 0, "server frames are never masked");
    let (len, mut at) = match buf[1] & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (usize::try_from(u64::from_be_bytes(bytes)).ok()?, 10)
        }
        n => (usize::from(n), 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    at += len;
    Some((RawFrame { opcode, payload }, at))
}

/// Asserts an HTTP error body has exactly the documented shape
/// `{"error": code, "message": "<non-empty sentence>"}`.
pub fn assert_error_body(body: &Value, code: &str) {
    let obj = body
        .as_object()
        .unwrap_or_else(|| panic!("error body is not a JSON object: {body}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["error", "message"], "error body keys: {body}");
    assert_eq!(body["error"], code, "error code: {body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| !m.trim().is_empty()),
        "error message must be a non-empty string: {body}"
    );
}

/// The `seq` values of a list of `message` frames.
pub fn seqs(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect()
}

// ---------------------------------------------------------------------------
// WhatsApp helpers: fixtures, signatures, webhook posts and a fake provider.
// ---------------------------------------------------------------------------

/// App secret the WhatsApp tests configure (the README's test-vector secret).
pub const WA_APP_SECRET: &str = "test_app_secret";
/// Verify token the WhatsApp tests configure.
pub const WA_VERIFY_TOKEN: &str = "verify-me";
/// WAHA HMAC key the tests configure (the README's test-vector key).
pub const WAHA_HMAC_KEY: &str = "my-secret-key";
/// WAHA API key the tests configure; the fake provider checks it.
pub const WAHA_API_KEY: &str = "waha-test-key";
/// Access token the tests configure; the fake provider checks it.
pub const WA_ACCESS_TOKEN: &str = "EAAG-test-token";
/// Phone number id the tests configure.
pub const WA_PHONE_NUMBER_ID: &str = "106540352242922";

/// The raw bytes of `tests/fixtures/whatsapp/<name>`.
pub fn wa_fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/whatsapp/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// A fixture parsed as JSON.
pub fn wa_fixture_json(name: &str) -> Value {
    serde_json::from_slice(&wa_fixture(name)).expect("fixture is JSON")
}

/// `sha256=<hex>` HMAC-SHA256 of `body` with `secret` (Meta's `X-Hub-Signature-256`).
pub fn meta_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Hex HMAC-SHA512 of `body` with `key` (WAHA's `X-Webhook-Hmac`).
pub fn waha_hmac(key: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Gives every message in a Meta webhook payload a fresh id `{prefix}-{n}` (the
/// providers' documentation examples reuse one wamid across types).
pub fn with_fresh_wamids(mut payload: Value, prefix: &str) -> Value {
    let mut n = 0;
    for entry in payload["entry"].as_array_mut().into_iter().flatten() {
        for change in entry["changes"].as_array_mut().into_iter().flatten() {
            for m in change["value"]["messages"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                n += 1;
                m["id"] = json!(format!("wamid.{prefix}-{n}"));
            }
        }
    }
    payload
}

/// A Meta text-message webhook from `from` with message id `wamid` and `text`.
pub fn meta_text_webhook(from: &str, wamid: &str, text: &str) -> Value {
    let mut v = wa_fixture_json("meta_text_message.json");
    let value = &mut v["entry"][0]["changes"][0]["value"];
    value["contacts"][0]["wa_id"] = json!(from);
    value["messages"][0]["from"] = json!(from);
    value["messages"][0]["id"] = json!(wamid);
    value["messages"][0]["text"]["body"] = json!(text);
    v
}

/// A Meta status webhook with one status entry per `(wamid, status)`.
pub fn meta_status_webhook(statuses: &[(&str, &str)]) -> Value {
    let list: Vec<Value> = statuses
        .iter()
        .map(|(id, status)| {
            json!({"id": id, "status": status, "timestamp": "1751142888", "recipient_id": "16505551234"})
        })
        .collect();
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881",
        "phone_number_id": WA_PHONE_NUMBER_ID}, "statuses": list}}]}]})
}

impl TestServer {
    /// POSTs raw bytes to a webhook with extra headers; returns status and JSON body.
    pub async fn post_webhook(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        read(req.send().await.expect("POST webhook")).await
    }

    /// POSTs `body` to `/webhooks/whatsapp` with a correct signature.
    pub async fn meta_webhook(&self, body: &[u8]) -> (u16, Value) {
        let sig = meta_signature(WA_APP_SECRET, body);
        self.post_webhook(
            "/webhooks/whatsapp",
            body.to_vec(),
            &[("x-hub-signature-256", sig)],
        )
        .await
    }

    /// POSTs `body` to `/webhooks/waha` with a correct HMAC.
    pub async fn waha_webhook(&self, body: &[u8]) -> (u16, Value) {
        let sig = waha_hmac(WAHA_HMAC_KEY, body);
        self.post_webhook(
            "/webhooks/waha",
            body.to_vec(),
            &[
                ("x-webhook-hmac", sig),
                ("x-webhook-hmac-algorithm", "sha512".into()),
            ],
        )
        .await
    }

    /// Conversations visible to `token` (first page).
    pub async fn conversations(&self, token: &str) -> Vec<Value> {
        let (status, body) = self.get("/api/conversations?limit=200", Some(token)).await;
        assert_eq!(status, 200, "list failed: {body}");
        body["conversations"]
            .as_array()
            .expect("conversations")
            .clone()
    }
}

/// Sends a PostgreSQL test server's database traffic through the cuttable proxy at
/// `proxy_addr` (host:port) instead of 127.0.0.1:5432, so a test can take the
/// database away under a running hub; returns the database's name.
pub fn route_postgres_through(cfg: &mut Config, proxy_addr: &str) -> String {
    let DatabaseTarget::Postgres { url } = &cfg.database else {
        panic!("a PostgreSQL test server");
    };
    let name = url
        .expose()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let routed = url.expose().replace("127.0.0.1:5432", proxy_addr);
    assert_ne!(
        &routed,
        url.expose(),
        "the test database URL must go through 127.0.0.1:5432"
    );
    cfg.database = DatabaseTarget::Postgres {
        url: Secret::new(routed),
    };
    name
}

/// The WhatsApp Business Account of the template fixtures
/// (`meta_templates_*.json`).
pub const FIXTURE_WABA: &str = "102290129340398";

/// [`whatsapp_config`] plus the env number's WABA, so the hub syncs the fake's
/// templates at start.
pub fn whatsapp_config_with_templates(cfg: &mut Config, fake: &str) {
    whatsapp_config(cfg, fake);
    cfg.whatsapp.waba_id = Some(FIXTURE_WABA.into());
}

/// Configures a test server for WhatsApp against a fake provider at `fake`:
/// both providers point at it, secrets are the test constants, and the outbox
/// polls and backs off in milliseconds.
pub fn whatsapp_config(cfg: &mut Config, fake: &str) {
    let wa = &mut cfg.whatsapp;
    wa.app_secret = Some(Secret::new(WA_APP_SECRET));
    wa.verify_token = Some(Secret::new(WA_VERIFY_TOKEN));
    wa.access_token = Some(Secret::new(WA_ACCESS_TOKEN));
    wa.phone_number_id = Some(WA_PHONE_NUMBER_ID.into());
    wa.graph_url = format!("{fake}/v25.0");
    wa.waha_url = Some(fake.to_string());
    wa.waha_api_key = Some(Secret::new(WAHA_API_KEY));
    wa.waha_hmac_key = Some(Secret::new(WAHA_HMAC_KEY));
    wa.outbox_poll = Duration::from_millis(100);
    wa.outbox_backoff_base = Duration::from_millis(50);
    wa.outbox_backoff_max = Duration::from_millis(400);
    wa.provider_timeout = Duration::from_secs(5);
}

/// One request the fake provider received.
#[derive(Clone, Debug)]
pub struct FakeCall {
    /// Request path.
    pub path: String,
    /// `Authorization` header.
    pub authorization: Option<String>,
    /// `X-Api-Key` header.
    pub api_key: Option<String>,
    /// JSON body (Null for GETs).
    pub body: Value,
    /// The status the fake answered.
    pub status: u16,
    /// Query string (without `?`).
    pub query: String,
    /// When the fake received it (its own monotonic clock).
    pub at: std::time::Instant,
}

#[derive(Default)]
struct FakeState {
    calls: Vec<FakeCall>,
    /// Answer the next N send calls with `fail_status`/`fail_body`.
    fail_next: usize,
    fail_status: u16,
    fail_body: Value,
    sent: usize,
    /// What `GET /api/sessions/{name}` reports as the WAHA session's status.
    session_status: Option<String>,
    /// Pages `GET /{waba}/message_templates` serves (default: the two fixture pages).
    template_pages: Option<Vec<Value>>,
}

/// A fake Graph API + WAHA server on 127.0.0.1:0 (its own actix system and thread).
/// Send endpoints answer like the providers, or fail while told to; media
/// endpoints serve `FAKE_MEDIA`.
pub struct FakeProvider {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    state: Arc<std::sync::Mutex<FakeState>>,
    handle: actix_web::dev::ServerHandle,
}

/// Bytes every fake media download returns.
pub const FAKE_MEDIA: &[u8] = b"\xff\xd8\xff fake jpeg bytes";

impl FakeProvider {
    /// Starts the fake.
    pub async fn start() -> Self {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        let state = Arc::new(std::sync::Mutex::new(FakeState::default()));
        let shared = state.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    let st = shared.clone();
                    App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                        let st = st.clone();
                        async move {
                            let path = req.path().to_string();
                            let header = |n: &str| {
                                req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string)
                            };
                            let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            let mut s = st.lock().unwrap();
                            let is_media = path.contains("/media-bytes/") || path.starts_with("/api/files/");
                            let is_lookup = req.method() == actix_web::http::Method::GET && !is_media;
                            let (status, reply): (u16, HttpResponse) = if is_media {
                                (200, HttpResponse::Ok().content_type("image/jpeg").body(FAKE_MEDIA))
                            } else if is_lookup && path.starts_with("/api/sessions/") {
                                let name = path.trim_start_matches("/api/sessions/").to_string();
                                let status = s.session_status.clone().unwrap_or_else(|| "WORKING".into());
                                (200, HttpResponse::Ok().json(json!({"name": name, "status": status})))
                            } else if is_lookup && path.ends_with("/message_templates") {
                                (200, HttpResponse::Ok().json(template_page(&s, req.query_string())))
                            } else if is_lookup {
                                let host = header("host").unwrap_or_default();
                                (200, HttpResponse::Ok().json(json!({
                                    "url": format!("http://{host}/media-bytes{path}"),
                                    "mime_type": "image/jpeg",
                                })))
                            } else if s.fail_next > 0 {
                                s.fail_next -= 1;
                                let code = s.fail_status;
                                let b = s.fail_body.clone();
                                (code, HttpResponse::build(
                                    actix_web::http::StatusCode::from_u16(code).unwrap(),
                                ).json(b))
                            } else {
                                s.sent += 1;
                                let n = s.sent;
                                let reply = if path.ends_with("/messages") {
                                    json!({"messaging_product": "whatsapp", "messages": [{"id": format!("wamid.fake-{n}")}]})
                                } else {
                                    json!({"id": format!("true_16505551234@c.us_FAKE{n}")})
                                };
                                (200, HttpResponse::Ok().json(reply))
                            };
                            s.calls.push(FakeCall {
                                path,
                                authorization: header("authorization"),
                                api_key: header("x-api-key"),
                                body: json_body,
                                status,
                                query: req.query_string().to_string(),
                                at: std::time::Instant::now(),
                            });
                            reply
                        }
                    }))
                })
                .workers(1)
                .bind("127.0.0.1:0")
                .expect("bind fake");
                let addr = server.addrs()[0];
                let server = server.run();
                let _ = tx.send((addr, server.handle()));
                let _ = server.await;
            });
        });
        let (addr, handle) = rx.await.expect("fake provider started");
        Self {
            base: format!("http://{addr}"),
            state,
            handle,
        }
    }

    /// Fails the next `n` send calls with `status` and JSON `body`.
    pub fn fail_next(&self, n: usize, status: u16, body: Value) {
        let mut s = self.state.lock().unwrap();
        s.fail_next = n;
        s.fail_status = status;
        s.fail_body = body;
    }

    /// Sets the status WAHA's `GET /api/sessions/{name}` reports (default `WORKING`).
    pub fn set_session_status(&self, status: &str) {
        self.state.lock().unwrap().session_status = Some(status.to_string());
    }

    /// Replaces the pages of the template list (each a Graph answer with `data`
    /// and `paging`; page i+1 is served for `after=` page i's `paging.cursors.after`).
    pub fn set_template_pages(&self, pages: Vec<Value>) {
        self.state.lock().unwrap().template_pages = Some(pages);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<FakeCall> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Calls to paths ending with `suffix`.
    pub fn calls_to(&self, suffix: &str) -> Vec<FakeCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.path.ends_with(suffix))
            .collect()
    }

    /// Waits (up to [`PATIENCE`]) until `pred` holds for the calls so far.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[FakeCall]) -> bool) -> Vec<FakeCall> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let calls = self.calls();
            if pred(&calls) {
                return calls;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "fake provider never saw: {what}; calls: {calls:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the fake.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// The template-list page a query asks for: the first page without `after`, else
/// the page following the one whose `paging.cursors.after` it names.
fn template_page(s: &FakeState, query: &str) -> Value {
    let pages = s.template_pages.clone().unwrap_or_else(|| {
        vec![
            wa_fixture_json("meta_templates_page1.json"),
            wa_fixture_json("meta_templates_page2.json"),
        ]
    });
    let after = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("after="))
        .map(str::to_string);
    let index = match after {
        None => 0,
        Some(a) => pages
            .iter()
            .position(|p| p["paging"]["cursors"]["after"] == a.as_str())
            .map_or(pages.len(), |i| i + 1),
    };
    pages
        .get(index)
        .cloned()
        .unwrap_or_else(|| json!({"data": [], "paging": {}}))
}

impl TestServer {
    /// Runs one SQL statement directly on the server's database (both backends), for
    /// tests that must set up a state no API produces (e.g. a message from 25 hours ago).
    pub async fn execute_sql(&self, sql: &str) {
        let storage = self.storage.clone();
        let sql = sql.to_string();
        tokio::task::spawn_blocking(move || match &*storage {
            Storage::Sqlite(dir) => {
                let path = dir.path().join("switchboard.db");
                let mut c = diesel::SqliteConnection::establish(&path.to_string_lossy())
                    .expect("open sqlite");
                // Wait for the server's writers (as its own connections do) instead
                // of failing with "database is locked".
                diesel::sql_query("PRAGMA busy_timeout = 5000")
                    .execute(&mut c)
                    .expect("busy_timeout");
                diesel::sql_query(sql).execute(&mut c).expect("sql");
            }
            Storage::Postgres(db) => {
                let mut c = PgConnection::establish(db.url()).expect("connect");
                diesel::sql_query(sql).execute(&mut c).expect("sql");
            }
            Storage::External => panic!("execute_sql needs a server this harness started"),
        })
        .await
        .expect("sql task");
    }
}

impl TestServer {
    /// Waits until the conversation has a lead satisfying `pred`; returns it.
    pub async fn lead_where(
        &self,
        token: &str,
        conversation_id: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(&format!("the lead of {conversation_id}"), || async {
            let (status, body) = self
                .get(
                    &format!("/api/conversations/{conversation_id}/lead"),
                    Some(token),
                )
                .await;
            (status == 200 && pred(&body)).then_some(body)
        })
        .await
    }
}

/// The HTTP client of a test server. Idle pooled connections are dropped after 2 s,
/// before actix-web's 5 s keep-alive closes them from the server's side: a request
/// sent on a connection the server is closing at that moment fails with hyper's
/// `IncompleteMessage` (hyperium/hyper#2136), which a test that paused for a browser
/// step hit in CI.
fn test_http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("http client")
}

/// One text column of a raw SQL query's rows (`SELECT x AS value …`).
#[derive(diesel::QueryableByName)]
struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    value: Option<String>,
}

impl TestServer {
    /// Reads one text column straight from the server's database (both backends):
    /// the query must name it `value`. For checks no API can make, such as that a
    /// secret is not stored as plaintext.
    pub async fn query_text(&self, sql: &str) -> Vec<Option<String>> {
        let storage = self.storage.clone();
        let sql = sql.to_string();
        tokio::task::spawn_blocking(move || match &*storage {
            Storage::Sqlite(dir) => {
                let path = dir.path().join("switchboard.db");
                let mut c = diesel::SqliteConnection::establish(&path.to_string_lossy())
                    .expect("open sqlite");
                diesel::sql_query("PRAGMA busy_timeout = 5000")
                    .execute(&mut c)
                    .expect("busy_timeout");
                diesel::sql_query(sql).load::<TextRow>(&mut c).expect("sql")
            }
            Storage::Postgres(db) => {
                let mut c = PgConnection::establish(db.url()).expect("connect");
                diesel::sql_query(sql).load::<TextRow>(&mut c).expect("sql")
            }
            Storage::External => panic!("query_text needs a server this harness started"),
        })
        .await
        .expect("sql task")
        .into_iter()
        .map(|r| r.value)
        .collect()
    }
}
