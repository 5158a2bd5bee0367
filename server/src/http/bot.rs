//! Bot API (`docs/api.md`, "Bot"): settings, rules, prompts, per-conversation bot
//! state, reply suggestions and `POST /api/ai/process-message`.

use actix_web::web;

/// Installs the bot routes under `/api`.
pub fn routes(_cfg: &mut web::ServiceConfig) {}
