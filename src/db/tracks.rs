//! `"Track"` and `"TrackFeatures"`: the catalog. Tracks are keyed by their
//! Spotify id. The catalog is shared (every session, the old app's
//! recommendations): writing a Spotify id that exists keeps every field the
//! stored track knows and only fills what it lacks (no artists, popularity
//! 0, no audio features).

use chrono::NaiveDateTime;
use sqlx::{PgExecutor, PgPool};

use super::new_id;
use crate::clock::now_ms;
use crate::error::Result;
use audotics_protocol::model::{Track, TrackFeatures, TrackMeta};

#[derive(sqlx::FromRow)]
#[sqlx(rename_all = "camelCase")]
pub(crate) struct TrackRow {
    pub id: String,
    pub spotify_id: String,
    pub name: String,
    pub artists: Option<Vec<String>>,
    pub album: String,
    pub popularity: i32,
}

impl From<&Track> for TrackRow {
    fn from(t: &Track) -> TrackRow {
        TrackRow {
            id: t.id.clone(),
            spotify_id: t.spotify_id.clone(),
            name: t.name.clone(),
            artists: Some(t.artists.clone()),
            album: t.album.clone(),
            popularity: t.popularity,
        }
    }
}

impl From<TrackRow> for Track {
    fn from(r: TrackRow) -> Track {
        Track {
            id: r.id,
            spotify_id: r.spotify_id,
            name: r.name,
            artists: r.artists.unwrap_or_default(),
            album: r.album,
            popularity: r.popularity,
        }
    }
}

pub(crate) const TRACK_COLUMNS: &str = r#""Track"."id", "Track"."spotifyId", "Track"."name", "Track"."artists", "Track"."album", "Track"."popularity""#;

/// Insert by `spotifyId`, or fill what a stored track lacks (see the
/// module doc); returns the track as stored and whether it is new.
pub async fn upsert(db: impl PgExecutor<'_>, t: &TrackMeta) -> Result<(Track, bool)> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        track: TrackRow,
        inserted: bool,
    }
    // A known track with nothing to fill returns no row from the INSERT:
    // then it is read as stored, in the same statement.
    let row: Option<Row> = sqlx::query_as(&format!(
        r#"WITH w AS (
               INSERT INTO "Track" ("id", "spotifyId", "name", "artists", "album", "popularity", "createdAt", "updatedAt")
               VALUES ($1, $2, $3, $4, $5, COALESCE($6, 0), $7, $7)
               {}
               RETURNING {TRACK_COLUMNS}, (xmax = 0) AS inserted)
           SELECT * FROM w
           UNION ALL
           SELECT {TRACK_COLUMNS}, false FROM "Track"
           WHERE "spotifyId" = $2 AND NOT EXISTS (SELECT 1 FROM w)"#,
        super::commit::FILL_UNKNOWN
    ))
    .bind(new_id())
    .bind(&t.spotify_id)
    .bind(&t.name)
    .bind(&t.artists)
    .bind(&t.album)
    .bind(t.popularity)
    .bind(now_ms().naive_utc())
    .fetch_optional(db)
    .await?;
    // Written by someone else after this statement's snapshot: retry.
    let row = row.ok_or(crate::error::Error::Unavailable)?;
    Ok((row.track.into(), row.inserted))
}

pub async fn set_features(
    db: impl PgExecutor<'_>,
    track_id: &str,
    f: &TrackFeatures,
) -> Result<()> {
    sqlx::query(
        r#"INSERT INTO "TrackFeatures" ("id", "trackId", "danceability", "energy", "key", "loudness", "mode",
               "speechiness", "acousticness", "instrumentalness", "liveness", "valence", "tempo", "updatedAt")
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
           ON CONFLICT ("trackId") DO NOTHING"#,
    )
    .bind(new_id())
    .bind(track_id)
    .bind(f.danceability)
    .bind(f.energy)
    .bind(f.key)
    .bind(f.loudness)
    .bind(f.mode)
    .bind(f.speechiness)
    .bind(f.acousticness)
    .bind(f.instrumentalness)
    .bind(f.liveness)
    .bind(f.valence)
    .bind(f.tempo)
    .bind(now_ms().naive_utc())
    .execute(db)
    .await?;
    Ok(())
}

pub async fn features(pool: &PgPool, track_id: &str) -> Result<Option<TrackFeatures>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        danceability: f64,
        energy: f64,
        key: i32,
        loudness: f64,
        mode: i32,
        speechiness: f64,
        acousticness: f64,
        instrumentalness: f64,
        liveness: f64,
        valence: f64,
        tempo: f64,
        #[allow(dead_code)]
        #[sqlx(rename = "updatedAt")]
        updated_at: NaiveDateTime,
    }
    let row: Option<Row> = sqlx::query_as(r#"SELECT * FROM "TrackFeatures" WHERE "trackId" = $1"#)
        .bind(track_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| TrackFeatures {
        danceability: r.danceability,
        energy: r.energy,
        key: r.key,
        loudness: r.loudness,
        mode: r.mode,
        speechiness: r.speechiness,
        acousticness: r.acousticness,
        instrumentalness: r.instrumentalness,
        liveness: r.liveness,
        valence: r.valence,
        tempo: r.tempo,
    }))
}

pub async fn by_spotify_id(db: impl PgExecutor<'_>, spotify_id: &str) -> Result<Option<Track>> {
    let row: Option<TrackRow> = sqlx::query_as(&format!(
        r#"SELECT {TRACK_COLUMNS} FROM "Track" WHERE "spotifyId" = $1"#
    ))
    .bind(spotify_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Into::into))
}

/// Tracks whose name, album or an artist contains `q` (case-insensitive),
/// most popular first.
pub async fn search(pool: &PgPool, q: &str, limit: i64) -> Result<Vec<Track>> {
    let pattern = format!("%{}%", escape_like(q));
    let rows: Vec<TrackRow> = sqlx::query_as(&format!(
        r#"SELECT {TRACK_COLUMNS} FROM "Track"
           WHERE "name" ILIKE $1 OR "album" ILIKE $1
              OR EXISTS (SELECT 1 FROM unnest("artists") a WHERE a ILIKE $1)
           ORDER BY "popularity" DESC, "name", "id" LIMIT $2"#
    ))
    .bind(pattern)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// `q` as a literal inside a LIKE pattern.
fn escape_like(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Tracks by id (for `add` by `trackId` and `interaction`).
pub async fn by_ids(db: impl PgExecutor<'_>, ids: &[String]) -> Result<Vec<Track>> {
    let rows: Vec<TrackRow> = sqlx::query_as(&format!(
        r#"SELECT {TRACK_COLUMNS} FROM "Track" WHERE "id" = ANY($1)"#
    ))
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Tracks by Spotify id (for `add` by metadata: reuse the stored id).
pub async fn by_spotify_ids(db: impl PgExecutor<'_>, ids: &[String]) -> Result<Vec<Track>> {
    let rows: Vec<TrackRow> = sqlx::query_as(&format!(
        r#"SELECT {TRACK_COLUMNS} FROM "Track" WHERE "spotifyId" = ANY($1)"#
    ))
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}
