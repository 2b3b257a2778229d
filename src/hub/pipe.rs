//! A connection's ops on a node that does not own their session, on their
//! way to the owner. The connection reads its next op as soon as one is
//! queued here, not once the owner has answered: with one op in flight per
//! connection, a writer managed one op per round trip over NATS. Order is
//! kept because a connection has at most one request in flight, carrying
//! every op it queued meanwhile, and the owner hands a request's ops to the
//! actor in order; a retry sends the whole request again, which is safe
//! because ops are idempotent by `req`.

use std::time::Instant;

use audotics_protocol::{Req, SessionId, UserId};
use tokio::sync::{mpsc, oneshot};

use super::relay::RelayHandle;
use super::session::{ListenerId, Op};
use super::Hub;

/// Ops a connection may have queued before it waits (its own backpressure;
/// the per-connection rate limit keeps honest clients far below it).
const DEPTH: usize = 64;
/// Ops per request at most.
const BATCH: usize = 32;
/// Bytes of client frames per request at most (NATS' payload limit is
/// 1 MiB by default; a frame is at most the hub's message limit).
const BATCH_BYTES: usize = 256 * 1024;

/// One op as the client sent it: parsed, and its frame for the owner.
pub struct Forward {
    pub req: Req,
    pub op: Op,
    pub text: String,
}

enum Item {
    Op(Forward),
    /// Answered once every op queued before it was answered.
    Drained(oneshot::Sender<()>),
}

/// One connection's queue of forwarded ops.
pub struct Pipe {
    tx: mpsc::Sender<Item>,
}

/// Who a pipe answers: the connection's listener on this node's relay.
pub struct Sender {
    pub hub: Hub,
    pub session: SessionId,
    pub relay: RelayHandle,
    pub listener: ListenerId,
    pub user: UserId,
}

impl Pipe {
    /// Start the connection's pipe; it ends once dropped and drained.
    pub fn start(to: Sender) -> Pipe {
        let (tx, rx) = mpsc::channel(DEPTH);
        tokio::spawn(run(to, rx));
        Pipe { tx }
    }

    /// Queue an op; false if the pipe stopped (its relay is gone).
    pub async fn send(&self, op: Forward) -> bool {
        self.tx.send(Item::Op(op)).await.is_ok()
    }

    /// Wait until every op queued so far has been answered.
    pub async fn drained(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Item::Drained(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(to: Sender, mut rx: mpsc::Receiver<Item>) {
    let mut items = Vec::with_capacity(BATCH);
    let mut waiting = std::collections::VecDeque::new();
    loop {
        if waiting.is_empty() && rx.recv_many(&mut items, BATCH).await == 0 {
            return;
        }
        waiting.extend(items.drain(..));
        while let Ok(item) = rx.try_recv() {
            waiting.push_back(item);
        }
        // One request: the ops at the front, up to the limits, and the
        // drain markers among them (answered after those ops).
        let mut ops = Vec::new();
        let mut markers = Vec::new();
        let mut bytes = 0;
        while let Some(item) = waiting.front() {
            if let Item::Op(f) = item {
                let full = ops.len() == BATCH || bytes + f.text.len() > BATCH_BYTES;
                if full && !ops.is_empty() {
                    break;
                }
                bytes += f.text.len();
            }
            match waiting.pop_front().expect("a front item") {
                Item::Op(f) => ops.push(f),
                Item::Drained(done) => markers.push(done),
            }
        }
        if !ops.is_empty() {
            let started = Instant::now();
            let replies = to.hub.forward_ops(&to.session, &to.user, ops).await;
            to.hub
                .inner
                .metrics
                .forward_latency
                .observe(started.elapsed().as_secs_f64());
            for reply in replies {
                if !to.relay.answer(to.listener, reply).await {
                    return;
                }
            }
        }
        for done in markers {
            let _ = done.send(());
        }
    }
}
