//! The change log: every versioned queue change of a session is one
//! [`ChangeRecord`], encoded to and decoded from a `"PlaylistUpdate"` row in
//! this one place. WebSocket replay (`update` frames) and REST `/updates`
//! are two views of the same records, so they cannot disagree.
//!
//! Encoding of the hub's columns: `hubVersion` the version, `hubEntryId` the
//! entry; `add` stores where the entry landed in `hubToIndex`, `remove`
//! where it was in `hubFromIndex`, `reorder` both. Rows the old app wrote
//! have no `hubVersion` and are not part of the protocol's history.

use std::collections::HashMap;
use std::sync::Arc;

use audotics_protocol::model::{Track, UpdateRecord};
use audotics_protocol::{Change, OpKind, Req, ServerMsg, TrackId, UserId};
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::PgExecutor;

use super::tracks::{TrackRow, TRACK_COLUMNS};
use crate::clock::utc;
use crate::error::Result;

/// One applied queue change, as the log keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeRecord {
    /// The session's version after this change.
    pub version: i64,
    /// Commit time.
    pub at: DateTime<Utc>,
    /// Who made it.
    pub by: UserId,
    pub op: ChangeOp,
}

/// What a change did to the queue. Entries are named by their id as the log
/// stores it (the hub writes UUIDs; the log shows whatever a row holds).
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
}

/// The columns of a `"PlaylistUpdate"` row a record decides.
#[derive(Clone, Debug, PartialEq)]
pub struct LogColumns<'a> {
    pub kind: &'static str,
    pub track_id: &'a str,
    pub entry_id: &'a str,
    pub from_index: Option<i32>,
    pub to_index: Option<i32>,
}

impl ChangeRecord {
    pub fn kind(&self) -> OpKind {
        match self.op {
            ChangeOp::Add { .. } => OpKind::Add,
            ChangeOp::Remove { .. } => OpKind::Remove,
            ChangeOp::Reorder { .. } => OpKind::Reorder,
        }
    }

    pub fn entry(&self) -> &str {
        match &self.op {
            ChangeOp::Add { entry, .. }
            | ChangeOp::Remove { entry, .. }
            | ChangeOp::Reorder { entry, .. } => entry,
        }
    }

    pub fn track_id(&self) -> &str {
        match &self.op {
            ChangeOp::Add { track, .. } => &track.id,
            ChangeOp::Remove { track, .. } | ChangeOp::Reorder { track, .. } => track.as_str(),
        }
    }

    /// Encode: the hub's columns of this record's row.
    pub fn columns(&self) -> LogColumns<'_> {
        let (from, to) = match self.op {
            ChangeOp::Add { index, .. } => (None, Some(index)),
            ChangeOp::Remove { index, .. } => (Some(index), None),
            ChangeOp::Reorder { from, to, .. } => (Some(from), Some(to)),
        };
        LogColumns {
            kind: self.kind().as_str(),
            track_id: self.track_id(),
            entry_id: self.entry(),
            from_index: from.map(index_column),
            to_index: to.map(index_column),
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
        };
        Change {
            op: self.kind(),
            entry_id: self.entry().to_string(),
            track,
            index,
            from_index,
            to_index,
            by: self.by.to_string(),
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

    /// The REST `/updates` view: the row's columns as Prisma names them.
    pub fn record(&self) -> UpdateRecord {
        let c = self.columns();
        UpdateRecord {
            version: self.version,
            kind: c.kind.to_owned(),
            entry_id: Some(c.entry_id.to_owned()),
            track_id: c.track_id.to_owned(),
            user_id: self.by.to_string(),
            from_index: c.from_index,
            to_index: c.to_index,
            timestamp: self.at,
        }
    }
}

fn index_column(i: usize) -> i32 {
    // The queue is capped far below i32::MAX (`HubConfig::queue_cap`).
    i32::try_from(i).expect("queue index fits INTEGER")
}

/// A logged row with its track, as `after` reads it.
#[derive(sqlx::FromRow)]
struct LogRow {
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

/// Decode a row; `None` for a row the hub cannot have written.
fn decode(r: LogRow) -> Option<ChangeRecord> {
    let entry = r.entry_id?;
    let index = |i: Option<i32>| i.and_then(|i| usize::try_from(i).ok());
    let op = match OpKind::parse(&r.kind)? {
        OpKind::Add => ChangeOp::Add {
            entry,
            index: index(r.to_index)?,
            track: Arc::new(r.track.into()),
        },
        OpKind::Remove => ChangeOp::Remove {
            entry,
            index: index(r.from_index)?,
            track: TrackId::from_stored(r.track.id),
        },
        OpKind::Reorder => ChangeOp::Reorder {
            entry,
            from: index(r.from_index)?,
            to: index(r.to_index)?,
            track: TrackId::from_stored(r.track.id),
        },
    };
    Some(ChangeRecord {
        version: r.version,
        at: utc(r.at),
        by: UserId::from_stored(r.user_id),
        op,
    })
}

/// The records of `playlist_id` after version `after`, in version order, at
/// most `limit` of them. A row that does not decode is skipped (and so shows
/// as a gap a caller can detect).
pub async fn after(
    db: impl PgExecutor<'_>,
    playlist_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<ChangeRecord>> {
    let rows: Vec<LogRow> = sqlx::query_as(&format!(
        r#"SELECT u."hubVersion" AS version, u."type" AS kind, u."hubEntryId" AS entry_id,
                  u."userId" AS user_id, u."hubFromIndex" AS from_index, u."hubToIndex" AS to_index,
                  u."timestamp" AS at, {TRACK_COLUMNS}
           FROM "PlaylistUpdate" u JOIN "Track" ON "Track"."id" = u."trackId"
           WHERE u."playlistId" = $1 AND u."hubVersion" > $2
           ORDER BY u."hubVersion" LIMIT $3"#
    ))
    .bind(playlist_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().filter_map(decode).collect())
}

/// Every request id already applied in this session, with the version its
/// `ack` carried: the exactly-once memory, rebuilt after a restart.
pub async fn answered_reqs(
    db: impl PgExecutor<'_>,
    session_id: &str,
    playlist_id: &str,
) -> Result<HashMap<(UserId, Req), i64>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        user_id: String,
        req: String,
        version: i64,
    }
    let rows: Vec<Row> = sqlx::query_as(
        r#"SELECT "userId" AS user_id, "hubReq" AS req, "hubVersion" AS version FROM "PlaylistUpdate"
             WHERE "playlistId" = $1 AND "hubReq" IS NOT NULL
           UNION ALL
           SELECT "userId", "hubReq", COALESCE("hubVersion", 0) FROM "TrackInteraction"
             WHERE "hubSessionId" = $2 AND "hubReq" IS NOT NULL"#,
    )
    .bind(playlist_id)
    .bind(session_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                (UserId::from_stored(r.user_id), Req::from_stored(r.req)),
                r.version,
            )
        })
        .collect())
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
        })
    }

    fn record(op: ChangeOp) -> ChangeRecord {
        ChangeRecord {
            version: 7,
            at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            by: UserId::from_stored("u1".into()),
            op,
        }
    }

    /// Encoding then decoding gives the record back, for every kind.
    #[test]
    fn rows_round_trip() {
        let entry = EntryId::new().to_string();
        for op in [
            ChangeOp::Add {
                entry: entry.clone(),
                track: track(),
                index: 2,
            },
            ChangeOp::Remove {
                entry: entry.clone(),
                track: TrackId::from_stored("t1".into()),
                index: 4,
            },
            ChangeOp::Reorder {
                entry,
                track: TrackId::from_stored("t1".into()),
                from: 1,
                to: 0,
            },
        ] {
            let rec = record(op);
            let c = rec.columns();
            let t = track();
            let row = LogRow {
                version: rec.version,
                kind: c.kind.to_owned(),
                entry_id: Some(c.entry_id.to_owned()),
                user_id: rec.by.to_string(),
                from_index: c.from_index,
                to_index: c.to_index,
                at: rec.at.naive_utc(),
                track: TrackRow::from(&*t),
            };
            assert_eq!(decode(row), Some(rec));
        }
    }

    /// The REST view and the frame view agree field for field.
    #[test]
    fn rest_and_frames_are_two_views_of_one_record() {
        let rec = record(ChangeOp::Reorder {
            entry: EntryId::new().to_string(),
            track: TrackId::from_stored("t1".into()),
            from: 3,
            to: 1,
        });
        let (rest, change) = (rec.record(), rec.change());
        assert_eq!(rest.kind, change.op.as_str());
        assert_eq!(rest.entry_id.as_deref(), Some(change.entry_id.as_str()));
        assert_eq!(rest.user_id, change.by);
        assert_eq!(rest.from_index, Some(3));
        assert_eq!(change.from_index, Some(3));
        assert_eq!(rest.to_index, Some(1));
        assert_eq!(change.to_index, Some(1));
    }
}
