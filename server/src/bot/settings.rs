//! A team's bot settings (`bot_settings`, JSON): whether the bot answers, on which
//! channels, how it hands over, its model parameters, thresholds and messages. A
//! team without a row has the bot off. Read through a short-lived per-node cache,
//! because every inbound message asks "does the bot own this?".

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::db::schema::bot_settings;
use crate::db::{Db, DbConn};
use crate::error::AppError;
use crate::store::widget_settings::BusinessHours;

/// When the routing issue's assignment starts for a conversation the bot answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Handoff {
    /// The bot answers first; the conversation is routed to agents only when the
    /// bot hands over or an agent pauses it (the default).
    #[default]
    BotFirst,
    /// Routing starts at once as without a bot; the bot answers only while no agent
    /// has the conversation (queued, offered in a poll, or in manual mode).
    Parallel,
}

/// A team's bot settings. Every field has a default, so a partial JSON object is a
/// valid update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BotSettings {
    /// The bot answers this team's conversations.
    pub enabled: bool,
    /// Channels it answers on (`widget`, `whatsapp`, `quick_chat`); empty: all.
    pub channels: Vec<String>,
    /// See [`Handoff`].
    pub handoff: Handoff,
    /// Use the model endpoint when one is configured (else rules + retrieval only).
    pub ai_enabled: bool,
    /// Sampling temperature, 0–2.
    pub temperature: f64,
    /// Most tokens in a model answer.
    pub max_tokens: u32,
    /// A model answer below this confidence (0–1) hands over instead of replying.
    pub confidence_threshold: f64,
    /// Without a model, the best knowledge hit must reach this confidence (0–1) to
    /// be sent as the answer.
    pub retrieval_threshold: f64,
    /// Knowledge passages given to the model.
    pub knowledge_k: usize,
    /// Earlier messages of the conversation given to the model.
    pub history_messages: usize,
    /// After this many "didn't understand" answers in a row the bot hands over.
    pub max_not_understood: i32,
    /// Quiet time after a customer's message before the bot answers, ms, so a burst
    /// of rapid messages gets one reply (0: answer at once; a burst arriving while a
    /// model call runs is still answered once).
    pub burst_window_ms: u64,
    /// Opening hours; `None`: always open.
    pub business_hours: Option<BusinessHours>,
    /// Outside opening hours: the bot still answers (true) or only sends the
    /// after-hours message and hands over for the team's next shift (false).
    pub answer_after_hours: bool,
    /// Sent instead of the handover message outside opening hours.
    pub after_hours_message: String,
    /// Sent when the bot hands over to a human.
    pub handover_message: String,
    /// Sent when the model is slow or down (then a human takes over).
    pub fallback_message: String,
    /// Sent when nothing matched and there is no model.
    pub not_understood_message: String,
    /// Words and phrases by which a customer asks for a person.
    pub human_keywords: Vec<String>,
}

impl Default for BotSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            channels: Vec::new(),
            handoff: Handoff::BotFirst,
            ai_enabled: true,
            temperature: 0.3,
            max_tokens: 400,
            confidence_threshold: 0.6,
            retrieval_threshold: 0.5,
            knowledge_k: 4,
            history_messages: 12,
            max_not_understood: 2,
            burst_window_ms: 1500,
            business_hours: None,
            answer_after_hours: true,
            after_hours_message: "Thanks for your message! Our team is away right now and will reply as soon as we open.".into(),
            handover_message: "Let me connect you with a member of our team — they will reply here shortly.".into(),
            fallback_message: "Sorry, I can't answer that right now. A member of our team will reply here shortly.".into(),
            not_understood_message: "Sorry, I didn't quite understand. Could you say it another way?".into(),
            human_keywords: [
                "human", "real person", "a person", "agent", "operator", "customer service",
                "talk to someone", "speak to someone", "manusia", "orang", "admin", "cs",
                "customer care",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        }
    }
}

impl BotSettings {
    /// Checks ranges.
    ///
    /// # Errors
    /// [`AppError::Validation`] naming the bad field.
    pub fn validate(&self) -> Result<(), AppError> {
        let bad = |m: &str| Err(AppError::Validation(m.into()));
        if !(0.0..=2.0).contains(&self.temperature) {
            return bad("The temperature must be between 0 and 2.");
        }
        if self.max_tokens == 0 || self.max_tokens > 8192 {
            return bad("The longest answer (max_tokens) must be between 1 and 8192 tokens.");
        }
        if !(0.0..=1.0).contains(&self.confidence_threshold)
            || !(0.0..=1.0).contains(&self.retrieval_threshold)
        {
            return bad("The confidence thresholds must be between 0 and 1.");
        }
        if self.knowledge_k == 0 || self.knowledge_k > 20 {
            return bad("The number of knowledge entries (knowledge_k) must be between 1 and 20.");
        }
        if self.history_messages > 100 {
            return bad("The bot can read at most 100 earlier messages (history_messages).");
        }
        if self.max_not_understood < 1 {
            return bad(
                "The bot must be allowed to not understand at least once (max_not_understood).",
            );
        }
        if self.burst_window_ms > 60_000 {
            return bad("The wait for more messages (burst_window_ms) can be at most 60000 ms.");
        }
        for c in &self.channels {
            if !["widget", "whatsapp", "quick_chat"].contains(&c.as_str()) {
                return bad("The channels are widget, whatsapp and quick_chat.");
            }
        }
        if let Some(h) = &self.business_hours {
            h.validate()?;
        }
        for (name, text) in [
            ("after_hours_message", &self.after_hours_message),
            ("handover_message", &self.handover_message),
            ("fallback_message", &self.fallback_message),
            ("not_understood_message", &self.not_understood_message),
        ] {
            if text.trim().is_empty() || text.chars().count() > 4000 {
                return Err(AppError::Validation(format!(
                    "The {} must be between 1 and 4000 characters.",
                    name.replace('_', " ")
                )));
            }
        }
        Ok(())
    }

    /// Whether the bot answers on `channel`.
    pub fn answers_on(&self, channel: &str) -> bool {
        self.enabled && (self.channels.is_empty() || self.channels.iter().any(|c| c == channel))
    }

    /// Whether the team is open at `now_ms`.
    pub fn is_open(&self, now_ms: i64) -> bool {
        self.business_hours
            .as_ref()
            .is_none_or(|h| h.is_open(now_ms))
    }
}

/// Reads a team's settings (defaults, bot off, without a row).
///
/// # Errors
/// Database errors; a stored row that no longer parses is logged and read as the
/// defaults rather than failing every message of the team.
pub fn load(conn: &mut DbConn, team_id: &str) -> Result<BotSettings, AppError> {
    let row: Option<String> = bot_settings::table
        .find(team_id)
        .select(bot_settings::settings)
        .first(conn)
        .optional()?;
    Ok(match row {
        None => BotSettings::default(),
        Some(json) => serde_json::from_str(&json).unwrap_or_else(|e| {
            tracing::warn!(team = %team_id, error = %e, "stored bot settings do not parse; using defaults");
            BotSettings::default()
        }),
    })
}

/// Stores a team's settings (after [`BotSettings::validate`]).
///
/// # Errors
/// [`AppError::Validation`] from the checks; database errors.
pub fn save(
    conn: &mut DbConn,
    team_id: &str,
    settings: &BotSettings,
    by: &str,
) -> Result<(), AppError> {
    settings.validate()?;
    let json = serde_json::to_string(settings).map_err(AppError::internal)?;
    let now = now_ms();
    let updated = diesel::update(bot_settings::table.find(team_id))
        .set((
            bot_settings::settings.eq(&json),
            bot_settings::updated_at.eq(now),
            bot_settings::updated_by.eq(by),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(bot_settings::table)
            .values((
                bot_settings::team_id.eq(team_id),
                bot_settings::settings.eq(&json),
                bot_settings::updated_at.eq(now),
                bot_settings::updated_by.eq(by),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// How long a node uses its cached copy of a team's settings before reading them
/// again. A change made on this node is seen at once (the entry is replaced); one
/// made on another node within about this long.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Per-node cache of team settings. Primed with every team at start, so the hot
/// path (is the bot answering this team's conversation?) never waits for the
/// database; stale entries are refreshed in the background.
#[derive(Debug, Default)]
pub struct SettingsCache {
    entries: Mutex<HashMap<String, (Instant, Arc<BotSettings>)>>,
}

impl SettingsCache {
    /// Loads every team's settings (teams without a row: the defaults, bot off).
    ///
    /// # Errors
    /// Database errors.
    pub async fn prime(&self, db: &Db) -> Result<(), AppError> {
        let rows = db
            .run(|c| {
                let teams: Vec<String> = crate::db::schema::teams::table
                    .select(crate::db::schema::teams::id)
                    .load(c)?;
                teams
                    .into_iter()
                    .map(|t| load(c, &t).map(|s| (t, s)))
                    .collect::<Result<Vec<_>, AppError>>()
            })
            .await?;
        let now = Instant::now();
        let mut entries = self.entries.lock();
        for (team, s) in rows {
            entries.insert(team, (now, Arc::new(s)));
        }
        Ok(())
    }

    /// The team's settings, read again when the cached copy is older than
    /// [`CACHE_TTL`].
    ///
    /// # Errors
    /// Database errors when the cache has to be refilled.
    pub async fn get(&self, db: &Db, team_id: &str) -> Result<Arc<BotSettings>, AppError> {
        if let Some((at, s)) = self.entries.lock().get(team_id) {
            if at.elapsed() < CACHE_TTL {
                return Ok(s.clone());
            }
        }
        let team = team_id.to_string();
        let fresh = Arc::new(db.run(move |c| load(c, &team)).await?);
        self.put(team_id, fresh.clone());
        Ok(fresh)
    }

    /// The cached settings without touching the database — possibly stale, by up to
    /// [`CACHE_TTL`] plus one refresh — and whether they are due for a refresh.
    /// `None` for a team this node has not seen yet.
    pub fn peek(&self, team_id: &str) -> Option<(Arc<BotSettings>, bool)> {
        self.entries
            .lock()
            .get(team_id)
            .map(|(at, s)| (s.clone(), at.elapsed() >= CACHE_TTL))
    }

    /// Replaces a team's entry (after a change on this node, or a refresh).
    pub fn put(&self, team_id: &str, settings: Arc<BotSettings>) {
        self.entries
            .lock()
            .insert(team_id.to_string(), (Instant::now(), settings));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_json_fills_defaults_and_unknown_fields_are_refused() {
        let s: BotSettings =
            serde_json::from_str(r#"{"enabled": true, "channels": ["widget"]}"#).expect("parses");
        assert!(s.answers_on("widget"));
        assert!(!s.answers_on("whatsapp"));
        assert_eq!(s.max_not_understood, 2);
        assert!(serde_json::from_str::<BotSettings>(r#"{"enabeld": true}"#).is_err());
        let mut bad = s.clone();
        bad.temperature = 3.0;
        assert!(bad.validate().is_err());
    }
}
