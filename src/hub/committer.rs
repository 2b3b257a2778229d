//! Group commit across sessions. Every session actor hands its batch to a
//! shared pool of committer workers; a worker takes every batch waiting (from
//! any number of sessions) and writes them in ONE transaction with one
//! statement per table. Thousands of quiet sessions then cost a few commits
//! per second instead of one each. A session never has two batches in
//! flight (its actor waits for the answer), so per-session order holds.
//!
//! A second commit only starts beside a running one when enough is waiting
//! (`PARALLEL_MIN`); otherwise the next commit waits and grows. Workers run in
//! parallel under load and take turns when it is light.
//!
//! If a merged transaction fails, each batch is retried alone, so one bad
//! batch never fails another session's ops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};

use crate::db::commit::{self, SessionCommit};
use crate::error::{is_connection_error, is_data_error};
use crate::metrics::Metrics;

/// Batches merged into one transaction at most.
const MAX_MERGE: usize = 256;
/// Batches waiting for a worker at most; an actor handing in more waits
/// (backpressure on that actor only).
const QUEUE: usize = 4096;
/// Batches waiting that justify a commit beside one already running. Below
/// it, the next commit waits for the running one and takes what arrived in
/// the meantime: each commit costs Postgres a fixed ~1 ms of CPU (plan,
/// executor start per table, WAL flush), so at moderate rates fewer, larger
/// commits leave more CPU for everything else. Under load the queue passes
/// it at once and the workers commit in parallel.
const PARALLEL_MIN: usize = 16;
/// How long a small batch waits for the running commit at most: a commit
/// that stalls (a slow fsync, a descheduled backend) must not hold up the
/// next one; past this the workers commit in parallel again.
const WAIT_MAX: Duration = Duration::from_millis(2);

/// How a commit failed; each carries the cause, for the log.
#[derive(Clone, Debug)]
pub enum CommitError {
    /// Certainly not committed (nothing reached Postgres, or it failed for
    /// a reason of its own).
    Failed(String),
    /// Certainly not committed: Postgres refused the rows (a constraint or
    /// a data exception). The same rows would be refused again.
    Rejected(String),
    /// The connection broke during COMMIT: it may or may not have happened.
    Unknown(String),
    /// Certainly not committed: the session's epoch has moved on (another
    /// hub took it over). The actor must stop.
    Fenced,
}

struct Request {
    commit: SessionCommit,
    reply: oneshot::Sender<Result<(), CommitError>>,
}

/// The handle actors commit through. Cheap to clone.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Request>,
}

impl Committer {
    /// Start `workers` committer tasks on `db`. They stop once every handle
    /// is dropped; a session actor's own shutdown waits for its commit, so
    /// nothing is cut short.
    pub fn start(db: PgPool, metrics: Arc<Metrics>, workers: usize) -> Committer {
        let (tx, rx) = mpsc::channel(QUEUE);
        let queue = Arc::new(Queue::new(rx));
        for _ in 0..workers.max(1) {
            tokio::spawn(worker(db.clone(), metrics.clone(), queue.clone()));
        }
        Committer { tx }
    }

    /// Commit one session's batch, together with whatever other sessions'
    /// batches are waiting.
    pub async fn commit(&self, commit: SessionCommit) -> Result<(), CommitError> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Request { commit, reply }).await.is_err() {
            // Never reached a worker: certainly not committed.
            return Err(CommitError::Failed("the committer is stopping".into()));
        }
        // A worker that vanished mid-commit leaves the outcome unknown.
        rx.await
            .unwrap_or_else(|_| Err(CommitError::Unknown("committer stopped".into())))
    }
}

/// What the workers share: the requests, and how many commits are running.
struct Queue {
    rx: Mutex<mpsc::Receiver<Request>>,
    running: AtomicUsize,
    finished: Notify,
}

impl Queue {
    fn new(rx: mpsc::Receiver<Request>) -> Queue {
        Queue {
            rx: Mutex::new(rx),
            running: AtomicUsize::new(0),
            finished: Notify::new(),
        }
    }
}

/// Counts a running commit; wakes a worker waiting to start one when done.
struct Running<'a>(&'a Queue);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.finished.notify_one();
    }
}

/// The next merged batch: waits for a first request, then takes what is
/// waiting; while another commit runs and fewer than `PARALLEL_MIN` are
/// waiting, it keeps collecting until that commit finishes (at most
/// `WAIT_MAX`). The worker holding the receiver is the only one deciding, so
/// idle workers just wait their turn. `None` once every handle is dropped.
async fn next_batch(q: &Queue) -> Option<(Vec<Request>, Running<'_>)> {
    let mut rx = q.rx.lock().await;
    let mut batch = vec![rx.recv().await?];
    let deadline = tokio::time::Instant::now() + WAIT_MAX;
    let mut open = true;
    loop {
        while batch.len() < MAX_MERGE {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        if !open || batch.len() >= PARALLEL_MIN || q.running.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::select! {
            // A stale wake-up only costs one more look.
            _ = q.finished.notified() => {}
            _ = tokio::time::sleep_until(deadline) => break,
            r = rx.recv() => match r {
                Some(r) => batch.push(r),
                None => open = false,
            },
        }
    }
    q.running.fetch_add(1, Ordering::SeqCst);
    Some((batch, Running(q)))
}

async fn worker(db: PgPool, metrics: Arc<Metrics>, q: Arc<Queue>) {
    while let Some((batch, running)) = next_batch(&q).await {
        let started = Instant::now();
        let commits: Vec<&SessionCommit> = batch.iter().map(|r| &r.commit).collect();
        let result = commit_once(&db, &commits).await;
        metrics
            .commit_latency
            .observe(started.elapsed().as_secs_f64());
        let ops: usize = batch.iter().map(|r| r.commit.write.ops()).sum();
        metrics.commit_batch_size.observe(ops as f64);
        match result {
            // One session's refused rows or moved epoch fails the others:
            // each is committed alone.
            Err(ref e) if batch.len() > 1 && !matches!(e, CommitError::Unknown(_)) => {
                tracing::warn!(error = ?e, sessions = batch.len(), "merged commit failed; retrying each session alone");
                for r in batch {
                    let result = commit_once(&db, &[&r.commit]).await;
                    let _ = r.reply.send(result);
                }
            }
            result => {
                for r in batch {
                    let _ = r.reply.send(result.clone());
                }
            }
        }
        drop(running);
    }
}

/// The statement failed in `hub.fence`: a session's epoch moved on.
fn is_fenced(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("HB409"))
}

async fn commit_once(db: &PgPool, commits: &[&SessionCommit]) -> Result<(), CommitError> {
    // One statement in autocommit: it is its own transaction.
    match commit::write(db, commits).await {
        Ok(()) => Ok(()),
        // The connection broke while the statement (and so its commit) ran.
        Err(e) if is_connection_error(&e) => Err(CommitError::Unknown(e.to_string())),
        Err(e) if is_fenced(&e) => Err(CommitError::Fenced),
        Err(e) if is_data_error(&e) => Err(CommitError::Rejected(e.to_string())),
        Err(e) => Err(CommitError::Failed(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::commit::BatchWrite;

    fn queue() -> (mpsc::Sender<Request>, Arc<Queue>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (tx, Arc::new(Queue::new(rx)))
    }

    async fn send(tx: &mpsc::Sender<Request>, n: usize) {
        for i in 0..n {
            let commit = SessionCommit {
                session_id: format!("s{i}"),
                playlist_id: format!("p{i}"),
                version: 1,
                commits: 1,
                epoch: 1,
                at: chrono::Utc::now(),
                touch: false,
                write: BatchWrite::default(),
            };
            let (reply, _) = oneshot::channel();
            tx.send(Request { commit, reply }).await.unwrap();
        }
    }

    // Paused clock: time moves only when every task waits, so these do not
    // depend on the machine's speed.
    #[tokio::test(start_paused = true)]
    async fn with_nothing_running_one_request_is_committed_at_once() {
        let (tx, q) = queue();
        send(&tx, 1).await;
        let (batch, _running) = next_batch(&q).await.unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(q.running.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_small_batch_waits_for_the_running_commit_and_takes_what_came_meanwhile() {
        let (tx, q) = queue();
        send(&tx, 1).await;
        let first = next_batch(&q).await.unwrap();
        send(&tx, 2).await;
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { next_batch(&q).await.map(|(b, _)| b.len()) }
        });
        tokio::time::sleep(WAIT_MAX / 4).await;
        assert!(!waiting.is_finished(), "started beside a running commit");
        send(&tx, 3).await;
        drop(first);
        let n = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the finished commit did not wake the next")
            .unwrap();
        assert_eq!(n, Some(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_commit_holds_up_the_next_for_wait_max_at_most() {
        let (tx, q) = queue();
        send(&tx, 1).await;
        let _stalled = next_batch(&q).await.unwrap();
        send(&tx, 1).await;
        let t0 = tokio::time::Instant::now();
        let (batch, _second) = next_batch(&q).await.unwrap();
        assert_eq!(t0.elapsed(), WAIT_MAX, "waited other than WAIT_MAX");
        assert_eq!(batch.len(), 1);
        assert_eq!(q.running.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_queue_is_committed_beside_the_running_commit() {
        let (tx, q) = queue();
        send(&tx, 1).await;
        let _first = next_batch(&q).await.unwrap();
        send(&tx, PARALLEL_MIN).await;
        let t0 = tokio::time::Instant::now();
        let (batch, _second) = next_batch(&q).await.unwrap();
        assert!(
            t0.elapsed() < WAIT_MAX,
            "waited although the queue was long"
        );
        assert_eq!(batch.len(), PARALLEL_MIN);
        assert_eq!(q.running.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn closing_the_queue_flushes_what_is_waiting() {
        let (tx, q) = queue();
        send(&tx, 1).await;
        let _first = next_batch(&q).await.unwrap();
        send(&tx, 2).await;
        drop(tx);
        let t0 = tokio::time::Instant::now();
        let (batch, _) = next_batch(&q).await.unwrap();
        assert!(
            t0.elapsed() < WAIT_MAX,
            "a closed queue waited for the running commit"
        );
        assert_eq!(batch.len(), 2);
        assert!(next_batch(&q).await.is_none());
    }
}
