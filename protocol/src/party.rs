//! The listening party's shapes: what is playing, what was played, the
//! host's settings and the session's roles. They ride in `snapshot` and in
//! the `detail` of the party's `update`s.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::Track;

/// Who orders the queue.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OrderMode {
    /// The host (and co-hosts) order it by hand; adds go where they ask.
    #[default]
    Host,
    /// Most up-votes first; ties by add time.
    Votes,
    /// Round-robin by who added: nobody's second track comes before
    /// everyone else's first (of the tracks queued since they joined in).
    Fair,
}

impl OrderMode {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderMode::Host => "host",
            OrderMode::Votes => "votes",
            OrderMode::Fair => "fair",
        }
    }
}

/// The host's settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartySettings {
    pub order: OrderMode,
    /// Guests (members who are not host or co-host) may add tracks.
    pub guests_add: bool,
    /// Guests may reorder the queue (in `host` order).
    pub guests_reorder: bool,
    /// Guests may skip to the next track (`next`).
    pub guests_skip: bool,
    /// Tracks one guest may have queued at once; null: no limit.
    pub guest_queue_cap: Option<u32>,
    /// The share of online members whose skip votes skip the track, in
    /// (0, 1]: at least ceil(share × online members), and at least 1.
    pub skip_threshold: f64,
}

impl Default for PartySettings {
    fn default() -> Self {
        PartySettings {
            order: OrderMode::Host,
            guests_add: true,
            guests_reorder: false,
            guests_skip: false,
            guest_queue_cap: None,
            skip_threshold: 0.5,
        }
    }
}

/// Playing or paused.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PlayState {
    Playing,
    Paused,
}

/// The entry being played. Its progress needs no ticks: while `playing`,
/// position = `positionMs` + (now − `at`); while paused, `positionMs`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NowPlaying {
    pub entry_id: String,
    pub track: Track,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
    pub state: PlayState,
    /// The position at `at`, in milliseconds.
    pub position_ms: i64,
    /// The hub's time at which `positionMs` held.
    pub at: DateTime<Utc>,
    /// When it started playing.
    pub started_at: DateTime<Utc>,
}

/// An entry that was played.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Played {
    pub entry_id: String,
    pub track: Track,
    pub added_by: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// Cut short (`next`, a skip vote, or another entry played) rather than
    /// played to its end.
    pub skipped: bool,
}

/// The party in a snapshot.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Party {
    pub settings: PartySettings,
    pub now_playing: Option<NowPlaying>,
    /// The last played entries, oldest first (at most 20).
    pub history: Vec<Played>,
    /// Members who voted to skip what is playing.
    pub skip_votes: Vec<String>,
    /// Co-hosts: the host's powers but handing over and naming co-hosts.
    pub cohosts: Vec<String>,
    /// Users removed with a ban: they cannot join again.
    pub banned: Vec<String>,
}

/// One suggestion of "Up next for this room".
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suggested {
    /// What a one-tap `add` queues (by `track.id`).
    pub track: Track,
    /// The group score it was picked with, about 0 to 1.
    pub score: f64,
    /// Why, in words a person reads ("energetic and danceable, close to
    /// what three of you liked").
    pub reason: String,
    /// Members (user ids) predicted to enjoy it.
    pub fits: Vec<String>,
}
