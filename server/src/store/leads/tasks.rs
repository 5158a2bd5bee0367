//! Tasks of a lead (initial contact, stage follow-ups, requests detected by intent
//! rules, manual ones) and the overdue sweep. Creating a task or changing it by hand
//! also records a timeline event, so the timeline tells who did what.

use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::clock::{now_ms, rfc3339};
use crate::db::schema::tasks;
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::model::new_id;

use super::{event, Actor, LeadRow, TimelineEntry};

/// A row of `tasks`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = tasks)]
pub struct TaskRow {
    /// Task id.
    pub id: String,
    /// Lead.
    pub lead_id: String,
    /// Team.
    pub team_id: String,
    /// `initial_contact`, `pricing`, `booking`, `payment`, `follow_up`, `manual`.
    pub kind: String,
    /// What to do.
    pub title: String,
    /// Who.
    pub assignee_id: Option<String>,
    /// Due, epoch ms.
    pub due_at: i64,
    /// `open`, `done`, `cancelled`.
    pub status: String,
    /// 1 once the overdue push went out.
    #[serde(skip)]
    pub overdue_notified: i32,
    /// Creator (agent id; absent for rules).
    pub created_by: Option<String>,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub completed_at: Option<i64>,
}

/// Form for [`create_task`].
#[derive(Debug, Clone)]
pub struct NewTask {
    /// Kind.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Assignee.
    pub assignee_id: Option<String>,
    /// Due, epoch ms.
    pub due_at: i64,
    /// Creator.
    pub created_by: Option<String>,
}

/// Creates a task and its timeline entry.
///
/// # Errors
/// Database errors.
pub fn create_task(
    c: &mut DbConn,
    lead: &LeadRow,
    conversation_id: Option<&str>,
    t: NewTask,
    now: i64,
    out: &mut Vec<TimelineEntry>,
) -> Result<TaskRow, AppError> {
    let row = TaskRow {
        id: new_id(),
        lead_id: lead.id.clone(),
        team_id: lead.team_id.clone(),
        kind: t.kind,
        title: t.title,
        assignee_id: t.assignee_id,
        due_at: t.due_at,
        status: "open".into(),
        overdue_notified: 0,
        created_by: t.created_by.clone(),
        created_at: now,
        completed_at: None,
    };
    diesel::insert_into(tasks::table).values(&row).execute(c)?;
    let actor = match &t.created_by {
        Some(id) => Actor {
            kind: "agent",
            id: Some(id),
        },
        None => Actor::SYSTEM,
    };
    out.push(event(
        c,
        &lead.id,
        conversation_id,
        "task_created",
        actor,
        json!({"task_id": row.id, "kind": row.kind, "title": row.title,
               "assignee_id": row.assignee_id, "due_at": rfc3339(row.due_at)}),
        now,
    )?);
    Ok(row)
}

pub(super) fn has_open_task(c: &mut DbConn, lead_id: &str, kind: &str) -> Result<bool, AppError> {
    let n: i64 = tasks::table
        .filter(tasks::lead_id.eq(lead_id))
        .filter(tasks::kind.eq(kind))
        .filter(tasks::status.eq("open"))
        .count()
        .get_result(c)?;
    Ok(n > 0)
}

// ------------------------------------------------------------------ tasks

/// Open tasks past due whose assignee has not been told yet; marks them told.
/// The conditional update makes each push happen once, even with several nodes.
///
/// # Errors
/// Database errors.
pub fn take_overdue(c: &mut DbConn, now: i64) -> Result<Vec<TaskRow>, AppError> {
    let due: Vec<TaskRow> = tasks::table
        .filter(tasks::status.eq("open"))
        .filter(tasks::overdue_notified.eq(0))
        .filter(tasks::due_at.le(now))
        .select(TaskRow::as_select())
        .limit(200)
        .load(c)?;
    let mut taken = Vec::new();
    for t in due {
        let n = diesel::update(
            tasks::table
                .filter(tasks::id.eq(&t.id))
                .filter(tasks::overdue_notified.eq(0)),
        )
        .set(tasks::overdue_notified.eq(1))
        .execute(c)?;
        if n == 1 {
            taken.push(t);
        }
    }
    Ok(taken)
}

/// A task.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn task(c: &mut DbConn, id: &str) -> Result<TaskRow, AppError> {
    tasks::table
        .find(id)
        .select(TaskRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no task {id}")))
}

/// Tasks of some teams, filtered.
///
/// # Errors
/// Database errors.
pub fn list_tasks(
    c: &mut DbConn,
    teams: Option<Vec<String>>,
    lead_id: Option<String>,
    assignee: Option<String>,
    status: Option<String>,
) -> Result<Vec<TaskRow>, AppError> {
    let mut q = tasks::table
        .select(TaskRow::as_select())
        .order((tasks::due_at.asc(), tasks::id.asc()))
        .limit(500)
        .into_boxed();
    if let Some(t) = teams {
        q = q.filter(tasks::team_id.eq_any(t));
    }
    if let Some(l) = lead_id {
        q = q.filter(tasks::lead_id.eq(l));
    }
    if let Some(a) = assignee {
        q = q.filter(tasks::assignee_id.eq(a));
    }
    if let Some(s) = status {
        q = q.filter(tasks::status.eq(s));
    }
    Ok(q.load(c)?)
}

/// Changes a task (status, due time, assignee, title) and records the change.
///
/// # Errors
/// [`AppError::Validation`]; database errors.
pub fn update_task(
    c: &mut DbConn,
    id: &str,
    status: Option<String>,
    due_at: Option<i64>,
    assignee_id: Option<Option<String>>,
    title: Option<String>,
    by: &str,
) -> Result<(TaskRow, TimelineEntry), AppError> {
    write_transaction(c, |c| {
        let mut t = task(c, id)?;
        let now = now_ms();
        if let Some(s) = status {
            if !["open", "done", "cancelled"].contains(&s.as_str()) {
                return Err(AppError::Validation(
                    "A task can be open, done or cancelled.".into(),
                ));
            }
            t.completed_at = (s != "open").then_some(now);
            t.status = s;
        }
        if let Some(d) = due_at {
            t.due_at = d;
            t.overdue_notified = 0;
        }
        if let Some(a) = assignee_id {
            t.assignee_id = a;
        }
        if let Some(title) = title {
            t.title = title;
        }
        diesel::update(tasks::table.find(&t.id))
            .set((
                tasks::status.eq(&t.status),
                tasks::due_at.eq(t.due_at),
                tasks::overdue_notified.eq(t.overdue_notified),
                tasks::assignee_id.eq(&t.assignee_id),
                tasks::title.eq(&t.title),
                tasks::completed_at.eq(t.completed_at),
            ))
            .execute(c)?;
        let e = event(
            c,
            &t.lead_id,
            None,
            "task_updated",
            Actor {
                kind: "agent",
                id: Some(by),
            },
            json!({"task_id": t.id, "status": t.status, "due_at": rfc3339(t.due_at), "assignee_id": t.assignee_id}),
            now,
        )?;
        Ok((t, e))
    })
}
