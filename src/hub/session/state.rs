//! A session's state and the rules every op obeys, with no async and no
//! I/O: who may do what, `baseVersion`, the queue model, version numbering
//! and the exactly-once memory. The actor hands each op here with the tracks
//! it looked up, gets an [`Effect`] (or a [`Refusal`]) back, persists it, and
//! on a failed commit calls [`SessionState::undo`] — so every rule is tested
//! here without Postgres.

use std::collections::HashMap;
use std::sync::Arc;

use audotics_protocol::model::{PlaylistRef, QueueEntry, Role, SessionRef, Track, TrackMeta};
use audotics_protocol::party::OrderMode;
use audotics_protocol::{EntryId, Req, TrackId, UserId};
use chrono::{DateTime, Utc};

use crate::db::log::{ChangeOp, ChangeRecord};
use crate::db::sessions::MemberRow;
use crate::error::Error;
use crate::hub::queue::{Applied, Queue, QueueError};
pub use crate::hub::session::party::{Advance, SettingsChange};

/// A queue entry's payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub track: Arc<Track>,
    pub added_by: UserId,
    pub added_at: DateTime<Utc>,
    /// Members who voted it up (sorted).
    pub votes: Vec<UserId>,
    /// Its round in the fair order (see `party`).
    pub round: i64,
    /// When a host pinned it to play next.
    pub pinned_at: Option<DateTime<Utc>>,
}

impl Item {
    pub fn new(track: Arc<Track>, added_by: UserId, added_at: DateTime<Utc>) -> Item {
        Item {
            track,
            added_by,
            added_at,
            votes: Vec::new(),
            round: 0,
            pinned_at: None,
        }
    }
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
    /// Outside only: `member` joined (`present`) or left the session.
    Member {
        member: MemberRow,
        present: bool,
    },
    /// Play `entry` now, or resume, or start the queue.
    Play {
        entry: Option<EntryId>,
    },
    Pause,
    Seek {
        position_ms: i64,
    },
    /// Skip to the head of the queue.
    Next,
    Vote {
        entry: EntryId,
        up: bool,
    },
    SkipVote {
        up: bool,
    },
    Pin {
        entry: EntryId,
    },
    Settings(SettingsChange),
    Role {
        user: UserId,
        role: Role,
    },
    Kick {
        user: UserId,
        ban: bool,
    },
    Unban {
        user: UserId,
    },
    /// The hub's own: what plays ended (at `at`, when known), or the room
    /// voted to skip it; the head of the queue plays next.
    Advance {
        reason: Advance,
        at: Option<DateTime<Utc>>,
    },
}

/// Who makes an op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A member, through the hub: the rules apply.
    Member(UserId),
    /// The database's other writer (the old app), whose changes the hub
    /// reflects as they are: no rule refuses what already happened.
    Outside,
    /// The session itself: a track's end, the room's skip votes.
    Hub,
}

impl Op {
    /// The op's name (metrics label, logs).
    pub fn label(&self) -> &'static str {
        match self {
            Op::Add { .. } => "add",
            Op::Remove { .. } => "remove",
            Op::Reorder { .. } => "reorder",
            Op::Interaction { .. } => "interaction",
            Op::Member { .. } => "member",
            Op::Play { .. } => "play",
            Op::Pause => "pause",
            Op::Seek { .. } => "seek",
            Op::Next => "next",
            Op::Vote { .. } => "vote",
            Op::SkipVote { .. } => "skip_vote",
            Op::Pin { .. } => "pin",
            Op::Settings(_) => "settings",
            Op::Role { .. } => "role",
            Op::Kick { .. } => "kick",
            Op::Unban { .. } => "unban",
            Op::Advance { .. } => "advance",
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
    #[error("the queue's order changed since baseVersion {base} (now version {current})")]
    Stale { base: i64, current: i64 },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the queue is full ({0} entries)")]
    Full(usize),
    #[error("{0}")]
    Conflict(&'static str),
    /// Over a limit the host set.
    #[error("{0}")]
    Limit(String),
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        match r {
            Refusal::NotFound(what) => Error::NotFound(what),
            Refusal::Forbidden(why) => Error::Forbidden(why.to_owned()),
            r @ Refusal::Stale { .. } => Error::Conflict(r.to_string()),
            Refusal::Invalid { field, message } => Error::invalid(field, message),
            r @ Refusal::Full(_) => Error::TooLarge(r.to_string()),
            Refusal::Conflict(why) => Error::Conflict(why.to_owned()),
            Refusal::Limit(why) => Error::TooLarge(why),
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
    /// What it changed in the state, to write rows from and to undo.
    pub undo: Undo,
    /// A track given by metadata, to store: a new one, or a known one
    /// whose unknown fields it fills (see [`catalog_track`]).
    pub upsert: Option<Arc<Track>>,
    /// What a party op also writes and causes.
    pub side: Side,
}

/// What a party op writes besides its change, and what the actor does
/// after it commits.
#[derive(Debug, Default)]
pub struct Side {
    /// TrackInteraction rows it makes (`play` when a track starts, `skip`
    /// when one is cut short).
    pub reactions: Vec<Reaction>,
    /// An entry that stopped playing (a `hub_played` row).
    pub played: Option<crate::hub::session::party::PlayedEntry>,
    /// The party's state changed (write it).
    pub party: bool,
    /// Queue entries whose votes or pin changed (write them).
    pub items: Vec<uuid::Uuid>,
    /// A member a host removed (and whether banned): their membership row
    /// goes, and their connections close.
    pub kicked: Option<(UserId, bool)>,
}

/// What an effect changed besides the version.
#[derive(Debug)]
pub enum Undo {
    Nothing,
    /// What the queue did.
    Queue(Applied<Item>),
    /// A member was added (undo: forget them).
    Joined(UserId),
    /// A member was removed (undo: put them back).
    Left(MemberRow),
    /// A party op: everything it may have changed.
    Party(Box<crate::hub::session::party::PartyUndo>),
}

impl Effect {
    /// What the queue did, if anything.
    pub fn queue(&self) -> &[Applied<Item>] {
        match &self.undo {
            Undo::Queue(a) => std::slice::from_ref(a),
            Undo::Party(p) => &p.queue,
            _ => &[],
        }
    }
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
    /// The latest change's time: each change is stamped after it, so the
    /// log's timestamps strictly increase within the session (the old app
    /// orders a playlist's updates by them).
    last_at: DateTime<Utc>,
    /// Playback, settings, roles, bans (see `party`).
    pub party: crate::hub::session::party::Party,
    /// Every track this session played: it stays in the playlist.
    pub(crate) played_tracks: std::collections::HashSet<String>,
    /// The last version that changed the queue's order other than by
    /// appending: a `reorder` based on a version since is rebased.
    pub(crate) order_changed_at: i64,
}

impl SessionState {
    pub fn new(
        session: SessionRef,
        playlist: PlaylistRef,
        version: i64,
        queue: Queue<Item>,
        members: Vec<MemberRow>,
        answered: HashMap<(UserId, Req), i64>,
        last_at: DateTime<Utc>,
    ) -> SessionState {
        SessionState {
            session,
            playlist,
            version,
            queue,
            members,
            answered,
            last_at,
            party: Default::default(),
            played_tracks: Default::default(),
            order_changed_at: version,
        }
    }

    /// The party's stored state, and the tracks it played.
    pub fn with_party(
        mut self,
        party: crate::hub::session::party::Party,
        played: std::collections::HashSet<String>,
    ) -> SessionState {
        self.party = party;
        self.played_tracks = played;
        self
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

    /// The host or a co-host.
    pub fn manages(&self, user: &UserId) -> bool {
        self.is_host(user) || self.party.cohosts.contains(user)
    }

    /// Whether the playlist holds `track` for a reason besides the queue:
    /// it is playing or was played (the playlist is what the party played
    /// and will play).
    pub fn holds_track(&self, track: &str) -> bool {
        self.queued_track(track).is_some()
            || self.played_tracks.contains(track)
            || self
                .party
                .now
                .as_ref()
                .is_some_and(|n| n.item.track.id == track)
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
                votes: e.item.votes.iter().map(UserId::to_string).collect(),
                pinned: e.item.pinned_at.is_some(),
            })
            .collect()
    }

    /// A track the queue (or what plays) holds, if any entry has it.
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
        if let Some(now) = &mut self.party.now {
            if let Some(t) = stored.get(&now.item.track.id) {
                now.item.track = t.clone();
            }
        }
    }

    pub(crate) fn queue_mut(&mut self) -> &mut Queue<Item> {
        &mut self.queue
    }

    pub(crate) fn members_mut(&mut self) -> &mut Vec<MemberRow> {
        &mut self.members
    }

    /// Apply `op` by `user` to the live state. On a refusal nothing
    /// changed; an effect stays applied until committed or undone (undo the
    /// effects of a batch in reverse order).
    pub fn apply(&mut self, op: &Op, who: &Actor, ctx: &mut Ctx<'_>) -> Result<Effect, Refusal> {
        match (op, who) {
            (Op::Add { track, index }, _) => self.add(track, *index, who, ctx),
            (Op::Remove { entry }, _) => self.remove(*entry, who, ctx),
            (
                Op::Reorder {
                    entry,
                    to_index,
                    base_version,
                },
                _,
            ) => self.reorder(*entry, *to_index, *base_version, who, ctx),
            (Op::Interaction { track, kind }, Actor::Member(user)) => {
                self.react(track, kind, user, ctx)
            }
            (Op::Member { member, present }, Actor::Outside) => {
                self.membership(member, *present, ctx)
            }
            (Op::Advance { reason, at }, Actor::Hub) => self.advance(*reason, *at, ctx),
            (Op::Interaction { .. } | Op::Member { .. } | Op::Advance { .. }, _) => {
                Err(Refusal::Forbidden("not an op this author can make"))
            }
            (op, Actor::Member(user)) => self.party_op(op, user, ctx),
            (_, Actor::Outside | Actor::Hub) => {
                Err(Refusal::Forbidden("not an op this author can make"))
            }
        }
    }

    /// Revert an effect of the most recent ops not yet undone.
    pub fn undo(&mut self, effect: Effect) {
        match effect.undo {
            Undo::Nothing => {}
            Undo::Queue(a) => self.queue.undo(a),
            Undo::Joined(user) => self.members.retain(|m| m.user_id != user),
            Undo::Left(member) => self.add_member(member),
            Undo::Party(p) => self.undo_party(*p),
        }
        if let Event::Change(r) = effect.event {
            self.version = r.version - 1;
        }
    }

    /// The ops that make this session agree with what the database says
    /// outside the hub: `linked`, the playlist's tracks (`_PlaylistToTrack`,
    /// in the order to queue new ones), and `members`. A linked track the
    /// queue lacks is queued at the end; a queued entry whose track was
    /// unlinked is removed; members are added and removed to match. Made by
    /// [`Actor::Outside`].
    pub fn reconcile(&self, linked: &[TrackId], members: &[MemberRow]) -> Vec<Op> {
        let queued: std::collections::HashSet<&str> = self
            .queue
            .entries()
            .iter()
            .map(|e| e.item.track.id.as_str())
            .collect();
        let links: std::collections::HashSet<&str> = linked.iter().map(TrackId::as_str).collect();
        let mut ops = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for t in linked {
            // A track that plays or was played is linked for that.
            let held = queued.contains(t.as_str()) || self.holds_track(t.as_str());
            if !held && seen.insert(t.as_str()) {
                ops.push(Op::Add {
                    track: TrackRef::Id(t.clone()),
                    index: None,
                });
            }
        }
        for e in self.queue.entries() {
            if !links.contains(e.item.track.id.as_str()) {
                ops.push(Op::Remove {
                    entry: EntryId::from(e.id),
                });
            }
        }
        for m in members {
            if !self.is_member(&m.user_id) {
                ops.push(Op::Member {
                    member: m.clone(),
                    present: true,
                });
            }
        }
        for m in &self.members {
            if !members.iter().any(|x| x.user_id == m.user_id) {
                ops.push(Op::Member {
                    member: m.clone(),
                    present: false,
                });
            }
        }
        ops
    }

    fn add(
        &mut self,
        track: &TrackRef,
        index: Option<usize>,
        who: &Actor,
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
        if let Actor::Member(user) = who {
            self.may_add(user)?;
        }
        let entry = ctx.ids.entry();
        // The queue row needs a user: a track linked outside the hub counts
        // as the host's (the playlist is theirs).
        let added_by = match who {
            Actor::Member(user) => user.clone(),
            Actor::Outside | Actor::Hub => UserId::from_stored(self.session.host_id.clone()),
        };
        let mut item = Item::new(track.clone(), added_by, ctx.at);
        item.round = self.next_round(&item.added_by);
        // In a computed order the hub decides where it goes.
        let index = match self.party.settings.order {
            OrderMode::Host => index,
            _ => {
                if let Some(i) = index.filter(|i| *i > self.queue.len()) {
                    return Err(queue_refusal(
                        QueueError::IndexOutOfRange {
                            index: i,
                            len: self.queue.len(),
                        },
                        "index",
                    ));
                }
                Some(self.computed_index(&item, entry.uuid()))
            }
        };
        let appended = index.is_none_or(|i| i == self.queue.len());
        let applied = self
            .queue
            .insert(entry.uuid(), index, item)
            .map_err(|e| queue_refusal(e, "index"))?;
        let Applied::Inserted { index, .. } = applied else {
            unreachable!("insert reports Inserted")
        };
        if !appended {
            self.order_changed_at = self.version + 1;
        }
        Ok(self.change(
            ChangeOp::Add {
                entry: entry.to_string(),
                track,
                index,
            },
            who,
            ctx,
            Undo::Queue(applied),
            upsert,
        ))
    }

    fn remove(&mut self, entry: EntryId, who: &Actor, ctx: &Ctx<'_>) -> Result<Effect, Refusal> {
        let (_, e) = self
            .queue
            .get(entry.uuid())
            .ok_or(Refusal::NotFound("entry"))?;
        if !self.may_remove(who, &e.item) {
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
        self.order_changed_at = self.version + 1;
        Ok(self.change(op, who, ctx, Undo::Queue(applied), None))
    }

    fn reorder(
        &mut self,
        entry: EntryId,
        to_index: usize,
        base_version: Option<i64>,
        who: &Actor,
        ctx: &Ctx<'_>,
    ) -> Result<Effect, Refusal> {
        if !self.may_reorder(who) {
            return Err(Refusal::Forbidden("only the host may reorder the queue"));
        }
        if self.party.settings.order != OrderMode::Host && !matches!(who, Actor::Outside) {
            return Err(Refusal::Invalid {
                field: "type",
                message: format!(
                    "the queue is in {} order: pin an entry to play it next",
                    self.party.settings.order.as_str()
                ),
            });
        }
        // Rebased: only a change to the order since `base` (other than
        // appending) makes its indices mean something else.
        if let Some(base) = base_version {
            if base > self.version || base < self.order_changed_at {
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
        self.order_changed_at = self.version + 1;
        Ok(self.change(op, who, ctx, Undo::Queue(applied), None))
    }

    /// Who may remove an entry: the host, the member who added it, or the
    /// old app (outside).
    fn may_remove(&self, who: &Actor, item: &Item) -> bool {
        match who {
            Actor::Member(user) => self.manages(user) || item.added_by == *user,
            Actor::Outside | Actor::Hub => true,
        }
    }

    /// Who may reorder the queue: the host and co-hosts, guests when the
    /// host allows (or the old app).
    fn may_reorder(&self, who: &Actor) -> bool {
        match who {
            Actor::Member(user) => self.manages(user) || self.party.settings.guests_reorder,
            Actor::Outside | Actor::Hub => true,
        }
    }

    fn membership(
        &mut self,
        member: &MemberRow,
        present: bool,
        ctx: &Ctx<'_>,
    ) -> Result<Effect, Refusal> {
        let undo = if present {
            if self.is_member(&member.user_id) {
                return Err(Refusal::Conflict("already a member"));
            }
            self.add_member(member.clone());
            Undo::Joined(member.user_id.clone())
        } else {
            let Some(at) = self
                .members
                .iter()
                .position(|m| m.user_id == member.user_id)
            else {
                return Err(Refusal::NotFound("member"));
            };
            Undo::Left(self.members.remove(at))
        };
        let op = ChangeOp::Member {
            user: member.user_id.clone(),
            name: member.name.clone(),
            avatar: member.avatar.clone(),
            member: present,
        };
        Ok(self.change(op, &Actor::Outside, ctx, undo, None))
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
            undo: Undo::Nothing,
            upsert: None,
            side: Side::default(),
        })
    }

    /// A change takes the next version, and a time after the last one's.
    pub(crate) fn change(
        &mut self,
        op: ChangeOp,
        who: &Actor,
        ctx: &Ctx<'_>,
        undo: Undo,
        upsert: Option<Arc<Track>>,
    ) -> Effect {
        self.version += 1;
        self.last_at = ctx.at.max(self.last_at + chrono::Duration::milliseconds(1));
        let by = match who {
            Actor::Member(user) => Some(user.clone()),
            Actor::Outside | Actor::Hub => None,
        };
        Effect {
            version: self.version,
            event: Event::Change(ChangeRecord {
                version: self.version,
                at: self.last_at,
                by,
                op,
            }),
            undo,
            upsert,
            side: Side::default(),
        }
    }

    /// The time the next change will be stamped with.
    pub(crate) fn next_at(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at.max(self.last_at + chrono::Duration::milliseconds(1))
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
            duration_ms: meta.duration_ms,
            cover_url: meta.cover_url.clone(),
        };
        return (t, true);
    };
    let mut t = (**stored).clone();
    let mut filled = false;
    if t.duration_ms.is_none() && meta.duration_ms.is_some() {
        t.duration_ms = meta.duration_ms;
        filled = true;
    }
    if t.cover_url.is_none() && meta.cover_url.is_some() {
        t.cover_url = meta.cover_url.clone();
        filled = true;
    }
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
    pub(crate) struct SeqIds(pub(crate) u128);

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
            duration_ms: None,
            cover_url: None,
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
            DateTime::from_timestamp_millis(0).unwrap(),
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
        st.apply(&op, &Actor::Member(user(who)), &mut ctx)
    }

    pub(crate) fn add_op(t: &str) -> Op {
        Op::Add {
            track: TrackRef::Id(TrackId::from_stored(t.into())),
            index: None,
        }
    }

    pub(crate) fn entry_of(e: &Effect) -> EntryId {
        match &e.event {
            Event::Change(r) => EntryId::parse(r.entry().expect("an entry")).unwrap(),
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
    fn a_base_version_before_an_order_change_is_a_conflict_and_changes_nothing() {
        let (mut st, mut cat, mut ids) = (state(10), catalog(), SeqIds(0));
        let a = apply(&mut st, &mut cat, &mut ids, "host", add_op("t1")).unwrap();
        let b = apply(&mut st, &mut cat, &mut ids, "host", add_op("t2")).unwrap();
        // Version 3 moves b first: indices seen at version 2 mean something else.
        apply(
            &mut st,
            &mut cat,
            &mut ids,
            "host",
            reorder_op(entry_of(&b), 0),
        )
        .unwrap();
        let before = st.queue_entries();
        let stale = Op::Reorder {
            entry: entry_of(&a),
            to_index: 1,
            base_version: Some(2),
        };
        assert_eq!(
            apply(&mut st, &mut cat, &mut ids, "host", stale).unwrap_err(),
            Refusal::Stale {
                base: 2,
                current: 3
            }
        );
        assert_eq!(st.queue_entries(), before);
        assert_eq!(
            Error::from(Refusal::Stale {
                base: 2,
                current: 3
            })
            .to_string(),
            "the queue's order changed since baseVersion 2 (now version 3)"
        );
        // A base ahead of the session is refused too.
        let ahead = Op::Reorder {
            entry: entry_of(&a),
            to_index: 0,
            base_version: Some(9),
        };
        assert!(matches!(
            apply(&mut st, &mut cat, &mut ids, "host", ahead),
            Err(Refusal::Stale { .. })
        ));
    }

    /// Issue 17: a host's move based on an older version still applies when
    /// everything since only appended tracks (a busy add burst).
    #[test]
    fn a_move_is_rebased_over_appends() {
        let (mut st, mut cat, mut ids) = (state(20), catalog(), SeqIds(0));
        let a = apply(&mut st, &mut cat, &mut ids, "host", add_op("t1")).unwrap();
        apply(&mut st, &mut cat, &mut ids, "host", add_op("t2")).unwrap();
        let seen = st.version();
        for t in ["t3", "t0", "t1"] {
            apply(&mut st, &mut cat, &mut ids, "ann", add_op(t)).unwrap();
        }
        let mv = Op::Reorder {
            entry: entry_of(&a),
            to_index: 1,
            base_version: Some(seen),
        };
        apply(&mut st, &mut cat, &mut ids, "host", mv).unwrap();
        let tracks: Vec<&str> = st
            .queue()
            .entries()
            .iter()
            .map(|e| e.item.track.id.as_str())
            .collect();
        assert_eq!(tracks, ["t2", "t1", "t3", "t0", "t1"]);
        // An add at an index (not an append) changes the order.
        let seen = st.version();
        let insert = Op::Add {
            track: TrackRef::Id(TrackId::from_stored("t0".into())),
            index: Some(0),
        };
        apply(&mut st, &mut cat, &mut ids, "host", insert).unwrap();
        let mv = Op::Reorder {
            entry: entry_of(&a),
            to_index: 0,
            base_version: Some(seen),
        };
        assert!(matches!(
            apply(&mut st, &mut cat, &mut ids, "host", mv),
            Err(Refusal::Stale { .. })
        ));
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
            duration_ms: None,
            cover_url: None,
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
                duration_ms: None,
                cover_url: None,
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
