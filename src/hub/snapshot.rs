//! The one place a snapshot is put together, whether the session is live in
//! an actor or read from the database.

use std::collections::HashSet;

use audotics_protocol::model::{Member, PlaylistRef, QueueEntry, Role, SessionRef, Snapshot, You};
use audotics_protocol::UserId;
use sqlx::PgPool;

use crate::db::sessions::{self, MemberRow};
use crate::error::{Error, Result};

/// Build a snapshot from the database (a session no actor serves: nobody is
/// online).
pub async fn load(db: &PgPool, session_id: &str, viewer: &UserId) -> Result<Snapshot> {
    let (session, playlist) = sessions::refs(db, session_id)
        .await?
        .ok_or(Error::NotFound("session"))?;
    let (version, _) = sessions::counters(db, session_id).await?;
    let queue = sessions::queue(db, session_id)
        .await?
        .into_iter()
        .map(|e| QueueEntry {
            entry_id: e.entry_id,
            track: e.track,
            added_by: e.added_by.into_string(),
            added_at: e.added_at,
        })
        .collect();
    let members = sessions::members(db, session_id).await?;
    Ok(assemble(
        version,
        session,
        playlist,
        queue,
        &members,
        &HashSet::new(),
        viewer,
    ))
}

/// Put a snapshot together for `viewer`; `online` lists the users with a
/// live listener connection.
pub fn assemble(
    version: i64,
    session: SessionRef,
    playlist: PlaylistRef,
    queue: Vec<QueueEntry>,
    members: &[MemberRow],
    online: &HashSet<UserId>,
    viewer: &UserId,
) -> Snapshot {
    let role = if session.host_id == viewer.as_str() {
        Role::Host
    } else {
        Role::Member
    };
    Snapshot {
        version,
        you: You {
            user_id: viewer.to_string(),
            role,
        },
        session,
        playlist,
        queue,
        members: members
            .iter()
            .map(|m| Member {
                online: online.contains(&m.user_id),
                user_id: m.user_id.to_string(),
                name: m.name.clone(),
                avatar: m.avatar.clone(),
            })
            .collect(),
    }
}
