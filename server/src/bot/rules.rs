//! Bot rules (`bot_rules`): keyword or regex triggers with a priority, a reply
//! template and an action (reply, or hand over to a human), switchable per channel.
//! The highest-priority enabled rule that matches wins; ties go to the older rule.
//!
//! Keywords match like the leads issue's intents ([`crate::leads::intent`]): whole
//! words or phrases, case- and accent-insensitive. Regexes are the `regex` crate's
//! syntax, matched case-insensitively against the message as written.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use diesel::prelude::*;
use parking_lot::Mutex;
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::clock::{now_ms, rfc3339};
use crate::db::schema::bot_rules;
use crate::db::DbConn;
use crate::error::AppError;
use crate::leads::intent::{fold_message, keyword_regex};
use crate::model::new_id;

/// A stored rule.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = bot_rules)]
pub struct RuleRow {
    /// Rule id.
    pub id: String,
    /// Owning team.
    pub team_id: String,
    /// Display name.
    pub name: String,
    /// Higher wins.
    pub priority: i32,
    /// `keyword` or `regex`.
    pub match_kind: String,
    /// Keywords (one per line or comma-separated) or a regex.
    pub pattern: String,
    /// `reply` or `handover`.
    pub action: String,
    /// Reply template (see [`render`]).
    pub reply: Option<String>,
    /// Comma list of channels the rule is off on.
    pub disabled_channels: String,
    /// Switched on.
    pub enabled: bool,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

/// A rule as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct RuleView {
    /// Rule id.
    pub id: String,
    /// Owning team.
    pub team_id: String,
    /// Display name.
    pub name: String,
    /// Higher wins.
    pub priority: i32,
    /// `keyword` or `regex`.
    pub match_kind: String,
    /// Keywords or regex.
    pub pattern: String,
    /// `reply` or `handover`.
    pub action: String,
    /// Reply template.
    pub reply: Option<String>,
    /// Channels the rule is off on.
    pub disabled_channels: Vec<String>,
    /// Switched on.
    pub enabled: bool,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<RuleRow> for RuleView {
    fn from(r: RuleRow) -> Self {
        Self {
            disabled_channels: split_channels(&r.disabled_channels),
            updated_at: rfc3339(r.updated_at),
            id: r.id,
            team_id: r.team_id,
            name: r.name,
            priority: r.priority,
            match_kind: r.match_kind,
            pattern: r.pattern,
            action: r.action,
            reply: r.reply,
            enabled: r.enabled,
        }
    }
}

fn split_channels(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

/// A rule as created or replaced through the API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleForm {
    /// Display name, 1–200 bytes.
    pub name: String,
    /// Higher wins (default 0).
    #[serde(default)]
    pub priority: i32,
    /// `keyword` (default) or `regex`.
    #[serde(default = "keyword")]
    pub match_kind: String,
    /// Keywords (one per line or comma-separated) or a regex, 1–2000 bytes.
    pub pattern: String,
    /// `reply` (default) or `handover`.
    #[serde(default = "reply")]
    pub action: String,
    /// Reply template; required for `reply`, optional for `handover` (then the
    /// team's handover message is sent).
    #[serde(default)]
    pub reply: Option<String>,
    /// Channels the rule is off on.
    #[serde(default)]
    pub disabled_channels: Vec<String>,
    /// Switched on (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn keyword() -> String {
    "keyword".into()
}
fn reply() -> String {
    "reply".into()
}
fn yes() -> bool {
    true
}

impl RuleForm {
    /// Checks the form and that the pattern compiles.
    ///
    /// # Errors
    /// [`AppError::Validation`] naming the bad field.
    pub fn validate(&self) -> Result<(), AppError> {
        let bad = |m: &str| Err(AppError::Validation(m.into()));
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return bad("The rule name must be between 1 and 200 characters.");
        }
        if self.pattern.trim().is_empty() || self.pattern.chars().count() > 2000 {
            return bad("The keywords or pattern must be between 1 and 2000 characters.");
        }
        if !["keyword", "regex"].contains(&self.match_kind.as_str()) {
            return bad("A rule matches by keyword or by regex (match_kind).");
        }
        if !["reply", "handover"].contains(&self.action.as_str()) {
            return bad("A rule can reply or hand over (action: reply or handover).");
        }
        if self.action == "reply" && self.reply.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return bad("A reply rule needs the text of its reply.");
        }
        if self
            .reply
            .as_deref()
            .is_some_and(|r| r.chars().count() > 4000)
        {
            return bad("The reply can be at most 4000 characters.");
        }
        for c in &self.disabled_channels {
            if !["widget", "whatsapp", "quick_chat"].contains(&c.as_str()) {
                return bad("The channels are widget, whatsapp and quick_chat.");
            }
        }
        if compile(&self.match_kind, &self.pattern).is_none() {
            return Err(AppError::Validation(format!(
                "The pattern is not a valid {}; please check it.",
                self.match_kind
            )));
        }
        Ok(())
    }
}

fn keywords_of(pattern: &str) -> Vec<String> {
    pattern
        .split(['\n', ','])
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect()
}

/// A rule's matcher: keyword rules match the folded text (`true`), regex rules the
/// raw text (`false`).
fn compile(kind: &str, pattern: &str) -> Option<(bool, Regex)> {
    match kind {
        "regex" => RegexBuilder::new(pattern)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .ok()
            .map(|re| (false, re)),
        _ => keyword_regex(&keywords_of(pattern)).map(|re| (true, re)),
    }
}

type Compiled = Option<Arc<(bool, Regex)>>;

/// Compiled matchers by (kind, pattern): every customer turn of a bot team runs the
/// team's rules, which change rarely. Bounded: cleared when it holds
/// [`CACHE_MAX`] patterns (a changed rule simply has a new key).
static CACHE: LazyLock<Mutex<HashMap<(String, String), Compiled>>> =
    LazyLock::new(Default::default);
const CACHE_MAX: usize = 1024;

fn compiled(kind: &str, pattern: &str) -> Compiled {
    let key = (kind.to_string(), pattern.to_string());
    if let Some(c) = CACHE.lock().get(&key) {
        return c.clone();
    }
    let c = compile(kind, pattern).map(Arc::new);
    let mut cache = CACHE.lock();
    if cache.len() >= CACHE_MAX {
        cache.clear();
    }
    cache.insert(key, c.clone());
    c
}

/// The team's rules, highest priority first (ties: oldest first).
///
/// # Errors
/// Database errors.
pub fn list(conn: &mut DbConn, team_id: &str) -> Result<Vec<RuleRow>, AppError> {
    Ok(bot_rules::table
        .filter(bot_rules::team_id.eq(team_id))
        .order((
            bot_rules::priority.desc(),
            bot_rules::created_at.asc(),
            bot_rules::id.asc(),
        ))
        .select(RuleRow::as_select())
        .load(conn)?)
}

/// One rule.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn get(conn: &mut DbConn, id: &str) -> Result<RuleRow, AppError> {
    bot_rules::table
        .find(id)
        .select(RuleRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::NotFound("no such rule".into()))
}

/// Creates a rule.
///
/// # Errors
/// [`AppError::Validation`]; database errors.
pub fn create(conn: &mut DbConn, team_id: &str, f: &RuleForm) -> Result<RuleRow, AppError> {
    f.validate()?;
    let now = now_ms();
    let id = new_id();
    diesel::insert_into(bot_rules::table)
        .values((
            bot_rules::id.eq(&id),
            bot_rules::team_id.eq(team_id),
            bot_rules::name.eq(f.name.trim()),
            bot_rules::priority.eq(f.priority),
            bot_rules::match_kind.eq(&f.match_kind),
            bot_rules::pattern.eq(&f.pattern),
            bot_rules::action.eq(&f.action),
            bot_rules::reply.eq(&f.reply),
            bot_rules::disabled_channels.eq(f.disabled_channels.join(",")),
            bot_rules::enabled.eq(f.enabled),
            bot_rules::created_at.eq(now),
            bot_rules::updated_at.eq(now),
        ))
        .execute(conn)?;
    get(conn, &id)
}

/// Replaces a rule's fields.
///
/// # Errors
/// [`AppError::Validation`], [`AppError::NotFound`]; database errors.
pub fn update(conn: &mut DbConn, id: &str, f: &RuleForm) -> Result<RuleRow, AppError> {
    f.validate()?;
    let n = diesel::update(bot_rules::table.find(id))
        .set((
            bot_rules::name.eq(f.name.trim()),
            bot_rules::priority.eq(f.priority),
            bot_rules::match_kind.eq(&f.match_kind),
            bot_rules::pattern.eq(&f.pattern),
            bot_rules::action.eq(&f.action),
            bot_rules::reply.eq(&f.reply),
            bot_rules::disabled_channels.eq(f.disabled_channels.join(",")),
            bot_rules::enabled.eq(f.enabled),
            bot_rules::updated_at.eq(now_ms()),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(AppError::NotFound("no such rule".into()));
    }
    get(conn, id)
}

/// Deletes a rule.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn delete(conn: &mut DbConn, id: &str) -> Result<(), AppError> {
    let n = diesel::delete(bot_rules::table.find(id)).execute(conn)?;
    if n == 0 {
        return Err(AppError::NotFound("no such rule".into()));
    }
    Ok(())
}

/// The winning rule for `text` on `channel` among `rules` (already in priority
/// order): the first enabled rule, not switched off on the channel, that matches.
pub fn find_match<'a>(rules: &'a [RuleRow], channel: &str, text: &str) -> Option<&'a RuleRow> {
    // Keyword rules read the words of the text, not those inside links.
    let folded = fold_message(text);
    rules
        .iter()
        .filter(|r| {
            r.enabled
                && !split_channels(&r.disabled_channels)
                    .iter()
                    .any(|c| c == channel)
        })
        .find(|r| match compiled(&r.match_kind, &r.pattern).as_deref() {
            Some((true, re)) => re.is_match(&folded),
            Some((false, re)) => re.is_match(text),
            None => false,
        })
}

/// Fills a reply template: `{contact_name}`, `{first_name}`, `{team_name}`,
/// `{package_name}`, `{package_price}`, `{package_departure}`,
/// `{package_duration}` and `{package_code}`, each from `vars`; a variable without a
/// value becomes the fallback given after a `|` (`{first_name|there}`), or nothing.
/// Unknown `{…}` are left as written.
pub fn render(template: &str, vars: &[(&str, Option<String>)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let inner = &after[..close];
        let (name, fallback) = inner.split_once('|').unwrap_or((inner, ""));
        match vars.iter().find(|(k, _)| *k == name.trim()) {
            Some((_, value)) => match value.as_deref().filter(|v| !v.is_empty()) {
                Some(v) => out.push_str(v),
                None => out.push_str(fallback),
            },
            None => {
                out.push('{');
                out.push_str(inner);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    // Collapse the double spaces an empty variable leaves behind.
    out.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" ,", ",")
        .replace(" !", "!")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, priority: i32, kind: &str, pattern: &str, channels_off: &str) -> RuleRow {
        RuleRow {
            id: id.into(),
            team_id: "t".into(),
            name: id.into(),
            priority,
            match_kind: kind.into(),
            pattern: pattern.into(),
            action: "reply".into(),
            reply: Some("r".into()),
            disabled_channels: channels_off.into(),
            enabled: true,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn highest_priority_match_wins_and_channels_switch_rules_off() {
        // Already in priority order, as `list` returns them.
        let rules = vec![
            row("refund", 10, "keyword", "refund, money back", "whatsapp"),
            row("price", 5, "keyword", "price\nharga", ""),
            row("order", 1, "regex", r"order\s*#?\d{4,}", ""),
        ];
        assert_eq!(
            find_match(&rules, "widget", "I want a REFUND on the price").map(|r| r.id.as_str()),
            Some("refund")
        );
        assert_eq!(
            find_match(&rules, "whatsapp", "I want a refund on the price").map(|r| r.id.as_str()),
            Some("price")
        );
        assert_eq!(
            find_match(&rules, "widget", "Berapa hárga?").map(|r| r.id.as_str()),
            Some("price")
        );
        assert_eq!(
            find_match(&rules, "widget", "priceless").map(|r| r.id.as_str()),
            None
        );
        assert_eq!(
            find_match(&rules, "widget", "where is Order #12345").map(|r| r.id.as_str()),
            Some("order")
        );
    }

    #[test]
    fn templates_fill_variables_with_fallbacks() {
        let vars = [
            ("first_name", Some("Siti".to_string())),
            ("package_name", None),
            ("team_name", Some("Umroh Co".to_string())),
        ];
        assert_eq!(
            render("Hi {first_name|there}, welcome to {team_name}!", &vars),
            "Hi Siti, welcome to Umroh Co!"
        );
        assert_eq!(
            render("About {package_name|our packages}: {unknown}", &vars),
            "About our packages: {unknown}"
        );
        assert_eq!(render("Hi {package_name}, ok", &vars), "Hi, ok");
    }

    #[test]
    fn bad_patterns_are_refused() {
        let f = RuleForm {
            name: "x".into(),
            priority: 0,
            match_kind: "regex".into(),
            pattern: "(unclosed".into(),
            action: "reply".into(),
            reply: Some("hi".into()),
            disabled_channels: vec![],
            enabled: true,
        };
        assert!(f.validate().is_err());
    }
}
