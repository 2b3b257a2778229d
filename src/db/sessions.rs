//! `"GroupSession"`, its `"Playlist"` (whose creator is the host), its members
//! (`"_GroupSessionToUser"`), and the hub's per-session state: the version
//! (`hub_session`) and the ordered queue (`hub_queue_entry`).

use std::collections::HashMap;

use chrono::NaiveDateTime;
use sqlx::{PgExecutor, PgPool};

use super::new_id;
use super::tracks::{TrackRow, TRACK_COLUMNS, TRACK_FROM};
use crate::clock::{now_ms, utc};
use crate::error::Result;
use audotics_protocol::model::{Playlist, PlaylistRef, Session, SessionRef, Track};
use audotics_protocol::{TrackId, UserId};

#[derive(sqlx::FromRow)]
struct SessionRow {
    s_id: String,
    s_name: String,
    s_active: bool,
    s_created: NaiveDateTime,
    s_updated: NaiveDateTime,
    p_id: Option<String>,
    p_name: Option<String>,
    p_description: Option<String>,
    p_spotify_id: Option<String>,
    p_creator: Option<String>,
}

impl SessionRow {
    fn session(&self) -> Session {
        Session {
            id: self.s_id.clone(),
            name: self.s_name.clone(),
            active: self.s_active,
            created_at: utc(self.s_created),
            updated_at: utc(self.s_updated),
            host_id: self.p_creator.clone(),
        }
    }

    fn playlist(&self) -> Option<Playlist> {
        Some(Playlist {
            id: self.p_id.clone()?,
            name: self.p_name.clone()?,
            description: self.p_description.clone(),
            spotify_id: self.p_spotify_id.clone(),
            creator_id: self.p_creator.clone()?,
            session_id: Some(self.s_id.clone()),
        })
    }
}

const SESSION_SELECT: &str = r#"SELECT s."id" AS s_id, s."name" AS s_name, s."active" AS s_active,
    s."createdAt" AS s_created, s."updatedAt" AS s_updated, p."id" AS p_id, p."name" AS p_name,
    p."description" AS p_description, p."spotifyId" AS p_spotify_id, p."creatorId" AS p_creator
    FROM "GroupSession" s LEFT JOIN "Playlist" p ON p."sessionId" = s."id""#;

/// Create a session, its playlist (the caller is its creator, hence host),
/// the caller's membership, the hub's version row and its join code, in one
/// transaction.
pub async fn create(
    pool: &PgPool,
    host_id: &str,
    name: &str,
    description: Option<&str>,
) -> Result<(Session, Playlist)> {
    let now = now_ms();
    let (sid, pid) = (new_id(), new_id());
    let mut tx = pool.begin().await?;
    sqlx::query(
        r#"INSERT INTO "GroupSession" ("id", "name", "createdAt", "updatedAt", "active") VALUES ($1, $2, $3, $3, true)"#,
    )
    .bind(&sid)
    .bind(name)
    .bind(now.naive_utc())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        r#"INSERT INTO "Playlist" ("id", "name", "description", "createdAt", "updatedAt", "creatorId", "sessionId")
           VALUES ($1, $2, $3, $4, $4, $5, $6)"#,
    )
    .bind(&pid)
    .bind(name)
    .bind(description)
    .bind(now.naive_utc())
    .bind(host_id)
    .bind(&sid)
    .execute(&mut *tx)
    .await?;
    add_member(&mut *tx, &sid, host_id).await?;
    sqlx::query("INSERT INTO hub_session (session_id, version) VALUES ($1, 0)")
        .bind(&sid)
        .execute(&mut *tx)
        .await?;
    super::joins::ensure(&mut tx, &sid).await?;
    tx.commit().await?;
    let session = Session {
        id: sid.clone(),
        name: name.to_owned(),
        active: true,
        created_at: now,
        updated_at: now,
        host_id: Some(host_id.to_owned()),
    };
    let playlist = Playlist {
        id: pid,
        name: name.to_owned(),
        description: description.map(str::to_owned),
        spotify_id: None,
        creator_id: host_id.to_owned(),
        session_id: Some(sid),
    };
    Ok((session, playlist))
}

/// The sessions `user_id` is a member of, newest activity first,
/// optionally only (in)active ones.
pub async fn list_for(
    pool: &PgPool,
    user_id: &str,
    active: Option<bool>,
    limit: i64,
) -> Result<Vec<Session>> {
    let rows: Vec<SessionRow> = sqlx::query_as(&format!(
        r#"{SESSION_SELECT}
           WHERE EXISTS (SELECT 1 FROM "_GroupSessionToUser" m WHERE m."A" = s."id" AND m."B" = $3)
             AND ($1::boolean IS NULL OR s."active" = $1)
           ORDER BY s."updatedAt" DESC, s."id" LIMIT $2"#
    ))
    .bind(active)
    .bind(limit)
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(SessionRow::session).collect())
}

/// Whether `user_id` is a member of the session.
pub async fn is_member(db: impl PgExecutor<'_>, session_id: &str, user_id: &str) -> Result<bool> {
    Ok(sqlx::query_scalar(
        r#"SELECT EXISTS (SELECT 1 FROM "_GroupSessionToUser" WHERE "A" = $1 AND "B" = $2)"#,
    )
    .bind(session_id)
    .bind(user_id)
    .fetch_one(db)
    .await?)
}

/// A session and its playlist (`None` for a session the old app made
/// without one).
pub async fn get(db: impl PgExecutor<'_>, id: &str) -> Result<Option<(Session, Option<Playlist>)>> {
    let row: Option<SessionRow> = sqlx::query_as(&format!(r#"{SESSION_SELECT} WHERE s."id" = $1"#))
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| (r.session(), r.playlist())))
}

/// The channel on which triggers announce a session the old app changed
/// (payload: the session id); see migration `hub_event_log`.
pub const CHANGED_CHANNEL: &str = "hub_session_changed";

/// A session and its playlist as snapshots show them (the host is the
/// playlist's creator). `None` for an unknown session, or one the old app
/// made without a playlist: it has no host and no log, so it cannot be
/// joined or shown.
pub async fn refs(db: impl PgExecutor<'_>, id: &str) -> Result<Option<(SessionRef, PlaylistRef)>> {
    let Some((session, Some(playlist))) = get(db, id).await? else {
        return Ok(None);
    };
    Ok(Some(refs_from(session, playlist)))
}

/// [`refs`] of many sessions in one query: those found, by id.
pub async fn refs_of(
    db: impl PgExecutor<'_>,
    ids: &[String],
) -> Result<HashMap<String, (SessionRef, PlaylistRef)>> {
    let rows: Vec<SessionRow> =
        sqlx::query_as(&format!(r#"{SESSION_SELECT} WHERE s."id" = ANY($1)"#))
            .bind(ids)
            .fetch_all(db)
            .await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.s_id.clone(), refs_from(r.session(), r.playlist()?))))
        .collect())
}

fn refs_from(session: Session, playlist: Playlist) -> (SessionRef, PlaylistRef) {
    (
        SessionRef {
            id: session.id,
            name: session.name,
            active: session.active,
            host_id: playlist.creator_id,
        },
        PlaylistRef {
            id: playlist.id,
            name: playlist.name,
            description: playlist.description,
            spotify_id: playlist.spotify_id,
        },
    )
}

/// Mark the session ended. Returns false when it does not exist.
pub async fn end(pool: &PgPool, id: &str) -> Result<bool> {
    let done = sqlx::query(
        r#"UPDATE "GroupSession" SET "active" = false, "updatedAt" = $2 WHERE "id" = $1"#,
    )
    .bind(id)
    .bind(now_ms().naive_utc())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Make `user_id` a member (idempotent).
pub async fn add_member(db: impl PgExecutor<'_>, session_id: &str, user_id: &str) -> Result<()> {
    sqlx::query(
        r#"INSERT INTO "_GroupSessionToUser" ("A", "B") VALUES ($1, $2) ON CONFLICT DO NOTHING"#,
    )
    .bind(session_id)
    .bind(user_id)
    .execute(db)
    .await?;
    Ok(())
}

/// A member as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberRow {
    pub user_id: UserId,
    pub name: String,
    pub avatar: Option<String>,
}

/// The members, by name then id.
pub async fn members(db: impl PgExecutor<'_>, session_id: &str) -> Result<Vec<MemberRow>> {
    let mut of = members_of(db, &[session_id.to_owned()]).await?;
    Ok(of.remove(session_id).unwrap_or_default())
}

/// [`members`] of many sessions in one query, by session (those with any).
pub async fn members_of(
    db: impl PgExecutor<'_>,
    ids: &[String],
) -> Result<HashMap<String, Vec<MemberRow>>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        session_id: String,
        id: String,
        name: String,
        avatar: Option<String>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        r#"SELECT m."A" AS session_id, u."id", u."name", u."avatar" FROM "_GroupSessionToUser" m
           JOIN "User" u ON u."id" = m."B" WHERE m."A" = ANY($1) ORDER BY m."A", u."name", u."id""#,
    )
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(super::by_session(rows.into_iter().map(|r| {
        let member = MemberRow {
            user_id: UserId::from_stored(r.id),
            name: r.name,
            avatar: r.avatar,
        };
        (r.session_id, member)
    })))
}

/// A stored queue entry with its track, in no particular order.
pub struct StoredEntry {
    pub entry_id: String,
    pub position: String,
    pub added_by: UserId,
    pub added_at: chrono::DateTime<chrono::Utc>,
    /// Members who voted it up.
    pub votes: Vec<UserId>,
    /// Its fair-order round.
    pub round: i64,
    /// When a host pinned it to play next.
    pub pinned_at: Option<chrono::DateTime<chrono::Utc>>,
    pub track: Track,
}

/// The stored queues of many sessions in one query, by session (those with
/// any entries), each in position order.
pub async fn queues_of(
    db: impl PgExecutor<'_>,
    ids: &[String],
) -> Result<HashMap<String, Vec<StoredEntry>>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        session_id: String,
        entry_id: String,
        position: String,
        added_by: String,
        added_at: NaiveDateTime,
        votes: Vec<String>,
        round: i64,
        pinned_at: Option<NaiveDateTime>,
        #[sqlx(flatten)]
        track: TrackRow,
    }
    let rows: Vec<Row> = sqlx::query_as(&format!(
        r#"SELECT q.session_id, q.entry_id, q.position, q.added_by, q.added_at, q.votes, q.round,
                  q.pinned_at, {TRACK_COLUMNS}
           FROM hub_queue_entry q JOIN {TRACK_FROM} ON "Track"."id" = q.track_id
           WHERE q.session_id = ANY($1) ORDER BY q.session_id, q.position"#
    ))
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(super::by_session(rows.into_iter().map(|r| {
        let entry = StoredEntry {
            entry_id: r.entry_id,
            position: r.position,
            added_by: UserId::from_stored(r.added_by),
            added_at: utc(r.added_at),
            votes: r.votes.into_iter().map(UserId::from_stored).collect(),
            round: r.round,
            pinned_at: r.pinned_at.map(utc),
            track: r.track.into(),
        };
        (r.session_id, entry)
    })))
}

/// Counters of a session an actor is about to serve: its version, commit
/// counter and a new ownership epoch (bumped here, so that every commit made
/// under an earlier one, by a deposed owner, changes nothing).
pub async fn take_over(db: impl PgExecutor<'_>, session_id: &str) -> Result<(i64, i64, i64)> {
    let mut of = counters_of(db, &[session_id.to_owned()], true).await?;
    Ok(of.remove(session_id).expect("a row per session asked"))
}

/// The version, commit counter and ownership epoch of many sessions (ids
/// distinct), in one statement; `take_over` bumps each epoch (see
/// [`take_over`]). Creates the rows of sessions made elsewhere (the old app).
pub async fn counters_of(
    db: impl PgExecutor<'_>,
    ids: &[String],
    take_over: bool,
) -> Result<HashMap<String, (i64, i64, i64)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        session_id: String,
        version: i64,
        commits: i64,
        epoch: i64,
    }
    let rows: Vec<Row> = sqlx::query_as(
        r#"INSERT INTO hub_session (session_id, version, epoch)
           SELECT id, 0, $2::bigint FROM unnest($1::text[]) AS t(id)
           ON CONFLICT (session_id) DO UPDATE SET epoch = hub_session.epoch + $2::bigint
           RETURNING session_id, version, commits, epoch"#,
    )
    .bind(ids)
    .bind(i64::from(take_over))
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.session_id, (r.version, r.commits, r.epoch)))
        .collect())
}

/// The session's stored version (0 before its first change).
pub async fn version(db: impl PgExecutor<'_>, session_id: &str) -> Result<i64> {
    let v: Option<i64> =
        sqlx::query_scalar("SELECT version FROM hub_session WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(db)
            .await?;
    Ok(v.unwrap_or(0))
}

/// The session's commit counter, to learn whether a batch whose COMMIT
/// reply was lost was applied.
pub async fn commits(db: impl PgExecutor<'_>, session_id: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT commits FROM hub_session WHERE session_id = $1")
            .bind(session_id)
            .fetch_one(db)
            .await?,
    )
}

/// The tracks linked to a playlist (`_PlaylistToTrack`), in the order the
/// hub queues those it does not hold yet: oldest in the catalog first (the
/// link table keeps no order of its own), then by id.
pub async fn links(db: impl PgExecutor<'_>, playlist_id: &str) -> Result<Vec<TrackId>> {
    let ids: Vec<String> = sqlx::query_scalar(
        r#"SELECT t."id" FROM "_PlaylistToTrack" l JOIN "Track" t ON t."id" = l."B"
           WHERE l."A" = $1 ORDER BY t."createdAt", t."id""#,
    )
    .bind(playlist_id)
    .fetch_all(db)
    .await?;
    Ok(ids.into_iter().map(TrackId::from_stored).collect())
}
