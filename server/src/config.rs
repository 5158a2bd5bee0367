//! Runtime configuration: every knob the hub reads from its environment.
//!
//! The names and defaults are documented in `docs/configuration.md`; keep the two in
//! step. Secrets are wrapped in [`Secret`] so that `Debug` output (and therefore any
//! log line that prints the config) never shows them.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::error::AppError;
use crate::ratelimit::BackoffPolicy;

/// A string that must never appear in logs. `Debug` prints `"***"`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used (hashing, signing, HTTP headers).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Which database the hub stores everything in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// An SQLite file (created on first start, parent directories included).
    Sqlite {
        /// Filesystem path of the database file.
        path: String,
    },
    /// A PostgreSQL server, given as a libpq connection URL.
    Postgres {
        /// `postgres://user@host:port/db?…`
        url: Secret,
    },
}

impl DatabaseTarget {
    /// Parses `DATABASE_URL`: `postgres://…`/`postgresql://…` select PostgreSQL;
    /// `sqlite://path`, `sqlite:path` or a bare path select an SQLite file.
    ///
    /// # Errors
    /// [`AppError::Validation`] for an empty value or an unsupported scheme such as `mysql://`.
    pub fn parse(url: &str) -> Result<Self, AppError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres {
                url: Secret::new(url),
            });
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            return Err(AppError::Validation("DATABASE_URL is empty".into()));
        }
        if path.contains("://") {
            return Err(AppError::Validation(format!(
                "DATABASE_URL scheme not supported (use sqlite:// or postgres://): {}",
                path.split("://").next().unwrap_or_default()
            )));
        }
        Ok(Self::Sqlite { path: path.into() })
    }

    /// Writer threads used when `SWITCHBOARD_WRITERS` is unset.
    pub fn default_writers(&self) -> usize {
        match self {
            Self::Sqlite { .. } => 1,
            Self::Postgres { .. } => 4,
        }
    }

    /// Whether campaign copies get a writer thread of their own (`writer::Lane`):
    /// on PostgreSQL, which commits in parallel; SQLite's one write lock would
    /// only make the two threads take turns.
    pub fn bulk_writer(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }

    /// `"sqlite"` or `"postgres"`, for logs and `/readyz`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }
}

/// Everything the hub can be told at start. Build it with [`Config::from_env`] in the
/// binary, or fill the fields directly in tests (start from [`Config::default`]).
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on (`SWITCHBOARD_BIND`, default `127.0.0.1:8080`; port 0 picks a free port).
    pub bind: SocketAddr,
    /// Where data lives (`DATABASE_URL`, default `sqlite://data/switchboard.db`).
    pub database: DatabaseTarget,
    /// Connections in the database pool (`SWITCHBOARD_DB_POOL_SIZE`, default 8).
    pub db_pool_size: u32,
    /// How long a request waits for a pooled connection before answering 503
    /// (`SWITCHBOARD_DB_TIMEOUT`, seconds, default 3).
    pub db_timeout: Duration,
    /// Most message appends a writer commits in one transaction (`SWITCHBOARD_WRITER_BATCH`, default 256).
    pub writer_batch: usize,
    /// Writer threads (`SWITCHBOARD_WRITERS`); default 1 on SQLite (one write lock),
    /// 4 on PostgreSQL (commits proceed in parallel).
    pub writers: Option<usize>,
    /// Extra delay campaign copies may add to a chat message's commit, on top of
    /// its usual delay and a tenth of it, before the bulk lane slows them down
    /// (`SWITCHBOARD_BULK_YIELD_MS`, ms, default 3; `off`: copies run uncapped).
    /// PostgreSQL only (`writer::share`).
    pub bulk_yield: Option<Duration>,
    /// Email of the admin created on first start (`SWITCHBOARD_ADMIN_EMAIL`, default `admin@switchboard.local`).
    pub admin_email: String,
    /// Password of that admin (`SWITCHBOARD_ADMIN_PASSWORD`); when unset a random one is
    /// generated and printed once on standard error.
    pub admin_password: Option<Secret>,
    /// Key that signs agent and guest tokens (`SWITCHBOARD_SECRET`); when unset a random
    /// key is generated on first start and kept in the database, so every node shares it.
    pub secret: Option<Secret>,
    /// Extra origins allowed to open agent WebSockets (`SWITCHBOARD_ALLOWED_ORIGINS`,
    /// comma-separated, e.g. `https://inbox.example.com`). The hub's own origin is always allowed.
    pub allowed_origins: Vec<String>,
    /// Interval between server pings (`SWITCHBOARD_HEARTBEAT`, seconds, default 15).
    pub heartbeat: Duration,
    /// A client silent this long is disconnected (`SWITCHBOARD_CLIENT_TIMEOUT`, seconds, default 45).
    pub client_timeout: Duration,
    /// Time allowed between connecting and a valid `auth` frame (`SWITCHBOARD_AUTH_TIMEOUT`, seconds, default 10).
    pub auth_timeout: Duration,
    /// Frames that may wait for one slow client before it is closed with 1013
    /// (`SWITCHBOARD_WS_OUTBOUND_QUEUE`, default 1024).
    pub ws_outbound_queue: usize,
    /// Largest text frame accepted, in bytes (`SWITCHBOARD_MAX_FRAME_BYTES`, default 65536).
    pub max_frame_bytes: usize,
    /// Largest HTTP JSON body, in bytes (`SWITCHBOARD_MAX_BODY_BYTES`, default 65536).
    pub max_body_bytes: usize,
    /// A conversation actor with no activity this long stops (`SWITCHBOARD_CONVERSATION_IDLE`, seconds, default 300).
    pub conversation_idle: Duration,
    /// An agent whose last session closed stays online this long, so a page reload
    /// does not flip presence (`SWITCHBOARD_PRESENCE_GRACE`, seconds, default 20).
    pub presence_grace: Duration,
    /// Lifetime of agent tokens (`SWITCHBOARD_AGENT_TOKEN_TTL`, seconds, default 12 h).
    pub agent_token_ttl: Duration,
    /// Lifetime of guest tokens (`SWITCHBOARD_GUEST_TOKEN_TTL`, seconds, default 90 days).
    pub guest_token_ttl: Duration,
    /// Login attempts allowed per client address per minute (`SWITCHBOARD_RATE_LOGIN`, default 10).
    pub rate_login_per_min: u32,
    /// Widget sessions created per client address per minute (`SWITCHBOARD_RATE_WIDGET`, default 30).
    pub rate_widget_per_min: u32,
    /// How many messages a guest, and all guests of one address, may send.
    pub guest_messages: GuestMessageLimits,
    /// The per-account login back-off after consecutive wrong passwords.
    pub login_backoff: BackoffPolicy,
    /// Reverse proxies whose `X-Forwarded-For` names the real client
    /// (`SWITCHBOARD_TRUSTED_PROXIES`, comma-separated addresses or CIDRs, default
    /// none). Without it every limit keys on the TCP peer address.
    pub trusted_proxies: Vec<IpNet>,
    /// HTTP worker threads (`SWITCHBOARD_WORKERS`, default: one per CPU core).
    pub workers: Option<usize>,
    /// Time given to in-flight requests and writes on shutdown (`SWITCHBOARD_SHUTDOWN_TIMEOUT`, seconds, default 10).
    pub shutdown_timeout: Duration,
    /// The WhatsApp channel: Meta Cloud API, WAHA, the outbox and media fetching.
    pub whatsapp: WhatsAppConfig,
    /// Multi-node mode: Redis carries events, presence and resyncs between nodes.
    pub cluster: ClusterConfig,
    /// The OpenAI-compatible model endpoint behind AI replies and embeddings.
    pub ai: AiConfig,
    /// How often the inbound pipeline looks for conversations whose progress is behind
    /// with no live lease (`SWITCHBOARD_PIPELINE_SWEEP_MS`, default 10 000): a stopped
    /// node's work, a failed pass.
    pub pipeline_sweep: Duration,
    /// How often open tasks are checked for being overdue (`task_due` pushes).
    /// `SWITCHBOARD_LEAD_TASK_CHECK_MS`, default 30 s.
    pub lead_task_check: Duration,
    /// Where "now" comes from for the scheduler (not from the environment: always
    /// the system clock in production; tests pass a manual clock).
    pub clock: crate::clock::Clock,
    /// The durable scheduler (`docs/scheduler.md`).
    pub scheduler: crate::scheduler::SchedulerConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: DatabaseTarget::Sqlite {
                path: "data/switchboard.db".into(),
            },
            db_pool_size: 8,
            db_timeout: Duration::from_secs(3),
            writer_batch: 256,
            writers: None,
            bulk_yield: Some(crate::writer::Tuning::default().target),
            admin_email: "admin@switchboard.local".into(),
            admin_password: None,
            secret: None,
            allowed_origins: Vec::new(),
            heartbeat: Duration::from_secs(15),
            client_timeout: Duration::from_secs(45),
            auth_timeout: Duration::from_secs(10),
            ws_outbound_queue: 1024,
            max_frame_bytes: 64 * 1024,
            max_body_bytes: 64 * 1024,
            conversation_idle: Duration::from_secs(300),
            presence_grace: Duration::from_secs(20),
            agent_token_ttl: Duration::from_secs(12 * 3600),
            guest_token_ttl: Duration::from_secs(90 * 24 * 3600),
            rate_login_per_min: 10,
            rate_widget_per_min: 30,
            guest_messages: GuestMessageLimits::default(),
            login_backoff: BackoffPolicy::default(),
            trusted_proxies: Vec::new(),
            workers: None,
            shutdown_timeout: Duration::from_secs(10),
            whatsapp: WhatsAppConfig::default(),
            cluster: ClusterConfig::default(),
            ai: AiConfig::default(),
            lead_task_check: Duration::from_secs(30),
            pipeline_sweep: Duration::from_secs(10),
            clock: crate::clock::Clock::System,
            scheduler: crate::scheduler::SchedulerConfig::default(),
        }
    }
}

impl Config {
    /// Reads the configuration from the process environment; unset variables keep
    /// their defaults.
    ///
    /// # Errors
    /// [`AppError::Validation`] naming the variable when a value cannot be parsed.
    pub fn from_env() -> Result<Self, AppError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Like [`Config::from_env`] but reading variables through `lookup`, so tests can
    /// feed a map.
    ///
    /// # Errors
    /// [`AppError::Validation`] naming the variable when a value cannot be parsed.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AppError> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let mut c = Self::default();
        if let Some(v) = get("SWITCHBOARD_BIND") {
            c.bind = parse(&v, "SWITCHBOARD_BIND")?;
        }
        if let Some(v) = get("DATABASE_URL") {
            c.database = DatabaseTarget::parse(&v)?;
        }
        if let Some(v) = get("SWITCHBOARD_DB_POOL_SIZE") {
            c.db_pool_size = parse(&v, "SWITCHBOARD_DB_POOL_SIZE")?;
        }
        if let Some(v) = get("SWITCHBOARD_DB_TIMEOUT") {
            c.db_timeout = seconds(&v, "SWITCHBOARD_DB_TIMEOUT")?;
        }
        if let Some(v) = get("SWITCHBOARD_WRITER_BATCH") {
            c.writer_batch = parse(&v, "SWITCHBOARD_WRITER_BATCH")?;
        }
        if let Some(v) = get("SWITCHBOARD_BULK_YIELD_MS") {
            c.bulk_yield = if v.trim().eq_ignore_ascii_case("off") {
                None
            } else {
                Some(millis(&v, "SWITCHBOARD_BULK_YIELD_MS")?)
            };
        }
        if let Some(v) = get("SWITCHBOARD_WRITERS") {
            c.writers = Some(parse(&v, "SWITCHBOARD_WRITERS")?);
        }
        if let Some(v) = get("SWITCHBOARD_ADMIN_EMAIL") {
            c.admin_email = v.trim().to_lowercase();
        }
        c.admin_password = get("SWITCHBOARD_ADMIN_PASSWORD").map(Secret::new);
        c.secret = get("SWITCHBOARD_SECRET").map(Secret::new);
        if let Some(v) = get("SWITCHBOARD_ALLOWED_ORIGINS") {
            c.allowed_origins = v
                .split(',')
                .map(|s| s.trim().trim_end_matches('/').to_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
        }
        if let Some(v) = get("SWITCHBOARD_HEARTBEAT") {
            c.heartbeat = seconds(&v, "SWITCHBOARD_HEARTBEAT")?;
        }
        if let Some(v) = get("SWITCHBOARD_CLIENT_TIMEOUT") {
            c.client_timeout = seconds(&v, "SWITCHBOARD_CLIENT_TIMEOUT")?;
        }
        if let Some(v) = get("SWITCHBOARD_AUTH_TIMEOUT") {
            c.auth_timeout = seconds(&v, "SWITCHBOARD_AUTH_TIMEOUT")?;
        }
        if let Some(v) = get("SWITCHBOARD_WS_OUTBOUND_QUEUE") {
            c.ws_outbound_queue = parse(&v, "SWITCHBOARD_WS_OUTBOUND_QUEUE")?;
        }
        if let Some(v) = get("SWITCHBOARD_MAX_FRAME_BYTES") {
            c.max_frame_bytes = parse(&v, "SWITCHBOARD_MAX_FRAME_BYTES")?;
        }
        if let Some(v) = get("SWITCHBOARD_MAX_BODY_BYTES") {
            c.max_body_bytes = parse(&v, "SWITCHBOARD_MAX_BODY_BYTES")?;
        }
        if let Some(v) = get("SWITCHBOARD_PIPELINE_SWEEP_MS") {
            let ms: u64 = parse(&v, "SWITCHBOARD_PIPELINE_SWEEP_MS")?;
            c.pipeline_sweep = Duration::from_millis(ms.max(10));
        }
        if let Some(v) = get("SWITCHBOARD_LEAD_TASK_CHECK_MS") {
            let ms: u64 = parse(&v, "SWITCHBOARD_LEAD_TASK_CHECK_MS")?;
            c.lead_task_check = Duration::from_millis(ms.max(10));
        }
        if let Some(v) = get("SWITCHBOARD_JOBS_LEASE") {
            c.scheduler.lease = seconds(&v, "SWITCHBOARD_JOBS_LEASE")?;
        }
        if let Some(v) = get("SWITCHBOARD_JOBS_POLL") {
            c.scheduler.poll = seconds(&v, "SWITCHBOARD_JOBS_POLL")?;
        }
        if let Some(v) = get("SWITCHBOARD_JOBS_MAX_ATTEMPTS") {
            c.scheduler.backoff.max_attempts = parse(&v, "SWITCHBOARD_JOBS_MAX_ATTEMPTS")?;
        }
        if let Some(v) = get("SWITCHBOARD_CONVERSATION_IDLE") {
            c.conversation_idle = seconds(&v, "SWITCHBOARD_CONVERSATION_IDLE")?;
        }
        if let Some(v) = get("SWITCHBOARD_PRESENCE_GRACE") {
            c.presence_grace = seconds(&v, "SWITCHBOARD_PRESENCE_GRACE")?;
        }
        if let Some(v) = get("SWITCHBOARD_AGENT_TOKEN_TTL") {
            c.agent_token_ttl = seconds(&v, "SWITCHBOARD_AGENT_TOKEN_TTL")?;
        }
        if let Some(v) = get("SWITCHBOARD_GUEST_TOKEN_TTL") {
            c.guest_token_ttl = seconds(&v, "SWITCHBOARD_GUEST_TOKEN_TTL")?;
        }
        if let Some(v) = get("SWITCHBOARD_RATE_LOGIN") {
            c.rate_login_per_min = parse(&v, "SWITCHBOARD_RATE_LOGIN")?;
        }
        if let Some(v) = get("SWITCHBOARD_RATE_WIDGET") {
            c.rate_widget_per_min = parse(&v, "SWITCHBOARD_RATE_WIDGET")?;
        }
        abuse_from_lookup(&mut c, &get)?;
        if let Some(v) = get("SWITCHBOARD_WORKERS") {
            c.workers = Some(parse(&v, "SWITCHBOARD_WORKERS")?);
        }
        if let Some(v) = get("SWITCHBOARD_SHUTDOWN_TIMEOUT") {
            c.shutdown_timeout = seconds(&v, "SWITCHBOARD_SHUTDOWN_TIMEOUT")?;
        }
        c.whatsapp = WhatsAppConfig::from_lookup(&get)?;
        c.cluster = ClusterConfig::from_lookup(&get)?;
        c.ai = AiConfig::from_lookup(&get)?;
        c.validate()?;
        Ok(c)
    }

    /// Rejects combinations that cannot work (zero-sized limits, a timeout shorter than
    /// the heartbeat).
    ///
    /// # Errors
    /// [`AppError::Validation`] saying which setting is wrong.
    pub fn validate(&self) -> Result<(), AppError> {
        let bad = |m: &str| Err(AppError::Validation(m.into()));
        let writers = self
            .writers
            .unwrap_or_else(|| self.database.default_writers());
        if writers == 0 || writers > 64 {
            return bad("SWITCHBOARD_WRITERS must be 1 to 64");
        }
        let threads = writers + usize::from(self.database.bulk_writer());
        if self.db_pool_size < threads as u32 + 1 {
            return bad("SWITCHBOARD_DB_POOL_SIZE must exceed the writer threads (SWITCHBOARD_WRITERS, plus one for campaign copies on PostgreSQL), since each holds a connection while committing");
        }
        if self.writer_batch == 0 || self.ws_outbound_queue == 0 {
            return bad(
                "SWITCHBOARD_WRITER_BATCH and SWITCHBOARD_WS_OUTBOUND_QUEUE must be positive",
            );
        }
        let s = &self.scheduler;
        if s.lease.is_zero() || s.poll.is_zero() || s.batch < 1 || s.backoff.max_attempts < 1 {
            return bad("SWITCHBOARD_JOBS_LEASE, SWITCHBOARD_JOBS_POLL and SWITCHBOARD_JOBS_MAX_ATTEMPTS must be positive");
        }
        if self.max_frame_bytes < 1024 || self.max_body_bytes < 1024 {
            return bad("frame and body limits must be at least 1024 bytes");
        }
        if self.heartbeat.is_zero() || self.client_timeout <= self.heartbeat {
            return bad("SWITCHBOARD_CLIENT_TIMEOUT must be longer than SWITCHBOARD_HEARTBEAT");
        }
        let g = &self.guest_messages;
        if self.rate_login_per_min == 0
            || self.rate_widget_per_min == 0
            || g.per_guest_per_min == 0
            || g.per_guest_burst == 0
            || g.per_address_per_min == 0
            || g.per_address_burst == 0
        {
            return bad("rate limits must be positive");
        }
        if self.login_backoff.base.is_zero() || self.login_backoff.max < self.login_backoff.base {
            return bad("SWITCHBOARD_LOGIN_BACKOFF_MAX must be at least SWITCHBOARD_LOGIN_BACKOFF_BASE, which must be positive");
        }
        self.whatsapp.validate()?;
        self.cluster.validate()?;
        Ok(())
    }
}

/// Guest message limits (`docs/configuration.md`, "Abuse limits"): a guest may send
/// a burst, then a sustained rate; all guests behind one client address share a larger
/// budget. Agents are not limited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestMessageLimits {
    /// Messages one guest may send at once (`SWITCHBOARD_RATE_GUEST_BURST`, default 20).
    pub per_guest_burst: u32,
    /// Sustained messages per minute for one guest (`SWITCHBOARD_RATE_GUEST_MESSAGES`,
    /// default 60, one a second).
    pub per_guest_per_min: u32,
    /// Messages all guests of one address may send at once
    /// (`SWITCHBOARD_RATE_GUEST_ADDR_BURST`, default 100).
    pub per_address_burst: u32,
    /// Sustained messages per minute for all guests of one address
    /// (`SWITCHBOARD_RATE_GUEST_ADDR_MESSAGES`, default 600, ten a second).
    pub per_address_per_min: u32,
}

impl Default for GuestMessageLimits {
    fn default() -> Self {
        Self {
            per_guest_burst: 20,
            per_guest_per_min: 60,
            per_address_burst: 100,
            per_address_per_min: 600,
        }
    }
}

/// Reads the guest-message limits, the login back-off and the trusted proxies.
fn abuse_from_lookup(
    c: &mut Config,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(), AppError> {
    let g = &mut c.guest_messages;
    for (key, field) in [
        ("SWITCHBOARD_RATE_GUEST_BURST", &mut g.per_guest_burst),
        ("SWITCHBOARD_RATE_GUEST_MESSAGES", &mut g.per_guest_per_min),
        (
            "SWITCHBOARD_RATE_GUEST_ADDR_BURST",
            &mut g.per_address_burst,
        ),
        (
            "SWITCHBOARD_RATE_GUEST_ADDR_MESSAGES",
            &mut g.per_address_per_min,
        ),
    ] {
        if let Some(v) = get(key) {
            *field = parse(&v, key)?;
        }
    }
    if let Some(v) = get("SWITCHBOARD_LOGIN_FREE_FAILURES") {
        c.login_backoff.free_failures = parse(&v, "SWITCHBOARD_LOGIN_FREE_FAILURES")?;
    }
    if let Some(v) = get("SWITCHBOARD_LOGIN_BACKOFF_BASE") {
        c.login_backoff.base = seconds(&v, "SWITCHBOARD_LOGIN_BACKOFF_BASE")?;
    }
    if let Some(v) = get("SWITCHBOARD_LOGIN_BACKOFF_MAX") {
        c.login_backoff.max = seconds(&v, "SWITCHBOARD_LOGIN_BACKOFF_MAX")?;
    }
    if let Some(v) = get("SWITCHBOARD_TRUSTED_PROXIES") {
        c.trusted_proxies = parse_networks(&v, "SWITCHBOARD_TRUSTED_PROXIES")?;
    }
    Ok(())
}

/// Comma-separated addresses (`10.0.0.1`, a single host) or CIDRs (`10.0.0.0/8`).
fn parse_networks(value: &str, key: &str) -> Result<Vec<IpNet>, AppError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    AppError::Validation(format!("{key}: {s:?} is not an address or CIDR"))
                })
        })
        .collect()
}

/// The OpenAI-compatible endpoint used for AI replies, summaries, reply suggestions
/// and knowledge embeddings (`docs/bot.md`, "Pointing it at a model"). With neither
/// `OPENAI_BASE_URL` nor `OPENAI_API_KEY` set the bot runs on rules and retrieval only.
#[derive(Clone, Debug)]
pub struct AiConfig {
    /// Base URL of the API, up to and including `/v1` (`OPENAI_BASE_URL`, e.g.
    /// `http://127.0.0.1:11434/v1` for a local server; default, when only the key is
    /// set, `https://api.openai.com/v1`).
    pub base_url: Option<String>,
    /// Bearer key (`OPENAI_API_KEY`); optional for local servers that ignore it.
    pub api_key: Option<Secret>,
    /// Chat model (`OPENAI_MODEL`, default `gpt-4o-mini`).
    pub model: String,
    /// Embedding model (`OPENAI_EMBEDDING_MODEL`, default `text-embedding-3-small`);
    /// `none` turns embeddings off (lexical retrieval only).
    pub embedding_model: Option<String>,
    /// Longest wait for one model answer before the customer gets the fallback and a
    /// human (`SWITCHBOARD_AI_BUDGET_MS`, default 8000).
    pub budget: Duration,
}

impl Default for AiConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            api_key: None,
            model: "gpt-4o-mini".into(),
            embedding_model: Some("text-embedding-3-small".into()),
            budget: Duration::from_secs(8),
        }
    }
}

impl AiConfig {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, AppError> {
        let mut a = Self {
            base_url: get("OPENAI_BASE_URL").map(|v| v.trim().trim_end_matches('/').to_string()),
            api_key: get("OPENAI_API_KEY").map(Secret::new),
            ..Self::default()
        };
        if let Some(v) = get("OPENAI_MODEL") {
            a.model = v.trim().to_string();
        }
        if let Some(v) = get("OPENAI_EMBEDDING_MODEL") {
            let v = v.trim();
            a.embedding_model = (!v.eq_ignore_ascii_case("none")).then(|| v.to_string());
        }
        if let Some(v) = get("SWITCHBOARD_AI_BUDGET_MS") {
            let ms: u64 = parse(&v, "SWITCHBOARD_AI_BUDGET_MS")?;
            a.budget = Duration::from_millis(ms.max(1));
        }
        if let Some(u) = &a.base_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(AppError::Validation(
                    "OPENAI_BASE_URL must start with http:// or https://".into(),
                ));
            }
        }
        Ok(a)
    }

    /// Whether a model endpoint is configured (a base URL or a key is set).
    pub fn enabled(&self) -> bool {
        self.base_url.is_some() || self.api_key.is_some()
    }

    /// The base URL to call: the configured one, else OpenAI's.
    pub fn endpoint(&self) -> &str {
        self.base_url
            .as_deref()
            .unwrap_or("https://api.openai.com/v1")
    }
}

/// Multi-node settings (`docs/operations.md`, "Running several nodes"). Without
/// `REDIS_URL` the node runs alone with the in-process bus and none of the others
/// matter.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Redis connection URL, e.g. `redis://:password@redis:6379/0` (`REDIS_URL`);
    /// unset: single node. A secret because it may carry a password.
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key and channel the hub uses (`SWITCHBOARD_REDIS_PREFIX`,
    /// default `switchboard`), so several hubs (or tests) can share one Redis.
    pub redis_prefix: String,
    /// This node's name in Redis (`SWITCHBOARD_NODE_ID`); default: random per start,
    /// which is right unless you want stable names in logs.
    pub node_id: Option<String>,
    /// How often a node refreshes its heartbeat and presence in Redis and reads the
    /// other nodes' (`SWITCHBOARD_NODE_HEARTBEAT`, seconds, default 3).
    pub node_heartbeat: Duration,
    /// Lifetime of a node's heartbeat key: a node silent this long counts as gone and
    /// its agents as offline (`SWITCHBOARD_NODE_TTL`, seconds, default 10).
    pub node_ttl: Duration,
    /// How often every node looks for overdue poll offers, so offers made by a node
    /// that died still expire (`SWITCHBOARD_OFFER_SWEEP`, seconds, default 5).
    pub offer_sweep: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_prefix: "switchboard".into(),
            node_id: None,
            node_heartbeat: Duration::from_secs(3),
            node_ttl: Duration::from_secs(10),
            offer_sweep: Duration::from_secs(5),
        }
    }
}

impl ClusterConfig {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, AppError> {
        let mut c = Self {
            redis_url: get("REDIS_URL").map(|v| Secret::new(v.trim())),
            node_id: get("SWITCHBOARD_NODE_ID").map(|v| v.trim().to_string()),
            ..Self::default()
        };
        if let Some(v) = get("SWITCHBOARD_REDIS_PREFIX") {
            c.redis_prefix = v.trim().to_string();
        }
        if let Some(v) = get("SWITCHBOARD_NODE_HEARTBEAT") {
            c.node_heartbeat = seconds(&v, "SWITCHBOARD_NODE_HEARTBEAT")?;
        }
        if let Some(v) = get("SWITCHBOARD_NODE_TTL") {
            c.node_ttl = seconds(&v, "SWITCHBOARD_NODE_TTL")?;
        }
        if let Some(v) = get("SWITCHBOARD_OFFER_SWEEP") {
            c.offer_sweep = seconds(&v, "SWITCHBOARD_OFFER_SWEEP")?;
        }
        Ok(c)
    }

    fn validate(&self) -> Result<(), AppError> {
        let bad = |m: &str| Err(AppError::Validation(m.into()));
        if self.node_heartbeat.is_zero() || self.node_ttl <= self.node_heartbeat {
            return bad("SWITCHBOARD_NODE_TTL must be longer than SWITCHBOARD_NODE_HEARTBEAT");
        }
        if self.offer_sweep.is_zero() {
            return bad("SWITCHBOARD_OFFER_SWEEP must be positive");
        }
        if self.redis_prefix.is_empty() {
            return bad("SWITCHBOARD_REDIS_PREFIX must not be empty");
        }
        Ok(())
    }
}

/// The WhatsApp channel's settings (`docs/configuration.md`, `docs/channels/whatsapp.md`).
///
/// Webhooks fail closed: without `WHATSAPP_APP_SECRET` the Meta webhook refuses every
/// POST (it cannot tell Meta from a forger); without `WHATSAPP_VERIFY_TOKEN` the
/// verification handshake is refused.
#[derive(Clone, Debug)]
pub struct WhatsAppConfig {
    /// Meta app secret: key of the `X-Hub-Signature-256` HMAC (`WHATSAPP_APP_SECRET`).
    pub app_secret: Option<Secret>,
    /// Token Meta echoes in the verification handshake (`WHATSAPP_VERIFY_TOKEN`).
    pub verify_token: Option<Secret>,
    /// Graph API access token (system-user token) for sending and media (`WHATSAPP_ACCESS_TOKEN`).
    pub access_token: Option<Secret>,
    /// The business phone number id replies are sent from (`WHATSAPP_PHONE_NUMBER_ID`).
    pub phone_number_id: Option<String>,
    /// Graph API base URL, version included, no trailing slash (`WHATSAPP_GRAPH_URL`,
    /// default `https://graph.facebook.com/v25.0`).
    pub graph_url: String,
    /// Hosts media may be downloaded from besides the Graph API's own
    /// (`WHATSAPP_MEDIA_HOSTS`, comma-separated, default `lookaside.fbsbx.com`).
    pub media_hosts: Vec<String>,
    /// WAHA base URL, e.g. `http://waha:3000` (`WAHA_URL`); unset: WAHA disabled.
    pub waha_url: Option<String>,
    /// WAHA API key sent as `X-Api-Key` (`WAHA_API_KEY`).
    pub waha_api_key: Option<Secret>,
    /// WAHA session name (`WAHA_SESSION`, default `default`).
    pub waha_session: String,
    /// Key of WAHA's `X-Webhook-Hmac` (HMAC-SHA512); when set, unsigned WAHA webhooks
    /// are refused (`WAHA_WEBHOOK_HMAC_KEY`).
    pub waha_hmac_key: Option<Secret>,
    /// Slug of the team new WhatsApp conversations land in (`WHATSAPP_TEAM`, default `default`).
    pub team: String,
    /// Largest webhook body, in bytes (`SWITCHBOARD_WEBHOOK_MAX_BYTES`, default 4 MiB;
    /// Meta sends up to 3 MB).
    pub webhook_max_bytes: usize,
    /// Webhook POSTs allowed per client address per minute (`SWITCHBOARD_RATE_WEBHOOK`, default 6000).
    pub rate_webhook_per_min: u32,
    /// How often the outbox looks for due rows when nobody nudged it
    /// (`SWITCHBOARD_OUTBOX_POLL`, seconds, default 1).
    pub outbox_poll: Duration,
    /// Send attempts before a transiently failing message is marked failed
    /// (`SWITCHBOARD_OUTBOX_MAX_ATTEMPTS`, default 12).
    pub outbox_max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter (`SWITCHBOARD_OUTBOX_BACKOFF_BASE`, seconds, default 2).
    pub outbox_backoff_base: Duration,
    /// Longest retry delay (`SWITCHBOARD_OUTBOX_BACKOFF_MAX`, seconds, default 600).
    pub outbox_backoff_max: Duration,
    /// How long a claimed row stays locked to its node while being sent
    /// (`SWITCHBOARD_OUTBOX_LEASE`, seconds, default 60).
    pub outbox_lease: Duration,
    /// Timeout of one provider API call (`SWITCHBOARD_PROVIDER_TIMEOUT`, seconds, default 15).
    pub provider_timeout: Duration,
    /// Largest media file the hub relays to agents (`SWITCHBOARD_MEDIA_MAX_BYTES`, default 25 MiB).
    pub media_max_bytes: usize,
    /// Accept WAHA webhooks without `WAHA_WEBHOOK_HMAC_KEY` (`WAHA_INSECURE_UNSIGNED=true`);
    /// otherwise such webhooks are refused (fail closed).
    pub waha_insecure_unsigned: bool,
    /// Key material for WhatsApp number secrets at rest (`SWITCHBOARD_NUMBERS_KEY`);
    /// unset: derived from the hub secret (`secrets.rs`).
    pub numbers_key: Option<Secret>,
    /// WhatsApp Business Account of the env number, whose templates are synced
    /// (`WHATSAPP_WABA_ID`); admin-added numbers carry their own.
    pub waba_id: Option<String>,
}

impl Default for WhatsAppConfig {
    fn default() -> Self {
        Self {
            app_secret: None,
            verify_token: None,
            access_token: None,
            phone_number_id: None,
            graph_url: "https://graph.facebook.com/v25.0".into(),
            media_hosts: vec!["lookaside.fbsbx.com".into()],
            waha_url: None,
            waha_api_key: None,
            waha_session: "default".into(),
            waha_hmac_key: None,
            team: "default".into(),
            webhook_max_bytes: 4 * 1024 * 1024,
            rate_webhook_per_min: 6000,
            outbox_poll: Duration::from_secs(1),
            outbox_max_attempts: 12,
            outbox_backoff_base: Duration::from_secs(2),
            outbox_backoff_max: Duration::from_secs(600),
            outbox_lease: Duration::from_secs(60),
            provider_timeout: Duration::from_secs(15),
            media_max_bytes: 25 * 1024 * 1024,
            waha_insecure_unsigned: false,
            numbers_key: None,
            waba_id: None,
        }
    }
}

impl WhatsAppConfig {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, AppError> {
        let mut c = Self {
            app_secret: get("WHATSAPP_APP_SECRET").map(Secret::new),
            verify_token: get("WHATSAPP_VERIFY_TOKEN").map(Secret::new),
            access_token: get("WHATSAPP_ACCESS_TOKEN").map(Secret::new),
            phone_number_id: get("WHATSAPP_PHONE_NUMBER_ID").map(|v| v.trim().to_string()),
            waha_url: get("WAHA_URL").map(|v| v.trim().trim_end_matches('/').to_string()),
            waha_api_key: get("WAHA_API_KEY").map(Secret::new),
            waha_hmac_key: get("WAHA_WEBHOOK_HMAC_KEY").map(Secret::new),
            numbers_key: get("SWITCHBOARD_NUMBERS_KEY").map(Secret::new),
            waba_id: get("WHATSAPP_WABA_ID")
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            ..Self::default()
        };
        if let Some(v) = get("WAHA_INSECURE_UNSIGNED") {
            c.waha_insecure_unsigned = parse(&v, "WAHA_INSECURE_UNSIGNED")?;
        }
        if let Some(v) = get("WHATSAPP_GRAPH_URL") {
            c.graph_url = v.trim().trim_end_matches('/').to_string();
        }
        if let Some(v) = get("WHATSAPP_MEDIA_HOSTS") {
            c.media_hosts = v
                .split(',')
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
        }
        if let Some(v) = get("WAHA_SESSION") {
            c.waha_session = v.trim().to_string();
        }
        if let Some(v) = get("WHATSAPP_TEAM") {
            c.team = v.trim().to_string();
        }
        if let Some(v) = get("SWITCHBOARD_WEBHOOK_MAX_BYTES") {
            c.webhook_max_bytes = parse(&v, "SWITCHBOARD_WEBHOOK_MAX_BYTES")?;
        }
        if let Some(v) = get("SWITCHBOARD_RATE_WEBHOOK") {
            c.rate_webhook_per_min = parse(&v, "SWITCHBOARD_RATE_WEBHOOK")?;
        }
        if let Some(v) = get("SWITCHBOARD_OUTBOX_POLL") {
            c.outbox_poll = seconds(&v, "SWITCHBOARD_OUTBOX_POLL")?;
        }
        if let Some(v) = get("SWITCHBOARD_OUTBOX_MAX_ATTEMPTS") {
            c.outbox_max_attempts = parse(&v, "SWITCHBOARD_OUTBOX_MAX_ATTEMPTS")?;
        }
        if let Some(v) = get("SWITCHBOARD_OUTBOX_BACKOFF_BASE") {
            c.outbox_backoff_base = seconds(&v, "SWITCHBOARD_OUTBOX_BACKOFF_BASE")?;
        }
        if let Some(v) = get("SWITCHBOARD_OUTBOX_BACKOFF_MAX") {
            c.outbox_backoff_max = seconds(&v, "SWITCHBOARD_OUTBOX_BACKOFF_MAX")?;
        }
        if let Some(v) = get("SWITCHBOARD_OUTBOX_LEASE") {
            c.outbox_lease = seconds(&v, "SWITCHBOARD_OUTBOX_LEASE")?;
        }
        if let Some(v) = get("SWITCHBOARD_PROVIDER_TIMEOUT") {
            c.provider_timeout = seconds(&v, "SWITCHBOARD_PROVIDER_TIMEOUT")?;
        }
        if let Some(v) = get("SWITCHBOARD_MEDIA_MAX_BYTES") {
            c.media_max_bytes = parse(&v, "SWITCHBOARD_MEDIA_MAX_BYTES")?;
        }
        Ok(c)
    }

    fn validate(&self) -> Result<(), AppError> {
        let bad = |m: &str| Err(AppError::Validation(m.into()));
        if url::Url::parse(&self.graph_url).is_err() {
            return bad("WHATSAPP_GRAPH_URL must be an absolute URL");
        }
        if let Some(w) = &self.waha_url {
            if url::Url::parse(w).is_err() {
                return bad("WAHA_URL must be an absolute URL");
            }
        }
        if self.webhook_max_bytes < 1024 || self.media_max_bytes < 1024 {
            return bad("webhook and media limits must be at least 1024 bytes");
        }
        if self.rate_webhook_per_min == 0 || self.outbox_max_attempts == 0 {
            return bad(
                "SWITCHBOARD_RATE_WEBHOOK and SWITCHBOARD_OUTBOX_MAX_ATTEMPTS must be positive",
            );
        }
        if self.outbox_poll.is_zero()
            || self.outbox_lease.is_zero()
            || self.provider_timeout.is_zero()
        {
            return bad("outbox poll, lease and provider timeout must be positive");
        }
        if self.outbox_backoff_max < self.outbox_backoff_base {
            return bad(
                "SWITCHBOARD_OUTBOX_BACKOFF_MAX must be at least SWITCHBOARD_OUTBOX_BACKOFF_BASE",
            );
        }
        Ok(())
    }
}

fn parse<T: std::str::FromStr>(value: &str, key: &str) -> Result<T, AppError> {
    value
        .trim()
        .parse()
        .map_err(|_| AppError::Validation(format!("{key}: cannot parse {value:?}")))
}

/// Seconds, fractions allowed (`0.5`), so tests can use short heartbeats.
fn seconds(value: &str, key: &str) -> Result<Duration, AppError> {
    duration(value, key, 1.0, "seconds")
}

/// Milliseconds, fractions allowed (`0.5`).
fn millis(value: &str, key: &str) -> Result<Duration, AppError> {
    duration(value, key, 1e-3, "milliseconds")
}

/// A non-negative number of `unit`s (`secs_per_unit` seconds each).
fn duration(value: &str, key: &str, secs_per_unit: f64, unit: &str) -> Result<Duration, AppError> {
    let n: f64 = parse(value, key)?;
    if !n.is_finite() || n < 0.0 {
        return Err(AppError::Validation(format!(
            "{key}: must be a non-negative number of {unit}"
        )));
    }
    Ok(Duration::from_secs_f64(n * secs_per_unit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, AppError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = from(&[]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(
            c.database,
            DatabaseTarget::Sqlite {
                path: "data/switchboard.db".into()
            }
        );
    }

    #[test]
    fn the_bulk_lane_target_is_read_in_milliseconds_or_off() {
        assert_eq!(
            from(&[]).unwrap().bulk_yield,
            Some(crate::writer::Tuning::default().target)
        );
        let c = from(&[("SWITCHBOARD_BULK_YIELD_MS", "2.5")]).unwrap();
        assert_eq!(c.bulk_yield, Some(Duration::from_micros(2_500)));
        let c = from(&[("SWITCHBOARD_BULK_YIELD_MS", "OFF")]).unwrap();
        assert_eq!(c.bulk_yield, None);
        let err = from(&[("SWITCHBOARD_BULK_YIELD_MS", "-1")]).unwrap_err();
        assert!(err.to_string().contains("milliseconds"), "{err}");
    }

    #[test]
    fn abuse_limits_and_trusted_proxies_are_read() {
        let c = from(&[]).unwrap();
        assert_eq!(c.guest_messages, GuestMessageLimits::default());
        assert!(c.trusted_proxies.is_empty());
        let c = from(&[
            ("SWITCHBOARD_RATE_GUEST_BURST", "5"),
            ("SWITCHBOARD_RATE_GUEST_ADDR_MESSAGES", "30"),
            ("SWITCHBOARD_LOGIN_FREE_FAILURES", "3"),
            ("SWITCHBOARD_LOGIN_BACKOFF_MAX", "60"),
            ("SWITCHBOARD_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1"),
        ])
        .unwrap();
        assert_eq!(c.guest_messages.per_guest_burst, 5);
        assert_eq!(c.guest_messages.per_address_per_min, 30);
        assert_eq!(c.login_backoff.free_failures, 3);
        assert_eq!(c.login_backoff.max, Duration::from_secs(60));
        let nets: Vec<String> = c.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
        assert!(from(&[("SWITCHBOARD_TRUSTED_PROXIES", "proxy.local")]).is_err());
        assert!(from(&[("SWITCHBOARD_RATE_GUEST_BURST", "0")]).is_err());
    }

    #[test]
    fn database_urls_select_the_backend() {
        assert!(matches!(
            DatabaseTarget::parse("postgres://u@h/db").unwrap(),
            DatabaseTarget::Postgres { .. }
        ));
        assert_eq!(
            DatabaseTarget::parse("sqlite:///tmp/x.db").unwrap(),
            DatabaseTarget::Sqlite {
                path: "/tmp/x.db".into()
            }
        );
        assert!(DatabaseTarget::parse("mysql://x").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let c = from(&[
            ("SWITCHBOARD_ADMIN_PASSWORD", "hunter22"),
            ("DATABASE_URL", "postgres://u:pw@h/db"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter22"));
        let wa = from(&[
            ("WHATSAPP_APP_SECRET", "app-secret-x"),
            ("WHATSAPP_ACCESS_TOKEN", "EAAG-token-x"),
            ("WAHA_API_KEY", "waha-key-x"),
            ("WAHA_WEBHOOK_HMAC_KEY", "hmac-key-x"),
        ])
        .unwrap();
        let shown = format!("{wa:?}");
        for secret in ["app-secret-x", "EAAG-token-x", "waha-key-x", "hmac-key-x"] {
            assert!(!shown.contains(secret), "{secret} leaked");
        }
        assert_eq!(wa.whatsapp.graph_url, "https://graph.facebook.com/v25.0");
        assert!(!shown.contains("pw@h"));
        let cl = from(&[("REDIS_URL", "redis://:redis-pw-x@h:6379")]).unwrap();
        assert!(!format!("{cl:?}").contains("redis-pw-x"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = from(&[("SWITCHBOARD_HEARTBEAT", "soon")]).unwrap_err();
        assert!(err.to_string().contains("SWITCHBOARD_HEARTBEAT"));
        assert!(from(&[
            ("SWITCHBOARD_CLIENT_TIMEOUT", "1"),
            ("SWITCHBOARD_HEARTBEAT", "2")
        ])
        .is_err());
    }
}
