//! The session actor: owns one GroupSession's queue, version, listeners and
//! exactly-once memory, and serializes every change. It only orchestrates —
//! queue rules live in `queue`, SQL in `persist` — in this order: take every
//! command waiting (group commit), apply ops to the live queue, write them in
//! one transaction, and only after COMMIT ack and broadcast. If the commit
//! fails, every applied op is undone and answered `unavailable`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::committer::{CommitError, Committer};
use super::outbox::Outbox;
use super::persist::{self, BatchWrite, LoggedChange, LoggedInteraction, SessionCommit};
use super::queue::{Applied, Entry, Queue, QueueError};
use super::tracks::TrackCache;
use crate::clock::now_ms;
use crate::config::HubConfig;
use crate::db::sessions::{self, MemberRow};
use crate::error::{Error, Result};
use crate::metrics::{CodeLabels, Metrics, OpLabels};
use audotics_protocol::model::TrackMeta;
use audotics_protocol::model::{PlaylistRef, QueueEntry, SessionRef, Snapshot, Track, User};
use audotics_protocol::{Change, CloseCode, OpKind, ServerMsg};

/// Ops taken into one group commit at most.
const MAX_BATCH: usize = 512;
/// Updates kept in memory to serve `since` resumes without the database.
const RECENT_UPDATES: usize = 1024;
/// A resume missing more than this many updates gets a snapshot instead.
const MAX_REPLAY: i64 = 5000;
/// A queue change sets the session's and playlist's `updatedAt` (what the
/// session list sorts by) at most this often: two more rows per commit
/// otherwise, one of them in four indexes.
const ACTIVITY_RESOLUTION: Duration = Duration::from_secs(5);

pub type ListenerId = u64;

/// Where a queued track comes from.
#[derive(Debug)]
pub enum TrackRef {
    Id(String),
    Meta(TrackMeta),
}

/// A client op, validated for shape by the connection.
#[derive(Debug)]
pub enum Op {
    Add {
        track: TrackRef,
        index: Option<usize>,
    },
    Remove {
        entry_id: Option<Uuid>,
    },
    Reorder {
        entry_id: Option<Uuid>,
        to_index: usize,
        base_version: Option<i64>,
    },
    Interaction {
        track_id: String,
        kind: String,
    },
}

impl Op {
    fn label(&self) -> &'static str {
        match self {
            Op::Add { .. } => "add",
            Op::Remove { .. } => "remove",
            Op::Reorder { .. } => "reorder",
            Op::Interaction { .. } => "interaction",
        }
    }
}

/// Why a join was refused.
#[derive(Clone, Copy, Debug)]
pub enum JoinRefusal {
    NotFound,
    Ended,
    Unavailable,
}

pub enum Command {
    Join {
        user: User,
        since: Option<i64>,
        outbox: Outbox,
        reply: oneshot::Sender<Result<ListenerId, JoinRefusal>>,
    },
    Op {
        listener: ListenerId,
        user_id: String,
        req: String,
        op: Op,
        /// When the connection handed it over (for the wait metric).
        sent: Instant,
    },
    Leave {
        listener: ListenerId,
    },
    Snapshot {
        viewer: String,
        reply: oneshot::Sender<Result<Snapshot>>,
    },
    End {
        reply: oneshot::Sender<Result<()>>,
    },
}

/// A queue entry's payload.
#[derive(Clone, Debug)]
pub struct Item {
    pub track: Arc<Track>,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

struct Listener {
    user_id: String,
    name: String,
    outbox: Outbox,
}

/// An op waiting in the current batch.
struct Pending {
    listener: ListenerId,
    user_id: String,
    req: String,
    op: Op,
}

/// What an applied op will tell everyone once committed.
enum Outcome {
    Change {
        version: i64,
        change: Change,
    },
    Interaction {
        user_id: String,
        track_id: String,
        kind: String,
    },
}

struct Done {
    listener: ListenerId,
    key: (String, String),
    ack_version: i64,
    outcome: Outcome,
    /// Re-sends of the same req in this batch, answered with the same ack.
    waiters: Vec<ListenerId>,
}

pub struct SessionActor {
    id: String,
    shared: Shared,
    rx: mpsc::Receiver<Command>,
    state: Option<Loaded>,
    listeners: HashMap<ListenerId, Listener>,
    next_listener: ListenerId,
    /// Users whose presence changed this round → (name, their new listeners).
    presence_dirty: HashMap<String, (String, Vec<ListenerId>)>,
    /// When a commit of this actor last set the session's `updatedAt`.
    touched: Option<Instant>,
}

/// A session's state once loaded.
struct Loaded {
    session: SessionRef,
    playlist: PlaylistRef,
    version: i64,
    commits: i64,
    queue: Queue<Item>,
    members: Vec<MemberRow>,
    remembered: HashMap<(String, String), i64>,
    recent: VecDeque<(i64, Utf8Bytes)>,
}

/// What every session actor shares with the rest of the hub.
pub struct Shared {
    pub db: PgPool,
    pub committer: Committer,
    pub tracks: Arc<TrackCache>,
    pub metrics: Arc<Metrics>,
    pub config: HubConfig,
    pub shutdown: CancellationToken,
}

impl SessionActor {
    pub fn new(id: String, shared: Shared, rx: mpsc::Receiver<Command>) -> SessionActor {
        SessionActor {
            id,
            shared,
            rx,
            state: None,
            listeners: HashMap::new(),
            next_listener: 1,
            presence_dirty: HashMap::new(),
            touched: None,
        }
    }

    /// Run until ended, idle, or shut down; `on_stop` unregisters the handle.
    pub async fn run(mut self, on_stop: impl FnOnce()) {
        match self.load().await {
            Ok(loaded) => self.state = Some(loaded),
            Err(e) => {
                let refusal = match e {
                    Error::NotFound(_) => JoinRefusal::NotFound,
                    _ => JoinRefusal::Unavailable,
                };
                on_stop();
                self.refuse_all(Some(refusal)).await;
                return;
            }
        }
        self.shared.metrics.live_sessions.inc();
        let mut idle_since = Some(Instant::now());
        loop {
            let idle_deadline = idle_since.map(|t| t + self.shared.config.idle_timeout);
            let first = tokio::select! {
                cmd = self.rx.recv() => match cmd { Some(c) => c, None => break },
                _ = sleep_until(idle_deadline) => {
                    if self.listeners.is_empty() { break }
                    idle_since = None;
                    continue;
                }
                _ = self.shared.shutdown.cancelled() => break,
            };
            let mut cmds = vec![first];
            while cmds.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(c) => cmds.push(c),
                    Err(_) => break,
                }
            }
            let mut batch = Vec::new();
            let mut ended = false;
            for cmd in cmds {
                match cmd {
                    Command::Op {
                        listener,
                        user_id,
                        req,
                        op,
                        sent,
                    } => {
                        self.shared
                            .metrics
                            .op_wait
                            .observe(sent.elapsed().as_secs_f64());
                        batch.push(Pending {
                            listener,
                            user_id,
                            req,
                            op,
                        })
                    }
                    Command::Leave { listener } => self.remove_listener(listener),
                    other => {
                        // Joins, snapshots and ending need the committed state.
                        self.commit(std::mem::take(&mut batch)).await;
                        if self.handle(other).await {
                            ended = true;
                        }
                    }
                }
            }
            self.commit(batch).await;
            self.flush_presence();
            if ended {
                break;
            }
            idle_since = match (self.listeners.is_empty(), idle_since) {
                (true, None) => Some(Instant::now()),
                (true, since) => since,
                (false, _) => None,
            };
        }
        on_stop();
        self.shared.metrics.live_sessions.dec();
        let going_away = self.shared.shutdown.is_cancelled();
        for (_, l) in self.listeners.drain() {
            self.shared.metrics.listeners.dec();
            if going_away {
                l.outbox.close(CloseCode::GoingAway, "hub shutting down");
            }
        }
        // Stopping: drop what is still queued unanswered, which tells each
        // caller to look the session up again (a new actor serves it).
        self.refuse_all(None).await;
    }

    /// Answer whatever is still queued once this actor will not serve it.
    /// `None` drops the replies instead (see `Hub::ask`).
    async fn refuse_all(&mut self, refusal: Option<JoinRefusal>) {
        self.rx.close();
        while let Some(cmd) = self.rx.recv().await {
            let Some(refusal) = refusal else { continue };
            let error = || match refusal {
                JoinRefusal::NotFound => Error::NotFound("session"),
                _ => Error::Unavailable,
            };
            match cmd {
                Command::Join { reply, .. } => {
                    let _ = reply.send(Err(refusal));
                }
                Command::Snapshot { reply, .. } => {
                    let _ = reply.send(Err(error()));
                }
                Command::End { reply } => {
                    let _ = reply.send(Err(error()));
                }
                Command::Op { .. } | Command::Leave { .. } => {}
            }
        }
    }

    async fn load(&self) -> Result<Loaded> {
        let (session, playlist) = sessions::get(&self.shared.db, &self.id)
            .await?
            .ok_or(Error::NotFound("session"))?;
        // A session the old app made without a playlist has no host and no
        // log to write to: it cannot be joined.
        let playlist = playlist.ok_or(Error::NotFound("session"))?;
        let (version, commits) = persist::load_counters(&self.shared.db, &self.id).await?;
        let stored = sessions::queue(&self.shared.db, &self.id).await?;
        let mut entries = Vec::with_capacity(stored.len());
        for e in stored {
            let id = Uuid::parse_str(&e.entry_id).map_err(|e| Error::Internal(e.into()))?;
            let position = super::queue::Position::parse(&e.position)
                .map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))?;
            entries.push(Entry {
                id,
                position,
                item: Item {
                    track: Arc::new(e.track),
                    added_by: e.added_by,
                    added_at: e.added_at,
                },
            });
        }
        // A queue stored under a larger cap still loads; it just takes no adds.
        let cap = self.shared.config.queue_cap.max(entries.len()).max(1);
        let queue = Queue::from_entries(entries, cap)
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored queue: {e}")))?;
        let members = sessions::members(&self.shared.db, &self.id).await?;
        let remembered = persist::remembered_reqs(&self.shared.db, &self.id, &playlist.id).await?;
        Ok(Loaded {
            session: SessionRef {
                id: session.id,
                name: session.name,
                active: session.active,
                host_id: playlist.creator_id.clone(),
            },
            playlist: PlaylistRef {
                id: playlist.id,
                name: playlist.name,
                description: playlist.description,
                spotify_id: playlist.spotify_id,
            },
            version,
            commits,
            queue,
            members,
            remembered,
            recent: VecDeque::new(),
        })
    }

    fn st(&self) -> &Loaded {
        self.state.as_ref().expect("loaded before serving")
    }

    fn st_mut(&mut self) -> &mut Loaded {
        self.state.as_mut().expect("loaded before serving")
    }

    /// Handle a non-op command; true when the session has ended.
    async fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Join {
                user,
                since,
                outbox,
                reply,
            } => {
                let r = self.join(user, since, outbox).await;
                let _ = reply.send(r);
                false
            }
            Command::Snapshot { viewer, reply } => {
                let _ = reply.send(Ok(self.snapshot(&viewer)));
                false
            }
            Command::End { reply } => {
                let r = self.end().await;
                let ended = r.is_ok();
                let _ = reply.send(r);
                ended
            }
            Command::Op { .. } | Command::Leave { .. } => unreachable!("handled in the loop"),
        }
    }

    fn online(&self) -> HashSet<String> {
        self.listeners.values().map(|l| l.user_id.clone()).collect()
    }

    fn snapshot(&self, viewer: &str) -> Snapshot {
        let st = self.st();
        let queue = st
            .queue
            .entries()
            .iter()
            .map(|e| QueueEntry {
                entry_id: e.id.to_string(),
                track: (*e.item.track).clone(),
                added_by: e.item.added_by.clone(),
                added_at: e.item.added_at,
            })
            .collect();
        super::assemble_snapshot(
            st.version,
            st.session.clone(),
            st.playlist.clone(),
            queue,
            st.members.clone(),
            &self.online(),
            viewer,
        )
    }

    async fn join(
        &mut self,
        user: User,
        since: Option<i64>,
        outbox: Outbox,
    ) -> Result<ListenerId, JoinRefusal> {
        if !self.st().session.active {
            return Err(JoinRefusal::Ended);
        }
        if !self.st().members.iter().any(|m| m.0 == user.id) {
            sessions::add_member(&self.shared.db, &self.id, &user.id)
                .await
                .map_err(|_| JoinRefusal::Unavailable)?;
            let members = &mut self.st_mut().members;
            members.push((user.id.clone(), user.name.clone(), user.avatar.clone()));
            members.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        }
        let id = self.next_listener;
        self.next_listener += 1;
        self.listeners.insert(
            id,
            Listener {
                user_id: user.id.clone(),
                name: user.name.clone(),
                outbox: outbox.clone(),
            },
        );
        self.shared.metrics.listeners.inc();
        let version = self.st().version;
        let frames = match since {
            Some(s) if s == version => Some(vec![frame(&ServerMsg::Resumed { version })]),
            Some(s) if s < version && version - s <= MAX_REPLAY => match self.replay(s).await {
                Some(updates) if self.replay_fits(&updates) => {
                    let mut f = vec![frame(&ServerMsg::Resumed { version })];
                    f.extend(updates);
                    Some(f)
                }
                _ => None,
            },
            _ => None,
        };
        let frames =
            frames.unwrap_or_else(|| vec![frame(&ServerMsg::Snapshot(self.snapshot(&user.id)))]);
        for f in frames {
            if outbox.push(f).is_err() {
                self.remove_listener(id);
                return Ok(id);
            }
        }
        self.presence_changed(&user.id, &user.name, Some(id));
        Ok(id)
    }

    /// Whether a replay can be queued to a new listener and still leave it
    /// room for live updates: at most half its outbox (frames and bytes).
    /// A bigger resume would overflow the outbox at once (4008, and the
    /// client's retry with the same `since` would too): it gets a snapshot.
    fn replay_fits(&self, updates: &[Utf8Bytes]) -> bool {
        let bytes: usize = updates.iter().map(|f| f.len()).sum();
        // (`<`: the `resumed` frame goes first.)
        updates.len() < self.shared.config.outbound_frames / 2
            && bytes <= self.shared.config.outbound_bytes / 2
    }

    /// The `update` frames after `since`, from memory or the log.
    async fn replay(&self, since: i64) -> Option<Vec<Utf8Bytes>> {
        let st = self.st();
        if let Some((first, _)) = st.recent.front() {
            if *first <= since + 1 {
                return Some(
                    st.recent
                        .iter()
                        .filter(|(v, _)| *v > since)
                        .map(|(_, f)| f.clone())
                        .collect(),
                );
            }
        }
        let rows = persist::changes_after(&self.shared.db, &st.playlist.id, since)
            .await
            .ok()?;
        let expected = (st.version - since) as usize;
        if rows.len() != expected {
            tracing::warn!(session_id = %self.id, since, "log replay incomplete; sending a snapshot");
            return None;
        }
        Some(
            rows.into_iter()
                .map(|(version, change, at)| {
                    frame(&ServerMsg::Update {
                        version,
                        change,
                        at,
                    })
                })
                .collect(),
        )
    }

    fn remove_listener(&mut self, id: ListenerId) {
        if let Some(l) = self.listeners.remove(&id) {
            self.shared.metrics.listeners.dec();
            self.presence_changed(&l.user_id, &l.name, None);
        }
    }

    /// Note that `user_id`'s presence changed; others hear of it once per
    /// round of commands (a burst of joins costs one frame per user, not one
    /// per pair of listeners).
    fn presence_changed(&mut self, user_id: &str, name: &str, joined: Option<ListenerId>) {
        let entry = self
            .presence_dirty
            .entry(user_id.to_owned())
            .or_insert_with(|| (name.to_owned(), Vec::new()));
        entry.1.extend(joined);
    }

    /// Send the coalesced presence frames. Cutting off a slow listener
    /// changes presence again, so repeat until nothing is left (each round
    /// removes listeners, so this ends).
    fn flush_presence(&mut self) {
        while !self.presence_dirty.is_empty() {
            let dirty = std::mem::take(&mut self.presence_dirty);
            for (user_id, (name, joined)) in dirty {
                let online = self.listeners.values().any(|l| l.user_id == user_id);
                let msg = frame(&ServerMsg::Presence {
                    user_id: user_id.clone(),
                    name,
                    online,
                    listeners: self.listeners.len(),
                });
                // A joiner learned its own state from its snapshot.
                self.broadcast_except(msg, &joined);
            }
        }
    }

    /// Send one shared frame to every listener (but `except`); cut off the
    /// ones that are too far behind.
    fn broadcast(&mut self, msg: Utf8Bytes) {
        self.broadcast_except(msg, &[]);
    }

    fn broadcast_except(&mut self, msg: Utf8Bytes, except: &[ListenerId]) {
        let mut slow = Vec::new();
        for (id, l) in &self.listeners {
            if except.contains(id) {
                continue;
            }
            if l.outbox.push(msg.clone()).is_err() {
                slow.push(*id);
            } else {
                self.shared.metrics.frames_sent.inc();
            }
        }
        for id in slow {
            self.shared.metrics.slow_listener_disconnects.inc();
            tracing::debug!(session_id = %self.id, listener = id, "listener too slow: closing with 4008");
            self.remove_listener(id);
        }
    }

    fn send_to(&mut self, id: ListenerId, msg: Utf8Bytes) {
        let slow = match self.listeners.get(&id) {
            Some(l) => l.outbox.push(msg).is_err(),
            None => false,
        };
        if slow {
            self.shared.metrics.slow_listener_disconnects.inc();
            self.remove_listener(id);
        }
    }

    fn refuse(&mut self, listener: ListenerId, req: &str, e: Error) {
        self.shared
            .metrics
            .ops_refused
            .get_or_create(&CodeLabels {
                code: e.code().as_str(),
            })
            .inc();
        self.send_to(listener, frame(&e.to_frame(Some(req.to_owned()))));
    }

    async fn end(&mut self) -> Result<()> {
        sessions::end(&self.shared.db, &self.id).await?;
        self.st_mut().session.active = false;
        let msg = frame(&ServerMsg::Ended { at: now_ms() });
        for (_, l) in self.listeners.drain() {
            self.shared.metrics.listeners.dec();
            let _ = l.outbox.push(msg.clone());
            l.outbox.close(CloseCode::Ended, "session ended");
        }
        tracing::info!(session_id = %self.id, "session ended");
        Ok(())
    }

    /// Apply, persist and publish one batch of ops (group commit).
    async fn commit(&mut self, batch: Vec<Pending>) {
        if batch.is_empty() {
            return;
        }
        // Exactly once: a remembered req gets its original ack; a req
        // repeated within this batch waits for the first one's outcome.
        let mut fresh: Vec<Pending> = Vec::with_capacity(batch.len());
        let mut repeats: HashMap<(String, String), Vec<ListenerId>> = HashMap::new();
        for p in batch {
            let key = (p.user_id.clone(), p.req.clone());
            if let Some(&version) = self.st().remembered.get(&key) {
                self.send_to(
                    p.listener,
                    frame(&ServerMsg::Ack {
                        req: p.req,
                        version,
                    }),
                );
            } else if fresh.iter().any(|f| f.user_id == key.0 && f.req == key.1) {
                repeats.entry(key).or_default().push(p.listener);
            } else {
                fresh.push(p);
            }
        }
        if fresh.is_empty() {
            return;
        }
        let at = now_ms();
        let started = Instant::now();
        // Look up the tracks the batch names (outside any transaction: the
        // foreign keys check them again at commit).
        let resolved = self.resolve_tracks(&fresh).await;
        self.shared
            .metrics
            .resolve_latency
            .observe(started.elapsed().as_secs_f64());
        let mut tracks = match resolved {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(session_id = %self.id, error = ?e, "cannot look up tracks");
                for p in fresh {
                    for l in std::iter::once(p.listener).chain(
                        repeats
                            .remove(&(p.user_id.clone(), p.req.clone()))
                            .unwrap_or_default(),
                    ) {
                        self.refuse(l, &p.req, Error::Unavailable);
                    }
                }
                return;
            }
        };
        let mut applied: Vec<Applied<Item>> = Vec::new();
        let mut done: Vec<Done> = Vec::new();
        let mut write = BatchWrite::default();
        let mut version = self.st().version;
        for p in fresh {
            let key = (p.user_id.clone(), p.req.clone());
            let label = p.op.label();
            match self.apply(&p, &mut tracks, version, at, &mut write, &mut applied) {
                Ok(outcome) => {
                    if let Outcome::Change { version: v, .. } = &outcome {
                        version = *v;
                    }
                    self.shared
                        .metrics
                        .ops_applied
                        .get_or_create(&OpLabels { op: label })
                        .inc();
                    let waiters = repeats.remove(&key).unwrap_or_default();
                    done.push(Done {
                        listener: p.listener,
                        key,
                        ack_version: version,
                        outcome,
                        waiters,
                    });
                }
                Err(e) => {
                    self.refuse(p.listener, &p.req, e);
                    // Re-sends of a refused op are judged afresh next time.
                    for w in repeats.remove(&key).unwrap_or_default() {
                        self.refuse(
                            w,
                            &p.req,
                            Error::Conflict("the first copy of this req was refused".into()),
                        );
                    }
                }
            }
        }
        if done.is_empty() {
            return;
        }
        let commits = self.st().commits + 1;
        // Track metadata this batch writes (latest wins, per track).
        let mut refreshed: HashMap<String, Arc<Track>> = HashMap::new();
        for t in &write.track_upserts {
            refreshed.insert(t.id.clone(), Arc::new(t.clone()));
        }
        let touch = !write.changes.is_empty()
            && self
                .touched
                .is_none_or(|t| t.elapsed() >= ACTIVITY_RESOLUTION);
        let result = self
            .shared
            .committer
            .commit(SessionCommit {
                session_id: self.id.clone(),
                playlist_id: self.st().playlist.id.clone(),
                version,
                commits,
                at,
                touch,
                write,
            })
            .await;
        let committed = match result {
            Ok(()) => true,
            Err(CommitError::Failed(e)) => {
                tracing::warn!(session_id = %self.id, error = ?e, "commit failed; ops answered unavailable");
                false
            }
            Err(CommitError::Unknown(e)) => {
                tracing::warn!(session_id = %self.id, error = %e, "commit outcome unknown; asking the database");
                match self.learn_outcome(commits).await {
                    Some(committed) => committed,
                    None => {
                        // Shutting down before the database answered: say
                        // nothing. Clients re-send with the same req and the
                        // next hub resolves it against the stored log.
                        while let Some(a) = applied.pop() {
                            self.st_mut().queue.undo(a);
                        }
                        return;
                    }
                }
            }
        };
        if !committed {
            self.shared.metrics.commit_failures.inc();
            while let Some(a) = applied.pop() {
                self.st_mut().queue.undo(a);
            }
            for d in done {
                for l in std::iter::once(d.listener).chain(d.waiters) {
                    self.refuse(l, &d.key.1, Error::Unavailable);
                }
            }
            return;
        }
        for t in refreshed.values() {
            self.shared.tracks.put(t.clone());
        }
        if touch {
            self.touched = Some(Instant::now());
        }
        let st = self.st_mut();
        st.version = version;
        st.commits = commits;
        if !refreshed.is_empty() {
            // Entries queued earlier show the track as now stored.
            for item in st.queue.items_mut() {
                if let Some(t) = refreshed.get(&item.track.id) {
                    item.track = t.clone();
                }
            }
        }
        for d in done {
            let msg = match d.outcome {
                Outcome::Change { version, change } => {
                    let f = frame(&ServerMsg::Update {
                        version,
                        change,
                        at,
                    });
                    let st = self.st_mut();
                    st.recent.push_back((version, f.clone()));
                    if st.recent.len() > RECENT_UPDATES {
                        st.recent.pop_front();
                    }
                    f
                }
                Outcome::Interaction {
                    user_id,
                    track_id,
                    kind,
                } => frame(&ServerMsg::Interaction {
                    user_id,
                    track_id,
                    kind,
                    at,
                }),
            };
            self.broadcast(msg);
            let ack = frame(&ServerMsg::Ack {
                req: d.key.1.clone(),
                version: d.ack_version,
            });
            for l in std::iter::once(d.listener).chain(d.waiters) {
                self.send_to(l, ack.clone());
            }
            self.st_mut().remembered.insert(d.key, d.ack_version);
        }
        self.shared
            .metrics
            .batch_latency
            .observe(started.elapsed().as_secs_f64());
    }

    /// The connection broke during COMMIT: ask the database (retrying until
    /// it answers) whether our commit counter moved.
    /// `None` when the hub shuts down before the database answers.
    async fn learn_outcome(&self, commits: i64) -> Option<bool> {
        let mut delay = Duration::from_millis(50);
        loop {
            match persist::commits(&self.shared.db, &self.id).await {
                Ok(n) => return Some(n >= commits),
                Err(_) if !self.shared.shutdown.is_cancelled() => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(_) => return None,
            }
        }
    }

    /// The tracks `batch` names that are not in the queue already: by id
    /// (adds by `trackId`, interactions) and by Spotify id (adds by metadata).
    async fn resolve_tracks(&self, batch: &[Pending]) -> Result<Tracks> {
        let mut ids = Vec::new();
        let mut spotify = Vec::new();
        let mut found = Tracks::default();
        for p in batch {
            match &p.op {
                Op::Add {
                    track: TrackRef::Id(id),
                    ..
                }
                | Op::Interaction { track_id: id, .. }
                    if self.known_track(id).is_none() =>
                {
                    match self.shared.tracks.get(id) {
                        Some(t) => {
                            found.by_id.insert(id.clone(), t);
                        }
                        None => ids.push(id.clone()),
                    }
                }
                Op::Add {
                    track: TrackRef::Meta(t),
                    ..
                } => spotify.push(t.spotify_id.clone()),
                _ => {}
            }
        }
        if !ids.is_empty() {
            for t in persist::tracks_by_id(&self.shared.db, &ids).await? {
                let t = Arc::new(t);
                self.shared.tracks.put(t.clone());
                found.by_id.insert(t.id.clone(), t);
            }
        }
        if !spotify.is_empty() {
            for t in persist::tracks_by_spotify_id(&self.shared.db, &spotify).await? {
                found.by_spotify_id.insert(t.spotify_id.clone(), t);
            }
        }
        Ok(found)
    }

    /// Apply one op to the live queue (undone later if the commit fails) and
    /// add its rows to the batch. Pure: no I/O.
    fn apply(
        &mut self,
        p: &Pending,
        tracks: &mut Tracks,
        version: i64,
        at: DateTime<Utc>,
        write: &mut BatchWrite,
        applied: &mut Vec<Applied<Item>>,
    ) -> Result<Outcome, Error> {
        let host = self.st().session.host_id == p.user_id;
        match &p.op {
            Op::Add { track, index } => {
                let track = match track {
                    TrackRef::Meta(input) => {
                        // Latest wins: the stored id, the new metadata.
                        let stored = tracks.by_spotify_id.get(&input.spotify_id);
                        let t = Track {
                            id: stored.map_or_else(crate::db::new_id, |t| t.id.clone()),
                            spotify_id: input.spotify_id.clone(),
                            name: input.name.clone(),
                            artists: input.artists.clone(),
                            album: input.album.clone(),
                            popularity: input
                                .popularity
                                .or(stored.map(|t| t.popularity))
                                .unwrap_or(0),
                        };
                        tracks.by_spotify_id.insert(t.spotify_id.clone(), t.clone());
                        write.track_upserts.push(t.clone());
                        Arc::new(t)
                    }
                    TrackRef::Id(id) => self
                        .known_track(id)
                        .or_else(|| tracks.by_id.get(id).cloned())
                        .ok_or(Error::NotFound("track"))?,
                };
                let entry_id = crate::db::new_uuid();
                let item = Item {
                    track: track.clone(),
                    added_by: p.user_id.clone(),
                    added_at: at,
                };
                let a = self
                    .st_mut()
                    .queue
                    .insert(entry_id, *index, item)
                    .map_err(queue_err)?;
                let (landed, position) = match &a {
                    Applied::Inserted { index, entry } => {
                        (*index, entry.position.as_str().to_owned())
                    }
                    _ => unreachable!("insert reports Inserted"),
                };
                applied.push(a);
                let v = version + 1;
                write.inserts.push((
                    entry_id.to_string(),
                    track.id.clone(),
                    p.user_id.clone(),
                    at,
                    position,
                ));
                write.unlink_tracks.retain(|t| *t != track.id);
                write.link_tracks.push(track.id.clone());
                write.changes.push(LoggedChange {
                    version: v,
                    kind: OpKind::Add,
                    entry_id: entry_id.to_string(),
                    track_id: track.id.clone(),
                    user_id: p.user_id.clone(),
                    from_index: None,
                    to_index: Some(landed),
                    req: p.req.clone(),
                });
                Ok(Outcome::Change {
                    version: v,
                    change: Change {
                        op: OpKind::Add,
                        entry_id: entry_id.to_string(),
                        track: Some((*track).clone()),
                        index: Some(landed),
                        from_index: None,
                        to_index: None,
                        by: p.user_id.clone(),
                    },
                })
            }
            Op::Remove { entry_id } => {
                let id = entry_id.ok_or(Error::NotFound("entry"))?;
                let (_, e) = self.st().queue.get(id).ok_or(Error::NotFound("entry"))?;
                if !host && e.item.added_by != p.user_id {
                    return Err(Error::Forbidden(
                        "only the host or the member who added it may remove an entry".into(),
                    ));
                }
                let a = self.st_mut().queue.remove(id).map_err(queue_err)?;
                let (from, track_id) = match &a {
                    Applied::Removed { index, entry } => (*index, entry.item.track.id.clone()),
                    _ => unreachable!("remove reports Removed"),
                };
                applied.push(a);
                let added_here = write.inserts.iter().position(|i| i.0 == id.to_string());
                match added_here {
                    Some(i) => {
                        write.inserts.remove(i);
                    }
                    None => {
                        write.moves.retain(|m| m.0 != id.to_string());
                        write.deletes.push(id.to_string());
                    }
                }
                if !self
                    .st()
                    .queue
                    .entries()
                    .iter()
                    .any(|e| e.item.track.id == track_id)
                {
                    write.link_tracks.retain(|t| *t != track_id);
                    write.unlink_tracks.push(track_id.clone());
                }
                let v = version + 1;
                write.changes.push(LoggedChange {
                    version: v,
                    kind: OpKind::Remove,
                    entry_id: id.to_string(),
                    track_id,
                    user_id: p.user_id.clone(),
                    from_index: Some(from),
                    to_index: None,
                    req: p.req.clone(),
                });
                Ok(Outcome::Change {
                    version: v,
                    change: Change {
                        op: OpKind::Remove,
                        entry_id: id.to_string(),
                        track: None,
                        index: Some(from),
                        from_index: None,
                        to_index: None,
                        by: p.user_id.clone(),
                    },
                })
            }
            Op::Reorder {
                entry_id,
                to_index,
                base_version,
            } => {
                if !host {
                    return Err(Error::Forbidden(
                        "only the host may reorder the queue".into(),
                    ));
                }
                if let Some(b) = base_version {
                    if *b != version {
                        return Err(Error::Conflict(format!(
                            "baseVersion {b} is not the current version {version}"
                        )));
                    }
                }
                let id = entry_id.ok_or(Error::NotFound("entry"))?;
                let a = self
                    .st_mut()
                    .queue
                    .move_to(id, *to_index)
                    .map_err(|e| match e {
                        QueueError::IndexOutOfRange { index, len } => Error::invalid(
                            "toIndex",
                            format!("toIndex {index} is outside 0..{}", len.saturating_sub(1)),
                        ),
                        e => queue_err(e),
                    })?;
                let (from, to, position) = match &a {
                    Applied::Moved {
                        from,
                        to,
                        new_position,
                        ..
                    } => (*from, *to, new_position.as_str().to_owned()),
                    _ => unreachable!("move reports Moved"),
                };
                applied.push(a);
                let track_id = self
                    .st()
                    .queue
                    .get(id)
                    .map(|(_, e)| e.item.track.id.clone())
                    .unwrap_or_default();
                let sid = id.to_string();
                if let Some(ins) = write.inserts.iter_mut().find(|i| i.0 == sid) {
                    ins.4 = position;
                } else if let Some(m) = write.moves.iter_mut().find(|m| m.0 == sid) {
                    m.1 = position;
                } else {
                    write.moves.push((sid.clone(), position));
                }
                let v = version + 1;
                write.changes.push(LoggedChange {
                    version: v,
                    kind: OpKind::Reorder,
                    entry_id: sid.clone(),
                    track_id,
                    user_id: p.user_id.clone(),
                    from_index: Some(from),
                    to_index: Some(to),
                    req: p.req.clone(),
                });
                Ok(Outcome::Change {
                    version: v,
                    change: Change {
                        op: OpKind::Reorder,
                        entry_id: sid,
                        track: None,
                        index: None,
                        from_index: Some(from),
                        to_index: Some(to),
                        by: p.user_id.clone(),
                    },
                })
            }
            Op::Interaction { track_id, kind } => {
                if self.known_track(track_id).is_none() && !tracks.by_id.contains_key(track_id) {
                    return Err(Error::NotFound("track"));
                }
                write.interactions.push(LoggedInteraction {
                    user_id: p.user_id.clone(),
                    track_id: track_id.clone(),
                    kind: kind.clone(),
                    req: p.req.clone(),
                    version,
                });
                Ok(Outcome::Interaction {
                    user_id: p.user_id.clone(),
                    track_id: track_id.clone(),
                    kind: kind.clone(),
                })
            }
        }
    }

    fn known_track(&self, id: &str) -> Option<Arc<Track>> {
        self.st()
            .queue
            .entries()
            .iter()
            .find(|e| e.item.track.id == id)
            .map(|e| e.item.track.clone())
    }
}

/// Tracks looked up for one batch.
#[derive(Default)]
struct Tracks {
    by_id: HashMap<String, Arc<Track>>,
    /// Stored tracks by Spotify id, then the batch's own metadata (latest wins).
    by_spotify_id: HashMap<String, Track>,
}

fn queue_err(e: QueueError) -> Error {
    match e {
        QueueError::IndexOutOfRange { index, len } => Error::invalid(
            "index",
            format!("index {index} is outside the queue of {len} entries"),
        ),
        QueueError::NotFound(_) => Error::NotFound("entry"),
        QueueError::Full { cap } => Error::TooLarge(format!("the queue is full ({cap} entries)")),
        QueueError::DuplicateEntry(_) | QueueError::BadPosition(_) => {
            Error::Internal(anyhow::anyhow!("queue invariant: {e}"))
        }
    }
}

/// Serialize a server message once into shareable frame bytes.
pub fn frame(msg: &ServerMsg) -> Utf8Bytes {
    Utf8Bytes::from(msg.to_json())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
