//! Session leases: which node of a cluster owns (runs the actor of) a
//! session. A lease is a Postgres advisory lock taken on this node's own
//! lease connection, not on a pool connection: when the node dies or loses
//! Postgres, the server drops every lock the connection held at once, and
//! another node may take the sessions over. The lock only elects; the epoch
//! bumped at each load (see `db::sessions::counters_of`) fences a deposed
//! owner's commits.
//!
//! Takes are batched: while one query is out on the connection, the takes
//! asked meanwhile wait and then go together in the next one. A node
//! taking over the sessions of a dead one (hundreds at once) would
//! otherwise wait one round trip per session, one after the other. A batch
//! runs on a task of its own, so an asker that gives up (its client went
//! away) cancels no query answering others; a lease taken for an asker
//! that is gone is given back at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::{oneshot, Mutex};
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
    shared: Arc<Shared>,
}

struct Shared {
    options: PgConnectOptions,
    state: Mutex<State>,
    /// Takes asked and not yet sent: (lock key, where its outcome goes).
    asked: std::sync::Mutex<Vec<(i64, oneshot::Sender<Taken>)>>,
}

/// A take's outcome: taken or not, or the connection failed (the error's
/// text: one error answers every take of the batch).
type Taken = Result<Option<CancellationToken>, String>;

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
            shared: Arc::new(Shared {
                options,
                state: Mutex::new(State {
                    conn: None,
                    held: HashMap::new(),
                    lost: CancellationToken::new(),
                }),
                asked: std::sync::Mutex::new(Vec::new()),
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
        let (tx, rx) = oneshot::channel();
        self.shared
            .asked
            .lock()
            .expect("not poisoned")
            .push((lock_key(session_id), tx));
        let shared = self.shared.clone();
        tokio::spawn(async move {
            // Whoever holds the connection next sends every take asked so
            // far, this one included (unless an earlier holder did).
            let mut st = shared.state.lock().await;
            let batch = std::mem::take(&mut *shared.asked.lock().expect("not poisoned"));
            if !batch.is_empty() {
                take_all(&shared.options, &mut st, batch).await;
            }
        });
        match rx.await {
            Ok(Ok(taken)) => Ok(taken),
            Ok(Err(e)) => Err(sqlx::Error::Protocol(e)),
            Err(_) => Err(sqlx::Error::PoolClosed),
        }
    }

    /// Give the lease back, if `token` is still the one it was taken under
    /// (a lease lost with its connection is gone already).
    pub async fn release(&self, session_id: &str, token: &CancellationToken) {
        let mut st = self.shared.state.lock().await;
        if token.is_cancelled() {
            return;
        }
        give_back(&mut st, lock_key(session_id)).await;
    }

    /// Sessions whose lease this node holds.
    pub async fn held(&self) -> usize {
        self.shared.state.lock().await.held.len()
    }

    /// Check the connection; a lost one cancels every lease taken on it.
    /// True when the connection is fine (or holds nothing).
    pub async fn check(&self) -> bool {
        let mut st = self.shared.state.lock().await;
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
        let mut st = self.shared.state.lock().await;
        if let Some(conn) = st.conn.take() {
            let _ = tokio::time::timeout(QUERY_WAIT, conn.close()).await;
        }
        st.held.clear();
        st.lost.cancel();
    }
}

/// One query for a batch of takes; each outcome to its asker.
async fn take_all(
    options: &PgConnectOptions,
    st: &mut State,
    batch: Vec<(i64, oneshot::Sender<Taken>)>,
) {
    let keys: Vec<i64> = batch.iter().map(|(k, _)| *k).collect();
    let result = match taken(options, st, &keys).await {
        Ok(taken) if taken.len() == keys.len() => Ok(taken),
        Ok(_) => Err("lease batch answered the wrong number of rows".to_owned()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(taken) => {
            let mut orphans = Vec::new();
            for ((key, tx), ok) in batch.into_iter().zip(taken) {
                if !ok {
                    let _ = tx.send(Ok(None));
                    continue;
                }
                *st.held.entry(key).or_default() += 1;
                if tx.send(Ok(Some(st.lost.clone()))).is_err() {
                    orphans.push(key);
                }
            }
            // Their askers are gone: nobody would run those sessions.
            for key in orphans {
                give_back(st, key).await;
            }
        }
        Err(e) => {
            lose(st);
            for (_, tx) in batch {
                let _ = tx.send(Err(e.clone()));
            }
        }
    }
}

/// `pg_try_advisory_lock` for each key, in order, in one query.
async fn taken(
    options: &PgConnectOptions,
    st: &mut State,
    keys: &[i64],
) -> Result<Vec<bool>, sqlx::Error> {
    if st.conn.is_none() {
        st.conn = Some(options.connect().await?);
    }
    let conn = st.conn.as_mut().expect("connected above");
    let query = sqlx::query_scalar::<_, bool>(
        "SELECT pg_try_advisory_lock(k) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(k, i) ORDER BY i",
    )
    .bind(keys)
    .fetch_all(&mut *conn);
    match tokio::time::timeout(QUERY_WAIT, query).await {
        Ok(r) => r,
        Err(_) => Err(sqlx::Error::PoolTimedOut),
    }
}

/// Give one take of `key` back (the lock stays while other takes of it
/// are held).
async fn give_back(st: &mut State, key: i64) {
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
        _ => lose(st),
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
