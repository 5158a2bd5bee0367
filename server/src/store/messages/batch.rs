//! The batch append: what the message writer runs for a whole batch, in a fixed
//! number of statements however many messages it holds — inside one transaction
//! ([`append_batch`]), or on PostgreSQL, for a batch that writes nothing but its
//! messages, as one combined statement that is atomic by itself and settles
//! duplicates by the unique indexes ([`append_one_statement`], `batch/postgres.rs`).
//!
//! Per batch: one duplicate lookup by `(sender_kind, sender_id, client_msg_id)` and one
//! by provider id (each only when some message carries such a key); per conversation in
//! the batch `last_seq = last_seq + n` (plus the reopen `UPDATE` when a message may
//! reopen it); then the rows. PostgreSQL bumps every conversation in one
//! `UPDATE … FROM UNNEST(…)` and inserts every row in one `INSERT … SELECT FROM
//! UNNEST(…)` of array binds, so a batch costs the same round trips as a single
//! message; SQLite runs its cached one-row statements per conversation and per row,
//! which are library calls there, not round trips.
//!
//! Duplicates are settled before numbering, so a resent message never takes a seq:
//! against stored rows (the lookups; in the one-statement path, the unique indexes,
//! whose violation stores nothing and sends the batch to the lookups) and inside the
//! batch (a key seen earlier in it).
//! The conversation rows are updated in id order, so two transactions that touch the
//! same conversations lock them in the same order.

use std::collections::{BTreeMap, HashMap};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::SqliteConnection;

use super::{existing, Appended, MessageRow, NewMessage};
use crate::clock::now_ms;
use crate::db::prepared::PreparedSqlite;
use crate::db::schema::{conversations, messages};
use crate::db::DbConn;
use crate::model::{preview, ConversationStatus, SenderKind};
use crate::store::outbox::{enqueue_all, Enqueue};

mod postgres;

/// How far behind a conversation's `updated_at` may fall before an append moves it,
/// in ms. `updated_at` is the one indexed column an append touches (the inbox list's
/// `(team_id, updated_at)` index); leaving it alone when it is this recent lets
/// PostgreSQL update the row in place (a HOT update, no index write) for every
/// further message in the same second. The inbox reads it only to cut its first
/// page; the client orders conversations by `last_message_at`, which stays exact.
pub const ACTIVITY_STEP_MS: i64 = 1_000;

/// The identity of a message for duplicate detection (guarantee 3 in `docs/protocol.md`):
/// the provider's message id, or the sender's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum DupKey {
    Provider(String),
    Client {
        sender_kind: String,
        sender_id: String,
        client_msg_id: String,
    },
}

impl DupKey {
    /// The keys a message or row is known by; a `client_msg_id` without a sender id is
    /// not one of them (NULL ids are distinct in the unique index too).
    fn of(
        provider_id: Option<&str>,
        sender_kind: &str,
        sender_id: Option<&str>,
        client_msg_id: Option<&str>,
    ) -> impl Iterator<Item = DupKey> {
        let provider = provider_id.map(|p| DupKey::Provider(p.to_string()));
        let client = sender_id.zip(client_msg_id).map(|(s, c)| DupKey::Client {
            sender_kind: sender_kind.to_string(),
            sender_id: s.to_string(),
            client_msg_id: c.to_string(),
        });
        provider.into_iter().chain(client)
    }

    fn of_message(m: &NewMessage) -> impl Iterator<Item = DupKey> {
        Self::of(
            m.provider_id.as_deref(),
            m.sender_kind.as_str(),
            m.sender_id.as_deref(),
            m.client_msg_id.as_deref(),
        )
    }

    fn of_row(r: &MessageRow) -> impl Iterator<Item = DupKey> {
        Self::of(
            r.provider_id.as_deref(),
            &r.sender_kind,
            r.sender_id.as_deref(),
            r.client_msg_id.as_deref(),
        )
    }
}

/// Where each message of a batch stands once duplicates are settled.
enum Slot {
    /// Already stored: the stored row.
    Stored(Box<MessageRow>),
    /// The same key as an earlier new message of this batch (its index).
    Earlier(usize),
    /// New; gets a seq.
    New,
}

/// Appends a batch of messages in order and returns one [`Appended`] per message, in
/// the same order. Must run inside a transaction: a failure anywhere undoes every seq
/// bump, which keeps seq gapless.
///
/// # Errors
/// `NotFound` when a conversation does not exist; a unique violation when a concurrent
/// writer stored the same key first; other database errors. Any error fails the whole
/// batch — the writer then redoes it append by append ([`super::append_in_savepoint`]).
pub fn append_batch(conn: &mut DbConn, batch: &[&NewMessage]) -> QueryResult<Vec<Appended>> {
    let slots = settle_duplicates(conn, batch)?;
    let now = now_ms();
    let by_conversation = new_by_conversation(&slots, batch);
    let numbered = number(conn, &by_conversation, batch, now)?;
    let mut rows: HashMap<usize, MessageRow> = HashMap::new();
    let mut reopened_at: Vec<usize> = Vec::new();
    for (conversation_id, members) in &by_conversation {
        let (first_seq, reopened) = numbered
            .get(*conversation_id)
            .copied()
            .ok_or(diesel::result::Error::NotFound)?;
        if reopened {
            if let Some(first) = members.iter().find(|&&i| batch[i].reopen) {
                reopened_at.push(*first);
            }
        }
        for (offset, &i) in (0_i64..).zip(members) {
            rows.insert(i, batch[i].row(first_seq + offset, now));
        }
    }
    let mut ordered: Vec<&MessageRow> = rows.values().collect();
    ordered.sort_by(|a, b| (&a.conversation_id, a.seq).cmp(&(&b.conversation_id, b.seq)));
    insert_rows(conn, &ordered)?;
    let orders: Vec<Enqueue<'_>> = batch
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let order = m.channel.as_ref()?.outbox.as_ref()?;
            Some(Enqueue {
                conversation_id: &m.conversation_id,
                message_id: Some(&rows.get(&i)?.id),
                order,
            })
        })
        .collect();
    enqueue_all(conn, &orders)?;
    answers(slots, &rows, &reopened_at)
}

/// Whether [`append_one_statement`] can take a batch: on PostgreSQL, when no message
/// may reopen its conversation and none carries a send order for the outbox — the
/// two appends that write more than the conversation row and the message.
pub fn fits_one_statement(conn: &DbConn, batch: &[&NewMessage]) -> bool {
    matches!(conn, DbConn::Postgresql(_))
        && batch
            .iter()
            .all(|m| !m.reopen && m.channel.as_ref().is_none_or(|c| c.outbox.is_none()))
}

/// The same append as [`append_batch`] for a batch that [`fits_one_statement`], run
/// *outside* a transaction: the conversations' bump and every row in one statement
/// (`batch/postgres.rs`), which is atomic by itself. One round trip instead of five
/// per batch; the rows and answers are the same.
///
/// Duplicates are settled optimistically: only repeats inside the batch are looked
/// for here, and a message already stored (a client's retry, a provider's
/// redelivery — rare) makes the statement fail on the unique index of its key
/// (`messages_provider_id`, `messages_sender_client_msg_id`), storing nothing. The
/// writer then redoes the batch append by append, each with its duplicate lookup,
/// so a retry is answered with the stored message as before. A key without a sender
/// id, which no unique index covers, is still looked up first.
///
/// # Errors
/// As [`append_batch`]; when the combined statement fails nothing of the batch was
/// stored, and the writer redoes it through the transactional path.
pub fn append_one_statement(
    conn: &mut DbConn,
    batch: &[&NewMessage],
) -> QueryResult<Vec<Appended>> {
    let slots = settle(conn, batch, &HashMap::new())?;
    let now = now_ms();
    let by_conversation = new_by_conversation(&slots, batch);
    let mut bumps = Vec::with_capacity(by_conversation.len());
    let mut rows: HashMap<usize, MessageRow> = HashMap::new();
    for (id, members) in &by_conversation {
        let bump = bump_of(batch, members).ok_or(diesel::result::Error::NotFound)?;
        // Until the statement returns, a row's seq is its distance below the
        // conversation's new last_seq: the last message lands on last_seq itself.
        for (&i, below) in members.iter().zip((0..bump.n).rev()) {
            rows.insert(i, batch[i].row(below, now));
        }
        bumps.push((*id, bump));
    }
    if !rows.is_empty() {
        // The writer only calls this when `fits_one_statement` holds; a call on
        // SQLite fails cleanly, and the writer's fallback takes the batch instead.
        let DbConn::Postgresql(pg) = conn else {
            return Err(diesel::result::Error::QueryBuilderError(
                "the one-statement append is PostgreSQL only".into(),
            ));
        };
        let ordered: Vec<&MessageRow> = rows.values().collect();
        let last_seqs = postgres::bump_and_insert(pg, &bumps, &ordered, now)?;
        for row in rows.values_mut() {
            let last = *last_seqs
                .get(&row.conversation_id)
                .ok_or(diesel::result::Error::NotFound)?;
            row.seq = last - row.seq;
        }
    }
    answers(slots, &rows, &[])
}

/// The new messages' indexes by conversation, in batch order; conversations in id
/// order, which is the order their rows are locked in.
fn new_by_conversation<'a>(
    slots: &[Slot],
    batch: &[&'a NewMessage],
) -> BTreeMap<&'a str, Vec<usize>> {
    let mut by_conversation: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, slot) in slots.iter().enumerate() {
        if matches!(slot, Slot::New) {
            by_conversation
                .entry(batch[i].conversation_id.as_str())
                .or_default()
                .push(i);
        }
    }
    by_conversation
}

/// One answer per message, in batch order, from the settled slots and the stored rows
/// (by batch index); `reopened_at` holds the messages that reopened their conversation.
fn answers(
    slots: Vec<Slot>,
    rows: &HashMap<usize, MessageRow>,
    reopened_at: &[usize],
) -> QueryResult<Vec<Appended>> {
    let mut out = Vec::with_capacity(slots.len());
    for (i, slot) in slots.into_iter().enumerate() {
        out.push(match slot {
            Slot::Stored(row) => Appended {
                message: *row,
                duplicate: true,
                reopened: false,
            },
            Slot::Earlier(first) => Appended {
                message: rows
                    .get(&first)
                    .cloned()
                    .ok_or(diesel::result::Error::NotFound)?,
                duplicate: true,
                reopened: false,
            },
            Slot::New => Appended {
                // A later duplicate in this batch may still need the row: clone it.
                message: rows
                    .get(&i)
                    .cloned()
                    .ok_or(diesel::result::Error::NotFound)?,
                duplicate: false,
                reopened: reopened_at.contains(&i),
            },
        });
    }
    Ok(out)
}

/// Decides, for each message, whether it is already stored, repeats an earlier message
/// of the batch, or is new.
fn settle_duplicates(conn: &mut DbConn, batch: &[&NewMessage]) -> QueryResult<Vec<Slot>> {
    let mut stored: HashMap<DupKey, MessageRow> = HashMap::new();
    for row in stored_matches(conn, batch)? {
        for key in DupKey::of_row(&row) {
            stored.insert(key, row.clone());
        }
    }
    settle(conn, batch, &stored)
}

/// [`settle_duplicates`] given the stored rows that share a key with the batch
/// (empty: only repeats inside the batch are found).
fn settle(
    conn: &mut DbConn,
    batch: &[&NewMessage],
    stored: &HashMap<DupKey, MessageRow>,
) -> QueryResult<Vec<Slot>> {
    let mut seen: HashMap<DupKey, usize> = HashMap::new();
    let mut slots = Vec::with_capacity(batch.len());
    for (i, m) in batch.iter().enumerate() {
        let keys: Vec<DupKey> = DupKey::of_message(m).collect();
        let slot = if let Some(row) = keys.iter().find_map(|k| stored.get(k)) {
            Slot::Stored(Box::new(row.clone()))
        } else if let Some(&first) = keys.iter().find_map(|k| seen.get(k)) {
            Slot::Earlier(first)
        } else if m.sender_id.is_none() && m.client_msg_id.is_some() {
            // Not covered by the batch lookup (no sender id to match on): the
            // one-message lookup, which matches `sender_id IS NULL`. Rare — the hub's
            // own senders always have ids.
            existing(conn, m)?.map_or(Slot::New, |row| Slot::Stored(Box::new(row)))
        } else {
            Slot::New
        };
        if matches!(slot, Slot::New) {
            for k in keys {
                seen.entry(k).or_insert(i);
            }
        }
        slots.push(slot);
    }
    Ok(slots)
}

/// Stored rows that share a key with a message of the batch.
///
/// On SQLite, one cached lookup per message ([`existing`], an index probe each):
/// SQLite has no round trips to save, and a list query (`IN (…)`) is a new statement
/// for every batch size, so it was parsed and planned again for nearly every batch
/// (7 % of the writer thread's time in a profile of the durable bench).
fn stored_matches(conn: &mut DbConn, batch: &[&NewMessage]) -> QueryResult<Vec<MessageRow>> {
    let pg = match conn {
        DbConn::Postgresql(pg) => pg,
        DbConn::Sqlite(_) => {
            let mut rows = Vec::new();
            // Keys without a sender id are looked up in `settle` (`sender_id IS NULL`).
            for m in batch
                .iter()
                .filter(|m| m.provider_id.is_some() || m.sender_id.is_some())
            {
                rows.extend(existing(conn, m)?);
            }
            return Ok(rows);
        }
    };
    let provider_ids: Vec<&str> = batch
        .iter()
        .filter_map(|m| m.provider_id.as_deref())
        .collect();
    let keyed: Vec<&&NewMessage> = batch
        .iter()
        .filter(|m| m.sender_id.is_some() && m.client_msg_id.is_some())
        .collect();
    let mut rows = Vec::new();
    if !provider_ids.is_empty() {
        rows.extend(
            messages::table
                .filter(messages::provider_id.eq_any(&provider_ids))
                .select(MessageRow::as_select())
                .load(pg)?,
        );
    }
    if !keyed.is_empty() {
        let kinds: Vec<&str> = keyed.iter().map(|m| m.sender_kind.as_str()).collect();
        let senders: Vec<&str> = keyed
            .iter()
            .filter_map(|m| m.sender_id.as_deref())
            .collect();
        let keys: Vec<&str> = keyed
            .iter()
            .filter_map(|m| m.client_msg_id.as_deref())
            .collect();
        // Exact triples, one index probe each.
        rows.extend(postgres::stored_by_client_keys(
            pg, &kinds, &senders, &keys,
        )?);
    }
    Ok(rows)
}

/// What one conversation's row gets from its messages in a batch.
#[derive(Debug, PartialEq)]
struct BumpValues {
    /// Seqs to take.
    n: i64,
    /// Preview of the last message.
    preview: String,
    /// Sender kind of the last message.
    sender: &'static str,
    /// Whether the contact wrote (moves `last_inbound_at`).
    inbound: bool,
}

/// The bump for one conversation's messages (`members`, in batch order, never empty).
fn bump_of(batch: &[&NewMessage], members: &[usize]) -> Option<BumpValues> {
    let last = batch[*members.last()?];
    Some(BumpValues {
        n: i64::try_from(members.len()).unwrap_or(i64::MAX),
        preview: preview(&last.body),
        sender: last.sender_kind.as_str(),
        inbound: members
            .iter()
            .any(|&i| batch[i].sender_kind == SenderKind::Guest),
    })
}

/// Takes the seqs of every conversation in the batch (and reopens those a message
/// may reopen): per conversation id, the first seq taken and whether it was reopened.
///
/// The bump is `last_seq = last_seq + n`, which takes the row lock in PostgreSQL: two
/// nodes appending to one conversation are serialised by the database, and the later
/// one sees the earlier one's seq. PostgreSQL bumps every conversation of the batch in
/// one `UPDATE … FROM UNNEST(…) RETURNING`; SQLite runs one cached `UPDATE … RETURNING`
/// per conversation (no round trips there).
fn number<'a>(
    conn: &mut DbConn,
    by_conversation: &BTreeMap<&'a str, Vec<usize>>,
    batch: &[&NewMessage],
    now: i64,
) -> QueryResult<HashMap<&'a str, (i64, bool)>> {
    let mut reopened = std::collections::HashSet::new();
    for (id, members) in by_conversation {
        if members.iter().any(|&i| batch[i].reopen) && reopen(conn, id)? {
            reopened.insert(*id);
        }
    }
    let mut bumps = Vec::with_capacity(by_conversation.len());
    for (id, members) in by_conversation {
        bumps.push((
            *id,
            bump_of(batch, members).ok_or(diesel::result::Error::NotFound)?,
        ));
    }
    let last_seqs: HashMap<String, i64> = match conn {
        DbConn::Postgresql(pg) => postgres::bump_all(pg, &bumps, now)?,
        DbConn::Sqlite(sqlite) => {
            let mut out = HashMap::new();
            for (id, b) in &bumps {
                out.insert((*id).to_string(), bump_one(sqlite, id, b, now)?);
            }
            out
        }
    };
    let mut numbered = HashMap::with_capacity(bumps.len());
    for (id, b) in &bumps {
        let last = *last_seqs.get(*id).ok_or(diesel::result::Error::NotFound)?;
        numbered.insert(*id, (last - b.n + 1, reopened.contains(id)));
    }
    Ok(numbered)
}

/// Reopens a resolved conversation; true when it was resolved.
fn reopen(conn: &mut DbConn, conversation_id: &str) -> QueryResult<bool> {
    Ok(diesel::update(
        conversations::table
            .filter(conversations::id.eq(conversation_id))
            .filter(conversations::status.eq(ConversationStatus::Resolved.as_str())),
    )
    .set(conversations::status.eq(ConversationStatus::Open.as_str()))
    .execute(conn)?
        == 1)
}

/// One conversation's bump on SQLite; returns its new `last_seq`. Hand-written so it
/// stays prepared ([`PreparedSqlite`]): diesel re-prepares every UPDATE it builds.
/// The same change as PostgreSQL's `postgres::bump_all`: `last_seq` up by `n`,
/// `updated_at` moved only when [`ACTIVITY_STEP_MS`] old, the latest message's
/// preview, and `last_inbound_at` only for a contact's message.
///
/// # Errors
/// `NotFound` for a missing conversation; other database errors.
fn bump_one(
    conn: &mut SqliteConnection,
    conversation_id: &str,
    b: &BumpValues,
    now: i64,
) -> QueryResult<i64> {
    const SQL: &str = "UPDATE conversations SET last_seq = last_seq + $1, \
         updated_at = CASE WHEN updated_at > $2 THEN updated_at ELSE $3 END, \
         last_message_at = $3, last_message_preview = $4, last_message_sender = $5, \
         last_inbound_at = COALESCE($6, last_inbound_at) \
         WHERE id = $7 RETURNING last_seq";
    let bumped: LastSeq = PreparedSqlite::new(SQL)
        .bind::<BigInt, _>(b.n)
        .bind::<BigInt, _>(now - ACTIVITY_STEP_MS)
        .bind::<BigInt, _>(now)
        .bind::<Text, _>(b.preview.as_str())
        .bind::<Text, _>(b.sender)
        .bind::<Nullable<BigInt>, _>(b.inbound.then_some(now))
        .bind::<Text, _>(conversation_id)
        .get_result(conn)?;
    Ok(bumped.last_seq)
}

/// A bumped conversation's new `last_seq`.
#[derive(QueryableByName)]
struct LastSeq {
    #[diesel(sql_type = BigInt)]
    last_seq: i64,
}

/// Inserts the new rows: one `UNNEST` statement on PostgreSQL, the cached one-row
/// statement per row on SQLite.
fn insert_rows(conn: &mut DbConn, rows: &[&MessageRow]) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => {
            for row in rows {
                diesel::insert_into(messages::table)
                    .values(*row)
                    .execute(c)?;
            }
            Ok(())
        }
        DbConn::Postgresql(pg) => postgres::insert_rows(pg, rows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: SenderKind, body: &str) -> NewMessage {
        NewMessage {
            conversation_id: "c".into(),
            sender_kind: kind,
            sender_id: Some("s".into()),
            sender_name: None,
            body: body.into(),
            client_msg_id: None,
            provider_id: None,
            reopen: false,
            channel: None,
        }
    }

    #[test]
    fn a_conversation_bump_takes_every_seq_and_shows_the_last_message() {
        let (a, b) = (
            message(SenderKind::Guest, "hello"),
            message(SenderKind::Agent, "hi, how can I help?"),
        );
        let batch = [&a, &b];
        let bump = bump_of(&batch, &[0, 1]).unwrap();
        assert_eq!(
            bump,
            BumpValues {
                n: 2,
                preview: "hi, how can I help?".into(),
                sender: "agent",
                inbound: true
            }
        );
        assert!(
            !bump_of(&batch, &[1]).unwrap().inbound,
            "only the contact's messages move last_inbound_at"
        );
        assert_eq!(bump_of(&batch, &[]), None);
    }

    #[test]
    fn keys_need_a_sender_id_for_the_idempotency_key() {
        let keys: Vec<_> = DupKey::of(Some("wamid.1"), "guest", None, Some("k")).collect();
        assert_eq!(keys, vec![DupKey::Provider("wamid.1".into())]);
        let keys: Vec<_> = DupKey::of(None, "guest", Some("g"), Some("k")).collect();
        assert_eq!(
            keys,
            vec![DupKey::Client {
                sender_kind: "guest".into(),
                sender_id: "g".into(),
                client_msg_id: "k".into()
            }]
        );
    }
}
