//! What a broadcast sends and to whom it may go: the content rules (a Meta
//! template, or free text for WAHA numbers only) and the per-recipient skip rules,
//! as pure functions over facts the store gathers.
//!
//! Sources: WhatsApp's customer service window is 24 hours from the customer's
//! last message; outside it Meta delivers only templates (Meta, "Send messages",
//! customer service windows). Free text to a closed window over WAHA is what gets
//! unofficial numbers banned (seed 003), so the hub refuses it too.

use serde::{Deserialize, Serialize};

use crate::channels::Provider;

/// The customer service window, ms.
pub const WINDOW_MS: i64 = 24 * 60 * 60 * 1_000;

/// Where a template variable's value comes from, per recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", content = "value", rename_all = "snake_case")]
pub enum VariableSource {
    /// The same text for everyone.
    Text(String),
    /// The contact's name (a recipient without one is skipped).
    ContactName,
    /// The contact's phone number as stored.
    ContactPhone,
    /// The campaign code of the contact's lead (a recipient without one is skipped).
    CampaignCode,
}

/// What a broadcast sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    /// An approved Meta template.
    Template {
        /// Template name.
        name: String,
        /// Language code, e.g. `en_US`.
        language: String,
        /// Body variables `{{1}}`, `{{2}}` … in order.
        variables: Vec<VariableSource>,
        /// Link of the header media, for templates with an image, video or
        /// document header (the same for every recipient).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_media_url: Option<String>,
    },
    /// Free text: WAHA numbers only, and only to open windows.
    Text {
        /// The message (1–4096 characters).
        body: String,
    },
}

/// Why a broadcast's content cannot go out from its number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// Free text from a Meta number.
    #[error("a Meta number can broadcast only approved templates")]
    TextOnMeta,
    /// A template from a WAHA number (WAHA has no templates).
    #[error("templates are Meta's; a WAHA number broadcasts text")]
    TemplateOnWaha,
    /// Empty or too long text.
    #[error("the text must be 1 to 4096 characters")]
    TextLength,
}

impl Content {
    /// Checks the content against the provider of the number that sends it.
    ///
    /// # Errors
    /// [`ContentError`] with a text for the marketer.
    pub fn check(&self, provider: Provider) -> Result<(), ContentError> {
        match (self, provider) {
            (Self::Text { .. }, Provider::Meta) => Err(ContentError::TextOnMeta),
            (Self::Template { .. }, Provider::Waha) => Err(ContentError::TemplateOnWaha),
            (Self::Text { body }, Provider::Waha) => {
                let n = body.trim().chars().count();
                if n == 0 || n > 4096 {
                    Err(ContentError::TextLength)
                } else {
                    Ok(())
                }
            }
            (Self::Template { .. }, Provider::Meta) => Ok(()),
        }
    }
}

/// What the store knows of one recipient when the copy is about to be made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientFacts {
    /// Opted out of marketing.
    pub opted_out: bool,
    /// Has a WhatsApp id to send to.
    pub reachable: bool,
    /// The customer's last message, epoch ms.
    pub last_customer_message_at: Option<i64>,
    /// The contact's name.
    pub name: Option<String>,
    /// The contact's phone.
    pub phone: Option<String>,
    /// The lead's campaign code.
    pub campaign_code: Option<String>,
}

/// Why a recipient gets no copy. Stored by [`Skip::as_str`] and counted in the
/// analytics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// Opted out of marketing (STOP).
    OptedOut,
    /// No WhatsApp id.
    Unreachable,
    /// Free text and the customer's window is closed.
    WindowClosed,
    /// A mapped variable has no value for this contact.
    MissingVariable,
    /// A variable's value breaks Meta's rules (e.g. too long).
    InvalidVariable,
}

impl Skip {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OptedOut => "opted_out",
            Self::Unreachable => "unreachable",
            Self::WindowClosed => "window_closed",
            Self::MissingVariable => "missing_variable",
            Self::InvalidVariable => "invalid_variable",
        }
    }
}

/// Whether the window of a customer who last wrote at `last` is open at `now`.
pub fn window_open(last: Option<i64>, now: i64) -> bool {
    last.is_some_and(|t| now - t < WINDOW_MS)
}

/// The variable values of one recipient's copy, or why it gets none. The
/// opt-out is checked here, when the copy is made, not only when recipients are
/// fixed: a STOP that arrives mid-broadcast is honoured.
///
/// # Errors
/// The [`Skip`] reason.
pub fn personalise(
    content: &Content,
    facts: &RecipientFacts,
    now: i64,
) -> Result<Vec<String>, Skip> {
    if facts.opted_out {
        return Err(Skip::OptedOut);
    }
    if !facts.reachable {
        return Err(Skip::Unreachable);
    }
    match content {
        Content::Text { .. } if !window_open(facts.last_customer_message_at, now) => {
            Err(Skip::WindowClosed)
        }
        Content::Text { .. } => Ok(Vec::new()),
        Content::Template { variables, .. } => variables
            .iter()
            .map(|v| {
                let value = match v {
                    VariableSource::Text(t) => Some(t.clone()),
                    VariableSource::ContactName => facts.name.clone(),
                    VariableSource::ContactPhone => facts.phone.clone(),
                    VariableSource::CampaignCode => facts.campaign_code.clone(),
                };
                value
                    .filter(|s| !s.trim().is_empty())
                    .ok_or(Skip::MissingVariable)
            })
            .collect(),
    }
}

/// Whether something that happened at `at` (a reply, a lead created or won) is
/// credited to a copy sent at `sent_at`, with an attribution window of
/// `window_ms` (default 7 days, issue 17 §4).
pub fn attributed(sent_at: i64, at: i64, window_ms: i64) -> bool {
    at >= sent_at && at - sent_at <= window_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(vars: Vec<VariableSource>) -> Content {
        Content::Template {
            name: "trip_promo".into(),
            language: "en_US".into(),
            variables: vars,
            header_media_url: None,
        }
    }

    fn facts() -> RecipientFacts {
        RecipientFacts {
            reachable: true,
            name: Some("Ayu".into()),
            ..RecipientFacts::default()
        }
    }

    #[test]
    fn content_must_suit_the_provider() {
        let text = Content::Text { body: "Hi".into() };
        assert_eq!(text.check(Provider::Meta), Err(ContentError::TextOnMeta));
        assert!(text.check(Provider::Waha).is_ok());
        assert_eq!(
            template(vec![]).check(Provider::Waha),
            Err(ContentError::TemplateOnWaha)
        );
        let blank = Content::Text { body: "  ".into() };
        assert_eq!(blank.check(Provider::Waha), Err(ContentError::TextLength));
    }

    #[test]
    fn opted_out_and_unreachable_contacts_are_skipped() {
        let c = template(vec![VariableSource::ContactName]);
        assert_eq!(personalise(&c, &facts(), 0), Ok(vec!["Ayu".to_string()]));
        let out = RecipientFacts {
            opted_out: true,
            ..facts()
        };
        assert_eq!(personalise(&c, &out, 0), Err(Skip::OptedOut));
        let none = RecipientFacts {
            reachable: false,
            ..facts()
        };
        assert_eq!(personalise(&c, &none, 0), Err(Skip::Unreachable));
        let nameless = RecipientFacts {
            name: None,
            ..facts()
        };
        assert_eq!(personalise(&c, &nameless, 0), Err(Skip::MissingVariable));
    }

    #[test]
    fn free_text_only_reaches_open_windows() {
        let text = Content::Text {
            body: "Trip tomorrow".into(),
        };
        let now = 10 * WINDOW_MS;
        let open = RecipientFacts {
            last_customer_message_at: Some(now - WINDOW_MS + 1),
            ..facts()
        };
        assert_eq!(personalise(&text, &open, now), Ok(vec![]));
        let closed = RecipientFacts {
            last_customer_message_at: Some(now - WINDOW_MS),
            ..facts()
        };
        assert_eq!(personalise(&text, &closed, now), Err(Skip::WindowClosed));
        assert_eq!(personalise(&text, &facts(), now), Err(Skip::WindowClosed));
    }

    #[test]
    fn attribution_has_a_window() {
        let week = 7 * WINDOW_MS;
        assert!(attributed(1_000, 1_000, week));
        assert!(attributed(1_000, 1_000 + week, week));
        assert!(!attributed(1_000, 1_001 + week, week));
        assert!(!attributed(1_000, 999, week), "before the copy went");
    }
}
