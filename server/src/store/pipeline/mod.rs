//! The inbound pipeline's durable progress (`pipeline_progress`): how far each
//! conversation's committed messages have been through every stage, and which node may
//! work on it now (a lease, like the outbox's). The pipeline itself is
//! [`crate::pipeline`].

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use crate::automations::RunStatus;
use crate::db::schema::{conversations, messages, pipeline_progress};
use crate::db::{is_unique_violation, DbConn};
use crate::store::leads::ConversationFacts;

mod postgres;
mod sqlite;

/// A conversation's backlog as seen by the lease holder: the seq done so far and the
/// next committed messages after it (ascending, at most the asked-for number).
#[derive(Debug)]
pub struct Backlog {
    /// The conversation this backlog is of.
    pub conversation_id: String,
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

/// How far a pass got on one conversation: what [`advance`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advance {
    /// The conversation.
    pub conversation_id: String,
    /// Every message up to this seq has been through the pipeline.
    pub done: i64,
    /// Give the lease back too (the conversation's last pass for now).
    pub release: bool,
}

/// Takes (or renews) the lease on the pipeline of each of the `group`'s
/// conversations for its owner until `lease.until` (epoch ms) and reads each one's
/// next `limit` messages. Returns the backlogs of the conversations whose lease was
/// taken, in the order asked; one another node holds an unexpired lease on is left
/// out.
///
/// Why several at once: when the pipeline keeps up, a pass holds one or two
/// messages, so its claim and its progress write are most of its cost, and each is
/// a commit (SQLite) or a round trip (PostgreSQL). A worker takes the conversations
/// waiting together, so those costs are paid per group, not per conversation.
///
/// On PostgreSQL one statement for the group (`postgres::claim`: the leases, the
/// conversations' facts with their contacts' [`ContactFlags`], and the messages).
/// On SQLite one transaction takes the leases and one cached read per conversation
/// follows (`sqlite::claim`). A conversation's first pass, a lease held elsewhere
/// or a missing conversation goes the step-by-step way, which tells them apart: the
/// insert of the conversation's first progress row, the facts, the read.
///
/// # Errors
/// Database errors; `NotFound` when a conversation does not exist.
pub fn claim(c: &mut DbConn, group: &Group<'_>) -> QueryResult<Vec<Backlog>> {
    let mut taken = match c {
        DbConn::Postgresql(pg) => postgres::claim(pg, group)?,
        DbConn::Sqlite(_) => sqlite::claim(c, group)?,
    };
    for id in group.conversation_ids {
        if taken.iter().any(|b| &b.conversation_id == id) {
            continue;
        }
        if let Some(backlog) = claim_in_steps(c, id, group)? {
            taken.push(backlog);
        }
    }
    taken.sort_by_key(|b| {
        group
            .conversation_ids
            .iter()
            .position(|id| *id == b.conversation_id)
    });
    Ok(taken)
}

/// What a worker's claim asks for: whose pipelines, for whom, until when, how many
/// messages each.
#[derive(Debug, Clone, Copy)]
pub struct Group<'a> {
    /// The conversations, in the order their backlogs come back.
    pub conversation_ids: &'a [String],
    /// The lease owner (one per process start).
    pub owner: &'a str,
    /// The lease's clock.
    pub lease: Lease,
    /// Messages read per conversation at most.
    pub limit: i64,
}

/// A lease's clock: now, and when a lease taken now runs out (both epoch ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Now; a lease that ended before this is free.
    pub now: i64,
    /// The end of a lease taken now.
    pub until: i64,
}

fn claim_in_steps(
    c: &mut DbConn,
    conversation_id: &str,
    group: &Group<'_>,
) -> QueryResult<Option<Backlog>> {
    let done = {
        // Writes outside a transaction queue for SQLite's write lock too (`db::gate`);
        // the reads after them do not need it.
        let _held = crate::db::gate::hold();
        take_lease(c, conversation_id, group.owner, group.lease)?
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
        .limit(group.limit)
        .select((
            messages::seq,
            messages::sender_kind,
            messages::sender_id,
            messages::body,
            messages::created_at,
        ))
        .load(c)?;
    Ok(Some(Backlog {
        conversation_id: conversation_id.to_string(),
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
    lease: Lease,
) -> QueryResult<Option<i64>> {
    let taken: Option<i64> = diesel::update(
        pipeline_progress::table.find(conversation_id).filter(
            pipeline_progress::lease_until
                .lt(lease.now)
                .or(pipeline_progress::lease_owner.eq(owner)),
        ),
    )
    .set((
        pipeline_progress::lease_owner.eq(owner),
        pipeline_progress::lease_until.eq(lease.until),
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
                    pipeline_progress::lease_until.eq(lease.until),
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

/// Records each pass's progress: every message up to its `done` has been through
/// the pipeline, and with `release` the lease goes back in the same write. Only
/// while `owner` holds the lease: the holder read the recorded seq when it took the
/// lease and only moves it forward from there, so progress never moves back.
/// Returns, in the order given, whether each lease was still held — where it was
/// lost the caller stops, and the new holder goes on from the recorded seq.
///
/// One statement on PostgreSQL (`UNNEST`), one transaction on SQLite.
///
/// # Errors
/// Database errors.
pub fn advance(c: &mut DbConn, owner: &str, passes: &[Advance]) -> QueryResult<Vec<bool>> {
    match c {
        DbConn::Postgresql(pg) => postgres::advance(pg, owner, passes),
        DbConn::Sqlite(_) => sqlite::advance(c, owner, passes),
    }
}

/// Gives the leases back, so another node may take the conversations at once.
///
/// # Errors
/// Database errors.
pub fn release(c: &mut DbConn, conversation_ids: &[String], owner: &str) -> QueryResult<()> {
    let _held = crate::db::gate::hold();
    diesel::update(
        pipeline_progress::table
            .filter(pipeline_progress::conversation_id.eq_any(conversation_ids))
            .filter(pipeline_progress::lease_owner.eq(owner)),
    )
    .set(pipeline_progress::lease_until.eq(0_i64))
    .execute(c)?;
    Ok(())
}

/// One row of a claim's read: a conversation's facts, repeated, and one of its
/// messages (none when nothing is after the progress). Both backends' claims read
/// these columns, so [`backlogs`] turns either into backlogs.
#[derive(QueryableByName)]
struct ClaimRow {
    #[diesel(sql_type = Text)]
    conversation_id: String,
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

/// The columns of a [`ClaimRow`] after its conversation id and `done`, on the
/// conversations table aliased `c` and the messages subquery aliased `m`.
fn claim_columns() -> String {
    let (lead_known, runs_waiting) = flags_sql("c");
    format!(
        "c.team_id, c.contact_id, c.channel, c.source, c.preferred_agent_id, \
         c.assignee_id, {lead_known} AS lead_known, {runs_waiting} AS runs_waiting, \
         m.seq, m.sender_kind, m.sender_id, m.body, m.created_at"
    )
}

/// Groups claim rows (one conversation's rows together, its messages ascending)
/// into backlogs.
fn backlogs(rows: Vec<ClaimRow>) -> Vec<Backlog> {
    let mut out: Vec<Backlog> = Vec::new();
    for r in rows {
        if out
            .last()
            .is_none_or(|b| b.conversation_id != r.conversation_id)
        {
            out.push(Backlog {
                conversation_id: r.conversation_id.clone(),
                conversation: ConversationFacts {
                    team_id: r.team_id.clone(),
                    contact_id: r.contact_id.clone(),
                    channel: r.channel.clone(),
                    source: r.source.clone(),
                    preferred_agent_id: r.preferred_agent_id.clone(),
                    assignee_id: r.assignee_id.clone(),
                },
                contact: ContactFlags {
                    lead_known: r.lead_known,
                    runs_waiting: r.runs_waiting,
                },
                done: r.done,
                messages: Vec::new(),
            });
        }
        let message = (|| {
            Some(PassMessage {
                seq: r.seq?,
                sender_kind: r.sender_kind?,
                sender_id: r.sender_id,
                body: r.body?,
                created_at: r.created_at?,
            })
        })();
        if let (Some(m), Some(b)) = (message, out.last_mut()) {
            b.messages.push(m);
        }
    }
    out
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

    /// One conversation's claim, as a pass of a group of one makes it.
    fn claim_one(c: &mut DbConn, conv: &str, owner: &str, now: i64) -> Option<Backlog> {
        let lease = Lease {
            now,
            until: now + 60_000,
        };
        let ids = [conv.to_string()];
        let group = Group {
            conversation_ids: &ids,
            owner,
            lease,
            limit: 10,
        };
        let mut taken = claim(c, &group).unwrap();
        assert!(taken.len() <= 1);
        taken.pop()
    }

    fn advance_one(c: &mut DbConn, conv: &str, owner: &str, done: i64, release: bool) -> bool {
        let pass = Advance {
            conversation_id: conv.to_string(),
            done,
            release,
        };
        advance(c, owner, &[pass]).unwrap() == vec![true]
    }

    fn progress_leases_and_the_sweep_see_what_is_left(db: &crate::db::Db) {
        let (team_id, conv) = crate::testing::team_and_conversation(db, "t");
        let mut c = db.conn().unwrap();
        assert!(
            stalled(&mut c, 1_000, 10).unwrap().is_empty(),
            "nothing committed yet"
        );
        for key in ["a", "b"] {
            post(&mut c, &conv, key);
        }
        assert_eq!(stalled(&mut c, 1_000, 10).unwrap(), vec![conv.clone()]);

        let backlog = claim_one(&mut c, &conv, "node-1", 1_000).unwrap();
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
        assert!(claim_one(&mut c, &conv, "node-2", 2_000).is_none());
        assert!(stalled(&mut c, 2_000, 10).unwrap().is_empty());
        assert!(advance_one(&mut c, &conv, "node-1", 1, false));
        assert!(
            !advance_one(&mut c, &conv, "node-2", 2, false),
            "not its lease"
        );
        // node-1 stops without releasing: once the lease runs out node-2 goes on
        // from the recorded progress.
        assert_eq!(stalled(&mut c, 70_000, 10).unwrap(), vec![conv.clone()]);
        let backlog = claim_one(&mut c, &conv, "node-2", 70_000).unwrap();
        assert_eq!(backlog.done, 1);
        assert_eq!(
            backlog.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![2]
        );
        assert!(advance_one(&mut c, &conv, "node-2", 2, true));
        assert!(stalled(&mut c, 70_000, 10).unwrap().is_empty(), "all done");
        // Released with the progress: the next node takes it at once.
        let backlog = claim_one(&mut c, &conv, "node-3", 70_001).unwrap();
        assert_eq!(
            (backlog.done, backlog.messages.len()),
            (2, 0),
            "nothing left"
        );
        release(&mut c, &[conv], "node-3").unwrap();
    }

    fn post(c: &mut DbConn, conv: &str, body: &str) {
        let m = NewMessage {
            conversation_id: conv.to_string(),
            sender_kind: SenderKind::Guest,
            sender_id: Some("g".into()),
            sender_name: None,
            body: body.into(),
            client_msg_id: Some(format!("{conv}-{body}")),
            provider_id: None,
            reopen: false,
            channel: None,
        };
        crate::db::write_transaction(c, |c| append(c, &m)).unwrap();
    }

    /// A group's claim takes what it can: a conversation's first pass and one whose
    /// row is free, not one another node holds; each backlog is its own
    /// conversation's, in the order asked; the group's progress write says per
    /// conversation whether the lease was still held.
    fn a_group_claims_what_is_free_and_advances_each(db: &crate::db::Db) {
        let convs: Vec<String> = ["g1", "g2", "g3"]
            .iter()
            .map(|slug| crate::testing::team_and_conversation(db, slug).1)
            .collect();
        let mut pooled = db.conn().unwrap();
        let c: &mut DbConn = &mut pooled;
        for (i, conv) in convs.iter().enumerate() {
            for n in 0..=i {
                post(c, conv, &format!("m{n}"));
            }
        }
        // g2 and g3 have been through a pass; node-2 still holds g2's lease.
        for (conv, owner) in [(&convs[1], "node-2"), (&convs[2], "node-9")] {
            claim_one(c, conv, owner, 1_000).unwrap();
            assert!(advance_one(c, conv, owner, 1, owner == "node-9"));
        }
        let lease = Lease {
            now: 2_000,
            until: 62_000,
        };
        let asked = vec![convs[2].clone(), convs[1].clone(), convs[0].clone()];
        let group = Group {
            conversation_ids: &asked,
            owner: "node-1",
            lease,
            limit: 10,
        };
        let taken = claim(c, &group).unwrap();
        let seen: Vec<(&str, i64, Vec<i64>)> = taken
            .iter()
            .map(|b| {
                let seqs = b.messages.iter().map(|m| m.seq).collect();
                (b.conversation_id.as_str(), b.done, seqs)
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (convs[2].as_str(), 1, vec![2, 3]),
                (convs[0].as_str(), 0, vec![1])
            ]
        );
        assert!(taken
            .iter()
            .all(|b| b.messages.iter().all(|m| m.body.starts_with('m'))));
        let passes: Vec<Advance> = [(&convs[2], 3), (&convs[1], 2), (&convs[0], 1)]
            .into_iter()
            .map(|(conv, done)| Advance {
                conversation_id: conv.clone(),
                done,
                release: true,
            })
            .collect();
        assert_eq!(
            advance(c, "node-1", &passes).unwrap(),
            vec![true, false, true],
            "g2's lease is node-2's"
        );
        assert_eq!(
            stalled(c, 2_000, 10).unwrap(),
            Vec::<String>::new(),
            "g2 is leased, the others done"
        );
        assert_eq!(stalled(c, 70_000, 10).unwrap(), vec![convs[1].clone()]);
    }

    #[test]
    fn a_group_on_sqlite_and_postgres() {
        let (_scratch, db) = crate::testing::sqlite();
        a_group_claims_what_is_free_and_advances_each(&db);
        if let Some((_scratch, db)) = crate::testing::postgres() {
            a_group_claims_what_is_free_and_advances_each(&db);
        }
    }

    /// A pass learns from the claim whether its contact has a lead and runs waiting
    /// for a reply, and only then: a finished run, or one that does not stop on a
    /// reply, is nothing to stop.
    fn contact_flags_follow_the_lead_and_the_waiting_runs(db: &crate::db::Db) {
        let (team_id, conv) = crate::testing::team_and_conversation(db, "flags");
        let mut pooled = db.conn().unwrap();
        let c: &mut DbConn = &mut pooled;
        let flags = |c: &mut DbConn| {
            let flags = claim_one(c, &conv, "n", 1_000).unwrap().contact;
            release(c, std::slice::from_ref(&conv), "n").unwrap();
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
