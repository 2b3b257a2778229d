//! The hub's one error type. Domain code returns it; `http::error` maps it to
//! problem+json and `hub` maps it to protocol `error` frames — each mapping
//! written once. Internal detail is logged where it happens, never sent.

pub use audotics_protocol::ErrorCode;
use audotics_protocol::{FieldError, FrameError, ServerMsg};

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
    /// A rate limit with a known wait (REST: 429 + `Retry-After`).
    #[error("too many requests, retry in {} s", retry_after.as_secs().max(1))]
    TooManyRequests { retry_after: std::time::Duration },
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
            Error::RateLimited | Error::TooManyRequests { .. } => ErrorCode::RateLimited,
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

/// True when Postgres refused the data itself (SQLSTATE class 22, a data
/// exception, or 23, an integrity constraint): the same rows would be
/// refused again, whereas another batch without them would not.
pub fn is_data_error(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23")))
}

impl From<FieldError> for Error {
    fn from(e: FieldError) -> Error {
        Error::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Error {
        match e {
            FrameError::Malformed(m) => Error::Malformed(m),
            FrameError::Invalid(f) => f.into(),
        }
    }
}

impl Error {
    /// The `error` frame answering `req` (if any) with this error's code and
    /// words: the one mapping of errors to the WebSocket protocol.
    pub fn to_frame(&self, req: Option<String>) -> ServerMsg {
        let code = match self.code() {
            // Internal trouble is, to a client, "not applied, retry later".
            ErrorCode::Internal => ErrorCode::Unavailable,
            c => c,
        };
        let message = match self {
            Error::Internal(_) => "temporarily unavailable, retry later".to_owned(),
            e => e.to_string(),
        };
        ServerMsg::Error { req, code, message }
    }
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
