//! Snapshots: the session's whole state as a viewer sees it, from a live
//! actor's state or, with no actor, loaded from Postgres the same way an
//! actor loads it.

use std::collections::HashSet;

use audotics_protocol::model::{Member, Snapshot, You};
use audotics_protocol::UserId;
use sqlx::PgPool;

use super::session::state::SessionState;
use crate::error::Result;

/// The session as `viewer` sees it from Postgres (no live actor: nobody is
/// online).
pub async fn load(db: &PgPool, session_id: &str, viewer: &UserId) -> Result<Snapshot> {
    let (state, _, _) = super::session::load::load_state(db, session_id, usize::MAX, false).await?;
    Ok(assemble(&state, &HashSet::new(), viewer))
}

/// Put a snapshot together for `viewer`; `online` lists the users with a
/// live listener connection.
pub fn assemble(state: &SessionState, online: &HashSet<UserId>, viewer: &UserId) -> Snapshot {
    let mut session = state.session.clone();
    session.host_id = state.session.host_id.clone();
    Snapshot {
        version: state.version(),
        you: You {
            user_id: viewer.to_string(),
            role: state.role_of(viewer),
        },
        session,
        playlist: state.playlist.clone(),
        queue: state.queue_entries(),
        members: state
            .members()
            .iter()
            .map(|m| Member {
                online: online.contains(&m.user_id),
                user_id: m.user_id.to_string(),
                name: m.name.clone(),
                avatar: m.avatar.clone(),
                role: state.role_of(&m.user_id),
            })
            .collect(),
        party: Box::new(state.party_wire()),
    }
}
