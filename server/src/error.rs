//! The one error type of the hub and how it reaches clients.
//!
//! Every fallible operation returns [`AppError`]. Over HTTP it becomes a status code
//! and a JSON body `{"error": "<code>", "message": "<sentence>"}`; over WebSocket it
//! becomes an `error` frame with the same code (see `docs/protocol.md`). Internal
//! details (SQL, file paths, database hosts, token-decoding causes) are logged,
//! never shown to clients: outages and bad tokens get fixed sentences.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// What went wrong, in terms a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request could not be read: malformed JSON, wrong types, invalid UTF-8 (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request was understood but a value is unacceptable (400).
    #[error("{0}")]
    Validation(String),
    /// Missing, malformed, expired or forged token (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Wrong email or password; deliberately the same answer for both (401).
    #[error("wrong email or password")]
    InvalidCredentials,
    /// Authenticated, but not allowed to see or change this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such thing (404).
    #[error("{0}")]
    NotFound(String),
    /// The change collides with the current state, e.g. a duplicate email (409).
    #[error("{0}")]
    Conflict(String),
    /// The body or frame is over the size limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many attempts (from one address, for one account, or messages from one
    /// guest); the client may try again after the given wait (429, `Retry-After`).
    #[error("Too many attempts; please wait {} s and try again.", retry_after_secs(*.0))]
    RateLimited(Duration),
    /// The database cannot be reached or could not commit; nothing was stored and the
    /// client should retry (503). The string is logged; clients see
    /// [`UNAVAILABLE_MESSAGE`].
    #[error("{0}")]
    Unavailable(String),
    /// A bug. The string is logged, clients see a generic sentence (500).
    #[error("internal error")]
    Internal(String),
}

/// What clients are told about any [`AppError::Unavailable`]: the cause (a database
/// host, a driver error) is for the logs only.
pub const UNAVAILABLE_MESSAGE: &str =
    "The service is temporarily unavailable; please retry shortly.";

/// What clients are told about a token that is malformed, forged or expired; the
/// decoder's reason is logged at debug level.
pub const INVALID_SESSION_MESSAGE: &str =
    "Your session is invalid or has expired; please log in again.";

/// Whole seconds to announce in `Retry-After` for a wait: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `validation`.
    pub error: &'static str,
    /// A sentence for humans.
    pub message: String,
}

impl AppError {
    /// The stable code used in JSON bodies and `error` frames.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Validation(_) => "validation",
            Self::Unauthorized(_) => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The message shown to clients (internal errors and outages are not described).
    pub fn public_message(&self) -> String {
        match self {
            Self::Unavailable(_) => UNAVAILABLE_MESSAGE.into(),
            other => other.to_string(),
        }
    }

    /// The JSON body for this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code(),
            message: self.public_message(),
        }
    }

    /// Shorthand for an [`AppError::Internal`] from anything printable.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(detail) => tracing::error!(%detail, "internal error"),
            Self::Unavailable(detail) => tracing::warn!(%detail, "service unavailable"),
            _ => {}
        }
        let mut resp = HttpResponse::build(self.status_code());
        // Providers and well-behaved clients honour Retry-After.
        match self {
            Self::Unavailable(_) => {
                resp.insert_header(("Retry-After", "5"));
            }
            Self::RateLimited(wait) => {
                resp.insert_header(("Retry-After", retry_after_secs(*wait).to_string()));
            }
            _ => {}
        }
        resp.json(self.body())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::NotFound => Self::NotFound("not found".into()),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Self::Conflict(format!(
                    "already exists ({})",
                    info.constraint_name().unwrap_or("unique")
                ))
            }
            // A write naming a team, conversation or document that does not exist
            // (or was deleted meanwhile): the caller's mistake, not ours.
            Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
                Self::NotFound(format!(
                    "it refers to something that does not exist ({})",
                    info.constraint_name().unwrap_or("foreign key")
                ))
            }
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::Unavailable(format!("database connection lost: {}", info.message()))
            }
            Error::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                if looks_like_outage(info.message()) =>
            {
                Self::Unavailable(format!("database unavailable: {}", info.message()))
            }
            Error::BrokenTransactionManager => {
                Self::Unavailable("database connection broken".into())
            }
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

/// libpq and SQLite report outages as untyped errors; these phrases are theirs.
fn looks_like_outage(message: &str) -> bool {
    const PHRASES: [&str; 7] = [
        "server closed the connection",
        "terminating connection",
        "could not connect",
        "connection refused",
        "no connection to the server",
        "database is locked",
        "the database system is shutting down",
    ];
    let m = message.to_ascii_lowercase();
    PHRASES.iter().any(|p| m.contains(p))
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        Self::Unavailable(format!("no database connection: {err}"))
    }
}

impl From<actix_web::error::JsonPayloadError> for AppError {
    fn from(err: actix_web::error::JsonPayloadError) -> Self {
        use actix_web::error::JsonPayloadError as E;
        match err {
            E::OverflowKnownLength { length, limit } => Self::PayloadTooLarge(format!(
                "The request is too large ({length} bytes; at most {limit} bytes are accepted)."
            )),
            E::Overflow { limit } => Self::PayloadTooLarge(format!(
                "The request is too large (at most {limit} bytes are accepted)."
            )),
            E::ContentType => Self::BadRequest("expected Content-Type: application/json".into()),
            E::Deserialize(e) => Self::BadRequest(format!("invalid JSON: {e}")),
            E::Payload(e) => Self::BadRequest(format!("could not read body: {e}")),
            other => Self::BadRequest(other.to_string()),
        }
    }
}

impl From<actix_web::error::QueryPayloadError> for AppError {
    fn from(err: actix_web::error::QueryPayloadError) -> Self {
        Self::BadRequest(format!("invalid query string: {err}"))
    }
}

impl From<actix_web::error::PathError> for AppError {
    fn from(err: actix_web::error::PathError) -> Self {
        Self::BadRequest(format!("invalid path: {err}"))
    }
}

impl From<actix::MailboxError> for AppError {
    fn from(err: actix::MailboxError) -> Self {
        Self::Unavailable(format!("actor unavailable: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_its_status() {
        let cases = [
            (AppError::Validation("x".into()), 400, "validation"),
            (AppError::InvalidCredentials, 401, "invalid_credentials"),
            (AppError::Conflict("x".into()), 409, "conflict"),
            (
                AppError::PayloadTooLarge("x".into()),
                413,
                "payload_too_large",
            ),
            (
                AppError::RateLimited(Duration::from_secs(3)),
                429,
                "rate_limited",
            ),
            (AppError::Unavailable("x".into()), 503, "unavailable"),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status_code().as_u16(), status);
            assert_eq!(err.code(), code);
        }
    }

    #[test]
    fn internal_details_stay_private() {
        let err = AppError::Internal("SELECT * FROM secrets failed".into());
        assert_eq!(err.public_message(), "internal error");
    }

    #[test]
    fn outages_do_not_name_the_database() {
        use diesel::result::{DatabaseErrorKind, Error};
        // What libpq reports when it cannot reach the server: host, port, database.
        let info = "connection to server at \"db.internal\" (10.1.2.3), port 5433 failed: \
                    could not connect to database \"switchboard_prod\"";
        let err = AppError::from(Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new(info.to_string()),
        ));
        assert_eq!(err.code(), "unavailable");
        assert_eq!(err.public_message(), UNAVAILABLE_MESSAGE);
        assert!(err.to_string().contains("db.internal"), "kept for the logs");
        let body = serde_json::to_string(&err.body()).unwrap();
        for secret in [
            "db.internal",
            "10.1.2.3",
            "5433",
            "switchboard_prod",
            "FATAL",
        ] {
            assert!(!body.contains(secret), "{body}");
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(600)), 600);
    }
}
