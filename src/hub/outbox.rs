//! A listener's bounded outbound queue: the only way a session actor talks
//! to a connection. Pushing never waits: a listener that is more than
//! `max_frames` frames or `max_bytes` bytes behind is cut off (close 4008) so
//! that it can never slow the session or anyone else. Frames are shared
//! bytes: one serialization of an `update` serves every listener.
//!
//! One mutex-guarded `VecDeque` and one waker, not a channel: an idle
//! listener's outbox is a single small allocation (a tokio channel allocates
//! its first block of slots up front), and the connection task that drains it
//! is the only one ever waiting on it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use audotics_protocol::CloseCode;
use axum::extract::ws::Utf8Bytes;

/// What the connection sends next.
#[derive(Debug)]
pub enum Outbound {
    Frame(Utf8Bytes),
    /// The listener's opening (its snapshot, or `resumed` and the replay):
    /// not counted toward the limits, so a large snapshot cannot make the
    /// next broadcast cut the listener off before it has a version.
    Opening(Utf8Bytes),
    /// Send this close frame after everything queued before it, then stop.
    Close(CloseCode, &'static str),
}

/// A drained queue keeps at most this much capacity, so one burst does not
/// pin memory for the rest of an idle connection's life: `VecDeque`'s
/// smallest allocation (4 slots, 160 bytes), enough for the one or two
/// frames a listener usually has waiting; a queue that grew past it is
/// given back once drained (16 slots kept ~270 bytes per idle listener).
const KEEP_CAPACITY: usize = 4;

#[derive(Debug)]
struct Inner {
    queue: VecDeque<Outbound>,
    /// Counted frames in `queue` (not the opening) and their bytes.
    frames: usize,
    bytes: usize,
    /// Set: stop now and close with this code, dropping what is queued.
    kill: Option<CloseCode>,
    /// Live `Outbox` handles; none left means nothing more can arrive.
    senders: usize,
    /// The receiving connection is gone.
    receiver_gone: bool,
    waker: Option<Waker>,
    /// When the queue last went from empty to not empty.
    since: Option<Instant>,
}

impl Inner {
    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn kill(&mut self, code: CloseCode) {
        self.kill.get_or_insert(code);
        self.drop_queued();
        self.wake();
    }

    /// Drop what waits (and its memory): nobody will write it.
    fn drop_queued(&mut self) {
        self.queue = VecDeque::new();
        self.frames = 0;
        self.bytes = 0;
        self.since = None;
    }

    fn pop(&mut self) -> Option<Outbound> {
        let item = self.queue.pop_front()?;
        if let Outbound::Frame(f) = &item {
            self.frames -= 1;
            self.bytes -= f.len();
        }
        if self.queue.is_empty() {
            self.since = None;
            if self.queue.capacity() > KEEP_CAPACITY {
                self.queue = VecDeque::new();
            }
        }
        Some(item)
    }

    fn park(&mut self, cx: &Context<'_>) {
        match &self.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => self.waker = Some(cx.waker().clone()),
        }
    }
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    max_frames: usize,
    max_bytes: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pushing side, held by the session actor (and the connection, for its
/// own error frames).
#[derive(Debug)]
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The draining side, owned by the connection task.
#[derive(Debug)]
pub struct OutboxReceiver {
    shared: Arc<Shared>,
    waited: Option<Duration>,
}

/// Overflow: the listener is too far behind and has been cut off.
#[derive(Debug, PartialEq, Eq)]
pub struct TooSlow;

pub fn outbox(max_frames: usize, max_bytes: usize) -> (Outbox, OutboxReceiver) {
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            queue: VecDeque::new(),
            frames: 0,
            bytes: 0,
            kill: None,
            senders: 1,
            receiver_gone: false,
            waker: None,
            since: None,
        }),
        max_frames: max_frames.max(1),
        max_bytes,
    });
    (
        Outbox {
            shared: shared.clone(),
        },
        OutboxReceiver {
            shared,
            waited: None,
        },
    )
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Outbox {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.senders -= 1;
        if inner.senders == 0 {
            inner.wake();
        }
    }
}

impl Outbox {
    /// Queue a frame; on overflow the listener is killed with 4008.
    pub fn push(&self, frame: Utf8Bytes) -> Result<(), TooSlow> {
        let mut inner = self.shared.lock();
        if inner.kill.is_some() || inner.receiver_gone {
            return Err(TooSlow);
        }
        let len = frame.len();
        // One frame alone may exceed the byte bound (a big snapshot): a
        // listener is "behind" only by what waits beyond the frame in flight.
        let over_bytes = inner.bytes > 0 && inner.bytes + len > self.shared.max_bytes;
        if over_bytes || inner.frames >= self.shared.max_frames {
            inner.kill(CloseCode::TooSlow);
            return Err(TooSlow);
        }
        if inner.queue.is_empty() {
            inner.since = Some(Instant::now());
        }
        inner.queue.push_back(Outbound::Frame(frame));
        inner.frames += 1;
        inner.bytes += len;
        inner.wake();
        Ok(())
    }

    /// Queue a frame of the listener's opening (see [`Outbound::Opening`]).
    pub fn push_opening(&self, frame: Utf8Bytes) -> Result<(), TooSlow> {
        let mut inner = self.shared.lock();
        if inner.kill.is_some() || inner.receiver_gone {
            return Err(TooSlow);
        }
        if inner.queue.is_empty() {
            inner.since = Some(Instant::now());
        }
        inner.queue.push_back(Outbound::Opening(frame));
        inner.wake();
        Ok(())
    }

    /// Close after the frames already queued (ended, leave). If the queue is
    /// full, close at once instead.
    pub fn close(&self, code: CloseCode, reason: &'static str) {
        let mut inner = self.shared.lock();
        if inner.kill.is_some() || inner.receiver_gone {
            return;
        }
        if inner.frames >= self.shared.max_frames {
            inner.kill(code);
        } else {
            inner.queue.push_back(Outbound::Close(code, reason));
            inner.wake();
        }
    }

    /// Close now, dropping whatever is queued.
    pub fn kill(&self, code: CloseCode) {
        self.shared.lock().kill(code);
    }

    /// The connection is gone or being cut off.
    pub fn is_closed(&self) -> bool {
        let inner = self.shared.lock();
        inner.kill.is_some() || inner.receiver_gone
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.receiver_gone = true;
        inner.drop_queued();
    }
}

impl OutboxReceiver {
    /// How long the queue had been waiting for its writer when `next` last
    /// took from it (the connection's scheduling delay; a metric).
    pub fn waited(&self) -> Option<Duration> {
        self.waited
    }

    /// The next thing to write; `Ok(None)` once every sender is gone and the
    /// queue is empty; `Err(code)` when the listener was killed.
    pub async fn next(&mut self) -> Result<Option<Outbound>, CloseCode> {
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            if let Some(code) = inner.kill {
                return Poll::Ready(Err(code));
            }
            let since = inner.since;
            if let Some(item) = inner.pop() {
                self.waited = since.map(|t| t.elapsed());
                return Poll::Ready(Ok(Some(item)));
            }
            if inner.senders == 0 {
                return Poll::Ready(Ok(None));
            }
            inner.park(cx);
            Poll::Pending
        })
        .await
    }

    /// Resolves with the close code once the listener is killed, so a
    /// connection stuck on a full socket can give up on it.
    pub async fn killed(&self) -> CloseCode {
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            if let Some(code) = inner.kill {
                return Poll::Ready(code);
            }
            inner.park(cx);
            Poll::Pending
        })
        .await
    }

    /// Move up to `max` queued items into `into` without waiting (to batch
    /// writes). Stops after a `Close`. Nothing when killed.
    pub fn drain_into(&mut self, into: &mut Vec<Outbound>, max: usize) {
        let mut inner = self.shared.lock();
        if inner.kill.is_some() {
            return;
        }
        for _ in 0..max {
            let Some(item) = inner.pop() else { break };
            let close = matches!(item, Outbound::Close(..));
            into.push(item);
            if close {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drained_queue_gives_back_what_a_burst_grew() {
        let (tx, mut rx) = outbox(100, 1 << 20);
        let capacity = |rx: &OutboxReceiver| rx.shared.lock().queue.capacity();
        tx.push("a".into()).unwrap();
        let mut out = Vec::new();
        rx.drain_into(&mut out, 64);
        let small = capacity(&rx);
        assert!(small > 0 && small <= KEEP_CAPACITY, "{small}");
        for _ in 0..40 {
            tx.push("b".into()).unwrap();
        }
        assert!(capacity(&rx) >= 40);
        rx.drain_into(&mut out, 64);
        assert_eq!(out.len(), 41);
        assert!(capacity(&rx) <= KEEP_CAPACITY, "{}", capacity(&rx));
    }

    #[tokio::test]
    async fn the_opening_does_not_count_toward_the_limits() {
        let (tx, mut rx) = outbox(2, 100);
        tx.push_opening("s".repeat(1000).into()).unwrap();
        tx.push("a".into()).unwrap();
        tx.push("b".into()).unwrap();
        assert_eq!(tx.push("c".into()), Err(TooSlow));
        assert_eq!(rx.next().await.unwrap_err(), CloseCode::TooSlow);
        let (tx, mut rx) = outbox(2, 100);
        tx.push_opening("s".repeat(1000).into()).unwrap();
        tx.push("x".repeat(60).into()).unwrap();
        tx.push("y".repeat(30).into()).unwrap();
        assert!(matches!(rx.next().await, Ok(Some(Outbound::Opening(_)))));
    }

    #[tokio::test]
    async fn overflow_by_frames_kills_with_4008() {
        let (tx, mut rx) = outbox(2, 1 << 20);
        tx.push("a".into()).unwrap();
        tx.push("b".into()).unwrap();
        assert_eq!(tx.push("c".into()), Err(TooSlow));
        assert!(tx.is_closed());
        assert_eq!(rx.next().await.unwrap_err(), CloseCode::TooSlow);
    }

    #[tokio::test]
    async fn overflow_by_bytes_kills_and_draining_frees_room() {
        let (tx, mut rx) = outbox(100, 10);
        let (big, _big_rx) = outbox(100, 10);
        big.push("a frame larger than the bound".into()).unwrap();
        assert_eq!(big.push("x".into()), Err(TooSlow));
        tx.push("12345".into()).unwrap();
        tx.push("12345".into()).unwrap();
        assert!(matches!(rx.next().await, Ok(Some(Outbound::Frame(_)))));
        tx.push("12345".into()).unwrap();
        assert_eq!(tx.push("123456".into()), Err(TooSlow));
        assert_eq!(rx.next().await.unwrap_err(), CloseCode::TooSlow);
    }

    #[tokio::test]
    async fn close_follows_queued_frames() {
        let (tx, mut rx) = outbox(10, 100);
        tx.push("a".into()).unwrap();
        tx.close(CloseCode::Ended, "ended");
        assert!(matches!(rx.next().await, Ok(Some(Outbound::Frame(_)))));
        assert!(matches!(
            rx.next().await,
            Ok(Some(Outbound::Close(CloseCode::Ended, _)))
        ));
    }

    #[tokio::test]
    async fn drain_stops_at_close_and_leaves_the_rest() {
        let (tx, mut rx) = outbox(10, 100);
        tx.push("a".into()).unwrap();
        tx.close(CloseCode::Normal, "");
        tx.push("late".into()).unwrap();
        let mut got = Vec::new();
        rx.drain_into(&mut got, 10);
        assert_eq!(got.len(), 2);
        assert!(matches!(got[1], Outbound::Close(CloseCode::Normal, _)));
    }

    #[tokio::test]
    async fn waiting_receiver_wakes_on_push_and_on_last_sender_drop() {
        let (tx, mut rx) = outbox(10, 100);
        let tx2 = tx.clone();
        let waiter = tokio::spawn(async move {
            let first = rx.next().await;
            let end = rx.next().await;
            (first, end)
        });
        tokio::task::yield_now().await;
        tx.push("a".into()).unwrap();
        drop(tx);
        drop(tx2);
        let (first, end) = waiter.await.unwrap();
        assert!(matches!(first, Ok(Some(Outbound::Frame(_)))));
        assert!(matches!(end, Ok(None)));
    }

    #[tokio::test]
    async fn pushing_to_a_dropped_receiver_fails() {
        let (tx, rx) = outbox(10, 100);
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.push("a".into()), Err(TooSlow));
    }
}
