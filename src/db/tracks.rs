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
    pub duration_ms: Option<i32>,
    pub cover_url: Option<String>,
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
            duration_ms: t.duration_ms.and_then(|d| i32::try_from(d).ok()),
            cover_url: t.cover_url.clone(),
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
            duration_ms: r.duration_ms.map(i64::from),
            cover_url: r.cover_url,
        }
    }
}

/// A track's columns, with what the hub keeps beside it (`hub_track`):
/// select them `FROM` [`TRACK_FROM`].
pub(crate) const TRACK_COLUMNS: &str = r#""Track"."id", "Track"."spotifyId", "Track"."name", "Track"."artists", "Track"."album", "Track"."popularity", hub_track.duration_ms AS "durationMs", hub_track.cover_url AS "coverUrl""#;

/// `"Track"` with its `hub_track` row, if any.
pub(crate) const TRACK_FROM: &str =
    r#""Track" LEFT JOIN hub_track ON hub_track.track_id = "Track"."id""#;

/// The columns a statement that wrote `"Track"` returns (no join there).
const TRACK_WRITTEN: &str = r#""Track"."id", "Track"."spotifyId", "Track"."name", "Track"."artists", "Track"."album", "Track"."popularity", NULL::int4 AS "durationMs", NULL::text AS "coverUrl""#;

/// Insert by `spotifyId`, or fill what a stored track lacks (see the
/// module doc); returns the track as stored and whether it is new.
pub async fn upsert(db: &mut sqlx::PgConnection, t: &TrackMeta) -> Result<(Track, bool)> {
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
               RETURNING {TRACK_WRITTEN}, (xmax = 0) AS inserted)
           SELECT * FROM w
           UNION ALL
           SELECT {TRACK_WRITTEN}, false FROM "Track"
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
    .fetch_optional(&mut *db)
    .await?;
    // Written by someone else after this statement's snapshot: retry.
    let row = row.ok_or(crate::error::Error::Unavailable)?;
    let mut track: Track = row.track.into();
    let (duration, cover) =
        fill_extras(db, &track.id, t.duration_ms, t.cover_url.as_deref()).await?;
    track.duration_ms = duration;
    track.cover_url = cover;
    Ok((track, row.inserted))
}

/// Fill what the hub does not know yet of a track's length and cover (like
/// the catalog, a known value is kept); returns both as stored.
pub async fn fill_extras(
    db: impl PgExecutor<'_>,
    track_id: &str,
    duration_ms: Option<i64>,
    cover_url: Option<&str>,
) -> Result<(Option<i64>, Option<String>)> {
    let duration = duration_ms.and_then(|d| i32::try_from(d).ok());
    let row: Option<(Option<i32>, Option<String>)> = sqlx::query_as(
        r#"WITH w AS (
               INSERT INTO hub_track (track_id, duration_ms, cover_url)
               SELECT $1, $2, $3 WHERE $2 IS NOT NULL OR $3 IS NOT NULL
               ON CONFLICT (track_id) DO UPDATE SET
                   duration_ms = COALESCE(hub_track.duration_ms, EXCLUDED.duration_ms),
                   cover_url = COALESCE(hub_track.cover_url, EXCLUDED.cover_url)
               RETURNING duration_ms, cover_url)
           SELECT duration_ms, cover_url FROM w
           UNION ALL
           SELECT duration_ms, cover_url FROM hub_track
           WHERE track_id = $1 AND NOT EXISTS (SELECT 1 FROM w)"#,
    )
    .bind(track_id)
    .bind(duration)
    .bind(cover_url)
    .fetch_optional(db)
    .await?;
    Ok(row.map_or((None, None), |(d, c)| (d.map(i64::from), c)))
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
        r#"SELECT {TRACK_COLUMNS} FROM {TRACK_FROM} WHERE "spotifyId" = $1"#
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
        r#"SELECT {TRACK_COLUMNS} FROM {TRACK_FROM}
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
        r#"SELECT {TRACK_COLUMNS} FROM {TRACK_FROM} WHERE "id" = ANY($1)"#
    ))
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Tracks by Spotify id (for `add` by metadata: reuse the stored id).
pub async fn by_spotify_ids(db: impl PgExecutor<'_>, ids: &[String]) -> Result<Vec<Track>> {
    let rows: Vec<TrackRow> = sqlx::query_as(&format!(
        r#"SELECT {TRACK_COLUMNS} FROM {TRACK_FROM} WHERE "spotifyId" = ANY($1)"#
    ))
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}
