//! Versioned prompts (`prompts`) and the assembly of a model request: base prompt +
//! company info + conversation rules + escalation criteria (seed 001's "Prompt
//! Structure"), the lead's stage, the retrieved knowledge, the answer format, then
//! the conversation's recent history.
//!
//! Every `PUT /api/ai/prompts` adds a revision of one prompt part; the newest
//! revision of each part is in use, and each bot reply records the versions it was
//! made with ([`PromptSet::version`]), so an answer can be traced to its prompt.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::knowledge::Hit;
use super::llm::{ChatMessage, Role};
use crate::clock::{now_ms, rfc3339};
use crate::db::schema::prompts;
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::model::new_id;

/// The prompt parts, in the order they are assembled.
pub const PROMPT_TYPES: [&str; 4] = ["base", "company", "rules", "escalation"];

/// The base prompt used until a team stores its own.
pub const DEFAULT_BASE: &str =
    "You are the customer assistant of this business, answering customers on chat. \
Be brief, warm and accurate, and answer in the customer's language. Only state facts found in the \
knowledge below or in the conversation; never invent prices, dates or policies.";

/// One stored revision of a prompt part.
#[derive(Clone, Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = prompts)]
pub struct PromptRow {
    /// Row id.
    pub id: String,
    /// Owning team.
    pub team_id: String,
    /// `base`, `company`, `rules` or `escalation`.
    pub prompt_type: String,
    /// 1, 2, … per team and part.
    pub revision: i32,
    /// The label given by the admin (`"2.0"`), or the revision number.
    pub version: String,
    /// The text.
    pub content: String,
    /// Who stored it (the agent's email).
    pub updated_by: String,
    /// Epoch ms.
    #[serde(serialize_with = "as_rfc3339")]
    pub created_at: i64,
}

fn as_rfc3339<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ms))
}

/// `PUT /api/ai/prompts` body (seed 001's shape, plus the team).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptForm {
    /// The team; optional when the caller belongs to exactly one team.
    #[serde(default)]
    pub team_id: Option<String>,
    /// `base`, `company`, `rules` or `escalation`.
    pub prompt_type: String,
    /// The text, 1–20000 bytes.
    pub content: String,
    /// A label for this version (`"2.0"`); default: the new revision number. Must
    /// differ from every earlier label of the part.
    #[serde(default)]
    pub version: Option<String>,
    /// Ignored beyond logging: the hub records the authenticated caller.
    #[serde(default)]
    pub updated_by: Option<String>,
}

/// The parts in use for a team (newest revision of each).
#[derive(Clone, Debug, Default)]
pub struct PromptSet {
    /// Newest revision per part, in [`PROMPT_TYPES`] order; absent parts are `None`.
    pub parts: Vec<(&'static str, Option<PromptRow>)>,
}

impl PromptSet {
    /// The version string recorded with a reply: `base@2.0+company@1`, or
    /// `default` when the team has stored no prompt.
    pub fn version(&self) -> String {
        let v: Vec<String> = self
            .parts
            .iter()
            .filter_map(|(t, r)| r.as_ref().map(|r| format!("{t}@{}", r.version)))
            .collect();
        if v.is_empty() {
            "default".into()
        } else {
            v.join("+")
        }
    }

    fn part(&self, t: &str) -> Option<&str> {
        self.parts
            .iter()
            .find(|(k, _)| *k == t)
            .and_then(|(_, r)| r.as_ref())
            .map(|r| r.content.as_str())
    }
}

/// Stores a new revision of a prompt part.
///
/// # Errors
/// [`AppError::Validation`] for an unknown part, an empty or oversize text, or a
/// version label used before; [`AppError::Conflict`] when two writers race for the
/// same revision (retry); database errors.
pub fn put(
    conn: &mut DbConn,
    team_id: &str,
    f: &PromptForm,
    by: &str,
) -> Result<PromptRow, AppError> {
    if !PROMPT_TYPES.contains(&f.prompt_type.as_str()) {
        return Err(AppError::Validation(
            "The prompt part can be base, company, rules or escalation.".into(),
        ));
    }
    if f.content.trim().is_empty() || f.content.chars().count() > 20_000 {
        return Err(AppError::Validation(
            "The prompt text must be between 1 and 20000 characters.".into(),
        ));
    }
    if f.version
        .as_deref()
        .is_some_and(|v| v.trim().is_empty() || v.chars().count() > 40)
    {
        return Err(AppError::Validation(
            "The version label must be between 1 and 40 characters.".into(),
        ));
    }
    write_transaction(conn, |c| {
        let last: Option<i32> = prompts::table
            .filter(prompts::team_id.eq(team_id))
            .filter(prompts::prompt_type.eq(&f.prompt_type))
            .select(diesel::dsl::max(prompts::revision))
            .first(c)?;
        let revision = last.unwrap_or(0) + 1;
        let version = f
            .version
            .clone()
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| revision.to_string());
        let taken: i64 = prompts::table
            .filter(prompts::team_id.eq(team_id))
            .filter(prompts::prompt_type.eq(&f.prompt_type))
            .filter(prompts::version.eq(&version))
            .count()
            .get_result(c)?;
        if taken > 0 {
            return Err(AppError::Validation(format!(
                "Version {version} of the {} prompt already exists; choose a new version label.",
                f.prompt_type
            )));
        }
        let id = new_id();
        diesel::insert_into(prompts::table)
            .values((
                prompts::id.eq(&id),
                prompts::team_id.eq(team_id),
                prompts::prompt_type.eq(&f.prompt_type),
                prompts::revision.eq(revision),
                prompts::version.eq(&version),
                prompts::content.eq(&f.content),
                prompts::updated_by.eq(by),
                prompts::created_at.eq(now_ms()),
            ))
            .execute(c)?;
        Ok(prompts::table
            .find(&id)
            .select(PromptRow::as_select())
            .first(c)?)
    })
}

/// The parts in use for a team.
///
/// # Errors
/// Database errors.
pub fn current(conn: &mut DbConn, team_id: &str) -> Result<PromptSet, AppError> {
    let rows: Vec<PromptRow> = prompts::table
        .filter(prompts::team_id.eq(team_id))
        .order((prompts::prompt_type.asc(), prompts::revision.desc()))
        .select(PromptRow::as_select())
        .load(conn)?;
    let parts = PROMPT_TYPES
        .iter()
        .map(|t| (*t, rows.iter().find(|r| r.prompt_type == *t).cloned()))
        .collect();
    Ok(PromptSet { parts })
}

/// Every revision of a team's prompts, newest first.
///
/// # Errors
/// Database errors.
pub fn history(conn: &mut DbConn, team_id: &str) -> Result<Vec<PromptRow>, AppError> {
    Ok(prompts::table
        .filter(prompts::team_id.eq(team_id))
        .order((prompts::created_at.desc(), prompts::revision.desc()))
        .select(PromptRow::as_select())
        .load(conn)?)
}

/// The answer format the model is asked for; [`super::engine`] parses it.
pub const ANSWER_FORMAT: &str = "Answer with one JSON object and nothing else: \
{\"reply\": the message to send to the customer, in plain words without knowledge labels; \
\"confidence\": a number from 0 to 1, how sure you are the reply is correct and answers the \
question from the knowledge given; \"sources\": the labels of the knowledge you used, e.g. \
[\"FAQ #3\"]; \
\"handover\": true when a human should take over (the customer wants to pay or book, asks for a \
person, is upset, or the knowledge does not answer the question); \"phase\": optionally the lead \
stage the conversation has reached}.";

/// What the model is told about the conversation besides its messages.
#[derive(Clone, Debug, Default)]
pub struct Situation<'a> {
    /// The contact's name, when known.
    pub contact_name: Option<&'a str>,
    /// The channel (`widget`, `whatsapp`, `quick_chat`).
    pub channel: &'a str,
    /// The lead's current stage and the stages in order.
    pub lead_stage: Option<&'a str>,
    /// The pipeline's stage keys in order, so the model can name a `phase`.
    pub stages: &'a [String],
}

/// The system prompt: the prompt parts, the situation, the knowledge, the format.
pub fn system_prompt(set: &PromptSet, situation: &Situation<'_>, knowledge: &[Hit]) -> String {
    let mut s = String::new();
    s.push_str(set.part("base").unwrap_or(DEFAULT_BASE).trim());
    for (title, part) in [
        ("Company", "company"),
        ("Conversation rules", "rules"),
        ("When to hand over to a human", "escalation"),
    ] {
        if let Some(text) = set.part(part) {
            s.push_str(&format!("\n\n## {title}\n{}", text.trim()));
        }
    }
    s.push_str("\n\n## This conversation\n");
    s.push_str(&format!("Channel: {}.", situation.channel));
    if let Some(n) = situation.contact_name {
        s.push_str(&format!(" Customer: {n}."));
    }
    if let Some(st) = situation.lead_stage {
        s.push_str(&format!(" Lead stage: {st}."));
    }
    if !situation.stages.is_empty() {
        s.push_str(&format!(
            " Stages in order: {}.",
            situation.stages.join(", ")
        ));
    }
    s.push_str("\n\n## Knowledge\n");
    if knowledge.is_empty() {
        s.push_str("(nothing in the knowledge base matches this question)");
    }
    for hit in knowledge {
        s.push_str(&format!(
            "[{}] {}\n{}\n\n",
            hit.label,
            hit.title,
            hit.text.trim()
        ));
    }
    s.push_str("\n## Answer format\n");
    s.push_str(ANSWER_FORMAT);
    s
}

/// The full request: the system prompt, then the history (customer lines as
/// `user`, the business's as `assistant`).
pub fn messages(system: String, history: &[(bool, String)]) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(history.len() + 1);
    out.push(ChatMessage {
        role: Role::System,
        content: system,
    });
    for (from_customer, text) in history {
        out.push(ChatMessage {
            role: if *from_customer {
                Role::User
            } else {
                Role::Assistant
            },
            content: text.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_the_parts_in_use() {
        let row = |t: &str, v: &str| PromptRow {
            id: "i".into(),
            team_id: "t".into(),
            prompt_type: t.into(),
            revision: 1,
            version: v.into(),
            content: format!("{t} text"),
            updated_by: "a".into(),
            created_at: 0,
        };
        let empty = PromptSet {
            parts: PROMPT_TYPES.iter().map(|t| (*t, None)).collect(),
        };
        assert_eq!(empty.version(), "default");
        let set = PromptSet {
            parts: vec![
                ("base", Some(row("base", "2.0"))),
                ("company", Some(row("company", "1"))),
                ("rules", None),
                ("escalation", None),
            ],
        };
        assert_eq!(set.version(), "base@2.0+company@1");
        let sys = system_prompt(
            &set,
            &Situation {
                channel: "widget",
                ..Default::default()
            },
            &[],
        );
        assert!(sys.starts_with("base text"));
        assert!(sys.contains("## Company\ncompany text"));
        assert!(!sys.contains("Conversation rules"));
    }
}
