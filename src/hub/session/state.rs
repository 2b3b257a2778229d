//! A session's state and the rules every op obeys, with no async and no
//! I/O: who may do what, `baseVersion`, the queue model, version numbering
//! and the exactly-once memory. The actor hands each op here with the tracks
//! it looked up, gets an [`Effect`] (or a [`Refusal`]) back, persists it, and
//! on a failed commit calls [`SessionState::undo`] — so every rule is tested
//! here without Postgres.

use std::collections::HashMap;
use std::sync::Arc;

use audotics_protocol::model::{PlaylistRef, QueueEntry, SessionRef, Track, TrackMeta};
use audotics_protocol::{EntryId, Req, TrackId, UserId};
use chrono::{DateTime, Utc};

use crate::db::log::{ChangeOp, ChangeRecord};
use crate::db::sessions::MemberRow;
use crate::error::Error;
use crate::hub::queue::{Applied, Queue, QueueError};

/// A queue entry's payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub track: Arc<Track>,
    pub added_by: UserId,
    pub added_at: DateTime<Utc>,
}

/// Where a queued track comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum TrackRef {
    /// An existing Track.
    Id(TrackId),
    /// Metadata, upserted by Spotify id.
    Meta(TrackMeta),
}

/// A member's op, its ids already parsed at the edge.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Add {
        track: TrackRef,
        index: Option<usize>,
    },
    Remove {
        entry: EntryId,
    },
    Reorder {
        entry: EntryId,
        to_index: usize,
        base_version: Option<i64>,
    },
    Interaction {
        track: TrackId,
        kind: String,
    },
}

impl Op {
    /// The op's name (metrics label, logs).
    pub fn label(&self) -> &'static str {
        match self {
            Op::Add { .. } => "add",
            Op::Remove { .. } => "remove",
            Op::Reorder { .. } => "reorder",
            Op::Interaction { .. } => "interaction",
        }
    }

    /// Track ids this op names, to look up before applying.
    pub fn track_id(&self) -> Option<&TrackId> {
        match self {
            Op::Add {
                track: TrackRef::Id(id),
                ..
            }
            | Op::Interaction { track: id, .. } => Some(id),
            _ => None,
        }
    }
}

/// Why an op was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("baseVersion {base} is not the current version {current}")]
    Stale { base: i64, current: i64 },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the queue is full ({0} entries)")]
    Full(usize),
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        match r {
            Refusal::NotFound(what) => Error::NotFound(what),
            Refusal::Forbidden(why) => Error::Forbidden(why.to_owned()),
            r @ Refusal::Stale { .. } => Error::Conflict(r.to_string()),
            Refusal::Invalid { field, message } => Error::invalid(field, message),
            r @ Refusal::Full(_) => Error::TooLarge(r.to_string()),
        }
    }
}

/// Tracks a batch's ops name, looked up before applying it. Adds by
/// metadata record what they stored, so a later add of the same Spotify id
/// in the batch finds it.
#[derive(Default, Debug)]
pub struct Catalog {
    pub by_id: HashMap<String, Arc<Track>>,
    /// Stored tracks by Spotify id, then the batch's own metadata.
    pub by_spotify_id: HashMap<String, Arc<Track>>,
}

/// Makes the ids of new rows; random in the hub, a counter in tests.
pub trait Ids {
    fn entry(&mut self) -> EntryId;
    fn track(&mut self) -> TrackId;
}

/// Time-ordered UUIDs (v7), like the hub's other row ids.
pub struct NewIds;

impl Ids for NewIds {
    fn entry(&mut self) -> EntryId {
        EntryId::new()
    }

    fn track(&mut self) -> TrackId {
        TrackId::from_stored(crate::db::new_id())
    }
}

/// What an op applies with besides the state: its commit time, the tracks
/// looked up for its batch, and where new ids come from.
pub struct Ctx<'a> {
    pub at: DateTime<Utc>,
    pub catalog: &'a mut Catalog,
    pub ids: &'a mut dyn Ids,
}

/// A reaction as TrackInteraction records it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reaction {
    pub user: UserId,
    pub track: TrackId,
    pub kind: String,
    pub at: DateTime<Utc>,
}

/// What an applied op tells everyone once committed.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Change(ChangeRecord),
    Reaction(Reaction),
}

/// One applied (not yet committed) op.
#[derive(Debug)]
pub struct Effect {
    /// The session's version after the op (reactions leave it as it was).
    pub version: i64,
    pub event: Event,
    /// What the queue did: rows are written from it, `undo` reverts it.
    pub applied: Option<Applied<Item>>,
    /// A track given by metadata, to store: a new one, or a known one
    /// whose unknown fields it fills (see [`catalog_track`]).
    pub upsert: Option<Arc<Track>>,
}

/// One session: its identity, queue, members, version and exactly-once
/// memory.
#[derive(Debug)]
pub struct SessionState {
    pub session: SessionRef,
    pub playlist: PlaylistRef,
    version: i64,
    queue: Queue<Item>,
    members: Vec<MemberRow>,
    /// Committed reqs and the version their `ack` carried.
    answered: HashMap<(UserId, Req), i64>,
}

impl SessionState {
    pub fn new(
        session: SessionRef,
        playlist: PlaylistRef,
        version: i64,
        queue: Queue<Item>,
        members: Vec<MemberRow>,
        answered: HashMap<(UserId, Req), i64>,
    ) -> SessionState {
        SessionState {
            session,
            playlist,
            version,
            queue,
            members,
            answered,
        }
    }

    pub fn version(&self) -> i64 {
        self.version
    }

    pub fn queue(&self) -> &Queue<Item> {
        &self.queue
    }

    pub fn members(&self) -> &[MemberRow] {
        &self.members
    }

    pub fn is_host(&self, user: &UserId) -> bool {
        self.session.host_id == user.as_str()
    }

    pub fn is_member(&self, user: &UserId) -> bool {
        self.members.iter().any(|m| m.user_id == *user)
    }

    /// Record a new member (kept sorted by name, then id, as stored).
    pub fn add_member(&mut self, member: MemberRow) {
        if !self.is_member(&member.user_id) {
            self.members.push(member);
            self.members
                .sort_by(|a, b| (&a.name, &a.user_id).cmp(&(&b.name, &b.user_id)));
        }
    }

    /// The session ended: no more joins.
    pub fn end(&mut self) {
        self.session.active = false;
    }

    /// The version `req` of `user` was acked at, if it was committed.
    pub fn answered(&self, user: &UserId, req: &Req) -> Option<i64> {
        self.answered.get(&(user.clone(), req.clone())).copied()
    }

    /// Remember a committed req (exactly once across re-sends).
    pub fn remember(&mut self, user: UserId, req: Req, version: i64) {
        self.answered.insert((user, req), version);
    }

    /// The queue as snapshots show it.
    pub fn queue_entries(&self) -> Vec<QueueEntry> {
        self.queue
            .entries()
            .iter()
            .map(|e| QueueEntry {
                entry_id: e.id.to_string(),
                track: (*e.item.track).clone(),
                added_by: e.item.added_by.to_string(),
                added_at: e.item.added_at,
            })
            .collect()
    }

    /// A track the queue holds, if any entry has it.
    pub fn queued_track(&self, id: &str) -> Option<Arc<Track>> {
        self.queue
            .entries()
            .iter()
            .find(|e| e.item.track.id == id)
            .map(|e| e.item.track.clone())
    }

    /// Show entries' tracks as now stored (after a metadata upsert).
    pub fn refresh_tracks(&mut self, stored: &HashMap<String, Arc<Track>>) {
        for item in self.queue.items_mut() {
            if let Some(t) = stored.get(&item.track.id) {
                item.track = t.clone();
            }
        }
    }

    /// Apply `op` by `user` to the live state. On a refusal nothing
    /// changed; an effect stays applied until committed or undone (undo the
    /// effects of a batch in reverse order).
    pub fn apply(&mut self, op: &Op, user: &UserId, ctx: &mut Ctx<'_>) -> Result<Effect, Refusal> {
        match op {
            Op::Add { track, index } => self.add(track, *index, user, ctx),
            Op::Remove { entry } => self.remove(*entry, user, ctx),
            Op::Reorder {
                entry,
                to_index,
                base_version,
            } => self.reorder(*entry, *to_index, *base_version, user, ctx),
            Op::Interaction { track, kind } => self.react(track, kind, user, ctx),
        }
    }

    /// Revert an effect of the most recent ops not yet undone.
    pub fn undo(&mut self, effect: Effect) {
        if let Some(a) = effect.applied {
            self.queue.undo(a);
        }
        if let Event::Change(r) = effect.event {
            self.version = r.version - 1;
        }
    }

    fn add(
        &mut self,
        track: &TrackRef,
        index: Option<usize>,
        user: &UserId,
        ctx: &mut Ctx<'_>,
    ) -> Result<Effect, Refusal> {
        let (track, upsert) = match track {
            TrackRef::Meta(meta) => {
                let stored = ctx.catalog.by_spotify_id.get(&meta.spotify_id);
                let (t, changed) = catalog_track(meta, stored, ctx.ids);
                let t = Arc::new(t);
                ctx.catalog
                    .by_spotify_id
                    .insert(t.spotify_id.clone(), t.clone());
                (t.clone(), changed.then_some(t))
            }
            TrackRef::Id(id) => (self.track(id, ctx)?, None),
        };
        let entry = ctx.ids.entry();
        let item = Item {
            track: track.clone(),
            added_by: user.clone(),
            added_at: ctx.at,
        };
        let applied = self
            .queue
            .insert(entry.uuid(), index, item)
            .map_err(|e| queue_refusal(e, "index"))?;
        let Applied::Inserted { index, .. } = applied else {
            unreachable!("insert reports Inserted")
        };
        Ok(self.change(
            ChangeOp::Add {
                entry: entry.to_string(),
                track,
                index,
            },
            user,
            ctx,
            applied,
            upsert,
        ))
    }

    fn remove(&mut self, entry: EntryId, user: &UserId, ctx: &Ctx<'_>) -> Result<Effect, Refusal> {
        let (_, e) = self
            .queue
            .get(entry.uuid())
            .ok_or(Refusal::NotFound("entry"))?;
        if !self.is_host(user) && e.item.added_by != *user {
            return Err(Refusal::Forbidden(
                "only the host or the member who added it may remove an entry",
            ));
        }
        let applied = self
            .queue
            .remove(entry.uuid())
            .map_err(|e| queue_refusal(e, "index"))?;
        let Applied::Removed { index, entry: e } = &applied else {
            unreachable!("remove reports Removed")
        };
        let op = ChangeOp::Remove {
            entry: entry.to_string(),
            track: TrackId::from_stored(e.item.track.id.clone()),
            index: *index,
        };
        Ok(self.change(op, user, ctx, applied, None))
    }

    fn reorder(
        &mut self,
        entry: EntryId,
        to_index: usize,
        base_version: Option<i64>,
        user: &UserId,
        ctx: &Ctx<'_>,
    ) -> Result<Effect, Refusal> {
        if !self.is_host(user) {
            return Err(Refusal::Forbidden("only the host may reorder the queue"));
        }
        if let Some(base) = base_version {
            if base != self.version {
                return Err(Refusal::Stale {
                    base,
                    current: self.version,
                });
            }
        }
        let applied = self
            .queue
            .move_to(entry.uuid(), to_index)
            .map_err(|e| queue_refusal(e, "toIndex"))?;
        let Applied::Moved { from, to, .. } = applied else {
            unreachable!("move reports Moved")
        };
        let track = self
            .queue
            .get(entry.uuid())
            .map(|(_, e)| e.item.track.id.clone())
            .expect("a moved entry is queued");
        let op = ChangeOp::Reorder {
            entry: entry.to_string(),
            track: TrackId::from_stored(track),
            from,
            to,
        };
        Ok(self.change(op, user, ctx, applied, None))
    }

    fn react(
        &mut self,
        track: &TrackId,
        kind: &str,
        user: &UserId,
        ctx: &mut Ctx<'_>,
    ) -> Result<Effect, Refusal> {
        self.track(track, ctx)?;
        Ok(Effect {
            version: self.version,
            event: Event::Reaction(Reaction {
                user: user.clone(),
                track: track.clone(),
                kind: kind.to_owned(),
                at: ctx.at,
            }),
            applied: None,
            upsert: None,
        })
    }

    /// A queue change takes the next version.
    fn change(
        &mut self,
        op: ChangeOp,
        user: &UserId,
        ctx: &Ctx<'_>,
        applied: Applied<Item>,
        upsert: Option<Arc<Track>>,
    ) -> Effect {
        self.version += 1;
        Effect {
            version: self.version,
            event: Event::Change(ChangeRecord {
                version: self.version,
                at: ctx.at,
                by: user.clone(),
                op,
            }),
            applied: Some(applied),
            upsert,
        }
    }

    /// A track by id: queued already, or looked up for the batch.
    fn track(&self, id: &TrackId, ctx: &Ctx<'_>) -> Result<Arc<Track>, Refusal> {
        self.queued_track(id.as_str())
            .or_else(|| ctx.catalog.by_id.get(id.as_str()).cloned())
            .ok_or(Refusal::NotFound("track"))
    }
}

/// The track an `add` by metadata queues, and whether it must be stored.
/// The catalog is shared by every session and by the old app's
/// recommendations, so a track it already has keeps every field it knows
/// (name, album, artists, popularity): a guest's metadata only fills what is
/// unknown — no artists, popularity 0. A new Spotify id is stored as given.
pub fn catalog_track(
    meta: &TrackMeta,
    stored: Option<&Arc<Track>>,
    ids: &mut dyn Ids,
) -> (Track, bool) {
    let Some(stored) = stored else {
        let t = Track {
            id: ids.track().into_string(),
            spotify_id: meta.spotify_id.clone(),
            name: meta.name.clone(),
            artists: meta.artists.clone(),
            album: meta.album.clone(),
            popularity: meta.popularity.unwrap_or(0),
        };
        return (t, true);
    };
    let mut t = (**stored).clone();
    let mut filled = false;
    if t.artists.is_empty() && !meta.artists.is_empty() {
        t.artists = meta.artists.clone();
        filled = true;
    }
    if let Some(p) = meta.popularity.filter(|p| *p > 0 && t.popularity == 0) {
        t.popularity = p;
        filled = true;
    }
    (t, filled)
}

/// A queue error as the client sees it; `field` names the index argument.
fn queue_refusal(e: QueueError, field: &'static str) -> Refusal {
    match e {
        QueueError::IndexOutOfRange { index, len } if field == "toIndex" => Refusal::Invalid {
            field,
            message: format!("toIndex {index} is outside 0..{}", len.saturating_sub(1)),
        },
        QueueError::IndexOutOfRange { index, len } => Refusal::Invalid {
            field,
            message: format!("index {index} is outside the queue of {len} entries"),
        },
        QueueError::NotFound(_) => Refusal::NotFound("entry"),
        QueueError::Full { cap } => Refusal::Full(cap),
        // Ids are fresh and keys are made by the queue itself.
        QueueError::DuplicateEntry(_) | QueueError::BadPosition(_) => {
            unreachable!("queue invariant broken: {e}")
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Ids from a counter, so runs are reproducible.
    pub(crate) struct SeqIds(u128);

    impl Ids for SeqIds {
        fn entry(&mut self) -> EntryId {
            self.0 += 1;
            EntryId::from(uuid::Uuid::from_u128(self.0))
        }
        fn track(&mut self) -> TrackId {
            self.0 += 1;
            TrackId::from_stored(format!("new-track-{}", self.0))
        }
    }

    fn user(s: &str) -> UserId {
        UserId::from_stored(s.to_owned())
    }

    fn track(id: &str) -> Arc<Track> {
        Arc::new(Track {
            id: id.into(),
            spotify_id: format!("sp-{id}"),
            name: format!("Song {id}"),
            artists: vec!["Artist".into()],
            album: "Album".into(),
            popularity: 10,
        })
    }

    fn member(id: &str) -> MemberRow {
        MemberRow {
            user_id: user(id),
            name: id.to_owned(),
            avatar: None,
        }
    }

    pub(crate) fn state(cap: usize) -> SessionState {
        SessionState::new(
            SessionRef {
                id: "s".into(),
                name: "Party".into(),
                active: true,
                host_id: "host".into(),
            },
            PlaylistRef {
                id: "p".into(),
                name: "Party".into(),
                description: None,
                spotify_id: None,
            },
            0,
            Queue::new(cap),
            vec![member("host"), member("ann"), member("ben")],
            HashMap::new(),
        )
    }

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        for id in ["t0", "t1", "t2", "t3"] {
            c.by_id.insert(id.into(), track(id));
        }
        c
    }

    /// A state with its batch's catalog and ids.
    pub(crate) struct Fixture {
        pub state: SessionState,
        pub catalog: Catalog,
        pub ids: SeqIds,
    }

    impl Fixture {
        pub(crate) fn new(state: SessionState) -> Fixture {
            Fixture {
                state,
                catalog: catalog(),
                ids: SeqIds(0),
            }
        }
    }

    pub(crate) fn apply_to(f: &mut Fixture, who: &str, op: Op) -> Result<Effect, Refusal> {
        apply(&mut f.state, &mut f.catalog, &mut f.ids, who, op)
    }

    pub(crate) fn reorder_op(entry: EntryId, to_index: usize) -> Op {
        Op::Reorder {
            entry,
            to_index,
            base_version: None,
        }
    }

    /// Apply with a fresh context; returns the effect or refusal.
    fn apply(
        st: &mut SessionState,
        cat: &mut Catalog,
        ids: &mut SeqIds,
        who: &str,
        op: Op,
    ) -> Result<Effect, Refusal> {
        let mut ctx = Ctx {
            at: DateTime::from_timestamp_millis(1_000).unwrap(),
            catalog: cat,
            ids,
        };
        st.apply(&op, &user(who), &mut ctx)
    }

    pub(crate) fn add_op(t: &str) -> Op {
        Op::Add {
            track: TrackRef::Id(TrackId::from_stored(t.into())),
            index: None,
        }
    }

    pub(crate) fn entry_of(e: &Effect) -> EntryId {
        match &e.event {
            Event::Change(r) => EntryId::parse(r.entry()).unwrap(),
            Event::Reaction(_) => panic!("no entry"),
        }
    }

    #[test]
    fn changes_take_consecutive_versions_and_reactions_none() {
        let (mut st, mut cat, mut ids) = (state(10), catalog(), SeqIds(0));
        let a = apply(&mut st, &mut cat, &mut ids, "ann", add_op("t1")).unwrap();
        assert_eq!(a.version, 1);
        let r = apply(
            &mut st,
            &mut cat,
            &mut ids,
            "ben",
            Op::Interaction {
                track: TrackId::from_stored("t2".into()),
                kind: "like".into(),
            },
        )
        .unwrap();
        assert_eq!(r.version, 1);
        assert!(matches!(r.event, Event::Reaction(_)));
        let b = apply(&mut st, &mut cat, &mut ids, "ben", add_op("t2")).unwrap();
        assert_eq!((b.version, st.version()), (2, 2));
    }

    #[test]
    fn only_the_host_reorders() {
        let (mut st, mut cat, mut ids) = (state(10), catalog(), SeqIds(0));
        let a = apply(&mut st, &mut cat, &mut ids, "ann", add_op("t1")).unwrap();
        apply(&mut st, &mut cat, &mut ids, "ann", add_op("t2")).unwrap();
        let mv = Op::Reorder {
            entry: entry_of(&a),
            to_index: 1,
            base_version: None,
        };
        assert_eq!(
            apply(&mut st, &mut cat, &mut ids, "ann", mv.clone()).unwrap_err(),
            Refusal::Forbidden("only the host may reorder the queue")
        );
        assert_eq!(st.version(), 2);
        let done = apply(&mut st, &mut cat, &mut ids, "host", mv).unwrap();
        assert!(matches!(
            done.event,
            Event::Change(ChangeRecord {
                op: ChangeOp::Reorder { from: 0, to: 1, .. },
                ..
            })
        ));
    }

    #[test]
    fn the_host_or_the_adder_removes() {
        let (mut st, mut cat, mut ids) = (state(10), catalog(), SeqIds(0));
        let a = apply(&mut st, &mut cat, &mut ids, "ann", add_op("t1")).unwrap();
        let b = apply(&mut st, &mut cat, &mut ids, "ann", add_op("t2")).unwrap();
        let remove = |e: &Effect| Op::Remove { entry: entry_of(e) };
        assert!(matches!(
            apply(&mut st, &mut cat, &mut ids, "ben", remove(&a)),
            Err(Refusal::Forbidden(_))
        ));
        apply(&mut st, &mut cat, &mut ids, "ann", remove(&a)).unwrap();
        apply(&mut st, &mut cat, &mut ids, "host", remove(&b)).unwrap();
        assert!(st.queue().is_empty());
        assert_eq!(
            apply(&mut st, &mut cat, &mut ids, "host", remove(&b)).unwrap_err(),
            Refusal::NotFound("entry")
        );
    }

    #[test]
    fn a_stale_base_version_is_a_conflict_and_changes_nothing() {
        let (mut st, mut cat, mut ids) = (state(10), catalog(), SeqIds(0));
        let a = apply(&mut st, &mut cat, &mut ids, "host", add_op("t1")).unwrap();
        apply(&mut st, &mut cat, &mut ids, "host", add_op("t2")).unwrap();
        let before = st.queue_entries();
        let stale = Op::Reorder {
            entry: entry_of(&a),
            to_index: 1,
            base_version: Some(1),
        };
        assert_eq!(
            apply(&mut st, &mut cat, &mut ids, "host", stale).unwrap_err(),
            Refusal::Stale {
                base: 1,
                current: 2
            }
        );
        assert_eq!(st.queue_entries(), before);
        assert_eq!(
            Error::from(Refusal::Stale {
                base: 1,
                current: 2
            })
            .to_string(),
            "baseVersion 1 is not the current version 2"
        );
    }

    #[test]
    fn unknown_tracks_and_bad_indices_are_refused_with_the_field() {
        let (mut st, mut cat, mut ids) = (state(2), catalog(), SeqIds(0));
        assert_eq!(
            apply(&mut st, &mut cat, &mut ids, "ann", add_op("nope")).unwrap_err(),
            Refusal::NotFound("track")
        );
        let far = Op::Add {
            track: TrackRef::Id(TrackId::from_stored("t1".into())),
            index: Some(7),
        };
        assert_eq!(
            Error::from(apply(&mut st, &mut cat, &mut ids, "ann", far).unwrap_err()).to_string(),
            "index: index 7 is outside the queue of 0 entries"
        );
        apply(&mut st, &mut cat, &mut ids, "ann", add_op("t1")).unwrap();
        apply(&mut st, &mut cat, &mut ids, "ann", add_op("t1")).unwrap();
        assert_eq!(
            apply(&mut st, &mut cat, &mut ids, "ann", add_op("t1")).unwrap_err(),
            Refusal::Full(2)
        );
        assert_eq!(st.version(), 2);
    }

    #[test]
    fn metadata_never_changes_what_the_catalog_knows_and_fills_what_it_lacks() {
        let mut ids = SeqIds(0);
        let meta = TrackMeta {
            spotify_id: "sp-t1".into(),
            name: "Renamed".into(),
            artists: vec!["Someone else".into()],
            album: "Other".into(),
            popularity: Some(99),
        };
        let (kept, write) = catalog_track(&meta, Some(&track("t1")), &mut ids);
        assert_eq!(kept, *track("t1"));
        assert!(!write, "nothing to store");
        let mut bare = (*track("t1")).clone();
        bare.artists.clear();
        bare.popularity = 0;
        let (filled, write) = catalog_track(&meta, Some(&Arc::new(bare)), &mut ids);
        assert!(write);
        assert_eq!(
            (filled.name.as_str(), filled.album.as_str()),
            ("Song t1", "Album")
        );
        assert_eq!(
            (filled.artists.clone(), filled.popularity),
            (vec!["Someone else".to_owned()], 99)
        );
        let (new, write) = catalog_track(&meta, None, &mut ids);
        assert!(write);
        assert_eq!((new.name.as_str(), new.popularity), ("Renamed", 99));
    }

    #[test]
    fn metadata_adds_reuse_the_stored_id_and_share_it_within_a_batch() {
        let (mut st, mut cat, mut ids) = (state(10), catalog(), SeqIds(0));
        cat.by_spotify_id.insert("sp-t1".into(), track("t1"));
        let meta = |sp: &str, name: &str| Op::Add {
            track: TrackRef::Meta(TrackMeta {
                spotify_id: sp.into(),
                name: name.into(),
                artists: vec!["X".into()],
                album: "Y".into(),
                popularity: None,
            }),
            index: None,
        };
        let known = apply(&mut st, &mut cat, &mut ids, "ann", meta("sp-t1", "Renamed")).unwrap();
        assert!(known.upsert.is_none(), "a known track is not rewritten");
        let Event::Change(ChangeRecord {
            op: ChangeOp::Add { track, .. },
            ..
        }) = &known.event
        else {
            panic!("an add")
        };
        assert_eq!((track.id.as_str(), track.name.as_str()), ("t1", "Song t1"));
        let new1 = apply(&mut st, &mut cat, &mut ids, "ann", meta("sp-new", "New")).unwrap();
        let new2 = apply(&mut st, &mut cat, &mut ids, "ben", meta("sp-new", "New")).unwrap();
        let queued = |e: &Effect| match &e.event {
            Event::Change(ChangeRecord {
                op: ChangeOp::Add { track, .. },
                ..
            }) => track.id.clone(),
            _ => panic!("an add"),
        };
        assert_eq!(queued(&new1), queued(&new2));
        assert!(
            new1.upsert.is_some() && new2.upsert.is_none(),
            "stored once"
        );
    }

    #[test]
    fn answered_reqs_are_remembered_per_user() {
        let mut st = state(10);
        let req = Req::parse("r1").unwrap();
        assert_eq!(st.answered(&user("ann"), &req), None);
        st.remember(user("ann"), req.clone(), 4);
        assert_eq!(st.answered(&user("ann"), &req), Some(4));
        assert_eq!(st.answered(&user("ben"), &req), None);
    }

    /// Ops by the host and two members, in any order.
    fn any_op() -> impl Strategy<Value = (usize, u8, usize, usize, Option<i64>)> {
        (
            0..3usize,
            0..4u8,
            0..8usize,
            0..8usize,
            proptest::option::of(0..12i64),
        )
    }

    proptest! {
        /// Whatever a batch applies, undoing its effects in reverse order
        /// restores the queue and the version exactly; and every refusal
        /// left the state as it was.
        #[test]
        fn undo_restores_everything_and_refusals_change_nothing(
            seed in proptest::collection::vec(any_op(), 0..12),
            batch in proptest::collection::vec(any_op(), 1..20),
        ) {
            let (mut st, mut cat, mut ids) = (state(6), catalog(), SeqIds(0));
            let who = ["host", "ann", "ben"];
            let op_for = |st: &SessionState, (w, kind, a, b, base): (usize, u8, usize, usize, Option<i64>)| {
                let entries = st.queue().entries();
                let pick = |i: usize| entries.get(i % entries.len().max(1)).map(|e| EntryId::from(e.id)).unwrap_or_default();
                let op = match kind {
                    0 => Op::Add { track: TrackRef::Id(TrackId::from_stored(format!("t{}", a % 4))), index: Some(b) },
                    1 => Op::Remove { entry: pick(a) },
                    2 => Op::Reorder { entry: pick(a), to_index: b, base_version: base },
                    _ => Op::Interaction { track: TrackId::from_stored(format!("t{}", a % 5)), kind: "like".into() },
                };
                (who[w], op)
            };
            for s in seed {
                let (w, op) = op_for(&st, s);
                let _ = apply(&mut st, &mut cat, &mut ids, w, op);
            }
            let (queue, version) = (st.queue_entries(), st.version());
            let mut effects = Vec::new();
            for s in batch {
                let (w, op) = op_for(&st, s);
                let before = (st.queue_entries(), st.version());
                match apply(&mut st, &mut cat, &mut ids, w, op) {
                    Ok(e) => {
                        if let Event::Change(r) = &e.event {
                            prop_assert_eq!(r.version, before.1 + 1);
                        }
                        effects.push(e);
                    }
                    Err(_) => prop_assert_eq!((st.queue_entries(), st.version()), before),
                }
            }
            while let Some(e) = effects.pop() {
                st.undo(e);
            }
            prop_assert_eq!(st.queue_entries(), queue);
            prop_assert_eq!(st.version(), version);
        }

        /// Only the host's reorders apply; a member's never does.
        #[test]
        fn members_never_reorder(ops in proptest::collection::vec((1..3usize, 0..8usize, 0..8usize), 1..20)) {
            let (mut st, mut cat, mut ids) = (state(10), catalog(), SeqIds(0));
            for t in ["t0", "t1", "t2"] {
                apply(&mut st, &mut cat, &mut ids, "ann", add_op(t)).unwrap();
            }
            let before = st.queue_entries();
            for (w, a, b) in ops {
                let entry = EntryId::from(st.queue().entries()[a % 3].id);
                let r = apply(&mut st, &mut cat, &mut ids, ["host", "ann", "ben"][w], Op::Reorder { entry, to_index: b, base_version: None });
                prop_assert!(matches!(r, Err(Refusal::Forbidden(_))));
            }
            prop_assert_eq!(st.queue_entries(), before);
        }
    }
}
