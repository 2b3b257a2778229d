//! The hub's one error type. Domain code returns it; `http::error` maps it to
//! problem+json and `hub` maps it to protocol `error` frames — each mapping
//! written once. Internal detail is logged where it happens, never sent.

use serde::{Deserialize, Serialize};

/// The protocol's error words, shared by REST (`code`) and WebSocket frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    Invalid,
    Conflict,
    RateLimited,
    TooLarge,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Invalid => "invalid",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that breaks a rule; `field` names the offending field.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The body could not be read at all (malformed JSON, wrong types).
    #[error("{0}")]
    Malformed(String),
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The route exists but not with this HTTP method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// A WebSocket upgrade asking for a protocol version other than 13.
    #[error("Sec-WebSocket-Version must be 13")]
    WebSocketVersion,
    #[error("{0}")]
    Conflict(String),
    #[error("too many requests")]
    RateLimited,
    #[error("{0}")]
    TooLarge(String),
    /// The database cannot be reached; nothing was changed, retry later.
    #[error("database unavailable, retry later")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Invalid { .. } | Error::Malformed(_) => ErrorCode::Invalid,
            Error::Unauthorized => ErrorCode::Unauthorized,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::MethodNotAllowed | Error::WebSocketVersion => ErrorCode::Invalid,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::RateLimited => ErrorCode::RateLimited,
            Error::TooLarge(_) => ErrorCode::TooLarge,
            Error::Unavailable => ErrorCode::Unavailable,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// True when the error means "could not talk to Postgres" rather than
/// "Postgres said no": the op did not happen and may be retried.
pub fn is_connection_error(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_)
    ) || matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")))
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        if is_connection_error(&e) {
            tracing::warn!(error = %e, "database unavailable");
            Error::Unavailable
        } else {
            Error::Internal(e.into())
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
