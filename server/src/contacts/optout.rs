//! Opt-out and opt-in keywords (`docs/contacts.md`, "Opt-out"): whether a customer's
//! message is exactly one of the team's keywords, and the team's settings for them.
//! Pure: the pipeline stage (`pipeline::stages`) and the consent store act on the
//! answer.
//!
//! A message matches when, after trimming, dropping surrounding punctuation
//! (`STOP!`, `"stop."`), lower-casing, removing accents and collapsing whitespace,
//! it equals a keyword folded the same way. A keyword inside a longer message
//! ("please don't stop the offers") never matches.

use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::leads::intent::fold;

/// Opt-out keywords every team starts with.
pub const DEFAULT_OPT_OUT: [&str; 4] = ["STOP", "UNSUBSCRIBE", "BERHENTI", "STOP PROMO"];

/// Opt-in keywords every team starts with.
pub const DEFAULT_OPT_IN: [&str; 1] = ["START"];

/// Default confirmation of an opt-out.
pub const DEFAULT_OPT_OUT_REPLY: &str =
    "You will no longer receive promotions from us. Reply START to subscribe again.";

/// Default confirmation of an opt-in.
pub const DEFAULT_OPT_IN_REPLY: &str =
    "You are subscribed to our promotions again. Reply STOP to unsubscribe.";

/// Most keywords in one list.
pub const MAX_KEYWORDS: usize = 20;

/// Longest keyword, in characters.
pub const MAX_KEYWORD_CHARS: usize = 40;

/// Longest confirmation text, in characters.
pub const MAX_REPLY_CHARS: usize = 500;

/// A team's keyword settings, as stored (JSON) and as the API reads and writes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordSettings {
    /// Messages that opt the contact out of marketing.
    pub opt_out: Vec<String>,
    /// Messages that opt the contact back in.
    pub opt_in: Vec<String>,
    /// Sent once when a contact opts out.
    pub opt_out_reply: String,
    /// Sent once when a contact opts back in.
    pub opt_in_reply: String,
}

impl Default for KeywordSettings {
    fn default() -> Self {
        Self {
            opt_out: DEFAULT_OPT_OUT.map(String::from).to_vec(),
            opt_in: DEFAULT_OPT_IN.map(String::from).to_vec(),
            opt_out_reply: DEFAULT_OPT_OUT_REPLY.into(),
            opt_in_reply: DEFAULT_OPT_IN_REPLY.into(),
        }
    }
}

/// What a customer's message asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeywordIntent {
    /// Stop marketing.
    OptOut,
    /// Resume marketing.
    OptIn,
}

/// `text` as keywords are compared: trimmed of whitespace and surrounding
/// punctuation, lower case, without accents, whitespace collapsed.
pub fn normalise(text: &str) -> String {
    let trimmed = text.trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation());
    fold(trimmed)
}

impl KeywordSettings {
    /// Whether `message` is exactly one of the keywords; opt-out wins if a keyword is
    /// in both lists (validation refuses that, this is the safe side).
    pub fn classify(&self, message: &str) -> Option<KeywordIntent> {
        let text = normalise(message);
        if text.is_empty() {
            return None;
        }
        let is = |list: &[String]| list.iter().any(|k| normalise(k) == text);
        if is(&self.opt_out) {
            Some(KeywordIntent::OptOut)
        } else if is(&self.opt_in) {
            Some(KeywordIntent::OptIn)
        } else {
            None
        }
    }

    /// The settings cleaned (keywords trimmed, blank and repeated ones dropped) and
    /// checked.
    ///
    /// # Errors
    /// [`AppError::Validation`]: no opt-out keyword, too many or too long keywords, a
    /// keyword in both lists, an empty or too long confirmation.
    pub fn validated(self) -> Result<Self, AppError> {
        let clean = |list: Vec<String>, what: &str| -> Result<Vec<String>, AppError> {
            let mut out: Vec<String> = Vec::new();
            for k in list {
                let k = k.split_whitespace().collect::<Vec<_>>().join(" ");
                if k.is_empty() || out.iter().any(|o| normalise(o) == normalise(&k)) {
                    continue;
                }
                if k.chars().count() > MAX_KEYWORD_CHARS || normalise(&k).is_empty() {
                    return Err(AppError::Validation(format!(
                        "An {what} keyword has 1 to {MAX_KEYWORD_CHARS} characters, not only punctuation."
                    )));
                }
                out.push(k);
            }
            if out.len() > MAX_KEYWORDS {
                return Err(AppError::Validation(format!(
                    "At most {MAX_KEYWORDS} {what} keywords."
                )));
            }
            Ok(out)
        };
        let opt_out = clean(self.opt_out, "opt-out")?;
        let opt_in = clean(self.opt_in, "opt-in")?;
        if opt_out.is_empty() {
            return Err(AppError::Validation(
                "Customers need at least one opt-out keyword.".into(),
            ));
        }
        if let Some(k) = opt_in
            .iter()
            .find(|k| opt_out.iter().any(|o| normalise(o) == normalise(k)))
        {
            return Err(AppError::Validation(format!(
                "{k:?} cannot both opt out and opt in."
            )));
        }
        let reply = |text: String, what: &str| -> Result<String, AppError> {
            let t = text.trim().to_string();
            if t.is_empty() || t.chars().count() > MAX_REPLY_CHARS {
                return Err(AppError::Validation(format!(
                    "The {what} confirmation has 1 to {MAX_REPLY_CHARS} characters."
                )));
            }
            Ok(t)
        };
        Ok(Self {
            opt_out,
            opt_in,
            opt_out_reply: reply(self.opt_out_reply, "opt-out")?,
            opt_in_reply: reply(self.opt_in_reply, "opt-in")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keywords_match_exactly_whatever_the_case_accents_and_spacing() {
        let s = KeywordSettings::default();
        for m in [
            "STOP",
            "stop",
            "  Stop \n",
            "Stöp",
            "STOP!",
            "unsubscribe",
            "Berhenti.",
            "stop   promo",
            "Stop Prómo",
        ] {
            assert_eq!(s.classify(m), Some(KeywordIntent::OptOut), "{m:?}");
        }
        assert_eq!(s.classify(" start "), Some(KeywordIntent::OptIn));
        assert_eq!(s.classify("Stárt!"), Some(KeywordIntent::OptIn));
    }

    #[test]
    fn a_keyword_inside_a_longer_message_does_not_match() {
        let s = KeywordSettings::default();
        for m in [
            "please don't stop",
            "stop promo please",
            "stopp",
            "",
            "   ",
            "!!!",
            "when does the tour start?",
        ] {
            assert_eq!(s.classify(m), None, "{m:?}");
        }
    }

    #[test]
    fn team_keywords_replace_the_defaults() {
        let s = KeywordSettings {
            opt_out: vec!["BATAL".into()],
            opt_in: vec!["MULAI".into()],
            ..KeywordSettings::default()
        }
        .validated()
        .unwrap();
        assert_eq!(s.classify("batal"), Some(KeywordIntent::OptOut));
        assert_eq!(s.classify("STOP"), None);
        assert_eq!(s.classify("Mulai"), Some(KeywordIntent::OptIn));
    }

    #[test]
    fn validation_cleans_and_refuses_bad_lists() {
        let s = KeywordSettings {
            opt_out: vec![
                " stop ".into(),
                "STOP".into(),
                "".into(),
                "Quit  now".into(),
            ],
            ..KeywordSettings::default()
        }
        .validated()
        .unwrap();
        assert_eq!(s.opt_out, vec!["stop", "Quit now"]);

        let none = KeywordSettings {
            opt_out: vec!["  ".into()],
            ..KeywordSettings::default()
        };
        assert!(none.validated().is_err());
        let both = KeywordSettings {
            opt_in: vec!["Stop".into()],
            ..KeywordSettings::default()
        };
        assert!(both.validated().is_err());
        let punct = KeywordSettings {
            opt_out: vec!["?!".into()],
            ..KeywordSettings::default()
        };
        assert!(punct.validated().is_err());
        let long = KeywordSettings {
            opt_out: vec!["x".repeat(MAX_KEYWORD_CHARS + 1)],
            ..KeywordSettings::default()
        };
        assert!(long.validated().is_err());
        let empty_reply = KeywordSettings {
            opt_out_reply: " ".into(),
            ..KeywordSettings::default()
        };
        assert!(empty_reply.validated().is_err());
    }
}
