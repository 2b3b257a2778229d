//! The party's stored state: `hub_session.party` (settings, host and
//! co-hosts, bans, what plays, skip votes) and `hub_played` (what was
//! played). The session actor owns it; this only reads and shapes it.

use std::collections::HashSet;

use audotics_protocol::model::Track;
use audotics_protocol::party::{PartySettings, PlayState};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;

use super::tracks::{TrackRow, TRACK_COLUMNS, TRACK_FROM};
use crate::clock::utc;
use crate::error::Result;

/// `hub_session.party` as the hub writes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StoredParty {
    pub settings: PartySettings,
    /// The host, once handed over (else the playlist's creator).
    pub host: Option<String>,
    pub cohosts: Vec<String>,
    pub banned: Vec<String>,
    pub now: Option<StoredPlaying>,
    pub skip_votes: Vec<String>,
}

/// What plays, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPlaying {
    pub entry_id: String,
    pub track_id: String,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
    pub round: i64,
    pub state: PlayState,
    pub position_ms: i64,
    pub at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
}

/// A played entry, with its track as the catalog has it now.
pub struct PlayedRow {
    pub entry_id: String,
    pub track: Track,
    pub added_by: Option<String>,
    pub added_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub skipped: bool,
}

/// The session's stored party, if it ever had one.
pub async fn load(db: impl PgExecutor<'_>, session_id: &str) -> Result<Option<StoredParty>> {
    let json: Option<Option<sqlx::types::Json<StoredParty>>> =
        sqlx::query_scalar("SELECT party FROM hub_session WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(db)
            .await?;
    Ok(json.flatten().map(|j| j.0))
}

/// The last `limit` played entries, oldest first (whose track still exists).
pub async fn history(
    db: impl PgExecutor<'_>,
    session_id: &str,
    limit: i64,
) -> Result<Vec<PlayedRow>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        entry_id: String,
        added_by: Option<String>,
        added_at: NaiveDateTime,
        started_at: NaiveDateTime,
        ended_at: NaiveDateTime,
        skipped: bool,
        #[sqlx(flatten)]
        track: TrackRow,
    }
    let rows: Vec<Row> = sqlx::query_as(&format!(
        r#"SELECT * FROM (
               SELECT p.version, p.entry_id, p.added_by, p.added_at, p.started_at, p.ended_at,
                      p.skipped, {TRACK_COLUMNS}
               FROM hub_played p JOIN {TRACK_FROM} ON "Track"."id" = p.track_id
               WHERE p.session_id = $1 ORDER BY p.version DESC LIMIT $2
           ) h ORDER BY h.version"#
    ))
    .bind(session_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PlayedRow {
            entry_id: r.entry_id,
            track: r.track.into(),
            added_by: r.added_by,
            added_at: utc(r.added_at),
            started_at: utc(r.started_at),
            ended_at: utc(r.ended_at),
            skipped: r.skipped,
        })
        .collect())
}

/// Every track the session played.
pub async fn played_tracks(db: impl PgExecutor<'_>, session_id: &str) -> Result<HashSet<String>> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT track_id FROM hub_played WHERE session_id = $1")
            .bind(session_id)
            .fetch_all(db)
            .await?;
    Ok(ids.into_iter().collect())
}

/// The session's last `limit` reactions (TrackInteraction rows it stored),
/// oldest first: (user, track, kind, when).
pub async fn reactions(
    db: impl PgExecutor<'_>,
    session_id: &str,
    limit: i64,
) -> Result<Vec<(String, String, String, DateTime<Utc>)>> {
    let rows: Vec<(String, String, String, NaiveDateTime)> = sqlx::query_as(
        r#"SELECT * FROM (
               SELECT "userId", "trackId", "type", "timestamp" FROM "TrackInteraction"
               WHERE "hubSessionId" = $1 ORDER BY "timestamp" DESC LIMIT $2
           ) r ORDER BY "timestamp""#,
    )
    .bind(session_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(u, t, k, at)| (u, t, k, utc(at)))
        .collect())
}
