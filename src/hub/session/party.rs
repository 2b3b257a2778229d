//! The listening party's rules (pure, like the rest of `state`): what
//! plays and how it advances, votes and skip votes, the order modes, the
//! host's settings, roles, removing and banning members.
//!
//! Every party op is a versioned change like `add`: applied to the live
//! state here, committed by the actor, undone exactly if the commit fails.
//! An undo restores the party as it was before the op (it is small) and
//! undoes the queue moves the op made, last first.

use std::collections::{BTreeSet, VecDeque};

use audotics_protocol::model::{Role, Track};
use audotics_protocol::party::{self as wire, OrderMode, PartySettings, PlayState};
use audotics_protocol::{ChangeDetail, EntryId, OpKind, TrackId, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::state::{Actor, Ctx, Effect, Item, Reaction, Refusal, SessionState, Undo};
use crate::db::log::ChangeOp;
use crate::db::sessions::MemberRow;
use crate::hub::queue::Applied;

/// Played entries a snapshot shows.
pub const HISTORY: usize = 20;
/// A track stopped this close to its end counts as played to the end.
const END_SLACK_MS: i64 = 1_000;

/// The party's state besides the queue.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Party {
    pub settings: PartySettings,
    pub cohosts: BTreeSet<UserId>,
    pub banned: BTreeSet<UserId>,
    pub now: Option<Playing>,
    pub skip_votes: BTreeSet<UserId>,
    /// The last played entries, oldest first (at most [`HISTORY`]).
    pub history: VecDeque<PlayedEntry>,
}

/// The entry being played.
#[derive(Clone, Debug, PartialEq)]
pub struct Playing {
    pub entry: Uuid,
    pub item: Item,
    pub state: PlayState,
    /// The position at `at`.
    pub position_ms: i64,
    pub at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
}

impl Playing {
    /// Its position at `now`.
    pub fn position_at(&self, now: DateTime<Utc>) -> i64 {
        match self.state {
            PlayState::Paused => self.position_ms,
            PlayState::Playing => self.position_ms + (now - self.at).num_milliseconds().max(0),
        }
    }

    /// When it ends, if it is playing and its length is known.
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        let duration = self.item.track.duration_ms?;
        (self.state == PlayState::Playing)
            .then(|| self.at + chrono::Duration::milliseconds(duration - self.position_ms))
    }

    pub fn wire(&self) -> wire::NowPlaying {
        wire::NowPlaying {
            entry_id: self.entry.to_string(),
            track: (*self.item.track).clone(),
            added_by: self.item.added_by.to_string(),
            added_at: self.item.added_at,
            state: self.state,
            position_ms: self.position_ms,
            at: self.at,
            started_at: self.started_at,
        }
    }
}

/// An entry that stopped playing.
#[derive(Clone, Debug, PartialEq)]
pub struct PlayedEntry {
    pub entry: Uuid,
    pub item: Item,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub skipped: bool,
}

impl PlayedEntry {
    pub fn wire(&self) -> wire::Played {
        wire::Played {
            entry_id: self.entry.to_string(),
            track: (*self.item.track).clone(),
            added_by: self.item.added_by.to_string(),
            started_at: self.started_at,
            ended_at: self.ended_at,
            skipped: self.skipped,
        }
    }
}

/// Why the hub advances by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advance {
    /// What played reached its end.
    Ended,
    /// Enough online members voted to skip it.
    SkipVotes,
}

/// The settings a `settings` op sets; `None` leaves one as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SettingsChange {
    pub order: Option<OrderMode>,
    pub guests_add: Option<bool>,
    pub guests_reorder: Option<bool>,
    pub guests_skip: Option<bool>,
    /// `Some(None)`: no cap.
    pub guest_queue_cap: Option<Option<u32>>,
    pub skip_threshold: Option<f64>,
}

/// What a party op changed, to undo it.
#[derive(Debug)]
pub struct PartyUndo {
    party: Party,
    /// Queue changes, in the order made.
    pub queue: Vec<Applied<Item>>,
    /// Entries whose votes or pin changed: their items before.
    items: Vec<(Uuid, Item)>,
    /// A member removed, and where they were listed.
    member: Option<(usize, MemberRow)>,
    /// A track that entered the played set.
    played_track: Option<String>,
    host: String,
}

/// The order key of an entry in a computed order: pinned entries first
/// (earliest pin first), then by votes (most first) or round (lowest
/// first), then by add time and id, so the order is total and stable.
fn key(item: &Item, id: Uuid, mode: OrderMode) -> (u8, i64, i64, DateTime<Utc>, Uuid) {
    let (pinned, pin) = match item.pinned_at {
        Some(t) => (0, t.timestamp_millis()),
        None => (1, 0),
    };
    let rank = match mode {
        OrderMode::Votes => -(item.votes.len() as i64),
        OrderMode::Fair => item.round,
        OrderMode::Host => 0,
    };
    (pinned, pin, rank, item.added_at, id)
}

impl SessionState {
    /// May `user` add a track? (The host's guest settings and cap.)
    pub(crate) fn may_add(&self, user: &UserId) -> Result<(), Refusal> {
        if self.manages(user) {
            return Ok(());
        }
        let s = &self.party.settings;
        if !s.guests_add {
            return Err(Refusal::Forbidden(
                "the host does not let guests add tracks",
            ));
        }
        if let Some(cap) = s.guest_queue_cap {
            let queued = self
                .queue()
                .entries()
                .iter()
                .filter(|e| e.item.added_by == *user)
                .count();
            if queued >= cap as usize {
                return Err(Refusal::Limit(format!(
                    "you have {queued} tracks queued, the host's limit per guest"
                )));
            }
        }
        Ok(())
    }

    /// The fair-order round of `user`'s next track: after their last queued
    /// (or playing) one, and never before the round now playing.
    pub(crate) fn next_round(&self, user: &UserId) -> i64 {
        let now = self.party.now.as_ref();
        let current = now
            .map(|n| n.item.round)
            .or_else(|| self.queue().entries().iter().map(|e| e.item.round).min())
            .unwrap_or(0);
        let last = self
            .queue()
            .entries()
            .iter()
            .map(|e| &e.item)
            .chain(now.map(|n| &n.item))
            .filter(|i| i.added_by == *user)
            .map(|i| i.round)
            .max();
        last.map_or(current, |l| (l + 1).max(current))
    }

    /// Where an entry belongs among the others in the computed order.
    pub(crate) fn computed_index(&self, item: &Item, id: Uuid) -> usize {
        let mode = self.party.settings.order;
        let k = key(item, id, mode);
        self.queue()
            .entries()
            .iter()
            .filter(|e| e.id != id && key(&e.item, e.id, mode) < k)
            .count()
    }

    /// Apply a member's party op.
    pub(crate) fn party_op(
        &mut self,
        op: &super::state::Op,
        user: &UserId,
        ctx: &mut Ctx<'_>,
    ) -> Result<Effect, Refusal> {
        use super::state::Op;
        let who = Actor::Member(user.clone());
        let manage = |st: &SessionState, what: &'static str| {
            if st.manages(user) {
                Ok(())
            } else {
                Err(Refusal::Forbidden(what))
            }
        };
        match op {
            Op::Play { entry } => {
                manage(self, "only a host may start or resume playback")?;
                self.play(*entry, &who, ctx)
            }
            Op::Pause => {
                manage(self, "only a host may pause")?;
                self.pause(&who, ctx)
            }
            Op::Seek { position_ms } => {
                manage(self, "only a host may seek")?;
                self.seek(*position_ms, &who, ctx)
            }
            Op::Next => {
                if !self.manages(user) && !self.party.settings.guests_skip {
                    return Err(Refusal::Forbidden("the host does not let guests skip"));
                }
                if self.party.now.is_none() && self.queue().is_empty() {
                    return Err(Refusal::Conflict("nothing is playing or queued"));
                }
                let undo = self.begin();
                let at = ctx.at;
                Ok(self.step(undo, &who, ctx, "op", vec![user.clone()], at))
            }
            Op::Vote { entry, up } => self.vote(*entry, *up, user, ctx),
            Op::SkipVote { up } => self.skip_vote(*up, user, ctx),
            Op::Pin { entry } => {
                manage(self, "only a host may pin")?;
                self.pin(*entry, &who, ctx)
            }
            Op::Settings(change) => {
                manage(self, "only a host may change the settings")?;
                self.settings(change, &who, ctx)
            }
            Op::Role { user: target, role } => self.role(target, *role, user, ctx),
            Op::Kick { user: target, ban } => {
                manage(self, "only a host may remove members")?;
                self.kick(target, *ban, user, ctx)
            }
            Op::Unban { user: target } => {
                manage(self, "only a host may unban")?;
                self.unban(target, &who, ctx)
            }
            _ => Err(Refusal::Forbidden("not an op this author can make")),
        }
    }

    /// What an undo of a party op starting now needs.
    fn begin(&self) -> PartyUndo {
        PartyUndo {
            party: self.party.clone(),
            queue: Vec::new(),
            items: Vec::new(),
            member: None,
            played_track: None,
            host: self.session.host_id.clone(),
        }
    }

    pub(crate) fn undo_party(&mut self, u: PartyUndo) {
        for a in u.queue.into_iter().rev() {
            self.queue_mut().undo(a);
        }
        for (id, item) in u.items {
            if let Some(i) = self.queue_mut().item_mut(id) {
                *i = item;
            }
        }
        if let Some((at, m)) = u.member {
            let members = self.members_mut();
            members.insert(at.min(members.len()), m);
        }
        if let Some(t) = u.played_track {
            self.played_tracks.remove(&t);
        }
        self.session.host_id = u.host;
        self.party = u.party;
    }

    /// Record a party change: its version, row, and what it writes.
    #[allow(clippy::too_many_arguments)]
    fn party_change(
        &mut self,
        undo: PartyUndo,
        who: &Actor,
        ctx: &Ctx<'_>,
        kind: OpKind,
        entry: Option<Uuid>,
        track: Option<&Track>,
        from_to: (Option<usize>, Option<usize>),
        detail: ChangeDetail,
    ) -> Effect {
        let items: Vec<Uuid> = undo.items.iter().map(|(id, _)| *id).collect();
        let op = ChangeOp::Party {
            kind,
            entry: entry.map(|e| e.to_string()),
            track: track.map(|t| TrackId::from_stored(t.id.clone())),
            from: from_to.0,
            to: from_to.1,
            detail,
        };
        let party_changed = undo.party != self.party || undo.host != self.session.host_id;
        let mut effect = self.change(op, who, ctx, Undo::Party(Box::new(undo)), None);
        effect.side.party = party_changed;
        effect.side.items = items;
        effect
    }

    fn playback(&self, played: Option<&PlayedEntry>, reason: &str) -> ChangeDetail {
        ChangeDetail::Playback {
            now_playing: self.party.now.as_ref().map(|n| Box::new(n.wire())),
            played: played.map(|p| Box::new(p.wire())),
            reason: reason.to_owned(),
        }
    }

    fn play(
        &mut self,
        entry: Option<EntryId>,
        who: &Actor,
        ctx: &mut Ctx<'_>,
    ) -> Result<Effect, Refusal> {
        match entry {
            Some(entry) => {
                if self.queue().get(entry.uuid()).is_none() {
                    return Err(Refusal::NotFound("entry"));
                }
                let mut undo = self.begin();
                let at = ctx.at;
                let played = self.stop_playing(&mut undo, at, true);
                let from = self.start(&mut undo, entry.uuid(), at);
                let mut e = self.started(undo, who, ctx, OpKind::Play, played.clone(), from, "op");
                let skippers: Vec<UserId> = match who {
                    Actor::Member(u) => vec![u.clone()],
                    _ => Vec::new(),
                };
                record_stop(&mut e, played, &skippers);
                Ok(e)
            }
            None => match &self.party.now {
                Some(n) if n.state == PlayState::Playing => {
                    Err(Refusal::Conflict("already playing"))
                }
                Some(_) => Ok(self.change_playing(who, ctx, OpKind::Play, |now, _| {
                    now.state = PlayState::Playing;
                })),
                None => {
                    let Some(head) = self.queue().entries().first().map(|e| e.id) else {
                        return Err(Refusal::Conflict("the queue is empty"));
                    };
                    let mut undo = self.begin();
                    let from = self.start(&mut undo, head, ctx.at);
                    Ok(self.started(undo, who, ctx, OpKind::Play, None, from, "op"))
                }
            },
        }
    }

    fn pause(&mut self, who: &Actor, ctx: &mut Ctx<'_>) -> Result<Effect, Refusal> {
        match &self.party.now {
            None => Err(Refusal::Conflict("nothing is playing")),
            Some(n) if n.state == PlayState::Paused => Err(Refusal::Conflict("already paused")),
            Some(_) => Ok(self.change_playing(who, ctx, OpKind::Pause, |now, at| {
                now.position_ms = now.position_at(at);
                if let Some(d) = now.item.track.duration_ms {
                    now.position_ms = now.position_ms.min(d);
                }
                now.state = PlayState::Paused;
            })),
        }
    }

    fn seek(
        &mut self,
        position_ms: i64,
        who: &Actor,
        ctx: &mut Ctx<'_>,
    ) -> Result<Effect, Refusal> {
        let Some(now) = &self.party.now else {
            return Err(Refusal::Conflict("nothing is playing"));
        };
        if let Some(d) = now.item.track.duration_ms {
            if position_ms > d {
                return Err(Refusal::Invalid {
                    field: "positionMs",
                    message: format!("the track is {d} ms long"),
                });
            }
        }
        Ok(self.change_playing(who, ctx, OpKind::Seek, |now, _| {
            now.position_ms = position_ms;
        }))
    }

    /// Change what plays in place (resume, pause, seek) as of the op's
    /// time: one change naming its entry and track, with the playback after
    /// it. The caller checked that something plays.
    fn change_playing(
        &mut self,
        who: &Actor,
        ctx: &mut Ctx<'_>,
        kind: OpKind,
        change: impl FnOnce(&mut Playing, DateTime<Utc>),
    ) -> Effect {
        let undo = self.begin();
        let at = self.next_at(ctx.at);
        let now = self.party.now.as_mut().expect("checked by the caller");
        change(now, at);
        now.at = at;
        let (id, track) = (now.entry, now.item.track.clone());
        let detail = self.playback(None, "op");
        self.party_change(
            undo,
            who,
            ctx,
            kind,
            Some(id),
            Some(&track),
            (None, None),
            detail,
        )
    }

    /// The hub advances: the track ended, or the room voted it off.
    pub(crate) fn advance(
        &mut self,
        reason: Advance,
        at: Option<DateTime<Utc>>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Effect, Refusal> {
        if self.party.now.is_none() {
            return Err(Refusal::Conflict("nothing is playing"));
        }
        let undo = self.begin();
        let (why, skippers) = match reason {
            Advance::Ended => ("ended", Vec::new()),
            Advance::SkipVotes => ("skipVotes", self.party.skip_votes.iter().cloned().collect()),
        };
        let when = at.unwrap_or(ctx.at);
        Ok(self.step(undo, &Actor::Hub, ctx, why, skippers, when))
    }

    /// Stop what plays (into the history; cut short by `skippers`, if
    /// any) and start the head of the queue.
    fn step(
        &mut self,
        mut undo: PartyUndo,
        who: &Actor,
        ctx: &mut Ctx<'_>,
        reason: &str,
        skippers: Vec<UserId>,
        at: DateTime<Utc>,
    ) -> Effect {
        let played = self.stop_playing(&mut undo, at, !skippers.is_empty());
        let head = self.queue().entries().first().map(|e| e.id);
        let from = head.map(|h| self.start(&mut undo, h, at));
        let mut e = match from {
            Some(from) => self.started(undo, who, ctx, OpKind::Next, played.clone(), from, reason),
            None => {
                let detail = self.playback(played.as_ref(), reason);
                self.party_change(
                    undo,
                    who,
                    ctx,
                    OpKind::Next,
                    None,
                    None,
                    (None, None),
                    detail,
                )
            }
        };
        record_stop(&mut e, played, &skippers);
        e
    }

    /// Take what plays off (into the history); the entry that stopped.
    fn stop_playing(
        &mut self,
        undo: &mut PartyUndo,
        at: DateTime<Utc>,
        cut: bool,
    ) -> Option<PlayedEntry> {
        let now = self.party.now.take()?;
        let position = now.position_at(at);
        let skipped = cut
            && now
                .item
                .track
                .duration_ms
                .is_none_or(|d| position < d - END_SLACK_MS);
        let played = PlayedEntry {
            entry: now.entry,
            item: now.item,
            started_at: now.started_at,
            ended_at: at,
            skipped,
        };
        self.party.history.push_back(played.clone());
        while self.party.history.len() > HISTORY {
            self.party.history.pop_front();
        }
        self.party.skip_votes.clear();
        let track = played.item.track.id.clone();
        if self.played_tracks.insert(track.clone()) {
            undo.played_track = Some(track);
        }
        Some(played)
    }

    /// Take `entry` off the queue to play it from 0 at `at`; where it was.
    fn start(&mut self, undo: &mut PartyUndo, entry: Uuid, at: DateTime<Utc>) -> usize {
        let applied = self.queue_mut().remove(entry).expect("queued");
        let Applied::Removed { index, entry: e } = &applied else {
            unreachable!("remove reports Removed")
        };
        let mut item = e.item.clone();
        item.pinned_at = None;
        self.party.now = Some(Playing {
            entry,
            item,
            state: PlayState::Playing,
            position_ms: 0,
            at,
            started_at: at,
        });
        self.party.skip_votes.clear();
        let index = *index;
        undo.queue.push(applied);
        index
    }

    /// The change of a `play` or `next` that started an entry.
    #[allow(clippy::too_many_arguments)]
    fn started(
        &mut self,
        undo: PartyUndo,
        who: &Actor,
        ctx: &Ctx<'_>,
        kind: OpKind,
        played: Option<PlayedEntry>,
        from: usize,
        reason: &str,
    ) -> Effect {
        self.order_changed_at = self.version() + 1;
        let now = self.party.now.clone().expect("started");
        let detail = self.playback(played.as_ref(), reason);
        let mut e = self.party_change(
            undo,
            who,
            ctx,
            kind,
            Some(now.entry),
            Some(&now.item.track),
            (Some(from), None),
            detail,
        );
        let _ = played;
        // `play` by whoever started it; by its adder when the hub did.
        let starter = match who {
            Actor::Member(u) => u.clone(),
            Actor::Outside | Actor::Hub => now.item.added_by.clone(),
        };
        e.side.reactions.push(Reaction {
            user: starter,
            track: TrackId::from_stored(now.item.track.id.clone()),
            kind: "play".into(),
            at: change_at(&e),
        });
        e
    }

    fn vote(
        &mut self,
        entry: EntryId,
        up: bool,
        user: &UserId,
        ctx: &mut Ctx<'_>,
    ) -> Result<Effect, Refusal> {
        let id = entry.uuid();
        let Some((_, e)) = self.queue().get(id) else {
            return Err(Refusal::NotFound("entry"));
        };
        let has = e.item.votes.contains(user);
        if has == up {
            return Err(Refusal::Conflict(if up {
                "already voted"
            } else {
                "no vote to take back"
            }));
        }
        let mut undo = self.begin();
        let before = e.item.clone();
        undo.items.push((id, before));
        let item = self.queue_mut().item_mut(id).expect("queued");
        if up {
            let at = item.votes.binary_search(user).unwrap_err();
            item.votes.insert(at, user.clone());
        } else {
            item.votes.retain(|v| v != user);
        }
        let votes: Vec<String> = item.votes.iter().map(UserId::to_string).collect();
        let track = item.track.clone();
        let moved = self.reposition(&mut undo, id);
        let detail = ChangeDetail::Vote {
            user_id: user.to_string(),
            up,
            votes,
        };
        let who = Actor::Member(user.clone());
        Ok(self.party_change(
            undo,
            &who,
            ctx,
            OpKind::Vote,
            Some(id),
            Some(&track),
            moved,
            detail,
        ))
    }

    /// In a computed order, move `id` where its key now puts it.
    fn reposition(&mut self, undo: &mut PartyUndo, id: Uuid) -> (Option<usize>, Option<usize>) {
        if self.party.settings.order == OrderMode::Host {
            return (None, None);
        }
        let (from, e) = self.queue().get(id).expect("queued");
        let to = self.computed_index(&e.item.clone(), id);
        if to == from {
            return (None, None);
        }
        let applied = self.queue_mut().move_to(id, to).expect("in range");
        undo.queue.push(applied);
        self.order_changed_at = self.version() + 1;
        (Some(from), Some(to))
    }

    fn skip_vote(&mut self, up: bool, user: &UserId, ctx: &mut Ctx<'_>) -> Result<Effect, Refusal> {
        let Some(now) = &self.party.now else {
            return Err(Refusal::Conflict("nothing is playing"));
        };
        let (id, track) = (now.entry, now.item.track.clone());
        if self.party.skip_votes.contains(user) == up {
            return Err(Refusal::Conflict(if up {
                "already voted to skip"
            } else {
                "no skip vote to take back"
            }));
        }
        let undo = self.begin();
        if up {
            self.party.skip_votes.insert(user.clone());
        } else {
            self.party.skip_votes.remove(user);
        }
        let detail = ChangeDetail::SkipVote {
            user_id: user.to_string(),
            up,
            votes: self
                .party
                .skip_votes
                .iter()
                .map(UserId::to_string)
                .collect(),
        };
        let who = Actor::Member(user.clone());
        Ok(self.party_change(
            undo,
            &who,
            ctx,
            OpKind::SkipVote,
            Some(id),
            Some(&track),
            (None, None),
            detail,
        ))
    }

    /// Whether the online members' skip votes reach the threshold: at least
    /// ceil(threshold × online members), and at least one. A vote counts
    /// while its voter is online.
    pub fn skip_due(&self, online: &std::collections::HashSet<UserId>) -> bool {
        if self.party.now.is_none() || self.party.skip_votes.is_empty() {
            return false;
        }
        let present = online.iter().filter(|u| self.is_member(u)).count();
        let votes = self
            .party
            .skip_votes
            .iter()
            .filter(|u| online.contains(*u))
            .count();
        let needed = ((self.party.settings.skip_threshold * present as f64).ceil() as usize).max(1);
        votes >= needed
    }

    /// When what plays ends by itself, if it does.
    pub fn advance_due(&self) -> Option<DateTime<Utc>> {
        self.party.now.as_ref().and_then(Playing::ends_at)
    }

    fn pin(&mut self, entry: EntryId, who: &Actor, ctx: &mut Ctx<'_>) -> Result<Effect, Refusal> {
        let id = entry.uuid();
        let Some((from, e)) = self.queue().get(id) else {
            return Err(Refusal::NotFound("entry"));
        };
        let mut undo = self.begin();
        undo.items.push((id, e.item.clone()));
        let at = self.next_at(ctx.at);
        let item = self.queue_mut().item_mut(id).expect("queued");
        item.pinned_at = Some(at);
        let track = item.track.clone();
        // Pinned entries play first, earliest pin first: after the others.
        let to = self
            .queue()
            .entries()
            .iter()
            .filter(|e| e.id != id && e.item.pinned_at.is_some())
            .count();
        let moved = if to != from {
            let applied = self.queue_mut().move_to(id, to).expect("in range");
            undo.queue.push(applied);
            self.order_changed_at = self.version() + 1;
            (Some(from), Some(to))
        } else {
            (None, None)
        };
        Ok(self.party_change(
            undo,
            who,
            ctx,
            OpKind::Pin,
            Some(id),
            Some(&track),
            moved,
            ChangeDetail::Pin {},
        ))
    }

    fn settings(
        &mut self,
        c: &SettingsChange,
        who: &Actor,
        ctx: &mut Ctx<'_>,
    ) -> Result<Effect, Refusal> {
        let mut undo = self.begin();
        let s = &mut self.party.settings;
        let old_order = s.order;
        if let Some(o) = c.order {
            s.order = o;
        }
        if let Some(v) = c.guests_add {
            s.guests_add = v;
        }
        if let Some(v) = c.guests_reorder {
            s.guests_reorder = v;
        }
        if let Some(v) = c.guests_skip {
            s.guests_skip = v;
        }
        if let Some(v) = c.guest_queue_cap {
            s.guest_queue_cap = v;
        }
        if let Some(v) = c.skip_threshold {
            s.skip_threshold = v;
        }
        let mode = s.order;
        let mut queue = None;
        if mode != old_order && mode != OrderMode::Host {
            // Sort the queue into the new order, one move per misplaced entry.
            let mut sorted: Vec<(Uuid, Item)> = self
                .queue()
                .entries()
                .iter()
                .map(|e| (e.id, e.item.clone()))
                .collect();
            sorted.sort_by_key(|(id, item)| key(item, *id, mode));
            for (i, (id, _)) in sorted.iter().enumerate() {
                if self.queue().entries()[i].id != *id {
                    let applied = self.queue_mut().move_to(*id, i).expect("in range");
                    undo.queue.push(applied);
                }
            }
            if !undo.queue.is_empty() {
                self.order_changed_at = self.version() + 1;
            }
            queue = Some(sorted.iter().map(|(id, _)| id.to_string()).collect());
        }
        let detail = ChangeDetail::Settings {
            settings: self.party.settings.clone(),
            queue,
        };
        Ok(self.party_change(
            undo,
            who,
            ctx,
            OpKind::Settings,
            None,
            None,
            (None, None),
            detail,
        ))
    }

    fn role(
        &mut self,
        target: &UserId,
        role: Role,
        user: &UserId,
        ctx: &mut Ctx<'_>,
    ) -> Result<Effect, Refusal> {
        if !self.is_host(user) {
            return Err(Refusal::Forbidden("only the host may change roles"));
        }
        if !self.is_member(target) {
            return Err(Refusal::NotFound("member"));
        }
        if target == user {
            return Err(Refusal::Conflict(
                "hand the host role to another member instead",
            ));
        }
        let undo = self.begin();
        match role {
            Role::Host => {
                // The old host stays on as a co-host.
                self.party.cohosts.remove(target);
                self.party.cohosts.insert(user.clone());
                self.session.host_id = target.to_string();
            }
            Role::Cohost => {
                if !self.party.cohosts.insert(target.clone()) {
                    return Err(Refusal::Conflict("already a co-host"));
                }
            }
            Role::Member => {
                if !self.party.cohosts.remove(target) {
                    return Err(Refusal::Conflict("not a co-host"));
                }
            }
        }
        let detail = ChangeDetail::Role {
            host_id: self.session.host_id.clone(),
            cohosts: self.party.cohosts.iter().map(UserId::to_string).collect(),
        };
        let who = Actor::Member(user.clone());
        Ok(self.party_change(
            undo,
            &who,
            ctx,
            OpKind::Role,
            None,
            None,
            (None, None),
            detail,
        ))
    }

    fn kick(
        &mut self,
        target: &UserId,
        ban: bool,
        user: &UserId,
        ctx: &mut Ctx<'_>,
    ) -> Result<Effect, Refusal> {
        if target == user {
            return Err(Refusal::Conflict("use leave to leave"));
        }
        if self.is_host(target) || (!self.is_host(user) && self.party.cohosts.contains(target)) {
            return Err(Refusal::Forbidden("a host cannot be removed this way"));
        }
        let Some(at) = self.members().iter().position(|m| m.user_id == *target) else {
            return Err(Refusal::NotFound("member"));
        };
        let mut undo = self.begin();
        let member = self.members_mut().remove(at);
        let name = member.name.clone();
        undo.member = Some((at, member));
        self.party.cohosts.remove(target);
        self.party.skip_votes.remove(target);
        if ban {
            self.party.banned.insert(target.clone());
        }
        let detail = ChangeDetail::Kick {
            user_id: target.to_string(),
            name,
            banned: ban,
        };
        let who = Actor::Member(user.clone());
        let mut e = self.party_change(
            undo,
            &who,
            ctx,
            OpKind::Kick,
            None,
            None,
            (None, None),
            detail,
        );
        e.side.kicked = Some((target.clone(), ban));
        Ok(e)
    }

    fn unban(
        &mut self,
        target: &UserId,
        who: &Actor,
        ctx: &mut Ctx<'_>,
    ) -> Result<Effect, Refusal> {
        if !self.party.banned.contains(target) {
            return Err(Refusal::NotFound("ban"));
        }
        let undo = self.begin();
        self.party.banned.remove(target);
        let detail = ChangeDetail::Unban {
            user_id: target.to_string(),
        };
        Ok(self.party_change(
            undo,
            who,
            ctx,
            OpKind::Unban,
            None,
            None,
            (None, None),
            detail,
        ))
    }

    /// The party as snapshots show it.
    pub fn party_wire(&self) -> wire::Party {
        let p = &self.party;
        wire::Party {
            settings: p.settings.clone(),
            now_playing: p.now.as_ref().map(Playing::wire),
            history: p.history.iter().map(PlayedEntry::wire).collect(),
            skip_votes: p.skip_votes.iter().map(UserId::to_string).collect(),
            cohosts: p.cohosts.iter().map(UserId::to_string).collect(),
            banned: p.banned.iter().map(UserId::to_string).collect(),
        }
    }

    /// A member's role.
    pub fn role_of(&self, user: &UserId) -> Role {
        if self.is_host(user) {
            Role::Host
        } else if self.party.cohosts.contains(user) {
            Role::Cohost
        } else {
            Role::Member
        }
    }

    pub fn is_banned(&self, user: &UserId) -> bool {
        self.party.banned.contains(user)
    }
}

/// The rows of an entry that stopped: its `hub_played` row, and a `skip`
/// by each of `skippers` when it was cut short.
fn record_stop(e: &mut Effect, played: Option<PlayedEntry>, skippers: &[UserId]) {
    let Some(played) = played else { return };
    if played.skipped {
        let track = TrackId::from_stored(played.item.track.id.clone());
        for user in skippers {
            e.side.reactions.push(Reaction {
                user: user.clone(),
                track: track.clone(),
                kind: "skip".into(),
                at: change_at(e),
            });
        }
    }
    e.side.played = Some(played);
}

fn change_at(e: &Effect) -> DateTime<Utc> {
    match &e.event {
        super::state::Event::Change(r) => r.at,
        super::state::Event::Reaction(r) => r.at,
    }
}

impl Party {
    /// The party as loaded: its stored state, the track of what plays (if
    /// the catalog still has it) and the last played entries.
    pub fn from_stored(
        stored: crate::db::party::StoredParty,
        now_track: Option<Track>,
        history: Vec<crate::db::party::PlayedRow>,
    ) -> Party {
        let user = |s: String| UserId::from_stored(s);
        let now = stored.now.zip(now_track).and_then(|(n, track)| {
            let entry = EntryId::parse(&n.entry_id).ok()?.uuid();
            let mut item = Item::new(std::sync::Arc::new(track), user(n.added_by), n.added_at);
            item.round = n.round;
            Some(Playing {
                entry,
                item,
                state: n.state,
                position_ms: n.position_ms,
                at: n.at,
                started_at: n.started_at,
            })
        });
        let history = history
            .into_iter()
            .filter_map(|h| {
                let entry = EntryId::parse(&h.entry_id).ok()?.uuid();
                let added_by = user(h.added_by.unwrap_or_default());
                Some(PlayedEntry {
                    entry,
                    item: Item::new(std::sync::Arc::new(h.track), added_by, h.added_at),
                    started_at: h.started_at,
                    ended_at: h.ended_at,
                    skipped: h.skipped,
                })
            })
            .collect();
        Party {
            settings: stored.settings,
            cohosts: stored.cohosts.into_iter().map(user).collect(),
            banned: stored.banned.into_iter().map(user).collect(),
            now,
            skip_votes: stored.skip_votes.into_iter().map(user).collect(),
            history,
        }
    }

    /// The party as stored, with `host`.
    pub fn to_stored(&self, host: &str) -> crate::db::party::StoredParty {
        let s = |u: &UserId| u.to_string();
        crate::db::party::StoredParty {
            settings: self.settings.clone(),
            host: Some(host.to_owned()),
            cohosts: self.cohosts.iter().map(s).collect(),
            banned: self.banned.iter().map(s).collect(),
            now: self.now.as_ref().map(|n| crate::db::party::StoredPlaying {
                entry_id: n.entry.to_string(),
                track_id: n.item.track.id.clone(),
                added_by: n.item.added_by.to_string(),
                added_at: n.item.added_at,
                round: n.item.round,
                state: n.state,
                position_ms: n.position_ms,
                at: n.at,
                started_at: n.started_at,
            }),
            skip_votes: self.skip_votes.iter().map(s).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::hub::session::state::tests::{add_op, apply_to, entry_of, state, Fixture};
    use crate::hub::session::state::{Catalog, Event, Op};

    fn user(s: &str) -> UserId {
        UserId::from_stored(s.to_owned())
    }

    /// A fixture whose tracks last `ms` each, with `members` besides the
    /// host, ann and ben.
    fn fixture(ms: Option<i64>, members: &[&str]) -> Fixture {
        let mut f = Fixture::new(state(100));
        let mut c = Catalog::default();
        for (id, t) in f.catalog.by_id.drain() {
            let mut t = (*t).clone();
            t.duration_ms = ms;
            c.by_id.insert(id, Arc::new(t));
        }
        f.catalog = c;
        for m in members {
            f.state.add_member(MemberRow {
                user_id: user(m),
                name: (*m).to_owned(),
                avatar: None,
            });
        }
        f
    }

    fn order(f: &Fixture) -> Vec<Uuid> {
        f.state.queue().entries().iter().map(|e| e.id).collect()
    }

    fn adders(f: &Fixture) -> Vec<String> {
        f.state
            .queue()
            .entries()
            .iter()
            .map(|e| e.item.added_by.to_string())
            .collect()
    }

    fn settings(order: OrderMode) -> Op {
        Op::Settings(SettingsChange {
            order: Some(order),
            ..Default::default()
        })
    }

    fn detail(e: &Effect) -> ChangeDetail {
        match &e.event {
            Event::Change(r) => match &r.op {
                ChangeOp::Party { detail, .. } => detail.clone(),
                other => panic!("not a party change: {other:?}"),
            },
            Event::Reaction(_) => panic!("a reaction"),
        }
    }

    #[test]
    fn fair_order_interleaves_contributors() {
        let mut f = fixture(None, &[]);
        apply_to(&mut f, "host", settings(OrderMode::Fair)).unwrap();
        for t in ["t0", "t1", "t2"] {
            apply_to(&mut f, "ann", add_op(t)).unwrap();
        }
        apply_to(&mut f, "ben", add_op("t3")).unwrap();
        apply_to(&mut f, "host", add_op("t0")).unwrap();
        apply_to(&mut f, "ben", add_op("t1")).unwrap();
        assert_eq!(adders(&f), ["ann", "ben", "host", "ann", "ben", "ann"]);
    }

    #[test]
    fn votes_order_most_votes_first_ties_by_add_time_and_others_keep_their_order() {
        let mut f = fixture(None, &[]);
        apply_to(&mut f, "host", settings(OrderMode::Votes)).unwrap();
        let e: Vec<EntryId> = ["t0", "t1", "t2", "t3"]
            .iter()
            .map(|t| entry_of(&apply_to(&mut f, "ann", add_op(t)).unwrap()))
            .collect();
        let vote = |entry: EntryId, up| Op::Vote { entry, up };
        let moved = apply_to(&mut f, "ben", vote(e[2], true)).unwrap();
        match &moved.event {
            Event::Change(r) => assert_eq!(r.change().from_index, Some(2)),
            _ => unreachable!(),
        }
        apply_to(&mut f, "ann", vote(e[3], true)).unwrap();
        apply_to(&mut f, "host", vote(e[3], true)).unwrap();
        let ids: Vec<Uuid> = [e[3], e[2], e[0], e[1]].iter().map(|x| x.uuid()).collect();
        assert_eq!(order(&f), ids);
        // Voting twice is a conflict; taking a vote back moves it back.
        assert!(matches!(
            apply_to(&mut f, "ben", vote(e[2], true)),
            Err(Refusal::Conflict(_))
        ));
        apply_to(&mut f, "ben", vote(e[2], false)).unwrap();
        let ids: Vec<Uuid> = [e[3], e[0], e[1], e[2]].iter().map(|x| x.uuid()).collect();
        assert_eq!(order(&f), ids);
        // A reorder by hand is refused in a computed order; a pin is not.
        let mv = Op::Reorder {
            entry: e[1],
            to_index: 0,
            base_version: None,
        };
        assert!(matches!(
            apply_to(&mut f, "host", mv),
            Err(Refusal::Invalid { .. })
        ));
        apply_to(&mut f, "host", Op::Pin { entry: e[1] }).unwrap();
        assert_eq!(order(&f)[0], e[1].uuid());
        // A pinned entry stays first whatever the votes.
        apply_to(&mut f, "ben", vote(e[0], true)).unwrap();
        apply_to(&mut f, "host", vote(e[0], true)).unwrap();
        apply_to(&mut f, "ann", vote(e[0], true)).unwrap();
        assert_eq!(order(&f)[..2], [e[1].uuid(), e[0].uuid()]);
    }

    #[test]
    fn playback_starts_pauses_seeks_and_records_plays_and_skips() {
        let mut f = fixture(Some(180_000), &[]);
        let a = entry_of(&apply_to(&mut f, "ann", add_op("t0")).unwrap());
        let b = entry_of(&apply_to(&mut f, "ben", add_op("t1")).unwrap());
        // Guests may not start playback by default.
        assert!(matches!(
            apply_to(&mut f, "ann", Op::Play { entry: None }),
            Err(Refusal::Forbidden(_))
        ));
        let p = apply_to(&mut f, "host", Op::Play { entry: None }).unwrap();
        assert_eq!(f.state.party.now.as_ref().unwrap().entry, a.uuid());
        assert_eq!(f.state.queue().len(), 1);
        assert_eq!(p.side.reactions.len(), 1);
        assert_eq!(
            (
                p.side.reactions[0].user.as_str(),
                p.side.reactions[0].kind.as_str()
            ),
            ("host", "play")
        );
        assert!(f.state.holds_track("t0"), "a playing track stays linked");
        assert!(matches!(
            apply_to(&mut f, "host", Op::Play { entry: None }),
            Err(Refusal::Conflict(_))
        ));
        apply_to(&mut f, "host", Op::Pause).unwrap();
        assert_eq!(f.state.party.now.as_ref().unwrap().state, PlayState::Paused);
        assert!(f.state.advance_due().is_none(), "paused: no end");
        assert!(matches!(
            apply_to(
                &mut f,
                "host",
                Op::Seek {
                    position_ms: 200_000
                }
            ),
            Err(Refusal::Invalid {
                field: "positionMs",
                ..
            })
        ));
        apply_to(
            &mut f,
            "host",
            Op::Seek {
                position_ms: 10_000,
            },
        )
        .unwrap();
        apply_to(&mut f, "host", Op::Play { entry: None }).unwrap();
        let due = f.state.advance_due().expect("playing with a length");
        let now = f.state.party.now.as_ref().unwrap();
        assert_eq!((due - now.at).num_milliseconds(), 170_000);
        // `next` by the host cuts it short: a skip by the host, a play.
        let n = apply_to(&mut f, "host", Op::Next).unwrap();
        let kinds: Vec<&str> = n.side.reactions.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["play", "skip"]);
        assert!(n.side.played.as_ref().unwrap().skipped);
        assert_eq!(f.state.party.now.as_ref().unwrap().entry, b.uuid());
        assert_eq!(f.state.party.history.len(), 1);
    }

    #[test]
    fn a_track_that_ends_advances_without_a_skip_and_the_next_starts_at_its_end() {
        let mut f = fixture(Some(60_000), &[]);
        apply_to(&mut f, "ann", add_op("t0")).unwrap();
        apply_to(&mut f, "ben", add_op("t1")).unwrap();
        apply_to(&mut f, "host", Op::Play { entry: None }).unwrap();
        let end = f.state.advance_due().unwrap();
        let mut ctx_at = end + chrono::Duration::seconds(90);
        let mut ids = crate::hub::session::state::tests::SeqIds(1000);
        let mut ctx = Ctx {
            at: ctx_at,
            catalog: &mut f.catalog,
            ids: &mut ids,
        };
        let op = Op::Advance {
            reason: Advance::Ended,
            at: Some(end),
        };
        let e = f.state.apply(&op, &Actor::Hub, &mut ctx).unwrap();
        let played = e.side.played.as_ref().unwrap();
        assert!(!played.skipped);
        assert_eq!(played.ended_at, end);
        let kinds: Vec<(&str, &str)> = e
            .side
            .reactions
            .iter()
            .map(|r| (r.user.as_str(), r.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [("ben", "play")],
            "the adder plays what the hub starts"
        );
        let now = f.state.party.now.as_ref().unwrap();
        assert_eq!(now.at, end);
        // It ended 30 s ago too: the next advance is due at once.
        assert!(f.state.advance_due().unwrap() < ctx_at);
        ctx_at += chrono::Duration::seconds(1);
        let _ = ctx_at;
    }

    #[test]
    fn skip_votes_count_online_members_only() {
        let mut f = fixture(Some(180_000), &["cal"]);
        apply_to(&mut f, "ann", add_op("t0")).unwrap();
        apply_to(&mut f, "host", Op::Play { entry: None }).unwrap();
        apply_to(&mut f, "ann", Op::SkipVote { up: true }).unwrap();
        let online: HashSet<UserId> = ["host", "ann", "ben", "cal"].map(user).into();
        assert!(!f.state.skip_due(&online), "1 of 4: needs 2");
        // A non-voter leaves: 1 of 3 still needs 2; another leaves: 1 of 2.
        let online: HashSet<UserId> = ["host", "ann", "ben"].map(user).into();
        assert!(!f.state.skip_due(&online));
        let online: HashSet<UserId> = ["host", "ann"].map(user).into();
        assert!(f.state.skip_due(&online));
        // The voter gone, their vote does not count.
        let online: HashSet<UserId> = ["host"].map(user).into();
        assert!(!f.state.skip_due(&online));
        let op = Op::Settings(SettingsChange {
            skip_threshold: Some(1.0),
            ..Default::default()
        });
        apply_to(&mut f, "host", op).unwrap();
        let online: HashSet<UserId> = ["host", "ann"].map(user).into();
        assert!(!f.state.skip_due(&online), "everyone must vote at 1.0");
    }

    #[test]
    fn guest_controls_and_the_per_guest_cap() {
        let mut f = fixture(None, &[]);
        let cap = Op::Settings(SettingsChange {
            guest_queue_cap: Some(Some(2)),
            guests_add: Some(true),
            ..Default::default()
        });
        apply_to(&mut f, "host", cap).unwrap();
        apply_to(&mut f, "ann", add_op("t0")).unwrap();
        apply_to(&mut f, "ann", add_op("t1")).unwrap();
        assert!(matches!(
            apply_to(&mut f, "ann", add_op("t2")),
            Err(Refusal::Limit(_))
        ));
        apply_to(&mut f, "host", add_op("t2")).unwrap();
        apply_to(&mut f, "host", add_op("t3")).unwrap();
        apply_to(&mut f, "host", add_op("t3")).unwrap();
        let no_adds = Op::Settings(SettingsChange {
            guests_add: Some(false),
            ..Default::default()
        });
        apply_to(&mut f, "host", no_adds).unwrap();
        assert!(matches!(
            apply_to(&mut f, "ben", add_op("t0")),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            apply_to(&mut f, "ben", Op::Next),
            Err(Refusal::Forbidden(_))
        ));
        let skips = Op::Settings(SettingsChange {
            guests_skip: Some(true),
            ..Default::default()
        });
        apply_to(&mut f, "host", skips).unwrap();
        apply_to(&mut f, "ben", Op::Next).unwrap();
    }

    #[test]
    fn roles_hand_over_name_cohosts_and_kick_with_a_ban() {
        let mut f = fixture(None, &["cal"]);
        let role = |u: &str, role| Op::Role {
            user: user(u),
            role,
        };
        assert!(matches!(
            apply_to(&mut f, "ann", role("ben", Role::Cohost)),
            Err(Refusal::Forbidden(_))
        ));
        apply_to(&mut f, "host", role("ann", Role::Cohost)).unwrap();
        assert!(f.state.manages(&user("ann")));
        // A co-host removes a member with a ban; not another co-host.
        let kick = |u: &str, ban| Op::Kick { user: user(u), ban };
        let k = apply_to(&mut f, "ann", kick("cal", true)).unwrap();
        assert_eq!(k.side.kicked, Some((user("cal"), true)));
        assert!(!f.state.is_member(&user("cal")) && f.state.is_banned(&user("cal")));
        apply_to(&mut f, "host", role("ben", Role::Cohost)).unwrap();
        assert!(matches!(
            apply_to(&mut f, "ann", kick("ben", false)),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            apply_to(&mut f, "ann", kick("host", false)),
            Err(Refusal::Forbidden(_))
        ));
        // Handing over: ben is host, the old host a co-host.
        apply_to(&mut f, "host", role("ben", Role::Host)).unwrap();
        assert!(f.state.is_host(&user("ben")));
        assert_eq!(f.state.role_of(&user("host")), Role::Cohost);
        match detail(&apply_to(&mut f, "ben", Op::Unban { user: user("cal") }).unwrap()) {
            ChangeDetail::Unban { user_id } => assert_eq!(user_id, "cal"),
            other => panic!("{other:?}"),
        }
        assert!(!f.state.is_banned(&user("cal")));
    }

    /// What a state shows: to compare before and after an undo.
    fn shown(st: &SessionState) -> (i64, String, Vec<String>, String) {
        (
            st.version(),
            format!("{:?}", st.queue_entries()),
            st.members().iter().map(|m| m.user_id.to_string()).collect(),
            format!(
                "{:?} {:?} {}",
                st.party, st.played_tracks, st.session.host_id
            ),
        )
    }

    fn any_party_op() -> impl Strategy<Value = (usize, u8, usize, bool)> {
        (0usize..4, 0u8..14, 0usize..6, any::<bool>())
    }

    fn party_op(f: &Fixture, kind: u8, pick: usize, flag: bool) -> Op {
        let entries: Vec<EntryId> = f
            .state
            .queue()
            .entries()
            .iter()
            .map(|e| EntryId::from(e.id))
            .collect();
        let entry = entries
            .get(pick % entries.len().max(1))
            .copied()
            .unwrap_or_else(EntryId::new);
        let users = ["host", "ann", "ben", "cal"];
        let tracks = ["t0", "t1", "t2", "t3"];
        match kind {
            0..=3 => add_op(tracks[pick % 4]),
            4 => Op::Play {
                entry: flag.then_some(entry),
            },
            5 => Op::Pause,
            6 => Op::Next,
            7 => Op::Vote { entry, up: flag },
            8 => Op::SkipVote { up: flag },
            9 => Op::Pin { entry },
            10 => settings([OrderMode::Host, OrderMode::Votes, OrderMode::Fair][pick % 3]),
            11 => Op::Kick {
                user: user(users[pick % 4]),
                ban: flag,
            },
            12 => Op::Seek {
                position_ms: pick as i64 * 1000,
            },
            _ => Op::Remove { entry },
        }
    }

    proptest! {
        /// Any run of party ops, undone newest first, leaves the state as
        /// it was (what a failed commit relies on).
        #[test]
        fn undo_restores_every_party_op(ops in proptest::collection::vec(any_party_op(), 1..40)) {
            let mut f = fixture(Some(120_000), &["cal"]);
            for t in ["t0", "t1", "t2"] {
                apply_to(&mut f, "ann", add_op(t)).unwrap();
            }
            let before = shown(&f.state);
            let mut done = Vec::new();
            for (who, kind, pick, flag) in ops {
                let op = party_op(&f, kind, pick, flag);
                let who = ["host", "ann", "ben", "cal"][who];
                if let Ok(e) = apply_to(&mut f, who, op) {
                    done.push(e);
                }
            }
            while let Some(e) = done.pop() {
                f.state.undo(e);
            }
            prop_assert_eq!(shown(&f.state), before);
        }

        /// Fair order ("the fifth track of one guest waits behind the first
        /// of everyone else"): whatever played before, a track added by
        /// someone with nothing queued or playing lands before every other
        /// contributor's second queued track; and the queue stays sorted by
        /// round, so nobody's later track ever overtakes it.
        #[test]
        fn fair_order_puts_a_newcomers_track_before_anyones_second(
            ops in proptest::collection::vec((0usize..4, 0u8..3, 0usize..4), 1..60)
        ) {
            let mut f = fixture(Some(120_000), &["cal"]);
            apply_to(&mut f, "host", settings(OrderMode::Fair)).unwrap();
            for (who, kind, pick) in ops {
                let who = ["host", "ann", "ben", "cal"][who];
                let idle = !adders(&f).iter().any(|a| a == who)
                    && f.state.party.now.as_ref().is_none_or(|n| n.item.added_by.as_str() != who);
                let (by, op) = match kind {
                    0 | 1 => (who, add_op(["t0", "t1", "t2", "t3"][pick])),
                    _ => ("host", Op::Next),
                };
                let Ok(e) = apply_to(&mut f, by, op) else { continue };
                let rounds: Vec<i64> = f.state.queue().entries().iter().map(|e| e.item.round).collect();
                prop_assert!(rounds.windows(2).all(|w| w[0] <= w[1]), "rounds {rounds:?}");
                if kind == 2 || !idle {
                    continue;
                }
                let mine = f.state.queue().index_of(entry_of(&e).uuid()).unwrap();
                let order = adders(&f);
                for x in ["host", "ann", "ben", "cal"].into_iter().filter(|x| *x != who) {
                    if let Some(second) = order.iter().enumerate().filter(|(_, a)| *a == x).nth(1).map(|(i, _)| i) {
                        prop_assert!(mine < second, "{who}'s track at {mine} after {x}'s second at {second} in {order:?}");
                    }
                }
            }
        }

        /// Votes order is a pure function of votes and add times: the queue
        /// is always sorted, and equal votes keep add order.
        #[test]
        fn votes_order_is_always_sorted(
            votes in proptest::collection::vec((0usize..4, 0usize..6, any::<bool>()), 1..50)
        ) {
            let mut f = fixture(None, &["cal"]);
            apply_to(&mut f, "host", settings(OrderMode::Votes)).unwrap();
            for t in ["t0", "t1", "t2", "t3", "t0", "t1"] {
                apply_to(&mut f, "ann", add_op(t)).unwrap();
            }
            for (who, pick, up) in votes {
                let op = party_op(&f, 7, pick, up);
                let _ = apply_to(&mut f, ["host", "ann", "ben", "cal"][who], op);
                let entries = f.state.queue().entries();
                for w in entries.windows(2) {
                    let (a, b) = (&w[0].item, &w[1].item);
                    prop_assert!(
                        a.votes.len() > b.votes.len()
                            || (a.votes.len() == b.votes.len() && (a.added_at, w[0].id) < (b.added_at, w[1].id)),
                        "out of order"
                    );
                }
            }
        }
    }
}
