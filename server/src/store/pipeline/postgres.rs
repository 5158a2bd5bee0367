//! A pass's claim on PostgreSQL in one statement: the lease, the conversation's
//! facts with its contact's flags, and the messages after the recorded progress.
//!
//! Why: when the pipeline keeps up, a pass holds one or two messages, so its fixed
//! statements are most of its cost; each is a round trip over TCP, which the webhook
//! profile showed is where the hub's time goes (`docs/performance.md`). A
//! data-modifying `WITH` runs the `UPDATE` once and the `SELECT` reads its
//! `RETURNING`, so the statement keeps the three-step claim's meaning.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use super::{flags_sql, Backlog, ContactFlags, PassMessage};
use crate::db::prepared::Prepared;
use crate::store::leads::ConversationFacts;

/// One row of the claim: the pass's facts, repeated, and one message (none when
/// nothing is after the progress).
#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    done: i64,
    #[diesel(sql_type = Text)]
    team_id: String,
    #[diesel(sql_type = Text)]
    contact_id: String,
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = Nullable<Text>)]
    source: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    preferred_agent_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    assignee_id: Option<String>,
    #[diesel(sql_type = Bool)]
    lead_known: bool,
    #[diesel(sql_type = Bool)]
    runs_waiting: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    sender_kind: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    sender_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    body: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    created_at: Option<i64>,
}

/// [`super::claim`] in one statement. `None` when the lease was not taken here: the
/// conversation has no progress row yet, or another node holds an unexpired lease,
/// or the conversation is gone; the caller then takes the step-by-step path, which
/// tells those apart.
///
/// # Errors
/// Database errors.
pub(super) fn claim(
    c: &mut PgConnection,
    conversation_id: &str,
    owner: &str,
    now: i64,
    until: i64,
    limit: i64,
) -> QueryResult<Option<Backlog>> {
    let (lead_known, runs_waiting) = flags_sql("c");
    let statement = format!(
        "WITH taken AS ( \
           UPDATE pipeline_progress SET lease_owner = $2, lease_until = $3 \
           WHERE conversation_id = $1 AND (lease_until < $4 OR lease_owner = $2) \
           RETURNING seq) \
         SELECT t.seq AS done, c.team_id, c.contact_id, c.channel, c.source, \
           c.preferred_agent_id, c.assignee_id, \
           {lead_known} AS lead_known, {runs_waiting} AS runs_waiting, \
           m.seq, m.sender_kind, m.sender_id, m.body, m.created_at \
         FROM taken t \
         JOIN conversations c ON c.id = $1 \
         LEFT JOIN LATERAL ( \
           SELECT seq, sender_kind, sender_id, body, created_at FROM messages \
           WHERE conversation_id = $1 AND seq > t.seq ORDER BY seq LIMIT $5) m ON TRUE \
         ORDER BY m.seq"
    );
    let rows: Vec<Row> = Prepared::new(statement)
        .bind::<Text, _>(conversation_id)
        .bind::<Text, _>(owner)
        .bind::<BigInt, _>(until)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(limit)
        .load(c)?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let conversation = ConversationFacts {
        team_id: first.team_id.clone(),
        contact_id: first.contact_id.clone(),
        channel: first.channel.clone(),
        source: first.source.clone(),
        preferred_agent_id: first.preferred_agent_id.clone(),
        assignee_id: first.assignee_id.clone(),
    };
    let contact = ContactFlags {
        lead_known: first.lead_known,
        runs_waiting: first.runs_waiting,
    };
    let done = first.done;
    let messages = rows
        .into_iter()
        .filter_map(|r| {
            Some(PassMessage {
                seq: r.seq?,
                sender_kind: r.sender_kind?,
                sender_id: r.sender_id,
                body: r.body?,
                created_at: r.created_at?,
            })
        })
        .collect();
    Ok(Some(Backlog {
        conversation,
        contact,
        done,
        messages,
    }))
}
