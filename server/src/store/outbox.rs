//! The `outbox` table: the durable queue of sends to WhatsApp providers
//! (`crate::outbox` drives it). A row is inserted in the transaction that stores
//! its message (the writer's), claimed with a lease, and closed with the send's
//! outcome, which also moves the message's delivery status.
//!
//! Everything here works on a pass's rows together, because a broadcast puts
//! thousands of rows through it: the writer inserts a batch's rows in one
//! multi-row INSERT ([`enqueue_all`]); a pass claims its rows in one read and one
//! conditional UPDATE ([`claim_due`]), loads what it sends in two reads
//! ([`send_contexts`]) and records every outcome in one transaction ([`record`]).
//! Per row, that was one INSERT, three statements to claim, two reads and a
//! transaction of five.

use std::collections::HashMap;

use diesel::prelude::*;

use super::whatsapp::{advance, MessageKey, StatusChange};
use crate::channels::{DeliveryStatus, Provider, StatusError};
use crate::clock::now_ms;
use crate::db::schema::{contacts, conversations, messages, outbox, whatsapp_statuses};
use crate::db::{insert_rows, DbConn, INSERT_CHUNK};
use crate::error::AppError;
use crate::model::new_id;

/// Insert form of an outbox row (the writer inserts it with its message).
#[derive(Debug, Clone)]
pub struct NewOutbox {
    /// Provider to send through.
    pub provider: Provider,
    /// `text`, `media`, `read` or `template`.
    pub kind: &'static str,
    /// Kind-specific JSON (`read`: `{"message_ids": [...]}`; others `{}`: the
    /// message row is the source of truth).
    pub payload: String,
    /// Not to be sent before this time (epoch ms): a broadcast copy's send slot
    /// (`broadcasts::pacing`); `None` sends as soon as possible.
    pub not_before: Option<i64>,
}

/// A row of `outbox`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    /// Row id.
    pub id: String,
    /// The message it sends (`None` for read receipts).
    pub message_id: Option<String>,
    /// Its conversation.
    pub conversation_id: String,
    /// `meta` or `waha`.
    pub provider: String,
    /// `text`, `media`, `read` or `template`.
    pub kind: String,
    /// Kind-specific JSON.
    pub payload: String,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    /// Send attempts so far.
    pub attempts: i32,
    /// Not before this time (epoch ms).
    pub next_attempt_at: i64,
    /// Claimed by a worker until this time (epoch ms).
    pub locked_until: Option<i64>,
    /// Last transient error.
    pub last_error: Option<String>,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

impl OutboxRow {
    /// A pending row for `new` in `conversation_id`, sending `message_id`, due now
    /// (`now`, epoch ms) or at its `not_before`.
    fn pending(conversation_id: &str, message_id: Option<&str>, new: &NewOutbox, now: i64) -> Self {
        Self {
            id: new_id(),
            message_id: message_id.map(str::to_string),
            conversation_id: conversation_id.to_string(),
            provider: new.provider.as_str().into(),
            kind: new.kind.into(),
            payload: new.payload.clone(),
            state: "pending".into(),
            attempts: 0,
            next_attempt_at: new.not_before.map_or(now, |t| t.max(now)),
            locked_until: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// One send order for [`enqueue_all`]: the conversation, the message it sends
/// (`None` for a read receipt) and the order.
#[derive(Debug, Clone, Copy)]
pub struct Enqueue<'a> {
    /// Conversation id.
    pub conversation_id: &'a str,
    /// Message id.
    pub message_id: Option<&'a str>,
    /// What to send.
    pub order: &'a NewOutbox,
}

/// Inserts an outbox row, due now. Called inside the transaction that stores the
/// message (`message_id`), so a message is never stored without its send order.
///
/// # Errors
/// Database errors.
pub fn enqueue(
    conn: &mut DbConn,
    conversation_id: &str,
    message_id: Option<&str>,
    new: &NewOutbox,
) -> QueryResult<()> {
    enqueue_all(
        conn,
        &[Enqueue {
            conversation_id,
            message_id,
            order: new,
        }],
    )
}

/// Inserts one row per order in multi-row INSERTs of at most [`INSERT_CHUNK`]
/// rows: the writer's batch of broadcast copies costs one statement, not one per
/// copy. Call inside the transaction that stores the messages.
///
/// # Errors
/// Database errors.
pub fn enqueue_all(conn: &mut DbConn, orders: &[Enqueue<'_>]) -> QueryResult<()> {
    let now = now_ms();
    for chunk in orders.chunks(INSERT_CHUNK) {
        let rows: Vec<OutboxRow> = chunk
            .iter()
            .map(|o| OutboxRow::pending(o.conversation_id, o.message_id, o.order, now))
            .collect();
        insert_rows!(conn, outbox::table, &rows)?;
    }
    Ok(())
}

/// Outbox rows still to send (`pending`, due or not), across nodes: the backlog
/// `/metrics` reports.
///
/// # Errors
/// Database errors.
pub fn pending_count(conn: &mut DbConn) -> Result<i64, AppError> {
    Ok(outbox::table
        .filter(outbox::state.eq("pending"))
        .count()
        .get_result(conn)?)
}

/// When the next pending row falls due after now (epoch ms), if any: the worker sleeps
/// until then rather than a whole poll period, so paced broadcast copies leave at
/// their slots instead of in bursts at each poll.
///
/// # Errors
/// Database errors.
pub fn next_due(conn: &mut DbConn) -> Result<Option<i64>, AppError> {
    // Rows already due but not claimable (another node holds them) wait for the
    // poll, so a held row cannot spin this worker.
    Ok(outbox::table
        .filter(outbox::state.eq("pending"))
        .filter(outbox::next_attempt_at.gt(now_ms()))
        .select(diesel::dsl::min(outbox::next_attempt_at))
        .first::<Option<i64>>(conn)?)
}

/// Claims up to `limit` due rows for `lease_ms`, earliest due first: one read
/// of the candidates, then one conditional UPDATE of them all that takes a row
/// only while it is still pending and unlocked (or its lease ran out), and
/// returns what it took. PostgreSQL re-checks that condition on a row another
/// transaction changed meanwhile, so two workers — on one node or several — never
/// hold the same row at once.
///
/// # Errors
/// Database errors.
pub fn claim_due(conn: &mut DbConn, lease_ms: i64, limit: i64) -> Result<Vec<OutboxRow>, AppError> {
    let now = now_ms();
    let free = || {
        outbox::state.eq("pending").and(
            outbox::locked_until
                .is_null()
                .or(outbox::locked_until.lt(now)),
        )
    };
    let due: Vec<String> = outbox::table
        .filter(free())
        .filter(outbox::next_attempt_at.le(now))
        .order(outbox::next_attempt_at.asc())
        .select(outbox::id)
        .limit(limit)
        .load(conn)?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let mut claimed: Vec<OutboxRow> =
        diesel::update(outbox::table.filter(outbox::id.eq_any(&due)).filter(free()))
            .set((
                outbox::locked_until.eq(now + lease_ms),
                outbox::updated_at.eq(now),
            ))
            .returning(outbox::all_columns)
            .get_results(conn)?;
    claimed.sort_by_key(|r| r.next_attempt_at);
    Ok(claimed)
}

/// What became of one claimed row's send.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    /// The provider took it; its message id, when it gave one.
    Sent {
        /// The provider's id, unprefixed.
        provider_id: Option<String>,
    },
    /// A transient failure: another attempt at `at` (epoch ms).
    Retry {
        /// Next attempt, epoch ms.
        at: i64,
        /// Why this one failed.
        error: String,
    },
    /// Given up: the row and its message fail with `error`.
    Failed {
        /// The provider's (or our) reason.
        error: StatusError,
    },
}

/// What [`record`] stored: the status changes to push to agents, and the rows
/// whose outcome could not be stored (their lease runs out and they are sent
/// again: at-least-once).
#[derive(Debug, Default)]
pub struct Recorded {
    /// Committed status changes.
    pub changes: Vec<StatusChange>,
    /// Row ids and why their outcome was not stored.
    pub failed: Vec<(String, AppError)>,
}

/// Records a pass's outcomes in one transaction; if that fails, each alone, so
/// one row the database refuses does not lose the others' outcomes.
pub fn record(conn: &mut DbConn, outcomes: &[(OutboxRow, SendOutcome)]) -> Recorded {
    let together = conn.transaction::<_, AppError, _>(|c| {
        let mut changes = Vec::new();
        for (row, outcome) in outcomes {
            changes.extend(record_one(c, row, outcome)?);
        }
        Ok(changes)
    });
    match together {
        Ok(changes) => Recorded {
            changes,
            failed: Vec::new(),
        },
        Err(e) if outcomes.len() == 1 => Recorded {
            changes: Vec::new(),
            failed: vec![(outcomes[0].0.id.clone(), e)],
        },
        Err(_) => {
            let mut recorded = Recorded::default();
            for (row, outcome) in outcomes {
                match conn.transaction(|c| record_one(c, row, outcome)) {
                    Ok(change) => recorded.changes.extend(change),
                    Err(e) => recorded.failed.push((row.id.clone(), e)),
                }
            }
            recorded
        }
    }
}

fn record_one(
    conn: &mut DbConn,
    row: &OutboxRow,
    outcome: &SendOutcome,
) -> Result<Option<StatusChange>, AppError> {
    match outcome {
        SendOutcome::Sent { provider_id } => mark_sent(conn, row, provider_id.as_deref()),
        SendOutcome::Retry { at, error } => retry_later(conn, row, *at, error).map(|()| None),
        SendOutcome::Failed { error } => mark_failed(conn, row, error),
    }
}

/// Records a successful send: the row is done, the message gets the provider's id
/// and status `sent`, then any status that arrived before this commit (parked by
/// `store::whatsapp::apply_status`) is applied. Returns the message's status
/// change, if any. Run inside [`record`]'s transaction.
fn mark_sent(
    conn: &mut DbConn,
    row: &OutboxRow,
    provider_id: Option<&str>,
) -> Result<Option<StatusChange>, AppError> {
    let provider = Provider::parse(&row.provider).unwrap_or(Provider::Meta);
    diesel::update(outbox::table.find(&row.id))
        .set((
            outbox::state.eq("sent"),
            outbox::attempts.eq(row.attempts + 1),
            outbox::locked_until.eq(None::<i64>),
            outbox::updated_at.eq(now_ms()),
        ))
        .execute(conn)?;
    let Some(message_id) = row.message_id.as_deref() else {
        return Ok(None);
    };
    let stored = provider_id.map(|p| provider.stored_id(p));
    if let Some(pid) = &stored {
        diesel::update(messages::table.find(message_id))
            .set(messages::provider_id.eq(pid))
            .execute(conn)?;
    }
    let mut change = advance(conn, MessageKey::Id(message_id), DeliveryStatus::Sent, None)?;
    if let Some(pid) = &stored {
        if let Some((status, error)) = furthest_parked(conn, pid)? {
            if let Some(later) = advance(conn, MessageKey::Id(message_id), status, error.as_ref())?
            {
                change = Some(later);
            }
        }
    }
    Ok(change)
}

/// The furthest status the provider reported for `pid` before its send was
/// recorded (parked in `whatsapp_statuses`), with its error for `failed`.
fn furthest_parked(
    conn: &mut DbConn,
    pid: &str,
) -> QueryResult<Option<(DeliveryStatus, Option<StatusError>)>> {
    let parked: Vec<(String, Option<i64>, Option<String>)> = whatsapp_statuses::table
        .filter(whatsapp_statuses::provider_id.eq(pid))
        .select((
            whatsapp_statuses::status,
            whatsapp_statuses::error_code,
            whatsapp_statuses::error_title,
        ))
        .load(conn)?;
    Ok(parked
        .into_iter()
        .filter_map(|(s, code, title)| {
            DeliveryStatus::parse(&s).map(|s| {
                let error = (s == DeliveryStatus::Failed).then(|| StatusError {
                    code: code.unwrap_or(0),
                    title: title.unwrap_or_else(|| "failed".into()),
                });
                (s, error)
            })
        })
        .max_by_key(|(s, _)| s.rank()))
}

/// Schedules another attempt at `next_attempt_at` (epoch ms), releasing the lease.
fn retry_later(
    conn: &mut DbConn,
    row: &OutboxRow,
    next_attempt_at: i64,
    error: &str,
) -> Result<(), AppError> {
    diesel::update(outbox::table.find(&row.id))
        .set((
            outbox::attempts.eq(row.attempts + 1),
            outbox::next_attempt_at.eq(next_attempt_at),
            outbox::locked_until.eq(None::<i64>),
            outbox::last_error.eq(error),
            outbox::updated_at.eq(now_ms()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Gives up on a row: it becomes `failed`, and its message `failed` with `error`.
fn mark_failed(
    conn: &mut DbConn,
    row: &OutboxRow,
    error: &StatusError,
) -> Result<Option<StatusChange>, AppError> {
    diesel::update(outbox::table.find(&row.id))
        .set((
            outbox::state.eq("failed"),
            outbox::attempts.eq(row.attempts + 1),
            outbox::locked_until.eq(None::<i64>),
            outbox::last_error.eq(&error.title),
            outbox::updated_at.eq(now_ms()),
        ))
        .execute(conn)?;
    match row.message_id.as_deref() {
        Some(id) => Ok(advance(
            conn,
            MessageKey::Id(id),
            DeliveryStatus::Failed,
            Some(error),
        )?),
        None => Ok(None),
    }
}

/// What the outbox needs to send one row.
#[derive(Debug, Clone)]
pub struct SendContext {
    /// The contact's WhatsApp id (see `channels::Sender::wa_id`).
    pub wa_id: Option<String>,
    /// The number the conversation came in on: replies go out from it.
    pub number: crate::channels::numbers::NumberId,
    /// Message body (text sends; media caption fallback).
    pub body: Option<String>,
    /// Message attachment JSON (media sends).
    pub attachment: Option<String>,
    /// A broadcast copy: waits on the number's pace (`broadcasts::pacer`).
    pub paced: bool,
}

/// A conversation's recipient and number: (WhatsApp id, channel, number id).
type Recipient = (Option<String>, String, Option<String>);

/// A message's content: (body, attachment JSON, sender id).
type Content = (String, Option<String>, Option<String>);

/// Loads, for every row in order, its recipient, sending number and content, in
/// two reads for all of them. A row's own result is [`AppError::NotFound`] when
/// its conversation or message is gone or the conversation is not a WhatsApp one.
///
/// # Errors
/// Database errors (for all rows).
pub fn send_contexts(
    conn: &mut DbConn,
    rows: &[OutboxRow],
) -> Result<Vec<Result<SendContext, AppError>>, AppError> {
    let mut conversation_ids: Vec<&str> = rows.iter().map(|r| r.conversation_id.as_str()).collect();
    conversation_ids.sort_unstable();
    conversation_ids.dedup();
    let recipients: HashMap<String, Recipient> = conversations::table
        .inner_join(contacts::table)
        .filter(conversations::id.eq_any(&conversation_ids))
        .select((
            conversations::id,
            contacts::wa_id,
            conversations::channel,
            conversations::number_id,
        ))
        .load::<(String, Option<String>, String, Option<String>)>(conn)?
        .into_iter()
        .map(|(id, wa_id, channel, number)| (id, (wa_id, channel, number)))
        .collect();
    let message_ids: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.message_id.as_deref())
        .collect();
    let contents: HashMap<String, Content> = if message_ids.is_empty() {
        HashMap::new()
    } else {
        messages::table
            .filter(messages::id.eq_any(&message_ids))
            .select((
                messages::id,
                messages::body,
                messages::attachment,
                messages::sender_id,
            ))
            .load::<(String, String, Option<String>, Option<String>)>(conn)?
            .into_iter()
            .map(|(id, body, attachment, sender)| (id, (body, attachment, sender)))
            .collect()
    };
    Ok(rows
        .iter()
        .map(|row| context_of(row, &recipients, &contents))
        .collect())
}

fn context_of(
    row: &OutboxRow,
    recipients: &HashMap<String, Recipient>,
    contents: &HashMap<String, Content>,
) -> Result<SendContext, AppError> {
    let (wa_id, channel, number_id) = recipients
        .get(&row.conversation_id)
        .cloned()
        .ok_or_else(|| AppError::NotFound(format!("no conversation {}", row.conversation_id)))?;
    let number = crate::store::numbers::number_of(&channel, number_id)?;
    let (body, attachment, sender) = match &row.message_id {
        Some(id) => {
            let (b, a, s) = contents
                .get(id)
                .cloned()
                .ok_or_else(|| AppError::NotFound(format!("no message {id}")))?;
            (Some(b), a, s)
        }
        None => (None, None, None),
    };
    Ok(SendContext {
        wa_id,
        number,
        body,
        attachment,
        paced: sender.is_some_and(|s| s.starts_with(crate::broadcasts::SENDER_PREFIX)),
    })
}
