//! The session actor: one per active GroupSession, the only writer of its
//! state. It only orchestrates, in this order: take every command waiting
//! (group commit), apply the ops ([`state`], pure rules), write them in one
//! transaction ([`commit`]), and only after COMMIT ack and broadcast
//! ([`listeners`]). Joins and resumes are in [`join`]. Reached only through
//! `hub::SessionHandle`.

pub mod audience;
mod commit;
pub(crate) mod join;
pub mod listeners;
pub mod load;
pub mod owner;
pub mod parse;
pub mod party;
mod rows;
pub mod state;
pub mod upnext;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use audotics_protocol::model::{Snapshot, User};
use audotics_protocol::{CloseCode, Req, ServerMsg, SessionId, UserId};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::committer::Committer;
use super::outbox::Outbox;
use super::registry::Registry;
use super::relay::RelayHandle;
use super::snapshot;
use super::tracks::TrackCache;
use crate::clock::now_ms;
use crate::cluster::wire::{JoinReply, OpReply, Report};
use crate::cluster::Cluster;
use crate::config::HubConfig;
use crate::db::sessions;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use audience::{Audience, Owned, PresenceWindow};
use commit::Origin;
use listeners::Listeners;
pub use listeners::{frame, Asks, ListenerId};
use state::SessionState;
pub use state::{Op, TrackRef};

/// Ops taken into one group commit at most.
const MAX_BATCH: usize = 512;

/// Why a join was refused.
#[derive(Clone, Copy, Debug)]
pub enum JoinRefusal {
    NotFound,
    Ended,
    /// A host banned this user from the session.
    Banned,
    Unavailable,
}

/// What the rest of the hub asks of a session actor.
pub enum Command {
    Join {
        user: User,
        since: Option<i64>,
        /// `suggestions` frames, or only to watch.
        asks: Asks,
        outbox: Outbox,
        reply: oneshot::Sender<Result<ListenerId, JoinRefusal>>,
    },
    Op {
        listener: ListenerId,
        user: UserId,
        req: Req,
        op: Op,
        /// When the connection handed it over (for the wait metric).
        sent: Instant,
    },
    /// Stop listening; `done` is told once the listener is gone, after
    /// the answers to the ops it sent before.
    Leave {
        listener: ListenerId,
        done: oneshot::Sender<()>,
    },
    Snapshot {
        viewer: UserId,
        reply: oneshot::Sender<Result<Snapshot>>,
    },
    End {
        reply: oneshot::Sender<Result<()>>,
    },
    /// The database changed outside the hub (a notification): reconcile.
    Reconcile,
    /// Cluster: an op forwarded by a node (this one too), answered through
    /// `reply`.
    Forwarded {
        user: UserId,
        req: Req,
        op: Op,
        reply: oneshot::Sender<OpReply>,
        sent: Instant,
    },
    /// Cluster: a listener on some node joins.
    RemoteJoin {
        user: User,
        since: Option<i64>,
        asks: Asks,
        reply: oneshot::Sender<JoinReply>,
    },
    /// Cluster: a node's listeners changed.
    Presence(Report),
    /// A suggestions computation ended (sent by the actor's own task).
    Suggested(Box<upnext::Done>),
    /// The latest suggestions (computed now when there are none yet).
    Suggestions {
        reply: oneshot::Sender<(i64, Vec<audotics_protocol::party::Suggested>)>,
    },
}

/// What an actor serving a session for a whole cluster holds: the lease
/// (cancelled if it is lost) and the cluster to publish to.
pub struct Ownership {
    pub cluster: Cluster,
    /// This node's relays: its own hears the actor's events directly.
    pub relays: Arc<Registry<RelayHandle>>,
    pub lost: CancellationToken,
}

/// What every session actor shares with the rest of the hub.
pub struct Shared {
    pub db: PgPool,
    pub committer: Committer,
    pub tracks: Arc<TrackCache>,
    pub metrics: Arc<Metrics>,
    pub config: HubConfig,
    pub shutdown: CancellationToken,
    /// The catalog suggestions score.
    pub catalogs: Arc<upnext::Catalogs>,
    /// Loads sessions for their actors, many at once.
    pub loader: Arc<load::Loader>,
}

struct SessionActor {
    id: SessionId,
    shared: Shared,
    rx: mpsc::Receiver<Command>,
    state: SessionState,
    audience: Audience,
    /// The ownership epoch this actor loaded the session under: its commits
    /// change nothing once another hub has taken the session over.
    epoch: i64,
    /// A commit found the epoch moved on: stop without another word.
    deposed: bool,
    /// Group commits so far (stored beside the version): how a commit whose
    /// outcome was lost is resolved.
    commits: i64,
    /// The last updates sent, to serve resumes without the database.
    recent: join::Recent,
    /// When a commit of this actor last set the session's `updatedAt`.
    touched: Option<Instant>,
    /// "Up next for this room".
    upnext: upnext::UpNext,
    /// When presence may go out next (a crowd hears it once a second).
    window: PresenceWindow,
    /// This actor's own inbox, for its background work to report back.
    me: mpsc::WeakSender<Command>,
    /// Suggestion requests waiting for the computation in flight.
    waiting: Vec<oneshot::Sender<(i64, Vec<audotics_protocol::party::Suggested>)>>,
}

/// Load session `id` and serve it until it ends, idles out, or the hub
/// shuts down; `on_stop` unregisters the actor's handle first.
pub async fn run(
    id: SessionId,
    shared: Shared,
    mut rx: mpsc::Receiver<Command>,
    tx: mpsc::WeakSender<Command>,
    ownership: Option<Ownership>,
    on_stop: impl FnOnce(),
) {
    // A cluster owner takes requests from other nodes (from before it has
    // loaded: they wait in its inbox).
    let forwarding = CancellationToken::new();
    let me = tx.clone();
    if let Some(o) = &ownership {
        let subject = o.cluster.requests_subject(id.as_str());
        match o.cluster.subscribe(subject).await {
            Ok(sub) => {
                let forward = owner::forward(sub, tx, o.cluster.clone());
                let stop = forwarding.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = forward => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the session's requests");
                on_stop();
                o.cluster.leases().release(id.as_str(), &o.lost).await;
                refuse_all(&mut rx, Some(JoinRefusal::Unavailable)).await;
                return;
            }
        }
    }
    let _forwarding = forwarding.drop_guard();
    let loading = std::time::Instant::now();
    let load::Loaded {
        state,
        commits,
        epoch,
        reactions,
    } = match shared.loader.load(id.as_str()).await {
        Ok(loaded) => loaded,
        Err(e) => {
            let refusal = match e {
                Error::NotFound(_) => JoinRefusal::NotFound,
                e => {
                    tracing::warn!(error = %e, "cannot load the session");
                    JoinRefusal::Unavailable
                }
            };
            on_stop();
            if let Some(o) = &ownership {
                o.cluster.leases().release(id.as_str(), &o.lost).await;
            }
            refuse_all(&mut rx, Some(refusal)).await;
            return;
        }
    };
    let (audience, lost) = match &ownership {
        None => (
            Audience::Local(Listeners::new(shared.metrics.clone())),
            None,
        ),
        Some(o) => {
            let owned = Owned::new(
                o.cluster.clone(),
                o.relays.clone(),
                id.clone(),
                epoch,
                state.version(),
            );
            (Audience::Cluster(Box::new(owned)), Some(o.lost.clone()))
        }
    };
    let mut upnext = upnext::UpNext::default();
    upnext.remember(upnext::stored_reactions(reactions));
    tracing::debug!(
        session_id = %id,
        ms = loading.elapsed().as_millis() as u64,
        "session loaded"
    );
    let actor = SessionActor {
        id: id.clone(),
        shared,
        rx,
        state,
        audience,
        epoch,
        deposed: false,
        window: PresenceWindow::default(),
        commits,
        recent: join::Recent::default(),
        touched: None,
        upnext,
        me,
        waiting: Vec::new(),
    };
    actor.serve(lost, on_stop).await;
    if let Some(o) = &ownership {
        o.cluster.leases().release(id.as_str(), &o.lost).await;
    }
}

/// Answer whatever is still queued once no actor will serve it. `None`
/// drops the replies instead, which tells each caller to look the session
/// up again (see `Hub::ask`).
async fn refuse_all(rx: &mut mpsc::Receiver<Command>, refusal: Option<JoinRefusal>) {
    rx.close();
    while let Some(cmd) = rx.recv().await {
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
            Command::RemoteJoin { reply, .. } => {
                let _ = reply.send(match refusal {
                    JoinRefusal::NotFound => JoinReply::NotFound,
                    JoinRefusal::Ended => JoinReply::Ended,
                    JoinRefusal::Banned => JoinReply::Banned,
                    JoinRefusal::Unavailable => JoinReply::Unavailable,
                });
            }
            Command::Op { .. }
            | Command::Leave { .. }
            | Command::Reconcile
            | Command::Forwarded { .. }
            | Command::Presence(_)
            | Command::Suggested(_)
            | Command::Suggestions { .. } => {}
        }
    }
}

impl SessionActor {
    async fn serve(mut self, lost: Option<CancellationToken>, on_stop: impl FnOnce()) {
        self.shared.metrics.live_sessions.inc();
        let mut idle_since = Some(Instant::now());
        // What the old app changed while no actor served the session (or,
        // for a session it made, its tracks) becomes versioned updates now.
        // An ended session is served as it is (joins hear it ended).
        let ended = self.state.session.active && self.reconcile().await;
        if let Some(owned) = self.audience.owned() {
            // Relays everywhere report their listeners to the new owner.
            owned.announce();
        }
        // Tracks that ended while no hub served the session advance now,
        // before anyone joins (each starts where the last ended).
        while !ended && !self.deposed {
            match self.state.advance_due() {
                Some(end) if end <= now_ms() => {
                    let op = Op::Advance {
                        reason: party::Advance::Ended,
                        at: Some(end),
                    };
                    let version = self.state.version();
                    self.by_hub(op).await;
                    if self.state.version() == version {
                        break;
                    }
                }
                _ => break,
            }
        }
        let lost = lost.unwrap_or_default();
        let clustered = self.audience.owned().is_some();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            if ended || self.deposed {
                break;
            }
            let idle_deadline = idle_since.map(|t| t + self.shared.config.idle_timeout);
            let track_end = self.state.advance_due();
            let first = tokio::select! {
                cmd = self.rx.recv() => match cmd { Some(c) => c, None => break },
                _ = sleep_until(idle_deadline) => {
                    if self.audience.is_empty() { break }
                    idle_since = None;
                    continue;
                }
                _ = self.shared.shutdown.cancelled() => break,
                _ = lost.cancelled() => {
                    tracing::warn!("lease lost: this node no longer serves the session");
                    self.deposed = true;
                    break;
                }
                _ = tick.tick(), if clustered => {
                    if let Some(owned) = self.audience.owned() {
                        owned.tick();
                    }
                    continue;
                }
                _ = sleep_until(self.window.due) => {
                    self.window.due = None;
                    self.flush_presence();
                    continue;
                }
                _ = sleep_until(self.upnext.due), if self.upnext.ready() => {
                    self.suggest();
                    continue;
                }
                _ = sleep_until_time(track_end) => {
                    // What plays reached its end: the next entry plays.
                    let op = Op::Advance { reason: party::Advance::Ended, at: track_end };
                    self.by_hub(op).await;
                    continue;
                }
            };
            if self.round(first).await {
                break;
            }
            idle_since = match (self.audience.is_empty(), idle_since) {
                (true, None) => Some(Instant::now()),
                (true, since) => since,
                (false, _) => None,
            };
        }
        on_stop();
        self.shared.metrics.live_sessions.dec();
        if self.deposed {
            self.shared.metrics.deposed.inc();
        }
        self.audience.stop(self.shared.shutdown.is_cancelled());
        // Stopping: drop what is still queued unanswered, which tells each
        // caller to look the session up again (a new actor serves it).
        refuse_all(&mut self.rx, None).await;
    }

    /// Handle `first` and every command already waiting; ops between other
    /// commands form one group commit. True when the session has ended.
    async fn round(&mut self, first: Command) -> bool {
        let mut cmds = vec![first];
        while cmds.len() < MAX_BATCH {
            match self.rx.try_recv() {
                Ok(c) => cmds.push(c),
                Err(_) => break,
            }
        }
        let mut batch = Vec::new();
        let mut ended = false;
        let mut reconcile = false;
        // After the round's commit: a leave right behind its ops gets their
        // acks first.
        let mut leaves = Vec::new();
        for cmd in cmds {
            match cmd {
                Command::Op { .. } | Command::Forwarded { .. } => {
                    batch.extend(self.pending(cmd));
                }
                Command::Reconcile => reconcile = true,
                Command::Leave { .. } => leaves.push(cmd),
                Command::Presence(_) | Command::Suggested(_) | Command::Suggestions { .. } => {
                    self.aside(cmd)
                }
                other => {
                    // Joins, snapshots and ending see the committed state.
                    self.commit(std::mem::take(&mut batch)).await;
                    ended |= self.handle(other).await;
                }
            }
        }
        self.commit(batch).await;
        for leave in leaves {
            self.aside(leave);
        }
        if reconcile && !ended && !self.deposed {
            ended = self.reconcile().await;
        }
        self.settle(ended).await;
        ended || self.deposed
    }

    /// An op to commit in this round: from a local member, or forwarded by
    /// another node (answered over NATS, so only while this node owns it).
    fn pending(&mut self, cmd: Command) -> Option<commit::Pending> {
        let (listener, user, req, op, sent) = match cmd {
            Command::Op {
                listener,
                user,
                req,
                op,
                sent,
            } => (listener, user, req, op, sent),
            Command::Forwarded {
                user,
                req,
                op,
                reply,
                sent,
            } => {
                let listener = self.audience.owned()?.responder(reply);
                (listener, user, req, op, sent)
            }
            _ => return None,
        };
        let waited = sent.elapsed().as_secs_f64();
        self.shared.metrics.op_wait.observe(waited);
        let origin = Origin::Member {
            listener,
            user,
            req,
        };
        Some(commit::Pending { origin, op })
    }

    /// Commands that neither commit nor need the committed state: presence
    /// reports, leaves, and suggestions asked for or computed.
    fn aside(&mut self, cmd: Command) {
        match cmd {
            Command::Presence(report) => {
                if let Some(owned) = self.audience.owned() {
                    owned.report(report);
                }
            }
            Command::Leave { listener, done } => {
                if let Some(l) = self.audience.local() {
                    l.remove(listener);
                }
                let _ = done.send(());
            }
            Command::Suggested(done) => {
                if let Some(f) = self.upnext.done(*done) {
                    self.audience.suggestions(f);
                }
                if self.upnext.ready() {
                    let latest = self
                        .upnext
                        .latest()
                        .unwrap_or((self.state.version(), Vec::new()));
                    for w in self.waiting.drain(..) {
                        let _ = w.send(latest.clone());
                    }
                }
            }
            Command::Suggestions { reply } => match self.upnext.latest() {
                Some(latest) => {
                    let _ = reply.send(latest);
                }
                None => {
                    self.waiting.push(reply);
                    if self.upnext.ready() {
                        self.suggest();
                    }
                }
            },
            _ => {}
        }
    }

    /// After a round: presence changes go out (and make suggestions due),
    /// and, unless it ended, a skip vote that the room as it is now carries
    /// advances playback.
    async fn settle(&mut self, ended: bool) {
        if self.audience.presence_pending() {
            self.upnext.touch();
        }
        self.flush_presence();
        if !ended
            && !self.state.party.skip_votes.is_empty()
            && self.state.skip_due(&self.audience.online())
        {
            let op = Op::Advance {
                reason: party::Advance::SkipVotes,
                at: None,
            };
            self.by_hub(op).await;
        }
    }

    /// Start computing suggestions for the room as it is now (if anyone is
    /// listening); the result comes back as `Command::Suggested`.
    fn suggest(&mut self) {
        if self.audience.is_empty() && self.waiting.is_empty() {
            self.upnext.due = None;
            return;
        }
        let online = self.audience.online();
        let members: Vec<(UserId, String)> = self
            .state
            .members()
            .iter()
            .filter(|m| online.contains(&m.user_id))
            .map(|m| (m.user_id.clone(), m.name.clone()))
            .collect();
        let st = &self.state;
        let mut excluded: std::collections::HashSet<String> = st.played_tracks.clone();
        let mut history: Vec<String> = st
            .party
            .history
            .iter()
            .map(|h| h.item.track.id.clone())
            .collect();
        if let Some(now) = &st.party.now {
            excluded.insert(now.item.track.id.clone());
            history.push(now.item.track.id.clone());
        }
        for e in st.queue().entries() {
            excluded.insert(e.item.track.id.clone());
            history.push(e.item.track.id.clone());
        }
        let inputs = self.upnext.start(st.version(), members, excluded, history);
        let (db, catalogs, tracks) = (
            self.shared.db.clone(),
            self.shared.catalogs.clone(),
            self.shared.tracks.clone(),
        );
        let me = self.me.clone();
        tokio::spawn(async move {
            let done = upnext::compute(inputs, db, catalogs, tracks).await;
            if let Some(tx) = me.upgrade() {
                let _ = tx.send(Command::Suggested(Box::new(done))).await;
            }
        });
    }

    /// Commit an op of the session itself (nobody to answer).
    async fn by_hub(&mut self, op: Op) {
        let pending = commit::Pending {
            origin: Origin::Hub,
            op,
        };
        self.commit(vec![pending]).await;
        self.flush_presence();
    }

    /// Send presence changes, unless a crowd heard some less than
    /// [`CROWD_WINDOW`] ago (then the window's end sends them).
    fn flush_presence(&mut self) {
        if self.audience.presence_pending()
            && self.window.open(self.audience.crowd(), Instant::now())
        {
            self.audience.flush_presence();
        }
    }

    /// Make the session agree with what the database says outside the hub
    /// (the old app's changes): end it if it was deleted or deactivated, and
    /// commit its track and member changes as versioned updates. True when
    /// the session has ended.
    async fn reconcile(&mut self) -> bool {
        let db = &self.shared.db;
        let found = match sessions::refs(db, self.id.as_str()).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the session to reconcile it");
                return false;
            }
        };
        let live = found.filter(|(s, p)| s.active && p.id == self.state.playlist.id);
        if live.is_none() {
            if !self.state.session.active {
                return false;
            }
            self.end_outside();
            return true;
        }
        let outside = async {
            let linked = sessions::links(db, &self.state.playlist.id).await?;
            let members = sessions::members(db, self.id.as_str()).await?;
            Ok::<_, Error>((linked, members))
        };
        let (linked, members) = match outside.await {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the session to reconcile it");
                return false;
            }
        };
        let ops = self.state.reconcile(&linked, &members);
        if ops.is_empty() {
            return false;
        }
        tracing::info!(
            changes = ops.len(),
            "reflecting changes made outside the hub"
        );
        let gone: Vec<UserId> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Member {
                    member,
                    present: false,
                } => Some(member.user_id.clone()),
                _ => None,
            })
            .collect();
        let batch = ops
            .into_iter()
            .map(|op| commit::Pending {
                origin: Origin::Outside,
                op,
            })
            .collect();
        self.commit(batch).await;
        for user in gone.iter().filter(|u| !self.state.is_member(u)) {
            self.audience.kick(user, CloseCode::Forbidden);
        }
        false
    }

    /// The session was ended or deleted outside the hub: everyone is told,
    /// as when the host ends it.
    fn end_outside(&mut self) {
        self.state.end();
        self.audience.end(frame(&ServerMsg::Ended { at: now_ms() }));
        tracing::info!("session ended outside the hub");
    }

    /// Handle a command other than an op or a leave; true when the session
    /// has ended.
    async fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Join {
                user,
                since,
                asks,
                outbox,
                reply,
            } => {
                let r = self.join(user, since, asks, outbox).await;
                let _ = reply.send(r);
                false
            }
            Command::RemoteJoin {
                user,
                since,
                asks,
                reply,
            } => {
                let r = self.remote_join(user, since, asks).await;
                let _ = reply.send(r);
                false
            }
            Command::Snapshot { viewer, reply } => {
                let _ = reply.send(Ok(self.snapshot(&viewer, false)));
                false
            }
            Command::End { reply } => {
                let r = self.end().await;
                let ended = r.is_ok();
                let _ = reply.send(r);
                ended
            }
            Command::Op { .. }
            | Command::Leave { .. }
            | Command::Reconcile
            | Command::Forwarded { .. }
            | Command::Presence(_)
            | Command::Suggested(_)
            | Command::Suggestions { .. } => unreachable!("handled in the round"),
        }
    }

    /// The session as `viewer` sees it; `joining`: the viewer counts as
    /// online (its own listener is not reported yet).
    fn snapshot(&self, viewer: &UserId, joining: bool) -> Snapshot {
        let mut online = self.audience.online();
        if joining {
            online.insert(viewer.clone());
        }
        snapshot::assemble(&self.state, &online, viewer)
    }

    async fn end(&mut self) -> Result<()> {
        sessions::end(&self.shared.db, self.id.as_str()).await?;
        self.state.end();
        self.audience.end(frame(&ServerMsg::Ended { at: now_ms() }));
        tracing::info!("session ended");
        Ok(())
    }
}

/// Sleep until the wall-clock time `at` (none: forever; past: not at all).
async fn sleep_until_time(at: Option<chrono::DateTime<chrono::Utc>>) {
    match at {
        Some(at) => {
            let wait = (at - now_ms()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// A queue change sets the session's and playlist's `updatedAt` (what the
/// session list sorts by) at most this often: two more rows per commit
/// otherwise, one of them in four indexes.
const ACTIVITY_RESOLUTION: Duration = Duration::from_secs(5);

/// Requests of one batch, keyed for exactly-once.
type ReqKey = (UserId, Req);

/// Re-sends of one req within a batch, waiting for the first copy.
type Repeats = HashMap<ReqKey, Vec<ListenerId>>;
