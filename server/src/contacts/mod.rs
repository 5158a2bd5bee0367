//! Contacts as marketing sees them (`docs/contacts.md`): tags, segments (saved
//! filters) and marketing consent. This module owns the pure policy — names, the
//! consent vocabulary, keyword matching ([`optout`]) and the segment filter
//! ([`segment`]); the SQL lives in `store::{contacts,tags,segments,consent}`.

pub mod optout;
pub mod segment;

use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Longest tag name, in characters.
pub const MAX_TAG_CHARS: usize = 40;

/// Longest segment name, in characters.
pub const MAX_SEGMENT_NAME_CHARS: usize = 80;

/// A contact's marketing consent. No stored row means [`ConsentState::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    /// Never asked and never refused: not opted out, not explicitly in.
    Unknown,
    /// Agreed to receive marketing.
    OptedIn,
    /// Refused marketing: never sent a marketing broadcast.
    OptedOut,
}

impl ConsentState {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::OptedIn => "opted_in",
            Self::OptedOut => "opted_out",
        }
    }

    /// Parses a stored name; anything else reads as unknown.
    pub fn parse_lossy(s: &str) -> Self {
        match s {
            "opted_in" => Self::OptedIn,
            "opted_out" => Self::OptedOut,
            _ => Self::Unknown,
        }
    }
}

/// What changed a contact's consent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    /// The customer wrote an opt-out or opt-in keyword.
    Keyword,
    /// An agent changed it on the contact.
    Agent,
    /// It came with an import.
    Import,
}

impl ConsentSource {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keyword => "keyword",
            Self::Agent => "agent",
            Self::Import => "import",
        }
    }

    /// Parses a stored name (unknown names read as `agent`, the only manual source).
    pub fn parse_lossy(s: &str) -> Self {
        match s {
            "keyword" => Self::Keyword,
            "import" => Self::Import,
            _ => Self::Agent,
        }
    }
}

/// A tag name, trimmed, inner whitespace collapsed, 1..=[`MAX_TAG_CHARS`] characters.
///
/// # Errors
/// [`AppError::Validation`] for an empty or too long name.
pub fn clean_tag_name(raw: &str) -> Result<String, AppError> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err(AppError::Validation("A tag needs a name.".into()));
    }
    if name.chars().count() > MAX_TAG_CHARS {
        return Err(AppError::Validation(format!(
            "A tag name has at most {MAX_TAG_CHARS} characters."
        )));
    }
    Ok(name)
}

/// The key two tag names collide on: lower case.
pub fn tag_key(name: &str) -> String {
    name.to_lowercase()
}

/// A segment name, trimmed, 1..=[`MAX_SEGMENT_NAME_CHARS`] characters.
///
/// # Errors
/// [`AppError::Validation`] for an empty or too long name.
pub fn clean_segment_name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::Validation("A segment needs a name.".into()));
    }
    if name.chars().count() > MAX_SEGMENT_NAME_CHARS {
        return Err(AppError::Validation(format!(
            "A segment name has at most {MAX_SEGMENT_NAME_CHARS} characters."
        )));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_are_trimmed_and_bounded() {
        assert_eq!(clean_tag_name("  VIP   2027 ").unwrap(), "VIP 2027");
        assert!(clean_tag_name("   ").is_err());
        assert!(clean_tag_name(&"x".repeat(MAX_TAG_CHARS + 1)).is_err());
        assert_eq!(tag_key("Umrah VIP"), tag_key("umrah vip"));
    }

    #[test]
    fn consent_names_round_trip() {
        for s in [
            ConsentState::OptedIn,
            ConsentState::OptedOut,
            ConsentState::Unknown,
        ] {
            assert_eq!(ConsentState::parse_lossy(s.as_str()), s);
        }
        for s in [
            ConsentSource::Keyword,
            ConsentSource::Agent,
            ConsentSource::Import,
        ] {
            assert_eq!(ConsentSource::parse_lossy(s.as_str()), s);
        }
    }
}
