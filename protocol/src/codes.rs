//! The protocol's error words (REST `code` and the `error` frame's `code`)
//! and the WebSocket close codes the hub sends.

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

/// Close codes the hub sends: RFC 6455's and the protocol's 4xxx.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum CloseCode {
    /// After the client's `leave`.
    Normal = 1000,
    /// The hub is shutting down, the session actor stopped under an op, or
    /// the peer went silent.
    GoingAway = 1001,
    ProtocolError = 1002,
    /// A binary frame.
    Unsupported = 1003,
    /// Invalid UTF-8.
    InvalidPayload = 1007,
    /// A message over the size limit.
    TooBig = 1009,
    /// The hub is at its connection limit and needed this connection's
    /// place: it had not joined a session yet.
    TryAgainLater = 1013,
    /// `join` with a bad token.
    Unauthorized = 4001,
    /// No longer a member (removed outside the hub, by the old app).
    Forbidden = 4003,
    /// `join` to an unknown session.
    NotFound = 4004,
    /// The listener fell too far behind: resume with `since`.
    TooSlow = 4008,
    /// No `join` in time.
    JoinTimeout = 4009,
    /// The session ended.
    Ended = 4010,
    /// A host removed this member (`kick`); they may join again.
    Removed = 4011,
    /// A host removed and banned this member: joining again is refused.
    Banned = 4012,
    /// Rate limited repeatedly, or a ping flood.
    RateLimited = 4029,
}

impl CloseCode {
    /// Every close code, for documentation checks.
    pub const ALL: [CloseCode; 16] = [
        CloseCode::Normal,
        CloseCode::GoingAway,
        CloseCode::ProtocolError,
        CloseCode::Unsupported,
        CloseCode::InvalidPayload,
        CloseCode::TooBig,
        CloseCode::TryAgainLater,
        CloseCode::Unauthorized,
        CloseCode::Forbidden,
        CloseCode::NotFound,
        CloseCode::TooSlow,
        CloseCode::JoinTimeout,
        CloseCode::Ended,
        CloseCode::Removed,
        CloseCode::Banned,
        CloseCode::RateLimited,
    ];

    /// The number on the wire.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The close code for a number on the wire, if it is one of ours.
    pub fn from_code(code: u16) -> Option<CloseCode> {
        CloseCode::ALL.into_iter().find(|c| c.code() == code)
    }
}

impl From<CloseCode> for u16 {
    fn from(c: CloseCode) -> u16 {
        c.code()
    }
}
