//! A listener's bounded outbound queue: the only way a session actor talks
//! to a connection. Pushing never waits: a listener that is more than
//! `max_frames` frames or `max_bytes` bytes behind is cut off (close 4008) so
//! that it can never slow the session or anyone else. Frames are shared
//! bytes: one serialization of an `update` serves every listener.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{mpsc, Notify};

/// What the writer task sends next.
#[derive(Debug)]
pub enum Outbound {
    Frame(Utf8Bytes),
    /// Send this close frame after everything queued before it, then stop.
    Close(u16, &'static str),
}

/// State shared by the pushing side and the writer task.
#[derive(Debug)]
pub struct OutboxState {
    bytes: AtomicUsize,
    /// Non-zero: stop now and close with this code, dropping what is queued.
    kill: AtomicU16,
    notify: Notify,
}

/// The pushing side, held by the session actor.
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: mpsc::Sender<Outbound>,
    state: Arc<OutboxState>,
    max_bytes: usize,
}

/// The draining side, owned by the connection's writer task.
pub struct OutboxReceiver {
    rx: mpsc::Receiver<Outbound>,
    state: Arc<OutboxState>,
}

/// Overflow: the listener is too far behind and has been cut off.
#[derive(Debug, PartialEq, Eq)]
pub struct TooSlow;

pub fn outbox(max_frames: usize, max_bytes: usize) -> (Outbox, OutboxReceiver) {
    // Overflow policy: bounded; a full queue kills the listener (4008).
    let (tx, rx) = mpsc::channel(max_frames.max(1));
    let state = Arc::new(OutboxState {
        bytes: AtomicUsize::new(0),
        kill: AtomicU16::new(0),
        notify: Notify::new(),
    });
    (
        Outbox {
            tx,
            state: state.clone(),
            max_bytes,
        },
        OutboxReceiver { rx, state },
    )
}

impl Outbox {
    /// Queue a frame; on overflow the listener is killed with 4008.
    pub fn push(&self, frame: Utf8Bytes) -> Result<(), TooSlow> {
        if self.is_closed() {
            return Err(TooSlow);
        }
        let len = frame.len();
        // One frame alone may exceed the byte bound (a big snapshot): a
        // listener is "behind" only by what waits beyond the frame in flight.
        let before = self.state.bytes.fetch_add(len, Ordering::AcqRel);
        let over = before > 0 && before + len > self.max_bytes;
        if over || self.tx.try_send(Outbound::Frame(frame)).is_err() {
            self.state.bytes.fetch_sub(len, Ordering::AcqRel);
            self.kill(crate::protocol::close::TOO_SLOW);
            return Err(TooSlow);
        }
        Ok(())
    }

    /// Close after the frames already queued (ended, leave). If the queue is
    /// full, close at once instead.
    pub fn close(&self, code: u16, reason: &'static str) {
        if self.tx.try_send(Outbound::Close(code, reason)).is_err() {
            self.kill(code);
        }
    }

    /// Close now, dropping whatever is queued.
    pub fn kill(&self, code: u16) {
        let _ = self
            .state
            .kill
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.state.notify.notify_one();
    }

    /// The connection is gone or being cut off.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.state.kill.load(Ordering::Acquire) != 0
    }
}

impl OutboxReceiver {
    /// The next thing to write, or `Err(code)` when the listener was killed.
    pub async fn next(&mut self) -> Result<Option<Outbound>, u16> {
        loop {
            let code = self.state.kill.load(Ordering::Acquire);
            if code != 0 {
                return Err(code);
            }
            tokio::select! {
                biased;
                _ = self.state.notify.notified() => continue,
                item = self.rx.recv() => {
                    if let Some(Outbound::Frame(f)) = &item {
                        self.state.bytes.fetch_sub(f.len(), Ordering::AcqRel);
                    }
                    return Ok(item);
                }
            }
        }
    }

    /// Resolves with the close code once the listener is killed, so a writer
    /// stuck on a full socket can give up on it.
    pub async fn killed(&self) -> u16 {
        loop {
            let code = self.state.kill.load(Ordering::Acquire);
            if code != 0 {
                return code;
            }
            self.state.notify.notified().await;
        }
    }

    /// Take another queued item without waiting (to batch writes).
    pub fn try_next(&mut self) -> Option<Outbound> {
        if self.state.kill.load(Ordering::Acquire) != 0 {
            return None;
        }
        let item = self.rx.try_recv().ok()?;
        if let Outbound::Frame(f) = &item {
            self.state.bytes.fetch_sub(f.len(), Ordering::AcqRel);
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overflow_by_frames_kills_with_4008() {
        let (tx, mut rx) = outbox(2, 1 << 20);
        tx.push("a".into()).unwrap();
        tx.push("b".into()).unwrap();
        assert_eq!(tx.push("c".into()), Err(TooSlow));
        assert!(tx.is_closed());
        assert_eq!(rx.next().await.unwrap_err(), 4008);
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
        assert_eq!(rx.next().await.unwrap_err(), 4008);
    }

    #[tokio::test]
    async fn close_follows_queued_frames() {
        let (tx, mut rx) = outbox(10, 100);
        tx.push("a".into()).unwrap();
        tx.close(4010, "ended");
        assert!(matches!(rx.next().await, Ok(Some(Outbound::Frame(_)))));
        assert!(matches!(
            rx.next().await,
            Ok(Some(Outbound::Close(4010, _)))
        ));
    }
}
