//! The audit log (`docs/audit.md`): who did what to which account or setting, when,
//! from which address, with the state before and after (secrets redacted).
//!
//! Entries are written by [`record`] in the same transaction as the change they
//! describe, so a change that fails (validation, conflict, outage) leaves no entry and
//! a committed change always has one. The log is append-only: this module has no
//! update or delete, and the table's triggers refuse both (the migration
//! `2026-12-05-000003_audit_log`). [`list`] reads it newest first with filters.

use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::clock::rfc3339;
use crate::db::schema::audit_log;
use crate::db::DbConn;
use crate::error::AppError;
use crate::model::new_id;

/// What replaces a secret's value in `before`/`after`.
pub const REDACTED: &str = "[redacted]";

/// Most entries one [`list`] call returns.
pub const MAX_LIMIT: i64 = 200;

/// Entries a [`list`] call returns when the filter names no limit.
pub const DEFAULT_LIMIT: i64 = 50;

/// Longest `actor_label` stored (a failed login's attempted email is the caller's
/// text; an email address is at most 254 characters).
const MAX_LABEL_CHARS: usize = 254;

macro_rules! audit_actions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// Every kind of audited action; stored and shown as its dotted name
        /// (`agent.updated`). The part before the dot is the area, which the list's
        /// action filter accepts as a prefix (`agent.`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($(#[$doc])* $variant,)*
        }

        impl AuditAction {
            /// Every action, in the order of this enum (the UI's filter list).
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)*];

            /// The stored and wire name, e.g. `auth.login_failed`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// Parses a stored or submitted name.
            ///
            /// # Errors
            /// [`AppError::Validation`] for a name that is not an action.
            pub fn parse(s: &str) -> Result<Self, AppError> {
                match s {
                    $($name => Ok(Self::$variant),)*
                    other => Err(AppError::Validation(format!(
                        "There is no audited action {other:?}."
                    ))),
                }
            }
        }
    };
}

audit_actions! {
    /// A successful login (`POST /api/auth/login`).
    Login => "auth.login",
    /// A login refused for a wrong email or password (anonymous: no actor id).
    LoginFailed => "auth.login_failed",
    /// An agent changed their own password (`POST /api/auth/password`).
    PasswordChanged => "auth.password_changed",
    /// An admin created an agent.
    AgentCreated => "agent.created",
    /// An admin changed an agent's name, email, role or activation.
    AgentUpdated => "agent.updated",
    /// An admin set a new password for an agent.
    AgentPasswordReset => "agent.password_reset",
    /// An agent's tokens issued before were revoked (with a deactivation, a role
    /// change, a team removal or a password change).
    AgentTokensRevoked => "agent.tokens_revoked",
    /// An admin changed an agent's capacity.
    AgentCapacityChanged => "agent.capacity_changed",
    /// An admin set or cleared an agent's working hours.
    AgentHoursChanged => "agent.hours_changed",
    /// An admin created a team.
    TeamCreated => "team.created",
    /// An admin added an agent to a team.
    TeamMemberAdded => "team.member_added",
    /// An admin removed an agent from a team.
    TeamMemberRemoved => "team.member_removed",
    /// A team's routing settings changed.
    RoutingSettingsChanged => "routing.settings_changed",
    /// A team's widget settings changed.
    WidgetSettingsChanged => "widget.settings_changed",
    /// A team's bot settings changed.
    BotSettingsChanged => "bot.settings_changed",
    /// A bot rule was created.
    BotRuleCreated => "bot.rule_created",
    /// A bot rule was changed.
    BotRuleUpdated => "bot.rule_updated",
    /// A bot rule was deleted.
    BotRuleDeleted => "bot.rule_deleted",
    /// A new version of a prompt part was stored.
    PromptChanged => "ai.prompt_changed",
    /// A team's lead pipeline (stages, intent rules, welcome text) changed.
    PipelineChanged => "pipeline.changed",
    /// A campaign code was created.
    CampaignCodeCreated => "campaign_code.created",
    /// A campaign code was changed.
    CampaignCodeUpdated => "campaign_code.updated",
    /// A campaign code was deactivated (`DELETE /api/campaign-codes/{code}`).
    CampaignCodeDeactivated => "campaign_code.deactivated",
    /// A quick-chat link was created.
    QuickLinkCreated => "quick_link.created",
    /// A quick-chat link was deactivated.
    QuickLinkDeactivated => "quick_link.deactivated",
    /// A knowledge document was created.
    KnowledgeCreated => "knowledge.created",
    /// A knowledge document was changed.
    KnowledgeUpdated => "knowledge.updated",
    /// A knowledge document was deleted.
    KnowledgeDeleted => "knowledge.deleted",
    /// Markdown was imported into the knowledge base (one entry per import).
    KnowledgeImported => "knowledge.imported",
    /// An admin added a WhatsApp number (inbox).
    WhatsAppNumberCreated => "whatsapp_number.created",
    /// An admin changed a WhatsApp number (settings, team, secrets set or cleared).
    WhatsAppNumberUpdated => "whatsapp_number.updated",
    /// An admin deactivated a WhatsApp number.
    WhatsAppNumberDeactivated => "whatsapp_number.deactivated",
    /// A contact tag was created.
    TagCreated => "tag.created",
    /// A contact tag was renamed.
    TagRenamed => "tag.renamed",
    /// A contact tag was deleted (and taken off every contact).
    TagDeleted => "tag.deleted",
    /// A tag was put on many contacts at once.
    TagBulkAdded => "tag.bulk_added",
    /// A tag was taken off many contacts at once.
    TagBulkRemoved => "tag.bulk_removed",
    /// A segment was saved.
    SegmentCreated => "segment.created",
    /// A segment's name or filter changed.
    SegmentUpdated => "segment.updated",
    /// A segment was deleted.
    SegmentDeleted => "segment.deleted",
    /// An agent changed a contact's marketing consent (opt-in / opt-out).
    ContactConsentChanged => "contact.consent_changed",
    /// A team's opt-out / opt-in keywords or confirmations changed.
    ConsentSettingsChanged => "consent.settings_changed",
    /// A broadcast was created (as a draft).
    BroadcastCreated => "broadcast.created",
    /// A draft or scheduled broadcast was edited.
    BroadcastUpdated => "broadcast.updated",
    /// A broadcast was given a send time.
    BroadcastScheduled => "broadcast.scheduled",
    /// A scheduled broadcast went back to draft.
    BroadcastUnscheduled => "broadcast.unscheduled",
    /// A broadcast was started by hand ("send now").
    BroadcastStarted => "broadcast.started",
    /// A sending broadcast was paused.
    BroadcastPaused => "broadcast.paused",
    /// A paused broadcast was resumed.
    BroadcastResumed => "broadcast.resumed",
    /// A broadcast was cancelled.
    BroadcastCancelled => "broadcast.cancelled",
    /// An admin changed a WhatsApp number's sending pace.
    NumberPaceChanged => "whatsapp_number.pace_changed",
    /// An automation was created.
    AutomationCreated => "automation.created",
    /// An automation's name, trigger or steps changed.
    AutomationUpdated => "automation.updated",
    /// An automation was turned on.
    AutomationEnabled => "automation.enabled",
    /// An automation was turned off (its active runs stopped).
    AutomationDisabled => "automation.disabled",
    /// An automation was deleted.
    AutomationDeleted => "automation.deleted",
}

/// Who acted: the agent (`id`, `label` its email), an anonymous caller (`id` `None`,
/// `label` what it claimed, e.g. the email of a failed login), or `system`; and the
/// address the request came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditActor {
    /// Agent id; `None` for anonymous callers and the system.
    pub id: Option<String>,
    /// The agent's email, a failed login's attempted email, or `system`.
    pub label: String,
    /// The client's address (`http::client_ip`); `None` when unknown.
    pub ip: Option<String>,
}

/// One entry to write: named fields, built with [`AuditEntry::new`] and the
/// `target`/`team`/`before`/`after` setters.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// Who acted, from where.
    pub actor: AuditActor,
    /// What was done.
    pub action: AuditAction,
    /// What kind of thing was acted on: `agent`, `team`, `bot_rule`, `prompt`,
    /// `campaign_code`, `quick_link`, `knowledge_doc`.
    pub target_kind: Option<String>,
    /// Its id (a campaign code's code).
    pub target_id: Option<String>,
    /// The team the change belongs to, when it belongs to one.
    pub team_id: Option<String>,
    /// The state before (JSON; secrets are redacted by [`record`]).
    pub before: Option<Value>,
    /// The state after (JSON; secrets are redacted by [`record`]).
    pub after: Option<Value>,
}

impl AuditEntry {
    /// An entry for `action` by `actor`, about nothing in particular yet.
    pub fn new(actor: &AuditActor, action: AuditAction) -> Self {
        Self {
            actor: actor.clone(),
            action,
            target_kind: None,
            target_id: None,
            team_id: None,
            before: None,
            after: None,
        }
    }

    /// Sets what was acted on.
    pub fn target(mut self, kind: &str, id: &str) -> Self {
        self.target_kind = Some(kind.to_string());
        self.target_id = Some(id.to_string());
        self
    }

    /// Sets the team the change belongs to.
    pub fn team(mut self, team_id: &str) -> Self {
        self.team_id = Some(team_id.to_string());
        self
    }

    /// Sets the state before, from anything serialisable (a value that does not
    /// serialise is stored as `null`).
    pub fn before(mut self, state: impl Serialize) -> Self {
        self.before = Some(serde_json::to_value(state).unwrap_or(Value::Null));
        self
    }

    /// Sets the state after (as [`AuditEntry::before`]).
    pub fn after(mut self, state: impl Serialize) -> Self {
        self.after = Some(serde_json::to_value(state).unwrap_or(Value::Null));
        self
    }
}

/// Whether a JSON key names a secret: `password`, `password_hash`, `secret`, `token`,
/// `api_key`, or any key ending in `_password`, `_secret`, `_token` or `_key` after
/// one of those words (`app_secret`, `verify_token`, `new_password`); any case.
/// `max_tokens` or `token_epoch` are not secrets.
pub fn is_secret_key(key: &str) -> bool {
    const WORDS: [&str; 6] = [
        "password",
        "password_hash",
        "secret",
        "token",
        "api_key",
        "apikey",
    ];
    let key = key.to_ascii_lowercase();
    WORDS
        .iter()
        .any(|w| key == *w || key.ends_with(&format!("_{w}")))
}

/// `value` with the value of every secret key ([`is_secret_key`]) replaced by
/// [`REDACTED`], in nested objects and arrays too. `null` stays `null` (it tells that
/// no secret is set, and nothing else). Pure.
pub fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(&k) && !v.is_null() {
                        Value::String(REDACTED.into())
                    } else {
                        redact(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

/// A row of `audit_log`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
struct AuditRow {
    id: String,
    at: i64,
    actor_id: Option<String>,
    actor_label: String,
    ip: Option<String>,
    action: String,
    target_kind: Option<String>,
    target_id: Option<String>,
    team_id: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

fn encode(state: &Option<Value>) -> Result<Option<String>, AppError> {
    state
        .clone()
        .map(|v| serde_json::to_string(&redact(v)))
        .transpose()
        .map_err(|e| AppError::internal(format!("encode audit state: {e}")))
}

/// Writes `entry` at `now_ms` (epoch ms) with its secrets redacted, and returns its
/// id. Call it inside the transaction of the change it describes.
///
/// # Errors
/// Database errors (the caller's transaction then rolls back, change included).
pub fn record(conn: &mut DbConn, entry: &AuditEntry, now_ms: i64) -> Result<String, AppError> {
    let row = AuditRow {
        id: new_id(),
        at: now_ms,
        actor_id: entry.actor.id.clone(),
        actor_label: entry.actor.label.chars().take(MAX_LABEL_CHARS).collect(),
        ip: entry.actor.ip.clone(),
        action: entry.action.as_str().to_string(),
        target_kind: entry.target_kind.clone(),
        target_id: entry.target_id.clone(),
        team_id: entry.team_id.clone(),
        before: encode(&entry.before)?,
        after: encode(&entry.after)?,
    };
    diesel::insert_into(audit_log::table)
        .values(&row)
        .execute(conn)?;
    Ok(row.id)
}

/// What [`list`] returns; all fields optional (no filter: the newest entries).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this agent's actions.
    pub actor_id: Option<String>,
    /// One action (`agent.updated`), or an area with its dot (`agent.`).
    pub action: Option<String>,
    /// Only entries about this target id.
    pub target_id: Option<String>,
    /// Only entries of this team.
    pub team_id: Option<String>,
    /// At or after this time, epoch ms.
    pub since: Option<i64>,
    /// Before this time, epoch ms (exclusive).
    pub until: Option<i64>,
    /// Paging cursor: only entries older than the entry with this id.
    pub before: Option<String>,
    /// 1 to [`MAX_LIMIT`]; default [`DEFAULT_LIMIT`].
    pub limit: Option<i64>,
}

/// How the action filter matches.
#[derive(Debug, PartialEq, Eq)]
enum ActionMatch {
    Exact(&'static str),
    Prefix(String),
}

/// Checks an action filter: a known action, or a prefix ending in `.` that starts at
/// least one action.
fn action_match(filter: &str) -> Result<ActionMatch, AppError> {
    if filter.ends_with('.') {
        if AuditAction::ALL
            .iter()
            .any(|a| a.as_str().starts_with(filter))
        {
            return Ok(ActionMatch::Prefix(filter.to_string()));
        }
        return Err(AppError::Validation(format!(
            "No audited action starts with {filter:?}."
        )));
    }
    AuditAction::parse(filter).map(|a| ActionMatch::Exact(a.as_str()))
}

/// An entry as the API shows it (`GET /api/audit`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditView {
    /// Entry id.
    pub id: String,
    /// When, RFC 3339 UTC with milliseconds.
    pub at: String,
    /// The acting agent's id; `null` for anonymous callers.
    pub actor_id: Option<String>,
    /// The acting agent's email (or a failed login's attempted email, or `system`).
    pub actor_label: String,
    /// The caller's address, when known.
    pub ip: Option<String>,
    /// What was done, e.g. `agent.updated`.
    pub action: String,
    /// What kind of thing was acted on.
    pub target_kind: Option<String>,
    /// Its id.
    pub target_id: Option<String>,
    /// Its team.
    pub team_id: Option<String>,
    /// The state before, as stored (secrets redacted); `null` when none.
    pub before: Option<Value>,
    /// The state after; `null` when none.
    pub after: Option<Value>,
}

impl From<AuditRow> for AuditView {
    fn from(r: AuditRow) -> Self {
        // Stored by `record`, so JSON; anything else is shown as the text it is.
        let decode =
            |s: Option<String>| s.map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s)));
        Self {
            id: r.id,
            at: rfc3339(r.at),
            actor_id: r.actor_id,
            actor_label: r.actor_label,
            ip: r.ip,
            action: r.action,
            target_kind: r.target_kind,
            target_id: r.target_id,
            team_id: r.team_id,
            before: decode(r.before),
            after: decode(r.after),
        }
    }
}

/// One page of entries, newest first, and the cursor for the next (older) page.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditView>,
    /// Pass as `before` for the next page; `null` when there are no older entries.
    pub next_before: Option<String>,
}

/// Entries matching `filter`, newest first (by time, then id).
///
/// # Errors
/// [`AppError::Validation`] for an unknown action, a limit outside 1 to
/// [`MAX_LIMIT`] or an unknown `before` cursor; database errors.
pub fn list(conn: &mut DbConn, filter: &AuditFilter) -> Result<AuditPage, AppError> {
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::Validation(format!(
            "The limit must be between 1 and {MAX_LIMIT}."
        )));
    }
    let mut q = audit_log::table
        .select(AuditRow::as_select())
        .order((audit_log::at.desc(), audit_log::id.desc()))
        .limit(limit + 1)
        .into_boxed();
    if let Some(a) = &filter.actor_id {
        q = q.filter(audit_log::actor_id.eq(a.clone()));
    }
    match filter.action.as_deref().map(action_match).transpose()? {
        Some(ActionMatch::Exact(a)) => q = q.filter(audit_log::action.eq(a)),
        // The prefix is an action's area (letters, `_` and a dot): no LIKE wildcards.
        Some(ActionMatch::Prefix(p)) => q = q.filter(audit_log::action.like(format!("{p}%"))),
        None => {}
    }
    if let Some(t) = &filter.target_id {
        q = q.filter(audit_log::target_id.eq(t.clone()));
    }
    if let Some(t) = &filter.team_id {
        q = q.filter(audit_log::team_id.eq(t.clone()));
    }
    if let Some(s) = filter.since {
        q = q.filter(audit_log::at.ge(s));
    }
    if let Some(u) = filter.until {
        q = q.filter(audit_log::at.lt(u));
    }
    if let Some(cursor) = &filter.before {
        let at: i64 = audit_log::table
            .find(cursor)
            .select(audit_log::at)
            .first(conn)
            .optional()?
            .ok_or_else(|| AppError::Validation("There is no audit entry to page from.".into()))?;
        q = q.filter(
            audit_log::at
                .lt(at)
                .or(audit_log::at.eq(at).and(audit_log::id.lt(cursor.clone()))),
        );
    }
    let mut rows: Vec<AuditRow> = q.load(conn)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_before = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
    Ok(AuditPage {
        entries: rows.into_iter().map(AuditView::from).collect(),
        next_before,
    })
}

#[cfg(test)]
mod tests;
