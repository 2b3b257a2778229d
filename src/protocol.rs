//! Session protocol v1: the serde types of every WebSocket message — the
//! single source of truth for the wire. One JSON object per text frame,
//! discriminated by `type`; camelCase fields; nullable fields always present.
//! `protocol/` holds the JSON Schemas generated from these types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode};
use crate::http::tracks::TrackBody;
use crate::model::{Snapshot, Track};

/// Close codes the hub uses (RFC 6455 ones plus the protocol's 4xxx).
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const UNSUPPORTED: u16 = 1003;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const TOO_BIG: u16 = 1009;
    pub const UNAUTHORIZED: u16 = 4001;
    pub const FORBIDDEN: u16 = 4003;
    pub const NOT_FOUND: u16 = 4004;
    pub const TOO_SLOW: u16 = 4008;
    pub const JOIN_TIMEOUT: u16 = 4009;
    pub const ENDED: u16 = 4010;
    pub const RATE_LIMITED: u16 = 4029;
}

/// Client → server.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum ClientMsg {
    Join {
        session_id: String,
        token: String,
        #[serde(default)]
        since: Option<i64>,
    },
    Add {
        req: String,
        #[serde(default)]
        track_id: Option<String>,
        #[serde(default)]
        track: Option<TrackBody>,
        #[serde(default)]
        index: Option<usize>,
    },
    Remove {
        req: String,
        entry_id: String,
    },
    Reorder {
        req: String,
        entry_id: String,
        to_index: usize,
        #[serde(default)]
        base_version: Option<i64>,
    },
    Interaction {
        req: String,
        track_id: String,
        kind: String,
    },
    Leave,
}

/// What an `update` changed.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum OpKind {
    Add,
    Remove,
    Reorder,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Add => "add",
            OpKind::Remove => "remove",
            OpKind::Reorder => "reorder",
        }
    }

    pub fn parse(s: &str) -> Option<OpKind> {
        match s {
            "add" => Some(OpKind::Add),
            "remove" => Some(OpKind::Remove),
            "reorder" => Some(OpKind::Reorder),
            _ => None,
        }
    }
}

/// The body of an `update`: one applied queue change.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub op: OpKind,
    pub entry_id: String,
    /// The queued track (add only).
    pub track: Option<Track>,
    /// add: where it landed; remove: where it was.
    pub index: Option<usize>,
    pub from_index: Option<usize>,
    pub to_index: Option<usize>,
    /// The user who made the change.
    pub by: String,
}

/// Server → client.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ServerMsg {
    Snapshot(Snapshot),
    Update {
        version: i64,
        change: Change,
        at: DateTime<Utc>,
    },
    Resumed {
        version: i64,
    },
    Ack {
        req: String,
        version: i64,
    },
    Error {
        req: Option<String>,
        code: ErrorCode,
        message: String,
    },
    Presence {
        user_id: String,
        name: String,
        online: bool,
        listeners: usize,
    },
    Interaction {
        user_id: String,
        track_id: String,
        kind: String,
        at: DateTime<Utc>,
    },
    Ended {
        at: DateTime<Utc>,
    },
}

impl ServerMsg {
    /// The frame text. Serializing our own types cannot fail.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }

    /// An `error` frame answering `req` (if any) with `e`'s code and words.
    pub fn error(req: Option<String>, e: &Error) -> ServerMsg {
        let code = match e.code() {
            // Internal trouble is, to a client, "not applied, retry later".
            ErrorCode::Internal => ErrorCode::Unavailable,
            c => c,
        };
        let message = match e {
            Error::Internal(_) => "temporarily unavailable, retry later".to_owned(),
            e => e.to_string(),
        };
        ServerMsg::Error { req, code, message }
    }
}

/// Interaction kinds the hub stores (`TrackInteraction.type`).
pub const INTERACTION_KINDS: &[&str] = &["play", "skip", "like", "dislike", "save", "share"];

/// Parse a client frame. On failure, returns the `req` the frame carried (if
/// any) so the `error` can answer it, and an error naming the bad field.
pub fn parse_client(text: &str) -> Result<ClientMsg, (Option<String>, Error)> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| (None, Error::Malformed(format!("malformed JSON: {e}"))))?;
    let req = value
        .get("req")
        .and_then(|r| r.as_str())
        .filter(|r| !r.is_empty() && r.chars().count() <= crate::validate::REQ_MAX)
        .map(str::to_owned);
    let Some(obj) = value.as_object() else {
        return Err((
            None,
            Error::invalid("type", "a frame must be a JSON object"),
        ));
    };
    match obj.get("type").and_then(|t| t.as_str()) {
        Some("join" | "add" | "remove" | "reorder" | "interaction" | "leave") => {}
        Some(other) => {
            let shown: String = other.chars().take(32).collect();
            return Err((
                req,
                Error::invalid("type", format!("unknown type `{shown}`")),
            ));
        }
        None => return Err((req, Error::invalid("type", "missing or not a string"))),
    }
    let msg: ClientMsg = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "frame".to_owned()
        } else {
            path
        };
        (
            req.clone(),
            Error::invalid(field, e.into_inner().to_string()),
        )
    })?;
    if let Some(r) = msg_req(&msg) {
        crate::validate::req(r).map_err(|e| (None, e))?;
    }
    Ok(msg)
}

/// The `req` of an op frame.
pub fn msg_req(msg: &ClientMsg) -> Option<&str> {
    match msg {
        ClientMsg::Add { req, .. }
        | ClientMsg::Remove { req, .. }
        | ClientMsg::Reorder { req, .. }
        | ClientMsg::Interaction { req, .. } => Some(req),
        ClientMsg::Join { .. } | ClientMsg::Leave => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_client_frame() {
        let j = parse_client(r#"{"type":"join","sessionId":"s","token":"t","since":3}"#).unwrap();
        assert_eq!(
            j,
            ClientMsg::Join {
                session_id: "s".into(),
                token: "t".into(),
                since: Some(3)
            }
        );
        let a = parse_client(r#"{"type":"add","req":"r1","trackId":"t1","index":0}"#).unwrap();
        assert!(matches!(a, ClientMsg::Add { index: Some(0), .. }));
        let r = parse_client(
            r#"{"type":"reorder","req":"r","entryId":"e","toIndex":2,"baseVersion":7}"#,
        )
        .unwrap();
        assert!(matches!(
            r,
            ClientMsg::Reorder {
                to_index: 2,
                base_version: Some(7),
                ..
            }
        ));
        assert_eq!(
            parse_client(r#"{"type":"leave"}"#).unwrap(),
            ClientMsg::Leave
        );
    }

    #[test]
    fn bad_frames_name_the_field_and_keep_req() {
        let (req, e) = parse_client("{nope").unwrap_err();
        assert_eq!((req, e.code()), (None, ErrorCode::Invalid));
        let (req, e) = parse_client(r#"{"type":"warp","req":"r9"}"#).unwrap_err();
        assert_eq!(req.as_deref(), Some("r9"));
        assert!(e.to_string().contains("unknown type"));
        let (req, e) = parse_client(r#"{"type":"reorder","req":"r2","entryId":"e","toIndex":-1}"#)
            .unwrap_err();
        assert_eq!(req.as_deref(), Some("r2"));
        assert!(
            matches!(e, Error::Invalid { ref field, .. } if field == "toIndex"),
            "{e}"
        );
        let (_, e) = parse_client(r#"{"type":"remove","entryId":"e"}"#).unwrap_err();
        assert!(e.to_string().contains("req"), "{e}");
        let long = "x".repeat(65);
        let (req, e) = parse_client(&format!(
            r#"{{"type":"remove","req":"{long}","entryId":"e"}}"#
        ))
        .unwrap_err();
        assert_eq!(req, None);
        assert!(matches!(e, Error::Invalid { ref field, .. } if field == "req"));
        let (_, e) = parse_client("[1,2]").unwrap_err();
        assert_eq!(e.code(), ErrorCode::Invalid);
    }

    #[test]
    fn server_frames_keep_nulls() {
        let m = ServerMsg::Error {
            req: None,
            code: ErrorCode::NotFound,
            message: "x".into(),
        };
        assert_eq!(
            m.to_json(),
            r#"{"type":"error","req":null,"code":"not_found","message":"x"}"#
        );
    }
}
