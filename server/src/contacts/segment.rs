//! The segment filter (`docs/contacts.md`, "Segments"): a typed, validated
//! description of a set of contacts. Pure: `store::segments` compiles it to SQL on
//! both backends; broadcasts materialise its members from there.
//!
//! Every criterion narrows the set (they are ANDed); within one list, values are
//! alternatives (ORed), except `tags.all` (every tag) and `tags.none` (no tag). An
//! empty filter is every contact with a conversation.

use serde::{Deserialize, Serialize};

use super::ConsentState;
use crate::error::AppError;

/// Most values in one list of a filter.
pub const MAX_VALUES: usize = 50;

/// Longest value (a stage, a source, a campaign code, an id), in characters.
pub const MAX_VALUE_CHARS: usize = 80;

/// A conversation channel a contact was reached on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The website widget.
    Widget,
    /// A quick-chat link page.
    QuickChat,
    /// WhatsApp through Meta's Cloud API.
    Whatsapp,
    /// WhatsApp through WAHA.
    Waha,
}

impl Channel {
    /// The stored name (`conversations.channel`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Widget => "widget",
            Self::QuickChat => "quick_chat",
            Self::Whatsapp => "whatsapp",
            Self::Waha => "waha",
        }
    }
}

/// Tags a contact must carry: any of, all of, none of (tag ids).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagFilter {
    /// At least one of these.
    #[serde(default)]
    pub any: Vec<String>,
    /// Every one of these.
    #[serde(default)]
    pub all: Vec<String>,
    /// None of these.
    #[serde(default)]
    pub none: Vec<String>,
}

/// A time range in epoch milliseconds; either end open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateRange {
    /// At or after this instant.
    #[serde(default)]
    pub from_ms: Option<i64>,
    /// At or before this instant.
    #[serde(default)]
    pub to_ms: Option<i64>,
}

impl DateRange {
    /// Whether neither end is set.
    pub fn is_open(&self) -> bool {
        self.from_ms.is_none() && self.to_ms.is_none()
    }
}

/// Marketing consent a contact must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentFilter {
    /// Explicitly opted in.
    OptedIn,
    /// Opted out.
    OptedOut,
    /// Never asked.
    Unknown,
    /// Opted in or never asked: whom marketing may reach.
    NotOptedOut,
}

impl ConsentFilter {
    /// The stored consent states this filter accepts (`Unknown` is "no row").
    pub fn accepts(self) -> &'static [ConsentState] {
        match self {
            Self::OptedIn => &[ConsentState::OptedIn],
            Self::OptedOut => &[ConsentState::OptedOut],
            Self::Unknown => &[ConsentState::Unknown],
            Self::NotOptedOut => &[ConsentState::OptedIn, ConsentState::Unknown],
        }
    }
}

/// A saved filter over contacts. See the module documentation for how the
/// criteria combine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentFilter {
    /// Tag conditions.
    #[serde(default)]
    pub tags: TagFilter,
    /// Has a conversation on one of these channels.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Has a conversation on one of these WhatsApp numbers (`conversations.number_id`).
    #[serde(default)]
    pub number_ids: Vec<String>,
    /// The contact's lead is in one of these stages.
    #[serde(default)]
    pub lead_stages: Vec<String>,
    /// The contact's lead came from one of these sources.
    #[serde(default)]
    pub lead_sources: Vec<String>,
    /// The contact's lead carries one of these campaign codes.
    #[serde(default)]
    pub campaign_codes: Vec<String>,
    /// When the contact was created.
    #[serde(default)]
    pub created: DateRange,
    /// When the contact's latest message (any conversation) was.
    #[serde(default)]
    pub last_message: DateRange,
    /// Marketing consent.
    #[serde(default)]
    pub consent: Option<ConsentFilter>,
}

fn clean_list(list: Vec<String>, what: &str) -> Result<Vec<String>, AppError> {
    let mut out: Vec<String> = Vec::new();
    for v in list {
        let v = v.trim().to_string();
        if v.is_empty() || out.contains(&v) {
            continue;
        }
        if v.chars().count() > MAX_VALUE_CHARS {
            return Err(AppError::Validation(format!(
                "A {what} has at most {MAX_VALUE_CHARS} characters."
            )));
        }
        out.push(v);
    }
    if out.len() > MAX_VALUES {
        return Err(AppError::Validation(format!(
            "At most {MAX_VALUES} values per {what} list."
        )));
    }
    Ok(out)
}

fn check_range(r: DateRange, what: &str) -> Result<DateRange, AppError> {
    if let (Some(from), Some(to)) = (r.from_ms, r.to_ms) {
        if from > to {
            return Err(AppError::Validation(format!(
                "The {what} range ends before it starts."
            )));
        }
    }
    if r.from_ms.is_some_and(|v| v < 0) || r.to_ms.is_some_and(|v| v < 0) {
        return Err(AppError::Validation(format!(
            "The {what} range has a negative time."
        )));
    }
    Ok(r)
}

impl SegmentFilter {
    /// The filter cleaned (values trimmed, blanks and repeats dropped; campaign codes
    /// upper case as stored) and checked.
    ///
    /// # Errors
    /// [`AppError::Validation`]: too many or too long values, a tag both required and
    /// excluded, a range that ends before it starts.
    pub fn validated(self) -> Result<Self, AppError> {
        let tags = TagFilter {
            any: clean_list(self.tags.any, "tag")?,
            all: clean_list(self.tags.all, "tag")?,
            none: clean_list(self.tags.none, "tag")?,
        };
        if let Some(t) = tags
            .none
            .iter()
            .find(|t| tags.all.contains(t) || tags.any.contains(t))
        {
            return Err(AppError::Validation(format!(
                "Tag {t} is both required and excluded: no contact could match."
            )));
        }
        let mut channels: Vec<Channel> = Vec::new();
        for c in self.channels {
            if !channels.contains(&c) {
                channels.push(c);
            }
        }
        let codes = clean_list(self.campaign_codes, "campaign code")?
            .into_iter()
            .map(|c| c.to_uppercase())
            .collect();
        Ok(Self {
            tags,
            channels,
            number_ids: clean_list(self.number_ids, "number")?,
            lead_stages: clean_list(self.lead_stages, "lead stage")?,
            lead_sources: clean_list(self.lead_sources, "lead source")?,
            campaign_codes: codes,
            created: check_range(self.created, "created")?,
            last_message: check_range(self.last_message, "last message")?,
            consent: self.consent,
        })
    }

    /// Every tag id the filter names (to check they exist).
    pub fn tag_ids(&self) -> impl Iterator<Item = &String> {
        self.tags
            .any
            .iter()
            .chain(&self.tags.all)
            .chain(&self.tags.none)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_parses_from_json_and_is_cleaned() {
        let f: SegmentFilter = serde_json::from_value(serde_json::json!({
            "tags": {"any": [" a ", "a", ""], "none": ["c"]},
            "channels": ["whatsapp", "waha"],
            "lead_stages": ["new"],
            "campaign_codes": ["umrah25"],
            "created": {"from_ms": 10, "to_ms": 20},
            "consent": "not_opted_out"
        }))
        .unwrap();
        let f = f.validated().unwrap();
        assert_eq!(f.tags.any, vec!["a"]);
        assert_eq!(f.campaign_codes, vec!["UMRAH25"]);
        assert_eq!(f.consent, Some(ConsentFilter::NotOptedOut));
        assert_eq!(f.tag_ids().count(), 2);
        assert!(SegmentFilter::default().validated().is_ok());
    }

    #[test]
    fn unknown_fields_and_channels_are_refused() {
        let bad = serde_json::from_value::<SegmentFilter>(serde_json::json!({"colour": "red"}));
        assert!(bad.is_err());
        let bad = serde_json::from_value::<SegmentFilter>(serde_json::json!({"channels": ["fax"]}));
        assert!(bad.is_err());
    }

    #[test]
    fn contradictions_and_bad_ranges_are_refused() {
        let f = SegmentFilter {
            tags: TagFilter {
                all: vec!["x".into()],
                none: vec!["x".into()],
                ..TagFilter::default()
            },
            ..SegmentFilter::default()
        };
        assert!(f.validated().is_err());
        let f = SegmentFilter {
            last_message: DateRange {
                from_ms: Some(5),
                to_ms: Some(4),
            },
            ..SegmentFilter::default()
        };
        assert!(f.validated().is_err());
        let f = SegmentFilter {
            lead_stages: (0..=MAX_VALUES).map(|i| i.to_string()).collect(),
            ..SegmentFilter::default()
        };
        assert!(f.validated().is_err());
    }

    #[test]
    fn consent_filters_name_the_states_they_accept() {
        assert_eq!(
            ConsentFilter::NotOptedOut.accepts(),
            &[ConsentState::OptedIn, ConsentState::Unknown]
        );
        assert_eq!(ConsentFilter::OptedOut.accepts(), &[ConsentState::OptedOut]);
    }
}
