//! The session hub: one actor per active GroupSession, reached through a
//! registry of handles. `queue` is the pure queue model the actors apply.

pub mod queue;

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::PgPool;

use crate::config::HubConfig;
use crate::db::sessions;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::model::{Member, PlaylistRef, QueueEntry, Role, SessionRef, Snapshot, You};

/// The hub's entry point, cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    db: PgPool,
    #[allow(dead_code)]
    metrics: Arc<Metrics>,
    #[allow(dead_code)]
    config: HubConfig,
}

impl Hub {
    pub fn new(db: PgPool, metrics: Arc<Metrics>, config: HubConfig) -> Hub {
        Hub {
            inner: Arc::new(HubInner {
                db,
                metrics,
                config,
            }),
        }
    }

    /// The session as `viewer` would see it on join.
    pub async fn snapshot(&self, session_id: &str, viewer: &str) -> Result<Snapshot> {
        load_snapshot(&self.inner.db, session_id, viewer, &HashSet::new()).await
    }

    /// End a session: mark it inactive.
    pub async fn end(&self, session_id: &str) -> Result<()> {
        if !sessions::end(&self.inner.db, session_id).await? {
            return Err(Error::NotFound("session"));
        }
        Ok(())
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
    let version = sessions::version(db, session_id).await?;
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

impl Hub {
    /// Stop every session actor after it has finished its commit in flight.
    pub async fn shutdown(&self) {}
}
