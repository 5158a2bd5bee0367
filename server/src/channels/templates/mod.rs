//! Meta message templates, as pure functions: reading Meta's template list and its
//! `message_template_status_update` webhook, the shape of a template (header, body
//! and button variables), checking an agent's variable values against it,
//! rendering the text the customer will read, and explaining Meta's template error
//! codes to agents.
//!
//! Shapes follow Meta's "Message templates" reference and "Send template messages"
//! page (fixtures `tests/fixtures/whatsapp/meta_templates_*.json`,
//! `meta_send_template_request.json`). Persistence is `store/templates.rs`, the
//! sync `sync.rs`, the Graph request `send.rs`.

pub mod send;
pub mod sync;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most variables one component may have (Meta allows far fewer in practice).
const MAX_VARIABLES: usize = 60;
/// Longest value of one variable, in characters (Meta: 1024 for body parameters).
pub const MAX_VALUE_CHARS: usize = 1024;

/// A template's review status at Meta. Only `Approved` templates can be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateStatus {
    /// Usable.
    Approved,
    /// In review.
    Pending,
    /// Refused by Meta's review.
    Rejected,
    /// Paused by Meta for low quality.
    Paused,
    /// Disabled by Meta.
    Disabled,
    /// Any other state Meta reports (in appeal, pending deletion, limit exceeded …).
    Other,
}

impl TemplateStatus {
    /// Parses Meta's status (or webhook `event`) name; unknown names are `Other`.
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_uppercase().as_str() {
            "APPROVED" => Self::Approved,
            "PENDING" => Self::Pending,
            "REJECTED" => Self::Rejected,
            "PAUSED" => Self::Paused,
            "DISABLED" => Self::Disabled,
            _ => Self::Other,
        }
    }
}

/// One template as Meta lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct MetaTemplate {
    /// Meta's template id.
    pub meta_id: Option<String>,
    /// Template name (unique per WABA and language).
    pub name: String,
    /// Language code, e.g. `en_US`, `id`.
    pub language: String,
    /// `UTILITY`, `MARKETING` or `AUTHENTICATION`.
    pub category: String,
    /// Meta's status name as given (`APPROVED`, `PENDING` …).
    pub status: String,
    /// Meta's `components` array.
    pub components: Value,
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The templates of one page of `GET /{waba-id}/message_templates`, and the cursor
/// of the next page: `paging.cursors.after`, only when Meta says there is a next
/// page (`paging.next` present). Entries without name or language are skipped.
pub fn parse_page(page: &Value) -> (Vec<MetaTemplate>, Option<String>) {
    let templates = page
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(MetaTemplate {
                meta_id: match t.get("id") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                },
                name: text(t, "name")?.to_string(),
                language: text(t, "language")?.to_string(),
                category: text(t, "category").unwrap_or("UTILITY").to_string(),
                status: text(t, "status").unwrap_or("PENDING").to_string(),
                components: t.get("components").cloned().unwrap_or(Value::Array(vec![])),
            })
        })
        .collect();
    let paging = page.get("paging");
    let next = paging
        .filter(|p| p.get("next").and_then(Value::as_str).is_some())
        .and_then(|p| p.get("cursors"))
        .and_then(|c| text(c, "after"))
        .map(str::to_string);
    (templates, next)
}

/// A `message_template_status_update` webhook change (Meta "Webhooks —
/// message_template_status_update").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusEvent {
    /// The WABA (`entry[].id`).
    pub waba_id: String,
    /// Meta's template id.
    pub meta_id: Option<String>,
    /// Template name.
    pub name: String,
    /// Language code.
    pub language: String,
    /// New status (`event`: `APPROVED`, `REJECTED`, `PAUSED` …).
    pub status: String,
    /// Meta's reason, when not `NONE`.
    pub reason: Option<String>,
}

/// Every template status change of a Meta webhook POST (other fields yield nothing).
pub fn parse_status_events(payload: &Value) -> Vec<StatusEvent> {
    let mut out = Vec::new();
    for entry in payload
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(waba_id) = text(entry, "id") else {
            continue;
        };
        for change in entry
            .get("changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if change.get("field").and_then(Value::as_str) != Some("message_template_status_update")
            {
                continue;
            }
            let Some(v) = change.get("value") else {
                continue;
            };
            let (Some(name), Some(language), Some(status)) = (
                text(v, "message_template_name"),
                text(v, "message_template_language"),
                text(v, "event"),
            ) else {
                continue;
            };
            out.push(StatusEvent {
                waba_id: waba_id.to_string(),
                meta_id: match v.get("message_template_id") {
                    Some(Value::Number(n)) => Some(n.to_string()),
                    Some(Value::String(s)) => Some(s.clone()),
                    _ => None,
                },
                name: name.to_string(),
                language: language.to_string(),
                status: status.to_string(),
                reason: text(v, "reason")
                    .filter(|r| !r.eq_ignore_ascii_case("NONE"))
                    .map(str::to_string),
            });
        }
    }
    out
}

/// The highest `{{n}}` in `text`: how many positional variables it takes.
pub fn variable_count(text: &str) -> usize {
    let mut max = 0;
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find("}}") else { break };
        if let Ok(n) = rest[..end].trim().parse::<usize>() {
            max = max.max(n.min(MAX_VARIABLES));
        }
        rest = &rest[end + 2..];
    }
    max
}

/// Replaces `{{n}}` by `values[n-1]`; a missing value leaves the placeholder.
pub fn fill(text: &str, values: &[String]) -> String {
    let mut out = text.to_string();
    for (i, v) in values.iter().enumerate().rev() {
        out = out.replace(&format!("{{{{{}}}}}", i + 1), v);
    }
    out
}

/// The kind of a template's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum Header {
    /// Text, with this many variables.
    Text {
        /// The header text.
        text: String,
        /// Its variables.
        variables: usize,
    },
    /// An image, video or document, sent by link.
    Media {
        /// `image`, `video` or `document`.
        kind: MediaKind,
    },
}

/// The media kinds a template header can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// `IMAGE`.
    Image,
    /// `VIDEO`.
    Video,
    /// `DOCUMENT`.
    Document,
}

impl MediaKind {
    /// The Graph API parameter type (`image`, `video`, `document`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Document => "document",
        }
    }
}

/// A button that takes a variable (a URL button with `{{1}}` in its URL).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VariableButton {
    /// Position among the template's buttons (Meta's `index`).
    pub index: usize,
    /// Button text.
    pub text: String,
    /// Variables it takes.
    pub variables: usize,
}

/// What a template needs to be sent: derived from its components.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Shape {
    /// Header, if any.
    pub header: Option<Header>,
    /// Body text.
    pub body: String,
    /// Body variables.
    pub body_variables: usize,
    /// Footer text.
    pub footer: Option<String>,
    /// Every button's text, in order.
    pub buttons: Vec<String>,
    /// Buttons that take variables.
    pub variable_buttons: Vec<VariableButton>,
}

/// The [`Shape`] of Meta's `components` array.
pub fn shape(components: &Value) -> Shape {
    let mut s = Shape::default();
    for c in components.as_array().into_iter().flatten() {
        match text(c, "type").map(str::to_ascii_uppercase).as_deref() {
            Some("HEADER") => {
                s.header = match text(c, "format").map(str::to_ascii_uppercase).as_deref() {
                    Some("IMAGE") => Some(Header::Media {
                        kind: MediaKind::Image,
                    }),
                    Some("VIDEO") => Some(Header::Media {
                        kind: MediaKind::Video,
                    }),
                    Some("DOCUMENT") => Some(Header::Media {
                        kind: MediaKind::Document,
                    }),
                    _ => text(c, "text").map(|t| Header::Text {
                        text: t.to_string(),
                        variables: variable_count(t),
                    }),
                };
            }
            Some("BODY") => {
                s.body = text(c, "text").unwrap_or_default().to_string();
                s.body_variables = variable_count(&s.body);
            }
            Some("FOOTER") => s.footer = text(c, "text").map(str::to_string),
            Some("BUTTONS") => {
                for (index, b) in c
                    .get("buttons")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let label = text(b, "text").unwrap_or_default().to_string();
                    let variables = text(b, "url").map_or(0, variable_count);
                    if variables > 0 {
                        s.variable_buttons.push(VariableButton {
                            index,
                            text: label.clone(),
                            variables,
                        });
                    }
                    s.buttons.push(label);
                }
            }
            _ => {}
        }
    }
    s
}

/// The agent's values for a template's variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Body `{{1}}`, `{{2}}` … in order.
    #[serde(default)]
    pub body: Vec<String>,
    /// Text header variables.
    #[serde(default)]
    pub header: Vec<String>,
    /// Link of the media a media header shows.
    #[serde(default)]
    pub header_media_url: Option<String>,
    /// Button variables by button index (`"0"`: the first button).
    #[serde(default)]
    pub buttons: BTreeMap<String, Vec<String>>,
}

fn count_error(what: &str, want: usize, got: usize) -> String {
    format!(
        "The template's {what} takes {want} value{}, {got} given.",
        if want == 1 { "" } else { "s" }
    )
}

/// Checks `params` against `shape`: as many non-empty values as variables, each
/// at most [`MAX_VALUE_CHARS`]; a media link (http/https) exactly when the header
/// is media.
///
/// # Errors
/// A sentence for the agent.
pub fn validate(shape: &Shape, params: &Params) -> Result<(), String> {
    let check = |what: &str, want: usize, got: &[String]| -> Result<(), String> {
        if want != got.len() {
            return Err(count_error(what, want, got.len()));
        }
        if let Some(i) = got.iter().position(|v| v.trim().is_empty()) {
            return Err(format!(
                "Value {} of the template's {what} is empty.",
                i + 1
            ));
        }
        if got.iter().any(|v| v.chars().count() > MAX_VALUE_CHARS) {
            return Err(format!(
                "A value of the template's {what} is over {MAX_VALUE_CHARS} characters."
            ));
        }
        Ok(())
    };
    check("body", shape.body_variables, &params.body)?;
    match &shape.header {
        Some(Header::Text { variables, .. }) => check("header", *variables, &params.header)?,
        _ => check("header", 0, &params.header)?,
    }
    let media = matches!(shape.header, Some(Header::Media { .. }));
    match (&params.header_media_url, media) {
        (Some(u), true) => {
            let ok = url::Url::parse(u.trim())
                .is_ok_and(|p| matches!(p.scheme(), "http" | "https"))
                && u.len() <= 2048;
            if !ok {
                return Err("The header media link must be a full http:// or https:// address of at most 2048 characters.".into());
            }
        }
        (None, true) => {
            return Err(
                "This template has a media header: give its link (header_media_url).".into(),
            )
        }
        (Some(_), false) => {
            return Err("This template has no media header; leave header_media_url out.".into())
        }
        (None, false) => {}
    }
    for b in &shape.variable_buttons {
        let got = params
            .buttons
            .get(&b.index.to_string())
            .map_or(&[][..], Vec::as_slice);
        check(&format!("button \"{}\"", b.text), b.variables, got)?;
    }
    if let Some(k) = params.buttons.keys().find(|k| {
        !shape
            .variable_buttons
            .iter()
            .any(|b| b.index.to_string() == **k)
    }) {
        return Err(format!("The template's button {k} takes no value."));
    }
    Ok(())
}

/// The text the customer reads, for the inbox and history: header (or a media
/// marker), body, footer and buttons, variables filled in.
pub fn render(shape: &Shape, params: &Params) -> String {
    let mut parts = Vec::new();
    match &shape.header {
        Some(Header::Text { text, .. }) => parts.push(fill(text, &params.header)),
        Some(Header::Media { kind }) => parts.push(format!("[{}]", kind.as_str())),
        None => {}
    }
    parts.push(fill(&shape.body, &params.body));
    if let Some(f) = &shape.footer {
        parts.push(f.clone());
    }
    if !shape.buttons.is_empty() {
        parts.push(
            shape
                .buttons
                .iter()
                .map(|b| format!("[{b}]"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    parts.join("\n")
}

/// An agent-facing explanation of a Meta error code met when sending templates
/// (Meta "Error codes" page); `None` for codes without one.
pub fn explain(code: i64) -> Option<&'static str> {
    Some(match code {
        132000 => "The number of template variables does not match the approved template: check the values given.",
        132001 => "The template does not exist at Meta in this language (deleted, renamed or not approved yet): sync templates and pick another.",
        131047 => "More than 24 hours have passed since the customer last wrote: only an approved template can be sent now.",
        131049 => "Meta did not deliver this marketing message to keep engagement healthy (per-user marketing limit); try later or another channel.",
        130429 => "Meta's sending rate limit was reached; the hub retried with backoff.",
        131056 => "Too many messages to this customer in a short time (pair rate limit); the hub retried with backoff.",
        _ => return None,
    })
}

/// The failure text shown on a failed message: the explanation for a known code,
/// with Meta's own words after it; Meta's words alone otherwise.
pub fn failure_title(code: i64, meta_says: &str) -> String {
    match explain(code) {
        Some(e) if meta_says.is_empty() => e.to_string(),
        Some(e) => format!("{e} (Meta: {meta_says})"),
        None => meta_says.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::test_fixture as fixture;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn pages_and_cursors() {
        let (one, next) = parse_page(&fixture("meta_templates_page1.json"));
        assert_eq!(one.len(), 2);
        assert_eq!(next.as_deref(), Some("QVFIU0FAKEAFTER1"));
        let (two, next) = parse_page(&fixture("meta_templates_page2.json"));
        assert_eq!(two[1].status, "REJECTED");
        assert_eq!(next, None, "no paging.next: last page");
    }

    #[test]
    fn shape_validate_render() {
        let (page, _) = parse_page(&fixture("meta_templates_page1.json"));
        let sh = shape(&page[0].components);
        assert_eq!(sh.body_variables, 4);
        assert_eq!(
            sh.header,
            Some(Header::Media {
                kind: MediaKind::Image
            })
        );
        assert_eq!(sh.variable_buttons[0].index, 0);
        let mut p = Params {
            body: s(&["Ana", "EBC Trek", "15 March", "$4,788"]),
            header_media_url: Some("https://example.com/ebc.jpg".into()),
            buttons: [("0".to_string(), s(&["EBC-2501234"]))].into(),
            ..Params::default()
        };
        assert_eq!(validate(&sh, &p), Ok(()));
        let text = render(&sh, &p);
        assert!(
            text.contains("Hi Ana, your EBC Trek trip departs on 15 March. Balance due: $4,788.")
        );
        assert!(text.starts_with("[image]"));
        p.body.pop();
        assert!(validate(&sh, &p).unwrap_err().contains("4 values, 3 given"));
    }

    #[test]
    fn status_events_and_errors() {
        let ev = parse_status_events(&fixture("meta_template_status_update.json"));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].name, "welcome_lead");
        assert_eq!(ev[0].meta_id.as_deref(), Some("1234567890123453"));
        assert_eq!(ev[0].reason, None);
        assert_eq!(variable_count("{{1}} {{12}} {{x}}"), 12);
        assert!(failure_title(132001, "x").contains("does not exist"));
        assert_eq!(failure_title(1, "boom"), "boom");
    }
}
