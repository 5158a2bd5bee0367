//! Agent and team administration: `POST/GET /api/agents`, `PATCH /api/agents/{id}`,
//! `POST /api/agents/{id}/password`, `GET/POST /api/teams`,
//! `POST /api/teams/{id}/members`, `DELETE /api/teams/{id}/members/{agent_id}`.
//!
//! Changes that take access away revoke the agent's tokens in the same transaction
//! and close its WebSockets on every node ([`revoke`]); see `docs/accounts.md`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::audit::actor;
use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use crate::auth::{hash_password, AuthAgent, MIN_PASSWORD_CHARS};
use crate::bus::BusEvent;
use crate::clock::now_ms;
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::model::{AgentView, Role};
use crate::state::AppState;
use crate::store::accounts::lifecycle::{self, AgentChange};
use crate::store::accounts::{self, CreateAgent};
use crate::store::audit::{self, AuditAction, AuditActor, AuditEntry};

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(POST "/agents", Rule::Agent(P::AccountsManage), create_agent),
    endpoint!(GET "/agents", Rule::Agent(P::AccountsRead), list_agents),
    endpoint!(GET "/teams", Rule::Agent(P::AccountsRead), list_teams),
    endpoint!(POST "/teams", Rule::Agent(P::AccountsManage), create_team),
    endpoint!(PATCH "/agents/{id}", Rule::Agent(P::AccountsManage), update_agent),
    endpoint!(POST "/agents/{id}/password", Rule::Agent(P::AccountsManage), reset_password),
    endpoint!(POST "/teams/{id}/members", Rule::Agent(P::AccountsManage), add_member),
    endpoint!(DELETE "/teams/{id}/members/{agent_id}", Rule::Agent(P::AccountsManage), remove_member),
    endpoint!(GET "/roles", Rule::Agent(P::AccountsRead), list_roles),
];

/// Tells every node that `agent_id`'s sessions from before `epoch` must close.
pub(crate) fn revoke(state: &AppState, agent_id: &str, epoch: i64) {
    tracing::info!(agent = %agent_id, epoch, "agent tokens revoked");
    state.hub.publish(BusEvent::AgentRevoked {
        agent_id: agent_id.to_string(),
        epoch,
    });
}

/// Writes the `agent.tokens_revoked` entry that goes with a change revoking
/// `agent_id`'s tokens (`epoch` is the one they must now carry), in the caller's
/// transaction.
///
/// # Errors
/// Database errors.
pub(crate) fn record_revocation(
    conn: &mut DbConn,
    who: &AuditActor,
    agent_id: &str,
    epoch: i64,
) -> Result<(), AppError> {
    let entry = AuditEntry::new(who, AuditAction::AgentTokensRevoked)
        .target("agent", agent_id)
        .after(json!({ "token_epoch": epoch }));
    audit::record(conn, &entry, now_ms()).map(|_| ())
}

/// An agent as stored, deactivated or not, for the log's before/after.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
fn agent_state(conn: &mut DbConn, agent_id: &str) -> Result<AgentView, AppError> {
    use crate::db::schema::agents;
    use diesel::prelude::*;
    let row = agents::table
        .find(agent_id)
        .select(accounts::AgentRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no agent {agent_id}")))?;
    Ok(accounts::agent_info(conn, row)?.view())
}

/// Checks a new password's length (the only rule: length beats composition rules,
/// NIST SP 800-63B §5.1.1.2).
pub(crate) fn validate_password(password: &str) -> Result<(), AppError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::Validation(format!(
            "The password must be at least {MIN_PASSWORD_CHARS} characters."
        )));
    }
    Ok(())
}

/// Hashes on the blocking pool (argon2 takes tens of milliseconds).
pub(crate) async fn hash_off_thread(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(AppError::internal)?
}

#[derive(Deserialize)]
struct NewAgentBody {
    email: String,
    name: String,
    password: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    team_ids: Option<Vec<String>>,
}

/// A plausible email: one `@`, something on both sides, no spaces, ≤ 254 characters.
/// Deliverability is not checkable here; this only keeps typos and junk out.
fn validate_email(email: &str) -> Result<String, AppError> {
    let email = email.trim().to_lowercase();
    let ok = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.contains('@'));
    if ok {
        Ok(email)
    } else {
        Err(AppError::Validation(
            "This is not a valid email address.".into(),
        ))
    }
}

fn validate_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::Validation(
            "The name must be between 1 and 100 characters.".into(),
        ));
    }
    Ok(name.to_string())
}

async fn create_agent(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(admin): AuthAgent,
    body: web::Json<NewAgentBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let email = validate_email(&body.email)?;
    let name = validate_name(&body.name)?;
    validate_password(&body.password)?;
    let role = Role::parse(body.role.as_deref().unwrap_or("agent"))?;
    let password_hash = hash_off_thread(body.password).await?;
    let team_ids = body.team_ids;
    let who = actor(&admin, &req);
    let info = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let team_ids = match team_ids {
                    Some(ids) => ids,
                    None => accounts::get_setting(c, crate::bootstrap::DEFAULT_TEAM_SETTING)?
                        .into_iter()
                        .collect(),
                };
                let info = accounts::create_agent(
                    c,
                    CreateAgent {
                        email,
                        name,
                        password_hash,
                        role,
                        team_ids,
                    },
                )?;
                let entry = AuditEntry::new(&who, AuditAction::AgentCreated)
                    .target("agent", &info.id)
                    .after(info.view());
                audit::record(c, &entry, now_ms())?;
                Ok(info)
            })
        })
        .await?;
    tracing::info!(agent = %info.id, role = info.role.as_str(), "agent created");
    Ok(HttpResponse::Created().json(json!({"agent": info.view()})))
}

async fn list_agents(
    state: web::Data<AppState>,
    AuthAgent(viewer): AuthAgent,
) -> Result<HttpResponse, AppError> {
    let agents = state
        .db
        .run(move |c| accounts::list_agents(c, &viewer))
        .await?;
    Ok(HttpResponse::Ok().json(json!({"agents": agents})))
}

/// `GET /api/roles`: every role with its permissions, most access first:
/// `{"roles": [{"role": "admin", "permissions": ["conversations.read_team", …]}, …]}`.
async fn list_roles() -> HttpResponse {
    let roles: Vec<_> = Role::ALL
        .into_iter()
        .map(|role| json!({"role": role, "permissions": role.permissions()}))
        .collect();
    HttpResponse::Ok().json(json!({ "roles": roles }))
}

async fn list_teams(
    state: web::Data<AppState>,
    AuthAgent(viewer): AuthAgent,
) -> Result<HttpResponse, AppError> {
    let teams = state
        .db
        .run(move |c| accounts::list_teams(c, &viewer))
        .await?;
    Ok(HttpResponse::Ok().json(json!({"teams": teams})))
}

#[derive(Deserialize)]
struct NewTeamBody {
    name: String,
    slug: String,
}

async fn create_team(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(admin): AuthAgent,
    body: web::Json<NewTeamBody>,
) -> Result<HttpResponse, AppError> {
    let NewTeamBody { name, slug } = body.into_inner();
    let name = validate_name(&name)?;
    let slug_ok = !slug.is_empty()
        && slug.len() <= 48
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !slug_ok {
        return Err(AppError::Validation(
            "The short name (slug) can have up to 48 lower-case letters, digits and dashes.".into(),
        ));
    }
    let who = actor(&admin, &req);
    let team = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let team = accounts::create_team(c, &name, &slug)?;
                let entry = AuditEntry::new(&who, AuditAction::TeamCreated)
                    .target("team", &team.id)
                    .team(&team.id)
                    .after(&team);
                audit::record(c, &entry, now_ms())?;
                Ok(team)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(json!({"team": team})))
}

#[derive(Deserialize)]
struct MemberBody {
    agent_id: String,
}

async fn add_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(admin): AuthAgent,
    path: web::Path<String>,
    body: web::Json<MemberBody>,
) -> Result<HttpResponse, AppError> {
    let team_id = path.into_inner();
    let agent_id = body.into_inner().agent_id;
    let who = actor(&admin, &req);
    state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let before = accounts::active_agent(c, &agent_id)
                    .map_err(|_| AppError::NotFound(format!("no agent {agent_id}")))?;
                accounts::add_member(c, &team_id, &agent_id)?;
                let after = accounts::team_ids_of(c, &agent_id)?;
                let entry = AuditEntry::new(&who, AuditAction::TeamMemberAdded)
                    .target("agent", &agent_id)
                    .team(&team_id)
                    .before(json!({ "team_ids": before.team_ids }))
                    .after(json!({ "team_ids": after }));
                audit::record(c, &entry, now_ms()).map(|_| ())
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PATCH /api/agents/{id}`: fields left out stay as they are.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentPatch {
    name: Option<String>,
    email: Option<String>,
    role: Option<String>,
    active: Option<bool>,
}

async fn update_agent(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(admin): AuthAgent,
    path: web::Path<String>,
    body: web::Json<AgentPatch>,
) -> Result<HttpResponse, AppError> {
    let agent_id = path.into_inner();
    let body = body.into_inner();
    let change = AgentChange {
        name: body.name.as_deref().map(validate_name).transpose()?,
        email: body.email.as_deref().map(validate_email).transpose()?,
        role: body.role.as_deref().map(Role::parse).transpose()?,
        active: body.active,
    };
    let (id, who) = (agent_id.clone(), actor(&admin, &req));
    let changed = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let before = agent_state(c, &id)?;
                let changed = lifecycle::update_agent(c, &id, &change)?;
                let entry = AuditEntry::new(&who, AuditAction::AgentUpdated)
                    .target("agent", &id)
                    .before(before)
                    .after(changed.info.view());
                audit::record(c, &entry, now_ms())?;
                if let Some(epoch) = changed.revoked_epoch {
                    record_revocation(c, &who, &id, epoch)?;
                }
                Ok(changed)
            })
        })
        .await?;
    if let Some(epoch) = changed.revoked_epoch {
        revoke(&state, &agent_id, epoch);
    }
    tracing::info!(agent = %agent_id, by = %admin.id, role = changed.info.role.as_str(), active = changed.info.active, "agent updated");
    Ok(HttpResponse::Ok().json(json!({"agent": changed.info.view()})))
}

#[derive(Deserialize)]
struct PasswordReset {
    password: String,
}

/// An admin sets a new password for someone (who forgot theirs, or whose account may
/// be compromised): every session of that agent ends.
async fn reset_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(admin): AuthAgent,
    path: web::Path<String>,
    body: web::Json<PasswordReset>,
) -> Result<HttpResponse, AppError> {
    let agent_id = path.into_inner();
    let PasswordReset { password } = body.into_inner();
    validate_password(&password)?;
    let hash = hash_off_thread(password).await?;
    let (id, who) = (agent_id.clone(), actor(&admin, &req));
    let epoch = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let epoch = lifecycle::set_password(c, &id, &hash)?;
                // The hash is redacted by `record`: the entry says a password was set.
                let entry = AuditEntry::new(&who, AuditAction::AgentPasswordReset)
                    .target("agent", &id)
                    .after(json!({ "password_hash": hash }));
                audit::record(c, &entry, now_ms())?;
                record_revocation(c, &who, &id, epoch)?;
                Ok(epoch)
            })
        })
        .await?;
    revoke(&state, &agent_id, epoch);
    tracing::info!(agent = %agent_id, by = %admin.id, "password reset by an admin");
    Ok(HttpResponse::NoContent().finish())
}

async fn remove_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(admin): AuthAgent,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (team_id, agent_id) = path.into_inner();
    let (id, who) = (agent_id.clone(), actor(&admin, &req));
    let epoch = state
        .db
        .run(move |c| {
            write_transaction(c, |c| {
                let before = accounts::team_ids_of(c, &id)?;
                let Some(epoch) = lifecycle::remove_member(c, &team_id, &id)? else {
                    return Err(AppError::NotFound(format!(
                        "agent {id} is not a member of this team"
                    )));
                };
                let after = accounts::team_ids_of(c, &id)?;
                let entry = AuditEntry::new(&who, AuditAction::TeamMemberRemoved)
                    .target("agent", &id)
                    .team(&team_id)
                    .before(json!({ "team_ids": before }))
                    .after(json!({ "team_ids": after }));
                audit::record(c, &entry, now_ms())?;
                record_revocation(c, &who, &id, epoch)?;
                Ok(epoch)
            })
        })
        .await?;
    revoke(&state, &agent_id, epoch);
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_loosely() {
        assert_eq!(
            validate_email(" Sarah@Example.com ").unwrap(),
            "sarah@example.com"
        );
        for bad in ["", "no-at", "@x.com", "a@b", "a b@c.com", "a@b@c.com"] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }
}
