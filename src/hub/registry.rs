//! Registries of live tasks by session (session actors; a cluster node's
//! relays): a `DashMap` behind synchronous methods, so no shard guard is
//! ever held across an `.await`.

use audotics_protocol::SessionId;
use dashmap::DashMap;

/// A handle to one task: clones reach the same task.
pub trait Handle: Clone {
    fn same(&self, other: &Self) -> bool;
}

pub struct Registry<H> {
    sessions: DashMap<SessionId, H>,
}

impl<H> Default for Registry<H> {
    fn default() -> Self {
        Registry {
            sessions: DashMap::new(),
        }
    }
}

impl<H: Handle> Registry<H> {
    /// The handle for `id`, or the one `start` makes (atomically: two joins
    /// racing for a new session start one task).
    pub fn get_or_start(&self, id: &SessionId, start: impl FnOnce() -> H) -> H {
        if let Some(h) = self.sessions.get(id) {
            return h.clone();
        }
        self.sessions
            .entry(id.clone())
            .or_insert_with(start)
            .clone()
    }

    pub fn get(&self, id: &SessionId) -> Option<H> {
        self.sessions.get(id).map(|h| h.clone())
    }

    /// Every live task's handle.
    pub fn all(&self) -> Vec<H> {
        self.sessions.iter().map(|e| e.value().clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Forget `id` only if it still maps to `handle`'s task (a newer one
    /// for the same session stays).
    pub fn remove(&self, id: &SessionId, handle: &H) {
        self.sessions.remove_if(id, |_, h| h.same(handle));
    }
}
