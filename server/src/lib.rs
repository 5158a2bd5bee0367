//! Switchboard: a realtime chat hub that routes website-widget, quick-chat and
//! WhatsApp conversations to a live agent inbox.
//!
//! The crate is both the `switchboard` binary and a library, so end-to-end tests
//! can start real servers in-process ([`start`]) on port 0.
//!
//! Architecture (`docs/architecture.md`): one actix actor per WebSocket connection
//! ([`actors::session`]), per active conversation ([`actors::conversation`]) and per
//! connected agent ([`actors::agent`]); a node-local [`hub::Hub`] that finds them and
//! fans events out, fed by a [`bus::Bus`]; diesel over SQLite or PostgreSQL
//! ([`db`]) with a group-commit [`writer`] for messages.

pub mod access;
pub mod actors;
pub mod auth;
pub mod automations;
pub mod bootstrap;
pub mod bot;
pub mod broadcasts;
pub mod bus;
pub mod channels;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod contacts;
pub mod db;
pub mod error;
pub mod http;
pub mod hub;
pub mod leads;
pub mod metrics;
pub mod model;
pub mod outbox;
pub mod pipeline;
pub mod protocol;
pub mod ratelimit;
pub mod routing;
pub mod scheduler;
pub mod secrets;
pub mod state;
pub mod store;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod visitor;
pub mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::{middleware, App, HttpServer};

pub use config::Config;
pub use error::AppError;

use auth::Tokens;
use bus::LocalBus;
use db::Db;
use hub::Hub;
use ratelimit::RateLimits;
use state::AppState;
use writer::{Writer, WriterThread};

/// A started hub. Drop it only after [`Running::stopped`] returned.
pub struct Running {
    addr: SocketAddr,
    server: actix_web::dev::Server,
    shutdown: ShutdownHandle,
    writer_thread: WriterThread,
    backend: &'static str,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Stops a running hub gracefully; cheap to clone and usable from any thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    server: actix_web::dev::ServerHandle,
    hub: Arc<Hub>,
    writer: Writer,
    pipeline: Arc<pipeline::Pipeline>,
    scheduler: Arc<scheduler::Scheduler>,
}

impl std::fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownHandle").finish_non_exhaustive()
    }
}

impl ShutdownHandle {
    /// Graceful shutdown: tells every WebSocket client to reconnect elsewhere (close
    /// code 1012), stops accepting connections, lets in-flight requests finish (up to
    /// `shutdown_timeout`), then commits everything queued in the message writer. The
    /// inbound pipeline stops first, after the message it is on; what it leaves is
    /// finished by the next start.
    pub async fn shutdown(&self) {
        tracing::info!("shutting down");
        self.hub
            .close_all_sessions(1012, "server restarting; reconnect and resume");
        // Before the server: its tasks run on the server's actix system, which ends
        // with the server; a pass cut off there would keep its lease for a minute.
        self.pipeline.stop().await;
        self.server.stop(true).await;
        // Both of the scheduler's queues: jobs and the WhatsApp outbox.
        self.scheduler.stop().await;
        self.writer.shutdown().await;
    }
}

impl Running {
    /// The address the hub listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// A handle that stops the hub.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Serves until shut down, then waits for the writer to finish its queue.
    ///
    /// # Errors
    /// [`AppError::Internal`] when the HTTP server fails.
    pub async fn stopped(self) -> Result<(), AppError> {
        let served = self.server.await;
        // The writer gets its stop request from `ShutdownHandle::shutdown`; if the
        // server ended some other way, ask now so the thread can be joined.
        self.shutdown.writer.shutdown().await;
        let thread = self.writer_thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(AppError::internal)?;
        tracing::info!("stopped");
        served.map_err(|e| AppError::internal(format!("http server: {e}")))
    }
}

/// Opens the database (migrating it), bootstraps, and starts serving on
/// `config.bind`. Must run inside an actix system (`actix_rt::System` or
/// `#[actix_web::main]`).
///
/// # Errors
/// [`AppError::Unavailable`] when the database cannot be opened;
/// [`AppError::Internal`] when the address cannot be bound.
pub async fn start(config: Config) -> Result<Running, AppError> {
    config.validate()?;
    let config = Arc::new(config);
    let db = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Db::open(&config))
            .await
            .map_err(AppError::internal)??
    };
    let boot = {
        let (db, config) = (db.clone(), config.clone());
        tokio::task::spawn_blocking(move || bootstrap::run(&db, &config))
            .await
            .map_err(AppError::internal)??
    };
    let writers = config
        .writers
        .unwrap_or_else(|| config.database.default_writers());
    let bulk = if config.database.bulk_writer() {
        writer::BulkLane::Own {
            yielding: config.bulk_yield.map(|target| writer::Tuning {
                target,
                ..writer::Tuning::default()
            }),
        }
    } else {
        writer::BulkLane::Shared
    };
    let (writer, writer_thread) = Writer::start(db.clone(), writers, bulk, config.writer_batch)?;
    let hub = Hub::new();
    // Multi-node mode when REDIS_URL is set; otherwise exactly the single-node bus.
    let redis_bus = match &config.cluster.redis_url {
        Some(_) => {
            let bus = cluster::RedisBus::new(&hub, &config.cluster)?;
            hub.set_bus(bus.clone());
            Some(bus)
        }
        None => {
            hub.set_bus(Arc::new(LocalBus::new(&hub)));
            None
        }
    };
    let state = AppState {
        tokens: Arc::new(Tokens::new(
            boot.secret.expose().as_bytes(),
            config.agent_token_ttl,
            config.guest_token_ttl,
        )),
        limits: Arc::new(RateLimits::new(&config)),
        config: config.clone(),
        db: db.clone(),
        writer: writer.clone(),
        hub: hub.clone(),
        outbox: outbox::Outbox::new(&config.whatsapp)?,
        pipeline: pipeline::Pipeline::new(),
        bot: Arc::new(bot::Bot::new(&config, db.clone())),
        clock: config.clock.clone(),
        scheduler: scheduler::Scheduler::new(config.cluster.node_id.as_deref()),
        secrets: Arc::new(secrets::SecretBox::new(
            config.whatsapp.numbers_key.as_ref(),
            &boot.secret,
        )),
        numbers: Arc::new(store::numbers::cache::NumberCache::new()),
        known_wa: Arc::default(),
    };
    // The env WhatsApp configuration as the first numbers (zero-config upgrade).
    {
        let (db, config) = (db.clone(), config.clone());
        tokio::task::spawn_blocking(move || {
            let mut conn = db.conn()?;
            store::numbers::sync_env(&mut conn, &config.whatsapp)
        })
        .await
        .map_err(AppError::internal)??;
        // Nodes already running may hold the env numbers as they were.
        hub.publish(bus::BusEvent::NumbersChanged);
    }

    // Every team's bot settings before the first message, so routing a message
    // never waits on them.
    state.bot.settings.prime(&state.db).await?;

    // The router lives on the starting arbiter; the hub hands it triggers.
    hub.set_router(routing::actor::Router::new(state.clone()).start());
    // After the router: presence learnt from peers is routed at once.
    if let Some(bus) = &redis_bus {
        bus.spawn();
    }

    let app_state = state.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(http::compress())
            .wrap(http::default_headers())
            .wrap_fn(http::access_log)
            .wrap(middleware::NormalizePath::new(
                middleware::TrailingSlash::Trim,
            ))
            .configure(|cfg| http::configure(cfg, &app_state))
    })
    .disable_signals()
    .shutdown_timeout(config.shutdown_timeout.as_secs().max(1));
    if let Some(n) = config.workers {
        server = server.workers(n.max(1));
    }
    let server = server
        .bind(config.bind)
        .map_err(|e| AppError::internal(format!("cannot listen on {}: {e}", config.bind)))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| AppError::internal("bound to no address"))?;
    let server = server.run();
    let shutdown = ShutdownHandle {
        server: server.handle(),
        hub,
        writer,
        pipeline: state.pipeline.clone(),
        scheduler: state.scheduler.clone(),
    };
    state.pipeline.start(state.clone());
    // Teams made before automations existed get the shipped defaults (off).
    let now = state.clock.now_ms();
    state
        .db
        .run(move |c| store::automations::ensure_presets_all(c, now))
        .await?;
    // The working-hours tick, the overdue-task check and the no-reply sweep are
    // recurring jobs.
    state.scheduler.start(state.clone()).await?;

    let limits = state.limits.clone();
    actix_rt::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            limits.forget_idle();
        }
    });

    tracing::info!(%addr, backend = db.backend(), "switchboard listening");
    Ok(Running {
        addr,
        server,
        shutdown,
        writer_thread,
        backend: db.backend(),
    })
}
