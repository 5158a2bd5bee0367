//! The shared application state handed to every request handler and actor.

use std::sync::Arc;

use crate::auth::Tokens;
use crate::config::Config;
use crate::db::Db;
use crate::hub::Hub;
use crate::ratelimit::RateLimits;
use crate::writer::Writer;

/// Everything a handler or actor needs. Cloning is cheap (reference counts).
#[derive(Clone, Debug)]
pub struct AppState {
    /// Configuration as started.
    pub config: Arc<Config>,
    /// Database pool for reads and small writes.
    pub db: Db,
    /// Group-commit writer for message appends.
    pub writer: Writer,
    /// Token signing and verification.
    pub tokens: Arc<Tokens>,
    /// This node's registries and fan-out.
    pub hub: Arc<Hub>,
    /// Per-address rate limits.
    pub limits: Arc<RateLimits>,
    /// The WhatsApp outbox (worker handle and provider HTTP client).
    pub outbox: Arc<crate::outbox::Outbox>,
    /// The inbound pipeline: stages run for every committed message.
    pub pipeline: Arc<crate::pipeline::Pipeline>,
    /// The bot: model endpoint and knowledge retrieval.
    pub bot: Arc<crate::bot::Bot>,
    /// Where "now" comes from (`config.clock`): the system clock, or a manual one in tests.
    pub clock: crate::clock::Clock,
    /// The durable scheduler's runner on this node (`scheduler`).
    pub scheduler: Arc<crate::scheduler::Scheduler>,
    /// Seals and opens WhatsApp number secrets at rest (`secrets.rs`).
    pub secrets: Arc<crate::secrets::SecretBox>,
    /// This node's copy of the WhatsApp numbers, secrets opened (webhooks and the
    /// outbox read it instead of the database).
    pub numbers: Arc<crate::store::numbers::cache::NumberCache>,
    /// Conversations inbound WhatsApp messages were resolved to on this node.
    pub known_wa: Arc<crate::store::whatsapp::KnownConversations>,
}
