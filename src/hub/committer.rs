//! Group commit across sessions. Every session actor hands its batch to a
//! shared pool of committer workers; a worker takes every batch waiting (from
//! any number of sessions) and writes them in ONE transaction with one
//! statement per table. Thousands of quiet sessions then cost a few commits
//! per second instead of one each. A session never has two batches in
//! flight (its actor waits for the answer), so per-session order holds.
//!
//! If a merged transaction fails, each batch is retried alone, so one bad
//! batch never fails another session's ops.

use std::sync::Arc;
use std::time::Instant;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::persist::{self, SessionCommit};
use crate::error::{is_connection_error, Error};
use crate::metrics::Metrics;

/// Batches merged into one transaction at most.
const MAX_MERGE: usize = 256;
/// Batches waiting for a worker at most; an actor handing in more waits
/// (backpressure on that actor only).
const QUEUE: usize = 4096;

/// How a commit ended.
#[derive(Debug)]
pub enum CommitError {
    /// Certainly not committed.
    Failed(Error),
    /// The connection broke during COMMIT: it may or may not have happened.
    Unknown(String),
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
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers.max(1) {
            tokio::spawn(worker(db.clone(), metrics.clone(), rx.clone()));
        }
        Committer { tx }
    }

    /// Commit one session's batch, together with whatever other sessions'
    /// batches are waiting.
    pub async fn commit(&self, commit: SessionCommit) -> Result<(), CommitError> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Request { commit, reply }).await.is_err() {
            // Never reached a worker: certainly not committed.
            return Err(CommitError::Failed(Error::Unavailable));
        }
        // A worker that vanished mid-commit leaves the outcome unknown.
        rx.await
            .unwrap_or_else(|_| Err(CommitError::Unknown("committer stopped".into())))
    }
}

async fn worker(db: PgPool, metrics: Arc<Metrics>, rx: Arc<Mutex<mpsc::Receiver<Request>>>) {
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(r) => batch.push(r),
                None => return,
            }
            while batch.len() < MAX_MERGE {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
        }
        let started = Instant::now();
        let commits: Vec<&SessionCommit> = batch.iter().map(|r| &r.commit).collect();
        let result = commit_once(&db, &commits).await;
        metrics
            .commit_latency
            .observe(started.elapsed().as_secs_f64());
        let ops: usize = batch
            .iter()
            .map(|r| r.commit.write.changes.len() + r.commit.write.interactions.len())
            .sum();
        metrics.commit_batch_size.observe(ops as f64);
        match result {
            Err(CommitError::Failed(e)) if batch.len() > 1 => {
                tracing::warn!(error = ?e, sessions = batch.len(), "merged commit failed; retrying each session alone");
                for r in batch {
                    let result = commit_once(&db, &[&r.commit]).await;
                    let _ = r.reply.send(result);
                }
            }
            result => {
                let shared = match &result {
                    Ok(()) => None,
                    Err(CommitError::Failed(e)) => Some(format!("{e:?}")),
                    Err(CommitError::Unknown(e)) => Some(e.clone()),
                };
                let unknown = matches!(result, Err(CommitError::Unknown(_)));
                for r in batch {
                    let answer = match (&shared, unknown) {
                        (None, _) => Ok(()),
                        (Some(e), true) => Err(CommitError::Unknown(e.clone())),
                        (Some(e), false) => {
                            Err(CommitError::Failed(Error::Internal(anyhow::anyhow!("{e}"))))
                        }
                    };
                    let _ = r.reply.send(answer);
                }
            }
        }
    }
}

async fn commit_once(db: &PgPool, commits: &[&SessionCommit]) -> Result<(), CommitError> {
    // One statement in autocommit: it is its own transaction.
    match persist::write_commits(db, commits).await {
        Ok(()) => Ok(()),
        // The connection broke while the statement (and so its commit) ran.
        Err(e) if is_connection_error(&e) => Err(CommitError::Unknown(e.to_string())),
        Err(e) => Err(CommitError::Failed(e.into())),
    }
}
