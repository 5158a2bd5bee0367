//! The bot's state per conversation (`bot_conversations`) and its audit trail
//! (`bot_replies`): whether it still answers (`active`), was paused by an agent
//! (`paused`) or has handed over (`handed_over`), the last customer message it has
//! dealt with, and one row per decision with its prompt version, sources and
//! confidence.

use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::clock::{now_ms, rfc3339};
use crate::db::schema::{bot_conversations, bot_replies};
use crate::db::DbConn;
use crate::error::AppError;
use crate::model::new_id;

/// The bot answers.
pub const ACTIVE: &str = "active";
/// An agent paused the bot.
pub const PAUSED: &str = "paused";
/// The bot handed over to humans.
pub const HANDED_OVER: &str = "handed_over";

/// A conversation's bot state.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = bot_conversations)]
pub struct StatusRow {
    /// The conversation.
    pub conversation_id: String,
    /// `active`, `paused` or `handed_over`.
    pub status: String,
    /// "Didn't understand" answers in a row.
    pub not_understood: i32,
    /// The last customer message seq the bot has dealt with.
    pub handled_seq: i64,
    /// Why it stopped (handover reason, or who paused it).
    pub reason: Option<String>,
    /// The summary written for the agent at handover.
    pub summary: Option<String>,
    /// Epoch ms.
    pub updated_at: i64,
    /// Agent who last changed it by hand.
    pub updated_by: Option<String>,
}

/// The state of a conversation without a row yet: active, nothing handled.
fn fresh(conversation_id: &str) -> StatusRow {
    StatusRow {
        conversation_id: conversation_id.into(),
        status: ACTIVE.into(),
        not_understood: 0,
        handled_seq: 0,
        reason: None,
        summary: None,
        updated_at: 0,
        updated_by: None,
    }
}

/// A conversation's bot state (active and untouched when there is no row).
///
/// # Errors
/// Database errors.
pub fn get(conn: &mut DbConn, conversation_id: &str) -> Result<StatusRow, AppError> {
    Ok(bot_conversations::table
        .find(conversation_id)
        .select(StatusRow::as_select())
        .first(conn)
        .optional()?
        .unwrap_or_else(|| fresh(conversation_id)))
}

fn ensure_row(conn: &mut DbConn, conversation_id: &str) -> Result<(), AppError> {
    // Insert-if-absent without backend-specific upsert syntax: a racing insert
    // loses on the primary key and that is fine.
    let exists: i64 = bot_conversations::table
        .find(conversation_id)
        .count()
        .get_result(conn)?;
    if exists == 0 {
        let _ = diesel::insert_into(bot_conversations::table)
            .values((
                bot_conversations::conversation_id.eq(conversation_id),
                bot_conversations::status.eq(ACTIVE),
                bot_conversations::updated_at.eq(now_ms()),
            ))
            .execute(conn);
    }
    Ok(())
}

/// Claims the customer's messages up to `seq` for one answer: succeeds (true) only
/// if the bot is active and has not yet dealt with `seq` — the conditional update
/// makes two nodes (or two jobs) answer the same burst at most once.
///
/// # Errors
/// Database errors.
pub fn claim(conn: &mut DbConn, conversation_id: &str, seq: i64) -> Result<bool, AppError> {
    ensure_row(conn, conversation_id)?;
    let n = diesel::update(
        bot_conversations::table
            .filter(bot_conversations::conversation_id.eq(conversation_id))
            .filter(bot_conversations::status.eq(ACTIVE))
            .filter(bot_conversations::handled_seq.lt(seq)),
    )
    .set((
        bot_conversations::handled_seq.eq(seq),
        bot_conversations::updated_at.eq(now_ms()),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Marks messages up to `seq` as dealt with whatever the state (the bot saw them
/// and chose not to answer: a human has the conversation, the bot is off…).
///
/// # Errors
/// Database errors.
pub fn mark_seen(conn: &mut DbConn, conversation_id: &str, seq: i64) -> Result<(), AppError> {
    ensure_row(conn, conversation_id)?;
    diesel::update(
        bot_conversations::table
            .filter(bot_conversations::conversation_id.eq(conversation_id))
            .filter(bot_conversations::handled_seq.lt(seq)),
    )
    .set(bot_conversations::handled_seq.eq(seq))
    .execute(conn)?;
    Ok(())
}

/// Counts a "didn't understand" answer (`true`) or resets the count (`false`);
/// returns the new count.
///
/// # Errors
/// Database errors.
pub fn not_understood(
    conn: &mut DbConn,
    conversation_id: &str,
    again: bool,
) -> Result<i32, AppError> {
    ensure_row(conn, conversation_id)?;
    let target = bot_conversations::table.find(conversation_id);
    if again {
        diesel::update(target)
            .set(bot_conversations::not_understood.eq(bot_conversations::not_understood + 1))
            .execute(conn)?;
    } else {
        diesel::update(target)
            .set(bot_conversations::not_understood.eq(0))
            .execute(conn)?;
    }
    Ok(get(conn, conversation_id)?.not_understood)
}

/// Moves an active conversation to `handed_over` with its reason; false when it was
/// no longer active (someone else handed over or paused first).
///
/// # Errors
/// Database errors.
pub fn hand_over(conn: &mut DbConn, conversation_id: &str, reason: &str) -> Result<bool, AppError> {
    ensure_row(conn, conversation_id)?;
    let n = diesel::update(
        bot_conversations::table
            .filter(bot_conversations::conversation_id.eq(conversation_id))
            .filter(bot_conversations::status.eq(ACTIVE)),
    )
    .set((
        bot_conversations::status.eq(HANDED_OVER),
        bot_conversations::reason.eq(reason),
        bot_conversations::updated_at.eq(now_ms()),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Stores the agent-facing summary written at handover.
///
/// # Errors
/// Database errors.
pub fn set_summary(
    conn: &mut DbConn,
    conversation_id: &str,
    summary: &str,
) -> Result<(), AppError> {
    diesel::update(bot_conversations::table.find(conversation_id))
        .set(bot_conversations::summary.eq(summary))
        .execute(conn)?;
    Ok(())
}

/// An agent pauses (`paused`) or resumes (`active`) the bot; returns the new row.
///
/// # Errors
/// [`AppError::Validation`] for another status; database errors.
pub fn set_by_agent(
    conn: &mut DbConn,
    conversation_id: &str,
    status: &str,
    agent_id: &str,
) -> Result<StatusRow, AppError> {
    if status != ACTIVE && status != PAUSED {
        return Err(AppError::Validation(
            "The bot can be active or paused.".into(),
        ));
    }
    ensure_row(conn, conversation_id)?;
    diesel::update(bot_conversations::table.find(conversation_id))
        .set((
            bot_conversations::status.eq(status),
            bot_conversations::reason.eq(if status == PAUSED {
                Some("paused by an agent")
            } else {
                None
            }),
            bot_conversations::not_understood.eq(0),
            bot_conversations::updated_at.eq(now_ms()),
            bot_conversations::updated_by.eq(agent_id),
        ))
        .execute(conn)?;
    get(conn, conversation_id)
}

/// One decision of the bot, for the audit trail.
#[derive(Clone, Debug, Default)]
pub struct NewReply {
    /// The conversation.
    pub conversation_id: String,
    /// Its team.
    pub team_id: String,
    /// The bot message posted, if one was.
    pub message_id: Option<String>,
    /// The last customer message seq answered.
    pub trigger_seq: i64,
    /// `rule`, `ai`, `retrieval`, `fallback`, `after_hours`, `handover`,
    /// `not_understood`, `suggestion`.
    pub source: String,
    /// The rule that matched.
    pub rule_id: Option<String>,
    /// Prompt versions used ([`super::prompt::PromptSet::version`]).
    pub prompt_version: Option<String>,
    /// Model that answered.
    pub model: Option<String>,
    /// Cited labels and doc ids: `[{"label","doc_id"}]`.
    pub sources: Value,
    /// 0–1.
    pub confidence: Option<f64>,
    /// The decision handed over.
    pub escalated: bool,
    /// Why (handover reason, model error).
    pub reason: Option<String>,
    /// Time spent deciding, ms.
    pub latency_ms: i64,
}

/// A decision as the API shows it.
#[derive(Clone, Debug, Serialize, Queryable, Selectable)]
#[diesel(table_name = bot_replies)]
pub struct ReplyView {
    /// Row id.
    pub id: String,
    /// The conversation.
    pub conversation_id: String,
    /// Its team.
    #[serde(skip)]
    pub team_id: String,
    /// The bot message posted, if one was.
    pub message_id: Option<String>,
    /// The last customer message seq answered.
    pub trigger_seq: i64,
    /// See [`NewReply::source`].
    pub source: String,
    /// The rule that matched.
    pub rule_id: Option<String>,
    /// Prompt versions used.
    pub prompt_version: Option<String>,
    /// Model that answered.
    pub model: Option<String>,
    /// JSON text of the cited sources.
    #[serde(serialize_with = "as_json")]
    pub sources: String,
    /// 0–1.
    pub confidence: Option<f64>,
    /// The decision handed over.
    pub escalated: bool,
    /// Why.
    pub reason: Option<String>,
    /// Time spent deciding, ms.
    pub latency_ms: i64,
    /// Epoch ms.
    #[serde(serialize_with = "as_rfc3339")]
    pub created_at: i64,
}

fn as_json<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Array(Vec::new()));
    serde::Serialize::serialize(&v, s)
}

fn as_rfc3339<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ms))
}

/// Records a decision.
///
/// # Errors
/// Database errors.
pub fn record(conn: &mut DbConn, r: &NewReply) -> Result<(), AppError> {
    diesel::insert_into(bot_replies::table)
        .values((
            bot_replies::id.eq(new_id()),
            bot_replies::conversation_id.eq(&r.conversation_id),
            bot_replies::team_id.eq(&r.team_id),
            bot_replies::message_id.eq(&r.message_id),
            bot_replies::trigger_seq.eq(r.trigger_seq),
            bot_replies::source.eq(&r.source),
            bot_replies::rule_id.eq(&r.rule_id),
            bot_replies::prompt_version.eq(&r.prompt_version),
            bot_replies::model.eq(&r.model),
            bot_replies::sources.eq(r.sources.to_string()),
            bot_replies::confidence.eq(r.confidence),
            bot_replies::escalated.eq(r.escalated),
            bot_replies::reason.eq(&r.reason),
            bot_replies::latency_ms.eq(r.latency_ms),
            bot_replies::created_at.eq(now_ms()),
        ))
        .execute(conn)?;
    Ok(())
}

/// A conversation's latest decisions, newest first.
///
/// # Errors
/// Database errors.
pub fn recent(
    conn: &mut DbConn,
    conversation_id: &str,
    limit: i64,
) -> Result<Vec<ReplyView>, AppError> {
    Ok(bot_replies::table
        .filter(bot_replies::conversation_id.eq(conversation_id))
        .order((bot_replies::created_at.desc(), bot_replies::id.desc()))
        .limit(limit)
        .select(ReplyView::as_select())
        .load(conn)?)
}
