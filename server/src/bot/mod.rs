//! The bot (issue 6, `docs/bot.md`): keyword rules, knowledge-grounded AI replies
//! through any OpenAI-compatible endpoint, and handover to humans.
//!
//! - [`llm`]: the model endpoint (chat completions, embeddings) with a time budget.
//! - [`knowledge`]: documents, chunks, BM25 + embedding retrieval.
//! - [`settings`], [`rules`], [`prompt`]: what admins configure per team.
//! - [`engine`]: the decision for one customer turn.
//! - [`worker`]: the bot on live conversations (bursts, posting, handover).
//! - [`status`]: the bot's state per conversation and its audit trail.

pub mod engine;
pub mod knowledge;
pub mod llm;
pub mod prompt;
pub mod rules;
pub mod settings;
pub mod status;
pub mod worker;

use crate::config::Config;
use crate::db::Db;

/// The bot's shared parts, one per node. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Bot {
    /// The model endpoint, when one is configured.
    pub llm: Option<llm::Llm>,
    /// Retrieval over the teams' knowledge documents.
    pub knowledge: knowledge::KnowledgeBase,
    /// Teams' bot settings, cached briefly.
    pub settings: settings::SettingsCache,
    /// Live conversations' pending bot jobs on this node.
    pub jobs: worker::Jobs,
}

impl Bot {
    /// The bot for a node with `config` over `db`.
    pub fn new(config: &Config, db: Db) -> Self {
        let llm = llm::Llm::from_config(&config.ai);
        Self {
            knowledge: knowledge::KnowledgeBase::new(db, llm.clone()),
            llm,
            settings: settings::SettingsCache::default(),
            jobs: worker::Jobs::default(),
        }
    }
}
