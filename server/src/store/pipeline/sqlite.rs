//! A group of passes on SQLite: the leases in one transaction, then one cached read
//! per conversation; the progress in one transaction.
//!
//! Why: on SQLite a statement is a library call, but each write outside a
//! transaction is its own commit under the one write lock, and diesel re-prepares
//! every UPDATE it builds. The webhook profile (`docs/performance.md`) had a pass's
//! two writes, one message each, at a quarter of the hub's CPU. Here a group of
//! conversations shares two commits, and every statement stays prepared
//! ([`PreparedSqlite`]).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::sqlite::SqliteConnection;

use super::{backlogs, claim_columns, Advance, Backlog, ClaimRow, Group};
use crate::db::prepared::PreparedSqlite;
use crate::db::{write_transaction, DbConn};

/// A lease's recorded progress.
#[derive(QueryableByName)]
struct Done {
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

/// [`super::claim`] for the conversations that already have a progress row and no
/// live lease of another node's; the caller takes the others step by step.
///
/// # Errors
/// Database errors.
pub(super) fn claim(c: &mut DbConn, group: &Group<'_>) -> QueryResult<Vec<Backlog>> {
    const LEASE: &str = "UPDATE pipeline_progress SET lease_owner = $1, lease_until = $2 \
         WHERE conversation_id = $3 AND (lease_until < $4 OR lease_owner = $1) RETURNING seq";
    let taken: Vec<(&String, i64)> = write_transaction(c, |c| {
        let DbConn::Sqlite(c) = c else {
            return Err(not_sqlite());
        };
        let mut taken = Vec::with_capacity(group.conversation_ids.len());
        for id in group.conversation_ids {
            let done: Option<Done> = PreparedSqlite::new(LEASE)
                .bind::<Text, _>(group.owner)
                .bind::<BigInt, _>(group.lease.until)
                .bind::<Text, _>(id.as_str())
                .bind::<BigInt, _>(group.lease.now)
                .get_result(c)
                .optional()?;
            if let Some(done) = done {
                taken.push((id, done.seq));
            }
        }
        Ok(taken)
    })?;
    let DbConn::Sqlite(c) = c else {
        return Err(not_sqlite());
    };
    let mut out = Vec::with_capacity(taken.len());
    for (id, done) in taken {
        out.extend(read(c, id, done, group.limit)?);
    }
    Ok(out)
}

/// One leased conversation's facts and its messages after `done`, in one cached
/// statement (the same columns as PostgreSQL's claim).
fn read(
    c: &mut SqliteConnection,
    conversation_id: &str,
    done: i64,
    limit: i64,
) -> QueryResult<Vec<Backlog>> {
    let statement = format!(
        "SELECT c.id AS conversation_id, CAST($2 AS BIGINT) AS done, {} \
         FROM conversations c \
         LEFT JOIN ( \
           SELECT seq, sender_kind, sender_id, body, created_at FROM messages \
           WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3) m ON 1 \
         WHERE c.id = $1 ORDER BY m.seq",
        claim_columns()
    );
    let rows: Vec<ClaimRow> = PreparedSqlite::new(statement)
        .bind::<Text, _>(conversation_id)
        .bind::<BigInt, _>(done)
        .bind::<BigInt, _>(limit)
        .load(c)?;
    if rows.is_empty() {
        // Leased, but the conversation is gone.
        return Err(diesel::result::Error::NotFound);
    }
    Ok(backlogs(rows))
}

/// What a SQLite-only statement answers on another connection: never, since
/// [`super::claim`] and [`super::advance`] only come here for SQLite.
fn not_sqlite() -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError("a SQLite statement on another backend".into())
}

/// [`super::advance`] in one transaction of cached UPDATEs.
///
/// # Errors
/// Database errors.
pub(super) fn advance(c: &mut DbConn, owner: &str, passes: &[Advance]) -> QueryResult<Vec<bool>> {
    const SQL: &str = "UPDATE pipeline_progress SET seq = $1, \
         lease_until = CASE WHEN $2 THEN 0 ELSE lease_until END \
         WHERE conversation_id = $3 AND lease_owner = $4";
    write_transaction(c, |c| {
        let DbConn::Sqlite(c) = c else {
            return Err(not_sqlite());
        };
        passes
            .iter()
            .map(|p| {
                let n = PreparedSqlite::new(SQL)
                    .bind::<BigInt, _>(p.done)
                    .bind::<Bool, _>(p.release)
                    .bind::<Text, _>(p.conversation_id.as_str())
                    .bind::<Text, _>(owner)
                    .execute(c)?;
                Ok(n == 1)
            })
            .collect()
    })
}
