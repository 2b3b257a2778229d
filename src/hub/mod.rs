//! The session hub: one actor per active GroupSession, reached through a
//! registry of handles that hide it. Map of the module:
//! - [`session`]: the actor, and its pure rules (`session::state`);
//! - [`queue`]: the pure queue model the rules apply;
//! - [`committer`]: group commit across sessions;
//! - [`outbox`]: a listener's bounded outbound queue;
//! - [`registry`], [`snapshot`], [`tracks`] (the track cache).

pub mod committer;
pub mod outbox;
pub mod queue;
pub mod registry;
pub mod session;
pub mod snapshot;
pub mod tracks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use audotics_protocol::model::{Snapshot, User};
use audotics_protocol::{Req, SessionId, UserId};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::HubConfig;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use outbox::Outbox;
use registry::Registry;
use session::{Command, JoinRefusal, ListenerId, Op};

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
    registry: Registry,
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

/// A joined listener's link to its session actor.
#[derive(Clone)]
pub struct SessionHandle {
    tx: mpsc::Sender<Command>,
}

impl SessionHandle {
    pub fn same_actor(&self, other: &SessionHandle) -> bool {
        self.tx.same_channel(&other.tx)
    }

    /// Hand an op to the actor; its answer arrives on the listener's outbox.
    pub async fn op(&self, listener: ListenerId, user: &UserId, req: Req, op: Op) -> bool {
        self.tx
            .send(Command::Op {
                listener,
                user: user.clone(),
                req,
                op,
                sent: std::time::Instant::now(),
            })
            .await
            .is_ok()
    }

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

    /// Stop listening (the user stays a member).
    pub async fn leave(&self, listener: ListenerId) {
        let _ = self.tx.send(Command::Leave { listener }).await;
    }
}

impl Hub {
    pub fn new(db: PgPool, metrics: Arc<Metrics>, config: HubConfig) -> Hub {
        let connections = Arc::new(Semaphore::new(config.max_connections));
        Hub {
            inner: Arc::new(HubInner {
                committer: committer::Committer::start(db.clone(), metrics.clone(), COMMIT_WORKERS),
                tracks: Arc::default(),
                db,
                metrics,
                config,
                registry: Registry::default(),
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

    /// The running actor for `session_id`, started if there is none.
    fn handle(&self, session_id: &SessionId) -> SessionHandle {
        self.inner.registry.get_or_start(session_id, || {
            let (tx, rx) = mpsc::channel(ACTOR_INBOX);
            let handle = SessionHandle { tx };
            let shared = session::Shared {
                db: self.inner.db.clone(),
                committer: self.inner.committer.clone(),
                tracks: self.inner.tracks.clone(),
                metrics: self.inner.metrics.clone(),
                config: self.inner.config.clone(),
                shutdown: self.inner.shutdown.clone(),
            };
            let hub = self.clone();
            let (id, mine) = (session_id.clone(), handle.clone());
            let span = tracing::info_span!("session", session_id = %session_id);
            let actor = session::run(session_id.clone(), shared, rx, move || {
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
        outbox: Outbox,
    ) -> Result<(SessionHandle, ListenerId), JoinRefusal> {
        let asked = self
            .ask(session_id, |reply| Command::Join {
                user: user.clone(),
                since,
                outbox: outbox.clone(),
                reply,
            })
            .await;
        match asked {
            Some((handle, Ok(listener))) => Ok((handle, listener)),
            Some((_, Err(refusal))) => Err(refusal),
            None => Err(JoinRefusal::Unavailable),
        }
    }

    /// The session as `viewer` sees it: from the live actor when there is one
    /// (so `online` is true), else from the database.
    pub async fn snapshot(&self, session_id: &SessionId, viewer: &UserId) -> Result<Snapshot> {
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
    }
}
