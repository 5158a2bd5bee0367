//! Account lifecycle: editing an agent, deactivation and reactivation, passwords and
//! leaving a team.
//!
//! Every change that takes access away bumps `agents.token_epoch` in the same
//! transaction, so tokens issued before it are refused from the next request on
//! ([`crate::auth::Principal::from_token`]); the caller then publishes
//! [`crate::bus::BusEvent::AgentRevoked`] so open WebSockets close on every node.
//! Which changes revoke is [`revokes`], a pure rule.

use diesel::prelude::*;

use super::{email_taken, info_from_row, AgentInfo, AgentRow};
use crate::db::schema::{agents, team_members};
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::model::Role;

/// What an admin changes on an agent; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentChange {
    /// New display name (already validated).
    pub name: Option<String>,
    /// New login email (already validated and lower-cased).
    pub email: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// `false` deactivates (no login, no connection, no routing); `true` reactivates.
    pub active: Option<bool>,
}

/// The agent after a change, and the epoch its tokens must now carry when the change
/// revoked the ones issued before.
#[derive(Debug, Clone)]
pub struct Changed {
    /// The agent as stored after the change.
    pub info: AgentInfo,
    /// `Some(new epoch)` when earlier tokens were revoked.
    pub revoked_epoch: Option<i64>,
}

/// Whether `change` takes access away from an agent whose role and activation are
/// `role` and `active`: deactivation and any change of role do (a promotion too: the
/// open sessions were scoped for the old role and reconnect with the new one).
/// Name, email and reactivation do not.
pub fn revokes(role: Role, active: bool, change: &AgentChange) -> bool {
    let deactivated = active && change.active == Some(false);
    let role_changed = change.role.is_some_and(|r| r != role);
    deactivated || role_changed
}

/// Whether `change` would leave an active admin no longer an active admin.
fn removes_an_admin(role: Role, active: bool, change: &AgentChange) -> bool {
    let was_admin = role == Role::Admin && active;
    let stays_admin = change.role.unwrap_or(role) == Role::Admin && change.active.unwrap_or(active);
    was_admin && !stays_admin
}

fn agent_row(conn: &mut DbConn, agent_id: &str) -> Result<AgentRow, AppError> {
    agents::table
        .find(agent_id)
        .select(AgentRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no agent {agent_id}")))
}

fn bump_epoch(conn: &mut DbConn, agent_id: &str) -> Result<i64, AppError> {
    Ok(diesel::update(agents::table.find(agent_id))
        .set(agents::token_epoch.eq(agents::token_epoch + 1))
        .returning(agents::token_epoch)
        .get_result(conn)?)
}

/// Applies `change` to an agent in one transaction, bumping the token epoch when
/// [`revokes`] says so.
///
/// # Errors
/// [`AppError::NotFound`] for an unknown agent; [`AppError::Conflict`] for an email
/// another agent has, or when the change would leave no active admin (the hub would
/// have nobody left who can manage it); database errors.
pub fn update_agent(
    conn: &mut DbConn,
    agent_id: &str,
    change: &AgentChange,
) -> Result<Changed, AppError> {
    write_transaction::<_, AppError, _>(conn, |conn| {
        let row = agent_row(conn, agent_id)?;
        let role = Role::parse(&row.role)?;
        let active = row.active == 1;
        if removes_an_admin(role, active, change) {
            let admins: i64 = agents::table
                .filter(agents::role.eq(Role::Admin.as_str()))
                .filter(agents::active.eq(1))
                .count()
                .get_result(conn)?;
            if admins <= 1 {
                return Err(AppError::Conflict(
                    "This is the last active admin: make someone else an admin first.".into(),
                ));
            }
        }
        let name = change.name.clone().unwrap_or(row.name.clone());
        let email = change.email.clone().unwrap_or(row.email.clone());
        let new_role = change.role.unwrap_or(role);
        let new_active = i32::from(change.active.unwrap_or(active));
        diesel::update(agents::table.find(agent_id))
            .set((
                agents::name.eq(&name),
                agents::email.eq(&email),
                agents::role.eq(new_role.as_str()),
                agents::active.eq(new_active),
            ))
            .execute(conn)
            .map_err(|e| email_taken(e, &email))?;
        let revoked_epoch = if revokes(role, active, change) {
            Some(bump_epoch(conn, agent_id)?)
        } else {
            None
        };
        let row = agent_row(conn, agent_id)?;
        let info = info_from_row(conn, row)?;
        Ok(Changed {
            info,
            revoked_epoch,
        })
    })
}

/// Stores a new password hash and revokes every token issued before; returns the new
/// epoch.
///
/// # Errors
/// [`AppError::NotFound`] for an unknown agent; database errors.
pub fn set_password(
    conn: &mut DbConn,
    agent_id: &str,
    password_hash: &str,
) -> Result<i64, AppError> {
    write_transaction::<_, AppError, _>(conn, |conn| {
        let n = diesel::update(agents::table.find(agent_id))
            .set(agents::password_hash.eq(password_hash))
            .execute(conn)?;
        if n == 0 {
            return Err(AppError::NotFound(format!("no agent {agent_id}")));
        }
        bump_epoch(conn, agent_id)
    })
}

/// The stored password hash of an agent (for checking the current password before a
/// change).
///
/// # Errors
/// [`AppError::NotFound`] for an unknown agent; database errors.
pub fn password_hash(conn: &mut DbConn, agent_id: &str) -> Result<String, AppError> {
    Ok(agent_row(conn, agent_id)?.password_hash)
}

/// Removes an agent from a team; returns the new epoch when it was a member (its
/// tokens and sessions were scoped to that team), `None` when it was not.
///
/// # Errors
/// Database errors.
pub fn remove_member(
    conn: &mut DbConn,
    team_id: &str,
    agent_id: &str,
) -> Result<Option<i64>, AppError> {
    write_transaction::<_, AppError, _>(conn, |conn| {
        let n = diesel::delete(
            team_members::table
                .filter(team_members::team_id.eq(team_id))
                .filter(team_members::agent_id.eq(agent_id)),
        )
        .execute(conn)?;
        if n == 0 {
            return Ok(None);
        }
        bump_epoch(conn, agent_id).map(Some)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(role: Option<Role>, active: Option<bool>) -> AgentChange {
        AgentChange {
            role,
            active,
            ..AgentChange::default()
        }
    }

    #[test]
    fn deactivation_and_role_changes_revoke_the_rest_does_not() {
        assert!(revokes(Role::Agent, true, &change(None, Some(false))));
        assert!(revokes(
            Role::Agent,
            true,
            &change(Some(Role::Manager), None)
        ));
        assert!(revokes(Role::Admin, true, &change(Some(Role::Agent), None)));
        assert!(!revokes(
            Role::Agent,
            true,
            &change(Some(Role::Agent), None)
        ));
        assert!(!revokes(Role::Agent, false, &change(None, Some(true))));
        assert!(!revokes(Role::Agent, false, &change(None, Some(false))));
        let rename = AgentChange {
            name: Some("New name".into()),
            email: Some("new@example.com".into()),
            ..AgentChange::default()
        };
        assert!(!revokes(Role::Manager, true, &rename));
    }

    #[test]
    fn only_demoting_or_deactivating_an_active_admin_removes_one() {
        assert!(removes_an_admin(
            Role::Admin,
            true,
            &change(Some(Role::Manager), None)
        ));
        assert!(removes_an_admin(
            Role::Admin,
            true,
            &change(None, Some(false))
        ));
        assert!(!removes_an_admin(
            Role::Admin,
            true,
            &change(None, Some(true))
        ));
        assert!(!removes_an_admin(
            Role::Admin,
            false,
            &change(Some(Role::Agent), None)
        ));
        assert!(!removes_an_admin(
            Role::Manager,
            true,
            &change(None, Some(false))
        ));
    }
}
