//! Messages: the appends that assign `seq` (run by the writer: [`batch::append_batch`]
//! for a whole batch inside its transaction, [`batch::append_one_statement`] for a
//! plain PostgreSQL batch in one statement, [`append`] one by one when a batch has to
//! be redone) and history pages.

pub mod batch;

use diesel::prelude::*;

use crate::clock::rfc3339;
use crate::db::schema::messages;
use crate::db::{is_unique_violation, DbConn};
use crate::error::AppError;
use crate::model::{new_id, AttachmentView, MessageView, SenderKind, SenderView};

/// A row of `messages`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    /// Message id.
    pub id: String,
    /// Conversation id.
    pub conversation_id: String,
    /// Position in the conversation.
    pub seq: i64,
    /// `in`, `out` or `internal`.
    pub direction: String,
    /// `guest`, `agent`, `bot`, `system`.
    pub sender_kind: String,
    /// Contact or agent id.
    pub sender_id: Option<String>,
    /// Display name at send time.
    pub sender_name: Option<String>,
    /// Text as sent.
    pub body: String,
    /// Sender's idempotency key.
    pub client_msg_id: Option<String>,
    /// Provider message id (WhatsApp wamid, WAHA id).
    pub provider_id: Option<String>,
    /// Delivery status for provider channels.
    pub status: Option<String>,
    /// Commit time, epoch ms.
    pub created_at: i64,
    /// Media reference and metadata, JSON of [`crate::channels::Attachment`].
    pub attachment: Option<String>,
    /// Provider's reason for a `failed` delivery, JSON of [`crate::channels::StatusError`].
    pub status_error: Option<String>,
}

impl MessageRow {
    /// The wire view.
    pub fn view(self) -> MessageView {
        let id = self.id.clone();
        MessageView {
            conversation_id: self.conversation_id,
            seq: self.seq,
            id: self.id,
            sender: SenderView {
                kind: SenderKind::parse_lossy(&self.sender_kind),
                id: self.sender_id,
                name: self.sender_name,
            },
            body: self.body,
            created_at: rfc3339(self.created_at),
            client_msg_id: self.client_msg_id,
            attachment: self
                .attachment
                .as_deref()
                .and_then(|a| serde_json::from_str::<crate::channels::Attachment>(a).ok())
                .map(|a| AttachmentView::of(&id, a)),
            status: self.status,
            error: self
                .status_error
                .as_deref()
                .and_then(|e| serde_json::from_str(e).ok()),
        }
    }
}

/// A message to append.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Target conversation.
    pub conversation_id: String,
    /// Author kind.
    pub sender_kind: SenderKind,
    /// Author id (contact or agent).
    pub sender_id: Option<String>,
    /// Author display name.
    pub sender_name: Option<String>,
    /// Validated body.
    pub body: String,
    /// Idempotency key.
    pub client_msg_id: Option<String>,
    /// Provider id, for channel adapters.
    pub provider_id: Option<String>,
    /// Reopen a resolved conversation (a new message from the contact).
    pub reopen: bool,
    /// Channel extras (WhatsApp): attachment, initial delivery status, outbox order.
    pub channel: Option<Box<ChannelAppend>>,
}

impl NewMessage {
    /// The row this message becomes at `seq`, committed at `now` (epoch ms), with a
    /// fresh id.
    fn row(&self, seq: i64, now: i64) -> MessageRow {
        MessageRow {
            id: new_id(),
            conversation_id: self.conversation_id.clone(),
            seq,
            direction: self.sender_kind.direction().into(),
            sender_kind: self.sender_kind.as_str().into(),
            sender_id: self.sender_id.clone(),
            sender_name: self.sender_name.clone(),
            body: self.body.clone(),
            client_msg_id: self.client_msg_id.clone(),
            provider_id: self.provider_id.clone(),
            status: self.channel.as_ref().and_then(|c| c.status.clone()),
            created_at: now,
            attachment: self.channel.as_ref().and_then(|c| c.attachment.clone()),
            status_error: None,
        }
    }
}

/// What a channel message stores besides the plain message, in the same transaction.
#[derive(Debug, Clone, Default)]
pub struct ChannelAppend {
    /// JSON of [`crate::channels::Attachment`].
    pub attachment: Option<String>,
    /// Initial delivery status (`pending` for outbound WhatsApp).
    pub status: Option<String>,
    /// The send order, inserted with the message (durable outbox).
    pub outbox: Option<crate::store::outbox::NewOutbox>,
}

/// The result of an append.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The stored message (the earlier one for a duplicate).
    pub message: MessageRow,
    /// True when the idempotency key or provider id was already stored.
    pub duplicate: bool,
    /// True when this append reopened a resolved conversation.
    pub reopened: bool,
}

/// The stored message with the same provider id, or the same `client_msg_id` from the
/// same sender. Both lookups are plain (not boxed) queries so the database driver can
/// cache their prepared statements; they run for every append.
pub(super) fn existing(conn: &mut DbConn, m: &NewMessage) -> QueryResult<Option<MessageRow>> {
    if let Some(pid) = &m.provider_id {
        let found = messages::table
            .filter(messages::provider_id.eq(pid))
            .select(MessageRow::as_select())
            .first(conn)
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    let Some(cid) = &m.client_msg_id else {
        return Ok(None);
    };
    let same_key = messages::table
        .filter(messages::sender_kind.eq(m.sender_kind.as_str()))
        .filter(messages::client_msg_id.eq(cid))
        .select(MessageRow::as_select());
    match &m.sender_id {
        Some(sid) => same_key
            .filter(messages::sender_id.eq(sid))
            .first(conn)
            .optional(),
        None => same_key
            .filter(messages::sender_id.is_null())
            .first(conn)
            .optional(),
    }
}

/// Appends one message, or returns the already stored message for a repeated
/// `client_msg_id` or provider id: [`batch::append_batch`] for a batch of one (used
/// when a batch is redone append by append). Must run inside a transaction so that a
/// failed insert also undoes the seq bump — that is what keeps seq gapless.
///
/// # Errors
/// `NotFound` when the conversation does not exist; a unique violation when a
/// concurrent duplicate won (the caller retries the lookup); other database errors.
pub fn append(conn: &mut DbConn, m: &NewMessage) -> QueryResult<Appended> {
    batch::append_batch(conn, &[m])?
        .pop()
        .ok_or(diesel::result::Error::NotFound)
}

/// Runs [`append`] in a savepoint; when a concurrent writer stored the same
/// `client_msg_id`/provider id first (unique violation), returns that message as a
/// duplicate instead of failing.
///
/// # Errors
/// Database errors other than the duplicate race; `NotFound` for a missing conversation.
pub fn append_in_savepoint(conn: &mut DbConn, m: &NewMessage) -> QueryResult<Appended> {
    match conn.transaction(|c| append(c, m)) {
        Err(e)
            if is_unique_violation(&e)
                && (m.client_msg_id.is_some() || m.provider_id.is_some()) =>
        {
            match existing(conn, m)? {
                Some(row) => Ok(Appended {
                    message: row,
                    duplicate: true,
                    reopened: false,
                }),
                None => Err(e),
            }
        }
        other => other,
    }
}

/// Which page of history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// Messages with seq greater than this, ascending.
    After(i64),
    /// Messages with seq lower than this, the closest ones, returned ascending.
    Before(i64),
    /// The newest messages, returned ascending.
    Latest,
}

/// A page of messages in ascending seq order, and whether more exist beyond it in the
/// paging direction.
///
/// # Errors
/// Database errors.
pub fn page(
    conn: &mut DbConn,
    conversation_id: &str,
    page: Page,
    limit: i64,
) -> Result<(Vec<MessageRow>, bool), AppError> {
    let base = messages::table
        .filter(messages::conversation_id.eq(conversation_id))
        .select(MessageRow::as_select())
        .limit(limit + 1);
    let mut rows: Vec<MessageRow> = match page {
        Page::After(after) => base
            .filter(messages::seq.gt(after))
            .order(messages::seq.asc())
            .load(conn)?,
        Page::Before(before) => base
            .filter(messages::seq.lt(before))
            .order(messages::seq.desc())
            .load(conn)?,
        Page::Latest => base.order(messages::seq.desc()).load(conn)?,
    };
    let has_more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    if !matches!(page, Page::After(_)) {
        rows.reverse();
    }
    Ok((rows, has_more))
}
