//! WhatsApp persistence: contacts and conversations keyed by WhatsApp id, delivery
//! statuses (deduplicated, forward-only), and the durable outbox.
//!
//! Races are settled by unique indexes (migration `2026-11-21-000002_whatsapp`):
//! `contacts_wa_id`, `conversations_contact_number` (migration
//! `2026-12-05-100001_whatsapp_numbers`), `whatsapp_statuses`' primary
//! key and `messages_provider_id`. The loser of a race catches the unique violation
//! inside a savepoint and reads the winner's row.

use diesel::prelude::*;

use crate::channels::{DeliveryStatus, Provider, Sender, StatusError, StatusUpdate};
use crate::clock::now_ms;
use crate::db::schema::{contacts, conversations, messages, outbox, teams, whatsapp_statuses};
use crate::db::{is_unique_violation, DbConn};
use crate::error::AppError;
use crate::model::{new_id, ConversationStatus};

#[derive(Insertable)]
#[diesel(table_name = contacts)]
struct NewWaContact<'a> {
    id: String,
    name: Option<&'a str>,
    phone: Option<&'a str>,
    wa_id: &'a str,
    created_at: i64,
    updated_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = conversations)]
struct NewWaConversation<'a> {
    id: String,
    team_id: &'a str,
    contact_id: &'a str,
    channel: &'a str,
    status: &'a str,
    source: Option<&'a str>,
    created_at: i64,
    updated_at: i64,
    number_id: &'a str,
}

fn contact_by_wa_id(
    conn: &mut DbConn,
    wa_id: &str,
) -> QueryResult<Option<(String, Option<String>)>> {
    contacts::table
        .filter(contacts::wa_id.eq(wa_id))
        .select((contacts::id, contacts::name))
        .first(conn)
        .optional()
}

fn conversation_of(
    conn: &mut DbConn,
    contact_id: &str,
    number_id: &str,
) -> QueryResult<Option<String>> {
    conversations::table
        .filter(conversations::contact_id.eq(contact_id))
        .filter(conversations::number_id.eq(number_id))
        .select(conversations::id)
        .first(conn)
        .optional()
}

/// The WhatsApp number (inbox) a message came in on, and where its new
/// conversations land.
#[derive(Clone, Debug)]
pub struct Inbox<'a> {
    /// The number (`whatsapp_numbers.id`).
    pub number_id: &'a str,
    /// Its team; `None` (an env number whose team did not exist at start-up):
    /// the team with slug `team_slug`.
    pub team_id: Option<&'a str>,
    /// `WHATSAPP_TEAM`, used when `team_id` is `None`.
    pub team_slug: &'a str,
}

/// This node's memory of conversations [`resolve_conversation`] found, by number and
/// WhatsApp id, so a known customer's webhook costs no database round trip before
/// its message is appended.
///
/// Safe to keep without expiry: a contact's WhatsApp id and its conversation on a
/// number never change once created (unique indexes; nothing deletes or merges
/// them). The profile name is remembered too, so a changed name still goes through
/// [`resolve_conversation`], which stores it.
#[derive(Debug, Default)]
pub struct KnownConversations {
    map: parking_lot::Mutex<std::collections::HashMap<(String, String), Known>>,
}

#[derive(Debug)]
struct Known {
    conversation_id: String,
    name: Option<String>,
}

impl KnownConversations {
    /// Entries kept before the memory starts again from empty (about 20 MB).
    const MAX: usize = 100_000;

    /// The conversation of `sender` on `number_id`, when known here and the
    /// sender's profile name (if sent) is the one last stored.
    pub fn get(&self, number_id: &str, sender: &Sender) -> Option<String> {
        let map = self.map.lock();
        let known = map.get(&(number_id.to_string(), sender.wa_id.clone()))?;
        (sender.name.is_none() || sender.name == known.name).then(|| known.conversation_id.clone())
    }

    /// Remembers what [`resolve_conversation`] returned for `sender`.
    pub fn remember(&self, number_id: &str, sender: &Sender, conversation_id: &str) {
        let mut map = self.map.lock();
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(
            (number_id.to_string(), sender.wa_id.clone()),
            Known {
                conversation_id: conversation_id.to_string(),
                name: sender.name.clone(),
            },
        );
    }
}

/// The conversation a customer's message belongs to: the contact with this
/// WhatsApp id (created, with its E.164 phone and profile name, on first contact;
/// the name refreshed when the profile name changed) and its one conversation on
/// this number (created open in the number's team on first contact; the same
/// customer writing to two numbers has two conversations). A resolved
/// conversation is returned as is: appending the message reopens it.
///
/// # Errors
/// [`AppError::NotFound`] when the team does not exist; database errors.
pub fn resolve_conversation(
    conn: &mut DbConn,
    provider: Provider,
    sender: &Sender,
    inbox: &Inbox<'_>,
) -> Result<String, AppError> {
    let now = now_ms();
    let contact_id = match contact_by_wa_id(conn, &sender.wa_id)? {
        Some((id, name)) => {
            if sender.name.is_some() && name != sender.name {
                diesel::update(contacts::table.find(&id))
                    .set((
                        contacts::name.eq(&sender.name),
                        contacts::updated_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            id
        }
        None => {
            let row = NewWaContact {
                id: new_id(),
                name: sender.name.as_deref(),
                phone: sender.phone.as_deref(),
                wa_id: &sender.wa_id,
                created_at: now,
                updated_at: now,
            };
            let inserted =
                conn.transaction(|c| diesel::insert_into(contacts::table).values(&row).execute(c));
            match inserted {
                Ok(_) => row.id,
                Err(e) if is_unique_violation(&e) => contact_by_wa_id(conn, &sender.wa_id)?
                    .map(|(id, _)| id)
                    .ok_or_else(|| {
                        AppError::internal("contact vanished after a unique violation")
                    })?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let channel = provider.channel();
    if let Some(id) = conversation_of(conn, &contact_id, inbox.number_id)? {
        return Ok(id);
    }
    let team_id: String = match inbox.team_id {
        Some(id) => id.to_string(),
        None => teams::table
            .filter(teams::slug.eq(inbox.team_slug))
            .select(teams::id)
            .first(conn)
            .optional()?
            .ok_or_else(|| {
                AppError::NotFound(format!("no team {:?} (WHATSAPP_TEAM)", inbox.team_slug))
            })?,
    };
    let row = NewWaConversation {
        id: new_id(),
        team_id: &team_id,
        contact_id: &contact_id,
        channel,
        status: ConversationStatus::Open.as_str(),
        source: Some(channel),
        created_at: now,
        updated_at: now,
        number_id: inbox.number_id,
    };
    let inserted = conn.transaction(|c| {
        diesel::insert_into(conversations::table)
            .values(&row)
            .execute(c)
    });
    match inserted {
        Ok(_) => Ok(row.id),
        Err(e) if is_unique_violation(&e) => conversation_of(conn, &contact_id, inbox.number_id)?
            .ok_or_else(|| AppError::internal("conversation vanished after a unique violation")),
        Err(e) => Err(e.into()),
    }
}

/// A delivery status that changed a stored message; published as a `status` frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChange {
    /// Conversation of the message.
    pub conversation_id: String,
    /// Message id.
    pub message_id: String,
    /// Its seq.
    pub seq: i64,
    /// The status now stored.
    pub status: DeliveryStatus,
    /// Reason, for `failed`.
    pub error: Option<StatusError>,
}

/// Moves a message's status forward to `status` if its current status allows it
/// (see [`DeliveryStatus::may_follow`]); returns the change, or `None` when the
/// status was not a step forward.
fn advance(
    conn: &mut DbConn,
    filter_id: MessageKey<'_>,
    status: DeliveryStatus,
    error: Option<&StatusError>,
) -> QueryResult<Option<StatusChange>> {
    let error_json = error.and_then(|e| serde_json::to_string(e).ok());
    let allowed = status.may_follow();
    let n = match filter_id {
        MessageKey::Id(id) => diesel::update(
            messages::table
                .filter(messages::id.eq(id))
                .filter(messages::status.eq_any(allowed)),
        )
        .set((
            messages::status.eq(status.as_str()),
            messages::status_error.eq(&error_json),
        ))
        .execute(conn)?,
        MessageKey::Provider(pid) => diesel::update(
            messages::table
                .filter(messages::provider_id.eq(pid))
                .filter(messages::status.eq_any(allowed)),
        )
        .set((
            messages::status.eq(status.as_str()),
            messages::status_error.eq(&error_json),
        ))
        .execute(conn)?,
    };
    if n == 0 {
        return Ok(None);
    }
    let q = messages::table.select((messages::conversation_id, messages::id, messages::seq));
    let found: Option<(String, String, i64)> = match filter_id {
        MessageKey::Id(id) => q.filter(messages::id.eq(id)).first(conn).optional()?,
        MessageKey::Provider(pid) => q
            .filter(messages::provider_id.eq(pid))
            .first(conn)
            .optional()?,
    };
    Ok(
        found.map(|(conversation_id, message_id, seq)| StatusChange {
            conversation_id,
            message_id,
            seq,
            status,
            error: error.cloned(),
        }),
    )
}

#[derive(Clone, Copy)]
enum MessageKey<'a> {
    Id(&'a str),
    Provider(&'a str),
}

/// Records a provider's status report: once per (message, status) — a replay
/// changes nothing and returns `None` — and moves the message forward when the
/// report is a step forward. A report for a message whose provider id is not yet
/// stored (the webhook overtook the outbox's commit) stays parked in
/// `whatsapp_statuses` and is applied by [`mark_sent`].
///
/// # Errors
/// Database errors.
pub fn apply_status(
    conn: &mut DbConn,
    update: &StatusUpdate,
) -> Result<Option<StatusChange>, AppError> {
    let pid = update.provider.stored_id(&update.provider_id);
    conn.transaction::<_, AppError, _>(|conn| {
        let inserted = conn.transaction(|c| {
            diesel::insert_into(whatsapp_statuses::table)
                .values((
                    whatsapp_statuses::provider_id.eq(&pid),
                    whatsapp_statuses::status.eq(update.status.as_str()),
                    whatsapp_statuses::error_code.eq(update.error.as_ref().map(|e| e.code)),
                    whatsapp_statuses::error_title
                        .eq(update.error.as_ref().map(|e| e.title.as_str())),
                    whatsapp_statuses::created_at.eq(now_ms()),
                ))
                .execute(c)
        });
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        Ok(advance(
            conn,
            MessageKey::Provider(&pid),
            update.status,
            update.error.as_ref(),
        )?)
    })
}

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
    let now = now_ms();
    let row = OutboxRow {
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
    };
    diesel::insert_into(outbox::table)
        .values(&row)
        .execute(conn)?;
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

/// Claims up to `limit` due rows for `lease_ms`: each with a conditional UPDATE that
/// only succeeds while the row is pending and unlocked (or its lease ran out), so
/// two workers — on one node or several — never hold the same row at once.
///
/// # Errors
/// Database errors.
pub fn claim_due(conn: &mut DbConn, lease_ms: i64, limit: i64) -> Result<Vec<OutboxRow>, AppError> {
    let now = now_ms();
    let unlocked = outbox::locked_until
        .is_null()
        .or(outbox::locked_until.lt(now));
    let candidates: Vec<String> = outbox::table
        .filter(outbox::state.eq("pending"))
        .filter(outbox::next_attempt_at.le(now))
        .filter(unlocked)
        .order(outbox::next_attempt_at.asc())
        .select(outbox::id)
        .limit(limit)
        .load(conn)?;
    let mut claimed = Vec::new();
    for id in candidates {
        let n = diesel::update(
            outbox::table
                .filter(outbox::id.eq(&id))
                .filter(outbox::state.eq("pending"))
                .filter(
                    outbox::locked_until
                        .is_null()
                        .or(outbox::locked_until.lt(now)),
                ),
        )
        .set((
            outbox::locked_until.eq(now + lease_ms),
            outbox::updated_at.eq(now),
        ))
        .execute(conn)?;
        if n == 1 {
            claimed.push(
                outbox::table
                    .find(&id)
                    .select(OutboxRow::as_select())
                    .first(conn)?,
            );
        }
    }
    Ok(claimed)
}

/// Records a successful send: the row is done, the message gets the provider's id
/// and status `sent`, then any status that arrived before this commit (parked by
/// [`apply_status`]) is applied. Returns the message's status change, if any.
///
/// # Errors
/// Database errors.
pub fn mark_sent(
    conn: &mut DbConn,
    row: &OutboxRow,
    provider_id: Option<&str>,
) -> Result<Option<StatusChange>, AppError> {
    let provider = Provider::parse(&row.provider).unwrap_or(Provider::Meta);
    conn.transaction::<_, AppError, _>(|conn| {
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
            let parked: Vec<(String, Option<i64>, Option<String>)> = whatsapp_statuses::table
                .filter(whatsapp_statuses::provider_id.eq(pid))
                .select((
                    whatsapp_statuses::status,
                    whatsapp_statuses::error_code,
                    whatsapp_statuses::error_title,
                ))
                .load(conn)?;
            let furthest = parked
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
                .max_by_key(|(s, _)| s.rank());
            if let Some((status, error)) = furthest {
                if let Some(later) =
                    advance(conn, MessageKey::Id(message_id), status, error.as_ref())?
                {
                    change = Some(later);
                }
            }
        }
        Ok(change)
    })
}

/// Schedules another attempt at `next_attempt_at` (epoch ms), releasing the lease.
///
/// # Errors
/// Database errors.
pub fn retry_later(
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
///
/// # Errors
/// Database errors.
pub fn mark_failed(
    conn: &mut DbConn,
    row: &OutboxRow,
    error: &StatusError,
) -> Result<Option<StatusChange>, AppError> {
    conn.transaction::<_, AppError, _>(|conn| {
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
    })
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

/// Loads the recipient, the sending number and the content of an outbox row (two
/// primary-key reads).
///
/// # Errors
/// [`AppError::NotFound`] when the conversation is gone or not a WhatsApp one;
/// database errors.
pub fn send_context(conn: &mut DbConn, row: &OutboxRow) -> Result<SendContext, AppError> {
    let (wa_id, channel, number_id): (Option<String>, String, Option<String>) =
        conversations::table
            .inner_join(contacts::table)
            .filter(conversations::id.eq(&row.conversation_id))
            .select((
                contacts::wa_id,
                conversations::channel,
                conversations::number_id,
            ))
            .first(conn)
            .optional()?
            .ok_or_else(|| {
                AppError::NotFound(format!("no conversation {}", row.conversation_id))
            })?;
    let number = crate::store::numbers::number_of(&channel, number_id)?;
    let (body, attachment, sender) = match &row.message_id {
        Some(id) => {
            let (b, a, s): (String, Option<String>, Option<String>) = messages::table
                .find(id)
                .select((messages::body, messages::attachment, messages::sender_id))
                .first(conn)?;
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

/// Provider ids (unprefixed) of the contact's messages up to `seq`, newest first,
/// at most `limit`: what a read receipt acknowledges.
///
/// # Errors
/// Database errors.
pub fn inbound_provider_ids(
    conn: &mut DbConn,
    conversation_id: &str,
    up_to_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<String>, AppError> {
    let mut q = messages::table
        .filter(messages::conversation_id.eq(conversation_id))
        .filter(messages::direction.eq("in"))
        .filter(messages::provider_id.is_not_null())
        .select(messages::provider_id)
        .order(messages::seq.desc())
        .limit(limit)
        .into_boxed();
    if let Some(seq) = up_to_seq {
        q = q.filter(messages::seq.le(seq));
    }
    Ok(q.load::<Option<String>>(conn)?
        .into_iter()
        .flatten()
        .collect())
}
