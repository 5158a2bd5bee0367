//! `POST /api/auth/login`, `GET /api/auth/me`, `POST /api/auth/password` (change one's
//! own password: revokes one's other sessions, answers with a fresh token).
//!
//! Login is limited twice: per client address (`SWITCHBOARD_RATE_LOGIN`) and per
//! account, with an exponential back-off after consecutive wrong passwords
//! ([`crate::ratelimit::LoginBackoff`]). The per-account limit holds whichever address
//! asks, so a guesser cannot spread over many addresses; it only slows that one
//! account, so a guesser cannot lock everyone out from one address.

use super::endpoints::{endpoint, Endpoint};
use crate::access::Rule;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{verify_dummy, verify_password, AuthAgent};
use crate::clock::now_ms;
use crate::error::AppError;
use crate::ratelimit::normalise_email;
use crate::state::AppState;
use crate::store::accounts;
use crate::store::audit::{self, AuditAction, AuditEntry};

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(POST "/auth/login", Rule::Open, login),
    endpoint!(GET "/auth/me", Rule::AnyAgent, me),
    endpoint!(POST "/auth/password", Rule::AnyAgent, change_password),
];

#[derive(Deserialize)]
struct Login {
    email: String,
    password: String,
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<Login>,
) -> Result<HttpResponse, AppError> {
    let ip = super::client_ip(&req);
    state.limits.login(ip)?;
    let Login { email, password } = body.into_inner();
    let account = normalise_email(&email);
    let attempted = super::audit::anonymous(&account, &req);
    let backoff = state.limits.login_backoff();
    if let Err(e) = backoff.check(&account, now_ms()) {
        tracing::warn!(%account, address = %ip, "login refused: account is backing off");
        return Err(e);
    }
    let row = state
        .db
        .run(move |c| accounts::agent_by_email(c, &email))
        .await?;
    // argon2 is deliberately slow: verify on the blocking pool, and spend the same
    // time for unknown emails so timing does not reveal which emails exist.
    let verified = tokio::task::spawn_blocking(move || match row {
        Some(row) if row.active == 1 && verify_password(&password, &row.password_hash) => Some(row),
        Some(_) => None,
        None => {
            verify_dummy(&password);
            None
        }
    })
    .await
    .map_err(AppError::internal)?;
    let Some(row) = verified else {
        let failures = backoff.failed(&account, now_ms());
        tracing::warn!(%account, address = %ip, failures, "login failed");
        // Nothing else is written for a failed login: the entry stands alone.
        let entry = AuditEntry::new(&attempted, AuditAction::LoginFailed);
        state
            .db
            .run(move |c| audit::record(c, &entry, now_ms()))
            .await?;
        return Err(AppError::InvalidCredentials);
    };
    backoff.succeeded(&account);
    let req_ip = super::audit::ip_of(&req);
    let info = state
        .db
        .run(move |c| {
            let info = accounts::agent_info(c, row)?;
            let who = audit::AuditActor {
                id: Some(info.id.clone()),
                label: info.email.clone(),
                ip: req_ip,
            };
            let entry = AuditEntry::new(&who, AuditAction::Login).target("agent", &info.id);
            audit::record(c, &entry, now_ms())?;
            Ok(info)
        })
        .await?;
    let token = state.tokens.issue_agent(&info.id, info.token_epoch)?;
    tracing::info!(agent = %info.id, "agent logged in");
    Ok(HttpResponse::Ok().json(json!({"token": token, "agent": with_permissions(&info)})))
}

/// `GET /api/auth/me`: `{"agent": {…, "permissions": [..]}}`.
async fn me(AuthAgent(agent): AuthAgent) -> HttpResponse {
    HttpResponse::Ok().json(json!({"agent": with_permissions(&agent)}))
}

/// The agent's public view plus its role's permissions, so a client shows only
/// the screens the hub will allow (`docs/roles.md`).
fn with_permissions(agent: &accounts::AgentInfo) -> serde_json::Value {
    let mut view = json!(agent.view());
    view["permissions"] = json!(agent.role.permissions());
    view
}

#[derive(Deserialize)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /api/auth/password`: the caller changes their own password. Every other
/// session of theirs ends (tokens from before are revoked); the answer carries a fresh
/// token for this one, `{"token"}`.
async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, AppError> {
    let PasswordChange {
        current_password,
        new_password,
    } = body.into_inner();
    super::agents::validate_password(&new_password)?;
    let backoff = state.limits.login_backoff();
    let account = normalise_email(&agent.email);
    backoff.check(&account, now_ms())?;
    let id = agent.id.clone();
    let stored = state
        .db
        .run(move |c| accounts::lifecycle::password_hash(c, &id))
        .await?;
    let ok = tokio::task::spawn_blocking(move || verify_password(&current_password, &stored))
        .await
        .map_err(AppError::internal)?;
    if !ok {
        // Same back-off as logins: a stolen session must not become a password oracle.
        let failures = backoff.failed(&account, now_ms());
        tracing::warn!(agent = %agent.id, address = %super::client_ip(&req), failures, "password change refused: wrong current password");
        return Err(AppError::Validation(
            "The current password is not right.".into(),
        ));
    }
    let hash = super::agents::hash_off_thread(new_password).await?;
    let (id, who) = (agent.id.clone(), super::audit::actor(&agent, &req));
    let epoch = state
        .db
        .run(move |c| {
            crate::db::write_transaction(c, |c| {
                let epoch = accounts::lifecycle::set_password(c, &id, &hash)?;
                // The hash is redacted by `record`: the entry says a password was set.
                let entry = AuditEntry::new(&who, AuditAction::PasswordChanged)
                    .target("agent", &id)
                    .after(serde_json::json!({ "password_hash": hash }));
                audit::record(c, &entry, now_ms())?;
                super::agents::record_revocation(c, &who, &id, epoch)?;
                Ok(epoch)
            })
        })
        .await?;
    super::agents::revoke(&state, &agent.id, epoch);
    let token = state.tokens.issue_agent(&agent.id, epoch)?;
    tracing::info!(agent = %agent.id, "password changed by its owner");
    Ok(HttpResponse::Ok().json(json!({ "token": token })))
}
