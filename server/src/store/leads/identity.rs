//! One lead per person: a contact's lead is found, joined (another contact of the
//! team with the same E.164 phone or email already has one) or created, and two
//! leads of one person are merged. Kept together so that "the same person" means
//! the same thing when routing picks an owner, when a lead is created and when
//! details given later reveal an earlier lead.

use diesel::prelude::*;
use serde_json::json;

use crate::channels::phone;
use crate::clock::now_ms;
use crate::db::schema::{contacts, lead_contacts, lead_events, leads, tasks};
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::leads::config::{priority_rank, LeadConfig};
use crate::model::new_id;
use crate::store::conversations::ContactRow;
use crate::store::lower_opt;

use super::process::ConversationFacts;
use super::repo::contact_ids;
use super::{
    config_cached, create_task, event, lead_of_contact, save, view, Actor, LeadRow, LeadView,
    NewTask, TimelineEntry,
};

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
pub(super) fn same_person(
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
        link_contact(c, &contact.id, &lead.id, now)?;
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
    link_contact(c, &contact.id, &lead.id, now)?;
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

/// Makes `contact_id` one of lead `lead_id`'s contacts (a row of `lead_contacts`).
fn link_contact(c: &mut DbConn, contact_id: &str, lead_id: &str, now: i64) -> Result<(), AppError> {
    diesel::insert_into(lead_contacts::table)
        .values((
            lead_contacts::contact_id.eq(contact_id),
            lead_contacts::lead_id.eq(lead_id),
            lead_contacts::created_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}
