//! Session leases: which node of a cluster owns (runs the actor of) a
//! session. A lease is a Postgres advisory lock taken on this node's own
//! lease connection, not on a pool connection: when the node dies or loses
//! Postgres, the server drops every lock the connection held at once, and
//! another node may take the sessions over. The lock only elects; the epoch
//! bumped at each load (see `db::sessions::counters`) fences a deposed
//! owner's commits.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// How often the lease connection is checked.
pub const CHECK_EVERY: Duration = Duration::from_millis(500);
/// How long a lease query may take before the connection counts as lost.
const QUERY_WAIT: Duration = Duration::from_secs(2);

/// The advisory-lock key of a session: 64 bits of a SHA-256 of its id.
pub fn lock_key(session_id: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(session_id.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// This node's leases, over one dedicated connection.
pub struct Leases {
    options: PgConnectOptions,
    state: Mutex<State>,
}

struct State {
    conn: Option<PgConnection>,
    /// Leases held, each with how many times (Postgres counts a lock taken
    /// twice by one connection twice, and so do we).
    held: HashMap<i64, usize>,
    /// Cancelled when the connection holding the current leases is lost:
    /// every actor serving one of them stops.
    lost: CancellationToken,
}

impl Leases {
    /// Leases of node `node` (named in the connection's
    /// `application_name`, `audotics-hub-lease <node>`, for operators).
    pub fn new(url: &str, node: &str) -> Result<Leases, sqlx::Error> {
        let options: PgConnectOptions = url.parse()?;
        let options = options
            .application_name(&format!("audotics-hub-lease {node}"))
            .disable_statement_logging();
        Ok(Leases {
            options,
            state: Mutex::new(State {
                conn: None,
                held: HashMap::new(),
                lost: CancellationToken::new(),
            }),
        })
    }

    /// Take the lease of `session_id` if no other node holds it (this node
    /// may take it again: each take is given back once). On success, the
    /// token that is cancelled if the lease is lost.
    pub async fn acquire(
        &self,
        session_id: &str,
    ) -> Result<Option<CancellationToken>, sqlx::Error> {
        let key = lock_key(session_id);
        let mut st = self.state.lock().await;
        if st.conn.is_none() {
            st.conn = Some(self.options.connect().await?);
        }
        let conn = st.conn.as_mut().expect("connected above");
        let taken = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn);
        match tokio::time::timeout(QUERY_WAIT, taken).await {
            Ok(Ok(true)) => {
                *st.held.entry(key).or_default() += 1;
                Ok(Some(st.lost.clone()))
            }
            Ok(Ok(false)) => Ok(None),
            Ok(Err(e)) => {
                lose(&mut st);
                Err(e)
            }
            Err(_) => {
                lose(&mut st);
                Err(sqlx::Error::PoolTimedOut)
            }
        }
    }

    /// Give the lease back, if `token` is still the one it was taken under
    /// (a lease lost with its connection is gone already).
    pub async fn release(&self, session_id: &str, token: &CancellationToken) {
        let key = lock_key(session_id);
        let mut st = self.state.lock().await;
        if token.is_cancelled() {
            return;
        }
        match st.held.get_mut(&key) {
            None => return,
            Some(1) => {
                st.held.remove(&key);
            }
            Some(n) => *n -= 1,
        }
        let Some(conn) = st.conn.as_mut() else {
            return;
        };
        let unlock = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
            .bind(key)
            .fetch_one(&mut *conn);
        match tokio::time::timeout(QUERY_WAIT, unlock).await {
            Ok(Ok(_)) => {}
            _ => lose(&mut st),
        }
    }

    /// Sessions whose lease this node holds.
    pub async fn held(&self) -> usize {
        self.state.lock().await.held.len()
    }

    /// Check the connection; a lost one cancels every lease taken on it.
    /// True when the connection is fine (or holds nothing).
    pub async fn check(&self) -> bool {
        let mut st = self.state.lock().await;
        let Some(conn) = st.conn.as_mut() else {
            return true;
        };
        match tokio::time::timeout(QUERY_WAIT, conn.ping()).await {
            Ok(Ok(())) => true,
            _ => {
                lose(&mut st);
                false
            }
        }
    }

    /// Close the connection (the server drops the locks).
    pub async fn close(&self) {
        let mut st = self.state.lock().await;
        if let Some(conn) = st.conn.take() {
            let _ = tokio::time::timeout(QUERY_WAIT, conn.close()).await;
        }
        st.held.clear();
        st.lost.cancel();
    }
}

/// The connection is gone or unusable: every lease on it is lost.
fn lose(st: &mut State) {
    if !st.held.is_empty() {
        tracing::warn!(
            leases = st.held.len(),
            "lease connection lost: stopping every session this node owned"
        );
    }
    st.conn = None;
    st.held.clear();
    st.lost.cancel();
    st.lost = CancellationToken::new();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_spread() {
        assert_eq!(lock_key("s1"), lock_key("s1"));
        assert_ne!(lock_key("s1"), lock_key("s2"));
    }
}
