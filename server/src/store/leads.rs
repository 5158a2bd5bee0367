//! Leads: one per person (a lead owns one or more contacts), their stage, priority,
//! tasks and timeline, and the bookkeeping run after every committed message
//! ([`process_message`]). Synchronous, like every store module: callers run these
//! through the blocking pool.
//!
//! Races: "one lead per contact" is the primary key of `lead_contacts`; read-then-
//! write steps run in [`write_transaction`] (SQLite's write lock up front).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use diesel::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};

use crate::channels::phone;
use crate::clock::{now_ms, rfc3339};
use crate::db::schema::{
    agents, campaign_codes, contacts, conversations, lead_contacts, lead_events, lead_settings,
    leads, messages, quick_links, tasks,
};
use crate::db::{is_unique_violation, write_transaction, DbConn};
use crate::error::AppError;
use crate::leads::campaign;
use crate::leads::config::{priority_rank, LeadConfig};
use crate::leads::intent::Matcher;
use crate::model::{new_id, opt_time, ContactView};
use crate::store::conversations::ContactRow;
use crate::store::lower_opt;
use crate::store::team_cache::TeamCache;

/// A row of `leads`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = leads)]
pub struct LeadRow {
    /// Lead id.
    pub id: String,
    /// Team.
    pub team_id: String,
    /// Primary contact (the first one).
    pub contact_id: String,
    /// `whatsapp`, `widget`, `quick_chat`, `campaign` or `api`.
    pub source: String,
    /// Finer attribution: the quick-link source (`linkedin`), campaign code, ad id.
    pub source_detail: Option<String>,
    /// Owning agent.
    pub owner_id: Option<String>,
    /// Stage key.
    pub stage: String,
    /// Furthest open-stage position reached (won: one past the last open stage).
    pub furthest_position: i32,
    /// `low`, `normal`, `high`.
    pub priority: String,
    /// Score (sum of matched rules' points and manual changes).
    pub score: i32,
    /// Campaign code the lead came with.
    pub campaign_code: Option<String>,
    /// Package name (from the campaign code) or as set by hand.
    pub interested_package: Option<String>,
    /// Free notes.
    pub notes: Option<String>,
    /// 1 while a handover to a human is pending.
    pub handover_pending: i32,
    /// Why (intent, keywords).
    pub handover_reason: Option<String>,
    /// 1 when escalated (handover pending while nobody was assigned).
    pub escalated: i32,
    /// Quick link it came through.
    pub quick_link_id: Option<String>,
    /// 1 once the contact was invited to leave an email or phone.
    pub engagement_invited: i32,
    /// First agent reply, epoch ms.
    pub first_response_at: Option<i64>,
    /// Won or lost, epoch ms.
    pub closed_at: Option<i64>,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

/// A lead as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct LeadView {
    /// Lead id.
    pub id: String,
    /// Team.
    pub team_id: String,
    /// Every contact of the person (the first is the primary one).
    pub contacts: Vec<ContactView>,
    /// Their conversations, oldest first.
    pub conversation_ids: Vec<String>,
    /// Attribution.
    pub source: String,
    /// Finer attribution.
    pub source_detail: Option<String>,
    /// Owner.
    pub owner_id: Option<String>,
    /// Stage key.
    pub stage: String,
    /// Priority.
    pub priority: String,
    /// Score.
    pub score: i32,
    /// Campaign code.
    pub campaign_code: Option<String>,
    /// Interested package.
    pub interested_package: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Waiting for a human.
    pub handover_pending: bool,
    /// Why.
    pub handover_reason: Option<String>,
    /// Escalated.
    pub escalated: bool,
    /// Open tasks.
    pub open_tasks: i64,
    /// RFC 3339.
    pub first_response_at: Option<String>,
    /// RFC 3339.
    pub closed_at: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A row of `tasks`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = tasks)]
pub struct TaskRow {
    /// Task id.
    pub id: String,
    /// Lead.
    pub lead_id: String,
    /// Team.
    pub team_id: String,
    /// `initial_contact`, `pricing`, `booking`, `payment`, `follow_up`, `manual`.
    pub kind: String,
    /// What to do.
    pub title: String,
    /// Who.
    pub assignee_id: Option<String>,
    /// Due, epoch ms.
    pub due_at: i64,
    /// `open`, `done`, `cancelled`.
    pub status: String,
    /// 1 once the overdue push went out.
    #[serde(skip)]
    pub overdue_notified: i32,
    /// Creator (agent id; absent for rules).
    pub created_by: Option<String>,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub completed_at: Option<i64>,
}

/// One timeline entry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimelineEntry {
    /// Entry id (event, message or routing-event id).
    pub id: String,
    /// Lead.
    pub lead_id: String,
    /// Conversation, when the entry belongs to one.
    pub conversation_id: Option<String>,
    /// `message_in`, `message_out`, `stage_changed`, `routing_<kind>`, `task_created`, …
    pub kind: String,
    /// `system`, `agent`, `guest` or `bot`.
    pub actor_kind: String,
    /// Agent or contact id.
    pub actor_id: Option<String>,
    /// Kind-specific facts.
    pub detail: Value,
    /// RFC 3339.
    pub at: String,
    /// Epoch ms (for sorting).
    pub at_ms: i64,
    /// Whether recording this event started automation runs (whose first step is
    /// due at once): only then is the scheduler woken. Not part of the JSON.
    #[serde(skip)]
    pub started_runs: bool,
}

/// Who did something.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// `system`, `agent`, `guest`, `bot`.
    pub kind: &'a str,
    /// Id.
    pub id: Option<&'a str>,
}

impl Actor<'static> {
    /// The hub itself (rules, automatic moves).
    pub const SYSTEM: Actor<'static> = Actor {
        kind: "system",
        id: None,
    };
}

// ------------------------------------------------------------------ settings

/// The team's lead configuration (defaults when none is stored), from this node's
/// cache when read within [`TeamCache`]'s TTL: what every message's bookkeeping
/// reads.
///
/// # Errors
/// Database errors; [`AppError::Internal`] for stored JSON that does not parse.
pub fn config_cached(c: &mut DbConn, team_id: &str) -> Result<Arc<LeadConfig>, AppError> {
    LEAD_CONFIGS.get(team_id, || config(c, team_id))
}

/// A team's lead configuration if [`config_cached`] holds it fresh; `None` means ask
/// [`config_cached`] (on a blocking thread).
pub fn config_peek(team_id: &str) -> Option<Arc<LeadConfig>> {
    LEAD_CONFIGS.peek(team_id)
}

/// Whether a customer's message changes nothing for a contact who already has a
/// lead: no campaign code in it, no intent rule matches it, and the conversation is
/// not a quick chat (whose progressive engagement counts messages). For such a
/// message [`process_message`] writes nothing and publishes nothing.
pub fn changes_nothing(cfg: &LeadConfig, body: &str, channel: &str) -> bool {
    channel != "quick_chat"
        && campaign::candidates(body).is_empty()
        && Matcher::cached(&cfg.rules).matches(body).is_empty()
}

/// A team's lead configuration changed (after the commit): the next
/// [`config_cached`] on this node reads it again.
pub fn config_changed(team_id: &str) {
    LEAD_CONFIGS.invalidate(team_id);
}

static LEAD_CONFIGS: LazyLock<TeamCache<LeadConfig>> = LazyLock::new(TeamCache::default);

/// A team's lead configuration as stored (the defaults when it has none).
///
/// # Errors
/// Database errors; a stored configuration that does not parse (internal).
pub fn config(c: &mut DbConn, team_id: &str) -> Result<LeadConfig, AppError> {
    let row: Option<(String, String, Option<String>)> = lead_settings::table
        .find(team_id)
        .select((
            lead_settings::stages,
            lead_settings::rules,
            lead_settings::welcome,
        ))
        .first(c)
        .optional()?;
    let Some((stages, rules, welcome)) = row else {
        return Ok(LeadConfig::default());
    };
    let mut cfg = LeadConfig {
        stages: serde_json::from_str(&stages).map_err(AppError::internal)?,
        rules: serde_json::from_str(&rules).map_err(AppError::internal)?,
        ..LeadConfig::default()
    };
    if let Some(w) = welcome {
        cfg.welcome = w;
    }
    Ok(cfg)
}

/// Stores a team's configuration (validated by the caller).
///
/// # Errors
/// Database errors.
pub fn save_config(
    c: &mut DbConn,
    team_id: &str,
    cfg: &LeadConfig,
    by: &str,
) -> Result<(), AppError> {
    let stages = serde_json::to_string(&cfg.stages).map_err(AppError::internal)?;
    let rules = serde_json::to_string(&cfg.rules).map_err(AppError::internal)?;
    let now = now_ms();
    write_transaction(c, |c| {
        let n = diesel::update(lead_settings::table.find(team_id))
            .set((
                lead_settings::stages.eq(&stages),
                lead_settings::rules.eq(&rules),
                lead_settings::welcome.eq(&cfg.welcome),
                lead_settings::updated_at.eq(now),
                lead_settings::updated_by.eq(by),
            ))
            .execute(c)?;
        if n == 0 {
            diesel::insert_into(lead_settings::table)
                .values((
                    lead_settings::team_id.eq(team_id),
                    lead_settings::stages.eq(&stages),
                    lead_settings::rules.eq(&rules),
                    lead_settings::welcome.eq(&cfg.welcome),
                    lead_settings::updated_at.eq(now),
                    lead_settings::updated_by.eq(by),
                ))
                .execute(c)?;
        }
        Ok(())
    })
}

// ------------------------------------------------------------------ reads

/// A lead row.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn row(c: &mut DbConn, id: &str) -> Result<LeadRow, AppError> {
    leads::table
        .find(id)
        .select(LeadRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no lead {id}")))
}

/// The lead a contact belongs to.
///
/// # Errors
/// Database errors.
pub fn lead_of_contact(c: &mut DbConn, contact_id: &str) -> Result<Option<LeadRow>, AppError> {
    Ok(lead_contacts::table
        .inner_join(leads::table.on(leads::id.eq(lead_contacts::lead_id)))
        .filter(lead_contacts::contact_id.eq(contact_id))
        .select(LeadRow::as_select())
        .first(c)
        .optional()?)
}

/// The lead of a conversation's contact.
///
/// # Errors
/// [`AppError::NotFound`] when the conversation or its lead does not exist.
pub fn lead_of_conversation(c: &mut DbConn, conversation_id: &str) -> Result<LeadRow, AppError> {
    let contact: String = conversations::table
        .find(conversation_id)
        .select(conversations::contact_id)
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no conversation {conversation_id}")))?;
    lead_of_contact(c, &contact)?
        .ok_or_else(|| AppError::NotFound("this conversation has no lead yet".into()))
}

fn contact_ids(c: &mut DbConn, lead_id: &str) -> Result<Vec<String>, AppError> {
    Ok(lead_contacts::table
        .filter(lead_contacts::lead_id.eq(lead_id))
        .order(lead_contacts::created_at.asc())
        .select(lead_contacts::contact_id)
        .load(c)?)
}

/// Conversations of a lead's contacts, oldest first.
///
/// # Errors
/// Database errors.
pub fn conversation_ids(c: &mut DbConn, lead_id: &str) -> Result<Vec<String>, AppError> {
    let ids = contact_ids(c, lead_id)?;
    Ok(conversations::table
        .filter(conversations::contact_id.eq_any(ids))
        .order(conversations::created_at.asc())
        .select(conversations::id)
        .load(c)?)
}

/// The client view of a lead.
///
/// # Errors
/// Database errors.
pub fn view(c: &mut DbConn, l: LeadRow) -> Result<LeadView, AppError> {
    let ids = contact_ids(c, &l.id)?;
    let mut rows: Vec<ContactRow> = contacts::table
        .filter(contacts::id.eq_any(&ids))
        .select(ContactRow::as_select())
        .load(c)?;
    rows.sort_by_key(|r| ids.iter().position(|i| *i == r.id));
    let open_tasks: i64 = tasks::table
        .filter(tasks::lead_id.eq(&l.id))
        .filter(tasks::status.eq("open"))
        .count()
        .get_result(c)?;
    Ok(LeadView {
        conversation_ids: conversation_ids(c, &l.id)?,
        contacts: rows.into_iter().map(ContactView::from).collect(),
        id: l.id,
        team_id: l.team_id,
        source: l.source,
        source_detail: l.source_detail,
        owner_id: l.owner_id,
        stage: l.stage,
        priority: l.priority,
        score: l.score,
        campaign_code: l.campaign_code,
        interested_package: l.interested_package,
        notes: l.notes,
        handover_pending: l.handover_pending != 0,
        handover_reason: l.handover_reason,
        escalated: l.escalated != 0,
        open_tasks,
        first_response_at: opt_time(l.first_response_at),
        closed_at: opt_time(l.closed_at),
        created_at: rfc3339(l.created_at),
        updated_at: rfc3339(l.updated_at),
    })
}

/// Filter for [`list`].
#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    /// Teams the caller may see (`None`: all).
    pub teams: Option<Vec<String>>,
    /// One stage.
    pub stage: Option<String>,
    /// One owner.
    pub owner_id: Option<String>,
    /// Only leads waiting for a handover.
    pub handover: bool,
    /// Page size.
    pub limit: i64,
}

/// Leads, most recently changed first.
///
/// # Errors
/// Database errors.
pub fn list(c: &mut DbConn, f: &LeadFilter) -> Result<Vec<LeadView>, AppError> {
    let mut q = leads::table
        .select(LeadRow::as_select())
        .order((leads::updated_at.desc(), leads::id.desc()))
        .limit(f.limit)
        .into_boxed();
    if let Some(t) = &f.teams {
        q = q.filter(leads::team_id.eq_any(t.clone()));
    }
    if let Some(s) = &f.stage {
        q = q.filter(leads::stage.eq(s.clone()));
    }
    if let Some(o) = &f.owner_id {
        q = q.filter(leads::owner_id.eq(o.clone()));
    }
    if f.handover {
        q = q.filter(leads::handover_pending.eq(1));
    }
    let rows: Vec<LeadRow> = q.load(c)?;
    rows.into_iter().map(|r| view(c, r)).collect()
}

// ------------------------------------------------------------------ writes

/// Appends a timeline event; returns it as an entry.
///
/// # Errors
/// Database errors.
pub fn event(
    c: &mut DbConn,
    lead_id: &str,
    conversation_id: Option<&str>,
    kind: &str,
    actor: Actor<'_>,
    detail: Value,
    now: i64,
) -> Result<TimelineEntry, AppError> {
    let id = new_id();
    diesel::insert_into(lead_events::table)
        .values((
            lead_events::id.eq(&id),
            lead_events::lead_id.eq(lead_id),
            lead_events::conversation_id.eq(conversation_id),
            lead_events::kind.eq(kind),
            lead_events::actor_kind.eq(actor.kind),
            lead_events::actor_id.eq(actor.id),
            lead_events::detail.eq(detail.to_string()),
            lead_events::created_at.eq(now),
        ))
        .execute(c)?;
    // Lead-created and stage-entered automations start here, in the event's own
    // transaction, whichever path (rules, an agent, an import) made the event.
    let started =
        crate::store::automations::runs::on_lead_event(c, lead_id, kind, &detail, &id, now)?;
    Ok(TimelineEntry {
        id,
        lead_id: lead_id.into(),
        conversation_id: conversation_id.map(str::to_string),
        kind: kind.into(),
        actor_kind: actor.kind.into(),
        actor_id: actor.id.map(str::to_string),
        detail,
        at: rfc3339(now),
        at_ms: now,
        started_runs: started > 0,
    })
}

/// Form for [`create_task`].
#[derive(Debug, Clone)]
pub struct NewTask {
    /// Kind.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Assignee.
    pub assignee_id: Option<String>,
    /// Due, epoch ms.
    pub due_at: i64,
    /// Creator.
    pub created_by: Option<String>,
}

/// Creates a task and its timeline entry.
///
/// # Errors
/// Database errors.
pub fn create_task(
    c: &mut DbConn,
    lead: &LeadRow,
    conversation_id: Option<&str>,
    t: NewTask,
    now: i64,
    out: &mut Vec<TimelineEntry>,
) -> Result<TaskRow, AppError> {
    let row = TaskRow {
        id: new_id(),
        lead_id: lead.id.clone(),
        team_id: lead.team_id.clone(),
        kind: t.kind,
        title: t.title,
        assignee_id: t.assignee_id,
        due_at: t.due_at,
        status: "open".into(),
        overdue_notified: 0,
        created_by: t.created_by.clone(),
        created_at: now,
        completed_at: None,
    };
    diesel::insert_into(tasks::table).values(&row).execute(c)?;
    let actor = match &t.created_by {
        Some(id) => Actor {
            kind: "agent",
            id: Some(id),
        },
        None => Actor::SYSTEM,
    };
    out.push(event(
        c,
        &lead.id,
        conversation_id,
        "task_created",
        actor,
        json!({"task_id": row.id, "kind": row.kind, "title": row.title,
               "assignee_id": row.assignee_id, "due_at": rfc3339(row.due_at)}),
        now,
    )?);
    Ok(row)
}

fn has_open_task(c: &mut DbConn, lead_id: &str, kind: &str) -> Result<bool, AppError> {
    let n: i64 = tasks::table
        .filter(tasks::lead_id.eq(lead_id))
        .filter(tasks::kind.eq(kind))
        .filter(tasks::status.eq("open"))
        .count()
        .get_result(c)?;
    Ok(n > 0)
}

/// Moves a lead to `to`. Automatic moves (`manual` false) only go forward and
/// return `None` otherwise; manual moves may go anywhere. Updates the furthest
/// position, the closing time, creates the stage's follow-up task, and records
/// `stage_changed` with the actor.
///
/// # Errors
/// [`AppError::Validation`] for an unknown stage; database errors.
#[allow(clippy::too_many_arguments)]
pub fn move_stage(
    c: &mut DbConn,
    cfg: &LeadConfig,
    lead: &mut LeadRow,
    to: &str,
    actor: Actor<'_>,
    manual: bool,
    conversation_id: Option<&str>,
    now: i64,
    out: &mut Vec<TimelineEntry>,
) -> Result<bool, AppError> {
    let Some(pos) = cfg.position(to) else {
        return Err(AppError::Validation(format!(
            "There is no stage {to:?} in the pipeline."
        )));
    };
    if lead.stage == to || (!manual && !cfg.is_forward(&lead.stage, to)) {
        return Ok(false);
    }
    let stage = &cfg.stages[pos];
    let open_count = cfg.stages.iter().filter(|s| s.outcome.is_none()).count();
    let reached = match stage.outcome.as_deref() {
        Some("won") => open_count,
        Some(_) => lead.furthest_position as usize,
        None => pos,
    };
    let from = std::mem::replace(&mut lead.stage, to.to_string());
    lead.furthest_position = lead.furthest_position.max(reached as i32);
    lead.closed_at = stage.outcome.is_some().then_some(now);
    lead.updated_at = now;
    diesel::update(leads::table.find(&lead.id))
        .set((
            leads::stage.eq(&lead.stage),
            leads::furthest_position.eq(lead.furthest_position),
            leads::closed_at.eq(lead.closed_at),
            leads::updated_at.eq(now),
        ))
        .execute(c)?;
    out.push(event(
        c,
        &lead.id,
        conversation_id,
        "stage_changed",
        actor,
        json!({"from": from, "to": to, "manual": manual}),
        now,
    )?);
    if let Some(hours) = stage.follow_up_hours {
        if !has_open_task(c, &lead.id, "follow_up")? {
            create_task(
                c,
                lead,
                conversation_id,
                NewTask {
                    kind: "follow_up".into(),
                    title: format!("Follow up: lead is now {}", stage.name),
                    assignee_id: lead.owner_id.clone(),
                    due_at: now + hours * 3_600_000,
                    created_by: None,
                },
                now,
                out,
            )?;
        }
    }
    Ok(true)
}

/// What the post-message bookkeeping changed, for the caller to publish.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The lead after the change (`None`: nothing worth announcing changed).
    pub lead: Option<LeadView>,
    /// New timeline entries.
    pub timeline: Vec<TimelineEntry>,
    /// An automatic reply to post (body, optional image URL).
    pub reply: Option<(String, Option<String>)>,
    /// A handover was requested: announce to the team leads.
    pub handover: Option<Value>,
    /// Conversation team and assignee (for the audience of frames).
    pub team_id: String,
    /// Assignee.
    pub assignee_id: Option<String>,
}

/// The message that was just committed, as the bookkeeping needs it.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Conversation.
    pub conversation_id: String,
    /// `guest`, `agent`, `bot`, `system`.
    pub sender_kind: String,
    /// Sender id.
    pub sender_id: Option<String>,
    /// Body.
    pub body: String,
    /// Seq.
    pub seq: i64,
}

fn source_of(channel: &str) -> &'static str {
    match channel {
        "whatsapp" | "waha" => "whatsapp",
        "quick_chat" => "quick_chat",
        _ => "widget",
    }
}

/// The keys by which two contacts are the same person: the phone in E.164 and the
/// email trimmed and lower-cased (`None` where absent or not a phone number).
fn identity_keys(contact: &ContactRow) -> (Option<String>, Option<String>) {
    let phone = contact
        .phone
        .as_deref()
        .and_then(phone::normalise)
        .and_then(|(_, e164)| e164);
    let email = contact.email.as_ref().map(|e| e.trim().to_lowercase());
    (phone, email)
}

/// [`identity_keys`], with the contact's phone stored back in E.164 when it was
/// spelled otherwise.
fn identity(
    c: &mut DbConn,
    contact: &ContactRow,
) -> Result<(Option<String>, Option<String>), AppError> {
    let (phone, email) = identity_keys(contact);
    if phone.is_some() && phone != contact.phone {
        diesel::update(contacts::table.find(&contact.id))
            .set(contacts::phone.eq(&phone))
            .execute(c)?;
    }
    Ok((phone, email))
}

/// Leads of `team_id` (other than `except`) of contacts with the same phone or
/// email, oldest first. Other teams' leads are left alone: their agents could not
/// see a lead that moved into another team.
///
/// Single-table reads on purpose: first the other contacts with that phone or email
/// (its `phone` and `lower(email)` indexes), then — only when there are any, which
/// for a new person there are not — their lead ids by `lead_contacts`' key and those
/// leads by theirs, so no plan can start from the team's leads. As one three-table
/// join, PostgreSQL planned from stale statistics (a team thought to
/// hold 2 leads) and hashed every lead of the team per lookup: 14 ms at 1,000
/// contacts, growing with the team (issue 15, `bench/src/newlead.rs`).
fn same_person(
    c: &mut DbConn,
    team_id: &str,
    contact_id: &str,
    phone: Option<&str>,
    email: Option<&str>,
    except: Option<&str>,
) -> Result<Vec<LeadRow>, AppError> {
    let q = contacts::table
        .filter(contacts::id.ne(contact_id))
        .select(contacts::id)
        .into_boxed();
    let q = match (phone, email) {
        (Some(p), Some(e)) => q.filter(
            contacts::phone
                .eq(p.to_string())
                .or(lower_opt(contacts::email).eq(e.to_string())),
        ),
        (Some(p), None) => q.filter(contacts::phone.eq(p.to_string())),
        (None, Some(e)) => q.filter(lower_opt(contacts::email).eq(e.to_string())),
        (None, None) => return Ok(Vec::new()),
    };
    let others: Vec<String> = q.load(c)?;
    if others.is_empty() {
        return Ok(Vec::new());
    }
    let lead_ids: Vec<String> = lead_contacts::table
        .filter(lead_contacts::contact_id.eq_any(&others))
        .select(lead_contacts::lead_id)
        .load(c)?;
    let mut rows: Vec<LeadRow> = leads::table
        .filter(leads::id.eq_any(&lead_ids))
        .filter(leads::team_id.eq(team_id))
        .select(LeadRow::as_select())
        .load(c)?;
    rows.retain(|r| Some(r.id.as_str()) != except);
    rows.sort_by_key(|r| (r.created_at, r.id.clone()));
    rows.dedup_by(|a, b| a.id == b.id);
    Ok(rows)
}

/// The owner routing should try first for a conversation of `contact_id` in
/// `team_id`: the owner of the contact's lead or — for a contact not yet joined to
/// its lead (the bookkeeping runs after routing has started) — of the same
/// person's lead in the team, found by E.164 phone or email. Read-only.
///
/// # Errors
/// Database errors.
pub fn owner_for_contact(
    c: &mut DbConn,
    team_id: &str,
    contact_id: &str,
) -> Result<Option<String>, AppError> {
    if let Some(l) = lead_of_contact(c, contact_id)? {
        return Ok(l.owner_id);
    }
    let Some(contact) = contacts::table
        .find(contact_id)
        .select(ContactRow::as_select())
        .first::<ContactRow>(c)
        .optional()?
    else {
        return Ok(None);
    };
    let (phone, email) = identity_keys(&contact);
    let others = same_person(
        c,
        team_id,
        contact_id,
        phone.as_deref(),
        email.as_deref(),
        None,
    )?;
    Ok(others.into_iter().find_map(|l| l.owner_id))
}

/// Merges lead `gone` into `keep`: contacts, events and tasks move over, empty
/// fields of `keep` are filled from `gone`, the more advanced stage and higher
/// priority win, and a `merged` event records it. `gone` is deleted.
///
/// # Errors
/// Database errors.
pub fn merge(
    c: &mut DbConn,
    cfg: &LeadConfig,
    keep: &mut LeadRow,
    gone: LeadRow,
    actor: Actor<'_>,
    now: i64,
    out: &mut Vec<TimelineEntry>,
) -> Result<(), AppError> {
    let moved: Vec<String> = contact_ids(c, &gone.id)?;
    diesel::update(lead_contacts::table.filter(lead_contacts::lead_id.eq(&gone.id)))
        .set(lead_contacts::lead_id.eq(&keep.id))
        .execute(c)?;
    diesel::update(lead_events::table.filter(lead_events::lead_id.eq(&gone.id)))
        .set(lead_events::lead_id.eq(&keep.id))
        .execute(c)?;
    diesel::update(tasks::table.filter(tasks::lead_id.eq(&gone.id)))
        .set(tasks::lead_id.eq(&keep.id))
        .execute(c)?;
    let pos = |s: &str| cfg.position(s).unwrap_or(0);
    if pos(&gone.stage) > pos(&keep.stage) {
        keep.stage = gone.stage.clone();
        keep.closed_at = gone.closed_at;
    }
    keep.furthest_position = keep.furthest_position.max(gone.furthest_position);
    if priority_rank(&gone.priority) > priority_rank(&keep.priority) {
        keep.priority = gone.priority.clone();
    }
    keep.score = keep.score.max(gone.score);
    keep.owner_id = keep.owner_id.take().or(gone.owner_id.clone());
    keep.campaign_code = keep.campaign_code.take().or(gone.campaign_code.clone());
    keep.interested_package = keep
        .interested_package
        .take()
        .or(gone.interested_package.clone());
    keep.notes = match (keep.notes.take(), gone.notes.clone()) {
        (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
        (a, b) => a.or(b),
    };
    keep.handover_pending = keep.handover_pending.max(gone.handover_pending);
    keep.handover_reason = keep.handover_reason.take().or(gone.handover_reason.clone());
    keep.escalated = keep.escalated.max(gone.escalated);
    keep.first_response_at = match (keep.first_response_at, gone.first_response_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    keep.engagement_invited = keep.engagement_invited.max(gone.engagement_invited);
    keep.updated_at = now;
    diesel::delete(leads::table.find(&gone.id)).execute(c)?;
    save(c, keep)?;
    out.push(event(
        c,
        &keep.id,
        None,
        "merged",
        actor,
        json!({"merged_lead_id": gone.id, "contact_ids": moved, "source": gone.source}),
        now,
    )?);
    Ok(())
}

/// Writes every mutable field of a lead row.
///
/// # Errors
/// Database errors.
pub fn save(c: &mut DbConn, l: &LeadRow) -> Result<(), AppError> {
    diesel::update(leads::table.find(&l.id))
        .set((
            leads::owner_id.eq(&l.owner_id),
            leads::stage.eq(&l.stage),
            leads::furthest_position.eq(l.furthest_position),
            leads::priority.eq(&l.priority),
            leads::score.eq(l.score),
            leads::campaign_code.eq(&l.campaign_code),
            leads::interested_package.eq(&l.interested_package),
            leads::notes.eq(&l.notes),
            leads::handover_pending.eq(l.handover_pending),
            leads::handover_reason.eq(&l.handover_reason),
            leads::escalated.eq(l.escalated),
            leads::engagement_invited.eq(l.engagement_invited),
            leads::first_response_at.eq(l.first_response_at),
            leads::closed_at.eq(l.closed_at),
            leads::source.eq(&l.source),
            leads::source_detail.eq(&l.source_detail),
            leads::updated_at.eq(l.updated_at),
        ))
        .execute(c)?;
    Ok(())
}

/// Form for [`ensure`].
#[derive(Debug, Clone)]
pub struct LeadOrigin {
    /// Team.
    pub team_id: String,
    /// Contact.
    pub contact_id: String,
    /// Source.
    pub source: String,
    /// Finer source.
    pub source_detail: Option<String>,
    /// Owner to start with.
    pub owner_id: Option<String>,
    /// Quick link.
    pub quick_link_id: Option<String>,
    /// Conversation it started in.
    pub conversation_id: Option<String>,
}

/// The contact's lead: existing; or an existing lead of the same person (same
/// phone or email), which the contact joins; or a new one in the first stage, with
/// an `initial_contact` task due in one hour. Returns the lead and whether it was
/// created. Runs inside the caller's transaction.
///
/// # Errors
/// Database errors (a unique violation when a concurrent writer created it first:
/// the caller retries).
pub fn ensure(
    c: &mut DbConn,
    cfg: &LeadConfig,
    origin: &LeadOrigin,
    now: i64,
    out: &mut Vec<TimelineEntry>,
) -> Result<(LeadRow, bool), AppError> {
    if let Some(l) = lead_of_contact(c, &origin.contact_id)? {
        return Ok((l, false));
    }
    let contact: ContactRow = contacts::table
        .find(&origin.contact_id)
        .select(ContactRow::as_select())
        .first(c)?;
    let (phone, email) = identity(c, &contact)?;
    let others = same_person(
        c,
        &origin.team_id,
        &contact.id,
        phone.as_deref(),
        email.as_deref(),
        None,
    )?;
    let conv = origin.conversation_id.as_deref();
    if let Some(mut lead) = others.first().cloned() {
        // The same person had an earlier conversation: a returning contact.
        crate::store::conversations::mark_returning(c, &contact.id, now)?;
        diesel::insert_into(lead_contacts::table)
            .values((
                lead_contacts::contact_id.eq(&contact.id),
                lead_contacts::lead_id.eq(&lead.id),
                lead_contacts::created_at.eq(now),
            ))
            .execute(c)?;
        out.push(event(
            c,
            &lead.id,
            conv,
            "contact_merged",
            Actor::SYSTEM,
            json!({"contact_id": contact.id, "channel_source": origin.source,
                   "matched_on": if phone.is_some() { "phone" } else { "email" }}),
            now,
        )?);
        for other in others.into_iter().skip(1) {
            merge(c, cfg, &mut lead, other, Actor::SYSTEM, now, out)?;
        }
        return Ok((lead, false));
    }
    let lead = LeadRow {
        id: new_id(),
        team_id: origin.team_id.clone(),
        contact_id: contact.id.clone(),
        source: origin.source.clone(),
        source_detail: origin.source_detail.clone(),
        owner_id: origin.owner_id.clone(),
        stage: cfg.first().to_string(),
        furthest_position: 0,
        priority: "normal".into(),
        score: 0,
        campaign_code: None,
        interested_package: None,
        notes: None,
        handover_pending: 0,
        handover_reason: None,
        escalated: 0,
        quick_link_id: origin.quick_link_id.clone(),
        engagement_invited: 0,
        first_response_at: None,
        closed_at: None,
        created_at: now,
        updated_at: now,
    };
    diesel::insert_into(leads::table).values(&lead).execute(c)?;
    diesel::insert_into(lead_contacts::table)
        .values((
            lead_contacts::contact_id.eq(&contact.id),
            lead_contacts::lead_id.eq(&lead.id),
            lead_contacts::created_at.eq(now),
        ))
        .execute(c)?;
    out.push(event(
        c,
        &lead.id,
        conv,
        "lead_created",
        Actor::SYSTEM,
        json!({"source": lead.source, "source_detail": lead.source_detail,
               "owner_id": lead.owner_id, "stage": lead.stage}),
        now,
    )?);
    create_task(
        c,
        &lead,
        conv,
        NewTask {
            kind: "initial_contact".into(),
            title: "Initial contact with the new lead".into(),
            assignee_id: lead.owner_id.clone(),
            due_at: now + 3_600_000,
            created_by: None,
        },
        now,
        out,
    )?;
    Ok((lead, true))
}

/// The package reply of seed 001 (text; the image goes as the media itself).
pub fn package_text(code: &CampaignCodeRow) -> String {
    let mut s = format!("Thank you for your interest in {}!", code.package_name);
    if let Some(p) = code.price {
        s.push_str(&format!(
            "\nPrice: {} {}",
            code.currency.as_deref().unwrap_or(""),
            group_thousands(p)
        ));
    }
    if let Some(d) = &code.departure_date {
        s.push_str(&format!("\nDeparture: {d}"));
    }
    if let Some(n) = code.duration_days {
        s.push_str(&format!("\nDuration: {n} days"));
    }
    if let Some(q) = code.quota {
        s.push_str(&format!("\nSeats: {q}"));
    }
    if let Some(b) = &code.brochure_url {
        s.push_str(&format!("\nBrochure: {b}"));
    }
    if let Some(i) = &code.itinerary {
        s.push_str(&format!("\nItinerary: {i}"));
    }
    s.push_str("\nWould you like to know more about the package?");
    s
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// What the lead bookkeeping reads of a conversation; the pipeline reads it once
/// per pass with its lease ([`crate::store::pipeline::claim`]).
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct ConversationFacts {
    /// The conversation's team.
    pub team_id: String,
    /// The conversation's contact.
    pub contact_id: String,
    /// Channel (`web`, `whatsapp`, `quick_chat`, …).
    pub channel: String,
    /// Where the conversation came from (a quick link's source, a page).
    pub source: Option<String>,
    /// The agent a quick link belongs to.
    pub preferred_agent_id: Option<String>,
    /// Current assignee.
    pub assignee_id: Option<String>,
}

impl ConversationFacts {
    /// The conversation's facts, `None` when there is no such conversation.
    ///
    /// # Errors
    /// Database errors.
    pub fn find(c: &mut DbConn, conversation_id: &str) -> QueryResult<Option<Self>> {
        conversations::table
            .find(conversation_id)
            .select((
                conversations::team_id,
                conversations::contact_id,
                conversations::channel,
                conversations::source,
                conversations::preferred_agent_id,
                conversations::assignee_id,
            ))
            .first(c)
            .optional()
    }

    fn load(c: &mut DbConn, conversation_id: &str) -> Result<Self, AppError> {
        Self::find(c, conversation_id)?
            .ok_or_else(|| AppError::NotFound(format!("no conversation {conversation_id}")))
    }

    /// The quick link a quick-chat conversation came through (its owner and source).
    fn quick_link_id(&self, c: &mut DbConn) -> Result<Option<String>, AppError> {
        match (&self.preferred_agent_id, self.channel.as_str()) {
            (Some(agent), "quick_chat") => Ok(quick_links::table
                .filter(quick_links::agent_id.eq(agent))
                .filter(quick_links::source.eq(self.source.clone().unwrap_or_default()))
                .select(quick_links::id)
                .first(c)
                .optional()?),
            _ => Ok(None),
        }
    }

    /// The origin of a lead that starts in this conversation.
    fn origin(&self, quick_link_id: Option<String>, conversation_id: &str) -> LeadOrigin {
        LeadOrigin {
            team_id: self.team_id.clone(),
            contact_id: self.contact_id.clone(),
            source: source_of(&self.channel).into(),
            source_detail: self.source.clone(),
            owner_id: if self.channel == "quick_chat" {
                self.preferred_agent_id.clone()
            } else {
                None
            },
            quick_link_id,
            conversation_id: Some(conversation_id.to_string()),
        }
    }
}

/// The lead of a conversation's contact, created (or joined with the same person's
/// lead) when it has none yet — for a conversation agents can see before its
/// message's bookkeeping ran (a pre-chat form, or the moment after a first
/// message). Returns the lead and what the timeline gained.
///
/// # Errors
/// [`AppError::NotFound`] for an unknown conversation; database errors.
pub fn ensure_for_conversation(
    c: &mut DbConn,
    conversation_id: &str,
) -> Result<(LeadView, Vec<TimelineEntry>), AppError> {
    let facts = ConversationFacts::load(c, conversation_id)?;
    if let Some(l) = lead_of_contact(c, &facts.contact_id)? {
        return Ok((view(c, l)?, Vec::new()));
    }
    let cfg = config_cached(c, &facts.team_id)?;
    let origin = facts.origin(facts.quick_link_id(c)?, conversation_id);
    let attempt = |c: &mut DbConn| {
        write_transaction(c, |c| {
            let mut timeline = Vec::new();
            let (lead, _) = ensure(c, &cfg, &origin, now_ms(), &mut timeline)?;
            Ok::<_, AppError>((view(c, lead)?, timeline))
        })
    };
    // A concurrent bookkeeping run may create the lead first: then it is found.
    match attempt(c) {
        Err(AppError::Conflict(_)) => attempt(c),
        done => done,
    }
}

/// The bookkeeping after one committed message (see `docs/leads.md`):
/// - a contact's message: the lead is found or created (merging with the same
///   person's lead); the first message of a conversation with a campaign code tags
///   the lead and asks for the package reply (an unknown code: the welcome);
///   intent rules move the stage forward, raise the priority and score, create tasks
///   and flag a handover; on quick-chat pages the contact is invited once to leave
///   an email or phone after showing interest;
/// - an agent's message: the first reply records the response time, makes the agent
///   the owner if there is none, moves the first stage to the second and completes
///   the initial-contact task.
///
/// # Errors
/// Database errors.
pub fn process_message(
    c: &mut DbConn,
    m: &Committed,
    facts: &ConversationFacts,
) -> Result<Outcome, AppError> {
    let out = Outcome {
        team_id: facts.team_id.clone(),
        assignee_id: facts.assignee_id.clone(),
        ..Outcome::default()
    };
    if m.sender_kind != "guest" && m.sender_kind != "agent" {
        return Ok(out);
    }
    let quick_link_id = facts.quick_link_id(c)?;
    // A quick link counts a conversation once agents can see it (docs/leads.md): at
    // its first message, unless a pre-chat form made it visible (and counted) before.
    if m.seq == 1 {
        if let Some(link) = &quick_link_id {
            let prechat: Option<String> = contacts::table
                .find(&facts.contact_id)
                .filter(
                    contacts::name
                        .is_not_null()
                        .or(contacts::email.is_not_null())
                        .or(contacts::phone.is_not_null()),
                )
                .select(contacts::id)
                .first(c)
                .optional()?;
            if prechat.is_none() {
                diesel::update(quick_links::table.find(link))
                    .set(quick_links::conversations.eq(quick_links::conversations + 1))
                    .execute(c)?;
            }
        }
    }
    // Cheap read first: after the first reply, an agent's message changes nothing,
    // so it must not pay for the team's rules (a read, a parse, regex compilation).
    if m.sender_kind == "agent"
        && lead_of_contact(c, &facts.contact_id)?.is_some_and(|l| l.first_response_at.is_some())
    {
        return Ok(out);
    }
    let cfg = config_cached(c, &facts.team_id)?;
    // Fast path: a known lead and nothing to do writes nothing.
    if m.sender_kind == "guest"
        && changes_nothing(&cfg, &m.body, &facts.channel)
        && lead_of_contact(c, &facts.contact_id)?.is_some()
    {
        return Ok(out);
    }
    let matcher = Matcher::cached(&cfg.rules);
    let matched: Vec<_> = matcher.matches(&m.body).into_iter().cloned().collect();
    let codes = campaign::candidates(&m.body);
    let origin = facts.origin(quick_link_id, &m.conversation_id);
    let ConversationFacts {
        team_id,
        contact_id,
        channel,
        ..
    } = facts;
    if m.sender_kind == "agent" {
        for attempt in 0..2 {
            let mut fresh = Outcome {
                team_id: out.team_id.clone(),
                assignee_id: out.assignee_id.clone(),
                ..Outcome::default()
            };
            match write_transaction(c, |c| first_reply(c, &cfg, &origin, m, &mut fresh)) {
                Ok(()) => return Ok(fresh),
                Err(AppError::Conflict(_)) if attempt == 0 => continue,
                Err(e) => return Err(e),
            }
        }
        return Ok(out);
    }
    let run = |c: &mut DbConn, out: &mut Outcome| -> Result<(), AppError> {
        let now = now_ms();
        let (mut lead, created) = ensure(c, &cfg, &origin, now, &mut out.timeline)?;
        let mut changed = created || !out.timeline.is_empty();
        let conv = Some(m.conversation_id.as_str());
        let guest = Actor {
            kind: "guest",
            id: Some(contact_id),
        };
        // Progressive engagement, answered in the chat: once invited, an email or an
        // international phone number in the contact's message is stored like one
        // given through `POST /api/widget/contact`.
        if channel == "quick_chat" && lead.engagement_invited == 1 {
            let (email, phone) = crate::leads::intent::contact_details(&m.body);
            if email.is_some() || phone.is_some() {
                if let Some(l) = engage_in_tx(
                    c,
                    contact_id,
                    email.as_deref(),
                    phone.as_deref(),
                    now,
                    &mut out.timeline,
                )? {
                    lead = l;
                    changed = true;
                }
            }
        }
        // Campaign codes count only in the contact's first message of the conversation.
        // The contact's earliest message, read along the (conversation, seq) index:
        // a count of the contact's messages let PostgreSQL walk the sender index
        // instead (3 ms a message in the bench, growing with the conversation).
        let first_inbound = {
            let earliest: Option<i64> = messages::table
                .filter(messages::conversation_id.eq(&m.conversation_id))
                .filter(messages::seq.le(m.seq))
                .filter(messages::sender_kind.eq("guest"))
                .order(messages::seq.asc())
                .select(messages::seq)
                .first(c)
                .optional()?;
            earliest == Some(m.seq)
        };
        if first_inbound && !codes.is_empty() && lead.campaign_code.is_none() {
            let found: Vec<CampaignCodeRow> = campaign_codes::table
                .filter(campaign_codes::code.eq_any(&codes))
                .filter(campaign_codes::team_id.eq(&team_id))
                .filter(campaign_codes::active.eq(1))
                .select(CampaignCodeRow::as_select())
                .load(c)?;
            let first_valid = codes
                .iter()
                .find_map(|code| found.iter().find(|f| &f.code == code));
            match first_valid {
                Some(code) => {
                    lead.campaign_code = Some(code.code.clone());
                    lead.interested_package = Some(code.package_name.clone());
                    // A lead new with this conversation (created here, or just
                    // before by `ensure_for_conversation` for an agent who opened it)
                    // takes the campaign as its source; an older lead keeps its own.
                    if created || lead.contact_id == *contact_id {
                        lead.source = "campaign".into();
                        lead.source_detail = Some(code.code.clone());
                    }
                    lead.updated_at = now;
                    save(c, &lead)?;
                    out.timeline.push(event(
                        c,
                        &lead.id,
                        conv,
                        "campaign_tagged",
                        guest,
                        json!({"campaign_code": code.code, "package": code.package_name,
                               "ignored_codes": codes.iter().filter(|x| **x != code.code).collect::<Vec<_>>()}),
                        now,
                    )?);
                    out.reply = Some((package_text(code), code.image_url.clone()));
                }
                None => {
                    out.timeline.push(event(
                        c,
                        &lead.id,
                        conv,
                        "campaign_unknown",
                        guest,
                        json!({"codes": codes}),
                        now,
                    )?);
                    out.reply = Some((cfg.welcome.clone(), None));
                }
            }
            changed = true;
        }
        let mut tasks_made: Vec<String> = Vec::new();
        for rule in &matched {
            changed = true;
            out.timeline.push(event(
                c,
                &lead.id,
                conv,
                "intent_detected",
                guest,
                json!({"intent": rule.intent, "language": rule.language}),
                now,
            )?);
            if let Some(to) = &rule.stage {
                move_stage(
                    c,
                    &cfg,
                    &mut lead,
                    to,
                    Actor::SYSTEM,
                    false,
                    conv,
                    now,
                    &mut out.timeline,
                )?;
            }
            if let Some(p) = &rule.priority {
                if priority_rank(p) > priority_rank(&lead.priority) {
                    let from = std::mem::replace(&mut lead.priority, p.clone());
                    out.timeline.push(event(
                        c,
                        &lead.id,
                        conv,
                        "priority_changed",
                        Actor::SYSTEM,
                        json!({"from": from, "to": p, "intent": rule.intent}),
                        now,
                    )?);
                }
            }
            lead.score += rule.score;
            if let Some(kind) = &rule.task {
                if !tasks_made.contains(kind) && !has_open_task(c, &lead.id, kind)? {
                    tasks_made.push(kind.clone());
                    create_task(
                        c,
                        &lead,
                        conv,
                        NewTask {
                            kind: kind.clone(),
                            title: format!(
                                "{} request: {}",
                                rule.intent,
                                crate::model::preview(&m.body)
                            ),
                            assignee_id: lead.owner_id.clone().or(out.assignee_id.clone()),
                            due_at: now + rule.task_due_minutes.unwrap_or(60) * 60_000,
                            created_by: None,
                        },
                        now,
                        &mut out.timeline,
                    )?;
                }
            }
            if rule.handover && lead.handover_pending == 0 {
                lead.handover_pending = 1;
                lead.handover_reason = Some(format!(
                    "{} intent: {}",
                    rule.intent,
                    crate::model::preview(&m.body)
                ));
                if out.assignee_id.is_none() {
                    lead.escalated = 1;
                }
                out.timeline.push(event(
                    c,
                    &lead.id,
                    conv,
                    "handover_requested",
                    guest,
                    json!({"intent": rule.intent, "reason": lead.handover_reason}),
                    now,
                )?);
                out.handover = Some(json!({
                    "lead_id": lead.id,
                    "conversation_id": m.conversation_id,
                    "team_id": team_id,
                    "intent": rule.intent,
                    "reason": lead.handover_reason,
                    "last_message": crate::model::preview(&m.body),
                }));
            }
        }
        // Progressive engagement (seed 003): on a quick-chat page, once the contact
        // shows interest (an intent, or a second message), invite them once to leave
        // an email or phone so the conversation can continue elsewhere.
        if channel == "quick_chat" && lead.engagement_invited == 0 && out.reply.is_none() {
            let contact: ContactRow = contacts::table
                .find(&contact_id)
                .select(ContactRow::as_select())
                .first(c)?;
            if contact.email.is_none()
                && contact.phone.is_none()
                && (!matched.is_empty() || !first_inbound)
            {
                lead.engagement_invited = 1;
                changed = true;
                out.reply = Some((ENGAGEMENT_INVITE.into(), None));
                out.timeline.push(event(
                    c,
                    &lead.id,
                    conv,
                    "engagement_invited",
                    Actor::SYSTEM,
                    json!({}),
                    now,
                )?);
            }
        }
        if changed {
            lead.updated_at = now;
            save(c, &lead)?;
            out.lead = Some(view(c, lead)?);
        }
        Ok(())
    };
    for attempt in 0..2 {
        let mut fresh = Outcome {
            team_id: out.team_id.clone(),
            assignee_id: out.assignee_id.clone(),
            ..Outcome::default()
        };
        match write_transaction(c, |c| run(c, &mut fresh)) {
            Ok(()) => return Ok(fresh),
            Err(AppError::Conflict(_)) if attempt == 0 => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The first agent reply of a lead (see [`process_message`]). Creates the lead when
/// the contact's own bookkeeping has not yet (both run concurrently).
fn first_reply(
    c: &mut DbConn,
    cfg: &LeadConfig,
    origin: &LeadOrigin,
    m: &Committed,
    out: &mut Outcome,
) -> Result<(), AppError> {
    let now = now_ms();
    let (mut lead, created) = ensure(c, cfg, origin, now, &mut out.timeline)?;
    if lead.first_response_at.is_some() {
        if created {
            out.lead = Some(view(c, lead)?);
        }
        return Ok(());
    }
    let agent = m.sender_id.as_deref();
    let actor = Actor {
        kind: "agent",
        id: agent,
    };
    lead.first_response_at = Some(now);
    if lead.owner_id.is_none() {
        lead.owner_id = m.sender_id.clone();
    }
    lead.updated_at = now;
    save(c, &lead)?;
    out.timeline.push(event(
        c,
        &lead.id,
        Some(&m.conversation_id),
        "first_reply",
        actor,
        json!({"response_ms": now - lead.created_at}),
        now,
    )?);
    if lead.stage == cfg.first() {
        if let Some(next) = cfg.second() {
            move_stage(
                c,
                cfg,
                &mut lead,
                next,
                actor,
                false,
                Some(&m.conversation_id),
                now,
                &mut out.timeline,
            )?;
        }
    }
    diesel::update(
        tasks::table
            .filter(tasks::lead_id.eq(&lead.id))
            .filter(tasks::kind.eq("initial_contact"))
            .filter(tasks::status.eq("open")),
    )
    .set((tasks::status.eq("done"), tasks::completed_at.eq(now)))
    .execute(c)?;
    out.lead = Some(view(c, lead)?);
    Ok(())
}

/// The invitation posted on quick-chat pages after interest (progressive engagement).
pub const ENGAGEMENT_INVITE: &str =
    "Thanks! If you like, leave your email or phone number here so we \
can send you the details and continue the conversation even if you close this page.";

/// Records an email or phone the contact gave (progressive engagement), then joins
/// the contact's lead with the same person's other lead, if any. Returns the lead.
///
/// # Errors
/// [`AppError::Validation`] for an unusable phone; database errors.
pub fn engage(
    c: &mut DbConn,
    contact_id: &str,
    email: Option<String>,
    phone_raw: Option<String>,
) -> Result<(Option<LeadView>, Vec<TimelineEntry>), AppError> {
    let phone = match phone_raw {
        Some(p) => Some(phone::normalise(&p).and_then(|(_, e)| e).ok_or_else(|| {
            AppError::Validation(
                "The phone number must start with its country code, such as +62.".into(),
            )
        })?),
        None => None,
    };
    write_transaction(c, |c| {
        let mut out = Vec::new();
        let lead = engage_in_tx(
            c,
            contact_id,
            email.as_deref(),
            phone.as_deref(),
            now_ms(),
            &mut out,
        )?;
        Ok((lead.map(|l| view(c, l)).transpose()?, out))
    })
}

/// [`engage`] inside the caller's transaction, with an E.164 `phone`; returns the
/// contact's lead after any merge.
fn engage_in_tx(
    c: &mut DbConn,
    contact_id: &str,
    email: Option<&str>,
    phone: Option<&str>,
    now: i64,
    out: &mut Vec<TimelineEntry>,
) -> Result<Option<LeadRow>, AppError> {
    if let Some(e) = email {
        diesel::update(contacts::table.find(contact_id))
            .set((contacts::email.eq(e), contacts::updated_at.eq(now)))
            .execute(c)?;
    }
    if let Some(p) = phone {
        diesel::update(contacts::table.find(contact_id))
            .set((contacts::phone.eq(p), contacts::updated_at.eq(now)))
            .execute(c)?;
    }
    let Some(mut lead) = lead_of_contact(c, contact_id)? else {
        return Ok(None);
    };
    out.push(event(
        c,
        &lead.id,
        None,
        "contact_details",
        Actor {
            kind: "guest",
            id: Some(contact_id),
        },
        json!({"email": email.is_some(), "phone": phone.is_some()}),
        now,
    )?);
    let cfg = config(c, &lead.team_id)?;
    let team = lead.team_id.clone();
    let others = same_person(c, &team, contact_id, phone, email, Some(&lead.id))?;
    if !others.is_empty() {
        // The details match the same person's earlier lead: a returning contact.
        crate::store::conversations::mark_returning(c, contact_id, now)?;
    }
    for other in others {
        // The older lead survives: it holds the longer history.
        if other.created_at < lead.created_at {
            let mut keep = other;
            merge(c, &cfg, &mut keep, lead, Actor::SYSTEM, now, out)?;
            lead = keep;
        } else {
            merge(c, &cfg, &mut lead, other, Actor::SYSTEM, now, out)?;
        }
    }
    Ok(Some(lead))
}

// ------------------------------------------------------------------ timeline

/// The whole timeline of a lead, oldest first: messages of every conversation of
/// its contacts, routing decisions about them, and lead events.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn timeline(c: &mut DbConn, lead_id: &str) -> Result<Vec<TimelineEntry>, AppError> {
    row(c, lead_id)?;
    let convs = conversation_ids(c, lead_id)?;
    let mut out: Vec<TimelineEntry> = Vec::new();
    type Msg = (
        String,
        String,
        i64,
        String,
        Option<String>,
        Option<String>,
        String,
        i64,
        Option<String>,
    );
    let msgs: Vec<Msg> = messages::table
        .filter(messages::conversation_id.eq_any(&convs))
        .select((
            messages::id,
            messages::conversation_id,
            messages::seq,
            messages::sender_kind,
            messages::sender_id,
            messages::sender_name,
            messages::body,
            messages::created_at,
            messages::status,
        ))
        .load(c)?;
    for (id, conv, seq, kind, sender_id, sender_name, body, at, status) in msgs {
        out.push(TimelineEntry {
            id,
            lead_id: lead_id.into(),
            conversation_id: Some(conv),
            kind: if kind == "guest" { "message_in" } else { "message_out" }.into(),
            actor_kind: kind,
            actor_id: sender_id,
            detail: json!({"seq": seq, "body": crate::model::preview(&body), "sender_name": sender_name, "status": status}),
            at: rfc3339(at),
            at_ms: at,
            started_runs: false,
        });
    }
    for conv in &convs {
        for r in crate::routing::engine::audit(c, conv)? {
            let at_ms = chrono::DateTime::parse_from_rfc3339(&r.created_at)
                .map(|d| d.timestamp_millis())
                .unwrap_or_default();
            out.push(TimelineEntry {
                id: r.id.clone(),
                lead_id: lead_id.into(),
                conversation_id: Some(r.conversation_id.clone()),
                kind: format!("routing_{}", r.kind),
                actor_kind: if r.actor_id.is_some() {
                    "agent"
                } else {
                    "system"
                }
                .into(),
                actor_id: r.actor_id.clone(),
                detail: serde_json::to_value(&r).unwrap_or(Value::Null),
                at: r.created_at.clone(),
                at_ms,
                started_runs: false,
            });
        }
    }
    type Ev = (
        String,
        Option<String>,
        String,
        String,
        Option<String>,
        String,
        i64,
    );
    let events: Vec<Ev> = lead_events::table
        .filter(lead_events::lead_id.eq(lead_id))
        .select((
            lead_events::id,
            lead_events::conversation_id,
            lead_events::kind,
            lead_events::actor_kind,
            lead_events::actor_id,
            lead_events::detail,
            lead_events::created_at,
        ))
        .load(c)?;
    for (id, conv, kind, actor_kind, actor_id, detail, at) in events {
        out.push(TimelineEntry {
            id,
            lead_id: lead_id.into(),
            conversation_id: conv,
            kind,
            actor_kind,
            actor_id,
            detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
            at: rfc3339(at),
            at_ms: at,
            started_runs: false,
        });
    }
    out.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

// ------------------------------------------------------------------ tasks

/// Open tasks past due whose assignee has not been told yet; marks them told.
/// The conditional update makes each push happen once, even with several nodes.
///
/// # Errors
/// Database errors.
pub fn take_overdue(c: &mut DbConn, now: i64) -> Result<Vec<TaskRow>, AppError> {
    let due: Vec<TaskRow> = tasks::table
        .filter(tasks::status.eq("open"))
        .filter(tasks::overdue_notified.eq(0))
        .filter(tasks::due_at.le(now))
        .select(TaskRow::as_select())
        .limit(200)
        .load(c)?;
    let mut taken = Vec::new();
    for t in due {
        let n = diesel::update(
            tasks::table
                .filter(tasks::id.eq(&t.id))
                .filter(tasks::overdue_notified.eq(0)),
        )
        .set(tasks::overdue_notified.eq(1))
        .execute(c)?;
        if n == 1 {
            taken.push(t);
        }
    }
    Ok(taken)
}

/// A task.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn task(c: &mut DbConn, id: &str) -> Result<TaskRow, AppError> {
    tasks::table
        .find(id)
        .select(TaskRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no task {id}")))
}

/// Tasks of some teams, filtered.
///
/// # Errors
/// Database errors.
pub fn list_tasks(
    c: &mut DbConn,
    teams: Option<Vec<String>>,
    lead_id: Option<String>,
    assignee: Option<String>,
    status: Option<String>,
) -> Result<Vec<TaskRow>, AppError> {
    let mut q = tasks::table
        .select(TaskRow::as_select())
        .order((tasks::due_at.asc(), tasks::id.asc()))
        .limit(500)
        .into_boxed();
    if let Some(t) = teams {
        q = q.filter(tasks::team_id.eq_any(t));
    }
    if let Some(l) = lead_id {
        q = q.filter(tasks::lead_id.eq(l));
    }
    if let Some(a) = assignee {
        q = q.filter(tasks::assignee_id.eq(a));
    }
    if let Some(s) = status {
        q = q.filter(tasks::status.eq(s));
    }
    Ok(q.load(c)?)
}

/// Changes a task (status, due time, assignee, title) and records the change.
///
/// # Errors
/// [`AppError::Validation`]; database errors.
pub fn update_task(
    c: &mut DbConn,
    id: &str,
    status: Option<String>,
    due_at: Option<i64>,
    assignee_id: Option<Option<String>>,
    title: Option<String>,
    by: &str,
) -> Result<(TaskRow, TimelineEntry), AppError> {
    write_transaction(c, |c| {
        let mut t = task(c, id)?;
        let now = now_ms();
        if let Some(s) = status {
            if !["open", "done", "cancelled"].contains(&s.as_str()) {
                return Err(AppError::Validation(
                    "A task can be open, done or cancelled.".into(),
                ));
            }
            t.completed_at = (s != "open").then_some(now);
            t.status = s;
        }
        if let Some(d) = due_at {
            t.due_at = d;
            t.overdue_notified = 0;
        }
        if let Some(a) = assignee_id {
            t.assignee_id = a;
        }
        if let Some(title) = title {
            t.title = title;
        }
        diesel::update(tasks::table.find(&t.id))
            .set((
                tasks::status.eq(&t.status),
                tasks::due_at.eq(t.due_at),
                tasks::overdue_notified.eq(t.overdue_notified),
                tasks::assignee_id.eq(&t.assignee_id),
                tasks::title.eq(&t.title),
                tasks::completed_at.eq(t.completed_at),
            ))
            .execute(c)?;
        let e = event(
            c,
            &t.lead_id,
            None,
            "task_updated",
            Actor {
                kind: "agent",
                id: Some(by),
            },
            json!({"task_id": t.id, "status": t.status, "due_at": rfc3339(t.due_at), "assignee_id": t.assignee_id}),
            now,
        )?;
        Ok((t, e))
    })
}

// ------------------------------------------------------------------ campaign codes

/// A row of `campaign_codes`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, serde::Deserialize)]
#[diesel(table_name = campaign_codes)]
pub struct CampaignCodeRow {
    /// `PKG_MONTH_YEAR_TYPE`, upper case.
    pub code: String,
    /// Team.
    pub team_id: String,
    /// Package name.
    pub package_name: String,
    /// Price in whole currency units (e.g. 25000000 for Rp 25.000.000).
    pub price: Option<i64>,
    /// Currency label (`Rp`, `IDR`, `USD`).
    pub currency: Option<String>,
    /// Departure date (ISO 8601 date).
    pub departure_date: Option<String>,
    /// Days.
    pub duration_days: Option<i32>,
    /// Seats.
    pub quota: Option<i32>,
    /// Package image (sent as WhatsApp image).
    pub image_url: Option<String>,
    /// Brochure.
    pub brochure_url: Option<String>,
    /// Itinerary text or URL.
    pub itinerary: Option<String>,
    /// 1 while usable.
    pub active: i32,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

/// Inserts a code.
///
/// # Errors
/// [`AppError::Conflict`] when it exists; database errors.
pub fn create_code(c: &mut DbConn, row: &CampaignCodeRow) -> Result<(), AppError> {
    match diesel::insert_into(campaign_codes::table)
        .values(row)
        .execute(c)
    {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => {
            Err(AppError::Conflict(format!("code {} exists", row.code)))
        }
        Err(e) => Err(e.into()),
    }
}

// ------------------------------------------------------------------ analytics

/// Counts per key, as a sorted map.
pub type Counts = BTreeMap<String, i64>;

fn ratio(a: i64, b: i64) -> f64 {
    if b == 0 {
        0.0
    } else {
        ((a as f64 / b as f64) * 10_000.0).round() / 10_000.0
    }
}

fn mean(v: &[i64]) -> Option<i64> {
    (!v.is_empty()).then(|| v.iter().sum::<i64>() / v.len() as i64)
}

/// `GET /api/marketing/analytics`: see `docs/leads.md` for every definition. With
/// `since` (epoch ms) only leads created at or after it count (e.g. "today").
///
/// # Errors
/// Database errors.
pub fn analytics(c: &mut DbConn, team_id: &str, since: Option<i64>) -> Result<Value, AppError> {
    let cfg = config(c, team_id)?;
    let rows: Vec<LeadRow> = leads::table
        .filter(leads::team_id.eq(team_id))
        .filter(leads::created_at.ge(since.unwrap_or(i64::MIN)))
        .select(LeadRow::as_select())
        .load(c)?;
    let total = rows.len() as i64;
    let outcome = |l: &LeadRow| cfg.stage(&l.stage).and_then(|s| s.outcome.clone());
    let won = rows
        .iter()
        .filter(|l| outcome(l).as_deref() == Some("won"))
        .count() as i64;
    let lost = rows
        .iter()
        .filter(|l| outcome(l).as_deref() == Some("lost"))
        .count() as i64;
    let open: Vec<&str> = cfg
        .stages
        .iter()
        .filter(|s| s.outcome.is_none())
        .map(|s| s.key.as_str())
        .collect();
    let won_key = cfg
        .stages
        .iter()
        .find(|s| s.outcome.as_deref() == Some("won"))
        .map_or("won", |s| s.key.as_str());
    let reached = |i: usize| {
        rows.iter()
            .filter(|l| l.furthest_position as usize >= i)
            .count() as i64
    };
    let mut funnel = Vec::new();
    for i in 0..open.len() {
        let to = open.get(i + 1).copied().unwrap_or(won_key);
        let (a, b) = (reached(i), reached(i + 1));
        funnel.push(
            json!({"from": open[i], "to": to, "from_count": a, "to_count": b, "rate": ratio(b, a)}),
        );
    }
    let group = |key: &dyn Fn(&LeadRow) -> Option<String>| {
        let mut m: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for l in &rows {
            if let Some(k) = key(l) {
                let e = m.entry(k).or_default();
                e.0 += 1;
                if outcome(l).as_deref() == Some("won") {
                    e.1 += 1;
                }
            }
        }
        m
    };
    let campaigns: Vec<Value> = group(&|l| l.campaign_code.clone())
        .into_iter()
        .map(|(k, (n, w))| json!({"campaign_code": k, "leads": n, "won": w, "conversion": ratio(w, n)}))
        .collect();
    let sources: Vec<Value> = group(&|l| Some(l.source.clone()))
        .into_iter()
        .map(|(k, (n, w))| json!({"source": k, "leads": n, "won": w, "conversion": ratio(w, n)}))
        .collect();
    let mut per_agent: BTreeMap<String, (i64, i64, Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for l in &rows {
        let Some(owner) = &l.owner_id else { continue };
        let e = per_agent.entry(owner.clone()).or_default();
        e.0 += 1;
        if outcome(l).as_deref() == Some("won") {
            e.1 += 1;
        }
        if let Some(f) = l.first_response_at {
            e.2.push(f - l.created_at);
        }
        if let Some(cl) = l.closed_at {
            e.3.push(cl - l.created_at);
        }
    }
    let names: BTreeMap<String, String> = agents::table
        .filter(agents::id.eq_any(per_agent.keys().cloned().collect::<Vec<_>>()))
        .select((agents::id, agents::name))
        .load::<(String, String)>(c)?
        .into_iter()
        .collect();
    let agents_out: Vec<Value> = per_agent
        .into_iter()
        .map(|(id, (n, w, fr, res))| {
            json!({"agent_id": id, "name": names.get(&id), "leads": n, "won": w,
                   "avg_first_response_ms": mean(&fr), "avg_resolution_ms": mean(&res)})
        })
        .collect();
    let mut distribution: Counts = cfg.stages.iter().map(|s| (s.key.clone(), 0)).collect();
    for l in &rows {
        *distribution.entry(l.stage.clone()).or_default() += 1;
    }
    Ok(json!({
        "team_id": team_id,
        "conversion_metrics": {
            "total_leads": total,
            "won": won,
            "lost": lost,
            "conversion_rate": ratio(won, total),
            "funnel": funnel,
        },
        "stage_distribution": distribution,
        "campaign_performance": campaigns,
        "source_performance": sources,
        "agent_performance": agents_out,
    }))
}

/// `GET /api/marketing/dashboard`.
///
/// # Errors
/// Database errors.
pub fn dashboard(c: &mut DbConn, team_id: &str) -> Result<Value, AppError> {
    let cfg = config(c, team_id)?;
    let active: i64 = conversations::table
        .inner_join(contacts::table)
        .filter(crate::store::conversations::visible_to_agents())
        .filter(conversations::team_id.eq(team_id))
        .filter(conversations::status.eq("open"))
        .count()
        .get_result(c)?;
    let stages: Vec<String> = leads::table
        .filter(leads::team_id.eq(team_id))
        .select(leads::stage)
        .load(c)?;
    let mut distribution: Counts = cfg.stages.iter().map(|s| (s.key.clone(), 0)).collect();
    for s in stages {
        *distribution.entry(s).or_default() += 1;
    }
    let pending: Vec<LeadRow> = leads::table
        .filter(leads::team_id.eq(team_id))
        .filter(leads::handover_pending.eq(1))
        .order(leads::updated_at.asc())
        .select(LeadRow::as_select())
        .load(c)?;
    let mut handovers = Vec::new();
    for l in pending {
        let convs = conversation_ids(c, &l.id)?;
        let last: Option<(String, Option<String>)> = conversations::table
            .filter(conversations::id.eq_any(&convs))
            .order(conversations::last_message_at.desc())
            .select((conversations::id, conversations::last_message_preview))
            .first(c)
            .optional()?;
        let contact: Option<(Option<String>, Option<String>)> = contacts::table
            .find(&l.contact_id)
            .select((contacts::phone, contacts::name))
            .first(c)
            .optional()?;
        let (phone, name) = contact.unzip();
        let (conv, last_message) = last.unzip();
        handovers.push(json!({
            "lead_id": l.id,
            "name": name.flatten(),
            "phone": phone.flatten(),
            "stage": l.stage,
            "last_message": last_message.flatten(),
            "interested_package": l.interested_package,
            "conversation_id": conv,
            "conversation_url": conv.as_ref().map(|c| format!("/api/conversations/{c}")),
            "notes": l.handover_reason,
        }));
    }
    let escalated: i64 = leads::table
        .filter(leads::team_id.eq(team_id))
        .filter(leads::escalated.eq(1))
        .count()
        .get_result(c)?;
    Ok(json!({
        "team_id": team_id,
        "active_conversations": active,
        "stage_distribution": distribution,
        "pending_handover": handovers,
        "escalated_conversations": escalated,
    }))
}
