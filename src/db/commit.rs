//! One group commit — the batches of any number of sessions — written as
//! ONE statement: data-modifying CTEs over UNNEST-ed arrays, run in
//! autocommit so the statement is its own transaction (one round trip, one
//! fsync). Sibling CTEs see the same snapshot, which the batch respects: new
//! entries carry their final position, moves and deletes only touch entries
//! that existed before, and a track is never both linked and unlinked.
//!
//! Each table's rows are a named struct, and each struct names its columns
//! next to the values bound for them ([`Columns`]): the `$n` placeholders,
//! the column list and the bound arrays are generated together, so a column
//! cannot be shifted onto another's values.
//!
//! Only the parts with rows go into the statement: Postgres plans and
//! starts every CTE it is given, which for a one-op commit cost as much as
//! the writes. Each combination of parts is one prepared statement per
//! connection.

use std::sync::Arc;

use audotics_protocol::model::Track;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::log::{ChangeRecord, Log};
use super::new_id;

/// One logged change (a `"PlaylistUpdate"` or `hub_event` row: see
/// `log::ChangeRecord::log`) and the req it answered, if a member sent it.
#[derive(Debug)]
pub struct LoggedChange {
    pub record: ChangeRecord,
    pub req: Option<String>,
}

/// A TrackInteraction row: one reaction and the req it answered (none for
/// the `play` and `skip` rows playback makes).
#[derive(Clone, Debug)]
pub struct LoggedInteraction {
    pub user_id: String,
    pub track_id: String,
    pub kind: String,
    pub req: Option<String>,
    /// The session's version when it was acked.
    pub version: i64,
}

/// A new `hub_queue_entry` row.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEntry {
    pub entry_id: String,
    pub track_id: String,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
    pub position: String,
    pub votes: Vec<String>,
    pub round: i64,
    pub pinned_at: Option<DateTime<Utc>>,
}

/// An entry that existed before the batch whose votes or pin changed.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryMarks {
    pub entry_id: String,
    pub votes: Vec<String>,
    pub pinned_at: Option<DateTime<Utc>>,
}

/// A `hub_played` row.
#[derive(Clone, Debug, PartialEq)]
pub struct PlayedWrite {
    pub version: i64,
    pub entry_id: String,
    pub track_id: String,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub skipped: bool,
}

/// An entry that existed before the batch and now has a new position.
#[derive(Clone, Debug, PartialEq)]
pub struct Moved {
    pub entry_id: String,
    pub position: String,
}

/// Everything one session's batch writes, as net effects on the tables.
#[derive(Default, Debug)]
pub struct BatchWrite {
    pub changes: Vec<LoggedChange>,
    pub interactions: Vec<LoggedInteraction>,
    /// Tracks given by metadata (`add.track`), with the id the queue uses.
    pub track_upserts: Vec<Arc<Track>>,
    pub inserts: Vec<NewEntry>,
    pub moves: Vec<Moved>,
    /// Entries that existed before the batch and are gone.
    pub deletes: Vec<String>,
    /// Tracks now in the queue / no longer in it (`_PlaylistToTrack`).
    pub link_tracks: Vec<String>,
    pub unlink_tracks: Vec<String>,
    /// Entries that existed before whose votes or pin changed.
    pub marks: Vec<EntryMarks>,
    /// Entries that stopped playing.
    pub played: Vec<PlayedWrite>,
    /// Members a host removed (`_GroupSessionToUser`).
    pub member_removes: Vec<String>,
    /// The party's state after the batch, when it changed (`hub_session.party`).
    pub party: Option<serde_json::Value>,
}

impl BatchWrite {
    /// Ops this batch logs (changes and reactions).
    pub fn ops(&self) -> usize {
        self.changes.len() + self.interactions.len()
    }
}

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
    /// The ownership epoch the session was loaded under: the commit changes
    /// nothing if it has moved on (see the `hub_session_epoch` migration).
    pub epoch: i64,
    pub at: DateTime<Utc>,
    /// Set the Playlist's and GroupSession's `updatedAt` to `at`.
    pub touch: bool,
    pub write: BatchWrite,
}

/// The columns of one table part: each declared with its name, SQL type
/// and the array bound for it, in one call.
#[derive(Default)]
struct Columns<'q> {
    cols: Vec<Column<'q>>,
}

struct Column<'q> {
    name: &'static str,
    sql_type: &'static str,
    bind: Bind<'q>,
}

/// Binds one column's array to the statement being built.
type Bind<'q> = Box<dyn FnOnce(&mut QueryBuilder<'q, Postgres>) + 'q>;

impl<'q> Columns<'q> {
    /// Column `name`: `values` bound as one `sql_type[]` parameter.
    fn col<T>(&mut self, name: &'static str, sql_type: &'static str, values: Vec<T>) -> &mut Self
    where
        T: 'q,
        Vec<T>: sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send,
    {
        self.cols.push(Column {
            name,
            sql_type,
            bind: Box::new(move |qb| {
                qb.push_bind(values);
            }),
        });
        self
    }

    /// `"a", "b"`, or with `prefix`: `u."a", u."b"`.
    fn names(&self, prefix: &str) -> String {
        self.cols
            .iter()
            .map(|c| format!("{prefix}\"{}\"", c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `UNNEST($n::t[], …) AS u("a", …)`: the placeholders and the binds
    /// are made by the same calls, in the same order.
    fn unnest(self, qb: &mut QueryBuilder<'q, Postgres>) {
        let names = self.names("");
        qb.push("UNNEST(");
        for (i, c) in self.cols.into_iter().enumerate() {
            if i > 0 {
                qb.push(", ");
            }
            (c.bind)(qb);
            qb.push(format_args!("::{}[]", c.sql_type));
        }
        qb.push(format_args!(") AS u({names})"));
    }
}

/// `values` of `rows`, one per row: the array bound for one column.
fn each<R, T>(rows: &[R], value: impl Fn(&R) -> T) -> Vec<T> {
    rows.iter().map(value).collect()
}

/// Which table part of the statement; each is left out when it has no rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Track,
    Changes,
    Events,
    Inserts,
    Moves,
    Deletes,
    Links,
    Unlinks,
    Reactions,
    Marks,
    Played,
    MemberRemoves,
    Sessions,
    TouchPlaylists,
    TouchSessions,
}

/// One part: its CTE name, the SQL before and after its UNNEST, and its
/// columns.
struct Cte<'q> {
    part: Part,
    head: String,
    cols: Columns<'q>,
    tail: &'static str,
}

/// `INSERT INTO table ("a", …) SELECT u."a", … FROM UNNEST(…) AS u(…)`.
fn insert<'q>(part: Part, table: &str, cols: Columns<'q>, tail: &'static str) -> Cte<'q> {
    insert_selecting(part, table, &[], cols, tail)
}

/// Like [`insert`], with a select expression replacing `u."name"` for the
/// columns named in `select`.
fn insert_selecting<'q>(
    part: Part,
    table: &str,
    select: &[(&str, &str)],
    cols: Columns<'q>,
    tail: &'static str,
) -> Cte<'q> {
    let selects: Vec<String> = cols
        .cols
        .iter()
        .map(|c| {
            select
                .iter()
                .find(|(name, _)| *name == c.name)
                .map_or_else(|| format!("u.\"{}\"", c.name), |(_, e)| (*e).to_owned())
        })
        .collect();
    Cte {
        part,
        head: format!(
            "INSERT INTO {table} ({}) SELECT {} FROM ",
            cols.names(""),
            selects.join(", ")
        ),
        cols,
        tail,
    }
}

/// The parts of one commit of `commits`, only those with rows.
fn parts<'q>(commits: &[&'q SessionCommit]) -> Vec<Cte<'q>> {
    let mut out: Vec<Cte<'q>> = [
        track_upserts(commits),
        playlist_updates(commits),
        hub_events(commits),
        queue_inserts(commits),
        queue_moves(commits),
        queue_deletes(commits),
        playlist_links(commits),
        playlist_unlinks(commits),
        interactions(commits),
        queue_marks(commits),
        played(commits),
        member_removes(commits),
        Some(session_counters(commits)),
    ]
    .into_iter()
    .flatten()
    .collect();
    out.extend(activity(commits));
    out
}

/// The rows of every commit's `pick`, each with its commit.
fn rows<'q, T>(
    commits: &[&'q SessionCommit],
    pick: impl Fn(&'q BatchWrite) -> &'q [T],
) -> Vec<(&'q SessionCommit, &'q T)> {
    commits
        .iter()
        .flat_map(|c| pick(&c.write).iter().map(move |x| (*c, x)))
        .collect()
}

/// `"Track"`: tracks added by metadata — new ones, or known ones whose
/// unknown fields (no artists, popularity 0) the metadata fills. A known
/// field is never overwritten, even if another writer stored it since the
/// batch looked (one row per Spotify id per statement). An array of arrays
/// cannot be UNNEST-ed into rows, so each row's artists travel as one JSON
/// array.
#[rustfmt::skip]
fn track_upserts<'q>(commits: &[&'q SessionCommit]) -> Option<Cte<'q>> {
    let mut tracks: Vec<&Track> = Vec::new();
    for t in commits.iter().flat_map(|c| &c.write.track_upserts) {
        tracks.retain(|x| x.spotify_id != t.spotify_id);
        tracks.push(t);
    }
    if tracks.is_empty() {
        return None;
    }
    let at = commits[0].at.naive_utc();
    let mut c = Columns::default();
    c.col("id",         "text",      each(&tracks, |t| t.id.as_str()))
     .col("spotifyId",  "text",      each(&tracks, |t| t.spotify_id.as_str()))
     .col("name",       "text",      each(&tracks, |t| t.name.as_str()))
     .col("artists",    "jsonb",     each(&tracks, |t| serde_json::json!(t.artists)))
     .col("album",      "text",      each(&tracks, |t| t.album.as_str()))
     .col("popularity", "int4",      each(&tracks, |t| t.popularity))
     .col("createdAt",  "timestamp", each(&tracks, |_| at))
     .col("updatedAt",  "timestamp", each(&tracks, |_| at));
    Some(insert_selecting(
        Part::Track,
        r#""Track""#,
        &[("artists", r#"ARRAY(SELECT jsonb_array_elements_text(u."artists"))"#)],
        c,
        FILL_UNKNOWN,
    ))
}

/// How a write of a known Track (by Spotify id) fills only what it lacks.
pub(crate) const FILL_UNKNOWN: &str = r#"ON CONFLICT ("spotifyId") DO UPDATE SET
        "artists" = CASE WHEN cardinality("Track"."artists") > 0 THEN "Track"."artists" ELSE EXCLUDED."artists" END,
        "popularity" = CASE WHEN "Track"."popularity" > 0 THEN "Track"."popularity" ELSE EXCLUDED."popularity" END,
        "updatedAt" = EXCLUDED."updatedAt"
    WHERE (coalesce(cardinality("Track"."artists"), 0) = 0 AND cardinality(EXCLUDED."artists") > 0)
       OR ("Track"."popularity" = 0 AND EXCLUDED."popularity" > 0)"#;

/// The logged changes of `commits` kept in `log`.
fn logged<'q>(
    commits: &[&'q SessionCommit],
    log: Log,
) -> Vec<(&'q SessionCommit, &'q LoggedChange)> {
    let mut all = rows(commits, |w| &w.changes);
    all.retain(|(_, c)| c.record.log() == log);
    all
}

/// `"PlaylistUpdate"`: a member's queue changes through the hub (columns
/// from `log::ChangeRecord`).
#[rustfmt::skip]
fn playlist_updates<'q>(commits: &[&'q SessionCommit]) -> Option<Cte<'q>> {
    let changes = logged(commits, Log::PlaylistUpdate);
    if changes.is_empty() {
        return None;
    }
    let log: Vec<_> = each(&changes, |(_, x)| x.record.columns());
    let mut c = Columns::default();
    c.col("id",           "text",      each(&changes, |_| new_id()))
     .col("playlistId",   "text",      each(&changes, |(s, _)| s.playlist_id.as_str()))
     .col("type",         "text",      each(&log, |l| l.kind))
     .col("trackId",      "text",      each(&log, |l| l.track_id))
     .col("userId",       "text",      each(&changes, |(_, x)| x.record.by.as_ref().map(|b| b.as_str())))
     .col("timestamp",    "timestamp", each(&changes, |(_, x)| x.record.at.naive_utc()))
     .col("hubVersion",   "int8",      each(&changes, |(_, x)| x.record.version))
     .col("hubEntryId",   "text",      each(&log, |l| l.entry_id))
     .col("hubFromIndex", "int4",      each(&log, |l| l.from_index))
     .col("hubToIndex",   "int4",      each(&log, |l| l.to_index))
     .col("hubReq",       "text",      each(&changes, |(_, x)| x.req.as_deref()));
    Some(insert(Part::Changes, r#""PlaylistUpdate""#, c, ""))
}

/// `hub_event`: every other versioned change (columns from
/// `log::ChangeRecord`, as in `"PlaylistUpdate"`).
#[rustfmt::skip]
fn hub_events<'q>(commits: &[&'q SessionCommit]) -> Option<Cte<'q>> {
    let changes = logged(commits, Log::Hub);
    if changes.is_empty() {
        return None;
    }
    let log: Vec<_> = each(&changes, |(_, x)| x.record.columns());
    let mut c = Columns::default();
    c.col("session_id", "text",      each(&changes, |(s, _)| s.session_id.as_str()))
     .col("version",    "int8",      each(&changes, |(_, x)| x.record.version))
     .col("kind",       "text",      each(&log, |l| l.kind))
     .col("entry_id",   "text",      each(&log, |l| l.entry_id))
     .col("track_id",   "text",      each(&log, |l| l.track_id))
     .col("user_id",    "text",      each(&changes, |(_, x)| x.record.by.as_ref().map(|b| b.as_str())))
     .col("from_index", "int4",      each(&log, |l| l.from_index))
     .col("to_index",   "int4",      each(&log, |l| l.to_index))
     .col("detail",     "jsonb",     each(&log, |l| l.detail.as_ref().map(|d| serde_json::json!(d))))
     .col("req",        "text",      each(&changes, |(_, x)| x.req.as_deref()))
     .col("at",         "timestamp", each(&changes, |(_, x)| x.record.at.naive_utc()));
    Some(insert(Part::Events, "hub_event", c, ""))
}

/// `hub_queue_entry`: entries added by the batch, at their final position.
#[rustfmt::skip]
fn queue_inserts<'q>(commits: &[&'q SessionCommit]) -> Option<Cte<'q>> {
    let inserts = rows(commits, |w| &w.inserts);
    if inserts.is_empty() {
        return None;
    }
    let mut c = Columns::default();
    c.col("entry_id",   "text",      each(&inserts, |(_, x)| x.entry_id.as_str()))
     .col("session_id", "text",      each(&inserts, |(s, _)| s.session_id.as_str()))
     .col("track_id",   "text",      each(&inserts, |(_, x)| x.track_id.as_str()))
     .col("added_by",   "text",      each(&inserts, |(_, x)| x.added_by.as_str()))
     .col("added_at",   "timestamp", each(&inserts, |(_, x)| x.added_at.naive_utc()))
     .col("position",   "text",      each(&inserts, |(_, x)| x.position.as_str()))
     .col("votes",      "jsonb",     each(&inserts, |(_, x)| serde_json::json!(x.votes)))
     .col("round",      "int8",      each(&inserts, |(_, x)| x.round))
     .col("pinned_at",  "timestamp", each(&inserts, |(_, x)| x.pinned_at.map(|t| t.naive_utc())));
    Some(insert_selecting(
        Part::Inserts,
        "hub_queue_entry",
        &[("votes", r#"ARRAY(SELECT jsonb_array_elements_text(u."votes"))"#)],
        c,
        "",
    ))
}

/// `hub_queue_entry`: votes and pins of entries that existed before.
#[rustfmt::skip]
fn queue_marks<'q>(commits: &[&'q SessionCommit]) -> Option<Cte<'q>> {
    let marks = rows(commits, |w| &w.marks);
    if marks.is_empty() {
        return None;
    }
    let mut c = Columns::default();
    c.col("entry_id",  "text",      each(&marks, |(_, m)| m.entry_id.as_str()))
     .col("votes",     "jsonb",     each(&marks, |(_, m)| serde_json::json!(m.votes)))
     .col("pinned_at", "timestamp", each(&marks, |(_, m)| m.pinned_at.map(|t| t.naive_utc())));
    Some(Cte {
        part: Part::Marks,
        head: r#"UPDATE hub_queue_entry q SET votes = ARRAY(SELECT jsonb_array_elements_text(u."votes")), pinned_at = u."pinned_at" FROM "#.into(),
        cols: c,
        tail: r#"WHERE q.entry_id = u."entry_id""#,
    })
}

/// `hub_played`: entries that stopped playing.
#[rustfmt::skip]
fn played<'q>(commits: &[&'q SessionCommit]) -> Option<Cte<'q>> {
    let played = rows(commits, |w| &w.played);
    if played.is_empty() {
        return None;
    }
    let mut c = Columns::default();
    c.col("session_id", "text",      each(&played, |(s, _)| s.session_id.as_str()))
     .col("version",    "int8",      each(&played, |(_, p)| p.version))
     .col("entry_id",   "text",      each(&played, |(_, p)| p.entry_id.as_str()))
     .col("track_id",   "text",      each(&played, |(_, p)| p.track_id.as_str()))
     .col("added_by",   "text",      each(&played, |(_, p)| p.added_by.as_str()))
     .col("added_at",   "timestamp", each(&played, |(_, p)| p.added_at.naive_utc()))
     .col("started_at", "timestamp", each(&played, |(_, p)| p.started_at.naive_utc()))
     .col("ended_at",   "timestamp", each(&played, |(_, p)| p.ended_at.naive_utc()))
     .col("skipped",    "bool",      each(&played, |(_, p)| p.skipped));
    Some(insert(Part::Played, "hub_played", c, ""))
}

/// `"_GroupSessionToUser"` ("A" = session, "B" = user): members a host
/// removed.
fn member_removes<'q>(commits: &[&'q SessionCommit]) -> Option<Cte<'q>> {
    let removes = rows(commits, |w| &w.member_removes);
    if removes.is_empty() {
        return None;
    }
    let mut c = Columns::default();
    c.col("A", "text", each(&removes, |(s, _)| s.session_id.as_str()))
        .col("B", "text", each(&removes, |(_, u)| u.as_str()));
    Some(Cte {
        part: Part::MemberRemoves,
        head: r#"DELETE FROM "_GroupSessionToUser" m USING "#.into(),
        cols: c,
        tail: r#"WHERE m."A" = u."A" AND m."B" = u."B""#,
    })
}

/// `hub_queue_entry`: entries that existed before and moved.
fn queue_moves<'q>(commits: &[&'q SessionCommit]) -> Option<Cte<'q>> {
    let moves = rows(commits, |w| &w.moves);
    if moves.is_empty() {
        return None;
    }
    let mut c = Columns::default();
    c.col(
        "entry_id",
        "text",
        each(&moves, |(_, m)| m.entry_id.as_str()),
    )
    .col(
        "position",
        "text",
        each(&moves, |(_, m)| m.position.as_str()),
    );
    Some(Cte {
        part: Part::Moves,
        head: r#"UPDATE hub_queue_entry q SET position = u."position" FROM "#.into(),
        cols: c,
        tail: r#"WHERE q.entry_id = u."entry_id""#,
    })
}

/// `hub_queue_entry`: entries that existed before and are gone.
fn queue_deletes<'q>(commits: &[&'q SessionCommit]) -> Option<Cte<'q>> {
    let deletes = rows(commits, |w| &w.deletes);
    if deletes.is_empty() {
        return None;
    }
    let mut c = Columns::default();
    c.col("entry_id", "text", each(&deletes, |(_, d)| d.as_str()));
    Some(Cte {
        part: Part::Deletes,
        head: "DELETE FROM hub_queue_entry q USING ".into(),
        cols: c,
        tail: r#"WHERE q.entry_id = u."entry_id""#,
    })
}

/// `"_PlaylistToTrack"` rows ("A" = playlist, "B" = track) of `pick`.
fn playlist_tracks<'q>(
    commits: &[&'q SessionCommit],
    pick: fn(&BatchWrite) -> &[String],
) -> Option<Columns<'q>> {
    let pairs = rows(commits, pick);
    if pairs.is_empty() {
        return None;
    }
    let mut c = Columns::default();
    c.col("A", "text", each(&pairs, |(s, _)| s.playlist_id.as_str()))
        .col("B", "text", each(&pairs, |(_, t)| t.as_str()));
    Some(c)
}

/// `"_PlaylistToTrack"`: tracks now in the queue.
fn playlist_links<'q>(commits: &[&'q SessionCommit]) -> Option<Cte<'q>> {
    let c = playlist_tracks(commits, |w| &w.link_tracks)?;
    Some(insert(
        Part::Links,
        r#""_PlaylistToTrack""#,
        c,
        "ON CONFLICT DO NOTHING",
    ))
}

/// `"_PlaylistToTrack"`: tracks no longer in the queue.
fn playlist_unlinks<'q>(commits: &[&'q SessionCommit]) -> Option<Cte<'q>> {
    Some(Cte {
        part: Part::Unlinks,
        head: r#"DELETE FROM "_PlaylistToTrack" p USING "#.into(),
        cols: playlist_tracks(commits, |w| &w.unlink_tracks)?,
        tail: r#"WHERE p."A" = u."A" AND p."B" = u."B""#,
    })
}

/// `"TrackInteraction"`. The same reaction twice in one millisecond is
/// stored once (Prisma's unique key); ON CONFLICT keeps that from failing
/// the whole commit.
#[rustfmt::skip]
fn interactions<'q>(commits: &[&'q SessionCommit]) -> Option<Cte<'q>> {
    let reactions = rows(commits, |w| &w.interactions);
    if reactions.is_empty() {
        return None;
    }
    let mut c = Columns::default();
    c.col("id",           "text",      each(&reactions, |_| new_id()))
     .col("userId",       "text",      each(&reactions, |(_, x)| x.user_id.as_str()))
     .col("trackId",      "text",      each(&reactions, |(_, x)| x.track_id.as_str()))
     .col("type",         "text",      each(&reactions, |(_, x)| x.kind.as_str()))
     .col("timestamp",    "timestamp", each(&reactions, |(s, _)| s.at.naive_utc()))
     .col("hubSessionId", "text",      each(&reactions, |(s, _)| s.session_id.as_str()))
     .col("hubReq",       "text",      each(&reactions, |(_, x)| x.req.as_deref()))
     .col("hubVersion",   "int8",      each(&reactions, |(_, x)| x.version));
    Some(insert(Part::Reactions, r#""TrackInteraction""#, c, "ON CONFLICT DO NOTHING"))
}

/// `hub_session`: each session's version and commit counter (every commit).
fn session_counters<'q>(commits: &[&'q SessionCommit]) -> Cte<'q> {
    let mut c = Columns::default();
    c.col(
        "session_id",
        "text",
        each(commits, |s| s.session_id.as_str()),
    )
    .col("version", "int8", each(commits, |s| s.version))
    .col("commits", "int8", each(commits, |s| s.commits))
    .col("epoch", "int8", each(commits, |s| s.epoch))
    .col("party", "jsonb", each(commits, |s| s.write.party.clone()));
    Cte {
        part: Part::Sessions,
        head: r#"UPDATE hub_session h SET version = u."version", commits = u."commits", party = COALESCE(u."party", h.party) FROM "#
            .into(),
        cols: c,
        tail: r#"WHERE h.session_id = u."session_id" AND h.epoch = u."epoch""#,
    }
}

/// `"Playlist"` and `"GroupSession"` `updatedAt`, for the commits that
/// touch them.
fn activity<'q>(commits: &[&'q SessionCommit]) -> Vec<Cte<'q>> {
    let touched: Vec<&SessionCommit> = commits.iter().copied().filter(|c| c.touch).collect();
    if touched.is_empty() {
        return Vec::new();
    }
    let at: Vec<NaiveDateTime> = each(&touched, |c| c.at.naive_utc());
    let mut playlists = Columns::default();
    playlists
        .col("id", "text", each(&touched, |s| s.playlist_id.as_str()))
        .col("at", "timestamp", at.clone());
    let mut sessions = Columns::default();
    sessions
        .col("id", "text", each(&touched, |s| s.session_id.as_str()))
        .col("at", "timestamp", at);
    vec![
        Cte {
            part: Part::TouchPlaylists,
            head: r#"UPDATE "Playlist" p SET "updatedAt" = u."at" FROM "#.into(),
            cols: playlists,
            tail: r#"WHERE p."id" = u."id""#,
        },
        Cte {
            part: Part::TouchSessions,
            head: r#"UPDATE "GroupSession" s SET "updatedAt" = u."at" FROM "#.into(),
            cols: sessions,
            tail: r#"WHERE s."id" = u."id""#,
        },
    ]
}

/// The one statement made of `parts`, for `sessions` sessions. It fails
/// (SQLSTATE `HB409`, nothing written) unless every session's counters were
/// updated, i.e. unless each was committed under its current epoch.
fn statement<'q>(parts: Vec<Cte<'q>>, sessions: usize) -> QueryBuilder<'q, Postgres> {
    let mut qb = QueryBuilder::new("WITH\n");
    for (i, p) in parts.into_iter().enumerate() {
        if i > 0 {
            qb.push(",\n");
        }
        qb.push(format_args!("{} AS (\n    {}", part_name(p.part), p.head));
        p.cols.unnest(&mut qb);
        if !p.tail.is_empty() {
            qb.push(format_args!("\n    {}", p.tail));
        }
        qb.push("\n    RETURNING 1)");
    }
    qb.push("\nSELECT hub.fence((SELECT count(*) FROM hs), ");
    qb.push_bind(sessions as i64);
    qb.push(")");
    qb
}

fn part_name(p: Part) -> &'static str {
    match p {
        Part::Track => "t",
        Part::Changes => "pu",
        Part::Events => "he",
        Part::Inserts => "qi",
        Part::Moves => "qm",
        Part::Deletes => "qd",
        Part::Links => "pl",
        Part::Unlinks => "pd",
        Part::Reactions => "ti",
        Part::Marks => "qv",
        Part::Played => "hp",
        Part::MemberRemoves => "md",
        Part::Sessions => "hs",
        Part::TouchPlaylists => "up",
        Part::TouchSessions => "us",
    }
}

/// Write the commits of one or more sessions atomically, as one statement.
pub async fn write(db: &PgPool, commits: &[&SessionCommit]) -> Result<(), sqlx::Error> {
    if commits.is_empty() {
        return Ok(());
    }
    let mut qb = statement(parts(commits), commits.len());
    qb.build().execute(db).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(write: BatchWrite, touch: bool) -> SessionCommit {
        SessionCommit {
            session_id: "s1".into(),
            playlist_id: "p1".into(),
            version: 2,
            commits: 1,
            epoch: 1,
            at: DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
            touch,
            write,
        }
    }

    fn sql(commits: &[&SessionCommit]) -> String {
        statement(parts(commits), commits.len()).sql().to_owned()
    }

    #[test]
    fn a_statement_holds_exactly_the_parts_with_rows() {
        let mut write = BatchWrite::default();
        write.interactions.push(LoggedInteraction {
            user_id: "u".into(),
            track_id: "t".into(),
            kind: "like".into(),
            req: Some("r".into()),
            version: 2,
        });
        let c = commit(write, false);
        let sql = sql(&[&c]);
        assert!(sql.starts_with("WITH\nti AS ("), "{sql}");
        assert!(sql.contains("\nhs AS ("), "{sql}");
        for absent in [
            "t", "pu", "qi", "qm", "qd", "pl", "pd", "up", "us", "qv", "hp", "md",
        ] {
            assert!(
                !sql.contains(&format!("\n{absent} AS (")),
                "{absent} in {sql}"
            );
        }
        assert_eq!(sql.matches("\n    RETURNING 1)").count(), 2, "{sql}");
        assert!(
            sql.ends_with("\nSELECT hub.fence((SELECT count(*) FROM hs), $14)"),
            "{sql}"
        );
    }

    /// Each column's name sits beside its own placeholder: the n-th name of
    /// a part's column list is the n-th UNNEST argument's alias.
    #[test]
    fn names_and_placeholders_are_made_together() {
        let mut write = BatchWrite::default();
        write.moves.push(Moved {
            entry_id: "e".into(),
            position: "a1".into(),
        });
        write.deletes.push("d".into());
        write.link_tracks.push("t1".into());
        let c = commit(write, true);
        let sql = sql(&[&c]);
        assert!(
            sql.contains(r#"UNNEST($1::text[], $2::text[]) AS u("entry_id", "position")"#),
            "{sql}"
        );
        assert!(
            sql.contains(r#"UNNEST($3::text[]) AS u("entry_id")"#),
            "{sql}"
        );
        assert!(
            sql.contains(r#"INSERT INTO "_PlaylistToTrack" ("A", "B") SELECT u."A", u."B" FROM UNNEST($4::text[], $5::text[])"#),
            "{sql}"
        );
        assert!(
            sql.contains(r#"AS u("session_id", "version", "commits", "epoch", "party")"#),
            "{sql}"
        );
        assert_eq!(sql.matches(" AS (").count(), 6, "{sql}");
    }
}
