//! A team's lead configuration: the pipeline (ordered stages) and the intent rules,
//! stored as JSON in `lead_settings`; teams without a row use the defaults below
//! (seed 000's pipeline and keywords, seed 001's Indonesian payment triggers).

use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One pipeline stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// Stable key (`new`, `contacted`, …): lowercase letters, digits, `_`.
    pub key: String,
    /// Display name.
    pub name: String,
    /// `won` or `lost` for closing stages (outside the forward order); else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Hours until the follow-up task created when a lead enters this stage
    /// (absent: no follow-up task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up_hours: Option<i64>,
}

/// What a matched intent does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentRule {
    /// `booking`, `pricing`, `help`, `payment` or any team-defined name.
    pub intent: String,
    /// Language of the keywords (`en`, `id`, …), informational.
    pub language: String,
    /// Words or phrases, matched on word boundaries, case- and accent-insensitive.
    pub keywords: Vec<String>,
    /// Stage to move the lead to (forward only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Priority to raise the lead to (`low` < `normal` < `high`; never lowered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Task to create (kind), due after `task_due_minutes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Minutes until the task is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_due_minutes: Option<i64>,
    /// Flag the lead for handover to a human and alert the team leads.
    #[serde(default)]
    pub handover: bool,
    /// Points added to the lead's score.
    #[serde(default)]
    pub score: i32,
}

/// Priorities, lowest first.
pub const PRIORITIES: [&str; 3] = ["low", "normal", "high"];

/// Rank of a priority name (unknown: `normal`).
pub fn priority_rank(p: &str) -> usize {
    PRIORITIES.iter().position(|x| *x == p).unwrap_or(1)
}

/// The default pipeline: new → contacted → interested → qualified → proposal →
/// negotiation → won | lost.
pub fn default_stages() -> Vec<Stage> {
    let s = |key: &str, name: &str, outcome: Option<&str>, follow: Option<i64>| Stage {
        key: key.into(),
        name: name.into(),
        outcome: outcome.map(str::to_string),
        follow_up_hours: follow,
    };
    vec![
        s("new", "New", None, None),
        s("contacted", "Contacted", None, Some(24)),
        s("interested", "Interested", None, Some(48)),
        s("qualified", "Qualified", None, Some(24)),
        s("proposal", "Proposal", None, Some(48)),
        s("negotiation", "Negotiation", None, Some(24)),
        s("won", "Won", Some("won"), None),
        s("lost", "Lost", Some("lost"), None),
    ]
}

/// The default intent rules, English and Indonesian.
pub fn default_rules() -> Vec<IntentRule> {
    #[allow(clippy::too_many_arguments)]
    fn r(
        intent: &str,
        language: &str,
        keywords: &[&str],
        stage: Option<&str>,
        priority: Option<&str>,
        task: Option<(&str, i64)>,
        handover: bool,
        score: i32,
    ) -> IntentRule {
        IntentRule {
            intent: intent.into(),
            language: language.into(),
            keywords: keywords.iter().map(|k| (*k).to_string()).collect(),
            stage: stage.map(str::to_string),
            priority: priority.map(str::to_string),
            task: task.map(|t| t.0.to_string()),
            task_due_minutes: task.map(|t| t.1),
            handover,
            score,
        }
    }
    vec![
        r(
            "payment",
            "en",
            &[
                "how do i pay",
                "how to pay",
                "payment",
                "bank transfer",
                "deposit",
                "pay now",
            ],
            Some("proposal"),
            Some("high"),
            Some(("payment", 120)),
            true,
            30,
        ),
        r(
            "payment",
            "id",
            &[
                "cara bayar",
                "cara pembayaran",
                "dp berapa",
                "berapa dp",
                "mau daftar",
                "transfer ke",
                "pembayaran",
                "bayar dp",
            ],
            Some("proposal"),
            Some("high"),
            Some(("payment", 120)),
            true,
            30,
        ),
        r(
            "booking",
            "en",
            &[
                "book",
                "reserve",
                "reservation",
                "i want to book",
                "sign me up",
            ],
            Some("qualified"),
            Some("high"),
            Some(("booking", 60)),
            false,
            20,
        ),
        r(
            "booking",
            "id",
            &["pesan", "booking", "mau pesan", "mau ikut"],
            Some("qualified"),
            Some("high"),
            Some(("booking", 60)),
            false,
            20,
        ),
        r(
            "pricing",
            "en",
            &["price", "prices", "pricing", "cost", "how much", "fee"],
            Some("interested"),
            Some("high"),
            Some(("pricing", 120)),
            false,
            10,
        ),
        r(
            "pricing",
            "id",
            &["harga", "harganya", "berapa harga", "biaya"],
            Some("interested"),
            Some("high"),
            Some(("pricing", 120)),
            false,
            10,
        ),
        r(
            "help",
            "en",
            &["help", "support", "question", "problem"],
            None,
            Some("normal"),
            None,
            false,
            0,
        ),
        r(
            "help",
            "id",
            &["bantuan", "tolong", "tanya", "bantu"],
            None,
            Some("normal"),
            None,
            false,
            0,
        ),
    ]
}

/// The default welcome for a first message with an unknown campaign code.
pub const DEFAULT_WELCOME: &str =
    "Welcome! Thanks for reaching out. How many people are travelling, \
and which month would you like? An agent will be with you shortly.";

/// A team's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadConfig {
    /// Ordered stages.
    pub stages: Vec<Stage>,
    /// Intent rules, applied in order.
    pub rules: Vec<IntentRule>,
    /// Reply to a first message with an unknown campaign code.
    pub welcome: String,
}

impl Default for LeadConfig {
    fn default() -> Self {
        Self {
            stages: default_stages(),
            rules: default_rules(),
            welcome: DEFAULT_WELCOME.into(),
        }
    }
}

impl LeadConfig {
    /// Position of a stage in the pipeline.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.key == key)
    }

    /// The stage, if it exists.
    pub fn stage(&self, key: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.key == key)
    }

    /// The first stage (new leads start here).
    pub fn first(&self) -> &str {
        self.stages.first().map_or("new", |s| s.key.as_str())
    }

    /// The stage after the first (the first agent reply moves a lead there).
    pub fn second(&self) -> Option<&str> {
        self.stages
            .get(1)
            .filter(|s| s.outcome.is_none())
            .map(|s| s.key.as_str())
    }

    /// Whether an automatic move from `from` to `to` goes forward: `to` lies later
    /// in the open part of the pipeline, and `from` is not closed.
    pub fn is_forward(&self, from: &str, to: &str) -> bool {
        let (Some(a), Some(b)) = (self.position(from), self.position(to)) else {
            return false;
        };
        let closed = |i: usize| self.stages[i].outcome.is_some();
        !closed(a) && !closed(b) && b > a
    }

    /// Checks stages and rules: at least two stages, unique well-formed keys, at
    /// most one `won` and one `lost` stage, rules naming existing stages and known
    /// priorities.
    ///
    /// # Errors
    /// [`AppError::Validation`] saying what is wrong.
    pub fn validate(&self) -> Result<(), AppError> {
        if self.stages.len() < 2 || self.stages.len() > 30 {
            return Err(AppError::Validation("a pipeline has 2 to 30 stages".into()));
        }
        for (i, s) in self.stages.iter().enumerate() {
            let ok = !s.key.is_empty()
                && s.key.len() <= 32
                && s.key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(AppError::Validation(format!(
                    "stage key {:?} must be 1-32 of a-z, 0-9, _",
                    s.key
                )));
            }
            if self.stages[..i].iter().any(|o| o.key == s.key) {
                return Err(AppError::Validation(format!(
                    "stage {:?} appears twice",
                    s.key
                )));
            }
            if let Some(o) = &s.outcome {
                if o != "won" && o != "lost" {
                    return Err(AppError::Validation("outcome must be won or lost".into()));
                }
            }
        }
        if self.stages[0].outcome.is_some() {
            return Err(AppError::Validation(
                "the first stage cannot be a closing stage".into(),
            ));
        }
        for r in &self.rules {
            if r.intent.trim().is_empty() || r.keywords.is_empty() {
                return Err(AppError::Validation(
                    "every rule needs an intent and keywords".into(),
                ));
            }
            if let Some(s) = &r.stage {
                if self.position(s).is_none() {
                    return Err(AppError::Validation(format!(
                        "rule {:?} names unknown stage {s:?}",
                        r.intent
                    )));
                }
            }
            if let Some(p) = &r.priority {
                if !PRIORITIES.contains(&p.as_str()) {
                    return Err(AppError::Validation(format!(
                        "priority must be one of {PRIORITIES:?}"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_forward_only() {
        let c = LeadConfig::default();
        c.validate().unwrap();
        assert!(c.is_forward("new", "interested"));
        assert!(!c.is_forward("qualified", "interested"));
        assert!(!c.is_forward("won", "negotiation"));
        assert!(!c.is_forward("new", "won"));
        assert_eq!(c.second(), Some("contacted"));
    }
}
