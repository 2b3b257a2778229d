//! The session actor's SQL: loading a session, writing one group commit as a
//! handful of set-based statements (UNNEST), replaying the change log, and
//! finding out whether a commit whose outcome was lost did happen.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::db::new_id;
use crate::db::tracks::{TrackRow, TRACK_COLUMNS};
use crate::error::Result;
use crate::model::{utc, Track};
use crate::protocol::{Change, OpKind};

/// One applied queue change as the PlaylistUpdate log records it.
#[derive(Clone, Debug)]
pub struct LoggedChange {
    pub version: i64,
    pub kind: OpKind,
    pub entry_id: String,
    pub track_id: String,
    pub user_id: String,
    pub from_index: Option<usize>,
    pub to_index: Option<usize>,
    pub req: String,
}

/// One reaction as TrackInteraction records it.
#[derive(Clone, Debug)]
pub struct LoggedInteraction {
    pub user_id: String,
    pub track_id: String,
    pub kind: String,
    pub req: String,
    pub version: i64,
}

/// Everything one group commit writes, as net effects on the queue tables.
#[derive(Default, Debug)]
pub struct BatchWrite {
    pub changes: Vec<LoggedChange>,
    pub interactions: Vec<LoggedInteraction>,
    /// New entries: (entry id, track id, added by, added at, position).
    pub inserts: Vec<(String, String, String, DateTime<Utc>, String)>,
    /// Entries that existed before and now have a new position.
    pub moves: Vec<(String, String)>,
    /// Entries that existed before and are gone.
    pub deletes: Vec<String>,
    /// Tracks now in the queue / no longer in it (`_PlaylistToTrack`).
    pub link_tracks: Vec<String>,
    pub unlink_tracks: Vec<String>,
}

fn idx(i: Option<usize>) -> Option<i32> {
    i.map(|v| v as i32)
}

/// Write one batch inside `tx`. `commits` is the session's commit counter
/// after this batch: stored so a lost COMMIT outcome can be checked.
pub async fn write_batch(
    tx: &mut PgConnection,
    session_id: &str,
    playlist_id: &str,
    version: i64,
    commits: i64,
    at: DateTime<Utc>,
    w: &BatchWrite,
) -> Result<()> {
    let at = at.naive_utc();
    if !w.changes.is_empty() {
        let c = &w.changes;
        sqlx::query(
            r#"INSERT INTO "PlaylistUpdate" ("id", "playlistId", "type", "trackId", "userId", "timestamp",
                   "hubVersion", "hubEntryId", "hubFromIndex", "hubToIndex", "hubReq")
               SELECT u.id, $1, u.kind, u.track, u.usr, $2, u.ver, u.entry, u.fromi, u.toi, u.req
               FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::text[],
                           $9::int4[], $10::int4[], $11::text[])
                    AS u(id, kind, track, usr, ver, entry, fromi, toi, req)"#,
        )
        .bind(playlist_id)
        .bind(at)
        .bind(c.iter().map(|_| new_id()).collect::<Vec<_>>())
        .bind(c.iter().map(|x| x.kind.as_str()).collect::<Vec<_>>())
        .bind(c.iter().map(|x| x.track_id.as_str()).collect::<Vec<_>>())
        .bind(c.iter().map(|x| x.user_id.as_str()).collect::<Vec<_>>())
        .bind(c.iter().map(|x| x.version).collect::<Vec<_>>())
        .bind(c.iter().map(|x| x.entry_id.as_str()).collect::<Vec<_>>())
        .bind(c.iter().map(|x| idx(x.from_index)).collect::<Vec<_>>())
        .bind(c.iter().map(|x| idx(x.to_index)).collect::<Vec<_>>())
        .bind(c.iter().map(|x| x.req.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    if !w.inserts.is_empty() {
        let i = &w.inserts;
        sqlx::query(
            r#"INSERT INTO hub_queue_entry (entry_id, session_id, track_id, added_by, added_at, position)
               SELECT u.id, $1, u.track, u.usr, u.at, u.pos
               FROM UNNEST($2::text[], $3::text[], $4::text[], $5::timestamp[], $6::text[])
                    AS u(id, track, usr, at, pos)"#,
        )
        .bind(session_id)
        .bind(i.iter().map(|x| x.0.as_str()).collect::<Vec<_>>())
        .bind(i.iter().map(|x| x.1.as_str()).collect::<Vec<_>>())
        .bind(i.iter().map(|x| x.2.as_str()).collect::<Vec<_>>())
        .bind(i.iter().map(|x| x.3.naive_utc()).collect::<Vec<NaiveDateTime>>())
        .bind(i.iter().map(|x| x.4.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    if !w.moves.is_empty() {
        sqlx::query(
            r#"UPDATE hub_queue_entry q SET position = u.pos
               FROM UNNEST($1::text[], $2::text[]) AS u(id, pos) WHERE q.entry_id = u.id"#,
        )
        .bind(w.moves.iter().map(|x| x.0.as_str()).collect::<Vec<_>>())
        .bind(w.moves.iter().map(|x| x.1.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    if !w.deletes.is_empty() {
        sqlx::query("DELETE FROM hub_queue_entry WHERE entry_id = ANY($1)")
            .bind(&w.deletes)
            .execute(&mut *tx)
            .await?;
    }
    if !w.link_tracks.is_empty() {
        sqlx::query(
            r#"INSERT INTO "_PlaylistToTrack" ("A", "B") SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING"#,
        )
        .bind(playlist_id)
        .bind(&w.link_tracks)
        .execute(&mut *tx)
        .await?;
    }
    if !w.unlink_tracks.is_empty() {
        sqlx::query(r#"DELETE FROM "_PlaylistToTrack" WHERE "A" = $1 AND "B" = ANY($2)"#)
            .bind(playlist_id)
            .bind(&w.unlink_tracks)
            .execute(&mut *tx)
            .await?;
    }
    if !w.interactions.is_empty() {
        let r = &w.interactions;
        // The same reaction twice in one millisecond is stored once (Prisma's
        // unique key); ON CONFLICT keeps that from failing the whole batch.
        sqlx::query(
            r#"INSERT INTO "TrackInteraction" ("id", "userId", "trackId", "type", "timestamp", "hubSessionId", "hubReq", "hubVersion")
               SELECT u.id, u.usr, u.track, u.kind, $1, $2, u.req, u.ver
               FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int8[])
                    AS u(id, usr, track, kind, req, ver)
               ON CONFLICT DO NOTHING"#,
        )
        .bind(at)
        .bind(session_id)
        .bind(r.iter().map(|_| new_id()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.user_id.as_str()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.track_id.as_str()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.kind.as_str()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.req.as_str()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.version).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE hub_session SET version = $2, commits = $3 WHERE session_id = $1")
        .bind(session_id)
        .bind(version)
        .bind(commits)
        .execute(&mut *tx)
        .await?;
    if !w.changes.is_empty() {
        sqlx::query(r#"UPDATE "Playlist" SET "updatedAt" = $2 WHERE "id" = $1"#)
            .bind(playlist_id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(r#"UPDATE "GroupSession" SET "updatedAt" = $2 WHERE "id" = $1"#)
            .bind(session_id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// The session's commit counter, to learn whether a batch whose COMMIT
/// reply was lost was applied.
pub async fn commits(pool: &PgPool, session_id: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT commits FROM hub_session WHERE session_id = $1")
            .bind(session_id)
            .fetch_one(pool)
            .await?,
    )
}

/// Version and commit counter, creating the row for sessions made elsewhere.
pub async fn load_counters(pool: &PgPool, session_id: &str) -> Result<(i64, i64)> {
    Ok(sqlx::query_as(
        r#"INSERT INTO hub_session (session_id, version) VALUES ($1, 0)
           ON CONFLICT (session_id) DO UPDATE SET version = hub_session.version
           RETURNING version, commits"#,
    )
    .bind(session_id)
    .fetch_one(pool)
    .await?)
}

/// Every request id already applied in this session, with the version its
/// `ack` carried: the exactly-once memory, rebuilt after a restart.
pub async fn remembered_reqs(
    pool: &PgPool,
    session_id: &str,
    playlist_id: &str,
) -> Result<HashMap<(String, String), i64>> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        r#"SELECT "userId", "hubReq", "hubVersion" FROM "PlaylistUpdate"
             WHERE "playlistId" = $1 AND "hubReq" IS NOT NULL
           UNION ALL
           SELECT "userId", "hubReq", COALESCE("hubVersion", 0) FROM "TrackInteraction"
             WHERE "hubSessionId" = $2 AND "hubReq" IS NOT NULL"#,
    )
    .bind(playlist_id)
    .bind(session_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(u, r, v)| ((u, r), v)).collect())
}

/// Tracks by id (for `add` by `trackId`).
pub async fn tracks_by_id(tx: &mut PgConnection, ids: &[String]) -> Result<Vec<Track>> {
    let rows: Vec<TrackRow> = sqlx::query_as(&format!(
        r#"SELECT {TRACK_COLUMNS} FROM "Track" WHERE "id" = ANY($1)"#
    ))
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The changes after version `after`, rebuilt as `update` bodies, for resume.
pub async fn changes_after(
    pool: &PgPool,
    playlist_id: &str,
    after: i64,
) -> Result<Vec<(i64, Change, DateTime<Utc>)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        version: i64,
        kind: String,
        entry_id: Option<String>,
        user_id: String,
        from_index: Option<i32>,
        to_index: Option<i32>,
        at: NaiveDateTime,
        #[sqlx(flatten)]
        track: TrackRow,
    }
    let rows: Vec<Row> = sqlx::query_as(&format!(
        r#"SELECT u."hubVersion" AS version, u."type" AS kind, u."hubEntryId" AS entry_id, u."userId" AS user_id,
                  u."hubFromIndex" AS from_index, u."hubToIndex" AS to_index, u."timestamp" AS at, {TRACK_COLUMNS}
           FROM "PlaylistUpdate" u JOIN "Track" ON "Track"."id" = u."trackId"
           WHERE u."playlistId" = $1 AND u."hubVersion" > $2 ORDER BY u."hubVersion""#
    ))
    .bind(playlist_id)
    .bind(after)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let op = OpKind::parse(&r.kind)?;
            let (from, to) = (
                r.from_index.map(|i| i as usize),
                r.to_index.map(|i| i as usize),
            );
            let change = Change {
                op,
                entry_id: r.entry_id?,
                track: (op == OpKind::Add).then(|| r.track.into()),
                index: match op {
                    OpKind::Add => to,
                    OpKind::Remove => from,
                    OpKind::Reorder => None,
                },
                from_index: (op == OpKind::Reorder).then_some(from).flatten(),
                to_index: (op == OpKind::Reorder).then_some(to).flatten(),
                by: r.user_id,
            };
            Some((r.version, change, utc(r.at)))
        })
        .collect())
}
