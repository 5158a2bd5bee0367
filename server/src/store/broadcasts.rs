//! Broadcasts in the database (migration `2026-12-06-000004_broadcasts`): the
//! campaigns, their recipients fixed once when sending starts, each number's pace
//! and next free send slot, and the analytics read back from messages and leads.
//!
//! The rules (lifecycle, pacing, skips) are in [`crate::broadcasts`]; this module
//! only stores what those rules decided.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use serde::Serialize;

use crate::broadcasts::content::{Content, RecipientFacts};
use crate::broadcasts::lifecycle::State;
use crate::broadcasts::pacing::Pace;
use crate::channels::Provider;
use crate::db::schema::{
    broadcast_recipients as br, broadcasts, contact_consent, contacts, conversations, leads,
    messages, number_pacing, segments,
};
use crate::db::{insert_rows, DbConn, INSERT_CHUNK};
use crate::error::AppError;
use crate::model::SenderKind;

// The list's counters group recipients by broadcast and state together with their
// copy's message status (`counters`); diesel needs to be told these columns of two
// tables may share a GROUP BY. Declared here rather than in the generated
// `db/schema.rs`, next to the one query that needs it.
diesel::allow_columns_to_appear_in_same_group_by_clause!(
    br::broadcast_id,
    br::state,
    messages::status,
);

/// A row of `broadcasts`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = broadcasts)]
pub struct BroadcastRow {
    /// Id.
    pub id: String,
    /// Name shown to marketers.
    pub name: String,
    /// The WhatsApp number it sends from.
    pub number_id: String,
    /// [`Content`] as JSON.
    pub content: String,
    /// The segment it was made for.
    pub segment_id: Option<String>,
    /// The segment's filter (JSON), frozen when sending starts.
    pub filter: String,
    /// [`State`] name.
    pub state: String,
    /// When to start (epoch ms), for scheduled broadcasts.
    pub send_at: Option<i64>,
    /// The time zone the marketer gave the time in.
    pub time_zone: Option<String>,
    /// Attribution window for replies and leads, ms.
    pub attribution_ms: i64,
    /// Recipients fixed when sending started.
    pub recipients: i64,
    /// Who made it.
    pub created_by: Option<String>,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
    /// When sending started, epoch ms.
    pub started_at: Option<i64>,
    /// When it was done or cancelled, epoch ms.
    pub finished_at: Option<i64>,
}

impl BroadcastRow {
    /// Its state; an unknown stored name reads as cancelled (nothing is sent).
    pub fn state(&self) -> State {
        State::parse(&self.state).unwrap_or(State::Cancelled)
    }

    /// Its content.
    ///
    /// # Errors
    /// [`AppError::Internal`] for a row that does not parse (written by hand).
    pub fn content(&self) -> Result<Content, AppError> {
        serde_json::from_str(&self.content).map_err(AppError::internal)
    }
}

/// Inserts a new broadcast.
///
/// # Errors
/// Database errors.
pub fn insert(c: &mut DbConn, row: &BroadcastRow) -> Result<(), AppError> {
    diesel::insert_into(broadcasts::table)
        .values(row)
        .execute(c)?;
    Ok(())
}

/// One broadcast.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn get(c: &mut DbConn, id: &str) -> Result<BroadcastRow, AppError> {
    broadcasts::table
        .find(id)
        .select(BroadcastRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no broadcast {id}")))
}

/// Every broadcast, newest first (at most `limit`).
///
/// # Errors
/// Database errors.
pub fn list(c: &mut DbConn, limit: i64) -> Result<Vec<BroadcastRow>, AppError> {
    Ok(broadcasts::table
        .select(BroadcastRow::as_select())
        .order(broadcasts::created_at.desc())
        .limit(limit)
        .load(c)?)
}

/// Replaces an editable broadcast's name, number, content, segment and time.
///
/// # Errors
/// Database errors.
pub fn save_draft(c: &mut DbConn, row: &BroadcastRow) -> Result<(), AppError> {
    diesel::update(broadcasts::table.find(&row.id))
        .set((
            broadcasts::name.eq(&row.name),
            broadcasts::number_id.eq(&row.number_id),
            broadcasts::content.eq(&row.content),
            broadcasts::segment_id.eq(&row.segment_id),
            broadcasts::filter.eq(&row.filter),
            broadcasts::send_at.eq(row.send_at),
            broadcasts::time_zone.eq(&row.time_zone),
            broadcasts::attribution_ms.eq(row.attribution_ms),
            broadcasts::updated_at.eq(row.updated_at),
        ))
        .execute(c)?;
    Ok(())
}

/// Sets a broadcast's send time (epoch ms) and the time zone it was given in.
///
/// # Errors
/// Database errors.
pub fn set_send_time(
    c: &mut DbConn,
    id: &str,
    send_at: Option<i64>,
    time_zone: Option<&str>,
    now: i64,
) -> Result<(), AppError> {
    diesel::update(broadcasts::table.find(id))
        .set((
            broadcasts::send_at.eq(send_at),
            broadcasts::time_zone.eq(time_zone),
            broadcasts::updated_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}

/// Moves a broadcast from `from` to `to` if it is still in `from` (another node or
/// user may have moved it first); stamps start and finish times. Returns whether
/// it moved.
///
/// # Errors
/// Database errors.
pub fn transition(
    c: &mut DbConn,
    id: &str,
    from: State,
    to: State,
    now: i64,
) -> Result<bool, AppError> {
    let target = broadcasts::table
        .filter(broadcasts::id.eq(id))
        .filter(broadcasts::state.eq(from.as_str()));
    let n = match to {
        State::Sending if from != State::Paused => diesel::update(target)
            .set((
                broadcasts::state.eq(to.as_str()),
                broadcasts::started_at.eq(now),
                broadcasts::updated_at.eq(now),
            ))
            .execute(c)?,
        State::Done | State::Cancelled => diesel::update(target)
            .set((
                broadcasts::state.eq(to.as_str()),
                broadcasts::finished_at.eq(now),
                broadcasts::updated_at.eq(now),
            ))
            .execute(c)?,
        _ => diesel::update(target)
            .set((
                broadcasts::state.eq(to.as_str()),
                broadcasts::updated_at.eq(now),
            ))
            .execute(c)?,
    };
    Ok(n == 1)
}

/// One recipient as the segment gave it.
#[derive(Debug, Clone)]
pub struct NewRecipient {
    /// Contact id.
    pub contact_id: String,
    /// The conversation the copy goes into.
    pub conversation_id: String,
}

/// Fixes a broadcast's recipients: inserts each one not yet there, in multi-row
/// INSERTs (so running it again after a crash adds nothing twice), and records
/// the count. One transaction.
///
/// # Errors
/// Database errors.
pub fn materialise(
    c: &mut DbConn,
    broadcast_id: &str,
    recipients: &[NewRecipient],
) -> Result<i64, AppError> {
    c.transaction(|c| {
        // The broadcast's job lease keeps this to one runner; should two ever race,
        // the primary key fails the second transaction, which is then retried.
        let known: HashSet<String> = br::table
            .filter(br::broadcast_id.eq(broadcast_id))
            .select(br::contact_id)
            .load::<String>(c)?
            .into_iter()
            .collect();
        let rows: Vec<_> = recipients
            .iter()
            .filter(|r| !known.contains(&r.contact_id))
            .map(|r| {
                (
                    br::broadcast_id.eq(broadcast_id),
                    br::contact_id.eq(&r.contact_id),
                    br::conversation_id.eq(&r.conversation_id),
                    br::state.eq("pending"),
                )
            })
            .collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            insert_rows!(&mut *c, br::table, chunk)?;
        }
        let total: i64 = br::table
            .filter(br::broadcast_id.eq(broadcast_id))
            .count()
            .get_result(c)?;
        diesel::update(broadcasts::table.find(broadcast_id))
            .set(broadcasts::recipients.eq(total))
            .execute(c)?;
        Ok::<_, AppError>(total)
    })
}

/// Whether a broadcast's recipients have been fixed.
///
/// # Errors
/// Database errors.
pub fn has_recipients(c: &mut DbConn, broadcast_id: &str) -> Result<bool, AppError> {
    let n: i64 = br::table
        .filter(br::broadcast_id.eq(broadcast_id))
        .count()
        .get_result(c)?;
    Ok(n > 0)
}

/// A recipient still to be sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Contact id.
    pub contact_id: String,
    /// Conversation id.
    pub conversation_id: String,
}

/// Up to `limit` pending recipients, in contact order.
///
/// # Errors
/// Database errors.
pub fn pending(c: &mut DbConn, broadcast_id: &str, limit: i64) -> Result<Vec<Pending>, AppError> {
    let rows: Vec<(String, String)> = br::table
        .filter(br::broadcast_id.eq(broadcast_id))
        .filter(br::state.eq("pending"))
        .order(br::contact_id.asc())
        .limit(limit)
        .select((br::contact_id, br::conversation_id))
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(|(contact_id, conversation_id)| Pending {
            contact_id,
            conversation_id,
        })
        .collect())
}

/// What the skip rules need about each of `pending`'s recipients, read in a few
/// queries: consent, WhatsApp id, name and phone, the conversation's last customer
/// message, the lead's campaign code.
///
/// # Errors
/// Database errors.
pub fn facts(
    c: &mut DbConn,
    pending: &[Pending],
) -> Result<HashMap<String, RecipientFacts>, AppError> {
    let ids: Vec<&str> = pending.iter().map(|p| p.contact_id.as_str()).collect();
    let convs: Vec<&str> = pending.iter().map(|p| p.conversation_id.as_str()).collect();
    type ContactRow = (String, Option<String>, Option<String>, Option<String>);
    let people: Vec<ContactRow> = contacts::table
        .filter(contacts::id.eq_any(&ids))
        .select((
            contacts::id,
            contacts::name,
            contacts::phone,
            contacts::wa_id,
        ))
        .load(c)?;
    let out_ids: Vec<String> = contact_consent::table
        .filter(contact_consent::contact_id.eq_any(&ids))
        .filter(contact_consent::state.eq("opted_out"))
        .select(contact_consent::contact_id)
        .load(c)?;
    let inbound: HashMap<String, Option<i64>> = conversations::table
        .filter(conversations::id.eq_any(&convs))
        .select((conversations::id, conversations::last_inbound_at))
        .load::<(String, Option<i64>)>(c)?
        .into_iter()
        .collect();
    let codes: HashMap<String, Option<String>> = leads::table
        .filter(leads::contact_id.eq_any(&ids))
        .select((leads::contact_id, leads::campaign_code))
        .load::<(String, Option<String>)>(c)?
        .into_iter()
        .collect();
    let mut out = HashMap::with_capacity(pending.len());
    for (id, name, phone, wa_id) in people {
        let conv = pending.iter().find(|p| p.contact_id == id);
        let facts = RecipientFacts {
            opted_out: out_ids.contains(&id),
            reachable: wa_id.is_some(),
            last_customer_message_at: conv
                .and_then(|p| inbound.get(&p.conversation_id).copied().flatten()),
            name,
            phone,
            campaign_code: codes.get(&id).cloned().flatten(),
        };
        out.insert(id, facts);
    }
    Ok(out)
}

/// Records that a recipient got its copy (message `message_id`) at `now`.
///
/// # Errors
/// Database errors.
pub fn mark_sent(
    c: &mut DbConn,
    broadcast_id: &str,
    contact_id: &str,
    message_id: &str,
    now: i64,
) -> Result<(), AppError> {
    diesel::update(br::table.find((broadcast_id, contact_id)))
        .set((
            br::state.eq("sent"),
            br::message_id.eq(message_id),
            br::sent_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}

/// Copies of broadcasts on number `number_id` sent at or after `since` (epoch
/// ms): what counts against the number's daily messaging limit.
///
/// # Errors
/// Database errors.
pub fn sent_since(c: &mut DbConn, number_id: &str, since: i64) -> Result<i64, AppError> {
    Ok(br::table
        .inner_join(broadcasts::table.on(broadcasts::id.eq(br::broadcast_id)))
        .filter(broadcasts::number_id.eq(number_id))
        .filter(br::state.eq("sent"))
        .filter(br::sent_at.ge(since))
        .count()
        .get_result(c)?)
}

/// Records that a recipient gets no copy, and why.
///
/// # Errors
/// Database errors.
pub fn mark_skipped(
    c: &mut DbConn,
    broadcast_id: &str,
    contact_id: &str,
    reason: &str,
) -> Result<(), AppError> {
    diesel::update(br::table.find((broadcast_id, contact_id)))
        .filter(br::state.eq("pending"))
        .set((br::state.eq("skipped"), br::skip_reason.eq(reason)))
        .execute(c)?;
    Ok(())
}

/// A number's pace: its stored one, else the provider's default.
///
/// # Errors
/// Database errors.
pub fn pace_of(c: &mut DbConn, number_id: &str, provider: Provider) -> Result<Pace, AppError> {
    let stored: Option<Option<String>> = number_pacing::table
        .find(number_id)
        .select(number_pacing::pace)
        .first(c)
        .optional()?;
    let parsed = stored
        .flatten()
        .and_then(|s| serde_json::from_str::<Pace>(&s).ok());
    Ok(parsed.unwrap_or(match provider {
        Provider::Meta => Pace::meta_default(),
        Provider::Waha => Pace::waha_default(),
    }))
}

/// Stores a number's pace.
///
/// # Errors
/// Database errors.
pub fn set_pace(c: &mut DbConn, number_id: &str, pace: &Pace, now: i64) -> Result<(), AppError> {
    let json = serde_json::to_string(pace).map_err(AppError::internal)?;
    let updated = diesel::update(number_pacing::table.find(number_id))
        .set((
            number_pacing::pace.eq(&json),
            number_pacing::updated_at.eq(now),
        ))
        .execute(c)?;
    if updated == 0 {
        diesel::insert_into(number_pacing::table)
            .values((
                number_pacing::number_id.eq(number_id),
                number_pacing::pace.eq(&json),
                number_pacing::next_slot.eq(0_i64),
                number_pacing::updated_at.eq(now),
            ))
            .execute(c)?;
    }
    Ok(())
}

/// The number's next free send slot (epoch ms; 0 when it never sent).
///
/// # Errors
/// Database errors.
pub fn next_slot(c: &mut DbConn, number_id: &str) -> Result<i64, AppError> {
    Ok(number_pacing::table
        .find(number_id)
        .select(number_pacing::next_slot)
        .first(c)
        .optional()?
        .unwrap_or(0))
}

/// Takes the number's slots up to `next` (epoch ms) for the copies just planned,
/// if nobody took them first: returns whether the slots were still free at
/// `expected` (the value [`next_slot`] read). Run in the transaction that records
/// the copies.
///
/// # Errors
/// Database errors.
pub fn take_slots(
    c: &mut DbConn,
    number_id: &str,
    expected: i64,
    next: i64,
    now: i64,
) -> Result<bool, AppError> {
    let moved = diesel::update(number_pacing::table.find(number_id))
        .filter(number_pacing::next_slot.eq(expected))
        .set((
            number_pacing::next_slot.eq(next),
            number_pacing::updated_at.eq(now),
        ))
        .execute(c)?;
    if moved == 1 {
        return Ok(true);
    }
    if expected != 0 {
        return Ok(false);
    }
    // The number's first slots: whoever inserts the row first has them.
    let inserted = c.transaction(|c| {
        diesel::insert_into(number_pacing::table)
            .values((
                number_pacing::number_id.eq(number_id),
                number_pacing::next_slot.eq(next),
                number_pacing::updated_at.eq(now),
            ))
            .execute(c)
    });
    match inserted {
        Ok(n) => Ok(n == 1),
        Err(e) if crate::db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A broadcast's numbers as the analytics show them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Recipients fixed at start.
    pub recipients: i64,
    /// Not yet sent or skipped.
    pub pending: i64,
    /// Copies handed to the provider (includes delivered and read).
    pub sent: i64,
    /// Delivered (includes read).
    pub delivered: i64,
    /// Read.
    pub read: i64,
    /// Failed, by the provider's error text.
    pub failed: i64,
    /// Failed copies per error (the provider's code and title).
    pub failed_by_error: Vec<(String, i64)>,
    /// Skipped, by reason (`opted_out`, `window_closed`, …).
    pub skipped: Vec<(String, i64)>,
    /// Recipients who wrote back within the attribution window.
    pub replied: i64,
    /// Recipients who opted out within the attribution window.
    pub opted_out: i64,
    /// Leads created within the attribution window.
    pub leads_created: i64,
    /// Leads won within the attribution window.
    pub leads_won: i64,
}

/// A broadcast's cheap counters, as the list shows them: no attribution (replies,
/// opt-outs, leads) and no breakdown by error or skip reason, which
/// [`stats`] computes for one broadcast.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Recipients fixed at start.
    pub recipients: i64,
    /// Not yet sent or skipped.
    pub pending: i64,
    /// Copies handed to the provider (includes delivered, read and failed).
    pub sent: i64,
    /// Delivered (includes read).
    pub delivered: i64,
    /// Read.
    pub read: i64,
    /// Failed at the provider.
    pub failed: i64,
    /// Skipped, every reason together.
    pub skipped: i64,
}

/// The [`Counters`] of `list`'s broadcasts, by broadcast id, in one grouped query
/// over their recipients (left-joined to the copies' messages for the statuses).
/// Every broadcast of `list` has an entry (zeros when it has no recipients yet).
///
/// # Errors
/// Database errors.
pub fn counters(
    c: &mut DbConn,
    list: &[BroadcastRow],
) -> Result<HashMap<String, Counters>, AppError> {
    let mut out: HashMap<String, Counters> = list
        .iter()
        .map(|b| {
            let counters = Counters {
                recipients: b.recipients,
                ..Counters::default()
            };
            (b.id.clone(), counters)
        })
        .collect();
    // Chunks keep the IN list within every backend's bound-parameter limit.
    for chunk in list.chunks(500) {
        let ids: Vec<&str> = chunk.iter().map(|b| b.id.as_str()).collect();
        let groups: Vec<(String, String, Option<String>, i64)> = br::table
            .left_join(messages::table.on(messages::id.nullable().eq(br::message_id)))
            .filter(br::broadcast_id.eq_any(&ids))
            .group_by((br::broadcast_id, br::state, messages::status))
            .select((
                br::broadcast_id,
                br::state,
                messages::status.nullable(),
                diesel::dsl::count_star(),
            ))
            .load(c)?;
        for (id, state, status, n) in groups {
            let Some(s) = out.get_mut(&id) else { continue };
            // The same rules as `stats`: the recipient's state for pending, sent
            // and skipped; the copy's status for delivered, read and failed.
            match state.as_str() {
                "pending" => s.pending += n,
                "sent" => s.sent += n,
                _ => s.skipped += n,
            }
            match status.as_deref() {
                Some("read") => {
                    s.read += n;
                    s.delivered += n;
                }
                Some("delivered") => s.delivered += n,
                Some("failed") => s.failed += n,
                _ => {}
            }
        }
    }
    Ok(out)
}

/// The names of segments `ids`, by id (a deleted segment is absent).
///
/// # Errors
/// Database errors.
pub fn segment_names(c: &mut DbConn, ids: &[&str]) -> Result<HashMap<String, String>, AppError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String)> = segments::table
            .filter(segments::id.eq_any(chunk))
            .select((segments::id, segments::name))
            .load(c)?;
        out.extend(rows);
    }
    Ok(out)
}

/// The analytics of one broadcast, from its recipients, their messages' statuses,
/// replies, opt-outs and leads within `window_ms` of each copy.
///
/// # Errors
/// Database errors.
pub fn stats(c: &mut DbConn, b: &BroadcastRow) -> Result<Stats, AppError> {
    let id = b.id.as_str();
    let by_state: Vec<(String, Option<String>, i64)> = br::table
        .filter(br::broadcast_id.eq(id))
        .group_by((br::state, br::skip_reason))
        .select((br::state, br::skip_reason, diesel::dsl::count_star()))
        .load(c)?;
    let mut s = Stats {
        recipients: b.recipients,
        ..Stats::default()
    };
    for (state, reason, n) in by_state {
        match state.as_str() {
            "pending" => s.pending += n,
            "sent" => s.sent += n,
            _ => s
                .skipped
                .push((reason.unwrap_or_else(|| "unknown".into()), n)),
        }
    }
    let statuses: Vec<(Option<String>, Option<String>, i64)> = br::table
        .inner_join(messages::table.on(messages::id.nullable().eq(br::message_id)))
        .filter(br::broadcast_id.eq(id))
        .group_by((messages::status, messages::status_error))
        .select((
            messages::status,
            messages::status_error,
            diesel::dsl::count_star(),
        ))
        .load(c)?;
    for (status, error, n) in statuses {
        match status.as_deref() {
            Some("read") => {
                s.read += n;
                s.delivered += n;
            }
            Some("delivered") => s.delivered += n,
            Some("failed") => {
                s.failed += n;
                s.failed_by_error
                    .push((error.unwrap_or_else(|| "unknown".into()), n));
            }
            _ => {}
        }
    }
    // Replies, opt-outs and leads: per sent recipient, within the window.
    let sent: Vec<(String, String, Option<i64>)> = br::table
        .filter(br::broadcast_id.eq(id))
        .filter(br::state.eq("sent"))
        .select((br::contact_id, br::conversation_id, br::sent_at))
        .load(c)?;
    attribution(c, &sent, b.attribution_ms, &mut s)?;
    Ok(s)
}

fn attribution(
    c: &mut DbConn,
    sent: &[(String, String, Option<i64>)],
    window: i64,
    s: &mut Stats,
) -> Result<(), AppError> {
    use crate::broadcasts::content::attributed;
    for chunk in sent.chunks(500) {
        let convs: Vec<&str> = chunk.iter().map(|r| r.1.as_str()).collect();
        let ids: Vec<&str> = chunk.iter().map(|r| r.0.as_str()).collect();
        let replies: Vec<(String, i64)> = messages::table
            .filter(messages::conversation_id.eq_any(&convs))
            .filter(messages::sender_kind.eq(SenderKind::Guest.as_str()))
            .select((messages::conversation_id, messages::created_at))
            .load(c)?;
        let outs: Vec<(String, i64)> = contact_consent::table
            .filter(contact_consent::contact_id.eq_any(&ids))
            .filter(contact_consent::state.eq("opted_out"))
            .select((contact_consent::contact_id, contact_consent::changed_at))
            .load(c)?;
        let lead_rows: Vec<(String, i64, String, Option<i64>)> = leads::table
            .filter(leads::contact_id.eq_any(&ids))
            .select((
                leads::contact_id,
                leads::created_at,
                leads::stage,
                leads::closed_at,
            ))
            .load(c)?;
        for (contact, conv, at) in chunk {
            let Some(at) = *at else { continue };
            if replies
                .iter()
                .any(|(cv, t)| cv == conv && attributed(at, *t, window))
            {
                s.replied += 1;
            }
            if outs
                .iter()
                .any(|(ct, t)| ct == contact && attributed(at, *t, window))
            {
                s.opted_out += 1;
            }
            for (ct, created, stage, closed) in &lead_rows {
                if ct != contact {
                    continue;
                }
                if attributed(at, *created, window) {
                    s.leads_created += 1;
                }
                if stage == "won" && closed.is_some_and(|t| attributed(at, t, window)) {
                    s.leads_won += 1;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::db::schema::whatsapp_numbers;
    use crate::db::Db;
    use crate::store::conversations::{create_with_contact, NewGuestConversation};

    fn broadcast(id: &str, created_at: i64) -> BroadcastRow {
        BroadcastRow {
            id: id.into(),
            name: id.into(),
            number_id: "n1".into(),
            content: "{}".into(),
            segment_id: None,
            filter: "{}".into(),
            state: "sending".into(),
            send_at: None,
            time_zone: None,
            attribution_ms: 7 * crate::broadcasts::pacing::DAY_MS,
            recipients: 0,
            created_by: None,
            created_at,
            updated_at: created_at,
            started_at: Some(created_at),
            finished_at: None,
        }
    }

    /// Six recipients in every state a copy can reach: the list's grouped counters
    /// equal the same figures from the full analytics, and a broadcast without
    /// recipients reads as zeros.
    fn counters_match_stats(db: &Db) {
        let (team, _) = crate::testing::team_and_conversation(db, "bc");
        let mut c = db.conn().unwrap();
        diesel::insert_into(whatsapp_numbers::table)
            .values((
                whatsapp_numbers::id.eq("n1"),
                whatsapp_numbers::provider.eq("meta"),
                whatsapp_numbers::source.eq("admin"),
                whatsapp_numbers::label.eq("n1"),
                whatsapp_numbers::active.eq(true),
                whatsapp_numbers::insecure_unsigned.eq(false),
                whatsapp_numbers::created_at.eq(1_i64),
                whatsapp_numbers::updated_at.eq(1_i64),
            ))
            .execute(&mut **c)
            .unwrap();
        insert(&mut c, &broadcast("a", 1)).unwrap();
        insert(&mut c, &broadcast("empty", 2)).unwrap();
        let people: Vec<NewRecipient> = (0..6)
            .map(|_| {
                let conv = create_with_contact(
                    &mut c,
                    NewGuestConversation {
                        team_id: team.clone(),
                        channel: "widget".into(),
                        ..Default::default()
                    },
                )
                .unwrap();
                NewRecipient {
                    contact_id: conv.contact.id,
                    conversation_id: conv.id,
                }
            })
            .collect();
        assert_eq!(materialise(&mut c, "a", &people).unwrap(), 6);
        // 0: pending; 1: skipped; 2..6: sent, their copies read, delivered,
        // failed and only sent.
        mark_skipped(&mut c, "a", &people[1].contact_id, "opted_out").unwrap();
        for (i, status) in [(2, "read"), (3, "delivered"), (4, "failed"), (5, "sent")] {
            let p = &people[i];
            let id = format!("m{i}");
            diesel::insert_into(messages::table)
                .values((
                    messages::id.eq(&id),
                    messages::conversation_id.eq(&p.conversation_id),
                    messages::seq.eq(1_i64),
                    messages::direction.eq("out"),
                    messages::sender_kind.eq(SenderKind::Agent.as_str()),
                    messages::body.eq("hi"),
                    messages::status.eq(status),
                    messages::created_at.eq(10_i64),
                ))
                .execute(&mut **c)
                .unwrap();
            mark_sent(&mut c, "a", &p.contact_id, &id, 10).unwrap();
        }
        let rows = list(&mut c, 10).unwrap();
        let counters = counters(&mut c, &rows).unwrap();
        assert_eq!(counters.len(), 2, "every listed broadcast has counters");
        let a = &counters["a"];
        assert_eq!(
            *a,
            Counters {
                recipients: 6,
                pending: 1,
                sent: 4,
                delivered: 2,
                read: 1,
                failed: 1,
                skipped: 1,
            }
        );
        let row = get(&mut c, "a").unwrap();
        let full = stats(&mut c, &row).unwrap();
        assert_eq!(
            (
                full.recipients,
                full.pending,
                full.sent,
                full.delivered,
                full.read,
                full.failed
            ),
            (
                a.recipients,
                a.pending,
                a.sent,
                a.delivered,
                a.read,
                a.failed
            ),
            "the list and the detail agree"
        );
        assert_eq!(full.skipped.iter().map(|(_, n)| n).sum::<i64>(), a.skipped);
        assert_eq!(counters["empty"], Counters::default());
    }

    #[test]
    fn list_counters_match_the_full_stats_on_sqlite() {
        let (_scratch, db) = crate::testing::sqlite();
        counters_match_stats(&db);
    }

    #[test]
    fn list_counters_match_the_full_stats_on_postgres() {
        if let Some((_scratch, db)) = crate::testing::postgres() {
            counters_match_stats(&db);
        }
    }
}
