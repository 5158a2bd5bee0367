//! Lead rows: found by id, contact or conversation, turned into the client view,
//! listed, and written back ([`save`]). The other parts change a [`LeadRow`] in
//! memory and persist it through [`save`], so the list of mutable columns lives in
//! one place.

use diesel::prelude::*;

use crate::clock::rfc3339;
use crate::db::schema::{contacts, conversations, lead_contacts, leads, tasks};
use crate::db::DbConn;
use crate::error::AppError;
use crate::model::{opt_time, ContactView};
use crate::store::conversations::ContactRow;

use super::{LeadRow, LeadView};

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

pub(super) fn contact_ids(c: &mut DbConn, lead_id: &str) -> Result<Vec<String>, AppError> {
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
