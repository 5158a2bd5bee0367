//! The contacts list and a contact's detail as the Contacts page shows them
//! (`docs/contacts.md`): search by name or phone within a segment filter, each
//! contact with its tags, consent, latest conversation and lead stage. The filter's
//! SQL is [`super::segments::matching`]; tags and consent come from their stores,
//! one query each for the whole page.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;

use super::conversations::ContactRow;
use super::segments::{matching, Scope};
use super::{consent, contains_pattern, lower_opt, tags};
use crate::clock::rfc3339;
use crate::contacts::segment::SegmentFilter;
use crate::db::schema::{contacts, conversations, lead_contacts, leads};
use crate::db::DbConn;
use crate::error::AppError;
use crate::model::ContactView;

/// Longest page.
pub const MAX_LIMIT: i64 = 200;

/// One contact on the list.
#[derive(Debug, Clone, Serialize)]
pub struct ContactSummary {
    /// Who.
    pub contact: ContactView,
    /// Tags, by name.
    pub tags: Vec<tags::TagView>,
    /// Marketing consent.
    pub consent: consent::ConsentView,
    /// The most recent conversation (by last message), if any.
    pub conversation_id: Option<String>,
    /// Its channel.
    pub channel: Option<String>,
    /// Its WhatsApp number.
    pub number_id: Option<String>,
    /// Its team.
    pub team_id: Option<String>,
    /// When the latest message was (RFC 3339).
    pub last_message_at: Option<String>,
    /// The lead's stage, if the contact has a lead.
    pub lead_stage: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// What the list shows.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// The segment filter to apply (validated).
    pub filter: SegmentFilter,
    /// Text to find in the name or phone (case-insensitive).
    pub q: Option<String>,
    /// Page size (1..=[`MAX_LIMIT`]).
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// A page of contacts and how many match in all.
#[derive(Debug, Clone, Serialize)]
pub struct ContactPage {
    /// Matching contacts, newest first.
    pub contacts: Vec<ContactSummary>,
    /// How many match.
    pub total: i64,
}

fn searched<'a>(
    query: &'a ListQuery,
    scope: Scope<'a>,
) -> contacts::BoxedQuery<'a, crate::db::MultiBackend> {
    let mut q = matching(&query.filter, scope);
    if let Some(text) = query.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = contains_pattern(text);
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        let phone_pattern = if digits.len() >= 3 {
            contains_pattern(&digits)
        } else {
            pattern.clone()
        };
        q = q.filter(
            lower_opt(contacts::name)
                .like(pattern)
                .escape('\\')
                .or(contacts::phone.like(phone_pattern).escape('\\'))
                .assume_not_null(),
        );
    }
    q
}

/// A page of contacts matching `query` within `scope`.
///
/// # Errors
/// Database errors.
pub fn list(c: &mut DbConn, query: &ListQuery, scope: Scope<'_>) -> Result<ContactPage, AppError> {
    let total: i64 = searched(query, scope).count().get_result(c)?;
    let rows: Vec<ContactRow> = searched(query, scope)
        .select(ContactRow::as_select())
        .order((contacts::created_at.desc(), contacts::id.desc()))
        .limit(query.limit.clamp(1, MAX_LIMIT))
        .offset(query.offset.max(0))
        .load(c)?;
    Ok(ContactPage {
        contacts: summaries(c, rows, scope)?,
        total,
    })
}

/// One contact's summary, if it is within `scope`.
///
/// # Errors
/// [`AppError::NotFound`].
pub fn summary(
    c: &mut DbConn,
    contact_id: &str,
    scope: Scope<'_>,
) -> Result<ContactSummary, AppError> {
    let filter = SegmentFilter::default();
    let row: Option<ContactRow> = matching(&filter, scope)
        .filter(contacts::id.eq(contact_id))
        .select(ContactRow::as_select())
        .first(c)
        .optional()?;
    let row = row.ok_or_else(|| AppError::NotFound("no such contact".into()))?;
    summaries(c, vec![row], scope)?
        .pop()
        .ok_or_else(|| AppError::NotFound("no such contact".into()))
}

type ConvRow = (String, String, String, Option<String>, String, Option<i64>);

fn summaries(
    c: &mut DbConn,
    rows: Vec<ContactRow>,
    scope: Scope<'_>,
) -> Result<Vec<ContactSummary>, AppError> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut tags_of = tags::of_contacts(c, &ids)?;
    let mut consent_of = consent::of_contacts(c, &ids)?;
    let mut q = conversations::table
        .filter(conversations::contact_id.eq_any(&ids))
        .select((
            conversations::contact_id,
            conversations::id,
            conversations::channel,
            conversations::number_id,
            conversations::team_id,
            conversations::last_message_at,
        ))
        .into_boxed();
    if let Some(teams) = scope {
        q = q.filter(conversations::team_id.eq_any(teams));
    }
    let mut latest: HashMap<String, ConvRow> = HashMap::new();
    for row in q.load::<ConvRow>(c)? {
        let newer = latest
            .get(&row.0)
            .is_none_or(|l| (row.5, &row.1) > (l.5, &l.1));
        if newer {
            latest.insert(row.0.clone(), row);
        }
    }
    let stage_of: HashMap<String, String> = lead_contacts::table
        .inner_join(leads::table.on(leads::id.eq(lead_contacts::lead_id)))
        .filter(lead_contacts::contact_id.eq_any(&ids))
        .select((lead_contacts::contact_id, leads::stage))
        .load::<(String, String)>(c)?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let conv = latest.remove(&row.id);
            ContactSummary {
                tags: tags_of.remove(&row.id).unwrap_or_default(),
                consent: consent_of
                    .remove(&row.id)
                    .unwrap_or_else(consent::ConsentView::unknown),
                lead_stage: stage_of.get(&row.id).cloned(),
                created_at: rfc3339(row.created_at),
                conversation_id: conv.as_ref().map(|c| c.1.clone()),
                channel: conv.as_ref().map(|c| c.2.clone()),
                number_id: conv.as_ref().and_then(|c| c.3.clone()),
                team_id: conv.as_ref().map(|c| c.4.clone()),
                last_message_at: conv.as_ref().and_then(|c| c.5).map(rfc3339),
                contact: ContactView::from(row),
            }
        })
        .collect())
}

/// The contact of a conversation.
///
/// # Errors
/// [`AppError::NotFound`].
pub fn of_conversation(c: &mut DbConn, conversation_id: &str) -> Result<String, AppError> {
    conversations::table
        .find(conversation_id)
        .select(conversations::contact_id)
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::NotFound("no such conversation".into()))
}
