//! One group commit of a session's ops: dedupe (exactly once) → look up
//! the tracks they name → apply them to the live state → write them in one
//! transaction → resolve an unknown outcome → publish. Nothing is acked or
//! broadcast before COMMIT; a failed commit undoes every applied op and
//! answers them `unavailable`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use audotics_protocol::model::Track;
use audotics_protocol::{CloseCode, Req, ServerMsg, UserId};

use super::listeners::{frame, ListenerId};
use super::rows;
use super::state::{Actor, Catalog, Ctx, Effect, Event, NewIds, Op, SessionState, TrackRef};
use super::{Repeats, ReqKey, SessionActor, ACTIVITY_RESOLUTION};
use crate::clock::now_ms;
use crate::db::commit::{BatchWrite, SessionCommit};
use crate::db::{sessions, tracks};
use crate::error::{Error, Result};
use crate::hub::committer::CommitError;
use crate::metrics::{CodeLabels, OpLabels};

/// An op waiting in the current batch.
pub struct Pending {
    pub origin: Origin,
    pub op: Op,
}

/// Who sent an op, and where its answer goes.
#[derive(Clone)]
pub enum Origin {
    /// A member's op from one of its connections: answered there, and its
    /// req keys exactly-once.
    Member {
        listener: ListenerId,
        user: UserId,
        req: Req,
    },
    /// A change made outside the hub, reflected: nobody is answered.
    Outside,
    /// The session's own (a track's end, the room's skip votes): nobody is
    /// answered.
    Hub,
}

impl Origin {
    fn actor(&self) -> Actor {
        match self {
            Origin::Member { user, .. } => Actor::Member(user.clone()),
            Origin::Outside => Actor::Outside,
            Origin::Hub => Actor::Hub,
        }
    }

    fn key(&self) -> Option<ReqKey> {
        match self {
            Origin::Member { user, req, .. } => Some((user.clone(), req.clone())),
            Origin::Outside | Origin::Hub => None,
        }
    }
}

/// An op applied in this batch, waiting for COMMIT.
struct Done {
    origin: Origin,
    /// The op itself, to commit it alone if its batch is refused.
    op: Op,
    effect: Effect,
    /// Re-sends of the same req in this batch, answered with the same ack.
    waiters: Vec<ListenerId>,
}

/// How writing a batch ended.
enum Persisted {
    Committed,
    /// Certainly not committed: the ops are answered `unavailable`.
    NotCommitted,
    /// Postgres refused the batch's rows: one op's data may fail the
    /// others, so each is committed alone.
    Rejected,
    /// Another hub took the session over (its epoch moved on): nothing was
    /// committed, nobody is answered, and this actor stops. Clients re-send
    /// to the new owner with the same req.
    Deposed,
    /// The outcome was lost and the hub shut down before the database could
    /// say: nobody is answered. Clients re-send with the same req and the
    /// next hub resolves it against the stored log — never `unavailable` for
    /// an op that may have committed.
    Unresolved,
}

/// Split a batch for exactly-once: ops whose req was committed before are
/// answered with their original ack at once; a req repeated within the
/// batch waits for its first copy's outcome.
fn dedupe(
    batch: Vec<Pending>,
    state: &SessionState,
) -> (Vec<Pending>, Repeats, Vec<(ListenerId, Req, i64)>) {
    let mut fresh: Vec<Pending> = Vec::with_capacity(batch.len());
    let mut repeats = Repeats::new();
    let mut answered = Vec::new();
    for p in batch {
        let Origin::Member {
            listener,
            user,
            req,
        } = &p.origin
        else {
            fresh.push(p);
            continue;
        };
        if let Some(version) = state.answered(user, req) {
            answered.push((*listener, req.clone(), version));
        } else if fresh
            .iter()
            .any(|f| f.origin.key().is_some_and(|(u, r)| u == *user && r == *req))
        {
            repeats
                .entry((user.clone(), req.clone()))
                .or_default()
                .push(*listener);
        } else {
            fresh.push(p);
        }
    }
    (fresh, repeats, answered)
}

impl SessionActor {
    /// Apply, persist and publish one batch of ops (group commit).
    pub(super) async fn commit(&mut self, batch: Vec<Pending>) {
        if batch.is_empty() || self.deposed {
            return;
        }
        let (fresh, mut repeats, answered) = dedupe(batch, &self.state);
        for (listener, req, version) in answered {
            let ack = ServerMsg::Ack {
                req: req.into_string(),
                version,
            };
            self.audience.send_to(listener, frame(&ack));
        }
        if fresh.is_empty() {
            return;
        }
        let at = now_ms();
        let started = Instant::now();
        // Look up the tracks the batch names (outside any transaction: the
        // foreign keys check them again at commit).
        let looked_up = self.look_up_tracks(&fresh).await;
        self.shared
            .metrics
            .resolve_latency
            .observe(started.elapsed().as_secs_f64());
        let mut catalog = match looked_up {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look up tracks");
                for p in fresh {
                    let waiters = p
                        .origin
                        .key()
                        .and_then(|k| repeats.remove(&k))
                        .unwrap_or_default();
                    self.refuse_all(&p.origin, waiters, || Error::Unavailable);
                }
                return;
            }
        };
        let (done, write) = self.apply_all(fresh, repeats, &mut catalog, at);
        if done.is_empty() {
            return;
        }
        match self.persist(write, at).await {
            Persisted::Committed => self.publish(done, at),
            Persisted::NotCommitted => {
                self.roll_back(done, true);
            }
            Persisted::Rejected if done.len() == 1 => {
                self.roll_back(done, true);
            }
            Persisted::Rejected => {
                let retry = self.roll_back(done, false);
                for ops in retry {
                    Box::pin(self.commit(ops)).await;
                }
            }
            Persisted::Unresolved => {
                self.roll_back(done, false);
            }
            Persisted::Deposed => {
                self.roll_back(done, false);
                self.deposed = true;
            }
        }
        self.shared
            .metrics
            .batch_latency
            .observe(started.elapsed().as_secs_f64());
    }

    /// Apply each op to the live state; refusals are answered at once. The
    /// applied ones and their rows come back, waiting for COMMIT.
    fn apply_all(
        &mut self,
        fresh: Vec<Pending>,
        mut repeats: Repeats,
        catalog: &mut Catalog,
        at: chrono::DateTime<chrono::Utc>,
    ) -> (Vec<Done>, BatchWrite) {
        let mut done: Vec<Done> = Vec::new();
        let mut write = BatchWrite::default();
        for p in fresh {
            let mut ctx = Ctx {
                at,
                catalog,
                ids: &mut NewIds,
            };
            let key = p.origin.key();
            let waiters = key
                .as_ref()
                .and_then(|k| repeats.remove(k))
                .unwrap_or_default();
            match self.state.apply(&p.op, &p.origin.actor(), &mut ctx) {
                Ok(effect) => {
                    let op = p.op.label();
                    self.shared
                        .metrics
                        .ops_applied
                        .get_or_create(&OpLabels { op })
                        .inc();
                    let req = key.as_ref().map(|(_, r)| r);
                    rows::add(&mut write, &effect, req, &self.state);
                    done.push(Done {
                        origin: p.origin,
                        waiters,
                        op: p.op,
                        effect,
                    });
                }
                Err(refusal) => {
                    let Origin::Member { listener, req, .. } = &p.origin else {
                        tracing::debug!(op = p.op.label(), %refusal, "a change from outside does not apply");
                        continue;
                    };
                    self.refuse(*listener, req, refusal.into());
                    // Re-sends of a refused op are judged afresh next time.
                    self.refuse_each(waiters, req, || {
                        Error::Conflict("the first copy of this req was refused".into())
                    });
                }
            }
        }
        (done, write)
    }

    /// Undo a batch that did not commit, newest op first; when it certainly
    /// did not (`answer`), answer its ops `unavailable` (safe to retry).
    /// Returns each op with its re-sends, oldest first, as a batch of its own
    /// (to commit alone).
    fn roll_back(&mut self, mut done: Vec<Done>, answer: bool) -> Vec<Vec<Pending>> {
        let mut ops = Vec::with_capacity(done.len());
        while let Some(d) = done.pop() {
            self.state.undo(d.effect);
            if answer {
                self.refuse_all(&d.origin, d.waiters, || Error::Unavailable);
                continue;
            }
            let mut one = vec![Pending {
                origin: d.origin.clone(),
                op: d.op.clone(),
            }];
            if let Origin::Member { user, req, .. } = &d.origin {
                one.extend(d.waiters.into_iter().map(|listener| Pending {
                    origin: Origin::Member {
                        listener,
                        user: user.clone(),
                        req: req.clone(),
                    },
                    op: d.op.clone(),
                }));
            }
            ops.push(one);
        }
        ops.reverse();
        ops
    }

    /// Write the batch. A commit whose outcome is unknown is resolved
    /// against the database before anyone is answered.
    async fn persist(&mut self, write: BatchWrite, at: chrono::DateTime<chrono::Utc>) -> Persisted {
        let commits = self.commits + 1;
        let touch = !write.changes.is_empty()
            && self
                .touched
                .is_none_or(|t| t.elapsed() >= ACTIVITY_RESOLUTION);
        let upserts: HashMap<String, Arc<Track>> = write
            .track_upserts
            .iter()
            .map(|t| (t.id.clone(), t.clone()))
            .collect();
        let result = self
            .shared
            .committer
            .commit(SessionCommit {
                session_id: self.id.to_string(),
                playlist_id: self.state.playlist.id.clone(),
                version: self.state.version(),
                commits,
                epoch: self.epoch,
                at,
                touch,
                write,
            })
            .await;
        let committed = match result {
            Ok(()) => true,
            Err(CommitError::Failed(e)) => {
                tracing::warn!(error = %e, "commit failed; ops answered unavailable");
                false
            }
            Err(CommitError::Fenced) => {
                tracing::warn!("another hub took the session over; stopping");
                return Persisted::Deposed;
            }
            Err(CommitError::Rejected(e)) => {
                tracing::warn!(error = %e, "Postgres refused a batch");
                self.shared.metrics.commit_failures.inc();
                return Persisted::Rejected;
            }
            Err(CommitError::Unknown(e)) => {
                tracing::warn!(error = %e, "commit outcome unknown; asking the database");
                match self.learn_outcome(commits).await {
                    Some(committed) => committed,
                    None => return Persisted::Unresolved,
                }
            }
        };
        if !committed {
            self.shared.metrics.commit_failures.inc();
            return Persisted::NotCommitted;
        }
        self.commits = commits;
        if touch {
            self.touched = Some(Instant::now());
        }
        if !upserts.is_empty() {
            self.shared.catalogs.invalidate();
            for t in upserts.values() {
                self.shared.tracks.put(t.clone());
            }
            // Entries queued earlier show the track as now stored.
            self.state.refresh_tracks(&upserts);
        }
        Persisted::Committed
    }

    /// After COMMIT: every listener gets each change (or reaction), then
    /// the sender (and its re-sends) the ack.
    fn publish(&mut self, done: Vec<Done>, at: chrono::DateTime<chrono::Utc>) {
        if !done.is_empty() {
            self.upnext.touch();
        }
        for d in done {
            if let Event::Reaction(r) = &d.effect.event {
                self.upnext
                    .react(&r.user, r.track.as_str(), &r.kind, at.timestamp_millis());
            }
            for r in &d.effect.side.reactions {
                self.upnext
                    .react(&r.user, r.track.as_str(), &r.kind, at.timestamp_millis());
            }
            match &d.effect.event {
                Event::Change(record) => {
                    let f = frame(&record.update());
                    self.recent.push(record.version, f.clone());
                    self.audience.update(record.version, f);
                }
                Event::Reaction(r) => self.audience.reaction(frame(&ServerMsg::Interaction {
                    user_id: r.user.to_string(),
                    track_id: r.track.to_string(),
                    kind: r.kind.clone(),
                    at,
                })),
            }
            if let Some((user, banned)) = &d.effect.side.kicked {
                let code = if *banned {
                    CloseCode::Banned
                } else {
                    CloseCode::Removed
                };
                self.audience.kick(user, code);
            }
            let Origin::Member {
                listener,
                user,
                req,
            } = d.origin
            else {
                continue;
            };
            let ack = frame(&ServerMsg::Ack {
                req: req.to_string(),
                version: d.effect.version,
            });
            for l in std::iter::once(listener).chain(d.waiters) {
                self.audience.send_to(l, ack.clone());
            }
            self.state.remember(user, req, d.effect.version);
        }
    }

    /// The connection broke during COMMIT: ask the database (retrying until
    /// it answers) whether our commit counter moved. `None` when the hub
    /// shuts down before the database answers.
    async fn learn_outcome(&self, commits: i64) -> Option<bool> {
        let mut delay = Duration::from_millis(50);
        loop {
            match sessions::commits(&self.shared.db, self.id.as_str()).await {
                Ok(n) => return Some(n >= commits),
                Err(_) if !self.shared.shutdown.is_cancelled() => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(_) => return None,
            }
        }
    }

    /// The tracks `batch` names that the queue does not hold already: by id
    /// (adds by `trackId`, reactions) and by Spotify id (adds by metadata).
    async fn look_up_tracks(&self, batch: &[Pending]) -> Result<Catalog> {
        let mut ids = Vec::new();
        let mut spotify = Vec::new();
        let mut found = Catalog::default();
        for p in batch {
            if let Some(id) = p.op.track_id() {
                if self.state.queued_track(id.as_str()).is_some() {
                    continue;
                }
                match self.shared.tracks.get(id.as_str()) {
                    Some(t) => {
                        found.by_id.insert(id.to_string(), t);
                    }
                    None => ids.push(id.to_string()),
                }
            } else if let Op::Add {
                track: TrackRef::Meta(t),
                ..
            } = &p.op
            {
                spotify.push(t.spotify_id.clone());
            }
        }
        if !ids.is_empty() {
            for t in tracks::by_ids(&self.shared.db, &ids).await? {
                let t = Arc::new(t);
                self.shared.tracks.put(t.clone());
                found.by_id.insert(t.id.clone(), t);
            }
        }
        if !spotify.is_empty() {
            for t in tracks::by_spotify_ids(&self.shared.db, &spotify).await? {
                found
                    .by_spotify_id
                    .insert(t.spotify_id.clone(), Arc::new(t));
            }
        }
        Ok(found)
    }

    /// Refuse a member's op to its sender and its re-sends (an op from
    /// outside has nobody to tell).
    fn refuse_all(&mut self, origin: &Origin, waiters: Vec<ListenerId>, error: impl Fn() -> Error) {
        if let Origin::Member { listener, req, .. } = origin {
            let all = std::iter::once(*listener).chain(waiters);
            self.refuse_each(all, req, error);
        }
    }

    /// Refuse the op `req` to each of `listeners` (its sender and re-sends).
    fn refuse_each(
        &mut self,
        listeners: impl IntoIterator<Item = ListenerId>,
        req: &Req,
        error: impl Fn() -> Error,
    ) {
        for l in listeners {
            self.refuse(l, req, error());
        }
    }

    fn refuse(&mut self, listener: ListenerId, req: &Req, e: Error) {
        self.shared
            .metrics
            .ops_refused
            .get_or_create(&CodeLabels {
                code: e.code().as_str(),
            })
            .inc();
        self.audience
            .send_to(listener, frame(&e.to_frame(Some(req.to_string()))));
    }
}
