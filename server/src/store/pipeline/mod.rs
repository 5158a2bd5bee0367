//! The inbound pipeline's durable progress (`pipeline_progress`): how far each
//! conversation's committed messages have been through every stage, and which node may
//! work on it now (a lease, like the outbox's). The pipeline itself is
//! [`crate::pipeline`].

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use crate::automations::RunStatus;
use crate::db::schema::{conversations, messages, pipeline_progress};
use crate::db::{is_unique_violation, DbConn};
use crate::store::leads::ConversationFacts;

mod postgres;

/// A conversation's backlog as seen by the lease holder: the seq done so far and the
/// next committed messages after it (ascending, at most the asked-for number).
#[derive(Debug)]
pub struct Backlog {
    /// The conversation, as the stages read it (team, contact, channel, …): read
    /// once per pass rather than once per message.
    pub conversation: ConversationFacts,
    /// What the pass's stages would otherwise ask per message about the contact.
    pub contact: ContactFlags,
    /// Every message up to this seq has been through the pipeline.
    pub done: i64,
    /// Messages after `done`, ascending by seq.
    pub messages: Vec<PassMessage>,
}

/// A committed message as the stages read it: the columns they use, not the whole
/// row (no attachment, delivery status or idempotency key).
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct PassMessage {
    /// Position in the conversation.
    pub seq: i64,
    /// `guest`, `agent`, `bot`, `system`.
    pub sender_kind: String,
    /// Contact or agent id.
    pub sender_id: Option<String>,
    /// Text as sent.
    pub body: String,
    /// Commit time, epoch ms.
    pub created_at: i64,
}

/// Two facts about a conversation's contact, read with the conversation when a pass
/// begins, so a quiet customer message costs its stages no statement at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable)]
pub struct ContactFlags {
    /// The contact belongs to a lead (`lead_contacts`).
    pub lead_known: bool,
    /// The contact has automation runs waiting that stop on a reply (the rows
    /// [`crate::store::automations::runs::stop_on_reply`] would stop).
    pub runs_waiting: bool,
}

/// Takes (or renews) the lease on a conversation's pipeline for `owner` until
/// `until` (epoch ms) and reads its next `limit` messages. `None` when another node
/// holds an unexpired lease.
///
/// On PostgreSQL one statement in the common case ([`postgres::claim`]: the lease,
/// the conversation's facts with its contact's [`ContactFlags`], and the messages).
/// Otherwise — SQLite, where a statement is a library call, a conversation's first
/// pass, or a lease held elsewhere — three: the conditional `UPDATE … RETURNING seq`
/// that takes the lease (or the insert of a conversation's first row), the facts,
/// and the read.
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
    if let DbConn::Postgresql(pg) = c {
        if let Some(backlog) = postgres::claim(pg, conversation_id, owner, now, until, limit)? {
            return Ok(Some(backlog));
        }
    }
    claim_in_steps(c, conversation_id, owner, now, until, limit)
}

fn claim_in_steps(
    c: &mut DbConn,
    conversation_id: &str,
    owner: &str,
    now: i64,
    until: i64,
    limit: i64,
) -> QueryResult<Option<Backlog>> {
    let done = {
        // Writes outside a transaction queue for SQLite's write lock too (`db::gate`);
        // the reads after them do not need it.
        let _held = crate::db::gate::hold();
        take_lease(c, conversation_id, owner, now, until)?
    };
    let Some(done) = done else {
        return Ok(None);
    };
    let (conversation, contact) =
        facts(c, conversation_id)?.ok_or(diesel::result::Error::NotFound)?;
    let messages = messages::table
        .filter(messages::conversation_id.eq(conversation_id))
        .filter(messages::seq.gt(done))
        .order(messages::seq.asc())
        .limit(limit)
        .select((
            messages::seq,
            messages::sender_kind,
            messages::sender_id,
            messages::body,
            messages::created_at,
        ))
        .load(c)?;
    Ok(Some(Backlog {
        conversation,
        contact,
        done,
        messages,
    }))
}

/// Takes the conversation's lease (creating its progress row on the first pass):
/// the recorded progress, or `None` when another owner holds a live lease.
fn take_lease(
    c: &mut DbConn,
    conversation_id: &str,
    owner: &str,
    now: i64,
    until: i64,
) -> QueryResult<Option<i64>> {
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
    Ok(Some(done))
}

/// The conversation's facts and its contact's flags in one statement: the flags are
/// `EXISTS` subqueries on the conversation's own `contact_id` (both indexed:
/// `lead_contacts`' key, `automation_runs_contact`). Raw SQL because diesel's DSL has
/// no correlated subquery; it is the same text on SQLite and PostgreSQL.
fn facts(
    c: &mut DbConn,
    conversation_id: &str,
) -> QueryResult<Option<(ConversationFacts, ContactFlags)>> {
    let (lead_known, runs_waiting) = flags_sql("conversations");
    conversations::table
        .find(conversation_id)
        .select((
            ConversationFacts::as_select(),
            (sql::<Bool>(&lead_known), sql::<Bool>(&runs_waiting)),
        ))
        .first(c)
        .optional()
}

/// The two `EXISTS` expressions of [`ContactFlags`], on the `contact_id` of the
/// conversations table named (or aliased) `conversations`.
fn flags_sql(conversations: &str) -> (String, String) {
    (
        format!(
            "EXISTS (SELECT 1 FROM lead_contacts lc \
             WHERE lc.contact_id = {conversations}.contact_id)"
        ),
        format!(
            "EXISTS (SELECT 1 FROM automation_runs r \
             WHERE r.contact_id = {conversations}.contact_id AND r.status = '{}' \
             AND r.stop_on_reply AND r.next_at IS NOT NULL)",
            RunStatus::Active.as_str()
        ),
    )
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
    let _held = crate::db::gate::hold();
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
    fn progress_leases_and_the_sweep_on_sqlite() {
        let (_scratch, db) = crate::testing::sqlite();
        progress_leases_and_the_sweep_see_what_is_left(&db);
    }

    #[test]
    fn progress_leases_and_the_sweep_on_postgres() {
        if let Some((_scratch, db)) = crate::testing::postgres() {
            progress_leases_and_the_sweep_see_what_is_left(&db);
        }
    }

    fn progress_leases_and_the_sweep_see_what_is_left(db: &crate::db::Db) {
        let (team_id, conv) = crate::testing::team_and_conversation(db, "t");
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
        assert_eq!(
            backlog
                .messages
                .iter()
                .map(|m| m.body.as_str())
                .collect::<Vec<_>>(),
            vec!["a", "b"]
        );
        assert!(backlog.messages.iter().all(|m| m.sender_kind == "guest"
            && m.sender_id.as_deref() == Some("g")
            && m.created_at > 0));
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
        let backlog = claim(&mut c, &conv, "node-3", 70_001, 130_001, 10)
            .unwrap()
            .unwrap();
        assert_eq!(
            (backlog.done, backlog.messages.len()),
            (2, 0),
            "nothing left"
        );
        release(&mut c, &conv, "node-3").unwrap();
    }

    /// A pass learns from the claim whether its contact has a lead and runs waiting
    /// for a reply, and only then: a finished run, or one that does not stop on a
    /// reply, is nothing to stop.
    fn contact_flags_follow_the_lead_and_the_waiting_runs(db: &crate::db::Db) {
        let (team_id, conv) = crate::testing::team_and_conversation(db, "flags");
        let mut pooled = db.conn().unwrap();
        let c: &mut DbConn = &mut pooled;
        let flags = |c: &mut DbConn| {
            let flags = claim(c, &conv, "n", 1_000, 2_000, 10)
                .unwrap()
                .unwrap()
                .contact;
            release(c, &conv, "n").unwrap();
            (flags.lead_known, flags.runs_waiting)
        };
        assert_eq!(flags(c), (false, false));
        crate::store::leads::ensure_for_conversation(c, &conv).unwrap();
        assert_eq!(flags(c), (true, false), "the lead is known");
        let contact = crate::store::contacts::of_conversation(c, &conv).unwrap();
        diesel::sql_query(format!(
            "INSERT INTO automations (id, team_id, name, trigger_kind, trigger_spec, steps, \
             created_at, updated_at) VALUES ('a1', '{team_id}', 'a', 'lead_created', '{{}}', '[]', 0, 0)"
        ))
        .execute(c)
        .unwrap();
        let run = |c: &mut DbConn, id: &str, status: &str, stop: bool, next_at: &str| {
            diesel::sql_query(format!(
                "INSERT INTO automation_runs (id, automation_id, team_id, contact_id, enrol_key, \
                 status, stop_on_reply, next_at, created_at, updated_at) VALUES \
                 ('{id}', 'a1', '{team_id}', '{contact}', '{id}', '{status}', {stop}, {next_at}, 0, 0)"
            ))
            .execute(c)
            .unwrap();
        };
        run(c, "done", "done", true, "5");
        run(c, "keeps-going", "active", false, "5");
        run(c, "starting", "active", true, "NULL");
        assert_eq!(flags(c), (true, false), "nothing a reply would stop");
        run(c, "waiting", "active", true, "5");
        assert_eq!(flags(c), (true, true), "a waiting run");
        crate::store::automations::runs::stop_on_reply(c, &contact, 10).unwrap();
        assert_eq!(flags(c), (true, false), "stopped");
    }

    #[test]
    fn contact_flags_on_sqlite() {
        let (_scratch, db) = crate::testing::sqlite();
        contact_flags_follow_the_lead_and_the_waiting_runs(&db);
    }

    #[test]
    fn contact_flags_on_postgres() {
        if let Some((_scratch, db)) = crate::testing::postgres() {
            contact_flags_follow_the_lead_and_the_waiting_runs(&db);
        }
    }
}
