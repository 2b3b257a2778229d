//! WebSocket frames of protocol v1: one JSON object per text frame,
//! discriminated by `type`; camelCase fields; nullable fields always present
//! in what the hub sends.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::codes::ErrorCode;
use crate::model::{Role, Snapshot, Track, TrackBody};
use crate::party::{NowPlaying, OrderMode, PartySettings, Played, Suggested};
use crate::rules::FieldError;

/// Client → server: one JSON object per frame, discriminated by `type`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientMsg {
    /// The first frame of a connection: become a member and a listener of
    /// the session. Answered with `snapshot`, or `resumed` + the missed
    /// `update`s when `since` can be served by replay.
    Join(Join),
    /// Queue a track: give exactly one of `trackId` (an existing Track) and
    /// `track` (metadata, upserted by `spotifyId`).
    Add(Add),
    /// Remove a queue entry (host, or the member who added it).
    Remove(Remove),
    /// Move a queue entry (host only).
    Reorder(Reorder),
    /// A member's reaction to a track; stored and broadcast.
    Interaction(Interaction),
    /// Start playing: `entryId` (a queued entry) now, or else resume what
    /// is paused, or else the head of the queue (host and co-hosts).
    Play(Play),
    /// Pause what is playing (host and co-hosts).
    Pause(Pause),
    /// Move the playing track's position (host and co-hosts).
    Seek(Seek),
    /// Skip to the head of the queue (host and co-hosts; guests when the
    /// host allows). What was playing is cut short.
    Next(Next),
    /// Vote a queued entry up, or take the vote back (any member).
    Vote(Vote),
    /// Vote to skip what is playing, or take the vote back (any member).
    SkipVote(SkipVote),
    /// Play a queued entry next: it moves to the front and stays there
    /// whatever the order mode (host and co-hosts).
    Pin(Pin),
    /// Change the host's settings; omitted fields stay (host and co-hosts).
    Settings(Settings),
    /// Make a member host (the host hands over and becomes co-host),
    /// co-host, or member again (the host only).
    Role(RoleChange),
    /// Remove a member, and with `ban` keep them out (host and co-hosts).
    /// Their connections are closed with 4011 (removed) or 4012 (banned).
    Kick(Kick),
    /// Let a banned user join again (host and co-hosts).
    Unban(Unban),
    /// Stop listening (the user stays a member); the hub closes with 1000.
    Leave(Leave),
    /// An application-level heartbeat, allowed at any time: answered with
    /// `pong` at once. Browsers cannot see WebSocket pings, so this is how a
    /// web client notices a connection that died without a close.
    Ping(Ping),
}

/// Fields of `join`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Join {
    /// The GroupSession's id.
    pub session_id: String,
    /// A token from `POST /v1/users` or `POST /v1/auth/token`.
    pub token: String,
    /// The last version this client saw (resume); omitted or null: a
    /// fresh `snapshot`.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub since: Option<i64>,
    /// Send this connection `suggestions` frames ("Up next for this
    /// room"): the latest after the opening frames, then each new set.
    /// Omitted or false: none (they stay at
    /// `GET /v1/sessions/{id}/suggestions`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suggestions: bool,
    /// A screen that shows the party (the big-screen view): it gets every
    /// frame a listener gets but does not become a member, is not in
    /// presence (nor in the share of online members a skip vote needs),
    /// and sends no ops (`forbidden`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub watch: bool,
}

/// Fields of `add`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("oneOf" = [
    {"required": ["trackId"], "properties": {"trackId": {"type": "string"}}},
    {"required": ["track"], "properties": {"track": {"type": "object"}}}
]))]
pub struct Add {
    /// Client-chosen op id, unique per user per session.
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
    /// Track.id of an existing track.
    #[serde(default)]
    pub track_id: Option<String>,
    /// Track metadata; a known `spotifyId` queues that Track as stored.
    #[serde(default)]
    pub track: Option<TrackBody>,
    /// Where to insert, 0..=len; omitted or null: at the end.
    #[serde(default)]
    pub index: Option<usize>,
}

/// Fields of `remove`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Remove {
    /// Client-chosen op id, unique per user per session.
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
    /// The queue entry to remove.
    pub entry_id: String,
}

/// Fields of `reorder`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reorder {
    /// Client-chosen op id, unique per user per session.
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
    /// The queue entry to move.
    pub entry_id: String,
    /// The entry's index after the move, 0..len-1.
    pub to_index: usize,
    /// When given and not the current version: `error` `conflict`,
    /// nothing applied.
    #[serde(default)]
    pub base_version: Option<i64>,
}

/// Fields of `interaction`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Interaction {
    /// Client-chosen op id, unique per user per session.
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
    /// Track.id of an existing track.
    pub track_id: String,
    /// One of the kinds the old app's recommendations weigh (surrounding
    /// whitespace is trimmed).
    #[schemars(extend("enum" = ["play", "skip", "like", "dislike", "save", "share", "add_to_playlist"]))]
    pub kind: String,
}

/// Fields of `play`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Play {
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
    /// A queued entry to play now; omitted: resume, or start the queue.
    #[serde(default)]
    pub entry_id: Option<String>,
}

/// Fields of `pause`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pause {
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
}

/// Fields of `seek`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Seek {
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
    /// The new position in milliseconds (within the track when its length
    /// is known).
    pub position_ms: u32,
}

/// Fields of `next`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Next {
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
}

/// Fields of `vote`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Vote {
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
    pub entry_id: String,
    /// true: vote up; false: take the vote back.
    pub up: bool,
}

/// Fields of `skipVote`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkipVote {
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
    /// true: vote to skip; false: take the vote back.
    pub up: bool,
}

/// Fields of `pin`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pin {
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
    pub entry_id: String,
}

/// Fields of `settings`: each one given is set.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
    #[serde(default)]
    pub order: Option<OrderMode>,
    #[serde(default)]
    pub guests_add: Option<bool>,
    #[serde(default)]
    pub guests_reorder: Option<bool>,
    #[serde(default)]
    pub guests_skip: Option<bool>,
    /// Tracks one guest may have queued; 0: no limit.
    #[serde(default)]
    pub guest_queue_cap: Option<u32>,
    /// In (0, 1].
    #[serde(default)]
    pub skip_threshold: Option<f64>,
}

/// Fields of `role`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleChange {
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
    /// A member of the session.
    pub user_id: String,
    pub role: Role,
}

/// Fields of `kick`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Kick {
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
    pub user_id: String,
    /// Keep them out: they cannot join again until unbanned.
    #[serde(default)]
    pub ban: bool,
}

/// Fields of `unban`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Unban {
    #[schemars(length(min = 1, max = 64))]
    pub req: String,
    pub user_id: String,
}

/// `leave` has no fields.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
pub struct Leave {}

/// Fields of `ping`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
pub struct Ping {
    /// Echoed in the `pong` (any number the client likes); omitted: null.
    #[serde(default)]
    pub id: Option<u64>,
}

/// What an `update` changed.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OpKind {
    Add,
    Remove,
    Reorder,
    /// A member added to or removed from the session outside the hub (by the
    /// old app); `detail` says who.
    Member,
    /// Playback started: `entryId` left the queue (at `fromIndex`; null
    /// when it was not queued) to play; `detail` has the new `nowPlaying`
    /// and what stopped.
    Play,
    /// Paused, or the position moved: `detail.nowPlaying`.
    Pause,
    Seek,
    /// What was playing ended (or was skipped) and the head of the queue
    /// (`entryId`, from `fromIndex` 0) plays; null `entryId`: nothing left.
    Next,
    /// A vote on `entryId`; in `votes` order it may move (`fromIndex`,
    /// `toIndex`).
    Vote,
    /// A skip vote on what is playing.
    SkipVote,
    /// `entryId` pinned to play next (moved `fromIndex` → `toIndex`).
    Pin,
    /// The host's settings changed; a new order mode re-sorts the queue
    /// (`detail.queue`).
    Settings,
    /// Roles changed (`detail`: the host and co-hosts now).
    Role,
    /// A member was removed (and maybe banned) by a host.
    Kick,
    /// A banned user may join again.
    Unban,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Add => "add",
            OpKind::Remove => "remove",
            OpKind::Reorder => "reorder",
            OpKind::Member => "member",
            OpKind::Play => "play",
            OpKind::Pause => "pause",
            OpKind::Seek => "seek",
            OpKind::Next => "next",
            OpKind::Vote => "vote",
            OpKind::SkipVote => "skipVote",
            OpKind::Pin => "pin",
            OpKind::Settings => "settings",
            OpKind::Role => "role",
            OpKind::Kick => "kick",
            OpKind::Unban => "unban",
        }
    }

    pub fn parse(s: &str) -> Option<OpKind> {
        match s {
            "add" => Some(OpKind::Add),
            "remove" => Some(OpKind::Remove),
            "reorder" => Some(OpKind::Reorder),
            "member" => Some(OpKind::Member),
            "play" => Some(OpKind::Play),
            "pause" => Some(OpKind::Pause),
            "seek" => Some(OpKind::Seek),
            "next" => Some(OpKind::Next),
            "vote" => Some(OpKind::Vote),
            "skipVote" => Some(OpKind::SkipVote),
            "pin" => Some(OpKind::Pin),
            "settings" => Some(OpKind::Settings),
            "role" => Some(OpKind::Role),
            "kick" => Some(OpKind::Kick),
            "unban" => Some(OpKind::Unban),
            _ => None,
        }
    }
}

/// What an op other than add/remove/reorder carries, by its kind.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ChangeDetail {
    /// `member`: the user now is (`member: true`) or no longer is a member.
    Member {
        user_id: String,
        name: String,
        avatar: Option<String>,
        member: bool,
    },
    /// `play`, `pause`, `seek`, `next`: what plays now (null: nothing), and
    /// the entry that stopped playing, if one did.
    Playback {
        now_playing: Option<Box<NowPlaying>>,
        played: Option<Box<Played>>,
        /// Why it changed: `op` (a member's op), `ended` (the track's end),
        /// `skipVotes` (the room voted).
        reason: String,
    },
    /// `vote`: `userId`'s vote on the entry, and its voters now.
    Vote {
        user_id: String,
        up: bool,
        votes: Vec<String>,
    },
    /// `skipVote`: `userId`'s skip vote, and the skip voters now.
    SkipVote {
        user_id: String,
        up: bool,
        votes: Vec<String>,
    },
    /// `pin`: (nothing beyond the entry and its move).
    Pin {},
    /// `settings`: all of them now, and the queue's new order (entry ids)
    /// when the order mode changed it.
    Settings {
        settings: PartySettings,
        queue: Option<Vec<String>>,
    },
    /// `role`: the host and co-hosts now.
    Role {
        host_id: String,
        cohosts: Vec<String>,
    },
    /// `kick`: who was removed, and whether banned.
    Kick {
        user_id: String,
        name: String,
        banned: bool,
    },
    /// `unban`: who may join again.
    Unban { user_id: String },
}

/// The body of an `update`: one applied change of the session.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub op: OpKind,
    /// The queue entry concerned; null for an op about no entry (`member`).
    pub entry_id: Option<String>,
    /// The queued track (add only).
    pub track: Option<Track>,
    /// add: where it landed; remove: where it was.
    pub index: Option<usize>,
    pub from_index: Option<usize>,
    pub to_index: Option<usize>,
    /// The member who made the change; null for a change made outside the
    /// hub (the old app linking tracks or adding members).
    pub by: Option<String>,
    /// What the op carries beyond the fields above; null for add, remove
    /// and reorder.
    pub detail: Option<ChangeDetail>,
}

/// Server → client.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ServerMsg {
    /// The session's whole state: the answer to `join` (or to a `since` the
    /// hub does not serve by replay).
    Snapshot(Snapshot),
    /// One applied change, to every listener, in version order.
    Update {
        /// The session's version after this change (previous + 1).
        version: i64,
        change: Change,
        /// Commit time.
        at: DateTime<Utc>,
    },
    /// Answer to a `join` whose `since` is served by replay: exactly the
    /// missed `update`s follow (none when `since` = `version`).
    Resumed {
        /// The session's current version.
        version: i64,
    },
    /// To the sender, once its op is durably committed (after its `update`
    /// or `interaction` frame).
    Ack {
        /// The op's `req`.
        req: String,
        /// The op's version (`interaction`: the session's current version).
        version: i64,
    },
    /// A refused op or bad frame; the connection stays open unless a close
    /// follows.
    Error {
        /// The `req` of the op it answers; null otherwise.
        req: Option<String>,
        /// The WebSocket hub never sends `internal` (it says `unavailable`).
        code: ErrorCode,
        /// Human-readable; for `invalid`, starts with the offending field
        /// (or `frame`).
        message: String,
    },
    /// A listener joined or left (not sent to the joiner itself).
    Presence {
        user_id: String,
        name: String,
        /// True while the user has at least one listener connection.
        online: bool,
        /// The session's total number of listener connections.
        listeners: usize,
    },
    /// A member's reaction, to every listener including the sender.
    Interaction {
        user_id: String,
        track_id: String,
        kind: String,
        /// Commit time.
        at: DateTime<Utc>,
    },
    /// The host ended the session; the hub then closes with 4010.
    Ended { at: DateTime<Utc> },
    /// "Up next for this room": suggestions for the members online now,
    /// sent after the opening frames and again (debounced) whenever the
    /// room changes — someone joins or leaves, reacts, a track starts, the
    /// queue changes. Not versioned; the latest replaces the previous.
    Suggestions {
        /// The session's version they were computed at.
        version: i64,
        /// When they were computed.
        at: DateTime<Utc>,
        items: Vec<Suggested>,
    },
    /// The answer to a client's `ping`.
    Pong {
        /// The `ping`'s `id`.
        id: Option<u64>,
        /// The hub's clock: clients may use it to place `at` times.
        at: DateTime<Utc>,
    },
}

impl ServerMsg {
    /// The frame text. Serializing our own types cannot fail.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

/// Why a client frame was refused; on the wire both are `invalid`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not JSON at all.
    #[error("{0}")]
    Malformed(String),
    /// A field breaks a rule, or the frame has no usable `type`.
    #[error("{0}")]
    Invalid(FieldError),
}

impl From<FieldError> for FrameError {
    fn from(e: FieldError) -> FrameError {
        FrameError::Invalid(e)
    }
}

fn invalid(field: &str, message: impl Into<String>) -> FrameError {
    FrameError::Invalid(FieldError::new(field, message))
}

/// Parse a client frame. On failure, returns the `req` the frame carried (if
/// any) so the `error` can answer it, and an error naming the bad field.
pub fn parse_client(text: &str) -> Result<ClientMsg, (Option<String>, FrameError)> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| (None, FrameError::Malformed(format!("malformed JSON: {e}"))))?;
    let serde_json::Value::Object(mut obj) = value else {
        return Err((None, invalid("type", "a frame must be a JSON object")));
    };
    let req = obj
        .get("req")
        .and_then(|r| r.as_str())
        .filter(|r| !r.is_empty() && r.chars().count() <= crate::rules::REQ_MAX)
        .map(str::to_owned);
    let kind = match obj.remove("type") {
        Some(serde_json::Value::String(t)) => t,
        _ => return Err((req, invalid("type", "missing or not a string"))),
    };
    // Each message's fields are read as their own struct (not through the
    // tagged enum, which would buffer them and lose the path), so a bad
    // field is named in the error.
    let fields = serde_json::Value::Object(obj);
    let msg = match kind.as_str() {
        "join" => ClientMsg::Join(fields_of(fields, &req)?),
        "add" => ClientMsg::Add(fields_of(fields, &req)?),
        "remove" => ClientMsg::Remove(fields_of(fields, &req)?),
        "reorder" => ClientMsg::Reorder(fields_of(fields, &req)?),
        "interaction" => ClientMsg::Interaction(fields_of(fields, &req)?),
        "play" => ClientMsg::Play(fields_of(fields, &req)?),
        "pause" => ClientMsg::Pause(fields_of(fields, &req)?),
        "seek" => ClientMsg::Seek(fields_of(fields, &req)?),
        "next" => ClientMsg::Next(fields_of(fields, &req)?),
        "vote" => ClientMsg::Vote(fields_of(fields, &req)?),
        "skipVote" => ClientMsg::SkipVote(fields_of(fields, &req)?),
        "pin" => ClientMsg::Pin(fields_of(fields, &req)?),
        "settings" => ClientMsg::Settings(fields_of(fields, &req)?),
        "role" => ClientMsg::Role(fields_of(fields, &req)?),
        "kick" => ClientMsg::Kick(fields_of(fields, &req)?),
        "unban" => ClientMsg::Unban(fields_of(fields, &req)?),
        "leave" => ClientMsg::Leave(fields_of(fields, &req)?),
        "ping" => ClientMsg::Ping(fields_of(fields, &req)?),
        other => {
            let shown: String = other.chars().take(32).collect();
            return Err((req, invalid("type", format!("unknown type `{shown}`"))));
        }
    };
    if let Some(r) = msg_req(&msg) {
        crate::rules::req(r).map_err(|e| (None, e.into()))?;
    }
    Ok(msg)
}

fn fields_of<T: serde::de::DeserializeOwned>(
    fields: serde_json::Value,
    req: &Option<String>,
) -> Result<T, (Option<String>, FrameError)> {
    serde_path_to_error::deserialize(fields).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde names a missing field only in its message.
        let field = match path.as_str() {
            "." => inner
                .split('`')
                .nth(1)
                .filter(|_| {
                    inner.starts_with("missing field") || inner.starts_with("unknown field")
                })
                .unwrap_or("frame")
                .to_owned(),
            _ => path,
        };
        (req.clone(), invalid(&field, inner))
    })
}

/// The `req` of an op frame.
pub fn msg_req(msg: &ClientMsg) -> Option<&str> {
    match msg {
        ClientMsg::Add(Add { req, .. })
        | ClientMsg::Remove(Remove { req, .. })
        | ClientMsg::Reorder(Reorder { req, .. })
        | ClientMsg::Interaction(Interaction { req, .. })
        | ClientMsg::Play(Play { req, .. })
        | ClientMsg::Pause(Pause { req })
        | ClientMsg::Seek(Seek { req, .. })
        | ClientMsg::Next(Next { req })
        | ClientMsg::Vote(Vote { req, .. })
        | ClientMsg::SkipVote(SkipVote { req, .. })
        | ClientMsg::Pin(Pin { req, .. })
        | ClientMsg::Settings(Settings { req, .. })
        | ClientMsg::Role(RoleChange { req, .. })
        | ClientMsg::Kick(Kick { req, .. })
        | ClientMsg::Unban(Unban { req, .. }) => Some(req),
        ClientMsg::Join(_) | ClientMsg::Leave(_) | ClientMsg::Ping(_) => None,
    }
}

/// The message types of each direction, in the order the schemas list them.
pub const CLIENT_TYPES: &[&str] = &[
    "join",
    "add",
    "remove",
    "reorder",
    "interaction",
    "play",
    "pause",
    "seek",
    "next",
    "vote",
    "skipVote",
    "pin",
    "settings",
    "role",
    "kick",
    "unban",
    "leave",
    "ping",
];
pub const SERVER_TYPES: &[&str] = &[
    "snapshot",
    "update",
    "resumed",
    "ack",
    "error",
    "presence",
    "interaction",
    "ended",
    "suggestions",
    "pong",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_client_frame() {
        let j = parse_client(r#"{"type":"join","sessionId":"s","token":"t","since":3}"#).unwrap();
        assert_eq!(
            j,
            ClientMsg::Join(Join {
                session_id: "s".into(),
                token: "t".into(),
                since: Some(3),
                suggestions: false,
                watch: false,
            })
        );
        let j = parse_client(r#"{"type":"join","sessionId":"s","token":"t","suggestions":true}"#)
            .unwrap();
        assert!(matches!(
            j,
            ClientMsg::Join(Join {
                suggestions: true,
                since: None,
                ..
            })
        ));
        let a = parse_client(r#"{"type":"add","req":"r1","trackId":"t1","index":0}"#).unwrap();
        assert!(matches!(a, ClientMsg::Add(Add { index: Some(0), .. })));
        let r = parse_client(
            r#"{"type":"reorder","req":"r","entryId":"e","toIndex":2,"baseVersion":7}"#,
        )
        .unwrap();
        assert!(matches!(
            r,
            ClientMsg::Reorder(Reorder {
                to_index: 2,
                base_version: Some(7),
                ..
            })
        ));
        assert_eq!(
            parse_client(r#"{"type":"leave"}"#).unwrap(),
            ClientMsg::Leave(Leave {})
        );
        // Unknown fields are ignored (a client may tag every frame with a req).
        assert_eq!(
            parse_client(r#"{"type":"leave","req":"x","extra":1}"#).unwrap(),
            ClientMsg::Leave(Leave {})
        );
        assert!(matches!(
            parse_client(r#"{"type":"join","sessionId":"s","token":"t","req":"j1"}"#).unwrap(),
            ClientMsg::Join(_)
        ));
    }

    #[test]
    fn bad_frames_name_the_field_and_keep_req() {
        let (req, e) = parse_client("{nope").unwrap_err();
        assert_eq!(req, None);
        assert!(matches!(e, FrameError::Malformed(_)), "{e}");
        let (req, e) = parse_client(r#"{"type":"warp","req":"r9"}"#).unwrap_err();
        assert_eq!(req.as_deref(), Some("r9"));
        assert!(e.to_string().contains("unknown type"));
        let (req, e) = parse_client(r#"{"type":"reorder","req":"r2","entryId":"e","toIndex":-1}"#)
            .unwrap_err();
        assert_eq!(req.as_deref(), Some("r2"));
        assert!(
            matches!(e, FrameError::Invalid(ref f) if f.field == "toIndex"),
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
        assert!(matches!(e, FrameError::Invalid(ref f) if f.field == "req"));
        let (_, e) = parse_client("[1,2]").unwrap_err();
        assert!(matches!(e, FrameError::Invalid(ref f) if f.field == "type"));
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
