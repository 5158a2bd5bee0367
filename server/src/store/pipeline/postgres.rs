//! A group of passes on PostgreSQL: the claim in one statement (the leases, the
//! conversations' facts with their contacts' flags, and the messages after each
//! recorded progress), the progress in another.
//!
//! Why: when the pipeline keeps up, a pass holds one or two messages, so its fixed
//! statements are most of its cost; each is a round trip over TCP, which the webhook
//! profile showed is where the hub's time goes (`docs/performance.md`). A
//! data-modifying `WITH` runs the `UPDATE` once and the `SELECT` reads its
//! `RETURNING`, so the statement keeps the step-by-step claim's meaning; array
//! binds keep the text the same for any number of conversations, so it stays
//! prepared ([`Prepared`]).

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Text};

use super::{backlogs, claim_columns, Advance, Backlog, ClaimRow, Group};
use crate::db::prepared::Prepared;

/// [`super::claim`]'s leases and reads in one statement. Leaves out the
/// conversations whose lease was not taken here: one with no progress row yet,
/// one another node holds an unexpired lease on, one that is gone; the caller
/// takes the step-by-step path for those, which tells them apart.
///
/// Rows are locked in the order PostgreSQL meets them; two nodes claiming
/// overlapping groups could deadlock, which PostgreSQL breaks by failing one
/// statement — that pass fails and the sweep retries it.
///
/// # Errors
/// Database errors.
pub(super) fn claim(c: &mut PgConnection, group: &Group<'_>) -> QueryResult<Vec<Backlog>> {
    let statement = format!(
        "WITH taken AS ( \
           UPDATE pipeline_progress SET lease_owner = $2, lease_until = $3 \
           WHERE conversation_id = ANY($1) AND (lease_until < $4 OR lease_owner = $2) \
           RETURNING conversation_id, seq) \
         SELECT t.conversation_id, t.seq AS done, {} \
         FROM taken t \
         JOIN conversations c ON c.id = t.conversation_id \
         LEFT JOIN LATERAL ( \
           SELECT seq, sender_kind, sender_id, body, created_at FROM messages \
           WHERE conversation_id = t.conversation_id AND seq > t.seq ORDER BY seq LIMIT $5) m \
           ON TRUE \
         ORDER BY t.conversation_id, m.seq",
        claim_columns()
    );
    let rows: Vec<ClaimRow> = Prepared::new(statement)
        .bind::<Array<Text>, _>(group.conversation_ids)
        .bind::<Text, _>(group.owner)
        .bind::<BigInt, _>(group.lease.until)
        .bind::<BigInt, _>(group.lease.now)
        .bind::<BigInt, _>(group.limit)
        .load(c)?;
    Ok(backlogs(rows))
}

/// The conversation a progress write kept the lease of.
#[derive(QueryableByName)]
struct Kept {
    #[diesel(sql_type = Text)]
    conversation_id: String,
}

/// [`super::advance`] in one `UPDATE … FROM UNNEST(…)`.
///
/// # Errors
/// Database errors.
pub(super) fn advance(
    c: &mut PgConnection,
    owner: &str,
    passes: &[Advance],
) -> QueryResult<Vec<bool>> {
    const SQL: &str = "UPDATE pipeline_progress p SET seq = v.done, \
           lease_until = CASE WHEN v.release THEN 0 ELSE p.lease_until END \
         FROM UNNEST($1::text[], $2::bigint[], $3::bool[]) AS v(id, done, release) \
         WHERE p.conversation_id = v.id AND p.lease_owner = $4 \
         RETURNING p.conversation_id";
    let ids: Vec<&str> = passes.iter().map(|p| p.conversation_id.as_str()).collect();
    let done: Vec<i64> = passes.iter().map(|p| p.done).collect();
    let release: Vec<bool> = passes.iter().map(|p| p.release).collect();
    let kept: Vec<Kept> = Prepared::new(SQL)
        .bind::<Array<Text>, _>(ids)
        .bind::<Array<BigInt>, _>(done)
        .bind::<Array<Bool>, _>(release)
        .bind::<Text, _>(owner)
        .load(c)?;
    Ok(passes
        .iter()
        .map(|p| kept.iter().any(|k| k.conversation_id == p.conversation_id))
        .collect())
}
