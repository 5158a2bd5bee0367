//! Who is calling: password hashing, signed tokens, and the request extractors that
//! turn an `Authorization: Bearer` header into a [`Principal`].
//!
//! Tokens are HS256 JWTs (the `jsonwebtoken` crate) signed with the hub secret, which
//! every node shares through the database (or `SWITCHBOARD_SECRET`). An agent token
//! names the agent and the token epoch it was issued under; a guest token names the
//! contact and the one conversation it may use. The agent's role, teams and epoch are
//! read from the database on every authentication: a token from an earlier epoch (before
//! a deactivation, role change, team removal or password change — see
//! [`crate::store::accounts::lifecycle`]) is refused without waiting for expiry.
//! Passwords are hashed with argon2id (the `argon2` crate, default parameters).

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

use actix_web::{dev::Payload, web, FromRequest, HttpMessage, HttpRequest};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::state::AppState;
use crate::store::accounts::{self, AgentInfo};

/// Hashes a password with argon2id and a random salt, as a PHC string.
/// CPU-heavy (tens of milliseconds): call from a blocking context.
///
/// # Errors
/// [`AppError::Internal`] if hashing fails (it does not for sane inputs).
pub fn hash_password(password: &str) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(format!("password hashing failed: {e}")))
}

/// Checks a password against a stored PHC hash. Unparseable hashes never match.
/// CPU-heavy: call from a blocking context.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Spends the same time as a real verification, so a login for an unknown email
/// cannot be told apart from a wrong password by its timing.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default());
    let _ = verify_password(password, phc);
}

/// Minimum password length for agent accounts.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// An agent's login.
    Agent,
    /// A widget guest's session.
    Guest,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    kind: TokenKind,
    iat: u64,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conv: Option<String>,
    /// Agent tokens: the account's token epoch at issue. Tokens from before epochs
    /// existed carry none and count as epoch 0.
    #[serde(default)]
    ver: i64,
}

/// What a verified token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSubject {
    /// An agent, by id.
    Agent {
        /// Agent id.
        agent_id: String,
        /// The account's token epoch when the token was issued.
        epoch: i64,
    },
    /// A guest: a contact and its one conversation.
    Guest {
        /// Contact id.
        contact_id: String,
        /// The conversation the token grants.
        conversation_id: String,
    },
}

/// Signs and verifies tokens with the hub secret.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    agent_ttl: Duration,
    guest_ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

impl Tokens {
    /// Keys from the shared secret; lifetimes for agent and guest tokens.
    pub fn new(secret: &[u8], agent_ttl: Duration, guest_ttl: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            agent_ttl,
            guest_ttl,
        }
    }

    fn issue(&self, claims: &Claims) -> Result<String, AppError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AppError::internal(format!("token signing failed: {e}")))
    }

    fn claims(&self, sub: String, kind: TokenKind, ttl: Duration, conv: Option<String>) -> Claims {
        let iat = jsonwebtoken::get_current_timestamp();
        Claims {
            sub,
            kind,
            iat,
            exp: iat.saturating_add(ttl.as_secs()),
            conv,
            ver: 0,
        }
    }

    /// A token for an agent under the account's current token `epoch`.
    ///
    /// # Errors
    /// [`AppError::Internal`] if signing fails.
    pub fn issue_agent(&self, agent_id: &str, epoch: i64) -> Result<String, AppError> {
        let mut claims = self.claims(agent_id.into(), TokenKind::Agent, self.agent_ttl, None);
        claims.ver = epoch;
        self.issue(&claims)
    }

    /// A token for a guest's contact and conversation.
    ///
    /// # Errors
    /// [`AppError::Internal`] if signing fails.
    pub fn issue_guest(&self, contact_id: &str, conversation_id: &str) -> Result<String, AppError> {
        self.issue(&self.claims(
            contact_id.into(),
            TokenKind::Guest,
            self.guest_ttl,
            Some(conversation_id.into()),
        ))
    }

    /// Verifies signature, algorithm and expiry.
    ///
    /// # Errors
    /// [`AppError::Unauthorized`] for anything but a valid, unexpired token of ours.
    pub fn verify(&self, token: &str) -> Result<TokenSubject, AppError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp"]);
        let data = jsonwebtoken::decode::<Claims>(token.trim(), &self.decoding, &validation)
            .map_err(|e| {
                // Expired, forged or garbled: the caller only learns that it must log
                // in again; the reason is for whoever reads the logs.
                tracing::debug!(reason = %e, "token refused");
                AppError::Unauthorized(crate::error::INVALID_SESSION_MESSAGE.into())
            })?;
        let c = data.claims;
        match (c.kind, c.conv) {
            (TokenKind::Agent, None) => Ok(TokenSubject::Agent {
                agent_id: c.sub,
                epoch: c.ver,
            }),
            (TokenKind::Guest, Some(conversation_id)) => Ok(TokenSubject::Guest {
                contact_id: c.sub,
                conversation_id,
            }),
            _ => {
                tracing::debug!("token refused: malformed claims");
                Err(AppError::Unauthorized(
                    crate::error::INVALID_SESSION_MESSAGE.into(),
                ))
            }
        }
    }
}

/// A guest as authenticated by its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestInfo {
    /// Contact id.
    pub contact_id: String,
    /// The only conversation this guest may read and write.
    pub conversation_id: String,
}

/// Whoever is calling: an agent (with role and teams) or a guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A logged-in agent, team lead or admin.
    Agent(AgentInfo),
    /// A widget guest.
    Guest(GuestInfo),
}

impl Principal {
    /// Resolves a bearer token: verifies it and, for agents, loads role and teams and
    /// checks the token's epoch against the account's.
    ///
    /// # Errors
    /// [`AppError::Unauthorized`] for bad tokens, removed or deactivated agents and
    /// revoked tokens; [`AppError::Unavailable`] when the database is down.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Self, AppError> {
        match state.tokens.verify(token)? {
            TokenSubject::Agent { agent_id, epoch } => {
                let info = state
                    .db
                    .run(move |c| accounts::active_agent(c, &agent_id))
                    .await?;
                if info.token_epoch != epoch {
                    tracing::debug!(agent = %info.id, epoch, current = info.token_epoch, "token refused: revoked");
                    return Err(AppError::Unauthorized(
                        crate::error::INVALID_SESSION_MESSAGE.into(),
                    ));
                }
                Ok(Self::Agent(info))
            }
            TokenSubject::Guest {
                contact_id,
                conversation_id,
            } => Ok(Self::Guest(GuestInfo {
                contact_id,
                conversation_id,
            })),
        }
    }
}

/// The token from `Authorization: Bearer <token>`, if present.
///
/// # Errors
/// [`AppError::Unauthorized`] when the header exists but is not a bearer token.
pub fn bearer(req: &HttpRequest) -> Result<Option<String>, AppError> {
    let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AppError::Unauthorized("Authorization header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_string()))
        }
        _ => Err(AppError::Unauthorized(
            "expected Authorization: Bearer <token>".into(),
        )),
    }
}

fn state_of(req: &HttpRequest) -> Result<AppState, AppError> {
    req.app_data::<web::Data<AppState>>()
        .map(|d| d.get_ref().clone())
        .ok_or_else(|| AppError::internal("application state missing"))
}

impl Principal {
    /// The caller of `req`: the principal the route table's check already left in
    /// the request's extensions (`http::endpoints`), else from the bearer token.
    ///
    /// # Errors
    /// As [`Principal::from_token`]; [`AppError::Unauthorized`] without a token.
    pub fn authenticate(req: &HttpRequest) -> impl Future<Output = Result<Self, AppError>> {
        let known = req.extensions().get::<Principal>().cloned();
        let token = bearer(req);
        let state = state_of(req);
        async move {
            if let Some(principal) = known {
                return Ok(principal);
            }
            let token =
                token?.ok_or_else(|| AppError::Unauthorized("missing bearer token".into()))?;
            Principal::from_token(&state?, &token).await
        }
    }

    /// The agent's role, `None` for a guest.
    pub fn role(&self) -> Option<crate::model::Role> {
        match self {
            Self::Agent(a) => Some(a.role),
            Self::Guest(_) => None,
        }
    }
}

impl FromRequest for Principal {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(Principal::authenticate(req))
    }
}

/// Extractor for routes only agents may use; a guest token gets 403.
#[derive(Clone, Debug)]
pub struct AuthAgent(pub AgentInfo);

impl FromRequest for AuthAgent {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload);
        Box::pin(async move {
            match principal.await? {
                Principal::Agent(info) => Ok(Self(info)),
                Principal::Guest(_) => Err(AppError::Forbidden("agents only".into())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(60),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn tokens_round_trip() {
        let t = tokens();
        let agent = t.issue_agent("a1", 3).unwrap();
        assert_eq!(
            t.verify(&agent).unwrap(),
            TokenSubject::Agent {
                agent_id: "a1".into(),
                epoch: 3,
            }
        );
        let guest = t.issue_guest("c1", "v1").unwrap();
        assert_eq!(
            t.verify(&guest).unwrap(),
            TokenSubject::Guest {
                contact_id: "c1".into(),
                conversation_id: "v1".into()
            }
        );
    }

    #[test]
    fn forged_and_foreign_tokens_fail() {
        let t = tokens();
        let other = Tokens::new(
            b"another-secret-another-secret-xx",
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        let token = other.issue_agent("a1", 0).unwrap();
        assert!(matches!(t.verify(&token), Err(AppError::Unauthorized(_))));
        let mut tampered = t.issue_agent("a1", 0).unwrap();
        tampered.push('x');
        assert!(t.verify(&tampered).is_err());
        assert!(t.verify("not.a.token").is_err());
    }

    #[test]
    fn expired_tokens_fail() {
        let t = Tokens::new(
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(0),
            Duration::from_secs(0),
        );
        let mut claims = t.claims("a1".into(), TokenKind::Agent, Duration::from_secs(0), None);
        claims.exp = claims.iat.saturating_sub(3600);
        let token = t.issue(&claims).unwrap();
        assert!(t.verify(&token).is_err());
    }

    #[test]
    fn passwords_verify() {
        let phc = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong horse", &phc));
        assert!(!verify_password("x", "garbage"));
    }
}
