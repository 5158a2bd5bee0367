//! The inbound pipeline's durable progress (`pipeline_progress`): how far each
//! conversation's committed messages have been through every stage, and which node may
//! work on it now (a lease, like the outbox's). The pipeline itself is
//! [`crate::pipeline`].

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::db::schema::{messages, pipeline_progress};
use crate::db::{is_unique_violation, DbConn};
use crate::store::leads::ConversationFacts;
use crate::store::messages::MessageRow;

/// A conversation's backlog as seen by the lease holder: the seq done so far and the
/// next committed messages after it (ascending, at most the asked-for number).
#[derive(Debug)]
pub struct Backlog {
    /// The conversation, as the stages read it (team, contact, channel, …): read
    /// once per pass rather than once per message.
    pub conversation: ConversationFacts,
    /// Every message up to this seq has been through the pipeline.
    pub done: i64,
    /// Messages after `done`, ascending by seq.
    pub messages: Vec<MessageRow>,
}

/// Takes (or renews) the lease on a conversation's pipeline for `owner` until
/// `until` (epoch ms) and reads its next `limit` messages. `None` when another node
/// holds an unexpired lease.
///
/// Three statements in the common case: the conditional `UPDATE … RETURNING seq` that
/// takes the lease, the team and contact, and the read. A conversation's first pass inserts its row instead.
///
/// # Errors
/// Database errors.
pub fn claim(
    c: &mut DbConn,
    conversation_id: &str,
    owner: &str,
    now: i64,
    until: i64,
    limit: i64,
) -> QueryResult<Option<Backlog>> {
    let taken: Option<i64> = diesel::update(
        pipeline_progress::table.find(conversation_id).filter(
            pipeline_progress::lease_until
                .lt(now)
                .or(pipeline_progress::lease_owner.eq(owner)),
        ),
    )
    .set((
        pipeline_progress::lease_owner.eq(owner),
        pipeline_progress::lease_until.eq(until),
    ))
    .returning(pipeline_progress::seq)
    .get_result(c)
    .optional()?;
    let done = match taken {
        Some(done) => done,
        None => {
            let inserted = diesel::insert_into(pipeline_progress::table)
                .values((
                    pipeline_progress::conversation_id.eq(conversation_id),
                    pipeline_progress::seq.eq(0_i64),
                    pipeline_progress::lease_owner.eq(owner),
                    pipeline_progress::lease_until.eq(until),
                ))
                .execute(c);
            match inserted {
                Ok(_) => 0,
                // The row exists, so the lease is someone else's.
                Err(e) if is_unique_violation(&e) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    };
    let conversation =
        ConversationFacts::find(c, conversation_id)?.ok_or(diesel::result::Error::NotFound)?;
    let messages = messages::table
        .filter(messages::conversation_id.eq(conversation_id))
        .filter(messages::seq.gt(done))
        .order(messages::seq.asc())
        .limit(limit)
        .select(MessageRow::as_select())
        .load(c)?;
    Ok(Some(Backlog {
        conversation,
        done,
        messages,
    }))
}

/// Records that every message up to `seq` has been through the pipeline, and with
/// `release` gives the lease back in the same statement. Only while `owner` holds the
/// lease: the holder read the recorded seq when it took the lease and only moves it
/// forward from there, so progress never moves back. Returns false when the lease was
/// lost — the caller stops, the new holder goes on from the recorded seq.
///
/// # Errors
/// Database errors.
pub fn advance(
    c: &mut DbConn,
    conversation_id: &str,
    owner: &str,
    seq: i64,
    release: bool,
) -> QueryResult<bool> {
    let target = pipeline_progress::table
        .find(conversation_id)
        .filter(pipeline_progress::lease_owner.eq(owner));
    let n = if release {
        diesel::update(target)
            .set((
                pipeline_progress::seq.eq(seq),
                pipeline_progress::lease_until.eq(0_i64),
            ))
            .execute(c)?
    } else {
        diesel::update(target)
            .set(pipeline_progress::seq.eq(seq))
            .execute(c)?
    };
    Ok(n == 1)
}

/// Gives the lease back, so another node may take the conversation at once.
///
/// # Errors
/// Database errors.
pub fn release(c: &mut DbConn, conversation_id: &str, owner: &str) -> QueryResult<()> {
    diesel::update(
        pipeline_progress::table
            .find(conversation_id)
            .filter(pipeline_progress::lease_owner.eq(owner)),
    )
    .set(pipeline_progress::lease_until.eq(0_i64))
    .execute(c)?;
    Ok(())
}

#[derive(QueryableByName)]
struct Pending {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Conversations with committed messages the pipeline has not finished and no live
/// lease on them (at most `limit`): what a node picks up at start and on each sweep —
/// the work of a node that stopped, or of a pass that failed.
///
/// # Errors
/// Database errors.
pub fn stalled(c: &mut DbConn, now: i64, limit: i64) -> QueryResult<Vec<String>> {
    let rows: Vec<Pending> = diesel::sql_query(
        "SELECT c.id AS id FROM conversations c \
         LEFT JOIN pipeline_progress p ON p.conversation_id = c.id \
         WHERE c.last_seq > COALESCE(p.seq, 0) AND COALESCE(p.lease_until, 0) < $1 \
         ORDER BY c.last_message_at LIMIT $2",
    )
    .bind::<BigInt, _>(now)
    .bind::<BigInt, _>(limit)
    .load(c)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SenderKind;
    use crate::store::messages::{append, NewMessage};

    #[test]
    fn progress_leases_and_the_sweep_see_what_is_left() {
        let (_scratch, db) = crate::testing::sqlite();
        let (team_id, conv) = crate::testing::team_and_conversation(&db, "t");
        let mut c = db.conn().unwrap();
        assert!(
            stalled(&mut c, 1_000, 10).unwrap().is_empty(),
            "nothing committed yet"
        );
        for key in ["a", "b"] {
            let m = NewMessage {
                conversation_id: conv.clone(),
                sender_kind: SenderKind::Guest,
                sender_id: Some("g".into()),
                sender_name: None,
                body: key.into(),
                client_msg_id: Some(key.into()),
                provider_id: None,
                reopen: false,
                channel: None,
            };
            crate::db::write_transaction(&mut c, |c| append(c, &m)).unwrap();
        }
        assert_eq!(stalled(&mut c, 1_000, 10).unwrap(), vec![conv.clone()]);

        let backlog = claim(&mut c, &conv, "node-1", 1_000, 61_000, 10)
            .unwrap()
            .unwrap();
        assert_eq!((backlog.done, backlog.messages.len()), (0, 2));
        assert_eq!(backlog.conversation.team_id, team_id);
        // Leased: the other node neither claims it nor sees it in its sweep.
        assert!(claim(&mut c, &conv, "node-2", 2_000, 62_000, 10)
            .unwrap()
            .is_none());
        assert!(stalled(&mut c, 2_000, 10).unwrap().is_empty());
        assert!(advance(&mut c, &conv, "node-1", 1, false).unwrap());
        assert!(
            !advance(&mut c, &conv, "node-2", 2, false).unwrap(),
            "not its lease"
        );
        // node-1 stops without releasing: once the lease runs out node-2 goes on
        // from the recorded progress.
        assert_eq!(stalled(&mut c, 70_000, 10).unwrap(), vec![conv.clone()]);
        let backlog = claim(&mut c, &conv, "node-2", 70_000, 130_000, 10)
            .unwrap()
            .unwrap();
        assert_eq!(backlog.done, 1);
        assert_eq!(
            backlog.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![2]
        );
        assert!(advance(&mut c, &conv, "node-2", 2, true).unwrap());
        assert!(stalled(&mut c, 70_000, 10).unwrap().is_empty(), "all done");
        // Released with the progress: the next node takes it at once.
        assert!(claim(&mut c, &conv, "node-3", 70_001, 130_001, 10)
            .unwrap()
            .is_some());
        release(&mut c, &conv, "node-3").unwrap();
    }
}
