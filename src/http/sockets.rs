//! The joined WebSockets of this hub by the token that opened them, so a
//! revoked token (logout, revoke-all, its user deleted — by this hub, another
//! one, or the old app) closes its sockets with 4001. Revocations arrive as
//! Postgres notifications (`db::notify`); after a gap in them (Postgres
//! restarted) every registered token is checked again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use audotics_protocol::CloseCode;
use dashmap::DashMap;

use crate::error::Error;
use crate::hub::outbox::Outbox;
use crate::hub::session::frame;

/// Sockets by token hash; each with the id its registration returned.
#[derive(Default)]
pub struct Sockets {
    by_token: DashMap<String, Vec<(u64, Outbox)>>,
    next: AtomicU64,
}

/// A socket's place in the registry; dropping it leaves.
pub struct Registration {
    sockets: Arc<Sockets>,
    token_hash: String,
    id: u64,
}

impl Sockets {
    /// Register a joined socket opened with the token of `token_hash`.
    pub fn register(self: &Arc<Self>, token_hash: String, outbox: Outbox) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.by_token
            .entry(token_hash.clone())
            .or_default()
            .push((id, outbox));
        Registration {
            sockets: self.clone(),
            token_hash,
            id,
        }
    }

    /// The token of `token_hash` is gone: close its sockets with 4001.
    pub fn revoked(&self, token_hash: &str) {
        if let Some((_, sockets)) = self.by_token.remove(token_hash) {
            let error = frame(&Error::Unauthorized.to_frame(None));
            for (_, outbox) in sockets {
                let _ = outbox.push(error.clone());
                outbox.close(CloseCode::Unauthorized, "unauthorized");
            }
        }
    }

    /// Every token hash with a socket (to check after missed notifications).
    pub fn tokens(&self) -> Vec<String> {
        self.by_token.iter().map(|e| e.key().clone()).collect()
    }

    fn leave(&self, token_hash: &str, id: u64) {
        self.by_token.remove_if_mut(token_hash, |_, sockets| {
            sockets.retain(|(i, _)| *i != id);
            sockets.is_empty()
        });
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.sockets.leave(&self.token_hash, self.id);
    }
}
