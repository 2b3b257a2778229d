//! The session hub: one actor per active GroupSession, reached through a
//! registry of handles that hide it. Map of the module:
//! - [`session`]: the actor, and its pure rules (`session::state`);
//! - [`queue`]: the pure queue model the rules apply;
//! - [`committer`]: group commit across sessions;
//! - [`outbox`]: a listener's bounded outbound queue;
//! - [`pipe`]: a connection's ops on their way to an owner on another node;
//! - [`registry`], [`snapshot`], [`tracks`] (the track cache).

pub mod committer;
pub mod outbox;
pub mod pipe;
pub mod queue;
pub mod registry;
pub mod relay;
pub mod session;
pub mod snapshot;
pub mod tracks;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use audotics_protocol::model::{Snapshot, User};
use audotics_protocol::{Req, SessionId, UserId};
use bytes::Bytes;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::cluster::wire::{decode_json, Answer, JoinReply, OpReply, Request};
use crate::cluster::{Cluster, Unanswered};
use crate::config::HubConfig;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use outbox::Outbox;
use pipe::{Forward, Pipe};
use registry::{Handle, Registry};
use relay::RelayHandle;
use session::{Asks, Command, JoinRefusal, ListenerId, Op, Ownership};

/// Commands waiting for one session actor at most; a connection sending
/// more waits (backpressure on that connection only).
const ACTOR_INBOX: usize = 4096;
/// Committer workers: each holds one Postgres connection while it commits,
/// so a few keep commits pipelined without starving REST of the pool.
const COMMIT_WORKERS: usize = 3;

/// The hub's entry point, cheap to clone: finds or starts session actors and
/// hides them behind [`SessionHandle`]s.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    db: PgPool,
    committer: committer::Committer,
    tracks: Arc<tracks::TrackCache>,
    metrics: Arc<Metrics>,
    config: HubConfig,
    registry: Registry<SessionHandle>,
    /// Cluster mode: this node's membership (`None`: a single hub).
    cluster: Option<Cluster>,
    /// Cluster mode: this node's relays of sessions owned anywhere.
    relays: Arc<Registry<RelayHandle>>,
    /// The catalog suggestions score.
    catalogs: Arc<session::upnext::Catalogs>,
    /// Loads sessions for their actors, many at once.
    loader: Arc<session::load::Loader>,
    connections: Arc<Semaphore>,
    shutdown: CancellationToken,
    /// Session actors.
    actors: TaskTracker,
    /// WebSocket connection tasks: shutdown waits for their close frames.
    sockets: TaskTracker,
}

/// How long shutdown waits for connections to send their close frames and
/// for actors to finish their commit in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The link to one session actor.
#[derive(Clone)]
pub struct SessionHandle {
    tx: mpsc::Sender<Command>,
}

impl Handle for SessionHandle {
    fn same(&self, other: &Self) -> bool {
        self.tx.same_channel(&other.tx)
    }
}

impl SessionHandle {
    /// Ask the actor to reconcile with the database. Never waits: a full
    /// inbox hands the request to a task.
    fn reconcile(&self) {
        if let Err(mpsc::error::TrySendError::Full(cmd)) = self.tx.try_send(Command::Reconcile) {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(cmd).await;
            });
        }
    }
}

/// An op on its way; resolves to false when the session is gone (the
/// connection closes and the client resumes).
pub type Sending = Pin<Box<dyn Future<Output = bool> + Send>>;

/// A joined listener's link to its session: the actor itself (a single
/// hub), or this node's relay of it (a cluster).
#[derive(Clone)]
pub enum Link {
    Actor(SessionHandle),
    Relay {
        hub: Hub,
        session: SessionId,
        relay: RelayHandle,
        /// The connection's ops to the owner, started at its first op.
        pipe: Arc<OnceLock<Pipe>>,
    },
}

impl Link {
    /// Hand an op to the session; its answer arrives on the listener's
    /// outbox. `text` is the client's frame (forwarded as is to an owner on
    /// another node). A connection sends its next op once this resolves,
    /// and either way its ops keep their order: the actor's inbox, or the
    /// connection's [`Pipe`] to the owner, take them in turn.
    pub fn op(&self, listener: ListenerId, user: &UserId, req: Req, op: Op, text: &str) -> Sending {
        match self {
            Link::Actor(h) => {
                let tx = h.tx.clone();
                let cmd = Command::Op {
                    listener,
                    user: user.clone(),
                    req,
                    op,
                    sent: Instant::now(),
                };
                Box::pin(async move { tx.send(cmd).await.is_ok() })
            }
            Link::Relay {
                hub,
                session,
                relay,
                pipe,
            } => {
                let pipe = pipe.clone();
                pipe.get_or_init(|| {
                    Pipe::start(pipe::Sender {
                        hub: hub.clone(),
                        session: session.clone(),
                        relay: relay.clone(),
                        listener,
                        user: user.clone(),
                    })
                });
                let forward = Forward {
                    req,
                    op,
                    text: text.to_owned(),
                };
                Box::pin(async move { pipe.get().expect("started").send(forward).await })
            }
        }
    }

    /// Stop listening (the user stays a member), once the ops it sent
    /// before are answered.
    pub async fn leave(&self, listener: ListenerId) {
        match self {
            Link::Actor(h) => {
                let (done, gone) = oneshot::channel();
                if h.tx.send(Command::Leave { listener, done }).await.is_ok() {
                    let _ = gone.await;
                }
            }
            Link::Relay { relay, pipe, .. } => {
                if let Some(pipe) = pipe.get() {
                    pipe.drained().await;
                }
                relay.leave(listener).await
            }
        }
    }
}

/// What a node asks a session's owner.
enum Ask {
    /// One connection's ops, in order.
    Ops {
        user: UserId,
        ops: Vec<Forward>,
    },
    Join {
        user: User,
        since: Option<i64>,
        asks: Asks,
    },
    Snapshot {
        viewer: UserId,
    },
    Suggestions,
    End,
}

/// The owner's answer.
enum Got {
    Ops(Vec<OpReply>),
    Join(JoinReply),
    Answer(Answer),
}

impl Ask {
    fn request(&self) -> Request {
        match self {
            Ask::Ops { user, ops } => Request::Ops {
                user: user.to_string(),
                frames: ops.iter().map(|f| f.text.clone()).collect(),
            },
            Ask::Join { user, since, asks } => Request::Join {
                user: user.clone(),
                since: *since,
                watch: asks.watch,
                suggestions: asks.suggestions,
            },
            Ask::Snapshot { viewer } => Request::Snapshot {
                viewer: viewer.to_string(),
            },
            Ask::Suggestions => Request::Suggestions,
            Ask::End => Request::End,
        }
    }

    /// The answer in `payload`; `None` when the owner stopped unanswered.
    fn decode(&self, payload: Bytes) -> Option<Got> {
        if payload.is_empty() {
            return None;
        }
        let got = match self {
            Ask::Ops { ops, .. } => OpReply::decode_many(payload, ops.len()).map(Got::Ops),
            Ask::Join { .. } => decode_json(&payload).map(Got::Join),
            Ask::Snapshot { .. } | Ask::Suggestions | Ask::End => {
                decode_json(&payload).map(Got::Answer)
            }
        };
        got.map_err(|e| tracing::warn!(error = %e, "unreadable answer from an owner"))
            .ok()
    }

    /// Ask this node's own actor; `None` if it stopped unanswered.
    async fn local(&self, h: &SessionHandle) -> Option<Got> {
        match self {
            Ask::Ops { user, ops } => {
                let mut answers = Vec::with_capacity(ops.len());
                for f in ops {
                    let (reply, rx) = oneshot::channel();
                    let cmd = Command::Forwarded {
                        user: user.clone(),
                        req: f.req.clone(),
                        op: f.op.clone(),
                        reply,
                        sent: Instant::now(),
                    };
                    h.tx.send(cmd).await.ok()?;
                    answers.push(rx);
                }
                let mut replies = Vec::with_capacity(answers.len());
                for rx in answers {
                    replies.push(rx.await.ok()?);
                }
                Some(Got::Ops(replies))
            }
            Ask::Join { user, since, asks } => {
                let (reply, rx) = oneshot::channel();
                let cmd = Command::RemoteJoin {
                    user: user.clone(),
                    since: *since,
                    asks: *asks,
                    reply,
                };
                h.tx.send(cmd).await.ok()?;
                rx.await.ok().map(Got::Join)
            }
            Ask::Snapshot { viewer } => {
                let (reply, rx) = oneshot::channel();
                let cmd = Command::Snapshot {
                    viewer: viewer.clone(),
                    reply,
                };
                h.tx.send(cmd).await.ok()?;
                Some(Got::Answer(match rx.await.ok()? {
                    Ok(s) => Answer::Snapshot(Box::new(s)),
                    Err(Error::NotFound(_)) => Answer::NotFound,
                    Err(_) => Answer::Unavailable,
                }))
            }
            Ask::Suggestions => {
                let (reply, rx) = oneshot::channel();
                h.tx.send(Command::Suggestions { reply }).await.ok()?;
                let (version, items) = rx.await.ok()?;
                Some(Got::Answer(Answer::Suggestions { version, items }))
            }
            Ask::End => {
                let (reply, rx) = oneshot::channel();
                h.tx.send(Command::End { reply }).await.ok()?;
                Some(Got::Answer(match rx.await.ok()? {
                    Ok(()) => Answer::Done,
                    Err(Error::NotFound(_)) => Answer::NotFound,
                    Err(_) => Answer::Unavailable,
                }))
            }
        }
    }
}

/// A retry's pause while a session finds its next owner.
const OWNER_RETRY: Duration = Duration::from_millis(25);

impl Hub {
    pub fn new(
        db: PgPool,
        metrics: Arc<Metrics>,
        config: HubConfig,
        cluster: Option<Cluster>,
    ) -> Hub {
        let connections = Arc::new(Semaphore::new(config.max_connections));
        Hub {
            inner: Arc::new(HubInner {
                committer: committer::Committer::start(db.clone(), metrics.clone(), COMMIT_WORKERS),
                tracks: Arc::default(),
                loader: session::load::Loader::new(db.clone(), config.queue_cap),
                db,
                metrics,
                config,
                registry: Registry::default(),
                cluster,
                relays: Arc::default(),
                catalogs: Arc::default(),
                connections,
                shutdown: CancellationToken::new(),
                actors: TaskTracker::new(),
                sockets: TaskTracker::new(),
            }),
        }
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Tracks or their features were written: suggestions see them at their
    /// next computation.
    pub fn catalog_changed(&self) {
        self.inner.catalogs.invalidate();
    }

    /// Load the suggestion catalog (in the background, at start).
    pub fn load_catalog(&self) -> impl Future<Output = ()> + Send + 'static {
        session::upnext::load_catalog(self.inner.db.clone(), self.inner.catalogs.clone())
    }

    /// "Up next for this room": the session's latest suggestions (computed
    /// now if there are none), from its owner.
    pub async fn suggestions(
        &self,
        session_id: &SessionId,
    ) -> Result<(i64, Vec<audotics_protocol::party::Suggested>)> {
        if self.inner.cluster.is_some() {
            return match self.to_owner(session_id, &Ask::Suggestions).await {
                Ok(Got::Answer(Answer::Suggestions { version, items })) => Ok((version, items)),
                Ok(Got::Answer(Answer::NotFound)) => Err(Error::NotFound("session")),
                _ => Err(Error::Unavailable),
            };
        }
        self.ask(session_id, |reply| Command::Suggestions { reply })
            .await
            .map(|(_, r)| r)
            .ok_or(Error::Unavailable)
    }

    /// This node's cluster membership, in cluster mode.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.inner.cluster.as_ref()
    }

    /// The tracks session actors share; REST updates it after writing one.
    pub fn tracks(&self) -> &tracks::TrackCache {
        &self.inner.tracks
    }

    /// Cancelled when the hub shuts down: connections close with 1001.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// A slot for one more WebSocket connection, if under the cap.
    pub fn connection_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.inner.connections.clone().try_acquire_owned().ok()
    }

    /// The database changed outside the hub for `session_id` (a
    /// notification): its live actor, if any, reconciles. A session without
    /// one reconciles when it next loads.
    pub fn changed_outside(&self, session_id: &str) {
        let Ok(id) = SessionId::parse(session_id) else {
            return;
        };
        if let Some(handle) = self.inner.registry.get(&id) {
            handle.reconcile();
        }
    }

    /// Notifications may have been missed: every live session reconciles.
    pub fn changed_outside_all(&self) {
        for handle in self.inner.registry.all() {
            handle.reconcile();
        }
    }

    /// Run a WebSocket connection's task; shutdown waits for it (bounded).
    pub fn spawn_connection(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.inner.sockets.spawn(task);
    }

    /// The running actor for `session_id`, started if there is none (in a
    /// cluster, under `ownership`, the lease just taken).
    fn handle(&self, session_id: &SessionId) -> SessionHandle {
        self.start_actor(session_id, None)
    }

    fn start_actor(&self, session_id: &SessionId, ownership: Option<Ownership>) -> SessionHandle {
        self.inner.registry.get_or_start(session_id, || {
            let (tx, rx) = mpsc::channel(ACTOR_INBOX);
            let weak = tx.downgrade();
            let handle = SessionHandle { tx };
            let shared = session::Shared {
                db: self.inner.db.clone(),
                committer: self.inner.committer.clone(),
                tracks: self.inner.tracks.clone(),
                metrics: self.inner.metrics.clone(),
                config: self.inner.config.clone(),
                shutdown: self.inner.shutdown.clone(),
                catalogs: self.inner.catalogs.clone(),
                loader: self.inner.loader.clone(),
            };
            let hub = self.clone();
            let (id, mine) = (session_id.clone(), handle.clone());
            let span = tracing::info_span!("session", session_id = %session_id);
            let actor = session::run(session_id.clone(), shared, rx, weak, ownership, move || {
                hub.inner.registry.remove(&id, &mine)
            });
            self.inner.actors.spawn(actor.instrument(span));
            handle
        })
    }

    /// Send the command `make` builds to the session's actor (started if
    /// needed) and await its reply. An actor that is stopping closes its
    /// channel or drops the reply unanswered: it is forgotten and the session
    /// looked up again, so callers never see an actor's idle shutdown.
    async fn ask<T>(
        &self,
        session_id: &SessionId,
        make: impl Fn(oneshot::Sender<T>) -> Command,
    ) -> Option<(SessionHandle, T)> {
        for _ in 0..5 {
            if self.inner.shutdown.is_cancelled() {
                return None;
            }
            let handle = self.handle(session_id);
            let (reply, rx) = oneshot::channel();
            if handle.tx.send(make(reply)).await.is_ok() {
                if let Ok(answer) = rx.await {
                    return Some((handle, answer));
                }
            }
            self.inner.registry.remove(session_id, &handle);
        }
        None
    }

    /// Join `user` to a session as a listener whose frames go to `outbox`.
    pub async fn join(
        &self,
        session_id: &SessionId,
        user: User,
        since: Option<i64>,
        asks: Asks,
        outbox: Outbox,
    ) -> Result<(Link, ListenerId), JoinRefusal> {
        if self.inner.cluster.is_some() {
            return self.join_relay(session_id, user, since, asks, outbox).await;
        }
        let asked = self
            .ask(session_id, |reply| Command::Join {
                user: user.clone(),
                since,
                asks,
                outbox: outbox.clone(),
                reply,
            })
            .await;
        match asked {
            Some((handle, Ok(listener))) => Ok((Link::Actor(handle), listener)),
            Some((_, Err(refusal))) => Err(refusal),
            None => Err(JoinRefusal::Unavailable),
        }
    }

    /// Cluster: join through this node's relay of the session, with the
    /// first frames the owner makes.
    async fn join_relay(
        &self,
        session_id: &SessionId,
        user: User,
        since: Option<i64>,
        asks: Asks,
        outbox: Outbox,
    ) -> Result<(Link, ListenerId), JoinRefusal> {
        let user_id = UserId::from_stored(user.id.clone());
        let name = user.name.clone();
        let ask = Ask::Join { user, since, asks };
        for _ in 0..3 {
            let relay = self.relay(session_id);
            // Subscribed before the owner makes the opening: nothing
            // published after it is missed.
            if !relay.ready().await {
                return Err(JoinRefusal::Unavailable);
            }
            let opening = match self.to_owner(session_id, &ask).await {
                Ok(Got::Join(JoinReply::Opening(o))) => o,
                Ok(Got::Join(JoinReply::NotFound)) => return Err(JoinRefusal::NotFound),
                Ok(Got::Join(JoinReply::Ended)) => return Err(JoinRefusal::Ended),
                Ok(Got::Join(JoinReply::Banned)) => return Err(JoinRefusal::Banned),
                _ => return Err(JoinRefusal::Unavailable),
            };
            let attached = relay
                .attach(user_id.clone(), name.clone(), outbox.clone(), opening, asks)
                .await;
            if let Some(listener) = attached {
                let link = Link::Relay {
                    hub: self.clone(),
                    session: session_id.clone(),
                    relay,
                    pipe: Arc::default(),
                };
                return Ok((link, listener));
            }
            // The relay stopped meanwhile: the next one takes the joiner.
        }
        Err(JoinRefusal::Unavailable)
    }

    /// This node's relay of `session_id`, started if there is none.
    fn relay(&self, session_id: &SessionId) -> RelayHandle {
        let cluster = self.inner.cluster.as_ref().expect("cluster mode");
        self.inner.relays.get_or_start(session_id, || {
            let hub = self.clone();
            let report_to: relay::ReportTo = Arc::new(move |session, report| {
                hub.report(session, report);
            });
            let (handle, task) = relay::new(
                session_id.clone(),
                cluster.clone(),
                self.inner.db.clone(),
                self.inner.metrics.clone(),
                report_to,
            );
            let (relays, id, mine) = (
                self.inner.relays.clone(),
                session_id.clone(),
                handle.clone(),
            );
            let span = tracing::info_span!("relay", session_id = %session_id);
            tokio::spawn(task.run(move || relays.remove(&id, &mine)).instrument(span));
            handle
        })
    }

    /// A relay's presence report, to the session's owner (this node's actor,
    /// or over NATS). No owner: the next one asks every relay anyway.
    fn report(&self, session_id: &SessionId, report: crate::cluster::wire::Report) {
        if let Some(h) = self.inner.registry.get(session_id) {
            let cmd = Command::Presence(report);
            if let Err(mpsc::error::TrySendError::Full(cmd)) = h.tx.try_send(cmd) {
                tokio::spawn(async move {
                    let _ = h.tx.send(cmd).await;
                });
            }
            return;
        }
        if let Some(c) = &self.inner.cluster {
            let subject = c.requests_subject(session_id.as_str());
            c.publish(subject, Request::Presence(report).encode());
        }
    }

    /// Cluster: ask the session's owner — this node's actor if this node
    /// owns it, else over NATS. A session nobody owns makes this node try
    /// its lease; while another node is taking it over, or an attempt went
    /// unanswered (its owner may have died holding it), the ask is retried
    /// (for at most [`crate::cluster::REQUEST_WAIT`]).
    /// One connection's ops, asked of the session's owner in one request:
    /// their answers in order (`unavailable` for each if none came).
    async fn forward_ops(
        &self,
        session_id: &SessionId,
        user: &UserId,
        ops: Vec<Forward>,
    ) -> Vec<OpReply> {
        let ask = Ask::Ops {
            user: user.clone(),
            ops,
        };
        match self.to_owner(session_id, &ask).await {
            Ok(Got::Ops(replies)) => replies,
            _ => {
                let Ask::Ops { ops, .. } = &ask else {
                    unreachable!()
                };
                ops.iter()
                    .map(|f| session::owner::unavailable(f.req.as_str()))
                    .collect()
            }
        }
    }

    async fn to_owner(&self, session_id: &SessionId, ask: &Ask) -> Result<Got, Unanswered> {
        let cluster = self.inner.cluster.as_ref().expect("cluster mode");
        let deadline = Instant::now() + crate::cluster::REQUEST_WAIT;
        let subject = cluster.requests_subject(session_id.as_str());
        let payload = ask.request().encode();
        loop {
            if self.inner.shutdown.is_cancelled() {
                return Err(Unanswered::Failed);
            }
            if let Some(h) = self.inner.registry.get(session_id) {
                if let Some(got) = ask.local(&h).await {
                    return Ok(got);
                }
                // Stopping (idle, ended, or deposed): the next owner answers.
                self.inner.registry.remove(session_id, &h);
            } else {
                if let Ask::Ops { ops, .. } = ask {
                    self.inner.metrics.forwarded_out.inc_by(ops.len() as u64);
                    self.inner.metrics.forward_requests.inc();
                }
                let left = deadline.saturating_duration_since(Instant::now());
                let wait = left.min(crate::cluster::ATTEMPT_WAIT);
                match cluster
                    .request_within(subject.clone(), payload.clone(), wait)
                    .await
                {
                    Ok(answer) => {
                        if let Some(got) = ask.decode(answer) {
                            return Ok(got);
                        }
                    }
                    Err(Unanswered::NoOwner) => {
                        if self.take_over(cluster, session_id).await {
                            continue;
                        }
                    }
                    Err(Unanswered::TimedOut) if Instant::now() < deadline => continue,
                    Err(e) => return Err(e),
                }
            }
            if Instant::now() >= deadline {
                return Err(Unanswered::TimedOut);
            }
            tokio::time::sleep(OWNER_RETRY).await;
        }
    }

    /// Try to become the owner of `session_id`; true when this node now
    /// runs its actor.
    async fn take_over(&self, cluster: &Cluster, session_id: &SessionId) -> bool {
        match cluster.leases().acquire(session_id.as_str()).await {
            Ok(Some(lost)) => {
                let ownership = Ownership {
                    cluster: cluster.clone(),
                    relays: self.inner.relays.clone(),
                    lost: lost.clone(),
                };
                let started = self.inner.registry.get(session_id).is_none();
                self.start_actor(session_id, Some(ownership));
                if started {
                    self.inner.metrics.takeovers.inc();
                    tracing::info!(session_id = %session_id, "this node now owns the session");
                } else {
                    // An actor was there already: give the extra take back.
                    cluster.leases().release(session_id.as_str(), &lost).await;
                }
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take a session's lease");
                false
            }
        }
    }

    /// The session as `viewer` sees it: from the live actor when there is one
    /// (so `online` is true), else from the database.
    pub async fn snapshot(&self, session_id: &SessionId, viewer: &UserId) -> Result<Snapshot> {
        if let Some(cluster) = &self.inner.cluster {
            let ask = Ask::Snapshot {
                viewer: viewer.clone(),
            };
            let got = match self.inner.registry.get(session_id) {
                Some(h) => ask.local(&h).await,
                None => {
                    let subject = cluster.requests_subject(session_id.as_str());
                    match cluster.request(subject, ask.request().encode()).await {
                        Ok(answer) => ask.decode(answer),
                        Err(_) => None,
                    }
                }
            };
            match got {
                Some(Got::Answer(Answer::Snapshot(s))) => return Ok(*s),
                Some(Got::Answer(Answer::NotFound)) => return Err(Error::NotFound("session")),
                // Nobody owns it (or cannot say): Postgres can.
                _ => return snapshot::load(&self.inner.db, session_id.as_str(), viewer).await,
            }
        }
        if let Some(handle) = self.inner.registry.get(session_id) {
            let (reply, rx) = oneshot::channel();
            let cmd = Command::Snapshot {
                viewer: viewer.clone(),
                reply,
            };
            if handle.tx.send(cmd).await.is_ok() {
                if let Ok(r) = rx.await {
                    return r;
                }
            }
        }
        snapshot::load(&self.inner.db, session_id.as_str(), viewer).await
    }

    /// End a session through its actor, so every listener gets `ended` and
    /// close 4010 in order after the updates it already had.
    pub async fn end(&self, session_id: &SessionId) -> Result<()> {
        if self.inner.cluster.is_some() {
            return match self.to_owner(session_id, &Ask::End).await {
                Ok(Got::Answer(Answer::Done)) => Ok(()),
                Ok(Got::Answer(Answer::NotFound)) => Err(Error::NotFound("session")),
                _ => Err(Error::Unavailable),
            };
        }
        self.ask(session_id, |reply| Command::End { reply })
            .await
            .map_or(Err(Error::Unavailable), |(_, r)| r)
    }

    /// Close every connection with 1001 and stop every session actor after
    /// its commit in flight; waits for both (at most [`SHUTDOWN_GRACE`]).
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.shutdown.cancel();
        inner.actors.close();
        inner.sockets.close();
        let both = async {
            inner.sockets.wait().await;
            inner.actors.wait().await;
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, both).await.is_err() {
            tracing::warn!(
                connections = inner.sockets.len(),
                actors = inner.actors.len(),
                "shutdown grace over; leaving the rest"
            );
        }
        if let Some(cluster) = &inner.cluster {
            cluster.leave().await;
        }
    }
}
