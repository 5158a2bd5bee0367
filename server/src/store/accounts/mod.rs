//! Settings, teams and agents (accounts and membership); [`lifecycle`] holds the
//! changes that can take access away (and so revoke tokens).

pub mod lifecycle;

use diesel::prelude::*;

use crate::clock::now_ms;
use crate::db::schema::{agents, settings, team_members, teams};
use crate::db::{is_unique_violation, write_transaction, DbConn};
use crate::error::AppError;
use crate::model::{new_id, AgentView, Role, TeamView};

/// A row of `agents`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = agents)]
pub struct AgentRow {
    /// Agent id.
    pub id: String,
    /// Lower-cased login email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// PHC-format argon2 hash.
    pub password_hash: String,
    /// `agent`, `lead` or `admin`.
    pub role: String,
    /// 1 active, 0 deactivated (deactivated agents cannot log in or connect).
    pub active: i32,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Tokens issued under a lower epoch are refused (see [`lifecycle`]).
    pub token_epoch: i64,
}

/// Insert form for `agents`.
#[derive(Debug, Insertable)]
#[diesel(table_name = agents)]
pub struct NewAgent<'a> {
    /// New id.
    pub id: &'a str,
    /// Lower-cased email.
    pub email: &'a str,
    /// Display name.
    pub name: &'a str,
    /// argon2 PHC string.
    pub password_hash: &'a str,
    /// Role name.
    pub role: &'a str,
    /// Always 1 on insert.
    pub active: i32,
    /// Epoch ms.
    pub created_at: i64,
}

/// A row of `teams`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = teams)]
pub struct TeamRow {
    /// Team id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// URL-safe unique name.
    pub slug: String,
    /// Epoch ms.
    pub created_at: i64,
}

impl From<TeamRow> for TeamView {
    fn from(t: TeamRow) -> Self {
        Self {
            id: t.id,
            name: t.name,
            slug: t.slug,
        }
    }
}

/// An authenticated agent as the rest of the hub needs it: identity, role, teams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// Agent id.
    pub id: String,
    /// Lower-cased email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Permissions.
    pub role: Role,
    /// Teams the agent is a member of.
    pub team_ids: Vec<String>,
    /// Whether the account may log in and connect (only deactivated rows read by
    /// admins' lists are `false`; [`active_agent`] never returns one).
    pub active: bool,
    /// The epoch current tokens must carry (see [`lifecycle`]).
    pub token_epoch: i64,
}

impl AgentInfo {
    /// Whether this agent may see and write conversations of `team_id`
    /// (admins: every team; others: their own teams).
    pub fn can_access_team(&self, team_id: &str) -> bool {
        self.role.all_teams() || self.team_ids.iter().any(|t| t == team_id)
    }

    /// The public view.
    pub fn view(&self) -> AgentView {
        AgentView {
            id: self.id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role,
            team_ids: self.team_ids.clone(),
            active: self.active,
        }
    }
}

/// Reads a setting.
///
/// # Errors
/// Database errors.
pub fn get_setting(conn: &mut DbConn, key: &str) -> Result<Option<String>, AppError> {
    Ok(settings::table
        .find(key)
        .select(settings::value)
        .first::<String>(conn)
        .optional()?)
}

/// Stores `value` under `key` unless a value is already there, and returns whichever
/// value is stored afterwards. Safe when several nodes race on first start.
///
/// # Errors
/// Database errors.
pub fn get_or_init_setting(conn: &mut DbConn, key: &str, value: &str) -> Result<String, AppError> {
    if let Some(v) = get_setting(conn, key)? {
        return Ok(v);
    }
    match diesel::insert_into(settings::table)
        .values((settings::key.eq(key), settings::value.eq(value)))
        .execute(conn)
    {
        Ok(_) => Ok(value.to_string()),
        Err(e) if is_unique_violation(&e) => get_setting(conn, key)?
            .ok_or_else(|| AppError::internal("setting vanished after a unique violation")),
        Err(e) => Err(e.into()),
    }
}

/// Team ids of an agent.
///
/// # Errors
/// Database errors.
pub fn team_ids_of(conn: &mut DbConn, agent_id: &str) -> Result<Vec<String>, AppError> {
    Ok(team_members::table
        .filter(team_members::agent_id.eq(agent_id))
        .select(team_members::team_id)
        .order(team_members::team_id)
        .load(conn)?)
}

fn info_from_row(conn: &mut DbConn, row: AgentRow) -> Result<AgentInfo, AppError> {
    let team_ids = team_ids_of(conn, &row.id)?;
    Ok(AgentInfo {
        role: Role::parse(&row.role)?,
        active: row.active == 1,
        token_epoch: row.token_epoch,
        id: row.id,
        email: row.email,
        name: row.name,
        team_ids,
    })
}

/// An active agent by id, with teams.
///
/// # Errors
/// [`AppError::Unauthorized`] when there is no such active agent (a token for a
/// deleted or deactivated account); database errors.
pub fn active_agent(conn: &mut DbConn, agent_id: &str) -> Result<AgentInfo, AppError> {
    let row = agents::table
        .find(agent_id)
        .filter(agents::active.eq(1))
        .select(AgentRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| {
            AppError::Unauthorized("this account no longer exists or is disabled".into())
        })?;
    info_from_row(conn, row)
}

/// The agent row for a login email (any case), active or not.
///
/// # Errors
/// Database errors.
pub fn agent_by_email(conn: &mut DbConn, email: &str) -> Result<Option<AgentRow>, AppError> {
    Ok(agents::table
        .filter(agents::email.eq(email.trim().to_lowercase()))
        .select(AgentRow::as_select())
        .first(conn)
        .optional()?)
}

/// Agent id, role and teams for a row (after a successful login).
///
/// # Errors
/// Database errors.
pub fn agent_info(conn: &mut DbConn, row: AgentRow) -> Result<AgentInfo, AppError> {
    info_from_row(conn, row)
}

/// Number of agent accounts.
///
/// # Errors
/// Database errors.
pub fn count_agents(conn: &mut DbConn) -> Result<i64, AppError> {
    Ok(agents::table.count().get_result(conn)?)
}

/// Whether a team with this id exists.
///
/// # Errors
/// Database errors.
pub fn team_exists(conn: &mut DbConn, team_id: &str) -> Result<bool, AppError> {
    let n: i64 = teams::table
        .filter(teams::id.eq(team_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Refuses an assignment target outside `team_id`: a lead owner or task assignee
/// must be an active member of the lead's team (as a conversation's assignee must
/// be of the conversation's team), or the work lands where its owner cannot see it.
///
/// # Errors
/// [`AppError::Validation`] naming the rule; database errors.
pub fn require_active_member(
    conn: &mut DbConn,
    team_id: &str,
    agent_id: &str,
) -> Result<(), AppError> {
    let n: i64 = team_members::table
        .inner_join(agents::table.on(agents::id.eq(team_members::agent_id)))
        .filter(team_members::team_id.eq(team_id))
        .filter(team_members::agent_id.eq(agent_id))
        .filter(agents::active.eq(1))
        .count()
        .get_result(conn)?;
    if n == 0 {
        return Err(AppError::Validation(
            "That agent is not an active member of this team, so they cannot be given its work."
                .into(),
        ));
    }
    Ok(())
}

/// Form for [`create_agent`].
#[derive(Debug, Clone)]
pub struct CreateAgent {
    /// Login email (lower-cased on insert).
    pub email: String,
    /// Display name.
    pub name: String,
    /// argon2 hash of the password.
    pub password_hash: String,
    /// Permissions.
    pub role: Role,
    /// Teams to join (must exist).
    pub team_ids: Vec<String>,
}

/// Maps a unique violation on `agents.email` to a 409 naming the email; other errors
/// pass through.
fn email_taken(e: diesel::result::Error, email: &str) -> AppError {
    if is_unique_violation(&e) {
        AppError::Conflict(format!("an agent with email {email} already exists"))
    } else {
        e.into()
    }
}

/// Inserts an agent and their team memberships in one transaction.
///
/// # Errors
/// [`AppError::Conflict`] for a taken email, [`AppError::Validation`] for an unknown
/// team id, database errors.
pub fn create_agent(conn: &mut DbConn, form: CreateAgent) -> Result<AgentInfo, AppError> {
    let id = new_id();
    let email = form.email.trim().to_lowercase();
    // Reads (team check) then writes: on SQLite a deferred transaction would fail
    // with "database is locked" if another writer committed in between.
    write_transaction::<_, AppError, _>(conn, |conn| {
        for team_id in &form.team_ids {
            if !team_exists(conn, team_id)? {
                return Err(AppError::Validation(format!("no team with id {team_id}")));
            }
        }
        diesel::insert_into(agents::table)
            .values(NewAgent {
                id: &id,
                email: &email,
                name: form.name.trim(),
                password_hash: &form.password_hash,
                role: form.role.as_str(),
                active: 1,
                created_at: now_ms(),
            })
            .execute(conn)
            .map_err(|e| email_taken(e, &email))?;
        for team_id in &form.team_ids {
            diesel::insert_into(team_members::table)
                .values((
                    team_members::team_id.eq(team_id),
                    team_members::agent_id.eq(&id),
                ))
                .execute(conn)?;
        }
        Ok(())
    })?;
    Ok(AgentInfo {
        id,
        email,
        name: form.name.trim().to_string(),
        role: form.role,
        team_ids: form.team_ids,
        active: true,
        token_epoch: 0,
    })
}

/// Agents visible to `viewer`: members of the viewer's teams (admins: everyone), by name.
///
/// # Errors
/// Database errors.
pub fn list_agents(conn: &mut DbConn, viewer: &AgentInfo) -> Result<Vec<AgentView>, AppError> {
    let rows: Vec<AgentRow> = if viewer.role.all_teams() {
        agents::table
            .select(AgentRow::as_select())
            .order(agents::name)
            .load(conn)?
    } else {
        let ids = team_members::table
            .filter(team_members::team_id.eq_any(&viewer.team_ids))
            .select(team_members::agent_id);
        agents::table
            .filter(agents::id.eq_any(ids))
            .select(AgentRow::as_select())
            .order(agents::name)
            .load(conn)?
    };
    rows.into_iter()
        .map(|r| info_from_row(conn, r).map(|i| i.view()))
        .collect()
}

/// The team with this slug.
///
/// # Errors
/// [`AppError::NotFound`] when there is none; database errors.
pub fn team_by_slug(conn: &mut DbConn, slug: &str) -> Result<TeamRow, AppError> {
    teams::table
        .filter(teams::slug.eq(slug))
        .select(TeamRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no team {slug:?}")))
}

/// Teams visible to `viewer` (admins: all), by name.
///
/// # Errors
/// Database errors.
pub fn list_teams(conn: &mut DbConn, viewer: &AgentInfo) -> Result<Vec<TeamView>, AppError> {
    let mut q = teams::table
        .select(TeamRow::as_select())
        .order(teams::name)
        .into_boxed();
    if !viewer.role.all_teams() {
        q = q.filter(teams::id.eq_any(viewer.team_ids.clone()));
    }
    Ok(q.load(conn)?.into_iter().map(TeamView::from).collect())
}

/// Creates a team.
///
/// # Errors
/// [`AppError::Conflict`] for a taken slug; database errors.
pub fn create_team(conn: &mut DbConn, name: &str, slug: &str) -> Result<TeamView, AppError> {
    let row = TeamRow {
        id: new_id(),
        name: name.trim().to_string(),
        slug: slug.to_string(),
        created_at: now_ms(),
    };
    diesel::insert_into(teams::table)
        .values((
            teams::id.eq(&row.id),
            teams::name.eq(&row.name),
            teams::slug.eq(&row.slug),
            teams::created_at.eq(row.created_at),
        ))
        .execute(conn)
        .map_err(|e| {
            if is_unique_violation(&e) {
                AppError::Conflict(format!("a team with slug {slug:?} already exists"))
            } else {
                e.into()
            }
        })?;
    // Every team starts with the shipped automations, turned off.
    crate::store::automations::ensure_presets(conn, &row.id, row.created_at)?;
    Ok(row.into())
}

/// Adds an agent to a team (no-op when already a member).
///
/// # Errors
/// [`AppError::NotFound`] for an unknown team; database errors.
pub fn add_member(conn: &mut DbConn, team_id: &str, agent_id: &str) -> Result<(), AppError> {
    if !team_exists(conn, team_id)? {
        return Err(AppError::NotFound(format!("no team {team_id}")));
    }
    match diesel::insert_into(team_members::table)
        .values((
            team_members::team_id.eq(team_id),
            team_members::agent_id.eq(agent_id),
        ))
        .execute(conn)
    {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
