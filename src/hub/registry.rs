//! The registry of live session actors: a `DashMap` behind synchronous
//! methods, so no shard guard is ever held across an `.await`.

use audotics_protocol::SessionId;
use dashmap::DashMap;

use super::SessionHandle;

#[derive(Default)]
pub struct Registry {
    sessions: DashMap<SessionId, SessionHandle>,
}

impl Registry {
    /// The handle for `id`, or the one `start` makes (atomically: two joins
    /// racing for a new session start one actor).
    pub fn get_or_start(
        &self,
        id: &SessionId,
        start: impl FnOnce() -> SessionHandle,
    ) -> SessionHandle {
        if let Some(h) = self.sessions.get(id) {
            return h.clone();
        }
        self.sessions
            .entry(id.clone())
            .or_insert_with(start)
            .clone()
    }

    pub fn get(&self, id: &SessionId) -> Option<SessionHandle> {
        self.sessions.get(id).map(|h| h.clone())
    }

    /// Every live actor's handle.
    pub fn all(&self) -> Vec<SessionHandle> {
        self.sessions.iter().map(|e| e.value().clone()).collect()
    }

    /// Forget `id` only if it still maps to `handle`'s actor (a newer actor
    /// for the same session stays).
    pub fn remove(&self, id: &SessionId, handle: &SessionHandle) {
        self.sessions.remove_if(id, |_, h| h.same_actor(handle));
    }
}
