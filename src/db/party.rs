//! The party's stored state: `hub_session.party` (settings, host and
//! co-hosts, bans, what plays, skip votes) and `hub_played` (what was
//! played). The session actor owns it; this only reads and shapes it.

use std::collections::{HashMap, HashSet};

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

/// The stored party state of many sessions, by session (those with one).
pub async fn load_of(
    db: impl PgExecutor<'_>,
    ids: &[String],
) -> Result<HashMap<String, StoredParty>> {
    let rows: Vec<(String, sqlx::types::Json<StoredParty>)> = sqlx::query_as(
        "SELECT session_id, party FROM hub_session WHERE session_id = ANY($1) AND party IS NOT NULL",
    )
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(id, j)| (id, j.0)).collect())
}

/// The last `limit` played entries of each of many sessions (whose track
/// still exists), oldest first, by session (those with any).
pub async fn history_of(
    db: impl PgExecutor<'_>,
    ids: &[String],
    limit: i64,
) -> Result<HashMap<String, Vec<PlayedRow>>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        session_id: String,
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
        r#"SELECT s.sid AS session_id, h.* FROM unnest($1::text[]) AS s(sid) CROSS JOIN LATERAL (
               SELECT p.version, p.entry_id, p.added_by, p.added_at, p.started_at, p.ended_at,
                      p.skipped, {TRACK_COLUMNS}
               FROM hub_played p JOIN {TRACK_FROM} ON "Track"."id" = p.track_id
               WHERE p.session_id = s.sid ORDER BY p.version DESC LIMIT $2
           ) h ORDER BY s.sid, h.version"#
    ))
    .bind(ids)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(super::by_session(rows.into_iter().map(|r| {
        let played = PlayedRow {
            entry_id: r.entry_id,
            track: r.track.into(),
            added_by: r.added_by,
            added_at: utc(r.added_at),
            started_at: utc(r.started_at),
            ended_at: utc(r.ended_at),
            skipped: r.skipped,
        };
        (r.session_id, played)
    })))
}

/// Every track each of many sessions played, by session (those with any).
pub async fn played_tracks_of(
    db: impl PgExecutor<'_>,
    ids: &[String],
) -> Result<HashMap<String, HashSet<String>>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT session_id, track_id FROM hub_played WHERE session_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(super::by_session(rows))
}

/// A stored reaction: (user, track, kind, when).
pub type StoredReaction = (String, String, String, DateTime<Utc>);

/// The last `limit` reactions (TrackInteraction rows each stored) of each
/// of many sessions in one query, oldest first, by session (those with any).
pub async fn reactions_of(
    db: impl PgExecutor<'_>,
    ids: &[String],
    limit: i64,
) -> Result<HashMap<String, Vec<StoredReaction>>> {
    let rows: Vec<(String, String, String, String, NaiveDateTime)> = sqlx::query_as(
        r#"SELECT s.sid, r."userId", r."trackId", r."type", r."timestamp"
           FROM unnest($1::text[]) AS s(sid) CROSS JOIN LATERAL (
               SELECT "userId", "trackId", "type", "timestamp" FROM "TrackInteraction"
               WHERE "hubSessionId" = s.sid ORDER BY "timestamp" DESC LIMIT $2
           ) r ORDER BY s.sid, r."timestamp""#,
    )
    .bind(ids)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(super::by_session(
        rows.into_iter()
            .map(|(id, u, t, k, at)| (id, (u, t, k, utc(at)))),
    ))
}
