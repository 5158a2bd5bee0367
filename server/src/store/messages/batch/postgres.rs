//! The batch append's PostgreSQL statements: array binds and `UNNEST`, so a batch
//! costs the same round trips however many messages it holds (the duplicate
//! lookup by idempotency key, the bump, the insert).
//!
//! Two shapes: inside the writer's transaction, the conversations' bump
//! ([`bump_all`]) and the rows ([`insert_rows`]) as two statements; and, for a batch
//! that needs nothing else in its transaction, both in one statement run on its own
//! ([`bump_and_insert`]). A statement is atomic by itself, so the second shape keeps
//! every guarantee of the first and saves three of its five round trips (BEGIN, the
//! separate INSERT, COMMIT) — the round trips, not the work in them, were most of
//! the writer's cost in the webhook bench (`docs/performance.md`).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};

use super::{BumpValues, ACTIVITY_STEP_MS};
use crate::db::prepared::Prepared;
use crate::store::messages::MessageRow;

/// The columns every insert names, in the order [`bind_rows`] binds them.
const COLUMNS: &str = "id, conversation_id, seq, direction, sender_kind, sender_id, \
     sender_name, body, client_msg_id, provider_id, status, created_at, attachment, status_error";

/// `UNNEST` of the fourteen row arrays bound from parameter `$first` on, as `r(…)`.
fn unnest_rows(first: usize) -> String {
    let types = [
        "text", "text", "bigint", "text", "text", "text", "text", "text", "text", "text", "text",
        "bigint", "text", "text",
    ];
    let params: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", first + i))
        .collect();
    format!("UNNEST({}) AS r({COLUMNS})", params.join(", "))
}

/// The conversations' bump: `FROM UNNEST(…) AS v` over parameters `$first…$first+4`,
/// `now` at `$first+5` and [`ACTIVITY_STEP_MS`] at `$first+6`.
fn bump_sql(first: usize) -> String {
    let p = |i: usize| format!("${}", first + i);
    format!(
        "UPDATE conversations AS c SET last_seq = c.last_seq + v.n, \
         last_message_at = {now}, last_message_preview = v.preview, \
         updated_at = CASE WHEN c.updated_at > {now} - {step} THEN c.updated_at ELSE {now} END, \
         last_message_sender = v.sender, \
         last_inbound_at = CASE WHEN v.inbound THEN {now} ELSE c.last_inbound_at END \
         FROM UNNEST({}::text[], {}::bigint[], {}::text[], {}::text[], {}::bool[]) \
         AS v(id, n, preview, sender, inbound) \
         WHERE c.id = v.id RETURNING c.id AS id, c.last_seq AS last_seq",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        now = p(5),
        step = p(6),
    )
}

/// Binds the fourteen row arrays, in [`COLUMNS`] order.
fn bind_rows<'a>(q: Prepared<'a>, rows: &[&MessageRow]) -> Prepared<'a> {
    let text = |f: fn(&MessageRow) -> &String| -> Vec<String> {
        rows.iter().map(|r| f(r).clone()).collect()
    };
    let opt = |f: fn(&MessageRow) -> &Option<String>| -> Vec<Option<String>> {
        rows.iter().map(|r| f(r).clone()).collect()
    };
    let int = |f: fn(&MessageRow) -> i64| -> Vec<i64> { rows.iter().map(|r| f(r)).collect() };
    q.bind::<Array<Text>, _>(text(|r| &r.id))
        .bind::<Array<Text>, _>(text(|r| &r.conversation_id))
        .bind::<Array<BigInt>, _>(int(|r| r.seq))
        .bind::<Array<Text>, _>(text(|r| &r.direction))
        .bind::<Array<Text>, _>(text(|r| &r.sender_kind))
        .bind::<Array<Nullable<Text>>, _>(opt(|r| &r.sender_id))
        .bind::<Array<Nullable<Text>>, _>(opt(|r| &r.sender_name))
        .bind::<Array<Text>, _>(text(|r| &r.body))
        .bind::<Array<Nullable<Text>>, _>(opt(|r| &r.client_msg_id))
        .bind::<Array<Nullable<Text>>, _>(opt(|r| &r.provider_id))
        .bind::<Array<Nullable<Text>>, _>(opt(|r| &r.status))
        .bind::<Array<BigInt>, _>(int(|r| r.created_at))
        .bind::<Array<Nullable<Text>>, _>(opt(|r| &r.attachment))
        .bind::<Array<Nullable<Text>>, _>(opt(|r| &r.status_error))
}

/// Binds the bump's five arrays, `now` and the activity step.
fn bind_bumps<'a>(q: Prepared<'a>, bumps: &[(&str, BumpValues)], now: i64) -> Prepared<'a> {
    q.bind::<Array<Text>, _>(
        bumps
            .iter()
            .map(|(id, _)| (*id).to_string())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<BigInt>, _>(bumps.iter().map(|(_, b)| b.n).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(
        bumps
            .iter()
            .map(|(_, b)| b.preview.clone())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Text>, _>(
        bumps
            .iter()
            .map(|(_, b)| b.sender.to_string())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Bool>, _>(bumps.iter().map(|(_, b)| b.inbound).collect::<Vec<_>>())
    .bind::<BigInt, _>(now)
    .bind::<BigInt, _>(ACTIVITY_STEP_MS)
}

/// Stored messages with one of the exact `(sender_kind, sender_id, client_msg_id)`
/// triples (the three slices are parallel): one join against `UNNEST`, one
/// unique-index probe per triple. Three independent `= ANY` lists made PostgreSQL
/// probe every combination (senders × keys), 47 ms a batch in the bench — the
/// writer's most expensive statement then.
pub(super) fn stored_by_client_keys(
    pg: &mut PgConnection,
    kinds: &[&str],
    senders: &[&str],
    keys: &[&str],
) -> QueryResult<Vec<MessageRow>> {
    Prepared::new(
        "SELECT m.* FROM messages m \
         JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS k(kind, sender, key) \
         ON m.sender_kind = k.kind AND m.sender_id = k.sender \
         AND m.client_msg_id = k.key",
    )
    .bind::<Array<Text>, _>(kinds)
    .bind::<Array<Text>, _>(senders)
    .bind::<Array<Text>, _>(keys)
    .load(pg)
}

#[derive(QueryableByName)]
struct Bumped {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    last_seq: i64,
}

/// Every conversation's bump in one statement; returns the new `last_seq` by id (a
/// missing conversation is simply absent).
pub(super) fn bump_all(
    pg: &mut PgConnection,
    bumps: &[(&str, BumpValues)],
    now: i64,
) -> QueryResult<HashMap<String, i64>> {
    let q = bind_bumps(Prepared::new(bump_sql(1)), bumps, now);
    let rows: Vec<Bumped> = q.load(pg)?;
    Ok(rows.into_iter().map(|r| (r.id, r.last_seq)).collect())
}

/// Inserts the rows in one `INSERT … SELECT FROM UNNEST(…)`.
pub(super) fn insert_rows(pg: &mut PgConnection, rows: &[&MessageRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO messages ({COLUMNS}) SELECT * FROM {}",
        unnest_rows(1)
    );
    bind_rows(Prepared::new(sql), rows).execute(pg)?;
    Ok(())
}

/// The bump and the insert as one statement, to run outside a transaction (it is
/// atomic by itself). Each row's `seq` holds how far *below* its conversation's new
/// `last_seq` it lands (0 for the last message), so the statement numbers the rows
/// from the bump's own `RETURNING`; returns the new `last_seq` by conversation id.
///
/// # Errors
/// A missing conversation leaves its rows without a seq, which the `NOT NULL`
/// column refuses, so the whole statement fails and nothing is stored — as does a
/// unique violation (a concurrent writer stored the same key first). The caller
/// then takes the transactional path, which tells the bad append apart.
pub(super) fn bump_and_insert(
    pg: &mut PgConnection,
    bumps: &[(&str, BumpValues)],
    rows: &[&MessageRow],
    now: i64,
) -> QueryResult<HashMap<String, i64>> {
    let sql = format!(
        "WITH bump AS ({bump}), \
         ins AS (INSERT INTO messages ({COLUMNS}) \
         SELECT r.id, r.conversation_id, b.last_seq - r.seq, r.direction, r.sender_kind, \
         r.sender_id, r.sender_name, r.body, r.client_msg_id, r.provider_id, r.status, \
         r.created_at, r.attachment, r.status_error \
         FROM {rows} LEFT JOIN bump b ON b.id = r.conversation_id) \
         SELECT id, last_seq FROM bump",
        bump = bump_sql(15),
        rows = unnest_rows(1),
    );
    let q = bind_bumps(bind_rows(Prepared::new(sql), rows), bumps, now);
    let bumped: Vec<Bumped> = q.load(pg)?;
    Ok(bumped.into_iter().map(|r| (r.id, r.last_seq)).collect())
}
