//! Progressive engagement on quick-chat pages: the one invitation to leave an email
//! or phone, and recording them when given (through the quick-chat API or in the
//! chat itself). Separate from the per-message bookkeeping because details arrive
//! either way, and either way they may reveal the person's earlier lead.

use diesel::prelude::*;
use serde_json::json;

use crate::channels::phone;
use crate::clock::now_ms;
use crate::db::schema::contacts;
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;

use super::identity::same_person;
use super::{config, event, lead_of_contact, merge, view, Actor, LeadRow, LeadView, TimelineEntry};

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
pub(super) fn engage_in_tx(
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
