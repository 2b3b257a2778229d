//! The change log: every versioned change of a session is one
//! [`ChangeRecord`], encoded to and decoded from its row in this one place.
//! WebSocket replay (`update` frames) and REST `/updates` are two views of
//! the same records, so they cannot disagree.
//!
//! One version sequence covers every change, kept in two tables:
//! `"PlaylistUpdate"` holds what the old app expects there — add, remove and
//! reorder made by a member through the hub — and `hub_event` everything
//! else (changes made outside the hub, new kinds of op). The hub's columns
//! of `"PlaylistUpdate"`: `hubVersion` the version, `hubEntryId` the entry;
//! `add` stores where the entry landed in `hubToIndex`, `remove` where it
//! was in `hubFromIndex`, `reorder` both (`hub_event` uses the same
//! encoding). Rows the old app wrote have no `hubVersion` and are not part of
//! the protocol's history.

use std::collections::HashMap;
use std::sync::Arc;

use audotics_protocol::model::{Track, UpdateRecord};
use audotics_protocol::{Change, ChangeDetail, OpKind, Req, ServerMsg, TrackId, UserId};
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::PgExecutor;

use crate::clock::utc;
use crate::error::Result;

/// One applied change, as the log keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeRecord {
    /// The session's version after this change.
    pub version: i64,
    /// Commit time (strictly increasing within a session).
    pub at: DateTime<Utc>,
    /// The member who made it; `None` for a change made outside the hub.
    pub by: Option<UserId>,
    pub op: ChangeOp,
}

/// What a change did. Entries are named by their id as the log stores it
/// (the hub writes UUIDs; the log shows whatever a row holds).
#[derive(Clone, Debug, PartialEq)]
pub enum ChangeOp {
    /// `entry` with `track` now sits at `index`.
    Add {
        entry: String,
        track: Arc<Track>,
        index: usize,
    },
    /// `entry` (of `track`) was taken out of `index`.
    Remove {
        entry: String,
        track: TrackId,
        index: usize,
    },
    /// `entry` (of `track`) moved from index `from` to `to`.
    Reorder {
        entry: String,
        track: TrackId,
        from: usize,
        to: usize,
    },
    /// `user` became (`member`) or stopped being a member, outside the hub.
    Member {
        user: UserId,
        name: String,
        avatar: Option<String>,
        member: bool,
    },
    /// A party op (playback, votes, pins, settings, roles, kicks): logged
    /// in `hub_event` with its `detail` as the `update` shows it.
    Party {
        kind: OpKind,
        entry: Option<String>,
        track: Option<TrackId>,
        from: Option<usize>,
        to: Option<usize>,
        detail: ChangeDetail,
    },
}

/// The table a record is kept in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Log {
    PlaylistUpdate,
    Hub,
}

/// The columns of a log row a record decides (both tables encode alike).
#[derive(Clone, Debug, PartialEq)]
pub struct LogColumns<'a> {
    pub kind: &'static str,
    pub track_id: Option<&'a str>,
    pub entry_id: Option<&'a str>,
    pub from_index: Option<i32>,
    pub to_index: Option<i32>,
    pub detail: Option<ChangeDetail>,
}

impl ChangeRecord {
    pub fn kind(&self) -> OpKind {
        match self.op {
            ChangeOp::Add { .. } => OpKind::Add,
            ChangeOp::Remove { .. } => OpKind::Remove,
            ChangeOp::Reorder { .. } => OpKind::Reorder,
            ChangeOp::Member { .. } => OpKind::Member,
            ChangeOp::Party { kind, .. } => kind,
        }
    }

    /// Where it is kept: a member's queue change through the hub is what
    /// the old app reads in `"PlaylistUpdate"`; the rest is the hub's own.
    pub fn log(&self) -> Log {
        match (&self.by, &self.op) {
            (
                Some(_),
                ChangeOp::Add { .. } | ChangeOp::Remove { .. } | ChangeOp::Reorder { .. },
            ) => Log::PlaylistUpdate,
            _ => Log::Hub,
        }
    }

    pub fn entry(&self) -> Option<&str> {
        match &self.op {
            ChangeOp::Add { entry, .. }
            | ChangeOp::Remove { entry, .. }
            | ChangeOp::Reorder { entry, .. } => Some(entry),
            ChangeOp::Party { entry, .. } => entry.as_deref(),
            ChangeOp::Member { .. } => None,
        }
    }

    pub fn track_id(&self) -> Option<&str> {
        match &self.op {
            ChangeOp::Add { track, .. } => Some(&track.id),
            ChangeOp::Remove { track, .. } | ChangeOp::Reorder { track, .. } => {
                Some(track.as_str())
            }
            ChangeOp::Party { track, .. } => track.as_ref().map(TrackId::as_str),
            ChangeOp::Member { .. } => None,
        }
    }

    fn detail(&self) -> Option<ChangeDetail> {
        match &self.op {
            ChangeOp::Member {
                user,
                name,
                avatar,
                member,
            } => Some(ChangeDetail::Member {
                user_id: user.to_string(),
                name: name.clone(),
                avatar: avatar.clone(),
                member: *member,
            }),
            ChangeOp::Party { detail, .. } => Some(detail.clone()),
            _ => None,
        }
    }

    /// Encode: the columns of this record's row.
    pub fn columns(&self) -> LogColumns<'_> {
        let (from, to) = match self.op {
            ChangeOp::Add { index, .. } => (None, Some(index)),
            ChangeOp::Remove { index, .. } => (Some(index), None),
            ChangeOp::Reorder { from, to, .. } => (Some(from), Some(to)),
            ChangeOp::Member { .. } => (None, None),
            ChangeOp::Party { from, to, .. } => (from, to),
        };
        LogColumns {
            kind: self.kind().as_str(),
            track_id: self.track_id(),
            entry_id: self.entry(),
            from_index: from.map(index_column),
            to_index: to.map(index_column),
            detail: self.detail(),
        }
    }

    /// The `update` frame's body.
    pub fn change(&self) -> Change {
        let (track, index, from_index, to_index) = match &self.op {
            ChangeOp::Add { track, index, .. } => {
                (Some((**track).clone()), Some(*index), None, None)
            }
            ChangeOp::Remove { index, .. } => (None, Some(*index), None, None),
            ChangeOp::Reorder { from, to, .. } => (None, None, Some(*from), Some(*to)),
            ChangeOp::Member { .. } => (None, None, None, None),
            ChangeOp::Party { from, to, .. } => (None, None, *from, *to),
        };
        Change {
            op: self.kind(),
            entry_id: self.entry().map(str::to_owned),
            track,
            index,
            from_index,
            to_index,
            by: self.by.as_ref().map(UserId::to_string),
            detail: self.detail(),
        }
    }

    /// The `update` frame.
    pub fn update(&self) -> ServerMsg {
        ServerMsg::Update {
            version: self.version,
            change: self.change(),
            at: self.at,
        }
    }

    /// The REST `/updates` view: the row's columns as they are stored.
    pub fn record(&self) -> UpdateRecord {
        let c = self.columns();
        UpdateRecord {
            version: self.version,
            kind: c.kind.to_owned(),
            entry_id: c.entry_id.map(str::to_owned),
            track_id: c.track_id.map(str::to_owned),
            user_id: self.by.as_ref().map(UserId::to_string),
            from_index: c.from_index,
            to_index: c.to_index,
            timestamp: self.at,
            detail: c.detail,
        }
    }
}

fn index_column(i: usize) -> i32 {
    // The queue is capped far below i32::MAX (`HubConfig::queue_cap`).
    i32::try_from(i).expect("queue index fits INTEGER")
}

/// A logged row of either table, with its track if the catalog still has it.
#[derive(sqlx::FromRow)]
struct LogRow {
    version: i64,
    kind: String,
    entry_id: Option<String>,
    user_id: Option<String>,
    from_index: Option<i32>,
    to_index: Option<i32>,
    detail: Option<sqlx::types::Json<ChangeDetail>>,
    at: NaiveDateTime,
    track_ref: Option<String>,
    t_spotify_id: Option<String>,
    t_name: Option<String>,
    t_artists: Option<Vec<String>>,
    t_album: Option<String>,
    t_popularity: Option<i32>,
    t_duration_ms: Option<i32>,
    t_cover_url: Option<String>,
}

impl LogRow {
    fn track(&self) -> Option<Track> {
        Some(Track {
            id: self.track_ref.clone()?,
            spotify_id: self.t_spotify_id.clone()?,
            name: self.t_name.clone()?,
            artists: self.t_artists.clone().unwrap_or_default(),
            album: self.t_album.clone()?,
            popularity: self.t_popularity?,
            duration_ms: self.t_duration_ms.map(i64::from),
            cover_url: self.t_cover_url.clone(),
        })
    }
}

/// Decode a row; `None` for a row the hub cannot have written.
fn decode(r: LogRow) -> Option<ChangeRecord> {
    let index = |i: Option<i32>| i.and_then(|i| usize::try_from(i).ok());
    let op = match OpKind::parse(&r.kind)? {
        OpKind::Add => ChangeOp::Add {
            track: Arc::new(r.track()?),
            entry: r.entry_id?,
            index: index(r.to_index)?,
        },
        OpKind::Remove => ChangeOp::Remove {
            entry: r.entry_id?,
            index: index(r.from_index)?,
            track: TrackId::from_stored(r.track_ref?),
        },
        OpKind::Reorder => ChangeOp::Reorder {
            entry: r.entry_id?,
            from: index(r.from_index)?,
            to: index(r.to_index)?,
            track: TrackId::from_stored(r.track_ref?),
        },
        OpKind::Member => match r.detail?.0 {
            ChangeDetail::Member {
                user_id,
                name,
                avatar,
                member,
            } => ChangeOp::Member {
                user: UserId::from_stored(user_id),
                name,
                avatar,
                member,
            },
            _ => return None,
        },
        kind => ChangeOp::Party {
            kind,
            entry: r.entry_id,
            track: r.track_ref.map(TrackId::from_stored),
            from: index(r.from_index),
            to: index(r.to_index),
            detail: r.detail?.0,
        },
    };
    Some(ChangeRecord {
        version: r.version,
        at: utc(r.at),
        by: r.user_id.map(UserId::from_stored),
        op,
    })
}

/// The records of a session (`session_id`, its playlist `playlist_id`)
/// after version `after`, in version order, at most `limit` of them. A row
/// that does not decode is skipped (and so shows as a gap a caller can
/// detect).
pub async fn after(
    db: impl PgExecutor<'_>,
    session_id: &str,
    playlist_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<ChangeRecord>> {
    let rows: Vec<LogRow> = sqlx::query_as(
        r#"SELECT l.version, l.kind, l.entry_id, l.user_id, l.from_index, l.to_index, l.detail, l.at,
                  l.track_ref, t."spotifyId" AS t_spotify_id, t."name" AS t_name,
                  t."artists" AS t_artists, t."album" AS t_album, t."popularity" AS t_popularity,
                  x.duration_ms AS t_duration_ms, x.cover_url AS t_cover_url
           FROM (
               SELECT u."hubVersion" AS version, u."type" AS kind, u."hubEntryId" AS entry_id,
                      u."userId" AS user_id, u."hubFromIndex" AS from_index, u."hubToIndex" AS to_index,
                      NULL::jsonb AS detail, u."timestamp" AS at, u."trackId" AS track_ref
               FROM "PlaylistUpdate" u WHERE u."playlistId" = $2 AND u."hubVersion" > $3
               UNION ALL
               SELECT e.version, e.kind, e.entry_id, e.user_id, e.from_index, e.to_index,
                      e.detail, e.at, e.track_id
               FROM hub_event e WHERE e.session_id = $1 AND e.version > $3
           ) l LEFT JOIN "Track" t ON t."id" = l.track_ref
             LEFT JOIN hub_track x ON x.track_id = l.track_ref
           ORDER BY l.version LIMIT $4"#,
    )
    .bind(session_id)
    .bind(playlist_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().filter_map(decode).collect())
}

/// When each of many sessions last changed (its newest log record), by
/// session (those with any); `playlists[i]` is `ids[i]`'s playlist.
pub async fn last_at_of(
    db: impl PgExecutor<'_>,
    ids: &[String],
    playlists: &[String],
) -> Result<HashMap<String, DateTime<Utc>>> {
    let rows: Vec<(String, Option<NaiveDateTime>)> = sqlx::query_as(
        r#"SELECT s.sid, (SELECT max(at) FROM (
               SELECT max("timestamp") AS at FROM "PlaylistUpdate" WHERE "playlistId" = s.pid
               UNION ALL
               SELECT max(at) FROM hub_event WHERE session_id = s.sid) l)
           FROM unnest($1::text[], $2::text[]) AS s(sid, pid)"#,
    )
    .bind(ids)
    .bind(playlists)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, at)| Some((id, utc(at?))))
        .collect())
}

/// Every request id already applied in each of many sessions, with the
/// version its `ack` carried: the exactly-once memory, rebuilt after a
/// restart. By session (those with any); `playlists[i]` is `ids[i]`'s
/// playlist.
pub async fn answered_reqs_of(
    db: impl PgExecutor<'_>,
    ids: &[String],
    playlists: &[String],
) -> Result<HashMap<String, HashMap<(UserId, Req), i64>>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        session_id: String,
        user_id: String,
        req: String,
        version: i64,
    }
    let rows: Vec<Row> = sqlx::query_as(
        r#"SELECT s.sid AS session_id, a.user_id, a.req, a.version
           FROM unnest($1::text[], $2::text[]) AS s(sid, pid) CROSS JOIN LATERAL (
               SELECT "userId" AS user_id, "hubReq" AS req, "hubVersion" AS version
                 FROM "PlaylistUpdate" WHERE "playlistId" = s.pid AND "hubReq" IS NOT NULL
               UNION ALL
               SELECT "userId", "hubReq", COALESCE("hubVersion", 0) FROM "TrackInteraction"
                 WHERE "hubSessionId" = s.sid AND "hubReq" IS NOT NULL
               UNION ALL
               SELECT user_id, req, version FROM hub_event
                 WHERE session_id = s.sid AND req IS NOT NULL AND user_id IS NOT NULL) a"#,
    )
    .bind(ids)
    .bind(playlists)
    .fetch_all(db)
    .await?;
    Ok(super::by_session(rows.into_iter().map(|r| {
        let answered = (UserId::from_stored(r.user_id), Req::from_stored(r.req));
        (r.session_id, (answered, r.version))
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use audotics_protocol::EntryId;

    fn track() -> Arc<Track> {
        Arc::new(Track {
            id: "t1".into(),
            spotify_id: "sp1".into(),
            name: "Song".into(),
            artists: vec!["A".into()],
            album: "Album".into(),
            popularity: 3,
            duration_ms: Some(180_000),
            cover_url: None,
        })
    }

    fn record(by: Option<&str>, op: ChangeOp) -> ChangeRecord {
        ChangeRecord {
            version: 7,
            at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            by: by.map(|b| UserId::from_stored(b.into())),
            op,
        }
    }

    fn row_of(rec: &ChangeRecord) -> LogRow {
        let c = rec.columns();
        let t = track();
        LogRow {
            version: rec.version,
            kind: c.kind.to_owned(),
            entry_id: c.entry_id.map(str::to_owned),
            user_id: rec.by.as_ref().map(UserId::to_string),
            from_index: c.from_index,
            to_index: c.to_index,
            detail: c.detail.map(sqlx::types::Json),
            at: rec.at.naive_utc(),
            track_ref: c.track_id.map(str::to_owned),
            t_spotify_id: Some(t.spotify_id.clone()),
            t_name: Some(t.name.clone()),
            t_artists: Some(t.artists.clone()),
            t_album: Some(t.album.clone()),
            t_popularity: Some(t.popularity),
            t_duration_ms: t.duration_ms.map(|d| d as i32),
            t_cover_url: t.cover_url.clone(),
        }
    }

    /// Encoding then decoding gives the record back, for every kind and
    /// either author.
    #[test]
    fn rows_round_trip() {
        let entry = EntryId::new().to_string();
        let t1 = || TrackId::from_stored("t1".into());
        for (by, op) in [
            (
                Some("u1"),
                ChangeOp::Add {
                    entry: entry.clone(),
                    track: track(),
                    index: 2,
                },
            ),
            (
                None,
                ChangeOp::Add {
                    entry: entry.clone(),
                    track: track(),
                    index: 0,
                },
            ),
            (
                Some("u1"),
                ChangeOp::Remove {
                    entry: entry.clone(),
                    track: t1(),
                    index: 4,
                },
            ),
            (
                None,
                ChangeOp::Remove {
                    entry: entry.clone(),
                    track: t1(),
                    index: 1,
                },
            ),
            (
                Some("u1"),
                ChangeOp::Reorder {
                    entry: entry.clone(),
                    track: t1(),
                    from: 1,
                    to: 0,
                },
            ),
            (
                None,
                ChangeOp::Member {
                    user: UserId::from_stored("u9".into()),
                    name: "Nina".into(),
                    avatar: None,
                    member: true,
                },
            ),
        ] {
            let rec = record(by, op);
            assert_eq!(decode(row_of(&rec)), Some(rec));
        }
    }

    #[test]
    fn member_queue_changes_go_to_playlist_update_and_the_rest_to_the_hub_log() {
        let add = |by| {
            record(
                by,
                ChangeOp::Add {
                    entry: "e".into(),
                    track: track(),
                    index: 0,
                },
            )
        };
        assert_eq!(add(Some("u1")).log(), Log::PlaylistUpdate);
        assert_eq!(add(None).log(), Log::Hub);
        let member = record(
            None,
            ChangeOp::Member {
                user: UserId::from_stored("u9".into()),
                name: "N".into(),
                avatar: None,
                member: false,
            },
        );
        assert_eq!(member.log(), Log::Hub);
    }

    /// The REST view and the frame view agree field for field.
    #[test]
    fn rest_and_frames_are_two_views_of_one_record() {
        let rec = record(
            Some("u1"),
            ChangeOp::Reorder {
                entry: EntryId::new().to_string(),
                track: TrackId::from_stored("t1".into()),
                from: 3,
                to: 1,
            },
        );
        let (rest, change) = (rec.record(), rec.change());
        assert_eq!(rest.kind, change.op.as_str());
        assert_eq!(rest.entry_id, change.entry_id);
        assert_eq!(rest.user_id, change.by);
        assert_eq!(rest.from_index, Some(3));
        assert_eq!(change.from_index, Some(3));
        assert_eq!(rest.to_index, Some(1));
        assert_eq!(change.to_index, Some(1));
        assert_eq!(rest.detail, change.detail);
    }
}
