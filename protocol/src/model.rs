//! The shapes the hub shows to clients (REST bodies and protocol payloads):
//! one definition each, so a user or a session looks the same everywhere.
//! None of them has a field for a secret (password hash, tokens, Spotify
//! tokens), so no response can carry one.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules::{self, FieldError};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub avatar: Option<String>,
    pub spotify_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    pub top_tracks: Vec<String>,
    pub top_artists: Vec<String>,
    pub genres: Vec<String>,
    pub features: Option<serde_json::Value>,
    pub last_updated: DateTime<Utc>,
}

/// A GroupSession as REST shows it; `hostId` is its playlist's creator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub host_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Playlist {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub spotify_id: Option<String>,
    pub creator_id: String,
    pub session_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Track {
    pub id: String,
    pub spotify_id: String,
    pub name: String,
    pub artists: Vec<String>,
    pub album: String,
    pub popularity: i32,
    /// Length in milliseconds, when known (kept by the hub): a playing
    /// track with one advances by itself at its end.
    #[serde(default)]
    pub duration_ms: Option<i64>,
    /// Cover art, when known (kept by the hub).
    #[serde(default)]
    pub cover_url: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrackFeatures {
    pub danceability: f64,
    pub energy: f64,
    pub key: i32,
    pub loudness: f64,
    pub mode: i32,
    pub speechiness: f64,
    pub acousticness: f64,
    pub instrumentalness: f64,
    pub liveness: f64,
    pub valence: f64,
    pub tempo: f64,
}

/// One entry of a session's queue.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueEntry {
    pub entry_id: String,
    pub track: Track,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
    /// Members who voted it up.
    #[serde(default)]
    pub votes: Vec<String>,
    /// Pinned to play next by a host (kept first whatever the order mode).
    #[serde(default)]
    pub pinned: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: String,
    pub name: String,
    pub avatar: Option<String>,
    pub online: bool,
    #[serde(default = "member_role")]
    pub role: Role,
}

fn member_role() -> Role {
    Role::Member
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    Host,
    /// The host's powers, but handing the session over and naming co-hosts.
    Cohost,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Cohost => "cohost",
            Role::Member => "member",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct You {
    pub user_id: String,
    pub role: Role,
}

/// A session's whole state at one version: the `snapshot` frame's body and
/// `GET /v1/sessions/{id}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub version: i64,
    pub session: SessionRef,
    pub playlist: PlaylistRef,
    pub queue: Vec<QueueEntry>,
    pub members: Vec<Member>,
    pub you: You,
    /// Playback, history, settings, co-hosts and bans.
    #[serde(default)]
    pub party: Box<crate::party::Party>,
}

/// The session as the snapshot shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionRef {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub host_id: String,
}

/// The playlist as the snapshot shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaylistRef {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub spotify_id: Option<String>,
}

/// One row of the PlaylistUpdate log as `GET …/updates` shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRecord {
    pub version: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub entry_id: Option<String>,
    /// Null for an op about no track (`member`).
    pub track_id: Option<String>,
    /// Null for a change made outside the hub.
    pub user_id: Option<String>,
    pub from_index: Option<i32>,
    pub to_index: Option<i32>,
    pub timestamp: DateTime<Utc>,
    /// As in the `update` frame; omitted for add, remove and reorder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<crate::frames::ChangeDetail>,
}

/// Track metadata as clients send it (REST body and the protocol's `add.track`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackBody {
    pub spotify_id: String,
    pub name: String,
    pub artists: Vec<String>,
    pub album: String,
    #[serde(default)]
    pub popularity: Option<i32>,
    /// Length in milliseconds (1 s to 6 h).
    #[serde(default)]
    pub duration_ms: Option<i64>,
    /// Cover art: an `https://` URL.
    #[serde(default)]
    pub cover_url: Option<String>,
}

impl TrackBody {
    /// Check every field against the protocol's limits.
    pub fn validate(&self) -> Result<TrackMeta, FieldError> {
        Ok(TrackMeta {
            spotify_id: rules::spotify_id(&self.spotify_id)?,
            name: rules::text("name", &self.name, rules::TRACK_NAME_MAX)?,
            artists: rules::artists(&self.artists)?,
            album: rules::text("album", &self.album, rules::TRACK_NAME_MAX)?,
            popularity: self.popularity.map(rules::popularity).transpose()?,
            duration_ms: self.duration_ms.map(rules::duration_ms).transpose()?,
            cover_url: self
                .cover_url
                .as_deref()
                .map(rules::cover_url)
                .transpose()?,
        })
    }
}

/// Track metadata that passed [`TrackBody::validate`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackMeta {
    pub spotify_id: String,
    pub name: String,
    pub artists: Vec<String>,
    pub album: String,
    /// `None` keeps the stored value (0 for a new track).
    pub popularity: Option<i32>,
    /// `None` keeps what the hub knows.
    pub duration_ms: Option<i64>,
    /// `None` keeps what the hub knows.
    pub cover_url: Option<String>,
}

/// `GET /v1/join/{code}`: the session a join code stands for, as someone
/// about to join sees it (no token needed). Only an active session's code
/// resolves, so `active` is true; it is there for clients that show it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JoinTarget {
    /// The code as stored (upper case, no spaces or dashes).
    pub code: String,
    pub session_id: String,
    pub name: String,
    pub host: JoinHost,
    /// How many members the session has.
    pub members: i64,
    pub active: bool,
}

/// The host as a join code's lookup names it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JoinHost {
    pub id: String,
    pub name: String,
}

/// `GET /v1/sessions/{id}/code` (members): the session's join code.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JoinCode {
    pub session_id: String,
    pub code: String,
}

/// A session as `GET /v1/sessions` lists it: its fields and its join code,
/// null when the session has ended (or cannot be joined: no playlist).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListedSession {
    #[serde(flatten)]
    pub session: Session,
    pub join_code: Option<String>,
}
