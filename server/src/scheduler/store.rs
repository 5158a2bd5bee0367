//! The `jobs` table (SQL only). Claims follow the outbox's lease style
//! (`store::outbox::claim_due`): a row is free when pending and due, or when its
//! lease has run out; a claim takes a batch in one conditional UPDATE, so two nodes
//! never hold the same row at once.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::db::schema::jobs;
use crate::db::DbConn;
use crate::error::AppError;
use crate::model::new_id;

use super::policy::{JobState, Transition};

/// One `jobs` row as stored.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = jobs)]
pub struct JobRow {
    /// Id.
    pub id: String,
    /// Kind (a [`super::JobKind`] name; a newer node may have written one this node
    /// does not know).
    pub kind: String,
    /// Idempotency key, unique with the kind.
    pub key: String,
    /// JSON text.
    pub payload: String,
    /// When it is due, epoch ms.
    pub due_at: i64,
    /// A [`JobState`] name.
    pub state: String,
    /// Claims of the current occurrence.
    pub attempts: i32,
    /// Who holds (or last held) the lease: `node/claim`.
    pub lease_owner: Option<String>,
    /// When that lease runs out, epoch ms.
    pub lease_until: Option<i64>,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Last changed, epoch ms.
    pub updated_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = jobs)]
struct InsertJob<'a> {
    id: &'a str,
    kind: &'a str,
    key: &'a str,
    payload: &'a str,
    due_at: i64,
    state: &'a str,
    attempts: i32,
    created_at: i64,
    updated_at: i64,
}

/// Inserts a pending job unless (kind, key) exists; returns the id of the row that
/// is there afterwards and whether this call created it. Safe inside a caller's
/// transaction: the insert runs in a savepoint, so a lost race on PostgreSQL does
/// not abort the caller's work.
///
/// # Errors
/// Database errors.
pub fn insert_if_absent(
    conn: &mut DbConn,
    kind: &str,
    key: &str,
    payload: &str,
    due_at: i64,
    now: i64,
) -> Result<(String, bool), AppError> {
    if let Some(id) = find(conn, kind, key)? {
        return Ok((id, false));
    }
    let id = new_id();
    let row = InsertJob {
        id: &id,
        kind,
        key,
        payload,
        due_at,
        state: JobState::Pending.as_str(),
        attempts: 0,
        created_at: now,
        updated_at: now,
    };
    let inserted = conn.transaction::<_, DieselError, _>(|c| {
        diesel::insert_into(jobs::table).values(&row).execute(c)
    });
    match inserted {
        Ok(_) => Ok((id, true)),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            let id = find(conn, kind, key)?
                .ok_or_else(|| AppError::internal("job vanished after a unique violation"))?;
            Ok((id, false))
        }
        Err(e) => Err(e.into()),
    }
}

fn find(conn: &mut DbConn, kind: &str, key: &str) -> Result<Option<String>, AppError> {
    Ok(jobs::table
        .filter(jobs::kind.eq(kind))
        .filter(jobs::key.eq(key))
        .select(jobs::id)
        .first(conn)
        .optional()?)
}

/// Moves a job that is not running to `due_at` and makes it pending again (a
/// cancelled, done or failed job comes back). Returns whether a row changed.
///
/// # Errors
/// Database errors.
pub fn reschedule(
    conn: &mut DbConn,
    kind: &str,
    key: &str,
    due_at: i64,
    now: i64,
) -> Result<bool, AppError> {
    let n = diesel::update(
        jobs::table
            .filter(jobs::kind.eq(kind))
            .filter(jobs::key.eq(key))
            .filter(jobs::state.ne(JobState::Running.as_str())),
    )
    .set((
        jobs::due_at.eq(due_at),
        jobs::state.eq(JobState::Pending.as_str()),
        jobs::attempts.eq(0),
        jobs::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Cancels a pending job. Returns whether a row changed (false when it is running,
/// finished or unknown: a running job finishes its run).
///
/// # Errors
/// Database errors.
pub fn cancel(conn: &mut DbConn, kind: &str, key: &str, now: i64) -> Result<bool, AppError> {
    let n = diesel::update(
        jobs::table
            .filter(jobs::kind.eq(kind))
            .filter(jobs::key.eq(key))
            .filter(jobs::state.eq(JobState::Pending.as_str())),
    )
    .set((
        jobs::state.eq(JobState::Cancelled.as_str()),
        jobs::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Sets a recurring job's payload (its period may have changed with the config)
/// and brings back a finished or failed one, due now. A cancelled one stays
/// cancelled. Returns whether it changed.
///
/// # Errors
/// Database errors.
pub fn refresh_recurring(
    conn: &mut DbConn,
    id: &str,
    payload: &str,
    now: i64,
) -> Result<(), AppError> {
    diesel::update(jobs::table.find(id))
        .set(jobs::payload.eq(payload))
        .execute(conn)?;
    diesel::update(
        jobs::table.find(id).filter(
            jobs::state
                .eq(JobState::Done.as_str())
                .or(jobs::state.eq(JobState::Failed.as_str())),
        ),
    )
    .set((
        jobs::state.eq(JobState::Pending.as_str()),
        jobs::due_at.eq(now),
        jobs::attempts.eq(0),
        jobs::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(())
}

/// Claims up to `limit` due jobs for `owner` (unique per claim) until
/// `now + lease_ms`: the candidates are read, then taken in one conditional UPDATE
/// (rows another node took meanwhile no longer match it): pending rows whose `due_at` has come, and
/// running rows whose lease ran out (their node died or hung). Each claim counts
/// as an attempt. Returns the claimed rows, earliest due first.
///
/// # Errors
/// Database errors.
pub fn claim(
    conn: &mut DbConn,
    owner: &str,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<JobRow>, AppError> {
    let pending = JobState::Pending.as_str();
    let running = JobState::Running.as_str();
    // The same condition inside and outside: on PostgreSQL a row another node
    // claimed meanwhile is re-checked after its lock and skipped.
    let free = jobs::state
        .eq(pending)
        .and(jobs::due_at.le(now))
        .or(jobs::state.eq(running).and(jobs::lease_until.lt(now)));
    let candidates: Vec<String> = jobs::table
        .filter(free)
        .order(jobs::due_at.asc())
        .select(jobs::id)
        .limit(limit)
        .load(conn)?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(
        jobs::table
            .filter(jobs::id.eq_any(&candidates))
            .filter(free),
    )
    .set((
        jobs::state.eq(running),
        jobs::attempts.eq(jobs::attempts + 1),
        jobs::lease_owner.eq(owner),
        jobs::lease_until.eq(now.saturating_add(lease_ms)),
        jobs::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(jobs::table
        .filter(jobs::lease_owner.eq(owner))
        .filter(jobs::state.eq(running))
        .order(jobs::due_at.asc())
        .select(JobRow::as_select())
        .load(conn)?)
}

/// Records a run's outcome, if `owner` still holds the lease (when it ran out and
/// another node took the job, that node's outcome counts). Returns whether it did.
///
/// # Errors
/// Database errors.
pub fn finish(
    conn: &mut DbConn,
    id: &str,
    owner: &str,
    t: &Transition,
    now: i64,
) -> Result<bool, AppError> {
    let n = diesel::update(
        jobs::table
            .find(id)
            .filter(jobs::lease_owner.eq(owner))
            .filter(jobs::state.eq(JobState::Running.as_str())),
    )
    .set((
        jobs::state.eq(t.state.as_str()),
        jobs::due_at.eq(t.due_at),
        jobs::attempts.eq(t.attempts),
        jobs::last_error.eq(t.last_error.as_deref()),
        jobs::lease_until.eq(None::<i64>),
        jobs::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// The earliest time something may become claimable: a pending row's `due_at` or
/// a running row's `lease_until`.
///
/// # Errors
/// Database errors.
pub fn next_wake(conn: &mut DbConn) -> Result<Option<i64>, AppError> {
    let due: Option<i64> = jobs::table
        .filter(jobs::state.eq(JobState::Pending.as_str()))
        .select(diesel::dsl::min(jobs::due_at))
        .first(conn)?;
    let lease: Option<i64> = jobs::table
        .filter(jobs::state.eq(JobState::Running.as_str()))
        .select(diesel::dsl::min(jobs::lease_until))
        .first(conn)?;
    Ok(match (due, lease) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// Filters of [`list`].
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this state.
    pub state: Option<JobState>,
    /// At most this many rows.
    pub limit: i64,
}

/// Jobs matching `f`, earliest due first.
///
/// # Errors
/// Database errors.
pub fn list(conn: &mut DbConn, f: &JobFilter) -> Result<Vec<JobRow>, AppError> {
    let mut q = jobs::table.into_boxed();
    if let Some(k) = &f.kind {
        q = q.filter(jobs::kind.eq(k.clone()));
    }
    if let Some(s) = f.state {
        q = q.filter(jobs::state.eq(s.as_str()));
    }
    Ok(q.order((jobs::due_at.asc(), jobs::id.asc()))
        .limit(f.limit)
        .select(JobRow::as_select())
        .load(conn)?)
}

/// Counts for `/metrics`: jobs not yet finished (pending or running), of those the
/// ones due by `now`, and failed jobs.
///
/// # Errors
/// Database errors.
pub fn counts(conn: &mut DbConn, now: i64) -> Result<(i64, i64, i64), AppError> {
    let open = jobs::state
        .eq(JobState::Pending.as_str())
        .or(jobs::state.eq(JobState::Running.as_str()));
    let backlog: i64 = jobs::table.filter(open).count().get_result(conn)?;
    let due: i64 = jobs::table
        .filter(jobs::state.eq(JobState::Pending.as_str()))
        .filter(jobs::due_at.le(now))
        .count()
        .get_result(conn)?;
    let failed: i64 = jobs::table
        .filter(jobs::state.eq(JobState::Failed.as_str()))
        .count()
        .get_result(conn)?;
    Ok((backlog, due, failed))
}
