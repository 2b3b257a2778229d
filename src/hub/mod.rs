//! The session hub: one actor per active GroupSession, reached through a
//! registry of handles. `queue` is the pure queue model the actors apply.

pub mod committer;
pub mod outbox;
pub mod persist;
pub mod queue;
pub mod registry;
pub mod session;
pub mod tracks;

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::HubConfig;
use crate::db::sessions;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use audotics_protocol::model::{
    Member, PlaylistRef, QueueEntry, Role, SessionRef, Snapshot, User, You,
};
use outbox::Outbox;
use registry::Registry;
use session::{Command, JoinRefusal, ListenerId, Op, SessionActor};

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
    tasks: TaskTracker,
}

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
    pub async fn op(&self, listener: ListenerId, user_id: &str, req: String, op: Op) -> bool {
        self.tx
            .send(Command::Op {
                listener,
                user_id: user_id.to_owned(),
                req,
                op,
                sent: std::time::Instant::now(),
            })
            .await
            .is_ok()
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
                tasks: TaskTracker::new(),
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

    /// The running actor for `session_id`, started if there is none.
    fn handle(&self, session_id: &str) -> SessionHandle {
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
            let actor = SessionActor::new(session_id.to_owned(), shared, rx);
            let hub = self.clone();
            let (id, mine) = (session_id.to_owned(), handle.clone());
            self.inner
                .tasks
                .spawn(actor.run(move || hub.inner.registry.remove(&id, &mine)));
            handle
        })
    }

    /// Send the command `make` builds to the session's actor (started if
    /// needed) and await its reply. An actor that is stopping closes its
    /// channel or drops the reply unanswered: it is forgotten and the session
    /// looked up again, so callers never see an actor's idle shutdown.
    async fn ask<T>(
        &self,
        session_id: &str,
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
        session_id: &str,
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
    pub async fn snapshot(&self, session_id: &str, viewer: &str) -> Result<Snapshot> {
        if let Some(handle) = self.inner.registry.get(session_id) {
            let (reply, rx) = oneshot::channel();
            let cmd = Command::Snapshot {
                viewer: viewer.to_owned(),
                reply,
            };
            if handle.tx.send(cmd).await.is_ok() {
                if let Ok(r) = rx.await {
                    return r;
                }
            }
        }
        load_snapshot(&self.inner.db, session_id, viewer, &HashSet::new()).await
    }

    /// End a session through its actor, so every listener gets `ended` and
    /// close 4010 in order after the updates it already had.
    pub async fn end(&self, session_id: &str) -> Result<()> {
        self.ask(session_id, |reply| Command::End { reply })
            .await
            .map_or(Err(Error::Unavailable), |(_, r)| r)
    }

    /// Stop every session actor after its commit in flight, and close every
    /// connection with 1001.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

/// Build a snapshot from the database; `online` lists users with a live
/// listener connection.
pub async fn load_snapshot(
    db: &PgPool,
    session_id: &str,
    viewer: &str,
    online: &HashSet<String>,
) -> Result<Snapshot> {
    let (session, playlist) = sessions::get(db, session_id)
        .await?
        .ok_or(Error::NotFound("session"))?;
    let playlist = playlist.ok_or(Error::NotFound("session"))?;
    let (version, _) = persist::load_counters(db, session_id).await?;
    let queue = sessions::queue(db, session_id)
        .await?
        .into_iter()
        .map(|e| QueueEntry {
            entry_id: e.entry_id,
            track: e.track,
            added_by: e.added_by,
            added_at: e.added_at,
        })
        .collect();
    let members = sessions::members(db, session_id).await?;
    Ok(assemble_snapshot(
        version,
        SessionRef {
            id: session.id,
            name: session.name,
            active: session.active,
            host_id: playlist.creator_id.clone(),
        },
        PlaylistRef {
            id: playlist.id,
            name: playlist.name,
            description: playlist.description,
            spotify_id: playlist.spotify_id,
        },
        queue,
        members,
        online,
        viewer,
    ))
}

/// The one place a snapshot is put together, whether its queue came from the
/// database or from a live actor.
pub fn assemble_snapshot(
    version: i64,
    session: SessionRef,
    playlist: PlaylistRef,
    queue: Vec<QueueEntry>,
    members: Vec<sessions::MemberRow>,
    online: &HashSet<String>,
    viewer: &str,
) -> Snapshot {
    let role = if session.host_id == viewer {
        Role::Host
    } else {
        Role::Member
    };
    Snapshot {
        version,
        you: You {
            user_id: viewer.to_owned(),
            role,
        },
        session,
        playlist,
        queue,
        members: members
            .into_iter()
            .map(|(user_id, name, avatar)| Member {
                online: online.contains(&user_id),
                user_id,
                name,
                avatar,
            })
            .collect(),
    }
}
