//! The session actor's SQL: loading a session, writing one group commit as a
//! handful of set-based statements (UNNEST), replaying the change log, and
//! finding out whether a commit whose outcome was lost did happen.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::PgPool;

use crate::clock::utc;
use crate::db::new_id;
use crate::db::tracks::{TrackRow, TRACK_COLUMNS};
use crate::error::Result;
use audotics_protocol::model::Track;
use audotics_protocol::{Change, OpKind};

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

/// Everything one session's group commit writes, as net effects on the
/// queue tables.
#[derive(Default, Debug)]
pub struct BatchWrite {
    pub changes: Vec<LoggedChange>,
    pub interactions: Vec<LoggedInteraction>,
    /// Tracks given by metadata (`add.track`), with the id the queue uses:
    /// the stored one for a known `spotifyId`, else a new one.
    pub track_upserts: Vec<Track>,
    pub inserts: Vec<NewEntry>,
    /// Entries that existed before and now have a new position.
    pub moves: Vec<(String, String)>,
    /// Entries that existed before and are gone.
    pub deletes: Vec<String>,
    /// Tracks now in the queue / no longer in it (`_PlaylistToTrack`).
    pub link_tracks: Vec<String>,
    pub unlink_tracks: Vec<String>,
}

/// A new queue entry: (entry id, track id, added by, added at, position).
pub type NewEntry = (String, String, String, DateTime<Utc>, String);

/// One session's part of a commit.
#[derive(Debug)]
pub struct SessionCommit {
    pub session_id: String,
    pub playlist_id: String,
    /// The session's version after this commit.
    pub version: i64,
    /// The session's commit counter after this commit: stored so a lost
    /// COMMIT outcome can be checked.
    pub commits: i64,
    pub at: DateTime<Utc>,
    /// Set the Playlist's and GroupSession's `updatedAt` to `at`.
    pub touch: bool,
    pub write: BatchWrite,
}

fn idx(i: Option<usize>) -> Option<i32> {
    i.map(|v| v as i32)
}

/// Every write of one group commit, for any number of sessions, as ONE
/// statement: data-modifying CTEs over UNNEST-ed arrays, run in autocommit
/// so the statement is its own transaction (one round trip, one fsync).
/// Sibling CTEs see the same snapshot, which the batch respects: new entries
/// carry their final position, moves and deletes only touch entries that
/// existed before, and a track is never both linked and unlinked.
///
/// Only the parts with rows go into the statement: Postgres plans and
/// starts every CTE it is given, which for a one-op commit cost as much as
/// the writes. Every statement still binds all 46 parameters (sqlx sends
/// their types, so an unused one is fine); each combination of parts is one
/// prepared statement per connection.
const WRITE_COMMIT: [(Part, &str, &str); 11] = [
    (
        Part::Track,
        "t",
        r#"
    INSERT INTO "Track" ("id", "spotifyId", "name", "artists", "album", "popularity", "createdAt", "updatedAt")
    SELECT u.id, u.sp, u.name, ARRAY(SELECT jsonb_array_elements_text(u.artists)), u.album, u.pop, $1, $1
    FROM UNNEST($2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::int4[])
         AS u(id, sp, name, artists, album, pop)
    ON CONFLICT ("spotifyId") DO UPDATE SET "name" = EXCLUDED."name",
        "artists" = EXCLUDED."artists", "album" = EXCLUDED."album",
        "popularity" = EXCLUDED."popularity", "updatedAt" = EXCLUDED."updatedAt""#,
    ),
    (
        Part::Changes,
        "pu",
        r#"
    INSERT INTO "PlaylistUpdate" ("id", "playlistId", "type", "trackId", "userId", "timestamp",
        "hubVersion", "hubEntryId", "hubFromIndex", "hubToIndex", "hubReq")
    SELECT u.id, u.pl, u.kind, u.track, u.usr, u.at, u.ver, u.entry, u.fromi, u.toi, u.req
    FROM UNNEST($8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamp[],
                $14::int8[], $15::text[], $16::int4[], $17::int4[], $18::text[])
         AS u(id, pl, kind, track, usr, at, ver, entry, fromi, toi, req)"#,
    ),
    (
        Part::Inserts,
        "qi",
        r#"
    INSERT INTO hub_queue_entry (entry_id, session_id, track_id, added_by, added_at, position)
    SELECT u.id, u.sid, u.track, u.usr, u.at, u.pos
    FROM UNNEST($19::text[], $20::text[], $21::text[], $22::text[], $23::timestamp[], $24::text[])
         AS u(id, sid, track, usr, at, pos)"#,
    ),
    (
        Part::Moves,
        "qm",
        r#"
    UPDATE hub_queue_entry q SET position = u.pos
    FROM UNNEST($25::text[], $26::text[]) AS u(id, pos) WHERE q.entry_id = u.id"#,
    ),
    (
        Part::Deletes,
        "qd",
        r#"
    DELETE FROM hub_queue_entry WHERE entry_id = ANY($27::text[])"#,
    ),
    (
        Part::Links,
        "pl",
        r#"
    INSERT INTO "_PlaylistToTrack" ("A", "B") SELECT * FROM UNNEST($28::text[], $29::text[])
    ON CONFLICT DO NOTHING"#,
    ),
    (
        Part::Unlinks,
        "pd",
        r#"
    DELETE FROM "_PlaylistToTrack" p USING UNNEST($30::text[], $31::text[]) AS u(a, b)
    WHERE p."A" = u.a AND p."B" = u.b"#,
    ),
    (
        Part::Reactions,
        "ti",
        r#"
    -- The same reaction twice in one millisecond is stored once (Prisma's
    -- unique key); ON CONFLICT keeps that from failing the whole commit.
    INSERT INTO "TrackInteraction" ("id", "userId", "trackId", "type", "timestamp", "hubSessionId", "hubReq", "hubVersion")
    SELECT u.id, u.usr, u.track, u.kind, u.at, u.sid, u.req, u.ver
    FROM UNNEST($32::text[], $33::text[], $34::text[], $35::text[], $36::timestamp[], $37::text[], $38::text[], $39::int8[])
         AS u(id, usr, track, kind, at, sid, req, ver)
    ON CONFLICT DO NOTHING"#,
    ),
    (
        Part::Sessions,
        "hs",
        r#"
    UPDATE hub_session h SET version = u.ver, commits = u.n
    FROM UNNEST($40::text[], $41::int8[], $42::int8[]) AS u(sid, ver, n) WHERE h.session_id = u.sid"#,
    ),
    (
        Part::Touched,
        "up",
        r#"
    UPDATE "Playlist" p SET "updatedAt" = u.at
    FROM UNNEST($43::text[], $44::timestamp[]) AS u(id, at) WHERE p."id" = u.id"#,
    ),
    (
        Part::Touched,
        "us",
        r#"
    UPDATE "GroupSession" s SET "updatedAt" = u.at
    FROM UNNEST($45::text[], $46::timestamp[]) AS u(id, at) WHERE s."id" = u.id"#,
    ),
];

/// Which rows a part of `WRITE_COMMIT` writes; it is left out when there
/// are none.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Track,
    Changes,
    Inserts,
    Moves,
    Deletes,
    Links,
    Unlinks,
    Reactions,
    Sessions,
    Touched,
}

/// The statement made of the parts of `WRITE_COMMIT` that have rows.
fn statement(has: impl Fn(Part) -> bool) -> String {
    let ctes: Vec<String> = WRITE_COMMIT
        .iter()
        .filter(|(part, _, _)| has(*part))
        .map(|(_, name, sql)| format!("{name} AS ({sql}\n    RETURNING 1)"))
        .collect();
    if ctes.is_empty() {
        return "SELECT 1".to_owned();
    }
    format!("WITH\n{}\nSELECT 1", ctes.join(",\n"))
}

/// Write the commits of one or more sessions atomically (see `WRITE_COMMIT`).
pub async fn write_commits(db: &PgPool, commits: &[&SessionCommit]) -> Result<(), sqlx::Error> {
    // Track metadata, latest wins (one row per spotifyId per statement).
    let mut tracks: Vec<&Track> = Vec::new();
    for c in commits {
        for t in &c.write.track_upserts {
            tracks.retain(|x| x.spotify_id != t.spotify_id);
            tracks.push(t);
        }
    }
    let changes: Vec<(&SessionCommit, &LoggedChange)> = commits
        .iter()
        .flat_map(|c| c.write.changes.iter().map(move |x| (*c, x)))
        .collect();
    let inserts: Vec<(&SessionCommit, &NewEntry)> = commits
        .iter()
        .flat_map(|c| c.write.inserts.iter().map(move |x| (*c, x)))
        .collect();
    let moves: Vec<&(String, String)> = commits.iter().flat_map(|c| &c.write.moves).collect();
    let deletes: Vec<&str> = commits
        .iter()
        .flat_map(|c| c.write.deletes.iter().map(String::as_str))
        .collect();
    let pairs = |pick: fn(&BatchWrite) -> &Vec<String>| -> (Vec<&str>, Vec<&str>) {
        commits
            .iter()
            .flat_map(|c| {
                pick(&c.write)
                    .iter()
                    .map(move |t| (c.playlist_id.as_str(), t.as_str()))
            })
            .unzip()
    };
    let (link_a, link_b) = pairs(|w| &w.link_tracks);
    let (unlink_a, unlink_b) = pairs(|w| &w.unlink_tracks);
    let reactions: Vec<(&SessionCommit, &LoggedInteraction)> = commits
        .iter()
        .flat_map(|c| c.write.interactions.iter().map(move |x| (*c, x)))
        .collect();
    let touched: Vec<&SessionCommit> = commits.iter().copied().filter(|c| c.touch).collect();
    let touched_at: Vec<NaiveDateTime> = touched.iter().map(|c| c.at.naive_utc()).collect();
    let has = |part: Part| match part {
        Part::Track => !tracks.is_empty(),
        Part::Changes => !changes.is_empty(),
        Part::Inserts => !inserts.is_empty(),
        Part::Moves => !moves.is_empty(),
        Part::Deletes => !deletes.is_empty(),
        Part::Links => !link_a.is_empty(),
        Part::Unlinks => !unlink_a.is_empty(),
        Part::Reactions => !reactions.is_empty(),
        Part::Sessions => !commits.is_empty(),
        Part::Touched => !touched.is_empty(),
    };
    let sql = statement(has);
    sqlx::query(&sql)
        // Track
        .bind(commits[0].at.naive_utc())
        .bind(tracks.iter().map(|t| t.id.as_str()).collect::<Vec<_>>())
        .bind(
            tracks
                .iter()
                .map(|t| t.spotify_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(tracks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>())
        .bind(
            tracks
                .iter()
                .map(|t| serde_json::json!(t.artists))
                .collect::<Vec<_>>(),
        )
        .bind(tracks.iter().map(|t| t.album.as_str()).collect::<Vec<_>>())
        .bind(tracks.iter().map(|t| t.popularity).collect::<Vec<_>>())
        // PlaylistUpdate
        .bind(changes.iter().map(|_| new_id()).collect::<Vec<_>>())
        .bind(
            changes
                .iter()
                .map(|(s, _)| s.playlist_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            changes
                .iter()
                .map(|(_, x)| x.kind.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            changes
                .iter()
                .map(|(_, x)| x.track_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            changes
                .iter()
                .map(|(_, x)| x.user_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            changes
                .iter()
                .map(|(s, _)| s.at.naive_utc())
                .collect::<Vec<NaiveDateTime>>(),
        )
        .bind(changes.iter().map(|(_, x)| x.version).collect::<Vec<_>>())
        .bind(
            changes
                .iter()
                .map(|(_, x)| x.entry_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            changes
                .iter()
                .map(|(_, x)| idx(x.from_index))
                .collect::<Vec<_>>(),
        )
        .bind(
            changes
                .iter()
                .map(|(_, x)| idx(x.to_index))
                .collect::<Vec<_>>(),
        )
        .bind(
            changes
                .iter()
                .map(|(_, x)| x.req.as_str())
                .collect::<Vec<_>>(),
        )
        // hub_queue_entry
        .bind(
            inserts
                .iter()
                .map(|(_, x)| x.0.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            inserts
                .iter()
                .map(|(s, _)| s.session_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            inserts
                .iter()
                .map(|(_, x)| x.1.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            inserts
                .iter()
                .map(|(_, x)| x.2.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            inserts
                .iter()
                .map(|(_, x)| x.3.naive_utc())
                .collect::<Vec<NaiveDateTime>>(),
        )
        .bind(
            inserts
                .iter()
                .map(|(_, x)| x.4.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(moves.iter().map(|x| x.0.as_str()).collect::<Vec<_>>())
        .bind(moves.iter().map(|x| x.1.as_str()).collect::<Vec<_>>())
        .bind(&deletes)
        // _PlaylistToTrack
        .bind(&link_a)
        .bind(&link_b)
        .bind(&unlink_a)
        .bind(&unlink_b)
        // TrackInteraction
        .bind(reactions.iter().map(|_| new_id()).collect::<Vec<_>>())
        .bind(
            reactions
                .iter()
                .map(|(_, x)| x.user_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            reactions
                .iter()
                .map(|(_, x)| x.track_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            reactions
                .iter()
                .map(|(_, x)| x.kind.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            reactions
                .iter()
                .map(|(s, _)| s.at.naive_utc())
                .collect::<Vec<NaiveDateTime>>(),
        )
        .bind(
            reactions
                .iter()
                .map(|(s, _)| s.session_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            reactions
                .iter()
                .map(|(_, x)| x.req.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(reactions.iter().map(|(_, x)| x.version).collect::<Vec<_>>())
        // hub_session, Playlist, GroupSession
        .bind(
            commits
                .iter()
                .map(|c| c.session_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(commits.iter().map(|c| c.version).collect::<Vec<_>>())
        .bind(commits.iter().map(|c| c.commits).collect::<Vec<_>>())
        .bind(
            touched
                .iter()
                .map(|c| c.playlist_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(&touched_at)
        .bind(
            touched
                .iter()
                .map(|c| c.session_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(&touched_at)
        .execute(db)
        .await?;
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

/// Tracks by id (for `add` by `trackId` and `interaction`).
pub async fn tracks_by_id(pool: &PgPool, ids: &[String]) -> Result<Vec<Track>> {
    let rows: Vec<TrackRow> = sqlx::query_as(&format!(
        r#"SELECT {TRACK_COLUMNS} FROM "Track" WHERE "id" = ANY($1)"#
    ))
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Tracks by Spotify id (for `add` by metadata: reuse the stored id).
pub async fn tracks_by_spotify_id(pool: &PgPool, ids: &[String]) -> Result<Vec<Track>> {
    let rows: Vec<TrackRow> = sqlx::query_as(&format!(
        r#"SELECT {TRACK_COLUMNS} FROM "Track" WHERE "spotifyId" = ANY($1)"#
    ))
    .bind(ids)
    .fetch_all(pool)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_holds_exactly_the_parts_with_rows() {
        let sql = statement(|p| matches!(p, Part::Reactions | Part::Sessions));
        assert!(sql.starts_with("WITH\nti AS ("), "{sql}");
        assert!(sql.contains("\nhs AS ("), "{sql}");
        for absent in [
            "t AS", "pu AS", "qi AS", "qm AS", "qd AS", "pl AS", "pd AS", "up AS", "us AS",
        ] {
            assert!(!sql.contains(&format!("\n{absent} (")), "{absent} in {sql}");
        }
        // `ti` ends in a comment-free line, so RETURNING is not swallowed.
        assert_eq!(sql.matches("\n    RETURNING 1)").count(), 2, "{sql}");
        assert!(sql.ends_with("\nSELECT 1"));
    }

    #[test]
    fn every_part_is_used_when_all_have_rows() {
        let sql = statement(|_| true);
        assert_eq!(sql.matches(" AS (").count(), WRITE_COMMIT.len(), "{sql}");
        assert_eq!(statement(|_| false), "SELECT 1");
    }
}
