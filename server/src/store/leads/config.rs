//! The team's lead configuration (pipeline stages, intent rules, welcome) and this
//! node's per-team cache of it. Every message's bookkeeping reads the configuration,
//! so it is read through [`TeamCache`] rather than parsed from its row each time;
//! whoever stores a new one calls [`config_changed`] after the commit.

use std::sync::{Arc, LazyLock};

use diesel::prelude::*;

use crate::clock::now_ms;
use crate::db::schema::lead_settings;
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::leads::campaign;
use crate::leads::config::LeadConfig;
use crate::leads::intent::Matcher;
use crate::store::team_cache::TeamCache;

// ------------------------------------------------------------------ settings

/// The team's lead configuration (defaults when none is stored), from this node's
/// cache when read within [`TeamCache`]'s TTL: what every message's bookkeeping
/// reads.
///
/// # Errors
/// Database errors; [`AppError::Internal`] for stored JSON that does not parse.
pub fn config_cached(c: &mut DbConn, team_id: &str) -> Result<Arc<LeadConfig>, AppError> {
    LEAD_CONFIGS.get(team_id, || config(c, team_id))
}

/// A team's lead configuration if [`config_cached`] holds it fresh; `None` means ask
/// [`config_cached`] (on a blocking thread).
pub fn config_peek(team_id: &str) -> Option<Arc<LeadConfig>> {
    LEAD_CONFIGS.peek(team_id)
}

/// Whether a customer's message changes nothing for a contact who already has a
/// lead: no campaign code in it, no intent rule matches it, and the conversation is
/// not a quick chat (whose progressive engagement counts messages). For such a
/// message [`process_message`](super::process_message) writes nothing and publishes nothing.
pub fn changes_nothing(cfg: &LeadConfig, body: &str, channel: &str) -> bool {
    channel != "quick_chat"
        && campaign::candidates(body).is_empty()
        && Matcher::cached(&cfg.rules).matches(body).is_empty()
}

/// A team's lead configuration changed (after the commit): the next
/// [`config_cached`] on this node reads it again.
pub fn config_changed(team_id: &str) {
    LEAD_CONFIGS.invalidate(team_id);
}

static LEAD_CONFIGS: LazyLock<TeamCache<LeadConfig>> = LazyLock::new(TeamCache::default);

/// A team's lead configuration as stored (the defaults when it has none).
///
/// # Errors
/// Database errors; a stored configuration that does not parse (internal).
pub fn config(c: &mut DbConn, team_id: &str) -> Result<LeadConfig, AppError> {
    let row: Option<(String, String, Option<String>)> = lead_settings::table
        .find(team_id)
        .select((
            lead_settings::stages,
            lead_settings::rules,
            lead_settings::welcome,
        ))
        .first(c)
        .optional()?;
    let Some((stages, rules, welcome)) = row else {
        return Ok(LeadConfig::default());
    };
    let mut cfg = LeadConfig {
        stages: serde_json::from_str(&stages).map_err(AppError::internal)?,
        rules: serde_json::from_str(&rules).map_err(AppError::internal)?,
        ..LeadConfig::default()
    };
    if let Some(w) = welcome {
        cfg.welcome = w;
    }
    Ok(cfg)
}

/// Stores a team's configuration (validated by the caller).
///
/// # Errors
/// Database errors.
pub fn save_config(
    c: &mut DbConn,
    team_id: &str,
    cfg: &LeadConfig,
    by: &str,
) -> Result<(), AppError> {
    let stages = serde_json::to_string(&cfg.stages).map_err(AppError::internal)?;
    let rules = serde_json::to_string(&cfg.rules).map_err(AppError::internal)?;
    let now = now_ms();
    let settings = (
        lead_settings::stages.eq(&stages),
        lead_settings::rules.eq(&rules),
        lead_settings::welcome.eq(&cfg.welcome),
        lead_settings::updated_at.eq(now),
        lead_settings::updated_by.eq(by),
    );
    // Update, else insert: `MultiConnection` has no `ON CONFLICT` (`db`).
    write_transaction(c, |c| {
        let n = diesel::update(lead_settings::table.find(team_id))
            .set(settings)
            .execute(c)?;
        if n == 0 {
            diesel::insert_into(lead_settings::table)
                .values((lead_settings::team_id.eq(team_id), settings))
                .execute(c)?;
        }
        Ok(())
    })
}
