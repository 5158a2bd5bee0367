//! WhatsApp persistence: contacts and conversations keyed by WhatsApp id, and
//! delivery statuses (deduplicated, forward-only). The outbox's rows, which move a
//! message's status when it is sent, are `store::outbox`.
//!
//! Races are settled by unique indexes (migration `2026-11-21-000002_whatsapp`):
//! `contacts_wa_id`, `conversations_contact_number` (migration
//! `2026-12-05-100001_whatsapp_numbers`), `whatsapp_statuses`' primary
//! key and `messages_provider_id`. The loser of a race catches the unique violation
//! inside a savepoint and reads the winner's row.

use diesel::prelude::*;

use crate::channels::{DeliveryStatus, Provider, Sender, StatusError, StatusUpdate};
use crate::clock::now_ms;
use crate::db::schema::{contacts, conversations, messages, teams, whatsapp_statuses};
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
/// status was not a step forward. One statement: the UPDATE returns what the
/// change frame needs.
pub(super) fn advance(
    conn: &mut DbConn,
    key: MessageKey<'_>,
    status: DeliveryStatus,
    error: Option<&StatusError>,
) -> QueryResult<Option<StatusChange>> {
    let error_json = error.and_then(|e| serde_json::to_string(e).ok());
    let allowed = status.may_follow();
    let set = (
        messages::status.eq(status.as_str()),
        messages::status_error.eq(&error_json),
    );
    let changed = (messages::conversation_id, messages::id, messages::seq);
    let found: Option<(String, String, i64)> = match key {
        MessageKey::Id(id) => diesel::update(
            messages::table
                .filter(messages::id.eq(id))
                .filter(messages::status.eq_any(allowed)),
        )
        .set(set)
        .returning(changed)
        .get_result(conn)
        .optional()?,
        MessageKey::Provider(pid) => diesel::update(
            messages::table
                .filter(messages::provider_id.eq(pid))
                .filter(messages::status.eq_any(allowed)),
        )
        .set(set)
        .returning(changed)
        .get_result(conn)
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

/// How [`advance`] finds its message.
#[derive(Clone, Copy)]
pub(super) enum MessageKey<'a> {
    /// By the message's own id.
    Id(&'a str),
    /// By the provider's id as stored (`Provider::stored_id`).
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
